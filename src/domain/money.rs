//! Money (金额): integer fen (分) in code and database, two-place decimal strings in JSON,
//! Chinese capital numerals (大写金额) on letters. No floating point anywhere.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// An amount of CNY in fen (分, 1/100 yuan).
///
/// Amounts built by [`Amount::parse`], [`Amount::try_from_fen`] and the checked arithmetic
/// are always within `0..=Amount::MAX`. [`Amount::from_fen`] trusts its caller (values read
/// back from our own database); every method stays total even for a negative value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(i64);

/// Why a money value was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MoneyError {
    /// Nothing was given.
    #[error("amount is empty")]
    Empty,
    /// A leading or trailing `+` / `-`.
    #[error("amount must not have a sign; write digits only, e.g. 100000.00")]
    Sign,
    /// Exponent notation such as `1e5`.
    #[error("amount must not use exponent notation; write it out, e.g. 100000.00")]
    Exponent,
    /// Any whitespace, inside or around the number.
    #[error("amount must not contain spaces (position {position})")]
    Whitespace {
        /// 1-based character position.
        position: usize,
    },
    /// Any other character that is not an ASCII digit or `.`.
    #[error("amount contains {ch:?} at position {position}; only the digits 0-9 and one '.' are allowed")]
    InvalidCharacter {
        /// The refused character.
        ch: char,
        /// 1-based character position.
        position: usize,
    },
    /// More than one `.`.
    #[error("amount has more than one decimal point")]
    MultipleDecimalPoints,
    /// `.5`
    #[error("amount must have digits before the decimal point, e.g. 0.50")]
    MissingIntegerDigits,
    /// `5.`
    #[error("amount must have digits after the decimal point, or no decimal point")]
    MissingFractionDigits,
    /// `5.001`
    #[error("amount has more than two decimal places; the smallest unit is one fen (0.01)")]
    TooManyDecimals,
    /// Above [`Amount::MAX`].
    #[error("amount exceeds the maximum of {}", Amount::MAX)]
    TooLarge,
    /// A negative number of fen.
    #[error("amount must not be negative")]
    Negative,
}

const CAPITAL_DIGITS: [char; 10] = ['零', '壹', '贰', '叁', '肆', '伍', '陆', '柒', '捌', '玖'];
const WAN: u64 = 10_000;
const YI: u64 = 100_000_000;

impl Amount {
    /// Nothing.
    pub const ZERO: Amount = Amount(0);
    /// The largest amount accepted: 10^15 fen, i.e. ten trillion yuan (拾万亿元), far above
    /// any bond, and small enough that sums and percentages never overflow `i64`.
    pub const MAX: Amount = Amount(1_000_000_000_000_000);

    /// Wraps a number of fen without checking it (for values we wrote ourselves).
    pub const fn from_fen(fen: i64) -> Amount {
        Amount(fen)
    }

    /// Wraps a number of fen from outside, refusing negatives and values above [`Amount::MAX`].
    pub fn try_from_fen(fen: i64) -> Result<Amount, MoneyError> {
        if fen < 0 {
            Err(MoneyError::Negative)
        } else if fen > Amount::MAX.0 {
            Err(MoneyError::TooLarge)
        } else {
            Ok(Amount(fen))
        }
    }

    /// The amount in fen.
    pub const fn fen(self) -> i64 {
        self.0
    }

