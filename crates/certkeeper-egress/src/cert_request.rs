//! The acceptable CAs a partner names in a CertificateRequest, read from the message
//! as OpenSSL received it (its message callback hands over the bytes; OpenSSL keeps
//! the list only after processing, too late to read for the request that just came).
//! Written by hand because no parser of this message is exposed by either TLS
//! library; it reads only lengths and names, strictly: every length must fit exactly,
//! and nothing may follow.

/// TLS 1.2 and 1.3 (`SSL3_VERSION` numbering: 0x0303, 0x0304).
const TLS1_2: i32 = 0x0303;
const TLS1_3: i32 = 0x0304;
/// The certificate_authorities extension (RFC 8446 4.2.4).
const CERTIFICATE_AUTHORITIES: usize = 47;

/// The message does not follow the grammar of its version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a malformed CertificateRequest")]
pub struct Malformed;

/// A reader over bytes that fails on any overrun.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if n > self.0.len() {
            return Err(Malformed);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<usize, Malformed> {
        Ok(usize::from(self.take(1)?[0]))
    }

    fn u16(&mut self) -> Result<usize, Malformed> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    fn u24(&mut self) -> Result<usize, Malformed> {
        let b = self.take(3)?;
        Ok(usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
    }

    /// A vector with a length prefix of `width` bytes.
    fn vector(&mut self, width: usize) -> Result<Reader<'a>, Malformed> {
        let n = match width {
            1 => self.u8()?,
            2 => self.u16()?,
            _ => self.u24()?,
        };
        Ok(Reader(self.take(n)?))
    }

    fn end(&self) -> Result<(), Malformed> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Malformed)
        }
    }
}

/// The DER Names of the acceptable CAs in a CertificateRequest (`message`: the
/// handshake message with its 4-byte header) of protocol `version`. Empty: the
/// partner named none (any CA may do).
pub fn acceptable_cas(version: i32, message: &[u8]) -> Result<Vec<Vec<u8>>, Malformed> {
    let mut outer = Reader(message);
    if outer.u8()? != 13 {
        return Err(Malformed);
    }
    let mut body = outer.vector(3)?;
    outer.end()?;
    let names = if version >= TLS1_3 {
        body.vector(1)?; // certificate_request_context
        let mut extensions = body.vector(2)?;
        let mut found = None;
        while !extensions.0.is_empty() {
            let kind = extensions.u16()?;
            let data = extensions.vector(2)?;
            if kind == CERTIFICATE_AUTHORITIES {
                if found.is_some() {
                    return Err(Malformed);
                }
                let mut data = data;
                let list = data.vector(2)?;
                data.end()?;
                if list.0.len() < 3 {
                    return Err(Malformed);
                }
                found = Some(list);
            }
        }
        found
    } else {
        let types = body.vector(1)?;
        if types.0.is_empty() {
            return Err(Malformed);
        }
        if version >= TLS1_2 {
            let algorithms = body.vector(2)?;
            if algorithms.0.len() < 2 || algorithms.0.len() % 2 != 0 {
                return Err(Malformed);
            }
        }
        Some(body.vector(2)?)
    };
    body.end()?;
    let mut out = Vec::new();
    if let Some(mut list) = names {
        while !list.0.is_empty() {
            let name = list.vector(2)?;
            if name.0.is_empty() {
                return Err(Malformed);
            }
            out.push(name.0.to_vec());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A handshake message of type 13 around `body`.
    fn message(body: &[u8]) -> Vec<u8> {
        let n = body.len();
        let mut m = vec![13, (n >> 16) as u8, (n >> 8) as u8, n as u8];
        m.extend_from_slice(body);
        m
    }

    fn names(list: &[&[u8]]) -> Vec<u8> {
        let mut inner = Vec::new();
        for n in list {
            inner.extend_from_slice(&(n.len() as u16).to_be_bytes());
            inner.extend_from_slice(n);
        }
        let mut out = (inner.len() as u16).to_be_bytes().to_vec();
        out.extend(inner);
        out
    }

    #[test]
    fn tls12_and_tls13_requests_give_their_names_and_every_cut_is_refused() {
        let a: &[u8] = b"\x30\x03\x31\x01\x00";
        let b: &[u8] = b"\x30\x00";
        // TLS 1.2: types, signature algorithms, names.
        let mut body = vec![1, 1, 0, 2, 0x04, 0x01];
        body.extend(names(&[a, b]));
        let tls12 = message(&body);
        assert_eq!(
            acceptable_cas(TLS1_2, &tls12),
            Ok(vec![a.to_vec(), b.to_vec()])
        );
        // TLS 1.0: no signature algorithms.
        let mut body = vec![1, 1];
        body.extend(names(&[a]));
        assert_eq!(
            acceptable_cas(0x0301, &message(&body)),
            Ok(vec![a.to_vec()])
        );
        // TLS 1.3: a context, then extensions; certificate_authorities among them.
        let ca = names(&[b]);
        let mut extensions = vec![0, 13, 0, 4, 0, 2, 0x04, 0x03];
        extensions.extend_from_slice(&47u16.to_be_bytes());
        extensions.extend_from_slice(&(ca.len() as u16).to_be_bytes());
        extensions.extend(ca);
        let mut body = vec![0];
        body.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
        body.extend(extensions);
        let tls13 = message(&body);
        assert_eq!(acceptable_cas(TLS1_3, &tls13), Ok(vec![b.to_vec()]));
        // Without the extension: no names.
        let body = [0, 0, 8, 0, 13, 0, 4, 0, 2, 0x04, 0x03];
        assert_eq!(acceptable_cas(TLS1_3, &message(&body)), Ok(vec![]));
        // Every truncation, and a byte more, is malformed.
        for whole in [&tls12, &tls13] {
            for cut in 0..whole.len() {
                let version = if whole == &tls12 { TLS1_2 } else { TLS1_3 };
                assert_eq!(acceptable_cas(version, &whole[..cut]), Err(Malformed));
            }
            let mut longer = whole.clone();
            longer.push(0);
            assert_eq!(acceptable_cas(TLS1_2, &longer), Err(Malformed));
        }
    }
}
