//! Storing a batch of checked lines in the caller's transaction: duplicates dropped,
//! subjects found or made, the records inserted many rows a statement, and each
//! touched subject's scores and level brought up to date once.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDateTime;
use diesel::dsl::{sql, AsExprOf};
use diesel::expression::{SqlLiteral, UncheckedBind};
use diesel::prelude::*;
use diesel::sql_types::{Bool, Integer, Nullable, Text, Timestamp as SqlTimestamp};

use super::json_rows::{insert_sql, param, rows_of, Column, Timestamp};
use super::{Prepared, Reason, Rejection};
use crate::db::audit::{self, AuditEvent};
use crate::db::models::{CreditLevelChangeRow, CreditRecordRow, CreditSubjectRow};
use crate::db::schema::{credit_records, credit_subjects, organizations, record_categories, users};
use crate::db::DbConnection;
use crate::domain::catalogue::{CreditLevel, Dimension, SubjectKind};
use crate::domain::credit::{signed_points, DimensionScores, LevelsConfig};
use crate::domain::party::Role;
use crate::mail::templates::CreditCause;
use crate::services::credit::{level_change_event, SubjectRef};
use crate::services::{notify, Context, OrInternal, ServiceError};

/// Keys per `IN (...)` list.
const KEYS_PER_QUERY: usize = 1000;

/// Page cache of the import's SQLite connection, in KiB (`PRAGMA cache_size` takes a
/// negative number for KiB). SQLite's default of 2 MiB held a small part of the pages a
/// batch touches (the records' indexes by subject, the subjects, the level changes and
/// the audit log): most of an import's time went to reading pages back from the
/// operating system and to writing dirty pages out before the commit. A fixed size
/// keeps the importer's memory the same for any file and archive.
const SQLITE_IMPORT_CACHE_KIB: i64 = 64 * 1024;
/// WAL pages after which the import's commits checkpoint (SQLite's default is 1,000):
/// fewer checkpoints write a page that several batches change once.
const SQLITE_IMPORT_AUTOCHECKPOINT: i64 = 8192;
/// SQLite's defaults, restored when the import gives its pooled connection back.
const SQLITE_DEFAULT_CACHE_KIB: i64 = 2000;
const SQLITE_DEFAULT_AUTOCHECKPOINT: i64 = 1000;

/// Settings of the import's connection. SQLite: statement journals in memory (each
/// multi-row insert may need one, as a row may fail a constraint half way, and writing
/// them to a temporary file took a quarter of an import's time), a larger page cache
/// and rarer checkpoints. PostgreSQL: a plan for each execution of a statement
/// (`plan_cache_mode = force_custom_plan`). diesel prepares the import's statements
/// once per connection, and after five executions PostgreSQL keeps a generic plan made
/// while the archive's tables were still small: the subject lookup then read every
/// subject of a kind and compared its key with all 1,000 of the list (a third of a
/// second per lookup at 20,000 subjects, growing with the archive; 22 of the 39
/// seconds of 100,000 records). [`untune`] sets them back.
pub(super) fn tune(c: &mut DbConnection) -> Result<(), ServiceError> {
    use diesel::connection::SimpleConnection;
    match c {
        DbConnection::Sqlite(c) => c.batch_execute(&format!(
            "PRAGMA temp_store = MEMORY; PRAGMA cache_size = -{SQLITE_IMPORT_CACHE_KIB}; \
             PRAGMA wal_autocheckpoint = {SQLITE_IMPORT_AUTOCHECKPOINT};"
        ))?,
        DbConnection::Pg(c) => c.batch_execute("SET plan_cache_mode = force_custom_plan")?,
    }
    Ok(())
}

/// Gives the connection the settings [`tune`] changed back before it returns to the
/// pool (shrinking SQLite's cache frees its pages).
pub(super) fn untune(c: &mut DbConnection) -> Result<(), ServiceError> {
    use diesel::connection::SimpleConnection;
    match c {
        DbConnection::Sqlite(c) => c.batch_execute(&format!(
            "PRAGMA cache_size = -{SQLITE_DEFAULT_CACHE_KIB}; \
             PRAGMA wal_autocheckpoint = {SQLITE_DEFAULT_AUTOCHECKPOINT};"
        ))?,
        DbConnection::Pg(c) => c.batch_execute("RESET plan_cache_mode")?,
    }
    Ok(())
}

