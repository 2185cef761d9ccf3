//! The status page on the admin listener, in headless Chromium (Debian's chromium, driven
//! through chromedriver): it renders every instance, follows traffic, shows a killed
//! instance as unhealthy within seconds, and drains one with the token typed in. A screenshot
//! is left in target/test-artifacts/status-page.png.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

mod common;

use common::*;
use fantoccini::Locator;
use serde_json::Value;
use std::time::Duration;

const TOKEN: &str = "page-t0ken";

/// The health cell of instance `id`.
fn health(id: &str) -> String {
    format!("tr[data-instance=\"{id}\"] .health")
}

#[test]
fn the_status_page_shows_instances_follows_a_kill_and_drains_with_the_token() {
    if !require_tools("status page", &BROWSER_TOOLS) {
        return;
    }
    let (a, b, mut c) = (
        Instance::start("a"),
        Instance::start("b"),
        Instance::start("c"),
    );
    let extra = format!(
        "    health_check: {{ path: /health, interval: 200ms, timeout: 500ms, \
         unhealthy_failures: 1 }}\n\
         admin: {{ address: \"127.0.0.1:{{port2}}\", token: {TOKEN} }}\n"
    );
    let weir = Weir::start_logging(
        &single_upstream("round_robin", &[(&a, 1), (&b, 1), (&c, 1)], &extra),
        "warn",
    );
    let origin = format!("http://127.0.0.1:{}", weir.port2);
    let load = Load::start(weir.url("/"), 2);

    let browser = Browser::start();
    browser.goto(&format!("{origin}/"));
    for id in ["a", "b", "c"] {
        browser.wait_text(&health(id), |t| t == "healthy");
    }
    // Rates come from two reads 2 s apart; each instance takes about a third.
    browser.wait_text("tr[data-instance=\"a\"] .rate", |t| {
        t.parse::<f64>().is_ok_and(|r| r > 0.0)
    });
    let share = browser.text("tr[data-instance=\"b\"] .share").unwrap();
    let share: f64 = share.trim_end_matches('%').parse().unwrap();
    assert!((20.0..=46.0).contains(&share), "b's share: {share}%");
    assert_ne!(browser.text("tr[data-instance=\"a\"] .p99").unwrap(), "–");

    // A killed instance turns unhealthy on the page once weir has marked it so.
    c.kill();
    weir.wait_log(&["instance `c` is unhealthy"], Duration::from_secs(10))
        .expect("weir marks the killed instance unhealthy");
    browser.wait_text(&health("c"), |t| t == "unhealthy");

    // Drain with the token typed in: the API and the page both show it.
    let input = browser
        .io
        .block_on(browser.client.find(Locator::Css("#token")))
        .unwrap();
    browser.io.block_on(input.send_keys(TOKEN)).unwrap();
    let drain = browser
        .io
        .block_on(
            browser
                .client
                .find(Locator::Css("tr[data-instance=\"a\"] button.drain")),
        )
        .unwrap();
    browser.io.block_on(drain.click()).unwrap();
    browser.wait_text(&health("a"), |t| t.starts_with("draining"));
    let app: Value = client()
        .get(format!("{origin}/upstreams/app"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(app["data"][0]["drain"], true, "{app}");
    browser.wait_text("#message", |t| t.contains("runtime only"));

    // Nothing came from anywhere but weir.
    let loaded = browser.run("return performance.getEntriesByType('resource').map(e => e.name)");
    for url in loaded.as_array().unwrap() {
        assert!(url.as_str().unwrap().starts_with(&origin), "{url}");
    }

    let png = browser.io.block_on(browser.client.screenshot()).unwrap();
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(artifacts.join("status-page.png"), png).unwrap();
    drop(load.finish());
}
