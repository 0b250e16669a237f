//! Tender rules (招标规则): what makes a project's timetable, sections and bond amounts
//! acceptable, when bids close and open, and how long a bid bond must stay valid.
//!
//! Plain values in, typed errors out. A [`TenderError`] names the field it is about with
//! the same path the API uses (`bid_deadline`, `sections[2].bond_amount`), so services
//! report it as is.

use std::collections::HashSet;

use chrono::{Duration, NaiveDateTime};
use thiserror::Error;

use super::money::{Amount, MoneyError};

/// The legal cap on a bid bond: 2% of the section's estimated price (《招标投标法实施条例》
/// 第二十六条).
pub const BID_BOND_CAP_PERCENT: u32 = 2;
/// The ceiling on any bid bond, whatever the price, and the only cap when a tender
/// states no estimated price: CNY 800,000 (《工程建设项目施工招标投标办法》第三十七条).
pub const BID_BOND_CEILING: Amount = Amount::from_fen(80_000_000);
/// The longest bid validity period (投标有效期) we accept, in days.
pub const MAX_BID_VALIDITY_DAYS: i32 = 365;
/// The most sections (标段) one project may have.
pub const MAX_SECTIONS: usize = 200;
/// The longest project or section code, in characters.
pub const MAX_CODE_LEN: usize = 64;

/// What is wrong with one value, without saying which field it came from.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TenderProblem {
    /// A project or section code that is empty, too long, or not printable ASCII.
    #[error(
        "must be 1 to {} printable ASCII characters without spaces",
        MAX_CODE_LEN
    )]
    BadCode,
    /// A new project whose bid deadline is not after now.
    #[error("must be in the future")]
    DeadlineNotInFuture,
    /// Bids opened before they close.
    #[error("must not be before the bid deadline")]
    OpeningBeforeDeadline,
    /// A bid validity period outside 1..=[`MAX_BID_VALIDITY_DAYS`] days.
    #[error("must be from 1 to {}", MAX_BID_VALIDITY_DAYS)]
    BidValidityOutOfRange,
    /// A project without sections.
    #[error("a project needs at least one section")]
    NoSections,
    /// More than [`MAX_SECTIONS`] sections.
    #[error("at most {} sections", MAX_SECTIONS)]
    TooManySections,
    /// Two sections of a project with the same code.
    #[error("{0} appears twice")]
    DuplicateCode(String),
    /// An amount that is not a decimal yuan string.
    #[error(transparent)]
    Amount(#[from] MoneyError),
    /// A bond of zero.
    #[error("must be more than zero")]
    NotPositive,
    /// A bond above [`BID_BOND_CAP_PERCENT`] of the estimated price.
    #[error(
        "a bid bond may be at most {}% of the estimated price {estimated_price}",
        BID_BOND_CAP_PERCENT
    )]
    AboveCap {
        /// The section's estimated price (招标控制价/估算价).
        estimated_price: Amount,
    },
    /// A bond above [`BID_BOND_CEILING`].
    #[error(
        "a bid bond may be at most {} whatever the estimated price",
        BID_BOND_CEILING
    )]
    AboveCeiling,
    /// A postponement (延标) whose new deadline is not later than the current one.
    #[error("must be later than the current deadline")]
    NotLater,
}

impl TenderProblem {
    /// This problem, found in `field`.
    pub fn at(self, field: impl Into<String>) -> TenderError {
        TenderError {
            field: field.into(),
            problem: self,
        }
    }
}

/// A refused tender value: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {problem}")]
pub struct TenderError {
    /// The field as the API names it, e.g. `sections[0].bond_amount`.
    pub field: String,
    /// What is wrong.
    pub problem: TenderProblem,
}

/// A project or section code (项目编号 / 标段编号), trimmed: 1 to [`MAX_CODE_LEN`]
/// printable ASCII characters without spaces, since codes are typed into other systems
/// and printed on the guarantee.
pub fn parse_code(value: &str) -> Result<String, TenderProblem> {
    let value = value.trim();
    if value.is_empty()
        || value.len() > MAX_CODE_LEN
        || !value.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(TenderProblem::BadCode);
    }
    Ok(value.to_owned())
}

