//! `../shared/corpora`: every PKCS#12 and PKCS#7 file OpenSSL reads must be read with
//! the right number of certificates and keys; every certificate must parse or be
//! refused cleanly.

use certkeeper_core::{FormatError, Password, ber, read_file};
use certkeeper_testkit::{files_under as walk, manifest, vectors};

#[test]
fn every_pkcs12_file_openssl_reads_is_read_with_the_right_counts() {
    let rows = manifest("pkcs12-manifest.tsv");
    assert!(rows.len() >= 30, "manifest has {} rows", rows.len());
    let mut failures = Vec::new();
    for row in &rows {
        let (path, password, has_key, cert_count, openssl_ok) =
            (&row[0], &row[1], &row[4], &row[5], &row[6]);
        if openssl_ok != "yes" {
            continue;
        }
        let bytes = std::fs::read(vectors().join(path)).unwrap();
        let pw = (!password.starts_with("(empty")).then(|| Password::new(password.clone()));
        match read_file(&bytes, pw.as_ref()) {
            Ok(c) => {
                let want_keys = usize::from(has_key == "yes");
                let want_certs: usize = cert_count.parse().unwrap();
                if c.keys.len() != want_keys || c.certs.len() != want_certs {
                    failures.push(format!(
                        "{path}: {} keys, {} certs; want {want_keys}, {want_certs}",
                        c.keys.len(),
                        c.certs.len()
                    ));
                }
            }
            Err(e) => failures.push(format!("{path}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn pkcs12_wrong_password_is_told_apart_from_damage() {
    let bytes = std::fs::read(vectors().join("pkcs12/cert-key-aes256cbc.p12")).unwrap();
    let wrong = Password::new("not-it".into());
    assert!(matches!(
        read_file(&bytes, Some(&wrong)),
        Err(FormatError::WrongPassword)
    ));
    assert!(matches!(
        read_file(&bytes, None),
        Err(FormatError::PasswordRequired { .. })
    ));
    let truncated = &bytes[..bytes.len() / 2];
    let right = Password::new("cryptography".into());
    assert!(matches!(
        read_file(truncated, Some(&right)),
        Err(FormatError::Damaged { .. })
    ));
}

#[test]
fn pkcs7_files_give_their_certificates_or_say_they_hold_none() {
    for row in manifest("pkcs7-manifest.tsv") {
        let (path, content_type, count) = (&row[0], &row[2], &row[3]);
        let bytes = std::fs::read(vectors().join(path)).unwrap();
        let want: usize = count.parse().unwrap();
        match read_file(&bytes, None) {
            Ok(c) => assert_eq!(c.certs.len(), want, "{path}"),
            Err(FormatError::Empty { detail }) => {
                assert_eq!(want, 0, "{path}: {detail}");
                assert!(content_type.contains("enveloped"), "{path}: {detail}");
            }
            Err(e) => panic!("{path}: {e}"),
        }
    }
}

#[test]
fn every_corpus_certificate_parses_or_is_refused_cleanly() {
    // Files that are not meant to import, each with the reason certkeeper gives.
    let expected_refusals: &[(&str, &str)] = &[
        ("badasn1time.pem", "invalid date"),
        (
            "cryptography-scts-tbs-precert.der",
            "not a certificate or key file",
        ),
        // A PRIVATE KEY block whose body is a URL, not a key: one file is one
        // transaction, so the whole file is refused, naming the block.
        (
            "cryptography.io.chain_with_garbage.pem",
            "PEM block 3 (PRIVATE KEY)",
        ),
        (
            "cryptography.io.with_garbage.pem",
            "PEM block 1 (PRIVATE KEY)",
        ),
        ("cryptography.io.with_headers.pem", "is encrypted"),
    ];
    let mut parsed = 0;
    for entry in walk(&vectors().join("x509")) {
        let rel = entry
            .strip_prefix(vectors().join("x509"))
            .unwrap()
            .display()
            .to_string();
        let bytes = std::fs::read(&entry).unwrap();
        let not_a_certificate = rel.starts_with("ocsp/") || rel.starts_with("requests/") || {
            let stem = entry.file_stem().unwrap().to_string_lossy();
            stem.starts_with("crl_") || stem.ends_with("_crl")
        };
        match read_file(&bytes, None) {
            Ok(c) => {
                parsed += 1;
                assert!(!not_a_certificate, "{rel} should hold no certificate");
                for found in &c.certs {
                    assert_eq!(found.cert.thumbprint.len(), 64);
                }
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(!msg.contains('\n'), "{rel}: {msg}");
                if not_a_certificate {
                    continue;
                }
                let reason = expected_refusals
                    .iter()
                    .find(|(f, _)| *f == rel)
                    .unwrap_or_else(|| panic!("{rel} was refused: {msg}"))
                    .1;
                assert!(msg.contains(reason), "{rel}: {msg}");
            }
        }
    }
    assert!(parsed >= 125, "only {parsed} parsed");
}

#[test]
fn encrypted_and_plain_keys_in_every_form_decrypt() {
    // (file under asymmetric/, password, expected outcome)
    let cases: &[(&str, &str, Result<usize, &str>)] = &[
        ("PKCS8/enc-rsa-pkcs8.pem", "foobar", Ok(1)), // PBES2 AES
        ("PKCS8/enc-rsa-3des.pem", "password", Ok(1)), // PKCS#12 PBE 3DES
        ("PKCS8/enc-ec-sha1-128-rc4.pem", "password", Ok(1)), // PKCS#12 PBE RC4
        ("PKCS8/ed25519-scrypt.pem", "hunter42", Ok(1)), // PBES2 scrypt
        ("PKCS8/ec_private_key_encrypted.pem", "123456", Ok(1)),
        ("DER_Serialization/enc-rsa-pkcs8.der", "foobar", Ok(1)),
        (
            "DER_Serialization/ec_private_key_encrypted.der",
            "123456",
            Ok(1),
        ),
        ("PEM_Serialization/rsa_private_key.pem", "123456", Ok(1)), // Proc-Type DES3
        (
            "PEM_Serialization/ec_private_key_encrypted.pem",
            "123456",
            Ok(1),
        ), // Proc-Type AES
        ("PEM_Serialization/ec_private_key.pem", "", Ok(1)),
        ("DER_Serialization/testrsa.der", "", Ok(1)), // PKCS#1 DER
        ("DER_Serialization/ec_private_key.der", "", Ok(1)), // SEC1 DER
        ("Traditional_OpenSSL_Serialization/testrsa.pem", "", Ok(1)),
        ("PKCS8/rsa_pss_2048.pem", "", Ok(1)),
        ("PKCS8/enc-rsa-pkcs8.pem", "wrong", Err("wrong password")),
        (
            "PEM_Serialization/rsa_private_key.pem",
            "wrong",
            Err("wrong password"),
        ),
        ("PEM_Serialization/dsa_private_key.pem", "123456", Ok(1)), // Proc-Type DSA
        ("DER_Serialization/dsa.2048.der", "", Ok(1)),              // OpenSSL's DSA DER
        ("Traditional_OpenSSL_Serialization/dsa.3072.pem", "", Ok(1)),
        ("PKCS8/unenc-dsa-pkcs8.pem", "", Ok(1)),
        (
            "Traditional_OpenSSL_Serialization/dsa-wrong-version.pem",
            "",
            Err("damaged"),
        ),
        (
            "DER_Serialization/rsa_public_key.der",
            "",
            Err("public key"),
        ),
        (
            "PKCS8/ec-invalid-private-scalar.pem",
            "",
            Err("invalid EC key"),
        ),
        ("PKCS8/enc-unknown-algorithm.pem", "x", Err("damaged")),
    ];
    for (file, password, want) in cases {
        let bytes = std::fs::read(vectors().join("asymmetric").join(file)).unwrap();
        let pw = (!password.is_empty()).then(|| Password::new((*password).to_string()));
        match (read_file(&bytes, pw.as_ref()), want) {
            (Ok(c), Ok(n)) => assert_eq!(c.keys.len(), *n, "{file}"),
            (Err(e), Err(text)) => assert!(e.to_string().contains(text), "{file}: {e}"),
            (Ok(_), Err(text)) => panic!("{file}: read, but should fail with {text}"),
            (Err(e), Ok(_)) => panic!("{file}: {e}"),
        }
    }
}

#[test]
fn dsa_keys_match_their_public_keys() {
    // (private key file, its public key file) under asymmetric/, as OpenSSL wrote them.
    let pairs = [
        ("PKCS8/unenc-dsa-pkcs8.pem", "PKCS8/unenc-dsa-pkcs8.pub.pem"),
        (
            "DER_Serialization/unenc-dsa-pkcs8.der",
            "DER_Serialization/unenc-dsa-pkcs8.pub.der",
        ),
        (
            "PEM_Serialization/dsa_private_key.pem",
            "PEM_Serialization/dsa_public_key.pem",
        ),
    ];
    let pw = Password::new("123456".into());
    for (private, public) in pairs {
        let dir = vectors().join("asymmetric");
        let key = read_file(&std::fs::read(dir.join(private)).unwrap(), Some(&pw))
            .unwrap_or_else(|e| panic!("{private}: {e}"))
            .keys
            .remove(0)
            .key;
        assert_eq!(key.algorithm(), certkeeper_core::KeyAlgorithm::Dsa);
        let spki = std::fs::read(dir.join(public)).unwrap();
        let spki = if spki.starts_with(b"-----") {
            certkeeper_core::pem::parse(&spki).unwrap().remove(0).data
        } else {
            spki
        };
        let fields = ber::read_single(&spki).unwrap().children().unwrap();
        let bits = &fields[1].content[1..];
        assert_eq!(
            key.key_id().unwrap(),
            certkeeper_core::key::public_key_id(bits, false),
            "{private}"
        );
    }
}

#[test]
#[ignore = "diagnostic listing"]
fn list_refused_files() {
    for entry in walk(&vectors()) {
        let bytes = std::fs::read(&entry).unwrap();
        if let Err(e) = read_file(&bytes, None) {
            eprintln!("{}: {e}", entry.display());
        }
    }
}

/// Certificates and private keys `openssl pkcs12 -legacy` finds in `path` with
/// `password`, or None when it cannot read the file.
pub fn openssl_reads(path: &std::path::Path, password: &str) -> Option<(usize, usize)> {
    let out = std::process::Command::new("openssl")
        .args(["pkcs12", "-legacy", "-nodes", "-passin"])
        .arg(format!("pass:{password}"))
        .arg("-in")
        .arg(path)
        .output()
        .expect("openssl is needed by the tests");
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Some((
        text.matches("-----BEGIN CERTIFICATE-----").count(),
        text.matches("-----BEGIN PRIVATE KEY-----").count(),
    ))
}

#[test]
fn every_pkcs12_file_openssl_legacy_reads_is_read_alike() {
    // Asks openssl itself, not the manifest: what it reads, certkeeper reads, with
    // the same certificates and keys.
    let mut checked = 0;
    for row in manifest("pkcs12-manifest.tsv") {
        let path = vectors().join(&row[0]);
        let password = if row[1].starts_with("(empty") {
            ""
        } else {
            row[1].as_str()
        };
        let Some((certs, keys)) = openssl_reads(&path, password) else {
            continue;
        };
        checked += 1;
        let pw = (!password.is_empty()).then(|| Password::new(password.into()));
        let c = read_file(&std::fs::read(&path).unwrap(), pw.as_ref())
            .unwrap_or_else(|e| panic!("{}: openssl reads it, certkeeper says: {e}", row[0]));
        assert_eq!((c.certs.len(), c.keys.len()), (certs, keys), "{}", row[0]);
    }
    assert!(checked >= 30, "openssl read only {checked} files");
}
