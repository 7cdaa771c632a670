//! A binding's listener: accepts the applications' connections, admits them (the
//! key's ACL, `bind --allow`, per-uid and total connection limits) and hands each to
//! a worker that relays it ([`crate::relay`]); drains them on SIGTERM.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::app::{Gate, Listener, refuse};
use crate::pool::{Current, current_upstream};

/// How often idle upstream connections are checked.
const SWEEP_EVERY: Duration = Duration::from_secs(15);

/// Serves plain HTTP/1.1 on `listener`, relaying to the current upstream for the
/// applications `gate` admits (the others get a 403), until `shutdown` turns true.
pub async fn serve(
    listener: Listener,
    current: Current,
    gate: Gate,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    // One uid cannot take a binding's descriptors (or the agent's) from the others.
    let admission =
        certkeeper_agent::limits::ConnectionLimits::new(crate::app::PER_UID, crate::app::TOTAL);
    loop {
        tokio::select! {
            _ = sweep.tick() => current_upstream(&current).sweep(),
            accepted = listener.accept() => {
                let (stream, uid) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        certkeeper_agent::limits::after_failed_accept(&e).await;
                        continue;
                    }
                };
                let current = Arc::clone(&current);
                let gate = Arc::clone(&gate);
                let admitted = uid.map(|u| (u, admission.enter(u)));
                let in_flight = Serving::enter();
                crate::workers::dispatch(stream, move |s| async move {
                    let _in_flight = in_flight;
                    if let Some((uid, None)) = admitted {
                        return crate::app::too_many(s, uid).await;
                    }
                    match gate(uid) {
                        // Counted until the connection ends.
                        Ok(()) => crate::relay::serve(s, uid, current).await,
                        Err(reason) => refuse(s, &reason).await,
                    }
                    drop(admitted);
                });
            }
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    break;
                }
            }
        }
    }
}

/// Application connections being served, by every binding of this process.
static IN_FLIGHT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One application connection, counted in [`IN_FLIGHT`] until dropped.
struct Serving;

impl Serving {
    fn enter() -> Serving {
        IN_FLIGHT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Serving
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// After the listeners have stopped (SIGTERM): waits for the application connections
/// still being served to finish, at most `bound`, and returns how many were left.
pub async fn drain(bound: Duration) -> usize {
    let until = Instant::now() + bound;
    loop {
        let left = IN_FLIGHT.load(std::sync::atomic::Ordering::Relaxed);
        if left == 0 || Instant::now() >= until {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
