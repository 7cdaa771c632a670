//! X.509 certificates: parsed once from DER into [`Certificate`], with the details the
//! Windows certificate dialog shows (General and Details tabs) and both thumbprints.

use aws_lc_rs::digest;
use serde::Serialize;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::OidRegistry;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

use crate::error::FormatError;

/// A parsed certificate: the DER exactly as it came, and what certkeeper needs of it.
#[derive(Debug, Clone, Serialize)]
pub struct Certificate {
    /// The certificate's DER, byte-identical to the input.
    #[serde(skip)]
    pub der: Vec<u8>,
    /// SHA-256 of the DER, lower-case hex: the entry's identity.
    pub thumbprint: String,
    /// SHA-1 of the DER, lower-case hex (what Windows calls the thumbprint).
    pub sha1: String,
    /// Subject as an RFC 4514 string.
    pub subject: String,
    /// Issuer as an RFC 4514 string.
    pub issuer: String,
    /// Subject name DER, for issuer matching.
    #[serde(skip)]
    pub subject_der: Vec<u8>,
    /// Issuer name DER, for issuer matching.
    #[serde(skip)]
    pub issuer_der: Vec<u8>,
    /// Serial number, lower-case hex.
    pub serial: String,
    /// Start of validity, seconds since the Unix epoch.
    pub not_before: i64,
    /// End of validity, seconds since the Unix epoch.
    pub not_after: i64,
    /// The basic constraints say CA.
    pub is_ca: bool,
    /// Path length constraint, if any.
    pub path_len: Option<u32>,
    /// Subject equals issuer and the key identifiers, if present, agree.
    pub self_signed: bool,
    /// Subject alternative names as `DNS:x`, `IP:x`, `email:x`, `URI:x`, `DirName:x`.
    pub san: Vec<String>,
    /// Key usage names (`digitalSignature`, `keyCertSign`, ...).
    pub key_usage: Vec<String>,
    /// Extended key usage names (`clientAuth`, `serverAuth`, ...) or dotted OIDs.
    pub ext_key_usage: Vec<String>,
    /// Authority key identifier, hex.
    pub authority_key_id: Option<String>,
    /// Subject key identifier, hex.
    pub subject_key_id: Option<String>,
    /// AIA "CA Issuers" URLs.
    pub ca_issuers: Vec<String>,
    /// AIA OCSP URLs.
    pub ocsp: Vec<String>,
    /// CRL distribution point URLs.
    pub crl_urls: Vec<String>,
    /// Public key type and size, e.g. `RSA 2048`, `EC P-256`, `Ed25519`.
    pub key_type: String,
    /// Signature algorithm name.
    pub signature_algorithm: String,
    /// Version (1, 2 or 3).
    pub version: u32,
    /// The SubjectPublicKeyInfo DER, for matching private keys.
    #[serde(skip)]
    pub spki_der: Vec<u8>,
    /// Canonical public key id (see [`crate::key::public_key_id`]): a private key
    /// matches this certificate when their ids are equal.
    pub key_id: String,
}

impl Certificate {
    /// Parses one DER certificate; the input must hold exactly one.
    pub fn from_der(der: &[u8]) -> Result<Self, FormatError> {
        let (rest, cert) = X509Certificate::from_der(der)
            .map_err(|e| FormatError::damaged("certificate", describe_nom(&e)))?;
        if !rest.is_empty() {
            return Err(FormatError::damaged(
                "certificate",
                format!("{} unexpected bytes after the certificate", rest.len()),
            ));
        }
        Ok(Self::from_parsed(der, &cert))
    }

    /// Parses the certificate at the front of `der` and returns it with the length it
    /// took (OpenSSL's `TRUSTED CERTIFICATE` appends trust settings after it).
    pub fn from_der_prefix(der: &[u8]) -> Result<(Self, usize), FormatError> {
        let (rest, cert) = X509Certificate::from_der(der)
            .map_err(|e| FormatError::damaged("certificate", describe_nom(&e)))?;
        let used = der.len() - rest.len();
        Ok((Self::from_parsed(&der[..used], &cert), used))
    }

    fn from_parsed(der: &[u8], cert: &X509Certificate<'_>) -> Self {
        let registry = OidRegistry::default().with_crypto().with_x509();
        let oid_name = |oid: &x509_parser::der_parser::oid::Oid<'_>| {
            registry
                .get(oid)
                .map(|e| e.sn().to_string())
                .unwrap_or_else(|| oid.to_id_string())
        };

        let tbs = &cert.tbs_certificate;
        let (is_ca, path_len) = match cert.basic_constraints() {
            Ok(Some(bc)) => (bc.value.ca, bc.value.path_len_constraint),
            _ => (false, None),
        };

