//! Open connections counted per uid and in all, with a ceiling on each: one user's
//! flood leaves room for the others. The agent's socket and each binding's listener
//! keep one each, and back off the same way when accepting fails.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The counts, and the ceilings they are held to.
pub struct ConnectionLimits {
    per_uid: usize,
    total: usize,
    open: Mutex<(usize, HashMap<u32, usize>)>,
}

/// One open connection, counted until dropped.
pub struct Slot {
    limits: Arc<ConnectionLimits>,
    uid: u32,
}

impl ConnectionLimits {
    /// At most `per_uid` connections for each uid and `total` for everyone.
    pub fn new(per_uid: usize, total: usize) -> Arc<Self> {
        Arc::new(ConnectionLimits {
            per_uid,
            total,
            open: Mutex::new((0, HashMap::new())),
        })
    }

    /// Counts a connection of `uid`, or `None` when it or everyone is at the ceiling.
    pub fn enter(self: &Arc<Self>, uid: u32) -> Option<Slot> {
        let mut open = self.lock();
        let (total, per_uid) = &mut *open;
        let mine = per_uid.get(&uid).copied().unwrap_or(0);
        if *total >= self.total || mine >= self.per_uid {
            return None;
        }
        per_uid.insert(uid, mine + 1);
        *total += 1;
        Some(Slot {
            limits: Arc::clone(self),
            uid,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, HashMap<u32, usize>)> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.limits.lock();
        let (total, per_uid) = &mut *open;
        *total = total.saturating_sub(1);
        if let Some(mine) = per_uid.get_mut(&self.uid) {
            *mine = mine.saturating_sub(1);
            if *mine == 0 {
                per_uid.remove(&self.uid);
            }
        }
    }
}

/// After a failed accept: out of descriptors (EMFILE, ENFILE) or memory, wait before
/// trying again rather than spin on the connection still waiting in the backlog.
pub async fn after_failed_accept(e: &std::io::Error) {
    let pause = match e.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
            std::time::Duration::from_millis(100)
        }
        _ => std::time::Duration::from_millis(1),
    };
    tokio::time::sleep(pause).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_uid_and_everyone_are_held_to_their_ceiling_until_slots_drop() {
        let limits = ConnectionLimits::new(2, 3);
        let a1 = limits.enter(1).unwrap();
        let _a2 = limits.enter(1).unwrap();
        assert!(limits.enter(1).is_none(), "uid 1 at its ceiling");
        let _b1 = limits.enter(2).unwrap();
        assert!(limits.enter(3).is_none(), "everyone at the ceiling");
        drop(a1);
        assert!(limits.enter(1).is_some());
    }
}
