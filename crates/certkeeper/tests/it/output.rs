//! What people and scripts read: one JSON document per command with `--json` (errors
//! too), fixes that work when followed, REFs by the names shown, aligned `list`
//! columns, and passwords asked for on a terminal.

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use certkeeper_testkit::{Pki, Spec, TestCert};
use serde_json::Value;
use unicode_width::UnicodeWidthStr;

use crate::common::{Env, openssl_pfx, stderr};

/// Stdout holds exactly one JSON value; returns it.
fn one_document(out: &Output, what: &str) -> Value {
    let values: Vec<Value> = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| {
            panic!(
                "{what}: stdout is not JSON ({e}): {:?}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                stderr(out)
            )
        });
    assert_eq!(values.len(), 1, "{what}: {values:?}");
    values.into_iter().next().unwrap()
}

/// Asserts `{"error": {"kind", "message", "fix"}}` with this kind and exit code.
fn assert_error(out: &Output, what: &str, kind: &str, code: i32) -> Value {
    let v = one_document(out, what);
    let error = &v["error"];
    assert_eq!(error["kind"], kind, "{what}: {v}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {v}"
    );
    assert!(
        error
            .get("fix")
            .is_some_and(|f| f.is_null() || f.is_string()),
        "{what}: {v}"
    );
    assert_eq!(out.status.code(), Some(code), "{what}: {}", stderr(out));
    // The human line stays on stderr.
    assert!(stderr(out).contains("certkeeper: ") || stderr(out).contains("error: "));
    v
}

#[test]
fn every_command_with_json_prints_one_document_on_errors() {
    let env = Env::new();
    let missing = env.path("missing.pem");
    let no_socket = env.path("no-agent.sock");
    // Before the home exists.
    let before: &[(&[&str], &str, i32)] = &[
        (&["list"], "environment", 2),
        (&["doctor"], "environment", 2),
        (&["bindings"], "environment", 2),
        (&["config"], "environment", 2),
        (&["agent", "--socket", &no_socket], "environment", 2),
    ];
    for (args, kind, code) in before {
        let mut all = args.to_vec();
        all.push("--json");
        assert_error(&env.run(&all), &format!("{args:?}"), kind, *code);
    }
    let pki = Pki::new();
    let leaf = env.write(
        "leaf.pem",
        format!("{}{}", pki.leaf.pem(), pki.leaf.key_pem()),
    );
    env.ok(&["import", &leaf, "--name", "partner"]);
    let home_file = env.write("not-a-dir", "x");
    let after: &[(&[&str], &str, i32)] = &[
        (&["show", "nosuch"], "not_found", 3),
        (&["path", "nosuch"], "not_found", 3),
        (&["move", "nosuch", "--to", "root"], "not_found", 3),
        (&["remove", "nosuch"], "not_found", 3),
        (&["export", "nosuch"], "not_found", 3),
        (&["grant", "nosuch", "user:root"], "not_found", 3),
        (&["revoke", "nosuch", "user:root"], "not_found", 3),
        (&["acl", "nosuch"], "not_found", 3),
        (&["show", "abc"], "input", 2),
        (&["grant", "partner", "user:no-such-user-here"], "input", 2),
        (
            &["keycheck", "partner", "--socket", &no_socket],
            "agent_unreachable",
            5,
        ),
        (
            &[
                "bind",
                "api",
                "--cert",
                "nosuch",
                "--upstream",
                "https://a.example",
            ],
            "not_found",
            3,
        ),
        (&["unbind", "nosuch"], "not_found", 3),
        (
            &[
                "request",
                "https://127.0.0.1:1/",
                "--cert",
                "partner",
                "--server-ca",
                "system",
                "--socket",
                &no_socket,
            ],
            "agent_unreachable",
            5,
        ),
        (&["doctor", "nosuch"], "not_found", 3),
        (&["config", "no_such_setting"], "input", 2),
        (&["export", "partner", "--format", "pfx"], "usage", 2),
        (&["import", &missing], "input", 2),
        // clap's usage errors, for every command.
        (&["init", "--bogus"], "usage", 2),
        (&["demo", "--bogus"], "usage", 2),
        (&["man", "--bogus"], "usage", 2),
        (&["completions", "no-such-shell"], "usage", 2),
        (&["list", "--store", "nowhere"], "usage", 2),
        (&["nosuch-command"], "usage", 2),
        (&[], "usage", 2),
        (
            &["request", "https://a.example/", "--key", "k.pem"],
            "usage",
            2,
        ),
    ];
    for (args, kind, code) in after {
        let mut all = args.to_vec();
        all.push("--json");
        assert_error(&env.run(&all), &format!("{args:?}"), kind, *code);
    }
    // init on a home that cannot be created.
    let out = Command::new(env!("CARGO_BIN_EXE_certkeeper"))
        .args(["init", "--json", "--home"])
        .arg(format!("{home_file}/home"))
        .output()
        .unwrap();
    assert_error(&out, "init", "environment", 2);

    // The fix is its own field; the message does not repeat it.
    let v = assert_error(
        &env.run(&["show", "nosuch", "--json"]),
        "show",
        "not_found",
        3,
    );
    assert!(
        v["error"]["fix"]
            .as_str()
            .unwrap()
            .contains("certkeeper list")
    );
    let v = assert_error(
        &env.run(&["keycheck", "partner", "--socket", &no_socket, "--json"]),
        "keycheck",
        "agent_unreachable",
        5,
    );
    assert!(
        v["error"]["fix"]
            .as_str()
            .unwrap()
            .contains("certkeeper agent")
    );
    assert!(!v["error"]["message"].as_str().unwrap().contains("start it"));
    // A clap error names what to use instead.
    let v = assert_error(
        &env.run(&["request", "https://a.example/", "--key", "k.pem", "--json"]),
        "request --key",
        "usage",
        2,
    );
    assert!(
        v["error"]["fix"].as_str().unwrap().contains("--cert"),
        "{v}"
    );
}

