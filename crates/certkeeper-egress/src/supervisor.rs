//! Runs the bindings' relays inside the agent: starts a listener for each binding
//! with `--listen`, and follows changes to the home (a new binding, an edit, a
//! removal, new trusted roots) within a second, without a restart. The client
//! certificate is resolved at each new upstream connection through the agent, so a
//! renewed certificate is used as soon as it is imported.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use certkeeper_agent::server::Agent;
use certkeeper_store::{Binding, Setting};
use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;
use tokio::sync::watch;

use crate::EgressError;
use crate::app::{Gate, listen as bind_listener};
use crate::pool::OpenSslSide;
use crate::pool::{CLIENT_TIMEOUT, Current, RESPONSE_TIMEOUT, Timeouts, Upstream};
use crate::proxy::serve;
use crate::tls::{AcceptedIssuers, ServerTrust, client_config};
use crate::tls_openssl::{Flavour, OpenSslClient};
use crate::tunnel::{NoProxy, Proxy, Route};

/// The client certificate of a binding, resolved through the agent at each handshake.
pub struct BindingCert {
    agent: Arc<Agent>,
    reference: String,
    binding: String,
    /// What the partner's last request for the certificate said, for its refusals.
    accepted: Arc<AcceptedIssuers>,
}

impl fmt::Debug for BindingCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BindingCert")
            .field("reference", &self.reference)
            .finish()
    }
}

impl ResolvesClientCert for BindingCert {
    fn resolve(&self, hints: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        crate::tls::asked_now();
        match self.agent.certified_key(&self.reference) {
            Ok((key, _)) => {
                self.accepted.record(hints, &key);
                Some(key)
            }
            Err(e) => {
                eprintln!(
                    "certkeeper egress {}: no client certificate: {e}",
                    self.binding
                );
                None
            }
        }
    }

    fn has_certs(&self) -> bool {
        true
    }
}

struct Running {
    listen: String,
    identity: String,
    current: Current,
    stop: watch::Sender<bool>,
}

/// Serves every binding with a listen address until `shutdown` turns true.
pub async fn run(agent: Arc<Agent>, mut shutdown: watch::Receiver<bool>) {
    let mut running: HashMap<String, Running> = HashMap::new();
    // Bindings whose address was taken (by another process, perhaps another user's):
    // tried again every few seconds, said once.
    let mut unbound: HashMap<String, String> = HashMap::new();
    let mut retry_at: Option<tokio::time::Instant> = None;
    let mut seen_version = i64::MIN;
    loop {
        let version = agent.data_version();
        let retry = retry_at.is_some_and(|at| tokio::time::Instant::now() >= at);
        if version != seen_version || retry {
            seen_version = version;
            reconcile(&agent, &mut running, &mut unbound).await;
            retry_at =
                (!unbound.is_empty()).then(|| tokio::time::Instant::now() + Duration::from_secs(5));
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    break;
                }
            }
        }
    }
    for r in running.values() {
        let _ = r.stop.send(true);
    }
}

/// What a binding's relay is built from: the binding, the trust anchors, the
/// certificate in use and the home's `upstream_timeout` and `client_timeout`. A renewal or a new root
/// changes it, and the pool is rebuilt so that every following request goes out with
/// the new certificate.
fn identity(agent: &Arc<Agent>, binding: &Binding) -> Result<(Settled, String), String> {
    let (trust, timeout, (route, stamp)) = agent.with_home(|home| {
        let trust =
            ServerTrust::named(Some(home), &binding.server_ca).map_err(|e| e.to_string())?;
        let seconds = |setting, default| {
            home.setting(setting)
                .map(|v| v.parse().map_or(default, Duration::from_secs))
                .map_err(|e| e.to_string())
        };
        let timeout = Timeouts {
            response: seconds(Setting::UpstreamTimeout, RESPONSE_TIMEOUT)?,
            client: seconds(Setting::ClientTimeout, CLIENT_TIMEOUT)?,
        };
        let route = route(home, binding).map_err(|e| e.to_string())?;
        Ok::<_, String>((trust, timeout, route))
    })?;
    let thumbprint = agent.certified_key(&binding.cert).map(|(_, t)| t)?;
    // The route's Debug never shows the password; the stamp changes with it.
    let identity = format!(
        "{binding:?}{thumbprint}{:?}{timeout:?}{route:?}{stamp}",
        trust.identity()
    );
    Ok((
        Settled {
            trust,
            timeout,
            route,
        },
        identity,
    ))
}

/// How a binding's relay reaches its upstream (see [`route`]), for `doctor --online`.
pub fn binding_route(
    home: &certkeeper_store::Home,
    binding: &Binding,
) -> Result<Route, EgressError> {
    route(home, binding).map(|(route, _)| route)
}

/// How a binding reaches its upstream: through its own `--proxy`, else the home's
/// `egress_proxy` except the hosts `egress_no_proxy` lists, else directly; with the
/// proxy user's password unsealed from the home. Also a stamp that changes when the
/// password is set again.
fn route(home: &certkeeper_store::Home, binding: &Binding) -> Result<(Route, String), EgressError> {
    let own = binding.proxy.as_deref().filter(|p| !p.trim().is_empty());
    let (url, no_proxy) = match own {
        Some(url) => (url.to_string(), NoProxy::default()),
        None => (
            home.setting(Setting::EgressProxy)
                .map_err(|e| EgressError::Config(e.to_string()))?,
            NoProxy::parse(
                &home
                    .setting(Setting::EgressNoProxy)
                    .map_err(|e| EgressError::Config(e.to_string()))?,
            ),
        ),
    };
    if url.trim().is_empty() {
        return Ok((Route::default(), String::new()));
    }
    let mut proxy = Proxy::parse(url.trim())?;
    let mut stamp = String::new();
    if let Some(name) = proxy.secret_name() {
        let secret = home
            .secret(&name)
            .map_err(|e| EgressError::Config(e.to_string()))?;
        if let Some(secret) = secret {
            let text = std::str::from_utf8(&secret.value)
                .map_err(|_| EgressError::Config(format!("{name}: the password is not UTF-8")))?;
            proxy = proxy.with_password(zeroize::Zeroizing::new(text.to_string()));
            stamp.clone_from(&secret.stamp);
        }
    }
    Ok((
        Route {
            proxy: Some(Arc::new(proxy)),
            no_proxy,
        },
        stamp,
    ))
}

