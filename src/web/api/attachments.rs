//! Attachments: an application's documents and a claim's evidence. An upload is a
//! `multipart/form-data` body with a `kind` field and a `file` part, streamed to a
//! temporary file (never held in memory; within the configured size, the one body a
//! little larger than the global limit besides the bulk import's), then kept by the
//! service under its SHA-256. Downloads carry the type found from the content, never
//! the uploader's, with `X-Content-Type-Options: nosniff` and the name encoded for any
//! browser (RFC 6266 with RFC 5987's `filename*`).

use std::collections::BTreeMap;

use actix_web::http::header::{CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use futures_util::TryStreamExt;
use serde::Serialize;
use utoipa::openapi::{RefOr, Response};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::db::models::Attachment;
use crate::domain::attachment::{AttachmentKind, FileType, ParentKind};
use crate::services::attachments::{self, Upload};
use crate::services::ServiceError;
use crate::web::api::credit_import::{spool, Spooled};
use crate::web::api::dto::{china_time, Binary};
use crate::web::auth::Authenticated;
use crate::web::error::responses::{error_response, NotFound, SignedIn};
use crate::web::error::ApiError;
use crate::web::AppState;

/// Room for a multipart body's boundaries, part headers and small fields on top of the
/// file itself, in the edges' body limit for an upload.
pub const MULTIPART_OVERHEAD_BYTES: usize = 64 * 1024;
/// The longest text field of an upload form (`kind`, `csrf_token`).
const TEXT_FIELD_MAX_BYTES: usize = 1024;
/// The most parts an upload form may have.
const PARTS_MAX: usize = 8;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(upload_to_application)
        .service(list_of_application)
        .service(upload_to_claim)
        .service(list_of_claim)
        .service(download);
}

/// Whether `path` is an attachment upload, through the API or the pages:
/// `[/api/v1]/applications/{id}/attachments` or `[/api/v1]/claims/{id}/attachments`.
/// Its body is streamed to disk, within a body limit of its own.
pub fn is_upload_path(path: &str) -> bool {
    let path = path.strip_prefix(crate::web::API_PREFIX).unwrap_or(path);
    let parts: Vec<&str> = path.split('/').collect();
    matches!(
        parts.as_slice(),
        ["", "applications" | "claims", id, "attachments"] if !id.is_empty()
    )
}

/// An attachment as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AttachmentOut {
    pub id: String,
    pub parent_kind: ParentKind,
    pub parent_id: String,
    pub kind: AttachmentKind,
    /// The name as uploaded, without any path or control characters.
    pub file_name: String,
    /// The type found from the content (PDF, PNG, JPEG or OFD).
    pub media_type: FileType,
    pub size_bytes: i64,
    /// SHA-256 of the content, lower-case hex (also in the audit log's upload entry).
    pub sha256: String,
    pub uploaded_at: String,
    pub uploader_organization_id: String,
    /// Where to download it.
    pub download_url: String,
}

impl From<&Attachment> for AttachmentOut {
    fn from(a: &Attachment) -> Self {
        AttachmentOut {
            id: a.id.clone(),
            parent_kind: a.parent_kind,
            parent_id: a.parent_id.clone(),
            kind: a.kind,
            file_name: a.file_name.clone(),
            media_type: a.media_type,
            size_bytes: a.size_bytes,
            sha256: a.sha256.clone(),
            uploaded_at: china_time(a.created_at),
            uploader_organization_id: a.uploader_organization_id.clone(),
            download_url: format!("{}/attachments/{}", crate::web::API_PREFIX, a.id),
        }
    }
}

/// The form of an upload, for the description.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// For an application: `business_licence`, `qualification_certificate`,
    /// `tender_file` or `other`; for a claim: `claim_evidence` or `other`.
    kind: String,
    /// The file: PDF, PNG, JPEG or OFD (judged by its content).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// The answers of a refused upload.
struct UploadRefused;

