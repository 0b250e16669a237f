//! The deposit-free city's configured lists: the matters catalogue (管理清单), every
//! deposit the city collects and the path by which it goes away, and the record
//! categories (信用记录类别) a department may send into a credit archive.
//!
//! Both lists start from data files in the repository (`catalogue/matters.toml`,
//! `catalogue/record_categories.toml`), checked here with the same rules as an edit by the
//! credit office: what the seed may hold, an edit may hold, and nothing else.

use chrono::NaiveDate;
use serde::Deserialize;
use thiserror::Error;

use super::money::Amount;
use super::string_enum::string_enum;
use super::text::{self, TextRules};
use super::time::{EARLIEST_DATE, LATEST_DATE};

/// The matters file as shipped.
pub const MATTERS_TOML: &str = include_str!("../../catalogue/matters.toml");
/// The record categories file as shipped.
pub const RECORD_CATEGORIES_TOML: &str = include_str!("../../catalogue/record_categories.toml");

/// Longest name, collecting body or level-of-detail line, in characters.
pub const NAME_MAX_CHARS: usize = 100;
/// Longest legal basis, scenario, commitment or evidence text, in characters.
pub const TEXT_MAX_CHARS: usize = 1000;
/// Most points a record category may carry.
pub const POINTS_MAX: i64 = 1000;
/// Longest a record may stay in force, in days (ten years).
pub const VALIDITY_DAYS_MAX: i64 = 3650;

string_enum! {
    /// How a deposit goes away (实施路径).
    pub enum MatterPath ("matter path") {
        /// Cleared because no law allows it (依法清理).
        LegalCleanup => "legal_cleanup",
        /// Cancelled outright (直接取消).
        Cancelled => "cancelled",
        /// Waived for those whose credit is good enough (信用替代).
        CreditSubstitution => "credit_substitution",
        /// Kept, under closer supervision (加强监管).
        Supervision => "supervision",
    }
}

string_enum! {
    /// Where a matter stands in its write-off (销号管理).
    pub enum WriteOffState ("write-off state") {
        Planned => "planned",
        InProgress => "in_progress",
        /// The deposit is gone: ticked off the list.
        Done => "done",
    }
}

impl WriteOffState {
    /// Whether a matter in this state may be set to `next`: it stays, or moves one step
    /// forward (planned → in progress → done). Never back, never skipping a step.
    pub fn may_become(self, next: WriteOffState) -> bool {
        self == next
            || matches!(
                (self, next),
                (WriteOffState::Planned, WriteOffState::InProgress)
                    | (WriteOffState::InProgress, WriteOffState::Done)
            )
    }
}

string_enum! {
    /// Who a credit-substituted matter serves.
    pub enum SubjectKind ("subject kind") {
        /// A resident (个人).
        Person => "person",
        /// An enterprise (企业).
        Enterprise => "enterprise",
    }
}

string_enum! {
    /// Credit levels, best first (信用等级).
    pub enum CreditLevel ("credit level") {
        Aa => "AA",
        A => "A",
        B => "B",
        C => "C",
        D => "D",
    }
}

impl CreditLevel {
    /// Whether this level is `required` or better.
    pub fn meets(self, required: CreditLevel) -> bool {
        let rank = |l: CreditLevel| CreditLevel::ALL.iter().position(|x| *x == l);
        rank(self) <= rank(required)
    }
}

string_enum! {
    /// The dimension of a credit score a record counts in.
    pub enum Dimension ("dimension") {
        /// Identity and basic information (身份特质).
        Identity => "identity",
        /// Compliance and performance (履约守法).
        Compliance => "compliance",
        /// Public-interest behaviour (社会公益).
        PublicInterest => "public_interest",
        /// Credit history (信用历史).
        History => "history",
    }
}

string_enum! {
    /// Whether a record raises or lowers a score.
    pub enum Polarity ("polarity") {
        Positive => "positive",
        Negative => "negative",
    }
}

