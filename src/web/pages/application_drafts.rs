//! The bidder's saved applications (暂存): what it chose for a section and has not sent
//! yet, with sending and discarding. A refused send is shown beside its row, with the
//! reason the service gave; the rules stay in `services::application_drafts`.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::enterprise::{money, run, when, Button};
use super::errors::PageError;
use super::i18n::Tr;
use super::session::{SignedForm, Visitor};
use super::{page, redirect_with_flash, Chrome};
use crate::domain::party::Role;
use crate::services::application_drafts::{self, DraftView};
use crate::services::ServiceError;
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/enterprise/drafts", web::get().to(list))
        .route(
            "/enterprise/drafts/{section}/submit",
            web::post().to(submit),
        )
        .route(
            "/enterprise/drafts/{section}/discard",
            web::post().to(discard),
        );
}

/// A saved application in the list.
struct DraftRow {
    section_id: String,
    project_id: String,
    project: String,
    section: String,
    bond: String,
    issuer: Option<String>,
    deadline: String,
    saved_at: String,
    /// Why sending it was refused, when it just was.
    error: Option<String>,
}

impl DraftRow {
    fn of(v: &DraftView) -> DraftRow {
        DraftRow {
            section_id: v.section.id.clone(),
            project_id: v.project.id.clone(),
            project: format!("{} {}", v.project.code, v.project.name),
            section: format!("{} {}", v.section.code, v.section.name),
            bond: money(v.section.bond_amount_fen),
            issuer: v.issuer.as_ref().map(|o| o.name.clone()),
            deadline: when(v.project.bid_deadline),
            saved_at: when(v.draft.updated_at),
            error: None,
        }
    }
}

#[derive(Template)]
#[template(path = "pages/enterprise/drafts.html")]
struct DraftsPage {
    chrome: Chrome,
    rows: Vec<DraftRow>,
}

impl DraftsPage {
    fn has_errors(&self) -> bool {
        self.rows.iter().any(|r| r.error.is_some())
    }
}

/// The list, with `failed` (a section and why sending it was refused) beside its row.
async fn render(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    visitor: &Visitor,
    failed: Option<(String, String)>,
) -> Result<HttpResponse, PageError> {
    let actor = visitor.actor.clone();
    let drafts = run(state, move |ctx| application_drafts::list(ctx, &actor)).await?;
    let chrome = Chrome::titled(req, visitor, "drafts-title");
    let rows = drafts
        .iter()
        .map(|v| {
            let mut row = DraftRow::of(v);
            if let Some((section, why)) = &failed {
                if *section == row.section_id {
                    row.error = Some(why.clone());
                }
            }
            row
        })
        .collect();
    let html = DraftsPage {
        chrome: chrome.clone(),
        rows,
    }
    .render()?;
    Ok(page(&chrome, html))
}

async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
) -> Result<HttpResponse, PageError> {
    visitor.require(&[Role::Enterprise])?;
    visitor.cacheable(&req);
    render(&req, &state, &visitor, None).await
}

async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    section: web::Path<String>,
    posted: SignedForm<Button>,
) -> Result<HttpResponse, PageError> {
    let visitor = posted.visitor;
    visitor.require(&[Role::Enterprise])?;
    let tr = Tr::new(super::i18n::Lang::of(&req));
    let actor = visitor.actor.clone();
    let section = section.into_inner();
    let id = section.clone();
    match run(&state, move |ctx| {
        application_drafts::submit(ctx, &actor, &id)
    })
    .await
    {
        Ok(_) => Ok(redirect_with_flash(
            &req,
            "/enterprise/applications",
            "flash-applied",
        )),
        // What the bidder can mend (no issuer chosen, the tender closed, a bond already
        // asked for): said beside the row, the draft kept.
        Err(PageError::Service(ServiceError::Invalid { field, message })) => {
            let why = match field.as_str() {
                "issuer_id" | "kind" => tr.t("apply-error-issuer"),
                _ => format!("{}: {message}", tr.t("drafts-error-send")),
            };
            render(&req, &state, &visitor, Some((section, why))).await
        }
        Err(PageError::Service(ServiceError::Conflict(message))) => {
            let why = format!("{}: {message}", tr.t("drafts-error-send"));
            render(&req, &state, &visitor, Some((section, why))).await
        }
        Err(e) => Err(e),
    }
}

async fn discard(
    req: HttpRequest,
    state: web::Data<AppState>,
    section: web::Path<String>,
    posted: SignedForm<Button>,
) -> Result<HttpResponse, PageError> {
    let visitor = posted.visitor;
    visitor.require(&[Role::Enterprise])?;
    let actor = visitor.actor.clone();
    let section = section.into_inner();
    run(&state, move |ctx| {
        application_drafts::discard(ctx, &actor, &section)
    })
    .await?;
    Ok(redirect_with_flash(
        &req,
        "/enterprise/drafts",
        "flash-draft-discarded",
    ))
}
