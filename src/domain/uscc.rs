//! Unified social credit code (统一社会信用代码, GB 32100-2015): every organization's
//! 18-character identifier, the 18th character being a check character.
//!
//! Its parts: position 1 the registration authority (登记管理部门), 2 the category of
//! organization (机构类别) that authority registers, 3–8 the administrative region code
//! of the registering office (GB/T 2260), 9–17 the organization code (主体标识码), 18
//! the check character. A code is accepted when its check character is right and its
//! parts are plausible: a known authority with one of its categories, a region under a
//! real province (or `100000`, the central level), an organization code that is not all
//! zeros. `000000000000000000` has a correct check character and is refused.

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

/// The registration authorities (position 1) and the categories (position 2) each
/// registers, per GB 32100-2015 and its later assignments: 1 机构编制, 2 外交, 3 司法行政,
/// 4 文化, 5 民政, 6 旅游, 7 宗教, 8 工会, 9 工商 (market regulation), A 中央军委改革和编制
/// 办公室, N 农业, Y 其他 (one category, 1).
const AUTHORITIES: &[(u8, &[u8])] = &[
    (b'1', b"1239"),
    (b'2', b"19"),
    (b'3', b"123459"),
    (b'4', b"19"),
    (b'5', b"1239"),
    (b'6', b"129"),
    (b'7', b"129"),
    (b'8', b"19"),
    (b'9', b"123"),
    (b'A', b"19"),
    (b'N', b"1239"),
    (b'Y', b"1"),
];

/// The region code of organizations registered at the central level (中央).
const CENTRAL_REGION: &str = "100000";

/// A unified social credit code, uppercase, of valid length and alphabet.
///
/// Built by [`Uscc::parse`] / [`Uscc::from_body`] its check character is correct and its
/// parts plausible; built by [`Uscc::new_unchecked_whitelisted`] neither needs to be
/// (see [`Uscc::has_valid_check`] and [`Uscc::is_plausible`]).
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
    /// Position 1 is not a registration authority.
    #[error("unified social credit code has {ch:?} in position 1, which is no registration authority (1-9, A, N or Y)")]
    UnknownAuthority {
        /// The character given.
        ch: char,
    },
    /// Position 2 is not a category that authority registers.
    #[error("unified social credit code has {category:?} in position 2, which is no category of organization that authority {authority:?} registers")]
    UnknownCategory {
        /// The registration authority (position 1).
        authority: char,
        /// The category given.
        category: char,
    },
    /// Positions 3–8 are not a region under a real province.
    #[error("unified social credit code has {region} in positions 3-8, which is no administrative region code")]
    UnknownRegion {
        /// The six characters given.
        region: String,
    },
    /// Positions 9–17 are all zeros.
    #[error("unified social credit code has an organization code of zeros in positions 9-17")]
    ZeroOrganizationCode,
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
    /// with a correct check character and plausible parts (see the module docs).
    /// Whitespace and lowercase are refused, not fixed. A mistyped code is reported by
    /// its check character first, the likelier cause.
    pub fn parse(s: &str) -> Result<Uscc, UsccError> {
        let values = values_of(s, LEN)?;
        let expected = check_char(&values[..LEN - 1]);
        let found = char::from(ALPHABET[values[LEN - 1]]);
        if expected != found {
            return Err(UsccError::WrongCheck { expected, found });
        }
        check_plausible(s)?;
        Ok(Uscc(s.to_owned()))
    }

    /// Accepts a code that an administrator whitelisted although its check character is
    /// wrong or its parts look implausible (a few real codes are either: the rules were
    /// not always applied when codes were assigned). Length and alphabet are still
    /// enforced.
    pub fn new_unchecked_whitelisted(s: &str) -> Result<Uscc, UsccError> {
        values_of(s, LEN)?;
        Ok(Uscc(s.to_owned()))
    }

    /// The check character for the first 17 characters of a code.
    pub fn compute_check(first17: &str) -> Result<char, UsccError> {
        let values = values_of(first17, LEN - 1)?;
        Ok(check_char(&values))
    }

    /// Builds a valid code from its first 17 characters by appending the check
    /// character; the parts must be plausible.
    pub fn from_body(first17: &str) -> Result<Uscc, UsccError> {
        let check = Uscc::compute_check(first17)?;
        check_plausible(first17)?;
        Ok(Uscc(format!("{first17}{check}")))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the check character is correct (false only for whitelisted codes).
    pub fn has_valid_check(&self) -> bool {
        values_of(&self.0, LEN)
            .is_ok_and(|v| check_char(&v[..LEN - 1]) == char::from(ALPHABET[v[LEN - 1]]))
    }

    /// Whether the parts are plausible (false only for whitelisted codes).
    pub fn is_plausible(&self) -> bool {
        check_plausible(&self.0).is_ok()
    }
}

