//! docs/architecture.md stays true: the table of which module uses which is the one the
//! code has (from every `crate::` path in src/, tests left out), and no module uses itself
//! back through others.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The top-level modules of src/ and the others each one names through `crate::`.
fn code_graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(&src).unwrap().map(Result::unwrap) {
        let path = entry.path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if name == "lib" || name == "main" {
            continue;
        }
        let mut texts = Vec::new();
        let mut pending = vec![path];
        while let Some(path) = pending.pop() {
            if path.is_dir() {
                pending.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                // Unit tests may reach anywhere.
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                texts.push(code.to_string());
            }
        }
        files.insert(name, texts);
    }
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    files
        .iter()
        .map(|(module, texts)| {
            let mut uses = BTreeSet::new();
            for text in texts {
                for (at, _) in text.match_indices("crate::") {
                    let rest = &text[at + "crate::".len()..];
                    let named: Vec<&str> = match rest.strip_prefix('{') {
                        Some(group) => group
                            .split('}')
                            .next()
                            .unwrap_or_default()
                            .split(',')
                            .map(|item| item.trim().split("::").next().unwrap_or_default())
                            .collect(),
                        None => vec![rest
                            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                            .next()
                            .unwrap_or_default()],
                    };
                    uses.extend(
                        named
                            .into_iter()
                            .filter(|n| modules.contains(*n) && n != module)
                            .map(String::from),
                    );
                }
            }
            (module.clone(), uses)
        })
        .collect()
}

/// The table in docs/architecture.md's "Dependencies" block: `module  uses a b c` lines.
fn documented_graph() -> Graph {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md");
    let text = std::fs::read_to_string(doc).unwrap();
    let block = text
        .split("<!-- dependencies -->")
        .nth(1)
        .expect("docs/architecture.md has a <!-- dependencies --> block");
    block
        .lines()
        .filter(|l| !l.starts_with("```") && !l.trim().is_empty())
        .take_while(|l| !l.starts_with("<!--"))
        .map(|line| {
            let mut words = line.split_whitespace();
            let module = words.next().unwrap().to_string();
            let uses = words
                .filter(|w| *w != "—" && *w != "uses")
                .map(String::from)
                .collect();
            (module, uses)
        })
        .collect()
}

#[test]
fn the_documented_dependencies_are_the_code_s() {
    let code = code_graph();
    let documented = documented_graph();
    for (module, uses) in &code {
        assert_eq!(
            documented.get(module),
            Some(uses),
            "docs/architecture.md: `{module}` uses {uses:?} in the code"
        );
    }
    let gone: Vec<&String> = documented
        .keys()
        .filter(|m| !code.contains_key(*m))
        .collect();
    assert!(
        gone.is_empty(),
        "docs/architecture.md lists modules src/ lacks: {gone:?}"
    );
}

#[test]
fn no_module_uses_itself_through_others() {
    let code = code_graph();
    for (module, uses) in &code {
        let mut seen = BTreeSet::new();
        let mut pending: Vec<&String> = uses.iter().collect();
        while let Some(next) = pending.pop() {
            assert_ne!(
                next, module,
                "`{module}` reaches itself through `crate::` paths"
            );
            if seen.insert(next) {
                pending.extend(code.get(next).into_iter().flatten());
            }
        }
    }
}
