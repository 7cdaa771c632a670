//! The programs the tests run, each with the Debian package that provides it. The
//! list is `tools.tsv`, which `scripts/test-deps.sh` installs from: a program that is
//! missing fails its test with one line naming the package, not a spawn error.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// `tools.tsv`: need (a program on PATH or an absolute path), package, what for.
const TOOLS: &str = include_str!("../tools.tsv");

/// The Debian package that provides `need` (a program name or an absolute path).
///
/// # Panics
/// When `need` is not listed in `tools.tsv`: every external program a test runs is
/// listed there, so that the installer installs it.
pub fn package(need: &str) -> &'static str {
    TOOLS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .find_map(|l| {
            let mut fields = l.split('\t');
            (fields.next() == Some(need)).then(|| fields.next()).flatten()
        })
        .unwrap_or_else(|| {
            panic!("{need} is not listed in crates/certkeeper-testkit/tools.tsv: add it with its Debian package")
        })
}

/// Where `need` is: the absolute path itself (a file), or the first executable of
/// that name on `PATH` or in the sbin directories (where nginx and useradd are, and
/// which a user's `PATH` may lack); `None` when it is not there.
pub fn find(need: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from));
    let path = std::env::join_paths(dirs).ok()?;
    find_on(need, Some(&path))
}

/// Checks that `need` is present and returns where it is.
///
/// # Panics
/// With one line, `NEED not found: install it with: apt-get install PACKAGE`.
pub fn require(need: &str) -> PathBuf {
    find(need).unwrap_or_else(|| panic!("{}", missing(need)))
}

fn find_on(need: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    if need.starts_with('/') {
        let p = PathBuf::from(need);
        return p.is_file().then_some(p);
    }
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    std::env::split_paths(path?)
        .map(|dir| dir.join(need))
        .find(|p| executable(p))
}

/// The one line a test fails with when `need` is missing.
fn missing(need: &str) -> String {
    format!(
        "{need} not found: install it with: apt-get install {}",
        package(need)
    )
}

/// A `Command` for `program`, found first (see [`require`]).
pub fn command(program: &str) -> Command {
    Command::new(require(program))
}

/// Runs `program` with `args` and returns its output, asserting that it succeeded.
pub fn run(program: &str, args: &[&str]) -> Output {
    let out = command(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} did not start: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed with {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).trim_end()
    );
    out
}

/// A system account of its own for one test: a user whose supplementary group is a
/// group made for it, in the system's user and group databases. Names are unique per
/// process and account, so tests running in parallel never share one; both are
/// removed on drop, also when the test fails.
pub struct TestAccount {
    /// The user's name.
    pub user: String,
    /// The supplementary group's name.
    pub group: String,
    /// The user's uid.
    pub uid: u32,
    /// The user's primary gid (`nogroup`'s, not the supplementary group's).
    pub gid: u32,
    user_made: bool,
}

impl TestAccount {
    /// Creates the group and the user (needs root).
    ///
    /// # Panics
    /// When a tool is missing or fails; what was made so far is removed.
    pub fn create() -> TestAccount {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        for tool in ["groupadd", "groupdel", "useradd", "userdel", "id"] {
            // Checked before anything is made: the removal runs in Drop.
            require(tool);
        }
        let tag = format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let group = format!("ck-g{tag}");
        run("groupadd", &[&group]);
        // From here on, Drop removes what was made.
        let mut account = TestAccount {
            user: format!("ck-u{tag}"),
            group,
            uid: 0,
            gid: 0,
            user_made: false,
        };
        run(
            "useradd",
            &[
                "-M",
                "-N",
                "-g",
                "nogroup",
                "-G",
                &account.group,
                "-s",
                "/usr/sbin/nologin",
                &account.user,
            ],
        );
        account.user_made = true;
        let id = |flag: &str| -> u32 {
            let out = run("id", &[flag, &account.user]);
            let text = String::from_utf8_lossy(&out.stdout);
            text.trim()
                .parse()
                .unwrap_or_else(|_| panic!("id {flag} {}: {text:?}", account.user))
        };
        account.uid = id("-u");
        account.gid = id("-g");
        account
    }
}

impl Drop for TestAccount {
    fn drop(&mut self) {
        // No panics here (this runs while a failing test unwinds): report and go on.
        let remove = |program: &str, name: &str| match Command::new(
            find(program).unwrap_or_else(|| program.into()),
        )
        .arg(name)
        .output()
        {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "{program} {name}: {}",
                String::from_utf8_lossy(&out.stderr).trim_end()
            ),
            Err(e) => eprintln!("{program} {name}: {e}"),
        };
        if self.user_made {
            remove("userdel", &self.user);
        }
        remove("groupdel", &self.group);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_need_has_a_package_and_a_purpose() {
        let rows: Vec<&str> = TOOLS
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .collect();
        assert!(rows.len() > 10, "{rows:?}");
        for line in rows {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 3, "tools.tsv: {line:?}");
            assert!(fields.iter().all(|f| !f.trim().is_empty()), "{line:?}");
            assert_eq!(package(fields[0]), fields[1]);
        }
    }

    #[test]
    fn a_missing_program_is_one_line_naming_its_package() {
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(find_on("nginx", Some(empty.path().as_os_str())), None);
        assert_eq!(find_on("nginx", None), None);
        assert_eq!(
            missing("nginx"),
            "nginx not found: install it with: apt-get install nginx"
        );
        assert_eq!(
            missing("pk12util"),
            "pk12util not found: install it with: apt-get install libnss3-tools"
        );
        assert_eq!(find_on("/nonexistent/python3", None), None);
    }

    #[test]
    fn a_program_is_found_only_when_executable() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("openssl");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(find_on("openssl", Some(dir.path().as_os_str())), None);
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_on("openssl", Some(dir.path().as_os_str())), Some(tool));
    }

    #[test]
    #[should_panic(expected = "is not listed in crates/certkeeper-testkit/tools.tsv")]
    fn an_unlisted_program_is_refused() {
        package("wget");
    }

    /// Whether the user or group database has `name` (getent, as an administrator checks).
    fn known(database: &str, name: &str) -> bool {
        command("getent")
            .args([database, name])
            .output()
            .unwrap()
            .status
            .success()
    }

    #[test]
    fn a_test_account_is_removed_also_when_its_test_fails() {
        let uid = String::from_utf8(run("id", &["-u"]).stdout).unwrap();
        if uid.trim() != "0" {
            eprintln!("skipped: creating accounts needs root (CI runs as root)");
            return;
        }
        let (first, second) = (TestAccount::create(), TestAccount::create());
        assert_ne!(first.user, second.user);
        assert_ne!(first.uid, second.uid);
        assert!(known("passwd", &first.user) && known("group", &first.group));
        let members = String::from_utf8(
            command("getent")
                .args(["group", &first.group])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        assert!(members.trim_end().ends_with(&first.user), "{members}");
        let names = (first.user.clone(), first.group.clone());
        drop(first);
        assert!(!known("passwd", &names.0) && !known("group", &names.1));

        let names = (second.user.clone(), second.group.clone());
        let failed = std::panic::catch_unwind(move || {
            let _account = second;
            panic!("the test fails");
        });
        assert!(failed.is_err());
        assert!(!known("passwd", &names.0) && !known("group", &names.1));
    }
}
