//! The home's side of the fleet: what an administrator's home publishes (a snapshot of
//! its entries, key ACLs, export names, bindings and settings), what a front-end's home
//! applies (the same, in one transaction), and the fleet's own records (the
//! environment this home publishes or follows, the front-ends an administrator
//! approved). The format on etcd, signatures and sealing live in `certkeeper-fleet`.

use std::collections::{BTreeMap, HashMap, HashSet};

use certkeeper_core::Certificate;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::bindings::{Binding, now};
use crate::entry::StoreName;
use crate::error::StoreError;
use crate::home::{Home, Setting};

/// The settings a publish carries: all but the one that names a local path.
fn published_settings() -> impl Iterator<Item = Setting> {
    Setting::ALL
        .into_iter()
        .filter(|s| *s != Setting::ExportDir)
}

/// The desired state of a front-end: everything the administrator's home holds but
/// its own fleet identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetState {
    /// Certificates, by thumbprint.
    pub entries: Vec<FleetEntry>,
    /// Bindings, by name.
    pub bindings: Vec<Binding>,
    /// Settings (key, value), as stored.
    pub settings: BTreeMap<String, String>,
}

/// One certificate of the desired state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetEntry {
    /// SHA-256 of `der` (checked when applied).
    pub thumbprint: String,
    /// Its store.
    pub store: String,
    /// Friendly name.
    pub name: Option<String>,
    /// The agreed export name.
    pub export_name: Option<String>,
    /// The key ACL (principal strings).
    pub acl: Vec<String>,
    /// The private key's algorithm and whether it may leave the home, when it has one
    /// (the key itself travels sealed to each front-end, never in this document).
    pub key: Option<FleetKey>,
    /// The certificate (DER, base64).
    #[serde(with = "b64")]
    pub der: Vec<u8>,
}

/// What the document says about a private key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetKey {
    /// As the `keys` table names it.
    pub algorithm: String,
    /// Whether `export --pfx` may write it.
    pub exportable: bool,
}

mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// Which side of the fleet a home is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FleetRole {
    /// The administrator's home: the source of truth, publishes.
    Admin,
    /// A front-end: follows the environment.
    Node,
}

impl FleetRole {
    /// As the `fleet` table stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            FleetRole::Admin => "admin",
            FleetRole::Node => "node",
        }
    }

    /// From the `fleet` table (its CHECK constraint allows only the two).
    fn from_stored(role: &str) -> Self {
        if role == "admin" {
            FleetRole::Admin
        } else {
            FleetRole::Node
        }
    }
}

/// The environment this home publishes or follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetConfig {
    /// The environment's name.
    pub env: String,
    /// Which side.
    pub role: FleetRole,
    /// etcd endpoints.
    pub etcd: Vec<String>,
    /// The REF of the client certificate (with its key in this home) that certkeeper
    /// presents to etcd (the current one, as for a binding); none for plain http.
    pub etcd_cert: Option<String>,
    /// A front-end's node name.
    pub node: Option<String>,
    /// The administrator's public signing key (Ed25519, raw): created by `fleet init`,
    /// pinned by a front-end at `fleet join`.
    pub admin_key: Vec<u8>,
    /// A front-end's loopback address for the published bindings (several front-ends
    /// on one machine), or none: the published address.
    pub listen_host: Option<String>,
    /// The administrator's last publish, or the generation a front-end applied.
    pub generation: u64,
    /// When a front-end applied it (Unix seconds).
    pub applied_at: Option<i64>,
    /// A front-end's last failure to reach etcd or apply (its agent writes it), and
    /// since when; none while all is well.
    pub last_error: Option<(i64, String)>,
}

/// A front-end an administrator approved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FleetMember {
    /// Its node name.
    pub node: String,
    /// Its host name, as it registered.
    pub hostname: String,
    /// Its sealing public key (X25519, raw).
    #[serde(skip)]
    pub public_key: Vec<u8>,
    /// When it was approved (Unix seconds).
    pub approved_at: i64,
}

