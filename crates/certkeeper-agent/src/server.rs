//! The agent: accepts connections on its Unix socket, learns each caller from the
//! kernel, and answers requests. Shaped as `bind` + `Agent::serve(listener,
//! shutdown)` so that tests run it on a temporary socket and stop it cleanly.

use std::collections::HashMap;
use std::future::Future;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use certkeeper_store::{Entry, Home, Principal, StoreError};
use rustls::SignatureScheme;
use rustls::sign::SigningKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use crate::audit::AuditLog;
use crate::handoff::{SessionAnchors, SessionMaker, SessionRequest};
use crate::limits::{ConnectionLimits, Slot};
use crate::peer::Caller;
use crate::protocol::SCHEMES;
use crate::protocol::{
    Anchors, BindingInfo, Candidate, Code, Described, Hello, KeyInfo, MAX_ANSWER, MAX_MESSAGE,
    Ready, Request, Response, SessionReport, SessionTrust, Signature, VERSION, frame,
    parse_request,
};

/// How long a connection may sit idle between requests.
const IDLE: Duration = Duration::from_secs(300);
/// How long a whole request may take to arrive once its first byte has.
const READ: Duration = Duration::from_secs(10);
/// Connections one uid may hold open to the agent.
pub const PER_UID: usize = 64;
/// Connections everyone together may hold open.
pub const TOTAL: usize = 1024;
/// Lookups that run at once (each uid's run one at a time).
const LOOKUPS: usize = 2;

/// A caller's groups, with when they were read from the group database.
type GroupsRead = (std::time::Instant, Vec<u32>);

/// Lookups in flight: one per uid, [`LOOKUPS`] in all.
struct Lookups {
    all: Arc<tokio::sync::Semaphore>,
    per_uid: Mutex<HashMap<u32, Arc<tokio::sync::Semaphore>>>,
}

impl Default for Lookups {
    fn default() -> Self {
        Lookups {
            all: Arc::new(tokio::sync::Semaphore::new(LOOKUPS)),
            per_uid: Mutex::new(HashMap::new()),
        }
    }
}

impl Lookups {
    /// Waits for this uid's turn, then for a free lookup.
    async fn acquire(
        &self,
        uid: u32,
    ) -> Option<(
        tokio::sync::OwnedSemaphorePermit,
        tokio::sync::OwnedSemaphorePermit,
    )> {
        let mine = {
            let mut map = self
                .per_uid
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if map.len() > 1024 {
                map.retain(|_, s| Arc::strong_count(s) > 1);
            }
            Arc::clone(
                map.entry(uid)
                    .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(1))),
            )
        };
        let own = mine.acquire_owned().await.ok()?;
        let any = Arc::clone(&self.all).acquire_owned().await.ok()?;
        Some((own, any))
    }
}

/// A frame read from a caller.
pub(crate) enum Frame {
    /// The request's bytes.
    Body(Vec<u8>),
    /// It claimed this many bytes, over [`MAX_MESSAGE`].
    TooLarge(usize),
}

/// Reads one frame; memory grows with the bytes that arrive, not with the length a
/// caller claims.
pub(crate) async fn read_frame<R: tokio::io::AsyncRead + Unpin>(
    stream: &mut R,
) -> std::io::Result<Frame> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await?;
    let n = u32::from_be_bytes(len) as usize;
    if n > MAX_MESSAGE {
        return Ok(Frame::TooLarge(n));
    }
    let mut body = Vec::new();
    (&mut *stream).take(n as u64).read_to_end(&mut body).await?;
    if body.len() < n {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Frame::Body(body))
}

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The home could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The socket path is unusable.
    #[error("socket {path}: {detail}")]
    Socket {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The audit log could not be opened.
    #[error("audit log {path}: {source}")]
    Audit {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// A scheme by name (`ECDSA_NISTP256_SHA256`).
pub fn scheme_named(name: &str) -> Option<SignatureScheme> {
    SCHEMES.iter().copied().find(|s| format!("{s:?}") == name)
}

/// Decrypted keys, ACLs and certified keys (certificate chain + key, for egress),
/// valid while the database's data version is unchanged.
struct Cache {
    data_version: i64,
    keys: HashMap<String, Arc<dyn SigningKey>>,
    acls: HashMap<String, Vec<Principal>>,
    certified: HashMap<String, Arc<rustls::sign::CertifiedKey>>,
}

/// The running agent's state.
pub struct Agent {
    home: Mutex<Home>,
    /// A second connection to the same database for lookups, so that a slow scan
    /// never holds the lock signatures need.
    lookup_home: Mutex<Home>,
    lookups: Lookups,
    /// Callers' groups by (uid, gid), with when they were read.
    callers: Mutex<HashMap<(u32, u32), GroupsRead>>,
    owner_uid: u32,
    audit: AuditLog,
    cache: Mutex<Cache>,
    /// What makes `tls_session`s (egress's OpenSSL client), when registered.
    sessions: std::sync::OnceLock<Arc<dyn SessionMaker>>,
    /// The `tls_session`s open now, by their `report` name: the caller's uid, and
    /// whether the partner has asked for the certificate since the handshake.
    open_sessions: Mutex<HashMap<String, OpenSession>>,
}

/// A `tls_session` open now (or ended less than [`REPORT_KEPT`] ago): whose it is,
/// and what its partner asked since the handshake.
struct OpenSession {
    uid: u32,
    report: Arc<dyn Fn() -> SessionReport + Send + Sync>,
    ended: Option<std::time::Instant>,
}

/// How long an ended session's report stays readable.
const REPORT_KEPT: Duration = Duration::from_secs(60);
/// How many session reports are kept at most (open sessions are bounded by the
/// connection limits; ended ones beyond this go, oldest first).
const MAX_REPORTS: usize = 4096;

/// Binds the agent's socket (and a binding's Unix-socket listener): refuses a path
/// that is not a socket, an agent that answers (or is busy: a full backlog is not a
/// stale socket), and a directory that another user owns or may write; replaces a
/// stale socket. The socket is made world-connectable (each request is decided by
/// the caller's credentials) without a window and without a chmod by its final path:
/// it is bound in a fresh private directory beside it, given its mode there, and
/// renamed into place.
pub fn bind(path: &Path) -> Result<UnixListener, AgentError> {
    use std::os::unix::fs::{DirBuilderExt, FileTypeExt};
    let err = |detail: String| AgentError::Socket {
        path: path.to_path_buf(),
        detail,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&dir)
            .map_err(|e| err(format!("cannot create its directory: {e}")))?;
    }
    check_socket_dir(&dir).map_err(err)?;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(err(
                "exists and is not a socket; remove it or choose another --socket".into(),
            ));
        }
        match probe(path) {
            Ok(()) => return Err(err("another agent is already listening there".into())),
            Err(nix::errno::Errno::EAGAIN) => {
                return Err(err(
                    "an agent is listening there but too busy to accept; not replacing it".into(),
                ));
            }
            Err(nix::errno::Errno::ECONNREFUSED) => {}
            Err(e) => return Err(err(format!("cannot tell whether it is in use: {e}"))),
        }
        std::fs::remove_file(path)
            .map_err(|e| err(format!("cannot remove the stale socket: {e}")))?;
    }
    let name = path
        .file_name()
        .ok_or_else(|| err("has no file name".into()))?;
    let staging = staging_dir(&dir, name).map_err(|e| err(e.to_string()))?;
    let staged = staging.join("socket");
    let made = (|| {
        let listener = UnixListener::bind(&staged)?;
        // A chmod by path, but inside a directory only this user may enter.
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o666))?;
        std::fs::rename(&staged, path)?;
        Ok::<_, std::io::Error>(listener)
    })();
    let _ = std::fs::remove_file(&staged);
    let _ = std::fs::remove_dir(&staging);
    made.map_err(|e| err(e.to_string()))
}

