//! Ports and addresses: fresh ports for listeners, who listens on a port (from /proc, so that
//! "weir is up" means weir itself listens, not whatever took a freed port), addresses that
//! refuse for as long as a test holds them, and the connections open to a port.

use super::processes::{poll_until, START_DEADLINE};
use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener};

/// `st` of a listening socket in /proc/net/tcp.
const TCP_LISTEN: &str = "0A";
/// `st` of an established connection in /proc/net/tcp.
const TCP_ESTABLISHED: &str = "01";

/// A port that was free a moment ago (bound to port 0, then released). Another process may
/// take it before the test binds it: start servers on it with [`listens`] checks and retries
/// (as [`super::Weir`] and [`super::spawn_listening`] do), never use it as an
/// address that must refuse (that is [`refused_address`]).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `n` ports that were free a moment ago, as [`free_port`], and distinct: each is held until
/// all are chosen, so that one server is never given the same port twice.
pub fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// The inodes of the sockets process `pid` holds open.
fn socket_inodes(pid: u32) -> HashSet<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    fds.filter_map(|fd| {
        let target = std::fs::read_link(fd.ok()?.path()).ok()?;
        target
            .to_str()?
            .strip_prefix("socket:[")?
            .strip_suffix(']')?
            .parse()
            .ok()
    })
    .collect()
}

/// The rows of /proc/`pid`/net/tcp and tcp6 (this machine's table; pid picks the network
/// namespace) split into fields, header skipped.
fn tcp_rows(pid: &str) -> Vec<Vec<String>> {
    ["tcp", "tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).ok())
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .map(|l| l.split_whitespace().map(String::from).collect())
                .collect::<Vec<Vec<String>>>()
        })
        .collect()
}

/// The port of an `address:port` field of /proc/net/tcp (the port is hex).
fn field_port(field: &str) -> Option<u16> {
    u16::from_str_radix(field.rsplit_once(':')?.1, 16).ok()
}

/// The TCP ports process `pid` itself holds a listening socket on (any address).
pub fn listening_ports(pid: u32) -> HashSet<u16> {
    let held = socket_inodes(pid);
    tcp_rows(&pid.to_string())
        .iter()
        .filter(|fields| {
            fields.get(3).map(String::as_str) == Some(TCP_LISTEN)
                && fields
                    .get(9)
                    .and_then(|i| i.parse().ok())
                    .is_some_and(|inode: u64| held.contains(&inode))
        })
        .filter_map(|fields| field_port(fields.get(1)?))
        .collect()
}

/// Whether process `pid` itself listens on TCP `port`.
pub fn listens(pid: u32, port: u16) -> bool {
    listening_ports(pid).contains(&port)
}

/// Waits until process `pid` listens on `port`; panics after [`START_DEADLINE`].
pub fn wait_listening(pid: u32, port: u16) {
    poll_until(START_DEADLINE, || listens(pid, port).then_some(()))
        .unwrap_or_else(|| panic!("process {pid} does not listen on port {port}"));
}

/// Established TCP connections to `port` on this machine, from /proc/net/tcp: how a test sees
/// that weir holds a request open to an instance.
pub fn connections_to(port: u16) -> usize {
    tcp_rows("self")
        .iter()
        .filter(|fields| {
            fields.get(2).and_then(|f| field_port(f)) == Some(port)
                && fields.get(3).map(String::as_str) == Some(TCP_ESTABLISHED)
        })
        .count()
}

/// An address on 127.0.0.1 that refuses every connection while this value lives: a socket
/// bound there that never listens, so connecting gets a reset and no other process can
/// bind the port. A test that wants a dead target keeps it for its whole life.
pub struct RefusedAddress {
    address: SocketAddr,
    _socket: socket2::Socket,
}

impl RefusedAddress {
    /// `127.0.0.1:port`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }
}

/// A fresh [`RefusedAddress`].
pub fn refused_address() -> RefusedAddress {
    refuse_at(([127, 0, 0, 1], 0).into()).unwrap()
}

/// A [`RefusedAddress`] at `address`, which a process that just died listened on. Its
/// connections' TIME_WAIT may linger there, so the socket reuses the address; a port 0 bind
/// is not handed a port with a bound socket. None when something else holds it already.
pub fn refuse_at(address: SocketAddr) -> Option<RefusedAddress> {
    let domain = socket2::Domain::for_address(address);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, None).ok()?;
    if address.port() != 0 {
        socket.set_reuse_address(true).ok()?;
    }
    socket.bind(&address.into()).ok()?;
    let address = socket.local_addr().ok()?.as_socket()?;
    Some(RefusedAddress {
        address,
        _socket: socket,
    })
}
