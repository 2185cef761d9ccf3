//! docs/architecture.md stays true: the table of which module uses which is the one the
//! code has (from every `crate::` path in src/, tests left out), and no module uses itself
//! back through others; and the layer picture draws each module once, above every module it
//! uses.

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
                texts.push(without_test_modules(&text));
            }
        }
        // `x.rs` and its folder `x/` are one module.
        files.entry(name).or_default().extend(texts);
    }
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    files
        .iter()
        .map(|(module, texts)| {
            let mut uses = BTreeSet::new();
            for text in texts {
                for (at, _) in text.match_indices("crate::") {
                    let rest = &text[at + "crate::".len()..];
                    let named = match rest.strip_prefix('{') {
                        Some(group) => group_heads(group),
                        None => vec![identifier(rest)],
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

/// `text` without its unit test modules (`#[cfg(test)] mod … { … }`), which may reach
/// anywhere.
fn without_test_modules(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        let after = &rest[at + "#[cfg(test)]".len()..];
        out.push_str(&rest[..at]);
        if !after.trim_start().starts_with("mod ") {
            out.push_str("#[cfg(test)]");
            rest = after;
            continue;
        }
        let Some(open) = after.find('{') else { break };
        let mut depth = 0;
        let mut end = after.len();
        for (i, c) in after[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = open + i + 1;
                break;
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The identifier `text` starts with.
fn identifier(text: &str) -> &str {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .next()
        .unwrap_or_default()
}

/// The first segment of each item of a `use crate::{…}` group, `group` starting after its
/// `{`: `a::{x, y}, b}` names `a` and `b`.
fn group_heads(group: &str) -> Vec<&str> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut item_start = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => item_start = true,
            c if item_start && !c.is_whitespace() => {
                heads.push(identifier(&group[i..]));
                item_start = false;
            }
            _ => {}
        }
    }
    heads
}

/// docs/architecture.md after `marker`, which it must hold.
fn architecture_after(marker: &str) -> String {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md");
    let text = std::fs::read_to_string(doc).unwrap();
    let (_, after) = text
        .split_once(marker)
        .unwrap_or_else(|| panic!("docs/architecture.md has no `{marker}`"));
    after.to_string()
}

/// The table in docs/architecture.md's "Dependencies" block: `module  uses a b c` lines.
fn documented_graph() -> Graph {
    architecture_after("<!-- dependencies -->")
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

/// The rows of docs/architecture.md's "Layers" picture, top first: the words of each
/// unindented line of its first code block (descriptions are indented), `main.rs` left out.
fn documented_layers() -> Vec<Vec<String>> {
    let section = architecture_after("## Layers");
    let picture = section
        .split("```")
        .nth(1)
        .expect("the Layers section draws its picture in a code block");
    picture
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.trim().is_empty() && *l != "main.rs")
        .map(|line| {
            line.split_whitespace()
                .map(|w| w.trim_end_matches('/').to_string())
                .collect()
        })
        .collect()
}

#[test]
fn the_layer_picture_holds_every_module_once_above_all_it_uses() {
    let code = code_graph();
    let rows = documented_layers();
    let mut row_of = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        for module in row {
            assert!(
                code.contains_key(module),
                "docs/architecture.md draws `{module}`, which src/ lacks"
            );
            assert!(
                row_of.insert(module.clone(), i).is_none(),
                "docs/architecture.md draws `{module}` in two rows"
            );
        }
    }
    for (module, uses) in &code {
        let Some(&row) = row_of.get(module) else {
            panic!("docs/architecture.md's layer picture lacks `{module}`");
        };
        for used in uses {
            assert!(
                row_of.get(used).is_some_and(|&below| below > row),
                "docs/architecture.md draws `{module}` at or below `{used}`, which it uses"
            );
        }
    }
}
