//! Entry points for the fuzz targets (`fuzz/` at the repository root) and for the
//! test that replays their corpora (`fuzz/corpus/<target>/`) on the stable toolchain.
//!
//! Each function takes arbitrary bytes, runs one parser on them and panics when a
//! property that must hold for every input does not (besides the parser panicking
//! itself). Not part of the API.

use std::borrow::Cow;

use crate::ber::{self, Tlv};
use crate::encrypted::{self, PasswordBytes};
use crate::read::{self, Contents, Password};
use crate::{Certificate, FormatError, PrivateKey, pem, pkcs7, pkcs12};

/// Splits a fuzz input into an optional password and the file: the first byte is 0
/// for no password, else 1 + the password's length (mod 32) in the bytes that follow.
pub fn split_password(data: &[u8]) -> (Option<String>, &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return (None, data);
    };
    if first == 0 {
        return (None, rest);
    }
    let len = usize::from(first - 1) % 32;
    let len = len.min(rest.len());
    let (pw, file) = rest.split_at(len);
    (Some(String::from_utf8_lossy(pw).into_owned()), file)
}

/// The inverse of [`split_password`], for building starting inputs.
pub fn join_password(password: Option<&str>, file: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(file.len() + 33);
    match password {
        None => out.push(0),
        Some(pw) => {
            assert!(
                pw.len() < 32,
                "a starting input's password is shorter than 32 bytes"
            );
            out.push(pw.len() as u8 + 1);
            out.extend_from_slice(pw.as_bytes());
        }
    }
    out.extend_from_slice(file);
    out
}

/// BER/DER: a re-encoded element is DER (no indefinite length, no constructed OCTET
/// STRING), re-parses, and is a fixed point of the re-encoder; input that was already
/// DER comes back borrowed and identical.
pub fn ber(data: &[u8]) {
    if let Ok((tlv, rest)) = ber::read_tlv(data, 0) {
        assert_eq!(tlv.raw.len() + rest.len(), data.len());
        assert!(tlv.raw.ends_with(tlv.content) || tlv.indefinite);
        if let Ok(children) = tlv.children() {
            let total: usize = children.iter().map(|c| c.raw.len()).sum();
            assert_eq!(total, tlv.content.len(), "children fill their parent");
        }
    }
    let _ = ber::lenient_children(data);
    let _ = ber::element_header(data);
    let Ok(der) = ber::to_der(data) else {
        return;
    };
    let tlv = ber::read_single(&der).expect("re-encoded DER re-parses");
    assert_der(&tlv, 0);
    match ber::to_der(&der).expect("re-encoded DER re-encodes") {
        Cow::Borrowed(again) => assert_eq!(again, &*der, "DER is a fixed point"),
        Cow::Owned(_) => panic!("re-encoding DER changed it"),
    }
    if let Cow::Borrowed(same) = der {
        assert_eq!(same, data, "unchanged input comes back as it was");
    }
}

fn assert_der(tlv: &Tlv<'_>, depth: usize) {
    assert!(!tlv.indefinite, "no indefinite length after re-encoding");
    if !tlv.constructed() || depth > 64 {
        return;
    }
    assert_ne!(
        tlv.tag,
        [0x24],
        "no constructed OCTET STRING after re-encoding"
    );
    for child in tlv.children().expect("children of re-encoded DER parse") {
        assert_der(&child, depth + 1);
    }
}

/// PEM: every block found survives being written out and read back (label and
/// data), alone and all together, and a file with blocks looks like PEM.
pub fn pem(data: &[u8]) {
    let Ok(blocks) = pem::parse(data) else {
        return;
    };
    if !blocks.is_empty() {
        assert!(pem::looks_like_pem(data));
    }
    let mut all = String::new();
    for (i, block) in blocks.iter().enumerate() {
        assert_eq!(block.index, i + 1);
        let text = pem::encode(&block.label, &block.data);
        let again = pem::parse(text.as_bytes()).expect("an encoded block parses");
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].label, block.label);
        assert_eq!(again[0].data, block.data);
        all.push_str(&text);
    }
    let again = pem::parse(all.as_bytes()).expect("encoded blocks parse");
    assert_eq!(again.len(), blocks.len());
    for (a, b) in again.iter().zip(&blocks) {
        assert_eq!((&a.label, &a.data), (&b.label, &b.data));
    }
}

/// PKCS#7: the certificates found are whole certificates, and a certs-only PKCS#7
/// written from them reads back as the same certificates in the same order.
pub fn pkcs7(data: &[u8]) {
    let Ok(certs) = pkcs7::certificates(data) else {
        return;
    };
    assert!(!certs.is_empty(), "success means at least one certificate");
    for cert in &certs {
        check_cert(cert);
    }
    let written = pkcs7::encode_certificates(certs.iter().map(|c| c.der.as_slice()));
    let again = pkcs7::certificates(&written).expect("a written PKCS#7 reads back");
    let thumbprints = |c: &[Certificate]| c.iter().map(|c| c.thumbprint.clone()).collect();
    let (a, b): (Vec<String>, Vec<String>) = (thumbprints(&certs), thumbprints(&again));
    assert_eq!(a, b);
}

