#![no_main]
//! Encrypted keys (DER EncryptedPrivateKeyInfo or PEM): decrypted keys re-parse, padding is sound.

libfuzzer_sys::fuzz_target!(|data: &[u8]| certkeeper_core::fuzz::encrypted(data));
