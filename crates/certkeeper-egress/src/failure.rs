//! Turning a failed upstream call into one sentence that says what failed: which TLS
//! alert the upstream sent, why its certificate is not trusted, that nothing listens,
//! that it timed out.

use crate::tls::CnOnly;
use std::error::Error as StdError;

use rustls::{AlertDescription, CertificateError};

/// Explains an error chain in words (`where` is "host:port").
pub fn explain(error: &(dyn StdError + 'static), target: &str) -> String {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    let mut io_kind = None;
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return tls_reason(tls, target);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            // io::Error::source() skips the error it wraps (hyper-rustls wraps the
            // rustls error in two io::Errors): descend through get_ref() instead.
            if let Some(inner) = io.get_ref() {
                if io.kind() != std::io::ErrorKind::Other {
                    io_kind.get_or_insert(io.kind());
                }
                current = Some(inner as &(dyn StdError + 'static));
                continue;
            }
            io_kind.get_or_insert(io.kind());
        }
        if e.downcast_ref::<tokio::time::error::Elapsed>().is_some() {
            return format!("{target} did not answer in time (timeout)");
        }
        current = e.source();
    }
    match io_kind {
        Some(std::io::ErrorKind::ConnectionRefused) => {
            format!(
                "{target} refused the connection (nothing listens there: is the upstream down?)"
            )
        }
        Some(std::io::ErrorKind::TimedOut) => format!("connecting to {target} timed out"),
        Some(std::io::ErrorKind::ConnectionReset) => format!("{target} reset the connection"),
        Some(std::io::ErrorKind::BrokenPipe) => {
            format!("{target} closed the connection while the request was being sent")
        }
        Some(std::io::ErrorKind::UnexpectedEof) => {
            format!("{target} closed the connection without an answer")
        }
        _ => {
            let text = error.to_string();
            if text.contains("dns error") || text.contains("failed to lookup") {
                format!("{target}: the host name does not resolve")
            } else if text.contains("timed out") {
                format!("connecting to {target} timed out")
            } else {
                format!("the call to {target} failed: {text}")
            }
        }
    }
}

fn tls_reason(error: &rustls::Error, target: &str) -> String {
    match error {
        rustls::Error::AlertReceived(alert) => {
            let what = match alert {
                AlertDescription::CertificateRequired => {
                    "it requires a client certificate and got none"
                }
                AlertDescription::BadCertificate
                | AlertDescription::UnsupportedCertificate
                | AlertDescription::CertificateUnknown => {
                    "it did not accept our client certificate"
                }
                AlertDescription::UnknownCA => "it does not trust the CA of our client certificate",
                AlertDescription::CertificateExpired => {
                    "it says our client certificate has expired"
                }
                AlertDescription::CertificateRevoked => "it says our client certificate is revoked",
                AlertDescription::AccessDenied => "it denied access",
                AlertDescription::HandshakeFailure => "no common TLS parameters, or it rejected us",
                AlertDescription::ProtocolVersion => "no common TLS version",
                _ => "see the alert",
            };
            format!("{target} refused the TLS handshake with alert {alert:?}: {what}")
        }
        rustls::Error::InvalidCertificate(cert_error) => {
            let what = match cert_error {
                CertificateError::UnknownIssuer => {
                    "it is issued by a CA that is not trusted here (see --server-ca)".to_string()
                }
                CertificateError::Expired => "it expired".to_string(),
                CertificateError::ExpiredContext { not_after, .. } => {
                    format!("it expired on {}", utc_date(*not_after))
                }
                CertificateError::NotValidYet => "it is not valid yet".to_string(),
                CertificateError::NotValidYetContext { not_before, .. } => {
                    format!("it is not valid before {}", utc_date(*not_before))
                }
                CertificateError::NotValidForName => {
                    "it is not valid for this host name".to_string()
                }
                CertificateError::NotValidForNameContext { presented, .. } => {
                    format!(
                        "it is not valid for this host name (it names: {})",
                        presented
                            .iter()
                            .map(|n| bare_name(n))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
                CertificateError::BadSignature => "its signature is bad".to_string(),
                CertificateError::Other(other) => match other.0.downcast_ref::<CnOnly>() {
                    Some(cn_only) => cn_only.to_string(),
                    None => other.to_string(),
                },
                other => format!("{other:?}"),
            };
            format!("the certificate of {target} is not trusted: {what}")
        }
        rustls::Error::NoCertificatesPresented => format!("{target} presented no certificate"),
        other => format!("TLS with {target} failed: {other}"),
    }
}

/// A certificate time as its UTC date.
fn utc_date(t: rustls_pki_types::UnixTime) -> String {
    certkeeper_core::path::date(i64::try_from(t.as_secs()).unwrap_or(i64::MAX))
}

/// A name as rustls presents it (`DnsName("api.example")`) without its wrapper.
fn bare_name(presented: &str) -> &str {
    match (presented.find('"'), presented.rfind('"')) {
        (Some(a), Some(b)) if b > a => &presented[a + 1..b],
        _ => presented,
    }
}

#[cfg(test)]
mod tests {
    use super::bare_name;

    #[test]
    fn presented_names_lose_their_wrapper() {
        assert_eq!(bare_name("DnsName(\"api.example\")"), "api.example");
        assert_eq!(bare_name("*.example"), "*.example");
    }
}
