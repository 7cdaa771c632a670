//! `bind`, `unbind`, `bindings` and `request`.

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use certkeeper_agent::protocol::SessionTrust;
use certkeeper_egress::request::{Answer, Call, Handoff, Limits, send_with};
use certkeeper_egress::tls::{FixedClientCert, ServerTrust, agent_client_config, escaped};
use certkeeper_egress::tunnel::{NoProxy, Proxy, Route};
use certkeeper_store::Binding;
use http::{HeaderName, HeaderValue, Method};

use super::agent::socket_path;
use super::{Access, Context};
use crate::cli::RequestArgs;
use crate::error::{CliError, Kind};
use crate::output;

pub fn bind(ctx: &Context, mut binding: Binding) -> Result<u8, CliError> {
    let server_ca = binding.server_ca.clone();
    // A binding outlives the command, so its CA is kept in the home, not read from a
    // file that may move: say so rather than "no certificate matches".
    if !matches!(server_ca.as_str(), "root" | "system")
        && std::path::Path::new(&server_ca).is_file()
    {
        return Err(CliError::usage(format!(
            "--server-ca {server_ca}: a binding names its CA by REF; import it first \
             (certkeeper import {server_ca} --store other --name partner-ca) and give --server-ca partner-ca"
        )));
    }
    binding.proxy = binding.proxy.filter(|p| !p.trim().is_empty());
    let proxy = match &binding.proxy {
        Some(url) => Some(Proxy::parse(url.trim()).map_err(|e| CliError::usage(e.to_string()))?),
        None => None,
    };
    let home = ctx.open()?;
    home.bind(&binding)?;
    if let Some(name) = proxy.as_ref().and_then(Proxy::secret_name)
        && home.secret(&name)?.is_none()
    {
        eprintln!(
            "certkeeper: warning: no password is stored for the proxy user {}: store it with \
             certkeeper config egress_proxy_password --password-env VAR --proxy {}",
            name.trim_start_matches("proxy:"),
            binding.proxy.as_deref().unwrap_or_default()
        );
    }
    if ctx.json {
        output::json(&binding)?;
    } else {
        let via = binding
            .listen
            .as_deref()
            .map(|l| format!(" (the agent relays {})", shown_listen(l)))
            .unwrap_or_default();
        let who = if binding.allow.is_empty() {
            String::new()
        } else {
            format!("; only {} may use it", binding.allow.join(", "))
        };
        let through = proxy
            .map(|p| format!(" through the proxy {p}"))
            .unwrap_or_default();
        let legacy = if binding.legacy_tls {
            " over old TLS (--legacy-tls)"
        } else {
            ""
        };
        output::print_stdout(&format!(
            "bound {} -> {}{through}{legacy} with certificate {}{via}{who}\n",
            binding.name, binding.upstream, binding.cert
        ))?;
    }
    Ok(0)
}

pub fn unbind(ctx: &Context, name: &str) -> Result<u8, CliError> {
    let home = ctx.open()?;
    home.unbind(name)?;
    if ctx.json {
        output::json(&serde_json::json!({"unbound": name}))?;
    } else {
        output::print_stdout(&format!("unbound {name}\n"))?;
    }
    Ok(0)
}

pub fn list(ctx: &Context) -> Result<u8, CliError> {
    let home = ctx.open()?;
    let bindings = home.bindings()?;
    if ctx.json {
        output::json(&bindings)?;
        return Ok(0);
    }
    if bindings.is_empty() {
        eprintln!("no bindings");
    }
    let mut text = String::new();
    for b in &bindings {
        let via = b
            .proxy
            .as_deref()
            .map(|p| format!(", proxy {p}"))
            .unwrap_or_default();
        let legacy = if b.legacy_tls { ", legacy TLS" } else { "" };
        text.push_str(&format!(
            "{:<16} {:<24} -> {}  (cert {}, server CA {}{via}{legacy})\n",
            b.name,
            b.listen
                .as_deref()
                .map(shown_listen)
                .unwrap_or_else(|| "(no listener)".into()),
            b.upstream,
            b.cert,
            b.server_ca,
        ));
    }
    output::print_stdout(&text)?;
    Ok(0)
}

