//! Tender projects and their sections (the agency).

use actix_web::{get, patch, post, put, web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::domain::money::Amount;
use crate::services::projects::{
    self, NewProject, Outcome, PlatformProject, Postponement, ProjectChanges, ProjectSearch,
    ProjectView,
};
use crate::services::ServiceError;
use crate::web::api::dto::china_time;
use crate::web::api::listing::{ListRequest, PageParams};
use crate::web::auth::Authenticated;
use crate::web::error::responses::{Conflict, JsonBody, NotFound, SignedIn, Unprocessable};
use crate::web::error::ApiError;
use crate::web::json::Json;
use crate::web::AppState;

pub fn routes(cfg: &mut ServiceConfig) {
    // By code before by id: `/projects/by-code/{code}` is no project id's path.
    cfg.service(create_project)
        .service(list_projects)
        .service(put_project_by_code)
        .service(get_project_by_code)
        .service(get_project)
        .service(update_project)
        .service(postpone);
}

/// An organization named in a project.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PartyView {
    id: String,
    name: String,
    uscc: String,
}

/// A section (标段) of a project and the bond it requires.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SectionView {
    id: String,
    code: String,
    name: String,
    bond_amount: String,
    bond_amount_in_words: String,
    estimated_price: Option<String>,
}

/// A tender project with its parties and sections.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProjectOut {
    id: String,
    code: String,
    name: String,
    tenderee: PartyView,
    agency: PartyView,
    bid_deadline: String,
    bid_opening_at: String,
    bid_validity_days: i32,
    sections: Vec<SectionView>,
}

impl From<ProjectView> for ProjectOut {
    fn from(v: ProjectView) -> Self {
        let party = |o: crate::db::models::Organization| PartyView {
            id: o.id,
            name: o.name,
            uscc: o.uscc,
        };
        ProjectOut {
            id: v.project.id,
            code: v.project.code,
            name: v.project.name,
            tenderee: party(v.tenderee),
            agency: party(v.agency),
            bid_deadline: china_time(v.project.bid_deadline),
            bid_opening_at: china_time(v.project.bid_opening_at),
            bid_validity_days: v.project.bid_validity_days,
            sections: v
                .sections
                .into_iter()
                .map(|s| {
                    let bond = Amount::from_fen(s.bond_amount_fen);
                    SectionView {
                        id: s.id,
                        code: s.code,
                        name: s.name,
                        bond_amount: bond.to_string(),
                        bond_amount_in_words: bond.to_chinese_capital(),
                        estimated_price: s
                            .estimated_price_fen
                            .map(|p| Amount::from_fen(p).to_string()),
                    }
                })
                .collect(),
        }
    }
}

/// Creates a project with its sections (agency).
#[utoipa::path(
    tag = "projects",
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = NewProject,
    responses(
        (status = 201, description = "Created", body = ProjectOut),
        SignedIn,
        JsonBody,
        NotFound,
        Conflict,
    )
)]
#[post("/projects")]
async fn create_project(
    state: web::Data<AppState>,
    who: Authenticated,
    body: Json<NewProject>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    let ctx = who.context(&state);
    let view = web::block(move || projects::create_project(&ctx, &who.0, input)).await??;
    Ok(HttpResponse::Created().json(ProjectOut::from(view)))
}

/// The projects the caller may see: an agency its own, the operator all, an enterprise
/// those open for bidding (deadline ahead); narrowed by the optional filters, one page
/// of them.
#[utoipa::path(
    tag = "projects",
    params(ProjectSearch, PageParams),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "One page of projects, soonest deadline first unless sorted otherwise", body = Vec<ProjectOut>,
            headers(
                ("X-Total-Count" = i64, description = "How many projects the filters match"),
                ("Link" = String, description = "RFC 8288 links to the first, previous, next and last pages, keeping the filters"),
            )),
        SignedIn,
        Unprocessable,
    )
)]
#[get("/projects")]
async fn list_projects(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let (page, params) = ListRequest::of(&req)?;
    let search = ProjectSearch::read(params).map_err(ServiceError::from)?;
    let ctx = state.ctx.clone();
    let window = page.window();
    let listed = web::block(move || projects::search_projects(&ctx, &who.0, &search, Some(window)))
        .await??;
    let rows: Vec<ProjectOut> = listed.rows.into_iter().map(ProjectOut::from).collect();
    Ok(page.answer(&rows, listed.total))
}

/// One project.
#[utoipa::path(
    tag = "projects",
    params(("id" = String, Path, description = "Project id")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The project", body = ProjectOut),
        SignedIn,
        NotFound,
    )
)]
#[get("/projects/{id}")]
async fn get_project(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let view = web::block(move || projects::get_project(&ctx, &who.0, &id)).await??;
    Ok(HttpResponse::Ok().json(ProjectOut::from(view)))
}

