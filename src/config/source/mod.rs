//! The YAML text of a configuration file: parsed into a value tree (serde_yaml), its
//! positions read into a side table ([`spans`]), and `${VAR}` references expanded
//! ([`interpolate`]).

mod interpolate;
mod spans;

pub(crate) use spans::{Locations, Pos};

use super::error::{ConfigError, ConfigErrors};
use super::report::Report;
use serde_yaml::Value;
use std::path::Path;
use std::sync::Arc;

/// Parses `text` into a YAML tree with environment variables expanded, plus a [`Report`]
/// that can locate any path in it. A syntax error ends the load at once: nothing after it
/// can be trusted.
pub(super) fn parse(file: &Path, text: &str) -> Result<(Value, Report), ConfigErrors> {
    parse_with(file, text, &|name| std::env::var(name).ok())
}

/// [`parse`], with variables looked up through `env`.
fn parse_with(
    file: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Value, Report), ConfigErrors> {
    if let Some(at) = too_deep(text) {
        return Err(ConfigErrors(vec![ConfigError {
            file: file.to_path_buf(),
            line: at.line,
            column: at.column,
            path: String::new(),
            message: format!(
                "invalid YAML: nested more than {MAX_FLOW_DEPTH} levels deep in {{ }} or [ ]"
            ),
        }]));
    }
    let mut value: Value = serde_yaml::from_str(text).map_err(|e| {
        // From the byte offset: the YAML parser's own lines also end at NEL, LS and PS
        // (YAML 1.1), which editors and the position table do not count, and it places an
        // error at the end of a file without a final newline on a line past the last.
        let Pos { line, column } = e
            .location()
            .map_or(Pos::START, |l| position_of(text, l.index()));
        ConfigErrors(vec![ConfigError {
            file: file.to_path_buf(),
            line,
            column,
            path: String::new(),
            message: format!("invalid YAML: {}", strip_location(&e.to_string())),
        }])
    })?;
    let locations = Arc::new(Locations::read(file, text));
    let mut report = Report::new(locations.clone());
    interpolate::interpolate(&mut value, "", &locations, &mut report, env);
    Ok((value, report))
}

/// Deepest nesting of flow collections (`{ }`, `[ ]`) a file may have. weir's schema needs a
/// handful; the YAML scanner takes time quadratic in the depth before its own limit applies.
const MAX_FLOW_DEPTH: usize = 64;

/// Where `text` first opens a flow collection deeper than [`MAX_FLOW_DEPTH`], counting
/// brackets outside quotes and comments (a bracket inside a plain scalar may count too: a
/// file that deep in them is refused either way).
fn too_deep(text: &str) -> Option<Pos> {
    let mut depth = 0usize;
    for (i, line) in lines(text).into_iter().enumerate() {
        let mut quote: Option<char> = None;
        let mut escaped = false;
        for (column, c) in line.chars().enumerate() {
            match (quote, c) {
                (Some('"'), '\\') if !escaped => {
                    escaped = true;
                    continue;
                }
                (Some(q), c) if c == q && !escaped => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(c),
                (None, '#') => break,
                (None, '{' | '[') => {
                    depth += 1;
                    if depth > MAX_FLOW_DEPTH {
                        return Some(Pos {
                            line: i + 1,
                            column: column + 1,
                        });
                    }
                }
                (None, '}' | ']') => depth = depth.saturating_sub(1),
                (None, _) => {}
            }
            escaped = false;
        }
    }
    None
}

/// The lines of `text` as YAML counts them: a line ends at `\n`, `\r\n` or a lone `\r`.
pub(super) fn lines(text: &str) -> Vec<&str> {
    text.split('\n')
        .flat_map(|l| l.strip_suffix('\r').unwrap_or(l).split('\r'))
        .collect()
}

/// The position of byte `at` of `text` as an editor shows it: lines as [`lines`] counts
/// them, columns in characters.
fn position_of(text: &str, at: usize) -> Pos {
    let at = (0..=at.min(text.len()))
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let lines = lines(&text[..at]);
    Pos {
        line: lines.len(),
        column: lines.last().map_or(0, |l| l.chars().count()) + 1,
    }
}

