//! What a hostile client can do to weir's view of its instances, through the real binary:
//! requests it gets wrong on purpose must cost it an error, never an instance its place.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

mod common;

use common::*;
use std::collections::HashSet;

#[test]
fn a_request_the_client_got_wrong_ejects_no_instance() {
    let (a, b) = (Instance::start("a"), Instance::start("b"));
    let weir = Weir::start(&single_upstream("round_robin", &[(&a, 1), (&b, 1)], ""));
    let c = client();
    // `Connection` may not nominate X-Forwarded-For: weir refuses the request itself.
    for _ in 0..4 {
        let resp = c
            .get(weir.url("/"))
            .header("Connection", "keep-alive, X-Forwarded-For")
            .send()
            .unwrap();
        assert_eq!(resp.status(), 400);
    }
    let served: HashSet<String> = serving(&weir, 6).into_iter().collect();
    assert_eq!(served.len(), 2, "an instance was ejected: {served:?}");
}
