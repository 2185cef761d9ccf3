//! What weir accepts of a request head, before routing.

pub(crate) mod framing;
