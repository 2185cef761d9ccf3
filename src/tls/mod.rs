//! TLS termination. Each `https` listener gets an OpenSSL acceptor, built once, whose
//! certificate callback picks certificates by SNI from a [`CertSet`] held in an `ArcSwap`.
//! Reloading replaces the set and nothing else: the acceptor, its session cache and its
//! ticket keys stay, so clients keep resuming sessions across certificate changes, and a set
//! that fails to load never replaces a working one.

mod certs;
mod store;
mod watch;

pub(crate) use certs::{load_ca, CertKey};
pub(crate) use store::CertSet;
pub(crate) use watch::Watcher;

use crate::config::{ListenerTls, TlsVersion};
use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::TlsAccept;
use pingora::tls::ssl::{NameType, SslOptions, SslRef, SslSessionCacheMode, SslVersion};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::SystemTime;

/// A certificate or TLS setting that could not be used, located in the configuration.
#[derive(Debug, thiserror::Error)]
#[error("{at}: {what}")]
pub(crate) struct TlsError {
    /// `FILE:LINE:COLUMN: path` of the setting.
    at: String,
    /// What went wrong.
    what: String,
}

impl TlsError {
    /// A problem with the setting at `at`.
    pub(crate) fn new(at: &str, what: impl Into<String>) -> Self {
        Self {
            at: at.to_string(),
            what: what.into(),
        }
    }
}

/// Every certificate that failed to load, one per line, so one edit round fixes them all.
#[derive(Debug, thiserror::Error)]
pub(crate) struct TlsErrors(pub Vec<TlsError>);

impl std::fmt::Display for TlsErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl From<TlsError> for TlsErrors {
    fn from(e: TlsError) -> Self {
        Self(vec![e])
    }
}

/// The certificates of one `https` listener, replaceable while it serves.
pub(crate) struct ListenerCerts {
    /// The listener's name, for logs.
    pub listener: String,
    spec: ArcSwap<ListenerTls>,
    current: ArcSwap<CertSet>,
    /// The files as last loaded.
    loaded: ArcSwap<Stamp>,
}

/// Size, modification and change times and inode of each certificate and key file (`None`
/// if unreadable): a file renamed into place is seen even with the same size and mtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp(Vec<Option<FileStamp>>);

/// Size, modification time, change time (seconds, nanoseconds) and inode.
type FileStamp = (u64, SystemTime, (i64, i64), u64);

impl ListenerCerts {
    /// Loads every certificate of a listener; any failure fails the whole listener.
    pub(crate) fn load(listener: &str, spec: &ListenerTls) -> Result<Self, TlsErrors> {
        let stamp = stamp(spec);
        let set = build(listener, spec)?;
        Ok(Self {
            listener: listener.to_string(),
            spec: ArcSwap::from_pointee(spec.clone()),
            current: ArcSwap::from_pointee(set),
            loaded: ArcSwap::from_pointee(stamp),
        })
    }

    /// Reads the files again and, if all of them load, serves them from the next handshake
    /// on. On failure the previous certificates stay and the error says why; the files are
    /// not tried again until they change.
    pub(crate) fn reload(&self) -> Result<(), TlsErrors> {
        self.loaded.store(Arc::new(self.stamp()));
        let spec = self.spec.load_full();
        let set = self.prepare(&spec)?;
        self.replace(&spec, set);
        Ok(())
    }

    /// Loads the certificates of `spec` (a configuration being reloaded) without serving
    /// them yet.
    pub(crate) fn prepare(&self, spec: &ListenerTls) -> Result<CertSet, TlsErrors> {
        build(&self.listener, spec)
    }

    /// Serves `set`, prepared from `spec`, from the next handshake on; the files of `spec`
    /// are watched from now on. Versions and ALPN stay as the acceptor was built.
    pub(crate) fn replace(&self, spec: &ListenerTls, set: CertSet) {
        let serials: Vec<String> = set.all.iter().map(|c| c.serial()).collect();
        self.loaded.store(Arc::new(stamp(spec)));
        self.spec.store(Arc::new(spec.clone()));
        self.current.store(Arc::new(set));
        log::info!(
            "listener `{}`: certificates loaded (serials {})",
            self.listener,
            serials.join(", ")
        );
    }

