//! Credit rights codes (信用权益码), credit lines (授信额度) and waivers (免押): a
//! resident or an enterprise shows a short-lived, single-use code; a provider's system
//! posts it with the matter and the deposit; the answer is granted (a waiver that holds
//! part of the subject's line until settled) or refused with a reason, and nothing else
//! of the archive.
//!
//! Invariants, each held by the database:
//! - a code is used once: `used_at` goes from NULL by a conditional update, and only the
//!   check that moved it answers from the subject's standing;
//! - a subject's line is never overspent: a check locks the subject's line row first
//!   (bumping its version), reads the level and the counters under that lock, and adds
//!   the amount in the same transaction; concurrent checks of one subject queue there;
//! - a waiver moves state by a conditional update on the state it leaves.
//!
//! Lock order: credit records, then subjects (a settlement's record), then lines.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;

use super::credit::{self, CheckedRecord, SubjectRef};
use super::{new_id, require_role, Actor, Context, Listed, OrInternal, ServiceError, Window};
use crate::db::models::{CreditSubjectRow, RightsCodeRow, WaiverRow};
use crate::db::schema::{
    credit_line_matters, credit_lines, credit_rights_codes, credit_subjects, credit_waivers,
    matters, organizations, users,
};
use crate::db::DbConnection;
use crate::domain::catalogue::{CreditLevel, Polarity, SubjectKind};
use crate::domain::money::Amount;
use crate::domain::party::{OrgKind, ProviderKind, Role};
use crate::domain::rights_code::{self, RightsCodeError};
use crate::domain::text::{self, TextRules};
use crate::domain::waiver::{
    decide, provider_collects, Holder, LinesConfig, MatterTerms, RefusalReason, Settlement,
    WaiverMoveError, WaiverState,
};

/// The path of a matter whose deposit credit replaces.
const CREDIT_SUBSTITUTION: &str = "credit_substitution";
/// Longest provider reference (an admission or booking number), in characters.
pub const PROVIDER_REF_MAX_CHARS: usize = 64;
/// Bills the default worker takes per run.
const DEFAULT_BATCH: i64 = 200;

/// The default worker's queue as the partial index `credit_waivers_due` states it: in the
/// SQL text, not as a bound value, so that SQLite (whose planner makes one plan whatever
/// is bound, see `.cargo/config.toml`) can read the index (a test in `db` checks it).
pub const BILLED: &str = "credit_waivers.state = 'billed'";
/// Waivers a subject's list shows at most, newest first.
pub const MY_WAIVERS_MAX: i64 = 200;

pub fn lines() -> Result<&'static LinesConfig, ServiceError> {
    LinesConfig::shipped().or_internal("catalogue/credit_lines.toml")
}

/// A code as its subject is shown it.
#[derive(Debug, Clone)]
pub struct IssuedCode {
    /// The text to type or scan (`BHQ1…`).
    pub text: String,
    pub issued_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    /// The provider it is for, when the subject chose one: id and name.
    pub provider: Option<(String, String)>,
}

/// The signed-in enterprise's or resident's subject, as a record names it: an
/// enterprise by its USCC, a resident by the resident ID its account was registered
/// with (a resident without one has no archive to show).
fn my_subject_ref(c: &mut DbConnection, actor: &Actor) -> Result<SubjectRef, ServiceError> {
    match actor.role {
        Role::Enterprise => {
            let (uscc, name): (String, String) = organizations::table
                .find(&actor.organization_id)
                .select((organizations::uscc, organizations::name))
                .first(c)?;
            Ok(SubjectRef {
                kind: SubjectKind::Enterprise,
                key: uscc.clone(),
                masked: uscc,
                name,
            })
        }
        Role::Person => {
            let (hmac, masked, name): (Option<String>, Option<String>, String) = users::table
                .find(&actor.user_id)
                .select((
                    users::resident_id_hmac,
                    users::resident_id_masked,
                    users::display_name,
                ))
                .first(c)?;
            match (hmac, masked) {
                (Some(key), Some(masked)) => Ok(SubjectRef {
                    kind: SubjectKind::Person,
                    key,
                    masked,
                    name,
                }),
                _ => Err(ServiceError::Conflict(
                    "this account has no resident ID registered, so it has no credit \
                     archive; ask the credit office to register it"
                        .into(),
                )),
            }
        }
        _ => Err(ServiceError::Forbidden(
            "only an enterprise or a resident has a credit rights code".into(),
        )),
    }
}

