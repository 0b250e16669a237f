//! Waivers (免押): a deposit a provider does not take because a subject's credit rights
//! code was granted, the credit line it holds until it is settled, and why a check is
//! refused. The rules here are pure; the counters and states live in the database
//! (`services::waivers`).

use std::collections::BTreeMap;

use super::string_enum::string_enum;
use serde::Deserialize;
use thiserror::Error;

use super::catalogue::{CreditLevel, SubjectKind};
use super::money::Amount;
use super::party::ProviderKind;

/// The shipped credit lines file.
pub const CREDIT_LINES_TOML: &str = include_str!("../../catalogue/credit_lines.toml");

string_enum! {
    /// Why a check of a credit rights code was refused: all a provider learns besides
    /// "granted" (never the score, the records or the ID number).
    pub enum RefusalReason ("refusal reason") {
        /// Not a credit rights code at all.
        Malformed => "malformed",
        /// Its seal does not hold: made or changed by someone without the key.
        ForgedOrAltered => "forged_or_altered",
        /// Past its expiry (the exchange's clock).
        Expired => "expired",
        /// The subject showed it to another provider.
        NotForThisProvider => "not_for_this_provider",
        /// A check used it already (granted or refused).
        AlreadyUsed => "already_used",
        /// The matter's deposit is not replaced by credit (or not collected any more).
        NotCreditSubstituted => "not_credit_substituted",
        /// The matter is for the other kind of subject (persons or enterprises).
        NotForThisSubject => "not_for_this_subject",
        /// This kind of provider does not collect this deposit.
        NotServedByProvider => "not_served_by_provider",
        /// On the serious-dishonesty list (严重失信, 联合惩戒): every matter is refused.
        DishonestyList => "dishonesty_list",
        /// A default of an earlier waiver is still unpaid.
        UnsettledDefault => "unsettled_default",
        /// The level is below what the matter requires.
        LevelTooLow => "level_too_low",
        /// The amount is above what is left of the line (in total or for the matter).
        AboveLine => "above_line",
    }
}

impl RefusalReason {
    /// Whether the refusal comes before the code is used: a code refused for one of
    /// these stays as it was (a forged or expired one has no use to lose; one shown to
    /// another provider or used already is not the caller's to spend).
    pub fn leaves_code_unused(self) -> bool {
        matches!(
            self,
            RefusalReason::Malformed
                | RefusalReason::ForgedOrAltered
                | RefusalReason::Expired
                | RefusalReason::NotForThisProvider
                | RefusalReason::AlreadyUsed
        )
    }
}

string_enum! {
    /// Where a waiver stands.
    pub enum WaiverState ("waiver state") {
        /// Granted; nothing billed yet.
        Open => "open",
        /// Billed, due by the end of the repayment window.
        Billed => "billed",
        /// Paid (on time or late): the line is free again.
        Paid => "paid",
        /// Not paid by the window's end and its grace: a negative record, the line held.
        Defaulted => "defaulted",
        /// Paid after a default: the line is free again, the record stays.
        Repaid => "repaid",
    }
}

string_enum! {
    /// What a provider reports of a waiver.
    pub enum Settlement ("settlement") {
        /// The subject paid what it owed (on time or late is the exchange's to say).
        Paid => "paid",
        /// The bill is overdue and unpaid.
        Defaulted => "defaulted",
    }
}

/// Why a waiver cannot move as asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum WaiverMoveError {
    #[error("a waiver {from} cannot be {to}")]
    Illegal {
        from: &'static str,
        to: &'static str,
    },
    #[error("the bill is not overdue yet: a default can be reported after its due time")]
    NotOverdue,
}

impl WaiverState {
    /// The state a settlement reported in this state leads to.
    pub fn settle(self, s: Settlement, overdue: bool) -> Result<WaiverState, WaiverMoveError> {
        match (self, s) {
            (WaiverState::Open | WaiverState::Billed, Settlement::Paid) => Ok(WaiverState::Paid),
            (WaiverState::Defaulted, Settlement::Paid) => Ok(WaiverState::Repaid),
            (WaiverState::Billed, Settlement::Defaulted) if overdue => Ok(WaiverState::Defaulted),
            (WaiverState::Billed, Settlement::Defaulted) => Err(WaiverMoveError::NotOverdue),
            (from, to) => Err(WaiverMoveError::Illegal {
                from: from.as_str(),
                to: match to {
                    Settlement::Paid => "paid",
                    Settlement::Defaulted => "defaulted",
                },
            }),
        }
    }

