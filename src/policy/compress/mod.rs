//! Response compression (`policies.compress`). Pingora's compression engine does the
//! encoding, streamed chunk by chunk, in a session module ([`Compression`]) that stays off
//! until [`compress`] starts it for one response, once weir has decided that this response
//! qualifies and which coding the client gets. The decision is weir's because the engine
//! alone would take the first coding a client lists (ignoring q-values and `q=0`), and
//! would compress ranges, `no-transform` responses and event streams.

mod module;

pub(crate) use module::Compression;

use crate::config::{Compress, Encoding, MediaRange};
use http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE,
    VARY,
};
use http::{HeaderValue, Method};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::modules::http::HttpModuleCtx;

/// A q-value in thousandths: `q=0.5` is 500.
type Quality = u16;

/// The best quality, also that of a coding listed without `q`.
const FULL: Quality = 1000;

/// Never compressed whatever `types` says: each event must reach the browser when it is
/// sent, and an encoder holds data back until it has enough to compress.
const EVENT_STREAM: &str = "text/event-stream";

/// The compiled `policies.compress` of a listener or route.
#[derive(Debug)]
pub(crate) struct CompressPolicy {
    /// Codings offered, weir's preference first.
    algorithms: Vec<Encoding>,
    /// The level of each coding, by [`index`].
    levels: [u32; 3],
    min_size: u64,
    types: Vec<MediaRange>,
}

impl CompressPolicy {
    /// Compiles `policy`: each coding gets `level`, or its own default.
    pub(crate) fn new(policy: &Compress) -> Self {
        let mut levels = [0; 3];
        for (_, e) in Encoding::ALL {
            levels[index(e)] = policy.level.unwrap_or_else(|| e.default_level());
        }
        Self {
            algorithms: policy.algorithms.clone(),
            levels,
            min_size: policy.min_size,
            types: policy.types.clone(),
        }
    }

    /// Whether `resp`, answering a `method` request, is one this policy compresses for a
    /// client that accepts a coding: a body of a listed type, not encoded already, not a
    /// part of one, not too small, and that the upstream allows weir to transform.
    fn qualifies(&self, method: &Method, resp: &ResponseHeader) -> bool {
        let headers = &resp.headers;
        let status = resp.status.as_u16();
        if *method == Method::HEAD
            || matches!(status, 204 | 206 | 304)
            || headers.contains_key(CONTENT_ENCODING)
            || headers.contains_key(CONTENT_RANGE)
        {
            return false;
        }
        let no_transform = headers.get_all(CACHE_CONTROL).iter().any(|v| {
            v.as_bytes()
                .split(|b| *b == b',')
                .any(|d| d.trim_ascii().eq_ignore_ascii_case(b"no-transform"))
        });
        if no_transform {
            return false;
        }
        let small = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
            .is_some_and(|len| len < self.min_size);
        if small {
            return false;
        }
        let essence = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|t| t.split(';').next().unwrap_or_default().trim());
        essence.is_some_and(|t| {
            !t.eq_ignore_ascii_case(EVENT_STREAM) && self.types.iter().any(|r| r.matches(t))
        })
    }

    /// The coding to send for the `Accept-Encoding` fields `accepted`: the offered coding
    /// with the highest q-value above 0 (weir's order breaks ties), `*` standing for every
    /// coding the client does not name. `None` when the client accepts none of them, sent
    /// no `Accept-Encoding`, or prefers `identity` to all of them.
    fn negotiate<'a>(&self, accepted: impl Iterator<Item = &'a HeaderValue>) -> Option<Encoding> {
        let mut named: [Option<Quality>; 3] = [None; 3];
        let (mut any, mut identity) = (None, None);
        for item in accepted.flat_map(|v| v.as_bytes().split(|b| *b == b',')) {
            let mut parts = item.split(|b| *b == b';');
            let coding = parts.next().unwrap_or_default().trim_ascii();
            if coding.is_empty() {
                continue;
            }
            let Some(q) = quality(parts) else { continue };
            let slot = match coding {
                c if c == b"*" => &mut any,
                c if c.eq_ignore_ascii_case(b"identity") => &mut identity,
                c if c.eq_ignore_ascii_case(b"x-gzip") => &mut named[index(Encoding::Gzip)],
                c => match Encoding::ALL
                    .iter()
                    .find(|(name, _)| c.eq_ignore_ascii_case(name.as_bytes()))
                {
                    Some((_, e)) => &mut named[index(*e)],
                    None => continue,
                },
            };
            *slot = Some(q);
        }
        let mut best: Option<(Encoding, Quality)> = None;
        for &e in &self.algorithms {
            let q = named[index(e)].or(any).unwrap_or(0);
            if q > 0 && best.is_none_or(|(_, b)| q > b) {
                best = Some((e, q));
            }
        }
        best.filter(|(_, q)| identity.is_none_or(|i| *q >= i))
            .map(|(e, _)| e)
    }
}

