//! A front-end's agent following its environment.
//!
//! It holds a lease on `alive/NODE` (10 s), reads the generation and the keys sealed
//! to it at one revision, applies a newer generation to the home in one transaction
//! (after a random part of `fleet_spread`), reports on `status/NODE`, and watches the
//! generation from the revision it read. After a lost connection it watches again from
//! the revision it remembers, so what it missed arrives as events; a watch that
//! reports compaction reads everything again. With etcd unreachable, the agent goes on serving from the home
//! (the bindings' supervisor and the key service never wait for etcd), records the
//! trouble in the home for `doctor`, and retries with backoff up to 30 s.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use certkeeper_store::export::Replace;
use certkeeper_store::{FleetConfig, FleetRole, Home, Setting};
use etcd_client::{Client, PutOptions, WatchOptions};
use tokio::sync::watch;
use zeroize::Zeroizing;

use crate::error::FleetError;
use crate::etcd::{Connection, LEASE_TTL, Layout, StatusRecord, now, to_json};
use crate::generation::Generation;

/// How often a front-end refreshes its status (and its doctor summary) besides after
/// each generation: expiries come closer with time.
const STATUS_EVERY: Duration = Duration::from_secs(300);

/// The longest wait between two attempts to reach etcd.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What the node's doctor found: failing checks ("check: subject") and warnings.
pub type Doctor = Arc<dyn Fn(&Home) -> (Vec<String>, usize) + Send + Sync>;

/// How the agent follows its environment.
#[derive(Clone)]
pub struct Follow {
    /// The home.
    pub home_dir: PathBuf,
    /// The doctor summary for the status key.
    pub doctor: Doctor,
}

fn log(env: &str, message: &str) {
    // What etcd sent may be quoted.
    let message = crate::etcd::shown(message, 2000);
    eprintln!("certkeeper agent: fleet {env}: {message}");
}

/// Whether the home is a front-end of an environment (then the agent follows it).
pub fn follows(home: &Home) -> Result<Option<FleetConfig>, FleetError> {
    Ok(home.fleet_config()?.filter(|c| c.role == FleetRole::Node))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, FleetError> + Send + 'static,
) -> Result<T, FleetError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(FleetError::Invalid(format!("a fleet task failed: {e}"))))
}

/// What one session needs from the home.
struct Loaded {
    config: FleetConfig,
    node: String,
    private: Zeroizing<Vec<u8>>,
    conn: Connection,
}

fn load(home_dir: &Path) -> Result<Loaded, FleetError> {
    let home = Home::open(home_dir)?;
    let config = follows(&home)?.ok_or_else(|| {
        FleetError::NotInFleet("this home no longer follows an environment".into())
    })?;
    let private = home.fleet_secret(&config)?;
    let conn = Connection::for_home(&home, &config)?;
    let node = config.node.clone().unwrap_or_default();
    Ok(Loaded {
        config,
        node,
        private,
        conn,
    })
}

/// How a session ended without error.
enum Flow {
    /// The agent stops.
    Stop,
    /// Read everything again now (the watch fell behind a compaction).
    Restart,
}

