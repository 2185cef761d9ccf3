//! CORS: which browser pages on other origins may call a listener or route, answered by
//! weir on behalf of the instances. A preflight (`OPTIONS` with `Origin` and
//! `Access-Control-Request-Method`) is answered here and never forwarded; the CORS headers
//! of every other answer, the instance's or weir's own, are decided once per request as an
//! [`Answer`]. The header values a policy sends are built when the configuration is
//! compiled, and matching an origin allocates nothing.

use super::Denied;
use crate::config::{self, CorsOrigin};
use crate::metrics::Denial;
use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderName, HeaderValue, Method};
use pingora::http::{RequestHeader, ResponseHeader};
use std::borrow::Cow;

const ANY: HeaderValue = HeaderValue::from_static("*");
const TRUE: HeaderValue = HeaderValue::from_static("true");
const VARY_ORIGIN: HeaderValue = HeaderValue::from_static("Origin");
/// A preflight's answer depends on all three.
const VARY_PREFLIGHT: HeaderValue = HeaderValue::from_static(
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
);
/// What the response headers weir replaces on a route with CORS start with.
const PREFIX: &str = "access-control-";

/// A compiled `policies.cors`.
#[derive(Debug)]
pub(crate) struct Cors {
    /// `None`: every origin (`*`).
    origins: Option<Vec<CorsOrigin>>,
    methods: Vec<Method>,
    allow_methods: HeaderValue,
    allow_headers: AllowHeaders,
    expose_headers: Option<HeaderValue>,
    credentials: bool,
    max_age: Option<HeaderValue>,
}

/// The request headers a preflight's answer allows.
#[derive(Debug)]
enum AllowHeaders {
    /// Those it asks for (`headers` not set).
    Asked,
    /// Those of `headers`; `None` for an empty list: only the CORS-safelisted ones.
    Listed(Option<HeaderValue>),
}

/// What a preflight gets.
#[derive(Debug)]
pub(crate) enum Preflight<'a> {
    /// A 204 with the CORS headers, for weir to send.
    Answer(Box<ResponseHeader>),
    /// A 403 without any.
    Refused(Denied<'a>),
}

/// `items` joined with `, ` as one header value; `None` when there are none.
fn joined<T: AsRef<str>>(items: &[T]) -> Option<HeaderValue> {
    let text = items
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ");
    // Method and header names are tokens: the value is always valid, and there is always
    // one method (OPTIONS).
    HeaderValue::from_str(&text)
        .ok()
        .filter(|_| !text.is_empty())
}

impl Cors {
    /// Compiles `config`, building every header value it sends.
    pub(crate) fn new(config: &config::Cors) -> Self {
        let mut methods = config.methods.clone();
        if !methods.contains(&Method::OPTIONS) {
            methods.push(Method::OPTIONS);
        }
        Self {
            origins: config.origins.clone(),
            allow_methods: joined(&methods).unwrap_or(ANY),
            methods,
            allow_headers: config
                .headers
                .as_ref()
                .map_or(AllowHeaders::Asked, |h| AllowHeaders::Listed(joined(h))),
            expose_headers: joined(&config.expose_headers),
            credentials: config.credentials,
            max_age: config.max_age.map(|age| HeaderValue::from(age.as_secs())),
        }
    }

    /// Whether a page on `origin` (the `Origin` header's bytes) may call.
    fn allows(&self, origin: &[u8]) -> bool {
        let Some(listed) = &self.origins else {
            return true;
        };
        listed.iter().any(|rule| match rule {
            CorsOrigin::Exact(exact) => origin.eq_ignore_ascii_case(exact.as_bytes()),
            CorsOrigin::Subdomains { scheme, suffix } => is_subdomain(origin, scheme, suffix),
        })
    }

    /// `Access-Control-Allow-Origin` for an allowed `origin`: `*` when every origin is
    /// allowed without credentials, else the origin itself.
    fn allow_origin(&self, origin: &HeaderValue) -> HeaderValue {
        if self.origins.is_none() && !self.credentials {
            ANY
        } else {
            origin.clone()
        }
    }

