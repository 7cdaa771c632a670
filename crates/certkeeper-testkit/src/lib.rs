//! Test-only helpers: a test PKI built with rcgen (each test states the certificates
//! it needs), mutations of files for bad-input tests, and the shared corpora path.

pub mod limbo;
pub mod tools;

pub use rcgen::ExtendedKeyUsagePurpose;

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa, Issuer,
    KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

/// The key types tests use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// ECDSA P-256.
    EcP256,
    /// ECDSA P-384.
    EcP384,
    /// RSA 2048.
    Rsa2048,
    /// Ed25519.
    Ed25519,
}

impl KeyKind {
    fn generate(self) -> KeyPair {
        let made = match self {
            KeyKind::EcP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            KeyKind::EcP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
            KeyKind::Rsa2048 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
            }
            KeyKind::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519),
        };
        made.expect("test key generation")
    }
}

/// What a test certificate should be.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Common name.
    pub cn: String,
    /// Key type.
    pub key: KeyKind,
    /// CA (with keyCertSign) or end entity.
    pub ca: bool,
    /// Extended key usages of an end entity.
    pub eku: Vec<ExtendedKeyUsagePurpose>,
    /// DNS names.
    pub dns: Vec<String>,
    /// Validity start, relative to now.
    pub not_before: Duration,
    /// Validity end, relative to now.
    pub not_after: Duration,
    /// AIA "CA Issuers" URL.
    pub ca_issuers: Option<String>,
}

impl Spec {
    /// An end-entity client certificate (clientAuth), valid from yesterday for a year.
    pub fn client(cn: &str) -> Self {
        Spec {
            cn: cn.into(),
            key: KeyKind::EcP256,
            ca: false,
            eku: vec![ExtendedKeyUsagePurpose::ClientAuth],
            dns: vec![],
            not_before: Duration::days(-1),
            not_after: Duration::days(365),
            ca_issuers: None,
        }
    }

    /// A server certificate for `dns` (serverAuth).
    pub fn server(dns: &str) -> Self {
        Spec {
            eku: vec![ExtendedKeyUsagePurpose::ServerAuth],
            dns: vec![dns.into()],
            ..Spec::client(dns)
        }
    }

    /// A CA certificate valid for ten years.
    pub fn ca(cn: &str) -> Self {
        Spec {
            ca: true,
            eku: vec![],
            not_after: Duration::days(3650),
            ..Spec::client(cn)
        }
    }

    /// With another key type.
    pub fn key(mut self, key: KeyKind) -> Self {
        self.key = key;
        self
    }

    /// Valid from `from` to `to` days relative to now.
    pub fn days(mut self, from: i64, to: i64) -> Self {
        self.not_before = Duration::days(from);
        self.not_after = Duration::days(to);
        self
    }

    /// With an AIA CA Issuers URL.
    pub fn aia(mut self, url: &str) -> Self {
        self.ca_issuers = Some(url.into());
        self
    }

    fn params(&self) -> CertificateParams {
        let mut p = CertificateParams::new(self.dns.clone()).expect("valid names");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, self.cn.clone());
        dn.push(DnType::OrganizationName, "certkeeper tests");
        p.distinguished_name = dn;
        let now = OffsetDateTime::now_utc();
        p.not_before = now + self.not_before;
        p.not_after = now + self.not_after;
        p.use_authority_key_identifier_extension = true;
        if self.ca {
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        } else {
            p.is_ca = IsCa::ExplicitNoCa;
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            p.extended_key_usages = self.eku.clone();
        }
        if let Some(url) = &self.ca_issuers {
            p.custom_extensions.push(aia_extension(url));
        }
        p
    }
}

/// A certificate with its key, able to issue others if it is a CA.
pub struct TestCert {
    /// The certificate's DER.
    pub der: Vec<u8>,
    /// Its key.
    pub key: KeyPair,
    params: CertificateParams,
}

impl TestCert {
    /// A self-signed certificate (a root CA when `spec.ca`).
    pub fn self_signed(spec: &Spec) -> Self {
        let key = spec.key.generate();
        let params = spec.params();
        let cert = params.self_signed(&key).expect("self-signed");
        TestCert {
            der: cert.der().to_vec(),
            key,
            params,
        }
    }

    /// A certificate issued by this one.
    pub fn issue(&self, spec: &Spec) -> TestCert {
        self.sign(spec, spec.key.generate())
    }

    /// A certificate issued by this one for the key of `subject` (cross-signing, a
    /// renewed CA that keeps its key).
    pub fn issue_for(&self, spec: &Spec, subject: &TestCert) -> TestCert {
        self.sign(
            spec,
            KeyPair::from_pem(&subject.key.serialize_pem()).expect("own key parses"),
        )
    }

    fn sign(&self, spec: &Spec, key: KeyPair) -> TestCert {
        let params = spec.params();
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).expect("issued");
        TestCert {
            der: cert.der().to_vec(),
            key,
            params,
        }
    }

    /// The certificate as PEM.
    pub fn pem(&self) -> String {
        pem_block("CERTIFICATE", &self.der)
    }

    /// The private key as PKCS#8 DER. Ed25519 keys come as PKCS#8 v1 (the private key only):
    /// aws-lc writes v2 with the public key, which OpenSSL 3.0 cannot read.
    pub fn key_der(&self) -> Vec<u8> {
        let der = self.key.serialize_der();
        const V2_ED25519_PREFIX: [u8; 16] = [
            0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        if der.len() == 83 && der.starts_with(&V2_ED25519_PREFIX) {
            let mut v1 = vec![
                0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
                0x04, 0x20,
            ];
            v1.extend_from_slice(&der[16..48]);
            return v1;
        }
        der
    }

    /// The private key as PKCS#8 PEM (see [`TestCert::key_der`]).
    pub fn key_pem(&self) -> String {
        pem_block("PRIVATE KEY", &self.key_der())
    }
}

