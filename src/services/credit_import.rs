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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use super::catalogue::require_credit_office;
use super::credit::{check_record, level_changed, levels, NewRecord, SubjectRef};
use super::{new_id, Actor, Context, OrInternal, ServiceError};
use crate::db::models::{CreditImportRow, CreditRecordRow, CreditSubjectRow, RecordCategoryRow};
use crate::db::schema::{
    credit_imports, credit_records, credit_subjects, organizations, record_categories,
};
use crate::db::DbConnection;
use crate::domain::catalogue::{Dimension, Polarity, SubjectKind};
use crate::domain::credit::{default_expiry, signed_points, DimensionScores, LevelsConfig};

/// Lines one transaction covers (good and rejected).
pub const BATCH_LINES: usize = 5000;
/// Longest NDJSON line read; a longer one is rejected (and not kept in memory).
pub const LINE_MAX_BYTES: usize = 64 * 1024;
/// Rows per multi-row statement: within SQLite's 32,766 bound parameters at 17 columns.
const ROWS_PER_STATEMENT: usize = 1000;
/// Keys per `IN (...)` list.
const KEYS_PER_QUERY: usize = 1000;
/// Unknown columns named at most in a refusal.
const UNKNOWN_NAMED_MAX: usize = 20;

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
    let sha256 = first_pass(open()?, options)?;
    let config = levels()?;
    let categories = categories(ctx)?;
    let mut conn = ctx.conn()?;
    let job = {
        let at = ctx.now();
        ctx.write_tx(&mut conn, |c| {
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
    };
    let file = open()?;
    match options.format {
        Format::Csv => read_csv(file, &mut run, &mut conn, observer)?,
        Format::Ndjson => read_ndjson(file, &mut run, &mut conn, observer)?,
    }
    run.commit(&mut conn, observer, true)?;
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

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// The first pass: the file's SHA-256 and, for NDJSON, the check of its keys.
fn first_pass(file: std::fs::File, options: &Options) -> Result<String, ImportError> {
    let mut reader = BufReader::with_capacity(
        256 * 1024,
        Hashing {
            inner: file,
            hash: Sha256::new(),
        },
    );
    match options.format {
        Format::Csv => {
            std::io::copy(&mut reader, &mut std::io::sink()).map_err(ImportError::Unreadable)?;
        }
        Format::Ndjson => {
            let mut unknown = std::collections::BTreeSet::new();
            let mut line = Vec::new();
            while let Some(fits) =
                read_line_bounded(&mut reader, &mut line).map_err(ImportError::Unreadable)?
            {
                if !fits {
                    continue;
                }
                // A line that is no JSON object is reported by the second pass.
                if let Ok(keys) =
                    serde_json::from_slice::<HashMap<String, serde::de::IgnoredAny>>(&line)
                {
                    for key in keys.into_keys() {
                        if !COLUMNS.contains(&key.as_str()) && unknown.len() < UNKNOWN_NAMED_MAX {
                            unknown.insert(key);
                        }
                    }
                }
            }
            if !unknown.is_empty() {
                return Err(ImportError::Format(format!(
                    "unknown keys {}: the keys are {}; nothing was imported",
                    names(unknown.iter()),
                    COLUMNS.join(", ")
                )));
            }
        }
    }
    Ok(hex::encode(reader.into_inner().hash.finalize()))
}

fn names<'a>(names: impl Iterator<Item = &'a String>) -> String {
    names
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads one line (without its end) into `line`, at most [`LINE_MAX_BYTES`]: `None` at
/// the end of the file, `Some(false)` for a longer line (skipped to its end, not kept).
fn read_line_bounded(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
) -> std::io::Result<Option<bool>> {
    line.clear();
    let mut fits = true;
    let mut any = false;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            break;
        }
        any = true;
        let (chunk, used, done) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..i], i + 1, true),
            None => (available, available.len(), false),
        };
        if fits && line.len() + chunk.len() <= LINE_MAX_BYTES {
            line.extend_from_slice(chunk);
        } else {
            fits = false;
            line.clear();
        }
        reader.consume(used);
        if done {
            break;
        }
    }
    if !any {
        return Ok(None);
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Some(fits))
}

/// The column positions of a CSV header.
struct Header {
    index: HashMap<&'static str, usize>,
    len: usize,
}