/// A time-ordered id (UUIDv7) for the rows the import makes: records, subjects and
/// level changes. Random ids (v4) put each new row's primary-key entry, and the entries
/// of the indexes that end in the id, on a random page of a b-tree that outgrows the
/// page cache, so nearly every insert read and later wrote back a page of its own;
/// ids that grow with time append at the right edge. Its first 48 bits are the time
/// of the insert, which `recorded_at` holds anyway.
fn ordered_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Brings PostgreSQL's statistics of the tables an import grows up to date (`ANALYZE`,
/// a sample of each table, outside the batches' transactions). The planner estimates
/// from the statistics of the table's last analysis: for an archive that was empty
/// when they were taken, it looked the subjects and references of a batch up by the
/// first column of their indexes alone and compared each row with the whole list
/// (`subject_key = ANY (...)` as a filter), and wrote the subjects by a scan of the
/// whole table, slower with each batch; with statistics it chooses by the tables' real
/// sizes. SQLite has no such statistics unless asked; its plans take the indexes as
/// they are.
pub(super) fn analyze(c: &mut DbConnection) -> Result<(), ServiceError> {
    use diesel::connection::SimpleConnection;
    if let DbConnection::Pg(c) = c {
        c.batch_execute("ANALYZE credit_records, credit_subjects, credit_level_changes")?;
    }
    Ok(())
}

/// What one batch stored.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    pub(super) stored: u64,
    pub(super) rejections: Vec<Rejection>,
    pub(super) subjects_created: u64,
    pub(super) level_changes: u64,
}

/// Runs the same code on the connection of either backend, for the statements the
/// multi-backend connection cannot express (multi-row inserts with `ON CONFLICT`,
/// `RETURNING`, row locks).
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            DbConnection::Sqlite($c) => $body,
            DbConnection::Pg($c) => $body,
        }
    };
}

pub(super) fn store_batch(
    c: &mut DbConnection,
    ctx: &Context,
    config: &LevelsConfig,
    lines: &[Prepared],
    recorded_by: Option<&str>,
    at: NaiveDateTime,
) -> Result<Outcome, ServiceError> {
    let mut outcome = Outcome::default();
    // A reference twice in the batch: the first one goes on.
    let mut first_at: HashMap<(&str, &str), u64> = HashMap::new();
    let mut keep: Vec<&Prepared> = Vec::with_capacity(lines.len());
    for p in lines {
        match first_at.entry((p.department.as_str(), p.reference.as_str())) {
            std::collections::hash_map::Entry::Occupied(first) => {
                outcome.rejections.push(Rejection::new(
                    p.line,
                    Reason::DuplicateInFile,
                    Some("source_ref"),
                    format!(
                        "this department's reference is also on line {}",
                        first.get()
                    ),
                ))
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(p.line);
                keep.push(p);
            }
        }
    }
    // References stored already, per department.
    let stored = stored_references(c, &keep)?;
    keep.retain(|p| {
        let known = stored.contains(&(p.department.clone(), p.reference.clone()));
        if known {
            outcome.rejections.push(already_stored(p.line));
        }
        !known
    });
    if keep.is_empty() {
        outcome.rejections.sort_by_key(|r| r.line);
        return Ok(outcome);
    }

    // Subjects: found, or made at the base standing.
    let (subjects, created) = subjects_of(c, config, &keep, at)?;
    outcome.subjects_created = created;

    // The records, the whole batch in one statement; a reference a concurrent writer
    // stored meanwhile is not inserted (and reported as stored already).
    let rows: Vec<CreditRecordRow> = keep
        .iter()
        .map(|p| {
            let in_force = p.expires_at > at;
            CreditRecordRow {
                id: ordered_id(),
                subject_id: subjects[&(p.subject.kind, p.subject.key.clone())]
                    .id
                    .clone(),
                category: p.category.clone(),
                dimension: p.dimension,
                polarity: p.polarity,
                points: p.points,
                serious_dishonesty: in_force && config.is_serious_dishonesty(&p.category),
                occurred_at: p.occurred_at,
                expires_at: Some(p.expires_at),
                source_department: p.department.clone(),
                source_ref: p.reference.clone(),
                note: p.note.clone(),
                cancels: None,
                cancel_reason: None,
                recorded_at: at,
                recorded_by: recorded_by.map(str::to_owned),
                in_force,
            }
        })
        .collect();
    let skipped = insert_records(c, &rows, recorded_by, at)?;
    // Per subject, the sum of its new records in force, and the last one (the cause of
    // a level change).
    let mut changes: BTreeMap<&str, (DimensionScores, i32, &CreditRecordRow)> = BTreeMap::new();
    for (p, row) in keep.iter().zip(&rows) {
        if skipped.contains(&row.id) {
            outcome.rejections.push(already_stored(p.line));
            continue;
        }
        outcome.stored += 1;
        if !row.in_force {
            continue;
        }
        let entry =
            changes
                .entry(row.subject_id.as_str())
                .or_insert((DimensionScores::default(), 0, row));
        entry
            .0
            .add(row.dimension, signed_points(row.polarity, row.points));
        entry.1 += i32::from(row.serious_dishonesty);
        entry.2 = row;
    }
    let by_id: HashMap<&str, &CreditSubjectRow> =
        subjects.values().map(|s| (s.id.as_str(), s)).collect();
    outcome.level_changes = apply_changes(c, ctx, config, &changes, &by_id, at)?;
    outcome.rejections.sort_by_key(|r| r.line);
    Ok(outcome)
}

