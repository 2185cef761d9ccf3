//! The YAML text of a configuration file: parsing it, remembering where every key and
//! value sits (so later checks can point at `file:line:column`), and expanding
//! `${VAR}` / `${VAR:-default}` from the environment.

use super::error::{ConfigError, ConfigErrors};
use serde_yaml::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A position in the file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    line: usize,
    column: usize,
}

impl From<Marker> for Pos {
    fn from(m: Marker) -> Self {
        Self {
            line: m.line(),
            column: m.col() + 1,
        }
    }
}

/// Where one node of the document is. Paths are written as in error messages:
/// `upstreams.api.targets[2].weight`.
#[derive(Debug, Clone, Copy)]
struct Span {
    /// The key that names this node in its parent mapping, if it has one.
    key: Option<Pos>,
    /// The value itself.
    value: Option<Pos>,
    /// Whether the value is an unquoted scalar, which YAML would read as a number or a
    /// boolean where it looks like one; interpolated values keep that reading.
    plain: bool,
}

/// Collects every error of one file, each located by its YAML path.
pub struct Report {
    file: PathBuf,
    spans: HashMap<String, Span>,
    errors: Vec<ConfigError>,
}

impl Report {
    /// Records a problem with the value at `path` (or its nearest located ancestor).
    pub fn value(&mut self, path: &str, message: impl Into<String>) {
        let pos = self.locate(path, false);
        self.push(pos, path, message.into());
    }

    /// Records a problem with the key that names `path`, such as an unknown key.
    pub fn key(&mut self, path: &str, message: impl Into<String>) {
        let pos = self.locate(path, true);
        self.push(pos, path, message.into());
    }

    /// `FILE:LINE:COLUMN: path`, so that a problem found after validation (a certificate
    /// file that does not load) points at the setting that names it.
    pub fn at(&self, path: &str) -> String {
        let pos = self.locate(path, false);
        format!(
            "{}:{}:{}: {path}",
            self.file.display(),
            pos.line,
            pos.column
        )
    }

    /// All recorded errors in file order, or `Ok` when there were none.
    pub fn finish(mut self) -> Result<(), ConfigErrors> {
        if self.errors.is_empty() {
            return Ok(());
        }
        // One error per location: the first recorded is the cause (an unset variable),
        // later ones at the same spot are its echoes (the unexpanded text is not a name).
        self.errors.sort_by_key(|e| (e.line, e.column));
        self.errors.dedup_by_key(|e| (e.line, e.column));
        Err(ConfigErrors(self.errors))
    }

    /// Messages name the YAML path first, so an error reads on its own:
    /// `upstreams.api.targets[0].weight: weight 5000 is too large …`.
    fn push(&mut self, pos: Pos, path: &str, message: String) {
        let message = if path.is_empty() {
            message
        } else {
            format!("{path}: {message}")
        };
        self.errors.push(ConfigError {
            file: self.file.clone(),
            line: pos.line,
            column: pos.column,
            path: path.to_string(),
            message,
        });
    }

    /// The position of `path`; for a path that is not in the file (a missing key), the key
    /// of its nearest ancestor that is, which is the line a reader looks at.
    fn locate(&self, path: &str, prefer_key: bool) -> Pos {
        let mut current = path;
        // A missing top-level section is reported at the top of the file.
        while !current.is_empty() {
            if let Some(span) = self.spans.get(current) {
                let found = if prefer_key || current != path {
                    span.key.or(span.value)
                } else {
                    span.value.or(span.key)
                };
                if let Some(pos) = found {
                    return pos;
                }
            }
            current = parent(current).unwrap_or_default();
        }
        Pos { line: 1, column: 1 }
    }
}

/// The path of the node that holds `path`: `a.b[2]` → `a.b` → `a` → ``.
fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

