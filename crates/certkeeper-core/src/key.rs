//! Private keys, held as unencrypted PKCS#8 DER in memory that is zeroized on drop,
//! and matched to certificates by public key.

use aws_lc_rs::signature::{self, KeyPair};
use der::asn1::ObjectIdentifier;
use zeroize::Zeroizing;

use crate::ber::{self, Tlv};
use crate::cert::Certificate;
use crate::error::FormatError;

/// rsaEncryption.
pub const OID_RSA: &str = "1.2.840.113549.1.1.1";
/// id-RSASSA-PSS.
pub const OID_RSA_PSS: &str = "1.2.840.113549.1.1.10";
/// id-ecPublicKey.
pub const OID_EC: &str = "1.2.840.10045.2.1";
/// secp256r1.
pub const OID_P256: &str = "1.2.840.10045.3.1.7";
/// secp384r1.
pub const OID_P384: &str = "1.3.132.0.34";
/// secp521r1.
pub const OID_P521: &str = "1.3.132.0.35";
/// id-Ed25519.
pub const OID_ED25519: &str = "1.3.101.112";

/// The key types certkeeper stores and signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// RSA (rsaEncryption), any size.
    Rsa,
    /// RSA restricted to PSS (id-RSASSA-PSS).
    RsaPss,
    /// ECDSA on P-256.
    EcP256,
    /// ECDSA on P-384.
    EcP384,
    /// ECDSA on P-521.
    EcP521,
    /// Ed25519.
    Ed25519,
}

impl KeyAlgorithm {
    /// A stable lower-case name, as stored in the database.
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa => "rsa",
            KeyAlgorithm::RsaPss => "rsa-pss",
            KeyAlgorithm::EcP256 => "ec-p256",
            KeyAlgorithm::EcP384 => "ec-p384",
            KeyAlgorithm::EcP521 => "ec-p521",
            KeyAlgorithm::Ed25519 => "ed25519",
        }
    }
}

