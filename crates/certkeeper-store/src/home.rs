//! Opening and creating a home; queries and edits of its entries and settings.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use certkeeper_core::PrivateKey;
use rusqlite::{Connection, OptionalExtension, params};

use crate::entry::{Entry, StoreName};
use crate::error::StoreError;
use crate::principal::Principal;
use crate::schema;
use crate::seal::MasterKey;

/// Most entries a `subject:` REF gathers (more is ambiguous all the same).
const MAX_MATCHES: i64 = 64;

/// The database file inside a home.
pub const DB_FILE: &str = "certkeeper.db";
/// The master key file inside a home.
pub const MASTER_KEY_FILE: &str = "master.key";

/// A home, opened.
pub struct Home {
    dir: PathBuf,
    pub(crate) conn: Connection,
}

/// The settings of a home, with their defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// Where `export --as` writes (default `<home>-exports`, beside the home: the
    /// applications read it, and the home is private to its owner).
    ExportDir,
    /// The principals every personal key must grant (comma-separated).
    ServicePrincipals,
    /// Warn this many days before a certificate expires (default 30).
    ExpiryWarningDays,
    /// Seconds a binding waits for the upstream's answer before a 504 (default 60).
    UpstreamTimeout,
    /// Seconds a binding waits for an application: a whole request head, more of a
    /// request body, the next request on a kept-alive connection (default 60).
    ClientTimeout,
    /// The forward proxy bindings without their own `--proxy` go through
    /// (`http://[user@]host:port`; default none).
    EgressProxy,
    /// The hosts the bindings reach without `egress_proxy` (as curl's `NO_PROXY`).
    EgressNoProxy,
    /// A front-end waits a random part of this many seconds before applying a new
    /// generation of its fleet, so that a fleet does not reload at once (default 5).
    FleetSpread,
}

impl Setting {
    /// Every setting.
    pub const ALL: [Setting; 8] = [
        Setting::ExportDir,
        Setting::ServicePrincipals,
        Setting::ExpiryWarningDays,
        Setting::UpstreamTimeout,
        Setting::ClientTimeout,
        Setting::EgressProxy,
        Setting::EgressNoProxy,
        Setting::FleetSpread,
    ];

    /// The setting's key.
    pub fn key(self) -> &'static str {
        match self {
            Setting::ExportDir => "export_dir",
            Setting::ServicePrincipals => "service_principals",
            Setting::ExpiryWarningDays => "expiry_warning_days",
            Setting::UpstreamTimeout => "upstream_timeout",
            Setting::ClientTimeout => "client_timeout",
            Setting::EgressProxy => "egress_proxy",
            Setting::EgressNoProxy => "egress_no_proxy",
            Setting::FleetSpread => "fleet_spread",
        }
    }

    /// The value as stored, after checking it (`config` and a fleet's published
    /// settings; whether `service_principals`' accounts exist is checked where the
    /// setting is used, by `set_setting`).
    pub fn checked(self, value: &str) -> Result<String, StoreError> {
        Ok(match self {
            Setting::ExportDir => {
                if !Path::new(value).is_absolute() {
                    return Err(StoreError::InvalidSetting(format!(
                        "export_dir must be an absolute path, not {value:?}"
                    )));
                }
                value.to_string()
            }
            Setting::ServicePrincipals => {
                let principals = parse_principals(value)?;
                principals
                    .iter()
                    .map(Principal::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            }
            Setting::ExpiryWarningDays => {
                let days: u32 = value.trim().parse().map_err(|_| {
                    StoreError::InvalidSetting(format!(
                        "expiry_warning_days must be a whole number of days, not {value:?}"
                    ))
                })?;
                days.to_string()
            }
            Setting::UpstreamTimeout | Setting::ClientTimeout => {
                let seconds: u32 = value
                    .trim()
                    .parse()
                    .ok()
                    .filter(|s| (1..=86_400).contains(s))
                    .ok_or_else(|| {
                        StoreError::InvalidSetting(format!(
                            "{} must be a whole number of seconds from 1 to 86400, not \
                             {value:?}",
                            self.key()
                        ))
                    })?;
                seconds.to_string()
            }
            Setting::EgressProxy => {
                let url = value.trim();
                if !url.is_empty() {
                    crate::bindings::check_proxy_url(url).map_err(StoreError::InvalidSetting)?;
                }
                url.to_string()
            }
            Setting::EgressNoProxy => value.trim().to_string(),
            Setting::FleetSpread => {
                let seconds: u32 = value
                    .trim()
                    .parse()
                    .ok()
                    .filter(|s| *s <= 3600)
                    .ok_or_else(|| {
                        StoreError::InvalidSetting(format!(
                            "fleet_spread must be a whole number of seconds from 0 to 3600, not \
                             {value:?}"
                        ))
                    })?;
                seconds.to_string()
            }
        })
    }

    /// Looks a key up.
    pub fn from_key(key: &str) -> Result<Self, StoreError> {
        Setting::ALL
            .into_iter()
            .find(|s| s.key() == key)
            .ok_or_else(|| {
                StoreError::InvalidSetting(format!(
                    "unknown setting {key:?}: export_dir, service_principals, expiry_warning_days, \
                     upstream_timeout, client_timeout, egress_proxy, egress_no_proxy, fleet_spread (or \
                     egress_proxy_password with --password-env)"
                ))
            })
    }
}

