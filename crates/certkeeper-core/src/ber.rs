//! A minimal TLV reader and a BER-to-DER re-encoder.
//!
//! Written by hand because the `der` crate (rightly) refuses BER, while real files
//! carry it: Apple Keychain writes PKCS#7 with indefinite lengths, Java and older
//! Windows write PKCS#12 with constructed OCTET STRINGs. Re-encoding only the parts
//! that are not already DER keeps embedded certificates byte-identical, so their
//! thumbprints and signatures are untouched.

use std::borrow::Cow;

/// Nesting deeper than this is refused: no real certificate file comes near it and it
/// bounds recursion on hostile input.
const MAX_DEPTH: usize = 64;

/// Why a byte string is not well-formed BER.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BerError {
    /// The data ends before an element does.
    #[error("truncated: an element at offset {offset} needs {needed} bytes, {available} remain")]
    Truncated {
        /// Where the element starts.
        offset: usize,
        /// How many bytes it claims.
        needed: usize,
        /// How many there are.
        available: usize,
    },
    /// A length or tag that BER does not allow.
    #[error("malformed encoding at offset {offset}: {what}")]
    Malformed {
        /// Where.
        offset: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// Bytes after the outermost element.
    #[error("{0} unexpected bytes after the end of the data")]
    TrailingData(usize),
}

/// One element: its tag bytes, whether it is constructed, and its content.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    /// The identifier octets (one or more).
    pub tag: &'a [u8],
    /// The content octets (for indefinite lengths: without the end-of-contents marker).
    pub content: &'a [u8],
    /// The whole element, header included.
    pub raw: &'a [u8],
    /// Whether the length was indefinite.
    pub indefinite: bool,
}

impl<'a> Tlv<'a> {
    /// The first identifier octet (class, constructed bit, low tag number).
    pub fn tag_byte(&self) -> u8 {
        self.tag[0]
    }

    /// Whether the constructed bit is set.
    pub fn constructed(&self) -> bool {
        self.tag[0] & 0x20 != 0
    }

    /// The children of a constructed element.
    pub fn children(&self) -> Result<Vec<Tlv<'a>>, BerError> {
        // Only a constructed element has elements inside: reading a primitive one's
        // bytes as elements would accept what `to_der` (which leaves primitive
        // elements as they are) never checked.
        if !self.constructed() {
            return Err(BerError::Malformed {
                offset: 0,
                what: "a primitive element where a constructed one belongs",
            });
        }
        let mut out = Vec::new();
        let mut rest = self.content;
        while !rest.is_empty() {
            let (tlv, after) = read_tlv(rest, 0)?;
            out.push(tlv);
            rest = after;
        }
        Ok(out)
    }
}

/// Reads one element from the front of `input`; returns it and what follows.
pub fn read_tlv(input: &[u8], depth: usize) -> Result<(Tlv<'_>, &[u8]), BerError> {
    read_at(input, 0, depth)
}

/// Reads exactly one element that fills `input`.
pub fn read_single(input: &[u8]) -> Result<Tlv<'_>, BerError> {
    let (tlv, rest) = read_tlv(input, 0)?;
    if !rest.is_empty() {
        return Err(BerError::TrailingData(rest.len()));
    }
    Ok(tlv)
}

/// Reads the header of the element at the front of `input` without requiring its
/// content to be present: for recognising the kind of a truncated file.
/// Returns the first identifier octet and the content bytes that are available.
pub fn peek_header(input: &[u8]) -> Option<(u8, &[u8])> {
    let (_, len, header_len) = header(input, 0).ok()?;
    let end = match len {
        Some(len) => input.len().min(header_len.saturating_add(len)),
        None => input.len(),
    };
    Some((input[0], &input[header_len..end]))
}

/// The header of the element at the front of `input`: its first identifier octet, its
/// length (`None` when indefinite) and the header's size. The content need not be there.
pub fn element_header(input: &[u8]) -> Option<(u8, Option<usize>, usize)> {
    let (_, len, header_len) = header(input, 0).ok()?;
    Some((input[0], len, header_len))
}

/// Reads the children of `content` as far as they are complete, ignoring a cut-off tail.
pub fn lenient_children(content: &[u8]) -> Vec<Tlv<'_>> {
    let mut out = Vec::new();
    let mut rest = content;
    while let Ok((tlv, after)) = read_tlv(rest, 0) {
        out.push(tlv);
        rest = after;
        if rest.is_empty() {
            break;
        }
    }
    out
}

/// Parses tag and length; returns (tag length, content length or None for indefinite,
/// header length).
fn header(input: &[u8], offset: usize) -> Result<(usize, Option<usize>, usize), BerError> {
    let truncated = |needed| BerError::Truncated {
        offset,
        needed,
        available: input.len(),
    };
    let first = *input.first().ok_or(truncated(2))?;
    let mut pos = 1;
    if first & 0x1f == 0x1f {
        loop {
            let b = *input.get(pos).ok_or(truncated(pos + 2))?;
            pos += 1;
            if b & 0x80 == 0 {
                break;
            }
            if pos > 5 {
                return Err(BerError::Malformed {
                    offset,
                    what: "tag number too large",
                });
            }
        }
    }
    let tag_len = pos;
    let l = *input.get(pos).ok_or(truncated(pos + 1))?;
    pos += 1;
    let len = if l == 0x80 {
        if first & 0x20 == 0 {
            return Err(BerError::Malformed {
                offset,
                what: "indefinite length on a primitive element",
            });
        }
        None
    } else if l & 0x80 == 0 {
        Some(usize::from(l))
    } else {
        let n = usize::from(l & 0x7f);
        if n > 4 {
            return Err(BerError::Malformed {
                offset,
                what: "length too large",
            });
        }
        let bytes = input.get(pos..pos + n).ok_or(truncated(pos + n))?;
        pos += n;
        Some(
            bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b)),
        )
    };
    Ok((tag_len, len, pos))
}

