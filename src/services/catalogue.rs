//! The deposit-free city's configured lists: the matters catalogue (管理清单) and the
//! record categories (信用记录类别). Anyone may read them; the credit office edits them.
//! Each edit is a new version kept in the history and audited in the transaction that
//! makes it. Both lists are seeded from the data files in the repository at startup.
//!
//! The credit office (市信用办) is, for now, the operator: its staff edit the lists.
//! A separate organization kind can take the role over without changing these rules
//! ([`require_credit_office`] is the one place that says who).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::{new_id, require_role, Actor, Context, OrInternal, ServiceError};
use crate::db::audit::{self, AuditEvent};
use crate::db::models::{MatterRow, MatterVersionRow, RecordCategoryRow, RecordCategoryVersionRow};
use crate::db::schema::{matter_versions, matters, record_categories, record_category_versions};
use crate::db::{self, DbConnection};
use crate::domain::catalogue::{
    self, CategoryFields, FieldProblem, Matter, MatterFields, RecordCategory, WriteOffState,
};
use crate::domain::money::Amount;
use crate::domain::party::Role;
use crate::domain::time::{china_date, LATEST_DATE};

/// The key instances starting together take so one of them seeds the lists at a time.
const SEED_LOCK_KEY: i64 = 0x6261_6f68_616e_0037;

/// Refuses unless the actor is the credit office (for now: the operator's staff).
pub fn require_credit_office(actor: &Actor) -> Result<(), ServiceError> {
    require_role(actor, &[Role::Operator])
}

/// A problem of the domain's checks as the service reports it.
fn invalid(p: FieldProblem) -> ServiceError {
    ServiceError::invalid(p.field, p.message)
}

/// Who made a version: the data file, or the credit office.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VersionSource {
    /// Seeded from the repository's data file.
    DataFile,
    /// An edit by the credit office.
    CreditOffice,
}

impl VersionSource {
    fn of(changed_by: &Option<String>) -> VersionSource {
        match changed_by {
            None => VersionSource::DataFile,
            Some(_) => VersionSource::CreditOffice,
        }
    }
}

/// A matter as it stands.
#[derive(Debug, Clone)]
pub struct MatterEntry {
    pub code: String,
    pub matter: Matter,
    pub version: i32,
    pub updated_at: NaiveDateTime,
}

/// One version of an entry's history: its whole content then.
#[derive(Debug, Clone)]
pub struct Version<F> {
    pub version: i32,
    pub content: F,
    pub changed_at: NaiveDateTime,
    pub source: VersionSource,
}

/// A record category as it stands.
#[derive(Debug, Clone)]
pub struct CategoryEntry {
    pub code: String,
    pub category: RecordCategory,
    pub version: i32,
    pub updated_at: NaiveDateTime,
}

fn matter_fields_of(row: &MatterRow) -> MatterFields {
    MatterFields {
        name_zh: row.name_zh.clone(),
        name_en: row.name_en.clone(),
        legal_basis: row.legal_basis.clone(),
        scenario_zh: row.scenario_zh.clone(),
        scenario_en: row.scenario_en.clone(),
        collecting_body_zh: row.collecting_body_zh.clone(),
        collecting_body_en: row.collecting_body_en.clone(),
        typical_amount: Amount::from_fen(row.typical_amount_fen).to_string(),
        path: row.path.clone(),
        required_level: row.required_level.clone(),
        subject: row.subject_kind.clone(),
        deposit_ceiling: row
            .deposit_ceiling_fen
            .map(|f| Amount::from_fen(f).to_string()),
        commitment_text: row.commitment_text.clone(),
        write_off_state: row.write_off_state.clone(),
        write_off_due_on: row.write_off_due_on.map(|d| d.to_string()),
        write_off_done_on: row.write_off_done_on.map(|d| d.to_string()),
        write_off_evidence: row.write_off_evidence.clone(),
    }
}

fn matter_entry(row: MatterRow) -> Result<MatterEntry, ServiceError> {
    // A stored matter passed the same checks when it was written; the done date was
    // not after that day, so any later day bounds it.
    let matter = Matter::check(&matter_fields_of(&row), LATEST_DATE).map_err(|problems| {
        ServiceError::Internal(anyhow::anyhow!(
            "stored matter {} fails its checks: {problems:?}",
            row.code
        ))
    })?;
    Ok(MatterEntry {
        code: row.code,
        matter,
        version: row.version,
        updated_at: row.updated_at,
    })
}

