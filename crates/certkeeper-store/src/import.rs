//! Import: one file's certificates and keys into the home, as one transaction.
//!
//! Placement follows the MMC wizard's "automatically select the store based on the
//! type of certificate": a certificate with its key goes to `personal`, a self-signed
//! CA to `root`, another CA to `intermediate`, any other to `other`.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use certkeeper_core::{Certificate, Contents, Format, PrivateKey};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::entry::StoreName;
use crate::error::StoreError;
use crate::home::Home;

/// Where imported certificates go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreChoice {
    /// By type (see the module doc).
    Auto,
    /// All into this store; for `personal`, those without a key are placed by type.
    Store(StoreName),
}

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Where certificates go.
    pub store: StoreChoice,
    /// Friendly name for the certificate with the key (or the only certificate).
    pub name: Option<String>,
    /// Do not add root CAs (they are reported as skipped).
    pub no_roots: bool,
    /// Mark imported keys so that they never leave the home in a .pfx.
    pub non_exportable: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            store: StoreChoice::Auto,
            name: None,
            no_roots: false,
            non_exportable: false,
        }
    }
}

/// One certificate that the import wrote or found already present.
#[derive(Debug, Clone, Serialize)]
pub struct Imported {
    /// SHA-256 thumbprint.
    pub thumbprint: String,
    /// Its store after the import.
    pub store: StoreName,
    /// Whether it has a private key after the import.
    pub has_key: bool,
    /// Whether the entry is new (false: it was already there).
    pub new: bool,
    /// Its subject.
    pub subject: String,
    /// Whether this import added its private key.
    pub key_added: bool,
}

/// A certificate the import left out on purpose.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// SHA-256 thumbprint.
    pub thumbprint: String,
    /// Its subject.
    pub subject: String,
    /// Why.
    pub reason: String,
}

/// What one file's import did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// The format the file was read as.
    #[serde(skip)]
    pub format: Option<Format>,
    /// Entries written or confirmed.
    pub imported: Vec<Imported>,
    /// Certificates left out (`--no-roots`).
    pub skipped: Vec<Skipped>,
}

/// Where a certificate goes by its type.
pub fn auto_store(cert: &Certificate, has_key: bool) -> StoreName {
    if has_key {
        StoreName::Personal
    } else if cert.is_ca && cert.self_signed {
        StoreName::Root
    } else if cert.is_ca {
        StoreName::Intermediate
    } else {
        StoreName::Other
    }
}