    /// Parses a plain decimal yuan string with at most two decimals: `"100000"`,
    /// `"100000.5"`, `"100000.50"`. Leading zeros are accepted (`"0.50"`, `"007"`).
    pub fn parse(s: &str) -> Result<Amount, MoneyError> {
        if s.is_empty() {
            return Err(MoneyError::Empty);
        }
        // Report the first character problem before any structural one.
        for (index, ch) in s.chars().enumerate() {
            let position = index + 1;
            match ch {
                '0'..='9' | '.' => {}
                '+' | '-' => return Err(MoneyError::Sign),
                'e' | 'E' => return Err(MoneyError::Exponent),
                c if c.is_whitespace() => return Err(MoneyError::Whitespace { position }),
                ch => return Err(MoneyError::InvalidCharacter { ch, position }),
            }
        }
        // Only ASCII digits and '.' are left, so byte slicing below is safe.
        let (int_digits, frac_digits) = match s.split_once('.') {
            None => (s, ""),
            Some((_, rest)) if rest.contains('.') => return Err(MoneyError::MultipleDecimalPoints),
            Some(("", _)) => return Err(MoneyError::MissingIntegerDigits),
            Some((_, "")) => return Err(MoneyError::MissingFractionDigits),
            Some(parts) => parts,
        };
        if frac_digits.len() > 2 {
            return Err(MoneyError::TooManyDecimals);
        }
        let max_yuan = Amount::MAX.0 / 100;
        let mut yuan: i64 = 0;
        for b in int_digits.bytes() {
            yuan = yuan * 10 + i64::from(b - b'0');
            if yuan > max_yuan {
                return Err(MoneyError::TooLarge);
            }
        }
        let mut frac: i64 = 0;
        for (i, b) in frac_digits.bytes().enumerate() {
            let place = if i == 0 { 10 } else { 1 };
            frac += i64::from(b - b'0') * place;
        }
        Amount::try_from_fen(yuan * 100 + frac)
    }

    /// Sum, or `None` if it would exceed [`Amount::MAX`] (or overflow).
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0
            .checked_add(other.0)
            .filter(|&fen| fen <= Amount::MAX.0)
            .map(Amount)
    }

    /// Difference, or `None` if it would be negative (or overflow).
    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0
            .checked_sub(other.0)
            .filter(|&fen| fen >= 0)
            .map(Amount)
    }

    /// Whether `self <= basis × percent / 100`, exactly (integer math, no rounding).
    ///
    /// Used for the legal cap on a bid bond: at most 2% of the estimated price.
    pub fn is_within_percent_of(&self, basis: Amount, percent: u32) -> bool {
        i128::from(self.0) * 100 <= i128::from(basis.0) * i128::from(percent)
    }

    /// The amount in Chinese capital numerals as written on cheques and letters.
    ///
    /// Conventions (from the 《支付结算办法》 rules for 大写金额; where they allow a choice
    /// we take the option noted):
    /// - starts with `人民币`; a leading ten is written `壹拾` (`人民币壹拾万元整`);
    /// - sections are grouped by `万` and `亿` (so 10^12 yuan is `壹万亿`);
    /// - a run of zeros inside the number is one `零` (`叁仟零伍元`), but zeros at the end
    ///   of a section are absorbed by its unit `万`/`亿`/`元` without a `零`
    ///   (`壹拾万柒仟元`, `壹仟陆佰捌拾元叁角贰分`: the rules allow writing `零` there or not;
    ///   we do not);
    /// - when 角 is zero and 分 is not, `零` follows `元` (`壹元零伍分`); with no yuan the
    ///   amount starts at the first non-zero unit (`伍分`, `伍角整`);
    /// - `整` ends an amount without 分, also after 角 (`叁仟零伍元陆角整`); never after 分;
    /// - zero is `人民币零元整`; a negative value (never a valid amount) gets `负`.
    pub fn to_chinese_capital(&self) -> String {
        let abs = self.0.unsigned_abs();
        let yuan = abs / 100;
        let jiao = (abs / 10 % 10) as usize;
        let fen = (abs % 10) as usize;
        let mut out = String::from("人民币");
        if self.0 < 0 {
            out.push('负');
        }
        if yuan > 0 {
            out.push_str(&integer_capital(yuan));
            out.push('元');
        }
        match (jiao, fen) {
            (0, 0) => {
                if yuan == 0 {
                    out.push_str("零元");
                }
                out.push('整');
            }
            (jiao, 0) => {
                out.push(CAPITAL_DIGITS[jiao]);
                out.push_str("角整");
            }
            (0, fen) => {
                if yuan > 0 {
                    out.push('零');
                }
                out.push(CAPITAL_DIGITS[fen]);
                out.push('分');
            }
            (jiao, fen) => {
                out.push(CAPITAL_DIGITS[jiao]);
                out.push('角');
                out.push(CAPITAL_DIGITS[fen]);
                out.push('分');
            }
        }
        out
    }
}

/// Capital numerals for a positive whole number of yuan, without the unit.
fn integer_capital(n: u64) -> String {
    if n >= YI {
        join_sections(n / YI, '亿', n % YI, YI)
    } else if n >= WAN {
        join_sections(n / WAN, '万', n % WAN, WAN)
    } else {
        section_capital(n)
    }
}

