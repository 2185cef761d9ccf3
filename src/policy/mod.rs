//! Access policies on listeners and routes: who may pass, and as which consumer.

#[cfg_attr(not(test), allow(dead_code))] // used by the auth checks once they land
mod password;
