//! certkeeper-agent: the key isolation service.
//!
//! Architecture invariant: this is the only process that decrypts private keys. Every
//! other process — the CLI run by other users, the egress proxy, applications —
//! reaches keys through [`client::AgentClient`] over a Unix socket, and the agent
//! decides each request from the caller's kernel-reported credentials (SO_PEERCRED)
//! and the key's ACL.
//!
//! API boundary: the wire protocol ([`protocol`], documented in
//! `docs/agent-protocol.md`); changing it bumps [`protocol::VERSION`].

pub mod audit;
pub mod client;
#[doc(hidden)]
pub mod fuzz;
pub mod handoff;
pub mod limits;
pub mod peer;
pub mod protocol;
pub mod server;
pub mod signer;
pub mod sockdiag;

pub use client::{AgentClient, ClientError};
pub use signer::AgentSigningKey;
