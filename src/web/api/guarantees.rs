//! Guarantees: reading and downloading (parties only), the agency's and issuer's
//! lifecycle actions, awards, claims, and the bid-opening view.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::domain::money::Amount;
use crate::pki::VerificationReport;
use crate::services::claims::{self, ClaimDecision, ClaimFilter, ClaimQuery, ClaimView, NewClaim};
use crate::services::guarantees::{self, GuaranteeFilter, GuaranteeQuery, GuaranteeView};
use crate::services::ServiceError;
use crate::web::api::dto::{china_time, Binary, GuaranteeOut, ProjectRef, SignedDocument};
use crate::web::api::listing::{filters, ListRequest, PageParams};
use crate::web::auth::Authenticated;
use crate::web::error::responses::{Conflict, JsonBody, NotFound, SignedIn, Unprocessable};
use crate::web::error::ApiError;
use crate::web::json::Json;
use crate::web::AppState;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list)
        .service(get)
        .service(document)
        .service(signature)
        .service(chain)
        .service(letter)
        .service(accept)
        .service(release)
        .service(cancel)
        .service(revoke)
        .service(file_claim)
        .service(list_claims)
        .service(decide_claim)
        .service(bonds)
        .service(award)
        .service(contract);
}

/// The guarantees the caller is a party to (an enterprise those it holds, an issuer
/// those it issued, the operator all), narrowed by the filters, one page of them.
#[utoipa::path(
    tag = "guarantees",
    params(GuaranteeQuery, PageParams),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "One page of guarantees", body = Vec<GuaranteeOut>,
            headers(
                ("X-Total-Count" = i64, description = "How many guarantees the filters match"),
                ("Link" = String, description = "RFC 8288 links to the first, previous, next and last pages, keeping the filters"),
            )),
        SignedIn,
        Unprocessable,
    )
)]
#[get("/guarantees")]
async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let (page, params) = ListRequest::of(&req)?;
    let filter = filters(params, GuaranteeFilter::read)?;
    let ctx = state.ctx.clone();
    let window = page.window();
    let listed = web::block(move || guarantees::list(&ctx, &who.0, &filter, window)).await??;
    let rows: Vec<GuaranteeOut> = listed.rows.iter().map(GuaranteeOut::from).collect();
    Ok(page.answer(&rows, listed.total))
}

async fn load(
    state: &web::Data<AppState>,
    who: Authenticated,
    number: String,
) -> Result<GuaranteeView, ApiError> {
    let ctx = state.ctx.clone();
    Ok(web::block(move || guarantees::get(&ctx, &who.0, &number)).await??)
}

/// One guarantee (parties only).
#[utoipa::path(
    tag = "guarantees",
    params(("number" = String, Path, description = "Guarantee number")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The guarantee", body = GuaranteeOut),
        SignedIn,
        NotFound,
        Unprocessable,
    )
)]
#[get("/guarantees/{number}")]
async fn get(
    state: web::Data<AppState>,
    who: Authenticated,
    number: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let view = load(&state, who, number.into_inner()).await?;
    Ok(HttpResponse::Ok().json(GuaranteeOut::from(&view)))
}

fn attachment(name: &str) -> (&'static str, String) {
    (
        "Content-Disposition",
        format!("attachment; filename=\"{name}\""),
    )
}

/// `NO.json`: the signed bytes, exactly as stored.
#[utoipa::path(
    tag = "guarantees",
    params(("number" = String, Path, description = "Guarantee number")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The signed document, verbatim", content_type = "application/json", body = SignedDocument),
        SignedIn,
        NotFound,
        Unprocessable,
    )
)]
#[get("/guarantees/{number}/document")]
async fn document(
    state: web::Data<AppState>,
    who: Authenticated,
    number: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let view = load(&state, who, number.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(attachment(&format!("{}.json", view.guarantee.number)))
        .body(view.version.document))
}

/// `NO.p7s`: the detached CMS signature (DER).
#[utoipa::path(
    tag = "guarantees",
    params(("number" = String, Path, description = "Guarantee number")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The detached CMS signature (DER)", content_type = "application/pkcs7-signature", body = Binary),
        SignedIn,
        NotFound,
        Unprocessable,
    )
)]
#[get("/guarantees/{number}/signature")]
async fn signature(
    state: web::Data<AppState>,
    who: Authenticated,
    number: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let view = load(&state, who, number.into_inner()).await?;
    let sig = view.version.signature.unwrap_or_default();
    Ok(HttpResponse::Ok()
        .content_type("application/pkcs7-signature")
        .insert_header(attachment(&format!("{}.p7s", view.guarantee.number)))
        .body(sig))
}

