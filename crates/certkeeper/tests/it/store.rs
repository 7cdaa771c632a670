//! The store: init, import placement, idempotence, list/show shapes, move, remove,
//! export, ACL persistence, keys encrypted at rest, several processes at once.

use std::os::unix::fs::PermissionsExt;

use certkeeper_testkit::{Pki, Spec, TestCert};

use crate::common::{Env, openssl, openssl_pfx, stderr};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A .pfx of the PKI's leaf, key and chain, made by the real openssl.
fn pfx(env: &Env, pki: &Pki, name: &str, password: &str, extra: &[&str]) -> String {
    pki.write_pem(env.dir.path());
    env.write(
        "chain.pem",
        format!("{}{}", pki.inter.pem(), pki.root.pem()),
    );
    openssl_pfx(
        env,
        name,
        password,
        &[&["-name", "partner"], extra].concat(),
    )
}

#[test]
fn init_is_idempotent_and_private() {
    let env = Env::new();
    assert!(env.ok(&["init"]).contains("created home"));
    assert!(env.ok(&["init"]).contains("already existed"));
    assert_eq!(mode(&env.home), 0o700);
    assert_eq!(mode(&env.home.join("master.key")), 0o600);
    assert_eq!(mode(&env.home.join("certkeeper.db")), 0o600);
    assert_eq!(
        std::fs::metadata(env.home.join("master.key"))
            .unwrap()
            .len(),
        32
    );
}

