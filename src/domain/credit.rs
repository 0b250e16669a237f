//! Credit scores and levels (信用分与信用等级): the rules that turn a subject's records in
//! force into a score per dimension, a score and a level, read from the data file
//! `catalogue/credit_levels.toml`.
//!
//! Everything here is arithmetic on what the subject row holds: a record arriving adds
//! its signed points to its dimension, a record leaving force (cancelled, lapsed) takes
//! the same off. The level follows from the score, except that a subject with a record
//! in force of a serious-dishonesty category (严重失信) is at the lowest level whatever
//! its score.

use std::collections::BTreeSet;

use chrono::{Duration, NaiveDate, NaiveDateTime};
use serde::Deserialize;
use thiserror::Error;

use super::catalogue::{CreditLevel, Dimension, Polarity};
use super::string_enum::string_enum;
use super::time::{self, TimeInputError};

/// The levels file as shipped.
pub const CREDIT_LEVELS_TOML: &str = include_str!("../../catalogue/credit_levels.toml");

string_enum! {
    /// Why a record cancels an earlier one.
    pub enum CancelReason ("cancel reason") {
        /// The earlier record was wrong (更正).
        Correction => "correction",
        /// The subject repaired its credit (信用修复).
        CreditRepair => "credit_repair",
    }
}

string_enum! {
    /// Why someone other than the subject looked at its archive (查询用途).
    pub enum LookPurpose ("look purpose") {
        /// The credit office at its work.
        CreditOffice => "credit_office",
        /// An issuer underwriting an application made to it (授信审查).
        Underwriting => "underwriting",
    }
}

/// The points a record carries, signed by its polarity: what it adds to its dimension
/// while in force.
pub fn signed_points(polarity: Polarity, points: i32) -> i32 {
    match polarity {
        Polarity::Positive => points,
        Polarity::Negative => -points,
    }
}

/// Per dimension, the signed sum of the points of the records in force.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DimensionScores {
    pub identity: i32,
    pub compliance: i32,
    pub public_interest: i32,
    pub history: i32,
}

impl DimensionScores {
    pub fn get(&self, dimension: Dimension) -> i32 {
        match dimension {
            Dimension::Identity => self.identity,
            Dimension::Compliance => self.compliance,
            Dimension::PublicInterest => self.public_interest,
            Dimension::History => self.history,
        }
    }

    /// Adds `delta` to one dimension (saturating: a sum of bounded points never gets
    /// near the limits, and saturation keeps a corrupt row from wrapping around).
    pub fn add(&mut self, dimension: Dimension, delta: i32) {
        let slot = match dimension {
            Dimension::Identity => &mut self.identity,
            Dimension::Compliance => &mut self.compliance,
            Dimension::PublicInterest => &mut self.public_interest,
            Dimension::History => &mut self.history,
        };
        *slot = slot.saturating_add(delta);
    }

    /// The sum over the dimensions.
    pub fn total(&self) -> i64 {
        Dimension::ALL.iter().map(|d| i64::from(self.get(*d))).sum()
    }
}

/// Where a subject stands: its score and its level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub score: i32,
    pub level: CreditLevel,
}

/// The levels file as typed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LevelsFile {
    base_score: i32,
    floor: i32,
    ceiling: i32,
    #[serde(default)]
    serious_dishonesty: Vec<String>,
    level: Vec<ThresholdEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdEntry {
    level: CreditLevel,
    min_score: i32,
}

/// Why a levels file was refused (a defect of the repository, caught by the unit tests
/// and at startup).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LevelsError {
    #[error("the levels file is not valid: {0}")]
    Toml(String),
    #[error("floor {floor} must be below ceiling {ceiling}, with the base score {base} between")]
    Bounds { floor: i32, ceiling: i32, base: i32 },
    #[error(
        "the thresholds must name every level but the lowest, best first, each once: \
         expected {expected:?}, found {found:?}"
    )]
    Levels {
        expected: Vec<CreditLevel>,
        found: Vec<CreditLevel>,
    },
    #[error("min_score must fall strictly from one level to the next, within floor..=ceiling")]
    Thresholds,
    #[error("serious_dishonesty names {0:?} twice or is not a category code")]
    Category(String),
}