#[test]
fn every_command_with_json_prints_one_document_on_success_too() {
    let env = Env::new();
    let pki = Pki::new();
    let leaf = env.write(
        "leaf.pem",
        format!("{}{}", pki.leaf.pem(), pki.leaf.key_pem()),
    );
    env.ok(&["import", &leaf, "--name", "partner"]);
    for args in [
        &["export", "partner", "--format", "pem"][..],
        &["export", "partner"],
        &["man"],
        &["completions", "bash"],
        &["list", "--help"],
        &["--version"],
    ] {
        let mut all = args.to_vec();
        all.push("--json");
        let out = env.run(&all);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let v = one_document(&out, &format!("{args:?}"));
        assert!(v.is_object() && v.get("error").is_none(), "{args:?}: {v}");
    }
    let v = env.json(&["export", "partner", "--format", "pem"]);
    assert!(
        v["data"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
}

#[test]
fn a_partly_failed_import_is_one_document_with_the_error() {
    let env = Env::new();
    let pki = Pki::new();
    let good = env.write("root.pem", pki.root.pem());
    let bad = env.write("bad.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n");
    let out = env.run(&["import", &good, &bad, "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v = one_document(&out, "import");
    assert_eq!(v["imported"].as_array().unwrap().len(), 1);
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert!(errors[0]["file"].as_str().unwrap().ends_with("bad.pem"));
    assert_eq!(errors[0]["kind"], "input");
    assert_eq!(v["error"]["kind"], "input");
    assert!(v["error"]["message"].as_str().unwrap().contains("bad.pem"));
}

/// Runs the `certkeeper import <file> ...` a fix names, with `file` for `<file>`.
fn follow(env: &Env, fix: &str, file: &str) {
    let start = fix
        .find("certkeeper import <file>")
        .unwrap_or_else(|| panic!("no import command in the fix: {fix}"));
    let command: Vec<&str> = fix[start..]
        .split_whitespace()
        .skip(1)
        .take_while(|w| !w.starts_with('('))
        .map(|w| if w == "<file>" { file } else { w })
        .collect();
    env.ok(&command);
}

#[test]
fn following_the_fix_for_a_missing_root_or_intermediate_makes_the_path_valid() {
    let pki = Pki::new();
    // Only the intermediate imported: the missing issuer is the root.
    let env = Env::new();
    let leaf = env.write(
        "leaf.pem",
        format!("{}{}", pki.leaf.pem(), pki.leaf.key_pem()),
    );
    env.ok(&["import", &leaf, "--name", "partner"]);
    env.ok(&["import", &env.write("inter.pem", pki.inter.pem())]);
    let out = env.run(&["path", "partner", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = one_document(&out, "path");
    assert!(
        v["reason"].as_str().unwrap().contains("Test Root CA"),
        "{v}"
    );
    let fix = v["fix"].as_str().unwrap();
    follow(&env, fix, &env.write("root.pem", pki.root.pem()));
    let out = env.run(&["path", "partner"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "after following {fix:?}: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Only the root imported: the missing issuer is the intermediate.
    let env = Env::new();
    let leaf = env.write(
        "leaf.pem",
        format!("{}{}", pki.leaf.pem(), pki.leaf.key_pem()),
    );
    env.ok(&["import", &leaf, "--name", "partner"]);
    env.ok(&["import", &env.write("root.pem", pki.root.pem())]);
    let text = String::from_utf8(env.run(&["path", "partner"]).stdout).unwrap();
    let fix = text
        .lines()
        .find_map(|l| l.strip_prefix("Fix: "))
        .unwrap_or_else(|| panic!("{text}"));
    follow(&env, fix, &env.write("inter.pem", pki.inter.pem()));
    assert_eq!(env.run(&["path", "partner"]).status.code(), Some(0));
    // doctor gives the same fix.
    let env = Env::new();
    env.ok(&["import", &leaf, "--name", "partner"]);
    env.ok(&["import", &env.write("inter.pem", pki.inter.pem())]);
    let out = env.run(&["doctor", "partner", "--json"]);
    let checks = one_document(&out, "doctor");
    let fix = checks
        .as_array()
        .unwrap()
        .iter()
        .find_map(|c| {
            c["fix"]
                .as_str()
                .filter(|f| f.contains("certkeeper import"))
        })
        .unwrap_or_else(|| panic!("{checks}"))
        .to_string();
    follow(&env, &fix, &env.write("root.pem", pki.root.pem()));
    assert_eq!(env.run(&["path", "partner"]).status.code(), Some(0));
}

#[test]
fn a_ref_names_the_certificate_by_its_issued_to_names() {
    let env = Env::new();
    let mut spec = Spec::client("Partner Client 7");
    spec.dns = vec!["api-client.partner.example".into()];
    let pki = Pki::with_leaf(&spec);
    let leaf = env.write(
        "leaf.pem",
        format!("{}{}", pki.leaf.pem(), pki.leaf.key_pem()),
    );
    env.ok(&["import", &leaf, "--name", "partner"]);
    env.ok(&["import", &env.write("root.pem", pki.root.pem())]);
    let thumbprint = env.json(&["show", "partner"])["thumbprint"]
        .as_str()
        .unwrap()
        .to_string();
    for name in [
        "Partner Client 7",
        "partner client 7",
        "api-client.partner.example",
    ] {
        assert_eq!(
            env.json(&["show", name])["thumbprint"],
            thumbprint,
            "{name}"
        );
    }
    // The root by its CN.
    assert_eq!(env.json(&["show", "Test Root CA"])["store"], "root");
    // Not a substring: that is what subject: is for.
    let out = env.run(&["show", "Partner Client"]);
    assert_eq!(out.status.code(), Some(3));
    // A near miss lists the close names and says where to see them all.
    let out = env.run(&["show", "api-client.partner.exmaple"]);
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(
        err.contains("closest names: api-client.partner.example")
            && err.contains("certkeeper list"),
        "{err}"
    );
    let out = env.run(&["show", "partne"]);
    assert!(
        stderr(&out).contains("closest names: partner"),
        "{}",
        stderr(&out)
    );
    // A short thumbprint prefix says how long one must be.
    let out = env.run(&["show", &thumbprint[..6]]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("use at least 8 hex digits of the thumbprint"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        env.json(&["show", &thumbprint[..8]])["thumbprint"],
        thumbprint
    );
}

#[test]
fn a_home_from_before_the_names_index_is_migrated_and_filled() {
    let env = Env::new();
    let mut spec = Spec::client("Old Client");
    spec.dns = vec!["old.partner.example".into()];
    let pki = Pki::with_leaf(&spec);
    let leaf = env.write(
        "leaf.pem",
        format!("{}{}", pki.leaf.pem(), pki.leaf.key_pem()),
    );
    env.ok(&["import", &leaf]);
    // Take the home back to schema 3 (before entry_names, bindings.allow, bindings.proxy,
    // secrets, bindings.legacy_tls, the fleet's tables and columns, and list's indexes).
    {
        let db = rusqlite::Connection::open(env.home.join("certkeeper.db")).unwrap();
        db.execute_batch(
            "DROP TABLE entry_names; ALTER TABLE bindings DROP COLUMN allow; \
             ALTER TABLE bindings DROP COLUMN proxy; DROP TABLE secrets; \
             ALTER TABLE bindings DROP COLUMN legacy_tls; DROP TABLE fleet_members; \
             DROP TABLE fleet; ALTER TABLE entries DROP COLUMN managed; \
             ALTER TABLE bindings DROP COLUMN managed; DROP INDEX entries_listing; \
             DROP INDEX entries_not_after; PRAGMA user_version = 3;",
        )
        .unwrap();
    }
    assert_eq!(
        env.json(&["show", "old.partner.example"])["subject"],
        env.json(&["show", "Old Client"])["subject"]
    );
    let db = rusqlite::Connection::open(env.home.join("certkeeper.db")).unwrap();
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 9);
    // The later migrations ran too: a binding's proxy, sealed secrets, --legacy-tls and
    // the fleet have a place.
    db.execute_batch(
        "SELECT proxy FROM bindings; SELECT name, sealed FROM secrets; \
         SELECT legacy_tls FROM bindings; SELECT env, generation FROM fleet; \
         SELECT managed FROM entries; SELECT managed FROM bindings;",
    )
    .unwrap();
}

#[test]
fn list_columns_start_at_the_same_place_in_every_row() {
    let env = Env::new();
    let certs = [
        ("a", Spec::client("short").days(-1, 5)),
        (
            "a-much-longer-friendly-name-for-the-partner",
            Spec::client("Ünïcödé Client").days(-1, 4000),
        ),
        ("証明書", Spec::client("日本の取引先").days(-1, 400)),
    ];
    for (i, (name, spec)) in certs.iter().enumerate() {
        let cert = TestCert::self_signed(spec);
        let f = env.write(
            &format!("c{i}.pem"),
            format!("{}{}", cert.pem(), cert.key_pem()),
        );
        env.ok(&["import", &f, "--name", name]);
    }
    let text = env.ok(&["list"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    // The display column where each header starts.
    let header = lines[0];
    let starts: Vec<usize> = ["THUMBPRINT", "NAME", "KEY", "EXPIRES", "SUBJECT"]
        .iter()
        .map(|h| header[..header.find(h).unwrap()].width())
        .collect();
    for line in &lines[1..] {
        for &col in &starts {
            // The text up to `col` display columns, then the cell starts there.
            let mut width = 0;
            let mut at = None;
            for (i, c) in line.char_indices() {
                if width == col {
                    at = Some(i);
                    break;
                }
                width += c.to_string().width();
            }
            let i = at.unwrap_or_else(|| panic!("column {col} splits a character:\n{text}"));
            assert!(
                line[..i].ends_with(' ') && !line[i..].starts_with(' '),
                "a cell does not start at column {col}:\n{text}"
            );
        }
    }
    assert!(text.contains("a-much-longer-friendly-name-for…"), "{text}");
}

/// Runs certkeeper with a pseudo-terminal as stdin, stdout and stderr; each time the
/// output shows a prompt it types the next answer. Returns (exit code, all output).
fn on_terminal(env: &Env, args: &[&str], answers: &[&str]) -> (i32, String) {
    let pty = nix::pty::openpty(None, None).unwrap();
    let master = std::fs::File::from(pty.master);
    let slave = std::fs::File::from(pty.slave);
    let mut child = env
        .cmd()
        .args(args)
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    let mut reader = master.try_clone().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // EIO once the child and every copy of the slave are gone.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let mut writer = master;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut answered = 0;
    loop {
        if let Ok(chunk) = rx.recv_timeout(Duration::from_millis(50)) {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        let prompts = seen.matches("Password for").count() + seen.matches("Again").count();
        if answered < answers.len() && prompts > answered {
            writer
                .write_all(format!("{}\n", answers[answered]).as_bytes())
                .unwrap();
            answered += 1;
        }
        if let Some(status) = child.try_wait().unwrap() {
            while let Ok(chunk) = rx.recv_timeout(Duration::from_millis(200)) {
                seen.push_str(&String::from_utf8_lossy(&chunk));
            }
            return (status.code().unwrap_or(-1), seen);
        }
        assert!(Instant::now() < deadline, "certkeeper hangs: {seen}");
    }
}

#[test]
fn on_a_terminal_the_password_is_asked_for_without_echo() {
    let env = Env::new();
    let pki = Pki::new();
    pki.write_pem(env.dir.path());
    let pfx = openssl_pfx(&env, "partner.pfx", "s3cret-word", &[]);
    let (code, seen) = on_terminal(
        &env,
        &["import", &pfx, "--name", "partner"],
        &["s3cret-word"],
    );
    assert_eq!(code, 0, "{seen}");
    assert!(seen.contains("Password for "), "{seen}");
    assert!(
        !seen.contains("s3cret-word"),
        "the password was echoed: {seen}"
    );
    assert!(env.json(&["show", "partner"])["has_key"] == true);

    // A wrong password typed is the usual error.
    let env2 = Env::new();
    pki.write_pem(env2.dir.path());
    let pfx2 = openssl_pfx(&env2, "partner.pfx", "s3cret-word", &[]);
    let (code, seen) = on_terminal(&env2, &["import", &pfx2], &["not-it"]);
    assert_eq!(code, 2, "{seen}");
    assert!(seen.contains("wrong password"), "{seen}");

    // export --format pfx asks twice; the file opens with that password.
    let out = env.path("out.pfx");
    let (code, seen) = on_terminal(
        &env,
        &["export", "partner", "--format", "pfx", "--out", &out],
        &["n3w-pass", "n3w-pass"],
    );
    assert_eq!(code, 0, "{seen}");
    assert!(seen.contains("Again"), "{seen}");
    assert!(
        !seen.contains("n3w-pass"),
        "the password was echoed: {seen}"
    );
    let again = Env::new();
    let imported = again.run_env(&["import", &out, "--password-env", "PW"], "PW", "n3w-pass");
    assert!(imported.status.success(), "{}", stderr(&imported));
    // Two different answers write nothing.
    let other = env.path("other.pfx");
    let (code, seen) = on_terminal(
        &env,
        &["export", "partner", "--format", "pfx", "--out", &other],
        &["one", "two"],
    );
    assert_eq!(code, 2, "{seen}");
    assert!(seen.contains("differ"), "{seen}");
    assert!(!std::path::Path::new(&other).exists());

    // Not on a terminal: nothing is read, the error says how to give it.
    let out = env
        .cmd()
        .args(["import", &pfx])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--password-env, --password-file or --password-stdin"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn list_filters_by_store_expiry_and_name_and_streams_its_json() {
    let env = Env::new();
    let soon = TestCert::self_signed(&Spec::client("soon.partner.example").days(-1, 10));
    let later = TestCert::self_signed(&Spec::client("later.partner.example").days(-1, 300));
    let root = TestCert::self_signed(&Spec::ca("Filter Root"));
    for (name, cert, with_key) in [
        ("soon", &soon, true),
        ("Later-One", &later, true),
        ("root", &root, false),
    ] {
        let pem = if with_key {
            format!("{}{}", cert.pem(), cert.key_pem())
        } else {
            cert.pem()
        };
        let f = env.write(&format!("{name}.pem"), pem);
        env.ok(&["import", &f, "--name", name]);
    }
    let names = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["list"];
        all.extend(args);
        let v = env.json(&all);
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect()
    };
    // Expiring within 30 days: only the one with 10 days left.
    assert_eq!(names(&["--expiring", "30"]), ["soon"]);
    assert_eq!(names(&["--expiring", "400"]), ["Later-One", "soon"]);
    // A name, export name or "Issued to" name that begins with TEXT (the latter in
    // any case).
    assert_eq!(names(&["--search", "LATER.partner"]), ["Later-One"]);
    assert_eq!(names(&["--search", "Later-"]), ["Later-One"]);
    assert_eq!(names(&["--search", "partner"]), Vec::<String>::new());
    assert_eq!(names(&["--store", "root"]), ["root"]);
    assert_eq!(
        names(&["--store", "personal", "--expiring", "30"]),
        ["soon"]
    );
    // The JSON is one array whatever the count, and the text says when nothing matches.
    let out = env.run(&["list", "--search", "nothing", "--json"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    let out = env.run(&["list", "--expiring", "0"]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    // A reader that stops early (`| head -1`) ends the listing quietly.
    let mut child = env
        .cmd()
        .args(["list", "--json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    assert!(child.wait().unwrap().success());
}
