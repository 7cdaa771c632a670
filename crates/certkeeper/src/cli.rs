//! The command line, defined once: `--help`, the man page and shell completions are
//! all generated from these definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::password::PasswordArgs;

/// certkeeper: client certificates for mutual-TLS calls to partners' web services.
///
/// One store of certificates and keys per machine (the "home"), imported from any
/// .pfx/.p12, .p7b, PEM or DER file, with the certification path checked, private
/// keys encrypted at rest, and the public certificate exported under an agreed name.
///
/// Exit codes: 0 ok; 1 a check found problems; 2 usage or input error (also: disk
/// full); 3 not found or ambiguous; 4 permission denied (also: read-only home,
/// non-exportable key); 5 agent not reachable; 6 etcd not reachable (fleet).
#[derive(Debug, Parser)]
#[command(
    name = "certkeeper",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for
    /// root, else $XDG_DATA_HOME/certkeeper].
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// Print one JSON document on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the home (idempotent): database, master key (mode 0600), settings.
    #[command(after_help = "Example:\n  certkeeper init --home /var/lib/certkeeper")]
    Init,

    /// Import certificates and keys from PEM, DER, PKCS#7 (.p7b) or PKCS#12 (.pfx) files.
    ///
    /// The format is recognised from the content, not the file name. With the default
    /// `--store auto` each certificate goes where its type says: with its private key to
    /// personal, a self-signed CA to root, another CA to intermediate, anything else to
    /// other. Importing the same certificate again changes nothing and keeps its key
    /// permissions. Each file is one transaction: on any error nothing of it is written.
    #[command(after_help = "Examples:\n  \
        certkeeper import partner.pfx --password-env PFX_PASSWORD --name partner\n  \
        certkeeper import issuing-ca.cer --store intermediate\n  \
        certkeeper import chain.p7b --no-roots")]
    Import(ImportArgs),

    /// List entries: store, name, subject, expiry, whether the key is present.
    ///
    /// Printed as they are read, whatever the size of the home.
    #[command(
        after_help = "Examples:\n  certkeeper list\n  certkeeper list --store personal --json\n  certkeeper list --expiring 30\n  certkeeper list --search partner"
    )]
    List {
        /// Only this store.
        #[arg(long, value_enum)]
        store: Option<StoreArg>,
        /// Only certificates that expire within this many days (or have expired).
        #[arg(long, value_name = "DAYS")]
        expiring: Option<u32>,
        /// Only certificates with a friendly name, export name, or "Issued to" name (a
        /// subject CN or DNS name, any case) that begins with TEXT.
        #[arg(long, value_name = "TEXT")]
        search: Option<String>,
    },

    /// Show one certificate's details, as the Windows certificate dialog does.
    #[command(
        after_help = "Examples:\n  certkeeper show partner\n  certkeeper show 3f2a9c1b --json\n  certkeeper show 'subject:client.example'"
    )]
    Show {
        /// The entry: thumbprint (or ≥ 8-digit prefix), friendly name, export name, or subject:TEXT.
        #[arg(value_name = "REF")]
        reference: String,
        /// The agent's socket, asked when this user cannot open the home [env:
        /// CERTKEEPER_SOCKET].
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
    },

    /// Show the certification path (root first) and whether it is valid, with the fix.
    ///
    /// Exit 0 when the path is valid, 1 when it is not.
    #[command(after_help = "Examples:\n  \
        certkeeper path partner\n  \
        certkeeper path partner --at 2027-06-01 --json\n  \
        certkeeper path 'subject:api.partner.example' --purpose server-auth")]
    Path {
        /// The entry.
        #[arg(value_name = "REF")]
        reference: String,
        /// Validate at this time instead of now (2027-01-01 or RFC 3339).
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// What the certificate must be good for.
        #[arg(long, value_enum, default_value = "client-auth")]
        purpose: PurposeArg,
        /// The agent's socket, asked when this user cannot open the home [env:
        /// CERTKEEPER_SOCKET].
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
    },

    /// Move an entry to another store (the MMC's drag between folders).
    #[command(after_help = "Example:\n  certkeeper move 'subject:Example Root' --to root")]
    Move {
        /// The entry.
        #[arg(value_name = "REF")]
        reference: String,
        /// The store to move it to.
        #[arg(long, value_enum)]
        to: StoreArg,
    },

    /// Delete an entry, with its private key and key permissions.
    #[command(after_help = "Example:\n  certkeeper remove 3f2a9c1b")]
    Remove {
        /// The entry.
        #[arg(value_name = "REF")]
        reference: String,
    },

    /// Export a certificate: public part as DER by default; PEM, PKCS#7, or .pfx with the key.
    ///
    /// With `--as NAME` the DER certificate is written to `<export_dir>/NAME` (mode 0644)
    /// and NAME is recorded as the entry's export name: the agreed name (partner.cer)
    /// that is the same on every front-end. The export directory is by default
    /// `<home>-exports` beside the home (e.g. /var/lib/certkeeper-exports), readable by
    /// the applications; it must not be a symbolic link nor writable by group or others.
    /// A file there that holds another certificate is replaced only with --force.
    #[command(after_help = "Examples:\n  \
        certkeeper export partner --as partner.cer\n  \
        certkeeper export partner --format pem --chain --out partner-chain.pem\n  \
        certkeeper export partner --format pfx --password-env PFX_PASSWORD --out partner.pfx")]
    Export(ExportArgs),

    /// Allow users or groups to use an entry's private key (the MMC's "Manage private keys").
    ///
    /// Principals: user:NAME, group:NAME, uid:N, gid:N. Names must exist on this machine.
    /// Root and the home's owner may always use every key.
    #[command(after_help = "Example:\n  certkeeper grant partner user:www-data group:app")]
    Grant {
        /// The entry.
        #[arg(value_name = "REF")]
        reference: String,
        /// Who may use the key.
        #[arg(required = true, value_name = "PRINCIPAL")]
        principals: Vec<String>,
    },

    /// Take back the use of an entry's private key.
    #[command(after_help = "Example:\n  certkeeper revoke partner user:www-data")]
    Revoke {
        /// The entry.
        #[arg(value_name = "REF")]
        reference: String,
        /// Whose permission ends.
        #[arg(required = true, value_name = "PRINCIPAL")]
        principals: Vec<String>,
    },

    /// Show who may use an entry's private key.
    #[command(after_help = "Example:\n  certkeeper acl partner")]
    Acl {
        /// The entry.
        #[arg(value_name = "REF")]
        reference: String,
    },

    /// Run the key isolation agent (foreground): the one process that uses private keys.
    ///
    /// Other users' commands (keycheck, request) and applications reach keys only
    /// through its socket; it allows each use to root, the home's owner and the key's
    /// ACL, and writes every use and denial to <home>/audit.log. A systemd unit is in
    /// packaging/certkeeper-agent.service.
    #[command(
        after_help = "Example:\n  certkeeper agent --home /var/lib/certkeeper --socket /run/certkeeper/agent.sock"
    )]
    Agent {
        /// The socket [env: CERTKEEPER_SOCKET; default: /run/certkeeper/agent.sock for a
        /// root-owned home, else $XDG_RUNTIME_DIR/certkeeper/agent.sock].
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
    },

    /// Check, as the calling user, that the agent lets you sign with a key.
    ///
    /// Signs a fresh random challenge through the agent and verifies the signature with
    /// the certificate's public key. Exit 0: this user can use the key; 4: denied; 5:
    /// the agent is not reachable.
    #[command(after_help = "Example:\n  sudo -u www-data certkeeper keycheck partner")]
    Keycheck {
        /// The entry.
        #[arg(value_name = "REF")]
        reference: String,
        /// The agent's socket [env: CERTKEEPER_SOCKET].
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
    },

    /// Bind an upstream web service to a client certificate; with --listen the agent
    /// relays plain HTTP from that loopback address (or Unix socket) to the upstream
    /// over mutual TLS.
    ///
    /// Applications then call http://127.0.0.1:PORT/path (or curl --unix-socket PATH)
    /// and need no TLS code. The certificate is resolved at each new upstream
    /// connection, so a renewed certificate imported under the same name is used
    /// without a restart. The agent asks the kernel which user each application
    /// connection belongs to and serves only the users the key's ACL admits (narrowed
    /// further with --allow); the others get 403 and are audited.
    #[command(after_help = "Examples:\n  \
        certkeeper bind partner-api --cert partner --upstream https://api.partner.example/soap --listen 127.0.0.1:8443\n  \
        certkeeper bind partner-api --cert partner --upstream https://api.partner.example/soap --listen unix:/run/certkeeper/partner.sock --allow user:appsvc\n  \
        certkeeper bind partner-api --cert partner --upstream https://api.partner.example/soap --listen 127.0.0.1:8443 --proxy http://certkeeper@proxy.corp:3128\n  \
        certkeeper bind old-partner --cert partner --upstream https://legacy.partner.example/ws --listen 127.0.0.1:8444 --legacy-tls")]
    Bind(Box<BindArgs>),

    /// Delete a binding (the agent stops its listener within a second).
    #[command(after_help = "Example:\n  certkeeper unbind partner-api")]
    Unbind {
        /// The binding's name.
        name: String,
    },

    /// List the bindings.
    #[command(after_help = "Example:\n  certkeeper bindings --json")]
    Bindings,

    /// Make one mutual-TLS request, curl-style; the key is used through the agent.
    ///
    /// The body goes to stdout; -i adds the response headers, -v shows the TLS version,
    /// cipher suite, the client certificate presented and the server's chain on stderr.
    /// With --json stdout holds one document: status, headers, body (base64 when
    /// body_base64 is true, i.e. the body is not UTF-8 text) and the TLS details.
    #[command(after_help = "Examples:\n  \
        certkeeper request https://api.partner.example/status --cert partner -v\n  \
        certkeeper request https://api.partner.example/soap --cert partner -d @order.xml --soap-action urn:submitOrder\n  \
        certkeeper request /status --binding partner-api\n  \
        HTTPS_PROXY=http://proxy.corp:3128 certkeeper request https://api.partner.example/status --cert partner\n  \
        certkeeper request https://api.partner.example/status --cert partner --proxy http://alice@proxy.corp:3128 --proxy-password-env PROXY_PASSWORD")]
    Request(Box<RequestArgs>),

    /// Check the usual causes of a failing client-certificate call, one line each.
    ///
    /// The agent runs and answers; each personal entry has its private key and it
    /// matches; the key ACL grants the configured service principals; the path is
    /// complete and the root trusted; validity and days left; clientAuth EKU; the
    /// export file holds this certificate; duplicates; each binding's certificate and
    /// path, and with --online its upstream's TLS handshake. Exit 1 if any check fails.
    #[command(
        after_help = "Examples:\n  certkeeper doctor\n  certkeeper doctor partner --online\n  certkeeper doctor --at 2027-06-01 --json"
    )]
    Doctor {
        /// Only this entry (and the bindings that use it).
        #[arg(value_name = "REF")]
        reference: Option<String>,
        /// Check as of this time (2027-01-01 or RFC 3339), e.g. ahead of an expiry.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// Also make a TLS handshake with each binding's upstream.
        #[arg(long)]
        online: bool,
        /// The agent's socket [env: CERTKEEPER_SOCKET].
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
        /// Instead: check every front-end of this home's environment (alive, on the
        /// latest generation, no failing checks), naming each that is not.
        #[arg(long, conflicts_with_all = ["reference", "at", "online"])]
        fleet: bool,
    },

    /// Keep an environment of many front-ends the same, through etcd.
    ///
    /// The administrator's home is the source of truth: `fleet publish` writes its
    /// certificates with their stores, private keys, key ACLs, export names, bindings
    /// and settings to etcd as one signed generation, with each private key sealed to
    /// every approved front-end's own key (never in clear on etcd). Each front-end's
    /// agent watches the environment and applies every new generation to its home in
    /// one transaction; with etcd down it serves from its home and catches up later.
    #[command(
        subcommand,
        after_help = "Examples (administrator, then each front-end, then the administrator):\n  \
        certkeeper fleet init --etcd https://etcd1:2379,https://etcd2:2379 --etcd-cert admin-etcd --env prod\n  \
        certkeeper fleet join --etcd https://etcd1:2379,https://etcd2:2379 --etcd-cert fe1-etcd --env prod\n  \
        certkeeper fleet approve fe1 --fingerprint 3f2a-91bc-...\n  \
        certkeeper fleet diff && certkeeper fleet publish\n  \
        certkeeper fleet status"
    )]
    Fleet(FleetCommand),

    /// Walk through everything on a temporary home: PKI, .pfx import, path, grant,
    /// export, agent, a local HTTPS service demanding a client certificate, a binding.
    ///
    /// Needs no servers and leaves nothing behind. Exit 0 only if every step worked.
    #[command(after_help = "Example:\n  certkeeper demo")]
    Demo,

    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Example:\n  certkeeper completions bash > /etc/bash_completion.d/certkeeper"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },

    /// Print the man page (roff).
    #[command(after_help = "Example:\n  certkeeper man > /usr/local/share/man/man1/certkeeper.1")]
    Man,

    /// Show or change settings: export_dir, service_principals, expiry_warning_days,
    /// upstream_timeout, client_timeout, egress_proxy, egress_no_proxy; store
    /// egress_proxy_password.
    ///
    /// upstream_timeout: seconds a binding waits for the partner's answer (and between
    /// parts of its body) before a 504; client_timeout: seconds it waits for an
    /// application (a whole request head, more of a request body: 408; the next
    /// request on a kept-alive connection: closed). Both default to 60.
    ///
    /// egress_proxy: the forward proxy (http://[user@]host:port) the bindings reach
    /// their upstreams through when they have no --proxy of their own; egress_no_proxy:
    /// the hosts they reach directly (as NO_PROXY). The agent reads these, not its own
    /// environment. egress_proxy_password: the proxy user's password, read from
    /// --password-env and kept sealed with the home's master key, for the proxy URL of
    /// --proxy or else of egress_proxy; it is never shown.
    ///
    /// export_dir: where `export --as` writes the public certificates, readable by other
    /// users (directory 0755, files 0644). Default: `<home>-exports` beside the home, e.g.
    /// /var/lib/certkeeper-exports for the home /var/lib/certkeeper (the home itself is
    /// 0700). It must be owned by the home's owner or root, not a symbolic link, and not
    /// writable by group or others.
    #[command(after_help = "Examples:\n  \
        certkeeper config\n  \
        certkeeper config export_dir /srv/certificates\n  \
        certkeeper config service_principals user:www-data,group:app\n  \
        certkeeper config upstream_timeout 120   (seconds a binding waits for the partner)\n  \
        certkeeper config client_timeout 30      (seconds it waits for an application)\n  \
        certkeeper config egress_proxy http://certkeeper@proxy.corp:3128\n  \
        certkeeper config egress_no_proxy .corp.example,10.1.2.3\n  \
        certkeeper config egress_proxy_password --password-env PROXY_PASSWORD")]
    Config {
        /// The setting.
        key: Option<String>,
        /// Its new value.
        value: Option<String>,
        /// egress_proxy_password only: read the password from this environment variable.
        #[arg(long, value_name = "VAR")]
        password_env: Option<String>,
        /// egress_proxy_password only: the proxy URL (with its user) the password is
        /// for (default: the egress_proxy setting).
        #[arg(long, value_name = "URL")]
        proxy: Option<String>,
    },
}

