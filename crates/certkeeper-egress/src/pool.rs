//! A binding's upstream and its connections: where the partner is, how it is
//! reached, the idle HTTP/1.1 connections kept warm ([`Idle`]) and the one shared
//! HTTP/2 connection, and which protocol the partner speaks ([`Dialer`]).
//!
//! The relay ([`crate::relay`]) asks for a connection per request; this module
//! decides whether that is the application connection's own (HTTP/1.1: held,
//! pooled, or new) or the shared one (HTTP/2). It knows nothing of HTTP messages.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use http::Uri;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use tokio::io::{AsyncRead, ReadBuf};

use crate::EgressError;
use crate::failure::explain;
use crate::tls::Stream;
use crate::tls_openssl::OpenSslClient;

/// How long to wait for the upstream's response headers, unless the home's
/// `upstream_timeout` setting says otherwise.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a binding waits for an application (a whole request head, more of a
/// request body, the next request on a kept-alive connection), unless the home's
/// `client_timeout` setting says otherwise.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an idle upstream connection stays in the pool.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// How many idle upstream connections the pool keeps.
pub const MAX_IDLE: usize = 256;
/// How many more connections a request not yet written may be tried on when the one
/// it was given turns out closed.
pub(crate) const MAX_RETRIES: u32 = 2;
/// How long an answer the application left may take to finish in the background
/// before its connection is closed instead of pooled.
pub(crate) const FINISH_WITHIN: Duration = Duration::from_secs(2);

/// A request body on its way over HTTP/2 (see [`crate::h2`]).
pub(crate) type H2Sender = http2::SendRequest<crate::h2::Outgoing>;

/// The upstream a listener currently relays to; swapped when its binding changes.
pub type Current = Arc<RwLock<Arc<Upstream>>>;

/// The upstream `current` names now.
pub(crate) fn current_upstream(current: &Current) -> Arc<Upstream> {
    match current.read() {
        Ok(u) => Arc::clone(&u),
        Err(p) => Arc::clone(&p.into_inner()),
    }
}

/// What the relay needs to wait for an application, besides the upstream.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// For the upstream's answer head, and between parts of its body.
    pub response: Duration,
    /// For the application: a whole request head, more of its body, its next request.
    pub client: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            response: RESPONSE_TIMEOUT,
            client: CLIENT_TIMEOUT,
        }
    }
}

/// One upstream: where it is, how to reach it, and its connections.
pub struct Upstream {
    pub(crate) name: String,
    /// "host:port", for messages.
    pub(crate) target: String,
    /// The upstream's host, and the forward proxy on the way if any.
    host: crate::tunnel::Endpoint,
    port: u16,
    /// "https://host[:port]", what HTTP/2 requests name as their authority.
    pub(crate) authority: http::uri::Authority,
    /// The upstream URL's path without its trailing slash ("" for none): requests
    /// go to prefix + the application's path.
    pub(crate) prefix: String,
    /// The `Host` the upstream gets.
    pub(crate) host_header: String,
    /// Offers HTTP/2 and HTTP/1.1: every new connection tells what the partner speaks
    /// now, so a partner that gains (or drops) HTTP/2 is followed.
    config: Arc<ClientConfig>,
    /// The same, offering HTTP/1.1 only: for a request already written for an
    /// HTTP/1.1 connection and sent again on another.
    config_h1: Arc<ClientConfig>,
    pub(crate) timeouts: Timeouts,
    /// What the partner's last request for the client certificate said, so that a
    /// refused handshake can say which CAs it accepts.
    accepted: Option<Arc<crate::tls::AcceptedIssuers>>,
    idle: Idle<Stream>,
    dialer: Dialer<H2Sender>,
    /// OpenSSL, for a partner that asks for the certificate late or a binding that
    /// opted into old TLS ([`crate::tls_openssl`]); `None`: rustls only.
    openssl: Option<OpenSslSide>,
}

/// The OpenSSL side of an upstream: its context made on first use (so a binding that
/// never needs it never loads its key into OpenSSL), and whether new connections
/// use it.
pub struct OpenSslSide {
    make: Box<dyn Fn() -> Result<OpenSslClient, EgressError> + Send + Sync>,
    made: Mutex<Option<Arc<OpenSslClient>>>,
    chosen: std::sync::atomic::AtomicBool,
}

