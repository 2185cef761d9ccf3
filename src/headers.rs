//! Headers weir adds and edits: the request id, `X-Forwarded-*`, `X-Real-IP`, the serving
//! instance, and the configured `set` / `add` / `remove` rules.
//!
//! Forwarded headers sent by a client are believed only when the connection comes from a
//! `trusted_proxies` address; otherwise weir replaces them with what it saw itself.

use crate::config::{GlobalHeaders, HeaderEdits};
use http::{HeaderName, HeaderValue};
use ipnet::IpNet;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::Result;
use std::net::IpAddr;

/// Longest client-sent request id that is kept.
pub(crate) const MAX_REQUEST_ID_LEN: usize = 128;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Who sent a request, as far as weir can tell.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Client {
    /// The address of the connection's peer.
    pub peer: IpAddr,
    /// Whether `peer` is a trusted proxy, so its forwarded headers are believed.
    pub trusted: bool,
    /// The original client: from `X-Forwarded-For` when trusted, else the peer.
    pub ip: IpAddr,
}

/// The compiled global header settings.
#[derive(Debug)]
pub(crate) struct HeaderPolicy {
    request_id: HeaderName,
    instance_header: Option<HeaderName>,
    trusted: Vec<IpNet>,
}

impl From<&GlobalHeaders> for HeaderPolicy {
    fn from(g: &GlobalHeaders) -> Self {
        Self {
            request_id: g.request_id.clone(),
            instance_header: g.instance_header.clone(),
            trusted: g.trusted_proxies.clone(),
        }
    }
}

impl HeaderPolicy {
    /// The request id header's name, for responses weir writes itself.
    pub(crate) fn request_id_header(&self) -> &HeaderName {
        &self.request_id
    }

