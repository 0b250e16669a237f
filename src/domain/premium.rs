//! Premium terms (保费标准): what an issuer publishes it charges for a bid bond, and the
//! quote those terms give for one bond amount. A rate in basis points of the bond
//! (15 = 0.15 %), a minimum premium, optionally the largest bond the issuer guarantees,
//! and the working days it promises to answer within. Integer arithmetic only.

use thiserror::Error;

use super::money::Amount;

/// The highest rate an issuer may publish: 1000 basis points, 10 % of the bond. Real
/// bid-bond premiums are a fraction of a percent; anything above this is a typing error.
pub const MAX_RATE_BP: u32 = 1_000;
/// The longest turnaround an issuer may promise, in working days.
pub const MAX_TURNAROUND_DAYS: u32 = 30;

/// Terms an issuer has published and not withdrawn. Built only through
/// [`PremiumTerms::new`], so every value is within its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PremiumTerms {
    rate_bp: u32,
    minimum: Amount,
    maximum_bond: Option<Amount>,
    turnaround_days: u32,
}

/// Why terms were refused; each names the field it is about.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TermsError {
    #[error("the rate must not be negative")]
    NegativeRate,
    #[error("the rate must be at most {MAX_RATE_BP} basis points (10 %)")]
    RateTooHigh,
    #[error("the rate must be a percentage with at most two decimals, e.g. 0.15")]
    RateFormat,
    #[error("a rate of zero needs a minimum premium above zero")]
    NothingCharged,
    #[error("the minimum premium must be between 0 and {}", Amount::MAX)]
    MinimumOutOfRange,
    #[error("the maximum bond amount must be more than zero")]
    MaximumNotPositive,
    #[error("the turnaround must be 1 to {MAX_TURNAROUND_DAYS} working days")]
    TurnaroundOutOfRange,
}

impl TermsError {
    /// The field the error is about, as the API and the form spell it.
    pub fn field(&self) -> &'static str {
        match self {
            TermsError::NegativeRate
            | TermsError::RateTooHigh
            | TermsError::RateFormat
            | TermsError::NothingCharged => "rate_bp",
            TermsError::MinimumOutOfRange => "minimum_premium",
            TermsError::MaximumNotPositive => "maximum_bond",
            TermsError::TurnaroundOutOfRange => "turnaround_days",
        }
    }
}

/// Why terms give no quote for an amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum QuoteError {
    /// The issuer does not guarantee bonds this large.
    #[error("the issuer guarantees bonds up to {maximum} only")]
    AboveMaximum { maximum: Amount },
}

impl PremiumTerms {
    /// Checks and builds terms: a rate of 0 to [`MAX_RATE_BP`] basis points, a minimum
    /// of 0 to [`Amount::MAX`] fen (not both zero: terms must charge something), a
    /// positive maximum bond when given, 1 to [`MAX_TURNAROUND_DAYS`] working days.
    /// Refuses with the first problem; [`PremiumTerms::check`] names them all.
    pub fn new(
        rate_bp: i64,
        minimum_fen: i64,
        maximum_bond_fen: Option<i64>,
        turnaround_days: i64,
    ) -> Result<PremiumTerms, TermsError> {
        PremiumTerms::check(rate_bp, minimum_fen, maximum_bond_fen, turnaround_days)
            .map_err(|mut errors| errors.remove(0))
    }

    /// Like [`PremiumTerms::new`], with every problem (one per field at most), so that
    /// a form can show each beside its field. Never an empty list.
    pub fn check(
        rate_bp: i64,
        minimum_fen: i64,
        maximum_bond_fen: Option<i64>,
        turnaround_days: i64,
    ) -> Result<PremiumTerms, Vec<TermsError>> {
        let rate = if rate_bp < 0 {
            Err(TermsError::NegativeRate)
        } else {
            u32::try_from(rate_bp)
                .ok()
                .filter(|&r| r <= MAX_RATE_BP)
                .ok_or(TermsError::RateTooHigh)
        };
        let minimum = Amount::try_from_fen(minimum_fen).map_err(|_| TermsError::MinimumOutOfRange);
        let rate = match (rate, &minimum) {
            (Ok(0), Ok(Amount::ZERO)) => Err(TermsError::NothingCharged),
            (rate, _) => rate,
        };
        let maximum_bond = maximum_bond_fen
            .map(|fen| match Amount::try_from_fen(fen) {
                Ok(a) if a.fen() > 0 => Ok(a),
                _ => Err(TermsError::MaximumNotPositive),
            })
            .transpose();
        let turnaround = u32::try_from(turnaround_days)
            .ok()
            .filter(|d| (1..=MAX_TURNAROUND_DAYS).contains(d))
            .ok_or(TermsError::TurnaroundOutOfRange);
        match (rate, minimum, maximum_bond, turnaround) {
            (Ok(rate_bp), Ok(minimum), Ok(maximum_bond), Ok(turnaround_days)) => Ok(PremiumTerms {
                rate_bp,
                minimum,
                maximum_bond,
                turnaround_days,
            }),
            (rate, minimum, maximum, turnaround) => {
                Err([rate.err(), minimum.err(), maximum.err(), turnaround.err()]
                    .into_iter()
                    .flatten()
                    .collect())
            }
        }
    }

