//! `certkeeper list`: the entries, one line each.

use certkeeper_store::{Entry, StoreName};
use serde_json::{Value, json};

use super::Context;
use crate::error::CliError;
use crate::output;

pub fn run(ctx: &Context, store: Option<StoreName>) -> Result<u8, CliError> {
    let home = ctx.open()?;
    let entries = home.list(store)?;
    if ctx.json {
        let rows: Vec<Value> = entries.iter().map(entry_json).collect();
        output::json(&rows)?;
        return Ok(0);
    }
    if entries.is_empty() {
        eprintln!(
            "no certificates{}",
            store.map(|s| format!(" in {s}")).unwrap_or_default()
        );
        return Ok(0);
    }
    let now = output::now();
    let mut text = format!(
        "{:<12} {:<16} {:<20} {:<4} {:<17} {}\n",
        "STORE", "THUMBPRINT", "NAME", "KEY", "EXPIRES", "SUBJECT"
    );
    for e in &entries {
        let days = output::days_until(e.not_after, now);
        let expires = if days < 0 {
            "EXPIRED".to_string()
        } else {
            output::human_time(e.not_after)[..10].to_string() + &format!(" ({days}d)")
        };
        text.push_str(&format!(
            "{:<12} {:<16} {:<20} {:<4} {:<17} {}\n",
            e.store.as_str(),
            &e.thumbprint[..16],
            truncate(e.name.as_deref().unwrap_or("-"), 20),
            if e.has_key { "yes" } else { "no" },
            expires,
            e.subject
        ));
    }
    output::print_stdout(&text)?;
    Ok(0)
}

/// The pinned JSON shape of an entry (DESIGN.md, "Output for scripts").
pub fn entry_json(e: &Entry) -> Value {
    json!({
        "thumbprint": e.thumbprint,
        "sha1": e.sha1,
        "store": e.store,
        "name": e.name,
        "subject": e.subject,
        "issuer": e.issuer,
        "not_before": output::rfc3339(e.not_before),
        "not_after": output::rfc3339(e.not_after),
        "has_key": e.has_key,
        "is_ca": e.is_ca,
    })
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}
