//! `certkeeper config [KEY [VALUE]]`.

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
