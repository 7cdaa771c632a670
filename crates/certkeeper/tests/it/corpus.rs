//! The shared corpora through the real binary: every PKCS#12 and PKCS#7 file that
//! OpenSSL reads imports with the right certificates and keys.

use certkeeper_testkit::{corpora, corpus, manifest};

use crate::common::{Env, stderr};

#[test]
fn every_pkcs12_file_imports_with_its_certificates_and_key() {
    for row in manifest("pkcs12-manifest.tsv") {
        let (path, password, has_key, cert_count) = (
            &row[0],
            &row[1],
            &row[4] == "yes",
            row[5].parse::<usize>().unwrap(),
        );
        if row[6] != "yes" {
            continue;
        }
        let env = Env::new();
        let file = corpora()
            .join("cryptography_vectors")
            .join(path)
            .display()
            .to_string();
        let mut args = vec!["import", &file, "--json"];
        if !password.starts_with("(empty") {
            args.extend(["--password-env", "PW"]);
        }
        let out = env.run_env(&args, "PW", password);
        if cert_count == 0 {
            // A key alone: refused until its certificate is in the home.
            assert_eq!(out.status.code(), Some(2), "{path}");
            assert!(
                stderr(&out).contains("matches no certificate"),
                "{path}: {}",
                stderr(&out)
            );
            continue;
        }
        assert!(out.status.success(), "{path}: {}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let imported = v["imported"].as_array().unwrap();
        assert_eq!(imported.len(), cert_count, "{path}");
        let with_key = imported.iter().filter(|i| i["has_key"] == true).count();
        assert_eq!(with_key, usize::from(has_key), "{path}");
        if has_key {
            let personal = imported.iter().find(|i| i["has_key"] == true).unwrap();
            assert_eq!(personal["store"], "personal", "{path}");
        }
    }
}

#[test]
fn a_key_only_pkcs12_joins_its_certificate_already_in_the_home() {
    let env = Env::new();
    let dir = corpus("cryptography_vectors/pkcs12");
    let cert = dir.join("cert-aes256cbc-no-key.p12").display().to_string();
    let key = dir.join("no-cert-key-aes256cbc.p12").display().to_string();
    let out = env.run_env(
        &["import", &cert, "--password-env", "PW"],
        "PW",
        "cryptography",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = env.run_env(
        &["import", &key, "--password-env", "PW", "--json"],
        "PW",
        "cryptography",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let list = env.json(&["list"]);
    let entries = list.as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["has_key"], true);
    assert_eq!(entries[0]["store"], "personal");
}

#[test]
fn pkcs7_files_import_their_certificates_or_say_they_have_none() {
    for row in manifest("pkcs7-manifest.tsv") {
        let (path, content_type, count) = (&row[0], &row[2], row[3].parse::<usize>().unwrap());
        let env = Env::new();
        let file = corpora()
            .join("cryptography_vectors")
            .join(path)
            .display()
            .to_string();
        let out = env.run(&["import", &file, "--json"]);
        if count == 0 {
            assert_eq!(out.status.code(), Some(2), "{path}");
            assert!(
                stderr(&out).contains("envelopedData"),
                "{path}: {}",
                stderr(&out)
            );
            assert!(content_type.contains("enveloped"));
        } else {
            assert!(out.status.success(), "{path}: {}", stderr(&out));
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["imported"].as_array().unwrap().len(), count, "{path}");
        }
    }
}