/// One field that failed its check, named as the data file and the API spell it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {message}")]
pub struct FieldProblem {
    pub field: &'static str,
    pub message: String,
}

fn problem(field: &'static str, message: impl std::fmt::Display) -> FieldProblem {
    FieldProblem {
        field,
        message: message.to_string(),
    }
}

/// A matter's fields as typed: the body of an edit, and an entry of the data file
/// (with its `code` beside them). Enumerations and amounts are text so that a wrong one
/// is reported by field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatterFields {
    pub name_zh: String,
    pub name_en: String,
    /// The law or document the deposit rests on (or that removes it).
    pub legal_basis: String,
    pub scenario_zh: String,
    pub scenario_en: String,
    pub collecting_body_zh: String,
    pub collecting_body_en: String,
    /// The usual deposit, decimal yuan.
    #[schema(pattern = r"^[0-9]+(\.[0-9]{1,2})?$", example = "3000.00")]
    pub typical_amount: String,
    /// `legal_cleanup`, `cancelled`, `credit_substitution` or `supervision`.
    #[schema(example = "credit_substitution")]
    pub path: String,
    /// Credit-substituted only: the least level served (`AA`, `A`, `B`, `C`, `D`).
    #[serde(default)]
    pub required_level: Option<String>,
    /// Credit-substituted only: `person` or `enterprise`.
    #[serde(default)]
    pub subject: Option<String>,
    /// Credit-substituted only, optional: the largest deposit waived, decimal yuan.
    #[serde(default)]
    pub deposit_ceiling: Option<String>,
    /// Credit-substituted only, optional: the credit commitment (信用承诺) signed instead.
    #[serde(default)]
    pub commitment_text: Option<String>,
    /// `planned`, `in_progress` or `done`.
    #[schema(example = "in_progress")]
    pub write_off_state: String,
    /// The date the write-off is due, `YYYY-MM-DD`.
    #[serde(default)]
    pub write_off_due_on: Option<String>,
    /// The date it was done, `YYYY-MM-DD`: required when done, refused otherwise.
    #[serde(default)]
    pub write_off_done_on: Option<String>,
    /// What shows it done (a notice, figures): required when done.
    #[serde(default)]
    pub write_off_evidence: Option<String>,
}

/// What a credit-substituted matter asks of a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditTerms {
    pub required_level: CreditLevel,
    pub subject: SubjectKind,
    pub deposit_ceiling: Option<Amount>,
    pub commitment_text: Option<String>,
}

/// A matter's write-off (销号).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOff {
    pub state: WriteOffState,
    pub due_on: Option<NaiveDate>,
    /// Set exactly when done.
    pub done_on: Option<NaiveDate>,
    /// Set whenever done.
    pub evidence: Option<String>,
}

/// A matter, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matter {
    pub name_zh: String,
    pub name_en: String,
    pub legal_basis: String,
    pub scenario_zh: String,
    pub scenario_en: String,
    pub collecting_body_zh: String,
    pub collecting_body_en: String,
    pub typical_amount: Amount,
    pub path: MatterPath,
    /// Present exactly for credit-substituted matters.
    pub credit: Option<CreditTerms>,
    pub write_off: WriteOff,
}