/// The timetable of a new project, as of `now`: the bid deadline (投标截止时间) is in the
/// future, bids open (开标) no earlier than they close, and the bid validity period
/// (投标有效期) is 1 to [`MAX_BID_VALIDITY_DAYS`] days. Checked in that order.
pub fn check_timetable(
    now: NaiveDateTime,
    bid_deadline: NaiveDateTime,
    bid_opening_at: NaiveDateTime,
    bid_validity_days: i32,
) -> Result<(), TenderError> {
    if bid_deadline <= now {
        return Err(TenderProblem::DeadlineNotInFuture.at("bid_deadline"));
    }
    check_schedule(bid_deadline, bid_opening_at, bid_validity_days)
}

/// The timetable's rules that hold whenever it is sent, new or not: bids open no
/// earlier than they close, and the bid validity period is 1 to
/// [`MAX_BID_VALIDITY_DAYS`] days. Checked in that order.
pub fn check_schedule(
    bid_deadline: NaiveDateTime,
    bid_opening_at: NaiveDateTime,
    bid_validity_days: i32,
) -> Result<(), TenderError> {
    check_opening(bid_deadline, bid_opening_at)?;
    if !(1..=MAX_BID_VALIDITY_DAYS).contains(&bid_validity_days) {
        return Err(TenderProblem::BidValidityOutOfRange.at("bid_validity_days"));
    }
    Ok(())
}

/// Bids open no earlier than they close (opening at the deadline itself is usual).
pub fn check_opening(
    bid_deadline: NaiveDateTime,
    bid_opening_at: NaiveDateTime,
) -> Result<(), TenderError> {
    if bid_opening_at < bid_deadline {
        return Err(TenderProblem::OpeningBeforeDeadline.at("bid_opening_at"));
    }
    Ok(())
}

/// A postponement (延标) moves the deadline later, never earlier: bidders have prepared
/// for the current one. Whether the current deadline has passed is [`deadline_passed`].
pub fn check_postponement(
    current_deadline: NaiveDateTime,
    new_deadline: NaiveDateTime,
) -> Result<(), TenderError> {
    if new_deadline <= current_deadline {
        return Err(TenderProblem::NotLater.at("bid_deadline"));
    }
    Ok(())
}

/// Have bids closed at `at`? From the deadline on, nobody may apply, and the project
/// and its bonds can no longer change.
pub fn deadline_passed(bid_deadline: NaiveDateTime, at: NaiveDateTime) -> bool {
    bid_deadline <= at
}

/// Are bids opened at `at`? Until then, who bids is secret, even to the agency and the
/// tenderee (this prevents collusion, 围串标).
pub fn opened(bid_opening_at: NaiveDateTime, at: NaiveDateTime) -> bool {
    at >= bid_opening_at
}

/// The period a bid bond must cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequiredValidity {
    /// The bid deadline: the bond must be in force by then.
    pub from: NaiveDateTime,
    /// The end of the bid validity period.
    pub until: NaiveDateTime,
}

/// The validity a bid bond must have: the whole bid validity period, which starts at the
/// bid deadline and lasts `bid_validity_days` days (to the same time of day). Saturates
/// at the end of chrono's range.
pub fn required_validity(bid_deadline: NaiveDateTime, bid_validity_days: i32) -> RequiredValidity {
    let until = bid_deadline
        .checked_add_signed(Duration::days(i64::from(bid_validity_days)))
        .unwrap_or(NaiveDateTime::MAX);
    RequiredValidity {
        from: bid_deadline,
        until,
    }
}

/// A bid bond amount as typed (decimal yuan): a valid amount above zero.
pub fn parse_bond_amount(text: &str) -> Result<Amount, TenderProblem> {
    let bond = Amount::parse(text)?;
    if bond.fen() <= 0 {
        return Err(TenderProblem::NotPositive);
    }
    Ok(bond)
}

/// The legal cap: a bid bond is at most [`BID_BOND_CAP_PERCENT`] of the estimated price,
/// exactly (no rounding), when the tender states one, and never above
/// [`BID_BOND_CEILING`].
pub fn check_bond_cap(bond: Amount, estimated_price: Option<Amount>) -> Result<(), TenderProblem> {
    if bond > BID_BOND_CEILING {
        return Err(TenderProblem::AboveCeiling);
    }
    if let Some(estimated_price) = estimated_price {
        if !bond.is_within_percent_of(estimated_price, BID_BOND_CAP_PERCENT) {
            return Err(TenderProblem::AboveCap { estimated_price });
        }
    }
    Ok(())
}

