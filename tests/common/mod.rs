//! Test harness: the real `weir` binary and real demo instances on ephemeral ports.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // a test helper that cannot go on should fail the test loudly

pub use nix::sys::signal::Signal;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a process gets to start listening.
pub const START_DEADLINE: Duration = Duration::from_secs(20);

/// The binary under test.
pub fn weir_bin() -> &'static str {
    env!("CARGO_BIN_EXE_weir")
}

/// A port that was free a moment ago (bound to port 0, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `f` until it returns `Some` or the deadline passes.
pub fn poll_until<T>(deadline: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until something accepts connections on `port`.
pub fn wait_listening(port: u16) {
    poll_until(START_DEADLINE, || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    })
    .unwrap_or_else(|| panic!("nothing listens on port {port}"));
}

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `sig` to `pid`; a process that is gone already is no error.
pub fn signal(pid: u32, sig: Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
}

/// A process the test started without owning it (a daemon, the process `weir upgrade`
/// starts), killed when dropped.
pub struct Detached(pub u32);

impl Drop for Detached {
    fn drop(&mut self) {
        signal(self.0, Signal::SIGKILL);
    }
}

/// A running demo instance.
pub struct Instance {
    pub id: String,
    pub port: u16,
    /// `ip:port` it listens on.
    pub listen: String,
    args: Vec<String>,
    proc: Option<Proc>,
}

impl Instance {
    pub fn start(id: &str) -> Self {
        Self::start_slow(id, Duration::ZERO)
    }

    /// An instance that waits `delay` before answering.
    pub fn start_slow(id: &str, delay: Duration) -> Self {
        Self::start_with(id, &["--delay", &format!("{}ms", delay.as_millis())])
    }

    /// An instance on a fresh 127.0.0.1 port with extra `weir instance` arguments.
    pub fn start_with(id: &str, args: &[&str]) -> Self {
        Self::start_at(id, &format!("127.0.0.1:{}", free_port()), args)
    }

    /// An instance listening on `listen` with extra `weir instance` arguments.
    pub fn start_at(id: &str, listen: &str, args: &[&str]) -> Self {
        let mut instance = Self {
            id: id.to_string(),
            port: listen.rsplit_once(':').unwrap().1.parse().unwrap(),
            listen: listen.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            proc: None,
        };
        instance.restart();
        instance
    }

    /// Kills the process (SIGKILL: connections reset, nothing drains).
    pub fn kill(&mut self) {
        self.proc = None;
    }

    /// Starts the process again on the same address.
    pub fn restart(&mut self) {
        let child = Command::new(weir_bin())
            .args(["instance", "--id", &self.id, "--listen", &self.listen])
            .args(&self.args)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.proc = Some(Proc(child));
        poll_until(START_DEADLINE, || TcpStream::connect(&self.listen).ok())
            .unwrap_or_else(|| panic!("instance {} does not listen on {}", self.id, self.listen));
    }

    pub fn address(&self) -> String {
        self.listen.clone()
    }

    pub fn port(&self) -> u16 {
        self.listen.rsplit(':').next().unwrap().parse().unwrap()
    }
}

/// A running weir with its configuration file.
pub struct Weir {
    pub port: u16,
    /// A second listener port, for `{port2}` in the configuration.
    pub port2: u16,
    /// Its pid, for signals.
    pub pid: u32,
    pub dir: tempfile::TempDir,
    /// Everything weir wrote to stderr so far.
    log: Arc<Mutex<String>>,
    _proc: Proc,
}

impl Weir {
    /// Starts weir on a fresh port. `yaml` may use `{port}` for the listener port.
    pub fn start(yaml: &str) -> Self {
        Self::start_logging(yaml, "error")
    }

    /// Starts weir with `RUST_LOG=level`, keeping its log for [`Weir::wait_log`]. `yaml` may
    /// use `{port2}` for a second listener and `{dir}` for the folder of the file.
    pub fn start_logging(yaml: &str, level: &str) -> Self {
        Self::start_from(Path::new(weir_bin()), yaml, level)
    }

