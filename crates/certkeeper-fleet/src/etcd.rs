//! The environment's keys on etcd, and the connection to it.
//!
//! Everything of environment ENV is under `/certkeeper/ENV/`:
//!
//! | key | written by | holds |
//! |---|---|---|
//! | `environment` | `fleet init` (create-only) | the environment's name and the administrator's public key |
//! | `nodes/NODE` | `fleet join` | the front-end's host name and sealing public key |
//! | `generation` | `fleet publish` (compare-and-swap) | the signed desired state, with the private keys sealed to each front-end |
//! | `alive/NODE` | the front-end's agent, on a 10 s lease | its pid and start time |
//! | `status/NODE` | the front-end's agent | generation applied, when, its doctor summary |

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use certkeeper_store::{FleetConfig, Home, StoreName};
use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::FleetError;

/// Seconds a front-end's liveness key outlives its last keep-alive.
pub const LEASE_TTL: i64 = 10;

/// What one etcd request may carry (etcd's default `--max-request-bytes`, 1.5 MiB),
/// less room for the request's own framing.
pub const MAX_REQUEST: usize = 1_572_864 - 16 * 1024;

/// The keys of one environment.
#[derive(Debug, Clone)]
pub struct Layout {
    prefix: String,
}

impl Layout {
    /// The keys of `env`.
    pub fn new(env: &str) -> Layout {
        Layout {
            prefix: format!("/certkeeper/{env}/"),
        }
    }

    /// Everything of the environment.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The environment record.
    pub fn environment(&self) -> String {
        format!("{}environment", self.prefix)
    }

    /// The current generation.
    pub fn generation(&self) -> String {
        format!("{}generation", self.prefix)
    }

    /// A front-end's registration (or, with "", all of them).
    pub fn node(&self, node: &str) -> String {
        format!("{}nodes/{node}", self.prefix)
    }

    /// A front-end's liveness (or, with "", all of them).
    pub fn alive(&self, node: &str) -> String {
        format!("{}alive/{node}", self.prefix)
    }

    /// A front-end's status (or, with "", all of them).
    pub fn status(&self, node: &str) -> String {
        format!("{}status/{node}", self.prefix)
    }

    /// The node name at the end of a key under `kind/` ("nodes", "alive", ...).
    pub fn node_of<'a>(&self, kind: &str, key: &'a str) -> Option<&'a str> {
        key.strip_prefix(&self.prefix)?
            .strip_prefix(kind)?
            .strip_prefix('/')
    }
}

/// The environment record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentRecord {
    /// Its name.
    pub env: String,
    /// The administrator's Ed25519 public key, base64.
    pub admin_key: String,
    /// When it was created (Unix seconds).
    pub created_at: i64,
}

impl EnvironmentRecord {
    /// The administrator's public key.
    pub fn admin_key(&self) -> Result<Vec<u8>, FleetError> {
        STANDARD.decode(&self.admin_key).map_err(|_| {
            FleetError::Foreign(format!(
                "the environment record of {} on etcd is damaged",
                self.env
            ))
        })
    }
}

/// A front-end's registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeRecord {
    /// Its node name.
    pub node: String,
    /// Its host name.
    pub hostname: String,
    /// Its sealing public key (X25519), base64.
    pub public_key: String,
    /// When it joined (Unix seconds).
    pub joined_at: i64,
}

impl NodeRecord {
    /// The public key.
    pub fn public_key(&self) -> Result<Vec<u8>, FleetError> {
        STANDARD
            .decode(&self.public_key)
            .ok()
            .filter(|k| k.len() == 32)
            .ok_or_else(|| {
                FleetError::Invalid(format!(
                    "the registration of {} on etcd has a damaged key",
                    self.node
                ))
            })
    }
}

