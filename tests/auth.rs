//! Access control as clients and instances see it, through the real binary: consumers
//! identified by API key (from the file, `${ENV}` and `keys_file`) or by basic auth against
//! hashes `htpasswd` makes, IP rules on the client address weir derives, group and consumer
//! rules, the headers that go upstream, the metrics, and consumers changed by reloads under
//! load.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

mod common;

use common::*;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;
use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

/// inventory-app's key, given to weir in an environment variable.
const KEY: &str = "inv-7c1d2e9a4b6f80e3d5c2a1b0";
const KEY_VAR: &str = "WEIR_AUTH_TEST_INVENTORY_KEY";
/// partner's key, written in the file.
const PARTNER_KEY: &str = "partner-5e8a0c3b7d1f9264";

/// The fingerprint weir names a key by: the first 16 hex digits of its SHA-256.
fn fingerprint(key: &str) -> String {
    openssl::sha::sha256(key.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The two consumers most tests use: inventory-app (group internal, key from the
/// environment) and partner (no group, key in the file).
fn consumers() -> String {
    format!(
        "  - {{ name: inventory-app, groups: [internal], keys: [\"${{{KEY_VAR}}}\"] }}\n  \
         - {{ name: partner, keys: [\"{PARTNER_KEY}\"] }}\n"
    )
}

/// What the instance saw of a request that must have been answered 200.
fn echo(resp: Response) -> Value {
    let status = resp.status();
    let text = resp.text().unwrap();
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// The headers the instance saw.
fn seen_headers(resp: Response) -> serde_json::Map<String, Value> {
    echo(resp)["headers"].as_object().unwrap().clone()
}

/// The status of `request`, which must be `expected`: a JSON error naming the request id
/// the response carries. Returns the response headers.
fn refused(request: RequestBuilder, expected: u16) -> HeaderMap {
    let resp = request.send().unwrap();
    let headers = resp.headers().clone();
    let status = resp.status();
    let text = resp.text().unwrap();
    assert_eq!(status, expected, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    assert_eq!(body["status"], expected, "{text}");
    assert_eq!(
        body["request_id"].as_str(),
        headers["x-request-id"].to_str().ok(),
        "{text}"
    );
    headers
}

/// The `WWW-Authenticate` values of a response, in order.
fn challenges(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// The sum of every `name` sample whose labels include `labels`.
fn total(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .filter_map(|line| sample(line, name, labels))
        .sum()
}

/// weir serving `routes` to `instance` for [`consumers`], logging at `level`, with the
/// inventory key in its environment.
fn start(instance: &Instance, consumers: &str, routes: &str, extra: &str, level: &str) -> Weir {
    Weir::start_with_env(
        &gateway(instance, consumers, routes, extra),
        level,
        &[(KEY_VAR, KEY)],
    )
}

/// The four headers only weir sets, as a client would forge them.
const FORGED: [(&str, &str); 4] = [
    ("X-Consumer-Username", "admin"),
    ("X-Consumer-Groups", "admins"),
    ("X-Credential-Identifier", "forged"),
    ("X-Anonymous-Consumer", "false"),
];

#[test]
fn key_auth_refuses_without_a_right_key_and_names_the_consumer_upstream() {
    let inst = Instance::start("i1");
    let routes = policy_route("keyed", "{ auth: { methods: [key] } }")
        + "  - { name: open, upstream: app }\n";
    let weir = start(&inst, &consumers(), &routes, "", "error");
    let c = client();
    let url = weir.url("/keyed/items");

    let no_key = refused(c.get(&url), 401);
    assert_eq!(
        challenges(&no_key),
        [r#"Key realm="weir", key_names="apikey""#]
    );
    let wrong = refused(c.get(&url).header("apikey", "not-a-key"), 401);
    assert_eq!(challenges(&wrong).len(), 1);
    // A key is the whole value: a prefix, or the key with more after it, is wrong.
    refused(c.get(&url).header("apikey", &KEY[..KEY.len() - 1]), 401);
    refused(c.get(&url).header("apikey", format!("{KEY}x")), 401);
    refused(c.get(&url).header("apikey", ""), 401);

    // The key from the environment.
    let h = seen_headers(c.get(&url).header("apikey", KEY).send().unwrap());
    assert_eq!(h["x-consumer-username"], "inventory-app");
    assert_eq!(h["x-consumer-groups"], "internal");
    assert_eq!(h["x-credential-identifier"], fingerprint(KEY).as_str());
    assert!(h.get("apikey").is_none(), "the key went upstream: {h:?}");
    assert!(h.get("x-anonymous-consumer").is_none());

    // The key written in the file; a consumer without groups sends none.
    let h = seen_headers(c.get(&url).header("apikey", PARTNER_KEY).send().unwrap());
    assert_eq!(h["x-consumer-username"], "partner");
    assert_eq!(
        h["x-credential-identifier"],
        fingerprint(PARTNER_KEY).as_str()
    );
    assert!(h.get("x-consumer-groups").is_none());

    // What a client claims about itself never reaches the instance, on a keyed route or not.
    let mut forged = c.get(&url).header("apikey", PARTNER_KEY);
    for (name, value) in FORGED {
        forged = forged.header(name, value);
    }
    let h = seen_headers(forged.send().unwrap());
    assert_eq!(h["x-consumer-username"], "partner");
    assert_eq!(
        h["x-credential-identifier"],
        fingerprint(PARTNER_KEY).as_str()
    );
    assert!(h.get("x-consumer-groups").is_none(), "{h:?}");
    assert!(h.get("x-anonymous-consumer").is_none(), "{h:?}");
    let mut forged = c.get(weir.url("/open"));
    for (name, value) in FORGED {
        forged = forged.header(name, value);
    }
    let h = seen_headers(forged.send().unwrap());
    for (name, _) in FORGED {
        let name = name.to_ascii_lowercase();
        assert!(h.get(&name).is_none(), "{name} passed through: {h:?}");
    }
}

#[test]
fn hide_credentials_false_forwards_the_key() {
    let inst = Instance::start("i1");
    let routes = policy_route(
        "visible",
        "{ auth: { methods: [key], hide_credentials: false } }",
    );
    let weir = start(&inst, &consumers(), &routes, "", "error");
    let h = seen_headers(
        client()
            .get(weir.url("/visible"))
            .header("apikey", KEY)
            .send()
            .unwrap(),
    );
    assert_eq!(h["apikey"], KEY);
    assert_eq!(h["x-consumer-username"], "inventory-app");
}

#[test]
fn a_key_in_the_query_counts_only_where_allowed_and_is_stripped() {
    let inst = Instance::start("i1");
    let routes = policy_route("keyed", "{ auth: { methods: [key] } }")
        + &policy_route(
            "query",
            "{ auth: { methods: [key], key_names: [apikey, X-API-Key], key_in_query: true } }",
        );
    let weir = start(&inst, &consumers(), &routes, "", "error");
    let c = client();
    let no_query = refused(c.get(weir.url(&format!("/keyed?apikey={KEY}"))), 401);
    assert_eq!(
        challenges(&no_query),
        [r#"Key realm="weir", key_names="apikey""#]
    );

    for (query, left) in [
        (format!("?apikey={KEY}"), "/query"),
        (format!("?a=1&apikey={KEY}&b=2"), "/query?a=1&b=2"),
        (format!("?X-API-Key={KEY}&a=1"), "/query?a=1"),
    ] {
        let seen = echo(c.get(weir.url(&format!("/query{query}"))).send().unwrap());
        let path = seen["path"].as_str().unwrap();
        assert_eq!(path.trim_end_matches('?'), left, "{query}");
        assert!(!path.contains(KEY), "{path}");
        assert_eq!(seen["headers"]["x-consumer-username"], "inventory-app");
    }
    // The second key name works as a header too; a wrong key in the query is refused.
    let h = seen_headers(
        c.get(weir.url("/query"))
            .header("X-API-Key", PARTNER_KEY)
            .send()
            .unwrap(),
    );
    assert_eq!(h["x-consumer-username"], "partner");
    assert!(h.get("x-api-key").is_none());
    let wrong = refused(c.get(weir.url("/query?apikey=nope")), 401);
    // Both names, in any case (header names have none).
    let challenge = challenges(&wrong)[0].to_ascii_lowercase();
    assert!(
        challenge.starts_with(r#"key realm="weir", key_names=""#)
            && challenge.contains("apikey")
            && challenge.contains("x-api-key"),
        "{challenge}"
    );
}

#[test]
fn keys_come_from_a_keys_file_read_at_start_and_at_every_reload() {
    let inst = Instance::start("i1");
    let outside = tempfile::tempdir().unwrap();
    let first = outside.path().join("ops.keys");
    std::fs::write(&first, "# ops team\n\nops-key-one\n  \nops-key-two\n").unwrap();
    let filed = |keys_file: &str| {
        gateway(
            &inst,
            &format!("  - {{ name: ops, keys_file: \"{keys_file}\" }}\n"),
            &policy_route("keyed", "{ auth: { methods: [key] } }"),
            "",
        )
    };
    let weir = Weir::start(&filed(&first.display().to_string()));
    let c = client();
    let url = weir.url("/keyed");
    for key in ["ops-key-one", "ops-key-two"] {
        let h = seen_headers(c.get(&url).header("apikey", key).send().unwrap());
        assert_eq!(h["x-consumer-username"], "ops");
        assert_eq!(h["x-credential-identifier"], fingerprint(key).as_str());
    }
    for not_a_key in ["# ops team", ""] {
        refused(c.get(&url).header("apikey", not_a_key), 401);
    }

    // A path relative to the configuration's folder, read again at the reload.
    std::fs::write(weir.dir.path().join("ops.keys"), "ops-key-three\n").unwrap();
    reload(&weir, &filed("ops.keys"));
    refused(c.get(&url).header("apikey", "ops-key-one"), 401);
    let h = seen_headers(
        c.get(&url)
            .header("apikey", "ops-key-three")
            .send()
            .unwrap(),
    );
    assert_eq!(h["x-consumer-username"], "ops");
    // The same file with another key, and the same configuration: the reload reads it.
    std::fs::write(weir.dir.path().join("ops.keys"), "ops-key-four\n").unwrap();
    reload(&weir, &filed("ops.keys"));
    refused(c.get(&url).header("apikey", "ops-key-three"), 401);
    seen_headers(c.get(&url).header("apikey", "ops-key-four").send().unwrap());
}

/// `htpasswd -nb{flag} USER PASSWORD`: the hash, without `USER:`.
fn htpasswd(flag: &str, user: &str, password: &str) -> String {
    let out = succeed(
        Command::new("htpasswd")
            .arg(format!("-nb{flag}"))
            .args([user, password]),
    );
    let line = String::from_utf8(out.stdout).unwrap();
    let (name, hash) = line.trim().split_once(':').unwrap();
    assert_eq!(name, user);
    hash.to_string()
}

#[test]
fn basic_auth_checks_hashes_htpasswd_makes() {
    if !require_tools("basic_auth_checks_hashes_htpasswd_makes", &["htpasswd"]) {
        return;
    }
    let bcrypt = htpasswd("B", "alice", "correct horse");
    let apr1 = htpasswd("m", "bob", "battery staple");
    assert!(bcrypt.starts_with("$2y$") && apr1.starts_with("$apr1$"));
    let inst = Instance::start("i1");
    let consumers = format!(
        "  - {{ name: web-team, groups: [staff], basic: {{ user: alice, password: \"{bcrypt}\" }} }}\n  \
         - {{ name: legacy, basic: {{ user: bob, password: \"{apr1}\" }} }}\n  \
         - {{ name: partner, keys: [\"{PARTNER_KEY}\"] }}\n"
    );
    let routes = policy_route("basic", "{ auth: { methods: [basic] } }")
        + &policy_route("either", "{ auth: { methods: [key, basic] } }");
    let weir = Weir::start(&gateway(&inst, &consumers, &routes, ""));
    let c = client();
    let url = weir.url("/basic");

    let none = refused(c.get(&url), 401);
    assert_eq!(
        challenges(&none),
        [r#"Basic realm="weir", charset="UTF-8""#]
    );
    for (user, password) in [
        ("alice", "correct horsE"),
        ("alice", ""),
        ("alice", "battery staple"),
        ("bob", "correct horse"),
        ("carol", "correct horse"),
    ] {
        refused(c.get(&url).basic_auth(user, Some(password)), 401);
    }
    // Not base64, no colon, another scheme; a password that is not UTF-8, a user that is
    // not, a password far longer than htpasswd takes.
    let encoded =
        |credentials: &[u8]| format!("Basic {}", openssl::base64::encode_block(credentials));
    let long = format!("alice:{}", "x".repeat(4 * 1024));
    for value in [
        "Basic !!!".to_string(),
        "Basic YWxpY2U=".to_string(),
        "Bearer abc".to_string(),
        encoded(b"alice:\xff\xfe\x00horse"),
        encoded(b"\xe9lan:correct horse"),
        encoded(long.as_bytes()),
    ] {
        refused(c.get(&url).header("Authorization", value), 401);
    }

    // The same keep-alive client again and again: the first check hashes, the rest are
    // remembered; every one is answered.
    for _ in 0..10 {
        let h = seen_headers(
            c.get(&url)
                .basic_auth("alice", Some("correct horse"))
                .send()
                .unwrap(),
        );
        assert_eq!(h["x-consumer-username"], "web-team");
        assert_eq!(h["x-consumer-groups"], "staff");
        assert_eq!(h["x-credential-identifier"], "alice");
        assert!(h.get("authorization").is_none(), "{h:?}");
    }
    let h = seen_headers(
        c.get(&url)
            .basic_auth("bob", Some("battery staple"))
            .send()
            .unwrap(),
    );
    assert_eq!(h["x-consumer-username"], "legacy");
    // A remembered success does not let another password in.
    refused(c.get(&url).basic_auth("alice", Some("correct horse ")), 401);

    // Either method: both are named, either one passes.
    let both = refused(c.get(weir.url("/either")), 401);
    assert_eq!(
        challenges(&both),
        [
            r#"Key realm="weir", key_names="apikey""#,
            r#"Basic realm="weir", charset="UTF-8""#
        ]
    );
    for request in [
        c.get(weir.url("/either")).header("apikey", PARTNER_KEY),
        c.get(weir.url("/either"))
            .basic_auth("alice", Some("correct horse")),
    ] {
        echo(request.send().unwrap());
    }

    let text = scrape(weir.port2);
    let bad_passwords = total(
        &text,
        "weir_auth_failures_total",
        &[("reason", "bad_password")],
    );
    assert!(bad_passwords >= 5.0, "{bad_passwords}:\n{text}");
}

/// A client whose connections come from `ip` (any 127.0.0.0/8 address is this machine's).
fn client_from(ip: [u8; 4]) -> Client {
    Client::builder()
        .local_address(IpAddr::from(ip))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The status of GET `path` from `ip`, with `forwarded` as `X-Forwarded-For` if given.
fn status_from(weir: &Weir, ip: [u8; 4], path: &str, forwarded: Option<&str>) -> u16 {
    let mut request = client_from(ip).get(weir.url(path));
    if let Some(chain) = forwarded {
        request = request.header("X-Forwarded-For", chain);
    }
    request.send().unwrap().status().as_u16()
}

/// Routes with IP rules: /deny3 allows 127/8 but denies 127.0.0.3 (deny wins), /only2
/// allows 127.0.0.2 alone; a second listener on `{port3}` denies 127.0.0.3 before routing.
fn ip_gateway(inst: &Instance, extra: &str) -> String {
    let routes = policy_route(
        "deny3",
        "{ ip: { allow: [127.0.0.0/8], deny: [127.0.0.3] } }",
    ) + &policy_route("only2", "{ ip: { allow: [127.0.0.2/32] } }")
        + "  - { name: open, upstream: app }\n";
    gateway(inst, "", &routes, extra).replace(
        "admin:",
        "  - { name: guarded, address: \"127.0.0.1:{port3}\", policies: { ip: { deny: [127.0.0.3/32] } } }\nadmin:",
    )
}

#[test]
fn basic_auth_reads_the_users_line_of_an_htpasswd_file_at_start_and_at_every_reload() {
    let test = "basic_auth_reads_the_users_line_of_an_htpasswd_file_at_start_and_at_every_reload";
    if !require_tools(test, &["htpasswd", "openssl"]) {
        return;
    }
    let outside = tempfile::tempdir().unwrap();
    let file = outside.path().join("users.htpasswd");
    let htpasswd_file = |args: &[&str]| {
        succeed(Command::new("htpasswd").args(args));
    };
    let path = file.to_str().unwrap();
    htpasswd_file(&["-cbB", path, "alice", "first pw"]);
    // A SHA-512 crypt (`$6$`) line with a comment, as nginx's files may carry, written by
    // OpenSSL: an htpasswd older than httpd 2.4.59 cannot make one.
    let sha512 = succeed(Command::new("openssl").args(["passwd", "-6", "bob pw"])).stdout;
    let sha512 = String::from_utf8(sha512).unwrap();
    let mut lines = std::fs::read_to_string(&file).unwrap();
    lines.push_str(&format!("bob:{}:the legacy team\n", sha512.trim()));
    std::fs::write(&file, lines).unwrap();
    let inst = Instance::start("i1");
    let yaml = gateway(
        &inst,
        &format!(
            "  - {{ name: web-team, basic: {{ user: alice, htpasswd_file: \"{path}\" }} }}\n  \
             - {{ name: legacy, basic: {{ user: bob, htpasswd_file: \"{path}\" }} }}\n"
        ),
        &policy_route("basic", "{ auth: { methods: [basic] } }"),
        "",
    );
    let weir = Weir::start(&yaml);
    let c = client();
    let url = weir.url("/basic");
    let consumer = |user: &str, password: &str| {
        let h = seen_headers(c.get(&url).basic_auth(user, Some(password)).send().unwrap());
        h["x-consumer-username"].as_str().unwrap().to_string()
    };
    assert_eq!(consumer("alice", "first pw"), "web-team");
    assert_eq!(consumer("bob", "bob pw"), "legacy");
    refused(c.get(&url).basic_auth("alice", Some("bob pw")), 401);

    // `htpasswd` changes alice's password (now `$apr1$`); the reload reads the file again.
    htpasswd_file(&["-bm", path, "alice", "second pw"]);
    reload(&weir, &yaml);
    refused(c.get(&url).basic_auth("alice", Some("first pw")), 401);
    assert_eq!(consumer("alice", "second pw"), "web-team");

    // A file without bob's line fails the reload, and the running configuration stays.
    htpasswd_file(&["-D", path, "bob"]);
    assert!(!reloaded(&weir, &yaml), "{}", weir.log());
    assert!(
        weir.log().contains("has no line for user `bob`"),
        "{}",
        weir.log()
    );
    assert_eq!(consumer("bob", "bob pw"), "legacy");
    assert_eq!(consumer("alice", "second pw"), "web-team");
}
#[test]
fn ip_rules_decide_on_the_client_address_a_spoofed_header_cannot_change() {
    let inst = Instance::start("i1");
    let weir = Weir::start(&ip_gateway(&inst, ""));
    let cases = [
        // (from, path, X-Forwarded-For, expected)
        ([127, 0, 0, 1], "/deny3", None, 200),
        ([127, 0, 0, 1], "/only2", None, 403),
        ([127, 0, 0, 2], "/deny3", None, 200),
        ([127, 0, 0, 2], "/only2", None, 200),
        ([127, 0, 0, 3], "/deny3", None, 403),
        ([127, 0, 0, 3], "/only2", None, 403),
        ([127, 0, 0, 3], "/open", None, 200),
        // Untrusted peers: what they claim to forward changes nothing.
        ([127, 0, 0, 3], "/only2", Some("127.0.0.2"), 403),
        ([127, 0, 0, 3], "/deny3", Some("127.0.0.2"), 403),
        ([127, 0, 0, 2], "/deny3", Some("127.0.0.3"), 200),
        ([127, 0, 0, 1], "/only2", Some("127.0.0.2"), 403),
    ];
    for (from, path, forwarded, expected) in cases {
        assert_eq!(
            status_from(&weir, from, path, forwarded),
            expected,
            "{from:?} {path} forwarding {forwarded:?}"
        );
    }
    refused(client_from([127, 0, 0, 3]).get(weir.url("/only2")), 403);

    // The listener's rule applies before routing, to every path.
    let guarded = |ip: [u8; 4], path: &str| {
        client_from(ip)
            .get(format!("http://127.0.0.1:{}{path}", weir.port3))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(guarded([127, 0, 0, 2], "/open"), 200);
    assert_eq!(guarded([127, 0, 0, 3], "/open"), 403);
    assert_eq!(guarded([127, 0, 0, 3], "/deny3"), 403);
    let denied = total(
        &scrape(weir.port2),
        "weir_auth_failures_total",
        &[("reason", "ip")],
    );
    assert!(denied >= 7.0, "{denied}");
}

#[test]
fn a_trusted_proxys_forwarded_address_decides() {
    let inst = Instance::start("i1");
    let weir = Weir::start(&ip_gateway(
        &inst,
        "headers:\n  trusted_proxies: [127.0.0.1/32]\n",
    ));
    let cases = [
        ([127, 0, 0, 1], "/deny3", Some("127.0.0.3"), 403),
        ([127, 0, 0, 1], "/deny3", Some("127.0.0.2"), 200),
        ([127, 0, 0, 1], "/only2", Some("127.0.0.2"), 200),
        ([127, 0, 0, 1], "/only2", Some("10.9.9.9, 127.0.0.2"), 200),
        ([127, 0, 0, 1], "/only2", None, 403),
        // A peer outside trusted_proxies is still not believed.
        ([127, 0, 0, 2], "/deny3", Some("127.0.0.3"), 200),
        ([127, 0, 0, 3], "/only2", Some("127.0.0.2"), 403),
    ];
    for (from, path, forwarded, expected) in cases {
        assert_eq!(
            status_from(&weir, from, path, forwarded),
            expected,
            "{from:?} {path} forwarding {forwarded:?}"
        );
    }
}

#[test]
fn a_trusted_proxy_is_trusted_on_a_dual_stack_listener_too() {
    // On `[::]`, an IPv4 peer arrives as `::ffff:127.0.0.1`: still the trusted proxy, so the
    // address it forwards decides (not its own, which the allow lists may well name).
    let inst = Instance::start("i1");
    let yaml = ip_gateway(&inst, "headers:\n  trusted_proxies: [127.0.0.1/32]\n").replacen(
        "\"127.0.0.1:{port}\"",
        "\"[::]:{port}\"",
        1,
    );
    assert!(yaml.contains("[::]:{port}"), "{yaml}");
    let weir = Weir::start(&yaml);
    assert_eq!(
        status_from(&weir, [127, 0, 0, 1], "/deny3", Some("127.0.0.3")),
        403
    );
    assert_eq!(
        status_from(&weir, [127, 0, 0, 1], "/only2", Some("127.0.0.2")),
        200
    );
    let h = seen_headers(
        client_from([127, 0, 0, 1])
            .get(weir.url("/open"))
            .header("X-Forwarded-For", "127.0.0.2")
            .send()
            .unwrap(),
    );
    assert_eq!(h["x-real-ip"], "127.0.0.2", "{h:?}");
}

#[test]
fn groups_and_consumer_lists_decide_who_passes() {
    let inst = Instance::start("i1");
    let routes = policy_route(
        "internal",
        "{ auth: { methods: [key], groups: [internal] } }",
    ) + &policy_route(
        "named",
        "{ auth: { methods: [key], consumers: [partner] } }",
    ) + &policy_route(
        "either",
        "{ auth: { methods: [key], groups: [internal], consumers: [partner] } }",
    );
    let weir = start(&inst, &consumers(), &routes, "", "error");
    let c = client();
    let get = |path: &str, key: &str| c.get(weir.url(path)).header("apikey", key);
    refused(get("/internal", PARTNER_KEY), 403);
    assert_eq!(
        seen_headers(get("/internal", KEY).send().unwrap())["x-consumer-username"],
        "inventory-app"
    );
    refused(get("/named", KEY), 403);
    seen_headers(get("/named", PARTNER_KEY).send().unwrap());
    seen_headers(get("/either", PARTNER_KEY).send().unwrap());
    seen_headers(get("/either", KEY).send().unwrap());
    // A wrong key is still 401, not 403.
    refused(get("/internal", "nope"), 401);
    let forbidden = total(
        &scrape(weir.port2),
        "weir_auth_failures_total",
        &[("reason", "forbidden")],
    );
    assert_eq!(forbidden, 2.0);
}

#[test]
fn metrics_count_requests_by_consumer_and_failures_by_reason() {
    let inst = Instance::start("i1");
    let routes = policy_route("keyed", "{ auth: { methods: [key] } }")
        + "  - { name: open, upstream: app }\n";
    let weir = start(&inst, &consumers(), &routes, "", "error");
    let c = client();
    for _ in 0..3 {
        seen_headers(
            c.get(weir.url("/keyed"))
                .header("apikey", KEY)
                .send()
                .unwrap(),
        );
    }
    seen_headers(
        c.get(weir.url("/keyed"))
            .header("apikey", PARTNER_KEY)
            .send()
            .unwrap(),
    );
    seen_headers(c.get(weir.url("/open")).send().unwrap());
    refused(c.get(weir.url("/keyed")).header("apikey", "wrong-key"), 401);
    refused(
        c.get(weir.url("/keyed")).header("apikey", "wrong-again"),
        401,
    );
    refused(c.get(weir.url("/keyed")), 401);

    let text = scrape(weir.port2);
    let requests = |labels: &[(&str, &str)]| total(&text, "weir_requests_total", labels);
    assert_eq!(requests(&[("consumer", "inventory-app")]), 3.0, "{text}");
    assert_eq!(requests(&[("consumer", "partner")]), 1.0, "{text}");
    assert_eq!(
        requests(&[("route", "open"), ("consumer", "")]),
        1.0,
        "{text}"
    );
    let failures = |reason: &str| {
        total(
            &text,
            "weir_auth_failures_total",
            &[("route", "keyed"), ("reason", reason)],
        )
    };
    assert_eq!(failures("bad_key"), 2.0, "{text}");
    assert_eq!(failures("missing"), 1.0, "{text}");
    // No key, and no part of one, is a label value.
    for secret in [KEY, PARTNER_KEY, "wrong-key"] {
        assert!(!text.contains(secret), "{secret} in /metrics");
    }
}

/// The successful and failed reloads weir has counted.
fn reload_counts(weir: &Weir) -> (f64, f64) {
    let text = scrape(weir.port2);
    let count =
        |result| sample(&text, "weir_config_reloads_total", &[("result", result)]).unwrap_or(0.0);
    (count("success"), count("failure"))
}

/// Rewrites the file, sends SIGHUP and returns whether weir counted the reload a success
/// (then the new configuration answers every request from then on) or a failure.
fn reloaded(weir: &Weir, yaml: &str) -> bool {
    let (ok, failed) = reload_counts(weir);
    weir.rewrite(yaml);
    weir.signal(Signal::SIGHUP);
    let outcome = poll_until(Duration::from_secs(10), || {
        let (now_ok, now_failed) = reload_counts(weir);
        (now_ok > ok || now_failed > failed).then_some(now_ok > ok)
    });
    outcome.unwrap_or_else(|| panic!("the reload never came:\n{}", weir.log()))
}

/// [`reloaded`], which must succeed.
fn reload(weir: &Weir, yaml: &str) {
    assert!(reloaded(weir, yaml), "the reload failed:\n{}", weir.log());
}

#[test]
fn twenty_reloads_changing_consumers_keep_serving_and_a_removed_key_stops_at_once() {
    let inst = Instance::start("i1");
    let with_keys = |keys: &[&str]| {
        let keys: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
        gateway(
            &inst,
            &format!(
                "  - {{ name: inventory-app, keys: [{}] }}\n  - {{ name: partner, keys: [\"{PARTNER_KEY}\"] }}\n",
                keys.join(", ")
            ),
            &policy_route("keyed", "{ auth: { methods: [key] } }"),
            "",
        )
    };
    let (old_key, new_key) = ("rotating-key-old", "rotating-key-new");
    let weir = Weir::start(&with_keys(&[KEY, old_key]));
    let url = weir.url("/keyed");
    let load = Load::start_with(url.clone(), 8, |i| {
        let mut headers = HeaderMap::new();
        let key = if i % 2 == 0 { KEY } else { PARTNER_KEY };
        headers.insert("apikey", HeaderValue::from_static(key));
        let builder = Client::builder()
            .default_headers(headers)
            .timeout(Duration::from_secs(10));
        // Half keep their connection, half open one per request.
        let builder = if i % 4 < 2 {
            builder
        } else {
            builder.pool_max_idle_per_host(0)
        };
        builder.build().unwrap()
    });
    load.wait_more(50);
    // One keep-alive client checks the rotating keys on a connection opened before.
    let checker = client();
    seen_headers(checker.get(&url).header("apikey", old_key).send().unwrap());
    for round in 0..20 {
        let (removed, added) = if round % 2 == 0 {
            (old_key, new_key)
        } else {
            (new_key, old_key)
        };
        reload(&weir, &with_keys(&[KEY, added]));
        refused(checker.get(&url).header("apikey", removed), 401);
        let h = seen_headers(checker.get(&url).header("apikey", added).send().unwrap());
        assert_eq!(h["x-consumer-username"], "inventory-app", "round {round}");
        load.wait_more(20);
    }
    let tally = load.finish();
    assert!(tally.failed.is_empty(), "failed: {:?}", tally.failed);
    assert!(tally.ok > 400, "only {} requests", tally.ok);
    assert_eq!(reload_counts(&weir), (20.0, 0.0));
}

/// Made by `htpasswd -nbB alice 'secret pw'`, for tests that need no htpasswd of their own.
const ALICE_HASH: &str = "$2y$05$yY156.pB1AUXfT8Qt7BRZ.P4rBE6JbADcLBWQIsT5YSL5LGnJMU2W";

#[test]
fn a_listeners_auth_guards_unrouted_paths_and_a_routes_own_replaces_it() {
    let inst = Instance::start("i1");
    let consumers = consumers()
        + &format!(
            "  - {{ name: web-team, basic: {{ user: alice, password: \"{ALICE_HASH}\" }} }}\n"
        );
    let routes = "  - { name: inherits, paths: [/inherits], upstream: app }\n".to_string()
        + &policy_route("basic", "{ auth: { methods: [basic] } }")
        + &policy_route("anon", "{ auth: { methods: [key], anonymous: true } }");
    let yaml = gateway(&inst, &consumers, &routes, "").replace(
        "address: \"127.0.0.1:{port}\" }",
        "address: \"127.0.0.1:{port}\", policies: { auth: { methods: [key] } } }",
    );
    let weir = Weir::start_with_env(&yaml, "error", &[(KEY_VAR, KEY)]);
    let c = client();
    let get = |path: &str| c.get(weir.url(path));

    // No route matches: 401 first, so that the routes are not revealed; then 404.
    refused(get("/nowhere"), 401);
    refused(get("/nowhere").header("apikey", KEY), 404);
    // A route without auth of its own takes the listener's.
    refused(get("/inherits"), 401);
    let h = seen_headers(get("/inherits").header("apikey", KEY).send().unwrap());
    assert_eq!(h["x-consumer-username"], "inventory-app");
    // A route's auth replaces the listener's: a key is no credential on a basic route.
    let basic = refused(get("/basic").header("apikey", KEY), 401);
    assert_eq!(
        challenges(&basic),
        [r#"Basic realm="weir", charset="UTF-8""#]
    );
    let h = seen_headers(
        get("/basic")
            .basic_auth("alice", Some("secret pw"))
            .send()
            .unwrap(),
    );
    assert_eq!(h["x-consumer-username"], "web-team");
    assert_eq!(h["x-credential-identifier"], "alice");

    // anonymous: no credential passes as `anonymous`; a wrong one is still refused.
    let mut request = get("/anon");
    for (name, value) in FORGED {
        request = request.header(name, value);
    }
    let h = seen_headers(request.send().unwrap());
    assert_eq!(h["x-consumer-username"], "anonymous");
    assert_eq!(h["x-anonymous-consumer"], "true");
    assert!(h.get("x-credential-identifier").is_none(), "{h:?}");
    assert!(h.get("x-consumer-groups").is_none(), "{h:?}");
    refused(get("/anon").header("apikey", "nope"), 401);
    let h = seen_headers(get("/anon").header("apikey", PARTNER_KEY).send().unwrap());
    assert_eq!(h["x-consumer-username"], "partner");
    assert!(h.get("x-anonymous-consumer").is_none(), "{h:?}");

    let text = scrape(weir.port2);
    let requests = |labels: &[(&str, &str)]| total(&text, "weir_requests_total", labels);
    assert_eq!(
        requests(&[("route", "anon"), ("consumer", "anonymous")]),
        1.0,
        "{text}"
    );
    let unrouted = total(
        &text,
        "weir_auth_failures_total",
        &[("route", ""), ("reason", "missing")],
    );
    assert_eq!(unrouted, 1.0, "{text}");
}

#[test]
fn refusals_are_logged_at_most_once_a_second_and_never_with_the_credential() {
    let inst = Instance::start("i1");
    let consumers = consumers()
        + &format!(
            "  - {{ name: web-team, basic: {{ user: alice, password: \"{ALICE_HASH}\" }} }}\n"
        );
    let routes = policy_route("keyed", "{ auth: { methods: [key, basic] } }");
    let weir = start(&inst, &consumers, &routes, "", "warn");
    let c = client();
    let keyed = || c.get(weir.url("/keyed"));
    let (wrong_key, wrong_password) = ("guess-4f1c9e-key", "guess-7d2b0a-password");
    let first = refused(keyed().header("apikey", wrong_key), 401);
    let first_id = first["x-request-id"].to_str().unwrap().to_string();
    weir.wait_log(
        &[&first_id, "bad_key", "127.0.0.1", "keyed"],
        Duration::from_secs(5),
    )
    .expect("the first refusal is logged with its request id, client and route");
    // A burst: all refused, a few lines at most.
    let start = std::time::Instant::now();
    for _ in 0..30 {
        refused(keyed().header("apikey", wrong_key), 401);
        refused(keyed().basic_auth("alice", Some(wrong_password)), 401);
    }
    // One more refusal each 100 ms until the line counting the unlogged ones comes.
    poll_until(Duration::from_secs(5), || {
        refused(keyed().header("apikey", wrong_key), 401);
        weir.wait_log(&["not logged"], Duration::from_millis(100))
    })
    .expect("a later line says how many refusals were not logged");
    let seconds = start.elapsed().as_secs() as usize;
    let lines = weir.log_count(" refused: ");
    assert!(
        lines <= seconds + 3,
        "{lines} lines in {seconds} s:\n{}",
        weir.log()
    );
    let log = weir.log();
    for secret in [wrong_key, wrong_password, KEY, PARTNER_KEY] {
        assert!(!log.contains(secret), "{secret} is in the log:\n{log}");
    }
}

#[test]
fn every_credential_of_the_routes_methods_is_hidden_not_only_the_one_that_proved_who_called() {
    let inst = Instance::start("i1");
    let consumers = consumers()
        + &format!(
            "  - {{ name: web-team, basic: {{ user: alice, password: \"{ALICE_HASH}\" }} }}\n"
        );
    let routes = policy_route(
        "query",
        "{ auth: { methods: [key], key_names: [apikey, X-API-Key], key_in_query: true } }",
    ) + &policy_route("either", "{ auth: { methods: [key, basic] } }");
    let weir = start(&inst, &consumers, &routes, "", "error");
    let c = client();

    // A right key in a header, another consumer's key in the query and in the second header.
    let seen = echo(
        c.get(weir.url(&format!("/query?apikey={PARTNER_KEY}&a=1")))
            .header("apikey", KEY)
            .header("X-API-Key", PARTNER_KEY)
            .send()
            .unwrap(),
    );
    assert_eq!(seen["headers"]["x-consumer-username"], "inventory-app");
    assert_eq!(seen["path"], "/query?a=1");
    assert!(!seen.to_string().contains(PARTNER_KEY), "{seen}");

    // A key proves who called; the basic-auth password beside it stays here too.
    let h = seen_headers(
        c.get(weir.url("/either"))
            .header("apikey", KEY)
            .basic_auth("alice", Some("secret pw"))
            .send()
            .unwrap(),
    );
    assert_eq!(h["x-consumer-username"], "inventory-app");
    assert!(h.get("authorization").is_none(), "{h:?}");
    // Basic auth proves who called; the (wrong) key beside it stays here.
    let h = seen_headers(
        c.get(weir.url("/either"))
            .header("apikey", "someone-elses-key")
            .basic_auth("alice", Some("secret pw"))
            .send()
            .unwrap(),
    );
    assert_eq!(h["x-consumer-username"], "web-team");
    assert!(h.get("apikey").is_none(), "{h:?}");
    // An `Authorization` of a scheme the route does not read is the instance's business.
    let h = seen_headers(
        c.get(weir.url("/either"))
            .header("apikey", KEY)
            .header("Authorization", "Bearer for-the-instance")
            .send()
            .unwrap(),
    );
    assert_eq!(h["authorization"], "Bearer for-the-instance");
}

#[test]
fn a_key_in_the_query_is_redacted_from_the_access_log_where_the_query_is_not_read() {
    let inst = Instance::start("i1");
    let routes = policy_route("anon", "{ auth: { methods: [key], anonymous: true } }");
    let weir = start(
        &inst,
        &consumers(),
        &routes,
        "access_log: { format: json, path: access.log }\n",
        "error",
    );
    let seen = echo(
        client()
            .get(weir.url(&format!("/anon?apikey={KEY}&ApiKey={KEY}")))
            .send()
            .unwrap(),
    );
    assert_eq!(seen["headers"]["x-consumer-username"], "anonymous");
    let log = weir.dir.path().join("access.log");
    let line = poll_until(Duration::from_secs(5), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        (!text.is_empty()).then_some(text)
    })
    .expect("an access log line");
    assert!(!line.contains(KEY), "{line}");
    let entry: Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(entry["path"], "/anon?apikey=REDACTED&ApiKey=REDACTED");
}
