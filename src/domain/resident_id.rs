//! Resident identity card number (居民身份证号码, GB 11643-1999).
//!
//! A number is accepted when its check character is right and it is plausible: the
//! region code in positions 1–6 lies under a real province (the residence permits of
//! Hong Kong, Macao and Taiwan residents, 港澳台居民居住证, use 81, 82 and 83), and
//! the birth date in positions 7–14 is a real date from 1900 on and not after the day
//! the caller says it is today (the exchange's clock, never the client's).
//!
//! Personal data: never stored in clear. Keep [`ResidentId::hmac_hex`] for lookup and
//! [`ResidentId::masked`] for display. `Debug` and `Display` print only the masked form,
//! and errors never echo more than one character of the input.

use std::fmt;

use chrono::NaiveDate;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

/// ISO 7064 MOD 11-2 weights (2^(18-i) mod 11) for positions 1..=17.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character indexed by (weighted sum mod 11).
const CHECK_MAP: &[u8; 11] = b"10X98765432";
const LEN: usize = 18;
/// The earliest birth date accepted.
pub const EARLIEST_BIRTH: NaiveDate = match NaiveDate::from_ymd_opt(1900, 1, 1) {
    Some(d) => d,
    None => panic!("1900-01-01 is a date"),
};
/// The prefix of Taiwan residents' residence permits (their region code is 830000).
const TAIWAN_RESIDENCE_PERMIT: u32 = 83;

/// A valid 18-character resident ID number, check character `X` in uppercase.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ResidentId(String);

/// Why a resident ID number was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ResidentIdError {
    /// Not 18 characters (or not 17 for a body).
    #[error("resident ID number must be {expected} characters, found {found}")]
    WrongLength {
        /// Required length.
        expected: usize,
        /// Length given, in characters.
        found: usize,
    },
    /// Not a digit in positions 1..=17, not a digit or X in position 18.
    #[error("resident ID number has invalid character {ch:?} at position {position}; positions 1-17 are digits, position 18 a digit or X")]
    InvalidCharacter {
        /// The refused character.
        ch: char,
        /// 1-based position.
        position: usize,
    },
    /// Positions 7..=14 are not a real calendar date.
    #[error("resident ID number has an impossible birth date in positions 7-14")]
    InvalidBirthDate,
    /// A birth date before [`EARLIEST_BIRTH`].
    #[error("resident ID number has a birth date before 1900 in positions 7-14")]
    BornTooEarly,
    /// A birth date after today.
    #[error("resident ID number has a birth date in the future in positions 7-14")]
    BornInFuture,
    /// Positions 1..=6 are not a region under a real province.
    #[error("resident ID number has no real region code in positions 1-6")]
    UnknownRegion,
    /// The 18th character does not match the first 17 (the expected one is not echoed:
    /// it would help guess a valid number).
    #[error("resident ID number check character is wrong; the number is probably mistyped")]
    WrongCheck,
}

impl ResidentId {
    /// Parses and validates: 17 digits, a real region code in positions 1..=6, a real
    /// birth date from 1900 to `today` in positions 7..=14, and the MOD 11-2 check
    /// character (`x` is accepted and stored as `X`).
    pub fn parse(s: &str, today: NaiveDate) -> Result<ResidentId, ResidentIdError> {
        let chars: Vec<char> = s.chars().collect();
        let body: String = chars.iter().take(LEN - 1).collect();
        let digits = body_digits(&body, chars.len(), LEN)?;
        let check = match chars[LEN - 1] {
            'x' => 'X',
            c if c.is_ascii_digit() || c == 'X' => c,
            ch => return Err(ResidentIdError::InvalidCharacter { ch, position: LEN }),
        };
        check_plausible(&body, &digits, today)?;
        if check != check_char(&digits) {
            return Err(ResidentIdError::WrongCheck);
        }
        Ok(ResidentId(format!("{body}{check}")))
    }

    /// Builds a valid number from its first 17 digits by appending the check character;
    /// the region and birth date must be plausible as of `today`.
    pub fn from_body(first17: &str, today: NaiveDate) -> Result<ResidentId, ResidentIdError> {
        let digits = body_digits(first17, first17.chars().count(), LEN - 1)?;
        check_plausible(first17, &digits, today)?;
        Ok(ResidentId(format!("{first17}{}", check_char(&digits))))
    }

    /// The check character of 17 digits, whether or not they are a plausible number
    /// (for tests and tools that need a number the check alone would pass).
    pub fn compute_check(first17: &str) -> Result<char, ResidentIdError> {
        let digits = body_digits(first17, first17.chars().count(), LEN - 1)?;
        Ok(check_char(&digits))
    }

    /// Display form: first 6 and last 4 characters, 8 stars between
    /// (`371602********1234`).
    pub fn masked(&self) -> String {
        format!("{}********{}", &self.0[..6], &self.0[LEN - 4..])
    }

