//! Processes a test starts: the binary under test, children killed when dropped, signals,
//! commands that must succeed, servers started on a fresh port, and polling with a deadline.

use super::ports::{free_ports, listens};
pub use nix::sys::signal::Signal;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// How long a process gets to start listening.
pub const START_DEADLINE: Duration = Duration::from_secs(20);

/// How many fresh ports a server is tried on before the test gives up: another process may
/// take a free port between [`free_port`] and the server's bind.
const PORT_ATTEMPTS: usize = 5;

/// The binary under test.
pub fn weir_bin() -> &'static str {
    env!("CARGO_BIN_EXE_weir")
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

/// Starts the server `command(port)` makes on a fresh port and waits until that very process
/// listens there; a server that exits first (its port was taken) is tried again on another.
pub fn spawn_listening(mut command: impl FnMut(u16) -> Command) -> (Proc, u16) {
    let (proc, ports) = spawn_listening_on(1, |ports| command(ports[0]));
    (proc, ports[0])
}

/// As [`spawn_listening`], for a server that listens on `n` fresh ports.
pub fn spawn_listening_on(
    n: usize,
    mut command: impl FnMut(&[u16]) -> Command,
) -> (Proc, Vec<u16>) {
    for _ in 0..PORT_ATTEMPTS {
        let ports = free_ports(n);
        let mut command = command(&ports);
        let mut child = Proc(command.spawn().unwrap());
        let pid = child.0.id();
        let up = poll_until(START_DEADLINE, || {
            if ports.iter().all(|&port| listens(pid, port)) {
                Some(true)
            } else {
                child.0.try_wait().unwrap().map(|_| false)
            }
        });
        match up {
            Some(true) => return (child, ports),
            Some(false) => continue,
            None => panic!("{command:?} does not listen on {ports:?}"),
        }
    }
    panic!("no fresh ports worked in {PORT_ATTEMPTS} attempts");
}