impl OpenSslSide {
    /// OpenSSL made by `make` when first needed: from the start for `--legacy-tls`
    /// (`always`), else once a partner shows it asks for the certificate late.
    pub fn new(
        make: Box<dyn Fn() -> Result<OpenSslClient, EgressError> + Send + Sync>,
        always: bool,
    ) -> Self {
        OpenSslSide {
            make,
            made: Mutex::new(None),
            chosen: always.into(),
        }
    }

    fn chosen(&self) -> bool {
        self.chosen.load(Ordering::Relaxed)
    }

    /// The context, made now if it was not (a failure is not kept: the next
    /// connection tries again).
    fn client(&self) -> Result<Arc<OpenSslClient>, EgressError> {
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = made.as_ref() {
            return Ok(Arc::clone(client));
        }
        let client = Arc::new((self.make)()?);
        *made = Some(Arc::clone(&client));
        Ok(client)
    }
}

impl Upstream {
    /// An upstream at `base_url` (https) reached with `config` (client certificate
    /// and trust) on `route` (directly or through a forward proxy).
    pub fn new(
        name: &str,
        base_url: &str,
        mut config: ClientConfig,
        timeouts: Timeouts,
        route: &crate::tunnel::Route,
        accepted: Option<Arc<crate::tls::AcceptedIssuers>>,
        openssl: Option<OpenSslSide>,
    ) -> Result<Self, EgressError> {
        let bad = |why: &str| EgressError::Config(format!("upstream {base_url:?}: {why}"));
        let base: Uri = base_url.parse().map_err(|e| bad(&format!("{e}")))?;
        if base.scheme() != Some(&http::uri::Scheme::HTTPS) {
            return Err(bad("certkeeper calls https:// URLs"));
        }
        let authority = base.authority().ok_or_else(|| bad("no host"))?.clone();
        let port = authority.port_u16().unwrap_or(443);
        let host = authority.host().to_string();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let config_h1 = Arc::new(config.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Upstream {
            name: name.to_string(),
            target: format!("{host}:{port}"),
            host: route.endpoint(&host),
            port,
            host_header: authority.as_str().to_string(),
            authority,
            prefix: base.path().trim_end_matches('/').to_string(),
            config: Arc::new(config),
            config_h1,
            timeouts,
            accepted,
            idle: Idle::new(MAX_IDLE, IDLE_TIMEOUT),
            dialer: Dialer::default(),
            openssl,
        })
    }

    /// A connection for one request of an application connection that holds none:
    /// the shared HTTP/2 connection when there is one, else an idle pooled HTTP/1.1
    /// connection (and `true`: it has carried requests before), else a new one, made
    /// as [`Dialer::dial`] says, within the upstream timeout (a partner that takes
    /// the TCP connection and never answers the handshake is as silent as one that
    /// never answers a request).
    pub(crate) async fn connection(&self, uid: Option<u32>) -> Result<Connection, Unreached> {
        if let Some(h2) = self.dialer.shared(uid) {
            return Ok(Connection::Shared(h2));
        }
        let me = crate::workers::current();
        if let Some((io, origin)) = self.idle.checkout(me, Instant::now()) {
            return Ok(Connection::Own(Box::new(io), origin, true));
        }
        let dial = self.dialer.dial(uid, || self.connect());
        let made = tokio::time::timeout(self.timeouts.response, dial)
            .await
            .map_err(|_| Unreached::Timeout)?
            .map_err(Unreached::Failed)?;
        Ok(match made {
            Dialed::Own(io) => Connection::Own(io, me, false),
            Dialed::Shared(h2) => Connection::Shared(h2),
        })
    }

    /// A connection for a request already written for HTTP/1.1, sent again after the
    /// connection it was written for turned out closed: an idle one, or a new one that
    /// offers HTTP/1.1 only.
    pub(crate) async fn h1_connection(&self) -> Result<(Stream, usize, bool), Unreached> {
        let me = crate::workers::current();
        if let Some((io, origin)) = self.idle.checkout(me, Instant::now()) {
            return Ok((io, origin, true));
        }
        let io = tokio::time::timeout(self.timeouts.response, self.handshake(false))
            .await
            .map_err(|_| Unreached::Timeout)?
            .map_err(Unreached::Failed)?;
        Ok((io, me, false))
    }

