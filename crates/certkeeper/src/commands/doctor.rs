//! `certkeeper doctor [REF]`: checks for the usual causes of a failing call, one
//! line each, ok / warn / fail, with the command that fixes it.

use std::path::PathBuf;
use std::sync::Arc;

use certkeeper_agent::AgentClient;
use certkeeper_core::Certificate;
use certkeeper_core::path::Purpose;
use certkeeper_store::{Entry, Home, Principal, Setting, StoreName};
use serde::Serialize;

use super::Context;
use super::agent::socket_path;
use crate::error::CliError;
use crate::output;

/// One finding.
#[derive(Debug, Serialize)]
pub struct Finding {
    /// Which check.
    pub check: &'static str,
    /// What it is about (a subject, a binding, the agent).
    pub subject: String,
    /// ok, warn or fail.
    pub status: &'static str,
    /// What was found.
    pub detail: String,
    /// The command or action that fixes it.
    pub fix: Option<String>,
}

pub(super) struct Findings(pub(super) Vec<Finding>);

impl Findings {
    pub(super) fn add(
        &mut self,
        check: &'static str,
        subject: &str,
        status: &'static str,
        detail: impl Into<String>,
        fix: Option<String>,
    ) {
        self.0.push(Finding {
            check,
            subject: subject.to_string(),
            status,
            detail: detail.into(),
            fix,
        });
    }
}

pub struct Options<'a> {
    pub reference: Option<&'a str>,
    pub at: Option<&'a str>,
    pub online: bool,
    pub socket: Option<PathBuf>,
}

pub fn run(ctx: &Context, opts: &Options<'_>) -> Result<u8, CliError> {
    // Someone else's home: say whose (exit 4), as every owner-only command does.
    if certkeeper_store::Home::is_foreign(&ctx.home_dir) {
        ctx.open()?;
    }
    // A home someone else could have prepared is not opened at all: its one check.
    if let Err(certkeeper_store::StoreError::Untrusted { path, problem, fix }) =
        certkeeper_store::trust::check_home(&ctx.home_dir)
    {
        let mut f = Findings(Vec::new());
        f.add(
            "home",
            &path.display().to_string(),
            "fail",
            format!("{problem}: the home is not trusted"),
            Some(fix),
        );
        return report(ctx, &f);
    }
    let home = ctx.open()?;
    let at = match opts.at {
        Some(t) => super::path::parse_time(t)?,
        None => output::now(),
    };
    let socket = socket_path(opts.socket.clone(), &ctx.home_dir);
    let mut f = Findings(Vec::new());

    // The agent runs and answers, and can write its audit log (else it signs nothing).
    match AgentClient::connect(&socket).and_then(|mut c| c.hello()) {
        Ok(hello) => {
            f.add(
                "agent",
                "agent",
                "ok",
                format!("{} answers on {}", hello.agent, socket.display()),
                None,
            );
            match hello.audit {
                None => f.add(
                    "audit",
                    "agent",
                    "ok",
                    "the agent writes its audit log",
                    None,
                ),
                Some(reason) => f.add(
                    "audit",
                    "agent",
                    "fail",
                    format!(
                        "the agent cannot write its audit log ({reason}), so it refuses to sign"
                    ),
                    Some(format!(
                        "make room on the file system of {} (or fix the log's permissions)",
                        ctx.home_dir.join("audit.log").display()
                    )),
                ),
            }
        }
        Err(e) => f.add(
            "agent",
            "agent",
            "fail",
            e.to_string(),
            Some("start it: certkeeper agent (or: systemctl start certkeeper-agent)".into()),
        ),
    }

    let entries: Vec<Entry> = match opts.reference {
        Some(r) => vec![home.resolve(r)?],
        None => home.list(Some(StoreName::Personal))?,
    };
    let principals =
        certkeeper_store::home::parse_principals(&home.setting(Setting::ServicePrincipals)?)?;
    let warn_days: i64 = home
        .setting(Setting::ExpiryWarningDays)?
        .parse()
        .unwrap_or(30);
    for entry in &entries {
        check_entry(&home, entry, at, warn_days, &principals, &mut f)?;
    }

    if opts.reference.is_none() {
        fleet_finding(&home, &mut f)?;
    }

    for binding in home.bindings()? {
        if let Some(r) = opts.reference
            && home.resolve(r).ok().map(|e| e.thumbprint)
                != home
                    .resolve_current(&binding.cert, at)
                    .ok()
                    .map(|e| e.thumbprint)
        {
            continue;
        }
        let agent_running = f.0.iter().any(|x| x.check == "agent" && x.status == "ok");
        check_binding(
            &home,
            &binding,
            at,
            opts.online,
            agent_running,
            &socket,
            &mut f,
        );
    }

    report(ctx, &f)
}

