//! `baohan import FILE`: bulk import of credit records on the configured database, with
//! a progress bar on a terminal, each rejected line printed (and written to a report
//! file when asked), and a summary at the end.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Settings;
use crate::db;
use crate::services::credit_import::{
    self, Format, ImportError, Observer, Options, Rejection, Summary,
};
use crate::services::{self, Keys};

/// Exit code of a file whose header or keys are not the import format's (EX_DATAERR).
pub const EXIT_FORMAT: i32 = 65;
/// Exit code of a file that cannot be read (EX_NOINPUT).
pub const EXIT_UNREADABLE: i32 = 66;
/// Exit code when another run of the same file committed lines meanwhile (EX_TEMPFAIL).
pub const EXIT_CONFLICT: i32 = 75;

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The file: CSV with a header row (UTF-8) or NDJSON, one record a line.
    pub file: PathBuf,
    /// The format; by default from the file's extension (.csv, .ndjson or .jsonl).
    #[arg(long, value_parser = ["csv", "ndjson"])]
    pub format: Option<String>,
    /// The source department of lines that name none (the column may then be absent).
    #[arg(long, value_name = "NAME")]
    pub department_default: Option<String>,
    /// Also write the rejected lines to this file: CSV when it ends in .csv, else NDJSON.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Lines per transaction.
    #[arg(long, default_value_t = credit_import::BATCH_LINES, value_parser = batch_lines)]
    pub batch_lines: usize,
}

fn batch_lines(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=100_000).contains(&n) => Ok(n),
        _ => Err("a number of lines from 1 to 100000".into()),
    }
}

/// The text after `baohan import --help`: the format and the shipped record categories.
pub fn after_help() -> String {
    format!(
        "Columns (CSV header) or keys (NDJSON): {}.\n\
         subject_type is person or enterprise; subject_id a resident ID or a USCC; polarity,\n\
         points and expires_at default to the category's; occurred_at and expires_at are\n\
         RFC 3339 or YYYY-MM-DD (China time); source_ref is unique per department, so the\n\
         same line again stores nothing. Unknown columns refuse the whole file.\n\n\
         A crash or kill loses at most the batch in flight: the same file again goes on\n\
         after the last committed line.\n\n\
         Exit codes: 0 the file was read to its end (rejected lines are reported, not\n\
         fatal); {EXIT_FORMAT} wrong header or unknown keys; {EXIT_UNREADABLE} unreadable file; {EXIT_CONFLICT} another\n\
         run of the same file is going on; 2 any other error.\n\n\
         Record categories as shipped (catalogue/record_categories.toml; the credit office may\n\
         have edited the database's copy, served at GET /api/v1/record-categories):\n{}",
        credit_import::COLUMNS.join(", "),
        credit_import::shipped_categories_help()
    )
}

fn format_of(args: &ImportArgs) -> anyhow::Result<Format> {
    if let Some(f) = &args.format {
        return f.parse().map_err(anyhow::Error::msg);
    }
    match args
        .file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("csv") => Ok(Format::Csv),
        Some("ndjson" | "jsonl") => Ok(Format::Ndjson),
        _ => anyhow::bail!("name the format with --format csv or --format ndjson"),
    }
}

/// The services' context the import runs with, as the server builds it.
fn context(settings: &Settings, pool: db::DbPool) -> anyhow::Result<services::Context> {
    let master_key = settings.master_key()?;
    Ok(services::Context {
        verifier: Arc::new(services::trust::Verifier::load(
            &pool,
            &settings.certs_dir,
            settings.signature_policy.clone(),
        )?),
        pool,
        clock: services::Clock::default(),
        keys: Arc::new(Keys::from_master(&master_key)?),
        public_base_url: Arc::from(settings.base_url()),
        calendar: Arc::new(settings.calendar()?),
        timestamping: Arc::new(services::trust::TimeStamping::load_or_make(
            &settings.tsa_dir(),
        )?),
        limits: services::Limits::from_settings(settings),
        stats: Arc::new(services::stats::Memo::new(chrono::Duration::seconds(
            settings.stats_cache_seconds.into(),
        ))),
        idempotency: None,
        write_gate: Arc::new(db::write_gate::WriteGate::new()),
        // The import signs nobody in.
        credentials: Arc::new(services::auth::Credentials::none()),
        attachment_dir: Arc::from(settings.data_dir.join("attachments")),
    })
}

/// Prints each rejected line, writes it to the report, and moves the progress bar.
struct Console {
    out: std::io::BufWriter<std::io::Stdout>,
    report: Option<Report>,
    bar: indicatif::ProgressBar,
    error: Option<std::io::Error>,
}

enum Report {
    Csv(Box<csv::Writer<std::fs::File>>),
    Ndjson(std::io::BufWriter<std::fs::File>),
}

