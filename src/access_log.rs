//! The access log: one line per request or TCP connection, as JSON or in the combined
//! format, to stdout or to a file that SIGUSR1 reopens (for logrotate). A request formats its
//! line on its own thread and hands it to one writer thread through a bounded queue, so no
//! request waits on the file or on a lock: when the file stops taking lines (a stuck disk),
//! the queue fills and further lines are dropped and counted, never held in memory.

use crate::config::{self, LogFormat};
use crate::metrics;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use prometheus::IntCounter;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// How long buffered lines may wait before they are written out when traffic is light.
const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// One access log line.
#[derive(Debug, Serialize)]
pub(crate) struct Entry<'a> {
    /// When the request or connection finished; RFC 3339 in UTC in JSON.
    #[serde(serialize_with = "rfc3339")]
    pub time: SystemTime,
    /// What was served: a request, or a TCP connection.
    #[serde(flatten)]
    pub served: Served<'a>,
    /// The client's address (as trusted proxies or a PROXY protocol header reported it).
    pub client_ip: String,
    /// The status answered: 499 when an HTTP client left first; for a TCP connection,
    /// nginx stream's session status (200 forwarded, 400 bad PROXY header, 403 PROXY header
    /// from an untrusted peer, 502 no instance could be connected to, 503 over the limit or
    /// no instance available).
    pub status: u16,
    /// Seconds from the request (or the connection) to its end.
    pub duration: f64,
    /// Upstream and instance that served it, empty when none did.
    pub upstream: &'a str,
    /// See `upstream`.
    pub instance: &'a str,
    /// Attempts after the first.
    pub retries: u32,
    /// TLS version of the client connection, empty without TLS.
    pub tls_version: &'a str,
}

/// The part of a line that depends on what was served.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum Served<'a> {
    /// An HTTP request.
    Request {
        /// The request id the client saw.
        request_id: &'a str,
        /// Request method.
        method: &'a str,
        /// Host the request was for.
        host: &'a str,
        /// Path and query, API keys in it redacted.
        path: std::borrow::Cow<'a, str>,
        /// The consumer a policy identified; empty when none did.
        consumer: &'a str,
        /// Body bytes sent to the client.
        bytes: usize,
        /// `Referer`, for the combined format.
        #[serde(skip)]
        referer: &'a str,
        /// `User-Agent`, for the combined format.
        #[serde(skip)]
        user_agent: &'a str,
        /// HTTP version, for the combined format's request line.
        #[serde(skip)]
        version: &'a str,
    },
    /// A connection of a `tcp` or `tls` listener.
    Connection {
        /// The listener that accepted it.
        listener: &'a str,
        /// Bytes received from the client.
        bytes_received: u64,
        /// Bytes sent to the client.
        bytes_sent: u64,
    },
}

/// The access log of a running weir.
#[derive(Clone)]
pub(crate) struct AccessLog {
    format: LogFormat,
    lines: SyncSender<String>,
    reopen: Arc<AtomicBool>,
    to_file: bool,
    dropped: IntCounter,
}

impl AccessLog {
    /// Opens the log of `settings` (its file is created if needed, so that a path that
    /// cannot be written fails the start). Lines queue until the [`Writer`] runs.
    pub(crate) fn open(settings: &config::AccessLog) -> std::io::Result<(Self, Writer)> {
        let reopen = Arc::new(AtomicBool::new(false));
        let sink = Sink::open(settings.path.clone())?;
        let (lines, received) = mpsc::sync_channel(settings.queue);
        let writer = Writer {
            parts: Mutex::new(Some((received, sink))),
            reopen: reopen.clone(),
        };
        let log = Self {
            format: settings.format,
            lines,
            reopen,
            to_file: settings.path.is_some(),
            dropped: metrics::access_log_dropped(),
        };
        Ok((log, writer))
    }

