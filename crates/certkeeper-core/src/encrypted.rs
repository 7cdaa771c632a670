//! Password-based decryption of private keys and PKCS#12 contents.
//!
//! PBES2 (PKCS#5 v2: PBKDF2 or scrypt with AES, 3DES or DES) goes through the `pkcs5`
//! crate. The rest is written here because no maintained crate decrypts it, and
//! administrators still meet every one of these:
//! - PKCS#12 PBE (RFC 7292 appendix C: SHA-1 with 3DES, 2-key 3DES, RC2, RC4), which
//!   `openssl pkcs8 -v1 PBE-SHA1-3DES`, Windows and Java write, also inside PKCS#8;
//! - PKCS#5 v1.5 PBES1 (MD5 or SHA-1 with DES or RC2), from old OpenSSL defaults;
//! - OpenSSL's traditional `Proc-Type: 4,ENCRYPTED` PEM (`openssl genrsa -aes256`).

use cbc::cipher::{
    BlockModeDecrypt, InnerIvInit, KeyInit, KeyIvInit, StreamCipher, block_padding::Pkcs7,
};
use md5::Md5;
use sha1::{Digest, Sha1};
use zeroize::Zeroizing;

use crate::ber;
use crate::error::FormatError;
use crate::key::{PrivateKey, oid_string};

/// Iteration counts above this are refused: real files use at most a few hundred
/// thousand, and a hostile file must not make certkeeper spin for minutes.
pub const MAX_ITERATIONS: u64 = 10_000_000;
/// scrypt memory above this (128 * N * r bytes) is refused.
const MAX_SCRYPT_MEMORY: u64 = 1 << 30;

/// The password in the two encodings PKCS#12 knows: the string's bytes (for PBES2),
/// and a BMPString with two terminating zero bytes (for the PKCS#12 KDF). The
/// zero-length "null" password that .NET and macOS use has an empty BMP encoding.
#[derive(Clone)]
pub struct PasswordBytes {
    /// UTF-8 bytes, for PBES2.
    pub utf8: Zeroizing<Vec<u8>>,
    /// BMPString + 00 00, or empty for the null password.
    pub bmp: Zeroizing<Vec<u8>>,
}

impl PasswordBytes {
    /// The password as users type it.
    pub fn new(password: &str) -> Self {
        let mut bmp = Zeroizing::new(Vec::with_capacity(password.len() * 2 + 2));
        for unit in password.encode_utf16() {
            bmp.extend_from_slice(&unit.to_be_bytes());
        }
        bmp.extend_from_slice(&[0, 0]);
        PasswordBytes {
            utf8: Zeroizing::new(password.as_bytes().to_vec()),
            bmp,
        }
    }

    /// The zero-length password (no terminator).
    pub fn null() -> Self {
        PasswordBytes {
            utf8: Zeroizing::new(Vec::new()),
            bmp: Zeroizing::new(Vec::new()),
        }
    }
}

/// Outcome of a decryption that did not work.
#[derive(Debug, PartialEq, Eq)]
pub enum DecryptError {
    /// Padding or structure after decryption is wrong: the password (almost surely).
    WrongPassword,
    /// The algorithm is not one certkeeper decrypts.
    Unsupported(String),
    /// The parameters are malformed or out of bounds.
    BadParameters(String),
}

impl DecryptError {
    /// As a [`FormatError`] about `what`.
    pub fn into_format(self, what: &str) -> FormatError {
        match self {
            DecryptError::WrongPassword => FormatError::WrongPassword,
            DecryptError::Unsupported(alg) => FormatError::Unsupported {
                what: format!("{alg} encryption"),
            },
            DecryptError::BadParameters(detail) => FormatError::damaged(what, detail),
        }
    }
}

