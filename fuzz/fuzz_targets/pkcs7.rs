#![no_main]
//! PKCS#7: certificates re-parse and round-trip through a written certs-only PKCS#7.

libfuzzer_sys::fuzz_target!(|data: &[u8]| certkeeper_core::fuzz::pkcs7(data));
