//! Property tests of the loader: any text, any YAML shaped like a weir configuration (its
//! real keys, with values of every kind where they go and where they do not), and the
//! shipped configurations with keys added and parts replaced at random, all either load or
//! fail with errors that each point at a line and column of the file. None may panic.

use super::parse;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_yaml::{Mapping, Value};
use std::path::Path;

/// The name errors are located in.
const FILE: &str = "props/weir.yaml";

/// What the schema expects under a key, to generate values the validator reads deeply.
#[derive(Debug)]
enum Shape {
    /// A string, number, boolean or null.
    Scalar,
    /// A mapping with these keys.
    Map(&'static [(&'static str, Shape)]),
    /// A list of one shape.
    List(&'static Shape),
    /// A mapping from names to one shape (`upstreams:`, header edits).
    Named(&'static Shape),
}

use Shape::{List, Map, Named, Scalar};

const DURATIONS: Shape = Map(&[
    ("connect", Scalar),
    ("read", Scalar),
    ("write", Scalar),
    ("total", Scalar),
    ("idle", Scalar),
]);
const EDITS: Shape = Map(&[
    ("set", Named(&Scalar)),
    ("add", Named(&Scalar)),
    ("remove", List(&Scalar)),
]);
const HEADER_RULES: Shape = Map(&[("request", EDITS), ("response", EDITS)]);
const POLICIES: Shape = Map(&[
    (
        "ip",
        Map(&[("allow", List(&Scalar)), ("deny", List(&Scalar))]),
    ),
    (
        "auth",
        Map(&[
            ("methods", List(&Scalar)),
            ("key_names", List(&Scalar)),
            ("key_in_query", Scalar),
            ("groups", List(&Scalar)),
            ("consumers", List(&Scalar)),
            ("hide_credentials", Scalar),
            ("anonymous", Scalar),
        ]),
    ),
    ("max_body_size", Scalar),
    (
        "cors",
        Map(&[
            ("origins", List(&Scalar)),
            ("methods", List(&Scalar)),
            ("headers", List(&Scalar)),
            ("expose_headers", List(&Scalar)),
            ("credentials", Scalar),
            ("max_age", Scalar),
        ]),
    ),
    (
        "compress",
        Map(&[
            ("algorithms", List(&Scalar)),
            ("min_size", Scalar),
            ("types", List(&Scalar)),
            ("level", Scalar),
        ]),
    ),
    (
        "rate_limit",
        List(&Map(&[
            ("limit", Scalar),
            ("per", Scalar),
            ("by", Map(&[("header", Scalar)])),
            ("burst", Scalar),
            ("store", Scalar),
            ("headers", Scalar),
        ])),
    ),
]);
const LIMITS: Shape = Map(&[
    ("max_header_size", Scalar),
    ("max_header_line", Scalar),
    ("max_headers", Scalar),
    ("max_uri_length", Scalar),
    ("header_timeout", Scalar),
    ("keepalive_timeout", Scalar),
    ("max_requests_per_connection", Scalar),
    ("merge_slashes", Scalar),
    ("allow_encoded_slashes", Scalar),
]);
const LISTENER: Shape = Map(&[
    ("name", Scalar),
    ("address", Scalar),
    ("protocol", Scalar),
    ("redirect_https", Scalar),
    ("redirect_except", List(&Scalar)),
    ("policies", POLICIES),
    (
        "tls",
        Map(&[
            (
                "certificates",
                List(&Map(&[
                    ("cert", Scalar),
                    ("key", Scalar),
                    ("names", List(&Scalar)),
                    ("default", Scalar),
                ])),
            ),
            ("min_version", Scalar),
        ]),
    ),
    ("http2", Scalar),
    (
        "hsts",
        Map(&[
            ("max_age", Scalar),
            ("include_subdomains", Scalar),
            ("preload", Scalar),
        ]),
    ),
    ("upstream", Scalar),
    ("max_connections", Scalar),
    ("on_limit", Scalar),
    ("queue_timeout", Scalar),
    ("idle_timeout", Scalar),
    ("send_proxy_protocol", Scalar),
    ("accept_proxy_protocol", Scalar),
    ("limits", LIMITS),
]);
const ROUTE: Shape = Map(&[
    ("name", Scalar),
    ("hosts", List(&Scalar)),
    ("paths", List(&Scalar)),
    ("upstream", Scalar),
    ("strip_prefix", Scalar),
    ("headers", HEADER_RULES),
    ("access_log", Scalar),
    ("policies", POLICIES),
    ("timeouts", DURATIONS),
]);
const UPSTREAM: Shape = Map(&[
    (
        "balance",
        Map(&[("hash", Map(&[("header", Scalar), ("cookie", Scalar)]))]),
    ),
    (
        "targets",
        List(&Map(&[
            ("address", Scalar),
            ("target", Scalar),
            ("weight", Scalar),
            ("name", Scalar),
            ("backup", Scalar),
            ("drain", Scalar),
        ])),
    ),
    ("headers", HEADER_RULES),
    ("timeouts", DURATIONS),
    (
        "health_check",
        Map(&[
            ("type", Scalar),
            ("path", Scalar),
            ("interval", Scalar),
            ("timeout", Scalar),
            ("healthy_successes", Scalar),
            ("unhealthy_failures", Scalar),
            ("expected_status", List(&Scalar)),
            ("host", Scalar),
            ("headers", Named(&Scalar)),
            ("initially", Scalar),
        ]),
    ),
    (
        "passive",
        Map(&[
            ("max_fails", Scalar),
            ("fail_timeout", Scalar),
            ("max_ejection_time", Scalar),
            ("max_ejection_percent", Scalar),
            ("fail_statuses", List(&Scalar)),
        ]),
    ),
    ("retries", Scalar),
    ("slow_start", Scalar),
    ("panic_mode", Scalar),
    ("discovery", Scalar),
    ("resolve_every", Scalar),
    (
        "tls",
        Map(&[("sni", Scalar), ("verify", Scalar), ("ca", Scalar)]),
    ),
    ("http2", Scalar),
]);
const CONFIG: Shape = Map(&[
    (
        "server",
        Map(&[
            ("threads", Scalar),
            ("pid_file", Scalar),
            ("upgrade_sock", Scalar),
            ("error_log", Scalar),
            ("user", Scalar),
            ("group", Scalar),
            ("grace_period", Scalar),
            ("graceful_shutdown_timeout", Scalar),
            ("daemon", Scalar),
            ("log_level", Scalar),
        ]),
    ),
    ("listeners", List(&LISTENER)),
    ("routes", List(&ROUTE)),
    ("upstreams", Named(&UPSTREAM)),
    (
        "headers",
        Map(&[
            ("request_id", Scalar),
            ("instance_header", Scalar),
            ("trusted_proxies", List(&Scalar)),
        ]),
    ),
    ("resolver", List(&Scalar)),
    (
        "admin",
        Map(&[
            ("address", Scalar),
            ("token", Scalar),
            ("persist", Scalar),
            ("allow", List(&Scalar)),
        ]),
    ),
    (
        "access_log",
        Map(&[("format", Scalar), ("path", Scalar), ("queue", Scalar)]),
    ),
    (
        "consumers",
        List(&Map(&[
            ("name", Scalar),
            ("groups", List(&Scalar)),
            ("keys", List(&Map(&[("id", Scalar), ("sha256", Scalar)]))),
            ("keys_file", Scalar),
            (
                "basic",
                Map(&[
                    ("user", Scalar),
                    ("password", Scalar),
                    ("htpasswd_file", Scalar),
                ]),
            ),
        ])),
    ),
    (
        "jwt",
        List(&Map(&[
            ("name", Scalar),
            ("issuer", Scalar),
            ("audiences", List(&Scalar)),
            ("algorithms", List(&Scalar)),
            ("secret", Scalar),
            ("jwks", Scalar),
            ("refresh", Scalar),
            ("refresh_on_miss", Scalar),
            ("leeway", Scalar),
            ("consumer_claim", Scalar),
        ])),
    ),
    (
        "rate_limits",
        Map(&[
            ("local", Map(&[("max_keys", Scalar)])),
            (
                "redis",
                Map(&[("url", Scalar), ("timeout", Scalar), ("pool_size", Scalar)]),
            ),
            ("on_store_error", Scalar),
        ]),
    ),
    ("limits", LIMITS),
]);

/// Keys without which their mapping is refused: generated nearly always, so that the
/// rest of the mapping is read rather than set aside.
const REQUIRED: &[&str] = &[
    "listeners",
    "name",
    "address",
    "upstream",
    "targets",
    "issuer",
    "url",
    "limit",
    "per",
    "by",
    "cert",
    "key",
    "id",
    "sha256",
    "user",
    "password",
];

/// Scalars as a weir file writes them, right and wrong: names the file itself uses,
/// addresses, durations, sizes, patterns, enum values, variables, and edge numbers.
const WORDS: &[&str] = &[
    "app",
    "api",
    "web",
    "db",
    "admin",
    "",
    " ",
    "0",
    "1",
    "-1",
    "65535",
    "65536",
    "1s",
    "0s",
    "500ms",
    "10m",
    "1h",
    "-5s",
    "1.5s",
    "99999999999d",
    "10k",
    "1m",
    "1g",
    "64x",
    "127.0.0.1:8080",
    "127.0.0.1:0",
    "0.0.0.0:80",
    "[::1]:443",
    "localhost:80",
    "host:99999",
    "unix:/tmp/x.sock",
    "127.0.0.1",
    "10.0.0.0/8",
    "::/0",
    "300.1.1.1/33",
    "http",
    "https",
    "tcp",
    "tls",
    "udp",
    "v1",
    "v2",
    "refuse",
    "queue",
    "round_robin",
    "ip_hash",
    "least_conn",
    "p2c",
    "random",
    "weighted_round_robin",
    "dns",
    "json",
    "combined",
    "info",
    "trace",
    "tls1.2",
    "tls1.3",
    "1.2",
    "/",
    "/api",
    "/api/users",
    "exact:/health",
    "regex:^/v[0-9]+/",
    "regex:(",
    "regex:",
    "exact:",
    "api.example.com",
    "*.example.com",
    "*.",
    "*",
    "x-request-id",
    "X-Bad Header",
    "bad\nvalue",
    "consumer",
    "ip",
    "route",
    "local",
    "redis",
    "none",
    "draft",
    "open",
    "closed",
    "key",
    "basic",
    "jwt",
    "gzip",
    "br",
    "zstd",
    "text/html",
    "HS256",
    "RS256",
    "https://app.example.com",
    "redis://127.0.0.1:1",
    "${WEIR_PROPTEST_UNSET}",
    "${WEIR_PROPTEST_UNSET:-3s}",
    "${HOME}",
    "$${literal}",
    "${",
    "}",
    "/nonexistent/file.pem",
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "$2y$05$abcdefghijklmnopqrstuv",
    "{SHA}x",
    "true",
    "null",
    "~",
    "é",
    "\u{0}",
];

/// How lines may end, including the breaks YAML 1.1 readers also count (NEL, LS, PS),
/// and none.
const LINE_ENDS: &[&str] = &["\n", "\r\n", "\r", "\u{85}", "\u{2028}", "\u{2029}", ""];

/// Any scalar: one of [`WORDS`], a number at the edges of its types, a boolean, null, or
/// a short arbitrary string.
fn scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        8 => prop::sample::select(WORDS).prop_map(|w| Value::String(w.to_string())),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => Just(Value::Null),
        1 => prop::sample::select(&[0, 1, 2, 100, 255, 256, 65535, 65536, 4_294_967_296][..])
            .prop_map(|n: u64| Value::Number(n.into())),
        1 => any::<i64>().prop_map(|n| Value::Number(n.into())),
        1 => any::<u64>().prop_map(|n| Value::Number(n.into())),
        1 => any::<f64>().prop_map(|n| Value::Number(n.into())),
        1 => ".{0,12}".prop_map(Value::String),
    ]
    .boxed()
}