    /// A new connection: HTTP/2 (then shared) or HTTP/1.1 (the caller's).
    async fn connect(&self) -> Result<Dialed<Box<Stream>, H2Sender>, String> {
        let tls = self.handshake(true).await?;
        if tls.alpn() != Some(b"h2") {
            return Ok(Dialed::Own(Box::new(tls)));
        }
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .handshake(TokioIo::new(tls))
            .await
            .map_err(|e| self.explain(&e))?;
        tokio::spawn(conn);
        Ok(Dialed::Shared(sender))
    }

    /// A new TLS connection offering HTTP/2 and HTTP/1.1 (`both`) or HTTP/1.1 only:
    /// with rustls, or with OpenSSL once it is chosen (HTTP/1.1 only,
    /// [`crate::tls_openssl::ALPN`]). A full rustls handshake in which the partner did
    /// not ask for the client certificate chooses OpenSSL for this upstream from then
    /// on (when it has an OpenSSL side): such a partner either never asks or asks late,
    /// for some paths (TLS 1.2 renegotiation, TLS 1.3 post-handshake authentication),
    /// which only OpenSSL answers. That connection is closed before anything is sent on
    /// it, and one is made with OpenSSL instead.
    async fn handshake(&self, both: bool) -> Result<Stream, String> {
        if let Some(side) = self.openssl.as_ref().filter(|s| s.chosen()) {
            return self.connect_openssl(side).await;
        }
        let config = Arc::clone(if both { &self.config } else { &self.config_h1 });
        let (made, asked) =
            crate::tls::watch_for_request(crate::tls::connect(&self.host, self.port, config)).await;
        let tls = made.map_err(|e| self.noted(e.to_string()))?;
        let Some(side) = self.openssl.as_ref() else {
            return Ok(tls);
        };
        if asked || !tls.full_handshake() {
            return Ok(tls);
        }
        drop(tls);
        if !side.chosen.swap(true, Ordering::Relaxed) {
            eprintln!(
                "certkeeper egress {}: {} did not ask for the client certificate in the TLS \
                 handshake; its connections now use OpenSSL, which answers a request for it \
                 after the handshake (renegotiation, post-handshake authentication)",
                self.name, self.target
            );
        }
        self.connect_openssl(side).await
    }

    async fn connect_openssl(&self, side: &OpenSslSide) -> Result<Stream, String> {
        let client = side.client().map_err(|e| e.to_string())?;
        crate::tls::connect_openssl(&self.host, self.port, &client)
            .await
            .map_err(|e| e.to_string())
    }

    /// What failed ([`explain`]); for a refused handshake, also which CAs the partner
    /// said it accepts when none issued our certificate. (Over TLS 1.3 the partner's
    /// refusal arrives after the handshake, with the first answer.)
    pub(crate) fn explain(&self, e: &(dyn std::error::Error + 'static)) -> String {
        self.noted(explain(e, &self.target))
    }

    fn noted(&self, reason: String) -> String {
        match self.accepted.as_ref().and_then(|a| a.mismatch()) {
            Some(mismatch) if reason.contains("refused the TLS handshake") => {
                format!("{reason} ({mismatch})")
            }
            _ => reason,
        }
    }

    /// Keeps an HTTP/1.1 connection with nothing in flight and nothing unread for the
    /// next application connection; `origin` is the worker it was made on.
    pub(crate) fn checkin(&self, io: Stream, origin: usize) {
        self.idle.checkin(io, origin, Instant::now());
    }

    /// Closes idle connections that are stale or that the upstream closed, so that
    /// a binding gone quiet does not hold sockets.
    pub(crate) fn sweep(&self) {
        self.idle.sweep(Instant::now());
        self.dialer.sweep(Instant::now(), IDLE_TIMEOUT);
    }

    /// The one log line of a failed call: the binding, the request, the status the
    /// application got (when it got one) and why.
    pub(crate) fn log_failure(
        &self,
        request: &dyn std::fmt::Display,
        status: Option<u16>,
        reason: &str,
    ) {
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
            self.timeouts.response.as_secs()
        )
    }

