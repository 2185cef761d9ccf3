//! Rate limits shared through a real redis-server: two weir processes counting one limit,
//! Redis stopped under `on_store_error: allow` and `deny`, and Redis back on the same port
//! with the limits applying again, neither weir restarted; a Redis that is up but answers
//! nothing costs a request its `timeout`, not Redis's delay.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

mod common;

use common::*;
use reqwest::blocking::{Client, Response};
use std::time::Duration;

const ALICE: &str = "rl-alice-3c4d5e6f";
const BOB: &str = "rl-bob-7a8b9c0d";

/// weir on `{port}` (admin on `{port2}`) with a route limited to 20 a minute per consumer in
/// the Redis on `redis_port`, failing `on_store_error`.
fn start(instance: &Instance, redis_port: u16, on_store_error: &str) -> Weir {
    Weir::start_logging(
        &format!(
            "server: {{ pid_file: \"{{dir}}/weir.pid\" }}\n\
             consumers:\n  - {{ name: alice, keys: [{ALICE}] }}\n  - {{ name: bob, keys: [{BOB}] }}\n\
             rate_limits:\n  redis: {{ url: \"redis://127.0.0.1:{redis_port}/0\", timeout: 200ms }}\n  \
             on_store_error: {on_store_error}\n\
             listeners:\n  - {{ name: web, address: \"127.0.0.1:{{port}}\" }}\n\
             admin: {{ address: \"127.0.0.1:{{port2}}\" }}\n\
             routes:\n  - name: shared\n    upstream: app\n    policies:\n      \
             auth: {{ methods: [key] }}\n      \
             rate_limit: [{{ limit: 20, per: 1m, by: consumer, store: redis }}]\n\
             upstreams:\n  app:\n    targets: [{{ address: \"{}\", name: {} }}]\n",
            instance.address(),
            instance.id
        ),
        "info",
    )
}

fn get(client: &Client, weir: &Weir, key: &str) -> Response {
    client
        .get(weir.url("/"))
        .header("apikey", key)
        .send()
        .unwrap()
}

/// Statuses of `n` requests of `key` alternating between the two weirs.
fn alternate(client: &Client, weirs: [&Weir; 2], key: &str, n: usize) -> (usize, usize) {
    let statuses: Vec<u16> = (0..n)
        .map(|i| get(client, weirs[i % 2], key).status().as_u16())
        .collect();
    let passed = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(passed + limited, n, "{statuses:?}");
    (passed, limited)
}

#[test]
fn two_weirs_share_one_limit_and_follow_redis_down_and_back() {
    if !require_tools("rate_limit_redis", &["redis-server", "redis-cli"]) {
        return;
    }
    let mut redis = Redis::start();
    let inst = Instance::start("i1");
    let allow = start(&inst, redis.port, "allow");
    let deny = start(&inst, redis.port, "deny");
    let c = client();
    assert_eq!(alternate(&c, [&allow, &deny], ALICE, 40), (20, 20));
    let resp = get(&c, &deny, BOB);
    assert_eq!(resp.status(), 200, "bob has his own count");
    assert_eq!(resp.headers()["ratelimit-remaining"], "19");
    assert!(redis.stat("total_commands_processed") >= 41);

    redis.stop();
    for _ in 0..5 {
        assert_eq!(
            get(&c, &allow, ALICE).status(),
            200,
            "allow lets requests through"
        );
        let refused = get(&c, &deny, BOB);
        assert_eq!(refused.status(), 503);
        assert_eq!(refused.headers()["retry-after"], "1");
    }
    let errors = sample(
        &scrape(allow.port2),
        "weir_ratelimit_store_errors_total",
        &[],
    );
    assert!(errors >= Some(5.0), "{errors:?}");
    for weir in [&allow, &deny] {
        assert_eq!(weir.log_count("rate limits: Redis at"), 1, "{}", weir.log());
    }

    redis.restart();
    // Back when weir counts again: its answers carry the rate headers once more.
    for weir in [&allow, &deny] {
        let back = poll_until(Duration::from_secs(10), || {
            let resp = get(&c, weir, BOB);
            resp.headers()
                .contains_key("ratelimit-remaining")
                .then_some(())
        });
        assert!(
            back.is_some(),
            "weir never counted in Redis again:\n{}",
            weir.log()
        );
        assert!(weir
            .wait_log(
                &["rate limits: Redis at", "answers again"],
                Duration::from_secs(5)
            )
            .is_some());
    }
    // The restarted Redis holds no counts: alice starts afresh, and is limited again.
    assert_eq!(alternate(&c, [&allow, &deny], ALICE, 25), (20, 5));
}

