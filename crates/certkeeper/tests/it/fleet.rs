//! The fleet with real processes: etcd members from Debian's etcd-server started here
//! on loopback ports (one member, or three), an administrator's home, front-ends as
//! separate homes with their own agents (each serving the published bindings on its
//! own loopback address, `fleet join --listen-host`), nginx as the partner.

use std::collections::BTreeSet;
use std::io::Read;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use certkeeper_testkit::tools::{self, TestAccount};
use certkeeper_testkit::{Spec, TestCert};
use serde_json::Value;

use crate::agent::{RunningAgent, keycheck_as};
use crate::common::{Env, stderr};
use crate::egress::{Partner, bind_cert, free_port, home_for};

/// Client certificates for etcd's mutual TLS.
struct EtcdTls {
    dir: tempfile::TempDir,
    ca: TestCert,
}

impl EtcdTls {
    fn new() -> EtcdTls {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCert::self_signed(&Spec::ca("etcd CA"));
        let mut spec = Spec::server("localhost");
        spec.dns.push("127.0.0.1".into());
        let server = ca.issue(&spec);
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("server.pem"), server.pem()).unwrap();
        std::fs::write(dir.path().join("server.key"), server.key_pem()).unwrap();
        // curl's own identity, for reading etcd in the tests.
        let curl = ca.issue(&Spec::client("test reader"));
        std::fs::write(dir.path().join("curl.pem"), curl.pem()).unwrap();
        std::fs::write(dir.path().join("curl.key"), curl.key_pem()).unwrap();
        EtcdTls { dir, ca }
    }

    fn file(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// Gives `env` a client certificate for etcd (named `etcd-client`) and etcd's CA.
    fn enrol(&self, env: &Env, cn: &str) {
        let client = self.ca.issue(&Spec::client(cn));
        let f = env.write(
            &format!("{cn}.pem"),
            format!("{}{}", client.pem(), client.key_pem()),
        );
        env.ok(&["import", &f, "--name", "etcd-client"]);
        let f = env.write("etcd-ca.pem", self.ca.pem());
        env.ok(&["import", &f, "--store", "root"]);
    }
}

/// etcd members on loopback; all killed on drop.
struct Etcd {
    members: Vec<Member>,
    tls: Option<EtcdTls>,
    _dir: tempfile::TempDir,
}

struct Member {
    name: String,
    data: PathBuf,
    client: u16,
    peer: u16,
    child: Option<Child>,
}

