//! The agent's wire protocol, version 2: each message is a 4-byte big-endian length
//! followed by that many bytes of UTF-8 JSON. Every request carries `"v": 3` and an
//! `"op"`; every response carries `"v": 3` and either `"ok"` or `"error"`. Errors
//! cross the socket as stable codes ([`Code`]), never as Display text of internals.

use serde::{Deserialize, Serialize};

/// The TLS signature schemes the agent signs with (by their rustls names on the
/// wire), best first within each key type.
pub const SCHEMES: &[rustls::SignatureScheme] = &[
    rustls::SignatureScheme::ECDSA_NISTP256_SHA256,
    rustls::SignatureScheme::ECDSA_NISTP384_SHA384,
    rustls::SignatureScheme::ECDSA_NISTP521_SHA512,
    rustls::SignatureScheme::RSA_PSS_SHA256,
    rustls::SignatureScheme::RSA_PSS_SHA384,
    rustls::SignatureScheme::RSA_PSS_SHA512,
    rustls::SignatureScheme::RSA_PKCS1_SHA256,
    rustls::SignatureScheme::RSA_PKCS1_SHA384,
    rustls::SignatureScheme::RSA_PKCS1_SHA512,
    rustls::SignatureScheme::ED25519,
];

/// The protocol version this build speaks.
pub const VERSION: u32 = 3;
/// The largest request the agent accepts.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// The largest answer a client accepts: `describe` and `trust` carry certificates
/// (a home's root store may hold a few hundred).
pub const MAX_ANSWER: usize = 4 * 1024 * 1024;

/// A request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Who is the agent, and who am I to it.
    Hello,
    /// The keys the caller may use.
    Keys,
    /// Resolves a REF to a key the caller may use, with its certificate and chain.
    Resolve {
        /// A REF as the CLI takes it.
        reference: String,
    },
    /// Everything public that `show` and `path` need about a key the caller may use:
    /// the entry's facts and the certificates that could be on its path.
    Describe {
        /// A REF as the CLI takes it.
        reference: String,
    },
    /// The trust anchors for checking a partner's server certificate: `root` (the
    /// home's root store) or a REF naming one CA certificate. For callers who may use
    /// at least one key.
    Trust {
        /// `root` or a REF.
        server_ca: String,
    },
    /// A binding, for `request --binding` by a caller who may use its key.
    Binding {
        /// The binding's name.
        name: String,
    },
    /// Signs `data` with the key of `thumbprint` under `scheme`.
    Sign {
        /// The entry.
        thumbprint: String,
        /// A TLS signature scheme name, e.g. `ECDSA_NISTP256_SHA256`, `RSA_PSS_SHA256`.
        scheme: String,
        /// The message, base64.
        data: String,
    },
    /// Whether the partner of a session this caller's `tls_session` holds open has
    /// asked for the certificate since the handshake.
    SessionReport {
        /// The `report` of the session's answer.
        report: String,
    },
    /// A TLS session with a partner, made by the agent with the key of `thumbprint`
    /// over a TCP connection the caller made and hands over (for partners that ask for
    /// the client certificate after the handshake, or on old TLS, which only the
    /// agent's OpenSSL client answers). The agent answers [`Ready`]; the caller then
    /// sends one byte with the connected socket attached (`SCM_RIGHTS`); the agent
    /// answers [`Session`] (or an error) and from then on the connection carries the
    /// session's plaintext both ways until either side closes it.
    TlsSession {
        /// The entry.
        thumbprint: String,
        /// The partner's host as in the URL: its name is what the certificate must
        /// carry.
        host: String,
        /// The partner's port (for messages).
        #[serde(default = "https_port")]
        port: u16,
        /// How the partner's certificate is checked.
        trust: SessionTrust,
        /// Protocols to offer (ALPN), e.g. `h2`, `http/1.1`.
        #[serde(default)]
        alpn: Vec<String>,
        /// `--legacy-tls`.
        #[serde(default)]
        legacy: bool,
    },
}

fn https_port() -> u16 {
    443
}

/// How a [`Request::TlsSession`] checks the partner's certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SessionTrust {
    /// The home's `root` store.
    Root,
    /// The system's roots, as the agent reads them.
    System,
    /// These anchors (base64 DER): a CA the caller named.
    Anchors {
        /// Base64 DER.
        der: Vec<String>,
    },
    /// Nothing checked (`--insecure`).
    Insecure,
}

/// The first answer to [`Request::TlsSession`]: send the socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ready {
    /// Always "socket".
    pub send: String,
}

/// What a [`Request::TlsSession`]'s handshake settled.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Session {
    /// "TLSv1_3".
    pub version: String,
    /// The suite.
    pub cipher: String,
    /// The protocol the partner chose.
    pub alpn: Option<String>,
    /// The partner's chain, leaf first, base64 DER.
    pub server_chain: Vec<String>,
    /// The TLS library ("OpenSSL").
    pub library: String,
    /// Whether the partner asked for the client certificate in the handshake.
    #[serde(default)]
    pub asked_in_handshake: bool,
    /// The name to ask `session_report` with about this session while it lasts.
    #[serde(default)]
    pub report: String,
}

/// `session_report`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionReport {
    /// Whether the partner has asked for the client certificate after the handshake
    /// (and got it).
    pub asked_after: bool,
    /// The CAs its last request for the certificate named, as text (empty: any, or
    /// it did not ask).
    #[serde(default)]
    pub accepted: Vec<String>,
    /// "the partner accepts certificates from: ...; ours is issued by ...", when
    /// none of those CAs issued ours.
    #[serde(default)]
    pub mismatch: Option<String>,
}

