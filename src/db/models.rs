//! Rows as diesel reads and writes them. Enumerations are stored as their snake_case
//! names and money as integer fen; the services turn rows into domain types.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::domain::{
    ApplicationState, ClaimReason, ClaimState, GuaranteeState, IssuerKind, OrgKind, PreClaimState,
    ProviderKind, Role,
};

use crate::domain::attachment::{AttachmentKind, FileType, ParentKind};
use crate::domain::catalogue::{CreditLevel, Dimension, Polarity, SubjectKind};
use crate::domain::credit::{CancelReason, LookPurpose};
use crate::domain::letter::LetterKind;
use crate::domain::reduction::ReductionState;
use crate::domain::waiver::WaiverState;

use super::schema::{
    api_tokens, applications, attachments, claims, credit_disputes, credit_imports,
    credit_level_changes, credit_looks, credit_records, credit_rights_codes, credit_subjects,
    credit_waivers, crls, guarantee_drafts, guarantee_letters, guarantee_reductions,
    guarantee_versions, guarantees, issuer_certificates, matter_versions, matters, organizations,
    premium_terms, projects, record_categories, record_category_versions, sections, sessions,
    trust_anchors, users,
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = organizations)]
pub struct Organization {
    pub id: String,
    pub kind: OrgKind,
    pub issuer_kind: Option<IssuerKind>,
    pub provider_kind: Option<ProviderKind>,
    pub name: String,
    pub uscc: String,
    pub uscc_whitelisted: bool,
    pub short_code: Option<String>,
    pub email: Option<String>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: String,
    pub organization_id: String,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub role: Role,
    pub password_hash: String,
    pub resident_id_hmac: Option<String>,
    pub resident_id_masked: Option<String>,
    pub active: bool,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_tokens)]
pub struct ApiToken {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub token_hash: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    pub expires_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct Session {
    pub id: String,
    pub token_hash: String,
    pub user_id: String,
    pub csrf_token: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = projects)]
pub struct Project {
    pub id: String,
    pub code: String,
    pub name: String,
    pub tenderee_id: String,
    pub agency_id: String,
    pub bid_deadline: NaiveDateTime,
    pub bid_opening_at: NaiveDateTime,
    pub bid_validity_days: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sections)]
pub struct Section {
    pub id: String,
    pub project_id: String,
    pub code: String,
    pub name: String,
    pub bond_amount_fen: i64,
    pub estimated_price_fen: Option<i64>,
    pub awarded_enterprise_id: Option<String>,
    pub awarded_at: Option<NaiveDateTime>,
    pub contract_signed_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = applications)]
pub struct Application {
    pub id: String,
    pub enterprise_id: String,
    pub section_id: String,
    pub issuer_id: String,
    pub kind: IssuerKind,
    pub amount_fen: i64,
    pub valid_from: NaiveDateTime,
    pub valid_until: NaiveDateTime,
    pub status: ApplicationState,
    pub premium_fen: Option<i64>,
    pub decline_reason: Option<String>,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// Counts as the enterprise's one application for its section: cleared when it is
    /// declined or withdrawn or its guarantee ends; a partial unique index holds the rule.
    pub live: bool,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = issuer_certificates)]
pub struct IssuerCertificate {
    pub id: String,
    pub organization_id: String,
    pub fingerprint_sha256: String,
    pub subject: String,
    pub serial: String,
    pub not_before: NaiveDateTime,
    pub not_after: NaiveDateTime,
    pub certificate_der: Vec<u8>,
    pub encrypted_private_key: Option<Vec<u8>>,
    pub created_at: NaiveDateTime,
    pub deactivated_at: Option<NaiveDateTime>,
    /// When the issuer was told the certificate runs out (once).
    pub expiry_notice_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = trust_anchors)]
pub struct TrustAnchor {
    pub id: String,
    pub name: String,
    pub fingerprint_sha256: String,
    pub certificate_der: Vec<u8>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = crls)]
pub struct Crl {
    pub id: String,
    pub issuer_name: String,
    pub crl_der: Vec<u8>,
    pub this_update: NaiveDateTime,
    pub next_update: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    /// The CRL distribution point it was fetched from; `None` when the operator
    /// registered it.
    pub source_url: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = guarantee_drafts)]
