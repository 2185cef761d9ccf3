//! L4: `tcp` listeners in front of real Redis and PostgreSQL servers, driven by their own
//! benchmark tools, and in front of small test servers for half-close, the PROXY protocol and
//! the connection limit.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A PostgreSQL server of its own (initdb in a temporary folder, trust authentication for
/// 127.0.0.1), run as the `postgres` user, which initdb and postgres require.
struct Postgres {
    port: u16,
    _dir: tempfile::TempDir,
    proc: Option<Proc>,
}

/// A PostgreSQL program of Debian's server package, if it is installed.
fn find_pg_bin(name: &str) -> Option<PathBuf> {
    let versions = std::fs::read_dir("/usr/lib/postgresql").ok()?;
    let mut bins: Vec<PathBuf> = versions
        .map(|v| v.unwrap().path().join("bin").join(name))
        .filter(|p| p.exists())
        .collect();
    bins.sort();
    bins.pop()
}

/// A PostgreSQL program of Debian's server package.
fn pg_bin(name: &str) -> PathBuf {
    find_pg_bin(name).unwrap_or_else(|| panic!("no {name} under /usr/lib/postgresql"))
}

/// A command running PostgreSQL program `name`: as the `postgres` user when this is root
/// (initdb and postgres refuse root), else as this user.
fn pg_command(name: &str) -> Command {
    if !nix::unistd::geteuid().is_root() {
        return Command::new(pg_bin(name));
    }
    let mut command = Command::new("runuser");
    command.args(["-u", "postgres", "--"]).arg(pg_bin(name));
    command
}

impl Postgres {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        if nix::unistd::geteuid().is_root() {
            let user = nix::unistd::User::from_name("postgres").unwrap().unwrap();
            let (uid, gid) = (user.uid.as_raw(), user.gid.as_raw());
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let data = dir.path().join("data");
        succeed(
            pg_command("initdb")
                .args(["--auth=trust", "--username=postgres", "-D"])
                .arg(&data)
                .stdout(Stdio::null()),
        );
        let mut server = Self {
            port: 0,
            _dir: dir,
            proc: None,
        };
        // A fresh port, again if another process took it before the server bound it.
        for _ in 0..5 {
            server.port = free_port();
            let child = pg_command("postgres")
                .arg("-D")
                .arg(&data)
                .args(["-p", &server.port.to_string()])
                .args(["-c", "listen_addresses=127.0.0.1", "-k"])
                .arg(server._dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut child = Proc(child);
            let up = poll_until(START_DEADLINE, || {
                let pid = server.postmaster().filter(|&pid| listens(pid, server.port));
                match pid {
                    Some(_) => Some(true),
                    None => child.0.try_wait().unwrap().map(|_| false),
                }
            });
            server.proc = Some(child);
            match up {
                Some(true) => break,
                Some(false) => server.proc = None,
                None => panic!("postgres does not listen on port {}", server.port),
            }
        }
        assert!(server.proc.is_some(), "postgres found no free port");
        let port = server.port.to_string();
        poll_until(START_DEADLINE, || {
            let ready = Command::new(pg_bin("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &port])
                .stdout(Stdio::null())
                .status()
                .unwrap();
            ready.success().then_some(())
        })
        .expect("postgres starts");
        server
    }

    /// The postmaster's pid (with runuser, it is not the child this test started).
    fn postmaster(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self._dir.path().join("data/postmaster.pid")).ok()?;
        text.lines().next()?.parse().ok()
    }

    /// Kills the server at once, as a crash would; returns once it no longer listens.
    fn kill(&mut self) {
        let pid = self.postmaster().expect("the server has a pid file");
        signal(pid, Signal::SIGKILL);
        self.proc = None;
        poll_until(START_DEADLINE, || (!listens(pid, self.port)).then_some(()))
            .expect("the killed server's socket is closed");
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // A fast shutdown, so that no server is left behind.
        if let (Some(_), Some(pid)) = (&self.proc, self.postmaster()) {
            signal(pid, Signal::SIGINT);
        }
    }
}

/// `psql` through `port`: the port of the server that answered.
fn server_port(port: u16) -> String {
    let out = succeed(Command::new("psql").args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-U",
        "postgres",
        "-Atc",
        "select inet_server_port()",
    ]));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A test server on a fresh port that serves each connection with `serve` on a thread.
fn test_server(serve: fn(TcpStream)) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || serve(stream));
        }
    });
    address
}

