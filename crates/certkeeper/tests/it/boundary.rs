//! Homes and sockets that someone else made are not trusted: each attack here is run
//! as it would happen (another uid prepares the files first, then root uses them),
//! and each must be refused with exit 4 and one line saying what is wrong and how to
//! fix it, before anything in the home is read.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use crate::agent::shared_binary;
use crate::common::{Env, stderr};

const OTHER: u32 = 4713;

fn chown(path: &std::path::Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).unwrap();
}

fn assert_untrusted(out: &std::process::Output, what: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(4), "{what}: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{what}: {err}");
    assert!(
        err.contains("not trusted") && err.contains("fix:"),
        "{what}: {err}"
    );
}

#[test]
fn a_home_another_user_made_first_is_refused() {
    let env = Env::new();
    // Another user creates the directory before the administrator's init.
    std::fs::create_dir(&env.home).unwrap();
    chown(&env.home, OTHER);
    let out = env.run(&["init"]);
    assert_untrusted(&out, "init");
    assert!(
        stderr(&out).contains(&format!("uid {OTHER}")),
        "{}",
        stderr(&out)
    );
    assert!(!env.home.join("master.key").exists());
}

#[test]
fn a_planted_master_key_is_refused() {
    let env = Env::new();
    std::fs::create_dir(&env.home).unwrap();
    std::fs::set_permissions(&env.home, std::fs::Permissions::from_mode(0o700)).unwrap();
    // A key file someone else wrote (say while the directory was open to them).
    let key = env.home.join("master.key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    chown(&key, OTHER);
    let out = env.run(&["init"]);
    assert_untrusted(&out, "init with a planted key");
    assert!(stderr(&out).contains("master.key"), "{}", stderr(&out));
    // Nothing was created beside it.
    assert!(!env.home.join("certkeeper.db").exists());
}

#[test]
fn symlinks_and_open_modes_in_a_home_are_refused_at_every_open() {
    let env = Env::new();
    env.ok(&["init"]);
    // The audit log pointed at a file of root's choosing... by someone else.
    let target = env.dir.path().join("victim");
    std::fs::write(&target, "precious\n").unwrap();
    std::os::unix::fs::symlink(&target, env.home.join("audit.log")).unwrap();
    assert_untrusted(&env.run(&["list"]), "symlinked audit.log");
    let sockdir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(sockdir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = env
        .cmd()
        .args(["agent", "--socket"])
        .arg(sockdir.path().join("a.sock"))
        .output()
        .unwrap();
    assert_untrusted(&out, "agent on a symlinked audit.log");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
    std::fs::remove_file(env.home.join("audit.log")).unwrap();

    // A master key readable by others, a home writable by others.
    let key = env.home.join("master.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = env.run(&["list"]);
    assert_untrusted(&out, "master.key 0644");
    assert!(stderr(&out).contains("chmod 600"), "{}", stderr(&out));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&env.home, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = env.run(&["list"]);
    assert_untrusted(&out, "home 0777");
    assert!(stderr(&out).contains("chmod 700"), "{}", stderr(&out));
    std::fs::set_permissions(&env.home, std::fs::Permissions::from_mode(0o700)).unwrap();
    // The database replaced by a symbolic link.
    let db = env.home.join("certkeeper.db");
    std::fs::rename(&db, env.dir.path().join("elsewhere.db")).unwrap();
    std::os::unix::fs::symlink(env.dir.path().join("elsewhere.db"), &db).unwrap();
    assert_untrusted(&env.run(&["list"]), "symlinked database");
    std::fs::remove_file(&db).unwrap();
    std::fs::rename(env.dir.path().join("elsewhere.db"), &db).unwrap();
    env.ok(&["list"]);
}

#[test]
fn the_agent_refuses_a_socket_directory_others_control_and_a_busy_agent() {
    let env = Env::new();
    env.ok(&["init"]);
    let start = |socket: &std::path::Path| {
        Command::new(shared_binary())
            .arg("--home")
            .arg(&env.home)
            .arg("agent")
            .arg("--socket")
            .arg(socket)
            .output()
            .unwrap()
    };
    // A directory another user owns: they could swap the socket for a symlink.
    let theirs = tempfile::tempdir().unwrap();
    chown(theirs.path(), OTHER);
    let out = start(&theirs.path().join("agent.sock"));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("belongs to uid {OTHER}")),
        "{}",
        stderr(&out)
    );
    // A directory anyone may write.
    let open = tempfile::tempdir().unwrap();
    std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = start(&open.path().join("agent.sock"));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("writable by other users"),
        "{}",
        stderr(&out)
    );

    // A live agent whose backlog is full is busy, not stale: it is not replaced.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("agent.sock");
    use nix::sys::socket::{
        AddressFamily, Backlog, SockFlag, SockType, UnixAddr, bind, connect, listen, socket,
    };
    use std::os::fd::AsRawFd;
    let server = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )
    .unwrap();
    bind(server.as_raw_fd(), &UnixAddr::new(&path).unwrap()).unwrap();
    listen(&server, Backlog::new(0).unwrap()).unwrap();
    let mut queued = Vec::new();
    for _ in 0..4 {
        let c = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK,
            None,
        )
        .unwrap();
        let _ = connect(c.as_raw_fd(), &UnixAddr::new(&path).unwrap());
        queued.push(c);
    }
    let inode = std::fs::metadata(&path).unwrap().ino();
    let out = start(&path);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("too busy"), "{}", stderr(&out));
    assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode, "replaced");

    // The agent's own socket: 0666 from the start, in a directory it checked.
    drop(queued);
    drop(server);
    std::fs::remove_file(&path).unwrap();
    let mut agent = crate::agent::RunningAgent::start(&env);
    let mode = std::fs::metadata(&agent.socket)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o666);
    agent.stop();
}