/// Connects to `path` without waiting: `Ok` when someone listens, EAGAIN when its
/// backlog is full (alive but busy), ECONNREFUSED when nobody listens (stale).
fn probe(path: &Path) -> Result<(), nix::errno::Errno> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, socket};
    use std::os::fd::AsRawFd;
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    connect(fd.as_raw_fd(), &UnixAddr::new(path)?)
}

/// A socket's directory must be this user's (or root's) and writable by no one else,
/// or another user could replace the socket or what it points to.
fn check_socket_dir(dir: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(dir).map_err(|e| format!("its directory: {e}"))?;
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(format!(
            "its directory {} belongs to uid {}, not to this user (uid {me}) or root; \
             use a directory of your own (e.g. /run/certkeeper)",
            dir.display(),
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "its directory {} is writable by other users (mode {:o}); use a directory \
             only its owner may write (chmod go-w, or e.g. /run/certkeeper)",
            dir.display(),
            meta.mode() & 0o7777
        ));
    }
    if let Err((ancestor, problem)) = certkeeper_store::trust::check_ancestors(dir, meta.uid()) {
        return Err(format!(
            "the directory {} {problem}; whoever may change it could replace the socket \
             (use e.g. /run/certkeeper)",
            ancestor.display()
        ));
    }
    Ok(())
}

