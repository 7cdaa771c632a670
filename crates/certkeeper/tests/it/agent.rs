//! The key isolation agent as real processes: the agent binary on a temporary socket,
//! clients as other uids (started with setpriv), granted by uid, by group, denied,
//! revoked while it runs; a stopped agent, a socket replaced by a file, oversized,
//! garbage and wrong-version requests, a client that leaves mid-request, 50 at once.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use certkeeper_testkit::tools::{self, TestAccount};
use certkeeper_testkit::{KeyKind, Pki, Spec};

use crate::common::{Env, stderr};

/// The binary, copied where every uid can execute it (the build tree may not be).
pub fn shared_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // One directory per build of the binary (its inode and mtime), reused by every
        // run of the tests, so runs leave at most one behind in /tmp.
        let built = std::fs::metadata(env!("CARGO_BIN_EXE_certkeeper")).unwrap();
        let dir = std::env::temp_dir().join(format!(
            "certkeeper-bin-{}-{}",
            std::os::unix::fs::MetadataExt::ino(&built),
            std::os::unix::fs::MetadataExt::mtime(&built)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.join("certkeeper");
        if bin.exists() {
            return bin;
        }
        // A hard link when it can: a copy keeps the file open for writing a moment,
        // and a command another test forks meanwhile inherits that descriptor until
        // its exec, which makes executing the copy fail with ETXTBSY.
        if std::fs::hard_link(env!("CARGO_BIN_EXE_certkeeper"), &bin).is_err() {
            let staged = dir.join("certkeeper.partial");
            std::fs::copy(env!("CARGO_BIN_EXE_certkeeper"), &staged).unwrap();
            std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::rename(&staged, &bin).unwrap();
            // Let any child forked during the copy reach its exec.
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        bin
    })
}

/// A running agent on a socket in a world-reachable directory; killed on drop.
pub struct RunningAgent {
    pub child: Child,
    pub socket: PathBuf,
    pub _dir: tempfile::TempDir,
}

