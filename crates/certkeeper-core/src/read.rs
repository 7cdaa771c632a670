//! Reading any certificate or key file: the format is recognised from the content,
//! never from the file name, and everything in it comes out as [`Contents`].

use zeroize::Zeroizing;

use crate::ber;
use crate::cert::Certificate;
use crate::encrypted::{self, PasswordBytes};
use crate::error::{FormatError, ReadWarning};
use crate::key::PrivateKey;
use crate::pem;
use crate::pkcs7;
use crate::pkcs12;

/// A password, zeroized on drop.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// Wraps a password; the caller's copy should be zeroized too.
    pub fn new(s: String) -> Self {
        Password(Zeroizing::new(s))
    }

    /// The password text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// The container format a file was recognised as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// PEM text, any mix of blocks.
    Pem,
    /// One DER certificate.
    DerCertificate,
    /// PKCS#7 / CMS SignedData (DER or BER).
    Pkcs7,
    /// PKCS#12 / PFX.
    Pkcs12,
    /// An unencrypted PKCS#8 key in DER.
    Pkcs8,
    /// An encrypted PKCS#8 key in DER.
    EncryptedPkcs8,
    /// A PKCS#1 RSA key in DER.
    Pkcs1,
    /// A SEC1 EC key in DER.
    Sec1,
    /// A public key alone (SubjectPublicKeyInfo): nothing to import.
    PublicKey,
    /// A certificate revocation list: nothing to import.
    Crl,
    /// A certificate signing request: nothing to import.
    Csr,
}

impl Format {
    /// The name users know it by.
    pub fn name(self) -> &'static str {
        match self {
            Format::Pem => "PEM",
            Format::DerCertificate => "DER certificate",
            Format::Pkcs7 => "PKCS#7",
            Format::Pkcs12 => "PKCS#12",
            Format::Pkcs8 => "PKCS#8 private key",
            Format::EncryptedPkcs8 => "encrypted PKCS#8 private key",
            Format::Pkcs1 => "PKCS#1 RSA private key",
            Format::Sec1 => "SEC1 EC private key",
            Format::PublicKey => "public key",
            Format::Crl => "certificate revocation list (CRL)",
            Format::Csr => "certificate signing request (CSR)",
        }
    }
}

/// A certificate and the name its file gave it, if any.
#[derive(Debug)]
pub struct FoundCert {
    /// The certificate.
    pub cert: Certificate,
    /// PKCS#12 friendlyName.
    pub friendly_name: Option<String>,
}

/// A private key and the name its file gave it, if any.
#[derive(Debug)]
pub struct FoundKey {
    /// The key.
    pub key: PrivateKey,
    /// PKCS#12 friendlyName.
    pub friendly_name: Option<String>,
}

/// Everything a file holds.
#[derive(Debug)]
pub struct Contents {
    /// How it was recognised.
    pub format: Format,
    /// Its certificates, in file order.
    pub certs: Vec<FoundCert>,
    /// Its private keys, in file order.
    pub keys: Vec<FoundKey>,
    /// What was read past without refusing the file (shown to the user).
    pub warnings: Vec<ReadWarning>,
}