/// A new directory `dir/.NAME.RANDOM`, mode 0700.
fn staging_dir(dir: &Path, name: &std::ffi::OsStr) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let mut last = None;
    for attempt in 0..16u32 {
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
            ^ std::process::id().rotate_left(attempt);
        let candidate = dir.join(format!(".{}.{nonce:08x}", name.to_string_lossy()));
        match std::fs::DirBuilder::new().mode(0o700).create(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no staging directory")))
}

impl Agent {
    /// Opens the home and its audit log.
    pub fn open(home_dir: &Path) -> Result<Arc<Agent>, AgentError> {
        let home = Home::open(home_dir)?;
        let lookup_home = Home::open(home_dir)?;
        let owner_uid = std::fs::metadata(home_dir)
            .map_err(|e| StoreError::io(home_dir, e))?
            .uid();
        let audit_path = home_dir.join("audit.log");
        let audit = AuditLog::open(&audit_path).map_err(|source| AgentError::Audit {
            path: audit_path,
            source,
        })?;
        Ok(Arc::new(Agent {
            home: Mutex::new(home),
            lookup_home: Mutex::new(lookup_home),
            lookups: Lookups::default(),
            callers: Mutex::new(HashMap::new()),
            owner_uid,
            audit,
            cache: Mutex::new(Cache {
                data_version: -1,
                keys: HashMap::new(),
                acls: HashMap::new(),
                certified: HashMap::new(),
            }),
            sessions: std::sync::OnceLock::new(),
            open_sessions: Mutex::new(HashMap::new()),
        }))
    }

    /// Registers what makes TLS sessions for `tls_session` requests (once).
    pub fn make_sessions_with(&self, maker: Arc<dyn SessionMaker>) {
        let _ = self.sessions.set(maker);
    }

    /// Serves connections until `shutdown` completes. Each uid may hold at most
    /// [`PER_UID`] connections and everyone together [`TOTAL`]: a caller over either
    /// limit gets `busy` and is let go, so one user's flood leaves room for the others.
    /// Out of descriptors, the loop waits instead of spinning.
    pub async fn serve(
        self: Arc<Self>,
        listener: UnixListener,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let limits = ConnectionLimits::new(PER_UID, TOTAL);
        let mut audit_tick = tokio::time::interval(crate::audit::WINDOW);
        loop {
            tokio::select! {
                _ = audit_tick.tick() => {
                    let _ = self.audit.flush_expired();
                }
                accepted = listener.accept() => {
                    let stream = match accepted {
                        Ok((stream, _)) => stream,
                        Err(e) => {
                            crate::limits::after_failed_accept(&e).await;
                            continue;
                        }
                    };
                    let Ok(cred) = stream.peer_cred() else { continue };
                    match limits.enter(cred.uid()) {
                        Some(slot) => {
                            tokio::spawn(Arc::clone(&self).connection(stream, cred, slot));
                        }
                        None => {
                            tokio::spawn(Arc::clone(&self).turn_away(stream, cred));
                        }
                    }
                }
                () = &mut shutdown => break,
            }
        }
        let _ = self.audit.flush_all();
    }

    /// Tells a caller over its limit so (audited, aggregated by the log) and closes.
    async fn turn_away(self: Arc<Self>, mut stream: UnixStream, cred: tokio::net::unix::UCred) {
        // No account lookups here: a flood of connections must stay cheap to refuse.
        let caller = Caller {
            uid: cred.uid(),
            gid: cred.gid(),
            pid: cred.pid(),
            groups: Vec::new(),
        };
        let _ = self
            .audit
            .record(&caller, "connect", None, "busy", Some("connection limit"));
        let r = Response::error(
            Code::Busy,
            format!(
                "uid {} has {PER_UID} connections open to the agent (or the agent has \
                 {TOTAL}); close some and try again",
                caller.uid
            ),
        );
        let _ = tokio::time::timeout(Duration::from_secs(1), write(&mut stream, &r)).await;
    }

    async fn connection(
        self: Arc<Self>,
        stream: UnixStream,
        cred: tokio::net::unix::UCred,
        _slot: Slot,
    ) {
        // Buffered for reading: a request's length and body come in one read.
        let mut stream = tokio::io::BufReader::with_capacity(4 * 1024, stream);
        let caller = self.caller(cred.uid(), cred.gid(), cred.pid());
        loop {
            // Idle until the first byte of a frame; then the whole frame within READ.
            match tokio::time::timeout(IDLE, stream.fill_buf()).await {
                Ok(Ok(buf)) if !buf.is_empty() => {}
                _ => return,
            }
            let frame = tokio::time::timeout(READ, read_frame(&mut stream)).await;
            let body = match frame {
                Ok(Ok(Frame::Body(body))) => body,
                Ok(Ok(Frame::TooLarge(n))) => {
                    let r = Response::error(
                        Code::TooLarge,
                        format!(
                            "a message may be at most {MAX_MESSAGE} bytes; this one claims {n}"
                        ),
                    );
                    self.audit_error(&caller, "frame", &r);
                    let _ = write(stream.get_mut(), &r).await;
                    return;
                }
                Ok(Err(_)) => return,
                Err(_) => {
                    let r = Response::error(
                        Code::BadRequest,
                        format!("the message did not arrive within {} s", READ.as_secs()),
                    );
                    self.audit_error(&caller, "frame", &r);
                    let _ = write(stream.get_mut(), &r).await;
                    return;
                }
            };
            let (response, fatal) = match parse_request(&body) {
                Ok(request @ Request::TlsSession { .. }) => {
                    // The connection becomes the session's: no more frames on it.
                    return self.tls_session(stream, caller, request).await;
                }
                Ok(request) => {
                    let op = request.op();
                    let response = if request.is_lookup() {
                        self.lookup(&caller, request).await
                    } else {
                        self.handle(&caller, request)
                    };
                    self.audit_error(&caller, op, &response);
                    (response, false)
                }
                Err(response) => {
                    self.audit_error(&caller, "parse", &response);
                    (response, true)
                }
            };
            // A caller that does not read its answer is let go after READ.
            let written = tokio::time::timeout(READ, write(stream.get_mut(), &response)).await;
            if !matches!(written, Ok(Ok(()))) || fatal {
                return;
            }
        }
    }

    /// `tls_session` ([`crate::handoff`]): decides as for `sign`, asks for the socket,
    /// makes the session and carries it until it ends.
    async fn tls_session(
        self: Arc<Self>,
        mut stream: tokio::io::BufReader<UnixStream>,
        caller: Caller,
        request: Request,
    ) {
        // A lookup (the home's root store, the key unsealed): it queues with the
        // caller's other lookups, apart from signatures.
        let decided = {
            let permit = self.lookups.acquire(caller.uid).await;
            let agent = Arc::clone(&self);
            let caller = caller.clone();
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                agent.session_decision(&caller, request)
            })
            .await
            .unwrap_or_else(|_| Err(Response::error(Code::Internal, "the decision failed")))
        };
        let (thumbprint, identity, session) = match decided {
            Ok(d) => d,
            Err(response) => {
                self.audit_error(&caller, "tls_session", &response);
                reply(stream.get_mut(), &response).await;
                return;
            }
        };
        let Some(maker) = self.sessions.get().map(Arc::clone) else {
            let r = Response::error(Code::Internal, "this agent makes no TLS sessions");
            reply(stream.get_mut(), &r).await;
            return;
        };
        let ready = Response::ok(json(&Ready {
            send: "socket".into(),
        }));
        if !reply(stream.get_mut(), &ready).await {
            return;
        }
        // Nothing may have come after the request: the next byte carries the socket.
        if !stream.buffer().is_empty() {
            let r = Response::error(Code::BadRequest, "bytes after the tls_session request");
            self.audit_error(&caller, "tls_session", &r);
            reply(stream.get_mut(), &r).await;
            return;
        }
        let mut stream = stream.into_inner();
        let socket = match tokio::time::timeout(READ, crate::handoff::receive_socket(&stream))
            .await
            .unwrap_or_else(|_| Err(format!("no socket came within {} s", READ.as_secs())))
            .and_then(crate::handoff::tcp_socket)
        {
            Ok(socket) => socket,
            Err(why) => {
                let r = Response::error(Code::BadRequest, why);
                self.audit_error(&caller, "tls_session", &r);
                reply(&mut stream, &r).await;
                return;
            }
        };
        // Whom the caller connected to, as the kernel says: for the audit log.
        let peer = socket
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| "an unknown peer".into());
        let Some(report) = report_name() else {
            let r = Response::error(Code::Internal, "no randomness for the session's name");
            reply(&mut stream, &r).await;
            return;
        };
        // No audit record, no session; and each time the partner asks for the
        // certificate (in the handshake or after it), the grant is checked again and
        // the use audited, so a revoke ends the session's signatures at once.
        if let Err(e) = self.audit.record(
            &caller,
            "tls_session",
            Some(&thumbprint),
            "allowed",
            Some(&format!("session with {peer}")),
        ) {
            let r = Response::error(Code::Internal, format!("{e}: refusing to use the key"));
            reply(&mut stream, &r).await;
            return;
        }
        let allow = {
            let agent = Arc::downgrade(&self);
            let (caller, thumbprint, peer) = (caller.clone(), thumbprint.clone(), peer.clone());
            Box::new(move || {
                agent
                    .upgrade()
                    .is_some_and(|agent| agent.session_use(&caller, &thumbprint, &peer))
            })
        };
        let made = maker.make(socket, identity, session, allow).await;
        match made {
            Ok(made) => {
                let mut settled = made.session;
                settled.report = report;
                self.open_session(&settled.report, caller.uid, Arc::from(made.report));
                let ok = Response::ok(json(&settled));
                if reply(&mut stream, &ok).await {
                    crate::handoff::pump(stream, made.stream).await;
                }
                self.close_session(&settled.report);
            }
            Err(why) => {
                let r = Response::error(Code::SessionFailed, why);
                self.audit_error(&caller, "tls_session", &r);
                reply(&mut stream, &r).await;
            }
        }
    }

    /// Each time a session's partner asks for the certificate: whether the caller may
    /// still use the key, audited (no record, no certificate).
    fn session_use(&self, caller: &Caller, thumbprint: &str, peer: &str) -> bool {
        let home = self.home();
        let mut cache = self.fresh_cache(&home);
        if !self.may_use(caller, &home, &mut cache, thumbprint) {
            let _ = self.audit.record(
                caller,
                "tls_session",
                Some(thumbprint),
                "denied",
                Some(&format!(
                    "the partner {peer} asked for the certificate after a revoke"
                )),
            );
            return false;
        }
        self.audit
            .record(
                caller,
                "tls_session",
                Some(thumbprint),
                "allowed",
                Some(&format!("certificate presented to {peer}")),
            )
            .is_ok()
    }

    /// Registers an open session's report under its name.
    fn open_session(
        &self,
        name: &str,
        uid: u32,
        report: Arc<dyn Fn() -> SessionReport + Send + Sync>,
    ) {
        let mut open = self.open_sessions.lock().unwrap_or_else(|p| p.into_inner());
        // Ended sessions' reports are kept a minute (a caller asks right after its
        // answer, which may have ended the session), and at most so many.
        let now = std::time::Instant::now();
        open.retain(|_, s| s.ended.is_none_or(|t| now - t < REPORT_KEPT));
        if open.len() >= MAX_REPORTS
            && let Some(oldest) = open
                .iter()
                .filter_map(|(k, s)| s.ended.map(|t| (t, k.clone())))
                .min()
                .map(|(_, k)| k)
        {
            open.remove(&oldest);
        }
        open.insert(
            name.to_string(),
            OpenSession {
                uid,
                report,
                ended: None,
            },
        );
    }

    /// Marks a session ended: its report stays readable for [`REPORT_KEPT`], frozen.
    fn close_session(&self, name: &str) {
        let mut open = self.open_sessions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(session) = open.get_mut(name) {
            let last = (session.report)();
            session.report = Arc::new(move || last.clone());
            session.ended = Some(std::time::Instant::now());
        }
    }

    /// Whether `caller` may have a session with this key, and with what: the key's
    /// thumbprint, its certificate chain and unsealed key, and the request decoded.
    fn session_decision(
        &self,
        caller: &Caller,
        request: Request,
    ) -> Result<(String, Identity, SessionRequest), Response> {
        let Request::TlsSession {
            thumbprint,
            host,
            port,
            trust,
            alpn,
            legacy,
        } = request
        else {
            return Err(Response::error(Code::BadRequest, "not a tls_session"));
        };
        if host.is_empty()
            || host.len() > 255
            || alpn.len() > 8
            || alpn.iter().any(|p| p.is_empty() || p.len() > 255)
        {
            return Err(Response::error(
                Code::BadRequest,
                "a host of 1 to 255 bytes and at most 8 ALPN names of 1 to 255 bytes",
            ));
        }
        let home = self.lookup_home();
        // As for `sign`: the ACL first, whether or not the entry exists.
        if !self.may_use_fresh(caller, &home, &thumbprint) {
            let _ = self.audit.record(
                caller,
                "tls_session",
                Some(&thumbprint),
                "denied",
                Some("not in the key ACL"),
            );
            return Err(denied(caller));
        }
        let Ok(Some(entry)) = home.entry(&thumbprint) else {
            return Err(Response::error(Code::NotFound, "no such certificate"));
        };
        if !entry.has_key {
            return Err(Response::error(
                Code::NoKey,
                format!("{} has no private key", entry.subject),
            ));
        }
        // Old TLS signs handshakes with SHA-1 (and MD5): only the administrator opts a
        // key into it, by binding it with --legacy-tls; a granted caller may then use
        // it for that key, the home's owner and root always.
        if legacy
            && !self.privileged(caller)
            && !home.bindings().unwrap_or_default().iter().any(|b| {
                b.legacy_tls
                    && home
                        .resolve_current(&b.cert, time::OffsetDateTime::now_utc().unix_timestamp())
                        .is_ok_and(|e| e.thumbprint == thumbprint)
            })
        {
            let _ = self.audit.record(
                caller,
                "tls_session",
                Some(&thumbprint),
                "denied",
                Some("--legacy-tls without a --legacy-tls binding of this key"),
            );
            return Err(Response::error(
                Code::Denied,
                "--legacy-tls: the home's owner allows old TLS for a key by binding it with \
                 `certkeeper bind NAME --cert REF --upstream URL --legacy-tls`; ask the \
                 administrator, or use request --binding NAME",
            ));
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let anchors = match trust {
            SessionTrust::Root => {
                let roots: Vec<CertificateDer<'static>> = home
                    .list(Some(certkeeper_store::StoreName::Root))
                    .map_err(|_| Response::error(Code::Internal, "the home could not be read"))?
                    .into_iter()
                    .map(|e| CertificateDer::from(e.der))
                    .collect();
                SessionAnchors::Der(roots)
            }
            SessionTrust::System => SessionAnchors::System,
            SessionTrust::Insecure => SessionAnchors::Insecure,
            SessionTrust::Anchors { der } => SessionAnchors::Der(
                der.iter()
                    .map(|d| B64.decode(d).map(CertificateDer::from))
                    .collect::<Result<_, _>>()
                    .map_err(|_| Response::error(Code::BadRequest, "an anchor is not base64"))?,
            ),
        };
        let identity = unsealed(&home, &entry, now).map_err(|message| {
            let _ = self.audit.record(
                caller,
                "tls_session",
                Some(&thumbprint),
                "error",
                Some(&message),
            );
            Response::error(Code::UnsupportedScheme, message)
        })?;
        Ok((
            thumbprint,
            identity,
            SessionRequest {
                host,
                port,
                anchors,
                alpn: alpn.into_iter().map(String::into_bytes).collect(),
                legacy,
            },
        ))
    }

    /// The caller with its groups, from a cache of a few seconds: the group database
    /// is read once per uid and burst, not once per connection.
    fn caller(&self, uid: u32, gid: u32, pid: Option<i32>) -> Caller {
        const FRESH: Duration = Duration::from_secs(5);
        let mut callers = self
            .callers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((at, groups)) = callers.get(&(uid, gid))
            && at.elapsed() < FRESH
        {
            return Caller {
                uid,
                gid,
                pid,
                groups: groups.clone(),
            };
        }
        if callers.len() > 4096 {
            callers.retain(|_, (at, _)| at.elapsed() < FRESH);
        }
        let caller = Caller::from_credentials(uid, gid, pid);
        callers.insert(
            (uid, gid),
            (std::time::Instant::now(), caller.groups.clone()),
        );
        caller
    }

    /// Runs a lookup (resolve, describe, trust, binding, keys: database reads that may
    /// scan) off the async workers, one at a time per uid and [`LOOKUPS`] at a time in
    /// all, on the agent's second database connection: a flood of expensive lookups
    /// from one uid queues behind itself and never holds up anyone's signatures.
    async fn lookup(self: &Arc<Self>, caller: &Caller, request: Request) -> Response {
        let permit = self.lookups.acquire(caller.uid).await;
        let this = Arc::clone(self);
        let caller_owned = caller.clone();
        let answer = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            this.handle(&caller_owned, request)
        })
        .await;
        answer.unwrap_or_else(|_| Response::error(Code::Internal, "the lookup failed"))
    }

    /// Audits an error answer (every refusal is a record; denials are recorded where
    /// they are decided, with the key).
    fn audit_error(&self, caller: &Caller, op: &str, response: &Response) {
        if let Some(error) = &response.error
            && error.code != Code::Denied
        {
            let code = serde_json::to_value(error.code)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let _ = self.audit.record(caller, op, None, "refused", Some(&code));
        }
    }

    /// Answers one request. Synchronous: database reads and signatures are short.
    pub fn handle(&self, caller: &Caller, request: Request) -> Response {
        match request {
            Request::Hello => Response::ok(json(&Hello {
                agent: format!("certkeeper-agent {}", env!("CARGO_PKG_VERSION")),
                protocol: VERSION,
                uid: caller.uid,
                gid: caller.gid,
                groups: caller.groups.clone(),
                audit: self.audit.failing(),
            })),
            Request::Keys => self.keys(caller),
            Request::Resolve { reference } => self.resolve(caller, &reference),
            Request::Describe { reference } => self.describe(caller, &reference),
            Request::Trust { server_ca } => self.trust(caller, &server_ca),
            Request::Binding { name } => self.binding(caller, &name),
            Request::SessionReport { report } => {
                let open = self
                    .open_sessions
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&report)
                    .filter(|session| session.uid == caller.uid)
                    .map(|session| Arc::clone(&session.report));
                match open {
                    Some(report) => Response::ok(json(&report())),
                    // The same answer for another uid's session as for none.
                    None => Response::error(Code::NotFound, "no such session open"),
                }
            }
            // Served on its own connection (`tls_session`), never as one answer.
            Request::TlsSession { .. } => Response::error(
                Code::BadRequest,
                "tls_session takes over its connection; it is not answered here",
            ),
            Request::Sign {
                thumbprint,
                scheme,
                data,
            } => self.sign(caller, &thumbprint, &scheme, &data),
        }
    }

    /// The database's current data version (changes on every commit by anyone).
    pub fn data_version(&self) -> i64 {
        self.home().data_version().unwrap_or(-1)
    }

    /// Runs `f` on the home (for the egress supervisor, in the agent's process).
    pub fn with_home<T>(&self, f: impl FnOnce(&Home) -> T) -> T {
        f(&self.home())
    }

    /// The certificate chain and in-process signing key for `reference`, as egress
    /// bindings present it: resolved now (a renewed certificate under the same name
    /// wins), cached until the database changes. Egress runs inside the agent, so it
    /// signs without a socket round trip.
    pub fn certified_key(
        &self,
        reference: &str,
    ) -> Result<(Arc<rustls::sign::CertifiedKey>, String), String> {
        let home = self.home();
        let mut cache = self.fresh_cache(&home);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let entry = home
            .resolve_current(reference, now)
            .map_err(|e| e.to_string())?;
        if let Some(ck) = cache.certified.get(&entry.thumbprint) {
            return Ok((Arc::clone(ck), entry.thumbprint));
        }
        if !entry.has_key {
            return Err(format!("{} has no private key", entry.subject));
        }
        let key = match cache.keys.get(&entry.thumbprint) {
            Some(k) => Arc::clone(k),
            None => {
                let k = load_key(&home, &entry)?;
                cache.keys.insert(entry.thumbprint.clone(), Arc::clone(&k));
                k
            }
        };
        let ck = Arc::new(rustls::sign::CertifiedKey::new(
            presented_chain(&home, &entry, now),
            key,
        ));
        cache
            .certified
            .insert(entry.thumbprint.clone(), Arc::clone(&ck));
        Ok((ck, entry.thumbprint))
    }

    /// The certificate chain and the private key for `reference`, resolved as
    /// [`Agent::certified_key`] does, for the in-process OpenSSL client that serves
    /// partners rustls cannot (late certificate requests, old TLS). The key is
    /// unsealed into zeroizing memory; it does not leave this process.
    pub fn identity(&self, reference: &str) -> Result<Identity, String> {
        let home = self.home();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let entry = home
            .resolve_current(reference, now)
            .map_err(|e| e.to_string())?;
        unsealed(&home, &entry, now)
    }

    /// Whether `caller` may send requests through the binding `binding`, whose
    /// certificate `reference` names: the same decision as for signing with that key,
    /// audited either way. The refusal is the text the application reads (with a 403).
    pub fn admit_relay(&self, caller: &Caller, binding: &str) -> Result<(), String> {
        // Read at each connection, so that a grant, a revoke or a new --allow applies
        // to the next one.
        let found = self.home().binding(binding);
        let Ok(b) = found else {
            return Err(format!("binding {binding} is gone"));
        };
        let reference = b.cert;
        let thumbprint = match self.certified_key(&reference) {
            Ok((_, thumbprint)) => thumbprint,
            Err(e) => {
                let _ = self.audit.record(caller, "relay", None, "error", Some(&e));
                return Err(format!("binding {binding} has no usable certificate"));
            }
        };
        let by_acl = {
            let home = self.home();
            let mut cache = self.fresh_cache(&home);
            self.may_use(caller, &home, &mut cache, &thumbprint)
        };
        let by_allow = allow_admits(caller, &b.allow);
        let detail = format!("binding {binding}");
        if by_acl && by_allow {
            return self
                .audit
                .record(caller, "relay", Some(&thumbprint), "allowed", Some(&detail))
                .map_err(|e| format!("{e}: refusing to relay"));
        }
        let _ = self
            .audit
            .record(caller, "relay", Some(&thumbprint), "denied", Some(&detail));
        if by_acl {
            Err(format!(
                "uid {} may use the key, but binding {binding} admits only {} (certkeeper bind \
                 {binding} ... --allow ... changes that)",
                caller.uid,
                b.allow.join(", ")
            ))
        } else {
            Err(format!(
                "uid {} may not use the certificate of binding {binding}; the administrator \
                 can grant it: certkeeper grant {reference} {}",
                caller.uid,
                principal_of(caller)
            ))
        }
    }

    /// An application connection whose owner the kernel could not name (its socket
    /// already closed): refused, and audited under uid 4294967295.
    pub fn refuse_unknown_relay(&self, binding: &str) -> String {
        let nobody = Caller {
            uid: u32::MAX,
            gid: u32::MAX,
            pid: None,
            groups: Vec::new(),
        };
        let _ = self.audit.record(
            &nobody,
            "relay",
            None,
            "denied",
            Some(&format!(
                "binding {binding}: the kernel could not name the connecting user"
            )),
        );
        "the kernel could not say which user is connecting (was the connection closed?)".into()
    }

    /// The second connection, for lookups (see [`Agent::lookup`]).
    fn lookup_home(&self) -> std::sync::MutexGuard<'_, Home> {
        self.lookup_home
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn home(&self) -> std::sync::MutexGuard<'_, Home> {
        // A panic while holding the lock cannot leave the connection half-written.
        self.home
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Drops cached keys and ACLs if anything was committed since they were read.
    fn fresh_cache(&self, home: &Home) -> std::sync::MutexGuard<'_, Cache> {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let version = home.data_version().unwrap_or(-2);
        if version != cache.data_version {
            cache.keys.clear();
            cache.acls.clear();
            cache.certified.clear();
            cache.data_version = version;
        }
        cache
    }

    /// `may_use` for lookups: the ACL read now on the lookup connection, without the
    /// signing cache (whose validity is tied to the main connection's data version).
    fn may_use_fresh(&self, caller: &Caller, home: &Home, thumbprint: &str) -> bool {
        self.privileged(caller)
            || home
                .acl(thumbprint)
                .unwrap_or_default()
                .iter()
                .any(|p| caller.is(p))
    }

    fn may_use(&self, caller: &Caller, home: &Home, cache: &mut Cache, thumbprint: &str) -> bool {
        if caller.uid == 0 || caller.uid == self.owner_uid {
            return true;
        }
        if !cache.acls.contains_key(thumbprint) {
            let acl = home.acl(thumbprint).unwrap_or_default();
            cache.acls.insert(thumbprint.to_string(), acl);
        }
        cache.acls[thumbprint].iter().any(|p| caller.is(p))
    }

    fn keys(&self, caller: &Caller) -> Response {
        let home = self.lookup_home();
        let Ok(entries) = home.list(Some(certkeeper_store::StoreName::Personal)) else {
            return Response::error(Code::Internal, "the home could not be read");
        };
        let keys: Vec<KeyInfo> = entries
            .into_iter()
            .filter(|e| e.has_key && self.may_use_fresh(caller, &home, &e.thumbprint))
            .map(|e| key_info(&e, Vec::new()))
            .collect();
        Response::ok(json(&keys))
    }

    /// The one entry `reference` names among the keys `caller` may use. Root and the
    /// home's owner see every entry; anyone else learns nothing about entries whose
    /// keys they may not use (no subjects, no counts): "no key you may use matches",
    /// audited as a denial.
    fn usable(
        &self,
        caller: &Caller,
        home: &Home,
        op: &str,
        reference: &str,
    ) -> Result<Entry, Response> {
        let privileged = self.privileged(caller);
        let matches = match home.matching(reference) {
            Ok(m) => m,
            Err(StoreError::BadReference { detail, .. }) => {
                return Err(Response::error(
                    Code::BadRequest,
                    format!("{reference:?} is not a REF: {detail}"),
                ));
            }
            Err(_) => {
                return Err(Response::error(
                    Code::Internal,
                    "the home could not be read",
                ));
            }
        };
        // The administrator's log names what was asked for; the caller is told nothing.
        let asked = match matches.as_slice() {
            [one] => Some(one.thumbprint.clone()),
            _ => None,
        };
        let found: Vec<Entry> = if privileged {
            matches
        } else {
            matches
                .into_iter()
                .filter(|e| e.has_key && self.may_use_fresh(caller, home, &e.thumbprint))
                .collect()
        };
        match found.len() {
            0 if privileged => Err(Response::error(
                Code::NotFound,
                format!("no certificate matches {reference:?}"),
            )),
            0 => {
                let _ = self.audit.record(
                    caller,
                    op,
                    asked.as_deref(),
                    "denied",
                    Some(&format!(
                        "no key this caller may use matches {}",
                        printable(reference)
                    )),
                );
                Err(Response::error(
                    Code::Denied,
                    format!(
                        "uid {} may use no key that matches {reference:?} (grant it with: \
                         certkeeper grant {reference} {})",
                        caller.uid,
                        principal_of(caller)
                    ),
                ))
            }
            1 => {
                let entry = found.into_iter().next().expect("one element");
                if !entry.has_key {
                    return Err(Response::error(
                        Code::NoKey,
                        format!("{} has no private key", entry.subject),
                    ));
                }
                Ok(entry)
            }
            n => Err(Response::error(
                Code::Ambiguous,
                format!(
                    "{reference:?} matches {n} keys: {}; use a thumbprint",
                    found
                        .iter()
                        .map(Entry::describe)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            )),
        }
    }

    fn privileged(&self, caller: &Caller) -> bool {
        caller.uid == 0 || caller.uid == self.owner_uid
    }

    fn resolve(&self, caller: &Caller, reference: &str) -> Response {
        let home = self.lookup_home();
        let entry = match self.usable(caller, &home, "resolve", reference) {
            Ok(e) => e,
            Err(r) => return r,
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        Response::ok(json(&key_info(&entry, chain_of(&home, &entry, now))))
    }

    fn describe(&self, caller: &Caller, reference: &str) -> Response {
        let home = self.lookup_home();
        let entry = match self.usable(caller, &home, "describe", reference) {
            Ok(e) => e,
            Err(r) => return r,
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let Ok(mut candidates) = home.path_candidates(&entry) else {
            return Response::error(Code::Internal, "the home could not be read");
        };
        // Distrusted certificates only where they bear on this path (the same name
        // or key as a certificate on it), not the whole disallowed store.
        let mut names: std::collections::HashSet<Vec<u8>> =
            std::collections::HashSet::from([entry.issuer_der.clone()]);
        let mut key_ids: std::collections::HashSet<String> =
            std::collections::HashSet::from([entry.key_id.clone()]);
        for (cert, store) in &candidates {
            if *store != certkeeper_store::StoreName::Disallowed {
                names.insert(cert.subject_der.clone());
                names.insert(cert.issuer_der.clone());
                key_ids.insert(cert.key_id.clone());
            }
        }
        candidates.retain(|(cert, store)| {
            *store != certkeeper_store::StoreName::Disallowed
                || names.contains(&cert.subject_der)
                || key_ids.contains(&cert.key_id)
        });
        Response::ok(json(&Described {
            key: key_info(&entry, chain_of(&home, &entry, now)),
            store: entry.store.as_str().to_string(),
            export_name: entry.export_name.clone(),
            exportable: entry.exportable,
            candidates: candidates
                .iter()
                .map(|(cert, store)| Candidate {
                    certificate: B64.encode(&cert.der),
                    store: store.as_str().to_string(),
                })
                .collect(),
        }))
    }

    /// Whether `caller` may use at least one key (root and the owner may use all).
    fn uses_some_key(&self, caller: &Caller, home: &Home) -> bool {
        self.privileged(caller)
            || home
                .list(Some(certkeeper_store::StoreName::Personal))
                .unwrap_or_default()
                .iter()
                .any(|e| e.has_key && self.may_use_fresh(caller, home, &e.thumbprint))
    }

    fn trust(&self, caller: &Caller, server_ca: &str) -> Response {
        let home = self.lookup_home();
        if !self.uses_some_key(caller, &home) {
            let _ = self.audit.record(
                caller,
                "trust",
                None,
                "denied",
                Some("may use no key of this home"),
            );
            return denied(caller);
        }
        let privileged = self.privileged(caller);
        let anchors: Vec<String> = if server_ca == "root" {
            match home.list(Some(certkeeper_store::StoreName::Root)) {
                Ok(roots) => roots.iter().map(|e| B64.encode(&e.der)).collect(),
                Err(_) => return Response::error(Code::Internal, "the home could not be read"),
            }
        } else {
            // Only CA certificates of the root, intermediate and other stores: a
            // partner's trust anchor, never a key's certificate nor a distrusted one.
            // One answer for none and for several, so a REF cannot probe subjects.
            let anchor = |e: &Entry| {
                e.is_ca
                    && matches!(
                        e.store,
                        certkeeper_store::StoreName::Root
                            | certkeeper_store::StoreName::Intermediate
                            | certkeeper_store::StoreName::Other
                    )
            };
            let found: Vec<Entry> = match home.matching(server_ca) {
                Ok(m) => m.into_iter().filter(anchor).collect(),
                Err(_) => Vec::new(),
            };
            match found.as_slice() {
                [one] => vec![B64.encode(&one.der)],
                _ => {
                    if !privileged {
                        let _ = self.audit.record(
                            caller,
                            "trust",
                            None,
                            "refused",
                            Some(&format!("no one CA matches {}", printable(server_ca))),
                        );
                    }
                    return Response::error(
                        Code::NotFound,
                        format!(
                            "no single CA certificate of the home matches {}",
                            printable(server_ca)
                        ),
                    );
                }
            }
        };
        if !privileged {
            let _ = self.audit.record(
                caller,
                "trust",
                None,
                "allowed",
                Some(&format!("anchors {}", printable(server_ca))),
            );
        }
        Response::ok(json(&Anchors { anchors }))
    }

    fn binding(&self, caller: &Caller, name: &str) -> Response {
        let home = self.lookup_home();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let found = home.binding(name).ok().and_then(|b| {
            let entry = home.resolve_current(&b.cert, now).ok()?;
            Some((b, entry))
        });
        match found {
            Some((b, entry))
                if entry.has_key
                    && self.may_use_fresh(caller, &home, &entry.thumbprint)
                    && allow_admits(caller, &b.allow) =>
            {
                // The way the binding's relay goes (a proxy URL holds no password),
                // so that `request --binding` goes the same way.
                let setting = |s| home.setting(s).unwrap_or_default();
                let (proxy, no_proxy) = match b.proxy.filter(|p| !p.trim().is_empty()) {
                    Some(own) => (Some(own), String::new()),
                    None => (
                        Some(setting(certkeeper_store::Setting::EgressProxy))
                            .filter(|p| !p.trim().is_empty()),
                        setting(certkeeper_store::Setting::EgressNoProxy),
                    ),
                };
                Response::ok(json(&BindingInfo {
                    name: b.name,
                    upstream: b.upstream,
                    thumbprint: entry.thumbprint,
                    server_ca: b.server_ca,
                    no_proxy: if proxy.is_some() {
                        no_proxy
                    } else {
                        String::new()
                    },
                    proxy,
                    legacy_tls: b.legacy_tls,
                }))
            }
            // The same answer whether the binding does not exist or is not this
            // caller's to use.
            _ if !self.privileged(caller) => {
                let _ = self.audit.record(
                    caller,
                    "binding",
                    None,
                    "denied",
                    Some(&format!(
                        "no binding this caller may use is named {}",
                        printable(name)
                    )),
                );
                Response::error(
                    Code::Denied,
                    format!(
                        "uid {} may use no binding named {name:?} (grant it with: \
                         certkeeper grant REF {})",
                        caller.uid,
                        principal_of(caller)
                    ),
                )
            }
            _ => Response::error(
                Code::NotFound,
                format!("no binding named {name:?} whose certificate has its key"),
            ),
        }
    }

    fn sign(&self, caller: &Caller, thumbprint: &str, scheme: &str, data: &str) -> Response {
        let Some(scheme) = scheme_named(scheme) else {
            return Response::error(
                Code::UnsupportedScheme,
                format!("unknown signature scheme {scheme:?}"),
            );
        };
        let Ok(message) = B64.decode(data) else {
            return Response::error(Code::BadRequest, "data is not base64");
        };
        let key = {
            let home = self.home();
            let mut cache = self.fresh_cache(&home);
            // The ACL first: a caller who may not use the key learns nothing else
            // (not whether the thumbprint exists, nor whose certificate it is).
            if !self.privileged(caller) && !self.may_use(caller, &home, &mut cache, thumbprint) {
                let _ = self.audit.record(
                    caller,
                    "sign",
                    Some(thumbprint),
                    "denied",
                    Some("not in the key ACL"),
                );
                return denied(caller);
            }
            // A cached key means the entry existed with its key at this data version.
            let cached = cache.keys.get(thumbprint).map(Arc::clone);
            let entry = match &cached {
                Some(_) => None,
                None => match home.entry(thumbprint) {
                    Ok(Some(e)) => Some(e),
                    _ => return Response::error(Code::NotFound, "no such certificate"),
                },
            };
            if let Some(e) = &entry
                && !e.has_key
            {
                return Response::error(Code::NoKey, format!("{} has no private key", e.subject));
            }
            if let Some(e) = &entry
                && let Some(why) = tls_refusal(e)
            {
                let _ = self
                    .audit
                    .record(caller, "sign", Some(thumbprint), "error", Some(why));
                return Response::error(
                    Code::UnsupportedScheme,
                    format!("the key of {}: {why}", e.subject),
                );
            }
            match (cached, entry) {
                (Some(k), _) => k,
                (None, Some(entry)) => match load_key(&home, &entry) {
                    Ok(k) => {
                        cache.keys.insert(thumbprint.to_string(), Arc::clone(&k));
                        k
                    }
                    Err(message) => {
                        let _ = self.audit.record(
                            caller,
                            "sign",
                            Some(thumbprint),
                            "error",
                            Some(&message),
                        );
                        return Response::error(Code::Internal, message);
                    }
                },
                (None, None) => return Response::error(Code::NotFound, "no such certificate"),
            }
        };
        let Some(signer) = key.choose_scheme(&[scheme]) else {
            return Response::error(
                Code::UnsupportedScheme,
                format!("this key cannot sign with {scheme:?}"),
            );
        };
        match signer.sign(&message) {
            // No audit record, no signature.
            Ok(signature) => {
                match self
                    .audit
                    .record(caller, "sign", Some(thumbprint), "allowed", None)
                {
                    Ok(()) => Response::ok(json(&Signature {
                        signature: B64.encode(signature),
                    })),
                    Err(e) => Response::error(Code::Internal, format!("{e}: refusing to sign")),
                }
            }
            Err(_) => {
                let _ = self.audit.record(
                    caller,
                    "sign",
                    Some(thumbprint),
                    "error",
                    Some("signing failed"),
                );
                Response::error(Code::Internal, "signing failed")
            }
        }
    }
}

/// A fresh name for an open session: 128 random bits, hex (none without randomness).
fn report_name() -> Option<String> {
    let mut bytes = [0u8; 16];
    rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(&mut bytes)
        .ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The chain a client certificate is presented with: the leaf, then the CAs of its
/// path.
fn presented_chain(home: &Home, entry: &Entry, now: i64) -> Vec<CertificateDer<'static>> {
    let mut chain = vec![CertificateDer::from(entry.der.clone())];
    for issuer in home.path_issuers(entry, now, false).unwrap_or_default() {
        chain.push(CertificateDer::from(issuer.der));
    }
    chain
}

/// An entry's chain and unsealed key, for OpenSSL.
fn unsealed(home: &Home, entry: &Entry, now: i64) -> Result<Identity, String> {
    if !entry.has_key {
        return Err(format!("{} has no private key", entry.subject));
    }
    if let Some(why) = tls_refusal(entry) {
        return Err(format!("the key of {}: {why}", entry.subject));
    }
    let key = home.private_key(entry).map_err(|e| e.to_string())?;
    Ok(Identity {
        chain: presented_chain(home, entry, now),
        pkcs8: zeroize::Zeroizing::new(key.pkcs8_der().to_vec()),
    })
}

/// A client certificate with its chain (leaf first) and its key as PKCS#8, in memory
/// that zeroizes, for the in-process OpenSSL client.
pub struct Identity {
    /// The leaf, then the CAs to send with it.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key, PKCS#8 DER.
    pub pkcs8: zeroize::Zeroizing<Vec<u8>>,
}

/// Unseals an entry's key into a rustls signing key. Key bytes stay in zeroizing
/// buffers; only the signing key object (aws-lc) keeps them afterwards.
fn load_key(home: &Home, entry: &Entry) -> Result<Arc<dyn SigningKey>, String> {
    if let Some(why) = tls_refusal(entry) {
        return Err(format!("the key of {}: {why}", entry.subject));
    }
    let key = home.private_key(entry).map_err(|e| e.to_string())?;
    let der = zeroize::Zeroizing::new(key.pkcs8_der().to_vec());
    let pkcs8 = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der.as_slice()));
    rustls::crypto::aws_lc_rs::sign::any_supported_type(&pkcs8).map_err(|_| {
        format!(
            "the key of {} cannot be used for TLS signatures",
            entry.subject
        )
    })
}

