//! The certkeeper command: parses the command line and hands each command to its
//! module under `commands/`. Errors become one line on stderr and the exit code of
//! DESIGN.md's table (see `error.rs`); with `--json` also `{"error": {...}}` on stdout.

mod cli;
mod commands;
mod error;
mod output;
mod password;
mod usage;

use std::process::ExitCode;

use crate::error::CliError;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let json = usage::wants_json(&args);
    let cli = match <cli::Cli as clap::Parser>::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => return usage::clap_failure(&e, &args, json),
    };
    match commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            report(&e, json);
            ExitCode::from(e.code)
        }
    }
}

/// One line on stderr; with `--json`, the error document on stdout (unless the
/// command printed its document already).
fn report(e: &CliError, json: bool) {
    // Messages may quote what a file, a partner or etcd said: no control characters
    // reach the terminal.
    eprintln!("certkeeper: {}", output::printable(&e.to_string()));
    if json && !output::json_written() {
        let _ = output::json(&serde_json::json!({ "error": e.json() }));
    }
}
