//! The credit office's pages (信用办): the dashboard with its counts, finding a subject's
//! archive by its resident ID or USCC (posted, so the number never sits in a URL or an
//! access log; every read is a look the subject is shown), adding a record, and
//! cancelling one as a correction or a credit repair (信用修复).

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::agency::china_time;
use super::credit::signed;
use super::errors::PageError;
use super::forms::{form_page, submit, FieldErrors, Outcome, Typed};
use super::i18n::{Lang, Tr};
use super::session::{SignedForm, Visitor};
use super::{page, redirect_with_flash, Chrome, Nav};
use crate::domain::party::Role;
use crate::services::credit::{self, Archive, NewCancellation, NewRecord};
use crate::services::credit_office::{self, Dashboard};
use crate::services::{catalogue, credit_import, ServiceError};
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/credit/office", web::get().to(dashboard))
        .route("/credit/office/lookup", web::post().to(lookup))
        .route("/credit/office/records", web::post().to(add_record))
        .route(IMPORT_UPLOAD_PATH, web::post().to(upload_import))
        .route("/credit/office/subjects/{id}", web::get().to(subject))
        .route(
            "/credit/office/records/{id}/cancellation",
            web::post().to(cancel),
        );
}

/// The fields of the record form, as the API's record body names them.
const RECORD_FIELDS: [&str; 11] = [
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
/// The fields of the lookup form.
const LOOKUP_FIELDS: [&str; 2] = ["lookup_type", "lookup_id"];
/// The longest value a field keeps as typed (the service refuses more).
const FIELD_MAX_CHARS: usize = 1100;

/// An import job as the desk lists it.
struct ImportView {
    /// The first 12 hex digits of the file's SHA-256.
    file: String,
    format: String,
    started_at: String,
    last_line: i64,
    stored: i64,
    rejected: i64,
    finished: bool,
}

/// Where the desk's form uploads an import file (its body may be as large as the API's
/// upload: see `http_edges`).
pub const IMPORT_UPLOAD_PATH: &str = "/credit/office/imports";
/// Rejected lines the result page lists at most (the summary counts them all).
const REJECTED_SHOWN: usize = 200;

/// Import jobs the desk lists, newest first.
const IMPORTS_SHOWN: i64 = 20;

#[derive(Template)]
#[template(path = "pages/credit/office.html")]
struct DashboardPage {
    chrome: Chrome,
    counts: Dashboard,
    imports: Vec<ImportView>,
    categories: Vec<(String, String, bool)>,
    form: Typed,
    errors: FieldErrors,
}

async fn render_dashboard(
    req: &HttpRequest,
    state: &AppState,
    visitor: &Visitor,
    form: Typed,
    errors: FieldErrors,
) -> Result<HttpResponse, PageError> {
    let (ctx, actor) = (state.ctx.clone(), visitor.actor.clone());
    let (counts, categories, imports) = web::block(move || {
        Ok::<_, ServiceError>((
            credit_office::dashboard(&ctx, &actor)?,
            catalogue::list_categories(&ctx)?,
            credit_import::recent_jobs(&ctx, &actor, IMPORTS_SHOWN)?,
        ))
    })
    .await??;
    let lang = Lang::of(req);
    let tr = Tr::new(lang);
    let chrome = Chrome::new(req, Some(visitor), &tr.t("office-title"), Nav::Role);
    let chosen = form.value("category");
    let refused = !errors.is_empty();
    let html = DashboardPage {
        chrome: chrome.clone(),
        counts,
        imports: imports
            .into_iter()
            .map(|j| ImportView {
                file: j.file_sha256.chars().take(12).collect(),
                format: j.format,
                started_at: china_time(j.started_at),
                last_line: j.last_line,
                stored: j.lines_stored,
                rejected: j.lines_rejected,
                finished: j.status == "finished",
            })
            .collect(),
        categories: categories
            .into_iter()
            .map(|e| {
                let name = match lang {
                    Lang::Zh => e.category.name_zh,
                    Lang::En => e.category.name_en,
                };
                let selected = e.code == chosen;
                (e.code, name, selected)
            })
            .collect(),
        form,
        errors,
    }
    .render()?;
    Ok(form_page(&chrome, html, refused))
}

async fn dashboard(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
) -> Result<HttpResponse, PageError> {
    visitor.require(&[Role::Operator])?;
    render_dashboard(
        &req,
        &state,
        &visitor,
        Typed::default(),
        FieldErrors::default(),
    )
    .await
}

/// A record of an archive as the office's page shows it.
struct RecordView {
    id: String,
    category: String,
    points: String,
    in_force: bool,
    cancelled: bool,
    disputed: bool,
    occurred_on: String,
    department: String,
    reference: String,
}

#[derive(Template)]
#[template(path = "pages/credit/office_subject.html")]
struct SubjectPage {
    chrome: Chrome,
    masked_id: String,
    level: String,
    score: i32,
    on_dishonesty_list: bool,
    records: Vec<RecordView>,
}

fn render_subject(
    req: &HttpRequest,
    visitor: &Visitor,
    archive: &Archive,
) -> Result<HttpResponse, PageError> {
    let lang = Lang::of(req);
    let tr = Tr::new(lang);
    let subject = archive
        .subject
        .as_ref()
        .ok_or_else(|| ServiceError::NotFound("credit subject".into()))?;
    let chrome = Chrome::new(
        req,
        Some(visitor),
        &tr.t1("office-subject-title", "name", subject.name.clone()),
        Nav::Role,
    );
    let html = SubjectPage {
        chrome: chrome.clone(),
        masked_id: subject.masked_id.clone(),
        level: archive.standing.level.to_string(),
        score: archive.standing.score,
        on_dishonesty_list: subject.serious_dishonesty_count > 0,
        records: archive
            .records
            .iter()
            .map(|r| RecordView {
                id: r.record.id.clone(),
                category: match lang {
                    Lang::Zh => r.category_name_zh.clone(),
                    Lang::En => r.category_name_en.clone(),
                },
                points: match r.record.cancels {
                    Some(_) => tr.t("office-cancelling"),
                    None => signed(crate::domain::credit::signed_points(
                        r.record.polarity,
                        r.record.points,
                    )),
                },
                in_force: r.record.in_force,
                cancelled: r.cancelled_by.is_some(),
                disputed: r.disputed,
                occurred_on: china_time(r.record.occurred_at).chars().take(10).collect(),
                department: r.record.source_department.clone(),
                reference: r.record.source_ref.clone(),
            })
            .collect(),
    }
    .render()?;
    Ok(page(&chrome, html))
}

/// Finds an archive by the number typed; the answer is the archive itself (a redirect
/// would read it a second time, a second look the subject would be shown).
async fn lookup(
    req: HttpRequest,
    state: web::Data<AppState>,
    posted: SignedForm<Typed>,
) -> Result<HttpResponse, PageError> {
    let SignedForm { visitor, form } = posted;
    visitor.require(&[Role::Operator])?;
    let kept = form.only(&LOOKUP_FIELDS, FIELD_MAX_CHARS);
    let (ctx, actor) = (state.ctx.clone(), visitor.actor.clone());
    let (kind, number) = (kept.value("lookup_type"), kept.value("lookup_id"));
    let found = web::block(move || credit::find_archive(&ctx, &actor, &kind, &number)).await?;
    let tr = Tr::new(Lang::of(&req));
    let problem = match found {
        Ok(archive) => return render_subject(&req, &visitor, &archive),
        Err(ServiceError::Invalid { message, .. }) => {
            FieldErrors::one(tr, "lookup_id", "office-error-lookup-id", &message)
        }
        Err(ServiceError::NotFound(_)) => {
            FieldErrors::one(tr, "lookup_id", "office-error-no-archive", "")
        }
        Err(e) => return Err(e.into()),
    };
    // The number typed is not shown again: it stays out of the page.
    render_dashboard(&req, &state, &visitor, Typed::default(), problem).await
}

async fn subject(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    visitor.require(&[Role::Operator])?;
    let (ctx, actor) = (state.ctx.clone(), visitor.actor.clone());
    let archive = web::block(move || credit::archive(&ctx, &actor, &id)).await??;
    render_subject(&req, &visitor, &archive)
}

async fn add_record(
    req: HttpRequest,
    state: web::Data<AppState>,
    posted: SignedForm<Typed>,
) -> Result<HttpResponse, PageError> {
    let SignedForm { visitor, form } = posted;
    visitor.require(&[Role::Operator])?;
    let kept = form.only(&RECORD_FIELDS, FIELD_MAX_CHARS);
    let points = match kept.optional("points") {
        None => None,
        Some(p) => match p.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                let tr = Tr::new(Lang::of(&req));
                let errors = FieldErrors::one(tr, "points", "office-error-points", "");
                return render_dashboard(&req, &state, &visitor, kept, errors).await;
            }
        },
    };
    let record = NewRecord {
        subject_type: kept.value("subject_type"),
        subject_id: kept.value("subject_id"),
        subject_name: kept.value("subject_name"),
        category: kept.value("category"),
        polarity: kept.optional("polarity"),
        points,
        occurred_at: kept.value("occurred_at"),
        expires_at: kept.optional("expires_at"),
        source_department: kept.value("source_department"),
        source_ref: kept.value("source_ref"),
        note: kept.optional("note"),
    };
    let (ctx, actor) = (state.ctx.clone(), visitor.actor.clone());
    match submit(Some("source_ref"), move || {
        credit::add_record(&ctx, &actor, record)
    })
    .await?
    {
        Outcome::Done(recorded) => Ok(redirect_with_flash(
            &req,
            &format!("/credit/office/subjects/{}", recorded.subject.id),
            "flash-record-added",
        )),
        Outcome::Refused { field, message } => {
            let tr = Tr::new(Lang::of(&req));
            let key = format!("office-error-{}", field.replace('_', "-"));
            let errors = FieldErrors::one(tr, &field, &key, &message);
            render_dashboard(&req, &state, &visitor, kept, errors).await
        }
    }
}

