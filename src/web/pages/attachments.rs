//! Attachments on the pages: the list a parent's page shows (with download links to
//! the API, which the session cookie opens) and the upload form for whoever may add a
//! file, posted as multipart (the CSRF token read from the form's fields), streamed to
//! disk like the API's, then redirected back (post/redirect/get): with a flash message
//! when it was stored, with the reason in the query (`?attach_error=size`) when it was
//! refused, which the parent's page shows beside the field it concerns.

use actix_web::{web, HttpRequest, HttpResponse};

use super::errors::PageError;
use super::i18n::{Lang, Tr};
use super::redirect_with_flash;
use super::session::visitor_of;
use crate::db::models::Attachment;
use crate::domain::attachment::ParentKind;
use crate::services::attachments::{self, Shelf, Upload};
use crate::services::ServiceError;
use crate::web::api::attachments::{read_form, FormRefused};
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/applications/{id}/attachments",
        web::post().to(upload_to_application),
    )
    .route("/claims/{id}/attachments", web::post().to(upload_to_claim));
}

/// One file as a page lists it.
pub struct AttachmentRow {
    pub href: String,
    pub file_name: String,
    pub kind: String,
    pub size: String,
    pub media_type: String,
    pub uploaded_at: String,
}

/// A parent's files as its page shows them, with the upload form when the viewer may
/// add one.
pub struct AttachmentsShown {
    pub rows: Vec<AttachmentRow>,
    pub may_upload: bool,
    /// Where the form posts.
    pub action: String,
    /// The kinds offered: value and words.
    pub kinds: Vec<(String, String)>,
    /// The largest file, in words.
    pub max_size: String,
    /// Why the last upload was refused, shown beside the field it concerns.
    pub error: Option<Refusal>,
}

/// A refused upload as the form shows it: the field and the words.
pub struct Refusal {
    /// `kind` or `file`.
    pub field: &'static str,
    pub message: String,
}

/// The reasons an upload is refused for, as they travel in `?attach_error=`, with the
/// field each concerns and the words' key.
const REFUSALS: [(&str, &str, &str); 6] = [
    ("none", "file", "flash-attach-none"),
    ("type", "file", "flash-attach-type"),
    ("size", "file", "flash-attach-size"),
    ("kind", "kind", "flash-attach-kind"),
    ("full", "file", "flash-attach-full"),
    ("closed", "file", "flash-attach-closed"),
];

impl AttachmentsShown {
    pub fn of(tr: Tr, shelf: &Shelf, action: String, max_bytes: u64) -> AttachmentsShown {
        AttachmentsShown {
            rows: shelf.rows.iter().map(|a| row(tr, a)).collect(),
            may_upload: shelf.may_upload,
            action,
            error: None,
            kinds: shelf
                .kinds
                .iter()
                .map(|k| (k.as_str().to_owned(), tr.t(&format!("attachment-kind-{k}"))))
                .collect(),
            max_size: size_words(max_bytes),
        }
    }
}

impl AttachmentsShown {
    /// The words of the refusal when it concerns `field` (`kind` or `file`).
    pub fn error_on(&self, field: &str) -> Option<&str> {
        self.error
            .as_ref()
            .filter(|e| e.field == field)
            .map(|e| e.message.as_str())
    }

    /// With the refusal the upload's redirect named in the query, if any (an unknown code
    /// is ignored: the query is the visitor's to type).
    pub fn refused(mut self, tr: Tr, req: &HttpRequest) -> AttachmentsShown {
        let code =
            web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
                .ok()
                .and_then(|q| q.get("attach_error").cloned());
        self.error = code.and_then(|code| {
            REFUSALS
                .iter()
                .find(|(c, _, _)| *c == code)
                .map(|(_, field, key)| Refusal {
                    field,
                    message: tr.t(key),
                })
        });
        self
    }
}

/// Back to the parent's page, at its files, saying why the upload was refused.
fn refused(back: &str, code: &'static str) -> HttpResponse {
    debug_assert!(REFUSALS.iter().any(|(c, _, _)| *c == code));
    HttpResponse::SeeOther()
        .insert_header((
            actix_web::http::header::LOCATION,
            format!("{back}?attach_error={code}#attachments"),
        ))
        .finish()
}