/// What `list` shows.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this store.
    pub store: Option<StoreName>,
    /// Only entries that expire at or before this time (Unix seconds).
    pub expiring_before: Option<i64>,
    /// Only entries with a friendly name, export name or "Issued to" name that begins
    /// with this text.
    pub search: Option<String>,
}

/// Entries whose SHA-256 or SHA-1 thumbprint starts with ?1 (lower-case hex; ?2 is ?1
/// followed by "g").
const THUMBPRINT_PREFIX: &str =
    "(e.thumbprint >= ?1 AND e.thumbprint < ?2) OR (e.sha1 >= ?1 AND e.sha1 < ?2)";

impl Home {
    /// Creates the home if needed (idempotent): directory 0700, database, master
    /// key 0600. Returns whether anything was created.
    pub fn init(dir: &Path) -> Result<(Home, bool), StoreError> {
        if let Some(not_owner) = not_owner(dir) {
            return Err(not_owner);
        }
        crate::trust::check_home(dir)?;
        let mut created = false;
        if !dir.join(DB_FILE).exists() || !dir.join(MASTER_KEY_FILE).exists() {
            crate::fs::create_dir(dir, 0o700)?;
            created = true;
        }
        let key_path = dir.join(MASTER_KEY_FILE);
        if !key_path.exists() {
            MasterKey::create(&key_path)?;
        }
        let home = Home::open_db(dir)?;
        Ok((home, created))
    }

    /// Opens an existing home.
    pub fn open(dir: &Path) -> Result<Home, StoreError> {
        if let Some(not_owner) = not_owner(dir) {
            return Err(not_owner);
        }
        crate::trust::check_home(dir)?;
        if !dir.join(DB_FILE).exists() {
            return Err(StoreError::NotInitialized {
                dir: dir.to_path_buf(),
            });
        }
        Home::open_db(dir)
    }

    /// Whether `dir` exists but belongs to another user whose home this user cannot
    /// open (a service account pointing CERTKEEPER_HOME at the administrator's home).
    pub fn is_foreign(dir: &Path) -> bool {
        not_owner(dir).is_some()
    }

