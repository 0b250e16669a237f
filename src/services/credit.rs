//! The credit archive (一人一档, 一企一档): a subject per person or enterprise, the
//! append-only log of its records, and its score and level kept current as records
//! arrive, are cancelled or lapse.
//!
//! How the score stays current without scanning: the subject row holds per dimension
//! the signed sum of its records in force, and how many of them list it as seriously
//! dishonest. Adding a record adds its points in the transaction that stores it;
//! cancelling one (a correction, a credit repair) or its lapse takes them off in the
//! transaction that moves the record out of force. Moving out of force is the
//! conditional update `in_force = false WHERE in_force`, so whoever gets the row count
//! of 1 takes the points off, and nobody else can, on any instance. A level that moves
//! writes a level change, an audit entry and a mail in the same transaction.
//!
//! Lock order, to stay clear of deadlocks on PostgreSQL: records first, then subjects
//! (in id order when several). Adding a record takes only its subject.
//!
//! Who: the credit office adds and cancels records and reads any archive; a signed-in
//! enterprise (or resident) reads its own; an issuer reads an applicant's standing while
//! it underwrites. The exchange adds a record for a paid claim. Every read by anyone but
//! the subject is logged in its own transaction ([`super::credit_looks`]).

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::catalogue::require_credit_office;
use super::credit_looks::{log_look, looks_at, LookView};
use super::issuer_rules::LevelRule;
use super::{new_id, Actor, Context, Listed, OrInternal, ServiceError, Window};
use crate::db::audit::{self, AuditEvent};
use crate::db::models::{
    CreditLevelChangeRow, CreditRecordRow, CreditSubjectRow, Organization, RecordCategoryRow,
};
use crate::db::schema::{
    credit_disputes, credit_level_changes, credit_records, credit_subjects, credit_waivers,
    organizations, record_categories, users,
};
use crate::db::DbConnection;
use crate::domain::catalogue::{CreditLevel, Dimension, Polarity, SubjectKind};
use crate::domain::credit::{
    default_expiry, parse_record_time, signed_points, CancelReason, DimensionScores, LevelsConfig,
    LookPurpose, Standing,
};
use crate::domain::party::Role;
use crate::domain::text::{self, TextRules};
use crate::domain::time::china_date;
use crate::domain::waiver::WaiverState;
use crate::domain::{ResidentId, Uscc};
use crate::mail::templates::CreditCause;

/// The department name the exchange's own records carry.
pub const EXCHANGE_DEPARTMENT: &str = "baohan-exchange";
/// The category of the record a paid bid-bond claim writes for the bidder.
pub const CLAIM_PAID_CATEGORY: &str = "bid_bond_claim_paid";
/// Longest department name, subject name or reference, in characters.
pub const NAME_MAX_CHARS: usize = 100;
/// Longest note, in characters.
pub const NOTE_MAX_CHARS: usize = 1000;
/// Records the expiry worker takes out of force in one transaction.
pub const EXPIRY_BATCH: i64 = 200;
/// Batches one run of the expiry worker takes at most (the next run goes on).
const EXPIRY_BATCHES_PER_RUN: usize = 50;
/// Records an archive answer lists at most, newest first.
pub const ARCHIVE_RECORDS_MAX: i64 = 1000;

/// A record as a department sends it (the bulk import's keys, DESIGN section 7).
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRecord {
    /// `person` or `enterprise`.
    #[schema(example = "enterprise")]
    pub subject_type: String,
    /// A resident ID number (person) or a unified social credit code (enterprise). A
    /// resident ID is kept only as a keyed hash and a masked form.
    #[schema(example = "91350100M000100Y43")]
    pub subject_id: String,
    pub subject_name: String,
    /// A record category's code (`GET /api/v1/record-categories`).
    #[schema(example = "administrative_penalty")]
    pub category: String,
    /// `positive` or `negative`; the category's when absent.
    #[serde(default)]
    pub polarity: Option<String>,
    /// 1 to 1000; the category's when absent.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000)]
    pub points: Option<i64>,
    /// RFC 3339 with an offset, or `YYYY-MM-DD` (China time); not in the future.
    #[schema(example = "2026-11-20")]
    pub occurred_at: String,
    /// As `occurred_at`, after it; the category's validity from `occurred_at` when
    /// absent.
    #[serde(default)]
    pub expires_at: Option<String>,
    pub source_department: String,
    /// Unique per department: sending it again stores nothing (409).
    pub source_ref: String,
    #[serde(default)]
    pub note: Option<String>,
}

/// A record that cancels an earlier one (更正 or 信用修复).
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCancellation {
    /// The id of the record in force to cancel.
    pub cancels: String,
    /// `correction` or `credit_repair`.
    #[schema(value_type = CancelReason)]
    pub reason: String,
    pub source_department: String,
    /// Unique per department, as for any record.
    pub source_ref: String,
    #[serde(default)]
    pub note: Option<String>,
}

/// Who a record is about, checked: the key it is looked up by, never the ID number.
#[derive(Clone, PartialEq, Eq)]
pub struct SubjectRef {
    pub kind: SubjectKind,
    /// HMAC hex of a resident ID; a USCC.
    pub key: String,
    pub masked: String,
    pub name: String,
}

impl std::fmt::Debug for SubjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubjectRef")
            .field("kind", &self.kind)
            .field("masked", &self.masked)
            .finish_non_exhaustive()
    }
}

