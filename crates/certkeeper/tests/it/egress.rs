//! Mutual-TLS calls against a real nginx (Debian's) on loopback that demands a client
//! certificate and echoes what it saw: `request`, bindings relayed by the agent,
//! refusals surfaced clearly, SOAP headers, live renewal, a dead upstream, streaming.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use certkeeper_testkit::{KeyKind, Spec, TestCert, tools};

use crate::agent::RunningAgent;
use crate::common::{Env, stderr};

/// A free port for a server a test starts (nginx, s_server, a binding's listener).
/// Taken below the kernel's ephemeral range: a port there is never handed to a
/// port-0 listener or an outgoing connection between this check and the server
/// binding it, which a port asked of the kernel could be (another test's listener
/// then answers in the server's place). Unique within this run.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let (low, span) = (10_000, ephemeral_low.saturating_sub(10_000).max(1000));
    let start = std::process::id() * 7919;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(n < span, "no free port below {ephemeral_low}");
        let port = u16::try_from(low + (start + n) % span).unwrap();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub fn wait_for_port(port: u16) {
    wait_for_address("127.0.0.1", port);
}

/// Waits up to 10 s until something listens on `ip:port`.
pub fn wait_for_address(ip: &str, port: u16) {
    let start = Instant::now();
    while TcpStream::connect((ip, port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "nothing listens on {ip}:{port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A plain-HTTP backend behind the partner: for every request it waits `delay`,
/// writes `answer`, then keeps the connection open for `hold`. Returns its port.
fn backend(delay: Duration, answer: &'static [u8], hold: Duration) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read_exact(&mut byte).is_ok() {
                    head.push(byte[0]);
                }
                std::thread::sleep(delay);
                let _ = stream.write_all(answer);
                std::thread::sleep(hold);
            });
        }
    });
    port
}

/// A request as the partner's application saw it, behind the partner's nginx:
/// method, target, body.
pub type Seen = (String, String, Vec<u8>);

/// The partner's application behind nginx (`/ledger/` on the h1-only port): records
/// every request nginx parsed and passed on, and answers `seen METHOD TARGET BODY`.
fn ledger_backend(seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            // nginx passes requests on one per connection, its body buffered and
            // framed by Content-Length.
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read_exact(&mut byte).is_ok() {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let mut words = head.split_whitespace();
            let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            let mut body = vec![0u8; length];
            let _ = stream.read_exact(&mut body);
            let mut answer = format!("seen {method} {target} ").into_bytes();
            answer.extend_from_slice(&body);
            seen.lock()
                .unwrap()
                .push((method.to_string(), target.to_string(), body));
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                answer.len()
            );
            let _ = stream.write_all(&answer);
        }
    });
    port
}

/// The partner's side: a server PKI, a client PKI it trusts, and nginx.
pub struct Partner {
    /// What the partner's application behind `/ledger/` has seen, in order.
    pub ledger: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
    pub client_root: TestCert,
    pub client_ca: TestCert,
    pub server_root: TestCert,
    _dir: tempfile::TempDir,
    nginx: Child,
    port: u16,
    /// The same service without HTTP/2, idle connections closed after 2 s.
    h1_port: u16,
    rogue_port: u16,
    /// Serves a certificate from the trusted server root that expired yesterday.
    expired_port: u16,
    /// Serves a certificate from the trusted server root for another host name.
    misnamed_port: u16,
    /// The same partner as served by a strict TLS stack (OpenSSL's s_server with
    /// -verify_return_error, as IIS or Java servers do): a client certificate it does
    /// not trust ends the handshake with an alert instead of an HTTP 400.
    strict: Child,
    strict_port: u16,
    /// Accepts TCP connections (in the kernel's backlog) and never answers.
    blackhole: std::net::TcpListener,
}