/// Reads everything until the client shuts down its writing, then sends it back, twice.
fn echo_after_eof(mut stream: TcpStream) {
    let mut got = Vec::new();
    stream.read_to_end(&mut got).unwrap();
    stream.write_all(&got).unwrap();
    stream.write_all(&got).unwrap();
}

/// Echoes each read at once, until the client leaves.
fn echo(mut stream: TcpStream) {
    let mut buf = [0; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 || stream.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}

/// Sends back what it read first: the PROXY protocol header weir sent, then the payload.
fn first_bytes(mut stream: TcpStream) {
    let mut got = vec![0; 512];
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut n = 0;
    // The header and the payload may arrive in separate segments.
    while n < got.len() {
        match stream.read(&mut got[n..]) {
            Ok(0) | Err(_) => break,
            Ok(read) => n += read,
        }
        if got[..n].ends_with(b"hello") {
            break;
        }
    }
    stream.write_all(&got[..n]).unwrap();
}

/// A TCP client of `port` that sends `message` and waits (up to `wait`) for its echo.
fn round_trip(stream: &mut TcpStream, message: &[u8], wait: Duration) -> Option<Vec<u8>> {
    stream.set_read_timeout(Some(wait)).unwrap();
    stream.write_all(message).ok()?;
    let mut back = vec![0; message.len()];
    stream.read_exact(&mut back).ok()?;
    Some(back)
}

/// Waits until `listener` has `n` connections open, by weir's metrics on `admin`; so that
/// one that just closed (weir's start-up probe, say) no longer counts.
fn open_connections(admin: u16, listener: &str, n: usize) {
    let sample = format!("weir_downstream_connections{{listener=\"{listener}\"}} {n}\n");
    poll_until(Duration::from_secs(5), || {
        scrape(admin).contains(&sample).then_some(())
    })
    .unwrap_or_else(|| panic!("{listener} never had {n} connections open"));
}

fn tcp_listener(name: &str, port: &str, upstream: &str, extra: &str) -> String {
    format!(
        "  - {{ name: {name}, address: \"127.0.0.1:{port}\", protocol: tcp, upstream: {upstream}{extra} }}\n"
    )
}

#[test]
fn redis_benchmark_through_weir_has_no_errors_and_spreads_connections_by_algorithm() {
    if !require_tools("redis", &["redis-server", "redis-cli", "redis-benchmark"]) {
        return;
    }
    let (r1, r2) = (Redis::start(), Redis::start());
    let yaml = format!(
        "listeners:\n{}{}\
         upstreams:\n  redis:\n    targets:\n      - {{ address: \"127.0.0.1:{p1}\", name: r1 }}\n      \
         - {{ address: \"127.0.0.1:{p2}\", name: r2 }}\n  \
         sticky:\n    balance: ip_hash\n    targets:\n      - {{ address: \"127.0.0.1:{p1}\", name: r1 }}\n      \
         - {{ address: \"127.0.0.1:{p2}\", name: r2 }}\n\
         admin: {{ address: \"127.0.0.1:{{port2}}\" }}\n\
         access_log: {{ format: json, path: access.log }}\n",
        tcp_listener("redis", "{port}", "redis", ""),
        tcp_listener("sticky", "{port3}", "sticky", ""),
        p1 = r1.port,
        p2 = r2.port,
    );
    let weir = Weir::start(&yaml);
    open_connections(weir.port2, "redis", 0);
    let before = [
        r1.stat("total_connections_received"),
        r2.stat("total_connections_received"),
    ];
    // Connections the redis listener forwarded to each instance, by weir's metrics.
    let forwarded = || {
        let text = scrape(weir.port2);
        ["r1", "r2"].map(|instance| {
            let labels = [("listener", "redis"), ("instance", instance)];
            sample(&text, "weir_tcp_connections_total", &labels).unwrap() as u64
        })
    };
    let forwarded_before = forwarded();
    let bytes = |direction: &str| {
        let labels = [("listener", "redis"), ("direction", direction)];
        sample(&scrape(weir.port2), "weir_tcp_bytes_total", &labels).unwrap() as u64
    };
    let bytes_before = [bytes("in"), bytes("out")];

    let out = succeed(Command::new("redis-benchmark").args([
        "-h",
        "127.0.0.1",
        "-p",
        &weir.port.to_string(),
        "-t",
        "set,get",
        "-n",
        "20000",
        "-c",
        "50",
        "--csv",
    ]));
    let csv = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.to_lowercase().contains("error"), "{stderr}");
    for test in ["\"SET\"", "\"GET\""] {
        let line = csv
            .lines()
            .find(|l| l.starts_with(test))
            .unwrap_or_else(|| panic!("{csv}"));
        let rps: f64 = line
            .split(',')
            .nth(1)
            .unwrap()
            .trim_matches('"')
            .parse()
            .unwrap();
        assert!(rps > 0.0, "{line}");
    }
    // Round robin: the benchmark's connections (50 per test, and one for its settings) split
    // evenly. (Each INFO counts its own connection too.)
    let after = [
        r1.stat("total_connections_received"),
        r2.stat("total_connections_received"),
    ];
    let round_robin_got = [after[0] - before[0] - 1, after[1] - before[1] - 1];
    let got = round_robin_got;
    assert!(got[0] + got[1] >= 100, "{got:?}");
    assert!(got[0].abs_diff(got[1]) <= 1, "round robin: {got:?}");

    // ip_hash: every connection from one client address goes to one server.
    let before = [
        r1.stat("total_connections_received"),
        r2.stat("total_connections_received"),
    ];
    succeed(Command::new("redis-benchmark").args([
        "-h",
        "127.0.0.1",
        "-p",
        &weir.port3.to_string(),
        "-t",
        "ping",
        "-n",
        "2000",
        "-c",
        "20",
        "-q",
    ]));
    let after = [
        r1.stat("total_connections_received"),
        r2.stat("total_connections_received"),
    ];
    let got = [after[0] - before[0] - 1, after[1] - before[1] - 1];
    assert!(
        got.contains(&0) && got.iter().sum::<u64>() >= 20,
        "ip_hash: {got:?}"
    );

    // Metrics and access log count the same connections as the servers, instance by
    // instance; the bytes are at least the benchmark's 40000 commands (`*2\r\n$3\r\nGET\r\n…`
    // is 14 bytes and more) and their answers (`+OK\r\n` is 5 bytes and more).
    let counted = forwarded();
    let by_instance = [0, 1].map(|i| counted[i] - forwarded_before[i]);
    assert_eq!(by_instance, round_robin_got, "connections by instance");
    let moved = [
        bytes("in") - bytes_before[0],
        bytes("out") - bytes_before[1],
    ];
    assert!(
        moved[0] >= 40_000 * 14 && moved[1] >= 40_000 * 5,
        "bytes in, out: {moved:?}"
    );
    let log_path = weir.dir.path().join("access.log");
    let lines = poll_until(Duration::from_secs(5), || {
        let text = std::fs::read_to_string(&log_path).ok()?;
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|l: &serde_json::Value| l["listener"] == "redis")
            .collect();
        (lines.len() as u64 == counted[0] + counted[1]).then_some(lines)
    })
    .expect("one access log line per connection");
    let busy = lines
        .iter()
        .filter(|l| l["bytes_received"].as_u64() > Some(0));
    assert!(busy.count() >= 100);
    for line in &lines {
        assert_eq!(line["status"], 200, "{line}");
        assert!(
            ["r1", "r2"].contains(&line["instance"].as_str().unwrap()),
            "{line}"
        );
    }
}

