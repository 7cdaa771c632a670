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
    let fail = |e: &(dyn std::error::Error + 'static)| EgressError::Call(explain(e, &target));
    let endpoint = call.route.endpoint(host);
    let tls = match connect {
        None => crate::tls::connect(&endpoint, port, config).await?,
        Some(limit) => tokio::time::timeout(limit, crate::tls::connect(&endpoint, port, config))
            .await
            .map_err(|_| {
                EgressError::Call(format!(
                    "could not connect to {target} (TCP and TLS) within {}",
                    seconds(limit)
                ))
            })??,
    };
    let info = tls.info();
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

    let io = TokioIo::new(tls);
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
