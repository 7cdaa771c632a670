//! `certkeeper path`: the tree, the verdict, and for each kind of failure the reason
//! and the fix a person can act on; hostile stores in bounded time.

use std::time::{Duration, Instant};

use certkeeper_testkit::ExtendedKeyUsagePurpose;
use certkeeper_testkit::{Pki, Spec, TestCert};
use serde_json::Value;

use crate::common::{Env, stderr};

fn path(env: &Env, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["path"];
    all.extend(args);
    all.push("--json");
    let out = env.run(&all);
    let code = out.status.code().unwrap();
    assert!(code == 0 || code == 1, "{}", stderr(&out));
    (code, serde_json::from_slice(&out.stdout).unwrap())
}

fn import(env: &Env, name: &str, cert: &TestCert) {
    let f = env.write(name, cert.pem());
    env.ok(&["import", &f]);
}

/// Imports `cert` with its private key (into personal).
fn import_with_key(env: &Env, cert: &TestCert) {
    let f = env.write("with-key.pem", format!("{}{}", cert.pem(), cert.key_pem()));
    env.ok(&["import", &f]);
}

fn import_to(env: &Env, name: &str, cert: &TestCert, store: &str) {
    let f = env.write(name, cert.pem());
    env.ok(&["import", &f, "--store", store]);
}

/// Leaf with its key (personal) and the given CAs.
fn setup(pki: &Pki, with_inter: bool, with_root: bool) -> Env {
    let env = Env::new();
    let both = env.write(
        "leaf.pem",
        format!("{}{}", pki.leaf.pem(), pki.leaf.key_pem()),
    );
    env.ok(&["import", &both, "--name", "partner"]);
    if with_inter {
        import(&env, "inter.pem", &pki.inter);
    }
    if with_root {
        import(&env, "root.pem", &pki.root);
    }
    env
}

#[test]
fn a_complete_path_is_valid_and_shown_root_first() {
    let pki = Pki::new();
    let env = setup(&pki, true, true);
    let out = env.run(&["path", "partner"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("CN=")).collect();
    assert!(
        lines[1].contains("Test Root CA")
            && lines[1].contains("root")
            && lines[1].contains("trusted root"),
        "{text}"
    );
    assert!(
        lines[2].contains("└─ CN=Test Issuing CA") && lines[2].contains("intermediate"),
        "{text}"
    );
    assert!(
        lines[3].contains("└─ CN=client.example") && lines[3].contains("personal"),
        "{text}"
    );
    assert!(text.contains("This certificate is OK."));

    let (_, v) = path(&env, &["partner"]);
    assert_eq!(v["valid"], true);
    assert_eq!(v["reason"], Value::Null);
    let chain = v["chain"].as_array().unwrap();
    let stores: Vec<&str> = chain.iter().map(|l| l["store"].as_str().unwrap()).collect();
    assert_eq!(stores, ["personal", "intermediate", "root"]);
    assert!(chain.iter().all(|l| l["status"] == "ok"));
    // show and export --chain use the same path.
    assert!(
        env.ok(&["show", "partner"])
            .contains("Certification path:       valid, up to the trusted root")
    );
    let pem = env.path("chain.pem");
    env.ok(&[
        "export", "partner", "--format", "pem", "--chain", "--out", &pem,
    ]);
    assert_eq!(
        std::fs::read_to_string(&pem)
            .unwrap()
            .matches("BEGIN CERTIFICATE")
            .count(),
        3
    );
}

#[test]
fn a_missing_intermediate_is_named_with_its_key_id_and_download_url() {
    let pki = Pki::with_leaf(
        &Spec::client("client.example").aia("http://pki.partner.example/issuing.cer"),
    );
    let env = setup(&pki, false, true);
    let (code, v) = path(&env, &["partner"]);
    assert_eq!(code, 1);
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.contains("issuer of CN=client.example") && reason.contains("CN=Test Issuing CA"),
        "{reason}"
    );
    assert!(
        reason.contains("http://pki.partner.example/issuing.cer"),
        "{reason}"
    );
    assert!(reason.contains("key id "), "{reason}");
    let fix = v["fix"].as_str().unwrap();
    assert!(
        fix.contains("certkeeper import <file> (a self-signed root goes to root"),
        "{fix}"
    );
    let chain = v["chain"].as_array().unwrap();
    assert_eq!(chain.last().unwrap()["status"], "missing");
    // import tells it at once too.
    let again = env.write(
        "again.pem",
        format!("{}{}", pki.leaf.pem(), pki.leaf.key_pem()),
    );
    let text = env.ok(&["import", &again]);
    assert!(text.contains("path: NOT VALID: the issuer of"), "{text}");
    // Importing the intermediate fixes it.
    import(&env, "inter.pem", &pki.inter);
    assert_eq!(path(&env, &["partner"]).0, 0);
}

