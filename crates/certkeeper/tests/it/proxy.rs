//! Through the corporate proxy: `request` and bindings reach the partner's nginx
//! through Debian's tinyproxy (HTTP CONNECT), with and without Basic authentication;
//! NO_PROXY bypasses it; its refusals and its absence are named. The partner's echo
//! shows that the client certificate reached it through the tunnel.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use certkeeper_testkit::tools;

use crate::agent::RunningAgent;
use crate::common::{Env, stderr};
use crate::egress::{Partner, free_port, home_for, http, wait_for_port};

/// tinyproxy in the foreground on a free loopback port, with its own configuration,
/// pid file and log; stopped on drop.
struct Tinyproxy {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Tinyproxy {
    /// Allows CONNECT to `ports` only; with `auth`, demands Basic authentication.
    fn start(ports: &[u16], auth: Option<(&str, &str)>) -> Tinyproxy {
        Self::start_on(free_port(), ports, auth)
    }

    fn start_on(port: u16, ports: &[u16], auth: Option<(&str, &str)>) -> Tinyproxy {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let mut conf = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nLogFile \"{d}/tinyproxy.log\"\n\
             PidFile \"{d}/tinyproxy.pid\"\nLogLevel Info\nMaxClients 50\nAllow 127.0.0.1\n"
        );
        for p in ports {
            conf.push_str(&format!("ConnectPort {p}\n"));
        }
        if let Some((user, password)) = auth {
            conf.push_str(&format!("BasicAuth {user} {password}\n"));
        }
        let path = dir.path().join("tinyproxy.conf");
        std::fs::write(&path, conf).unwrap();
        let child = tools::command("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port(port);
        Tinyproxy { child, port, dir }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn url_with_user(&self, user: &str) -> String {
        format!("http://{user}@127.0.0.1:{}", self.port)
    }

    /// How many CONNECTs tinyproxy logged for `target`.
    fn connects(&self, target: &str) -> usize {
        std::fs::read_to_string(self.dir.path().join("tinyproxy.log"))
            .unwrap_or_default()
            .matches(&format!("CONNECT {target} HTTP/1.1"))
            .count()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The partner's port in one of its URLs.
fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// `request` with the agent's socket and extra environment variables.
fn request(
    env: &Env,
    agent: &RunningAgent,
    args: &[&str],
    vars: &[(&str, &str)],
) -> std::process::Output {
    let mut cmd = env.cmd();
    cmd.arg("request").args(args);
    cmd.arg("--socket").arg(&agent.socket);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// The answer reached the partner with the home's client certificate.
fn assert_certificate_reached(body: &str) {
    assert!(
        body.contains("CN=client.example ") && body.contains("verify=SUCCESS"),
        "{body}"
    );
}

/// A binding's answer to GET / once it satisfies `done` (the agent applies changes
/// to the home within a second), or the last one after 10 s.
fn poll(port: u16, done: impl Fn(u16, &str) -> bool) -> (u16, String) {
    let start = Instant::now();
    loop {
        let (status, body) = http(port, "GET", "/", &[], b"");
        if done(status, &body) || start.elapsed() > Duration::from_secs(10) {
            return (status, body);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn request_goes_through_the_proxy_curl_names_and_no_proxy_bypasses_it() {
    let partner = Partner::start();
    let url = partner.url("/status");
    let target = format!("localhost:{}", port_of(&partner.url("")));
    let proxy = Tinyproxy::start(&[port_of(&url)], None);
    let env = home_for(&partner);
    let agent = RunningAgent::start(&env);

    let out = request(
        &env,
        &agent,
        &[&url, "--cert", "partner", "-v"],
        &[("HTTPS_PROXY", &proxy.url())],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_certificate_reached(&String::from_utf8_lossy(&out.stdout));
    assert!(
        stderr(&out).contains(&format!("* through the proxy 127.0.0.1:{}", proxy.port)),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains(", ALPN h2"), "{}", stderr(&out));
    assert_eq!(proxy.connects(&target), 1);

    // --proxy (curl's -x) and the lower-case variable do the same.
    let out = request(
        &env,
        &agent,
        &[&url, "--cert", "partner", "-x", &proxy.url()],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = request(
        &env,
        &agent,
        &[&url, "--cert", "partner"],
        &[("https_proxy", &proxy.url())],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(proxy.connects(&target), 3);

    // NO_PROXY (a host, with a port that is ignored) and --noproxy bypass it: the
    // call succeeds although the proxy named is down.
    let down = format!("http://127.0.0.1:{}", free_port());
    for (args, vars) in [
        (
            vec![],
            vec![
                ("HTTPS_PROXY", down.as_str()),
                ("NO_PROXY", "example.com,localhost:1"),
            ],
        ),
        (
            vec![],
            vec![("HTTPS_PROXY", down.as_str()), ("no_proxy", "*")],
        ),
        (
            vec!["--noproxy", "localhost"],
            vec![("HTTPS_PROXY", down.as_str())],
        ),
        (vec!["--proxy", ""], vec![("HTTPS_PROXY", down.as_str())]),
    ] {
        let mut all = vec![url.as_str(), "--cert", "partner"];
        all.extend(args);
        let out = request(&env, &agent, &all, &vars);
        assert!(out.status.success(), "{vars:?}: {}", stderr(&out));
        assert_certificate_reached(&String::from_utf8_lossy(&out.stdout));
    }
    assert_eq!(
        proxy.connects(&target),
        3,
        "the bypass went through the proxy"
    );

    // The proxy down: named, exit 2.
    let out = request(
        &env,
        &agent,
        &[&url, "--cert", "partner", "--proxy", &down],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "could not connect to the proxy {}: connection refused",
            down.trim_start_matches("http://")
        )),
        "{}",
        stderr(&out)
    );

    // A port the proxy does not allow: its 403 surfaced.
    let h1 = partner.h1_url("/status");
    let out = request(
        &env,
        &agent,
        &[&h1, "--cert", "partner", "--proxy", &proxy.url()],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "the proxy 127.0.0.1:{} refused CONNECT localhost:{}: 403 ",
            proxy.port,
            port_of(&h1)
        )),
        "{}",
        stderr(&out)
    );
}

#[test]
fn proxy_passwords_come_from_a_variable_or_sealed_in_the_home_never_a_command_line() {
    let partner = Partner::start();
    let url = partner.url("/status");
    let h1 = partner.h1_url("/api");
    let proxy = Tinyproxy::start(
        &[port_of(&url), port_of(&h1)],
        Some(("alice", "Proxy-s3cret")),
    );
    let env = home_for(&partner);
    let agent = RunningAgent::start(&env);

    // No user: the proxy's 407, with what to do.
    let out = request(
        &env,
        &agent,
        &[&url, "--cert", "partner", "--proxy", &proxy.url()],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "the proxy 127.0.0.1:{} refused CONNECT localhost:{}: 407 Proxy Authentication Required (the proxy wants a user",
            proxy.port,
            port_of(&url)
        )),
        "{}",
        stderr(&out)
    );

    // A password on the command line is refused, and not repeated.
    let inline = format!("http://alice:Proxy-s3cret@127.0.0.1:{}", proxy.port);
    let out = request(
        &env,
        &agent,
        &[&url, "--cert", "partner", "--proxy", &inline],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--proxy-password-env"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("s3cret"), "{}", stderr(&out));
    let out = env.run(&["config", "egress_proxy", &inline]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!stderr(&out).contains("s3cret"), "{}", stderr(&out));
    let out = env.run(&["config", "egress_proxy_password", "Proxy-s3cret"]);
    assert_eq!(out.status.code(), Some(2));

    // From a variable.
    let with_user = proxy.url_with_user("alice");
    let args = [url.as_str(), "--cert", "partner", "--proxy", &with_user];
    let mut by_var = args.to_vec();
    by_var.extend(["--proxy-password-env", "PROXY_PW"]);
    let out = request(&env, &agent, &by_var, &[("PROXY_PW", "Proxy-s3cret")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_certificate_reached(&String::from_utf8_lossy(&out.stdout));
    // A wrong one: tinyproxy answers 401.
    let out = request(&env, &agent, &by_var, &[("PROXY_PW", "wrong")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out)
            .contains(": 401 Unauthorized (the proxy did not accept the user and password)"),
        "{}",
        stderr(&out)
    );

    // In HTTPS_PROXY, the user's own environment, curl's user:password@ is taken.
    let out = request(
        &env,
        &agent,
        &[&url, "--cert", "partner"],
        &[("HTTPS_PROXY", &inline)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_certificate_reached(&String::from_utf8_lossy(&out.stdout));

    // Without one, and none in the home: said before anything is sent.
    let out = request(&env, &agent, &args, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!(
            "no password for the proxy user alice@127.0.0.1:{}",
            proxy.port
        )),
        "{}",
        stderr(&out)
    );

    // Sealed in the home: the owner's request and the bindings use it.
    let out = env
        .cmd()
        .args([
            "config",
            "egress_proxy_password",
            "--password-env",
            "PROXY_PW",
            "--proxy",
            &with_user,
        ])
        .env("PROXY_PW", "Proxy-s3cret")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = request(&env, &agent, &args, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_certificate_reached(&String::from_utf8_lossy(&out.stdout));

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    env.ok(&[
        "bind",
        "authed",
        "--cert",
        "partner",
        "--upstream",
        &partner.url("/api"),
        "--listen",
        &listen,
        "--proxy",
        &with_user,
    ]);
    wait_for_port(port);
    let (status, body) = http(port, "GET", "/", &[], b"");
    assert_eq!(status, 200, "{body}");
    assert_certificate_reached(&body);
    // An HTTP/1.1 upstream: the relay's hand-written path goes through the tunnel too.
    let h1_port = free_port();
    env.ok(&[
        "bind",
        "authed-h1",
        "--cert",
        "partner",
        "--upstream",
        &h1,
        "--listen",
        &format!("127.0.0.1:{h1_port}"),
        "--proxy",
        &with_user,
    ]);
    wait_for_port(h1_port);
    for _ in 0..3 {
        let (status, body) = http(h1_port, "GET", "/", &[], b"");
        assert_eq!(status, 200, "{body}");
        assert_certificate_reached(&body);
    }

    // A wrong password set again reaches the relay: the proxy's refusal is a 502.
    let out = env
        .cmd()
        .args([
            "config",
            "egress_proxy_password",
            "--password-env",
            "PROXY_PW",
            "--proxy",
        ])
        .arg(&with_user)
        .env("PROXY_PW", "not-it")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let (status, body) = poll(port, |s, _| s == 502);
    assert_eq!(status, 502, "{body}");
    assert!(
        body.contains(&format!(
            "the proxy 127.0.0.1:{} refused CONNECT",
            proxy.port
        )),
        "{body}"
    );
    assert!(body.contains("401 Unauthorized"), "{body}");

    // The password is nowhere in the home in clear.
    for entry in std::fs::read_dir(&env.home).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        for secret in [&b"Proxy-s3cret"[..], b"not-it"] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret),
                "{} holds the proxy password in clear",
                path.display()
            );
        }
    }
}

#[test]
fn bindings_use_the_homes_egress_proxy_and_name_it_when_it_fails() {
    let partner = Partner::start();
    let url = partner.url("/api");
    let target = format!("localhost:{}", port_of(&url));
    let proxy_port = free_port();
    let mut proxy = Tinyproxy::start_on(proxy_port, &[port_of(&url)], None);
    let env = home_for(&partner);
    env.ok(&["config", "egress_proxy", &proxy.url()]);
    let agent = RunningAgent::start(&env);

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    env.ok(&[
        "bind",
        "via-home",
        "--cert",
        "partner",
        "--upstream",
        &url,
        "--listen",
        &listen,
    ]);
    wait_for_port(port);
    let (status, body) = http(port, "GET", "/", &[], b"");
    assert_eq!(status, 200, "{body}");
    assert_certificate_reached(&body);
    assert!(proxy.connects(&target) >= 1, "not through the proxy");

    // The proxy drops everything: the failure names it; the next request after it is
    // back opens a new tunnel.
    proxy.stop();
    let (status, body) = http(port, "GET", "/", &["Connection: close"], b"");
    // A pooled tunnel may still carry one request; then the next one fails.
    let (status, body) = if status == 200 {
        http(port, "GET", "/", &[], b"")
    } else {
        (status, body)
    };
    assert_eq!(status, 502, "{body}");
    assert!(
        body.contains(&format!(
            "could not connect to the proxy 127.0.0.1:{proxy_port}"
        )) || body.contains(&format!("localhost:{}", port_of(&url))),
        "{body}"
    );
    let (status, body) = http(port, "GET", "/", &[], b"");
    assert_eq!(status, 502, "{body}");
    assert!(
        body.contains(&format!(
            "could not connect to the proxy 127.0.0.1:{proxy_port}"
        )),
        "{body}"
    );
    let proxy = Tinyproxy::start_on(proxy_port, &[port_of(&url)], None);
    for _ in 0..4 {
        let (status, body) = http(port, "GET", "/", &[], b"");
        assert_eq!(status, 200, "{body}");
        assert_certificate_reached(&body);
    }
    // One tunnel carries them all (the partner speaks HTTP/2: one shared connection).
    assert_eq!(proxy.connects(&target), 1);
    // doctor --online checks the binding the way its relay goes.
    let out = env.run(&[
        "doctor",
        "--online",
        "--socket",
        agent.socket.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "{target} through the proxy 127.0.0.1:{proxy_port} answered"
        )),
        "{text}"
    );
    assert_eq!(proxy.connects(&target), 2);
    // `request --binding` goes the binding's way, not the (empty) environment's.
    let out = request(&env, &agent, &["/", "--binding", "via-home"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_certificate_reached(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(proxy.connects(&target), 3);
    // A granted service account's too: the agent tells it the binding's proxy.
    env.ok(&["grant", "partner", "uid:4716"]);
    let out = crate::granted::certkeeper_as(
        4716,
        &env,
        &agent,
        &["request", "/", "--binding", "via-home"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_certificate_reached(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(proxy.connects(&target), 4);

    // A port the proxy does not allow: its 403 in the 502.
    let h1 = partner.h1_url("/api");
    let refused = free_port();
    env.ok(&[
        "bind",
        "refused",
        "--cert",
        "partner",
        "--upstream",
        &h1,
        "--listen",
        &format!("127.0.0.1:{refused}"),
    ]);
    wait_for_port(refused);
    let (status, body) = http(refused, "GET", "/", &[], b"");
    assert_eq!(status, 502, "{body}");
    assert!(
        body.contains(&format!(
            "the proxy 127.0.0.1:{proxy_port} refused CONNECT localhost:{}: 403",
            port_of(&h1)
        )),
        "{body}"
    );

    // egress_no_proxy: the partner reached directly, the proxy bypassed.
    env.ok(&["config", "egress_no_proxy", "localhost"]);
    let (status, body) = poll(refused, |s, _| s == 200);
    assert_eq!(status, 200, "{body}");
    assert_certificate_reached(&body);

    // A binding's own --proxy wins over the home's setting (and its no_proxy).
    let down = format!("http://127.0.0.1:{}", free_port());
    env.ok(&[
        "bind",
        "refused",
        "--cert",
        "partner",
        "--upstream",
        &h1,
        "--listen",
        &format!("127.0.0.1:{refused}"),
        "--proxy",
        &down,
    ]);
    let (status, body) = poll(refused, |s, _| s == 502);
    assert_eq!(status, 502, "{body}");
    assert!(
        body.contains(&format!(
            "could not connect to the proxy {}",
            down.trim_start_matches("http://")
        )),
        "{body}"
    );
    assert!(
        env.ok(&["bindings"]).contains(&format!("proxy {down})")),
        "{}",
        env.ok(&["bindings"])
    );
    let shown = env.ok(&["bindings", "--json"]);
    assert!(
        shown.contains(&format!("\"proxy\": \"{down}\""))
            || shown.contains(&format!("\"proxy\":\"{down}\"")),
        "{shown}"
    );
}

/// A fake proxy: answers each connection's CONNECT with `answer`, after checking
/// that the request is exactly `expected`, then closes. Returns its port.
fn fake_proxy(expected: String, answer: Vec<u8>) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read_exact(&mut byte).is_ok() {
                head.push(byte[0]);
            }
            if head == expected.as_bytes() {
                let _ = stream.write_all(&answer);
            } else {
                let _ = stream.write_all(b"HTTP/1.1 400 Unexpected request\r\n\r\n");
            }
        }
    });
    port
}

#[test]
fn a_proxy_answering_wrongly_is_refused_and_nothing_of_its_answer_passed_on() {
    let partner = Partner::start();
    let url = partner.url("/status");
    let target = format!("localhost:{}", port_of(&url));
    let env = home_for(&partner);
    let agent = RunningAgent::start(&env);
    let expected = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
    let mut long = b"HTTP/1.1 200 OK\r\nX-Padding: ".to_vec();
    long.resize(20_000, b'a');
    let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..100 {
        many.extend_from_slice(format!("X-{i}: a\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let cases: [(&[u8], &str); 6] = [
        (&many, "more than 64 header fields"),
        (
            b"HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 200 OK\r\n\r\nforged",
            "it sent data after its answer, before the TLS handshake",
        ),
        (&long, "its answer's head is longer than 16384 bytes"),
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "not an HTTP answer"),
        (
            b"HTTP/1.1 302 Found\r\nLocation: http://portal.corp/\r\n\r\n",
            "refused CONNECT",
        ),
        (
            b"HTTP/1.1 200 Conn",
            "closed the connection before answering CONNECT",
        ),
    ];
    for (answer, why) in cases {
        let port = fake_proxy(expected.clone(), answer.to_vec());
        let proxy = format!("http://127.0.0.1:{port}");
        let out = request(
            &env,
            &agent,
            &[&url, "--cert", "partner", "--proxy", &proxy],
            &[],
        );
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("the proxy 127.0.0.1:{port} ")),
            "{err}"
        );
        assert!(err.contains(why), "{why}: {err}");
        assert!(
            !err.contains("forged") && !err.contains("portal.corp"),
            "{err}"
        );
        assert!(
            out.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
