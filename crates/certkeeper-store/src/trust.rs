//! Whether a home may be trusted: a home is its owner's alone, so every file in it
//! that holds or guards keys must be the owner's, a plain file (never a symlink), and
//! writable by no one else. Checked at `init` and at every open, before anything in the
//! home is read; `doctor` reports the same.
//!
//! Once the home directory itself is known to be the owner's and not writable by
//! others, nobody else can swap a file inside it, so checking each file by
//! `symlink_metadata` and then opening it by path has no race.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::StoreError;
use crate::principal::Principal;

/// The files of a home that are checked (when present).
pub const FILES: [&str; 5] = [
    crate::home::MASTER_KEY_FILE,
    crate::home::DB_FILE,
    "certkeeper.db-wal",
    "certkeeper.db-shm",
    "audit.log",
];

/// The system account the Debian package runs the agent as; root may administer a
/// home it owns.
pub const SERVICE_USER: &str = "certkeeper";

/// Checks `dir` and its files; `Ok` when each is owned by the home's owner, who is
/// the running user (or, for root, root or the packaged service user), is of the
/// right type, and is writable by no one else (the master key: readable by no one
/// else either). A missing directory or file is fine: `init` creates it.
pub fn check_home(dir: &Path) -> Result<(), StoreError> {
    let untrusted = |path: &Path, problem: String, fix: String| StoreError::Untrusted {
        path: path.to_path_buf(),
        problem,
        fix,
    };
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let me = nix::unistd::geteuid().as_raw();
            return check_ancestors(dir, me).map_err(|(ancestor, problem)| {
                untrusted(
                    &ancestor,
                    problem,
                    "make the home under directories only root (or you) may change".into(),
                )
            });
        }
        Err(e) => return Err(StoreError::io(dir, e)),
    };
    if meta.file_type().is_symlink() {
        return Err(untrusted(
            dir,
            "is a symbolic link".into(),
            "give the real directory with --home".into(),
        ));
    }
    if !meta.is_dir() {
        return Err(untrusted(
            dir,
            "is not a directory".into(),
            "choose another --home".into(),
        ));
    }
    let me = nix::unistd::geteuid().as_raw();
    let owner = meta.uid();
    if let Err((ancestor, problem)) = check_ancestors(dir, owner) {
        return Err(untrusted(
            &ancestor,
            problem,
            format!(
                "keep the home under directories only root (or {}) may change",
                who_name(owner)
            ),
        ));
    }
    if !acceptable_owner(owner, me) {
        return Err(untrusted(
            dir,
            format!(
                "belongs to {}, not to this user ({})",
                Principal::describe_uid(owner),
                Principal::describe_uid(me)
            ),
            format!(
                "if it is yours, take it over: chown -R {} {}; else choose another --home",
                who_name(me),
                dir.display()
            ),
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(untrusted(
            dir,
            format!(
                "is writable by other users (mode {:o})",
                meta.mode() & 0o7777
            ),
            format!("chmod 700 {}", dir.display()),
        ));
    }
    for name in FILES {
        let path = dir.join(name);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::io(&path, e)),
        };
        if meta.file_type().is_symlink() || !meta.is_file() {
            return Err(untrusted(
                &path,
                "is not a regular file (a symbolic link or something else)".into(),
                format!(
                    "remove it and find out who put it there: ls -l {}",
                    path.display()
                ),
            ));
        }
        if meta.uid() != owner {
            return Err(untrusted(
                &path,
                format!(
                    "belongs to {}, not to the home's owner {}",
                    Principal::describe_uid(meta.uid()),
                    Principal::describe_uid(owner)
                ),
                format!(
                    "someone else made it: check it, then chown {} {}",
                    who_name(owner),
                    path.display()
                ),
            ));
        }
        let forbidden = if name == crate::home::MASTER_KEY_FILE {
            0o077
        } else {
            0o022
        };
        if meta.mode() & forbidden != 0 {
            return Err(untrusted(
                &path,
                format!("is open to other users (mode {:o})", meta.mode() & 0o7777),
                format!("chmod 600 {}", path.display()),
            ));
        }
    }
    Ok(())
}

/// Every directory above `path` (after resolving symbolic links) must belong to root,
/// the running user or `owner`, and be writable by no one else unless sticky (as
/// /tmp): otherwise whoever may write it can swap `path` for a directory of their own
/// between a check and an open. `Err` names the directory and what is wrong.
pub fn check_ancestors(path: &Path, owner: u32) -> Result<(), (std::path::PathBuf, String)> {
    // A path still to be made (init) is made inside its nearest existing ancestor,
    // which must then be trusted as well.
    let (start, skip) = if path.exists() {
        (path, 1)
    } else {
        match path.ancestors().skip(1).find(|a| a.exists()) {
            Some(a) => (a, 0),
            None => return Ok(()),
        }
    };
    let start = if start.as_os_str().is_empty() {
        Path::new(".")
    } else {
        start
    };
    let Ok(real) = std::fs::canonicalize(start) else {
        return Ok(());
    };
    let me = nix::unistd::geteuid().as_raw();
    for ancestor in real.ancestors().skip(skip) {
        let Ok(meta) = std::fs::metadata(ancestor) else {
            continue;
        };
        let uid = meta.uid();
        if uid != 0 && uid != me && uid != owner {
            return Err((
                ancestor.to_path_buf(),
                format!(
                    "above the path, belongs to {}",
                    Principal::describe_uid(uid)
                ),
            ));
        }
        if meta.mode() & 0o022 != 0 && meta.mode() & 0o1000 == 0 {
            return Err((
                ancestor.to_path_buf(),
                format!(
                    "above the path, is writable by other users (mode {:o})",
                    meta.mode() & 0o7777
                ),
            ));
        }
    }
    Ok(())
}

/// The home's owner must be the running user; root may also administer a home of
/// the packaged service user.
fn acceptable_owner(owner: u32, me: u32) -> bool {
    owner == me || (me == 0 && Principal::user_name(owner).as_deref() == Some(SERVICE_USER))
}

fn who_name(uid: u32) -> String {
    Principal::user_name(uid).unwrap_or_else(|| uid.to_string())
}
