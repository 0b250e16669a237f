//! Bulk import by upload (the credit office): a CSV or NDJSON file as the request body,
//! streamed to a temporary file in the data directory (constant memory, within
//! [`IMPORT_BODY_MAX_BYTES`], the one route with a body limit of its own), then
//! imported as `baohan import` does. The answer is the summary and the first rejected
//! lines.

use std::collections::BTreeMap;
use std::io::Write;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::http::StatusCode;
use actix_web::{post, web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Serialize;
use utoipa::openapi::{RefOr, Response};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::services::catalogue::require_credit_office;
use crate::services::credit_import::{self, Format, ImportError, Observer, Options, Rejection};
use crate::web::auth::Authenticated;
use crate::web::error::responses::{error_response, SignedIn};
use crate::web::error::ApiError;
use crate::web::AppState;

/// The path of the upload (under the API prefix), for the edges' body limit.
pub const IMPORT_PATH: &str = "/api/v1/credit/imports";
/// The largest upload: 256 MiB.
pub const IMPORT_BODY_MAX_BYTES: usize = 256 * 1024 * 1024;
/// Rejected lines an answer lists at most (the summary counts them all).
pub const REJECTED_LISTED_MAX: usize = 1000;

/// How much of an upload is gathered before it is written to the spool file.
const SPOOL_PIECE_BYTES: usize = 1024 * 1024;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(post_import);
}

/// A rejected line.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RejectedLineOut {
    /// The line number (a CSV file's header is line 1).
    pub line: u64,
    /// `malformed`, `invalid_subject_type`, `invalid_id`, `unknown_category`,
    /// `bad_date`, `bad_points`, `bad_polarity`, `duplicate_in_file`, `already_stored`
    /// or `invalid_field`.
    pub reason: String,
    /// The field at fault, when one is.
    pub field: Option<String>,
    pub message: String,
}

/// What an import did.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ImportOut {
    /// The import job (one per file, by its SHA-256).
    pub import_id: String,
    pub file_sha256: String,
    /// Records read (non-blank lines after a CSV header).
    pub lines_read: u64,
    /// Lines an earlier run of the same file committed: not stored again.
    pub already_imported: u64,
    pub stored: u64,
    pub rejected: u64,
    /// Over every run of this file, this one included.
    pub total_stored: u64,
    pub total_rejected: u64,
    pub subjects_created: u64,
    pub level_changes: u64,
    /// The file had been imported to its end before: nothing was read.
    pub finished_before: bool,
    /// The first rejected lines (at most 1000), by line number within each batch.
    pub rejected_lines: Vec<RejectedLineOut>,
}

/// The answers of a refused upload.
struct UploadRefused;

impl utoipa::IntoResponses for UploadRefused {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        BTreeMap::from([
            (
                "400".to_string(),
                error_response("The body could not be read (a broken encoding or connection)"),
            ),
            (
                "413".to_string(),
                error_response("The body is larger than 256 MiB"),
            ),
            (
                "415".to_string(),
                error_response(
                    "The body is not text/csv or application/x-ndjson, or its Content-Encoding \
                     is not identity, gzip or deflate",
                ),
            ),
            (
                "422".to_string(),
                error_response(
                    "The header (CSV) or the keys (NDJSON) are not the import format's: \
                     unknown or missing columns are named; nothing was stored",
                ),
            ),
            (
                "409".to_string(),
                error_response("Another run of the same file committed lines meanwhile"),
            ),
        ])
    }
}

/// Collects what the answer lists (the first [`REJECTED_LISTED_MAX`] rejected lines).
#[derive(Default)]
pub(crate) struct Collected {
    pub(crate) rejected: Vec<Rejection>,
}

impl Observer for Collected {
    fn rejected(&mut self, r: &Rejection) {
        if self.rejected.len() < REJECTED_LISTED_MAX {
            self.rejected.push(r.clone());
        }
    }
}

fn format_of(req: &HttpRequest) -> Result<Format, ApiError> {
    let essence = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("text/csv") => Ok(Format::Csv),
        Some("application/x-ndjson" | "application/jsonl" | "application/jsonlines") => {
            Ok(Format::Ndjson)
        }
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the file as text/csv (with a header row) or application/x-ndjson",
        )),
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("an import file may have at most {IMPORT_BODY_MAX_BYTES} bytes"),
    )
}

