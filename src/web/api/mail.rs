//! The operator's view of the mail outbox (`/admin/mail`).

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::china_time;
use crate::mail::outbox::OutboxMail;
use crate::services::mail;
use crate::web::auth::Authenticated;
use crate::web::error::ApiError;
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/mail", web::get().to(list_mail))
        .route("/admin/mail/{id}/retry", web::post().to(retry_mail));
}

/// A mail as the operator sees it: the envelope and delivery state, not the bodies.
#[derive(Serialize)]
struct MailView {
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
            status: m.status,
            attempts: m.attempts,
            last_error: m.last_error,
            next_attempt_at: china_time(m.next_attempt_at),
            created_at: china_time(m.created_at),
            sent_at: m.sent_at.map(china_time),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
}

async fn list_mail(
    state: web::Data<AppState>,
    who: Authenticated,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let pool = state.pool.clone();
    let status = query.into_inner().status;
    let mails = web::block(move || mail::list_mail(&pool, &who.0, status.as_deref())).await??;
    Ok(HttpResponse::Ok().json(mails.into_iter().map(MailView::from).collect::<Vec<_>>()))
}

async fn retry_mail(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let pool = state.pool.clone();
    let mail = web::block(move || mail::retry_mail(&pool, &who.0, &id)).await??;
    Ok(HttpResponse::Ok().json(MailView::from(mail)))
}