/// The `fleet` commands.
#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Create the environment on etcd, with this home as its administrator (the
    /// source of truth) and a new signing key in it.
    Init {
        /// etcd endpoints, comma-separated (https://HOST:PORT; http:// for tests).
        #[arg(long, value_name = "URLS")]
        etcd: String,
        /// The environment's name.
        #[arg(long, value_name = "NAME")]
        env: String,
        /// For https etcd: the client certificate (with its key in this home) presented
        /// to etcd; etcd's CA must be in the root store. It is never published.
        #[arg(long, value_name = "REF")]
        etcd_cert: Option<String>,
    },
    /// Register this front-end in an environment: makes its own key pair, pins the
    /// administrator's key, and prints the fingerprint to approve. Its agent then
    /// follows the environment.
    Join {
        /// etcd endpoints, comma-separated.
        #[arg(long, value_name = "URLS")]
        etcd: String,
        /// The environment's name.
        #[arg(long, value_name = "NAME")]
        env: String,
        /// This front-end's name (default: the host name).
        #[arg(long, value_name = "NAME")]
        node: Option<String>,
        /// For https etcd: this front-end's client certificate for etcd (REF).
        #[arg(long, value_name = "REF")]
        etcd_cert: Option<String>,
        /// Refuse the environment unless its administrator key has this fingerprint
        /// (what fleet init printed).
        #[arg(long, value_name = "FP")]
        admin_fingerprint: Option<String>,
        /// Serve the published bindings on this loopback address instead of theirs
        /// (several front-ends on one machine, e.g. 127.0.0.2).
        #[arg(long, value_name = "IP")]
        listen_host: Option<String>,
    },
    /// Admit a front-end that joined, after comparing the fingerprint it printed. It
    /// receives keys from the next publish on.
    Approve {
        /// The front-end's name.
        node: String,
        /// The fingerprint `fleet join` printed on it.
        #[arg(long, value_name = "FP")]
        fingerprint: String,
    },
    /// Take a front-end out: nothing published afterwards is sealed to it.
    Remove {
        /// The front-end's name.
        node: String,
    },
    /// Publish this home as the environment's next generation.
    Publish,
    /// Show what a publish would change, against the generation on etcd.
    Diff,
    /// Every front-end side by side: alive, generation, behind, failing checks.
    Status,
}

