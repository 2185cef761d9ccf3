//! What the instance is told about the caller: the `X-Consumer-*` headers weir alone sets
//! (removed from every request first, so that no client can claim to be a consumer), and the
//! credentials a policy hides from it.

use super::{auth, Gate, Identity};
use http::HeaderName;
use pingora::http::RequestHeader;

/// The headers weir alone sets upstream: as names to remove, and as the spelling they are
/// sent with (static, so that setting one allocates no name).
const CONSUMER: (HeaderName, &str) = (
    HeaderName::from_static("x-consumer-username"),
    "X-Consumer-Username",
);
const GROUPS: (HeaderName, &str) = (
    HeaderName::from_static("x-consumer-groups"),
    "X-Consumer-Groups",
);
const CREDENTIAL: (HeaderName, &str) = (
    HeaderName::from_static("x-credential-identifier"),
    "X-Credential-Identifier",
);
const ANONYMOUS: (HeaderName, &str) = (
    HeaderName::from_static("x-anonymous-consumer"),
    "X-Anonymous-Consumer",
);

/// Tells the instance who called: removes any `X-Consumer-*` header the client sent, sets
/// them for `identity`, and removes the request's credentials when the policy hides them.
pub(crate) fn forward(
    upstream: &mut RequestHeader,
    identity: Option<&Identity>,
    gate: &Gate,
) -> pingora::Result<()> {
    for (name, _) in [&CONSUMER, &GROUPS, &CREDENTIAL, &ANONYMOUS] {
        // Looked up first: removing also searches the map of header spellings.
        if upstream.headers.contains_key(name) {
            upstream.remove_header(name);
        }
    }
    // CGI, PHP and WSGI servers read `X_Consumer_Username` as `X-Consumer-Username` (both
    // become HTTP_X_CONSUMER_USERNAME), so such spellings go too, as nginx drops every
    // header with an underscore by default.
    let lookalikes: Vec<HeaderName> = upstream
        .headers
        .keys()
        .filter(|k| k.as_str().contains('_'))
        .filter(|k| {
            let dashed = k.as_str().replace('_', "-");
            [&CONSUMER, &GROUPS, &CREDENTIAL, &ANONYMOUS]
                .iter()
                .any(|(name, _)| name.as_str() == dashed)
        })
        .cloned()
        .collect();
    for name in &lookalikes {
        upstream.remove_header(name);
    }
    let Some(identity) = identity else {
        return Ok(());
    };
    match gate.registry.get(identity.consumer) {
        Some(known) => {
            upstream.insert_header(CONSUMER.1, &known.name_header)?;
            if let Some(groups) = &known.groups_header {
                upstream.insert_header(GROUPS.1, groups)?;
            }
        }
        None => {
            upstream.insert_header(CONSUMER.1, crate::config::ANONYMOUS_CONSUMER)?;
            upstream.insert_header(ANONYMOUS.1, "true")?;
        }
    }
    if let Some(credential) = &identity.credential {
        upstream.insert_header(CREDENTIAL.1, credential)?;
    }
    let hide = &identity.hide;
    for name in &hide.headers {
        upstream.remove_header(name);
    }
    if hide.authorization {
        upstream.remove_header(&http::header::AUTHORIZATION);
    }
    if !hide.params.is_empty() {
        let path = upstream.uri.path();
        let rest = upstream
            .uri
            .query()
            .and_then(|q| auth::without_params(q, &hide.params));
        let uri = match rest {
            Some(query) => format!("{path}?{query}"),
            None => path.to_string(),
        };
        let uri = http::Uri::try_from(uri).map_err(|e| {
            pingora::Error::because(pingora::ErrorType::InternalError, "hiding the key", e)
        })?;
        upstream.set_uri(uri);
    }
    Ok(())
}
