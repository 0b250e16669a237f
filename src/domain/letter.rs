//! Letters the exchange writes when a guarantee's obligation changes by the
//! beneficiary's act: a release letter (解除保函通知书) when the bond is released, a
//! reduction letter when a reduction the issuer proposed takes effect on the
//! beneficiary's acceptance.
//!
//! Like the guarantee itself (DESIGN §4), a letter is a JSON document serialized once in
//! RFC 8785 canonical form; those exact bytes are stored, time-stamped and served, and
//! nobody re-serializes them. Each schema is its own (`baohan/guarantee-release/v1`,
//! `baohan/guarantee-reduction/v1`), so a letter can never pass for a guarantee. A
//! letter names the guarantee document it refers to by version and SHA-256, so it binds
//! to exact signed bytes, not to a number whose terms could change.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::string_enum::string_enum;

/// The schema of a release letter.
pub const RELEASE_SCHEMA: &str = "baohan/guarantee-release/v1";
/// The schema of a reduction letter.
pub const REDUCTION_SCHEMA: &str = "baohan/guarantee-reduction/v1";

/// The largest letter accepted when one is read back.
pub const MAX_LETTER_BYTES: usize = 64 * 1024;

string_enum! {
    /// What a letter records.
    pub enum LetterKind ("letter kind") {
        /// The guarantee was released: the issuer's obligation ended.
        Release => "release",
        /// A reduction of the amount took effect.
        Reduction => "reduction",
    }
}

impl LetterKind {
    /// The schema a letter of this kind is written in.
    pub const fn schema(self) -> &'static str {
        match self {
            LetterKind::Release => RELEASE_SCHEMA,
            LetterKind::Reduction => REDUCTION_SCHEMA,
        }
    }
}

/// An organization named in a letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LetterParty {
    pub name: String,
    /// Unified social credit code.
    pub uscc: String,
}

/// A project or section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LetterCodeName {
    pub code: String,
    pub name: String,
}

/// An amount of money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LetterAmount {
    /// Always `CNY`.
    pub currency: String,
    /// Decimal yuan with two places, e.g. `"80000.00"`.
    pub value: String,
}

/// A signed version of the guarantee document: the exact bytes a letter refers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentRef {
    pub version: u32,
    /// Lowercase hex SHA-256 of the document bytes.
    pub document_sha256: String,
}

/// Who acted: the organization, its role in the guarantee, and the user (by id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acting {
    pub organization: LetterParty,
    /// `agency` (for the tenderee) or `issuer`.
    pub role: String,
    pub user_id: String,
    /// RFC 3339 in +08:00, from the exchange's clock.
    pub at: String,
}

/// The parties and object of the guarantee, as every letter names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LetterGuarantee {
    pub number: String,
    pub issuer: LetterParty,
    pub applicant: LetterParty,
    pub beneficiary: LetterParty,
    pub project: LetterCodeName,
    pub section: LetterCodeName,
}

/// 解除保函: the beneficiary's side released the guarantee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseLetter {
    /// Always [`RELEASE_SCHEMA`].
    pub schema: String,
    /// The exchange's id of this letter.
    pub letter_id: String,
    pub guarantee: LetterGuarantee,
    /// The version in force when it was released.
    pub document: DocumentRef,
    /// The amount of that version.
    pub amount: LetterAmount,
    /// Paid under claims before the release.
    pub paid_amount: LetterAmount,
    /// `released`.
    pub outcome: String,
    /// Why, in words (award lost, contract signed, released by the agency).
    pub grounds: String,
    pub released_by: Acting,
    /// What the letter states, in Chinese and English.
    pub statement: String,
    /// The exchange that wrote the letter (its public base URL).
    pub exchange: String,
}

/// A reduction of the amount took effect on the beneficiary's acceptance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReductionLetter {
    /// Always [`REDUCTION_SCHEMA`].
    pub schema: String,
    pub letter_id: String,
    pub guarantee: LetterGuarantee,
    /// The version in force before, which the reduction replaced.
    pub reduced_document: DocumentRef,
    /// The signed amendment now in force.
    pub amended_document: DocumentRef,
    pub amount_before: LetterAmount,
    pub amount_after: LetterAmount,
    /// The new amount in Chinese capital numerals.
    pub amount_after_in_words: String,
    /// Paid under claims so far (the amount outstanding is `amount_after` minus this).
    pub paid_amount: LetterAmount,
    /// The issuer's reason for the reduction.
    pub reason: String,
    pub proposed_by: Acting,
    pub accepted_by: Acting,
    pub statement: String,
    pub exchange: String,
}

/// Why letter bytes were refused.
#[derive(Debug, Error)]
pub enum LetterError {
    #[error("letter JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("a letter is at most {MAX_LETTER_BYTES} bytes")]
    TooLarge,
    #[error("unknown letter schema {0:?}")]
    Schema(String),
    #[error("the bytes are not in RFC 8785 canonical form")]
    NotCanonical,
}

/// The RFC 8785 canonical bytes of a letter: what is stored, time-stamped and served.
pub fn canonical_bytes(letter: &impl Serialize) -> Result<Vec<u8>, LetterError> {
    Ok(serde_json_canonicalizer::to_vec(letter)?)
}

/// A letter read back from its bytes, of either kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Letter {
    Release(ReleaseLetter),
    Reduction(ReductionLetter),
}

