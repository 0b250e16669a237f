//! The shapes more than one area of the API answers with: parties, sections and
//! projects by reference, a guarantee and an issue, raw bodies, and how times are
//! written. Here so that the areas read them without importing each other.

use serde::Serialize;
use utoipa::ToSchema;

use crate::db::models::{Organization, Project, Section};
use crate::domain::money::Amount;
use crate::services::guarantees::{GuaranteeView, Issued};
use crate::services::views::PendingAmendment;

/// Times in answers: RFC 3339 in China time, as users read them.
pub use crate::domain::time::china_rfc3339 as china_time;

/// A party to an application or guarantee.
#[derive(Serialize, ToSchema)]
pub struct NamedParty {
    pub id: String,
    pub name: String,
    pub uscc: String,
}

impl From<&Organization> for NamedParty {
    fn from(o: &Organization) -> Self {
        NamedParty {
            id: o.id.clone(),
            name: o.name.clone(),
            uscc: o.uscc.clone(),
        }
    }
}

/// A section, by id, code and name.
#[derive(Serialize, ToSchema)]
pub struct SectionRef {
    pub id: String,
    pub code: String,
    pub name: String,
}

impl From<&Section> for SectionRef {
    fn from(s: &Section) -> Self {
        SectionRef {
            id: s.id.clone(),
            code: s.code.clone(),
            name: s.name.clone(),
        }
    }
}

/// A project, by id, code and name.
#[derive(Serialize, ToSchema)]
pub struct ProjectRef {
    id: String,
    code: String,
    name: String,
}

impl From<&Project> for ProjectRef {
    fn from(p: &Project) -> Self {
        ProjectRef {
            id: p.id.clone(),
            code: p.code.clone(),
            name: p.name.clone(),
        }
    }
}

/// A guarantee as its parties see it.
#[derive(Serialize, ToSchema)]
pub struct GuaranteeOut {
    number: String,
    version: i32,
    #[schema(value_type = crate::domain::lifecycle::GuaranteeState)]
    status: String,
    #[schema(value_type = Option<crate::domain::lifecycle::PreClaimState>)]
    claimed_from: Option<String>,
    amount: String,
    amount_in_words: String,
    /// Paid under claims so far.
    paid_amount: String,
    /// What a further claim may still demand: the amount less what was paid.
    outstanding_amount: String,
    valid_from: String,
    valid_until: String,
    issued_at: String,
    document_sha256: String,
    project: ProjectRef,
    section: SectionRef,
    issuer: NamedParty,
    applicant: NamedParty,
    beneficiary: NamedParty,
    /// An amendment (after a postponement) drafted and not yet signed by the issuer; the
    /// fields above stay what is signed until then.
    pending_amendment: Option<PendingAmendmentOut>,
}

/// An amendment waiting for the issuer's signature.
#[derive(Serialize, ToSchema)]
pub struct PendingAmendmentOut {
    /// The version the amendment will be.
    version: i32,
    /// The validity end it carries.
    valid_until: String,
    /// When it was drafted.
    drafted_at: String,
}

impl From<&PendingAmendment> for PendingAmendmentOut {
    fn from(p: &PendingAmendment) -> Self {
        PendingAmendmentOut {
            version: p.version,
            valid_until: china_time(p.valid_until),
            drafted_at: china_time(p.drafted_at),
        }
    }
}

impl From<&GuaranteeView> for GuaranteeOut {
    fn from(v: &GuaranteeView) -> Self {
        let g = &v.guarantee;
        let amount = Amount::from_fen(g.amount_fen);
        GuaranteeOut {
            number: g.number.clone(),
            version: g.current_version,
            status: g.status.to_string(),
            claimed_from: g.claimed_from.map(|s| s.to_string()),
            amount: amount.to_string(),
            amount_in_words: amount.to_chinese_capital(),
            paid_amount: Amount::from_fen(g.paid_fen).to_string(),
            outstanding_amount: Amount::from_fen(g.amount_fen - g.paid_fen).to_string(),
            valid_from: china_time(g.valid_from),
            valid_until: china_time(g.valid_until),
            issued_at: china_time(g.issued_at),
            document_sha256: v.version.document_sha256.clone(),
            project: ProjectRef::from(&v.project),
            section: SectionRef::from(&v.section),
            issuer: NamedParty::from(&v.issuer),
            applicant: NamedParty::from(&v.enterprise),
            beneficiary: NamedParty::from(&v.tenderee),
            pending_amendment: v.pending_amendment.as_ref().map(PendingAmendmentOut::from),
        }
    }
}

/// The answer to an issue: the guarantee and its verification code, shown once here.
#[derive(Serialize, ToSchema)]
pub struct IssuedOut {
    guarantee: GuaranteeOut,
    verification_code: String,
}

impl From<Issued> for IssuedOut {
    fn from(i: Issued) -> Self {
        IssuedOut {
            guarantee: GuaranteeOut::from(&i.view),
            verification_code: i.verification_code,
        }
    }
}

/// Raw bytes (a DER signature).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Binary(pub Vec<u8>);

/// A guarantee document: canonical JSON, served byte for byte as it was signed (hash
/// the bytes as received, do not re-serialize).
#[derive(ToSchema)]
#[schema(value_type = Object)]
pub struct SignedDocument(pub serde_json::Value);