impl Header {
    fn read(fields: &csv::ByteRecord, options: &Options) -> Result<Header, ImportError> {
        let mut index = HashMap::new();
        let mut unknown = Vec::new();
        let mut twice = Vec::new();
        for (i, raw) in fields.iter().enumerate() {
            let name = std::str::from_utf8(raw)
                .map_err(|_| ImportError::Format("the header row is not UTF-8".into()))?;
            let name = name.trim_start_matches('\u{feff}').trim();
            match COLUMNS.iter().find(|c| **c == name) {
                Some(column) => {
                    if index.insert(*column, i).is_some() {
                        twice.push(name.to_owned());
                    }
                }
                None => unknown.push(name.to_owned()),
            }
        }
        if !unknown.is_empty() {
            unknown.truncate(UNKNOWN_NAMED_MAX);
            return Err(ImportError::Format(format!(
                "unknown columns {}: the columns are {}; nothing was imported",
                names(unknown.iter()),
                COLUMNS.join(", ")
            )));
        }
        if !twice.is_empty() {
            return Err(ImportError::Format(format!(
                "columns named twice: {}; nothing was imported",
                names(twice.iter())
            )));
        }
        let missing: Vec<String> = REQUIRED
            .iter()
            .filter(|c| !index.contains_key(**c))
            .filter(|c| !(**c == "source_department" && options.department_default.is_some()))
            .map(|c| (*c).to_owned())
            .collect();
        if !missing.is_empty() {
            return Err(ImportError::Format(format!(
                "the header lacks the columns {}; nothing was imported",
                names(missing.iter())
            )));
        }
        Ok(Header {
            index,
            len: fields.len(),
        })
    }
}

fn read_csv(
    file: std::fs::File,
    run: &mut Run<'_>,
    conn: &mut DbConnection,
    observer: &mut dyn Observer,
) -> Result<(), ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(BufReader::with_capacity(256 * 1024, file));
    let header = match reader.byte_headers() {
        Ok(h) => Header::read(h, run.options)?,
        Err(e) => return Err(csv_error(e)),
    };
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(e)),
        }
        let line = record.position().map_or(0, |p| p.line());
        let bytes = record.position().map_or(0, |p| p.byte());
        if record.len() == 1 && record.get(0).is_some_and(<[u8]>::is_empty) {
            continue; // a blank line
        }
        if !run.take(line) {
            continue;
        }
        let checked = if record.len() != header.len {
            Err(Rejection::new(
                line,
                Reason::Malformed,
                None,
                format!("{} fields; the header has {}", record.len(), header.len),
            ))
        } else {
            csv_line(&header, &record, line, run.options).and_then(|r| run.check(line, &r))
        };
        run.push(line, checked, observer);
        if run.batch.full(run.options) {
            run.commit(conn, observer, false)?;
            observer.progress(bytes);
        }
    }
    Ok(())
}

/// A CSV error while reading: I/O is the file's; anything else (csv reads bytes, and
/// its records are flexible) would be a defect, reported as the file's too.
fn csv_error(e: csv::Error) -> ImportError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => ImportError::Unreadable(io),
        other => ImportError::Format(format!("the file is not CSV: {other:?}")),
    }
}

fn csv_line(
    header: &Header,
    record: &csv::ByteRecord,
    line: u64,
    options: &Options,
) -> Result<NewRecord, Rejection> {
    let field = |name: &'static str| -> Result<Option<String>, Rejection> {
        match header.index.get(name).and_then(|i| record.get(*i)) {
            None => Ok(None),
            Some(raw) => std::str::from_utf8(raw)
                .map(|s| Some(s.to_owned()).filter(|s| !s.trim().is_empty()))
                .map_err(|_| Rejection::new(line, Reason::Malformed, Some(name), "not UTF-8")),
        }
    };
    let points = match field("points")? {
        None => None,
        Some(p) => Some(p.trim().parse::<i64>().map_err(|_| {
            Rejection::new(line, Reason::BadPoints, Some("points"), "not an integer")
        })?),
    };
    Ok(NewRecord {
        subject_type: field("subject_type")?.unwrap_or_default(),
        subject_id: field("subject_id")?.unwrap_or_default(),
        subject_name: field("subject_name")?.unwrap_or_default(),
        category: field("category")?.unwrap_or_default(),
        polarity: field("polarity")?,
        points,
        occurred_at: field("occurred_at")?.unwrap_or_default(),
        expires_at: field("expires_at")?,
        source_department: field("source_department")?
            .or_else(|| options.department_default.clone())
            .unwrap_or_default(),
        source_ref: field("source_ref")?.unwrap_or_default(),
        note: field("note")?,
    })
}

