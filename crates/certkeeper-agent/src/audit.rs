//! The audit log: one JSON line per key use and per refusal, in `<home>/audit.log`
//! (mode 0600, created so before anything is written to it, never through a symbolic
//! link).
//!
//! Bounded: repeated refusals of one uid for the same operation within
//! [`WINDOW`] are written once, then counted, and the count is written as one record
//! (`"repeated": N`) when the window closes; the log is rotated at [`ROTATE_AT`] bytes
//! into `audit.log.1` .. `audit.log.KEEP`. It stays a file in the home rather than
//! the journal so that it is the same with and without systemd, and goes wherever the
//! home goes.
//!
//! Fails closed: [`AuditLog::record`] says when a record could not be written, and the
//! agent then refuses the signature it was about to hand out (as Vault refuses
//! requests when no audit device can record them).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::peer::Caller;

/// Repeated refusals within this window are counted, not written one by one.
pub const WINDOW: Duration = Duration::from_secs(10);
/// The log is rotated when it would grow past this size.
pub const ROTATE_AT: u64 = 16 * 1024 * 1024;
/// Rotated files kept (`audit.log.1` is the newest).
pub const KEEP: usize = 4;
/// Distinct (uid, operation, outcome) bursts tracked at once.
const MAX_BURSTS: usize = 4096;

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
    /// `sign`, `resolve`, `relay`, ...
    pub op: &'a str,
    /// The key's entry, when known.
    pub thumbprint: Option<&'a str>,
    /// `allowed`, `denied`, `refused`, `busy` or `error`.
    pub outcome: &'a str,
    /// A short reason for refusals and errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<&'a str>,
    /// How many more records like this one were not written one by one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeated: Option<u64>,
}

/// A record could not be written.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the audit log {path} cannot be written: {reason}")]
pub struct AuditError {
    /// The log.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

/// An append-only, rotated, aggregating audit log.
pub struct AuditLog {
    inner: Mutex<Inner>,
}

struct Inner {
    path: PathBuf,
    file: File,
    size: u64,
    /// The last failure, until a record is written again.
    failing: Option<String>,
    bursts: HashMap<(u32, String, String), Burst>,
}

/// A run of refusals of one kind: when it started, and how many were not written.
struct Burst {
    started: Instant,
    gid: u32,
    held: u64,
    /// The first few thumbprints among those counted.
    seen: Vec<String>,
}

/// Thumbprints a count record names.
const SEEN: usize = 8;

impl AuditLog {
    /// Opens (or creates, 0600) the log, never through a symbolic link.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = open_log(path)?;
        let size = file.metadata()?.len();
        Ok(AuditLog {
            inner: Mutex::new(Inner {
                path: path.to_path_buf(),
                file,
                size,
                failing: None,
                bursts: HashMap::new(),
            }),
        })
    }

    /// Appends one record; refusals repeated within [`WINDOW`] are counted instead.
    /// `Err` when it could not be written: the caller must not hand out what it
    /// recorded.
    pub fn record(
        &self,
        caller: &Caller,
        op: &str,
        thumbprint: Option<&str>,
        outcome: &str,
        detail: Option<&str>,
    ) -> Result<(), AuditError> {
        let mut inner = self.lock();
        let now = Instant::now();
        // Signatures are written one by one; refusals, and admitted binding
        // connections (one per application connection), are counted when repeated.
        if outcome != "allowed" || op == "relay" {
            let key = (caller.uid, op.to_string(), outcome.to_string());
            if let Some(burst) = inner.bursts.get_mut(&key)
                && now.duration_since(burst.started) < WINDOW
            {
                burst.held += 1;
                if let Some(t) = thumbprint
                    && burst.seen.len() < SEEN
                    && !burst.seen.iter().any(|s| s == t)
                {
                    burst.seen.push(t.chars().take(64).collect());
                }
                return Ok(());
            }
            inner.close_burst(&key)?;
            if inner.bursts.len() >= MAX_BURSTS {
                inner.flush(None)?;
            }
            inner.bursts.insert(
                key,
                Burst {
                    started: now,
                    gid: caller.gid,
                    held: 0,
                    seen: Vec::new(),
                },
            );
        }
        let record = Record {
            time: now_text(),
            uid: caller.uid,
            gid: caller.gid,
            pid: caller.pid,
            op,
            thumbprint,
            outcome,
            detail,
            repeated: None,
        };
        inner.write(&record)
    }

    /// Writes the counts of bursts whose window has closed (the agent calls this
    /// every [`WINDOW`], so a flood that stops is still counted).
    pub fn flush_expired(&self) -> Result<(), AuditError> {
        self.lock().flush(Some(Instant::now()))
    }

    /// Writes the counts of every burst (when the agent stops).
    pub fn flush_all(&self) -> Result<(), AuditError> {
        self.lock().flush(None)
    }