        let mut san = Vec::new();
        let mut authority_key_id = None;
        let mut subject_key_id = None;
        let mut ca_issuers = Vec::new();
        let mut ocsp = Vec::new();
        let mut crl_urls = Vec::new();
        let mut key_usage = Vec::new();
        let mut ext_key_usage = Vec::new();
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectAlternativeName(names) => {
                    san.extend(names.general_names.iter().map(general_name));
                }
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    authority_key_id = aki.key_identifier.as_ref().map(|k| hex::encode(k.0));
                }
                ParsedExtension::SubjectKeyIdentifier(ski) => {
                    subject_key_id = Some(hex::encode(ski.0));
                }
                ParsedExtension::AuthorityInfoAccess(aia) => {
                    for desc in &aia.accessdescs {
                        let GeneralName::URI(uri) = desc.access_location else {
                            continue;
                        };
                        match desc.access_method.to_id_string().as_str() {
                            "1.3.6.1.5.5.7.48.2" => ca_issuers.push(uri.to_string()),
                            "1.3.6.1.5.5.7.48.1" => ocsp.push(uri.to_string()),
                            _ => {}
                        }
                    }
                }
                ParsedExtension::CRLDistributionPoints(points) => {
                    for point in points.iter() {
                        if let Some(x509_parser::extensions::DistributionPointName::FullName(
                            names,
                        )) = &point.distribution_point
                        {
                            for name in names {
                                if let GeneralName::URI(uri) = name {
                                    crl_urls.push(uri.to_string());
                                }
                            }
                        }
                    }
                }
                ParsedExtension::KeyUsage(ku) => {
                    let flags = [
                        (ku.digital_signature(), "digitalSignature"),
                        (ku.non_repudiation(), "nonRepudiation"),
                        (ku.key_encipherment(), "keyEncipherment"),
                        (ku.data_encipherment(), "dataEncipherment"),
                        (ku.key_agreement(), "keyAgreement"),
                        (ku.key_cert_sign(), "keyCertSign"),
                        (ku.crl_sign(), "cRLSign"),
                        (ku.encipher_only(), "encipherOnly"),
                        (ku.decipher_only(), "decipherOnly"),
                    ];
                    key_usage = flags
                        .iter()
                        .filter(|(on, _)| *on)
                        .map(|(_, n)| (*n).to_string())
                        .collect();
                }
                ParsedExtension::ExtendedKeyUsage(eku) => {
                    let flags = [
                        (eku.any, "anyExtendedKeyUsage"),
                        (eku.server_auth, "serverAuth"),
                        (eku.client_auth, "clientAuth"),
                        (eku.code_signing, "codeSigning"),
                        (eku.email_protection, "emailProtection"),
                        (eku.time_stamping, "timeStamping"),
                        (eku.ocsp_signing, "OCSPSigning"),
                    ];
                    ext_key_usage = flags
                        .iter()
                        .filter(|(on, _)| *on)
                        .map(|(_, n)| (*n).to_string())
                        .collect();
                    ext_key_usage.extend(eku.other.iter().map(|o| o.to_id_string()));
                }
                _ => {}
            }
        }

        let subject_der = tbs.subject.as_raw().to_vec();
        let issuer_der = tbs.issuer.as_raw().to_vec();
        let self_signed = subject_der == issuer_der
            && match (&authority_key_id, &subject_key_id) {
                (Some(a), Some(s)) => a == s,
                _ => true,
            };

        let spki = tbs.subject_pki.raw;
        Certificate {
            der: der.to_vec(),
            thumbprint: hex::encode(digest::digest(&digest::SHA256, der)),
            sha1: hex::encode(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der)),
            subject: tbs.subject.to_string(),
            issuer: tbs.issuer.to_string(),
            subject_der,
            issuer_der,
            serial: hex::encode(tbs.raw_serial()),
            not_before: tbs.validity.not_before.timestamp(),
            not_after: tbs.validity.not_after.timestamp(),
            is_ca,
            path_len,
            self_signed,
            san,
            key_usage,
            ext_key_usage,
            authority_key_id,
            subject_key_id,
            ca_issuers,
            ocsp,
            crl_urls,
            key_type: key_type(&tbs.subject_pki),
            signature_algorithm: oid_name(&cert.signature_algorithm.algorithm),
            version: tbs.version.0 + 1,
            spki_der: spki.to_vec(),
            key_id: crate::key::public_key_id(
                &tbs.subject_pki.subject_public_key.data,
                matches!(
                    tbs.subject_pki.algorithm.algorithm.to_id_string().as_str(),
                    crate::key::OID_RSA | crate::key::OID_RSA_PSS
                ),
            ),
        }
    }

    /// A DER-encoded X.501 Name (as in a TLS CertificateRequest's list of acceptable
    /// CAs) as text, as `subject` and `issuer` are shown; `None` when it does not parse.
    /// Accepts the Name with or without its outer SEQUENCE header.
    pub fn name_text(der: &[u8]) -> Option<String> {
        use x509_parser::x509::X509Name;
        // Only a name with attributes counts: x509-parser reads a damaged one as empty.
        let text = |name: X509Name<'_>| {
            let text = name.to_string();
            (name.iter().next().is_some() && !text.is_empty()).then_some(text)
        };
        if let Ok(([], name)) = X509Name::from_der(der) {
            return text(name);
        }
        let mut wrapped = vec![0x30];
        let n = der.len();
        match n {
            0..=0x7f => wrapped.push(n as u8),
            0x80..=0xff => wrapped.extend([0x81, n as u8]),
            0x100..=0xffff => wrapped.extend([0x82, (n >> 8) as u8, n as u8]),
            _ => return None,
        }
        wrapped.extend_from_slice(der);
        match X509Name::from_der(&wrapped) {
            Ok(([], name)) => text(name),
            _ => None,
        }
    }

    /// A short display name: the subject's CN, else the whole subject.
    pub fn common_name(&self) -> String {
        if let Ok((_, cert)) = X509Certificate::from_der(&self.der)
            && let Some(cn) = cert
                .subject()
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
        {
            return cn.to_string();
        }
        self.subject.clone()
    }

    /// The names an administrator reads as "Issued to": the subject's common names and
    /// the DNS names of the subject alternative name, without duplicates.
    pub fn issued_to_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        if let Ok((_, cert)) = X509Certificate::from_der(&self.der) {
            names.extend(
                cert.subject()
                    .iter_common_name()
                    .filter_map(|cn| cn.as_str().ok())
                    .map(str::to_string),
            );
        }
        names.extend(
            self.san
                .iter()
                .filter_map(|n| n.strip_prefix("DNS:"))
                .map(str::to_string),
        );
        let mut seen = std::collections::HashSet::new();
        names.retain(|n| !n.is_empty() && seen.insert(n.to_lowercase()));
        names
    }

    /// The raw subjectPublicKey bits (the BIT STRING's content), for key matching.
    pub fn public_key_bits(&self) -> Vec<u8> {
        match x509_parser::x509::SubjectPublicKeyInfo::from_der(&self.spki_der) {
            Ok((_, spki)) => spki.subject_public_key.data.to_vec(),
            Err(_) => Vec::new(),
        }
    }

    /// Whether the certificate is valid at `at` (seconds since the epoch).
    pub fn valid_at(&self, at: i64) -> bool {
        self.not_before <= at && at <= self.not_after
    }
}