/// serde_yaml appends " at line X column Y" to its messages; the location is printed in
/// front instead.
fn strip_location(message: &str) -> &str {
    message.find(" at line ").map_or(message, |i| &message[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_nesting_past_the_limit_is_refused_where_it_goes_too_deep() {
        let deep = format!("a: {}{}\n", "[".repeat(MAX_FLOW_DEPTH + 1), "]".repeat(65));
        let Err(errors) = parse_with(Path::new("f.yaml"), &deep, &|_| None) else {
            panic!("a file nested {} deep is refused", MAX_FLOW_DEPTH + 1);
        };
        let e = &errors.0[0];
        assert_eq!((e.line, e.column), (1, 4 + MAX_FLOW_DEPTH), "{e}");
        assert!(e.message.contains("nested more than"), "{e}");
        // Brackets in quotes and comments do not count.
        let quoted = format!(
            "a: \"{}\"\nb: '{}' # {}\n",
            "[".repeat(100),
            "{".repeat(100),
            "[".repeat(100)
        );
        assert!(too_deep(&quoted).is_none());
    }

    #[test]
    fn syntax_errors_are_placed_where_an_editor_shows_them() {
        // Found by the loader's property tests: the end of a file without a final newline
        // was placed on a line past the last, and a NEL (U+0085) counted as a line break.
        let at = |text: &str| {
            let Err(errors) = parse_with(Path::new("f.yaml"), text, &|_| None) else {
                panic!("{text:?} is not YAML");
            };
            (errors.0[0].line, errors.0[0].column)
        };
        assert_eq!(at("{"), (1, 2));
        assert_eq!(at("app app\u{85}app: app\n").0, 1);
        assert_eq!(at("a\rb: c: d"), (2, 2));
        assert_eq!(at("é: [\n"), (2, 1));
    }

    #[test]
    fn control_characters_in_values_are_escaped_in_messages() {
        let text = "a: \"x\\nf.yaml:9:9: forged\"\n";
        let (_, mut report) = parse_with(Path::new("f.yaml"), text, &|_| None).unwrap();
        report.value("a", "`x\nf.yaml:9:9: forged` is wrong");
        let errors = report.finish().unwrap_err();
        assert_eq!(errors.to_string().lines().count(), 1, "{errors}");
        assert!(errors.to_string().contains("`x\\nf.yaml"), "{errors}");
    }
    use crate::config::report::{join_index, join_key, key_name, parent};

    #[test]
    fn plain_values_are_retyped_after_expansion() {
        let env = |name: &str| (name == "THREADS").then(|| "4".to_string());
        let text = "n: ${THREADS}\ns: \"${THREADS}\"\n";
        let (value, report) = parse_with(Path::new("f.yaml"), text, &env).unwrap();
        assert!(report.finish().is_ok());
        assert_eq!(value["n"], Value::Number(4.into()));
        assert_eq!(value["s"], Value::String("4".into()));
    }

    /// Every path of the value tree, with the text of its key where it has one.
    fn paths(
        value: &Value,
        path: &str,
        key: Option<String>,
        out: &mut Vec<(String, Option<String>)>,
    ) {
        out.push((path.to_string(), key));
        match value {
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    paths(item, &join_index(path, i), None, out);
                }
            }
            Value::Mapping(map) => {
                for (k, v) in map {
                    let name = key_name(k);
                    let key = (name != "?").then(|| name.clone());
                    paths(v, &join_key(path, &name), key, out);
                }
            }
            Value::Tagged(tagged) => paths(&tagged.value, path, None, out),
            _ => {}
        }
    }

    /// The two parsers agree on every path of `text`: each path of serde_yaml's tree has a
    /// position in the span table (its own, or the alias it was copied from), and a key's
    /// position is where that key is written.
    fn assert_agree(text: &str) {
        let value: Value = serde_yaml::from_str(text).unwrap();
        let locations = Locations::read(Path::new("f.yaml"), text);
        let lines: Vec<&str> = text.lines().collect();
        let mut all = Vec::new();
        paths(&value, "", None, &mut all);
        for (path, key) in all.iter().filter(|(p, _)| !p.is_empty()) {
            let located = std::iter::successors(Some(path.as_str()), |p| parent(p))
                .any(|p| !p.is_empty() && locations.span(p).is_some());
            assert!(located, "`{path}` is not located in:\n{text}");
            let pos = locations.position(path, true);
            let line = lines[pos.line - 1];
            let at = line.get(pos.column - 1..).unwrap_or_default();
            let Some(key) = key else { continue };
            let own = locations.span(path).is_some();
            // The key as written there reads as the same name (`0x10` is 16).
            let token = at.split(':').next().unwrap_or_default().trim();
            let reads_as = serde_yaml::from_str::<Value>(token).map(|k| key_name(&k));
            let ok = if own {
                reads_as.is_ok_and(|name| name == *key)
            } else {
                // A key copied by an alias is located on the line of that alias.
                line.contains('*')
            };
            assert!(ok, "`{path}` located at {pos:?} (`{at}`) in:\n{text}");
        }
    }

    #[test]
    fn both_parsers_agree_on_every_path() {
        let corpus = [
            // Block and flow styles, nested.
            "a:\n  b: 1\n  c: [1, { d: 2, e: [x, y] }]\n  f:\n    - g: 1\n      h: 2\n    - [3, 4]\n",
            // Anchors and aliases, and merge keys (kept as a `<<` key by serde_yaml).
            "base: &base { x: 1, y: 2 }\nuse: *base\nmerged:\n  <<: *base\n  z: 3\nlist: [&one 1, *one]\n",
            // Tags on scalars, sequences and mappings.
            "t: !custom 5\ns: !seq [1, 2]\nm: !map { k: v }\n",
            // Multi-line strings: literal, folded, with chomping indicators, and plain
            // and quoted scalars spanning lines.
            "lit: |\n  one\n  two\nfold: >-\n  one\n  two\nplain: a\n  b\nq: \"a\n  b\"\nafter: 1\n",
            // Quoted keys, keys with dots and brackets, comments everywhere.
            "# head\n\"quoted\": 1 # tail\n'single': 2\n\"a.b\": 3\n\"c[0]\": 4\n# between\nlast: { \"k\": v } # end\n",
            // An explicit document start and end.
            "---\nfirst: 1\nsecond: [a]\n...\n",
            // Empty values, nulls and explicit keys.
            "empty:\nnull_value: ~\n? explicit\n: value\nlist:\n  -\n  - x\n",
            // Keys that are numbers and booleans, in any of the ways YAML writes them.
            "ports:\n  8080: web\n  true: yes\n  1.5: x\nother:\n  0x10: a\n  1.50: b\n  True: c\n",
            // Sequences of mappings, compact and indented.
            "items:\n- name: a\n  value: 1\n-   name: b\n    value: 2\n",
            // A configuration as weir's own files write it.
            include_str!("../../../conf/weir.yaml"),
        ];
        for text in corpus {
            assert_agree(text);
        }
    }
}
