//! weir's /metrics as a test reads it: a scrape, and one sample's value.

use super::http::client;
use std::collections::HashMap;

/// weir's /metrics, from the admin listener on `port`.
pub fn scrape(port: u16) -> String {
    let url = format!("http://127.0.0.1:{port}/metrics");
    let response = client().get(url).send().unwrap();
    let status = response.status();
    let text = response.text().unwrap();
    assert_eq!(status, 200, "/metrics on port {port}: {text}");
    text
}

/// The value of the first `name` sample in `text` whose labels include `labels`.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let (label_text, value) = match rest.strip_prefix('{') {
            Some(labelled) => labelled.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        let found: HashMap<&str, &str> = label_text
            .split(',')
            .filter_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                Some((k, v.trim_matches('"')))
            })
            .collect();
        let matches = labels.iter().all(|(k, v)| found.get(k) == Some(v));
        matches.then(|| value.parse().ok()).flatten()
    })
}