impl Request {
    /// The operation's name on the wire.
    pub fn op(&self) -> &'static str {
        match self {
            Request::Hello => "hello",
            Request::Keys => "keys",
            Request::Resolve { .. } => "resolve",
            Request::Describe { .. } => "describe",
            Request::Trust { .. } => "trust",
            Request::Binding { .. } => "binding",
            Request::Sign { .. } => "sign",
            Request::TlsSession { .. } => "tls_session",
            Request::SessionReport { .. } => "session_report",
        }
    }

    /// Whether it reads the database beyond one indexed row (the agent runs these
    /// apart from signatures).
    pub fn is_lookup(&self) -> bool {
        !matches!(
            self,
            Request::Hello | Request::Sign { .. } | Request::SessionReport { .. }
        )
    }
}

/// A request as sent: the version beside the operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// Protocol version.
    pub v: u32,
    /// The operation.
    #[serde(flatten)]
    pub request: Request,
}

/// Stable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    /// The request's version is not spoken here.
    UnsupportedVersion,
    /// The request is not valid JSON of this protocol.
    BadRequest,
    /// The message exceeds [`MAX_MESSAGE`].
    TooLarge,
    /// No entry matches.
    NotFound,
    /// Several entries match.
    Ambiguous,
    /// The entry has no private key.
    NoKey,
    /// The caller may not use this key.
    Denied,
    /// The key cannot sign with the requested scheme.
    UnsupportedScheme,
    /// Something failed inside the agent (details in its log).
    Internal,
    /// The caller has too many connections open (or the agent has); try later.
    Busy,
    /// A `tls_session`'s handshake with the partner failed (the message says why).
    SessionFailed,
}

/// An error response body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The code.
    pub code: Code,
    /// A message for people.
    pub message: String,
}

/// A response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    /// Protocol version.
    pub v: u32,
    /// The result, on success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ok: Option<serde_json::Value>,
    /// The error, on failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

impl Response {
    /// A success.
    pub fn ok(value: serde_json::Value) -> Self {
        Response {
            v: VERSION,
            ok: Some(value),
            error: None,
        }
    }

    /// A failure.
    pub fn error(code: Code, message: impl Into<String>) -> Self {
        Response {
            v: VERSION,
            ok: None,
            error: Some(ErrorBody {
                code,
                message: message.into(),
            }),
        }
    }
}

/// `hello`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    /// "certkeeper-agent 0.1.0".
    pub agent: String,
    /// Protocol version.
    pub protocol: u32,
    /// The caller's uid as the kernel reported it.
    pub uid: u32,
    /// The caller's gid.
    pub gid: u32,
    /// The caller's groups (primary and supplementary).
    pub groups: Vec<u32>,
    /// Why the audit log cannot be written (the agent then refuses to sign), or
    /// null while it can.
    #[serde(default)]
    pub audit: Option<String>,
}

/// A key the caller may use, as `keys` and `resolve` describe it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyInfo {
    /// SHA-256 thumbprint of the certificate.
    pub thumbprint: String,
    /// Its subject.
    pub subject: String,
    /// Friendly name.
    pub name: Option<String>,
    /// Key algorithm (`rsa`, `ec-p256`, `ec-p384`, `ec-p521`, `ed25519`).
    pub algorithm: String,
    /// The certificate, base64 DER.
    pub certificate: String,
    /// The issuing CAs on its certification path (nearest first), base64 DER.
    #[serde(default)]
    pub chain: Vec<String>,
}

/// `describe`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Described {
    /// The key, with its chain.
    pub key: KeyInfo,
    /// The entry's store.
    pub store: String,
    /// Its export name.
    pub export_name: Option<String>,
    /// Whether the key may leave the home in a .pfx.
    pub exportable: bool,
    /// Certificates that could be on its path, with their stores.
    pub candidates: Vec<Candidate>,
}

/// A certificate of the home with its store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Candidate {
    /// Base64 DER.
    pub certificate: String,
    /// `root`, `intermediate`, `other`, `personal` or `disallowed`.
    pub store: String,
}

/// `trust`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Anchors {
    /// Trust anchors, base64 DER.
    pub anchors: Vec<String>,
}

/// `binding`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BindingInfo {
    /// The binding's name.
    pub name: String,
    /// The upstream base URL.
    pub upstream: String,
    /// The thumbprint of the certificate it presents now.
    pub thumbprint: String,
    /// How it checks the upstream: `root`, `system` or a REF.
    pub server_ca: String,
    /// The forward proxy it reaches the upstream through (`http://[user@]host:port`;
    /// a URL never holds a password), if any: its own, else the home's
    /// `egress_proxy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// With the home's `egress_proxy`: the hosts reached without it (as `NO_PROXY`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub no_proxy: String,
    /// `bind --legacy-tls`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub legacy_tls: bool,
}

/// `sign`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Signature {
    /// The signature, base64.
    pub signature: String,
}

/// Parses a request; an error response is final (the connection is closed after it).
pub fn parse_request(body: &[u8]) -> Result<Request, Response> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| Response::error(Code::BadRequest, "the request is not JSON"))?;
    match value.get("v").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(VERSION) => {}
        Some(v) => {
            return Err(Response::error(
                Code::UnsupportedVersion,
                format!("this agent speaks protocol version {VERSION}; the request is version {v}"),
            ));
        }
        None => {
            return Err(Response::error(
                Code::BadRequest,
                "the request has no version \"v\"",
            ));
        }
    }
    serde_json::from_value::<Envelope>(value)
        .map(|e| e.request)
        .map_err(|e| {
            Response::error(
                Code::BadRequest,
                format!("not a request of protocol {VERSION}: {e}"),
            )
        })
}

/// Encodes one frame.
pub fn frame(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len() + 4);
    out.extend_from_slice(&(json.len() as u32).to_be_bytes());
    out.extend_from_slice(json);
    out
}