/// The home's place in a fleet, if it has one: a front-end says whether it reaches
/// etcd and which generation it holds.
fn fleet_finding(home: &Home, f: &mut Findings) -> Result<(), CliError> {
    let Some(config) = home.fleet_config()? else {
        return Ok(());
    };
    let subject = format!("environment {}", config.env);
    match (config.role, &config.last_error) {
        (certkeeper_store::FleetRole::Admin, _) => f.add(
            "fleet",
            &subject,
            "ok",
            format!(
                "this home is the administrator's; last published generation {}",
                config.generation
            ),
            None,
        ),
        (_, None) => f.add(
            "fleet",
            &subject,
            "ok",
            format!(
                "front-end {} follows it; generation {} applied{}",
                config.node.as_deref().unwrap_or("-"),
                config.generation,
                config
                    .applied_at
                    .map(|t| format!(" at {}", output::human_time(t)))
                    .unwrap_or_default()
            ),
            None,
        ),
        (_, Some((since, error))) => f.add(
            "fleet",
            &subject,
            "warn",
            format!(
                "since {}: {error}; serving from the local home (generation {})",
                output::human_time(*since),
                config.generation
            ),
            Some("check etcd and the network to it; the agent retries by itself".into()),
        ),
    }
    Ok(())
}

/// What the agent reports about its front-end on etcd: the offline checks of every
/// personal entry and binding (the agent is evidently running), as failing
/// "check: subject" and a count of warnings.
pub fn summary(home: &Home) -> (Vec<String>, usize) {
    let mut f = Findings(Vec::new());
    let at = output::now();
    let principals = home
        .setting(Setting::ServicePrincipals)
        .ok()
        .and_then(|p| certkeeper_store::home::parse_principals(&p).ok())
        .unwrap_or_default();
    let warn_days: i64 = home
        .setting(Setting::ExpiryWarningDays)
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(30);
    if let Ok(entries) = home.list(Some(StoreName::Personal)) {
        for entry in &entries {
            if let Err(e) = check_entry(home, entry, at, warn_days, &principals, &mut f) {
                f.add("entry", &entry.subject, "fail", e.to_string(), None);
            }
        }
    }
    let socket = std::path::PathBuf::new();
    for binding in home.bindings().unwrap_or_default() {
        check_binding(home, &binding, at, false, true, &socket, &mut f);
    }
    let failing =
        f.0.iter()
            .filter(|x| x.status == "fail")
            .map(|x| format!("{}: {}", x.check, x.subject))
            .collect();
    let warnings = f.0.iter().filter(|x| x.status == "warn").count();
    (failing, warnings)
}

