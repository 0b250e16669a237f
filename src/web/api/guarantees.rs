//! Guarantees: reading and downloading (parties only), the agency's and issuer's
//! lifecycle actions, awards, claims, and the bid-opening view.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::applications::NamedParty;
use super::china_time;
use crate::domain::money::Amount;
use crate::pki::VerificationReport;
use crate::services::guarantees::{
    self, ClaimDecision, ClaimView, GuaranteeView, Issued, NewClaim,
};
use crate::web::auth::Authenticated;
use crate::web::error::ApiError;
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/guarantees", web::get().to(list))
        .route("/guarantees/{number}", web::get().to(get))
        .route("/guarantees/{number}/document", web::get().to(document))
        .route("/guarantees/{number}/signature", web::get().to(signature))
        .route("/guarantees/{number}/chain", web::get().to(chain))
        .route("/guarantees/{number}/letter", web::get().to(letter))
        .route("/guarantees/{number}/accept", web::post().to(accept))
        .route("/guarantees/{number}/release", web::post().to(release))
        .route("/guarantees/{number}/cancel", web::post().to(cancel))
        .route("/guarantees/{number}/revoke", web::post().to(revoke))
        .route("/guarantees/{number}/claims", web::post().to(file_claim))
        .route("/claims", web::get().to(list_claims))
        .route("/claims/{id}/decision", web::post().to(decide_claim))
        .route("/projects/{id}/bonds", web::get().to(bonds))
        .route(
            "/projects/{id}/sections/{section}/award",
            web::post().to(award),
        )
        .route(
            "/projects/{id}/sections/{section}/contract",
            web::post().to(contract),
        );
}

/// A guarantee as its parties see it.
#[derive(Serialize)]
pub struct GuaranteeOut {
    number: String,
    version: i32,
    status: String,
    claimed_from: Option<String>,
    amount: String,
    amount_in_words: String,
    valid_from: String,
    valid_until: String,
    issued_at: String,
    document_sha256: String,
    project: serde_json::Value,
    section: serde_json::Value,
    issuer: NamedParty,
    applicant: NamedParty,
    beneficiary: NamedParty,
}

impl From<&GuaranteeView> for GuaranteeOut {
    fn from(v: &GuaranteeView) -> Self {
        let g = &v.guarantee;
        let amount = Amount::from_fen(g.amount_fen);
        GuaranteeOut {
            number: g.number.clone(),
            version: g.current_version,
            status: g.status.clone(),
            claimed_from: g.claimed_from.clone(),
            amount: amount.to_string(),
            amount_in_words: amount.to_chinese_capital(),
            valid_from: china_time(g.valid_from),
            valid_until: china_time(g.valid_until),
            issued_at: china_time(g.issued_at),
            document_sha256: v.version.document_sha256.clone(),
            project: serde_json::json!({ "id": v.project.id, "code": v.project.code, "name": v.project.name }),
            section: serde_json::json!({ "id": v.section.id, "code": v.section.code, "name": v.section.name }),
            issuer: NamedParty::from(&v.issuer),
            applicant: NamedParty::from(&v.enterprise),
            beneficiary: NamedParty::from(&v.tenderee),
        }
    }
}

/// The answer to an issue: the guarantee and its verification code, shown once here.
#[derive(Serialize)]
pub struct IssuedOut {
    guarantee: GuaranteeOut,
    verification_code: String,
}

impl From<Issued> for IssuedOut {
    fn from(i: Issued) -> Self {
        IssuedOut {
            guarantee: GuaranteeOut::from(&i.view),
            verification_code: i.verification_code,
        }
    }
}

async fn list(state: web::Data<AppState>, who: Authenticated) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let views = web::block(move || guarantees::list(&ctx, &who.0)).await??;
    Ok(HttpResponse::Ok().json(views.iter().map(GuaranteeOut::from).collect::<Vec<_>>()))
}

async fn load(
    state: &web::Data<AppState>,
    who: Authenticated,
    number: String,
) -> Result<GuaranteeView, ApiError> {
    let ctx = state.ctx.clone();
    Ok(web::block(move || guarantees::get(&ctx, &who.0, &number)).await??)
}

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
    ($name:ident, $service:path) => {
        async fn $name(
            state: web::Data<AppState>,
            who: Authenticated,
            number: web::Path<String>,
        ) -> Result<HttpResponse, ApiError> {
            let ctx = state.ctx.clone();
            let view = web::block(move || $service(&ctx, &who.0, &number)).await??;
            Ok(HttpResponse::Ok().json(GuaranteeOut::from(&view)))
        }
    };
}

