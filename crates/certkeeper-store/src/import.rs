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
    /// The friendly name this import changed, and the bindings that follow it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renamed: Option<Renamed>,
}

/// A friendly name changed by a re-import with another `--name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Renamed {
    /// The name before.
    pub from: String,
    /// The name after.
    pub to: String,
    /// The bindings that named the entry by its old name and now name it anew, in the
    /// same transaction, so that they keep presenting this certificate.
    pub bindings: Vec<BindingFollows>,
}

/// A binding whose REF was rewritten because the entry it named was renamed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BindingFollows {
    /// The binding.
    pub binding: String,
    /// Which of its REFs: `cert` (its client certificate) or `server_ca`.
    pub field: &'static str,
    /// The REF before (the old name).
    pub from: String,
    /// The REF now: the new name, or the thumbprint when the new name would resolve
    /// to another entry.
    pub to: String,
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
        // Unchecked: the REF resolution below reads through `self` inside it.
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )
        .map_err(db)?;
        // A --name may rename entries: what each binding's REFs resolve to now.
        let bindings_before = match &options.name {
            Some(name) => {
                self.refuse_export_name_clash(name, &named)?;
                self.binding_targets(now)?
            }
            None => Vec::new(),
        };
        let mut renames: HashMap<String, (String, String)> = HashMap::new();
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
                    if let (Some(from), Some(to)) = (old_name, &new_name)
                        && from != to
                    {
                        renames.insert(cert.thumbprint.clone(), (from.clone(), to.clone()));
                    }
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
                renamed: None,
            });
        }

        // Keys whose certificates were imported before.
        for (thumbprint, key_id) in &home_key_targets {
            let (store, subject, had_key, old_name): (String, String, bool, Option<String>) = tx
                .query_row(
                    "SELECT e.store, e.subject, k.thumbprint IS NOT NULL, e.name FROM entries e
                     LEFT JOIN keys k ON k.thumbprint = e.thumbprint WHERE e.thumbprint = ?1",
                    [thumbprint],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
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
            if let (Some(from), Some(to)) = (old_name, &name)
                && &from != to
            {
                renames.insert(thumbprint.clone(), (from, to.clone()));
            }
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
                renamed: None,
            });
        }

        // Bindings that named a renamed entry by its old name follow it.
        let follows = self.follow_renames(&bindings_before, &renames, now)?;
        for item in &mut report.imported {
            if let Some((from, to)) = renames.remove(&item.thumbprint) {
                item.renamed = Some(Renamed {
                    from,
                    to,
                    bindings: follows
                        .iter()
                        .filter(|(t, _)| *t == item.thumbprint)
                        .map(|(_, f)| f.clone())
                        .collect(),
                });
            }
        }

        tx.commit().map_err(|e| StoreError::db(&db_path, e))?;
        Ok(report)
    }
}

/// A binding and the entries its REFs resolve to (None: they do not resolve).
type BindingTargets = Vec<(crate::Binding, Option<String>, Option<String>)>;

impl Home {
    /// Refuses a friendly name that another entry (not being named) has as its export
    /// name: a REF of that name would then match two entries.
    fn refuse_export_name_clash(&self, name: &str, named: &[String]) -> Result<(), StoreError> {
        let holders: Vec<String> = self.query_column(
            "SELECT thumbprint FROM entries WHERE export_name = ?1",
            name,
        )?;
        match holders.into_iter().find(|t| !named.contains(t)) {
            Some(thumbprint) => Err(StoreError::NameClash {
                name: name.into(),
                what: "export name",
                thumbprint,
            }),
            None => Ok(()),
        }
    }

