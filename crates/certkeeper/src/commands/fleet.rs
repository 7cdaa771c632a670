//! `certkeeper fleet ...` and `doctor --fleet`: the words around `certkeeper-fleet`.

use certkeeper_fleet::admin::{self, JoinOptions};
use certkeeper_fleet::etcd::parse_endpoints;
use certkeeper_fleet::{FleetError, crypto};

use super::Context;
use super::doctor::{Findings, report};
use crate::cli::FleetCommand;
use crate::error::{CliError, Kind};
use crate::output;

/// The fleet's commands talk to etcd asynchronously, one at a time.
fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(Kind::Environment, format!("cannot start the runtime: {e}")))
}

/// Runs an operation once (`init` and `join` create things: not repeated).
fn block_on<T>(
    future: impl std::future::Future<Output = Result<T, FleetError>>,
) -> Result<T, CliError> {
    runtime()?.block_on(future).map_err(CliError::from)
}

/// Runs an operation that may be repeated whole, again while etcd is electing a leader
/// (a member restarted, a leader lost): up to three times, a second apart. A publish
/// repeated after its transaction landed writes one more identical generation, which
/// front-ends apply as a no-op change.
fn retrying<T, F, Fut>(mut operation: F) -> Result<T, CliError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, FleetError>>,
{
    let runtime = runtime()?;
    let mut attempt = 1;
    loop {
        match runtime.block_on(operation()) {
            Err(FleetError::Etcd { reason, .. }) if attempt < 3 && reason.contains("leader") => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
            other => return other.map_err(CliError::from),
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

pub fn run(ctx: &Context, command: FleetCommand) -> Result<u8, CliError> {
    let home = ctx.open()?;
    match command {
        FleetCommand::Init {
            etcd,
            env,
            etcd_cert,
        } => {
            let endpoints = parse_endpoints(&etcd)?;
            let done = block_on(admin::init(&home, endpoints, &env, etcd_cert.as_deref()))?;
            if ctx.json {
                output::json(&done)?;
            } else {
                output::print_stdout(&format!(
                    "environment {} created on etcd ({etcd}); this home is its administrator\n\
                     administrator key: {}\n  (front-ends can require it: certkeeper fleet join ... --admin-fingerprint {})\n\
                     next: fleet join on each front-end, fleet approve here, then fleet publish\n",
                    done.env, done.fingerprint, done.fingerprint
                ))?;
            }
        }
        FleetCommand::Join {
            etcd,
            env,
            node,
            etcd_cert,
            admin_fingerprint,
            listen_host,
        } => {
            let endpoints = parse_endpoints(&etcd)?;
            let hostname = hostname();
            let node =
                node.unwrap_or_else(|| hostname.split('.').next().unwrap_or(&hostname).to_string());
            let joined = block_on(admin::join(
                &home,
                &JoinOptions {
                    endpoints,
                    env: &env,
                    node: &node,
                    hostname: &hostname,
                    etcd_cert: etcd_cert.as_deref(),
                    listen_host: listen_host.as_deref(),
                    admin_fingerprint: admin_fingerprint.as_deref(),
                },
            ))?;
            if ctx.json {
                output::json(&joined)?;
            } else {
                output::print_stdout(&format!(
                    "joined environment {env} as front-end {}\n\
                     fingerprint: {}\n\
                     approve it on the administrator's machine:\n  certkeeper fleet approve {} --fingerprint {}\n\
                     administrator key (pinned): {}: compare it with what fleet init printed (or join \
                     with --admin-fingerprint)\n\
                     the agent follows the environment (started, or already running)\n",
                    joined.node,
                    joined.fingerprint,
                    joined.node,
                    joined.fingerprint,
                    joined.admin_fingerprint
                ))?;
            }
        }
        FleetCommand::Approve { node, fingerprint } => {
            let member = retrying(|| admin::approve(&home, &node, &fingerprint))?;
            let fp = crypto::fingerprint(&member.public_key);
            if ctx.json {
                output::json(&serde_json::json!({
                    "node": member.node, "hostname": member.hostname, "fingerprint": fp,
                }))?;
            } else {
                output::print_stdout(&format!(
                    "approved {} (host {}, key {fp}); it receives keys from the next publish: \
                     certkeeper fleet publish\n",
                    member.node, member.hostname
                ))?;
            }
        }
        FleetCommand::Remove { node } => {
            let (approved, known) = retrying(|| admin::remove(&home, &node))?;
            if !known {
                return Err(CliError::new(
                    Kind::NotFound,
                    format!("no front-end named {node} in this environment"),
                )
                .with_fix("certkeeper fleet status lists them"));
            }
            if ctx.json {
                output::json(
                    &serde_json::json!({"node": node, "removed": true, "was_approved": approved}),
                )?;
            } else {
                output::print_stdout(&format!(
                    "removed {node}: nothing published from now on is sealed to it, and its \
                     registration, keys and status are gone from etcd.\n\
                     The keys it received before stay on it: if it is not trusted any more, \
                     renew those certificates and publish.\n"
                ))?;
            }
        }
        FleetCommand::Publish => {
            let host = hostname();
            let published = retrying(|| admin::publish(&home, &host))?;
            if ctx.json {
                output::json(&published)?;
            } else {
                let to = if published.members.is_empty() {
                    "no front-end approved yet".to_string()
                } else {
                    published.members.join(", ")
                };
                output::print_stdout(&format!(
                    "published generation {}: {} certificates ({} with keys, sealed to each \
                     front-end), {} bindings, {} KiB; for: {to}\n",
                    published.generation,
                    published.entries,
                    published.keys,
                    published.bindings,
                    published.bytes.div_ceil(1024)
                ))?;
            }
        }
        FleetCommand::Diff => {
            let (generation, changes) = retrying(|| admin::diff(&home))?;
            if ctx.json {
                output::json(&serde_json::json!({"generation": generation, "changes": changes}))?;
            } else if changes.is_empty() {
                output::print_stdout(&format!(
                    "no changes: this home is what generation {generation} holds\n"
                ))?;
            } else {
                let mut text = format!("against generation {generation}:\n");
                for c in &changes {
                    text.push_str(&format!(
                        "{} {} {}{}\n",
                        c.change,
                        c.kind,
                        output::printable(&c.name),
                        if c.detail.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", output::printable(&c.detail))
                        }
                    ));
                }
                output::print_stdout(&text)?;
            }
        }
        FleetCommand::Status => {
            let report = retrying(|| admin::status(&home))?;
            let (latest, nodes) = (report.latest, &report.nodes);
            if let Some(problem) = &report.problem {
                eprintln!("certkeeper: warning: {problem}");
            }
            if ctx.json {
                output::json(nodes)?;
            } else {
                let mut text = format!("latest generation: {latest}\n");
                text.push_str(&format!(
                    "{:<20} {:<20} {:<6} {:<10} {}\n",
                    "NODE", "HOST", "ALIVE", "GENERATION", "STATE"
                ));
                for n in nodes {
                    let state = node_state(n);
                    text.push_str(&format!(
                        "{:<20} {:<20} {:<6} {:<10} {}\n",
                        output::printable(&n.node),
                        output::printable(&n.hostname),
                        if n.alive { "yes" } else { "no" },
                        n.generation,
                        output::printable(&state)
                    ));
                }
                if nodes.is_empty() {
                    text.push_str("(no front-end has joined)\n");
                }
                output::print_stdout(&text)?;
            }
        }
    }
    Ok(0)
}

/// One line about a front-end: what is wrong with it, or "ok".
fn node_state(n: &admin::NodeStatus) -> String {
    let mut problems = Vec::new();
    if !n.approved {
        problems.push("not approved (fleet approve, then publish)".to_string());
    }
    if !n.alive {
        problems.push("agent not running or etcd unreachable from it".to_string());
    }
    if n.behind {
        problems.push("behind the latest generation".to_string());
    }
    if let Some(e) = &n.error {
        problems.push(e.clone());
    }
    if !n.failing.is_empty() {
        problems.push(format!("failing: {}", n.failing.join(", ")));
    }
    if problems.is_empty() {
        if n.warnings > 0 {
            format!("ok ({} warnings)", n.warnings)
        } else {
            "ok".into()
        }
    } else {
        problems.join("; ")
    }
}

/// `doctor --fleet`: one finding per front-end; exit 1 when any is not alive, behind
/// or failing.
pub fn doctor(ctx: &Context) -> Result<u8, CliError> {
    let home = ctx.open()?;
    let found = retrying(|| admin::status(&home))?;
    let (latest, nodes) = (found.latest, &found.nodes);
    let mut f = Findings(Vec::new());
    if let Some(problem) = &found.problem {
        f.add(
            "fleet",
            "generation",
            "fail",
            problem.clone(),
            Some("publish again from the administrator's home: certkeeper fleet publish".into()),
        );
    }
    for n in nodes {
        let state = node_state(n);
        let ok = state.starts_with("ok");
        f.add(
            "fleet",
            &format!("front-end {}", n.node),
            if ok { "ok" } else { "fail" },
            format!("generation {} of {latest}: {state}", n.generation),
            (!ok).then(|| format!("certkeeper doctor on {}", n.hostname)),
        );
    }
    if nodes.is_empty() {
        f.add(
            "fleet",
            "environment",
            "warn",
            "no front-end has joined",
            Some("certkeeper fleet join on each front-end".into()),
        );
    }
    report(ctx, &f)
}
