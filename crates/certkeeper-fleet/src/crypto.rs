//! The fleet's two kinds of keys.
//!
//! - The administrator signs every generation with an Ed25519 key (aws-lc-rs, the
//!   provider the rest of certkeeper uses); front-ends pin its public key when they
//!   join and apply only what it signed. etcd can withhold a generation, never forge or
//!   alter one.
//! - Each front-end has an X25519 key pair; the private keys a generation carries are
//!   sealed to each approved front-end's public key with HPKE (RFC 9180, base mode,
//!   DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305), one sealed bundle per
//!   front-end. HPKE rather than age: it is a published standard with test vectors, one
//!   small crate, and its `info` binds each bundle to the environment, the front-end and
//!   the generation, so a bundle cannot be replayed into another place or time; age's
//!   multi-recipient files would save one copy of each key per front-end, which does
//!   not matter at fleet sizes (a key is a few hundred bytes) and would tie a removed
//!   front-end's fate to a shared file key.

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use zeroize::Zeroizing;

use crate::error::FleetError;

type Kem = X25519HkdfSha256;

/// What an administrator's signature covers, before the document.
const SIGNING_CONTEXT: &[u8] = b"certkeeper fleet generation v1\0";

/// The administrator's signing key.
pub struct AdminKey {
    pair: Ed25519KeyPair,
}

impl AdminKey {
    /// A new key: its PKCS#8 form (to seal in the home) and the key.
    pub fn generate() -> Result<(Zeroizing<Vec<u8>>, AdminKey), FleetError> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| FleetError::Crypto("cannot make an Ed25519 key".into()))?;
        let pkcs8 = Zeroizing::new(pkcs8.as_ref().to_vec());
        let key = AdminKey::from_pkcs8(&pkcs8)?;
        Ok((pkcs8, key))
    }

    /// The key from its PKCS#8 form.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<AdminKey, FleetError> {
        Ed25519KeyPair::from_pkcs8(pkcs8)
            .map(|pair| AdminKey { pair })
            .map_err(|_| FleetError::Crypto("the stored administrator key is damaged".into()))
    }

    /// The raw public key.
    pub fn public(&self) -> Vec<u8> {
        self.pair.public_key().as_ref().to_vec()
    }

    /// Signs a generation document.
    pub fn sign(&self, document: &[u8]) -> Vec<u8> {
        let mut message = SIGNING_CONTEXT.to_vec();
        message.extend_from_slice(document);
        self.pair.sign(&message).as_ref().to_vec()
    }
}

/// Whether `signature` is the administrator's over `document`.
pub fn verify(admin_public: &[u8], document: &[u8], signature: &[u8]) -> bool {
    let mut message = SIGNING_CONTEXT.to_vec();
    message.extend_from_slice(document);
    UnparsedPublicKey::new(&ED25519, admin_public)
        .verify(&message, signature)
        .is_ok()
}

/// A new front-end sealing key pair: (private, public), raw 32 bytes each.
pub fn node_keypair() -> (Zeroizing<Vec<u8>>, Vec<u8>) {
    let (private, public) = Kem::gen_keypair();
    (
        Zeroizing::new(private.to_bytes().to_vec()),
        public.to_bytes().to_vec(),
    )
}

/// The public key of a front-end's private sealing key.
pub fn node_public(private: &[u8]) -> Result<Vec<u8>, FleetError> {
    let private = <Kem as hpke::Kem>::PrivateKey::from_bytes(private)
        .map_err(|_| FleetError::Crypto("the stored front-end key is damaged".into()))?;
    Ok(Kem::sk_to_pk(&private).to_bytes().to_vec())
}

/// The HPKE `info` of a bundle: where and when it may be opened.
fn info(env: &str, node: &str, generation: u64) -> Vec<u8> {
    format!("certkeeper fleet keys v1\0{env}\0{node}\0{generation}").into_bytes()
}

