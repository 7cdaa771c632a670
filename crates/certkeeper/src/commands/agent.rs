//! `certkeeper agent` (serve keys) and `certkeeper keycheck REF` (prove, as the
//! calling user, that the agent lets you sign with a key).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use certkeeper_agent::server::{Agent, bind};
use certkeeper_agent::signer::verifies;
use certkeeper_agent::{AgentClient, AgentSigningKey};

use super::Context;
use crate::error::{CliError, Kind};
use crate::output;

/// `--socket`, else `CERTKEEPER_SOCKET`, else `/run/certkeeper/agent.sock` for root or
/// a root-owned home, else `$XDG_RUNTIME_DIR/certkeeper/agent.sock` (DESIGN.md).
pub fn socket_path(flag: Option<PathBuf>, home_dir: &Path) -> PathBuf {
    if let Some(p) = flag {
        return p;
    }
    if let Some(p) = std::env::var_os("CERTKEEPER_SOCKET").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let system = PathBuf::from("/run/certkeeper/agent.sock");
    let root_home = std::fs::metadata(home_dir).is_ok_and(|m| m.uid() == 0);
    if nix::unistd::geteuid().is_root() || root_home {
        return system;
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("certkeeper/agent.sock"),
        None => system,
    }
}

/// How long a stopping agent lets the calls in flight through its bindings finish.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(10);

pub fn serve(ctx: &Context, socket: Option<PathBuf>) -> Result<u8, CliError> {
    harden();
    let socket = socket_path(socket, &ctx.home_dir);
    let agent = Agent::open(&ctx.home_dir).map_err(|e| match e {
        certkeeper_agent::server::AgentError::Store(store) => CliError::from(store),
        other => CliError::new(Kind::Environment, other.to_string()),
    })?;
    // `tls_session`s (partners that ask for the certificate late, old TLS) are made
    // with OpenSSL, here where the key is.
    agent.make_sessions_with(std::sync::Arc::new(
        certkeeper_egress::tls_openssl::AgentSessions,
    ));
    // On one CPU (a small VM, or pinned with taskset/CPUAffinity) a work-stealing
    // scheduler is pure overhead for the relay: run everything on one thread.
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let runtime = if cpus == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    }
    .map_err(|e| CliError::usage(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async {
        let listener = bind(&socket).map_err(|e| CliError::usage(e.to_string()))?;
        eprintln!(
            "certkeeper agent: serving {} on {} (pid {})",
            ctx.home_dir.display(),
            socket.display(),
            std::process::id()
        );
        // The bindings' relays run beside the socket, in this process.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let egress = tokio::spawn(certkeeper_egress::supervisor::run(
            std::sync::Arc::clone(&agent),
            stopped,
        ));
        // A front-end follows its environment's generations (see certkeeper-fleet).
        let fleet = tokio::spawn(certkeeper_fleet::node::run(
            certkeeper_fleet::node::Follow {
                home_dir: ctx.home_dir.clone(),
                doctor: std::sync::Arc::new(super::doctor::summary),
            },
            stop.subscribe(),
        ));
        agent.serve(listener, shutdown_signal()).await;
        let _ = stop.send(true);
        let _ = egress.await;
        let _ = fleet.await;
        // The listeners are closed; the calls already relayed get DRAIN to finish.
        let left = certkeeper_egress::proxy::drain(DRAIN).await;
        if left > 0 {
            eprintln!(
                "certkeeper agent: {left} application connections still open after {} s: closing them",
                DRAIN.as_secs()
            );
        }
        Ok::<(), CliError>(())
    })?;
    let _ = std::fs::remove_file(&socket);
    eprintln!("certkeeper agent: stopped");
    if ctx.json {
        output::json(&serde_json::json!({"stopped": true, "socket": socket}))?;
    }
    Ok(0)
}

/// The process that holds unsealed keys: not dumpable (no core file, no ptrace or
/// /proc/PID/mem by the same uid), no core files at all, and as many descriptors as
/// the hard limit allows (the connection limits, not the default 1,024, bound it).
fn harden() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        eprintln!("certkeeper agent: cannot make the process non-dumpable: {e}");
    }
    let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

pub fn keycheck(ctx: &Context, reference: &str, socket: Option<PathBuf>) -> Result<u8, CliError> {
    let socket = socket_path(socket, &ctx.home_dir);
    let mut client = AgentClient::connect(&socket)?;
    let hello = client.hello()?;
    let info = client.resolve(reference)?;
    let key = AgentSigningKey::new(&socket, &info);
    let scheme = *key.schemes().first().ok_or_else(|| {
        match certkeeper_core::KeyAlgorithm::from_name(&info.algorithm)
            .and_then(certkeeper_core::KeyAlgorithm::tls_refusal)
        {
            Some(why) => CliError::usage(format!("the key of {}: {why}", info.subject)),
            None => CliError::usage(format!(
                "{} has a key of unknown type {:?}",
                info.subject, info.algorithm
            )),
        }
    })?;
    let mut challenge = b"certkeeper keycheck challenge ".to_vec();
    let mut nonce = [0u8; 32];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| CliError::usage("no randomness available"))?;
    challenge.extend_from_slice(&nonce);
    let signature = key.sign_with(scheme, &challenge)?;
    use base64::Engine;
    let cert = base64::engine::general_purpose::STANDARD
        .decode(&info.certificate)
        .map_err(|e| CliError::usage(format!("the agent sent a bad certificate: {e}")))?;
    if !verifies(&cert, scheme, &challenge, &signature) {
        return Err(CliError::usage(format!(
            "the agent signed, but the signature does not verify with the certificate of {}: the stored key does not match",
            info.subject
        )));
    }
    let user = certkeeper_store::Principal::user_name(hello.uid).unwrap_or_else(|| "-".into());
    if ctx.json {
        output::json(&serde_json::json!({
            "ok": true, "uid": hello.uid, "user": user, "thumbprint": info.thumbprint,
            "subject": info.subject, "scheme": format!("{scheme:?}"),
        }))?;
    } else {
        output::print_stdout(&format!(
            "this user (uid {}, {user}) can use the key of {}: the agent signed a fresh challenge ({scheme:?}) and the signature verifies with the certificate\n",
            hello.uid, info.subject
        ))?;
    }
    Ok(0)
}
