//! A generation: one signed document of the desired state, and the private keys sealed
//! to each approved front-end.
//!
//! On etcd, the `generation` key holds an envelope `{"document": TEXT, "signature":
//! BASE64, "sealed": {NODE: BASE64}}`: the signature is over the document's exact
//! bytes, so nothing is re-serialised before it is verified. The document names, for
//! each front-end, the SHA-256 of the bundle sealed to it, so etcd cannot swap bundles
//! either. One key holds it all, so a publish is one put whatever the number of
//! front-ends (etcd allows 128 operations in a transaction). A bundle's plaintext is written by hand ([`encode_keys`]) rather than as
//! JSON so that the key bytes pass through no intermediate strings that outlive it.

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use certkeeper_store::FleetState;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::crypto;
use crate::error::FleetError;

/// The document format this build writes and reads.
pub const FORMAT: u32 = 1;

/// The largest envelope read back (etcd takes at most 1.5 MiB per request anyway).
pub const MAX_ENVELOPE: usize = 2 << 20;

/// A front-end the generation is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// Its node name.
    pub node: String,
    /// Its sealing public key (X25519, base64).
    pub public_key: String,
}

/// The signed document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generation {
    /// [`FORMAT`].
    pub format: u32,
    /// The environment.
    pub env: String,
    /// Its number: one more than the one it replaces.
    pub generation: u64,
    /// When it was published (Unix seconds).
    pub published_at: i64,
    /// The host it was published from.
    pub publisher: String,
    /// The approved front-ends.
    pub members: Vec<Member>,
    /// For each member, the SHA-256 (hex) of the keys sealed to it.
    pub bundles: BTreeMap<String, String>,
    /// The desired state.
    pub state: FleetState,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    document: String,
    signature: String,
    sealed: BTreeMap<String, String>,
}

/// A verified generation with the bundles that came with it.
#[derive(Debug)]
pub struct Received {
    /// The document.
    pub generation: Generation,
    /// Each front-end's sealed bundle, as etcd gave it (checked when opened).
    pub sealed: BTreeMap<String, Vec<u8>>,
}

impl Generation {
    /// The envelope etcd stores: the document signed, with the sealed bundles.
    pub fn sign(
        &self,
        admin: &crypto::AdminKey,
        sealed: &BTreeMap<String, Vec<u8>>,
    ) -> Result<Vec<u8>, FleetError> {
        let document = serde_json::to_string(self)
            .map_err(|e| FleetError::Invalid(format!("cannot write the generation: {e}")))?;
        let signature = STANDARD.encode(admin.sign(document.as_bytes()));
        serde_json::to_vec(&Envelope {
            document,
            signature,
            sealed: sealed
                .iter()
                .map(|(node, bundle)| (node.clone(), STANDARD.encode(bundle)))
                .collect(),
        })
        .map_err(|e| FleetError::Invalid(format!("cannot write the generation: {e}")))
    }

    /// Reads an envelope: the administrator's signature first, then the document,
    /// which must be of this environment.
    pub fn verify(envelope: &[u8], admin_public: &[u8], env: &str) -> Result<Received, FleetError> {
        let bad = |why: &str| {
            FleetError::Tampered(format!(
                "the generation of environment {env} on etcd {why}: it was not published by \
                 this environment's administrator, or was altered; nothing was applied"
            ))
        };
        if envelope.len() > MAX_ENVELOPE {
            return Err(bad("is larger than any publish writes"));
        }
        let envelope: Envelope =
            serde_json::from_slice(envelope).map_err(|_| bad("is not a signed generation"))?;
        let signature = STANDARD
            .decode(&envelope.signature)
            .map_err(|_| bad("has a damaged signature"))?;
        if !crypto::verify(admin_public, envelope.document.as_bytes(), &signature) {
            return Err(bad("does not carry the administrator's signature"));
        }
        let generation: Generation = serde_json::from_str(&envelope.document)
            .map_err(|e| bad(&format!("is signed but unreadable ({e})")))?;
        if generation.format != FORMAT {
            return Err(FleetError::Invalid(format!(
                "the generation on etcd is in format {}; this certkeeper reads format {FORMAT}: \
                 upgrade it",
                generation.format
            )));
        }
        if generation.env != env {
            return Err(FleetError::Foreign(format!(
                "the generation under environment {env} names environment {}",
                generation.env
            )));
        }
        let mut sealed = BTreeMap::new();
        for (node, bundle) in envelope.sealed {
            let bundle = STANDARD
                .decode(bundle)
                .map_err(|_| bad("carries a damaged key bundle"))?;
            sealed.insert(node, bundle);
        }
        Ok(Received { generation, sealed })
    }

