//! `certkeeper show REF`: what the Windows certificate dialog shows on its General
//! and Details tabs, plus the key, its permissions and the export name.

use std::path::PathBuf;

use certkeeper_core::path::Purpose;
use certkeeper_core::{Certificate, KeyAlgorithm};
use certkeeper_store::check_candidates;

use super::list::entry_json;
use super::{Access, Context, granted};
use crate::error::CliError;
use crate::output;

pub fn run(ctx: &Context, reference: &str, socket: Option<PathBuf>) -> Result<u8, CliError> {
    // The ACL is the administrator's business: a granted non-owner learns only that
    // it may use the key (acl is None).
    let (entry, acl, path_check) = match ctx.access(socket)? {
        Access::Home(home) => {
            let entry = home.resolve(reference)?;
            let acl: Vec<String> = home
                .acl(&entry.thumbprint)?
                .iter()
                .map(ToString::to_string)
                .collect();
            let path_check = super::path::check_now(&home, &entry);
            (entry, Some(acl), path_check)
        }
        Access::Agent(mut client) => {
            let d = granted::describe(&mut client, reference)?;
            let path_check =
                check_candidates(&d.entry, &d.candidates, output::now(), Purpose::ClientAuth).ok();
            (d.entry, None, path_check)
        }
    };
    let cert = Certificate::from_der(&entry.der)?;
    let unusable = entry
        .key_algorithm
        .as_deref()
        .and_then(KeyAlgorithm::from_name)
        .and_then(KeyAlgorithm::tls_refusal);

    if ctx.json {
        let mut v = entry_json(&entry);
        v["serial"] = cert.serial.clone().into();
        v["san"] = cert.san.clone().into();
        v["key_usage"] = cert.key_usage.clone().into();
        v["ext_key_usage"] = cert.ext_key_usage.clone().into();
        v["acl"] = acl.into();
        v["export_name"] = entry.export_name.clone().into();
        v["key_type"] = cert.key_type.clone().into();
        v["signature_algorithm"] = cert.signature_algorithm.clone().into();
        v["version"] = cert.version.into();
        v["authority_key_id"] = cert.authority_key_id.clone().into();
        v["subject_key_id"] = cert.subject_key_id.clone().into();
        v["ca_issuers"] = cert.ca_issuers.clone().into();
        v["ocsp"] = cert.ocsp.clone().into();
        v["crl_urls"] = cert.crl_urls.clone().into();
        v["self_signed"] = cert.self_signed.into();
        v["path_len"] = cert.path_len.into();
        v["exportable"] = (entry.has_key && entry.exportable).into();
        v["key_algorithm"] = entry.key_algorithm.clone().into();
        v["key_signs_tls"] = (entry.has_key && unusable.is_none()).into();
        v["key_problem"] = unusable.filter(|_| entry.has_key).into();
        v["path"] = path_check.as_ref().map(super::path::path_json).into();
        output::json(&v)?;
        return Ok(0);
    }

    let now = output::now();
    let mut t = String::new();
    // Certificates and names come from partners (and, for a non-owner, from the
    // agent): control characters are shown, never sent to the terminal.
    let line = |t: &mut String, k: &str, v: &str| {
        t.push_str(&format!("  {k:<26}{}\n", output::printable(v)))
    };
    let title = format!("Certificate {}\n", output::printable(&cert.common_name()));
    // The first thing to fix comes first.
    let key_line = if let (true, Some(why)) = (entry.has_key, unusable) {
        format!(
            "You have a private key that corresponds to this certificate, but {why}: \
             ask for a certificate with an RSA (2048 bits or more), ECDSA P-256/P-384/P-521 or Ed25519 key."
        )
    } else if entry.has_key {
        "You have a private key that corresponds to this certificate.".to_string()
    } else if cert.is_ca {
        "No private key (a CA certificate does not need one here).".to_string()
    } else {
        "NO private key corresponds to this certificate: import the .pfx or key file \
         that holds it (certkeeper import FILE)."
            .to_string()
    };
    let days = output::days_until(entry.not_after, now);
    let validity = if now < entry.not_before {
        format!(
            "not yet valid (starts {})",
            output::human_time(entry.not_before)
        )
    } else if days < 0 {
        format!("EXPIRED {} days ago", -days)
    } else {
        format!("valid, {days} days left")
    };

    let mut head = title;
    head.push_str(&format!("  {key_line}\n"));
    let issuer_cn = issuer_common_name(&cert);
    line(&mut t, "Issued to:", &cert.common_name());
    line(&mut t, "Issued by:", &issuer_cn);
    line(
        &mut t,
        "Valid from:",
        &format!(
            "{} to {}",
            output::human_time(entry.not_before),
            output::human_time(entry.not_after)
        ),
    );
    line(&mut t, "Status:", &validity);
    if let Some(check) = &path_check {
        line(&mut t, "Certification path:", &super::path::summary(check));
    }
    line(&mut t, "Store:", entry.store.as_str());
    line(
        &mut t,
        "Friendly name:",
        entry.name.as_deref().unwrap_or("-"),
    );
    line(
        &mut t,
        "Export name:",
        entry.export_name.as_deref().unwrap_or("-"),
    );
    if entry.has_key {
        line(
            &mut t,
            "Key exportable:",
            if entry.exportable { "yes" } else { "no" },
        );
        line(
            &mut t,
            "Key permissions:",
            &match &acl {
                None => "this user may use it (through the agent)".into(),
                Some(acl) if acl.is_empty() => "(owner and root only)".into(),
                Some(acl) => acl.join(", "),
            },
        );
    }
    t.push('\n');
    line(&mut t, "Version:", &format!("V{}", cert.version));
    line(&mut t, "Serial number:", &cert.serial);
    line(&mut t, "Signature algorithm:", &cert.signature_algorithm);
    line(&mut t, "Issuer:", &cert.issuer);
    line(&mut t, "Subject:", &cert.subject);
    line(&mut t, "Public key:", &cert.key_type);
    let join = |v: &[String]| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.join(", ")
        }
    };
    line(&mut t, "Subject alternative name:", &join(&cert.san));
    line(&mut t, "Key usage:", &join(&cert.key_usage));
    line(&mut t, "Enhanced key usage:", &join(&cert.ext_key_usage));
    line(
        &mut t,
        "Basic constraints:",
        &if cert.is_ca {
            format!(
                "CA{}",
                cert.path_len
                    .map(|n| format!(", path length {n}"))
                    .unwrap_or_default()
            )
        } else {
            "end entity".into()
        },
    );
    line(
        &mut t,
        "Authority key identifier:",
        cert.authority_key_id.as_deref().unwrap_or("-"),
    );
    line(
        &mut t,
        "Subject key identifier:",
        cert.subject_key_id.as_deref().unwrap_or("-"),
    );
    line(&mut t, "CA issuers (AIA):", &join(&cert.ca_issuers));
    line(&mut t, "OCSP (AIA):", &join(&cert.ocsp));
    line(&mut t, "CRL distribution points:", &join(&cert.crl_urls));
    line(&mut t, "Thumbprint (SHA-256):", &entry.thumbprint);
    line(&mut t, "Thumbprint (SHA-1):", &entry.sha1);
    head.push_str(&t);
    output::print_stdout(&head)?;
    Ok(0)
}

fn issuer_common_name(cert: &Certificate) -> String {
    cert.issuer
        .split(", ")
        .find_map(|part| part.strip_prefix("CN="))
        .map(str::to_string)
        .unwrap_or_else(|| cert.issuer.clone())
}