fn matter_row(
    code: &str,
    position: i32,
    m: &Matter,
    version: i32,
    at: NaiveDateTime,
    by: Option<&str>,
) -> MatterRow {
    let credit = m.credit.as_ref();
    MatterRow {
        code: code.to_owned(),
        position,
        name_zh: m.name_zh.clone(),
        name_en: m.name_en.clone(),
        legal_basis: m.legal_basis.clone(),
        scenario_zh: m.scenario_zh.clone(),
        scenario_en: m.scenario_en.clone(),
        collecting_body_zh: m.collecting_body_zh.clone(),
        collecting_body_en: m.collecting_body_en.clone(),
        typical_amount_fen: m.typical_amount.fen(),
        path: m.path.as_str().to_owned(),
        required_level: credit.map(|c| c.required_level.as_str().to_owned()),
        subject_kind: credit.map(|c| c.subject.as_str().to_owned()),
        deposit_ceiling_fen: credit.and_then(|c| c.deposit_ceiling).map(Amount::fen),
        commitment_text: credit.and_then(|c| c.commitment_text.clone()),
        write_off_state: m.write_off.state.as_str().to_owned(),
        write_off_due_on: m.write_off.due_on,
        write_off_done_on: m.write_off.done_on,
        write_off_evidence: m.write_off.evidence.clone(),
        version,
        updated_at: at,
        updated_by: by.map(str::to_owned),
    }
}

fn content_json<T: serde::Serialize>(content: &T) -> Result<String, ServiceError> {
    serde_json::to_string(content).or_internal("writing a version's content")
}

fn version_of<F: serde::de::DeserializeOwned>(
    version: i32,
    content: &str,
    changed_at: NaiveDateTime,
    changed_by: &Option<String>,
) -> Result<Version<F>, ServiceError> {
    Ok(Version {
        version,
        content: serde_json::from_str(content).or_internal("reading a version's content")?,
        changed_at,
        source: VersionSource::of(changed_by),
    })
}

/// Every matter, in the catalogue's order (public).
pub fn list_matters(ctx: &Context) -> Result<Vec<MatterEntry>, ServiceError> {
    let mut conn = ctx.conn()?;
    matters::table
        .order((matters::position.asc(), matters::code.asc()))
        .select(MatterRow::as_select())
        .load(&mut conn)?
        .into_iter()
        .map(matter_entry)
        .collect()
}

/// One matter and its history, newest version first (public).
pub fn matter(
    ctx: &Context,
    code: &str,
) -> Result<(MatterEntry, Vec<Version<MatterFields>>), ServiceError> {
    let mut conn = ctx.conn()?;
    let row = matters::table
        .find(code)
        .select(MatterRow::as_select())
        .first(&mut conn)
        .optional()?
        .ok_or_else(|| ServiceError::NotFound("matter".into()))?;
    let history = matter_versions::table
        .filter(matter_versions::code.eq(code))
        .order(matter_versions::version.desc())
        .limit(500)
        .select(MatterVersionRow::as_select())
        .load(&mut conn)?
        .iter()
        .map(|v| version_of(v.version, &v.content, v.changed_at, &v.changed_by))
        .collect::<Result<_, _>>()?;
    Ok((matter_entry(row)?, history))
}

/// Checks a matter as typed, every problem named by its field (for forms).
pub fn check_matter(ctx: &Context, fields: &MatterFields) -> Result<Matter, Vec<ServiceError>> {
    Matter::check(fields, china_date(ctx.now()))
        .map_err(|problems| problems.into_iter().map(invalid).collect())
}

/// The credit office changes a matter: its next version, kept in the history and
/// audited in the same transaction. The write-off moves one step forward or stays; an
/// edit that changes nothing adds no version.
pub fn update_matter(
    ctx: &Context,
    actor: &Actor,
    code: &str,
    fields: MatterFields,
) -> Result<MatterEntry, ServiceError> {
    require_credit_office(actor)?;
    let matter = check_matter(ctx, &fields).map_err(|mut errors| errors.remove(0))?;
    let at = ctx.now();
    let mut conn = ctx.conn()?;
    ctx.write_tx(&mut conn, |c| {
        let current = matters::table
            .find(code)
            .select(MatterRow::as_select())
            .first(c)
            .optional()?
            .ok_or_else(|| ServiceError::NotFound("matter".into()))?;
        let before = matter_entry(current.clone())?;
        if before.matter == matter {
            return Ok(before);
        }
        let from = before.matter.write_off.state;
        let to = matter.write_off.state;
        if !from.may_become(to) {
            return Err(ServiceError::invalid(
                "write_off_state",
                format!(
                    "a write-off goes planned → in_progress → done, one step at a time and \
                     never back; it cannot go from {from} to {to}"
                ),
            ));
        }
        let version = current.version + 1;
        let row = matter_row(
            code,
            current.position,
            &matter,
            version,
            at,
            Some(&actor.user_id),
        );
        // Conditional on the version read: a concurrent edit makes this one a conflict.
        let changed = diesel::update(
            matters::table
                .filter(matters::code.eq(code))
                .filter(matters::version.eq(current.version)),
        )
        .set(&row)
        .execute(c)?;
        if changed != 1 {
            return Err(ServiceError::Conflict(
                "the matter was changed meanwhile; reload and try again".into(),
            ));
        }
        let content = matter.fields();
        diesel::insert_into(matter_versions::table)
            .values(&MatterVersionRow {
                id: new_id(),
                code: code.to_owned(),
                version,
                content: content_json(&content)?,
                changed_at: at,
                changed_by: Some(actor.user_id.clone()),
            })
            .execute(c)?;
        audit::append(
            c,
            &AuditEvent {
                actor_user_id: Some(&actor.user_id),
                actor_organization_id: Some(&actor.organization_id),
                action: "update_matter",
                entity_kind: "matter",
                entity_id: code,
                from_state: Some(from.as_str()),
                to_state: Some(to.as_str()),
                details: serde_json::json!({ "version": version, "content": content }),
            },
            at,
        )?;
        matter_entry(row)
    })
}

