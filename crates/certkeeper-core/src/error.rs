//! Why a file could not be read. The CLI adds the file name; these say the problem.

use crate::ber::BerError;

/// The problems a certificate or key file can have.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The structure is sound but the password does not open it.
    #[error("wrong password")]
    WrongPassword,
    /// Encrypted content and no password was given.
    #[error(
        "{what} is encrypted: give its password with --password-env, --password-file or --password-stdin"
    )]
    PasswordRequired {
        /// What is encrypted ("the PKCS#12 file", "the private key").
        what: &'static str,
    },
    /// The bytes are of a known kind but broken.
    #[error("is damaged: {what}: {detail}")]
    Damaged {
        /// Which structure ("PKCS#12", "certificate", "PEM block 2 (CERTIFICATE)").
        what: String,
        /// What was found wrong.
        detail: String,
    },
    /// Not PEM, DER, PKCS#7 or PKCS#12.
    #[error("is not a certificate or key file (not PEM, DER, PKCS#7 or PKCS#12)")]
    UnknownFormat,
    /// Understood, but certkeeper does not handle it.
    #[error("uses {what}, which certkeeper does not support")]
    Unsupported {
        /// The unsupported thing.
        what: String,
    },
    /// A valid file that carries nothing to import.
    #[error("holds no certificates or keys ({detail})")]
    Empty {
        /// What it holds instead.
        detail: String,
    },
}

impl FormatError {
    /// Shorthand for [`FormatError::Damaged`].
    pub fn damaged(what: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        FormatError::Damaged {
            what: what.into(),
            detail: detail.to_string(),
        }
    }

    /// A BER error as damage of `what`.
    pub fn ber(what: impl Into<String>, err: &BerError) -> Self {
        Self::damaged(what, err)
    }
}

/// Something a file carried that certkeeper read past: worth telling the user, not a
/// reason to refuse the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadWarning {
    /// Bytes after a complete PKCS#12 structure whose integrity check (MAC) verified,
    /// as some Windows exports carry (an end-of-contents pair, zero padding).
    #[error(
        "{count} byte{} after the end of the PKCS#12 data ignored ({}); the integrity check covers everything before them",
        if *count == 1 { "" } else { "s" },
        if *zeros { "zero padding" } else { "not zeros" }
    )]
    TrailingBytes {
        /// How many bytes were ignored.
        count: usize,
        /// Whether they were all zero.
        zeros: bool,
    },
}
