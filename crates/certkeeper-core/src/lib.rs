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

/// Whether a character reorders what a terminal shows (bidirectional overrides,
/// isolates and marks): text from files, partners or etcd is shown with these escaped,
/// as with control characters.
pub fn reorders_text(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}