fn already_stored(line: u64) -> Rejection {
    Rejection::new(
        line,
        Reason::AlreadyStored,
        Some("source_ref"),
        "this department's reference is stored already (an earlier line of this file, an \
         earlier import or the API); nothing was stored",
    )
}

type InJson = SqlLiteral<Bool, UncheckedBind<SqlLiteral<Bool>, AsExprOf<String, Text>>>;

/// `column IN (the strings of the JSON array bound here)` on SQLite: one statement text
/// for any number of keys (diesel's `IN (?, ?, ...)` is a new statement to prepare for
/// each count; on PostgreSQL it binds one array and is the same text anyway).
fn in_json(column: &'static str, keys: &[&str]) -> Result<InJson, ServiceError> {
    let json = serde_json::to_string(keys).or_internal("keys as JSON")?;
    Ok(
        sql::<Bool>(&format!("{column} IN (SELECT value FROM json_each("))
            .bind::<Text, _>(json)
            .sql("))"),
    )
}

/// The (department, reference) pairs of `lines` already in the archive.
fn stored_references(
    c: &mut DbConnection,
    lines: &[&Prepared],
) -> Result<HashSet<(String, String)>, ServiceError> {
    let mut by_department: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for p in lines {
        by_department
            .entry(&p.department)
            .or_default()
            .push(&p.reference);
    }
    let mut found = HashSet::new();
    for (department, references) in by_department {
        let of_department = credit_records::table
            .filter(credit_records::source_department.eq(department))
            .select(credit_records::source_ref);
        let refs: Vec<String> = match &mut *c {
            DbConnection::Sqlite(conn) => of_department
                .filter(in_json("source_ref", &references)?)
                .load(conn)?,
            // One array parameter, whatever its length.
            DbConnection::Pg(conn) => of_department
                .filter(credit_records::source_ref.eq_any(&references))
                .load(conn)?,
        };
        found.extend(refs.into_iter().map(|r| (department.to_owned(), r)));
    }
    Ok(found)
}

type SubjectKey = (SubjectKind, String);

