//! A binding's relay: plain HTTP on loopback in, mutual TLS to the upstream out.
//! Upstream connections are pooled and kept alive (HTTP/2 when the upstream offers
//! it, else HTTP/1.1), TLS sessions resumed, bodies streamed both ways; every upstream
//! failure becomes a 502 whose plain-text body says what failed, plus one log line.
//!
//! Written by hand on hyper's connection API rather than hyper-util's pooled client,
//! because of where the time goes: with HTTP/1.1 an application's keep-alive
//! connection gets an upstream connection of its own, driven by the same task that
//! serves the application's connection ([`Lane`]). A request then never hops to a
//! connection task and back, and needs no pool lookup; the pooled client's hops cost
//! about a fifth of the relay's CPU per small request (bench/egress.sh). When the
//! application's connection closes, its upstream connection goes back to an idle pool
//! ([`Upstream::checkin`]) for the next one, so applications that open a connection
//! per call still reuse warm upstream connections. HTTP/2 upstreams get one shared,
//! multiplexed connection.

use std::convert::Infallible;
use std::fmt::Display;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::app::{AppStream, Gate, Listener, refuse};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::PathAndQuery;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::watch;

use crate::EgressError;
use crate::failure::explain;
use crate::framing::{ConnectionOptions, is_hop_by_hop};
use crate::tls::Stream;

pub use crate::tls::CONNECT_TIMEOUT;

/// Response bodies: the upstream's stream, or our own text.
pub type Body = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// How long to wait for the upstream's response headers, unless the home's
/// `upstream_timeout` setting says otherwise.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an idle upstream connection stays in the pool.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// How many more connections a request not yet written may be tried on when the one
/// it was given turns out closed.
pub(crate) const MAX_RETRIES: u32 = 2;
/// How long an answer the application left may take to finish in the background
/// before its connection is closed instead of pooled.
pub(crate) const FINISH_WITHIN: Duration = Duration::from_secs(2);
/// How often idle upstream connections are checked.
const SWEEP_EVERY: Duration = Duration::from_secs(15);
/// How many idle upstream connections the pool keeps.
pub const MAX_IDLE: usize = 256;

type Tls = TokioIo<Stream>;

/// One upstream: where it is, how to reach it, and its idle connections.
pub struct Upstream {
    pub(crate) name: String,
    /// "host:port", for messages.
    pub(crate) target: String,
    /// The upstream's host, and the forward proxy on the way if any.
    pub(crate) host: crate::tunnel::Endpoint,
    pub(crate) port: u16,
    scheme_authority: (http::uri::Scheme, http::uri::Authority),
    /// The upstream URL's path without its trailing slash ("" for none): requests
    /// go to prefix + the application's path.
    pub(crate) prefix: String,
    pub(crate) host_header: HeaderValue,
    config: Arc<ClientConfig>,
    /// The same, offering HTTP/1.1 only: for the connections [`crate::h1`] makes.
    pub(crate) config_h1: Arc<ClientConfig>,
    pub(crate) response_timeout: Duration,
    /// Idle connections, with when they went idle and the worker whose runtime their
    /// socket is registered with.
    idle: Mutex<Vec<(Stream, Instant, usize)>>,
    h2: Mutex<Option<http2::SendRequest<Outgoing>>>,
    /// Whether the last connection made spoke HTTP/1.1 (so each caller needs its own).
    speaks_h1: AtomicBool,
    /// Held while a connection that may be shared (HTTP/2, or not yet known) is made,
    /// so that a burst of application connections makes one, not one each. Holds how
    /// the last such attempt ended, for those who waited for it.
    connecting: tokio::sync::Mutex<Option<Attempt>>,
}

/// How a connection attempt made under [`Upstream::connecting`] ended.
struct Attempt {
    ended: Instant,
    failure: Option<String>,
}