/// Joins a mapping key onto a path.
pub fn join_key(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Joins a sequence index onto a path.
pub fn join_index(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// Parses `text` into a YAML tree with environment variables expanded, plus a [`Report`]
/// that can locate any path in it. A syntax error ends the load at once: nothing after it
/// can be trusted.
pub fn parse(file: &Path, text: &str) -> Result<(Value, Report), ConfigErrors> {
    let mut value: Value = serde_yaml::from_str(text).map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        ConfigErrors(vec![ConfigError {
            file: file.to_path_buf(),
            line,
            column,
            path: String::new(),
            message: format!("invalid YAML: {}", strip_location(&e.to_string())),
        }])
    })?;
    let mut collector = SpanCollector::default();
    // serde_yaml accepted the text, so the second parser only fails on constructs it
    // reads differently; locations then fall back to the start of the file.
    let _ = Parser::new_from_str(text).load(&mut collector, false);
    let mut report = Report {
        file: file.to_path_buf(),
        spans: collector.spans,
        errors: Vec::new(),
    };
    interpolate(&mut value, "", &mut report, &|name| {
        std::env::var(name).ok()
    });
    Ok((value, report))
}

/// serde_yaml appends " at line X column Y" to its messages; the location is printed in
/// front instead.
fn strip_location(message: &str) -> &str {
    message.find(" at line ").map_or(message, |i| &message[..i])
}

/// Expands `${VAR}` and `${VAR:-default}` in every string of the tree. `$${` stands for a
/// literal `${`. An unquoted value is re-read as YAML after expansion, so `threads: ${N}`
/// yields a number, while a quoted one stays a string.
fn interpolate(
    value: &mut Value,
    path: &str,
    report: &mut Report,
    env: &dyn Fn(&str) -> Option<String>,
) {
    match value {
        Value::String(s) if s.contains("${") => match expand(s, env) {
            Ok(expanded) => {
                let plain = report.spans.get(path).is_some_and(|s| s.plain);
                *value = match serde_yaml::from_str::<Value>(&expanded) {
                    Ok(v @ (Value::Number(_) | Value::Bool(_))) if plain => v,
                    _ => Value::String(expanded),
                };
            }
            Err(message) => report.value(path, message),
        },
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate(item, &join_index(path, i), report, env);
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let key = k.as_str().unwrap_or("?");
                interpolate(v, &join_key(path, key), report, env);
            }
        }
        Value::Tagged(tagged) => interpolate(&mut tagged.value, path, report, env),
        _ => {}
    }
}

/// Expands one string; the error names the variable that has no value and no default.
fn expand(input: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail
                .find('}')
                .ok_or_else(|| format!("unclosed `${{` in `{input}`: write ${{NAME}}"))?;
            let expr = &tail[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            let valid =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid {
                return Err(format!(
                    "`${{{expr}}}` is not a variable reference: names use letters, digits and _"
                ));
            }
            match (env(name), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(format!(
                        "environment variable `{name}` is not set; set it or give a default with ${{{name}:-value}}"
                    ))
                }
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// One open container while walking the parser's events.
enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, index: usize },
}

/// Builds the path → position map from the YAML event stream.
#[derive(Default)]
struct SpanCollector {
    stack: Vec<Frame>,
    spans: HashMap<String, Span>,
}

impl SpanCollector {
    /// The path the next value will have, or `None` if the next scalar is a mapping key.
    fn next_value_path(&self) -> Option<String> {
        match self.stack.last() {
            None => Some(String::new()),
            Some(Frame::Map { key: None, .. }) => None,
            Some(Frame::Map { path, key: Some(k) }) => Some(join_key(path, k)),
            Some(Frame::Seq { path, index }) => Some(join_index(path, *index)),
        }
    }

    /// Moves the innermost container past the value just read.
    fn advance(&mut self) {
        match self.stack.last_mut() {
            Some(Frame::Map { key, .. }) => *key = None,
            Some(Frame::Seq { index, .. }) => *index += 1,
            None => {}
        }
    }

