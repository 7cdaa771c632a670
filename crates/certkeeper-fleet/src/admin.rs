//! The administrator's commands (`fleet init|approve|remove|publish|diff|status`) and a
//! front-end's `fleet join`. Each reads or writes etcd through [`Connection`] and
//! records what it decided in the home.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use certkeeper_store::{FleetConfig, FleetEntry, FleetMember, FleetRole, FleetState, Home};
use etcd_client::{Client, Compare, CompareOp, GetOptions, Txn, TxnOp};
use serde::Serialize;

use crate::crypto::{self, AdminKey};
use crate::error::FleetError;
use crate::etcd::{
    Connection, EnvironmentRecord, Layout, MAX_REQUEST, NodeRecord, StatusRecord, check_name,
    from_json, is_host_name, now, shown, to_json,
};
use crate::generation::{FORMAT, Generation, Member, encode_keys};

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

/// Checks `--etcd-cert REF` (a certificate with its key in this home) and returns the
/// REF, kept as given: a renewed certificate imported under the same name is used from
/// then on, and every certificate the REF names stays out of publishes.
fn check_etcd_cert(home: &Home, reference: &str) -> Result<String, FleetError> {
    if reference.trim_start().starts_with("subject:") {
        return Err(FleetError::Invalid(format!(
            "--etcd-cert {reference}: name the certificate by its friendly name or thumbprint \
             (a subject: search could keep other certificates out of publishes)"
        )));
    }
    let entry = home.resolve_current(reference, now())?;
    if !entry.has_key {
        return Err(FleetError::Invalid(format!(
            "--etcd-cert {reference}: {} has no private key in this home",
            entry.subject
        )));
    }
    Ok(reference.to_string())
}

/// This home's environment, reached: its record, etcd connected, the environment
/// record on etcd checked against the administrator key this home knows.
struct Environment {
    config: FleetConfig,
    conn: Connection,
    client: Client,
    layout: Layout,
}

