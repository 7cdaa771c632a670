#![no_main]
//! A partner's ServerHello as the probe of old partners reads it: only whole records, only what was offered.

libfuzzer_sys::fuzz_target!(|data: &[u8]| certkeeper_egress::fuzz::server_hello(data));
