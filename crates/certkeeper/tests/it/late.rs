//! Partners that ask for the client certificate late (Apache's per-location
//! `SSLVerifyClient require`: TLS 1.2 renegotiation, TLS 1.3 post-handshake
//! authentication), and the partners around them, reached through `request` (the
//! agent's OpenSSL session over the caller's connection), through a binding (the
//! relay's OpenSSL connections), and by a granted service account.

use crate::agent::RunningAgent;
use crate::apache::{Apache, Mode};
use crate::common::{Env, stderr};
use crate::egress::{Partner, bind_cert, home_for, http, request, wait_for_port};

const GRANTED: u32 = 4719;

/// Whether `/secure/` answered, naming our certificate (Apache writes the subject as
/// "O=certkeeper tests,CN=client.example").
fn reached(body: &str) -> bool {
    body.contains("secure ") && body.contains("CN=client.example")
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn partners_that_ask_late_get_the_certificate_through_request_bindings_and_granted_users() {
    let partner = Partner::start();
    let env = home_for(&partner);
    let agent = RunningAgent::start(&env);
    env.ok(&["grant", "partner", &format!("uid:{GRANTED}")]);
    for (mode, how, logged) in [
        (Mode::LateTls12, "renegotiation", "AH02221"),
        (Mode::LateTls13, "post-handshake authentication", "AH10129"),
    ] {
        let apache = Apache::start(&partner, mode);
        // request: the rustls handshake shows the partner did not ask; the agent makes
        // the session with OpenSSL, which answers the late request.
        let out = request(
            &env,
            &agent,
            &[&apache.url("/secure/"), "--cert", "partner", "-v"],
        );
        let err = stderr(&out);
        assert!(out.status.success(), "{mode:?}: {err}");
        assert!(reached(&stdout(&out)), "{mode:?}: {}", stdout(&out));
        assert!(err.contains("(OpenSSL)"), "{mode:?}: {err}");
        assert!(
            err.contains(&format!(
                "* the partner asked for the client certificate after the handshake ({how}) \
                 from: CN=Partner Client CA"
            )),
            "{mode:?}: {err}"
        );
        assert!(
            apache.error_log().contains(logged),
            "{mode:?}: Apache did not ask late"
        );
        // A path where it never asks, on the same kind of session: said plainly.
        let out = request(
            &env,
            &agent,
            &[&apache.url("/open/"), "--cert", "partner", "-v"],
        );
        assert!(out.status.success(), "{mode:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "open\n");
        assert!(
            stderr(&out)
                .contains("* the partner did not ask for a client certificate on this path"),
            "{mode:?}: {}",
            stderr(&out)
        );
        // --json says when it asked.
        let out = env.run(&[
            "request",
            &apache.url("/secure/"),
            "--cert",
            "partner",
            "--json",
            "--socket",
            agent.socket.to_str().unwrap(),
        ]);
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["status"], 200, "{doc}");
        assert_eq!(doc["tls"]["library"], "OpenSSL", "{doc}");
        assert_eq!(doc["tls"]["client_certificate_requested"], true, "{doc}");
        assert_eq!(
            doc["tls"]["client_certificate_requested_after_handshake"], true,
            "{doc}"
        );

        // A binding: its upstream switches to OpenSSL after one rustls handshake in
        // which the partner did not ask, and every path works.
        let name = format!("late-{}", if mode == Mode::LateTls12 { 12 } else { 13 });
        let port = bind_cert(&env, &name, "partner", &apache.url("/"));
        wait_for_port(port);
        for _ in 0..3 {
            let (status, body) = http(port, "GET", "/secure/", &[], b"");
            assert_eq!(status, 200, "{mode:?}: {body}");
            assert!(reached(&body), "{mode:?}: {body}");
            let (status, body) = http(port, "GET", "/open/", &[], b"");
            assert_eq!((status, body.as_str()), (200, "open\n"), "{mode:?}");
        }

        // A granted service account: through request (its own connection, handed to
        // the agent) and through the binding.
        let out = crate::granted::certkeeper_as(
            GRANTED,
            &env,
            &agent,
            &["request", &apache.url("/secure/"), "--cert", "partner"],
        );
        assert!(out.status.success(), "{mode:?}: {}", stderr(&out));
        assert!(reached(&stdout(&out)));
        let out = crate::granted::certkeeper_as(
            GRANTED,
            &env,
            &agent,
            &["request", "/secure/", "--binding", &name],
        );
        assert!(out.status.success(), "{mode:?}: {}", stderr(&out));
        assert!(reached(&stdout(&out)));
        let (status, body) =
            crate::granted::get_as(GRANTED, &format!("127.0.0.1:{port}"), "/secure/");
        assert_eq!(status, 200, "{mode:?}: {body}");
        assert!(reached(&body), "{mode:?}: {body}");
    }
    // The agent audited each session it made.
    let audit = std::fs::read_to_string(env.home.join("audit.log")).unwrap();
    assert!(
        audit.contains(r#""op":"tls_session""#) && audit.contains(&format!(r#""uid":{GRANTED}"#)),
        "{audit}"
    );
}

#[test]
fn partners_that_ask_up_front_never_or_from_other_cas_are_told_apart() {
    let partner = Partner::start();
    let env = home_for(&partner);
    let mut agent = RunningAgent::start(&env);

    // Asks in the handshake (optional): rustls serves it, as any up-front partner.
    let optional = Apache::start(&partner, Mode::Optional);
    let out = request(
        &env,
        &agent,
        &[&optional.url("/secure/"), "--cert", "partner", "-v"],
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(reached(&stdout(&out)));
    assert!(
        err.contains("(rustls)") && err.contains("* the server asked for a client certificate"),
        "{err}"
    );
    let port = bind_cert(&env, "optional", "partner", &optional.url("/"));
    wait_for_port(port);
    let (status, body) = http(port, "GET", "/secure/", &[], b"");
    assert_eq!(status, 200, "{body}");

    // Never asks: its 403 comes with the reason.
    let never = Apache::start(&partner, Mode::NeverAsks);
    let out = request(
        &env,
        &agent,
        &[&never.url("/secure/"), "--cert", "partner", "-v"],
    );
    let err = stderr(&out);
    assert!(
        err.contains("* the partner did not ask for a client certificate on this path")
            && err.contains(
                "the upstream answered 403 Forbidden (the partner did not ask for a client \
                 certificate on this connection)"
            ),
        "{err}"
    );
    let port = bind_cert(&env, "never", "partner", &never.url("/"));
    wait_for_port(port);
    let (status, _) = http(port, "GET", "/secure/", &[], b"");
    assert_eq!(status, 403);

    // Asks late, naming only another CA (it still verifies against ours): the call
    // goes through, and -v warns which CA it named.
    let other = Apache::start(&partner, Mode::OtherCas);
    let out = request(
        &env,
        &agent,
        &[&other.url("/secure/"), "--cert", "partner", "-v"],
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("after the handshake")
            && err.contains("from: CN=Some Other Client CA")
            && err.contains(
                "* warning: the partner accepts certificates from: CN=Some Other Client CA"
            )
            && err.contains("; ours is issued by CN=Partner Client CA"),
        "{err}"
    );

    // The binding's refusal from the partner that never asked: the agent's log says
    // why, as request does.
    agent.stop();
    let mut log = String::new();
    std::io::Read::read_to_string(&mut agent.child.stderr.take().unwrap(), &mut log).unwrap();
    assert!(
        log.contains(
            "certkeeper egress never: GET /secure/: 403: the partner did not ask for a client \
             certificate on this connection"
        ),
        "{log}"
    );
}

/// A TLS 1.3 partner (Python's ssl) that, after reading a request head, asks for the
/// client certificate `count` times by post-handshake authentication, `delay` seconds
/// after the request, then answers 200 with how many times it got one.
fn asker(env: &Env, partner: &Partner, count: u32, delay: f32) -> (std::process::Child, u16) {
    let mut spec = certkeeper_testkit::Spec::server("localhost");
    spec.dns.push("127.0.0.1".into());
    let server = partner.server_root.issue(&spec);
    let cert = env.write("asker.pem", server.pem());
    let key = env.write("asker.key", server.key_pem());
    let cas = env.write(
        "asker-ca.pem",
        format!("{}{}", partner.client_ca.pem(), partner.client_root.pem()),
    );
    let port = crate::egress::free_port();
    let script = r#"
import socket, ssl, sys, time
port, cert, key, cas, count, delay = sys.argv[1:7]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
ctx.load_cert_chain(cert, key)
ctx.load_verify_locations(cas)
ctx.verify_mode = ssl.CERT_REQUIRED
ctx.post_handshake_auth = True
listener = socket.create_server(("127.0.0.1", int(port)))
while True:
    raw, _ = listener.accept()
    try:
        conn = ctx.wrap_socket(raw, server_side=True)
        head = b""
        while b"\r\n\r\n" not in head:
            more = conn.recv(4096)
            if not more:
                raise EOFError("closed before a request")
            head += more
        time.sleep(float(delay))
        got = 0
        for _ in range(int(count)):
            conn.verify_client_post_handshake()
            conn.settimeout(0.3)
            try:
                conn.recv(1)
            except (socket.timeout, ssl.SSLWantReadError):
                pass
            conn.settimeout(None)
            if conn.getpeercert():
                got += 1
        body = b"got %d\n" % got
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        conn.close()
    except Exception as e:
        print("asker:", e, file=sys.stderr, flush=True)
"#;
    let child = certkeeper_testkit::tools::command("python3")
        .args(["-c", script, &port.to_string(), &cert, &key, &cas])
        .args([count.to_string(), delay.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port);
    (child, port)
}

/// Audit records of `op` whose detail contains `what`.
fn audited(env: &Env, what: &str) -> usize {
    std::fs::read_to_string(env.home.join("audit.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(r#""op":"tls_session""#) && l.contains(what))
        .count()
}

#[test]
fn each_late_signature_is_audited_bounded_and_stops_at_a_revoke() {
    let partner = Partner::start();
    let env = home_for(&partner);
    let agent = RunningAgent::start(&env);
    // Three requests after the handshake: each answered, each audited.
    let (mut three, port) = asker(&env, &partner, 3, 0.0);
    let url = format!("https://localhost:{port}/");
    let out = request(&env, &agent, &[&url, "--cert", "partner", "-v"]);
    let _ = three.kill();
    let _ = three.wait();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "got 3\n");
    assert_eq!(
        audited(&env, &format!("certificate presented to 127.0.0.1:{port}")),
        3
    );
    // A partner that keeps asking gets at most 32 signatures; the session is cut.
    let (mut greedy, port) = asker(&env, &partner, 40, 0.0);
    let url = format!("https://localhost:{port}/");
    let out = request(&env, &agent, &[&url, "--cert", "partner"]);
    let _ = greedy.kill();
    let _ = greedy.wait();
    assert!(!out.status.success(), "{}", stdout(&out));
    assert_eq!(
        audited(&env, &format!("certificate presented to 127.0.0.1:{port}")),
        32
    );
    // A granted account's session: revoked while the partner waits to ask, the
    // certificate is refused at the partner's request, and audited so.
    env.ok(&["grant", "partner", &format!("uid:{GRANTED}")]);
    let (mut slow, port) = asker(&env, &partner, 1, 3.0);
    let url = format!("https://localhost:{port}/");
    let call = {
        let (home, socket) = (env.home.clone(), agent.socket.clone());
        std::thread::spawn(move || {
            crate::common::as_uid(GRANTED, crate::agent::shared_binary())
                .args(["request", &url, "--cert", "partner"])
                .env("CERTKEEPER_HOME", home)
                .env("CERTKEEPER_SOCKET", socket)
                .env("HOME", "/nonexistent")
                .output()
                .unwrap()
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(1500));
    env.ok(&["revoke", "partner", &format!("uid:{GRANTED}")]);
    let out = call.join().unwrap();
    let _ = slow.kill();
    let _ = slow.wait();
    assert_ne!(stdout(&out), "got 1\n", "{}", stderr(&out));
    assert_eq!(audited(&env, "asked for the certificate after a revoke"), 1);
}
