//! Client address rules: nginx's `allow` / `deny`, with deny winning whatever the order.

use crate::config::IpRules;
use std::net::IpAddr;

/// Whether `rules` let `client` in: not denied, and allowed when an allow list is given.
/// `client` is the address weir derived (the peer, or what a trusted proxy forwarded), never
/// a header an untrusted peer wrote.
pub(crate) fn permits(rules: &IpRules, client: IpAddr) -> bool {
    let client = canonical(client);
    let listed = |nets: &[ipnet::IpNet]| nets.iter().any(|n| n.contains(&client));
    !listed(&rules.deny) && (rules.allow.is_empty() || listed(&rules.allow))
}

/// An IPv4 client on a dual-stack socket arrives as `::ffff:a.b.c.d`; rules written for
/// IPv4 must see it as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(allow: &[&str], deny: &[&str]) -> IpRules {
        let nets = |l: &[&str]| l.iter().map(|n| n.parse().unwrap()).collect();
        IpRules {
            allow: nets(allow),
            deny: nets(deny),
        }
    }

    #[test]
    fn deny_wins_and_an_allow_list_refuses_the_rest() {
        let r = rules(&["10.0.0.0/8"], &["10.0.6.6/32"]);
        assert!(permits(&r, "10.1.2.3".parse().unwrap()));
        assert!(!permits(&r, "10.0.6.6".parse().unwrap()));
        assert!(!permits(&r, "192.168.1.1".parse().unwrap()));
        assert!(
            permits(&r, "::ffff:10.1.2.3".parse().unwrap()),
            "mapped IPv4"
        );
        let deny_only = rules(&[], &["127.0.0.3/32"]);
        assert!(permits(&deny_only, "127.0.0.2".parse().unwrap()));
        assert!(!permits(&deny_only, "127.0.0.3".parse().unwrap()));
    }
}
