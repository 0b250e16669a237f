//! Disputes of credit records (信用异议): a subject files one against a record of its
//! own archive; the credit office lists the open ones by deadline and decides each.

use actix_web::{get, post, web, HttpResponse};
use serde::Serialize;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::db::models::CreditDisputeRow;
use crate::services::credit_disputes::{self, DisputeDecision, NewDispute};
use crate::web::api::dto::china_time;
use crate::web::auth::Authenticated;
use crate::web::error::responses::{Conflict, JsonBody, NotFound, SignedIn};
use crate::web::error::ApiError;
use crate::web::json::Json;
use crate::web::AppState;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(file_dispute)
        .service(my_disputes)
        .service(open_disputes)
        .service(decide_dispute);
}

/// A dispute and where it stands.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DisputeOut {
    pub id: String,
    pub record_id: String,
    pub reason: String,
    pub filed_at: String,
    /// The credit office decides by then (business days on the claims' calendar).
    pub decide_by: String,
    /// Filed and past `decide_by`.
    pub overdue: bool,
    /// `filed`, `upheld` (the record stands) or `corrected` (the record was cancelled).
    pub status: String,
    pub decided_at: Option<String>,
    pub decision_note: Option<String>,
    /// The cancelling record of a correction.
    pub correction_record_id: Option<String>,
}

impl DisputeOut {
    fn of(d: &CreditDisputeRow, now: chrono::NaiveDateTime) -> DisputeOut {
        DisputeOut {
            id: d.id.clone(),
            record_id: d.record_id.clone(),
            reason: d.reason.clone(),
            filed_at: china_time(d.filed_at),
            decide_by: china_time(d.decide_by),
            overdue: credit_disputes::overdue(d, now),
            status: d.status.clone(),
            decided_at: d.decided_at.map(china_time),
            decision_note: d.decision_note.clone(),
            correction_record_id: d.correction_record_id.clone(),
        }
    }
}

/// The signed-in enterprise or resident disputes one of its records in force. While
/// the dispute is filed the record shows as disputed in the archive. Another's record
/// is not found; a record no longer in force, or one already under dispute, is 409.
#[utoipa::path(
    tag = "deposit-free",
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = NewDispute,
    responses(
        (status = 201, description = "Filed", body = DisputeOut),
        SignedIn,
        JsonBody,
        NotFound,
        Conflict,
    )
)]
#[post("/credit/me/disputes")]
async fn file_dispute(
    state: web::Data<AppState>,
    who: Authenticated,
    body: Json<NewDispute>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let now = ctx.now();
    let row = web::block(move || credit_disputes::file(&ctx, &who.0, body.into_inner())).await??;
    Ok(HttpResponse::Created().json(DisputeOut::of(&row, now)))
}

/// The signed-in enterprise's or resident's disputes, newest first.
#[utoipa::path(
    tag = "deposit-free",
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The disputes", body = Vec<DisputeOut>),
        SignedIn,
    )
)]
#[get("/credit/me/disputes")]
async fn my_disputes(
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let now = ctx.now();
    let rows = web::block(move || credit_disputes::mine(&ctx, &who.0)).await??;
    let out: Vec<DisputeOut> = rows.iter().map(|d| DisputeOut::of(d, now)).collect();
    Ok(HttpResponse::Ok().json(out))
}

/// The disputes waiting for the credit office, the nearest deadline first.
#[utoipa::path(
    tag = "deposit-free",
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The open disputes", body = Vec<DisputeOut>),
        SignedIn,
    )
)]
#[get("/credit/disputes")]
async fn open_disputes(
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let now = ctx.now();
    let rows = web::block(move || credit_disputes::open(&ctx, &who.0)).await??;
    let out: Vec<DisputeOut> = rows
        .iter()
        .map(|o| DisputeOut::of(&o.dispute, now))
        .collect();
    Ok(HttpResponse::Ok().json(out))
}

/// The credit office decides a dispute: `uphold` keeps the record, `correct` cancels it
/// as a correction in the same transaction (the subject's score and level follow). A
/// dispute decided already is 409.
#[utoipa::path(
    tag = "deposit-free",
    params(("id" = String, Path, description = "The dispute's id")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = DisputeDecision,
    responses(
        (status = 200, description = "Decided", body = DisputeOut),
        SignedIn,
        JsonBody,
        NotFound,
        Conflict,
    )
)]
#[post("/credit/disputes/{id}/decision")]
async fn decide_dispute(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
    body: Json<DisputeDecision>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let now = ctx.now();
    let row =
        web::block(move || credit_disputes::decide(&ctx, &who.0, &id, body.into_inner())).await??;
    Ok(HttpResponse::Ok().json(DisputeOut::of(&row, now)))
}