    pub fn rate_bp(&self) -> u32 {
        self.rate_bp
    }

    pub fn minimum(&self) -> Amount {
        self.minimum
    }

    pub fn maximum_bond(&self) -> Option<Amount> {
        self.maximum_bond
    }

    pub fn turnaround_days(&self) -> u32 {
        self.turnaround_days
    }

    /// Whether the issuer guarantees a bond of `bond`.
    pub fn serves(&self, bond: Amount) -> bool {
        self.maximum_bond.is_none_or(|max| bond <= max)
    }

    /// The premium for a bond of `bond`: the bond times the rate, rounded up to the
    /// fen, but never less than the minimum; refused above the maximum bond.
    pub fn quote(&self, bond: Amount) -> Result<Amount, QuoteError> {
        if let Some(maximum) = self.maximum_bond.filter(|_| !self.serves(bond)) {
            return Err(QuoteError::AboveMaximum { maximum });
        }
        // i128: 10^15 fen times 10^3 basis points does not fit i64's 9.2 * 10^18.
        let product = i128::from(bond.fen().max(0)) * i128::from(self.rate_bp);
        let by_rate = (product + 9_999) / 10_000;
        // At most 10 % of a bond of at most Amount::MAX: always fits.
        let by_rate = Amount::from_fen(i64::try_from(by_rate).unwrap_or(i64::MAX));
        Ok(by_rate.max(self.minimum))
    }
}

/// A rate in basis points as a percentage with two decimals: 15 -> `0.15`.
pub fn rate_percent(rate_bp: u32) -> String {
    format!("{}.{:02}", rate_bp / 100, rate_bp % 100)
}