impl utoipa::IntoResponses for UploadRefused {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        BTreeMap::from([
            (
                "400".to_string(),
                error_response(
                    "The form could not be read (no file part, an unknown or repeated part, a \
                     broken body), or an Idempotency-Key was sent (uploads take none: the same \
                     file sent again is the attachment the parent has)",
                ),
            ),
            (
                "409".to_string(),
                error_response(
                    "The parent no longer takes files (details.current_state), or holds the \
                     most it may",
                ),
            ),
            (
                "413".to_string(),
                error_response("The file is larger than the configured limit"),
            ),
            (
                "415".to_string(),
                error_response(
                    "The body is not multipart/form-data, or is sent with a Content-Encoding",
                ),
            ),
            (
                "422".to_string(),
                error_response(
                    "The kind does not fit the parent, or the file is empty or not a PDF, PNG, \
                     JPEG or OFD file by its content (details.field names which)",
                ),
            ),
        ])
    }
}

/// An upload form as read: the file spooled to disk, its name as sent, the small
/// fields.
pub(crate) struct ReadForm {
    pub(crate) file: Option<(tempfile::NamedTempFile, String)>,
    pub(crate) kind: String,
    pub(crate) csrf_token: String,
}

/// Why an upload form could not be read.
pub(crate) enum FormRefused {
    TooLarge,
    Unreadable(String),
    Disk(std::io::Error),
}

impl FormRefused {
    fn into_api(self, limit: u64) -> ApiError {
        match self {
            FormRefused::TooLarge => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("a file may have at most {limit} bytes"),
            ),
            FormRefused::Unreadable(m) => ApiError::bad_request(m),
            FormRefused::Disk(e) => ApiError::from(ServiceError::Internal(
                anyhow::Error::new(e).context("spooling an upload"),
            )),
        }
    }
}

/// Reads an upload form: one `file` part spooled into `dir` (at most `limit` bytes), and
/// the text fields `kind` and `csrf_token` (small); any other part is refused.
pub(crate) async fn read_form(
    mut form: actix_multipart::Multipart,
    dir: std::path::PathBuf,
    limit: u64,
) -> Result<ReadForm, FormRefused> {
    let unreadable = |e: actix_multipart::MultipartError| FormRefused::Unreadable(e.to_string());
    let mut read = ReadForm {
        file: None,
        kind: String::new(),
        csrf_token: String::new(),
    };
    let mut parts = 0;
    while let Some(mut field) = form.try_next().await.map_err(unreadable)? {
        parts += 1;
        if parts > PARTS_MAX {
            return Err(FormRefused::Unreadable(format!(
                "an upload has at most {PARTS_MAX} parts"
            )));
        }
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                if read.file.is_some() {
                    return Err(FormRefused::Unreadable("one file per upload".into()));
                }
                let disposition = field.content_disposition();
                let file_name = disposition
                    .and_then(|d| d.get_filename_ext())
                    .and_then(|ext| String::from_utf8(ext.value.clone()).ok())
                    .or_else(|| {
                        disposition
                            .and_then(|d| d.get_filename())
                            .map(str::to_owned)
                    })
                    .unwrap_or_default();
                let limit = usize::try_from(limit).unwrap_or(usize::MAX);
                let spooled = spool(dir.clone(), &mut field, limit)
                    .await
                    .map_err(|e| match e {
                        Spooled::TooLarge => FormRefused::TooLarge,
                        Spooled::Unreadable(m) => FormRefused::Unreadable(m),
                        Spooled::Disk(e) => FormRefused::Disk(e),
                    })?;
                read.file = Some((spooled, file_name));
            }
            "kind" | "csrf_token" => {
                let mut bytes = Vec::new();
                while let Some(chunk) = field.try_next().await.map_err(unreadable)? {
                    if bytes.len() + chunk.len() > TEXT_FIELD_MAX_BYTES {
                        return Err(FormRefused::Unreadable(format!(
                            "the field {name} is too long"
                        )));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                let text = String::from_utf8(bytes)
                    .map_err(|_| FormRefused::Unreadable(format!("{name} is not UTF-8")))?;
                if name == "kind" {
                    read.kind = text;
                } else {
                    read.csrf_token = text;
                }
            }
            other => {
                return Err(FormRefused::Unreadable(format!(
                    "an upload has the parts kind and file, not {:?}",
                    other.chars().take(40).collect::<String>()
                )))
            }
        }
    }
    Ok(read)
}

