//! Bad input through the real binary: every damaged file gives one line naming the
//! file and the problem, exit 2, and leaves the home as it was; so do a full disk, a
//! read-only home and a killed process.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use certkeeper_testkit::{Pki, Spec, TestCert, corpus, mutations, tools};

use crate::common::{Env, openssl, openssl_pfx, stderr};

/// The home's entries, read in-process (fast enough to run after every mutation).
fn entries(env: &Env) -> Vec<String> {
    let home = certkeeper_store::Home::open(&env.home).unwrap();
    let mut v: Vec<String> = home
        .list(None)
        .unwrap()
        .into_iter()
        .map(|e| format!("{}:{}:{}", e.thumbprint, e.store, e.has_key))
        .collect();
    v.sort();
    v
}

fn generated_files(env: &Env) -> Vec<(String, Option<&'static str>)> {
    let pki = Pki::new();
    pki.write_pem(env.dir.path());
    let chain = env.write(
        "chain.pem",
        format!("{}{}", pki.inter.pem(), pki.root.pem()),
    );
    let pfx = openssl_pfx(env, "gen.pfx", "pw", &[]);
    let legacy = openssl_pfx(env, "gen-legacy.pfx", "pw", &["-legacy"]);
    let key = env.path("leaf.key");
    let p7b = env.path("gen.p7b");
    openssl(&[
        "crl2pkcs7",
        "-nocrl",
        "-certfile",
        &chain,
        "-outform",
        "DER",
        "-out",
        &p7b,
    ]);
    let enc =
        String::from_utf8(openssl(&["pkcs8", "-topk8", "-in", &key, "-passout", "pass:pw"]).stdout)
            .unwrap();
    let enc_key = env.write("gen-enc.pem", format!("{}{enc}", pki.leaf.pem()));
    let der = env.write("gen.cer", &pki.leaf.der);
    vec![
        (pfx, Some("pw")),
        (legacy, Some("pw")),
        (p7b, None),
        (enc_key, Some("pw")),
        (der, None),
        (chain, None),
    ]
}

#[test]
fn damaged_files_give_one_line_exit_2_and_write_nothing() {
    let env = Env::new();
    let mut sources = generated_files(&env);
    let v = corpus("cryptography_vectors");
    for (f, pw) in [
        ("pkcs12/cert-key-aes256cbc.p12", Some("cryptography")),
        ("pkcs12/no-password.p12", None),
        ("pkcs12/name-2-3-pwd.p12", Some("password")),
        ("pkcs7/amazon-roots.p7b", None),
        ("pkcs7/isrg.pem", None),
    ] {
        sources.push((v.join(f).display().to_string(), pw));
    }
    env.ok(&["init"]);
    let mut runs = 0;
    for (source, password) in &sources {
        let bytes = std::fs::read(source).unwrap();
        for (what, mutated) in mutations(&bytes) {
            let file = env.write("mutated.bin", &mutated);
            let before = entries(&env);
            let out = env.run_env(
                &["import", &file, "--password-env", "PW"],
                "PW",
                password.unwrap_or(""),
            );
            runs += 1;
            match out.status.code() {
                Some(0) => {}
                Some(2) => {
                    let err = stderr(&out);
                    assert_eq!(err.lines().count(), 1, "{source} {what}: {err}");
                    assert!(
                        err.starts_with(&format!("certkeeper: {file}: ")),
                        "{source} {what}: {err}"
                    );
                    assert_eq!(
                        entries(&env),
                        before,
                        "{source} {what}: home changed after a failure"
                    );
                }
                other => panic!("{source} {what}: exit {other:?}: {}", stderr(&out)),
            }
        }
    }
    assert!(runs > 250);
}