pub fn request(ctx: &Context, args: &RequestArgs) -> Result<u8, CliError> {
    let Plan {
        reference,
        url,
        trust,
        session_trust,
        legacy,
        from_file,
        binding_route,
    } = plan(ctx, args)?;
    let route = route(ctx, args, binding_route.as_ref())?;
    let socket = socket_path(args.socket.clone(), &ctx.home_dir);
    let (config, resolver, info) =
        agent_client_config(&socket, &reference, &trust, &[b"h2", b"http/1.1"]).map_err(|e| {
            let e = CliError::from(e);
            match (&args.cert, e.kind) {
                (Some(file), Kind::NotFound) if from_file => CliError::new(
                    Kind::NotFound,
                    format!(
                        "--cert {file}: its certificate (sha256 {reference}) is not in the home"
                    ),
                )
                .with_fix(format!(
                    "import it with its key: certkeeper import <the .pfx or key file of {file}>"
                )),
                _ => e,
            }
        })?;

    let mut call = build_call(args, url)?;
    call.route = route;
    call.handoff = Some(Handoff {
        socket,
        thumbprint: info.thumbprint.clone(),
        trust: session_trust,
        legacy,
    });
    if args.verbose {
        eprintln!(
            "* client certificate: {} (sha256 {})",
            info.subject,
            &info.thumbprint[..16]
        );
        eprintln!("* connecting to {}", call.url);
        if let Some(host) = call.url.host()
            && let Some(proxy) = call
                .route
                .proxy
                .as_ref()
                .filter(|_| !call.route.no_proxy.bypasses(host))
        {
            eprintln!("* through the proxy {proxy} (CONNECT; the TLS session runs end to end)");
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(Kind::Environment, format!("cannot start the runtime: {e}")))?;
    // Where the body goes: a file (-o), a buffer for the JSON document, or stdout.
    let body = Rc::new(RefCell::new(Vec::new()));
    let sink: Rc<RefCell<Box<dyn Write>>> = Rc::new(RefCell::new(match &args.output {
        Some(path) => Box::new(std::fs::File::create(path).map_err(|e| {
            CliError::input(format!(
                "-o {}: cannot create: {}",
                path.display(),
                super::import::io_reason(&e).trim_start_matches("cannot read: ")
            ))
        })?),
        None if ctx.json => Box::new(Shared(Rc::clone(&body))),
        None => Box::new(std::io::stdout()),
    }));
    let verbose = args.verbose;
    let include = args.include && !ctx.json;
    let asked = Arc::clone(&resolver);
    let mut on_head = |answer: &Answer| {
        if verbose {
            show_tls(answer, &asked, legacy);
        }
        if include {
            let mut head = format!("{:?} {}\r\n", answer.version, answer.status);
            for (k, v) in &answer.headers {
                head.push_str(&format!("{k}: {}\r\n", v.to_str().unwrap_or("<binary>")));
            }
            head.push_str("\r\n");
            let _ = sink.borrow_mut().write_all(head.as_bytes());
        } else if verbose {
            eprintln!("< {:?} {}", answer.version, answer.status);
            for (k, v) in &answer.headers {
                eprintln!("< {k}: {}", v.to_str().unwrap_or("<binary>"));
            }
        }
    };
    let limits = Limits {
        connect: args.connect_timeout,
        total: args.max_time,
    };
    let mut out = SharedSink(Rc::clone(&sink));
    let answer = runtime
        .block_on(send_with(
            &call,
            Arc::new(config),
            limits,
            &mut on_head,
            &mut out,
        ))
        .map_err(|e| {
            // A refused handshake: the partner's list of acceptable CAs says why.
            let mut e = CliError::from(e);
            if let Some(mismatch) = resolver.issuer_mismatch() {
                e.message.push_str(&format!(" ({mismatch})"));
            }
            e
        })?;
    drop(out);
    match sink.borrow_mut().flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(CliError::new(
                Kind::Environment,
                format!("writing the body: {e}"),
            ));
        }
        _ => {}
    }
    if ctx.json {
        output::json(&answer_json(
            &answer,
            &body.borrow(),
            args.output.as_deref(),
        ))?;
    }
    if answer.status.as_u16() >= 400 {
        if !args.silent {
            let asked = &answer.tls.asked;
            let why = if asked.unknown {
                String::new()
            } else if !asked.in_handshake && !asked.after {
                " (the partner did not ask for a client certificate on this connection)".to_string()
            } else if let Some(mismatch) = &asked.mismatch {
                format!(" ({mismatch})")
            } else if asked.after {
                format!(
                    " (the partner asked for the client certificate after the handshake \
                     ({}) and was given it)",
                    late_kind(&answer.tls.version)
                )
            } else {
                resolver
                    .issuer_mismatch()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            };
            eprintln!("certkeeper: the upstream answered {}{why}", answer.status);
        }
        if args.fail {
            return Ok(1);
        }
    }
    Ok(0)
}

