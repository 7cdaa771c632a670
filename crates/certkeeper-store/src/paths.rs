//! Certification paths over a home's stores: `root` entries are trust anchors,
//! `disallowed` entries are distrusted, every other entry may serve as an
//! intermediate. Candidates are gathered by following issuer names through the
//! indexed `subject_der` column, so a home of 10,000 entries costs no more than the
//! certificates that could be on the path.

use std::collections::{HashMap, HashSet};

use certkeeper_core::Certificate;
use certkeeper_core::path::{PoolCert, Purpose, Query, Report, Trust, validate};

use crate::entry::{Entry, StoreName};
use crate::error::StoreError;
use crate::home::Home;

/// Most certificates gathered for one path: bounds a hostile home.
const MAX_CANDIDATES: usize = 256;

/// A path report with the store of each element.
#[derive(Debug, Clone)]
pub struct PathCheck {
    /// The engine's answer.
    pub report: Report,
    /// Store of each thumbprint in the chain.
    pub stores: HashMap<String, StoreName>,
}

impl PathCheck {
    /// The store of a chain element, if it is in the home.
    pub fn store_of(&self, thumbprint: Option<&str>) -> Option<StoreName> {
        thumbprint.and_then(|t| self.stores.get(t).copied())
    }
}

fn trust_of(store: StoreName) -> Trust {
    match store {
        StoreName::Root => Trust::Anchor,
        StoreName::Disallowed => Trust::Disallowed,
        _ => Trust::Untrusted,
    }
}

impl Home {
    /// Builds and checks the certification path of `entry` at `at` for `purpose`.
    pub fn check_path(
        &self,
        entry: &Entry,
        at: i64,
        purpose: Purpose,
    ) -> Result<PathCheck, StoreError> {
        let candidates = self.path_candidates(entry)?;
        check_candidates(entry, &candidates, at, purpose)
    }

    /// The certificates of the home that could be on `entry`'s path, each with its
    /// store: every certificate reachable by following issuer names (at most
    /// [`MAX_CANDIDATES`]) and every distrusted one. Public certificates only: the
    /// agent hands this to callers who may use `entry`'s key, so that `path` works
    /// for them without opening the home.
    pub fn path_candidates(
        &self,
        entry: &Entry,
    ) -> Result<Vec<(Certificate, StoreName)>, StoreError> {
        let leaf = Certificate::from_der(&entry.der)?;
        let mut gathered: Vec<(Certificate, StoreName)> = Vec::new();
        let mut seen_names: HashSet<Vec<u8>> = HashSet::new();
        let mut seen_certs: HashSet<String> = HashSet::from([entry.thumbprint.clone()]);
        let mut names = vec![leaf.issuer_der];
        while let Some(name) = names.pop() {
            if !seen_names.insert(name.clone()) || gathered.len() >= MAX_CANDIDATES {
                continue;
            }
            for candidate in self.by_subject_der(&name)? {
                if !seen_certs.insert(candidate.thumbprint.clone()) {
                    continue;
                }
                // An entry that does not parse any more cannot be on a path.
                let Ok(cert) = Certificate::from_der(&candidate.der) else {
                    continue;
                };
                if cert.issuer_der != cert.subject_der {
                    names.push(cert.issuer_der.clone());
                }
                gathered.push((cert, candidate.store));
            }
        }
        // Every distrusted entry, the entry itself included when it is disallowed.
        for d in self.list(Some(StoreName::Disallowed))? {
            if (d.thumbprint == entry.thumbprint || seen_certs.insert(d.thumbprint.clone()))
                && let Ok(cert) = Certificate::from_der(&d.der)
            {
                gathered.push((cert, StoreName::Disallowed));
            }
        }
        Ok(gathered)
    }

    /// The issuing CAs on `entry`'s certification path at `at` (the valid path, else
    /// the best one found), nearest first, as entries; the trust anchor only when
    /// `with_root`. What a TLS client presents (without root) or `export --chain` writes.
    pub fn path_issuers(
        &self,
        entry: &Entry,
        at: i64,
        with_root: bool,
    ) -> Result<Vec<Entry>, StoreError> {
        let check = self.check_path(entry, at, Purpose::Any)?;
        let mut issuers = Vec::new();
        for link in check
            .report
            .chain
            .iter()
            .skip(1)
            .filter(|l| with_root || !l.anchor)
        {
            if let Some(t) = &link.thumbprint
                && let Some(e) = self.entry(t)?
            {
                issuers.push(e);
            }
        }
        Ok(issuers)
    }
}

/// Checks `entry`'s path among `candidates` (from [`Home::path_candidates`], here or
/// in the agent) at `at` for `purpose`.
pub fn check_candidates(
    entry: &Entry,
    candidates: &[(Certificate, StoreName)],
    at: i64,
    purpose: Purpose,
) -> Result<PathCheck, StoreError> {
    let leaf = Certificate::from_der(&entry.der)?;
    let pool: Vec<PoolCert<'_>> = candidates
        .iter()
        .map(|(cert, store)| PoolCert {
            cert,
            trust: trust_of(*store),
        })
        .collect();
    let mut query = Query::new(&leaf, &pool, at);
    query.purpose = purpose;
    let report = validate(&query);
    let mut stores: HashMap<String, StoreName> = candidates
        .iter()
        .map(|(c, s)| (c.thumbprint.clone(), *s))
        .collect();
    stores.insert(entry.thumbprint.clone(), entry.store);
    Ok(PathCheck { report, stores })
}
