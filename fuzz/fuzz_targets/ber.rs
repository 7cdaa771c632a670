#![no_main]
//! BER/DER: re-encoded DER re-parses, is DER and a fixed point.

libfuzzer_sys::fuzz_target!(|data: &[u8]| certkeeper_core::fuzz::ber(data));