/// How `request` reaches the upstream: `--proxy` (empty for none); else, for
/// `--binding` read from the home, the binding's route (`binding_route`: a proxy URL
/// and its exceptions) when it has a proxy; else curl's environment variables.
/// `--noproxy` replaces the exceptions. The proxy user's password comes from
/// `--proxy-password-env`, or for the home's owner from the home.
fn route(
    ctx: &Context,
    args: &RequestArgs,
    binding_route: Option<&(String, String)>,
) -> Result<Route, CliError> {
    let env = |name: &str| std::env::var(name).ok();
    let mut route = match (&args.proxy, binding_route) {
        (Some(url), _) if url.trim().is_empty() => Route::default(),
        (Some(url), _) => Route {
            proxy: Some(Arc::new(
                Proxy::parse(url.trim()).map_err(|e| CliError::usage(format!("--proxy: {e}")))?,
            )),
            no_proxy: NoProxy::default(),
        },
        (None, Some((url, no_proxy))) => Route {
            proxy: Some(Arc::new(
                Proxy::parse(url.trim()).map_err(|e| CliError::input(e.to_string()))?,
            )),
            no_proxy: NoProxy::parse(no_proxy),
        },
        (None, None) => {
            Route::from_env(env).map_err(|e| CliError::usage(format!("HTTPS_PROXY: {e}")))?
        }
    };
    if args.proxy.as_deref().is_some_and(|p| !p.trim().is_empty()) {
        route.no_proxy = NoProxy::parse(
            &env("no_proxy")
                .filter(|v| !v.is_empty())
                .or_else(|| env("NO_PROXY"))
                .unwrap_or_default(),
        );
    }
    if let Some(list) = &args.noproxy {
        route.no_proxy = NoProxy::parse(list);
    }
    let Some(proxy) = route.proxy.take() else {
        return Ok(route);
    };
    let mut proxy = Arc::unwrap_or_clone(proxy);
    if let Some(var) = &args.proxy_password_env {
        if proxy.user().is_none() {
            return Err(CliError::usage(format!(
                "--proxy-password-env: the proxy URL names no user (write http://user@{proxy})"
            )));
        }
        let value = std::env::var(var).map_err(|_| {
            CliError::usage(format!(
                "--proxy-password-env: environment variable {var} is not set"
            ))
        })?;
        proxy = proxy.with_password(zeroize::Zeroizing::new(value));
    } else if let Some(name) = proxy.secret_name().filter(|_| !proxy.has_password()) {
        // Only the home's owner can unseal it; anyone else gives it by variable.
        let stored = match ctx.open() {
            Ok(home) => home.secret(&name)?,
            Err(_) => None,
        };
        match stored {
            Some(secret) => {
                let text = std::str::from_utf8(&secret.value)
                    .map_err(|_| CliError::input("the stored proxy password is not UTF-8"))?;
                proxy = proxy.with_password(zeroize::Zeroizing::new(text.to_string()));
            }
            None => {
                return Err(CliError::usage(format!(
                    "no password for the proxy user {}: give it with --proxy-password-env VAR",
                    name.trim_start_matches("proxy:")
                )));
            }
        }
    }
    route.proxy = Some(Arc::new(proxy));
    Ok(route)
}

/// What a request needs before it connects: the client certificate's REF, the URL and
/// how to check the server.
struct Plan {
    reference: String,
    url: http::Uri,
    trust: ServerTrust,
    /// The same trust, as the agent takes it for a session it makes.
    session_trust: SessionTrust,
    /// `--legacy-tls`, or the binding's.
    legacy: bool,
    /// `--cert` named a certificate file (the reference is its thumbprint).
    from_file: bool,
    /// `--binding`, read from the home: the proxy URL and exceptions the binding's
    /// relay uses (its own `--proxy`, else `egress_proxy` and `egress_no_proxy`).
    binding_route: Option<(String, String)>,
}

