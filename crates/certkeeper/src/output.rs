//! Printing: JSON documents on stdout, times as RFC 3339, a closed pipe is not an error.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::CliError;

/// Seconds since the epoch as RFC 3339 (UTC).
pub fn rfc3339(ts: i64) -> String {
    OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ts.to_string())
}

/// Seconds since the epoch as `2026-11-29 08:17 UTC`.
pub fn human_time(ts: i64) -> String {
    let fmt =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| ts.to_string())
}

/// Now, in seconds since the epoch.
pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Set once a JSON document is on stdout: `--json` promises exactly one.
static JSON_WRITTEN: AtomicBool = AtomicBool::new(false);

/// Prints one JSON document on stdout.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::usage(format!("JSON output: {e}")))?;
    JSON_WRITTEN.store(true, Ordering::SeqCst);
    print_stdout(&format!("{text}\n"))
}

/// For a document written a piece at a time (`list --json`): from its first byte on,
/// an error does not add another.
pub fn mark_json_written() {
    JSON_WRITTEN.store(true, Ordering::SeqCst);
}

/// Whether a JSON document was printed already.
pub fn json_written() -> bool {
    JSON_WRITTEN.load(Ordering::SeqCst)
}

/// Writes text on stdout; a closed pipe ends quietly.
pub fn print_stdout(text: &str) -> Result<(), CliError> {
    write_stdout(text.as_bytes())
}

/// Writes bytes on stdout; a closed pipe ends quietly.
pub fn write_stdout(bytes: &[u8]) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::usage(format!("writing output: {e}"))),
    }
}

/// Days from `now` until `ts`, rounded down (negative when past).
pub fn days_until(ts: i64, now: i64) -> i64 {
    (ts - now).div_euclid(86_400)
}

/// `text` with control characters (escape sequences a terminal would obey) written
/// as `\u{..}` escapes.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    // Control characters, and the ones that reorder what a terminal shows.
    let hidden = |c: char| c.is_control() || certkeeper_core::reorders_text(c);
    if !text.chars().any(hidden) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if hidden(c) {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}