    /// Whether `ip` is in `trusted_proxies`: its forwarded headers (or PROXY protocol header)
    /// are believed.
    pub(crate) fn is_trusted(&self, ip: IpAddr) -> bool {
        // An IPv4 peer of a dual-stack (`[::]`) listener arrives as `::ffff:a.b.c.d`.
        let v4 = ip.to_canonical();
        self.trusted
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&v4))
    }

    /// Works out the client. Behind trusted proxies, the client is the right-most
    /// `X-Forwarded-For` entry that is not itself a trusted proxy (nginx's
    /// `real_ip_recursive on`).
    pub(crate) fn client(&self, peer: IpAddr, req: &RequestHeader) -> Client {
        let trusted = self.is_trusted(peer);
        let mut ip = peer;
        if trusted {
            // Right to left: header lines last-first, entries last-first. Whatever is not an
            // address (a malformed entry, a line that is not text) ends the walk: nothing to
            // its left can be vouched for.
            'lines: for line in req.headers.get_all(&X_FORWARDED_FOR).iter().rev() {
                let Ok(text) = line.to_str() else { break };
                for entry in text.rsplit(',') {
                    let Ok(addr) = entry.trim().parse::<IpAddr>() else {
                        break 'lines;
                    };
                    ip = addr;
                    if !self.is_trusted(addr) {
                        break 'lines;
                    }
                }
            }
        }
        Client { peer, trusted, ip }
    }

    /// The request's id: the client's own when well formed (1 to 128 characters of
    /// letters, digits and `-_.:+/=`), a new UUID otherwise.
    pub(crate) fn request_id(&self, req: &RequestHeader) -> HeaderValue {
        if let Some(v) = req.headers.get(&self.request_id) {
            let b = v.as_bytes();
            let well_formed = !b.is_empty()
                && b.len() <= MAX_REQUEST_ID_LEN
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || b"-_.:+/=".contains(c));
            if well_formed {
                return v.clone();
            }
        }
        let mut buf = uuid::Uuid::encode_buffer();
        let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
        HeaderValue::from_str(id).unwrap_or(HeaderValue::from_static("invalid"))
    }

    /// Stamps the request sent upstream: request id, `X-Forwarded-For` (appended to when the
    /// peer is trusted, replaced otherwise), `X-Forwarded-Proto`, `X-Forwarded-Host` and
    /// `X-Real-IP`.
    pub(crate) fn forward(
        &self,
        req: &mut RequestHeader,
        client: &Client,
        request_id: &HeaderValue,
        proto: &'static str,
    ) -> Result<()> {
        req.insert_header(&self.request_id, request_id)?;
        let peer = ip_value(client.peer);
        // Every line a trusted peer sent, in order: a proxy may append its hop as a line of
        // its own, and that hop is the one the instance most needs.
        let prior = req.headers.get_all(&X_FORWARDED_FOR);
        let xff = if client.trusted && prior.iter().next().is_some() {
            let mut joined = Vec::new();
            for line in prior {
                joined.extend_from_slice(line.as_bytes());
                joined.extend_from_slice(b", ");
            }
            joined.extend_from_slice(peer.as_bytes());
            HeaderValue::from_bytes(&joined).unwrap_or_else(|_| peer.clone())
        } else {
            peer.clone()
        };
        req.insert_header(X_FORWARDED_FOR, xff)?;
        if !(client.trusted && req.headers.contains_key(&X_FORWARDED_PROTO)) {
            req.insert_header(X_FORWARDED_PROTO, HeaderValue::from_static(proto))?;
        }
        if !(client.trusted && req.headers.contains_key(&X_FORWARDED_HOST)) {
            let host = match req.uri.authority() {
                Some(a) => HeaderValue::from_str(a.as_str()).ok(),
                None => req.headers.get(http::header::HOST).cloned(),
            };
            match host {
                Some(h) => req.insert_header(X_FORWARDED_HOST, h)?,
                None => {
                    req.remove_header(&X_FORWARDED_HOST);
                }
            }
        }
        let real_ip = if client.ip == client.peer {
            peer
        } else {
            ip_value(client.ip)
        };
        req.insert_header(X_REAL_IP, real_ip)?;
        Ok(())
    }

    /// Stamps the response to the client: the request id and the serving instance.
    pub(crate) fn respond(
        &self,
        resp: &mut ResponseHeader,
        request_id: &HeaderValue,
        instance: Option<&HeaderValue>,
    ) -> Result<()> {
        resp.insert_header(&self.request_id, request_id)?;
        if let (Some(name), Some(instance)) = (&self.instance_header, instance) {
            resp.insert_header(name, instance)?;
        }
        Ok(())
    }
}

/// An address as a header value, formatted on the stack: one allocation, not two.
fn ip_value(ip: IpAddr) -> HeaderValue {
    use std::io::Write;
    let mut buf = [0u8; 48];
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    let _ = write!(cursor, "{ip}");
    let len = usize::try_from(cursor.position()).unwrap_or_default();
    HeaderValue::from_bytes(&buf[..len]).unwrap_or(HeaderValue::from_static("unknown"))
}

/// Configured `set` / `add` / `remove` edits, for request and response headers alike.
pub(crate) trait EditHeaders {
    /// Applies the edits in the order remove, set, add.
    fn apply(&mut self, edits: &HeaderEdits) -> Result<()>;
}

/// Request and response headers have the same editing methods but no common trait.
macro_rules! impl_edit_headers {
    ($($header:ty),*) => {$(
        impl EditHeaders for $header {
            fn apply(&mut self, edits: &HeaderEdits) -> Result<()> {
                for name in &edits.remove {
                    self.remove_header(name);
                }
                for (name, value) in &edits.set {
                    self.insert_header(name, value)?;
                }
                for (name, value) in &edits.add {
                    self.append_header(name, value)?;
                }
                Ok(())
            }
        }
    )*};
}

impl_edit_headers!(RequestHeader, ResponseHeader);

#[cfg(test)]
mod proptests;
