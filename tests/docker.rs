//! docker/: the image, the compose file (weir, three demo instances, Prometheus, Grafana),
//! Prometheus's scrape configuration and the Grafana dashboard. No Docker engine runs here,
//! so the files are checked for what would break them: they parse, everything they mount
//! or copy exists, they agree on names and ports, weir accepts its file, and every metric
//! the dashboard queries is in weir's /metrics.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

mod common;

use common::*;
use serde_yaml::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn docker(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docker")
        .join(path)
}

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(docker(path)).unwrap();
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("docker/{path}: {e}"))
}

fn dashboard() -> serde_json::Value {
    let text = std::fs::read_to_string(docker("grafana/dashboards/weir.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn the_compose_file_mounts_what_exists_and_prometheus_scrapes_weirs_admin_listener() {
    let mut compose = yaml("docker-compose.yml");
    compose.apply_merge().unwrap();
    let services = compose["services"].as_mapping().unwrap();
    let names: BTreeSet<&str> = services.keys().map(|k| k.as_str().unwrap()).collect();
    let expected = [
        "weir",
        "instance-1",
        "instance-2",
        "instance-3",
        "prometheus",
        "grafana",
    ];
    assert_eq!(names, expected.into_iter().collect());
    for (name, service) in services {
        for volume in service["volumes"].as_sequence().into_iter().flatten() {
            let source = volume.as_str().unwrap().split(':').next().unwrap();
            assert!(docker(source).exists(), "{name:?} mounts {source}, missing");
        }
        for secret in service["secrets"].as_sequence().into_iter().flatten() {
            assert!(
                !compose["secrets"][secret].is_null(),
                "{name:?}: {secret:?}"
            );
        }
        if let Some(build) = service.get("build") {
            let context = docker(build["context"].as_str().unwrap());
            let file = context.join(build["dockerfile"].as_str().unwrap());
            assert!(file.exists(), "{name:?} builds {}", file.display());
        }
    }
    // The demo instances are weir's own `instance` command, on the port weir's file names.
    let weir_file = std::fs::read_to_string(docker("weir.yaml")).unwrap();
    for i in 1..=3 {
        let command = &services[format!("instance-{i}").as_str()]["command"];
        assert_eq!(command[0], "instance");
        assert!(weir_file.contains(&format!("instance-{i}:9001")));
    }

    // Prometheus scrapes weir's admin address, with the token the compose file gives it.
    let prometheus = yaml("prometheus.yml");
    let job = &prometheus["scrape_configs"][0];
    assert_eq!(job["metrics_path"], "/metrics");
    assert_eq!(job["static_configs"][0]["targets"][0], "weir:9901");
    assert!(weir_file.contains("address: 0.0.0.0:9901"));
    let credentials = job["authorization"]["credentials_file"].as_str().unwrap();
    assert_eq!(credentials, "/run/secrets/weir_admin_token");

    // Grafana's provisioned data source is the one the dashboard's panels name.
    let sources = yaml("grafana/provisioning/datasources/prometheus.yml");
    let uid = &sources["datasources"][0]["uid"];
    for panel in dashboard()["panels"].as_array().unwrap() {
        assert_eq!(panel["datasource"]["uid"].as_str(), uid.as_str(), "{panel}");
    }
}

#[test]
fn weir_accepts_the_compose_configuration() {
    let out = std::process::Command::new(weir_bin())
        .args(["--test", "--config"])
        .arg(docker("weir.yaml"))
        .env("WEIR_ADMIN_TOKEN", "compose-test")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn the_image_builds_in_one_stage_and_runs_the_binary_from_a_slim_one() {
    let dockerfile = std::fs::read_to_string(docker("Dockerfile")).unwrap();
    let stages: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(stages.len(), 2, "{stages:?}");
    assert!(stages[0].ends_with(" AS build") && stages[1].contains("-slim"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for line in dockerfile.lines().filter(|l| l.starts_with("COPY ")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let sources = &words[1..words.len() - 1];
        if sources[0] == "--from=build" {
            assert_eq!(sources[1], "/src/target/release/weir");
            continue;
        }
        for source in sources {
            assert!(root.join(source).exists(), "{line}: {source} is missing");
        }
    }
    let ignored = std::fs::read_to_string(root.join(".dockerignore")).unwrap();
    assert!(
        ignored.lines().any(|l| l == "target"),
        "the build context skips target/"
    );
}

#[test]
fn every_metric_the_dashboard_queries_is_in_weirs_metrics() {
    let a = Instance::start("a");
    let admin = "admin: { address: \"127.0.0.1:{port2}\" }\n";
    let weir = Weir::start(&single_upstream("round_robin", &[(&a, 1)], admin));
    // One request, so that every histogram has its series.
    assert_eq!(serving(&weir, 1), ["a"]);
    let url = format!("http://127.0.0.1:{}/metrics", weir.port2);
    let text = client().get(url).send().unwrap().text().unwrap();
    let exposed: BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();

    let metric = regex::Regex::new(r"\b(?:weir|process)_[a-z_]+").unwrap();
    let mut queried = BTreeSet::new();
    for panel in dashboard()["panels"].as_array().unwrap() {
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{} queries nothing", panel["title"]);
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            queried.extend(metric.find_iter(expr).map(|m| m.as_str().to_string()));
        }
    }
    assert!(queried.len() >= 8, "{queried:?}");
    for name in &queried {
        assert!(
            exposed.contains(name.as_str()),
            "{name} is not in /metrics:\n{text}"
        );
    }
}
