//! `doctor` breaks one thing at a time and names it with its fix; `demo` works from a
//! clean machine; every command's help shows an example; the generated man page and
//! completions match the CLI definition.

use std::os::unix::fs::PermissionsExt;

use certkeeper_testkit::{ExtendedKeyUsagePurpose, Pki, Spec};
use serde_json::Value;

use crate::agent::RunningAgent;
use crate::common::{Env, stderr};

/// A healthy home: the partner certificate with its chain, the service principal
/// granted, the export written, a binding, and the agent running.
fn healthy() -> (Env, RunningAgent, Pki) {
    let env = Env::new();
    // As /var/lib: other users may pass through to the export directory beside the home.
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let pki = Pki::new();
    let f = env.write(
        "leaf.pem",
        format!("{}{}", pki.leaf.pem(), pki.leaf.key_pem()),
    );
    env.ok(&["import", &f, "--name", "partner"]);
    let f = env.write(
        "chain.pem",
        format!("{}{}", pki.inter.pem(), pki.root.pem()),
    );
    env.ok(&["import", &f]);
    env.ok(&["config", "service_principals", "user:nobody"]);
    env.ok(&["grant", "partner", "user:nobody"]);
    env.ok(&["export", "partner", "--as", "partner.cer"]);
    env.ok(&[
        "bind",
        "partner-api",
        "--cert",
        "partner",
        "--upstream",
        "https://localhost:1/",
    ]);
    let agent = RunningAgent::start(&env);
    (env, agent, pki)
}

fn doctor(env: &Env, agent: &RunningAgent, extra: &[&str]) -> (i32, Vec<Value>) {
    let mut args = vec![
        "doctor",
        "--json",
        "--socket",
        agent.socket.to_str().unwrap(),
    ];
    args.extend(extra);
    let out = env.run(&args);
    let rows: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", stderr(&out)));
    (out.status.code().unwrap(), rows.as_array().unwrap().clone())
}

