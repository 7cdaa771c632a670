//! `certkeeper export REF`: the public certificate (DER by default), PEM, a PKCS#7
//! bundle, or a .pfx with the private key; or `--as NAME` into the export directory.

use std::io::IsTerminal;

use certkeeper_core::{Certificate, pkcs7, pkcs12};
use certkeeper_store::export::Previous;

use super::Context;
use crate::cli::{ExportArgs, ExportFormat};
use crate::error::{CliError, Kind};
use crate::output;

pub fn run(ctx: &Context, args: &ExportArgs) -> Result<u8, CliError> {
    let mut home = ctx.open()?;
    let entry = home.resolve(&args.reference)?;

    if let Some(name) = &args.as_name {
        if args.format != ExportFormat::Der || args.chain {
            return Err(CliError::usage(
                "--as writes the DER certificate alone: drop --format and --chain",
            ));
        }
        let exported = home.export_as(
            &entry,
            name,
            if args.force {
                certkeeper_store::export::Replace::Anything
            } else {
                certkeeper_store::export::Replace::Nothing
            },
        )?;
        let path = &exported.path;
        let (state, replaced) = match &exported.before {
            Previous::Nothing => ("written", None),
            Previous::Same => ("unchanged", None),
            Previous::SameReencoded => ("rewritten", None),
            Previous::Replaced(what) => ("replaced", Some(what.as_str())),
        };
        if ctx.json {
            output::json(&serde_json::json!({
                "thumbprint": entry.thumbprint, "export_name": name, "path": path,
                "file": state, "replaced": replaced,
            }))?;
        } else {
            let text = match &exported.before {
                Previous::Nothing => format!("exported {} as {}\n", entry.subject, path.display()),
                Previous::Same => format!(
                    "{} already holds {}; nothing to write\n",
                    path.display(),
                    entry.subject
                ),
                Previous::SameReencoded => format!(
                    "exported {} as {} (it held the same certificate as PEM; now DER)\n",
                    entry.subject,
                    path.display()
                ),
                Previous::Replaced(what) => format!(
                    "exported {} as {}; replaced {what}\n",
                    entry.subject,
                    path.display()
                ),
            };
            output::print_stdout(&text)?;
        }
        return Ok(0);
    }

    let chain = if args.chain {
        home.path_issuers(&entry, output::now(), true)?
    } else {
        Vec::new()
    };
    let mut certs = vec![entry.der.clone()];
    certs.extend(chain.iter().map(|e| e.der.clone()));

    let (bytes, mode): (Vec<u8>, u32) = match args.format {
        ExportFormat::Der => {
            if args.chain {
                return Err(CliError::usage(
                    "a DER file holds one certificate: use --format pem, p7b or pfx with --chain",
                ));
            }
            (entry.der.clone(), 0o644)
        }
        ExportFormat::Pem => (
            certs
                .iter()
                .map(|d| certkeeper_core::pem::encode("CERTIFICATE", d))
                .collect::<String>()
                .into_bytes(),
            0o644,
        ),
        ExportFormat::P7b => (
            pkcs7::encode_certificates(certs.iter().map(Vec::as_slice)),
            0o644,
        ),
        ExportFormat::Pfx => {
            if !entry.has_key {
                return Err(CliError::usage(format!(
                    "{} has no private key to put in a .pfx (export it as der or pem)",
                    entry.subject
                )));
            }
            if !entry.exportable {
                return Err(CliError::new(
                    Kind::Denied,
                    format!(
                        "the private key of {} is marked non-exportable; it never leaves this home",
                        entry.subject
                    ),
                ));
            }
            let password = match args.password.read()? {
                Some(password) => password,
                None => crate::password::prompt_new("Password for the .pfx: ")?.ok_or_else(|| {
                    CliError::usage("a .pfx needs a password").with_fix(
                        "give --password-env, --password-file or --password-stdin (or run on a terminal to be asked)",
                    )
                })?,
            };
            let key = home.private_key(&entry)?;
            let parsed: Vec<Certificate> = certs
                .iter()
                .map(|d| Certificate::from_der(d))
                .collect::<Result<_, _>>()?;
            let refs: Vec<&Certificate> = parsed.iter().collect();
            let protection = if args.legacy {
                pkcs12::Protection::Legacy
            } else {
                pkcs12::Protection::Modern
            };
            let name = entry
                .name
                .clone()
                .unwrap_or_else(|| parsed[0].common_name());
            let bytes = pkcs12::write(&key, &refs, &name, password.as_str(), protection)?;
            (bytes, 0o600)
        }
    };

    match &args.out {
        Some(path) => {
            certkeeper_store::fs::write_atomic(path, &bytes, mode)?;
            if ctx.json {
                output::json(&serde_json::json!({
                    "thumbprint": entry.thumbprint, "path": path, "certificates": certs.len(),
                    "format": format!("{:?}", args.format).to_lowercase(),
                }))?;
            } else {
                eprintln!(
                    "wrote {} ({} certificate{}{}) to {}",
                    entry.subject,
                    certs.len(),
                    if certs.len() == 1 { "" } else { "s" },
                    if args.format == ExportFormat::Pfx {
                        " and the private key"
                    } else {
                        ""
                    },
                    path.display()
                );
            }
        }
        None if ctx.json => {
            use base64::Engine as _;
            let (encoding, data) = match args.format {
                ExportFormat::Pem => ("pem", String::from_utf8_lossy(&bytes).into_owned()),
                _ => (
                    "base64",
                    base64::engine::general_purpose::STANDARD.encode(&bytes),
                ),
            };
            output::json(&serde_json::json!({
                "thumbprint": entry.thumbprint, "certificates": certs.len(),
                "format": format!("{:?}", args.format).to_lowercase(),
                "encoding": encoding, "data": data,
            }))?;
        }
        None => {
            let binary = args.format != ExportFormat::Pem;
            if binary && std::io::stdout().is_terminal() {
                return Err(CliError::usage(
                    "refusing to write binary output to a terminal: give --out PATH or use --format pem",
                ));
            }
            output::write_stdout(&bytes)?;
        }
    }
    Ok(0)
}