    /// As [`Weir::start_logging`], running `binary`.
    pub fn start_from(binary: &Path, yaml: &str, level: &str) -> Self {
        let (port, port2) = (free_port(), free_port());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weir.yaml");
        let yaml = yaml
            .replace("{port}", &port.to_string())
            .replace("{port2}", &port2.to_string())
            .replace("{dir}", &dir.path().display().to_string());
        std::fs::write(&path, yaml).unwrap();
        let mut child = Command::new(binary)
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", level)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("weir: {line}");
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let pid = child.id();
        let proc = Proc(child);
        wait_listening(port);
        Self {
            port,
            port2,
            pid,
            dir,
            log,
            _proc: proc,
        }
    }

    /// Waits until a log line contains every one of `parts`; returns how long it took.
    pub fn wait_log(&self, parts: &[&str], deadline: Duration) -> Option<Duration> {
        let start = Instant::now();
        poll_until(deadline, || {
            let log = self.log.lock().unwrap();
            log.lines()
                .any(|l| parts.iter().all(|p| l.contains(p)))
                .then(|| start.elapsed())
        })
    }

    /// How many log lines contain `part`.
    pub fn log_count(&self, part: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .lines()
            .filter(|l| l.contains(part))
            .count()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Its configuration file.
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("weir.yaml")
    }

    /// Replaces its configuration file (written whole, then renamed, as an editor or a
    /// deploy does). `yaml` may use `{port}`, `{port2}` and `{dir}`.
    pub fn rewrite(&self, yaml: &str) {
        let yaml = yaml
            .replace("{port}", &self.port.to_string())
            .replace("{port2}", &self.port2.to_string())
            .replace("{dir}", &self.dir.path().display().to_string());
        let tmp = self.dir.path().join("weir.yaml.new");
        std::fs::write(&tmp, yaml).unwrap();
        std::fs::rename(&tmp, self.config()).unwrap();
    }

    /// Kills the process and keeps its folder, to start another one from the same file.
    pub fn kill(self) -> tempfile::TempDir {
        drop(self._proc);
        self.dir
    }

    /// Sends `sig` to the process.
    pub fn signal(&self, sig: Signal) {
        signal(self.pid, sig);
    }

    /// Waits until the process has exited; its status.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<std::process::ExitStatus> {
        poll_until(deadline, || self._proc.0.try_wait().unwrap())
    }
}

/// Established TCP connections to `port` on this machine, from /proc/net/tcp: how a test sees
/// that weir holds a request open to an instance.
pub fn connections_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let remote = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            fields.get(2).is_some_and(|r| r.ends_with(&remote)) && fields.get(3) == Some(&"01")
        })
        .count()
}

/// One listener on `{port}`; `/slow` goes to `slow`, everything else to `app`; `server` is
/// the inside of the `server: { }` mapping (the pid file is `weir.pid` beside the file).
pub fn slow_route(app: &Instance, slow: &Instance, server: &str) -> String {
    format!(
        "server: {{ pid_file: weir.pid, {server} }}\n\
         listeners:\n  - {{ name: web, address: \"127.0.0.1:{{port}}\" }}\n\
         routes:\n  - {{ name: slow, paths: [/slow], upstream: slow }}\n  \
         - {{ name: all, upstream: app }}\n\
         upstreams:\n  app:\n    targets: [{{ address: \"{}\", name: {} }}]\n  \
         slow:\n    targets: [{{ address: \"{}\", name: {} }}]\n",
        app.address(),
        app.id,
        slow.address(),
        slow.id
    )
}

