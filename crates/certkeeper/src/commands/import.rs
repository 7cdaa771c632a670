//! `certkeeper import FILE...`: each file read, checked and written as one
//! transaction; every file reported; exit non-zero if any failed.

use certkeeper_core::{FormatError, read_file};
use certkeeper_store::{Home, ImportOptions, Imported, Renamed, StoreChoice};

use super::Context;
use crate::cli::{ImportArgs, ImportStoreArg};
use crate::error::CliError;
use crate::output;

pub fn run(ctx: &Context, args: &ImportArgs) -> Result<u8, CliError> {
    let (mut home, created) = Home::init(&ctx.home_dir)?;
    if created && !ctx.json {
        eprintln!("created home {}", home.dir().display());
    }
    let password = args.password.read()?;
    let options = ImportOptions {
        store: match args.store {
            ImportStoreArg::Auto => StoreChoice::Auto,
            ImportStoreArg::Personal => StoreChoice::Store(certkeeper_store::StoreName::Personal),
            ImportStoreArg::Root => StoreChoice::Store(certkeeper_store::StoreName::Root),
            ImportStoreArg::Intermediate => {
                StoreChoice::Store(certkeeper_store::StoreName::Intermediate)
            }
            ImportStoreArg::Other => StoreChoice::Store(certkeeper_store::StoreName::Other),
            ImportStoreArg::Disallowed => {
                StoreChoice::Store(certkeeper_store::StoreName::Disallowed)
            }
        },
        name: args.name.clone(),
        no_roots: args.no_roots,
        non_exportable: args.non_exportable,
    };

    let mut imported = Vec::new();
    let mut skipped = Vec::new();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut first_error: Option<CliError> = None;
    let mut text = String::new();
    for file in &args.files {
        let shown = file.display().to_string();
        let result = std::fs::read(file)
            .map_err(|e| CliError::input(io_reason(&e)))
            .and_then(|bytes| match read_file(&bytes, password.as_ref()) {
                // No password option, on a terminal: ask, as openssl does.
                Err(FormatError::PasswordRequired { .. }) if password.is_none() => {
                    match crate::password::prompt(&format!("Password for {shown}: "))? {
                        Some(typed) => read_file(&bytes, Some(&typed)).map_err(CliError::from),
                        None => read_file(&bytes, None).map_err(CliError::from),
                    }
                }
                other => other.map_err(CliError::from),
            })
            .and_then(|contents| {
                // Said whether or not the import then succeeds: they are about the file.
                for w in &contents.warnings {
                    eprintln!("certkeeper: {shown}: warning: {w}");
                    warnings.push(serde_json::json!({"file": shown, "warning": w.to_string()}));
                }
                let summary = format!(
                    "{}, {} certificate{}, {} private key{}",
                    contents.format.name(),
                    contents.certs.len(),
                    if contents.certs.len() == 1 { "" } else { "s" },
                    contents.keys.len(),
                    if contents.keys.len() == 1 { "" } else { "s" },
                );
                home.import(contents, &options)
                    .map(|r| (summary, r))
                    .map_err(CliError::from)
            });
        match result {
            Ok((summary, report)) => {
                text.push_str(&format!("{shown}: {summary}\n"));
                for i in &report.imported {
                    let state = match (i.new, i.key_added, i.has_key) {
                        (true, _, true) => "new, with its private key",
                        (true, _, false) => "new",
                        (false, true, _) => "already present; private key added",
                        (false, false, _) => "already present",
                    };
                    text.push_str(&format!(
                        "  {:<12} {}  ({state})  {}\n",
                        i.store.as_str(),
                        i.subject,
                        &i.thumbprint[..16]
                    ));
                    if let Some(renamed) = &i.renamed {
                        text.push_str(&format!(
                            "               {}\n",
                            rename_line(&home, i, renamed)
                        ));
                    }
                    let mut row = serde_json::to_value(i).unwrap_or_default();
                    row["file"] = shown.clone().into();
                    // Each personal entry this import touched: is its path valid now?
                    if i.store == certkeeper_store::StoreName::Personal
                        && let Ok(Some(entry)) = home.entry(&i.thumbprint)
                        && let Some(check) = super::path::check_now(&home, &entry)
                    {
                        text.push_str(&format!(
                            "               path: {}\n",
                            super::path::summary(&check)
                        ));
                        row["path"] = serde_json::json!({
                            "valid": check.report.valid,
                            "reason": check.report.problem.as_ref().map(ToString::to_string),
                        });
                    }
                    imported.push(row);
                }
                for s in &report.skipped {
                    text.push_str(&format!(
                        "  {:<12} {}  (skipped: {})\n",
                        "-", s.subject, s.reason
                    ));
                    let mut row = serde_json::to_value(s).unwrap_or_default();
                    row["file"] = shown.clone().into();
                    skipped.push(row);
                }
            }
            Err(e) => {
                let e = e.context(&shown);
                eprintln!("certkeeper: {e}");
                errors.push(serde_json::json!({
                    "file": shown, "error": e.message, "code": e.code, "kind": e.kind, "fix": e.fix,
                }));
                first_error.get_or_insert(e);
            }
        }
    }
    if ctx.json {
        let mut document = serde_json::json!({
            "imported": imported,
            "skipped": skipped,
            "warnings": warnings,
            "errors": errors,
        });
        // Scripts check `.error` on every command: here it is the first failure.
        if let Some(e) = &first_error {
            document["error"] = e.json();
        }
        output::json(&document)?;
    } else {
        output::print_stdout(&text)?;
    }
    // Each failure was reported above; the exit code is the first failure's.
    Ok(first_error.map_or(0, |e| e.code))
}

/// "renamed partner -> partner-2026; binding partner-api now uses partner-2026".
fn rename_line(home: &Home, item: &Imported, renamed: &Renamed) -> String {
    let mut line = format!("renamed {} -> {}", renamed.from, renamed.to);
    for b in &renamed.bindings {
        let what = match b.field {
            "cert" => format!("binding {} now uses {}", b.binding, b.to),
            _ => format!("binding {}'s server CA is now {}", b.binding, b.to),
        };
        line.push_str("; ");
        line.push_str(&what);
        if b.to != renamed.to {
            line.push_str(&format!(
                " (the name {} names another certificate)",
                renamed.to
            ));
        }
    }
    if let Ok(Some(entry)) = home.entry(&item.thumbprint)
        && let Some(export_name) = entry.export_name
    {
        line.push_str(&format!("; export name {export_name} unchanged"));
    }
    line
}

/// "cannot read: no such file" and the like, without Rust's "(os error 2)".
pub fn io_reason(e: &std::io::Error) -> String {
    let reason = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        std::io::ErrorKind::IsADirectory => "is a directory".to_string(),
        _ => e.to_string(),
    };
    format!("cannot read: {reason}")
}