/// Imports credit records from a CSV file (`text/csv`, with a header row) or an NDJSON
/// file (`application/x-ndjson`), the credit office: the keys of DESIGN section 7
/// (`subject_type`, `subject_id`, `subject_name`, `category`, `polarity`, `points`,
/// `occurred_at`, `expires_at`, `source_department`, `source_ref`, `note`). Good lines
/// are stored in batches, each with its subjects' scores; every other line is reported
/// by number and reason without stopping them. The same file again stores nothing new
/// (and after an interrupted run, goes on where it stopped).
#[utoipa::path(
    tag = "deposit-free",
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body(
        content(
            (String = "text/csv"),
            (String = "application/x-ndjson"),
        ),
        description = "The file, up to 256 MiB",
    ),
    responses(
        (status = 200, description = "The file was read to its end", body = ImportOut),
        SignedIn,
        UploadRefused,
    )
)]
#[post("/credit/imports")]
async fn post_import(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authenticated,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    require_credit_office(&who.0)?;
    let format = format_of(&req)?;
    crate::web::json::check_content_encoding(req.headers())?;
    let dir = state.settings.data_dir.join("imports");
    let body = actix_http::encoding::Decoder::from_headers(payload.into_inner(), req.headers());
    let spool = spool(dir, body, IMPORT_BODY_MAX_BYTES)
        .await
        .map_err(|e| match e {
            Spooled::TooLarge => too_large(),
            Spooled::Unreadable(e) => {
                ApiError::bad_request(format!("the body could not be read: {e}"))
            }
            Spooled::Disk(e) => internal("spooling the upload")(e),
        })?;
    let ctx = who.context(&state);
    let options = Options::new(format);
    let (result, collected) = web::block(move || {
        let mut collected = Collected::default();
        let result =
            credit_import::import_upload(&ctx, &who.0, spool.path(), &options, &mut collected);
        drop(spool);
        (result, collected)
    })
    .await?;
    let summary = match result {
        Ok(summary) => summary,
        Err(ImportError::Format(message)) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_file",
                message,
            ))
        }
        Err(ImportError::Unreadable(e)) => return Err(internal("reading the upload back")(e)),
        Err(ImportError::Service(e)) => return Err(e.into()),
    };
    Ok(HttpResponse::Ok().json(ImportOut {
        import_id: summary.import_id,
        file_sha256: summary.file_sha256,
        lines_read: summary.lines_read,
        already_imported: summary.already_imported,
        stored: summary.stored,
        rejected: summary.rejected,
        total_stored: summary.total_stored,
        total_rejected: summary.total_rejected,
        subjects_created: summary.subjects_created,
        level_changes: summary.level_changes,
        finished_before: summary.finished_before,
        rejected_lines: collected
            .rejected
            .into_iter()
            .map(|r| RejectedLineOut {
                line: r.line,
                reason: r.reason.as_str().to_owned(),
                field: r.field,
                message: r.message,
            })
            .collect(),
    }))
}

/// Why an upload could not be spooled.
pub(crate) enum Spooled {
    /// Over the limit.
    TooLarge,
    /// The client's stream broke (or its encoding).
    Unreadable(String),
    /// The server's disk.
    Disk(std::io::Error),
}

/// Writes an upload to a temporary file in `dir` (created if needed), gathered into
/// pieces of [`SPOOL_PIECE_BYTES`] each written off the request thread (a disk write
/// must not stall the other requests), refusing more than `limit` bytes. The file is
/// removed when the value drops.
pub(crate) async fn spool<S, E>(
    dir: std::path::PathBuf,
    mut body: S,
    limit: usize,
) -> Result<tempfile::NamedTempFile, Spooled>
where
    S: futures_util::Stream<Item = Result<web::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut spool = web::block(move || {
        std::fs::create_dir_all(&dir)?;
        tempfile::NamedTempFile::new_in(&dir)
    })
    .await
    .map_err(|e| Spooled::Disk(std::io::Error::other(e.to_string())))?
    .map_err(Spooled::Disk)?;
    let mut piece: Vec<u8> = Vec::with_capacity(SPOOL_PIECE_BYTES);
    let mut size = 0usize;
    loop {
        let next = body.next().await;
        let done = next.is_none();
        if let Some(chunk) = next {
            let chunk = chunk.map_err(|e| Spooled::Unreadable(e.to_string()))?;
            size += chunk.len();
            if size > limit {
                return Err(Spooled::TooLarge);
            }
            piece.extend_from_slice(&chunk);
        }
        if piece.len() >= SPOOL_PIECE_BYTES || (done && !piece.is_empty()) {
            let full = std::mem::replace(&mut piece, Vec::with_capacity(SPOOL_PIECE_BYTES));
            spool = web::block(move || {
                spool.as_file_mut().write_all(&full)?;
                Ok::<_, std::io::Error>(spool)
            })
            .await
            .map_err(|e| Spooled::Disk(std::io::Error::other(e.to_string())))?
            .map_err(Spooled::Disk)?;
        }
        if done {
            return Ok(spool);
        }
    }
}

/// A failure of the server's own (its disk), logged and answered as internal.
fn internal(what: &'static str) -> impl Fn(std::io::Error) -> ApiError {
    move |e| {
        ApiError::from(crate::services::ServiceError::Internal(
            anyhow::Error::new(e).context(what),
        ))
    }
}