/// A record checked field by field, before any database work.
#[derive(Debug, Clone)]
pub struct CheckedRecord {
    pub subject: SubjectRef,
    pub category: String,
    pub polarity: Option<Polarity>,
    pub points: Option<i32>,
    pub occurred_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub department: String,
    pub reference: String,
    pub note: Option<String>,
}

/// A record as stored, and its subject after it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub record: CreditRecordRow,
    pub subject: CreditSubjectRow,
}

pub(super) fn levels() -> Result<&'static LevelsConfig, ServiceError> {
    LevelsConfig::shipped().or_internal("catalogue/credit_levels.toml")
}

fn line(field: &'static str, value: &str, max: usize) -> Result<String, ServiceError> {
    text::clean(value, TextRules::single_line(max)).map_err(|e| ServiceError::invalid(field, e))
}

fn optional_note(value: &Option<String>) -> Result<Option<String>, ServiceError> {
    match value.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => text::clean(t, TextRules::multi_line(NOTE_MAX_CHARS))
            .map(Some)
            .map_err(|e| ServiceError::invalid("note", e)),
    }
}

/// The key a subject is looked up by, and its masked number: a valid resident ID (as
/// of the exchange's today) for a person, a valid USCC for an enterprise, exactly as
/// given (spaces and lowercase are refused, not fixed, like everywhere else). Neither
/// holds an ID number in clear.
fn subject_key(
    ctx: &Context,
    subject_type: &str,
    subject_id: &str,
) -> Result<(SubjectKind, String, String), ServiceError> {
    let kind: SubjectKind = subject_type
        .trim()
        .parse()
        .map_err(|e| ServiceError::invalid("subject_type", e))?;
    Ok(match kind {
        SubjectKind::Person => {
            let id = ResidentId::parse(subject_id, china_date(ctx.now()))
                .map_err(|e| ServiceError::invalid("subject_id", e))?;
            (kind, id.hmac_hex(&ctx.keys.id_hmac), id.masked())
        }
        SubjectKind::Enterprise => {
            let uscc =
                Uscc::parse(subject_id).map_err(|e| ServiceError::invalid("subject_id", e))?;
            (kind, uscc.as_str().to_owned(), uscc.as_str().to_owned())
        }
    })
}

/// Checks who a record is about: its number (see [`subject_key`]) and its name.
pub fn check_subject(
    ctx: &Context,
    subject_type: &str,
    subject_id: &str,
    name: &str,
) -> Result<SubjectRef, ServiceError> {
    let (kind, key, masked) = subject_key(ctx, subject_type, subject_id)?;
    Ok(SubjectRef {
        kind,
        key,
        masked,
        name: line("subject_name", name, NAME_MAX_CHARS)?,
    })
}

/// Checks every field of a record as sent; the first problem is the answer, naming its
/// field. The category's existence is checked where the record is stored.
pub fn check_record(ctx: &Context, r: &NewRecord) -> Result<CheckedRecord, ServiceError> {
    let subject = check_subject(ctx, &r.subject_type, &r.subject_id, &r.subject_name)?;
    let category = r.category.trim().to_owned();
    if !crate::domain::catalogue::is_code(&category) {
        return Err(ServiceError::invalid(
            "category",
            "unknown record category; GET /api/v1/record-categories lists them",
        ));
    }
    let polarity = match r
        .polarity
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        None => None,
        Some(p) => Some(
            p.parse::<Polarity>()
                .map_err(|e| ServiceError::invalid("polarity", e))?,
        ),
    };
    let points = match r.points {
        None => None,
        Some(p) if (1..=crate::domain::catalogue::POINTS_MAX).contains(&p) => {
            Some(i32::try_from(p).or_internal("points")?)
        }
        Some(_) => {
            return Err(ServiceError::invalid(
                "points",
                format!("must be 1 to {}", crate::domain::catalogue::POINTS_MAX),
            ))
        }
    };
    let occurred_at =
        parse_record_time(&r.occurred_at).map_err(|e| ServiceError::invalid("occurred_at", e))?;
    if occurred_at > ctx.now() {
        return Err(ServiceError::invalid(
            "occurred_at",
            "must not be in the future (by the exchange's clock)",
        ));
    }
    let expires_at = match r
        .expires_at
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        None => None,
        Some(t) => {
            let at = parse_record_time(t).map_err(|e| ServiceError::invalid("expires_at", e))?;
            if at <= occurred_at {
                return Err(ServiceError::invalid(
                    "expires_at",
                    "must be after occurred_at",
                ));
            }
            Some(at)
        }
    };
    Ok(CheckedRecord {
        subject,
        category,
        polarity,
        points,
        occurred_at,
        expires_at,
        department: line("source_department", &r.source_department, NAME_MAX_CHARS)?,
        reference: line("source_ref", &r.source_ref, NAME_MAX_CHARS)?,
        note: optional_note(&r.note)?,
    })
}

/// Runs a write that may lose a race to a concurrent one (the same reference twice at
/// once on PostgreSQL): the loser's transaction rolled back whole, so it runs again and
/// then sees what the winner committed, and answers the duplicate as such.
fn with_retries<T>(mut f: impl FnMut() -> Result<T, ServiceError>) -> Result<T, ServiceError> {
    let mut attempts = 0;
    loop {
        match f() {
            Err(ServiceError::Conflict(_)) if attempts < 2 => attempts += 1,
            other => return other,
        }
    }
}