/// A configuration with one listener on `{port}`, one catch-all route and one upstream.
pub fn single_upstream(balance: &str, targets: &[(&Instance, u32)], extra: &str) -> String {
    let mut yaml = format!(
        "listeners:\n  - {{ name: web, address: \"127.0.0.1:{{port}}\" }}\n\
         routes:\n  - {{ name: all, upstream: app }}\n\
         upstreams:\n  app:\n    balance: {balance}\n    targets:\n"
    );
    for (i, w) in targets {
        yaml.push_str(&format!(
            "      - {{ address: \"{}\", name: {}, weight: {w} }}\n",
            i.address(),
            i.id
        ));
    }
    yaml.push_str(extra);
    yaml
}

/// A keep-alive HTTP client.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The instances that serve `n` sequential GETs of `/`, each of which must succeed.
pub fn serving(weir: &Weir, n: usize) -> Vec<String> {
    let client = client();
    (0..n)
        .map(|_| {
            let r = client.get(weir.url("/")).send().unwrap();
            assert_eq!(r.status(), 200);
            served_by(&r)
        })
        .collect()
}

/// The instance that served a response, from the instance header.
pub fn served_by(resp: &reqwest::blocking::Response) -> String {
    resp.headers()
        .get("x-upstream-instance")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Runs `weir --config FILE --test`.
pub fn weir_test(path: &Path) -> Output {
    Command::new(weir_bin())
        .arg("--config")
        .arg(path)
        .arg("--test")
        .output()
        .unwrap()
}

/// Writes `yaml` to `weir.yaml` in a new temporary folder.
pub fn write_config(yaml: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weir.yaml");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(yaml.as_bytes()).unwrap();
    (dir, path)
}

/// Runs `command`, which must exit 0 (its stderr is shown if not); returns its output.
pub fn succeed(command: &mut Command) -> Output {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// certs/make-dev-certs, the development CA script.
pub fn cert_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("certs/make-dev-certs")
}

/// Makes sure certs/dev holds the development certificate the shipped configurations use.
/// Checked and made under a lock: tests running at once must not remake it while another
/// is reading it.
pub fn dev_certs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    succeed(
        Command::new("flock")
            .arg(root.join("target/dev-certs.lock"))
            .args([
                "sh",
                "-c",
                "[ -f certs/dev/localhost.crt ] || certs/make-dev-certs",
            ])
            .current_dir(root),
    );
}

/// A test CA in a temporary folder, issuing certificates with certs/make-dev-certs.
pub struct TestCa {
    pub dir: tempfile::TempDir,
}

