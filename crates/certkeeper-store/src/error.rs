//! Errors of the home and its database.

use std::path::PathBuf;

use certkeeper_core::FormatError;

/// What can go wrong with a home.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The home does not exist or was never initialised.
    #[error("no certkeeper home at {dir} (create it with: certkeeper init --home {dir})")]
    NotInitialized {
        /// The directory.
        dir: PathBuf,
    },
    /// The home exists but belongs to another user, who alone may open it.
    #[error("the home {dir} belongs to {owner} and this user ({user}) cannot open it")]
    NotOwner {
        /// The directory.
        dir: PathBuf,
        /// Its owner, as "root (uid 0)".
        owner: String,
        /// The calling user, as "appsvc (uid 1001)".
        user: String,
    },
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The disk holding the home is full; nothing was written.
    #[error("{dir}: the disk is full; nothing was written")]
    DiskFull {
        /// The home or file.
        dir: PathBuf,
    },
    /// A file of the home is not the owner's alone (another user made it, a
    /// symbolic link, writable by others): nothing in the home is used.
    #[error("{path} {problem}: the home is not trusted (fix: {fix})")]
    Untrusted {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong.
        problem: String,
        /// How to fix it.
        fix: String,
    },
    /// The home cannot be written (read-only file system or permissions).
    #[error("{dir}: the home is read-only; nothing was written")]
    ReadOnly {
        /// The home.
        dir: PathBuf,
    },
    /// The database reported an error.
    #[error("database {path}: {source}")]
    Database {
        /// The database file.
        path: PathBuf,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// The database was written by a newer certkeeper.
    #[error("database {path} has schema version {found}; this certkeeper knows up to {known}")]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// Its version.
        found: i64,
        /// What this build knows.
        known: i64,
    },
    /// The master key is missing, unreadable or wrong.
    #[error("master key {path}: {detail}")]
    MasterKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A sealed key does not open with the master key (wrong home, tampering).
    #[error("the private key of {thumbprint} does not decrypt with this home's master key")]
    Unseal {
        /// The entry.
        thumbprint: String,
    },
    /// No entry matches the reference.
    #[error("no certificate matches {reference:?}{}", closest_text(closest))]
    NotFound {
        /// What the user typed.
        reference: String,
        /// Names in the home close to it (at most five, closest first).
        closest: Vec<String>,
    },
    /// Several entries match the reference.
    #[error("{reference:?} matches {} certificates: {}", candidates.len(), candidates.join("; "))]
    Ambiguous {
        /// What the user typed.
        reference: String,
        /// "thumbprint-prefix subject (store)" of each.
        candidates: Vec<String>,
    },
    /// A reference that cannot name anything.
    #[error("{reference:?} is not a certificate reference: {detail}")]
    BadReference {
        /// What the user typed.
        reference: String,
        /// Why.
        detail: String,
    },
    /// The file could not be read as certificates or keys.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// A private key whose certificate is neither in the file nor in the home.
    #[error(
        "a private key matches no certificate in the file or in the home (import the certificate with it)"
    )]
    KeyWithoutCertificate,
    /// `--name` cannot tell which certificate it names.
    #[error(
        "--name needs a file with one certificate or one private key; this one has {certs} certificates"
    )]
    NameAmbiguous {
        /// How many certificates the file holds.
        certs: usize,
    },
    /// The entry has no private key.
    #[error("{subject} has no private key")]
    NoKey {
        /// The entry's subject.
        subject: String,
    },
    /// The key was imported with `--non-exportable`.
    #[error("the private key of {subject} is marked non-exportable")]
    NonExportable {
        /// The entry's subject.
        subject: String,
    },
    /// A move the stores do not allow.
    #[error("{0}")]
    InvalidMove(String),
    /// Another entry already has this export name.
    #[error("export name {name:?} is already used by {thumbprint}")]
    ExportNameTaken {
        /// The name.
        name: String,
        /// The entry that has it.
        thumbprint: String,
    },
    /// The export file already holds another certificate (or something else).
    #[error("{path} already holds {holder}; give --force to replace it")]
    ExportFileTaken {
        /// The file.
        path: PathBuf,
        /// What it holds ("CN=Old Partner (thumbprint 1a2b...)").
        holder: String,
    },
    /// The export directory cannot be trusted or written.
    #[error("export directory {dir} {problem}", problem = problem.describe(dir))]
    ExportDir {
        /// The directory.
        dir: PathBuf,
        /// What is wrong with it.
        problem: ExportDirProblem,
    },
    /// A friendly name that is another entry's export name (or the reverse): a REF
    /// naming one would then match both.
    #[error("{name:?} is already the {what} of {thumbprint}; choose another")]
    NameClash {
        /// The name.
        name: String,
        /// "export name" or "friendly name".
        what: &'static str,
        /// The other entry.
        thumbprint: String,
    },
    /// A setting or value that does not exist or does not parse.
    #[error("{0}")]
    InvalidSetting(String),
    /// A principal that does not exist or does not parse.
    #[error("{0}")]
    InvalidPrincipal(String),
    /// A value given by the user that does not fit.
    #[error("{0}")]
    Invalid(String),
}

