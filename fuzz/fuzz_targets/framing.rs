#![no_main]
//! HTTP/1.1 body framing: the same scan whatever the pieces, Content-Length bodies take their length.

libfuzzer_sys::fuzz_target!(|data: &[u8]| certkeeper_egress::fuzz::framing(data));
