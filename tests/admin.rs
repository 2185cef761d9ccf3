//! Admin API writes, as an operator steers targets through Kong's: add, drain, enable,
//! delete, reload; runtime-only unless `admin.persist` writes them back to the file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;

const TOKEN: &str = "t0ken";

/// The instance names of upstream `app`, with their drain flags.
fn instances(api: &AdminApi) -> Vec<(String, bool)> {
    let app = api.get("/upstreams/app");
    let data = app["data"].as_array().unwrap();
    data.iter()
        .map(|t| {
            let name = t["instance"].as_str().unwrap().to_string();
            (name, t["drain"].as_bool().unwrap())
        })
        .collect()
}

/// One upstream `app` with `target` (named), the admin listener on `{port2}` with `admin`
/// settings inside its braces.
fn config(target: &Instance, admin: &str) -> String {
    format!(
        "server: {{ pid_file: weir.pid }}\n\
         listeners:\n  - {{ name: web, address: \"127.0.0.1:{{port}}\" }}\n\
         routes:\n  - {{ name: all, upstream: app }}\n\
         upstreams:\n  app:\n    targets:\n      - {{ address: \"{}\", name: {} }}\n\
         admin: {{ address: \"127.0.0.1:{{port2}}\", {admin} }}\n",
        target.address(),
        target.id
    )
}

/// The instances that serve `n` requests.
fn served(weir: &Weir, n: usize) -> HashSet<String> {
    serving(weir, n).into_iter().collect()
}

