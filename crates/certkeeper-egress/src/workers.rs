//! The threads that serve the applications' connections: one single-threaded tokio
//! runtime per CPU, each connection served start to end on one of them, the way
//! nginx gives each connection to one worker's event loop.
//!
//! Why not the agent's work-stealing runtime: a relayed request wakes tasks on both
//! sides (the application's connection and its upstream connection), and on a
//! work-stealing runtime those wakeups hop between threads. Measured with the shared
//! egress harness on 2 unpinned cores (bench/egress.sh with PIN=none), in one run, the
//! relay's CPU per request went from 25.2 to 24.0 µs for small answers and from 81.7
//! to 77.5 µs for 64 KiB answers (nginx with one worker: 21.9 and 70.5). One
//! runtime per CPU keeps every core in use.

use std::cell::Cell;
use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::app::AppStream;
use tokio::runtime::Handle;

thread_local! {
    /// The worker this thread is (1-based), or 0 on any other thread.
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// The worker the calling thread is: 1.. on a worker, 0 elsewhere. The upstream pool
/// uses it to hand a worker back the connections it made (their sockets are
/// registered with that worker's runtime).
pub fn current() -> usize {
    WORKER.with(Cell::get)
}

struct Workers {
    handles: Vec<Handle>,
    next: AtomicUsize,
}

fn workers() -> Option<&'static Workers> {
    static WORKERS: OnceLock<Option<Workers>> = OnceLock::new();
    WORKERS.get_or_init(start).as_ref()
}

/// One worker per CPU the process may run on; none on one CPU, where the caller's
/// runtime is already single-threaded (the agent picks that itself).
fn start() -> Option<Workers> {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if cpus < 2 {
        return None;
    }
    // All runtimes first, so that a failure leaves no thread behind.
    let runtimes = (0..cpus)
        .map(|_| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        })
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    let handles = runtimes.iter().map(|r| r.handle().clone()).collect();
    for (n, runtime) in (1..).zip(runtimes) {
        std::thread::Builder::new()
            .name(format!("certkeeper-relay-{n}"))
            .spawn(move || {
                WORKER.with(|w| w.set(n));
                // Runs the tasks spawned through the handle until the process ends.
                runtime.block_on(std::future::pending::<()>());
            })
            .ok()?;
    }
    Some(Workers {
        handles,
        next: AtomicUsize::new(0),
    })
}

/// Serves the accepted connection `stream` with `serve` on the next worker in turn,
/// or on the caller's runtime when there are no workers. On a worker the socket is
/// registered with that worker's runtime, so its readiness wakes that thread only.
pub fn dispatch<F, Fut>(stream: AppStream, serve: F)
where
    F: FnOnce(AppStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(w) = workers() else {
        tokio::spawn(serve(stream));
        return;
    };
    let Ok(stream) = stream.into_std() else {
        return;
    };
    let n = w.next.fetch_add(1, Ordering::Relaxed) % w.handles.len();
    w.handles[n].spawn(async move {
        if let Ok(stream) = stream.into_tokio() {
            serve(stream).await;
        }
    });
}
