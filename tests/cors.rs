//! CORS through the real binary: preflights answered by weir (never forwarded) for allowed
//! origins and methods and refused without CORS headers otherwise; actual answers with the
//! origin echoed and `Vary: Origin` added; weir's own refusals readable by an allowed page;
//! and headless Chromium fetching an API through weir from pages on other origins.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

mod common;

use common::*;
use reqwest::blocking::{RequestBuilder, Response};
use reqwest::Method;
use serde_json::{json, Value};

const APP: &str = "https://app.example.com";
const KEY: &str = "cors-test-key";

/// weir in front of `backend`, which sends its own `Vary` and `Access-Control-*` headers:
/// `/api` allows APP and the subdomains of example.net, `/creds` allows APP with
/// credentials, `/public` every origin, `/keyed` APP behind key auth; `/plain` has no CORS.
fn start() -> (Backend, Weir) {
    let backend = Backend::start(
        &[
            ("Content-Type", "text/plain"),
            ("Vary", "Accept-Encoding"),
            (
                "Access-Control-Allow-Origin",
                "https://upstream.example.org",
            ),
            ("Access-Control-Allow-Methods", "TRACE"),
        ],
        "hello",
    );
    let yaml = format!(
        "consumers: [{{ name: app, keys: [{KEY}] }}]\n\
         listeners:\n  - {{ name: web, address: \"127.0.0.1:{{port}}\" }}\n\
         routes:\n\
         \x20 - name: api\n    paths: [/api]\n    upstream: app\n    policies:\n      cors:\n\
         \x20       origins: [{APP}, \"https://*.example.net\"]\n\
         \x20       methods: [GET, POST]\n\
         \x20       expose_headers: [X-Request-Id, X-Total]\n\
         \x20       max_age: 10m\n\
         \x20 - name: creds\n    paths: [/creds]\n    upstream: app\n    policies:\n      \
         cors: {{ origins: [{APP}], credentials: true, headers: [Content-Type, X-Custom] }}\n\
         \x20 - name: public\n    paths: [/public]\n    upstream: app\n    policies:\n      \
         cors: {{ origins: [\"*\"] }}\n\
         \x20 - name: keyed\n    paths: [/keyed]\n    upstream: app\n    policies:\n      \
         auth: {{ methods: [key] }}\n      cors: {{ origins: [{APP}] }}\n\
         \x20 - name: plain\n    paths: [/plain]\n    upstream: app\n\
         upstreams:\n  app:\n    targets: [{{ address: \"{}\" }}]\n",
        backend.address()
    );
    let weir = Weir::start(&yaml);
    (backend, weir)
}

/// A preflight from `origin` for `method`.
fn preflight(weir: &Weir, path: &str, origin: &str, method: &str) -> RequestBuilder {
    client()
        .request(Method::OPTIONS, weir.url(path))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", method)
}

fn header<'a>(resp: &'a Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).map(|v| v.to_str().unwrap())
}