fn category_fields_of(row: &RecordCategoryRow) -> CategoryFields {
    CategoryFields {
        name_zh: row.name_zh.clone(),
        name_en: row.name_en.clone(),
        dimension: row.dimension.clone(),
        polarity: row.polarity.clone(),
        points: row.points.into(),
        validity_days: row.validity_days.into(),
    }
}

fn category_entry(row: RecordCategoryRow) -> Result<CategoryEntry, ServiceError> {
    let category = RecordCategory::check(&category_fields_of(&row)).map_err(|problems| {
        ServiceError::Internal(anyhow::anyhow!(
            "stored record category {} fails its checks: {problems:?}",
            row.code
        ))
    })?;
    Ok(CategoryEntry {
        code: row.code,
        category,
        version: row.version,
        updated_at: row.updated_at,
    })
}

fn category_row(
    code: &str,
    position: i32,
    k: &RecordCategory,
    version: i32,
    at: NaiveDateTime,
    by: Option<&str>,
) -> RecordCategoryRow {
    RecordCategoryRow {
        code: code.to_owned(),
        position,
        name_zh: k.name_zh.clone(),
        name_en: k.name_en.clone(),
        dimension: k.dimension.as_str().to_owned(),
        polarity: k.polarity.as_str().to_owned(),
        points: k.points,
        validity_days: k.validity_days,
        version,
        updated_at: at,
        updated_by: by.map(str::to_owned),
    }
}

/// Every record category, in the list's order (public: departments read what they may
/// send).
pub fn list_categories(ctx: &Context) -> Result<Vec<CategoryEntry>, ServiceError> {
    let mut conn = ctx.conn()?;
    record_categories::table
        .order((
            record_categories::position.asc(),
            record_categories::code.asc(),
        ))
        .select(RecordCategoryRow::as_select())
        .load(&mut conn)?
        .into_iter()
        .map(category_entry)
        .collect()
}

/// One record category's history, newest version first (public); unknown: not found.
pub fn category_history(
    ctx: &Context,
    code: &str,
) -> Result<Vec<Version<CategoryFields>>, ServiceError> {
    let mut conn = ctx.conn()?;
    let history: Vec<Version<CategoryFields>> = record_category_versions::table
        .filter(record_category_versions::code.eq(code))
        .order(record_category_versions::version.desc())
        .limit(500)
        .select(RecordCategoryVersionRow::as_select())
        .load(&mut conn)?
        .iter()
        .map(|v| version_of(v.version, &v.content, v.changed_at, &v.changed_by))
        .collect::<Result<_, _>>()?;
    if history.is_empty() {
        return Err(ServiceError::NotFound("record category".into()));
    }
    Ok(history)
}

/// The credit office changes a record category: its next version, audited. Records
/// already written keep their own polarity and points.
pub fn update_category(
    ctx: &Context,
    actor: &Actor,
    code: &str,
    fields: CategoryFields,
) -> Result<CategoryEntry, ServiceError> {
    require_credit_office(actor)?;
    let category = RecordCategory::check(&fields).map_err(|mut p| invalid(p.remove(0)))?;
    let at = ctx.now();
    let mut conn = ctx.conn()?;
    ctx.write_tx(&mut conn, |c| {
        let current = record_categories::table
            .find(code)
            .select(RecordCategoryRow::as_select())
            .first(c)
            .optional()?
            .ok_or_else(|| ServiceError::NotFound("record category".into()))?;
        let before = category_entry(current.clone())?;
        if before.category == category {
            return Ok(before);
        }
        let version = current.version + 1;
        let row = category_row(
            code,
            current.position,
            &category,
            version,
            at,
            Some(&actor.user_id),
        );
        let changed = diesel::update(
            record_categories::table
                .filter(record_categories::code.eq(code))
                .filter(record_categories::version.eq(current.version)),
        )
        .set(&row)
        .execute(c)?;
        if changed != 1 {
            return Err(ServiceError::Conflict(
                "the record category was changed meanwhile; reload and try again".into(),
            ));
        }
        let content = category.fields();
        diesel::insert_into(record_category_versions::table)
            .values(&RecordCategoryVersionRow {
                id: new_id(),
                code: code.to_owned(),
                version,
                content: content_json(&content)?,
                changed_at: at,
                changed_by: Some(actor.user_id.clone()),
            })
            .execute(c)?;
        audit::append(
            c,
            &AuditEvent {
                actor_user_id: Some(&actor.user_id),
                actor_organization_id: Some(&actor.organization_id),
                action: "update_record_category",
                entity_kind: "record_category",
                entity_id: code,
                details: serde_json::json!({ "version": version, "content": content }),
                ..Default::default()
            },
            at,
        )?;
        category_entry(row)
    })
}

