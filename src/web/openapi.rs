//! The API description, `GET /api/openapi.json`: generated from the handlers'
//! `#[utoipa::path]` attributes and the `ToSchema` derives on the types they read and
//! answer, never written by hand.
//!
//! That the description covers exactly the routes the app serves is checked by the
//! integration test `openapi`: it compares [`documented_operations`] with
//! [`crate::web::registered_operations`], which runs the very `routes` functions that
//! configure actix against a recorder (see [`crate::web::routes`]).

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::api::dto::{Binary, SignedDocument};
use super::auth::{CSRF_HEADER, SESSION_COOKIE};
use super::error::ErrorBody;
use super::Routes;

/// The whole description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Baohan",
        version = env!("CARGO_PKG_VERSION"),
        description = "Electronic bid-bond guarantee exchange (电子投标保函). JSON under \
            `/api/v1`; errors answer `{ \"error\": { \"code\", \"message\", \"details\" } }` \
            with a 4xx or 5xx status. Amounts are decimal yuan strings, times RFC 3339 \
            strings in China time. Sign in with `POST /api/v1/auth/login` and send the \
            token as `Authorization: Bearer`, or (browsers) rely on the session cookie and \
            echo the CSRF token in `X-CSRF-Token` on requests that change state."
    ),
    paths(
        super::health::healthz,
        super::health::readyz,
        openapi_json,
        super::api::auth::login,
        super::api::auth::logout,
        super::api::auth::me,
        super::api::auth::create_token,
        super::api::auth::revoke_token,
        super::api::admin::trust_anchor,
        super::api::admin::crl,
        super::api::admin::issuer_certificate,
        super::api::organizations::create_organization,
        super::api::organizations::list_organizations,
        super::api::organizations::get_organization,
        super::api::organizations::create_user,
        super::api::projects::create_project,
        super::api::projects::list_projects,
        super::api::projects::get_project,
        super::api::projects::update_project,
        super::api::projects::postpone,
        super::api::applications::apply,
        super::api::applications::list,
        super::api::applications::get,
        super::api::applications::withdraw,
        super::api::applications::approve,
        super::api::applications::decline,
        super::api::applications::confirm_payment,
        super::api::applications::draft,
        super::api::applications::issue_hosted,
        super::api::applications::upload_signature,
        super::api::guarantees::list,
        super::api::guarantees::get,
        super::api::guarantees::document,
        super::api::guarantees::signature,
        super::api::guarantees::chain,
        super::api::guarantees::letter,
        super::api::guarantees::accept,
        super::api::guarantees::release,
        super::api::guarantees::cancel,
        super::api::guarantees::revoke,
        super::api::guarantees::file_claim,
        super::api::guarantees::list_claims,
        super::api::guarantees::decide_claim,
        super::api::guarantees::bonds,
        super::api::guarantees::award,
        super::api::guarantees::contract,
        super::api::verify::verify,
        super::api::verify::bulk,
        super::api::mail::list_mail,
        super::api::mail::retry_mail,
    ),
    // Types the paths name are collected from them; these are the ones only named in
    // hand-built responses.
    components(schemas(ErrorBody, Binary, SignedDocument)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "health", description = "Probes for the load balancer"),
        (name = "openapi", description = "This description"),
        (name = "auth", description = "Sign-in, sessions and API tokens"),
        (name = "admin", description = "Trust administration: anchors, CRLs, issuer certificates"),
        (name = "organizations", description = "Organizations and their users (operator)"),
        (name = "projects", description = "Tender projects, bid opening, awards (agency)"),
        (name = "applications", description = "Applying for, approving and issuing guarantees"),
        (name = "guarantees", description = "Issued guarantees, their files and lifecycle"),
        (name = "claims", description = "Demands on guarantees (索赔) and decisions"),
        (name = "verification", description = "Verifying a guarantee's signature and registration"),
        (name = "mail", description = "The mail outbox (operator)"),
    )
)]
pub struct ApiDoc;

/// The security schemes the paths refer to: a bearer token (API or session token), or
/// the session cookie together with the CSRF header for requests that change state.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token (POST /api/v1/auth/tokens) or the session token from \
                         POST /api/v1/auth/login",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "The HttpOnly session cookie set by login (browsers)",
            ))),
        );
        components.add_security_scheme(
            "csrf_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                CSRF_HEADER,
                "The session's CSRF token from login; required with the cookie on requests \
                 that change state",
            ))),
        );
    }
}

/// Registers `GET /api/openapi.json`.
pub fn routes<R: Routes>(r: &mut R) {
    r.get("/api/openapi.json", openapi_json);
}

/// This description, as OpenAPI 3.1 JSON.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "openapi",
    responses((status = 200, description = "The OpenAPI description of this API", body = Object))
)]
async fn openapi_json() -> HttpResponse {
    static SPEC: OnceLock<String> = OnceLock::new();
    let spec = SPEC.get_or_init(|| {
        ApiDoc::openapi()
            .to_json()
            .unwrap_or_else(|e| unreachable!("the description serializes: {e}"))
    });
    HttpResponse::Ok()
        .content_type("application/json")
        .body(spec.as_str())
}

/// The `(method, path)` pairs the description documents, method in lowercase.
pub fn documented_operations() -> Vec<(String, String)> {
    let spec = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let mut operations = Vec::new();
    if let Some(paths) = spec["paths"].as_object() {
        for (path, item) in paths {
            for method in item.as_object().into_iter().flat_map(|m| m.keys()) {
                if matches!(
                    method.as_str(),
                    "get" | "put" | "post" | "delete" | "options" | "head" | "patch" | "trace"
                ) {
                    operations.push((method.clone(), path.clone()));
                }
            }
        }
    }
    operations
}
