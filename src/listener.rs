//! What the listener a request came in on decides: the scheme reported upstream in
//! `X-Forwarded-Proto`, the redirect of a plain listener to HTTPS, and the HSTS header of
//! an HTTPS one. All listeners share one proxy service, so the request's local address
//! tells them apart.

use crate::config::{Listener, Protocol, Redirect};
use http::{HeaderValue, Method};
use std::net::{IpAddr, SocketAddr};

/// The per-request behaviour of one listener, compiled from its configuration.
#[derive(Debug)]
pub(crate) struct ListenerPolicy {
    address: SocketAddr,
    /// `http` or `https`.
    pub scheme: &'static str,
    redirect: Option<Redirect>,
    /// `Strict-Transport-Security` added to responses, if configured.
    pub hsts: Option<HeaderValue>,
}

/// Every listener's policy, in configuration order.
#[derive(Debug)]
pub(crate) struct Listeners(Vec<ListenerPolicy>);

impl Listeners {
    /// Compiles the listeners of a configuration.
    pub(crate) fn new(listeners: &[Listener]) -> Self {
        Self(
            listeners
                .iter()
                .map(|l| {
                    let (scheme, redirect, hsts) = match &l.protocol {
                        Protocol::Http { redirect } => ("http", redirect.clone(), None),
                        Protocol::Https(tls) => ("https", None, tls.hsts.clone()),
                        Protocol::Tcp(stream) => {
                            (if stream.tls.is_some() { "tls" } else { "tcp" }, None, None)
                        }
                    };
                    ListenerPolicy {
                        address: l.address,
                        scheme,
                        redirect,
                        hsts,
                    }
                })
                .collect(),
        )
    }

    /// The listener bound to `local`, the address a connection was accepted on: the one
    /// bound to exactly it, else the one bound to its port on all addresses.
    pub(crate) fn find(&self, local: Option<&SocketAddr>) -> Option<usize> {
        let local = local?;
        self.0.iter().position(|l| l.address == *local).or_else(|| {
            self.0
                .iter()
                .position(|l| l.address.port() == local.port() && l.address.ip().is_unspecified())
        })
    }

    /// The listener at `index`, as [`Listeners::find`] returned it.
    pub(crate) fn get(&self, index: usize) -> Option<&ListenerPolicy> {
        self.0.get(index)
    }
}

impl ListenerPolicy {
    /// For a plain listener with `redirect_https`: the status and `Location` that send this
    /// request to HTTPS, unless its path is excepted. 301 for GET and HEAD; 308 for other
    /// methods, so that clients repeat them with their body. A missing or malformed `Host`
    /// is replaced by `local`, the address the connection came in on.
    pub(crate) fn redirect(
        &self,
        method: &Method,
        host: Option<&str>,
        path_and_query: &str,
        local: Option<IpAddr>,
    ) -> Option<(u16, String)> {
        let redirect = self.redirect.as_ref()?;
        if redirect
            .except
            .iter()
            .any(|p| path_and_query.starts_with(p))
        {
            return None;
        }
        let fallback;
        let host = match host.map(strip_port).filter(|h| is_host(h)) {
            Some(h) => h,
            None => {
                fallback = match local.unwrap_or(self.address.ip()) {
                    IpAddr::V6(v6) => format!("[{v6}]"),
                    v4 => v4.to_string(),
                };
                &fallback
            }
        };
        let location = match redirect.port {
            443 => format!("https://{host}{path_and_query}"),
            port => format!("https://{host}:{port}{path_and_query}"),
        };
        let status = if matches!(*method, Method::GET | Method::HEAD) {
            301
        } else {
            308
        };
        Some((status, location))
    }
}

/// A host name or IP literal: nothing that could turn the `Location` into another URL.
fn is_host(host: &str) -> bool {
    !host.is_empty()
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']')
        })
}

/// `example.com:8080` → `example.com`; `[::1]:8080` → `[::1]`.
fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if !name.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            if name.starts_with('[') == name.ends_with(']') {
                name
            } else {
                host
            }
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(port: u16, except: &[&str]) -> ListenerPolicy {
        ListenerPolicy {
            address: "0.0.0.0:80".parse().expect("address"),
            scheme: "http",
            redirect: Some(Redirect {
                port,
                except: except.iter().map(|s| s.to_string()).collect(),
            }),
            hsts: None,
        }
    }

    #[test]
    fn redirects_keep_host_path_and_query_and_drop_the_port() {
        let l = plain(443, &[]);
        let got = l.redirect(&Method::GET, Some("shop.test:80"), "/a/b?q=1", None);
        assert_eq!(got, Some((301, "https://shop.test/a/b?q=1".to_string())));
        let got = l.redirect(&Method::POST, Some("[::1]:80"), "/", None);
        assert_eq!(got, Some((308, "https://[::1]/".to_string())));
        // No Host, or one that would change the URL: the connection's own address.
        let v6 = Some("fd00::7".parse().expect("address"));
        let got = l.redirect(&Method::GET, None, "/x", v6);
        assert_eq!(got, Some((301, "https://[fd00::7]/x".to_string())));
        let v4 = Some("10.0.0.7".parse().expect("address"));
        let got = l.redirect(&Method::GET, Some("evil.test/@x"), "/x", v4);
        assert_eq!(got, Some((301, "https://10.0.0.7/x".to_string())));
    }

    #[test]
    fn redirects_name_a_port_other_than_443_and_skip_exceptions() {
        let l = plain(8443, &["/.well-known/acme-challenge/"]);
        let got = l.redirect(&Method::GET, Some("shop.test"), "/x", None);
        assert_eq!(got, Some((301, "https://shop.test:8443/x".to_string())));
        let acme_path = "/.well-known/acme-challenge/t";
        let acme = l.redirect(&Method::GET, Some("shop.test"), acme_path, None);
        assert_eq!(acme, None);
    }

    #[test]
    fn finds_the_listener_by_exact_address_then_by_port() {
        let config = crate::config::parse(
            std::path::Path::new("t.yaml"),
            "listeners:\n  - { name: a, address: 0.0.0.0:80 }\n  - { name: b, address: 127.0.0.2:80, redirect_https: true }\nupstreams: {}\n",
        )
        .expect("valid");
        let listeners = Listeners::new(&config.listeners);
        let exact: SocketAddr = "127.0.0.2:80".parse().expect("address");
        let other: SocketAddr = "10.0.0.1:80".parse().expect("address");
        assert_eq!(listeners.find(Some(&exact)), Some(1));
        assert_eq!(listeners.find(Some(&other)), Some(0));
        assert!(listeners
            .find(Some(&"10.0.0.1:81".parse().expect("address")))
            .is_none());
    }
}
