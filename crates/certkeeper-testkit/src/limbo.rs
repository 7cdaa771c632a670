//! Runs x509-limbo testcases through certkeeper's path engine (`certkeeper_core::path`):
//! trusted certificates as the root store, untrusted ones as intermediates, the peer
//! as the entry, with the case's time, purpose, peer name, depth limit, key usage and
//! CRLs.

use std::path::Path;

use certkeeper_core::Certificate;
use certkeeper_core::path::{PoolCert, Purpose, Query, Trust, validate};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// What certkeeper answered for one testcase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actual {
    /// The path validated.
    Success,
    /// It did not, with the reason.
    Failure(String),
    /// Not run, with why.
    Skipped(String),
}

/// One testcase's result.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The testcase id.
    pub id: String,
    /// "SUCCESS" or "FAILURE".
    pub expected: String,
    /// What certkeeper did.
    pub actual: Actual,
}

impl Outcome {
    /// pass, unexpected failure, unexpected success, or skip.
    pub fn verdict(&self) -> &'static str {
        match (&self.actual, self.expected.as_str()) {
            (Actual::Skipped(_), _) => "skip",
            (Actual::Success, "SUCCESS") | (Actual::Failure(_), "FAILURE") => "pass",
            (Actual::Failure(_), _) => "unexpected_failure",
            (Actual::Success, _) => "unexpected_success",
        }
    }
}

/// Loads `limbo.json`'s testcases.
pub fn load(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("test corpus {}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).expect("limbo.json is JSON");
    doc["testcases"].as_array().cloned().unwrap_or_default()
}

fn certs(list: &Value) -> (Vec<Certificate>, usize) {
    let mut out = Vec::new();
    let mut bad = 0;
    for pem in list.as_array().into_iter().flatten() {
        let parsed = pem
            .as_str()
            .and_then(|p| certkeeper_core::pem::parse(p.as_bytes()).ok())
            .and_then(|blocks| blocks.into_iter().next())
            .and_then(|b| Certificate::from_der(&b.data).ok());
        match parsed {
            Some(c) => out.push(c),
            None => bad += 1,
        }
    }
    (out, bad)
}

/// Runs one testcase.
pub fn run(tc: &Value) -> Outcome {
    let id = tc["id"].as_str().unwrap_or_default().to_string();
    let expected = tc["expected_result"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let outcome = |actual| Outcome {
        id: id.clone(),
        expected: expected.clone(),
        actual,
    };
    if tc["validation_kind"] != "SERVER" {
        return outcome(Actual::Skipped(
            "CLIENT cases check email names (RFC 822) in name constraints; certkeeper's path engine checks DNS and IP names only".into(),
        ));
    }
    if tc["signature_algorithms"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
    {
        return outcome(Actual::Skipped(
            "signature algorithm restrictions are not supported".into(),
        ));
    }
    let Some((leaf, _)) = certs(&Value::Array(vec![tc["peer_certificate"].clone()]))
        .0
        .into_iter()
        .next()
        .map(|c| (c, ()))
    else {
        return outcome(Actual::Failure(
            "the peer certificate does not parse".into(),
        ));
    };
    let (trusted, _) = certs(&tc["trusted_certs"]);
    let (untrusted, _) = certs(&tc["untrusted_intermediates"]);
    let mut pool: Vec<PoolCert<'_>> = trusted
        .iter()
        .map(|cert| PoolCert {
            cert,
            trust: Trust::Anchor,
        })
        .collect();
    pool.extend(untrusted.iter().map(|cert| PoolCert {
        cert,
        trust: Trust::Untrusted,
    }));
    let at = tc["validation_time"]
        .as_str()
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        .unwrap_or_else(OffsetDateTime::now_utc)
        .unix_timestamp();
    let mut query = Query::new(&leaf, &pool, at);
    query.purpose = Purpose::ServerAuth;
    if let Some(depth) = tc["max_chain_depth"].as_u64() {
        query.max_intermediates = depth as usize;
    }
    query.server_name = tc["expected_peer_name"]["value"]
        .as_str()
        .map(str::to_string);
    query.required_key_usage = tc["key_usage"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect();
    for crl in tc["crls"].as_array().into_iter().flatten() {
        if let Some(block) = crl
            .as_str()
            .and_then(|p| certkeeper_core::pem::parse(p.as_bytes()).ok())
            .and_then(|b| b.into_iter().next())
        {
            query.crls.push(block.data);
        }
    }
    let report = validate(&query);
    if report.valid {
        outcome(Actual::Success)
    } else {
        outcome(Actual::Failure(
            report.problem.map(|p| p.to_string()).unwrap_or_default(),
        ))
    }
}

/// Counts of each verdict.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Matched the expected result.
    pub pass: usize,
    /// Refused a valid path.
    pub unexpected_failure: usize,
    /// Accepted an invalid path (the worse error for a trust decision).
    pub unexpected_success: usize,
    /// Not run.
    pub skip: usize,
}

impl Summary {
    /// Tallies outcomes.
    pub fn of<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> Self {
        let mut s = Summary::default();
        for o in outcomes {
            match o.verdict() {
                "pass" => s.pass += 1,
                "unexpected_failure" => s.unexpected_failure += 1,
                "unexpected_success" => s.unexpected_success += 1,
                _ => s.skip += 1,
            }
        }
        s
    }
}
