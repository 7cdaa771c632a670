//! The second TLS client: OpenSSL, for the partners rustls cannot serve.
//!
//! - Partners that ask for the client certificate *late*, after the handshake: by TLS
//!   1.2 renegotiation (secure renegotiation only, RFC 5746: OpenSSL refuses the
//!   insecure kind unless told otherwise, and it is not told) or by TLS 1.3
//!   post-handshake authentication (offered through [`certkeeper_openssl`]). rustls
//!   does neither.
//! - Partners on old TLS stacks, when a binding or a request opts in (`--legacy-tls`):
//!   TLS 1.0 to 1.2 with RSA key exchange and CBC suites, and a certificate that names
//!   its host only in its CN.
//!
//! Everything else stays on rustls. The trust decision is not OpenSSL's: OpenSSL's own
//! chain check is overruled by a callback that asks the same rustls-webpki verifier the
//! rustls path uses ([`crate::tls::server_verifier`]), with the home's anchors and the
//! host name, so there is one set of certificate rules. The only thing `--legacy-tls`
//! loosens there is the name: a certificate with no subjectAltName may name its host in
//! its CN.

use std::sync::{Arc, Mutex};

use openssl::pkey::PKey;
use openssl::ssl::{
    Ssl, SslContext, SslContextBuilder, SslMethod, SslOptions, SslVerifyMode, SslVersion,
};
use openssl::x509::{X509, X509StoreContext, X509StoreContextRef};
use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::EgressError;
use crate::tls::{CnOnly, ServerTrust};

pub use certkeeper_agent::server::Identity;

/// Which OpenSSL settings: the same protocol floor and suites as the rustls path
/// (`Late`), or what old partners need (`Legacy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// TLS 1.2 (ECDHE with AES-GCM or ChaCha20-Poly1305) and TLS 1.3, as rustls offers;
    /// renegotiation and post-handshake authentication answered.
    Late,
    /// `--legacy-tls`: also TLS 1.0 and 1.1, RSA key exchange and CBC suites, servers
    /// without RFC 5746, and a certificate's CN for its host when it has no
    /// subjectAltName.
    Legacy,
}

/// Whether the partner asked for the client certificate on an OpenSSL session: in
/// the handshake, and after it (renegotiation, post-handshake authentication; OpenSSL
/// answered with the certificate).
#[derive(Debug, Clone)]
pub struct Asked {
    requests: Arc<certkeeper_openssl::Requests>,
    in_handshake: u32,
}

impl Asked {
    /// In the handshake.
    pub fn in_handshake(&self) -> bool {
        self.in_handshake > 0
    }

    /// After the handshake, so far.
    pub fn after(&self) -> bool {
        self.requests.count() > self.in_handshake
    }

    /// The acceptable CAs (DER Names) of the partner's last request for the
    /// certificate: empty when it named none, never asked, or sent a request that does
    /// not read.
    pub fn accepted(&self) -> Vec<Vec<u8>> {
        self.requests
            .last()
            .and_then(|(version, message)| {
                crate::cert_request::acceptable_cas(version, &message).ok()
            })
            .unwrap_or_default()
    }
}

/// What OpenSSL connections offer: HTTP/1.1 only. A partner asks for the certificate
/// late only over HTTP/1.1 (HTTP/2 forbids renegotiation and post-handshake
/// authentication, RFC 8740), and the old stacks `--legacy-tls` reaches predate HTTP/2.
pub const ALPN: &[&[u8]] = &[b"http/1.1"];

/// How many times a partner may ask for the client certificate on one session (each
/// answer is a signature with the key): a partner asks once per protected path it
/// renegotiates for, and a session carries a few paths at most before it is replaced.
pub const MAX_REQUESTS: u32 = 32;

/// The suites of TLS 1.2 the rustls path offers, in its order (AES-128-GCM first).
const LATE_SUITES: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
     ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:\
     ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/// The suites of TLS 1.3, in the rustls path's order.
const TLS13_SUITES: &str =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

