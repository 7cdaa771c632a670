//! Certification paths: the Windows "Certification Path" tab, and the reason a path
//! does not validate, in words a person can act on.
//!
//! The verdict is rustls-webpki's (signatures, validity, basic and name constraints,
//! EKU), over every trusted and untrusted CA at hand; its `verify_path` hook vetoes
//! paths through disallowed keys, expired trust anchors or past the depth limit, and
//! webpki then keeps searching for another path. webpki only says *that* a path
//! failed (a missing issuer is just `UnknownIssuer`), so when it fails a small path
//! builder of our own finds the best partial path — by subject name and key
//! identifiers, checking each signature — and names the one problem to fix first.

use rustls_pki_types::{
    CertificateDer, ServerName, SignatureVerificationAlgorithm, TrustAnchor, UnixTime,
};
use serde::Serialize;
use webpki::{EndEntityCert, KeyUsage};

use crate::ber;
use crate::cert::Certificate;

/// What the certificate must be good for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Purpose {
    /// TLS client authentication (the EKU a partner's web service checks).
    ClientAuth,
    /// TLS server authentication.
    ServerAuth,
    /// No EKU requirement.
    Any,
}

/// How a candidate CA is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// A trust anchor (the `root` store).
    Anchor,
    /// Usable as an intermediate, not trusted by itself.
    Untrusted,
    /// Explicitly distrusted: no path may go through it or its key.
    Disallowed,
}

/// A certificate the path may use, with its trust.
#[derive(Debug, Clone, Copy)]
pub struct PoolCert<'a> {
    /// The certificate.
    pub cert: &'a Certificate,
    /// Its trust.
    pub trust: Trust,
}

/// A path question.
#[derive(Debug, Clone)]
pub struct Query<'a> {
    /// The certificate whose path is built.
    pub leaf: &'a Certificate,
    /// Every other certificate at hand.
    pub pool: &'a [PoolCert<'a>],
    /// Validation time, seconds since the epoch.
    pub at: i64,
    /// The purpose.
    pub purpose: Purpose,
    /// Most intermediates a path may have.
    pub max_intermediates: usize,
    /// A DNS name or IP address the leaf must be valid for (server validation).
    pub server_name: Option<String>,
    /// Key usage bits the leaf must have (`digitalSignature`, ...).
    pub required_key_usage: Vec<String>,
    /// CRLs (DER) to check the leaf against; empty: no revocation check.
    pub crls: Vec<Vec<u8>>,
}

impl<'a> Query<'a> {
    /// A query with the defaults: client-auth, at most 8 intermediates.
    pub fn new(leaf: &'a Certificate, pool: &'a [PoolCert<'a>], at: i64) -> Self {
        Query {
            leaf,
            pool,
            at,
            purpose: Purpose::ClientAuth,
            max_intermediates: 8,
            server_name: None,
            required_key_usage: Vec::new(),
            crls: Vec::new(),
        }
    }
}

/// The state of one element of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Nothing wrong with it.
    Ok,
    /// Past its notAfter.
    Expired,
    /// Before its notBefore.
    NotYetValid,
    /// A self-signed CA that is not a trust anchor.
    UntrustedRoot,
    /// Not at hand: the issuer named by the element below.
    Missing,
    /// In the disallowed store, or shares a key with one there.
    Disallowed,
    /// Its signature does not verify with its issuer's key.
    BadSignature,
    /// Its EKU excludes the purpose.
    WrongUsage,
    /// Issues certificates but is not a CA.
    NotCa,
    /// Something else webpki refused.
    Invalid,
}

/// One element of a path, leaf first.
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    /// SHA-256 thumbprint (None for a missing issuer).
    pub thumbprint: Option<String>,
    /// Subject (for a missing issuer: the name it must have).
    pub subject: String,
    /// Validity, seconds since the epoch (None when missing).
    pub not_before: Option<i64>,
    /// Validity end.
    pub not_after: Option<i64>,
    /// Its state.
    pub status: Status,
    /// It is the trust anchor of the path.
    pub anchor: bool,
}