/// Base score, bounds, thresholds and the serious-dishonesty categories, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelsConfig {
    pub base_score: i32,
    pub floor: i32,
    pub ceiling: i32,
    /// Every level but the lowest with the least score it needs, best first.
    pub thresholds: Vec<(CreditLevel, i32)>,
    /// Record category codes that list a subject as seriously dishonest.
    pub serious_dishonesty: BTreeSet<String>,
}

impl LevelsConfig {
    /// Reads and checks a levels file.
    pub fn parse(toml_text: &str) -> Result<LevelsConfig, LevelsError> {
        let file: LevelsFile =
            toml::from_str(toml_text).map_err(|e| LevelsError::Toml(e.to_string()))?;
        if !(file.floor < file.ceiling && (file.floor..=file.ceiling).contains(&file.base_score)) {
            return Err(LevelsError::Bounds {
                floor: file.floor,
                ceiling: file.ceiling,
                base: file.base_score,
            });
        }
        let expected: Vec<CreditLevel> = CreditLevel::ALL[..CreditLevel::ALL.len() - 1].to_vec();
        let found: Vec<CreditLevel> = file.level.iter().map(|t| t.level).collect();
        if found != expected {
            return Err(LevelsError::Levels { expected, found });
        }
        let scores: Vec<i32> = file.level.iter().map(|t| t.min_score).collect();
        let falling = scores.windows(2).all(|w| w[0] > w[1]);
        let within = scores
            .iter()
            .all(|s| (file.floor..=file.ceiling).contains(s));
        if !falling || !within {
            return Err(LevelsError::Thresholds);
        }
        let mut serious = BTreeSet::new();
        for code in file.serious_dishonesty {
            if !super::catalogue::is_code(&code) || !serious.insert(code.clone()) {
                return Err(LevelsError::Category(code));
            }
        }
        Ok(LevelsConfig {
            base_score: file.base_score,
            floor: file.floor,
            ceiling: file.ceiling,
            thresholds: file.level.iter().map(|t| (t.level, t.min_score)).collect(),
            serious_dishonesty: serious,
        })
    }

    /// The shipped file, read once. It is checked by the unit tests, so the error is
    /// only ever a defect of a build that skipped them.
    pub fn shipped() -> Result<&'static LevelsConfig, LevelsError> {
        static SHIPPED: std::sync::OnceLock<Result<LevelsConfig, LevelsError>> =
            std::sync::OnceLock::new();
        SHIPPED
            .get_or_init(|| LevelsConfig::parse(CREDIT_LEVELS_TOML))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The score of dimension sums: the base plus their total, within floor..=ceiling.
    pub fn score(&self, dimensions: &DimensionScores) -> i32 {
        let raw = i64::from(self.base_score) + dimensions.total();
        let bounded = raw.clamp(i64::from(self.floor), i64::from(self.ceiling));
        i32::try_from(bounded).unwrap_or(self.floor)
    }

    /// The level of a score: the best whose threshold it reaches, else the lowest. On
    /// the serious-dishonesty list, the lowest whatever the score.
    pub fn level(&self, score: i32, on_dishonesty_list: bool) -> CreditLevel {
        let lowest = CreditLevel::ALL[CreditLevel::ALL.len() - 1];
        if on_dishonesty_list {
            return lowest;
        }
        self.thresholds
            .iter()
            .find(|(_, min)| score >= *min)
            .map_or(lowest, |(level, _)| *level)
    }

    /// Score and level of a subject's dimension sums and its count of serious-dishonesty
    /// records in force.
    pub fn standing(&self, dimensions: &DimensionScores, serious_in_force: i32) -> Standing {
        let score = self.score(dimensions);
        Standing {
            score,
            level: self.level(score, serious_in_force > 0),
        }
    }

