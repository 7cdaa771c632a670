//! Reaching an upstream through a forward proxy (HTTP CONNECT), as curl does with
//! `HTTPS_PROXY`: the proxy gets `CONNECT host:port`, answers 2xx, and from then on
//! the TCP stream carries the mutual-TLS session end to end (the proxy never sees
//! the client certificate or the key). Which hosts bypass the proxy follows curl's
//! `NO_PROXY`. The CONNECT exchange is written by hand and read strictly: the
//! answer's head is bounded, anything but 2xx is refused, and nothing of the proxy's
//! answer is passed on.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zeroize::Zeroizing;

/// The longest head of a proxy's answer to CONNECT that is read.
pub const MAX_HEAD: usize = 16 * 1024;
/// The port of a proxy URL that names none (curl's default).
pub const DEFAULT_PORT: u16 = 1080;

/// What went wrong with a proxy.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    /// The proxy URL cannot be used.
    #[error("proxy {url:?}: {why}")]
    BadUrl {
        /// The URL as given (without a password: those are refused before).
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// No TCP connection to the proxy.
    #[error("could not connect to the proxy {proxy}: {reason}")]
    Unreachable {
        /// "host:port" of the proxy.
        proxy: String,
        /// Why (refused, timed out, does not resolve...).
        reason: String,
    },
    /// The proxy answered CONNECT with something other than 2xx.
    #[error("the proxy {proxy} refused CONNECT {target}: {status} {reason}{hint}")]
    Refused {
        /// "host:port" of the proxy.
        proxy: String,
        /// "host:port" asked for.
        target: String,
        /// The proxy's status code.
        status: u16,
        /// Its reason phrase (printable ASCII, at most 80 characters).
        reason: String,
        /// What to do about a 407 (or 401).
        hint: &'static str,
    },
    /// The proxy closed the connection before its answer's head was complete.
    #[error("the proxy {proxy} closed the connection before answering CONNECT {target}")]
    Closed {
        /// "host:port" of the proxy.
        proxy: String,
        /// "host:port" asked for.
        target: String,
    },
    /// The answer is not HTTP, too long, or followed by bytes before the handshake.
    #[error("the proxy {proxy} answered CONNECT {target} wrongly: {why}")]
    Malformed {
        /// "host:port" of the proxy.
        proxy: String,
        /// "host:port" asked for.
        target: String,
        /// What is wrong.
        why: String,
    },
    /// The proxy did not answer in time.
    #[error("the proxy {proxy} did not answer CONNECT {target} within {} s", .limit.as_secs())]
    TimedOut {
        /// "host:port" of the proxy.
        proxy: String,
        /// "host:port" asked for.
        target: String,
        /// The time limit.
        limit: Duration,
    },
    /// Reading or writing the CONNECT exchange failed.
    #[error("the connection to the proxy {proxy} failed during CONNECT {target}: {source}")]
    Io {
        /// "host:port" of the proxy.
        proxy: String,
        /// "host:port" asked for.
        target: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A forward proxy: `http://[user@]host[:port]`, and the user's password.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    host: String,
    port: u16,
    user: Option<String>,
    password: Option<Zeroizing<String>>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password: this value ends up in identities and logs.
        f.debug_struct("Proxy")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "..."))
            .finish()
    }
}

impl fmt::Display for Proxy {
    /// "host:port", as messages name the proxy.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl Proxy {
    /// Reads a proxy URL as curl does: `http://` (or no scheme), a user name but
    /// never a password (those stay off command lines and out of the database in
    /// clear), a host and a port (1080 when none).
    pub fn parse(url: &str) -> Result<Proxy, TunnelError> {
        Self::parse_url(url, false)
    }

    /// [`Proxy::parse`] for a URL from the environment (`HTTPS_PROXY`), where curl
    /// users keep `user:password@`: the environment is the user's own, unlike a
    /// command line or the database, so the password is taken (into memory that
    /// zeroizes).
    pub fn parse_from_env(url: &str) -> Result<Proxy, TunnelError> {
        Self::parse_url(url, true)
    }

