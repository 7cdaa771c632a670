//! One mutual-TLS request, curl-like: the connection is made by hand (TCP, then
//! rustls, then hyper on top) so that `-v` can show the TLS version, cipher suite,
//! the client certificate presented and the server's chain.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use rustls_pki_types::CertificateDer;

use crate::EgressError;
use crate::failure::explain;
use crate::pool::RESPONSE_TIMEOUT;

/// A request to make.
#[derive(Debug, Clone)]
pub struct Call {
    /// The https URL.
    pub url: Uri,
    /// The method.
    pub method: Method,
    /// Headers, in order.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The body (empty for none).
    pub body: Bytes,
    /// Directly or through a forward proxy (curl's `HTTPS_PROXY` and `NO_PROXY`).
    pub route: crate::tunnel::Route,
    /// How the agent makes the session instead when rustls cannot serve the partner
    /// (it asks for the certificate after the handshake, or `--legacy-tls`); `None`:
    /// rustls only.
    pub handoff: Option<Handoff>,
}

/// The agent's OpenSSL session ([`certkeeper_agent::handoff`]), for a call whose key
/// is used through the agent.
#[derive(Debug, Clone)]
pub struct Handoff {
    /// The agent's socket.
    pub socket: std::path::PathBuf,
    /// The client certificate's thumbprint.
    pub thumbprint: String,
    /// The partner's certificate is checked as the call's own trust says.
    pub trust: certkeeper_agent::protocol::SessionTrust,
    /// `--legacy-tls`: the session is the agent's from the start.
    pub legacy: bool,
}

/// What the TLS handshake settled.
#[derive(Debug, Clone, Default)]
pub struct TlsInfo {
    /// "TLSv1_3".
    pub version: String,
    /// "TLS13_AES_256_GCM_SHA384".
    pub cipher: String,
    /// "h2" or "http/1.1" (or none).
    pub alpn: Option<String>,
    /// The server's chain, leaf first.
    pub server_chain: Vec<CertificateDer<'static>>,
    /// "rustls" or "OpenSSL".
    pub library: &'static str,
    /// Whether the partner asked for the client certificate.
    pub asked: CertificateAsked,
}

impl TlsInfo {
    /// As the agent's `tls_session` answers it (its `report` name is the agent's to
    /// fill in).
    pub fn into_session(self) -> certkeeper_agent::protocol::Session {
        use base64::Engine as _;
        certkeeper_agent::protocol::Session {
            version: self.version,
            cipher: self.cipher,
            alpn: self.alpn,
            server_chain: self
                .server_chain
                .iter()
                .map(|c| base64::engine::general_purpose::STANDARD.encode(c))
                .collect(),
            library: self.library.to_string(),
            asked_in_handshake: self.asked.in_handshake,
            report: String::new(),
        }
    }

    /// The agent's `tls_session` answer, as a call shows it.
    pub fn from_session(session: certkeeper_agent::protocol::Session) -> TlsInfo {
        use base64::Engine as _;
        TlsInfo {
            version: session.version,
            cipher: session.cipher,
            alpn: session.alpn,
            server_chain: session
                .server_chain
                .iter()
                .filter_map(|c| base64::engine::general_purpose::STANDARD.decode(c).ok())
                .map(CertificateDer::from)
                .collect(),
            library: "OpenSSL",
            asked: CertificateAsked {
                in_handshake: session.asked_in_handshake,
                ..CertificateAsked::default()
            },
        }
    }
}

/// Whether the partner asked for the client certificate: in the handshake, and after
/// it (TLS 1.2 renegotiation or TLS 1.3 post-handshake authentication, answered by
/// the agent's OpenSSL session), up to the answer's head.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateAsked {
    /// In the handshake.
    pub in_handshake: bool,
    /// After it.
    pub after: bool,
    /// After it: the CAs the partner named, as text (empty: any).
    pub accepted: Vec<String>,
    /// After it: "the partner accepts certificates from: ...; ours is issued by ..."
    /// when none of those issued ours.
    pub mismatch: Option<String>,
    /// The agent could not say what was asked after the handshake (`after` is then
    /// false but means nothing).
    pub unknown: bool,
}

/// The answer's head.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status.
    pub status: http::StatusCode,
    /// HTTP version.
    pub version: http::Version,
    /// Headers.
    pub headers: http::HeaderMap,
    /// The TLS details.
    pub tls: TlsInfo,
}

