//! The relay: every application connection of a binding is served here, request
//! after request, by one hand-written HTTP/1.1 server. Each request goes to the
//! partner over this connection's own HTTP/1.1 connection (held, pooled or new;
//! below) or, when the partner speaks HTTP/2, over the shared HTTP/2 connection
//! ([`crate::h2`]); the pool ([`crate::pool`]) says which.
//!
//! Why by hand rather than through hyper's server and client: in the relay of a
//! small keep-alive request most of the user CPU went to hyper's machinery between
//! two connections that both speak HTTP/1.1 (a request decoded into an
//! `http::Request` and a `HeaderMap`, the client's channel and callback, bodies
//! boxed and polled frame by frame, then all encoded back). Here the application's
//! request head is parsed in place (httparse, as hyper does), checked strictly
//! ([`framing`]), and its fields are copied into the upstream's head in one buffer,
//! hop-by-hop fields out and the framing fields written by the relay itself; bodies
//! of known length are copied as they are, chunked bodies re-framed. One parser reads
//! every byte an application sends, whatever the partner speaks.
//!
//! [`framing`]: crate::framing

use std::future::poll_fn;
use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::app::AppStream;
use crate::buffer::{Buffer, Deadline, MAX_FIELDS, push_length, write_both, write_both_paced};
use crate::framing::{self, BodyScan, ConnectionOptions, Declared, Framing};
use crate::pool::Unreached;
use crate::pool::{
    Connection, Current, FINISH_WITHIN, H2Sender, MAX_RETRIES, Reusable, Upstream, current_upstream,
};
use crate::tls::Stream;

/// The largest request or response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// How much of a body is read before it is written on.
const MAX_BUFFER: usize = 128 * 1024;

/// Serves one application connection, request after request, until it closes.
pub(crate) async fn serve(app: AppStream, uid: Option<u32>, current: Current) {
    let mut relay = Relay {
        app,
        uid,
        inbuf: Buffer::new(16 * 1024, MAX_HEAD),
        rbuf: Buffer::new(16 * 1024, MAX_BUFFER),
        out: Vec::with_capacity(1024),
        request: String::new(),
        held: None,
        deadline: Deadline::new(),
    };
    while let Next::KeepAlive = relay.exchange(&current).await {}
    relay.release();
}

/// An upstream connection this application connection holds between requests.
struct Held {
    io: Stream,
    upstream: Arc<Upstream>,
    /// The worker whose runtime watches its socket (see [`crate::workers`]).
    origin: usize,
}

impl Held {
    fn new(io: Stream, upstream: &Arc<Upstream>, origin: usize) -> Self {
        Held {
            io,
            upstream: Arc::clone(upstream),
            origin,
        }
    }
}

struct Relay {
    app: AppStream,
    /// The application's uid, whose shared HTTP/2 connection its requests use.
    uid: Option<u32>,
    /// From the application: request heads and bodies.
    inbuf: Buffer,
    /// From the upstream: response heads and bodies.
    rbuf: Buffer,
    /// The head being written (to the upstream, then to the application).
    out: Vec<u8>,
    /// The request being relayed, "METHOD /path", for log lines: kept in one buffer,
    /// since it is needed only when a call fails.
    request: String,
    held: Option<Held>,
    /// The one timer this connection's waits use.
    deadline: Deadline,
}

enum Next {
    KeepAlive,
    Close,
}

/// What the application asked, as much as the relay needs after its head is gone.
struct Asked {
    /// The length of the upstream's head at the start of `out`.
    head_len: usize,
    /// Whether it may be sent again (RFC 9110 §9.2.2) when a reused connection turns
    /// out closed before any answer.
    idempotent: bool,
    head: bool,
    http10: bool,
    close: bool,
    framing: Framing,
}

/// How an exchange failed before the answer's head reached the application.
enum Failure {
    /// This status, and why: a request that cannot be relayed (400, 408, 501, ...),
    /// or an answer that broke off before its head went (502, 504).
    Status(u16, String),
    /// The upstream failed: 502, and what failed.
    Upstream(String),
    /// No answer within the upstream timeout: 504.
    Timeout,
    /// The application closed its connection or failed: nothing to answer.
    AppGone,
}

impl From<Unreached> for Failure {
    fn from(unreached: Unreached) -> Self {
        match unreached {
            Unreached::Failed(reason) => Failure::Upstream(reason),
            Unreached::Timeout => Failure::Timeout,
        }
    }
}

impl Relay {
    /// Reads one request, relays it, relays the answer.
    async fn exchange(&mut self, current: &Current) -> Next {
        let upstream = current_upstream(current);
        let Some(asked) = self.read_request(&upstream).await else {
            return Next::Close;
        };
        let (status, reason) = match self.relay(&upstream, &asked).await {
            Ok(next) => return next,
            Err(Failure::AppGone) => return Next::Close,
            Err(Failure::Status(status, reason)) => (status, reason),
            Err(Failure::Upstream(reason)) => (502, reason),
            Err(Failure::Timeout) => (504, upstream.no_answer()),
        };
        self.fail(&upstream, status, &reason).await;
        Next::Close
    }