fn keycheck(agent: &crate::agent::RunningAgent, uid: Option<u32>) -> std::process::Output {
    let mut cmd = match uid {
        Some(uid) => crate::common::as_uid(uid, shared_binary()),
        None => Command::new(shared_binary()),
    };
    cmd.args(["keycheck", "partner", "--socket"])
        .arg(&agent.socket)
        .env_remove("CERTKEEPER_HOME")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap()
}

fn with_key(env: &Env) {
    let pki =
        certkeeper_testkit::Pki::with_leaf(&certkeeper_testkit::Spec::client("audit.example"));
    let f = env.write(
        "leaf.pem",
        format!("{}{}", pki.leaf.pem(), pki.leaf.key_pem()),
    );
    env.ok(&["import", &f, "--name", "partner"]);
}

#[test]
fn no_audit_record_no_signature() {
    let Some(fs) = crate::bad_input::Tmpfs::mount("3m") else {
        return;
    };
    let env = Env::in_dir(fs.path());
    with_key(&env);
    let agent = crate::agent::RunningAgent::start(&env);
    let out = keycheck(&agent, None);
    assert!(out.status.success(), "{}", stderr(&out));
    // Fill the file system the home (and its audit log) lives on.
    let filler = fs.path().join("filler");
    let _ = certkeeper_testkit::tools::command("dd")
        .args(["if=/dev/zero", "bs=64k"])
        .arg(format!("of={}", filler.display()))
        .output()
        .unwrap();
    // The last page of the log may still take a few records; then nothing more.
    let allowed = |env: &Env| {
        std::fs::read_to_string(env.home.join("audit.log"))
            .unwrap()
            .lines()
            .filter(|l| l.contains("\"outcome\":\"allowed\""))
            .count()
    };
    let mut signed = allowed(&env);
    let mut refused = None;
    for _ in 0..200 {
        let out = keycheck(&agent, None);
        if out.status.success() {
            signed += 1;
        } else {
            refused = Some(out);
            break;
        }
    }
    let out = refused.expect("the agent kept signing on a full disk");
    // Every signature handed out has its record.
    assert_eq!(allowed(&env), signed);
    let err = stderr(&out);
    assert!(
        err.contains("audit log") && err.contains("refusing to sign"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let lines_before = std::fs::read_to_string(env.home.join("audit.log"))
        .unwrap()
        .lines()
        .count();
    let doctor = env.run(&[
        "doctor",
        "--json",
        "--socket",
        agent.socket.to_str().unwrap(),
    ]);
    let findings: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    let audit = findings
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "audit")
        .expect("an audit check");
    assert_eq!(audit["status"], "fail", "{audit}");
    // Room again: signatures and records come back together.
    std::fs::remove_file(&filler).unwrap();
    let out = keycheck(&agent, None);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines_after = std::fs::read_to_string(env.home.join("audit.log"))
        .unwrap()
        .lines()
        .count();
    assert!(lines_after > lines_before);
    // No record was left half-written by the full disk.
    for line in std::fs::read_to_string(env.home.join("audit.log"))
        .unwrap()
        .lines()
    {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "a broken record: {line}"
        );
    }
}