/// What a binding's relay is built from, besides the binding itself.
struct Settled {
    trust: ServerTrust,
    timeout: Timeouts,
    route: Route,
}

fn upstream_for(
    agent: &Arc<Agent>,
    binding: &Binding,
    settled: &Settled,
) -> Result<Upstream, String> {
    let accepted = Arc::new(AcceptedIssuers::default());
    let resolver = Arc::new(BindingCert {
        agent: Arc::clone(agent),
        reference: binding.cert.clone(),
        binding: binding.name.clone(),
        accepted: Arc::clone(&accepted),
    });
    let config = client_config(&settled.trust, resolver, &[]).map_err(|e| e.to_string())?;
    // OpenSSL, for a partner that asks for the certificate late, or from the start for
    // one on old TLS; its key comes from the agent when first needed. (The identity of
    // a binding holds its certificate's thumbprint, so a renewal makes a new upstream
    // and a new context.)
    let (agent, reference, trust) = (
        Arc::clone(agent),
        binding.cert.clone(),
        settled.trust.clone(),
    );
    let flavour = if binding.legacy_tls {
        Flavour::Legacy
    } else {
        Flavour::Late
    };
    let make = move || {
        let identity = agent.identity(&reference).map_err(EgressError::Config)?;
        OpenSslClient::new(Some(&identity), &trust, flavour)
    };
    Upstream::new(
        &binding.name,
        &binding.upstream,
        config,
        settled.timeout,
        &settled.route,
        Some(accepted),
        Some(OpenSslSide::new(Box::new(make), binding.legacy_tls)),
    )
    .map_err(|e| e.to_string())
}

/// Who may use a binding: whom the key of its certificate admits, decided by the
/// agent at each application connection (so a grant or revoke applies to the next).
fn gate(agent: &Arc<Agent>, binding: &Binding) -> Gate {
    let agent = Arc::clone(agent);
    let name = binding.name.clone();
    Arc::new(move |uid| match uid {
        Some(uid) => agent.admit_relay(&certkeeper_agent::peer::Caller::from_uid(uid), &name),
        None => Err(agent.refuse_unknown_relay(&name)),
    })
}

async fn reconcile(
    agent: &Arc<Agent>,
    running: &mut HashMap<String, Running>,
    unbound: &mut HashMap<String, String>,
) {
    let bindings = match agent.with_home(certkeeper_store::Home::bindings) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("certkeeper egress: cannot read the bindings: {e}");
            return;
        }
    };
    let wanted: Vec<&Binding> = bindings.iter().filter(|b| b.listen.is_some()).collect();
    unbound.retain(|name, _| wanted.iter().any(|b| &b.name == name));
    running.retain(|name, r| {
        let keep = wanted
            .iter()
            .any(|b| &b.name == name && b.listen.as_deref() == Some(r.listen.as_str()));
        if !keep {
            let _ = r.stop.send(true);
            eprintln!(
                "certkeeper egress {name}: stopped listening on {}",
                r.listen
            );
        }
        keep
    });
    for binding in wanted {
        let listen = binding.listen.clone().unwrap_or_default();
        let built = identity(agent, binding).and_then(|(settled, identity)| {
            // Unchanged: keep the pool (and its warm connections) as it is.
            if running
                .get(&binding.name)
                .is_some_and(|r| r.identity == identity)
            {
                return Ok(None);
            }
            upstream_for(agent, binding, &settled).map(|u| Some((u, identity)))
        });
        let (upstream, identity) = match built {
            Ok(Some(u)) => u,
            Ok(None) => continue,
            Err(e) => {
                eprintln!("certkeeper egress {}: not serving: {e}", binding.name);
                if let Some(r) = running.remove(&binding.name) {
                    let _ = r.stop.send(true);
                }
                continue;
            }
        };
        if let Some(r) = running.get_mut(&binding.name) {
            if let Ok(mut current) = r.current.write() {
                *current = Arc::new(upstream);
            }
            r.identity = identity;
            eprintln!("certkeeper egress {}: reloaded", binding.name);
            continue;
        }
        let listener = match bind_listener(&listen).await {
            Ok(l) => l,
            Err(e) => {
                let said = format!("cannot listen on {listen}: {e}");
                if unbound.get(&binding.name) != Some(&said) {
                    eprintln!(
                        "certkeeper egress {}: {said}; trying again every 5 s",
                        binding.name
                    );
                }
                unbound.insert(binding.name.clone(), said);
                continue;
            }
        };
        unbound.remove(&binding.name);
        let current: Current = Arc::new(RwLock::new(Arc::new(upstream)));
        let (stop, stopped) = watch::channel(false);
        let shown = listener.describe();
        tokio::spawn(serve(
            listener,
            Arc::clone(&current),
            gate(agent, binding),
            stopped,
        ));
        eprintln!(
            "certkeeper egress {}: {shown} -> {} (certificate {})",
            binding.name, binding.upstream, binding.cert
        );
        running.insert(
            binding.name.clone(),
            Running {
                listen,
                identity,
                current,
                stop,
            },
        );
    }
}