/// Reads the binding and the trust anchors from the home when this user may open it,
/// else from the agent (a granted service account: the home stays private). The home
/// is not needed at all for `--cert REF` with `--server-ca system` or a CA file.
fn plan(ctx: &Context, args: &RequestArgs) -> Result<Plan, CliError> {
    // curl's --cacert is --server-ca FILE.
    let given_ca = match &args.cacert {
        Some(file) => Some(cacert(file)?),
        None => args.server_ca.clone(),
    };
    // Never a file for a binding (a bare word is a REF of the home, see is_path).
    let local_ca = |ca: &str| ca == "system" || certkeeper_egress::tls::is_path(ca);
    let needs_home =
        args.binding.is_some() || (!args.insecure && !given_ca.as_deref().is_some_and(local_ca));
    let mut access = if needs_home {
        Some(ctx.access(args.socket.clone())?)
    } else {
        None
    };
    let mut binding_route = None;
    let mut legacy = args.legacy_tls;
    let (reference, url, server_ca) = match &args.binding {
        Some(name) => {
            let (cert, upstream, server_ca) = match access.as_mut() {
                Some(Access::Home(home)) => {
                    let b = home.binding(name)?;
                    binding_route = Some(match b.proxy.clone() {
                        Some(own) => (own, String::new()),
                        None => (
                            home.setting(certkeeper_store::Setting::EgressProxy)?,
                            home.setting(certkeeper_store::Setting::EgressNoProxy)?,
                        ),
                    })
                    .filter(|(url, _)| !url.trim().is_empty());
                    legacy |= b.legacy_tls;
                    (b.cert, b.upstream, b.server_ca)
                }
                Some(Access::Agent(client)) => {
                    let b = client.binding(name)?;
                    binding_route = b.proxy.map(|url| (url, b.no_proxy));
                    legacy |= b.legacy_tls;
                    (b.thumbprint, b.upstream, b.server_ca)
                }
                None => unreachable!("a binding needs the home or the agent"),
            };
            let url = if args.url.starts_with("https://") {
                args.url.clone()
            } else {
                format!(
                    "{}{}",
                    upstream.trim_end_matches('/'),
                    ensure_slash(&args.url)
                )
            };
            (cert, url, given_ca.unwrap_or(server_ca))
        }
        None => {
            let cert = args.cert.clone().ok_or_else(|| {
                CliError::usage("give the client certificate with --cert REF or --binding NAME")
            })?;
            (
                cert,
                args.url.clone(),
                given_ca.unwrap_or_else(|| "root".into()),
            )
        }
    };
    // --cert also takes the certificate's file: its entry is found by thumbprint.
    let from_file = args.cert.is_some() && std::path::Path::new(&reference).is_file();
    let reference = if from_file {
        thumbprint_of(&reference)?
    } else {
        reference
    };
    let url: http::Uri = url
        .parse()
        .map_err(|e| CliError::usage(format!("{url:?} is not a URL: {e}")))?;
    let trust = if args.insecure {
        eprintln!(
            "certkeeper: WARNING: --insecure: the server's certificate is NOT verified; anyone on the path can read and change this call"
        );
        ServerTrust::Insecure
    } else if local_ca(&server_ca) {
        ServerTrust::named(None, &server_ca).map_err(|e| CliError::usage(e.to_string()))?
    } else {
        if access.is_none() {
            access = Some(ctx.access(args.socket.clone())?);
        }
        match access.as_mut() {
            Some(Access::Home(home)) => ServerTrust::named(Some(home), &server_ca)
                .map_err(|e| CliError::usage(e.to_string()))?,
            Some(Access::Agent(client)) => {
                let anchors = client.trust(&server_ca)?;
                if anchors.is_empty() {
                    return Err(CliError::usage(
                        "the home's root store is empty: ask the administrator to import the \
                         partner's root CA (certkeeper import FILE --store root), or use \
                         --server-ca system or a CA file",
                    ));
                }
                ServerTrust::Roots(
                    anchors
                        .into_iter()
                        .map(rustls_pki_types::CertificateDer::from)
                        .collect(),
                )
            }
            None => unreachable!("access was just set"),
        }
    };
    let session_trust = trust.for_agent(&server_ca);
    Ok(Plan {
        reference,
        url,
        trust,
        session_trust,
        legacy,
        from_file,
        binding_route,
    })
}