/// Prints the findings; exit 1 when any failed.
pub(super) fn report(ctx: &Context, f: &Findings) -> Result<u8, CliError> {
    let failed = f.0.iter().any(|x| x.status == "fail");
    if ctx.json {
        output::json(&f.0)?;
    } else {
        let mut text = String::new();
        for x in &f.0 {
            let mark = match x.status {
                "ok" => "ok  ",
                "warn" => "WARN",
                _ => "FAIL",
            };
            text.push_str(&format!(
                "{mark}  {:<12} {}: {}",
                x.check,
                output::printable(&x.subject),
                output::printable(&x.detail)
            ));
            if let Some(fix) = &x.fix {
                text.push_str(&format!("\n      fix: {}", output::printable(fix)));
            }
            text.push('\n');
        }
        let (fails, warns) = (
            f.0.iter().filter(|x| x.status == "fail").count(),
            f.0.iter().filter(|x| x.status == "warn").count(),
        );
        text.push_str(&format!(
            "\n{} checks: {fails} failed, {warns} warnings\n",
            f.0.len()
        ));
        output::print_stdout(&text)?;
    }
    Ok(u8::from(failed))
}

fn short(e: &Entry) -> String {
    match &e.name {
        Some(n) => n.clone(),
        None => e.thumbprint[..16].to_string(),
    }
}

