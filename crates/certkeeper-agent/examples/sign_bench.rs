//! Signatures per second through the agent (a separate `certkeeper agent` process)
//! against in-process signing with the same key, for ECDSA P-256 and RSA-2048 with 1
//! and 8 concurrent clients, in one run:
//! `cargo run --release -p certkeeper-agent --example sign_bench -- CERTKEEPER_BINARY [SECONDS]`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use certkeeper_agent::AgentSigningKey;
use certkeeper_testkit::{KeyKind, Pki, Spec};
use rustls::SignatureScheme;
use rustls::sign::SigningKey;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

fn main() {
    let mut args = std::env::args().skip(1);
    let binary = args.next().expect("path to the certkeeper binary");
    let seconds: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let socket = dir.path().join("agent.sock");
    let mut keys = Vec::new();
    for (label, kind, scheme) in [
        (
            "ECDSA P-256",
            KeyKind::EcP256,
            SignatureScheme::ECDSA_NISTP256_SHA256,
        ),
        (
            "RSA-2048",
            KeyKind::Rsa2048,
            SignatureScheme::RSA_PSS_SHA256,
        ),
    ] {
        let pki = Pki::with_leaf(&Spec::client(&format!("bench {label}")).key(kind));
        let file = dir.path().join(format!("{}.pem", keys.len()));
        std::fs::write(&file, format!("{}{}", pki.leaf.pem(), pki.leaf.key_pem())).expect("write");
        let status = Command::new(&binary)
            .arg("--home")
            .arg(&home)
            .arg("import")
            .arg(&file)
            .arg("--name")
            .arg(format!("k{}", keys.len()))
            .stdout(Stdio::null())
            .status()
            .expect("import");
        assert!(status.success());
        keys.push((
            label,
            pki.leaf.key_der(),
            scheme,
            format!("k{}", keys.len()),
        ));
    }
    let mut agent = Command::new(&binary)
        .arg("--home")
        .arg(&home)
        .arg("agent")
        .arg("--socket")
        .arg(&socket)
        .stderr(Stdio::null())
        .spawn()
        .expect("agent");
    while !socket.exists() {
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("| key | clients | in-process sig/s | through agent sig/s | ratio |");
    println!("|---|---|---|---|---|");
    for (label, der, scheme, name) in &keys {
        let scheme = *scheme;
        let local: Arc<dyn SigningKey> = rustls::crypto::aws_lc_rs::sign::any_supported_type(
            &PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der.clone())),
        )
        .expect("key");
        let (remote, _) = AgentSigningKey::certified(&socket, name).expect("resolve");
        for clients in [1usize, 8] {
            let inproc = rate(clients, seconds, {
                let local = Arc::clone(&local);
                move || {
                    let signer = local.choose_scheme(&[scheme]).expect("scheme");
                    move |msg: &[u8]| {
                        signer.sign(msg).expect("sign");
                    }
                }
            });
            let through = rate(clients, seconds, {
                let key = Arc::clone(&remote.key);
                move || {
                    let signer = key.choose_scheme(&[scheme]).expect("scheme");
                    move |msg: &[u8]| {
                        signer.sign(msg).expect("sign through agent");
                    }
                }
            });
            println!(
                "| {label} | {clients} | {inproc:.0} | {through:.0} | {:.2}x |",
                through / inproc
            );
        }
    }
    // The floor of any request: one `hello` round trip over the socket.
    let mut client = certkeeper_agent::AgentClient::connect(&socket).expect("connect");
    let n = 20_000;
    let start = Instant::now();
    for _ in 0..n {
        client.hello().expect("hello");
    }
    let rt = start.elapsed().as_secs_f64() / f64::from(n) * 1e6;
    println!(
        "\nprotocol floor: one request/response round trip (hello) takes {rt:.1} us on this machine"
    );
    let _ = agent.kill();
    let _ = agent.wait();
    let _ = Path::new(&socket);
}

/// Signatures per second with `clients` threads, each with its own signer.
fn rate<F, S>(clients: usize, seconds: f64, make: F) -> f64
where
    F: Fn() -> S + Send + Sync + 'static + Clone,
    S: FnMut(&[u8]),
{
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let make = make.clone();
            std::thread::spawn(move || {
                let mut sign = make();
                let msg = [7u8; 130]; // a TLS 1.3 CertificateVerify message is ~130 bytes
                let mut n = 0u64;
                while Instant::now() < deadline {
                    sign(&msg);
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().expect("thread")).sum();
    total as f64 / seconds
}