/// The credit office adds a record: one transaction stores it and brings its subject's
/// scores and level up to date (creating the subject on its first record). A
/// department's reference already recorded is refused with 409 and stores nothing.
pub fn add_record(ctx: &Context, actor: &Actor, r: NewRecord) -> Result<Recorded, ServiceError> {
    require_credit_office(actor)?;
    let checked = check_record(ctx, &r)?;
    let mut conn = ctx.conn()?;
    with_retries(|| {
        let at = ctx.now();
        ctx.write_tx(&mut conn, |c| {
            record_in_tx(c, ctx, &checked, Some(&actor.user_id), at)
        })
    })
}

fn refuse_duplicate(
    c: &mut DbConnection,
    department: &str,
    reference: &str,
) -> Result<(), ServiceError> {
    let exists: i64 = credit_records::table
        .filter(credit_records::source_department.eq(department))
        .filter(credit_records::source_ref.eq(reference))
        .count()
        .get_result(c)?;
    if exists > 0 {
        return Err(ServiceError::Conflict(
            "this department's reference (source_ref) is recorded already; nothing was stored"
                .into(),
        ));
    }
    Ok(())
}

/// Stores a checked record in the caller's transaction and updates its subject: what
/// [`add_record`] and the exchange (a paid claim) share.
pub fn record_in_tx(
    c: &mut DbConnection,
    ctx: &Context,
    r: &CheckedRecord,
    recorded_by: Option<&str>,
    at: NaiveDateTime,
) -> Result<Recorded, ServiceError> {
    let config = levels()?;
    refuse_duplicate(c, &r.department, &r.reference)?;
    let category: RecordCategoryRow = record_categories::table
        .find(&r.category)
        .select(RecordCategoryRow::as_select())
        .first(c)
        .optional()?
        .ok_or_else(|| {
            ServiceError::invalid(
                "category",
                "unknown record category; GET /api/v1/record-categories lists them",
            )
        })?;
    let dimension: Dimension = category.dimension.parse().or_internal("stored dimension")?;
    let default_polarity: Polarity = category.polarity.parse().or_internal("stored polarity")?;
    let polarity = r.polarity.unwrap_or(default_polarity);
    let points = r.points.unwrap_or(category.points);
    let expires_at = r
        .expires_at
        .unwrap_or_else(|| default_expiry(r.occurred_at, category.validity_days));
    // A record that has lapsed already when it arrives is kept, never in force.
    let in_force = expires_at > at;
    let serious = in_force && config.is_serious_dishonesty(&r.category);

    let subject_id = find_or_create_subject(c, config, &r.subject, at)?;
    let record = CreditRecordRow {
        id: new_id(),
        subject_id: subject_id.clone(),
        category: r.category.clone(),
        dimension,
        polarity,
        points,
        serious_dishonesty: serious,
        occurred_at: r.occurred_at,
        expires_at: Some(expires_at),
        source_department: r.department.clone(),
        source_ref: r.reference.clone(),
        note: r.note.clone(),
        cancels: None,
        cancel_reason: None,
        recorded_at: at,
        recorded_by: recorded_by.map(str::to_owned),
        in_force,
    };
    diesel::insert_into(credit_records::table)
        .values(&record)
        .execute(c)?;
    let subject = if in_force {
        let change = Change {
            dimension,
            delta: signed_points(polarity, points),
            serious: i32::from(serious),
        };
        apply(c, ctx, config, &subject_id, &[change], &record, at)?
    } else {
        load_subject(c, &subject_id)?
    };
    Ok(Recorded { record, subject })
}

/// The subject's id, in the caller's transaction, giving it an archive at the base
/// standing if it has none yet (a code shown before any record arrived).
pub(super) fn subject_for(
    c: &mut DbConnection,
    s: &SubjectRef,
    at: NaiveDateTime,
) -> Result<String, ServiceError> {
    find_or_create_subject(c, levels()?, s, at)
}

/// The subject's id, inserting it at the base score when it has no archive yet. An
/// enterprise the exchange knows (by its USCC) is linked to its organization.
fn find_or_create_subject(
    c: &mut DbConnection,
    config: &LevelsConfig,
    s: &SubjectRef,
    at: NaiveDateTime,
) -> Result<String, ServiceError> {
    let existing: Option<(String, Option<String>)> = credit_subjects::table
        .filter(credit_subjects::kind.eq(s.kind))
        .filter(credit_subjects::subject_key.eq(&s.key))
        .select((credit_subjects::id, credit_subjects::organization_id))
        .first(c)
        .optional()?;
    let organization_id = match (s.kind, &existing) {
        (SubjectKind::Enterprise, None | Some((_, None))) => organizations::table
            .filter(organizations::uscc.eq(&s.key))
            .select(organizations::id)
            .first::<String>(c)
            .optional()?,
        _ => None,
    };
    if let Some((id, linked)) = existing {
        if linked.is_none() && organization_id.is_some() {
            diesel::update(credit_subjects::table.find(&id))
                .set(credit_subjects::organization_id.eq(&organization_id))
                .execute(c)?;
        }
        return Ok(id);
    }
    let fresh = config.standing(&DimensionScores::default(), 0);
    let row = CreditSubjectRow {
        id: new_id(),
        kind: s.kind,
        subject_key: s.key.clone(),
        masked_id: s.masked.clone(),
        name: s.name.clone(),
        organization_id,
        score_identity: 0,
        score_compliance: 0,
        score_public_interest: 0,
        score_history: 0,
        score: fresh.score,
        level: fresh.level,
        level_since: at,
        serious_dishonesty_count: 0,
        version: 1,
        created_at: at,
        updated_at: at,
    };
    // Inside a savepoint: when a parallel transaction created the subject first (a
    // unique violation once it commits), this one goes on with that row instead of
    // failing (a paid claim's transaction cannot simply run again).
    let inserted = c.transaction(|c| {
        diesel::insert_into(credit_subjects::table)
            .values(&row)
            .execute(c)
    });
    match inserted {
        Ok(_) => Ok(row.id),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Ok(credit_subjects::table
            .filter(credit_subjects::kind.eq(s.kind))
            .filter(credit_subjects::subject_key.eq(&s.key))
            .select(credit_subjects::id)
            .first(c)?),
        Err(e) => Err(e.into()),
    }
}

