//! Files as administrators receive them, made at test time by the real `openssl`:
//! Windows exports with bytes after the PFX, damaged files opened with the right
//! password, and containers holding DSA, X25519, Ed448 and X448 keys (stored, never
//! used for TLS).

use std::path::Path;

use crate::agent::{RunningAgent, framed, keycheck_as, raw_exchange};
use crate::common::{Env, openssl, stderr};

const PW: &str = "right-password";

/// A self-signed client certificate for `key` (a PEM private key in the env's dir),
/// exported as PKCS#12 with `extra` options; returns the .pfx path.
fn self_signed_pfx(env: &Env, key: &str, cn: &str, out: &str, extra: &[&str]) -> String {
    let cert = env.path(&format!("{out}.pem"));
    let subj = format!("/CN={cn}");
    openssl(&[
        "req",
        "-x509",
        "-key",
        &env.path(key),
        "-subj",
        &subj,
        "-days",
        "30",
        "-addext",
        "extendedKeyUsage=clientAuth",
        "-out",
        &cert,
    ]);
    pfx_of(env, &cert, key, out, extra)
}

fn pfx_of(env: &Env, cert: &str, key: &str, out: &str, extra: &[&str]) -> String {
    let path = env.path(out);
    let passout = format!("pass:{PW}");
    let key = env.path(key);
    let mut args = vec![
        "pkcs12", "-export", "-in", cert, "-inkey", &key, "-passout", &passout, "-out", &path,
    ];
    args.extend(extra);
    openssl(&args);
    path
}

fn ec_key(env: &Env, name: &str) {
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &env.path(name),
    ]);
}

fn dsa_key(env: &Env, name: &str) {
    let params = env.path("dsa-params.pem");
    if !Path::new(&params).exists() {
        openssl(&[
            "genpkey",
            "-genparam",
            "-algorithm",
            "DSA",
            "-pkeyopt",
            "dsa_paramgen_bits:2048",
            "-out",
            &params,
        ]);
    }
    openssl(&["genpkey", "-paramfile", &params, "-out", &env.path(name)]);
}

fn import_json(env: &Env, file: &str) -> (Option<i32>, serde_json::Value, String) {
    let out = env.run_env(
        &["import", file, "--password-env", "PW", "--json"],
        "PW",
        PW,
    );
    let v = serde_json::from_slice(&out.stdout).unwrap_or_default();
    (out.status.code(), v, stderr(&out))
}

#[test]
fn a_windows_export_with_bytes_after_the_pfx_imports_with_a_warning() {
    let env = Env::new();
    ec_key(&env, "leaf.key");
    for (name, extra) in [("modern.pfx", &[][..]), ("legacy.pfx", &["-legacy"][..])] {
        let pfx = self_signed_pfx(&env, "leaf.key", "windows-export", name, extra);
        let bytes = std::fs::read(&pfx).unwrap();
        for (tail, what) in [(&[0u8, 0][..], "eoc"), (&[0u8; 9][..], "padding")] {
            let file = env.write(&format!("{what}-{name}"), [&bytes[..], tail].concat());
            let (code, v, err) = import_json(&env, &file);
            assert_eq!(code, Some(0), "{file}: {err}");
            assert_eq!(v["imported"][0]["has_key"], true, "{file}");
            let warning = format!(
                "certkeeper: {file}: warning: {} bytes after the end of the PKCS#12 data \
                 ignored (zero padding)",
                tail.len()
            );
            assert!(err.contains(&warning), "{err}");
            assert_eq!(v["warnings"][0]["file"], file.as_str());
            assert!(
                v["warnings"][0]["warning"]
                    .as_str()
                    .unwrap()
                    .contains("integrity check covers everything before them")
            );
            // The text output says it too, once, and the file is imported.
            let out = env.run_env(&["import", &file, "--password-env", "PW"], "PW", PW);
            assert!(out.status.success());
            assert_eq!(
                stderr(&out).matches("warning:").count(),
                1,
                "{}",
                stderr(&out)
            );
            // Wrong password: still said so.
            let out = env.run_env(&["import", &file, "--password-env", "PW"], "PW", "nope");
            assert_eq!(out.status.code(), Some(2));
            assert!(stderr(&out).contains("wrong password"), "{}", stderr(&out));
        }
        // A truncated export stays damaged even with the Windows tail after it.
        let cut = env.write(
            &format!("cut-{name}"),
            [&bytes[..bytes.len() - 40], &[0, 0]].concat(),
        );
        let (code, _, err) = import_json(&env, &cut);
        assert_eq!(code, Some(2));
        assert!(
            err.contains(&format!("certkeeper: {cut}: is damaged")),
            "{err}"
        );
    }
}