    fn open_db(dir: &Path) -> Result<Home, StoreError> {
        let path = dir.join(DB_FILE);
        if !path.exists() {
            // Created 0600 before SQLite writes into it; its -wal and -shm files
            // take the same mode.
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| StoreError::io(&path, e))?;
        }
        let db = |e| StoreError::db(&path, e);
        let conn = Connection::open(&path).map_err(db)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(db)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(db)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::ReadOnly { dir: path.clone() });
        }
        // WAL with synchronous=NORMAL keeps committed data across a killed process.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db)?;
        let mut home = Home {
            dir: dir.to_path_buf(),
            conn,
        };
        home.migrate()?;
        Ok(home)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let path = self.db_path();
        let db = |e| StoreError::db(&path, e);
        let version = |c: &Connection| -> rusqlite::Result<i64> {
            c.query_row("PRAGMA user_version", [], |r| r.get(0))
        };
        if version(&self.conn).map_err(db)? == schema::VERSION {
            return Ok(());
        }
        // Read again inside a write transaction: another process may be migrating.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db)?;
        let found = version(&tx).map_err(db)?;
        if found > schema::VERSION {
            return Err(StoreError::SchemaTooNew {
                path: path.clone(),
                found,
                known: schema::VERSION,
            });
        }
        for (from, sql) in (0_i64..).zip(schema::MIGRATIONS).skip(found as usize) {
            tx.execute_batch(sql).map_err(db)?;
            if from + 1 == schema::ENTRY_NAMES_VERSION {
                schema::fill_names(&tx).map_err(db)?;
            }
        }
        tx.pragma_update(None, "user_version", schema::VERSION)
            .map_err(db)?;
        tx.commit().map_err(db)
    }

    /// The home directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The database file.
    pub fn db_path(&self) -> PathBuf {
        self.dir.join(DB_FILE)
    }

    pub(crate) fn db_err(&self, e: rusqlite::Error) -> StoreError {
        StoreError::db(self.db_path(), e)
    }

    pub(crate) fn master_key(&self) -> Result<MasterKey, StoreError> {
        MasterKey::load(&self.dir.join(MASTER_KEY_FILE))
    }

    /// SQLite's data version: changes whenever another connection commits, so a
    /// long-running reader (the agent) knows when to drop its caches.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        // Cached: the agent asks before every request it answers.
        self.conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(|e| self.db_err(e))
    }

    // ----- settings -----

    /// A setting's value as set, if it was.
    pub fn stored_setting(&self, setting: Setting) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row(
                "SELECT value FROM settings WHERE key = ?1",
                [setting.key()],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.db_err(e))
    }

    /// A setting's value, or its default.
    pub fn setting(&self, setting: Setting) -> Result<String, StoreError> {
        let stored = self.stored_setting(setting)?;
        Ok(stored.unwrap_or_else(|| match setting {
            Setting::ExportDir => default_export_dir(&self.dir).display().to_string(),
            Setting::ServicePrincipals => String::new(),
            Setting::ExpiryWarningDays => "30".into(),
            Setting::UpstreamTimeout | Setting::ClientTimeout => "60".into(),
            Setting::EgressProxy | Setting::EgressNoProxy => String::new(),
            Setting::FleetSpread => "5".into(),
        }))
    }

    /// Changes a setting after checking its value.
    pub fn set_setting(&self, setting: Setting, value: &str) -> Result<(), StoreError> {
        let value = setting.checked(value)?;
        if setting == Setting::ServicePrincipals {
            // On this machine the accounts must exist.
            for p in parse_principals(&value)? {
                p.validate()?;
            }
        }
        self.conn
            .execute(
                "INSERT INTO settings(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![setting.key(), value],
            )
            .map_err(|e| self.db_err(e))?;
        Ok(())
    }

    /// The export directory.
    pub fn export_dir(&self) -> Result<PathBuf, StoreError> {
        self.setting(Setting::ExportDir).map(PathBuf::from)
    }

    // ----- entries -----

    /// All entries, optionally of one store, ordered by store then subject.
    pub fn list(&self, store: Option<StoreName>) -> Result<Vec<Entry>, StoreError> {
        match store {
            Some(s) => self.query_entries("e.store = ?1", &[&s.as_str()]),
            None => self.query_entries("1", &[]),
        }
    }

    /// The entries `filter` selects, in `list`'s order (store, subject, thumbprint),
    /// handed to `each` one at a time as SQLite steps through them, without their DER
    /// (`der`, `subject_der` and `issuer_der` are empty): `list` of any size holds
    /// one row at a time. The order comes from the `entries_listing` index; an expiry
    /// bound reads a range of `entries_not_after` and a search ranges of the names'
    /// indexes, and sorts what they find.
    pub fn each_entry(
        &self,
        filter: &ListFilter,
        mut each: impl FnMut(Entry) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut conditions = vec!["1".to_string()];
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        if let Some(store) = filter.store {
            args.push(Box::new(store.as_str()));
            conditions.push(format!("e.store = ?{}", args.len()));
        }
        if let Some(before) = filter.expiring_before {
            args.push(Box::new(before));
            conditions.push(format!("e.not_after <= ?{}", args.len()));
        }
        if let Some(text) = filter
            .search
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            // Names that begin with TEXT: a range on each indexed name column (the
            // "Issued to" names compare without case, as their index does).
            args.push(Box::new(text.to_string()));
            let low = args.len();
            args.push(Box::new(format!("{text}\u{10FFFF}")));
            let high = args.len();
            conditions.push(format!(
                "(e.thumbprint IN (SELECT thumbprint FROM entry_names WHERE name >= ?{low} AND name < ?{high}) \
                  OR (e.name >= ?{low} AND e.name < ?{high}) \
                  OR (e.export_name >= ?{low} AND e.export_name < ?{high}))"
            ));
        }
        // Without statistics SQLite prefers walking the listing index to sorting;
        // expiring certificates are few: read their range, sort those.
        let index = if filter.expiring_before.is_some() && filter.search.is_none() {
            "INDEXED BY entries_not_after"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {} FROM entries e {index} \
             LEFT JOIN keys k ON k.thumbprint = e.thumbprint WHERE {} \
             ORDER BY e.store, e.subject, e.thumbprint",
            Entry::COLUMNS_WITHOUT_DER,
            conditions.join(" AND ")
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.db_err(e))?;
        let params: Vec<&dyn rusqlite::ToSql> = args.iter().map(|a| a.as_ref()).collect();
        let mut rows = stmt.query(params.as_slice()).map_err(|e| self.db_err(e))?;
        while let Some(row) = rows.next().map_err(|e| self.db_err(e))? {
            each(Entry::from_row(row).map_err(|e| self.db_err(e))?)?;
        }
        Ok(())
    }

    /// The entry with this exact thumbprint.
    pub fn entry(&self, thumbprint: &str) -> Result<Option<Entry>, StoreError> {
        self.query_entries("e.thumbprint = ?1", &[&thumbprint])
            .map(|mut v| v.pop())
    }

    /// Entries whose subject name (DER) is `subject_der`: candidate issuers.
    pub fn by_subject_der(&self, subject_der: &[u8]) -> Result<Vec<Entry>, StoreError> {
        self.query_entries("e.subject_der = ?1", &[&subject_der])
    }

    /// Entries whose public key id is `key_id`.
    pub fn by_key_id(&self, key_id: &str) -> Result<Vec<Entry>, StoreError> {
        self.query_entries("e.key_id = ?1", &[&key_id])
    }

    fn query_entries(
        &self,
        condition: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<Entry>, StoreError> {
        self.query_entries_at_most(condition, args, i64::MAX)
    }

    /// At most `limit` entries: a REF that matches more is ambiguous anyway, and the
    /// agent answers such lookups for other users.
    fn query_entries_at_most(
        &self,
        condition: &str,
        args: &[&dyn rusqlite::ToSql],
        limit: i64,
    ) -> Result<Vec<Entry>, StoreError> {
        let sql = format!(
            "SELECT {} FROM entries e LEFT JOIN keys k ON k.thumbprint = e.thumbprint WHERE {condition}
             ORDER BY e.store, e.subject, e.thumbprint LIMIT {limit}",
            Entry::COLUMNS
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.db_err(e))?;
        let rows = stmt
            .query_map(args, Entry::from_row)
            .map_err(|e| self.db_err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.db_err(e))
    }

    /// Resolves a REF: a thumbprint (SHA-256 or SHA-1) or a unique prefix of one (at
    /// least 8 hex digits), a friendly name, an export name, or `subject:TEXT`
    /// (case-insensitive substring of the subject).
    pub fn resolve(&self, reference: &str) -> Result<Entry, StoreError> {
        let found = self.matching(reference)?;
        match found.len() {
            0 => Err(StoreError::NotFound {
                reference: reference.into(),
                closest: self.closest_names(reference)?,
            }),
            1 => Ok(found.into_iter().next().expect("one element")),
            _ => Err(StoreError::Ambiguous {
                reference: reference.into(),
                candidates: found.iter().map(Entry::describe).collect(),
            }),
        }
    }

    /// Every entry a REF matches.
    pub fn matching(&self, reference: &str) -> Result<Vec<Entry>, StoreError> {
        let reference_trim = reference.trim();
        if reference_trim.is_empty() {
            return Err(StoreError::BadReference {
                reference: reference.into(),
                detail: "it is empty".into(),
            });
        }
        if let Some(text) = reference_trim.strip_prefix("subject:") {
            let pattern = format!("%{}%", escape_like(&text.to_lowercase()));
            return self.query_entries_at_most(
                "lower(e.subject) LIKE ?1 ESCAPE '\\'",
                &[&pattern],
                MAX_MATCHES,
            );
        }
        let hex = reference_trim.replace([':', ' '], "").to_lowercase();
        let mut found = Vec::new();
        if hex.len() >= 8 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            // A prefix as a range on the indexed columns ("g" sorts after every hex
            // digit), not LIKE, which no index serves.
            let upper = format!("{hex}g");
            found = self.query_entries(THUMBPRINT_PREFIX, &[&hex, &upper])?;
        }
        if found.is_empty() {
            found = self.query_entries("e.name = ?1 OR e.export_name = ?1", &[&reference_trim])?;
        }
        if found.is_empty() {
            found = self.query_entries(
                "e.thumbprint IN (SELECT thumbprint FROM entry_names WHERE name = ?1)",
                &[&reference_trim],
            )?;
        }
        if found.is_empty()
            && !hex.is_empty()
            && hex.len() < 8
            && hex.chars().all(|c| c.is_ascii_hexdigit())
        {
            return Err(StoreError::BadReference {
                reference: reference.into(),
                detail: "use at least 8 hex digits of the thumbprint".into(),
            });
        }
        Ok(found)
    }

    /// Up to five friendly, export and "Issued to" names close to `reference` (a
    /// small edit distance, or one starts with the other), closest first.
    fn closest_names(&self, reference: &str) -> Result<Vec<String>, StoreError> {
        let wanted = reference.trim().to_lowercase();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT name FROM entries WHERE name IS NOT NULL
                 UNION SELECT export_name FROM entries WHERE export_name IS NOT NULL
                 UNION SELECT name FROM entry_names",
            )
            .map_err(|e| self.db_err(e))?;
        let names = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.db_err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.db_err(e))?;
        let limit = (wanted.chars().count() / 3).clamp(1, 3);
        let mut close: Vec<(usize, String)> = names
            .into_iter()
            .filter_map(|name| {
                let lower = name.to_lowercase();
                let distance = edit_distance(&wanted, &lower);
                let prefix = wanted.chars().count() >= 3
                    && (lower.starts_with(&wanted) || wanted.starts_with(&lower));
                (distance <= limit || prefix).then_some((distance, name))
            })
            .collect();
        close.sort();
        let mut seen = std::collections::HashSet::new();
        close.retain(|(_, n)| seen.insert(n.to_lowercase()));
        Ok(close.into_iter().take(5).map(|(_, n)| n).collect())
    }

    /// Moves an entry to another store.
    pub fn move_to(&self, entry: &Entry, to: StoreName) -> Result<(), StoreError> {
        if to == StoreName::Personal && !entry.has_key {
            return Err(StoreError::InvalidMove(format!(
                "{} has no private key: personal holds certificates with their key \
                 (import the .pfx or the key file to add it)",
                entry.subject
            )));
        }
        self.conn
            .execute(
                "UPDATE entries SET store = ?1 WHERE thumbprint = ?2",
                params![to.as_str(), entry.thumbprint],
            )
            .map_err(|e| self.db_err(e))?;
        Ok(())
    }

    /// Deletes an entry with its key and ACL.
    pub fn remove(&self, entry: &Entry) -> Result<(), StoreError> {
        self.durably(|conn| {
            conn.execute(
                "DELETE FROM entries WHERE thumbprint = ?1",
                [&entry.thumbprint],
            )
            .map(drop)
        })
    }

    /// Runs `f` in one transaction that is on disk when this returns: a revoke or a
    /// removal must survive a power cut (WAL with synchronous=NORMAL, the home's
    /// default, may lose the last commits), so these commits sync the log.
    pub(crate) fn durably(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<()>,
    ) -> Result<(), StoreError> {
        self.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(|e| self.db_err(e))?;
        let result = (|| {
            let tx = rusqlite::Transaction::new_unchecked(
                &self.conn,
                rusqlite::TransactionBehavior::Immediate,
            )?;
            f(&tx)?;
            tx.commit()
        })();
        let restored = self.conn.pragma_update(None, "synchronous", "NORMAL");
        result.map_err(|e| self.db_err(e))?;
        restored.map_err(|e| self.db_err(e))
    }

    /// The ACL of an entry's key, sorted.
    pub fn acl(&self, thumbprint: &str) -> Result<Vec<Principal>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT principal FROM acl WHERE thumbprint = ?1 ORDER BY principal")
            .map_err(|e| self.db_err(e))?;
        let rows = stmt
            .query_map([thumbprint], |r| r.get::<_, String>(0))
            .map_err(|e| self.db_err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let text = row.map_err(|e| self.db_err(e))?;
            out.push(text.parse()?);
        }
        Ok(out)
    }

    /// Adds principals to an entry's key ACL (names must exist on this machine).
    /// Returns the ACL after the change.
    pub fn grant(
        &self,
        entry: &Entry,
        principals: &[Principal],
    ) -> Result<Vec<Principal>, StoreError> {
        if !entry.has_key {
            return Err(StoreError::NoKey {
                subject: entry.subject.clone(),
            });
        }
        for p in principals {
            p.validate()?;
        }
        self.durably(|conn| {
            for p in principals {
                conn.execute(
                    "INSERT OR IGNORE INTO acl(thumbprint, principal) VALUES (?1, ?2)",
                    params![entry.thumbprint, p.to_string()],
                )?;
            }
            Ok(())
        })?;
        self.acl(&entry.thumbprint)
    }

    /// Removes principals from an entry's key ACL. Returns the ACL after the change.
    pub fn revoke(
        &self,
        entry: &Entry,
        principals: &[Principal],
    ) -> Result<Vec<Principal>, StoreError> {
        self.durably(|conn| {
            for p in principals {
                conn.execute(
                    "DELETE FROM acl WHERE thumbprint = ?1 AND principal = ?2",
                    params![entry.thumbprint, p.to_string()],
                )?;
            }
            Ok(())
        })?;
        self.acl(&entry.thumbprint)
    }

    /// The private key of an entry, unsealed. Callers hold it only as long as needed;
    /// it is zeroized on drop.
    pub fn private_key(&self, entry: &Entry) -> Result<PrivateKey, StoreError> {
        let sealed: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT sealed FROM keys WHERE thumbprint = ?1",
                [&entry.thumbprint],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.db_err(e))?;
        let sealed = sealed.ok_or_else(|| StoreError::NoKey {
            subject: entry.subject.clone(),
        })?;
        let plain = self.master_key()?.unseal(&entry.thumbprint, &sealed)?;
        Ok(PrivateKey::from_pkcs8_der(&plain)?)
    }
}