/// Why the entry's key cannot sign a TLS handshake (a DSA, X25519, Ed448
/// or X448 key), if so.
fn tls_refusal(entry: &Entry) -> Option<&'static str> {
    entry
        .key_algorithm
        .as_deref()
        .and_then(certkeeper_core::KeyAlgorithm::from_name)
        .and_then(certkeeper_core::KeyAlgorithm::tls_refusal)
}

fn denied(caller: &Caller) -> Response {
    Response::error(
        Code::Denied,
        format!(
            "uid {} may not use this key (grant it with: certkeeper grant REF {})",
            caller.uid,
            principal_of(caller)
        ),
    )
}

/// The issuing CAs a TLS client presents with `entry` (nearest first, no root).
fn chain_of(home: &Home, entry: &Entry, now: i64) -> Vec<String> {
    home.path_issuers(entry, now, false)
        .unwrap_or_default()
        .iter()
        .map(|e| B64.encode(&e.der))
        .collect()
}

/// A caller's REF as the audit log shows it: quoted, at most 80 characters.
fn printable(reference: &str) -> String {
    let short: String = reference.chars().take(80).collect();
    format!("{short:?}")
}

/// Whether a binding's `--allow` list admits `caller`: an empty list admits whom the
/// key's ACL admits, root always passes, and entries that no longer parse admit no
/// one (fail closed).
fn allow_admits(caller: &Caller, allow: &[String]) -> bool {
    allow.is_empty()
        || caller.uid == 0
        || allow
            .iter()
            .filter_map(|p| p.parse::<Principal>().ok())
            .any(|p| caller.is(&p))
}