    /// Reads and checks the next request head, and writes the upstream's version of
    /// it into `out`. `None`: the connection ends (the application closed it, its
    /// request was refused, or it sent nothing for the client timeout).
    async fn read_request(&mut self, upstream: &Upstream) -> Option<Asked> {
        let wait = upstream.timeouts.client;
        // Idle between requests, then the whole head, each for the client timeout.
        let mut deadline = tokio::time::Instant::now() + wait;
        let mut begun = false;
        loop {
            if !self.inbuf.is_empty() {
                if !begun {
                    begun = true;
                    deadline = tokio::time::Instant::now() + wait;
                }
                let refused = match self.prepare(upstream) {
                    Ok(Some(asked)) => return Some(asked),
                    Ok(None) if self.inbuf.len() >= MAX_HEAD => Some((
                        431,
                        format!("the request head is over {} KiB", MAX_HEAD / 1024),
                    )),
                    Ok(None) => None,
                    Err(refused) => Some(refused),
                };
                if let Some((status, reason)) = refused {
                    self.request.clear();
                    self.request.push_str("- -");
                    self.fail(upstream, status, &reason).await;
                    return None;
                }
            }
            let (inbuf, app) = (&mut self.inbuf, &mut self.app);
            let read = std::future::poll_fn(|cx| inbuf.poll_fill(app, cx));
            match self.deadline.run(deadline, read).await {
                Some(Ok(0) | Err(_)) => return None,
                Some(Ok(_)) => {}
                None if begun => {
                    self.request.clear();
                    self.request.push_str("- -");
                    let reason = format!(
                        "the request head did not all come within {} s (client timeout)",
                        wait.as_secs()
                    );
                    self.fail(upstream, 408, &reason).await;
                    return None;
                }
                // Kept alive and unused for the client timeout: closed, as nginx does.
                None => return None,
            }
        }
    }

