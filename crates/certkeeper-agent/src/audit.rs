//! The audit log: one JSON line per key use and per denial, in `<home>/audit.log`
//! (mode 0600, created so before anything is written to it).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::peer::Caller;

/// One audit record.
#[derive(Debug, Serialize)]
pub struct Record<'a> {
    /// RFC 3339 time.
    pub time: String,
    /// Caller uid.
    pub uid: u32,
    /// Caller gid.
    pub gid: u32,
    /// Caller pid.
    pub pid: Option<i32>,
    /// `sign`, `resolve`.
    pub op: &'a str,
    /// The key's entry, when known.
    pub thumbprint: Option<&'a str>,
    /// `allowed`, `denied` or `error`.
    pub outcome: &'a str,
    /// A short reason for denials and errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<&'a str>,
}

/// An append-only audit log.
pub struct AuditLog {
    file: Mutex<File>,
}

impl AuditLog {
    /// Opens (or creates, 0600) the log.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        // Never through a symbolic link: a root agent must not append to a file
        // someone else points the log at.
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        Ok(AuditLog {
            file: Mutex::new(file),
        })
    }

    /// Appends one record. A failing write is reported on stderr, not to the caller.
    pub fn record(
        &self,
        caller: &Caller,
        op: &str,
        thumbprint: Option<&str>,
        outcome: &str,
        detail: Option<&str>,
    ) {
        let record = Record {
            time: OffsetDateTime::now_utc()
                .format(&Rfc3339)
                .unwrap_or_default(),
            uid: caller.uid,
            gid: caller.gid,
            pid: caller.pid,
            op,
            thumbprint,
            outcome,
            detail,
        };
        let Ok(mut line) = serde_json::to_vec(&record) else {
            return;
        };
        line.push(b'\n');
        // One write per record: O_APPEND keeps concurrent lines whole.
        let written = match self.file.lock() {
            Ok(mut f) => f.write_all(&line),
            Err(poisoned) => poisoned.into_inner().write_all(&line),
        };
        if let Err(e) = written {
            eprintln!("certkeeper agent: audit log: {e}");
        }
    }
}