fn set(names: &[&str]) -> HashSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[test]
fn targets_are_added_drained_enabled_and_deleted_at_once_and_a_reload_drops_them() {
    let slow = Instance::start_slow("slow", Duration::from_millis(1500));
    let fast = Instance::start("fast");
    let weir = Weir::start(&config(&slow, &format!("token: {TOKEN}")));
    let api = AdminApi::new(weir.port2, TOKEN);
    let add = json!({ "address": fast.address(), "name": "fast", "weight": 1 });

    // Writes need the token, even on loopback; reads do not.
    let (status, body) = api.call("POST", "/upstreams/app/targets", None, &add.to_string());
    assert_eq!(status, 401, "{body}");
    let wrong = api.call("POST", "/upstreams/app/targets", Some("guess"), "{}");
    assert_eq!(wrong.0, 401, "{}", wrong.1);
    let refused = api
        .http
        .post(format!("{}/reload", api.base))
        .send()
        .unwrap();
    let challenge = refused.headers().get("www-authenticate").unwrap();
    assert!(challenge.to_str().unwrap().starts_with("Bearer"));
    // The scheme is case-insensitive; a read-only endpoint names the methods it takes.
    let wrong_method = api
        .http
        .post(format!("{}/status", api.base))
        .header("authorization", format!("bearer {TOKEN}"))
        .send()
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(wrong_method.headers()["allow"], "GET, HEAD");
    assert_eq!(instances(&api), [("slow".to_string(), false)]);

    // Bad input: 400 naming the field; unknown upstream 404.
    let (status, body) = api.call(
        "POST",
        "/upstreams/app/targets",
        Some(TOKEN),
        "{\"address\":",
    );
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("not valid JSON"),
        "{body}"
    );
    for (bad, field) in [
        (json!({ "address": 9001 }), "address"),
        (
            json!({ "address": "127.0.0.1:1", "weight": "heavy" }),
            "weight",
        ),
        (json!({ "address": "127.0.0.1:1", "wieght": 2 }), "wieght"),
        (json!({ "weight": 2 }), "address"),
        (json!({ "address": "no-port" }), "address"),
        (
            json!({ "address": "127.0.0.1:1", "weight": 5000 }),
            "weight",
        ),
    ] {
        let (status, body) = api.write("POST", "/upstreams/app/targets", bad.clone());
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["field"], field, "{bad}: {body}");
    }
    let (status, body) = api.write("POST", "/upstreams/nope/targets", add.clone());
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        instances(&api),
        [("slow".to_string(), false)],
        "nothing changed"
    );

    // Added: it takes traffic at once. The answer says the change is runtime-only.
    let (status, body) = api.write("POST", "/upstreams/app/targets", add.clone());
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["persisted"], false);
    assert!(
        body["note"].as_str().unwrap().contains("runtime only"),
        "{body}"
    );
    assert_eq!(served(&weir, 4), set(&["slow", "fast"]));
    let (status, body) = api.write("POST", "/upstreams/app/targets", add.clone());
    assert_eq!(status, 409, "a second target at one address: {body}");

    // Drained with a request in flight on it: that request finishes, no new one goes there.
    let url = weir.url("/");
    let in_flight = std::thread::spawn(move || {
        let http = client();
        loop {
            let response = http.get(&url).send().unwrap();
            assert_eq!(response.status(), 200);
            if served_by(&response) == "slow" {
                return;
            }
        }
    });
    let on_slow = || {
        let health = api.get("/upstreams/app/health");
        (health["data"][0]["in_flight"] == 1).then_some(())
    };
    poll_until(Duration::from_secs(10), on_slow).expect("a request in flight on `slow`");
    let (status, body) = api.write("POST", "/upstreams/app/targets/slow/drain", json!({}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"], true);
    in_flight
        .join()
        .expect("the in-flight request on the drained target completes");
    let (status, body) = api.write("POST", "/upstreams/app/targets/slow/drain", json!({}));
    assert_eq!((status, &body["changed"]), (200, &json!(false)), "{body}");
    assert_eq!(served(&weir, 6), set(&["fast"]));
    let expected = [("slow".to_string(), true), ("fast".to_string(), false)];
    assert_eq!(instances(&api), expected);

    // Enabled again, it takes its share back.
    let (status, body) = api.write("POST", "/upstreams/app/targets/slow/enable", json!({}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(served(&weir, 4), set(&["slow", "fast"]));

    // Deleted by address as configured: gone from the upstream and from its traffic.
    let configured = api.get("/upstreams/app")["data"][0]["target"].clone();
    assert_eq!(configured, slow.address());
    let path = format!("/upstreams/app/targets/{}", slow.address());
    let (status, body) = api.write("DELETE", &path, json!({}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(instances(&api), [("fast".to_string(), false)]);
    assert_eq!(served(&weir, 4), set(&["fast"]));
    // Its metric series leave with it; the target that stays keeps its counts.
    let metrics = scrape(weir.port2);
    let requests = |instance| {
        let labels = [("instance", instance), ("code_class", "2xx")];
        sample(&metrics, "weir_requests_total", &labels)
    };
    assert_eq!(requests("slow"), None, "{metrics}");
    assert!(requests("fast").is_some_and(|n| n > 0.0), "{metrics}");
    let (status, body) = api.write("DELETE", "/upstreams/app/targets/fast", json!({}));
    assert_eq!(status, 409, "the last target stays: {body}");

    // GET /config shows the running document with the change, the token hidden.
    let shown = api.get("/config");
    assert_eq!(shown["unsaved_changes"], 4, "{shown}");
    assert_eq!(shown["config"]["admin"]["token"], "<redacted>");
    let targets = &shown["config"]["upstreams"]["app"]["targets"];
    assert_eq!(targets.as_array().unwrap().len(), 1, "{shown}");
    assert_eq!(targets[0]["name"], "fast");

    // The file never had them: a reload brings its own targets back.
    let (status, body) = api.write("POST", "/reload", json!({}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["dropped_edits"], 4, "{body}");
    assert_eq!(instances(&api), [("slow".to_string(), false)]);
    assert_eq!(api.get("/config")["unsaved_changes"], 0);
    let metrics = scrape(weir.port2);
    let upstream_series = |instance| {
        sample(
            &metrics,
            "weir_upstream_ejections_total",
            &[("instance", instance)],
        )
    };
    assert_eq!(
        upstream_series("fast"),
        None,
        "a reload drops the series of targets it drops"
    );
    assert_eq!(upstream_series("slow"), Some(0.0), "{metrics}");
}

#[test]
fn persisted_changes_are_written_to_the_file_and_survive_reload_and_restart() {
    let (a, b) = (Instance::start("a"), Instance::start("b"));
    let weir = Weir::start(&config(&a, &format!("token: {TOKEN}, persist: true")));
    let api = AdminApi::new(weir.port2, TOKEN);

    let add = json!({ "address": b.address(), "name": "b", "weight": 3 });
    let (status, body) = api.write("POST", "/upstreams/app/targets", add);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["persisted"], true);
    assert!(body.get("note").is_none(), "{body}");
    let (status, body) = api.write("POST", "/upstreams/app/targets/a/drain", json!({}));
    assert_eq!(status, 200, "{body}");
    let state = [("a".to_string(), true), ("b".to_string(), false)];
    assert_eq!(instances(&api), state);

    // The file holds the changes, and `weir --test` accepts it.
    let written = std::fs::read_to_string(weir.config()).unwrap();
    assert!(
        written.contains("drain: true") && written.contains(&b.address()),
        "{written}"
    );
    let test = weir_test(&weir.config());
    assert!(test.status.success(), "{test:?}");

    // A reload keeps them.
    let (status, body) = api.write("POST", "/reload", json!({}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(instances(&api), state);
    assert_eq!(served(&weir, 4), set(&["b"]));

    // A file edited since it was loaded is not overwritten: reload first.
    weir.rewrite(&format!("# edited by hand\n{written}"));
    let (status, body) = api.write("POST", "/upstreams/app/targets/a/enable", json!({}));
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("reload"), "{body}");
    assert_eq!(instances(&api), state, "a refused write changes nothing");

    // A new process started from the file has the same targets and state.
    let (port, admin_port) = (weir.port, weir.port2);
    let (_restarted, _dir) = weir.restart();
    let api = AdminApi::new(admin_port, TOKEN);
    assert_eq!(instances(&api), state);
    let http = client();
    for _ in 0..4 {
        let response = http
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .unwrap();
        assert_eq!(served_by(&response), "b");
    }
}

#[test]
fn without_a_token_writes_are_turned_off_and_say_how_to_turn_them_on() {
    let a = Instance::start("a");
    let weir = Weir::start(&config(&a, "persist: false"));
    let api = AdminApi::new(weir.port2, TOKEN);
    let (status, body) = api.call("POST", "/reload", Some("anything"), "");
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("admin.token"),
        "{body}"
    );
    assert_eq!(api.get("/upstreams/app")["name"], "app", "reads still work");
}

#[test]
fn admin_allow_refuses_other_clients_before_anything_else() {
    let a = Instance::start("a");
    let weir = Weir::start(&config(&a, &format!("token: {TOKEN}, allow: [127.0.0.1]")));
    let api = AdminApi::new(weir.port2, TOKEN);
    assert_eq!(api.get("/status")["routes"], 1, "127.0.0.1 is allowed");

    // From 127.0.0.2, outside the list: 403 for everything, the page and the token included.
    let outside = reqwest::blocking::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for (method, path) in [("GET", "/"), ("GET", "/status"), ("POST", "/reload")] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = outside
            .request(method, format!("{}{path}", api.base))
            .bearer_auth(TOKEN)
            .send()
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
        let body: Value = response.json().unwrap();
        let error = body["error"].as_str().unwrap();
        assert!(
            error.contains("127.0.0.2") && error.contains("admin.allow"),
            "{body}"
        );
    }
}

#[test]
fn kong_clients_list_and_add_targets_as_kong_writes_them() {
    let (a, b) = (Instance::start("a"), Instance::start("b"));
    let weir = Weir::start(&config(&a, &format!("token: {TOKEN}")));
    let api = AdminApi::new(weir.port2, TOKEN);

    let listed = api.get("/upstreams/app/targets");
    assert_eq!(listed["next"], Value::Null, "{listed}");
    let first = &listed["data"][0];
    assert_eq!(first["target"], a.address(), "{listed}");
    assert_eq!(first["name"], "a");
    assert_eq!(first["weight"], 1);
    assert_eq!(first["health"], "HEALTHY");

    // Kong's body: `target` for the address.
    let add = json!({ "target": b.address(), "weight": 1 });
    let (status, body) = api.write("POST", "/upstreams/app/targets", add);
    assert_eq!(status, 201, "{body}");
    let listed = api.get("/upstreams/app/targets");
    let targets: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, [a.address(), b.address()]);
    assert_eq!(served(&weir, 4), set(&["a", &b.address()]));

    let both = json!({ "target": "127.0.0.1:1", "address": "127.0.0.1:2" });
    let (status, body) = api.write("POST", "/upstreams/app/targets", both);
    assert_eq!(status, 400, "one address: {body}");
    let (status, _) = api.call("GET", "/upstreams/nope/targets", None, "");
    assert_eq!(status, 404);
    let (status, _) = api.write("PUT", "/upstreams/app/targets", json!({}));
    assert_eq!(status, 405);
}
