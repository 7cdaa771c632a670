//! The administrator's commands (`fleet init|approve|remove|publish|diff|status`) and a
//! front-end's `fleet join`. Each reads or writes etcd through [`Connection`] and
//! records what it decided in the home.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use certkeeper_store::{FleetConfig, FleetEntry, FleetMember, FleetRole, FleetState, Home};
use etcd_client::{Client, Compare, CompareOp, DeleteOptions, GetOptions, Txn, TxnOp};
use serde::Serialize;

use crate::crypto::{self, AdminKey};
use crate::error::FleetError;
use crate::etcd::{
    Connection, EnvironmentRecord, Layout, MAX_REQUEST, NodeRecord, StatusRecord, check_name,
    from_json, to_json,
};
use crate::generation::{FORMAT, Generation, Member, encode_keys};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// This home's environment, on the side a command needs.
pub fn config(home: &Home, role: Option<FleetRole>) -> Result<FleetConfig, FleetError> {
    let config = home.fleet_config()?.ok_or_else(|| {
        FleetError::NotInFleet(
            "this home is in no environment: fleet init (the administrator's machine) or \
             fleet join (a front-end) first"
                .into(),
        )
    })?;
    match role {
        Some(FleetRole::Admin) if config.role != FleetRole::Admin => {
            Err(FleetError::NotInFleet(format!(
                "this home is a front-end of environment {}; publish, approve and remove run \
                 on the administrator's machine",
                config.env
            )))
        }
        _ => Ok(config),
    }
}

async fn read_environment(
    client: &mut Client,
    conn: &Connection,
    layout: &Layout,
    env: &str,
) -> Result<Option<EnvironmentRecord>, FleetError> {
    let got = client
        .get(layout.environment(), None)
        .await
        .map_err(|e| conn.error(&e))?;
    match got.kvs().first() {
        None => Ok(None),
        Some(kv) => {
            let record: EnvironmentRecord = from_json("the environment record", kv.value())?;
            if record.env != env {
                return Err(FleetError::Foreign(format!(
                    "etcd holds another environment's data under {env}'s prefix (it names {})",
                    record.env
                )));
            }
            Ok(Some(record))
        }
    }
}

/// Checks that etcd's environment record carries the administrator key this home
/// knows (`fleet init` made it, or `fleet join` pinned it).
pub async fn check_environment(
    client: &mut Client,
    conn: &Connection,
    config: &FleetConfig,
) -> Result<(), FleetError> {
    let layout = Layout::new(&config.env);
    match read_environment(client, conn, &layout, &config.env).await? {
        None => Err(FleetError::Foreign(format!(
            "etcd at {} holds no environment {}: it was reset, or this is another etcd",
            conn.describe(),
            config.env
        ))),
        Some(record) if record.admin_key()? != config.admin_key => {
            Err(FleetError::Foreign(format!(
                "environment {} on etcd has another administrator key (fingerprint {}) than \
                 this home knows ({}): it was re-created by someone else; nothing was changed",
                config.env,
                crypto::fingerprint(&record.admin_key()?),
                crypto::fingerprint(&config.admin_key)
            )))
        }
        Some(_) => Ok(()),
    }
}

/// What `fleet init` made.
#[derive(Debug, Serialize)]
pub struct Initialized {
    /// The environment.
    pub env: String,
    /// The administrator key's fingerprint (front-ends may require it at join).
    pub fingerprint: String,
}

