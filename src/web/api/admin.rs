//! The operator's trust administration: trust anchors, CRLs, issuer certificates.

use actix_web::{get, post, web, HttpResponse};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::services::trust::{self, NewIssuerCertificate};
use crate::services::ServiceError;
use crate::web::api::dto::china_time;
use crate::web::auth::Authenticated;
use crate::web::error::responses::{
    BadRequest, Conflict, JsonBody, NotFound, SignedIn, Unprocessable,
};
use crate::web::error::ApiError;
use crate::web::json::Json;
use crate::web::AppState;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(trust_anchor)
        .service(crl)
        .service(issuer_certificate)
        .service(expiring_certificates);
}

/// A CA certificate to trust.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnchorRequest {
    name: String,
    certificate_pem: String,
}

/// A trust anchor as registered.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TrustAnchorOut {
    id: String,
    name: String,
    fingerprint_sha256: String,
    created_at: String,
}

/// Registers a trust anchor (operator).
#[utoipa::path(
    tag = "admin",
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = AnchorRequest,
    responses(
        (status = 201, description = "Registered", body = TrustAnchorOut),
        SignedIn,
        JsonBody,
        Conflict,
    )
)]
#[post("/admin/trust-anchors")]
async fn trust_anchor(
    state: web::Data<AppState>,
    who: Authenticated,
    body: Json<AnchorRequest>,
) -> Result<HttpResponse, ApiError> {
    let ctx = who.context(&state);
    let anchor = web::block(move || {
        trust::register_trust_anchor(&ctx, &who.0, &body.name, &body.certificate_pem)
    })
    .await??;
    Ok(HttpResponse::Created().json(TrustAnchorOut {
        id: anchor.id,
        name: anchor.name,
        fingerprint_sha256: anchor.fingerprint_sha256,
        created_at: china_time(anchor.created_at),
    }))
}

/// A CRL as PEM text or as base64 DER (exactly one of the two).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CrlRequest {
    crl_pem: Option<String>,
    crl_base64: Option<String>,
}

/// A CRL as registered.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CrlOut {
    id: String,
    issuer: String,
    this_update: String,
    next_update: Option<String>,
}

/// Registers a CRL of a trusted CA (operator).
#[utoipa::path(
    tag = "admin",
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = CrlRequest,
    responses(
        (status = 201, description = "Registered", body = CrlOut),
        SignedIn,
        JsonBody,
        Conflict,
    )
)]
#[post("/admin/crls")]
async fn crl(
    state: web::Data<AppState>,
    who: Authenticated,
    body: Json<CrlRequest>,
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
    let ctx = who.context(&state);
    let row = web::block(move || trust::register_crl(&ctx, &who.0, &bytes)).await??;
    Ok(HttpResponse::Created().json(CrlOut {
        id: row.id,
        issuer: row.issuer_name,
        this_update: china_time(row.this_update),
        next_update: row.next_update.map(china_time),
    }))
}

/// An issuer certificate as registered.
#[derive(Serialize, utoipa::ToSchema)]
pub struct IssuerCertificateOut {
    id: String,
    organization_id: String,
    fingerprint_sha256: String,
    subject: String,
    serial: String,
    /// Whether the exchange holds the key and signs for the issuer.
    hosted: bool,
    not_before: String,
    not_after: String,
}

/// Binds a signing certificate (and, for hosted signing, its key) to an issuer
/// (operator).
#[utoipa::path(
    tag = "admin",
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = NewIssuerCertificate,
    responses(
        (status = 201, description = "Registered", body = IssuerCertificateOut),
        SignedIn,
        JsonBody,
        NotFound,
        Conflict,
    )
)]
#[post("/admin/issuer-certificates")]
async fn issuer_certificate(
    state: web::Data<AppState>,
    who: Authenticated,
    body: Json<NewIssuerCertificate>,
) -> Result<HttpResponse, ApiError> {
    let ctx = who.context(&state);
    let row =
        web::block(move || trust::register_issuer_certificate(&ctx, &who.0, body.into_inner()))
            .await??;
    Ok(HttpResponse::Created().json(IssuerCertificateOut {
        hosted: row.encrypted_private_key.is_some(),
        id: row.id,
        organization_id: row.organization_id,
        fingerprint_sha256: row.fingerprint_sha256,
        subject: row.subject,
        serial: row.serial,
        not_before: china_time(row.not_before),
        not_after: china_time(row.not_after),
    }))
}

/// How far ahead to look for certificates that run out.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExpiringQuery {
    /// Days from now, 1 to 366 (default 30, when issuers are mailed).
    within_days: Option<u32>,
}

/// An active issuer certificate that runs out soon, or has.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ExpiringCertificateOut {
    id: String,
    organization_id: String,
    issuer_name: String,
    fingerprint_sha256: String,
    subject: String,
    serial: String,
    hosted: bool,
    not_after: String,
    /// Whole days left; negative once it has run out.
    days_left: i64,
    /// When the issuer was mailed about it, if it was.
    notified_at: Option<String>,
}

/// The active issuer certificates that run out within the given days, or have, soonest
/// first (operator): the ones to renew.
#[utoipa::path(
    tag = "admin",
    params(ExpiringQuery),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "Certificates to renew", body = Vec<ExpiringCertificateOut>),
        SignedIn,
        BadRequest,
        Unprocessable,
    )
)]
#[get("/admin/issuer-certificates/expiring")]
async fn expiring_certificates(
    state: web::Data<AppState>,
    who: Authenticated,
    query: web::Query<ExpiringQuery>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let within = query
        .into_inner()
        .within_days
        .unwrap_or(trust::CERTIFICATE_EXPIRY_NOTICE_DAYS);
    let now = ctx.now();
    let rows = web::block(move || trust::expiring_certificates(&ctx, &who.0, within)).await??;
    let out: Vec<ExpiringCertificateOut> = rows
        .into_iter()
        .map(|row| {
            let c = row.certificate;
            ExpiringCertificateOut {
                hosted: c.encrypted_private_key.is_some(),
                days_left: (c.not_after - now).num_days(),
                notified_at: c.expiry_notice_at.map(china_time),
                not_after: china_time(c.not_after),
                id: c.id,
                organization_id: c.organization_id,
                issuer_name: row.issuer.name,
                fingerprint_sha256: c.fingerprint_sha256,
                subject: c.subject,
                serial: c.serial,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(out))
}
