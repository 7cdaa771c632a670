//! Passwords from an environment variable, a file or standard input; never from the
//! command line, where `ps` would show them.

use std::io::Read;
use std::path::PathBuf;

use certkeeper_core::Password;
use zeroize::Zeroizing;

use crate::error::CliError;

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
        let raw =
            if let Some(path) = &self.password_file {
                Zeroizing::new(std::fs::read(path).map_err(|e| {
                    CliError::usage(format!("--password-file {}: {e}", path.display()))
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
