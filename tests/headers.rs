//! Header injection as the upstream and the client see it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

mod common;

use common::*;
use serde_json::Value;

fn echo(resp: reqwest::blocking::Response) -> Value {
    assert_eq!(resp.status(), 200);
    resp.json().unwrap()
}

#[test]
fn request_id_is_generated_propagated_or_replaced() {
    let inst = Instance::start("i1");
    let weir = Weir::start(&single_upstream("round_robin", &[(&inst, 1)], ""));
    let c = client();

    let resp = c.get(weir.url("/")).send().unwrap();
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert_eq!(echo(resp)["headers"]["x-request-id"], id.as_str());

    let resp = c
        .get(weir.url("/"))
        .header("X-Request-ID", "abc-123.x")
        .send()
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "abc-123.x");
    assert_eq!(echo(resp)["headers"]["x-request-id"], "abc-123.x");

    for bad in ["has spaces in it", "quote\"d", &"x".repeat(129)] {
        let resp = c
            .get(weir.url("/"))
            .header("X-Request-ID", bad)
            .send()
            .unwrap();
        let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
        assert_ne!(id, bad);
        assert_eq!(id.len(), 36);
        assert_eq!(echo(resp)["headers"]["x-request-id"], id.as_str());
    }
}

#[test]
fn forwarded_headers_from_untrusted_clients_are_replaced() {
    let inst = Instance::start("i1");
    let weir = Weir::start(&single_upstream(
        "round_robin",
        &[(&inst, 1)],
        "headers:\n  trusted_proxies: [10.0.0.0/8]\n",
    ));
    let seen = echo(
        client()
            .get(weir.url("/p"))
            .header("Host", "shop.example.com")
            .header("X-Forwarded-For", "1.2.3.4")
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "evil.test")
            .send()
            .unwrap(),
    );
    let h = &seen["headers"];
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-real-ip"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "shop.example.com");
}

#[test]
fn forwarded_headers_from_trusted_proxies_are_appended_and_believed() {
    let inst = Instance::start("i1");
    let weir = Weir::start(&single_upstream(
        "round_robin",
        &[(&inst, 1)],
        "headers:\n  trusted_proxies: [127.0.0.1, 10.0.0.0/8]\n",
    ));
    let seen = echo(
        client()
            .get(weir.url("/p"))
            .header("X-Forwarded-For", "1.2.3.4, 10.1.1.1")
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "shop.example.com")
            .send()
            .unwrap(),
    );
    let h = &seen["headers"];
    assert_eq!(h["x-forwarded-for"], "1.2.3.4, 10.1.1.1, 127.0.0.1");
    assert_eq!(h["x-real-ip"], "1.2.3.4", "right-most untrusted entry");
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(h["x-forwarded-host"], "shop.example.com");
}

#[test]
fn instance_header_name_is_configurable_and_can_be_off() {
    let inst = Instance::start("inventory-1");
    let weir = Weir::start(&single_upstream("round_robin", &[(&inst, 1)], ""));
    let resp = client().get(weir.url("/")).send().unwrap();
    assert_eq!(resp.headers()["x-upstream-instance"], "inventory-1");

    let weir = Weir::start(&single_upstream(
        "round_robin",
        &[(&inst, 1)],
        "headers:\n  instance_header: X-Instance-ID\n",
    ));
    let resp = client().get(weir.url("/")).send().unwrap();
    assert_eq!(resp.headers()["x-instance-id"], "inventory-1");
    assert!(resp.headers().get("x-upstream-instance").is_none());

    let weir = Weir::start(&single_upstream(
        "round_robin",
        &[(&inst, 1)],
        "headers:\n  instance_header: \"\"\n",
    ));
    let resp = client().get(weir.url("/")).send().unwrap();
    assert!(resp.headers().get("x-upstream-instance").is_none());
}

#[test]
fn route_and_upstream_rules_set_add_and_remove() {
    let inst = Instance::start("i1");
    let yaml = format!(
        r#"listeners:
  - {{ name: web, address: "127.0.0.1:{{port}}" }}
routes:
  - name: api
    upstream: app
    headers:
      request: {{ set: {{ X-Env: prod }}, remove: [X-Debug] }}
      response: {{ set: {{ X-Frame-Options: DENY }}, remove: [X-Instance-Id] }}
upstreams:
  app:
    targets: [{{ address: "{}", name: i1 }}]
    headers:
      request: {{ set: {{ X-Env: staging, X-Pool: app }}, add: {{ X-Tag: from-upstream }} }}
      response: {{ add: {{ Cache-Control: no-store }} }}
"#,
        inst.address()
    );
    let weir = Weir::start(&yaml);
    let resp = client()
        .get(weir.url("/"))
        .header("X-Debug", "1")
        .header("X-Tag", "from-client")
        .send()
        .unwrap();
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert!(
        resp.headers().get("x-instance-id").is_none(),
        "removed from the response"
    );
    let h = &echo(resp)["headers"];
    assert_eq!(
        h["x-env"], "prod",
        "the route's rule applies after the upstream's"
    );
    assert_eq!(h["x-pool"], "app");
    assert!(h.get("x-debug").is_none());
    assert_eq!(
        h["x-tag"], "from-client, from-upstream",
        "add keeps the client's value"
    );
}