impl Upstream {
    /// An upstream at `base_url` (https) reached with `config` (client certificate
    /// and trust) on `route` (directly or through a forward proxy), answering within
    /// `response_timeout`.
    pub fn new(
        name: &str,
        base_url: &str,
        mut config: ClientConfig,
        response_timeout: Duration,
        route: &crate::tunnel::Route,
    ) -> Result<Self, EgressError> {
        let bad = |why: &str| EgressError::Config(format!("upstream {base_url:?}: {why}"));
        let base: Uri = base_url.parse().map_err(|e| bad(&format!("{e}")))?;
        if base.scheme() != Some(&http::uri::Scheme::HTTPS) {
            return Err(bad("certkeeper calls https:// URLs"));
        }
        let authority = base.authority().ok_or_else(|| bad("no host"))?.clone();
        let port = authority.port_u16().unwrap_or(443);
        let host = authority.host().to_string();
        let host_header =
            HeaderValue::from_str(authority.as_str()).map_err(|e| bad(&e.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let config_h1 = Arc::new(config.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Upstream {
            name: name.to_string(),
            target: format!("{host}:{port}"),
            host: route.endpoint(&host),
            port,
            scheme_authority: (http::uri::Scheme::HTTPS, authority),
            prefix: base.path().trim_end_matches('/').to_string(),
            host_header,
            config: Arc::new(config),
            config_h1,
            response_timeout,
            idle: Mutex::new(Vec::new()),
            h2: Mutex::new(None),
            speaks_h1: AtomicBool::new(false),
            connecting: tokio::sync::Mutex::new(None),
        })
    }

    /// The path and query the upstream gets for the application's `incoming`.
    fn upstream_path(&self, incoming: &Uri) -> Result<PathAndQuery, http::Error> {
        let rest = incoming.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        if let Some(pq) = incoming.path_and_query().filter(|_| self.prefix.is_empty()) {
            return Ok(pq.clone());
        }
        Ok(format!("{}{rest}", self.prefix).parse()?)
    }

    /// A live idle connection, newest first, and the worker whose runtime watches its
    /// socket; stale or closed ones are dropped.
    pub(crate) fn checkout(&self) -> Option<(Stream, usize)> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        // This worker's own connections first: their readiness comes from its runtime.
        let me = crate::workers::current();
        loop {
            let at = idle
                .iter()
                .rposition(|(_, _, w)| *w == me)
                .or_else(|| idle.len().checked_sub(1))?;
            let (mut io, since, origin) = idle.remove(at);
            if since.elapsed() < IDLE_TIMEOUT && still_open(&mut io) {
                return Some((io, origin));
            }
        }
    }

    /// Closes idle connections that are stale or that the upstream closed, so that
    /// a binding gone quiet does not hold sockets.
    fn sweep(&self) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.retain_mut(|(io, since, _)| since.elapsed() < IDLE_TIMEOUT && still_open(io));
    }

    /// Keeps an HTTP/1.1 connection with nothing in flight (and nothing unread) for
    /// the next application connection; `origin` is the worker it was made on.
    fn checkin(&self, conn: http1::Connection<Tls, Outgoing>, origin: usize) {
        let parts = conn.into_parts();
        if parts.read_buf.is_empty() {
            self.checkin_stream(parts.io.into_inner(), origin);
        }
    }

