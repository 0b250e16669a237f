//! Applications for a guarantee: the enterprise applies and withdraws; the issuer
//! approves, declines, confirms payment, fetches the draft and issues (hosted signing)
//! or uploads its own signature (external signing).

use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::china_time;
use super::guarantees::IssuedOut;
use crate::domain::money::Amount;
use crate::services::applications::{self, ApplicationView, NewApplication};
use crate::services::guarantees;
use crate::web::auth::Authenticated;
use crate::web::error::ApiError;
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/applications", web::post().to(apply))
        .route("/applications", web::get().to(list))
        .route("/applications/{id}", web::get().to(get))
        .route("/applications/{id}/withdraw", web::post().to(withdraw))
        .route("/applications/{id}/approve", web::post().to(approve))
        .route("/applications/{id}/decline", web::post().to(decline))
        .route(
            "/applications/{id}/confirm-payment",
            web::post().to(confirm_payment),
        )
        .route("/applications/{id}/draft", web::get().to(draft))
        .route("/applications/{id}/issue", web::post().to(issue_hosted))
        .route(
            "/applications/{id}/signature",
            web::post().to(upload_signature),
        );
}

#[derive(Serialize)]
pub struct NamedParty {
    pub id: String,
    pub name: String,
    pub uscc: String,
}

impl From<&crate::db::models::Organization> for NamedParty {
    fn from(o: &crate::db::models::Organization) -> Self {
        NamedParty {
            id: o.id.clone(),
            name: o.name.clone(),
            uscc: o.uscc.clone(),
        }
    }
}

#[derive(Serialize)]
struct ApplicationOut {
    id: String,
    status: String,
    kind: String,
    amount: String,
    amount_in_words: String,
    valid_from: String,
    valid_until: String,
    premium: Option<String>,
    decline_reason: Option<String>,
    project: serde_json::Value,
    section: serde_json::Value,
    enterprise: NamedParty,
    issuer: NamedParty,
    created_at: String,
    updated_at: String,
}

impl From<ApplicationView> for ApplicationOut {
    fn from(v: ApplicationView) -> Self {
        let a = v.application;
        let amount = Amount::from_fen(a.amount_fen);
        ApplicationOut {
            id: a.id,
            status: a.status,
            kind: a.kind,
            amount: amount.to_string(),
            amount_in_words: amount.to_chinese_capital(),
            valid_from: china_time(a.valid_from),
            valid_until: china_time(a.valid_until),
            premium: a.premium_fen.map(|p| Amount::from_fen(p).to_string()),
            decline_reason: a.decline_reason,
            project: serde_json::json!({
                "id": v.project.id, "code": v.project.code, "name": v.project.name,
                "bid_deadline": china_time(v.project.bid_deadline),
            }),
            section: serde_json::json!({ "id": v.section.id, "code": v.section.code, "name": v.section.name }),
            enterprise: NamedParty::from(&v.enterprise),
            issuer: NamedParty::from(&v.issuer),
            created_at: china_time(a.created_at),
            updated_at: china_time(a.updated_at),
        }
    }
}

async fn apply(
    state: web::Data<AppState>,
    who: Authenticated,
    body: web::Json<NewApplication>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let view = web::block(move || applications::apply(&ctx, &who.0, body.into_inner())).await??;
    Ok(HttpResponse::Created().json(ApplicationOut::from(view)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
}

async fn list(
    state: web::Data<AppState>,
    who: Authenticated,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let views =
        web::block(move || applications::list(&ctx, &who.0, query.status.as_deref())).await??;
    Ok(HttpResponse::Ok().json(
        views
            .into_iter()
            .map(ApplicationOut::from)
            .collect::<Vec<_>>(),
    ))
}

async fn get(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let view = web::block(move || applications::get(&ctx, &who.0, &id)).await??;
    Ok(HttpResponse::Ok().json(ApplicationOut::from(view)))
}

async fn withdraw(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let view = web::block(move || applications::withdraw(&ctx, &who.0, &id)).await??;
    Ok(HttpResponse::Ok().json(ApplicationOut::from(view)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Approval {
    premium: String,
}

async fn approve(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
    body: web::Json<Approval>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let view =
        web::block(move || applications::approve(&ctx, &who.0, &id, &body.premium)).await??;
    Ok(HttpResponse::Ok().json(ApplicationOut::from(view)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Refusal {
    reason: String,
}

async fn decline(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
    body: web::Json<Refusal>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let view = web::block(move || applications::decline(&ctx, &who.0, &id, &body.reason)).await??;
    Ok(HttpResponse::Ok().json(ApplicationOut::from(view)))
}

async fn confirm_payment(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let view = web::block(move || applications::confirm_payment(&ctx, &who.0, &id)).await??;
    Ok(HttpResponse::Ok().json(ApplicationOut::from(view)))
}

/// The exact bytes to sign, served as they are stored.
async fn draft(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let draft = web::block(move || guarantees::draft(&ctx, &who.0, &id)).await??;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("X-Guarantee-Number", draft.guarantee_number.clone()))
        .insert_header(("X-Document-Version", draft.version.to_string()))
        .insert_header(("X-Document-SHA256", draft.document_sha256.clone()))
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{}.json\"", draft.guarantee_number),
        ))
        .body(draft.document))
}

async fn issue_hosted(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let issued = web::block(move || guarantees::issue_hosted(&ctx, &who.0, &id)).await??;
    Ok(HttpResponse::Created().json(IssuedOut::from(issued)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureUpload {
    signature_base64: String,
}

/// The signature arrives as raw DER (`application/pkcs7-signature` or
/// `application/octet-stream`) or as JSON `{ "signature_base64": "..." }`.
async fn upload_signature(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let signature = if content_type.starts_with("application/json") {
        let upload: SignatureUpload = serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                actix_web::http::StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("invalid JSON body: {e}"),
            )
        })?;
        base64::engine::general_purpose::STANDARD
            .decode(upload.signature_base64.trim())
            .map_err(|_| {
                crate::services::ServiceError::invalid("signature_base64", "is not base64")
            })?
    } else if content_type.starts_with("application/pkcs7-signature")
        || content_type.starts_with("application/octet-stream")
    {
        body.to_vec()
    } else {
        return Err(ApiError::new(
            actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the DER signature as application/pkcs7-signature, or JSON with signature_base64",
        ));
    };
    let ctx = state.ctx.clone();
    let issued =
        web::block(move || guarantees::upload_signature(&ctx, &who.0, &id, signature)).await??;
    Ok(HttpResponse::Created().json(IssuedOut::from(issued)))
}