/// Decrypts `data` with the algorithm identifier `alg_der` (a DER AlgorithmIdentifier).
pub fn decrypt(
    alg_der: &[u8],
    data: &[u8],
    password: &PasswordBytes,
) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
    let alg = ber::read_single(alg_der)
        .and_then(|t| t.children())
        .map_err(|e| DecryptError::BadParameters(e.to_string()))?;
    let oid = alg
        .first()
        .and_then(oid_string)
        .ok_or_else(|| DecryptError::BadParameters("no algorithm OID".into()))?;
    let params = alg.get(1);
    match oid.as_str() {
        "1.2.840.113549.1.5.13" => pbes2(alg_der, data, password),
        "1.2.840.113549.1.12.1.1" => pkcs12_pbe(Cipher::Rc4(16), params, data, password),
        "1.2.840.113549.1.12.1.2" => pkcs12_pbe(Cipher::Rc4(5), params, data, password),
        "1.2.840.113549.1.12.1.3" => pkcs12_pbe(Cipher::TripleDes, params, data, password),
        "1.2.840.113549.1.12.1.4" => pkcs12_pbe(Cipher::TwoKeyTripleDes, params, data, password),
        "1.2.840.113549.1.12.1.5" => pkcs12_pbe(Cipher::Rc2(16), params, data, password),
        "1.2.840.113549.1.12.1.6" => pkcs12_pbe(Cipher::Rc2(5), params, data, password),
        "1.2.840.113549.1.5.3" => pbes1::<Md5>(Cipher::Des, params, data, password),
        "1.2.840.113549.1.5.6" => pbes1::<Md5>(Cipher::Rc2(8), params, data, password),
        "1.2.840.113549.1.5.10" => pbes1::<Sha1>(Cipher::Des, params, data, password),
        "1.2.840.113549.1.5.11" => pbes1::<Sha1>(Cipher::Rc2(8), params, data, password),
        other => Err(DecryptError::Unsupported(format!("algorithm {other}"))),
    }
}

/// Decrypts an EncryptedPrivateKeyInfo (`BEGIN ENCRYPTED PRIVATE KEY`, or a PKCS#12
/// shrouded key bag) into a private key.
pub fn decrypt_pkcs8(epki: &[u8], password: &PasswordBytes) -> Result<PrivateKey, FormatError> {
    let what = "encrypted private key";
    let outer = ber::read_single(epki).map_err(|e| FormatError::ber(what, &e))?;
    let parts = outer.children().map_err(|e| FormatError::ber(what, &e))?;
    let [alg, data] = parts.as_slice() else {
        return Err(FormatError::damaged(what, "not an EncryptedPrivateKeyInfo"));
    };
    if alg.tag_byte() != 0x30 || data.tag_byte() != 0x04 {
        return Err(FormatError::damaged(what, "not an EncryptedPrivateKeyInfo"));
    }
    let plain = decrypt(alg.raw, data.content, password).map_err(|e| e.into_format(what))?;
    // Decrypted with a wrong key, the padding sometimes checks out by chance; the
    // structure then does not parse. That, too, is a wrong password.
    if ber::read_single(&plain).is_err() {
        return Err(FormatError::WrongPassword);
    }
    PrivateKey::from_pkcs8_der(&plain).map_err(|e| match e {
        FormatError::Damaged { .. } => FormatError::WrongPassword,
        other => other,
    })
}