/// Why the export directory is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportDirProblem {
    /// It is a symbolic link.
    Symlink,
    /// It is not a directory.
    NotADirectory,
    /// Someone other than the home's owner or root owns it.
    Owner {
        /// Its owner.
        owner: u32,
        /// The home's owner.
        expected: u32,
    },
    /// Group or others may write into it.
    Writable {
        /// Its permission bits.
        mode: u32,
    },
    /// The export file's name is taken by something that is not a regular file.
    TargetNotAFile {
        /// The file name.
        name: String,
    },
    /// It cannot be written (read-only file system or permissions).
    ReadOnly,
}

impl ExportDirProblem {
    /// The problem and its fix, after "export directory DIR ".
    fn describe(&self, dir: &std::path::Path) -> String {
        let d = dir.display();
        match self {
            ExportDirProblem::Symlink => format!(
                "is a symbolic link; point export_dir at the real directory: certkeeper config \
                 export_dir $(realpath {d})"
            ),
            ExportDirProblem::NotADirectory => "is not a directory; remove it, or choose \
                 another: certkeeper config export_dir DIR"
                .to_string(),
            ExportDirProblem::Owner { owner, expected } => format!(
                "is owned by uid {owner}, not by the home's owner (uid {expected}) or root; \
                 fix it with: chown {expected} {d}"
            ),
            ExportDirProblem::Writable { mode } => format!(
                "is writable by group or others (mode {mode:04o}); fix it with: chmod go-w {d}"
            ),
            ExportDirProblem::TargetNotAFile { name } => format!(
                "holds {name} that is not a regular file (a symbolic link or a directory); \
                 remove it: rm {}",
                dir.join(name).display()
            ),
            ExportDirProblem::ReadOnly => "cannot be written (read-only file system or \
                 permissions); nothing was written"
                .to_string(),
        }
    }
}

impl StoreError {
    /// Wraps an I/O error on `path`, recognising a full disk and a read-only home.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        match source.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => StoreError::DiskFull { dir: path },
            Some(libc::EROFS) | Some(libc::EACCES) | Some(libc::EPERM) => {
                StoreError::ReadOnly { dir: path }
            }
            _ => StoreError::Io { path, source },
        }
    }

    /// Wraps a database error, recognising a full disk and a read-only home.
    pub fn db(path: impl Into<PathBuf>, source: rusqlite::Error) -> Self {
        let path = path.into();
        if let rusqlite::Error::SqliteFailure(e, _) = &source {
            // SQLite reports a disk that fills while it creates its WAL and shared
            // memory files as a plain I/O or open error: ask the file system.
            if matches!(
                e.code,
                rusqlite::ErrorCode::SystemIoFailure | rusqlite::ErrorCode::CannotOpen
            ) && disk_is_full(&path)
            {
                return StoreError::DiskFull { dir: path };
            }
            match e.code {
                rusqlite::ErrorCode::DiskFull => return StoreError::DiskFull { dir: path },
                rusqlite::ErrorCode::ReadOnly
                | rusqlite::ErrorCode::CannotOpen
                | rusqlite::ErrorCode::PermissionDenied => {
                    return StoreError::ReadOnly { dir: path };
                }
                _ => {}
            }
        }
        StoreError::Database { path, source }
    }
}

/// "; closest names: a, b" (or nothing).
fn closest_text(closest: &[String]) -> String {
    if closest.is_empty() {
        String::new()
    } else {
        format!("; closest names: {}", closest.join(", "))
    }
}

/// Whether the file system holding `path` has (almost) no space left for us.
fn disk_is_full(path: &std::path::Path) -> bool {
    let dir = path.parent().unwrap_or(path);
    match nix::sys::statvfs::statvfs(dir) {
        Ok(st) => st.blocks_available().saturating_mul(st.fragment_size()) < 256 * 1024,
        Err(_) => false,
    }
}