/// Makes sure a subject has its line row (a waiver's counters), in the caller's
/// transaction. A parallel insert of the same row is no failure.
fn ensure_line(c: &mut DbConnection, subject_id: &str) -> Result<(), ServiceError> {
    let exists: i64 = credit_lines::table
        .filter(credit_lines::subject_id.eq(subject_id))
        .count()
        .get_result(c)?;
    if exists > 0 {
        return Ok(());
    }
    let inserted = c.transaction(|c| {
        diesel::insert_into(credit_lines::table)
            .values((
                credit_lines::subject_id.eq(subject_id),
                credit_lines::in_use_fen.eq(0_i64),
                credit_lines::defaults_open.eq(0),
                credit_lines::version.eq(1),
            ))
            .execute(c)
    });
    match inserted {
        Ok(_)
        | Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn provider_name(c: &mut DbConnection, id: &str) -> Result<Option<String>, ServiceError> {
    Ok(organizations::table
        .find(id)
        .filter(organizations::kind.eq(OrgKind::Provider))
        .select(organizations::name)
        .first(c)
        .optional()?)
}

/// The text of a stored code.
fn text_of(ctx: &Context, row: &RightsCodeRow) -> Result<String, ServiceError> {
    let bytes = hex::decode(&row.id).or_internal("stored rights code id")?;
    let id: rights_code::CodeId = bytes
        .try_into()
        .map_err(|_| ServiceError::Internal(anyhow::anyhow!("stored rights code id length")))?;
    Ok(rights_code::seal(
        &ctx.keys.rights_code,
        &id,
        row.expires_at.and_utc(),
    ))
}

fn issued(
    c: &mut DbConnection,
    ctx: &Context,
    row: &RightsCodeRow,
) -> Result<IssuedCode, ServiceError> {
    let provider = match &row.provider_id {
        Some(id) => provider_name(c, id)?.map(|name| (id.clone(), name)),
        None => None,
    };
    Ok(IssuedCode {
        text: text_of(ctx, row)?,
        issued_at: row.issued_at,
        expires_at: row.expires_at,
        provider,
    })
}

/// Gives the signed-in enterprise or resident a new code, valid for the configured
/// minutes, for one provider when `provider_id` names one (only that provider may then
/// check it). Its subject gets an archive at the base standing if it had none.
pub fn issue_code(
    ctx: &Context,
    actor: &Actor,
    provider_id: Option<&str>,
) -> Result<IssuedCode, ServiceError> {
    require_role(actor, &[Role::Enterprise, Role::Person])?;
    let config = lines()?;
    let provider_id = provider_id.map(str::trim).filter(|p| !p.is_empty());
    let mut conn = ctx.conn()?;
    ctx.write_tx(&mut conn, |c| {
        if let Some(p) = provider_id {
            if provider_name(c, p)?.is_none() {
                return Err(ServiceError::invalid("provider_id", "no such provider"));
            }
        }
        let at = ctx.now();
        let subject = my_subject_ref(c, actor)?;
        let subject_id = credit::subject_for(c, &subject, at)?;
        ensure_line(c, &subject_id)?;
        let mut id: rights_code::CodeId = [0; rights_code::ID_LEN];
        openssl::rand::rand_bytes(&mut id).or_internal("random code id")?;
        let row = RightsCodeRow {
            id: hex::encode(id),
            subject_id,
            issued_to: actor.user_id.clone(),
            provider_id: provider_id.map(str::to_owned),
            issued_at: at,
            // Whole seconds: the text carries the expiry to the second.
            expires_at: chrono::DateTime::from_timestamp(
                (at + TimeDelta::minutes(config.code_minutes))
                    .and_utc()
                    .timestamp(),
                0,
            )
            .or_internal("code expiry")?
            .naive_utc(),
            used_at: None,
            used_by: None,
            outcome: None,
        };
        diesel::insert_into(credit_rights_codes::table)
            .values(&row)
            .execute(c)?;
        issued(c, ctx, &row)
    })
}

/// The signed-in user's newest code that is neither used nor expired, if any.
pub fn current_code(ctx: &Context, actor: &Actor) -> Result<Option<IssuedCode>, ServiceError> {
    require_role(actor, &[Role::Enterprise, Role::Person])?;
    let mut conn = ctx.conn()?;
    let row: Option<RightsCodeRow> = credit_rights_codes::table
        .filter(credit_rights_codes::issued_to.eq(&actor.user_id))
        .filter(credit_rights_codes::used_at.is_null())
        .filter(credit_rights_codes::expires_at.gt(ctx.now()))
        .order((
            credit_rights_codes::issued_at.desc(),
            credit_rights_codes::id.desc(),
        ))
        .select(RightsCodeRow::as_select())
        .first(&mut conn)
        .optional()?;
    row.map(|r| issued(&mut conn, ctx, &r)).transpose()
}

/// What a provider's system posts.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// The code as scanned or typed (`BHQ1…`; spaces and hyphens between groups are
    /// ignored, either case).
    pub code: String,
    /// The matter's code (`GET /api/v1/matters`), e.g. `hotel_room`.
    #[schema(example = "hotel_room")]
    pub matter: String,
    /// The deposit the provider would otherwise take, in yuan.
    #[schema(example = "500.00")]
    pub amount: String,
    /// The provider's own reference (admission, booking or loan number).
    #[serde(default)]
    pub provider_ref: Option<String>,
}

/// The answer to a check: granted with the waiver it recorded, or refused and why.
#[derive(Debug, Clone)]
pub enum CheckOutcome {
    Granted(Box<WaiverRow>),
    Refused(RefusalReason),
}

/// A check's input, checked before any database work.
struct CheckedCheck {
    matter: String,
    amount: Amount,
    provider_ref: Option<String>,
}

fn check_input(r: &CheckRequest) -> Result<CheckedCheck, ServiceError> {
    let matter = r.matter.trim().to_owned();
    if !crate::domain::catalogue::is_code(&matter) {
        return Err(ServiceError::invalid(
            "matter",
            "unknown matter; GET /api/v1/matters lists them",
        ));
    }
    let amount = Amount::parse(r.amount.trim()).map_err(|e| ServiceError::invalid("amount", e))?;
    if amount == Amount::ZERO {
        return Err(ServiceError::invalid("amount", "must be more than 0.00"));
    }
    let provider_ref = match r.provider_ref.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(t) => Some(
            text::clean(t, TextRules::single_line(PROVIDER_REF_MAX_CHARS))
                .map_err(|e| ServiceError::invalid("provider_ref", e))?,
        ),
    };
    Ok(CheckedCheck {
        matter,
        amount,
        provider_ref,
    })
}

