//! HTTP/1.1 message framing for the hand-written relay ([`crate::relay`]): where a
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
    /// Bytes of chunk extensions in the whole body so far.
    extensions: usize,
    /// Trailer fields so far.
    trailers: usize,
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
    /// Within a chunk line's extensions (RFC 9112 §7.1.1).
    Ext { value: u64, at: Ext },
    /// After the CR that ends a chunk line.
    SizeLf(u64),
    /// Inside a chunk's data.
    Data(u64),
    /// The CR after a chunk's data.
    DataCr,
    /// The LF after a chunk's data.
    DataLf,
    /// In the trailer section, after the last chunk (`used` bytes of it so far).
    Trailer { at: Trailer, used: usize },
}

/// Where in `*( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ext {
    /// Whitespace after the size: a `;` must follow.
    BeforeSemi,
    /// After `;`, before the name.
    BeforeName,
    InName,
    AfterName,
    BeforeValue,
    InToken,
    InQuoted,
    QuotedPair,
    AfterValue,
}

/// Where in `*( field-line CRLF ) CRLF`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trailer {
    LineStart,
    Name,
    Value,
    Lf,
    EndLf,
}

/// The most bytes of chunk extensions in a body, bytes of its trailer section and
/// trailer fields: below hyper's limits (16 KiB, 16 KiB, 100), so that nothing hyper
/// refuses is relayed.
const MAX_EXTENSIONS: usize = 4096;
const MAX_TRAILERS: usize = 8 * 1024;
const MAX_TRAILER_FIELDS: usize = 64;