/// Old partners: OpenSSL's default list (which has the RSA key exchange and CBC
/// suites), at security level 0, which TLS 1.0 and 1.1 need (their handshakes are
/// signed with SHA-1 and MD5).
const LEGACY_SUITES: &str = "DEFAULT:!aNULL:!eNULL:@SECLEVEL=0";

/// An OpenSSL client context: the settings of a flavour, the client certificate and
/// key (when there is one), and the server check.
pub struct OpenSslClient {
    context: SslContext,
    verifier: Option<Arc<dyn ServerCertVerifier>>,
    flavour: Flavour,
}

impl std::fmt::Debug for OpenSslClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenSslClient")
            .field("flavour", &self.flavour)
            .finish_non_exhaustive()
    }
}

fn config_error(what: &str) -> impl Fn(openssl::error::ErrorStack) -> EgressError + '_ {
    move |e| EgressError::Config(format!("{what}: {e}"))
}

impl OpenSslClient {
    /// A context presenting `identity` (when given) and checking the partner against
    /// `trust` as the rustls path does.
    pub fn new(
        identity: Option<&Identity>,
        trust: &ServerTrust,
        flavour: Flavour,
    ) -> Result<Self, EgressError> {
        let mut builder = SslContext::builder(SslMethod::tls_client())
            .map_err(config_error("the OpenSSL context"))?;
        configure(&mut builder, flavour)?;
        if let Some(identity) = identity {
            present(&mut builder, identity)?;
        }
        // OpenSSL's own verdict is overruled per connection (see `handshake`): peer
        // verification is on so that the callback runs and a refusal ends the
        // handshake. `--insecure` checks nothing, on this path as on the other.
        let verifier = match trust {
            ServerTrust::Roots(_) => Some(crate::tls::server_verifier(trust)?),
            ServerTrust::Insecure => None,
        };
        builder.set_verify(match verifier {
            Some(_) => SslVerifyMode::PEER,
            None => SslVerifyMode::NONE,
        });
        Ok(OpenSslClient {
            context: builder.build(),
            verifier,
            flavour,
        })
    }

    /// The TLS session over `tcp` (connected to `host:port`, through a proxy's tunnel
    /// or not, read through [`crate::tls::buffered`]), within
    /// [`crate::tls::CONNECT_TIMEOUT`]; `alpn` and `allow` as for
    /// [`OpenSslClient::handshake`].
    pub async fn connect_over(
        &self,
        tcp: tokio::net::TcpStream,
        host: &str,
        port: u16,
        alpn: &[&[u8]],
        allow: Option<Box<dyn Fn() -> bool + Send + Sync>>,
    ) -> Result<(tokio_openssl::SslStream<crate::tls::Socket>, Asked), EgressError> {
        let target = format!("{host}:{port}");
        let handshake = self.handshake(crate::tls::buffered(tcp), host, &target, alpn, allow);
        tokio::time::timeout(crate::tls::CONNECT_TIMEOUT, handshake)
            .await
            .map_err(|_| crate::tls::timed_out(&target))?
    }