    /// HMAC-SHA256 of the number under `key`, lowercase hex: the stored lookup key.
    pub fn hmac_hex(&self, key: &[u8]) -> String {
        // HMAC takes keys of any length (long ones are hashed), so this cannot fail.
        let mut mac =
            Hmac::<Sha256>::new_from_slice(key).expect("HMAC-SHA256 accepts keys of any length");
        mac.update(self.0.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The birth date encoded in positions 7..=14.
    pub fn birth_date(&self) -> NaiveDate {
        let digits: Vec<u32> = self
            .0
            .bytes()
            .take(14)
            .map(|b| u32::from(b - b'0'))
            .collect();
        // Validated at construction; the fallback is never taken.
        birth_date_of(&digits).unwrap_or_default()
    }

    /// The number in clear. Only for the rare place that must transmit it (e.g. to an
    /// issuer's identity check); never log or store the result.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Checks `s` has `expected_len` characters (its count is `count`) and that the first
/// 17 are ASCII digits; returns their values.
fn body_digits(s: &str, count: usize, expected_len: usize) -> Result<Vec<u32>, ResidentIdError> {
    for (index, ch) in s.chars().take(LEN - 1).enumerate() {
        if !ch.is_ascii_digit() {
            return Err(ResidentIdError::InvalidCharacter {
                ch,
                position: index + 1,
            });
        }
    }
    if count != expected_len {
        return Err(ResidentIdError::WrongLength {
            expected: expected_len,
            found: count,
        });
    }
    Ok(s.bytes()
        .take(LEN - 1)
        .map(|b| u32::from(b - b'0'))
        .collect())
}

/// Birth date from digits at positions 7..=14 (YYYYMMDD); needs at least 14 digits.
fn birth_date_of(digits: &[u32]) -> Result<NaiveDate, ResidentIdError> {
    let number = |range: std::ops::Range<usize>| {
        digits
            .get(range)
            .map(|ds| ds.iter().fold(0u32, |acc, d| acc * 10 + d))
    };
    let (Some(year), Some(month), Some(day)) = (number(6..10), number(10..12), number(12..14))
    else {
        return Err(ResidentIdError::InvalidBirthDate);
    };
    i32::try_from(year)
        .ok()
        .and_then(|year| NaiveDate::from_ymd_opt(year, month, day))
        .ok_or(ResidentIdError::InvalidBirthDate)
}

/// The region and birth date of a body of 17 digits, as of `today`.
fn check_plausible(body: &str, digits: &[u32], today: NaiveDate) -> Result<(), ResidentIdError> {
    let region = &body[..6];
    let permit = region[..2].parse::<u32>() == Ok(TAIWAN_RESIDENCE_PERMIT);
    if !(super::region::is_region_code(region) || permit) {
        return Err(ResidentIdError::UnknownRegion);
    }
    let born = birth_date_of(digits)?;
    if born < EARLIEST_BIRTH {
        return Err(ResidentIdError::BornTooEarly);
    }
    if born > today {
        return Err(ResidentIdError::BornInFuture);
    }
    Ok(())
}

/// MOD 11-2 check character of 17 digits.
fn check_char(digits: &[u32]) -> char {
    let sum: u32 = digits.iter().zip(WEIGHTS).map(|(d, w)| d * w).sum();
    char::from(CHECK_MAP[(sum % 11) as usize])
}

impl fmt::Debug for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResidentId({})", self.masked())
    }
}

impl fmt::Display for ResidentId {
    /// The masked form; use [`ResidentId::expose`] for the clear number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Hand check of 11010519491231002X: digits 1 1 0 1 0 5 1 9 4 9 1 2 3 1 0 0 2,
    // weighted 7+9+0+5+0+20+2+9+24+27+7+18+30+5+0+0+4 = 167; 167 mod 11 = 2 -> 'X'.
    const WITH_X: &str = "11010519491231002X";
    // 37160219900307123?: weighted 21+63+10+30+0+8+2+9+54+0+0+27+0+35+8+8+6 = 281;
    // 281 mod 11 = 6 -> '6'.
    const WITH_DIGIT: &str = "371602199003071236";
    /// The day the tests take as today.
    const TODAY: NaiveDate = match NaiveDate::from_ymd_opt(2026, 12, 3) {
        Some(d) => d,
        None => panic!("a date"),
    };

    #[test]
    fn weights_are_powers_of_two_mod_11() {
        for (i, weight) in WEIGHTS.iter().enumerate() {
            assert_eq!(*weight, (1u32 << (17 - i)) % 11);
        }
    }