fn load_subject(c: &mut DbConnection, id: &str) -> Result<CreditSubjectRow, ServiceError> {
    Ok(credit_subjects::table
        .find(id)
        .select(CreditSubjectRow::as_select())
        .first(c)?)
}

fn dimensions_of(s: &CreditSubjectRow) -> DimensionScores {
    DimensionScores {
        identity: s.score_identity,
        compliance: s.score_compliance,
        public_interest: s.score_public_interest,
        history: s.score_history,
    }
}

/// What one record does to its subject: points into a dimension, and the
/// serious-dishonesty count (+1 arriving, -1 leaving, or 0).
#[derive(Debug, Clone, Copy)]
struct Change {
    dimension: Dimension,
    delta: i32,
    serious: i32,
}

/// Applies changes to a subject under its row lock (taken first by bumping its
/// version), writes its new scores and level, and when the level moves, the level
/// change, its audit entry and the mails. `cause` is the record that moved it.
fn apply(
    c: &mut DbConnection,
    ctx: &Context,
    config: &LevelsConfig,
    subject_id: &str,
    changes: &[Change],
    cause: &CreditRecordRow,
    at: NaiveDateTime,
) -> Result<CreditSubjectRow, ServiceError> {
    let locked = diesel::update(credit_subjects::table.find(subject_id))
        .set(credit_subjects::version.eq(credit_subjects::version + 1))
        .execute(c)?;
    if locked != 1 {
        return Err(ServiceError::NotFound("credit subject".into()));
    }
    let before = load_subject(c, subject_id)?;
    let mut dims = dimensions_of(&before);
    let mut serious = before.serious_dishonesty_count;
    for change in changes {
        dims.add(change.dimension, change.delta);
        serious += change.serious;
    }
    if serious < 0 {
        return Err(ServiceError::Internal(anyhow::anyhow!(
            "credit subject {subject_id}: serious-dishonesty count would go below zero"
        )));
    }
    let Standing { score, level } = config.standing(&dims, serious);
    let moved = level != before.level;
    let level_since = if moved { at } else { before.level_since };
    diesel::update(credit_subjects::table.find(subject_id))
        .set((
            credit_subjects::score_identity.eq(dims.identity),
            credit_subjects::score_compliance.eq(dims.compliance),
            credit_subjects::score_public_interest.eq(dims.public_interest),
            credit_subjects::score_history.eq(dims.history),
            credit_subjects::score.eq(score),
            credit_subjects::level.eq(level),
            credit_subjects::level_since.eq(level_since),
            credit_subjects::serious_dishonesty_count.eq(serious),
            credit_subjects::updated_at.eq(at),
        ))
        .execute(c)?;
    let after = load_subject(c, subject_id)?;
    if moved {
        level_changed(c, ctx, &after, before.level, cause, at)?;
    }
    Ok(after)
}

/// The audit entry of a subject's level moving from `from`, caused by `cause` (a new,
/// cancelling or lapsed record): one shape for a record alone and for a bulk import.
pub(super) fn level_change_event<'a>(
    subject: &'a CreditSubjectRow,
    from: CreditLevel,
    cause: &CreditRecordRow,
) -> AuditEvent<'a> {
    AuditEvent {
        action: "credit_level_changed",
        entity_kind: "credit_subject",
        entity_id: &subject.id,
        from_state: Some(from.as_str()),
        to_state: Some(subject.level.as_str()),
        details: serde_json::json!({
            "score": subject.score,
            "cause_record": cause.id,
            "category": cause.category,
            "cancels": cause.cancels,
        }),
        ..Default::default()
    }
}

/// Records a level change: its row, its audit entry and a mail to whoever the archive
/// knows for the subject.
fn level_changed(
    c: &mut DbConnection,
    ctx: &Context,
    subject: &CreditSubjectRow,
    from: CreditLevel,
    cause: &CreditRecordRow,
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    let change = CreditLevelChangeRow {
        id: new_id(),
        subject_id: subject.id.clone(),
        from_level: from,
        to_level: subject.level,
        score: subject.score,
        cause_record_id: Some(cause.id.clone()),
        changed_at: at,
    };
    diesel::insert_into(credit_level_changes::table)
        .values(&change)
        .execute(c)?;
    audit::append(c, &level_change_event(subject, from, cause), at)?;
    let category_name: Option<(String, String)> = record_categories::table
        .find(&cause.category)
        .select((record_categories::name_zh, record_categories::name_en))
        .first(c)
        .optional()?;
    let cause_kind = match (cause.cancels.is_some(), cause.in_force) {
        (true, _) => CreditCause::Cancelled,
        (false, true) => CreditCause::NewRecord,
        (false, false) => CreditCause::Lapsed,
    };
    let reason = category_name.map(|(zh, en)| cause_kind.reason(&zh, &en));
    let recipients = recipients_of(c, subject)?;
    super::notify::credit_level_changed(c, ctx, subject, from, reason, &recipients, at)
}

