//! HTTP: the JSON API under `/api/v1`, health probes, and the middleware every request
//! passes (request ids and logs, the edges of [`http_edges`]: security headers, body
//! limits and deadlines, JSON errors, 405s).

pub mod api;
pub mod auth;
pub mod client_address;
pub mod control_chars;
pub mod dispatch;
pub mod error;
pub mod health;
pub mod http_edges;
pub mod idempotency;
pub mod json;
pub mod letter;
pub mod openapi;
pub mod page_cache;
pub mod pages;
pub mod rate_limit;

use std::sync::Arc;

use actix_web::dev::{ServiceFactory, ServiceRequest};
use actix_web::{web, App};
use utoipa::OpenApi;
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::{scope, AppExt};

use crate::config::Settings;
use crate::db::DbPool;

/// Where the JSON API lives.
pub const API_PREFIX: &str = "/api/v1";

/// What every handler can reach.
pub struct AppState {
    pub pool: DbPool,
    pub settings: Arc<Settings>,
    /// Keys, the verifier and the pool, as the services want them.
    pub ctx: crate::services::Context,
    /// The per-client limits, shared by every worker.
    pub rate_limits: rate_limit::RateLimits,
    /// Signed-in pages kept as rendered, shared by every worker.
    pub page_cache: Arc<page_cache::PageCache>,
}

/// Adds every route to `app`, with the extractor settings, the API description the
/// routes make (served at `/api/openapi.json`) and the route table read from it (for
/// 405s); returns the app and that description.
pub fn with_routes<T>(app: App<T>, max_body_bytes: usize) -> (App<T>, utoipa::openapi::OpenApi)
where
    T: ServiceFactory<ServiceRequest, Config = (), Error = actix_web::Error, InitError = ()>,
{
    let (app, mut description) = app
        .into_utoipa_app()
        .openapi(openapi::ApiDoc::openapi())
        .configure(configure(max_body_bytes))
        .split_for_parts();
    // The pages are plain routes: they are not part of the API description.
    let app = app.configure(pages::routes);
    utoipa::Modify::modify(&openapi::IdempotencyHeaders, &mut description);
    openapi::add_answers_of_the_edges(&mut description);
    let served = web::Data::new(openapi::Description::new(&description));
    let routes = web::Data::new(http_edges::Routes::from_description(&description));
    (app.app_data(served).app_data(routes), description)
}

/// The API description, as the server builds and serves it (the body limit does not
/// show in it).
pub fn description() -> utoipa::openapi::OpenApi {
    with_routes(App::new(), 0).1
}

/// Registers every route and the extractor settings (body limits, error shapes).
/// Handlers read JSON with [`json::Json`], which takes its limit from the
/// `PayloadConfig`; the `JsonConfig` shapes the errors of any extractor of actix's own.
fn configure(max_body_bytes: usize) -> impl FnOnce(&mut ServiceConfig) {
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
        cfg.default_service(web::to(http_edges::no_route));
    }
}

/// Every route of the app: the probes, the API description and the API.
///
/// Routes are registered only with `service(handler)`, where the handler carries both
/// an actix route attribute (`#[post("/auth/login")]`: method, path, middleware) and
/// `#[utoipa::path(...)]` (its description): `utoipa-actix-web` accepts nothing else
/// there, and adds each handler's operation to the description as it registers it.
/// (Its `route` and `map` pass-throughs would bypass that; they are not used.)
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.configure(health::routes)
        .configure(openapi::routes)
        .service(
            scope(API_PREFIX)
                .wrap(actix_web::middleware::from_fn(control_chars::middleware))
                .configure(api::routes),
        );
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