impl Letter {
    /// Parses letter bytes: size, a known schema, no unknown or missing fields, and the
    /// canonical form (the bytes are exactly what [`canonical_bytes`] makes of them).
    pub fn parse(bytes: &[u8]) -> Result<Letter, LetterError> {
        if bytes.len() > MAX_LETTER_BYTES {
            return Err(LetterError::TooLarge);
        }
        #[derive(Deserialize)]
        struct Schema {
            schema: String,
        }
        let Schema { schema } = serde_json::from_slice(bytes)?;
        let (letter, again) = match schema.as_str() {
            RELEASE_SCHEMA => {
                let l: ReleaseLetter = serde_json::from_slice(bytes)?;
                let again = canonical_bytes(&l)?;
                (Letter::Release(l), again)
            }
            REDUCTION_SCHEMA => {
                let l: ReductionLetter = serde_json::from_slice(bytes)?;
                let again = canonical_bytes(&l)?;
                (Letter::Reduction(l), again)
            }
            _ => return Err(LetterError::Schema(schema)),
        };
        if again != bytes {
            return Err(LetterError::NotCanonical);
        }
        Ok(letter)
    }

    pub fn kind(&self) -> LetterKind {
        match self {
            Letter::Release(_) => LetterKind::Release,
            Letter::Reduction(_) => LetterKind::Reduction,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn party(name: &str) -> LetterParty {
        LetterParty {
            name: name.into(),
            uscc: "91371600MA3C4XYZ1K".into(),
        }
    }

    fn acting(role: &str) -> Acting {
        Acting {
            organization: party("滨州招标代理"),
            role: role.into(),
            user_id: "u-1".into(),
            at: "2026-12-21T10:00:00+08:00".into(),
        }
    }

    fn cny(v: &str) -> LetterAmount {
        LetterAmount {
            currency: "CNY".into(),
            value: v.into(),
        }
    }

    fn guarantee() -> LetterGuarantee {
        LetterGuarantee {
            number: "BH20261221BANK0001X".into(),
            issuer: party("滨州城市商业银行"),
            applicant: party("滨州建工"),
            beneficiary: party("滨州市政"),
            project: LetterCodeName {
                code: "BZ-1".into(),
                name: "疏港路".into(),
            },
            section: LetterCodeName {
                code: "A".into(),
                name: "路基".into(),
            },
        }
    }

    fn reduction() -> ReductionLetter {
        ReductionLetter {
            schema: REDUCTION_SCHEMA.into(),
            letter_id: "l-1".into(),
            guarantee: guarantee(),
            reduced_document: DocumentRef {
                version: 1,
                document_sha256: "ab".repeat(32),
            },
            amended_document: DocumentRef {
                version: 2,
                document_sha256: "cd".repeat(32),
            },
            amount_before: cny("80000.00"),
            amount_after: cny("50000.00"),
            amount_after_in_words: "人民币伍万元整".into(),
            paid_amount: cny("0.00"),
            reason: "标段保证金调低".into(),
            proposed_by: acting("issuer"),
            accepted_by: acting("agency"),
            statement: "减额生效 The reduction took effect.".into(),
            exchange: "https://baohan.example".into(),
        }
    }

    #[test]
    fn letters_round_trip_through_their_canonical_bytes() {
        let bytes = canonical_bytes(&reduction()).unwrap();
        assert_eq!(
            Letter::parse(&bytes).unwrap(),
            Letter::Reduction(reduction())
        );
        let text = String::from_utf8(bytes.clone()).unwrap();
        // Canonical: sorted keys, no whitespace, the schema named.
        assert!(text.starts_with("{\"accepted_by\":{"), "{text}");
        assert!(!text.contains(": "), "{text}");
        assert!(text.contains(REDUCTION_SCHEMA));

        let release = ReleaseLetter {
            schema: RELEASE_SCHEMA.into(),
            letter_id: "l-2".into(),
            guarantee: guarantee(),
            document: DocumentRef {
                version: 1,
                document_sha256: "ab".repeat(32),
            },
            amount: cny("80000.00"),
            paid_amount: cny("0.00"),
            outcome: "released".into(),
            grounds: "award lost".into(),
            released_by: acting("agency"),
            statement: "解除 Released.".into(),
            exchange: "https://baohan.example".into(),
        };
        let bytes = canonical_bytes(&release).unwrap();
        let parsed = Letter::parse(&bytes).unwrap();
        assert_eq!(parsed.kind(), LetterKind::Release);
        assert_eq!(parsed, Letter::Release(release));
    }

    #[test]
    fn other_bytes_are_refused() {
        let bytes = canonical_bytes(&reduction()).unwrap();
        // Pretty-printed: the same JSON, not the same bytes.
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let pretty = serde_json::to_vec_pretty(&value).unwrap();
        assert!(matches!(
            Letter::parse(&pretty),
            Err(LetterError::NotCanonical)
        ));
        // A guarantee document's schema is not a letter's.
        let mut other = value.clone();
        other["schema"] = "baohan/guarantee/v1".into();
        let other = serde_json_canonicalizer::to_vec(&other).unwrap();
        assert!(matches!(Letter::parse(&other), Err(LetterError::Schema(_))));
        // An unknown field.
        let mut extra = value;
        extra["note"] = "x".into();
        let extra = serde_json_canonicalizer::to_vec(&extra).unwrap();
        assert!(matches!(Letter::parse(&extra), Err(LetterError::Json(_))));
        assert!(matches!(
            Letter::parse(&vec![b' '; MAX_LETTER_BYTES + 1]),
            Err(LetterError::TooLarge)
        ));
        assert_eq!(LetterKind::Reduction.schema(), REDUCTION_SCHEMA);
    }
}