impl Contents {
    fn new(format: Format) -> Self {
        Contents {
            format,
            certs: Vec::new(),
            keys: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn cert(mut self, cert: Certificate) -> Self {
        self.certs.push(FoundCert {
            cert,
            friendly_name: None,
        });
        self
    }

    fn key(mut self, key: PrivateKey) -> Self {
        self.keys.push(FoundKey {
            key,
            friendly_name: None,
        });
        self
    }
}

/// Reads a certificate or key file of any supported format.
pub fn read_file(bytes: &[u8], password: Option<&Password>) -> Result<Contents, FormatError> {
    if pem::looks_like_pem(bytes) {
        return read_pem(bytes, password);
    }
    let kind = sniff(bytes).ok_or(FormatError::UnknownFormat)?;
    let pw = password.map(Password::as_str);
    match kind {
        Format::DerCertificate => Ok(Contents::new(kind).cert(Certificate::from_der(bytes)?)),
        Format::Pkcs7 => {
            let mut c = Contents::new(kind);
            for cert in pkcs7::certificates(bytes)? {
                c = c.cert(cert);
            }
            Ok(c)
        }
        Format::Pkcs12 => {
            let p12 = pkcs12::read(bytes, pw)?;
            let mut c = Contents::new(kind);
            c.warnings = p12.warnings;
            c.certs = p12
                .certs
                .into_iter()
                .map(|b| FoundCert {
                    cert: b.cert,
                    friendly_name: b.friendly_name,
                })
                .collect();
            c.keys = p12
                .keys
                .into_iter()
                .map(|b| FoundKey {
                    key: b.key,
                    friendly_name: b.friendly_name,
                })
                .collect();
            if c.certs.is_empty() && c.keys.is_empty() {
                return Err(FormatError::Empty {
                    detail: "an empty PKCS#12 file".into(),
                });
            }
            Ok(c)
        }
        Format::Pkcs8 => Ok(Contents::new(kind).key(PrivateKey::from_pkcs8_der(bytes)?)),
        Format::EncryptedPkcs8 => {
            let pw = password.ok_or(FormatError::PasswordRequired {
                what: "the private key",
            })?;
            let key = encrypted::decrypt_pkcs8(bytes, &PasswordBytes::new(pw.as_str()))?;
            Ok(Contents::new(kind).key(key))
        }
        Format::Pkcs1 => Ok(Contents::new(kind).key(PrivateKey::from_pkcs1_der(bytes)?)),
        Format::Sec1 => Ok(Contents::new(kind).key(PrivateKey::from_sec1_der(bytes)?)),
        Format::PublicKey | Format::Crl | Format::Csr => Err(FormatError::Empty {
            detail: format!("it is a {}", kind.name()),
        }),
        // sniff() never answers Pem; PEM was handled above.
        Format::Pem => Err(FormatError::UnknownFormat),
    }
}

/// Recognises a DER/BER file by the shape of its first few elements; works on a
/// truncated file too, so that it is reported as a damaged file of its kind.
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    let (tag, content) = ber::peek_header(bytes)?;
    if tag != 0x30 {
        return None;
    }
    let (first_tag, first_content) = ber::peek_header(content)?;
    match first_tag {
        0x02 => {
            let (int, rest) = ber::read_tlv(content, 0).ok()?;
            let (second_tag, _) = ber::peek_header(rest)?;
            match (int.content, second_tag) {
                ([3], 0x30) => Some(Format::Pkcs12),
                ([0] | [1], 0x30) => Some(Format::Pkcs8),
                ([0], 0x02) => Some(Format::Pkcs1),
                ([1], 0x04) => Some(Format::Sec1),
                _ => None,
            }
        }
        0x06 => {
            let (oid, _) = ber::read_tlv(content, 0).ok()?;
            pkcs7::is_content_type(&oid).then_some(Format::Pkcs7)
        }
        0x30 => {
            // Either an AlgorithmIdentifier (an encrypted key or a public key) or the
            // to-be-signed part of a certificate, CRL or CSR.
            let inner = ber::lenient_children(first_content);
            let (inner_first, _) = ber::peek_header(first_content)?;
            if inner_first == 0x06 {
                let (_, rest) = ber::read_tlv(content, 0).ok()?;
                return match ber::peek_header(rest)?.0 {
                    0x04 => Some(Format::EncryptedPkcs8),
                    0x03 => Some(Format::PublicKey),
                    _ => None,
                };
            }
            let tag_at = |i: usize| inner.get(i).map(|t| t.tag_byte());
            let is_time = |t: Option<u8>| matches!(t, Some(0x17 | 0x18));
            match inner_first {
                // v3 certificate: [0] version, then the serial.
                0xa0 => match tag_at(1) {
                    Some(0x02) | None => Some(Format::DerCertificate),
                    _ => None,
                },
                0x02 => match inner.get(1) {
                    // CSR: version, then the subject Name (a SEQUENCE of SETs).
                    Some(t) if t.tag_byte() == 0x30 && t.content.first() == Some(&0x31) => {
                        Some(Format::Csr)
                    }
                    // v2 CRL: version, algorithm, issuer, thisUpdate.
                    _ if is_time(tag_at(3)) => Some(Format::Crl),
                    // v1 certificate: serial, algorithm, issuer, validity.
                    _ => Some(Format::DerCertificate),
                },
                // v1 CRL: algorithm, issuer, thisUpdate.
                0x30 if is_time(tag_at(2)) => Some(Format::Crl),
                _ => None,
            }
        }
        _ => None,
    }
}

fn read_pem(bytes: &[u8], password: Option<&Password>) -> Result<Contents, FormatError> {
    let mut contents = Contents::new(Format::Pem);
    let mut skipped = Vec::new();
    for block in pem::parse(bytes)? {
        let in_block = |e: FormatError| match e {
            FormatError::Damaged { detail, .. } => FormatError::damaged(block.describe(), detail),
            other => other,
        };
        match block.label.as_str() {
            "CERTIFICATE" | "X509 CERTIFICATE" => {
                contents = contents.cert(Certificate::from_der(&block.data).map_err(in_block)?);
            }
            "TRUSTED CERTIFICATE" => {
                // OpenSSL appends its trust settings after the certificate.
                let (cert, _) = Certificate::from_der_prefix(&block.data).map_err(in_block)?;
                contents = contents.cert(cert);
            }
            "PKCS7" | "CMS" => {
                for cert in pkcs7::certificates(&block.data).map_err(in_block)? {
                    contents = contents.cert(cert);
                }
            }
            "PRIVATE KEY" => {
                contents = contents.key(PrivateKey::from_pkcs8_der(&block.data).map_err(in_block)?);
            }
            "ENCRYPTED PRIVATE KEY" => {
                let pw = password.ok_or(FormatError::PasswordRequired {
                    what: "the private key",
                })?;
                let key = encrypted::decrypt_pkcs8(&block.data, &PasswordBytes::new(pw.as_str()))
                    .map_err(in_block)?;
                contents = contents.key(key);
            }
            "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "DSA PRIVATE KEY" => {
                let plain = match block.header("Proc-Type") {
                    Some(p) if p.contains("ENCRYPTED") => {
                        let pw = password.ok_or(FormatError::PasswordRequired {
                            what: "the private key",
                        })?;
                        let dek = block.header("DEK-Info").ok_or_else(|| {
                            FormatError::damaged(block.describe(), "encrypted without DEK-Info")
                        })?;
                        let plain =
                            encrypted::decrypt_legacy_pem(dek, &block.data, pw.as_str().as_bytes())
                                .map_err(in_block)?;
                        // A wrong password yields bytes that do not parse.
                        if ber::read_single(&plain).is_err() {
                            return Err(FormatError::WrongPassword);
                        }
                        plain
                    }
                    _ => Zeroizing::new(block.data.clone()),
                };
                let key = match block.label.as_str() {
                    "RSA PRIVATE KEY" => PrivateKey::from_pkcs1_der(&plain),
                    "DSA PRIVATE KEY" => PrivateKey::from_dsa_der(&plain),
                    _ => PrivateKey::from_sec1_der(&plain),
                };
                contents = contents.key(key.map_err(in_block)?);
            }
            other => skipped.push(other.to_string()),
        }
    }
    if contents.certs.is_empty() && contents.keys.is_empty() {
        let detail = if skipped.is_empty() {
            "no PEM blocks".to_string()
        } else {
            format!("PEM with only {}", skipped.join(", "))
        };
        return Err(FormatError::Empty { detail });
    }
    Ok(contents)
}
