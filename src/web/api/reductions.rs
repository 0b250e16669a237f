//! Reductions of a guarantee's amount (URDG 758 art. 11): the issuer proposes one, signs
//! it as any amendment (`POST /applications/{id}/issue` or `/signature`), and the
//! tender agency accepts or refuses it for the tenderee; the guarantee's parties see
//! them and download the signed version.

use actix_web::{get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::domain::money::Amount;
use crate::services::guarantees::{self, NewReduction, ReductionView};
use crate::services::ServiceError;
use crate::web::api::dto::{china_time, Binary, GuaranteeOut, SignedDocument};
use crate::web::auth::Authenticated;
use crate::web::error::responses::{Conflict, JsonBody, NotFound, SignedIn, Unprocessable};
use crate::web::error::ApiError;
use crate::web::json::Json;
use crate::web::AppState;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(propose)
        .service(list)
        .service(accept)
        .service(refuse)
        .service(document)
        .service(signature);
}

/// A reduction of a guarantee's amount, proposed by its issuer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReductionOut {
    /// The version of the guarantee document the amendment is.
    version: i32,
    /// The version in force it reduces.
    base_version: i32,
    #[schema(value_type = crate::domain::reduction::ReductionState)]
    status: String,
    /// The amount before, decimal yuan.
    amount_before: String,
    /// The reduced amount, decimal yuan.
    amount: String,
    amount_in_words: String,
    reason: String,
    proposed_at: String,
    /// When the issuer signed it (then it awaits the agency).
    signed_at: Option<String>,
    /// SHA-256 of the signed document, once signed.
    document_sha256: Option<String>,
    /// Accepted, refused or withdrawn at.
    decided_at: Option<String>,
    /// The agency's reason for a refusal; what withdrew it otherwise.
    decision_reason: Option<String>,
    /// The guarantee as it stands (its version and amount in force).
    guarantee: GuaranteeOut,
}

impl From<&ReductionView> for ReductionOut {
    fn from(v: &ReductionView) -> Self {
        let r = &v.reduction;
        let amount = Amount::from_fen(r.amount_fen);
        ReductionOut {
            version: r.version,
            base_version: r.base_version,
            status: r.status.to_string(),
            amount_before: Amount::from_fen(r.amount_before_fen).to_string(),
            amount: amount.to_string(),
            amount_in_words: amount.to_chinese_capital(),
            reason: r.reason.clone(),
            proposed_at: china_time(r.proposed_at),
            signed_at: r.signed_at.map(china_time),
            document_sha256: r.document_sha256.clone(),
            decided_at: r.decided_at.map(china_time),
            decision_reason: r.decision_reason.clone(),
            guarantee: GuaranteeOut::from(&v.guarantee),
        }
    }
}

/// A version number in a path: anything else names no amendment.
fn version_of(text: &str) -> Result<i32, ServiceError> {
    text.parse::<i32>()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| ServiceError::NotFound("amendment".into()))
}

/// Proposes to reduce the amount of a guarantee in force (its issuer, after bid
/// opening, no claim open): a new version with the new amount is drafted for the issuer
/// to sign like any amendment; once signed it waits for the agency's acceptance and
/// takes effect only then.
#[utoipa::path(
    tag = "guarantees",
    params(("number" = String, Path, description = "Guarantee number")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = NewReduction,
    responses(
        (status = 201, description = "Drafted; sign it as an amendment", body = ReductionOut),
        SignedIn,
        JsonBody,
        NotFound,
        Conflict,
    )
)]
#[post("/guarantees/{number}/reduction")]
async fn propose(
    state: web::Data<AppState>,
    who: Authenticated,
    number: web::Path<String>,
    body: Json<NewReduction>,
) -> Result<HttpResponse, ApiError> {
    let ctx = who.context(&state);
    let view =
        web::block(move || guarantees::propose_reduction(&ctx, &who.0, &number, body.into_inner()))
            .await??;
    Ok(HttpResponse::Created().json(ReductionOut::from(&view)))
}

