//! PKCS#12 files made by the real `openssl`, then damaged: a damaged file read with
//! the right password is called damaged, never "wrong password", whenever some part of
//! it still proves the password right; bytes after a complete file are read past.

use std::ops::Range;
use std::path::Path;
use std::process::Command;

use certkeeper_core::ber::{self, Tlv};
use certkeeper_core::{FormatError, Password, ReadWarning, read_file};

const RIGHT: &str = "right-password";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl is needed by the tests");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An EC P-256 key and certificate, exported as PKCS#12 with `extra` options. The
/// iteration count is low so that thousands of variants read in seconds; the
/// structure is the one every OpenSSL export has.
fn pfx(dir: &Path, name: &str, extra: &[&str]) -> Vec<u8> {
    if !dir.join("cert.pem").exists() {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-subj",
                "/CN=flip",
                "-days",
                "30",
                "-keyout",
                "key.pem",
                "-out",
                "cert.pem",
            ],
        );
    }
    let passout = format!("pass:{RIGHT}");
    let mut args = vec![
        "pkcs12", "-export", "-in", "cert.pem", "-inkey", "key.pem", "-passout", &passout, "-iter",
        "64", "-out", name,
    ];
    args.extend(extra);
    openssl(dir, &args);
    std::fs::read(dir.join(name)).unwrap()
}

fn range_of(file: &[u8], tlv: &Tlv<'_>) -> Range<usize> {
    let start = tlv.raw.as_ptr() as usize - file.as_ptr() as usize;
    start..start + tlv.raw.len()
}

/// The byte ranges of the parts that can prove a password: each encrypted safe and
/// each shrouded key bag (parameters included: a flipped salt spoils its part too).
/// OpenSSL writes DER, so every part is a slice of the file itself.
fn encrypted_parts(file: &[u8]) -> Vec<Range<usize>> {
    let pfx = ber::read_single(file).unwrap().children().unwrap();
    let auth = pfx[1].children().unwrap()[1].children().unwrap()[0];
    let safes = ber::read_single(auth.content).unwrap().children().unwrap();
    let mut parts = Vec::new();
    for safe in &safes {
        let fields = safe.children().unwrap();
        if fields[0].content == [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x06] {
            parts.push(range_of(file, safe));
            continue;
        }
        let octets = fields[1].children().unwrap()[0];
        for bag in ber::read_single(octets.content)
            .unwrap()
            .children()
            .unwrap()
        {
            let id = bag.children().unwrap()[0];
            // pkcs8ShroudedKeyBag, 1.2.840.113549.1.12.10.1.2
            if id.content
                == [
                    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x02,
                ]
            {
                parts.push(range_of(file, &bag));
            }
        }
    }
    parts
}

#[derive(Default, Debug)]
struct Counts {
    damaged: usize,
    wrong_password: usize,
    imported: usize,
    other: usize,
    /// Wrong password where nothing is left to prove the password (allowed).
    wrong_password_unprovable: usize,
}

#[test]
fn flipped_bits_with_the_right_password_are_damage_not_a_wrong_password() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        ("modern (PBES2 AES-256)", pfx(dir.path(), "modern.pfx", &[])),
        (
            "legacy (RC2-40 + 3DES)",
            pfx(dir.path(), "legacy.pfx", &["-legacy"]),
        ),
        // Only the key is encrypted: the certificate safe is plain.
        (
            "key-only encrypted",
            pfx(dir.path(), "key-only.pfx", &["-certpbe", "NONE"]),
        ),
    ];
    let right = Password::new(RIGHT.into());
    let mut total = Counts::default();
    let mut misreported = Vec::new();
    for (what, file) in &files {
        let parts = encrypted_parts(file);
        assert!(!parts.is_empty(), "{what}: no encrypted part found");
        assert!(read_file(file, Some(&right)).is_ok(), "{what}");
        assert!(matches!(
            read_file(file, Some(&Password::new("not-it".into()))),
            Err(FormatError::WrongPassword)
        ));
        let mut counts = Counts::default();
        // Every byte of the file, two different bits of each.
        for pos in 0..file.len() {
            for bit in [pos % 8, (pos + 3) % 8] {
                let mut m = file.clone();
                m[pos] ^= 1 << bit;
                // Some part still intact proves the password (the MAC, when only the
                // MAC data is hit, is not needed: the parts are intact then too).
                let provable = parts.iter().any(|r| !r.contains(&pos));
                match read_file(&m, Some(&right)) {
                    Ok(_) => counts.imported += 1,
                    Err(FormatError::Damaged { .. }) => counts.damaged += 1,
                    Err(FormatError::WrongPassword) if provable => {
                        counts.wrong_password += 1;
                        misreported.push(format!("{what}: bit {bit} of byte {pos}"));
                    }
                    Err(FormatError::WrongPassword) => counts.wrong_password_unprovable += 1,
                    Err(e) => {
                        assert!(!e.to_string().contains('\n'), "{what}: {e}");
                        counts.other += 1;
                    }
                }
            }
        }
        eprintln!(
            "{what}: {} bytes, {} copies: damaged {}, wrong password {}, imported ok {}, \
             other errors {}, wrong password with every encrypted part hit {}",
            file.len(),
            file.len() * 2,
            counts.damaged,
            counts.wrong_password,
            counts.imported,
            counts.other,
            counts.wrong_password_unprovable
        );
        total.damaged += counts.damaged;
        total.wrong_password += counts.wrong_password;
        total.imported += counts.imported;
        total.other += counts.other;
        total.wrong_password_unprovable += counts.wrong_password_unprovable;
    }
    eprintln!("all files: {total:?}");
    assert!(
        misreported.is_empty(),
        "{} copies called \"wrong password\" though part of them proves it right:\n{}",
        misreported.len(),
        misreported.join("\n")
    );
    assert!(total.damaged > 1000, "{total:?}");
    // Every flip is noticed: the MAC covers the contents, and the parts it does not
    // cover (the outer structure, the MAC data itself) are read strictly.
    assert_eq!(total.imported, 0, "{total:?}");
}

