//! The exchange's public figures (`/stats`), as JSON; the statistics page shows the same.

use actix_web::{get, web, HttpResponse};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::services::stats::{self, ExchangeStats};
use crate::web::error::ApiError;
use crate::web::AppState;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(exchange_stats);
}

/// Guarantees issued, enterprises and projects served and the bid bonds taken out of
/// cash, by month and by issuer kind (public; aggregates only).
#[utoipa::path(
    tag = "statistics",
    responses((status = 200, description = "The figures", body = ExchangeStats))
)]
#[get("/stats")]
async fn exchange_stats(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let figures = web::block(move || stats::exchange_stats(&ctx)).await??;
    Ok(HttpResponse::Ok().json(&*figures))
}
