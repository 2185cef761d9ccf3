//! Validation of `policies.compress`: known codings, a level every listed coding takes,
//! media type patterns, and a size.

use super::super::report::{join_index, join_key, Report};
use super::super::schema::RawCompress;
use super::super::*;
use super::messages::unknown;
use super::values::size;

/// `policies.compress` at `path`.
pub(super) fn compress(raw: &RawCompress, path: &str, report: &mut Report) -> Compress {
    let algorithms = algorithms(
        raw.algorithms.as_deref(),
        &join_key(path, "algorithms"),
        report,
    );
    if let Some(level) = raw.level {
        check_level(level, &algorithms, &join_key(path, "level"), report);
    }
    let types_path = join_key(path, "types");
    let types = match &raw.types {
        None => DEFAULT_COMPRESS_TYPES
            .iter()
            .filter_map(|t| media_range(t))
            .collect(),
        Some(types) => {
            if types.is_empty() {
                report.value(
                    &types_path,
                    "list at least one media type, e.g. [text/*, application/json]",
                );
            }
            types
                .iter()
                .enumerate()
                .filter_map(|(i, t)| {
                    let range = media_range(t);
                    if range.is_none() {
                        report.value(
                            &join_index(&types_path, i),
                            format!(
                                "`{t}` is not a media type; write type/subtype or type/*, \
                                 e.g. application/json, text/*"
                            ),
                        );
                    }
                    range
                })
                .collect()
        }
    };
    Compress {
        algorithms,
        min_size: raw
            .min_size
            .as_ref()
            .and_then(|s| size(s, &join_key(path, "min_size"), report))
            .unwrap_or(DEFAULT_COMPRESS_MIN_SIZE),
        types,
        level: raw.level,
    }
}

/// The codings of `algorithms`, in the file's order, each once.
fn algorithms(raw: Option<&[String]>, path: &str, report: &mut Report) -> Vec<Encoding> {
    let names = Encoding::ALL.map(|(name, _)| name);
    let Some(raw) = raw else {
        return DEFAULT_COMPRESS_ALGORITHMS
            .iter()
            .filter_map(|d| Encoding::ALL.iter().find(|(n, _)| n == d))
            .map(|(_, e)| *e)
            .collect();
    };
    if raw.is_empty() {
        report.value(
            path,
            "list at least one of zstd, br, gzip; to send responses as they are, remove `compress`",
        );
    }
    let mut algorithms = Vec::new();
    for (i, name) in raw.iter().enumerate() {
        let at = join_index(path, i);
        match Encoding::ALL.iter().find(|(n, _)| n == name) {
            Some((_, e)) if algorithms.contains(e) => {
                report.value(&at, format!("`{name}` is listed twice"));
            }
            Some((_, e)) => algorithms.push(*e),
            None => report.value(&at, unknown(name, "algorithm", &names)),
        }
    }
    algorithms
}

/// Reports a `level` one of `algorithms` does not take.
fn check_level(level: u32, algorithms: &[Encoding], path: &str, report: &mut Report) {
    if level == 0 {
        report.value(
            path,
            "must be 1 or more; to send responses as they are, remove `compress`",
        );
        return;
    }
    let refused: Vec<String> = algorithms
        .iter()
        .filter(|e| !e.levels().contains(&level))
        .map(|e| {
            format!(
                "{} takes {} to {}",
                e.name(),
                e.levels().start(),
                e.levels().end()
            )
        })
        .collect();
    if !refused.is_empty() {
        report.value(
            path,
            format!(
                "level {level} is too high: {}; lower it, or leave it out for each \
                 algorithm's default",
                refused.join(", ")
            ),
        );
    }
}

/// `type/subtype` or `type/*`, lowercase; `None` for anything else.
fn media_range(raw: &str) -> Option<MediaRange> {
    let (ty, subtype) = raw.split_once('/')?;
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    if !token(ty) || ty.contains('*') {
        return None;
    }
    let ty = ty.to_ascii_lowercase();
    match subtype {
        "*" => Some(MediaRange::Type(ty)),
        s if token(s) && !s.contains('*') => Some(MediaRange::Exact(format!(
            "{ty}/{}",
            s.to_ascii_lowercase()
        ))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_ranges_are_a_type_and_a_subtype_or_a_star() {
        assert_eq!(media_range("Text/*"), Some(MediaRange::Type("text".into())));
        assert_eq!(
            media_range("image/svg+xml"),
            Some(MediaRange::Exact("image/svg+xml".into()))
        );
        for bad in [
            "text",
            "*/*",
            "text/",
            "/json",
            "text/ html",
            "text/*; q=1",
            "a/b/c",
            "*/json",
        ] {
            assert_eq!(media_range(bad), None, "{bad}");
        }
    }
}
