//! Property tests of the client address behind `trusted_proxies`: whatever
//! `X-Forwarded-For` lines a request carries, working out the client never panics, never
//! names an address that is neither the peer nor one written in those lines, and agrees
//! with a plain reading of the rule (the right-most entry that is not a trusted proxy, the
//! walk stopping at anything that is not an address); the headers sent upstream end the
//! chain with the peer and name that client.

use super::*;
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Addresses drawn often, so that peers, entries and trusted networks meet.
const POOL: &[&str] = &[
    "10.0.0.1",
    "10.0.0.2",
    "10.1.2.3",
    "192.0.2.7",
    "127.0.0.1",
    "::1",
    "2001:db8::1",
    "2001:db8::2",
    "::ffff:10.0.0.1",
    "::ffff:192.0.2.7",
];

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        3 => prop::sample::select(POOL).prop_map(|s| s.parse().unwrap()),
        1 => any::<u32>().prop_map(|n| IpAddr::V4(Ipv4Addr::from(n))),
        1 => any::<u128>().prop_map(|n| IpAddr::V6(Ipv6Addr::from(n))),
    ]
}

fn net() -> impl Strategy<Value = IpNet> {
    (ip(), any::<u8>()).prop_map(|(addr, len)| {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        IpNet::new(addr, len % (max + 1))
            .unwrap_or_else(|_| IpNet::from(addr))
            .trunc()
    })
}

/// One `X-Forwarded-For` entry as proxies and attackers write them.
fn entry() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (ip(), "[ \t]{0,2}", "[ \t]{0,2}").prop_map(|(ip, l, r)| format!("{l}{ip}{r}")),
        1 => ip().prop_map(|ip| format!("[{ip}]")),
        1 => ip().prop_map(|ip| format!("{ip}:8080")),
        1 => Just(String::new()),
        1 => Just("unknown".to_string()),
        1 => "[ -~]{0,16}",
    ]
}

/// The bytes of one header line: entries joined by commas, or any bytes a header value
/// may hold (visible ASCII, tabs, spaces, obs-text).
fn line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(entry(), 0..5).prop_map(|e| e.join(",").into_bytes()),
        1 => prop::collection::vec(
            prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff],
            0..24
        ),
    ]
}

/// The rule as documented, read from the lines collected into one list: right to left,
/// the client is the first entry that is not a trusted proxy; the walk stops at an entry
/// (or a line) that is not an address, leaving the last address read.
fn reference(policy: &HeaderPolicy, peer: IpAddr, lines: &[HeaderValue]) -> IpAddr {
    if !policy.is_trusted(peer) {
        return peer;
    }
    let mut entries: Vec<Option<IpAddr>> = Vec::new();
    for line in lines {
        match line.to_str() {
            Ok(text) => entries.extend(text.split(',').map(|e| e.trim().parse().ok())),
            Err(_) => entries.push(None),
        }
    }
    let mut client = peer;
    for entry in entries.into_iter().rev() {
        let Some(addr) = entry else { break };
        client = addr;
        if !policy.is_trusted(addr) {
            break;
        }
    }
    client
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_client_is_the_peer_or_an_address_the_request_names(
        peer in ip(),
        trusted in prop::collection::vec(net(), 0..4),
        lines in prop::collection::vec(line(), 0..4),
    ) {
        let policy = HeaderPolicy {
            request_id: HeaderName::from_static("x-request-id"),
            instance_header: None,
            trusted,
        };
        let mut req = RequestHeader::build("GET", b"/", None)?;
        let mut values = Vec::new();
        for bytes in &lines {
            let value = HeaderValue::from_bytes(bytes)?;
            req.append_header(X_FORWARDED_FOR, value.clone())?;
            values.push(value);
        }
        let client = policy.client(peer, &req);
        prop_assert_eq!(client.peer, peer);
        prop_assert_eq!(client.trusted, policy.is_trusted(peer));
        let named = values.iter().filter_map(|v| v.to_str().ok()).any(|text| {
            text.split(',').any(|e| e.trim().parse::<IpAddr>() == Ok(client.ip))
        });
        prop_assert!(
            client.ip == peer || (client.trusted && named),
            "{:?} is neither the peer nor in {:?}", client.ip, values
        );
        prop_assert_eq!(client.ip, reference(&policy, peer, &values), "lines {:?}", values);
        // What goes upstream: every line received from a trusted peer, then the peer; and
        // the client as worked out.
        policy.forward(&mut req, &client, &HeaderValue::from_static("id"), "http")?;
        let mut chain: Vec<&[u8]> = Vec::new();
        if client.trusted {
            chain.extend(values.iter().map(HeaderValue::as_bytes));
        }
        let peer_text = peer.to_string();
        chain.push(peer_text.as_bytes());
        let sent: Vec<&[u8]> =
            req.headers.get_all(X_FORWARDED_FOR).iter().map(HeaderValue::as_bytes).collect();
        let expected = chain.join(&b", "[..]);
        prop_assert_eq!(sent, vec![&expected[..]]);
        let real_ip = req.headers.get(X_REAL_IP).and_then(|v| v.to_str().ok()?.parse().ok());
        prop_assert_eq!(real_ip, Some(client.ip));
    }
}

/// Found by the property above: behind a peer trusting every address, `10.0.0.2` followed
/// by a line holding the byte 0x80 gave 10.0.0.2, read past the line that could not be.
#[test]
fn a_line_that_is_not_text_ends_the_walk() {
    let policy = HeaderPolicy {
        request_id: HeaderName::from_static("x-request-id"),
        instance_header: None,
        trusted: vec!["0.0.0.0/0".parse().unwrap()],
    };
    let mut req = RequestHeader::build("GET", b"/", None).unwrap();
    for line in [&b"10.0.0.2"[..], b"\x80"] {
        let value = HeaderValue::from_bytes(line).unwrap();
        req.append_header(X_FORWARDED_FOR, value).unwrap();
    }
    let peer: IpAddr = "10.0.0.1".parse().unwrap();
    assert_eq!(policy.client(peer, &req).ip, peer);
}

/// Found by the property above: from a trusted peer, only the first `X-Forwarded-For` line
/// went upstream, so a client's forged `6.6.6.6` reached the instance and the hop the proxy
/// appended as a line of its own (the real client) did not.
#[test]
fn every_forwarded_line_goes_upstream() {
    let policy = HeaderPolicy {
        request_id: HeaderName::from_static("x-request-id"),
        instance_header: None,
        trusted: vec!["10.0.0.0/8".parse().unwrap()],
    };
    let mut req = RequestHeader::build("GET", b"/", None).unwrap();
    req.append_header(X_FORWARDED_FOR, "6.6.6.6").unwrap();
    req.append_header(X_FORWARDED_FOR, "203.0.113.9").unwrap();
    let client = policy.client("10.0.0.1".parse().unwrap(), &req);
    assert_eq!(client.ip, "203.0.113.9".parse::<IpAddr>().unwrap());
    policy
        .forward(&mut req, &client, &HeaderValue::from_static("id"), "http")
        .unwrap();
    assert_eq!(
        req.headers.get(X_FORWARDED_FOR).unwrap(),
        "6.6.6.6, 203.0.113.9, 10.0.0.1"
    );
}
