//! The service account the applications run as: a granted uid that cannot open the
//! home (0700, root's) calls, checks and inspects its certificate through the agent
//! alone; an ungranted uid learns nothing; owner-only commands say whose home it is.
//! Every caller here is a real process with another uid (setpriv).

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use crate::agent::{RunningAgent, shared_binary};
use crate::common::{Env, stderr};
use crate::egress::{Partner, bind_cert, home_for, http};

const GRANTED: u32 = 4711;
const STRANGER: u32 = 4712;

/// `certkeeper ARGS` as `uid`, with the home named by CERTKEEPER_HOME as a service's
/// environment would, and the agent's socket given.
fn as_uid(uid: u32, env: &Env, agent: &RunningAgent, args: &[&str]) -> Output {
    Command::new("setpriv")
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .arg("--clear-groups")
        .arg("--")
        .arg(shared_binary())
        .args(args)
        .env("CERTKEEPER_HOME", &env.home)
        .env("CERTKEEPER_SOCKET", &agent.socket)
        .env("HOME", "/nonexistent")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("XDG_DATA_HOME")
        .output()
        .unwrap()
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
    let out = as_uid(
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
    let out = as_uid(
        GRANTED,
        &env,
        &agent,
        &["request", "/status", "--binding", "partner-api"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("verify=SUCCESS"), "{}", stdout(&out));

    // keycheck, show and path of the entry it may use.
    let out = as_uid(GRANTED, &env, &agent, &["keycheck", "partner"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = as_uid(GRANTED, &env, &agent, &["show", "partner"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("Issued to:") && text.contains("client.example"),
        "{text}"
    );
    assert!(text.contains("this user may use it"), "{text}");
    // What the service account sees is what the owner sees, less the ACL.
    let owner = env.json(&["show", "partner"]);
    let out = as_uid(GRANTED, &env, &agent, &["show", "partner", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["acl"].is_null(), "the ACL is the administrator's: {v}");
    v["acl"] = owner["acl"].clone();
    assert_eq!(v, owner);
    let owner_path = env.run(&["path", "partner"]);
    let out = as_uid(GRANTED, &env, &agent, &["path", "partner"]);
    assert_eq!(
        out.status.code(),
        owner_path.status.code(),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), stdout(&owner_path));
    let out = as_uid(GRANTED, &env, &agent, &["path", "partner", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let owner: serde_json::Value =
        serde_json::from_slice(&env.run(&["path", "partner", "--json"]).stdout).unwrap();
    assert_eq!(v, owner);
    // Once the administrator imports the missing root, the path is valid for both.
    let root = env.write("client-root.pem", partner.client_root.pem());
    env.ok(&["import", &root]);
    let out = as_uid(GRANTED, &env, &agent, &["path", "partner", "--json"]);
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
        let out = as_uid(STRANGER, &env, &agent, &args);
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
    let out = as_uid(STRANGER, &env, &agent, &["show", "no-such-name"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let audit = std::fs::read_to_string(env.home.join("audit.log")).unwrap();
    let denials = audit
        .lines()
        .filter(|l| l.contains(&format!("\"uid\":{STRANGER}")) && l.contains("denied"))
        .count();
    assert!(denials >= 6, "{audit}");

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
        let out = as_uid(GRANTED, &env, &agent, &args);
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
fn get_as(uid: u32, target: &str, path: &str) -> (u16, String) {
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
    let out = Command::new("setpriv")
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .arg("--clear-groups")
        .args(["--", "/usr/bin/python3", "-c", script, target, path])
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
    // Refusals are audited, with the binding.
    let audit = std::fs::read_to_string(env.home.join("audit.log")).unwrap();
    let refused = audit
        .lines()
        .filter(|l| {
            l.contains(&format!("\"uid\":{STRANGER}"))
                && l.contains("\"op\":\"relay\"")
                && l.contains("denied")
        })
        .count();
    assert_eq!(refused, 2, "{audit}");
    // A revoke applies to the next connection.
    env.ok(&["revoke", "partner", &format!("uid:{GRANTED}")]);
    assert_eq!(get_as(GRANTED, &tcp, "/status").0, 403);
    drop(agent);
}