/// Why a path does not validate: the one thing to fix first.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// A certificate in the path is distrusted.
    Disallowed {
        /// Its subject.
        subject: String,
        /// Its thumbprint.
        thumbprint: String,
    },
    /// An issuer is not at hand.
    MissingIssuer {
        /// The issuer's name.
        issuer: String,
        /// The authority key identifier the issuer must have.
        aki: Option<String>,
        /// Where the certificate says the issuer can be downloaded.
        aia: Vec<String>,
        /// Whose issuer it is.
        of: String,
    },
    /// The path ends at a self-signed CA that is not trusted.
    UntrustedRoot {
        /// Its subject.
        subject: String,
        /// Its thumbprint.
        thumbprint: String,
    },
    /// An element has expired.
    Expired {
        /// Its subject.
        subject: String,
        /// Its thumbprint.
        thumbprint: String,
        /// Its notAfter.
        not_after: i64,
    },
    /// An element is not valid yet.
    NotYetValid {
        /// Its subject.
        subject: String,
        /// Its thumbprint.
        thumbprint: String,
        /// Its notBefore.
        not_before: i64,
    },
    /// The leaf's EKU does not include the purpose.
    WrongUsage {
        /// Its subject.
        subject: String,
        /// The EKUs it has.
        has: Vec<String>,
        /// What is needed.
        needs: String,
    },
    /// A signature does not verify with the issuer's key.
    BadSignature {
        /// Whose signature.
        subject: String,
        /// The issuer with the same name but another key.
        issuer: String,
    },
    /// An issuer is not a CA.
    NotCa {
        /// Its subject.
        subject: String,
    },
    /// The leaf's key cannot be used for TLS.
    UnusableKey {
        /// The key type.
        key_type: String,
    },
    /// The leaf is not valid for the server name.
    NameMismatch {
        /// The name.
        name: String,
    },
    /// The leaf lacks a required key usage.
    KeyUsage {
        /// The missing usage.
        missing: String,
    },
    /// The path is longer than allowed.
    TooLong {
        /// The limit of intermediates.
        max_intermediates: usize,
    },
    /// Anything else the validator refused.
    Rejected {
        /// What it said.
        detail: String,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Disallowed { subject, .. } => {
                write!(f, "{subject} is distrusted (in disallowed)")
            }
            Problem::MissingIssuer {
                issuer,
                aki,
                aia,
                of,
            } => {
                write!(f, "the issuer of {of} is missing: {issuer}")?;
                if let Some(aki) = aki {
                    write!(f, " (key id {aki})")?;
                }
                if let Some(url) = aia.first() {
                    write!(f, "; it can be downloaded from {url}")?;
                }
                Ok(())
            }
            Problem::UntrustedRoot { subject, .. } => {
                write!(
                    f,
                    "the root {subject} is not trusted (it is not in the root store)"
                )
            }
            Problem::Expired {
                subject, not_after, ..
            } => {
                write!(f, "{subject} expired on {}", crate::path::date(*not_after))
            }
            Problem::NotYetValid {
                subject,
                not_before,
                ..
            } => {
                write!(
                    f,
                    "{subject} is not valid before {}",
                    crate::path::date(*not_before)
                )
            }
            Problem::WrongUsage {
                subject,
                has,
                needs,
            } => write!(
                f,
                "{subject} is not for {needs}: its extended key usage is {}",
                if has.is_empty() {
                    "empty".to_string()
                } else {
                    has.join(", ")
                }
            ),
            Problem::BadSignature { subject, issuer } => write!(
                f,
                "the signature on {subject} does not verify with the key of {issuer} \
                 (a CA of the same name with another key: the right one is missing)"
            ),
            Problem::NotCa { subject } => {
                write!(f, "{subject} issues certificates but is not a CA")
            }
            Problem::UnusableKey { key_type } => {
                write!(
                    f,
                    "the certificate's key ({key_type}) cannot be used for TLS"
                )
            }
            Problem::NameMismatch { name } => write!(f, "the certificate is not valid for {name}"),
            Problem::KeyUsage { missing } => {
                write!(f, "the certificate's key usage lacks {missing}")
            }
            Problem::TooLong { max_intermediates } => {
                write!(
                    f,
                    "the path needs more than {max_intermediates} intermediate CAs"
                )
            }
            Problem::Rejected { detail } => f.write_str(detail),
        }
    }
}

/// The answer: valid or not, the path (leaf first), and why not.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The path validates.
    pub valid: bool,
    /// The path found (leaf first); when invalid, the best attempt.
    pub chain: Vec<Link>,
    /// Why it does not validate.
    pub problem: Option<Problem>,
}