/// The q-value of an `Accept-Encoding` item from its parameters: 1 without `q`; `None`
/// when `q` is not a q-value (the item is ignored).
fn quality<'a>(params: impl Iterator<Item = &'a [u8]>) -> Option<Quality> {
    let mut q = FULL;
    for param in params {
        let param = param.trim_ascii();
        let Some(value) = param
            .strip_prefix(b"q=")
            .or_else(|| param.strip_prefix(b"Q="))
        else {
            continue;
        };
        q = match value {
            [b'0'] => 0,
            [b'1'] => FULL,
            [b'1', b'.', rest @ ..] if rest.len() <= 3 && rest.iter().all(|b| *b == b'0') => FULL,
            [b'0', b'.', rest @ ..] if rest.len() <= 3 && rest.iter().all(u8::is_ascii_digit) => {
                rest.iter()
                    .chain(std::iter::repeat(&b'0'))
                    .take(3)
                    .fold(0, |n, d| n * 10 + Quality::from(d - b'0'))
            }
            _ => return None,
        };
    }
    Some(q)
}

/// The position of a coding in per-coding arrays.
pub(super) fn index(e: Encoding) -> usize {
    match e {
        Encoding::Zstd => 0,
        Encoding::Brotli => 1,
        Encoding::Gzip => 2,
    }
}

/// The response step, after the header rules: when `resp` qualifies under `policy`, adds
/// `Vary: Accept-Encoding` (whatever this client accepts, the answer depends on it) and, for
/// a client that accepts one of the offered codings, starts the session's [`Compression`]
/// with that coding at its level. It then sets `Content-Encoding`, replaces
/// `Content-Length` with chunked framing, weakens a strong `ETag` and drops
/// `Accept-Ranges`. Informational responses are left for the final one.
pub(crate) fn compress(
    policy: &CompressPolicy,
    req: &RequestHeader,
    resp: &mut ResponseHeader,
    modules: &mut HttpModuleCtx,
) -> pingora::Result<()> {
    if resp.status.is_informational() || !policy.qualifies(&req.method, resp) {
        return Ok(());
    }
    add_vary(resp)?;
    let Some(encoding) = policy.negotiate(req.headers.get_all(ACCEPT_ENCODING).iter()) else {
        return Ok(());
    };
    if let Some(module) = modules.get_mut::<Compression>() {
        module.start(encoding, policy.levels[index(encoding)]);
    }
    Ok(())
}