/// The form of `req`, or 415 when it is not `multipart/form-data` or is encoded.
fn multipart_of(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<actix_multipart::Multipart, ApiError> {
    let essence = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    let encoded = req
        .headers()
        .get_all(actix_web::http::header::CONTENT_ENCODING)
        .any(|v| {
            !v.to_str()
                .is_ok_and(|v| v.trim().eq_ignore_ascii_case("identity"))
        });
    if essence.as_deref() != Some("multipart/form-data") || encoded {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the file as multipart/form-data (a kind field and a file part), \
             without a Content-Encoding",
        ));
    }
    Ok(actix_multipart::Multipart::new(
        req.headers(),
        payload.into_inner(),
    ))
}

async fn upload(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authenticated,
    payload: web::Payload,
    parent: ParentKind,
    parent_id: String,
) -> Result<HttpResponse, ApiError> {
    let form = multipart_of(&req, payload)?;
    let limit = state.ctx.limits.attachment_max_bytes;
    let read = read_form(form, state.ctx.attachment_dir.join("incoming"), limit)
        .await
        .map_err(|e| e.into_api(limit))?;
    let Some((spooled, file_name)) = read.file else {
        return Err(ApiError::bad_request("the form has no file part"));
    };
    let upload = Upload {
        parent,
        parent_id,
        kind: read.kind,
        file_name,
    };
    let ctx = who.context(&state);
    let done = web::block(move || {
        let done = attachments::upload(&ctx, &who.0, &upload, spooled.path());
        drop(spooled);
        done
    })
    .await??;
    let status = if done.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(AttachmentOut::from(&done.attachment)))
}

/// Attaches a document to an application: the bidder, while the issuer underwrites it
/// (submitted, approved or paid). A business licence, qualification certificate,
/// tender file or other document, as PDF, PNG, JPEG or OFD (judged by the content), up
/// to `BAOHAN_ATTACHMENT_MAX_BYTES`, at most 20 per application. The same content sent
/// again answers 200 with the attachment the application has; the upload is audited
/// with the file's SHA-256.
#[utoipa::path(
    tag = "applications",
    params(("id" = String, Path, description = "Application id")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Attached", body = AttachmentOut),
        (status = 200, description = "The application holds this content already", body = AttachmentOut),
        SignedIn,
        NotFound,
        UploadRefused,
    )
)]
#[post("/applications/{id}/attachments")]
async fn upload_to_application(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    upload(
        req,
        state,
        who,
        payload,
        ParentKind::Application,
        id.into_inner(),
    )
    .await
}

/// Attaches evidence to a claim: the agency that filed it, until the issuer decides.
/// `claim_evidence` or `other`, as PDF, PNG, JPEG or OFD, at most 20 per claim; audited
/// with the file's SHA-256.
#[utoipa::path(
    tag = "claims",
    params(("id" = String, Path, description = "Claim id")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Attached", body = AttachmentOut),
        (status = 200, description = "The claim holds this content already", body = AttachmentOut),
        SignedIn,
        NotFound,
        UploadRefused,
    )
)]
#[post("/claims/{id}/attachments")]
async fn upload_to_claim(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    upload(req, state, who, payload, ParentKind::Claim, id.into_inner()).await
}

async fn list(
    state: web::Data<AppState>,
    who: Authenticated,
    parent: ParentKind,
    id: String,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let rows = web::block(move || attachments::list(&ctx, &who.0, parent, &id)).await??;
    let out: Vec<AttachmentOut> = rows.iter().map(AttachmentOut::from).collect();
    Ok(HttpResponse::Ok().json(out))
}

