//! Property test of route matching: on random route tables and requests, the compiled
//! table picks what a plain linear reading of the documented precedence picks
//! (docs/configuration.md, "Routing").

use super::tests::route;
use super::*;
use proptest::prelude::*;

/// Host patterns as routes write them; several overlap.
const HOSTS: &[&str] = &[
    "api.example.com",
    "example.com",
    "a.eu.example.com",
    "*.example.com",
    "*.eu.example.com",
    "*.com",
    "*.other.test",
];

/// Path patterns as routes write them; several overlap.
const PATHS: &[&str] = &[
    "/",
    "/api",
    "/api/",
    "/api/users",
    "/apiv2",
    "/a",
    "exact:/",
    "exact:/api",
    "exact:/api/users",
    "regex:^/api/v[0-9]+",
    "regex:users",
    "regex:^/$",
    "regex:/a",
];

/// Hosts as requests send them: known names in any case, with a port or a trailing dot,
/// names no route has, IP literals, and none.
fn request_host() -> impl Strategy<Value = Option<String>> {
    let name = prop_oneof![
        prop::sample::select(HOSTS).prop_map(|h| h.replace('*', "x")),
        prop::sample::select(HOSTS).prop_map(|h| h.replace('*', "deep.x")),
        Just("com".to_string()),
        Just(".example.com".to_string()),
        "[a-z]{1,4}(\\.[a-z]{1,4}){0,2}",
        Just("127.0.0.1".to_string()),
        Just("[::1]".to_string()),
    ];
    let written = (
        name,
        any::<bool>(),
        any::<bool>(),
        prop::option::of(0u16..10000),
    )
        .prop_map(|(name, upper, dot, port)| {
            let name = if upper {
                name.to_ascii_uppercase()
            } else {
                name
            };
            let dot = if dot && !name.starts_with('[') {
                "."
            } else {
                ""
            };
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            format!("{name}{dot}{port}")
        });
    prop::option::of(written)
}

fn request_path() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(PATHS).prop_map(|p| {
            p.trim_start_matches("exact:")
                .trim_start_matches("regex:^")
                .replace("[0-9]+", "7")
                .replace('$', "")
        }),
        "(/(api|users|a|v[0-9]|apiv2|x)?){1,4}",
        "/[ -~]{0,10}",
    ]
}

fn routes() -> impl Strategy<Value = Vec<Route>> {
    let one = (
        prop::collection::vec(prop::sample::select(HOSTS), 0..3),
        prop::collection::vec(prop::sample::select(PATHS), 1..4),
    );
    prop::collection::vec(one, 1..8).prop_map(|rs| {
        rs.iter()
            .enumerate()
            .map(|(i, (hosts, paths))| route(&format!("r{i}"), hosts, paths))
            .collect()
    })
}

/// The host a route is matched against: without the port (`:digits` after the name or
/// `[literal]`) and a trailing dot, in lowercase.
fn plain_host(raw: &str) -> String {
    let lower = raw.to_ascii_lowercase();
    let name = match lower.rfind(':') {
        Some(colon)
            if !lower.ends_with(']') && lower[colon + 1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            &lower[..colon]
        }
        _ => lower.as_str(),
    };
    name.strip_suffix('.').unwrap_or(name).to_string()
}

/// The documented precedence, read off the route list each time: host tiers (the exact
/// host, then wildcards by longest suffix, then routes without hosts); in the first tier
/// with a matching path: an exact path, then regexes, then the longest prefix, ties going
/// to the earlier in the file.
fn reference(routes: &[Route], host: Option<&str>, path: &str) -> Option<RouteMatch> {
    let mut tiers: Vec<Option<HostPattern>> = Vec::new();
    if let Some(host) = host.map(plain_host) {
        let mut suffixes: Vec<&str> = routes
            .iter()
            .flat_map(|r| &r.hosts)
            .filter_map(|h| match h {
                HostPattern::Wildcard(s) => Some(s.as_str()),
                HostPattern::Exact(_) => None,
            })
            .filter(|s| host.strip_suffix(s).is_some_and(|label| !label.is_empty()))
            .collect();
        suffixes.sort_by_key(|s| std::cmp::Reverse(s.len()));
        suffixes.dedup();
        tiers.push(Some(HostPattern::Exact(host.clone())));
        tiers.extend(
            suffixes
                .into_iter()
                .map(|s| Some(HostPattern::Wildcard(s.to_string()))),
        );
    }
    // `None`: the routes without hosts.
    tiers.push(None);
    tiers.iter().find_map(|tier| {
        let in_tier = |r: &Route| match tier {
            Some(host) => r.hosts.contains(host),
            None => r.hosts.is_empty(),
        };
        let patterns: Vec<(usize, &PathPattern)> = routes
            .iter()
            .enumerate()
            .filter(|(_, r)| in_tier(r))
            .flat_map(|(i, r)| r.paths.iter().map(move |p| (i, p)))
            .collect();
        let exact = patterns.iter().find_map(|(i, p)| match p {
            PathPattern::Exact(e) if e == path => Some(RouteMatch {
                route: *i,
                matched_len: path.len(),
            }),
            _ => None,
        });
        let regex = || {
            patterns.iter().find_map(|(i, p)| match p {
                PathPattern::Regex(re) => re.find(path).map(|m| RouteMatch {
                    route: *i,
                    matched_len: if m.start() == 0 { m.end() } else { 0 },
                }),
                _ => None,
            })
        };
        let prefix = || {
            let mut best: Option<RouteMatch> = None;
            for (i, p) in &patterns {
                if let PathPattern::Prefix(p) = p {
                    let longer = best.is_none_or(|b| p.len() > b.matched_len);
                    if path.starts_with(p.as_str()) && longer {
                        best = Some(RouteMatch {
                            route: *i,
                            matched_len: p.len(),
                        });
                    }
                }
            }
            best
        };
        exact.or_else(regex).or_else(prefix)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_table_picks_what_the_documented_precedence_picks(
        routes in routes(),
        requests in prop::collection::vec((request_host(), request_path()), 1..8),
    ) {
        let table = RouteTable::new(&routes);
        for (host, path) in &requests {
            let found = table.find(host.as_deref(), path);
            let expected = reference(&routes, host.as_deref(), path);
            prop_assert_eq!(found, expected, "{:?} {:?} in {:#?}", host, path, routes);
        }
    }
}