/// What applying a generation changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// Entries added.
    pub added: usize,
    /// Entries whose store, name, export name, key or ACL changed.
    pub changed: usize,
    /// Managed entries no longer published, removed.
    pub removed: usize,
    /// Bindings added, changed or removed.
    pub bindings: usize,
    /// Published certificates the front-end already held as its own, left as they are.
    pub kept: usize,
    /// The export files to (re)write after the commit: (thumbprint, export name).
    #[serde(skip)]
    pub exports: Vec<(String, String)>,
}

/// Most principals a published key ACL may name (each is looked up on every request
/// the agent decides).
const MAX_ACL: usize = 256;

/// Most principals all the published key ACLs together may name.
const MAX_PRINCIPALS: usize = 1024;

/// Where a published binding may listen on a Unix socket: the agent's runtime
/// directory, not a path anywhere on the front-end.
const PUBLISHED_UNIX_DIR: &str = "/run/certkeeper/";

/// The one text column a query returns, every row.
fn strings(
    conn: &rusqlite::Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(sql)?;
    stmt.query_map(args, |r| r.get(0))?.collect()
}

/// An entry's thumbprint and its private key (PKCS#8, zeroized on drop).
pub type UnsealedKey = (String, Zeroizing<Vec<u8>>);

/// The secret under which a home keeps its fleet private key (the administrator's
/// signing key, or a front-end's sealing key).
pub fn fleet_secret_name(role: FleetRole, env: &str) -> String {
    match role {
        FleetRole::Admin => format!("fleet-admin:{env}"),
        FleetRole::Node => format!("fleet-node:{env}"),
    }
}

impl Home {
    /// The environment this home publishes or follows, if any.
    pub fn fleet_config(&self) -> Result<Option<FleetConfig>, StoreError> {
        self.conn
            .query_row(
                "SELECT env, role, etcd, etcd_cert, node, admin_key, listen_host, generation,
                        applied_at, error_at, error FROM fleet",
                [],
                |r| {
                    let role: String = r.get(1)?;
                    let etcd: String = r.get(2)?;
                    let error_at: Option<i64> = r.get(9)?;
                    let error: Option<String> = r.get(10)?;
                    Ok(FleetConfig {
                        env: r.get(0)?,
                        role: FleetRole::from_stored(&role),
                        etcd: etcd.split(',').map(str::to_string).collect(),
                        etcd_cert: r.get(3)?,
                        node: r.get(4)?,
                        admin_key: r.get(5)?,
                        listen_host: r.get(6)?,
                        generation: r.get::<_, i64>(7)? as u64,
                        applied_at: r.get(8)?,
                        last_error: error_at.zip(error),
                    })
                },
            )
            .optional()
            .map_err(|e| self.db_err(e))
    }

