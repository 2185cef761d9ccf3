//! The certificates of one listener, indexed by server name: what the SNI callback looks
//! up on every full handshake, without allocating for a lowercase name.

use super::certs::CertKey;
use std::collections::HashMap;
use std::sync::Arc;

/// Certificates of one listener. A name maps to at most one certificate per key
/// algorithm, so a client gets ECDSA or RSA as it supports.
pub(crate) struct CertSet {
    exact: HashMap<String, Vec<Arc<CertKey>>>,
    /// `*.example.com` stored under `example.com`.
    wildcard: HashMap<String, Vec<Arc<CertKey>>>,
    default: Vec<Arc<CertKey>>,
    /// Every certificate, in configuration order.
    pub all: Vec<Arc<CertKey>>,
}

impl CertSet {
    /// Indexes `certs`; `default` (an index into them) answers clients without SNI or with
    /// a name no certificate has. The first certificate to claim a name for an algorithm
    /// keeps it.
    pub(crate) fn new(certs: Vec<CertKey>, default: usize) -> Self {
        let all: Vec<Arc<CertKey>> = certs.into_iter().map(Arc::new).collect();
        let mut exact: HashMap<String, Vec<Arc<CertKey>>> = HashMap::new();
        let mut wildcard: HashMap<String, Vec<Arc<CertKey>>> = HashMap::new();
        for cert in &all {
            for name in &cert.names {
                let (map, key) = match name.strip_prefix("*.") {
                    Some(suffix) => (&mut wildcard, suffix),
                    None => (&mut exact, name.as_str()),
                };
                let slot = map.entry(key.to_string()).or_default();
                if slot.iter().all(|c| c.kind() != cert.kind()) {
                    slot.push(cert.clone());
                }
            }
        }
        let default = all.get(default).or(all.first()).map_or_else(Vec::new, |d| {
            // The default's own names decide its partners of other algorithms.
            d.names
                .first()
                .and_then(|n| lookup(&exact, &wildcard, n))
                .filter(|found| found.iter().any(|c| Arc::ptr_eq(c, d)))
                .map_or_else(|| vec![d.clone()], <[_]>::to_vec)
        });
        Self {
            exact,
            wildcard,
            default,
            all,
        }
    }

    /// The certificates for a client's server name (any case, trailing dot or not).
    pub(crate) fn find(&self, server_name: Option<&str>) -> &[Arc<CertKey>] {
        let Some(name) = server_name.map(|n| n.strip_suffix('.').unwrap_or(n)) else {
            return &self.default;
        };
        let found = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            lookup(&self.exact, &self.wildcard, &name.to_ascii_lowercase())
        } else {
            lookup(&self.exact, &self.wildcard, name)
        };
        found.unwrap_or(&self.default)
    }
}

/// Exact name first, then a wildcard one label up (`*.example.com` covers
/// `api.example.com`, not `example.com` nor `a.b.example.com`).
fn lookup<'a>(
    exact: &'a HashMap<String, Vec<Arc<CertKey>>>,
    wildcard: &'a HashMap<String, Vec<Arc<CertKey>>>,
    name: &str,
) -> Option<&'a [Arc<CertKey>]> {
    if let Some(found) = exact.get(name) {
        return Some(found);
    }
    let (_, parent) = name.split_once('.')?;
    wildcard.get(parent).map(Vec::as_slice)
}
