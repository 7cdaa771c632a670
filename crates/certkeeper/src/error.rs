//! The one error type of the binary: a class (`kind`), a message, the fix when there
//! is one, and an exit code.
//!
//! Exit codes (DESIGN.md): 0 ok; 1 a check found problems; 2 usage or input error
//! (including a full disk); 3 not found or ambiguous; 4 permission denied (including a
//! read-only home, a non-exportable key); 5 agent not reachable; 6 etcd not reachable
//! (the fleet).

use std::fmt;

use certkeeper_core::FormatError;
use certkeeper_store::StoreError;
use serde::Serialize;

/// Usage or input error.
pub const USAGE: u8 = 2;
/// Not found or ambiguous.
pub const NOT_FOUND: u8 = 3;
/// Permission denied.
pub const DENIED: u8 = 4;
/// Agent not reachable.
pub const NO_AGENT: u8 = 5;
/// etcd not reachable.
pub const NO_ETCD: u8 = 6;

/// The stable class of an error: `error.kind` in `--json` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The command line is wrong (unknown flag, missing or conflicting options).
    Usage,
    /// A file or value given is wrong (damaged file, wrong password, bad URL).
    Input,
    /// The machine stands in the way (full disk, unreadable file, no runtime).
    Environment,
    /// No certificate, binding or setting matches.
    NotFound,
    /// Several certificates match.
    Ambiguous,
    /// Not allowed (key ACL, read-only home, non-exportable key).
    Denied,
    /// The agent does not answer on its socket.
    AgentUnreachable,
    /// The call to the upstream failed (connection, TLS, timeout).
    Upstream,
    /// etcd does not answer (the fleet).
    EtcdUnreachable,
    /// Another publish landed first, or a name is taken on etcd.
    Conflict,
}

impl Kind {
    /// The exit code of this class (DESIGN.md's table).
    pub fn code(self) -> u8 {
        match self {
            Kind::Usage | Kind::Input | Kind::Environment | Kind::Upstream | Kind::Conflict => {
                USAGE
            }
            Kind::NotFound | Kind::Ambiguous => NOT_FOUND,
            Kind::Denied => DENIED,
            Kind::AgentUnreachable => NO_AGENT,
            Kind::EtcdUnreachable => NO_ETCD,
        }
    }
}

/// A failed command.
#[derive(Debug)]
pub struct CliError {
    /// The exit code.
    pub code: u8,
    /// The class.
    pub kind: Kind,
    /// What went wrong, one line.
    pub message: String,
    /// The command or action that fixes it.
    pub fix: Option<String>,
}

impl CliError {
    /// An error of this class (its exit code follows from it).
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        CliError {
            code: kind.code(),
            kind,
            message: message.into(),
            fix: None,
        }
    }

    /// A usage error: the command line is wrong.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Kind::Usage, message)
    }

    /// An input error: a file or value given is wrong.
    pub fn input(message: impl Into<String>) -> Self {
        Self::new(Kind::Input, message)
    }

    /// Adds the command or action that fixes it.
    pub fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    /// Prefixes the message with where it happened (`partner.pfx: wrong password`).
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }

    /// The `{"kind", "message", "fix"}` object of `--json` output.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({"kind": self.kind, "message": self.message, "fix": self.fix})
    }
}

/// The line for stderr: the message, then the fix.
impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(fix) = &self.fix {
            write!(f, "; {fix}")?;
        }
        Ok(())
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        let kind = match &e {
            StoreError::NotFound { .. } => Kind::NotFound,
            StoreError::Ambiguous { .. } => Kind::Ambiguous,
            StoreError::ReadOnly { .. }
            | StoreError::NonExportable { .. }
            | StoreError::NotOwner { .. }
            | StoreError::ExportDir { .. }
            | StoreError::Untrusted { .. } => Kind::Denied,
            StoreError::NotInitialized { .. }
            | StoreError::DiskFull { .. }
            | StoreError::Io { .. }
            | StoreError::Database { .. }
            | StoreError::SchemaTooNew { .. }
            | StoreError::MasterKey { .. }
            | StoreError::Unseal { .. } => Kind::Environment,
            StoreError::Format(f) => return format_error(f),
            _ => Kind::Input,
        };
        let error = CliError::new(kind, e.to_string());
        match &e {
            StoreError::NotInitialized { dir } => CliError {
                message: format!("no certkeeper home at {}", dir.display()),
                ..error
            }
            .with_fix(format!(
                "create it with: certkeeper init --home {}",
                dir.display()
            )),
            StoreError::NotFound { reference, .. } if !reference.starts_with("binding ") => {
                error.with_fix("certkeeper list shows every certificate and its names")
            }
            StoreError::NotFound { .. } => {
                error.with_fix("certkeeper bindings shows every binding")
            }
            StoreError::Ambiguous { .. } => error.with_fix(
                "name it by thumbprint (at least 8 hex digits; certkeeper list shows them)",
            ),
            StoreError::NotOwner { dir, owner, .. } => error.with_fix(format!(
                "administer it as {} (sudo), or use the keys granted to this \
                 user through the agent: certkeeper keycheck|request|show|path REF \
                 --socket {}",
                if owner.starts_with("root ") {
                    "root".to_string()
                } else {
                    format!("{owner} or root")
                },
                crate::commands::agent_socket(dir).display()
            )),
            StoreError::BadReference { .. } => {
                error.with_fix("certkeeper list shows every certificate and its thumbprint")
            }
            _ => error,
        }
    }
}