fn key_type(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> String {
    let alg = spki.algorithm.algorithm.to_id_string();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("RSA {}", rsa.key_size()),
        Ok(PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            match curve.as_deref() {
                Some(crate::key::OID_P256) => "EC P-256".into(),
                Some(crate::key::OID_P384) => "EC P-384".into(),
                Some(crate::key::OID_P521) => "EC P-521".into(),
                Some(crate::key::OID_SECP256K1) => "EC secp256k1".into(),
                Some(other) => format!("EC {other}"),
                None => "EC".into(),
            }
        }
        Ok(PublicKey::DSA(_)) => "DSA".into(),
        _ => match alg.as_str() {
            crate::key::OID_ED25519 => "Ed25519".into(),
            crate::key::OID_ED448 => "Ed448".into(),
            crate::key::OID_X25519 => "X25519".into(),
            crate::key::OID_X448 => "X448".into(),
            _ => alg,
        },
    }
}

fn general_name(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::DNSName(d) => format!("DNS:{d}"),
        GeneralName::RFC822Name(e) => format!("email:{e}"),
        GeneralName::URI(u) => format!("URI:{u}"),
        GeneralName::IPAddress(ip) => match ip.len() {
            4 => format!("IP:{}", std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])),
            16 => {
                let mut b = [0u8; 16];
                b.copy_from_slice(ip);
                format!("IP:{}", std::net::Ipv6Addr::from(b))
            }
            _ => format!("IP:{}", hex::encode(ip)),
        },
        GeneralName::DirectoryName(n) => format!("DirName:{n}"),
        GeneralName::OtherName(oid, _) => format!("othername:{}", oid.to_id_string()),
        GeneralName::RegisteredID(oid) => format!("RID:{}", oid.to_id_string()),
        other => format!("{other:?}"),
    }
}

fn describe_nom(e: &x509_parser::nom::Err<x509_parser::error::X509Error>) -> String {
    match e {
        x509_parser::nom::Err::Incomplete(_) => "truncated".to_string(),
        x509_parser::nom::Err::Error(e) | x509_parser::nom::Err::Failure(e) => match e {
            x509_parser::error::X509Error::Der(d) => match d {
                x509_parser::der_parser::error::Error::Incomplete(_) => "truncated".into(),
                _ => "malformed DER structure".into(),
            },
            other => other.to_string().to_lowercase(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::Certificate;

    #[test]
    fn a_name_reads_alike_with_and_without_its_sequence_header() {
        // The subject of a DER certificate: SEQUENCE, short length, then the RDNs.
        let der = certkeeper_testkit::TestCert::self_signed(&certkeeper_testkit::Spec::ca(
            "Acceptable CA",
        ))
        .der;
        let cert = Certificate::from_der(&der).unwrap();
        let name = &cert.subject_der;
        assert_eq!(name[0], 0x30);
        assert_eq!(
            Certificate::name_text(name).as_deref(),
            Some(cert.subject.as_str())
        );
        let inner = &name[2..];
        assert_eq!(
            Certificate::name_text(inner).as_deref(),
            Some(cert.subject.as_str())
        );
        assert_eq!(Certificate::name_text(&name[..name.len() - 1]), None);
    }
}