    /// Why an answer was cut off: the application stopped reading it for the client
    /// timeout.
    pub(crate) fn unread(&self) -> String {
        format!(
            "the application read nothing of the answer for {} s (client timeout); the \
             answer was cut off",
            self.timeouts.client.as_secs()
        )
    }

    /// Why an answer was cut off: its body stopped coming for the upstream timeout.
    pub(crate) fn body_stalled(&self) -> String {
        format!(
            "{} stopped sending the body for {} s (upstream timeout); the answer was cut off",
            self.target,
            self.timeouts.response.as_secs()
        )
    }
}

/// Why no connection was had.
pub(crate) enum Unreached {
    /// Connecting failed: what failed.
    Failed(String),
    /// Not within the upstream timeout.
    Timeout,
}

/// A connection for one request.
pub(crate) enum Connection {
    /// HTTP/1.1, this application connection's until it ends: the stream, the worker
    /// whose runtime watches its socket, and whether it was reused.
    Own(Box<Stream>, usize, bool),
    /// The shared HTTP/2 connection.
    Shared(H2Sender),
}

/// A connection that can say, without blocking, whether it may carry another request.
pub(crate) trait Reusable {
    /// Whether nothing can be read from it yet: any data, end of stream or error
    /// means it is not reusable.
    fn still_open(&mut self) -> bool;
}

impl Reusable for Stream {
    /// (A TLS 1.3 session ticket is consumed by rustls and reads as nothing.)
    fn still_open(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        let mut byte = [0u8; 1];
        let mut buf = ReadBuf::new(&mut byte);
        Pin::new(self).poll_read(&mut cx, &mut buf).is_pending()
    }
}

/// Idle HTTP/1.1 connections, each with when it went idle and the worker whose
/// runtime watches its socket; newest first out, this worker's own first.
pub(crate) struct Idle<T> {
    conns: Mutex<Vec<(T, Instant, usize)>>,
    max: usize,
    timeout: Duration,
}