/// PKCS#12 directly (password as in [`split_password`]): what is read re-parses;
/// bytes after the PFX are read past only with a warning; no password and the empty
/// one read alike (but for "password required" against "wrong password").
pub fn pkcs12(data: &[u8]) {
    let (password, file) = split_password(data);
    let outcome = pkcs12::read(file, password.as_deref());
    match &outcome {
        Ok(p12) => {
            for bag in &p12.certs {
                check_cert(&bag.cert);
            }
            for bag in &p12.keys {
                check_key(&bag.key);
            }
            let trailing = ber::read_tlv(file, 0).map_or(0, |(_, rest)| rest.len());
            assert_eq!(
                trailing > 0,
                !p12.warnings.is_empty(),
                "trailing bytes are read past with a warning, and only they"
            );
        }
        Err(e) => check_error(e),
    }
    if password.as_deref().is_none_or(str::is_empty) {
        let other = if password.is_none() { Some("") } else { None };
        let again = pkcs12::read(file, other);
        assert_eq!(
            summary(&outcome),
            summary(&again),
            "no password and the empty one"
        );
    }
}

/// Thumbprints, key ids and the number of warnings.
type Found = (Vec<String>, Vec<Option<String>>, usize);

/// What a PKCS#12 read found, to compare two reads, or the error (not telling
/// "password required" from "wrong password").
fn summary(outcome: &Result<pkcs12::Pkcs12Contents, FormatError>) -> Result<Found, String> {
    match outcome {
        Ok(p12) => Ok((
            p12.certs
                .iter()
                .map(|b| b.cert.thumbprint.clone())
                .collect(),
            p12.keys.iter().map(|b| b.key.key_id().ok()).collect(),
            p12.warnings.len(),
        )),
        Err(FormatError::PasswordRequired { .. } | FormatError::WrongPassword) => {
            Err("password".into())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Encrypted keys (password as in [`split_password`], none meaning the empty one):
/// an `EncryptedPrivateKeyInfo` in DER, or PEM with `ENCRYPTED PRIVATE KEY` blocks or
/// `Proc-Type: 4,ENCRYPTED` keys. A decrypted key re-parses; a traditional PEM body
/// loses between 1 and one block of padding.
pub fn encrypted(data: &[u8]) {
    let (password, file) = split_password(data);
    let password = password.unwrap_or_default();
    let bytes = PasswordBytes::new(&password);
    if !pem::looks_like_pem(file) {
        if let Ok(key) = encrypted::decrypt_pkcs8(file, &bytes) {
            check_key(&key);
        }
        return;
    }
    let Ok(blocks) = pem::parse(file) else {
        return;
    };
    for block in blocks {
        if let Some(dek) = block.header("DEK-Info") {
            if let Ok(plain) = encrypted::decrypt_legacy_pem(dek, &block.data, password.as_bytes())
            {
                let padding = block.data.len() - plain.len();
                assert!(
                    (1..=16).contains(&padding) && block.data.len() % 8 == 0,
                    "CBC with PKCS#7 padding: {} bytes in, {} out",
                    block.data.len(),
                    plain.len()
                );
            }
        } else if let Ok(key) = encrypted::decrypt_pkcs8(&block.data, &bytes) {
            check_key(&key);
        }
    }
}

/// `read_file` without a password.
pub fn read_file(data: &[u8]) {
    match read::read_file(data, None) {
        Ok(contents) => check_contents(&contents),
        Err(e) => check_error(&e),
    }
}

/// `read_file` with a password (as in [`split_password`]).
pub fn read_file_password(data: &[u8]) {
    let (password, file) = split_password(data);
    let password = password.map(Password::new);
    match read::read_file(file, password.as_ref()) {
        Ok(contents) => check_contents(&contents),
        Err(e) => check_error(&e),
    }
}

fn check_contents(contents: &Contents) {
    assert!(
        !contents.certs.is_empty() || !contents.keys.is_empty(),
        "a file read without error holds something"
    );
    for found in &contents.certs {
        check_cert(&found.cert);
    }
    for found in &contents.keys {
        check_key(&found.key);
    }
}

/// A certificate read from a file parses again from its DER to the same identity.
fn check_cert(cert: &Certificate) {
    let again = Certificate::from_der(&cert.der).expect("a certificate's DER re-parses");
    assert_eq!(again.thumbprint, cert.thumbprint);
    assert_eq!(again.key_id, cert.key_id);
}

/// A key read from a file parses again from its PKCS#8 to the same key.
fn check_key(key: &PrivateKey) {
    let again = PrivateKey::from_pkcs8_der(key.pkcs8_der()).expect("a key's PKCS#8 re-parses");
    assert_eq!(again.algorithm(), key.algorithm());
    assert_eq!(again.key_id().ok(), key.key_id().ok());
}

/// Errors name what is wrong: the messages a user reads are never empty.
fn check_error(e: &FormatError) {
    assert!(!e.to_string().trim().is_empty());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_prefix_round_trips() {
        for pw in [None, Some(""), Some("cryptography"), Some("pässword")] {
            let joined = join_password(pw, b"file");
            let (got, file) = split_password(&joined);
            assert_eq!(got.as_deref(), pw);
            assert_eq!(file, b"file");
        }
    }

    /// Replays every committed corpus file through its target's entry function, so
    /// the corpora keep passing without nightly or libFuzzer.
    #[test]
    fn committed_corpora_replay() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
        type Target = (&'static str, fn(&[u8]));
        let targets: [Target; 7] = [
            ("ber", ber),
            ("pem", pem),
            ("pkcs7", pkcs7),
            ("pkcs12", pkcs12),
            ("encrypted", encrypted),
            ("read_file", read_file),
            ("read_file_password", read_file_password),
        ];
        for (target, run) in targets {
            let n = replay(&root.join(target), run);
            assert!(n > 0, "fuzz/corpus/{target} holds no inputs");
        }
    }

    fn replay(dir: &std::path::Path, run: fn(&[u8])) -> usize {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let mut n = 0;
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{} fails", path.display());
            n += 1;
        }
        n
    }
}