pub struct GuaranteeDraft {
    pub id: String,
    pub application_id: String,
    pub guarantee_number: String,
    pub version: i32,
    pub document: Vec<u8>,
    pub document_sha256: String,
    pub verification_code_hash: String,
    pub verification_code_sealed: Vec<u8>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = guarantees)]
pub struct Guarantee {
    pub id: String,
    pub number: String,
    pub application_id: String,
    pub issuer_id: String,
    pub enterprise_id: String,
    pub section_id: String,
    pub status: GuaranteeState,
    pub claimed_from: Option<PreClaimState>,
    pub amount_fen: i64,
    pub valid_from: NaiveDateTime,
    pub valid_until: NaiveDateTime,
    pub current_version: i32,
    pub verification_code_hash: String,
    pub verification_code_sealed: Vec<u8>,
    pub issued_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub expiry_notice_at: Option<NaiveDateTime>,
    /// Paid under claims so far; the amount outstanding is `amount_fen - paid_fen`.
    pub paid_fen: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = guarantee_versions)]
pub struct GuaranteeVersion {
    pub id: String,
    pub guarantee_id: String,
    pub version: i32,
    pub document: Vec<u8>,
    pub document_sha256: String,
    pub signature: Option<Vec<u8>>,
    pub signer_certificate_id: Option<String>,
    pub created_at: NaiveDateTime,
}

/// A reduction of a guarantee's amount (URDG 758 art. 11): proposed and signed by the
/// issuer, in force only once the beneficiary's side accepts it.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = guarantee_reductions)]
pub struct GuaranteeReduction {
    pub id: String,
    pub guarantee_id: String,
    /// The version of the guarantee document the amendment is.
    pub version: i32,
    /// The version in force when it was proposed, which it reduces.
    pub base_version: i32,
    pub amount_before_fen: i64,
    pub amount_fen: i64,
    pub reason: String,
    pub status: ReductionState,
    pub proposed_by: String,
    pub proposed_at: NaiveDateTime,
    /// The signed bytes, once signed.
    pub document: Option<Vec<u8>>,
    pub document_sha256: Option<String>,
    /// The issuer's signature with the exchange's time-stamp token, once signed.
    pub signature: Option<Vec<u8>>,
    pub signer_certificate_id: Option<String>,
    pub signed_at: Option<NaiveDateTime>,
    pub decided_by: Option<String>,
    pub decided_at: Option<NaiveDateTime>,
    pub decision_reason: Option<String>,
}

/// A release or reduction letter: canonical JSON bytes and the exchange's RFC 3161
/// time-stamp token over them.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = guarantee_letters)]
pub struct GuaranteeLetter {
    pub id: String,
    pub guarantee_id: String,
    pub kind: LetterKind,
    pub reduction_id: Option<String>,
    pub document: Vec<u8>,
    pub document_sha256: String,
    /// DER TimeStampToken (a CMS SignedData over a TSTInfo with the document's SHA-256).
    pub timestamp_token: Vec<u8>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = claims)]
pub struct Claim {
    pub id: String,
    pub guarantee_id: String,
    pub reason_code: ClaimReason,
    pub statement: String,
    pub amount_fen: i64,
    pub status: ClaimState,
    pub filed_by: String,
    pub filed_at: NaiveDateTime,
    pub decide_by: NaiveDateTime,
    pub decided_by: Option<String>,
    pub decided_at: Option<NaiveDateTime>,
    pub decision_reason: Option<String>,
    /// What the issuer paid of it (at most `amount_fen`), once paid.
    pub paid_fen: Option<i64>,
    /// For an extend-or-pay demand: the expiry the beneficiary asks for instead of
    /// payment.
    pub extend_to: Option<NaiveDateTime>,
}

/// One version of an issuer's premium terms (保费标准); a withdrawn version has no values.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = premium_terms)]
pub struct PremiumTermsRow {
    pub id: String,
    pub issuer_id: String,
    pub version: i32,
    pub withdrawn: bool,
    pub rate_bp: Option<i32>,
    pub minimum_fen: Option<i64>,
    pub maximum_bond_fen: Option<i64>,
    pub turnaround_days: Option<i32>,
    pub note: Option<String>,
    pub published_at: NaiveDateTime,
    pub published_by: String,
}