/// The mail addresses the exchange knows for a subject: for an enterprise, its
/// organization's and its active users'; for a person, its own resident accounts
/// registered with that resident ID (never a work account of an enterprise that checked
/// the same person's name: personal credit is not the employer's mail). Each once.
fn recipients_of(
    c: &mut DbConnection,
    subject: &CreditSubjectRow,
) -> Result<Vec<String>, ServiceError> {
    let mut addresses: Vec<String> = Vec::new();
    match subject.kind {
        SubjectKind::Enterprise => {
            if let Some(org_id) = &subject.organization_id {
                let org: Organization = organizations::table
                    .find(org_id)
                    .select(Organization::as_select())
                    .first(c)?;
                addresses.extend(org.email);
                let user_mails: Vec<Option<String>> = users::table
                    .filter(users::organization_id.eq(org_id))
                    .filter(users::active.eq(true))
                    .select(users::email)
                    .load(c)?;
                addresses.extend(user_mails.into_iter().flatten());
            }
        }
        SubjectKind::Person => {
            let user_mails: Vec<Option<String>> = users::table
                .filter(users::resident_id_hmac.eq(&subject.subject_key))
                .filter(users::role.eq(Role::Person))
                .filter(users::active.eq(true))
                .select(users::email)
                .load(c)?;
            addresses.extend(user_mails.into_iter().flatten());
        }
    }
    let mut seen = std::collections::HashSet::new();
    addresses.retain(|a| seen.insert(a.to_lowercase()));
    Ok(addresses)
}

/// The credit office cancels a record in force with a new record naming it (a
/// correction or a credit repair): the earlier record leaves force by the conditional
/// update, its points come off its subject, all in one transaction.
pub fn cancel_record(
    ctx: &Context,
    actor: &Actor,
    r: NewCancellation,
) -> Result<Recorded, ServiceError> {
    require_credit_office(actor)?;
    let reason: CancelReason = r
        .reason
        .trim()
        .parse()
        .map_err(|e| ServiceError::invalid("reason", e))?;
    let department = line("source_department", &r.source_department, NAME_MAX_CHARS)?;
    let reference = line("source_ref", &r.source_ref, NAME_MAX_CHARS)?;
    let note = optional_note(&r.note)?;
    let target_id = r.cancels.trim().to_owned();
    let config = levels()?;
    let mut conn = ctx.conn()?;
    with_retries(|| {
        let at = ctx.now();
        ctx.write_tx(&mut conn, |c| {
            let cancellation = Cancellation {
                target_id: &target_id,
                reason,
                department: &department,
                reference: &reference,
                note: note.clone(),
            };
            cancel_in_tx(c, ctx, config, actor, &cancellation, at)
        })
    })
}

/// A cancelling record to write: which record it cancels, why, and its own source.
pub(super) struct Cancellation<'a> {
    pub target_id: &'a str,
    pub reason: CancelReason,
    pub department: &'a str,
    pub reference: &'a str,
    pub note: Option<String>,
}

/// Cancels a record in force in the caller's transaction: the record leaves force by
/// the conditional update, the cancelling record is written and audited, and the
/// subject's scores and level follow. What the credit office's cancellation and a
/// dispute's correction share.
pub(super) fn cancel_in_tx(
    c: &mut DbConnection,
    ctx: &Context,
    config: &LevelsConfig,
    actor: &Actor,
    k: &Cancellation<'_>,
    at: NaiveDateTime,
) -> Result<Recorded, ServiceError> {
    refuse_duplicate(c, k.department, k.reference)?;
    if k.reason == CancelReason::CreditRepair {
        refuse_repair_of_unpaid_default(c, k.target_id)?;
    }
    let target: CreditRecordRow = credit_records::table
        .find(k.target_id)
        .select(CreditRecordRow::as_select())
        .first(c)
        .optional()?
        .ok_or_else(|| ServiceError::NotFound("credit record".into()))?;
    let left = diesel::update(
        credit_records::table
            .filter(credit_records::id.eq(&target.id))
            .filter(credit_records::in_force),
    )
    .set(credit_records::in_force.eq(false))
    .execute(c)?;
    if left != 1 {
        return Err(ServiceError::InvalidTransition {
            message: "the record is not in force (cancelled, lapsed, or itself a \
                      cancellation): there is nothing to cancel"
                .into(),
            current: "not_in_force",
        });
    }
    let record = CreditRecordRow {
        id: new_id(),
        subject_id: target.subject_id.clone(),
        category: target.category.clone(),
        dimension: target.dimension,
        polarity: target.polarity,
        points: 0,
        serious_dishonesty: false,
        occurred_at: at,
        expires_at: None,
        source_department: k.department.to_owned(),
        source_ref: k.reference.to_owned(),
        note: k.note.clone(),
        cancels: Some(target.id.clone()),
        cancel_reason: Some(k.reason),
        recorded_at: at,
        recorded_by: Some(actor.user_id.clone()),
        in_force: false,
    };
    diesel::insert_into(credit_records::table)
        .values(&record)
        .execute(c)?;
    audit::append(
        c,
        &AuditEvent {
            actor_user_id: Some(&actor.user_id),
            actor_organization_id: Some(&actor.organization_id),
            action: "cancel_credit_record",
            entity_kind: "credit_record",
            entity_id: &target.id,
            from_state: Some("in_force"),
            to_state: Some("cancelled"),
            details: serde_json::json!({
                "cancelled_by": record.id,
                "reason": k.reason,
                "subject": target.subject_id,
            }),
        },
        at,
    )?;
    let subject = apply(
        c,
        ctx,
        config,
        &target.subject_id,
        &[leaving(&target)],
        &record,
        at,
    )?;
    Ok(Recorded { record, subject })
}

