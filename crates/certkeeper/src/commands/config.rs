//! `certkeeper config [KEY [VALUE]]`.

use certkeeper_egress::tunnel::Proxy;
use certkeeper_store::Setting;

use super::Context;
use crate::error::CliError;
use crate::output;

pub fn run(ctx: &Context, key: Option<&str>, value: Option<&str>) -> Result<u8, CliError> {
    let home = ctx.open()?;
    match (key, value) {
        (None, _) => {
            let mut map = serde_json::Map::new();
            for s in Setting::ALL {
                map.insert(s.key().into(), home.setting(s)?.into());
            }
            if ctx.json {
                output::json(&map)?;
            } else {
                let text: String = map
                    .iter()
                    .map(|(k, v)| format!("{k} = {}\n", v.as_str().unwrap_or_default()))
                    .collect();
                output::print_stdout(&text)?;
            }
        }
        (Some(key), None) => {
            let value = home.setting(Setting::from_key(key)?)?;
            if ctx.json {
                output::json(&serde_json::json!({ key: value }))?;
            } else {
                output::print_stdout(&format!("{value}\n"))?;
            }
        }
        (Some(key), Some(value)) => {
            let setting = Setting::from_key(key)?;
            if setting == Setting::EgressProxy && !value.trim().is_empty() {
                Proxy::parse(value.trim()).map_err(|e| CliError::usage(e.to_string()))?;
            }
            home.set_setting(setting, value)?;
            let stored = home.setting(setting)?;
            if ctx.json {
                output::json(&serde_json::json!({ key: stored }))?;
            } else {
                output::print_stdout(&format!("{key} = {stored}\n"))?;
            }
        }
    }
    Ok(0)
}

/// The pseudo-setting under which a proxy user's password is stored.
pub const PROXY_PASSWORD: &str = "egress_proxy_password";

/// `config egress_proxy_password --password-env VAR [--proxy URL]`: seals the
/// password of the user of `--proxy` (or of the `egress_proxy` setting) with the
/// home's master key. It is never read from the command line and never shown.
pub fn proxy_password(
    ctx: &Context,
    value: Option<&str>,
    password_env: Option<String>,
    proxy: Option<&str>,
) -> Result<u8, CliError> {
    if value.is_some() {
        return Err(CliError::usage(format!(
            "{PROXY_PASSWORD}: a password on the command line would be seen by every local user"
        ))
        .with_fix(format!(
            "put it in an environment variable: certkeeper config {PROXY_PASSWORD} --password-env VAR"
        )));
    }
    let Some(var) = password_env else {
        return Err(CliError::usage(format!(
            "{PROXY_PASSWORD}: give the password with --password-env VAR"
        )));
    };
    let home = ctx.open()?;
    let url = match proxy {
        Some(url) => url.trim().to_string(),
        None => home.setting(Setting::EgressProxy)?,
    };
    if url.is_empty() {
        return Err(CliError::usage(format!(
            "{PROXY_PASSWORD}: no proxy: set egress_proxy first, or give --proxy URL"
        )));
    }
    let parsed = Proxy::parse(&url).map_err(|e| CliError::usage(e.to_string()))?;
    let Some(name) = parsed.secret_name() else {
        return Err(CliError::usage(format!(
            "{PROXY_PASSWORD}: the proxy URL {url} names no user (write http://user@{parsed})"
        )));
    };
    let password = zeroize::Zeroizing::new(std::env::var(&var).map_err(|_| {
        CliError::usage(format!(
            "--password-env: environment variable {var} is not set"
        ))
    })?);
    if password.is_empty() {
        return Err(CliError::usage(format!(
            "--password-env: environment variable {var} is empty"
        )));
    }
    home.set_secret(&name, password.as_bytes())?;
    let who = name.trim_start_matches("proxy:");
    if ctx.json {
        output::json(&serde_json::json!({ PROXY_PASSWORD: "stored", "proxy": who }))?;
    } else {
        output::print_stdout(&format!("{PROXY_PASSWORD}: stored sealed for {who}\n"))?;
    }
    Ok(0)
}