/// A matter of the catalogue (管理清单) as it stands: its latest version.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = matters, primary_key(code), treat_none_as_null = true)]
pub struct MatterRow {
    pub code: String,
    pub position: i32,
    pub name_zh: String,
    pub name_en: String,
    pub legal_basis: String,
    pub scenario_zh: String,
    pub scenario_en: String,
    pub collecting_body_zh: String,
    pub collecting_body_en: String,
    pub typical_amount_fen: i64,
    pub path: String,
    pub required_level: Option<String>,
    pub subject_kind: Option<String>,
    pub deposit_ceiling_fen: Option<i64>,
    pub commitment_text: Option<String>,
    pub write_off_state: String,
    pub write_off_due_on: Option<chrono::NaiveDate>,
    pub write_off_done_on: Option<chrono::NaiveDate>,
    pub write_off_evidence: Option<String>,
    pub version: i32,
    pub updated_at: NaiveDateTime,
    pub updated_by: Option<String>,
}

/// A record category (信用记录类别) as it stands: its latest version.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = record_categories, primary_key(code), treat_none_as_null = true)]
pub struct RecordCategoryRow {
    pub code: String,
    pub position: i32,
    pub name_zh: String,
    pub name_en: String,
    pub dimension: String,
    pub polarity: String,
    pub points: i32,
    pub validity_days: i32,
    pub version: i32,
    pub updated_at: NaiveDateTime,
    pub updated_by: Option<String>,
}

/// One version of a matter: its whole content as JSON, who made it (none: the seed).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = matter_versions)]
pub struct MatterVersionRow {
    pub id: String,
    pub code: String,
    pub version: i32,
    pub content: String,
    pub changed_at: NaiveDateTime,
    pub changed_by: Option<String>,
}

/// One version of a record category, like [`MatterVersionRow`].
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = record_category_versions)]
pub struct RecordCategoryVersionRow {
    pub id: String,
    pub code: String,
    pub version: i32,
    pub content: String,
    pub changed_at: NaiveDateTime,
    pub changed_by: Option<String>,
}