/// Builds and validates the certification path of `query.leaf`.
pub fn validate(query: &Query<'_>) -> Report {
    let leaf = query.leaf;
    if let Some(d) = disallowed_match(leaf, query.pool) {
        return Report {
            valid: false,
            chain: vec![link(leaf, Status::Disallowed, false)],
            problem: Some(Problem::Disallowed {
                subject: leaf.subject.clone(),
                thumbprint: d.thumbprint.clone(),
            }),
        };
    }
    if let Some(problem) = unusable_key(leaf) {
        return Report {
            valid: false,
            chain: vec![link(leaf, Status::Invalid, false)],
            problem: Some(problem),
        };
    }
    match webpki_verdict(query) {
        Ok(chain) => {
            let problem = leaf_checks(query);
            Report {
                valid: problem.is_none(),
                chain,
                problem,
            }
        }
        Err(error) => diagnose(query, &error),
    }
}

fn link(cert: &Certificate, status: Status, anchor: bool) -> Link {
    Link {
        thumbprint: Some(cert.thumbprint.clone()),
        subject: cert.subject.clone(),
        not_before: Some(cert.not_before),
        not_after: Some(cert.not_after),
        status,
        anchor,
    }
}

/// A disallowed certificate that is `cert` or shares its key.
fn disallowed_match<'a>(cert: &Certificate, pool: &[PoolCert<'a>]) -> Option<&'a Certificate> {
    pool.iter()
        .filter(|p| p.trust == Trust::Disallowed)
        .map(|p| p.cert)
        .find(|d| d.thumbprint == cert.thumbprint || d.key_id == cert.key_id)
}