/// A percentage as people type it (`0.15`, `1`, `1.5`, at most two decimals, no sign)
/// in basis points.
pub fn parse_rate_percent(typed: &str) -> Result<i64, TermsError> {
    let typed = typed.trim().trim_end_matches('%').trim_end();
    let (whole, fraction) = typed.split_once('.').unwrap_or((typed, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || whole.len() > 4
        || fraction.len() > 2
        || (typed.contains('.') && fraction.is_empty())
        || !digits(whole)
        || !digits(fraction)
    {
        return Err(TermsError::RateFormat);
    }
    let whole: i64 = whole.parse().map_err(|_| TermsError::RateFormat)?;
    let fraction: i64 = format!("{fraction:0<2}")
        .parse()
        .map_err(|_| TermsError::RateFormat)?;
    Ok(whole * 100 + fraction)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn yuan(s: &str) -> Amount {
        Amount::parse(s).expect("amount")
    }

    fn terms(rate_bp: i64, minimum: &str, maximum: Option<&str>) -> PremiumTerms {
        PremiumTerms::new(
            rate_bp,
            yuan(minimum).fen(),
            maximum.map(|m| yuan(m).fen()),
            3,
        )
        .expect("terms")
    }

    #[test]
    fn the_quote_is_the_rate_rounded_up_or_the_minimum() {
        let t = terms(15, "500.00", None);
        // 0.15 % of 800,000.00 is 1,200.00.
        assert_eq!(t.quote(yuan("800000")), Ok(yuan("1200.00")));
        // 0.15 % of 80,000.00 is 120.00: the minimum applies.
        assert_eq!(t.quote(yuan("80000")), Ok(yuan("500.00")));
        // 0.15 % of 1,000,000.01 is 1,500.000015: one fen up.
        assert_eq!(t.quote(yuan("1000000.01")), Ok(yuan("1500.01")));
        // Exactly at the minimum.
        assert_eq!(t.quote(yuan("333333.33")), Ok(yuan("500.00")));
        assert_eq!(t.quote(yuan("333333.34")), Ok(yuan("500.01")));
        assert_eq!(t.quote(Amount::ZERO), Ok(yuan("500.00")));
    }

    #[test]
    fn the_maximum_bond_is_served_and_one_fen_more_is_not() {
        let t = terms(20, "0", Some("1000000"));
        assert_eq!(t.quote(yuan("1000000")), Ok(yuan("2000.00")));
        assert!(t.serves(yuan("1000000")));
        assert!(!t.serves(yuan("1000000.01")));
        assert_eq!(
            t.quote(yuan("1000000.01")),
            Err(QuoteError::AboveMaximum {
                maximum: yuan("1000000")
            })
        );
    }

    #[test]
    fn the_largest_amounts_do_not_overflow() {
        let t = terms(i64::from(MAX_RATE_BP), "0.01", None);
        assert_eq!(
            t.quote(Amount::MAX),
            Ok(Amount::from_fen(Amount::MAX.fen() / 10))
        );
        let t = terms(1, "0.01", None);
        assert_eq!(t.quote(Amount::from_fen(1)), Ok(Amount::from_fen(1)));
    }

    #[test]
    fn bad_terms_name_their_field() {
        let bad = |r, m, x, d| PremiumTerms::new(r, m, x, d).expect_err("refused");
        assert_eq!(bad(-1, 100, None, 3), TermsError::NegativeRate);
        assert_eq!(bad(1001, 100, None, 3), TermsError::RateTooHigh);
        assert_eq!(bad(i64::MAX, 100, None, 3), TermsError::RateTooHigh);
        assert_eq!(bad(0, 0, None, 3), TermsError::NothingCharged);
        assert_eq!(bad(10, -1, None, 3), TermsError::MinimumOutOfRange);
        assert_eq!(
            bad(10, Amount::MAX.fen() + 1, None, 3),
            TermsError::MinimumOutOfRange
        );
        assert_eq!(bad(10, 0, Some(0), 3), TermsError::MaximumNotPositive);
        assert_eq!(bad(10, 0, Some(-5), 3), TermsError::MaximumNotPositive);
        assert_eq!(bad(10, 0, None, 0), TermsError::TurnaroundOutOfRange);
        assert_eq!(bad(10, 0, None, 31), TermsError::TurnaroundOutOfRange);
        assert_eq!(bad(10, 0, None, -3), TermsError::TurnaroundOutOfRange);
        assert_eq!(TermsError::NothingCharged.field(), "rate_bp");
        // A rate of zero with a minimum is a flat fee; a minimum of zero with a rate is
        // a pure rate: both are terms.
        assert!(PremiumTerms::new(0, 100, None, 1).is_ok());
        assert!(PremiumTerms::new(1000, 0, None, 30).is_ok());
        // Every wrong field at once, in the order of the fields.
        assert_eq!(
            PremiumTerms::check(2000, -1, Some(0), 0),
            Err(vec![
                TermsError::RateTooHigh,
                TermsError::MinimumOutOfRange,
                TermsError::MaximumNotPositive,
                TermsError::TurnaroundOutOfRange,
            ])
        );
    }

    #[test]
    fn rates_are_typed_and_shown_as_percentages() {
        assert_eq!(parse_rate_percent("0.15"), Ok(15));
        assert_eq!(parse_rate_percent(" 1.5 % "), Ok(150));
        assert_eq!(parse_rate_percent("10"), Ok(1000));
        assert_eq!(parse_rate_percent("12.34"), Ok(1234));
        for bad in [
            "", ".5", "1.", "0.155", "-0.1", "1e2", "abc", "99999", "0,15",
        ] {
            assert_eq!(
                parse_rate_percent(bad),
                Err(TermsError::RateFormat),
                "{bad}"
            );
        }
        assert_eq!(rate_percent(15), "0.15");
        assert_eq!(rate_percent(1000), "10.00");
        assert_eq!(rate_percent(105), "1.05");
    }

    fn any_terms() -> impl Strategy<Value = PremiumTerms> {
        (
            0..=i64::from(MAX_RATE_BP),
            0..=Amount::MAX.fen(),
            proptest::option::of(1..=Amount::MAX.fen()),
        )
            .prop_filter_map("terms must charge something", |(r, m, x)| {
                PremiumTerms::new(r, m, x, 5).ok()
            })
    }

    proptest! {
        #[test]
        fn the_quote_never_falls_as_the_bond_grows(
            t in any_terms(),
            a in 0..=Amount::MAX.fen(),
            b in 0..=Amount::MAX.fen(),
        ) {
            let (low, high) = (Amount::from_fen(a.min(b)), Amount::from_fen(a.max(b)));
            if let (Ok(q_low), Ok(q_high)) = (t.quote(low), t.quote(high)) {
                prop_assert!(q_low <= q_high);
            }
            // A bond the issuer serves makes every smaller bond served too.
            if t.serves(high) {
                prop_assert!(t.serves(low));
            }
        }

        #[test]
        fn the_quote_is_never_below_the_minimum_nor_the_exact_rate(
            t in any_terms(),
            bond in 0..=Amount::MAX.fen(),
        ) {
            let bond = Amount::from_fen(bond);
            match t.quote(bond) {
                Ok(q) => {
                    prop_assert!(q >= t.minimum());
                    prop_assert!(q <= Amount::MAX);
                    let exact = i128::from(bond.fen()) * i128::from(t.rate_bp());
                    let q = i128::from(q.fen()) * 10_000;
                    // Rounded up, by less than one fen.
                    prop_assert!(q >= exact);
                    if q > i128::from(t.minimum().fen()) * 10_000 {
                        prop_assert!(q - exact < 10_000);
                    }
                }
                Err(QuoteError::AboveMaximum { maximum }) => {
                    prop_assert!(bond > maximum);
                }
            }
        }
    }
}
