//! What it costs a binding to ask the kernel who connected: per new application
//! connection, a loopback TCP connect + accept (what every application connection
//! costs anyway, the peer here) against the same plus the socket-diagnostics lookup
//! (`certkeeper_agent::sockdiag::tcp_peer_uid`), in one run, as wall time and as this
//! process's CPU time.
//!
//! Usage: peer_uid [CONNECTIONS]   (bench/peer-uid.sh runs it)

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use nix::sys::resource::{UsageWho, getrusage};

fn cpu() -> Duration {
    let u = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage");
    let t = |tv: nix::sys::time::TimeVal| {
        Duration::from_secs(tv.tv_sec() as u64) + Duration::from_micros(tv.tv_usec() as u64)
    };
    t(u.user_time()) + t(u.system_time())
}

/// `n` connections, each accepted, optionally looked up; (wall, cpu) per connection.
fn round(listener: &TcpListener, n: u32, lookup: bool) -> (Duration, Duration) {
    let addr = listener.local_addr().expect("address");
    let (wall, cpu0) = (Instant::now(), cpu());
    for _ in 0..n {
        let client = TcpStream::connect(addr).expect("connect");
        let (accepted, peer) = listener.accept().expect("accept");
        if lookup {
            let uid = certkeeper_agent::sockdiag::tcp_peer_uid(
                accepted.local_addr().expect("local"),
                peer,
            )
            .expect("lookup");
            std::hint::black_box(uid);
        }
        // The server closes first, so TIME_WAIT stays off the client's ports.
        drop(accepted);
        drop(client);
    }
    (wall.elapsed() / n, (cpu() - cpu0) / n)
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5000);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    round(&listener, n / 10, true); // warm up
    let mut plain = Vec::new();
    let mut looked = Vec::new();
    // Interleaved rounds, so drift on a busy machine falls on both alike.
    for _ in 0..5 {
        plain.push(round(&listener, n, false));
        looked.push(round(&listener, n, true));
    }
    let median = |v: &mut Vec<(Duration, Duration)>, cpu: bool| {
        let mut xs: Vec<Duration> = v.iter().map(|p| if cpu { p.1 } else { p.0 }).collect();
        xs.sort();
        xs[xs.len() / 2]
    };
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("connections per round: {n}, rounds: 5 (medians)");
    println!("{:<34} {:>10} {:>10}", "", "wall us", "cpu us");
    let (pw, pc) = (median(&mut plain, false), median(&mut plain, true));
    let (lw, lc) = (median(&mut looked, false), median(&mut looked, true));
    println!(
        "{:<34} {:>10.2} {:>10.2}",
        "connect + accept (the peer)",
        us(pw),
        us(pc)
    );
    println!(
        "{:<34} {:>10.2} {:>10.2}",
        "connect + accept + uid lookup",
        us(lw),
        us(lc)
    );
    println!(
        "{:<34} {:>10.2} {:>10.2}",
        "the lookup alone",
        us(lw.saturating_sub(pw)),
        us(lc.saturating_sub(pc))
    );
    println!(
        "ratio (with lookup / without): wall {:.2}x, cpu {:.2}x",
        lw.as_secs_f64() / pw.as_secs_f64(),
        lc.as_secs_f64() / pc.as_secs_f64()
    );
}