#[test]
fn pfx_import_places_each_certificate_by_type_and_is_idempotent() {
    let env = Env::new();
    let pki = Pki::new();
    let file = pfx(&env, &pki, "partner.pfx", "s3cret", &[]);
    let out = env.run_env(
        &["import", &file, "--password-env", "PW", "--json"],
        "PW",
        "s3cret",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let imported = report["imported"].as_array().unwrap();
    assert_eq!(imported.len(), 3);
    let store_of = |cn: &str| {
        imported
            .iter()
            .find(|i| i["subject"].as_str().unwrap().contains(cn))
            .map(|i| {
                (
                    i["store"].as_str().unwrap().to_string(),
                    i["has_key"].as_bool().unwrap(),
                    i["new"].as_bool().unwrap(),
                )
            })
            .unwrap()
    };
    assert_eq!(store_of("client.example"), ("personal".into(), true, true));
    assert_eq!(
        store_of("Test Issuing CA"),
        ("intermediate".into(), false, true)
    );
    assert_eq!(store_of("Test Root CA"), ("root".into(), false, true));
    assert!(report["errors"].as_array().unwrap().is_empty());

    // Again: nothing new, same entries.
    let before = env.thumbprints();
    let again = env.run_env(
        &["import", &file, "--password-env", "PW", "--json"],
        "PW",
        "s3cret",
    );
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert!(
        again["imported"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["new"] == false)
    );
    assert_eq!(env.thumbprints(), before);

    // The pinned list shape.
    let list = env.json(&["list"]);
    let leaf = list
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["store"] == "personal")
        .unwrap();
    for field in [
        "thumbprint",
        "sha1",
        "store",
        "name",
        "subject",
        "issuer",
        "not_before",
        "not_after",
        "has_key",
        "is_ca",
    ] {
        assert!(leaf.get(field).is_some(), "list --json lacks {field}");
    }
    assert_eq!(leaf["name"], "partner");
    assert_eq!(leaf["thumbprint"].as_str().unwrap().len(), 64);
    assert!(leaf["not_after"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        env.json(&["list", "--store", "root"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn show_tells_the_key_first_and_the_details() {
    let env = Env::new();
    let pki = Pki::with_leaf(&Spec::client("client.example").aia("http://pki.example/issuing.cer"));
    let file = pfx(&env, &pki, "p.pfx", "pw", &[]);
    env.run_env(&["import", &file, "--password-env", "PW"], "PW", "pw");
    let text = env.ok(&["show", "partner"]);
    let second_line = text.lines().nth(1).unwrap();
    assert!(
        second_line.contains("You have a private key that corresponds to this certificate"),
        "{text}"
    );
    assert!(text.contains("http://pki.example/issuing.cer"));
    assert!(text.contains("clientAuth"));

    let v = env.json(&["show", "partner"]);
    for field in [
        "serial",
        "san",
        "key_usage",
        "ext_key_usage",
        "acl",
        "export_name",
        "thumbprint",
        "has_key",
    ] {
        assert!(v.get(field).is_some(), "show --json lacks {field}");
    }
    assert_eq!(v["ext_key_usage"], serde_json::json!(["clientAuth"]));
    assert_eq!(
        v["ca_issuers"],
        serde_json::json!(["http://pki.example/issuing.cer"])
    );

    // A certificate without its key says so first.
    let other = env.write(
        "other.pem",
        TestCert::self_signed(&Spec::client("lonely")).pem(),
    );
    env.ok(&["import", &other]);
    let text = env.ok(&["show", "subject:lonely"]);
    assert!(
        text.lines().nth(1).unwrap().contains("NO private key"),
        "{text}"
    );
}

#[test]
fn references_resolve_by_prefix_sha1_name_and_subject_or_say_why_not() {
    let env = Env::new();
    let pki = Pki::new();
    let file = pfx(&env, &pki, "p.pfx", "pw", &[]);
    env.run_env(&["import", &file, "--password-env", "PW"], "PW", "pw");
    let leaf = env.json(&["show", "partner"]);
    let thumb = leaf["thumbprint"].as_str().unwrap();
    let sha1 = leaf["sha1"].as_str().unwrap();
    for r in [
        &thumb[..8],
        thumb,
        &sha1[..10],
        "partner",
        "subject:CLIENT.example",
    ] {
        assert_eq!(env.json(&["show", r])["thumbprint"], thumb, "ref {r}");
    }
    let out = env.run(&["show", "subject:CN=Test"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("matches 2 certificates"),
        "{}",
        stderr(&out)
    );
    let out = env.run(&["show", "nothing-like-it"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(stderr(&out).lines().count(), 1);
}

#[test]
fn private_keys_are_not_in_the_database_in_clear() {
    let env = Env::new();
    let pki = Pki::new();
    let file = pfx(&env, &pki, "p.pfx", "pw", &[]);
    env.run_env(&["import", &file, "--password-env", "PW"], "PW", "pw");
    let key = pki.leaf.key_der();
    // The PKCS#8 also carries the public key, which the certificate rightly holds:
    // look for every 16-byte window of the key that is not in the certificate.
    let secret: Vec<&[u8]> = key
        .windows(16)
        .filter(|w| !pki.leaf.der.windows(16).any(|c| c == *w))
        .collect();
    assert!(secret.len() > 8, "the private part must be searchable");
    let mut searched = 0;
    for entry in std::fs::read_dir(&env.home).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() && path.file_name().unwrap() != "master.key" {
            let bytes = std::fs::read(&path).unwrap();
            searched += bytes.len();
            for window in &secret {
                assert!(
                    !bytes.windows(16).any(|w| w == *window),
                    "key bytes found in {}",
                    path.display()
                );
            }
        }
    }
    assert!(searched > 0);
}

#[test]
fn export_writes_the_certificate_byte_identical_and_pfx_that_openssl_reads() {
    let env = Env::new();
    let pki = Pki::new();
    let file = pfx(&env, &pki, "p.pfx", "pw", &[]);
    env.run_env(&["import", &file, "--password-env", "PW"], "PW", "pw");

    let der = env.path("out.cer");
    env.ok(&["export", "partner", "--out", &der]);
    assert_eq!(std::fs::read(&der).unwrap(), pki.leaf.der);

    let pem = env.path("chain.pem");
    env.ok(&[
        "export", "partner", "--format", "pem", "--chain", "--out", &pem,
    ]);
    let text = std::fs::read_to_string(&pem).unwrap();
    assert_eq!(text.matches("BEGIN CERTIFICATE").count(), 3);
    let root = env.write("root-only.pem", pki.root.pem());
    let inter = env.write("inter-only.pem", pki.inter.pem());
    let leaf = env.write("leaf-only.pem", pki.leaf.pem());
    openssl(&["verify", "-CAfile", &root, "-untrusted", &inter, &leaf]);

    let p7b = env.path("chain.p7b");
    env.ok(&[
        "export", "partner", "--format", "p7b", "--chain", "--out", &p7b,
    ]);
    let printed = openssl(&["pkcs7", "-inform", "DER", "-in", &p7b, "-print_certs"]);
    assert_eq!(
        String::from_utf8_lossy(&printed.stdout)
            .matches("subject=")
            .count(),
        3
    );

    for (legacy, expect) in [
        (false, "AES-256-CBC"),
        (true, "pbeWithSHA1And3-KeyTripleDES-CBC"),
    ] {
        let out_pfx = env.path(if legacy { "legacy.pfx" } else { "modern.pfx" });
        let mut args = vec![
            "export",
            "partner",
            "--format",
            "pfx",
            "--chain",
            "--password-env",
            "PW",
            "--out",
            &out_pfx,
        ];
        if legacy {
            args.push("--legacy");
        }
        let out = env.run_env(&args, "PW", "export-pw");
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(mode(std::path::Path::new(&out_pfx)), 0o600);
        let info = openssl(&[
            "pkcs12",
            "-info",
            "-in",
            &out_pfx,
            "-passin",
            "pass:export-pw",
            "-nodes",
        ]);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&info.stdout),
            String::from_utf8_lossy(&info.stderr)
        );
        assert!(all.contains(expect), "{all}");
        assert!(all.contains("BEGIN PRIVATE KEY"));
        // The key in the .pfx is the leaf's key: its public half matches the certificate.
        let key_path = env.write(
            "exported.key",
            &all[all.find("-----BEGIN PRIVATE KEY").unwrap()..],
        );
        let from_key = openssl(&["pkey", "-in", &key_path, "-pubout"]).stdout;
        let from_cert = openssl(&["x509", "-in", &leaf, "-pubkey", "-noout"]).stdout;
        assert_eq!(from_key, from_cert);
    }

    // No password: refused before anything is written.
    let out = env.run(&[
        "export",
        "partner",
        "--format",
        "pfx",
        "--out",
        &env.path("nopw.pfx"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!std::path::Path::new(&env.path("nopw.pfx")).exists());
}

#[test]
fn export_as_records_the_agreed_name_and_writes_der_there() {
    let env = Env::new();
    let pki = Pki::new();
    let file = pfx(&env, &pki, "p.pfx", "pw", &[]);
    env.run_env(&["import", &file, "--password-env", "PW"], "PW", "pw");
    let exports = env.dir.path().join("exports");
    std::fs::create_dir(&exports).unwrap();
    env.ok(&["config", "export_dir", exports.to_str().unwrap()]);
    env.ok(&["export", "partner", "--as", "partner.cer"]);
    assert_eq!(
        std::fs::read(exports.join("partner.cer")).unwrap(),
        pki.leaf.der
    );
    assert_eq!(env.json(&["show", "partner"])["export_name"], "partner.cer");
    // The same name for another entry is refused, and nothing is overwritten.
    let out = env.run(&["export", "subject:Issuing", "--as", "partner.cer"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("already used"));
    assert_eq!(
        std::fs::read(exports.join("partner.cer")).unwrap(),
        pki.leaf.der
    );
    let out = env.run(&["export", "partner", "--as", "../escape.cer"]);
    assert_eq!(out.status.code(), Some(2));
}

/// `setpriv` as nobody (uid 65534, no groups): what an ungranted user can do.
fn as_nobody(args: &[&str]) -> std::process::Output {
    certkeeper_testkit::tools::command("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn export_as_writes_beside_the_private_home_where_other_users_read_it() {
    let env = Env::new();
    // As /var/lib: other users may pass through.
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let pki = Pki::new();
    let file = pfx(&env, &pki, "p.pfx", "pw", &[]);
    env.run_env(&["import", &file, "--password-env", "PW"], "PW", "pw");
    let exports = env.dir.path().join("home-exports");
    assert_eq!(
        env.ok(&["config", "export_dir"]).trim(),
        exports.display().to_string()
    );
    // A restrictive umask narrows neither the directory nor the file.
    let bin = env!("CARGO_BIN_EXE_certkeeper");
    let home = env.home.display().to_string();
    let out = certkeeper_testkit::tools::command("sh")
        .args([
            "-c",
            "umask 077 && exec \"$0\" --home \"$1\" export partner --as partner.cer",
        ])
        .args([bin, &home])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let exported = exports.join("partner.cer");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!(
            "exported {} as {}",
            certkeeper_core::Certificate::from_der(&pki.leaf.der)
                .unwrap()
                .subject,
            exported.display()
        )
    );
    assert_eq!(mode(&exports), 0o755);
    assert_eq!(mode(&exported), 0o644);
    assert_eq!(mode(&env.home), 0o700);

    // An ungranted user reads the certificate, and not the home.
    let read = as_nobody(&["cat", exported.to_str().unwrap()]);
    assert!(read.status.success(), "{}", stderr(&read));
    assert_eq!(read.stdout, pki.leaf.der);
    let db = env.home.join("certkeeper.db");
    let denied = as_nobody(&["cat", db.to_str().unwrap()]);
    assert!(!denied.status.success());
    assert!(
        stderr(&denied).contains("Permission denied"),
        "{}",
        stderr(&denied)
    );
}

#[test]
fn an_export_directory_that_cannot_be_trusted_is_refused_with_its_fix() {
    let env = Env::new();
    let pki = Pki::new();
    let file = pfx(&env, &pki, "p.pfx", "pw", &[]);
    env.run_env(&["import", &file, "--password-env", "PW"], "PW", "pw");
    let real = env.dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o755)).unwrap();
    let refused = |dir: &std::path::Path, why: &str| {
        env.ok(&["config", "export_dir", dir.to_str().unwrap()]);
        let out = env.run(&["export", "partner", "--as", "partner.cer"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(4), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with(&format!("certkeeper: export directory {} ", dir.display()))
                && err.contains(why),
            "{err}"
        );
        assert!(!dir.join("partner.cer").exists());
        assert_eq!(
            env.json(&["show", "partner"])["export_name"],
            serde_json::Value::Null
        );
    };

    let link = env.dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    refused(&link, "is a symbolic link");
    assert!(!real.join("partner.cer").exists());

    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o777)).unwrap();
    refused(
        &real,
        &format!(
            "is writable by group or others (mode 0777); fix it with: chmod go-w {}",
            real.display()
        ),
    );
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o755)).unwrap();

    std::os::unix::fs::chown(&real, Some(65534), None).unwrap();
    refused(
        &real,
        "is owned by uid 65534, not by the home's owner (uid 0) or root",
    );
    std::os::unix::fs::chown(&real, Some(0), None).unwrap();

    // A symbolic link in the file's place is not followed.
    let elsewhere = env.dir.path().join("elsewhere.cer");
    std::fs::write(&elsewhere, "keep").unwrap();
    std::os::unix::fs::symlink(&elsewhere, real.join("partner.cer")).unwrap();
    env.ok(&["config", "export_dir", real.to_str().unwrap()]);
    let out = env.run(&["export", "partner", "--as", "partner.cer", "--force"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not a regular file"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "keep");
}

#[test]
fn export_as_over_another_certificate_needs_force_and_says_what_it_replaced() {
    let env = Env::new();
    let pki = Pki::new();
    let file = pfx(&env, &pki, "p.pfx", "pw", &[]);
    env.run_env(&["import", &file, "--password-env", "PW"], "PW", "pw");
    let exports = env.dir.path().join("home-exports");
    std::fs::create_dir(&exports).unwrap();
    let target = exports.join("partner.cer");
    // Last year's certificate, left by hand under the agreed name.
    let old = TestCert::self_signed(&Spec::client("old-partner.example"));
    std::fs::write(&target, &old.der).unwrap();
    let old_subject = certkeeper_core::Certificate::from_der(&old.der)
        .unwrap()
        .subject;

    let out = env.run(&["export", "partner", "--as", "partner.cer"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "{} already holds {old_subject} (thumbprint ",
            target.display()
        )) && err.trim_end().ends_with("give --force to replace it"),
        "{err}"
    );
    assert_eq!(std::fs::read(&target).unwrap(), old.der);
    assert_eq!(
        env.json(&["show", "partner"])["export_name"],
        serde_json::Value::Null
    );

    let out = env.ok(&["export", "partner", "--as", "partner.cer", "--force"]);
    assert!(
        out.contains(&format!("; replaced {old_subject} (thumbprint ")),
        "{out}"
    );
    assert_eq!(std::fs::read(&target).unwrap(), pki.leaf.der);
    assert_eq!(env.json(&["show", "partner"])["export_name"], "partner.cer");

    // The same certificate again: nothing to do, no --force needed.
    let json = env.json(&["export", "partner", "--as", "partner.cer"]);
    assert_eq!(json["file"], "unchanged");
    assert_eq!(std::fs::read(&target).unwrap(), pki.leaf.der);
    // And the same one as PEM is rewritten as DER without --force.
    std::fs::write(&target, pki.leaf.pem()).unwrap();
    let json = env.json(&["export", "partner", "--as", "partner.cer"]);
    assert_eq!(json["file"], "rewritten");
    assert_eq!(std::fs::read(&target).unwrap(), pki.leaf.der);
}

#[test]
fn a_rename_keeps_the_export_name_and_an_export_name_is_no_friendly_name() {
    let env = Env::new();
    let pki = Pki::new();
    let f = env.write(
        "leaf.pem",
        format!("{}{}", pki.leaf.pem(), pki.leaf.key_pem()),
    );
    env.ok(&["import", &f, "--name", "partner"]);
    env.ok(&["export", "partner", "--as", "partner.cer"]);
    let out = env.ok(&["import", &f, "--name", "partner-2026"]);
    assert!(
        out.contains("renamed partner -> partner-2026; export name partner.cer unchanged"),
        "{out}"
    );
    let shown = env.json(&["show", "partner.cer"]);
    assert_eq!(shown["name"], "partner-2026");
    assert_eq!(shown["export_name"], "partner.cer");

    // Another certificate may not take the export name as its friendly name: the REF
    // partner.cer would then name two certificates.
    let thumbprint = shown["thumbprint"].as_str().unwrap();
    let other = env.write("other.pem", pki.inter.pem());
    let out = env.run(&["import", &other, "--name", "partner.cer"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(
        err.trim_end(),
        format!(
            "certkeeper: {other}: \"partner.cer\" is already the export name of {thumbprint}; \
             choose another"
        )
    );
    assert_eq!(env.json(&["show", "partner.cer"])["thumbprint"], thumbprint);
    // Nor the reverse.
    env.ok(&["import", &other, "--name", "issuing"]);
    let out = env.run(&["export", "partner-2026", "--as", "issuing"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("\"issuing\" is already the friendly name of "));
}

#[test]
fn non_exportable_keys_never_leave_in_a_pfx() {
    let env = Env::new();
    let pki = Pki::new();
    let file = pfx(&env, &pki, "p.pfx", "pw", &[]);
    let out = env.run_env(
        &["import", &file, "--password-env", "PW", "--non-exportable"],
        "PW",
        "pw",
    );
    assert!(out.status.success());
    let target = env.path("x.pfx");
    let out = env.run_env(
        &[
            "export",
            "partner",
            "--format",
            "pfx",
            "--password-env",
            "PW",
            "--out",
            &target,
        ],
        "PW",
        "pw",
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("non-exportable"));
    assert!(!std::path::Path::new(&target).exists());
    // The public certificate still exports.
    env.ok(&["export", "partner", "--out", &env.path("ok.cer")]);
}

#[test]
fn reimport_keeps_the_key_acl() {
    let env = Env::new();
    let pki = Pki::new();
    let file = pfx(&env, &pki, "p.pfx", "pw", &[]);
    env.run_env(&["import", &file, "--password-env", "PW"], "PW", "pw");
    env.ok(&["grant", "partner", "user:nobody", "gid:4242"]);
    // A re-export made elsewhere (another tool, other encryption): same certificate.
    let again = pfx(&env, &pki, "again.pfx", "other", &["-legacy"]);
    env.run_env(&["import", &again, "--password-env", "PW"], "PW", "other");
    assert_eq!(
        env.json(&["acl", "partner"])["acl"],
        serde_json::json!(["gid:4242", "user:nobody"])
    );
    assert_eq!(
        env.json(&["show", "partner"])["acl"],
        serde_json::json!(["gid:4242", "user:nobody"])
    );
    let out = env.run(&["grant", "partner", "user:no-such-user-here"]);
    assert_eq!(out.status.code(), Some(2));
    env.ok(&["revoke", "partner", "user:nobody"]);
    assert_eq!(
        env.json(&["acl", "partner"])["acl"],
        serde_json::json!(["gid:4242"])
    );
}

#[test]
fn move_and_remove() {
    let env = Env::new();
    let pki = Pki::new();
    let file = pfx(&env, &pki, "p.pfx", "pw", &[]);
    env.run_env(&["import", &file, "--password-env", "PW"], "PW", "pw");
    env.ok(&["move", "subject:Test Root", "--to", "disallowed"]);
    assert_eq!(
        env.json(&["show", "subject:Test Root"])["store"],
        "disallowed"
    );
    let out = env.run(&["move", "subject:Test Issuing", "--to", "personal"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no private key"));
    env.ok(&["remove", "partner"]);
    assert_eq!(env.json(&["list"]).as_array().unwrap().len(), 2);
    assert_eq!(env.run(&["show", "partner"]).status.code(), Some(3));
}

#[test]
fn explicit_store_no_roots_and_keys_that_arrive_later() {
    let env = Env::new();
    let pki = Pki::new();
    pki.write_pem(env.dir.path());
    let chain = env.write(
        "bundle.pem",
        format!("{}{}", pki.inter.pem(), pki.root.pem()),
    );
    let out = env.json(&["import", &chain, "--no-roots"]);
    assert_eq!(out["imported"].as_array().unwrap().len(), 1);
    assert_eq!(out["skipped"].as_array().unwrap().len(), 1);
    assert!(
        env.json(&["list", "--store", "root"])
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Certificate first (goes to other), then its key alone: now personal, with key.
    env.ok(&["import", &env.path("leaf.pem")]);
    assert_eq!(
        env.json(&["show", "subject:client.example"])["store"],
        "other"
    );
    env.ok(&["import", &env.path("leaf.key")]);
    let shown = env.json(&["show", "subject:client.example"]);
    assert_eq!(shown["store"], "personal");
    assert_eq!(shown["has_key"], true);

    // A key whose certificate is nowhere: refused, nothing written.
    let stray = TestCert::self_signed(&Spec::client("stray"));
    let key = env.write("stray.key", stray.key_pem());
    let before = env.thumbprints();
    let out = env.run(&["import", &key]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("matches no certificate"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.thumbprints(), before);

    // --store intermediate puts the file's certificates there.
    let ca = TestCert::self_signed(&Spec::ca("Odd CA"));
    let f = env.write("odd.pem", ca.pem());
    env.ok(&["import", &f, "--store", "intermediate"]);
    assert_eq!(
        env.json(&["show", "subject:Odd CA"])["store"],
        "intermediate"
    );
}

#[test]
fn several_files_each_reported_and_the_bad_one_alone_fails() {
    let env = Env::new();
    let a = TestCert::self_signed(&Spec::client("a"));
    let b = TestCert::self_signed(&Spec::client("b"));
    let fa = env.write("a.pem", a.pem());
    let fb = env.write("b.der", &b.der);
    let bad = env.write(
        "bad.pem",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    env.ok(&["init"]);
    let out = env.run(&["import", &fa, &bad, &fb]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("bad.pem: is damaged"), "{err}");
    assert_eq!(env.json(&["list"]).as_array().unwrap().len(), 2);
}

#[test]
fn config_settings_are_checked() {
    let env = Env::new();
    env.ok(&["init"]);
    assert_eq!(env.json(&["config"])["expiry_warning_days"], "30");
    env.ok(&["config", "expiry_warning_days", "45"]);
    assert_eq!(env.ok(&["config", "expiry_warning_days"]).trim(), "45");
    assert_eq!(
        env.run(&["config", "expiry_warning_days", "soon"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(env.run(&["config", "no_such_key"]).status.code(), Some(2));
    assert_eq!(
        env.run(&["config", "export_dir", "relative/dir"])
            .status
            .code(),
        Some(2)
    );
    env.ok(&["config", "service_principals", "user:nobody, gid:0"]);
    assert_eq!(
        env.ok(&["config", "service_principals"]).trim(),
        "user:nobody,gid:0"
    );
}

#[test]
fn several_processes_import_into_one_home_at_once() {
    let env = Env::new();
    env.ok(&["init"]);
    let files: Vec<String> = (0..6)
        .map(|i| {
            let c = TestCert::self_signed(&Spec::client(&format!("parallel {i}")));
            env.write(&format!("p{i}.pem"), c.pem())
        })
        .collect();
    let children: Vec<_> = files
        .iter()
        .map(|f| {
            env.cmd()
                .args(["import", f])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(env.json(&["list"]).as_array().unwrap().len(), 6);
}
