//! The OpenSSL calls certkeeper makes that the `openssl` crate has no safe wrapper
//! for, kept in a crate of their own so that every other crate of the workspace
//! forbids unsafe code:
//!
//! - `SSL_CTX_set_post_handshake_auth`, which makes a client offer TLS 1.3
//!   post-handshake authentication (RFC 8446 §4.6.2), so that a partner that asks for
//!   the client certificate only for some paths (Apache's per-location
//!   `SSLVerifyClient require`) can ask for it after the handshake;
//! - a message callback that counts the partner's CertificateRequests, so that
//!   certkeeper can say whether (and when) a partner asked for the certificate on a
//!   session OpenSSL made: in the handshake, after it (renegotiation, post-handshake
//!   authentication), or never.
//! - a certificate callback (`SSL_set_cert_cb`) that asks certkeeper, each time the
//!   partner asks for the client certificate, whether it may be presented (and so the
//!   key sign): the agent re-checks the caller's grant and audits each use, and a
//!   partner that keeps asking is cut off;
//! - `SSL_OP_LEGACY_SERVER_CONNECT`, a constant the crate does not name.

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use foreign_types::ForeignTypeRef;
use openssl::error::ErrorStack;
use openssl::ex_data::Index;
use openssl::ssl::{Ssl, SslContextBuilder, SslOptions, SslRef};
use openssl_sys::SSL;

/// `SSL_OP_LEGACY_SERVER_CONNECT`: connect to servers that lack RFC 5746's
/// renegotiation_info (OpenSSL still refuses to renegotiate with them).
pub const LEGACY_SERVER_CONNECT: SslOptions =
    SslOptions::from_bits_retain(openssl_sys::SSL_OP_LEGACY_SERVER_CONNECT);

/// Offers post-handshake authentication on every connection made from `builder`.
/// (OpenSSL then answers a partner's post-handshake CertificateRequest with the
/// certificate and key configured on the context.)
pub fn offer_post_handshake_auth(builder: &mut SslContextBuilder) {
    // SAFETY: `builder.as_ptr()` is a valid, live `SSL_CTX` owned by `builder`, which
    // is borrowed mutably for the call; the function only sets a flag on it
    // (OpenSSL 1.1.1 and later, the versions openssl-sys links against for TLS 1.3).
    #[allow(unsafe_code)]
    unsafe {
        openssl_sys::SSL_CTX_set_post_handshake_auth(builder.as_ptr(), 1);
    }
}

/// How many CertificateRequests the partner has sent on a session, and the last one.
#[derive(Debug, Default)]
pub struct Requests {
    count: AtomicU32,
    last: Mutex<Option<(i32, Vec<u8>)>>,
}

/// The largest CertificateRequest kept (a handshake message is at most 16 MiB; a
/// list of acceptable CAs this long is already absurd).
const MAX_KEPT: usize = 64 * 1024;

impl Requests {
    /// The count so far.
    pub fn count(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }

    /// The last CertificateRequest as received (the handshake message, its 4-byte
    /// header first), with the protocol version it came in (0x0303 for TLS 1.2,
    /// 0x0304 for TLS 1.3). Its bytes are the partner's: parse them strictly.
    pub fn last(&self) -> Option<(i32, Vec<u8>)> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// `SSL_CTRL_SET_MSG_CALLBACK_ARG` (`SSL_set_msg_callback_arg` is a macro over it).
const SSL_CTRL_SET_MSG_CALLBACK_ARG: c_int = 16;
/// The handshake content type, and the CertificateRequest message type.
const HANDSHAKE: c_int = 22;
const CERTIFICATE_REQUEST: u8 = 13;

type MessageCallback = unsafe extern "C" fn(
    write_p: c_int,
    version: c_int,
    content_type: c_int,
    buf: *const c_void,
    len: usize,
    ssl: *mut SSL,
    arg: *mut c_void,
);

type CertificateCallback = unsafe extern "C" fn(ssl: *mut SSL, arg: *mut c_void) -> c_int;

// libssl's own functions (openssl-sys links libssl but does not declare these).
#[allow(unsafe_code)]
unsafe extern "C" {
    fn SSL_set_msg_callback(ssl: *mut SSL, cb: Option<MessageCallback>);
    fn SSL_set_cert_cb(ssl: *mut SSL, cb: Option<CertificateCallback>, arg: *mut c_void);
}

/// Decides, each time the partner asks for the client certificate, whether it is
/// presented: `false` ends the session (OpenSSL sends an internal_error alert).
pub struct Gate(pub Box<dyn Fn() -> bool + Send + Sync>);

/// Asks `gate` each time the certificate is about to be presented on `ssl` (in the
/// handshake or after it): the certificate and the key's signature go out only when
/// it says yes. The gate lives in the session's extra data, as long as the session.
pub fn gate_certificate(ssl: &mut SslRef, gate: Gate) -> Result<(), ErrorStack> {
    static INDEX: OnceLock<Index<Ssl, Arc<Gate>>> = OnceLock::new();
    let index = match INDEX.get() {
        Some(index) => *index,
        None => *INDEX.get_or_init(|| Ssl::new_ex_index().expect("an OpenSSL ex_data index")),
    };
    let gate = Arc::new(gate);
    ssl.set_ex_data(index, Arc::clone(&gate));
    let arg = Arc::as_ptr(&gate) as *mut c_void;
    // SAFETY: `ssl` is a live `SSL`; `arg` points into the `Arc` just stored in the
    // session's ex_data under this function's own index, freed only with the session,
    // so it is valid whenever OpenSSL calls the callback for it.
    #[allow(unsafe_code)]
    unsafe {
        SSL_set_cert_cb(ssl.as_ptr(), Some(on_certificate), arg);
    }
    Ok(())
}

/// OpenSSL's certificate callback: 1 to go on, 0 to fail the handshake. A panic in
/// the gate is a refusal (it must not unwind into C).
#[allow(unsafe_code)]
unsafe extern "C" fn on_certificate(_ssl: *mut SSL, arg: *mut c_void) -> c_int {
    if arg.is_null() {
        return 0;
    }
    // SAFETY: `arg` is the `Gate` set by `gate_certificate`, alive while the session is.
    let gate = unsafe { &*(arg as *const Gate) };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (gate.0)())) {
        Ok(true) => 1,
        _ => 0,
    }
}

