//! The certkeeper command: parses the command line and hands each command to its
//! module under `commands/`. Errors become one line on stderr and the exit code of
//! DESIGN.md's table (see `error.rs`).

mod cli;
mod commands;
mod error;
mod output;
mod password;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("certkeeper: {e}");
            ExitCode::from(e.code)
        }
    }
}
