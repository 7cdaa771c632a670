//! certkeeper-core: certificates, private keys and the formats they travel in.
//!
//! Architecture invariant: this crate does no I/O and reads no clock. It turns bytes
//! into types ([`Certificate`], [`PrivateKey`]) once, at the edge, and everything
//! else works on those types. Time, where needed, is a parameter.

pub mod ber;
pub mod cert;
pub mod encrypted;
pub mod error;
#[doc(hidden)]
pub mod fuzz;
pub mod key;
pub mod path;
pub mod pem;
pub mod pkcs12;
pub mod pkcs7;
pub mod read;

pub use cert::Certificate;
pub use error::{FormatError, ReadWarning};
pub use key::{KeyAlgorithm, PrivateKey};
pub use read::{Contents, Format, Password, read_file};