/// Follows the environment until `shutdown` turns true; while the home follows none,
/// looks again every 2 s (a `fleet join` while the agent runs takes effect without a
/// restart).
pub async fn run(follow: Follow, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = Duration::from_secs(1);
    let mut last_error = String::new();
    // The revision of the last generation read: a new connection watches from the next
    // one (what was missed arrives as events) instead of reading everything again.
    let mut resume: Option<i64> = None;
    loop {
        if !wait_for_environment(&follow, &mut shutdown).await {
            return;
        }
        let outcome = session(&follow, &mut shutdown, &mut backoff, &mut resume).await;
        let env = {
            let dir = follow.home_dir.clone();
            blocking(move || Ok(Home::open(&dir)?.fleet_config()?.map(|c| c.env)))
                .await
                .ok()
                .flatten()
                .unwrap_or_default()
        };
        match outcome {
            Ok(Flow::Stop) => return,
            Ok(Flow::Restart) => continue,
            Err(e) => {
                let text = e.to_string();
                if text != last_error {
                    log(
                        &env,
                        &format!(
                            "{text}; serving from the local home, retrying (every {} s at most)",
                            MAX_BACKOFF.as_secs()
                        ),
                    );
                    last_error = text.clone();
                }
                let dir = follow.home_dir.clone();
                let _ = blocking(move || Ok(Home::open(&dir)?.fleet_set_error(Some(&text))?)).await;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => {}
        }
        if *shutdown.borrow() {
            return;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Waits until the home follows an environment (a `fleet join` while the agent runs
/// takes effect without a restart): looks at SQLite's data version every 2 s and at
/// the fleet record only when it changed, so an agent outside any fleet costs nothing.
/// False when the agent stops first.
async fn wait_for_environment(follow: &Follow, shutdown: &mut watch::Receiver<bool>) -> bool {
    let home = {
        let dir = follow.home_dir.clone();
        blocking(move || Ok(Home::open(&dir)?)).await
    };
    let Ok(home) = home else {
        return !*shutdown.borrow();
    };
    let home = Arc::new(std::sync::Mutex::new(home));
    let mut seen = None;
    loop {
        let h = Arc::clone(&home);
        let last = seen;
        let checked = blocking(move || {
            let home = h
                .lock()
                .map_err(|_| FleetError::Invalid("poisoned".into()))?;
            let version = home.data_version()?;
            if Some(version) == last {
                return Ok((version, false));
            }
            Ok((version, follows(&home)?.is_some()))
        })
        .await;
        match checked {
            Ok((_, true)) => return true,
            Ok((version, false)) => seen = Some(version),
            Err(_) => seen = None,
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.changed() => {}
        }
        if *shutdown.borrow() {
            return false;
        }
    }
}

/// One connection's life: Err to reconnect after a pause.
async fn session(
    follow: &Follow,
    shutdown: &mut watch::Receiver<bool>,
    backoff: &mut Duration,
    resume: &mut Option<i64>,
) -> Result<Flow, FleetError> {
    let dir = follow.home_dir.clone();
    let loaded = Arc::new(blocking(move || load(&dir)).await?);
    let conn = &loaded.conn;
    let layout = Layout::new(&loaded.config.env);
    let mut client = conn.connect().await?;
    crate::admin::check_environment(&mut client, conn, &loaded.config).await?;

    // Liveness on a lease.
    let lease = client
        .lease_grant(LEASE_TTL, None)
        .await
        .map_err(|e| conn.error(&e))?
        .id();
    let alive = serde_json::json!({"pid": std::process::id(), "since": now()});
    client
        .put(
            layout.alive(&loaded.node),
            alive.to_string(),
            Some(PutOptions::new().with_lease(lease)),
        )
        .await
        .map_err(|e| conn.error(&e))?;
    let (mut keeper, mut responses) = client
        .lease_keep_alive(lease)
        .await
        .map_err(|e| conn.error(&e))?;

    if *backoff > Duration::from_secs(1) {
        log(&loaded.config.env, "etcd reachable again");
    }
    *backoff = Duration::from_secs(1);

    // Read (and apply) at once: the home's record of trouble is set or cleared by what
    // is found. After a lost connection the watch still starts from the revision
    // remembered, so a compaction since then is noticed (and everything read again).
    let mut seen = None;
    let (read, mut apply_error) = sync(follow, &loaded, &mut client, &layout, &mut seen).await?;
    let revision = resume.unwrap_or(read);
    *resume = Some(revision);
    let mut events = client
        .watch(
            layout.generation(),
            Some(WatchOptions::new().with_start_revision(revision + 1)),
        )
        .await
        .map_err(|e| conn.error(&e))?;
    let mut keep_alive = tokio::time::interval(Duration::from_secs((LEASE_TTL / 3) as u64));
    let mut report = tokio::time::interval(STATUS_EVERY);
    report.tick().await;
    // When a changed generation is read and applied: a random part of `fleet_spread`
    // after the change was seen. The wait is one arm of the loop, so the lease, the
    // reports and a stop go on meanwhile.
    let mut due: Option<tokio::time::Instant> = None;
    let mut last_read = tokio::time::Instant::now();
    loop {
        let wait = due.unwrap_or_else(tokio::time::Instant::now);
        tokio::select! {
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    let _ = client.lease_revoke(lease).await;
                    return Ok(Flow::Stop);
                }
            }
            _ = keep_alive.tick() => {
                keeper.keep_alive().await.map_err(|e| conn.error(&e))?;
                match tokio::time::timeout(Duration::from_secs(5), responses.message()).await {
                    Ok(Ok(Some(r))) if r.ttl() > 0 => {}
                    Ok(Err(e)) => return Err(conn.error(&e)),
                    Ok(_) => return Err(FleetError::Etcd {
                        endpoints: conn.describe(),
                        reason: "the liveness lease expired".into(),
                    }),
                    Err(_) => return Err(FleetError::Etcd {
                        endpoints: conn.describe(),
                        reason: "no answer to the lease keep-alive within 5 s".into(),
                    }),
                }
            }
            _ = report.tick() => {
                report_status(follow, &loaded, &mut client, &layout, apply_error.clone()).await?;
            }
            () = tokio::time::sleep_until(wait), if due.is_some() => {
                due = None;
                last_read = tokio::time::Instant::now();
                let (revision, error) = sync(follow, &loaded, &mut client, &layout, &mut seen).await?;
                *resume = Some(revision);
                apply_error = error;
            }
            message = events.message() => {
                let message = message.map_err(|e| conn.error(&e))?.ok_or_else(|| FleetError::Etcd {
                    endpoints: conn.describe(),
                    reason: "the watch ended".into(),
                })?;
                if message.compact_revision() > 0 {
                    log(&loaded.config.env, "the watch fell behind etcd's compaction: reading everything again");
                    let _ = client.lease_revoke(lease).await;
                    *resume = None;
                    return Ok(Flow::Restart);
                }
                if message.canceled() {
                    return Err(FleetError::Etcd {
                        endpoints: conn.describe(),
                        reason: format!("the watch was cancelled ({})", message.cancel_reason()),
                    });
                }
                if !message.events().is_empty() && due.is_none() {
                    // At most one read a second, whatever is written to etcd.
                    let earliest = last_read + Duration::from_secs(1);
                    due = Some((tokio::time::Instant::now() + spread(follow).await).max(earliest));
                }
            }
        }
    }
}

/// A random part of the home's `fleet_spread` (at most an hour).
async fn spread(follow: &Follow) -> Duration {
    let dir = follow.home_dir.clone();
    let seconds: u64 = blocking(move || {
        Ok(Home::open(&dir)?
            .setting(Setting::FleetSpread)?
            .parse::<u64>()
            .unwrap_or(5)
            .min(3600))
    })
    .await
    .unwrap_or(5);
    if seconds == 0 {
        return Duration::ZERO;
    }
    let mut r = [0u8; 4];
    if aws_lc_rs::rand::fill(&mut r).is_err() {
        return Duration::from_secs(seconds);
    }
    Duration::from_millis(u64::from(u32::from_be_bytes(r)) % (seconds * 1000))
}

/// Reads the generation (with the keys sealed to each front-end) and applies it when
/// newer; records the outcome in the home (for `doctor`) and on etcd. A value already
/// seen in this session (`seen`: its SHA-256) is not worked on again. Returns the
/// revision read and why the generation was not applied, if it was not.
async fn sync(
    follow: &Follow,
    loaded: &Arc<Loaded>,
    client: &mut Client,
    layout: &Layout,
    seen: &mut Option<String>,
) -> Result<(i64, Option<String>), FleetError> {
    let conn = &loaded.conn;
    let got = client
        .get(layout.generation(), None)
        .await
        .map_err(|e| conn.error(&e))?;
    let revision = got.header().map_or(0, |h| h.revision());
    let Some(kv) = got.kvs().first() else {
        let dir = follow.home_dir.clone();
        let _ = blocking(move || Ok(Home::open(&dir)?.fleet_set_error(None)?)).await;
        report_status(follow, loaded, client, layout, None).await?;
        return Ok((revision, None));
    };
    let digest = crate::crypto::sha256_hex(kv.value());
    if seen.as_deref() == Some(digest.as_str()) {
        return Ok((revision, None));
    }
    *seen = Some(digest);
    let envelope = kv.value().to_vec();
    let dir = follow.home_dir.clone();
    let l = Arc::clone(loaded);
    let outcome = blocking(move || apply(&dir, &l, &envelope)).await;
    let error = match outcome {
        Ok(Some(message)) => {
            log(&loaded.config.env, &message);
            None
        }
        Ok(None) => None,
        Err(e) => {
            log(&loaded.config.env, &format!("{e}"));
            Some(e.to_string())
        }
    };
    let dir = follow.home_dir.clone();
    let recorded = error.clone();
    let _ = blocking(move || Ok(Home::open(&dir)?.fleet_set_error(recorded.as_deref())?)).await;
    report_status(follow, loaded, client, layout, error.clone()).await?;
    Ok((revision, error))
}

/// Verifies and applies one generation; a line for the log when something changed.
fn apply(home_dir: &Path, loaded: &Loaded, envelope: &[u8]) -> Result<Option<String>, FleetError> {
    let mut home = Home::open(home_dir)?;
    let config = follows(&home)?.ok_or_else(|| {
        FleetError::NotInFleet("this home no longer follows an environment".into())
    })?;
    let received = Generation::verify(envelope, &config.admin_key, &config.env)?;
    let generation = &received.generation;
    if generation.generation <= config.generation {
        if generation.generation < config.generation {
            return Err(FleetError::Tampered(format!(
                "etcd offers generation {}, older than the applied {}: refused (a restored \
                 etcd backup?)",
                generation.generation, config.generation
            )));
        }
        return Ok(None);
    }
    let Some(member) = generation.member(&loaded.node) else {
        return Err(FleetError::NotApproved(format!(
            "generation {} is not for this front-end ({}): it waits for fleet approve and a \
             publish",
            generation.generation, loaded.node
        )));
    };
    let own = crate::crypto::node_public(&loaded.private)?;
    if base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &own) != member.public_key
    {
        return Err(FleetError::NotApproved(format!(
            "generation {} was sealed to another key for {}: was it joined again? (fleet \
             approve it anew)",
            generation.generation, loaded.node
        )));
    }
    let keys: HashMap<String, Zeroizing<Vec<u8>>> = generation.open_keys(
        &loaded.node,
        &loaded.private,
        received.sealed.get(&loaded.node).map(Vec::as_slice),
    )?;
    let applied = home.fleet_apply(
        generation.generation,
        &generation.state,
        &keys,
        config.listen_host.as_deref(),
    )?;
    drop(keys);
    let failed_exports = write_exports(&mut home, &applied.exports);
    let mut line = format!(
        "applied generation {} ({} added, {} changed, {} removed, {} binding changes)",
        generation.generation, applied.added, applied.changed, applied.removed, applied.bindings
    );
    if applied.kept > 0 {
        line.push_str(&format!(
            "; {} published certificates were already this front-end's own and stay as they \
             are (its own key, ACL and store; a later generation does not remove them)",
            applied.kept
        ));
    }
    if !failed_exports.is_empty() {
        line.push_str(&format!(
            "; export files not written: {}",
            failed_exports.join("; ")
        ));
    }
    Ok(Some(line))
}

/// Writes the export files of a generation. A file of that name is replaced when it
/// holds a certificate (the previous one, before a renewal), never when it holds
/// anything else: that is reported, as `export --as` without `--force` would.
fn write_exports(home: &mut Home, exports: &[(String, String)]) -> Vec<String> {
    let mut failed = Vec::new();
    for (thumbprint, name) in exports {
        let written = home.entry(thumbprint).and_then(|entry| match entry {
            Some(entry) => home
                .export_as(&entry, name, Replace::Certificates)
                .map(drop),
            None => Ok(()),
        });
        if let Err(e) = written {
            failed.push(format!("{name}: {e}"));
        }
    }
    failed
}

async fn report_status(
    follow: &Follow,
    loaded: &Arc<Loaded>,
    client: &mut Client,
    layout: &Layout,
    error: Option<String>,
) -> Result<(), FleetError> {
    let dir = follow.home_dir.clone();
    let doctor = Arc::clone(&follow.doctor);
    let node = loaded.node.clone();
    let record = blocking(move || {
        let home = Home::open(&dir)?;
        let config = home
            .fleet_config()?
            .ok_or_else(|| FleetError::NotInFleet("no environment".into()))?;
        let (failing, warnings) = doctor(&home);
        Ok(StatusRecord {
            node,
            generation: config.generation,
            applied_at: config.applied_at,
            updated_at: now(),
            failing,
            warnings,
            error,
        })
    })
    .await?;
    client
        .put(layout.status(&loaded.node), to_json(&record), None)
        .await
        .map_err(|e| loaded.conn.error(&e))?;
    Ok(())
}