/// Arguments of `bind`.
#[derive(Debug, Args)]
pub struct BindArgs {
    /// The binding's name.
    pub name: String,
    /// The client certificate (a REF).
    #[arg(long, value_name = "REF")]
    pub cert: String,
    /// The upstream base URL (https://...).
    #[arg(long, value_name = "URL")]
    pub upstream: String,
    /// Where the agent relays from: a loopback address (127.0.0.1:PORT) or
    /// unix:/ABSOLUTE/PATH.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// How to verify the upstream: root (the home's root store), system, or a REF.
    #[arg(long, value_name = "CA", default_value = "root")]
    pub server_ca: String,
    /// Only these principals (user:NAME, group:NAME, uid:N, gid:N) may use the
    /// binding, among those the key's ACL admits (default: whom the ACL admits).
    #[arg(long, value_name = "PRINCIPAL", num_args = 1..)]
    pub allow: Vec<String>,
    /// Reach the upstream through this forward proxy (HTTP CONNECT):
    /// http://[user@]host:port. Default: the home's egress_proxy setting. The
    /// user's password is stored sealed with `certkeeper config
    /// egress_proxy_password --password-env VAR --proxy URL`.
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
    /// The upstream is on an old TLS stack: also accept TLS 1.0 and 1.1, RSA key
    /// exchange and CBC suites, and a server certificate that names its host only in
    /// its subject CN (no subjectAltName). The same trust anchors are used;
    /// `certkeeper doctor` warns about every binding that has it.
    #[arg(long)]
    pub legacy_tls: bool,
}

