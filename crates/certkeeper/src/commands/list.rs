//! `certkeeper list`: the entries, one line each.

use certkeeper_store::{Entry, ListFilter};
use serde_json::{Value, json};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::Context;
use crate::error::CliError;
use crate::output;

pub fn run(ctx: &Context, filter: &ListFilter) -> Result<u8, CliError> {
    let home = ctx.open()?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut count = 0usize;
    if ctx.json {
        // One JSON array, written a row at a time.
        output::mark_json_written();
        let mut write = |text: &str| write_all(&mut out, text);
        write("[")?;
        home.each_entry(filter, |e| {
            let row = serde_json::to_string_pretty(&entry_json(&e))
                .map_err(|e| certkeeper_store::StoreError::Invalid(e.to_string()))?;
            let sep = if count == 0 { "\n  " } else { ",\n  " };
            count += 1;
            write(&format!("{sep}{}", row.replace('\n', "\n  ")))
                .map_err(|e| certkeeper_store::StoreError::Invalid(e.message))
        })?;
        write(if count == 0 { "]\n" } else { "\n]\n" })?;
        return flush(&mut out);
    }
    // Each column as wide as its widest cell (in terminal columns), so that every
    // row's columns start at the same place whatever the names' lengths and scripts:
    // a first pass measures, a second prints (no row is kept).
    let now = output::now();
    let header = ["STORE", "THUMBPRINT", "NAME", "KEY", "EXPIRES", "SUBJECT"];
    let mut widths = header.map(UnicodeWidthStr::width);
    home.each_entry(filter, |e| {
        for (w, cell) in widths.iter_mut().zip(cells(&e, now)) {
            *w = (*w).max(cell.width());
        }
        count += 1;
        Ok(())
    })?;
    if count == 0 {
        eprintln!(
            "no certificates{}",
            filter.store.map(|s| format!(" in {s}")).unwrap_or_default()
        );
        return Ok(0);
    }
    let line = |cells: &[&str]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            text.push_str(cell);
            if i + 1 < cells.len() {
                text.push_str(&" ".repeat(widths[i].saturating_sub(cell.width()) + 1));
            }
        }
        text.push('\n');
        text
    };
    write_all(&mut out, &line(&header))?;
    home.each_entry(filter, |e| {
        let row = cells(&e, now);
        write_all(&mut out, &line(&row.each_ref().map(String::as_str)))
            .map_err(|e| certkeeper_store::StoreError::Invalid(e.message))
    })?;
    flush(&mut out)
}

/// A row's cells.
fn cells(e: &Entry, now: i64) -> [String; 6] {
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
}

/// Writes to stdout; a closed pipe (`list | head`) ends quietly.
fn write_all(out: &mut impl std::io::Write, text: &str) -> Result<(), CliError> {
    match out.write_all(text.as_bytes()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(CliError::usage(format!("cannot write the list: {e}"))),
    }
}

fn flush(out: &mut impl std::io::Write) -> Result<u8, CliError> {
    match out.flush() {
        Ok(()) => Ok(0),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(CliError::usage(format!("cannot write the list: {e}"))),
    }
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