    /// Parses the request head in `inbuf` (`None` while incomplete), consumes it and
    /// writes the head to send upstream into `out`.
    fn prepare(&mut self, upstream: &Upstream) -> Result<Option<Asked>, (u16, String)> {
        let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
        let mut request = httparse::Request::new(&mut fields);
        let head_len = match request.parse(self.inbuf.bytes()) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err((
                    431,
                    format!("the request has over {MAX_FIELDS} header fields"),
                ));
            }
            Err(e) => return Err((400, format!("the request is not HTTP/1.1: {e}"))),
        };
        let method = request.method.unwrap_or("GET");
        let target = request.path.unwrap_or("/");
        let http10 = request.version == Some(0);
        let headers = request.headers;
        let bad = |why: &str| Err((400, format!("{method} {target}: {why}")));
        if method == "CONNECT" {
            return Err((
                501,
                "bindings relay requests; they do not tunnel (CONNECT)".into(),
            ));
        }
        let framing =
            match framing::request_framing(&self.inbuf.bytes()[..head_len], headers, http10) {
                Ok(framing) => framing,
                Err(e) => return bad(&e.to_string()),
            };
        let options = ConnectionOptions::of(headers);
        let close = !options.persistent(http10);

        let out = &mut self.out;
        out.clear();
        out.extend_from_slice(method.as_bytes());
        out.push(b' ');
        let path_start = out.len();
        out.extend_from_slice(upstream.prefix.as_bytes());
        if target.starts_with('/') {
            out.extend_from_slice(target.as_bytes());
        } else if target == "*" && upstream.prefix.is_empty() {
            out.push(b'*');
        } else {
            // absolute-form, as sent to a proxy: relay its path and query.
            match target.parse::<http::Uri>() {
                Ok(uri) if uri.scheme().is_some() => {
                    let pq = uri.path_and_query().map_or("", |p| p.as_str());
                    // "http://host?x" has an empty path: the upstream gets "/?x".
                    if !pq.starts_with('/') {
                        out.push(b'/');
                    }
                    out.extend_from_slice(pq.as_bytes());
                }
                _ => return bad("the request target is not a path"),
            }
        }
        let path_end = out.len();
        out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        out.extend_from_slice(upstream.host_header.as_bytes());
        out.extend_from_slice(b"\r\n");
        for h in headers.iter() {
            if !options.drops(h.name) && !framing::is_relays_own(h.name) {
                push_field(out, h);
            }
        }
        // The framing the relay sends the body with, whatever the application wrote.
        match framing {
            Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
            Framing::Length(n) => push_length(out, n),
            Framing::Empty | Framing::UntilClose => {}
        }
        out.extend_from_slice(b"\r\n");
        let path = String::from_utf8_lossy(&out[path_start..path_end]);
        self.request.clear();
        self.request.push_str(method);
        self.request.push(' ');
        self.request
            .push_str(path.split('?').next().unwrap_or_default());
        let asked = Asked {
            head_len: out.len(),
            idempotent: matches!(
                method,
                "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE"
            ),
            head: method == "HEAD",
            http10,
            close,
            framing,
        };
        self.inbuf.consume(head_len);
        Ok(Some(asked))
    }

    /// Sends the request upstream and relays the answer to the application.
    async fn relay(&mut self, upstream: &Arc<Upstream>, asked: &Asked) -> Result<Next, Failure> {
        let (mut held, mut reused) = match self.take_held(upstream) {
            Some(held) => (held, true),
            None => match upstream.connection(self.uid).await.map_err(Failure::from)? {
                Connection::Own(io, origin, reused) => (Held::new(*io, upstream, origin), reused),
                Connection::Shared(h2) => return self.relay_h2(upstream, asked, h2).await,
            },
        };
        // The body bytes that came with the head go in the same write. When that is
        // the whole body, nothing is consumed until an answer starts, so the request
        // can be sent again on another connection if the first was closed under it.
        let mut body = BodyScan::new(asked.framing);
        let chunked = body.is_chunked();
        let with_head = body
            .take_reframed(self.inbuf.bytes(), &mut self.out)
            .map_err(|e| broken_body(&self.request, e))?;
        let whole = body.is_done();
        if !whole {
            self.inbuf.consume(with_head);
        }
        let mut retries = 0;
        let (answer, request_sent) = loop {
            // Nothing of another connection's, not even an error it left.
            self.rbuf.reset();
            let mut exchange = Exchange {
                app: &mut self.app,
                inbuf: &mut self.inbuf,
                rbuf: &mut self.rbuf,
                up: &mut held.io,
                body: &mut body,
                chunked,
                ready: 0,
                pending: Vec::new(),
                pending_at: 0,
                unflushed: false,
                answered: false,
                last_progress: tokio::time::Instant::now(),
                last_from_app: tokio::time::Instant::now(),
            };
            let sent = exchange
                .answer(&mut self.out, asked, upstream, &mut self.deadline)
                .await;
            let failed = match sent {
                // Sent means written and flushed to the upstream: a body the relay read
                // but had not yet written when the answer came is not sent, and the
                // connection is then never used again (else those bytes would begin
                // the next request on it).
                Ok(answer) => break (answer, exchange.all_sent()),
                Err(Sent::Failed(e)) => e,
                Err(Sent::Unanswered(e)) if asked.idempotent => e,
                Err(Sent::Unanswered(e) | Sent::Broken(e)) => {
                    return Err(Failure::Upstream(upstream.explain(&e)));
                }
                Err(Sent::Timeout) => return Err(Failure::Timeout),
                Err(Sent::AppStalled) => return Err(app_stalled(upstream)),
                Err(Sent::AppGone) => return Err(Failure::AppGone),
                Err(Sent::Bad(reason)) => {
                    return Err(Failure::Upstream(format!("{}: {reason}", upstream.target)));
                }
                Err(Sent::BadBody(e)) => return Err(broken_body(&self.request, e)),
            };
            // A connection the upstream closed while it was idle: the request goes on
            // another one, if none of it had to be consumed to be sent.
            if !(reused && whole && retries < MAX_RETRIES) {
                return Err(Failure::Upstream(upstream.explain(&failed)));
            }
            // `out` still holds the whole request, written for HTTP/1.1: an answer's
            // head replaces it only once one has come, and then nothing is sent again.
            retries += 1;
            let (io, origin, again) = upstream.h1_connection().await.map_err(Failure::from)?;
            held = Held::new(io, upstream, origin);
            reused = again;
        };
        if whole {
            self.inbuf.consume(with_head);
        }
        self.rbuf.consume(answer.head_len);
        self.relay_answer(upstream, &answer, held, request_sent)
            .await
    }

    /// Sends the request over the upstream's shared HTTP/2 connection and relays the
    /// answer ([`crate::h2`]).
    async fn relay_h2(
        &mut self,
        upstream: &Arc<Upstream>,
        asked: &Asked,
        sender: H2Sender,
    ) -> Result<Next, Failure> {
        let (parts, expects_continue) =
            crate::h2::request_head(&self.out[..asked.head_len], upstream)
                .map_err(|(status, reason)| Failure::Status(status, reason))?;
        let ask = crate::h2::Ask {
            head: asked.head,
            http10: asked.http10,
            close: asked.close,
            framing: asked.framing,
            request: &self.request,
        };
        let exchanged = crate::h2::exchange(
            sender,
            upstream,
            parts,
            expects_continue,
            &ask,
            &mut self.app,
            &mut self.inbuf,
            &mut self.out,
        )
        .await;
        use crate::h2::Failed;
        match exchanged {
            Ok(true) => Ok(Next::KeepAlive),
            Ok(false) => Ok(Next::Close),
            Err(Failed::Upstream(reason)) => Err(Failure::Upstream(reason)),
            Err(Failed::Timeout) => Err(Failure::Timeout),
            Err(Failed::AppStalled) => Err(app_stalled(upstream)),
            Err(Failed::AppGone) => Err(Failure::AppGone),
            Err(Failed::BadBody(e)) => Err(broken_body(&self.request, e)),
            Err(Failed::Gateway(status, reason)) => Err(Failure::Status(status, reason)),
        }
    }

    /// Relays the answer's head (in `out`) and body to the application, and keeps the
    /// upstream connection if it can carry another request.
    async fn relay_answer(
        &mut self,
        upstream: &Arc<Upstream>,
        answer: &Answer,
        held: Held,
        request_sent: bool,
    ) -> Result<Next, Failure> {
        let timeout = upstream.timeouts.response;
        // A refusal from a partner that never asked for the certificate on this
        // connection (it was reached with OpenSSL, which would have answered a late
        // request): the log says so, as `request` does.
        if matches!(answer.status, 401 | 403)
            && let Stream::OpenSsl(_, asked) = &held.io
            && !asked.in_handshake()
            && !asked.after()
        {
            upstream.log_failure(
                &self.request,
                Some(answer.status),
                "the partner did not ask for a client certificate on this connection",
            );
        }
        let mut held = Some(held);
        let mut body = BodyScan::new(answer.framing);
        let mut head = true;
        let mut payload: Vec<Range<usize>> = Vec::new();
        let mut scratch = Vec::new();
        loop {
            if !body.is_done() {
                let Some(Held { io, .. }) = held.as_mut() else {
                    unreachable!("the connection is handed back only at the end")
                };
                if let Err((status, reason)) =
                    self.read_more(io, &mut body, timeout, upstream).await
                {
                    return self.cut_off(upstream, answer, head, status, reason);
                }
            }
            payload.clear();
            let taken = match body.take(self.rbuf.bytes(), &mut |r| payload.push(r)) {
                Ok(n) => n,
                Err(e) => {
                    let reason = format!(
                        "{} sent a broken answer body ({e}); it was cut off",
                        upstream.target
                    );
                    return self.cut_off(upstream, answer, head, 502, reason);
                }
            };
            let done = body.is_done();
            if done
                && !(answer.upstream_keeps
                    && request_sent
                    && taken == self.rbuf.len()
                    && !self.rbuf.has_error())
            {
                held = None;
            }
            if done
                && answer.close_app
                && let Some(h) = held.take()
            {
                // An application that closes after this answer may call again at once,
                // on a new connection: the upstream connection is back in the pool
                // before the application sees the end of the answer.
                upstream.checkin(h.io, h.origin);
            }
            let chunk = &self.rbuf.bytes()[..taken];
            let before: &[u8] = if head { &self.out } else { &[] };
            let written = if answer.framing == Framing::Chunked || answer.rechunk {
                // Chunks of the relay's own making, or the bare data for HTTP/1.0.
                scratch.clear();
                for r in &payload {
                    if answer.dechunk {
                        scratch.extend_from_slice(&chunk[r.clone()]);
                    } else if !r.is_empty() {
                        framing::push_chunk(&mut scratch, &chunk[r.clone()]);
                    }
                }
                if done && !answer.dechunk {
                    scratch.extend_from_slice(b"0\r\n\r\n");
                }
                let limit = upstream.timeouts.client;
                write_both_paced(&mut self.app, before, &scratch, &mut self.deadline, limit).await
            } else {
                let limit = upstream.timeouts.client;
                write_both_paced(&mut self.app, before, chunk, &mut self.deadline, limit).await
            };
            head = false;
            self.rbuf.consume(taken);
            if let Err(e) = written {
                if e.kind() == io::ErrorKind::TimedOut {
                    // It stopped reading: the answer is cut off, and says so.
                    upstream.log_failure(&self.request, Some(answer.status), &upstream.unread());
                    self.app.abort();
                    return Ok(Next::Close);
                }
                // The application left: the rest of the answer is read and dropped, so
                // that the upstream connection can serve another.
                if let Some(mut h) = held.take()
                    && self.drain(&mut h.io, &mut body).await
                    && answer.upstream_keeps
                    && request_sent
                {
                    upstream.checkin(h.io, h.origin);
                }
                return Ok(Next::Close);
            }
            if done {
                break;
            }
        }
        self.held = held;
        if answer.close_app {
            let _ = self.app.shutdown().await;
            return Ok(Next::Close);
        }
        Ok(Next::KeepAlive)
    }

    /// The answer broke off (`reason`). Before its head reached the application, the
    /// application gets a `status` (502, or 504 for a stall) like any failed call;
    /// after, its connection is reset (on TCP), so that an answer whose end the
    /// framing cannot show (read until the close, or de-chunked for HTTP/1.0) does
    /// not look whole.
    fn cut_off(
        &mut self,
        upstream: &Upstream,
        answer: &Answer,
        head: bool,
        status: u16,
        reason: String,
    ) -> Result<Next, Failure> {
        if head {
            return Err(Failure::Status(status, reason));
        }
        upstream.log_failure(&self.request, Some(answer.status), &reason);
        self.app.abort();
        Ok(Next::Close)
    }

    /// Waits (within the upstream timeout) for more of the answer's body, and takes
    /// what else has arrived with it. The error says why the answer is cut off.
    async fn read_more(
        &mut self,
        io: &mut Stream,
        body: &mut BodyScan,
        timeout: Duration,
        upstream: &Upstream,
    ) -> Result<(), (u16, String)> {
        let want = body
            .remaining()
            .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
        if !self.rbuf.is_empty() {
            // Some of it is here: add what is ready, without waiting. An error is kept
            // for the next read: the socket reports it only once.
            if let Err(e) = self.rbuf.fill(io, want, false).await {
                self.rbuf.keep_error(e);
            }
            return Ok(());
        }
        let filled = tokio::time::timeout(timeout, self.rbuf.fill(io, want, true))
            .await
            .map_err(|_| (504, upstream.body_stalled()))?;
        let ended = match filled {
            Ok(0) => true,
            Ok(_) => false,
            // Servers that end a body by closing often skip TLS's close_notify.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => true,
            Err(e) => {
                let reason = format!("the answer was cut off: {}", upstream.explain(&e));
                return Err((502, reason));
            }
        };
        if ended && !body.at_eof() {
            return Err((
                502,
                format!(
                    "{} closed the connection in the middle of the answer, which was cut off",
                    upstream.target
                ),
            ));
        }
        Ok(())
    }

    /// Reads the rest of an answer nobody waits for, within [`FINISH_WITHIN`];
    /// whether it came to its end.
    async fn drain(&mut self, io: &mut Stream, body: &mut BodyScan) -> bool {
        let rbuf = &mut self.rbuf;
        let rest = async {
            loop {
                let n = body.take(rbuf.bytes(), &mut |_| {}).ok()?;
                rbuf.consume(n);
                if body.is_done() {
                    return Some(rbuf.is_empty());
                }
                match rbuf.fill(io, usize::MAX, true).await {
                    Ok(0) | Err(_) => return Some(false),
                    Ok(_) => {}
                }
            }
        };
        matches!(
            tokio::time::timeout(FINISH_WITHIN, rest).await,
            Ok(Some(true))
        )
    }

    /// The upstream connection this application connection holds, if it is to
    /// `upstream` and may carry another request.
    fn take_held(&mut self, upstream: &Arc<Upstream>) -> Option<Held> {
        let mut held = self.held.take()?;
        // Closed by the upstream, or bytes no request asked for: not used again.
        (Arc::ptr_eq(&held.upstream, upstream) && held.io.still_open()).then_some(held)
    }

    /// The application's connection ends: an idle upstream connection goes back to
    /// the pool.
    fn release(&mut self) {
        if let Some(held) = self.held.take() {
            held.upstream.checkin(held.io, held.origin);
        }
    }

    /// Answers the application with `status` and a plain-text reason, logs it, and
    /// closes the connection (any rest of the request is not read).
    async fn fail(&mut self, upstream: &Upstream, status: u16, reason: &str) {
        upstream.log_failure(&self.request, Some(status), reason);
        let text = upstream.failure_text(reason);
        let phrase = http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error");
        let head = format!(
            "HTTP/1.1 {status} {phrase}\r\ncontent-type: text/plain; charset=utf-8\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n",
            text.len()
        );
        let _ = write_both(&mut self.app, head.as_bytes(), text.as_bytes()).await;
        let _ = self.app.shutdown().await;
    }
}