/// Decrypts the body of a traditional OpenSSL PEM key given its `DEK-Info` header
/// (`AES-256-CBC,<hex IV>`).
pub fn decrypt_legacy_pem(
    dek_info: &str,
    body: &[u8],
    password: &[u8],
) -> Result<Zeroizing<Vec<u8>>, FormatError> {
    let what = "encrypted PEM key";
    let (cipher, iv_hex) = dek_info
        .split_once(',')
        .ok_or_else(|| FormatError::damaged(what, "malformed DEK-Info header"))?;
    let iv = hex::decode(iv_hex.trim())
        .map_err(|_| FormatError::damaged(what, "DEK-Info IV is not hex"))?;
    let (cipher, key_len) = match cipher.trim().to_ascii_uppercase().as_str() {
        "AES-128-CBC" => (Cipher::Aes, 16),
        "AES-192-CBC" => (Cipher::Aes, 24),
        "AES-256-CBC" => (Cipher::Aes, 32),
        "DES-EDE3-CBC" => (Cipher::TripleDes, 24),
        "DES-CBC" => (Cipher::Des, 8),
        other => {
            return Err(FormatError::Unsupported {
                what: format!("PEM encryption {other}"),
            });
        }
    };
    if iv.len() != cipher.iv_len() {
        return Err(FormatError::damaged(
            what,
            "DEK-Info IV has the wrong length",
        ));
    }
    // OpenSSL's EVP_BytesToKey with MD5, one round, the IV's first 8 bytes as salt.
    let mut key = Zeroizing::new(Vec::with_capacity(key_len + 16));
    let mut prev: Vec<u8> = Vec::new();
    while key.len() < key_len {
        let mut h = Md5::new();
        h.update(&prev);
        h.update(password);
        h.update(&iv[..8]);
        prev = h.finalize().to_vec();
        key.extend_from_slice(&prev);
    }
    key.truncate(key_len);
    cipher
        .decrypt(&key, &iv, body)
        .map_err(|e| e.into_format(what))
}

#[derive(Clone, Copy)]
enum Cipher {
    Aes,
    Des,
    TripleDes,
    TwoKeyTripleDes,
    /// RC2 with this key length in bytes.
    Rc2(usize),
    /// RC4 with this key length in bytes.
    Rc4(usize),
}

impl Cipher {
    fn key_len(self) -> usize {
        match self {
            Cipher::Aes => 32,
            Cipher::Des => 8,
            Cipher::TripleDes => 24,
            Cipher::TwoKeyTripleDes => 16,
            Cipher::Rc2(n) | Cipher::Rc4(n) => n,
        }
    }

    fn iv_len(self) -> usize {
        match self {
            Cipher::Aes => 16,
            Cipher::Rc4(_) => 0,
            _ => 8,
        }
    }

    fn decrypt(
        self,
        key: &[u8],
        iv: &[u8],
        data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        fn cbc<C>(key: &[u8], iv: &[u8], data: &[u8]) -> Result<Zeroizing<Vec<u8>>, DecryptError>
        where
            C: cbc::cipher::BlockCipherDecrypt + KeyInit,
        {
            let dec = cbc::Decryptor::<C>::new_from_slices(key, iv)
                .map_err(|_| DecryptError::BadParameters("bad key or IV length".into()))?;
            dec.decrypt_padded_vec::<Pkcs7>(data)
                .map(Zeroizing::new)
                .map_err(|_| DecryptError::WrongPassword)
        }
        match self {
            Cipher::Aes => match key.len() {
                16 => cbc::<aes::Aes128>(key, iv, data),
                24 => cbc::<aes::Aes192>(key, iv, data),
                _ => cbc::<aes::Aes256>(key, iv, data),
            },
            Cipher::Des => cbc::<des::Des>(key, iv, data),
            Cipher::TripleDes => cbc::<des::TdesEde3>(key, iv, data),
            Cipher::TwoKeyTripleDes => cbc::<des::TdesEde2>(key, iv, data),
            Cipher::Rc2(_) => {
                let rc2 = rc2::Rc2::new_with_eff_key_len(key, key.len() * 8);
                let dec = cbc::Decryptor::<rc2::Rc2>::inner_iv_slice_init(rc2, iv)
                    .map_err(|_| DecryptError::BadParameters("bad IV length".into()))?;
                dec.decrypt_padded_vec::<Pkcs7>(data)
                    .map(Zeroizing::new)
                    .map_err(|_| DecryptError::WrongPassword)
            }
            Cipher::Rc4(_) => {
                let mut rc4 = rc4::Rc4::new_from_slice(key)
                    .map_err(|_| DecryptError::BadParameters("bad RC4 key length".into()))?;
                let mut out = Zeroizing::new(data.to_vec());
                rc4.apply_keystream(&mut out);
                Ok(out)
            }
        }
    }
}