    /// The files as they are on disk now.
    pub(crate) fn stamp(&self) -> Stamp {
        stamp(&self.spec.load())
    }

    /// Whether `stamp` is what was last loaded.
    pub(crate) fn is_loaded(&self, stamp: &Stamp) -> bool {
        **self.loaded.load() == *stamp
    }

    /// Warns about every certificate close to expiry.
    pub(crate) fn warn_if_expiring(&self) {
        for cert in &self.current.load().all {
            cert.warn_if_expiring(&self.listener);
        }
    }

    /// OpenSSL settings for the listener: TLS 1.2 or 1.3 and up, Mozilla's intermediate
    /// ciphers in the server's order of preference, a server-side session cache and tickets
    /// for resumption, HTTP/2 by ALPN.
    pub(crate) fn settings(self: &Arc<Self>) -> Result<TlsSettings, TlsError> {
        let spec = self.spec.load();
        let at = spec
            .certificates
            .first()
            .map_or_else(String::new, |c| c.at.to_string());
        let fail = |e: &dyn std::fmt::Display| TlsError::new(&at, format!("TLS setup: {e}"));
        let mut settings =
            TlsSettings::with_callbacks(Box::new(Sni(self.clone()))).map_err(|e| fail(&e))?;
        let min = match spec.min_version {
            TlsVersion::Tls12 => SslVersion::TLS1_2,
            TlsVersion::Tls13 => SslVersion::TLS1_3,
        };
        settings
            .set_min_proto_version(Some(min))
            .map_err(|e| fail(&e))?;
        // The server's order (strongest first), so a client offering a weak cipher first still
        // gets a strong one; ChaCha20 first for clients that prefer it (no AES hardware).
        settings.set_options(SslOptions::CIPHER_SERVER_PREFERENCE | SslOptions::PRIORITIZE_CHACHA);
        settings.set_session_cache_mode(SslSessionCacheMode::SERVER);
        // At most 32 bytes, OpenSSL's limit.
        let context = self.listener.as_bytes();
        settings
            .set_session_id_context(context.get(..32).unwrap_or(context))
            .map_err(|e| fail(&e))?;
        if spec.http2 {
            settings.enable_h2();
        }
        Ok(settings)
    }
}

/// Loads every certificate of `spec` and logs those close to expiry.
fn build(listener: &str, spec: &ListenerTls) -> Result<CertSet, TlsErrors> {
    let (certs, errors): (Vec<_>, Vec<_>) = spec
        .certificates
        .iter()
        .map(CertKey::load)
        .partition(Result::is_ok);
    if !errors.is_empty() {
        return Err(TlsErrors(
            errors.into_iter().filter_map(Result::err).collect(),
        ));
    }
    let certs: Vec<CertKey> = certs.into_iter().filter_map(Result::ok).collect();
    for c in &certs {
        c.warn_if_expiring(listener);
    }
    Ok(CertSet::new(certs, spec.default))
}

fn stamp(spec: &ListenerTls) -> Stamp {
    Stamp(
        spec.certificates
            .iter()
            .flat_map(|c| [&c.cert, &c.key])
            .map(|p| {
                let m = std::fs::metadata(p).ok()?;
                Some((
                    m.len(),
                    m.modified().ok()?,
                    (m.ctime(), m.ctime_nsec()),
                    m.ino(),
                ))
            })
            .collect(),
    )
}

/// OpenSSL's certificate callback: runs on every full handshake, after SNI is known.
struct Sni(Arc<ListenerCerts>);

#[async_trait]
impl TlsAccept for Sni {
    async fn certificate_callback(&self, ssl: &mut SslRef) {
        let set = self.0.current.load();
        let certs = set.find(ssl.servername(NameType::HOST_NAME));
        for cert in certs {
            if let Err(e) = cert.install(ssl) {
                log::warn!(
                    "listener `{}`: cannot use certificate {}: {e}",
                    self.0.listener,
                    cert.path
                );
            }
        }
    }
}
