//! The rustls client configuration: whom to trust for the upstream's certificate
//! (the home's `root` store, the system's roots, or one named CA), which client
//! certificate to present, and the explicit `--insecure` escape hatch.

use std::sync::Arc;

use certkeeper_store::{Home, StoreName};
use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::EgressError;
use crate::failure::explain;
use crate::tunnel::Destination;

/// How long to wait for a TCP connection and the TLS handshake, each.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A mutual-TLS connection, made by rustls or (for the partners rustls cannot serve,
/// [`crate::tls_openssl`]) by OpenSSL. Reads from the socket go through a 64 KiB
/// buffer: rustls asks for 4 KiB at a time after each drained record, which made a
/// 64 KiB answer about nine reads (and as many window updates for the partner) instead
/// of two.
pub enum Stream {
    /// rustls (boxed: its connection state is a few kilobytes).
    Rustls(Box<tokio_rustls::client::TlsStream<Socket>>),
    /// OpenSSL, with what the partner asked of the certificate.
    OpenSsl(tokio_openssl::SslStream<Socket>, crate::tls_openssl::Asked),
}

/// The TCP connection under a [`Stream`] (a proxy's tunnel, or not), read through a
/// buffer.
pub type Socket = tokio::io::BufReader<tokio::net::TcpStream>;

impl Stream {
    /// The application protocol the partner chose.
    pub fn alpn(&self) -> Option<&[u8]> {
        match self {
            Stream::Rustls(s) => s.get_ref().1.alpn_protocol(),
            Stream::OpenSsl(s, _) => s.ssl().selected_alpn_protocol(),
        }
    }

    /// Whether the session was negotiated in full (not resumed: a resumed session has
    /// no CertificateRequest, whatever the partner wants).
    pub fn full_handshake(&self) -> bool {
        match self {
            Stream::Rustls(s) => !matches!(
                s.get_ref().1.handshake_kind(),
                Some(rustls::HandshakeKind::Resumed)
            ),
            Stream::OpenSsl(s, _) => !s.ssl().session_reused(),
        }
    }

    /// What the handshake settled, as `request -v` shows it.
    pub fn info(&self) -> crate::request::TlsInfo {
        match self {
            Stream::Rustls(s) => {
                let session = s.get_ref().1;
                crate::request::TlsInfo {
                    version: session
                        .protocol_version()
                        .map(|v| format!("{v:?}"))
                        .unwrap_or_default(),
                    cipher: session
                        .negotiated_cipher_suite()
                        .map(|c| format!("{:?}", c.suite()))
                        .unwrap_or_default(),
                    alpn: session
                        .alpn_protocol()
                        .map(|p| String::from_utf8_lossy(p).into_owned()),
                    server_chain: session
                        .peer_certificates()
                        .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
                        .unwrap_or_default(),
                    library: self.library(),
                    asked: Default::default(),
                }
            }
            Stream::OpenSsl(s, asked) => {
                let mut info = crate::tls_openssl::info(s.ssl());
                info.asked = crate::request::CertificateAsked {
                    in_handshake: asked.in_handshake(),
                    after: asked.after(),
                    ..Default::default()
                };
                info
            }
        }
    }

    /// Which TLS library serves this connection.
    pub fn library(&self) -> &'static str {
        match self {
            Stream::Rustls(_) => "rustls",
            Stream::OpenSsl(..) => "OpenSSL",
        }
    }
}