/// A private key. The PKCS#8 bytes are zeroized when it is dropped; `Debug` shows
/// only the algorithm.
pub struct PrivateKey {
    pkcs8: Zeroizing<Vec<u8>>,
    algorithm: KeyAlgorithm,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// Reads an unencrypted PKCS#8 PrivateKeyInfo (v1 or v2).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, FormatError> {
        let info = parse_pkcs8(der)?;
        let algorithm = match info.oid.as_str() {
            OID_RSA => KeyAlgorithm::Rsa,
            OID_RSA_PSS => KeyAlgorithm::RsaPss,
            OID_EC => match info.curve.as_deref() {
                Some(OID_P256) => KeyAlgorithm::EcP256,
                Some(OID_P384) => KeyAlgorithm::EcP384,
                Some(OID_P521) => KeyAlgorithm::EcP521,
                Some(other) => {
                    return Err(FormatError::Unsupported {
                        what: format!("an EC key on curve {other}"),
                    });
                }
                None => {
                    return Err(FormatError::damaged(
                        "private key",
                        "EC key without curve parameters",
                    ));
                }
            },
            OID_ED25519 => KeyAlgorithm::Ed25519,
            "1.2.840.10040.4.1" => return Err(unsupported("a DSA key")),
            "1.3.101.113" => return Err(unsupported("an Ed448 key")),
            "1.3.101.110" | "1.3.101.111" => {
                return Err(unsupported("an X25519/X448 key (not a signing key)"));
            }
            other => return Err(unsupported(&format!("a key of algorithm {other}"))),
        };
        let key = PrivateKey {
            pkcs8: Zeroizing::new(der.to_vec()),
            algorithm,
        };
        // Fail now, not at first use, on a key whose numbers are wrong.
        key.public_key_bits()?;
        Ok(key)
    }

    /// Reads a PKCS#1 RSAPrivateKey (`BEGIN RSA PRIVATE KEY`).
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, FormatError> {
        let seq = ber::read_single(der).map_err(|e| FormatError::ber("RSA private key", &e))?;
        // OpenSSL's DSA private key has the same shape with six integers.
        if seq.children().is_ok_and(|c| c.len() == 6) {
            return Err(unsupported("a DSA key"));
        }
        let alg = ber::encode(&[0x30], &[oid_tlv(OID_RSA), vec![0x05, 0x00]].concat());
        let pkcs8 = Zeroizing::new(ber::encode(
            &[0x30],
            &[vec![0x02, 0x01, 0x00], alg, ber::encode(&[0x04], der)].concat(),
        ));
        Self::from_pkcs8_der(&pkcs8)
    }

    /// Reads a SEC1 ECPrivateKey (`BEGIN EC PRIVATE KEY`); the curve comes from its
    /// parameters.
    pub fn from_sec1_der(der: &[u8]) -> Result<Self, FormatError> {
        let tlv = ber::read_single(der).map_err(|e| FormatError::ber("EC private key", &e))?;
        let children = tlv
            .children()
            .map_err(|e| FormatError::ber("EC private key", &e))?;
        let curve = children
            .iter()
            .find(|c| c.tag_byte() == 0xa0)
            .and_then(|c| c.children().ok())
            .and_then(|c| c.first().map(|t| t.raw.to_vec()))
            .ok_or_else(|| FormatError::damaged("EC private key", "no curve parameters"))?;
        let alg = ber::encode(&[0x30], &[oid_tlv(OID_EC), curve].concat());
        let pkcs8 = Zeroizing::new(ber::encode(
            &[0x30],
            &[vec![0x02, 0x01, 0x00], alg, ber::encode(&[0x04], der)].concat(),
        ));
        Self::from_pkcs8_der(&pkcs8)
    }

    /// The unencrypted PKCS#8 DER. Handle with care: it is the secret.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The public key, encoded as a certificate's subjectPublicKey BIT STRING holds it:
    /// RSAPublicKey DER for RSA, the uncompressed point for EC, 32 bytes for Ed25519.
    pub fn public_key_bits(&self) -> Result<Vec<u8>, FormatError> {
        let bad = |detail: &str| FormatError::damaged("private key", detail);
        match self.algorithm {
            KeyAlgorithm::Rsa | KeyAlgorithm::RsaPss => {
                // Read n and e ourselves: aws-lc-rs refuses RSA keys under 2048 bits,
                // and a partner's legacy 1024-bit certificate must still import.
                let info = parse_pkcs8(&self.pkcs8)?;
                let (n, e) = rsa_numbers(&info.key).ok_or_else(|| bad("invalid RSA key"))?;
                Ok(rsa_public_key_der(n, e))
            }
            KeyAlgorithm::EcP256 | KeyAlgorithm::EcP384 | KeyAlgorithm::EcP521 => {
                let alg = match self.algorithm {
                    KeyAlgorithm::EcP256 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                    KeyAlgorithm::EcP384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                    _ => &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
                };
                let pair = signature::EcdsaKeyPair::from_private_key_der(alg, &self.pkcs8)
                    .map_err(|_| {
                        bad("invalid EC key (the private value does not fit the curve)")
                    })?;
                Ok(pair.public_key().as_ref().to_vec())
            }
            KeyAlgorithm::Ed25519 => {
                let pair = signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&self.pkcs8)
                    .map_err(|_| bad("invalid Ed25519 key"))?;
                Ok(pair.public_key().as_ref().to_vec())
            }
        }
    }

    /// The key id of the public half: equal to [`Certificate::key_id`] of every
    /// certificate issued for this key.
    pub fn key_id(&self) -> Result<String, FormatError> {
        let rsa = matches!(self.algorithm, KeyAlgorithm::Rsa | KeyAlgorithm::RsaPss);
        Ok(public_key_id(&self.public_key_bits()?, rsa))
    }

    /// Whether this key is the private half of `cert`'s public key.
    pub fn matches(&self, cert: &Certificate) -> bool {
        self.key_id().is_ok_and(|id| id == cert.key_id)
    }
}

