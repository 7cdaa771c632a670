//! What an old partner speaks, asked after a handshake failed for want of common
//! parameters ("no common TLS parameters").
//!
//! rustls offers TLS 1.3 and 1.2 with ECDHE key exchange and AEAD suites only. A
//! partner on an old stack (RSA key exchange and CBC suites, TLS 1.0 or 1.1 only)
//! answers it with a handshake_failure or protocol_version alert, which says nothing
//! an administrator can act on. So the relay asks once more, with a ClientHello of
//! its own that offers TLS 1.0 to 1.2 and the old suites as well, and reads the
//! version and suite the partner picks from its ServerHello; then it closes the
//! connection. Written by hand because no TLS library here will offer what it refuses
//! to use: the probe sends no key, no certificate and no data, and reads one record,
//! strictly.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::tunnel::Destination;

/// How long the probe may take, connection included.
const PROBE_WITHIN: Duration = Duration::from_secs(3);

/// The suites the probe offers: (code, IANA name, what makes it old). Modern ones
/// first, so a partner that follows the client's order picks the best it has.
const SUITES: &[(u16, &str, Option<&str>)] = &[
    (0xc02b, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", None),
    (0xc02f, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", None),
    (0xc02c, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", None),
    (0xc030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", None),
    (
        0xcca9,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        None,
    ),
    (0xcca8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", None),
    (
        0x009e,
        "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
        Some("finite-field DHE key exchange"),
    ),
    (
        0x009f,
        "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
        Some("finite-field DHE key exchange"),
    ),
    (
        0xc023,
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        Some("CBC"),
    ),
    (0xc027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", Some("CBC")),
    (0xc009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", Some("CBC")),
    (0xc013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", Some("CBC")),
    (0xc00a, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", Some("CBC")),
    (0xc014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", Some("CBC")),
    (
        0x0033,
        "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
        Some("finite-field DHE key exchange and CBC"),
    ),
    (
        0x0039,
        "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
        Some("finite-field DHE key exchange and CBC"),
    ),
    (
        0x009c,
        "TLS_RSA_WITH_AES_128_GCM_SHA256",
        Some("RSA key exchange"),
    ),
    (
        0x009d,
        "TLS_RSA_WITH_AES_256_GCM_SHA384",
        Some("RSA key exchange"),
    ),
    (
        0x003c,
        "TLS_RSA_WITH_AES_128_CBC_SHA256",
        Some("RSA key exchange and CBC"),
    ),
    (
        0x003d,
        "TLS_RSA_WITH_AES_256_CBC_SHA256",
        Some("RSA key exchange and CBC"),
    ),
    (
        0x002f,
        "TLS_RSA_WITH_AES_128_CBC_SHA",
        Some("RSA key exchange and CBC"),
    ),
    (
        0x0035,
        "TLS_RSA_WITH_AES_256_CBC_SHA",
        Some("RSA key exchange and CBC"),
    ),
    (
        0x000a,
        "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        Some("RSA key exchange and 3DES"),
    ),
];

/// What the partner picked when offered everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picked {
    /// "TLS 1.0", "TLS 1.1", "TLS 1.2".
    pub version: &'static str,
    /// The IANA name of the suite.
    pub suite: String,
    /// Why certkeeper does not use it by default (`None`: a modern suite).
    pub old: Option<&'static str>,
}

impl Picked {
    /// One sentence for a failure message.
    pub fn describe(&self) -> String {
        match (self.version, self.old) {
            ("TLS 1.2", None) => format!(
                "offered old and new suites, it picked TLS 1.2 {}, which certkeeper offers: \
                 it refuses something else (its certificate's key or signature algorithm?)",
                self.suite
            ),
            ("TLS 1.2", Some(why)) => format!(
                "offered old suites, it picked TLS 1.2 {} ({why}), which certkeeper does \
                 not use: it has no suite in common with certkeeper",
                self.suite
            ),
            (version, _) => format!(
                "it speaks only {version} (offered TLS 1.0 to 1.2, it picked {}), older than \
                 the TLS 1.2 certkeeper requires",
                self.suite
            ),
        }
    }
}

/// The ClientHello the probe sends for `host` (SNI when it is a name).
fn client_hello(host: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(256);
    body.extend_from_slice(&[0x03, 0x03]); // legacy_version: TLS 1.2, lower ones allowed
    // A random that is fixed: the probe never completes a handshake.
    body.extend((0u8..32).map(|i| i.wrapping_mul(37).wrapping_add(11)));
    body.push(0); // no session id
    let suites: Vec<u8> = SUITES
        .iter()
        .flat_map(|(code, _, _)| code.to_be_bytes())
        .chain([0x00, 0xff]) // TLS_EMPTY_RENEGOTIATION_INFO_SCSV
        .collect();
    push_u16(&mut body, suites.len());
    body.extend_from_slice(&suites);
    body.extend_from_slice(&[1, 0]); // compression: null only

    let mut ext = Vec::new();
    let name = host.trim_start_matches('[').trim_end_matches(']');
    if name.parse::<std::net::IpAddr>().is_err() && !name.is_empty() && name.len() < 256 {
        let mut sni = Vec::new();
        push_u16(&mut sni, name.len() + 3);
        sni.push(0); // host_name
        push_u16(&mut sni, name.len());
        sni.extend_from_slice(name.as_bytes());
        push_extension(&mut ext, 0x0000, &sni);
    }
    // supported_groups: x25519, secp256r1, secp384r1, secp521r1, ffdhe2048
    push_extension(
        &mut ext,
        0x000a,
        &[
            0, 10, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18, 0x00, 0x19, 0x01, 0x00,
        ],
    );
    push_extension(&mut ext, 0x000b, &[1, 0]); // ec_point_formats: uncompressed
    // signature_algorithms, old ones included (rsa_pkcs1_sha1, ecdsa_sha1).
    let schemes: [u16; 11] = [
        0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0201, 0x0203,
    ];
    let mut algs = Vec::new();
    push_u16(&mut algs, schemes.len() * 2);
    algs.extend(schemes.iter().flat_map(|s| s.to_be_bytes()));
    push_extension(&mut ext, 0x000d, &algs);
    push_u16(&mut body, ext.len());
    body.extend_from_slice(&ext);

    let mut handshake = vec![0x01]; // client_hello
    handshake.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01]; // handshake, record version TLS 1.0
    push_u16(&mut record, handshake.len());
    record.extend_from_slice(&handshake);
    record
}

fn push_u16(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u16::try_from(n).unwrap_or(u16::MAX).to_be_bytes());
}

fn push_extension(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    push_u16(out, data.len());
    out.extend_from_slice(data);
}

/// What the first record of the partner's answer says: the version and suite of its
/// ServerHello. `None` for anything else (an alert, another record, a ServerHello
/// that does not parse or names a version or suite the probe did not offer).
pub fn read_server_hello(record: &[u8]) -> Option<Picked> {
    let (&kind, rest) = record.split_first()?;
    if kind != 0x16 || rest.len() < 4 {
        return None;
    }
    let length = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
    let fragment = rest.get(4..4 + length)?;
    let (&handshake_type, fragment) = fragment.split_first()?;
    if handshake_type != 0x02 || fragment.len() < 3 {
        return None;
    }
    let body_len =
        usize::from(fragment[0]) << 16 | usize::from(fragment[1]) << 8 | usize::from(fragment[2]);
    let body = fragment.get(3..3 + body_len)?;
    let version = match body.get(..2)? {
        [3, 1] => "TLS 1.0",
        [3, 2] => "TLS 1.1",
        [3, 3] => "TLS 1.2",
        _ => return None,
    };
    let session_len = usize::from(*body.get(34)?);
    let at = 35 + session_len;
    let code = u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]);
    let (_, name, old) = SUITES.iter().find(|(c, _, _)| *c == code)?;
    Some(Picked {
        version,
        suite: (*name).to_string(),
        old: *old,
    })
}

/// Asks the partner at `destination:port` what it picks among old and new suites and
/// TLS 1.0 to 1.2, within a few seconds; `None` when it answers nothing usable.
pub async fn ask<D: Destination + ?Sized>(destination: &D, port: u16) -> Option<Picked> {
    let host = destination.host().to_string();
    let probe = async {
        let mut tcp = match destination.via() {
            Some(proxy) => proxy.open(&host, port, PROBE_WITHIN).await.ok()?,
            None => {
                let bare = host.trim_start_matches('[').trim_end_matches(']');
                tokio::net::TcpStream::connect((bare, port)).await.ok()?
            }
        };
        tcp.write_all(&client_hello(&host)).await.ok()?;
        // One record: its 5-byte header, then at most 16 KiB.
        let mut record = vec![0u8; 5];
        tcp.read_exact(&mut record).await.ok()?;
        let length = usize::from(u16::from_be_bytes([record[3], record[4]])).min(16 * 1024);
        record.resize(5 + length, 0);
        tcp.read_exact(&mut record[5..]).await.ok()?;
        read_server_hello(&record)
    };
    tokio::time::timeout(PROBE_WITHIN, probe)
        .await
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_hello(version: [u8; 2], session: &[u8], suite: u16) -> Vec<u8> {
        let mut body = version.to_vec();
        body.extend_from_slice(&[7; 32]);
        body.push(session.len() as u8);
        body.extend_from_slice(session);
        body.extend_from_slice(&suite.to_be_bytes());
        body.push(0);
        let mut handshake = vec![2];
        handshake.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        handshake.extend_from_slice(&body);
        let mut record = vec![0x16, 3, 3];
        record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
        record.extend_from_slice(&handshake);
        record
    }

    #[test]
    fn a_server_hello_names_the_version_and_suite_picked() {
        let picked = read_server_hello(&server_hello([3, 3], &[1; 32], 0x002f)).unwrap();
        assert_eq!(picked.version, "TLS 1.2");
        assert_eq!(picked.suite, "TLS_RSA_WITH_AES_128_CBC_SHA");
        assert_eq!(picked.old, Some("RSA key exchange and CBC"));
        assert!(
            picked
                .describe()
                .contains("TLS 1.2 TLS_RSA_WITH_AES_128_CBC_SHA")
        );
        let picked = read_server_hello(&server_hello([3, 1], &[], 0xc013)).unwrap();
        assert_eq!(picked.version, "TLS 1.0");
        assert!(picked.describe().contains("it speaks only TLS 1.0"));
    }

    #[test]
    fn anything_but_a_whole_server_hello_with_what_was_offered_is_nothing() {
        let good = server_hello([3, 3], &[1; 32], 0x002f);
        for cut in 0..good.len() {
            assert_eq!(read_server_hello(&good[..cut]), None, "cut at {cut}");
        }
        // An alert, a suite not offered, a version not offered, another message.
        assert_eq!(read_server_hello(&[0x15, 3, 3, 0, 2, 2, 40]), None);
        assert_eq!(read_server_hello(&server_hello([3, 3], &[], 0x1301)), None);
        assert_eq!(read_server_hello(&server_hello([3, 4], &[], 0x002f)), None);
        assert_eq!(read_server_hello(&server_hello([3, 0], &[], 0x002f)), None);
        let mut other = good;
        other[5] = 0x0b;
        assert_eq!(read_server_hello(&other), None);
        // A session id longer than the body.
        let mut long = server_hello([3, 3], &[], 0x002f);
        long[5 + 4 + 34] = 200;
        assert_eq!(read_server_hello(&long), None);
    }

    #[test]
    fn the_client_hello_is_one_well_formed_record() {
        let hello = client_hello("partner.example");
        assert_eq!(&hello[..3], &[0x16, 3, 1]);
        let length = usize::from(u16::from_be_bytes([hello[3], hello[4]]));
        assert_eq!(hello.len(), 5 + length);
        let body_len =
            usize::from(hello[6]) << 16 | usize::from(hello[7]) << 8 | usize::from(hello[8]);
        assert_eq!(body_len + 4, length);
        assert!(hello.windows(15).any(|w| w == b"partner.example"));
        // No SNI for an address.
        assert!(
            !client_hello("127.0.0.1")
                .windows(9)
                .any(|w| w == b"127.0.0.1")
        );
    }
}