/// Adds `Accept-Encoding` to `Vary`, keeping what the upstream listed; nothing when it is
/// there already or `Vary` is `*`.
fn add_vary(resp: &mut ResponseHeader) -> pingora::Result<()> {
    let listed = resp.headers.get_all(VARY).iter().any(|v| {
        v.as_bytes().split(|b| *b == b',').any(|name| {
            let name = name.trim_ascii();
            name == b"*" || name.eq_ignore_ascii_case(b"accept-encoding")
        })
    });
    if !listed {
        resp.append_header(VARY, HeaderValue::from_static("Accept-Encoding"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DEFAULT_COMPRESS_MIN_SIZE, DEFAULT_GZIP_LEVEL};

    fn policy(algorithms: &[Encoding]) -> CompressPolicy {
        CompressPolicy::new(&Compress {
            algorithms: algorithms.to_vec(),
            min_size: DEFAULT_COMPRESS_MIN_SIZE,
            types: vec![MediaRange::Type("text".into())],
            level: None,
        })
    }

    fn pick(policy: &CompressPolicy, accept: &[&str]) -> Option<Encoding> {
        let values: Vec<HeaderValue> = accept
            .iter()
            .map(|a| HeaderValue::from_str(a).unwrap())
            .collect();
        policy.negotiate(values.iter())
    }

    #[test]
    fn the_highest_q_value_wins_and_weirs_order_breaks_ties() {
        use Encoding::*;
        let all = policy(&[Zstd, Brotli, Gzip]);
        assert_eq!(pick(&all, &["gzip;q=0.5, br;q=0.9"]), Some(Brotli));
        assert_eq!(pick(&all, &["gzip, br"]), Some(Brotli));
        assert_eq!(pick(&all, &["gzip, deflate, br, zstd"]), Some(Zstd));
        assert_eq!(pick(&all, &["gzip;q=1.0, zstd;q=0.999"]), Some(Gzip));
        assert_eq!(pick(&all, &["GZIP"]), Some(Gzip));
        assert_eq!(pick(&all, &["x-gzip"]), Some(Gzip));
        assert_eq!(pick(&all, &["br", "gzip;q=0.2"]), Some(Brotli));
        let gzip_first = policy(&[Gzip, Brotli]);
        assert_eq!(pick(&gzip_first, &["br, gzip, zstd"]), Some(Gzip));
    }

    #[test]
    fn q_zero_identity_and_star_are_understood() {
        use Encoding::*;
        let all = policy(&[Zstd, Brotli, Gzip]);
        assert_eq!(pick(&all, &[]), None);
        assert_eq!(pick(&all, &["identity"]), None);
        assert_eq!(pick(&all, &["gzip;q=0"]), None);
        assert_eq!(pick(&all, &["gzip;q=0.000, br;q=0.001"]), Some(Brotli));
        assert_eq!(pick(&all, &["*"]), Some(Zstd));
        assert_eq!(pick(&all, &["zstd;q=0, *;q=0.5"]), Some(Brotli));
        assert_eq!(pick(&all, &["*;q=0, gzip"]), Some(Gzip));
        assert_eq!(pick(&all, &["identity;q=0, gzip;q=0.1"]), Some(Gzip));
        assert_eq!(pick(&all, &["identity, gzip;q=0.5"]), None);
        assert_eq!(pick(&all, &["gzip;q=2, br;q=0.x"]), None);
        assert_eq!(pick(&all, &[" , ;q=1, gzip ; q=0.3 "]), Some(Gzip));
    }

    #[test]
    fn only_whole_bodies_of_listed_types_qualify() {
        let p = policy(&[Encoding::Gzip]);
        let resp = |status: u16, headers: &[(&str, &str)]| {
            let mut r = ResponseHeader::build(status, None).unwrap();
            for (n, v) in headers {
                r.append_header(n.to_string(), *v).unwrap();
            }
            r
        };
        let text = [("content-type", "Text/HTML; charset=utf-8")];
        assert!(p.qualifies(&Method::GET, &resp(200, &text)));
        assert!(p.qualifies(&Method::GET, &resp(404, &text)));
        assert!(!p.qualifies(&Method::HEAD, &resp(200, &text)));
        for status in [204, 206, 304] {
            assert!(!p.qualifies(&Method::GET, &resp(status, &text)));
        }
        for extra in [
            ("content-encoding", "gzip"),
            ("content-range", "bytes 0-9/100"),
            ("cache-control", "public, No-Transform"),
            ("content-length", "1023"),
        ] {
            assert!(
                !p.qualifies(&Method::GET, &resp(200, &[text[0], extra])),
                "{extra:?}"
            );
        }
        assert!(p.qualifies(
            &Method::GET,
            &resp(200, &[text[0], ("content-length", "1024")])
        ));
        assert!(!p.qualifies(&Method::GET, &resp(200, &[("content-type", "image/png")])));
        assert!(!p.qualifies(
            &Method::GET,
            &resp(200, &[("content-type", "text/event-stream")])
        ));
        assert!(!p.qualifies(&Method::GET, &resp(200, &[])));
        assert_eq!(p.levels[index(Encoding::Gzip)], DEFAULT_GZIP_LEVEL);
    }

    #[test]
    fn vary_keeps_what_the_upstream_listed() {
        let mut r = ResponseHeader::build(200, None).unwrap();
        r.append_header("vary", "Origin").unwrap();
        add_vary(&mut r).unwrap();
        add_vary(&mut r).unwrap();
        let vary: Vec<_> = r.headers.get_all(VARY).iter().collect();
        assert_eq!(vary, ["Origin", "Accept-Encoding"]);
        let mut star = ResponseHeader::build(200, None).unwrap();
        star.append_header("vary", "*").unwrap();
        add_vary(&mut star).unwrap();
        assert_eq!(star.headers.get_all(VARY).iter().count(), 1);
    }
}
