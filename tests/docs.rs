//! The documentation stays honest, cheaply (no server is started): the README stays short,
//! every relative link in README.md and docs/*.md reaches a file (and a heading, when it
//! names one), every `weir …` command in their code blocks is one the binary's parser
//! accepts, every metric they name is one weir defines, and the README's example
//! configuration passes `weir --test`. And .config/nextest.toml shows what every test that
//! can skip prints, so that a skip is seen.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The README is what a newcomer meets first: what weir is, the quick start, a small
/// configuration and links. Everything else belongs in docs/.
const README_MAX_LINES: usize = 150;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every page of docs/, with their text.
fn pages() -> Vec<(PathBuf, String)> {
    let mut files = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    assert!(!docs.is_empty(), "docs/ holds the documentation");
    files.extend(docs);
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            (f, text)
        })
        .collect()
}

/// The fenced code blocks of a Markdown page: (info string, body).
fn code_blocks(text: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in text.lines() {
        match (open.take(), line.strip_prefix("```")) {
            (None, Some(info)) => open = Some((info.trim().to_string(), String::new())),
            (Some(block), Some(_)) => blocks.push(block),
            (Some((info, mut body)), None) => {
                body.push_str(line);
                body.push('\n');
                open = Some((info, body));
            }
            (None, None) => {}
        }
    }
    blocks
}

/// Markdown text outside code blocks and inline code, where links are.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut in_block = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_block = !in_block;
        } else if !in_block {
            out.push_str(line);
            out.push('\n');
        }
    }
    Regex::new(r"`[^`]*`").unwrap().replace_all(&out, "").into()
}

/// GitHub's anchor for a heading: lowercase, punctuation dropped, spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut in_block = false;
    let mut found = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_block = !in_block;
        } else if !in_block && line.starts_with('#') {
            found.insert(anchor(
                line.trim_start_matches('#').replace('`', "").as_str(),
            ));
        }
    }
    found
}

#[test]
fn the_readme_stays_short() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines; keep it to {README_MAX_LINES} and move the rest into docs/"
    );
}

