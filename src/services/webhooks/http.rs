//! One delivery over HTTP(S): a POST that counts as delivered on a 2xx answer only.
//!
//! Redirects are not followed (the endpoint is the address the organization gave), and
//! unless private addresses are allowed every name is resolved here and refused when it
//! points at a loopback, private, link-local or otherwise non-public address: an
//! organization must not be able to aim the exchange at the network it runs in, not by
//! an address in the URL nor by a name that resolves there (checked at every delivery, so
//! a name changed after registration is caught too).

use std::io::Read;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

/// How a delivery ended, as the delivery log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    /// Why the try failed; `None` when delivered.
    pub error: Option<String>,
}

impl Outcome {
    pub fn delivered(&self) -> bool {
        self.error.is_none()
    }
}

/// Whether an address is one the exchange may call on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                // Shared address space (carrier-grade NAT) and "this network".
                || (a == 100 && (64..128).contains(&b))
                || a == 0
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // Unique local (fc00::/7) and link-local (fe80::/10).
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// Resolves names and keeps only public addresses.
struct PublicOnly;

impl ureq::Resolver for PublicOnly {
    fn resolve(&self, netloc: &str) -> std::io::Result<Vec<SocketAddr>> {
        let all: Vec<SocketAddr> = netloc.to_socket_addrs()?.collect();
        let public: Vec<SocketAddr> = all.into_iter().filter(|a| is_public(a.ip())).collect();
        if public.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "the endpoint resolves to no public address",
            ));
        }
        Ok(public)
    }
}

/// The client deliveries go through.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

/// How much of an answer is read (and then dropped): enough to reuse the connection
/// for a short answer, never a receiver's whole reply.
const ANSWER_BYTES: u64 = 4096;

impl Client {
    pub fn new(timeout: Duration, allow_private: bool) -> Result<Client, String> {
        let tls = native_tls::TlsConnector::new().map_err(|e| format!("TLS: {e}"))?;
        let mut builder = ureq::AgentBuilder::new()
            .timeout(timeout)
            .redirects(0)
            .user_agent("Baohan-Webhooks/1")
            .tls_connector(Arc::new(tls));
        if !allow_private {
            builder = builder.resolver(PublicOnly);
        }
        Ok(Client {
            agent: builder.build(),
        })
    }

    /// POSTs `body` with `headers`; delivered on a 2xx answer.
    pub fn post(&self, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Outcome {
        let mut request = self.agent.post(url).set("Content-Type", "application/json");
        for (name, value) in headers {
            request = request.set(name, value);
        }
        let answer = match request.send_bytes(body) {
            Ok(response) => response,
            Err(ureq::Error::Status(status, response)) => {
                drain(response);
                return Outcome {
                    status: Some(status),
                    error: Some(format!("the receiver answered {status}")),
                };
            }
            Err(ureq::Error::Transport(e)) => {
                return Outcome {
                    status: None,
                    error: Some(e.to_string()),
                }
            }
        };
        let status = answer.status();
        drain(answer);
        if (200..300).contains(&status) {
            Outcome {
                status: Some(status),
                error: None,
            }
        } else {
            Outcome {
                status: Some(status),
                error: Some(format!(
                    "the receiver answered {status} (redirects are not followed)"
                )),
            }
        }
    }
}

fn drain(response: ureq::Response) {
    let mut sink = Vec::new();
    let _ = response
        .into_reader()
        .take(ANSWER_BYTES)
        .read_to_end(&mut sink);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "203.0.114.1", "2400:3200::1", "::ffff:8.8.8.8"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn a_name_resolving_to_loopback_is_refused_before_connecting() {
        use ureq::Resolver;
        let refused = PublicOnly.resolve("localhost:443").unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::PermissionDenied);
        let client = Client::new(Duration::from_secs(2), false).unwrap();
        let outcome = client.post("http://127.0.0.1:9/", &[], b"{}");
        assert_eq!(outcome.status, None);
        assert!(
            outcome
                .error
                .as_deref()
                .unwrap_or("")
                .contains("no public address"),
            "{outcome:?}"
        );
    }
}
