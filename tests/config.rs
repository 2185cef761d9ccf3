//! `weir --config FILE --test`: every shipped file is valid, and each file under
//! conf/invalid/ fails with exactly the `# expect:` lines it carries.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

mod common;

use common::*;
use std::path::{Path, PathBuf};

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML files in {}", dir.display());
    files
}

#[test]
fn every_shipped_configuration_is_valid() {
    // demo.yaml and weir.yaml serve HTTPS with the development certificate; demo.yaml takes
    // its admin token from the variable `weir demo` sets.
    dev_certs();
    for file in yaml_files("conf")
        .into_iter()
        .chain(yaml_files("conf/examples"))
    {
        let out = std::process::Command::new(weir_bin())
            .arg("--config")
            .arg(&file)
            .arg("--test")
            .env("WEIR_ADMIN_TOKEN", "shipped-configuration-test")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}:\n{}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("configuration is valid"), "{stdout}");
    }
}

#[test]
fn each_invalid_file_prints_exactly_its_expected_errors() {
    for file in yaml_files("conf/invalid") {
        let text = std::fs::read_to_string(&file).unwrap();
        let expected: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            // `{dir}` stands for the folder of the file, wherever the repository is.
            .map(|l| {
                let dir = file.parent().unwrap().display().to_string();
                format!("{}:{}", file.display(), l.replace("{dir}", &dir))
            })
            .collect();
        assert!(
            !expected.is_empty(),
            "{} has no `# expect:` lines",
            file.display()
        );
        let out = weir_test(&file);
        assert_eq!(out.status.code(), Some(1), "{}", file.display());
        let stderr = String::from_utf8_lossy(&out.stderr);
        let printed: Vec<&str> = stderr.lines().collect();
        assert_eq!(printed, expected, "{}", file.display());
    }
}

#[test]
fn environment_variables_fill_values() {
    let (_dir, path) = write_config(
        "server:\n  threads: ${WEIR_IT_THREADS}\n\
         listeners:\n  - { name: web, address: \"127.0.0.1:${WEIR_IT_PORT:-8080}\" }\n\
         routes: [{ name: all, upstream: app }]\n\
         upstreams:\n  app:\n    targets: [{ address: 127.0.0.1:9001 }]\n",
    );
    succeed(
        std::process::Command::new(weir_bin())
            .args(["--test", "--config"])
            .arg(&path)
            .env("WEIR_IT_THREADS", "3"),
    );
    let out = weir_test(&path);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("environment variable `WEIR_IT_THREADS` is not set"));
}

#[test]
fn a_missing_file_is_one_clear_error() {
    let out = weir_test(Path::new("/nonexistent/weir.yaml"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "/nonexistent/weir.yaml:1:1: cannot read the configuration file: No such file or directory (os error 2)"
    );
}

#[test]
fn every_error_of_a_file_is_reported_in_one_run() {
    // A type error (weight -1), a duration without a unit and a misspelt upstream: serde
    // alone stops at the first, weir reports all three, each at its line and column.
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/invalid/every-error.yaml");
    let out = weir_test(&file);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(
        lines[0]
            .ends_with("6:28: routes[0].upstream: no upstream is named `ap`; did you mean `app`?"),
        "{stderr}"
    );
    assert!(lines[1].ends_with("10:44: upstreams.app.targets[0].weight: expected a whole number from 0 to 1000, found -1"), "{stderr}");
    assert!(lines[2].ends_with("11:46: upstreams.app.health_check.interval: `10` is not a duration; write a number and a unit, e.g. 500ms, 10s, 2m"), "{stderr}");
}

#[test]
fn no_error_names_a_rust_type() {
    let rust_words = [
        "u8",
        "u16",
        "u32",
        "u64",
        "usize",
        "i32",
        "i64",
        "f64",
        "map,",
        "sequence",
        "struct",
        "Raw",
        "Value",
        "unit value",
        "invalid type",
        "invalid value",
    ];
    for file in yaml_files("conf/invalid") {
        let out = weir_test(&file);
        let stderr = String::from_utf8_lossy(&out.stderr);
        for line in stderr.lines() {
            let message = line.splitn(4, ':').nth(3).unwrap_or(line);
            for word in rust_words {
                let named = message
                    .split(|c: char| !(c.is_alphanumeric() || c == ',' || c == ' '))
                    .any(|w| {
                        w.split(' ').any(|t| t == word) || (word.contains(' ') && w.contains(word))
                    });
                assert!(!named, "{}: `{word}` in {line}", file.display());
            }
        }
    }
}

#[test]
fn cors_with_every_origin_and_credentials_is_one_error_at_its_line() {
    // Browsers refuse `Access-Control-Allow-Origin: *` on a credentialed answer, so the pair
    // is refused where it is written rather than answered with the origin echoed.
    let (_dir, path) = write_config(
        "listeners:\n  - { name: web, address: \"127.0.0.1:8080\" }\n\
         routes:\n  - name: all\n    upstream: app\n    policies:\n      \
         cors: { origins: [\"*\"], credentials: true }\n\
         upstreams:\n  app:\n    targets: [{ address: 127.0.0.1:9001 }]\n",
    );
    let out = weir_test(&path);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].ends_with(
            "7:24: routes[0].policies.cors.origins: `*` cannot be used with `credentials: true`: \
             browsers refuse credentialed answers for every origin; list the origins that may \
             send credentials"
        ),
        "{stderr}"
    );
}

#[test]
fn a_compression_level_must_suit_every_listed_algorithm() {
    let check = |compress: &str| {
        let (_dir, path) = write_config(&format!(
            "listeners:\n  - {{ name: web, address: 127.0.0.1:8080, policies: {{ compress: {compress} }} }}\n\
             routes:\n  - {{ name: all, upstream: app }}\n\
             upstreams:\n  app:\n    targets: [{{ address: 127.0.0.1:9001 }}]\n"
        ));
        let out = weir_test(&path);
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .map(|l| l.split_once(": ").map_or(l, |(_, m)| m).to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        check("{ algorithms: [zstd, br], level: 11 }"),
        Vec::<String>::new()
    );
    assert_eq!(
        check("{ level: 19, algorithms: [zstd] }"),
        Vec::<String>::new()
    );
    assert_eq!(
        check("{ level: 10 }"),
        ["listeners[0].policies.compress.level: level 10 is too high: gzip takes 1 to 9; lower it, or leave it out for each algorithm's default"]
    );
    assert_eq!(
        check("{ algorithms: [zstd], level: 20 }"),
        ["listeners[0].policies.compress.level: level 20 is too high: zstd takes 1 to 19; lower it, or leave it out for each algorithm's default"]
    );
    assert_eq!(
        check("{ level: 0 }"),
        ["listeners[0].policies.compress.level: must be 1 or more; to send responses as they are, remove `compress`"]
    );
    assert_eq!(
        check("{ algorithms: [gzip, deflate, gzip] }"),
        [
            "listeners[0].policies.compress.algorithms[1]: unknown algorithm `deflate`; expected one of: zstd, br, gzip",
            "listeners[0].policies.compress.algorithms[2]: `gzip` is listed twice",
        ]
    );
    let unknown = check("{ min_length: 1k }");
    assert_eq!(unknown.len(), 1, "{unknown:?}");
    assert!(
        unknown[0].contains("`min_length`; did you mean `min_size`?"),
        "{unknown:?}"
    );
}
