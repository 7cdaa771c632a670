//! `certkeeper demo`: the whole job on a temporary home, with no server to install:
//! a test PKI, a .pfx, import, path, grant, export, the agent, a local HTTPS service
//! that demands a client certificate (in this process), and calls to it through a
//! binding and through `request`. Every step says what happened; exit 0 only if all
//! of them worked. The temporary home is removed at the end.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use certkeeper_agent::AgentSigningKey;
use certkeeper_agent::server::{Agent, bind};
use certkeeper_core::path::Purpose;
use certkeeper_core::{Certificate, PrivateKey, pkcs12};
use certkeeper_store::{Binding, Home, ImportOptions, Principal};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::Context;
use crate::error::CliError;
use crate::output;

struct Made {
    der: Vec<u8>,
    key: KeyPair,
    params: CertificateParams,
}

fn make(
    cn: &str,
    ca: bool,
    eku: Option<ExtendedKeyUsagePurpose>,
    sans: &[&str],
    issuer: Option<&Made>,
) -> Result<Made, CliError> {
    let fail = |e: rcgen::Error| CliError::usage(format!("making the test PKI: {e}"));
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(fail)?;
    let mut params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .map_err(fail)?;
    params.distinguished_name.push(DnType::CommonName, cn);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "certkeeper demo");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(if ca { 3650 } else { 365 });
    params.use_authority_key_identifier_extension = true;
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    } else {
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = eku.into_iter().collect();
    }
    let cert = match issuer {
        Some(i) => params
            .signed_by(&key, &Issuer::from_params(&i.params, &i.key))
            .map_err(fail)?,
        None => params.self_signed(&key).map_err(fail)?,
    };
    Ok(Made {
        der: cert.der().to_vec(),
        key,
        params,
    })
}

struct Steps {
    n: usize,
}

impl Steps {
    fn step(&mut self, what: &str) {
        self.n += 1;
        eprintln!("\n[{}] {what}", self.n);
    }

    fn say(&self, what: &str) {
        eprintln!("    {what}");
    }
}

pub fn run(ctx: &Context) -> Result<u8, CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::usage(format!("cannot start the runtime: {e}")))?;
    let result = runtime.block_on(demo());
    runtime.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(n) => {
            if ctx.json {
                output::json(&serde_json::json!({"ok": true, "steps": n}))?;
            } else {
                output::print_stdout(&format!("demo: all {n} steps worked\n"))?;
            }
            Ok(0)
        }
        Err(e) => Err(e.context("demo failed")),
    }
}

