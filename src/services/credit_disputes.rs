//! Disputes of credit records (信用异议): a subject contests a record of its own archive,
//! and the credit office decides within [`DECISION_BUSINESS_DAYS`] business days on the
//! claims' calendar, keeping the record (upheld) or correcting it (a cancelling record
//! in the same transaction, so the score moves with the decision). While a dispute is
//! filed its record is shown as disputed. One open dispute per record is the database's
//! rule (a unique index over the filed ones); a decision is a conditional update on a
//! filed dispute, so two decisions never both land.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::catalogue::require_credit_office;
use super::credit::{self, Cancellation};
use super::{new_id, Actor, Context, ServiceError};
use crate::db::audit::{self, AuditEvent};
use crate::db::models::{CreditDisputeRow, CreditRecordRow};
use crate::db::schema::{credit_disputes, credit_records, credit_subjects, record_categories};
use crate::domain::credit::CancelReason;
use crate::domain::text::{self, TextRules};

/// Open disputes as the partial index `credit_disputes_open` states them: in the SQL
/// text, not as a bound value, so that SQLite's planner can read the index (see
/// `waivers::BILLED`).
pub const FILED: &str = "credit_disputes.status = 'filed'";

/// Business days the credit office has to decide a dispute.
pub const DECISION_BUSINESS_DAYS: u32 = 15;
/// The department a dispute's correction is recorded under.
pub const CREDIT_OFFICE_DEPARTMENT: &str = "市信用办";

/// The longest reason or decision note kept.
const TEXT_MAX_CHARS: usize = 2000;
/// The most disputes one list answers.
const LIST_MAX: i64 = 500;

/// A subject's dispute of one of its records.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDispute {
    /// The record disputed: one of the signed-in subject's own.
    pub record_id: String,
    /// Why the record is wrong (a dispute), or what the subject did to put it right (a
    /// repair request), as the subject puts it.
    pub reason: String,
    /// `dispute` (异议, the default) or `repair` (信用修复: granted, the record is
    /// cancelled as a credit repair).
    #[serde(default)]
    #[schema(example = "dispute")]
    pub kind: Option<String>,
}

/// What a request about a record asks: the record is wrong, or it was right and has
/// been put right.
pub const KINDS: [&str; 2] = ["dispute", "repair"];

/// The credit office's decision on a dispute.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisputeDecision {
    /// `uphold` (the record stands) or `correct` (the record is cancelled as a
    /// correction).
    pub decision: String,
    /// The reasons, shown to the subject.
    pub note: String,
}

fn text_field(field: &'static str, value: &str) -> Result<String, ServiceError> {
    text::clean(value, TextRules::multi_line(TEXT_MAX_CHARS))
        .map_err(|e| ServiceError::invalid(field, e))
}

/// The signed-in subject disputes one of its records in force. Refused: a record of
/// someone else or unknown (404, alike), a record no longer in force or a cancelling
/// record (409), a record already under dispute (409, by the unique index).
pub fn file(ctx: &Context, actor: &Actor, d: NewDispute) -> Result<CreditDisputeRow, ServiceError> {
    let reason = text_field("reason", &d.reason)?;
    let kind = match d.kind.as_deref().map(str::trim) {
        None | Some("") => "dispute".to_owned(),
        Some(k) if KINDS.contains(&k) => k.to_owned(),
        Some(_) => return Err(ServiceError::invalid("kind", "must be dispute or repair")),
    };
    let record_id = d.record_id.trim().to_owned();
    let mut conn = ctx.conn()?;
    let at = ctx.now();
    ctx.write_tx(&mut conn, |c| {
        let mine = credit::my_subject(c, actor)?
            .ok_or_else(|| ServiceError::NotFound("credit record".into()))?;
        let record: CreditRecordRow = credit_records::table
            .find(&record_id)
            .filter(credit_records::subject_id.eq(&mine.id))
            .select(CreditRecordRow::as_select())
            .first(c)
            .optional()?
            .ok_or_else(|| ServiceError::NotFound("credit record".into()))?;
        if !record.in_force || record.cancels.is_some() {
            return Err(ServiceError::InvalidTransition {
                message: "only a record in force can be disputed".into(),
                current: "not_in_force",
            });
        }
        let row = CreditDisputeRow {
            id: new_id(),
            record_id: record.id.clone(),
            subject_id: mine.id.clone(),
            filed_by: actor.user_id.clone(),
            reason: reason.clone(),
            filed_at: at,
            decide_by: ctx.calendar.add_business_days(at, DECISION_BUSINESS_DAYS),
            status: "filed".into(),
            decided_by: None,
            decided_at: None,
            decision_note: None,
            correction_record_id: None,
            kind: kind.clone(),
        };
        diesel::insert_into(credit_disputes::table)
            .values(&row)
            .execute(c)?;
        audit::append(
            c,
            &AuditEvent {
                actor_user_id: Some(&actor.user_id),
                actor_organization_id: Some(&actor.organization_id),
                action: "dispute_credit_record",
                entity_kind: "credit_dispute",
                entity_id: &row.id,
                to_state: Some("filed"),
                details: serde_json::json!({
                    "record": record.id,
                    "subject": mine.id,
                    "kind": kind,
                }),
                ..Default::default()
            },
            at,
        )?;
        Ok(row)
    })
}