/// Counts the CertificateRequests the partner sends on `ssl`, from now on: in the
/// handshake, and after it (TLS 1.2 renegotiation, TLS 1.3 post-handshake
/// authentication). The counter lives in the session's own extra data, so it lives
/// exactly as long as the callback can run.
pub fn count_certificate_requests(ssl: &mut SslRef) -> Result<Arc<Requests>, ErrorStack> {
    static INDEX: OnceLock<Index<Ssl, Arc<Requests>>> = OnceLock::new();
    let index = match INDEX.get() {
        Some(index) => *index,
        None => *INDEX.get_or_init(|| Ssl::new_ex_index().expect("an OpenSSL ex_data index")),
    };
    let requests = Arc::new(Requests::default());
    ssl.set_ex_data(index, Arc::clone(&requests));
    let arg = Arc::as_ptr(&requests) as *mut c_void;
    // SAFETY: `ssl` is a live `SSL`. The callback's argument points into the `Arc`
    // just stored in the session's ex_data, which is freed only with the session
    // (and replaced by nothing else: the index is this function's own), so it is
    // valid whenever OpenSSL calls the callback for this session. The callback only
    // reads `len` bytes OpenSSL passes and touches an atomic.
    #[allow(unsafe_code)]
    unsafe {
        SSL_set_msg_callback(ssl.as_ptr(), Some(on_message));
        openssl_sys::SSL_ctrl(ssl.as_ptr(), SSL_CTRL_SET_MSG_CALLBACK_ARG, 0, arg);
    }
    Ok(requests)
}

/// OpenSSL's message callback: a received handshake message whose first byte (its
/// type) is CertificateRequest is counted.
#[allow(unsafe_code)]
unsafe extern "C" fn on_message(
    write_p: c_int,
    version: c_int,
    content_type: c_int,
    buf: *const c_void,
    len: usize,
    _ssl: *mut SSL,
    arg: *mut c_void,
) {
    if write_p != 0 || content_type != HANDSHAKE || len == 0 || buf.is_null() || arg.is_null() {
        return;
    }
    // SAFETY: OpenSSL passes `len` (> 0) readable bytes at `buf`, valid for the
    // call; `arg` is the `Requests` set by `count_certificate_requests`, alive while
    // the session is.
    let (message, requests) = unsafe {
        (
            std::slice::from_raw_parts(buf as *const u8, len),
            &*(arg as *const Requests),
        )
    };
    if message[0] == CERTIFICATE_REQUEST {
        requests.count.fetch_add(1, Ordering::Relaxed);
        let kept = (message.len() <= MAX_KEPT).then(|| (version, message.to_vec()));
        *requests.last.lock().unwrap_or_else(|p| p.into_inner()) = kept;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::ssl::{SslContext, SslMethod};
    use std::io::Read;

    /// The ClientHello a context sends, read off a loopback connection.
    fn client_hello(builder: SslContextBuilder) -> Vec<u8> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let context = builder.build();
        let client = std::thread::spawn(move || {
            let tcp = std::net::TcpStream::connect(addr).unwrap();
            let ssl = Ssl::new(&context).unwrap();
            let _ = ssl.connect(tcp);
        });
        let (mut server, _) = listener.accept().unwrap();
        let mut hello = vec![0u8; 5];
        server.read_exact(&mut hello).unwrap();
        let len = u16::from_be_bytes([hello[3], hello[4]]) as usize;
        hello.resize(5 + len, 0);
        server.read_exact(&mut hello[5..]).unwrap();
        drop(server);
        client.join().unwrap();
        hello
    }

    /// Whether the hello carries the post_handshake_auth extension (type 49, empty).
    fn offers_pha(hello: &[u8]) -> bool {
        hello.windows(4).any(|w| w == [0x00, 0x31, 0x00, 0x00])
    }

    #[test]
    fn the_client_hello_offers_post_handshake_auth_only_when_asked_to() {
        let plain = SslContext::builder(SslMethod::tls_client()).unwrap();
        assert!(!offers_pha(&client_hello(plain)));
        let mut offering = SslContext::builder(SslMethod::tls_client()).unwrap();
        offer_post_handshake_auth(&mut offering);
        assert!(offers_pha(&client_hello(offering)));
    }
}