/// A credit repair (信用修复) of a waiver's default needs the bill paid first: the
/// default's record stays while its waiver stands defaulted. A correction (the record
/// was wrong) is not held back.
fn refuse_repair_of_unpaid_default(
    c: &mut DbConnection,
    record_id: &str,
) -> Result<(), ServiceError> {
    let unpaid: i64 = credit_waivers::table
        .filter(credit_waivers::record_id.eq(record_id))
        .filter(credit_waivers::state.eq(WaiverState::Defaulted))
        .count()
        .get_result(c)?;
    if unpaid > 0 {
        return Err(ServiceError::InvalidTransition {
            message: "the default this record stands for is still unpaid: a credit repair \
                      needs its provider to report it paid first"
                .into(),
            current: "defaulted",
        });
    }
    Ok(())
}

/// What a record leaving force does: the opposite of its arrival.
fn leaving(r: &CreditRecordRow) -> Change {
    Change {
        dimension: r.dimension,
        delta: -signed_points(r.polarity, r.points),
        serious: -i32::from(r.serious_dishonesty),
    }
}

/// The expiry worker: takes the records in force whose `expires_at` has passed out of
/// force, in order of `expires_at`, [`EXPIRY_BATCH`] per transaction, and takes their
/// points off their subjects. Safe on several instances at once: a record leaves force
/// by the conditional update, and only the transaction that moved it changes its
/// subject. Answers how many records this run took out of force.
pub fn expire_lapsed(ctx: &Context) -> Result<usize, ServiceError> {
    let config = levels()?;
    let mut conn = ctx.conn()?;
    let mut total = 0;
    for _ in 0..EXPIRY_BATCHES_PER_RUN {
        let at = ctx.now();
        let due: Vec<String> = credit_records::table
            .filter(credit_records::in_force)
            .filter(credit_records::expires_at.le(at))
            .order((credit_records::expires_at.asc(), credit_records::id.asc()))
            .limit(EXPIRY_BATCH)
            .select(credit_records::id)
            .load(&mut conn)?;
        if due.is_empty() {
            break;
        }
        let full = i64::try_from(due.len()).unwrap_or(i64::MAX) >= EXPIRY_BATCH;
        total += crate::db::write_tx(&mut conn, |c| expire_batch(c, ctx, config, &due, at))?;
        if !full {
            break;
        }
    }
    Ok(total)
}

fn expire_batch(
    c: &mut DbConnection,
    ctx: &Context,
    config: &LevelsConfig,
    due: &[String],
    at: NaiveDateTime,
) -> Result<usize, ServiceError> {
    // Records first, in the order read: each one this transaction moves is its own.
    let mut lapsed: BTreeMap<String, Vec<CreditRecordRow>> = BTreeMap::new();
    let mut count = 0;
    for id in due {
        let moved = diesel::update(
            credit_records::table
                .filter(credit_records::id.eq(id))
                .filter(credit_records::in_force),
        )
        .set(credit_records::in_force.eq(false))
        .execute(c)?;
        if moved != 1 {
            continue;
        }
        let row: CreditRecordRow = credit_records::table
            .find(id)
            .select(CreditRecordRow::as_select())
            .first(c)?;
        lapsed.entry(row.subject_id.clone()).or_default().push(row);
        count += 1;
    }
    // Then their subjects, in id order.
    for (subject_id, rows) in &lapsed {
        let changes: Vec<Change> = rows.iter().map(leaving).collect();
        let cause = rows.last().or_internal("a lapsed record")?;
        apply(c, ctx, config, subject_id, &changes, cause, at)?;
    }
    Ok(count)
}

/// A record in an archive, with its category's names and, when cancelled, the record
/// that cancelled it.
#[derive(Debug, Clone)]
pub struct ArchiveRecord {
    pub record: CreditRecordRow,
    pub category_name_zh: String,
    pub category_name_en: String,
    pub cancelled_by: Option<String>,
    /// Under a dispute the credit office has not decided yet.
    pub disputed: bool,
}

/// What a record adds to its subject's score now: its signed points while in force,
/// nothing otherwise.
pub fn contribution(r: &CreditRecordRow) -> i32 {
    if r.in_force {
        signed_points(r.polarity, r.points)
    } else {
        0
    }
}

/// A subject's archive as stored: the subject row (read, never recomputed), its
/// records newest first, and its level changes newest first.
#[derive(Debug, Clone)]
pub struct Archive {
    /// None for a signed-in subject with no record yet: it stands at the base score.
    pub subject: Option<CreditSubjectRow>,
    pub base_score: i32,
    pub standing: Standing,
    pub dimensions: DimensionScores,
    pub records: Vec<ArchiveRecord>,
    pub level_changes: Vec<CreditLevelChangeRow>,
}

impl Archive {
    /// The records in force, each with its contribution, largest effect first: what
    /// moves the score.
    pub fn explanation(&self) -> Vec<(&ArchiveRecord, i32)> {
        let mut moving: Vec<(&ArchiveRecord, i32)> = self
            .records
            .iter()
            .filter(|r| r.record.in_force)
            .map(|r| (r, contribution(&r.record)))
            .collect();
        moving.sort_by_key(|(r, c)| (std::cmp::Reverse(c.abs()), r.record.recorded_at));
        moving
    }
}