    /// The CORS headers of any answer to `req` but a preflight.
    pub(crate) fn answer(&self, req: &RequestHeader) -> Answer {
        let allow_origin = req
            .headers
            .get(ORIGIN)
            .filter(|o| self.allows(o.as_bytes()))
            .map(|o| self.allow_origin(o));
        Answer {
            allow_origin,
            expose_headers: self.expose_headers.clone(),
            credentials: self.credentials,
            // With `*` and no credentials every origin gets the same answer.
            vary: self.origins.is_some() || self.credentials,
        }
    }

    /// Answers a preflight: `None` when `req` is not one (a plain `OPTIONS` is forwarded),
    /// the 204 for an allowed origin and method, and a 403 otherwise, which carries no CORS
    /// header so that the browser blocks the call.
    pub(crate) fn preflight<'a>(
        &self,
        req: &RequestHeader,
    ) -> pingora::Result<Option<Preflight<'a>>> {
        if req.method != Method::OPTIONS {
            return Ok(None);
        }
        let (Some(origin), Some(method)) = (
            req.headers.get(ORIGIN),
            req.headers.get(ACCESS_CONTROL_REQUEST_METHOD),
        ) else {
            return Ok(None);
        };
        if !self.allows(origin.as_bytes()) {
            return Ok(Some(Preflight::Refused(Denied::new(Denial::Cors, &[]))));
        }
        // Method names are case-sensitive; browsers send the standard ones upper case.
        if !self
            .methods
            .iter()
            .any(|m| m.as_str().as_bytes() == method.as_bytes())
        {
            return Ok(Some(Preflight::Refused(Denied {
                message: "this method may not be used from a browser page on another origin",
                ..Denied::new(Denial::Cors, &[])
            })));
        }
        let answer = self.allowed_preflight(req, origin)?;
        Ok(Some(Preflight::Answer(Box::new(answer))))
    }

    fn allowed_preflight(
        &self,
        req: &RequestHeader,
        origin: &HeaderValue,
    ) -> pingora::Result<ResponseHeader> {
        let mut resp = ResponseHeader::build(204, Some(8))?;
        resp.insert_header(ACCESS_CONTROL_ALLOW_ORIGIN, self.allow_origin(origin))?;
        if self.credentials {
            resp.insert_header(ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE)?;
        }
        resp.insert_header(ACCESS_CONTROL_ALLOW_METHODS, &self.allow_methods)?;
        let headers = match &self.allow_headers {
            AllowHeaders::Asked => req.headers.get(ACCESS_CONTROL_REQUEST_HEADERS),
            AllowHeaders::Listed(listed) => listed.as_ref(),
        };
        if let Some(headers) = headers {
            resp.insert_header(ACCESS_CONTROL_ALLOW_HEADERS, headers)?;
        }
        if let Some(age) = &self.max_age {
            resp.insert_header(ACCESS_CONTROL_MAX_AGE, age)?;
        }
        resp.insert_header(VARY, VARY_PREFLIGHT)?;
        Ok(resp)
    }
}

/// The CORS headers of one request's answers, decided in `request_filter` and added to the
/// instance's response and to weir's own (401, 403, 404, 413, 429, 5xx), so that a page on
/// an allowed origin can read why it was refused.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The origin echoed, or `*`; `None` when the request's origin is not allowed (or it
    /// sent none).
    allow_origin: Option<HeaderValue>,
    expose_headers: Option<HeaderValue>,
    credentials: bool,
    /// Whether the answer depends on `Origin`.
    vary: bool,
}

