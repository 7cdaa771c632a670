//! Egress bindings: a named pairing of an upstream web service with the client
//! certificate to present to it, and optionally the loopback address where the agent
//! relays plain HTTP to it.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::entry::Entry;
use crate::error::StoreError;
use crate::home::Home;

/// One binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    /// Its name.
    pub name: String,
    /// The client certificate, as a REF (resolved at each new connection, so a
    /// renewed certificate is picked up).
    pub cert: String,
    /// The upstream base URL (https).
    pub upstream: String,
    /// Where the agent listens for plain HTTP, if anywhere.
    pub listen: Option<String>,
    /// How the upstream's certificate is verified: `root`, `system` or a REF.
    pub server_ca: String,
    /// When not empty, only these principals (and root) may use the binding, among
    /// those the key's ACL admits (`bind --allow`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// The forward proxy the upstream is reached through (`http://[user@]host:port`),
    /// or none: then the home's `egress_proxy` setting applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// `bind --legacy-tls`: the partner is on an old TLS stack (TLS 1.0/1.1, RSA key
    /// exchange and CBC suites, a certificate naming its host only in its CN), and is
    /// reached with OpenSSL's settings for it. `doctor` warns about it on every run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub legacy_tls: bool,
}

impl Binding {
    /// Checks the binding's fields (not its certificate).
    pub fn validate(&self) -> Result<(), StoreError> {
        let bad = |m: String| Err(StoreError::Invalid(m));
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return bad(format!(
                "binding name {:?}: use letters, digits, '-', '_' and '.'",
                self.name
            ));
        }
        let Some(rest) = self.upstream.strip_prefix("https://") else {
            return bad(format!(
                "upstream {:?} must be an https:// URL",
                self.upstream
            ));
        };
        if rest.is_empty() || rest.starts_with('/') {
            return bad(format!("upstream {:?} has no host", self.upstream));
        }
        if self.server_ca.contains('/') && !self.server_ca.starts_with("subject:") {
            return bad(format!(
                "--server-ca {:?}: a binding names its CA by REF (root, system, or a \
                 certificate of the home), never by a file",
                self.server_ca
            ));
        }
        if let Some(proxy) = &self.proxy {
            check_proxy_url(proxy).map_err(StoreError::Invalid)?;
        }
        if let Some(listen) = &self.listen {
            if let Some(path) = listen.strip_prefix("unix:") {
                if !path.starts_with('/') || path.contains('\0') {
                    return bad(format!(
                        "--listen {listen:?}: write unix: and an absolute path, \
                         e.g. unix:/run/certkeeper/partner.sock"
                    ));
                }
                return Ok(());
            }
            match listen.parse::<SocketAddr>() {
                Ok(addr) if addr.ip().is_loopback() => {}
                Ok(_) => {
                    return bad(format!(
                        "--listen {listen}: only loopback addresses (127.0.0.1, [::1]); a binding \
                         makes the certificate usable by whoever can connect"
                    ));
                }
                Err(_) => {
                    return bad(format!(
                        "--listen {listen:?} is not an address like 127.0.0.1:8443"
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Home {
    /// Every binding, by name.
    pub fn bindings(&self) -> Result<Vec<Binding>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT name, cert_ref, upstream, listen, server_ca, allow, proxy, legacy_tls FROM bindings ORDER BY name",
            )
            .map_err(|e| self.db_err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Binding {
                    name: r.get(0)?,
                    cert: r.get(1)?,
                    upstream: r.get(2)?,
                    listen: r.get(3)?,
                    server_ca: r.get(4)?,
                    allow: r
                        .get::<_, String>(5)?
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .map(str::to_string)
                        .collect(),
                    proxy: r.get(6)?,
                    legacy_tls: r.get(7)?,
                })
            })
            .map_err(|e| self.db_err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.db_err(e))
    }

    /// One binding by name.
    pub fn binding(&self, name: &str) -> Result<Binding, StoreError> {
        self.bindings()?
            .into_iter()
            .find(|b| b.name == name)
            .ok_or_else(|| StoreError::NotFound {
                reference: format!("binding {name}"),
                closest: Vec::new(),
            })
    }

    /// Creates or replaces a binding, after checking that its certificate resolves
    /// to an entry with a private key and that no other binding listens there.
    pub fn bind(&self, binding: &Binding) -> Result<(), StoreError> {
        binding.validate()?;
        for p in &binding.allow {
            p.parse::<crate::principal::Principal>()?.validate()?;
        }
        let entry = self.resolve_current(&binding.cert, now())?;
        if !entry.has_key {
            return Err(StoreError::NoKey {
                subject: entry.subject,
            });
        }
        if !matches!(binding.server_ca.as_str(), "root" | "system") {
            self.resolve(&binding.server_ca)?;
        }
        if let Some(listen) = &binding.listen {
            let taken: Option<String> = self
                .conn
                .query_row(
                    "SELECT name FROM bindings WHERE listen = ?1 AND name != ?2",
                    params![listen, binding.name],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| self.db_err(e))?;
            if let Some(other) = taken {
                return Err(StoreError::Invalid(format!(
                    "binding {other} already listens on {listen}"
                )));
            }
        }
        self.conn
            .execute(
                "INSERT INTO bindings(name, cert_ref, upstream, listen, server_ca, created_at, allow, proxy, legacy_tls)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT(name) DO UPDATE SET cert_ref = excluded.cert_ref, upstream = excluded.upstream,
                   listen = excluded.listen, server_ca = excluded.server_ca, allow = excluded.allow,
                   proxy = excluded.proxy, legacy_tls = excluded.legacy_tls",
                params![binding.name, binding.cert, binding.upstream, binding.listen, binding.server_ca, now(), binding.allow.join(","), binding.proxy, binding.legacy_tls],
            )
            .map_err(|e| self.db_err(e))?;
        Ok(())
    }

    /// Deletes a binding.
    pub fn unbind(&self, name: &str) -> Result<(), StoreError> {
        let n = self
            .conn
            .execute("DELETE FROM bindings WHERE name = ?1", [name])
            .map_err(|e| self.db_err(e))?;
        if n == 0 {
            return Err(StoreError::NotFound {
                reference: format!("binding {name}"),
                closest: Vec::new(),
            });
        }
        Ok(())
    }

    /// Resolves a REF as a binding uses it: where it matches several entries that
    /// have a private key (a renewed certificate imported under the same name), the
    /// one valid at `at` with the latest expiry wins, and among equal expiries the one
    /// imported last.
    pub fn resolve_current(&self, reference: &str, at: i64) -> Result<Entry, StoreError> {
        match self.resolve(reference) {
            Err(StoreError::Ambiguous { candidates, .. }) => {
                let usable: Vec<String> = self
                    .matching(reference)?
                    .into_iter()
                    .filter(|e| e.has_key && e.not_before <= at && at <= e.not_after)
                    .map(|e| e.thumbprint)
                    .collect();
                let mut best: Option<(i64, i64, i64, String)> = None;
                for thumbprint in usable {
                    let key: (i64, i64, i64) = self
                        .conn
                        .query_row(
                            "SELECT not_after, not_before, rowid FROM entries WHERE thumbprint = ?1",
                            [&thumbprint],
                            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                        )
                        .map_err(|e| self.db_err(e))?;
                    if best
                        .as_ref()
                        .is_none_or(|b| (key.0, key.1, key.2) > (b.0, b.1, b.2))
                    {
                        best = Some((key.0, key.1, key.2, thumbprint));
                    }
                }
                match best {
                    Some((.., thumbprint)) => {
                        self.entry(&thumbprint)?.ok_or(StoreError::NotFound {
                            reference: reference.into(),
                            closest: Vec::new(),
                        })
                    }
                    None => Err(StoreError::Ambiguous {
                        reference: reference.into(),
                        candidates,
                    }),
                }
            }
            other => other,
        }
    }
}

/// The store's check of a proxy URL (the egress crate reads it fully): http:// or
/// no scheme, and never a password, which would be kept in clear.
pub fn check_proxy_url(url: &str) -> Result<(), String> {
    let rest = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some(_) => return Err(format!("proxy {url:?}: only http:// proxies are supported")),
        None => url,
    };
    if rest.is_empty() || rest.starts_with(['/', '@', ':']) {
        return Err(format!("proxy {url:?} has no host"));
    }
    if rest
        .rsplit_once('@')
        .is_some_and(|(user, _)| user.contains(':'))
    {
        return Err(
            "a proxy URL never holds a password: give the user only (http://user@host:port) \
             and store the password with `certkeeper config egress_proxy_password --password-env VAR`"
                .to_string(),
        );
    }
    Ok(())
}

/// A secret unsealed from the home.
pub struct Secret {
    /// Its bytes, zeroized on drop.
    pub value: zeroize::Zeroizing<Vec<u8>>,
    /// Changes whenever it is set again (the sealing's random nonce, not secret).
    pub stamp: String,
}

/// The name a proxy's password is kept under: "user@host:port" of its URL.
pub fn proxy_secret_name(user: &str, host_port: &str) -> String {
    format!("proxy:{user}@{host_port}")
}

impl Home {
    /// Seals `password` under the master key as the secret `name` (see
    /// [`proxy_secret_name`]), replacing any before. Owner only.
    pub fn set_secret(&self, name: &str, password: &[u8]) -> Result<(), StoreError> {
        let sealed = self.master_key()?.seal(name, password)?;
        self.conn
            .execute(
                "INSERT INTO secrets(name, sealed) VALUES (?1, ?2)
                 ON CONFLICT(name) DO UPDATE SET sealed = excluded.sealed",
                params![name, sealed],
            )
            .map_err(|e| self.db_err(e))?;
        Ok(())
    }