/// `fleet init`: makes the administrator's signing key, records the environment in
/// this home and creates it on etcd (refused when etcd already holds it).
pub async fn init(
    home: &Home,
    endpoints: Vec<String>,
    env: &str,
    etcd_cert: Option<&str>,
) -> Result<Initialized, FleetError> {
    check_name("environment", env)?;
    if let Some(existing) = home.fleet_config()? {
        return Err(FleetError::Invalid(format!(
            "this home is already in environment {}",
            existing.env
        )));
    }
    let etcd_cert = match etcd_cert {
        Some(r) => Some(home.resolve(r)?.thumbprint),
        None => None,
    };
    let conn = Connection::new(home, endpoints.clone(), etcd_cert.as_deref())?;
    let mut client = conn.connect().await?;
    let layout = Layout::new(env);
    if let Some(record) = read_environment(&mut client, &conn, &layout, env).await? {
        return Err(FleetError::Foreign(format!(
            "etcd already holds environment {env} (administrator key {}): choose another \
             --env, or run publish from the home that created it",
            crypto::fingerprint(&record.admin_key()?)
        )));
    }
    let (pkcs8, admin) = AdminKey::generate()?;
    let record = EnvironmentRecord {
        env: env.to_string(),
        admin_key: STANDARD.encode(admin.public()),
        created_at: now(),
    };
    let txn = Txn::new()
        .when([Compare::create_revision(
            layout.environment(),
            CompareOp::Equal,
            0,
        )])
        .and_then([TxnOp::put(layout.environment(), to_json(&record), None)]);
    let done = client.txn(txn).await.map_err(|e| conn.error(&e))?;
    if !done.succeeded() {
        return Err(FleetError::Conflict(format!(
            "environment {env} was created on etcd by someone else just now"
        )));
    }
    home.fleet_create(
        &FleetConfig {
            env: env.to_string(),
            role: FleetRole::Admin,
            etcd: endpoints,
            etcd_cert,
            node: None,
            admin_key: admin.public(),
            listen_host: None,
            generation: 0,
            applied_at: None,
            last_error: None,
        },
        &pkcs8,
    )?;
    Ok(Initialized {
        env: env.to_string(),
        fingerprint: crypto::fingerprint(&admin.public()),
    })
}

/// What `fleet join` did.
#[derive(Debug, Serialize)]
pub struct Joined {
    /// This front-end's node name.
    pub node: String,
    /// Its sealing key's fingerprint, for `fleet approve`.
    pub fingerprint: String,
    /// The administrator key it pinned.
    pub admin_fingerprint: String,
}

/// How a front-end joins.
pub struct JoinOptions<'a> {
    /// etcd endpoints.
    pub endpoints: Vec<String>,
    /// The environment.
    pub env: &'a str,
    /// This front-end's node name.
    pub node: &'a str,
    /// Its host name.
    pub hostname: &'a str,
    /// The client certificate for https etcd.
    pub etcd_cert: Option<&'a str>,
    /// A loopback address for published bindings.
    pub listen_host: Option<&'a str>,
    /// The administrator key's fingerprint, when the administrator gave it.
    pub admin_fingerprint: Option<&'a str>,
}

