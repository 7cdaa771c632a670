//! What can go wrong in the fleet, each with the words an administrator acts on.

use certkeeper_store::StoreError;

/// A fleet error.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The home said no.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// etcd could not be reached or refused the request.
    #[error("etcd at {endpoints}: {reason}")]
    Etcd {
        /// The endpoints tried.
        endpoints: String,
        /// What etcd or the connection said.
        reason: String,
    },
    /// A name, URL or option is not usable.
    #[error("{0}")]
    Invalid(String),
    /// This home is not in an environment, or not on the side the command needs.
    #[error("{0}")]
    NotInFleet(String),
    /// etcd holds something this environment did not write (another environment's
    /// data, another administrator's key).
    #[error("{0}")]
    Foreign(String),
    /// A generation or bundle that is not the administrator's, or was altered.
    #[error("{0}")]
    Tampered(String),
    /// Another publish landed between reading and writing.
    #[error("{0}")]
    Conflict(String),
    /// The node is unknown or not approved, or the fingerprint is wrong.
    #[error("{0}")]
    NotApproved(String),
    /// More than etcd takes in one request.
    #[error("{0}")]
    TooLarge(String),
    /// Key material could not be made or used.
    #[error("{0}")]
    Crypto(String),
}