    fn parse_url(url: &str, allow_password: bool) -> Result<Proxy, TunnelError> {
        let bad = |why: &str| TunnelError::BadUrl {
            url: redact(url),
            why: why.to_string(),
        };
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) => {
                return Err(bad(&format!(
                    "{scheme}:// proxies are not supported (use an http:// proxy: CONNECT carries the TLS session end to end)"
                )));
            }
            None => url,
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err(bad("a proxy URL has no path"));
        }
        let mut password = None;
        let (user, hostport) = match rest.rsplit_once('@') {
            Some((userinfo, hostport)) if allow_password && userinfo.contains(':') => {
                let (user, secret) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                if user.is_empty() {
                    return Err(bad("empty user name before ':'"));
                }
                password = Some(Zeroizing::new(
                    percent_decode(secret).map_err(|_| bad("bad %-escape in the password"))?,
                ));
                (Some(percent_decode(user).map_err(|w| bad(&w))?), hostport)
            }
            Some((userinfo, hostport)) => {
                if userinfo.contains(':') {
                    return Err(bad(
                        "a password in the proxy URL would be seen by every local user: give only the user, and the password with --proxy-password-env VAR or `certkeeper config egress_proxy_password --password-env VAR`",
                    ));
                }
                if userinfo.is_empty() {
                    return Err(bad("empty user name before '@'"));
                }
                (
                    Some(percent_decode(userinfo).map_err(|w| bad(&w))?),
                    hostport,
                )
            }
            None => (None, rest),
        };
        let (host, port) = split_host_port(hostport).map_err(|w| bad(&w))?;
        Ok(Proxy {
            host,
            port: port.unwrap_or(DEFAULT_PORT),
            user,
            password,
        })
    }

    /// The user named in the URL, if any.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// This proxy with `password` for its user (Basic authentication).
    #[must_use]
    pub fn with_password(mut self, password: Zeroizing<String>) -> Proxy {
        self.password = Some(password);
        self
    }

    /// Whether a password is known for the user.
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// The name its password is kept under in the home ("proxy:user@host:port"),
    /// when the URL names a user.
    pub fn secret_name(&self) -> Option<String> {
        self.user
            .as_deref()
            .map(|user| certkeeper_store::bindings::proxy_secret_name(user, &self.to_string()))
    }

    /// Opens a TCP connection to the proxy and a tunnel through it to
    /// `host:port` (`host` as in a URL), each within `limit`.
    pub async fn open(
        &self,
        host: &str,
        port: u16,
        limit: Duration,
    ) -> Result<TcpStream, TunnelError> {
        let proxy = self.to_string();
        let target = format!("{host}:{port}");
        let bare = self.host.trim_start_matches('[').trim_end_matches(']');
        let tcp = match tokio::time::timeout(limit, TcpStream::connect((bare, self.port))).await {
            Err(_) => {
                return Err(TunnelError::Unreachable {
                    proxy,
                    reason: format!("no connection within {} s", limit.as_secs()),
                });
            }
            Ok(Err(e)) => {
                return Err(TunnelError::Unreachable {
                    reason: unreachable_reason(&e),
                    proxy,
                });
            }
            Ok(Ok(tcp)) => tcp,
        };
        let _ = tcp.set_nodelay(true);
        let mut tcp = tcp;
        match tokio::time::timeout(limit, self.handshake(&mut tcp, &target)).await {
            Ok(result) => result.map(|()| tcp),
            Err(_) => Err(TunnelError::TimedOut {
                proxy,
                target,
                limit,
            }),
        }
    }

    /// Writes the CONNECT request and reads the proxy's answer up to the end of its
    /// head, which must be all the proxy sent.
    async fn handshake(&self, tcp: &mut TcpStream, target: &str) -> Result<(), TunnelError> {
        let io = |source| TunnelError::Io {
            proxy: self.to_string(),
            target: target.to_string(),
            source,
        };
        let request = self.connect_request(target);
        tcp.write_all(&request).await.map_err(io)?;
        drop(request);
        let mut head = Vec::with_capacity(1024);
        let mut chunk = [0u8; 1024];
        loop {
            let n = tcp.read(&mut chunk).await.map_err(io)?;
            if n == 0 {
                return Err(TunnelError::Closed {
                    proxy: self.to_string(),
                    target: target.to_string(),
                });
            }
            head.extend_from_slice(&chunk[..n]);
            if let Some(end) = self.read_answer(&head, target)? {
                if end != head.len() {
                    return Err(self.malformed(
                        target,
                        "it sent data after its answer, before the TLS handshake",
                    ));
                }
                return Ok(());
            }
            if head.len() >= MAX_HEAD {
                return Err(self.malformed(
                    target,
                    &format!("its answer's head is longer than {MAX_HEAD} bytes"),
                ));
            }
        }
    }

    /// `CONNECT host:port HTTP/1.1`, `Host`, and `Proxy-Authorization` when there is
    /// a user; in memory that zeroizes, since it may hold the password.
    fn connect_request(&self, target: &str) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(256));
        out.extend_from_slice(b"CONNECT ");
        out.extend_from_slice(target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        out.extend_from_slice(target.as_bytes());
        out.extend_from_slice(b"\r\n");
        if let (Some(user), Some(password)) = (&self.user, &self.password) {
            let mut credentials = Zeroizing::new(Vec::with_capacity(64));
            credentials.extend_from_slice(user.as_bytes());
            credentials.push(b':');
            credentials.extend_from_slice(password.as_bytes());
            let encoded =
                Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&credentials[..]));
            out.extend_from_slice(b"Proxy-Authorization: Basic ");
            out.extend_from_slice(encoded.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    /// The length of the answer's head once it is complete and 2xx; `None` while
    /// incomplete.
    fn read_answer(&self, bytes: &[u8], target: &str) -> Result<Option<usize>, TunnelError> {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut answer = httparse::Response::new(&mut headers);
        let end = match answer.parse(bytes) {
            Ok(httparse::Status::Complete(end)) => end,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(self.malformed(target, "its answer has more than 64 header fields"));
            }
            Err(e) => return Err(self.malformed(target, &format!("not an HTTP answer ({e})"))),
        };
        let status = answer.code.unwrap_or(0);
        if !(200..300).contains(&status) {
            let reason: String = answer
                .reason
                .unwrap_or("")
                .chars()
                .filter(|c| c.is_ascii_graphic() || *c == ' ')
                .take(80)
                .collect();
            return Err(TunnelError::Refused {
                proxy: self.to_string(),
                target: target.to_string(),
                status,
                reason,
                // Some proxies (tinyproxy) ask for credentials with 401, not 407.
                hint: match (status, &self.user, &self.password) {
                    (401 | 407, None, _) => {
                        " (the proxy wants a user: give it in the proxy URL, http://user@host:port, and its password)"
                    }
                    (401 | 407, Some(_), None) => {
                        " (no password for the proxy's user: store it with `certkeeper config egress_proxy_password --password-env VAR`, or give --proxy-password-env VAR to request)"
                    }
                    (401 | 407, Some(_), Some(_)) => {
                        " (the proxy did not accept the user and password)"
                    }
                    _ => "",
                },
            });
        }
        Ok(Some(end))
    }

    fn malformed(&self, target: &str, why: &str) -> TunnelError {
        TunnelError::Malformed {
            proxy: self.to_string(),
            target: target.to_string(),
            why: why.to_string(),
        }
    }
}