    fn record_value(&mut self, path: &str, pos: Pos, plain: bool) {
        let span = self.spans.entry(path.to_string()).or_insert(Span {
            key: None,
            value: None,
            plain: false,
        });
        span.value = Some(pos);
        span.plain = plain;
    }

    /// A scalar or container in key position: complex keys are not used by weir's schema,
    /// so they get a placeholder name and the walk goes on.
    fn take_key(&mut self, name: String, pos: Option<Pos>) {
        if let Some(Frame::Map { path, key }) = self.stack.last_mut() {
            let full = join_key(path, &name);
            *key = Some(name);
            if let Some(pos) = pos {
                self.spans.insert(
                    full,
                    Span {
                        key: Some(pos),
                        value: None,
                        plain: false,
                    },
                );
            }
        }
    }

    fn open(&mut self, pos: Pos, map: bool) {
        let path = match self.next_value_path() {
            Some(p) => {
                self.record_value(&p, pos, false);
                p
            }
            None => "?".to_string(),
        };
        self.stack.push(if map {
            Frame::Map { path, key: None }
        } else {
            Frame::Seq { path, index: 0 }
        });
    }

    fn close(&mut self) {
        self.stack.pop();
        match self.stack.last() {
            Some(Frame::Map { key: None, .. }) => self.take_key("?".to_string(), None),
            _ => self.advance(),
        }
    }
}

impl MarkedEventReceiver for SpanCollector {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = Pos::from(mark);
        match ev {
            Event::Scalar(text, style, _, _) => match self.next_value_path() {
                Some(path) => {
                    self.record_value(&path, pos, style == TScalarStyle::Plain);
                    self.advance();
                }
                None => self.take_key(text, Some(pos)),
            },
            Event::Alias(_) => match self.next_value_path() {
                Some(path) => {
                    self.record_value(&path, pos, false);
                    self.advance();
                }
                None => self.take_key("?".to_string(), Some(pos)),
            },
            Event::MappingStart(..) => self.open(pos, true),
            Event::SequenceStart(..) => self.open(pos, false),
            Event::MappingEnd | Event::SequenceEnd => self.close(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "PORT").then(|| "9000".to_string())
    }

    #[test]
    fn expands_variables_defaults_and_escapes() {
        assert_eq!(expand("a:${PORT}", &env).as_deref(), Ok("a:9000"));
        assert_eq!(expand("${NOPE:-x y}", &env).as_deref(), Ok("x y"));
        assert_eq!(expand("$${PORT} $5", &env).as_deref(), Ok("${PORT} $5"));
        let err = expand("${NOPE}", &env).unwrap_err();
        assert!(err.contains("`NOPE` is not set"), "{err}");
        assert!(expand("${A", &env).is_err());
        assert!(expand("${A-B}", &env).is_err());
    }

    #[test]
    fn locates_keys_and_values() {
        let text = "a:\n  b: 1\n  list:\n    - x\n    - { y: 2 }\n";
        let (_, report) = parse(Path::new("f.yaml"), text).unwrap();
        assert_eq!(report.locate("a.b", true), Pos { line: 2, column: 3 });
        assert_eq!(report.locate("a.b", false), Pos { line: 2, column: 6 });
        assert_eq!(
            report.locate("a.list[1].y", false),
            Pos {
                line: 5,
                column: 12
            }
        );
        assert_eq!(
            report.locate("a.list[0]", false),
            Pos { line: 4, column: 7 }
        );
        assert_eq!(
            report.locate("a.missing", false),
            Pos { line: 1, column: 1 }
        );
    }

    #[test]
    fn plain_values_are_retyped_after_expansion() {
        std::env::set_var("WEIR_TEST_THREADS", "4");
        let text = "n: ${WEIR_TEST_THREADS}\ns: \"${WEIR_TEST_THREADS}\"\n";
        let (value, report) = parse(Path::new("f.yaml"), text).unwrap();
        assert!(report.finish().is_ok());
        assert_eq!(value["n"], Value::Number(4.into()));
        assert_eq!(value["s"], Value::String("4".into()));
    }
}
