//! Demo instances (`weir instance`) as real backends, each on a port of its own.

use super::ports::{listening_ports, refuse_at, wait_listening, RefusedAddress};
use super::processes::{poll_until, weir_bin, Proc, START_DEADLINE};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A running demo instance.
pub struct Instance {
    pub id: String,
    pub port: u16,
    /// `ip:port` it listens on.
    pub listen: String,
    args: Vec<String>,
    proc: Option<Proc>,
    /// While killed, its address refuses and no other test's server takes it.
    hold: Option<RefusedAddress>,
}

impl Instance {
    pub fn start(id: &str) -> Self {
        Self::start_slow(id, Duration::ZERO)
    }

    /// An instance that waits `delay` before answering.
    pub fn start_slow(id: &str, delay: Duration) -> Self {
        Self::start_with(id, &["--delay", &format!("{}ms", delay.as_millis())])
    }

    /// An instance on a port of its own on 127.0.0.1 with extra `weir instance` arguments.
    pub fn start_with(id: &str, args: &[&str]) -> Self {
        Self::start_at(id, "127.0.0.1:0", args)
    }

    /// An instance listening on `listen` (port 0: one the system picks) with extra
    /// `weir instance` arguments; returns once the instance itself listens there.
    pub fn start_at(id: &str, listen: &str, args: &[&str]) -> Self {
        let mut instance = Self {
            id: id.to_string(),
            port: listen.rsplit_once(':').unwrap().1.parse().unwrap(),
            listen: listen.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            proc: None,
            hold: None,
        };
        instance.restart();
        instance
    }

    /// Kills the process (SIGKILL: connections reset, nothing drains); its address refuses
    /// connections until [`Instance::restart`].
    pub fn kill(&mut self) {
        self.proc = None;
        self.hold = refuse_at(self.listen.parse().unwrap());
    }

    /// Starts the process again on the same address (the first time, on the address given,
    /// and learns the port the system picked).
    pub fn restart(&mut self) {
        self.hold = None;
        let child = Command::new(weir_bin())
            .args(["instance", "--id", &self.id, "--listen", &self.listen])
            .args(&self.args)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        self.proc = Some(Proc(child));
        if self.port == 0 {
            let (host, _) = self.listen.rsplit_once(':').unwrap();
            self.port = poll_until(START_DEADLINE, || listening_ports(pid).into_iter().next())
                .unwrap_or_else(|| panic!("instance {} does not listen", self.id));
            self.listen = format!("{host}:{}", self.port);
        } else {
            wait_listening(pid, self.port);
        }
    }

    pub fn address(&self) -> String {
        self.listen.clone()
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}
