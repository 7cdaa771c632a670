//! The relay's reading of requests against hyper's HTTP/1.1 server, on valid requests
//! and on mutations of them: wherever the relay accepts a request, hyper must accept
//! it too and read the same body ending at the same byte; wherever hyper refuses
//! one, the relay must refuse it. The relay may refuse more (it is stricter about
//! bare LF, whitespace after a chunk size, chunk extensions and listed lengths), and
//! the test reports how often it did.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

use crate::framing::{self, BodyScan, ConnectionOptions};

/// Written after each case: where the first request's body ended shows in whether
/// this is read as the next request.
const NEXT: &[u8] = b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n";

/// How a server read the first request: its body, and whether the bytes after it
/// were read as the request `NEXT`. `None`: refused (or never complete).
type Reading = Option<(Vec<u8>, bool)>;

fn relay_reads(input: &[u8]) -> Reading {
    let mut fields = [httparse::EMPTY_HEADER; 128];
    let mut request = httparse::Request::new(&mut fields);
    let httparse::Status::Complete(head_len) = request.parse(input).ok()? else {
        return None;
    };
    let http10 = request.version == Some(0);
    let framing = framing::request_framing(&input[..head_len], request.headers, http10).ok()?;
    let persistent = ConnectionOptions::of(request.headers).persistent(http10);
    let mut body = BodyScan::new(framing);
    let mut payload = Vec::new();
    let rest = &input[head_len..];
    let taken = body
        .take(rest, &mut |r| payload.extend_from_slice(&rest[r]))
        .ok()?;
    if !body.is_done() {
        return None;
    }
    Some((payload, persistent && is_next(&rest[taken..])))
}

/// Whether `bytes` are read as the request `NEXT` and nothing else (empty lines
/// before a request are ignored, RFC 9112 §2.2).
fn is_next(bytes: &[u8]) -> bool {
    let mut fields = [httparse::EMPTY_HEADER; 4];
    let mut request = httparse::Request::new(&mut fields);
    matches!(request.parse(bytes), Ok(httparse::Status::Complete(n)) if n == bytes.len())
        && request.method == Some("GET")
        && request.path == Some("/next")
}

/// A request hyper served: "METHOD /path", and its body (`None`: not read whole).
type Served = (String, Option<Vec<u8>>);

async fn hyper_reads(input: Vec<u8>) -> Reading {
    let (mut client, server) = tokio::io::duplex(1 << 20);
    let seen: Arc<Mutex<Vec<Served>>> = Arc::default();
    let record = Arc::clone(&seen);
    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let record = Arc::clone(&record);
        async move {
            let path = format!("{} {}", req.method(), req.uri().path());
            let body = req
                .into_body()
                .collect()
                .await
                .ok()
                .map(|b| b.to_bytes().to_vec());
            record.lock().unwrap().push((path, body));
            Ok::<_, hyper::Error>(hyper::Response::new(Full::new(Bytes::from_static(b"ok"))))
        }
    });
    let serve =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(server), service);
    let serving = tokio::spawn(serve);
    client.write_all(&input).await.unwrap();
    // All of it is in memory: hyper reads what it will while this task yields, and
    // only then sees the end of the stream (at once, it would take the rest for a
    // message cut short).
    for _ in 0..64 {
        tokio::task::yield_now().await;
    }
    client.shutdown().await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), serving).await;
    let seen = seen.lock().unwrap();
    let (_, first) = seen.first()?;
    let next = seen.get(1).is_some_and(|(path, body)| {
        path == "GET /next" && body.as_deref() == Some(&[][..]) && seen.len() == 2
    });
    Some((first.clone()?, next))
}

/// Valid requests the mutations start from.
fn starting_cases() -> Vec<Vec<u8>> {
    [
        &b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4;a=b\r\nWiki\r\n5;c=\"d e\"\r\npedia\r\n0\r\n\r\n",
        b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n",
        b"POST /a HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
        b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        b"POST /a HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc",
    ]
    .iter()
    .map(|s| s.to_vec())
    .collect()
}

/// Pieces a mutation inserts or puts in place of a byte.
const PIECES: &[&[u8]] = &[
    b"\r",
    b"\n",
    b" ",
    b"\t",
    b";",
    b"=",
    b"\"",
    b",",
    b":",
    b"0",
    b"5",
    b"a",
    b"f",
    b"x",
    b"\0",
    b"-",
    b"+",
    b"\x0b",
    b"\\",
    b"\r\n",
    b"chunked",
    b", chunked",
    b"identity",
    b"Transfer-Encoding: chunked\r\n",
    b"Content-Length: 3\r\n",
    b"Content-Length: 5\r\n",
    b"Connection: close\r\n",
    b"0\r\n\r\n",
    b"ffffffffffffffff",
    b"10000000000000000",
    b"X-T: 1\r\n",
];

/// xorshift64*: deterministic, so a failure is found again by its number.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

/// One to three insertions, replacements or deletions after the request line (the
/// target is not what is compared).
fn mutate(original: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut m = original.to_vec();
    let line_end = m.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    for _ in 0..1 + rng.below(3) {
        if m.len() <= line_end {
            break;
        }
        let at = line_end + rng.below(m.len() - line_end);
        let piece = PIECES[rng.below(PIECES.len())];
        match rng.below(3) {
            0 => {
                m.splice(at..at, piece.iter().copied());
            }
            1 => {
                m.splice(at..at + 1, piece.iter().copied());
            }
            _ => {
                m.remove(at);
            }
        }
    }
    m
}

#[test]
fn the_relay_reads_no_request_otherwise_than_hyper() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let cases = starting_cases();
    let (mut stricter, mut both_accept) = (0, 0);
    let mut disagreements = Vec::new();
    for i in 0..10_000 {
        let case = if i < cases.len() {
            cases[i].clone()
        } else {
            mutate(&cases[rng.below(cases.len())], &mut rng)
        };
        let mut input = case.clone();
        input.extend_from_slice(NEXT);
        let relay = relay_reads(&input);
        let hyper = runtime.block_on(hyper_reads(input));
        if i < cases.len() {
            assert!(
                relay.is_some() && relay == hyper,
                "input {i} {:?}: relay {relay:?}, hyper {hyper:?}",
                String::from_utf8_lossy(&case)
            );
        }
        match (&relay, &hyper) {
            (None, None) => {}
            (None, Some(_)) => stricter += 1,
            (Some(_), _) if relay == hyper => both_accept += 1,
            _ => disagreements.push(format!(
                "case {i} {:?}: relay {relay:?}, hyper {hyper:?}",
                String::from_utf8_lossy(&case)
            )),
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    // The mutations must reach both sides of the line.
    assert!(
        both_accept > 300 && stricter > 0,
        "{both_accept} {stricter}"
    );
    eprintln!("agreed on {both_accept} accepted requests; the relay alone refused {stricter}");
}
