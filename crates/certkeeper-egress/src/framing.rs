//! HTTP/1.1 message framing for the hand-written relay ([`crate::h1`]): where a
//! message body ends (RFC 9112 §6), and which header fields belong to one connection
//! only (RFC 9110 §7.6.1). Parsing the message heads is httparse's job.

use std::ops::Range;

/// How a message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the connection closes (responses only).
    UntilClose,
}

/// The body does not follow its framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct FramingError(&'static str);

/// Walks a body as it passes, saying which bytes belong to it and when it has ended.
#[derive(Debug)]
pub(crate) struct BodyScan {
    state: Scan,
}

#[derive(Debug, Clone, Copy)]
enum Scan {
    Length(u64),
    UntilClose,
    /// In a chunked body.
    Chunk(Chunk),
    Done,
}

#[derive(Debug, Clone, Copy)]
enum Chunk {
    /// Reading the chunk size's hex digits.
    Size { value: u64, digits: u32 },
    /// After the size: extensions, up to the end of the line.
    Extension { value: u64 },
    /// Inside a chunk's data.
    Data(u64),
    /// The line end after a chunk's data.
    DataEnd,
    /// In the trailer section, after the last chunk; `empty` while the current line
    /// has had nothing but a CR.
    Trailer { empty: bool },
}

impl BodyScan {
    pub(crate) fn new(framing: Framing) -> Self {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => Scan::Done,
            Framing::Length(n) => Scan::Length(n),
            Framing::UntilClose => Scan::UntilClose,
            Framing::Chunked => Scan::Chunk(Chunk::Size {
                value: 0,
                digits: 0,
            }),
        };
        BodyScan { state }
    }

    pub(crate) fn is_done(&self) -> bool {
        matches!(self.state, Scan::Done)
    }

    /// For a `Content-Length` body, how many bytes are still to come.
    pub(crate) fn remaining(&self) -> Option<u64> {
        match self.state {
            Scan::Length(n) => Some(n),
            Scan::Done => Some(0),
            _ => None,
        }
    }

    /// How many leading bytes of `input` belong to the body (all of them, unless it
    /// ends inside `input`). `payload` gets the ranges of `input` that are data, not
    /// chunk framing.
    pub(crate) fn take(
        &mut self,
        input: &[u8],
        payload: &mut dyn FnMut(Range<usize>),
    ) -> Result<usize, FramingError> {
        match &mut self.state {
            Scan::Done => Ok(0),
            Scan::UntilClose => {
                if !input.is_empty() {
                    payload(0..input.len());
                }
                Ok(input.len())
            }
            Scan::Length(left) => {
                let n = usize::try_from(*left).map_or(input.len(), |l| l.min(input.len()));
                *left -= n as u64;
                if n > 0 {
                    payload(0..n);
                }
                if *left == 0 {
                    self.state = Scan::Done;
                }
                Ok(n)
            }
            Scan::Chunk(_) => self.take_chunked(input, payload),
        }
    }

    fn take_chunked(
        &mut self,
        input: &[u8],
        payload: &mut dyn FnMut(Range<usize>),
    ) -> Result<usize, FramingError> {
        let mut at = 0;
        while at < input.len() {
            let Scan::Chunk(chunk) = &mut self.state else {
                break;
            };
            let byte = input[at];
            match chunk {
                Chunk::Size { value, digits } => {
                    if let Some(d) = (byte as char).to_digit(16) {
                        if *digits == 15 {
                            return Err(FramingError("a chunk size is too large"));
                        }
                        *value = *value * 16 + u64::from(d);
                        *digits += 1;
                        at += 1;
                    } else if *digits == 0 {
                        return Err(FramingError("a chunk size is not hexadecimal"));
                    } else {
                        // Looked at again as the start of the rest of the line.
                        *chunk = Chunk::Extension { value: *value };
                    }
                }
                Chunk::Extension { value } => {
                    if byte == b'\n' {
                        *chunk = match *value {
                            0 => Chunk::Trailer { empty: true },
                            n => Chunk::Data(n),
                        };
                    }
                    at += 1;
                }
                Chunk::Data(left) => {
                    let n = usize::try_from(*left)
                        .map_or(input.len() - at, |l| l.min(input.len() - at));
                    payload(at..at + n);
                    *left -= n as u64;
                    at += n;
                    if *left == 0 {
                        *chunk = Chunk::DataEnd;
                    }
                }
                Chunk::DataEnd => {
                    match byte {
                        b'\r' => {}
                        b'\n' => {
                            *chunk = Chunk::Size {
                                value: 0,
                                digits: 0,
                            }
                        }
                        _ => return Err(FramingError("a chunk is longer than its size says")),
                    }
                    at += 1;
                }
                Chunk::Trailer { empty } => {
                    match byte {
                        b'\n' if *empty => self.state = Scan::Done,
                        b'\n' => *empty = true,
                        b'\r' => {}
                        _ => *empty = false,
                    }
                    at += 1;
                }
            }
        }
        Ok(at)
    }

    /// The connection ended: whether that is the body's proper end (it then is).
    pub(crate) fn at_eof(&mut self) -> bool {
        match self.state {
            Scan::Done => true,
            Scan::UntilClose => {
                self.state = Scan::Done;
                true
            }
            _ => false,
        }
    }
}