/// A matter's path, required level, subject kind and deposit ceiling, as stored.
type MatterColumns = (String, Option<String>, Option<String>, Option<i64>);

fn matter_terms(c: &mut DbConnection, code: &str) -> Result<MatterTerms, ServiceError> {
    let row: Option<MatterColumns> = matters::table
        .find(code)
        .select((
            matters::path,
            matters::required_level,
            matters::subject_kind,
            matters::deposit_ceiling_fen,
        ))
        .first(c)
        .optional()?;
    let (path, level, kind, ceiling) = row.ok_or_else(|| {
        ServiceError::invalid("matter", "unknown matter; GET /api/v1/matters lists them")
    })?;
    Ok(MatterTerms {
        credit_substituted: path == CREDIT_SUBSTITUTION,
        required_level: level
            .map(|l| l.parse::<CreditLevel>())
            .transpose()
            .or_internal("stored required level")?,
        subject_kind: kind
            .map(|k| k.parse::<SubjectKind>())
            .transpose()
            .or_internal("stored subject kind")?,
        ceiling: ceiling.map(Amount::from_fen),
    })
}

/// Locks a subject's line for this transaction (bumping its version) and reads what a
/// decision needs under that lock.
fn lock_holder(
    c: &mut DbConnection,
    subject_id: &str,
    matter: &str,
) -> Result<Holder, ServiceError> {
    ensure_line(c, subject_id)?;
    diesel::update(credit_lines::table.find(subject_id))
        .set(credit_lines::version.eq(credit_lines::version + 1))
        .execute(c)?;
    let (in_use, defaults_open): (i64, i32) = credit_lines::table
        .find(subject_id)
        .select((credit_lines::in_use_fen, credit_lines::defaults_open))
        .first(c)?;
    let matter_in_use: Option<i64> = credit_line_matters::table
        .find((subject_id, matter))
        .select(credit_line_matters::in_use_fen)
        .first(c)
        .optional()?;
    let subject: CreditSubjectRow = credit_subjects::table
        .find(subject_id)
        .select(CreditSubjectRow::as_select())
        .first(c)?;
    Ok(Holder {
        kind: subject.kind,
        level: subject.level,
        on_dishonesty_list: subject.serious_dishonesty_count > 0,
        defaults_open,
        line_in_use: Amount::from_fen(in_use),
        matter_in_use: Amount::from_fen(matter_in_use.unwrap_or(0)),
    })
}