impl tokio::io::AsyncRead for Stream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Rustls(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::OpenSsl(s, _) => std::pin::Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for Stream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Rustls(s) => std::pin::Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::OpenSsl(s, _) => std::pin::Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Rustls(s) => std::pin::Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            Stream::OpenSsl(s, _) => std::pin::Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Rustls(s) => s.is_write_vectored(),
            Stream::OpenSsl(s, _) => s.is_write_vectored(),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Rustls(s) => std::pin::Pin::new(s.as_mut()).poll_flush(cx),
            Stream::OpenSsl(s, _) => std::pin::Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Rustls(s) => std::pin::Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::OpenSsl(s, _) => std::pin::Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Opens a mutual-TLS connection to `host:port` (`host` as in a URL: a name, an IPv4
/// address or a bracketed IPv6 address), directly or through the forward proxy the
/// destination names (a CONNECT tunnel, [`crate::tunnel`]; the TLS session then runs
/// end to end through it), within [`CONNECT_TIMEOUT`] for the TCP connection (and
/// tunnel) and again for the handshake. A failure says what failed ([`explain`]),
/// naming the proxy when it was the proxy.
pub async fn connect<D: Destination + ?Sized>(
    destination: &D,
    port: u16,
    config: Arc<ClientConfig>,
) -> Result<Stream, EgressError> {
    let host = destination.host();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let target = format!("{host}:{port}");
    let name = ServerName::try_from(bare.to_string())
        .map_err(|_| EgressError::Config(format!("{host}: not a valid host name")))?;
    let tcp = open(destination, port).await?;
    let handshake = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_rustls::TlsConnector::from(config).connect(name, buffered(tcp)),
    )
    .await
    .map_err(|_| timed_out(&target))?;
    match handshake {
        Ok(stream) => Ok(Stream::Rustls(Box::new(stream))),
        Err(e) if no_common_parameters(&e) => {
            // Ask what the partner does speak, and say it.
            let mut reason = explain(&e, &target);
            if let Some(picked) = crate::probe::ask(destination, port).await {
                reason.push_str(": ");
                reason.push_str(&picked.describe());
            }
            Err(EgressError::Call(reason))
        }
        Err(e) => Err(EgressError::Call(explain(&e, &target))),
    }
}

/// [`connect`], with OpenSSL making the session ([`crate::tls_openssl`]).
pub async fn connect_openssl<D: Destination + ?Sized>(
    destination: &D,
    port: u16,
    client: &crate::tls_openssl::OpenSslClient,
) -> Result<Stream, EgressError> {
    let tcp = open(destination, port).await?;
    let (tls, asked) = client
        .connect_over(
            tcp,
            destination.host(),
            port,
            crate::tls_openssl::ALPN,
            None,
        )
        .await?;
    Ok(Stream::OpenSsl(tls, asked))
}

/// The TCP connection to `host:port`, through the destination's proxy if it has one,
/// within [`CONNECT_TIMEOUT`].
pub async fn open<D: Destination + ?Sized>(
    destination: &D,
    port: u16,
) -> Result<tokio::net::TcpStream, EgressError> {
    let host = destination.host();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let target = format!("{host}:{port}");
    match destination.via() {
        Some(proxy) => Ok(proxy.open(host, port, CONNECT_TIMEOUT).await?),
        None => {
            let tcp = tokio::time::timeout(
                CONNECT_TIMEOUT,
                tokio::net::TcpStream::connect((bare, port)),
            )
            .await
            .map_err(|_| EgressError::Call(format!("connecting to {target} timed out")))?
            .map_err(|e| EgressError::Call(explain(&e, &target)))?;
            let _ = tcp.set_nodelay(true);
            Ok(tcp)
        }
    }
}

pub(crate) fn buffered(tcp: tokio::net::TcpStream) -> Socket {
    tokio::io::BufReader::with_capacity(64 * 1024, tcp)
}

pub(crate) fn timed_out(target: &str) -> EgressError {
    EgressError::Call(format!("the TLS handshake with {target} timed out"))
}

thread_local! {
    /// Set when a client certificate is asked for on this thread (by
    /// [`AcceptedIssuers::record`]); see [`watch_for_request`].
    static ASKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Notes, for [`watch_for_request`], that the partner asked for the client
/// certificate: every resolver calls it first.
pub fn asked_now() {
    ASKED.set(true);
}

/// Runs `handshake` (a rustls handshake whose resolver calls [`asked_now`]) and tells whether the partner asked for the client certificate
/// in it. rustls calls the resolver synchronously while a poll of the handshake
/// processes the CertificateRequest, so a flag cleared before each poll and read
/// after it belongs to this handshake even when others run on the same thread.
pub async fn watch_for_request<T>(handshake: impl Future<Output = T>) -> (T, bool) {
    let mut handshake = std::pin::pin!(handshake);
    let mut asked = false;
    let out = std::future::poll_fn(|cx| {
        ASKED.set(false);
        let poll = handshake.as_mut().poll(cx);
        asked |= ASKED.replace(false);
        poll
    })
    .await;
    (out, asked)
}

/// Whether a failed handshake says only that the partner and rustls share no version
/// or suite (the partner's alert, or rustls' own verdict on its hello).
fn no_common_parameters(e: &std::io::Error) -> bool {
    use rustls::AlertDescription as A;
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return false;
    };
    matches!(
        tls,
        rustls::Error::AlertReceived(
            A::HandshakeFailure | A::ProtocolVersion | A::InsufficientSecurity
        ) | rustls::Error::PeerIncompatible(_)
    )
}

/// How the upstream's certificate is checked.
#[derive(Debug, Clone)]
pub enum ServerTrust {
    /// These trust anchors, with the host name checked.
    Roots(Vec<CertificateDer<'static>>),
    /// Nothing checked (`--insecure`).
    Insecure,
}

impl ServerTrust {
    /// Trust as a binding or `--server-ca` names it: `root`, `system`, or a REF.
    pub fn named(home: Option<&Home>, name: &str) -> Result<Self, EgressError> {
        match name {
            "system" => system_roots().map(ServerTrust::Roots),
            "root" => {
                let home = home.ok_or_else(|| {
                    EgressError::Config(
                        "--server-ca root needs the home: use --server-ca system or a CA file"
                            .into(),
                    )
                })?;
                let roots: Vec<CertificateDer<'static>> = home
                    .list(Some(StoreName::Root))
                    .map_err(|e| EgressError::Config(e.to_string()))?
                    .into_iter()
                    .map(|e| CertificateDer::from(e.der))
                    .collect();
                if roots.is_empty() {
                    return Err(EgressError::Config(
                        "the home's root store is empty: import the upstream's root CA with \
                         `certkeeper import FILE --store root`, or use --server-ca system"
                            .into(),
                    ));
                }
                Ok(ServerTrust::Roots(roots))
            }
            // A file only when written as a path: a bare word is always a REF, so a
            // file of that name in someone's working directory cannot stand in for
            // a binding's CA.
            reference if is_path(reference) => {
                let bytes = std::fs::read(reference)
                    .map_err(|e| EgressError::Config(format!("--server-ca {reference}: {e}")))?;
                let certs = certkeeper_core::read_file(&bytes, None)
                    .map_err(|e| EgressError::Config(format!("--server-ca {reference}: {e}")))?;
                Ok(ServerTrust::Roots(
                    certs
                        .certs
                        .into_iter()
                        .map(|c| CertificateDer::from(c.cert.der))
                        .collect(),
                ))
            }
            reference => {
                let home = home.ok_or_else(|| {
                    EgressError::Config(format!(
                        "--server-ca {reference}: a CA of the home (give a file as a path: ./{reference})"
                    ))
                })?;
                let entry = home
                    .resolve(reference)
                    .map_err(|e| EgressError::Config(format!("--server-ca: {e}")))?;
                Ok(ServerTrust::Roots(vec![CertificateDer::from(entry.der)]))
            }
        }
    }

    /// The same trust as the agent takes it for a session it makes for the caller
    /// (`tls_session`): `root` and `system` by name (the agent reads them itself; the
    /// system's roots would not fit in a request), anything else as its anchors.
    pub fn for_agent(&self, server_ca: &str) -> certkeeper_agent::protocol::SessionTrust {
        use certkeeper_agent::protocol::SessionTrust;
        match (self, server_ca) {
            (ServerTrust::Insecure, _) => SessionTrust::Insecure,
            (_, "root") => SessionTrust::Root,
            (_, "system") => SessionTrust::System,
            (ServerTrust::Roots(anchors), _) => SessionTrust::Anchors {
                der: anchors
                    .iter()
                    .map(|a| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, a))
                    .collect(),
            },
        }
    }

    /// Thumbprint-like identity of the trust, to notice changes.
    pub fn identity(&self) -> Vec<Vec<u8>> {
        match self {
            ServerTrust::Roots(r) => r.iter().map(|c| c.as_ref().to_vec()).collect(),
            ServerTrust::Insecure => vec![b"insecure".to_vec()],
        }
    }
}

/// Whether `--server-ca` names a file: written as a path (with a `/`), and not a
/// `subject:` REF.
pub fn is_path(server_ca: &str) -> bool {
    server_ca.contains('/') && !server_ca.starts_with("subject:")
}

/// The system's trust store (`$SSL_CERT_FILE`, else Debian's bundle).
pub fn system_roots() -> Result<Vec<CertificateDer<'static>>, EgressError> {
    let path = std::env::var("SSL_CERT_FILE")
        .unwrap_or_else(|_| "/etc/ssl/certs/ca-certificates.crt".into());
    let bytes = std::fs::read(&path).map_err(|e| {
        EgressError::Config(format!(
            "system roots {path}: {e} (install ca-certificates)"
        ))
    })?;
    let contents = certkeeper_core::read_file(&bytes, None)
        .map_err(|e| EgressError::Config(format!("system roots {path}: {e}")))?;
    Ok(contents
        .certs
        .into_iter()
        .map(|c| CertificateDer::from(c.cert.der))
        .collect())
}