fn check_entry(
    home: &Home,
    entry: &Entry,
    at: i64,
    warn_days: i64,
    principals: &[Principal],
    f: &mut Findings,
) -> Result<(), CliError> {
    let subject = entry.subject.as_str();
    let r = short(entry);
    let cert = Certificate::from_der(&entry.der)?;

    // Private key present and matching.
    if !entry.has_key {
        f.add(
            "private-key",
            subject,
            "fail",
            "no private key corresponds to this certificate",
            Some("import the .pfx (or key file) that holds it: certkeeper import FILE".into()),
        );
    } else {
        match home.private_key(entry) {
            Ok(key) if key.matches(&cert) && key.algorithm().tls_refusal().is_some() => f.add(
                "private-key",
                subject,
                "fail",
                format!(
                    "present and matches the certificate, but {}",
                    key.algorithm().tls_refusal().unwrap_or_default()
                ),
                Some(
                    "ask for a certificate with an RSA (2048 bits or more), ECDSA \
                     P-256/P-384/P-521 or Ed25519 key, and import it with its key"
                        .into(),
                ),
            ),
            Ok(key) if key.matches(&cert) => f.add(
                "private-key",
                subject,
                "ok",
                "present and matches the certificate",
                None,
            ),
            Ok(_) => f.add(
                "private-key",
                subject,
                "fail",
                "the stored key does not match the certificate",
                Some(format!(
                    "remove it and import the right .pfx: certkeeper remove {r}"
                )),
            ),
            Err(e) => f.add(
                "private-key",
                subject,
                "fail",
                format!("the key cannot be opened: {e}"),
                None,
            ),
        }
        // Key ACL holds the service principals.
        let acl = home.acl(&entry.thumbprint)?;
        let missing: Vec<String> = principals
            .iter()
            .filter(|p| !acl.contains(p))
            .map(ToString::to_string)
            .collect();
        if principals.is_empty() {
            f.add(
                "key-acl",
                subject,
                "warn",
                "no service principals configured: only root and the home's owner may use keys",
                Some("certkeeper config service_principals user:NAME,group:NAME".into()),
            );
        } else if missing.is_empty() {
            f.add(
                "key-acl",
                subject,
                "ok",
                format!(
                    "grants {}",
                    principals
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None,
            );
        } else {
            f.add(
                "key-acl",
                subject,
                "fail",
                format!("does not grant {}", missing.join(", ")),
                Some(format!("certkeeper grant {r} {}", missing.join(" "))),
            );
        }
    }

    // Path complete, root trusted.
    let check = home.check_path(entry, at, Purpose::ClientAuth)?;
    match &check.report.problem {
        None => f.add(
            "path",
            subject,
            "ok",
            format!(
                "valid up to {}",
                check
                    .report
                    .chain
                    .last()
                    .map(|l| l.subject.as_str())
                    .unwrap_or("-")
            ),
            None,
        ),
        Some(problem) => f.add(
            "path",
            subject,
            "fail",
            problem.to_string(),
            super::path::fix(problem, &check),
        ),
    }

    // Validity and days left.
    let days = output::days_until(entry.not_after, at);
    if at < entry.not_before {
        f.add(
            "validity",
            subject,
            "fail",
            format!("not valid before {}", output::human_time(entry.not_before)),
            Some("check this machine's clock".into()),
        );
    } else if at > entry.not_after {
        f.add(
            "validity",
            subject,
            "fail",
            format!("expired on {}", output::human_time(entry.not_after)),
            Some("ask the partner for a renewed certificate and import it".into()),
        );
    } else if days < warn_days {
        f.add(
            "validity",
            subject,
            "warn",
            format!(
                "expires in {days} days ({})",
                output::human_time(entry.not_after)
            ),
            Some(
                "request the renewal now; import it with the same --name so bindings follow".into(),
            ),
        );
    } else {
        f.add("validity", subject, "ok", format!("{days} days left"), None);
    }

    // clientAuth EKU.
    if cert.ext_key_usage.iter().any(|e| e == "clientAuth") {
        f.add(
            "client-auth",
            subject,
            "ok",
            "extended key usage includes clientAuth",
            None,
        );
    } else if cert.ext_key_usage.is_empty() {
        f.add(
            "client-auth",
            subject,
            "warn",
            "no extended key usage: valid for any purpose, but some services insist on clientAuth",
            None,
        );
    } else {
        f.add(
            "client-auth",
            subject,
            "fail",
            format!(
                "extended key usage is {} without clientAuth",
                cert.ext_key_usage.join(", ")
            ),
            Some("ask for a certificate whose extended key usage includes clientAuth".into()),
        );
    }

    // Export file present and holding this certificate.
    if let Some(name) = &entry.export_name {
        let path = home.export_dir()?.join(name);
        // A directory `export --as` would refuse (its message carries the fix).
        let refused = match home.checked_export_dir() {
            Err(e @ certkeeper_store::StoreError::ExportDir { .. }) => Err(e.to_string()),
            _ => Ok(()),
        };
        match refused.map(|()| std::fs::read(&path)) {
            Err(problem) => f.add("export", subject, "fail", problem, None),
            Ok(read) => match read {
                Ok(bytes) if bytes == entry.der => match unreadable(&path, principals) {
                    None => f.add(
                        "export",
                        subject,
                        "ok",
                        format!("{} holds this certificate", path.display()),
                        None,
                    ),
                    Some(blocked) => f.add(
                        "export",
                        subject,
                        if principals.is_empty() {
                            "warn"
                        } else {
                            "fail"
                        },
                        format!(
                            "{} holds this certificate but {} cannot read it: {} is mode {:04o}",
                            path.display(),
                            blocked.who,
                            blocked.at.display(),
                            blocked.mode
                        ),
                        Some(format!(
                            "chmod {} {}",
                            if blocked.at == path { "o+r" } else { "o+x" },
                            blocked.at.display()
                        )),
                    ),
                },
                Ok(_) => f.add(
                    "export",
                    subject,
                    "fail",
                    format!("{} holds another certificate", path.display()),
                    Some(format!("certkeeper export {r} --as {name} --force")),
                ),
                Err(_) => {
                    // Exports were once written inside the home, where applications
                    // cannot read them.
                    let inside = home.dir().join("exports").join(name);
                    let detail = if inside.is_file() {
                        format!(
                            "{} is missing ({} is inside the private home; export again to \
                             write it where applications read it)",
                            path.display(),
                            inside.display()
                        )
                    } else {
                        format!("{} is missing", path.display())
                    };
                    f.add(
                        "export",
                        subject,
                        "fail",
                        detail,
                        Some(format!("certkeeper export {r} --as {name}")),
                    );
                }
            },
        }
    }

    // The same certificate present twice in different forms.
    let twins: Vec<Entry> = home
        .by_subject_der(&entry.subject_der)?
        .into_iter()
        .filter(|e| e.thumbprint != entry.thumbprint)
        .filter(|e| {
            Certificate::from_der(&e.der)
                .is_ok_and(|c| c.serial == cert.serial && c.issuer_der == cert.issuer_der)
        })
        .collect();
    if let Some(twin) = twins.first() {
        f.add(
            "duplicates",
            subject,
            "warn",
            format!(
                "present twice: {} ({}) has the same issuer and serial in another encoding",
                &twin.thumbprint[..16],
                twin.store
            ),
            Some(format!(
                "keep one: certkeeper remove {}",
                &twin.thumbprint[..16]
            )),
        );
    }
    Ok(())
}

/// Who cannot read an exported file, and the first path on the way that stops them.
struct Blocked {
    who: String,
    at: PathBuf,
    mode: u32,
}

/// The first service principal (or, with none configured, other users) that cannot
/// read `file`: search permission on every directory above it, read permission on
/// it, judged from the owner, group and mode bits.
fn unreadable(file: &std::path::Path, principals: &[Principal]) -> Option<Blocked> {
    use std::os::unix::fs::MetadataExt;
    // (who, uid if one user, the groups they are in)
    let mut readers: Vec<(String, Option<u32>, Vec<u32>)> = Vec::new();
    for p in principals {
        match p.resolve() {
            Some((true, uid)) => {
                let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                    .ok()
                    .flatten();
                let groups = user
                    .map(|u| {
                        let name = std::ffi::CString::new(u.name).unwrap_or_default();
                        nix::unistd::getgrouplist(&name, u.gid)
                            .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
                            .unwrap_or_else(|_| vec![u.gid.as_raw()])
                    })
                    .unwrap_or_default();
                readers.push((p.to_string(), Some(uid), groups));
            }
            Some((false, gid)) => readers.push((p.to_string(), None, vec![gid])),
            None => {}
        }
    }
    if principals.is_empty() {
        readers.push(("other users".into(), None, Vec::new()));
    }
    let mut steps: Vec<(PathBuf, u32)> = file
        .ancestors()
        .skip(1)
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| (d.to_path_buf(), 0o1))
        .collect();
    steps.reverse();
    steps.push((file.to_path_buf(), 0o4));
    for (who, uid, groups) in readers {
        for (at, need) in &steps {
            let Ok(meta) = std::fs::metadata(at) else {
                continue;
            };
            let mode = meta.mode() & 0o7777;
            let bits = if uid == Some(0) {
                0o7
            } else if uid == Some(meta.uid()) {
                mode >> 6
            } else if groups.contains(&meta.gid()) {
                mode >> 3
            } else {
                mode
            };
            if bits & need == 0 {
                return Some(Blocked {
                    who,
                    at: at.clone(),
                    mode,
                });
            }
        }
    }
    None
}