/// `fleet join`: makes this front-end's sealing key, pins the environment's
/// administrator key, registers on etcd and records the environment in the home.
pub async fn join(home: &Home, opts: &JoinOptions<'_>) -> Result<Joined, FleetError> {
    check_name("environment", opts.env)?;
    check_name("node", opts.node)?;
    if let Some(host) = opts.listen_host {
        let ip: std::net::IpAddr = host.parse().map_err(|_| {
            FleetError::Invalid(format!("--listen-host {host:?} is not an IP address"))
        })?;
        if !ip.is_loopback() {
            return Err(FleetError::Invalid(format!(
                "--listen-host {host}: bindings listen on loopback addresses only"
            )));
        }
    }
    if let Some(existing) = home.fleet_config()? {
        return Err(FleetError::Invalid(format!(
            "this home is already in environment {}",
            existing.env
        )));
    }
    let etcd_cert = match opts.etcd_cert {
        Some(r) => Some(home.resolve(r)?.thumbprint),
        None => None,
    };
    let conn = Connection::new(home, opts.endpoints.clone(), etcd_cert.as_deref())?;
    let mut client = conn.connect().await?;
    let layout = Layout::new(opts.env);
    let record = read_environment(&mut client, &conn, &layout, opts.env)
        .await?
        .ok_or_else(|| {
            FleetError::NotInFleet(format!(
                "etcd at {} holds no environment {}: run fleet init on the administrator's \
                 machine first",
                conn.describe(),
                opts.env
            ))
        })?;
    let admin_key = record.admin_key()?;
    if let Some(expected) = opts.admin_fingerprint
        && !crypto::fingerprint_matches(expected, &admin_key)
    {
        return Err(FleetError::Foreign(format!(
            "environment {} on etcd has the administrator key {}, not {expected}: nothing was \
             changed",
            opts.env,
            crypto::fingerprint(&admin_key)
        )));
    }
    let (private, public) = crypto::node_keypair();
    let node_record = NodeRecord {
        node: opts.node.to_string(),
        hostname: opts.hostname.to_string(),
        public_key: STANDARD.encode(&public),
        joined_at: now(),
    };
    let key = layout.node(opts.node);
    let txn = Txn::new()
        .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
        .and_then([TxnOp::put(key, to_json(&node_record), None)]);
    let done = client.txn(txn).await.map_err(|e| conn.error(&e))?;
    if !done.succeeded() {
        return Err(FleetError::Conflict(format!(
            "a front-end named {} is already registered in environment {}: choose another \
             --node, or remove it first (fleet remove {} on the administrator's machine)",
            opts.node, opts.env, opts.node
        )));
    }
    let created = home.fleet_create(
        &FleetConfig {
            env: opts.env.to_string(),
            role: FleetRole::Node,
            etcd: opts.endpoints.clone(),
            etcd_cert,
            node: Some(opts.node.to_string()),
            admin_key: admin_key.clone(),
            listen_host: opts.listen_host.map(str::to_string),
            generation: 0,
            applied_at: None,
            last_error: None,
        },
        &private,
    );
    if let Err(e) = created {
        // Not half-joined: the registration goes too.
        let _ = client.delete(layout.node(opts.node), None).await;
        return Err(e.into());
    }
    Ok(Joined {
        node: opts.node.to_string(),
        fingerprint: crypto::fingerprint(&public),
        admin_fingerprint: crypto::fingerprint(&admin_key),
    })
}

/// `fleet approve NODE --fingerprint FP`: admits a registered front-end whose key has
/// that fingerprint. It gets keys from the next publish on.
pub async fn approve(
    home: &Home,
    node: &str,
    fingerprint: &str,
) -> Result<FleetMember, FleetError> {
    check_name("node", node)?;
    let config = config(home, Some(FleetRole::Admin))?;
    let conn = Connection::for_home(home, &config)?;
    let mut client = conn.connect().await?;
    check_environment(&mut client, &conn, &config).await?;
    let layout = Layout::new(&config.env);
    let got = client
        .get(layout.node(node), None)
        .await
        .map_err(|e| conn.error(&e))?;
    let kv = got.kvs().first().ok_or_else(|| {
        FleetError::NotApproved(format!(
            "no front-end named {node} has joined environment {}: run fleet join on it first",
            config.env
        ))
    })?;
    let record: NodeRecord = from_json("the front-end's registration", kv.value())?;
    let public = record.public_key()?;
    if !crypto::fingerprint_matches(fingerprint, &public) {
        return Err(FleetError::NotApproved(format!(
            "{node} registered the key {}, not {fingerprint}: it was not approved (compare \
             with what fleet join printed on {})",
            crypto::fingerprint(&public),
            record.hostname
        )));
    }
    let member = FleetMember {
        node: node.to_string(),
        hostname: record.hostname,
        public_key: public,
        approved_at: now(),
    };
    home.fleet_approve(&member)?;
    Ok(member)
}

/// `fleet remove NODE`: takes a front-end out; its registration, sealed keys, status
/// and liveness go from etcd. Whether it had been approved, and whether it was known.
pub async fn remove(home: &Home, node: &str) -> Result<(bool, bool), FleetError> {
    check_name("node", node)?;
    let config = config(home, Some(FleetRole::Admin))?;
    let conn = Connection::for_home(home, &config)?;
    let mut client = conn.connect().await?;
    check_environment(&mut client, &conn, &config).await?;
    let layout = Layout::new(&config.env);
    let approved = home.fleet_unapprove(node)?;
    let mut known = approved;
    for key in [
        layout.node(node),
        layout.keys(node),
        layout.status(node),
        layout.alive(node),
    ] {
        let deleted = client.delete(key, None).await.map_err(|e| conn.error(&e))?;
        known |= deleted.deleted() > 0;
    }
    Ok((approved, known))
}