/// `<home>-exports`: beside the home, which is 0700, so that other users can read
/// the exported certificates (`/var/lib/certkeeper` -> `/var/lib/certkeeper-exports`).
pub fn default_export_dir(home: &Path) -> PathBuf {
    let home = std::fs::canonicalize(home).unwrap_or_else(|_| home.to_path_buf());
    match (home.parent(), home.file_name()) {
        (Some(parent), Some(name)) => {
            let mut sibling = name.to_os_string();
            sibling.push("-exports");
            parent.join(sibling)
        }
        // The root directory as a home: nothing beside it.
        _ => home.join("exports"),
    }
}

/// Parses a comma- or space-separated principal list.
pub fn parse_principals(value: &str) -> Result<Vec<Principal>, StoreError> {
    value
        .split([',', ' '])
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse())
        .collect()
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// `Some(NotOwner)` when `dir` exists, is not ours, and we are not root: another
/// user's home is never opened (its files are 0600 anyway), so say whose it is
/// rather than "no home here".
fn not_owner(dir: &Path) -> Option<StoreError> {
    use std::os::unix::fs::MetadataExt;
    let me = nix::unistd::geteuid();
    if me.is_root() {
        return None;
    }
    let who = Principal::describe_uid;
    let owner = match std::fs::metadata(dir) {
        Ok(meta) if meta.uid() == me.as_raw() => return None,
        Ok(meta) => who(meta.uid()),
        // A parent directory closed to this user: the home is someone else's.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            "another user (a directory above it is closed to this user)".to_string()
        }
        Err(_) => return None,
    };
    Some(StoreError::NotOwner {
        dir: dir.to_path_buf(),
        owner,
        user: who(me.as_raw()),
    })
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thumbprint_prefix_is_found_through_the_indexes_not_a_scan() {
        let dir = tempfile::tempdir().unwrap();
        let (home, _) = Home::init(&dir.path().join("home")).unwrap();
        let sql = format!(
            "EXPLAIN QUERY PLAN SELECT e.thumbprint FROM entries e WHERE {THUMBPRINT_PREFIX}"
        );
        let mut stmt = home.conn.prepare(&sql).unwrap();
        let plan: Vec<String> = stmt
            .query_map(["0123abcd", "0123abcdg"], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter().all(|step| !step.starts_with("SCAN")),
            "{plan:?}"
        );
        assert!(plan.iter().any(|step| step.contains("INDEX")), "{plan:?}");
    }
}
