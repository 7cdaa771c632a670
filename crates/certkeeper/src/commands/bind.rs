//! `bind`, `unbind`, `bindings` and `request`.

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use certkeeper_egress::request::{Answer, Call, send};
use certkeeper_egress::tls::{ServerTrust, agent_client_config};
use certkeeper_store::Binding;
use http::{HeaderName, HeaderValue, Method};

use super::agent::socket_path;
use super::{Access, Context};
use crate::cli::RequestArgs;
use crate::error::CliError;
use crate::output;

pub fn bind(
    ctx: &Context,
    name: String,
    cert: String,
    upstream: String,
    listen: Option<String>,
    server_ca: String,
) -> Result<u8, CliError> {
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
    let home = ctx.open()?;
    let binding = Binding {
        name,
        cert,
        upstream,
        listen,
        server_ca,
    };
    home.bind(&binding)?;
    if ctx.json {
        output::json(&binding)?;
    } else {
        let via = binding
            .listen
            .as_deref()
            .map(|l| format!(" (the agent relays http://{l})"))
            .unwrap_or_default();
        output::print_stdout(&format!(
            "bound {} -> {} with certificate {}{via}\n",
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
        text.push_str(&format!(
            "{:<16} {:<24} -> {}  (cert {}, server CA {})\n",
            b.name,
            b.listen
                .as_deref()
                .map(|l| format!("http://{l}"))
                .unwrap_or_else(|| "(no listener)".into()),
            b.upstream,
            b.cert,
            b.server_ca
        ));
    }
    output::print_stdout(&text)?;
    Ok(0)
}

pub fn request(ctx: &Context, args: &RequestArgs) -> Result<u8, CliError> {
    let plan = plan(ctx, args)?;
    let (reference, url, trust) = (plan.reference, plan.url, plan.trust);
    let socket = socket_path(args.socket.clone(), &ctx.home_dir);
    let (config, resolver, info) =
        agent_client_config(&socket, &reference, &trust, &[b"h2", b"http/1.1"])?;

    let call = build_call(args, url)?;
    if args.verbose {
        eprintln!(
            "* client certificate: {} (sha256 {})",
            info.subject,
            &info.thumbprint[..16]
        );
        eprintln!("* connecting to {}", call.url);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::usage(format!("cannot start the runtime: {e}")))?;
    let verbose = args.verbose;
    let include = args.include;
    let asked = Arc::clone(&resolver);
    let mut on_head = |answer: &Answer| {
        if verbose {
            show_tls(answer, asked.was_asked());
        }
        if include {
            let mut head = format!("{:?} {}\r\n", answer.version, answer.status);
            for (k, v) in &answer.headers {
                head.push_str(&format!("{k}: {}\r\n", v.to_str().unwrap_or("<binary>")));
            }
            head.push_str("\r\n");
            let _ = output::print_stdout(&head);
        } else if verbose {
            eprintln!("< {:?} {}", answer.version, answer.status);
            for (k, v) in &answer.headers {
                eprintln!("< {k}: {}", v.to_str().unwrap_or("<binary>"));
            }
        }
    };
    let mut stdout = std::io::stdout().lock();
    let answer = runtime
        .block_on(send(&call, Arc::new(config), &mut on_head, &mut stdout))
        .map_err(|e| CliError::usage(e.to_string()))?;
    let _ = stdout.flush();
    if answer.status.as_u16() >= 400 {
        eprintln!("certkeeper: the upstream answered {}", answer.status);
        if args.fail {
            return Ok(1);
        }
    }
    Ok(0)
}

/// What a request needs before it connects: the client certificate's REF, the URL and
/// how to check the server.
struct Plan {
    reference: String,
    url: http::Uri,
    trust: ServerTrust,
}

/// Reads the binding and the trust anchors from the home when this user may open it,
/// else from the agent (a granted service account: the home stays private). The home
/// is not needed at all for `--cert REF` with `--server-ca system` or a CA file.
fn plan(ctx: &Context, args: &RequestArgs) -> Result<Plan, CliError> {
    let given_ca = args.server_ca.clone();
    // Never a file for a binding (a bare word is a REF of the home, see is_path).
    let local_ca = |ca: &str| ca == "system" || certkeeper_egress::tls::is_path(ca);
    let needs_home =
        args.binding.is_some() || (!args.insecure && !given_ca.as_deref().is_some_and(local_ca));
    let mut access = if needs_home {
        Some(ctx.access(args.socket.clone())?)
    } else {
        None
    };
    let (reference, url, server_ca) = match &args.binding {
        Some(name) => {
            let (cert, upstream, server_ca) = match access.as_mut() {
                Some(Access::Home(home)) => {
                    let b = home.binding(name)?;
                    (b.cert, b.upstream, b.server_ca)
                }
                Some(Access::Agent(client)) => {
                    let b = client.binding(name)?;
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
    Ok(Plan {
        reference,
        url,
        trust,
    })
}

fn ensure_slash(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

fn show_tls(answer: &Answer, asked: bool) {
    let tls = &answer.tls;
    eprintln!(
        "* TLS {} with {}, ALPN {}",
        tls.version,
        tls.cipher,
        tls.alpn.as_deref().unwrap_or("none")
    );
    if asked {
        eprintln!("* the server asked for a client certificate: presented");
    } else {
        eprintln!("* the server did not ask for a client certificate");
    }
    eprintln!("* server certificate chain:");
    for (i, der) in tls.server_chain.iter().enumerate() {
        match certkeeper_core::Certificate::from_der(der.as_ref()) {
            Ok(c) => eprintln!(
                "*   {i} {} (issuer {}, until {})",
                c.subject,
                c.issuer,
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
            Some(file) => Bytes::from(
                std::fs::read(file).map_err(|e| CliError::usage(format!("-d @{file}: {e}")))?,
            ),
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
    })
}