/// Arguments of `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Files to import.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Where certificates go.
    #[arg(long, value_enum, default_value = "auto")]
    pub store: ImportStoreArg,
    /// Friendly name for the certificate with the private key (or the only certificate).
    #[arg(long)]
    pub name: Option<String>,
    /// Do not add root CAs (they are listed as skipped).
    #[arg(long)]
    pub no_roots: bool,
    /// Mark the private keys non-exportable: `export --format pfx` will refuse them.
    #[arg(long)]
    pub non_exportable: bool,
    #[command(flatten)]
    pub password: PasswordArgs,
}

/// Arguments of `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The entry.
    #[arg(value_name = "REF")]
    pub reference: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "der")]
    pub format: ExportFormat,
    /// Where to write (default: standard output).
    #[arg(long, value_name = "PATH", conflicts_with = "as_name")]
    pub out: Option<PathBuf>,
    /// Include the issuing CAs found in the home (pem, p7b, pfx).
    #[arg(long)]
    pub chain: bool,
    /// Write the DER to <export_dir>/NAME and record NAME as the export name.
    #[arg(long = "as", value_name = "NAME")]
    pub as_name: Option<String>,
    /// With --as: replace a file that holds another certificate.
    #[arg(long, requires = "as_name")]
    pub force: bool,
    /// For pfx: 3DES and SHA-1 MAC, for Windows Server 2016 and older and Java 8.
    #[arg(long)]
    pub legacy: bool,
    #[command(flatten)]
    pub password: PasswordArgs,
}

