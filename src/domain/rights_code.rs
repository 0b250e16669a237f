//! Credit rights code (信用权益码): what a resident or an enterprise shows a hospital,
//! a hotel or a library instead of paying a deposit, as text and as a QR code.
//!
//! A code names one issued code (a random id the exchange keeps with its subject, its
//! scope and whether it was used) and the moment it expires, sealed with a MAC under a
//! key derived from the exchange's master key. The seal lets the exchange refuse a
//! forged or altered code, and an expired one, before it reads anything; being used
//! once is the database's to decide (a conditional update on the stored code), never
//! the text's.
//!
//! Text: `BHQ1` and the base 32 (RFC 4648, no padding) of 16 bytes of id, 8 bytes of
//! expiry (Unix seconds, big-endian) and the first 16 bytes of HMAC-SHA256 over a
//! domain label, the id and the expiry: 68 characters, all in the QR alphanumeric set,
//! read back in either case and with spaces or hyphens a person may type between
//! groups.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

/// What every code starts with: the kind and its version.
pub const PREFIX: &str = "BHQ1";
/// Bytes of the random id.
pub const ID_LEN: usize = 16;
/// Bytes of the MAC kept (128 bits).
const MAC_LEN: usize = 16;
const BODY_LEN: usize = ID_LEN + 8 + MAC_LEN;
/// Separates this MAC from any other made with a key of the same master.
const LABEL: &[u8] = b"baohan credit rights code v1";

/// The id of an issued code.
pub type CodeId = [u8; ID_LEN];

/// Why a code's text was refused, before any lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RightsCodeError {
    /// Not a code at all: wrong prefix, length or characters.
    #[error("not a credit rights code")]
    Malformed,
    /// The seal does not match: made or changed by someone without the key.
    #[error("the credit rights code is forged or altered")]
    Forged,
    /// Genuine, but past its expiry.
    #[error("the credit rights code has expired")]
    Expired,
}

/// A code whose seal holds and that has not expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    pub id: CodeId,
    pub expires_at: DateTime<Utc>,
}

fn mac(key: &[u8; 32], id: &CodeId, expires: i64) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(LABEL);
    mac.update(id);
    mac.update(&expires.to_be_bytes());
    mac
}

/// The text of the code `id` expiring at `expires_at` (to the second).
pub fn seal(key: &[u8; 32], id: &CodeId, expires_at: DateTime<Utc>) -> String {
    let expires = expires_at.timestamp();
    let tag = mac(key, id, expires).finalize().into_bytes();
    let mut body = Vec::with_capacity(BODY_LEN);
    body.extend_from_slice(id);
    body.extend_from_slice(&expires.to_be_bytes());
    body.extend_from_slice(&tag[..MAC_LEN]);
    format!("{PREFIX}{}", data_encoding::BASE32_NOPAD.encode(&body))
}