#[test]
fn every_relative_link_reaches_a_file_and_heading() {
    let link = Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let mut broken = Vec::new();
    for (page, text) in pages() {
        let folder = page.parent().unwrap();
        for target in link.captures_iter(&prose(&text)).map(|c| c[1].to_string()) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, fragment) = match target.split_once('#') {
                Some((path, fragment)) => (path, Some(fragment)),
                None => (target.as_str(), None),
            };
            let file = if path.is_empty() {
                page.clone()
            } else {
                folder.join(path)
            };
            if !file.exists() {
                broken.push(format!("{}: {target}: no such file", page.display()));
                continue;
            }
            if let Some(fragment) = fragment {
                let headings = anchors(&std::fs::read_to_string(&file).unwrap());
                if !headings.contains(fragment) {
                    broken.push(format!("{}: {target}: no such heading", page.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// What `weir [SUBCOMMAND] --help` accepts: its subcommands, and its flags with whether
/// each takes a value.
struct Help {
    subcommands: BTreeSet<String>,
    flags: BTreeMap<String, bool>,
}

impl Help {
    fn of(subcommand: Option<&str>) -> Self {
        let out = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(subcommand)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "weir {subcommand:?} --help failed");
        let text = String::from_utf8(out.stdout).unwrap();
        let flag = Regex::new(r"^\s+(?:(-[a-zA-Z]), )?(--[a-z][a-z-]*)( <[A-Z_]+>)?").unwrap();
        let mut help = Self {
            subcommands: BTreeSet::new(),
            flags: BTreeMap::new(),
        };
        let mut section = "";
        for line in text.lines() {
            if !line.starts_with(' ') {
                section = line;
            } else if section == "Commands:" {
                let name = line.split_whitespace().next().unwrap();
                help.subcommands.insert(name.to_string());
            } else if let Some(c) = flag.captures(line) {
                let takes_value = c.get(3).is_some();
                if let Some(short) = c.get(1) {
                    help.flags.insert(short.as_str().to_string(), takes_value);
                }
                help.flags.insert(c[2].to_string(), takes_value);
            }
        }
        help
    }
}

/// The `weir …` command lines in the code blocks of README.md and docs/*.md, each as its
/// words (comments and what follows a shell operator left out).
fn weir_commands() -> Vec<(PathBuf, Vec<String>)> {
    let mut commands = Vec::new();
    for (page, text) in pages() {
        for (_, body) in code_blocks(&text) {
            for line in body.lines() {
                let line = line.split(" #").next().unwrap();
                for part in line.split(['|', ';', '&']) {
                    let words: Vec<String> = part
                        .split_whitespace()
                        .skip_while(|w| *w == "$" || w.contains('='))
                        .map(String::from)
                        .collect();
                    if words.first().is_some_and(|w| w == "weir") {
                        commands.push((page.clone(), words[1..].to_vec()));
                    }
                }
            }
        }
    }
    commands
}

#[test]
fn every_weir_command_in_the_docs_is_accepted_by_its_parser() {
    let commands = weir_commands();
    assert!(
        commands.len() >= 5,
        "the docs show how to run weir: {commands:?}"
    );
    let top = Help::of(None);
    let mut helps: BTreeMap<String, Help> = BTreeMap::new();
    let mut wrong = Vec::new();
    for (page, words) in &commands {
        let mut subcommand: Option<&str> = None;
        let mut words = words.iter();
        while let Some(word) = words.next() {
            let help = subcommand.map_or(&top, |s| &helps[s]);
            if word.starts_with('-') {
                let name = word.split('=').next().unwrap();
                match help.flags.get(name) {
                    Some(true) if !word.contains('=') => {
                        words.next();
                    }
                    Some(_) => {}
                    None => wrong.push(format!(
                        "{}: weir{}: no flag {name}",
                        page.display(),
                        subcommand.map_or(String::new(), |s| format!(" {s}"))
                    )),
                }
            } else if subcommand.is_none() && top.subcommands.contains(word) {
                helps
                    .entry(word.clone())
                    .or_insert_with(|| Help::of(Some(word)));
                subcommand = Some(word);
            } else {
                wrong.push(format!("{}: weir: no subcommand {word}", page.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_metric_the_docs_name_is_defined() {
    let mut source = String::new();
    let mut folders = vec![root().join("src")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                source.push_str(&std::fs::read_to_string(path).unwrap());
            }
        }
    }
    let metric = Regex::new(r"\bweir_[a-z_]+[a-z]\b").unwrap();
    let mut unknown = BTreeSet::new();
    for (page, text) in pages() {
        for name in metric.find_iter(&text).map(|m| m.as_str()) {
            if !source.contains(&format!("\"{name}\"")) {
                unknown.insert(format!("{}: {name}", page.display()));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "metrics weir does not define: {unknown:?}"
    );
}

#[test]
fn the_readme_example_configuration_is_valid() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let examples: Vec<String> = code_blocks(&readme)
        .into_iter()
        .filter(|(info, _)| info == "yaml")
        .map(|(_, body)| body)
        .collect();
    assert_eq!(
        examples.len(),
        1,
        "the README shows one example configuration"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("weir.yaml");
    std::fs::write(&file, &examples[0]).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("--config")
        .arg(&file)
        .arg("--test")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the README's example fails `weir --test`:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn nextest_shows_the_output_of_every_test_that_can_skip() {
    let config = std::fs::read_to_string(root().join(".config/nextest.toml")).unwrap();
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(root().join("tests")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut test = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("fn ") {
                test = rest.split('(').next();
            }
            let call = line.trim_start();
            if call.starts_with("if require_tools(") || call.starts_with("if !require_tools(") {
                let name = test.unwrap_or("?");
                if !config.contains(&format!("test(={name})")) {
                    missing.push(format!("{}: {name}", path.display()));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        ".config/nextest.toml lacks these tests that can skip: {missing:?}"
    );
}