/// A store name on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StoreArg {
    /// Certificates with their private key.
    Personal,
    /// Trusted root CAs.
    Root,
    /// Intermediate CAs.
    Intermediate,
    /// End-entity certificates without a key.
    Other,
    /// Explicitly distrusted.
    Disallowed,
}

/// `import --store`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ImportStoreArg {
    /// By certificate type.
    Auto,
    /// Certificates with their private key.
    Personal,
    /// Trusted root CAs.
    Root,
    /// Intermediate CAs.
    Intermediate,
    /// End-entity certificates without a key.
    Other,
    /// Explicitly distrusted.
    Disallowed,
}

/// `export --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// Binary certificate (.cer/.der), the Windows default.
    Der,
    /// Base-64 text (.pem/.crt).
    Pem,
    /// PKCS#7 certificate bundle (.p7b).
    P7b,
    /// PKCS#12 with the private key (.pfx); needs a password option.
    Pfx,
}

impl From<StoreArg> for certkeeper_store::StoreName {
    fn from(s: StoreArg) -> Self {
        use certkeeper_store::StoreName as S;
        match s {
            StoreArg::Personal => S::Personal,
            StoreArg::Root => S::Root,
            StoreArg::Intermediate => S::Intermediate,
            StoreArg::Other => S::Other,
            StoreArg::Disallowed => S::Disallowed,
        }
    }
}