/// A subject of the credit archive (一人一档): a person or an enterprise, with the scores
/// its records in force give, kept current by every change to them.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
// None is NULL (these columns have no defaults): a bulk import's many-row inserts are
// then one statement on SQLite, not one per row.
#[diesel(table_name = credit_subjects, treat_none_as_default_value = false)]
pub struct CreditSubjectRow {
    pub id: String,
    pub kind: SubjectKind,
    /// A person's resident ID as HMAC hex; an enterprise's USCC.
    pub subject_key: String,
    pub masked_id: String,
    pub name: String,
    pub organization_id: Option<String>,
    pub score_identity: i32,
    pub score_compliance: i32,
    pub score_public_interest: i32,
    pub score_history: i32,
    pub score: i32,
    pub level: CreditLevel,
    pub level_since: NaiveDateTime,
    pub serious_dishonesty_count: i32,
    pub version: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// One record of a subject's archive; only `in_force` ever changes, true to false.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
// None is NULL (these columns have no defaults): a bulk import's many-row inserts are
// then one statement on SQLite, not one per row.
#[diesel(table_name = credit_records, treat_none_as_default_value = false)]
pub struct CreditRecordRow {
    pub id: String,
    pub subject_id: String,
    pub category: String,
    pub dimension: Dimension,
    pub polarity: Polarity,
    pub points: i32,
    pub serious_dishonesty: bool,
    pub occurred_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub source_department: String,
    pub source_ref: String,
    pub note: Option<String>,
    pub cancels: Option<String>,
    pub cancel_reason: Option<CancelReason>,
    pub recorded_at: NaiveDateTime,
    pub recorded_by: Option<String>,
    pub in_force: bool,
}

/// A subject's level moved.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
// None is NULL (these columns have no defaults): a bulk import's many-row inserts are
// then one statement on SQLite, not one per row.
#[diesel(table_name = credit_level_changes, treat_none_as_default_value = false)]
pub struct CreditLevelChangeRow {
    pub id: String,
    pub subject_id: String,
    pub from_level: CreditLevel,
    pub to_level: CreditLevel,
    pub score: i32,
    pub cause_record_id: Option<String>,
    pub changed_at: NaiveDateTime,
}

/// A subject's dispute of one of its records (信用异议).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = credit_disputes)]
pub struct CreditDisputeRow {
    pub id: String,
    pub record_id: String,
    pub subject_id: String,
    pub filed_by: String,
    pub reason: String,
    pub filed_at: NaiveDateTime,
    pub decide_by: NaiveDateTime,
    /// `filed`, `upheld` or `corrected`.
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<NaiveDateTime>,
    pub decision_note: Option<String>,
    /// The cancelling record a correction (or a granted repair) wrote.
    pub correction_record_id: Option<String>,
    /// `dispute` (异议: the record is wrong) or `repair` (信用修复: the record was right
    /// and the subject has put it right).
    pub kind: String,
}

/// A look at a subject's archive by someone other than the subject (PIPL).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = credit_looks)]
pub struct CreditLookRow {
    pub id: String,
    pub subject_id: String,
    /// The officer, kept for the audit; never shown to the subject.
    pub looked_by: String,
    pub organization_id: String,
    pub purpose: LookPurpose,
    /// The application underwritten, for an issuer's look.
    pub application_id: Option<String>,
    pub looked_at: NaiveDateTime,
}

/// An issued credit rights code (信用权益码). Its text is rebuilt from the id and the
/// expiry; `used_at` is set once, by the check that wins it.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = credit_rights_codes)]
pub struct RightsCodeRow {
    /// Hex of the code's 16 random bytes.
    pub id: String,
    pub subject_id: String,
    pub issued_to: String,
    /// The one provider that may check it, when the subject chose one.
    pub provider_id: Option<String>,
    pub issued_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
    pub used_by: Option<String>,
    /// `None` for a grant; the refusal of the check that used it.
    pub outcome: Option<String>,
}

/// A deposit waived on a granted code, and its settlement.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = credit_waivers)]
pub struct WaiverRow {
    pub id: String,
    pub code_id: String,
    pub subject_id: String,
    pub provider_id: String,
    pub checked_by: String,
    pub matter: String,
    pub amount_fen: i64,
    pub provider_ref: Option<String>,
    pub granted_at: NaiveDateTime,
    pub state: WaiverState,
    pub bill_fen: Option<i64>,
    pub billed_at: Option<NaiveDateTime>,
    pub due_at: Option<NaiveDateTime>,
    pub settled_at: Option<NaiveDateTime>,
    pub paid_late: bool,
    /// The record settlement wrote: on time, late or the default.
    pub record_id: Option<String>,
    pub version: i32,
}

/// A bulk import of one file (by its SHA-256): how far its committed batches reached.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = credit_imports)]
pub struct CreditImportRow {
    pub id: String,
    pub file_sha256: String,
    /// `csv` or `ndjson`.
    pub format: String,
    /// The last line number a committed batch covered (0: none yet).
    pub last_line: i64,
    pub lines_stored: i64,
    pub lines_rejected: i64,
    /// `running` or `finished`.
    pub status: String,
    pub started_by: Option<String>,
    pub started_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
}

/// An application's document or a claim's evidence: what the uploader named and what
/// the exchange found the file to be. The bytes are kept by their SHA-256 (on disk on
/// SQLite, in `attachment_blobs` on PostgreSQL).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = attachments)]
pub struct Attachment {
    pub id: String,
    pub parent_kind: ParentKind,
    pub parent_id: String,
    pub kind: AttachmentKind,
    /// Cleaned of paths and control characters (`domain::attachment::file_name`).
    pub file_name: String,
    /// The type found from the content, never the client's Content-Type.
    pub media_type: FileType,
    pub size_bytes: i64,
    /// Lower-case hex.
    pub sha256: String,
    pub uploaded_by: String,
    pub uploader_organization_id: String,
    pub created_at: NaiveDateTime,
}
