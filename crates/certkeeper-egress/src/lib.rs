//! certkeeper-egress: the calls the certificate exists for.
//!
//! - [`request`]: one mutual-TLS request (the `request` command), its client key used
//!   through the agent's socket.
//! - [`proxy`] and [`supervisor`]: the bindings' listeners, run inside the agent
//!   process: plain HTTP on loopback in, mutual TLS to the upstream out, with every
//!   failure turned into a 502 that says what failed ([`failure`]). Every
//!   application connection is served by one hand-written relay (`relay`, strict
//!   [`framing`]); requests go over HTTP/1.1 connections of its own or over the shared
//!   HTTP/2 connection (`h2`, hyper's client), as the upstream's [`pool`] says.
//! - [`app`]: the applications' side of a binding: loopback TCP or Unix-socket
//!   listeners, and the gate that admits only the uids the key's ACL allows.
//! - [`tls`]: the rustls client configuration both use, and the connection.
//! - [`tunnel`]: forward proxies (HTTP CONNECT) on the way, and `NO_PROXY`.
//! - [`workers`]: the single-threaded runtimes, one per CPU, that serve the relays'
//!   connections.

pub mod app;
mod buffer;
pub mod cert_request;
#[cfg(test)]
mod differential;
pub mod failure;
mod framing;
#[doc(hidden)]
pub mod fuzz;
mod h2;
pub mod pool;
pub mod probe;
pub mod proxy;
mod relay;
pub mod request;
pub mod supervisor;
pub mod tls;
pub mod tls_openssl;
pub mod tunnel;
pub mod workers;

/// What can go wrong before or during a call.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    /// A setting or argument does not work.
    #[error("{0}")]
    Config(String),
    /// The call failed; the message says how (see [`failure::explain`]).
    #[error("{0}")]
    Call(String),
    /// The forward proxy on the way failed or refused the tunnel.
    #[error(transparent)]
    Proxy(#[from] tunnel::TunnelError),
    /// The agent did not give us the client certificate (not reachable, denied, ...).
    #[error(transparent)]
    Agent(#[from] certkeeper_agent::ClientError),
}
