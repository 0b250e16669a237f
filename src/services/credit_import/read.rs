//! Reading an import file: the first pass (SHA-256, and the keys of an NDJSON file),
//! then the lines of a CSV or NDJSON file one by one, each checked into a record to
//! store or a rejection.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};

use sha2::{Digest, Sha256};

use super::Format;
use super::{
    ImportError, Observer, Options, Reason, Rejection, Run, COLUMNS, LINE_MAX_BYTES, REQUIRED,
};
use crate::db::DbConnection;
use crate::services::credit::NewRecord;

/// Unknown columns named at most in a refusal.
const UNKNOWN_NAMED_MAX: usize = 20;

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
pub(super) fn first_pass(file: std::fs::File, options: &Options) -> Result<String, ImportError> {
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

pub(super) fn read_csv(
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

pub(super) fn read_ndjson(
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