async fn demo() -> Result<usize, CliError> {
    let fail = |what: &str| {
        let what = what.to_string();
        move |e: String| CliError::usage(format!("{what}: {e}"))
    };
    let mut s = Steps { n: 0 };
    let dir = tempfile::Builder::new()
        .prefix("certkeeper-demo-")
        .tempdir()
        .map_err(|e| CliError::usage(format!("temporary directory: {e}")))?;
    let home_dir = dir.path().join("home");
    eprintln!(
        "certkeeper demo on a temporary home: {}",
        home_dir.display()
    );

    s.step("Make a test PKI: a root, two intermediate CAs, a client and a server certificate");
    let root = make("Demo Root CA", true, None, &[], None)?;
    let policy = make("Demo Policy CA", true, None, &[], Some(&root))?;
    let issuing = make("Demo Issuing CA", true, None, &[], Some(&policy))?;
    let client = make(
        "demo client",
        false,
        Some(ExtendedKeyUsagePurpose::ClientAuth),
        &[],
        Some(&issuing),
    )?;
    let server = make(
        "localhost",
        false,
        Some(ExtendedKeyUsagePurpose::ServerAuth),
        &["localhost", "127.0.0.1"],
        Some(&issuing),
    )?;
    s.say("Demo Root CA -> Demo Policy CA -> Demo Issuing CA -> demo client / localhost (ECDSA P-256)");

    s.step("Write partner.pfx (the client certificate, its key and its chain), as a partner would send it");
    let password = "demo-pfx-password";
    let parse = |der: &[u8]| Certificate::from_der(der).map_err(|e| CliError::usage(e.to_string()));
    let chain = [
        parse(&client.der)?,
        parse(&issuing.der)?,
        parse(&policy.der)?,
        parse(&root.der)?,
    ];
    let key = PrivateKey::from_pkcs8_der(&client.key.serialize_der())
        .map_err(|e| CliError::usage(e.to_string()))?;
    let pfx = pkcs12::write(
        &key,
        &chain.iter().collect::<Vec<_>>(),
        "partner",
        password,
        pkcs12::Protection::Modern,
    )
    .map_err(|e| CliError::usage(e.to_string()))?;
    let pfx_path = dir.path().join("partner.pfx");
    std::fs::write(&pfx_path, &pfx).map_err(|e| CliError::usage(e.to_string()))?;
    s.say(&format!(
        "{} ({} bytes, AES-256, password-protected)",
        pfx_path.display(),
        pfx.len()
    ));

    s.step("Import partner.pfx, each certificate into the store its type calls for");
    let (mut home, _) = Home::init(&home_dir)?;
    let contents =
        certkeeper_core::read_file(&pfx, Some(&certkeeper_core::Password::new(password.into())))?;
    let report = home.import(
        contents,
        &ImportOptions {
            name: Some("partner".into()),
            ..ImportOptions::default()
        },
    )?;
    for i in &report.imported {
        s.say(&format!(
            "{:<13} {}{}",
            i.store.as_str(),
            i.subject,
            if i.has_key {
                "  (with its private key)"
            } else {
                ""
            }
        ));
    }

    s.step("Check the certification path of the client certificate");
    let entry = home.resolve("partner")?;
    let check = home.check_path(&entry, output::now(), Purpose::ClientAuth)?;
    for (depth, link) in check.report.chain.iter().rev().enumerate() {
        s.say(&format!(
            "{}{}  [{}]",
            "   ".repeat(depth),
            link.subject,
            check
                .store_of(link.thumbprint.as_deref())
                .map(|s| s.as_str())
                .unwrap_or("?")
        ));
    }
    if !check.report.valid {
        return Err(CliError::usage(format!(
            "the path is not valid: {:?}",
            check.report.problem
        )));
    }
    s.say("valid: the root is trusted and every intermediate is present");

    s.step("Grant a service account the use of the private key");
    let principal = if Principal::User("nobody".into()).validate().is_ok() {
        Principal::User("nobody".into())
    } else {
        Principal::Uid(65534)
    };
    let acl = home.grant(&entry, std::slice::from_ref(&principal))?;
    s.say(&format!(
        "key ACL: root, the home's owner, {}",
        acl.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    ));

    s.step("Export the public certificate under the agreed name partner.cer");
    let exported = home
        .export_as(
            &entry,
            "partner.cer",
            certkeeper_store::export::Replace::Nothing,
        )?
        .path;
    s.say(&format!(
        "{} (DER, {} bytes, identical to the imported certificate)",
        exported.display(),
        entry.der.len()
    ));

    s.step("Start the key isolation agent (the only holder of the decrypted key)");
    let socket = dir.path().join("agent.sock");
    let agent = Agent::open(&home_dir).map_err(|e| CliError::usage(e.to_string()))?;
    let listener = bind(&socket).map_err(|e| CliError::usage(e.to_string()))?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut stop_agent = stopped.clone();
    tokio::spawn(Arc::clone(&agent).serve(listener, async move {
        let _ = stop_agent.changed().await;
    }));
    tokio::spawn(certkeeper_egress::supervisor::run(
        Arc::clone(&agent),
        stopped.clone(),
    ));
    s.say(&format!("listening on {}", socket.display()));
    let socket_for_check = socket.clone();
    let keycheck = tokio::task::spawn_blocking(move || -> Result<String, String> {
        let (certified, info) =
            AgentSigningKey::certified(&socket_for_check, "partner").map_err(|e| e.to_string())?;
        let challenge = b"certkeeper demo challenge";
        let key = AgentSigningKey::new(&socket_for_check, &info);
        let scheme = key.schemes()[0];
        let sig = key
            .sign_with(scheme, challenge)
            .map_err(|e| e.to_string())?;
        let ok =
            certkeeper_agent::signer::verifies(certified.cert[0].as_ref(), scheme, challenge, &sig);
        if ok {
            Ok(format!("{scheme:?}"))
        } else {
            Err("the signature does not verify".into())
        }
    })
    .await
    .map_err(|e| CliError::usage(e.to_string()))?
    .map_err(fail("keycheck"))?;
    s.say(&format!("keycheck: the agent signed a fresh challenge ({keycheck}); it verifies with the certificate"));

    s.step("Start a local HTTPS service that demands a client certificate (the partner's side)");
    let upstream_port = serve_partner(&root, &[&issuing, &policy], &server).await?;
    s.say(&format!("https://localhost:{upstream_port}/ (TLS, client certificate required, issued under Demo Root CA)"));

    s.step("Bind it to the client certificate; the agent relays plain HTTP from loopback");
    let listen_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| CliError::usage(e.to_string()))?
        .port();
    home.bind(&Binding {
        name: "partner-api".into(),
        cert: "partner".into(),
        upstream: format!("https://localhost:{upstream_port}/api"),
        listen: Some(format!("127.0.0.1:{listen_port}")),
        server_ca: "root".into(),
        allow: Vec::new(),
        proxy: None,
        legacy_tls: false,
    })?;
    s.say(&format!(
        "partner-api: http://127.0.0.1:{listen_port} -> https://localhost:{upstream_port}/api"
    ));

    s.step("Call the service through the binding, as an application without TLS code would");
    let body = tokio::task::spawn_blocking(move || plain_get(listen_port, "/orders/42"))
        .await
        .map_err(|e| CliError::usage(e.to_string()))?
        .map_err(fail("the call through the binding"))?;
    if !body.contains("CN=demo client") {
        return Err(CliError::usage(format!(
            "the service did not see the client certificate: {body}"
        )));
    }
    s.say(&format!(
        "GET http://127.0.0.1:{listen_port}/orders/42 -> 200: {}",
        body.trim()
    ));

    s.step("Call it directly with `certkeeper request`, the key used through the agent");
    let trust =
        certkeeper_egress::tls::ServerTrust::Roots(vec![CertificateDer::from(root.der.clone())]);
    let socket_for_request = socket.clone();
    let (config, _, _) = tokio::task::spawn_blocking(move || {
        certkeeper_egress::tls::agent_client_config(
            &socket_for_request,
            "partner",
            &trust,
            &[b"http/1.1"],
        )
    })
    .await
    .map_err(|e| CliError::usage(e.to_string()))??;
    let call = certkeeper_egress::request::Call {
        url: format!("https://localhost:{upstream_port}/status")
            .parse()
            .map_err(|_| CliError::usage("url"))?,
        method: http::Method::GET,
        headers: Vec::new(),
        body: bytes::Bytes::new(),
        route: certkeeper_egress::tunnel::Route::default(),
        handoff: None,
    };
    let mut out = Vec::new();
    let answer = certkeeper_egress::request::send(&call, Arc::new(config), &mut |_| {}, &mut out)
        .await
        .map_err(|e| CliError::usage(e.to_string()))?;
    s.say(&format!(
        "{} over {} ({}): {}",
        answer.status,
        answer.tls.version,
        answer.tls.cipher,
        String::from_utf8_lossy(&out).trim()
    ));

    s.step("Clean up: stop the agent and the service, remove the temporary home");
    let _ = stop.send(true);
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(agent);
    drop(home);
    let path = dir.path().to_path_buf();
    dir.close().map_err(|e| CliError::usage(e.to_string()))?;
    s.say(&format!("{} removed", path.display()));
    Ok(s.n)
}

