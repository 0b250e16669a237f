//! Verification: public, by guarantee number and verification code or by the document
//! and signature someone holds; and in bulk for an agency's project at bid opening.

use actix_web::{web, HttpResponse};
use base64::Engine as _;
use serde::Deserialize;

use crate::services::guarantees::{self, ExpectationsInput};
use crate::services::ServiceError;
use crate::web::auth::Authenticated;
use crate::web::error::ApiError;
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/verify", web::post().to(verify))
        .route("/verify/bulk", web::post().to(bulk));
}

/// Either `number` + `code`, or `document_base64` + `signature_base64`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyRequest {
    number: Option<String>,
    code: Option<String>,
    document_base64: Option<String>,
    signature_base64: Option<String>,
    #[serde(default)]
    expectations: ExpectationsInput,
}

fn decode(field: &str, value: &str) -> Result<Vec<u8>, ServiceError> {
    base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|_| ServiceError::invalid(field, "is not base64"))
}

async fn verify(
    state: web::Data<AppState>,
    body: web::Json<VerifyRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner();
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkRequest {
    project_id: String,
}

async fn bulk(
    state: web::Data<AppState>,
    who: Authenticated,
    body: web::Json<BulkRequest>,
) -> Result<HttpResponse, ApiError> {
    super::guarantees::bonds_of(&state, who, body.into_inner().project_id).await
}
