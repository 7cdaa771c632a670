//! Requests relayed over the upstream's shared HTTP/2 connection.
//!
//! The application's request has been read and checked by the relay exactly as for
//! an HTTP/1.1 upstream ([`crate::relay`]); here its head becomes an HTTP/2 request
//! sent through hyper's client, which does the work HTTP/2 needs (multiplexing, flow
//! control, HPACK), and its body is fed to that request as the relay reads it. The
//! answer goes back to the application with framing of the relay's own making, as on
//! the HTTP/1.1 path: a `content-length` when the partner declared one (its DATA
//! frames must add up to it), chunks otherwise.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Request, Response, Uri};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::app::AppStream;
use crate::buffer::{Buffer, write_both, write_both_paced};
use crate::framing::{self, BodyScan, Framing};
use crate::pool::{H2Sender, Upstream};

/// A request body on its way upstream: what the relay read of it, in order.
pub struct Outgoing {
    parts: mpsc::Receiver<Part>,
    ended: bool,
}

/// A piece of a request body, and whether it is the last.
pub(crate) enum Part {
    Data(Bytes, bool),
}

/// The application's body did not come to its end: the stream is reset, so the
/// partner never takes a cut-off body for a whole one.
#[derive(Debug, thiserror::Error)]
#[error("the application's request body was cut off")]
pub struct CutOff;

impl hyper::body::Body for Outgoing {
    type Data = Bytes;
    type Error = CutOff;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, CutOff>>> {
        loop {
            if self.ended {
                return Poll::Ready(None);
            }
            match self.parts.poll_recv(cx) {
                Poll::Ready(Some(Part::Data(data, last))) => {
                    self.ended = last;
                    if !data.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                }
                // The relay stopped feeding it before its end.
                Poll::Ready(None) => return Poll::Ready(Some(Err(CutOff))),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }
}

/// What the relay knows of the request, besides its head.
pub(crate) struct Ask<'a> {
    pub head: bool,
    pub http10: bool,
    pub close: bool,
    pub framing: Framing,
    /// "METHOD /path", for log lines.
    pub request: &'a str,
}

/// How an exchange failed before the answer's head reached the application.
pub(crate) enum Failed {
    /// The upstream failed: 502, and what failed.
    Upstream(String),
    /// No answer within the upstream timeout: 504.
    Timeout,
    /// The application sent no more of its body within the client timeout: 408.
    AppStalled,
    /// The application closed its connection.
    AppGone,
    /// The application's chunked body is broken: 400.
    BadBody(framing::FramingError),
    /// The answer broke off before its head reached the application: status, why.
    Gateway(u16, String),
}

/// The HTTP/2 request for `head` (the head the relay wrote for an HTTP/1.1 upstream:
/// checked, its hop-by-hop fields out, its framing the relay's own): the same method,
/// path and fields, the upstream's authority instead of `Host`, no
/// `transfer-encoding`, and no `expect` (the relay answers `100-continue` itself).
/// Also whether the application asked for `100-continue`.
pub(crate) fn request_head(
    head: &[u8],
    upstream: &Upstream,
) -> Result<(http::request::Parts, bool), (u16, String)> {
    let mut fields = [httparse::EMPTY_HEADER; crate::buffer::MAX_FIELDS];
    let mut parsed = httparse::Request::new(&mut fields);
    match parsed.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => {
            return Err((
                500,
                "the request head could not be rewritten for HTTP/2".into(),
            ));
        }
    }
    let method = parsed.method.unwrap_or("GET");
    let path = parsed.path.unwrap_or("/");
    if !path.starts_with('/') {
        return Err((
            501,
            format!("{method} {path} cannot be sent over HTTP/2, which names paths only"),
        ));
    }
    let uri = Uri::builder()
        .scheme(http::uri::Scheme::HTTPS)
        .authority(upstream.authority.clone())
        .path_and_query(path)
        .build()
        .map_err(|e| (400, format!("{method} {path}: {e}")))?;
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .version(http::Version::HTTP_2);
    let mut expects_continue = false;
    for field in parsed.headers.iter() {
        let name = field.name;
        if name.eq_ignore_ascii_case("expect") {
            expects_continue |= field.value.eq_ignore_ascii_case(b"100-continue");
            continue;
        }
        // The head holds no hop-by-hop field (the relay left them out); of its own
        // lines, `host` becomes the authority and the framing is HTTP/2's.
        if name.eq_ignore_ascii_case("host") || name.eq_ignore_ascii_case("transfer-encoding") {
            continue;
        }
        let name = HeaderName::from_bytes(name.as_bytes());
        let value = HeaderValue::from_bytes(field.value);
        match (name, value) {
            (Ok(n), Ok(v)) => {
                request = request.header(n, v);
            }
            _ => {
                return Err((
                    400,
                    format!(
                        "{method} {path}: the field {:?} cannot be sent over HTTP/2",
                        field.name
                    ),
                ));
            }
        }
    }
    let request = request
        .body(())
        .map_err(|e| (400, format!("{method} {path}: {e}")))?;
    Ok((request.into_parts().0, expects_continue))
}