/// RFC 9110 §5.6.2 `tchar`.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `field-vchar`, SP or HTAB (obs-text included).
fn is_field_byte(b: u8) -> bool {
    b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80
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
        BodyScan {
            state,
            extensions: 0,
            trailers: 0,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        matches!(self.state, Scan::Done)
    }

    pub(crate) fn is_chunked(&self) -> bool {
        matches!(self.state, Scan::Chunk(_))
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

    /// As [`take`](Self::take), and appends to `out` the body as the relay sends it
    /// on: a chunked body re-framed with chunk lines of the relay's own making (no
    /// extensions, no trailers), any other body as it is.
    pub(crate) fn take_reframed(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<usize, FramingError> {
        if !self.is_chunked() {
            let n = self.take(input, &mut |_| {})?;
            out.extend_from_slice(&input[..n]);
            return Ok(n);
        }
        let n = self.take(input, &mut |r| {
            if !r.is_empty() {
                push_chunk(out, &input[r]);
            }
        })?;
        if self.is_done() {
            out.extend_from_slice(b"0\r\n\r\n");
        }
        Ok(n)
    }

    fn take_chunked(
        &mut self,
        input: &[u8],
        payload: &mut dyn FnMut(Range<usize>),
    ) -> Result<usize, FramingError> {
        let e = FramingError;
        let mut at = 0;
        while at < input.len() {
            let Scan::Chunk(chunk) = &mut self.state else {
                break;
            };
            let byte = input[at];
            match chunk {
                Chunk::Size { value, digits } => {
                    if let Some(d) = (byte as char).to_digit(16) {
                        *value = value
                            .checked_mul(16)
                            .and_then(|v| v.checked_add(u64::from(d)))
                            .ok_or(e("a chunk size is too large"))?;
                        *digits += 1;
                    } else if *digits == 0 {
                        return Err(e("a chunk size is not hexadecimal"));
                    } else {
                        let value = *value;
                        *chunk = match byte {
                            b'\r' => Chunk::SizeLf(value),
                            b';' => Chunk::Ext {
                                value,
                                at: Ext::BeforeName,
                            },
                            b' ' | b'\t' => Chunk::Ext {
                                value,
                                at: Ext::BeforeSemi,
                            },
                            _ => return Err(e("a chunk size is not hexadecimal")),
                        };
                    }
                }
                Chunk::Ext { value, at: ext } => {
                    self.extensions += 1;
                    if self.extensions > MAX_EXTENSIONS {
                        return Err(e("its chunk extensions are too long"));
                    }
                    let bad = e("a chunk extension is malformed");
                    *ext = match (*ext, byte) {
                        (Ext::InName | Ext::InToken | Ext::AfterValue, b'\r') => {
                            *chunk = Chunk::SizeLf(*value);
                            at += 1;
                            continue;
                        }
                        (Ext::BeforeSemi | Ext::InName | Ext::AfterName, b';')
                        | (Ext::InToken | Ext::AfterValue, b';') => Ext::BeforeName,
                        (Ext::BeforeSemi, b) if is_ws(b) => Ext::BeforeSemi,
                        (Ext::BeforeName, b) if is_ws(b) => Ext::BeforeName,
                        (Ext::BeforeName | Ext::InName, b) if is_tchar(b) => Ext::InName,
                        (Ext::InName | Ext::AfterName, b) if is_ws(b) => Ext::AfterName,
                        (Ext::InName | Ext::AfterName, b'=') => Ext::BeforeValue,
                        (Ext::BeforeValue, b) if is_ws(b) => Ext::BeforeValue,
                        (Ext::BeforeValue, b'"') => Ext::InQuoted,
                        (Ext::BeforeValue | Ext::InToken, b) if is_tchar(b) => Ext::InToken,
                        (Ext::InToken | Ext::AfterValue, b) if is_ws(b) => Ext::AfterValue,
                        (Ext::InQuoted, b'"') => Ext::AfterValue,
                        (Ext::InQuoted, b'\\') => Ext::QuotedPair,
                        (Ext::InQuoted | Ext::QuotedPair, b) if is_field_byte(b) => Ext::InQuoted,
                        _ => return Err(bad),
                    };
                }
                Chunk::SizeLf(value) => {
                    if byte != b'\n' {
                        return Err(e("a chunk line does not end in CRLF"));
                    }
                    *chunk = match *value {
                        0 => Chunk::Trailer {
                            at: Trailer::LineStart,
                            used: 0,
                        },
                        n => Chunk::Data(n),
                    };
                }
                Chunk::Data(left) => {
                    let n = usize::try_from(*left)
                        .map_or(input.len() - at, |l| l.min(input.len() - at));
                    payload(at..at + n);
                    *left -= n as u64;
                    at += n;
                    if *left == 0 {
                        *chunk = Chunk::DataCr;
                    }
                    continue;
                }
                Chunk::DataCr | Chunk::DataLf => {
                    let want = if matches!(chunk, Chunk::DataCr) {
                        b'\r'
                    } else {
                        b'\n'
                    };
                    if byte != want {
                        return Err(e("a chunk's data is not followed by exactly CRLF"));
                    }
                    *chunk = if want == b'\r' {
                        Chunk::DataLf
                    } else {
                        Chunk::Size {
                            value: 0,
                            digits: 0,
                        }
                    };
                }
                Chunk::Trailer { at: line, used } => {
                    *used += 1;
                    if *used > MAX_TRAILERS {
                        return Err(e("its trailer section is too long"));
                    }
                    let bad = e("a trailer field is malformed");
                    *line = match (*line, byte) {
                        (Trailer::LineStart, b'\r') => Trailer::EndLf,
                        (Trailer::LineStart | Trailer::Name, b) if is_tchar(b) => Trailer::Name,
                        (Trailer::Name, b':') => Trailer::Value,
                        (Trailer::Value, b'\r') => Trailer::Lf,
                        (Trailer::Value, b) if is_field_byte(b) => Trailer::Value,
                        (Trailer::Lf, b'\n') => {
                            self.trailers += 1;
                            if self.trailers > MAX_TRAILER_FIELDS {
                                return Err(e("it has too many trailer fields"));
                            }
                            Trailer::LineStart
                        }
                        (Trailer::EndLf, b'\n') => {
                            self.state = Scan::Done;
                            at += 1;
                            break;
                        }
                        _ => return Err(bad),
                    };
                }
            }
            at += 1;
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
    /// Further fields the sender names as hop-by-hop (never the framing fields or
    /// `Host`, which the relay writes itself).
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
                } else if !is_relays_own(token) {
                    options.named.push(token);
                }
            }
        }
        options
    }

    /// Whether the connection stays open after this message: never if it says
    /// `close`, HTTP/1.0 only if it says `keep-alive`.
    pub(crate) fn persistent(&self, http10: bool) -> bool {
        !self.close && (!http10 || self.keep_alive)
    }

    /// Whether a field is not to be relayed: hop-by-hop, or named in `Connection`.
    pub(crate) fn drops(&self, name: &str) -> bool {
        is_hop_by_hop(name) || self.named.iter().any(|n| n.eq_ignore_ascii_case(name))
    }
}

