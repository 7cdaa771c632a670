//! Truncated and bit-flipped variants of every corpus file and of generated files:
//! the reader returns a result or a one-line error, never panics, in bounded time.

use std::time::{Duration, Instant};

use certkeeper_core::{Password, read_file};
use certkeeper_testkit::{files_under, mutations, vectors};

#[test]
fn every_mutation_of_every_file_is_read_or_refused_cleanly() {
    let mut files = Vec::new();
    for sub in ["pkcs12", "pkcs7", "x509", "asymmetric"] {
        files.extend(files_under(&vectors().join(sub)));
    }
    files.retain(|f| {
        std::fs::metadata(f)
            .map(|m| m.len() < 200_000)
            .unwrap_or(false)
    });
    files.sort();
    let mut inputs = 0;
    let mut slowest = Duration::ZERO;
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        // No password, and the file's own (corpus README), so that mutations reach
        // past the MAC into the decrypted contents.
        let name = file.file_name().unwrap().to_string_lossy();
        let own = if name.starts_with("cert-") || name.starts_with("no-cert-key") {
            Some("cryptography")
        } else if name.ends_with("-pwd.p12") && !name.ends_with("no-pwd.p12") {
            Some("password")
        } else if name.contains("enc") {
            Some("foobar")
        } else {
            None
        };
        let passwords: Vec<Option<Password>> = match own {
            Some(p) => vec![None, Some(Password::new(p.into()))],
            None => vec![None],
        };
        for (what, mutated) in mutations(&bytes) {
            for pw in &passwords {
                inputs += 1;
                let start = Instant::now();
                let result = std::panic::catch_unwind(|| read_file(&mutated, pw.as_ref()));
                slowest = slowest.max(start.elapsed());
                match result {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        let msg = e.to_string();
                        assert!(
                            !msg.is_empty() && !msg.contains('\n'),
                            "{}: {what}: {msg:?}",
                            file.display()
                        );
                    }
                    Err(_) => panic!("{}: {what}: panicked", file.display()),
                }
            }
        }
    }
    assert!(inputs > 6_000, "{inputs} inputs");
    eprintln!("{inputs} mutated inputs, slowest {slowest:?}");
}
