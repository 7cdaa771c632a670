#![no_main]
//! read_file without a password: what is read re-parses.

libfuzzer_sys::fuzz_target!(|data: &[u8]| certkeeper_core::fuzz::read_file(data));
