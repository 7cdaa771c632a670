#![no_main]
//! What the fleet reads from etcd: a generation's envelope (never accepted unsigned), the signed document, a sealed bundle's plaintext, the records.

libfuzzer_sys::fuzz_target!(|data: &[u8]| certkeeper_fleet::fuzz::fleet_etcd(data));