    /// Whether the waiver still holds its amount of the line.
    pub fn holds_line(self) -> bool {
        matches!(
            self,
            WaiverState::Open | WaiverState::Billed | WaiverState::Defaulted
        )
    }
}

/// Whether a provider of `kind` collects the deposit of `matter` (a library does not
/// admit patients): the catalogue's credit-substituted matters of the five scenarios.
pub fn provider_collects(kind: ProviderKind, matter: &str) -> bool {
    let matters: &[&str] = match kind {
        ProviderKind::Hospital => &["hospital_admission"],
        ProviderKind::Hotel => &["hotel_room"],
        ProviderKind::Library => &["library_lending"],
        ProviderKind::Parking => &["parking"],
        ProviderKind::Apartment => &["talent_apartment", "elderly_apartment", "rental_housing"],
        ProviderKind::WageAuthority => &["migrant_wage_deposit"],
        ProviderKind::ProjectOwner => &["performance_bond"],
        ProviderKind::TourismAuthority => &["travel_agency_quality"],
    };
    matters.contains(&matter)
}

/// The matter as a check needs it, from the catalogue.
#[derive(Debug, Clone)]
pub struct MatterTerms {
    pub credit_substituted: bool,
    pub required_level: Option<CreditLevel>,
    pub subject_kind: Option<SubjectKind>,
    /// The most of this matter's deposits a subject may hold waived at once.
    pub ceiling: Option<Amount>,
}

/// The subject as a check needs it: its row and its line's counters.
#[derive(Debug, Clone)]
pub struct Holder {
    pub kind: SubjectKind,
    pub level: CreditLevel,
    pub on_dishonesty_list: bool,
    pub defaults_open: i32,
    pub line_in_use: Amount,
    pub matter_in_use: Amount,
}