/// `chain.pem`: the signer's certificate and the trusted CA certificates that issued it.
#[utoipa::path(
    tag = "guarantees",
    params(("number" = String, Path, description = "Guarantee number")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The signer certificate and the CA certificates above it (PEM)", content_type = "application/x-pem-file", body = String),
        SignedIn,
        NotFound,
        Unprocessable,
    )
)]
#[get("/guarantees/{number}/chain")]
async fn chain(
    state: web::Data<AppState>,
    who: Authenticated,
    number: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let view = load(&state, who, number.into_inner()).await?;
    let ctx = state.ctx.clone();
    let pem = web::block(move || guarantees::chain_pem(&ctx, &view)).await??;
    Ok(HttpResponse::Ok()
        .content_type("application/x-pem-file")
        .insert_header(attachment("chain.pem"))
        .body(pem))
}

/// `NO.html`: the printable letter.
#[utoipa::path(
    tag = "guarantees",
    params(("number" = String, Path, description = "Guarantee number")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The printable letter (HTML)", content_type = "text/html", body = String),
        SignedIn,
        NotFound,
        Unprocessable,
    )
)]
#[get("/guarantees/{number}/letter")]
async fn letter(
    state: web::Data<AppState>,
    who: Authenticated,
    number: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let view = load(&state, who, number.into_inner()).await?;
    let ctx = state.ctx.clone();
    let html = web::block(move || crate::web::letter::render(&ctx, &view)).await??;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}

macro_rules! guarantee_action {
    ($(#[$attr:meta])* $name:ident, $service:path) => {
        $(#[$attr])*
        async fn $name(
            state: web::Data<AppState>,
            who: Authenticated,
            number: web::Path<String>,
        ) -> Result<HttpResponse, ApiError> {
            let ctx = who.context(&state);
            let view = web::block(move || $service(&ctx, &who.0, &number)).await??;
            Ok(HttpResponse::Ok().json(GuaranteeOut::from(&view)))
        }
    };
}

guarantee_action!(
    /// The agency accepts the bond for its project.
    #[utoipa::path(
        tag = "guarantees",
        params(("number" = String, Path, description = "Guarantee number")),
        security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
        responses(
            (status = 200, description = "The guarantee in its new state", body = GuaranteeOut),
            SignedIn,
            NotFound,
            Conflict,
        )
    )]
    #[post("/guarantees/{number}/accept")]
    accept,
    guarantees::accept
);
guarantee_action!(
    /// Releases the guarantee (agency): the obligation ends.
    #[utoipa::path(
        tag = "guarantees",
        params(("number" = String, Path, description = "Guarantee number")),
        security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
        responses(
            (status = 200, description = "The guarantee in its new state", body = GuaranteeOut),
            SignedIn,
            NotFound,
            Conflict,
        )
    )]
    #[post("/guarantees/{number}/release")]
    release,
    guarantees::release
);
guarantee_action!(
    /// Cancels the guarantee before it is accepted.
    #[utoipa::path(
        tag = "guarantees",
        params(("number" = String, Path, description = "Guarantee number")),
        security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
        responses(
            (status = 200, description = "The guarantee in its new state", body = GuaranteeOut),
            SignedIn,
            NotFound,
            Conflict,
        )
    )]
    #[post("/guarantees/{number}/cancel")]
    cancel,
    guarantees::cancel
);

/// Why.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    reason: String,
}

/// Revokes the guarantee with a reason (issuer).
#[utoipa::path(
    tag = "guarantees",
    params(("number" = String, Path, description = "Guarantee number")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = Reason,
    responses(
        (status = 200, description = "The guarantee in its new state", body = GuaranteeOut),
        SignedIn,
        JsonBody,
        NotFound,
        Conflict,
    )
)]
#[post("/guarantees/{number}/revoke")]
async fn revoke(
    state: web::Data<AppState>,
    who: Authenticated,
    number: web::Path<String>,
    body: Json<Reason>,
) -> Result<HttpResponse, ApiError> {
    let ctx = who.context(&state);
    let view =
        web::block(move || guarantees::revoke(&ctx, &who.0, &number, &body.reason)).await??;
    Ok(HttpResponse::Ok().json(GuaranteeOut::from(&view)))
}

