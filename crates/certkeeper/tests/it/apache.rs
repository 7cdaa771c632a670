//! A real Apache httpd (Debian's) as the partner that asks for the client certificate
//! late: `SSLVerifyClient require` inside a `<Location>`, which Apache asks for by
//! renegotiating (TLS 1.2) or by post-handshake authentication (TLS 1.3), and the
//! partners around it (asks optionally, never asks, asks for other CAs). Started on a
//! free port with its own configuration in a temporary directory, in the foreground
//! (`-X`: one process, killed on drop with nothing left behind).

use std::io::Read;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use certkeeper_testkit::{Spec, TestCert, tools};

use crate::egress::{Partner, free_port};

/// How the partner's Apache asks for the client certificate. In every mode `/open/`
/// answers 200 `open\n` without asking, and `/secure/`, when allowed, answers 200 with
/// `secure SUBJECT\n` (the client certificate's subject, also in an `X-Client` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// TLS 1.2 only; `SSLVerifyClient require` in `<Location /secure/>`: Apache
    /// renegotiates there.
    LateTls12,
    /// TLS 1.3 only; the same `<Location>`: post-handshake authentication (when the
    /// client offered it).
    LateTls13,
    /// TLS 1.2 and 1.3; `SSLVerifyClient optional` in the handshake, and `/secure/`
    /// allowed only with a verified certificate, else 403.
    Optional,
    /// TLS 1.2 and 1.3; never asks; `/secure/` is 403.
    NeverAsks,
    /// TLS 1.2 and 1.3; `/secure/` requires a certificate as in the late modes, but the
    /// acceptable-CA list sent names only "Some Other Client CA", while verification
    /// still trusts the partner's client CA.
    OtherCas,
}