/// A subject's records with their category's names (zh, en), newest first, at most
/// [`ARCHIVE_RECORDS_MAX`]; with `lowering`, only those in force that lower the score.
fn named_records(
    c: &mut DbConnection,
    subject_id: &str,
    lowering: bool,
) -> Result<Vec<(CreditRecordRow, String, String)>, ServiceError> {
    let mut query = credit_records::table
        .inner_join(record_categories::table)
        .filter(credit_records::subject_id.eq(subject_id))
        .into_boxed();
    if lowering {
        query = query
            .filter(credit_records::in_force)
            .filter(credit_records::polarity.eq(Polarity::Negative));
    }
    Ok(query
        .order((
            credit_records::recorded_at.desc(),
            credit_records::id.desc(),
        ))
        .limit(ARCHIVE_RECORDS_MAX)
        .select((
            CreditRecordRow::as_select(),
            record_categories::name_zh,
            record_categories::name_en,
        ))
        .load(c)?)
}

fn archive_of(
    c: &mut DbConnection,
    subject: Option<CreditSubjectRow>,
) -> Result<Archive, ServiceError> {
    let config = levels()?;
    let Some(subject) = subject else {
        let dims = DimensionScores::default();
        return Ok(Archive {
            subject: None,
            base_score: config.base_score,
            standing: config.standing(&dims, 0),
            dimensions: dims,
            records: Vec::new(),
            level_changes: Vec::new(),
        });
    };
    let rows = named_records(c, &subject.id, false)?;
    let cancellations: BTreeMap<String, String> = rows
        .iter()
        .filter_map(|(r, _, _)| r.cancels.clone().map(|t| (t, r.id.clone())))
        .collect();
    let disputed: std::collections::BTreeSet<String> = credit_disputes::table
        .filter(credit_disputes::subject_id.eq(&subject.id))
        .filter(credit_disputes::status.eq("filed"))
        .select(credit_disputes::record_id)
        .load::<String>(c)?
        .into_iter()
        .collect();
    let records = rows
        .into_iter()
        .map(|(record, zh, en)| ArchiveRecord {
            cancelled_by: cancellations.get(&record.id).cloned(),
            disputed: disputed.contains(&record.id),
            record,
            category_name_zh: zh,
            category_name_en: en,
        })
        .collect();
    let level_changes = credit_level_changes::table
        .filter(credit_level_changes::subject_id.eq(&subject.id))
        .order(credit_level_changes::changed_at.desc())
        .limit(ARCHIVE_RECORDS_MAX)
        .select(CreditLevelChangeRow::as_select())
        .load(c)?;
    Ok(Archive {
        base_score: config.base_score,
        standing: Standing {
            score: subject.score,
            level: subject.level,
        },
        dimensions: dimensions_of(&subject),
        subject: Some(subject),
        records,
        level_changes,
    })
}

/// A subject's archive by its id (the credit office).
pub fn archive(ctx: &Context, actor: &Actor, subject_id: &str) -> Result<Archive, ServiceError> {
    require_credit_office(actor)?;
    let mut conn = ctx.conn()?;
    office_look(ctx, &mut conn, actor, |c| {
        Ok(credit_subjects::table
            .find(subject_id)
            .select(CreditSubjectRow::as_select())
            .first(c)
            .optional()?)
    })
}

/// The credit office's read of the archive of the subject `find` finds, and its look.
/// The archive is read in a read transaction of its own (one snapshot, and on SQLite no
/// write lock held while up to a thousand records are read); then the look is written,
/// and the archive is answered only once its look has committed.
fn office_look(
    ctx: &Context,
    conn: &mut DbConnection,
    actor: &Actor,
    find: impl FnOnce(&mut DbConnection) -> Result<Option<CreditSubjectRow>, ServiceError>,
) -> Result<Archive, ServiceError> {
    let archive = conn.transaction(|c| {
        let subject = find(c)?.ok_or_else(|| ServiceError::NotFound("credit subject".into()))?;
        archive_of(c, Some(subject))
    })?;
    let subject_id = archive
        .subject
        .as_ref()
        .map(|s| s.id.clone())
        .or_internal("the archive's subject")?;
    ctx.write_tx(conn, |c| {
        log_look(
            c,
            actor,
            &subject_id,
            LookPurpose::CreditOffice,
            None,
            ctx.now(),
        )
    })?;
    Ok(archive)
}

/// A subject's archive by its resident ID or USCC (the credit office): sent in a body,
/// so the number never sits in a URL or an access log.
pub fn find_archive(
    ctx: &Context,
    actor: &Actor,
    subject_type: &str,
    subject_id: &str,
) -> Result<Archive, ServiceError> {
    require_credit_office(actor)?;
    let (kind, key, _) = subject_key(ctx, subject_type, subject_id)?;
    let mut conn = ctx.conn()?;
    office_look(ctx, &mut conn, actor, |c| subject_by_key(c, kind, &key))
}

/// The level an enterprise's archive holds now, if it has one (nothing is created and
/// no look is logged: the exchange reads it for the issuer's fast track).
pub fn enterprise_level(
    c: &mut DbConnection,
    enterprise: &Organization,
) -> Result<Option<CreditLevel>, ServiceError> {
    Ok(subject_by_key(c, SubjectKind::Enterprise, &enterprise.uscc)?.map(|s| s.level))
}

fn subject_by_key(
    c: &mut DbConnection,
    kind: SubjectKind,
    key: &str,
) -> Result<Option<CreditSubjectRow>, ServiceError> {
    Ok(credit_subjects::table
        .filter(credit_subjects::kind.eq(kind))
        .filter(credit_subjects::subject_key.eq(key))
        .select(CreditSubjectRow::as_select())
        .first(c)
        .optional()?)
}

