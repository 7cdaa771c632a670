//! A binding's relay: plain HTTP on loopback in, mutual TLS to the upstream out.
//! Upstream connections are pooled and kept alive (HTTP/2 when the upstream offers
//! it, else HTTP/1.1), TLS sessions resumed, bodies streamed both ways; every upstream
//! failure becomes a 502 whose plain-text body says what failed, plus one log line.

use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::EgressError;
use crate::failure::explain;

/// Response bodies: the upstream's stream, or our own text.
pub type Body = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// How long to wait for a TCP connection to the upstream.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the upstream's response headers.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an idle upstream connection stays in the pool.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// One upstream with its connection pool.
pub struct Upstream {
    name: String,
    base: Uri,
    target: String,
    client: Client<HttpsConnector<HttpConnector>, Incoming>,
}

impl Upstream {
    /// A pool to `base_url` (https) with `config` (client certificate and trust).
    pub fn new(
        name: &str,
        base_url: &str,
        config: rustls::ClientConfig,
    ) -> Result<Self, EgressError> {
        let base: Uri = base_url
            .parse()
            .map_err(|e| EgressError::Config(format!("upstream {base_url:?}: {e}")))?;
        let authority = base
            .authority()
            .ok_or_else(|| EgressError::Config(format!("upstream {base_url:?} has no host")))?;
        let target = match authority.port() {
            Some(_) => authority.to_string(),
            None => format!("{}:443", authority.host()),
        };
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_max_idle_per_host(256)
            .build(https);
        Ok(Upstream {
            name: name.to_string(),
            base,
            target,
            client,
        })
    }

    fn upstream_uri(&self, incoming: &Uri) -> Result<Uri, http::Error> {
        let prefix = self.base.path().trim_end_matches('/');
        let rest = incoming.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let mut parts = self.base.clone().into_parts();
        parts.path_and_query = Some(format!("{prefix}{rest}").parse()?);
        Ok(Uri::from_parts(parts)?)
    }

    /// Relays one request.
    pub async fn forward(&self, request: Request<Incoming>) -> Response<Body> {
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let (mut parts, body) = request.into_parts();
        match self.upstream_uri(&parts.uri) {
            Ok(uri) => parts.uri = uri,
            Err(e) => {
                return self.fail(
                    &method,
                    &path,
                    StatusCode::BAD_REQUEST,
                    &format!("bad request path: {e}"),
                );
            }
        }
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.remove(header::HOST);
        parts.version = http::Version::HTTP_11;
        let upstream_request = Request::from_parts(parts, body);
        match tokio::time::timeout(RESPONSE_TIMEOUT, self.client.request(upstream_request)).await {
            Ok(Ok(response)) => {
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, body.map_err(Into::into).boxed())
            }
            Ok(Err(e)) => {
                let reason = explain(&e, &self.target);
                self.fail(&method, &path, StatusCode::BAD_GATEWAY, &reason)
            }
            Err(_) => {
                let reason = format!(
                    "{} sent no response within {} s (upstream timeout)",
                    self.target,
                    RESPONSE_TIMEOUT.as_secs()
                );
                self.fail(&method, &path, StatusCode::GATEWAY_TIMEOUT, &reason)
            }
        }
    }

    fn fail(
        &self,
        method: &http::Method,
        path: &str,
        status: StatusCode,
        reason: &str,
    ) -> Response<Body> {
        eprintln!(
            "certkeeper egress {}: {method} {path}: {}: {reason}",
            self.name,
            status.as_u16()
        );
        let body = Full::new(Bytes::from(format!(
            "certkeeper binding {}: {reason}\n",
            self.name
        )))
        .map_err(|never: Infallible| match never {})
        .boxed();
        let mut response = Response::new(body);
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

/// Headers that belong to one connection, not to the message (RFC 9110 7.6.1).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

/// The upstream a listener currently relays to; swapped when its binding changes.
pub type Current = Arc<RwLock<Arc<Upstream>>>;

/// Serves plain HTTP/1.1 on `listener`, relaying to the current upstream, until
/// `shutdown` turns true.
pub async fn serve(listener: TcpListener, current: Current, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let current = Arc::clone(&current);
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let upstream = current.read().map(|u| Arc::clone(&u)).unwrap_or_else(|p| Arc::clone(&p.into_inner()));
                        async move { Ok::<_, Infallible>(upstream.forward(request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    break;
                }
            }
        }
    }
}
