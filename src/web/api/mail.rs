//! The operator's view of the mail outbox (`/admin/mail`).

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::services::mail::{self, MailFilter, MailQuery, OutboxMail};
use crate::web::api::dto::china_time;
use crate::web::api::listing::{filters, ListRequest, PageParams};
use crate::web::auth::Authenticated;
use crate::web::error::responses::{Conflict, NotFound, SignedIn, Unprocessable};
use crate::web::error::ApiError;
use crate::web::AppState;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_mail).service(retry_mail);
}

/// A mail as the operator sees it: the envelope and delivery state, not the bodies.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MailView {
    id: String,
    to: String,
    subject: String,
    status: String,
    attempts: i32,
    last_error: Option<String>,
    next_attempt_at: String,
    created_at: String,
    sent_at: Option<String>,
}

impl From<OutboxMail> for MailView {
    fn from(m: OutboxMail) -> Self {
        MailView {
            id: m.id,
            to: m.to_address,
            subject: m.subject,
            status: m.status.to_string(),
            attempts: m.attempts,
            last_error: m.last_error,
            next_attempt_at: china_time(m.next_attempt_at),
            created_at: china_time(m.created_at),
            sent_at: m.sent_at.map(china_time),
        }
    }
}

/// The outbox (operator), narrowed by the filters, one page of it, newest first.
#[utoipa::path(
    tag = "mail",
    params(MailQuery, PageParams),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "One page of mails", body = Vec<MailView>,
            headers(
                ("X-Total-Count" = i64, description = "How many mails the filters match"),
                ("Link" = String, description = "RFC 8288 links to the first, previous, next and last pages, keeping the filters"),
            )),
        SignedIn,
        Unprocessable,
    )
)]
#[get("/admin/mail")]
async fn list_mail(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let (page, params) = ListRequest::of(&req)?;
    let filter = filters(params, MailFilter::read)?;
    let pool = state.pool.clone();
    let window = page.window();
    let listed = web::block(move || mail::list(&pool, &who.0, &filter, window)).await??;
    let rows: Vec<MailView> = listed.rows.into_iter().map(MailView::from).collect();
    Ok(page.answer(&rows, listed.total))
}

/// Queues a failed mail for another attempt now (operator).
#[utoipa::path(
    tag = "mail",
    params(("id" = String, Path, description = "Mail id")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 200, description = "Queued again", body = MailView),
        SignedIn,
        NotFound,
        Conflict,
    )
)]
#[post("/admin/mail/{id}/retry")]
async fn retry_mail(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = who.context(&state);
    let mail = web::block(move || mail::retry_mail(&ctx, &who.0, &id)).await??;
    Ok(HttpResponse::Ok().json(MailView::from(mail)))
}
