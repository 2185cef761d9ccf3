//! Load balancing through the real binary, counted by the instance header of each response.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

mod common;

use common::*;
use std::collections::HashMap;
use std::time::Duration;

fn shares(served: &[String]) -> HashMap<String, f64> {
    let mut counts: HashMap<String, f64> = HashMap::new();
    for s in served {
        *counts.entry(s.clone()).or_default() += 1.0;
    }
    counts
        .into_iter()
        .map(|(k, v)| (k, 100.0 * v / served.len() as f64))
        .collect()
}

fn instances(n: usize) -> Vec<Instance> {
    (1..=n)
        .map(|i| Instance::start(&format!("instance-{i}")))
        .collect()
}

#[test]
fn round_robin_is_even_and_strictly_cyclic() {
    let inst = instances(3);
    let weir = Weir::start(&single_upstream(
        "round_robin",
        &[(&inst[0], 1), (&inst[1], 1), (&inst[2], 1)],
        "",
    ));
    let served = serving(&weir, 3000);
    for (id, share) in shares(&served) {
        assert!((share - 100.0 / 3.0).abs() <= 1.0, "{id}: {share:.2}%");
    }
    let cycle = &served[..3];
    let distinct: std::collections::HashSet<_> = cycle.iter().collect();
    assert_eq!(distinct.len(), 3, "first three requests: {cycle:?}");
    for (i, s) in served.iter().enumerate() {
        assert_eq!(s, &cycle[i % 3], "request {i} broke the cycle");
    }
}

#[test]
fn weighted_3_2_1_interleaves_smoothly() {
    let inst = instances(3);
    let weir = Weir::start(&single_upstream(
        "weighted_round_robin",
        &[(&inst[0], 3), (&inst[1], 2), (&inst[2], 1)],
        "",
    ));
    let served = serving(&weir, 6000);
    let s = shares(&served);
    for (id, expected, weight) in [
        ("instance-1", 50.0, 3),
        ("instance-2", 100.0 / 3.0, 2),
        ("instance-3", 100.0 / 6.0, 1),
    ] {
        let share = s.get(id).copied().unwrap_or_default();
        assert!((share - expected).abs() <= 2.0, "{id}: {share:.2}%");
        let longest = served
            .chunk_by(|a, b| a == b)
            .filter(|run| run[0] == id)
            .map(<[String]>::len)
            .max()
            .unwrap_or_default();
        assert!(
            longest <= weight,
            "{id} served {longest} in a row (weight {weight})"
        );
    }
}

#[test]
fn weight_zero_takes_no_traffic_with_every_algorithm() {
    let inst = instances(3);
    for balance in [
        "round_robin",
        "random",
        "least_conn",
        "p2c",
        "ip_hash",
        "{ hash: { header: X-User } }",
    ] {
        let weir = Weir::start(&single_upstream(
            balance,
            &[(&inst[0], 1), (&inst[1], 0), (&inst[2], 1)],
            "",
        ));
        let c = client();
        let mut seen = std::collections::HashSet::new();
        for i in 0..200 {
            let resp = c
                .get(weir.url("/"))
                .header("X-User", format!("user-{i}"))
                .send()
                .unwrap();
            assert_eq!(resp.status(), 200, "{balance}");
            seen.insert(served_by(&resp));
        }
        assert!(
            !seen.contains("instance-2"),
            "{balance} sent traffic to weight 0"
        );
        if balance != "ip_hash" {
            assert_eq!(seen.len(), 2, "{balance} used {seen:?}");
        }
    }
}

#[test]
fn all_weights_zero_answers_503_not_a_crash() {
    let inst = instances(1);
    let weir = Weir::start(&single_upstream("ip_hash", &[(&inst[0], 0)], ""));
    let resp = client().get(weir.url("/")).send().unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: serde_json::Value = resp.json().unwrap();
    assert_eq!(body["status"], 503);
}

