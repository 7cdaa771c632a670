//! `certkeeper path REF`: the certification path as a tree (root first, as the
//! Certification Path tab shows it), each element with its store and status, and
//! when it is not valid, the reason and the command that fixes it.

use certkeeper_core::path::{Problem, Purpose, Status};
use std::path::PathBuf;

use certkeeper_store::{Entry, PathCheck, StoreName, check_candidates};
use serde_json::json;

use super::{Access, Context, granted};
use crate::cli::PurposeArg;
use crate::error::CliError;
use crate::output;

pub fn run(
    ctx: &Context,
    reference: &str,
    at: Option<&str>,
    purpose: PurposeArg,
    socket: Option<PathBuf>,
) -> Result<u8, CliError> {
    let at = match at {
        Some(text) => parse_time(text)?,
        None => output::now(),
    };
    let purpose = purpose.into();
    let (entry, check) = match ctx.access(socket)? {
        Access::Home(home) => {
            let entry = home.resolve(reference)?;
            let check = home.check_path(&entry, at, purpose)?;
            (entry, check)
        }
        Access::Agent(mut client) => {
            let d = granted::describe(&mut client, reference)?;
            let check = check_candidates(&d.entry, &d.candidates, at, purpose)?;
            (d.entry, check)
        }
    };
    let report = &check.report;
    if ctx.json {
        output::json(&path_json(&check))?;
    } else {
        let mut text = format!(
            "Certification path of {} ({}, at {})\n\n",
            entry.subject,
            purpose_name(purpose),
            output::human_time(at)
        );
        text.push_str(&tree(&check));
        text.push('\n');
        match &report.problem {
            None => text.push_str("This certificate is OK.\n"),
            Some(problem) => {
                text.push_str(&format!("NOT VALID: {problem}.\n"));
                if let Some(fix) = fix(problem, &check) {
                    text.push_str(&format!("Fix: {fix}\n"));
                }
            }
        }
        output::print_stdout(&text)?;
    }
    Ok(if report.valid { 0 } else { 1 })
}

/// The pinned `path --json` shape, plus `fix` and the structured `problem`.
pub fn path_json(check: &PathCheck) -> serde_json::Value {
    let report = &check.report;
    let chain: Vec<serde_json::Value> = report
        .chain
        .iter()
        .map(|l| {
            json!({
                "thumbprint": l.thumbprint,
                "subject": l.subject,
                "store": check.store_of(l.thumbprint.as_deref()),
                "status": l.status,
                "not_before": l.not_before.map(output::rfc3339),
                "not_after": l.not_after.map(output::rfc3339),
            })
        })
        .collect();
    json!({
        "valid": report.valid,
        "reason": report.problem.as_ref().map(ToString::to_string),
        "fix": report.problem.as_ref().and_then(|p| fix(p, check)),
        "problem": report.problem,
        "chain": chain,
    })
}

/// One line for `show` and `import`: "valid (root CN=...)" or the reason.
pub fn summary(check: &PathCheck) -> String {
    let report = &check.report;
    match &report.problem {
        None => {
            let root = report
                .chain
                .last()
                .map(|l| l.subject.as_str())
                .unwrap_or("-");
            format!("valid, up to the trusted root {root}")
        }
        Some(problem) => match fix(problem, check) {
            Some(fix) => format!("NOT VALID: {problem}. Fix: {fix}"),
            None => format!("NOT VALID: {problem}."),
        },
    }
}

fn purpose_name(p: Purpose) -> &'static str {
    match p {
        Purpose::ClientAuth => "client-auth",
        Purpose::ServerAuth => "server-auth",
        Purpose::Any => "any purpose",
    }
}

