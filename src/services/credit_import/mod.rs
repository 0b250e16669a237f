//! Bulk import of credit records (批量导入) from the national and provincial platforms:
//! a CSV file with a header row or an NDJSON file with the same keys (DESIGN section 7),
//! from `baohan import FILE` or an upload to the API.
//!
//! Streamed in two passes over the file, in constant memory whatever its size: the
//! first hashes it (SHA-256, the key of its import job) and, for NDJSON, collects the
//! keys the lines use, so that an unknown column refuses the whole file before any line
//! is stored; the second reads it line by line and stores it in batches.
//!
//! One transaction per batch stores the batch's good lines, brings each subject it
//! touches up to date once (the sum of its changes, as [`super::credit`] does for one
//! record: a level that moves writes its level change, audit entry and mail) and moves
//! the import job's `last_line` to the batch's last line by a conditional update. A
//! crash loses at most the batch in flight; the same file again starts after
//! `last_line`, and the lines before it count as already imported.
//!
//! The archive's invariants hold as for a record posted alone: a department's
//! reference is stored once (checked before the insert, and `ON CONFLICT DO NOTHING`
//! for a concurrent writer), a record that has lapsed when it arrives is kept out of
//! force, the serious-dishonesty count follows the records in force, and a resident ID
//! is only ever stored as its HMAC and masked form. A line that fails is reported by
//! its number and reason and the others go on.
//!
//! Lock order as in [`super::credit`]: records first, then subjects in id order (on
//! PostgreSQL `FOR NO KEY UPDATE`, which a record's foreign key check does not wait
//! for).

mod json_rows;
mod read;
mod store;

use std::collections::HashMap;
use std::path::Path;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::catalogue::require_credit_office;
use super::credit::{check_record, levels, NewRecord, SubjectRef};
use super::{new_id, Actor, Context, OrInternal, ServiceError};
use crate::db::models::{CreditImportRow, RecordCategoryRow};
use crate::db::schema::{credit_imports, record_categories};
use crate::db::DbConnection;
use crate::domain::catalogue::{Dimension, Polarity};
use crate::domain::credit::{default_expiry, LevelsConfig};

/// Lines one transaction covers (good and rejected).
pub const BATCH_LINES: usize = 5000;
/// Longest NDJSON line read; a longer one is rejected (and not kept in memory).
pub const LINE_MAX_BYTES: usize = 64 * 1024;

/// The columns of an import file (DESIGN section 7), in the order they are documented.
pub const COLUMNS: [&str; 11] = [
    "subject_type",
    "subject_id",
    "subject_name",
    "category",
    "polarity",
    "points",
    "occurred_at",
    "expires_at",
    "source_department",
    "source_ref",
    "note",
];

/// Columns a CSV header must name (`source_department` unless a default is given).
const REQUIRED: [&str; 7] = [
    "subject_type",
    "subject_id",
    "subject_name",
    "category",
    "occurred_at",
    "source_department",
    "source_ref",
];

/// The two file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// UTF-8 CSV with a header row.
    Csv,
    /// One JSON object per line, with the same keys.
    Ndjson,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "csv" => Ok(Format::Csv),
            "ndjson" | "jsonl" => Ok(Format::Ndjson),
            other => Err(format!("unknown format {other:?}: csv or ndjson")),
        }
    }
}

/// How to read a file.
#[derive(Debug, Clone)]
pub struct Options {
    pub format: Format,
    /// The department of lines that name none.
    pub department_default: Option<String>,
    /// Lines per transaction.
    pub batch_lines: usize,
}

impl Options {
    pub fn new(format: Format) -> Options {
        Options {
            format,
            department_default: None,
            batch_lines: BATCH_LINES,
        }
    }
}

/// Why a line was not stored, by a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Not a CSV record or JSON object of the format (wrong field count, bad JSON,
    /// not UTF-8, too long).
    Malformed,
    /// `subject_type` is neither `person` nor `enterprise`.
    InvalidSubjectType,
    /// Not a valid resident ID (person) or USCC (enterprise).
    InvalidId,
    /// No such record category.
    UnknownCategory,
    /// `occurred_at` or `expires_at` is not a date or time, in the future, or out of
    /// order.
    BadDate,
    /// `points` is not an integer from 1 to 1000.
    BadPoints,
    /// `polarity` is neither `positive` nor `negative`.
    BadPolarity,
    /// The department's reference appears earlier in the same batch of this file.
    DuplicateInFile,
    /// The department's reference is stored already (by an earlier line of this file,
    /// an earlier import or the API).
    AlreadyStored,
    /// Another field (name, department, reference, note) is empty, too long or holds
    /// control characters.
    InvalidField,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Malformed => "malformed",
            Reason::InvalidSubjectType => "invalid_subject_type",
            Reason::InvalidId => "invalid_id",
            Reason::UnknownCategory => "unknown_category",
            Reason::BadDate => "bad_date",
            Reason::BadPoints => "bad_points",
            Reason::BadPolarity => "bad_polarity",
            Reason::DuplicateInFile => "duplicate_in_file",
            Reason::AlreadyStored => "already_stored",
            Reason::InvalidField => "invalid_field",
        }
    }

    fn of_field(field: &str) -> Reason {
        match field {
            "subject_type" => Reason::InvalidSubjectType,
            "subject_id" => Reason::InvalidId,
            "category" => Reason::UnknownCategory,
            "occurred_at" | "expires_at" => Reason::BadDate,
            "points" => Reason::BadPoints,
            "polarity" => Reason::BadPolarity,
            _ => Reason::InvalidField,
        }
    }
}