/// How many entries a seeding added.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seeded {
    pub matters: usize,
    pub categories: usize,
}

/// Adds every matter and record category of the data files whose code is absent, each
/// as its version 1 (by the data file), audited; entries present are left as the credit
/// office made them. Safe to run from several instances at once: they take turns under
/// one lock, and the codes are primary keys whatever happens.
pub fn seed(ctx: &Context) -> Result<Seeded, ServiceError> {
    let at = ctx.now();
    let matters_seed = catalogue::seed_matters(catalogue::MATTERS_TOML, china_date(at))
        .or_internal("catalogue/matters.toml")?;
    let categories_seed = catalogue::seed_categories(catalogue::RECORD_CATEGORIES_TOML)
        .or_internal("catalogue/record_categories.toml")?;
    let mut conn = ctx.conn()?;
    // Usually every code is there: no write transaction then.
    let (m, k) = present_codes(&mut conn)?;
    if matters_seed.iter().all(|(code, _)| m.contains(code))
        && categories_seed.iter().all(|(code, _)| k.contains(code))
    {
        return Ok(Seeded::default());
    }
    ctx.write_tx(&mut conn, |c| {
        db::lock_for_transaction(c, SEED_LOCK_KEY)?;
        let (m, k) = present_codes(c)?;
        let mut seeded = Seeded::default();
        let mut added_matters = Vec::new();
        for (position, (code, matter)) in matters_seed.iter().enumerate() {
            if m.contains(code) {
                continue;
            }
            let position = i32::try_from(position).or_internal("matter position")?;
            diesel::insert_into(matters::table)
                .values(&matter_row(code, position, matter, 1, at, None))
                .execute(c)?;
            diesel::insert_into(matter_versions::table)
                .values(&MatterVersionRow {
                    id: new_id(),
                    code: code.clone(),
                    version: 1,
                    content: content_json(&matter.fields())?,
                    changed_at: at,
                    changed_by: None,
                })
                .execute(c)?;
            added_matters.push(code.as_str());
        }
        let mut added_categories = Vec::new();
        for (position, (code, category)) in categories_seed.iter().enumerate() {
            if k.contains(code) {
                continue;
            }
            let position = i32::try_from(position).or_internal("category position")?;
            diesel::insert_into(record_categories::table)
                .values(&category_row(code, position, category, 1, at, None))
                .execute(c)?;
            diesel::insert_into(record_category_versions::table)
                .values(&RecordCategoryVersionRow {
                    id: new_id(),
                    code: code.clone(),
                    version: 1,
                    content: content_json(&category.fields())?,
                    changed_at: at,
                    changed_by: None,
                })
                .execute(c)?;
            added_categories.push(code.as_str());
        }
        seeded.matters = added_matters.len();
        seeded.categories = added_categories.len();
        if !added_matters.is_empty() || !added_categories.is_empty() {
            audit::append(
                c,
                &AuditEvent {
                    action: "seed_catalogue",
                    entity_kind: "catalogue",
                    entity_id: "data_files",
                    details: serde_json::json!({
                        "matters": added_matters,
                        "record_categories": added_categories,
                    }),
                    ..Default::default()
                },
                at,
            )?;
        }
        Ok(seeded)
    })
}

type Codes = std::collections::HashSet<String>;

fn present_codes(c: &mut DbConnection) -> Result<(Codes, Codes), ServiceError> {
    let m: Vec<String> = matters::table.select(matters::code).load(c)?;
    let k: Vec<String> = record_categories::table
        .select(record_categories::code)
        .load(c)?;
    Ok((m.into_iter().collect(), k.into_iter().collect()))
}

/// Whether a write-off in state `from` may be set to `to` (for forms that offer only
/// the states reachable).
pub fn reachable_states(from: WriteOffState) -> Vec<WriteOffState> {
    WriteOffState::ALL
        .iter()
        .copied()
        .filter(|to| from.may_become(*to))
        .collect()
}
