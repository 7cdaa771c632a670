//! The master key and sealing of private keys at rest: AES-256-GCM with a random
//! nonce and the entry's thumbprint as associated data, so a sealed key cannot be
//! moved to another entry unnoticed.

use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::error::StoreError;

const MAGIC: &[u8; 4] = b"CKS1";
const KEY_LEN: usize = 32;

/// The home's master key, zeroized on drop.
pub struct MasterKey(Zeroizing<[u8; KEY_LEN]>);

impl MasterKey {
    /// Creates a new random key file at `path` (mode 0600, never overwritten).
    pub fn create(path: &Path) -> Result<(), StoreError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        SystemRandom::new()
            .fill(&mut *key)
            .map_err(|_| StoreError::MasterKey {
                path: path.to_path_buf(),
                detail: "no randomness available".into(),
            })?;
        crate::fs::write_atomic(path, &*key, 0o600)
    }

    /// Loads the key file.
    pub fn load(path: &Path) -> Result<Self, StoreError> {
        let bytes = Zeroizing::new(read_nofollow(path).map_err(|e| StoreError::MasterKey {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?);
        if bytes.len() != KEY_LEN {
            return Err(StoreError::MasterKey {
                path: path.to_path_buf(),
                detail: format!("is {} bytes, not {KEY_LEN}", bytes.len()),
            });
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(&bytes);
        Ok(MasterKey(key))
    }

    fn aead(&self) -> LessSafeKey {
        // KEY_LEN is AES-256's key length, so this cannot fail.
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &*self.0).expect("32-byte AES key"))
    }

    /// Seals `plain` for the entry `thumbprint`.
    pub fn seal(&self, thumbprint: &str, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| StoreError::Invalid("no randomness available".into()))?;
        let mut buf = Zeroizing::new(plain.to_vec());
        self.aead()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(thumbprint.as_bytes()),
                &mut *buf,
            )
            .map_err(|_| StoreError::Invalid("sealing failed".into()))?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + buf.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Opens a sealed key of the entry `thumbprint`.
    pub fn unseal(
        &self,
        thumbprint: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let fail = || StoreError::Unseal {
            thumbprint: thumbprint.to_string(),
        };
        let rest = sealed.strip_prefix(MAGIC.as_slice()).ok_or_else(fail)?;
        if rest.len() < NONCE_LEN {
            return Err(fail());
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| fail())?;
        let mut buf = Zeroizing::new(ct.to_vec());
        let len = self
            .aead()
            .open_in_place(nonce, Aad::from(thumbprint.as_bytes()), &mut buf)
            .map_err(|_| fail())?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

/// Reads a file without following a symbolic link at its last component.
fn read_nofollow(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let mut bytes = Vec::with_capacity(KEY_LEN);
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_for_their_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        MasterKey::create(&path).unwrap();
        let key = MasterKey::load(&path).unwrap();
        let sealed = key.seal("aa", b"secret key bytes").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(&*key.unseal("aa", &sealed).unwrap(), b"secret key bytes");
        assert!(key.unseal("bb", &sealed).is_err());
        let mut tampered = sealed;
        *tampered.last_mut().unwrap() ^= 1;
        assert!(key.unseal("aa", &tampered).is_err());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
