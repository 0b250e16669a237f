//! Probes for the load balancer: `/healthz` (the process answers) and `/readyz` (the
//! database takes a write too).

use actix_web::http::StatusCode;
use actix_web::{get, web, HttpResponse, ResponseError};
use serde::Serialize;
use utoipa_actix_web::service_config::ServiceConfig;

use super::error::{ApiError, ErrorBody};
use super::AppState;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(healthz).service(readyz);
}

/// The process answers.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Liveness {
    /// Always `ok`.
    status: &'static str,
}

/// The process answers and the database takes a write.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// Always `ready`.
    status: &'static str,
    /// Always `ok`.
    database: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(
    tag = "health",
    responses((status = 200, description = "Alive", body = Liveness))
)]
#[get("/healthz")]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Liveness { status: "ok" })
}

/// Readiness: the database takes a write too (every sign-in writes).
#[utoipa::path(
    tag = "health",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "The database is not reachable or refuses writes", body = ErrorBody),
    )
)]
#[get("/readyz")]
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let pool = state.pool.clone();
    let ready = web::block(move || -> Result<(), String> {
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        crate::db::check_writable(&mut conn).map_err(|e| e.to_string())
    })
    .await;
    match ready {
        Ok(Ok(())) => HttpResponse::Ok().json(Readiness {
            status: "ready",
            database: "ok",
        }),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            unavailable("the database is not reachable or refuses writes")
        }
        Err(_) => unavailable("the service is busy"),
    }
}

fn unavailable(message: &str) -> HttpResponse {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message).error_response()
}