/// How `cert` is trusted in the pool, if it is there.
fn trust_in(pool: &[PoolCert<'_>], cert: &Certificate) -> Option<Trust> {
    pool.iter()
        .find(|p| p.cert.thumbprint == cert.thumbprint)
        .map(|p| p.trust)
}

/// Keys certkeeper can sign TLS handshakes with.
fn unusable_key(leaf: &Certificate) -> Option<Problem> {
    let t = leaf.key_type.as_str();
    let usable = match t.strip_prefix("RSA ") {
        Some(bits) => bits.parse::<u32>().is_ok_and(|b| b >= 2048),
        None => matches!(t, "EC P-256" | "EC P-384" | "EC P-521" | "Ed25519"),
    };
    (!usable).then(|| Problem::UnusableKey {
        key_type: t.to_string(),
    })
}

/// Checks on the leaf beyond the path: server name, key usage.
fn leaf_checks(query: &Query<'_>) -> Option<Problem> {
    if let Some(name) = &query.server_name {
        let ok = CertificateDer::from(query.leaf.der.as_slice());
        let valid = EndEntityCert::try_from(&ok).is_ok_and(|ee| {
            ServerName::try_from(name.as_str())
                .is_ok_and(|sn| ee.verify_is_valid_for_subject_name(&sn).is_ok())
        });
        if !valid {
            return Some(Problem::NameMismatch { name: name.clone() });
        }
    }
    for usage in &query.required_key_usage {
        if !query.leaf.key_usage.iter().any(|u| u == usage) {
            return Some(Problem::KeyUsage {
                missing: usage.clone(),
            });
        }
    }
    None
}

/// The EKU policy for a purpose: webpki's for client and server, none for `any`.
enum Usage {
    Known(KeyUsage),
    Any,
}

impl webpki::ExtendedKeyUsageValidator for Usage {
    fn validate(&self, iter: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        match self {
            Usage::Known(usage) => usage.validate(iter),
            Usage::Any => Ok(()),
        }
    }
}

fn webpki_verdict(query: &Query<'_>) -> Result<Vec<Link>, webpki::Error> {
    let leaf_der = CertificateDer::from(query.leaf.der.as_slice());
    let ee = EndEntityCert::try_from(&leaf_der)?;
    let anchor_certs: Vec<&Certificate> = query
        .pool
        .iter()
        .filter(|p| p.trust == Trust::Anchor)
        .map(|p| p.cert)
        .collect();
    let anchor_ders: Vec<CertificateDer<'_>> = anchor_certs
        .iter()
        .map(|c| CertificateDer::from(c.der.as_slice()))
        .collect();
    // Anchors webpki cannot parse are left out (and named by the diagnosis).
    let anchors: Vec<(TrustAnchor<'_>, &Certificate)> = anchor_ders
        .iter()
        .zip(&anchor_certs)
        .filter_map(|(der, cert)| {
            webpki::anchor_from_trusted_cert(der)
                .ok()
                .map(|a| (a, *cert))
        })
        .collect();
    let trust_anchors: Vec<TrustAnchor<'_>> = anchors.iter().map(|(a, _)| a.clone()).collect();
    let inter_certs: Vec<&Certificate> = query
        .pool
        .iter()
        .filter(|p| p.trust == Trust::Untrusted)
        .map(|p| p.cert)
        .collect();
    let inter_ders: Vec<CertificateDer<'_>> = inter_certs
        .iter()
        .map(|c| CertificateDer::from(c.der.as_slice()))
        .collect();

    let at = rustls_pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        query.at.max(0) as u64,
    ));
    let anchor_of = |a: &TrustAnchor<'_>| anchors.iter().find(|(x, _)| x == a).map(|(_, c)| *c);
    let veto = |path: &webpki::VerifiedPath<'_>| -> Result<(), webpki::Error> {
        let inters: Vec<_> = path.intermediate_certificates().collect();
        // Self-issued intermediates (a CA re-keyed under the same name) do not count,
        // as for RFC 5280's path length.
        let counted = inters
            .iter()
            .filter(|c| {
                let der = c.der();
                Certificate::from_der(der.as_ref()).is_ok_and(|c| c.subject_der != c.issuer_der)
            })
            .count();
        if counted > query.max_intermediates {
            return Err(webpki::Error::MaximumPathDepthExceeded);
        }
        if let Some(anchor) = anchor_of(path.anchor()) {
            if query.at > anchor.not_after {
                return Err(webpki::Error::CertExpired {
                    time: at,
                    not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                        anchor.not_after.max(0) as u64,
                    )),
                });
            }
            if disallowed_match(anchor, query.pool).is_some() {
                return Err(webpki::Error::CertDistrusted);
            }
        }
        for inter in inters {
            let der = inter.der();
            let der: &[u8] = der.as_ref();
            if let Some(c) = inter_certs.iter().find(|c| c.der == der)
                && disallowed_match(c, query.pool).is_some()
            {
                return Err(webpki::Error::CertDistrusted);
            }
        }
        Ok(())
    };
    let crls = query
        .crls
        .iter()
        .map(|der| {
            webpki::OwnedCertRevocationList::from_der(der).map(webpki::CertRevocationList::from)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let crl_refs: Vec<&webpki::CertRevocationList<'_>> = crls.iter().collect();
    let revocation = webpki::RevocationOptionsBuilder::new(&crl_refs)
        .ok()
        .map(|b| {
            b.with_depth(webpki::RevocationCheckDepth::EndEntity)
                .with_status_policy(webpki::UnknownStatusPolicy::Allow)
                .build()
        });
    let usage = match query.purpose {
        Purpose::ClientAuth => Usage::Known(KeyUsage::client_auth()),
        Purpose::ServerAuth => Usage::Known(KeyUsage::server_auth()),
        Purpose::Any => Usage::Any,
    };
    let path = ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &trust_anchors,
        &inter_ders,
        at,
        usage,
        revocation,
        Some(&veto),
    )?;
    let mut chain = vec![link(query.leaf, Status::Ok, false)];
    for inter in path.intermediate_certificates() {
        let der = inter.der();
        let der: &[u8] = der.as_ref();
        if let Some(c) = inter_certs.iter().find(|c| c.der == der) {
            chain.push(link(c, Status::Ok, false));
        }
    }
    if let Some(anchor) = anchor_of(path.anchor()) {
        chain.push(link(anchor, Status::Ok, true));
    }
    Ok(chain)
}

