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
/// secp256k1.
pub const OID_SECP256K1: &str = "1.3.132.0.10";
/// id-Ed25519.
pub const OID_ED25519: &str = "1.3.101.112";
/// id-dsa.
pub const OID_DSA: &str = "1.2.840.10040.4.1";
/// id-X25519.
pub const OID_X25519: &str = "1.3.101.110";
/// id-Ed448.
pub const OID_ED448: &str = "1.3.101.113";
/// id-X448.
pub const OID_X448: &str = "1.3.101.111";

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
    /// ECDSA on secp256k1: stored and exported, but TLS signs with no such scheme.
    EcSecp256k1,
    /// DSA: stored and exported, but no TLS version signs a client's handshake with it.
    Dsa,
    /// X25519: a key-agreement key, it signs nothing.
    X25519,
    /// Ed448: stored and exported, but the TLS stack signs with no such scheme.
    Ed448,
    /// X448: a key-agreement key, it signs nothing.
    X448,
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
            KeyAlgorithm::EcSecp256k1 => "ec-secp256k1",
            KeyAlgorithm::Dsa => "dsa",
            KeyAlgorithm::X25519 => "x25519",
            KeyAlgorithm::Ed448 => "ed448",
            KeyAlgorithm::X448 => "x448",
        }
    }

    /// Why a key of this algorithm cannot sign a TLS handshake, if it cannot.
    pub fn tls_refusal(self) -> Option<&'static str> {
        match self {
            KeyAlgorithm::Dsa => Some(
                "a DSA key cannot sign a TLS handshake (TLS 1.3 has no DSA signatures, and \
                 TLS 1.2 client authentication with DSA is not offered)",
            ),
            KeyAlgorithm::X25519 => {
                Some("an X25519 key is for key agreement and cannot sign a TLS handshake")
            }
            KeyAlgorithm::X448 => {
                Some("an X448 key is for key agreement and cannot sign a TLS handshake")
            }
            KeyAlgorithm::Ed448 => Some(
                "an Ed448 key cannot sign a TLS handshake (certkeeper's TLS library offers \
                 no Ed448 signatures)",
            ),
            KeyAlgorithm::EcSecp256k1 => Some(
                "an EC key on secp256k1 cannot sign a TLS handshake (TLS signs with EC keys \
                 on P-256, P-384 and P-521 only)",
            ),
            _ => None,
        }
    }

    /// The algorithm of a name as [`KeyAlgorithm::name`] gives it.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            KeyAlgorithm::Rsa,
            KeyAlgorithm::RsaPss,
            KeyAlgorithm::EcP256,
            KeyAlgorithm::EcP384,
            KeyAlgorithm::EcP521,
            KeyAlgorithm::Ed25519,
            KeyAlgorithm::EcSecp256k1,
            KeyAlgorithm::Dsa,
            KeyAlgorithm::X25519,
            KeyAlgorithm::Ed448,
            KeyAlgorithm::X448,
        ]
        .into_iter()
        .find(|a| a.name() == name)
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
                Some(OID_SECP256K1) => KeyAlgorithm::EcSecp256k1,
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
            OID_DSA => KeyAlgorithm::Dsa,
            OID_X25519 => KeyAlgorithm::X25519,
            OID_ED448 => KeyAlgorithm::Ed448,
            OID_X448 => KeyAlgorithm::X448,
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
        if let Ok(c) = seq.children()
            && c.len() == 6
        {
            return Self::from_openssl_dsa(&c);
        }
        let alg = ber::encode(&[0x30], &[oid_tlv(OID_RSA), vec![0x05, 0x00]].concat());
        let pkcs8 = Zeroizing::new(ber::encode(
            &[0x30],
            &[vec![0x02, 0x01, 0x00], alg, ber::encode(&[0x04], der)].concat(),
        ));
        Self::from_pkcs8_der(&pkcs8)
    }

    /// Reads OpenSSL's traditional DSA private key (`BEGIN DSA PRIVATE KEY`): version,
    /// p, q, g, y, x; wrapped into PKCS#8.
    pub fn from_dsa_der(der: &[u8]) -> Result<Self, FormatError> {
        let seq = ber::read_single(der).map_err(|e| FormatError::ber("DSA private key", &e))?;
        let c = seq
            .children()
            .map_err(|e| FormatError::ber("DSA private key", &e))?;
        Self::from_openssl_dsa(&c)
    }

    fn from_openssl_dsa(c: &[Tlv<'_>]) -> Result<Self, FormatError> {
        let [version, p, q, g, _, x] = c else {
            return Err(FormatError::damaged("DSA private key", "not six integers"));
        };
        if c.iter().any(|t| t.tag_byte() != 0x02) || version.content != [0] {
            return Err(FormatError::damaged(
                "DSA private key",
                "not a DSA private key",
            ));
        }
        let params = ber::encode(&[0x30], &[p.raw, q.raw, g.raw].concat());
        let alg = ber::encode(&[0x30], &[oid_tlv(OID_DSA), params].concat());
        let pkcs8 = Zeroizing::new(ber::encode(
            &[0x30],
            &[vec![0x02, 0x01, 0x00], alg, ber::encode(&[0x04], x.raw)].concat(),
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
    /// RSAPublicKey DER for RSA, the uncompressed point for EC, 32 bytes for Ed25519
    /// and X25519, 57 for Ed448, 56 for X448.
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
            KeyAlgorithm::EcP256
            | KeyAlgorithm::EcP384
            | KeyAlgorithm::EcP521
            | KeyAlgorithm::EcSecp256k1 => {
                let alg = match self.algorithm {
                    KeyAlgorithm::EcP256 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                    KeyAlgorithm::EcP384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                    KeyAlgorithm::EcSecp256k1 => &signature::ECDSA_P256K1_SHA256_ASN1_SIGNING,
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
            KeyAlgorithm::Dsa => {
                let info = parse_pkcs8(&self.pkcs8)?;
                dsa_public_key(&info).ok_or_else(|| bad("invalid DSA key"))
            }
            KeyAlgorithm::X25519 => {
                let info = parse_pkcs8(&self.pkcs8)?;
                let secret = curve_secret(&info).ok_or_else(|| bad("invalid X25519 key"))?;
                let key = aws_lc_rs::agreement::PrivateKey::from_private_key(
                    &aws_lc_rs::agreement::X25519,
                    secret,
                )
                .map_err(|_| bad("invalid X25519 key"))?;
                let public = key
                    .compute_public_key()
                    .map_err(|_| bad("invalid X25519 key"))?;
                Ok(public.as_ref().to_vec())
            }
            KeyAlgorithm::Ed448 => {
                // RFC 8032: the public key is the encoded point of the clamped scalar
                // of SHAKE256(secret) times the base point; the crate's SigningKey
                // zeroizes the 57 secret bytes and their expansion when dropped.
                let info = parse_pkcs8(&self.pkcs8)?;
                let key = curve_secret(&info)
                    .and_then(|s| ed448_goldilocks::SigningKey::try_from(s).ok())
                    .ok_or_else(|| bad("invalid Ed448 key (its secret is not 57 bytes)"))?;
                Ok(key.verifying_key().to_bytes().to_vec())
            }
            KeyAlgorithm::X448 => {
                // RFC 7748: the clamped secret times the base point u = 5.
                let info = parse_pkcs8(&self.pkcs8)?;
                let mut bytes = Zeroizing::new([0u8; 56]);
                let secret = curve_secret(&info)
                    .filter(|s| s.len() == bytes.len())
                    .ok_or_else(|| bad("invalid X448 key (its secret is not 56 bytes)"))?;
                bytes.copy_from_slice(secret);
                let key = x448::StaticSecret::from(*bytes);
                Ok(x448::PublicKey::from(&key).as_bytes().to_vec())
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

/// The secret of an X25519, X448 or Ed448 key: RFC 8410's CurvePrivateKey, an OCTET
/// STRING inside the PKCS#8 privateKey OCTET STRING.
fn curve_secret(info: &Pkcs8Info) -> Option<&[u8]> {
    ber::read_single(&info.key)
        .ok()
        .filter(|t| t.tag_byte() == 0x04)
        .map(|t| t.content)
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
    /// The algorithm's parameters (DER), if any: DSA's p, q, g.
    params: Vec<u8>,
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
        params: alg_parts.get(1).map(|p| p.raw.to_vec()).unwrap_or_default(),
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

/// The DSA public key y = g^x mod p as a certificate holds it (a DER INTEGER), checked:
/// p odd and at most 8192 bits, q at most 512 bits, 1 < g < p, 0 < x < q.
fn dsa_public_key(info: &Pkcs8Info) -> Option<Vec<u8>> {
    let params = ber::read_single(&info.params).ok()?.children().ok()?;
    let [p, q, g] = params.as_slice() else {
        return None;
    };
    let x = ber::read_single(&info.key).ok()?;
    if [p, q, g, &x].iter().any(|t| t.tag_byte() != 0x02) {
        return None;
    }
    let (p, q, g) = (
        strip_zeros(p.content),
        strip_zeros(q.content),
        strip_zeros(g.content),
    );
    let x = strip_zeros(x.content);
    let below = |a: &[u8], b: &[u8]| a.len() < b.len() || (a.len() == b.len() && a < b);
    if p.len() > 1024
        || q.len() > 64
        || p.last().is_none_or(|b| b & 1 == 0)
        || x.is_empty()
        || !below(x, q)
        || g.is_empty()
        || g == [1]
        || !below(g, p)
    {
        return None;
    }
    let y = montgomery::pow_mod(g, x, p)?;
    Some(der_uint(strip_zeros(&y)))
}

/// Modular exponentiation for DSA's public key, written here because the secret
/// exponent must stay in memory that is zeroized (no maintained big-integer crate in
/// the tree offers that). Montgomery multiplication (CIOS) on 64-bit limbs.
mod montgomery {
    use zeroize::Zeroizing;

    type Limbs = Zeroizing<Vec<u64>>;

    /// base^exp mod m (big-endian bytes in and out); m odd, base < m.
    pub fn pow_mod(base: &[u8], exp: &[u8], m: &[u8]) -> Option<Vec<u8>> {
        let n = m.len().div_ceil(8);
        let m = limbs(m, n);
        let m0inv = neg_inverse(m[0])?;
        let r = r_mod(&m, 1);
        let r2 = r_mod(&m, 2);
        let mut t: Limbs = Zeroizing::new(vec![0; n + 2]);
        let mut g_m: Limbs = Zeroizing::new(vec![0; n]);
        mul(&limbs(base, n), &r2, &m, m0inv, &mut g_m, &mut t);
        let mut acc = r;
        let mut tmp: Limbs = Zeroizing::new(vec![0; n]);
        for byte in exp {
            for bit in (0..8).rev() {
                mul(&acc, &acc, &m, m0inv, &mut tmp, &mut t);
                acc.copy_from_slice(&tmp);
                if (byte >> bit) & 1 == 1 {
                    mul(&acc, &g_m, &m, m0inv, &mut tmp, &mut t);
                    acc.copy_from_slice(&tmp);
                }
            }
        }
        let mut one: Limbs = Zeroizing::new(vec![0; n]);
        one[0] = 1;
        mul(&acc, &one, &m, m0inv, &mut tmp, &mut t);
        Some(tmp.iter().rev().flat_map(|l| l.to_be_bytes()).collect())
    }

    fn limbs(be: &[u8], n: usize) -> Limbs {
        let mut out = Zeroizing::new(vec![0u64; n]);
        for (i, b) in be.iter().rev().enumerate() {
            out[i / 8] |= u64::from(*b) << (8 * (i % 8));
        }
        out
    }

    /// -m0^-1 mod 2^64 (Newton's iteration); None for an even modulus.
    fn neg_inverse(m0: u64) -> Option<u64> {
        if m0 & 1 == 0 {
            return None;
        }
        let mut inv: u64 = 1;
        for _ in 0..6 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(m0.wrapping_mul(inv)));
        }
        Some(inv.wrapping_neg())
    }

    /// R^k mod m for R = 2^(64n), by doubling.
    fn r_mod(m: &[u64], k: usize) -> Limbs {
        let n = m.len();
        let mut r: Limbs = Zeroizing::new(vec![0; n]);
        r[0] = 1;
        for _ in 0..64 * n * k {
            let mut carry = 0;
            for limb in r.iter_mut() {
                let next = *limb >> 63;
                *limb = (*limb << 1) | carry;
                carry = next;
            }
            if carry == 1 || !less(&r, m) {
                sub(&mut r, m);
            }
        }
        r
    }

    fn less(a: &[u64], b: &[u64]) -> bool {
        for (x, y) in a.iter().rev().zip(b.iter().rev()) {
            if x != y {
                return x < y;
            }
        }
        false
    }

    /// a -= b, modulo 2^(64n).
    fn sub(a: &mut [u64], b: &[u64]) {
        let mut borrow = false;
        for (x, y) in a.iter_mut().zip(b) {
            let (d, b1) = x.overflowing_sub(*y);
            let (d, b2) = d.overflowing_sub(u64::from(borrow));
            *x = d;
            borrow = b1 || b2;
        }
    }

    /// out = a * b / R mod m.
    fn mul(a: &[u64], b: &[u64], m: &[u64], m0inv: u64, out: &mut [u64], t: &mut [u64]) {
        let n = m.len();
        t.fill(0);
        for &ai in a {
            let mut c: u128 = 0;
            for j in 0..n {
                let s = u128::from(t[j]) + u128::from(ai) * u128::from(b[j]) + c;
                t[j] = s as u64;
                c = s >> 64;
            }
            let s = u128::from(t[n]) + c;
            t[n] = s as u64;
            t[n + 1] = (s >> 64) as u64;
            let q = t[0].wrapping_mul(m0inv);
            let mut c = (u128::from(t[0]) + u128::from(q) * u128::from(m[0])) >> 64;
            for j in 1..n {
                let s = u128::from(t[j]) + u128::from(q) * u128::from(m[j]) + c;
                t[j - 1] = s as u64;
                c = s >> 64;
            }
            let s = u128::from(t[n]) + c;
            t[n - 1] = s as u64;
            t[n] = t[n + 1] + (s >> 64) as u64;
            t[n + 1] = 0;
        }
        if t[n] != 0 || !less(&t[..n], m) {
            sub(&mut t[..n], m);
        }
        out.copy_from_slice(&t[..n]);
    }

    #[cfg(test)]
    mod tests {
        use super::pow_mod;

        #[test]
        fn small_and_multi_limb_powers_are_right() {
            // 4^13 mod 497 = 445
            assert_eq!(
                pow_mod(&[4], &[13], &[1, 0xf1]).unwrap(),
                [0, 0, 0, 0, 0, 0, 1, 0xbd]
            );
            // Fermat: a^(p-1) = 1 mod p for the prime p = 2^127 - 1 (two limbs).
            let p: Vec<u8> = std::iter::once(0x7f).chain([0xff; 15]).collect();
            let mut p_minus_1 = p.clone();
            p_minus_1[15] = 0xfe;
            for a in [
                &[3u8][..],
                &[0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x11],
            ] {
                let r = pow_mod(a, &p_minus_1, &p).unwrap();
                assert_eq!(r.iter().rposition(|b| *b != 0), Some(15), "{a:?}");
                assert_eq!(r[15], 1);
                assert!(r[..15].iter().all(|b| *b == 0));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PKCS#8 v1 PrivateKeyInfo for an RFC 8410 key: the secret as an OCTET STRING
    /// inside the privateKey OCTET STRING.
    fn rfc8410_pkcs8(oid: &str, secret: &[u8]) -> Vec<u8> {
        let alg = ber::encode(&[0x30], &oid_tlv(oid));
        let key = ber::encode(&[0x04], &ber::encode(&[0x04], secret));
        ber::encode(&[0x30], &[vec![0x02, 0x01, 0x00], alg, key].concat())
    }

    #[test]
    fn ed448_and_x448_public_keys_are_those_of_the_rfcs() {
        // RFC 8032 section 7.4, "1 octet"; RFC 7748 section 6.2, Alice.
        let cases = [
            (
                OID_ED448,
                "c4eab05d357007c632f3dbb48489924d552b08fe0c353a0d4a1f00acda2c463a\
                 fbea67c5e8d2877c5e3bc397a659949ef8021e954e0a12274e",
                "43ba28f430cdff456ae531545f7ecd0ac834a55d9358c0372bfa0c6c6798c086\
                 6aea01eb00742802b8438ea4cb82169c235160627b4c3a9480",
                KeyAlgorithm::Ed448,
            ),
            (
                OID_X448,
                "9a8f4925d1519f5775cf46b04b5800d4ee9ee8bae8bc5565d498c28dd9c9baf5\
                 74a9419744897391006382a6f127ab1d9ac2d8c0a598726b",
                "9b08f7cc31b7e3e67d22d5aea121074a273bd2b83de09c63faa73d2c22c5d9bb\
                 c836647241d953d40c5b12da88120d53177f80e532c41fa0",
                KeyAlgorithm::X448,
            ),
        ];
        for (oid, secret, public, algorithm) in cases {
            let der = rfc8410_pkcs8(oid, &hex::decode(secret).unwrap());
            let key = PrivateKey::from_pkcs8_der(&der).unwrap();
            assert_eq!(key.algorithm(), algorithm);
            assert_eq!(hex::encode(key.public_key_bits().unwrap()), public, "{oid}");
            assert!(key.algorithm().tls_refusal().is_some(), "{oid}");
        }
    }

    #[test]
    fn ed448_and_x448_secrets_of_the_wrong_length_are_damaged_keys() {
        for (oid, len, what) in [
            (OID_ED448, 56, "invalid Ed448 key"),
            (OID_ED448, 32, "invalid Ed448 key"),
            (OID_X448, 57, "invalid X448 key"),
            (OID_X448, 0, "invalid X448 key"),
        ] {
            let der = rfc8410_pkcs8(oid, &vec![7; len]);
            let err = PrivateKey::from_pkcs8_der(&der).unwrap_err();
            assert!(
                matches!(err, FormatError::Damaged { .. }) && err.to_string().contains(what),
                "{oid} {len}: {err}"
            );
        }
    }
}
