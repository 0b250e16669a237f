//! Premium terms (保费标准): an issuer publishes, withdraws and reads back its own; the
//! list of issuers shows each one's terms in force (`GET /issuers`).

use actix_web::{delete, get, put, web, HttpResponse};
use serde::Serialize;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::domain::money::Amount;
use crate::domain::premium::rate_percent;
use crate::services::premium_terms::{self, NewPremiumTerms, TermsVersion};
use crate::web::api::dto::china_time;
use crate::web::auth::Authenticated;
use crate::web::error::responses::{JsonBody, NotFound, SignedIn};
use crate::web::error::ApiError;
use crate::web::json::Json;
use crate::web::AppState;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(publish).service(withdraw).service(own_terms);
}

/// Terms in force, as the API shows them.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PremiumTermsOut {
    /// The version of the issuer's terms (1, 2, ...).
    pub version: i32,
    /// The rate in basis points of the bond amount (15 = 0.15 %).
    pub rate_bp: u32,
    /// The same rate as a percentage with two decimals, e.g. "0.15".
    pub rate_percent: String,
    /// The least premium charged, decimal yuan.
    pub minimum_premium: String,
    /// The largest bond amount guaranteed, decimal yuan; null: no limit.
    pub maximum_bond: Option<String>,
    /// Working days the issuer promises to answer an application within.
    pub turnaround_days: u32,
    pub note: Option<String>,
    pub published_at: String,
}

impl PremiumTermsOut {
    /// The terms of a version, or none for a withdrawing one.
    pub fn of(v: &TermsVersion) -> Option<PremiumTermsOut> {
        let t = v.terms?;
        Some(PremiumTermsOut {
            version: v.version,
            rate_bp: t.rate_bp(),
            rate_percent: rate_percent(t.rate_bp()),
            minimum_premium: t.minimum().to_string(),
            maximum_bond: t.maximum_bond().map(|m| m.to_string()),
            turnaround_days: t.turnaround_days(),
            note: v.note.clone(),
            published_at: china_time(v.published_at),
        })
    }
}

/// One version in an issuer's history.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TermsVersionOut {
    pub version: i32,
    /// True for the version that withdrew the terms (then `terms` is null).
    pub withdrawn: bool,
    pub terms: Option<PremiumTermsOut>,
    pub published_at: String,
}

/// An issuer's own terms: those in force and every version, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OwnTermsOut {
    pub current: Option<PremiumTermsOut>,
    pub history: Vec<TermsVersionOut>,
}

/// Publishes new premium terms for the caller's issuer (its users): the next version,
/// in force at once; earlier versions stay in the history.
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = NewPremiumTerms,
    responses(
        (status = 200, description = "Published: the terms now in force", body = PremiumTermsOut),
        SignedIn,
        JsonBody,
    )
)]
#[put("/issuers/me/premium-terms")]
async fn publish(
    state: web::Data<AppState>,
    who: Authenticated,
    body: Json<NewPremiumTerms>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    let ctx = who.context(&state);
    let published = web::block(move || premium_terms::publish(&ctx, &who.0, input)).await??;
    Ok(HttpResponse::Ok().json(PremiumTermsOut::of(&published)))
}

/// Withdraws the caller's issuer's premium terms (its users): a version marked
/// withdrawn; enterprises then see no published terms. 404 when none are in force.
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 204, description = "Withdrawn"),
        SignedIn,
        NotFound,
    )
)]
#[delete("/issuers/me/premium-terms")]
async fn withdraw(
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let ctx = who.context(&state);
    web::block(move || premium_terms::withdraw(&ctx, &who.0)).await??;
    Ok(HttpResponse::NoContent().finish())
}

/// The caller's issuer's premium terms: those in force and every version (its users).
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = []), ("session_cookie" = [])),
    responses((status = 200, description = "The terms and their history", body = OwnTermsOut), SignedIn)
)]
#[get("/issuers/me/premium-terms")]
async fn own_terms(
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let history = web::block(move || premium_terms::history(&ctx, &who.0)).await??;
    let current = history.first().and_then(PremiumTermsOut::of);
    Ok(HttpResponse::Ok().json(OwnTermsOut {
        current,
        history: history
            .iter()
            .map(|v| TermsVersionOut {
                version: v.version,
                withdrawn: v.terms.is_none(),
                terms: PremiumTermsOut::of(v),
                published_at: china_time(v.published_at),
            })
            .collect(),
    }))
}

/// The premium an issuer's terms give for a bond, as the list of issuers shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct QuoteOut {
    /// The bond amount asked about, decimal yuan.
    pub bond_amount: String,
    /// Whether the issuer guarantees a bond this large.
    pub serves: bool,
    /// The premium, decimal yuan; null when the issuer does not serve the amount.
    pub premium: Option<String>,
}

impl QuoteOut {
    pub fn of(v: &TermsVersion, bond: Amount) -> Option<QuoteOut> {
        let premium = v.terms?.quote(bond).ok();
        Some(QuoteOut {
            bond_amount: bond.to_string(),
            serves: premium.is_some(),
            premium: premium.map(|p| p.to_string()),
        })
    }
}