/// How sending a request and waiting for its answer's head failed.
enum Sent {
    /// Writing to the upstream failed.
    Failed(io::Error),
    /// The upstream closed or failed before sending anything.
    Unanswered(io::Error),
    /// The upstream closed or failed in the middle of its answer's head.
    Broken(io::Error),
    /// Nothing came within the upstream timeout.
    Timeout,
    /// The application sent no more of its body within the client timeout.
    AppStalled,
    /// The application closed its connection before its request was all read.
    AppGone,
    /// The upstream's answer is not HTTP/1.1 as the relay takes it.
    Bad(String),
    /// The application's chunked body is broken.
    BadBody(framing::FramingError),
}

/// The answer's head, as the relay needs it after writing the application's version.
struct Answer {
    head_len: usize,
    status: u16,
    framing: Framing,
    /// 1xx: more heads follow.
    interim: bool,
    /// The upstream connection may carry another request afterwards.
    upstream_keeps: bool,
    /// The application's connection closes after this answer.
    close_app: bool,
    /// A chunked body relayed to an HTTP/1.0 application, without its chunk framing.
    dechunk: bool,
    /// A body read until the upstream closes, relayed to an HTTP/1.1 application in
    /// chunks, so that an answer cut off does not look whole.
    rechunk: bool,
}