/// Adds `delta` fen (negative to release) to a subject's line, in total and for the
/// matter, in the caller's transaction (the database refuses a counter below zero).
fn move_line(
    c: &mut DbConnection,
    subject_id: &str,
    matter: &str,
    delta: i64,
) -> Result<(), ServiceError> {
    diesel::update(credit_lines::table.find(subject_id))
        .set(credit_lines::in_use_fen.eq(credit_lines::in_use_fen + delta))
        .execute(c)?;
    let moved = diesel::update(credit_line_matters::table.find((subject_id, matter)))
        .set(credit_line_matters::in_use_fen.eq(credit_line_matters::in_use_fen + delta))
        .execute(c)?;
    if moved == 0 {
        diesel::insert_into(credit_line_matters::table)
            .values((
                credit_line_matters::subject_id.eq(subject_id),
                credit_line_matters::matter.eq(matter),
                credit_line_matters::in_use_fen.eq(delta),
            ))
            .execute(c)?;
    }
    Ok(())
}

/// A provider checks a code for a matter and an amount. Refusals before the code is
/// used (not a code, forged or altered, expired, another provider's, used already, a
/// matter this provider does not collect) leave it as it was; any other answer uses it,
/// so a code answers from its subject's standing once. A grant records a waiver that
/// holds the amount of the subject's line.
pub fn check(ctx: &Context, actor: &Actor, r: &CheckRequest) -> Result<CheckOutcome, ServiceError> {
    require_role(actor, &[Role::Provider])?;
    let config = lines()?;
    let input = check_input(r)?;
    let mut conn = ctx.conn()?;
    ctx.write_tx(&mut conn, |c| {
        let at = ctx.now();
        let terms = matter_terms(c, &input.matter)?;
        let opened = match rights_code::open(&ctx.keys.rights_code, &r.code, at.and_utc()) {
            Ok(o) => o,
            Err(e) => {
                return Ok(CheckOutcome::Refused(match e {
                    RightsCodeError::Malformed => RefusalReason::Malformed,
                    RightsCodeError::Forged => RefusalReason::ForgedOrAltered,
                    RightsCodeError::Expired => RefusalReason::Expired,
                }))
            }
        };
        let code: Option<RightsCodeRow> = credit_rights_codes::table
            .find(hex::encode(opened.id))
            .select(RightsCodeRow::as_select())
            .first(c)
            .optional()?;
        // A sealed id the exchange never stored: only someone with the key made it.
        let Some(code) = code else {
            return Ok(CheckOutcome::Refused(RefusalReason::ForgedOrAltered));
        };
        if code
            .provider_id
            .as_ref()
            .is_some_and(|p| *p != actor.organization_id)
        {
            return Ok(CheckOutcome::Refused(RefusalReason::NotForThisProvider));
        }
        if code.used_at.is_some() {
            return Ok(CheckOutcome::Refused(RefusalReason::AlreadyUsed));
        }
        let kind: Option<ProviderKind> = organizations::table
            .find(&actor.organization_id)
            .select(organizations::provider_kind)
            .first(c)?;
        if !kind.is_some_and(|k| provider_collects(k, &input.matter)) {
            return Ok(CheckOutcome::Refused(RefusalReason::NotServedByProvider));
        }
        let holder = lock_holder(c, &code.subject_id, &input.matter)?;
        let decision = decide(config, &terms, &holder, input.amount);
        let outcome = match decision {
            Ok(()) => "granted",
            Err(refusal) => refusal.as_str(),
        };
        let used = diesel::update(
            credit_rights_codes::table
                .filter(credit_rights_codes::id.eq(&code.id))
                .filter(credit_rights_codes::used_at.is_null()),
        )
        .set((
            credit_rights_codes::used_at.eq(at),
            credit_rights_codes::used_by.eq(&actor.organization_id),
            credit_rights_codes::outcome.eq(outcome),
        ))
        .execute(c)?;
        if used != 1 {
            return Ok(CheckOutcome::Refused(RefusalReason::AlreadyUsed));
        }
        if let Err(refusal) = decision {
            return Ok(CheckOutcome::Refused(refusal));
        }
        move_line(c, &code.subject_id, &input.matter, input.amount.fen())?;
        let waiver = WaiverRow {
            id: new_id(),
            code_id: code.id.clone(),
            subject_id: code.subject_id.clone(),
            provider_id: actor.organization_id.clone(),
            checked_by: actor.user_id.clone(),
            matter: input.matter.clone(),
            amount_fen: input.amount.fen(),
            provider_ref: input.provider_ref.clone(),
            granted_at: at,
            state: WaiverState::Open,
            bill_fen: None,
            billed_at: None,
            due_at: None,
            settled_at: None,
            paid_late: false,
            record_id: None,
            version: 1,
        };
        diesel::insert_into(credit_waivers::table)
            .values(&waiver)
            .execute(c)?;
        Ok(CheckOutcome::Granted(Box::new(waiver)))
    })
}