fn row(tr: Tr, a: &Attachment) -> AttachmentRow {
    AttachmentRow {
        href: format!("{}/attachments/{}", crate::web::API_PREFIX, a.id),
        file_name: a.file_name.clone(),
        kind: tr.t(&format!("attachment-kind-{}", a.kind)),
        size: size_words(u64::try_from(a.size_bytes).unwrap_or_default()),
        media_type: match a.media_type.as_str() {
            "application/pdf" => "PDF",
            "image/png" => "PNG",
            "image/jpeg" => "JPEG",
            _ => "OFD",
        }
        .to_owned(),
        uploaded_at: super::enterprise::when(a.created_at),
    }
}

/// A size as people read it: bytes, KB or MB (powers of 1024, one decimal).
pub fn size_words(bytes: u64) -> String {
    const KB: u64 = 1024;
    const MB: u64 = 1024 * 1024;
    if bytes < KB {
        format!("{bytes} B")
    } else if bytes < MB {
        format!("{:.1} KB", bytes as f64 / KB as f64)
    } else {
        format!("{:.1} MB", bytes as f64 / MB as f64)
    }
}

async fn upload_to_application(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: actix_multipart::Multipart,
) -> Result<HttpResponse, PageError> {
    let id = id.into_inner();
    let back = format!("/applications/{id}");
    upload(req, state, form, ParentKind::Application, id, back).await
}

async fn upload_to_claim(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: actix_multipart::Multipart,
) -> Result<HttpResponse, PageError> {
    let id = id.into_inner();
    let back = format!("/claims/{id}");
    upload(req, state, form, ParentKind::Claim, id, back).await
}

async fn upload(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: actix_multipart::Multipart,
    parent: ParentKind,
    parent_id: String,
    back: String,
) -> Result<HttpResponse, PageError> {
    let visitor = visitor_of(&req)
        .await?
        .ok_or_else(|| PageError::SignIn { next: back.clone() })?;
    let limit = state.ctx.limits.attachment_max_bytes;
    let read = match read_form(form, state.ctx.attachment_dir.join("incoming"), limit).await {
        Ok(read) => read,
        Err(FormRefused::TooLarge) => return Ok(refused(&back, "size")),
        Err(FormRefused::Unreadable(m)) => return Err(PageError::BadForm(m)),
        Err(FormRefused::Disk(e)) => {
            return Err(PageError::Service(ServiceError::Internal(
                anyhow::Error::new(e).context("spooling an upload"),
            )))
        }
    };
    visitor.check_csrf(&read.csrf_token)?;
    let Some((spooled, file_name)) = read.file.filter(|(_, name)| !name.is_empty()) else {
        return Ok(refused(&back, "none"));
    };
    let upload = Upload {
        parent,
        parent_id,
        kind: read.kind,
        file_name,
    };
    let ctx = state.ctx.clone();
    let actor = visitor.actor.clone();
    let done = web::block(move || {
        let done = attachments::upload(&ctx, &actor, &upload, spooled.path());
        drop(spooled);
        done
    })
    .await?;
    let code = match done {
        Ok(_) => return Ok(redirect_with_flash(&req, &back, "flash-attached")),
        Err(ServiceError::Invalid { field, message }) => match field.as_str() {
            "kind" => "kind",
            _ if message == "is empty" => "none",
            _ if message.starts_with("must be at most") => "size",
            _ => "type",
        },
        Err(ServiceError::InvalidTransition { .. }) => "closed",
        Err(ServiceError::Conflict(_)) => "full",
        Err(e) => return Err(PageError::Service(e)),
    };
    Ok(refused(&back, code))
}

/// The words of the kinds, for tests of the catalogues.
pub fn kind_words(lang: Lang) -> Vec<String> {
    let tr = Tr::new(lang);
    crate::domain::attachment::AttachmentKind::ALL
        .iter()
        .map(|k| tr.t(&format!("attachment-kind-{k}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_bytes_kilobytes_and_megabytes() {
        assert_eq!(size_words(512), "512 B");
        assert_eq!(size_words(1536), "1.5 KB");
        assert_eq!(size_words(10 * 1024 * 1024), "10.0 MB");
    }

    #[test]
    fn every_kind_has_words_in_both_languages() {
        for lang in Lang::ALL {
            for words in kind_words(lang) {
                assert!(!words.starts_with("attachment-kind-"), "{words}");
            }
        }
    }
}
