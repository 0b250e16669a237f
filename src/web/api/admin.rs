//! The operator's trust administration: trust anchors, CRLs, issuer certificates.

use actix_web::{web, HttpResponse};
use base64::Engine as _;
use serde::Deserialize;

use super::china_time;
use crate::services::trust::{self, NewIssuerCertificate};
use crate::services::ServiceError;
use crate::web::auth::Authenticated;
use crate::web::error::ApiError;
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/trust-anchors", web::post().to(trust_anchor))
        .route("/admin/crls", web::post().to(crl))
        .route(
            "/admin/issuer-certificates",
            web::post().to(issuer_certificate),
        );
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnchorRequest {
    name: String,
    certificate_pem: String,
}

async fn trust_anchor(
    state: web::Data<AppState>,
    who: Authenticated,
    body: web::Json<AnchorRequest>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let anchor = web::block(move || {
        trust::register_trust_anchor(&ctx, &who.0, &body.name, &body.certificate_pem)
    })
    .await??;
    Ok(HttpResponse::Created().json(serde_json::json!({
        "id": anchor.id, "name": anchor.name, "fingerprint_sha256": anchor.fingerprint_sha256,
        "created_at": china_time(anchor.created_at),
    })))
}

/// A CRL as PEM text or as base64 DER.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CrlRequest {
    crl_pem: Option<String>,
    crl_base64: Option<String>,
}

async fn crl(
    state: web::Data<AppState>,
    who: Authenticated,
    body: web::Json<CrlRequest>,
) -> Result<HttpResponse, ApiError> {
    let bytes = match body.into_inner() {
        CrlRequest {
            crl_pem: Some(pem),
            crl_base64: None,
        } => pem.into_bytes(),
        CrlRequest {
            crl_pem: None,
            crl_base64: Some(b64),
        } => base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| ServiceError::invalid("crl_base64", "is not base64"))?,
        _ => return Err(ServiceError::invalid("crl_pem", "send crl_pem or crl_base64").into()),
    };
    let ctx = state.ctx.clone();
    let row = web::block(move || trust::register_crl(&ctx, &who.0, &bytes)).await??;
    Ok(HttpResponse::Created().json(serde_json::json!({
        "id": row.id, "issuer": row.issuer_name,
        "this_update": china_time(row.this_update), "next_update": row.next_update.map(china_time),
    })))
}

async fn issuer_certificate(
    state: web::Data<AppState>,
    who: Authenticated,
    body: web::Json<NewIssuerCertificate>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let row =
        web::block(move || trust::register_issuer_certificate(&ctx, &who.0, body.into_inner()))
            .await??;
    Ok(HttpResponse::Created().json(serde_json::json!({
        "id": row.id, "organization_id": row.organization_id, "fingerprint_sha256": row.fingerprint_sha256,
        "subject": row.subject, "serial": row.serial, "hosted": row.encrypted_private_key.is_some(),
        "not_before": china_time(row.not_before), "not_after": china_time(row.not_after),
    })))
}
