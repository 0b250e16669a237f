//! Who is on the other end of a request: the socket peer, unless the peer is one of
//! the configured trusted proxies; then the address those proxies recorded.
//!
//! Each proxy appends the address it was connected from to `X-Forwarded-For` (or
//! `Forwarded: for=`), so the list reads client, proxy, proxy, ... and only its right
//! end was written by proxies we trust. Reading from the right and skipping our own
//! proxies, the first other address is the client as our outermost proxy saw it;
//! whatever a client writes into the header itself stays to the left of that and is
//! never read. From a peer that is not a trusted proxy the headers are ignored.

use std::net::{IpAddr, SocketAddr};

use actix_web::http::header::{HeaderMap, HeaderName, FORWARDED};

use crate::config::TrustedProxies;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The client's address: `peer` itself, or (when `peer` is a trusted proxy) the
/// right-most forwarded address that is not a trusted proxy. When the forwarded list
/// ends in something that is not an address (`unknown`, an obfuscated name), the last
/// address before it is taken: the proxy that could not say.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let mut client = peer.to_canonical();
    if !trusted.contains(client) {
        return client;
    }
    for hop in forwarded_hops(headers).into_iter().rev() {
        let Some(hop) = hop else {
            break;
        };
        client = hop;
        if !trusted.contains(hop) {
            break;
        }
    }
    client
}

/// The forwarded addresses, left (farthest) to right (nearest), `None` where an entry
/// is not an address. `X-Forwarded-For` when present, else `Forwarded`; several header
/// lines count as one list in their order.
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let lines = |name| {
        headers
            .get_all(name)
            .map(|value| value.to_str().unwrap_or_default())
            .flat_map(|line| line.split(','))
    };
    if headers.contains_key(X_FORWARDED_FOR) {
        lines(X_FORWARDED_FOR).map(parse_node).collect()
    } else {
        lines(FORWARDED)
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(key, _)| key.trim().eq_ignore_ascii_case("for"))
                    .and_then(|(_, node)| parse_node(node))
            })
            .collect()
    }
}

/// One node: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`,
/// optionally quoted (as `Forwarded` writes IPv6).
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim().trim_matches('"');
    let address = node
        .parse::<IpAddr>()
        .or_else(|_| node.parse::<SocketAddr>().map(|s| s.ip()))
        .or_else(|_| {
            node.strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .unwrap_or_default()
                .parse::<IpAddr>()
        })
        .ok()?;
    Some(address.to_canonical())
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        map
    }

    fn proxies(list: &str) -> TrustedProxies {
        list.parse().expect("proxies")
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.7"),
            ("forwarded", "for=198.51.100.8"),
        ]);
        assert_eq!(
            client_address(ip("203.0.113.5"), &h, &TrustedProxies::default()),
            ip("203.0.113.5")
        );
        assert_eq!(
            client_address(ip("203.0.113.5"), &h, &proxies("10.0.0.0/8")),
            ip("203.0.113.5")
        );
    }

    #[test]
    fn behind_a_trusted_proxy_the_right_most_untrusted_address_is_the_client() {
        let trusted = proxies("10.0.0.0/8, 127.0.0.1");
        // The client wrote "1.1.1.1" itself; our two proxies appended what they saw.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.7, 10.0.0.2")]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &h, &trusted),
            ip("198.51.100.7")
        );
        // Several header lines are one list.
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "198.51.100.7:5555"),
        ]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &h, &trusted),
            ip("198.51.100.7")
        );
        // An IPv4 peer on an IPv6 socket.
        let h = headers(&[("x-forwarded-for", "2001:db8::7")]);
        assert_eq!(
            client_address(ip("::ffff:10.0.0.1"), &h, &trusted),
            ip("2001:db8::7")
        );
    }

    #[test]
    fn forwarded_is_read_when_x_forwarded_for_is_absent() {
        let trusted = proxies("10.0.0.1");
        let h = headers(&[(
            "forwarded",
            "for=192.0.2.60;proto=http, For=\"[2001:db8:cafe::17]:4711\";by=10.0.0.1",
        )]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &h, &trusted),
            ip("2001:db8:cafe::17")
        );
        // With both, X-Forwarded-For counts.
        let h = headers(&[
            ("forwarded", "for=192.0.2.60"),
            ("x-forwarded-for", "198.51.100.9"),
        ]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &h, &trusted),
            ip("198.51.100.9")
        );
    }

    #[test]
    fn without_a_usable_forwarded_address_the_nearest_known_one_is_taken() {
        let trusted = proxies("10.0.0.0/8");
        // No header: the proxy itself.
        assert_eq!(
            client_address(ip("10.0.0.1"), &HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
        // Garbage from the right: stop there, never read past it to the left.
        let h = headers(&[("x-forwarded-for", "198.51.100.7, unknown, 10.0.0.3")]);
        assert_eq!(client_address(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.3"));
        let h = headers(&[("forwarded", "for=_hidden, for=10.0.0.4")]);
        assert_eq!(client_address(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.4"));
        // Only trusted proxies in the list: the farthest of them.
        let h = headers(&[("x-forwarded-for", "10.0.0.9, 10.0.0.8")]);
        assert_eq!(client_address(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.9"));
    }
}