/// The provider's own waiver, or 404 (another provider's looks the same as none).
fn own_waiver(
    c: &mut DbConnection,
    actor: &Actor,
    waiver_id: &str,
) -> Result<WaiverRow, ServiceError> {
    credit_waivers::table
        .find(waiver_id)
        .filter(credit_waivers::provider_id.eq(&actor.organization_id))
        .select(WaiverRow::as_select())
        .first(c)
        .optional()?
        .ok_or_else(|| ServiceError::NotFound("waiver".into()))
}

fn load_waiver(c: &mut DbConnection, id: &str) -> Result<WaiverRow, ServiceError> {
    Ok(credit_waivers::table
        .find(id)
        .select(WaiverRow::as_select())
        .first(c)?)
}

fn wrong_state(w: &WaiverRow, e: WaiverMoveError) -> ServiceError {
    ServiceError::InvalidTransition {
        message: e.to_string(),
        current: w.state.as_str(),
    }
}

/// The provider bills what the subject owes (a hospital at discharge, a hotel at
/// check-out): due after the repayment window, by the exchange's clock.
pub fn bill(
    ctx: &Context,
    actor: &Actor,
    waiver_id: &str,
    amount: &str,
) -> Result<WaiverRow, ServiceError> {
    require_role(actor, &[Role::Provider])?;
    let config = lines()?;
    let amount = Amount::parse(amount.trim()).map_err(|e| ServiceError::invalid("amount", e))?;
    let mut conn = ctx.conn()?;
    ctx.write_tx(&mut conn, |c| {
        let at = ctx.now();
        let w = own_waiver(c, actor, waiver_id)?;
        let moved = diesel::update(
            credit_waivers::table
                .filter(credit_waivers::id.eq(&w.id))
                .filter(credit_waivers::state.eq(WaiverState::Open)),
        )
        .set((
            credit_waivers::state.eq(WaiverState::Billed),
            credit_waivers::bill_fen.eq(amount.fen()),
            credit_waivers::billed_at.eq(at),
            credit_waivers::due_at.eq(at + TimeDelta::days(config.repayment_days)),
            credit_waivers::version.eq(credit_waivers::version + 1),
        ))
        .execute(c)?;
        if moved != 1 {
            return Err(wrong_state(
                &w,
                WaiverMoveError::Illegal {
                    from: w.state.as_str(),
                    to: "billed",
                },
            ));
        }
        load_waiver(c, &w.id)
    })
}

/// Whether a billed waiver is past its due time.
pub fn overdue(w: &WaiverRow, now: NaiveDateTime) -> bool {
    w.due_at.is_some_and(|due| now > due)
}

/// The provider reports a waiver paid (on time or late, as the exchange's clock says)
/// or defaulted (only once its bill is overdue). Paid frees the line; a bill paid in
/// its window is a positive record, a late one a negative record. A default is a
/// negative record that moves the level at once, keeps the line held and refuses every
/// later check until it is paid; paid after a default frees the line, and the record
/// stays until a credit repair or its expiry.
pub fn settle(
    ctx: &Context,
    actor: &Actor,
    waiver_id: &str,
    settlement: Settlement,
) -> Result<WaiverRow, ServiceError> {
    require_role(actor, &[Role::Provider])?;
    let mut conn = ctx.conn()?;
    ctx.write_tx(&mut conn, |c| {
        let at = ctx.now();
        let w = own_waiver(c, actor, waiver_id)?;
        settle_in_tx(c, ctx, &w, settlement, Some(&actor.user_id), at)
    })
}

