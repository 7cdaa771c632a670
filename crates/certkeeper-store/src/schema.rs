//! The database schema and its migrations (`PRAGMA user_version`).

/// The schema version this build writes.
pub const VERSION: i64 = 9;

/// The version that added `entry_names`; migrating to it also fills the table from
/// the stored certificates (`Home::migrate`).
pub const ENTRY_NAMES_VERSION: i64 = 4;

/// Migrations, index i upgrades version i to i+1.
pub const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE entries (
    thumbprint   TEXT PRIMARY KEY,           -- SHA-256 of the DER, lower-case hex
    sha1         TEXT NOT NULL,
    store        TEXT NOT NULL CHECK (store IN ('personal','root','intermediate','other','disallowed')),
    name         TEXT,                       -- friendly name
    subject      TEXT NOT NULL,
    issuer       TEXT NOT NULL,
    subject_der  BLOB NOT NULL,
    issuer_der   BLOB NOT NULL,
    not_before   INTEGER NOT NULL,
    not_after    INTEGER NOT NULL,
    is_ca        INTEGER NOT NULL,
    self_signed  INTEGER NOT NULL,
    key_id       TEXT NOT NULL,              -- canonical public key hash, matches keys
    der          BLOB NOT NULL,
    export_name  TEXT UNIQUE,
    imported_at  INTEGER NOT NULL
);
CREATE INDEX entries_key_id ON entries(key_id);
CREATE INDEX entries_subject_der ON entries(subject_der);
CREATE INDEX entries_name ON entries(name);
CREATE INDEX entries_sha1 ON entries(sha1);

CREATE TABLE keys (
    thumbprint   TEXT PRIMARY KEY REFERENCES entries(thumbprint) ON DELETE CASCADE,
    algorithm    TEXT NOT NULL,
    sealed       BLOB NOT NULL,              -- AES-256-GCM under the master key
    exportable   INTEGER NOT NULL DEFAULT 1
);

-- Kept apart from entries so that a re-import never touches it.
CREATE TABLE acl (
    thumbprint   TEXT NOT NULL REFERENCES entries(thumbprint) ON DELETE CASCADE,
    principal    TEXT NOT NULL,
    PRIMARY KEY (thumbprint, principal)
);

CREATE TABLE settings (
    key          TEXT PRIMARY KEY,
    value        TEXT NOT NULL
);
"#,
    // 2: listing one store (the path engine reads `disallowed` on every check).
    "CREATE INDEX entries_store ON entries(store);",
    // 3: egress bindings (an upstream URL and the client certificate to present).
    r#"
CREATE TABLE bindings (
    name         TEXT PRIMARY KEY,
    cert_ref     TEXT NOT NULL,              -- a REF, resolved at each new connection
    upstream     TEXT NOT NULL,              -- https://host[:port][/base]
    listen       TEXT,                       -- 127.0.0.1:PORT served by the agent, or NULL
    server_ca    TEXT NOT NULL DEFAULT 'root', -- root | system | a REF
    created_at   INTEGER NOT NULL
);
"#,
    // 4: the subject's common names and SAN DNS names ("Issued to"), so that a REF
    // matches them through an index.
    r#"
CREATE TABLE entry_names (
    thumbprint   TEXT NOT NULL REFERENCES entries(thumbprint) ON DELETE CASCADE,
    name         TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (thumbprint, name)
);
CREATE INDEX entry_names_name ON entry_names(name);
"#,
    // 5: `bind --allow`: principals a binding narrows its key's ACL to.
    "ALTER TABLE bindings ADD COLUMN allow TEXT NOT NULL DEFAULT '';",
    // 6: a binding's forward proxy (`bind --proxy`), and secrets other than keys
    // (the proxies' passwords), sealed under the master key with their name as
    // associated data.
    r#"
ALTER TABLE bindings ADD COLUMN proxy TEXT;
CREATE TABLE secrets (
    name         TEXT PRIMARY KEY,           -- 'proxy:user@host:port'
    sealed       BLOB NOT NULL               -- AES-256-GCM under the master key
);
"#,
    // 7: `bind --legacy-tls`: a partner on an old TLS stack, reached with OpenSSL.
    "ALTER TABLE bindings ADD COLUMN legacy_tls INTEGER NOT NULL DEFAULT 0;",
    // 8: the fleet. The environment this home publishes (the administrator's) or
    // follows (a front-end's), the front-ends an administrator approved, and which
    // entries and bindings a front-end holds because the fleet published them.
    r#"
CREATE TABLE fleet (
    env          TEXT PRIMARY KEY,
    role         TEXT NOT NULL CHECK (role IN ('admin','node')),
    etcd         TEXT NOT NULL,              -- endpoints, comma-separated
    etcd_cert    TEXT,                       -- thumbprint of the client certificate for etcd
    node         TEXT,                       -- a front-end's name
    admin_key    BLOB NOT NULL,              -- the administrator's Ed25519 public key
    listen_host  TEXT,                       -- a front-end's loopback address for bindings
    generation   INTEGER NOT NULL DEFAULT 0, -- published (admin) or applied (node)
    applied_at   INTEGER,
    error_at     INTEGER,                    -- a front-end's trouble with etcd, since
    error        TEXT
);
CREATE TABLE fleet_members (
    env          TEXT NOT NULL REFERENCES fleet(env) ON DELETE CASCADE,
    node         TEXT NOT NULL,
    hostname     TEXT NOT NULL,
    public_key   BLOB NOT NULL,              -- X25519, what its keys are sealed to
    approved_at  INTEGER NOT NULL,
    PRIMARY KEY (env, node)
);
ALTER TABLE entries ADD COLUMN managed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE bindings ADD COLUMN managed INTEGER NOT NULL DEFAULT 0;
"#,
    // 9: `list` streams in its order from an index, and `--expiring` reads a range.
    r#"
CREATE INDEX entries_listing ON entries(store, subject, thumbprint);
CREATE INDEX entries_not_after ON entries(not_after);
"#,
];

/// Records the "Issued to" names of an entry (inside the caller's transaction).
pub fn insert_names(
    tx: &rusqlite::Connection,
    thumbprint: &str,
    cert: &certkeeper_core::Certificate,
) -> rusqlite::Result<()> {
    let mut stmt =
        tx.prepare_cached("INSERT OR IGNORE INTO entry_names(thumbprint, name) VALUES (?1, ?2)")?;
    for name in cert.issued_to_names() {
        stmt.execute(rusqlite::params![thumbprint, name])?;
    }
    Ok(())
}

/// Fills `entry_names` from the DER of every stored entry (the migration to
/// version 4). An entry whose DER no longer parses gets no names.
pub fn fill_names(tx: &rusqlite::Connection) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare("SELECT thumbprint, der FROM entries")?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
    })?;
    for row in rows {
        let (thumbprint, der) = row?;
        if let Ok(cert) = certkeeper_core::Certificate::from_der(&der) {
            insert_names(tx, &thumbprint, &cert)?;
        }
    }
    Ok(())
}
