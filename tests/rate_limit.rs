//! Local rate limits through the real binary: a burst from one address against 10/s, other
//! addresses unaffected, the window passing; the bound across window edges measured from the
//! client; keys by consumer and by header; Kong's headers and none; the memory a flood of
//! distinct client addresses costs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

mod common;

use common::*;
use reqwest::blocking::{Client, Response};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const KEY: &str = "rl-test-key-0a1b2c3d";
const OTHER_KEY: &str = "rl-test-key-9f8e7d6c";

/// weir with `routes` (list items) to `instance`, two consumers, and `extra` at the top level.
fn start(instance: &Instance, routes: &str, extra: &str) -> Weir {
    let consumers =
        format!("  - {{ name: alice, keys: [{KEY}] }}\n  - {{ name: bob, keys: [{OTHER_KEY}] }}\n");
    Weir::start(&gateway(instance, &consumers, routes, extra))
}

/// A client whose connections come from `address`.
fn client_from(address: Ipv4Addr) -> Client {
    Client::builder()
        .local_address(IpAddr::V4(address))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn header(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

/// A 429 as weir writes it: JSON, with `Retry-After` of at least a second.
fn assert_limited(resp: Response) -> reqwest::header::HeaderMap {
    assert_eq!(resp.status(), 429);
    let headers = resp.headers().clone();
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1, "Retry-After {retry}");
    let body: serde_json::Value = serde_json::from_str(&resp.text().unwrap()).unwrap();
    assert_eq!(body["error"], "rate limit exceeded");
    assert_eq!(body["status"], 429);
    headers
}

#[test]
fn a_burst_from_one_address_passes_up_to_the_limit_and_others_are_unaffected() {
    let inst = Instance::start("i1");
    let weir = start(
        &inst,
        &policy_route("ip", "{ rate_limit: [{ limit: 10, per: 1s, by: ip }] }"),
        "",
    );
    let client = client_from(Ipv4Addr::LOCALHOST);
    let url = weir.url("/ip");
    let start = Arc::new(Barrier::new(30));
    let answers: Vec<Response> = (0..30)
        .map(|_| {
            let (client, url, start) = (client.clone(), url.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                client.get(url).send().unwrap()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let (passed, limited): (Vec<Response>, Vec<Response>) =
        answers.into_iter().partition(|r| r.status() == 200);
    assert_eq!((passed.len(), limited.len()), (10, 20));
    let mut remaining: Vec<u64> = passed
        .iter()
        .map(|r| header(r, "ratelimit-remaining").unwrap().parse().unwrap())
        .collect();
    remaining.sort_unstable();
    assert_eq!(remaining, (0..10).collect::<Vec<_>>());
    assert!(passed
        .iter()
        .all(|r| header(r, "ratelimit-limit").as_deref() == Some("10")));
    for resp in limited {
        let headers = assert_limited(resp);
        assert_eq!(headers["ratelimit-limit"], "10");
        assert_eq!(headers["ratelimit-remaining"], "0");
        let reset: u64 = headers["ratelimit-reset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=2).contains(&reset), "RateLimit-Reset {reset}");
    }
    let other = client_from(Ipv4Addr::new(127, 0, 0, 2));
    assert_eq!(other.get(weir.url("/ip")).send().unwrap().status(), 200);
    let again = poll_until(Duration::from_secs(5), || {
        (client.get(&url).send().unwrap().status() == 200).then_some(())
    });
    assert!(again.is_some(), "the client never passed again");
    let metrics = scrape(weir.port2);
    let counted = sample(
        &metrics,
        "weir_ratelimited_total",
        &[("route", "ip"), ("by", "ip")],
    );
    assert!(counted >= Some(20.0), "{metrics}");
}

#[test]
fn no_interval_of_per_admits_more_than_the_limit_across_window_edges() {
    let inst = Instance::start("i1");
    let (limit, per) = (5, Duration::from_secs(1));
    let weir = start(
        &inst,
        &policy_route("edge", "{ rate_limit: [{ limit: 5, per: 1s, by: ip }] }"),
        "",
    );
    let url = weir.url("/edge");
    let until = Instant::now() + Duration::from_millis(3500);
    // (sent, answered) of each admitted request, from four clients sending without pause.
    let admitted: Vec<(Instant, Instant)> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let client = client();
                let mut admitted = Vec::new();
                while Instant::now() < until {
                    let sent = Instant::now();
                    let status = client.get(&url).send().unwrap().status();
                    if status == 200 {
                        admitted.push((sent, Instant::now()));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                admitted
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    // weir decided each one between its sending and its answer: requests sent within
    // `per - latency` of each other were decided within `per`.
    let latency = admitted.iter().map(|(s, a)| *a - *s).max().unwrap();
    let mut sent: Vec<Instant> = admitted.iter().map(|(s, _)| *s).collect();
    sent.sort();
    let span = per - latency;
    for (i, from) in sent.iter().enumerate() {
        let within = sent[i..].iter().take_while(|t| **t - *from <= span).count();
        assert!(within <= limit, "{within} admitted within {span:?}");
    }
    assert!(
        sent.len() >= 2 * limit,
        "the clients reached the limit in each window: {} admitted",
        sent.len()
    );
}

#[test]
fn consumers_and_header_values_are_counted_apart() {
    let inst = Instance::start("i1");
    let routes = policy_route(
        "keyed",
        "{ auth: { methods: [key] }, rate_limit: [{ limit: 3, per: 1m, by: consumer }] }",
    ) + &policy_route(
        "tenant",
        "{ rate_limit: [{ limit: 2, per: 1m, by: { header: X-Tenant } }] }",
    );
    let weir = start(&inst, &routes, "");
    let c = client();
    let keyed = |key: &str| {
        c.get(weir.url("/keyed"))
            .header("apikey", key)
            .send()
            .unwrap()
    };
    for _ in 0..3 {
        assert_eq!(keyed(KEY).status(), 200);
    }
    assert_limited(keyed(KEY));
    assert_eq!(keyed(OTHER_KEY).status(), 200, "bob has his own count");
    let tenant = |t: &str| {
        c.get(weir.url("/tenant"))
            .header("X-Tenant", t)
            .send()
            .unwrap()
    };
    assert_eq!(tenant("a").status(), 200);
    assert_eq!(tenant("a").status(), 200);
    assert_limited(tenant("a"));
    assert_eq!(tenant("b").status(), 200);
    // Without the header: counted by address.
    assert_eq!(c.get(weir.url("/tenant")).send().unwrap().status(), 200);
    let metrics = scrape(weir.port2);
    let labels = [("route", "tenant"), ("by", "header")];
    assert_eq!(
        sample(&metrics, "weir_ratelimited_total", &labels),
        Some(1.0)
    );
    let labels = [("route", "keyed"), ("by", "consumer")];
    assert_eq!(
        sample(&metrics, "weir_ratelimited_total", &labels),
        Some(1.0)
    );
}

#[test]
fn kong_headers_name_the_period_and_none_hides_them() {
    let inst = Instance::start("i1");
    let routes = policy_route(
        "kong",
        "{ rate_limit: [{ limit: 5, per: 1m, by: ip, headers: kong }, \
         { limit: 100, per: 1h, by: ip, headers: kong }] }",
    ) + &policy_route(
        "quiet",
        "{ rate_limit: [{ limit: 1, per: 1m, by: ip, headers: none }] }",
    );
    let weir = start(&inst, &routes, "");
    let c = client();
    let resp = c.get(weir.url("/kong")).send().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "x-ratelimit-limit-minute").as_deref(),
        Some("5")
    );
    assert_eq!(
        header(&resp, "x-ratelimit-remaining-minute").as_deref(),
        Some("4")
    );
    assert_eq!(
        header(&resp, "x-ratelimit-limit-hour").as_deref(),
        Some("100")
    );
    assert_eq!(
        header(&resp, "x-ratelimit-remaining-hour").as_deref(),
        Some("99")
    );
    assert_eq!(
        header(&resp, "ratelimit-limit").as_deref(),
        Some("5"),
        "the tightest"
    );
    assert_eq!(header(&resp, "ratelimit-remaining").as_deref(), Some("4"));
    let resp = c.get(weir.url("/quiet")).send().unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp
        .headers()
        .keys()
        .all(|k| !k.as_str().contains("ratelimit")));
    let headers = assert_limited(c.get(weir.url("/quiet")).send().unwrap());
    assert!(
        headers.keys().all(|k| !k.as_str().contains("ratelimit")),
        "{headers:?}"
    );
}

#[test]
fn a_reload_keeps_the_counts_of_an_unchanged_rule_and_a_changed_rule_starts_afresh() {
    let inst = Instance::start("i1");
    let limited = |limit: u32, extra_route: &str| {
        policy_route(
            "kept",
            &format!("{{ rate_limit: [{{ limit: {limit}, per: 1m, by: ip }}] }}"),
        ) + extra_route
    };
    let weir = start(&inst, &limited(3, ""), "");
    let c = client();
    let status = || c.get(weir.url("/kept")).send().unwrap().status().as_u16();
    assert_eq!([status(), status(), status()], [200; 3]);
    let reloads = |n: f64| {
        let metrics = || scrape(weir.port2);
        let labels = [("result", "success")];
        let done = poll_until(Duration::from_secs(10), || {
            (sample(&metrics(), "weir_config_reloads_total", &labels) >= Some(n)).then_some(())
        });
        assert!(done.is_some(), "reload {n} never came:\n{}", weir.log());
    };
    let other = "  - { name: other, paths: [/other], upstream: app }\n";
    let config = std::fs::read_to_string(weir.config()).unwrap();
    weir.rewrite(&config.replace(&limited(3, ""), &limited(3, other)));
    weir.signal(Signal::SIGHUP);
    reloads(1.0);
    assert_eq!(status(), 429, "the kept rule kept its counts");
    weir.rewrite(&config.replace(&limited(3, ""), &limited(4, other)));
    weir.signal(Signal::SIGHUP);
    reloads(2.0);
    assert_eq!(status(), 200, "a changed rule counts afresh");
}

/// One keep-alive connection sending `GET path` with each of `forwarded` as
/// `X-Forwarded-For`, reading each answer; returns the statuses seen.
fn send_forwarded(port: u16, path: &str, forwarded: impl Iterator<Item = String>) -> Vec<u16> {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut statuses = Vec::new();
    for address in forwarded {
        // One write a request: pieces would wait for delayed ACKs.
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: test\r\nX-Forwarded-For: {address}\r\n\r\n");
        writer.write_all(request.as_bytes()).unwrap();
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        statuses.push(line.split(' ').nth(1).unwrap().parse().unwrap());
        let mut length = 0;
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
    }
    statuses
}

/// weir's resident memory, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kb * 1024
}

/// What one local key may add to weir's RSS (docs/policies.md, "Rate limits"): its 160
/// bytes in the store, and the allocator's and the page table's slack.
const RSS_PER_KEY: u64 = 200;
/// `rate_limits.local.max_keys` when not set.
const DEFAULT_MAX_KEYS: u32 = 100_000;

/// A flood of 200,000 new addresses fills the store to its cap, then 100,000 more cost
/// nothing more: they evict one-off keys. In a debug build on a 2-core machine the 320,000
/// requests took about 50 s; the first flood grew RSS by 12.5 MiB (16 MiB seen under load)
/// against a cap of 19 MiB, the second by 2 MiB.
#[test]
fn a_flood_of_distinct_addresses_costs_no_more_than_the_documented_cap() {
    let inst = Instance::start("i1");
    // A listener's rule also counts requests no route matches, which weir answers itself:
    // the flood costs no upstream round trips. Each connection carries thousands of them.
    let weir = Weir::start(&format!(
        "limits: {{ max_requests_per_connection: 1000000 }}\n\
         listeners:\n  - name: web\n    address: \"127.0.0.1:{{port}}\"\n    \
         policies: {{ rate_limit: [{{ limit: 1000000, per: 1m, by: ip }}] }}\n\
         headers:\n  trusted_proxies: [127.0.0.1/32]\n\
         routes:\n  - {{ name: app, paths: [/app], upstream: app }}\n\
         upstreams:\n  app:\n    targets: [{{ address: \"{}\" }}]\n",
        inst.address()
    ));
    let connections = 32u32;
    // `requests` from addresses `first..first + requests`, or all from `first` alone.
    let flood = |first: u32, requests: u32, distinct: bool| {
        let started = Instant::now();
        let per_connection = requests / connections;
        let threads: Vec<_> = (0..connections)
            .map(|c| {
                let port = weir.port;
                std::thread::spawn(move || {
                    let addresses = (0..per_connection).map(move |i| {
                        let n = if distinct { c * per_connection + i } else { 0 };
                        Ipv4Addr::from(0x0a00_0000 + first + n).to_string()
                    });
                    send_forwarded(port, "/none", addresses)
                })
            })
            .collect();
        for t in threads {
            assert!(t.join().unwrap().iter().all(|s| *s == 404));
        }
        started.elapsed()
    };
    // The connections, buffers and allocator pools the flood needs, with one key.
    flood(0, 20_000, false);
    let cap = u64::from(DEFAULT_MAX_KEYS) * RSS_PER_KEY;
    let mut grown = Vec::new();
    for (first, requests) in [
        (1, 2 * DEFAULT_MAX_KEYS),
        (1 + 2 * DEFAULT_MAX_KEYS, DEFAULT_MAX_KEYS),
    ] {
        let before = rss(weir.pid);
        let took = flood(first, requests, true);
        grown.push(rss(weir.pid).saturating_sub(before));
        eprintln!(
            "{requests} new addresses in {took:?}: RSS grew {} KiB (cap {} KiB)",
            grown.last().unwrap() / 1024,
            cap / 1024
        );
    }
    assert!(grown[0] < cap, "filling the store: {grown:?}, cap {cap}");
    // Unbounded, 100,000 more keys would cost half the cap.
    assert!(grown[1] < cap / 4, "past the cap: {grown:?}, cap {cap}");
}