    /// `None` while records are written; else why the last one was not.
    pub fn failing(&self) -> Option<String> {
        self.lock().failing.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Inner {
    /// Writes the count of one burst (if any were held back) and forgets it.
    fn close_burst(&mut self, key: &(u32, String, String)) -> Result<(), AuditError> {
        match self.bursts.remove(key) {
            Some(burst) if burst.held > 0 => self.write_count(key, &burst),
            _ => Ok(()),
        }
    }

    /// Closes the bursts whose window ended before `now` (all of them with `None`).
    fn flush(&mut self, now: Option<Instant>) -> Result<(), AuditError> {
        let ended: Vec<(u32, String, String)> = self
            .bursts
            .iter()
            .filter(|(_, b)| now.is_none_or(|now| now.duration_since(b.started) >= WINDOW))
            .map(|(k, _)| k.clone())
            .collect();
        for key in ended {
            self.close_burst(&key)?;
        }
        Ok(())
    }

    fn write_count(
        &mut self,
        key: &(u32, String, String),
        burst: &Burst,
    ) -> Result<(), AuditError> {
        let detail = if burst.seen.is_empty() {
            format!("{} more within {} s", burst.held, WINDOW.as_secs())
        } else {
            format!(
                "{} more within {} s, for {}{}",
                burst.held,
                WINDOW.as_secs(),
                burst.seen.join(", "),
                if burst.held as usize > burst.seen.len() {
                    ", ..."
                } else {
                    ""
                }
            )
        };
        let record = Record {
            time: now_text(),
            uid: key.0,
            gid: burst.gid,
            pid: None,
            op: &key.1,
            thumbprint: None,
            outcome: &key.2,
            detail: Some(&detail),
            repeated: Some(burst.held),
        };
        self.write(&record)
    }

    fn write(&mut self, record: &Record<'_>) -> Result<(), AuditError> {
        let mut line = serde_json::to_vec(record).map_err(|e| self.failed(e.to_string()))?;
        line.push(b'\n');
        if self.size + line.len() as u64 > ROTATE_AT
            && let Err(e) = self.rotate()
        {
            // Nothing was moved or deleted: go on writing to the current file, which
            // only grows past its limit until a rotation succeeds.
            eprintln!(
                "certkeeper agent: the audit log {} could not be rotated ({e}); it keeps growing",
                self.path.display()
            );
        }
        // One write per record: O_APPEND keeps concurrent lines whole.
        match self.file.write_all(&line) {
            Ok(()) => {
                self.size += line.len() as u64;
                self.failing = None;
                Ok(())
            }
            Err(e) => {
                // A record is whole or absent: cut off what part of it got written.
                let _ = self.file.set_len(self.size);
                Err(self.failed(e.to_string()))
            }
        }
    }

    /// audit.log -> audit.log.1 -> ... -> audit.log.KEEP (the oldest dropped). The new
    /// file is created first, so a failure (no descriptors, no space) moves nothing.
    fn rotate(&mut self) -> std::io::Result<()> {
        let numbered = |n: usize| PathBuf::from(format!("{}.{n}", self.path.display()));
        let fresh_path = PathBuf::from(format!("{}.new", self.path.display()));
        let _ = std::fs::remove_file(&fresh_path);
        let fresh = OpenOptions::new()
            .create_new(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&fresh_path)?;
        let _ = std::fs::remove_file(numbered(KEEP));
        for n in (1..KEEP).rev() {
            let _ = std::fs::rename(numbered(n), numbered(n + 1));
        }
        std::fs::rename(&self.path, numbered(1))?;
        std::fs::rename(&fresh_path, &self.path)?;
        self.file = fresh;
        self.size = 0;
        Ok(())
    }

    fn failed(&mut self, reason: String) -> AuditError {
        eprintln!(
            "certkeeper agent: the audit log {} cannot be written ({reason}): refusing to sign",
            self.path.display()
        );
        self.failing = Some(reason.clone());
        AuditError {
            path: self.path.clone(),
            reason,
        }
    }
}

fn open_log(path: &Path) -> std::io::Result<File> {
    // Never through a symbolic link: a root agent must not append to a file someone
    // else points the log at.
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

fn now_text() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(uid: u32) -> Caller {
        Caller {
            uid,
            gid: uid,
            pid: Some(1),
            groups: vec![uid],
        }
    }

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn a_flood_of_refusals_is_one_record_and_a_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path).unwrap();
        for _ in 0..10_000 {
            log.record(&caller(7), "sign", Some("ab"), "denied", Some("no"))
                .unwrap();
        }
        log.record(&caller(8), "sign", Some("ab"), "allowed", None)
            .unwrap();
        log.lock().flush(None).unwrap();
        let all = lines(&path);
        assert_eq!(all.len(), 3, "{all:?}");
        assert_eq!(all[0]["uid"], 7);
        assert_eq!(all[1]["outcome"], "allowed");
        assert_eq!(all[2]["repeated"], 9_999);
        assert_eq!(all[2]["outcome"], "denied");
    }

    #[test]
    fn the_log_rotates_and_keeps_a_bounded_number_of_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path).unwrap();
        log.lock().size = ROTATE_AT - 10;
        log.record(&caller(1), "sign", None, "allowed", None)
            .unwrap();
        assert!(dir.path().join("audit.log.1").exists());
        for n in 0..(KEEP + 3) {
            log.lock().size = ROTATE_AT;
            log.record(&caller(n as u32), "sign", None, "allowed", None)
                .unwrap();
        }
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, KEEP + 1);
        assert_eq!(lines(&path).len(), 1);
    }

    #[test]
    fn a_rotation_that_cannot_open_the_new_file_moves_and_deletes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path).unwrap();
        for n in 1..=KEEP {
            std::fs::write(dir.path().join(format!("audit.log.{n}")), format!("{n}\n")).unwrap();
        }
        // The new file's name taken by a directory: it cannot be created.
        std::fs::create_dir(dir.path().join("audit.log.new")).unwrap();
        std::fs::write(dir.path().join("audit.log.new/x"), "").unwrap();
        log.lock().size = ROTATE_AT;
        log.record(&caller(1), "sign", None, "allowed", None)
            .unwrap();
        for n in 1..=KEEP {
            let kept = std::fs::read_to_string(dir.path().join(format!("audit.log.{n}"))).unwrap();
            assert_eq!(kept, format!("{n}\n"));
        }
        assert_eq!(lines(&path).len(), 1, "the record went to the current file");
    }

    #[test]
    fn a_symbolic_link_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("victim");
        std::fs::write(&target, "x").unwrap();
        let path = dir.path().join("audit.log");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        assert!(AuditLog::open(&path).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "x");
    }
}