/// Who holds a binding's loopback address: the agent runs as the home's owner, so a
/// listening socket there of another uid is someone else's (a port taken first), and
/// applications' requests, with whatever credentials they carry, go to it.
fn check_listener(
    home: &Home,
    name: &str,
    addr: std::net::SocketAddr,
    agent_running: bool,
    f: &mut Findings,
) {
    use std::os::unix::fs::MetadataExt;
    let Ok(owner) = std::fs::metadata(home.dir()).map(|m| m.uid()) else {
        return;
    };
    let holders = listening_uids(addr);
    if holders.is_empty() && agent_running {
        f.add(
            "binding-listen",
            name,
            "warn",
            format!("nothing listens on {addr}, though the agent runs"),
            Some("look for \"cannot listen\" in the agent's log".into()),
        );
        return;
    }
    let foreign: Vec<u32> = holders.iter().copied().filter(|u| *u != owner).collect();
    if let Some(uid) = foreign.first() {
        f.add(
            "binding-listen",
            name,
            "fail",
            format!(
                "{addr} is held by another process of {} (not the agent): applications' requests \
                 to it go there",
                Principal::describe_uid(*uid)
            ),
            Some(format!(
                "find it with: ss -ltnp 'sport = :{}' and stop it; the agent takes the address \
                 within 5 s",
                addr.port()
            )),
        );
    }
}