/// The URL with any password in it replaced by `***`, for messages.
fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").map_or(("", url), |(s, r)| (s, r));
    let Some((userinfo, hostport)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
    let sep = if scheme.is_empty() { "" } else { "://" };
    let hidden = if userinfo.contains(':') { ":***" } else { "" };
    format!("{scheme}{sep}{user}{hidden}@{hostport}")
}

/// Why a TCP connection to the proxy failed, in words.
fn unreachable_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => {
            "connection refused (nothing listens there: is the proxy down?)".to_string()
        }
        std::io::ErrorKind::TimedOut => "timed out".to_string(),
        _ if e.to_string().contains("lookup") => "the host name does not resolve".to_string(),
        _ => e.to_string(),
    }
}

/// "host", "host:port", "[v6]", "[v6]:port" -> host (brackets kept) and port.
fn split_host_port(hostport: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or_else(|| "unclosed '[' in the host".to_string())?;
        v6.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("[{v6}] is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("text after ']'")?),
        };
        (format!("[{v6}]"), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (hostport.to_string(), None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err("no host".to_string());
    }
    if !host.starts_with('[')
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
    {
        return Err(format!("{host:?} is not a host name"));
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("{p:?} is not a port"))?,
        ),
    };
    Ok((host, port))
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "bad %-escape in the user name".to_string())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the user name is not UTF-8".to_string())
}

/// The hosts reached directly, as curl reads `NO_PROXY`: a comma (or space)
/// separated list of `*` (every host), host names that match themselves and their
/// subdomains (a leading dot is allowed), IP addresses that match exactly, and
/// address ranges (`10.0.0.0/8`, as curl 7.86 and later). Ports in entries are
/// ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy {
    all: bool,
    names: Vec<String>,
    /// Addresses with a prefix length (`10.0.0.0/8`; a bare address is /32 or /128).
    addresses: Vec<(IpAddr, u8)>,
}