/// Every value of `name`, in order.
fn all(resp: &Response, name: &str) -> Vec<String> {
    resp.headers()
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// The `Access-Control-*` headers of `resp`.
fn cors_headers(resp: &Response) -> Vec<String> {
    resp.headers()
        .keys()
        .map(|k| k.as_str().to_string())
        .filter(|k| k.starts_with("access-control-"))
        .collect()
}

#[test]
fn a_preflight_from_an_allowed_origin_is_answered_by_weir_and_never_forwarded() {
    let (backend, weir) = start();
    let resp = preflight(&weir, "/api/items", APP, "POST")
        .header("Access-Control-Request-Headers", "content-type,x-custom")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(header(&resp, "access-control-allow-origin"), Some(APP));
    assert_eq!(
        header(&resp, "access-control-allow-methods"),
        Some("GET, POST, OPTIONS")
    );
    // Without `headers`, whatever the preflight asks for is allowed.
    assert_eq!(
        header(&resp, "access-control-allow-headers"),
        Some("content-type,x-custom")
    );
    assert_eq!(header(&resp, "access-control-max-age"), Some("600"));
    assert_eq!(header(&resp, "access-control-allow-credentials"), None);
    assert!(header(&resp, "vary").unwrap().starts_with("Origin"));
    assert!(header(&resp, "x-request-id").is_some());

    // With `headers` and credentials; and on a route behind key auth, where a preflight
    // carries no key (browsers never send credentials on one).
    let resp = preflight(&weir, "/creds", APP, "PUT")
        .header("Access-Control-Request-Headers", "x-other")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(header(&resp, "access-control-allow-origin"), Some(APP));
    assert_eq!(
        header(&resp, "access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(
        header(&resp, "access-control-allow-headers"),
        Some("content-type, x-custom")
    );
    assert_eq!(header(&resp, "access-control-max-age"), None);
    let resp = preflight(&weir, "/keyed", APP, "GET").send().unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(header(&resp, "access-control-allow-origin"), Some(APP));

    assert_eq!(backend.requests(), 0, "{:?}", backend.methods());
}

#[test]
fn a_preflight_from_a_disallowed_origin_or_for_a_disallowed_method_gets_403_without_cors_headers() {
    let (backend, weir) = start();
    for (origin, method, error) in [
        (
            "https://evil.example.com",
            "GET",
            "this origin may not call this route from a browser page",
        ),
        // An origin differing from an allowed one by its scheme or port is another origin.
        (
            "http://app.example.com",
            "GET",
            "this origin may not call this route from a browser page",
        ),
        (
            "https://app.example.com:8443",
            "GET",
            "this origin may not call this route from a browser page",
        ),
        (
            APP,
            "DELETE",
            "this method may not be used from a browser page on another origin",
        ),
    ] {
        let resp = preflight(&weir, "/api", origin, method).send().unwrap();
        assert_eq!(resp.status(), 403, "{origin} {method}");
        assert_eq!(
            cors_headers(&resp),
            Vec::<String>::new(),
            "{origin} {method}"
        );
        let body: Value = resp.json().unwrap();
        assert_eq!(body["error"], error, "{origin} {method}");
    }
    assert_eq!(backend.requests(), 0, "{:?}", backend.methods());
}

#[test]
fn an_options_request_that_is_not_a_preflight_is_forwarded() {
    let (backend, weir) = start();
    // Without Access-Control-Request-Method it is the API's own OPTIONS.
    let resp = client()
        .request(Method::OPTIONS, weir.url("/api"))
        .header("Origin", APP)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().unwrap(), "hello");
    // A preflight on a route without `cors` is the instance's to answer too.
    let resp = preflight(&weir, "/plain", APP, "GET").send().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(backend.methods(), ["OPTIONS", "OPTIONS"]);
}

#[test]
fn an_allowed_origin_is_echoed_with_vary_origin_added_and_the_instances_cors_headers_replaced() {
    let (backend, weir) = start();
    let resp = client()
        .get(weir.url("/api/items"))
        .header("Origin", APP)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "access-control-allow-origin"), Some(APP));
    assert_eq!(
        header(&resp, "access-control-expose-headers"),
        Some("x-request-id, x-total")
    );
    assert_eq!(header(&resp, "access-control-allow-credentials"), None);
    // The instance's own Access-Control-* headers are gone: weir is the authority.
    assert_eq!(
        all(&resp, "access-control-allow-origin"),
        [APP],
        "{:?}",
        resp.headers()
    );
    assert_eq!(header(&resp, "access-control-allow-methods"), None);
    assert_eq!(all(&resp, "vary"), ["Accept-Encoding", "Origin"]);
    assert_eq!(resp.text().unwrap(), "hello");

    // Without a policy, the instance's headers pass untouched.
    let resp = client()
        .get(weir.url("/plain"))
        .header("Origin", APP)
        .send()
        .unwrap();
    assert_eq!(
        header(&resp, "access-control-allow-origin"),
        Some("https://upstream.example.org")
    );
    assert_eq!(all(&resp, "vary"), ["Accept-Encoding"]);
    assert_eq!(backend.requests(), 2);
}

#[test]
fn a_disallowed_origin_is_served_without_cors_headers() {
    let (backend, weir) = start();
    for origin in [Some("https://evil.example.com"), Some("null"), None] {
        let mut request = client().get(weir.url("/api"));
        if let Some(origin) = origin {
            request = request.header("Origin", origin);
        }
        let resp = request.send().unwrap();
        assert_eq!(resp.status(), 200, "{origin:?}");
        assert_eq!(cors_headers(&resp), Vec::<String>::new(), "{origin:?}");
        // The answer depends on Origin all the same: a cache must not give it to APP.
        assert_eq!(all(&resp, "vary"), ["Accept-Encoding", "Origin"]);
        assert_eq!(resp.text().unwrap(), "hello");
    }
    assert_eq!(backend.requests(), 3);
}

