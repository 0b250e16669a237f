//! The canonical guarantee document (schema `baohan/guarantee/v1`, DESIGN.md §4).
//!
//! The document is serialized once in RFC 8785 canonical form; those exact bytes are
//! stored, signed and served, and verifiers hash the bytes they received, never a
//! re-serialization.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::domain::money::Amount;

/// The only schema this version understands.
pub const SCHEMA_V1: &str = "baohan/guarantee/v1";
/// Largest document accepted for parsing or verification; real letters are ~2 KiB.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// Largest detached signature accepted; a CMS with a 3-certificate chain is ~4 KiB.
pub const MAX_SIGNATURE_BYTES: usize = 64 * 1024;

/// Why document bytes were refused.
#[derive(Debug, Error)]
pub enum DocumentError {
    /// Larger than [`MAX_DOCUMENT_BYTES`].
    #[error("document is {0} bytes, more than the {MAX_DOCUMENT_BYTES}-byte limit")]
    TooLarge(usize),
    /// Not JSON, wrong types, missing or unknown fields.
    #[error("document is not a valid guarantee document: {0}")]
    Json(#[from] serde_json::Error),
    /// A schema other than [`SCHEMA_V1`].
    #[error("unknown document schema {0:?}")]
    UnknownSchema(String),
    /// Well-formed JSON whose values break the schema's rules.
    #[error("invalid field {field}: {reason}")]
    Invalid {
        /// JSON path of the offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Kind of institution issuing the guarantee (the domain's own type).
pub use crate::domain::party::IssuerKind;

/// The issuing institution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerParty {
    /// Registered name.
    pub name: String,
    /// Unified social credit code (统一社会信用代码).
    pub uscc: String,
    /// Bank, insurer or guarantor.
    pub kind: IssuerKind,
}

/// An organization named in the guarantee (applicant or beneficiary).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Party {
    /// Registered name.
    pub name: String,
    /// Unified social credit code.
    pub uscc: String,
}

/// A project or section reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeName {
    /// Code as published by the tender.
    pub code: String,
    /// Human name.
    pub name: String,
}

/// Guaranteed amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentAmount {
    /// Always `CNY` in v1.
    pub currency: String,
    /// Decimal yuan with exactly two places, e.g. `"100000.00"`.
    pub value: String,
}

/// The bid-bond guarantee as signed (电子投标保函).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuaranteeDocument {
    /// Always [`SCHEMA_V1`].
    pub schema: String,
    /// Exchange-issued guarantee number.
    pub guarantee_number: String,
    /// 1 for the first issue, incremented by each amendment.
    pub version: u32,
    /// Same as `issuer.kind`; kept at top level because letters are filed by kind.
    pub kind: IssuerKind,
    /// Always `bid_bond` in v1.
    pub purpose: String,
    /// The issuing institution, whose certificate must sign.
    pub issuer: IssuerParty,
    /// The bidder (申请人).
    pub applicant: Party,
    /// The tenderee (受益人/招标人).
    pub beneficiary: Party,
    /// Tender project (招标项目).
    pub project: CodeName,
    /// Section or lot (标段/包).
    pub section: CodeName,
    /// Guaranteed amount.
    pub amount: DocumentAmount,
    /// Amount in Chinese capital numerals, e.g. `人民币壹拾万元整`.
    pub amount_in_words: String,
    /// Start of validity, RFC 3339 in +08:00.
    pub valid_from: String,
    /// End of validity, RFC 3339 in +08:00.
    pub valid_until: String,
    /// Time of issue, RFC 3339 in +08:00.
    pub issued_at: String,
    /// Governing rules, e.g. URDG 758 and the applicable PRC law.
    pub governing_rules: String,
    /// Conditions under which the beneficiary may claim.
    pub claim_conditions: String,
    /// Further terms, one clause per entry.
    pub terms: Vec<String>,
    /// Public verification page.
    pub verification_url: String,
}

impl GuaranteeDocument {
    /// The RFC 8785 canonical bytes: what is stored, signed and served.
    pub fn to_canonical_bytes(&self) -> Result<Vec<u8>, DocumentError> {
        Ok(serde_json_canonicalizer::to_vec(self)?)
    }

