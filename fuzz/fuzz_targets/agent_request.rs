#![no_main]
//! The agent's frames and requests: parsed requests round-trip, refusals are bad_request or unsupported_version.

libfuzzer_sys::fuzz_target!(|data: &[u8]| certkeeper_agent::fuzz::agent_request(data));