impl Matter {
    /// Checks every field of `fields`, answering all the problems found. `today` (China
    /// time) bounds the done date: a write-off cannot be done tomorrow.
    pub fn check(fields: &MatterFields, today: NaiveDate) -> Result<Matter, Vec<FieldProblem>> {
        let mut problems = Vec::new();
        let mut text = |field: &'static str, value: &str, max: usize, multi: bool| {
            let rules = if multi {
                TextRules::multi_line(max)
            } else {
                TextRules::single_line(max)
            };
            text::clean(value, rules)
                .map_err(|e| problems.push(problem(field, e)))
                .unwrap_or_default()
        };
        let name_zh = text("name_zh", &fields.name_zh, NAME_MAX_CHARS, false);
        let name_en = text("name_en", &fields.name_en, NAME_MAX_CHARS, false);
        let legal_basis = text("legal_basis", &fields.legal_basis, TEXT_MAX_CHARS, true);
        let scenario_zh = text("scenario_zh", &fields.scenario_zh, TEXT_MAX_CHARS, true);
        let scenario_en = text("scenario_en", &fields.scenario_en, TEXT_MAX_CHARS, true);
        let collecting_body_zh = text(
            "collecting_body_zh",
            &fields.collecting_body_zh,
            NAME_MAX_CHARS,
            false,
        );
        let collecting_body_en = text(
            "collecting_body_en",
            &fields.collecting_body_en,
            NAME_MAX_CHARS,
            false,
        );
        let commitment_text = optional(&fields.commitment_text)
            .map(|t| text("commitment_text", t, TEXT_MAX_CHARS, true));
        let evidence = optional(&fields.write_off_evidence)
            .map(|t| text("write_off_evidence", t, TEXT_MAX_CHARS, true));

        let typical_amount = Amount::parse(fields.typical_amount.trim())
            .map_err(|e| problems.push(problem("typical_amount", e)))
            .unwrap_or(Amount::ZERO);
        let deposit_ceiling =
            optional(&fields.deposit_ceiling).and_then(|t| match Amount::parse(t) {
                Ok(a) if a == Amount::ZERO => {
                    problems.push(problem("deposit_ceiling", "must be above zero"));
                    None
                }
                Ok(a) => Some(a),
                Err(e) => {
                    problems.push(problem("deposit_ceiling", e));
                    None
                }
            });
        let path = parse(&mut problems, "path", &fields.path);
        let state = parse(&mut problems, "write_off_state", &fields.write_off_state);
        let required_level = optional(&fields.required_level)
            .and_then(|t| parse::<CreditLevel>(&mut problems, "required_level", t));
        let subject = optional(&fields.subject)
            .and_then(|t| parse::<SubjectKind>(&mut problems, "subject", t));
        let due_on = optional(&fields.write_off_due_on)
            .and_then(|t| date(&mut problems, "write_off_due_on", t, None));
        let done_on = optional(&fields.write_off_done_on)
            .and_then(|t| date(&mut problems, "write_off_done_on", t, Some(today)));

        // The rules between fields, for the fields that parsed.
        let credit = match path {
            Some(MatterPath::CreditSubstitution) => {
                if optional(&fields.required_level).is_none() {
                    problems.push(problem(
                        "required_level",
                        "a credit-substituted matter needs the credit level it requires",
                    ));
                }
                if optional(&fields.subject).is_none() {
                    problems.push(problem(
                        "subject",
                        "a credit-substituted matter needs its subject: person or enterprise",
                    ));
                }
                match (required_level, subject) {
                    (Some(required_level), Some(subject)) => Some(CreditTerms {
                        required_level,
                        subject,
                        deposit_ceiling,
                        commitment_text: commitment_text.clone(),
                    }),
                    _ => None,
                }
            }
            Some(_) => {
                let only_credit = [
                    ("required_level", &fields.required_level),
                    ("subject", &fields.subject),
                    ("deposit_ceiling", &fields.deposit_ceiling),
                    ("commitment_text", &fields.commitment_text),
                ];
                for (field, value) in only_credit {
                    if optional(value).is_some() {
                        problems.push(problem(
                            field,
                            "only a credit-substituted matter has this; leave it empty",
                        ));
                    }
                }
                None
            }
            None => None,
        };
        if let Some(state) = state {
            let has_done_on = optional(&fields.write_off_done_on).is_some();
            if state == WriteOffState::Done {
                if !has_done_on {
                    problems.push(problem(
                        "write_off_done_on",
                        "a matter written off needs the date it was done",
                    ));
                }
                if evidence.is_none() {
                    problems.push(problem(
                        "write_off_evidence",
                        "a matter written off needs the evidence that the deposit is gone",
                    ));
                }
            } else if has_done_on {
                problems.push(problem(
                    "write_off_done_on",
                    "only a matter written off (done) has a done date",
                ));
            }
        }
        match (path, state) {
            (Some(path), Some(state)) if problems.is_empty() => Ok(Matter {
                name_zh,
                name_en,
                legal_basis,
                scenario_zh,
                scenario_en,
                collecting_body_zh,
                collecting_body_en,
                typical_amount,
                path,
                credit,
                write_off: WriteOff {
                    state,
                    due_on,
                    done_on,
                    evidence,
                },
            }),
            _ => Err(problems),
        }
    }

    /// The fields as an edit form or the API shows them (the inverse of [`Matter::check`]).
    pub fn fields(&self) -> MatterFields {
        let credit = self.credit.as_ref();
        MatterFields {
            name_zh: self.name_zh.clone(),
            name_en: self.name_en.clone(),
            legal_basis: self.legal_basis.clone(),
            scenario_zh: self.scenario_zh.clone(),
            scenario_en: self.scenario_en.clone(),
            collecting_body_zh: self.collecting_body_zh.clone(),
            collecting_body_en: self.collecting_body_en.clone(),
            typical_amount: self.typical_amount.to_string(),
            path: self.path.as_str().to_owned(),
            required_level: credit.map(|c| c.required_level.as_str().to_owned()),
            subject: credit.map(|c| c.subject.as_str().to_owned()),
            deposit_ceiling: credit
                .and_then(|c| c.deposit_ceiling)
                .map(|a| a.to_string()),
            commitment_text: credit.and_then(|c| c.commitment_text.clone()),
            write_off_state: self.write_off.state.as_str().to_owned(),
            write_off_due_on: self.write_off.due_on.map(|d| d.to_string()),
            write_off_done_on: self.write_off.done_on.map(|d| d.to_string()),
            write_off_evidence: self.write_off.evidence.clone(),
        }
    }
}