#[test]
fn an_untrusted_root_says_where_it_is_and_the_move_that_trusts_it() {
    let pki = Pki::new();
    let env = setup(&pki, true, false);
    import_to(&env, "root.pem", &pki.root, "other");
    let (code, v) = path(&env, &["partner"]);
    assert_eq!(code, 1);
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("the root CN=Test Root CA"),
        "{v}"
    );
    let fix = v["fix"].as_str().unwrap().to_string();
    assert!(fix.contains("it is in other, not in root"), "{fix}");
    // The fix works as printed.
    let cmd = &fix[fix.find("certkeeper move").unwrap()..];
    let args: Vec<&str> = cmd.split_whitespace().skip(1).collect();
    env.ok(&args);
    assert_eq!(path(&env, &["partner"]).0, 0);
}

#[test]
fn expiry_and_not_yet_valid_name_the_element_and_the_date() {
    let pki = Pki::new();
    let env = setup(&pki, true, true);
    let (code, v) = path(&env, &["partner", "--at", "2099-01-01"]);
    assert_eq!(code, 1);
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("CN=client.example, O=certkeeper tests expired on"),
        "{v}"
    );
    assert_eq!(v["chain"][0]["status"], "expired");
    assert!(v["fix"].as_str().unwrap().contains("renewed certificate"));
    let (code, v) = path(&env, &["partner", "--at", "2001-01-01T00:00:00Z"]);
    assert_eq!(code, 1);
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("is not valid before"),
        "{v}"
    );
    assert_eq!(
        env.run(&["path", "partner", "--at", "next tuesday"])
            .status
            .code(),
        Some(2)
    );

    // An expired intermediate.
    let root = TestCert::self_signed(&Spec::ca("Old Root"));
    let inter = root.issue(&Spec::ca("Old Issuing CA").days(-400, -10));
    let leaf = inter.issue(&Spec::client("late.example").days(-20, 300));
    let env = Env::new();
    import_with_key(&env, &leaf);
    import(&env, "i.pem", &inter);
    import(&env, "r.pem", &root);
    let (code, v) = path(&env, &["subject:late.example"]);
    assert_eq!(code, 1);
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .starts_with("CN=Old Issuing CA"),
        "{v}"
    );
    assert!(
        v["fix"]
            .as_str()
            .unwrap()
            .contains("renewed CA certificate"),
        "{v}"
    );
}

#[test]
fn a_certificate_without_client_auth_is_not_for_client_auth() {
    let mut spec = Spec::client("server-only.example");
    spec.eku = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let pki = Pki::with_leaf(&spec);
    let env = setup(&pki, true, true);
    let (code, v) = path(&env, &["partner"]);
    assert_eq!(code, 1);
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.contains("is not for clientAuth") && reason.contains("serverAuth"),
        "{reason}"
    );
    assert_eq!(path(&env, &["partner", "--purpose", "server-auth"]).0, 0);
    assert_eq!(path(&env, &["partner", "--purpose", "any"]).0, 0);
}

#[test]
fn a_ca_with_the_right_name_and_the_wrong_key_is_a_bad_signature() {
    let pki = Pki::new();
    let env = setup(&pki, false, true);
    // Same name as the real issuing CA, another key, signed by the same root.
    let impostor = pki.root.issue(&Spec::ca("Test Issuing CA"));
    import(&env, "impostor.pem", &impostor);
    let (code, v) = path(&env, &["partner"]);
    assert_eq!(code, 1);
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.contains("does not verify with the key of CN=Test Issuing CA"),
        "{reason}"
    );
    assert_eq!(v["chain"][0]["status"], "bad_signature");
}

#[test]
fn disallowed_wins_over_a_trusted_path() {
    let pki = Pki::new();
    let env = setup(&pki, true, true);
    env.ok(&["move", "subject:Test Issuing", "--to", "disallowed"]);
    let (code, v) = path(&env, &["partner"]);
    assert_eq!(code, 1);
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("CN=Test Issuing CA, O=certkeeper tests is distrusted"),
        "{v}"
    );
    // The same key under another certificate is distrusted too.
    env.ok(&["move", "subject:Test Issuing", "--to", "intermediate"]);
    assert_eq!(path(&env, &["partner"]).0, 0);
    let twin = pki.root.issue_for(&Spec::ca("Test Issuing CA"), &pki.inter);
    import_to(&env, "twin.pem", &twin, "disallowed");
    let (code, v) = path(&env, &["partner"]);
    assert_eq!(code, 1, "{v} {}", env.ok(&["list"]));
    // The leaf itself disallowed.
    env.ok(&["remove", &twin_thumb(&env)]);
    env.ok(&["move", "partner", "--to", "disallowed"]);
    let (code, v) = path(&env, &["partner"]);
    assert_eq!(code, 1);
    assert_eq!(v["chain"][0]["status"], "disallowed");
}