/// One HTTP/1.1 GET on loopback, waiting for the listener to come up.
fn plain_get(port: u16, path: &str) -> Result<String, String> {
    let start = Instant::now();
    let mut stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(_) if start.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => return Err(format!("the binding's listener did not come up: {e}")),
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| e.to_string())?;
    if !answer.starts_with("HTTP/1.1 200") {
        let status = answer.lines().next().unwrap_or("").to_string();
        let body = answer
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or("")
            .trim()
            .to_string();
        return Err(format!("{status}: {body}"));
    }
    Ok(answer.split("\r\n\r\n").nth(1).unwrap_or("").to_string())
}

/// The partner's service: TLS with a client certificate required (issued under the
/// demo root), answering with the subject it verified.
async fn serve_partner(
    root: &Made,
    intermediates: &[&Made],
    server: &Made,
) -> Result<u16, CliError> {
    let err = |e: String| CliError::usage(format!("the local HTTPS service: {e}"));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(root.der.clone()))
        .map_err(|e| err(e.to_string()))?;
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::clone(&provider),
    )
    .build()
    .map_err(|e| err(e.to_string()))?;
    let mut chain = vec![CertificateDer::from(server.der.clone())];
    chain.extend(
        intermediates
            .iter()
            .map(|c| CertificateDer::from(c.der.clone())),
    );
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server.key.serialize_der()));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| err(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| err(e.to_string()))?;
    let port = listener
        .local_addr()
        .map_err(|e| err(e.to_string()))?
        .port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let who = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(|c| Certificate::from_der(c.as_ref()).ok())
                    .map(|c| c.subject)
                    .unwrap_or_else(|| "nobody".into());
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let text = format!(
                            "hello from the partner's service: {} {} as {who}\n",
                            req.method(),
                            req.uri().path()
                        );
                        async move {
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(
                                http_body_util::Full::new(bytes::Bytes::from(text)),
                            ))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Ok(port)
}