/// The subject of every line, making the missing ones at the base standing (an
/// enterprise the exchange knows linked to its organization), and how many were made.
/// Like `find_or_create_subject` of the archive, for a batch at once. The rows answered
/// are as they stood when read (on PostgreSQL, [`apply_changes`] reads them again under
/// their locks).
fn subjects_of(
    c: &mut DbConnection,
    config: &LevelsConfig,
    lines: &[&Prepared],
    at: NaiveDateTime,
) -> Result<(HashMap<SubjectKey, CreditSubjectRow>, u64), ServiceError> {
    let mut wanted: BTreeMap<SubjectKey, &SubjectRef> = BTreeMap::new();
    for p in lines {
        wanted
            .entry((p.subject.kind, p.subject.key.clone()))
            .or_insert(&p.subject);
    }
    let keys: Vec<(SubjectKind, &str)> =
        wanted.keys().map(|(kind, k)| (*kind, k.as_str())).collect();
    let mut found: HashMap<SubjectKey, CreditSubjectRow> = HashMap::with_capacity(wanted.len());
    for row in subjects_by_key(c, &keys)? {
        let key = (row.kind, row.subject_key.clone());
        if wanted.contains_key(&key) {
            found.insert(key, row);
        }
    }
    let missing: Vec<&SubjectRef> = wanted
        .iter()
        .filter(|(k, _)| !found.contains_key(*k))
        .map(|(_, s)| *s)
        .collect();
    // The organizations the exchange knows among the enterprises without a link.
    let usccs: Vec<&str> = missing
        .iter()
        .filter(|s| s.kind == SubjectKind::Enterprise)
        .map(|s| s.key.as_str())
        .chain(
            found
                .values()
                .filter(|s| s.kind == SubjectKind::Enterprise && s.organization_id.is_none())
                .map(|s| s.subject_key.as_str()),
        )
        .collect();
    let mut organization_of: HashMap<String, String> = HashMap::new();
    for chunk in usccs.chunks(KEYS_PER_QUERY) {
        let query = organizations::table
            .filter(organizations::uscc.eq_any(chunk.to_vec()))
            .select((organizations::uscc, organizations::id));
        let known: Vec<(String, String)> = on_backend!(&mut *c, |conn| query.load(conn)?);
        organization_of.extend(known);
    }
    for row in found.values_mut() {
        if row.kind != SubjectKind::Enterprise || row.organization_id.is_some() {
            continue;
        }
        if let Some(org) = organization_of.get(&row.subject_key) {
            diesel::update(credit_subjects::table.find(&row.id))
                .set(credit_subjects::organization_id.eq(org))
                .execute(c)?;
            row.organization_id = Some(org.clone());
        }
    }
    if missing.is_empty() {
        return Ok((found, 0));
    }
    let fresh = config.standing(&DimensionScores::default(), 0);
    let rows: Vec<CreditSubjectRow> = missing
        .iter()
        .map(|s| CreditSubjectRow {
            id: ordered_id(),
            kind: s.kind,
            subject_key: s.key.clone(),
            masked_id: s.masked.clone(),
            name: s.name.clone(),
            organization_id: match s.kind {
                SubjectKind::Enterprise => organization_of.get(&s.key).cloned(),
                SubjectKind::Person => None,
            },
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
        })
        .collect();
    // A concurrent writer (PostgreSQL) may make one of them first: its row is the
    // subject then, read back by key.
    let made = insert_subjects(c, &rows, fresh.score, fresh.level, at)?;
    let created = made as u64;
    if made == rows.len() {
        found.extend(
            rows.into_iter()
                .map(|r| ((r.kind, r.subject_key.clone()), r)),
        );
    } else {
        let again: Vec<(SubjectKind, &str)> =
            missing.iter().map(|s| (s.kind, s.key.as_str())).collect();
        for row in subjects_by_key(c, &again)? {
            found.insert((row.kind, row.subject_key.clone()), row);
        }
    }
    for p in lines {
        if !found.contains_key(&(p.subject.kind, p.subject.key.clone())) {
            return Err(ServiceError::Internal(anyhow::anyhow!(
                "a credit subject made by the import is missing"
            )));
        }
    }
    Ok((found, created))
}

/// Subjects by key, one kind at a time: `kind = ? AND subject_key IN (...)` names both
/// columns of the unique index, so that either backend looks each key up in it.
fn subjects_by_key(
    c: &mut DbConnection,
    keys: &[(SubjectKind, &str)],
) -> Result<Vec<CreditSubjectRow>, ServiceError> {
    let mut out = Vec::with_capacity(keys.len());
    for kind in [SubjectKind::Person, SubjectKind::Enterprise] {
        let of_kind: Vec<&str> = keys
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, key)| *key)
            .collect();
        if of_kind.is_empty() {
            continue;
        }
        let of_kind_ = || credit_subjects::table.filter(credit_subjects::kind.eq(kind));
        match &mut *c {
            DbConnection::Sqlite(conn) => out.extend(
                of_kind_()
                    .filter(in_json("subject_key", &of_kind)?)
                    .select(CreditSubjectRow::as_select())
                    .load(conn)?,
            ),
            DbConnection::Pg(conn) => out.extend(
                of_kind_()
                    .filter(credit_subjects::subject_key.eq_any(&of_kind))
                    .select(CreditSubjectRow::as_select())
                    .load(conn)?,
            ),
        }
    }
    Ok(out)
}

