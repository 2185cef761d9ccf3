//! Certificates and TLS clients: the development certificate, test CAs issuing with
//! certs/make-dev-certs, and `openssl` to see what a listener serves.

use super::processes::succeed;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

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
            .arg(Path::new(env!("CARGO_TARGET_TMPDIR")).join("dev-certs.lock"))
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