/// Time limits of one call (curl's `--connect-timeout` and `--max-time`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// For the TCP connection and the TLS handshake together.
    pub connect: Option<Duration>,
    /// For the whole call, up to the last byte of the body.
    pub total: Option<Duration>,
}

/// Makes the call; the response body is written to `out` as it arrives; `head` is
/// called with the response head before the body (for `-i` and `-v`).
pub async fn send(
    call: &Call,
    config: Arc<ClientConfig>,
    head: &mut dyn FnMut(&Answer),
    out: &mut dyn Write,
) -> Result<Answer, EgressError> {
    send_with(call, config, Limits::default(), head, out).await
}

/// [`send`] within time limits.
pub async fn send_with(
    call: &Call,
    config: Arc<ClientConfig>,
    limits: Limits,
    head: &mut dyn FnMut(&Answer),
    out: &mut dyn Write,
) -> Result<Answer, EgressError> {
    let Some(total) = limits.total else {
        return exchange(call, config, limits.connect, head, out).await;
    };
    tokio::time::timeout(total, exchange(call, config, limits.connect, head, out))
        .await
        .unwrap_or_else(|_| {
            Err(EgressError::Call(format!(
                "{}: the call did not finish within {}",
                call.url,
                seconds(total)
            )))
        })
}

/// "2 s", "0.5 s".
fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

async fn exchange(
    call: &Call,
    config: Arc<ClientConfig>,
    connect: Option<Duration>,
    head: &mut dyn FnMut(&Answer),
    out: &mut dyn Write,
) -> Result<Answer, EgressError> {
    let host = call
        .url
        .host()
        .ok_or_else(|| EgressError::Config(format!("{}: no host", call.url)))?;
    if call.url.scheme_str() != Some("https") {
        return Err(EgressError::Config(format!(
            "{}: certkeeper calls https:// URLs",
            call.url
        )));
    }
    let port = call.url.port_u16().unwrap_or(443);
    let target = format!("{host}:{port}");
    let endpoint = call.route.endpoint(host);
    let connected = async {
        match &call.handoff {
            Some(handoff) if handoff.legacy => through_agent(handoff, &endpoint, port).await,
            handoff => {
                let (made, asked) =
                    crate::tls::watch_for_request(crate::tls::connect(&endpoint, port, config))
                        .await;
                let tls = made?;
                match handoff {
                    // The partner did not ask for the certificate in the handshake: it
                    // may ask later, which only the agent's OpenSSL session answers.
                    Some(handoff) if !asked && tls.full_handshake() => {
                        drop(tls);
                        through_agent(handoff, &endpoint, port).await
                    }
                    _ => {
                        let mut info = tls.info();
                        info.asked.in_handshake = asked;
                        Ok((info, Connected::Here(tls)))
                    }
                }
            }
        }
    };
    let (info, io) = match connect {
        None => connected.await?,
        Some(limit) => tokio::time::timeout(limit, connected).await.map_err(|_| {
            EgressError::Call(format!(
                "could not connect to {target} (TCP and TLS) within {}",
                seconds(limit)
            ))
        })??,
    };
    match io {
        Connected::Here(tls) => {
            exchange_over(call, tls, info, None, host, &target, head, out).await
        }
        Connected::Agent(unix, report) => {
            let report = call.handoff.as_ref().map(|h| (h.socket.clone(), report));
            exchange_over(call, unix, info, report, host, &target, head, out).await
        }
    }
}

/// What the partner of the agent's open session (`report`, on the agent at `socket`)
/// asked of the certificate after the handshake; nothing when the agent cannot say.
async fn asked_after(
    socket: std::path::PathBuf,
    report: String,
) -> Option<certkeeper_agent::protocol::SessionReport> {
    tokio::task::spawn_blocking(move || {
        certkeeper_agent::AgentClient::connect(&socket)
            .and_then(|mut agent| agent.session_report(&report))
            .ok()
    })
    .await
    .ok()
    .flatten()
}

/// Where the session is: here (rustls), or in the agent (its plaintext over the
/// agent's socket).
enum Connected {
    Here(crate::tls::Stream),
    /// The plaintext, and the name to ask the agent about the session with.
    Agent(tokio::net::UnixStream, String),
}