/// A parameter of a batch statement after the batch itself.
enum Param<'a> {
    Text(Option<&'a str>),
    Int(i32),
    Time(NaiveDateTime),
}

/// Runs `sql`, whose first parameter is `rows` as a JSON array and the next ones
/// `params`; answers how many rows it inserted or changed.
fn execute_json(
    c: &mut DbConnection,
    sql: &str,
    rows: &impl serde::Serialize,
    params: &[Param<'_>],
) -> Result<usize, ServiceError> {
    let json = serde_json::to_string(rows).or_internal("a batch as JSON")?;
    macro_rules! bound {
        ($backend:ty) => {{
            let mut q = diesel::sql_query(sql)
                .into_boxed::<$backend>()
                .bind::<Text, _>(json);
            for p in params {
                q = match *p {
                    Param::Text(t) => q.bind::<Nullable<Text>, _>(t.map(str::to_owned)),
                    Param::Int(n) => q.bind::<Integer, _>(n),
                    Param::Time(t) => q.bind::<SqlTimestamp, _>(t),
                };
            }
            q
        }};
    }
    Ok(match c {
        DbConnection::Sqlite(conn) => bound!(diesel::sqlite::Sqlite).execute(conn)?,
        DbConnection::Pg(conn) => bound!(diesel::pg::Pg).execute(conn)?,
    })
}

fn is_pg(c: &DbConnection) -> bool {
    matches!(c, DbConnection::Pg(_))
}

/// What a new subject's row holds beyond the fields every new subject shares.
const NEW_SUBJECT_COLUMNS: [Column; 6] = [
    ("id", "text"),
    ("kind", "text"),
    ("subject_key", "text"),
    ("masked_id", "text"),
    ("name", "text"),
    ("organization_id", "text"),
];

/// Inserts new subjects at the base standing (`score`, `level`) as of `at`, leaving
/// out any whose key a concurrent writer stored first; answers how many were inserted.
fn insert_subjects(
    c: &mut DbConnection,
    rows: &[CreditSubjectRow],
    score: i32,
    level: CreditLevel,
    at: NaiveDateTime,
) -> Result<usize, ServiceError> {
    let pg = is_pg(c);
    let zero = || "0".to_owned();
    let constants = [
        ("score_identity", zero()),
        ("score_compliance", zero()),
        ("score_public_interest", zero()),
        ("score_history", zero()),
        ("score", param(pg, 2, "int4")),
        ("level", param(pg, 3, "text")),
        ("level_since", param(pg, 4, "timestamp")),
        ("serious_dishonesty_count", zero()),
        ("version", "1".to_owned()),
        ("created_at", param(pg, 4, "timestamp")),
        ("updated_at", param(pg, 4, "timestamp")),
    ];
    let sql = insert_sql(
        pg,
        "credit_subjects",
        &NEW_SUBJECT_COLUMNS,
        &constants,
        "ON CONFLICT DO NOTHING",
    );
    let json: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                &r.id,
                r.kind.as_str(),
                &r.subject_key,
                &r.masked_id,
                &r.name,
                &r.organization_id,
            )
        })
        .collect();
    execute_json(
        c,
        &sql,
        &json,
        &[
            Param::Int(score),
            Param::Text(Some(level.as_str())),
            Param::Time(at),
        ],
    )
}

/// A record's columns as a batch carries them; `recorded_at` and `recorded_by` are the
/// batch's, and a record of an import cancels nothing.
const RECORD_COLUMNS: [Column; 13] = [
    ("id", "text"),
    ("subject_id", "text"),
    ("category", "text"),
    ("dimension", "text"),
    ("polarity", "text"),
    ("points", "int4"),
    ("serious_dishonesty", "bool"),
    ("occurred_at", "timestamp"),
    ("expires_at", "timestamp"),
    ("source_department", "text"),
    ("source_ref", "text"),
    ("note", "text"),
    ("in_force", "bool"),
];