/// Appends one chunk (size line, data, CRLF) of the relay's making.
pub(crate) fn push_chunk(out: &mut Vec<u8>, data: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = data.len();
    let digits = (usize::BITS - n.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        out.push(HEX[(n >> (i * 4)) & 0xf]);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Whether a field is one of those the relay writes itself: the message's framing,
/// and (for requests) `Host`. No `Connection` option removes them.
pub(crate) fn is_relays_own(name: &str) -> bool {
    ["content-length", "transfer-encoding", "host"]
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name))
}

/// Checks the raw bytes of a message head for what httparse lets through and a
/// smuggler may use: NUL, a bare CR, a bare LF, and obs-fold (a line starting with
/// whitespace).
pub(crate) fn check_head(head: &[u8]) -> Result<(), FramingError> {
    let mut prev = 0u8;
    for (i, &b) in head.iter().enumerate() {
        match b {
            0 => return Err(FramingError("its head holds a NUL byte")),
            b'\n' if prev != b'\r' => {
                return Err(FramingError("a line of its head ends in a bare LF"));
            }
            b'\r' if head.get(i + 1) != Some(&b'\n') => {
                return Err(FramingError("its head holds a bare CR"));
            }
            b' ' | b'\t' if prev == b'\n' => {
                return Err(FramingError(
                    "a header line is folded (starts with whitespace)",
                ));
            }
            _ => {}
        }
        prev = b;
    }
    Ok(())
}

/// How the message says its body is framed, read strictly: at most one
/// `Transfer-Encoding` field, whose value is exactly `chunked`; at most one
/// `Content-Length` field, one decimal number (lists are refused, even of equal
/// numbers); never both.
pub(crate) fn declared(headers: &[httparse::Header<'_>]) -> Result<Declared, FramingError> {
    let mut length: Option<u64> = None;
    let mut chunked = false;
    for h in headers {
        if h.name.eq_ignore_ascii_case("content-length") {
            if length.is_some() {
                return Err(FramingError("it has more than one Content-Length field"));
            }
            let v = h.value.trim_ascii();
            if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
                return Err(FramingError(
                    "its Content-Length is not one number of bytes",
                ));
            }
            length = Some(v.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')));
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if chunked {
                return Err(FramingError("it has more than one Transfer-Encoding field"));
            }
            if !h.value.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Err(FramingError(
                    "its Transfer-Encoding is not exactly \"chunked\"",
                ));
            }
            chunked = true;
        }
    }
    match (chunked, length) {
        (true, Some(_)) => Err(FramingError(
            "it has both Transfer-Encoding and Content-Length",
        )),
        (true, None) => Ok(Declared::Chunked),
        (false, Some(n)) => Ok(Declared::Length(n)),
        (false, None) => Ok(Declared::Nothing),
    }
}

