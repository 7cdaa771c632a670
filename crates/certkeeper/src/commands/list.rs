//! `certkeeper list`: the entries, one line each.

use certkeeper_store::{Entry, StoreName};
use serde_json::{Value, json};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

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
    let header = ["STORE", "THUMBPRINT", "NAME", "KEY", "EXPIRES", "SUBJECT"];
    let rows: Vec<[String; 6]> = entries
        .iter()
        .map(|e| {
            let days = output::days_until(e.not_after, now);
            let expires = if days < 0 {
                "EXPIRED".to_string()
            } else {
                output::human_time(e.not_after)[..10].to_string() + &format!(" ({days}d)")
            };
            [
                e.store.as_str().to_string(),
                e.thumbprint[..16].to_string(),
                truncate(e.name.as_deref().unwrap_or("-"), NAME_WIDTH),
                if e.has_key { "yes" } else { "no" }.to_string(),
                expires,
                e.subject.clone(),
            ]
        })
        .collect();
    // Each column as wide as its widest cell (in terminal columns), so that every
    // row's columns start at the same place whatever the names' lengths and scripts.
    let mut widths = header.map(UnicodeWidthStr::width);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.width());
        }
    }
    let line = |cells: &[&str]| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < cells.len() {
                out.push_str(&" ".repeat(widths[i] - cell.width() + 1));
            }
        }
        out.push('\n');
        out
    };
    let mut text = line(&header);
    for row in &rows {
        text.push_str(&line(&row.each_ref().map(String::as_str)));
    }
    output::print_stdout(&text)?;
    Ok(0)
}

/// Longer friendly names are cut with an ellipsis.
const NAME_WIDTH: usize = 32;

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

/// `s` cut to at most `n` terminal columns, with an ellipsis when cut.
fn truncate(s: &str, n: usize) -> String {
    if s.width() <= n {
        return s.to_string();
    }
    let mut t = String::new();
    for c in s.chars() {
        if t.width() + c.width().unwrap_or(0) + 1 > n {
            break;
        }
        t.push(c);
    }
    t.push('…');
    t
}
