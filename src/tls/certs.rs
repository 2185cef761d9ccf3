//! One certificate as served: the leaf, its chain and its key, loaded from PEM files and
//! checked to belong together before any client sees them.

use super::TlsError;
use crate::config::CertFiles;
use openssl::asn1::Asn1Time;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::ssl::SslRef;
use openssl::x509::X509;
use pingora::tls::ext;

/// Certificates closer to expiry than this are logged as a warning.
pub(crate) const EXPIRY_WARNING_DAYS: i32 = 14;

/// A loaded certificate, ready to be installed on a handshake.
pub(crate) struct CertKey {
    leaf: X509,
    chain: Vec<X509>,
    key: PKey<Private>,
    /// Server names it answers (lowercase; `*.example.com` for wildcards).
    pub names: Vec<String>,
    /// The certificate file, for logs.
    pub path: String,
}

impl CertKey {
    /// Reads and checks one `cert` + `key` pair. The names are the configured ones, else the
    /// certificate's DNS subject alternative names, else its common name.
    pub(crate) fn load(files: &CertFiles) -> Result<Self, TlsError> {
        let at = files.at.to_string();
        let fail = |what: String| TlsError::new(&at, what);
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|e| fail(format!("cannot read {}: {e}", path.display())))
        };
        let mut certs = X509::stack_from_pem(&read(&files.cert)?)
            .map_err(|e| {
                fail(format!(
                    "{} is not a PEM certificate: {e}",
                    files.cert.display()
                ))
            })?
            .into_iter();
        let leaf = certs
            .next()
            .ok_or_else(|| fail(format!("{} holds no certificate", files.cert.display())))?;
        let key = PKey::private_key_from_pem(&read(&files.key)?).map_err(|e| {
            fail(format!(
                "{} is not a PEM private key: {e}",
                files.key.display()
            ))
        })?;
        let matches = leaf.public_key().is_ok_and(|public| public.public_eq(&key));
        if !matches {
            return Err(fail(format!(
                "the key in {} does not belong to the certificate in {}",
                files.key.display(),
                files.cert.display()
            )));
        }
        let names = if files.names.is_empty() {
            own_names(&leaf)
        } else {
            files.names.clone()
        };
        Ok(Self {
            leaf,
            chain: certs.collect(),
            key,
            names,
            path: files.cert.display().to_string(),
        })
    }

    /// The key algorithm: OpenSSL holds one certificate per algorithm on a connection, so
    /// an ECDSA and an RSA certificate for the same name are served side by side.
    pub(crate) fn kind(&self) -> Id {
        self.key.id()
    }

    /// The serial number in hex, for logs.
    pub(crate) fn serial(&self) -> String {
        self.leaf
            .serial_number()
            .to_bn()
            .and_then(|bn| bn.to_hex_str().map(|s| s.to_string()))
            .unwrap_or_default()
    }

    /// Puts the certificate, its key and its chain on a connection being handshaken.
    pub(crate) fn install(&self, ssl: &mut SslRef) -> Result<(), openssl::error::ErrorStack> {
        ext::ssl_use_certificate(ssl, &self.leaf)?;
        ext::ssl_use_private_key(ssl, &self.key)?;
        for c in &self.chain {
            ext::ssl_add_chain_cert(ssl, c)?;
        }
        Ok(())
    }

    /// Days until the certificate expires (negative once it has), if OpenSSL can tell.
    pub(crate) fn days_left(&self) -> Option<i32> {
        let now = Asn1Time::days_from_now(0).ok()?;
        now.diff(self.leaf.not_after()).ok().map(|d| d.days)
    }

    /// Logs a warning when the certificate expires within [`EXPIRY_WARNING_DAYS`].
    pub(crate) fn warn_if_expiring(&self, listener: &str) {
        let Some(days) = self.days_left() else { return };
        if days >= EXPIRY_WARNING_DAYS {
            return;
        }
        let when = if days < 0 {
            format!("expired {} day(s) ago", -days)
        } else {
            format!("expires in {days} day(s)")
        };
        log::warn!(
            "listener `{listener}`: certificate {} ({}) {when}, on {}",
            self.path,
            self.names.join(", "),
            self.leaf.not_after()
        );
    }
}

/// DNS names from the subject alternative names, else the common name; lowercase.
fn own_names(cert: &X509) -> Vec<String> {
    let sans: Vec<String> = cert
        .subject_alt_names()
        .into_iter()
        .flatten()
        .filter_map(|n| n.dnsname().map(str::to_ascii_lowercase))
        .collect();
    if !sans.is_empty() {
        return sans;
    }
    cert.subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .filter_map(|e| e.data().to_string().ok().map(|s| s.to_ascii_lowercase()))
        .collect()
}

/// The CA certificates of a PEM bundle, to verify upstream instances against.
pub(crate) fn load_ca(path: &std::path::Path, at: &str) -> Result<Box<[X509]>, TlsError> {
    let fail = |what: String| TlsError::new(at, what);
    let pem =
        std::fs::read(path).map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
    let certs = X509::stack_from_pem(&pem).map_err(|e| {
        fail(format!(
            "{} is not a PEM certificate bundle: {e}",
            path.display()
        ))
    })?;
    if certs.is_empty() {
        return Err(fail(format!("{} holds no certificate", path.display())));
    }
    Ok(certs.into_boxed_slice())
}