impl Environment {
    async fn open(home: &Home, role: Option<FleetRole>) -> Result<Environment, FleetError> {
        let config = config(home, role)?;
        let conn = Connection::for_home(home, &config)?;
        let mut client = conn.connect().await?;
        check_environment(&mut client, &conn, &config).await?;
        let layout = Layout::new(&config.env);
        Ok(Environment {
            config,
            conn,
            client,
            layout,
        })
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
    let etcd_cert = etcd_cert.map(|r| check_etcd_cert(home, r)).transpose()?;
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
    let etcd_cert = opts
        .etcd_cert
        .map(|r| check_etcd_cert(home, r))
        .transpose()?;
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
    let Environment {
        config,
        conn,
        mut client,
        layout,
    } = Environment::open(home, Some(FleetRole::Admin)).await?;
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
    if record.node != node || !is_host_name(&record.hostname) {
        return Err(FleetError::NotApproved(format!(
            "the registration of {node} on etcd is not one fleet join writes: it was not approved"
        )));
    }
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

/// `fleet remove NODE`: takes a front-end out; its registration, status and liveness
/// go from etcd, and the next publish seals nothing to it. Whether it had been
/// approved, and whether it was known.
pub async fn remove(home: &Home, node: &str) -> Result<(bool, bool), FleetError> {
    check_name("node", node)?;
    let Environment {
        conn,
        mut client,
        layout,
        ..
    } = Environment::open(home, Some(FleetRole::Admin)).await?;
    let approved = home.fleet_unapprove(node)?;
    let mut known = approved;
    for key in [layout.node(node), layout.status(node), layout.alive(node)] {
        let deleted = client.delete(key, None).await.map_err(|e| conn.error(&e))?;
        known |= deleted.deleted() > 0;
    }
    Ok((approved, known))
}

/// The generation on etcd now: the key's mod revision (0 when there is none yet), and
/// the generation read and verified, or why it is not usable (altered, unsigned,
/// another environment's).
pub struct Current {
    /// The generation key's mod revision.
    pub revision: i64,
    /// The verified generation, if there is one.
    pub generation: Option<Generation>,
    /// Why the value on etcd is not a generation of this environment, if it is not.
    pub problem: Option<FleetError>,
}

/// Reads [`Current`].
pub async fn current(
    client: &mut Client,
    conn: &Connection,
    config: &FleetConfig,
) -> Result<Current, FleetError> {
    let layout = Layout::new(&config.env);
    let got = client
        .get(layout.generation(), None)
        .await
        .map_err(|e| conn.error(&e))?;
    let Some(kv) = got.kvs().first() else {
        return Ok(Current {
            revision: 0,
            generation: None,
            problem: None,
        });
    };
    let (generation, problem) = match Generation::verify(kv.value(), &config.admin_key, &config.env)
    {
        Ok(received) => (Some(received.generation), None),
        Err(e) => (None, Some(e)),
    };
    Ok(Current {
        revision: kv.mod_revision(),
        generation,
        problem,
    })
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
/// never overwrite each other silently). Front-ends no longer approved are simply left
/// out of it.
pub async fn publish(home: &Home, hostname: &str) -> Result<Published, FleetError> {
    let Environment {
        config,
        conn,
        mut client,
        layout,
    } = Environment::open(home, Some(FleetRole::Admin)).await?;
    let admin = AdminKey::from_pkcs8(&home.fleet_secret(&config)?)?;
    // An unusable value on etcd (altered, unsigned) is replaced: publishing again is
    // how an administrator repairs it.
    let found = current(&mut client, &conn, &config).await?;
    let revision = found.revision;
    let previous = found.generation;
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
    let mut sealed = BTreeMap::new();
    for m in &members {
        let bundle = crypto::seal(&m.public_key, &config.env, &m.node, number, &plain)?;
        bundles.insert(m.node.clone(), crypto::sha256_hex(&bundle));
        sealed.insert(m.node.clone(), bundle);
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
    let envelope = generation.sign(&admin, &sealed)?;
    let bytes = envelope.len();
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
    let ops = vec![TxnOp::put(layout.generation(), envelope, None)];
    let txn = Txn::new()
        .when([Compare::mod_revision(
            layout.generation(),
            CompareOp::Equal,
            revision,
        )])
        .and_then(ops);
    let done = client.txn(txn).await.map_err(|e| conn.error(&e))?;
    if !done.succeeded() {
        let now_there = current(&mut client, &conn, &config).await?.generation;
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
    let thumbprint = |e: &FleetEntry| e.thumbprint.clone();
    changes(
        "certificate",
        &keyed(&before.entries, thumbprint),
        &keyed(&after.entries, thumbprint),
        |_, e| describe_entry(e),
        |_| String::new(),
        |o, e| entry_changes(o, e),
        &mut out,
    );
    let name = |b: &certkeeper_store::Binding| b.name.clone();
    changes(
        "binding",
        &keyed(&before.bindings, name),
        &keyed(&after.bindings, name),
        |name, _| name.to_string(),
        |b| b.upstream.clone(),
        |o, b| {
            format!("{o:?} -> {b:?}")
                .replace("Binding ", "")
                .chars()
                .take(400)
                .collect()
        },
        &mut out,
    );
    changes(
        "setting",
        &before.settings,
        &after.settings,
        |name, _| name.to_string(),
        Clone::clone,
        |a, b| format!("{a} -> {b}"),
        &mut out,
    );
    changes(
        "front-end",
        &keyed(before_members, Clone::clone),
        &keyed(after_members, Clone::clone),
        |name, _| name.to_string(),
        |_| String::new(),
        |_, _| String::new(),
        &mut out,
    );
    out
}

/// Items by a key of theirs.
fn keyed<T>(items: &[T], key: impl Fn(&T) -> String) -> BTreeMap<String, &T> {
    items.iter().map(|item| (key(item), item)).collect()
}

/// The changes between two keyed collections of one `kind`: `+` and `~` in key
/// order, then `-`.
fn changes<T: PartialEq>(
    kind: &'static str,
    before: &BTreeMap<String, T>,
    after: &BTreeMap<String, T>,
    name: impl Fn(&str, &T) -> String,
    added: impl Fn(&T) -> String,
    changed: impl Fn(&T, &T) -> String,
    out: &mut Vec<Change>,
) {
    for (key, new) in after {
        match before.get(key) {
            None => out.push(Change {
                change: "+",
                kind,
                name: name(key, new),
                detail: added(new),
            }),
            Some(old) if old != new => out.push(Change {
                change: "~",
                kind,
                name: name(key, new),
                detail: changed(old, new),
            }),
            Some(_) => {}
        }
    }
    for (key, old) in before {
        if !after.contains_key(key) {
            out.push(Change {
                change: "-",
                kind,
                name: name(key, old),
                detail: String::new(),
            });
        }
    }
}

/// `fleet diff`: what a publish would change, against the generation on etcd.
pub async fn diff(home: &Home) -> Result<(u64, Vec<Change>), FleetError> {
    let Environment {
        config,
        conn,
        mut client,
        ..
    } = Environment::open(home, Some(FleetRole::Admin)).await?;
    let found = current(&mut client, &conn, &config).await?;
    if let Some(problem) = found.problem {
        return Err(problem);
    }
    let previous = found.generation;
    if let Some(g) = &previous
        && g.generation < config.generation
    {
        return Err(FleetError::Tampered(format!(
            "etcd holds generation {}, but this home published {}: etcd was rolled back (a \
             restored backup?); publish again to put the current state back",
            g.generation, config.generation
        )));
    }
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
    let Environment {
        config,
        conn,
        mut client,
        layout,
    } = Environment::open(home, None).await?;
    let found = current(&mut client, &conn, &config).await?;
    let mut problem = found.problem.map(|e| e.to_string());
    let latest = found.generation;
    let mut latest_number = latest.as_ref().map_or(0, |g| g.generation);
    if config.role == FleetRole::Admin && latest_number < config.generation {
        if problem.is_none() {
            problem = Some(format!(
                "etcd holds generation {latest_number}, but this home published {}: etcd was \
                 rolled back (a restored backup?); publish again",
                config.generation
            ));
        }
        latest_number = config.generation;
    }
    // The front-ends: those registered on etcd and, on the administrator's machine,
    // every approved one (a registration deleted on etcd does not hide a front-end).
    let members = if config.role == FleetRole::Admin {
        home.fleet_members()?
    } else {
        Vec::new()
    };
    let alive = node_names(&mut client, &conn, &layout, "alive").await?;
    let mut all: BTreeSet<String> = members.iter().map(|m| m.node.clone()).collect();
    all.extend(node_names(&mut client, &conn, &layout, "nodes").await?);
    let mut nodes = Vec::new();
    for node in all {
        let approved = if config.role == FleetRole::Admin {
            members.iter().any(|m| m.node == node)
        } else {
            latest.as_ref().is_some_and(|g| g.member(&node).is_some())
        };
        let mut status = NodeStatus {
            node: node.clone(),
            hostname: "-".into(),
            approved,
            alive: alive.contains(&node),
            generation: 0,
            behind: latest_number > 0,
            failing: Vec::new(),
            warnings: 0,
            applied_at: None,
            updated_at: None,
            error: None,
        };
        let registration = client
            .get(layout.node(&node), None)
            .await
            .map_err(|e| conn.error(&e))?;
        match registration.kvs().first() {
            None => status.error = Some("its registration is missing from etcd".into()),
            Some(kv) => match from_json::<NodeRecord>("its registration", kv.value()) {
                Ok(r) if r.node == node && is_host_name(&r.hostname) => {
                    status.hostname = r.hostname;
                }
                _ => status.error = Some("its registration on etcd is unreadable".into()),
            },
        }
        let report = client
            .get(layout.status(&node), None)
            .await
            .map_err(|e| conn.error(&e))?;
        if let Some(r) = report
            .kvs()
            .first()
            .and_then(|kv| from_json::<StatusRecord>("a status", kv.value()).ok())
        {
            status.generation = r.generation;
            status.behind = r.generation < latest_number;
            status.failing = r.failing.iter().take(50).map(|f| shown(f, 300)).collect();
            status.warnings = r.warnings;
            status.applied_at = r.applied_at;
            status.updated_at = Some(r.updated_at);
            status.error = status.error.or(r.error.as_deref().map(|e| shown(e, 300)));
        }
        nodes.push(status);
    }
    if problem.is_some() && config.role == FleetRole::Node {
        latest_number = nodes.iter().map(|n| n.generation).max().unwrap_or(0);
    }
    Ok(StatusReport {
        latest: latest_number,
        problem,
        nodes,
    })
}

/// The node names of the keys under `kind/` (`nodes`, `alive`): only those that are
/// node names (etcd may hold anything), read without their values.
async fn node_names(
    client: &mut Client,
    conn: &Connection,
    layout: &Layout,
    kind: &str,
) -> Result<BTreeSet<String>, FleetError> {
    let prefix = format!("{}{kind}/", layout.prefix());
    let got = client
        .get(
            prefix,
            Some(GetOptions::new().with_prefix().with_keys_only()),
        )
        .await
        .map_err(|e| conn.error(&e))?;
    Ok(got
        .kvs()
        .iter()
        .filter_map(|kv| {
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            layout
                .node_of(kind, &key)
                .filter(|n| check_name("node", n).is_ok())
                .map(str::to_string)
        })
        .collect())
}
