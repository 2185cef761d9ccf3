//! How policies compose, as a client and an operator see it: a listener's rules guard every
//! path (401 before 404), a route's `auth` replaces its listener's, anonymous callers are
//! named as such, and the access log names the consumer without ever holding a key.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;

const KEY: &str = "listener-key-4d1c";

/// A listener requiring a key, a `/open` route that lets anonymous callers in instead, and
/// a `/api` route under the listener's rule; the access log in `access.log`.
fn config(app: &Instance, extra: &str) -> String {
    format!(
        "listeners:\n  - name: web\n    address: \"127.0.0.1:{{port}}\"\n    policies:\n      \
         auth: {{ methods: [key], key_in_query: true }}\n\
         consumers:\n  - {{ name: app-team, groups: [internal], keys: [\"{KEY}\"] }}\n\
         routes:\n  - {{ name: open, paths: [/open], upstream: app, \
         policies: {{ auth: {{ methods: [key], anonymous: true }} }} }}\n  \
         - {{ name: api, paths: [/api], upstream: app }}\n\
         upstreams:\n  app:\n    targets: [{{ address: \"{}\" }}]\n\
         admin: {{ address: \"127.0.0.1:{{port2}}\" }}\n{extra}",
        app.address()
    )
}

#[test]
fn a_listener_guards_every_path_and_a_route_rule_replaces_it() {
    let app = Instance::start("app-1");
    let weir = Weir::start(&config(&app, ""));
    let http = client();

    let unrouted = http.get(weir.url("/nowhere")).send().unwrap();
    assert_eq!(unrouted.status(), 401, "credentials first, routes unseen");
    assert!(unrouted.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Key "));
    let keyed = http
        .get(weir.url("/nowhere"))
        .header("apikey", KEY)
        .send()
        .unwrap();
    assert_eq!(
        keyed.status(),
        404,
        "a known caller learns there is no route"
    );

    assert_eq!(http.get(weir.url("/api/x")).send().unwrap().status(), 401);
    let api: Value = http
        .get(weir.url("/api/x"))
        .header("apikey", KEY)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(api["headers"]["x-consumer-username"], "app-team");
    assert_eq!(api["headers"]["x-consumer-groups"], "internal");

    let open = http
        .get(weir.url("/open/page"))
        .header("X-Consumer-Username", "admin")
        .send()
        .unwrap();
    assert_eq!(
        open.status(),
        200,
        "the route's anonymous rule replaces the listener's"
    );
    let open: Value = open.json().unwrap();
    assert_eq!(
        open["headers"]["x-consumer-username"], "anonymous",
        "never the client's"
    );
    assert_eq!(open["headers"]["x-anonymous-consumer"], "true");
    let wrong = http
        .get(weir.url("/open/page"))
        .header("apikey", "guess")
        .send()
        .unwrap();
    assert_eq!(wrong.status(), 401, "a wrong key is not anonymous");

    let text = scrape(weir.port2);
    let count = |consumer, class| {
        sample(
            &text,
            "weir_requests_total",
            &[
                ("route", "open"),
                ("consumer", consumer),
                ("code_class", class),
            ],
        )
    };
    assert_eq!(count("anonymous", "2xx"), Some(1.0));
    assert_eq!(count("", "4xx"), Some(1.0));
    let refused = |route, reason| {
        sample(
            &text,
            "weir_auth_failures_total",
            &[("route", route), ("reason", reason)],
        )
    };
    assert_eq!(refused("", "missing"), Some(1.0), "refused before routing");
    assert_eq!(refused("api", "missing"), Some(1.0));
    assert_eq!(refused("open", "bad_key"), Some(1.0));
}

#[test]
fn the_access_log_names_the_consumer_and_never_holds_a_key() {
    let app = Instance::start("app-1");
    let weir = Weir::start(&config(
        &app,
        "access_log: { format: json, path: access.log }\n",
    ));
    let http = client();
    let url = weir.url(&format!("/api/x?a=1&apikey={KEY}"));
    let served: Value = http.get(&url).send().unwrap().json().unwrap();
    assert_eq!(
        served["path"], "/api/x?a=1",
        "the key in the query does not go upstream"
    );
    let refused = http
        .get(weir.url("/api/y?apikey=wrong-guess"))
        .send()
        .unwrap();
    assert_eq!(refused.status(), 401);

    let log = weir.dir.path().join("access.log");
    let lines = poll_until(Duration::from_secs(5), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        (text.lines().count() >= 2).then_some(text)
    })
    .expect("two access log lines");
    assert!(
        !lines.contains(KEY) && !lines.contains("wrong-guess"),
        "{lines}"
    );
    let entries: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries[0]["consumer"], "app-team");
    assert_eq!(entries[0]["path"], "/api/x?a=1&apikey=REDACTED");
    assert_eq!(entries[1]["consumer"], "");
    assert_eq!(entries[1]["status"], 401);
}