/// An optional text as typed: absent, or blank, is none.
fn optional(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|t| !t.is_empty())
}

fn parse<T: std::str::FromStr<Err = super::ParseEnumError>>(
    problems: &mut Vec<FieldProblem>,
    field: &'static str,
    value: &str,
) -> Option<T> {
    value
        .trim()
        .parse()
        .map_err(|e| problems.push(problem(field, e)))
        .ok()
}

fn date(
    problems: &mut Vec<FieldProblem>,
    field: &'static str,
    value: &str,
    latest: Option<NaiveDate>,
) -> Option<NaiveDate> {
    let Ok(d) = NaiveDate::parse_from_str(value, "%Y-%m-%d") else {
        problems.push(problem(field, "must be a date as YYYY-MM-DD"));
        return None;
    };
    let latest = latest.unwrap_or(LATEST_DATE).min(LATEST_DATE);
    if d < EARLIEST_DATE || d > latest {
        problems.push(problem(
            field,
            format!("must be between {EARLIEST_DATE} and {latest}"),
        ));
        return None;
    }
    Some(d)
}

/// A record category as typed: the body of an edit and an entry of the data file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryFields {
    pub name_zh: String,
    pub name_en: String,
    /// `identity`, `compliance`, `public_interest` or `history`.
    #[schema(example = "compliance")]
    pub dimension: String,
    /// `positive` or `negative`: the default of a record of this category.
    #[schema(example = "negative")]
    pub polarity: String,
    /// The default points, 1 to 1000 (added or taken by the polarity).
    #[schema(minimum = 1, maximum = 1000, example = 50)]
    pub points: i64,
    /// Days a record stays in force, 1 to 3650.
    #[schema(minimum = 1, maximum = 3650, example = 1095)]
    pub validity_days: i64,
}

/// A record category, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordCategory {
    pub name_zh: String,
    pub name_en: String,
    pub dimension: Dimension,
    pub polarity: Polarity,
    pub points: i32,
    pub validity_days: i32,
}

