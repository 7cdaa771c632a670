//! Files made at test time by the real `openssl` (default and `-legacy`) and Java's
//! `keytool`, in every container and key encoding administrators meet, imported.

use certkeeper_testkit::{KeyKind, Pki, Spec};

use crate::common::{Env, openssl, openssl_pfx, stderr, tool};

/// Writes the PKI as PEM files into the env's directory.
fn setup(kind: KeyKind) -> (Env, Pki) {
    let env = Env::new();
    let pki = Pki::with_leaf(&Spec::client("client.example").key(kind));
    pki.write_pem(env.dir.path());
    env.write(
        "chain.pem",
        format!("{}{}", pki.inter.pem(), pki.root.pem()),
    );
    (env, pki)
}

/// Imports `file` (with `password`, if any) and returns (certificates, keys) imported.
fn import(env: &Env, file: &str, password: Option<&str>) -> (usize, usize) {
    let mut args = vec!["import", file, "--json"];
    if password.is_some() {
        args.extend(["--password-env", "PW"]);
    }
    let out = env.run_env(&args, "PW", password.unwrap_or(""));
    assert!(out.status.success(), "{file}: {}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let imported = v["imported"].as_array().unwrap();
    let keys = imported.iter().filter(|i| i["has_key"] == true).count();
    (imported.len(), keys)
}

#[test]
fn openssl_pkcs12_in_every_variant_imports() {
    let variants: &[(&str, &[&str], &str)] = &[
        ("default", &[], "pw"),
        ("legacy-rc2-3des", &["-legacy"], "pw"),
        (
            "unencrypted",
            &["-keypbe", "NONE", "-certpbe", "NONE"],
            "pw",
        ),
        ("3des-both", &["-descert"], "pw"),
        (
            "aes128-sha512mac",
            &[
                "-keypbe",
                "AES-128-CBC",
                "-certpbe",
                "AES-128-CBC",
                "-macalg",
                "sha512",
            ],
            "pw",
        ),
        ("empty-password", &[], ""),
        ("empty-password-legacy", &["-legacy"], ""),
        ("non-ascii-password", &[], "pässwörd€"),
    ];
    for kind in [
        KeyKind::EcP256,
        KeyKind::Rsa2048,
        KeyKind::EcP384,
        KeyKind::Ed25519,
    ] {
        let (env, _) = setup(kind);
        for (name, extra, password) in variants {
            let out = openssl_pfx(&env, &format!("{name}.pfx"), password, extra);
            let pw = (!password.is_empty()).then_some(*password);
            assert_eq!(import(&env, &out, pw), (3, 1), "{kind:?} {name}");
        }
    }
}

#[test]
fn certificate_only_pkcs12_imports_its_certificates() {
    let (env, _) = setup(KeyKind::EcP256);
    let out = env.path("certs.pfx");
    let (leaf, chain) = (env.path("leaf.pem"), env.path("chain.pem"));
    openssl(&[
        "pkcs12",
        "-export",
        "-nokeys",
        "-in",
        &leaf,
        "-certfile",
        &chain,
        "-out",
        &out,
        "-passout",
        "pass:pw",
    ]);
    assert_eq!(import(&env, &out, Some("pw")), (3, 0));
    assert_eq!(
        env.json(&["show", "subject:client.example"])["store"],
        "other"
    );
}

#[test]
fn encrypted_keys_in_every_form_import_with_their_certificate() {
    let (env, _) = setup(KeyKind::EcP256);
    let key = env.path("leaf.key");
    let cert_pem = std::fs::read_to_string(env.path("leaf.pem")).unwrap();
    let forms: &[(&str, &[&str])] = &[
        ("pbes2-aes256", &["pkcs8", "-topk8", "-v2", "aes-256-cbc"]),
        ("pbes2-3des", &["pkcs8", "-topk8", "-v2", "des3"]),
        (
            "pbes2-sha1-prf",
            &[
                "pkcs8",
                "-topk8",
                "-v2",
                "aes-128-cbc",
                "-v2prf",
                "hmacWithSHA1",
            ],
        ),
        (
            "pkcs12-pbe-3des",
            &["pkcs8", "-topk8", "-v1", "PBE-SHA1-3DES"],
        ),
        ("scrypt", &["pkcs8", "-topk8", "-scrypt"]),
        ("traditional-aes256", &["ec", "-aes256"]),
        ("traditional-des3", &["ec", "-des3"]),
    ];
    for (name, args) in forms {
        let mut all = args.to_vec();
        all.extend(["-in", &key, "-passout", "pass:key-pw"]);
        let encrypted = String::from_utf8(openssl(&all).stdout).unwrap();
        assert!(encrypted.contains("ENCRYPTED"), "{name}: {encrypted}");
        let file = env.write(&format!("{name}.pem"), format!("{cert_pem}{encrypted}"));

        let out = env.run(&["import", &file]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        assert!(
            stderr(&out).contains("is encrypted"),
            "{name}: {}",
            stderr(&out)
        );
        let out = env.run_env(&["import", &file, "--password-env", "PW"], "PW", "wrong");
        assert_eq!(out.status.code(), Some(2), "{name}");
        assert!(
            stderr(&out).contains("wrong password"),
            "{name}: {}",
            stderr(&out)
        );
        assert_eq!(import(&env, &file, Some("key-pw")), (1, 1), "{name}");
        env.ok(&["remove", "subject:client.example"]);
    }
}

#[test]
fn traditional_rsa_keys_and_der_keys_import() {
    let (env, _) = setup(KeyKind::Rsa2048);
    let key = env.path("leaf.key");
    let cert = env.path("leaf.pem");
    let der_cert = env.path("leaf.cer");
    openssl(&["x509", "-in", &cert, "-outform", "DER", "-out", &der_cert]);
    assert_eq!(import(&env, &der_cert, None), (1, 0));

    // PKCS#1, DER and PEM (openssl genrsa -traditional writes these), encrypted too.
    let pkcs1_der = env.path("key.pkcs1.der");
    openssl(&[
        "rsa",
        "-in",
        &key,
        "-traditional",
        "-outform",
        "DER",
        "-out",
        &pkcs1_der,
    ]);
    assert_eq!(import(&env, &pkcs1_der, None), (1, 1));
    env.ok(&["remove", "subject:client.example"]);
    assert_eq!(import(&env, &der_cert, None), (1, 0));
    let pkcs1_enc = env.path("key.pkcs1.enc.pem");
    openssl(&[
        "rsa",
        "-in",
        &key,
        "-traditional",
        "-aes128",
        "-passout",
        "pass:k",
        "-out",
        &pkcs1_enc,
    ]);
    assert!(
        std::fs::read_to_string(&pkcs1_enc)
            .unwrap()
            .contains("Proc-Type: 4,ENCRYPTED")
    );
    assert_eq!(import(&env, &pkcs1_enc, Some("k")), (1, 1));

    // PKCS#8 DER, encrypted PKCS#8 DER.
    env.ok(&["remove", "subject:client.example"]);
    assert_eq!(import(&env, &der_cert, None), (1, 0));
    let p8_enc = env.path("key.p8.der");
    openssl(&[
        "pkcs8", "-topk8", "-in", &key, "-outform", "DER", "-passout", "pass:k", "-out", &p8_enc,
    ]);
    assert_eq!(import(&env, &p8_enc, Some("k")), (1, 1));
}

#[test]
fn sec1_ec_keys_import_in_der() {
    let (env, _) = setup(KeyKind::EcP384);
    let key = env.path("leaf.key");
    let der = env.path("key.sec1.der");
    openssl(&["ec", "-in", &key, "-outform", "DER", "-out", &der]);
    assert_eq!(import(&env, &env.path("leaf.pem"), None), (1, 0));
    assert_eq!(import(&env, &der, None), (1, 1));
}

#[test]
fn pkcs7_bundles_in_pem_and_der_import() {
    let (env, _) = setup(KeyKind::EcP256);
    let all = env.write(
        "all.pem",
        format!(
            "{}{}",
            std::fs::read_to_string(env.path("leaf.pem")).unwrap(),
            std::fs::read_to_string(env.path("chain.pem")).unwrap()
        ),
    );
    for (name, form) in [("bundle.p7b", "PEM"), ("bundle.p7c", "DER")] {
        let out = env.path(name);
        openssl(&[
            "crl2pkcs7",
            "-nocrl",
            "-certfile",
            &all,
            "-outform",
            form,
            "-out",
            &out,
        ]);
        assert_eq!(import(&env, &out, None), (3, 0), "{name}");
    }
    // Placement by type: root, intermediate, other.
    let stores: Vec<String> = env
        .json(&["list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["store"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(stores, ["intermediate", "other", "root"]);
}

#[test]
fn keytool_keystores_modern_legacy_and_truststores_import() {
    let env = Env::new();
    let pki = Pki::new();
    pki.write_pem(env.dir.path());
    for (name, legacy) in [("modern.p12", false), ("legacy.p12", true)] {
        let store = env.path(name);
        let mut args = Vec::new();
        if legacy {
            args.push("-J-Dkeystore.pkcs12.legacy");
        }
        args.extend([
            "-genkeypair",
            "-alias",
            "partner",
            "-keyalg",
            "EC",
            "-groupname",
            "secp256r1",
            "-dname",
            "CN=keytool.example",
            "-validity",
            "365",
            "-storetype",
            "PKCS12",
            "-keystore",
            &store,
            "-storepass",
            "changeit",
            "-keypass",
            "changeit",
        ]);
        tool("keytool", &args);
        assert_eq!(import(&env, &store, Some("changeit")), (1, 1), "{name}");
        let shown = env.json(&["show", "subject:keytool.example"]);
        assert_eq!(shown["store"], "personal");
        assert_eq!(shown["name"], "partner");
        env.ok(&["remove", "subject:keytool.example"]);
    }
    let trust = env.path("trust.p12");
    let root = env.path("root.pem");
    tool(
        "keytool",
        &[
            "-importcert",
            "-noprompt",
            "-alias",
            "partner-root",
            "-file",
            &root,
            "-storetype",
            "PKCS12",
            "-keystore",
            &trust,
            "-storepass",
            "changeit",
        ],
    );
    assert_eq!(import(&env, &trust, Some("changeit")), (1, 0));
    assert_eq!(env.json(&["show", "subject:Test Root"])["store"], "root");
}

#[test]
fn nss_pk12util_exports_import() {
    let (env, _) = setup(KeyKind::EcP256);
    let src = openssl_pfx(&env, "src.pfx", "in", &["-name", "partner"]);
    let db = format!("sql:{}", env.path("nssdb"));
    std::fs::create_dir(env.path("nssdb")).unwrap();
    tool("certutil", &["-N", "-d", &db, "--empty-password"]);
    tool("pk12util", &["-i", &src, "-d", &db, "-W", "in"]);
    let legacy_cipher = "PKCS #12 V2 PBE With SHA-1 And 3KEY Triple DES-CBC";
    for (name, extra) in [
        ("nss-default.p12", vec![]),
        (
            "nss-legacy.p12",
            vec!["-c", legacy_cipher, "-C", legacy_cipher, "-M", "SHA-1"],
        ),
    ] {
        let out = env.path(name);
        let mut args = vec!["-o", &out, "-n", "partner", "-d", &db, "-W", "nss-pw"];
        args.extend(extra.iter().copied());
        tool("pk12util", &args);
        assert_eq!(import(&env, &out, Some("nss-pw")), (3, 1), "{name}");
    }
}