/// An NDJSON line: every key optional here, so that a missing one is reported by
/// [`check_record`] naming its field.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonLine {
    subject_type: Option<String>,
    subject_id: Option<String>,
    subject_name: Option<String>,
    category: Option<String>,
    polarity: Option<String>,
    points: Option<i64>,
    occurred_at: Option<String>,
    expires_at: Option<String>,
    source_department: Option<String>,
    source_ref: Option<String>,
    note: Option<String>,
}

fn read_ndjson(
    file: std::fs::File,
    run: &mut Run<'_>,
    conn: &mut DbConnection,
    observer: &mut dyn Observer,
) -> Result<(), ImportError> {
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let mut bytes = Vec::new();
    let mut line = 0u64;
    let mut position = 0u64;
    while let Some(fits) =
        read_line_bounded(&mut reader, &mut bytes).map_err(ImportError::Unreadable)?
    {
        line += 1;
        position += bytes.len() as u64 + 1;
        if fits && bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if !run.take(line) {
            continue;
        }
        let checked = if fits {
            json_line(&bytes, line, run.options).and_then(|r| run.check(line, &r))
        } else {
            Err(Rejection::new(
                line,
                Reason::Malformed,
                None,
                format!("longer than {LINE_MAX_BYTES} bytes"),
            ))
        };
        run.push(line, checked, observer);
        if run.batch.full(run.options) {
            run.commit(conn, observer, false)?;
            observer.progress(position);
        }
    }
    Ok(())
}

fn json_line(bytes: &[u8], line: u64, options: &Options) -> Result<NewRecord, Rejection> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed: JsonLine = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match path.as_str() {
            "points" => Rejection::new(line, Reason::BadPoints, Some("points"), "not an integer"),
            "." | "" => Rejection::new(line, Reason::Malformed, None, inner.to_string()),
            field => Rejection::new(line, Reason::Malformed, Some(field), inner.to_string()),
        }
    })?;
    de.end()
        .map_err(|e| Rejection::new(line, Reason::Malformed, None, e.to_string()))?;
    Ok(NewRecord {
        subject_type: parsed.subject_type.unwrap_or_default(),
        subject_id: parsed.subject_id.unwrap_or_default(),
        subject_name: parsed.subject_name.unwrap_or_default(),
        category: parsed.category.unwrap_or_default(),
        polarity: parsed.polarity,
        points: parsed.points,
        occurred_at: parsed.occurred_at.unwrap_or_default(),
        expires_at: parsed.expires_at,
        source_department: parsed
            .source_department
            .filter(|d| !d.trim().is_empty())
            .or_else(|| options.department_default.clone())
            .unwrap_or_default(),
        source_ref: parsed.source_ref.unwrap_or_default(),
        note: parsed.note,
    })
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
            let outcome = store_batch(c, ctx, config, &batch.good, recorded_by, at)?;
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