#[test]
fn pgbench_runs_through_weir_and_new_connections_avoid_a_killed_server() {
    // The server's programs, by where Debian puts them (a path that does not exist when not).
    let programs = ["postgres", "initdb", "pg_isready", "pgbench"].map(|name| {
        find_pg_bin(name).map_or_else(
            || format!("/usr/lib/postgresql/VERSION/bin/{name}"),
            |p| p.display().to_string(),
        )
    });
    let mut needed = vec!["psql", "runuser"];
    needed.extend(programs.iter().map(String::as_str));
    if !require_tools("postgres", &needed) {
        return;
    }
    let (pg1, mut pg2) = (Postgres::start(), Postgres::start());
    let yaml = format!(
        "listeners:\n{}{}\
         upstreams:\n  one:\n    targets: [{{ address: \"127.0.0.1:{p1}\" }}]\n  \
         pair:\n    retries: 1\n    timeouts: {{ connect: 1s }}\n    targets:\n      \
         - {{ address: \"127.0.0.1:{p1}\" }}\n      - {{ address: \"127.0.0.1:{p2}\" }}\n",
        tcp_listener("pg", "{port}", "one", ""),
        tcp_listener("pair", "{port2}", "pair", ""),
        p1 = pg1.port,
        p2 = pg2.port,
    );
    let weir = Weir::start(&yaml);
    let port = weir.port.to_string();
    let pgbench = |args: &[&str]| {
        succeed(
            Command::new(pg_bin("pgbench"))
                .args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres"])
                .args(args)
                .arg("postgres"),
        )
    };
    pgbench(&["-i", "-q"]);
    let run = pgbench(&["-c", "8", "-t", "200"]);
    let report = String::from_utf8(run.stdout).unwrap();
    assert!(
        report.contains("number of transactions actually processed: 1600/1600"),
        "{report}"
    );
    assert!(
        report.contains("number of failed transactions: 0"),
        "{report}"
    );

    // Both servers answer through the pair; once one is killed, every new connection goes
    // to the other and succeeds.
    let ports = (pg1.port.to_string(), pg2.port.to_string());
    let seen: std::collections::HashSet<String> = (0..4).map(|_| server_port(weir.port2)).collect();
    assert_eq!(
        seen,
        [ports.0.clone(), ports.1.clone()].into_iter().collect()
    );
    pg2.kill();
    for _ in 0..6 {
        assert_eq!(server_port(weir.port2), ports.0);
    }
    drop(weir);
}

