//! The blocking client of the agent, for the CLI, the egress proxy and applications.
//! Every call has a timeout: a wedged agent is an error, not a hang.

use std::io::{Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::de::DeserializeOwned;

use crate::protocol::{
    Anchors, BindingInfo, Code, Described, Envelope, Hello, KeyInfo, MAX_ANSWER, Ready, Request,
    Response, Session, SessionReport, Signature, VERSION, frame,
};

/// An answer's `ok` as `T`, or its error.
fn answer<T: DeserializeOwned>(buf: &[u8]) -> Result<T, ClientError> {
    let response: Response =
        serde_json::from_slice(buf).map_err(|e| ClientError::Protocol(e.to_string()))?;
    if let Some(error) = response.error {
        return Err(ClientError::Agent {
            code: error.code,
            message: error.message,
        });
    }
    let ok = response
        .ok
        .ok_or_else(|| ClientError::Protocol("neither ok nor error".into()))?;
    serde_json::from_value(ok).map_err(|e| ClientError::Protocol(e.to_string()))
}

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// What went wrong talking to the agent.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No agent answers at the socket.
    #[error("the agent is not reachable at {path}: {reason}")]
    NotReachable {
        /// The socket path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The agent answered with an error.
    #[error("{message}")]
    Agent {
        /// Its stable code.
        code: Code,
        /// Its message.
        message: String,
    },
    /// The agent's answer was not of this protocol.
    #[error("the agent's answer is not understood: {0}")]
    Protocol(String),
    /// What listens on the socket runs as a user no agent of this machine runs as:
    /// its answers (certificates, trust anchors, a binding's upstream) are not
    /// believed.
    #[error(
        "the process listening on {path} runs as {owner}, which is neither root, this user, \
         the home's owner nor the certkeeper service user: not an agent to trust"
    )]
    Untrusted {
        /// The socket path.
        path: PathBuf,
        /// Who it runs as, "uid 4712 (mallory)".
        owner: String,
    },
}

/// Agent uids trusted besides root, this user and the `certkeeper` service user:
/// the home's owner, once the CLI knows which home it serves.
static TRUSTED: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

/// Trusts an agent running as `uid` (the owner of the home this process works on).
pub fn trust_agent_uid(uid: u32) {
    let mut trusted = TRUSTED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !trusted.contains(&uid) {
        trusted.push(uid);
    }
}

/// Whether an agent running as `uid` may be believed.
fn trusted_agent(uid: u32) -> bool {
    uid == 0
        || uid == nix::unistd::geteuid().as_raw()
        || TRUSTED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&uid)
        || certkeeper_store::Principal::user_name(uid).as_deref()
            == Some(certkeeper_store::trust::SERVICE_USER)
}

/// A connection to the agent.
#[derive(Debug)]
pub struct AgentClient {
    /// Buffered for reading: an answer's length and body come in one read.
    stream: std::io::BufReader<UnixStream>,
    path: PathBuf,
}