    #[test]
    fn accepts_valid_numbers_and_normalises_x() {
        assert_eq!(ResidentId::parse(WITH_X, TODAY).unwrap().expose(), WITH_X);
        assert_eq!(
            ResidentId::parse("11010519491231002x", TODAY)
                .unwrap()
                .expose(),
            WITH_X
        );
        let id = ResidentId::parse(WITH_DIGIT, TODAY).unwrap();
        assert_eq!(
            id.birth_date(),
            NaiveDate::from_ymd_opt(1990, 3, 7).unwrap()
        );
        assert_eq!(
            ResidentId::from_body("37160219900307123", TODAY).unwrap(),
            id
        );
        assert_eq!(
            ResidentId::from_body("11010519491231002", TODAY)
                .unwrap()
                .expose(),
            WITH_X
        );
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        use ResidentIdError as E;
        let cases: &[(&str, ResidentIdError)] = &[
            (
                "",
                E::WrongLength {
                    expected: 18,
                    found: 0,
                },
            ),
            (
                "37160219900307123",
                E::WrongLength {
                    expected: 18,
                    found: 17,
                },
            ),
            (
                "3716021990030712366",
                E::WrongLength {
                    expected: 18,
                    found: 19,
                },
            ),
            (
                " 371602199003071236",
                E::InvalidCharacter {
                    ch: ' ',
                    position: 1,
                },
            ),
            (
                "37160219900307123Y",
                E::InvalidCharacter {
                    ch: 'Y',
                    position: 18,
                },
            ),
            (
                "3716021990030712X6",
                E::InvalidCharacter {
                    ch: 'X',
                    position: 17,
                },
            ),
            (
                "37160219900307123７",
                E::InvalidCharacter {
                    ch: '７',
                    position: 18,
                },
            ),
            ("371602199013071236", E::InvalidBirthDate),
            ("371602199002301236", E::InvalidBirthDate),
            ("371602199000071236", E::InvalidBirthDate),
            ("371602199003071237", E::WrongCheck),
            ("371602199003071263", E::WrongCheck),
        ];
        for (input, expected) in cases {
            assert_eq!(
                ResidentId::parse(input, TODAY).as_ref(),
                Err(expected),
                "{input:?}"
            );
        }
    }

    #[test]
    fn birth_dates_follow_the_calendar() {
        assert!(ResidentId::from_body("11010520000229002", TODAY).is_ok());
        assert_eq!(
            ResidentId::from_body("11010519000229002", TODAY),
            Err(ResidentIdError::InvalidBirthDate)
        );
        assert_eq!(
            ResidentId::from_body("11010520230229002", TODAY),
            Err(ResidentIdError::InvalidBirthDate)
        );
        assert!(ResidentId::from_body("11010520240229002", TODAY).is_ok());
        assert_eq!(
            ResidentId::from_body("11010519490431002", TODAY),
            Err(ResidentIdError::InvalidBirthDate)
        );
    }

    #[test]
    fn never_prints_the_number_in_clear() {
        let id = ResidentId::parse(WITH_DIGIT, TODAY).unwrap();
        assert_eq!(id.masked(), "371602********1236");
        assert_eq!(id.to_string(), "371602********1236");
        assert_eq!(format!("{id:?}"), "ResidentId(371602********1236)");
        assert!(!format!("{id:?} {id} {id:#?}").contains("19900307"));
    }