/// Sends the request (head `parts`, body read from `inbuf` and the application),
/// waits for the answer and relays it. `Ok(true)`: the application's connection may
/// carry another request.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn exchange(
    mut sender: H2Sender,
    upstream: &Upstream,
    parts: http::request::Parts,
    expects_continue: bool,
    ask: &Ask<'_>,
    app: &mut AppStream,
    inbuf: &mut Buffer,
    out: &mut Vec<u8>,
) -> Result<bool, Failed> {
    let timeouts = upstream.timeouts;
    let mut body = BodyScan::new(ask.framing);
    let (tx, rx) = mpsc::channel(4);
    let outgoing = Outgoing {
        parts: rx,
        ended: body.is_done(),
    };
    std::future::poll_fn(|cx| sender.poll_ready(cx))
        .await
        .map_err(|e| Failed::Upstream(upstream.explain(&e)))?;
    let answer = sender.send_request(Request::from_parts(parts, outgoing));
    tokio::pin!(answer);
    if expects_continue && !body.is_done() && inbuf.is_empty() && !ask.http10 {
        write_both(app, b"HTTP/1.1 100 Continue\r\n\r\n", &[])
            .await
            .map_err(|_| Failed::AppGone)?;
    }
    let mut last_app = Instant::now();
    let mut last_sent = Instant::now();
    let mut wanted = true;
    let response: Response<Incoming> = loop {
        let pumping = wanted && !body.is_done();
        let from_app = pumping && inbuf.is_empty();
        let deadline = if from_app {
            last_app + timeouts.client
        } else {
            last_sent + timeouts.response
        };
        tokio::select! {
            biased;
            answered = &mut answer => {
                break answered.map_err(|e| Failed::Upstream(upstream.explain(&e)))?;
            }
            read = inbuf.fill(app, usize::MAX, true), if from_app => match read {
                Ok(n) if n > 0 => last_app = Instant::now(),
                _ => return Err(Failed::AppGone),
            },
            permit = tx.reserve(), if pumping && !from_app => match permit {
                Ok(permit) => {
                    let mut data = Vec::new();
                    let taken = body
                        .take(inbuf.bytes(), &mut |r| data.extend_from_slice(&inbuf.bytes()[r]))
                        .map_err(Failed::BadBody)?;
                    inbuf.consume(taken);
                    permit.send(Part::Data(Bytes::from(data), body.is_done()));
                    last_sent = Instant::now();
                }
                // The partner no longer reads the body (it answers, or reset the stream).
                Err(_) => wanted = false,
            },
            () = tokio::time::sleep_until(deadline) => {
                return Err(if from_app { Failed::AppStalled } else { Failed::Timeout });
            }
        }
    };
    let request_sent = body.is_done();
    let length = declared_length(response.headers()).map_err(|()| {
        Failed::Upstream(format!(
            "{}: its answer is broken: a bad content-length",
            upstream.target
        ))
    })?;
    let kept = relay_answer(upstream, response, length, ask, request_sent, app, out).await?;
    // Whatever of the body never went stays unsent: the stream is reset (`tx` dropped
    // before its end), and the application's connection closes (`relay_answer`).
    drop(tx);
    Ok(kept)
}

