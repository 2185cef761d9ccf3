//! `${VAR}` and `${VAR:-default}` in the values of the file, filled from the environment
//! (or any lookup) after parsing; `$${` stands for a literal `${`.

use super::Locations;
use crate::config::report::{join_index, join_key, key_name, Report};
use serde_yaml::Value;

/// Why a value's variable references cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum ExpandError {
    /// `${` with no closing `}`.
    #[error("unclosed `${{` in `{0}`: write ${{NAME}}")]
    Unclosed(String),
    /// `${…}` whose name is not letters, digits and `_`.
    #[error("`${{{0}}}` is not a variable reference: names use letters, digits and _")]
    NotAName(String),
    /// A variable with no value and no default.
    #[error(
        "environment variable `{0}` is not set; set it or give a default with ${{{0}:-value}}"
    )]
    Unset(String),
}

/// Expands every string of the tree through `env`. An unquoted value is re-read as YAML
/// after expansion, so `threads: ${N}` yields a number, while a quoted one stays a string.
pub(super) fn interpolate(
    value: &mut Value,
    path: &str,
    locations: &Locations,
    report: &mut Report,
    env: &dyn Fn(&str) -> Option<String>,
) {
    match value {
        Value::String(s) if s.contains("${") => match expand(s, env) {
            Ok(expanded) => {
                let plain = locations.span(path).is_some_and(|s| s.plain);
                *value = match serde_yaml::from_str::<Value>(&expanded) {
                    Ok(v @ (Value::Number(_) | Value::Bool(_))) if plain => v,
                    _ => Value::String(expanded),
                };
            }
            Err(e) => {
                report.value(path, e.to_string());
                // What later checks say of the unexpanded text is an echo of this.
                report.set_aside(path.to_string());
            }
        },
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate(item, &join_index(path, i), locations, report, env);
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                interpolate(v, &join_key(path, &key_name(k)), locations, report, env);
            }
        }
        Value::Tagged(tagged) => interpolate(&mut tagged.value, path, locations, report, env),
        _ => {}
    }
}

/// Expands one string.
fn expand(input: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
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
                .ok_or_else(|| ExpandError::Unclosed(input.to_string()))?;
            let expr = &tail[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            let valid =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid {
                return Err(ExpandError::NotAName(expr.to_string()));
            }
            match (env(name), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => return Err(ExpandError::Unset(name.to_string())),
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
        assert_eq!(err, ExpandError::Unset("NOPE".into()));
        assert!(err.to_string().contains("`NOPE` is not set"), "{err}");
        assert!(matches!(expand("${A", &env), Err(ExpandError::Unclosed(_))));
        assert!(matches!(
            expand("${A-B}", &env),
            Err(ExpandError::NotAName(_))
        ));
    }
}