/// The agent's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn one_uids_flood_leaves_room_for_the_others_and_a_bounded_audit_log() {
    const GRANTED: u32 = 4714;
    const FLOODER: u32 = 4715;
    let env = Env::new();
    with_key(&env);
    env.ok(&["grant", "partner", &format!("uid:{GRANTED}")]);
    let agent = crate::agent::RunningAgent::start(&env);
    let pid = agent.child.id();
    let rss_before = rss_kib(pid);
    // The flood: as many connections as it can hold, half of them stuck in the middle
    // of a frame that claims 60,000 bytes, and 3,000 denied signatures and 200
    // malformed requests on one more.
    let script = r#"
import socket, struct, json, sys, time
path = sys.argv[1]
def frame(obj):
    m = json.dumps(obj).encode(); return struct.pack(">I", len(m)) + m
held, busy = [], 0
for i in range(200):
    s = socket.socket(socket.AF_UNIX); s.connect(path)
    if i % 2 == 0:
        s.sendall(struct.pack(">I", 60000) + b"{\"v\": 2, ")
    held.append(s)
s = held[-1]
s.settimeout(5)
try:
    n = struct.unpack(">I", s.recv(4))[0]; answer = json.loads(s.recv(n))
    busy = answer["error"]["code"] == "busy"
except Exception:
    busy = False
sign = frame({"v": 3, "op": "sign", "thumbprint": "00" * 32, "scheme": "ED25519", "data": ""})
def ask(d):
    d.sendall(sign)
    n = struct.unpack(">I", d.recv(4))[0]; return json.loads(d.recv(n))
# Wait for a free slot: close the complete ones first (on a loaded machine the agent
# may take a moment to see them go).
for s in held[1::2]:
    s.close()
for attempt in range(100):
    time.sleep(0.2)
    d = socket.socket(socket.AF_UNIX); d.connect(path)
    if ask(d).get("error", {}).get("code") != "busy":
        break
    d.close()
else:
    sys.exit("no slot came free after closing 32 connections")
for i in range(2999):
    ask(d)
print("busy" if busy else "not-busy", flush=True)
print("ready", flush=True)
time.sleep(30)
"#;
    let mut flood = crate::common::as_uid(FLOODER, "/usr/bin/python3")
        .args(["-c", script])
        .arg(&agent.socket)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(flood.stdout.take().unwrap()));
    let first = lines.next().unwrap().unwrap();
    assert_eq!(
        first, "busy",
        "the 65th connection of one uid was not turned away"
    );
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    // During the flood, another granted uid signs as usual.
    let started = std::time::Instant::now();
    let out = keycheck(&agent, Some(GRANTED));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(started.elapsed().as_secs() < 5);
    let rss_during = rss_kib(pid);
    assert!(
        rss_during < rss_before + 64 * 1024,
        "partial frames grew the agent from {rss_before} to {rss_during} KiB"
    );
    let _ = flood.kill();
    let _ = flood.wait();
    // 3,000 denials and the busy turn-aways are a handful of lines, with counts.
    let log = std::fs::read_to_string(env.home.join("audit.log")).unwrap();
    let flooder: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(&format!("\"uid\":{FLOODER}")))
        .collect();
    assert!(
        !flooder.is_empty() && flooder.len() < 20,
        "{} lines for the flood",
        flooder.len()
    );
}

