//! Partners that ask for the client certificate late (Apache's per-location
//! `SSLVerifyClient require`: TLS 1.2 renegotiation, TLS 1.3 post-handshake
//! authentication), and the partners around them, reached through `request` (the
//! agent's OpenSSL session over the caller's connection), through a binding (the
//! relay's OpenSSL connections), and by a granted service account.

use crate::agent::RunningAgent;
use crate::apache::{Apache, Mode};
use crate::common::{Env, stderr};
use crate::egress::{Partner, bind_cert, home_for, http, wait_for_port};

const GRANTED: u32 = 4719;

fn request(env: &Env, agent: &RunningAgent, args: &[&str]) -> std::process::Output {
    let mut all = vec!["request"];
    all.extend(args);
    all.extend(["--socket", agent.socket.to_str().unwrap()]);
    env.run(&all)
}

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
        assert!(
            reached(&stdout(&out)),
            "{mode:?}: {}",
            stdout(&out)
        );
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
            assert!(
                reached(&body),
                "{mode:?}: {body}"
            );
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
        assert!(
            reached(&body),
            "{mode:?}: {body}"
        );
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
    let agent = RunningAgent::start(&env);

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
}
