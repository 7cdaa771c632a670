//! PKCS#12 (`.pfx`, `.p12`): reading every variant administrators meet, and writing.
//!
//! The reader is certkeeper's own, over [`crate::ber`] and [`crate::encrypted`],
//! because the maintained crate (p12-keystore) misses four things that matter at the
//! import wizard: the zero-length "null" password that .NET and macOS write, bags
//! holding only certificates, BER files, and telling a wrong password from a damaged
//! file. Writing goes through p12-keystore, which does that well.

use hmac::{KeyInit, Mac};
use sha1::Sha1;
use sha2::{Sha224, Sha256, Sha384, Sha512};
use zeroize::Zeroizing;

use crate::ber::{self, Tlv};
use crate::cert::Certificate;
use crate::encrypted::{self, DecryptError, MAX_ITERATIONS, PasswordBytes};
use crate::error::{FormatError, ReadWarning};
use crate::key::{PrivateKey, oid_string};

const WHAT: &str = "PKCS#12";
const OID_DATA: &str = "1.2.840.113549.1.7.1";
const OID_ENCRYPTED_DATA: &str = "1.2.840.113549.1.7.6";
const OID_SHROUDED_KEY: &str = "1.2.840.113549.1.12.10.1.2";

/// A certificate found in the file, with its bag attributes.
#[derive(Debug)]
pub struct CertBag {
    /// The certificate.
    pub cert: Certificate,
    /// friendlyName, if any.
    pub friendly_name: Option<String>,
}

/// A private key found in the file, with its bag attributes.
#[derive(Debug)]
pub struct KeyBag {
    /// The key.
    pub key: PrivateKey,
    /// friendlyName, if any.
    pub friendly_name: Option<String>,
}

/// What a PKCS#12 file holds.
#[derive(Debug, Default)]
pub struct Pkcs12Contents {
    /// Certificate bags, in file order.
    pub certs: Vec<CertBag>,
    /// Key bags (plain and shrouded), in file order.
    pub keys: Vec<KeyBag>,
    /// What was read past (trailing bytes).
    pub warnings: Vec<ReadWarning>,
}