/// The reductions proposed for a guarantee, newest first (its parties, as the
/// guarantee itself).
#[utoipa::path(
    tag = "guarantees",
    params(("number" = String, Path, description = "Guarantee number")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The reductions, newest first", body = Vec<ReductionOut>),
        SignedIn,
        NotFound,
        Unprocessable,
    )
)]
#[get("/guarantees/{number}/amendments")]
async fn list(
    state: web::Data<AppState>,
    who: Authenticated,
    number: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let (view, rows) =
        web::block(move || guarantees::list_reductions(&ctx, &who.0, &number)).await??;
    let out: Vec<ReductionOut> = rows
        .into_iter()
        .map(|reduction| {
            ReductionOut::from(&ReductionView {
                reduction,
                guarantee: view.clone(),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(out))
}

/// The agency accepts a signed reduction for the tenderee: the new version is in force
/// with the lower amount, and the reduction letter is written.
#[utoipa::path(
    tag = "guarantees",
    params(
        ("number" = String, Path, description = "Guarantee number"),
        ("version" = String, Path, description = "The amendment's version"),
    ),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 200, description = "Accepted; the guarantee as now in force", body = ReductionOut),
        SignedIn,
        NotFound,
        Conflict,
        Unprocessable,
    )
)]
#[post("/guarantees/{number}/amendments/{version}/accept")]
async fn accept(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (number, version) = path.into_inner();
    let ctx = who.context(&state);
    let view = web::block(move || {
        let version = version_of(&version)?;
        guarantees::accept_reduction(&ctx, &who.0, &number, version)
    })
    .await??;
    Ok(HttpResponse::Ok().json(ReductionOut::from(&view)))
}

/// Why the agency refuses.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReductionRefusal {
    reason: String,
}

/// The agency refuses a signed reduction for the tenderee: the version in force stays,
/// and the refused version never takes effect.
#[utoipa::path(
    tag = "guarantees",
    params(
        ("number" = String, Path, description = "Guarantee number"),
        ("version" = String, Path, description = "The amendment's version"),
    ),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = ReductionRefusal,
    responses(
        (status = 200, description = "Refused", body = ReductionOut),
        SignedIn,
        JsonBody,
        NotFound,
        Conflict,
    )
)]
#[post("/guarantees/{number}/amendments/{version}/refuse")]
async fn refuse(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<(String, String)>,
    body: Json<ReductionRefusal>,
) -> Result<HttpResponse, ApiError> {
    let (number, version) = path.into_inner();
    let ctx = who.context(&state);
    let view = web::block(move || {
        let version = version_of(&version)?;
        guarantees::refuse_reduction(&ctx, &who.0, &number, version, &body.reason)
    })
    .await??;
    Ok(HttpResponse::Ok().json(ReductionOut::from(&view)))
}

/// A signed reduction's file, once signed: what the agency reads before it decides.
async fn signed_part(
    state: &web::Data<AppState>,
    who: Authenticated,
    number: String,
    version: String,
    part: fn(&ReductionView) -> Option<Vec<u8>>,
) -> Result<(String, i32, Vec<u8>), ApiError> {
    let ctx = state.ctx.clone();
    let found = web::block(move || {
        let version = version_of(&version)?;
        let view = guarantees::get_reduction(&ctx, &who.0, &number, version)?;
        let bytes = part(&view).ok_or_else(|| ServiceError::NotFound("signed amendment".into()))?;
        Ok::<_, ServiceError>((view.guarantee.guarantee.number, version, bytes))
    })
    .await??;
    Ok(found)
}

/// `NO-vN.json`: the signed reduction, verbatim (not a version in force until accepted).
#[utoipa::path(
    tag = "guarantees",
    params(
        ("number" = String, Path, description = "Guarantee number"),
        ("version" = String, Path, description = "The amendment's version"),
    ),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The signed amendment, verbatim", content_type = "application/json", body = SignedDocument),
        SignedIn,
        NotFound,
        Unprocessable,
    )
)]
#[get("/guarantees/{number}/amendments/{version}/document")]
async fn document(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (number, version) = path.into_inner();
    let (number, version, bytes) = signed_part(&state, who, number, version, |v| {
        v.reduction.document.clone()
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(attachment(&format!("{number}-v{version}.json")))
        .body(bytes))
}

/// `NO-vN.p7s`: the issuer's detached CMS signature of the reduction (DER), with the
/// exchange's time-stamp token.
#[utoipa::path(
    tag = "guarantees",
    params(
        ("number" = String, Path, description = "Guarantee number"),
        ("version" = String, Path, description = "The amendment's version"),
    ),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The detached CMS signature (DER)", content_type = "application/pkcs7-signature", body = Binary),
        SignedIn,
        NotFound,
        Unprocessable,
    )
)]
#[get("/guarantees/{number}/amendments/{version}/signature")]
async fn signature(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (number, version) = path.into_inner();
    let (number, version, bytes) = signed_part(&state, who, number, version, |v| {
        v.reduction.signature.clone()
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/pkcs7-signature")
        .insert_header(attachment(&format!("{number}-v{version}.p7s")))
        .body(bytes))
}

pub(super) fn attachment(name: &str) -> (&'static str, String) {
    (
        "Content-Disposition",
        format!("attachment; filename=\"{name}\""),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_version_in_a_path_is_a_positive_number_or_names_nothing() {
        assert_eq!(super::version_of("2").ok(), Some(2));
        for bad in ["0", "-1", "x", "", "99999999999", "2 "] {
            assert!(super::version_of(bad).is_err(), "{bad}");
        }
    }
}
