//! Verification: public, by guarantee number and verification code or by the document
//! and signature someone holds; and in bulk for an agency's project at bid opening.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use base64::Engine as _;
use serde::Deserialize;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::domain::guarantee_number::GuaranteeNumber;
use crate::pki::{SignaturePolicy, VerificationReport};
use crate::services::guarantees::{self, ExpectationsInput};
use crate::services::ServiceError;
use crate::web::auth::Authenticated;
use crate::web::error::responses::{Conflict, JsonBody, NotFound, SignedIn, TooManyRequests};
use crate::web::error::{ApiError, ErrorBody};
use crate::web::json::Json;
use crate::web::rate_limit::{too_many_requests, Limit, RateLimited};
use crate::web::AppState;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(verify).service(bulk).service(signature_policy);
}

/// Either `number` + `code`, or `document_base64` + `signature_base64`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// Guarantee number (保函编号), with `code`.
    number: Option<String>,
    /// The verification code printed on the letter, with `number` (8 characters;
    /// lowercase is read as uppercase).
    #[schema(pattern = r"^[2-9A-HJKMNP-Za-hjkmnp-z]{8}$")]
    code: Option<String>,
    /// The document bytes, base64, with `signature_base64`.
    document_base64: Option<String>,
    /// The detached CMS signature (DER), base64, with `document_base64`.
    signature_base64: Option<String>,
    /// What the guarantee must satisfy besides a valid signature.
    #[serde(default)]
    expectations: ExpectationsInput,
}

fn decode(field: &str, value: &str) -> Result<Vec<u8>, ServiceError> {
    base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|_| ServiceError::invalid(field, "is not base64"))
}

/// Verifies a guarantee by number and code, or a document and signature someone holds
/// (public). The answer is a report whatever the outcome; only malformed requests are
/// errors.
#[utoipa::path(
    tag = "verification",
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "The verification report", body = VerificationReport),
        (status = 404, description = "No guarantee has this number and verification code (the same answer whether the number exists or not)", body = ErrorBody),
        JsonBody,
        TooManyRequests,
    )
)]
#[post("/verify", wrap = "RateLimited(Limit::PublicVerification)")]
async fn verify(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<VerifyRequest>,
) -> Result<HttpResponse, ApiError> {
    crate::web::page_cache::writes_nothing(&req);
    let request = body.into_inner();
    // Codes guessed for one number from many addresses still meet a limit. A number
    // that does not parse is refused before any lookup, so it is not counted.
    if let Some(number) = request.number.as_deref() {
        if let Ok(number) = GuaranteeNumber::parse(number) {
            if let Err(wait) = state.rate_limits.check_number(number.as_str()) {
                return Ok(too_many_requests(wait));
            }
        }
    }
    let ctx = state.ctx.clone();
    let report = web::block(move || match request {
        VerifyRequest {
            number: Some(number),
            code: Some(code),
            document_base64: None,
            signature_base64: None,
            expectations,
        } => guarantees::verify_by_number(&ctx, &number, &code, expectations),
        VerifyRequest {
            number: None,
            code: None,
            document_base64: Some(document),
            signature_base64: Some(signature),
            expectations,
        } => {
            let document = decode("document_base64", &document)?;
            let signature = decode("signature_base64", &signature)?;
            guarantees::verify_documents(&ctx, &document, &signature, expectations)
        }
        _ => Err(ServiceError::invalid(
            "number",
            "send number and code, or document_base64 and signature_base64",
        )),
    })
    .await??;
    Ok(HttpResponse::Ok().json(report))
}

/// The project whose bonds to verify.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    project_id: String,
}

/// Verifies every bond of a project at bid opening (agency); the same answer as
/// `GET /api/v1/projects/{id}/bonds`.
#[utoipa::path(
    tag = "verification",
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = BulkRequest,
    responses(
        (status = 200, description = "The bonds and their reports", body = super::guarantees::BondsOut),
        SignedIn,
        JsonBody,
        NotFound,
        Conflict,
    )
)]
#[post("/verify/bulk")]
async fn bulk(
    state: web::Data<AppState>,
    who: Authenticated,
    body: Json<BulkRequest>,
) -> Result<HttpResponse, ApiError> {
    super::guarantees::bonds_of(&state, who, body.into_inner().project_id, None).await
}

/// The signature policy in force: the digest algorithms, keys, key usages and claimed
/// signing-time limits a guarantee's signature must meet (public).
#[utoipa::path(
    tag = "verification",
    responses((status = 200, description = "The policy in force", body = SignaturePolicy))
)]
#[get("/signature-policy")]
async fn signature_policy(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(state.ctx.verifier.engine().policy())
}