impl From<certkeeper_fleet::FleetError> for CliError {
    fn from(e: certkeeper_fleet::FleetError) -> Self {
        use certkeeper_fleet::FleetError as F;
        let kind = match &e {
            F::Store(_) => {
                let F::Store(store) = e else { unreachable!() };
                return store.into();
            }
            F::Etcd { .. } => Kind::EtcdUnreachable,
            F::Conflict(_) => Kind::Conflict,
            F::NotApproved(_) => Kind::Denied,
            F::NotInFleet(_) => Kind::NotFound,
            F::Invalid(_) | F::Foreign(_) | F::Tampered(_) | F::TooLarge(_) | F::Crypto(_) => {
                Kind::Input
            }
        };
        CliError::new(kind, e.to_string())
    }
}

impl From<certkeeper_agent::ClientError> for CliError {
    fn from(e: certkeeper_agent::ClientError) -> Self {
        use certkeeper_agent::ClientError as C;
        use certkeeper_agent::protocol::Code;
        let kind = match &e {
            C::NotReachable { .. } => Kind::AgentUnreachable,
            C::Untrusted { .. } => Kind::Denied,
            C::Agent {
                code: Code::Denied, ..
            } => Kind::Denied,
            C::Agent {
                code: Code::NotFound,
                ..
            } => Kind::NotFound,
            C::Agent {
                code: Code::Ambiguous,
                ..
            } => Kind::Ambiguous,
            _ => Kind::Input,
        };
        let error = CliError::new(kind, e.to_string());
        match &e {
            C::NotReachable { .. } => error
                .with_fix("start it with: certkeeper agent (or: systemctl start certkeeper-agent)"),
            // The agent's denial carries its fix in parentheses.
            C::Agent { message, .. } => match message
                .strip_suffix(')')
                .and_then(|m| m.split_once(" (grant it with: "))
            {
                Some((problem, fix)) => CliError {
                    message: problem.to_string(),
                    ..error
                }
                .with_fix(format!("the home's owner grants it with: {fix}")),
                None => error,
            },
            C::Protocol(_) => error,
            C::Untrusted { .. } => error.with_fix(
                "give the agent's own socket (--socket or CERTKEEPER_SOCKET; by default \
                 /run/certkeeper/agent.sock)",
            ),
        }
    }
}

impl From<certkeeper_egress::EgressError> for CliError {
    fn from(e: certkeeper_egress::EgressError) -> Self {
        use certkeeper_egress::EgressError as E;
        match e {
            E::Agent(agent) => agent.into(),
            E::Call(message) => CliError::new(Kind::Upstream, message),
            E::Config(message) => CliError::input(message),
            E::Proxy(e @ certkeeper_egress::tunnel::TunnelError::BadUrl { .. }) => {
                CliError::input(e.to_string())
            }
            E::Proxy(e) => CliError::new(Kind::Upstream, e.to_string()),
        }
    }
}

impl From<FormatError> for CliError {
    fn from(e: FormatError) -> Self {
        format_error(&e)
    }
}

/// FormatError's text reads after a file name: "partner.pfx: is damaged: ...".
fn format_error(e: &FormatError) -> CliError {
    match e {
        FormatError::PasswordRequired { what } => CliError::input(format!("{what} is encrypted"))
            .with_fix("give its password with --password-env, --password-file or --password-stdin"),
        _ => CliError::input(e.to_string()),
    }
}