impl<T: Reusable> Idle<T> {
    pub(crate) fn new(max: usize, timeout: Duration) -> Self {
        Idle {
            conns: Mutex::new(Vec::new()),
            max,
            timeout,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(T, Instant, usize)>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A live idle connection for worker `me` and the worker it came from; stale or
    /// closed ones met on the way are dropped.
    pub(crate) fn checkout(&self, me: usize, now: Instant) -> Option<(T, usize)> {
        let mut idle = self.lock();
        loop {
            let at = idle
                .iter()
                .rposition(|(_, _, w)| *w == me)
                .or_else(|| idle.len().checked_sub(1))?;
            let (mut conn, since, origin) = idle.remove(at);
            if now.saturating_duration_since(since) < self.timeout && conn.still_open() {
                return Some((conn, origin));
            }
        }
    }

    /// Keeps `conn` (dropped, so closed, when the pool is full).
    pub(crate) fn checkin(&self, conn: T, origin: usize, now: Instant) {
        let mut idle = self.lock();
        idle.retain(|(_, since, _)| now.saturating_duration_since(*since) < self.timeout);
        if idle.len() < self.max {
            idle.push((conn, now, origin));
        }
    }

    /// Drops the stale and the closed.
    pub(crate) fn sweep(&self, now: Instant) {
        let mut idle = self.lock();
        idle.retain_mut(|(c, since, _)| {
            now.saturating_duration_since(*since) < self.timeout && c.still_open()
        });
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Whose shared connection: the application's uid (`None`: not known, as over a
/// socket whose peer could not be named).
pub(crate) type Owner = Option<u32>;

/// A shared connection's request side.
pub(crate) trait Shared: Clone {
    fn is_closed(&self) -> bool;
}

impl Shared for H2Sender {
    fn is_closed(&self) -> bool {
        http2::SendRequest::is_closed(self)
    }
}

/// What a new connection turned out to be.
pub(crate) enum Dialed<C, S> {
    /// HTTP/1.1: the caller's own.
    Own(C),
    /// HTTP/2: shared from now on.
    Shared(S),
}

/// What the upstream was last seen to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Protocol {
    /// Not reached yet, or its shared connection was lost.
    Unknown = 0,
    Http1 = 1,
    Http2 = 2,
}

/// Makes new connections, and follows which protocol the upstream speaks.
///
/// The states: `Unknown` (no connection made yet) -> `Http1` or `Http2`, by what the
/// last new connection negotiated; every new connection offers both, so the state
/// follows a partner that gains or drops HTTP/2. While the state is not `Http1`,
/// connections are made one attempt at a time: a burst of application connections
/// to a new (or restarted) HTTP/2 partner then shares one connection, or one
/// failure, instead of making one each. Under `Http1` each caller connects at once.
///
/// An HTTP/2 connection is shared only among the applications of one uid ([`Owner`]):
/// the partner's limits are per connection (concurrent streams, flow-control window,
/// a header it refuses by closing the connection), so one uid that exhausts or breaks
/// its connection does not stall or break the others'.
pub(crate) struct Dialer<S> {
    protocol: AtomicU8,
    /// Each owner's shared connection and when it was last handed out.
    shared: Mutex<std::collections::HashMap<Owner, (S, Instant)>>,
    /// Held while a connection that may be shared is made; how the last such attempt
    /// ended, for those who waited for it.
    connecting: tokio::sync::Mutex<Option<Attempt>>,
}

/// How a connection attempt made under [`Dialer::connecting`] ended.
struct Attempt {
    ended: Instant,
    failure: Option<String>,
}

impl<S> Default for Dialer<S> {
    fn default() -> Self {
        Dialer {
            protocol: AtomicU8::new(Protocol::Unknown as u8),
            shared: Mutex::new(std::collections::HashMap::new()),
            connecting: tokio::sync::Mutex::new(None),
        }
    }
}

impl<S: Shared> Dialer<S> {
    pub(crate) fn protocol(&self) -> Protocol {
        match self.protocol.load(Ordering::Relaxed) {
            1 => Protocol::Http1,
            2 => Protocol::Http2,
            _ => Protocol::Unknown,
        }
    }

    fn set(&self, protocol: Protocol) {
        self.protocol.store(protocol as u8, Ordering::Relaxed);
    }

    /// `owner`'s shared connection, if there is one and it is open.
    pub(crate) fn shared(&self, owner: Owner) -> Option<S> {
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        match shared.get_mut(&owner) {
            Some((s, used)) if !s.is_closed() => {
                *used = Instant::now();
                Some(s.clone())
            }
            Some(_) => {
                shared.remove(&owner);
                // Lost: what the next connection negotiates decides again.
                self.set(Protocol::Unknown);
                None
            }
            None => None,
        }
    }

    /// Lets go of the shared connections not handed out for `idle` (a request in
    /// flight keeps its own handle, so it finishes): with one per uid, a uid that
    /// called once does not hold a connection to the partner for ever.
    pub(crate) fn sweep(&self, now: Instant, idle: Duration) {
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        shared.retain(|_, (s, used)| !s.is_closed() && now.saturating_duration_since(*used) < idle);
    }

    /// A new connection made by `connect`, as the state says (see [`Dialer`]).
    pub(crate) async fn dial<C, F, Fut>(
        &self,
        owner: Owner,
        connect: F,
    ) -> Result<Dialed<C, S>, String>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Dialed<C, S>, String>>,
    {
        if self.protocol() == Protocol::Http1 {
            return self.made(owner, connect().await);
        }
        let waiting_since = Instant::now();
        let mut last = self.connecting.lock().await;
        if let Some(shared) = self.shared(owner) {
            return Ok(Dialed::Shared(shared));
        }
        // An attempt ended while this caller waited: take its failure, or (HTTP/1.1)
        // make a connection of its own without holding the others up.
        if let Some(attempt) = last.as_ref().filter(|a| a.ended > waiting_since) {
            if let Some(failure) = &attempt.failure {
                return Err(failure.clone());
            }
            if self.protocol() == Protocol::Http1 {
                drop(last);
                return self.made(owner, connect().await);
            }
        }
        let result = self.made(owner, connect().await);
        *last = Some(Attempt {
            ended: Instant::now(),
            failure: result.as_ref().err().cloned(),
        });
        result
    }

    /// Notes what a new connection negotiated.
    fn made<C>(
        &self,
        owner: Owner,
        result: Result<Dialed<C, S>, String>,
    ) -> Result<Dialed<C, S>, String> {
        match &result {
            Ok(Dialed::Own(_)) => self.set(Protocol::Http1),
            Ok(Dialed::Shared(s)) => {
                let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
                shared.insert(owner, (s.clone(), Instant::now()));
                self.set(Protocol::Http2);
            }
            Err(_) => {}
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize};

    #[derive(Debug)]
    struct Conn {
        id: usize,
        open: bool,
    }

    impl Reusable for Conn {
        fn still_open(&mut self) -> bool {
            self.open
        }
    }

    #[test]
    fn the_idle_pool_gives_the_newest_live_connection_this_worker_made_first() {
        let pool = Idle::new(3, Duration::from_secs(90));
        let t0 = Instant::now();
        pool.checkin(Conn { id: 1, open: true }, 0, t0);
        pool.checkin(Conn { id: 2, open: true }, 1, t0);
        pool.checkin(Conn { id: 3, open: false }, 0, t0);
        // Worker 0: its newest is closed (dropped on the way), then its older one.
        let (c, origin) = pool.checkout(0, t0).unwrap();
        assert_eq!((c.id, origin), (1, 0));
        assert_eq!(pool.len(), 1);
        // Worker 0 again: none of its own left, so the other worker's.
        let (c, origin) = pool.checkout(0, t0).unwrap();
        assert_eq!((c.id, origin), (2, 1));
        assert!(pool.checkout(0, t0).is_none());
    }

    #[test]
    fn the_idle_pool_is_bounded_and_lets_stale_connections_go() {
        let pool = Idle::new(2, Duration::from_secs(90));
        let t0 = Instant::now();
        for id in 0..5 {
            pool.checkin(Conn { id, open: true }, 0, t0);
        }
        assert_eq!(pool.len(), 2, "a full pool closes what comes back");
        let later = t0 + Duration::from_secs(91);
        assert!(
            pool.checkout(0, later).is_none(),
            "stale connections are not used"
        );
        assert_eq!(pool.len(), 0);
        pool.checkin(Conn { id: 7, open: true }, 0, t0);
        pool.checkin(Conn { id: 8, open: false }, 0, t0);
        pool.sweep(t0);
        assert_eq!(pool.len(), 1, "the sweep drops what the upstream closed");
        pool.sweep(later);
        assert_eq!(pool.len(), 0, "and what went stale");
    }

    #[derive(Clone)]
    struct FakeH2(Arc<AtomicBool>);

    impl Shared for FakeH2 {
        fn is_closed(&self) -> bool {
            self.0.load(Ordering::Relaxed)
        }
    }

    /// A partner that answers every connection as `h2` says, after a pause, and
    /// counts the connections.
    struct Partner {
        h2: AtomicBool,
        fail: AtomicBool,
        made: AtomicUsize,
        closed: Arc<AtomicBool>,
    }

    impl Partner {
        fn new(h2: bool) -> Arc<Self> {
            Arc::new(Partner {
                h2: AtomicBool::new(h2),
                fail: AtomicBool::new(false),
                made: AtomicUsize::new(0),
                closed: Arc::new(AtomicBool::new(false)),
            })
        }

        async fn connect(&self) -> Result<Dialed<usize, FakeH2>, String> {
            let n = self.made.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            if self.fail.load(Ordering::SeqCst) {
                return Err("connection refused".into());
            }
            if self.h2.load(Ordering::SeqCst) {
                Ok(Dialed::Shared(FakeH2(Arc::clone(&self.closed))))
            } else {
                Ok(Dialed::Own(n))
            }
        }
    }

    async fn burst(dialer: &Arc<Dialer<FakeH2>>, partner: &Arc<Partner>, n: usize) -> Vec<String> {
        let mut tasks = Vec::new();
        for _ in 0..n {
            let (dialer, partner) = (Arc::clone(dialer), Arc::clone(partner));
            tasks.push(tokio::spawn(async move {
                match dialer.dial(None, || partner.connect()).await {
                    Ok(Dialed::Own(id)) => format!("own {id}"),
                    Ok(Dialed::Shared(_)) => "shared".to_string(),
                    Err(e) => e,
                }
            }));
        }
        let mut got = Vec::new();
        for t in tasks {
            got.push(t.await.unwrap());
        }
        got
    }

    #[tokio::test]
    async fn a_burst_to_a_new_http2_partner_shares_one_connection() {
        let dialer = Arc::new(Dialer::default());
        let partner = Partner::new(true);
        assert_eq!(dialer.protocol(), Protocol::Unknown);
        let got = burst(&dialer, &partner, 8).await;
        assert!(got.iter().all(|g| g == "shared"), "{got:?}");
        assert_eq!(partner.made.load(Ordering::SeqCst), 1);
        assert_eq!(dialer.protocol(), Protocol::Http2);
        // Lost (GOAWAY, a restart): the next burst makes one new connection.
        partner.closed.store(true, Ordering::SeqCst);
        assert!(dialer.shared(None).is_none());
        assert_eq!(dialer.protocol(), Protocol::Unknown);
        partner.closed.store(false, Ordering::SeqCst);
        let got = burst(&dialer, &partner, 4).await;
        assert!(got.iter().all(|g| g == "shared"), "{got:?}");
        assert_eq!(partner.made.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_burst_to_an_http1_partner_gets_a_connection_each_and_a_failure_once() {
        let dialer = Arc::new(Dialer::default());
        let partner = Partner::new(false);
        let got = burst(&dialer, &partner, 6).await;
        let mut own: Vec<_> = got.iter().filter(|g| g.starts_with("own ")).collect();
        own.sort();
        own.dedup();
        assert_eq!(own.len(), 6, "each its own connection: {got:?}");
        assert_eq!(dialer.protocol(), Protocol::Http1);

        // A partner that refuses, not yet known: the waiting callers share the one
        // attempt's failure instead of each waiting for their own.
        let dialer = Arc::new(Dialer::default());
        let partner = Partner::new(true);
        partner.fail.store(true, Ordering::SeqCst);
        let got = burst(&dialer, &partner, 5).await;
        assert!(got.iter().all(|g| g == "connection refused"), "{got:?}");
        assert_eq!(partner.made.load(Ordering::SeqCst), 1);
        assert_eq!(dialer.protocol(), Protocol::Unknown);
    }

    #[tokio::test]
    async fn each_uid_gets_its_own_http2_connection() {
        let dialer: Dialer<FakeH2> = Dialer::default();
        let partner = Partner::new(true);
        for owner in [Some(1000), Some(1001), Some(1000), None] {
            let got = dialer.dial(owner, || partner.connect()).await;
            assert!(matches!(got, Ok(Dialed::Shared(_))));
        }
        assert_eq!(
            partner.made.load(Ordering::SeqCst),
            3,
            "uid 1000's is shared"
        );
        assert!(dialer.shared(Some(1001)).is_some());
        assert!(dialer.shared(Some(1002)).is_none());
        // Not handed out for the idle time: let go, and the next call dials again.
        dialer.sweep(
            Instant::now() + Duration::from_secs(91),
            Duration::from_secs(90),
        );
        assert!(dialer.shared(Some(1000)).is_none());
        let _ = dialer.dial(Some(1000), || partner.connect()).await;
        assert_eq!(partner.made.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn the_protocol_follows_a_partner_that_gains_or_drops_http2() {
        let dialer = Arc::new(Dialer::default());
        let partner = Partner::new(false);
        burst(&dialer, &partner, 1).await;
        assert_eq!(dialer.protocol(), Protocol::Http1);
        // The partner is upgraded: the next new connection negotiates h2.
        partner.h2.store(true, Ordering::SeqCst);
        assert_eq!(burst(&dialer, &partner, 1).await, ["shared"]);
        assert_eq!(dialer.protocol(), Protocol::Http2);
        assert!(dialer.shared(None).is_some());
        // And downgraded: the shared connection closes, the next one is HTTP/1.1.
        partner.h2.store(false, Ordering::SeqCst);
        partner.closed.store(true, Ordering::SeqCst);
        let got = burst(&dialer, &partner, 1).await;
        assert!(got[0].starts_with("own "), "{got:?}");
        assert_eq!(dialer.protocol(), Protocol::Http1);
    }
}