/// Header fields that describe one connection, not the message (RFC 9110 §7.6.1),
/// and so are not relayed. `transfer-encoding` is among them: the relay writes its
/// own when it relays a chunked body.
pub(crate) fn is_hop_by_hop(name: &str) -> bool {
    const NAMES: [&str; 9] = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authenticate",
        "proxy-authorization",
    ];
    NAMES.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// What a message's `Connection` fields say.
#[derive(Debug, Default)]
pub(crate) struct ConnectionOptions<'a> {
    pub close: bool,
    pub keep_alive: bool,
    /// Further fields the sender names as hop-by-hop.
    pub named: Vec<&'a str>,
}

impl<'a> ConnectionOptions<'a> {
    /// From a head's fields (httparse).
    pub(crate) fn of(headers: &[httparse::Header<'a>]) -> Self {
        Self::from_values(
            headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("connection"))
                .map(|h| h.value),
        )
    }

    /// From the values of a head's `Connection` fields.
    pub(crate) fn from_values(values: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut options = ConnectionOptions::default();
        for value in values {
            let Ok(value) = std::str::from_utf8(value) else {
                continue;
            };
            for token in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                if token.eq_ignore_ascii_case("close") {
                    options.close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    options.keep_alive = true;
                } else {
                    options.named.push(token);
                }
            }
        }
        options
    }

    /// Whether the connection stays open after this message: HTTP/1.1 unless it says
    /// `close`, HTTP/1.0 only if it says `keep-alive`.
    pub(crate) fn persistent(&self, http10: bool) -> bool {
        if http10 { self.keep_alive } else { !self.close }
    }

    /// Whether a field is not to be relayed: hop-by-hop, or named in `Connection`.
    pub(crate) fn drops(&self, name: &str) -> bool {
        is_hop_by_hop(name) || self.named.iter().any(|n| n.eq_ignore_ascii_case(name))
    }
}

/// The message's `Content-Length`, if it has one. Repeated fields (or a list) must
/// agree.
pub(crate) fn content_length(
    headers: &[httparse::Header<'_>],
) -> Result<Option<u64>, FramingError> {
    let bad = FramingError("its Content-Length is not a number of bytes");
    let mut found: Option<u64> = None;
    for h in headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
    {
        for part in h.value.split(|&b| b == b',') {
            let part = part.trim_ascii();
            if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
                return Err(bad);
            }
            let n = std::str::from_utf8(part)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or(bad)?;
            if found.is_some_and(|f| f != n) {
                return Err(FramingError("it has Content-Length fields that disagree"));
            }
            found = Some(n);
        }
    }
    Ok(found)
}

