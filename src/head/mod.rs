//! What weir accepts of a request head, before routing: the checks and rewrites every
//! request goes through first, so that routing, policies, the access log and the upstream
//! all see one well-formed request.

pub(crate) mod path;