/// Any YAML value up to a small depth, with keys taken from the configuration's own.
fn any_value() -> BoxedStrategy<Value> {
    scalar()
        .prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Sequence),
                prop::collection::vec((any_key(), inner), 0..4).prop_map(|entries| {
                    Value::Mapping(entries.into_iter().collect::<Mapping>())
                }),
            ]
        })
        .boxed()
}

/// Every key the configuration knows, anywhere in it.
fn all_keys(shape: &'static Shape, out: &mut Vec<&'static str>) {
    match shape {
        Scalar => {}
        Map(entries) => {
            for (key, inner) in *entries {
                out.push(key);
                all_keys(inner, out);
            }
        }
        List(inner) | Named(inner) => all_keys(inner, out),
    }
}

/// A mapping key: one the configuration knows, a misspelt one, or any scalar.
fn any_key() -> BoxedStrategy<Value> {
    let mut keys = Vec::new();
    all_keys(&CONFIG, &mut keys);
    keys.sort_unstable();
    keys.dedup();
    prop_oneof![
        6 => prop::sample::select(keys).prop_map(|k| Value::String(k.to_string())),
        1 => "[a-z_]{1,10}".prop_map(Value::String),
        1 => scalar(),
    ]
    .boxed()
}

/// A value of `shape` most of the time, and anything at all some of the time, so that
/// both the validator's checks and the decoder's type errors are reached.
fn shaped(shape: &'static Shape) -> BoxedStrategy<Value> {
    let fitting = match shape {
        Scalar => return prop_oneof![6 => scalar(), 1 => any_value()].boxed(),
        Map(entries) => {
            let fields: Vec<_> = entries
                .iter()
                .map(|(key, inner)| {
                    let likely = if REQUIRED.contains(key) { 0.9 } else { 0.3 };
                    prop::option::weighted(likely, shaped(inner))
                        .prop_map(|v| v.map(|v| (Value::String(key.to_string()), v)))
                })
                .collect();
            let stray = prop::option::weighted(0.1, (any_key(), any_value()));
            (fields, stray)
                .prop_map(|(fields, stray)| {
                    Value::Mapping(fields.into_iter().flatten().chain(stray).collect())
                })
                .boxed()
        }
        List(inner) => prop::collection::vec(shaped(inner), 0..4)
            .prop_map(Value::Sequence)
            .boxed(),
        Named(inner) => prop::collection::vec((scalar(), shaped(inner)), 0..3)
            .prop_map(|entries| Value::Mapping(entries.into_iter().collect()))
            .boxed(),
    };
    prop_oneof![8 => fitting, 1 => any_value()].boxed()
}

