//! Configuration files for tests: the YAML shapes many tests share, files in temporary
//! folders, and `weir --test` on them.

use super::instance::Instance;
use super::processes::weir_bin;
use super::weir::Weir;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// One listener on `{port}`; `/slow` goes to `slow`, everything else to `app`; `server` is
/// the inside of the `server: { }` mapping (the pid file is `weir.pid` beside the file).
pub fn slow_route(app: &Instance, slow: &Instance, server: &str) -> String {
    format!(
        "server: {{ pid_file: weir.pid, {server} }}\n\
         listeners:\n  - {{ name: web, address: \"127.0.0.1:{{port}}\" }}\n\
         routes:\n  - {{ name: slow, paths: [/slow], upstream: slow }}\n  \
         - {{ name: all, upstream: app }}\n\
         upstreams:\n  app:\n    targets: [{{ address: \"{}\", name: {} }}]\n  \
         slow:\n    targets: [{{ address: \"{}\", name: {} }}]\n",
        app.address(),
        app.id,
        slow.address(),
        slow.id
    )
}

/// A configuration with one listener on `{port}`, one catch-all route and one upstream.
pub fn single_upstream(balance: &str, targets: &[(&Instance, u32)], extra: &str) -> String {
    let mut yaml = format!(
        "listeners:\n  - {{ name: web, address: \"127.0.0.1:{{port}}\" }}\n\
         routes:\n  - {{ name: all, upstream: app }}\n\
         upstreams:\n  app:\n    balance: {balance}\n    targets:\n"
    );
    for (i, w) in targets {
        yaml.push_str(&format!(
            "      - {{ address: \"{}\", name: {}, weight: {w} }}\n",
            i.address(),
            i.id
        ));
    }
    yaml.push_str(extra);
    yaml
}

/// A gateway for policy tests: one listener on `{port}`, the admin listener on `{port2}`,
/// `consumers` (YAML list items, none if empty), `routes` (list items, see [`policy_route`])
/// and the upstream `app` of `instance`, then `extra` at the top level.
pub fn gateway(instance: &Instance, consumers: &str, routes: &str, extra: &str) -> String {
    let consumers = if consumers.is_empty() {
        String::new()
    } else {
        format!("consumers:\n{consumers}")
    };
    format!(
        "server: {{ pid_file: \"{{dir}}/weir.pid\" }}\n\
         {consumers}\
         listeners:\n  - {{ name: web, address: \"127.0.0.1:{{port}}\" }}\n\
         admin: {{ address: \"127.0.0.1:{{port2}}\" }}\n\
         routes:\n{routes}\
         upstreams:\n  app:\n    targets: [{{ address: \"{}\", name: {} }}]\n{extra}",
        instance.address(),
        instance.id
    )
}

/// A route named `name` on the path `/name` to `app`, with `policies`.
pub fn policy_route(name: &str, policies: &str) -> String {
    format!("  - {{ name: {name}, paths: [/{name}], upstream: app, policies: {policies} }}\n")
}
/// Runs `weir --config FILE --test`.
pub fn weir_test(path: &Path) -> Output {
    Command::new(weir_bin())
        .arg("--config")
        .arg(path)
        .arg("--test")
        .output()
        .unwrap()
}

/// Writes `yaml` to `weir.yaml` in a new temporary folder.
pub fn write_config(yaml: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weir.yaml");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(yaml.as_bytes()).unwrap();
    (dir, path)
}

/// A weir whose `routes` are `(route name, hosts, paths, strip_prefix)` (hosts and paths as
/// YAML lists), each to a demo instance named after it; `top` goes before `routes:` (a
/// listener with `listener` added to its mapping, access log settings…).
pub struct RouteTable {
    pub weir: Weir,
    _instances: Vec<Instance>,
}

impl RouteTable {
    pub fn start(listener: &str, top: &str, routes: &[(&str, &str, &str, bool)]) -> Self {
        let mut yaml = format!(
            "listeners:\n  - {{ name: web, address: \"127.0.0.1:{{port}}\"{listener} }}\n{top}routes:\n"
        );
        let mut upstreams = String::from("upstreams:\n");
        let mut instances = Vec::new();
        for (name, hosts, paths, strip) in routes {
            let instance = Instance::start(name);
            yaml.push_str(&format!(
                "  - {{ name: {name}, hosts: {hosts}, paths: {paths}, upstream: {name}, strip_prefix: {strip} }}\n"
            ));
            upstreams.push_str(&format!(
                "  {name}:\n    targets: [{{ address: \"{}\", name: {name} }}]\n",
                instance.address()
            ));
            instances.push(instance);
        }
        yaml.push_str(&upstreams);
        Self {
            weir: Weir::start(&yaml),
            _instances: instances,
        }
    }
}