/// The `request --json` document.
fn answer_json(
    answer: &Answer,
    body: &[u8],
    written_to: Option<&std::path::Path>,
) -> serde_json::Value {
    use base64::Engine as _;
    // One string per header name; repeated fields joined with ", " (RFC 9110 5.3).
    let mut headers = serde_json::Map::new();
    for name in answer.headers.keys() {
        let values: Vec<String> = answer
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        headers.insert(name.to_string(), values.join(", ").into());
    }
    let (body, base64) = match (written_to, std::str::from_utf8(body)) {
        (Some(_), _) => (serde_json::Value::Null, false),
        (None, Ok(text)) => (text.into(), false),
        (None, Err(_)) => (
            base64::engine::general_purpose::STANDARD
                .encode(body)
                .into(),
            true,
        ),
    };
    let chain: Vec<serde_json::Value> = answer
        .tls
        .server_chain
        .iter()
        .map(|der| match certkeeper_core::Certificate::from_der(der.as_ref()) {
            Ok(c) => serde_json::json!({
                "subject": c.subject, "issuer": c.issuer, "not_after": output::rfc3339(c.not_after),
            }),
            Err(_) => serde_json::json!({"subject": null, "issuer": null, "not_after": null}),
        })
        .collect();
    serde_json::json!({
        "status": answer.status.as_u16(),
        "version": format!("{:?}", answer.version),
        "headers": headers,
        "body": body,
        "body_base64": base64,
        "output": written_to,
        "tls": {
            "version": answer.tls.version,
            "cipher": answer.tls.cipher,
            "alpn": answer.tls.alpn,
            "client_certificate_requested": answer.tls.asked.in_handshake || answer.tls.asked.after,
            "client_certificate_requested_after_handshake":
                (!answer.tls.asked.unknown).then_some(answer.tls.asked.after),
            "library": answer.tls.library,
            "server_chain": chain,
        },
    })
}

/// Writes into a buffer shared with the caller.
struct Shared(Rc<RefCell<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes into the sink the head (-i) is also written to.
struct SharedSink(Rc<RefCell<Box<dyn Write>>>);

impl Write for SharedSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.borrow_mut().flush()
    }
}

/// `--cacert FILE`: the file as --server-ca, after checking it can be read.
fn cacert(file: &std::path::Path) -> Result<String, CliError> {
    std::fs::File::open(file).map_err(|e| {
        CliError::input(format!(
            "--cacert {}: {}",
            file.display(),
            super::import::io_reason(&e)
        ))
    })?;
    // Written as a path, so that it is read as a file, never as a REF.
    let shown = file.display().to_string();
    Ok(if certkeeper_egress::tls::is_path(&shown) {
        shown
    } else {
        format!("./{shown}")
    })
}

/// `--cert FILE`: the SHA-256 thumbprint of the (first) certificate in the file, so
/// that its entry in the home is used.
fn thumbprint_of(file: &str) -> Result<String, CliError> {
    let bytes = std::fs::read(file).map_err(|e| {
        CliError::input(super::import::io_reason(&e)).context(format!("--cert {file}"))
    })?;
    let contents = certkeeper_core::read_file(&bytes, None).map_err(|e| {
        CliError::from(e)
            .context(format!("--cert {file}"))
            .with_fix(
                "give the certificate's file (PEM or DER), or its REF (certkeeper list shows them)",
            )
    })?;
    contents
        .certs
        .first()
        .map(|c| c.cert.thumbprint.clone())
        .ok_or_else(|| CliError::input(format!("--cert {file}: holds no certificate")))
}

/// A listen address as applications use it: `http://127.0.0.1:8443` or
/// `unix:/run/certkeeper/partner.sock`.
fn shown_listen(listen: &str) -> String {
    if listen.starts_with("unix:") {
        listen.to_string()
    } else {
        format!("http://{listen}")
    }
}

fn ensure_slash(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

/// How a partner asks for the certificate after the handshake, by TLS version.
fn late_kind(version: &str) -> &'static str {
    if version.starts_with("TLSv1_3") {
        "post-handshake authentication"
    } else {
        "renegotiation"
    }
}