    /// Keeps an HTTP/1.1 connection with nothing in flight and nothing unread.
    pub(crate) fn checkin_stream(&self, io: Stream, origin: usize) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.retain(|(_, since, _)| since.elapsed() < IDLE_TIMEOUT);
        if idle.len() < MAX_IDLE {
            idle.push((io, Instant::now(), origin));
        }
    }

    /// Whether the last connection made to the upstream chose HTTP/1.1.
    pub(crate) fn speaks_h1(&self) -> bool {
        self.speaks_h1.load(Ordering::Relaxed)
    }

    /// The shared HTTP/2 connection, if the upstream speaks it and it is open.
    fn h2_sender(&self) -> Option<http2::SendRequest<Outgoing>> {
        let mut slot = self.h2.lock().unwrap_or_else(|p| p.into_inner());
        match slot.as_ref() {
            Some(s) if !s.is_closed() => Some(s.clone()),
            Some(_) => {
                *slot = None;
                None
            }
            None => None,
        }
    }

    /// A connection for a caller that has none: its own when the upstream speaks
    /// HTTP/1.1; otherwise one attempt at a time, and whoever waited for an attempt
    /// that made an HTTP/2 connection shares it, or gets its failure.
    async fn connect_for_caller(&self) -> Result<Connected, String> {
        if self.speaks_h1.load(Ordering::Relaxed) {
            return self.connect().await;
        }
        let waiting_since = Instant::now();
        let mut last = self.connecting.lock().await;
        if let Some(h2) = self.h2_sender() {
            return Ok(Connected::H2(h2));
        }
        // An attempt ended while this caller waited: take its failure, or (HTTP/1.1)
        // make a connection of its own without holding the others up.
        if let Some(attempt) = last.as_ref().filter(|a| a.ended > waiting_since) {
            if let Some(failure) = &attempt.failure {
                return Err(failure.clone());
            }
            if self.speaks_h1.load(Ordering::Relaxed) {
                drop(last);
                return self.connect().await;
            }
        }
        let result = self.connect().await;
        *last = Some(Attempt {
            ended: Instant::now(),
            failure: result.as_ref().err().cloned(),
        });
        result
    }

    /// A new connection: HTTP/2 (shared from now on) or HTTP/1.1 (the caller's).
    async fn connect(&self) -> Result<Connected, String> {
        let tls = crate::tls::connect(&self.host, self.port, Arc::clone(&self.config))
            .await
            .map_err(|e| e.to_string())?;
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        self.speaks_h1.store(!h2, Ordering::Relaxed);
        if h2 {
            let (sender, conn) = http2::Builder::new(TokioExecutor::new())
                .handshake(TokioIo::new(tls))
                .await
                .map_err(|e| explain(&e, &self.target))?;
            tokio::spawn(conn);
            *self.h2.lock().unwrap_or_else(|p| p.into_inner()) = Some(sender.clone());
            return Ok(Connected::H2(sender));
        }
        Ok(Connected::H1(Box::new(tls)))
    }

    /// The one log line of a failed call: the binding, the request, the status the
    /// application got (when it got one) and why.
    pub(crate) fn log_failure(&self, request: &dyn Display, status: Option<u16>, reason: &str) {
        match status {
            Some(status) => eprintln!(
                "certkeeper egress {}: {request}: {status}: {reason}",
                self.name
            ),
            None => eprintln!("certkeeper egress {}: {request}: {reason}", self.name),
        }
    }

    /// The plain-text body of a failure's answer.
    pub(crate) fn failure_text(&self, reason: &str) -> String {
        format!("certkeeper binding {}: {reason}\n", self.name)
    }

    /// Why a 504: nothing came within the upstream timeout.
    pub(crate) fn no_answer(&self) -> String {
        format!(
            "{} sent no response within {} s (upstream timeout)",
            self.target,
            self.response_timeout.as_secs()
        )
    }

    /// Why an answer was cut off: its body stopped coming for the upstream timeout.
    pub(crate) fn body_stalled(&self) -> String {
        format!(
            "{} stopped sending the body for {} s (upstream timeout); the answer was cut off",
            self.target,
            self.response_timeout.as_secs()
        )
    }

    fn fail(
        &self,
        method: &http::Method,
        path: &str,
        status: StatusCode,
        reason: &str,
    ) -> Response<Body> {
        self.log_failure(
            &format_args!("{method} {path}"),
            Some(status.as_u16()),
            reason,
        );
        let body = Full::new(Bytes::from(self.failure_text(reason)))
            .map_err(|never: Infallible| match never {})
            .boxed();
        let mut response = Response::new(body);
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

/// When the application last sent part of a request body.
struct Progress {
    last: Mutex<tokio::time::Instant>,
}

impl Progress {
    fn new() -> Self {
        Progress {
            last: Mutex::new(tokio::time::Instant::now()),
        }
    }

    fn touch(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = tokio::time::Instant::now();
    }

    fn last(&self) -> tokio::time::Instant {
        *self.last.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A request body on its way upstream, noting when each part passes; its trailers
/// are left out.
pub struct Outgoing {
    inner: Incoming,
    progress: Arc<Progress>,
}

impl hyper::body::Body for Outgoing {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, hyper::Error>>> {
        loop {
            let polled = Pin::new(&mut self.inner).poll_frame(cx);
            if let Poll::Ready(Some(Ok(frame))) = &polled {
                self.progress.touch();
                // Trailers are not relayed, as on the hand path: nginx, for one, ends
                // the whole shared HTTP/2 connection on a request's trailers.
                if frame.is_trailers() {
                    continue;
                }
            }
            return polled;
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// A response body on its way to the application, cut off (the application sees
/// its connection close) when the upstream sends nothing for the upstream timeout.
/// The timer is made only when the body has to wait, and moved only when it fires
/// (to the last frame's time plus the timeout), not at every frame.
struct Returning {
    inner: Incoming,
    idle: Option<Pin<Box<tokio::time::Sleep>>>,
    last_frame: Option<tokio::time::Instant>,
    upstream: Arc<Upstream>,
    method: http::Method,
    path: PathAndQuery,
    /// The lane to release when the answer has all come: its application asked to
    /// close, so the upstream connection is pooled now rather than after the close
    /// (by when the application may already be calling again).
    release_at_end: Option<Arc<Lane>>,
}

impl hyper::body::Body for Returning {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        let timeout = self.upstream.response_timeout;
        loop {
            if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
                if self.idle.is_some() {
                    self.last_frame = Some(tokio::time::Instant::now());
                }
                if frame.is_none()
                    && let Some(lane) = self.release_at_end.take()
                {
                    lane.release();
                }
                return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
            }
            let last_frame = self.last_frame;
            let idle = self
                .idle
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
            if idle.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let now = tokio::time::Instant::now();
            match last_frame.map(|t| t + timeout).filter(|&d| d > now) {
                Some(later) => {
                    // Frames came meanwhile: wait until `timeout` after the last one.
                    idle.as_mut().reset(later);
                }
                None => {
                    let reason = self.upstream.body_stalled();
                    let request = format_args!("{} {}", self.method, self.path.path());
                    self.upstream.log_failure(&request, None, &reason);
                    return Poll::Ready(Some(Err(reason.into())));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

enum Connected {
    H1(Box<Stream>),
    H2(http2::SendRequest<Outgoing>),
}

/// Whether an idle connection is still open: nothing to read yet. (A TLS 1.3
/// session ticket is consumed by rustls and reads as nothing.) Any data, end of
/// stream or error means it is not reusable.
pub(crate) fn still_open(io: &mut Stream) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    let mut byte = [0u8; 1];
    let mut buf = ReadBuf::new(&mut byte);
    Pin::new(io).poll_read(&mut cx, &mut buf).is_pending()
}

/// The HTTP/1.1 upstream connection of one application connection: the request
/// side (`sender`, used by the service) and the connection itself, polled by
/// [`Lane::drive`] in the same task.
#[derive(Default)]
struct Lane {
    state: Mutex<LaneState>,
}

#[derive(Default)]
struct LaneState {
    /// The upstream `conn` belongs to (bindings can be reloaded under us).
    upstream: Option<Arc<Upstream>>,
    /// The worker whose runtime watches `conn`'s socket (see [`crate::workers`]).
    origin: usize,
    sender: Option<http1::SendRequest<Outgoing>>,
    conn: Option<http1::Connection<Tls, Outgoing>>,
    /// An exchange the application left before its answer came (see [`InFlight`]).
    abandoned: Option<Answer>,
    waker: Option<Waker>,
}

/// The answer to a request sent on an HTTP/1.1 connection, still to come.
type Answer = Pin<
    Box<
        dyn Future<
                Output = Result<
                    Response<Incoming>,
                    hyper::client::conn::TrySendError<Request<Outgoing>>,
                >,
            > + Send,
    >,
>;

/// An exchange in flight on a lane's connection. When the application leaves before
/// the answer (its connection closes and the service future is dropped), dropping
/// this hands the exchange and the sender back to the lane instead of cancelling
/// them: cancelling would make hyper close the upstream connection, and the next
/// application connection would pay a new TLS handshake.
struct InFlight<'a> {
    lane: &'a Lane,
    sender: Option<http1::SendRequest<Outgoing>>,
    answer: Option<Answer>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(answer) = self.answer.take() {
            let mut state = self.lane.lock();
            state.abandoned = Some(answer);
            state.sender = self.sender.take();
        }
    }
}

impl Lane {
    fn lock(&self) -> std::sync::MutexGuard<'_, LaneState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Polls the upstream connection whenever there is one; never finishes.
    async fn drive(&self) {
        poll_fn(|cx| {
            let mut state = self.lock();
            if !state
                .waker
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                state.waker = Some(cx.waker().clone());
            }
            // Closed by the upstream, or failed: the request in flight (if any) gets
            // the error through its sender.
            if let Some(conn) = state.conn.as_mut()
                && Pin::new(conn).poll(cx).is_ready()
            {
                state.conn = None;
            }
            Poll::<()>::Pending
        })
        .await;
    }

    /// Installs a fresh HTTP/1.1 connection and returns its sender.
    async fn install(
        &self,
        upstream: &Arc<Upstream>,
        io: Stream,
        origin: usize,
    ) -> Result<http1::SendRequest<Outgoing>, String> {
        let (sender, conn) = http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| explain(&e, &upstream.target))?;
        let mut state = self.lock();
        state.upstream = Some(Arc::clone(upstream));
        state.origin = origin;
        state.conn = Some(conn);
        state.sender = None;
        if let Some(w) = &state.waker {
            w.wake_by_ref();
        }
        Ok(sender)
    }

    /// The sender of this lane's connection to `upstream`, if it has a usable one.
    fn take_sender(&self, upstream: &Arc<Upstream>) -> Option<http1::SendRequest<Outgoing>> {
        let mut state = self.lock();
        let same = state
            .upstream
            .as_ref()
            .is_some_and(|u| Arc::ptr_eq(u, upstream));
        if !same || state.conn.is_none() {
            state.sender = None;
            state.conn = None;
            return None;
        }
        state.sender.take()
    }

    fn put_sender(&self, sender: http1::SendRequest<Outgoing>) {
        let mut state = self.lock();
        if state.conn.is_some() {
            state.sender = Some(sender);
        }
    }

    /// Closes this lane's upstream connection and whatever was in flight on it.
    fn discard(&self) {
        let mut state = self.lock();
        state.abandoned = None;
        state.sender = None;
        state.conn = None;
    }

    /// The application's connection ended: an idle upstream connection goes back to
    /// its pool; one with an answer still coming is finished in the background first
    /// (the answer read and dropped), within [`FINISH_WITHIN`], else closed.
    fn release(&self) {
        let mut state = self.lock();
        let abandoned = state.abandoned.take();
        let (Some(upstream), Some(sender), Some(conn)) = (
            state.upstream.take(),
            state.sender.take(),
            state.conn.take(),
        ) else {
            return;
        };
        if abandoned.is_none() && sender.is_ready() {
            upstream.checkin(conn, state.origin);
            return;
        }
        tokio::spawn(finish(upstream, sender, conn, abandoned, state.origin));
    }

    /// Relays one request.
    async fn forward(
        self: Arc<Self>,
        upstream: Arc<Upstream>,
        request: Request<Incoming>,
    ) -> Response<Body> {
        let method = request.method().clone();
        let closing = wants_close(&request);
        let (mut parts, body) = request.into_parts();
        let path = match upstream.upstream_path(&parts.uri) {
            Ok(p) => p,
            Err(e) => {
                let path = parts.uri.path().to_string();
                return upstream.fail(
                    &method,
                    &path,
                    StatusCode::BAD_REQUEST,
                    &format!("bad request path: {e}"),
                );
            }
        };
        strip_hop_by_hop(&mut parts.headers);
        parts.version = http::Version::HTTP_11;
        let progress = Arc::new(Progress::new());
        let request = Request::from_parts(
            parts,
            Outgoing {
                inner: body,
                progress: Arc::clone(&progress),
            },
        );
        // The timeout runs from the last byte of the request body the application
        // sent, not from the start: a large upload on a slow line is not cut off.
        let timeout = upstream.response_timeout;
        let outcome = {
            let send = self.send(&upstream, path.clone(), request);
            tokio::pin!(send);
            let mut deadline = tokio::time::Instant::now() + timeout;
            loop {
                match tokio::time::timeout_at(deadline, &mut send).await {
                    Ok(result) => break Ok(result),
                    Err(_) => {
                        let next = progress.last() + timeout;
                        if next > tokio::time::Instant::now() {
                            deadline = next;
                        } else {
                            break Err(());
                        }
                    }
                }
            }
        };
        match outcome {
            Ok(Ok(response)) => {
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                let body = Returning {
                    inner: body,
                    idle: None,
                    last_frame: None,
                    upstream: Arc::clone(&upstream),
                    method,
                    path,
                    release_at_end: closing.then(|| Arc::clone(&self)),
                };
                Response::from_parts(parts, body.boxed())
            }
            Ok(Err(reason)) => {
                upstream.fail(&method, path.path(), StatusCode::BAD_GATEWAY, &reason)
            }
            Err(()) => {
                // The exchange was handed back to the lane when `send` was dropped:
                // give up on it and on its connection.
                self.discard();
                let reason = upstream.no_answer();
                upstream.fail(&method, path.path(), StatusCode::GATEWAY_TIMEOUT, &reason)
            }
        }
    }

    async fn send(
        &self,
        upstream: &Arc<Upstream>,
        path: PathAndQuery,
        mut request: Request<Outgoing>,
    ) -> Result<Response<Incoming>, String> {
        // A request goes on this lane's own connection when it has one, else on the
        // shared HTTP/2 connection, else on an idle pooled connection, else on a new
        // one. A pooled connection the upstream closed meanwhile fails before the
        // request is written: the request is then tried on another connection.
        let mut retries = 0;
        loop {
            let mut sender = match self.take_sender(upstream) {
                Some(s) => s,
                None => {
                    if let Some(h2) = upstream.h2_sender() {
                        return send_h2(upstream, h2, path, request).await;
                    }
                    let (io, origin) = match upstream.checkout() {
                        Some(pooled) => pooled,
                        None => match upstream.connect_for_caller().await? {
                            Connected::H1(io) => (*io, crate::workers::current()),
                            Connected::H2(h2) => return send_h2(upstream, h2, path, request).await,
                        },
                    };
                    self.install(upstream, io, origin).await?
                }
            };
            let ready = poll_fn(|cx| sender.poll_ready(cx)).await;
            if ready.is_err() {
                // Closed between requests; nothing was sent.
                if retries == MAX_RETRIES {
                    return Err(format!("{} closed the connection", upstream.target));
                }
                retries += 1;
                continue;
            }
            *request.uri_mut() = Uri::from(path.clone());
            request
                .headers_mut()
                .insert(header::HOST, upstream.host_header.clone());
            let answer: Answer = Box::pin(sender.try_send_request(request));
            let mut in_flight = InFlight {
                lane: self,
                sender: Some(sender),
                answer: Some(answer),
            };
            let result = poll_fn(|cx| match in_flight.answer.as_mut() {
                Some(answer) => answer.as_mut().poll(cx),
                None => Poll::Pending,
            })
            .await;
            in_flight.answer = None;
            let sender = in_flight.sender.take();
            drop(in_flight);
            match result {
                Ok(response) => {
                    if let Some(sender) = sender {
                        self.put_sender(sender);
                    }
                    return Ok(response);
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if retries < MAX_RETRIES => {
                        retries += 1;
                        request = unsent;
                    }
                    _ => return Err(explain(e.error(), &upstream.target)),
                },
            }
        }
    }
}

/// Reads an abandoned answer to its end on `conn`, then pools the connection.
async fn finish(
    upstream: Arc<Upstream>,
    mut sender: http1::SendRequest<Outgoing>,
    mut conn: http1::Connection<Tls, Outgoing>,
    mut answer: Option<Answer>,
    origin: usize,
) {
    let mut body: Option<Incoming> = None;
    let idle_again = tokio::time::timeout(
        FINISH_WITHIN,
        poll_fn(|cx| {
            loop {
                if conn.poll_without_shutdown(cx).is_ready() {
                    return Poll::Ready(false);
                }
                if let Some(pending) = answer.as_mut() {
                    match pending.as_mut().poll(cx) {
                        Poll::Ready(Ok(response)) => {
                            body = Some(response.into_body());
                            answer = None;
                        }
                        Poll::Ready(Err(_)) => return Poll::Ready(false),
                        Poll::Pending => return Poll::Pending,
                    }
                }
                if let Some(b) = body.as_mut() {
                    match hyper::body::Body::poll_frame(Pin::new(b), cx) {
                        Poll::Ready(Some(Ok(_))) => continue,
                        Poll::Ready(None) => body = None,
                        Poll::Ready(Some(Err(_))) => return Poll::Ready(false),
                        Poll::Pending => return Poll::Pending,
                    }
                }
                return match sender.poll_ready(cx) {
                    Poll::Ready(result) => Poll::Ready(result.is_ok()),
                    Poll::Pending => Poll::Pending,
                };
            }
        }),
    )
    .await;
    if idle_again == Ok(true) {
        upstream.checkin(conn, origin);
    }
}

async fn send_h2(
    upstream: &Upstream,
    mut sender: http2::SendRequest<Outgoing>,
    path: PathAndQuery,
    mut request: Request<Outgoing>,
) -> Result<Response<Incoming>, String> {
    let (scheme, authority) = &upstream.scheme_authority;
    let mut uri = Uri::builder()
        .scheme(scheme.clone())
        .authority(authority.clone())
        .path_and_query(path)
        .build()
        .map_err(|e| e.to_string())?;
    std::mem::swap(request.uri_mut(), &mut uri);
    request.headers_mut().remove(header::HOST);
    sender
        .send_request(request)
        .await
        .map_err(|e| explain(&e, &upstream.target))
}

/// Whether the application's connection ends after this exchange: `Connection: close`,
/// or HTTP/1.0 without `Connection: keep-alive`.
fn wants_close<B>(request: &Request<B>) -> bool {
    !connection_options(request.headers()).persistent(request.version() == http::Version::HTTP_10)
}

fn connection_options(headers: &HeaderMap) -> ConnectionOptions<'_> {
    ConnectionOptions::from_values(
        headers
            .get_all(header::CONNECTION)
            .iter()
            .map(HeaderValue::as_bytes),
    )
}

/// Headers that belong to one connection, not to the message (RFC 9110 7.6.1), as
/// [`framing`](crate::framing) says. One pass over the names first: the usual message
/// has none of them, or only `Connection: keep-alive` (nginx sends it with every
/// answer).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if !headers.keys().any(|n| is_hop_by_hop(n.as_str())) {
        return;
    }
    let options = connection_options(headers);
    let dropped: Vec<HeaderName> = headers
        .keys()
        .filter(|n| options.drops(n.as_str()))
        .cloned()
        .collect();
    for name in dropped {
        headers.remove(name);
    }
}

/// The upstream a listener currently relays to; swapped when its binding changes.
pub type Current = Arc<RwLock<Arc<Upstream>>>;

pub(crate) fn current_upstream(current: &Current) -> Arc<Upstream> {
    match current.read() {
        Ok(u) => Arc::clone(&u),
        Err(p) => Arc::clone(&p.into_inner()),
    }
}

/// Serves one application connection: by hand ([`crate::h1`]) when the upstream is
/// known to speak HTTP/1.1, else through hyper, with this connection's upstream
/// connection driven in the same task.
async fn serve_connection(stream: AppStream, current: Current) {
    if current_upstream(&current).speaks_h1() {
        return crate::h1::serve(stream, current).await;
    }
    let lane = Arc::new(Lane::default());
    let service_lane = Arc::clone(&lane);
    let service = service_fn(move |request| {
        let lane = Arc::clone(&service_lane);
        let upstream = current_upstream(&current);
        async move { Ok::<_, Infallible>(lane.forward(upstream, request).await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        biased;
        () = lane.drive() => {}
        _ = connection => {}
    }
    lane.release();
}

/// Serves plain HTTP/1.1 on `listener`, relaying to the current upstream for the
/// applications `gate` admits (the others get a 403), until `shutdown` turns true.
pub async fn serve(
    listener: Listener,
    current: Current,
    gate: Gate,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    // One uid cannot take a binding's descriptors (or the agent's) from the others.
    let admission =
        certkeeper_agent::limits::ConnectionLimits::new(crate::app::PER_UID, crate::app::TOTAL);
    loop {
        tokio::select! {
            _ = sweep.tick() => current_upstream(&current).sweep(),
            accepted = listener.accept() => {
                let (stream, uid) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        certkeeper_agent::limits::after_failed_accept(&e).await;
                        continue;
                    }
                };
                let current = Arc::clone(&current);
                let gate = Arc::clone(&gate);
                let admitted = uid.map(|u| (u, admission.enter(u)));
                let in_flight = Serving::enter();
                crate::workers::dispatch(stream, move |s| async move {
                    let _in_flight = in_flight;
                    if let Some((uid, None)) = admitted {
                        return crate::app::too_many(s, uid).await;
                    }
                    match gate(uid) {
                        // Counted until the connection ends.
                        Ok(()) => serve_connection(s, current).await,
                        Err(reason) => refuse(s, &reason).await,
                    }
                    drop(admitted);
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

/// Application connections being served, by every binding of this process.
static IN_FLIGHT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One application connection, counted in [`IN_FLIGHT`] until dropped.
struct Serving;

impl Serving {
    fn enter() -> Serving {
        IN_FLIGHT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Serving
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// After the listeners have stopped (SIGTERM): waits for the application connections
/// still being served to finish, at most `bound`, and returns how many were left.
pub async fn drain(bound: Duration) -> usize {
    let until = Instant::now() + bound;
    loop {
        let left = IN_FLIGHT.load(std::sync::atomic::Ordering::Relaxed);
        if left == 0 || Instant::now() >= until {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(list: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in list {
            map.append(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn an_application_asking_to_close_is_seen() {
        let request = |version, connection: Option<&'static str>| {
            let mut r = Request::new(());
            *r.version_mut() = version;
            if let Some(c) = connection {
                r.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static(c));
            }
            r
        };
        use http::Version as V;
        assert!(wants_close(&request(V::HTTP_11, Some("Close"))));
        assert!(wants_close(&request(V::HTTP_11, Some("x-trace, close"))));
        assert!(!wants_close(&request(V::HTTP_11, None)));
        assert!(!wants_close(&request(V::HTTP_11, Some("keep-alive"))));
        assert!(wants_close(&request(V::HTTP_10, None)));
        assert!(!wants_close(&request(V::HTTP_10, Some("keep-alive"))));
    }

    #[test]
    fn hop_by_hop_headers_are_dropped_and_the_rest_kept() {
        let mut h = headers(&[
            ("connection", "keep-alive, X-Trace"),
            ("connection", "close"),
            ("x-trace", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("proxy-connection", "keep-alive"),
            ("upgrade", "websocket"),
            ("soapaction", "\"urn:x\""),
            ("content-type", "text/xml"),
        ]);
        strip_hop_by_hop(&mut h);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-type", "soapaction"]);

        let mut h = headers(&[("connection", "keep-alive"), ("content-length", "20")]);
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("content-length"));

        let mut h = headers(&[("te", "trailers"), ("date", "x")]);
        strip_hop_by_hop(&mut h);
        assert_eq!(
            h.keys().map(HeaderName::as_str).collect::<Vec<_>>(),
            ["date"]
        );
    }
}
