//! What Linux's /proc says about processes and their sockets. A connect only shows that the
//! kernel queues connections; an upgrade needs to know which process holds which listener.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

/// `st` of a listening TCP socket in /proc/net/tcp.
const TCP_LISTEN: &str = "0A";
/// `Flags` of a listening Unix socket in /proc/net/unix (`__SO_ACCEPTCON`).
const UNIX_ACCEPTING: &str = "00010000";

/// The inodes of the sockets `pid` (a number, or `self`) holds open.
pub(crate) fn socket_inodes(pid: &str) -> HashSet<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    fds.filter_map(|fd| {
        let target = std::fs::read_link(fd.ok()?.path()).ok()?;
        let target = target.to_str()?;
        target
            .strip_prefix("socket:[")?
            .strip_suffix(']')?
            .parse()
            .ok()
    })
    .collect()
}

/// The TCP addresses `pid` listens on.
pub(crate) fn tcp_listening(pid: &str) -> HashSet<SocketAddr> {
    let held = socket_inodes(pid);
    ["tcp", "tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).ok())
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let inode: u64 = fields.get(9)?.parse().ok()?;
                    let listening = *fields.get(3)? == TCP_LISTEN && held.contains(&inode);
                    listening.then(|| tcp_address(fields[1])).flatten()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Whether some process other than this one listens on the Unix socket at `path` (a file
/// left behind by a process that died listens nowhere).
pub(crate) fn unix_listener_elsewhere(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/net/unix") else {
        return false;
    };
    let ours = socket_inodes("self");
    text.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let inode = fields.get(6).and_then(|i| i.parse::<u64>().ok());
        fields.get(3) == Some(&UNIX_ACCEPTING)
            && fields.get(7).map(Path::new) == Some(path)
            && inode.is_some_and(|i| !ours.contains(&i))
    })
}

/// The pid in a pid file.
pub(crate) fn read_pid(pid_file: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(pid_file).ok()?;
    text.trim().parse().ok().filter(|pid| *pid > 1)
}

/// Whether process `pid` exists.
pub(crate) fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether process `pid` has a handler of its own for `signal` (its `SigCgt` mask in
/// /proc); `None` when the process is gone.
pub(crate) fn catches(pid: u32, signal: i32) -> Option<bool> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mask = status.lines().find_map(|l| l.strip_prefix("SigCgt:"))?;
    let mask = u64::from_str_radix(mask.trim(), 16).ok()?;
    let bit = u32::try_from(signal - 1).ok()?;
    Some(mask.checked_shr(bit).is_some_and(|m| m & 1 == 1))
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6): words of the address in the
/// machine's byte order, the port in hex.
fn tcp_address(field: &str) -> Option<SocketAddr> {
    let (address, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let mut bytes = Vec::with_capacity(16);
    for i in (0..address.len()).step_by(8) {
        let word = u32::from_str_radix(address.get(i..i + 8)?, 16).ok()?;
        bytes.extend_from_slice(&word.to_ne_bytes());
    }
    let ip = match bytes.len() {
        4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_addresses_of_proc_net_tcp() {
        let v4 = tcp_address("0100007F:1F90").unwrap();
        assert_eq!(v4, "127.0.0.1:8080".parse().unwrap());
        let v6 = tcp_address("00000000000000000000000001000000:01BB").unwrap();
        assert_eq!(v6, "[::1]:443".parse().unwrap());
        assert_eq!(tcp_address("zz:1"), None);
    }

    #[test]
    fn sees_which_signals_a_process_handles() {
        let me = std::process::id();
        signal_hook::flag::register(signal_hook::consts::SIGUSR2, Default::default()).unwrap();
        assert_eq!(catches(me, signal_hook::consts::SIGUSR2), Some(true));
        assert_eq!(catches(me, signal_hook::consts::SIGWINCH), Some(false));
        assert_eq!(catches(u32::MAX, signal_hook::consts::SIGUSR2), None);
    }

    #[test]
    fn sees_this_process_listen() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        assert!(tcp_listening("self").contains(&address));
        drop(listener);
        assert!(!tcp_listening("self").contains(&address));
    }
}
