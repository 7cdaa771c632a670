//! What ships besides the code. The systemd unit: systemd accepts every line of it,
//! it starts the binary where the README installs it, and its sandbox lets the agent
//! open the sockets it uses (and no others). The texts users read (README, docs,
//! every command's help) speak of the product only.

use std::collections::BTreeSet;
use std::path::Path;

use certkeeper_testkit::tools;

use crate::common::Env;

const UNIT: &str = "certkeeper-agent.service";

fn repo_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn unit() -> String {
    repo_file(&format!("packaging/{UNIT}"))
}

/// The values of every `KEY=` line of the unit, in order.
fn values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
        .collect()
}

/// The program of the unit's `ExecStart=` and the rest of the line.
fn exec_start(unit: &str) -> (&str, &str) {
    let lines = values(unit, "ExecStart");
    assert_eq!(lines.len(), 1, "one ExecStart= line: {lines:?}");
    lines[0].split_once(' ').unwrap_or((lines[0], ""))
}

#[test]
fn systemd_accepts_the_agent_unit() {
    let analyze = tools::require("systemd-analyze");
    // systemd-analyze checks that ExecStart's program exists: point a copy of the
    // unit at the binary just built, the rest unchanged.
    let text = unit();
    let (program, args) = exec_start(&text);
    let built = env!("CARGO_BIN_EXE_certkeeper");
    let copy = text.replace(
        &format!("ExecStart={program} {args}"),
        &format!("ExecStart={built} {args}"),
    );
    assert_ne!(copy, text);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(UNIT);
    std::fs::write(&path, copy).unwrap();
    let out = std::process::Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // A line systemd cannot parse is only a warning ("..., ignoring"), exit 0: any
    // message about the unit fails the test.
    let about_unit: Vec<&str> = stderr.lines().filter(|l| l.contains(UNIT)).collect();
    assert!(
        out.status.success() && about_unit.is_empty(),
        "systemd-analyze verify {UNIT}: {:?}\n{stderr}",
        out.status.code()
    );
}

#[test]
fn the_unit_starts_the_binary_where_the_readme_installs_it() {
    let text = unit();
    let (program, args) = exec_start(&text);
    assert!(args.starts_with("agent "), "{args}");
    let readme = repo_file("README.md");
    let installs: Vec<&str> = readme
        .lines()
        .filter_map(|l| {
            let l = l.trim().strip_prefix("install ")?;
            let l = l.split('#').next()?.trim();
            l.contains("target/release/certkeeper")
                .then(|| l.split_whitespace().last())
                .flatten()
        })
        .collect();
    assert_eq!(
        installs,
        [program],
        "README's install line against ExecStart"
    );
    // The home it points the agent at, and the export directory beside it (a fleet's
    // front-end writes the export files it is sent), are the paths its sandbox lets it
    // write.
    let home = values(&text, "Environment")
        .iter()
        .find_map(|v| v.strip_prefix("CERTKEEPER_HOME="))
        .expect("Environment=CERTKEEPER_HOME=");
    assert_eq!(
        values(&text, "ReadWritePaths"),
        [format!("{home} -{home}-exports")]
    );
}

#[test]
fn the_unit_allows_the_address_families_the_agent_uses_and_no_others() {
    let text = unit();
    let lines = values(&text, "RestrictAddressFamilies");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(!lines[0].starts_with('~'), "an allow list, not a deny list");
    let allowed: BTreeSet<&str> = lines[0].split_whitespace().collect();
    // AF_UNIX: the agent's socket. AF_INET, AF_INET6: the bindings' loopback
    // listeners and their outbound TLS to partners (by name, either family), etcd.
    // AF_NETLINK: sock_diag, the uid behind a loopback connection.
    let used: BTreeSet<&str> = ["AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"].into();
    assert_eq!(allowed, used);
    for never in ["AF_PACKET", "AF_BLUETOOTH", "AF_ALG", "AF_VSOCK"] {
        assert!(!allowed.contains(never), "{never}");
    }
    // The rest of the sandbox stays.
    for (key, value) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        (
            "ReadWritePaths",
            "/var/lib/certkeeper -/var/lib/certkeeper-exports",
        ),
        ("MemoryDenyWriteExecute", "yes"),
        ("RestrictRealtime", "yes"),
        ("LockPersonality", "yes"),
        ("SystemCallArchitectures", "native"),
    ] {
        assert_eq!(values(&text, key), [value], "{key}");
    }
}

fn entry_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// Words about how the project came to be, which mean nothing to a user.
fn making_of(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .collect();
    let mut found = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let next = words.get(i + 1).copied().unwrap_or("");
        let numbered = next.chars().all(|c| c.is_ascii_digit()) && !next.is_empty();
        // Quoted or possessive in any escaping: seed's, 'seed', seed'\''s.
        let bare = w.trim_matches('\'');
        let bare = bare.strip_suffix("'s").unwrap_or(bare);
        if matches!(bare, "seed" | "seeds")
            || (matches!(bare, "issue" | "issues" | "session" | "sessions" | "ticket") && numbered)
        {
            found.push(format!("{w} {next}"));
        }
    }
    found
}

#[test]
fn texts_users_read_speak_of_the_product_only() {
    assert_eq!(
        making_of(r"the seed's list (issue 2), the seed'\''s, seed\*(Aqs"),
        ["seed's list", "issue 2", "seed' ''s", "seed aqs"]
    );
    assert!(making_of("TLS session resumption; an issuer, issue 12a").is_empty());

    let mut texts: Vec<(String, String)> = Vec::new();
    for file in ["README.md", "ARCHITECTURE.md", "docs/agent-protocol.md"] {
        texts.push((file.into(), repo_file(file)));
    }
    let generated = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/generated");
    for entry in std::fs::read_dir(&generated).unwrap() {
        let path = entry.unwrap().path();
        let name = format!("docs/generated/{}", entry_name(&path));
        texts.push((name, std::fs::read_to_string(&path).unwrap()));
    }
    let env = Env::new();
    let top = env.ok(&["--help"]);
    let commands: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // A command's line; its wrapped description is indented further.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() > 10, "{top}");
    texts.push(("certkeeper --help".into(), top));
    for c in &commands {
        texts.push((format!("certkeeper {c} --help"), env.ok(&[c, "--help"])));
    }
    let bad: Vec<String> = texts
        .iter()
        .flat_map(|(name, text)| {
            making_of(text)
                .into_iter()
                .map(move |w| format!("{name}: {w}"))
        })
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
}
