//! The service account the applications run as: a granted uid that cannot open the
//! home (0700, root's) calls, checks and inspects its certificate through the agent
//! alone; an ungranted uid learns nothing; owner-only commands say whose home it is.
//! Every caller here is a real process with another uid (setpriv).

use std::os::unix::fs::PermissionsExt;
use std::process::Output;

use crate::agent::{RunningAgent, shared_binary};
use crate::common::{Env, stderr};
use crate::egress::{Partner, bind_cert, home_for, http, wait_for_port};

const GRANTED: u32 = 4711;
const STRANGER: u32 = 4712;

/// `certkeeper ARGS` as `uid`, with the home named by CERTKEEPER_HOME as a service's
/// environment would, and the agent's socket given.
pub(crate) fn certkeeper_as(uid: u32, env: &Env, agent: &RunningAgent, args: &[&str]) -> Output {
    crate::common::as_uid(uid, shared_binary())
        .args(args)
        .env("CERTKEEPER_HOME", &env.home)
        .env("CERTKEEPER_SOCKET", &agent.socket)
        .env("HOME", "/nonexistent")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("XDG_DATA_HOME")
        .output()
        .unwrap()
}

/// Denials of `op` to `uid` in the audit log, counting aggregated repeats.
fn denials(env: &Env, uid: u32, op: &str) -> u64 {
    std::fs::read_to_string(env.home.join("audit.log"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["uid"] == uid && r["op"] == op && r["outcome"] == "denied")
        .map(|r| r["repeated"].as_u64().unwrap_or(1))
        .sum()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_granted_service_account_works_through_the_agent_alone() {
    let partner = Partner::start();
    let env = home_for(&partner);
    let grant = format!("uid:{GRANTED}");
    env.ok(&["grant", "partner", &grant]);
    let port = bind_cert(&env, "partner-api", "partner", &partner.url("/"));
    let agent = RunningAgent::start(&env);
    let home_mode = std::fs::metadata(&env.home).unwrap().permissions().mode() & 0o777;
    assert_eq!(home_mode, 0o700);

    // request --cert, against the partner's nginx that demands a client certificate;
    // the server is checked against the home's root store, which the agent hands over.
    let out = certkeeper_as(
        GRANTED,
        &env,
        &agent,
        &["request", &partner.url("/status"), "--cert", "partner"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("CN=client.example") && stdout(&out).contains("verify=SUCCESS"),
        "{}",
        stdout(&out)
    );

    // request --binding: the binding's upstream, certificate and trust, from the agent.
    let out = certkeeper_as(
        GRANTED,
        &env,
        &agent,
        &["request", "/status", "--binding", "partner-api"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("verify=SUCCESS"), "{}", stdout(&out));

    // keycheck, show and path of the entry it may use.
    let out = certkeeper_as(GRANTED, &env, &agent, &["keycheck", "partner"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = certkeeper_as(GRANTED, &env, &agent, &["show", "partner"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("Issued to:") && text.contains("client.example"),
        "{text}"
    );
    assert!(text.contains("this user may use it"), "{text}");
    // What the service account sees is what the owner sees, less the ACL.
    let owner = env.json(&["show", "partner"]);
    let out = certkeeper_as(GRANTED, &env, &agent, &["show", "partner", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["acl"].is_null(), "the ACL is the administrator's: {v}");
    v["acl"] = owner["acl"].clone();
    assert_eq!(v, owner);
    let owner_path = env.run(&["path", "partner"]);
    let out = certkeeper_as(GRANTED, &env, &agent, &["path", "partner"]);
    assert_eq!(
        out.status.code(),
        owner_path.status.code(),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), stdout(&owner_path));
    let out = certkeeper_as(GRANTED, &env, &agent, &["path", "partner", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let owner: serde_json::Value =
        serde_json::from_slice(&env.run(&["path", "partner", "--json"]).stdout).unwrap();
    assert_eq!(v, owner);
    // Once the administrator imports the missing root, the path is valid for both.
    let root = env.write("client-root.pem", partner.client_root.pem());
    env.ok(&["import", &root]);
    let out = certkeeper_as(GRANTED, &env, &agent, &["path", "partner", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["chain"].as_array().unwrap().len(), 3, "{v}");

    // The binding's listener still relays for applications.
    let (status, _) = http(port, "GET", "/status", &[], b"");
    assert_eq!(status, 200);

    // The home is still private.
    let home_mode = std::fs::metadata(&env.home).unwrap().permissions().mode() & 0o777;
    assert_eq!(home_mode, 0o700);
}

#[test]
fn an_ungranted_user_learns_nothing_and_owner_commands_say_whose_home_it_is() {
    let partner = Partner::start();
    let env = home_for(&partner);
    env.ok(&["grant", "partner", &format!("uid:{GRANTED}")]);
    let _ = bind_cert(&env, "partner-api", "partner", &partner.url("/"));
    let agent = RunningAgent::start(&env);

    // A stranger: denied (exit 4), told nothing of the certificate, and audited.
    for args in [
        vec!["show", "partner"],
        vec!["path", "partner"],
        vec!["keycheck", "partner"],
        vec!["request", &partner.url("/status"), "--cert", "partner"],
        vec!["request", "/status", "--binding", "partner-api"],
    ] {
        let out = certkeeper_as(STRANGER, &env, &agent, &args);
        assert_eq!(out.status.code(), Some(4), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            !err.contains("client.example"),
            "{args:?} revealed the subject: {err}"
        );
        assert!(err.contains(&format!("uid {STRANGER}")), "{args:?}: {err}");
        assert!(stdout(&out).is_empty() || args.contains(&"--json"));
    }
    // A name that does not exist gets the same answer as one it may not use.
    let out = certkeeper_as(STRANGER, &env, &agent, &["show", "no-such-name"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let mut agent = agent;
    agent.stop();
    let all: u64 = ["describe", "resolve", "trust", "binding"]
        .iter()
        .map(|op| denials(&env, STRANGER, op))
        .sum();
    assert_eq!(all, 6);

    // Owner-only commands, even by the granted account: exit 4, whose home it is,
    // what to do instead; never "create it with init".
    let cert = env.write("again.pem", partner.client_ca.pem());
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for args in [
        vec!["list"],
        vec!["import", cert.as_str()],
        vec!["grant", "partner", "uid:1"],
        vec!["export", "partner", "--out", "/tmp/x.cer"],
        vec!["bindings"],
        vec!["doctor"],
    ] {
        let out = certkeeper_as(GRANTED, &env, &agent, &args);
        assert_eq!(out.status.code(), Some(4), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains("belongs to root (uid 0)")
                && err.contains(&format!("uid {GRANTED}"))
                && err.contains("--socket"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("init"), "{args:?}: {err}");
    }
}

/// One HTTP/1.1 GET through a binding's listener (`127.0.0.1:PORT` or a Unix socket
/// path), sent by a process running as `uid`; returns the status and the body.
pub(crate) fn get_as(uid: u32, target: &str, path: &str) -> (u16, String) {
    let script = r#"
import socket, sys
target, path = sys.argv[1], sys.argv[2]
if target.startswith("/"):
    s = socket.socket(socket.AF_UNIX); s.connect(target)
else:
    host, port = target.rsplit(":", 1); s = socket.create_connection((host, int(port)))
s.sendall(("GET %s HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n" % path).encode())
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk: break
    data += chunk
sys.stdout.write(data.decode("utf-8", "replace"))
"#;
    let out = crate::common::as_uid(uid, "/usr/bin/python3")
        .args(["-c", script, target, path])
        .output()
        .unwrap();
    let text = stdout(&out);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

#[test]
fn a_binding_serves_only_the_uids_its_key_admits_over_tcp_and_unix_sockets() {
    let partner = Partner::start();
    let env = home_for(&partner);
    env.ok(&["grant", "partner", &format!("uid:{GRANTED}")]);
    let port = bind_cert(&env, "partner-api", "partner", &partner.url("/"));
    let sockets = tempfile::tempdir().unwrap();
    std::fs::set_permissions(sockets.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let unix = sockets.path().join("partner.sock");
    let listen = format!("unix:{}", unix.display());
    env.ok(&[
        "bind",
        "partner-unix",
        "--cert",
        "partner",
        "--upstream",
        &partner.url("/"),
        "--listen",
        &listen,
    ]);
    let agent = RunningAgent::start(&env);
    let tcp = format!("127.0.0.1:{port}");
    let unix_path = unix.display().to_string();
    for target in [tcp.as_str(), unix_path.as_str()] {
        // Wait for the listener.
        let start = std::time::Instant::now();
        while get_as(0, target, "/status").0 != 200 {
            assert!(start.elapsed().as_secs() < 15, "{target} never served");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let (status, body) = get_as(GRANTED, target, "/status");
        assert_eq!(status, 200, "{target}: {body}");
        assert!(body.contains("verify=SUCCESS"), "{body}");
        let (status, body) = get_as(STRANGER, target, "/status");
        assert_eq!(status, 403, "{target}: {body}");
        assert!(
            body.contains(&format!("uid {STRANGER} may not use"))
                && body.contains("certkeeper grant partner"),
            "{body}"
        );
    }
    // The Unix socket is world-connectable: the decision is the agent's, per uid.
    let mode = std::fs::metadata(&unix).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o666);
    // A revoke applies to the next connection.
    env.ok(&["revoke", "partner", &format!("uid:{GRANTED}")]);
    assert_eq!(get_as(GRANTED, &tcp, "/status").0, 403);
    // Refusals are audited, with the binding (repeats within seconds as a count).
    let mut agent = agent;
    agent.stop();
    assert_eq!(denials(&env, STRANGER, "relay"), 2);
}

/// A raw request to the agent as `uid`; the answer as JSON.
fn raw_as(uid: u32, agent: &RunningAgent, request: &str) -> serde_json::Value {
    let script = r#"
import socket, struct, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
m = sys.argv[2].encode(); s.sendall(struct.pack(">I", len(m)) + m)
n = struct.unpack(">I", s.recv(4))[0]; data = b""
while len(data) < n:
    data += s.recv(n - len(data))
sys.stdout.write(data.decode())
"#;
    let out = crate::common::as_uid(uid, "/usr/bin/python3")
        .args(["-c", script])
        .arg(&agent.socket)
        .arg(request)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", stderr(&out)))
}

#[test]
fn what_a_granted_user_asks_for_beyond_its_key_is_refused_and_nothing_hostile_is_believed() {
    let partner = Partner::start();
    let env = home_for(&partner);
    env.ok(&["grant", "partner", &format!("uid:{GRANTED}")]);
    // Another key the service account was not granted, and a distrusted certificate
    // that has nothing to do with its path.
    let other = partner
        .client_ca
        .issue(&certkeeper_testkit::Spec::client("bank.example"));
    let f = env.write("other.pem", format!("{}{}", other.pem(), other.key_pem()));
    env.ok(&["import", &f, "--name", "bankkey"]);
    let stray = certkeeper_testkit::TestCert::self_signed(&certkeeper_testkit::Spec::ca(
        "Revoked Contractor Laptop",
    ));
    let f = env.write("stray.pem", stray.pem());
    env.ok(&["import", &f, "--store", "disallowed"]);
    let _ = bind_cert(&env, "partner-api", "partner", &partner.url("/"));
    let agent = RunningAgent::start(&env);

    // `trust` gives CA certificates only: not another key's certificate, not a
    // distrusted one, and the same answer for none as for several.
    for reference in [
        "bankkey",
        "subject:Revoked",
        "subject:certkeeper tests",
        "nosuch",
    ] {
        let answer = raw_as(
            GRANTED,
            &agent,
            &format!(r#"{{"v":3,"op":"trust","server_ca":"{reference}"}}"#),
        );
        assert_eq!(
            answer["error"]["code"], "not_found",
            "{reference}: {answer}"
        );
    }
    let answer = raw_as(
        GRANTED,
        &agent,
        r#"{"v":3,"op":"trust","server_ca":"subject:Partner Client CA"}"#,
    );
    assert!(answer["ok"]["anchors"].is_array(), "{answer}");
    // `describe` of its own key carries nothing of the unrelated distrusted one.
    let answer = raw_as(
        GRANTED,
        &agent,
        r#"{"v":3,"op":"describe","reference":"partner"}"#,
    );
    let stores: Vec<&str> = answer["ok"]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["store"].as_str().unwrap())
        .collect();
    assert!(!stores.contains(&"disallowed"), "{answer}");
    // A stranger signing by thumbprint: `denied` whether the key exists or not.
    let thumb = env.json(&["show", "bankkey"])["thumbprint"]
        .as_str()
        .unwrap()
        .to_string();
    for t in [thumb.as_str(), &"00".repeat(32)] {
        let answer = raw_as(
            STRANGER,
            &agent,
            &format!(
                r#"{{"v":3,"op":"sign","thumbprint":"{t}","scheme":"ECDSA_NISTP256_SHA256","data":""}}"#
            ),
        );
        assert_eq!(answer["error"]["code"], "denied", "{answer}");
        assert!(!answer.to_string().contains("bank.example"), "{answer}");
    }

    // A file in the working directory named like a CA REF is not a CA.
    let cwd = tempfile::tempdir().unwrap();
    std::fs::set_permissions(cwd.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(cwd.path().join("root"), "not a certificate").unwrap();
    let out = crate::common::as_uid(GRANTED, shared_binary())
        .args(["request", "/status", "--binding", "partner-api"])
        .current_dir(cwd.path())
        .env("CERTKEEPER_HOME", &env.home)
        .env("CERTKEEPER_SOCKET", &agent.socket)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    // A fake agent run by the stranger on a socket of its own is not believed.
    let fake_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(fake_dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let fake = fake_dir.path().join("agent.sock");
    let server = r#"
import socket, struct, sys, json, os
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o666); s.listen(8)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    try:
        n = struct.unpack(">I", c.recv(4))[0]; c.recv(n)
        m = json.dumps({"v": 3, "ok": {"name": "partner-api", "upstream": "https://127.0.0.1:1",
            "thumbprint": "00", "server_ca": "system"}}).encode()
        c.sendall(struct.pack(">I", len(m)) + m)
    except Exception:
        pass
    c.close()
"#;
    let mut fake_agent = crate::common::as_uid(STRANGER, "/usr/bin/python3")
        .args(["-c", server])
        .arg(&fake)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(fake_agent.stdout.as_mut().unwrap()),
        &mut ready,
    )
    .unwrap();
    let out = crate::common::as_uid(GRANTED, shared_binary())
        .args([
            "request",
            "/transfer",
            "--binding",
            "partner-api",
            "-d",
            "iban=1",
        ])
        .env("CERTKEEPER_HOME", &env.home)
        .env("CERTKEEPER_SOCKET", &fake)
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    let _ = fake_agent.kill();
    let _ = fake_agent.wait();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not an agent to trust"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bind_allow_narrows_a_binding_below_the_key_acl_and_doctor_says_who_may_use_it() {
    const SECOND: u32 = 4717;
    let partner = Partner::start();
    let env = home_for(&partner);
    env.ok(&[
        "grant",
        "partner",
        &format!("uid:{GRANTED}"),
        &format!("uid:{SECOND}"),
    ]);
    let port = bind_cert(&env, "partner-api", "partner", &partner.url("/"));
    let agent = RunningAgent::start(&env);
    let tcp = format!("127.0.0.1:{port}");
    let start = std::time::Instant::now();
    while get_as(0, &tcp, "/status").0 != 200 {
        assert!(start.elapsed().as_secs() < 15, "never served");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(get_as(SECOND, &tcp, "/status").0, 200);
    // Narrowed to the first account: the second, though in the ACL, is refused.
    let listen = tcp.clone();
    env.ok(&[
        "bind",
        "partner-api",
        "--cert",
        "partner",
        "--upstream",
        &partner.url("/"),
        "--listen",
        &listen,
        "--allow",
        &format!("uid:{GRANTED}"),
    ]);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    assert_eq!(get_as(GRANTED, &tcp, "/status").0, 200);
    let (status, body) = get_as(SECOND, &tcp, "/status");
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains(&format!("admits only uid:{GRANTED}")),
        "{body}"
    );
    // --allow never widens: a uid outside the ACL stays out.
    let (status, _) = get_as(STRANGER, &tcp, "/status");
    assert_eq!(status, 403);
    let doctor = env.run(&[
        "doctor",
        "--json",
        "--socket",
        agent.socket.to_str().unwrap(),
    ]);
    let findings: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    let access = findings
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "binding-access")
        .expect("doctor says who may use the binding");
    let detail = access["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("uid:{SECOND}"))
            && detail.contains(&format!("narrowed to uid:{GRANTED}")),
        "{detail}"
    );
}

#[test]
fn an_application_socket_closed_before_the_agent_looks_is_nobody_not_root() {
    let partner = Partner::start();
    let env = home_for(&partner);
    let port = bind_cert(&env, "partner-api", "partner", &partner.url("/"));
    let mut agent = RunningAgent::start(&env);
    let tcp = format!("127.0.0.1:{port}");
    let start = std::time::Instant::now();
    while get_as(0, &tcp, "/status").0 != 200 {
        assert!(start.elapsed().as_secs() < 15, "never served");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The agent is made slow to accept (stopped); a stranger connects, sends its
    // request and closes. Its socket is an orphan by the time the agent asks the
    // kernel, which then names uid 0 for it.
    let pid = nix::unistd::Pid::from_raw(agent.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let script = r#"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /transfer HTTP/1.1\r\nHost: app\r\nContent-Length: 9\r\n\r\namount=99")
s.close()
"#;
    let out = crate::common::as_uid(STRANGER, "/usr/bin/python3")
        .args(["-c", script])
        .arg(port.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    std::thread::sleep(std::time::Duration::from_millis(300));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    agent.stop();
    let log = std::fs::read_to_string(env.home.join("audit.log")).unwrap();
    let records: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        records.iter().any(|r| r["op"] == "relay"
            && r["uid"] == u64::from(u32::MAX)
            && r["outcome"] == "denied"),
        "the orphan was not refused and audited: {log}"
    );
}

#[test]
fn a_stopping_agent_lets_the_calls_in_flight_finish() {
    let partner = Partner::start();
    let env = home_for(&partner);
    let port = bind_cert(&env, "partner-api", "partner", &partner.h1_url("/"));
    let mut agent = RunningAgent::start(&env);
    wait_for_port(port);
    let start = std::time::Instant::now();
    while http(port, "GET", "/status", &[], b"").0 != 200 {
        assert!(start.elapsed().as_secs() < 15, "never served");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The partner answers /late after 300 ms; the agent is told to stop at 100 ms.
    let call = std::thread::spawn(move || http(port, "GET", "/late", &[], b""));
    std::thread::sleep(std::time::Duration::from_millis(100));
    agent.stop();
    let (status, body) = call.join().unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "late\n");
    // And the listener is gone.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}
