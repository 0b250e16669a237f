//! HTTP: the JSON API under `/api/v1`, health probes, and the middleware every request
//! passes (request ids and logs, security headers, body limits, JSON errors).

pub mod api;
pub mod auth;
pub mod error;
pub mod health;
pub mod idempotency;
pub mod letter;
pub mod openapi;
pub mod rate_limit;
pub mod routes;

use std::sync::Arc;

use actix_web::middleware::{DefaultHeaders, ErrorHandlers};
use actix_web::web;

use crate::config::Settings;
use crate::db::DbPool;
pub use routes::Routes;

/// Where the JSON API lives.
pub const API_PREFIX: &str = "/api/v1";

/// What every handler can reach.
pub struct AppState {
    pub pool: DbPool,
    pub settings: Arc<Settings>,
    /// Keys, the verifier and the pool, as the services want them.
    pub ctx: crate::services::Context,
}

/// Registers every route and the extractor settings (body limits, error shapes).
pub fn configure(max_body_bytes: usize) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(
            web::JsonConfig::default()
                .limit(max_body_bytes)
                .error_handler(error::json_error),
        )
        .app_data(web::PayloadConfig::new(max_body_bytes))
        .app_data(web::PathConfig::default().error_handler(error::path_error))
        .app_data(web::QueryConfig::default().error_handler(error::query_error));
        routes(cfg);
        cfg.default_service(web::to(error::not_found));
    }
}

/// Every route of the app: the probes, the API description and the API.
pub fn routes<R: Routes>(r: &mut R) {
    health::routes(r);
    openapi::routes(r);
    r.scope(API_PREFIX, api::routes);
}

/// The `(method, path)` pairs the app registers (method in lowercase, the full path),
/// found by running [`routes`] against a recorder rather than read from a list.
pub fn registered_operations() -> Vec<(String, String)> {
    let mut list = routes::RouteList::default();
    routes(&mut list);
    list.into_operations()
}

/// Headers on every answer: no sniffing, no framing, no referrer leaks, and pages may
/// load only our own resources.
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"))
        .add((
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        ))
}

/// Rewrites any error answer that is not JSON yet into the JSON error shape.
pub fn json_errors<B: 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(error::ensure_json_error)
}

/// Echoes the request id that the tracing logger gave the request as `X-Request-Id`, so
/// a user's complaint can be matched to the log lines.
pub async fn request_id_header(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    use actix_web::HttpMessage;
    let id = req
        .extensions()
        .get::<tracing_actix_web::RequestId>()
        .map(|id| id.to_string());
    let mut res = next.call(req).await?;
    if let Some(id) = id.and_then(|id| actix_web::http::header::HeaderValue::from_str(&id).ok()) {
        res.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("x-request-id"),
            id,
        );
    }
    Ok(res)
}