/// The generation on etcd now, read and verified, with the key's mod revision (0 when
/// there is none yet).
pub async fn current(
    client: &mut Client,
    conn: &Connection,
    config: &FleetConfig,
) -> Result<(Option<Generation>, i64), FleetError> {
    let layout = Layout::new(&config.env);
    let got = client
        .get(layout.generation(), None)
        .await
        .map_err(|e| conn.error(&e))?;
    match got.kvs().first() {
        None => Ok((None, 0)),
        Some(kv) => Ok((
            Some(Generation::verify(
                kv.value(),
                &config.admin_key,
                &config.env,
            )?),
            kv.mod_revision(),
        )),
    }
}

/// What a publish wrote.
#[derive(Debug, Serialize)]
pub struct Published {
    /// The new generation.
    pub generation: u64,
    /// The front-ends it is sealed to.
    pub members: Vec<String>,
    /// Certificates, keys and bindings in it.
    pub entries: usize,
    /// Private keys sealed to each front-end.
    pub keys: usize,
    /// Bindings.
    pub bindings: usize,
    /// The request's size in bytes.
    pub bytes: usize,
}

/// `fleet publish`: the administrator's home as the next generation, signed, with its
/// private keys sealed to each approved front-end, in one etcd transaction that
/// succeeds only if the generation on etcd is still the one read (so two publishes
/// never overwrite each other silently). Sealed bundles of front-ends no longer
/// approved are deleted in the same transaction.
pub async fn publish(home: &Home, hostname: &str) -> Result<Published, FleetError> {
    let config = config(home, Some(FleetRole::Admin))?;
    let admin = AdminKey::from_pkcs8(&home.fleet_secret(&config)?)?;
    let conn = Connection::for_home(home, &config)?;
    let mut client = conn.connect().await?;
    check_environment(&mut client, &conn, &config).await?;
    let layout = Layout::new(&config.env);
    let (previous, revision) = current(&mut client, &conn, &config).await?;
    let number = previous
        .as_ref()
        .map_or(0, |g| g.generation)
        .max(config.generation)
        + 1;

    let state = home.fleet_snapshot(config.etcd_cert.as_deref())?;
    let keys = home.fleet_private_keys(&state)?;
    let plain = encode_keys(&keys);
    drop(keys);
    let members = home.fleet_members()?;
    let mut bundles = BTreeMap::new();
    let mut sealed = Vec::new();
    for m in &members {
        let bundle = crypto::seal(&m.public_key, &config.env, &m.node, number, &plain)?;
        bundles.insert(m.node.clone(), crypto::sha256_hex(&bundle));
        sealed.push((m.node.clone(), bundle));
    }
    drop(plain);
    let generation = Generation {
        format: FORMAT,
        env: config.env.clone(),
        generation: number,
        published_at: now(),
        publisher: hostname.to_string(),
        members: members
            .iter()
            .map(|m| Member {
                node: m.node.clone(),
                public_key: STANDARD.encode(&m.public_key),
            })
            .collect(),
        bundles,
        state,
    };
    let envelope = generation.sign(&admin)?;
    let bytes = envelope.len()
        + sealed
            .iter()
            .map(|(n, b)| n.len() + b.len() + 64)
            .sum::<usize>();
    if bytes > MAX_REQUEST {
        return Err(FleetError::TooLarge(format!(
            "generation {number} would be {} KiB ({} certificates, {} front-ends); etcd takes at \
             most 1.5 MiB in one request, and a generation is written in one: nothing was \
             published",
            bytes / 1024,
            generation.state.entries.len(),
            members.len()
        )));
    }
    // Bundles of front-ends no longer approved.
    let existing = client
        .get(
            layout.keys(""),
            Some(GetOptions::new().with_prefix().with_keys_only()),
        )
        .await
        .map_err(|e| conn.error(&e))?;
    let mut ops = vec![TxnOp::put(layout.generation(), envelope, None)];
    for (node, bundle) in sealed {
        ops.push(TxnOp::put(layout.keys(&node), bundle, None));
    }
    let approved: BTreeSet<&str> = members.iter().map(|m| m.node.as_str()).collect();
    for kv in existing.kvs() {
        let key = String::from_utf8_lossy(kv.key()).into_owned();
        if layout
            .node_of("keys", &key)
            .is_some_and(|n| !approved.contains(n))
        {
            ops.push(TxnOp::delete(key, Some(DeleteOptions::new())));
        }
    }
    let txn = Txn::new()
        .when([Compare::mod_revision(
            layout.generation(),
            CompareOp::Equal,
            revision,
        )])
        .and_then(ops);
    let done = client.txn(txn).await.map_err(|e| conn.error(&e))?;
    if !done.succeeded() {
        let (now_there, _) = current(&mut client, &conn, &config).await?;
        let who = now_there.map_or_else(String::new, |g| {
            format!(" (generation {} from {})", g.generation, g.publisher)
        });
        return Err(FleetError::Conflict(format!(
            "another publish landed first{who}; nothing of this one was written: look at \
             fleet diff, then publish again"
        )));
    }
    home.fleet_set_published(number)?;
    Ok(Published {
        generation: number,
        members: members.iter().map(|m| m.node.clone()).collect(),
        entries: generation.state.entries.len(),
        keys: generation
            .state
            .entries
            .iter()
            .filter(|e| e.key.is_some())
            .count(),
        bindings: generation.state.bindings.len(),
        bytes,
    })
}

