//! Who owns the other end of a loopback TCP connection: the kernel's socket
//! diagnostics (NETLINK_SOCK_DIAG, `inet_diag`) looked up by the exact four-tuple.
//!
//! A binding's listener is plain TCP on loopback, where SO_PEERCRED does not exist;
//! the kernel still knows the uid that created the application's socket. One request
//! of 72 bytes and one answer are written and read here by hand (strictly: lengths,
//! type, sequence and the four-tuple are checked) rather than through a netlink crate
//! family, because this is the only netlink message certkeeper sends.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto, socket,
};

/// `SOCK_DIAG_BY_FAMILY`.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `NLMSG_ERROR`.
const NLMSG_ERROR: u16 = 2;
/// `NLM_F_REQUEST`.
const NLM_F_REQUEST: u16 = 1;
/// `IPPROTO_TCP`.
const IPPROTO_TCP: u8 = 6;
/// Every TCP state: the application may already have half-closed.
const ALL_STATES: u32 = 0xffff_ffff;
/// The netlink header, then `inet_diag_req_v2`.
const REQUEST_LEN: usize = 16 + 56;
/// The netlink header, then `inet_diag_msg` (72 bytes, without attributes).
const ANSWER_MIN: usize = 16 + 72;

/// Why the owner could not be learned: the relay refuses the connection then.
#[derive(Debug, thiserror::Error)]
pub enum SockDiagError {
    /// The netlink socket failed.
    #[error("socket diagnostics: {0}")]
    Io(#[from] nix::Error),
    /// The kernel answered with an error (ENOENT: the socket is gone).
    #[error("socket diagnostics: the kernel answered errno {0}")]
    Kernel(i32),
    /// The answer does not have the shape of an `inet_diag_msg` for this socket.
    #[error("socket diagnostics: unexpected answer ({0})")]
    Malformed(&'static str),
    /// The application's socket is already closed: no process owns it any more.
    #[error("socket diagnostics: the application's socket is already closed")]
    Orphan,
    /// The two ends are of different address families.
    #[error("socket diagnostics: mixed address families")]
    Family,
}

/// The uid that owns the socket at `peer` connected to our `local` address.
pub fn tcp_peer_uid(local: SocketAddr, peer: SocketAddr) -> Result<u32, SockDiagError> {
    let family = match (local.ip(), peer.ip()) {
        (IpAddr::V4(_), IpAddr::V4(_)) => libc::AF_INET as u8,
        (IpAddr::V6(_), IpAddr::V6(_)) => libc::AF_INET6 as u8,
        _ => return Err(SockDiagError::Family),
    };
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )?;
    let seq = std::process::id() ^ u32::from(peer.port());
    // The application's socket: its source is the peer, its destination is us.
    let request = encode_request(family, seq, peer, local);
    sendto(
        fd.as_raw_fd(),
        &request,
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )?;
    let mut answer = [0u8; 512];
    let n = recv(fd.as_raw_fd(), &mut answer, MsgFlags::empty())?;
    decode_answer(&answer[..n], seq, peer, local)
}

fn encode_request(family: u8, seq: u32, src: SocketAddr, dst: SocketAddr) -> [u8; REQUEST_LEN] {
    let mut m = [0u8; REQUEST_LEN];
    m[0..4].copy_from_slice(&(REQUEST_LEN as u32).to_ne_bytes());
    m[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    // m[12..16]: port id 0, the kernel fills it in.
    let r = &mut m[16..];
    r[0] = family;
    r[1] = IPPROTO_TCP;
    r[4..8].copy_from_slice(&ALL_STATES.to_ne_bytes());
    write_sockid(&mut r[8..56], src, dst);
    m
}

/// `inet_diag_sockid`: ports and addresses in network order, interface 0, no cookie.
fn write_sockid(id: &mut [u8], src: SocketAddr, dst: SocketAddr) {
    id[0..2].copy_from_slice(&src.port().to_be_bytes());
    id[2..4].copy_from_slice(&dst.port().to_be_bytes());
    write_ip(&mut id[4..20], src.ip());
    write_ip(&mut id[20..36], dst.ip());
    // id[36..40]: interface 0 (any).
    id[40..48].copy_from_slice(&[0xff; 8]);
}

fn write_ip(out: &mut [u8], ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => out[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out.copy_from_slice(&v6.octets()),
    }
}

fn decode_answer(
    answer: &[u8],
    seq: u32,
    src: SocketAddr,
    dst: SocketAddr,
) -> Result<u32, SockDiagError> {
    let u16_at = |i: usize| u16::from_ne_bytes([answer[i], answer[i + 1]]);
    let u32_at = |i: usize| u32::from_ne_bytes(answer[i..i + 4].try_into().expect("four bytes"));
    if answer.len() < 16 {
        return Err(SockDiagError::Malformed("shorter than a netlink header"));
    }
    let len = u32_at(0) as usize;
    if len > answer.len() || len < 16 {
        return Err(SockDiagError::Malformed("netlink length"));
    }
    if u32_at(8) != seq {
        return Err(SockDiagError::Malformed("sequence number"));
    }
    match u16_at(4) {
        NLMSG_ERROR if len >= 20 => {
            let errno = i32::from_ne_bytes(answer[16..20].try_into().expect("four bytes"));
            return Err(SockDiagError::Kernel(-errno));
        }
        SOCK_DIAG_BY_FAMILY => {}
        _ => return Err(SockDiagError::Malformed("message type")),
    }
    if len < ANSWER_MIN {
        return Err(SockDiagError::Malformed("shorter than inet_diag_msg"));
    }
    let msg = &answer[16..len];
    // The kernel found the socket by this four-tuple: make sure it is the one asked.
    let mut expected = [0u8; 48];
    write_sockid(&mut expected, src, dst);
    if msg[4..40] != expected[..36] {
        return Err(SockDiagError::Malformed("another socket"));
    }
    // A socket its process has closed (an orphan in FIN_WAIT or TIME_WAIT) has no
    // inode, and the kernel reports uid 0 for it: that is nobody, never root.
    if u32_at(16 + 68) == 0 {
        return Err(SockDiagError::Orphan);
    }
    Ok(u32_at(16 + 64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn the_owner_of_a_loopback_connection_is_this_process_uid() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, peer) = listener.accept().unwrap();
        let uid = tcp_peer_uid(accepted.local_addr().unwrap(), peer).unwrap();
        assert_eq!(uid, nix::unistd::getuid().as_raw());
        // A four-tuple that does not exist is an error, never a uid.
        let gone: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert!(tcp_peer_uid(accepted.local_addr().unwrap(), gone).is_err());
        // Once the application has closed its socket, nobody owns it: not root.
        drop(client);
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(tcp_peer_uid(accepted.local_addr().unwrap(), peer).is_err());
    }

    #[test]
    fn answers_that_are_not_for_the_socket_asked_are_refused() {
        let a: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:6000".parse().unwrap();
        let mut answer = vec![0u8; ANSWER_MIN];
        answer[0..4].copy_from_slice(&(ANSWER_MIN as u32).to_ne_bytes());
        answer[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        answer[8..12].copy_from_slice(&7u32.to_ne_bytes());
        write_sockid(&mut answer[16 + 4..16 + 52], a, b);
        answer[80..84].copy_from_slice(&1234u32.to_ne_bytes());
        // Without an inode the socket is an orphan, whose uid the kernel gives as 0.
        assert!(matches!(
            decode_answer(&answer, 7, a, b),
            Err(SockDiagError::Orphan)
        ));
        answer[84..88].copy_from_slice(&99u32.to_ne_bytes());
        assert_eq!(decode_answer(&answer, 7, a, b).unwrap(), 1234);
        assert!(decode_answer(&answer, 8, a, b).is_err(), "sequence");
        assert!(decode_answer(&answer, 7, b, a).is_err(), "four-tuple");
        for cut in 0..ANSWER_MIN {
            assert!(
                decode_answer(&answer[..cut], 7, a, b).is_err(),
                "cut at {cut}"
            );
        }
        let mut lying = answer.clone();
        lying[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert!(decode_answer(&lying, 7, a, b).is_err(), "length");
    }
}