/// Sends `total` requests from 20 concurrent keep-alive clients; returns who served each.
fn concurrent(weir: &Weir, total: usize) -> Vec<String> {
    const CLIENTS: usize = 20;
    let url = weir.url("/");
    let handles: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let c = client();
                (0..total / CLIENTS)
                    .map(|_| {
                        let resp = c.get(&url).send().unwrap();
                        assert_eq!(resp.status(), 200);
                        served_by(&resp)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect()
}

/// One instance answers in 200 ms, two at once; under 20 concurrent clients the slow one
/// must get far less than its round-robin third. Bound: under 10% of requests.
#[test]
fn least_conn_and_p2c_spare_a_slow_instance() {
    let slow = Instance::start_slow("slow", Duration::from_millis(200));
    let fast1 = Instance::start("fast-1");
    let fast2 = Instance::start("fast-2");
    for balance in ["least_conn", "p2c"] {
        let weir = Weir::start(&single_upstream(
            balance,
            &[(&slow, 1), (&fast1, 1), (&fast2, 1)],
            "",
        ));
        let served = concurrent(&weir, 1000);
        let slow_share = shares(&served).get("slow").copied().unwrap_or_default();
        assert!(
            slow_share < 10.0,
            "{balance}: slow instance served {slow_share:.1}%"
        );
        assert!(served.iter().any(|s| s == "fast-1") && served.iter().any(|s| s == "fast-2"));
    }
}

#[test]
fn random_spreads_over_every_instance() {
    let inst = instances(3);
    let weir = Weir::start(&single_upstream(
        "random",
        &[(&inst[0], 1), (&inst[1], 1), (&inst[2], 1)],
        "",
    ));
    for (id, share) in shares(&serving(&weir, 3000)) {
        assert!((share - 100.0 / 3.0).abs() <= 5.0, "{id}: {share:.2}%");
    }
}

const TRUST_LOOPBACK: &str = "headers:\n  trusted_proxies: [127.0.0.1/32]\n";

/// Maps 1000 simulated clients (trusted X-Forwarded-For addresses) to instances.
fn ip_hash_map(weir: &Weir) -> HashMap<String, String> {
    let c = client();
    (0..1000)
        .map(|i| {
            let ip = format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256);
            let ask = || {
                let resp = c
                    .get(weir.url("/"))
                    .header("X-Forwarded-For", &ip)
                    .send()
                    .unwrap();
                served_by(&resp)
            };
            let first = ask();
            assert_eq!(first, ask(), "client {ip} moved between two requests");
            (ip, first)
        })
        .collect()
}

#[test]
fn ip_hash_keeps_clients_and_remaps_few_when_an_instance_goes() {
    let inst = instances(4);
    let four: Vec<(&Instance, u32)> = inst.iter().map(|i| (i, 1)).collect();
    let before = ip_hash_map(&Weir::start(&single_upstream(
        "ip_hash",
        &four,
        TRUST_LOOPBACK,
    )));
    let used: std::collections::HashSet<_> = before.values().collect();
    assert_eq!(used.len(), 4, "every instance should get some clients");
    let after = ip_hash_map(&Weir::start(&single_upstream(
        "ip_hash",
        &four[..3],
        TRUST_LOOPBACK,
    )));
    let moved = before.iter().filter(|(ip, id)| after[*ip] != **id).count();
    assert!(moved <= 350, "{moved} of 1000 clients moved");
    let kept_wrongly = before
        .iter()
        .filter(|(ip, id)| *id != "instance-4" && after[*ip] != **id)
        .count();
    assert!(
        kept_wrongly <= 100,
        "{kept_wrongly} clients of surviving instances moved"
    );
}

#[test]
fn hash_on_header_and_cookie_is_sticky() {
    let inst = instances(3);
    let targets: Vec<(&Instance, u32)> = inst.iter().map(|i| (i, 1)).collect();
    for (balance, header, template) in [
        ("{ hash: { header: X-User } }", "X-User", "{}"),
        ("{ hash: { cookie: sid } }", "Cookie", "theme=dark; sid={}"),
    ] {
        let weir = Weir::start(&single_upstream(balance, &targets, ""));
        let c = client();
        let mut used = std::collections::HashSet::new();
        for user in 0..60 {
            let key = format!("user-{user}");
            let ids: Vec<String> = (0..3)
                .map(|_| {
                    let value = template.replace("{}", &key);
                    served_by(&c.get(weir.url("/")).header(header, value).send().unwrap())
                })
                .collect();
            assert!(
                ids.iter().all(|id| id == &ids[0]),
                "{balance}: {key} went to {ids:?}"
            );
            used.insert(ids[0].clone());
        }
        assert_eq!(used.len(), 3, "{balance}: 60 keys used only {used:?}");
    }
}
