//! Writes a 4-element path for benchmarks into DIR: root.pem, inter.pem (two
//! intermediate CAs), leaf.pem and leaf.key:
//! `cargo run --release -p certkeeper-testkit --example make_path -- DIR`.

use certkeeper_testkit::{Spec, TestCert};

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    let root = TestCert::self_signed(&Spec::ca("Bench Root"));
    let upper = root.issue(&Spec::ca("Bench Policy CA"));
    let lower = upper.issue(&Spec::ca("Bench Issuing CA"));
    let leaf = lower.issue(&Spec::client("bench.example"));
    let write = |name: &str, text: String| std::fs::write(dir.join(name), text).expect("write");
    write("root.pem", root.pem());
    write("inter.pem", format!("{}{}", lower.pem(), upper.pem()));
    write("leaf.pem", leaf.pem());
    write("leaf.key", leaf.key_pem());
}