impl Etcd {
    fn start(count: usize, tls: bool) -> Etcd {
        tools::require("etcd");
        tools::require("curl");
        let dir = tempfile::tempdir().unwrap();
        let members: Vec<Member> = (0..count)
            .map(|i| Member {
                name: format!("m{i}"),
                data: dir.path().join(format!("m{i}")),
                client: free_port(),
                peer: free_port(),
                child: None,
            })
            .collect();
        let mut etcd = Etcd {
            members,
            tls: tls.then(EtcdTls::new),
            _dir: dir,
        };
        for i in 0..count {
            etcd.start_member(i);
        }
        etcd.wait_healthy();
        etcd
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    fn start_member(&mut self, i: usize) {
        let cluster: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer))
            .collect();
        let scheme = self.scheme();
        let m = &self.members[i];
        let mut cmd = tools::command("etcd");
        cmd.arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(&m.data)
            .arg("--listen-client-urls")
            .arg(format!("{scheme}://127.0.0.1:{}", m.client))
            .arg("--advertise-client-urls")
            .arg(format!("{scheme}://127.0.0.1:{}", m.client))
            .arg("--listen-peer-urls")
            .arg(format!("http://127.0.0.1:{}", m.peer))
            .arg("--initial-advertise-peer-urls")
            .arg(format!("http://127.0.0.1:{}", m.peer))
            .arg("--initial-cluster")
            .arg(cluster.join(","))
            .arg("--initial-cluster-state")
            .arg("new")
            .arg("--initial-cluster-token")
            .arg(format!("ck-{}", std::process::id()))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(tls) = &self.tls {
            cmd.arg("--cert-file")
                .arg(tls.file("server.pem"))
                .arg("--key-file")
                .arg(tls.file("server.key"))
                .arg("--client-cert-auth")
                .arg("--trusted-ca-file")
                .arg(tls.file("ca.pem"));
        }
        let child = cmd.spawn().unwrap();
        self.members[i].child = Some(child);
    }

    fn kill_member(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn stop_all(&mut self) {
        for i in 0..self.members.len() {
            self.kill_member(i);
        }
    }

    fn start_all(&mut self) {
        for i in 0..self.members.len() {
            if self.members[i].child.is_none() {
                self.start_member(i);
            }
        }
        self.wait_healthy();
    }

    fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}://127.0.0.1:{}", self.scheme(), m.client))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A live member's client URL.
    fn live(&self) -> String {
        let m = self
            .members
            .iter()
            .find(|m| m.child.is_some())
            .expect("a live member");
        format!("{}://127.0.0.1:{}", self.scheme(), m.client)
    }

    fn curl(&self, url: &str, body: Option<&Value>) -> Option<Value> {
        let mut cmd = tools::command("curl");
        cmd.args(["-s", "--max-time", "3"]);
        if let Some(tls) = &self.tls {
            cmd.arg("--cacert")
                .arg(tls.file("ca.pem"))
                .arg("--cert")
                .arg(tls.file("curl.pem"))
                .arg("--key")
                .arg(tls.file("curl.key"));
        }
        if let Some(b) = body {
            cmd.arg("-d").arg(b.to_string());
        }
        let out = cmd.arg(url).output().unwrap();
        serde_json::from_slice(&out.stdout).ok()
    }

    fn wait_healthy(&self) {
        let start = Instant::now();
        loop {
            let healthy = self.members.iter().filter(|m| m.child.is_some()).all(|m| {
                self.curl(
                    &format!("{}://127.0.0.1:{}/health", self.scheme(), m.client),
                    None,
                )
                .is_some_and(|v| v["health"] == "true")
            });
            if healthy {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "etcd did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every key under `prefix` with its value (through etcd's JSON gateway).
    fn range(&self, prefix: &str) -> Vec<(String, Vec<u8>)> {
        let mut end = prefix.as_bytes().to_vec();
        *end.last_mut().unwrap() += 1;
        let v = self
            .curl(
                &format!("{}/v3/kv/range", self.live()),
                Some(&serde_json::json!({
                    "key": STANDARD.encode(prefix), "range_end": STANDARD.encode(end),
                })),
            )
            .expect("etcd answers");
        v["kvs"]
            .as_array()
            .map(|kvs| {
                kvs.iter()
                    .map(|kv| {
                        (
                            String::from_utf8(
                                STANDARD.decode(kv["key"].as_str().unwrap()).unwrap(),
                            )
                            .unwrap(),
                            STANDARD.decode(kv["value"].as_str().unwrap_or("")).unwrap(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn get(&self, key: &str) -> Option<Vec<u8>> {
        let v = self.curl(
            &format!("{}/v3/kv/range", self.live()),
            Some(&serde_json::json!({"key": STANDARD.encode(key)})),
        )?;
        let value = v["kvs"].as_array()?.first()?["value"].as_str()?.to_string();
        Some(STANDARD.decode(value).unwrap())
    }

    fn delete(&self, key: &str) {
        self.curl(
            &format!("{}/v3/kv/deleterange", self.live()),
            Some(&serde_json::json!({"key": STANDARD.encode(key)})),
        )
        .expect("etcd took the delete");
    }

    fn put(&self, key: &str, value: &[u8]) {
        self.curl(
            &format!("{}/v3/kv/put", self.live()),
            Some(&serde_json::json!({
                "key": STANDARD.encode(key), "value": STANDARD.encode(value),
            })),
        )
        .expect("etcd took the put");
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// A front-end: its home and, while it runs, its agent.
struct FrontEnd {
    name: String,
    env: Env,
    ip: String,
    agent: Option<RunningAgent>,
}

impl FrontEnd {
    fn start_agent(&mut self) {
        self.agent = Some(RunningAgent::start(&self.env));
    }

    fn stop_agent(&mut self) {
        if let Some(mut a) = self.agent.take() {
            a.stop();
        }
    }

    fn agent(&self) -> &RunningAgent {
        self.agent.as_ref().expect("the agent runs")
    }

    fn generation(&self) -> u64 {
        let db = rusqlite::Connection::open(self.env.home.join("certkeeper.db")).unwrap();
        db.query_row("SELECT generation FROM fleet", [], |r| r.get::<_, i64>(0))
            .unwrap() as u64
    }
}

/// An environment: etcd, the administrator's home, front-ends.
struct Fleet {
    etcd: Etcd,
    admin: Env,
    nodes: Vec<FrontEnd>,
    name: String,
}

impl Fleet {
    /// `count` front-ends joined and approved, agents running, nothing published.
    fn new(etcd: Etcd, admin: Env, count: usize) -> Fleet {
        let name = "prod".to_string();
        let mut fleet = Fleet {
            etcd,
            admin,
            nodes: Vec::new(),
            name,
        };
        let mut init = vec!["fleet", "init", "--env", "prod"];
        let endpoints = fleet.etcd.endpoints();
        init.extend(["--etcd", &endpoints]);
        if let Some(tls) = &fleet.etcd.tls {
            tls.enrol(&fleet.admin, "admin");
            init.extend(["--etcd-cert", "etcd-client"]);
        }
        let out = fleet.admin.ok(&init);
        assert!(out.contains("this home is its administrator"), "{out}");
        fleet.admin.ok(&["config", "fleet_spread", "0"]);
        for i in 0..count {
            fleet.add_node(&format!("fe{}", i + 1), i + 2, true);
        }
        fleet
    }

    /// Joins a front-end on 127.0.0.IP; approves it when asked. Its agent runs.
    fn add_node(&mut self, name: &str, ip: usize, approve: bool) -> String {
        let env = Env::new();
        env.ok(&["init"]);
        env.ok(&["config", "fleet_spread", "0"]);
        let ip = format!("127.0.0.{ip}");
        let endpoints = self.etcd.endpoints();
        let mut join = vec![
            "fleet",
            "join",
            "--env",
            "prod",
            "--node",
            name,
            "--listen-host",
            &ip,
            "--etcd",
            &endpoints,
        ];
        if let Some(tls) = &self.etcd.tls {
            tls.enrol(&env, name);
            join.extend(["--etcd-cert", "etcd-client"]);
        }
        let joined = env.json(&join);
        assert_eq!(joined["node"], name);
        let fingerprint = joined["fingerprint"].as_str().unwrap().to_string();
        if approve {
            self.admin
                .ok(&["fleet", "approve", name, "--fingerprint", &fingerprint]);
        }
        let mut node = FrontEnd {
            name: name.into(),
            env,
            ip,
            agent: None,
        };
        node.start_agent();
        self.nodes.push(node);
        fingerprint
    }

    fn publish(&self) -> u64 {
        let v = self.admin.json(&["fleet", "publish"]);
        v["generation"].as_u64().unwrap()
    }

    fn status(&self) -> Vec<Value> {
        self.admin
            .json(&["fleet", "status"])
            .as_array()
            .unwrap()
            .clone()
    }

    /// Waits until every running front-end reports `generation` (alive, not behind).
    fn converge(&self, generation: u64) -> Duration {
        let start = Instant::now();
        loop {
            let status = self.status();
            let running: BTreeSet<&str> = self
                .nodes
                .iter()
                .filter(|n| n.agent.is_some())
                .map(|n| n.name.as_str())
                .collect();
            let done = status
                .iter()
                .filter(|s| running.contains(s["node"].as_str().unwrap()))
                .filter(|s| s["alive"] == true && s["generation"] == generation)
                .count();
            if done == running.len() {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "front-ends did not reach generation {generation}: {status:#?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn prefix(&self) -> String {
        format!("/certkeeper/{}/", self.name)
    }
}

/// The partner (nginx), and an environment on one plain-http etcd member whose
/// administrator's home holds the partner's client certificate, with `nodes`
/// front-ends joined, approved and running.
fn partner_fleet(nodes: usize) -> (Partner, Fleet) {
    let partner = Partner::start();
    let admin = home_for(&partner);
    let fleet = Fleet::new(Etcd::start(1, false), admin, nodes);
    (partner, fleet)
}

/// A plain HTTP GET to a binding on `ip:port`, as an application sends it.
fn get(ip: &str, port: u16, path: &str) -> (u16, String) {
    crate::egress::http_at(ip, port, "GET", path, &[], b"")
}

fn wait_closed(ip: &str, port: u16) {
    let start = Instant::now();
    while TcpStream::connect((ip, port)).is_ok() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{ip}:{port} still listens"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn listed(env: &Env) -> Vec<Value> {
    env.json(&["list"]).as_array().unwrap().clone()
}

/// What a granted application account can do on every front-end, and what a publish
/// changes there: the whole capability over mutual-TLS etcd.
#[test]
fn a_publish_reaches_every_front_end_over_mutual_tls_etcd() {
    let partner = Partner::start();
    let admin = home_for(&partner);
    // The whole path, so that every front-end's doctor passes.
    let f = admin.write("client-root.pem", partner.client_root.pem());
    admin.ok(&["import", &f, "--store", "root"]);
    let account = TestAccount::create();
    let mut fleet = Fleet::new(Etcd::start(1, true), admin, 3);
    let admin = &fleet.admin;

    // The administrator's home: a granted key, an agreed export name, a binding, a
    // non-exportable key, a setting.
    admin.ok(&["grant", "partner", &format!("user:{}", account.user)]);
    admin.ok(&["export", "partner", "--as", "partner.cer"]);
    let port = bind_cert(admin, "partner-api", "partner", &partner.url(""));
    let other = partner.client_ca.issue(&Spec::client("sealed.example"));
    let f = admin.write("sealed.pem", format!("{}{}", other.pem(), other.key_pem()));
    admin.ok(&["import", &f, "--name", "sealed", "--non-exportable"]);
    admin.ok(&["config", "expiry_warning_days", "45"]);

    // A renewal of the administrator's etcd identity under another name: an etcd
    // identity all the same (a key from the etcd client CA), never published.
    let tls = fleet.etcd.tls.as_ref().unwrap();
    let renewed = tls.ca.issue(&Spec::client("admin-renewed"));
    let f = admin.write(
        "renewed.pem",
        format!("{}{}", renewed.pem(), renewed.key_pem()),
    );
    admin.ok(&["import", &f, "--name", "not-the-etcd-name"]);
    let diff = admin.ok(&["fleet", "diff"]);
    assert!(!diff.contains("admin-renewed"), "{diff}");
    for line in [
        "+ certificate CN=client.example",
        "+ binding partner-api",
        "+ setting expiry_warning_days: 45",
        "+ front-end fe1",
    ] {
        assert!(diff.contains(line), "{line} in:\n{diff}");
    }
    // The administrator's own etcd identity is never published.
    assert!(!diff.contains("CN=admin"), "{diff}");

    // A fingerprint that is not the one the front-end registered is refused.
    let out = admin.run(&[
        "fleet",
        "approve",
        "fe1",
        "--fingerprint",
        "0123-4567-89ab-cdef-0123-4567-89ab-cdef",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("it was not approved"),
        "{}",
        stderr(&out)
    );

    assert_eq!(fleet.publish(), 1);
    fleet.converge(1);
    assert!(admin.ok(&["fleet", "diff"]).contains("no changes"));

    // etcd holds no private key in clear: no PKCS#8 of the home's keys anywhere.
    let home = certkeeper_store::Home::open(&admin.home).unwrap();
    let entry = home.resolve("partner").unwrap();
    let pkcs8 = home.private_key(&entry).unwrap().pkcs8_der().to_vec();
    for (key, value) in fleet.etcd.range(&fleet.prefix()) {
        assert!(
            !value.windows(32).any(|w| pkcs8.windows(32).any(|k| k == w)),
            "{key} holds key bytes"
        );
        let b64 = STANDARD.encode(&pkcs8);
        assert!(
            !String::from_utf8_lossy(&value).contains(&b64[..40]),
            "{key} holds the key in base64"
        );
    }
    drop(home);

    for node in &fleet.nodes {
        let env = &node.env;
        let entries = listed(env);
        assert!(
            entries.iter().any(
                |e| e["subject"].as_str().unwrap().contains("client.example")
                    && e["has_key"] == true
                    && e["store"] == "personal"
            ),
            "{}: {entries:#?}",
            node.name
        );
        // Its own etcd identity stays; the administrator's never arrives.
        assert!(
            !entries
                .iter()
                .any(|e| e["subject"].as_str().unwrap().contains("CN=admin"))
        );
        let show = env.json(&["show", "partner"]);
        assert!(
            show["acl"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p.as_str().unwrap().contains(&account.user)),
            "{show}"
        );
        assert_eq!(show["export_name"], "partner.cer");
        let exported = std::fs::read(
            env.home
                .parent()
                .unwrap()
                .join("home-exports")
                .join("partner.cer"),
        )
        .unwrap();
        assert!(!exported.is_empty());
        assert_eq!(env.ok(&["config", "expiry_warning_days"]).trim(), "45");
        // The non-exportable key stays so.
        let out = env.run_env(
            &[
                "export",
                "sealed",
                "--format",
                "pfx",
                "--out",
                &env.path("x.pfx"),
                "--password-env",
                "X",
            ],
            "X",
            "secret",
        );
        assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
        // The binding, on this front-end's own address, calls the partner with the key.
        crate::egress::wait_for_address(&node.ip, port);
        let (status, body) = get(&node.ip, port, "/hello");
        assert_eq!(status, 200, "{}: {body}", node.name);
        assert!(body.contains("CN=client.example"), "{body}");
        // The granted account proves it can sign, as a real other uid.
        let out = keycheck_as(node.agent(), "partner", Some((account.uid, account.gid)));
        assert!(out.status.success(), "{}: {}", node.name, stderr(&out));
        // doctor says which generation it holds.
        let doctor = env.run(&["doctor", "--socket", node.agent().socket.to_str().unwrap()]);
        let text = String::from_utf8_lossy(&doctor.stdout);
        assert!(
            text.contains(&format!(
                "front-end {} follows it; generation 1 applied",
                node.name
            )),
            "{text}"
        );
    }
    let doctor = admin.run(&["doctor", "--fleet"]);
    assert_eq!(
        doctor.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&doctor.stdout)
    );

    // Generation 2 adds a certificate the bindings do not use (a new root would change
    // their trust, and rebuild them): they keep their warm connections to the partner
    // (nginx counts the requests on its connection).
    let (_, before) = get("127.0.0.2", port, "/warm");
    let requests = |body: &str| -> u64 {
        body.split_whitespace()
            .find_map(|w| w.strip_prefix("reqs="))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no reqs= in {body}"))
    };
    let unrelated = partner.client_ca.issue(&Spec::client("unrelated.example"));
    let f = admin.write("unrelated.pem", unrelated.pem());
    admin.ok(&["import", &f, "--store", "other"]);
    assert_eq!(fleet.publish(), 2);
    fleet.converge(2);
    let (_, after) = get("127.0.0.2", port, "/warm");
    assert_eq!(
        requests(&after),
        requests(&before) + 1,
        "the upstream connection was not kept: {before} / {after}"
    );

    // Generation 3: the grant goes, the export is renamed, the binding goes.
    admin.ok(&["revoke", "partner", &format!("user:{}", account.user)]);
    admin.ok(&["export", "partner", "--as", "partner-2027.cer"]);
    admin.ok(&["unbind", "partner-api"]);
    let diff = admin.ok(&["fleet", "diff"]);
    assert!(diff.contains("- binding partner-api"), "{diff}");
    assert!(diff.contains("export name"), "{diff}");
    assert_eq!(fleet.publish(), 3);
    fleet.converge(3);
    for node in &fleet.nodes {
        wait_closed(&node.ip, port);
        let out = keycheck_as(node.agent(), "partner", Some((account.uid, account.gid)));
        assert!(
            !out.status.success(),
            "{} still lets the revoked account sign",
            node.name
        );
        let show = node.env.json(&["show", "partner"]);
        assert_eq!(show["export_name"], "partner-2027.cer");
        assert!(
            node.env
                .home
                .parent()
                .unwrap()
                .join("home-exports/partner-2027.cer")
                .exists()
        );
    }

    // A node that is not approved gets nothing, and status says so.
    fleet.add_node("fe9", 9, false);
    std::thread::sleep(Duration::from_secs(2));
    let status = fleet.status();
    let fe9 = status.iter().find(|s| s["node"] == "fe9").unwrap();
    assert_eq!(fe9["generation"], 0);
    assert_eq!(fe9["behind"], true);
    let doctor = fleet.admin.run(&["doctor", "--fleet"]);
    assert_eq!(doctor.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&doctor.stdout).contains("front-end fe9"));
    assert!(
        !listed(&fleet.nodes[3].env)
            .iter()
            .any(|e| e["has_key"] == true
                && e["subject"].as_str().unwrap().contains("client.example"))
    );
}

/// The etcd-side faults: a member of three killed, all of etcd stopped (agents serve
/// from their homes; doctor and status say so), restarted (they catch up), a front-end
/// off during three publishes, a front-end restarted while etcd is down.
#[test]
fn front_ends_serve_through_etcd_outages_and_catch_up() {
    let partner = Partner::start();
    let admin = home_for(&partner);
    let port = bind_cert(&admin, "partner-api", "partner", &partner.url(""));
    let mut fleet = Fleet::new(Etcd::start(3, false), admin, 2);
    assert_eq!(fleet.publish(), 1);
    fleet.converge(1);

    // One member of three killed: publishes and watches go on.
    fleet.etcd.kill_member(0);
    fleet.admin.ok(&["config", "client_timeout", "61"]);
    assert_eq!(fleet.publish(), 2);
    fleet.converge(2);

    // All of etcd stopped: bindings serve; doctor warns; fleet status fails (exit 6).
    fleet.etcd.stop_all();
    let (status, body) = get("127.0.0.2", port, "/during-outage");
    assert_eq!(status, 200, "{body}");
    let start = Instant::now();
    loop {
        let doctor = fleet.nodes[0].env.run(&[
            "doctor",
            "--socket",
            fleet.nodes[0].agent().socket.to_str().unwrap(),
        ]);
        let text = String::from_utf8_lossy(&doctor.stdout).into_owned();
        if text.contains("WARN  fleet") && text.contains("serving from the local home") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "doctor did not notice: {text}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let out = fleet.admin.run(&["fleet", "status"]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("etcd at"), "{}", stderr(&out));
    // A front-end restarted while etcd is down starts and serves from its home.
    fleet.nodes[1].stop_agent();
    fleet.nodes[1].start_agent();
    crate::egress::wait_for_address("127.0.0.3", port);
    let (status, _) = get("127.0.0.3", port, "/restarted-during-outage");
    assert_eq!(status, 200);

    // etcd back: everyone catches up with what is published now.
    fleet.etcd.start_all();
    fleet.admin.ok(&["config", "client_timeout", "62"]);
    assert_eq!(fleet.publish(), 3);
    fleet.converge(3);
    let doctor = fleet.nodes[0].env.run(&[
        "doctor",
        "--socket",
        fleet.nodes[0].agent().socket.to_str().unwrap(),
    ]);
    let doctor = String::from_utf8_lossy(&doctor.stdout);
    assert!(doctor.contains("generation 3 applied"), "{doctor}");

    // A front-end off during three publishes catches up to the latest on start.
    fleet.nodes[1].stop_agent();
    for timeout in ["63", "64", "65"] {
        fleet.admin.ok(&["config", "client_timeout", timeout]);
        fleet.publish();
    }
    assert_eq!(fleet.nodes[1].generation(), 3);
    fleet.nodes[1].start_agent();
    fleet.converge(6);
    assert_eq!(fleet.nodes[1].generation(), 6);
    assert_eq!(
        fleet.nodes[1].env.ok(&["config", "client_timeout"]).trim(),
        "65"
    );
}

/// What etcd (or whoever can write to it) cannot do: alter or forge a generation,
/// replay an older one, pass another environment off as this one; and what the
/// administrator is told: a removed front-end, a publish too large, a lost race.
#[test]
fn tampering_foreign_data_removal_and_races_are_refused_and_nothing_is_half_applied() {
    let (partner, mut fleet) = partner_fleet(2);
    assert_eq!(fleet.publish(), 1);
    fleet.converge(1);
    let generation_key = format!("{}generation", fleet.prefix());
    let genuine = fleet.etcd.get(&generation_key).unwrap();

    // One byte of the document changed: refused, status says why, home unchanged.
    let text = String::from_utf8(genuine.clone()).unwrap();
    let altered = text.replacen("client.example", "client.exampl3", 1);
    let altered = if altered == text {
        text.replacen("\\\"publisher\\\":\\\"", "\\\"publisher\\\":\\\"x", 1)
    } else {
        altered
    };
    assert_ne!(altered, text);
    fleet.etcd.put(&generation_key, altered.as_bytes());
    let refused = wait_for_error(&fleet, "fe1");
    assert!(
        refused.contains("was not published by this environment's administrator"),
        "{refused}"
    );
    assert_eq!(fleet.nodes[0].generation(), 1);
    // The front-end's own doctor says so too (the one view etcd cannot forge).
    let doctor = fleet.nodes[0].env.run(&[
        "doctor",
        "--socket",
        fleet.nodes[0].agent().socket.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        text.contains("WARN  fleet") && text.contains("not published by this environment's"),
        "{text}"
    );

    // Signed by another key (another administrator's environment of the same name).
    let other = Env::new();
    other.ok(&["init"]);
    let etcd2 = Etcd::start(1, false);
    other.ok(&[
        "fleet",
        "init",
        "--env",
        "prod",
        "--etcd",
        &etcd2.endpoints(),
    ]);
    other.ok(&["fleet", "publish"]);
    other.ok(&["fleet", "publish"]);
    let forged = etcd2.get(&generation_key).unwrap();
    fleet.etcd.put(&generation_key, &forged);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(fleet.nodes[0].generation(), 1);
    // `fleet init` of an existing environment on this etcd is refused.
    let out = other.run(&["fleet", "publish"]);
    assert!(out.status.success());
    let third = Env::new();
    third.ok(&["init"]);
    let out = third.run(&[
        "fleet",
        "init",
        "--env",
        "prod",
        "--etcd",
        &fleet.etcd.endpoints(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("etcd already holds environment prod"),
        "{}",
        stderr(&out)
    );
    // Joining an environment that does not exist.
    let out = third.run(&[
        "fleet",
        "join",
        "--env",
        "nosuch",
        "--node",
        "x",
        "--etcd",
        &fleet.etcd.endpoints(),
    ]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("holds no environment nosuch"),
        "{}",
        stderr(&out)
    );
    // An administrator key fingerprint that does not match.
    let out = third.run(&[
        "fleet",
        "join",
        "--env",
        "prod",
        "--node",
        "x",
        "--etcd",
        &fleet.etcd.endpoints(),
        "--admin-fingerprint",
        "0000-0000-0000-0000-0000-0000-0000-0000",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    // etcd's environment record replaced by another administrator's: the
    // administrator's publish refuses to write, and front-ends follow nothing from it.
    let environment_key = format!("{}environment", fleet.prefix());
    let genuine_environment = fleet.etcd.get(&environment_key).unwrap();
    fleet
        .etcd
        .put(&environment_key, &etcd2.get(&environment_key).unwrap());
    let out = fleet.admin.run(&["fleet", "publish"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("has another administrator key"),
        "{}",
        stderr(&out)
    );
    fleet.etcd.put(&environment_key, &genuine_environment);

    // The genuine generation 1 back (a replay of the applied one changes nothing); the
    // next publish is applied again.
    fleet.etcd.put(&generation_key, &genuine);
    fleet.admin.ok(&["config", "client_timeout", "70"]);
    let published = fleet.publish();
    fleet.converge(published);

    // An altered generation on etcd is repaired by publishing again.
    fleet.etcd.put(&generation_key, altered.as_bytes());
    let repaired = fleet.publish();
    fleet.converge(repaired);

    // A registration deleted from etcd does not hide an approved front-end.
    let fe2_registration = format!("{}nodes/fe2", fleet.prefix());
    let registration = fleet.etcd.get(&fe2_registration).unwrap();
    fleet.etcd.delete(&fe2_registration);
    let doctor = fleet.admin.run(&["doctor", "--fleet"]);
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert_eq!(doctor.status.code(), Some(1), "{text}");
    assert!(
        text.contains("front-end fe2") && text.contains("registration is missing"),
        "{text}"
    );
    fleet.etcd.put(&fe2_registration, &registration);
    // Junk under the prefix neither blinds status nor lists a front-end.
    fleet
        .etcd
        .put(&format!("{}nodes/junk", fleet.prefix()), b"{\"x\":1}");
    fleet.etcd.put(
        &format!("{}nodes/bad\u{1b}]0;x\u{7}", fleet.prefix()),
        b"{}",
    );
    let status = fleet.admin.run(&["fleet", "status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{}", stderr(&status));
    assert!(!text.contains('\u{1b}'), "{text}");
    assert!(
        text.contains("junk") && text.contains("unreadable"),
        "{text}"
    );
    fleet.etcd.delete(&format!("{}nodes/junk", fleet.prefix()));
    fleet
        .etcd
        .delete(&format!("{}nodes/bad\u{1b}]0;x\u{7}", fleet.prefix()));

    // A removed front-end: nothing published afterwards opens with its key.
    let fe2_home = fleet.nodes[1].env.home.clone();
    let fe2_private = {
        let home = certkeeper_store::Home::open(&fe2_home).unwrap();
        let config = home.fleet_config().unwrap().unwrap();
        home.fleet_secret(&config).unwrap()
    };
    // Decommissioned: its agent stopped (a running one would go on reporting that
    // generations are not for it), then removed.
    fleet.nodes[1].stop_agent();
    let out = fleet.admin.ok(&["fleet", "remove", "fe2"]);
    assert!(
        out.contains("nothing published from now on is sealed to it"),
        "{out}"
    );
    let after = fleet.publish();
    fleet.nodes.truncate(1);
    fleet.converge(after);
    let everything = fleet.etcd.range(&fleet.prefix());
    assert!(
        !everything.iter().any(|(k, _)| k.ends_with("/fe2")),
        "{:?}",
        everything.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );
    // Every sealed bundle on etcd, and every value whole, tried with its key.
    let envelope: Value =
        serde_json::from_slice(&fleet.etcd.get(&generation_key).unwrap()).unwrap();
    let bundles: Vec<Vec<u8>> = envelope["sealed"]
        .as_object()
        .unwrap()
        .values()
        .map(|b| STANDARD.decode(b.as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(bundles.len(), 1, "sealed to fe1 alone: {envelope}");
    let values = everything.iter().map(|(_, v)| v.clone()).chain(bundles);
    for value in values {
        for generation in 0..=after + 1 {
            for node in ["fe1", "fe2"] {
                assert!(
                    certkeeper_fleet::crypto::open(&fe2_private, "prod", node, generation, &value)
                        .is_err(),
                    "a value opens with the removed front-end's key"
                );
            }
        }
    }
    let out = fleet.admin.run(&["fleet", "remove", "fe2"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));

    // Too large for one etcd request: refused, nothing written.
    let bundle: String = (0..400)
        .map(|i| {
            let mut spec = Spec::client(&format!("bulk{i}.example"));
            spec.dns = (0..90)
                .map(|j| format!("host-{j}-of-certificate-{i}.bulk.example"))
                .collect();
            spec.eku.clear();
            partner.client_ca.issue(&spec).pem()
        })
        .collect();
    let f = fleet.admin.write("bulk.pem", bundle);
    fleet.admin.ok(&["import", &f, "--store", "other"]);
    let before = fleet.etcd.get(&generation_key).unwrap();
    let out = fleet.admin.run(&["fleet", "publish"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("etcd takes at most 1.5 MiB"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fleet.etcd.get(&generation_key).unwrap(), before);
    for e in listed(&fleet.admin) {
        if e["subject"].as_str().unwrap().contains("bulk") {
            fleet
                .admin
                .ok(&["remove", e["thumbprint"].as_str().unwrap()]);
        }
    }

    // More front-ends than etcd allows operations in a transaction (128): a publish is
    // one put whatever their number.
    {
        let db = rusqlite::Connection::open(fleet.admin.home.join("certkeeper.db")).unwrap();
        for i in 0..140 {
            let (_, public) = certkeeper_fleet::crypto::node_keypair();
            db.execute(
                "INSERT INTO fleet_members(env, node, hostname, public_key, approved_at)
                 VALUES ('prod', ?1, 'bulk', ?2, 0)",
                rusqlite::params![format!("bulk{i}"), public],
            )
            .unwrap();
        }
    }
    let many = fleet.publish();
    fleet.converge(many);
    rusqlite::Connection::open(fleet.admin.home.join("certkeeper.db"))
        .unwrap()
        .execute("DELETE FROM fleet_members WHERE hostname = 'bulk'", [])
        .unwrap();

    // Concurrent publishes from two copies of the administrator's home: each success
    // has its own generation number, the losers are told, none overwrites silently.
    let copy = tempfile::tempdir().unwrap();
    let copy_home = copy.path().join("home");
    assert!(
        Command::new("cp")
            .arg("-a")
            .arg(&fleet.admin.home)
            .arg(&copy_home)
            .status()
            .unwrap()
            .success()
    );
    let mut conflicts = 0;
    let mut numbers = Vec::new();
    for _round in 0..6 {
        let children: Vec<Child> = (0..6)
            .map(|i| {
                let home = if i % 2 == 0 {
                    &fleet.admin.home
                } else {
                    &copy_home
                };
                Command::new(env!("CARGO_BIN_EXE_certkeeper"))
                    .arg("--home")
                    .arg(home)
                    .args(["fleet", "publish", "--json"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            match out.status.code() {
                Some(0) => {
                    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
                    numbers.push(v["generation"].as_u64().unwrap());
                }
                Some(2) => {
                    assert!(
                        stderr(&out).contains("another publish landed first"),
                        "{}",
                        stderr(&out)
                    );
                    conflicts += 1;
                }
                other => panic!("publish exit {other:?}: {}", stderr(&out)),
            }
        }
        if conflicts > 0 {
            break;
        }
    }
    let distinct: BTreeSet<u64> = numbers.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        numbers.len(),
        "two publishes wrote the same generation: {numbers:?}"
    );
    assert!(conflicts > 0, "no publish ever lost a race: {numbers:?}");
    fleet.converge(*distinct.iter().max().unwrap());
}

/// Waits until `node` reports an error that contains `text`.
fn wait_for_error_containing(fleet: &Fleet, node: &str, text: &str) {
    let start = Instant::now();
    loop {
        let refused = wait_for_error(fleet, node);
        if refused.contains(text) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{node} reports {refused:?}, not {text:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn wait_for_error(fleet: &Fleet, node: &str) -> String {
    let start = Instant::now();
    loop {
        let status = fleet.status();
        if let Some(s) = status.iter().find(|s| s["node"] == node)
            && let Some(e) = s["error"].as_str()
        {
            return e.to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{node} reported no error: {status:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// kill -9 of a front-end's agent in the middle of applying: its home holds either
/// the old generation or the new one, whole.
#[test]
fn an_agent_killed_while_applying_leaves_the_old_or_the_new_generation_whole() {
    let (partner, mut fleet) = partner_fleet(1);
    // Two states that differ by 150 certificates with keys.
    let bundle: String = (0..150)
        .map(|i| {
            let leaf = partner
                .client_ca
                .issue(&Spec::client(&format!("many{i}.example")));
            format!("{}{}", leaf.pem(), leaf.key_pem())
        })
        .collect();
    let bulk = fleet.admin.write("bulk.pem", &bundle);
    let mut expected = std::collections::BTreeMap::new();
    let mut trials = 0;
    for round in 0..6 {
        fleet.nodes[0].stop_agent();
        if round % 2 == 0 {
            fleet.admin.ok(&["import", &bulk]);
        } else {
            for e in listed(&fleet.admin) {
                if e["subject"].as_str().unwrap().contains("many") {
                    fleet
                        .admin
                        .ok(&["remove", e["thumbprint"].as_str().unwrap()]);
                }
            }
        }
        let count = listed(&fleet.admin).len();
        let generation = fleet.publish();
        expected.insert(generation, count);
        // Start the agent and kill it after a varying moment.
        let node = &mut fleet.nodes[0];
        node.start_agent();
        std::thread::sleep(Duration::from_millis(50 + 120 * round as u64));
        let _ = node.agent.as_mut().unwrap().child.kill();
        let _ = node.agent.as_mut().unwrap().child.wait();
        node.agent = None;
        trials += 1;
        let applied = node.generation();
        let managed: i64 = rusqlite::Connection::open(node.env.home.join("certkeeper.db"))
            .unwrap()
            .query_row("SELECT count(*) FROM entries WHERE managed = 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        if applied == 0 {
            assert_eq!(managed, 0);
        } else {
            assert_eq!(
                managed as usize, expected[&applied],
                "generation {applied} is not whole in the home after kill -9"
            );
        }
        // Whatever it holds opens: every key unseals.
        let home = certkeeper_store::Home::open(&node.env.home).unwrap();
        for e in home.list(None).unwrap().iter().filter(|e| e.has_key) {
            home.private_key(e).unwrap();
        }
    }
    assert_eq!(trials, 6);
    // Let it finish: it applies the latest.
    fleet.nodes[0].start_agent();
    let latest = *expected.keys().max().unwrap();
    fleet.converge(latest);
}

/// A front-end that lost etcd while the generation key changed hundreds of times and
/// was compacted: it watches again from the revision it remembers, is told of the
/// compaction, reads everything again and applies what is published next.
#[test]
fn a_watch_that_fell_behind_a_compaction_reads_everything_again() {
    let (_partner, mut fleet) = partner_fleet(1);
    assert_eq!(fleet.publish(), 1);
    fleet.converge(1);
    // The agent frozen, etcd restarted under it (its connection is gone), the
    // generation key rewritten 50 times and everything before the last compacted.
    let pid = nix::unistd::Pid::from_raw(fleet.nodes[0].agent().child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    fleet.etcd.stop_all();
    fleet.etcd.start_all();
    let script = r#"
import base64, json, sys, http.client
host, port, key = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
c = http.client.HTTPConnection(host, port)
def post(path, body):
    c.request("POST", path, json.dumps(body))
    return json.loads(c.getresponse().read())
k = base64.b64encode(key).decode()
value = post("/v3/kv/range", {"key": k})["kvs"][0]["value"]
for _ in range(50):
    revision = post("/v3/kv/put", {"key": k, "value": value})["header"]["revision"]
post("/v3/kv/compaction", {"revision": revision, "physical": True})
"#;
    let live = fleet.etcd.live();
    let port = live.rsplit(':').next().unwrap();
    let out = Command::new(tools::require("/usr/bin/python3"))
        .args([
            "-c",
            script,
            "127.0.0.1",
            port,
            &format!("{}generation", fleet.prefix()),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    fleet.admin.ok(&["config", "client_timeout", "75"]);
    assert_eq!(fleet.publish(), 2);
    fleet.converge(2);
    // The watch from the remembered revision is answered right after the first read.
    std::thread::sleep(Duration::from_secs(2));
    // What the agent said.
    let mut agent = fleet.nodes[0].agent.take().unwrap();
    agent.stop();
    let mut log = String::new();
    agent
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(
        log.contains("the watch fell behind etcd's compaction: reading everything again"),
        "{log}"
    );
}

/// What a front-end holds as its own stays its own: a published certificate it
/// already had changes nothing of it (key, ACL, store), a later generation without
/// it does not remove it, and a published binding with the name of one of its own is
/// refused, whole.
#[test]
fn a_front_ends_own_entries_and_bindings_stay_its_own() {
    let (partner, fleet) = partner_fleet(1);
    let node = &fleet.nodes[0];
    let own = partner.client_ca.issue(&Spec::client("own.example"));
    let f = node
        .env
        .write("own.pem", format!("{}{}", own.pem(), own.key_pem()));
    node.env.ok(&["import", &f, "--name", "own"]);
    node.env.ok(&["grant", "own", "user:nobody"]);
    let own_port = free_port();
    node.env.ok(&[
        "bind",
        "localapi",
        "--cert",
        "own",
        "--upstream",
        &partner.url(""),
        "--listen",
        &format!("127.0.0.2:{own_port}"),
    ]);
    // The administrator publishes the same certificate, without its key.
    let f = fleet.admin.write("own-public.pem", own.pem());
    fleet
        .admin
        .ok(&["import", &f, "--store", "other", "--name", "theirs"]);
    assert_eq!(fleet.publish(), 1);
    fleet.converge(1);
    let show = fleet.nodes[0].env.json(&["show", "own"]);
    assert_eq!(show["store"], "personal", "{show}");
    assert_eq!(show["has_key"], true, "{show}");
    assert!(show["acl"].to_string().contains("nobody"), "{show}");
    // Gone from the administrator's home: still on the front-end.
    let theirs = fleet.admin.json(&["show", "theirs"]);
    fleet
        .admin
        .ok(&["remove", theirs["thumbprint"].as_str().unwrap()]);
    assert_eq!(fleet.publish(), 2);
    fleet.converge(2);
    assert_eq!(fleet.nodes[0].env.json(&["show", "own"])["has_key"], true);

    // A published certificate named as one of the front-end's own: refused (its own
    // REFs would resolve to it), nothing applied.
    let other = partner.client_ca.issue(&Spec::client("other.example"));
    let f = fleet
        .admin
        .write("other.pem", format!("{}{}", other.pem(), other.key_pem()));
    fleet.admin.ok(&["import", &f, "--name", "own"]);
    fleet.publish();
    let refused = wait_for_error(&fleet, "fe1");
    assert!(
        refused.contains("is the name of this front-end's own certificate"),
        "{refused}"
    );
    let renamed = fleet.admin.json(&["show", "own"]);
    fleet
        .admin
        .ok(&["remove", renamed["thumbprint"].as_str().unwrap()]);
    // A published Unix socket outside the agent's runtime directory: refused.
    fleet.admin.ok(&[
        "bind",
        "sock",
        "--cert",
        "partner",
        "--upstream",
        "https://elsewhere.example",
        "--listen",
        "unix:/srv/other-service/app.sock",
    ]);
    fleet.publish();
    wait_for_error_containing(
        &fleet,
        "fe1",
        "a fleet's Unix sockets are in /run/certkeeper/",
    );
    fleet.admin.ok(&["unbind", "sock"]);

    // A published binding named as the front-end's own: refused, nothing applied.
    fleet.admin.ok(&[
        "bind",
        "localapi",
        "--cert",
        "partner",
        "--upstream",
        "https://elsewhere.example",
    ]);
    fleet.publish();
    wait_for_error_containing(&fleet, "fe1", "the name of this front-end's own binding");
    assert_eq!(fleet.nodes[0].generation(), 2);
    let bindings = fleet.nodes[0].env.ok(&["bindings"]);
    assert!(
        bindings.contains("localapi") && bindings.contains(&partner.url("")),
        "{bindings}"
    );
}

/// A front-end waiting out `fleet_spread` before applying keeps its lease, and stops
/// at once when asked.
#[test]
fn waiting_out_the_spread_keeps_the_lease_and_does_not_hold_up_a_stop() {
    let (_partner, mut fleet) = partner_fleet(1);
    fleet.admin.ok(&["config", "fleet_spread", "3600"]);
    assert_eq!(fleet.publish(), 1);
    fleet.converge(1);
    // Now the front-end waits up to an hour before applying the next one.
    fleet.admin.ok(&["config", "client_timeout", "77"]);
    assert_eq!(fleet.publish(), 2);
    std::thread::sleep(Duration::from_secs(12));
    let status = fleet.status();
    assert_eq!(status[0]["alive"], true, "{status:#?}");
    let started = Instant::now();
    fleet.nodes[0].stop_agent();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the agent took {:?} to stop",
        started.elapsed()
    );
}

/// A binding's address taken first by another user's process: doctor names it, and
/// the agent takes the address as soon as it is free.
#[test]
fn a_binding_address_taken_by_another_user_is_reported_and_taken_back() {
    let partner = Partner::start();
    let env = home_for(&partner);
    let account = TestAccount::create();
    let port = free_port();
    // The squatter: a listener on the binding's address, as another uid.
    let mut squatter = crate::common::as_uid(account.uid, tools::require("/usr/bin/python3"))
        .args([
            "-c",
            "import socket,sys,time; s=socket.socket(); \
             s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(); time.sleep(600)",
            &port.to_string(),
        ])
        .spawn()
        .unwrap();
    crate::egress::wait_for_port(port);
    env.ok(&[
        "bind",
        "partner-api",
        "--cert",
        "partner",
        "--upstream",
        &partner.url(""),
        "--listen",
        &format!("127.0.0.1:{port}"),
    ]);
    let agent = RunningAgent::start(&env);
    std::thread::sleep(Duration::from_secs(1));
    let doctor = env.run(&["doctor", "--socket", agent.socket.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert_eq!(doctor.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAIL  binding-listen") && text.contains(&account.user),
        "{text}"
    );
    let _ = squatter.kill();
    let _ = squatter.wait();
    let start = Instant::now();
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let (status, body) = get("127.0.0.1", port, "/taken-back");
            if status == 200 {
                assert!(body.contains("CN=client.example"), "{body}");
                break;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the agent did not take the address back"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(agent);
}