impl TestCa {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Issues `file.crt` + `file.key` for `names`, with extra script options (`-k rsa`,
    /// `-d 5`); replaces an earlier pair of that name (a new serial each time).
    pub fn issue(&self, file: &str, names: &[&str], options: &[&str]) -> (PathBuf, PathBuf) {
        succeed(
            Command::new(cert_script())
                .args(["-o", &self.dir.path().display().to_string(), "-f", file])
                .args(options)
                .args(names),
        );
        (
            self.path(&format!("{file}.crt")),
            self.path(&format!("{file}.key")),
        )
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The CA certificate clients trust.
    pub fn ca(&self) -> PathBuf {
        self.path("ca.crt")
    }

    /// An HTTPS client trusting this CA, which resolves `names` to 127.0.0.1.
    pub fn client(&self, names: &[&str]) -> reqwest::blocking::Client {
        self.builder(names)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }

    /// A client builder trusting this CA, resolving `names` to 127.0.0.1.
    pub fn builder(&self, names: &[&str]) -> reqwest::blocking::ClientBuilder {
        let pem = std::fs::read(self.ca()).unwrap();
        let mut builder = reqwest::blocking::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
        for name in names {
            builder = builder.resolve(name, ([127, 0, 0, 1], 0).into());
        }
        builder
    }
}

/// Runs `openssl s_client` against 127.0.0.1:`port` with `args`, its stdin closed at once,
/// and returns what it printed (stdout and stderr).
pub fn s_client(port: u16, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The serial number (hex, as `openssl x509 -serial` prints it) of the certificate served
/// for `server_name`.
pub fn served_serial(port: u16, server_name: &str) -> String {
    let out = s_client(port, &["-servername", server_name]);
    let pem_start = out.find("-----BEGIN CERTIFICATE-----").unwrap_or(0);
    let mut x509 = Command::new("openssl")
        .args(["x509", "-noout", "-serial"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    x509.stdin
        .take()
        .unwrap()
        .write_all(&out.as_bytes()[pem_start..])
        .unwrap();
    let serial = x509.wait_with_output().unwrap();
    String::from_utf8_lossy(&serial.stdout).trim().to_string()
}

/// The serial of a certificate file.
pub fn file_serial(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-in"])
        .arg(cert)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[derive(Default)]
pub struct Tally {
    pub ok: usize,
    pub failed: Vec<String>,
    pub by_instance: std::collections::HashMap<String, usize>,
}

/// `workers` keep-alive clients sending GETs in a loop until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    /// Successful requests so far, readable while the load runs.
    served: Arc<std::sync::atomic::AtomicUsize>,
    workers: Vec<std::thread::JoinHandle<Tally>>,
}

impl Load {
    pub fn start(url: String, workers: usize) -> Self {
        Self::start_with(url, workers, |_| client())
    }

    /// Half the workers keep their connection, half open a new one for every request.
    pub fn mixed(url: String, workers: usize) -> Self {
        Self::mixed_with(url, workers, reqwest::blocking::Client::builder)
    }

    /// As [`Load::mixed`], each client built from `base()` (e.g. one trusting a test CA).
    pub fn mixed_with(
        url: String,
        workers: usize,
        base: impl Fn() -> reqwest::blocking::ClientBuilder,
    ) -> Self {
        Self::start_with(url, workers, |i| {
            let builder = base().timeout(Duration::from_secs(10));
            let builder = if i % 2 == 0 {
                builder
            } else {
                builder.pool_max_idle_per_host(0)
            };
            builder.build().unwrap()
        })
    }

    /// Worker `i` uses `make(i)`.
    pub fn start_with(
        url: String,
        workers: usize,
        make: impl Fn(usize) -> reqwest::blocking::Client,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let workers = (0..workers)
            .map(|i| {
                let (url, stop, client) = (url.clone(), stop.clone(), make(i));
                let served = served.clone();
                std::thread::spawn(move || {
                    let mut tally = Tally::default();
                    while !stop.load(Ordering::Relaxed) {
                        match client.get(&url).send() {
                            Ok(r) if r.status() == 200 => {
                                tally.ok += 1;
                                served.fetch_add(1, Ordering::Relaxed);
                                *tally.by_instance.entry(served_by(&r)).or_default() += 1;
                            }
                            Ok(r) => {
                                tally
                                    .failed
                                    .push(format!("{}: {}", r.status(), r.text().unwrap()))
                            }
                            Err(e) => tally.failed.push(format!("{e:?}")),
                        }
                    }
                    tally
                })
            })
            .collect();
        Self {
            stop,
            served,
            workers,
        }
    }

    /// Successful requests so far.
    pub fn served(&self) -> usize {
        self.served.load(Ordering::Relaxed)
    }

    /// Waits until `n` more requests have succeeded; panics after 10 s, as the load is stuck.
    pub fn wait_more(&self, n: usize) {
        let target = self.served() + n;
        poll_until(Duration::from_secs(10), || {
            (self.served() >= target).then_some(())
        })
        .unwrap_or_else(|| panic!("fewer than {n} requests succeeded in 10 s"));
    }

    pub fn finish(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = Tally::default();
        for w in self.workers {
            let t = w.join().unwrap();
            total.ok += t.ok;
            total.failed.extend(t.failed);
            for (k, v) in t.by_instance {
                *total.by_instance.entry(k).or_default() += v;
            }
        }
        total
    }
}