#[test]
fn bytes_after_a_verified_file_are_read_past_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let right = Password::new(RIGHT.into());
    for (what, file) in [
        ("modern", pfx(dir.path(), "modern.pfx", &[])),
        ("legacy", pfx(dir.path(), "legacy.pfx", &["-legacy"])),
    ] {
        for (tail, zeros) in [
            (&[0u8, 0][..], true),
            (&[0u8; 8][..], true),
            (&b"\r\n-- exported --"[..], false),
        ] {
            let mut m = file.clone();
            m.extend_from_slice(tail);
            let c = read_file(&m, Some(&right)).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!((c.certs.len(), c.keys.len()), (1, 1), "{what}");
            assert_eq!(
                c.warnings,
                [ReadWarning::TrailingBytes {
                    count: tail.len(),
                    zeros
                }],
                "{what}"
            );
            // A wrong password is still a wrong password.
            assert!(
                matches!(
                    read_file(&m, Some(&Password::new("not-it".into()))),
                    Err(FormatError::WrongPassword)
                ),
                "{what}"
            );
        }
        // The file itself has no warning.
        assert!(read_file(&file, Some(&right)).unwrap().warnings.is_empty());
        // Truncated files are still damaged, with or without bytes after them.
        for cut in [file.len() - 1, file.len() - 30, file.len() / 2] {
            let mut m = file[..cut].to_vec();
            assert!(
                matches!(
                    read_file(&m, Some(&right)),
                    Err(FormatError::Damaged { .. })
                ),
                "{what} cut at {cut}"
            );
            m.extend_from_slice(&[0, 0]);
            assert!(
                matches!(
                    read_file(&m, Some(&right)),
                    Err(FormatError::Damaged { .. })
                ),
                "{what} cut at {cut}, then 00 00"
            );
        }
    }
}

#[test]
fn bytes_after_a_file_without_a_mac_are_still_refused() {
    // Without a MAC nothing proves the structure before the extra bytes complete: an
    // outer length damaged so that it ends before the MAC would look just the same.
    let dir = tempfile::tempdir().unwrap();
    let file = pfx(dir.path(), "nomac.pfx", &["-nomac"]);
    let right = Password::new(RIGHT.into());
    assert!(read_file(&file, Some(&right)).is_ok());
    let mut m = file;
    m.extend_from_slice(&[0, 0]);
    let e = read_file(&m, Some(&right)).unwrap_err();
    assert!(
        e.to_string().contains("2 unexpected bytes after the end"),
        "{e}"
    );
    // The same file with its MAC cut off by a shortened outer length.
    let with_mac = pfx(dir.path(), "mac.pfx", &[]);
    let pfx = ber::read_single(&with_mac).unwrap();
    let fields = pfx.children().unwrap();
    let without_mac_len: usize = fields[..2].iter().map(|f| f.raw.len()).sum();
    let mut cut = ber::encode(
        &[0x30],
        &with_mac[with_mac.len() - pfx.content.len()..][..without_mac_len],
    );
    cut.extend_from_slice(fields[2].raw);
    assert!(matches!(
        read_file(&cut, Some(&right)),
        Err(FormatError::Damaged { .. })
    ));
}

