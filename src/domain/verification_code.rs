//! Verification code (查验码): printed on the guarantee letter, stored only as a SHA-256
//! hash; with the guarantee number it opens the public verification page.

use std::fmt;

use rand::Rng;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// 31 characters that cannot be confused when read off paper: no 0/O, 1/I/L.
pub const ALPHABET: &[u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
/// Length of a code: 31^8 ≈ 8.5 × 10^11 possibilities (about 39.6 bits), enough for a
/// code that is only ever tried together with a guarantee number and a rate limit.
pub const LEN: usize = 8;

/// A verification code, uppercase. `Debug` hides it; there is deliberately no `Display`
/// or `Serialize`: print it through [`VerificationCode::expose`] onto the letter only.
#[derive(Clone, PartialEq, Eq)]
pub struct VerificationCode(String);

/// Why a verification code was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VerificationCodeError {
    /// Not 8 characters.
    #[error("verification code must be {LEN} characters, found {found}")]
    WrongLength {
        /// Length given, in characters.
        found: usize,
    },
    /// A character outside the alphabet (including 0, O, 1, I and L, which are never used).
    #[error("verification code has invalid character {ch:?} at position {position}; codes use 2-9 and letters except I, L and O")]
    InvalidCharacter {
        /// The refused character.
        ch: char,
        /// 1-based position.
        position: usize,
    },
}

impl VerificationCode {
    /// Draws a fresh code, each character uniformly from [`ALPHABET`]. Pass a
    /// cryptographically secure generator (e.g. `rand::thread_rng()`).
    pub fn generate<R: Rng + ?Sized>(rng: &mut R) -> VerificationCode {
        let code = (0..LEN)
            .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
            .collect();
        VerificationCode(code)
    }

    /// Parses a code typed by a user; lowercase is accepted and normalised to uppercase.
    pub fn parse(s: &str) -> Result<VerificationCode, VerificationCodeError> {
        let mut code = String::with_capacity(LEN);
        for (index, ch) in s.chars().enumerate() {
            let upper = ch.to_ascii_uppercase();
            if !ALPHABET.iter().any(|&a| char::from(a) == upper) {
                return Err(VerificationCodeError::InvalidCharacter {
                    ch,
                    position: index + 1,
                });
            }
            code.push(upper);
        }
        if code.len() != LEN {
            return Err(VerificationCodeError::WrongLength { found: code.len() });
        }
        Ok(VerificationCode(code))
    }

    /// SHA-256 of the uppercase code, lowercase hex: the only form that is stored.
    pub fn sha256_hex(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }

    /// The code in clear, to print on the letter. Never log or store it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for VerificationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VerificationCode(********)")
    }
}

impl<'de> Deserialize<'de> for VerificationCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<VerificationCode, D::Error> {
        struct CodeVisitor;
        impl Visitor<'_> for CodeVisitor {
            type Value = VerificationCode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an 8-character verification code as a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<VerificationCode, E> {
                VerificationCode::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(CodeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn alphabet_has_no_ambiguous_characters_and_no_duplicates() {
        for ch in b"01OIL" {
            assert!(!ALPHABET.contains(ch), "{}", char::from(*ch));
        }
        let mut sorted = ALPHABET.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ALPHABET.len());
    }

    #[test]
    fn parse_normalises_case() {
        let code = VerificationCode::parse("ab23cd45").unwrap();
        assert_eq!(code.expose(), "AB23CD45");
        assert_eq!(VerificationCode::parse("AB23CD45").unwrap(), code);
    }

    #[test]
    fn parse_refusals_say_what_is_wrong() {
        use VerificationCodeError as E;
        let cases: &[(&str, VerificationCodeError)] = &[
            ("", E::WrongLength { found: 0 }),
            ("AB23CD4", E::WrongLength { found: 7 }),
            ("AB23CD456", E::WrongLength { found: 9 }),
            (
                "AB23CD40",
                E::InvalidCharacter {
                    ch: '0',
                    position: 8,
                },
            ),
            (
                "oB23CD45",
                E::InvalidCharacter {
                    ch: 'o',
                    position: 1,
                },
            ),
            (
                "A123CD45",
                E::InvalidCharacter {
                    ch: '1',
                    position: 2,
                },
            ),
            (
                "AB2lCD45",
                E::InvalidCharacter {
                    ch: 'l',
                    position: 4,
                },
            ),
            (
                "AB2ICD45",
                E::InvalidCharacter {
                    ch: 'I',
                    position: 4,
                },
            ),
            (
                "AB23 CD4",
                E::InvalidCharacter {
                    ch: ' ',
                    position: 5,
                },
            ),
            (
                "AB23CD4ß",
                E::InvalidCharacter {
                    ch: 'ß',
                    position: 8,
                },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                VerificationCode::parse(input).as_ref(),
                Err(expected),
                "{input:?}"
            );
        }
    }

    #[test]
    fn hash_is_sha256_of_the_uppercase_code() {
        // printf %s AB23CD45 | sha256sum
        let code = VerificationCode::parse("ab23cd45").unwrap();
        assert_eq!(code.sha256_hex(), KNOWN_SHA256);
    }
    const KNOWN_SHA256: &str = "f8deeff22dfecb0166e165540742c7dbee2a05a77001797f36e8e59a9dae0b20";

    #[test]
    fn debug_hides_the_code() {
        let code = VerificationCode::parse("AB23CD45").unwrap();
        assert_eq!(format!("{code:?}"), "VerificationCode(********)");
    }

    #[test]
    fn generated_codes_are_valid_and_vary() {
        let mut rng = StdRng::seed_from_u64(7);
        let codes: Vec<_> = (0..50)
            .map(|_| VerificationCode::generate(&mut rng))
            .collect();
        for code in &codes {
            assert_eq!(VerificationCode::parse(code.expose()).as_ref(), Ok(code));
        }
        let mut distinct: Vec<_> = codes.iter().map(|c| c.expose()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), codes.len());
    }

    #[test]
    fn generation_uses_every_character() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut seen = [false; 31];
        for _ in 0..200 {
            for b in VerificationCode::generate(&mut rng).expose().bytes() {
                if let Some(i) = ALPHABET.iter().position(|&a| a == b) {
                    seen[i] = true;
                }
            }
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn json_deserializes_through_parse() {
        let code: VerificationCode = serde_json::from_str("\"ab23cd45\"").unwrap();
        assert_eq!(code.expose(), "AB23CD45");
        assert!(serde_json::from_str::<VerificationCode>("\"AB23CD40\"").is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = VerificationCode::parse(&s);
        }

        #[test]
        fn parse_is_case_insensitive(seed in any::<u64>()) {
            let code = VerificationCode::generate(&mut StdRng::seed_from_u64(seed));
            let lower = code.expose().to_ascii_lowercase();
            let parsed = VerificationCode::parse(&lower).unwrap();
            prop_assert_eq!(parsed.sha256_hex(), code.sha256_hex());
        }
    }
}