/// The crypto provider: aws-lc-rs, with AES-128-GCM offered before AES-256-GCM.
///
/// rustls offers AES-256-GCM first, and partners that honour the client's order (nginx
/// and most OpenSSL servers do by default) then encrypt every answer with 14 AES rounds
/// instead of 10. AES-128-GCM is the suite TLS 1.3 requires of every implementation
/// (RFC 8446, 9.1) and the one Go and the browsers put first; the set offered is
/// unchanged, only the order.
pub fn provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.cipher_suites.sort_by_key(suite_rank);
    Arc::new(provider)
}

/// Offer order: TLS 1.3 before TLS 1.2 (as rustls has it), and within each version
/// AES-128-GCM, then AES-256-GCM, then ChaCha20-Poly1305. The sort is stable, so
/// rustls' order (ECDSA before RSA) is kept within a rank.
fn suite_rank(suite: &rustls::SupportedCipherSuite) -> (u8, u8) {
    use rustls::CipherSuite as S;
    let cipher = match suite.suite() {
        S::TLS13_AES_128_GCM_SHA256
        | S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        | S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => 0,
        S::TLS13_AES_256_GCM_SHA384
        | S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
        | S::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => 1,
        _ => 2,
    };
    (u8::from(suite.tls13().is_none()), cipher)
}

