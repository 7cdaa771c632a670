//! The one error type of the binary: a message and an exit code.
//!
//! Exit codes (DESIGN.md): 0 ok; 1 a check found problems; 2 usage or input error
//! (including a full disk); 3 not found or ambiguous; 4 permission denied (including a
//! read-only home, a non-exportable key); 5 agent not reachable.

use std::fmt;

use certkeeper_core::FormatError;
use certkeeper_store::StoreError;

/// Usage or input error.
pub const USAGE: u8 = 2;
/// Not found or ambiguous.
pub const NOT_FOUND: u8 = 3;
/// Permission denied.
pub const DENIED: u8 = 4;
/// Agent not reachable.
pub const NO_AGENT: u8 = 5;

/// A failed command.
#[derive(Debug)]
pub struct CliError {
    /// The exit code.
    pub code: u8,
    /// One line for stderr.
    pub message: String,
}

impl CliError {
    /// A usage or input error.
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            code: USAGE,
            message: message.into(),
        }
    }

    /// Prefixes the message with where it happened (`partner.pfx: wrong password`).
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        let code = match &e {
            StoreError::NotFound { .. } | StoreError::Ambiguous { .. } => NOT_FOUND,
            StoreError::ReadOnly { .. }
            | StoreError::NonExportable { .. }
            | StoreError::NotOwner { .. }
            | StoreError::Untrusted { .. } => DENIED,
            _ => USAGE,
        };
        let message = match &e {
            StoreError::Format(f) => format_message(f),
            StoreError::NotOwner { dir, owner, .. } => format!(
                "{e}; administer it as {owner} or root (sudo), or use the keys granted to this \
                 user through the agent: certkeeper keycheck|request|show|path REF \
                 --socket {}",
                crate::commands::agent_socket(dir).display()
            ),
            _ => e.to_string(),
        };
        CliError { code, message }
    }
}

impl From<certkeeper_agent::ClientError> for CliError {
    fn from(e: certkeeper_agent::ClientError) -> Self {
        use certkeeper_agent::ClientError as C;
        use certkeeper_agent::protocol::Code;
        let code = match &e {
            C::NotReachable { .. } => NO_AGENT,
            C::Untrusted { .. } => DENIED,
            C::Agent {
                code: Code::Denied, ..
            } => DENIED,
            C::Agent {
                code: Code::NotFound | Code::Ambiguous,
                ..
            } => NOT_FOUND,
            _ => USAGE,
        };
        let message = match &e {
            C::NotReachable { .. } => format!(
                "{e}; start it with: certkeeper agent (or: systemctl start certkeeper-agent)"
            ),
            _ => e.to_string(),
        };
        CliError { code, message }
    }
}

impl From<certkeeper_egress::EgressError> for CliError {
    fn from(e: certkeeper_egress::EgressError) -> Self {
        match e {
            certkeeper_egress::EgressError::Agent(agent) => agent.into(),
            other => CliError::usage(other.to_string()),
        }
    }
}

impl From<FormatError> for CliError {
    fn from(e: FormatError) -> Self {
        CliError::usage(format_message(&e))
    }
}

/// FormatError's text reads after a file name: "partner.pfx: is damaged: ...".
fn format_message(e: &FormatError) -> String {
    e.to_string()
}
