//! Routing precedence, strip_prefix and the 404 answer, through the real binary. Each route
//! has its own upstream with one instance, so the instance header names the route taken.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

mod common;

use common::*;

/// `(route name, hosts, paths, strip_prefix)`; each route gets an instance named after it.
fn start(routes: &[(&str, &str, &str, bool)]) -> RouteTable {
    RouteTable::start("", "", routes)
}

#[test]
fn most_specific_route_wins() {
    let s = start(&[
        ("any-root", "[]", "[\"/\"]", false),
        ("any-api", "[]", "[\"/api\"]", false),
        ("any-users", "[]", "[\"/api/users\"]", false),
        ("exact-path", "[]", "[\"exact:/api/users/me\"]", false),
        ("regex", "[]", "[\"regex:^/api/v[0-9]+/\"]", false),
        ("wildcard", "[\"*.example.com\"]", "[\"/api\"]", false),
        ("exact-host", "[api.example.com]", "[\"/api\"]", false),
    ]);
    let c = client();
    let table = [
        // (Host, path, expected route)
        ("api.example.com", "/api/x", "exact-host"),
        ("API.EXAMPLE.COM:8080", "/api/x", "exact-host"),
        ("web.example.com", "/api/x", "wildcard"),
        ("a.b.example.com", "/api/x", "wildcard"),
        ("example.com", "/api/x", "any-api"),
        ("api.example.com", "/other", "any-root"),
        ("other.test", "/api/users/7", "any-users"),
        ("other.test", "/api/usersettings", "any-users"),
        ("other.test", "/api/users/me", "exact-path"),
        ("other.test", "/api/v2/users", "regex"),
        ("other.test", "/api", "any-api"),
        ("other.test", "/", "any-root"),
    ];
    for (host, path, expected) in table {
        let resp = c.get(s.weir.url(path)).header("Host", host).send().unwrap();
        assert_eq!(resp.status(), 200, "{host}{path}");
        assert_eq!(served_by(&resp), expected, "{host}{path}");
    }
}

#[test]
fn users_and_orders_go_to_their_services() {
    let s = start(&[
        ("user_service", "[]", "[\"/api/users\"]", false),
        ("order_service", "[]", "[\"/api/orders\"]", false),
    ]);
    let c = client();
    let users = c.get(s.weir.url("/api/users/1")).send().unwrap();
    assert_eq!(served_by(&users), "user_service");
    let orders = c.get(s.weir.url("/api/orders?since=2")).send().unwrap();
    assert_eq!(served_by(&orders), "order_service");
    let echo: serde_json::Value = orders.json().unwrap();
    assert_eq!(
        echo["path"], "/api/orders?since=2",
        "path forwarded unchanged"
    );
}

#[test]
fn strip_prefix_removes_the_matched_part() {
    let s = start(&[("svc", "[]", "[\"/svc\"]", true)]);
    let c = client();
    for (sent, seen) in [
        ("/svc/x/y?q=1", "/x/y?q=1"),
        ("/svc", "/"),
        ("/svc?q=2", "/?q=2"),
    ] {
        let echo: serde_json::Value = c.get(s.weir.url(sent)).send().unwrap().json().unwrap();
        assert_eq!(echo["path"], seen, "sent {sent}");
    }
}

#[test]
fn no_route_is_a_404_json_with_the_request_id() {
    let s = start(&[("users", "[api.example.com]", "[\"/api/users\"]", false)]);
    let c = client();
    for (host, path) in [("api.example.com", "/nope"), ("other.test", "/api/users")] {
        let resp = c.get(s.weir.url(path)).header("Host", host).send().unwrap();
        assert_eq!(resp.status(), 404);
        assert_eq!(resp.headers()["content-type"], "application/json");
        let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
        let text = resp.text().unwrap();
        let body: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["status"], 404);
        assert_eq!(body["request_id"], id.as_str());
        for internal in ["users", "127.0.0.1", "upstream"] {
            assert!(
                !text.contains(internal),
                "404 body names `{internal}`: {text}"
            );
        }
    }
}