    /// Runs the handshake over `io` (already connected, through a proxy's tunnel or
    /// not) for `host` (as in a URL), offering `alpn`; `target` (`host:port`) names
    /// the partner in failures. A refusal of the partner's certificate is the
    /// verifier's own error; other failures are worded as on the rustls path.
    ///
    /// Each time the partner asks for the client certificate, `allow` (when given)
    /// decides whether it is presented, and so whether the key signs; and a partner
    /// that asks more than [`MAX_REQUESTS`] times on one session is cut off.
    pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: S,
        host: &str,
        target: &str,
        alpn: &[&[u8]],
        allow: Option<Box<dyn Fn() -> bool + Send + Sync>>,
    ) -> Result<(tokio_openssl::SslStream<S>, Asked), EgressError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(bare.to_string())
            .map_err(|_| EgressError::Config(format!("{host}: not a valid host name")))?;
        let mut ssl = Ssl::new(&self.context).map_err(config_error("an OpenSSL session"))?;
        if matches!(name, ServerName::DnsName(_)) {
            ssl.set_hostname(bare)
                .map_err(config_error("the server name"))?;
        }
        if !alpn.is_empty() {
            let mut wire = Vec::new();
            for p in alpn {
                wire.push(p.len() as u8);
                wire.extend_from_slice(p);
            }
            ssl.set_alpn_protos(&wire)
                .map_err(config_error("the ALPN list"))?;
        }
        let refusal: Arc<Mutex<Option<rustls::Error>>> = Arc::default();
        if let Some(verifier) = &self.verifier {
            let verifier = Arc::clone(verifier);
            let seen = Arc::clone(&refusal);
            let legacy = self.flavour == Flavour::Legacy;
            ssl.set_verify_callback(SslVerifyMode::PEER, move |_, ctx| {
                // OpenSSL calls this for each certificate of the chain it built, the
                // partner's own (depth 0) last, and again for each problem it finds;
                // its verdicts are ignored and the one at depth 0 is webpki's.
                if ctx.error_depth() != 0 {
                    return true;
                }
                match verify(verifier.as_ref(), ctx, &name, legacy) {
                    Ok(()) => true,
                    Err(e) => {
                        *seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                        false
                    }
                }
            });
        }
        let requests = certkeeper_openssl::count_certificate_requests(&mut ssl)
            .map_err(config_error("an OpenSSL session"))?;
        // Asked for before the certificate callback runs, so the count includes this
        // request.
        let counted = Arc::clone(&requests);
        let gate = certkeeper_openssl::Gate(Box::new(move || {
            counted.count() <= MAX_REQUESTS && allow.as_ref().is_none_or(|allow| allow())
        }));
        certkeeper_openssl::gate_certificate(&mut ssl, gate)
            .map_err(config_error("an OpenSSL session"))?;
        let mut stream =
            tokio_openssl::SslStream::new(ssl, io).map_err(config_error("an OpenSSL session"))?;
        match std::pin::Pin::new(&mut stream).connect().await {
            Ok(()) => {
                let in_handshake = requests.count();
                Ok((
                    stream,
                    Asked {
                        requests,
                        in_handshake,
                    },
                ))
            }
            Err(e) => {
                let refused = refusal.lock().unwrap_or_else(|p| p.into_inner()).take();
                Err(EgressError::Call(match refused {
                    Some(why) => crate::failure::explain(&std::io::Error::other(why), target),
                    None => handshake_failure(&e, target),
                }))
            }
        }
    }
}

/// Makes the agent's `tls_session`s ([`certkeeper_agent::handoff`]): an OpenSSL
/// session over the caller's connection, checked with the trust it asked for.
#[derive(Debug, Default)]
pub struct AgentSessions;