/// Connects to the partner (through the route's proxy, if any) and hands the
/// connection to the agent, which makes the TLS session with OpenSSL.
async fn through_agent(
    handoff: &Handoff,
    endpoint: &crate::tunnel::Endpoint,
    port: u16,
) -> Result<(TlsInfo, Connected), EgressError> {
    use crate::tunnel::Destination;
    let tcp = crate::tls::open(endpoint, port)
        .await?
        .into_std()
        .map_err(|e| EgressError::Call(format!("the connection to {}: {e}", endpoint.host())))?;
    let request = certkeeper_agent::protocol::Request::TlsSession {
        thumbprint: handoff.thumbprint.clone(),
        host: endpoint.host().to_string(),
        port,
        trust: handoff.trust.clone(),
        alpn: crate::tls_openssl::ALPN
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect(),
        legacy: handoff.legacy,
    };
    let socket = handoff.socket.clone();
    let (session, unix) = tokio::task::spawn_blocking(move || {
        use std::os::fd::AsFd;
        let client = certkeeper_agent::AgentClient::connect(&socket)?;
        // Our copy of the connection is closed when this returns: the agent's is the
        // only one, so the partner sees the connection end when the session does.
        client.tls_session(request, tcp.as_fd())
    })
    .await
    .map_err(|e| EgressError::Call(e.to_string()))?
    .map_err(|e| match e {
        certkeeper_agent::ClientError::Agent { message, .. } => EgressError::Call(message),
        e => EgressError::Agent(e),
    })?;
    unix.set_nonblocking(true)
        .map_err(|e| EgressError::Call(e.to_string()))?;
    let unix =
        tokio::net::UnixStream::from_std(unix).map_err(|e| EgressError::Call(e.to_string()))?;
    let report = session.report.clone();
    let info = TlsInfo::from_session(session);
    Ok((info, Connected::Agent(unix, report)))
}

/// The HTTP exchange over a TLS session's plaintext.
#[allow(clippy::too_many_arguments)]
async fn exchange_over<IO>(
    call: &Call,
    io: IO,
    mut info: TlsInfo,
    report: Option<(std::path::PathBuf, String)>,
    host: &str,
    target: &str,
    head: &mut dyn FnMut(&Answer),
    out: &mut dyn Write,
) -> Result<Answer, EgressError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let fail = |e: &(dyn std::error::Error + 'static)| EgressError::Call(explain(e, target));
    let h2 = info.alpn.as_deref() == Some("h2");

    let mut builder = Request::builder().method(call.method.clone());
    builder = if h2 {
        builder.uri(call.url.clone())
    } else {
        let pq = call.url.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let host_header = match call.url.port_u16() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        builder.uri(pq).header(http::header::HOST, host_header)
    };
    for (k, v) in &call.headers {
        builder = builder.header(k, v);
    }
    let request = builder
        .body(Full::new(call.body.clone()))
        .map_err(|e| EgressError::Config(format!("request: {e}")))?;

    let io = TokioIo::new(io);
    let response_future = async {
        if h2 {
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .map_err(|e| fail(&e))?;
            tokio::spawn(conn);
            sender.send_request(request).await.map_err(|e| fail(&e))
        } else {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|e| fail(&e))?;
            tokio::spawn(conn);
            sender.send_request(request).await.map_err(|e| fail(&e))
        }
    };
    let response = tokio::time::timeout(RESPONSE_TIMEOUT, response_future)
        .await
        .map_err(|_| {
            EgressError::Call(format!(
                "{target} sent no response within {} s",
                RESPONSE_TIMEOUT.as_secs()
            ))
        })??;
    let (parts, mut body) = response.into_parts();
    if let Some((socket, report)) = report {
        match asked_after(socket, report).await {
            Some(report) => {
                info.asked.after = report.asked_after;
                info.asked.accepted = report.accepted;
                info.asked.mismatch = report.mismatch;
            }
            None => info.asked.unknown = true,
        }
    }
    let answer = Answer {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        tls: info,
    };
    head(&answer);
    while let Some(frame) = tokio::time::timeout(RESPONSE_TIMEOUT, body.frame())
        .await
        .map_err(|_| EgressError::Call(format!("{target} stopped sending the body (timeout)")))?
    {
        let frame = frame.map_err(|e| fail(&e))?;
        if let Some(data) = frame.data_ref() {
            match out.write_all(data) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
                Err(e) => return Err(EgressError::Call(format!("writing the body: {e}"))),
            }
        }
    }
    let _ = out.flush();
    Ok(answer)
}