#[test]
fn a_client_that_shuts_down_its_writing_still_reads_the_whole_answer() {
    let server = test_server(echo_after_eof);
    let yaml = format!(
        "listeners:\n{}upstreams:\n  echo:\n    targets: [{{ address: \"{server}\", name: e1 }}]\n\
         admin: {{ address: \"127.0.0.1:{{port2}}\" }}\n",
        tcp_listener("echo", "{port}", "echo", "")
    );
    let weir = Weir::start(&yaml);
    let mut stream = TcpStream::connect(("127.0.0.1", weir.port)).unwrap();
    let sent: Vec<u8> = (0..200_000).map(|i| (i % 251) as u8).collect();
    stream.write_all(&sent).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    stream.read_to_end(&mut back).unwrap();
    assert_eq!(back.len(), 2 * sent.len());
    assert!(back[..sent.len()] == sent[..] && back[sent.len()..] == sent[..]);

    // The metrics count this one connection to e1, and every byte each way.
    let counted = || {
        let text = scrape(weir.port2);
        let connections = [("listener", "echo"), ("instance", "e1")];
        let bytes = |direction| [("listener", "echo"), ("direction", direction)];
        [
            sample(&text, "weir_tcp_connections_total", &connections),
            sample(&text, "weir_tcp_bytes_total", &bytes("in")),
            sample(&text, "weir_tcp_bytes_total", &bytes("out")),
        ]
    };
    let expected = [1.0, 200_000.0, 400_000.0].map(Some);
    let settled = poll_until(Duration::from_secs(5), || {
        (counted() == expected).then_some(())
    });
    assert!(
        settled.is_some(),
        "connections, bytes in, bytes out: {:?}",
        counted()
    );
}