fn settle_in_tx(
    c: &mut DbConnection,
    ctx: &Context,
    w: &WaiverRow,
    settlement: Settlement,
    by: Option<&str>,
    at: NaiveDateTime,
) -> Result<WaiverRow, ServiceError> {
    let config = lines()?;
    let late = overdue(w, at);
    let to = w
        .state
        .settle(settlement, late)
        .map_err(|e| wrong_state(w, e))?;
    let record = match (w.state, to) {
        (WaiverState::Billed, WaiverState::Paid) => Some(if late {
            (&config.paid_late_category, Polarity::Negative, "paid_late")
        } else {
            (
                &config.paid_on_time_category,
                Polarity::Positive,
                "paid_on_time",
            )
        }),
        (_, WaiverState::Defaulted) => {
            Some((&config.defaulted_category, Polarity::Negative, "defaulted"))
        }
        _ => None,
    };
    // The record first (a repayment keeps the default's): should the waiver have moved
    // meanwhile, the conditional update below finds nothing and the whole transaction,
    // record included, rolls back.
    let record_id = match record {
        Some((category, polarity, what)) => {
            Some(write_record(c, ctx, w, category, polarity, what, by, at)?)
        }
        None => w.record_id.clone(),
    };
    let moved = diesel::update(
        credit_waivers::table
            .filter(credit_waivers::id.eq(&w.id))
            .filter(credit_waivers::version.eq(w.version)),
    )
    .set((
        credit_waivers::state.eq(to),
        credit_waivers::settled_at.eq(at),
        credit_waivers::paid_late.eq(to == WaiverState::Paid && late),
        credit_waivers::record_id.eq(&record_id),
        credit_waivers::version.eq(credit_waivers::version + 1),
    ))
    .execute(c)?;
    if moved != 1 {
        return Err(ServiceError::InvalidTransition {
            message: "the waiver changed meanwhile; read it again".into(),
            current: w.state.as_str(),
        });
    }
    match to {
        WaiverState::Defaulted => {
            diesel::update(credit_lines::table.find(&w.subject_id))
                .set(credit_lines::defaults_open.eq(credit_lines::defaults_open + 1))
                .execute(c)?;
        }
        WaiverState::Repaid => {
            diesel::update(credit_lines::table.find(&w.subject_id))
                .set(credit_lines::defaults_open.eq(credit_lines::defaults_open - 1))
                .execute(c)?;
            move_line(c, &w.subject_id, &w.matter, -w.amount_fen)?;
        }
        WaiverState::Paid => move_line(c, &w.subject_id, &w.matter, -w.amount_fen)?,
        WaiverState::Open | WaiverState::Billed => {}
    }
    load_waiver(c, &w.id)
}

/// Writes the record a settlement makes, from the provider as the source department,
/// referenced by the waiver so it is never written twice.
#[allow(clippy::too_many_arguments)]
fn write_record(
    c: &mut DbConnection,
    ctx: &Context,
    w: &WaiverRow,
    category: &str,
    polarity: Polarity,
    what: &str,
    by: Option<&str>,
    at: NaiveDateTime,
) -> Result<String, ServiceError> {
    let subject: CreditSubjectRow = credit_subjects::table
        .find(&w.subject_id)
        .select(CreditSubjectRow::as_select())
        .first(c)?;
    let provider: String = organizations::table
        .find(&w.provider_id)
        .select(organizations::name)
        .first(c)?;
    let record = CheckedRecord {
        subject: SubjectRef {
            kind: subject.kind,
            key: subject.subject_key,
            masked: subject.masked_id,
            name: subject.name,
        },
        category: category.to_owned(),
        polarity: Some(polarity),
        points: None,
        occurred_at: at,
        expires_at: None,
        department: provider,
        reference: format!("waiver:{}:{what}", w.id),
        note: Some(format!(
            "{} {}",
            w.matter,
            Amount::from_fen(w.bill_fen.unwrap_or(w.amount_fen)).grouped()
        )),
    };
    Ok(credit::record_in_tx(c, ctx, &record, by, at)?.record.id)
}