/// Reads a PKCS#12 file. With no password, tries both encodings of the empty
/// password (the empty BMPString, and the zero-length "null" password) as OpenSSL does.
///
/// Wrong password or damaged file: a MAC that verifies proves the password, and so
/// does any encrypted part (an encrypted safe, a shrouded key) that decrypts to the
/// start of a structure that fills it exactly. Once the password is proven, every
/// other failure is damage; only when nothing proves it is the answer "wrong password".
///
/// Bytes after the PFX structure (Windows exports sometimes carry `00 00` or zero
/// padding) are ignored with a warning, but only when the MAC verifies: a MAC proves
/// the structure before them complete. Without a MAC they stay an error, since a
/// damaged outer length could otherwise cut the MAC off and pass for trailing bytes.
pub fn read(input: &[u8], password: Option<&str>) -> Result<Pkcs12Contents, FormatError> {
    let (_, trailing) = ber::read_tlv(input, 0).map_err(|e| FormatError::ber(WHAT, &e))?;
    let body = &input[..input.len() - trailing.len()];
    let der = ber::to_der(body).map_err(|e| FormatError::ber(WHAT, &e))?;
    let pfx = ber::read_single(&der).map_err(|e| FormatError::ber(WHAT, &e))?;
    let fields = pfx.children().map_err(|e| FormatError::ber(WHAT, &e))?;
    let (version, auth_safe, mac) = match fields.as_slice() {
        [v, a] => (v, a, None),
        [v, a, m] => (v, a, Some(m)),
        _ => return Err(FormatError::damaged(WHAT, "not a PFX structure")),
    };
    if version.content != [3] {
        return Err(FormatError::damaged(WHAT, "unsupported PFX version"));
    }
    let auth_parts = auth_safe
        .children()
        .map_err(|e| FormatError::ber(WHAT, &e))?;
    match auth_parts.first().and_then(oid_string).as_deref() {
        Some(OID_DATA) => {}
        Some("1.2.840.113549.1.7.2") => {
            return Err(FormatError::Unsupported {
                what: "public-key integrity mode (a signed PFX)".into(),
            });
        }
        _ => return Err(FormatError::damaged(WHAT, "authSafe is not data")),
    }
    let octets = auth_parts
        .get(1)
        .filter(|t| t.tag_byte() == 0xa0)
        .and_then(|t| t.children().ok())
        .and_then(|c| {
            c.first()
                .filter(|t| t.tag_byte() == 0x04)
                .map(|t| t.content)
        })
        .ok_or_else(|| FormatError::damaged(WHAT, "authSafe has no content"))?;
    if !trailing.is_empty() && mac.is_none() {
        return Err(FormatError::damaged(
            WHAT,
            format!(
                "{} (and it has no integrity check that would prove the data before them complete)",
                ber::BerError::TrailingData(trailing.len())
            ),
        ));
    }

    let candidates: Vec<PasswordBytes> = match password {
        Some(p) if !p.is_empty() => vec![PasswordBytes::new(p)],
        _ => vec![PasswordBytes::new(""), PasswordBytes::null()],
    };

    let mut mac_ok = None;
    if let Some(mac) = mac {
        for (i, candidate) in candidates.iter().enumerate() {
            if verify_mac(mac, candidate, octets)? {
                mac_ok = Some(i);
                break;
            }
        }
    }

    if let Some(i) = mac_ok {
        return match read_auth_safe(octets, &candidates[i]) {
            Ok(mut contents) => {
                if !trailing.is_empty() {
                    contents.warnings.push(ReadWarning::TrailingBytes {
                        count: trailing.len(),
                        zeros: trailing.iter().all(|b| *b == 0),
                    });
                }
                Ok(contents)
            }
            // The MAC proved the password; a failing decryption is damage.
            Err(FormatError::WrongPassword) => Err(FormatError::damaged(
                WHAT,
                "encrypted contents do not decrypt, though the integrity check proves the password right",
            )),
            Err(e) => Err(e),
        };
    }

    // No MAC, or one that fails under every candidate: only the encrypted parts can
    // tell a wrong password from an altered file. With a failing MAC nothing is
    // returned, so the proof comes first (it stops at the first part that proves).
    let mut last = FormatError::WrongPassword;
    for candidate in &candidates {
        if mac.is_some() && password_proven(octets, candidate) {
            return Err(FormatError::damaged(
                WHAT,
                "integrity check failed (the MAC does not match the contents, though the \
                 password opens them): the file was altered",
            ));
        }
        match read_auth_safe(octets, candidate) {
            Ok(contents) if mac.is_none() => return Ok(contents),
            Err(FormatError::WrongPassword)
                if mac.is_none() && password_proven(octets, candidate) =>
            {
                return Err(FormatError::damaged(
                    WHAT,
                    "part of the encrypted contents does not decrypt, though the password \
                     opens the rest: the file was altered",
                ));
            }
            Ok(_) | Err(FormatError::WrongPassword) => {}
            // Damage found before any decryption does not depend on the password.
            Err(e) => last = e,
        }
    }
    if matches!(last, FormatError::WrongPassword) && password.is_none() {
        return Err(FormatError::PasswordRequired {
            what: "the PKCS#12 file",
        });
    }
    Err(last)
}

/// Whether some encrypted part of the file (an encrypted safe, or a shrouded key bag in
/// a plain safe) decrypts under this password into the start of one structure that
/// fills the plaintext exactly. Decrypted with a wrong key, a CBC plaintext passes its
/// padding check about once in 256 and then also has to begin with a SEQUENCE header
/// whose length matches to the byte: about one chance in 2^40. Decrypted with the right
/// key, a flipped bit further on leaves that header intact. The walk is lenient, so a
/// part damaged elsewhere in the file does not hide the ones that are intact.
fn password_proven(octets: &[u8], password: &PasswordBytes) -> bool {
    let Some((_, auth)) = ber::peek_header(octets) else {
        return false;
    };
    ber::lenient_children(auth).iter().any(|safe| {
        let parts = ber::lenient_children(safe.content);
        match parts.first().and_then(oid_string).as_deref() {
            Some(OID_ENCRYPTED_DATA) => encrypted_content(parts.get(1))
                .and_then(|(alg, data)| encrypted::decrypt(alg, &data, password))
                .is_ok_and(|plain| fills_one_sequence(&plain)),
            Some(OID_DATA) => {
                // [0] EXPLICIT OCTET STRING (possibly constructed, BER) of SafeContents.
                let Some(content) = parts.get(1).and_then(|t| t.children().ok()) else {
                    return false;
                };
                let Some(octets) = content.first() else {
                    return false;
                };
                let der = match octets.tag_byte() {
                    0x04 => std::borrow::Cow::Borrowed(octets.content),
                    _ => match ber::to_der(octets.raw) {
                        Ok(d) => std::borrow::Cow::Owned(
                            ber::peek_header(&d)
                                .map(|(_, c)| c.to_vec())
                                .unwrap_or_default(),
                        ),
                        Err(_) => return false,
                    },
                };
                let Some((_, bags)) = ber::peek_header(&der) else {
                    return false;
                };
                ber::lenient_children(bags).iter().any(|bag| {
                    let parts = ber::lenient_children(bag.content);
                    if parts.first().and_then(oid_string).as_deref() != Some(OID_SHROUDED_KEY) {
                        return false;
                    }
                    let Some(epki) = parts
                        .get(1)
                        .map(|v| ber::lenient_children(v.content))
                        .and_then(|c| c.first().copied())
                    else {
                        return false;
                    };
                    match ber::lenient_children(epki.content).as_slice() {
                        [alg, data, ..] if data.tag_byte() == 0x04 => {
                            encrypted::decrypt(alg.raw, data.content, password)
                                .is_ok_and(|plain| fills_one_sequence(&plain))
                        }
                        _ => false,
                    }
                })
            }
            _ => false,
        }
    })
}