/// An application's documents, oldest first: its enterprise, its issuer, the operator;
/// the project's agency and tenderee after bid opening once it is a bond. Anyone else,
/// and the agency before opening, gets the 404 of an application that does not exist.
#[utoipa::path(
    tag = "applications",
    params(("id" = String, Path, description = "Application id")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The application's attachments", body = Vec<AttachmentOut>),
        SignedIn,
        NotFound,
    )
)]
#[get("/applications/{id}/attachments")]
async fn list_of_application(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    list(state, who, ParentKind::Application, id.into_inner()).await
}

/// A claim's evidence, oldest first: the agency that filed it, the issuer, the bidder
/// and the operator; anyone else gets the 404 of a claim that does not exist.
#[utoipa::path(
    tag = "claims",
    params(("id" = String, Path, description = "Claim id")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The claim's attachments", body = Vec<AttachmentOut>),
        SignedIn,
        NotFound,
    )
)]
#[get("/claims/{id}/attachments")]
async fn list_of_claim(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    list(state, who, ParentKind::Claim, id.into_inner()).await
}

/// `Content-Disposition` for a download of `name`: an ASCII `filename` for old clients
/// (anything else as `_`) and the exact name in RFC 5987's `filename*` (UTF-8,
/// percent-encoded), which browsers prefer (RFC 6266).
pub fn content_disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if (c.is_ascii_graphic() || c == ' ') && c != '"' && c != '\\' && c != '%' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for byte in name.bytes() {
        let attr_char = byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte);
        if attr_char {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// Downloads an attachment, to whoever may see its parent: the bytes as uploaded, with
/// the type found from the content, `X-Content-Type-Options: nosniff`, and the file
/// name in `Content-Disposition` (RFC 6266/5987). Anyone else gets the 404 of an id
/// that does not exist.
#[utoipa::path(
    tags = ["applications", "claims"],
    params(("id" = String, Path, description = "Attachment id")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The file, as uploaded",
            content(
                (Binary = "application/pdf"),
                (Binary = "image/png"),
                (Binary = "image/jpeg"),
                (Binary = "application/ofd"),
            ),
            headers(
                ("Content-Disposition" = String, description = "attachment, with the file name (filename*: UTF-8)"),
                ("X-Content-SHA256" = String, description = "SHA-256 of the content, lower-case hex"),
            )),
        SignedIn,
        NotFound,
    )
)]
#[get("/attachments/{id}")]
async fn download(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let id = id.into_inner();
    let (attachment, bytes) =
        web::block(move || attachments::download(&ctx, &who.0, &id)).await??;
    Ok(HttpResponse::Ok()
        .content_type(attachment.media_type.media_type())
        .insert_header((
            "Content-Disposition",
            content_disposition(&attachment.file_name),
        ))
        .insert_header((X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header(("X-Content-SHA256", attachment.sha256.clone()))
        // Opened in place by mistake, the file runs nothing of the exchange's origin.
        .insert_header(("Content-Security-Policy", "default-src 'none'; sandbox"))
        .body(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_paths_are_known_with_and_without_the_api_prefix() {
        assert!(is_upload_path("/api/v1/applications/a-1/attachments"));
        assert!(is_upload_path("/api/v1/claims/c-1/attachments"));
        assert!(is_upload_path("/applications/a-1/attachments"));
        assert!(is_upload_path("/claims/c-1/attachments"));
        assert!(!is_upload_path("/api/v1/applications//attachments"));
        assert!(!is_upload_path("/api/v1/applications/a-1/attachments/x"));
        assert!(!is_upload_path("/api/v1/attachments/a-1"));
        assert!(!is_upload_path("/api/v1/projects/p-1/attachments"));
    }

    #[test]
    fn a_chinese_name_is_sent_in_both_forms() {
        assert_eq!(
            content_disposition("营业执照 2026.pdf"),
            "attachment; filename=\"____ 2026.pdf\"; \
             filename*=UTF-8''%E8%90%A5%E4%B8%9A%E6%89%A7%E7%85%A7%202026.pdf"
        );
        // Quotes, backslashes and percent signs cannot break out of the quoted form.
        assert_eq!(
            content_disposition("a\"b\\c%.pdf"),
            "attachment; filename=\"a_b_c_.pdf\"; filename*=UTF-8''a%22b%5Cc%25.pdf"
        );
    }
}
