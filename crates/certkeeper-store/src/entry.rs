//! Entries: one certificate in one store, as the database holds it.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::error::StoreError;

/// The logical stores of a home.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreName {
    /// End-entity certificates with their private key.
    Personal,
    /// Trusted root CAs.
    Root,
    /// Intermediate CAs.
    Intermediate,
    /// End-entity certificates without a key.
    Other,
    /// Explicitly distrusted.
    Disallowed,
}

impl StoreName {
    /// Every store, in display order.
    pub const ALL: [StoreName; 5] = [
        StoreName::Personal,
        StoreName::Intermediate,
        StoreName::Root,
        StoreName::Other,
        StoreName::Disallowed,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreName::Personal => "personal",
            StoreName::Root => "root",
            StoreName::Intermediate => "intermediate",
            StoreName::Other => "other",
            StoreName::Disallowed => "disallowed",
        }
    }
}

impl fmt::Display for StoreName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StoreName {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StoreName::ALL
            .into_iter()
            .find(|n| n.as_str() == s)
            .ok_or_else(|| {
                StoreError::Invalid(format!(
                    "{s:?} is not a store: personal, root, intermediate, other or disallowed"
                ))
            })
    }
}

/// One entry. `der` is the certificate exactly as imported.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// SHA-256 thumbprint, lower-case hex.
    pub thumbprint: String,
    /// SHA-1 thumbprint, lower-case hex.
    pub sha1: String,
    /// Which store it is in.
    pub store: StoreName,
    /// Friendly name.
    pub name: Option<String>,
    /// Subject (RFC 4514).
    pub subject: String,
    /// Issuer (RFC 4514).
    pub issuer: String,
    /// Seconds since the epoch.
    pub not_before: i64,
    /// Seconds since the epoch.
    pub not_after: i64,
    /// Whether a private key is stored for it.
    pub has_key: bool,
    /// Basic constraints CA.
    pub is_ca: bool,
    /// Subject equals issuer.
    #[serde(skip)]
    pub self_signed: bool,
    /// The agreed export file name.
    pub export_name: Option<String>,
    /// Whether the key may leave the home in a .pfx.
    #[serde(skip)]
    pub exportable: bool,
    /// The key's algorithm (`rsa`, `ec-p256`, ...), when it has one.
    #[serde(skip)]
    pub key_algorithm: Option<String>,
    /// Canonical public key id.
    #[serde(skip)]
    pub key_id: String,
    /// Subject name DER.
    #[serde(skip)]
    pub subject_der: Vec<u8>,
    /// Issuer name DER.
    #[serde(skip)]
    pub issuer_der: Vec<u8>,
    /// The certificate.
    #[serde(skip)]
    pub der: Vec<u8>,
}

impl Entry {
    /// The columns [`Entry::from_row`] reads, in order, for `entries e LEFT JOIN keys k`.
    pub(crate) const COLUMNS: &'static str = "e.thumbprint, e.sha1, e.store, e.name, e.subject, e.issuer, \
         e.not_before, e.not_after, k.thumbprint IS NOT NULL, e.is_ca, e.self_signed, \
         e.export_name, COALESCE(k.exportable, 1), e.key_id, e.subject_der, e.issuer_der, e.der, k.algorithm";

    /// [`Entry::COLUMNS`] with empty blobs in place of the DER columns.
    pub(crate) const COLUMNS_WITHOUT_DER: &'static str = "e.thumbprint, e.sha1, e.store, e.name, e.subject, e.issuer, \
         e.not_before, e.not_after, k.thumbprint IS NOT NULL, e.is_ca, e.self_signed, \
         e.export_name, COALESCE(k.exportable, 1), e.key_id, X'', X'', X'', k.algorithm";

    pub(crate) fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        let store: String = row.get(2)?;
        Ok(Entry {
            thumbprint: row.get(0)?,
            sha1: row.get(1)?,
            // The CHECK constraint keeps the column to the five names.
            store: store.parse().unwrap_or(StoreName::Other),
            name: row.get(3)?,
            subject: row.get(4)?,
            issuer: row.get(5)?,
            not_before: row.get(6)?,
            not_after: row.get(7)?,
            has_key: row.get(8)?,
            is_ca: row.get(9)?,
            self_signed: row.get(10)?,
            export_name: row.get(11)?,
            exportable: row.get(12)?,
            key_id: row.get(13)?,
            subject_der: row.get(14)?,
            issuer_der: row.get(15)?,
            der: row.get(16)?,
            key_algorithm: row.get(17)?,
        })
    }

    /// An entry described by someone else (the agent, to a caller who cannot open the
    /// home): the certificate's own fields, with the home's facts about it given.
    pub fn from_certificate(cert: &certkeeper_core::Certificate, facts: EntryFacts) -> Self {
        Entry {
            thumbprint: cert.thumbprint.clone(),
            sha1: cert.sha1.clone(),
            store: facts.store,
            name: facts.name,
            subject: cert.subject.clone(),
            issuer: cert.issuer.clone(),
            not_before: cert.not_before,
            not_after: cert.not_after,
            has_key: facts.has_key,
            is_ca: cert.is_ca,
            self_signed: cert.self_signed,
            export_name: facts.export_name,
            exportable: facts.exportable,
            key_algorithm: facts.key_algorithm,
            key_id: cert.key_id.clone(),
            subject_der: cert.subject_der.clone(),
            issuer_der: cert.issuer_der.clone(),
            der: cert.der.clone(),
        }
    }

    /// A one-line description for lists of candidates.
    pub fn describe(&self) -> String {
        format!(
            "{} {} ({}{})",
            &self.thumbprint[..16],
            self.subject,
            self.store,
            self.name
                .as_deref()
                .map(|n| format!(", name {n:?}"))
                .unwrap_or_default()
        )
    }
}

/// What the home knows of an entry beyond its certificate.
#[derive(Debug, Clone)]
pub struct EntryFacts {
    /// Its store.
    pub store: StoreName,
    /// Friendly name.
    pub name: Option<String>,
    /// Export name.
    pub export_name: Option<String>,
    /// Whether its key is stored.
    pub has_key: bool,
    /// Whether the key may leave the home.
    pub exportable: bool,
    /// The key's algorithm.
    pub key_algorithm: Option<String>,
}
