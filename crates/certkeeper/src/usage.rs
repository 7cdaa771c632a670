//! Command-line errors (clap's) as certkeeper errors: the usage class and exit code,
//! `{"error": ...}` with `--json`, and for `request` the certkeeper equivalent of the
//! curl options people type from habit.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};

use crate::error::CliError;
use crate::output;

/// `--json` is on the command line (before a `--`).
pub fn wants_json(args: &[OsString]) -> bool {
    args.iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json")
}

/// Prints clap's error or help as text, or as one JSON document with `--json`, and
/// returns the exit code (0 for help and version, 2 for usage errors).
pub fn clap_failure(e: &clap::Error, args: &[OsString], json: bool) -> ExitCode {
    let code = u8::try_from(e.exit_code()).unwrap_or(crate::error::USAGE);
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        if json {
            let key = if e.kind() == ErrorKind::DisplayHelp {
                "help"
            } else {
                "version"
            };
            let text = e.render().to_string();
            let _ = output::json(&serde_json::json!({ key: text.trim_end() }));
        } else {
            let _ = e.print();
        }
        return ExitCode::from(code);
    }
    let request = args.iter().any(|a| a == "request");
    let hint = if request { curl_hint(e) } else { None };
    let error = usage_error(e, hint.clone());
    if hint.is_some() {
        eprintln!("certkeeper: {error}");
    } else {
        let _ = e.print();
    }
    if json {
        let _ = output::json(&serde_json::json!({ "error": error.json() }));
    }
    ExitCode::from(code)
}

/// The usage error: clap's first line, and its tip (or a curl equivalent) as the fix.
fn usage_error(e: &clap::Error, hint: Option<String>) -> CliError {
    let rendered = e.render().to_string();
    let message = rendered
        .lines()
        .next()
        .unwrap_or("invalid command line")
        .trim_start_matches("error: ")
        .to_string();
    let tip = rendered
        .lines()
        .find_map(|l| l.trim().strip_prefix("tip: "))
        .map(str::to_string);
    let error = CliError::usage(message);
    match hint.or(tip) {
        Some(fix) => error.with_fix(fix),
        None => error.with_fix("see: certkeeper help (or: certkeeper COMMAND --help)"),
    }
}

/// For `request`: what certkeeper does instead of a curl option it does not have.
fn curl_hint(e: &clap::Error) -> Option<String> {
    if e.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let flag = arg.split('=').next().unwrap_or(arg);
    let hint = match flag {
        "--key" | "--key-type" | "--pass" => {
            "certkeeper keeps the key with its certificate: give --cert REF (or the certificate's file) and the key is used through the agent"
        }
        "-E" | "--cert-type" => "use --cert REF (a name, thumbprint or the certificate's file)",
        "-u" | "--user" => {
            "basic authentication is not built in: give the header, -H 'Authorization: Basic BASE64(user:password)'"
        }
        "--data-binary" | "--data-raw" | "--data-ascii" => {
            "use -d TEXT or -d @FILE (sent byte for byte)"
        }
        "--data-urlencode" | "-F" | "--form" => {
            "not supported: encode the body yourself and give it with -d TEXT or -d @FILE"
        }
        "-L" | "--location" => {
            "redirects are not followed: call the URL of the Location header (shown with -i)"
        }
        "--compressed" => {
            "not supported: the body is written as the server sends it; ask for an encoding with -H 'Accept-Encoding: ...' and decode it yourself"
        }
        "-I" | "--head" => "use -X HEAD -i",
        "-O" | "--remote-name" => "use -o FILE",
        "--capath" => "use --cacert FILE, --server-ca system or --server-ca REF",
        "-S" | "--show-error" => "errors are always shown on stderr, also with -s",
        "--resolve" | "--connect-to" => "not supported",
        "-U" | "--proxy-user" => {
            "give the user in the proxy URL (--proxy http://user@host:port) and the password with --proxy-password-env VAR"
        }
        _ => return None,
    };
    Some(format!("{flag}: {hint}"))
}