    /// Records the environment, with the fleet private key sealed under the master
    /// key, in one transaction. A home is in at most one environment.
    pub fn fleet_create(&self, config: &FleetConfig, secret: &[u8]) -> Result<(), StoreError> {
        if let Some(existing) = self.fleet_config()? {
            return Err(StoreError::Invalid(format!(
                "this home is already in the environment {} (as {}); one home is in one \
                 environment",
                existing.env,
                match existing.role {
                    FleetRole::Admin => "its administrator",
                    FleetRole::Node => "a front-end",
                }
            )));
        }
        let name = fleet_secret_name(config.role, &config.env);
        let sealed = self.master_key()?.seal(&name, secret)?;
        self.durably(|conn| {
            conn.execute(
                "INSERT INTO secrets(name, sealed) VALUES (?1, ?2)
                 ON CONFLICT(name) DO UPDATE SET sealed = excluded.sealed",
                params![name, sealed],
            )?;
            conn.execute(
                "INSERT INTO fleet(env, role, etcd, etcd_cert, node, admin_key, listen_host, generation)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    config.env,
                    config.role.as_str(),
                    config.etcd.join(","),
                    config.etcd_cert,
                    config.node,
                    config.admin_key,
                    config.listen_host,
                    config.generation as i64
                ],
            )
            .map(drop)
        })
    }

    /// Leaves the environment: the fleet record, its private key and the approved
    /// front-ends go; entries and bindings stay (no longer managed).
    pub fn fleet_forget(&self) -> Result<(), StoreError> {
        let Some(config) = self.fleet_config()? else {
            return Ok(());
        };
        let name = fleet_secret_name(config.role, &config.env);
        self.durably(|conn| {
            conn.execute("DELETE FROM secrets WHERE name = ?1", [&name])?;
            conn.execute("DELETE FROM fleet_members", [])?;
            conn.execute("DELETE FROM fleet", [])?;
            conn.execute("UPDATE entries SET managed = 0", [])?;
            conn.execute("UPDATE bindings SET managed = 0", [])
                .map(drop)
        })
    }

    /// The fleet private key (zeroized on drop).
    pub fn fleet_secret(&self, config: &FleetConfig) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let name = fleet_secret_name(config.role, &config.env);
        self.secret(&name)?.map(|s| s.value).ok_or_else(|| {
            StoreError::Invalid(format!(
                "the fleet key of environment {} is missing from this home",
                config.env
            ))
        })
    }

    /// Records the generation the administrator published.
    pub fn fleet_set_published(&self, generation: u64) -> Result<(), StoreError> {
        self.conn
            .execute("UPDATE fleet SET generation = ?1", [generation as i64])
            .map(drop)
            .map_err(|e| self.db_err(e))
    }

    /// Records (or clears, with `None`) a front-end's trouble with etcd; the time of
    /// the first failure in a row is kept.
    pub fn fleet_set_error(&self, error: Option<&str>) -> Result<(), StoreError> {
        // Written only when it changes: every commit makes the agent drop its caches.
        let changed = match error {
            Some(e) => self.conn.execute(
                "UPDATE fleet SET error = ?1, error_at = COALESCE(error_at, ?2) WHERE error IS NOT ?1",
                params![e, now()],
            ),
            None => self.conn.execute(
                "UPDATE fleet SET error = NULL, error_at = NULL WHERE error IS NOT NULL",
                [],
            ),
        };
        changed.map(drop).map_err(|e| self.db_err(e))
    }

    /// The approved front-ends.
    pub fn fleet_members(&self) -> Result<Vec<FleetMember>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT node, hostname, public_key, approved_at FROM fleet_members ORDER BY node",
            )
            .map_err(|e| self.db_err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(FleetMember {
                    node: r.get(0)?,
                    hostname: r.get(1)?,
                    public_key: r.get(2)?,
                    approved_at: r.get(3)?,
                })
            })
            .map_err(|e| self.db_err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.db_err(e))
    }

    /// Approves a front-end (or replaces its key).
    pub fn fleet_approve(&self, member: &FleetMember) -> Result<(), StoreError> {
        let env = self
            .fleet_config()?
            .map(|c| c.env)
            .ok_or_else(|| StoreError::Invalid("this home is in no environment".into()))?;
        self.durably(|conn| {
            conn.execute(
                "INSERT INTO fleet_members(env, node, hostname, public_key, approved_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(env, node) DO UPDATE SET hostname = excluded.hostname,
                   public_key = excluded.public_key, approved_at = excluded.approved_at",
                params![
                    env,
                    member.node,
                    member.hostname,
                    member.public_key,
                    member.approved_at
                ],
            )
            .map(drop)
        })
    }

    /// Takes a front-end out; whether it was approved.
    pub fn fleet_unapprove(&self, node: &str) -> Result<bool, StoreError> {
        let mut removed = false;
        self.durably(|conn| {
            removed = conn.execute("DELETE FROM fleet_members WHERE node = ?1", [node])? > 0;
            Ok(())
        })?;
        Ok(removed)
    }

    /// The administrator's desired state: every entry and binding but the home's etcd
    /// identities (the entries `etcd_cert` names, and every certificate with a key from
    /// the CA that issued them), which stay on this machine, and the published
    /// settings.
    pub fn fleet_snapshot(&self, etcd_cert: Option<&str>) -> Result<FleetState, StoreError> {
        let err = |e| self.db_err(e);
        // The home's etcd identities: what the REF names, and every certificate with
        // a key issued by the CA that issued those (the etcd cluster's client CA), so
        // that a renewal under another name, or named by thumbprint, stays here too.
        let named = match etcd_cert {
            Some(reference) => self.matching(reference).unwrap_or_default(),
            None => Vec::new(),
        };
        let mut excluded: HashSet<String> = named.iter().map(|e| e.thumbprint.clone()).collect();
        for issuer in named
            .iter()
            .map(|e| e.issuer_der.clone())
            .collect::<HashSet<_>>()
        {
            let mut stmt = self
                .conn
                .prepare(
                    "SELECT e.thumbprint FROM entries e JOIN keys k ON k.thumbprint = e.thumbprint
                     WHERE e.issuer_der = ?1",
                )
                .map_err(err)?;
            let rows = stmt
                .query_map([&issuer], |r| r.get::<_, String>(0))
                .map_err(err)?;
            for row in rows {
                excluded.insert(row.map_err(err)?);
            }
        }
        let mut acls: HashMap<String, Vec<String>> = HashMap::new();
        {
            let mut stmt = self
                .conn
                .prepare("SELECT thumbprint, principal FROM acl ORDER BY thumbprint, principal")
                .map_err(err)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(err)?;
            for row in rows {
                let (t, p) = row.map_err(err)?;
                acls.entry(t).or_default().push(p);
            }
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT e.thumbprint, e.store, e.name, e.export_name, e.der, k.algorithm, k.exportable
                 FROM entries e LEFT JOIN keys k ON k.thumbprint = e.thumbprint
                 ORDER BY e.thumbprint",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                let algorithm: Option<String> = r.get(5)?;
                let exportable: Option<bool> = r.get(6)?;
                Ok(FleetEntry {
                    thumbprint: r.get(0)?,
                    store: r.get(1)?,
                    name: r.get(2)?,
                    export_name: r.get(3)?,
                    acl: Vec::new(),
                    key: algorithm.map(|algorithm| FleetKey {
                        algorithm,
                        exportable: exportable.unwrap_or(true),
                    }),
                    der: r.get(4)?,
                })
            })
            .map_err(err)?;
        let mut entries = Vec::new();
        for row in rows {
            let mut entry = row.map_err(err)?;
            if excluded.contains(&entry.thumbprint) {
                continue;
            }
            entry.acl = acls.remove(&entry.thumbprint).unwrap_or_default();
            entries.push(entry);
        }
        let mut settings = BTreeMap::new();
        for setting in published_settings() {
            if let Some(value) = self.stored_setting(setting)? {
                settings.insert(setting.key().to_string(), value);
            }
        }
        Ok(FleetState {
            entries,
            bindings: self.bindings()?,
            settings,
        })
    }

    /// The unsealed private keys of the entries of `state` that have one (pkcs8 DER,
    /// zeroized on drop). Owner only: the administrator's publish.
    pub fn fleet_private_keys(&self, state: &FleetState) -> Result<Vec<UnsealedKey>, StoreError> {
        let master = self.master_key()?;
        let mut out = Vec::new();
        for entry in state.entries.iter().filter(|e| e.key.is_some()) {
            let sealed: Vec<u8> = self
                .conn
                .query_row(
                    "SELECT sealed FROM keys WHERE thumbprint = ?1",
                    [&entry.thumbprint],
                    |r| r.get(0),
                )
                .map_err(|e| self.db_err(e))?;
            out.push((
                entry.thumbprint.clone(),
                master.unseal(&entry.thumbprint, &sealed)?,
            ));
        }
        Ok(out)
    }

    /// Makes this front-end's home hold generation `generation` of `state`, in one
    /// transaction: entries, keys (sealed anew under this home's master key), ACLs,
    /// export names, bindings (the listen host replaced by `listen_host`), settings,
    /// and the generation applied. Entries and bindings that an earlier generation
    /// brought and this one does not are removed; the home's own (unmanaged) entries
    /// and bindings stay. A generation not newer than the one applied is refused.
    /// The export files are written afterwards by the caller (`Applied::exports`).
    pub fn fleet_apply(
        &mut self,
        generation: u64,
        state: &FleetState,
        keys: &HashMap<String, Zeroizing<Vec<u8>>>,
        listen_host: Option<&str>,
    ) -> Result<Applied, StoreError> {
        let invalid = |m: String| StoreError::Invalid(m);
        // Everything is checked before the transaction starts.
        let mut certs = Vec::with_capacity(state.entries.len());
        for entry in &state.entries {
            let cert = Certificate::from_der(&entry.der).map_err(|e| {
                invalid(format!(
                    "the published certificate {} does not parse: {e}",
                    entry.thumbprint
                ))
            })?;
            if cert.thumbprint != entry.thumbprint {
                return Err(invalid(format!(
                    "the published certificate {} has the thumbprint {}",
                    entry.thumbprint, cert.thumbprint
                )));
            }
            entry.store.parse::<StoreName>()?;
            if let Some(export) = &entry.export_name
                && (export.is_empty()
                    || export.contains('/')
                    || export.chars().any(char::is_control)
                    || export == "."
                    || export == "..")
            {
                return Err(invalid(format!(
                    "the published export name {export:?} is not a plain file name"
                )));
            }
            if entry.key.is_some() && !keys.contains_key(&entry.thumbprint) {
                return Err(invalid(format!(
                    "the private key of {} was not sealed to this front-end",
                    cert.subject
                )));
            }
            certs.push(cert);
        }
        let principals: usize = state.entries.iter().map(|e| e.acl.len()).sum();
        if principals > MAX_PRINCIPALS {
            return Err(invalid(format!(
                "the published key ACLs name {principals} principals in all; at most \
                 {MAX_PRINCIPALS}"
            )));
        }
        for entry in &state.entries {
            if entry.acl.len() > MAX_ACL {
                return Err(invalid(format!(
                    "the published key ACL of {} names {} principals; at most {MAX_ACL}",
                    entry.thumbprint,
                    entry.acl.len()
                )));
            }
            for p in &entry.acl {
                p.parse::<crate::principal::Principal>().map_err(|_| {
                    invalid(format!(
                        "the published principal {p:?} is not user:NAME or group:NAME"
                    ))
                })?;
            }
        }
        let mut bindings = Vec::with_capacity(state.bindings.len());
        for binding in &state.bindings {
            let mut b = binding.clone();
            if let (Some(host), Some(listen)) = (listen_host, &b.listen)
                && !listen.starts_with("unix:")
            {
                let port = listen.rsplit_once(':').map_or("", |(_, p)| p);
                b.listen = Some(if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                });
            }
            b.validate()?;
            if let Some(path) = b.listen.as_deref().and_then(|l| l.strip_prefix("unix:"))
                && (!path.starts_with(PUBLISHED_UNIX_DIR)
                    || path[PUBLISHED_UNIX_DIR.len()..].contains('/')
                    || path.contains(".."))
            {
                return Err(invalid(format!(
                    "the published binding {} listens on unix:{path}; a fleet's Unix sockets are \
                     in {PUBLISHED_UNIX_DIR} (e.g. unix:{PUBLISHED_UNIX_DIR}{}.sock)",
                    b.name, b.name
                )));
            }
            bindings.push(b);
        }
        let mut settings = Vec::with_capacity(state.settings.len());
        for (key, value) in &state.settings {
            let setting = published_settings()
                .find(|s| s.key() == key)
                .ok_or_else(|| {
                    invalid(format!(
                        "the published setting {key:?} is not one a fleet sets"
                    ))
                })?;
            // Checked as `certkeeper config` checks it.
            settings.push((key, setting.checked(value)?));
        }
        let master = if keys.is_empty() {
            None
        } else {
            Some(self.master_key()?)
        };
        let db_path = self.db_path();
        let db = |e| StoreError::db(&db_path, e);
        let mut applied = Applied::default();
        self.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        let result = (|| -> Result<(), StoreError> {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(db)?;
            let current: i64 = tx
                .query_row("SELECT generation FROM fleet", [], |r| r.get(0))
                .map_err(db)?;
            if generation as i64 <= current {
                return Err(invalid(format!(
                    "generation {generation} is not newer than the applied generation {current}"
                )));
            }
            let wanted: HashSet<&str> = state
                .entries
                .iter()
                .map(|e| e.thumbprint.as_str())
                .collect();
            // Managed entries no longer published.
            let managed =
                strings(&tx, "SELECT thumbprint FROM entries WHERE managed = 1", []).map_err(db)?;
            for t in managed.iter().filter(|t| !wanted.contains(t.as_str())) {
                tx.execute("DELETE FROM entries WHERE thumbprint = ?1", [t])
                    .map_err(db)?;
                applied.removed += 1;
            }
            // Export names are unique: free the managed ones first, then assign.
            tx.execute(
                "UPDATE entries SET export_name = NULL WHERE managed = 1",
                [],
            )
            .map_err(db)?;
            let at = now();
            for (entry, cert) in state.entries.iter().zip(&certs) {
                let existing: Option<(String, Option<String>, bool)> = tx
                    .query_row(
                        "SELECT store, name, managed FROM entries WHERE thumbprint = ?1",
                        [&entry.thumbprint],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()
                    .map_err(db)?;
                // The front-end's own entry (its etcd CA, a certificate imported here
                // before it joined) is never changed by the fleet: not its store, name,
                // key or ACL, and a later generation never removes it.
                if matches!(existing, Some((_, _, false))) {
                    applied.kept += 1;
                    continue;
                }
                // A published friendly name that one of the front-end's own entries
                // carries would change what its own REFs (its bindings, its etcd
                // identity) resolve to.
                if let Some(name) = &entry.name {
                    let holder: Option<String> = tx
                        .query_row(
                            "SELECT subject FROM entries WHERE name = ?1 AND managed = 0
                               AND thumbprint != ?2",
                            params![name, entry.thumbprint],
                            |r| r.get(0),
                        )
                        .optional()
                        .map_err(db)?;
                    if let Some(holder) = holder {
                        return Err(invalid(format!(
                            "the published name {name} is the name of this front-end's own \
                             certificate {holder}: rename one of them"
                        )));
                    }
                }
                if let Some(export) = &entry.export_name {
                    let holder: Option<String> = tx
                        .query_row(
                            "SELECT subject FROM entries WHERE export_name = ?1 AND thumbprint != ?2",
                            params![export, entry.thumbprint],
                            |r| r.get(0),
                        )
                        .optional()
                        .map_err(db)?;
                    if let Some(holder) = holder {
                        return Err(invalid(format!(
                            "the published export name {export} is held on this front-end by its \
                             own entry {holder}: rename that export first"
                        )));
                    }
                }
                let existed = existing.is_some();
                match existing {
                    None => {
                        tx.execute(
                            "INSERT INTO entries(thumbprint, sha1, store, name, subject, issuer, subject_der,
                                issuer_der, not_before, not_after, is_ca, self_signed, key_id, der, imported_at,
                                export_name, managed)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, 1)",
                            params![
                                cert.thumbprint, cert.sha1, entry.store, entry.name, cert.subject,
                                cert.issuer, cert.subject_der, cert.issuer_der, cert.not_before,
                                cert.not_after, cert.is_ca, cert.self_signed, cert.key_id, cert.der,
                                at, entry.export_name
                            ],
                        )
                        .map_err(db)?;
                        crate::schema::insert_names(&tx, &cert.thumbprint, cert).map_err(db)?;
                        applied.added += 1;
                    }
                    Some((store, name, _)) => {
                        let changed = tx
                            .execute(
                                "UPDATE entries SET store = ?2, name = ?3, export_name = ?4
                                 WHERE thumbprint = ?1",
                                params![
                                    entry.thumbprint,
                                    entry.store,
                                    entry.name,
                                    entry.export_name
                                ],
                            )
                            .map_err(db)?;
                        if changed > 0 && (store != entry.store || name != entry.name) {
                            applied.changed += 1;
                        }
                    }
                }
                // The key: sealed anew under this home's master key.
                match (&entry.key, keys.get(&entry.thumbprint)) {
                    (Some(k), Some(pkcs8)) => {
                        let master = master.as_ref().expect("keys present");
                        let sealed = master.seal(&entry.thumbprint, pkcs8)?;
                        tx.execute(
                            "INSERT INTO keys(thumbprint, algorithm, sealed, exportable) VALUES (?1, ?2, ?3, ?4)
                             ON CONFLICT(thumbprint) DO UPDATE SET algorithm = excluded.algorithm,
                               sealed = excluded.sealed, exportable = excluded.exportable",
                            params![entry.thumbprint, k.algorithm, sealed, k.exportable],
                        )
                        .map_err(db)?;
                    }
                    _ => {
                        tx.execute(
                            "DELETE FROM keys WHERE thumbprint = ?1",
                            [&entry.thumbprint],
                        )
                        .map_err(db)?;
                    }
                }
                // The ACL, exactly as published.
                let before = strings(
                    &tx,
                    "SELECT principal FROM acl WHERE thumbprint = ?1 ORDER BY principal",
                    [&entry.thumbprint],
                )
                .map_err(db)?;
                let mut after = entry.acl.clone();
                after.sort();
                if before != after {
                    tx.execute("DELETE FROM acl WHERE thumbprint = ?1", [&entry.thumbprint])
                        .map_err(db)?;
                    for p in &after {
                        tx.execute(
                            "INSERT OR IGNORE INTO acl(thumbprint, principal) VALUES (?1, ?2)",
                            params![entry.thumbprint, p],
                        )
                        .map_err(db)?;
                    }
                    if existed {
                        applied.changed += 1;
                    }
                }
                if let Some(export) = &entry.export_name {
                    applied
                        .exports
                        .push((entry.thumbprint.clone(), export.clone()));
                }
            }
            // Bindings.
            let names: HashSet<&str> = bindings.iter().map(|b| b.name.as_str()).collect();
            let managed =
                strings(&tx, "SELECT name FROM bindings WHERE managed = 1", []).map_err(db)?;
            for n in managed.iter().filter(|n| !names.contains(n.as_str())) {
                tx.execute("DELETE FROM bindings WHERE name = ?1", [n])
                    .map_err(db)?;
                applied.bindings += 1;
            }
            for b in &bindings {
                let own: Option<bool> = tx
                    .query_row(
                        "SELECT managed FROM bindings WHERE name = ?1",
                        [&b.name],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(db)?;
                if own == Some(false) {
                    return Err(invalid(format!(
                        "the published binding {} has the name of this front-end's own binding: \
                         rename one of them (certkeeper unbind {} here, or publish it under another \
                         name)",
                        b.name, b.name
                    )));
                }
                if let Some(listen) = &b.listen {
                    let taken: Option<String> = tx
                        .query_row(
                            "SELECT name FROM bindings WHERE listen = ?1 AND name != ?2",
                            params![listen, b.name],
                            |r| r.get(0),
                        )
                        .optional()
                        .map_err(db)?;
                    if let Some(other) = taken {
                        return Err(invalid(format!(
                            "the published binding {} listens on {listen}, where this front-end's \
                             own binding {other} listens",
                            b.name
                        )));
                    }
                }
                let n = tx
                    .execute(
                        "INSERT INTO bindings(name, cert_ref, upstream, listen, server_ca, created_at, allow, proxy, legacy_tls, managed)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1)
                         ON CONFLICT(name) DO UPDATE SET cert_ref = excluded.cert_ref, upstream = excluded.upstream,
                           listen = excluded.listen, server_ca = excluded.server_ca, allow = excluded.allow,
                           proxy = excluded.proxy, legacy_tls = excluded.legacy_tls, managed = 1
                         WHERE (cert_ref, upstream, listen, server_ca, allow, proxy, legacy_tls, managed)
                           IS NOT (excluded.cert_ref, excluded.upstream, excluded.listen, excluded.server_ca,
                                   excluded.allow, excluded.proxy, excluded.legacy_tls, 1)",
                        params![b.name, b.cert, b.upstream, b.listen, b.server_ca, at, b.allow.join(","), b.proxy, b.legacy_tls],
                    )
                    .map_err(db)?;
                applied.bindings += n;
            }
            for (key, value) in &settings {
                tx.execute(
                    "INSERT INTO settings(key, value) VALUES (?1, ?2)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    params![key, value],
                )
                .map_err(db)?;
            }
            tx.execute(
                "UPDATE fleet SET generation = ?1, applied_at = ?2",
                params![generation as i64, at],
            )
            .map_err(db)?;
            tx.commit().map_err(db)
        })();
        let restored = self.conn.pragma_update(None, "synchronous", "NORMAL");
        result?;
        restored.map_err(db)?;
        Ok(applied)
    }
}