#[test]
fn a_slow_redis_holds_a_request_no_longer_than_the_timeout() {
    if !require_tools("rate_limit_redis", &["redis-server", "redis-cli"]) {
        return;
    }
    let redis = Redis::start();
    let inst = Instance::start("i1");
    let allow = start(&inst, redis.port, "allow");
    let deny = start(&inst, redis.port, "deny");
    let c = client();
    for weir in [&allow, &deny] {
        assert_eq!(get(&c, weir, ALICE).status(), 200, "connected and counting");
    }
    // Redis answers nothing for 5 s; both weirs answer long before it does (their timeout is
    // 200 ms), each as its `on_store_error` says.
    let pause = Duration::from_secs(5);
    let paused = std::time::Instant::now();
    redis.pause(pause);
    let refused = get(&c, &deny, BOB);
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let through = get(&c, &allow, BOB);
    assert_eq!(through.status(), 200);
    assert!(!through.headers().contains_key("ratelimit-remaining"));
    let waited = paused.elapsed();
    assert!(waited < pause, "the requests waited for Redis: {waited:?}");
    for weir in [&allow, &deny] {
        let errors = sample(
            &scrape(weir.port2),
            "weir_ratelimit_store_errors_total",
            &[],
        );
        assert!(errors >= Some(1.0), "{errors:?}");
    }
}

#[test]
fn the_script_smooths_a_burst_as_the_local_store_does() {
    if !require_tools("rate_limit_redis", &["redis-server", "redis-cli"]) {
        return;
    }
    let redis = Redis::start();
    let inst = Instance::start("i1");
    let weir = Weir::start(&format!(
        "rate_limits:\n  redis: {{ url: \"redis://127.0.0.1:{}\" }}\n\
         listeners:\n  - {{ name: web, address: \"127.0.0.1:{{port}}\" }}\n\
         routes:\n  - name: smooth\n    upstream: app\n    policies:\n      \
         rate_limit:\n        - {{ limit: 10, per: 1m, by: ip, burst: 2, store: redis }}\n        \
         - {{ limit: 10, per: 1m, by: ip, burst: 2 }}\n\
         upstreams:\n  app:\n    targets: [{{ address: \"{}\" }}]\n",
        redis.port,
        inst.address()
    ));
    let c = client();
    let statuses: Vec<u16> = (0..4)
        .map(|_| c.get(weir.url("/")).send().unwrap().status().as_u16())
        .collect();
    assert_eq!(statuses, [200, 200, 429, 429]);
    // The first refusal came from the Redis rule (it is checked first): one more each
    // per / limit = 6 s.
    let resp = c.get(weir.url("/")).send().unwrap();
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((5..=6).contains(&retry), "Retry-After {retry}");
    let keys = succeed(std::process::Command::new("redis-cli").args([
        "-p",
        &redis.port.to_string(),
        "--scan",
        "--pattern",
        "weir:rl:route:smooth.0.10per60000ms.burst2.ip:*",
    ]));
    let keys = String::from_utf8(keys.stdout).unwrap();
    assert_eq!(keys.lines().count(), 1, "{keys}");
}
