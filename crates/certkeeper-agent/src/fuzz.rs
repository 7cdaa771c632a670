//! Entry point for the `agent_request` fuzz target (`fuzz/` at the repository root)
//! and for the test that replays its corpus on the stable toolchain. Not part of the
//! API.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use crate::protocol::{Code, Envelope, MAX_MESSAGE, Request, VERSION, frame, parse_request};
use crate::server::{Frame, read_frame};

/// The bytes a caller sends on the socket: frames read as the server reads them, each
/// body parsed as a request. A parsed request serialises back to a request that
/// parses to the same JSON; a refused one is refused with `bad_request` or
/// `unsupported_version`; frames are never longer than the bytes that came.
pub fn agent_request(data: &[u8]) {
    let mut stream = data;
    loop {
        let before = stream.len();
        let outcome = {
            let mut future = pin!(read_frame(&mut stream));
            match future
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
            {
                Poll::Ready(outcome) => outcome,
                Poll::Pending => panic!("reading from a slice never waits"),
            }
        };
        let body = match outcome {
            Ok(Frame::Body(body)) => body,
            Ok(Frame::TooLarge(n)) => {
                assert!(n > MAX_MESSAGE);
                return;
            }
            Err(_) => return,
        };
        assert!(body.len() <= MAX_MESSAGE);
        assert_eq!(
            before - stream.len(),
            body.len() + 4,
            "a frame is its length and body"
        );
        assert_eq!(
            frame(&body),
            data[data.len() - before..data.len() - stream.len()]
        );
        check_request(&body);
    }
}

fn check_request(body: &[u8]) {
    match parse_request(body) {
        Ok(request) => {
            let op = request.op();
            let json = serde_json::to_vec(&Envelope {
                v: VERSION,
                request,
            })
            .expect("a request serialises");
            let again: Request = parse_request(&json).expect("a serialised request parses");
            assert_eq!(again.op(), op);
            let json_again = serde_json::to_vec(&Envelope {
                v: VERSION,
                request: again,
            })
            .expect("a request serialises");
            assert_eq!(json, json_again);
        }
        Err(response) => {
            assert_eq!(response.v, VERSION);
            assert!(response.ok.is_none());
            let error = response.error.expect("a refusal carries an error");
            assert!(
                matches!(error.code, Code::BadRequest | Code::UnsupportedVersion),
                "{:?}",
                error.code
            );
            assert!(!error.message.is_empty());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_of_requests_parse_and_refusals_are_bad_requests() {
        agent_request(&frame(br#"{"v":3,"op":"hello"}"#));
        agent_request(&frame(br#"{"v":1,"op":"hello"}"#));
        agent_request(&[0xff, 0xff, 0xff, 0xff]);
        let request = parse_request(br#"{"v":3,"op":"resolve","reference":"partner"}"#).unwrap();
        assert!(matches!(request, Request::Resolve { reference } if reference == "partner"));
        let refused = parse_request(br#"{"v":4,"op":"hello"}"#).unwrap_err();
        assert_eq!(refused.error.unwrap().code, Code::UnsupportedVersion);
    }

    /// Replays every committed corpus file, so the corpus keeps passing without
    /// nightly or libFuzzer.
    #[test]
    fn committed_corpus_replays() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus/agent_request");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| agent_request(&data));
            assert!(outcome.is_ok(), "{} fails", path.display());
            n += 1;
        }
        assert!(n > 0, "{} holds no inputs", dir.display());
    }
}