/// The project with this code (项目编号, as its trading platform numbers it), seen as
/// `GET /projects/{id}` shows it: a project the caller may not see answers as one that
/// does not exist.
#[utoipa::path(
    tag = "projects",
    params(("code" = String, Path, description = "Project code")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The project", body = ProjectOut),
        SignedIn,
        NotFound,
    )
)]
#[get("/projects/by-code/{code}")]
async fn get_project_by_code(
    state: web::Data<AppState>,
    who: Authenticated,
    code: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let view = web::block(move || projects::get_project_by_code(&ctx, &who.0, &code)).await??;
    Ok(HttpResponse::Ok().json(ProjectOut::from(view)))
}

/// A project as a platform's PUT left it, and what the PUT did.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PutProjectOut {
    #[serde(flatten)]
    project: ProjectOut,
    /// `created`, `updated`, or `unchanged` (the project was already as sent: nothing
    /// was written).
    outcome: Outcome,
}

/// Creates or updates the agency's project with this code, for its trading platform:
/// the whole project is sent each time, and sending it again is an update. No project
/// with the code: it is created (201). The agency's own: the name, section names and
/// estimated prices may change, a bond may be lowered but not raised, new sections may
/// be added; a later deadline postpones the tender (amendments are offered to the bonds
/// in force, as `POST /projects/{id}/postpone`); a section left out, an earlier
/// deadline, another tenderee or bid validity period are refused (422). After the bid
/// deadline only an identical copy is accepted, as `unchanged`. Another agency's: 409.
#[utoipa::path(
    tag = "projects",
    params(("code" = String, Path, description = "Project code (a code in the body must be the same)")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = PlatformProject,
    responses(
        (status = 200, description = "The project, updated or already as sent", body = PutProjectOut),
        (status = 201, description = "The project, created", body = PutProjectOut),
        SignedIn,
        JsonBody,
        Conflict,
    )
)]
#[put("/projects/by-code/{code}")]
async fn put_project_by_code(
    state: web::Data<AppState>,
    who: Authenticated,
    code: web::Path<String>,
    body: Json<PlatformProject>,
) -> Result<HttpResponse, ApiError> {
    let ctx = who.context(&state);
    let input = body.into_inner();
    let done =
        web::block(move || projects::put_project_by_code(&ctx, &who.0, &code, input)).await??;
    let mut answer = match done.outcome {
        Outcome::Created => HttpResponse::Created(),
        Outcome::Updated | Outcome::Unchanged => HttpResponse::Ok(),
    };
    Ok(answer.json(PutProjectOut {
        project: ProjectOut::from(done.view),
        outcome: done.outcome,
    }))
}

/// Edits a project before its bid deadline: its name, and bond amounts of sections no
/// one has applied for yet.
#[utoipa::path(
    tag = "projects",
    params(("id" = String, Path, description = "Project id")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = ProjectChanges,
    responses(
        (status = 200, description = "The project as changed", body = ProjectOut),
        SignedIn,
        NotFound,
        Conflict,
        JsonBody,
    )
)]
#[patch("/projects/{id}")]
async fn update_project(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
    body: Json<ProjectChanges>,
) -> Result<HttpResponse, ApiError> {
    let ctx = who.context(&state);
    let view = web::block(move || projects::update_project(&ctx, &who.0, &id, body.into_inner()))
        .await??;
    Ok(HttpResponse::Ok().json(ProjectOut::from(view)))
}

#[derive(Serialize, utoipa::ToSchema)]
struct PostponedOut {
    project: ProjectOut,
    /// Always `offered_to_bonds_in_force`: every bond in force is offered an amendment
    /// covering the new period, for its issuer to sign. Which bonds, and how many, stays
    /// sealed until bid opening, like everything about who bids.
    #[schema(example = "offered_to_bonds_in_force")]
    amendments: &'static str,
}

/// Postpones the bid deadline (延标); every bond in force is offered an amendment.
#[utoipa::path(
    tag = "projects",
    params(("id" = String, Path, description = "Project id")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = Postponement,
    responses(
        (status = 200, description = "The project, postponed; amendments are offered to the bonds in force", body = PostponedOut),
        SignedIn,
        NotFound,
        Conflict,
        JsonBody,
    )
)]
#[post("/projects/{id}/postpone")]
async fn postpone(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
    body: Json<Postponement>,
) -> Result<HttpResponse, ApiError> {
    let ctx = who.context(&state);
    let view =
        web::block(move || projects::postpone(&ctx, &who.0, &id, body.into_inner())).await??;
    Ok(HttpResponse::Ok().json(PostponedOut {
        project: ProjectOut::from(view),
        amendments: "offered_to_bonds_in_force",
    }))
}