/// A front-end's report.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusRecord {
    /// Its node name.
    pub node: String,
    /// The generation its home holds.
    pub generation: u64,
    /// When it applied it (Unix seconds).
    pub applied_at: Option<i64>,
    /// When this report was written.
    pub updated_at: i64,
    /// Its doctor's failed checks ("check: subject").
    pub failing: Vec<String>,
    /// Its doctor's warnings, counted.
    pub warnings: usize,
    /// Why the latest generation was not applied, if it was not.
    pub error: Option<String>,
}

/// How to reach etcd: endpoints and, for https, the client identity and the CAs.
pub struct Connection {
    /// The endpoints.
    pub endpoints: Vec<String>,
    tls: Option<(String, String, Zeroizing<String>)>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("endpoints", &self.endpoints)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// Checks a comma-separated list of endpoints: all http:// or all https://.
pub fn parse_endpoints(list: &str) -> Result<Vec<String>, FleetError> {
    let endpoints: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect();
    if endpoints.is_empty() {
        return Err(FleetError::Invalid(
            "--etcd: give the etcd endpoints, e.g. https://etcd1:2379,https://etcd2:2379".into(),
        ));
    }
    let https = endpoints
        .iter()
        .filter(|e| e.starts_with("https://"))
        .count();
    let http = endpoints
        .iter()
        .filter(|e| e.starts_with("http://"))
        .count();
    if https + http != endpoints.len() || (https > 0 && http > 0) {
        return Err(FleetError::Invalid(format!(
            "--etcd {list}: every endpoint is https://HOST:PORT (or, for tests, all are \
             http://HOST:PORT)"
        )));
    }
    for e in &endpoints {
        let rest = e.split_once("://").map_or("", |(_, r)| r);
        if rest.is_empty() || rest.contains('/') || !rest.contains(':') {
            return Err(FleetError::Invalid(format!(
                "--etcd: {e:?} is not scheme://HOST:PORT"
            )));
        }
    }
    Ok(endpoints)
}

impl Connection {
    /// How `home` reaches its environment's etcd. For https, the client certificate is
    /// the home's `etcd_cert` with its key, and etcd's server certificate is verified
    /// against the home's `root` store.
    pub fn for_home(home: &Home, config: &FleetConfig) -> Result<Connection, FleetError> {
        Connection::new(home, config.etcd.clone(), config.etcd_cert.as_deref())
    }

    /// As [`Connection::for_home`], before the environment is recorded.
    pub fn new(
        home: &Home,
        endpoints: Vec<String>,
        etcd_cert: Option<&str>,
    ) -> Result<Connection, FleetError> {
        let https = endpoints.iter().all(|e| e.starts_with("https://"));
        if !https {
            return Ok(Connection {
                endpoints,
                tls: None,
            });
        }
        let reference = etcd_cert.ok_or_else(|| {
            FleetError::Invalid(
                "https etcd needs the client certificate certkeeper presents to it: --etcd-cert \
                 REF (a certificate with its key in this home; etcd's CA goes in the root store)"
                    .into(),
            )
        })?;
        let entry = home.resolve_current(reference, now())?;
        let key = home.private_key(&entry)?;
        let roots = home.list(Some(StoreName::Root))?;
        if roots.is_empty() {
            return Err(FleetError::Invalid(
                "https etcd: the root store is empty; import the CA that issued etcd's \
                 certificate into it (certkeeper import CA.pem --store root)"
                    .into(),
            ));
        }
        let ca: String = roots
            .iter()
            .map(|e| certkeeper_core::pem::encode("CERTIFICATE", &e.der))
            .collect();
        let key_pem = Zeroizing::new(certkeeper_core::pem::encode("PRIVATE KEY", key.pkcs8_der()));
        Ok(Connection {
            endpoints,
            tls: Some((
                ca,
                certkeeper_core::pem::encode("CERTIFICATE", &entry.der),
                key_pem,
            )),
        })
    }

    /// The endpoints, for messages.
    pub fn describe(&self) -> String {
        self.endpoints.join(",")
    }

    /// An etcd error, worded.
    pub fn error(&self, e: &etcd_client::Error) -> FleetError {
        FleetError::Etcd {
            endpoints: self.describe(),
            reason: describe_error(e),
        }
    }