/// How a request's body is framed, from its head's raw bytes and fields: checked by
/// [`check_head`] and [`declared`], and HTTP/1.0 has no `Transfer-Encoding`.
pub(crate) fn request_framing(
    head: &[u8],
    headers: &[httparse::Header<'_>],
    http10: bool,
) -> Result<Framing, FramingError> {
    check_head(head)?;
    match declared(headers)? {
        Declared::Chunked if http10 => Err(FramingError("HTTP/1.0 has no Transfer-Encoding")),
        Declared::Chunked => Ok(Framing::Chunked),
        Declared::Length(n) => Ok(Framing::Length(n)),
        Declared::Nothing => Ok(Framing::Empty),
    }
}

/// What a message head says of its body ([`declared`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Declared {
    Nothing,
    Length(u64),
    Chunked,
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
    fn framing_fields_are_read_strictly() {
        let d = |fields: &[(&str, &str)]| {
            let fields: Vec<_> = fields.iter().map(|(n, v)| h(n, v)).collect();
            declared(&fields)
        };
        assert_eq!(d(&[("Content-Length", "42")]), Ok(Declared::Length(42)));
        assert_eq!(d(&[("content-length", " 0 ")]), Ok(Declared::Length(0)));
        assert_eq!(d(&[("x", "1")]), Ok(Declared::Nothing));
        assert_eq!(
            d(&[("Transfer-Encoding", "Chunked")]),
            Ok(Declared::Chunked)
        );
        assert_eq!(
            d(&[("transfer-encoding", "\tchunked ")]),
            Ok(Declared::Chunked)
        );
        for bad in [
            "",
            "-1",
            "+1",
            "0x10",
            "1 2",
            "5, 5",
            "5,",
            "1e3",
            "9999999999999999999",
        ] {
            assert!(d(&[("Content-Length", bad)]).is_err(), "{bad:?}");
        }
        assert!(d(&[("Content-Length", "5"), ("content-length", "5")]).is_err());
        for bad in [
            "xchunked",
            "chunked, identity",
            "gzip, chunked",
            "identity",
            "chunked;q=1",
            "\"chunked\"",
            "chun ked",
            "",
        ] {
            assert!(d(&[("Transfer-Encoding", bad)]).is_err(), "{bad:?}");
        }
        assert!(
            d(&[
                ("Transfer-Encoding", "chunked"),
                ("Transfer-Encoding", "chunked")
            ])
            .is_err()
        );
        assert!(d(&[("Transfer-Encoding", "chunked"), ("Content-Length", "3")]).is_err());
        assert!(d(&[("Content-Length", "3"), ("Transfer-Encoding", "chunked")]).is_err());
    }

    #[test]
    fn heads_with_nul_bare_cr_bare_lf_or_folds_are_refused() {
        assert_eq!(check_head(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"), Ok(()));
        for bad in [
            &b"GET / HTTP/1.1\nHost: a\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: a\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\rX: b\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: a\0b\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n",
        ] {
            assert!(
                check_head(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn chunked_bodies_follow_rfc_9112_exactly() {
        let good: [&[u8]; 7] = [
            b"5\r\nhello\r\n0\r\n\r\n",
            b"5;a\r\nhello\r\n0\r\n\r\n",
            b"5 ; a = b ;c=\"x\\\"y\"\r\nhello\r\n0;z\r\n\r\n",
            b"00005\r\nhello\r\n000\r\n\r\n",
            b"5\r\nhello\r\n0\r\nX-Sum: 1\r\nY:\r\n\r\n",
            b"A\r\n0123456789\r\n0\r\n\r\n",
            b"ffffffffffffffff\r\n",
        ];
        for body in good {
            for step in [1, 3, body.len()] {
                let mut scan = BodyScan::new(Framing::Chunked);
                for piece in body.chunks(step) {
                    scan.take(piece, &mut |_| {})
                        .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(body)));
                }
            }
        }
        let bad: [&[u8]; 22] = [
            b"x\r\n",
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b"5garbage\r\nhello\r\n0\r\n\r\n",
            b"-5\r\n",
            b"+5\r\n",
            b" 5\r\n",
            b"5 \r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\rhello\r\n0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"5\r\nhello\r\r\r\n0\r\n\r\n",
            b"3\r\nabcd\r\n",
            b"5\r\nhello\r\n0\r\n\n",
            b"5\r\nhello\r\n0\n\r\n",
            b"5;\r\nhello\r\n",
            b"5;a=\r\nhello\r\n",
            b"5;a=\"x\r\nhello\r\n",
            b"5;a b\r\nhello\r\n",
            b"5;a\nhello\r\n",
            b"10000000000000000\r\n",
            b"5\r\nhello\r\n0\r\nX: 1\n\r\n",
            b"5\r\nhello\r\n0\r\n folded\r\n\r\n",
        ];
        for body in bad {
            for step in [1, body.len()] {
                let mut scan = BodyScan::new(Framing::Chunked);
                let failed = body
                    .chunks(step)
                    .any(|piece| scan.take(piece, &mut |_| {}).is_err());
                assert!(failed, "{:?}", String::from_utf8_lossy(body));
            }
        }
        // Limits below hyper's, over the whole body.
        let mut many = Vec::new();
        for _ in 0..300 {
            many.extend_from_slice(b"1;extension=0123456789\r\nx\r\n");
        }
        assert!(
            BodyScan::new(Framing::Chunked)
                .take(&many, &mut |_| {})
                .is_err()
        );
        let mut trailers = b"0\r\n".to_vec();
        for i in 0..65 {
            trailers.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
        }
        assert!(
            BodyScan::new(Framing::Chunked)
                .take(&trailers, &mut |_| {})
                .is_err()
        );
        let mut scan = BodyScan::new(Framing::Chunked);
        assert!(
            scan.take(b"5\r\nhello\r\n0\r\nX: \0\r\n\r\n", &mut |_| {})
                .is_err()
        );
    }

    #[test]
    fn a_chunked_body_goes_on_in_chunks_of_the_relays_making() {
        let body = b"4;ext=\"x\"\r\nWiki\r\n05\r\npedia\r\n0\r\nX-Sum: 1\r\n\r\nGET /";
        for step in [1, 5, body.len()] {
            let mut scan = BodyScan::new(Framing::Chunked);
            let mut out = Vec::new();
            let mut taken = 0;
            for piece in body.chunks(step) {
                taken += scan.take_reframed(piece, &mut out).unwrap();
            }
            assert_eq!(taken, body.len() - 5, "step {step}");
            assert!(scan.is_done());
            // Re-read: the same data, and nothing of the extensions or trailers.
            let mut again = BodyScan::new(Framing::Chunked);
            let mut data = Vec::new();
            let n = again
                .take(&out, &mut |r| data.extend_from_slice(&out[r]))
                .unwrap();
            assert_eq!((n, again.is_done()), (out.len(), true));
            assert_eq!(data, b"Wikipedia");
            assert!(!out.windows(3).any(|w| w == b"ext" || w == b"Sum"));
        }
        let whole = {
            let mut out = Vec::new();
            BodyScan::new(Framing::Chunked)
                .take_reframed(b"1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n", &mut out)
                .unwrap();
            out
        };
        assert_eq!(whole, b"1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n");
    }

    #[test]
    fn connection_names_more_hop_by_hop_fields() {
        let headers = [
            h("Connection", "keep-alive, X-Trace"),
            h("connection", "Close"),
        ];
        let options = ConnectionOptions::of(&headers);
        assert!(options.close && options.keep_alive);
        // `close` wins, also over HTTP/1.0's `keep-alive`.
        assert!(!options.persistent(false) && !options.persistent(true));
        assert!(options.drops("x-trace"));
        assert!(options.drops("Keep-Alive"));
        assert!(options.drops("Transfer-Encoding"));
        assert!(!options.drops("SOAPAction"));
        assert!(!options.drops("content-length"));
        // Connection never names the framing fields or Host away.
        let headers = [h("Connection", "Content-Length, host, X-A")];
        let options = ConnectionOptions::of(&headers);
        assert_eq!(options.named, ["X-A"]);
        assert!(!options.drops("content-length") && !options.drops("Host"));
    }
}
