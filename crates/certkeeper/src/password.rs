//! Passwords from an environment variable, a file or standard input; never from the
//! command line, where `ps` would show them. Without any of those, on a terminal,
//! the password is asked for without echo (as openssl does).

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::PathBuf;

use certkeeper_core::Password;
use zeroize::Zeroizing;

use crate::error::{CliError, Kind};

/// The three ways to give a password.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PasswordArgs {
    /// Read the password from this environment variable.
    #[arg(long, value_name = "VAR", group = "password")]
    pub password_env: Option<String>,
    /// Read the password from the first line of this file.
    #[arg(long, value_name = "FILE", group = "password")]
    pub password_file: Option<PathBuf>,
    /// Read the password from standard input (up to the first newline).
    #[arg(long, group = "password")]
    pub password_stdin: bool,
}

impl PasswordArgs {
    /// The password, if one was given.
    pub fn read(&self) -> Result<Option<Password>, CliError> {
        if let Some(var) = &self.password_env {
            let value = std::env::var(var).map_err(|_| {
                CliError::usage(format!(
                    "--password-env: environment variable {var} is not set"
                ))
            })?;
            return Ok(Some(Password::new(value)));
        }
        let raw = if let Some(path) = &self.password_file {
            Zeroizing::new(std::fs::read(path).map_err(|e| {
                CliError::input(format!(
                    "--password-file {}: {}",
                    path.display(),
                    crate::commands::io_reason(&e)
                ))
            })?)
        } else if self.password_stdin {
            let mut buf = Zeroizing::new(Vec::new());
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| CliError::usage(format!("--password-stdin: {e}")))?;
            buf
        } else {
            return Ok(None);
        };
        let text = std::str::from_utf8(&raw)
            .map_err(|_| CliError::usage("the password is not UTF-8 text"))?;
        let line = text.split('\n').next().unwrap_or("");
        let line = line.strip_suffix('\r').unwrap_or(line);
        Ok(Some(Password::new(line.to_string())))
    }
}

/// Asks for a password on the terminal (standard input) without echo. None when
/// standard input is not a terminal: then nothing is read.
pub fn prompt(question: &str) -> Result<Option<Password>, CliError> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    use std::os::fd::AsFd;

    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Ok(None);
    }
    let terminal = |e: nix::Error| CliError::new(Kind::Environment, format!("the terminal: {e}"));
    let saved = tcgetattr(stdin.as_fd()).map_err(terminal)?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    // The Enter key still ends the prompt's line.
    quiet.local_flags.insert(LocalFlags::ECHONL);
    // Echo off before the prompt shows, so that nothing typed after it is echoed.
    tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &quiet).map_err(terminal)?;
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut line = Zeroizing::new(String::new());
    let read = stdin.lock().read_line(&mut line);
    let restored = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &saved);
    let n = read.map_err(|e| CliError::input(format!("reading the password: {e}")))?;
    restored.map_err(terminal)?;
    if n == 0 {
        return Err(CliError::input("no password was typed (end of input)"));
    }
    let end = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(end);
    Ok(Some(Password::new(std::mem::take(&mut *line))))
}

/// Asks twice for a new password (for a file to write) and checks both agree. None
/// when standard input is not a terminal.
pub fn prompt_new(question: &str) -> Result<Option<Password>, CliError> {
    let Some(first) = prompt(question)? else {
        return Ok(None);
    };
    let Some(second) = prompt("Again, to confirm: ")? else {
        return Ok(None);
    };
    if first.as_str() != second.as_str() {
        return Err(CliError::input(
            "the two passwords differ; nothing was written",
        ));
    }
    Ok(Some(first))
}
