//! serde's error messages in a user's words: what the file should hold ("a whole number",
//! "true or false", "a list") and what it holds, never a Rust type name; misspelt keys and
//! values get a suggestion.

use super::SUGGESTION_THRESHOLD;

/// What serde said about one value, sorted by what decoding does about it.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Problem {
    /// A key the schema does not have, with the keys it has.
    UnknownKey { name: String, expected: Vec<String> },
    /// A name that is not one of the allowed ones.
    UnknownValue { name: String, expected: Vec<String> },
    /// A required key that is not there.
    MissingKey(String),
    /// A value of the wrong type or out of range; the message is already in user terms.
    Invalid(String),
}

impl Problem {
    /// Sorts one of serde's messages.
    pub(super) fn read(message: &str) -> Self {
        let named = |rest: &str| {
            let name = rest.split('`').next().unwrap_or_default().to_string();
            let expected = rest
                .split_once("expected")
                .map(|(_, list)| {
                    list.split('`')
                        .skip(1)
                        .step_by(2)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            (name, expected)
        };
        if let Some(rest) = message.strip_prefix("unknown field `") {
            let (name, expected) = named(rest);
            Self::UnknownKey { name, expected }
        } else if let Some(rest) = message.strip_prefix("unknown variant `") {
            let (name, expected) = named(rest);
            Self::UnknownValue { name, expected }
        } else if let Some(rest) = message.strip_prefix("missing field `") {
            Self::MissingKey(rest.trim_end_matches('`').to_string())
        } else {
            Self::Invalid(user_terms(message))
        }
    }
}

/// The allowed name closest to a misspelt `name`, if one is close enough.
pub(super) fn suggestion<'a, S: AsRef<str>>(name: &str, expected: &'a [S]) -> Option<&'a str> {
    expected
        .iter()
        .map(|e| (strsim::jaro_winkler(name, e.as_ref()), e.as_ref()))
        .filter(|(score, _)| *score >= SUGGESTION_THRESHOLD)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, e)| e)
}

/// "unknown key `x`; did you mean `y`? expected one of: a, b".
pub(super) fn unknown<S: AsRef<str>>(name: &str, what: &str, expected: &[S]) -> String {
    let list = expected
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ");
    match suggestion(name, expected) {
        Some(e) => {
            format!("unknown {what} `{name}`; did you mean `{e}`? (expected one of: {list})")
        }
        None if expected.is_empty() => format!("unknown {what} `{name}`"),
        None => format!("unknown {what} `{name}`; expected one of: {list}"),
    }
}

/// `invalid type: integer `-1`, expected u32` → `expected a whole number, found -1`.
/// Messages of weir's own (a custom check inside the schema) pass as written.
fn user_terms(message: &str) -> String {
    let body = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "));
    match body.and_then(|b| b.rsplit_once(", expected ")) {
        Some((found, expected)) => {
            format!(
                "expected {}, found {}",
                expected_text(expected),
                found_text(found)
            )
        }
        None => message.to_string(),
    }
}

/// What a value should be, for serde's names of what a type expects.
fn expected_text(expected: &str) -> &str {
    match expected {
        "u8" => "a whole number from 0 to 255",
        "u16" => "a whole number from 0 to 65535",
        "u32" | "u64" | "u128" | "usize" => "a whole number, 0 or more",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "a string" | "a borrowed string" | "a character" | "string" => "text",
        "a boolean" => "true or false",
        "a sequence" | "sequence" => "a list",
        "a map" | "map" => "a mapping",
        e if e.starts_with("struct ") || e.starts_with("a map ") => "a mapping",
        e if e.starts_with("tuple") || e.starts_with("a sequence ") => "a list",
        e if e.starts_with("enum ") || e.contains("identifier") || e.contains("Value::Tagged") => {
            "one of the allowed names"
        }
        "option" | "unit" => "a value",
        words => words,
    }
}

/// What a value is, for serde's description of an unexpected one.
fn found_text(found: &str) -> String {
    let quoted = |s: &str| s.split('`').nth(1).unwrap_or(s).to_string();
    if let Some(text) = found.strip_prefix("string ") {
        return format!("`{}`", text.trim_matches('"'));
    }
    match found {
        "unit value" => "nothing".to_string(),
        "sequence" => "a list".to_string(),
        "map" => "a mapping".to_string(),
        "enum" => "a tagged value".to_string(),
        "Option value" => "a value".to_string(),
        f if f.starts_with("integer ")
            || f.starts_with("floating point ")
            || f.starts_with("boolean ") =>
        {
            quoted(f)
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_read_in_user_terms() {
        let cases = [
            (
                "invalid value: integer `-1`, expected u32",
                "expected a whole number, 0 or more, found -1",
            ),
            (
                "invalid type: string \"yes\", expected a boolean",
                "expected true or false, found `yes`",
            ),
            (
                "invalid type: integer `10`, expected a string",
                "expected text, found 10",
            ),
            (
                "invalid type: map, expected a sequence",
                "expected a list, found a mapping",
            ),
            (
                "invalid type: sequence, expected struct RawTarget",
                "expected a mapping, found a list",
            ),
            (
                "invalid type: floating point `1.5`, expected usize",
                "expected a whole number, 0 or more, found 1.5",
            ),
            (
                "invalid type: unit value, expected f64",
                "expected a number, found nothing",
            ),
            (
                "invalid type: boolean `true`, expected a map",
                "expected a mapping, found true",
            ),
            (
                "invalid value: integer `300`, expected u8",
                "expected a whole number from 0 to 255, found 300",
            ),
            (
                "invalid type: integer `5`, expected a Value::Tagged enum",
                "expected one of the allowed names, found 5",
            ),
        ];
        for (serde, user) in cases {
            assert_eq!(Problem::read(serde), Problem::Invalid(user.to_string()));
        }
        assert_eq!(
            Problem::read("missing field `address`"),
            Problem::MissingKey("address".into())
        );
        assert_eq!(
            Problem::read("unknown field `wieght`, expected one of `address`, `weight`"),
            Problem::UnknownKey {
                name: "wieght".into(),
                expected: vec!["address".into(), "weight".into()]
            }
        );
    }
}