/// The uids of the sockets listening where a connection to `addr` could land: on
/// `addr` itself or on its family's wildcard (/proc/net/tcp), and, for IPv4, on the
/// IPv6 wildcard or `addr` mapped into IPv6 (dual-stack sockets, /proc/net/tcp6).
fn listening_uids(addr: std::net::SocketAddr) -> Vec<u32> {
    fn v6_words(ip: std::net::Ipv6Addr) -> String {
        ip.octets()
            .chunks(4)
            .map(|w| format!("{:08X}", u32::from_le_bytes([w[0], w[1], w[2], w[3]])))
            .collect()
    }
    let port = addr.port();
    let v6_any = format!("{}:{port:04X}", "0".repeat(32));
    let (v4, v6): (Vec<String>, Vec<String>) = match addr {
        std::net::SocketAddr::V4(a) => (
            vec![
                format!("{:08X}:{port:04X}", u32::from_le_bytes(a.ip().octets())),
                format!("00000000:{port:04X}"),
            ],
            vec![
                v6_any,
                format!("{}:{port:04X}", v6_words(a.ip().to_ipv6_mapped())),
            ],
        ),
        std::net::SocketAddr::V6(a) => (
            Vec::new(),
            vec![format!("{}:{port:04X}", v6_words(*a.ip())), v6_any],
        ),
    };
    let mut uids = Vec::new();
    for (file, wanted) in [("/proc/net/tcp", v4), ("/proc/net/tcp6", v6)] {
        if wanted.is_empty() {
            continue;
        }
        let Ok(table) = std::fs::read_to_string(file) else {
            continue;
        };
        uids.extend(table.lines().skip(1).filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // local_address, state 0A = LISTEN, uid.
            let (local, state, uid) = (cols.get(1)?, cols.get(3)?, cols.get(7)?);
            (*state == "0A" && wanted.iter().any(|w| w == local))
                .then(|| uid.parse::<u32>().ok())
                .flatten()
        }));
    }
    uids
}

fn check_binding(
    home: &Home,
    binding: &certkeeper_store::Binding,
    at: i64,
    online: bool,
    agent_running: bool,
    socket: &std::path::Path,
    f: &mut Findings,
) {
    let name = format!("binding {}", binding.name);
    if binding.legacy_tls {
        f.add(
            "binding-tls",
            &name,
            "warn",
            format!(
                "--legacy-tls: {} may be reached over TLS 1.0 or 1.1, with RSA key exchange and \
                 CBC suites, and with a server certificate that names its host only in its CN; \
                 ask the partner to move to TLS 1.2 with ECDHE and a subjectAltName",
                binding.upstream
            ),
            Some(format!(
                "once it has: certkeeper bind {} --cert {} --upstream {} (without --legacy-tls)",
                binding.name, binding.cert, binding.upstream
            )),
        );
    }
    if let Some(listen) = &binding.listen
        && let Ok(addr) = listen.parse::<std::net::SocketAddr>()
    {
        check_listener(home, &name, addr, agent_running, f);
    }
    let entry = match home.resolve_current(&binding.cert, at) {
        Ok(e) => e,
        Err(e) => {
            f.add(
                "binding",
                &name,
                "fail",
                format!("its certificate {:?}: {e}", binding.cert),
                Some(format!(
                    "certkeeper bind {} --cert REF --upstream {}",
                    binding.name, binding.upstream
                )),
            );
            return;
        }
    };
    // Who may use it: the key's ACL, narrowed by --allow.
    let acl: Vec<String> = home
        .acl(&entry.thumbprint)
        .unwrap_or_default()
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut who = if acl.is_empty() {
        "root and the home's owner only".to_string()
    } else {
        format!("root, the home's owner, {}", acl.join(", "))
    };
    if !binding.allow.is_empty() {
        who.push_str(&format!(", narrowed to {}", binding.allow.join(", ")));
    }
    f.add(
        "binding-access",
        &name,
        "ok",
        format!("may be used by {who} (others get 403)"),
        None,
    );
    match home.check_path(&entry, at, Purpose::ClientAuth) {
        Ok(check) if check.report.valid => f.add(
            "binding",
            &name,
            "ok",
            format!("certificate {} has a valid path", entry.subject),
            None,
        ),
        Ok(check) => {
            let problem = check.report.problem.clone();
            f.add(
                "binding",
                &name,
                "fail",
                format!(
                    "certificate {}: {}",
                    entry.subject,
                    problem
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                ),
                problem.as_ref().and_then(|p| super::path::fix(p, &check)),
            );
        }
        Err(e) => f.add("binding", &name, "fail", e.to_string(), None),
    }
    if !online {
        return;
    }
    match handshake(home, binding, socket) {
        Ok(detail) => f.add("upstream", &name, "ok", detail, None),
        Err(detail) => f.add("upstream", &name, "fail", detail, None),
    }
}