/// Whether `child`'s signature verifies with `issuer`'s public key (None: the
/// algorithm is not one certkeeper verifies).
pub fn signed_by(child: &Certificate, issuer: &Certificate) -> Option<bool> {
    let outer = ber::read_single(&child.der).ok()?;
    let parts = outer.children().ok()?;
    let [tbs, alg, sig] = parts.as_slice() else {
        return Some(false);
    };
    let signature = sig.content.get(1..)?;
    let issuer_der = CertificateDer::from(issuer.der.as_slice());
    let issuer_ee = EndEntityCert::try_from(&issuer_der).ok()?;
    let candidates = webpki::ALL_VERIFICATION_ALGS
        .iter()
        .filter(|a| a.signature_alg_id().as_ref() == alg.content);
    let mut supported = false;
    for a in candidates {
        match issuer_ee.verify_signature(
            *a as &dyn SignatureVerificationAlgorithm,
            tbs.raw,
            signature,
        ) {
            Ok(()) => return Some(true),
            Err(webpki::Error::InvalidSignatureForPublicKey) => supported = true,
            Err(_) => {}
        }
    }
    supported.then_some(false)
}

/// Most path candidates the diagnosis looks at: bounds hostile input.
const BUDGET: usize = 512;
/// Most signatures the diagnosis verifies (each pair once): a pool of many CAs with
/// one name costs at most this many verifications, not one per walk per link.
const SIGNATURE_BUDGET: usize = 128;
/// Longest path the diagnosis follows.
const MAX_DEPTH: usize = 16;

struct Search<'q, 'a> {
    query: &'q Query<'a>,
    budget: usize,
    best: Option<(u32, Vec<&'a Certificate>, bool)>,
    /// Signatures verified so far, by (child, issuer) thumbprint.
    signatures: std::collections::HashMap<(&'a str, &'a str), Option<bool>>,
}

impl<'a> Search<'_, 'a> {
    /// How good a (possibly partial) path is: reaching an anchor, then a self-signed
    /// root, then length; minus its problems.
    /// `signed_by`, each pair verified at most once and at most [`SIGNATURE_BUDGET`]
    /// pairs in all (past it: unknown, not penalised).
    fn signed(&mut self, child: &'a Certificate, issuer: &'a Certificate) -> Option<bool> {
        let key = (child.thumbprint.as_str(), issuer.thumbprint.as_str());
        if let Some(known) = self.signatures.get(&key) {
            return *known;
        }
        if self.signatures.len() >= SIGNATURE_BUDGET {
            return None;
        }
        let verdict = signed_by(child, issuer);
        self.signatures.insert(key, verdict);
        verdict
    }

    fn score(&mut self, path: &[&'a Certificate], complete: bool) -> u32 {
        let top = path[path.len() - 1];
        let anchored = self.trust(top) == Some(Trust::Anchor);
        let mut score: u32 = if anchored {
            10_000
        } else if complete {
            5_000
        } else {
            0
        };
        score += (path.len() as u32) * 10;
        for (i, c) in path.iter().enumerate() {
            if !c.valid_at(self.query.at) {
                score = score.saturating_sub(3);
            }
            if let Some(issuer) = path.get(i + 1)
                && self.signed(c, issuer) == Some(false)
            {
                score = score.saturating_sub(40);
            }
            if self.trust(c) == Some(Trust::Disallowed) {
                score = score.saturating_sub(60);
            }
        }
        score
    }

    fn trust(&self, cert: &Certificate) -> Option<Trust> {
        trust_in(self.query.pool, cert)
    }

    fn walk(&mut self, path: &mut Vec<&'a Certificate>) {
        if self.budget == 0 {
            return;
        }
        self.budget -= 1;
        let top = path[path.len() - 1];
        let ends = top.self_signed || self.trust(top) == Some(Trust::Anchor);
        let mut candidates: Vec<&'a Certificate> = if ends || path.len() > MAX_DEPTH {
            Vec::new()
        } else {
            self.query
                .pool
                .iter()
                .map(|p| p.cert)
                .filter(|c| c.subject_der == top.issuer_der)
                .filter(|c| !path.iter().any(|p| p.thumbprint == c.thumbprint))
                .collect()
        };
        // Key identifier matches first, then anchors, then the newest.
        candidates.sort_by_key(|c| {
            let aki_match = match (&top.authority_key_id, &c.subject_key_id) {
                (Some(a), Some(s)) => a == s,
                _ => true,
            };
            (
                !aki_match,
                self.trust(c) != Some(Trust::Anchor),
                std::cmp::Reverse(c.not_after),
            )
        });
        let score = self.score(path, ends);
        if self.best.as_ref().is_none_or(|(s, _, _)| score > *s) {
            self.best = Some((score, path.clone(), ends));
        }
        for c in candidates {
            path.push(c);
            self.walk(path);
            path.pop();
        }
    }
}