    /// Whether a record of `category` lists its subject as seriously dishonest.
    pub fn is_serious_dishonesty(&self, category: &str) -> bool {
        self.serious_dishonesty.contains(category)
    }
}

/// Why a record's time was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordTimeError {
    #[error("must be an RFC 3339 time with an offset or a date as YYYY-MM-DD")]
    Format,
    #[error(transparent)]
    Window(#[from] TimeInputError),
}

/// A record's time as a department sends it: RFC 3339 with an offset, or a date
/// (`YYYY-MM-DD`, the start of that day in China time). Answers UTC, inside the window
/// every client time must lie in.
pub fn parse_record_time(text: &str) -> Result<NaiveDateTime, RecordTimeError> {
    let text = text.trim();
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let midnight = date.and_hms_opt(0, 0, 0).ok_or(RecordTimeError::Format)?;
        let utc = midnight - Duration::hours(8);
        time::check_window(utc)?;
        return Ok(utc);
    }
    if text.len() < 20 {
        return Err(RecordTimeError::Format);
    }
    match time::parse_client_time(text) {
        Ok(t) => Ok(t.naive_utc()),
        Err(TimeInputError::NotRfc3339) => Err(RecordTimeError::Format),
        Err(e) => Err(e.into()),
    }
}

/// When a record lapses unless the department says otherwise: its category's validity
/// counted from when it occurred.
pub fn default_expiry(occurred_at: NaiveDateTime, validity_days: i32) -> NaiveDateTime {
    occurred_at + Duration::days(validity_days.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn shipped() -> &'static LevelsConfig {
        LevelsConfig::shipped().expect("the shipped levels file is valid")
    }

    #[test]
    fn the_shipped_file_is_valid_and_names_shipped_categories() {
        let config = shipped();
        assert_eq!(
            config
                .thresholds
                .iter()
                .map(|(l, _)| *l)
                .collect::<Vec<_>>(),
            [
                CreditLevel::Aa,
                CreditLevel::A,
                CreditLevel::B,
                CreditLevel::C
            ]
        );
        let categories = super::super::catalogue::seed_categories(
            super::super::catalogue::RECORD_CATEGORIES_TOML,
        )
        .expect("categories");
        assert!(!config.serious_dishonesty.is_empty());
        for code in &config.serious_dishonesty {
            let (_, category) = categories
                .iter()
                .find(|(c, _)| c == code)
                .unwrap_or_else(|| panic!("{code} is not a shipped category"));
            assert_eq!(category.polarity, Polarity::Negative, "{code}");
        }
        // A subject with no records stands at the base score, good enough for the
        // article's credit-substituted matters (level A).
        let fresh = config.standing(&DimensionScores::default(), 0);
        assert_eq!(fresh.score, config.base_score);
        assert_eq!(fresh.level, CreditLevel::A);
    }

    #[test]
    fn score_to_level_at_each_threshold() {
        let config = shipped();
        for (level, min) in &config.thresholds {
            assert_eq!(config.level(*min, false), *level);
            assert_ne!(config.level(*min - 1, false), *level);
        }
        assert_eq!(config.level(config.floor, false), CreditLevel::D);
        assert_eq!(config.level(config.ceiling, false), CreditLevel::Aa);
    }

    #[test]
    fn the_dishonesty_list_forces_the_lowest_level() {
        let config = shipped();
        assert_eq!(config.level(config.ceiling, true), CreditLevel::D);
        let mut dims = DimensionScores::default();
        dims.add(Dimension::Identity, 400);
        assert_eq!(config.standing(&dims, 1).level, CreditLevel::D);
        assert_eq!(config.standing(&dims, 0).level, CreditLevel::Aa);
        assert!(config.is_serious_dishonesty("judgment_defaulter"));
        assert!(!config.is_serious_dishonesty("administrative_penalty"));
    }

    #[test]
    fn points_count_by_polarity_and_scores_stay_within_bounds() {
        assert_eq!(signed_points(Polarity::Positive, 30), 30);
        assert_eq!(signed_points(Polarity::Negative, 30), -30);
        let config = shipped();
        let mut dims = DimensionScores::default();
        dims.add(Dimension::Compliance, signed_points(Polarity::Negative, 50));
        assert_eq!(config.score(&dims), config.base_score - 50);
        dims.add(Dimension::Compliance, -100_000);
        assert_eq!(config.score(&dims), config.floor);
        dims.add(Dimension::History, i32::MAX);
        dims.add(Dimension::History, i32::MAX);
        assert_eq!(dims.history, i32::MAX, "saturates, never wraps");
        assert_eq!(config.score(&dims), config.ceiling);
    }

    #[test]
    fn bad_files_are_refused() {
        let bad = |text: &str| LevelsConfig::parse(text).expect_err("refused");
        let swapped = CREDIT_LEVELS_TOML.replacen("level = \"AA\"", "level = \"X\"", 1);
        assert!(matches!(bad(&swapped), LevelsError::Toml(_)));
        let missing = CREDIT_LEVELS_TOML.replacen("level = \"B\"", "level = \"A\"", 1);
        assert!(matches!(bad(&missing), LevelsError::Levels { .. }));
        let rising = CREDIT_LEVELS_TOML.replacen("min_score = 400", "min_score = 650", 1);
        assert_eq!(bad(&rising), LevelsError::Thresholds);
        let base = CREDIT_LEVELS_TOML.replacen("base_score = 600", "base_score = 5000", 1);
        assert!(matches!(bad(&base), LevelsError::Bounds { .. }));
        let twice = CREDIT_LEVELS_TOML.replacen(
            "[\"judgment_defaulter\"]",
            "[\"judgment_defaulter\", \"judgment_defaulter\"]",
            1,
        );
        assert!(matches!(bad(&twice), LevelsError::Category(_)));
        let unknown = format!("colour = \"red\"\n{CREDIT_LEVELS_TOML}");
        assert!(matches!(bad(&unknown), LevelsError::Toml(_)));
    }

    #[test]
    fn record_times_are_dates_in_china_or_rfc3339_inside_the_window() {
        let utc = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(
            parse_record_time("2026-03-01"),
            Ok(utc("2026-02-28 16:00:00"))
        );
        assert_eq!(
            parse_record_time("2026-03-01T10:00:00+08:00"),
            Ok(utc("2026-03-01 02:00:00"))
        );
        for bad in ["2026-02-30", "yesterday", "", "2026-03-01T10:00:00"] {
            assert_eq!(
                parse_record_time(bad),
                Err(RecordTimeError::Format),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_record_time("9999-01-01"),
            Err(RecordTimeError::Window(_))
        ));
        assert_eq!(
            default_expiry(utc("2026-01-01 00:00:00"), 365),
            utc("2027-01-01 00:00:00")
        );
    }

    proptest! {
        /// A record arriving and then leaving force puts a subject back exactly where it
        /// was, and a negative record never raises a level.
        #[test]
        fn arriving_and_leaving_cancel_out(
            start in prop::array::uniform4(-500i32..500),
            points in 1i32..=1000,
            negative in any::<bool>(),
            dim in 0usize..4,
        ) {
            let config = shipped();
            let dims = DimensionScores {
                identity: start[0],
                compliance: start[1],
                public_interest: start[2],
                history: start[3],
            };
            let dimension = Dimension::ALL[dim];
            let polarity = if negative { Polarity::Negative } else { Polarity::Positive };
            let before = config.standing(&dims, 0);
            let mut after = dims;
            after.add(dimension, signed_points(polarity, points));
            let moved = config.standing(&after, 0);
            if negative {
                prop_assert!(moved.score <= before.score);
                prop_assert!(moved.level >= before.level, "levels order best first");
            } else {
                prop_assert!(moved.level <= before.level);
            }
            after.add(dimension, -signed_points(polarity, points));
            prop_assert_eq!(after, dims);
            prop_assert_eq!(config.standing(&after, 0), before);
        }
    }
}