/// The signed-in subject's own archive: an enterprise's (by its organization's USCC),
/// or a resident's (by the resident ID its account was registered with).
/// Reading one's own archive is no look: nothing is logged.
pub fn my_archive(ctx: &Context, actor: &Actor) -> Result<Archive, ServiceError> {
    let mut conn = ctx.conn()?;
    let subject = my_subject(&mut conn, actor)?;
    archive_of(&mut conn, subject)
}

/// The signed-in enterprise's or resident's own subject, if it has an archive.
pub(super) fn my_subject(
    c: &mut DbConnection,
    actor: &Actor,
) -> Result<Option<CreditSubjectRow>, ServiceError> {
    match actor.role {
        Role::Enterprise => {
            let uscc: String = organizations::table
                .find(&actor.organization_id)
                .select(organizations::uscc)
                .first(c)?;
            subject_by_key(c, SubjectKind::Enterprise, &uscc)
        }
        Role::Person => {
            let hmac: Option<String> = users::table
                .find(&actor.user_id)
                .select(users::resident_id_hmac)
                .first(c)?;
            match hmac {
                Some(key) => subject_by_key(c, SubjectKind::Person, &key),
                None => Ok(None),
            }
        }
        _ => Err(ServiceError::Forbidden(
            "only an enterprise or a resident has a credit archive of its own".into(),
        )),
    }
}

/// Who looked at the signed-in subject's archive ("who looked at my credit"), newest
/// first, one page: the organization, the purpose and the time of each look. Without an
/// archive, nobody has.
pub fn my_looks(
    ctx: &Context,
    actor: &Actor,
    window: Window,
) -> Result<Listed<LookView>, ServiceError> {
    let mut conn = ctx.conn()?;
    match my_subject(&mut conn, actor)? {
        Some(subject) => looks_at(&mut conn, &subject.id, window),
        None => Ok(Listed {
            rows: Vec::new(),
            total: 0,
        }),
    }
}

/// A record in force that lowers the score, as an underwriting issuer sees it.
#[derive(Debug, Clone)]
pub struct LoweringRecord {
    pub category: String,
    pub category_name_zh: String,
    pub category_name_en: String,
    /// The points it takes off the score (positive).
    pub points: i32,
    pub occurred_at: NaiveDateTime,
}

/// An applicant's standing as the issuer underwriting its application sees it: the
/// level and score as its subject row holds them, and its records in force that lower
/// the score, newest first.
#[derive(Debug, Clone)]
pub struct ApplicantCredit {
    pub standing: Standing,
    pub base_score: i32,
    pub lowering: Vec<LoweringRecord>,
    /// The underwriting issuer's own rule for the applicant's level (its discount and
    /// whether it reviews by hand).
    pub rule: LevelRule,
}

/// The issuer reads the applicant enterprise's standing for one application it
/// underwrites, and the look is logged (underwriting, with the application), all in the
/// caller's transaction. Whether this issuer may read it (the application is made to it
/// and still being underwritten) is the caller's check. An enterprise with no archive yet
/// gets one at the base standing, so the look has a subject to be shown to.
pub fn applicant_credit(
    c: &mut DbConnection,
    actor: &Actor,
    enterprise: &Organization,
    application_id: &str,
    at: NaiveDateTime,
) -> Result<ApplicantCredit, ServiceError> {
    let config = levels()?;
    let subject_ref = SubjectRef {
        kind: SubjectKind::Enterprise,
        key: enterprise.uscc.clone(),
        masked: enterprise.uscc.clone(),
        name: enterprise.name.clone(),
    };
    let subject_id = find_or_create_subject(c, config, &subject_ref, at)?;
    let subject = load_subject(c, &subject_id)?;
    log_look(
        c,
        actor,
        &subject.id,
        LookPurpose::Underwriting,
        Some(application_id),
        at,
    )?;
    let rows = named_records(c, &subject.id, true)?;
    let rule = super::issuer_rules::rule_for(c, &actor.organization_id, subject.level)?;
    Ok(ApplicantCredit {
        rule,
        standing: Standing {
            score: subject.score,
            level: subject.level,
        },
        base_score: config.base_score,
        lowering: rows
            .into_iter()
            .map(|(r, zh, en)| LoweringRecord {
                category: r.category,
                category_name_zh: zh,
                category_name_en: en,
                points: r.points,
                occurred_at: r.occurred_at,
            })
            .collect(),
    })
}

/// The exchange records a paid bid-bond claim against the bidder, in the claim's own
/// transaction: a negative record of [`CLAIM_PAID_CATEGORY`] (its points and validity
/// from the category), referenced by the claim so it is never written twice.
pub fn record_claim_paid(
    c: &mut DbConnection,
    ctx: &Context,
    bidder: &Organization,
    claim_id: &str,
    note: String,
    decided_by: &str,
    at: NaiveDateTime,
) -> Result<Recorded, ServiceError> {
    let record = CheckedRecord {
        subject: SubjectRef {
            kind: SubjectKind::Enterprise,
            key: bidder.uscc.clone(),
            masked: bidder.uscc.clone(),
            name: bidder.name.clone(),
        },
        category: CLAIM_PAID_CATEGORY.into(),
        polarity: Some(Polarity::Negative),
        points: None,
        occurred_at: at,
        expires_at: None,
        department: EXCHANGE_DEPARTMENT.into(),
        reference: format!("claim:{claim_id}"),
        note: Some(note),
    };
    record_in_tx(c, ctx, &record, Some(decided_by), at)
}
