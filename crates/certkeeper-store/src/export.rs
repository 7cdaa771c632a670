//! `export --as NAME`: the public certificate under its agreed name in the export
//! directory, which other users (the applications) read.
//!
//! The directory is opened once (`O_DIRECTORY | O_NOFOLLOW`) and checked on that
//! descriptor: not a symbolic link, owned by the home's owner or root, not writable by
//! group or others. Everything after works relative to the descriptor, so the path
//! cannot be swapped between the check and the write. The file is written as a
//! temporary file (mode 0644) beside its name, the export name committed in the
//! database, then the temporary file renamed over the name; a failure at any step
//! leaves the database and the file as they were.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::Mode;
use nix::unistd::{UnlinkatFlags, unlinkat};
use rusqlite::{OptionalExtension, params};

use crate::entry::Entry;
use crate::error::{ExportDirProblem, StoreError};
use crate::home::Home;

/// Mode of the export directory when certkeeper creates it.
pub const DIR_MODE: u32 = 0o755;
/// Mode of an exported certificate.
pub const FILE_MODE: u32 = 0o644;

/// What `export_as` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// The file.
    pub path: PathBuf,
    /// What the file held before.
    pub before: Previous,
}

/// What the export file held before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Previous {
    /// Nothing: the file is new.
    Nothing,
    /// This certificate, byte for byte: nothing was written.
    Same,
    /// This certificate in another encoding (PEM): rewritten as DER.
    SameReencoded,
    /// Another certificate or other content, replaced; its description.
    Replaced(String),
}

/// What a file already at the export name may be replaced with this export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// Nothing but this certificate itself (`export --as`).
    Nothing,
    /// Another certificate (the one a renewal replaces), never other content (a fleet's
    /// front-end writing the export names it is sent).
    Certificates,
    /// Anything (`export --as --force`).
    Anything,
}

impl Home {
    /// Records `name` as the entry's export name and writes its DER to
    /// `<export_dir>/name` (mode 0644). A file holding another certificate, or
    /// anything else, is replaced only as `replace` allows; on any failure neither the
    /// database nor the file changes.
    pub fn export_as(
        &mut self,
        entry: &Entry,
        name: &str,
        replace: Replace,
    ) -> Result<Exported, StoreError> {
        if name.is_empty()
            || name.contains('/')
            || name == "."
            || name == ".."
            || name.chars().any(char::is_control)
        {
            return Err(StoreError::Invalid(format!(
                "export name {name:?} must be a plain file name (like partner.cer)"
            )));
        }
        // Refused before anything is written; checked again in the transaction.
        self.check_export_name(entry, name)?;
        let dir_path = self.export_dir()?;
        let dir = self.open_export_dir(&dir_path, true)?;
        let path = dir_path.join(name);
        let before = match read_existing(&dir, &dir_path, name)? {
            None => Previous::Nothing,
            Some(bytes) if bytes == entry.der => Previous::Same,
            Some(bytes) => match describe(&bytes) {
                (Some(thumbprint), _) if thumbprint == entry.thumbprint => Previous::SameReencoded,
                (Some(_), holder) if replace != Replace::Nothing => Previous::Replaced(holder),
                (None, holder) if replace == Replace::Anything => Previous::Replaced(holder),
                (_, holder) => return Err(StoreError::ExportFileTaken { path, holder }),
            },
        };

        let temp = if before == Previous::Same {
            None
        } else {
            Some(write_temp(&dir, &dir_path, name, &entry.der)?)
        };
        let previous_name = match self.record_export_name(entry, name) {
            Ok(previous) => previous,
            Err(e) => {
                if let Some(t) = &temp {
                    let _ = unlinkat(&dir, t.as_str(), UnlinkatFlags::NoRemoveDir);
                }
                return Err(e);
            }
        };
        if let Some(t) = &temp
            && let Err(errno) = renameat(&dir, t.as_str(), &dir, name)
        {
            let _ = unlinkat(&dir, t.as_str(), UnlinkatFlags::NoRemoveDir);
            // The name was committed; put the previous one back.
            let _ = self.conn.execute(
                "UPDATE entries SET export_name = ?1 WHERE thumbprint = ?2",
                params![previous_name, entry.thumbprint],
            );
            return Err(write_error(&dir_path, errno));
        }
        let _ = nix::unistd::fsync(&dir);
        Ok(Exported { path, before })
    }

