//! Entry points for the `fleet_etcd` fuzz target (`fuzz/` at the repository root):
//! what a front-end and the administrator's commands read from etcd. The first byte
//! picks the reader; none may panic, and what reads must read back the same.

use crate::etcd::{EnvironmentRecord, NodeRecord, StatusRecord, from_json};
use crate::generation::{Generation, decode_keys, encode_keys};

/// A fixed administrator key (Ed25519 public key bytes): no fuzzed envelope carries its
/// signature, so this checks that nothing reaches the document unsigned.
const ADMIN: [u8; 32] = [7; 32];

/// One input: `data[0] % 5` picks the envelope, the document, a key bundle, or a
/// record; the rest is the bytes.
pub fn fleet_etcd(data: &[u8]) {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => {
            assert!(
                Generation::verify(bytes, &ADMIN, "prod").is_err(),
                "an envelope verified without the administrator's signature"
            );
        }
        1 => {
            // The signed document, as read once its signature verified.
            if let Ok(text) = std::str::from_utf8(bytes)
                && let Ok(generation) = serde_json::from_str::<Generation>(text)
            {
                let again = serde_json::to_string(&generation).unwrap();
                let reread: Generation = serde_json::from_str(&again).unwrap();
                assert_eq!(reread, generation, "a document reads back the same");
            }
        }
        2 => {
            if let Ok(keys) = decode_keys(bytes) {
                let mut sorted: Vec<_> = keys.into_iter().collect();
                sorted.sort_by(|a, b| a.0.cmp(&b.0));
                let again = encode_keys(&sorted);
                assert_eq!(
                    decode_keys(&again).unwrap().len(),
                    sorted.len(),
                    "a bundle reads back the same"
                );
            }
        }
        3 => {
            let _ = from_json::<NodeRecord>("a registration", bytes)
                .map(|r| r.public_key().map(|k| assert_eq!(k.len(), 32)));
            let _ = from_json::<EnvironmentRecord>("the environment", bytes).map(|r| r.admin_key());
        }
        _ => {
            let _ = from_json::<StatusRecord>("a status", bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    /// Replays every committed corpus file, so the corpus keeps passing without
    /// nightly or libFuzzer.
    #[test]
    fn committed_corpus_replays() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/fleet_etcd");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| super::fleet_etcd(&data));
            assert!(outcome.is_ok(), "{} fails", path.display());
            n += 1;
        }
        assert!(n > 0, "{} holds no inputs", dir.display());
    }
}
