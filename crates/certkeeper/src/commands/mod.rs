//! One module per command; `run` dispatches.

mod agent;
mod bind;
mod config;
mod demo;
mod doctor;
mod export;
mod fleet;
mod granted;
mod import;
mod list;
mod path;
mod show;

pub use import::io_reason;

use std::path::PathBuf;

use certkeeper_store::{Binding, Home, Principal};

use crate::cli::{Cli, Command};
use crate::error::CliError;
use crate::output;

/// What every command gets: the home directory and the output mode.
pub struct Context {
    /// The home directory (may not exist yet).
    pub home_dir: PathBuf,
    /// `--json`.
    pub json: bool,
}

impl Context {
    /// Opens the existing home.
    pub fn open(&self) -> Result<Home, CliError> {
        Ok(Home::open(&self.home_dir)?)
    }

    /// For the commands a granted non-owner may run (`show`, `path`, `request`): the
    /// home when this user may open it, else the agent, which answers only about the
    /// keys this user may use. A user with no home of its own asks the agent too.
    pub fn access(&self, socket: Option<PathBuf>) -> Result<Access, CliError> {
        match Home::open(&self.home_dir) {
            Ok(home) => Ok(Access::Home(Box::new(home))),
            Err(
                e @ (certkeeper_store::StoreError::NotOwner { .. }
                | certkeeper_store::StoreError::NotInitialized { .. }),
            ) => {
                let foreign = matches!(e, certkeeper_store::StoreError::NotOwner { .. });
                if !foreign && nix::unistd::geteuid().is_root() {
                    return Err(e.into());
                }
                let socket = agent::socket_path(socket, &self.home_dir);
                match certkeeper_agent::AgentClient::connect(&socket) {
                    Ok(client) => Ok(Access::Agent(client)),
                    // Without a home of its own and without an agent, the home is
                    // what is missing.
                    Err(_) if !foreign => Err(e.into()),
                    Err(unreachable) => Err(unreachable.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Where a command's answers come from.
pub enum Access {
    /// The home, opened by its owner (or root).
    Home(Box<Home>),
    /// The agent, for a user who cannot open the home.
    Agent(certkeeper_agent::AgentClient),
}

/// The agent's socket for the home `dir`, by the default rules (for messages).
pub fn agent_socket(dir: &std::path::Path) -> PathBuf {
    agent::socket_path(None, dir)
}

/// Runs a command; returns the exit code for success paths (0, or 1 when a check
/// found problems).
pub fn run(cli: Cli) -> Result<u8, CliError> {
    let ctx = Context {
        home_dir: home_dir(cli.home),
        json: cli.json,
    };
    // An agent running as the home's owner is believed (the packaged agent runs as
    // the service user that owns /var/lib/certkeeper).
    if let Ok(meta) = std::fs::metadata(&ctx.home_dir) {
        use std::os::unix::fs::MetadataExt;
        certkeeper_agent::client::trust_agent_uid(meta.uid());
    }
    match cli.command {
        Command::Init => init(&ctx),
        Command::Import(args) => import::run(&ctx, &args),
        Command::List {
            store,
            expiring,
            search,
        } => list::run(
            &ctx,
            &certkeeper_store::ListFilter {
                store: store.map(Into::into),
                expiring_before: expiring
                    .map(|days| output::now().saturating_add(i64::from(days) * 86_400)),
                search,
            },
        ),
        Command::Show { reference, socket } => show::run(&ctx, &reference, socket),
        Command::Path {
            reference,
            at,
            purpose,
            socket,
        } => path::run(&ctx, &reference, at.as_deref(), purpose, socket),
        Command::Move { reference, to } => {
            let home = ctx.open()?;
            let entry = home.resolve(&reference)?;
            let to = to.into();
            home.move_to(&entry, to)?;
            if ctx.json {
                output::json(
                    &serde_json::json!({"thumbprint": entry.thumbprint, "from": entry.store, "to": to}),
                )?;
            } else {
                output::print_stdout(&format!(
                    "moved {} from {} to {to}\n",
                    entry.subject, entry.store
                ))?;
            }
            Ok(0)
        }
        Command::Remove { reference } => {
            let home = ctx.open()?;
            let entry = home.resolve(&reference)?;
            home.remove(&entry)?;
            if ctx.json {
                output::json(
                    &serde_json::json!({"removed": entry.thumbprint, "store": entry.store}),
                )?;
            } else {
                let key = if entry.has_key {
                    " and its private key"
                } else {
                    ""
                };
                output::print_stdout(&format!(
                    "removed {}{key} from {}\n",
                    entry.subject, entry.store
                ))?;
            }
            Ok(0)
        }
        Command::Export(args) => export::run(&ctx, &args),
        Command::Agent { socket } => agent::serve(&ctx, socket),
        Command::Bind(args) => {
            let args = *args;
            bind::bind(
                &ctx,
                Binding {
                    name: args.name,
                    cert: args.cert,
                    upstream: args.upstream,
                    listen: args.listen,
                    server_ca: args.server_ca,
                    allow: args.allow,
                    proxy: args.proxy,
                    legacy_tls: args.legacy_tls,
                },
            )
        }
        Command::Unbind { name } => bind::unbind(&ctx, &name),
        Command::Bindings => bind::list(&ctx),
        Command::Request(args) => bind::request(&ctx, &args),
        Command::Doctor { fleet: true, .. } => fleet::doctor(&ctx),
        Command::Fleet(command) => fleet::run(&ctx, command),
        Command::Doctor {
            reference,
            at,
            online,
            socket,
            fleet: false,
        } => doctor::run(
            &ctx,
            &doctor::Options {
                reference: reference.as_deref(),
                at: at.as_deref(),
                online,
                socket,
            },
        ),
        Command::Demo => demo::run(&ctx),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "certkeeper",
                &mut out,
            );
            if ctx.json {
                output::json(&serde_json::json!({
                    "shell": shell.to_string(),
                    "script": String::from_utf8_lossy(&out),
                }))?;
            } else {
                output::write_stdout(&out)?;
            }
            Ok(0)
        }
        Command::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
                .render(&mut out)
                .map_err(|e| CliError::usage(e.to_string()))?;
            if ctx.json {
                output::json(&serde_json::json!({"man": String::from_utf8_lossy(&out)}))?;
            } else {
                output::write_stdout(&out)?;
            }
            Ok(0)
        }
        Command::Keycheck { reference, socket } => agent::keycheck(&ctx, &reference, socket),
        Command::Grant {
            reference,
            principals,
        } => acl(&ctx, &reference, Some((true, &principals))),
        Command::Revoke {
            reference,
            principals,
        } => acl(&ctx, &reference, Some((false, &principals))),
        Command::Acl { reference } => acl(&ctx, &reference, None),
        Command::Config {
            key,
            value,
            password_env,
            proxy,
        } => match key.as_deref() {
            Some(config::PROXY_PASSWORD) => {
                config::proxy_password(&ctx, value.as_deref(), password_env, proxy.as_deref())
            }
            _ if password_env.is_some() || proxy.is_some() => Err(CliError::usage(format!(
                "--password-env and --proxy go with `certkeeper config {}`",
                config::PROXY_PASSWORD
            ))),
            _ => config::run(&ctx, key.as_deref(), value.as_deref()),
        },
    }
}

fn init(ctx: &Context) -> Result<u8, CliError> {
    let (home, created) = Home::init(&ctx.home_dir)?;
    if ctx.json {
        output::json(&serde_json::json!({"home": home.dir(), "created": created}))?;
    } else if created {
        output::print_stdout(&format!("created home {}\n", home.dir().display()))?;
    } else {
        output::print_stdout(&format!(
            "home {} is ready (it already existed)\n",
            home.dir().display()
        ))?;
    }
    Ok(0)
}

/// `grant`, `revoke` (with a change) and `acl` (without): print the ACL after.
fn acl(ctx: &Context, reference: &str, change: Option<(bool, &[String])>) -> Result<u8, CliError> {
    let home = ctx.open()?;
    let entry = home.resolve(reference)?;
    let mut not_granted = Vec::new();
    let mut still_allowed = Vec::new();
    let acl = match change {
        Some((grant, principals)) => {
            let principals: Vec<Principal> = principals
                .iter()
                .map(|p| p.parse())
                .collect::<Result<_, _>>()?;
            if grant {
                home.grant(&entry, &principals)?
            } else {
                let before = home.acl(&entry.thumbprint)?;
                not_granted = principals
                    .iter()
                    .filter(|p| !before.contains(p))
                    .map(ToString::to_string)
                    .collect();
                let after = home.revoke(&entry, &principals)?;
                still_allowed = still_allowed_through(&principals, &after);
                after
            }
        }
        None => home.acl(&entry.thumbprint)?,
    };
    for p in &not_granted {
        eprintln!("certkeeper: {p} was not in the key's ACL: nothing to revoke");
    }
    for (p, through) in &still_allowed {
        eprintln!(
            "certkeeper: WARNING: {p} still may use the key of {}, through {through} \
             (revoke that too: certkeeper revoke {reference} {through})",
            entry.subject
        );
    }
    let list: Vec<String> = acl.iter().map(ToString::to_string).collect();
    if ctx.json {
        let still: Vec<serde_json::Value> = still_allowed
            .iter()
            .map(|(p, t)| serde_json::json!({"principal": p, "through": t}))
            .collect();
        output::json(&serde_json::json!({
            "thumbprint": entry.thumbprint,
            "acl": list,
            "not_granted": not_granted,
            "still_allowed": still,
        }))?;
    } else if list.is_empty() {
        output::print_stdout(&format!(
            "{}: only root and the home's owner may use the private key\n",
            entry.subject
        ))?;
    } else {
        output::print_stdout(&format!(
            "{}: root, the home's owner, and {}\n",
            entry.subject,
            list.join(", ")
        ))?;
    }
    Ok(0)
}

/// For each revoked user principal (`user:NAME`, `uid:N`), the remaining ACL entry
/// that still admits that user (`uid:1002` for `user:bob`, a group bob is in).
fn still_allowed_through(revoked: &[Principal], acl: &[Principal]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in revoked {
        let uid = match p {
            Principal::Uid(u) => Some(*u),
            Principal::User(name) => nix::unistd::User::from_name(name)
                .ok()
                .flatten()
                .map(|u| u.uid.as_raw()),
            Principal::Group(_) | Principal::Gid(_) => None,
        };
        let Some(uid) = uid else { continue };
        let caller = certkeeper_agent::peer::Caller::from_uid(uid);
        if let Some(through) = acl.iter().find(|a| caller.is(a)) {
            out.push((p.to_string(), through.to_string()));
        }
    }
    out
}

/// `--home`, else `CERTKEEPER_HOME`, else the default for this user.
fn home_dir(flag: Option<PathBuf>) -> PathBuf {
    if let Some(dir) = flag {
        return dir;
    }
    if let Some(dir) = std::env::var_os("CERTKEEPER_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/certkeeper");
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("certkeeper")
}