impl NoProxy {
    /// Reads a list; entries that are empty are skipped.
    pub fn parse(list: &str) -> NoProxy {
        let mut out = NoProxy::default();
        for entry in list.split([',', ' ', '\t']).map(str::trim) {
            if entry.is_empty() {
                continue;
            }
            if entry == "*" {
                out.all = true;
                continue;
            }
            if let Some((ip, bits)) = entry.split_once('/')
                && let (Ok(ip), Ok(bits)) = (
                    ip.trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<IpAddr>(),
                    bits.parse::<u8>(),
                )
                && bits <= max_bits(ip)
            {
                out.addresses.push((ip, bits));
                continue;
            }
            let host = match split_host_port(entry) {
                Ok((host, _)) => host,
                Err(_) => entry.to_string(),
            };
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            match bare.parse::<IpAddr>() {
                Ok(ip) => out.addresses.push((ip, max_bits(ip))),
                Err(_) => out.names.push(
                    bare.trim_start_matches('.')
                        .trim_end_matches('.')
                        .to_ascii_lowercase(),
                ),
            }
        }
        out
    }

    /// Whether `host` (as in a URL) is reached without the proxy.
    pub fn bypasses(&self, host: &str) -> bool {
        if self.all {
            return true;
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return self
                .addresses
                .iter()
                .any(|(net, bits)| same_prefix(*net, ip, *bits));
        }
        let host = bare.trim_end_matches('.').to_ascii_lowercase();
        self.names.iter().any(|name| {
            host == *name
                || (host.len() > name.len()
                    && host.ends_with(name.as_str())
                    && host.as_bytes()[host.len() - name.len() - 1] == b'.')
        })
    }
}

fn max_bits(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

/// Whether `ip` is in `net/bits` (never across address families).
fn same_prefix(net: IpAddr, ip: IpAddr, bits: u8) -> bool {
    let (a, b, width) = match (net, ip) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(a.to_bits()), u128::from(b.to_bits()), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (a.to_bits(), b.to_bits(), 128),
        _ => return false,
    };
    let shift = width - u32::from(bits);
    shift >= 128 || (a >> shift) == (b >> shift)
}

/// Where a host is reached: its name (as in a URL) and, when the route goes through
/// a forward proxy, that proxy.
#[derive(Debug, Clone)]
pub struct Endpoint {
    host: String,
    via: Option<std::sync::Arc<Proxy>>,
}

impl Endpoint {
    /// `host` reached through `proxy` unless `no_proxy` lists it.
    pub fn new(host: &str, proxy: Option<std::sync::Arc<Proxy>>, no_proxy: &NoProxy) -> Self {
        Endpoint {
            host: host.to_string(),
            via: proxy.filter(|_| !no_proxy.bypasses(host)),
        }
    }
}

/// How upstreams are reached: through `proxy` (if any) except the hosts `no_proxy`
/// lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    /// The forward proxy, with its password when it has one.
    pub proxy: Option<std::sync::Arc<Proxy>>,
    /// The hosts reached directly.
    pub no_proxy: NoProxy,
}

impl Route {
    /// The route curl takes from its environment (`get` reads a variable):
    /// `https_proxy`, `HTTPS_PROXY`, then `all_proxy`, `ALL_PROXY`; `no_proxy`,
    /// then `NO_PROXY`. Empty values count as unset.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Route, TunnelError> {
        let first = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| get(n).filter(|v| !v.trim().is_empty()))
        };
        let proxy = first(&["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"])
            .map(|url| Proxy::parse_from_env(url.trim()))
            .transpose()?
            .map(std::sync::Arc::new);
        let no_proxy = first(&["no_proxy", "NO_PROXY"])
            .map(|list| NoProxy::parse(&list))
            .unwrap_or_default();
        Ok(Route { proxy, no_proxy })
    }

    /// Where `host` is reached on this route.
    pub fn endpoint(&self, host: &str) -> Endpoint {
        Endpoint::new(host, self.proxy.clone(), &self.no_proxy)
    }
}

/// What [`crate::tls::connect`] needs to reach a host: the name, and the proxy on
/// the way if any. A bare `str` is reached directly.
pub trait Destination {
    /// The host as in a URL (IPv6 in brackets).
    fn host(&self) -> &str;
    /// The proxy on the way.
    fn via(&self) -> Option<&Proxy>;
}