/// Seconds since the epoch as a UTC date, `2026-11-29`, for messages.
pub fn date(ts: i64) -> String {
    // Days since the epoch to a civil date (Howard Hinnant's algorithm): core reads
    // no clock and pulls in no calendar crate for one message.
    let z = ts.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    format!("{:04}-{:02}-{:02}", if m <= 2 { y + 1 } else { y }, m, d)
}

/// Explains a failed verdict: the best partial path and its first problem.
fn diagnose(query: &Query<'_>, error: &webpki::Error) -> Report {
    let mut search = Search {
        query,
        budget: BUDGET,
        best: None,
        signatures: std::collections::HashMap::new(),
    };
    let mut path = vec![query.leaf];
    search.walk(&mut path);
    let (_, best, complete) = search.best.unwrap_or((0, vec![query.leaf], false));
    let exhausted = search.budget == 0;

    let trust = |c: &Certificate| trust_in(query.pool, c);
    let mut chain: Vec<Link> = Vec::new();
    let mut problems: Vec<(u8, Problem)> = Vec::new();
    for (i, c) in best.iter().enumerate() {
        let mut status = Status::Ok;
        let anchor = trust(c) == Some(Trust::Anchor);
        if disallowed_match(c, query.pool).is_some() {
            status = Status::Disallowed;
            problems.push((
                0,
                Problem::Disallowed {
                    subject: c.subject.clone(),
                    thumbprint: c.thumbprint.clone(),
                },
            ));
        } else if query.at > c.not_after {
            status = Status::Expired;
            problems.push((
                1,
                Problem::Expired {
                    subject: c.subject.clone(),
                    thumbprint: c.thumbprint.clone(),
                    not_after: c.not_after,
                },
            ));
        } else if query.at < c.not_before {
            status = Status::NotYetValid;
            problems.push((
                1,
                Problem::NotYetValid {
                    subject: c.subject.clone(),
                    thumbprint: c.thumbprint.clone(),
                    not_before: c.not_before,
                },
            ));
        }
        if let Some(issuer) = best.get(i + 1) {
            if signed_by(c, issuer) == Some(false) && status == Status::Ok {
                status = Status::BadSignature;
                problems.push((
                    4,
                    Problem::BadSignature {
                        subject: c.subject.clone(),
                        issuer: issuer.subject.clone(),
                    },
                ));
            }
            if !issuer.is_ca {
                problems.push((
                    5,
                    Problem::NotCa {
                        subject: issuer.subject.clone(),
                    },
                ));
            }
        }
        if i == 0 && status == Status::Ok && !c.ext_key_usage.is_empty() {
            let needs = match query.purpose {
                Purpose::ClientAuth => Some("clientAuth"),
                Purpose::ServerAuth => Some("serverAuth"),
                Purpose::Any => None,
            };
            if let Some(needs) = needs
                && !c.ext_key_usage.iter().any(|e| e == needs)
            {
                status = Status::WrongUsage;
                problems.push((
                    6,
                    Problem::WrongUsage {
                        subject: c.subject.clone(),
                        has: c.ext_key_usage.clone(),
                        needs: needs.into(),
                    },
                ));
            }
        }
        let top = i + 1 == best.len();
        if top && complete && !anchor && status == Status::Ok {
            status = Status::UntrustedRoot;
            problems.push((
                3,
                Problem::UntrustedRoot {
                    subject: c.subject.clone(),
                    thumbprint: c.thumbprint.clone(),
                },
            ));
        }
        chain.push(link(c, status, anchor));
    }
    let top = best[best.len() - 1];
    if !complete && !exhausted && best.len() <= MAX_DEPTH {
        chain.push(Link {
            thumbprint: None,
            subject: top.issuer.clone(),
            not_before: None,
            not_after: None,
            status: Status::Missing,
            anchor: false,
        });
        problems.push((
            2,
            Problem::MissingIssuer {
                issuer: top.issuer.clone(),
                aki: top.authority_key_id.clone(),
                aia: top.ca_issuers.clone(),
                of: top.subject.clone(),
            },
        ));
    }
    if matches!(error, webpki::Error::MaximumPathDepthExceeded) || best.len() > MAX_DEPTH {
        problems.push((
            7,
            Problem::TooLong {
                max_intermediates: query.max_intermediates,
            },
        ));
    }
    problems.sort_by_key(|(rank, _)| *rank);
    let problem = problems
        .into_iter()
        .next()
        .map(|(_, p)| p)
        .unwrap_or_else(|| Problem::Rejected {
            detail: describe_webpki(error),
        });
    Report {
        valid: false,
        chain,
        problem: Some(problem),
    }
}