/// The usual partner setup: a root, an issuing CA under it, a client certificate.
pub struct Pki {
    /// Self-signed root CA.
    pub root: TestCert,
    /// Intermediate CA issued by the root.
    pub inter: TestCert,
    /// Client certificate (clientAuth) issued by the intermediate.
    pub leaf: TestCert,
}

impl Pki {
    /// Root → intermediate → client "client.example".
    pub fn new() -> Self {
        Pki::with_leaf(&Spec::client("client.example"))
    }

    /// Root → intermediate → a leaf of this spec.
    pub fn with_leaf(spec: &Spec) -> Self {
        let root = TestCert::self_signed(&Spec::ca("Test Root CA"));
        let inter = root.issue(&Spec::ca("Test Issuing CA"));
        let leaf = inter.issue(spec);
        Pki { root, inter, leaf }
    }

    /// Writes root.pem, inter.pem, leaf.pem, leaf.key (PKCS#8 PEM) into `dir`.
    pub fn write_pem(&self, dir: &Path) {
        std::fs::write(dir.join("root.pem"), self.root.pem()).unwrap();
        std::fs::write(dir.join("inter.pem"), self.inter.pem()).unwrap();
        std::fs::write(dir.join("leaf.pem"), self.leaf.pem()).unwrap();
        std::fs::write(dir.join("leaf.key"), self.leaf.key_pem()).unwrap();
    }
}

impl Default for Pki {
    fn default() -> Self {
        Pki::new()
    }
}

/// PEM armour, 64 columns.
pub fn pem_block(label: &str, der: &[u8]) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |a, (i, b)| a | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn aia_extension(url: &str) -> CustomExtension {
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if content.len() < 128 {
            out.push(content.len() as u8);
        } else {
            out.push(0x81);
            out.push(content.len() as u8);
        }
        out.extend_from_slice(content);
        out
    }
    // caIssuers 1.3.6.1.5.5.7.48.2
    let oid = tlv(0x06, &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02]);
    let access = tlv(0x30, &[oid, tlv(0x86, url.as_bytes())].concat());
    CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], tlv(0x30, &access))
}

/// `../shared/corpora` from the repository root (or `CERTKEEPER_CORPORA`).
///
/// # Panics
/// With one line naming the directory looked in, when it is not there.
pub fn corpora() -> PathBuf {
    let dir = corpora_dir(std::env::var_os("CERTKEEPER_CORPORA"));
    if !dir.is_dir() {
        panic!("{}", corpora_missing(&dir));
    }
    dir
}

fn corpora_dir(var: Option<std::ffi::OsString>) -> PathBuf {
    match var {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => lexical(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora")),
    }
}

fn corpora_missing(dir: &Path) -> String {
    format!(
        "test corpora not found in {}: put the shared corpora (cryptography_vectors/, limbo/) there or set CERTKEEPER_CORPORA",
        dir.display()
    )
}

/// `a/b/../c` as `a/c`, so that the path a message names is the one to create.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// `corpora()/cryptography_vectors`.
pub fn vectors() -> PathBuf {
    corpus("cryptography_vectors")
}

/// `corpora()/SUB`, checked to be there.
///
/// # Panics
/// With one line naming the path looked in, when it is not there.
pub fn corpus(sub: &str) -> PathBuf {
    let path = corpora().join(sub);
    if !path.exists() {
        panic!(
            "test corpus not found: {} (from CERTKEEPER_CORPORA or ../shared/corpora)",
            path.display()
        );
    }
    path
}

/// The rows of a corpus manifest (`pkcs12-manifest.tsv`), header skipped, tab-split.
pub fn manifest(name: &str) -> Vec<Vec<String>> {
    let path = vectors().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("test corpus manifest {}: {e}", path.display()));
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// Every file below `dir`, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).expect("corpus directory readable") {
            let p = entry.expect("directory entry").path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Damaged variants of `bytes`: truncations at several points, and single-bit flips
/// spread over the file (deterministic, so failures reproduce).
pub fn mutations(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let len = bytes.len();
    for cut in [
        0,
        1,
        2,
        len / 4,
        len / 2,
        len * 3 / 4,
        len.saturating_sub(1),
    ] {
        if cut < len {
            out.push((format!("truncated at {cut}"), bytes[..cut].to_vec()));
        }
    }
    let flips = 24.min(len);
    for i in 0..flips {
        let pos = (i * 7919 + 13) % len.max(1);
        let mut m = bytes.to_vec();
        m[pos] ^= 1 << (i % 8);
        out.push((format!("bit {} flipped at {pos}", i % 8), m));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_corpora_path_is_the_one_a_message_names() {
        let default = corpora_dir(None);
        assert!(default.is_absolute(), "{}", default.display());
        assert!(default.ends_with("shared/corpora"), "{}", default.display());
        assert!(
            !default
                .components()
                .any(|c| c == std::path::Component::ParentDir)
        );
        assert_eq!(
            corpora_dir(Some("/srv/corpora".into())),
            PathBuf::from("/srv/corpora")
        );
        let line = corpora_missing(Path::new("/srv/corpora"));
        assert!(line.contains("/srv/corpora") && line.contains("CERTKEEPER_CORPORA"));
        assert_eq!(line.lines().count(), 1);
    }
}
