//! A `redis-server` of a test's own, on a fresh port, without persistence.

use super::ports::wait_listening;
use super::processes::{spawn_listening, succeed, Proc};
use std::process::{Command, Stdio};

/// A running `redis-server`.
pub struct Redis {
    pub port: u16,
    proc: Option<Proc>,
}

fn command(port: u16) -> Command {
    let mut server = Command::new("redis-server");
    server
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null());
    server
}

impl Redis {
    pub fn start() -> Self {
        let (proc, port) = spawn_listening(command);
        Self {
            port,
            proc: Some(proc),
        }
    }

    /// Stops the server (its port then refuses connections).
    pub fn stop(&mut self) {
        self.proc = None;
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.proc = None;
        let proc = Proc(command(self.port).spawn().unwrap());
        wait_listening(proc.0.id(), self.port);
        self.proc = Some(proc);
    }

    /// Makes the server hold every client's commands for `pause` (`CLIENT PAUSE … ALL`):
    /// a Redis that is up but slow.
    pub fn pause(&self, pause: std::time::Duration) {
        let ms = pause.as_millis().to_string();
        succeed(Command::new("redis-cli").args([
            "-p",
            &self.port.to_string(),
            "CLIENT",
            "PAUSE",
            &ms,
            "ALL",
        ]));
    }

    /// A field of `INFO stats`, as a number.
    pub fn stat(&self, field: &str) -> u64 {
        let out = succeed(Command::new("redis-cli").args([
            "-p",
            &self.port.to_string(),
            "INFO",
            "stats",
        ]));
        let text = String::from_utf8(out.stdout).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .unwrap_or_else(|| panic!("no {field} in {text}"))
            .trim()
            .parse()
            .unwrap()
    }
}
