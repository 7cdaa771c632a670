//! Request smuggling and desync through a binding's HTTP/1.1 relay: each case is
//! written by an application in one piece, then another application calls. The
//! partner's application behind its nginx (`Partner::ledger`) must have seen exactly
//! the requests the applications sent, and every application the answer to its own.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::agent::RunningAgent;
use crate::egress::{Partner, Seen, bind_cert, home_for, read_answer, wait_for_port};

/// What the partner's application must see of a case: nothing (the relay refuses
/// it with a 400 and closes), or these requests, each answered in order.
enum Outcome {
    Refused,
    Seen(Vec<Seen>),
}

fn seen(method: &str, target: &str, body: &[u8]) -> Seen {
    (method.into(), target.into(), body.to_vec())
}

/// A request the partner's nginx would read as a request of its own.
const SMUGGLED: &str = "GET /ledger/smuggled HTTP/1.1\r\nHost: x\r\n\r\n";

fn cases() -> Vec<(&'static str, Vec<u8>, Outcome)> {
    use Outcome::{Refused, Seen as Saw};
    let head = |target: &str, fields: &str| {
        format!("POST {target} HTTP/1.1\r\nHost: x\r\n{fields}\r\n").into_bytes()
    };
    let with = |mut head: Vec<u8>, body: &[u8]| {
        head.extend_from_slice(body);
        head
    };
    let smuggled_len = SMUGGLED.len();
    let mut cases = vec![
        // The application's own Connection field names the framing away.
        (
            "Connection naming Content-Length",
            with(
                head(
                    "/ledger/cl",
                    &format!(
                        "Connection: Content-Length\r\nContent-Length: {smuggled_len}\r\n"
                    ),
                ),
                SMUGGLED.as_bytes(),
            ),
            Saw(vec![seen("POST", "/ledger/cl", SMUGGLED.as_bytes())]),
        ),
        (
            "Connection naming Transfer-Encoding and Host",
            with(
                head(
                    "/ledger/te",
                    "Connection: Transfer-Encoding, Host\r\nTransfer-Encoding: chunked\r\n",
                ),
                b"5\r\nhello\r\n0\r\n\r\n",
            ),
            Saw(vec![seen("POST", "/ledger/te", b"hello")]),
        ),
        (
            "chunk extensions and trailers",
            with(
                head("/ledger/ext", "Transfer-Encoding: chunked\r\n"),
                b"4;name=value;q=\"a \\\" b\"\r\nWiki\r\n05 ; x\r\npedia\r\n0\r\nX-Sum: 9\r\n\r\n",
            ),
            Saw(vec![seen("POST", "/ledger/ext", b"Wikipedia")]),
        ),
        (
            "pipelined requests",
            [
                &b"GET /ledger/p1 HTTP/1.1\r\nHost: x\r\n\r\n"[..],
                b"POST /ledger/p2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
                b"POST /ledger/p3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n",
                b"GET /ledger/p4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            ]
            .concat(),
            Saw(vec![
                seen("GET", "/ledger/p1", b""),
                seen("POST", "/ledger/p2", b"abc"),
                seen("POST", "/ledger/p3", b"xyz"),
                seen("GET", "/ledger/p4", b""),
            ]),
        ),
        (
            "HTTP/1.0 with keep-alive",
            [
                &b"GET /ledger/h10a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"[..],
                b"POST /ledger/h10b HTTP/1.0\r\nContent-Length: 2\r\n\r\nok",
            ]
            .concat(),
            Saw(vec![
                seen("GET", "/ledger/h10a", b""),
                seen("POST", "/ledger/h10b", b"ok"),
            ]),
        ),
    ];
    // CL.TE, TE.CL and TE.TE: whatever the partner would make of them, the relay
    // refuses them.
    let smuggle_chunked = format!("0\r\n\r\n{SMUGGLED}");
    for fields in [
        "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 6\r\n",
        "Transfer-Encoding: xchunked\r\n",
        "Transfer-Encoding: chunked, identity\r\n",
        "Transfer-Encoding: identity, chunked\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-encoding: identity\r\n",
        "Transfer-Encoding : chunked\r\n",
        "Transfer-Encoding:\x0bchunked\r\n",
        "Transfer-Encoding: \"chunked\"\r\n",
        "X-A: 1\r\n Transfer-Encoding: chunked\r\n",
        "X-A: 1\r\n\tTransfer-Encoding: chunked\r\n",
    ] {
        cases.push((
            "a Transfer-Encoding that is not one plain chunked",
            with(head("/ledger/r", fields), smuggle_chunked.as_bytes()),
            Refused,
        ));
    }
    for fields in [
        "Content-Length: -1\r\n",
        "Content-Length: +5\r\n",
        "Content-Length: 99999999999999999999\r\n",
        "Content-Length: 5, 5\r\n",
        "Content-Length: 5\r\nContent-Length: 5\r\n",
        "Content-Length: 5\r\nContent-Length: 44\r\n",
        "Content-Length: 0x5\r\n",
    ] {
        cases.push((
            "a Content-Length that is not one number",
            with(
                head("/ledger/r", fields),
                format!("hello{SMUGGLED}").as_bytes(),
            ),
            Refused,
        ));
    }
    for raw in [
        &b"GET /ledger/r HTTP/1.1\nHost: x\n\n"[..],
        b"GET /ledger/r HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n",
        b"GET /ledger/r HTTP/1.1\r\nHost: x\r\nX-A: 1\rContent-Length: 5\r\n\r\nhello",
        b"GET /ledger/r HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n",
        b"GET /ledger/r\0 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /ledger/r HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ] {
        cases.push(("a head with NUL, a bare CR or LF", raw.to_vec(), Refused));
    }
    for body in [
        &b"0x5\r\nhello\r\n0\r\n\r\n"[..],
        b"5garbage\r\nhello\r\n0\r\n\r\n",
        b"5\nhello\r\n0\r\n\r\n",
        b"5\r\nhello\n0\r\n\r\n",
        b"5\r\nhello\r\r\r\n0\r\n\r\n",
        b"5\r\nhelloX\r\n0\r\n\r\n",
        b"10000000000000005\r\nhello\r\n0\r\n\r\n",
        b"-5\r\nhello\r\n0\r\n\r\n",
        b"5;a b\r\nhello\r\n0\r\n\r\n",
        b"5;a=\"b\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhello\r\n0\r\nX-A: 1\n\r\n",
        b"5\r\nhello\r\n0\r\n folded\r\n\r\n",
    ] {
        cases.push((
            "a chunked body off RFC 9112's grammar",
            with(head("/ledger/r", "Transfer-Encoding: chunked\r\n"), body),
            Refused,
        ));
    }
    cases
}

/// Reads what is left on an application's connection within `wait`: the bytes, and
/// whether it was closed.
fn rest(s: &mut TcpStream, wait: Duration) -> (Vec<u8>, bool) {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (all, true),
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return (all, false);
            }
            Err(_) => return (all, true),
        }
    }
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Another application's call: it must get the answer to its own request.
fn victim_calls(port: u16, n: usize) -> Seen {
    let target = format!("/ledger/victim-{n}");
    let mut s = connect(port);
    write!(s, "GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let (head, body) = read_answer(&mut s, false);
    assert!(head.starts_with("HTTP/1.1 200"), "{target}: {head}");
    assert_eq!(
        String::from_utf8_lossy(&body),
        format!("seen GET {target} "),
        "another application's answer reached {target}"
    );
    seen("GET", &target, b"")
}

/// The requests the partner's application saw since `before`, once it has had time
/// to see any request smuggled behind the others, in a stable order.
fn seen_since(partner: &Partner, before: usize) -> Vec<Seen> {
    std::thread::sleep(Duration::from_millis(300));
    let mut seen = partner.ledger.lock().unwrap()[before..].to_vec();
    seen.sort();
    seen
}

#[test]
fn smuggling_and_desync_through_a_binding_reach_the_partner_as_nothing_but_what_was_sent() {
    let partner = Partner::start();
    let env = home_for(&partner);
    let _agent = RunningAgent::start(&env);
    let port = bind_cert(&env, "h1", "partner", &partner.h1_url(""));
    wait_for_port(port);
    // The first call finds the partner speaks HTTP/1.1; the rest go by the hand relay.
    victim_calls(port, 0);

    let mut failed = Vec::new();
    for (n, (name, bytes, outcome)) in cases().into_iter().enumerate() {
        let what = format!("{name}: {:?}", String::from_utf8_lossy(&bytes));
        // Every case is tried, so that a failure lists all the cases that fail.
        let case =
            std::panic::AssertUnwindSafe(|| one_case(&partner, port, n, &what, &bytes, outcome));
        if std::panic::catch_unwind(case).is_err() {
            failed.push(what);
        }
    }
    assert!(
        failed.is_empty(),
        "{} cases failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

#[test]
fn over_http2_the_same_requests_are_refused_and_the_rest_relayed_as_they_were_sent() {
    let partner = Partner::start();
    let env = home_for(&partner);
    let _agent = RunningAgent::start(&env);
    // The partner's main port offers HTTP/2: the same relay reads the applications'
    // requests, and sends them over the shared HTTP/2 connection.
    let port = bind_cert(&env, "h2", "partner", &partner.url(""));
    wait_for_port(port);
    victim_calls(port, 0);
    let mut failed = Vec::new();
    for (n, (name, bytes, outcome)) in cases().into_iter().enumerate() {
        let what = format!("{name}: {:?}", String::from_utf8_lossy(&bytes));
        let case =
            std::panic::AssertUnwindSafe(|| one_case(&partner, port, n, &what, &bytes, outcome));
        if std::panic::catch_unwind(case).is_err() {
            failed.push(what);
        }
    }
    assert!(
        failed.is_empty(),
        "{} cases failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

/// Writes one case's bytes as an application, checks its answers, then two other
/// applications' calls and what the partner saw.
fn one_case(partner: &Partner, port: u16, n: usize, what: &str, bytes: &[u8], outcome: Outcome) {
    let before = partner.ledger.lock().unwrap().len();
    let mut app = connect(port);
    app.write_all(bytes).unwrap();
    let mut expected = match outcome {
        Outcome::Refused => {
            let (head, body) = read_answer(&mut app, false);
            assert!(head.starts_with("HTTP/1.1 400"), "{what}: {head}");
            assert!(!body.is_empty(), "{what}: a reason");
            let (more, closed) = rest(&mut app, Duration::from_secs(5));
            assert!(closed && more.is_empty(), "{what}: closed after the 400");
            Vec::new()
        }
        Outcome::Seen(requests) => {
            for (method, target, body) in &requests {
                let (head, answer) = read_answer(&mut app, false);
                // HTTP/1.0 applications may be answered in HTTP/1.0 (hyper does).
                assert!(
                    head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
                    "{what}: {head} {:?}",
                    String::from_utf8_lossy(&answer)
                );
                let mut own = format!("seen {method} {target} ").into_bytes();
                own.extend_from_slice(body);
                assert_eq!(
                    String::from_utf8_lossy(&answer),
                    String::from_utf8_lossy(&own),
                    "{what}"
                );
            }
            let (more, _) = rest(&mut app, Duration::from_millis(300));
            assert!(
                more.is_empty(),
                "{what}: an answer nobody asked for: {:?}",
                String::from_utf8_lossy(&more)
            );
            requests
        }
    };
    // The application leaves; its upstream connection goes back to the pool, and
    // the next applications must not get anything meant for it.
    drop(app);
    std::thread::sleep(Duration::from_millis(50));
    expected.push(victim_calls(port, 2 * n + 1));
    expected.push(victim_calls(port, 2 * n + 2));
    expected.sort();
    assert_eq!(seen_since(partner, before), expected, "{what}");
}

#[test]
fn a_partner_that_answers_early_or_refuses_100_continue_gets_no_stray_bytes() {
    let partner = Partner::start();
    let env = home_for(&partner);
    let _agent = RunningAgent::start(&env);
    let port = bind_cert(&env, "h1", "partner", &partner.h1_url(""));
    wait_for_port(port);
    victim_calls(port, 0);

    // The partner answers without reading the body, which carries a request: it is
    // read as a body all the same, by the partner and by the relay.
    let before = partner.ledger.lock().unwrap().len();
    let mut app = connect(port);
    write!(
        app,
        "POST /ledger/early/a HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{SMUGGLED}",
        SMUGGLED.len()
    )
    .unwrap();
    let (head, body) = read_answer(&mut app, false);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, b"early /ledger/early/a\n");
    drop(app);
    let mut expected = vec![victim_calls(port, 1), victim_calls(port, 2)];

    // It answers while most of the body is still to come: the application's
    // connection closes after the answer, and the upstream one is not used again.
    let mut app = connect(port);
    app.write_all(b"POST /ledger/early/b HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        .unwrap();
    app.write_all(SMUGGLED.as_bytes()).unwrap();
    let (head, body) = read_answer(&mut app, false);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    assert_eq!(body, b"early /ledger/early/b\n");
    let _ = app.write_all(SMUGGLED.as_bytes());
    let (more, closed) = rest(&mut app, Duration::from_secs(5));
    assert!(
        closed && more.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&more)
    );
    expected.push(victim_calls(port, 3));

    // Expect: 100-continue, and the partner refuses the body (too large for it): the
    // application gets the refusal, never sends the body, and its connection closes.
    let mut app = connect(port);
    app.write_all(
        b"POST /ledger/small/c HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n",
    )
    .unwrap();
    let (head, _) = read_answer(&mut app, false);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    let (more, closed) = rest(&mut app, Duration::from_secs(5));
    assert!(
        closed && more.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&more)
    );
    expected.push(victim_calls(port, 4));
    expected.push(victim_calls(port, 5));
    expected.sort();
    assert_eq!(seen_since(&partner, before), expected);
}

/// A partner written by hand (TLS, no nginx in front) whose answers play with their
/// framing, chosen by the request's path; every answer's body starts with
/// `for PATH`. Requests are read one after another on each connection.
fn framing_partner(partner: &Partner) -> u16 {
    use certkeeper_testkit::Spec;
    let mut spec = Spec::server("localhost");
    spec.dns.push("127.0.0.1".into());
    let cert = partner.server_root.issue(&spec);
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(cert.key_der().into());
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.der.into()], key)
    .unwrap();
    let config = std::sync::Arc::new(config);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(tcp) = stream else { continue };
            let config = std::sync::Arc::clone(&config);
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                loop {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if tls.read_exact(&mut byte).is_err() {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                    let body = format!("for {path}\n");
                    let len = body.len();
                    let answer = match path.as_str() {
                        "/cl-named" => format!(
                            "HTTP/1.1 200 OK\r\nConnection: Content-Length, Transfer-Encoding\r\n\
                             Content-Length: {len}\r\n\r\n{body}HTTP/1.1 200 OK\r\n\
                             Content-Length: 6\r\n\r\nstray\n"
                        ),
                        "/cl-list" => {
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {len}, {len}\r\n\r\n{body}")
                        }
                        "/te-cl" => format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n\
                             {len:x}\r\n{body}\r\n0\r\n\r\n"
                        ),
                        "/te-gzip" => format!(
                            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
                             {len:x}\r\n{body}\r\n0\r\n\r\n"
                        ),
                        "/bare-lf" => format!("HTTP/1.1 200 OK\nContent-Length: {len}\n\n{body}"),
                        "/chunk-ext" => format!(
                            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                             {len:x};secret=ext\r\n{body}\r\n0;more\r\nX-Trailer-Secret: 1\r\n\r\n"
                        ),
                        "/chunk-lf" => format!(
                            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                             {len:x}\n{body}\r\n0\r\n\r\n"
                        ),
                        "/stray-later" => {
                            let _ = write!(
                                tls,
                                "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n{body}"
                            );
                            let _ = tls.flush();
                            std::thread::sleep(Duration::from_millis(200));
                            "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nstray\n".to_string()
                        }
                        "/head-then-close" => {
                            let _ = write!(tls, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
                            let _ = tls.flush();
                            return;
                        }
                        "/whole-then-close" => {
                            // A whole answer, then the TCP connection closed with it,
                            // without TLS close_notify.
                            let _ = write!(
                                tls,
                                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                                 {len:x}\r\n{body}\r\n0\r\n\r\n"
                            );
                            let _ = tls.flush();
                            let _ = tls.sock.shutdown(std::net::Shutdown::Both);
                            return;
                        }
                        "/unframed" => {
                            let _ = write!(tls, "HTTP/1.1 200 OK\r\n\r\n{body}");
                            let _ = tls.flush();
                            return;
                        }
                        _ => format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n{body}"),
                    };
                    if tls.write_all(answer.as_bytes()).is_err() || tls.flush().is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// One GET over HTTP/`version` on a new application connection: everything the relay
/// sends until it closes the connection.
fn get_to_close(port: u16, path: &str, version: &str) -> String {
    let mut s = connect(port);
    write!(s, "GET {path} HTTP/{version}\r\nHost: x\r\n\r\n").unwrap();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    String::from_utf8_lossy(&all).into_owned()
}

/// One GET on an application connection: the head, and the raw bytes after it that
/// the relay sent within `wait` (the connection may stay open).
fn get_raw(s: &mut TcpStream, path: &str, wait: Duration) -> (String, Vec<u8>) {
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let (head, _) = read_answer(s, true);
    let (rest, _) = rest(s, wait);
    (head, rest)
}

#[test]
fn answers_whose_framing_is_in_doubt_never_reach_another_request() {
    let partner = Partner::start();
    let env = home_for(&partner);
    let _agent = RunningAgent::start(&env);
    let upstream = format!("https://localhost:{}", framing_partner(&partner));
    let port = bind_cert(&env, "liar", "partner", &upstream);
    wait_for_port(port);
    let own = |s: &mut TcpStream, path: &str| {
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let (head, body) = read_answer(s, false);
        assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
        assert_eq!(String::from_utf8_lossy(&body), format!("for {path}\n"));
        head
    };
    // The first connection finds the partner speaks HTTP/1.1; the next ones reuse it.
    own(&mut connect(port), "/warm");
    let mut s = connect(port);
    own(&mut s, "/hand");

    // The answer's Connection field names its framing: the length still frames it,
    // and the answer after it, which nobody asked for, goes to nobody.
    let head = own(&mut s, "/cl-named").to_ascii_lowercase();
    assert!(head.contains("content-length: 14\r\n"), "{head}");
    own(&mut s, "/after-cl-named");
    // Extensions and trailers do not reach the application: the chunks are the relay's.
    let (head, raw) = get_raw(&mut s, "/chunk-ext", Duration::from_millis(300));
    assert!(
        head.to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    assert_eq!(
        String::from_utf8_lossy(&raw),
        "f\r\nfor /chunk-ext\n\r\n0\r\n\r\n"
    );
    own(&mut s, "/after-chunk-ext");
    // An answer that comes later, unasked, is never read as the next one's.
    own(&mut s, "/stray-later");
    std::thread::sleep(Duration::from_millis(500));
    own(&mut s, "/after-stray");
    drop(s);

    // Answers whose framing is in doubt: a 502, and the connection closed.
    for path in ["/cl-list", "/te-cl", "/te-gzip", "/bare-lf", "/chunk-lf"] {
        let all = get_to_close(port, path, "1.1");
        if path == "/chunk-lf" {
            // The head went on before the body broke: the answer is cut off.
            assert!(!all.contains("for /chunk-lf"), "{path}: {all}");
        } else {
            assert!(all.starts_with("HTTP/1.1 502"), "{path}: {all}");
        }
        let mut s = connect(port);
        own(&mut s, &format!("/after{path}"));
    }

    // A whole answer whose connection then closed without close_notify: the next
    // request on the same application connection goes on a new upstream connection,
    // unaffected by how the last one ended.
    let mut s = connect(port);
    for n in 0..5 {
        own(&mut s, "/whole-then-close");
        own(&mut s, &format!("/after-whole-then-close-{n}"));
    }
    // An answer whose head came and whose body never did: the application has had
    // nothing yet, so it gets a 502 that says why, not an empty reply.
    let all = get_to_close(port, "/head-then-close", "1.1");
    assert!(
        all.starts_with("HTTP/1.1 502") && all.contains("in the middle of the answer"),
        "{all}"
    );
    // An answer that ends when the partner closes goes to an HTTP/1.1 application in
    // chunks of the relay's making, so that its end (or a cut) shows; to HTTP/1.0 as
    // it came, up to the close.
    let mut s = connect(port);
    write!(s, "GET /unframed HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let (head, body) = read_answer(&mut s, false);
    assert!(
        head.to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    assert_eq!(String::from_utf8_lossy(&body), "for /unframed\n");
    let all = get_to_close(port, "/unframed", "1.0");
    assert!(
        all.starts_with("HTTP/1.1 200")
            && !all.to_ascii_lowercase().contains("transfer-encoding")
            && all.ends_with("\r\n\r\nfor /unframed\n"),
        "{all}"
    );
}