/// `high` followed by `unit`, then `low` (< `base`), with one `零` if `low` does not fill
/// its leading place (the zeros between the two parts).
fn join_sections(high: u64, unit: char, low: u64, base: u64) -> String {
    let mut out = integer_capital(high);
    out.push(unit);
    if low > 0 {
        if low < base / 10 {
            out.push('零');
        }
        out.push_str(&integer_capital(low));
    }
    out
}

/// Capital numerals for 1..=9999: inner zero runs become one `零`, trailing zeros vanish.
fn section_capital(n: u64) -> String {
    let places = [(1000, '仟'), (100, '佰'), (10, '拾'), (1, '\0')];
    let mut out = String::new();
    let mut zero_pending = false;
    for (place, unit) in places {
        let digit = (n / place % 10) as usize;
        if digit == 0 {
            zero_pending = !out.is_empty();
            continue;
        }
        if zero_pending {
            out.push('零');
            zero_pending = false;
        }
        out.push(CAPITAL_DIGITS[digit]);
        if unit != '\0' {
            out.push(unit);
        }
    }
    out
}

impl Amount {
    /// Yuan with thousands separators and two decimals, as pages show money:
    /// `1,234,567.89`, `-0.05`.
    pub fn grouped(&self) -> String {
        let plain = self.to_string();
        let (sign, rest) = match plain.strip_prefix('-') {
            Some(rest) => ("-", rest),
            None => ("", plain.as_str()),
        };
        let (whole, cents) = rest.split_once('.').unwrap_or((rest, "00"));
        let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
        for (i, digit) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(digit);
        }
        format!("{sign}{grouped}.{cents}")
    }
}

impl fmt::Display for Amount {
    /// Yuan with exactly two decimals: `100000.00`, `0.05`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Amount, D::Error> {
        deserializer.deserialize_any(AmountVisitor)
    }
}

struct AmountVisitor;

const NUMBER_REFUSED: &str =
    "amount must be a JSON string such as \"100000.00\", not a number (floats are not money)";