/// Writes the answer to the application; whether its connection may carry another
/// request, or the failure to answer with when the answer broke off before its head
/// went.
async fn relay_answer(
    upstream: &Upstream,
    response: Response<Incoming>,
    length: Option<u64>,
    ask: &Ask<'_>,
    request_sent: bool,
    app: &mut AppStream,
    out: &mut Vec<u8>,
) -> Result<bool, Failed> {
    let (parts, mut incoming) = response.into_parts();
    let status = parts.status.as_u16();
    let framing = if ask.head || status == 204 || status == 304 {
        Framing::Empty
    } else {
        length.map_or(Framing::Chunked, Framing::Length)
    };
    let dechunk = ask.http10 && framing == Framing::Chunked;
    let close_app = ask.close || !request_sent || dechunk;

    out.clear();
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {} {}\r\n",
            status,
            parts.status.canonical_reason().unwrap_or("")
        )
        .as_bytes(),
    );
    for (name, value) in &parts.headers {
        if name == http::header::CONTENT_LENGTH || framing::is_hop_by_hop(name.as_str()) {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if status != 204 {
        match length {
            Some(n) => crate::buffer::push_length(out, n),
            None if framing == Framing::Chunked && !dechunk => {
                out.extend_from_slice(b"transfer-encoding: chunked\r\n");
            }
            None => {}
        }
    }
    if close_app {
        out.extend_from_slice(b"connection: close\r\n");
    } else if ask.http10 {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");

    let mut head = true;
    let mut timer = crate::buffer::Deadline::new();
    let mut sent: u64 = 0;
    let mut scratch = Vec::new();
    // The answer broke off: before its head reached the application, a status like
    // any failed call; after, the application's connection is reset, so that an
    // answer whose end the framing cannot show does not look whole.
    let cut_off = |app: &mut AppStream, head: bool, status_now: u16, reason: String| {
        if head {
            return Err(Failed::Gateway(status_now, reason));
        }
        upstream.log_failure(&ask.request, Some(status), &reason);
        app.abort();
        Ok(false)
    };
    loop {
        let frame = match tokio::time::timeout(upstream.timeouts.response, incoming.frame()).await {
            Err(_) => return cut_off(app, head, 504, upstream.body_stalled()),
            Ok(None) => None,
            Ok(Some(Ok(frame))) => Some(frame),
            Ok(Some(Err(e))) => {
                let reason = format!("the answer was cut off: {}", upstream.explain(&e));
                return cut_off(app, head, 502, reason);
            }
        };
        scratch.clear();
        let end = frame.is_none();
        if let Some(data) = frame.and_then(|f| f.into_data().ok()) {
            if framing == Framing::Empty || data.is_empty() {
                continue;
            }
            sent += data.len() as u64;
            if matches!(framing, Framing::Length(n) if sent > n) {
                let reason = format!(
                    "{} sent more than its content-length; the answer was cut off",
                    upstream.target
                );
                return cut_off(app, head, 502, reason);
            }
            if framing == Framing::Chunked && !dechunk {
                framing::push_chunk(&mut scratch, &data);
            } else {
                scratch.extend_from_slice(&data);
            }
        } else if !end {
            continue; // trailers: not relayed
        }
        if end {
            if matches!(framing, Framing::Length(n) if sent != n) {
                let reason = format!(
                    "{} sent less than its content-length; the answer was cut off",
                    upstream.target
                );
                return cut_off(app, head, 502, reason);
            }
            if framing == Framing::Chunked && !dechunk {
                scratch.extend_from_slice(b"0\r\n\r\n");
            }
        }
        let before: &[u8] = if head { out } else { &[] };
        let limit = upstream.timeouts.client;
        if let Err(e) = write_both_paced(app, before, &scratch, &mut timer, limit).await {
            if e.kind() == std::io::ErrorKind::TimedOut {
                upstream.log_failure(&ask.request, Some(status), &upstream.unread());
                app.abort();
            }
            return Ok(false);
        }
        head = false;
        if end {
            break;
        }
    }
    if close_app {
        let _ = app.shutdown().await;
    }
    Ok(!close_app)
}

/// The answer's `content-length`: none, or exactly one decimal number.
fn declared_length(headers: &http::HeaderMap) -> Result<Option<u64>, ()> {
    let mut values = headers.get_all(http::header::CONTENT_LENGTH).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let digits = value.as_bytes();
    if values.next().is_some()
        || digits.is_empty()
        || digits.len() > 18
        || !digits.iter().all(u8::is_ascii_digit)
    {
        return Err(());
    }
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Some)
        .ok_or(())
}