impl RecordCategory {
    /// Checks every field of `fields`, answering all the problems found.
    pub fn check(fields: &CategoryFields) -> Result<RecordCategory, Vec<FieldProblem>> {
        let mut problems = Vec::new();
        let mut name = |field: &'static str, value: &str| {
            text::clean(value, TextRules::single_line(NAME_MAX_CHARS))
                .map_err(|e| problems.push(problem(field, e)))
                .unwrap_or_default()
        };
        let name_zh = name("name_zh", &fields.name_zh);
        let name_en = name("name_en", &fields.name_en);
        let dimension = parse(&mut problems, "dimension", &fields.dimension);
        let polarity = parse(&mut problems, "polarity", &fields.polarity);
        let mut bounded = |field: &'static str, value: i64, max: i64| {
            if (1..=max).contains(&value) {
                i32::try_from(value).ok()
            } else {
                problems.push(problem(field, format!("must be 1 to {max}")));
                None
            }
        };
        let points = bounded("points", fields.points, POINTS_MAX);
        let validity_days = bounded("validity_days", fields.validity_days, VALIDITY_DAYS_MAX);
        match (dimension, polarity, points, validity_days) {
            (Some(dimension), Some(polarity), Some(points), Some(validity_days))
                if problems.is_empty() =>
            {
                Ok(RecordCategory {
                    name_zh,
                    name_en,
                    dimension,
                    polarity,
                    points,
                    validity_days,
                })
            }
            _ => Err(problems),
        }
    }

    pub fn fields(&self) -> CategoryFields {
        CategoryFields {
            name_zh: self.name_zh.clone(),
            name_en: self.name_en.clone(),
            dimension: self.dimension.as_str().to_owned(),
            polarity: self.polarity.as_str().to_owned(),
            points: self.points.into(),
            validity_days: self.validity_days.into(),
        }
    }
}