/// A TLS handshake with the upstream, presenting the binding's certificate.
fn handshake(
    home: &Home,
    binding: &certkeeper_store::Binding,
    socket: &std::path::Path,
) -> Result<String, String> {
    use certkeeper_egress::tls::{ServerTrust, agent_client_config};
    let trust = ServerTrust::named(Some(home), &binding.server_ca).map_err(|e| e.to_string())?;
    let (config, resolver, key) =
        agent_client_config(socket, &binding.cert, &trust, &[b"http/1.1"])
            .map_err(|e| e.to_string())?;
    let url: http::Uri = binding.upstream.parse().map_err(|e| format!("{e}"))?;
    let call = certkeeper_egress::request::Call {
        url: url.clone(),
        method: http::Method::HEAD,
        headers: Vec::new(),
        body: bytes::Bytes::new(),
        route: certkeeper_egress::supervisor::binding_route(home, binding)
            .map_err(|e| e.to_string())?,
        // As the binding's relay does: OpenSSL (in the agent) for a partner that does
        // not ask for the certificate in the handshake, or on old TLS.
        handoff: Some(certkeeper_egress::request::Handoff {
            socket: socket.to_path_buf(),
            thumbprint: key.thumbprint,
            trust: trust.for_agent(&binding.server_ca),
            legacy: binding.legacy_tls,
        }),
    };
    let through = url
        .host()
        .and_then(|host| {
            call.route
                .proxy
                .as_ref()
                .filter(|_| !call.route.no_proxy.bypasses(host))
        })
        .map(|p| format!(" through the proxy {p}"))
        .unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut sink = std::io::sink();
    let answer = runtime
        .block_on(certkeeper_egress::request::send(
            &call,
            Arc::new(config),
            &mut |_| {},
            &mut sink,
        ))
        .map_err(|e| match resolver.issuer_mismatch() {
            Some(mismatch) => format!("{e} ({mismatch})"),
            None => e.to_string(),
        })?;
    let certificate = match (answer.tls.asked.in_handshake, resolver.issuer_mismatch()) {
        _ if binding.legacy_tls => "presented if asked for (old TLS, with OpenSSL)".to_string(),
        _ if answer.tls.library == "OpenSSL" => {
            "not requested in the handshake: the session was made with OpenSSL, which presents \
             it if the partner asks after the handshake"
                .to_string()
        }
        (false, _) => {
            "not requested: the partner did not ask for a client certificate on this path"
                .to_string()
        }
        (true, None) => "requested and presented".to_string(),
        (true, Some(mismatch)) => format!("requested and presented, but {mismatch}"),
    };
    Ok(format!(
        "{}{through} answered {} over {} (client certificate {certificate})",
        url.authority().map(|a| a.as_str()).unwrap_or(""),
        answer.status,
        answer.tls.version,
    ))
}