/// Whether `plain` begins with a SEQUENCE header whose length is exactly the rest of it
/// (or, for an indefinite length, that holds a SEQUENCE and ends with end-of-contents).
fn fills_one_sequence(plain: &[u8]) -> bool {
    match ber::element_header(plain) {
        Some((0x30, Some(len), header)) => header.checked_add(len) == Some(plain.len()),
        Some((0x30, None, header)) => {
            plain.len() >= header + 4 && plain[header] == 0x30 && plain.ends_with(&[0, 0])
        }
        _ => false,
    }
}

fn verify_mac(mac: &Tlv<'_>, password: &PasswordBytes, data: &[u8]) -> Result<bool, FormatError> {
    let bad = |d: &str| FormatError::damaged(WHAT, format!("MAC data: {d}"));
    let parts = mac.children().map_err(|e| FormatError::ber(WHAT, &e))?;
    let (digest_info, salt, iterations) = match parts.as_slice() {
        [d, s] => (d, s, 1u64),
        [d, s, i] if i.tag_byte() == 0x02 && i.content.len() <= 8 => (
            d,
            s,
            i.content.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b)),
        ),
        _ => return Err(bad("malformed")),
    };
    if iterations == 0 || iterations > MAX_ITERATIONS {
        return Err(bad("iteration count out of bounds"));
    }
    if mac.tag_byte() != 0x30 || digest_info.tag_byte() != 0x30 || salt.tag_byte() != 0x04 {
        return Err(bad("malformed"));
    }
    let di = digest_info
        .children()
        .map_err(|e| FormatError::ber(WHAT, &e))?;
    let [alg, digest] = di.as_slice() else {
        return Err(bad("malformed digest info"));
    };
    if alg.tag_byte() != 0x30 || digest.tag_byte() != 0x04 {
        return Err(bad("malformed digest info"));
    }
    let alg_parts = alg.children().unwrap_or_default();
    let alg_oid = match alg_parts.as_slice() {
        // The parameters are absent or NULL.
        [oid]
        | [
            oid,
            Tlv {
                tag: [0x05],
                content: [],
                ..
            },
        ] => oid_string(oid),
        _ => None,
    }
    .ok_or_else(|| bad("no algorithm"))?;
    let rounds = i32::try_from(iterations).map_err(|_| bad("iterations"))?;
    macro_rules! check {
        ($d:ty, $len:expr) => {{
            let key = Zeroizing::new(pkcs12::kdf::derive_key::<$d>(
                &password.bmp,
                salt.content,
                pkcs12::kdf::Pkcs12KeyType::Mac,
                rounds,
                $len,
            ));
            let mut m =
                <hmac::Hmac<$d> as KeyInit>::new_from_slice(&key).map_err(|_| bad("key length"))?;
            m.update(data);
            Ok(m.verify_slice(digest.content).is_ok())
        }};
    }
    match alg_oid.as_str() {
        "1.3.14.3.2.26" => check!(Sha1, 20),
        "2.16.840.1.101.3.4.2.4" => check!(Sha224, 28),
        "2.16.840.1.101.3.4.2.1" => check!(Sha256, 32),
        "2.16.840.1.101.3.4.2.2" => check!(Sha384, 48),
        "2.16.840.1.101.3.4.2.3" => check!(Sha512, 64),
        "1.2.840.113549.1.5.14" => Err(FormatError::Unsupported {
            what: "a PBMAC1 integrity check".into(),
        }),
        other => Err(FormatError::Unsupported {
            what: format!("MAC algorithm {other}"),
        }),
    }
}

