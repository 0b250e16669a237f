//! Unified social credit code (统一社会信用代码, GB 32100-2015): every organization's
//! 18-character identifier, the 18th character being a check character.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// Characters of the code, in value order 0..=30 (no I, O, S, V, Z).
const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// Weights of positions 1..=17 (3^(i-1) mod 31).
const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];
const LEN: usize = 18;

/// A unified social credit code, uppercase, of valid length and alphabet.
///
/// Built by [`Uscc::parse`] / [`Uscc::from_body`] its check character is correct; built by
/// [`Uscc::new_unchecked_whitelisted`] it may not be (see [`Uscc::has_valid_check`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uscc(String);

/// Why a unified social credit code was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UsccError {
    /// Not 18 characters (or not 17 for a body).
    #[error("unified social credit code must be {expected} characters, found {found}")]
    WrongLength {
        /// Required length.
        expected: usize,
        /// Length given, in characters.
        found: usize,
    },
    /// A lowercase letter; codes are written in uppercase.
    #[error("unified social credit code has lowercase {ch:?} at position {position}; write it in uppercase")]
    Lowercase {
        /// The refused character.
        ch: char,
        /// 1-based position.
        position: usize,
    },
    /// Whitespace anywhere.
    #[error("unified social credit code must not contain spaces (position {position})")]
    Whitespace {
        /// 1-based position.
        position: usize,
    },
    /// A character outside `0-9 A-H J-N P-R T U W-Y`.
    #[error("unified social credit code has invalid character {ch:?} at position {position} (I, O, S, V and Z are never used)")]
    InvalidCharacter {
        /// The refused character.
        ch: char,
        /// 1-based position.
        position: usize,
    },
    /// The 18th character does not match the first 17.
    #[error("unified social credit code check character is wrong: expected {expected:?}, found {found:?}; the code is probably mistyped")]
    WrongCheck {
        /// Check character computed from positions 1..=17.
        expected: char,
        /// Check character given.
        found: char,
    },
}

impl Uscc {
    /// Parses and fully validates a code: 18 uppercase characters of the code alphabet
    /// with a correct check character. Whitespace and lowercase are refused, not fixed.
    pub fn parse(s: &str) -> Result<Uscc, UsccError> {
        let values = values_of(s, LEN)?;
        let expected = check_char(&values[..LEN - 1]);
        let found = char::from(ALPHABET[values[LEN - 1]]);
        if expected != found {
            return Err(UsccError::WrongCheck { expected, found });
        }
        Ok(Uscc(s.to_owned()))
    }

    /// Accepts a code that an administrator whitelisted although its check character is
    /// wrong (a few real codes are). Length and alphabet are still enforced.
    pub fn new_unchecked_whitelisted(s: &str) -> Result<Uscc, UsccError> {
        values_of(s, LEN)?;
        Ok(Uscc(s.to_owned()))
    }

    /// The check character for the first 17 characters of a code.
    pub fn compute_check(first17: &str) -> Result<char, UsccError> {
        let values = values_of(first17, LEN - 1)?;
        Ok(check_char(&values))
    }