#[test]
fn proxy_protocol_headers_arrive_intact_and_are_read_from_a_trusted_balancer() {
    let server = test_server(first_bytes);
    let yaml = format!(
        "listeners:\n{}{}\
         upstreams:\n  capture:\n    targets: [{{ address: \"{server}\" }}]\n\
         headers: {{ trusted_proxies: [127.0.0.1/32] }}\n",
        tcp_listener("v2", "{port}", "capture", ", send_proxy_protocol: v2"),
        tcp_listener(
            "relay",
            "{port2}",
            "capture",
            ", accept_proxy_protocol: true, send_proxy_protocol: v1"
        ),
    );
    let weir = Weir::start(&yaml);

    // v2 to the instance: the client's own address and port, and weir's listener.
    let mut stream = TcpStream::connect(("127.0.0.1", weir.port)).unwrap();
    let me = stream.local_addr().unwrap();
    stream.write_all(b"hello").unwrap();
    let mut got = Vec::new();
    stream.read_to_end(&mut got).unwrap();
    let header = ppp::v2::Header::try_from(&got[..]).unwrap();
    let ppp::v2::Addresses::IPv4(addresses) = header.addresses else {
        panic!("{header:?}")
    };
    let source = SocketAddr::from((addresses.source_address, addresses.source_port));
    let destination = SocketAddr::from((addresses.destination_address, addresses.destination_port));
    assert_eq!(source, me);
    assert_eq!(destination, SocketAddr::from(([127, 0, 0, 1], weir.port)));
    assert_eq!(&got[header.len()..], b"hello");

    // A trusted balancer's v2 header names the client; weir passes it on as v1.
    let mut relayed = TcpStream::connect(("127.0.0.1", weir.port2)).unwrap();
    let client: SocketAddr = "203.0.113.9:4242".parse().unwrap();
    let front: SocketAddr = "198.51.100.1:6380".parse().unwrap();
    let mut first = ppp::v2::Builder::with_addresses(
        ppp::v2::Version::Two | ppp::v2::Command::Proxy,
        ppp::v2::Protocol::Stream,
        (client, front),
    )
    .build()
    .unwrap();
    first.extend_from_slice(b"hello");
    relayed.write_all(&first).unwrap();
    let mut got = Vec::new();
    relayed.read_to_end(&mut got).unwrap();
    let text = String::from_utf8(got).unwrap();
    // The destination the balancer reported is passed on too, as HAProxy does.
    assert_eq!(
        text,
        "PROXY TCP4 203.0.113.9 198.51.100.1 4242 6380\r\nhello"
    );

    // Without a header, the connection is closed and nothing reaches the instance.
    let mut bare = TcpStream::connect(("127.0.0.1", weir.port2)).unwrap();
    bare.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let _ = bare.read_to_end(&mut got);
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn beyond_max_connections_a_connection_is_refused_or_queued() {
    let server = test_server(echo);
    let yaml = format!(
        "listeners:\n{}{}\
         upstreams:\n  echo:\n    targets: [{{ address: \"{server}\" }}]\n\
         admin: {{ address: \"127.0.0.1:{{port2}}\" }}\n",
        tcp_listener("capped", "{port}", "echo", ", max_connections: 2"),
        tcp_listener(
            "queued",
            "{port3}",
            "echo",
            ", max_connections: 1, on_limit: queue, queue_timeout: 10s"
        ),
    );
    let weir = Weir::start(&yaml);
    let wait = Duration::from_secs(5);
    let connect = |port: u16| TcpStream::connect(("127.0.0.1", port)).unwrap();
    open_connections(weir.port2, "capped", 0);

    // Refuse: two connections are served, the third is closed at once.
    let mut held: Vec<TcpStream> = (0..2).map(|_| connect(weir.port)).collect();
    for s in &mut held {
        assert_eq!(round_trip(s, b"ping", wait).as_deref(), Some(&b"ping"[..]));
    }
    let mut third = connect(weir.port);
    assert_eq!(
        round_trip(&mut third, b"ping", wait),
        None,
        "the third is refused"
    );
    drop(held.pop());
    open_connections(weir.port2, "capped", 1);
    let mut again = connect(weir.port);
    assert!(
        round_trip(&mut again, b"pong", wait).is_some(),
        "a place freed is taken"
    );

    // Queue: the second connection waits, and is served once the first leaves.
    let mut first = connect(weir.port3);
    assert!(round_trip(&mut first, b"one", wait).is_some());
    let mut second = connect(weir.port3);
    let short = Duration::from_millis(300);
    assert_eq!(
        round_trip(&mut second, b"two", short),
        None,
        "waits in the queue"
    );
    drop(first);
    second.set_read_timeout(Some(wait)).unwrap();
    let mut back = [0; 3];
    second.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"two");

    let metrics = scrape(weir.port2);
    assert!(
        metrics.contains("weir_tcp_refused_total{listener=\"capped\",reason=\"limit\"} 1"),
        "{metrics}"
    );
}