#[test]
fn credentials_echo_the_origin_and_every_origin_without_them_gets_a_star() {
    let (_backend, weir) = start();
    let resp = client()
        .get(weir.url("/creds"))
        .header("Origin", APP)
        .send()
        .unwrap();
    assert_eq!(header(&resp, "access-control-allow-origin"), Some(APP));
    assert_eq!(
        header(&resp, "access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(all(&resp, "vary"), ["Accept-Encoding", "Origin"]);

    let resp = client()
        .get(weir.url("/public"))
        .header("Origin", "https://anyone.example.org")
        .send()
        .unwrap();
    assert_eq!(header(&resp, "access-control-allow-origin"), Some("*"));
    assert_eq!(header(&resp, "access-control-allow-credentials"), None);
    // The same answer for every origin: nothing to vary on.
    assert_eq!(all(&resp, "vary"), ["Accept-Encoding"]);
}

#[test]
fn a_wildcard_allows_subdomains_at_any_depth_and_nothing_else() {
    let (_backend, weir) = start();
    for (origin, allowed) in [
        ("https://shop.example.net", true),
        ("https://a.b.example.net", true),
        ("HTTPS://Shop.Example.NET", true),
        ("https://example.net", false),
        ("http://shop.example.net", false),
        ("https://shop.example.net:8443", false),
        ("https://shopexample.net", false),
        ("https://shop.example.net.evil.com", false),
        ("https://.example.net", false),
    ] {
        let resp = client()
            .get(weir.url("/api"))
            .header("Origin", origin)
            .send()
            .unwrap();
        let echoed = header(&resp, "access-control-allow-origin");
        assert_eq!(echoed, allowed.then_some(origin), "{origin}");
        let status = preflight(&weir, "/api", origin, "GET")
            .send()
            .unwrap()
            .status();
        assert_eq!(status, if allowed { 204 } else { 403 }, "{origin}");
    }
}

#[test]
fn weirs_own_refusals_carry_the_cors_headers_for_an_allowed_origin() {
    let (backend, weir) = start();
    let resp = client()
        .get(weir.url("/keyed"))
        .header("Origin", APP)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(header(&resp, "access-control-allow-origin"), Some(APP));
    assert_eq!(all(&resp, "vary"), ["Origin"]);
    assert!(header(&resp, "www-authenticate").is_some());
    let body: Value = resp.json().unwrap();
    assert_eq!(body["error"], "credentials are required");

    // A disallowed origin gets the refusal without them; with the key, the request passes.
    let resp = client()
        .get(weir.url("/keyed"))
        .header("Origin", "https://evil.example.com")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(cors_headers(&resp), Vec::<String>::new());
    let resp = client()
        .get(weir.url("/keyed"))
        .header("Origin", APP)
        .header("apikey", KEY)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "access-control-allow-origin"), Some(APP));
    assert_eq!(backend.requests(), 1);
}

#[test]
fn a_listeners_cors_makes_weirs_404_and_5xx_readable_by_an_allowed_origin() {
    let dead = refused_address();
    let yaml = format!(
        "listeners:\n  - name: web\n    address: \"127.0.0.1:{{port}}\"\n    policies:\n      \
         cors: {{ origins: [{APP}], credentials: true }}\n\
         routes:\n  - {{ name: down, paths: [/down], upstream: dead }}\n\
         upstreams:\n  dead:\n    targets: [{{ address: \"{}\" }}]\n",
        dead.address()
    );
    let weir = Weir::start(&yaml);
    for (path, failed) in [("/nowhere", false), ("/down", true)] {
        let resp = client()
            .get(weir.url(path))
            .header("Origin", APP)
            .send()
            .unwrap();
        let status = resp.status().as_u16();
        assert!(
            if failed { status >= 502 } else { status == 404 },
            "{path}: {status}"
        );
        assert_eq!(
            header(&resp, "access-control-allow-origin"),
            Some(APP),
            "{path}"
        );
        assert_eq!(
            header(&resp, "access-control-allow-credentials"),
            Some("true"),
            "{path}"
        );
        assert_eq!(all(&resp, "vary"), ["Origin"], "{path}");
        let body: Value = resp.json().unwrap();
        assert_eq!(body["status"], status, "{path}");
    }
}

/// A page that says hello, served on an origin of its own.
fn page() -> Backend {
    Backend::start(
        &[("Content-Type", "text/html")],
        "<!doctype html><title>page</title><p>page</p>",
    )
}