#[test]
fn every_key_type_openssl_puts_in_a_pkcs12_file_is_read_with_its_key() {
    // (name, how the key is made, whether it can sign its own certificate)
    let kinds: &[(&str, &[&str], bool)] = &[
        (
            "rsa",
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            true,
        ),
        ("rsa-pss", &["-algorithm", "RSA-PSS"], true),
        (
            "ec-p256",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            true,
        ),
        (
            "ec-p384",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
            true,
        ),
        (
            "ec-p521",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"],
            true,
        ),
        (
            "ec-secp256k1",
            &[
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:secp256k1",
            ],
            true,
        ),
        ("ed25519", &["-algorithm", "ED25519"], true),
        ("dsa", &["-paramfile", "dsa-params.pem"], true),
        ("x25519", &["-algorithm", "X25519"], false),
        ("ed448", &["-algorithm", "ED448"], true),
        ("x448", &["-algorithm", "X448"], false),
    ];
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(
        d,
        &[
            "genpkey",
            "-genparam",
            "-algorithm",
            "DSA",
            "-pkeyopt",
            "dsa_paramgen_bits:2048",
            "-out",
            "dsa-params.pem",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=ca",
            "-days",
            "30",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    let right = Password::new(RIGHT.into());
    for (name, genpkey, signs) in kinds {
        let key = format!("{name}.key");
        let cert = format!("{name}.pem");
        let mut args = vec!["genpkey"];
        args.extend(*genpkey);
        args.extend(["-out", &key]);
        openssl(d, &args);
        // The public key certkeeper derives from the private key (PKCS#8, as genpkey
        // writes it) is the one openssl prints for it.
        let spki = format!("{name}.spki");
        openssl(
            d,
            &[
                "pkey", "-in", &key, "-pubout", "-outform", "DER", "-out", &spki,
            ],
        );
        let pkcs8 = read_file(&std::fs::read(d.join(&key)).unwrap(), None)
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(pkcs8.keys.len(), 1, "{key}");
        assert_eq!(
            hex::encode(pkcs8.keys[0].key.public_key_bits().unwrap()),
            hex::encode(spki_bits(&std::fs::read(d.join(&spki)).unwrap())),
            "{key}: public key as openssl pkey -pubout prints it"
        );
        let subj = format!("/CN={name}");
        if *signs {
            openssl(
                d,
                &[
                    "req", "-x509", "-key", &key, "-subj", &subj, "-days", "30", "-out", &cert,
                ],
            );
        } else {
            let public = format!("{name}.pub");
            let csr = format!("{name}.csr");
            openssl(d, &["pkey", "-in", &key, "-pubout", "-out", &public]);
            openssl(
                d,
                &[
                    "req", "-new", "-key", "ca.key", "-subj", &subj, "-out", &csr,
                ],
            );
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-force_pubkey",
                    &public,
                    "-days",
                    "30",
                    "-out",
                    &cert,
                ],
            );
        }
        for legacy in [false, true] {
            let pfx_name = format!("{name}-{legacy}.pfx");
            let passout = format!("pass:{RIGHT}");
            let mut args = vec![
                "pkcs12", "-export", "-in", &cert, "-inkey", &key, "-passout", &passout, "-out",
                &pfx_name,
            ];
            if legacy {
                args.push("-legacy");
            }
            openssl(d, &args);
            let path = d.join(&pfx_name);
            assert_eq!(
                crate::corpus::openssl_reads(&path, RIGHT),
                Some((1, 1)),
                "{pfx_name}: openssl reads it back"
            );
            let c = read_file(&std::fs::read(&path).unwrap(), Some(&right))
                .unwrap_or_else(|e| panic!("{pfx_name}: {e}"));
            assert_eq!((c.certs.len(), c.keys.len()), (1, 1), "{pfx_name}");
            let key = &c.keys[0].key;
            assert!(key.matches(&c.certs[0].cert), "{pfx_name}: key matches");
            assert_eq!(key.algorithm().name(), *name, "{pfx_name}");
            let tls = key.algorithm().tls_refusal().is_none();
            let want_tls = !matches!(*name, "dsa" | "x25519" | "ec-secp256k1" | "ed448" | "x448");
            assert_eq!(tls, want_tls, "{pfx_name}: signs TLS");
        }
    }
}

/// The subjectPublicKey bits of a DER SubjectPublicKeyInfo.
fn spki_bits(der: &[u8]) -> Vec<u8> {
    let spki = ber::read_single(der).expect("SubjectPublicKeyInfo");
    let parts = spki.children().expect("SubjectPublicKeyInfo fields");
    let bits = &parts[1];
    assert_eq!(bits.tag_byte(), 0x03, "subjectPublicKey is a BIT STRING");
    assert_eq!(bits.content[0], 0, "no unused bits");
    bits.content[1..].to_vec()
}