/// A claim (索赔) on a guarantee.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ClaimOut {
    id: String,
    guarantee: GuaranteeOut,
    #[schema(value_type = crate::domain::claim::ClaimReason)]
    reason_code: String,
    statement: String,
    amount: String,
    #[schema(value_type = crate::domain::lifecycle::ClaimState)]
    status: String,
    filed_at: String,
    decide_by: String,
    overdue: bool,
    decided_at: Option<String>,
    decision_reason: Option<String>,
    /// What the issuer paid of it, once paid.
    paid_amount: Option<String>,
    /// For an extend-or-pay demand: the expiry asked for instead of payment.
    extend_to: Option<String>,
}

impl From<ClaimView> for ClaimOut {
    fn from(v: ClaimView) -> Self {
        let c = v.claim;
        ClaimOut {
            id: c.id,
            guarantee: GuaranteeOut::from(&v.guarantee),
            reason_code: c.reason_code.to_string(),
            statement: c.statement,
            amount: Amount::from_fen(c.amount_fen).to_string(),
            status: c.status.to_string(),
            filed_at: china_time(c.filed_at),
            decide_by: china_time(c.decide_by),
            overdue: v.overdue,
            decided_at: c.decided_at.map(china_time),
            decision_reason: c.decision_reason,
            paid_amount: c.paid_fen.map(|f| Amount::from_fen(f).to_string()),
            extend_to: c.extend_to.map(china_time),
        }
    }
}

/// Files a claim on a guarantee for the tenderee (agency).
#[utoipa::path(
    tag = "claims",
    params(("number" = String, Path, description = "Guarantee number")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = NewClaim,
    responses(
        (status = 201, description = "Filed", body = ClaimOut),
        SignedIn,
        JsonBody,
        NotFound,
        Conflict,
    )
)]
#[post("/guarantees/{number}/claims")]
async fn file_claim(
    state: web::Data<AppState>,
    who: Authenticated,
    number: web::Path<String>,
    body: Json<NewClaim>,
) -> Result<HttpResponse, ApiError> {
    let ctx = who.context(&state);
    let claim =
        web::block(move || claims::file_claim(&ctx, &who.0, &number, body.into_inner())).await??;
    Ok(HttpResponse::Created().json(ClaimOut::from(claim)))
}

/// The claims the caller may see, narrowed by the filters, one page of them.
#[utoipa::path(
    tag = "claims",
    params(ClaimQuery, PageParams),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "One page of claims", body = Vec<ClaimOut>,
            headers(
                ("X-Total-Count" = i64, description = "How many claims the filters match"),
                ("Link" = String, description = "RFC 8288 links to the first, previous, next and last pages, keeping the filters"),
            )),
        SignedIn,
        Unprocessable,
    )
)]
#[get("/claims")]
async fn list_claims(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let (page, params) = ListRequest::of(&req)?;
    let filter = filters(params, ClaimFilter::read)?;
    let ctx = state.ctx.clone();
    let window = page.window();
    let listed = web::block(move || claims::list(&ctx, &who.0, &filter, window)).await??;
    let rows: Vec<ClaimOut> = listed.rows.into_iter().map(ClaimOut::from).collect();
    Ok(page.answer(&rows, listed.total))
}

/// Pays or rejects a claim (issuer).
#[utoipa::path(
    tag = "claims",
    params(("id" = String, Path, description = "Claim id")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = ClaimDecision,
    responses(
        (status = 200, description = "Decided", body = ClaimOut),
        SignedIn,
        JsonBody,
        NotFound,
        Conflict,
    )
)]
#[post("/claims/{id}/decision")]
async fn decide_claim(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
    body: Json<ClaimDecision>,
) -> Result<HttpResponse, ApiError> {
    let ctx = who.context(&state);
    let claim =
        web::block(move || claims::decide_claim(&ctx, &who.0, &id, body.into_inner())).await??;
    Ok(HttpResponse::Ok().json(ClaimOut::from(claim)))
}

/// A bond at bid opening: the guarantee and its verification report.
#[derive(Serialize, utoipa::ToSchema)]
pub struct BondOut {
    guarantee: GuaranteeOut,
    report: VerificationReport,
}