/// Whether `code` is a well-formed code: 2 to 40 of `a-z`, `0-9`, `_`, starting with a
/// letter. Codes name matters and categories in URLs and imports and never change.
pub fn is_code(code: &str) -> bool {
    (2..=40).contains(&code.len())
        && code.starts_with(|c: char| c.is_ascii_lowercase())
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Why a data file was refused (a defect of the repository, caught by the unit tests).
#[derive(Debug, Error)]
pub enum SeedError {
    #[error("the data file is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("entry {index}: code {code:?} is not lower snake case (2 to 40 characters)")]
    BadCode { index: usize, code: String },
    #[error("entry {index}: code {code:?} appears twice")]
    DuplicateCode { index: usize, code: String },
    #[error("entry {index} ({code}): {problems:?}")]
    Invalid {
        index: usize,
        code: String,
        problems: Vec<FieldProblem>,
    },
}

/// Reads a data file's entries: each its code and fields, codes unique and well formed.
fn read_seed<T: serde::de::DeserializeOwned>(
    toml_text: &str,
    key: &str,
) -> Result<Vec<(String, T)>, SeedError> {
    let mut file: toml::Table = toml_text.parse()?;
    let entries = file.remove(key).unwrap_or(toml::Value::Array(Vec::new()));
    let entries: Vec<toml::Table> = entries.try_into()?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for (index, mut entry) in entries.into_iter().enumerate() {
        let code = match entry.remove("code") {
            Some(toml::Value::String(code)) => code,
            other => format!("{other:?}"),
        };
        if !is_code(&code) {
            return Err(SeedError::BadCode { index, code });
        }
        if !seen.insert(code.clone()) {
            return Err(SeedError::DuplicateCode { index, code });
        }
        let fields: T = entry.try_into()?;
        out.push((code, fields));
    }
    Ok(out)
}

/// The matters of a data file, in its order (the article's first), each checked.
pub fn seed_matters(toml_text: &str, today: NaiveDate) -> Result<Vec<(String, Matter)>, SeedError> {
    read_seed::<MatterFields>(toml_text, "matter")?
        .into_iter()
        .enumerate()
        .map(
            |(index, (code, fields))| match Matter::check(&fields, today) {
                Ok(m) => Ok((code, m)),
                Err(problems) => Err(SeedError::Invalid {
                    index,
                    code,
                    problems,
                }),
            },
        )
        .collect()
}

/// The record categories of a data file, in its order, each checked.
pub fn seed_categories(toml_text: &str) -> Result<Vec<(String, RecordCategory)>, SeedError> {
    read_seed::<CategoryFields>(toml_text, "category")?
        .into_iter()
        .enumerate()
        .map(
            |(index, (code, fields))| match RecordCategory::check(&fields) {
                Ok(c) => Ok((code, c)),
                Err(problems) => Err(SeedError::Invalid {
                    index,
                    code,
                    problems,
                }),
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_level_meets_itself_and_every_lower_requirement() {
        use CreditLevel::*;
        assert!(Aa.meets(Aa) && Aa.meets(A) && Aa.meets(D));
        assert!(A.meets(A) && A.meets(B) && !A.meets(Aa));
        assert!(D.meets(D) && !D.meets(C));
        for l in CreditLevel::ALL {
            assert!(l.meets(*l), "{l}");
        }
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
    }

    fn shipped_matters() -> Vec<(String, Matter)> {
        seed_matters(MATTERS_TOML, today()).expect("the shipped matters are valid")
    }

    fn fields_of(code: &str) -> MatterFields {
        shipped_matters()
            .into_iter()
            .find(|(c, _)| c == code)
            .map(|(_, m)| m.fields())
            .expect("shipped")
    }

    fn fields_with_problems(fields: &MatterFields) -> Vec<&'static str> {
        Matter::check(fields, today())
            .expect_err("refused")
            .into_iter()
            .map(|p| p.field)
            .collect()
    }

    #[test]
    fn the_shipped_catalogue_has_sixteen_matters_the_articles_first() {
        let matters = shipped_matters();
        assert_eq!(matters.len(), 16);
        let codes: Vec<&str> = matters.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(
            codes[..7],
            [
                "hospital_admission",
                "hotel_room",
                "bid_bond",
                "library_lending",
                "parking",
                "talent_apartment",
                "elderly_apartment"
            ]
        );
        for path in MatterPath::ALL {
            assert!(
                matters.iter().any(|(_, m)| m.path == *path),
                "no matter takes the path {path}"
            );
        }
        // The article: five matters replaced by a credit commitment.
        let committed = matters
            .iter()
            .filter(|(_, m)| {
                m.credit
                    .as_ref()
                    .is_some_and(|c| c.commitment_text.is_some())
            })
            .count();
        assert_eq!(committed, 5);
    }

    #[test]
    fn the_shipped_categories_include_those_the_exchange_writes() {
        let categories = seed_categories(RECORD_CATEGORIES_TOML).expect("valid");
        let find = |code: &str| {
            categories
                .iter()
                .find(|(c, _)| c == code)
                .map(|(_, c)| c.clone())
                .expect(code)
        };
        assert_eq!(find("bid_bond_claim_paid").polarity, Polarity::Negative);
        assert_eq!(find("guarantee_fulfilled").polarity, Polarity::Positive);
        for dimension in Dimension::ALL {
            assert!(categories.iter().any(|(_, c)| c.dimension == *dimension));
        }
    }

    #[test]
    fn a_matter_reads_back_to_the_same_fields() {
        for (_, matter) in shipped_matters() {
            assert_eq!(Matter::check(&matter.fields(), today()), Ok(matter.clone()));
        }
    }

    #[test]
    fn duplicate_or_malformed_codes_refuse_the_file() {
        let twice = format!("{MATTERS_TOML}\n[[matter]]\ncode = \"bid_bond\"\n");
        assert!(matches!(
            seed_matters(&twice, today()),
            Err(SeedError::DuplicateCode { code, .. }) if code == "bid_bond"
        ));
        let bad = MATTERS_TOML.replacen("code = \"parking\"", "code = \"Parking lot\"", 1);
        assert!(matches!(
            seed_matters(&bad, today()),
            Err(SeedError::BadCode { .. })
        ));
        let unknown_field = MATTERS_TOML.replacen(
            "path = \"cancelled\"",
            "path = \"cancelled\"\ncolour = \"red\"",
            1,
        );
        assert!(seed_matters(&unknown_field, today()).is_err());
        for code in ["", "a", "9lives", "bid-bond", "bid_bond_", "ä_b"] {
            let expected = code == "bid_bond_";
            assert_eq!(is_code(code), expected, "{code:?}");
        }
    }

    #[test]
    fn wrong_values_are_each_named_by_field() {
        let mut f = fields_of("hospital_admission");
        f.path = "abolish".into();
        f.typical_amount = "-5".into();
        f.required_level = Some("AAAA".into());
        f.write_off_due_on = Some("2025-02-30".into());
        assert_eq!(
            fields_with_problems(&f),
            [
                "typical_amount",
                "path",
                "required_level",
                "write_off_due_on"
            ]
        );
    }

    #[test]
    fn credit_terms_belong_to_credit_substituted_matters_only() {
        let mut f = fields_of("hospital_admission");
        f.required_level = None;
        f.subject = Some(" ".into());
        assert_eq!(fields_with_problems(&f), ["required_level", "subject"]);
        let mut f = fields_of("public_bicycle");
        f.commitment_text = Some("我承诺".into());
        f.deposit_ceiling = Some("100".into());
        assert_eq!(
            fields_with_problems(&f),
            ["deposit_ceiling", "commitment_text"]
        );
        let mut f = fields_of("hotel_room");
        f.deposit_ceiling = Some("0".into());
        assert_eq!(fields_with_problems(&f), ["deposit_ceiling"]);
    }

    #[test]
    fn done_needs_its_date_and_evidence_and_only_done_has_a_date() {
        let mut f = fields_of("rental_housing");
        f.write_off_state = "done".into();
        assert_eq!(
            fields_with_problems(&f),
            ["write_off_done_on", "write_off_evidence"]
        );
        f.write_off_done_on = Some("2026-11-30".into());
        f.write_off_evidence = Some("   ".into());
        assert_eq!(fields_with_problems(&f), ["write_off_evidence"]);
        f.write_off_evidence = Some("监管账户全覆盖".into());
        assert!(Matter::check(&f, today()).is_ok());
        // Done tomorrow, or in the year 9999: refused.
        f.write_off_done_on = Some("2026-12-02".into());
        assert_eq!(fields_with_problems(&f), ["write_off_done_on"]);
        f.write_off_done_on = Some("9999-01-01".into());
        assert_eq!(fields_with_problems(&f), ["write_off_done_on"]);
        let mut f = fields_of("rental_housing");
        f.write_off_done_on = Some("2026-11-30".into());
        assert_eq!(fields_with_problems(&f), ["write_off_done_on"]);
    }

    #[test]
    fn a_write_off_moves_one_step_forward_or_stays() {
        use WriteOffState::*;
        for from in WriteOffState::ALL {
            for to in WriteOffState::ALL {
                let expected =
                    from == to || matches!((from, to), (Planned, InProgress) | (InProgress, Done));
                assert_eq!(from.may_become(*to), expected, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn category_bounds_and_enumerations_are_checked() {
        let mut f = CategoryFields {
            name_zh: "行政处罚".into(),
            name_en: "Administrative penalty".into(),
            dimension: "compliance".into(),
            polarity: "negative".into(),
            points: 30,
            validity_days: 1095,
        };
        assert!(RecordCategory::check(&f).is_ok());
        f.points = 0;
        f.validity_days = 3651;
        f.dimension = "wealth".into();
        f.polarity = "neutral".into();
        f.name_en = "\u{0007}".into();
        let fields: Vec<_> = RecordCategory::check(&f)
            .expect_err("refused")
            .into_iter()
            .map(|p| p.field)
            .collect();
        assert_eq!(
            fields,
            [
                "name_en",
                "dimension",
                "polarity",
                "points",
                "validity_days"
            ]
        );
        f.points = i64::MAX;
        assert!(RecordCategory::check(&f).is_err());
    }
}
