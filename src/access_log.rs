//! The access log: one line per request, as JSON or in the combined format, to stdout or to a
//! file that SIGUSR1 reopens (for logrotate). A request formats its line on its own thread
//! and hands it to one writer thread, so no request waits on the file or on a lock.

use crate::config::{self, LogFormat};
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How long buffered lines may wait before they are written out when traffic is light.
const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// What one line says about one request.
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    /// When the request finished; RFC 3339 in UTC in JSON.
    #[serde(serialize_with = "rfc3339")]
    pub time: SystemTime,
    /// The request id the client saw.
    pub request_id: &'a str,
    /// The client's address (as trusted proxies reported it).
    pub client_ip: String,
    /// Request method.
    pub method: &'a str,
    /// Host the request was for.
    pub host: &'a str,
    /// Path and query.
    pub path: &'a str,
    /// Status answered; 499 when the client left first.
    pub status: u16,
    /// Body bytes sent to the client.
    pub bytes: usize,
    /// Seconds from request to the end of the response.
    pub duration: f64,
    /// Upstream and instance that served it, empty when none did.
    pub upstream: &'a str,
    /// See `upstream`.
    pub instance: &'a str,
    /// Attempts after the first.
    pub retries: u32,
    /// TLS version of the client connection, empty for plain HTTP.
    pub tls_version: &'a str,
    /// `Referer`, for the combined format.
    #[serde(skip)]
    pub referer: &'a str,
    /// `User-Agent`, for the combined format.
    #[serde(skip)]
    pub user_agent: &'a str,
    /// HTTP version, for the combined format's request line.
    #[serde(skip)]
    pub version: &'a str,
}

/// What one line says about one TCP connection.
#[derive(Debug, Serialize)]
pub struct ConnectionEntry<'a> {
    /// When the connection ended; RFC 3339 in UTC in JSON.
    #[serde(serialize_with = "rfc3339")]
    pub time: SystemTime,
    /// The listener that accepted it.
    pub listener: &'a str,
    /// The client's address (from a PROXY protocol header, behind a trusted balancer).
    pub client_ip: String,
    /// nginx stream's session status: 200 forwarded; 400 bad PROXY header; 403 PROXY header
    /// from an untrusted peer; 502 no instance could be connected to; 503 over the limit or
    /// no instance available.
    pub status: u16,
    /// Bytes received from the client.
    pub bytes_received: u64,
    /// Bytes sent to the client.
    pub bytes_sent: u64,
    /// Seconds the connection lasted.
    pub duration: f64,
    /// Upstream and instance it was forwarded to, empty when none.
    pub upstream: &'a str,
    /// See `upstream`.
    pub instance: &'a str,
    /// Connection attempts after the first.
    pub retries: u32,
    /// TLS version of a `tls` listener's connection, else empty.
    pub tls_version: &'a str,
}

/// The access log of a running weir.
#[derive(Clone)]
pub struct AccessLog {
    format: LogFormat,
    lines: Sender<String>,
}

impl AccessLog {
    /// Opens the log of `settings` (its file is created if needed) and starts its writer.
    pub fn start(settings: &config::AccessLog) -> std::io::Result<Self> {
        let reopen = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGUSR1, reopen.clone())?;
        let sink = Sink::open(settings.path.clone())?;
        let (lines, received) = mpsc::channel();
        std::thread::Builder::new()
            .name("weir access log".into())
            .spawn(move || write_lines(received, sink, &reopen))?;
        Ok(Self {
            format: settings.format,
            lines,
        })
    }

    /// Logs one request.
    pub fn write(&self, entry: &Entry) {
        let line = match self.format {
            LogFormat::Json => serde_json::to_string(entry).unwrap_or_default(),
            LogFormat::Combined => combined(entry),
        };
        // The writer lives as long as the process.
        let _ = self.lines.send(line);
    }

    /// Logs one TCP connection; the combined format writes nginx stream's `basic` line.
    pub fn write_connection(&self, entry: &ConnectionEntry) {
        let line = match self.format {
            LogFormat::Json => serde_json::to_string(entry).unwrap_or_default(),
            LogFormat::Combined => format!(
                "{} [{}] TCP {} {} {} {:.3} \"{}\"",
                entry.client_ip,
                local_time(entry.time),
                entry.status,
                entry.bytes_sent,
                entry.bytes_received,
                entry.duration,
                entry.instance
            ),
        };
        let _ = self.lines.send(line);
    }
}

/// A time as RFC 3339 in UTC, to the millisecond, formatted only for JSON lines.
fn rfc3339<S: serde::Serializer>(time: &SystemTime, out: S) -> Result<S::Ok, S::Error> {
    out.collect_str(&humantime::format_rfc3339_millis(*time))
}

/// `client - - [10/Oct/2000:13:55:36 +0000] "GET /path HTTP/1.1" 200 2326 "referer" "agent"`.
fn combined(e: &Entry) -> String {
    let time = local_time(e.time);
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.replace('"', "\\\"")
        }
    };
    format!(
        "{} - - [{time}] \"{} {} {}\" {} {} \"{}\" \"{}\"",
        e.client_ip,
        e.method,
        e.path.replace('"', "%22"),
        e.version,
        e.status,
        e.bytes,
        dash(e.referer),
        dash(e.user_agent)
    )
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
