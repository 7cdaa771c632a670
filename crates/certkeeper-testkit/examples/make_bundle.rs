//! Writes a PEM bundle of N client certificates issued by one CA, for benchmarks:
//! `cargo run --release -p certkeeper-testkit --example make_bundle -- N OUT.pem`.

use std::io::Write;

use certkeeper_testkit::{Spec, TestCert};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let out = args.next().unwrap_or_else(|| "bundle.pem".into());
    let ca = TestCert::self_signed(&Spec::ca("Bench CA"));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&out).expect("create output"));
    for i in 0..n {
        let cert = ca.issue(&Spec::client(&format!("bench client {i}")));
        file.write_all(cert.pem().as_bytes()).expect("write");
    }
}