impl AgentClient {
    /// Connects to the agent at `path`.
    pub fn connect(path: &Path) -> Result<Self, ClientError> {
        let unreachable = |reason: String| ClientError::NotReachable {
            path: path.to_path_buf(),
            reason,
        };
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(unreachable(
                    "no socket there (is the agent running?)".into(),
                ));
            }
            Err(e) => return Err(unreachable(e.to_string())),
            Ok(m) if !m.file_type().is_socket() => {
                return Err(unreachable("that path is not a socket".into()));
            }
            Ok(_) => {}
        }
        let stream = UnixStream::connect(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                unreachable("nothing listens on the socket (is the agent running?)".into())
            }
            std::io::ErrorKind::PermissionDenied => {
                unreachable("permission denied on the socket".into())
            }
            _ => unreachable(e.to_string()),
        })?;
        // Ask the kernel who listens there: someone else's process on a socket path
        // they chose would otherwise be believed.
        let peer =
            nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials)
                .map_err(|e| unreachable(e.to_string()))?;
        let uid = peer.uid();
        if !trusted_agent(uid) {
            return Err(ClientError::Untrusted {
                path: path.to_path_buf(),
                owner: certkeeper_store::Principal::describe_uid(uid),
            });
        }
        stream
            .set_read_timeout(Some(TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(AgentClient {
            stream: std::io::BufReader::with_capacity(16 * 1024, stream),
            path: path.to_path_buf(),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn call<T: DeserializeOwned>(&mut self, request: Request) -> Result<T, ClientError> {
        let body = serde_json::to_vec(&Envelope {
            v: VERSION,
            request,
        })
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let lost = |e: std::io::Error| ClientError::NotReachable {
            path: self.path.clone(),
            reason: format!("the connection failed: {e}"),
        };
        self.stream
            .get_mut()
            .write_all(&frame(&body))
            .map_err(lost)?;
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).map_err(lost)?;
        let n = u32::from_be_bytes(len) as usize;
        if n > MAX_ANSWER {
            return Err(ClientError::Protocol(format!("answer of {n} bytes")));
        }
        let mut buf = vec![0u8; n];
        self.stream.read_exact(&mut buf).map_err(lost)?;
        answer(&buf)
    }

    /// Who the agent is and who it takes the caller to be.
    pub fn hello(&mut self) -> Result<Hello, ClientError> {
        self.call(Request::Hello)
    }

    /// The keys this caller may use.
    pub fn keys(&mut self) -> Result<Vec<KeyInfo>, ClientError> {
        self.call(Request::Keys)
    }

    /// Resolves a REF to a key this caller may use.
    pub fn resolve(&mut self, reference: &str) -> Result<KeyInfo, ClientError> {
        self.call(Request::Resolve {
            reference: reference.to_string(),
        })
    }

    /// What `show` and `path` need about a key this caller may use.
    pub fn describe(&mut self, reference: &str) -> Result<Described, ClientError> {
        self.call(Request::Describe {
            reference: reference.to_string(),
        })
    }

    /// The trust anchors `root` or a CA REF stands for in the agent's home.
    pub fn trust(&mut self, server_ca: &str) -> Result<Vec<Vec<u8>>, ClientError> {
        let answer: Anchors = self.call(Request::Trust {
            server_ca: server_ca.to_string(),
        })?;
        answer
            .anchors
            .iter()
            .map(|a| {
                B64.decode(a)
                    .map_err(|e| ClientError::Protocol(e.to_string()))
            })
            .collect()
    }

    /// A binding whose key this caller may use.
    pub fn binding(&mut self, name: &str) -> Result<BindingInfo, ClientError> {
        self.call(Request::Binding {
            name: name.to_string(),
        })
    }

    /// Signs `data` with the key of `thumbprint` under `scheme` (a rustls name such
    /// as `ECDSA_NISTP256_SHA256`).
    pub fn sign(
        &mut self,
        thumbprint: &str,
        scheme: &str,
        data: &[u8],
    ) -> Result<Vec<u8>, ClientError> {
        let answer: Signature = self.call(Request::Sign {
            thumbprint: thumbprint.to_string(),
            scheme: scheme.to_string(),
            data: B64.encode(data),
        })?;
        B64.decode(answer.signature)
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// What the partner of an open `tls_session` of this caller's (`report`, from its
    /// answer) has asked of the client certificate since the handshake.
    pub fn session_report(&mut self, report: &str) -> Result<SessionReport, ClientError> {
        self.call(Request::SessionReport {
            report: report.to_string(),
        })
    }

    /// A TLS session with a partner, made by the agent over `socket` (a TCP
    /// connection this process made) with the key of `thumbprint`
    /// ([`crate::handoff`]): what the handshake settled, and the connection that now
    /// carries the session's plaintext. The agent was checked at [`connect`](Self::connect)
    /// like every other: only a trusted agent gets the socket.
    pub fn tls_session(
        mut self,
        request: Request,
        socket: std::os::fd::BorrowedFd<'_>,
    ) -> Result<(Session, UnixStream), ClientError> {
        let _: Ready = self.call(request)?;
        let lost = |e: std::io::Error| ClientError::NotReachable {
            path: self.path.clone(),
            reason: format!("the connection failed: {e}"),
        };
        if !self.stream.buffer().is_empty() {
            return Err(ClientError::Protocol("bytes after the answer".into()));
        }
        let mut stream = self.stream.into_inner();
        crate::handoff::send_socket(&stream, socket).map_err(lost)?;
        // The answer is read without a buffer: the plaintext that follows it is not
        // this client's to read.
        let mut len = [0u8; 4];
        stream.read_exact(&mut len).map_err(lost)?;
        let n = u32::from_be_bytes(len) as usize;
        if n > MAX_ANSWER {
            return Err(ClientError::Protocol(format!("answer of {n} bytes")));
        }
        let mut buf = vec![0u8; n];
        stream.read_exact(&mut buf).map_err(lost)?;
        let session: Session = answer(&buf)?;
        stream
            .set_read_timeout(None)
            .and_then(|()| stream.set_write_timeout(None))
            .map_err(lost)?;
        Ok((session, stream))
    }
}