/// `path --purpose`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PurposeArg {
    /// TLS client authentication (clientAuth EKU).
    ClientAuth,
    /// TLS server authentication (serverAuth EKU).
    ServerAuth,
    /// No extended key usage requirement.
    Any,
}

impl From<PurposeArg> for certkeeper_core::path::Purpose {
    fn from(p: PurposeArg) -> Self {
        match p {
            PurposeArg::ClientAuth => Self::ClientAuth,
            PurposeArg::ServerAuth => Self::ServerAuth,
            PurposeArg::Any => Self::Any,
        }
    }
}

/// Arguments of `request`.
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// The URL (https://...), or a path relative to --binding's upstream.
    pub url: String,
    /// The client certificate: a REF, or the certificate's file (PEM or DER) whose
    /// entry in the home is used.
    #[arg(long, value_name = "REF|FILE", conflicts_with = "binding")]
    pub cert: Option<String>,
    /// Use a binding's certificate, upstream and server trust.
    #[arg(long, value_name = "NAME")]
    pub binding: Option<String>,
    /// The method (default GET, or POST with -d).
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    pub method: Option<String>,
    /// A header, "Name: value" (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// The body, or @FILE to read it from a file.
    #[arg(short = 'd', long = "data", value_name = "DATA")]
    pub data: Option<String>,
    /// SOAP 1.1: POST with Content-Type text/xml and this SOAPAction.
    #[arg(long, value_name = "ACTION")]
    pub soap_action: Option<String>,
    /// SOAP 1.2: Content-Type application/soap+xml (with --soap-action as its action).
    #[arg(long)]
    pub soap12: bool,
    /// Print the response status line and headers before the body.
    #[arg(short = 'i', long)]
    pub include: bool,
    /// Show TLS details, the certificates and the exchange on stderr.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Exit 1 when the upstream answers with an HTTP error (400 or more).
    #[arg(short = 'f', long)]
    pub fail: bool,
    /// How to verify the server: root (the home's root store), system, a REF or a CA file.
    #[arg(long, value_name = "CA")]
    pub server_ca: Option<String>,
    /// Verify the server with the CA certificates in this file (as --server-ca FILE).
    #[arg(long, value_name = "FILE", conflicts_with = "server_ca")]
    pub cacert: Option<PathBuf>,
    /// Do not verify the server's certificate at all (says so loudly).
    #[arg(short = 'k', long)]
    pub insecure: bool,
    /// The partner is on an old TLS stack: also accept TLS 1.0 and 1.1, RSA key
    /// exchange and CBC suites, and a server certificate that names its host only in
    /// its subject CN. The same trust anchors are used. (A binding's --legacy-tls
    /// applies to request --binding too.)
    #[arg(long)]
    pub legacy_tls: bool,
    /// Write the body (and with -i the head) to this file instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Give up when the whole call takes longer than this (seconds, e.g. 30 or 2.5).
    #[arg(short = 'm', long = "max-time", value_name = "SECS", value_parser = seconds)]
    pub max_time: Option<std::time::Duration>,
    /// Give up when connecting (TCP and TLS) takes longer than this (seconds).
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    pub connect_timeout: Option<std::time::Duration>,
    /// No notes on stderr (such as the upstream's error status); errors are still shown.
    #[arg(short = 's', long)]
    pub silent: bool,
    /// The agent's socket [env: CERTKEEPER_SOCKET].
    #[arg(long, value_name = "PATH")]
    pub socket: Option<std::path::PathBuf>,
    /// Go through this forward proxy (HTTP CONNECT; the TLS session runs end to end
    /// through it): http://[user@]host[:port] (port 1080 by default), "" for none.
    /// Default, as curl: https_proxy, HTTPS_PROXY, all_proxy, ALL_PROXY (where, as
    /// with curl, http://user:password@host:port is accepted; never here).
    #[arg(short = 'x', long, value_name = "URL")]
    pub proxy: Option<String>,
    /// Hosts reached without the proxy, as NO_PROXY (default: no_proxy, NO_PROXY):
    /// comma-separated host names (which match their subdomains too), IP
    /// addresses and ranges (10.0.0.0/8), or * for all.
    #[arg(long, value_name = "LIST")]
    pub noproxy: Option<String>,
    /// The proxy user's password, from this environment variable (default: the one
    /// the home keeps for that proxy and user, for the home's owner).
    #[arg(long, value_name = "VAR")]
    pub proxy_password_env: Option<String>,
}

/// A positive number of seconds (`30`, `2.5`).
fn seconds(text: &str) -> Result<std::time::Duration, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs.is_finite() && secs < 1e9 => {
            Ok(std::time::Duration::from_secs_f64(secs))
        }
        _ => Err(format!("{text:?} is not a positive number of seconds")),
    }
}
