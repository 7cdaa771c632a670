#![no_main]
//! PEM: blocks round-trip through encode and parse.

libfuzzer_sys::fuzz_target!(|data: &[u8]| certkeeper_core::fuzz::pem(data));