impl certkeeper_agent::handoff::SessionMaker for AgentSessions {
    fn make(
        &self,
        socket: tokio::net::TcpStream,
        identity: Identity,
        request: certkeeper_agent::handoff::SessionRequest,
        allow: Box<dyn Fn() -> bool + Send + Sync>,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<certkeeper_agent::handoff::Made, String>>
                + Send,
        >,
    > {
        Box::pin(async move {
            use certkeeper_agent::handoff::SessionAnchors;
            let trust = match request.anchors {
                SessionAnchors::System => {
                    ServerTrust::Roots(crate::tls::system_roots().map_err(|e| e.to_string())?)
                }
                SessionAnchors::Der(anchors) => ServerTrust::Roots(anchors),
                SessionAnchors::Insecure => ServerTrust::Insecure,
            };
            let flavour = if request.legacy {
                Flavour::Legacy
            } else {
                Flavour::Late
            };
            let client =
                OpenSslClient::new(Some(&identity), &trust, flavour).map_err(|e| e.to_string())?;
            let alpn: Vec<&[u8]> = request.alpn.iter().map(Vec::as_slice).collect();
            let _ = socket.set_nodelay(true);
            let (tls, asked) = client
                .connect_over(socket, &request.host, request.port, &alpn, Some(allow))
                .await
                .map_err(|e| e.to_string())?;
            let stream = crate::tls::Stream::OpenSsl(tls, asked.clone());
            let chain = identity.chain.clone();
            Ok(certkeeper_agent::handoff::Made {
                session: stream.info().into_session(),
                stream: Box::new(stream),
                report: Box::new(move || {
                    let accepted = asked.accepted();
                    certkeeper_agent::protocol::SessionReport {
                        asked_after: asked.after(),
                        mismatch: crate::tls::issuer_mismatch(&accepted, &chain),
                        accepted: accepted
                            .iter()
                            .map(|name| crate::tls::name_text(name))
                            .collect(),
                    }
                }),
            })
        })
    }
}

/// What an OpenSSL handshake settled, named as the rustls path names it ("TLSv1_3").
pub fn info(ssl: &openssl::ssl::SslRef) -> crate::request::TlsInfo {
    crate::request::TlsInfo {
        version: ssl.version_str().replace('.', "_"),
        cipher: ssl
            .current_cipher()
            .map(|c| c.standard_name().unwrap_or(c.name()).to_string())
            .unwrap_or_default(),
        alpn: ssl
            .selected_alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        server_chain: ssl
            .peer_cert_chain()
            .map(|chain| {
                chain
                    .iter()
                    .filter_map(|c| c.to_der().ok())
                    .map(CertificateDer::from)
                    .collect()
            })
            .unwrap_or_default(),
        library: "OpenSSL",
        asked: Default::default(),
    }
}

/// Protocol versions, suites and options of a flavour.
fn configure(builder: &mut SslContextBuilder, flavour: Flavour) -> Result<(), EgressError> {
    let fail = config_error("the OpenSSL settings");
    match flavour {
        Flavour::Late => {
            builder
                .set_min_proto_version(Some(SslVersion::TLS1_2))
                .map_err(&fail)?;
            builder.set_cipher_list(LATE_SUITES).map_err(&fail)?;
            builder.set_ciphersuites(TLS13_SUITES).map_err(&fail)?;
            // A server without RFC 5746 is refused outright: renegotiation with it
            // could be spliced by a man in the middle.
            builder.clear_options(certkeeper_openssl::LEGACY_SERVER_CONNECT);
        }
        Flavour::Legacy => {
            builder
                .set_min_proto_version(Some(SslVersion::TLS1))
                .map_err(&fail)?;
            builder.set_cipher_list(LEGACY_SUITES).map_err(&fail)?;
            // Old servers may lack RFC 5746; OpenSSL still refuses to renegotiate with
            // them (ALLOW_UNSAFE_LEGACY_RENEGOTIATION stays off).
            builder.set_options(certkeeper_openssl::LEGACY_SERVER_CONNECT);
        }
    }
    builder.set_options(SslOptions::NO_COMPRESSION);
    certkeeper_openssl::offer_post_handshake_auth(builder);
    Ok(())
}

/// The client certificate, its CAs and its key.
fn present(builder: &mut SslContextBuilder, identity: &Identity) -> Result<(), EgressError> {
    let fail = config_error("the client certificate");
    let (leaf, cas) = identity
        .chain
        .split_first()
        .ok_or_else(|| EgressError::Config("the client certificate: none".into()))?;
    builder
        .set_certificate(X509::from_der(leaf).map_err(&fail)?.as_ref())
        .map_err(&fail)?;
    for ca in cas {
        builder
            .add_extra_chain_cert(X509::from_der(ca).map_err(&fail)?)
            .map_err(&fail)?;
    }
    let key = PKey::private_key_from_pkcs8(&identity.pkcs8).map_err(&fail)?;
    builder.set_private_key(&key).map_err(&fail)?;
    builder.check_private_key().map_err(&fail)
}

/// The partner's chain as it sent it (leaf first), checked by `verifier` for `name`.
/// With `legacy`, a certificate that has no subjectAltName may name its host in its
/// CN (compared whole, ignoring case, as old clients did; no wildcards).
fn verify(
    verifier: &dyn ServerCertVerifier,
    ctx: &X509StoreContextRef,
    name: &ServerName<'static>,
    legacy: bool,
) -> Result<(), rustls::Error> {
    let sent = X509StoreContext::ssl_idx()
        .ok()
        .and_then(|idx| ctx.ex_data(idx))
        .and_then(|ssl| ssl.peer_cert_chain());
    let der: Vec<Vec<u8>> = match sent {
        Some(chain) => chain.iter().filter_map(|c| c.to_der().ok()).collect(),
        None => ctx
            .current_cert()
            .and_then(|c| c.to_der().ok())
            .into_iter()
            .collect(),
    };
    let Some((leaf, rest)) = der.split_first() else {
        return Err(rustls::Error::NoCertificatesPresented);
    };
    let leaf = CertificateDer::from(leaf.as_slice());
    let intermediates: Vec<CertificateDer<'_>> = rest
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    match verifier.verify_server_cert(&leaf, &intermediates, name, &[], UnixTime::now()) {
        Ok(_) => Ok(()),
        Err(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)))
            if legacy && cn_names(&other, name) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Whether a [`CnOnly`] refusal names exactly the host we asked for.
fn cn_names(other: &rustls::OtherError, name: &ServerName<'_>) -> bool {
    let Some(cn_only) = other.0.downcast_ref::<CnOnly>() else {
        return false;
    };
    match name {
        ServerName::DnsName(dns) => cn_only.cn.eq_ignore_ascii_case(dns.as_ref()),
        ServerName::IpAddress(ip) => cn_only.cn == std::net::IpAddr::from(*ip).to_string(),
        _ => false,
    }
}

/// A failed OpenSSL handshake in the words of the rustls path: the partner's alert
/// as rustls names it (so [`crate::failure::explain`] says what it means), else what
/// OpenSSL said.
fn handshake_failure(e: &openssl::ssl::Error, target: &str) -> String {
    if let Some(io) = e.io_error() {
        return crate::failure::explain(io, target);
    }
    let reasons: Vec<&str> = e
        .ssl_error()
        .map(|stack| stack.errors().iter().filter_map(|e| e.reason()).collect())
        .unwrap_or_default();
    if let Some(alert) = reasons.iter().find_map(|r| alert_named(r)) {
        let e = std::io::Error::other(rustls::Error::AlertReceived(alert));
        return crate::failure::explain(&e, target);
    }
    if reasons.is_empty() {
        return format!("{target} closed the connection during the TLS handshake");
    }
    format!(
        "the TLS handshake with {target} failed: {}",
        reasons.join("; ")
    )
}

/// The alert in an OpenSSL reason such as "tlsv1 alert unknown ca".
fn alert_named(reason: &str) -> Option<rustls::AlertDescription> {
    use rustls::AlertDescription as A;
    let (_, name) = reason.split_once(" alert ")?;
    Some(match name {
        "handshake failure" => A::HandshakeFailure,
        "bad certificate" => A::BadCertificate,
        "unsupported certificate" => A::UnsupportedCertificate,
        "certificate revoked" => A::CertificateRevoked,
        "certificate expired" => A::CertificateExpired,
        "certificate unknown" => A::CertificateUnknown,
        "illegal parameter" => A::IllegalParameter,
        "unknown ca" => A::UnknownCA,
        "access denied" => A::AccessDenied,
        "decode error" => A::DecodeError,
        "decrypt error" => A::DecryptError,
        "protocol version" => A::ProtocolVersion,
        "insufficient security" => A::InsufficientSecurity,
        "internal error" => A::InternalError,
        "certificate required" => A::CertificateRequired,
        "no renegotiation" => A::NoRenegotiation,
        "unrecognized name" => A::UnrecognisedName,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_alert_reasons_are_named_as_rustls_names_them() {
        use rustls::AlertDescription as A;
        assert_eq!(alert_named("tlsv1 alert unknown ca"), Some(A::UnknownCA));
        assert_eq!(
            alert_named("sslv3 alert handshake failure"),
            Some(A::HandshakeFailure)
        );
        assert_eq!(
            alert_named("tlsv13 alert certificate required"),
            Some(A::CertificateRequired)
        );
        assert_eq!(alert_named("wrong version number"), None);
    }
}
