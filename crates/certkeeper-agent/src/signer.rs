//! A rustls [`SigningKey`] whose private half lives in the agent: rustls asks it to
//! sign the handshake, and it asks the agent. Connections to the agent are pooled.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};
use rustls_pki_types::CertificateDer;

use crate::client::{AgentClient, ClientError};
use crate::protocol::{KeyInfo, SCHEMES};

/// Idle connections to one agent socket.
#[derive(Debug)]
struct Pool {
    path: PathBuf,
    idle: Mutex<Vec<AgentClient>>,
}

impl Pool {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut AgentClient) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let taken = self.idle.lock().ok().and_then(|mut v| v.pop());
        let mut client = match taken {
            Some(c) => c,
            None => AgentClient::connect(&self.path)?,
        };
        let result = f(&mut client);
        // A connection that failed may be broken: keep only good ones.
        if result.is_ok()
            && let Ok(mut idle) = self.idle.lock()
            && idle.len() < 16
        {
            idle.push(client);
        }
        result
    }
}

/// A key in the agent, usable as a rustls signing key.
#[derive(Debug, Clone)]
pub struct AgentSigningKey {
    pool: Arc<Pool>,
    thumbprint: String,
    algorithm: String,
}

impl AgentSigningKey {
    /// A signing key for `info` (from [`AgentClient::resolve`]) through the agent at `socket`.
    pub fn new(socket: &Path, info: &KeyInfo) -> Self {
        AgentSigningKey {
            pool: Arc::new(Pool {
                path: socket.to_path_buf(),
                idle: Mutex::new(Vec::new()),
            }),
            thumbprint: info.thumbprint.clone(),
            algorithm: info.algorithm.clone(),
        }
    }

    /// Resolves `reference` through the agent and returns the certificate chain with
    /// this key, ready for a rustls client configuration.
    pub fn certified(
        socket: &Path,
        reference: &str,
    ) -> Result<(CertifiedKey, KeyInfo), ClientError> {
        let info = AgentClient::connect(socket)?.resolve(reference)?;
        let mut chain = Vec::with_capacity(1 + info.chain.len());
        for b64 in std::iter::once(&info.certificate).chain(&info.chain) {
            let der = B64
                .decode(b64)
                .map_err(|e| ClientError::Protocol(e.to_string()))?;
            chain.push(CertificateDer::from(der));
        }
        let key = AgentSigningKey::new(socket, &info);
        Ok((CertifiedKey::new(chain, Arc::new(key)), info))
    }

    /// The schemes this key signs with, best first.
    pub fn schemes(&self) -> Vec<SignatureScheme> {
        use SignatureScheme as S;
        let fits = |s: &S| match self.algorithm.as_str() {
            "ec-p256" => *s == S::ECDSA_NISTP256_SHA256,
            "ec-p384" => *s == S::ECDSA_NISTP384_SHA384,
            "ec-p521" => *s == S::ECDSA_NISTP521_SHA512,
            "ed25519" => *s == S::ED25519,
            "rsa" => format!("{s:?}").starts_with("RSA_"),
            "rsa-pss" => format!("{s:?}").starts_with("RSA_PSS_"),
            _ => false,
        };
        SCHEMES.iter().copied().filter(fits).collect()
    }

    /// Signs through the agent (also for callers outside rustls, like keycheck).
    pub fn sign_with(
        &self,
        scheme: SignatureScheme,
        message: &[u8],
    ) -> Result<Vec<u8>, ClientError> {
        let name = format!("{scheme:?}");
        self.pool.with(|c| c.sign(&self.thumbprint, &name, message))
    }
}

impl SigningKey for AgentSigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let scheme = self.schemes().into_iter().find(|s| offered.contains(s))?;
        Some(Box::new(AgentSigner {
            key: self.clone(),
            scheme,
        }))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        match self.algorithm.as_str() {
            "ec-p256" | "ec-p384" | "ec-p521" => SignatureAlgorithm::ECDSA,
            "ed25519" => SignatureAlgorithm::ED25519,
            _ => SignatureAlgorithm::RSA,
        }
    }
}

#[derive(Debug)]
struct AgentSigner {
    key: AgentSigningKey,
    scheme: SignatureScheme,
}

impl Signer for AgentSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        self.key
            .sign_with(self.scheme, message)
            .map_err(|e| rustls::Error::General(format!("certkeeper agent: {e}")))
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

/// Whether `signature` over `message` under `scheme` verifies with the public key of
/// the certificate `cert_der` (how keycheck proves the agent used the right key).
pub fn verifies(
    cert_der: &[u8],
    scheme: SignatureScheme,
    message: &[u8],
    signature: &[u8],
) -> bool {
    use rustls_pki_types::SignatureVerificationAlgorithm;
    let algs: &[&dyn SignatureVerificationAlgorithm] = match scheme {
        SignatureScheme::ECDSA_NISTP256_SHA256 => &[webpki::aws_lc_rs::ECDSA_P256_SHA256],
        SignatureScheme::ECDSA_NISTP384_SHA384 => &[webpki::aws_lc_rs::ECDSA_P384_SHA384],
        SignatureScheme::ECDSA_NISTP521_SHA512 => &[webpki::aws_lc_rs::ECDSA_P521_SHA512],
        SignatureScheme::ED25519 => &[webpki::aws_lc_rs::ED25519],
        SignatureScheme::RSA_PSS_SHA256 => {
            &[webpki::aws_lc_rs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY]
        }
        SignatureScheme::RSA_PSS_SHA384 => {
            &[webpki::aws_lc_rs::RSA_PSS_2048_8192_SHA384_LEGACY_KEY]
        }
        SignatureScheme::RSA_PSS_SHA512 => {
            &[webpki::aws_lc_rs::RSA_PSS_2048_8192_SHA512_LEGACY_KEY]
        }
        SignatureScheme::RSA_PKCS1_SHA256 => &[webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA256],
        SignatureScheme::RSA_PKCS1_SHA384 => &[webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA384],
        SignatureScheme::RSA_PKCS1_SHA512 => &[webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA512],
        _ => &[],
    };
    let der = CertificateDer::from(cert_der);
    let Ok(cert) = webpki::EndEntityCert::try_from(&der) else {
        return false;
    };
    algs.iter()
        .any(|a| cert.verify_signature(*a, message, signature).is_ok())
}