impl Visitor<'_> for AmountVisitor {
    type Value = Amount;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an amount as a decimal string such as \"100000.00\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Amount, E> {
        Amount::parse(v).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Amount, E> {
        Err(E::custom(NUMBER_REFUSED))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Amount, E> {
        Err(E::custom(NUMBER_REFUSED))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Amount, E> {
        Err(E::custom(NUMBER_REFUSED))
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn pages_group_thousands() {
        let cases = [
            (0, "0.00"),
            (5, "0.05"),
            (99_999, "999.99"),
            (100_000, "1,000.00"),
            (123_456_789, "1,234,567.89"),
            (-10_000_000, "-100,000.00"),
        ];
        for (fen, shown) in cases {
            assert_eq!(Amount::from_fen(fen).grouped(), shown, "{fen}");
        }
    }

    use super::*;
    use proptest::prelude::*;

    fn fen(s: &str) -> i64 {
        Amount::parse(s).unwrap().fen()
    }

    #[test]
    fn parses_zero_one_or_two_decimals() {
        assert_eq!(fen("100000"), 10_000_000);
        assert_eq!(fen("100000.5"), 10_000_050);
        assert_eq!(fen("100000.50"), 10_000_050);
        assert_eq!(fen("100000.05"), 10_000_005);
        assert_eq!(fen("0"), 0);
        assert_eq!(fen("0.00"), 0);
        assert_eq!(fen("0.01"), 1);
        assert_eq!(fen("007.1"), 710);
        assert_eq!(fen("10000000000000.00"), Amount::MAX.fen());
    }

    #[test]
    fn refuses_malformed_input_with_the_matching_error() {
        use MoneyError as E;
        let cases: &[(&str, MoneyError)] = &[
            ("", E::Empty),
            ("-1", E::Sign),
            ("+1", E::Sign),
            ("1-", E::Sign),
            ("1e5", E::Exponent),
            ("1E5", E::Exponent),
            (" 1", E::Whitespace { position: 1 }),
            ("1 ", E::Whitespace { position: 2 }),
            ("1 000", E::Whitespace { position: 2 }),
            ("1\u{3000}", E::Whitespace { position: 2 }),
            (
                "1,000",
                E::InvalidCharacter {
                    ch: ',',
                    position: 2,
                },
            ),
            (
                "１",
                E::InvalidCharacter {
                    ch: '１',
                    position: 1,
                },
            ),
            (
                "٣",
                E::InvalidCharacter {
                    ch: '٣',
                    position: 1,
                },
            ),
            (
                "¥5",
                E::InvalidCharacter {
                    ch: '¥',
                    position: 1,
                },
            ),
            (
                "NaN",
                E::InvalidCharacter {
                    ch: 'N',
                    position: 1,
                },
            ),
            ("1.2.3", E::MultipleDecimalPoints),
            ("1..2", E::MultipleDecimalPoints),
            (".5", E::MissingIntegerDigits),
            (".", E::MissingIntegerDigits),
            ("5.", E::MissingFractionDigits),
            ("5.001", E::TooManyDecimals),
            ("5.000", E::TooManyDecimals),
            ("10000000000000.01", E::TooLarge),
            ("10000000000001", E::TooLarge),
            ("99999999999999999999999999999999", E::TooLarge),
        ];
        for (input, expected) in cases {
            assert_eq!(Amount::parse(input).as_ref(), Err(expected), "{input:?}");
        }
    }

    #[test]
    fn error_messages_are_readable() {
        assert_eq!(
            MoneyError::TooManyDecimals.to_string(),
            "amount has more than two decimal places; the smallest unit is one fen (0.01)"
        );
        assert_eq!(
            MoneyError::TooLarge.to_string(),
            "amount exceeds the maximum of 10000000000000.00"
        );
        assert_eq!(
            MoneyError::InvalidCharacter {
                ch: ',',
                position: 2
            }
            .to_string(),
            "amount contains ',' at position 2; only the digits 0-9 and one '.' are allowed"
        );
    }

    #[test]
    fn displays_two_decimals() {
        assert_eq!(Amount::from_fen(10_000_000).to_string(), "100000.00");
        assert_eq!(Amount::from_fen(5).to_string(), "0.05");
        assert_eq!(Amount::from_fen(50).to_string(), "0.50");
        assert_eq!(Amount::ZERO.to_string(), "0.00");
        assert_eq!(Amount::from_fen(-105).to_string(), "-1.05");
        assert_eq!(
            Amount::from_fen(i64::MIN).to_string(),
            "-92233720368547758.08"
        );
    }

    #[test]
    fn try_from_fen_enforces_the_range() {
        assert_eq!(Amount::try_from_fen(0), Ok(Amount::ZERO));
        assert_eq!(Amount::try_from_fen(-1), Err(MoneyError::Negative));
        assert_eq!(Amount::try_from_fen(Amount::MAX.fen()), Ok(Amount::MAX));
        assert_eq!(
            Amount::try_from_fen(Amount::MAX.fen() + 1),
            Err(MoneyError::TooLarge)
        );
    }

    #[test]
    fn checked_arithmetic_stays_in_range() {
        let a = Amount::from_fen(150);
        let b = Amount::from_fen(100);
        assert_eq!(a.checked_add(b), Some(Amount::from_fen(250)));
        assert_eq!(a.checked_sub(b), Some(Amount::from_fen(50)));
        assert_eq!(b.checked_sub(b), Some(Amount::ZERO));
        assert_eq!(b.checked_sub(a), None);
        assert_eq!(Amount::MAX.checked_add(Amount::from_fen(1)), None);
        assert_eq!(Amount::MAX.checked_add(Amount::ZERO), Some(Amount::MAX));
        assert_eq!(Amount::from_fen(i64::MAX).checked_add(a), None);
        assert_eq!(Amount::from_fen(i64::MIN).checked_sub(a), None);
    }

    #[test]
    fn percent_cap_is_exact() {
        let estimate = Amount::parse("1000000.00").unwrap();
        assert!(Amount::parse("20000.00")
            .unwrap()
            .is_within_percent_of(estimate, 2));
        assert!(!Amount::parse("20000.01")
            .unwrap()
            .is_within_percent_of(estimate, 2));
        // 2% of 0.49 is 0.0098: one fen is already too much.
        assert!(Amount::ZERO.is_within_percent_of(Amount::from_fen(49), 2));
        assert!(!Amount::from_fen(1).is_within_percent_of(Amount::from_fen(49), 2));
        assert!(Amount::from_fen(1).is_within_percent_of(Amount::from_fen(50), 2));
        assert!(!Amount::from_fen(1).is_within_percent_of(Amount::ZERO, 2));
        assert!(Amount::MAX.is_within_percent_of(Amount::MAX, 100));
        assert!(
            Amount::from_fen(i64::MAX).is_within_percent_of(Amount::from_fen(i64::MAX), u32::MAX)
        );
    }

    #[test]
    fn chinese_capital_hand_checked_cases() {
        let cases: &[(i64, &str)] = &[
            (0, "人民币零元整"),
            (5, "人民币伍分"),
            (50, "人民币伍角整"),
            (55, "人民币伍角伍分"),
            (100, "人民币壹元整"),
            (105, "人民币壹元零伍分"),
            (110, "人民币壹元壹角整"),
            (1_000, "人民币壹拾元整"),
            (1_500, "人民币壹拾伍元整"),
            (10_000, "人民币壹佰元整"),
            (10_050, "人民币壹佰元伍角整"),
            (101_000, "人民币壹仟零壹拾元整"),
            (300_560, "人民币叁仟零伍元陆角整"),
            (140_950, "人民币壹仟肆佰零玖元伍角整"),
            (600_714, "人民币陆仟零柒元壹角肆分"),
            (168_032, "人民币壹仟陆佰捌拾元叁角贰分"),
            (32_504, "人民币叁佰贰拾伍元零肆分"),
            (1_000_001, "人民币壹万元零壹分"),
            (1_640_902, "人民币壹万陆仟肆佰零玖元零贰分"),
            (10_000_000, "人民币壹拾万元整"),
            (10_700_053, "人民币壹拾万柒仟元伍角叁分"),
            (10_070_000, "人民币壹拾万零柒佰元整"),
            (100_010_000, "人民币壹佰万零壹佰元整"),
            (1_000_000_000, "人民币壹仟万元整"),
            (1_001_001_000, "人民币壹仟零壹万零壹拾元整"),
            (10_000_000_000, "人民币壹亿元整"),
            (10_000_000_100, "人民币壹亿零壹元整"),
            (10_001_000_000, "人民币壹亿零壹万元整"),
            (10_100_000_000, "人民币壹亿零壹佰万元整"),
            (11_000_000_000, "人民币壹亿壹仟万元整"),
            (100_000_000_000, "人民币壹拾亿元整"),
            (100_000_000_001, "人民币壹拾亿元零壹分"),
            (100_000_000_000_000, "人民币壹万亿元整"),
            (100_010_000_000_000, "人民币壹万零壹亿元整"),
            (200_000_000_000_300, "人民币贰万亿零叁元整"),
            (Amount::MAX.fen(), "人民币壹拾万亿元整"),
            (
                99_999_999_999_999,
                "人民币玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分",
            ),
            (-105, "人民币负壹元零伍分"),
        ];
        for &(fen, expected) in cases {
            assert_eq!(
                Amount::from_fen(fen).to_chinese_capital(),
                expected,
                "{fen} fen"
            );
        }
    }

    #[test]
    fn json_is_a_decimal_string_and_numbers_are_refused() {
        let a = Amount::from_fen(10_000_000);
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"100000.00\"");
        assert_eq!(
            serde_json::from_str::<Amount>("\"100000.5\"").unwrap(),
            Amount::from_fen(10_000_050)
        );
        for number in ["100000", "100000.5", "-1", "1e3"] {
            let err = serde_json::from_str::<Amount>(number)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("not a number (floats are not money)"),
                "{number}: {err}"
            );
        }
        let err = serde_json::from_str::<Amount>("\"1.234\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than two decimal places"), "{err}");
        assert!(serde_json::from_str::<Amount>("null").is_err());
        assert!(serde_json::from_str::<Amount>("true").is_err());
    }

    /// Reads capital numerals back into fen, so the property test below can check the
    /// writer against an independent reader.
    fn read_capital(text: &str) -> Option<i64> {
        let body = text.strip_prefix("人民币")?;
        let (negative, body) = match body.strip_prefix('负') {
            Some(rest) => (true, rest),
            None => (false, body),
        };
        let (mut total, mut section, mut digit) = (0i128, 0i128, 0i128);
        let (mut yuan, mut jiao, mut fen) = (0i128, 0i128, 0i128);
        for ch in body.chars() {
            if let Some(d) = CAPITAL_DIGITS.iter().position(|&c| c == ch) {
                digit = d as i128;
                continue;
            }
            match ch {
                '拾' => section += digit * 10,
                '佰' => section += digit * 100,
                '仟' => section += digit * 1000,
                '万' => {
                    total += (section + digit) * 10_000;
                    section = 0;
                }
                '亿' => {
                    total = (total + section + digit) * 100_000_000;
                    section = 0;
                }
                '元' => yuan = total + section + digit,
                '角' => jiao = digit,
                '分' => fen = digit,
                '整' => {}
                _ => return None,
            }
            digit = 0;
        }
        let value = yuan * 100 + jiao * 10 + fen;
        i64::try_from(if negative { -value } else { value }).ok()
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = Amount::parse(&s);
        }

        #[test]
        fn parse_never_panics_on_amount_like_text(s in "[0-9.+\\-eE ]{0,24}") {
            if let Ok(a) = Amount::parse(&s) {
                prop_assert!((0..=Amount::MAX.fen()).contains(&a.fen()));
            }
        }

        #[test]
        fn display_then_parse_round_trips(fen in 0..=Amount::MAX.fen()) {
            let a = Amount::from_fen(fen);
            let text = a.to_string();
            prop_assert_eq!(Amount::parse(&text), Ok(a));
            let json = serde_json::to_string(&a).unwrap();
            prop_assert_eq!(serde_json::from_str::<Amount>(&json).unwrap(), a);
        }

        #[test]
        fn one_decimal_means_tens_of_fen(yuan in 0i64..100_000_000, tenth in 0i64..10) {
            prop_assert_eq!(fen(&format!("{yuan}.{tenth}")), yuan * 100 + tenth * 10);
        }

        #[test]
        fn percent_boundary_is_the_floor_of_the_exact_cap(
            basis in 0..=Amount::MAX.fen(),
            percent in 0u32..=100,
        ) {
            let cap = i128::from(basis) * i128::from(percent) / 100;
            let cap = i64::try_from(cap).unwrap();
            let basis = Amount::from_fen(basis);
            prop_assert!(Amount::from_fen(cap).is_within_percent_of(basis, percent));
            prop_assert!(!Amount::from_fen(cap + 1).is_within_percent_of(basis, percent));
        }

        #[test]
        fn checked_arithmetic_matches_wide_math(a in 0..=Amount::MAX.fen(), b in 0..=Amount::MAX.fen()) {
            let (x, y) = (Amount::from_fen(a), Amount::from_fen(b));
            prop_assert_eq!(x.checked_add(y).is_some(), a + b <= Amount::MAX.fen());
            if let Some(sum) = x.checked_add(y) {
                prop_assert_eq!(sum.fen(), a + b);
            }
            prop_assert_eq!(x.checked_sub(y).map(Amount::fen), (a >= b).then(|| a - b));
        }

        #[test]
        fn chinese_capital_never_panics_and_is_well_formed(fen in any::<i64>()) {
            let text = Amount::from_fen(fen).to_chinese_capital();
            prop_assert!(text.starts_with("人民币"));
            prop_assert!(text.ends_with('整') || text.ends_with('分'));
            prop_assert_eq!(text.ends_with('分'), fen % 10 != 0);
        }

        #[test]
        fn chinese_capital_reads_back_to_the_same_amount(fen in 0..=i64::MAX) {
            let text = Amount::from_fen(fen).to_chinese_capital();
            prop_assert_eq!(read_capital(&text), Some(fen), "{}", text);
            for bad in ["零零", "零万", "零亿", "零元", "零角", "零整", "亿万"] {
                prop_assert!(fen == 0 || !text.contains(bad), "{} in {}", bad, text);
            }
        }

        #[test]
        fn chinese_capital_round_trips_in_the_usual_range(fen in 0..=Amount::MAX.fen()) {
            let text = Amount::from_fen(fen).to_chinese_capital();
            prop_assert_eq!(read_capital(&text), Some(fen), "{}", text);
        }
    }
}