impl Answer {
    /// The headers, `Vary: Origin` last.
    fn headers(&self) -> impl Iterator<Item = (HeaderName, HeaderValue)> + '_ {
        let allowed = self.allow_origin.as_ref();
        let origin = allowed.map(|o| (ACCESS_CONTROL_ALLOW_ORIGIN, o.clone()));
        let credentials = allowed
            .filter(|_| self.credentials)
            .map(|_| (ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE));
        let expose = allowed
            .and(self.expose_headers.clone())
            .map(|e| (ACCESS_CONTROL_EXPOSE_HEADERS, e));
        let vary = self.vary.then_some((VARY, VARY_ORIGIN));
        origin
            .into_iter()
            .chain(credentials)
            .chain(expose)
            .chain(vary)
    }

    /// Puts the headers on an instance's response: weir is the authority on a route with
    /// CORS, so any `Access-Control-*` header the instance sent is replaced; `Origin` is
    /// added to its `Vary` unless already there (or `*`).
    pub(crate) fn apply(&self, resp: &mut ResponseHeader) -> pingora::Result<()> {
        let theirs = |name: &HeaderName| name.as_str().starts_with(PREFIX);
        if resp.headers.keys().any(theirs) {
            let names: Vec<HeaderName> =
                resp.headers.keys().filter(|n| theirs(n)).cloned().collect();
            for name in &names {
                resp.remove_header(name);
            }
        }
        for (name, value) in self.headers() {
            if name == VARY {
                if !varies_by_origin(resp) {
                    resp.append_header(name, value)?;
                }
            } else {
                resp.insert_header(name, value)?;
            }
        }
        Ok(())
    }

    /// `headers` of one of weir's own answers with these added.
    pub(crate) fn added_to<'a>(
        &self,
        headers: &'a [(HeaderName, HeaderValue)],
    ) -> Cow<'a, [(HeaderName, HeaderValue)]> {
        if self.allow_origin.is_none() && !self.vary {
            return Cow::Borrowed(headers);
        }
        Cow::Owned(headers.iter().cloned().chain(self.headers()).collect())
    }
}

/// Whether `origin` is `scheme`, one or more labels, then `suffix` (`.domain[:port]`),
/// compared without case.
fn is_subdomain(origin: &[u8], scheme: &str, suffix: &str) -> bool {
    let Some(end) = origin.len().checked_sub(suffix.len()) else {
        return false;
    };
    let (Some(start), Some(labels), Some(tail)) = (
        origin.get(..scheme.len()),
        origin.get(scheme.len()..end),
        origin.get(end..),
    ) else {
        return false;
    };
    let is_label = |label: &[u8]| {
        !label.is_empty()
            && label
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
    };
    start.eq_ignore_ascii_case(scheme.as_bytes())
        && tail.eq_ignore_ascii_case(suffix.as_bytes())
        && labels.split(|b| *b == b'.').all(is_label)
}

/// Whether `resp`'s `Vary` already names `Origin`, or is `*`.
fn varies_by_origin(resp: &ResponseHeader) -> bool {
    resp.headers.get_all(VARY).iter().any(|v| {
        v.as_bytes().split(|b| *b == b',').any(|item| {
            let item = item.trim_ascii();
            item == b"*" || item.eq_ignore_ascii_case(b"origin")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: Option<Vec<CorsOrigin>>, credentials: bool) -> Cors {
        Cors::new(&config::Cors {
            origins,
            methods: crate::config::DEFAULT_CORS_METHODS.to_vec(),
            headers: None,
            expose_headers: Vec::new(),
            credentials,
            max_age: None,
        })
    }

    #[test]
    fn exact_origins_match_without_case_and_nothing_longer() {
        let c = cors(
            Some(vec![CorsOrigin::Exact("https://app.example.com".into())]),
            false,
        );
        assert!(c.allows(b"https://app.example.com"));
        assert!(c.allows(b"HTTPS://App.Example.com"));
        for other in [
            "https://app.example.com:443",
            "https://app.example.com.evil.org",
            "http://app.example.com",
            "https://app.example.co",
            "",
        ] {
            assert!(!c.allows(other.as_bytes()), "{other}");
        }
    }

    #[test]
    fn a_wildcard_stands_for_one_or_more_labels() {
        let rule = CorsOrigin::Subdomains {
            scheme: "https://".into(),
            suffix: ".example.com:8443".into(),
        };
        let c = cors(Some(vec![rule]), false);
        assert!(c.allows(b"https://a.example.com:8443"));
        assert!(c.allows(b"https://a-1.b.example.com:8443"));
        for other in [
            "https://example.com:8443",
            "https://.example.com:8443",
            "https://a..example.com:8443",
            "https://a.example.com",
            "https://a/b.example.com:8443",
            "https://user@a.example.com:8443",
            "http://a.example.com:8443",
            "https:/",
        ] {
            assert!(!c.allows(other.as_bytes()), "{other}");
        }
    }

    #[test]
    fn every_origin_gets_a_star_unless_credentials_ask_for_the_origin() {
        let origin = HeaderValue::from_static("https://any.example.org");
        assert_eq!(cors(None, false).allow_origin(&origin), "*");
        assert_eq!(cors(None, true).allow_origin(&origin), origin);
    }
}