impl Partner {
    pub fn start() -> Partner {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let client_root = TestCert::self_signed(&Spec::ca("Partner Client Root"));
        let client_ca = client_root.issue(&Spec::ca("Partner Client CA"));
        let server_root = TestCert::self_signed(&Spec::ca("Partner Server Root"));
        let mut server_spec = Spec::server("localhost");
        server_spec.dns.push("127.0.0.1".into());
        let server = server_root.issue(&server_spec);
        let rogue_root = TestCert::self_signed(&Spec::ca("Rogue Root"));
        let rogue = rogue_root.issue(&Spec::server("localhost"));
        std::fs::write(d.join("server.pem"), server.pem()).unwrap();
        std::fs::write(d.join("server.key"), server.key_pem()).unwrap();
        std::fs::write(d.join("rogue.pem"), rogue.pem()).unwrap();
        std::fs::write(d.join("rogue.key"), rogue.key_pem()).unwrap();
        let mut expired_spec = Spec::server("localhost").days(-60, -1);
        expired_spec.dns.push("127.0.0.1".into());
        let expired = server_root.issue(&expired_spec);
        std::fs::write(d.join("expired.pem"), expired.pem()).unwrap();
        std::fs::write(d.join("expired.key"), expired.key_pem()).unwrap();
        let misnamed = server_root.issue(&Spec::server("partner.example"));
        std::fs::write(d.join("misnamed.pem"), misnamed.pem()).unwrap();
        std::fs::write(d.join("misnamed.key"), misnamed.key_pem()).unwrap();
        // 1 GiB of zeros for downloads, sparse: it takes no disk.
        std::fs::File::create(d.join("big.bin"))
            .unwrap()
            .set_len(BIG)
            .unwrap();
        std::fs::write(
            d.join("client-ca.pem"),
            format!("{}{}", client_ca.pem(), client_root.pem()),
        )
        .unwrap();
        let (port, h1_port, rogue_port, sink_port, expired_port, misnamed_port) = (
            free_port(),
            free_port(),
            free_port(),
            free_port(),
            free_port(),
            free_port(),
        );
        let blackhole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let blackhole_port = blackhole.local_addr().unwrap().port();
        // Sends the first part of a 1,000-byte body, then nothing more.
        let staller_port = backend(
            Duration::ZERO,
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nfirst part",
            Duration::from_secs(60),
        );
        // Answers with a chunked body.
        let chunky_port = backend(
            Duration::ZERO,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n\
              6\r\nhello \r\n5;x=1\r\nworld\r\n0\r\n\r\n",
            Duration::ZERO,
        );
        // Answers after 300 ms.
        let late_port = backend(
            Duration::from_millis(300),
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nlate\n",
            Duration::ZERO,
        );
        let ledger = std::sync::Arc::default();
        let ledger_port = ledger_backend(std::sync::Arc::clone(&ledger));
        let p = d.display();
        let echo = r#"default_type text/plain; return 200 "subject=$ssl_client_s_dn serial=$ssl_client_serial verify=$ssl_client_verify method=$request_method soapaction=$http_soapaction ct=$content_type uri=$request_uri conn=$connection reqs=$connection_requests reused=$ssl_session_reused len=$content_length\n";"#;
        let conf = format!(
            r#"daemon off; master_process off; worker_processes 1; pid {p}/nginx.pid; error_log {p}/error.log info;
events {{ worker_connections 256; }}
http {{
  access_log {p}/access.log;
  client_body_temp_path {p}/t1; proxy_temp_path {p}/t2; fastcgi_temp_path {p}/t3; uwsgi_temp_path {p}/t4; scgi_temp_path {p}/t5;
  server {{
    listen 127.0.0.1:{port} ssl http2;
    ssl_certificate {p}/server.pem; ssl_certificate_key {p}/server.key;
    ssl_client_certificate {p}/client-ca.pem; ssl_verify_client on; ssl_verify_depth 3;
    location /ledger/ {{ client_max_body_size 1m; proxy_pass http://127.0.0.1:{ledger_port}; }}
    location /upload {{ client_max_body_size 0; add_header X-Received $request_length always; proxy_pass http://127.0.0.1:{sink_port}; }}
    location = /big {{ default_type application/octet-stream; alias {p}/big.bin; }}
    location / {{ {echo} }}
  }}
  server {{
    listen 127.0.0.1:{h1_port} ssl;
    keepalive_timeout 2s;
    ssl_session_cache shared:h1:1m;
    ssl_certificate {p}/server.pem; ssl_certificate_key {p}/server.key;
    ssl_client_certificate {p}/client-ca.pem; ssl_verify_client on; ssl_verify_depth 3;
    location /close {{ keepalive_timeout 0; {echo} }}
    location /slow {{ proxy_pass http://127.0.0.1:{blackhole_port}; proxy_read_timeout 300s; }}
    location /stall {{ proxy_pass http://127.0.0.1:{staller_port}; proxy_buffering off; proxy_read_timeout 300s; }}
    location /late {{ proxy_pass http://127.0.0.1:{late_port}; }}
    location /chunked {{ proxy_pass http://127.0.0.1:{chunky_port}; proxy_http_version 1.1; proxy_buffering off; }}
    location /upload {{ client_max_body_size 0; add_header X-Received $request_length always; proxy_pass http://127.0.0.1:{sink_port}; }}
    location = /big {{ default_type application/octet-stream; alias {p}/big.bin; }}
    location /ledger/ {{ client_max_body_size 1m; proxy_pass http://127.0.0.1:{ledger_port}; }}
    location /ledger/small/ {{ client_max_body_size 8; proxy_pass http://127.0.0.1:{ledger_port}; }}
    location /ledger/early/ {{ default_type text/plain; return 200 "early $request_uri\n"; }}
    location / {{ {echo} }}
  }}
  server {{
    listen 127.0.0.1:{sink_port};
    location / {{ client_max_body_size 0; return 200 "uploaded $request_length\n"; }}
  }}
  server {{
    listen 127.0.0.1:{rogue_port} ssl;
    ssl_certificate {p}/rogue.pem; ssl_certificate_key {p}/rogue.key;
    location / {{ return 200 "rogue\n"; }}
  }}
  server {{
    listen 127.0.0.1:{expired_port} ssl;
    ssl_certificate {p}/expired.pem; ssl_certificate_key {p}/expired.key;
    location / {{ return 200 "expired\n"; }}
  }}
  server {{
    listen 127.0.0.1:{misnamed_port} ssl;
    ssl_certificate {p}/misnamed.pem; ssl_certificate_key {p}/misnamed.key;
    location / {{ return 200 "misnamed\n"; }}
  }}
}}
"#
        );
        std::fs::write(d.join("nginx.conf"), conf).unwrap();
        let mut nginx = tools::command("nginx")
            .arg("-p")
            .arg(d)
            .arg("-e")
            .arg(d.join("error.log"))
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("nginx did not start: {e}"));
        wait_for_port(port);
        wait_for_port(h1_port);
        wait_for_port(rogue_port);
        wait_for_port(expired_port);
        wait_for_port(misnamed_port);
        // Listening on every port, and not another program in its place.
        if nginx.try_wait().unwrap().is_some() {
            let mut err = String::new();
            let _ = nginx.stderr.take().unwrap().read_to_string(&mut err);
            panic!("the partner's nginx exited: {err}");
        }
        let strict_port = free_port();
        let strict = tools::command("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{strict_port}"))
            .arg("-cert")
            .arg(d.join("server.pem"))
            .arg("-key")
            .arg(d.join("server.key"))
            .arg("-CAfile")
            .arg(d.join("client-ca.pem"))
            .args(["-Verify", "3", "-verify_return_error"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("openssl s_server did not start: {e}"));
        wait_for_port(strict_port);
        Partner {
            ledger,
            client_root,
            client_ca,
            server_root,
            _dir: dir,
            nginx,
            port,
            h1_port,
            rogue_port,
            expired_port,
            misnamed_port,
            strict,
            strict_port,
            blackhole,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    pub fn h1_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.h1_port)
    }
}

impl Drop for Partner {
    fn drop(&mut self) {
        for child in [&mut self.nginx, &mut self.strict] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A home holding the partner's client certificate (name "partner", with its CA) and
/// the partner's server root in `root`.
pub fn home_for(partner: &Partner) -> Env {
    let env = Env::new();
    let leaf = partner.client_ca.issue(&Spec::client("client.example"));
    let f = env.write("leaf.pem", format!("{}{}", leaf.pem(), leaf.key_pem()));
    env.ok(&["import", &f, "--name", "partner"]);
    let f = env.write("ca.pem", partner.client_ca.pem());
    env.ok(&["import", &f]);
    let f = env.write("server-root.pem", partner.server_root.pem());
    env.ok(&["import", &f, "--store", "root"]);
    env
}

pub fn request(env: &Env, agent: &RunningAgent, args: &[&str]) -> std::process::Output {
    let mut all = vec!["request"];
    all.extend(args);
    all.extend(["--socket", agent.socket.to_str().unwrap()]);
    env.run(&all)
}

/// A plain HTTP/1.1 request to a binding's listener, as an application makes it.
pub fn http(port: u16, method: &str, path: &str, headers: &[&str], body: &[u8]) -> (u16, String) {
    http_at("127.0.0.1", port, method, path, headers, body)
}

/// The same, to a binding listening on another loopback address.
pub fn http_at(
    ip: &str,
    port: u16,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect((ip, port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {ip}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// One request on an application's keep-alive connection; the answer's status and
/// body (read by its Content-Length, the connection stays open).
fn keep_alive_get(s: &mut TcpStream, path: &str) -> (u16, String) {
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let (head, body) = read_answer(s, false);
    assert!(
        head.to_ascii_lowercase().contains("\r\ncontent-length:"),
        "a Content-Length: {head}"
    );
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, String::from_utf8(body).unwrap())
}

/// Reads one answer from an application's connection: its head, and its body by
/// Content-Length, by chunks (decoded), or to the end of the connection.
pub fn read_answer(s: &mut TcpStream, head_only: bool) -> (String, Vec<u8>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let field = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let mut body = Vec::new();
    if head_only {
        return (head, body);
    }
    if field("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut line = Vec::new();
        loop {
            line.clear();
            while !line.ends_with(b"\r\n") {
                s.read_exact(&mut byte).unwrap();
                line.push(byte[0]);
            }
            let size = String::from_utf8_lossy(&line);
            let size = size.trim().split(';').next().unwrap();
            let size = usize::from_str_radix(size, 16).unwrap();
            let mut data = vec![0u8; size + 2];
            s.read_exact(&mut data).unwrap();
            if size == 0 {
                break;
            }
            body.extend_from_slice(&data[..size]);
        }
    } else if let Some(length) = field("content-length") {
        body.resize(length.parse().unwrap(), 0);
        s.read_exact(&mut body).unwrap();
    } else {
        s.read_to_end(&mut body).unwrap();
    }
    (head, body)
}

/// Writes `request` on an application's connection and reads the whole answer.
fn ask(s: &mut TcpStream, request: impl AsRef<[u8]>) -> (String, Vec<u8>) {
    s.write_all(request.as_ref()).unwrap();
    read_answer(s, false)
}

/// Asserts that an answer `ask` read has `status` and a body that says `why`.
fn assert_refused((head, body): &(String, Vec<u8>), status: u16, why: &str) {
    assert!(head.starts_with(&format!("HTTP/1.1 {status}")), "{head}");
    assert!(String::from_utf8_lossy(body).contains(why), "{body:?}");
}

/// The value of `key=` in the partner's echo.
fn echoed(body: &str, key: &str) -> String {
    body.split(&format!("{key}="))
        .nth(1)
        .unwrap_or_else(|| panic!("no {key}= in {body}"))
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

fn bind(env: &Env, partner: &Partner, name: &str, upstream: &str) -> u16 {
    let _ = partner;
    bind_cert(env, name, "partner", upstream)
}

/// Binds `name` to `upstream` with the certificate `cert`, on a free port.
pub fn bind_cert(env: &Env, name: &str, cert: &str, upstream: &str) -> u16 {
    bind_with(env, name, cert, upstream, &[])
}

/// [`bind_cert`] with more options.
pub fn bind_with(env: &Env, name: &str, cert: &str, upstream: &str, more: &[&str]) -> u16 {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec![
        "bind",
        name,
        "--cert",
        cert,
        "--upstream",
        upstream,
        "--listen",
        &listen,
    ];
    args.extend(more);
    env.ok(&args);
    port
}

#[test]
fn request_presents_the_certificate_and_shows_the_tls_details() {
    let partner = Partner::start();
    let env = home_for(&partner);
    let agent = RunningAgent::start(&env);
    let out = request(
        &env,
        &agent,
        &[&partner.url("/status?x=1"), "--cert", "partner", "-v", "-i"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        body.contains("subject=O=certkeeper tests,CN=client.example ")
            && body.contains("verify=SUCCESS"),
        "{body}"
    );
    assert!(body.contains("uri=/status?x=1"));
    assert!(
        body.starts_with("HTTP/2.0 200 OK") || body.starts_with("HTTP/1.1 200 OK"),
        "{body}"
    );
    let err = stderr(&out);
    assert!(
        err.contains("* TLS TLSv1_") && err.contains("ALPN h2"),
        "{err}"
    );
    // nginx follows the client's order, and certkeeper offers AES-128-GCM first.
    assert!(err.contains("AES_128_GCM"), "{err}");
    // nginx names the CA it accepts client certificates from (ssl_client_certificate).
    assert!(
        err.contains("* the server asked for a client certificate from: ")
            && err.contains("Partner Client CA")
            && err.contains("; presented"),
        "{err}"
    );
    assert!(!err.contains("warning"), "{err}");
    assert!(
        err.contains("CN=localhost") && err.contains("Partner Server Root"),
        "{err}"
    );

    // SOAP 1.1 and 1.2 arrive with the right headers.
    let out = request(
        &env,
        &agent,
        &[
            &partner.url("/soap"),
            "--cert",
            "partner",
            "--soap-action",
            "urn:SubmitOrder",
            "-d",
            "<Envelope/>",
        ],
    );
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        body.contains("method=POST soapaction=\"urn:SubmitOrder\" ct=text/xml; charset=utf-8"),
        "{body}"
    );
    let out = request(
        &env,
        &agent,
        &[
            &partner.url("/soap"),
            "--cert",
            "partner",
            "--soap12",
            "--soap-action",
            "urn:SubmitOrder",
            "-d",
            "<Envelope/>",
        ],
    );
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        body.contains(
            "soapaction= ct=application/soap+xml; charset=utf-8; action=\"urn:SubmitOrder\""
        ),
        "{body}"
    );
}

#[test]
fn request_takes_a_binding_a_method_headers_and_a_body_from_a_file() {
    let partner = Partner::start();
    let env = home_for(&partner);
    let agent = RunningAgent::start(&env);
    bind(&env, &partner, "orders", &partner.url("/api"));
    let order = env.write("order.json", "{\"id\":7}");
    let data = format!("@{order}");
    let out = request(
        &env,
        &agent,
        &[
            "/orders?id=7",
            "--binding",
            "orders",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/json",
            "-d",
            &data,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let body = String::from_utf8_lossy(&out.stdout);
    for part in [
        "CN=client.example ",
        "method=PUT ",
        "ct=application/json ",
        "uri=/api/orders?id=7 ",
        "len=8",
    ] {
        assert!(body.contains(part), "{part}: {body}");
    }

    // A body file that is not there: exit 2, one line naming it, nothing sent.
    let out = request(
        &env,
        &agent,
        &[
            "/orders",
            "--binding",
            "orders",
            "-d",
            "@/nonexistent/order.json",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("/nonexistent/order.json"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn the_server_is_checked_against_the_trust_asked_for_and_its_name() {
    let partner = Partner::start();
    // A home that has the client certificate but not the partner's server root.
    let env = Env::new();
    let leaf = partner.client_ca.issue(&Spec::client("client.example"));
    let f = env.write("leaf.pem", format!("{}{}", leaf.pem(), leaf.key_pem()));
    env.ok(&["import", &f, "--name", "partner"]);
    let server_root = env.write("partner-root.pem", partner.server_root.pem());
    let agent = RunningAgent::start(&env);
    let url = partner.url("/");

    // The home's root store (the default) is empty: said, with what to do.
    let out = request(&env, &agent, &[&url, "--cert", "partner"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("the home's root store is empty: import the upstream's root CA"),
        "{}",
        stderr(&out)
    );
    // With another root in it, and with the system roots, the partner is not trusted.
    let other = TestCert::self_signed(&Spec::ca("Some Other Root"));
    let f = env.write("other-root.pem", other.pem());
    env.ok(&["import", &f, "--store", "root"]);
    for trust in [&[][..], &["--server-ca", "system"][..]] {
        let mut args = vec![url.as_str(), "--cert", "partner"];
        args.extend(trust);
        let out = request(&env, &agent, &args);
        assert_eq!(out.status.code(), Some(2), "{trust:?}");
        assert!(
            stderr(&out).contains("is not trusted: it is issued by a CA that is not trusted here"),
            "{trust:?}: {}",
            stderr(&out)
        );
    }
    // The partner's root named with --server-ca: trusted, by request and by a binding.
    let out = request(
        &env,
        &agent,
        &[&url, "--cert", "partner", "--server-ca", &server_root],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("verify=SUCCESS"));
    // A binding keeps its CA in the home (DESIGN.md: root, system or a REF); a file is
    // refused with what to do instead.
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let bind_with = |ca: &str| {
        let args = ["bind", "named", "--cert", "partner", "--upstream", &url];
        env.run(&[&args[..], &["--listen", &listen, "--server-ca", ca]].concat())
    };
    let out = bind_with(&server_root);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("import it first"), "{}", stderr(&out));
    env.ok(&[
        "import",
        &server_root,
        "--store",
        "other",
        "--name",
        "partner-ca",
    ]);
    let out = bind_with("partner-ca");
    assert!(out.status.success(), "{}", stderr(&out));
    wait_for_port(port);
    let (status, body) = http(port, "GET", "/", &[], b"");
    assert_eq!(status, 200, "{body}");

    // A certificate from the trusted root, for another name: refused, and the names
    // it does carry are shown.
    let misnamed = format!("https://localhost:{}/", partner.misnamed_port);
    let out = request(
        &env,
        &agent,
        &[&misnamed, "--cert", "partner", "--server-ca", &server_root],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            "is not trusted: it is not valid for this host name (it names: partner.example)"
        ),
        "{}",
        stderr(&out)
    );

    // An old-style certificate that names its host only in the subject CN, with no
    // subjectAltName: refused, and the message names the CN it carries.
    let cn_only = partner.server_root.issue(&Spec {
        dns: vec![],
        ..Spec::server("localhost")
    });
    let cert = env.write("cn-only.pem", cn_only.pem());
    let key = env.write("cn-only.key", cn_only.key_pem());
    let port = free_port();
    let mut server = certkeeper_testkit::tools::command("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-cert", &cert, "-key", &key])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port);
    let out = request(
        &env,
        &agent,
        &[
            &format!("https://localhost:{port}/"),
            "--cert",
            "partner",
            "--server-ca",
            &server_root,
        ],
    );
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            "is not trusted: it names its host only in its subject (CN=localhost) and has \
             no subjectAltName"
        ),
        "{}",
        stderr(&out)
    );
}

/// `openssl s_server -www` on a free port with the partner's server certificate and
/// `args`; killed on drop.
struct SServer {
    child: std::process::Child,
    port: u16,
}

impl SServer {
    fn start(env: &Env, partner: &Partner, args: &[&str]) -> Self {
        let server = partner.server_root.issue(&Spec::server("localhost"));
        let cert = env.write("s-server.pem", server.pem());
        let key = env.write("s-server.key", server.key_pem());
        let port = free_port();
        let child = certkeeper_testkit::tools::command("openssl")
            .args(["s_server", "-quiet", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-cert", &cert, "-key", &key])
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port(port);
        SServer { child, port }
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn request_says_when_the_partner_did_not_ask_or_accepts_other_cas() {
    let partner = Partner::start();
    let env = home_for(&partner);
    let agent = RunningAgent::start(&env);
    let other = TestCert::self_signed(&Spec::ca("Some Other Client CA"));
    let other_ca = env.write("other-client-ca.pem", other.pem());
    let ours = "issued by CN=Partner Client CA, O=certkeeper tests";

    // A partner that never asks, and answers 403: said on the 4xx and with -v.
    let server = partner.server_root.issue(&Spec::server("localhost"));
    let cert = env.write("never.pem", server.pem());
    let key = env.write("never.key", server.key_pem());
    let port = free_port();
    let script = r#"
import http.server, ssl, sys
class Forbidden(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(403); self.send_header("Content-Length", "3"); self.end_headers()
        self.wfile.write(b"no\n")
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Forbidden)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[2], sys.argv[3])
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"#;
    let mut never = certkeeper_testkit::tools::command("python3")
        .args(["-c", script, &port.to_string(), &cert, &key])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port);
    let url = format!("https://localhost:{port}/private");
    let out = request(&env, &agent, &[&url, "--cert", "partner", "-v"]);
    let _ = never.kill();
    let _ = never.wait();
    let err = stderr(&out);
    assert!(
        err.contains("* the partner did not ask for a client certificate on this path"),
        "{err}"
    );
    assert!(
        err.contains(
            "the upstream answered 403 Forbidden (the partner did not ask for a client \
             certificate on this connection)"
        ),
        "{err}"
    );

    // A partner that asks, optionally, for certificates from another CA: the call goes
    // on without its trust, and -v warns which CAs it wanted.
    let optional = SServer::start(
        &env,
        &partner,
        &["-www", "-verify", "2", "-CAfile", &other_ca],
    );
    let url = format!("https://localhost:{}/", optional.port);
    let out = request(&env, &agent, &[&url, "--cert", "partner", "-v"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("* the server asked for a client certificate from: ")
            && err.contains("CN=Some Other Client CA"),
        "{err}"
    );
    assert!(
        err.contains("* warning: the partner accepts certificates from: ")
            && err.contains(&format!("; ours is {ours}")),
        "{err}"
    );

    // The same partner requiring it: the refused handshake says why.
    let required = SServer::start(
        &env,
        &partner,
        &[
            "-www",
            "-Verify",
            "2",
            "-verify_return_error",
            "-CAfile",
            &other_ca,
        ],
    );
    let url = format!("https://localhost:{}/", required.port);
    let out = request(&env, &agent, &[&url, "--cert", "partner"]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("refused the TLS handshake")
            && err.contains("(the partner accepts certificates from: ")
            && err.contains("CN=Some Other Client CA")
            && err.contains(&format!("; ours is {ours})")),
        "{err}"
    );
    // Through a binding: its 502 says the same.
    let port = bind(&env, &partner, "strict-other", &url);
    wait_for_port(port);
    let (status, body) = http(port, "GET", "/", &[], b"");
    assert_eq!(status, 502, "{body}");
    assert!(
        body.contains("(the partner accepts certificates from: ")
            && body.contains("CN=Some Other Client CA")
            && body.contains(&format!("; ours is {ours})")),
        "{body}"
    );
}

/// nginx serving the partner's server certificate with `tls` (its `ssl_protocols` and
/// `ssl_ciphers` lines) on a free port; stopped on drop.
struct OldPartner {
    nginx: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl OldPartner {
    /// `tls` as nginx takes it; `san`: whether the certificate names its host in a
    /// subjectAltName (else only in its CN, as old private CAs issue them).
    fn start(partner: &Partner, tls: &str, san: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut spec = Spec::server("localhost").key(KeyKind::Rsa2048);
        if !san {
            spec.dns.clear();
        }
        let server = partner.server_root.issue(&spec);
        std::fs::write(d.join("server.pem"), server.pem()).unwrap();
        std::fs::write(d.join("server.key"), server.key_pem()).unwrap();
        let port = free_port();
        let p = d.display();
        let conf = format!(
            r#"daemon off; master_process off; worker_processes 1; pid {p}/nginx.pid; error_log {p}/error.log info;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {p}/t1; proxy_temp_path {p}/t2; fastcgi_temp_path {p}/t3; uwsgi_temp_path {p}/t4; scgi_temp_path {p}/t5;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {p}/server.pem; ssl_certificate_key {p}/server.key;
    {tls}
    location / {{ return 200 "old\n"; }}
  }}
}}
"#
        );
        std::fs::write(d.join("nginx.conf"), conf).unwrap();
        let nginx = tools::command("nginx")
            .arg("-p")
            .arg(d)
            .arg("-e")
            .arg(d.join("error.log"))
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port(port);
        OldPartner {
            nginx,
            port,
            _dir: dir,
        }
    }
}

impl Drop for OldPartner {
    fn drop(&mut self) {
        let _ = self.nginx.kill();
        let _ = self.nginx.wait();
    }
}

#[test]
fn a_partner_on_an_old_tls_stack_is_refused_with_what_it_speaks_and_reached_when_opted_in() {
    let partner = Partner::start();
    let env = home_for(&partner);
    let agent = RunningAgent::start(&env);
    let cases = [
        (
            "ssl_protocols TLSv1.2; ssl_ciphers AES128-SHA:AES256-SHA;",
            true,
            "offered old suites, it picked TLS 1.2 TLS_RSA_WITH_AES_128_CBC_SHA (RSA key \
             exchange and CBC), which certkeeper does not use",
        ),
        (
            "ssl_protocols TLSv1; ssl_ciphers DEFAULT@SECLEVEL=0;",
            true,
            "it speaks only TLS 1.0 (offered TLS 1.0 to 1.2, it picked TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA)",
        ),
        (
            "ssl_protocols TLSv1.2 TLSv1.3;",
            false,
            "it names its host only in its subject (CN=localhost) and has no subjectAltName",
        ),
    ];
    // Old TLS signs with SHA-1: a granted account may use it only for a key the
    // administrator bound with --legacy-tls.
    const GRANTED: u32 = 4718;
    env.ok(&["grant", "partner", &format!("uid:{GRANTED}")]);
    let first = OldPartner::start(&partner, cases[0].0, cases[0].1);
    let first_url = format!("https://localhost:{}/", first.port);
    let as_granted = || {
        crate::granted::certkeeper_as(
            GRANTED,
            &env,
            &agent,
            &["request", &first_url, "--cert", "partner", "--legacy-tls"],
        )
    };
    let out = as_granted();
    assert!(
        !out.status.success()
            && stderr(&out).contains("--legacy-tls: the home's owner allows old TLS for a key"),
        "{}",
        stderr(&out)
    );
    for (n, (tls, san, why)) in cases.into_iter().enumerate() {
        let old = OldPartner::start(&partner, tls, san);
        let url = format!("https://localhost:{}/", old.port);
        // Through request: refused, the reason after rustls' own.
        let out = request(&env, &agent, &[&url, "--cert", "partner"]);
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(err.contains(why), "{tls}: {err}");
        // Through a binding: the 502 says the same.
        let port = bind(&env, &partner, &format!("old{n}"), &url);
        wait_for_port(port);
        let (status, body) = http(port, "GET", "/", &[], b"");
        assert_eq!(status, 502, "{tls}: {body}");
        assert!(body.contains(why), "{tls}: {body}");
        // Opted in, request reaches it (the agent makes the session with OpenSSL)...
        let out = request(
            &env,
            &agent,
            &[&url, "--cert", "partner", "--legacy-tls", "-v"],
        );
        let err = stderr(&out);
        assert!(out.status.success(), "{tls}: {err}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "old\n");
        assert!(
            err.contains("(OpenSSL)") && err.contains("--legacy-tls"),
            "{err}"
        );
        // ... and so does a binding, with the same trust anchors.
        let port = bind_with(
            &env,
            &format!("legacy{n}"),
            "partner",
            &url,
            &["--legacy-tls"],
        );
        wait_for_port(port);
        let (status, body) = http(port, "GET", "/", &[], b"");
        assert_eq!((status, body.as_str()), (200, "old\n"), "{tls}");
    }
    // --legacy-tls loosens nothing of the trust: a partner whose certificate comes
    // from a root the home does not trust is still refused.
    let rogue = format!("https://localhost:{}/", partner.rogue_port);
    let port = bind_with(&env, "legacy-rogue", "partner", &rogue, &["--legacy-tls"]);
    wait_for_port(port);
    let (status, body) = http(port, "GET", "/", &[], b"");
    assert_eq!(status, 502, "{body}");
    assert!(
        body.contains("is not trusted: it is issued by a CA that is not trusted here"),
        "{body}"
    );
    let out = request(&env, &agent, &[&rogue, "--cert", "partner", "--legacy-tls"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is not trusted: it is issued by a CA that is not trusted here"),
        "{}",
        stderr(&out)
    );
    let bindings = env.ok(&["bindings"]);
    assert!(bindings.contains("legacy TLS"), "{bindings}");
    // Now that a --legacy-tls binding holds the key, the granted account may too.
    let out = as_granted();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "old\n");
    drop(first);
    // doctor warns about every binding that uses it, on every run.
    let out = env.run(&["doctor", "--socket", agent.socket.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    for n in 0..3 {
        assert!(
            text.lines().any(|l| l.contains("WARN")
                && l.contains(&format!("binding legacy{n}"))
                && l.contains("--legacy-tls: https://localhost:")),
            "{text}"
        );
    }
}

#[test]
fn refusals_are_surfaced_clearly() {
    let partner = Partner::start();
    let env = home_for(&partner);
    let mut agent = RunningAgent::start(&env);

    // A client certificate from another CA: nginx refuses it.
    let stranger_root = TestCert::self_signed(&Spec::ca("Someone Else's Root"));
    let stranger = stranger_root.issue(&Spec::client("stranger.example"));
    let f = env.write(
        "stranger.pem",
        format!("{}{}", stranger.pem(), stranger.key_pem()),
    );
    env.ok(&["import", &f, "--name", "stranger"]);
    let out = request(
        &env,
        &agent,
        &[&partner.url("/"), "--cert", "stranger", "--fail"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("The SSL certificate error"));
    assert!(
        stderr(&out).contains("the upstream answered 400 Bad Request"),
        "{}",
        stderr(&out)
    );
    // A stricter partner ends the handshake with an alert: which one, and what it means.
    let strict = format!("https://localhost:{}/", partner.strict_port);
    let refused = "refused the TLS handshake with alert UnknownCA: it does not trust the CA of our client certificate";
    let out = request(&env, &agent, &[&strict, "--cert", "stranger"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains(refused), "{}", stderr(&out));
    let port = bind_cert(&env, "strict", "stranger", &strict);
    wait_for_port(port);
    let (status, body) = http(port, "GET", "/", &[], b"");
    assert_eq!(status, 502);
    assert!(body.contains(refused), "{body}");
    // The partner's own client certificate is accepted there.
    let out = request(&env, &agent, &[&strict, "--cert", "partner"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // An upstream whose certificate comes from an untrusted CA: refused, exit 2.
    let rogue = format!("https://localhost:{}/", partner.rogue_port);
    let out = request(&env, &agent, &[&rogue, "--cert", "partner"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is not trusted: it is issued by a CA that is not trusted here"),
        "{}",
        stderr(&out)
    );
    // --insecure goes through and says so.
    let out = request(&env, &agent, &[&rogue, "--cert", "partner", "--insecure"]);
    assert!(out.status.success());
    assert!(stderr(&out).contains("WARNING: --insecure"));

    // Through a binding: a 502 whose body says what failed.
    let port = bind(&env, &partner, "rogue", &rogue);
    wait_for_port(port);
    let (status, body) = http(port, "GET", "/", &[], b"");
    assert_eq!(status, 502);
    assert!(body.contains("is not trusted"), "{body}");

    // An upstream whose certificate (from the trusted root) has expired.
    let expired = format!("https://localhost:{}/", partner.expired_port);
    // The certificate ended a day before the partner started, a few seconds ago.
    let day = |ago: time::Duration| {
        let t = time::OffsetDateTime::now_utc() - ago;
        let ymd = time::macros::format_description!("[year]-[month]-[day]");
        format!("is not trusted: it expired on {}", t.format(ymd).unwrap())
    };
    let says_when = |text: &str| {
        text.contains(&day(time::Duration::days(1)))
            || text.contains(&day(time::Duration::days(1) + time::Duration::minutes(5)))
    };
    let out = request(&env, &agent, &[&expired, "--cert", "partner"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(says_when(&stderr(&out)), "{}", stderr(&out));
    let port = bind(&env, &partner, "expired", &expired);
    wait_for_port(port);
    let (status, body) = http(port, "GET", "/", &[], b"");
    assert_eq!(status, 502);
    assert!(says_when(&body), "{body}");
    assert_eq!(body.lines().count(), 1, "one line: {body}");

    // Each failed call is one line in the agent's log, naming the binding and why.
    agent.stop();
    let mut log = String::new();
    let mut err = agent.child.stderr.take().unwrap();
    err.read_to_string(&mut log).unwrap();
    for (binding, why) in [
        ("rogue", "is not trusted: it is issued by a CA"),
        ("expired", "is not trusted: it expired on"),
        ("strict", "alert UnknownCA"),
    ] {
        let head = format!("certkeeper egress {binding}: GET /: 502: ");
        let lines: Vec<&str> = log.lines().filter(|l| l.starts_with(&head)).collect();
        assert_eq!(lines.len(), 1, "{log}");
        assert!(lines[0].contains(why), "{log}");
    }
}

#[test]
fn a_binding_relays_plain_http_with_the_certificate_and_follows_renewal() {
    let partner = Partner::start();
    let env = home_for(&partner);
    let _agent = RunningAgent::start(&env);
    let port = bind(&env, &partner, "partner-api", &partner.url("/api"));
    wait_for_port(port);
    let (status, body) = http(
        port,
        "POST",
        "/orders?id=7",
        &["SOAPAction: \"urn:x\"", "Content-Type: text/xml"],
        b"<a/>",
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("CN=client.example ") && body.contains("verify=SUCCESS"),
        "{body}"
    );
    assert!(
        body.contains("method=POST soapaction=\"urn:x\" ct=text/xml uri=/api/orders?id=7"),
        "{body}"
    );
    let serial = |b: &str| {
        b.split("serial=")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_string()
    };
    let before = serial(&body);

    // Renewal: a new certificate (new key) under the same name, while the agent runs.
    let renewed = partner.client_ca.issue(&Spec::client("client.example"));
    let f = env.write(
        "renewed.pem",
        format!("{}{}", renewed.pem(), renewed.key_pem()),
    );
    env.ok(&["import", &f, "--name", "partner"]);
    let start = Instant::now();
    loop {
        let (status, body) = http(port, "GET", "/", &[], b"");
        assert_eq!(status, 200);
        if serial(&body) != before {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the renewed certificate was not picked up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(env.ok(&["bindings"]).contains("partner-api"));
    env.ok(&["unbind", "partner-api"]);
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "unbind did not stop the listener"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_reimport_under_another_name_keeps_the_binding_serving() {
    let partner = Partner::start();
    let env = home_for(&partner);
    let leaf = env.path("leaf.pem");
    let agent = RunningAgent::start(&env);
    let port = bind(&env, &partner, "partner-api", &partner.url("/api"));
    wait_for_port(port);
    let (status, body) = http(port, "GET", "/", &[], b"");
    assert_eq!(status, 200, "{body}");
    let serial = echoed(&body, "serial");

    // The same .pfx again under the name the new contract uses.
    let out = env.ok(&["import", &leaf, "--name", "partner-2026"]);
    assert!(
        out.contains("renamed partner -> partner-2026; binding partner-api now uses partner-2026"),
        "{out}"
    );
    let bindings = env.json(&["bindings"]);
    assert_eq!(bindings[0]["cert"], "partner-2026", "{bindings}");
    // The agent reads the change within a second; the binding keeps serving the
    // same certificate.
    std::thread::sleep(Duration::from_millis(1500));
    let (status, body) = http(port, "GET", "/", &[], b"");
    assert_eq!(status, 200, "{body}");
    assert_eq!(echoed(&body, "serial"), serial);
    assert_eq!(echoed(&body, "verify"), "SUCCESS");

    // And back, as JSON.
    let json = env.json(&["import", &leaf, "--name", "partner"]);
    assert_eq!(
        json["imported"][0]["renamed"],
        serde_json::json!({"from": "partner-2026", "to": "partner", "bindings": [
            {"binding": "partner-api", "field": "cert", "from": "partner-2026", "to": "partner"}
        ]}),
        "{json}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let (status, body) = http(port, "GET", "/", &[], b"");
    assert_eq!(status, 200, "{body}");
    assert_eq!(echoed(&body, "serial"), serial);
    // doctor agrees: the binding still finds its certificate (the home lacks the
    // partner's client root, so its path check has its own complaint).
    let out = env.run(&[
        "doctor",
        "--json",
        "--socket",
        agent.socket.to_str().unwrap(),
    ]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let binding: Vec<&serde_json::Value> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["subject"] == "binding partner-api" && r["check"] == "binding")
        .collect();
    assert!(!binding.is_empty(), "{rows}");
    assert!(
        binding.iter().all(|r| r["detail"]
            .as_str()
            .unwrap()
            .starts_with("certificate CN=client.example")),
        "{binding:?}"
    );
}

#[test]
fn a_dead_upstream_is_a_fast_502() {
    let partner = Partner::start();
    let env = home_for(&partner);
    let agent = RunningAgent::start(&env);
    let dead = format!("https://localhost:{}/", free_port());
    let port = bind(&env, &partner, "dead", &dead);
    wait_for_port(port);
    let start = Instant::now();
    let (status, body) = http(port, "GET", "/", &[], b"");
    assert_eq!(status, 502);
    assert!(body.contains("refused the connection"), "{body}");
    assert!(start.elapsed() < Duration::from_secs(2));
    let out = request(&env, &agent, &[&dead, "--cert", "partner"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("refused the connection"));
    drop(partner);
}

/// The size of the partner's /big download.
const BIG: u64 = 1 << 30;

#[test]
fn large_downloads_stream_through_a_binding_at_the_applications_pace() {
    let partner = Partner::start();
    let env = home_for(&partner);
    let agent = RunningAgent::start(&env);
    for (name, port) in bound_over_h2_and_h1(&env, &partner) {
        let before = vm_hwm_kib(agent.child.id());
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        write!(
            s,
            "GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        // A slow application: it reads a little, then nothing for 2 s. A relay that
        // read the partner's answer ahead of it would hold up to 1 GiB meanwhile.
        let mut buf = vec![0u8; 1 << 20];
        let first = s.read(&mut buf).unwrap();
        let head = buf[..first]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("the head comes first")
            + 4;
        assert!(buf.starts_with(b"HTTP/1.1 200 "), "{name}");
        let mut body = (first - head) as u64;
        std::thread::sleep(Duration::from_secs(2));
        let paused = vm_hwm_kib(agent.child.id()).saturating_sub(before);
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            body += n as u64;
        }
        assert_eq!(body, BIG, "{name}");
        let grown = vm_hwm_kib(agent.child.id()).saturating_sub(before);
        assert!(
            paused < 64 * 1024 && grown < 64 * 1024,
            "{name}: the agent's peak memory grew by {paused} KiB while the application paused, {grown} KiB in all, for a 1 GiB download"
        );
    }
}

/// Bindings to the partner over HTTP/2 (its main port) and HTTP/1.1 (its h1-only
/// port), named "h2" and "h1", each answering a first call.
fn bound_over_h2_and_h1(env: &Env, partner: &Partner) -> [(&'static str, u16); 2] {
    [("h2", partner.url("")), ("h1", partner.h1_url(""))].map(|(name, upstream)| {
        let port = bind(env, partner, name, &upstream);
        wait_for_port(port);
        let (status, _) = http(port, "GET", "/", &[], b"");
        assert_eq!(status, 200);
        (name, port)
    })
}

fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap()
}

#[test]
fn large_uploads_stream_through_a_binding_with_flat_memory() {
    let partner = Partner::start();
    let env = home_for(&partner);
    let agent = RunningAgent::start(&env);
    for (name, port) in bound_over_h2_and_h1(&env, &partner) {
        let before = vm_hwm_kib(agent.child.id());
        let size: usize = 1024 * 1024 * 1024;
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        write!(
            s,
            "POST /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {size}\r\n\r\n"
        )
        .unwrap();
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..(size >> 20) {
            s.write_all(&chunk).unwrap();
        }
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        // A short body would leave the partner waiting for the rest: no 200.
        assert!(
            answer.contains(" 200 ") && answer.contains("uploaded"),
            "{name}: {answer}"
        );
        // The partner read the whole body (its request length adds the head).
        let counted: usize = answer
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("x-received: ")
                    .map(str::to_string)
            })
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        assert!(counted > size, "{name}: {answer}");
        let grown = vm_hwm_kib(agent.child.id()).saturating_sub(before);
        assert!(
            grown < 64 * 1024,
            "{name}: the agent's peak memory grew by {grown} KiB for a 1 GiB upload"
        );
    }
}

#[test]
fn a_binding_keeps_the_http_semantics_applications_rely_on() {
    let partner = Partner::start();
    let env = home_for(&partner);
    let _agent = RunningAgent::start(&env);
    let port = bind(&env, &partner, "h1", &partner.h1_url(""));
    wait_for_port(port);
    assert_eq!(http(port, "GET", "/", &[], b"").0, 200);
    let connect = || {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    };

    // A chunked upload reaches the partner whole, and the request after it on the same
    // connection is read from where the body ended.
    let mut s = connect();
    let mut upload =
        b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let mut sent = 0;
    for size in [1, 4096, 100_000, 7] {
        upload.extend_from_slice(format!("{size:x}\r\n").as_bytes());
        upload.extend(std::iter::repeat_n(b'u', size));
        upload.extend_from_slice(b"\r\n");
        sent += size;
    }
    upload.extend_from_slice(b"0\r\n\r\n");
    let (head, body) = ask(&mut s, &upload);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(String::from_utf8_lossy(&body).starts_with("uploaded"));
    let counted: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("x-received: ")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("X-Received");
    assert!(
        counted > sent,
        "the partner read {counted} bytes of {sent}: {head}"
    );
    assert_eq!(keep_alive_get(&mut s, "/after-upload").0, 200);

    // A chunked answer arrives chunked and whole, and the connection goes on.
    let (head, body) = ask(&mut s, "GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        head.to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    assert_eq!(body, b"hello world");
    // HEAD: the fields of the answer, no body, and the connection goes on.
    write!(s, "HEAD /head HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let (head, _) = read_answer(&mut s, true);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("content-length: "),
        "{head}"
    );
    // Two requests written at once are answered in order.
    write!(
        s,
        "GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    for path in ["/one", "/two"] {
        let (head, body) = read_answer(&mut s, false);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(echoed(&String::from_utf8_lossy(&body), "uri"), path);
    }

    // HTTP/1.0 has no chunks: the chunked answer comes without them, and the
    // connection closes after it.
    let mut s = connect();
    write!(s, "GET /chunked HTTP/1.0\r\n\r\n").unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let all = String::from_utf8(all).unwrap();
    let (head, body) = all.split_once("\r\n\r\n").unwrap();
    assert!(
        !head.to_ascii_lowercase().contains("transfer-encoding"),
        "{head}"
    );
    assert_eq!(body, "hello world");

    // Expect: 100-continue: the partner's go-ahead is passed on before the body is
    // sent, so the application does not wait out its own timer.
    let mut s = connect();
    let body = vec![b'e'; 300_000];
    write!(
        s,
        "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (head, _) = read_answer(&mut s, true);
    assert!(head.starts_with("HTTP/1.1 100"), "{head}");
    s.write_all(&body).unwrap();
    let (head, answer) = read_answer(&mut s, false);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(String::from_utf8_lossy(&answer).starts_with("uploaded"));

    // A request the relay cannot frame gets a 400 that says why, and nothing is sent.
    let mut s = connect();
    let answer = ask(
        &mut s,
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n",
    );
    assert_refused(&answer, 400, "Content-Length");
}

/// A partner that answers one request per connection, then closes the connection
/// without having said so (no `Connection: close`) when the next request comes on
/// it, unanswered, as a server that restarts or has a per-connection limit may. Its
/// answers count the connections it accepted.
fn one_answer_partner(partner: &Partner) -> u16 {
    let mut spec = Spec::server("localhost");
    spec.dns.push("127.0.0.1".into());
    let cert = partner.server_root.issue(&spec);
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(cert.key_der().into());
    // It asks for the client certificate in the handshake, as the partners of this
    // product do (one that does not is served by OpenSSL, tested elsewhere).
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(partner.client_root.der.clone().into()).unwrap();
    let clients = rustls::server::WebPkiClientVerifier::builder_with_provider(
        std::sync::Arc::new(roots),
        std::sync::Arc::clone(&provider),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(clients)
        .with_single_cert(vec![cert.der.into()], key)
        .unwrap();
    let config = std::sync::Arc::new(config);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(tcp) = stream else { continue };
            let conn = rustls::ServerConnection::new(std::sync::Arc::clone(&config)).unwrap();
            std::thread::spawn(move || {
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let read_head = |tls: &mut dyn Read| {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && tls.read_exact(&mut byte).is_ok() {
                        head.push(byte[0]);
                    }
                };
                read_head(&mut tls);
                let body = format!("connection {}\n", n + 1);
                let _ = write!(
                    tls,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.flush();
                // The next request is read, and the connection dropped without a word
                // in answer.
                read_head(&mut tls);
            });
        }
    });
    port
}

#[test]
fn a_request_on_a_connection_the_partner_dropped_is_sent_again() {
    let partner = Partner::start();
    let env = home_for(&partner);
    let agent = RunningAgent::start(&env);
    let upstream = format!("https://localhost:{}", one_answer_partner(&partner));
    let port = bind(&env, &partner, "dropper", &upstream);
    wait_for_port(port);
    assert_eq!(http(port, "GET", "/first", &[], b"").1, "connection 1\n");
    // An application's keep-alive connection holds its upstream connection between
    // calls; the partner closes that one when the next request comes.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    assert_eq!(keep_alive_get(&mut s, "/a"), (200, "connection 2\n".into()));
    // The next GET on it goes out on that connection, finds it closed before any
    // answer, and is sent again on a new one: the application sees no error.
    assert_eq!(keep_alive_get(&mut s, "/b"), (200, "connection 3\n".into()));
    // A POST is not sent twice: it may have been acted on. The application gets a
    // 502 that says what happened.
    let answer = ask(
        &mut s,
        "POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi",
    );
    assert_refused(&answer, 502, "closed the connection without an answer");
    drop(agent);
}

#[test]
fn upstream_connections_are_kept_handed_on_and_resumed() {
    let partner = Partner::start();
    let env = home_for(&partner);
    let _agent = RunningAgent::start(&env);
    let port = bind(&env, &partner, "h1", &partner.h1_url(""));
    wait_for_port(port);

    // One application connection, three requests: one upstream connection.
    let mut app = TcpStream::connect(("127.0.0.1", port)).unwrap();
    app.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let answers: Vec<String> = (0..3).map(|_| keep_alive_get(&mut app, "/a").1).collect();
    let conn = echoed(&answers[0], "conn");
    for (i, body) in answers.iter().enumerate() {
        assert_eq!(echoed(body, "conn"), conn, "{body}");
        assert_eq!(echoed(body, "reqs"), (i + 1).to_string(), "{body}");
        assert!(body.contains("verify=SUCCESS"), "{body}");
    }
    // While it is open, a second application connection gets a second upstream
    // connection, which resumes the first one's TLS session.
    let (status, body) = http(port, "GET", "/b", &[], b"");
    assert_eq!(status, 200, "{body}");
    let second = echoed(&body, "conn");
    assert_ne!(second, conn, "{body}");
    assert_eq!(
        echoed(&body, "reused"),
        "r",
        "TLS session not resumed: {body}"
    );
    // Connections the application closes hand their upstream connection on.
    let (_, body) = http(port, "GET", "/c", &[], b"");
    assert_eq!(echoed(&body, "conn"), second, "{body}");
    drop(app);
    std::thread::sleep(Duration::from_millis(200));
    // Each new application connection (the relay's workers take them in turn) gets
    // one of the two upstream connections back, not a new one.
    for path in ["/d", "/e", "/g", "/h"] {
        let (_, body) = http(port, "GET", path, &[], b"");
        assert!(
            [conn.as_str(), second.as_str()].contains(&echoed(&body, "conn").as_str()),
            "{conn} or {second} expected: {body}"
        );
    }

    // The upstream closes idle connections (after 2 s here): the next requests, on a
    // kept application connection and on new ones, go out on new connections.
    let mut app = TcpStream::connect(("127.0.0.1", port)).unwrap();
    app.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let (_, before) = keep_alive_get(&mut app, "/f");
    std::thread::sleep(Duration::from_millis(2600));
    let (status, after) = keep_alive_get(&mut app, "/g");
    assert_eq!(status, 200, "{after}");
    assert_ne!(echoed(&after, "conn"), echoed(&before, "conn"));
    for _ in 0..3 {
        let (status, body) = http(port, "GET", "/h", &[], b"");
        assert_eq!(status, 200, "{body}");
    }
    // An upstream that closes after every response: each request still answered,
    // each on a connection of its own.
    let mut seen = Vec::new();
    for _ in 0..3 {
        let (status, body) = keep_alive_get(&mut app, "/close");
        assert_eq!(status, 200, "{body}");
        assert!(!seen.contains(&echoed(&body, "conn")), "{body}");
        seen.push(echoed(&body, "conn"));
    }

    // An HTTP/2 upstream: every application connection shares one connection, also
    // when eight arrive at once before any connection to it exists.
    let port = bind(&env, &partner, "h2", &partner.url(""));
    wait_for_port(port);
    let mut bodies = at_once(8, move || http(port, "GET", "/x", &[], b"").1);
    bodies.extend((0..3).map(|_| http(port, "GET", "/y", &[], b"").1));
    let conn = echoed(&bodies[0], "conn");
    for body in &bodies {
        assert_eq!(echoed(body, "conn"), conn, "{body}");
    }
}

#[test]
fn a_silent_upstream_is_a_504_after_upstream_timeout() {
    let partner = Partner::start();
    let env = home_for(&partner);
    let _agent = RunningAgent::start(&env);
    timeout_set_to_2_s(&env, "upstream_timeout");

    // The partner accepts the request and never answers (it waits on a backend).
    let port = bind(&env, &partner, "slow", &partner.h1_url(""));
    wait_for_port(port);
    let start = Instant::now();
    let (status, body) = http(port, "GET", "/slow", &[], b"");
    assert_eq!(status, 504, "{body}");
    assert!(
        body.contains("sent no response within 2 s (upstream timeout)"),
        "{body}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "{:?}",
        start.elapsed()
    );
    // The connection after it is fine.
    let (status, body) = http(port, "GET", "/after", &[], b"");
    assert_eq!(status, 200, "{body}");
    // The same with a body that comes after the head: once it is all sent, the wait
    // is the upstream's, not the application's (client_timeout, 60 s).
    let start = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(b"hello").unwrap();
    let (head, body) = read_answer(&mut s, false);
    assert!(head.starts_with("HTTP/1.1 504"), "{head}");
    assert!(
        String::from_utf8_lossy(&body).contains("(upstream timeout)"),
        "{body:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "{:?}",
        start.elapsed()
    );
    // A partner that stops in the middle of the body: the application gets what came
    // and then its connection closes, after the timeout, not never.
    let start = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET /stall HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "{:?}",
        start.elapsed()
    );
    assert!(
        answer.contains(" 200 ") && answer.ends_with("first part"),
        "{answer}"
    );
    // An upload that takes longer than the timeout, but never pauses that long, goes
    // through: the partner answers only once it has the whole body.
    let start = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    write!(
        s,
        "POST /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        chunk.len() * 8
    )
    .unwrap();
    for _ in 0..8 {
        s.write_all(&chunk).unwrap();
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(start.elapsed() > Duration::from_secs(3));
    assert!(
        answer.contains(" 200 ") && answer.contains("uploaded"),
        "{answer}"
    );

    // The upstream's port accepts TCP connections but never speaks TLS.
    let silent = format!(
        "https://localhost:{}/",
        partner.blackhole.local_addr().unwrap().port()
    );
    let port = bind(&env, &partner, "silent", &silent);
    wait_for_port(port);
    let start = Instant::now();
    let (status, body) = http(port, "GET", "/", &[], b"");
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("upstream timeout"), "{body}");
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "{:?}",
        start.elapsed()
    );
    // Six calls at once, while one connection attempt at a time is made to an upstream
    // not yet known to speak HTTP/1.1: each still gets its 504 within the timeout, none
    // waits its turn behind the others' attempts (which would take 6 x 2 s).
    let start = Instant::now();
    for (status, body) in at_once(6, move || http(port, "GET", "/", &[], b"")) {
        assert_eq!(status, 504, "{body}");
        assert!(body.contains("upstream timeout"), "{body}");
    }
    assert!(
        start.elapsed() < Duration::from_secs(7),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn an_application_that_stalls_gets_a_408_and_an_idle_one_is_let_go_after_client_timeout() {
    let partner = Partner::start();
    let env = home_for(&partner);
    let _agent = RunningAgent::start(&env);
    timeout_set_to_2_s(&env, "client_timeout");
    let within = |start: Instant, what: &str| {
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(1900) && took < Duration::from_secs(8),
            "{what}: {took:?}"
        );
    };
    let connect = |port| {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s
    };
    // The same over an HTTP/2 partner and an HTTP/1.1 one: one relay reads both.
    for (name, port) in bound_over_h2_and_h1(&env, &partner) {
        // Half a request head, then nothing: a 408 after the timeout, then closed.
        let mut s = connect(port);
        let start = Instant::now();
        s.write_all(b"GET /half HTTP/1.1\r\nHost: x\r\n").unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        within(start, name);
        assert!(answer.starts_with("HTTP/1.1 408 "), "{name}: {answer}");
        assert!(
            answer.contains("the request head did not all come within 2 s (client timeout)"),
            "{name}: {answer}"
        );
        // A body that stops coming: a 408 that says so.
        let mut s = connect(port);
        let start = Instant::now();
        s.write_all(
            b"POST /ledger/stalled HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789",
        )
        .unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        within(start, name);
        assert!(answer.starts_with("HTTP/1.1 408 "), "{name}: {answer}");
        assert!(
            answer.contains("sent no more of its request body for 2 s (client timeout)"),
            "{name}: {answer}"
        );
        // A body that keeps coming, slower than the timeout in all but never pausing
        // that long, goes through.
        let mut s = connect(port);
        s.write_all(b"POST /ledger/trickle HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n")
            .unwrap();
        for byte in b"trickled" {
            std::thread::sleep(Duration::from_millis(500));
            s.write_all(&[*byte]).unwrap();
        }
        let (head, _) = read_answer(&mut s, false);
        assert!(head.starts_with("HTTP/1.1 200"), "{name}: {head}");
        // A kept-alive connection is served, then let go quietly once idle that long.
        let mut s = connect(port);
        let (status, _) = keep_alive_get(&mut s, "/one");
        assert_eq!(status, 200, "{name}");
        std::thread::sleep(Duration::from_millis(500));
        let (status, _) = keep_alive_get(&mut s, "/two");
        assert_eq!(status, 200, "{name}: a pause under the timeout is fine");
        let start = Instant::now();
        let mut rest = Vec::new();
        let n = s.read_to_end(&mut rest).unwrap();
        within(start, name);
        assert_eq!(n, 0, "{name}: closed without an answer: {rest:?}");
    }
}

/// Checks that the setting `key` is 60 s by default and refuses 0, then sets it to 2 s.
fn timeout_set_to_2_s(env: &Env, key: &str) {
    assert_eq!(env.ok(&["config", key]).trim(), "60");
    let out = env.run(&["config", key, "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!("{key} must be")),
        "{}",
        stderr(&out)
    );
    env.ok(&["config", key, "2"]);
}

/// Runs `call` on `n` threads released at the same moment; their results in order.
fn at_once<T: Send + 'static>(n: usize, call: impl Fn() -> T + Send + Sync + 'static) -> Vec<T> {
    let call = std::sync::Arc::new(call);
    let start = std::sync::Arc::new(std::sync::Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (call, start) = (std::sync::Arc::clone(&call), std::sync::Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                call()
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// TCP connections on this machine to `port` in state CLOSE_WAIT (the peer closed,
/// we did not), from /proc/net/tcp.
fn close_wait_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f[3] == "08" && f[2].ends_with(&format!(":{port:04X}"))
        })
        .count()
}

#[test]
fn idle_upstream_connections_the_partner_closed_are_let_go() {
    let partner = Partner::start();
    let env = home_for(&partner);
    let _agent = RunningAgent::start(&env);
    let port = bind(&env, &partner, "quiet", &partner.h1_url(""));
    wait_for_port(port);
    // Three application connections at once: three upstream connections, all idle
    // in the pool once the applications are gone.
    let mut apps: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    for app in &mut apps {
        app.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        assert_eq!(keep_alive_get(app, "/").0, 200);
    }
    drop(apps);
    // The partner closes idle connections after 2 s; the binding then lets its ends
    // go within its sweep interval (15 s), without any new request.
    let start = Instant::now();
    while close_wait_to(partner.h1_port) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the partner kept them"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    while close_wait_to(partner.h1_port) > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(25),
            "idle connections the partner closed are still held"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn an_application_leaving_before_the_answer_does_not_cost_the_connection() {
    let partner = Partner::start();
    let env = home_for(&partner);
    let _agent = RunningAgent::start(&env);
    let port = bind(&env, &partner, "leaving", &partner.h1_url(""));
    wait_for_port(port);
    let (_, body) = http(port, "GET", "/first", &[], b"");
    let conn = echoed(&body, "conn");
    // An application asks for something slow and leaves before the answer (a call
    // timing out on its side).
    let mut app = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(app, "GET /late HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    drop(app);
    // The answer is read in the background and the connection goes back to the pool:
    // the next call uses it, without a new TLS handshake.
    std::thread::sleep(Duration::from_millis(700));
    let (status, body) = http(port, "GET", "/next", &[], b"");
    assert_eq!(status, 200, "{body}");
    assert_eq!(echoed(&body, "conn"), conn, "{body}");
}

#[test]
fn request_with_json_prints_the_answer_and_the_tls_details_as_one_document() {
    let partner = Partner::start();
    let env = home_for(&partner);
    let agent = RunningAgent::start(&env);
    let out = request(
        &env,
        &agent,
        &[&partner.url("/status?x=1"), "--cert", "partner", "--json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(v["status"], 200);
    assert_eq!(v["body_base64"], false);
    assert!(
        v["body"].as_str().unwrap().contains("uri=/status?x=1"),
        "{v}"
    );
    assert!(
        v["headers"]["content-type"]
            .as_str()
            .unwrap()
            .starts_with("text/plain"),
        "{v}"
    );
    let tls = &v["tls"];
    assert!(
        tls["version"].as_str().unwrap().starts_with("TLSv1_"),
        "{v}"
    );
    assert!(
        tls["cipher"].as_str().unwrap().contains("AES_128_GCM"),
        "{v}"
    );
    assert_eq!(tls["alpn"], "h2");
    assert_eq!(tls["client_certificate_requested"], true);
    let chain = tls["server_chain"].as_array().unwrap();
    assert!(
        chain[0]["subject"]
            .as_str()
            .unwrap()
            .contains("CN=localhost")
    );
    assert!(
        chain[0]["issuer"]
            .as_str()
            .unwrap()
            .contains("Partner Server Root")
    );
    assert!(chain[0]["not_after"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn request_takes_the_curl_options_people_type() {
    let partner = Partner::start();
    let env = home_for(&partner);
    let agent = RunningAgent::start(&env);

    // --cert with the certificate's file: its entry (and key, through the agent).
    let leaf_file = env.path("leaf.pem");
    let out = request(&env, &agent, &[&partner.url("/who"), "--cert", &leaf_file]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("CN=client.example"));
    // A certificate file whose entry is not in the home says so.
    let stranger = TestCert::self_signed(&Spec::client("stranger"));
    let stranger_file = env.write("stranger.pem", stranger.pem());
    let out = request(&env, &agent, &[&partner.url("/"), "--cert", &stranger_file]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is not in the home"),
        "{}",
        stderr(&out)
    );

    // -o FILE: the body in the file, nothing on stdout.
    let body = env.path("body.txt");
    let out = request(
        &env,
        &agent,
        &[&partner.url("/o"), "--cert", "partner", "-o", &body],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    assert!(std::fs::read_to_string(&body).unwrap().contains("uri=/o"));

    // --cacert FILE is --server-ca FILE: the right CA works, another is refused.
    let good_ca = env.write("partner-ca.pem", partner.server_root.pem());
    let out = request(
        &env,
        &agent,
        &[&partner.url("/"), "--cert", "partner", "--cacert", &good_ca],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let other_ca = env.write(
        "other-ca.pem",
        TestCert::self_signed(&Spec::ca("Other Root")).pem(),
    );
    let out = request(
        &env,
        &agent,
        &[
            &partner.url("/"),
            "--cert",
            "partner",
            "--cacert",
            &other_ca,
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("certificate"), "{}", stderr(&out));
    let out = request(
        &env,
        &agent,
        &[
            &partner.url("/"),
            "--cert",
            "partner",
            "--cacert",
            "/no/such.pem",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--cacert /no/such.pem: cannot read: no such file"));

    // -k is --insecure: the rogue server's certificate is not checked, loudly.
    let rogue = format!("https://localhost:{}/", partner.rogue_port);
    let out = request(&env, &agent, &[&rogue, "--cert", "partner"]);
    assert_eq!(out.status.code(), Some(2));
    let out = request(&env, &agent, &[&rogue, "--cert", "partner", "-k"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("WARNING"));

    // --connect-timeout: a server that accepts TCP and never speaks TLS.
    let silent = partner.blackhole.local_addr().unwrap().port();
    let start = Instant::now();
    let out = request(
        &env,
        &agent,
        &[
            &format!("https://localhost:{silent}/"),
            "--cert",
            "partner",
            "--connect-timeout",
            "1",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(stderr(&out).contains("within 1 s"), "{}", stderr(&out));
    // -m: an answer that never comes.
    let start = Instant::now();
    let out = request(
        &env,
        &agent,
        &[
            &partner.h1_url("/slow"),
            "--cert",
            "partner",
            "-m",
            "1.5",
            "--json",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "upstream");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("within 1.5 s")
    );

    // -s: no note about the upstream's error status (nginx refuses POST to a file).
    let out = request(
        &env,
        &agent,
        &[&partner.url("/big"), "--cert", "partner", "-d", "x"],
    );
    assert!(
        stderr(&out).contains("the upstream answered 405"),
        "{}",
        stderr(&out)
    );
    let out = request(
        &env,
        &agent,
        &[&partner.url("/big"), "--cert", "partner", "-d", "x", "-s"],
    );
    assert!(out.status.success());
    assert_eq!(stderr(&out), "");

    // curl options certkeeper has no flag for say what to do instead.
    for (flag, says) in [
        ("--key", "--cert"),
        ("-u", "Authorization"),
        ("--data-binary", "-d @FILE"),
        ("--data-raw", "-d TEXT"),
        ("-L", "Location"),
        ("--compressed", "not supported"),
        ("-E", "--cert REF"),
    ] {
        let out = request(&env, &agent, &[&partner.url("/"), flag, "x"]);
        assert_eq!(out.status.code(), Some(2), "{flag}");
        let err = stderr(&out);
        assert!(err.contains(says), "{flag}: {err}");
        assert_eq!(err.lines().count(), 1, "{flag}: {err}");
    }
}

#[test]
fn request_with_json_gives_a_body_that_is_not_text_as_base64() {
    let partner = Partner::start();
    let env = home_for(&partner);
    let agent = RunningAgent::start(&env);
    // openssl s_server -WWW serves the files of its directory.
    let dir = tempfile::tempdir().unwrap();
    let binary: &[u8] = &[0xff, 0xfe, 0x00, 0x80, b'x'];
    std::fs::write(dir.path().join("blob.bin"), binary).unwrap();
    let server = partner.server_root.issue(&Spec::server("localhost"));
    std::fs::write(dir.path().join("s.pem"), server.pem()).unwrap();
    std::fs::write(dir.path().join("s.key"), server.key_pem()).unwrap();
    let port = free_port();
    let mut s_server = certkeeper_testkit::tools::command("openssl")
        .args([
            "s_server", "-quiet", "-WWW", "-cert", "s.pem", "-key", "s.key", "-accept",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl is needed by the egress tests");
    wait_for_port(port);
    let out = request(
        &env,
        &agent,
        &[
            &format!("https://localhost:{port}/blob.bin"),
            "--cert",
            "partner",
            "--json",
        ],
    );
    let _ = s_server.kill();
    let _ = s_server.wait();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], 200, "{v}");
    assert_eq!(v["body_base64"], true, "{v}");
    assert_eq!(v["body"], "//4AgHg=", "{v}");
    assert_eq!(v["tls"]["client_certificate_requested"], false, "{v}");
}