/// One request on its way: its body sent upstream while the answer's head is awaited.
struct Exchange<'a> {
    app: &'a mut AppStream,
    inbuf: &'a mut Buffer,
    rbuf: &'a mut Buffer,
    up: &'a mut Stream,
    body: &'a mut BodyScan,
    /// A chunked body: it goes upstream re-framed, through `pending`.
    chunked: bool,
    /// Bytes at the front of `inbuf` that belong to the body, not yet written (a body
    /// of known length, relayed as it is).
    ready: usize,
    /// Re-framed chunks not yet written, from `pending_at` on.
    pending: Vec<u8>,
    pending_at: usize,
    unflushed: bool,
    /// Whether any of the answer has come.
    answered: bool,
    /// When part of the body last went upstream: the upstream timeout runs from
    /// there, so a large upload on a slow line is not cut off.
    last_progress: tokio::time::Instant,
    /// When the application last sent part of the body: the client timeout runs
    /// from there.
    last_from_app: tokio::time::Instant,
}

impl Exchange<'_> {
    fn body_sent(&self) -> bool {
        self.body.is_done() && self.ready == 0 && self.pending.is_empty()
    }

    /// Whether the whole request is with the upstream: every byte of the body read,
    /// written and flushed.
    fn all_sent(&self) -> bool {
        self.body_sent() && !self.unflushed
    }

    /// Whether the request's body has more to come and all of it that came is sent.
    fn waits_for_app(&self) -> bool {
        !self.body.is_done() && self.ready == 0 && self.pending.is_empty()
    }

    /// Writes `out` (the request's head and the body that came with it), then the
    /// rest of the body while waiting for the answer's head; leaves the application's
    /// version of that head in `out`. Interim answers (1xx) are passed on as they come.
    async fn answer(
        &mut self,
        out: &mut Vec<u8>,
        asked: &Asked,
        upstream: &Upstream,
        timer: &mut Deadline,
    ) -> Result<Answer, Sent> {
        let timeout = upstream.timeouts.response;
        let client = upstream.timeouts.client;
        let write = async {
            self.up.write_all(out).await?;
            self.up.flush().await
        };
        match tokio::time::timeout(timeout, write).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Sent::Failed(e)),
            Err(_) => return Err(Sent::Timeout),
        }
        self.last_progress = tokio::time::Instant::now();
        self.last_from_app = self.last_progress;
        loop {
            if !self.rbuf.is_empty() {
                // A body all written but not yet flushed is flushed now, so that it
                // counts as sent (the partner often answers before our flush).
                if self.body_sent() && self.unflushed {
                    let flushed = tokio::time::timeout(timeout, self.up.flush()).await;
                    self.unflushed = !matches!(flushed, Ok(Ok(())));
                }
                match answer_head(self.rbuf.bytes(), asked, !self.all_sent(), out) {
                    Ok(Some(answer)) if answer.interim => {
                        if !asked.http10 {
                            write_both(self.app, out, &[])
                                .await
                                .map_err(|_| Sent::AppGone)?;
                        }
                        self.rbuf.consume(answer.head_len);
                        continue;
                    }
                    Ok(Some(answer)) => return Ok(answer),
                    Ok(None) if self.rbuf.len() >= MAX_HEAD => {
                        return Err(Sent::Bad(format!(
                            "its answer head is over {} KiB",
                            MAX_HEAD / 1024
                        )));
                    }
                    Ok(None) => {}
                    Err(reason) => return Err(Sent::Bad(reason)),
                }
            }
            loop {
                // Waiting for the application's body (nothing of it left to write):
                // the client timeout; else the upstream's.
                let from_app = self.waits_for_app();
                let deadline = if from_app {
                    self.last_from_app + client
                } else {
                    self.last_progress + timeout
                };
                let more = poll_fn(|cx| self.poll_more(cx, from_app));
                match timer.run(deadline, more).await {
                    Some(result) => break result?,
                    None if self.waits_for_app() != from_app => {}
                    None if deadline > tokio::time::Instant::now() => {}
                    // Body bytes came meanwhile: wait from the last of them.
                    None if from_app
                        && self.last_from_app + client > tokio::time::Instant::now() => {}
                    None if from_app => return Err(Sent::AppStalled),
                    None if self.last_progress + timeout > tokio::time::Instant::now() => {}
                    None => return Err(Sent::Timeout),
                }
            }
        }
    }

    /// Sends the request body on while waiting for more of the answer; ready when
    /// more of the answer has come, or when what the exchange waits for has changed
    /// from the application's body to the upstream (or back) since the caller chose a
    /// deadline (`from_app`), so that it chooses again.
    fn poll_more(&mut self, cx: &mut Context<'_>, from_app: bool) -> Poll<Result<(), Sent>> {
        loop {
            if self.waits_for_app() != from_app {
                return Poll::Ready(Ok(()));
            }
            match self.rbuf.poll_fill(self.up, cx) {
                Poll::Ready(Ok(n)) if n > 0 => {
                    self.answered = true;
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(result) => {
                    let e = result
                        .err()
                        .unwrap_or_else(|| io::ErrorKind::UnexpectedEof.into());
                    return Poll::Ready(Err(if self.answered {
                        Sent::Broken(e)
                    } else {
                        Sent::Unanswered(e)
                    }));
                }
                Poll::Pending => {}
            }
            if self.body_sent() {
                if self.unflushed {
                    match Pin::new(&mut *self.up).poll_flush(cx) {
                        Poll::Ready(Ok(())) => self.unflushed = false,
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(Sent::Failed(e))),
                        Poll::Pending => {}
                    }
                }
                return Poll::Pending;
            }
            if self.ready == 0 && self.pending.is_empty() && !self.inbuf.is_empty() {
                if self.chunked {
                    match self
                        .body
                        .take_reframed(self.inbuf.bytes(), &mut self.pending)
                    {
                        Ok(n) => self.inbuf.consume(n),
                        Err(e) => return Poll::Ready(Err(Sent::BadBody(e))),
                    }
                } else {
                    match self.body.take(self.inbuf.bytes(), &mut |_| {}) {
                        Ok(n) => self.ready = n,
                        Err(e) => return Poll::Ready(Err(Sent::BadBody(e))),
                    }
                }
                continue;
            }
            if !self.pending.is_empty() {
                match Pin::new(&mut *self.up).poll_write(cx, &self.pending[self.pending_at..]) {
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(Err(Sent::Failed(io::ErrorKind::WriteZero.into())));
                    }
                    Poll::Ready(Ok(n)) => {
                        self.pending_at += n;
                        if self.pending_at == self.pending.len() {
                            self.pending.clear();
                            self.pending_at = 0;
                        }
                        self.unflushed = true;
                        self.last_progress = tokio::time::Instant::now();
                        continue;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(Sent::Failed(e))),
                    Poll::Pending => return Poll::Pending,
                }
            }
            if self.ready > 0 {
                match Pin::new(&mut *self.up).poll_write(cx, &self.inbuf.bytes()[..self.ready]) {
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(Err(Sent::Failed(io::ErrorKind::WriteZero.into())));
                    }
                    Poll::Ready(Ok(n)) => {
                        self.inbuf.consume(n);
                        self.ready -= n;
                        self.unflushed = true;
                        self.last_progress = tokio::time::Instant::now();
                        continue;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(Sent::Failed(e))),
                    Poll::Pending => return Poll::Pending,
                }
            }
            match self.inbuf.poll_fill(self.app, cx) {
                Poll::Ready(Ok(n)) if n > 0 => self.last_from_app = tokio::time::Instant::now(),
                Poll::Ready(_) => return Poll::Ready(Err(Sent::AppGone)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// Parses the answer's head at the start of `bytes` (`None` while incomplete) and
/// writes the application's version of it into `out`. `cut_short`: the request
/// body was not all sent, so neither connection is used again.
fn answer_head(
    bytes: &[u8],
    asked: &Asked,
    cut_short: bool,
    out: &mut Vec<u8>,
) -> Result<Option<Answer>, String> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut response = httparse::Response::new(&mut fields);
    let head_len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("its answer is not HTTP/1.1 ({e})")),
    };
    let status = response.code.unwrap_or(0);
    let headers = response.headers;
    if status == 101 {
        return Err("it switched protocols (101), which certkeeper does not ask for".into());
    }
    if !(100..=599).contains(&status) {
        return Err(format!(
            "its answer has status {status}, which HTTP does not have"
        ));
    }
    let interim = (100..200).contains(&status);
    framing::check_head(&bytes[..head_len]).map_err(|e| format!("its answer is broken: {e}"))?;
    let options = ConnectionOptions::of(headers);
    let declared = framing::declared(headers).map_err(|e| format!("its answer is broken: {e}"))?;
    if response.version == Some(0) && declared == Declared::Chunked {
        // RFC 9112 §6.1: chunked framing in an HTTP/1.0 message is faulty.
        return Err("its HTTP/1.0 answer says it is chunked, which HTTP/1.0 is not".into());
    }
    let framing = if interim || asked.head || status == 204 || status == 304 {
        Framing::Empty
    } else {
        match declared {
            Declared::Chunked => Framing::Chunked,
            Declared::Length(n) => Framing::Length(n),
            Declared::Nothing => Framing::UntilClose,
        }
    };
    let upstream_keeps =
        framing != Framing::UntilClose && options.persistent(response.version == Some(0));
    let dechunk = asked.http10 && framing == Framing::Chunked;
    let rechunk = !asked.http10 && framing == Framing::UntilClose;
    let close_app =
        !interim && (asked.close || cut_short || framing == Framing::UntilClose || dechunk);

    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    // httparse takes three-digit codes only.
    out.extend_from_slice(&[
        b'0' + (status / 100 % 10) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
        b' ',
    ]);
    out.extend_from_slice(response.reason.unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for h in headers.iter() {
        let framing_field = h.name.eq_ignore_ascii_case("content-length")
            || h.name.eq_ignore_ascii_case("transfer-encoding");
        if !framing_field && !options.drops(h.name) {
            push_field(out, h);
        }
    }
    // The framing the relay sends the body with (a HEAD's or 304's fields describe
    // the body a GET would have had; 1xx and 204 have none). An HTTP/1.0 application
    // gets a chunked body without its chunks, up to the close.
    if !interim && status != 204 {
        match declared {
            Declared::Length(n) => push_length(out, n),
            Declared::Chunked if !asked.http10 => {
                out.extend_from_slice(b"transfer-encoding: chunked\r\n");
            }
            Declared::Nothing if rechunk => {
                out.extend_from_slice(b"transfer-encoding: chunked\r\n");
            }
            Declared::Chunked | Declared::Nothing => {}
        }
    }
    if close_app {
        out.extend_from_slice(b"connection: close\r\n");
    } else if asked.http10 && !interim {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(Some(Answer {
        head_len,
        status,
        framing,
        interim,
        upstream_keeps,
        close_app,
        dechunk,
        rechunk,
    }))
}

/// Appends one header field line, as it came.
fn push_field(out: &mut Vec<u8>, field: &httparse::Header<'_>) {
    out.extend_from_slice(field.name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(field.value);
    out.extend_from_slice(b"\r\n");
}

/// The 408 for an application that stopped sending its request body.
fn app_stalled(upstream: &Upstream) -> Failure {
    Failure::Status(
        408,
        format!(
            "the application sent no more of its request body for {} s (client timeout)",
            upstream.timeouts.client.as_secs()
        ),
    )
}

/// The 400 for an application's chunked body that does not follow its framing.
fn broken_body(request: &str, e: framing::FramingError) -> Failure {
    Failure::Status(400, format!("{request}: the request body is broken: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(http10: bool, head: bool) -> Asked {
        Asked {
            head_len: 0,
            idempotent: true,
            head,
            http10,
            close: false,
            framing: Framing::Empty,
        }
    }

    /// The application's version of an answer head, or why it was refused.
    fn relayed(answer: &str, asked: &Asked) -> Result<(String, Framing), String> {
        let mut out = Vec::new();
        let a = answer_head(answer.as_bytes(), asked, false, &mut out)?.expect("a whole head");
        Ok((
            String::from_utf8(out).unwrap().to_ascii_lowercase(),
            a.framing,
        ))
    }

    #[test]
    fn the_answers_framing_is_the_relays_whatever_its_connection_field_names() {
        let (head, framing) = relayed(
            "HTTP/1.1 200 OK\r\nConnection: Content-Length, Transfer-Encoding\r\n\
             Content-Length: 0005\r\n\r\n",
            &asked(false, false),
        )
        .unwrap();
        assert_eq!(framing, Framing::Length(5));
        assert!(head.contains("\r\ncontent-length: 5\r\n"), "{head}");
        assert!(
            !head.contains("0005") && !head.contains("connection: content"),
            "{head}"
        );

        let (head, framing) = relayed(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\nConnection: transfer-encoding\r\n\r\n",
            &asked(false, false),
        )
        .unwrap();
        assert_eq!(framing, Framing::Chunked);
        assert_eq!(
            head.matches("transfer-encoding: chunked\r\n").count(),
            1,
            "{head}"
        );
        // To HTTP/1.0, the chunked body goes without chunks, up to the close.
        let (head, _) = relayed(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            &asked(true, false),
        )
        .unwrap();
        assert!(!head.contains("transfer-encoding") && head.contains("connection: close"));
        // A HEAD's answer keeps its length; a 204 has none.
        let (head, framing) = relayed(
            "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n",
            &asked(false, true),
        )
        .unwrap();
        assert_eq!(framing, Framing::Empty);
        assert!(head.contains("content-length: 12\r\n"), "{head}");
        let (head, _) = relayed(
            "HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n",
            &asked(false, false),
        )
        .unwrap();
        assert!(!head.contains("content-length"), "{head}");
    }

    #[test]
    fn an_answer_whose_framing_is_in_doubt_is_refused() {
        for bad in [
            "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\nContent-Length: 5\n\n",
            "HTTP/1.1 200 OK\r\nX-A: 1\r\n Content-Length: 5\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
        ] {
            assert!(relayed(bad, &asked(false, false)).is_err(), "{bad:?}");
        }
    }
}