/// Inserts the records of a batch (all recorded at `at` by `recorded_by`) in one
/// statement; answers the ids of those not inserted because a concurrent writer
/// stored their reference first (PostgreSQL; on SQLite the batch holds the write lock
/// since it looked the references up).
fn insert_records(
    c: &mut DbConnection,
    rows: &[CreditRecordRow],
    recorded_by: Option<&str>,
    at: NaiveDateTime,
) -> Result<HashSet<String>, ServiceError> {
    let pg = is_pg(c);
    let sql = insert_sql(
        pg,
        "credit_records",
        &RECORD_COLUMNS,
        &[
            ("recorded_at", param(pg, 2, "timestamp")),
            ("recorded_by", param(pg, 3, "text")),
        ],
        "ON CONFLICT DO NOTHING",
    );
    let json: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                &r.id,
                &r.subject_id,
                &r.category,
                r.dimension.as_str(),
                r.polarity.as_str(),
                r.points,
                r.serious_dishonesty,
                Timestamp(r.occurred_at),
                r.expires_at.map(Timestamp),
                &r.source_department,
                &r.source_ref,
                &r.note,
                r.in_force,
            )
        })
        .collect();
    let inserted = execute_json(c, &sql, &json, &[Param::Time(at), Param::Text(recorded_by)])?;
    if inserted == rows.len() {
        return Ok(HashSet::new());
    }
    // Which ones: the rare path of a concurrent writer.
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let mut present: HashSet<String> = HashSet::with_capacity(inserted);
    for chunk in ids.chunks(KEYS_PER_QUERY) {
        let query = credit_records::table
            .filter(credit_records::id.eq_any(chunk.to_vec()))
            .select(credit_records::id);
        let found: Vec<String> = on_backend!(&mut *c, |conn| query.load(conn)?);
        present.extend(found);
    }
    Ok(ids
        .into_iter()
        .filter(|id| !present.contains(*id))
        .map(str::to_owned)
        .collect())
}

/// Adds each subject's summed changes under its row lock (in id order) and writes its
/// scores and level once; for a level that moves, the level change, its audit entry
/// and its mails, caused by the subject's last record of the batch: what the archive's
/// `apply` and `level_changed` do for one record, in statements of many rows. Answers
/// how many levels moved. `known`: the subjects as [`subjects_of`] found or made them,
/// which on SQLite (one writer, whose transaction read them) are as they stand.
fn apply_changes(
    c: &mut DbConnection,
    ctx: &Context,
    config: &LevelsConfig,
    changes: &BTreeMap<&str, (DimensionScores, i32, &CreditRecordRow)>,
    known: &HashMap<&str, &CreditSubjectRow>,
    at: NaiveDateTime,
) -> Result<u64, ServiceError> {
    let ids: Vec<&str> = changes.keys().copied().collect();
    let subjects: Vec<CreditSubjectRow> = match &mut *c {
        DbConnection::Sqlite(_) => ids
            .iter()
            .map(|id| {
                known
                    .get(id)
                    .map(|s| (*s).clone())
                    .or_internal("a subject of the batch")
            })
            .collect::<Result<_, _>>()?,
        DbConnection::Pg(conn) => credit_subjects::table
            .filter(credit_subjects::id.eq_any(&ids))
            .order(credit_subjects::id.asc())
            .select(CreditSubjectRow::as_select())
            .for_no_key_update()
            .load(conn)?,
    };
    let mut afters = Vec::with_capacity(subjects.len());
    let mut moved = Vec::new();
    for before in subjects {
        let Some((delta, serious_delta, cause)) = changes.get(before.id.as_str()) else {
            continue;
        };
        let mut dims = DimensionScores {
            identity: before.score_identity,
            compliance: before.score_compliance,
            public_interest: before.score_public_interest,
            history: before.score_history,
        };
        for d in Dimension::ALL.iter().copied() {
            dims.add(d, delta.get(d));
        }
        let serious = before.serious_dishonesty_count + serious_delta;
        if serious < 0 {
            return Err(ServiceError::Internal(anyhow::anyhow!(
                "credit subject {}: serious-dishonesty count would go below zero",
                before.id
            )));
        }
        let standing = config.standing(&dims, serious);
        let level_moved = standing.level != before.level;
        let after = CreditSubjectRow {
            score_identity: dims.identity,
            score_compliance: dims.compliance,
            score_public_interest: dims.public_interest,
            score_history: dims.history,
            score: standing.score,
            level: standing.level,
            level_since: if level_moved { at } else { before.level_since },
            serious_dishonesty_count: serious,
            version: before.version + 1,
            updated_at: at,
            ..before.clone()
        };
        if level_moved {
            moved.push((after.clone(), before.level, *cause));
        }
        afters.push(after);
    }
    update_subjects(c, &afters, at)?;
    levels_moved(c, ctx, &moved, at)?;
    Ok(moved.len() as u64)
}

