//! The one OpenSSL call certkeeper makes that the `openssl` crate has no safe wrapper
//! for: `SSL_CTX_set_post_handshake_auth`, which makes a client offer TLS 1.3
//! post-handshake authentication (RFC 8446 §4.6.2), so that a partner that asks for
//! the client certificate only for some paths (Apache's per-location
//! `SSLVerifyClient require`) can ask for it after the handshake. Kept in a crate of
//! its own so that every other crate of the workspace forbids unsafe code.

use openssl::ssl::{SslContextBuilder, SslOptions};

/// `SSL_OP_LEGACY_SERVER_CONNECT`, which the `openssl` crate does not name: connect to
/// servers that lack RFC 5746's renegotiation_info (OpenSSL still refuses to
/// renegotiate with them).
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

#[cfg(test)]
mod tests {
    use openssl::ssl::{SslContext, SslMethod};

    #[test]
    fn a_context_offers_post_handshake_auth_and_still_builds() {
        let mut builder = SslContext::builder(SslMethod::tls_client()).unwrap();
        super::offer_post_handshake_auth(&mut builder);
        let _ = builder.build();
    }
}