    /// Logs one request or connection; when the writer is `queue` lines behind, the line is
    /// dropped and counted instead.
    pub(crate) fn write(&self, entry: &Entry) {
        let line = match self.format {
            LogFormat::Json => serde_json::to_string(entry).unwrap_or_default(),
            LogFormat::Combined => combined(entry),
        };
        match self.lines.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.dropped.inc(),
            // The writer lives as long as the process.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Has the writer open its file again (after logrotate moved it away); `false` when the
    /// log goes to stdout, which there is no reopening.
    pub(crate) fn reopen(&self) -> bool {
        self.reopen.store(true, Ordering::Relaxed);
        self.to_file
    }
}

/// The thread that writes the lines, started as a background service: in the process that
/// serves, after a daemon's fork (a thread started before it would not survive it).
pub(crate) struct Writer {
    parts: Mutex<Option<(Receiver<String>, Sink)>>,
    reopen: Arc<AtomicBool>,
}

#[async_trait]
impl BackgroundService for Writer {
    async fn start(&self, _shutdown: ShutdownWatch) {
        let parts = self
            .parts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let Some((lines, sink)) = parts else { return };
        let reopen = self.reopen.clone();
        let started = std::thread::Builder::new()
            .name("weir access log".into())
            .spawn(move || write_lines(lines, sink, &reopen));
        if let Err(e) = started {
            log::error!("cannot start the access log writer, lines will be dropped: {e}");
        }
    }
}

/// A time as RFC 3339 in UTC, to the millisecond, formatted only for JSON lines.
fn rfc3339<S: serde::Serializer>(time: &SystemTime, out: S) -> Result<S::Ok, S::Error> {
    out.collect_str(&humantime::format_rfc3339_millis(*time))
}

/// A request as `client - consumer [10/Oct/2000:13:55:36 +0000] "GET /path HTTP/1.1" 200
/// 2326 "referer" "agent"` (`-` for no consumer, as for no user); a TCP connection as nginx stream's `basic` line.
fn combined(e: &Entry) -> String {
    let time = local_time(e.time);
    match &e.served {
        Served::Request {
            method,
            path,
            consumer,
            version,
            bytes,
            referer,
            user_agent,
            ..
        } => {
            let dash = |s: &str| {
                if s.is_empty() {
                    "-".to_string()
                } else {
                    s.replace('"', "\\\"")
                }
            };
            format!(
                "{} - {} [{time}] \"{method} {} {version}\" {} {bytes} \"{}\" \"{}\"",
                e.client_ip,
                dash(consumer),
                path.replace('"', "%22"),
                e.status,
                dash(referer),
                dash(user_agent)
            )
        }
        Served::Connection {
            bytes_received,
            bytes_sent,
            ..
        } => format!(
            "{} [{time}] TCP {} {bytes_sent} {bytes_received} {:.3} \"{}\"",
            e.client_ip, e.status, e.duration, e.instance
        ),
    }
}

/// `10/Oct/2000:13:55:36 +0000`, in local time.
fn local_time(time: SystemTime) -> impl std::fmt::Display {
    chrono::DateTime::<chrono::Local>::from(time).format("%d/%b/%Y:%H:%M:%S %z")
}

/// Where lines go: stdout, or a file that can be reopened.
struct Sink {
    path: Option<PathBuf>,
    out: BufWriter<Box<dyn Write + Send>>,
}

impl Sink {
    fn open(path: Option<PathBuf>) -> std::io::Result<Self> {
        let out: Box<dyn Write + Send> = match &path {
            Some(p) => Box::new(append(p)?),
            None => Box::new(std::io::stdout()),
        };
        Ok(Self {
            path,
            out: BufWriter::new(out),
        })
    }

    /// After logrotate moved the file away: write to a new one at the same path.
    fn reopen(&mut self) {
        let Some(path) = &self.path else { return };
        let _ = self.out.flush();
        match append(path) {
            Ok(file) => {
                self.out = BufWriter::new(Box::new(file));
                log::info!("SIGUSR1: reopened the access log {}", path.display());
            }
            Err(e) => log::error!("SIGUSR1: cannot reopen {}: {e}", path.display()),
        }
    }
}

fn append(path: &PathBuf) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// The writer thread: writes what arrives, flushing once the queue is empty.
fn write_lines(lines: Receiver<String>, mut sink: Sink, reopen: &AtomicBool) {
    loop {
        if reopen.swap(false, Ordering::Relaxed) {
            sink.reopen();
        }
        match lines.recv_timeout(FLUSH_EVERY) {
            Ok(line) => {
                let mut next = Some(line);
                while let Some(line) = next {
                    let _ = writeln!(sink.out, "{line}");
                    next = lines.try_recv().ok();
                }
                let _ = sink.out.flush();
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}