/// The default worker: bills unpaid past their due time and the configured grace become
/// defaults by the exchange's clock, each in its own transaction, whether or not the
/// provider reported them. Safe on several instances: the move is conditional on the
/// waiver's version. Answers how many it defaulted.
pub fn default_overdue(ctx: &Context) -> Result<usize, ServiceError> {
    let config = lines()?;
    let mut conn = ctx.conn()?;
    let cutoff = ctx.now() - TimeDelta::days(config.default_after_days);
    let due: Vec<WaiverRow> = credit_waivers::table
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(BILLED))
        .filter(credit_waivers::due_at.lt(cutoff))
        .order((credit_waivers::due_at, credit_waivers::id))
        .limit(DEFAULT_BATCH)
        .select(WaiverRow::as_select())
        .load(&mut conn)?;
    let mut defaulted = 0;
    for w in due {
        let done = ctx.write_tx(&mut conn, |c| {
            let at = ctx.now();
            settle_in_tx(c, ctx, &w, Settlement::Defaulted, None, at)
        });
        match done {
            Ok(_) => defaulted += 1,
            // Settled by its provider (or another instance) meanwhile.
            Err(ServiceError::InvalidTransition { .. } | ServiceError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(defaulted)
}

/// A waiver as a list shows it, with the matter's and the provider's names.
#[derive(Debug, Clone)]
pub struct WaiverView {
    pub waiver: WaiverRow,
    pub matter_name_zh: String,
    pub matter_name_en: String,
    pub provider_name: String,
    pub overdue: bool,
}

/// The rows with their matters' and providers' names (two queries for the page, not two
/// per row).
fn views(
    c: &mut DbConnection,
    rows: Vec<WaiverRow>,
    now: NaiveDateTime,
) -> Result<Vec<WaiverView>, ServiceError> {
    use crate::db::any_of::any_of;
    use std::collections::HashMap;
    let matter_codes: std::collections::BTreeSet<String> =
        rows.iter().map(|w| w.matter.clone()).collect();
    let provider_ids: std::collections::BTreeSet<String> =
        rows.iter().map(|w| w.provider_id.clone()).collect();
    let names: HashMap<String, (String, String)> = matters::table
        .filter(any_of(matters::code, matter_codes))
        .select((matters::code, matters::name_zh, matters::name_en))
        .load::<(String, String, String)>(c)?
        .into_iter()
        .map(|(code, zh, en)| (code, (zh, en)))
        .collect();
    let providers: HashMap<String, String> = organizations::table
        .filter(any_of(organizations::id, provider_ids))
        .select((organizations::id, organizations::name))
        .load::<(String, String)>(c)?
        .into_iter()
        .collect();
    rows.into_iter()
        .map(|w| {
            let (zh, en) = names
                .get(&w.matter)
                .cloned()
                .or_internal("waiver's matter")?;
            let provider_name = providers
                .get(&w.provider_id)
                .cloned()
                .or_internal("waiver's provider")?;
            Ok(WaiverView {
                overdue: w.state == WaiverState::Billed && overdue(&w, now),
                waiver: w,
                matter_name_zh: zh,
                matter_name_en: en,
                provider_name,
            })
        })
        .collect()
}

/// One page of the signed-in provider's waivers, newest first, and how many it has.
pub fn provider_waivers(
    ctx: &Context,
    actor: &Actor,
    window: Window,
) -> Result<Listed<WaiverView>, ServiceError> {
    require_role(actor, &[Role::Provider])?;
    let mut conn = ctx.conn()?;
    let total: i64 = credit_waivers::table
        .filter(credit_waivers::provider_id.eq(&actor.organization_id))
        .count()
        .get_result(&mut conn)?;
    let rows: Vec<WaiverRow> = credit_waivers::table
        .filter(credit_waivers::provider_id.eq(&actor.organization_id))
        .order((credit_waivers::granted_at.desc(), credit_waivers::id.desc()))
        .offset(window.offset)
        .limit(window.limit)
        .select(WaiverRow::as_select())
        .load(&mut conn)?;
    Ok(Listed {
        rows: views(&mut conn, rows, ctx.now())?,
        total,
    })
}

/// One of the signed-in provider's waivers.
pub fn provider_waiver(
    ctx: &Context,
    actor: &Actor,
    waiver_id: &str,
) -> Result<WaiverView, ServiceError> {
    require_role(actor, &[Role::Provider])?;
    let mut conn = ctx.conn()?;
    let w = own_waiver(&mut conn, actor, waiver_id)?;
    let mut views = views(&mut conn, vec![w], ctx.now())?;
    views
        .pop()
        .ok_or_else(|| ServiceError::NotFound("waiver".into()))
}

/// The signed-in subject's line: its total by level, what its waivers hold, what is
/// left, and its waivers newest first.
#[derive(Debug, Clone)]
pub struct MyLine {
    pub level: CreditLevel,
    pub total: Amount,
    pub in_use: Amount,
    pub defaults_open: i32,
    pub waivers: Vec<WaiverView>,
}

impl MyLine {
    pub fn left(&self) -> Amount {
        Amount::from_fen((self.total.fen() - self.in_use.fen()).max(0))
    }
}

pub fn my_line(ctx: &Context, actor: &Actor) -> Result<MyLine, ServiceError> {
    require_role(actor, &[Role::Enterprise, Role::Person])?;
    let config = lines()?;
    let levels = credit::levels()?;
    let mut conn = ctx.conn()?;
    let c = &mut *conn;
    let subject = credit::my_subject(c, actor)?;
    let level = subject.as_ref().map_or_else(
        || levels.standing(&Default::default(), 0).level,
        |s| s.level,
    );
    let (in_use, defaults_open, rows) = match &subject {
        None => (0, 0, Vec::new()),
        Some(s) => {
            let line: Option<(i64, i32)> = credit_lines::table
                .find(&s.id)
                .select((credit_lines::in_use_fen, credit_lines::defaults_open))
                .first(c)
                .optional()?;
            let rows: Vec<WaiverRow> = credit_waivers::table
                .filter(credit_waivers::subject_id.eq(&s.id))
                .order((credit_waivers::granted_at.desc(), credit_waivers::id.desc()))
                .limit(MY_WAIVERS_MAX)
                .select(WaiverRow::as_select())
                .load(c)?;
            let (u, d) = line.unwrap_or((0, 0));
            (u, d, rows)
        }
    };
    Ok(MyLine {
        level,
        total: config.line(level),
        in_use: Amount::from_fen(in_use),
        defaults_open,
        waivers: views(c, rows, ctx.now())?,
    })
}

/// The providers a subject may scope a code to: id and name, by name.
pub fn providers(ctx: &Context) -> Result<Vec<(String, String)>, ServiceError> {
    let mut conn = ctx.conn()?;
    Ok(organizations::table
        .filter(organizations::kind.eq(OrgKind::Provider))
        .order(organizations::name)
        .select((organizations::id, organizations::name))
        .load(&mut conn)?)
}

#[cfg(test)]
mod tests {
    use diesel::sql_types::Text;

    use super::*;

    #[derive(QueryableByName)]
    struct PlanStep {
        #[diesel(sql_type = Text)]
        detail: String,
    }

    fn plan(conn: &mut DbConnection, sql: &str) -> String {
        // Unbound parameters are NULL; EXPLAIN runs nothing.
        diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
            .load::<PlanStep>(conn)
            .expect("a plan")
            .into_iter()
            .map(|s| s.detail)
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// SQLite makes each statement's plan once (the build's QPSG, `.cargo/config.toml`):
    /// a partial index is read only when the query states its condition in the SQL text,
    /// which the default and dispute workers' queues do.
    #[test]
    fn sqlite_plans_do_not_depend_on_bound_values_and_the_queues_read_their_partial_indexes() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let url = format!("sqlite://{}", dir.path().join("plans.db").display());
        let pool = crate::db::connect(&url, 1).expect("a migrated database");
        let mut conn = pool.get().expect("a connection");

        #[derive(QueryableByName)]
        struct Options {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let qpsg = diesel::sql_query(
            "SELECT count(*) AS n FROM pragma_compile_options WHERE compile_options = 'ENABLE_QPSG'",
        )
        .get_result::<Options>(&mut conn)
        .expect("the compile options");
        assert_eq!(
            qpsg.n, 1,
            "the bundled SQLite is built with SQLITE_ENABLE_QPSG"
        );

        let due = plan(
            &mut conn,
            &format!(
                "SELECT id FROM credit_waivers WHERE {BILLED} AND due_at < ? \
                 ORDER BY due_at, id LIMIT ?"
            ),
        );
        assert!(due.contains("credit_waivers_due"), "{due}");
        let open = plan(
            &mut conn,
            &format!(
                "SELECT id FROM credit_disputes WHERE {} ORDER BY decide_by, id LIMIT ?",
                super::super::credit_disputes::FILED
            ),
        );
        assert!(open.contains("credit_disputes_open"), "{open}");
        // Bound, the same condition cannot choose the index: why the queues state it.
        let bound = plan(
            &mut conn,
            "SELECT id FROM credit_waivers WHERE state = ? AND due_at < ? \
             ORDER BY due_at, id LIMIT ?",
        );
        assert!(!bound.contains("credit_waivers_due"), "{bound}");
    }
}