/// Reads a code's text as typed or scanned, checks its seal under `key` and its expiry
/// against `now` (the exchange's clock), in that order: an altered expiry is forged,
/// not expired.
pub fn open(key: &[u8; 32], text: &str, now: DateTime<Utc>) -> Result<Opened, RightsCodeError> {
    // Long input is refused before it is copied.
    if text.len() > 4 * (PREFIX.len() + 64) {
        return Err(RightsCodeError::Malformed);
    }
    let compact: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '\t' | '\r' | '\n'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let encoded = compact
        .strip_prefix(PREFIX)
        .ok_or(RightsCodeError::Malformed)?;
    let body = data_encoding::BASE32_NOPAD
        .decode(encoded.as_bytes())
        .map_err(|_| RightsCodeError::Malformed)?;
    if body.len() != BODY_LEN {
        return Err(RightsCodeError::Malformed);
    }
    let (id, rest) = body.split_at(ID_LEN);
    let (expires, tag) = rest.split_at(8);
    let id: CodeId = id.try_into().map_err(|_| RightsCodeError::Malformed)?;
    let expires = i64::from_be_bytes(expires.try_into().map_err(|_| RightsCodeError::Malformed)?);
    mac(key, &id, expires)
        .verify_truncated_left(tag)
        .map_err(|_| RightsCodeError::Forged)?;
    let expires_at = DateTime::from_timestamp(expires, 0).ok_or(RightsCodeError::Forged)?;
    if now >= expires_at {
        return Err(RightsCodeError::Expired);
    }
    Ok(Opened { id, expires_at })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use proptest::prelude::*;

    const KEY: [u8; 32] = [7; 32];

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).expect("a time")
    }

    #[test]
    fn a_sealed_code_opens_until_it_expires() {
        let id = [42; ID_LEN];
        let expires = now() + Duration::minutes(5);
        let text = seal(&KEY, &id, expires);
        assert_eq!(text.len(), 68);
        assert!(text.starts_with(PREFIX));
        let opened = open(&KEY, &text, now()).expect("opens");
        assert_eq!(
            opened,
            Opened {
                id,
                expires_at: expires
            }
        );
        assert_eq!(
            open(&KEY, &text, expires - Duration::seconds(1)).map(|o| o.id),
            Ok(id)
        );
        assert_eq!(open(&KEY, &text, expires), Err(RightsCodeError::Expired));
    }

    #[test]
    fn typed_in_lowercase_or_in_groups_it_still_opens() {
        let id = [1; ID_LEN];
        let text = seal(&KEY, &id, now() + Duration::minutes(5));
        let grouped: Vec<String> = text
            .to_lowercase()
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8(c.to_vec()).expect("ascii"))
            .collect();
        assert_eq!(
            open(&KEY, &grouped.join(" - "), now()).map(|o| o.id),
            Ok(id)
        );
    }

    #[test]
    fn another_key_or_a_later_expiry_is_forged() {
        let id = [9; ID_LEN];
        let text = seal(&KEY, &id, now() + Duration::minutes(5));
        assert_eq!(open(&[8; 32], &text, now()), Err(RightsCodeError::Forged));
        // Rewriting the expiry (the same id, a day later) without the key.
        let later = seal(&[8; 32], &id, now() + Duration::days(1));
        let mut spliced = later[..PREFIX.len() + 39].to_owned();
        spliced.push_str(&text[PREFIX.len() + 39..]);
        assert_eq!(open(&KEY, &spliced, now()), Err(RightsCodeError::Forged));
        // Even expired, a forged code says forged: the seal is checked first.
        assert_eq!(
            open(&KEY, &later, now() + Duration::days(2)),
            Err(RightsCodeError::Forged)
        );
    }

    #[test]
    fn what_is_not_a_code_is_malformed() {
        let text = seal(&KEY, &[3; ID_LEN], now() + Duration::minutes(5));
        for bad in [
            String::new(),
            "BHQ1".to_owned(),
            text.replacen(PREFIX, "BHQ2", 1),
            text[..text.len() - 1].to_owned(),
            format!("{text}A"),
            text.replace('A', "1"),
            "x".repeat(10_000),
            format!("{text}\u{202e}"),
        ] {
            if bad == text {
                continue;
            }
            let found = open(&KEY, &bad, now());
            assert!(
                matches!(
                    found,
                    Err(RightsCodeError::Malformed | RightsCodeError::Forged)
                ),
                "{bad:?}: {found:?}"
            );
        }
        assert_eq!(open(&KEY, "", now()), Err(RightsCodeError::Malformed));
        assert_eq!(
            open(&KEY, &"x".repeat(10_000), now()),
            Err(RightsCodeError::Malformed)
        );
    }

    proptest! {
        /// Changing any one character of a code never leaves a code that opens to
        /// something else: it is refused, or (a change of case) the same code.
        #[test]
        fn one_character_changed_never_opens_to_another_code(
            id in any::<[u8; ID_LEN]>(),
            at in 0usize..68,
            to in prop::sample::select(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567abcz019".to_vec()),
        ) {
            let text = seal(&KEY, &id, now() + Duration::minutes(5));
            let mut bytes = text.clone().into_bytes();
            bytes[at] = to;
            let changed = String::from_utf8(bytes).expect("ascii");
            match open(&KEY, &changed, now()) {
                Ok(opened) => {
                    prop_assert_eq!(changed.to_ascii_uppercase(), text);
                    prop_assert_eq!(opened.id, id);
                }
                Err(e) => prop_assert_ne!(e, RightsCodeError::Expired),
            }
        }
    }
}