/// The subject-dependent part of a check, in the order the refusals are given: the
/// matter, then sanctions, then unpaid defaults, then the level, then the line.
pub fn decide(
    config: &LinesConfig,
    matter: &MatterTerms,
    holder: &Holder,
    amount: Amount,
) -> Result<(), RefusalReason> {
    if !matter.credit_substituted {
        return Err(RefusalReason::NotCreditSubstituted);
    }
    if matter.subject_kind.is_some_and(|k| k != holder.kind) {
        return Err(RefusalReason::NotForThisSubject);
    }
    if holder.on_dishonesty_list {
        return Err(RefusalReason::DishonestyList);
    }
    if holder.defaults_open > 0 {
        return Err(RefusalReason::UnsettledDefault);
    }
    if matter
        .required_level
        .is_some_and(|required| !holder.level.meets(required))
    {
        return Err(RefusalReason::LevelTooLow);
    }
    let total_left = config.line(holder.level).fen() - holder.line_in_use.fen();
    let matter_left = matter
        .ceiling
        .map_or(i64::MAX, |c| c.fen() - holder.matter_in_use.fen());
    if amount.fen() > total_left || amount.fen() > matter_left {
        return Err(RefusalReason::AboveLine);
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinesFile {
    code_minutes: i64,
    repayment_days: i64,
    default_after_days: i64,
    paid_on_time_category: String,
    paid_late_category: String,
    defaulted_category: String,
    line: BTreeMap<String, String>,
}

/// Why the credit lines file was refused (a defect of the repository, caught by the
/// unit tests).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LinesError {
    #[error("the credit lines file is not valid: {0}")]
    Toml(String),
    #[error("{0} must be between 1 and {1}")]
    Range(&'static str, i64),
    #[error("the line must give every level exactly once, as an amount: {0}")]
    Line(String),
    #[error("the line must not grow as the level falls")]
    Rising,
    #[error("{0:?} is not a category code")]
    Category(String),
}

/// The credit lines file, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinesConfig {
    pub code_minutes: i64,
    pub repayment_days: i64,
    pub default_after_days: i64,
    pub paid_on_time_category: String,
    pub paid_late_category: String,
    pub defaulted_category: String,
    lines: Vec<(CreditLevel, Amount)>,
}

impl LinesConfig {
    pub fn parse(toml_text: &str) -> Result<LinesConfig, LinesError> {
        let file: LinesFile =
            toml::from_str(toml_text).map_err(|e| LinesError::Toml(e.to_string()))?;
        for (name, value, max) in [
            ("code_minutes", file.code_minutes, 60),
            ("repayment_days", file.repayment_days, 365),
            ("default_after_days", file.default_after_days, 365),
        ] {
            if !(1..=max).contains(&value) {
                return Err(LinesError::Range(name, max));
            }
        }
        for code in [
            &file.paid_on_time_category,
            &file.paid_late_category,
            &file.defaulted_category,
        ] {
            if !super::catalogue::is_code(code) {
                return Err(LinesError::Category(code.clone()));
            }
        }
        if file.line.len() != CreditLevel::ALL.len() {
            return Err(LinesError::Line(format!("{} entries", file.line.len())));
        }
        let mut lines = Vec::new();
        for level in CreditLevel::ALL {
            let text = file
                .line
                .get(level.as_str())
                .ok_or_else(|| LinesError::Line(format!("{level} is missing")))?;
            let amount =
                Amount::parse(text).map_err(|e| LinesError::Line(format!("{level}: {e}")))?;
            lines.push((*level, amount));
        }
        if lines.windows(2).any(|w| w[1].1 > w[0].1) {
            return Err(LinesError::Rising);
        }
        Ok(LinesConfig {
            code_minutes: file.code_minutes,
            repayment_days: file.repayment_days,
            default_after_days: file.default_after_days,
            paid_on_time_category: file.paid_on_time_category,
            paid_late_category: file.paid_late_category,
            defaulted_category: file.defaulted_category,
            lines,
        })
    }

    /// The shipped file, read once (checked by the unit tests).
    pub fn shipped() -> Result<&'static LinesConfig, LinesError> {
        static SHIPPED: std::sync::OnceLock<Result<LinesConfig, LinesError>> =
            std::sync::OnceLock::new();
        SHIPPED
            .get_or_init(|| LinesConfig::parse(CREDIT_LINES_TOML))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The total line of a level.
    pub fn line(&self, level: CreditLevel) -> Amount {
        self.lines
            .iter()
            .find(|(l, _)| *l == level)
            .map_or(Amount::ZERO, |(_, a)| *a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> &'static LinesConfig {
        LinesConfig::shipped().expect("the shipped credit lines file is valid")
    }

    fn hotel() -> MatterTerms {
        MatterTerms {
            credit_substituted: true,
            required_level: Some(CreditLevel::A),
            subject_kind: Some(SubjectKind::Person),
            ceiling: Some(Amount::parse("2000.00").expect("amount")),
        }
    }

    fn good_resident() -> Holder {
        Holder {
            kind: SubjectKind::Person,
            level: CreditLevel::A,
            on_dishonesty_list: false,
            defaults_open: 0,
            line_in_use: Amount::ZERO,
            matter_in_use: Amount::ZERO,
        }
    }

    fn yuan(text: &str) -> Amount {
        Amount::parse(text).expect("amount")
    }

    #[test]
    fn the_shipped_lines_fall_with_the_level_and_name_shipped_categories() {
        let c = config();
        assert_eq!(c.line(CreditLevel::Aa), yuan("50000.00"));
        assert_eq!(c.line(CreditLevel::D), Amount::ZERO);
        let categories = super::super::catalogue::seed_categories(
            super::super::catalogue::RECORD_CATEGORIES_TOML,
        )
        .expect("valid");
        for code in [
            &c.paid_on_time_category,
            &c.paid_late_category,
            &c.defaulted_category,
        ] {
            assert!(categories.iter().any(|(k, _)| k == code), "{code}");
        }
    }

    #[test]
    fn a_rising_line_or_a_missing_level_is_refused() {
        let rising = CREDIT_LINES_TOML.replace("B = \"5000.00\"", "B = \"90000.00\"");
        assert_eq!(LinesConfig::parse(&rising), Err(LinesError::Rising));
        let missing = CREDIT_LINES_TOML.replace("C = \"0.00\"\n", "");
        assert!(matches!(
            LinesConfig::parse(&missing),
            Err(LinesError::Line(_))
        ));
        let zero = CREDIT_LINES_TOML.replace("code_minutes = 5", "code_minutes = 0");
        assert_eq!(
            LinesConfig::parse(&zero),
            Err(LinesError::Range("code_minutes", 60))
        );
    }

    #[test]
    fn a_good_resident_is_granted_within_the_matter_and_the_total_line() {
        assert_eq!(
            decide(config(), &hotel(), &good_resident(), yuan("500.00")),
            Ok(())
        );
        assert_eq!(
            decide(config(), &hotel(), &good_resident(), yuan("2000.00")),
            Ok(())
        );
        assert_eq!(
            decide(config(), &hotel(), &good_resident(), yuan("2000.01")),
            Err(RefusalReason::AboveLine)
        );
        let mut busy = good_resident();
        busy.matter_in_use = yuan("1800.00");
        assert_eq!(
            decide(config(), &hotel(), &busy, yuan("300.00")),
            Err(RefusalReason::AboveLine)
        );
        let mut full = good_resident();
        full.line_in_use = yuan("29900.00");
        assert_eq!(
            decide(config(), &hotel(), &full, yuan("100.01")),
            Err(RefusalReason::AboveLine)
        );
        assert_eq!(decide(config(), &hotel(), &full, yuan("100.00")), Ok(()));
    }

    #[test]
    fn refusals_come_in_order_matter_sanction_default_level_line() {
        let mut worst = good_resident();
        worst.on_dishonesty_list = true;
        worst.defaults_open = 1;
        worst.level = CreditLevel::D;
        let huge = yuan("99999.00");
        assert_eq!(
            decide(config(), &hotel(), &worst, huge),
            Err(RefusalReason::DishonestyList)
        );
        worst.on_dishonesty_list = false;
        assert_eq!(
            decide(config(), &hotel(), &worst, huge),
            Err(RefusalReason::UnsettledDefault)
        );
        worst.defaults_open = 0;
        assert_eq!(
            decide(config(), &hotel(), &worst, huge),
            Err(RefusalReason::LevelTooLow)
        );
        let mut not_substituted = hotel();
        not_substituted.credit_substituted = false;
        assert_eq!(
            decide(config(), &not_substituted, &good_resident(), yuan("1.00")),
            Err(RefusalReason::NotCreditSubstituted)
        );
        let mut firm = good_resident();
        firm.kind = SubjectKind::Enterprise;
        assert_eq!(
            decide(config(), &hotel(), &firm, yuan("1.00")),
            Err(RefusalReason::NotForThisSubject)
        );
    }

    #[test]
    fn settlements_move_only_along_the_lifecycle() {
        use Settlement as S;
        use WaiverState as W;
        assert_eq!(W::Open.settle(S::Paid, false), Ok(W::Paid));
        assert_eq!(W::Billed.settle(S::Paid, true), Ok(W::Paid));
        assert_eq!(W::Billed.settle(S::Defaulted, true), Ok(W::Defaulted));
        assert_eq!(
            W::Billed.settle(S::Defaulted, false),
            Err(WaiverMoveError::NotOverdue)
        );
        assert!(W::Open.settle(S::Defaulted, true).is_err());
        assert_eq!(W::Defaulted.settle(S::Paid, true), Ok(W::Repaid));
        for done in [W::Paid, W::Repaid] {
            assert!(done.settle(S::Paid, true).is_err());
            assert!(done.settle(S::Defaulted, true).is_err());
            assert!(!done.holds_line());
        }
        assert!(W::Defaulted.holds_line());
    }

    #[test]
    fn each_provider_collects_only_its_own_deposits() {
        assert!(provider_collects(ProviderKind::Hotel, "hotel_room"));
        assert!(!provider_collects(
            ProviderKind::Library,
            "hospital_admission"
        ));
        assert!(provider_collects(
            ProviderKind::Hospital,
            "hospital_admission"
        ));
        for kind in ProviderKind::ALL {
            assert!(!provider_collects(*kind, "bid_bond"));
        }
    }

    #[test]
    fn every_credit_substituted_matter_but_the_bid_bond_has_a_provider() {
        use crate::domain::catalogue::{seed_matters, MatterPath, MATTERS_TOML};
        let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 3).expect("date");
        let matters = seed_matters(MATTERS_TOML, today).expect("the seeded catalogue");
        let substituted: Vec<&String> = matters
            .iter()
            .filter(|(code, m)| m.path == MatterPath::CreditSubstitution && code != "bid_bond")
            .map(|(code, _)| code)
            .collect();
        assert!(substituted.len() >= 8, "{substituted:?}");
        for code in substituted {
            assert!(
                ProviderKind::ALL
                    .iter()
                    .any(|k| provider_collects(*k, code)),
                "nobody collects {code}"
            );
        }
    }

    #[test]
    fn only_the_early_refusals_leave_a_code_unused() {
        assert!(RefusalReason::AlreadyUsed.leaves_code_unused());
        assert!(!RefusalReason::LevelTooLow.leaves_code_unused());
        assert!(!RefusalReason::AboveLine.leaves_code_unused());
    }
}