/// (salt, iterations) from PKCS#12 PBE or PBES1 parameters.
fn salt_and_iterations(params: Option<&ber::Tlv<'_>>) -> Result<(Vec<u8>, u64), DecryptError> {
    let bad = || DecryptError::BadParameters("malformed PBE parameters".into());
    let params = params.ok_or_else(bad)?;
    let parts = params.children().map_err(|_| bad())?;
    let [salt, iter] = parts.as_slice() else {
        return Err(bad());
    };
    if salt.tag_byte() != 0x04 || iter.tag_byte() != 0x02 || iter.content.len() > 8 {
        return Err(bad());
    }
    let iterations = iter
        .content
        .iter()
        .fold(0u64, |a, b| (a << 8) | u64::from(*b));
    if iterations == 0 || iterations > MAX_ITERATIONS {
        return Err(DecryptError::BadParameters(format!(
            "iteration count {iterations} out of bounds"
        )));
    }
    Ok((salt.content.to_vec(), iterations))
}

fn pkcs12_pbe(
    cipher: Cipher,
    params: Option<&ber::Tlv<'_>>,
    data: &[u8],
    password: &PasswordBytes,
) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
    let (salt, iterations) = salt_and_iterations(params)?;
    let rounds =
        i32::try_from(iterations).map_err(|_| DecryptError::BadParameters("iterations".into()))?;
    let key = Zeroizing::new(pkcs12::kdf::derive_key::<Sha1>(
        &password.bmp,
        &salt,
        pkcs12::kdf::Pkcs12KeyType::EncryptionKey,
        rounds,
        cipher.key_len(),
    ));
    let iv = pkcs12::kdf::derive_key::<Sha1>(
        &password.bmp,
        &salt,
        pkcs12::kdf::Pkcs12KeyType::Iv,
        rounds,
        cipher.iv_len().max(1),
    );
    cipher.decrypt(&key, &iv[..cipher.iv_len()], data)
}

fn pbes1<D: Digest>(
    cipher: Cipher,
    params: Option<&ber::Tlv<'_>>,
    data: &[u8],
    password: &PasswordBytes,
) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
    let (salt, iterations) = salt_and_iterations(params)?;
    // PBKDF1: T_1 = H(P || S), T_i = H(T_{i-1}); key = T[..8], IV = T[8..16].
    let mut t = {
        let mut h = D::new();
        h.update(&*password.utf8);
        h.update(&salt);
        Zeroizing::new(h.finalize().to_vec())
    };
    for _ in 1..iterations {
        *t = D::digest(&*t).to_vec();
    }
    cipher.decrypt(&t[..8], &t[8..16], data)
}

fn pbes2(
    alg_der: &[u8],
    data: &[u8],
    password: &PasswordBytes,
) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
    let scheme = pkcs5::EncryptionScheme::try_from(alg_der)
        .map_err(|e| DecryptError::BadParameters(format!("PBES2 parameters: {e}")))?;
    let pkcs5::EncryptionScheme::Pbes2(params) = &scheme else {
        return Err(DecryptError::Unsupported("PBES1".into()));
    };
    match &params.kdf {
        pkcs5::pbes2::Kdf::Pbkdf2(p) if u64::from(p.iteration_count) > MAX_ITERATIONS => {
            return Err(DecryptError::BadParameters(format!(
                "iteration count {} out of bounds",
                p.iteration_count
            )));
        }
        pkcs5::pbes2::Kdf::Scrypt(s)
            if 128u64
                .saturating_mul(s.cost_parameter)
                .saturating_mul(u64::from(s.block_size))
                > MAX_SCRYPT_MEMORY
                || s.parallelization > 16 =>
        {
            return Err(DecryptError::BadParameters(
                "scrypt parameters out of bounds".into(),
            ));
        }
        _ => {}
    }
    params
        .decrypt(&*password.utf8, data)
        .map(Zeroizing::new)
        .map_err(|e| match e {
            pkcs5::Error::DecryptFailed => DecryptError::WrongPassword,
            pkcs5::Error::UnsupportedAlgorithm { oid } => {
                DecryptError::Unsupported(format!("algorithm {oid}"))
            }
            other => DecryptError::BadParameters(other.to_string()),
        })
}