    /// Unseals the secret `name`, if there is one (in memory that zeroizes), with a
    /// stamp that changes whenever it is set again (its random nonce, which is not
    /// secret), so that a relay built with it knows when to rebuild.
    pub fn secret(&self, name: &str) -> Result<Option<Secret>, StoreError> {
        let sealed: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT sealed FROM secrets WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.db_err(e))?;
        match sealed {
            Some(sealed) => {
                let stamp = sealed.iter().take(16).map(|b| format!("{b:02x}")).collect();
                Ok(Some(Secret {
                    value: self.master_key()?.unseal(name, &sealed)?,
                    stamp,
                }))
            }
            None => Ok(None),
        }
    }
}

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use certkeeper_testkit::{Spec, TestCert};

    use crate::{Home, ImportOptions};

    #[test]
    fn a_renewal_with_the_same_expiry_wins_by_import_order() {
        let dir = tempfile::tempdir().unwrap();
        let (mut home, _) = Home::init(&dir.path().join("home")).unwrap();
        let ca = TestCert::self_signed(&Spec::ca("CA"));
        let now = 1_900_000_000;
        let mut last = String::new();
        for _ in 0..6 {
            // Certificates made in the same second share their validity.
            let leaf = ca.issue(&Spec::client("same.example"));
            let pem = format!("{}{}", leaf.pem(), leaf.key_pem());
            let contents = certkeeper_core::read_file(pem.as_bytes(), None).unwrap();
            let options = ImportOptions {
                name: Some("partner".into()),
                ..ImportOptions::default()
            };
            let report = home.import(contents, &options).unwrap();
            last = report.imported[0].thumbprint.clone();
            let chosen = home
                .resolve_current(
                    "partner",
                    now.min(home.entry(&last).unwrap().unwrap().not_after - 1),
                )
                .unwrap();
            assert_eq!(chosen.thumbprint, last);
        }
        assert!(!last.is_empty());
    }
}
