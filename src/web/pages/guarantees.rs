//! A guarantee's pages for its parties: the printable letter (`NO.html`).

use actix_web::{web, HttpResponse};

use super::errors::PageError;
use super::session::Visitor;
use crate::services::guarantees;
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/guarantees/{number}/letter", web::get().to(letter));
}

/// The letter as its parties print it (the same as the API's, reached by signing in).
async fn letter(
    state: web::Data<AppState>,
    visitor: Visitor,
    number: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let ctx = state.ctx.clone();
    let number = number.into_inner();
    let html = web::block(move || {
        let view = guarantees::get(&ctx, &visitor.actor, &number)?;
        crate::web::letter::render(&ctx, &view)
    })
    .await??;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}