/// The plausibility of the parts of a code of valid alphabet, 17 or 18 characters long:
/// authority and category, region, organization code.
fn check_plausible(code: &str) -> Result<(), UsccError> {
    let bytes = code.as_bytes();
    let (authority, category) = (bytes[0], bytes[1]);
    let Some((_, categories)) = AUTHORITIES.iter().find(|(a, _)| *a == authority) else {
        return Err(UsccError::UnknownAuthority {
            ch: char::from(authority),
        });
    };
    if !categories.contains(&category) {
        return Err(UsccError::UnknownCategory {
            authority: char::from(authority),
            category: char::from(category),
        });
    }
    let region = &code[2..8];
    if region != CENTRAL_REGION && !super::region::is_region_code(region) {
        return Err(UsccError::UnknownRegion {
            region: region.to_owned(),
        });
    }
    if code[8..17].bytes().all(|b| b == b'0') {
        return Err(UsccError::ZeroOrganizationCode);
    }
    Ok(())
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
        // All zeros: sum 0, 31 - 0 = 31 -> '0'. The check holds; the code is no code.
        assert_eq!(Uscc::compute_check("00000000000000000"), Ok('0'));
        assert_eq!(
            Uscc::parse("000000000000000000"),
            Err(UsccError::UnknownAuthority { ch: '0' })
        );
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

    /// A code with a correct check character built from `body`, plausible or not.
    fn with_check(body: &str) -> String {
        format!("{body}{}", Uscc::compute_check(body).unwrap())
    }

    #[test]
    fn implausible_codes_are_refused_naming_the_part() {
        use UsccError as E;
        let cases: &[(&str, UsccError)] = &[
            ("00000000000000000", E::UnknownAuthority { ch: '0' }),
            ("B1350100M000100Y4", E::UnknownAuthority { ch: 'B' }),
            ("G1350100M000100Y4", E::UnknownAuthority { ch: 'G' }),
            (
                "94350100M000100Y4",
                E::UnknownCategory {
                    authority: '9',
                    category: '4',
                },
            ),
            (
                "99350100M000100Y4",
                E::UnknownCategory {
                    authority: '9',
                    category: '9',
                },
            ),
            (
                "Y2350100M000100Y4",
                E::UnknownCategory {
                    authority: 'Y',
                    category: '2',
                },
            ),
            (
                "9A350100M000100Y4",
                E::UnknownCategory {
                    authority: '9',
                    category: 'A',
                },
            ),
            (
                "91000000M000100Y4",
                E::UnknownRegion {
                    region: "000000".into(),
                },
            ),
            (
                "91990100M000100Y4",
                E::UnknownRegion {
                    region: "990100".into(),
                },
            ),
            (
                "913501A0M000100Y4",
                E::UnknownRegion {
                    region: "3501A0".into(),
                },
            ),
            ("913501000000000004", E::ZeroOrganizationCode),
        ];
        for (body, expected) in cases {
            let body = &body[..17];
            let code = with_check(body);
            assert_eq!(Uscc::parse(&code).as_ref(), Err(expected), "{code}");
            assert_eq!(Uscc::from_body(body).as_ref(), Err(expected), "{body}");
            // The administrator's whitelist is for exactly these real exceptions.
            let whitelisted = Uscc::new_unchecked_whitelisted(&code).unwrap();
            assert!(whitelisted.has_valid_check());
            assert!(!whitelisted.is_plausible());
        }
        assert_eq!(
            E::UnknownRegion { region: "000000".into() }.to_string(),
            "unified social credit code has 000000 in positions 3-8, which is no administrative region code"
        );
    }

    #[test]
    fn real_kinds_of_code_are_plausible() {
        for body in [
            "11100000000013127", // a central government organ: region 100000
            "12371600MB2850001", // a public institution (事业单位) in Binzhou
            "51110000500000000", // a social organization in Beijing
            "92371602MA3C20002", // a sole trader (个体工商户)
            "N2371602MA3C20002", // a village collective (村级集体经济组织)
            "Y1810000MA3C20002", // other, Hong Kong
            "A1540000MA3C20002", // a military public institution, Tibet
        ] {
            let uscc = Uscc::from_body(body).unwrap_or_else(|e| panic!("{body}: {e}"));
            assert!(uscc.is_plausible() && uscc.has_valid_check());
            assert_eq!(Uscc::parse(uscc.as_str()), Ok(uscc.clone()));
        }
    }

    #[test]
    fn whitelisted_codes_skip_the_check_and_plausibility() {
        let uscc = Uscc::new_unchecked_whitelisted("91350100M000100Y44").unwrap();
        assert_eq!(uscc.as_str(), "91350100M000100Y44");
        assert!(!uscc.has_valid_check());
        assert!(uscc.is_plausible());
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

    /// Bodies of codes that could have been assigned.
    fn plausible_body() -> impl Strategy<Value = String> {
        let kind = proptest::sample::select(
            AUTHORITIES
                .iter()
                .flat_map(|(a, cs)| {
                    cs.iter()
                        .map(move |c| format!("{}{}", char::from(*a), char::from(*c)))
                })
                .collect::<Vec<_>>(),
        );
        let region = prop_oneof![
            Just(CENTRAL_REGION.to_owned()),
            (
                (10u32..90).prop_filter("province", |p| crate::domain::region::is_province(*p)),
                0u32..10_000
            )
                .prop_map(|(p, rest)| format!("{p:02}{rest:04}")),
        ];
        let organization =
            proptest::collection::vec(proptest::sample::select(ALPHABET.to_vec()), 9)
                .prop_filter("not all zeros", |o| o.iter().any(|&b| b != b'0'))
                .prop_map(|bytes| bytes.into_iter().map(char::from).collect::<String>());
        (kind, region, organization).prop_map(|(k, r, o)| format!("{k}{r}{o}"))
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = Uscc::parse(&s);
            let _ = Uscc::new_unchecked_whitelisted(&s);
            let _ = Uscc::compute_check(&s);
        }

        #[test]
        fn random_bodies_are_plausible_exactly_when_their_parts_are(body in body()) {
            let authority = body.as_bytes()[0];
            let parts_ok = AUTHORITIES
                .iter()
                .any(|(a, cs)| *a == authority && cs.contains(&body.as_bytes()[1]))
                && (&body[2..8] == CENTRAL_REGION || crate::domain::region::is_region_code(&body[2..8]))
                && body[8..17].bytes().any(|b| b != b'0');
            prop_assert_eq!(Uscc::from_body(&body).is_ok(), parts_ok);
            prop_assert_eq!(Uscc::parse(&with_check(&body)).is_ok(), parts_ok);
        }

        #[test]
        fn codes_from_body_parse(body in plausible_body()) {
            let uscc = Uscc::from_body(&body).unwrap();
            prop_assert_eq!(Uscc::parse(uscc.as_str()), Ok(uscc.clone()));
            prop_assert!(uscc.as_str().starts_with(&body));
        }

        #[test]
        fn exactly_one_check_character_is_valid(body in plausible_body()) {
            let valid: Vec<char> = ALPHABET
                .iter()
                .map(|&c| char::from(c))
                .filter(|c| Uscc::parse(&format!("{body}{c}")).is_ok())
                .collect();
            prop_assert_eq!(valid.len(), 1);
        }

        #[test]
        fn any_single_substitution_is_detected(
            body in plausible_body(),
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