fn read_auth_safe(octets: &[u8], password: &PasswordBytes) -> Result<Pkcs12Contents, FormatError> {
    let der = ber::to_der(octets).map_err(|e| FormatError::ber(WHAT, &e))?;
    let safes = ber::read_single(&der)
        .and_then(|t| t.children())
        .map_err(|e| FormatError::ber(WHAT, &e))?;
    let mut out = Pkcs12Contents::default();
    for safe in &safes {
        let parts = safe.children().map_err(|e| FormatError::ber(WHAT, &e))?;
        match parts.first().and_then(oid_string).as_deref() {
            Some(OID_DATA) => {
                let content = parts
                    .get(1)
                    .and_then(|t| t.children().ok())
                    .and_then(|c| {
                        c.first()
                            .filter(|t| t.tag_byte() == 0x04)
                            .map(|t| t.content.to_vec())
                    })
                    .ok_or_else(|| FormatError::damaged(WHAT, "data safe without content"))?;
                read_safe_contents(&content, password, &mut out, 0)?;
            }
            Some(OID_ENCRYPTED_DATA) => {
                let plain = decrypt_encrypted_data(parts.get(1), password)
                    .map_err(|e| e.into_format(WHAT))?;
                read_safe_contents(&plain, password, &mut out, 0).map_err(|e| match e {
                    // Garbage after decryption with the wrong key.
                    FormatError::Damaged { .. } => FormatError::WrongPassword,
                    other => other,
                })?;
            }
            Some("1.2.840.113549.1.7.3") => {
                return Err(FormatError::Unsupported {
                    what: "public-key privacy mode (an enveloped safe)".into(),
                });
            }
            _ => return Err(FormatError::damaged(WHAT, "unknown safe content type")),
        }
    }
    Ok(out)
}

/// Decrypts `[0] EXPLICIT EncryptedData`.
fn decrypt_encrypted_data(
    explicit: Option<&Tlv<'_>>,
    password: &PasswordBytes,
) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
    let (alg, data) = match encrypted_content(explicit) {
        Ok(parts) => parts,
        // No encryptedContent: an empty safe.
        Err(DecryptError::Unsupported(_)) => return Ok(Zeroizing::new(vec![0x30, 0x00])),
        Err(e) => return Err(e),
    };
    encrypted::decrypt(alg, &data, password)
}

/// The algorithm identifier (DER) and ciphertext of `[0] EXPLICIT EncryptedData`;
/// `Unsupported` when it has no encryptedContent.
fn encrypted_content<'a>(explicit: Option<&Tlv<'a>>) -> Result<(&'a [u8], Vec<u8>), DecryptError> {
    let bad = |d: &str| DecryptError::BadParameters(format!("encrypted safe: {d}"));
    let ed = explicit
        .and_then(|t| t.children().ok())
        .and_then(|c| c.into_iter().next())
        .ok_or_else(|| bad("missing"))?;
    let ed_parts = ed.children().map_err(|e| bad(&e.to_string()))?;
    let eci = ed_parts.get(1).ok_or_else(|| bad("no content info"))?;
    let eci_parts = eci.children().map_err(|e| bad(&e.to_string()))?;
    let [_, alg, content, ..] = eci_parts.as_slice() else {
        return Err(DecryptError::Unsupported("no encrypted content".into()));
    };
    // [0] IMPLICIT OCTET STRING, primitive, or constructed from segments (BER).
    let data: Vec<u8> = match content.tag_byte() {
        0x80 => content.content.to_vec(),
        0xa0 => content
            .children()
            .map_err(|e| bad(&e.to_string()))?
            .iter()
            .flat_map(|s| s.content.iter().copied())
            .collect(),
        _ => return Err(bad("unexpected content tag")),
    };
    Ok((alg.raw, data))
}