    fn query_column(&self, sql: &str, arg: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.db_err(e))?;
        let rows = stmt
            .query_map([arg], |r| r.get(0))
            .map_err(|e| self.db_err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.db_err(e))
    }

    /// Each binding with the thumbprints its certificate REF (as a binding resolves
    /// it) and its server CA REF resolve to at `at`.
    fn binding_targets(&self, at: i64) -> Result<BindingTargets, StoreError> {
        Ok(self
            .bindings()?
            .into_iter()
            .map(|b| {
                let cert = self.resolve_current(&b.cert, at).ok().map(|e| e.thumbprint);
                let ca = self.server_ca_target(&b.server_ca);
                (b, cert, ca)
            })
            .collect())
    }

    fn server_ca_target(&self, server_ca: &str) -> Option<String> {
        if matches!(server_ca, "root" | "system") {
            return None;
        }
        self.resolve(server_ca).ok().map(|e| e.thumbprint)
    }

    /// Rewrites the REFs of bindings that resolved to a renamed entry before and no
    /// longer do: to the new name when it resolves to the entry, else to the entry's
    /// thumbprint. Returns (entry thumbprint, what changed) for each.
    fn follow_renames(
        &self,
        before: &BindingTargets,
        renames: &HashMap<String, (String, String)>,
        at: i64,
    ) -> Result<Vec<(String, BindingFollows)>, StoreError> {
        let mut out = Vec::new();
        if renames.is_empty() {
            return Ok(out);
        }
        for (binding, cert_before, ca_before) in before {
            let fields = [
                ("cert", &binding.cert, cert_before),
                ("server_ca", &binding.server_ca, ca_before),
            ];
            for (field, reference, was) in fields {
                let Some(thumbprint) = was.as_ref().filter(|t| renames.contains_key(*t)) else {
                    continue;
                };
                let resolves_to = |r: &str| match field {
                    "cert" => self.resolve_current(r, at).ok().map(|e| e.thumbprint),
                    _ => self.server_ca_target(r),
                };
                if resolves_to(reference).as_ref() == Some(thumbprint) {
                    continue;
                }
                let new_name = &renames[thumbprint].1;
                let to = if resolves_to(new_name).as_ref() == Some(thumbprint) {
                    new_name.clone()
                } else {
                    thumbprint.clone()
                };
                let sql = match field {
                    "cert" => "UPDATE bindings SET cert_ref = ?1 WHERE name = ?2",
                    _ => "UPDATE bindings SET server_ca = ?1 WHERE name = ?2",
                };
                self.conn
                    .execute(sql, params![to, binding.name])
                    .map_err(|e| self.db_err(e))?;
                out.push((
                    thumbprint.clone(),
                    BindingFollows {
                        binding: binding.name.clone(),
                        field,
                        from: reference.clone(),
                        to,
                    },
                ));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use certkeeper_testkit::{Spec, TestCert};

    use crate::{Binding, BindingFollows, Home, ImportOptions, Renamed, StoreError};

    fn import(home: &mut Home, cert: &TestCert, name: &str) -> crate::Imported {
        let pem = format!("{}{}", cert.pem(), cert.key_pem());
        let contents = certkeeper_core::read_file(pem.as_bytes(), None).unwrap();
        let options = ImportOptions {
            name: Some(name.into()),
            ..ImportOptions::default()
        };
        home.import(contents, &options).unwrap().imported.remove(0)
    }

    fn bind(home: &Home, name: &str, cert: &str) {
        home.bind(&Binding {
            name: name.into(),
            cert: cert.into(),
            upstream: "https://partner.example".into(),
            listen: None,
            server_ca: "root".into(),
            allow: Vec::new(),
            proxy: None,
            legacy_tls: false,
        })
        .unwrap();
    }

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    #[test]
    fn a_rename_moves_the_bindings_that_used_the_old_name_in_the_same_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let (mut home, _) = Home::init(&dir.path().join("home")).unwrap();
        let ca = TestCert::self_signed(&Spec::ca("CA"));
        let leaf = ca.issue(&Spec::client("partner.example"));
        let first = import(&mut home, &leaf, "partner");
        assert_eq!(first.renamed, None);
        bind(&home, "partner-api", "partner");
        bind(&home, "pinned", &first.thumbprint);

        let again = import(&mut home, &leaf, "partner-2026");
        assert!(!again.new);
        assert_eq!(
            again.renamed,
            Some(Renamed {
                from: "partner".into(),
                to: "partner-2026".into(),
                bindings: vec![BindingFollows {
                    binding: "partner-api".into(),
                    field: "cert",
                    from: "partner".into(),
                    to: "partner-2026".into(),
                }],
            })
        );
        assert_eq!(home.binding("partner-api").unwrap().cert, "partner-2026");
        // A binding naming it by thumbprint did not depend on the name.
        assert_eq!(home.binding("pinned").unwrap().cert, first.thumbprint);
        assert_eq!(
            home.resolve_current("partner-2026", now())
                .unwrap()
                .thumbprint,
            first.thumbprint
        );
        // The same name again is no rename.
        assert_eq!(import(&mut home, &leaf, "partner-2026").renamed, None);
    }

    #[test]
    fn in_a_renewal_chain_the_binding_keeps_the_certificate_it_presents() {
        let dir = tempfile::tempdir().unwrap();
        let (mut home, _) = Home::init(&dir.path().join("home")).unwrap();
        let ca = TestCert::self_signed(&Spec::ca("CA"));
        let old = ca.issue(&Spec::client("partner.example").days(-10, 100));
        let renewal = ca.issue(&Spec::client("partner.example").days(-1, 465));
        let old_t = import(&mut home, &old, "partner").thumbprint;
        let new_t = import(&mut home, &renewal, "partner").thumbprint;
        bind(&home, "partner-api", "partner");
        assert_eq!(
            home.resolve_current("partner", now()).unwrap().thumbprint,
            new_t
        );

        // Renaming the old one: the binding presented the renewal and still does.
        let renamed = import(&mut home, &old, "partner-2025").renamed.unwrap();
        assert!(renamed.bindings.is_empty(), "{renamed:?}");
        assert_eq!(home.binding("partner-api").unwrap().cert, "partner");
        assert_eq!(
            home.resolve_current("partner", now()).unwrap().thumbprint,
            new_t
        );

        // Back, then renaming the renewal: "partner" alone would now name the old
        // certificate; the binding follows the renewal to its new name.
        import(&mut home, &old, "partner");
        let renamed = import(&mut home, &renewal, "partner-2026").renamed.unwrap();
        assert_eq!(renamed.bindings.len(), 1, "{renamed:?}");
        assert_eq!(home.binding("partner-api").unwrap().cert, "partner-2026");
        assert_eq!(
            home.resolve_current("partner-2026", now())
                .unwrap()
                .thumbprint,
            new_t
        );
        assert_ne!(old_t, new_t);
    }

    #[test]
    fn a_name_that_is_another_entrys_export_name_is_refused_and_nothing_changes() {
        let dir = tempfile::tempdir().unwrap();
        let (mut home, _) = Home::init(&dir.path().join("home")).unwrap();
        let ca = TestCert::self_signed(&Spec::ca("CA"));
        let a = ca.issue(&Spec::client("a.example"));
        let b = ca.issue(&Spec::client("b.example"));
        let a_t = import(&mut home, &a, "a").thumbprint;
        import(&mut home, &b, "b");
        bind(&home, "b-api", "b");
        let entry = home.entry(&a_t).unwrap().unwrap();
        home.export_as(&entry, "partner.cer", crate::export::Replace::Nothing)
            .unwrap();

        let pem = format!("{}{}", b.pem(), b.key_pem());
        let contents = certkeeper_core::read_file(pem.as_bytes(), None).unwrap();
        let options = ImportOptions {
            name: Some("partner.cer".into()),
            ..ImportOptions::default()
        };
        match home.import(contents, &options) {
            Err(StoreError::NameClash {
                name,
                what,
                thumbprint,
            }) => {
                assert_eq!(
                    (name.as_str(), what, thumbprint),
                    ("partner.cer", "export name", a_t.clone())
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(home.binding("b-api").unwrap().cert, "b");
        assert_eq!(home.resolve("partner.cer").unwrap().thumbprint, a_t);
        assert!(
            home.resolve("b")
                .unwrap()
                .subject
                .starts_with("CN=b.example")
        );
    }
}