impl Home {
    /// Imports everything in `contents` in one transaction: on any error nothing of
    /// it is written.
    pub fn import(
        &mut self,
        contents: Contents,
        options: &ImportOptions,
    ) -> Result<ImportReport, StoreError> {
        let format = contents.format;
        // The file's certificates, each once, first friendly name kept.
        let mut certs: Vec<(Certificate, Option<String>)> = Vec::new();
        for found in contents.certs {
            if let Some(existing) = certs
                .iter_mut()
                .find(|(c, _)| c.thumbprint == found.cert.thumbprint)
            {
                if existing.1.is_none() {
                    existing.1 = found.friendly_name;
                }
            } else {
                certs.push((found.cert, found.friendly_name));
            }
        }

        // Each key by its public key id; each must match a certificate here or at home.
        let mut keys: HashMap<String, PrivateKey> = HashMap::new();
        let mut home_key_targets: Vec<(String, String)> = Vec::new(); // (thumbprint, key_id)
        for found in contents.keys {
            let key_id = found.key.key_id()?;
            if !certs.iter().any(|(c, _)| c.key_id == key_id) {
                let at_home = self.by_key_id(&key_id)?;
                if at_home.is_empty() {
                    return Err(StoreError::KeyWithoutCertificate);
                }
                home_key_targets
                    .extend(at_home.into_iter().map(|e| (e.thumbprint, key_id.clone())));
            }
            keys.insert(key_id, found.key);
        }

        let named: Vec<String> = match &options.name {
            None => Vec::new(),
            Some(_) => {
                let with_key: Vec<String> = certs
                    .iter()
                    .filter(|(c, _)| keys.contains_key(&c.key_id))
                    .map(|(c, _)| c.thumbprint.clone())
                    .collect();
                if !with_key.is_empty() {
                    with_key
                } else if certs.len() == 1 {
                    vec![certs[0].0.thumbprint.clone()]
                } else if certs.is_empty() {
                    home_key_targets.iter().map(|(t, _)| t.clone()).collect()
                } else {
                    return Err(StoreError::NameAmbiguous { certs: certs.len() });
                }
            }
        };

        let master = if keys.is_empty() {
            None
        } else {
            Some(self.master_key()?)
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let db_path = self.db_path();
        let db = |e| StoreError::db(&db_path, e);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db)?;
        let mut report = ImportReport {
            format: Some(format),
            imported: Vec::new(),
            skipped: Vec::new(),
        };

        let seal_key = |tx: &rusqlite::Transaction<'_>,
                        thumbprint: &str,
                        key: &PrivateKey|
         -> Result<(), StoreError> {
            // `master` is Some whenever `keys` is non-empty, and keys come from it.
            let master = master.as_ref().expect("master key loaded for keys");
            let sealed = master.seal(thumbprint, key.pkcs8_der())?;
            tx.execute(
                "INSERT INTO keys(thumbprint, algorithm, sealed, exportable) VALUES (?1, ?2, ?3, ?4)",
                params![thumbprint, key.algorithm().name(), sealed, !options.non_exportable],
            )
            .map_err(|e| StoreError::db(&db_path, e))?;
            Ok(())
        };

        for (cert, friendly_name) in &certs {
            let key = keys.get(&cert.key_id);
            let existing: Option<(String, Option<String>, bool)> = tx
                .query_row(
                    "SELECT e.store, e.name, k.thumbprint IS NOT NULL FROM entries e
                     LEFT JOIN keys k ON k.thumbprint = e.thumbprint WHERE e.thumbprint = ?1",
                    [&cert.thumbprint],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(|e| StoreError::db(&db_path, e))?;
            let had_key = existing.as_ref().is_some_and(|e| e.2);
            let has_key = had_key || key.is_some();
            let target = match options.store {
                StoreChoice::Auto => auto_store(cert, has_key),
                StoreChoice::Store(StoreName::Personal) if !has_key => auto_store(cert, false),
                StoreChoice::Store(s) => s,
            };
            let name = if named.contains(&cert.thumbprint) {
                options.name.clone()
            } else {
                friendly_name.clone()
            };
            let store_after = match &existing {
                None => {
                    if options.no_roots && target == StoreName::Root {
                        report.skipped.push(Skipped {
                            thumbprint: cert.thumbprint.clone(),
                            subject: cert.subject.clone(),
                            reason: "root CA not added (--no-roots)".into(),
                        });
                        continue;
                    }
                    tx.execute(
                        "INSERT INTO entries(thumbprint, sha1, store, name, subject, issuer, subject_der,
                            issuer_der, not_before, not_after, is_ca, self_signed, key_id, der, imported_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                        params![
                            cert.thumbprint,
                            cert.sha1,
                            target.as_str(),
                            name,
                            cert.subject,
                            cert.issuer,
                            cert.subject_der,
                            cert.issuer_der,
                            cert.not_before,
                            cert.not_after,
                            cert.is_ca,
                            cert.self_signed,
                            cert.key_id,
                            cert.der,
                            now
                        ],
                    )
                    .map_err(|e| StoreError::db(&db_path, e))?;
                    crate::schema::insert_names(&tx, &cert.thumbprint, cert)
                        .map_err(|e| StoreError::db(&db_path, e))?;
                    target
                }
                Some((store, old_name, _)) => {
                    let current: StoreName = store.parse()?;
                    // Keep where the administrator put it, unless told otherwise or
                    // unless the key now arrives for a certificate in `other`.
                    let store_after = match options.store {
                        StoreChoice::Store(_)
                            if !(options.no_roots && target == StoreName::Root) =>
                        {
                            target
                        }
                        // A key arriving makes it a certificate with its key.
                        StoreChoice::Auto
                            if key.is_some() && !had_key && current != StoreName::Disallowed =>
                        {
                            StoreName::Personal
                        }
                        _ => current,
                    };
                    let new_name = if named.contains(&cert.thumbprint) {
                        options.name.clone()
                    } else {
                        old_name.clone().or(name)
                    };
                    tx.execute(
                        "UPDATE entries SET store = ?1, name = ?2 WHERE thumbprint = ?3",
                        params![store_after.as_str(), new_name, cert.thumbprint],
                    )
                    .map_err(|e| StoreError::db(&db_path, e))?;
                    store_after
                }
            };
            let key_added = match key {
                Some(key) if !had_key => {
                    seal_key(&tx, &cert.thumbprint, key)?;
                    true
                }
                _ => false,
            };
            if had_key && options.non_exportable {
                tx.execute(
                    "UPDATE keys SET exportable = 0 WHERE thumbprint = ?1",
                    [&cert.thumbprint],
                )
                .map_err(|e| StoreError::db(&db_path, e))?;
            }
            report.imported.push(Imported {
                thumbprint: cert.thumbprint.clone(),
                store: store_after,
                has_key,
                new: existing.is_none(),
                subject: cert.subject.clone(),
                key_added,
            });
        }

        // Keys whose certificates were imported before.
        for (thumbprint, key_id) in &home_key_targets {
            let (store, subject, had_key): (String, String, bool) = tx
                .query_row(
                    "SELECT e.store, e.subject, k.thumbprint IS NOT NULL FROM entries e
                     LEFT JOIN keys k ON k.thumbprint = e.thumbprint WHERE e.thumbprint = ?1",
                    [thumbprint],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .map_err(|e| StoreError::db(&db_path, e))?;
            let mut store: StoreName = store.parse()?;
            if !had_key {
                seal_key(&tx, thumbprint, &keys[key_id])?;
                if options.store == StoreChoice::Auto && store != StoreName::Disallowed {
                    store = StoreName::Personal;
                }
            }
            let name = if named.contains(thumbprint) {
                options.name.clone()
            } else {
                None
            };
            tx.execute(
                "UPDATE entries SET store = ?1, name = COALESCE(?2, name) WHERE thumbprint = ?3",
                params![store.as_str(), name, thumbprint],
            )
            .map_err(|e| StoreError::db(&db_path, e))?;
            report.imported.push(Imported {
                thumbprint: thumbprint.clone(),
                store,
                has_key: true,
                new: false,
                subject,
                key_added: !had_key,
            });
        }

        tx.commit().map_err(|e| StoreError::db(&db_path, e))?;
        Ok(report)
    }
}