/// How a partner's certificate is checked, on either TLS library: webpki with the
/// trust anchors of `trust` and the host name ([`NamingVerifier`]), or nothing at all
/// for [`ServerTrust::Insecure`] (rustls still checks the handshake's signatures).
pub fn server_verifier(trust: &ServerTrust) -> Result<Arc<dyn ServerCertVerifier>, EgressError> {
    let provider = provider();
    let ServerTrust::Roots(roots) = trust else {
        return Ok(Arc::new(NoServerCheck(provider)));
    };
    let mut store = RootCertStore::empty();
    let (added, _) = store.add_parsable_certificates(roots.iter().cloned());
    if added == 0 {
        return Err(EgressError::Config(
            "no usable trust anchor for the upstream".into(),
        ));
    }
    let webpki =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
            .build()
            .map_err(|e| EgressError::Config(format!("the trust anchors: {e}")))?;
    Ok(Arc::new(NamingVerifier(webpki)))
}

/// A client configuration presenting what `resolver` gives, trusting `trust`.
pub fn client_config(
    trust: &ServerTrust,
    resolver: Arc<dyn ResolvesClientCert>,
    alpn: &[&[u8]],
) -> Result<ClientConfig, EgressError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| EgressError::Config(e.to_string()))?;
    let mut config = builder
        .dangerous()
        .with_custom_certificate_verifier(server_verifier(trust)?)
        .with_client_cert_resolver(resolver);
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// A client configuration presenting the certificate `reference` resolves to in the
/// agent at `socket`, its key used through the agent. Returns the resolver too, to
/// ask afterwards whether the server asked for the certificate.
pub fn agent_client_config(
    socket: &std::path::Path,
    reference: &str,
    trust: &ServerTrust,
    alpn: &[&[u8]],
) -> Result<
    (
        ClientConfig,
        Arc<FixedClientCert>,
        certkeeper_agent::protocol::KeyInfo,
    ),
    EgressError,