fn twin_thumb(env: &Env) -> String {
    let list = env.json(&["list", "--store", "disallowed"]);
    list[0]["thumbprint"].as_str().unwrap().to_string()
}

#[test]
fn of_two_issuers_with_one_name_the_one_that_validates_is_chosen() {
    // The CA was renewed: same name, new key. The old one has expired.
    let root = TestCert::self_signed(&Spec::ca("Renewed Root"));
    let old = root.issue(&Spec::ca("Renewed Issuing CA").days(-800, -5));
    let new = root.issue_for(&Spec::ca("Renewed Issuing CA"), &old);
    let leaf = old.issue(&Spec::client("renewed.example").days(-1, 100));
    let env = Env::new();
    import_with_key(&env, &leaf);
    import(&env, "old.pem", &old);
    import(&env, "new.pem", &new);
    import(&env, "root.pem", &root);
    let (code, v) = path(&env, &["subject:renewed.example"]);
    assert_eq!(code, 0, "{v}");
    let new_thumb = env
        .json(&["list", "--store", "intermediate"])
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["not_after"].as_str().unwrap() > "2027")
        .unwrap()["thumbprint"]
        .clone();
    assert_eq!(v["chain"][1]["thumbprint"], new_thumb);

    // Cross-signed: the leaf's CA is signed by an untrusted old root and by a trusted
    // new root under the same name and key.
    let old_root = TestCert::self_signed(&Spec::ca("Legacy Root"));
    let new_root = TestCert::self_signed(&Spec::ca("Modern Root"));
    let ca = new_root.issue(&Spec::ca("Bridge CA"));
    let cross = old_root.issue_for(&Spec::ca("Bridge CA"), &ca);
    let leaf = ca.issue(&Spec::client("bridged.example"));
    let env = Env::new();
    import_with_key(&env, &leaf);
    import(&env, "cross.pem", &cross);
    import(&env, "ca.pem", &ca);
    import(&env, "new-root.pem", &new_root);
    import_to(&env, "old-root.pem", &old_root, "other");
    let (code, v) = path(&env, &["subject:bridged.example"]);
    assert_eq!(code, 0, "{v}");
    assert!(
        v["chain"][2]["subject"]
            .as_str()
            .unwrap()
            .contains("Modern Root")
    );
}

#[test]
fn loops_long_chains_and_damaged_entries_end_with_a_reason_in_bounded_time() {
    // A loop of cross-signed CAs with no root.
    let a = TestCert::self_signed(&Spec::ca("Loop A"));
    let b = a.issue(&Spec::ca("Loop B"));
    let a_by_b = b.issue_for(&Spec::ca("Loop A"), &a);
    let leaf = b.issue(&Spec::client("looped.example"));
    let env = Env::new();
    import_with_key(&env, &leaf);
    import_to(&env, "b.pem", &b, "intermediate");
    import_to(&env, "ab.pem", &a_by_b, "intermediate");
    let start = Instant::now();
    let (code, v) = path(&env, &["subject:looped.example"]);
    assert_eq!(code, 1);
    assert!(!v["reason"].as_str().unwrap().is_empty());
    assert!(start.elapsed() < Duration::from_secs(5));

    // A chain of 50 CAs below a trusted root.
    let env = Env::new();
    let root = TestCert::self_signed(&Spec::ca("Deep Root"));
    let mut cas = vec![root.issue(&Spec::ca("Deep CA 0"))];
    for i in 1..50 {
        let next = cas[i - 1].issue(&Spec::ca(&format!("Deep CA {i}")));
        cas.push(next);
    }
    let leaf = cas[49].issue(&Spec::client("deep.example"));
    let bundle: String = cas.iter().map(TestCert::pem).collect();
    let f = env.write("cas.pem", bundle);
    env.ok(&["import", &f]);
    import(&env, "root.pem", &root);
    import_with_key(&env, &leaf);
    let start = Instant::now();
    let (code, v) = path(&env, &["subject:deep.example"]);
    assert_eq!(code, 1);
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("more than 8 intermediate CAs"),
        "{v}"
    );
    assert!(start.elapsed() < Duration::from_secs(5));

    // An entry whose stored DER was damaged is passed over, not a crash.
    let pki = Pki::new();
    let env = setup(&pki, true, true);
    let inter = env.json(&["show", "subject:Test Issuing"])["thumbprint"]
        .as_str()
        .unwrap()
        .to_string();
    let db = rusqlite::Connection::open(env.home.join("certkeeper.db")).unwrap();
    db.execute(
        "UPDATE entries SET der = x'3003020100' WHERE thumbprint = ?1",
        [&inter],
    )
    .unwrap();
    drop(db);
    let (code, v) = path(&env, &["partner"]);
    assert_eq!(code, 1);
    assert!(v["reason"].as_str().unwrap().contains("is missing"), "{v}");
}