fn failing(rows: &[Value]) -> Vec<(String, String, String)> {
    rows.iter()
        .filter(|r| r["status"] == "fail")
        .map(|r| {
            (
                r["check"].as_str().unwrap().to_string(),
                r["detail"].as_str().unwrap().to_string(),
                r["fix"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn a_healthy_home_passes_every_check() {
    let (env, agent, _) = healthy();
    let (code, rows) = doctor(&env, &agent, &[]);
    assert_eq!(code, 0, "{rows:#?}");
    let checks: Vec<&str> = rows.iter().map(|r| r["check"].as_str().unwrap()).collect();
    for c in [
        "agent",
        "private-key",
        "key-acl",
        "path",
        "validity",
        "client-auth",
        "export",
        "binding",
    ] {
        assert!(checks.contains(&c), "no {c} check in {checks:?}");
    }
    assert!(rows.iter().all(|r| r["status"] == "ok"), "{rows:#?}");
    for r in &rows {
        for field in ["check", "subject", "status", "detail", "fix"] {
            assert!(r.get(field).is_some(), "doctor --json lacks {field}");
        }
    }
}

#[test]
fn each_broken_thing_is_one_failing_line_with_its_fix() {
    // The intermediate removed.
    let (env, agent, _) = healthy();
    env.ok(&["remove", "subject:Test Issuing"]);
    let (code, rows) = doctor(&env, &agent, &[]);
    assert_eq!(code, 1);
    let fails = failing(&rows);
    let path = fails
        .iter()
        .find(|f| f.0 == "path")
        .expect("a path failure");
    assert!(
        path.1.contains(
            "the issuer of CN=client.example, O=certkeeper tests is missing: CN=Test Issuing CA"
        ),
        "{path:?}"
    );
    assert!(
        path.2
            .contains("certkeeper import <file> (a self-signed root goes to root"),
        "{path:?}"
    );

    // The root untrusted.
    let (env, agent, _) = healthy();
    env.ok(&["move", "subject:Test Root", "--to", "other"]);
    let fails = failing(&doctor(&env, &agent, &[]).1);
    let path = fails.iter().find(|f| f.0 == "path").unwrap();
    assert!(
        path.1
            .contains("the root CN=Test Root CA, O=certkeeper tests is not trusted"),
        "{path:?}"
    );
    assert!(
        path.2
            .contains("it is in other, not in root; if you trust it: certkeeper move ")
            && path.2.ends_with("--to root"),
        "{path:?}"
    );

    // The principal revoked.
    let (env, agent, _) = healthy();
    env.ok(&["revoke", "partner", "user:nobody"]);
    let fails = failing(&doctor(&env, &agent, &[]).1);
    assert_eq!(
        fails,
        [(
            "key-acl".to_string(),
            "does not grant user:nobody".to_string(),
            "certkeeper grant partner user:nobody".to_string()
        )]
    );

    // The agent stopped.
    let (env, mut agent, _) = healthy();
    agent.stop();
    let fails = failing(&doctor(&env, &agent, &[]).1);
    assert_eq!(fails.len(), 1, "{fails:?}");
    assert_eq!(fails[0].0, "agent");
    assert!(fails[0].1.contains("not reachable"));
    assert_eq!(
        fails[0].2,
        "start it: certkeeper agent (or: systemctl start certkeeper-agent)"
    );

    // The export deleted.
    let (env, agent, _) = healthy();
    let exports = env.dir.path().join("home-exports");
    std::fs::remove_file(exports.join("partner.cer")).unwrap();
    let fails = failing(&doctor(&env, &agent, &[]).1);
    assert_eq!(fails.len(), 1, "{fails:?}");
    assert_eq!(fails[0].0, "export");
    assert!(
        fails[0].1 == format!("{} is missing", exports.join("partner.cer").display()),
        "{fails:?}"
    );
    assert_eq!(fails[0].2, "certkeeper export partner --as partner.cer");
    // Where an older certkeeper wrote it, inside the private home: said so.
    let inside = env.home.join("exports/partner.cer");
    std::fs::create_dir(env.home.join("exports")).unwrap();
    std::fs::write(&inside, b"der").unwrap();
    let fails = failing(&doctor(&env, &agent, &[]).1);
    assert!(
        fails[0].1.ends_with(&format!(
            "is missing ({} is inside the private home; export again to write it where \
             applications read it)",
            inside.display()
        )),
        "{fails:?}"
    );

    // The export where the service principal cannot reach it, or cannot read it.
    let (env, agent, _) = healthy();
    let dir = env.dir.path();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let fails = failing(&doctor(&env, &agent, &[]).1);
    assert_eq!(fails.len(), 1, "{fails:?}");
    assert_eq!(fails[0].0, "export");
    assert!(
        fails[0].1.ends_with(&format!(
            "but user:nobody cannot read it: {} is mode 0700",
            dir.display()
        )),
        "{fails:?}"
    );
    assert_eq!(fails[0].2, format!("chmod o+x {}", dir.display()));
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let file = dir.join("home-exports/partner.cer");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let fails = failing(&doctor(&env, &agent, &[]).1);
    assert_eq!(fails.len(), 1, "{fails:?}");
    assert_eq!(fails[0].2, format!("chmod o+r {}", file.display()));

    // Another certificate in the export's place; then a directory anyone may write.
    let (env, agent, pki) = healthy();
    let exports = env.dir.path().join("home-exports");
    std::fs::write(exports.join("partner.cer"), &pki.inter.der).unwrap();
    let fails = failing(&doctor(&env, &agent, &[]).1);
    assert_eq!(fails.len(), 1, "{fails:?}");
    assert_eq!(
        fails[0].1,
        format!(
            "{} holds another certificate",
            exports.join("partner.cer").display()
        )
    );
    assert_eq!(
        fails[0].2,
        "certkeeper export partner --as partner.cer --force"
    );
    std::fs::set_permissions(&exports, std::fs::Permissions::from_mode(0o777)).unwrap();
    let fails = failing(&doctor(&env, &agent, &[]).1);
    assert_eq!(fails.len(), 1, "{fails:?}");
    assert_eq!(
        fails[0].1,
        format!(
            "export directory {0} is writable by group or others (mode 0777); fix it with: \
             chmod go-w {0}",
            exports.display()
        )
    );

    // The certificate expired (seen from the future).
    let (env, agent, _) = healthy();
    let fails = failing(&doctor(&env, &agent, &["--at", "2099-01-01"]).1);
    let validity = fails
        .iter()
        .find(|f| f.0 == "validity")
        .expect("validity fails");
    assert!(validity.1.starts_with("expired on "), "{validity:?}");
    assert!(validity.2.contains("renewed certificate"));
    // ... and a warning ahead of it.
    let (code, rows) = doctor(&env, &agent, &["--at", &in_days(350)]);
    assert_eq!(code, 0);
    let warn = rows.iter().find(|r| r["check"] == "validity").unwrap();
    assert_eq!(warn["status"], "warn");
    assert!(warn["detail"].as_str().unwrap().starts_with("expires in "));

    // A binding to a certificate without clientAuth.
    let (env, agent, _) = healthy();
    let mut spec = Spec::client("server-only.example");
    spec.eku = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let other = Pki::with_leaf(&spec);
    let f = env.write(
        "other.pem",
        format!(
            "{}{}{}{}",
            other.leaf.pem(),
            other.leaf.key_pem(),
            other.inter.pem(),
            other.root.pem()
        ),
    );
    env.ok(&["import", &f, "--name", "server-only"]);
    env.ok(&["grant", "server-only", "user:nobody"]);
    env.ok(&[
        "bind",
        "wrong",
        "--cert",
        "server-only",
        "--upstream",
        "https://localhost:1/",
    ]);
    let fails = failing(&doctor(&env, &agent, &[]).1);
    assert!(
        fails
            .iter()
            .any(|f| f.0 == "client-auth" && f.1.contains("serverAuth without clientAuth")),
        "{fails:?}"
    );
    let binding = fails
        .iter()
        .find(|f| f.0 == "binding")
        .expect("binding fails");
    assert!(binding.1.contains("is not for clientAuth"), "{binding:?}");
}

fn in_days(days: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::days(days);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[test]
fn doctor_online_makes_a_handshake_with_the_upstream() {
    let (env, agent, _) = healthy();
    env.ok(&["unbind", "partner-api"]);
    env.ok(&[
        "bind",
        "down",
        "--cert",
        "partner",
        "--upstream",
        "https://localhost:1/",
    ]);
    let (code, rows) = doctor(&env, &agent, &["--online"]);
    assert_eq!(code, 1);
    let upstream = rows.iter().find(|r| r["check"] == "upstream").unwrap();
    assert_eq!(upstream["status"], "fail");
    assert!(
        upstream["detail"]
            .as_str()
            .unwrap()
            .contains("refused the connection"),
        "{upstream}"
    );
}

#[test]
fn demo_works_on_a_clean_machine() {
    let env = Env::new();
    let out = env
        .cmd()
        .arg("demo")
        .env("TMPDIR", env.dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("demo: all 12 steps worked"));
    let err = stderr(&out);
    for step in [
        "[3] Import partner.pfx",
        "valid: the root is trusted",
        "keycheck: the agent signed",
        "-> 200: hello from the partner's service",
        "removed",
    ] {
        assert!(err.contains(step), "missing {step:?} in\n{err}");
    }
    // Nothing left behind.
    let left: Vec<_> = std::fs::read_dir(env.dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn every_command_help_shows_an_example() {
    let env = Env::new();
    let top = env.ok(&["--help"]);
    let commands: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // Wrapped description lines are indented further than command names.
        .filter(|l| !l[2..].starts_with(' '))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() >= 20, "{commands:?}");
    for c in &commands {
        let help = env.ok(&[c, "--help"]);
        assert!(
            help.contains("Example"),
            "certkeeper {c} --help has no example"
        );
    }
}

#[test]
fn generated_man_page_and_completions_match_the_cli() {
    let env = Env::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/generated");
    for (file, args) in [
        ("certkeeper.1", vec!["man"]),
        ("certkeeper.bash", vec!["completions", "bash"]),
        ("certkeeper.zsh", vec!["completions", "zsh"]),
        ("certkeeper.fish", vec!["completions", "fish"]),
    ] {
        let now = env.ok(&args);
        let path = root.join(file);
        if std::env::var_os("UPDATE_GENERATED").is_some() {
            std::fs::create_dir_all(&root).unwrap();
            std::fs::write(&path, &now).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == now,
            "{} is out of date: run UPDATE_GENERATED=1 cargo test generated",
            path.display()
        );
    }
}