/// A line not stored: its number (1 is a CSV file's header), why, and the field.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rejection {
    pub line: u64,
    pub reason: Reason,
    pub field: Option<String>,
    pub message: String,
}

impl Rejection {
    fn new(line: u64, reason: Reason, field: Option<&str>, message: impl Into<String>) -> Self {
        Rejection {
            line,
            reason,
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    pub import_id: String,
    pub file_sha256: String,
    /// Records (non-blank lines after a CSV header) this run read, skipped ones included.
    pub lines_read: u64,
    /// Lines an earlier run of the same file committed: skipped, not stored again.
    pub already_imported: u64,
    /// Lines stored by this run.
    pub stored: u64,
    /// Lines this run rejected.
    pub rejected: u64,
    /// Over every run of this file so far, this one included.
    pub total_stored: u64,
    pub total_rejected: u64,
    /// Subjects this run gave an archive.
    pub subjects_created: u64,
    /// Level changes this run's records caused.
    pub level_changes: u64,
    /// The file had been imported to its end before: nothing was read.
    pub finished_before: bool,
}

/// Who follows an import: each rejected line as it is known, and progress.
pub trait Observer {
    fn rejected(&mut self, rejection: &Rejection);
    /// Bytes of the file read so far by the storing pass.
    fn progress(&mut self, _bytes: u64) {}
}

/// Why an import stopped before the file's end.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read (nothing after the last committed batch is stored).
    #[error("could not read the file: {0}")]
    Unreadable(#[source] std::io::Error),
    /// The header (CSV) or the keys (NDJSON) are not the import format's: nothing was
    /// stored.
    #[error("{0}")]
    Format(String),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// The credit office imports a file it uploaded (the API).
pub fn import_upload(
    ctx: &Context,
    actor: &Actor,
    path: &Path,
    options: &Options,
    observer: &mut dyn Observer,
) -> Result<Summary, ImportError> {
    require_credit_office(actor)?;
    import_file(ctx, Some(&actor.user_id), path, options, observer)
}

/// Imports a file: `baohan import` (no user: the console) and the API upload.
pub fn import_file(
    ctx: &Context,
    started_by: Option<&str>,
    path: &Path,
    options: &Options,
    observer: &mut dyn Observer,
) -> Result<Summary, ImportError> {
    let open = || std::fs::File::open(path).map_err(ImportError::Unreadable);
    let sha256 = read::first_pass(open()?, options)?;
    let mut conn = ctx.conn()?;
    store::tune(&mut conn)?;
    let result = import_on(ctx, &mut conn, started_by, path, sha256, options, observer);
    if let Err(e) = store::untune(&mut conn) {
        tracing::warn!(error = %e, "could not set the import's connection back");
    }
    result
}

/// The import on its tuned connection, after the first pass.
fn import_on(
    ctx: &Context,
    conn: &mut DbConnection,
    started_by: Option<&str>,
    path: &Path,
    sha256: String,
    options: &Options,
    observer: &mut dyn Observer,
) -> Result<Summary, ImportError> {
    let open = || std::fs::File::open(path).map_err(ImportError::Unreadable);
    let config = levels()?;
    let categories = categories(ctx)?;
    let job = {
        let at = ctx.now();
        ctx.write_tx(conn, |c| {
            open_job(c, &sha256, options.format, started_by, at)
        })?
    };
    let mut summary = Summary {
        import_id: job.id.clone(),
        file_sha256: sha256,
        total_stored: count(job.lines_stored),
        total_rejected: count(job.lines_rejected),
        ..Summary::default()
    };
    if job.status == "finished" {
        summary.finished_before = true;
        summary.already_imported = summary.total_stored + summary.total_rejected;
        return Ok(summary);
    }
    let mut run = Run {
        ctx,
        config,
        categories: &categories,
        options,
        recorded_by: started_by,
        job_id: job.id,
        committed: count(job.last_line),
        summary,
        batch: Batch::default(),
        analyze_at: 1,
    };
    let file = open()?;
    match options.format {
        Format::Csv => read::read_csv(file, &mut run, conn, observer)?,
        Format::Ndjson => read::read_ndjson(file, &mut run, conn, observer)?,
    }
    run.commit(conn, observer, true)?;
    Ok(run.summary)
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A record category as a line needs it.
#[derive(Debug, Clone, Copy)]
struct Category {
    dimension: Dimension,
    polarity: Polarity,
    points: i32,
    validity_days: i32,
}

/// The record categories as the database holds them (the credit office may have edited
/// the shipped list), read once per import.
fn categories(ctx: &Context) -> Result<HashMap<String, Category>, ServiceError> {
    let mut conn = ctx.conn()?;
    let rows: Vec<RecordCategoryRow> = record_categories::table
        .select(RecordCategoryRow::as_select())
        .load(&mut conn)?;
    rows.into_iter()
        .map(|r| {
            Ok((
                r.code,
                Category {
                    dimension: r.dimension.parse().or_internal("stored dimension")?,
                    polarity: r.polarity.parse().or_internal("stored polarity")?,
                    points: r.points,
                    validity_days: r.validity_days,
                },
            ))
        })
        .collect()
}

/// A line checked and resolved against its category, ready to store.
struct Prepared {
    line: u64,
    subject: SubjectRef,
    category: String,
    dimension: Dimension,
    polarity: Polarity,
    points: i32,
    occurred_at: NaiveDateTime,
    expires_at: NaiveDateTime,
    department: String,
    reference: String,
    note: Option<String>,
}

/// The lines read since the last commit.
#[derive(Default)]
struct Batch {
    good: Vec<Prepared>,
    /// Lines of the batch, good and rejected.
    lines: usize,
    rejected: u64,
    /// The last line number read.
    last_line: u64,
}

impl Batch {
    fn full(&self, options: &Options) -> bool {
        self.lines >= options.batch_lines.max(1)
    }
}

/// One run of an import.
struct Run<'a> {
    ctx: &'a Context,
    config: &'static LevelsConfig,
    categories: &'a HashMap<String, Category>,
    options: &'a Options,
    recorded_by: Option<&'a str>,
    job_id: String,
    /// The job's last committed line.
    committed: u64,
    summary: Summary,
    batch: Batch,
    /// Lines stored by this run after which the archive's tables are analyzed next
    /// ([`store::analyze`]): after the first batch, then each time the run has doubled
    /// what it stored, a few times for any file.
    analyze_at: u64,
}

impl Run<'_> {
    /// Counts a line read; false for one an earlier run committed.
    fn take(&mut self, line: u64) -> bool {
        self.summary.lines_read += 1;
        if line <= self.committed {
            self.summary.already_imported += 1;
            return false;
        }
        true
    }

    fn check(&self, line: u64, r: &NewRecord) -> Result<Prepared, Rejection> {
        let checked = check_record(self.ctx, r).map_err(|e| match e {
            ServiceError::Invalid { field, message } => {
                Rejection::new(line, Reason::of_field(&field), Some(&field), message)
            }
            other => Rejection::new(line, Reason::InvalidField, None, other.to_string()),
        })?;
        let category = self.categories.get(&checked.category).ok_or_else(|| {
            Rejection::new(
                line,
                Reason::UnknownCategory,
                Some("category"),
                "unknown record category; `baohan import --help` and GET /api/v1/record-categories list them",
            )
        })?;
        let expires_at = checked
            .expires_at
            .unwrap_or_else(|| default_expiry(checked.occurred_at, category.validity_days));
        Ok(Prepared {
            line,
            subject: checked.subject,
            category: checked.category,
            dimension: category.dimension,
            polarity: checked.polarity.unwrap_or(category.polarity),
            points: checked.points.unwrap_or(category.points),
            occurred_at: checked.occurred_at,
            expires_at,
            department: checked.department,
            reference: checked.reference,
            note: checked.note,
        })
    }

    fn push(
        &mut self,
        line: u64,
        checked: Result<Prepared, Rejection>,
        observer: &mut dyn Observer,
    ) {
        self.batch.lines += 1;
        self.batch.last_line = line;
        match checked {
            Ok(p) => self.batch.good.push(p),
            Err(rejection) => {
                self.batch.rejected += 1;
                observer.rejected(&rejection);
            }
        }
    }

    /// Stores the batch and moves the job's line in one transaction; `finished` marks
    /// the job done with it (the file's end).
    fn commit(
        &mut self,
        conn: &mut DbConnection,
        observer: &mut dyn Observer,
        finished: bool,
    ) -> Result<(), ImportError> {
        let batch = std::mem::take(&mut self.batch);
        let from = self.committed;
        let to = batch.last_line.max(from);
        let at = self.ctx.now();
        let (ctx, config, job_id, recorded_by) =
            (self.ctx, self.config, &self.job_id, self.recorded_by);
        let outcome = ctx.write_tx(conn, |c| {
            let outcome = store::store_batch(c, ctx, config, &batch.good, recorded_by, at)?;
            let rejected = batch.rejected + outcome.rejections.len() as u64;
            checkpoint(c, job_id, from, to, outcome.stored, rejected, finished, at)?;
            Ok(outcome)
        })?;
        for r in &outcome.rejections {
            observer.rejected(r);
        }
        let rejected = batch.rejected + outcome.rejections.len() as u64;
        self.committed = to;
        self.summary.stored += outcome.stored;
        self.summary.rejected += rejected;
        self.summary.total_stored += outcome.stored;
        self.summary.total_rejected += rejected;
        self.summary.subjects_created += outcome.subjects_created;
        self.summary.level_changes += outcome.level_changes;
        if !finished && self.summary.stored >= self.analyze_at {
            // Only the speed of the next batches depends on it: a failure is no reason
            // to stop.
            if let Err(e) = store::analyze(conn) {
                tracing::warn!(error = %e, "could not analyze the archive's tables");
            }
            self.analyze_at = self.summary.stored.saturating_mul(2);
        }
        Ok(())
    }
}

/// The job of a file, made on its first run.
fn open_job(
    c: &mut DbConnection,
    sha256: &str,
    format: Format,
    started_by: Option<&str>,
    at: NaiveDateTime,
) -> Result<CreditImportRow, ServiceError> {
    let existing = credit_imports::table
        .filter(credit_imports::file_sha256.eq(sha256))
        .select(CreditImportRow::as_select())
        .first(c)
        .optional()?;
    if let Some(job) = existing {
        return Ok(job);
    }
    let job = CreditImportRow {
        id: new_id(),
        file_sha256: sha256.to_owned(),
        format: format.as_str().to_owned(),
        last_line: 0,
        lines_stored: 0,
        lines_rejected: 0,
        status: "running".into(),
        started_by: started_by.map(str::to_owned),
        started_at: at,
        updated_at: at,
        finished_at: None,
    };
    diesel::insert_into(credit_imports::table)
        .values(&job)
        .execute(c)?;
    Ok(job)
}

/// Moves the job from line `from` to `to`: refused when another run moved it meanwhile.
#[allow(clippy::too_many_arguments)]
fn checkpoint(
    c: &mut DbConnection,
    job_id: &str,
    from: u64,
    to: u64,
    stored: u64,
    rejected: u64,
    finished: bool,
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    let as_i64 = |n: u64| i64::try_from(n).or_internal("line count");
    let moved = diesel::update(
        credit_imports::table
            .filter(credit_imports::id.eq(job_id))
            .filter(credit_imports::last_line.eq(as_i64(from)?))
            .filter(credit_imports::status.eq("running")),
    )
    .set((
        credit_imports::last_line.eq(as_i64(to)?),
        credit_imports::lines_stored.eq(credit_imports::lines_stored + as_i64(stored)?),
        credit_imports::lines_rejected.eq(credit_imports::lines_rejected + as_i64(rejected)?),
        credit_imports::updated_at.eq(at),
        credit_imports::status.eq(if finished { "finished" } else { "running" }),
        credit_imports::finished_at.eq(finished.then_some(at)),
    ))
    .execute(c)?;
    if moved != 1 {
        return Err(ServiceError::Conflict(
            "another run of this file committed lines meanwhile; run it again to go on from \
             where it stopped"
                .into(),
        ));
    }
    Ok(())
}

/// The categories as shipped, for `baohan import --help`: code, name, polarity, points
/// and validity, one a line.
/// The newest import jobs, newest first (the credit office): each file by its SHA-256,
/// how far its committed batches reached and what they stored and rejected.
pub fn recent_jobs(
    ctx: &Context,
    actor: &Actor,
    limit: i64,
) -> Result<Vec<CreditImportRow>, ServiceError> {
    require_credit_office(actor)?;
    let mut conn = ctx.conn()?;
    Ok(credit_imports::table
        .order((credit_imports::started_at.desc(), credit_imports::id.desc()))
        .limit(limit)
        .select(CreditImportRow::as_select())
        .load(&mut conn)?)
}

pub fn shipped_categories_help() -> String {
    use crate::domain::catalogue::{seed_categories, RECORD_CATEGORIES_TOML};
    match seed_categories(RECORD_CATEGORIES_TOML) {
        Ok(list) => list
            .iter()
            .map(|(code, c)| {
                format!(
                    "  {code:<28} {} ({}) {} {} points, in force {} days",
                    c.name_zh,
                    c.name_en,
                    c.polarity.as_str(),
                    c.points,
                    c.validity_days
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Err(e) => format!("  (the shipped list could not be read: {e})"),
    }
}
