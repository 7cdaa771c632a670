//! Entry points for the `framing`, `server_hello` and `cert_request` fuzz targets (`fuzz/` at the
//! repository root) and for the test that replays their corpora on the stable
//! toolchain. Not part of the API.

use crate::framing::{self, BodyScan, ConnectionOptions, Framing};

/// The first byte is how many bytes at a time the body arrives in (1 to 64, or all at
/// once for 0); the rest is an HTTP/1.1 request head and what follows it, or, if it
/// is not a complete head, a chunked body. A body scans the same whatever its
/// pieces, says only bytes it took are payload, in order, and a `Content-Length` body
/// takes exactly its length.
pub fn framing(data: &[u8]) {
    let Some((&step, input)) = data.split_first() else {
        return;
    };
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let (framing, body) = match request.parse(input) {
        Ok(httparse::Status::Complete(head)) => {
            let headers = &*request.headers;
            let options = ConnectionOptions::of(headers);
            for h in headers {
                if framing::is_hop_by_hop(h.name) {
                    assert!(options.drops(h.name));
                }
            }
            // The relay's own strict reading of the head: a head it refuses has no body.
            let http10 = request.version == Some(0);
            let Ok(framing) = framing::request_framing(&input[..head], headers, http10) else {
                return;
            };
            (framing, &input[head..])
        }
        _ => (Framing::Chunked, input),
    };
    let whole = scan(framing, body, body.len().max(1));
    let pieces = match step % 65 {
        0 => whole.clone(),
        n => scan(framing, body, usize::from(n)),
    };
    assert_eq!(whole, pieces, "the body scans the same in pieces of {step}");
    if let (Ok((taken, done)), Framing::Length(n)) = (&whole.1, framing) {
        let expected = usize::try_from(n).map_or(body.len(), |n| n.min(body.len()));
        assert_eq!(*taken, expected);
        assert_eq!(*done, expected as u64 == n);
        assert_eq!(whole.0, body[..expected]);
    }
}

/// A partner's first record as the probe of an old partner reads it
/// ([`crate::probe`]): a version and suite only from a whole ServerHello record, only
/// those the probe offered, and the same whatever follows the record.
pub fn server_hello(data: &[u8]) {
    let Some(picked) = crate::probe::read_server_hello(data) else {
        return;
    };
    assert_eq!(data[0], 0x16, "a handshake record");
    assert!(["TLS 1.0", "TLS 1.1", "TLS 1.2"].contains(&picked.version));
    assert!(picked.suite.starts_with("TLS_"));
    assert!(!picked.describe().is_empty());
    let length = usize::from(u16::from_be_bytes([data[3], data[4]]));
    let mut longer = data[..5 + length].to_vec();
    longer.extend_from_slice(b"after the record");
    assert_eq!(crate::probe::read_server_hello(&longer), Some(picked));
}

/// A partner's CertificateRequest as OpenSSL's message callback hands it over
/// ([`crate::cert_request`]); the first byte picks the version (TLS 1.0 to 1.3). A
/// request that reads gives non-empty names, each within the message, and reads the
/// same with its last byte counted as part of the message no more.
pub fn cert_request(data: &[u8]) {
    let Some((&pick, message)) = data.split_first() else {
        return;
    };
    let version = 0x0301 + i32::from(pick % 4);
    let Ok(names) = crate::cert_request::acceptable_cas(version, message) else {
        return;
    };
    for name in &names {
        assert!(!name.is_empty() && name.len() <= message.len());
    }
    assert!(
        crate::cert_request::acceptable_cas(version, &message[..message.len() - 1]).is_err(),
        "a cut message is refused"
    );
}

type Scanned = (Vec<u8>, Result<(usize, bool), framing::FramingError>);

/// Feeds `input` in pieces of `step` bytes: the payload, then the bytes taken and
/// whether the body ended, or the error.
fn scan(framing: Framing, input: &[u8], step: usize) -> Scanned {
    let mut body = BodyScan::new(framing);
    let mut taken = 0;
    let mut payload = Vec::new();
    for piece in input.chunks(step) {
        let mut next = 0;
        let result = body.take(piece, &mut |r| {
            assert!(r.start >= next && r.start < r.end && r.end <= piece.len());
            next = r.end;
            payload.extend_from_slice(&piece[r]);
        });
        let n = match result {
            Ok(n) => n,
            Err(e) => return (payload, Err(e)),
        };
        assert!(
            n <= piece.len() && next <= n,
            "payload lies within what was taken"
        );
        taken += n;
        if n < piece.len() {
            assert!(body.is_done(), "a body stops taking bytes only at its end");
            break;
        }
    }
    assert!(payload.len() <= taken);
    (payload, Ok((taken, body.is_done())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_bodies_scan_alike_in_pieces() {
        framing(b"\x01POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET");
        framing(b"\x03POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
        framing(b"\x02a\r\n0123");
        let (payload, outcome) = scan(Framing::Chunked, b"3\r\nabc\r\n0\r\n\r\nrest", 2);
        assert_eq!((payload.as_slice(), outcome), (&b"abc"[..], Ok((13, true))));
    }

    /// Replays every committed corpus file, so the corpus keeps passing without
    /// nightly or libFuzzer.
    #[test]
    fn committed_corpus_replays() {
        for (target, run) in [
            ("framing", framing as fn(&[u8])),
            ("server_hello", server_hello),
            ("cert_request", cert_request),
        ] {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../fuzz/corpus")
                .join(target);
            let mut n = 0;
            for entry in
                std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                let outcome = std::panic::catch_unwind(|| run(&data));
                assert!(outcome.is_ok(), "{} fails", path.display());
                n += 1;
            }
            assert!(n > 0, "{} holds no inputs", dir.display());
        }
    }
}