/// One of the signed-in subject's own records that a request may be filed against: in
/// force, not a cancellation, not under a request already; with its category's names.
/// Another's or an unknown record is not found; one that cannot be disputed is 409.
/// Reads that record alone (the form shows it), not the archive.
pub fn disputable(
    ctx: &Context,
    actor: &Actor,
    record_id: &str,
) -> Result<credit::ArchiveRecord, ServiceError> {
    let mut conn = ctx.conn()?;
    let c = &mut *conn;
    let mine = credit::my_subject(c, actor)?
        .ok_or_else(|| ServiceError::NotFound("credit record".into()))?;
    let (record, zh, en): (CreditRecordRow, String, String) = credit_records::table
        .inner_join(record_categories::table)
        .filter(credit_records::id.eq(record_id))
        .filter(credit_records::subject_id.eq(&mine.id))
        .select((
            CreditRecordRow::as_select(),
            record_categories::name_zh,
            record_categories::name_en,
        ))
        .first(c)
        .optional()?
        .ok_or_else(|| ServiceError::NotFound("credit record".into()))?;
    let open: i64 = credit_disputes::table
        .filter(credit_disputes::record_id.eq(&record.id))
        .filter(credit_disputes::status.eq("filed"))
        .count()
        .get_result(c)?;
    if !record.in_force || record.cancels.is_some() || open > 0 {
        return Err(ServiceError::InvalidTransition {
            message: "only a record in force and not under a request can be disputed".into(),
            current: "not_disputable",
        });
    }
    Ok(credit::ArchiveRecord {
        record,
        category_name_zh: zh,
        category_name_en: en,
        cancelled_by: None,
        disputed: false,
    })
}

/// The signed-in subject's disputes, newest first.
pub fn mine(ctx: &Context, actor: &Actor) -> Result<Vec<CreditDisputeRow>, ServiceError> {
    let mut conn = ctx.conn()?;
    let Some(subject) = credit::my_subject(&mut conn, actor)? else {
        return Ok(Vec::new());
    };
    Ok(credit_disputes::table
        .filter(credit_disputes::subject_id.eq(&subject.id))
        .order((credit_disputes::filed_at.desc(), credit_disputes::id.desc()))
        .limit(LIST_MAX)
        .select(CreditDisputeRow::as_select())
        .load(&mut conn)?)
}

/// An open dispute as the credit office's page shows it: the dispute, its subject and
/// the record disputed.
#[derive(Debug, Clone)]
pub struct OpenDispute {
    pub dispute: CreditDisputeRow,
    pub subject_name: String,
    /// A resident ID masked, or an enterprise's USCC.
    pub subject_masked_id: String,
    pub record: CreditRecordRow,
    pub category_name_zh: String,
    pub category_name_en: String,
}

