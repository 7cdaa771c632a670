//! What a granted non-owner sees: the agent describes an entry whose key the caller
//! may use (its certificate, the home's facts about it, the certificates that could be
//! on its path), and `show` and `path` render it as they render the home's own.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use certkeeper_agent::AgentClient;
use certkeeper_core::Certificate;
use certkeeper_store::{Entry, EntryFacts, StoreName};

use crate::error::CliError;

/// An entry described by the agent.
pub struct Described {
    /// The entry, rebuilt from its certificate and the agent's facts.
    pub entry: Entry,
    /// Certificates that could be on its path, with their stores.
    pub candidates: Vec<(Certificate, StoreName)>,
}

/// Asks the agent about `reference` among the keys this user may use.
pub fn describe(client: &mut AgentClient, reference: &str) -> Result<Described, CliError> {
    let answer = client.describe(reference)?;
    let bad = |what: &str| CliError::usage(format!("the agent sent {what} that does not parse"));
    let der = B64
        .decode(&answer.key.certificate)
        .map_err(|_| bad("a certificate"))?;
    let cert = Certificate::from_der(&der).map_err(|_| bad("a certificate"))?;
    let store: StoreName = answer.store.parse().map_err(|_| bad("a store"))?;
    let entry = Entry::from_certificate(
        &cert,
        EntryFacts {
            store,
            name: answer.key.name.clone(),
            export_name: answer.export_name.clone(),
            has_key: true,
            exportable: answer.exportable,
            key_algorithm: Some(answer.key.algorithm.clone()),
        },
    );
    let mut candidates = Vec::with_capacity(answer.candidates.len());
    for c in &answer.candidates {
        let der = B64
            .decode(&c.certificate)
            .map_err(|_| bad("a CA certificate"))?;
        let cert = Certificate::from_der(&der).map_err(|_| bad("a CA certificate"))?;
        let store: StoreName = c.store.parse().map_err(|_| bad("a store"))?;
        candidates.push((cert, store));
    }
    Ok(Described { entry, candidates })
}
