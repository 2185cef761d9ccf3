//! A running weir: its configuration file in a temporary folder, its ports, its log, and the
//! signals a test sends it.

use super::ports::{free_ports, listens};
use super::processes::{poll_until, signal, weir_bin, Proc, Signal, START_DEADLINE};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How many sets of fresh ports weir is started on before the test gives up: another
/// process may take a free port before weir binds it, and weir then exits.
const START_ATTEMPTS: usize = 5;

/// A running weir with its configuration file.
pub struct Weir {
    pub port: u16,
    /// A second listener port, for `{port2}` in the configuration.
    pub port2: u16,
    /// A third listener port, for `{port3}` in the configuration.
    pub port3: u16,
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
    /// use `{port2}` and `{port3}` for more listeners and `{dir}` for the folder of the file.
    pub fn start_logging(yaml: &str, level: &str) -> Self {
        Self::start_from(Path::new(weir_bin()), yaml, level)
    }

    /// As [`Weir::start_logging`], running `binary`. Returns once weir itself listens on
    /// every port the file names; if weir exits first (a port was taken meanwhile), it is
    /// started again on fresh ports.
    pub fn start_from(binary: &Path, yaml: &str, level: &str) -> Self {
        Self::launch(binary, yaml, level, &[])
    }

    /// As [`Weir::start_logging`], with `env` set for weir (what `${VAR}` in the file reads).
    pub fn start_with_env(yaml: &str, level: &str, env: &[(&str, &str)]) -> Self {
        Self::launch(Path::new(weir_bin()), yaml, level, env)
    }

    fn launch(binary: &Path, yaml: &str, level: &str, env: &[(&str, &str)]) -> Self {
        let mut log = String::new();
        for _ in 0..START_ATTEMPTS {
            let ports: [u16; 3] = free_ports(3).try_into().unwrap();
            let dir = tempfile::tempdir().unwrap();
            let mut weir = Self::spawn(binary, yaml, level, env, ports, dir);
            let awaited: Vec<u16> = ["{port}", "{port2}", "{port3}"]
                .iter()
                .zip(ports)
                .filter(|(placeholder, _)| yaml.contains(*placeholder))
                .map(|(_, port)| port)
                .collect();
            let up = poll_until(START_DEADLINE, || {
                if awaited.iter().all(|&port| listens(weir.pid, port)) {
                    Some(true)
                } else {
                    weir._proc.0.try_wait().unwrap().map(|_| false)
                }
            });
            match up {
                Some(true) => return weir,
                Some(false) => log = weir.log.lock().unwrap().clone(),
                None => panic!("weir does not listen on {awaited:?}:\n{}", weir.log()),
            }
        }
        panic!("weir exited before listening, {START_ATTEMPTS} times; last log:\n{log}");
    }

    /// Writes the file with `ports` and starts weir on it, with `env` added to its own.
    fn spawn(
        binary: &Path,
        yaml: &str,
        level: &str,
        env: &[(&str, &str)],
        ports: [u16; 3],
        dir: tempfile::TempDir,
    ) -> Self {
        let [port, port2, port3] = ports;
        let path = dir.path().join("weir.yaml");
        let yaml = fill(yaml, ports, dir.path());
        std::fs::write(&path, yaml).unwrap();
        let mut child = Command::new(binary)
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", level)
            .envs(env.iter().copied())
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
        Self {
            port,
            port2,
            port3,
            pid: child.id(),
            dir,
            log,
            _proc: Proc(child),
        }
    }

    /// Everything weir logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
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
    /// deploy does). `yaml` may use `{port}`, `{port2}`, `{port3}` and `{dir}`.
    pub fn rewrite(&self, yaml: &str) {
        let yaml = fill(yaml, [self.port, self.port2, self.port3], self.dir.path());
        let tmp = self.dir.path().join("weir.yaml.new");
        std::fs::write(&tmp, yaml).unwrap();
        std::fs::rename(&tmp, self.config()).unwrap();
    }

    /// Kills the process and keeps its folder, to start another one from the same file.
    pub fn kill(self) -> tempfile::TempDir {
        drop(self._proc);
        self.dir
    }

    /// Kills the process and starts a new one from the same file, as a restart does; the
    /// new one once it listens on `port` and `port2`, and the folder it runs from.
    pub fn restart(self) -> (Proc, tempfile::TempDir) {
        let (port, port2, file) = (self.port, self.port2, self.config());
        let dir = self.kill();
        let restarted = Command::new(weir_bin())
            .arg("--config")
            .arg(&file)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let restarted = Proc(restarted);
        super::ports::wait_listening(restarted.0.id(), port);
        super::ports::wait_listening(restarted.0.id(), port2);
        (restarted, dir)
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

/// `yaml` with its placeholders replaced: `{port}`, `{port2}`, `{port3}` and `{dir}`.
fn fill(yaml: &str, [port, port2, port3]: [u16; 3], dir: &Path) -> String {
    yaml.replace("{port}", &port.to_string())
        .replace("{port2}", &port2.to_string())
        .replace("{port3}", &port3.to_string())
        .replace("{dir}", &dir.display().to_string())
}
