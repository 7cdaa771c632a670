//! Principals of a key ACL: `user:NAME`, `group:NAME`, `uid:N`, `gid:N`. Names are
//! resolved against the system's user and group databases when they are given, so a
//! typo is an error at `grant` time, not a denial at 3 a.m.

use std::fmt;
use std::str::FromStr;

use nix::unistd::{Group, Uid, User};

use crate::error::StoreError;

/// One principal, kept as the administrator wrote it (names stay names, so an ACL
/// reads the same on every front-end even where uids differ).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Principal {
    /// A user by name.
    User(String),
    /// A group by name.
    Group(String),
    /// A user by number.
    Uid(u32),
    /// A group by number.
    Gid(u32),
}

impl Principal {
    /// Checks that a named user or group exists on this machine.
    pub fn validate(&self) -> Result<(), StoreError> {
        let missing = |what: &str, name: &str| {
            StoreError::InvalidPrincipal(format!("{what} {name:?} does not exist on this machine"))
        };
        match self {
            Principal::User(name) => match User::from_name(name) {
                Ok(Some(_)) => Ok(()),
                _ => Err(missing("user", name)),
            },
            Principal::Group(name) => match Group::from_name(name) {
                Ok(Some(_)) => Ok(()),
                _ => Err(missing("group", name)),
            },
            Principal::Uid(_) | Principal::Gid(_) => Ok(()),
        }
    }

    /// The numeric id this principal stands for, resolved now (None if the name is
    /// gone from the system).
    pub fn resolve(&self) -> Option<(bool, u32)> {
        match self {
            Principal::User(n) => User::from_name(n)
                .ok()
                .flatten()
                .map(|u| (true, u.uid.as_raw())),
            Principal::Group(n) => Group::from_name(n)
                .ok()
                .flatten()
                .map(|g| (false, g.gid.as_raw())),
            Principal::Uid(u) => Some((true, *u)),
            Principal::Gid(g) => Some((false, *g)),
        }
    }

    /// A uid as messages name it: `appsvc (uid 1001)`, or `uid 1001` without a user.
    pub fn describe_uid(uid: u32) -> String {
        match Principal::user_name(uid) {
            Some(name) => format!("{name} (uid {uid})"),
            None => format!("uid {uid}"),
        }
    }

    /// The name of a uid, if it has one.
    pub fn user_name(uid: u32) -> Option<String> {
        User::from_uid(Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| u.name)
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::User(n) => write!(f, "user:{n}"),
            Principal::Group(n) => write!(f, "group:{n}"),
            Principal::Uid(n) => write!(f, "uid:{n}"),
            Principal::Gid(n) => write!(f, "gid:{n}"),
        }
    }
}

impl FromStr for Principal {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            StoreError::InvalidPrincipal(format!(
                "{s:?} is not a principal: write user:NAME, group:NAME, uid:N or gid:N"
            ))
        };
        let (kind, value) = s.split_once(':').ok_or_else(bad)?;
        let value = value.trim();
        if value.is_empty() {
            return Err(bad());
        }
        match kind.trim() {
            "user" => Ok(Principal::User(value.to_string())),
            "group" => Ok(Principal::Group(value.to_string())),
            "uid" => value.parse().map(Principal::Uid).map_err(|_| bad()),
            "gid" => value.parse().map(Principal::Gid).map_err(|_| bad()),
            _ => Err(bad()),
        }
    }
}