fn show_tls(answer: &Answer, resolver: &FixedClientCert, legacy: bool) {
    let tls = &answer.tls;
    eprintln!(
        "* TLS {} with {}, ALPN {} ({})",
        tls.version,
        tls.cipher,
        tls.alpn.as_deref().unwrap_or("none"),
        tls.library
    );
    if legacy {
        eprintln!("* --legacy-tls: the agent made this session with OpenSSL");
    } else if tls.library == "OpenSSL" {
        eprintln!(
            "* the partner did not ask for a client certificate in the handshake: the agent \
             made this session with OpenSSL, which answers a request for it after the handshake"
        );
    }
    if tls.asked.after {
        let from = if tls.asked.accepted.is_empty() {
            "(from any CA)".to_string()
        } else {
            format!("from: {}", tls.asked.accepted.join("; "))
        };
        eprintln!(
            "* the partner asked for the client certificate after the handshake ({}) {from}; \
             presented",
            late_kind(&tls.version)
        );
        if let Some(mismatch) = &tls.asked.mismatch {
            eprintln!("* warning: {mismatch}");
        }
    } else if tls.asked.unknown {
        eprintln!(
            "* whether the partner asked for the client certificate after the handshake is \
             unknown: the agent could not say"
        );
    } else if tls.library == "OpenSSL" && tls.asked.in_handshake {
        eprintln!("* the server asked for a client certificate: presented");
    } else if tls.library == "OpenSSL" {
        eprintln!("* the partner did not ask for a client certificate on this path");
    } else if tls.asked.in_handshake {
        let accepted = resolver.accepted_issuers();
        if accepted.is_empty() {
            eprintln!("* the server asked for a client certificate (from any CA): presented");
        } else {
            eprintln!(
                "* the server asked for a client certificate from: {}; presented",
                accepted.join("; ")
            );
        }
        if let Some(mismatch) = resolver.issuer_mismatch() {
            eprintln!("* warning: {mismatch}");
        }
    } else {
        eprintln!("* the partner did not ask for a client certificate on this path");
    }
    eprintln!("* server certificate chain:");
    for (i, der) in tls.server_chain.iter().enumerate() {
        match certkeeper_core::Certificate::from_der(der.as_ref()) {
            Ok(c) => eprintln!(
                "*   {i} {} (issuer {}, until {})",
                escaped(&c.subject),
                escaped(&c.issuer),
                output::human_time(c.not_after)
            ),
            Err(_) => eprintln!("*   {i} (unparsable certificate)"),
        }
    }
}

fn build_call(args: &RequestArgs, url: http::Uri) -> Result<Call, CliError> {
    let body = match &args.data {
        None => Bytes::new(),
        Some(d) => match d.strip_prefix('@') {
            Some(file) => Bytes::from(std::fs::read(file).map_err(|e| {
                CliError::input(format!("-d @{file}: {}", super::import::io_reason(&e)))
            })?),
            None => Bytes::from(d.clone()),
        },
    };
    let soap = args.soap_action.is_some() || args.soap12;
    let method = match &args.method {
        Some(m) => Method::from_bytes(m.to_uppercase().as_bytes())
            .map_err(|_| CliError::usage(format!("-X {m}: not an HTTP method")))?,
        None if args.data.is_some() || soap => Method::POST,
        None => Method::GET,
    };
    let mut headers: Vec<(HeaderName, HeaderValue)> = Vec::new();
    let header = |name: &str, value: &str| -> Result<(HeaderName, HeaderValue), CliError> {
        Ok((
            HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| CliError::usage(format!("bad header name {name:?}")))?,
            HeaderValue::from_str(value.trim())
                .map_err(|_| CliError::usage(format!("bad header value {value:?}")))?,
        ))
    };
    if args.soap12 {
        let ct = match &args.soap_action {
            Some(a) => format!("application/soap+xml; charset=utf-8; action=\"{a}\""),
            None => "application/soap+xml; charset=utf-8".into(),
        };
        headers.push(header("content-type", &ct)?);
    } else if let Some(action) = &args.soap_action {
        headers.push(header("content-type", "text/xml; charset=utf-8")?);
        headers.push(header("soapaction", &format!("\"{action}\""))?);
    }
    for h in &args.headers {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| CliError::usage(format!("-H {h:?}: write \"Name: value\"")))?;
        headers.retain(|(name, _)| !name.as_str().eq_ignore_ascii_case(k.trim()));
        headers.push(header(k, v)?);
    }
    if !body.is_empty() && !headers.iter().any(|(k, _)| k == http::header::CONTENT_TYPE) {
        headers.push(header("content-type", "application/x-www-form-urlencoded")?);
    }
    Ok(Call {
        url,
        method,
        headers,
        body,
        route: Route::default(),
        handoff: None,
    })
}