impl RunningAgent {
    pub fn start(env: &Env) -> RunningAgent {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let socket = dir.path().join("agent.sock");
        let child = Command::new(shared_binary())
            .arg("--home")
            .arg(&env.home)
            .arg("agent")
            .arg("--socket")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while !socket.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the agent did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        RunningAgent {
            child,
            socket,
            _dir: dir,
        }
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn stop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `certkeeper keycheck REF` as uid/gid (root when None), with no home given.
pub fn keycheck_as(agent: &RunningAgent, reference: &str, ids: Option<(u32, u32)>) -> Output {
    keycheck_cmd(agent, reference, ids).output().unwrap()
}

fn keycheck_cmd(agent: &RunningAgent, reference: &str, ids: Option<(u32, u32)>) -> Command {
    let mut cmd = match ids {
        Some((uid, gid)) => {
            let mut c = tools::command("setpriv");
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={gid}"))
                .arg("--clear-groups")
                .arg("--")
                .arg(shared_binary());
            c
        }
        None => Command::new(shared_binary()),
    };
    cmd.args(["keycheck", reference, "--socket"])
        .arg(&agent.socket)
        .env_remove("CERTKEEPER_HOME")
        .env("HOME", "/nonexistent");
    cmd
}

fn setup(kind: KeyKind) -> Env {
    let env = Env::new();
    let pki = Pki::with_leaf(&Spec::client("agent.example").key(kind));
    let f = env.write(
        "leaf.pem",
        format!("{}{}", pki.leaf.pem(), pki.leaf.key_pem()),
    );
    env.ok(&["import", &f, "--name", "partner"]);
    env
}

#[test]
fn keys_are_used_by_root_the_granted_and_nobody_else() {
    let env = setup(KeyKind::EcP256);
    let agent = RunningAgent::start(&env);
    let out = keycheck_as(&agent, "partner", None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("can use the key of CN=agent.example"));

    // A stranger: denied, exit 4, one line.
    let out = keycheck_as(&agent, "partner", Some((4321, 4321)));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    // The same answer as for a name that does not exist: nothing about the key.
    assert!(
        stderr(&out).contains("uid 4321 may use no key that matches \"partner\""),
        "{}",
        stderr(&out)
    );
    assert_eq!(stderr(&out).lines().count(), 1);

    // Granted by uid, then revoked while the agent runs: takes effect at once.
    env.ok(&["grant", "partner", "uid:4321"]);
    let out = keycheck_as(&agent, "partner", Some((4321, 4321)));
    assert!(out.status.success(), "{}", stderr(&out));
    env.ok(&["revoke", "partner", "uid:4321"]);
    assert_eq!(
        keycheck_as(&agent, "partner", Some((4321, 4321)))
            .status
            .code(),
        Some(4)
    );

    // Granted by primary gid.
    env.ok(&["grant", "partner", "gid:5555"]);
    assert!(
        keycheck_as(&agent, "partner", Some((4444, 5555)))
            .status
            .success()
    );
    assert_eq!(
        keycheck_as(&agent, "partner", Some((4444, 4444)))
            .status
            .code(),
        Some(4)
    );

    // Granted by supplementary group membership from the group database.
    let account = TestAccount::create();
    let ids = Some((account.uid, account.gid));
    assert_eq!(keycheck_as(&agent, "partner", ids).status.code(), Some(4));
    env.ok(&["grant", "partner", &format!("group:{}", account.group)]);
    let out = keycheck_as(&agent, "partner", ids);
    assert!(out.status.success(), "{}", stderr(&out));

    // The audit log saw uses and denials, and is private.
    let log = std::fs::read_to_string(env.home.join("audit.log")).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["uid"] == 4321 && l["outcome"] == "denied")
    );
    assert!(
        lines
            .iter()
            .any(|l| l["uid"] == 4321 && l["outcome"] == "allowed" && l["op"] == "sign")
    );
    assert!(
        lines
            .iter()
            .all(|l| l["pid"].is_number() && l["time"].is_string() && l["thumbprint"].is_string())
    );
    let mode = std::fs::metadata(env.home.join("audit.log"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn every_key_type_signs_through_the_agent() {
    for kind in [
        KeyKind::EcP256,
        KeyKind::EcP384,
        KeyKind::Rsa2048,
        KeyKind::Ed25519,
    ] {
        let env = setup(kind);
        let agent = RunningAgent::start(&env);
        let out = keycheck_as(&agent, "partner", None);
        assert!(out.status.success(), "{kind:?}: {}", stderr(&out));
    }
}

#[test]
fn a_stopped_agent_or_a_file_in_its_place_is_exit_5() {
    let env = setup(KeyKind::EcP256);
    let mut agent = RunningAgent::start(&env);
    agent.stop();
    assert!(
        !agent.socket.exists(),
        "the agent removes its socket when it stops"
    );
    let out = keycheck_as(&agent, "partner", None);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("start it with: certkeeper agent"));
    std::fs::write(&agent.socket, "not a socket").unwrap();
    let out = keycheck_as(&agent, "partner", Some((4321, 4321)));
    assert_eq!(out.status.code(), Some(5));
    assert!(stderr(&out).contains("not a socket"), "{}", stderr(&out));
    // And the agent refuses to start over it rather than deleting a file.
    let out = env.run(&["agent", "--socket", agent.socket.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is not a socket"));
}

pub fn raw_exchange(socket: &Path, bytes: &[u8]) -> Option<serde_json::Value> {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(bytes).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut buf = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).ok()?;
    serde_json::from_slice(&buf).ok()
}

pub fn framed(json: &str) -> Vec<u8> {
    let mut v = (json.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(json.as_bytes());
    v
}

#[test]
fn hostile_requests_get_errors_and_the_agent_keeps_serving() {
    let env = setup(KeyKind::EcP256);
    let mut agent = RunningAgent::start(&env);
    let huge = (100_000_000u32).to_be_bytes();
    assert_eq!(
        raw_exchange(&agent.socket, &huge).unwrap()["error"]["code"],
        "too_large"
    );
    let garbage = framed("this is not json {");
    assert_eq!(
        raw_exchange(&agent.socket, &garbage).unwrap()["error"]["code"],
        "bad_request"
    );
    let future = framed(r#"{"v": 4, "op": "hello"}"#);
    let answer = raw_exchange(&agent.socket, &future).unwrap();
    assert_eq!(answer["error"]["code"], "unsupported_version");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("version 3")
    );
    let unknown = framed(r#"{"v": 3, "op": "export_private_key", "thumbprint": "x"}"#);
    assert_eq!(
        raw_exchange(&agent.socket, &unknown).unwrap()["error"]["code"],
        "bad_request"
    );
    let bad_scheme =
        framed(r#"{"v": 3, "op": "sign", "thumbprint": "00", "scheme": "MD5", "data": ""}"#);
    assert_eq!(
        raw_exchange(&agent.socket, &bad_scheme).unwrap()["error"]["code"],
        "unsupported_scheme"
    );
    // A client that promises 100 bytes, sends 10 and leaves.
    {
        let mut s = UnixStream::connect(&agent.socket).unwrap();
        s.write_all(&100u32.to_be_bytes()).unwrap();
        s.write_all(b"{\"v\": 2, \"").unwrap();
    }
    // A stranger asking to sign by thumbprint directly is denied without key bytes.
    let thumb = env.json(&["show", "partner"])["thumbprint"]
        .as_str()
        .unwrap()
        .to_string();
    let python = tools::require("/usr/bin/python3");
    let mut cmd = tools::command("setpriv");
    cmd.args(["--reuid=4321", "--regid=4321", "--clear-groups", "--"])
        .arg(python)
        .arg("-c");
    cmd.arg(format!(
        r#"import socket,struct,json,sys
s=socket.socket(socket.AF_UNIX); s.connect({sock:?})
m=json.dumps({{"v":3,"op":"sign","thumbprint":"{thumb}","scheme":"ECDSA_NISTP256_SHA256","data":"aGk="}}).encode()
s.sendall(struct.pack(">I",len(m))+m); n=struct.unpack(">I",s.recv(4))[0]; print(s.recv(n).decode())"#,
        sock = agent.socket.display().to_string()
    ));
    let out = cmd.output().unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(
        answer["error"]["code"],
        "denied",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(answer.get("ok").is_none());
    std::thread::sleep(Duration::from_millis(100));
    assert!(agent.alive());
    assert!(keycheck_as(&agent, "partner", None).status.success());
}

#[test]
fn fifty_concurrent_clients_get_the_right_answers() {
    let env = setup(KeyKind::EcP256);
    let agent = RunningAgent::start(&env);
    env.ok(&["grant", "partner", "uid:4001"]);
    let children: Vec<(bool, Child)> = (0..50)
        .map(|i| {
            let granted = i % 2 == 0;
            let uid = if granted { 4001 } else { 4002 };
            let child = keycheck_cmd(&agent, "partner", Some((uid, uid)))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            (granted, child)
        })
        .collect();
    for (granted, mut child) in children {
        let code = child.wait().unwrap().code();
        assert_eq!(code, Some(if granted { 0 } else { 4 }));
    }
}

#[test]
fn keycheck_never_needs_the_home() {
    let env = setup(KeyKind::EcP256);
    let agent = RunningAgent::start(&env);
    env.ok(&["grant", "partner", "uid:4321"]);
    // The stranger cannot read the home at all, and still checks the key.
    let mut cmd = keycheck_cmd(&agent, "partner", Some((4321, 4321)));
    cmd.env("CERTKEEPER_HOME", &env.home);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}