/// What one batch stored.
#[derive(Debug, Default)]
struct Outcome {
    stored: u64,
    rejections: Vec<Rejection>,
    subjects_created: u64,
    level_changes: u64,
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

fn store_batch(
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
    let (subject_ids, created) = subjects_of(c, config, &keep, at)?;
    outcome.subjects_created = created;

    // The records, in statements of many rows; a reference a concurrent writer stored
    // meanwhile is not inserted (and reported as stored already).
    let rows: Vec<CreditRecordRow> = keep
        .iter()
        .map(|p| {
            let in_force = p.expires_at > at;
            CreditRecordRow {
                id: new_id(),
                subject_id: subject_ids[&(p.subject.kind, p.subject.key.clone())].clone(),
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
    let mut inserted: HashSet<String> = HashSet::with_capacity(rows.len());
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let ids: Vec<String> =
            on_backend!(&mut *c, |conn| diesel::insert_into(credit_records::table)
                .values(chunk)
                .on_conflict_do_nothing()
                .returning(credit_records::id)
                .get_results(conn)?);
        inserted.extend(ids);
    }
    // Per subject, the sum of its new records in force, and the last one (the cause of
    // a level change).
    let mut changes: BTreeMap<&str, (DimensionScores, i32, &CreditRecordRow)> = BTreeMap::new();
    for (p, row) in keep.iter().zip(&rows) {
        if !inserted.contains(&row.id) {
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
    outcome.level_changes = apply_changes(c, ctx, config, &changes, at)?;
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
        for chunk in references.chunks(KEYS_PER_QUERY) {
            let query = credit_records::table
                .filter(credit_records::source_department.eq(department))
                .filter(credit_records::source_ref.eq_any(chunk.to_vec()))
                .select(credit_records::source_ref);
            let refs: Vec<String> = on_backend!(&mut *c, |conn| query.load(conn)?);
            found.extend(refs.into_iter().map(|r| (department.to_owned(), r)));
        }
    }
    Ok(found)
}

type SubjectKey = (SubjectKind, String);

/// The subject id of every line's subject, making the missing ones at the base
/// standing (an enterprise the exchange knows linked to its organization), and how many
/// were made. Like `find_or_create_subject` of the archive, for a batch at once.
fn subjects_of(
    c: &mut DbConnection,
    config: &LevelsConfig,
    lines: &[&Prepared],
    at: NaiveDateTime,
) -> Result<(HashMap<SubjectKey, String>, u64), ServiceError> {
    let mut wanted: BTreeMap<SubjectKey, &SubjectRef> = BTreeMap::new();
    for p in lines {
        wanted
            .entry((p.subject.kind, p.subject.key.clone()))
            .or_insert(&p.subject);
    }
    let keys: Vec<&str> = wanted.keys().map(|(_, k)| k.as_str()).collect();
    let existing = subjects_by_key(c, &keys)?;
    let mut ids: HashMap<SubjectKey, String> = HashMap::with_capacity(wanted.len());
    let mut unlinked: Vec<(String, String)> = Vec::new();
    for (id, kind, key, organization_id) in existing {
        if !wanted.contains_key(&(kind, key.clone())) {
            continue;
        }
        if kind == SubjectKind::Enterprise && organization_id.is_none() {
            unlinked.push((id.clone(), key.clone()));
        }
        ids.insert((kind, key), id);
    }
    let missing: Vec<&SubjectRef> = wanted
        .iter()
        .filter(|(k, _)| !ids.contains_key(*k))
        .map(|(_, s)| *s)
        .collect();
    // The organizations the exchange knows among the enterprises without a link.
    let usccs: Vec<&str> = missing
        .iter()
        .filter(|s| s.kind == SubjectKind::Enterprise)
        .map(|s| s.key.as_str())
        .chain(unlinked.iter().map(|(_, key)| key.as_str()))
        .collect();
    let mut organization_of: HashMap<String, String> = HashMap::new();
    for chunk in usccs.chunks(KEYS_PER_QUERY) {
        let query = organizations::table
            .filter(organizations::uscc.eq_any(chunk.to_vec()))
            .select((organizations::uscc, organizations::id));
        let found: Vec<(String, String)> = on_backend!(&mut *c, |conn| query.load(conn)?);
        organization_of.extend(found);
    }
    for (id, key) in &unlinked {
        if let Some(org) = organization_of.get(key) {
            diesel::update(credit_subjects::table.find(id))
                .set(credit_subjects::organization_id.eq(org))
                .execute(c)?;
        }
    }
    if missing.is_empty() {
        return Ok((ids, 0));
    }
    let fresh = config.standing(&DimensionScores::default(), 0);
    let rows: Vec<CreditSubjectRow> = missing
        .iter()
        .map(|s| CreditSubjectRow {
            id: new_id(),
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
    // A concurrent writer may make one of them first: its row is the subject then.
    let mut created = 0;
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let made: Vec<String> =
            on_backend!(&mut *c, |conn| diesel::insert_into(credit_subjects::table)
                .values(chunk)
                .on_conflict_do_nothing()
                .returning(credit_subjects::id)
                .get_results(conn)?);
        created += made.len() as u64;
    }
    let keys: Vec<&str> = missing.iter().map(|s| s.key.as_str()).collect();
    for (id, kind, key, _) in subjects_by_key(c, &keys)? {
        ids.insert((kind, key), id);
    }
    for p in lines {
        if !ids.contains_key(&(p.subject.kind, p.subject.key.clone())) {
            return Err(ServiceError::Internal(anyhow::anyhow!(
                "a credit subject made by the import is missing"
            )));
        }
    }
    Ok((ids, created))
}

/// A subject as the import finds it: id, kind, key and organization.
type FoundSubject = (String, SubjectKind, String, Option<String>);

/// Subjects by key.
fn subjects_by_key(c: &mut DbConnection, keys: &[&str]) -> Result<Vec<FoundSubject>, ServiceError> {
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(KEYS_PER_QUERY) {
        let query = credit_subjects::table
            .filter(credit_subjects::subject_key.eq_any(chunk.to_vec()))
            .select((
                credit_subjects::id,
                credit_subjects::kind,
                credit_subjects::subject_key,
                credit_subjects::organization_id,
            ));
        let rows: Vec<FoundSubject> = on_backend!(&mut *c, |conn| query.load(conn)?);
        out.extend(rows);
    }
    Ok(out)
}

/// Adds each subject's summed changes under its row lock (in id order), writes its
/// scores and level once, and for a level that moves, the level change with its audit
/// entry and mail, caused by the subject's last record of the batch. Answers how many
/// levels moved.
fn apply_changes(
    c: &mut DbConnection,
    ctx: &Context,
    config: &LevelsConfig,
    changes: &BTreeMap<&str, (DimensionScores, i32, &CreditRecordRow)>,
    at: NaiveDateTime,
) -> Result<u64, ServiceError> {
    let ids: Vec<&str> = changes.keys().copied().collect();
    let mut subjects: Vec<CreditSubjectRow> = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(KEYS_PER_QUERY) {
        let query = || {
            credit_subjects::table
                .filter(credit_subjects::id.eq_any(chunk.to_vec()))
                .order(credit_subjects::id.asc())
        };
        let rows: Vec<CreditSubjectRow> = match &mut *c {
            DbConnection::Sqlite(conn) => {
                query().select(CreditSubjectRow::as_select()).load(conn)?
            }
            DbConnection::Pg(conn) => query()
                .select(CreditSubjectRow::as_select())
                .for_no_key_update()
                .load(conn)?,
        };
        subjects.extend(rows);
    }
    let mut moved = 0;
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
        diesel::update(credit_subjects::table.find(&after.id))
            .set((
                credit_subjects::score_identity.eq(after.score_identity),
                credit_subjects::score_compliance.eq(after.score_compliance),
                credit_subjects::score_public_interest.eq(after.score_public_interest),
                credit_subjects::score_history.eq(after.score_history),
                credit_subjects::score.eq(after.score),
                credit_subjects::level.eq(after.level),
                credit_subjects::level_since.eq(after.level_since),
                credit_subjects::serious_dishonesty_count.eq(after.serious_dishonesty_count),
                credit_subjects::version.eq(after.version),
                credit_subjects::updated_at.eq(at),
            ))
            .execute(c)?;
        if level_moved {
            level_changed(c, ctx, &after, before.level, cause, at)?;
            moved += 1;
        }
    }
    Ok(moved)
}

/// The categories as shipped, for `baohan import --help`: code, name, polarity, points
/// and validity, one a line.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_skipped_whole_and_line_ends_are_trimmed() {
        let long = "x".repeat(LINE_MAX_BYTES + 10);
        let text = format!("a\r\n{long}\nb");
        let mut reader = BufReader::with_capacity(16, text.as_bytes());
        let mut line = Vec::new();
        assert_eq!(
            read_line_bounded(&mut reader, &mut line).unwrap(),
            Some(true)
        );
        assert_eq!(line, b"a");
        assert_eq!(
            read_line_bounded(&mut reader, &mut line).unwrap(),
            Some(false)
        );
        assert!(line.is_empty());
        assert_eq!(
            read_line_bounded(&mut reader, &mut line).unwrap(),
            Some(true)
        );
        assert_eq!(line, b"b");
        assert_eq!(read_line_bounded(&mut reader, &mut line).unwrap(), None);
    }

    #[test]
    fn a_json_line_names_what_is_wrong() {
        let options = Options::new(Format::Ndjson);
        let bad_points = json_line(br#"{"points": "ten"}"#, 3, &options).unwrap_err();
        assert_eq!((bad_points.line, bad_points.reason), (3, Reason::BadPoints));
        let not_json = json_line(b"{nope", 4, &options).unwrap_err();
        assert_eq!(not_json.reason, Reason::Malformed);
        let trailing = json_line(br#"{} {}"#, 5, &options).unwrap_err();
        assert_eq!(trailing.reason, Reason::Malformed);
    }

    #[test]
    fn field_errors_map_to_reasons() {
        assert_eq!(Reason::of_field("subject_id"), Reason::InvalidId);
        assert_eq!(Reason::of_field("expires_at"), Reason::BadDate);
        assert_eq!(Reason::of_field("source_ref"), Reason::InvalidField);
    }
}