/// webpki's errors in words (its Display is Debug-like).
fn describe_webpki(error: &webpki::Error) -> String {
    use webpki::Error as E;
    match error {
        E::UnknownIssuer => "no issuer of this certificate leads to a trusted root".into(),
        E::CertExpired { .. } => "a certificate in the path has expired".into(),
        E::CertNotValidYet { .. } => "a certificate in the path is not valid yet".into(),
        E::CaUsedAsEndEntity => "the certificate is a CA certificate, not an end entity".into(),
        E::EndEntityUsedAsCa => "an end-entity certificate is used as a CA".into(),
        E::NameConstraintViolation => "a CA's name constraints forbid this certificate's names".into(),
        E::PathLenConstraintViolated => "a CA's path length constraint is exceeded".into(),
        E::MaximumPathDepthExceeded => "the path is too long".into(),
        E::MaximumPathBuildCallsExceeded | E::MaximumSignatureChecksExceeded => {
            "too many candidate paths: the search was stopped".into()
        }
        E::InvalidSignatureForPublicKey => "a signature in the path does not verify".into(),
        E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            "a certificate in the path uses a signature algorithm certkeeper does not accept (e.g. SHA-1)".into()
        }
        E::CertDistrusted => "a certificate in the path is distrusted".into(),
        E::BadDer | E::BadDerTime => "a certificate in the path is malformed".into(),
        E::UnsupportedCertVersion => "a certificate in the path has an unsupported version".into(),
        E::UnsupportedCriticalExtension => "a certificate has a critical extension certkeeper does not know".into(),
        E::RequiredEkuNotFoundContext(_) => {
            "a certificate in the path is not allowed for this purpose (extended key usage)".into()
        }
        E::ExtensionValueInvalid => "a certificate has an invalid extension value".into(),
        other => format!("the path was refused ({other:?})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use certkeeper_testkit::{Spec, TestCert};

    /// Ten CAs for each of three names (A issued by B, B by C, C by the root), and a
    /// leaf whose issuer is another "A": every walk is a dead end, and there are far
    /// more walks than distinct signatures.
    #[test]
    fn the_diagnosis_verifies_each_signature_once_and_at_most_its_budget() {
        let root = TestCert::self_signed(&Spec::ca("Shared Root"));
        let mut made = Vec::new();
        let cs: Vec<TestCert> = (0..10).map(|_| root.issue(&Spec::ca("C"))).collect();
        let bs: Vec<TestCert> = (0..10).map(|i| cs[i].issue(&Spec::ca("B"))).collect();
        let as_: Vec<TestCert> = (0..10).map(|i| bs[i].issue(&Spec::ca("A"))).collect();
        let stranger = bs[0].issue(&Spec::ca("A"));
        let leaf = stranger.issue(&Spec::client("leaf.example"));
        for t in std::iter::once(&root).chain(&cs).chain(&bs).chain(&as_) {
            made.push(Certificate::from_der(&t.der).unwrap());
        }
        let leaf = Certificate::from_der(&leaf.der).unwrap();
        let pool: Vec<PoolCert<'_>> = made
            .iter()
            .enumerate()
            .map(|(i, cert)| PoolCert {
                cert,
                trust: if i == 0 {
                    Trust::Anchor
                } else {
                    Trust::Untrusted
                },
            })
            .collect();
        let now = leaf.not_before + 3600;
        let query = Query::new(&leaf, &pool, now);
        let mut search = Search {
            query: &query,
            budget: BUDGET,
            best: None,
            signatures: std::collections::HashMap::new(),
        };
        let mut path = vec![&leaf];
        search.walk(&mut path);
        assert!(search.budget < BUDGET - 100, "the walks did happen");
        assert!(
            search.signatures.len() <= SIGNATURE_BUDGET,
            "{} signatures verified",
            search.signatures.len()
        );
        // And the verdict still names what is wrong.
        let report = validate(&query);
        assert!(!report.valid);
        assert!(report.problem.is_some());
    }
}