impl Destination for str {
    fn host(&self) -> &str {
        self
    }
    fn via(&self) -> Option<&Proxy> {
        None
    }
}

impl Destination for String {
    fn host(&self) -> &str {
        self
    }
    fn via(&self) -> Option<&Proxy> {
        None
    }
}

impl Destination for Endpoint {
    fn host(&self) -> &str {
        &self.host
    }
    fn via(&self) -> Option<&Proxy> {
        self.via.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_proxy_matches_as_curl_does() {
        let list = NoProxy::parse("example.com, .corp.local:8443,10.0.0.7 [::1]");
        assert!(list.bypasses("example.com"));
        assert!(list.bypasses("API.Example.com"));
        assert!(!list.bypasses("badexample.com"));
        assert!(list.bypasses("corp.local"));
        assert!(list.bypasses("a.b.corp.local"));
        assert!(list.bypasses("10.0.0.7"));
        assert!(!list.bypasses("10.0.0.70"));
        assert!(list.bypasses("[::1]"));
        assert!(!list.bypasses("partner.example.net"));
        let ranges = NoProxy::parse("10.0.0.0/8,fd00::/8,192.168.1.0/33");
        assert!(ranges.bypasses("10.200.3.4"));
        assert!(!ranges.bypasses("11.0.0.1"));
        assert!(ranges.bypasses("[fd12::1]"));
        assert!(!ranges.bypasses("[fe80::1]"));
        assert!(
            !ranges.bypasses("192.168.1.1"),
            "a prefix past 32 bits is no range"
        );
        assert!(NoProxy::parse("0.0.0.0/0").bypasses("8.8.8.8"));
        assert!(NoProxy::parse("*").bypasses("anything.at.all"));
        assert!(!NoProxy::parse("").bypasses("example.com"));
    }

    #[test]
    fn proxy_urls_are_read_as_curl_reads_them_and_passwords_refused() {
        let p = Proxy::parse("http://alice@proxy.corp:3128/").unwrap();
        assert_eq!(p.to_string(), "proxy.corp:3128");
        assert_eq!(p.user(), Some("alice"));
        assert_eq!(
            Proxy::parse("proxy.corp").unwrap().to_string(),
            "proxy.corp:1080"
        );
        assert_eq!(
            Proxy::parse("http://[::1]:8080").unwrap().to_string(),
            "[::1]:8080"
        );
        let err = Proxy::parse("http://alice:s3cret@proxy:3128")
            .unwrap_err()
            .to_string();
        assert!(err.contains("password") && !err.contains("s3cret"), "{err}");
        assert!(err.contains("alice:***@proxy:3128"), "{err}");
        let from_env = Proxy::parse_from_env("http://alice:pa%40ss@proxy:3128").unwrap();
        assert_eq!(from_env.user(), Some("alice"));
        assert_eq!(
            &from_env.connect_request("h:443")[..],
            &b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\nProxy-Authorization: Basic YWxpY2U6cGFAc3M=\r\n\r\n"[..]
        );
        assert!(Proxy::parse("https://proxy:443").is_err());
        assert!(Proxy::parse("http://proxy:0").is_err());
        assert!(Proxy::parse("http://proxy:3128/path").is_err());
    }

    #[test]
    fn the_connect_request_is_exact_and_answers_are_read_strictly() {
        let p = Proxy::parse("http://alice@proxy:3128")
            .unwrap()
            .with_password(Zeroizing::new("pw".to_string()));
        assert_eq!(
            &p.connect_request("api.partner:443")[..],
            b"CONNECT api.partner:443 HTTP/1.1\r\nHost: api.partner:443\r\nProxy-Authorization: Basic YWxpY2U6cHc=\r\n\r\n"
        );
        assert!(!format!("{p:?}").contains("pw\""));
        let t = "api.partner:443";
        assert_eq!(
            p.read_answer(b"HTTP/1.1 200 Connection established\r\n\r\n", t)
                .unwrap(),
            Some(39)
        );
        assert_eq!(
            p.read_answer(b"HTTP/1.1 200 OK\r\nX: y\r\n", t).unwrap(),
            None
        );
        let refused = p
            .read_answer(b"HTTP/1.0 403 Forbidden\r\n\r\n", t)
            .unwrap_err()
            .to_string();
        assert_eq!(
            refused,
            "the proxy proxy:3128 refused CONNECT api.partner:443: 403 Forbidden"
        );
        assert!(p.read_answer(b"SSH-2.0-OpenSSH\r\n\r\n", t).is_err());
    }
}