    #[test]
    fn hmac_is_keyed_lowercase_hex_sha256() {
        let id = ResidentId::parse(WITH_DIGIT, TODAY).unwrap();
        let a = id.hmac_hex(b"key one");
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));
        assert_eq!(a, id.hmac_hex(b"key one"));
        assert_ne!(a, id.hmac_hex(b"key two"));
        assert_ne!(
            a,
            ResidentId::parse(WITH_X, TODAY)
                .unwrap()
                .hmac_hex(b"key one")
        );
        // Lowercase x input hashes like uppercase X.
        assert_eq!(
            ResidentId::parse("11010519491231002x", TODAY)
                .unwrap()
                .hmac_hex(b"k"),
            ResidentId::parse(WITH_X, TODAY).unwrap().hmac_hex(b"k")
        );
        // RFC 4231 style: an empty key and a key longer than the block size both work.
        assert_eq!(id.hmac_hex(b"").len(), 64);
        assert_eq!(id.hmac_hex(&[7u8; 200]).len(), 64);
    }

    #[test]
    fn hmac_matches_a_known_answer() {
        // Computed independently: printf %s 371602199003071236 |
        //   openssl dgst -sha256 -hmac secret
        let id = ResidentId::parse(WITH_DIGIT, TODAY).unwrap();
        assert_eq!(id.hmac_hex(b"secret"), KNOWN_HMAC);
    }
    const KNOWN_HMAC: &str = "46bbf435f7843deed1e2b800c303847a01777d563b45a61443924ab1ab0acdf5";

    #[test]
    fn implausible_numbers_are_refused() {
        use ResidentIdError as E;
        let cases: &[(&str, ResidentIdError)] = &[
            ("37160220991231123", E::BornInFuture),
            ("37160220261204123", E::BornInFuture),
            ("37160218000101123", E::BornTooEarly),
            ("37160218991231123", E::BornTooEarly),
            ("00000019900307123", E::UnknownRegion),
            ("99160219900307123", E::UnknownRegion),
            ("10000019900307123", E::UnknownRegion),
        ];
        for (body, expected) in cases {
            assert_eq!(
                ResidentId::from_body(body, TODAY).as_ref(),
                Err(expected),
                "{body}"
            );
            // With a correct check character the number is refused all the same.
            let number = format!("{body}{}", ResidentId::compute_check(body).unwrap());
            assert_eq!(
                ResidentId::parse(&number, TODAY).as_ref(),
                Err(expected),
                "{number}"
            );
        }
        // Born today, or on 1900-01-01: plausible. A Taiwan resident's permit: 83.
        assert!(ResidentId::from_body("37160220261203123", TODAY).is_ok());
        assert!(ResidentId::from_body("37160219000101123", TODAY).is_ok());
        assert!(ResidentId::from_body("83000019900307123", TODAY).is_ok());
        assert!(ResidentId::from_body("81000019900307123", TODAY).is_ok());
        // Tomorrow the number born "tomorrow" is fine: "today" is the caller's clock.
        let tomorrow = TODAY.succ_opt().unwrap();
        assert!(ResidentId::from_body("37160220261204123", tomorrow).is_ok());
        let message = E::BornInFuture.to_string();
        assert!(!message.contains("2026"), "{message}");
    }

    fn valid_id() -> impl Strategy<Value = ResidentId> {
        (
            (10u32..=83).prop_filter("province", |p| {
                crate::domain::region::is_province(*p) || *p == TAIWAN_RESIDENCE_PERMIT
            }),
            0u32..10_000,
            (1900i32..=2026, 1u32..=12, 1u32..=31),
            0u32..=999,
        )
            .prop_filter_map("real date by today", |(province, area, (y, m, d), seq)| {
                (NaiveDate::from_ymd_opt(y, m, d)? <= TODAY).then_some(())?;
                let body = format!("{province:02}{area:04}{y:04}{m:02}{d:02}{seq:03}");
                ResidentId::from_body(&body, TODAY).ok()
            })
    }

    proptest! {
        #[test]
        fn plausibility_follows_region_and_birth_date(
            region in 0u32..1_000_000,
            (y, m, d) in (1800i32..=2200, 1u32..=12, 1u32..=28),
        ) {
            let body = format!("{region:06}{y:04}{m:02}{d:02}123");
            let born = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            let region_ok = crate::domain::region::is_region_code(&body[..6])
                || region / 10_000 == TAIWAN_RESIDENCE_PERMIT;
            let expected = region_ok && born >= EARLIEST_BIRTH && born <= TODAY;
            prop_assert_eq!(ResidentId::from_body(&body, TODAY).is_ok(), expected);
        }

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = ResidentId::parse(&s, TODAY);
            let _ = ResidentId::from_body(&s, TODAY);
        }

        #[test]
        fn parse_never_panics_on_digit_strings(s in "[0-9xX]{0,20}") {
            let _ = ResidentId::parse(&s, TODAY);
        }

        #[test]
        fn generated_numbers_parse_and_mask(id in valid_id()) {
            let parsed = ResidentId::parse(id.expose(), TODAY).unwrap();
            prop_assert_eq!(&parsed, &id);
            let masked = id.masked();
            prop_assert_eq!(masked.len(), 18);
            prop_assert_eq!(&masked[..6], &id.expose()[..6]);
            prop_assert_eq!(&masked[14..], &id.expose()[14..]);
            prop_assert_eq!(&masked[6..14], "********");
        }

        #[test]
        fn any_single_substitution_is_refused(
            id in valid_id(),
            position in 0usize..18,
            replacement in proptest::sample::select(b"0123456789X".to_vec()),
        ) {
            let mut bytes = id.expose().as_bytes().to_vec();
            prop_assume!(bytes[position] != replacement);
            bytes[position] = replacement;
            let mutated = String::from_utf8(bytes).unwrap();
            prop_assert!(ResidentId::parse(&mutated, TODAY).is_err());
        }

        #[test]
        fn any_adjacent_transposition_is_refused(id in valid_id(), position in 0usize..17) {
            let mut bytes = id.expose().as_bytes().to_vec();
            prop_assume!(bytes[position] != bytes[position + 1]);
            bytes.swap(position, position + 1);
            let mutated = String::from_utf8(bytes).unwrap();
            prop_assert!(ResidentId::parse(&mutated, TODAY).is_err());
        }
    }
}
