//! PKCS#7 / CMS certificate bundles (`.p7b`, `.p7c`): the certificates of a SignedData.
//!
//! A small reader over [`crate::ber`] rather than the `cms` crate: only the
//! certificate set matters here, and real bundles come in BER (Apple Keychain) and
//! with signer infos certkeeper has no use for.

use crate::ber::{self, Tlv};
use crate::cert::Certificate;
use crate::error::FormatError;
use crate::key::oid_string;

const WHAT: &str = "PKCS#7";

/// The OID prefix of the PKCS#7 content types (1.2.840.113549.1.7).
pub const OID_PKCS7_PREFIX: &str = "1.2.840.113549.1.7.";

/// Whether `tlv` (a SEQUENCE's first child) is a PKCS#7 content type OID.
pub fn is_content_type(tlv: &Tlv<'_>) -> bool {
    oid_string(tlv).is_some_and(|o| o.starts_with(OID_PKCS7_PREFIX))
}

/// The certificates in a PKCS#7 ContentInfo (DER or BER).
pub fn certificates(input: &[u8]) -> Result<Vec<Certificate>, FormatError> {
    let der = ber::to_der(input).map_err(|e| FormatError::ber(WHAT, &e))?;
    let info = ber::read_single(&der).map_err(|e| FormatError::ber(WHAT, &e))?;
    let parts = info.children().map_err(|e| FormatError::ber(WHAT, &e))?;
    let content_type = parts
        .first()
        .and_then(oid_string)
        .ok_or_else(|| FormatError::damaged(WHAT, "no content type"))?;
    match content_type.as_str() {
        "1.2.840.113549.1.7.2" => {}
        "1.2.840.113549.1.7.3" => {
            return Err(FormatError::Empty {
                detail: "it is a PKCS#7 envelopedData: an encrypted message".into(),
            });
        }
        other => {
            return Err(FormatError::Empty {
                detail: format!("it is PKCS#7 content of type {other}, not signedData"),
            });
        }
    }
    let explicit = parts
        .get(1)
        .filter(|t| t.tag_byte() == 0xa0)
        .ok_or_else(|| FormatError::damaged(WHAT, "signedData without content"))?;
    let signed = explicit
        .children()
        .map_err(|e| FormatError::ber(WHAT, &e))?;
    let signed = signed
        .first()
        .filter(|t| t.tag_byte() == 0x30)
        .ok_or_else(|| FormatError::damaged(WHAT, "signedData is not a SEQUENCE"))?;
    let fields = signed.children().map_err(|e| FormatError::ber(WHAT, &e))?;
    let mut certs = Vec::new();
    // version, digestAlgorithms, encapContentInfo, then the optional [0] certificates.
    for field in fields.iter().skip(3) {
        if field.tag_byte() != 0xa0 {
            continue;
        }
        for (i, choice) in field
            .children()
            .map_err(|e| FormatError::ber(WHAT, &e))?
            .iter()
            .enumerate()
        {
            // Other CertificateChoices (attribute certificates, [0]..[3]) are not X.509.
            if choice.tag_byte() != 0x30 {
                continue;
            }
            let cert = Certificate::from_der(choice.raw).map_err(|e| match e {
                FormatError::Damaged { detail, .. } => {
                    FormatError::damaged(format!("PKCS#7 certificate {}", i + 1), detail)
                }
                other => other,
            })?;
            certs.push(cert);
        }
    }
    if certs.is_empty() {
        return Err(FormatError::Empty {
            detail: "a PKCS#7 signedData without certificates".into(),
        });
    }
    Ok(certs)
}

/// Writes a certificates-only PKCS#7 SignedData (DER), as `openssl crl2pkcs7` does.
pub fn encode_certificates<'a>(certs: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let cert_set: Vec<u8> = certs.into_iter().flat_map(|c| c.iter().copied()).collect();
    let signed_data = ber::encode(
        &[0x30],
        &[
            vec![0x02, 0x01, 0x01], // version 1
            vec![0x31, 0x00],       // no digest algorithms
            ber::encode(&[0x30], &crate::key::oid_tlv("1.2.840.113549.1.7.1")), // data, absent
            ber::encode(&[0xa0], &cert_set), // certificates
            vec![0x31, 0x00],       // no signer infos
        ]
        .concat(),
    );
    ber::encode(
        &[0x30],
        &[
            crate::key::oid_tlv("1.2.840.113549.1.7.2"),
            ber::encode(&[0xa0], &signed_data),
        ]
        .concat(),
    )
}