    /// The member entry of `node`, if approved.
    pub fn member(&self, node: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.node == node)
    }

    /// Opens the keys sealed to `node`, after checking them against the document.
    pub fn open_keys(
        &self,
        node: &str,
        node_private: &[u8],
        sealed: Option<&[u8]>,
    ) -> Result<HashMap<String, Zeroizing<Vec<u8>>>, FleetError> {
        let Some(expected) = self.bundles.get(node) else {
            return Ok(HashMap::new());
        };
        let sealed = sealed.ok_or_else(|| {
            FleetError::Tampered(format!(
                "generation {} seals keys to {node}, but etcd holds none of them",
                self.generation
            ))
        })?;
        if &crypto::sha256_hex(sealed) != expected {
            return Err(FleetError::Tampered(format!(
                "the keys sealed to {node} on etcd are not the ones generation {} names",
                self.generation
            )));
        }
        let plain = crypto::open(node_private, &self.env, node, self.generation, sealed)?;
        decode_keys(&plain)
    }
}

/// A bundle's plaintext: for each key, u16 length + thumbprint, u32 length + PKCS#8.
pub fn encode_keys(keys: &[(String, Zeroizing<Vec<u8>>)]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::new());
    for (thumbprint, pkcs8) in keys {
        out.extend_from_slice(&(thumbprint.len() as u16).to_be_bytes());
        out.extend_from_slice(thumbprint.as_bytes());
        out.extend_from_slice(&(pkcs8.len() as u32).to_be_bytes());
        out.extend_from_slice(pkcs8);
    }
    out
}

/// Reads what [`encode_keys`] wrote, strictly.
pub fn decode_keys(mut bytes: &[u8]) -> Result<HashMap<String, Zeroizing<Vec<u8>>>, FleetError> {
    let bad = || FleetError::Tampered("a sealed key bundle is malformed".into());
    let mut out = HashMap::new();
    while !bytes.is_empty() {
        let (len, rest) = bytes.split_first_chunk::<2>().ok_or_else(bad)?;
        let len = u16::from_be_bytes(*len) as usize;
        if rest.len() < len {
            return Err(bad());
        }
        let (thumbprint, rest) = rest.split_at(len);
        let thumbprint = std::str::from_utf8(thumbprint).map_err(|_| bad())?;
        if thumbprint.len() != 64 || !thumbprint.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(bad)?;
        let len = u32::from_be_bytes(*len) as usize;
        if rest.len() < len {
            return Err(bad());
        }
        let (pkcs8, rest) = rest.split_at(len);
        if out
            .insert(thumbprint.to_string(), Zeroizing::new(pkcs8.to_vec()))
            .is_some()
        {
            return Err(bad());
        }
        bytes = rest;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generation() -> Generation {
        Generation {
            format: FORMAT,
            env: "prod".into(),
            generation: 3,
            published_at: 1,
            publisher: "admin".into(),
            members: vec![],
            bundles: BTreeMap::new(),
            state: FleetState::default(),
        }
    }

    #[test]
    fn only_the_administrators_unaltered_document_of_this_environment_verifies() {
        let (_, admin) = crypto::AdminKey::generate().unwrap();
        let sealed = BTreeMap::from([("fe1".to_string(), vec![1, 2, 3])]);
        let envelope = generation().sign(&admin, &sealed).unwrap();
        let read = Generation::verify(&envelope, &admin.public(), "prod").unwrap();
        assert_eq!(read.generation, generation());
        assert_eq!(read.sealed, sealed);
        // Another environment's name.
        assert!(matches!(
            Generation::verify(&envelope, &admin.public(), "test"),
            Err(FleetError::Foreign(_))
        ));
        // One byte changed in the document.
        let text = String::from_utf8(envelope).unwrap();
        let altered = text.replace("\\\"generation\\\":3", "\\\"generation\\\":4");
        assert_ne!(altered, text);
        assert!(matches!(
            Generation::verify(altered.as_bytes(), &admin.public(), "prod"),
            Err(FleetError::Tampered(_))
        ));
        // Another key.
        let (_, other) = crypto::AdminKey::generate().unwrap();
        let forged = generation().sign(&other, &sealed).unwrap();
        assert!(matches!(
            Generation::verify(&forged, &admin.public(), "prod"),
            Err(FleetError::Tampered(_))
        ));
        assert!(Generation::verify(b"{}", &admin.public(), "prod").is_err());
    }

    #[test]
    fn key_bundles_round_trip_and_reject_damage() {
        let keys = vec![
            ("a".repeat(64), Zeroizing::new(vec![1, 2, 3])),
            ("b".repeat(64), Zeroizing::new(vec![4; 300])),
        ];
        let encoded = encode_keys(&keys);
        let decoded = decode_keys(&encoded).unwrap();
        assert_eq!(decoded.len(), 2);
        assert_eq!(&**decoded.get(&"b".repeat(64)).unwrap(), &vec![4; 300]);
        for cut in 1..encoded.len() {
            let _ = decode_keys(&encoded[..cut]);
        }
        assert!(decode_keys(&encoded[..encoded.len() - 1]).is_err());
        let mut twice = encoded.to_vec();
        twice.extend_from_slice(&encoded[..2 + 64 + 4 + 3]);
        assert!(decode_keys(&twice).is_err());
    }
}