#[test]
fn each_kind_of_bad_input_has_its_own_message() {
    let env = Env::new();
    let pki = Pki::new();
    pki.write_pem(env.dir.path());
    let key = env.path("leaf.key");
    let pfx = openssl_pfx(&env, "p.pfx", "right", &[]);
    let bytes = std::fs::read(&pfx).unwrap();
    let truncated = env.write("truncated.pfx", &bytes[..bytes.len() - 40]);
    let random = env.write(
        "random.bin",
        (0..300u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<_>>(),
    );
    let text = env.write(
        "notes.txt",
        "these are not the certificates you are looking for\n",
    );
    let empty = env.write("empty.cer", b"");
    let csr_pem =
        String::from_utf8(openssl(&["req", "-new", "-key", &key, "-subj", "/CN=x"]).stdout)
            .unwrap();
    let csr = env.write("request.csr", csr_pem);
    let other = TestCert::self_signed(&Spec::client("other"));
    let lonely_key = env.write("lonely.key", other.key_pem());
    let dir = env.dir.path().display().to_string();

    let cases: Vec<(Vec<&str>, &str, i32)> = vec![
        (vec![&pfx, "--password-env", "PW"], "wrong password", 2),
        (vec![&pfx], "is encrypted; give its password", 2),
        (vec![&truncated, "--password-env", "OK"], "is damaged", 2),
        (vec![&random], "is not a certificate or key file", 2),
        (vec![&text], "is not a certificate or key file", 2),
        (vec![&empty], "is not a certificate or key file", 2),
        (
            vec![&csr],
            "holds no certificates or keys (PEM with only CERTIFICATE REQUEST)",
            2,
        ),
        (vec![&lonely_key], "matches no certificate", 2),
        (
            vec!["/nonexistent/partner.pfx"],
            "cannot read: no such file",
            2,
        ),
        (vec![&dir], "cannot read: is a directory", 2),
    ];
    for (args, expect, code) in cases {
        let mut all = vec!["import"];
        all.extend(args.iter().copied());
        let out = Command::new(env!("CARGO_BIN_EXE_certkeeper"))
            .arg("--home")
            .arg(&env.home)
            .args(&all)
            .env("PW", "wrong")
            .env("OK", "right")
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        let last = err.lines().last().unwrap_or_default();
        assert!(
            last.contains(args[0]) && last.contains(expect),
            "{args:?}: {err}"
        );
    }
    assert!(entries(&env).is_empty());
}

/// A tmpfs mounted for one test, unmounted on drop.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        // Both up front: the unmount runs in Drop, where a panic would abort.
        tools::require("umount");
        let ok = tools::command("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("skipped: mounting a tmpfs needs root (CI runs as root)");
            return None;
        }
        Some(Tmpfs { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount(&self, option: &str) {
        let status = tools::command("mount")
            .args(["-o", &format!("remount,{option}")])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = tools::command("umount").arg(self.dir.path()).status();
    }
}

/// A home on `fs` holding one certificate, its entries, and a .pfx ready to import.
fn seeded_home(fs: &Tmpfs) -> (Env, Vec<String>, String) {
    let env = Env::in_dir(fs.path());
    let first = env.write(
        "first.pem",
        TestCert::self_signed(&Spec::client("first")).pem(),
    );
    env.ok(&["import", &first]);
    let before = entries(&env);
    Pki::new().write_pem(env.dir.path());
    let pfx = openssl_pfx(&env, "p.pfx", "pw", &[]);
    (env, before, pfx)
}

#[test]
fn a_full_disk_fails_cleanly_and_loses_nothing() {
    let Some(fs) = Tmpfs::mount("4m") else { return };
    let (env, before, pfx) = seeded_home(&fs);
    // Fill the disk.
    let filler = fs.path().join("filler");
    let _ = tools::command("dd")
        .args(["if=/dev/zero", "bs=64k"])
        .arg(format!("of={}", filler.display()))
        .output();
    let out = env.run_env(&["import", &pfx, "--password-env", "PW"], "PW", "pw");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("disk is full") && err.contains("nothing was written"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(entries(&env), before);
    env.run_env(&["import", &pfx, "--password-env", "PW"], "PW", "pw");
    assert_eq!(entries(&env).len(), 2);
}

#[test]
fn a_read_only_home_fails_cleanly() {
    let Some(fs) = Tmpfs::mount("16m") else {
        return;
    };
    let (env, before, pfx) = seeded_home(&fs);
    fs.remount("ro");
    let out = env.run_env(&["import", &pfx, "--password-env", "PW"], "PW", "pw");
    fs.remount("rw");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("read-only"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(entries(&env), before);
}

#[test]
fn a_killed_import_leaves_all_or_nothing() {
    let env = Env::new();
    env.ok(&["init"]);
    let issuer = TestCert::self_signed(&Spec::ca("Bulk CA"));
    let bundle: String = (0..600)
        .map(|i| issuer.issue(&Spec::client(&format!("bulk {i}"))).pem())
        .collect();
    let file = env.write("bulk.pem", bundle);
    for delay_ms in [5u64, 20, 40, 80, 160] {
        let mut child = env
            .cmd()
            .args(["import", &file])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = child.wait();
        let n = entries(&env).len();
        assert!(
            n == 0 || n == 600,
            "after a kill at {delay_ms} ms: {n} entries"
        );
        if n == 600 {
            break;
        }
    }
    // The home is sound: a full import works.
    env.ok(&["import", &file]);
    assert_eq!(entries(&env).len(), 600);
}

#[test]
fn a_failed_export_leaves_the_export_name_and_the_file_as_they_were() {
    let Some(fs) = Tmpfs::mount("1m") else { return };
    let env = Env::new();
    let pki = Pki::new();
    let f = env.write(
        "leaf.pem",
        format!("{}{}", pki.leaf.pem(), pki.leaf.key_pem()),
    );
    env.ok(&["import", &f, "--name", "partner"]);
    env.ok(&["export", "partner", "--as", "old.cer"]);
    let exports = fs.path().join("exports");
    std::fs::create_dir(&exports).unwrap();
    std::fs::set_permissions(&exports, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.ok(&["config", "export_dir", exports.to_str().unwrap()]);
    let export_name = || env.json(&["show", "partner"])["export_name"].clone();
    let listing = || {
        let mut names: Vec<String> = std::fs::read_dir(&exports)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    // Another certificate under the agreed name, to be replaced with --force.
    let other = TestCert::self_signed(&Spec::client("other.example"));
    std::fs::write(exports.join("new.cer"), &other.der).unwrap();

    // The export directory's disk is full.
    let filler = fs.path().join("filler");
    let _ = certkeeper_testkit::tools::command("dd")
        .args(["if=/dev/zero", "bs=4k"])
        .arg(format!("of={}", filler.display()))
        .output();
    let out = env.run(&["export", "partner", "--as", "new.cer", "--force"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("disk is full") && err.contains("nothing was written"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(export_name(), "old.cer");
    assert_eq!(listing(), ["new.cer"]);
    assert_eq!(std::fs::read(exports.join("new.cer")).unwrap(), other.der);
    std::fs::remove_file(&filler).unwrap();

    // The export directory is read-only.
    fs.remount("ro");
    let out = env.run(&["export", "partner", "--as", "new.cer", "--force"]);
    fs.remount("rw");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains(&format!(
            "export directory {} cannot be written",
            exports.display()
        )),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(export_name(), "old.cer");
    assert_eq!(listing(), ["new.cer"]);
    assert_eq!(std::fs::read(exports.join("new.cer")).unwrap(), other.der);

    // Room again: both change together.
    env.ok(&["export", "partner", "--as", "new.cer", "--force"]);
    assert_eq!(export_name(), "new.cer");
    assert_eq!(
        std::fs::read(exports.join("new.cer")).unwrap(),
        pki.leaf.der
    );
}