guarantee_action!(accept, guarantees::accept);
guarantee_action!(release, guarantees::release);
guarantee_action!(cancel, guarantees::cancel);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reason {
    reason: String,
}

async fn revoke(
    state: web::Data<AppState>,
    who: Authenticated,
    number: web::Path<String>,
    body: web::Json<Reason>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let view =
        web::block(move || guarantees::revoke(&ctx, &who.0, &number, &body.reason)).await??;
    Ok(HttpResponse::Ok().json(GuaranteeOut::from(&view)))
}

#[derive(Serialize)]
struct ClaimOut {
    id: String,
    guarantee: GuaranteeOut,
    reason_code: String,
    statement: String,
    amount: String,
    status: String,
    filed_at: String,
    decide_by: String,
    overdue: bool,
    decided_at: Option<String>,
    decision_reason: Option<String>,
}

impl From<ClaimView> for ClaimOut {
    fn from(v: ClaimView) -> Self {
        let c = v.claim;
        ClaimOut {
            id: c.id,
            guarantee: GuaranteeOut::from(&v.guarantee),
            reason_code: c.reason_code,
            statement: c.statement,
            amount: Amount::from_fen(c.amount_fen).to_string(),
            status: c.status,
            filed_at: china_time(c.filed_at),
            decide_by: china_time(c.decide_by),
            overdue: v.overdue,
            decided_at: c.decided_at.map(china_time),
            decision_reason: c.decision_reason,
        }
    }
}

async fn file_claim(
    state: web::Data<AppState>,
    who: Authenticated,
    number: web::Path<String>,
    body: web::Json<NewClaim>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let claim =
        web::block(move || guarantees::file_claim(&ctx, &who.0, &number, body.into_inner()))
            .await??;
    Ok(HttpResponse::Created().json(ClaimOut::from(claim)))
}

async fn list_claims(
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let claims = web::block(move || guarantees::list_claims(&ctx, &who.0)).await??;
    Ok(HttpResponse::Ok().json(claims.into_iter().map(ClaimOut::from).collect::<Vec<_>>()))
}

async fn decide_claim(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
    body: web::Json<ClaimDecision>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let claim = web::block(move || guarantees::decide_claim(&ctx, &who.0, &id, body.into_inner()))
        .await??;
    Ok(HttpResponse::Ok().json(ClaimOut::from(claim)))
}

/// A bond at bid opening: the guarantee and its verification report.
#[derive(Serialize)]
pub struct BondOut {
    guarantee: GuaranteeOut,
    report: VerificationReport,
}

/// Every bond of a project with its report (after bid opening only).
pub async fn bonds_of(
    state: &web::Data<AppState>,
    who: Authenticated,
    project_id: String,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let (project, bonds) =
        web::block(move || guarantees::bonds_at_opening(&ctx, &who.0, &project_id)).await??;
    let passed = bonds
        .iter()
        .filter(|(_, r)| r.indication == crate::pki::Indication::Passed)
        .count();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "project": { "id": project.id, "code": project.code, "name": project.name },
        "count": bonds.len(),
        "passed": passed,
        "bonds": bonds.into_iter().map(|(v, report)| BondOut { guarantee: GuaranteeOut::from(&v), report }).collect::<Vec<_>>(),
    })))
}

async fn bonds(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    bonds_of(&state, who, id.into_inner()).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Award {
    winner_enterprise_id: String,
}

async fn award(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<(String, String)>,
    body: web::Json<Award>,
) -> Result<HttpResponse, ApiError> {
    let (project, section) = path.into_inner();
    let ctx = state.ctx.clone();
    let released = web::block(move || {
        guarantees::award(&ctx, &who.0, &project, &section, &body.winner_enterprise_id)
    })
    .await??;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "released": released })))
}

async fn contract(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (project, section) = path.into_inner();
    let ctx = state.ctx.clone();
    let released =
        web::block(move || guarantees::contract_signed(&ctx, &who.0, &project, &section)).await??;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "released": released })))
}
