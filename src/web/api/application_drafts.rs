//! Saved applications (暂存): the enterprise keeps its choices for a section and submits
//! them later as an application.

use actix_web::{delete, get, post, put, web, HttpResponse};
use serde::Serialize;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::services::application_drafts::{self, DraftInput, DraftView};
use crate::web::api::applications::{ApplicationOut, ApplicationProject};
use crate::web::api::dto::{china_time, NamedParty, SectionRef};
use crate::web::auth::Authenticated;
use crate::web::error::responses::{Conflict, JsonBody, NotFound, SignedIn, Unprocessable};
use crate::web::error::ApiError;
use crate::web::json::Json;
use crate::web::AppState;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list)
        .service(save)
        .service(discard)
        .service(submit);
}

/// A saved application, as only its enterprise sees it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DraftOut {
    project: ApplicationProject,
    section: SectionRef,
    issuer: Option<NamedParty>,
    #[schema(value_type = Option<crate::domain::party::IssuerKind>)]
    kind: Option<String>,
    note: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<DraftView> for DraftOut {
    fn from(v: DraftView) -> Self {
        DraftOut {
            project: ApplicationProject::from(&v.project),
            section: SectionRef::from(&v.section),
            issuer: v.issuer.as_ref().map(NamedParty::from),
            kind: v.draft.kind,
            note: v.draft.note,
            created_at: china_time(v.draft.created_at),
            updated_at: china_time(v.draft.updated_at),
        }
    }
}

/// The signed-in enterprise's saved applications, most recently saved first.
#[utoipa::path(
    tag = "applications",
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The drafts", body = Vec<DraftOut>),
        SignedIn,
    )
)]
#[get("/application-drafts")]
async fn list(state: web::Data<AppState>, who: Authenticated) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let drafts = web::block(move || application_drafts::list(&ctx, &who.0)).await??;
    let out: Vec<DraftOut> = drafts.into_iter().map(DraftOut::from).collect();
    Ok(HttpResponse::Ok().json(out))
}

/// Saves (暂存) the enterprise's application for a section without submitting it: the
/// whole draft is replaced by what is sent, and any part may stay empty. Nobody else
/// sees it, and it holds no place: submit it to apply.
#[utoipa::path(
    tag = "applications",
    params(("section_id" = String, Path, description = "The section applied for")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = DraftInput,
    responses(
        (status = 201, description = "Saved, new", body = DraftOut),
        (status = 200, description = "Saved over the earlier draft", body = DraftOut),
        SignedIn,
        JsonBody,
    )
)]
#[put("/application-drafts/{section_id}")]
async fn save(
    state: web::Data<AppState>,
    who: Authenticated,
    section_id: web::Path<String>,
    body: Json<DraftInput>,
) -> Result<HttpResponse, ApiError> {
    let ctx = who.context(&state);
    let input = body.into_inner();
    let (view, new) =
        web::block(move || application_drafts::save(&ctx, &who.0, &section_id, input)).await??;
    let mut answer = if new {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(answer.json(DraftOut::from(view)))
}

/// Drops a saved application.
#[utoipa::path(
    tag = "applications",
    params(("section_id" = String, Path, description = "The section applied for")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 204, description = "Dropped"),
        SignedIn,
        NotFound,
    )
)]
#[delete("/application-drafts/{section_id}")]
async fn discard(
    state: web::Data<AppState>,
    who: Authenticated,
    section_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = who.context(&state);
    web::block(move || application_drafts::discard(&ctx, &who.0, &section_id)).await??;
    Ok(HttpResponse::NoContent().finish())
}

/// Submits a saved application: every check of `POST /applications` applies, and the
/// draft is dropped in the same transaction (a refusal leaves it as it was).
#[utoipa::path(
    tag = "applications",
    params(("section_id" = String, Path, description = "The section applied for")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 201, description = "Submitted", body = ApplicationOut),
        SignedIn,
        NotFound,
        Conflict,
        Unprocessable,
    )
)]
#[post("/application-drafts/{section_id}/submit")]
async fn submit(
    state: web::Data<AppState>,
    who: Authenticated,
    section_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = who.context(&state);
    let view = web::block(move || application_drafts::submit(&ctx, &who.0, &section_id)).await??;
    Ok(HttpResponse::Created().json(ApplicationOut::from(view)))
}