/// One difference between the home and the generation on etcd.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Change {
    /// `+` (the publish adds it), `-` (removes it) or `~` (changes it).
    pub change: &'static str,
    /// `certificate`, `binding`, `setting` or `front-end`.
    pub kind: &'static str,
    /// Which.
    pub name: String,
    /// What changes, for `~`.
    pub detail: String,
}

fn describe_entry(e: &FleetEntry) -> String {
    let subject = certkeeper_core::Certificate::from_der(&e.der)
        .map(|c| c.subject)
        .unwrap_or_else(|_| e.thumbprint.clone());
    format!("{subject} ({}, {})", e.store, &e.thumbprint[..16])
}

fn entry_changes(before: &FleetEntry, after: &FleetEntry) -> String {
    let mut what = Vec::new();
    if before.store != after.store {
        what.push(format!("store {} -> {}", before.store, after.store));
    }
    if before.name != after.name {
        what.push(format!("name {:?} -> {:?}", before.name, after.name));
    }
    if before.export_name != after.export_name {
        what.push(format!(
            "export name {:?} -> {:?}",
            before.export_name, after.export_name
        ));
    }
    if before.acl != after.acl {
        what.push(format!(
            "key ACL [{}] -> [{}]",
            before.acl.join(", "),
            after.acl.join(", ")
        ));
    }
    if before.key != after.key {
        what.push(match (&before.key, &after.key) {
            (None, Some(_)) => "private key added".into(),
            (Some(_), None) => "private key removed".into(),
            _ => "key exportability".into(),
        });
    }
    what.join("; ")
}