/// Debian's Apache serving the partner's server certificate (from `server_root`, for
/// `localhost` and 127.0.0.1) and verifying client certificates against
/// `client_ca` + `client_root`; killed and its directory removed on drop.
pub struct Apache {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

const MODULES: &[(&str, &str)] = &[
    ("mpm_prefork_module", "mod_mpm_prefork.so"),
    ("authz_core_module", "mod_authz_core.so"),
    ("mime_module", "mod_mime.so"),
    ("dir_module", "mod_dir.so"),
    ("include_module", "mod_include.so"),
    ("headers_module", "mod_headers.so"),
    ("socache_shmcb_module", "mod_socache_shmcb.so"),
    ("ssl_module", "mod_ssl.so"),
];

impl Apache {
    pub fn start(partner: &Partner, mode: Mode) -> Apache {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Apache drops to an unprivileged account when started as root: the documents
        // must be readable by it. The keys stay root's (read before the switch).
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut spec = Spec::server("localhost");
        spec.dns.push("127.0.0.1".into());
        let server = partner.server_root.issue(&spec);
        write(d, "server.pem", &server.pem(), 0o644);
        write(d, "server.key", &server.key_pem(), 0o600);
        let client_cas = format!("{}{}", partner.client_ca.pem(), partner.client_root.pem());
        write(d, "client-ca.pem", &client_cas, 0o644);
        let other = TestCert::self_signed(&Spec::ca("Some Other Client CA"));
        write(d, "other-ca.pem", &other.pem(), 0o644);
        for sub in ["docs", "docs/open", "docs/secure"] {
            std::fs::create_dir(d.join(sub)).unwrap();
            std::fs::set_permissions(d.join(sub), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        write(d, "docs/open/index.txt", "open\n", 0o644);
        write(
            d,
            "docs/secure/index.txt",
            "secure <!--#echo var=\"SSL_CLIENT_S_DN\" -->\n",
            0o644,
        );

        let port = free_port();
        let p = d.display();
        let modules: String = MODULES
            .iter()
            .map(|(name, file)| format!("LoadModule {name} /usr/lib/apache2/modules/{file}\n"))
            .collect();
        let late = "SSLVerifyClient require\n  SSLVerifyDepth 3";
        let other_cas = format!("SSLVerifyClient none\nSSLCADNRequestFile {p}/other-ca.pem");
        let (tls, server_verify, secure) = match mode {
            Mode::LateTls12 => ("-all +TLSv1.2", "SSLVerifyClient none", late),
            Mode::LateTls13 => ("-all +TLSv1.3", "SSLVerifyClient none", late),
            Mode::Optional => (
                "-all +TLSv1.2 +TLSv1.3",
                "SSLVerifyClient optional\nSSLVerifyDepth 3",
                "Require expr %{SSL_CLIENT_VERIFY} == 'SUCCESS'",
            ),
            Mode::NeverAsks => (
                "-all +TLSv1.2 +TLSv1.3",
                "SSLVerifyClient none",
                "Require all denied",
            ),
            Mode::OtherCas => ("-all +TLSv1.2 +TLSv1.3", other_cas.as_str(), late),
        };
        // Run as root (as the tests are), Apache serves as www-data; as another user,
        // User and Group are ignored.
        let conf = format!(
            r#"ServerRoot {p}
ServerName localhost
DefaultRuntimeDir {p}
PidFile {p}/apache2.pid
Listen 127.0.0.1:{port}
{modules}User www-data
Group www-data
ErrorLog {p}/error.log
LogLevel warn ssl:debug
TypesConfig /dev/null
DocumentRoot {p}/docs
DirectoryIndex index.txt
<Directory />
  AllowOverride None
  Require all granted
  ForceType text/plain
</Directory>
SSLSessionCache shmcb:{p}/ssl_scache(512000)
SSLEngine on
SSLCertificateFile {p}/server.pem
SSLCertificateKeyFile {p}/server.key
SSLCACertificateFile {p}/client-ca.pem
SSLProtocol {tls}
{server_verify}
<Location /secure/>
  {secure}
  SSLOptions +StdEnvVars
  Options +Includes
  SetOutputFilter INCLUDES
  Header always set X-Client "%{{SSL_CLIENT_S_DN}}s"
</Location>
"#
        );
        std::fs::write(d.join("httpd.conf"), conf).unwrap();
        let stderr = std::fs::File::create(d.join("stderr.log")).unwrap();
        let mut child = tools::command("apache2")
            .arg("-X")
            .arg("-d")
            .arg(d)
            .arg("-f")
            .arg(d.join("httpd.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("apache2 did not start: {e}"));
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = child.try_wait().unwrap();
            if exited.is_some() || started.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "apache2 ({mode:?}) did not start ({exited:?}):\n{}\n{}",
                    read(d, "stderr.log"),
                    read(d, "error.log")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Apache { port, child, dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    /// Apache's error log so far (`LogLevel warn ssl:debug`).
    pub fn error_log(&self) -> String {
        read(self.dir.path(), "error.log")
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write(dir: &Path, name: &str, content: &str, mode: u32) {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn read(dir: &Path, name: &str) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(dir.join(name)) {
        let _ = f.read_to_string(&mut text);
    }
    text
}

/// What curl saw: its exit code, the status, the response head and body, and its
/// `-v` trace (handshake messages and the request, in order).
struct Seen {
    code: Option<i32>,
    status: Option<u16>,
    answer: String,
    verbose: String,
}

impl Seen {
    /// The trace after the request was sent: what the server did late.
    fn after_request(&self) -> &str {
        self.verbose
            .split_once("> GET ")
            .map_or("", |(_, after)| after)
    }

    fn before_request(&self) -> &str {
        self.verbose
            .split_once("> GET ")
            .map_or(&*self.verbose, |(before, _)| before)
    }
}

/// The client's files: the partner's server root, and a certificate from its client CA.
struct Client {
    dir: tempfile::TempDir,
}

impl Client {
    fn new(partner: &Partner) -> Client {
        let dir = tempfile::tempdir().unwrap();
        let leaf = partner.client_ca.issue(&Spec::client("client.example"));
        let d = dir.path();
        write(d, "root.pem", &partner.server_root.pem(), 0o644);
        write(d, "client.pem", &leaf.pem(), 0o644);
        write(d, "client.key", &leaf.key_pem(), 0o600);
        Client { dir }
    }

    fn file(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// `curl -v` GET of `path`, with the client certificate or without.
    fn curl(&self, apache: &Apache, path: &str, with_cert: bool) -> Seen {
        let mut cmd = tools::command("curl");
        // -q first: no ~/.curlrc; no proxy of the machine's.
        cmd.args([
            "-q",
            "-sS",
            "-v",
            "-i",
            "--noproxy",
            "*",
            "--max-time",
            "10",
        ])
        .args(["--cacert", &self.file("root.pem")]);
        if with_cert {
            cmd.args(["--cert", &self.file("client.pem")])
                .args(["--key", &self.file("client.key")]);
        }
        let out: Output = cmd.arg(apache.url(path)).output().unwrap();
        let answer = String::from_utf8_lossy(&out.stdout).into_owned();
        let status = answer
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok());
        Seen {
            code: out.status.code(),
            status,
            answer,
            verbose: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `openssl s_client -tls1_2 -trace` sending one GET of `path` with the client
    /// certificate: the trace decodes the CertificateRequest of a renegotiation,
    /// acceptable-CA names included.
    fn s_client_tls12_trace(&self, apache: &Apache, path: &str) -> String {
        let trace = std::fs::File::create(self.dir.path().join("trace.txt")).unwrap();
        let mut child = tools::command("openssl")
            .args(["s_client", "-connect"])
            .arg(format!("127.0.0.1:{}", apache.port))
            .args(["-servername", "localhost", "-tls1_2", "-trace", "-ign_eof"])
            .args(["-CAfile", &self.file("root.pem")])
            .args(["-cert", &self.file("client.pem")])
            .args(["-key", &self.file("client.key")])
            .stdin(Stdio::piped())
            .stdout(trace)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Connection: close: Apache closes after answering, and s_client exits.
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), request.as_bytes()).unwrap();
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "s_client did not finish:\n{}",
                    read(self.dir.path(), "trace.txt")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        read(self.dir.path(), "trace.txt")
    }
}

const SUBJECT: &str = "CN=client.example";

/// 200 with the subject in the body and in `X-Client`.
fn assert_served_with_subject(seen: &Seen) {
    assert_eq!(seen.status, Some(200), "{}\n{}", seen.answer, seen.verbose);
    let (head, body) = seen.answer.split_once("\r\n\r\n").unwrap();
    assert!(
        head.lines()
            .any(|l| l.starts_with("X-Client: ") && l.contains(SUBJECT)),
        "{head}"
    );
    assert!(
        body.starts_with("secure ") && body.contains(SUBJECT),
        "{body:?}"
    );
}

/// `/open/` without a certificate: 200 `open\n`; `asked`: whether the handshake
/// (which precedes the path) asked for a certificate anyway.
fn assert_open(client: &Client, apache: &Apache, asked: bool) {
    let seen = client.curl(apache, "/open/", false);
    assert_eq!(seen.status, Some(200), "{}\n{}", seen.answer, seen.verbose);
    assert!(seen.answer.ends_with("\r\n\r\nopen\n"), "{:?}", seen.answer);
    assert_eq!(
        seen.verbose.contains("Request CERT"),
        asked,
        "{}",
        seen.verbose
    );
}

#[test]
fn apache_partners_behave_as_real_ones_do() {
    let partner = Partner::start();
    let client = Client::new(&partner);

    // TLS 1.2, asked late: the request goes out, Apache sends a HelloRequest, and the
    // renegotiation's handshake asks for the certificate.
    let apache = Apache::start(&partner, Mode::LateTls12);
    assert_open(&client, &apache, false);
    let seen = client.curl(&apache, "/secure/", true);
    assert_served_with_subject(&seen);
    assert!(
        seen.before_request()
            .contains("SSL connection using TLSv1.2")
            && !seen.before_request().contains("Request CERT"),
        "{}",
        seen.verbose
    );
    let late = seen.after_request();
    let hello = late
        .find("TLSv1.2 (IN), TLS handshake, Hello request (0)")
        .unwrap_or_else(|| panic!("{}", seen.verbose));
    assert!(
        late[hello..].contains("TLSv1.2 (IN), TLS handshake, Request CERT (13)"),
        "{}",
        seen.verbose
    );
    let log = apache.error_log();
    for line in [
        "AH02255: Changed client verification type will force renegotiation",
        "AH02221: Requesting connection re-negotiation",
        "AH02260: Performing full renegotiation: complete handshake protocol",
    ] {
        assert!(log.contains(line), "{line}:\n{log}");
    }
    // Without a certificate, the renegotiation fails: an alert, no HTTP answer.
    let seen = client.curl(&apache, "/secure/", false);
    assert_eq!(seen.code, Some(56), "{}", seen.verbose);
    assert_eq!(seen.status, None, "{}", seen.answer);
    assert!(
        seen.verbose.contains("alert handshake failure"),
        "{}",
        seen.verbose
    );
    assert!(
        apache
            .error_log()
            .contains("AH02261: Re-negotiation handshake failed"),
        "{}",
        apache.error_log()
    );
    drop(apache);

    // TLS 1.3, asked late: post-handshake authentication (curl offers it).
    let apache = Apache::start(&partner, Mode::LateTls13);
    assert_open(&client, &apache, false);
    let seen = client.curl(&apache, "/secure/", true);
    assert_served_with_subject(&seen);
    assert!(
        seen.before_request()
            .contains("SSL connection using TLSv1.3")
            && !seen.before_request().contains("Request CERT"),
        "{}",
        seen.verbose
    );
    assert!(
        seen.after_request()
            .contains("TLSv1.3 (IN), TLS handshake, Request CERT (13)")
            && !seen.after_request().contains("Hello request"),
        "{}",
        seen.verbose
    );
    let log = apache.error_log();
    assert!(
        log.contains("AH10129: verify client post handshake"),
        "{log}"
    );
    assert!(!log.contains("AH02221"), "{log}");
    // Without a certificate: the client answers with an empty one and Apache ends the
    // connection with a certificate_required alert.
    let seen = client.curl(&apache, "/secure/", false);
    assert_eq!(seen.code, Some(56), "{}", seen.verbose);
    assert_eq!(seen.status, None, "{}", seen.answer);
    assert!(
        seen.verbose.contains("tlsv13 alert certificate required"),
        "{}",
        seen.verbose
    );
    assert!(
        apache
            .error_log()
            .contains("AH02263: Re-negotiation handshake failed: Client certificate missing"),
        "{}",
        apache.error_log()
    );
    drop(apache);

    // Optional: asked in the handshake; /secure/ only with a verified certificate.
    let apache = Apache::start(&partner, Mode::Optional);
    assert_open(&client, &apache, true);
    let seen = client.curl(&apache, "/secure/", true);
    assert_served_with_subject(&seen);
    assert!(
        seen.before_request().contains("Request CERT (13)")
            && !seen.after_request().contains("Request CERT"),
        "{}",
        seen.verbose
    );
    let seen = client.curl(&apache, "/secure/", false);
    assert_eq!(seen.status, Some(403), "{}\n{}", seen.answer, seen.verbose);
    drop(apache);

    // Never asks: 403 with or without a certificate, never a CertificateRequest.
    let apache = Apache::start(&partner, Mode::NeverAsks);
    assert_open(&client, &apache, false);
    for with_cert in [true, false] {
        let seen = client.curl(&apache, "/secure/", with_cert);
        assert_eq!(seen.status, Some(403), "{}\n{}", seen.answer, seen.verbose);
        assert!(!seen.verbose.contains("Request CERT"), "{}", seen.verbose);
    }
    let log = apache.error_log();
    assert!(
        !log.contains("AH10129") && !log.contains("AH02221"),
        "{log}"
    );
    drop(apache);

    // Other CAs: the CertificateRequest names only "Some Other Client CA". OpenSSL
    // clients (curl, s_client) send their configured certificate whatever the list
    // says, and Apache verifies it against the partner's client CAs: served.
    let apache = Apache::start(&partner, Mode::OtherCas);
    assert_open(&client, &apache, false);
    let seen = client.curl(&apache, "/secure/", true);
    assert_served_with_subject(&seen);
    assert!(
        seen.after_request()
            .contains("TLSv1.3 (IN), TLS handshake, Request CERT (13)"),
        "{}",
        seen.verbose
    );
    let trace = client.s_client_tls12_trace(&apache, "/secure/");
    let request = trace
        .rfind("CertificateRequest")
        .unwrap_or_else(|| panic!("{trace}"));
    let names: Vec<&str> = trace[request..]
        .lines()
        .filter(|l| l.contains("DistinguishedName (len="))
        .collect();
    assert!(
        names.len() == 1 && names[0].contains("CN = Some Other Client CA"),
        "{names:?}\n{trace}"
    );
    assert!(
        trace.contains("HTTP/1.1 200 OK")
            && trace
                .lines()
                .any(|l| l.starts_with("X-Client: ") && l.contains(SUBJECT)),
        "{trace}"
    );
}