> {
    let (certified, info) = certkeeper_agent::AgentSigningKey::certified(socket, reference)?;
    if let Some(why) = certkeeper_core::KeyAlgorithm::from_name(&info.algorithm)
        .and_then(certkeeper_core::KeyAlgorithm::tls_refusal)
    {
        return Err(EgressError::Config(format!(
            "the key of {}: {why}",
            info.subject
        )));
    }
    let resolver = Arc::new(FixedClientCert::new(Arc::new(certified)));
    let config = client_config(trust, Arc::clone(&resolver) as _, alpn)?;
    Ok((config, resolver, info))
}

/// What the last request for a client certificate said: the CAs the partner accepts
/// client certificates from (DER Names; empty: any), and the certificate presented.
#[derive(Debug, Default)]
pub struct AcceptedIssuers {
    last: std::sync::Mutex<LastAsked>,
}

/// The acceptable CAs' DER Names, and the certificate presented.
type LastAsked = (Vec<Vec<u8>>, Option<Arc<CertifiedKey>>);

impl AcceptedIssuers {
    /// Notes a request for a certificate (`hints`) and what was presented. Called on
    /// every full handshake: the list is copied only when it changed.
    pub fn record(&self, hints: &[&[u8]], presented: &Arc<CertifiedKey>) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if !last.0.iter().map(Vec::as_slice).eq(hints.iter().copied()) {
            last.0 = hints.iter().map(|h| h.to_vec()).collect();
        }
        if !last.1.as_ref().is_some_and(|k| Arc::ptr_eq(k, presented)) {
            last.1 = Some(Arc::clone(presented));
        }
    }

    /// The CAs the partner said it accepts, as text (empty: it named none, so any).
    pub fn names(&self) -> Vec<String> {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.0.iter().map(|der| name_text(der)).collect()
    }

    /// When the partner named the CAs it accepts and none of them issued a certificate
    /// of the chain presented (the leaf or an intermediate): "the partner accepts
    /// certificates from: A; B; ours is issued by C".
    pub fn mismatch(&self) -> Option<String> {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let (accepted, presented) = &*last;
        let chain = presented.as_ref().map_or(&[][..], |k| k.cert.as_slice());
        issuer_mismatch(accepted, chain)
    }
}

