//! Who is calling: uid, gid and pid from the kernel (SO_PEERCRED), groups from the
//! group database (the user's supplementary groups) plus the primary gid.

use nix::unistd::{Gid, Group, Uid, User};

use certkeeper_store::Principal;

/// A connected caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Process id (for the audit log), if the kernel reported one.
    pub pid: Option<i32>,
    /// Primary and supplementary group ids.
    pub groups: Vec<u32>,
}

impl Caller {
    /// A caller from kernel credentials; supplementary groups from the group
    /// database when the uid has a user name.
    pub fn from_credentials(uid: u32, gid: u32, pid: Option<i32>) -> Self {
        let mut groups = vec![gid];
        if let Ok(Some(user)) = User::from_uid(Uid::from_raw(uid))
            && let Ok(name) = std::ffi::CString::new(user.name)
            && let Ok(list) = nix::unistd::getgrouplist(&name, Gid::from_raw(gid))
        {
            groups.extend(list.into_iter().map(Gid::as_raw));
        }
        groups.sort_unstable();
        groups.dedup();
        Caller {
            uid,
            gid,
            pid,
            groups,
        }
    }

    /// A caller known only by its uid (a loopback TCP peer, from socket diagnostics):
    /// the primary group and supplementary groups come from the user database; a uid
    /// without a user has no groups.
    pub fn from_uid(uid: u32) -> Self {
        match User::from_uid(Uid::from_raw(uid)) {
            Ok(Some(user)) => Caller::from_credentials(uid, user.gid.as_raw(), None),
            _ => Caller {
                uid,
                gid: u32::MAX,
                pid: None,
                groups: Vec::new(),
            },
        }
    }

    /// Whether `principal` names this caller (a name is resolved now, so renaming or
    /// removing a user takes effect at once).
    pub fn is(&self, principal: &Principal) -> bool {
        match principal {
            Principal::Uid(u) => *u == self.uid,
            Principal::Gid(g) => self.groups.contains(g),
            Principal::User(name) => {
                matches!(User::from_name(name), Ok(Some(u)) if u.uid.as_raw() == self.uid)
            }
            Principal::Group(name) => {
                matches!(Group::from_name(name), Ok(Some(g)) if self.groups.contains(&g.gid.as_raw()))
            }
        }
    }
}