    /// Parses and validates document bytes. Refuses oversized input, unknown schemas,
    /// unknown or missing fields and values breaking the v1 rules.
    pub fn parse(bytes: &[u8]) -> Result<Self, DocumentError> {
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return Err(DocumentError::TooLarge(bytes.len()));
        }
        // Look at the schema first so a v2 document says "unknown schema", not
        // "unknown field".
        #[derive(Deserialize)]
        struct SchemaOnly {
            schema: String,
        }
        let probe: SchemaOnly = serde_json::from_slice(bytes)?;
        if probe.schema != SCHEMA_V1 {
            return Err(DocumentError::UnknownSchema(probe.schema));
        }
        let doc: GuaranteeDocument = serde_json::from_slice(bytes)?;
        doc.validate()?;
        Ok(doc)
    }

    /// Checks the v1 value rules that serde's types cannot express.
    pub fn validate(&self) -> Result<(), DocumentError> {
        let invalid = |field: &'static str, reason: &str| DocumentError::Invalid {
            field,
            reason: reason.to_owned(),
        };
        if self.schema != SCHEMA_V1 {
            return Err(DocumentError::UnknownSchema(self.schema.clone()));
        }
        if self.purpose != "bid_bond" {
            return Err(invalid("purpose", "must be \"bid_bond\""));
        }
        if self.kind != self.issuer.kind {
            return Err(invalid("kind", "must equal issuer.kind"));
        }
        for (field, value) in [
            ("guarantee_number", &self.guarantee_number),
            ("issuer.name", &self.issuer.name),
            ("issuer.uscc", &self.issuer.uscc),
            ("applicant.uscc", &self.applicant.uscc),
            ("beneficiary.uscc", &self.beneficiary.uscc),
            ("project.code", &self.project.code),
            ("section.code", &self.section.code),
        ] {
            if value.trim().is_empty() {
                return Err(invalid(field, "must not be empty"));
            }
        }
        if self.amount.currency != "CNY" {
            return Err(invalid("amount.currency", "must be \"CNY\""));
        }
        let two_places = self
            .amount
            .value
            .split_once('.')
            .is_some_and(|(_, f)| f.len() == 2);
        if !two_places || Amount::parse(&self.amount.value).is_err() {
            return Err(invalid(
                "amount.value",
                "must be a decimal with two places, e.g. \"100000.00\"",
            ));
        }
        let from = parse_china_time("valid_from", &self.valid_from)?;
        let until = parse_china_time("valid_until", &self.valid_until)?;
        parse_china_time("issued_at", &self.issued_at)?;
        if until < from {
            return Err(invalid("valid_until", "is before valid_from"));
        }
        Ok(())
    }

    /// The amount in fen (validated by [`GuaranteeDocument::parse`]).
    pub fn amount_fen(&self) -> Result<i64, DocumentError> {
        Amount::parse(&self.amount.value)
            .map(Amount::fen)
            .map_err(|e| DocumentError::Invalid {
                field: "amount.value",
                reason: e.to_string(),
            })
    }

    /// The time of issue the document states.
    pub fn issued_time(&self) -> Result<DateTime<FixedOffset>, DocumentError> {
        parse_china_time("issued_at", &self.issued_at)
    }

    /// Start and end of validity.
    pub fn validity(
        &self,
    ) -> Result<(DateTime<FixedOffset>, DateTime<FixedOffset>), DocumentError> {
        Ok((
            parse_china_time("valid_from", &self.valid_from)?,
            parse_china_time("valid_until", &self.valid_until)?,
        ))
    }
}

/// Parses an RFC 3339 time that must carry the China offset `+08:00`.
fn parse_china_time(
    field: &'static str,
    text: &str,
) -> Result<DateTime<FixedOffset>, DocumentError> {
    let time = DateTime::parse_from_rfc3339(text).map_err(|e| DocumentError::Invalid {
        field,
        reason: format!("not an RFC 3339 time: {e}"),
    })?;
    if time.offset().local_minus_utc() != 8 * 3600 {
        return Err(DocumentError::Invalid {
            field,
            reason: "must be written in China time (+08:00)".to_owned(),
        });
    }
    Ok(time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::demo::sample_document;

    #[test]
    fn canonical_round_trip() {
        let doc = sample_document("91110000100000000R");
        let bytes = doc.to_canonical_bytes().expect("serialize");
        let parsed = GuaranteeDocument::parse(&bytes).expect("parse");
        assert_eq!(parsed, doc);
        assert_eq!(parsed.to_canonical_bytes().expect("serialize"), bytes);
        // RFC 8785: keys sorted, no whitespace.
        let text = String::from_utf8(bytes).expect("utf8");
        assert!(
            text.starts_with("{\"amount\":{\"currency\":\"CNY\""),
            "{text}"
        );
        assert!(!text.contains(": "));
    }

    #[test]
    fn refuses_bad_input() {
        let doc = sample_document("91110000100000000R");
        let mut value = serde_json::to_value(&doc).expect("value");
        value["extra"] = serde_json::json!(1);
        let extra = serde_json::to_vec(&value).expect("bytes");
        assert!(matches!(
            GuaranteeDocument::parse(&extra),
            Err(DocumentError::Json(_))
        ));

        let mut v2 = doc.clone();
        v2.schema = "baohan/guarantee/v2".to_owned();
        let bytes = serde_json::to_vec(&v2).expect("bytes");
        assert!(matches!(
            GuaranteeDocument::parse(&bytes),
            Err(DocumentError::UnknownSchema(_))
        ));

        let mut bad_amount = doc.clone();
        bad_amount.amount.value = "100000".to_owned();
        let bytes = serde_json::to_vec(&bad_amount).expect("bytes");
        assert!(matches!(
            GuaranteeDocument::parse(&bytes),
            Err(DocumentError::Invalid {
                field: "amount.value",
                ..
            })
        ));

        let mut utc = doc;
        utc.valid_until = "2025-07-18T15:59:59Z".to_owned();
        let bytes = serde_json::to_vec(&utc).expect("bytes");
        assert!(GuaranteeDocument::parse(&bytes).is_err());

        assert!(GuaranteeDocument::parse(b"").is_err());
        assert!(GuaranteeDocument::parse(b"[]").is_err());
        let huge = vec![b' '; MAX_DOCUMENT_BYTES + 1];
        assert!(matches!(
            GuaranteeDocument::parse(&huge),
            Err(DocumentError::TooLarge(_))
        ));
    }
}