/// The bonds of a project at bid opening.
#[derive(Serialize, utoipa::ToSchema)]
pub struct BondsOut {
    project: ProjectRef,
    /// How many bonds in force (issued, accepted, claimed).
    count: usize,
    /// How many of them verify as PASSED.
    passed: usize,
    /// The bonds in force, each with its report.
    bonds: Vec<BondOut>,
    /// The bonds that ended (released, paid, cancelled, revoked, expired), with their
    /// state: not verified, and never counted among the failures.
    ended: Vec<GuaranteeOut>,
}

/// Guarantees released by an award or a signed contract.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReleasedOut {
    /// The numbers of the released guarantees.
    released: Vec<String>,
}

/// Every bond of a project with its report (after bid opening only); with a page, the
/// bonds in force are that page of them (the counts stay those of all).
pub async fn bonds_of(
    state: &web::Data<AppState>,
    who: Authenticated,
    project_id: String,
    page: Option<ListRequest>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    // (Not `bonds`: that name is the handler's route below.)
    let guarantees::OpeningReport {
        project,
        bonds: found,
        ended,
    } = web::block(move || guarantees::bonds_at_opening(&ctx, &who.0, &project_id)).await??;
    let passed = found
        .iter()
        .filter(|(_, r)| r.indication == crate::pki::Indication::Passed)
        .count();
    let count = found.len();
    let (skip, take) = match &page {
        Some(p) => {
            let w = p.window();
            (
                usize::try_from(w.offset).unwrap_or(usize::MAX),
                usize::try_from(w.limit).unwrap_or(usize::MAX),
            )
        }
        None => (0, usize::MAX),
    };
    let body = BondsOut {
        project: ProjectRef::from(&project),
        count,
        passed,
        bonds: found
            .into_iter()
            .skip(skip)
            .take(take)
            .map(|(v, report)| BondOut {
                guarantee: GuaranteeOut::from(&v),
                report,
            })
            .collect(),
        ended: ended.iter().map(GuaranteeOut::from).collect(),
    };
    Ok(match page {
        Some(p) => p.answer(&body, i64::try_from(count).unwrap_or(i64::MAX)),
        None => HttpResponse::Ok().json(body),
    })
}

/// Every bond of a project with its verification report, after bid opening (agency).
#[utoipa::path(
    tag = "projects",
    params(("id" = String, Path, description = "Project id"), PageParams),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The bonds and their reports; `bonds` holds one page of the bonds in force", body = BondsOut,
            headers(
                ("X-Total-Count" = i64, description = "How many bonds are in force"),
                ("Link" = String, description = "RFC 8288 links to the first, previous, next and last pages"),
            )),
        SignedIn,
        NotFound,
        Conflict,
        Unprocessable,
    )
)]
#[get("/projects/{id}/bonds")]
async fn bonds(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (page, params) = ListRequest::of(&req)?;
    params.finish(()).map_err(ServiceError::from)?;
    bonds_of(&state, who, id.into_inner(), Some(page)).await
}

/// The winner of a section.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Award {
    winner_enterprise_id: String,
}

/// Awards a section; the losers' guarantees are released (agency).
#[utoipa::path(
    tag = "projects",
    params(
        ("id" = String, Path, description = "Project id"),
        ("section" = String, Path, description = "Section id"),
    ),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = Award,
    responses(
        (status = 200, description = "Awarded", body = ReleasedOut),
        SignedIn,
        JsonBody,
        NotFound,
        Conflict,
    )
)]
#[post("/projects/{id}/sections/{section}/award")]
async fn award(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<(String, String)>,
    body: Json<Award>,
) -> Result<HttpResponse, ApiError> {
    let (project, section) = path.into_inner();
    let ctx = who.context(&state);
    let released = web::block(move || {
        guarantees::award(&ctx, &who.0, &project, &section, &body.winner_enterprise_id)
    })
    .await??;
    Ok(HttpResponse::Ok().json(ReleasedOut { released }))
}

/// Records the signed contract of a section; the winner's guarantee is released
/// (agency).
#[utoipa::path(
    tag = "projects",
    params(
        ("id" = String, Path, description = "Project id"),
        ("section" = String, Path, description = "Section id"),
    ),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 200, description = "Recorded", body = ReleasedOut),
        SignedIn,
        NotFound,
        Conflict,
    )
)]
#[post("/projects/{id}/sections/{section}/contract")]
async fn contract(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (project, section) = path.into_inner();
    let ctx = who.context(&state);
    let released =
        web::block(move || guarantees::contract_signed(&ctx, &who.0, &project, &section)).await??;
    Ok(HttpResponse::Ok().json(ReleasedOut { released }))
}