/// Whether the message has `Transfer-Encoding`, and if so whether its last coding is
/// `chunked` (`Some(true)`).
pub(crate) fn transfer_chunked(headers: &[httparse::Header<'_>]) -> Option<bool> {
    let mut last: Option<&[u8]> = None;
    for h in headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("transfer-encoding"))
    {
        for coding in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
            if !coding.is_empty() {
                last = Some(coding);
            }
        }
        last.get_or_insert(b"");
    }
    last.map(|c| c.eq_ignore_ascii_case(b"chunked"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes; returns the bytes taken, the payload
    /// and whether the body ended.
    fn scan(framing: Framing, input: &[u8], step: usize) -> (usize, Vec<u8>, bool) {
        let mut body = BodyScan::new(framing);
        let mut taken = 0;
        let mut payload = Vec::new();
        for piece in input.chunks(step) {
            let n = body
                .take(piece, &mut |r| payload.extend_from_slice(&piece[r]))
                .unwrap();
            taken += n;
            if n < piece.len() {
                break;
            }
        }
        (taken, payload, body.is_done())
    }

    #[test]
    fn a_chunked_body_ends_after_its_trailers_whatever_the_pieces() {
        let body =
            b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Sum: 1\r\n\r\n";
        let mut input = body.to_vec();
        input.extend_from_slice(b"GET /next HTTP/1.1\r\n");
        for step in [1, 2, 3, 7, 64, input.len()] {
            let (taken, payload, done) = scan(Framing::Chunked, &input, step);
            assert_eq!(taken, body.len(), "step {step}");
            assert_eq!(payload, b"Wikipedia in\r\n\r\nchunks.", "step {step}");
            assert!(done, "step {step}");
        }
        let (taken, _, done) = scan(Framing::Chunked, b"0\r\n\r\nrest", 1);
        assert_eq!((taken, done), (5, true));
        let (taken, _, done) = scan(Framing::Chunked, b"a\r\n0123456789\r\n", 4);
        assert_eq!((taken, done), (15, false));
    }

    #[test]
    fn a_broken_chunked_body_is_an_error() {
        for bad in [&b"x\r\n"[..], b"3\r\nabcd\r\n", b"fffffffffffffffff\r\n"] {
            let mut body = BodyScan::new(Framing::Chunked);
            assert!(body.take(bad, &mut |_| {}).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn length_bodies_stop_at_their_length_and_close_bodies_at_eof() {
        let (taken, payload, done) = scan(Framing::Length(5), b"helloGET", 3);
        assert_eq!((taken, &payload[..], done), (5, &b"hello"[..], true));
        assert!(BodyScan::new(Framing::Empty).is_done());
        assert!(BodyScan::new(Framing::Length(0)).is_done());
        let mut truncated = BodyScan::new(Framing::Length(5));
        assert!(!truncated.at_eof());
        let mut until_close = BodyScan::new(Framing::UntilClose);
        assert_eq!(until_close.take(b"abc", &mut |_| {}), Ok(3));
        assert!(!until_close.is_done());
        assert!(until_close.at_eof());
        assert!(until_close.is_done());
    }

    fn h<'a>(name: &'a str, value: &'a str) -> httparse::Header<'a> {
        httparse::Header {
            name,
            value: value.as_bytes(),
        }
    }

    #[test]
    fn content_length_must_be_one_number() {
        assert_eq!(content_length(&[h("Content-Length", "42")]), Ok(Some(42)));
        assert_eq!(content_length(&[h("content-length", "7, 7")]), Ok(Some(7)));
        assert_eq!(content_length(&[h("x", "1")]), Ok(None));
        for bad in ["", "-1", "0x10", "1 2", "99999999999999999999"] {
            assert!(
                content_length(&[h("Content-Length", bad)]).is_err(),
                "{bad:?}"
            );
        }
        assert!(content_length(&[h("Content-Length", "1"), h("Content-Length", "2")]).is_err());
    }

    #[test]
    fn transfer_encoding_is_chunked_only_when_chunked_comes_last() {
        assert_eq!(transfer_chunked(&[h("x", "1")]), None);
        assert_eq!(
            transfer_chunked(&[h("Transfer-Encoding", "Chunked")]),
            Some(true)
        );
        assert_eq!(
            transfer_chunked(&[
                h("transfer-encoding", "gzip"),
                h("transfer-encoding", "chunked")
            ]),
            Some(true)
        );
        assert_eq!(
            transfer_chunked(&[h("transfer-encoding", "chunked, gzip")]),
            Some(false)
        );
        assert_eq!(transfer_chunked(&[h("transfer-encoding", "")]), Some(false));
    }

    #[test]
    fn connection_names_more_hop_by_hop_fields() {
        let headers = [
            h("Connection", "keep-alive, X-Trace"),
            h("connection", "Close"),
        ];
        let options = ConnectionOptions::of(&headers);
        assert!(options.close && options.keep_alive);
        assert!(!options.persistent(false) && options.persistent(true));
        assert!(options.drops("x-trace"));
        assert!(options.drops("Keep-Alive"));
        assert!(options.drops("Transfer-Encoding"));
        assert!(!options.drops("SOAPAction"));
        assert!(!options.drops("content-length"));
    }
}