impl Report {
    fn create(path: &Path) -> anyhow::Result<Report> {
        let file = std::fs::File::create(path)
            .map_err(|e| anyhow::anyhow!("could not create the report {}: {e}", path.display()))?;
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
        {
            let mut w = csv::Writer::from_writer(file);
            w.write_record(["line", "reason", "field", "message"])?;
            Ok(Report::Csv(Box::new(w)))
        } else {
            Ok(Report::Ndjson(std::io::BufWriter::new(file)))
        }
    }

    fn write(&mut self, r: &Rejection) -> std::io::Result<()> {
        match self {
            Report::Csv(w) => w
                .write_record([
                    r.line.to_string().as_str(),
                    r.reason.as_str(),
                    r.field.as_deref().unwrap_or(""),
                    r.message.as_str(),
                ])
                .map_err(std::io::Error::other),
            Report::Ndjson(w) => {
                serde_json::to_writer(&mut *w, r)?;
                w.write_all(b"\n")
            }
        }
    }

    fn finish(self) -> std::io::Result<()> {
        match self {
            Report::Csv(mut w) => w.flush(),
            Report::Ndjson(mut w) => w.flush(),
        }
    }
}

impl Observer for Console {
    fn rejected(&mut self, r: &Rejection) {
        let field = r
            .field
            .as_deref()
            .map(|f| format!(" ({f})"))
            .unwrap_or_default();
        let printed = self.bar.suspend(|| {
            writeln!(
                self.out,
                "line {}: {}{field}: {}",
                r.line,
                r.reason.as_str(),
                r.message
            )
        });
        let written = self.report.as_mut().map_or(Ok(()), |w| w.write(r));
        if let Err(e) = printed.and(written) {
            self.error.get_or_insert(e);
        }
    }

    fn progress(&mut self, bytes: u64) {
        self.bar.set_position(bytes);
    }
}

/// Runs `baohan import` and answers the exit code.
pub fn run(settings: Settings, args: ImportArgs) -> anyhow::Result<i32> {
    let format = format_of(&args)?;
    let size = match std::fs::metadata(&args.file) {
        Ok(m) if m.is_file() => m.len(),
        Ok(_) => {
            eprintln!("error: {} is not a file", args.file.display());
            return Ok(EXIT_UNREADABLE);
        }
        Err(e) => {
            eprintln!("error: could not read {}: {e}", args.file.display());
            return Ok(EXIT_UNREADABLE);
        }
    };
    let pool = db::connect(&settings.database_url(), 2)?;
    let ctx = context(&settings, pool)?;
    // The record categories the lines name, as the server seeds them.
    services::catalogue::seed(&ctx)?;
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(size);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut console = Console {
        out: std::io::BufWriter::new(std::io::stdout()),
        report: args.report.as_deref().map(Report::create).transpose()?,
        bar,
        error: None,
    };
    let options = Options {
        format,
        department_default: args.department_default.clone(),
        batch_lines: args.batch_lines,
    };
    let started = std::time::Instant::now();
    let result = credit_import::import_file(&ctx, None, &args.file, &options, &mut console);
    console.bar.finish_and_clear();
    let Console {
        mut out,
        report,
        error,
        ..
    } = console;
    if let Some(report) = report {
        report.finish()?;
    }
    if let Some(e) = error {
        anyhow::bail!("could not write the rejected lines: {e}");
    }
    let code = match result {
        Ok(summary) => {
            print_summary(&mut out, &summary, started.elapsed())?;
            0
        }
        Err(ImportError::Format(message)) => {
            eprintln!("error: {}: {message}", args.file.display());
            EXIT_FORMAT
        }
        Err(ImportError::Unreadable(e)) => {
            eprintln!("error: could not read {}: {e}", args.file.display());
            EXIT_UNREADABLE
        }
        Err(ImportError::Service(services::ServiceError::Conflict(message))) => {
            eprintln!("error: {message}");
            EXIT_CONFLICT
        }
        Err(ImportError::Service(e)) => return Err(e.into()),
    };
    out.flush()?;
    Ok(code)
}

fn print_summary(
    out: &mut impl Write,
    s: &Summary,
    elapsed: std::time::Duration,
) -> std::io::Result<()> {
    if s.finished_before {
        writeln!(
            out,
            "already imported: this file (sha256 {}) was imported to its end before \
             ({} lines stored, {} rejected); nothing was stored now",
            s.file_sha256, s.total_stored, s.total_rejected
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "imported {} lines in {:.1}s: {} stored, {} rejected, {} already imported by an \
         earlier run; {} new subjects, {} level changes",
        s.lines_read,
        elapsed.as_secs_f64(),
        s.stored,
        s.rejected,
        s.already_imported,
        s.subjects_created,
        s.level_changes
    )?;
    writeln!(
        out,
        "this file (sha256 {}) over all its runs: {} stored, {} rejected",
        s.file_sha256, s.total_stored, s.total_rejected
    )
}
