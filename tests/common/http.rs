//! HTTP clients and what a response says about who served it.

use super::weir::Weir;
use std::time::Duration;

/// A keep-alive HTTP client.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The instances that serve `n` sequential GETs of `/`, each of which must succeed.
pub fn serving(weir: &Weir, n: usize) -> Vec<String> {
    let client = client();
    (0..n)
        .map(|_| {
            let r = client.get(weir.url("/")).send().unwrap();
            assert_eq!(r.status(), 200);
            served_by(&r)
        })
        .collect()
}

/// The instance that served a response, from the instance header.
pub fn served_by(resp: &reqwest::blocking::Response) -> String {
    resp.headers()
        .get("x-upstream-instance")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}