    /// Connects to the first endpoint that answers (the client connects lazily, and
    /// its balanced channel would keep sending to a member that is down), starting at
    /// a random one so that a fleet spreads over the members.
    pub async fn connect(&self) -> Result<Client, FleetError> {
        let mut start = [0u8; 1];
        let _ = aws_lc_rs::rand::fill(&mut start);
        let n = self.endpoints.len();
        let mut reasons = Vec::new();
        for i in 0..n {
            let endpoint = &self.endpoints[(usize::from(start[0]) + i) % n];
            match self.connect_one(endpoint).await {
                Ok(client) => return Ok(client),
                Err(reason) => reasons.push(reason),
            }
        }
        reasons.dedup();
        Err(FleetError::Etcd {
            endpoints: self.describe(),
            reason: reasons.join("; "),
        })
    }

    async fn connect_one(&self, endpoint: &str) -> Result<Client, String> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(3))
            .with_keep_alive(Duration::from_secs(3), Duration::from_secs(3))
            .with_keep_alive_while_idle(true)
            .with_require_leader(true);
        if let Some((ca, cert, key)) = &self.tls {
            options = options.with_tls(
                TlsOptions::new()
                    .ca_certificate(Certificate::from_pem(ca))
                    .identity(Identity::from_pem(cert, key.as_bytes())),
            );
        }
        let mut client = Client::connect([endpoint], Some(options))
            .await
            .map_err(|e| describe_error(&e))?;
        match tokio::time::timeout(Duration::from_secs(5), client.status()).await {
            Ok(Ok(_)) => Ok(client),
            Ok(Err(e)) => Err(describe_error(&e)),
            Err(_) => Err("no answer within 5 s".into()),
        }
    }
}

/// etcd-client's errors carry gRPC statuses; say what they mean.
pub fn describe_error(e: &etcd_client::Error) -> String {
    match e {
        etcd_client::Error::GRpcStatus(status) => {
            let message = shown(status.message(), 300);
            // The gRPC code by name: tonic is not a direct dependency.
            let code = format!("{:?}", status.code());
            if message.contains("request is too large") {
                "the request is larger than etcd accepts (--max-request-bytes)".into()
            } else if code == "Unavailable" {
                format!("unreachable ({message})")
            } else if code == "DeadlineExceeded" {
                "no answer in time".into()
            } else {
                format!("{message} ({code})")
            }
        }
        etcd_client::Error::TransportError(t) => {
            let mut text = t.to_string();
            let mut source = std::error::Error::source(t);
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            format!("cannot connect: {text}")
        }
        other => other.to_string(),
    }
}

/// Checks an environment or node name: letters, digits, '-', '_', '.', 1-64.
pub fn check_name(kind: &str, name: &str) -> Result<(), FleetError> {
    if name.is_empty()
        || name.len() > 64
        || name.starts_with('.')
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(FleetError::Invalid(format!(
            "{kind} name {name:?}: use 1 to 64 letters, digits, '-', '_' and '.'"
        )));
    }
    Ok(())
}

/// Now, in Unix seconds.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Text that came from etcd or the network, as it may be shown or logged: control
/// characters replaced, at most `max` characters.
pub fn shown(text: &str, max: usize) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() || certkeeper_core::reorders_text(c) {
                '?'
            } else {
                c
            }
        })
        .take(max)
        .collect()
}

/// Whether a host name is one a registration may carry: up to 253 letters, digits,
/// '-', '_' and '.'.
pub fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// JSON of a record.
pub fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// A record from JSON, or why not.
pub fn from_json<T: for<'de> Deserialize<'de>>(what: &str, bytes: &[u8]) -> Result<T, FleetError> {
    if bytes.len() > 64 * 1024 {
        return Err(FleetError::Invalid(format!("{what} on etcd is too large")));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        // serde quotes field names it did not expect, from etcd.
        let detail = shown(&e.to_string(), 200);
        FleetError::Invalid(format!("{what} on etcd is unreadable: {detail}"))
    })
}
