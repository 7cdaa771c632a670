//! Homes and sockets that someone else made are not trusted: each attack here is run
//! as it would happen (another uid prepares the files first, then root uses them),
//! and each must be refused with exit 4 and one line saying what is wrong and how to
//! fix it, before anything in the home is read.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use crate::agent::shared_binary;
use crate::common::{Env, stderr};

const OTHER: u32 = 4713;

fn chown(path: &std::path::Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).unwrap();
}

fn assert_untrusted(out: &std::process::Output, what: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(4), "{what}: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{what}: {err}");
    assert!(
        err.contains("not trusted") && err.contains("fix:"),
        "{what}: {err}"
    );
}

#[test]
fn a_home_another_user_made_first_is_refused() {
    let env = Env::new();
    // Another user creates the directory before the administrator's init.
    std::fs::create_dir(&env.home).unwrap();
    chown(&env.home, OTHER);
    let out = env.run(&["init"]);
    assert_untrusted(&out, "init");
    assert!(
        stderr(&out).contains(&format!("uid {OTHER}")),
        "{}",
        stderr(&out)
    );
    assert!(!env.home.join("master.key").exists());
}

#[test]
fn a_planted_master_key_is_refused() {
    let env = Env::new();
    std::fs::create_dir(&env.home).unwrap();
    std::fs::set_permissions(&env.home, std::fs::Permissions::from_mode(0o700)).unwrap();
    // A key file someone else wrote (say while the directory was open to them).
    let key = env.home.join("master.key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    chown(&key, OTHER);
    let out = env.run(&["init"]);
    assert_untrusted(&out, "init with a planted key");
    assert!(stderr(&out).contains("master.key"), "{}", stderr(&out));
    // Nothing was created beside it.
    assert!(!env.home.join("certkeeper.db").exists());
}

#[test]
fn symlinks_and_open_modes_in_a_home_are_refused_at_every_open() {
    let env = Env::new();
    env.ok(&["init"]);
    // The audit log pointed at a file of root's choosing... by someone else.
    let target = env.dir.path().join("victim");
    std::fs::write(&target, "precious\n").unwrap();
    std::os::unix::fs::symlink(&target, env.home.join("audit.log")).unwrap();
    assert_untrusted(&env.run(&["list"]), "symlinked audit.log");
    let sockdir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(sockdir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = env
        .cmd()
        .args(["agent", "--socket"])
        .arg(sockdir.path().join("a.sock"))
        .output()
        .unwrap();
    assert_untrusted(&out, "agent on a symlinked audit.log");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
    std::fs::remove_file(env.home.join("audit.log")).unwrap();

    // A master key readable by others, a home writable by others.
    let key = env.home.join("master.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = env.run(&["list"]);
    assert_untrusted(&out, "master.key 0644");
    assert!(stderr(&out).contains("chmod 600"), "{}", stderr(&out));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&env.home, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = env.run(&["list"]);
    assert_untrusted(&out, "home 0777");
    assert!(stderr(&out).contains("chmod 700"), "{}", stderr(&out));
    std::fs::set_permissions(&env.home, std::fs::Permissions::from_mode(0o700)).unwrap();
    // The database replaced by a symbolic link.
    let db = env.home.join("certkeeper.db");
    std::fs::rename(&db, env.dir.path().join("elsewhere.db")).unwrap();
    std::os::unix::fs::symlink(env.dir.path().join("elsewhere.db"), &db).unwrap();
    assert_untrusted(&env.run(&["list"]), "symlinked database");
    std::fs::remove_file(&db).unwrap();
    std::fs::rename(env.dir.path().join("elsewhere.db"), &db).unwrap();
    env.ok(&["list"]);
}

#[test]
fn the_agent_refuses_a_socket_directory_others_control_and_a_busy_agent() {
    let env = Env::new();
    env.ok(&["init"]);
    let start = |socket: &std::path::Path| {
        Command::new(shared_binary())
            .arg("--home")
            .arg(&env.home)
            .arg("agent")
            .arg("--socket")
            .arg(socket)
            .output()
            .unwrap()
    };
    // A directory another user owns: they could swap the socket for a symlink.
    let theirs = tempfile::tempdir().unwrap();
    chown(theirs.path(), OTHER);
    let out = start(&theirs.path().join("agent.sock"));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("belongs to uid {OTHER}")),
        "{}",
        stderr(&out)
    );
    // A directory anyone may write.
    let open = tempfile::tempdir().unwrap();
    std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = start(&open.path().join("agent.sock"));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("writable by other users"),
        "{}",
        stderr(&out)
    );

    // A live agent whose backlog is full is busy, not stale: it is not replaced.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("agent.sock");
    use nix::sys::socket::{
        AddressFamily, Backlog, SockFlag, SockType, UnixAddr, bind, connect, listen, socket,
    };
    use std::os::fd::AsRawFd;
    let server = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )
    .unwrap();
    bind(server.as_raw_fd(), &UnixAddr::new(&path).unwrap()).unwrap();
    listen(&server, Backlog::new(0).unwrap()).unwrap();
    let mut queued = Vec::new();
    for _ in 0..4 {
        let c = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK,
            None,
        )
        .unwrap();
        let _ = connect(c.as_raw_fd(), &UnixAddr::new(&path).unwrap());
        queued.push(c);
    }
    let inode = std::fs::metadata(&path).unwrap().ino();
    let out = start(&path);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("too busy"), "{}", stderr(&out));
    assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode, "replaced");

    // The agent's own socket: 0666 from the start, in a directory it checked.
    drop(queued);
    drop(server);
    std::fs::remove_file(&path).unwrap();
    let mut agent = crate::agent::RunningAgent::start(&env);
    let mode = std::fs::metadata(&agent.socket)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o666);
    agent.stop();
}