/// The columns [`update_subjects`] writes, with the id that finds the row.
const SUBJECT_UPDATE_COLUMNS: [Column; 10] = [
    ("id", "text"),
    ("score_identity", "int4"),
    ("score_compliance", "int4"),
    ("score_public_interest", "int4"),
    ("score_history", "int4"),
    ("score", "int4"),
    ("level", "text"),
    ("level_since", "timestamp"),
    ("serious_dishonesty_count", "int4"),
    ("version", "int4"),
];

/// Writes the scores, level and version of subjects, all updated at `at`, in one
/// `UPDATE ... FROM` the batch.
fn update_subjects(
    c: &mut DbConnection,
    rows: &[CreditSubjectRow],
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    if rows.is_empty() {
        return Ok(());
    }
    let pg = is_pg(c);
    let mut set: Vec<String> = SUBJECT_UPDATE_COLUMNS[1..]
        .iter()
        .map(|(n, _)| format!("{n} = v.{n}"))
        .collect();
    set.push(format!("updated_at = {}", param(pg, 2, "timestamp")));
    let sql = format!(
        "UPDATE credit_subjects SET {} FROM {} WHERE credit_subjects.id = v.id",
        set.join(", "),
        rows_of(pg, &SUBJECT_UPDATE_COLUMNS)
    );
    let json: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                &r.id,
                r.score_identity,
                r.score_compliance,
                r.score_public_interest,
                r.score_history,
                r.score,
                r.level.as_str(),
                Timestamp(r.level_since),
                r.serious_dishonesty_count,
                r.version,
            )
        })
        .collect();
    let updated = execute_json(c, &sql, &json, &[Param::Time(at)])?;
    if updated != rows.len() {
        return Err(ServiceError::Internal(anyhow::anyhow!(
            "updated {updated} of {} credit subjects",
            rows.len()
        )));
    }
    Ok(())
}

/// A level change's columns as a batch carries them; `changed_at` is the batch's.
const LEVEL_CHANGE_COLUMNS: [Column; 6] = [
    ("id", "text"),
    ("subject_id", "text"),
    ("from_level", "text"),
    ("to_level", "text"),
    ("score", "int4"),
    ("cause_record_id", "text"),
];