    /// The export directory, checked as `export --as` checks it, if it exists (not
    /// created): `Ok(None)` when it does not exist. For doctor.
    pub fn checked_export_dir(&self) -> Result<Option<PathBuf>, StoreError> {
        let dir = self.export_dir()?;
        match self.open_export_dir(&dir, false) {
            Ok(_) => Ok(Some(dir)),
            Err(StoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Refuses an export name another entry holds, or that is another entry's
    /// friendly name (a REF naming it would then match both).
    fn check_export_name(&self, entry: &Entry, name: &str) -> Result<(), StoreError> {
        let holder = |sql: &str| -> Result<Option<String>, StoreError> {
            self.conn
                .query_row(sql, params![name, entry.thumbprint], |r| r.get(0))
                .optional()
                .map_err(|e| self.db_err(e))
        };
        if let Some(thumbprint) =
            holder("SELECT thumbprint FROM entries WHERE export_name = ?1 AND thumbprint != ?2")?
        {
            return Err(StoreError::ExportNameTaken {
                name: name.into(),
                thumbprint,
            });
        }
        if let Some(thumbprint) =
            holder("SELECT thumbprint FROM entries WHERE name = ?1 AND thumbprint != ?2")?
        {
            return Err(StoreError::NameClash {
                name: name.into(),
                what: "friendly name",
                thumbprint,
            });
        }
        Ok(())
    }

    /// Commits `name` as the entry's export name; returns the one it had.
    fn record_export_name(&self, entry: &Entry, name: &str) -> Result<Option<String>, StoreError> {
        let db_path = self.db_path();
        let db = |e| StoreError::db(&db_path, e);
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )
        .map_err(db)?;
        self.check_export_name(entry, name)?;
        let previous: Option<String> = tx
            .query_row(
                "SELECT export_name FROM entries WHERE thumbprint = ?1",
                [&entry.thumbprint],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?
            .ok_or_else(|| StoreError::NotFound {
                reference: entry.thumbprint.clone(),
                closest: Vec::new(),
            })?;
        tx.execute(
            "UPDATE entries SET export_name = ?1 WHERE thumbprint = ?2",
            params![name, entry.thumbprint],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(previous)
    }

    /// Opens the export directory without following a symbolic link, creating it
    /// (mode 0755, whatever the umask) when missing and `create`, and checks it on the
    /// descriptor.
    fn open_export_dir(&self, path: &Path, create: bool) -> Result<File, StoreError> {
        let home_owner = std::fs::metadata(self.dir())
            .map_err(|e| StoreError::io(self.dir(), e))?
            .uid();
        let refuse = |problem| StoreError::ExportDir {
            dir: path.to_path_buf(),
            problem,
        };
        let open = || {
            OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(path)
        };
        // With O_DIRECTORY, Linux reports a symbolic link as ENOTDIR: ask lstat which.
        let classify = |e: std::io::Error| match e.raw_os_error() {
            Some(libc::ELOOP | libc::ENOTDIR) => match std::fs::symlink_metadata(path) {
                Ok(m) if m.file_type().is_symlink() => refuse(ExportDirProblem::Symlink),
                _ => refuse(ExportDirProblem::NotADirectory),
            },
            _ => StoreError::io(path, e),
        };
        let mut created = false;
        let dir = match open() {
            Ok(dir) => dir,
            Err(e) if create && e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(parent) = path.parent().filter(|p| !p.exists()) {
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(DIR_MODE)
                        .create(parent)
                        .map_err(|e| export_io(path, e))?;
                }
                match std::fs::DirBuilder::new().mode(DIR_MODE).create(path) {
                    Ok(()) => created = true,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(export_io(path, e)),
                }
                open().map_err(classify)?
            }
            Err(e) => return Err(classify(e)),
        };
        if created {
            // mkdir's mode was narrowed by the umask; the applications must read it.
            dir.set_permissions(std::fs::Permissions::from_mode(DIR_MODE))
                .map_err(|e| export_io(path, e))?;
        }
        let meta = dir.metadata().map_err(|e| StoreError::io(path, e))?;
        if meta.uid() != home_owner && meta.uid() != 0 {
            return Err(refuse(ExportDirProblem::Owner {
                owner: meta.uid(),
                expected: home_owner,
            }));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(refuse(ExportDirProblem::Writable {
                mode: meta.mode() & 0o7777,
            }));
        }
        Ok(dir)
    }
}

/// The export file's bytes, if there is one; refuses what is not a regular file.
fn read_existing(dir: &File, dir_path: &Path, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
    let not_a_file = || StoreError::ExportDir {
        dir: dir_path.to_path_buf(),
        problem: ExportDirProblem::TargetNotAFile { name: name.into() },
    };
    let fd = match openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(Errno::ELOOP) => return Err(not_a_file()),
        Err(errno) => return Err(StoreError::io(dir_path.join(name), errno.into())),
    };
    let mut file = File::from(fd);
    let meta = file
        .metadata()
        .map_err(|e| StoreError::io(dir_path.join(name), e))?;
    if !meta.is_file() {
        return Err(not_a_file());
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| StoreError::io(dir_path.join(name), e))?;
    Ok(Some(bytes))
}

/// Writes `bytes` to a new temporary file beside `name` (mode 0644, synced); returns
/// its name.
fn write_temp(dir: &File, dir_path: &Path, name: &str, bytes: &[u8]) -> Result<String, StoreError> {
    let temp = format!(".{name}.tmp-{}", std::process::id());
    // A leftover of a killed run with the same process id.
    let _ = unlinkat(dir, temp.as_str(), UnlinkatFlags::NoRemoveDir);
    let fd = openat(
        dir,
        temp.as_str(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(FILE_MODE),
    )
    .map_err(|errno| write_error(dir_path, errno))?;
    let mut file = File::from(fd);
    let result = (|| {
        // The umask may have narrowed the mode; the applications must read it.
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(e) = result {
        let _ = unlinkat(dir, temp.as_str(), UnlinkatFlags::NoRemoveDir);
        return Err(export_io(dir_path, e));
    }
    Ok(temp)
}

/// A failed write in the export directory: a full disk, a directory that cannot be
/// written, or another I/O error.
fn write_error(dir: &Path, errno: Errno) -> StoreError {
    export_io(dir, errno.into())
}

fn export_io(dir: &Path, e: std::io::Error) -> StoreError {
    match e.raw_os_error() {
        Some(libc::EROFS) | Some(libc::EACCES) | Some(libc::EPERM) => StoreError::ExportDir {
            dir: dir.to_path_buf(),
            problem: ExportDirProblem::ReadOnly,
        },
        _ => StoreError::io(dir, e),
    }
}

/// The thumbprint of the certificate in `bytes` (DER or PEM), if it holds one, and
/// what to call it in a message.
fn describe(bytes: &[u8]) -> (Option<String>, String) {
    match certkeeper_core::read_file(bytes, None)
        .ok()
        .and_then(|c| c.certs.into_iter().next())
    {
        Some(found) => (
            Some(found.cert.thumbprint.clone()),
            format!(
                "{} (thumbprint {})",
                found.cert.subject,
                &found.cert.thumbprint[..16]
            ),
        ),
        None => (
            None,
            format!("a file that is not a certificate ({} bytes)", bytes.len()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use certkeeper_testkit::{Spec, TestCert};

    use super::Replace;
    use crate::{Home, ImportOptions, Setting, StoreError};

    #[test]
    fn a_commit_that_fails_leaves_the_export_file_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let (mut home, _) = Home::init(&dir.path().join("home")).unwrap();
        let leaf = TestCert::self_signed(&Spec::client("partner.example"));
        let contents = certkeeper_core::read_file(leaf.pem().as_bytes(), None).unwrap();
        let report = home.import(contents, &ImportOptions::default()).unwrap();
        let entry = home.entry(&report.imported[0].thumbprint).unwrap().unwrap();
        let exports = dir.path().join("exports");
        std::fs::create_dir(&exports).unwrap();
        std::fs::set_permissions(&exports, std::fs::Permissions::from_mode(0o755)).unwrap();
        home.set_setting(Setting::ExportDir, exports.to_str().unwrap())
            .unwrap();
        std::fs::write(exports.join("partner.cer"), b"last year's").unwrap();

        // A deferred foreign key makes the commit itself fail, after the update.
        home.conn
            .execute_batch(
                "CREATE TABLE t(x REFERENCES entries(thumbprint) DEFERRABLE INITIALLY DEFERRED);
                 CREATE TRIGGER t AFTER UPDATE OF export_name ON entries
                 BEGIN INSERT INTO t VALUES ('no such entry'); END;",
            )
            .unwrap();
        match home.export_as(&entry, "partner.cer", Replace::Anything) {
            Err(StoreError::Database { .. }) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(
            std::fs::read(exports.join("partner.cer")).unwrap(),
            b"last year's"
        );
        assert_eq!(std::fs::read_dir(&exports).unwrap().count(), 1);
        assert_eq!(
            home.entry(&entry.thumbprint).unwrap().unwrap().export_name,
            None
        );

        home.conn.execute_batch("DROP TRIGGER t").unwrap();
        let exported = home
            .export_as(&entry, "partner.cer", Replace::Anything)
            .unwrap();
        assert_eq!(std::fs::read(&exported.path).unwrap(), entry.der);
        assert_eq!(
            home.entry(&entry.thumbprint)
                .unwrap()
                .unwrap()
                .export_name
                .as_deref(),
            Some("partner.cer")
        );
    }
}