    /// Builds a valid code from its first 17 characters by appending the check character.
    pub fn from_body(first17: &str) -> Result<Uscc, UsccError> {
        let check = Uscc::compute_check(first17)?;
        Ok(Uscc(format!("{first17}{check}")))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the check character is correct (false only for whitelisted codes).
    pub fn has_valid_check(&self) -> bool {
        Uscc::parse(&self.0).is_ok()
    }
}

/// Validates length and alphabet, returning each character's value.
fn values_of(s: &str, expected_len: usize) -> Result<Vec<usize>, UsccError> {
    let mut values = Vec::with_capacity(expected_len);
    for (index, ch) in s.chars().enumerate() {
        let position = index + 1;
        let value = ALPHABET.iter().position(|&a| char::from(a) == ch);
        match value {
            Some(v) => values.push(v),
            None if ch.is_whitespace() => return Err(UsccError::Whitespace { position }),
            None if ch.is_ascii_lowercase()
                && ALPHABET.contains(&(ch.to_ascii_uppercase() as u8)) =>
            {
                return Err(UsccError::Lowercase { ch, position })
            }
            None => return Err(UsccError::InvalidCharacter { ch, position }),
        }
    }
    if values.len() != expected_len {
        return Err(UsccError::WrongLength {
            expected: expected_len,
            found: values.len(),
        });
    }
    Ok(values)
}

/// Check character of 17 values: 31 - (weighted sum mod 31), with 31 written as '0'.
fn check_char(values: &[usize]) -> char {
    let sum: u32 = values.iter().zip(WEIGHTS).map(|(&v, w)| v as u32 * w).sum();
    let check = (31 - sum % 31) % 31;
    char::from(ALPHABET[check as usize])
}

impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Uscc {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Uscc {
    /// Fully validates, check character included; whitelisted codes loaded from storage
    /// go through [`Uscc::new_unchecked_whitelisted`] instead.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Uscc, D::Error> {
        struct UsccVisitor;
        impl Visitor<'_> for UsccVisitor {
            type Value = Uscc;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an 18-character unified social credit code as a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Uscc, E> {
                Uscc::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(UsccVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn weights_are_powers_of_three_mod_31() {
        let mut w = 1;
        for weight in WEIGHTS {
            assert_eq!(weight, w);
            w = w * 3 % 31;
        }
    }

    #[test]
    fn accepts_real_looking_valid_codes() {
        // Hand check of 91350100M000100Y43: values 9 1 3 5 0 1 0 0 21(M) 0 0 0 1 0 0 30(Y) 4
        // weighted: 9+3+27+135+0+26+0+0+420+0+0+0+8+0+0+900+112 = 1640; 1640 mod 31 = 28;
        // 31 - 28 = 3 -> '3'.
        for code in ["91350100M000100Y43", "91110000100006485K"] {
            let uscc = Uscc::parse(code).unwrap();
            assert_eq!(uscc.as_str(), code);
            assert_eq!(uscc.to_string(), code);
            assert!(uscc.has_valid_check());
        }
        assert_eq!(Uscc::compute_check("91350100M000100Y4"), Ok('3'));
    }

    #[test]
    fn sum_divisible_by_31_gives_check_zero() {
        // All zeros: sum 0, 31 - 0 = 31 -> '0'.
        assert_eq!(Uscc::compute_check("00000000000000000"), Ok('0'));
        assert!(Uscc::parse("000000000000000000").is_ok());
        // '1' at position 1 only: sum 1, check 30 -> 'Y'.
        assert_eq!(Uscc::compute_check("10000000000000000"), Ok('Y'));
    }

    #[test]
    fn from_body_appends_the_check() {
        let uscc = Uscc::from_body("91350100M000100Y4").unwrap();
        assert_eq!(uscc.as_str(), "91350100M000100Y43");
        assert!(Uscc::from_body("91350100M000100Y43").is_err());
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        use UsccError as E;
        let cases: &[(&str, UsccError)] = &[
            (
                "",
                E::WrongLength {
                    expected: 18,
                    found: 0,
                },
            ),
            (
                "91350100M000100Y4",
                E::WrongLength {
                    expected: 18,
                    found: 17,
                },
            ),
            (
                "91350100M000100Y433",
                E::WrongLength {
                    expected: 18,
                    found: 19,
                },
            ),
            (" 91350100M000100Y43", E::Whitespace { position: 1 }),
            ("91350100M000100Y43 ", E::Whitespace { position: 19 }),
            (
                "91350100m000100Y43",
                E::Lowercase {
                    ch: 'm',
                    position: 9,
                },
            ),
            (
                "91350100I000100Y43",
                E::InvalidCharacter {
                    ch: 'I',
                    position: 9,
                },
            ),
            (
                "91350100O000100Y43",
                E::InvalidCharacter {
                    ch: 'O',
                    position: 9,
                },
            ),
            (
                "9135010０M000100Y43",
                E::InvalidCharacter {
                    ch: '０',
                    position: 8,
                },
            ),
            (
                "91350100M000100Y4i",
                E::InvalidCharacter {
                    ch: 'i',
                    position: 18,
                },
            ),
            (
                "91350100M000100Y44",
                E::WrongCheck {
                    expected: '3',
                    found: '4',
                },
            ),
            // Swapping the last two changes position 17 too: sum 1612 = 52 × 31, check 0.
            (
                "91350100M000100Y34",
                E::WrongCheck {
                    expected: '0',
                    found: '4',
                },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(Uscc::parse(input).as_ref(), Err(expected), "{input:?}");
        }
        assert_eq!(
            E::WrongCheck { expected: '3', found: '4' }.to_string(),
            "unified social credit code check character is wrong: expected '3', found '4'; the code is probably mistyped"
        );
        assert_eq!(
            E::InvalidCharacter { ch: 'I', position: 9 }.to_string(),
            "unified social credit code has invalid character 'I' at position 9 (I, O, S, V and Z are never used)"
        );
    }

    #[test]
    fn whitelisted_codes_skip_only_the_check() {
        let uscc = Uscc::new_unchecked_whitelisted("91350100M000100Y44").unwrap();
        assert_eq!(uscc.as_str(), "91350100M000100Y44");
        assert!(!uscc.has_valid_check());
        assert!(Uscc::new_unchecked_whitelisted("91350100M000100Y4").is_err());
        assert!(Uscc::new_unchecked_whitelisted("91350100M000100YZ4").is_err());
        assert!(Uscc::new_unchecked_whitelisted("91350100M000100Y4z").is_err());
    }

    #[test]
    fn json_is_a_validated_string() {
        let uscc = Uscc::parse("91350100M000100Y43").unwrap();
        assert_eq!(
            serde_json::to_string(&uscc).unwrap(),
            "\"91350100M000100Y43\""
        );
        assert_eq!(
            serde_json::from_str::<Uscc>("\"91350100M000100Y43\"").unwrap(),
            uscc
        );
        let err = serde_json::from_str::<Uscc>("\"91350100M000100Y44\"").unwrap_err();
        assert!(err.to_string().contains("expected '3'"), "{err}");
        assert!(serde_json::from_str::<Uscc>("913501").is_err());
    }

    fn body() -> impl Strategy<Value = String> {
        proptest::collection::vec(proptest::sample::select(ALPHABET.to_vec()), 17)
            .prop_map(|bytes| bytes.into_iter().map(char::from).collect())
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = Uscc::parse(&s);
            let _ = Uscc::new_unchecked_whitelisted(&s);
            let _ = Uscc::compute_check(&s);
        }

        #[test]
        fn codes_from_body_parse(body in body()) {
            let uscc = Uscc::from_body(&body).unwrap();
            prop_assert_eq!(Uscc::parse(uscc.as_str()), Ok(uscc.clone()));
            prop_assert!(uscc.as_str().starts_with(&body));
        }

        #[test]
        fn exactly_one_check_character_is_valid(body in body()) {
            let valid: Vec<char> = ALPHABET
                .iter()
                .map(|&c| char::from(c))
                .filter(|c| Uscc::parse(&format!("{body}{c}")).is_ok())
                .collect();
            prop_assert_eq!(valid.len(), 1);
        }

        #[test]
        fn any_single_substitution_is_detected(
            body in body(),
            position in 0usize..18,
            replacement in proptest::sample::select(ALPHABET.to_vec()),
        ) {
            let code = Uscc::from_body(&body).unwrap();
            let mut bytes = code.as_str().as_bytes().to_vec();
            prop_assume!(bytes[position] != replacement);
            bytes[position] = replacement;
            let mutated = String::from_utf8(bytes).unwrap();
            let is_wrong_check = matches!(Uscc::parse(&mutated), Err(UsccError::WrongCheck { .. }));
            prop_assert!(is_wrong_check);
        }
    }
}
