//! The fleet: an environment of many front-ends kept the same through etcd.
//!
//! The administrator's home is the source of truth. `fleet publish` writes it to etcd
//! as one signed generation ([`generation`]), with the private keys sealed to each
//! approved front-end ([`crypto`]), in one compare-and-swap transaction ([`admin`]).
//! Each front-end's agent watches the environment and applies new generations to its
//! own home in one transaction ([`node`]); the key layout on etcd is in [`etcd`].

pub mod admin;
pub mod crypto;
pub mod error;
pub mod etcd;
pub mod fuzz;
pub mod generation;
pub mod node;

pub use error::FleetError;