/// The configurations shipped in `conf/`, each a YAML tree a mutation starts from.
fn shipped() -> Vec<Value> {
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf");
    let examples = std::fs::read_dir(conf.join("examples"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path());
    [conf.join("weir.yaml"), conf.join("demo.yaml")]
        .into_iter()
        .chain(examples)
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter_map(|text| serde_yaml::from_str(&text).ok())
        .collect()
}

/// How many nodes `value` has, itself included.
fn count(value: &Value) -> usize {
    1 + match value {
        Value::Sequence(items) => items.iter().map(count).sum(),
        Value::Mapping(map) => map.values().map(count).sum(),
        _ => 0,
    }
}

/// The `n`th node of `value` in depth-first order, if it has that many.
fn nth(value: &mut Value, n: usize) -> Option<&mut Value> {
    let Some(mut n) = n.checked_sub(1) else {
        return Some(value);
    };
    let children: Vec<&mut Value> = match value {
        Value::Sequence(items) => items.iter_mut().collect(),
        Value::Mapping(map) => map.values_mut().collect(),
        _ => Vec::new(),
    };
    for child in children {
        let size = count(child);
        if n < size {
            return nth(child, n);
        }
        n -= size;
    }
    None
}

/// Loads `text`; every error must be located inside the file.
fn check(text: &str) -> Result<(), TestCaseError> {
    let Err(errors) = parse(Path::new(FILE), text) else {
        return Ok(());
    };
    prop_assert!(!errors.0.is_empty(), "a failed load with no error");
    let lines = super::source::lines(text);
    for e in &errors.0 {
        prop_assert_eq!(e.file.as_path(), Path::new(FILE), "{}", e);
        prop_assert!(!e.message.is_empty(), "{}", e);
        let line = e.line.checked_sub(1).and_then(|i| lines.get(i));
        let Some(line) = line else {
            return Err(TestCaseError::fail(format!(
                "`{e}` names line {} of a file of {} lines:\n{text}",
                e.line,
                lines.len()
            )));
        };
        prop_assert!(
            (1..=line.chars().count() + 1).contains(&e.column),
            "`{}` names column {} of a line of {} characters:\n{}",
            e,
            e.column,
            line.chars().count(),
            text
        );
        prop_assert!(
            e.to_string()
                .starts_with(&format!("{FILE}:{}:{}: ", e.line, e.column)),
            "{}",
            e
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_text_loads_or_fails_with_located_errors(text in any::<String>()) {
        check(&text)?;
    }

    #[test]
    fn yaml_like_text_loads_or_fails_with_located_errors(
        lines in prop::collection::vec(
            (
                "[ \t-]{0,4}",
                prop::sample::select(WORDS),
                "[:\\[\\]{}, #&*!|>'\"-]{0,3}",
                prop::sample::select(WORDS),
                prop::sample::select(LINE_ENDS),
            ),
            0..12,
        )
    ) {
        let text: String = lines
            .iter()
            .map(|(indent, key, punct, value, end)| format!("{indent}{key}{punct} {value}{end}"))
            .collect();
        check(&text)?;
    }

    #[test]
    fn configuration_shaped_yaml_loads_or_fails_with_located_errors(value in shaped(&CONFIG)) {
        let text = serde_yaml::to_string(&value).map_err(|e| TestCaseError::reject(e.to_string()))?;
        check(&text)?;
    }

    #[test]
    fn shipped_configurations_changed_load_or_fail_with_located_errors(
        config in prop::sample::select(shipped()),
        changes in prop::collection::vec(
            (any::<Index>(), prop::option::of(any_key()), any_value()),
            1..4,
        ),
    ) {
        let mut value = config;
        for (at, key, new) in changes {
            let n = at.index(count(&value));
            // A key added to a mapping, or the node replaced.
            match (nth(&mut value, n), key) {
                (Some(Value::Mapping(map)), Some(key)) => {
                    map.insert(key, new);
                }
                (Some(node), _) => *node = new,
                (None, _) => {}
            }
        }
        let text = serde_yaml::to_string(&value).map_err(|e| TestCaseError::reject(e.to_string()))?;
        check(&text)?;
    }
}