#[test]
fn a_damaged_pfx_opened_with_the_right_password_is_called_damaged() {
    let env = Env::new();
    ec_key(&env, "leaf.key");
    for (name, extra) in [("modern.pfx", &[][..]), ("legacy.pfx", &["-legacy"][..])] {
        let pfx = self_signed_pfx(&env, "leaf.key", "flipped", name, extra);
        let bytes = std::fs::read(&pfx).unwrap();
        // In the middle (the encrypted certificate), in the MAC's digest (the MAC data
        // ends with the 8-byte salt and the 2-byte iteration count), and near the start
        // of the contents (the first encrypted safe's parameters).
        for pos in [bytes.len() / 2, bytes.len() - 20, 80] {
            let mut m = bytes.clone();
            m[pos] ^= 0x10;
            let file = env.write(&format!("flip-{pos}-{name}"), m);
            let (code, _, err) = import_json(&env, &file);
            assert_eq!(code, Some(2), "{file}: {err}");
            assert!(
                err.contains("is damaged") && !err.contains("wrong password"),
                "{file}: {err}"
            );
        }
    }
    assert!(
        env.thumbprints().is_empty(),
        "nothing of a damaged file is written"
    );
}

#[test]
fn a_dsa_pfx_imports_with_its_key_and_is_never_used_for_tls() {
    let env = Env::new();
    dsa_key(&env, "dsa.key");
    let modern = self_signed_pfx(&env, "dsa.key", "dsa-partner", "dsa.pfx", &["-name", "dsa"]);
    let legacy = pfx_of(
        &env,
        &env.path("dsa.pfx.pem"),
        "dsa.key",
        "dsa-legacy.pfx",
        &["-legacy", "-name", "dsa"],
    );
    for file in [&modern, &legacy] {
        let (code, v, err) = import_json(&env, file);
        assert_eq!(code, Some(0), "{file}: {err}");
        assert_eq!(v["imported"][0]["has_key"], true, "{file}: {v}");
        assert_eq!(v["imported"][0]["store"], "personal");
    }

    let show = env.ok(&["show", "dsa"]);
    assert!(
        show.contains("You have a private key that corresponds to this certificate, but a DSA key cannot sign a TLS handshake"),
        "{show}"
    );
    let v = env.json(&["show", "dsa"]);
    assert_eq!(v["key_algorithm"], "dsa");
    assert_eq!(v["key_signs_tls"], false);
    assert_eq!(v["key_type"], "DSA");

    let out = env.run(&["doctor", "dsa"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l.starts_with("FAIL  private-key")
            && l.contains(
                "present and matches the certificate, but a DSA key cannot sign a TLS handshake"
            )),
        "{text}"
    );

    // The key round-trips: exported with its key, openssl reads it back.
    let out = env.path("out.pfx");
    let r = env.run_env(
        &[
            "export",
            "dsa",
            "--format",
            "pfx",
            "--password-env",
            "PW",
            "--out",
            &out,
        ],
        "PW",
        PW,
    );
    assert!(r.status.success(), "{}", stderr(&r));
    let passin = format!("pass:{PW}");
    let text =
        String::from_utf8(openssl(&["pkcs12", "-in", &out, "-passin", &passin, "-nodes"]).stdout)
            .unwrap();
    assert!(text.contains("BEGIN PRIVATE KEY"), "{text}");

    // The agent refuses to sign with it, says why, and keeps serving.
    let agent = RunningAgent::start(&env);
    let out = keycheck_as(&agent, "dsa", None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("a DSA key cannot sign a TLS handshake"),
        "{}",
        stderr(&out)
    );
    let thumbprint = v["thumbprint"].as_str().unwrap();
    for scheme in ["RSA_PKCS1_SHA256", "ECDSA_NISTP256_SHA256"] {
        let request = format!(
            r#"{{"v": 3, "op": "sign", "thumbprint": "{thumbprint}", "scheme": "{scheme}", "data": "aGVsbG8="}}"#
        );
        let answer = raw_exchange(&agent.socket, &framed(&request)).unwrap();
        assert_eq!(answer["error"]["code"], "unsupported_scheme", "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("a DSA key cannot sign a TLS handshake"),
            "{answer}"
        );
    }
    let hello = raw_exchange(&agent.socket, &framed(r#"{"v": 3, "op": "hello"}"#)).unwrap();
    assert!(hello["ok"]["agent"].is_string(), "{hello}");
    // A request through it fails before any connection, with the same reason.
    let out = env.run(&[
        "request",
        "https://127.0.0.1:9/",
        "--cert",
        "dsa",
        "--server-ca",
        "system",
        "--socket",
        agent.socket.to_str().unwrap(),
    ]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("a DSA key cannot sign a TLS handshake"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_x25519_certificate_imports_with_its_key() {
    // X25519 keys cannot sign, so a CA signs the certificate for one (-force_pubkey).
    let env = Env::new();
    ec_key(&env, "ca.key");
    openssl(&[
        "genpkey",
        "-algorithm",
        "X25519",
        "-out",
        &env.path("x.key"),
    ]);
    openssl(&[
        "pkey",
        "-in",
        &env.path("x.key"),
        "-pubout",
        "-out",
        &env.path("x.pub"),
    ]);
    openssl(&[
        "req",
        "-x509",
        "-key",
        &env.path("ca.key"),
        "-subj",
        "/CN=x-ca",
        "-days",
        "30",
        "-out",
        &env.path("ca.pem"),
    ]);
    openssl(&[
        "req",
        "-new",
        "-key",
        &env.path("ca.key"),
        "-subj",
        "/CN=x25519-partner",
        "-out",
        &env.path("x.csr"),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &env.path("x.csr"),
        "-CA",
        &env.path("ca.pem"),
        "-CAkey",
        &env.path("ca.key"),
        "-force_pubkey",
        &env.path("x.pub"),
        "-days",
        "30",
        "-out",
        &env.path("x.pem"),
    ]);
    let pfx = pfx_of(&env, &env.path("x.pem"), "x.key", "x.pfx", &["-name", "x"]);
    let (code, v, err) = import_json(&env, &pfx);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(v["imported"][0]["has_key"], true, "{v}");
    let v = env.json(&["show", "x"]);
    assert_eq!(v["key_algorithm"], "x25519");
    assert_eq!(v["key_type"], "X25519");
    assert_eq!(v["key_signs_tls"], false);
}

#[test]
fn ed448_and_x448_keys_import_with_their_certificates_and_are_never_used_for_tls() {
    let env = Env::new();
    // An Ed448 key signs its own certificate; an X448 key cannot sign, so a CA signs
    // the certificate for it (-force_pubkey). Both in legacy files, as old tools write.
    openssl(&[
        "genpkey",
        "-algorithm",
        "ED448",
        "-out",
        &env.path("ed.key"),
    ]);
    let ed = self_signed_pfx(
        &env,
        "ed.key",
        "ed448-partner",
        "ed.pfx",
        &["-legacy", "-name", "ed448"],
    );
    ec_key(&env, "ca.key");
    openssl(&["genpkey", "-algorithm", "X448", "-out", &env.path("x.key")]);
    openssl(&[
        "pkey",
        "-in",
        &env.path("x.key"),
        "-pubout",
        "-out",
        &env.path("x.pub"),
    ]);
    openssl(&[
        "req",
        "-x509",
        "-key",
        &env.path("ca.key"),
        "-subj",
        "/CN=x-ca",
        "-days",
        "30",
        "-out",
        &env.path("ca.pem"),
    ]);
    openssl(&[
        "req",
        "-new",
        "-key",
        &env.path("ca.key"),
        "-subj",
        "/CN=x448-partner",
        "-out",
        &env.path("x.csr"),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &env.path("x.csr"),
        "-CA",
        &env.path("ca.pem"),
        "-CAkey",
        &env.path("ca.key"),
        "-force_pubkey",
        &env.path("x.pub"),
        "-days",
        "30",
        "-out",
        &env.path("x.pem"),
    ]);
    let x = pfx_of(
        &env,
        &env.path("x.pem"),
        "x.key",
        "x.pfx",
        &["-legacy", "-name", "x448"],
    );

    let cases = [
        (
            &ed,
            "ed448",
            "Ed448",
            "an Ed448 key cannot sign a TLS handshake",
        ),
        (
            &x,
            "x448",
            "X448",
            "an X448 key is for key agreement and cannot sign a TLS handshake",
        ),
    ];
    let mut thumbprints = Vec::new();
    for (file, name, key_type, reason) in cases {
        let (code, v, err) = import_json(&env, file);
        assert_eq!(code, Some(0), "{file}: {err}");
        assert_eq!(v["imported"][0]["has_key"], true, "{file}: {v}");
        assert_eq!(v["imported"][0]["store"], "personal", "{file}: {v}");

        let v = env.json(&["show", name]);
        assert_eq!(v["key_algorithm"], name);
        assert_eq!(v["key_type"], key_type);
        assert_eq!(v["key_signs_tls"], false);
        thumbprints.push((name, reason, v["thumbprint"].as_str().unwrap().to_string()));
        let show = env.ok(&["show", name]);
        assert!(
            show.contains(&format!(
                "You have a private key that corresponds to this certificate, but {reason}"
            )),
            "{show}"
        );
        let out = env.run(&["doctor", name]);
        assert_eq!(out.status.code(), Some(1));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.lines().any(|l| l.starts_with("FAIL  private-key")
                && l.contains(&format!(
                    "present and matches the certificate, but {reason}"
                ))),
            "{text}"
        );
    }

    // The agent refuses to sign with them, says why, and keeps serving; a request
    // through it fails before any connection, with the same reason.
    let agent = RunningAgent::start(&env);
    for (name, reason, thumbprint) in &thumbprints {
        let out = keycheck_as(&agent, name, None);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains(reason), "{}", stderr(&out));
        let request = format!(
            r#"{{"v": 3, "op": "sign", "thumbprint": "{thumbprint}", "scheme": "ED25519", "data": "aGVsbG8="}}"#
        );
        let answer = raw_exchange(&agent.socket, &framed(&request)).unwrap();
        assert_eq!(answer["error"]["code"], "unsupported_scheme", "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains(reason),
            "{answer}"
        );
        let out = env.run(&[
            "request",
            "https://127.0.0.1:9/",
            "--cert",
            name,
            "--server-ca",
            "system",
            "--socket",
            agent.socket.to_str().unwrap(),
        ]);
        assert_ne!(out.status.code(), Some(0));
        assert!(stderr(&out).contains(reason), "{}", stderr(&out));
    }
    let hello = raw_exchange(&agent.socket, &framed(r#"{"v": 3, "op": "hello"}"#)).unwrap();
    assert!(hello["ok"]["agent"].is_string(), "{hello}");
}