fn tree(check: &PathCheck) -> String {
    let mut out = String::new();
    let width = check
        .report
        .chain
        .iter()
        .enumerate()
        .map(|(i, l)| l.subject.chars().count() + 3 * (check.report.chain.len() - 1 - i))
        .max()
        .unwrap_or(0)
        .max(20);
    for (depth, link) in check.report.chain.iter().rev().enumerate() {
        let indent = if depth == 0 {
            String::new()
        } else {
            format!("{}└─ ", "   ".repeat(depth - 1))
        };
        let name = format!("{indent}{}", link.subject);
        let store = match check.store_of(link.thumbprint.as_deref()) {
            Some(s) => s.as_str().to_string(),
            None => "(not in this home)".to_string(),
        };
        let until = link
            .not_after
            .map(|t| format!("until {}", &output::human_time(t)[..10]))
            .unwrap_or_default();
        let status = match link.status {
            Status::Ok if link.anchor => "ok (trusted root)",
            Status::Ok => "ok",
            Status::Expired => "EXPIRED",
            Status::NotYetValid => "NOT YET VALID",
            Status::UntrustedRoot => "UNTRUSTED ROOT",
            Status::Missing => "MISSING",
            Status::Disallowed => "DISALLOWED",
            Status::BadSignature => "BAD SIGNATURE",
            Status::WrongUsage => "WRONG USAGE",
            Status::NotCa => "NOT A CA",
            Status::Invalid => "INVALID",
        };
        let pad = width.saturating_sub(name.chars().count());
        out.push_str(&format!(
            "  {name}{}  {store:<18} {until:<16} {status}\n",
            " ".repeat(pad)
        ));
    }
    out
}

/// The command or action that fixes `problem`.
pub fn fix(problem: &Problem, check: &PathCheck) -> Option<String> {
    let short = |t: &str| t[..16.min(t.len())].to_string();
    Some(match problem {
        // Plain import places what it gets: a self-signed root in root, another CA in
        // intermediate. The missing issuer may be either, so no --store.
        Problem::MissingIssuer { aia, .. } => match aia.first() {
            Some(url) => format!(
                "download the issuing CA certificate from {url} and run: certkeeper import <file> \
                 (a self-signed root goes to root, another CA to intermediate)"
            ),
            None => "get the issuing CA certificate from the partner and run: certkeeper import <file> \
                     (a self-signed root goes to root, another CA to intermediate)"
                .into(),
        },
        Problem::UntrustedRoot { thumbprint, .. } => {
            let store = check
                .stores
                .get(thumbprint)
                .map(|s| s.as_str())
                .unwrap_or("the home");
            format!(
                "it is in {store}, not in root; if you trust it: certkeeper move {} --to root",
                short(thumbprint)
            )
        }
        Problem::Disallowed { thumbprint, .. } => format!(
            "if it should be trusted after all: certkeeper move {} --to intermediate (or --to root)",
            short(thumbprint)
        ),
        Problem::Expired { thumbprint, .. } => {
            if check.stores.get(thumbprint).is_some_and(|s| *s == StoreName::Personal || *s == StoreName::Other) {
                "ask the partner for a renewed certificate and import it (certkeeper import <file>)".into()
            } else {
                "import the renewed CA certificate: certkeeper import <file>".into()
            }
        }
        Problem::NotYetValid { not_before, .. } => format!(
            "wait until {}, or check this machine's clock",
            output::human_time(*not_before)
        ),
        Problem::WrongUsage { needs, .. } => {
            format!("ask for a certificate whose extended key usage includes {needs}")
        }
        Problem::BadSignature { issuer, .. } => format!(
            "import the right CA certificate named {issuer} (the one in the home has another key)"
        ),
        Problem::UnusableKey { .. } => {
            "ask for a certificate with an RSA (2048 bits or more), ECDSA P-256/P-384/P-521 or Ed25519 key".into()
        }
        Problem::NotCa { .. }
        | Problem::NameMismatch { .. }
        | Problem::KeyUsage { .. }
        | Problem::TooLong { .. }
        | Problem::Rejected { .. } => return None,
    })
}

/// `--at`: RFC 3339 (`2027-01-01T00:00:00Z`) or a date (`2027-01-01`, midnight UTC).
pub fn parse_time(text: &str) -> Result<i64, CliError> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &fmt)
        .map(|d| d.midnight().assume_utc().unix_timestamp())
        .map_err(|_| {
            CliError::usage(format!(
                "--at {text:?}: write a date (2027-01-01) or RFC 3339 time (2027-01-01T12:00:00Z)"
            ))
        })
}

/// Path summary of a personal entry for `import` and `show`, or None when the path
/// cannot be checked (e.g. a damaged entry): those commands still work.
pub fn check_now(home: &certkeeper_store::Home, entry: &Entry) -> Option<PathCheck> {
    home.check_path(entry, output::now(), Purpose::ClientAuth)
        .ok()
}