/// Compares two states (and member lists): what publishing `after` over `before` does.
pub fn compare(
    before: &FleetState,
    before_members: &[String],
    after: &FleetState,
    after_members: &[String],
) -> Vec<Change> {
    let mut out = Vec::new();
    let old: BTreeMap<&str, &FleetEntry> = before
        .entries
        .iter()
        .map(|e| (e.thumbprint.as_str(), e))
        .collect();
    let new: BTreeMap<&str, &FleetEntry> = after
        .entries
        .iter()
        .map(|e| (e.thumbprint.as_str(), e))
        .collect();
    for (t, e) in &new {
        match old.get(t) {
            None => out.push(Change {
                change: "+",
                kind: "certificate",
                name: describe_entry(e),
                detail: String::new(),
            }),
            Some(o) if o != e => out.push(Change {
                change: "~",
                kind: "certificate",
                name: describe_entry(e),
                detail: entry_changes(o, e),
            }),
            Some(_) => {}
        }
    }
    for (t, e) in &old {
        if !new.contains_key(t) {
            out.push(Change {
                change: "-",
                kind: "certificate",
                name: describe_entry(e),
                detail: String::new(),
            });
        }
    }
    let old_b: BTreeMap<&str, _> = before
        .bindings
        .iter()
        .map(|b| (b.name.as_str(), b))
        .collect();
    let new_b: BTreeMap<&str, _> = after
        .bindings
        .iter()
        .map(|b| (b.name.as_str(), b))
        .collect();
    for (n, b) in &new_b {
        match old_b.get(n) {
            None => out.push(Change {
                change: "+",
                kind: "binding",
                name: n.to_string(),
                detail: b.upstream.clone(),
            }),
            Some(o) if o != b => out.push(Change {
                change: "~",
                kind: "binding",
                name: n.to_string(),
                detail: format!("{o:?} -> {b:?}")
                    .replace("Binding ", "")
                    .chars()
                    .take(400)
                    .collect(),
            }),
            Some(_) => {}
        }
    }
    for n in old_b.keys() {
        if !new_b.contains_key(n) {
            out.push(Change {
                change: "-",
                kind: "binding",
                name: n.to_string(),
                detail: String::new(),
            });
        }
    }
    let keys: BTreeSet<&String> = before
        .settings
        .keys()
        .chain(after.settings.keys())
        .collect();
    for k in keys {
        match (before.settings.get(k), after.settings.get(k)) {
            (a, b) if a == b => {}
            (None, Some(v)) => out.push(Change {
                change: "+",
                kind: "setting",
                name: k.clone(),
                detail: v.clone(),
            }),
            (Some(_), None) => out.push(Change {
                change: "-",
                kind: "setting",
                name: k.clone(),
                detail: String::new(),
            }),
            (Some(a), Some(b)) => out.push(Change {
                change: "~",
                kind: "setting",
                name: k.clone(),
                detail: format!("{a} -> {b}"),
            }),
            (None, None) => {}
        }
    }
    for m in after_members {
        if !before_members.contains(m) {
            out.push(Change {
                change: "+",
                kind: "front-end",
                name: m.clone(),
                detail: String::new(),
            });
        }
    }
    for m in before_members {
        if !after_members.contains(m) {
            out.push(Change {
                change: "-",
                kind: "front-end",
                name: m.clone(),
                detail: String::new(),
            });
        }
    }
    out
}

/// `fleet diff`: what a publish would change, against the generation on etcd.
pub async fn diff(home: &Home) -> Result<(u64, Vec<Change>), FleetError> {
    let config = config(home, Some(FleetRole::Admin))?;
    let conn = Connection::for_home(home, &config)?;
    let mut client = conn.connect().await?;
    check_environment(&mut client, &conn, &config).await?;
    let (previous, _) = current(&mut client, &conn, &config).await?;
    let state = home.fleet_snapshot(config.etcd_cert.as_deref())?;
    let members: Vec<String> = home.fleet_members()?.into_iter().map(|m| m.node).collect();
    let (number, before, before_members) = match previous {
        Some(g) => (
            g.generation,
            g.state,
            g.members.into_iter().map(|m| m.node).collect(),
        ),
        None => (0, FleetState::default(), Vec::new()),
    };
    Ok((number, compare(&before, &before_members, &state, &members)))
}

/// One front-end in `fleet status`.
#[derive(Debug, Serialize)]
pub struct NodeStatus {
    /// Its node name.
    pub node: String,
    /// Its host name.
    pub hostname: String,
    /// Whether the latest generation is sealed to it.
    pub approved: bool,
    /// Whether its agent holds its lease now.
    pub alive: bool,
    /// The generation its home holds.
    pub generation: u64,
    /// Whether that is older than the latest.
    pub behind: bool,
    /// Its doctor's failing checks, and the reason it did not apply, if any.
    pub failing: Vec<String>,
    /// Its doctor's warnings.
    pub warnings: usize,
    /// When it applied its generation.
    pub applied_at: Option<i64>,
    /// When it last reported.
    pub updated_at: Option<i64>,
    /// Why it did not apply the latest generation.
    pub error: Option<String>,
}