/// The disputes waiting for the credit office, the most pressing deadline first, each
/// with its subject and record.
pub fn open(ctx: &Context, actor: &Actor) -> Result<Vec<OpenDispute>, ServiceError> {
    require_credit_office(actor)?;
    let mut conn = ctx.conn()?;
    let rows: Vec<(
        CreditDisputeRow,
        CreditRecordRow,
        String,
        String,
        String,
        String,
    )> = credit_disputes::table
        .inner_join(
            credit_records::table
                .inner_join(record_categories::table)
                .inner_join(credit_subjects::table),
        )
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(FILED))
        .order((credit_disputes::decide_by.asc(), credit_disputes::id.asc()))
        .limit(LIST_MAX)
        .select((
            CreditDisputeRow::as_select(),
            CreditRecordRow::as_select(),
            credit_subjects::name,
            credit_subjects::masked_id,
            record_categories::name_zh,
            record_categories::name_en,
        ))
        .load(&mut conn)?;
    Ok(rows
        .into_iter()
        .map(|(dispute, record, name, masked, zh, en)| OpenDispute {
            dispute,
            subject_name: name,
            subject_masked_id: masked,
            record,
            category_name_zh: zh,
            category_name_en: en,
        })
        .collect())
}

/// The credit office decides a filed dispute: upheld, or corrected by a cancelling
/// record (reason `correction`, the office's reference `dispute:<id>`) whose points come
/// off the subject in the same transaction. A dispute already decided is 409.
pub fn decide(
    ctx: &Context,
    actor: &Actor,
    dispute_id: &str,
    d: DisputeDecision,
) -> Result<CreditDisputeRow, ServiceError> {
    require_credit_office(actor)?;
    let correct = match d.decision.trim() {
        "uphold" => false,
        "correct" => true,
        _ => {
            return Err(ServiceError::invalid(
                "decision",
                "must be uphold or correct",
            ))
        }
    };
    let note = text_field("note", &d.note)?;
    let config = credit::levels()?;
    let mut conn = ctx.conn()?;
    let at = ctx.now();
    ctx.write_tx(&mut conn, |c| {
        let dispute: CreditDisputeRow = credit_disputes::table
            .find(dispute_id)
            .select(CreditDisputeRow::as_select())
            .first(c)
            .optional()?
            .ok_or_else(|| ServiceError::NotFound("credit dispute".into()))?;
        let correction = if correct {
            // A repair granted cancels the record as a credit repair (held back while a
            // default it stands for is unpaid); a dispute upheld in the subject's favour,
            // as a correction.
            let (reason, prefix) = if dispute.kind == "repair" {
                (CancelReason::CreditRepair, "repair")
            } else {
                (CancelReason::Correction, "dispute")
            };
            let reference = format!("{prefix}:{}", dispute.id);
            let cancellation = Cancellation {
                target_id: &dispute.record_id,
                reason,
                department: CREDIT_OFFICE_DEPARTMENT,
                reference: &reference,
                note: Some(note.clone()),
            };
            Some(
                credit::cancel_in_tx(c, ctx, config, actor, &cancellation, at)?
                    .record
                    .id,
            )
        } else {
            None
        };
        let status = if correct { "corrected" } else { "upheld" };
        let decided = diesel::update(
            credit_disputes::table
                .filter(credit_disputes::id.eq(&dispute.id))
                .filter(credit_disputes::status.eq("filed")),
        )
        .set((
            credit_disputes::status.eq(status),
            credit_disputes::decided_by.eq(&actor.user_id),
            credit_disputes::decided_at.eq(at),
            credit_disputes::decision_note.eq(&note),
            credit_disputes::correction_record_id.eq(&correction),
        ))
        .execute(c)?;
        if decided != 1 {
            // Rolls back a correction written above with it.
            return Err(ServiceError::InvalidTransition {
                message: format!("the dispute is {} already", dispute.status),
                current: "decided",
            });
        }
        audit::append(
            c,
            &AuditEvent {
                actor_user_id: Some(&actor.user_id),
                actor_organization_id: Some(&actor.organization_id),
                action: "decide_credit_dispute",
                entity_kind: "credit_dispute",
                entity_id: &dispute.id,
                from_state: Some("filed"),
                to_state: Some(status),
                details: serde_json::json!({ "correction": correction }),
            },
            at,
        )?;
        Ok(CreditDisputeRow {
            status: status.to_owned(),
            decided_by: Some(actor.user_id.clone()),
            decided_at: Some(at),
            decision_note: Some(note),
            correction_record_id: correction,
            ..dispute
        })
    })
}

/// Whether a dispute is still waiting past its deadline at `now`.
pub fn overdue(row: &CreditDisputeRow, now: NaiveDateTime) -> bool {
    row.status == "filed" && now > row.decide_by
}
