#![no_main]
//! PKCS#12 (first byte: password, see certkeeper_core::fuzz::split_password): what is read re-parses.

libfuzzer_sys::fuzz_target!(|data: &[u8]| certkeeper_core::fuzz::pkcs12(data));