#[test]
fn a_revoke_says_who_still_has_access_and_is_on_disk_when_it_returns() {
    let env = Env::new();
    with_key(&env);
    env.ok(&["grant", "partner", "user:nobody", "uid:65534"]);
    let out = env.run(&["revoke", "partner", "user:nobody"]);
    assert!(out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("user:nobody still may use the key") && err.contains("through uid:65534"),
        "{err}"
    );
    let v = env.json(&["revoke", "partner", "user:nobody"]);
    assert_eq!(v["not_granted"], serde_json::json!(["user:nobody"]));
    // Durable: the commit syncs the write-ahead log before the command returns, even
    // while the agent holds the database open (so no checkpoint at exit syncs it).
    let agent = crate::agent::RunningAgent::start(&env);
    env.ok(&["grant", "partner", "uid:5"]);
    let trace = env.dir.path().join("trace");
    let out = certkeeper_testkit::tools::command("strace")
        .args(["-f", "-e", "trace=fsync,fdatasync", "-o"])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_certkeeper"))
        .arg("--home")
        .arg(&env.home)
        .args(["revoke", "partner", "uid:65534"])
        .output()
        .expect("strace is needed (apt-get install strace)");
    assert!(out.status.success(), "{}", stderr(&out));
    let trace = std::fs::read_to_string(&trace).unwrap();
    assert!(
        trace.contains("fsync(") || trace.contains("fdatasync("),
        "the revoke returned before its commit was synced:\n{trace}"
    );
    drop(agent);
    let v = env.json(&["acl", "partner"]);
    assert_eq!(v["acl"], serde_json::json!(["uid:5"]));
}

#[test]
fn the_agent_process_cannot_be_dumped_or_traced_by_its_own_user() {
    const SERVICE: u32 = 4716;
    let base = tempfile::tempdir().unwrap();
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    chown(base.path(), SERVICE);
    let home = base.path().join("home");
    let socket = base.path().join("agent.sock");
    let as_service = |args: &[&str]| {
        let mut c = crate::common::as_uid(SERVICE, shared_binary());
        c.arg("--home").arg(&home).args(args);
        c
    };
    assert!(as_service(&["init"]).status().unwrap().success());
    let mut agent = as_service(&["agent", "--socket", socket.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !socket.exists() {
        assert!(start.elapsed().as_secs() < 10, "the agent did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // setpriv execs the agent, so the child's pid is the agent's.
    let proc_dir = format!("/proc/{}", agent.id());
    let status = std::fs::read_to_string(format!("{proc_dir}/status")).unwrap();
    assert!(status.contains(&format!("Uid:\t{SERVICE}")), "{status}");
    // A non-dumpable process's /proc files belong to root, not to its own uid.
    let owner = std::fs::metadata(format!("{proc_dir}/environ"))
        .unwrap()
        .uid();
    let _ = agent.kill();
    let _ = agent.wait();
    assert_eq!(
        owner, 0,
        "the agent is dumpable: its /proc files belong to uid {owner}"
    );
}

#[test]
fn a_home_or_socket_under_a_directory_another_user_controls_is_refused() {
    // Another user owns a directory above the home: they could swap the home for
    // theirs between a check and an open.
    let theirs = tempfile::tempdir().unwrap();
    std::fs::set_permissions(theirs.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    chown(theirs.path(), OTHER);
    let home = theirs.path().join("deep").join("home");
    let out = Command::new(shared_binary())
        .arg("--home")
        .arg(&home)
        .arg("init")
        .output()
        .unwrap();
    assert_untrusted(&out, "init under another user's directory");
    assert!(
        stderr(&out).contains(&format!("belongs to uid {OTHER}")),
        "{}",
        stderr(&out)
    );
    assert!(!home.exists(), "nothing is made there");
    // The same for the agent's socket.
    let env = Env::new();
    env.ok(&["init"]);
    let sockdir = theirs.path().join("run");
    std::fs::create_dir(&sockdir).unwrap();
    std::fs::set_permissions(&sockdir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = env
        .cmd()
        .args(["agent", "--socket"])
        .arg(sockdir.join("agent.sock"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("could replace the socket"),
        "{}",
        stderr(&out)
    );
}