/// Cancels a record from the subject's page. A refusal (a reference used already, a
/// repair of an unpaid default, a record out of force) is the page's error.
async fn cancel(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    posted: SignedForm<Typed>,
) -> Result<HttpResponse, PageError> {
    let SignedForm { visitor, form } = posted;
    visitor.require(&[Role::Operator])?;
    let (ctx, actor) = (state.ctx.clone(), visitor.actor.clone());
    let cancellation = NewCancellation {
        cancels: id.into_inner(),
        reason: form.value("reason"),
        source_department: form.value("source_department"),
        source_ref: form.value("source_ref"),
        note: form.optional("note"),
    };
    let recorded = web::block(move || credit::cancel_record(&ctx, &actor, cancellation)).await??;
    Ok(redirect_with_flash(
        &req,
        &format!("/credit/office/subjects/{}", recorded.subject.id),
        "flash-record-cancelled",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_has_its_error_in_both_languages() {
        super::super::forms::checks::error_keys_exist("office-error-", &RECORD_FIELDS);
    }
}

// ---- Bulk import from the desk ----------------------------------------------------------

/// A rejected line as the result page lists it.
struct RejectedView {
    line: u64,
    reason: String,
    field: String,
    message: String,
}

#[derive(Template)]
#[template(path = "pages/credit/import_result.html")]
struct ImportResultPage {
    chrome: Chrome,
    file: String,
    summary: credit_import::Summary,
    rejected: Vec<RejectedView>,
    more_rejected: u64,
}

/// The format of an uploaded file, by its name's extension, else its declared type.
fn upload_format(name: Option<&str>, declared: Option<&str>) -> Option<credit_import::Format> {
    let name = name.unwrap_or_default().to_ascii_lowercase();
    if name.ends_with(".csv") {
        return Some(credit_import::Format::Csv);
    }
    if name.ends_with(".ndjson") || name.ends_with(".jsonl") {
        return Some(credit_import::Format::Ndjson);
    }
    match declared.unwrap_or_default() {
        "text/csv" => Some(credit_import::Format::Csv),
        "application/x-ndjson" | "application/jsonl" => Some(credit_import::Format::Ndjson),
        _ => None,
    }
}

/// The desk's import form: a CSV or NDJSON file (multipart, so the CSRF token is read
/// from the form's fields here), spooled to disk and imported as `baohan import` does;
/// the answer is the run's summary and its first rejected lines by line number. The
/// token is checked before anything is imported.
async fn upload_import(
    req: HttpRequest,
    state: web::Data<AppState>,
    mut form: actix_multipart::Multipart,
) -> Result<HttpResponse, PageError> {
    use crate::web::api::credit_import::{spool, Collected, Spooled};
    use futures_util::TryStreamExt;
    let visitor = super::session::visitor_of(&req)
        .await?
        .ok_or_else(|| PageError::SignIn {
            next: "/credit/office".to_owned(),
        })?;
    let dir = state.settings.data_dir.join("imports");
    let tr = Tr::new(Lang::of(&req));
    let (mut csrf, mut file, mut format, mut name) = (String::new(), None, None, String::new());
    while let Some(mut field) = form
        .try_next()
        .await
        .map_err(|e| PageError::BadForm(e.to_string()))?
    {
        let field_name = field.name().unwrap_or_default().to_owned();
        match field_name.as_str() {
            "file" => {
                name = field
                    .content_disposition()
                    .and_then(|d| d.get_filename())
                    .unwrap_or_default()
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect();
                format = upload_format(Some(&name), field.content_type().map(|m| m.essence_str()));
                let spooled = spool(
                    dir.clone(),
                    &mut field,
                    crate::web::api::credit_import::IMPORT_BODY_MAX_BYTES,
                )
                .await
                .map_err(|e| match e {
                    Spooled::TooLarge => PageError::BadForm("the file is too large".into()),
                    Spooled::Unreadable(e) => PageError::BadForm(e),
                    Spooled::Disk(e) => {
                        PageError::Service(ServiceError::Internal(anyhow::Error::new(e)))
                    }
                })?;
                file = Some(spooled);
            }
            other => {
                let keep = other == "csrf_token";
                let mut bytes = Vec::new();
                while let Some(chunk) = field
                    .try_next()
                    .await
                    .map_err(|e| PageError::BadForm(e.to_string()))?
                {
                    if bytes.len() + chunk.len() > 1024 {
                        return Err(PageError::BadForm(format!("the field {other} is too long")));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                if keep {
                    csrf = String::from_utf8_lossy(&bytes).into_owned();
                }
            }
        }
    }
    visitor.check_csrf(&csrf)?;
    visitor.require(&[Role::Operator])?;
    let refused = |key: &str| FieldErrors::one(tr, "file", key, "");
    let (Some(file), false) = (file, name.is_empty()) else {
        return render_dashboard(
            &req,
            &state,
            &visitor,
            Typed::default(),
            refused("office-import-error-none"),
        )
        .await;
    };
    let Some(format) = format else {
        return render_dashboard(
            &req,
            &state,
            &visitor,
            Typed::default(),
            refused("office-import-error-format"),
        )
        .await;
    };
    let (ctx, actor) = (state.ctx.clone(), visitor.actor.clone());
    let (result, collected) = web::block(move || {
        let mut collected = Collected::default();
        let options = credit_import::Options::new(format);
        let result =
            credit_import::import_upload(&ctx, &actor, file.path(), &options, &mut collected);
        drop(file);
        (result, collected)
    })
    .await
    .map_err(|_| PageError::internal("blocking task"))?;
    let summary = match result {
        Ok(summary) => summary,
        Err(credit_import::ImportError::Format(message)) => {
            let mut errors = FieldErrors::default();
            errors.add(
                "file",
                tr.t1("office-import-error-header", "detail", message),
            );
            return render_dashboard(&req, &state, &visitor, Typed::default(), errors).await;
        }
        Err(credit_import::ImportError::Unreadable(e)) => {
            return Err(PageError::Service(ServiceError::Internal(
                anyhow::Error::new(e),
            )))
        }
        Err(credit_import::ImportError::Service(e)) => return Err(PageError::Service(e)),
    };
    let chrome = Chrome::new(
        &req,
        Some(&visitor),
        &tr.t("office-import-result-title"),
        Nav::Role,
    );
    let shown = collected.rejected.len().min(REJECTED_SHOWN);
    let html = ImportResultPage {
        chrome: chrome.clone(),
        file: name,
        more_rejected: summary.rejected.saturating_sub(shown as u64),
        rejected: collected
            .rejected
            .into_iter()
            .take(REJECTED_SHOWN)
            .map(|r| RejectedView {
                line: r.line,
                reason: tr.t(&format!("import-reason-{}", r.reason.as_str())),
                field: r.field.unwrap_or_default(),
                message: r.message,
            })
            .collect(),
        summary,
    }
    .render()?;
    Ok(page(&chrome, html))
}
