//! The signature on a pushed event, as the receiver checks it.
//!
//! Each delivery carries `Baohan-Signature: t=<unix seconds>,v1=<hex>`, where `v1` is
//! HMAC-SHA256, keyed with the endpoint's secret (the whole `whsec_…` text, as UTF-8), of
//! the bytes `t`, `.`, and the request body exactly as received. `t` is the exchange's
//! time at the try, so a redelivery days later is still fresh while a recorded request
//! played again later is not: a receiver refuses a `t` more than [`TOLERANCE_SECONDS`]
//! away from its own clock, and de-duplicates by the event id inside the window.
//!
//! HMAC under a secret per organization, not a signature under the exchange's key: an
//! event is a notice, not evidence (what it announces is read back over the signed-in
//! API), every receiver can check HMAC-SHA256 with its language's standard library, and
//! one organization's secret tells nothing of another's.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a receiver should let `t` be from its own clock, either way.
pub const TOLERANCE_SECONDS: i64 = 300;

/// The header carrying the signature.
pub const HEADER: &str = "Baohan-Signature";

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is not `t=<unix seconds>,v1=<hex>`")]
    Malformed,
    #[error("the signature's time is {0} s away from now, more than the {TOLERANCE_SECONDS} s allowed: a replay or a wrong clock")]
    Stale(i64),
    #[error("the signature does not match this body and secret")]
    Mismatch,
}

fn mac(secret: &str, t: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value for `body` sent at `t` (unix seconds) under `secret`.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let tag = mac(secret, t, body).finalize().into_bytes();
    format!("t={t},v1={}", hex::encode(tag))
}

/// Checks a received header against the body and the receiver's clock (`now`, unix
/// seconds). Every `v1` given is tried; the first that matches wins.
pub fn verify(secret: &str, header: &str, body: &[u8], now: i64) -> Result<(), SignatureError> {
    let mut t = None;
    let mut tags = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) if t.is_none() => {
                t = Some(v.parse::<i64>().map_err(|_| SignatureError::Malformed)?)
            }
            Some(("v1", v)) => tags.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?),
            // Later schemes are ignored, so receivers keep working when one is added.
            Some((k, _)) if k != "t" => {}
            _ => return Err(SignatureError::Malformed),
        }
    }
    let (Some(t), false) = (t, tags.is_empty()) else {
        return Err(SignatureError::Malformed);
    };
    let skew = now.saturating_sub(t).saturating_abs();
    if skew > TOLERANCE_SECONDS {
        return Err(SignatureError::Stale(skew));
    }
    let expected = mac(secret, t, body);
    if tags
        .iter()
        .any(|tag| expected.clone().verify_slice(tag).is_ok())
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_0123456789abcdef";
    const BODY: &[u8] = br#"{"id":"e1","type":"ping"}"#;

    #[test]
    fn a_signature_made_now_verifies_and_any_change_breaks_it() {
        let header = sign(SECRET, 1_800_000_000, BODY);
        assert_eq!(verify(SECRET, &header, BODY, 1_800_000_010), Ok(()));
        assert_eq!(
            verify(
                SECRET,
                &header,
                br#"{"id":"e2","type":"ping"}"#,
                1_800_000_010
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("whsec_other", &header, BODY, 1_800_000_010),
            Err(SignatureError::Mismatch)
        );
        // The time is signed: moving it forward to pass the window breaks the tag.
        let moved = header.replace("t=1800000000", "t=1800000600");
        assert_eq!(
            verify(SECRET, &moved, BODY, 1_800_000_600),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_replay_outside_the_window_is_refused_either_way() {
        let header = sign(SECRET, 1_800_000_000, BODY);
        assert_eq!(verify(SECRET, &header, BODY, 1_800_000_300), Ok(()));
        assert_eq!(verify(SECRET, &header, BODY, 1_799_999_700), Ok(()));
        assert_eq!(
            verify(SECRET, &header, BODY, 1_800_000_301),
            Err(SignatureError::Stale(301))
        );
        assert_eq!(
            verify(SECRET, &header, BODY, 1_799_999_699),
            Err(SignatureError::Stale(301))
        );
    }

    #[test]
    fn headers_out_of_shape_are_malformed_not_a_panic() {
        for header in [
            "",
            "t=1",
            "v1=00",
            "t=x,v1=00",
            "t=1,v1=zz",
            "garbage",
            "t=9223372036854775807,v1=00",
        ] {
            let got = verify(SECRET, header, BODY, 0);
            assert!(
                matches!(
                    got,
                    Err(SignatureError::Malformed | SignatureError::Stale(_))
                ),
                "{header}: {got:?}"
            );
        }
        // A scheme the receiver does not know is skipped, not an error.
        let header = format!("{},v2=abc", sign(SECRET, 5, BODY));
        assert_eq!(verify(SECRET, &header, BODY, 5), Ok(()));
    }
}
