//! Helpers: a temporary home and the binary run against it.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use std::process::Command;
use tempfile::TempDir;

/// A temporary directory with a home inside it.
pub struct Env {
    pub dir: TempDir,
    pub home: PathBuf,
}

impl Env {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        Env { dir, home }
    }

    /// An Env whose home lives under `parent` (for mounts).
    pub fn in_dir(parent: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Env {
            home: parent.join("home"),
            dir,
        }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_certkeeper"));
        c.arg("--home").arg(&self.home);
        c.env_remove("CERTKEEPER_HOME");
        // The proxy tests set these themselves; a proxy of the machine's must not
        // route the others.
        for var in [
            "https_proxy",
            "HTTPS_PROXY",
            "all_proxy",
            "ALL_PROXY",
            "no_proxy",
            "NO_PROXY",
        ] {
            c.env_remove(var);
        }
        c
    }

    /// Runs and returns the output, whatever the exit code.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Runs with an environment variable set.
    pub fn run_env(&self, args: &[&str], var: &str, value: &str) -> Output {
        self.cmd().args(args).env(var, value).output().unwrap()
    }

    /// Runs, asserts exit 0, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_success(&out, args);
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs with `--json`, asserts exit 0, parses stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// Writes a file in the temp dir and returns its path as a string.
    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// Thumbprints in the home, sorted (empty if there is no home yet).
    pub fn thumbprints(&self) -> Vec<String> {
        if !self.home.join("certkeeper.db").exists() {
            return Vec::new();
        }
        let list = self.json(&["list"]);
        let mut t: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                format!(
                    "{}:{}:{}",
                    e["thumbprint"].as_str().unwrap(),
                    e["store"],
                    e["has_key"]
                )
            })
            .collect();
        t.sort();
        t
    }
}

pub fn assert_success(out: &Output, args: &[&str]) {
    assert!(
        out.status.success(),
        "certkeeper {args:?} failed with {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs a tool (openssl, keytool) and asserts it worked; a missing one fails the test
/// with the Debian package to install.
pub fn tool(program: &str, args: &[&str]) -> Output {
    certkeeper_testkit::tools::run(program, args)
}

pub fn openssl(args: &[&str]) -> Output {
    tool("openssl", args)
}

/// `openssl pkcs12 -export` of leaf.pem and leaf.key (and chain.pem when present) in
/// the env's directory, into NAME with PASSWORD; returns the file's path.
pub fn openssl_pfx(env: &Env, name: &str, password: &str, extra: &[&str]) -> String {
    let (leaf, key, chain, out) = (
        env.path("leaf.pem"),
        env.path("leaf.key"),
        env.path("chain.pem"),
        env.path(name),
    );
    let passout = format!("pass:{password}");
    let mut args = vec![
        "pkcs12", "-export", "-in", &leaf, "-inkey", &key, "-out", &out, "-passout", &passout,
    ];
    if Path::new(&chain).exists() {
        args.extend(["-certfile", &chain]);
    }
    args.extend(extra);
    openssl(&args);
    out
}

/// `program` run as `uid` (and gid `uid`, no supplementary groups), a real other user
/// as the kernel sees it: `setpriv --reuid=N --regid=N --clear-groups -- program`.
pub fn as_uid(uid: u32, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = certkeeper_testkit::tools::command("setpriv");
    c.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .args(["--clear-groups", "--"])
        .arg(program);
    c
}