#[test]
fn a_reload_moves_new_connections_and_keeps_open_ones() {
    let (a, b) = (test_server(echo), test_server(echo));
    let config = |target: SocketAddr| {
        format!(
            "listeners:\n{}upstreams:\n  echo:\n    targets: [{{ address: \"{target}\" }}]\n",
            tcp_listener("echo", "{port}", "echo", "")
        )
    };
    let weir = Weir::start_logging(&config(a), "info");
    let wait = Duration::from_secs(5);
    let mut open = TcpStream::connect(("127.0.0.1", weir.port)).unwrap();
    assert!(round_trip(&mut open, b"before", wait).is_some());
    weir.rewrite(&config(b));
    weir.signal(Signal::SIGHUP);
    weir.wait_log(&["reloaded"], wait).expect("reloaded");
    // The open connection still reaches a; a new one reaches b.
    assert!(round_trip(&mut open, b"after", wait).is_some());
    let mut new = TcpStream::connect(("127.0.0.1", weir.port)).unwrap();
    assert!(round_trip(&mut new, b"new", wait).is_some());
    let peers = |port: u16| connections_to(port);
    assert_eq!((peers(a.port()), peers(b.port())), (1, 1));
}

#[test]
fn a_tls_listener_terminates_tls_and_forwards_plain_tcp() {
    let server = test_server(echo);
    let ca = TestCa::new();
    let (cert, key) = ca.issue("db", &["db.example.com"], &[]);
    let yaml = format!(
        "listeners:\n  - name: secure\n    address: \"127.0.0.1:{{port}}\"\n    protocol: tls\n    \
         upstream: echo\n    tls: {{ certificates: [{{ cert: \"{}\", key: \"{}\" }}] }}\n\
         upstreams:\n  echo:\n    targets: [{{ address: \"{server}\" }}]\n\
         admin: {{ address: \"127.0.0.1:{{port2}}\" }}\n",
        cert.display(),
        key.display()
    );
    let weir = Weir::start(&yaml);
    let mut connector =
        openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls()).unwrap();
    connector.set_ca_file(ca.ca()).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", weir.port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut tls = connector.build().connect("db.example.com", tcp).unwrap();
    tls.write_all(b"over tls").unwrap();
    let mut back = [0; 8];
    tls.read_exact(&mut back).unwrap();
    assert_eq!(
        &back, b"over tls",
        "the instance got plain bytes and echoed them"
    );
    let version = tls.ssl().version_str().to_string();
    let sample =
        format!("weir_tls_handshakes_total{{listener=\"secure\",version=\"{version}\"}} 1");
    assert!(scrape(weir.port2).contains(&sample), "{sample}");
}

#[test]
fn an_upgrade_hands_a_tcp_listener_over_and_the_old_process_keeps_its_connections() {
    let server = test_server(echo);
    let yaml = format!(
        "server: {{ pid_file: weir.pid, upgrade_sock: weir-upgrade.sock, error_log: new-weir.log, \
         graceful_shutdown_timeout: 30s }}\n\
         listeners:\n{}upstreams:\n  echo:\n    targets: [{{ address: \"{server}\" }}]\n",
        tcp_listener("echo", "{port}", "echo", "")
    );
    let mut weir = Weir::start(&yaml);
    let wait = Duration::from_secs(5);
    let mut open = TcpStream::connect(("127.0.0.1", weir.port)).unwrap();
    assert!(round_trip(&mut open, b"before", wait).is_some());

    let out = Command::new(weir_bin())
        .args(["upgrade", "--config"])
        .arg(weir.config())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let pid_file = std::fs::read_to_string(weir.dir.path().join("weir.pid")).unwrap();
    let new_pid: u32 = pid_file.trim().parse().unwrap();
    assert_ne!(new_pid, weir.pid);
    let _new = Detached(new_pid);

    // New connections are served; the one opened before goes on through the old process,
    // which stays while it is open, and leaves once it is closed.
    let mut fresh = TcpStream::connect(("127.0.0.1", weir.port)).unwrap();
    assert!(round_trip(&mut fresh, b"new", wait).is_some());
    drop(fresh);
    assert!(round_trip(&mut open, b"after", wait).is_some());
    assert!(
        weir.wait_exit(Duration::from_secs(7)).is_none(),
        "the old process waits for it"
    );
    drop(open);
    let status = weir
        .wait_exit(Duration::from_secs(10))
        .expect("the old process leaves");
    assert!(status.success(), "{status:?}");
    let mut later = TcpStream::connect(("127.0.0.1", weir.port)).unwrap();
    assert!(round_trip(&mut later, b"later", wait).is_some());
}