/// What `fleet status` found.
#[derive(Debug, Serialize)]
pub struct StatusReport {
    /// The latest generation: the one on etcd, or, when that does not verify, the
    /// administrator's last publish (or the newest any front-end holds).
    pub latest: u64,
    /// Why the generation on etcd is not usable, when it is not.
    pub problem: Option<String>,
    /// Every registered front-end.
    pub nodes: Vec<NodeStatus>,
}

/// `fleet status`: every registered front-end side by side, and the latest generation.
pub async fn status(home: &Home) -> Result<StatusReport, FleetError> {
    let config = config(home, None)?;
    let conn = Connection::for_home(home, &config)?;
    let mut client = conn.connect().await?;
    check_environment(&mut client, &conn, &config).await?;
    let layout = Layout::new(&config.env);
    let (latest, problem) = match current(&mut client, &conn, &config).await {
        Ok((latest, _)) => (latest, None),
        Err(e @ (FleetError::Tampered(_) | FleetError::Foreign(_) | FleetError::Invalid(_))) => {
            (None, Some(e.to_string()))
        }
        Err(e) => return Err(e),
    };
    let mut latest_number = latest.as_ref().map_or(0, |g| g.generation);
    if problem.is_some() && config.role == FleetRole::Admin {
        latest_number = config.generation;
    }
    let all = client
        .get(layout.prefix(), Some(GetOptions::new().with_prefix()))
        .await
        .map_err(|e| conn.error(&e))?;
    let members = home.fleet_members()?;
    let mut nodes: BTreeMap<String, NodeStatus> = BTreeMap::new();
    let mut alive = BTreeSet::new();
    let mut statuses = BTreeMap::new();
    for kv in all.kvs() {
        let key = String::from_utf8_lossy(kv.key()).into_owned();
        // Only keys whose node part is a node name (etcd may hold anything).
        let named = |kind: &str| {
            layout
                .node_of(kind, &key)
                .filter(|n| check_name("node", n).is_ok())
        };
        if let Some(node) = named("nodes") {
            let record: NodeRecord = from_json("a registration", kv.value())?;
            if record.node != node || check_name("host", &record.hostname).is_err() {
                continue;
            }
            nodes.insert(
                node.to_string(),
                NodeStatus {
                    node: node.to_string(),
                    hostname: record.hostname,
                    approved: match &latest {
                        Some(g) => g.member(node).is_some(),
                        None => members.iter().any(|m| m.node == node),
                    },
                    alive: false,
                    generation: 0,
                    behind: latest_number > 0,
                    failing: Vec::new(),
                    warnings: 0,
                    applied_at: None,
                    updated_at: None,
                    error: None,
                },
            );
        } else if let Some(node) = named("alive") {
            alive.insert(node.to_string());
        } else if let Some(node) = named("status")
            && let Ok(record) = from_json::<StatusRecord>("a status", kv.value())
        {
            statuses.insert(node.to_string(), record);
        }
    }
    if problem.is_some() && config.role == FleetRole::Node {
        latest_number = statuses.values().map(|r| r.generation).max().unwrap_or(0);
    }
    for (node, s) in nodes.iter_mut() {
        s.alive = alive.contains(node);
        if let Some(r) = statuses.remove(node) {
            s.generation = r.generation;
            s.behind = r.generation < latest_number;
            s.failing = r.failing;
            s.warnings = r.warnings;
            s.applied_at = r.applied_at;
            s.updated_at = Some(r.updated_at);
            s.error = r.error;
        }
    }
    Ok(StatusReport {
        latest: latest_number,
        problem,
        nodes: nodes.into_values().collect(),
    })
}
