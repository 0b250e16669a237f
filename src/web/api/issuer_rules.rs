//! An issuer's own rules by the applicant's credit level: its premium discount and
//! whether it reviews by hand.

use actix_web::{get, put, web, HttpResponse};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::services::issuer_rules::{self, LevelRule};
use crate::web::auth::Authenticated;
use crate::web::error::responses::{JsonBody, SignedIn};
use crate::web::error::ApiError;
use crate::web::json::Json;
use crate::web::AppState;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(my_rules).service(set_rules);
}

/// The signed-in issuer's rules, every level listed (a level it set no rule for: no
/// discount, manual review).
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The rules", body = Vec<LevelRule>),
        SignedIn,
    )
)]
#[get("/issuer/credit-rules")]
async fn my_rules(
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let rules = web::block(move || issuer_rules::my_rules(&ctx, &who.0)).await??;
    Ok(HttpResponse::Ok().json(rules))
}

/// Replaces the signed-in issuer's rules: per credit level, the discount off its
/// published quote (0 to 50 percent) and whether an application at that level needs a
/// manual review. Levels left out get none. Each underwriting then shows the rule for
/// the applicant's level, and the page's suggested premium has the discount taken off.
/// An application from an enterprise whose level needs no manual review is approved by
/// the exchange as it arrives, at the issuer's published quote less the discount (left
/// for review when the issuer has no terms in force that serve the bond).
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = Vec<LevelRule>,
    responses(
        (status = 200, description = "The rules now", body = Vec<LevelRule>),
        SignedIn,
        JsonBody,
    )
)]
#[put("/issuer/credit-rules")]
async fn set_rules(
    state: web::Data<AppState>,
    who: Authenticated,
    body: Json<Vec<LevelRule>>,
) -> Result<HttpResponse, ApiError> {
    let ctx = who.context(&state);
    let rules = body.into_inner();
    let now = web::block(move || issuer_rules::set_rules(&ctx, &who.0, &rules)).await??;
    Ok(HttpResponse::Ok().json(now))
}
