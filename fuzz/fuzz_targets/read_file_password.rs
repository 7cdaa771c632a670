#![no_main]
//! read_file with a password (first byte, see certkeeper_core::fuzz::split_password).

libfuzzer_sys::fuzz_target!(|data: &[u8]| certkeeper_core::fuzz::read_file_password(data));