/// How an administrator names this caller in a grant: `user:NAME`, else `uid:N`.
fn principal_of(caller: &Caller) -> String {
    match Principal::user_name(caller.uid) {
        Some(name) => format!("user:{name}"),
        None => format!("uid:{}", caller.uid),
    }
}

fn key_info(entry: &Entry, chain: Vec<String>) -> KeyInfo {
    KeyInfo {
        thumbprint: entry.thumbprint.clone(),
        subject: entry.subject.clone(),
        name: entry.name.clone(),
        algorithm: entry.key_algorithm.clone().unwrap_or_default(),
        certificate: B64.encode(&entry.der),
        chain,
    }
}

fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// Writes `response` within [`READ`] (a caller that does not read its answer is let
/// go); whether it was written.
async fn reply(stream: &mut UnixStream, response: &Response) -> bool {
    matches!(
        tokio::time::timeout(READ, write(stream, response)).await,
        Ok(Ok(()))
    )
}

async fn write(stream: &mut UnixStream, response: &Response) -> std::io::Result<()> {
    let mut body = serde_json::to_vec(response).map_err(std::io::Error::other)?;
    if body.len() > MAX_ANSWER {
        let too_big = Response::error(
            Code::Internal,
            format!("the answer would exceed {MAX_ANSWER} bytes"),
        );
        body = serde_json::to_vec(&too_big).map_err(std::io::Error::other)?;
    }
    stream.write_all(&frame(&body)).await
}