/// Seals `plain` to a front-end: the encapsulated key (32 bytes), then the ciphertext.
pub fn seal(
    public: &[u8],
    env: &str,
    node: &str,
    generation: u64,
    plain: &[u8],
) -> Result<Vec<u8>, FleetError> {
    let public = <Kem as hpke::Kem>::PublicKey::from_bytes(public).map_err(|_| {
        FleetError::Crypto(format!("the public key of {node} is not an X25519 key"))
    })?;
    let (encapped, ciphertext) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeS::Base,
        &public,
        &info(env, node, generation),
        plain,
        b"",
    )
    .map_err(|e| FleetError::Crypto(format!("sealing to {node}: {e}")))?;
    let mut out = encapped.to_bytes().to_vec();
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// Opens what [`seal`] made for this front-end.
pub fn open(
    private: &[u8],
    env: &str,
    node: &str,
    generation: u64,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, FleetError> {
    let fail = || {
        FleetError::Tampered(format!(
            "the keys sealed to {node} for generation {generation} do not open with its key"
        ))
    };
    let private = <Kem as hpke::Kem>::PrivateKey::from_bytes(private)
        .map_err(|_| FleetError::Crypto("the stored front-end key is damaged".into()))?;
    if sealed.len() < 32 {
        return Err(fail());
    }
    let (encapped, ciphertext) = sealed.split_at(32);
    let encapped = <Kem as hpke::Kem>::EncappedKey::from_bytes(encapped).map_err(|_| fail())?;
    hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeR::Base,
        &private,
        &encapped,
        &info(env, node, generation),
        ciphertext,
        b"",
    )
    .map(Zeroizing::new)
    .map_err(|_| fail())
}

/// SHA-256, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, bytes))
}

/// A public key's fingerprint as people compare it: the first 128 bits of its SHA-256
/// in eight groups of four hex digits.
pub fn fingerprint(public: &[u8]) -> String {
    let hex = sha256_hex(public);
    hex.as_bytes()[..32]
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("-")
}

/// Whether a typed fingerprint is `fingerprint(public)`: separators and case do not
/// matter, and the whole SHA-256 may be given too.
pub fn fingerprint_matches(typed: &str, public: &[u8]) -> bool {
    let typed: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ':' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    let full = sha256_hex(public);
    typed.len() >= 32 && full.starts_with(&typed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_opens_only_for_its_front_end_environment_and_generation() {
        let (private, public) = node_keypair();
        let (other, _) = node_keypair();
        let sealed = seal(&public, "prod", "fe1", 7, b"keys").unwrap();
        assert_eq!(
            &*open(&private, "prod", "fe1", 7, &sealed).unwrap(),
            b"keys"
        );
        assert!(open(&other, "prod", "fe1", 7, &sealed).is_err());
        assert!(open(&private, "prod", "fe2", 7, &sealed).is_err());
        assert!(open(&private, "test", "fe1", 7, &sealed).is_err());
        assert!(open(&private, "prod", "fe1", 8, &sealed).is_err());
        let mut flipped = sealed;
        *flipped.last_mut().unwrap() ^= 1;
        assert!(open(&private, "prod", "fe1", 7, &flipped).is_err());
        assert_eq!(node_public(&private).unwrap(), public);
    }

    #[test]
    fn a_signature_covers_every_byte_of_the_document() {
        let (pkcs8, key) = AdminKey::generate().unwrap();
        let again = AdminKey::from_pkcs8(&pkcs8).unwrap();
        assert_eq!(key.public(), again.public());
        let sig = key.sign(b"{\"generation\":1}");
        assert!(verify(&key.public(), b"{\"generation\":1}", &sig));
        assert!(!verify(&key.public(), b"{\"generation\":2}", &sig));
        let (_, other) = AdminKey::generate().unwrap();
        assert!(!verify(&other.public(), b"{\"generation\":1}", &sig));
    }

    #[test]
    fn fingerprints_compare_without_separators_or_case() {
        let (_, public) = node_keypair();
        let fp = fingerprint(&public);
        assert_eq!(fp.len(), 39);
        assert!(fingerprint_matches(&fp, &public));
        assert!(fingerprint_matches(
            &fp.to_uppercase().replace('-', ":"),
            &public
        ));
        assert!(fingerprint_matches(&sha256_hex(&public), &public));
        assert!(!fingerprint_matches(&fp[..20], &public));
        let (_, other) = node_keypair();
        assert!(!fingerprint_matches(&fp, &other));
    }
}