/// For each subject whose level moved: its level change, its audit entry and its mails
/// (to whoever the archive knows for it), as the archive's `level_changed` writes them.
fn levels_moved(
    c: &mut DbConnection,
    ctx: &Context,
    moved: &[(CreditSubjectRow, CreditLevel, &CreditRecordRow)],
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    if moved.is_empty() {
        return Ok(());
    }
    let rows: Vec<CreditLevelChangeRow> = moved
        .iter()
        .map(|(subject, from, cause)| CreditLevelChangeRow {
            id: ordered_id(),
            subject_id: subject.id.clone(),
            from_level: *from,
            to_level: subject.level,
            score: subject.score,
            cause_record_id: Some(cause.id.clone()),
            changed_at: at,
        })
        .collect();
    let json: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                &r.id,
                &r.subject_id,
                r.from_level.as_str(),
                r.to_level.as_str(),
                r.score,
                &r.cause_record_id,
            )
        })
        .collect();
    let pg = is_pg(c);
    let sql = insert_sql(
        pg,
        "credit_level_changes",
        &LEVEL_CHANGE_COLUMNS,
        &[("changed_at", param(pg, 2, "timestamp"))],
        "",
    );
    execute_json(c, &sql, &json, &[Param::Time(at)])?;
    let events: Vec<AuditEvent<'_>> = moved
        .iter()
        .map(|(subject, from, cause)| level_change_event(subject, *from, cause))
        .collect();
    audit::append_all(c, &events, at)?;
    let recipients = recipients_of(c, moved.iter().map(|(s, _, _)| s))?;
    if recipients.is_empty() {
        return Ok(());
    }
    let names: HashMap<String, (String, String)> = record_categories::table
        .select((
            record_categories::code,
            (record_categories::name_zh, record_categories::name_en),
        ))
        .load(c)?
        .into_iter()
        .collect();
    for (subject, from, cause) in moved {
        let Some(addresses) = recipients.get(&subject.id) else {
            continue;
        };
        // A record of the import is new and in force: it is what moved the level.
        let reason = names
            .get(&cause.category)
            .map(|(zh, en)| CreditCause::NewRecord.reason(zh, en));
        notify::credit_level_changed(c, ctx, subject, *from, reason, addresses, at)?;
    }
    Ok(())
}

/// The mail addresses the exchange knows for each subject, as the archive's
/// `recipients_of` finds them: an enterprise's organization and its active users; a
/// person's own active resident accounts registered with that resident ID. Each
/// address once per subject; subjects without any are absent.
fn recipients_of<'a>(
    c: &mut DbConnection,
    subjects: impl Iterator<Item = &'a CreditSubjectRow>,
) -> Result<HashMap<String, Vec<String>>, ServiceError> {
    let mut by_key: HashMap<&str, &str> = HashMap::new();
    let mut by_organization: HashMap<&str, &str> = HashMap::new();
    for s in subjects {
        match (s.kind, &s.organization_id) {
            (SubjectKind::Person, _) => {
                by_key.insert(&s.subject_key, &s.id);
            }
            (SubjectKind::Enterprise, Some(org)) => {
                by_organization.insert(org, &s.id);
            }
            (SubjectKind::Enterprise, None) => {}
        }
    }
    let mut found: HashMap<String, Vec<String>> = HashMap::new();
    let keys: Vec<&str> = by_key.keys().copied().collect();
    for chunk in keys.chunks(KEYS_PER_QUERY) {
        let query = users::table
            .filter(users::resident_id_hmac.eq_any(chunk.to_vec()))
            .filter(users::role.eq(Role::Person))
            .filter(users::active.eq(true))
            .select((users::resident_id_hmac, users::email));
        let rows: Vec<(Option<String>, Option<String>)> =
            on_backend!(&mut *c, |conn| query.load(conn)?);
        for (key, email) in rows {
            if let (Some(subject), Some(email)) =
                (key.and_then(|k| by_key.get(k.as_str()).copied()), email)
            {
                found.entry(subject.to_owned()).or_default().push(email);
            }
        }
    }
    let organizations_: Vec<&str> = by_organization.keys().copied().collect();
    for chunk in organizations_.chunks(KEYS_PER_QUERY) {
        let query = organizations::table
            .filter(organizations::id.eq_any(chunk.to_vec()))
            .select((organizations::id, organizations::email));
        let rows: Vec<(String, Option<String>)> = on_backend!(&mut *c, |conn| query.load(conn)?);
        for (org, email) in rows {
            if let (Some(subject), Some(email)) = (by_organization.get(org.as_str()), email) {
                found.entry((*subject).to_owned()).or_default().push(email);
            }
        }
        let query = users::table
            .filter(users::organization_id.eq_any(chunk.to_vec()))
            .filter(users::active.eq(true))
            .select((users::organization_id, users::email));
        let rows: Vec<(String, Option<String>)> = on_backend!(&mut *c, |conn| query.load(conn)?);
        for (org, email) in rows {
            if let (Some(subject), Some(email)) = (by_organization.get(org.as_str()), email) {
                found.entry((*subject).to_owned()).or_default().push(email);
            }
        }
    }
    for addresses in found.values_mut() {
        let mut seen = HashSet::new();
        addresses.retain(|a| seen.insert(a.to_lowercase()));
    }
    Ok(found)
}