fn read_at(input: &[u8], offset: usize, depth: usize) -> Result<(Tlv<'_>, &[u8]), BerError> {
    if depth > MAX_DEPTH {
        return Err(BerError::Malformed {
            offset,
            what: "nested too deeply",
        });
    }
    let (tag_len, len, header_len) = header(input, offset)?;
    match len {
        Some(len) => {
            let end = header_len.checked_add(len).ok_or(BerError::Malformed {
                offset,
                what: "length overflows",
            })?;
            if end > input.len() {
                return Err(BerError::Truncated {
                    offset,
                    needed: end,
                    available: input.len(),
                });
            }
            let tlv = Tlv {
                tag: &input[..tag_len],
                content: &input[header_len..end],
                raw: &input[..end],
                indefinite: false,
            };
            Ok((tlv, &input[end..]))
        }
        None => {
            // Indefinite: children until the end-of-contents octets 00 00.
            let mut pos = header_len;
            loop {
                let rest = &input[pos..];
                if rest.len() >= 2 && rest[0] == 0 && rest[1] == 0 {
                    let tlv = Tlv {
                        tag: &input[..tag_len],
                        content: &input[header_len..pos],
                        raw: &input[..pos + 2],
                        indefinite: true,
                    };
                    return Ok((tlv, &input[pos + 2..]));
                }
                if rest.is_empty() {
                    return Err(BerError::Truncated {
                        offset,
                        needed: pos + 2,
                        available: input.len(),
                    });
                }
                let (_, after) = read_at(rest, offset + pos, depth + 1)?;
                pos = input.len() - after.len();
            }
        }
    }
}

/// Re-encodes `input` (one element, nothing after it) as DER where it is BER:
/// indefinite lengths become definite, constructed OCTET STRINGs become primitive.
/// Elements that are already definite are copied as they are.
pub fn to_der(input: &[u8]) -> Result<Cow<'_, [u8]>, BerError> {
    let tlv = read_single(input)?;
    reencode(&tlv, 0)
}

fn reencode<'a>(tlv: &Tlv<'a>, depth: usize) -> Result<Cow<'a, [u8]>, BerError> {
    if depth > MAX_DEPTH {
        return Err(BerError::Malformed {
            offset: 0,
            what: "nested too deeply",
        });
    }
    if !tlv.constructed() {
        return Ok(Cow::Borrowed(tlv.raw));
    }
    let children = tlv.children()?;
    // A constructed universal OCTET STRING: concatenate its segments.
    if tlv.tag == [0x24] {
        let mut value = Vec::new();
        for child in &children {
            let child = reencode(child, depth + 1)?;
            let inner = read_single(&child)?;
            value.extend_from_slice(inner.content);
        }
        return Ok(Cow::Owned(encode(&[0x04], &value)));
    }
    let mut changed = tlv.indefinite;
    let mut parts = Vec::with_capacity(children.len());
    for child in &children {
        let part = reencode(child, depth + 1)?;
        changed |= matches!(part, Cow::Owned(_));
        parts.push(part);
    }
    if !changed {
        return Ok(Cow::Borrowed(tlv.raw));
    }
    let content: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
    Ok(Cow::Owned(encode(tlv.tag, &content)))
}

/// Encodes one element with a definite, minimal length.
pub fn encode(tag: &[u8], content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + tag.len() + 5);
    out.extend_from_slice(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_primitive_element_has_no_children() {
        // A SEQUENCE (0x30) and the same bytes tagged primitive (0x10): `to_der` leaves
        // the second as it is, so reading into it would accept unchecked BER.
        let constructed = [0x30, 0x03, 0x02, 0x01, 0x05];
        assert_eq!(
            read_single(&constructed).unwrap().children().unwrap().len(),
            1
        );
        let primitive = [0x10, 0x03, 0x02, 0x01, 0x05];
        assert!(read_single(&primitive).unwrap().children().is_err());
        // A PKCS#7 found this way once: its certificate went unchecked, and a
        // certs-only PKCS#7 written from it did not read back.
        let p7 = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../fuzz/corpus/pkcs7/regression-primitive-sequence-tag"),
        )
        .unwrap();
        assert!(crate::pkcs7::certificates(&p7).is_err());
    }

    #[test]
    fn der_input_is_borrowed_unchanged() {
        let der = [0x30, 0x06, 0x02, 0x01, 0x05, 0x04, 0x01, 0xaa];
        assert!(matches!(to_der(&der).unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn indefinite_lengths_and_constructed_octets_become_der() {
        // SEQUENCE (indefinite) { OCTET STRING constructed (indefinite) { 04 01 aa, 04 01 bb } }
        let ber = [
            0x30, 0x80, 0x24, 0x80, 0x04, 0x01, 0xaa, 0x04, 0x01, 0xbb, 0x00, 0x00, 0x00, 0x00,
        ];
        let der = to_der(&ber).unwrap();
        assert_eq!(&*der, &[0x30, 0x04, 0x04, 0x02, 0xaa, 0xbb]);
    }

    #[test]
    fn truncation_is_reported() {
        let der = [0x30, 0x06, 0x02, 0x01];
        assert!(matches!(to_der(&der), Err(BerError::Truncated { .. })));
        assert!(matches!(
            to_der(&[0x30, 0x80, 0x02, 0x01, 0x01]),
            Err(BerError::Truncated { .. })
        ));
    }

    #[test]
    fn long_lengths_encode_minimally() {
        let content = vec![7u8; 300];
        let enc = encode(&[0x04], &content);
        assert_eq!(&enc[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }
}