/// A section (标段) as the caller typed it; the name is checked by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionInput<'a> {
    /// Section code.
    pub code: &'a str,
    /// Required bond amount, decimal yuan.
    pub bond_amount: &'a str,
    /// Estimated price (估算价), decimal yuan, when the tender states one.
    pub estimated_price: Option<&'a str>,
}

/// A section's checked terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionTerms {
    /// Trimmed code, unique within the project.
    pub code: String,
    /// Required bond amount, above zero and within the cap.
    pub bond_amount: Amount,
    /// Estimated price, when stated.
    pub estimated_price: Option<Amount>,
}

/// The sections of a new project: 1 to [`MAX_SECTIONS`] of them, codes valid and
/// unique, bond amounts above zero and within the cap of the estimated price when one is
/// stated. Fields are named `sections`, `sections[i].code`, `sections[i].bond_amount`
/// and `sections[i].estimated_price`; the first problem found is reported, section by
/// section in that order.
pub fn check_sections(sections: &[SectionInput<'_>]) -> Result<Vec<SectionTerms>, TenderError> {
    if sections.is_empty() {
        return Err(TenderProblem::NoSections.at("sections"));
    }
    if sections.len() > MAX_SECTIONS {
        return Err(TenderProblem::TooManySections.at("sections"));
    }
    let mut seen = HashSet::new();
    let mut terms = Vec::with_capacity(sections.len());
    for (i, s) in sections.iter().enumerate() {
        let field = |name: &str| format!("sections[{i}].{name}");
        let code = parse_code(s.code).map_err(|p| p.at(field("code")))?;
        if !seen.insert(code.clone()) {
            return Err(TenderProblem::DuplicateCode(code).at(field("code")));
        }
        let bond = parse_bond_amount(s.bond_amount).map_err(|p| p.at(field("bond_amount")))?;
        let estimated = s
            .estimated_price
            .map(|p| {
                Amount::parse(p).map_err(|e| TenderProblem::from(e).at(field("estimated_price")))
            })
            .transpose()?;
        check_bond_cap(bond, estimated).map_err(|p| p.at(field("bond_amount")))?;
        terms.push(SectionTerms {
            code,
            bond_amount: bond,
            estimated_price: estimated,
        });
    }
    Ok(terms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use proptest::prelude::*;

    fn at(y: i32, m: u32, d: u32, h: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(h, 0, 0))
            .expect("valid time")
    }

    fn section<'a>(code: &'a str, bond: &'a str, price: Option<&'a str>) -> SectionInput<'a> {
        SectionInput {
            code,
            bond_amount: bond,
            estimated_price: price,
        }
    }

    fn field_of<T: std::fmt::Debug>(r: Result<T, TenderError>) -> String {
        r.expect_err("refused").field
    }

    #[test]
    fn codes_are_trimmed_printable_ascii() {
        assert_eq!(parse_code("  ZB-2026-001 "), Ok("ZB-2026-001".into()));
        assert_eq!(parse_code(&"A".repeat(64)), Ok("A".repeat(64)));
        for bad in ["", "   ", "ZB 001", "标段一", "ZB\u{7f}", &"A".repeat(65)] {
            assert_eq!(parse_code(bad), Err(TenderProblem::BadCode), "{bad:?}");
        }
        assert_eq!(
            TenderProblem::BadCode.to_string(),
            "must be 1 to 64 printable ASCII characters without spaces"
        );
    }

    #[test]
    fn a_timetable_is_checked_deadline_first() {
        let now = at(2026, 12, 1, 0);
        let deadline = at(2026, 12, 20, 1);
        assert_eq!(check_timetable(now, deadline, deadline, 90), Ok(()));
        assert_eq!(
            check_timetable(now, deadline, at(2026, 12, 21, 1), 1),
            Ok(())
        );
        assert_eq!(check_timetable(now, deadline, deadline, 365), Ok(()));

        let err = check_timetable(now, now, now, 90).expect_err("past");
        assert_eq!(err.to_string(), "bid_deadline: must be in the future");
        // Several problems at once: the deadline is reported.
        assert_eq!(
            field_of(check_timetable(now, now, at(2026, 1, 1, 0), 0)),
            "bid_deadline"
        );

        let err = check_timetable(now, deadline, at(2026, 12, 20, 0), 90).expect_err("early");
        assert_eq!(
            err.to_string(),
            "bid_opening_at: must not be before the bid deadline"
        );

        for days in [0, -1, 366, i32::MAX] {
            let err = check_timetable(now, deadline, deadline, days).expect_err("days");
            assert_eq!(err.to_string(), "bid_validity_days: must be from 1 to 365");
        }
    }

    #[test]
    fn a_postponement_moves_the_deadline_later() {
        let current = at(2026, 12, 20, 1);
        assert_eq!(check_postponement(current, at(2026, 12, 27, 1)), Ok(()));
        for new in [current, at(2026, 12, 19, 1)] {
            let err = check_postponement(current, new).expect_err("not later");
            assert_eq!(
                err.to_string(),
                "bid_deadline: must be later than the current deadline"
            );
        }
        assert_eq!(check_opening(current, current), Ok(()));
        assert_eq!(
            field_of(check_opening(current, at(2026, 12, 20, 0))),
            "bid_opening_at"
        );
    }

    #[test]
    fn bids_close_at_the_deadline_and_open_at_the_opening() {
        let deadline = at(2026, 12, 20, 1);
        assert!(!deadline_passed(deadline, deadline - Duration::seconds(1)));
        assert!(deadline_passed(deadline, deadline));
        let opening = at(2026, 12, 20, 2);
        assert!(!opened(opening, opening - Duration::seconds(1)));
        assert!(opened(opening, opening));
        assert!(opened(opening, at(2027, 1, 1, 0)));
    }

    #[test]
    fn a_bond_covers_the_bid_validity_period_from_the_deadline() {
        // Deadline 09:00 on 20 Dec 2026 China time (01:00 UTC), 90 days of validity.
        let deadline = at(2026, 12, 20, 1);
        assert_eq!(
            required_validity(deadline, 90),
            RequiredValidity {
                from: deadline,
                until: at(2027, 3, 20, 1),
            }
        );
        // Across a leap day: 2028-02-29 exists.
        assert_eq!(
            required_validity(at(2028, 2, 1, 1), 30).until,
            at(2028, 3, 2, 1)
        );
        assert_eq!(
            required_validity(NaiveDateTime::MAX, 1).until,
            NaiveDateTime::MAX
        );
    }

    #[test]
    fn bond_amounts_are_above_zero_and_within_two_percent() {
        assert_eq!(
            parse_bond_amount("100000.00"),
            Ok(Amount::from_fen(10_000_000))
        );
        assert_eq!(parse_bond_amount("0"), Err(TenderProblem::NotPositive));
        assert_eq!(parse_bond_amount("0.00"), Err(TenderProblem::NotPositive));
        for bad in ["-100.00", "1e5", "100.001", "abc", ""] {
            assert!(
                matches!(parse_bond_amount(bad), Err(TenderProblem::Amount(_))),
                "{bad}"
            );
        }
        let price = Some(Amount::from_fen(500_000_000)); // 5,000,000.00 yuan
        assert_eq!(check_bond_cap(Amount::from_fen(10_000_000), price), Ok(()));
        let over = check_bond_cap(Amount::from_fen(10_000_001), price).expect_err("over");
        assert_eq!(
            over.to_string(),
            "a bid bond may be at most 2% of the estimated price 5000000.00"
        );
    }

    #[test]
    fn no_bond_exceeds_the_ceiling_with_or_without_a_price() {
        let ceiling = BID_BOND_CEILING;
        let above = Amount::from_fen(ceiling.fen() + 1);
        // Without a price, the ceiling is the cap: the CNY 10,000,000,000,000 bond of
        // the attack is refused.
        assert_eq!(check_bond_cap(ceiling, None), Ok(()));
        assert_eq!(
            check_bond_cap(above, None),
            Err(TenderProblem::AboveCeiling)
        );
        assert_eq!(
            check_bond_cap(Amount::from_fen(1_000_000_000_000_000), None),
            Err(TenderProblem::AboveCeiling)
        );
        // A huge price does not lift it.
        let huge = Some(Amount::from_fen(ceiling.fen() * 1000));
        assert_eq!(check_bond_cap(ceiling, huge), Ok(()));
        assert_eq!(
            check_bond_cap(above, huge),
            Err(TenderProblem::AboveCeiling)
        );
        let refused = check_sections(&[SectionInput {
            code: "A",
            bond_amount: "100000000000.00",
            estimated_price: None,
        }])
        .expect_err("above the ceiling");
        assert_eq!(refused.field, "sections[0].bond_amount");
    }

    #[test]
    fn sections_are_checked_and_named_by_index() {
        let terms = check_sections(&[
            section(" BD-1 ", "100000.00", Some("5000000.00")),
            section("BD-2", "20000", None),
        ])
        .expect("valid");
        assert_eq!(
            terms,
            vec![
                SectionTerms {
                    code: "BD-1".into(),
                    bond_amount: Amount::from_fen(10_000_000),
                    estimated_price: Some(Amount::from_fen(500_000_000)),
                },
                SectionTerms {
                    code: "BD-2".into(),
                    bond_amount: Amount::from_fen(2_000_000),
                    estimated_price: None,
                },
            ]
        );

        let cases: [(Vec<SectionInput<'_>>, &str, &str); 7] = [
            (vec![], "sections", "a project needs at least one section"),
            (
                vec![section("A", "1", None), section("B C", "1", None)],
                "sections[1].code",
                "must be 1 to 64 printable ASCII characters without spaces",
            ),
            (
                vec![section("A", "1", None), section(" A", "1", None)],
                "sections[1].code",
                "A appears twice",
            ),
            (
                vec![section("A", "0", None)],
                "sections[0].bond_amount",
                "must be more than zero",
            ),
            (
                vec![section("A", "1", Some("1e9"))],
                "sections[0].estimated_price",
                &MoneyError::Exponent.to_string(),
            ),
            (
                vec![section("A", "100000.01", Some("5000000.00"))],
                "sections[0].bond_amount",
                "a bid bond may be at most 2% of the estimated price 5000000.00",
            ),
            // A duplicate code is found before the second section's bad amount.
            (
                vec![section("A", "1", None), section("A", "x", None)],
                "sections[1].code",
                "A appears twice",
            ),
        ];
        for (sections, field, message) in cases {
            let err = check_sections(&sections).expect_err("refused");
            assert_eq!(
                (err.field.as_str(), err.problem.to_string().as_str()),
                (field, message)
            );
        }

        let many: Vec<_> = (0..=MAX_SECTIONS)
            .map(|_| section("A", "1", None))
            .collect();
        assert_eq!(
            check_sections(&many).expect_err("too many").to_string(),
            "sections: at most 200 sections"
        );
        let codes: Vec<String> = (0..MAX_SECTIONS).map(|i| format!("BD-{i}")).collect();
        let most: Vec<_> = codes.iter().map(|c| section(c, "1", None)).collect();
        assert_eq!(check_sections(&most).map(|t| t.len()), Ok(MAX_SECTIONS));
    }

    proptest! {
        #[test]
        fn the_cap_is_exactly_two_percent(price in 0i64..=BID_BOND_CEILING.fen() * 50 - 50) {
            // 2% of the price, rounded down to the fen, is the largest bond allowed.
            let cap = price / 50;
            let price = Amount::from_fen(price);
            prop_assert_eq!(check_bond_cap(Amount::from_fen(cap), Some(price)), Ok(()));
            prop_assert_eq!(
                check_bond_cap(Amount::from_fen(cap + 1), Some(price)),
                Err(TenderProblem::AboveCap { estimated_price: price })
            );
        }

        #[test]
        fn the_validity_lasts_the_given_days(secs in 0i64..4_102_444_800, days in 1i32..=365) {
            let deadline = chrono::DateTime::from_timestamp(secs, 0).expect("in range").naive_utc();
            let v = required_validity(deadline, days);
            prop_assert_eq!(v.from, deadline);
            prop_assert_eq!(v.until - v.from, Duration::days(i64::from(days)));
        }
    }
}