/// When the partner named the CAs it accepts (`accepted`, DER Names) and none of them
/// issued a certificate of `chain` (the leaf or an intermediate presented): "the
/// partner accepts certificates from: A; B; ours is issued by C".
pub fn issuer_mismatch(accepted: &[Vec<u8>], chain: &[CertificateDer<'_>]) -> Option<String> {
    if accepted.is_empty() {
        return None;
    }
    let ours: Vec<certkeeper_core::Certificate> = chain
        .iter()
        .filter_map(|c| certkeeper_core::Certificate::from_der(c.as_ref()).ok())
        .collect();
    let issued = |name: &[u8]| {
        let text = certkeeper_core::Certificate::name_text(name);
        ours.iter()
            .any(|c| c.issuer_der == name || text.as_deref() == Some(c.issuer.as_str()))
    };
    if accepted.iter().any(|name| issued(name)) {
        return None;
    }
    let names: Vec<String> = accepted.iter().map(|der| name_text(der)).collect();
    let issuer = ours.first().map_or("(unknown)", |c| c.issuer.as_str());
    Some(format!(
        "the partner accepts certificates from: {}; ours is issued by {issuer}",
        names.join("; ")
    ))
}

/// A DER Name from a CertificateRequest, as text.
/// A CertificateRequest's name as text; control characters escaped ([`escaped`]).
pub fn name_text(der: &[u8]) -> String {
    certkeeper_core::Certificate::name_text(der)
        .map(|text| escaped(&text))
        .unwrap_or_else(|| "(a name that does not parse)".into())
}

/// Text a partner chose (a name in its certificate or its CertificateRequest), fit
/// for a terminal and a log line: control characters (escape sequences, line breaks
/// that would fake another line) become `\u{..}`.
pub fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// Presents one fixed certificate chain and key, and remembers from which CAs the
/// server asked for it (for `request -v`; whether it asked at all is the call's
/// [`crate::request::CertificateAsked`]).
#[derive(Debug)]
pub struct FixedClientCert {
    key: Arc<CertifiedKey>,
    accepted: AcceptedIssuers,
}

impl FixedClientCert {
    /// Presents `key`.
    pub fn new(key: Arc<CertifiedKey>) -> Self {
        FixedClientCert {
            key,
            accepted: AcceptedIssuers::default(),
        }
    }

    /// The CAs the server said it accepts client certificates from, as text (empty:
    /// it named none, so any).
    pub fn accepted_issuers(&self) -> Vec<String> {
        self.accepted.names()
    }

    /// See [`AcceptedIssuers::mismatch`].
    pub fn issuer_mismatch(&self) -> Option<String> {
        self.accepted.mismatch()
    }
}

impl ResolvesClientCert for FixedClientCert {
    fn resolve(&self, hints: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        asked_now();
        self.accepted.record(hints, &self.key);
        Some(Arc::clone(&self.key))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The partner's certificate as rustls-webpki checks it, unchanged, with one thing
/// added to a refusal: a certificate refused for the host name that has no
/// subjectAltName at all (the old style, which names its host only in the subject CN)
/// is reported with that CN ([`CnOnly`]), so the message says what the certificate
/// does carry instead of an empty list of names.
#[derive(Debug)]
struct NamingVerifier(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for NamingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        use rustls::CertificateError as E;
        let verdict =
            self.0
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        match verdict {
            Err(rustls::Error::InvalidCertificate(
                E::NotValidForName | E::NotValidForNameContext { .. },
            )) => match certkeeper_core::Certificate::from_der(end_entity.as_ref()) {
                Ok(cert) if cert.san.is_empty() => Err(rustls::Error::InvalidCertificate(
                    E::Other(rustls::OtherError(Arc::new(CnOnly {
                        cn: cert.common_name(),
                    }))),
                )),
                _ => verdict,
            },
            verdict => verdict,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[rustls::DistinguishedName]> {
        self.0.root_hint_subjects()
    }
}

/// A partner certificate refused for the host name that has no subjectAltName and
/// names its host only in its subject's CN.
#[derive(Debug, thiserror::Error)]
#[error(
    "it names its host only in its subject (CN={cn}) and has no subjectAltName; \
     a certificate must name its host in a subjectAltName (RFC 6125), so it is refused"
)]
pub struct CnOnly {
    /// The subject's common name ("" when it has none).
    pub cn: String,
}

/// `--insecure`: accepts any server certificate, but still checks the handshake
/// signatures so the session is at least with the holder of that certificate.
#[derive(Debug)]
struct NoServerCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoServerCheck {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_a_partner_chose_are_escaped() {
        assert_eq!(
            escaped("CN=\u{1b}[31mRED\nfake line"),
            "CN=\\u{1b}[31mRED\\u{a}fake line"
        );
        assert_eq!(escaped("CN=Müller, O=Ä"), "CN=Müller, O=Ä");
    }

    #[test]
    fn aes_128_gcm_is_offered_first_and_nothing_is_dropped() {
        let offered: Vec<String> = provider()
            .cipher_suites
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        assert_eq!(
            offered[..3],
            [
                "TLS13_AES_128_GCM_SHA256",
                "TLS13_AES_256_GCM_SHA384",
                "TLS13_CHACHA20_POLY1305_SHA256"
            ]
        );
        assert_eq!(offered[3], "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
        assert_eq!(
            offered.len(),
            rustls::crypto::aws_lc_rs::default_provider()
                .cipher_suites
                .len()
        );
    }
}
