#![no_main]
//! A partner's CertificateRequest as the OpenSSL path reads its acceptable CAs: strictly, every length exact.

libfuzzer_sys::fuzz_target!(|data: &[u8]| certkeeper_egress::fuzz::cert_request(data));
