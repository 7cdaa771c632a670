//! certkeeper-store: the home of one installation.
//!
//! A home is a directory (mode 0700) holding `certkeeper.db` (SQLite in WAL mode, so
//! the CLI and the agent can open it at once), `master.key` (32 random bytes, mode
//! 0600); the default export directory is beside it (`<home>-exports`). Certificates live in the database as DER;
//! private keys live there sealed with the master key (AES-256-GCM, the entry's
//! thumbprint as associated data), never in clear.

pub mod bindings;
pub mod entry;
pub mod error;
pub mod export;
pub mod fleet;
pub mod fs;
pub mod home;
pub mod import;
pub mod paths;
pub mod principal;
mod schema;
pub mod seal;
pub mod trust;

pub use bindings::Binding;
pub use entry::{Entry, EntryFacts, StoreName};
pub use error::{ExportDirProblem, StoreError};
pub use fleet::{Applied, FleetConfig, FleetEntry, FleetKey, FleetMember, FleetRole, FleetState};
pub use home::{Home, ListFilter, Setting};
pub use import::{BindingFollows, ImportOptions, ImportReport, Imported, Renamed, StoreChoice};
pub use paths::{PathCheck, check_candidates};
pub use principal::Principal;
