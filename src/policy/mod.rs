//! Policies: what a request must satisfy before it goes upstream (JWT issuers and key sets
//! so far).

// Used by the auth policy, which lands separately.
#[allow(dead_code)]
mod jwks;
#[allow(dead_code)]
mod jwt;
