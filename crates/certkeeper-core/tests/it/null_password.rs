//! PKCS#12 files whose MAC uses the zero-length "null" password, as .NET's
//! `Export(X509ContentType.Pfx, (string)null)` and macOS write them. No tool on this
//! machine writes one, so the test makes one: an unprotected file from openssl, with a
//! MAC computed over it with the null password (RFC 7292 appendix B, empty input).

use certkeeper_core::{Password, ber, read_file};
use hmac::{KeyInit, Mac};

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    ber::encode(&[tag], content)
}

fn with_null_password_mac(pfx_without_mac: &[u8]) -> Vec<u8> {
    let pfx = ber::read_single(pfx_without_mac).unwrap();
    let fields = pfx.children().unwrap();
    assert_eq!(fields.len(), 2, "expected a PFX without MAC");
    let auth_safe = &fields[1];
    let octets = auth_safe.children().unwrap()[1].children().unwrap()[0]
        .content
        .to_vec();
    let salt = [7u8; 8];
    let key = pkcs12::kdf::derive_key::<sha1::Sha1>(
        &[],
        &salt,
        pkcs12::kdf::Pkcs12KeyType::Mac,
        2048,
        20,
    );
    let mut mac = <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(&key).unwrap();
    mac.update(&octets);
    let digest = mac.finalize().into_bytes();
    let sha1_alg = tlv(
        0x30,
        &[tlv(0x06, &[0x2b, 0x0e, 0x03, 0x02, 0x1a]), vec![0x05, 0x00]].concat(),
    );
    let digest_info = tlv(0x30, &[sha1_alg, tlv(0x04, &digest)].concat());
    let mac_data = tlv(
        0x30,
        &[digest_info, tlv(0x04, &salt), tlv(0x02, &[0x08, 0x00])].concat(),
    );
    tlv(
        0x30,
        &[fields[0].raw.to_vec(), auth_safe.raw.to_vec(), mac_data].concat(),
    )
}

#[test]
fn null_password_mac_is_read_without_a_password_and_with_an_empty_one() {
    let dir = tempfile::tempdir().unwrap();
    let pki = certkeeper_testkit::Pki::new();
    pki.write_pem(dir.path());
    let plain = dir.path().join("plain.pfx");
    let status = certkeeper_testkit::tools::command("openssl")
        .args([
            "pkcs12", "-export", "-keypbe", "NONE", "-certpbe", "NONE", "-nomac", "-passout",
            "pass:",
        ])
        .arg("-in")
        .arg(dir.path().join("leaf.pem"))
        .arg("-inkey")
        .arg(dir.path().join("leaf.key"))
        .arg("-out")
        .arg(&plain)
        .status()
        .unwrap();
    assert!(status.success());
    let file = with_null_password_mac(&std::fs::read(&plain).unwrap());
    let written = dir.path().join("null-mac.pfx");
    std::fs::write(&written, &file).unwrap();

    // OpenSSL agrees that the MAC is valid (it tries the null encoding too).
    let check = certkeeper_testkit::tools::command("openssl")
        .args(["pkcs12", "-info", "-noout", "-passin", "pass:"])
        .arg("-in")
        .arg(&written)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    for password in [None, Some(Password::new(String::new()))] {
        let contents = read_file(&file, password.as_ref()).unwrap();
        assert_eq!((contents.certs.len(), contents.keys.len()), (1, 1));
    }
    // A wrong non-empty password is still wrong.
    let wrong = Password::new("x".into());
    assert!(matches!(
        read_file(&file, Some(&wrong)),
        Err(certkeeper_core::FormatError::WrongPassword)
    ));
}