/// `fetch(url, init)` in the page the browser shows: `{ok, status, body}` when it resolves,
/// `{error}` (the exception's name) when it rejects.
fn fetch(browser: &Browser, url: &str, init: Value) -> Value {
    let script = format!(
        "const done = arguments[arguments.length - 1];\n\
         fetch({}, {init})\n\
           .then(r => r.text().then(body => done({{ ok: r.ok, status: r.status, body }})))\n\
           .catch(e => done({{ error: e.name }}));",
        json!(url)
    );
    browser.run_async(&script)
}

#[test]
fn chromium_fetches_through_weir_from_an_allowed_origin_and_is_blocked_from_another() {
    if !require_tools("CORS in a browser", &BROWSER_TOOLS) {
        return;
    }
    let (allowed_page, other_page) = (page(), page());
    let api = Instance::start("api");
    let allowed = format!("http://127.0.0.1:{}", allowed_page.port);
    let yaml = format!(
        "listeners:\n  - {{ name: web, address: \"127.0.0.1:{{port}}\" }}\n\
         routes:\n\
         \x20 - name: api\n    paths: [/api]\n    upstream: api\n    policies:\n      \
         cors: {{ origins: [\"{allowed}\"], methods: [GET, POST], expose_headers: [X-Upstream-Instance] }}\n\
         \x20 - name: session\n    paths: [/session]\n    upstream: api\n    policies:\n      \
         cors: {{ origins: [\"{allowed}\"], credentials: true }}\n\
         upstreams:\n  api:\n    targets: [{{ address: \"{}\", name: api }}]\n",
        api.address()
    );
    let weir = Weir::start(&yaml);
    let browser = Browser::start();

    // The allowed page (another port: another origin) reads the answer, and an exposed
    // header.
    browser.goto(&format!("{allowed}/"));
    let got = fetch(&browser, &weir.url("/api/items"), json!({}));
    assert_eq!(got["status"], 200, "{got}");
    let echoed: Value = serde_json::from_str(got["body"].as_str().unwrap()).unwrap();
    assert_eq!(echoed["headers"]["origin"], allowed.as_str(), "{echoed}");
    let script = format!(
        "const done = arguments[0];\n\
         fetch({}).then(r => done(r.headers.get('x-upstream-instance')), e => done(e.name));",
        json!(weir.url("/api"))
    );
    assert_eq!(browser.run_async(&script), "api");

    // A JSON POST with a custom header: the browser sends a preflight, weir answers it, and
    // the POST follows.
    let init = json!({
        "method": "POST",
        "headers": { "Content-Type": "application/json", "X-Custom": "1" },
        "body": "{\"a\":1}",
    });
    let got = fetch(&browser, &weir.url("/api/items"), init.clone());
    assert_eq!(got["status"], 200, "{got}");
    let echoed: Value = serde_json::from_str(got["body"].as_str().unwrap()).unwrap();
    assert_eq!(echoed["method"], "POST", "{echoed}");
    assert_eq!(echoed["headers"]["x-custom"], "1", "{echoed}");
    // A method the route does not allow is refused at the preflight: the browser never
    // sends the request.
    let got = fetch(
        &browser,
        &weir.url("/api/items"),
        json!({ "method": "PATCH" }),
    );
    assert_eq!(got["error"], "TypeError", "{got}");

    // With credentials: the page's cookie (cookies ignore the port) goes with the request.
    browser.run("document.cookie = 'session=s3cret; path=/'; return null;");
    let got = fetch(
        &browser,
        &weir.url("/session"),
        json!({ "credentials": "include" }),
    );
    assert_eq!(got["status"], 200, "{got}");
    let echoed: Value = serde_json::from_str(got["body"].as_str().unwrap()).unwrap();
    assert_eq!(echoed["headers"]["cookie"], "session=s3cret", "{echoed}");
    // The same call on the route without credentials is blocked by the browser.
    let got = fetch(
        &browser,
        &weir.url("/api"),
        json!({ "credentials": "include" }),
    );
    assert_eq!(got["error"], "TypeError", "{got}");

    // Another origin's page is blocked by the browser, for a simple GET and a preflighted
    // POST alike, although weir served the GET.
    browser.goto(&format!("http://127.0.0.1:{}/", other_page.port));
    let got = fetch(&browser, &weir.url("/api/items"), json!({}));
    assert_eq!(got["error"], "TypeError", "{got}");
    let got = fetch(&browser, &weir.url("/api/items"), init);
    assert_eq!(got["error"], "TypeError", "{got}");
}