fn read_safe_contents(
    der: &[u8],
    password: &PasswordBytes,
    out: &mut Pkcs12Contents,
    depth: usize,
) -> Result<(), FormatError> {
    if depth > 8 {
        return Err(FormatError::damaged(
            WHAT,
            "safe contents nested too deeply",
        ));
    }
    let der = ber::to_der(der).map_err(|e| FormatError::ber(WHAT, &e))?;
    let bags = ber::read_single(&der)
        .and_then(|t| t.children())
        .map_err(|e| FormatError::ber(WHAT, &e))?;
    for bag in &bags {
        let parts = bag.children().map_err(|e| FormatError::ber(WHAT, &e))?;
        let bag_id = parts.first().and_then(oid_string).unwrap_or_default();
        let value = parts
            .get(1)
            .filter(|t| t.tag_byte() == 0xa0)
            .and_then(|t| t.children().ok())
            .and_then(|c| c.into_iter().next())
            .ok_or_else(|| FormatError::damaged(WHAT, "bag without value"))?;
        let friendly_name = parts.get(2).and_then(|attrs| friendly_name(attrs));
        match bag_id.as_str() {
            "1.2.840.113549.1.12.10.1.1" => out.keys.push(KeyBag {
                key: PrivateKey::from_pkcs8_der(value.raw)?,
                friendly_name,
            }),
            OID_SHROUDED_KEY => {
                let key = encrypted::decrypt_pkcs8(value.raw, password)?;
                out.keys.push(KeyBag { key, friendly_name });
            }
            "1.2.840.113549.1.12.10.1.3" => {
                let cb = value.children().map_err(|e| FormatError::ber(WHAT, &e))?;
                // Only x509Certificate; sdsiCertificate is not X.509.
                if cb.first().and_then(oid_string).as_deref() != Some("1.2.840.113549.1.9.22.1") {
                    continue;
                }
                let cert_der = cb
                    .get(1)
                    .and_then(|t| t.children().ok())
                    .and_then(|c| {
                        c.first()
                            .filter(|t| t.tag_byte() == 0x04)
                            .map(|t| t.content)
                    })
                    .ok_or_else(|| {
                        FormatError::damaged(WHAT, "certificate bag without certificate")
                    })?;
                let cert = Certificate::from_der(cert_der)?;
                out.certs.push(CertBag {
                    cert,
                    friendly_name,
                });
            }
            "1.2.840.113549.1.12.10.1.6" => {
                read_safe_contents(value.raw, password, out, depth + 1)?;
            }
            // CRL and secret bags carry nothing certkeeper imports.
            _ => {}
        }
    }
    Ok(())
}

/// The friendlyName attribute (a BMPString) from a bag's attribute SET.
fn friendly_name(attrs: &Tlv<'_>) -> Option<String> {
    for attr in attrs.children().ok()? {
        let parts = attr.children().ok()?;
        if parts.first().and_then(oid_string).as_deref() != Some("1.2.840.113549.1.9.20") {
            continue;
        }
        let value = parts.get(1)?.children().ok()?.into_iter().next()?;
        if value.tag_byte() != 0x1e || value.content.len() % 2 != 0 {
            return None;
        }
        let units: Vec<u16> = value
            .content
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        let name = String::from_utf16_lossy(&units);
        // Some producers (Apple) include the terminating NUL.
        let name = name.trim_end_matches('\0').to_string();
        return (!name.is_empty()).then_some(name);
    }
    None
}

/// How to protect a written PKCS#12 file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// PBES2 AES-256-CBC with PBKDF2-HMAC-SHA256, HMAC-SHA256 MAC: OpenSSL 3's default.
    Modern,
    /// PKCS#12 PBE 3DES with an HMAC-SHA1 MAC: what Windows Server 2016 and older,
    /// and Java 8, read.
    Legacy,
}

/// Writes a PKCS#12 file holding `key` with `chain` (the leaf first).
pub fn write(
    key: &PrivateKey,
    chain: &[&Certificate],
    friendly_name: &str,
    password: &str,
    protection: Protection,
) -> Result<Vec<u8>, FormatError> {
    use p12_keystore::{KeyStore, KeyStoreEntry, PrivateKeyChain};
    let err = |e: p12_keystore::error::Error| FormatError::damaged("PKCS#12 output", e);
    let certs = chain
        .iter()
        .map(|c| p12_keystore::Certificate::from_der(&c.der))
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    let local_key_id = chain
        .first()
        .map(|c| hex::decode(&c.sha1).unwrap_or_default())
        .unwrap_or_default();
    let p12_key = p12_keystore::PrivateKey::from_der(key.pkcs8_der()).map_err(err)?;
    let mut store = KeyStore::new();
    store.add_entry(
        friendly_name,
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(local_key_id, p12_key, certs)),
    );
    let writer = store.writer(password);
    let writer = match protection {
        Protection::Modern => writer,
        Protection::Legacy => writer
            .encryption_algorithm(p12_keystore::EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc)
            .mac_algorithm(p12_keystore::MacAlgorithm::HmacSha1)
            .encryption_iterations(2048)
            .mac_iterations(2048),
    };
    writer.write().map_err(err)
}