/// SHA-256 (hex) of a public key in canonical form: RSA as the minimal RSAPublicKey
/// DER of (n, e), whatever padding its encoder used; other keys as their bits.
pub fn public_key_id(bits: &[u8], rsa: bool) -> String {
    let canonical = if rsa {
        match rsa_public_numbers(bits) {
            Some((n, e)) => rsa_public_key_der(&n, &e),
            None => bits.to_vec(),
        }
    } else {
        bits.to_vec()
    };
    hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        &canonical,
    ))
}

fn unsupported(what: &str) -> FormatError {
    FormatError::Unsupported {
        what: what.to_string(),
    }
}

/// The parts of a PKCS#8 PrivateKeyInfo certkeeper needs.
struct Pkcs8Info {
    oid: String,
    curve: Option<String>,
    key: Zeroizing<Vec<u8>>,
}

fn parse_pkcs8(der: &[u8]) -> Result<Pkcs8Info, FormatError> {
    let bad = |detail: String| FormatError::damaged("private key (PKCS#8)", detail);
    let outer = ber::read_single(der).map_err(|e| bad(e.to_string()))?;
    let children = outer.children().map_err(|e| bad(e.to_string()))?;
    let [version, alg, key, ..] = children.as_slice() else {
        return Err(bad("too few fields".into()));
    };
    if version.tag_byte() != 0x02 || alg.tag_byte() != 0x30 || key.tag_byte() != 0x04 {
        return Err(bad("not a PrivateKeyInfo".into()));
    }
    let alg_parts = alg.children().map_err(|e| bad(e.to_string()))?;
    let oid = alg_parts
        .first()
        .and_then(oid_string)
        .ok_or_else(|| bad("bad algorithm identifier".into()))?;
    let mut curve = alg_parts.get(1).and_then(oid_string);
    if oid == OID_EC && curve.is_none() {
        // Some producers leave the curve only inside the SEC1 structure.
        curve = ber::read_single(key.content)
            .ok()
            .and_then(|k| k.children().ok())
            .and_then(|c| c.into_iter().find(|t| t.tag_byte() == 0xa0))
            .and_then(|p| p.children().ok())
            .and_then(|c| c.first().and_then(oid_string));
    }
    Ok(Pkcs8Info {
        oid,
        curve,
        key: Zeroizing::new(key.content.to_vec()),
    })
}

/// A TLV that is an OBJECT IDENTIFIER, as a dotted string.
pub fn oid_string(tlv: &Tlv<'_>) -> Option<String> {
    if tlv.tag_byte() != 0x06 {
        return None;
    }
    ObjectIdentifier::from_bytes(tlv.content)
        .ok()
        .map(|o| o.to_string())
}

/// The DER of an OBJECT IDENTIFIER given in dotted form.
pub fn oid_tlv(dotted: &str) -> Vec<u8> {
    // The dotted strings passed here are this crate's constants.
    let oid = ObjectIdentifier::new(dotted).expect("constant OID is valid");
    ber::encode(&[0x06], oid.as_bytes())
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let skip = b.iter().take_while(|x| **x == 0).count();
    &b[skip..]
}

/// (n, e) from an RSAPrivateKey.
fn rsa_numbers(pkcs1: &[u8]) -> Option<(&[u8], &[u8])> {
    let seq = ber::read_single(pkcs1).ok()?;
    let c = seq.children().ok()?;
    if c.len() < 9 || c.iter().take(9).any(|t| t.tag_byte() != 0x02) {
        return None;
    }
    Some((strip_zeros(c[1].content), strip_zeros(c[2].content)))
}

/// (n, e) from an RSAPublicKey.
fn rsa_public_numbers(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let seq = ber::read_single(der).ok()?;
    let c = seq.children().ok()?;
    match c.as_slice() {
        [n, e] if n.tag_byte() == 0x02 && e.tag_byte() == 0x02 => Some((
            strip_zeros(n.content).to_vec(),
            strip_zeros(e.content).to_vec(),
        )),
        _ => None,
    }
}

fn der_uint(v: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(v.len() + 1);
    if v.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(v);
    ber::encode(&[0x02], &content)
}

fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    ber::encode(&[0x30], &[der_uint(n), der_uint(e)].concat())
}
