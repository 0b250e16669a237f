//! An organization's webhook endpoint, its events and their delivery log; the operator
//! reads every organization's log and sends an event again.

use actix_web::{delete, get, post, put, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::services::webhooks::{
    self, Attempt, EndpointView, Event, EventFilter, EventKind, EventQuery, EventStatus,
};
use crate::web::api::dto::china_time;
use crate::web::api::listing::{filters, ListRequest, PageParams};
use crate::web::auth::Authenticated;
use crate::web::error::responses::{Conflict, JsonBody, NotFound, SignedIn, Unprocessable};
use crate::web::error::ApiError;
use crate::web::json::Json;
use crate::web::AppState;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(get_endpoint)
        .service(set_endpoint)
        .service(remove_endpoint)
        .service(rotate_secret)
        .service(ping)
        .service(list_events)
        .service(get_event)
        .service(redeliver);
}

/// Where the organization's events go.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointIn {
    /// `https://…` (plain `http://` on private addresses only where the exchange allows
    /// it, e.g. in tests).
    url: String,
}

/// The organization's endpoint.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EndpointOut {
    url: String,
    /// Moves with each rotation of the secret.
    secret_version: i32,
    /// The signing secret (`whsec_…`, used whole as the HMAC-SHA256 key): shown only
    /// when the endpoint is first registered and after a rotation. Keep it; it is not
    /// shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<EndpointView> for EndpointOut {
    fn from(v: EndpointView) -> Self {
        EndpointOut {
            url: v.endpoint.url,
            secret_version: v.endpoint.secret_version,
            secret: v.secret,
            created_at: china_time(v.endpoint.created_at),
            updated_at: china_time(v.endpoint.updated_at),
        }
    }
}

/// An event and where its delivery stands.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EventOut {
    id: String,
    r#type: EventKind,
    organization_id: String,
    status: EventStatus,
    attempts: i32,
    last_error: Option<String>,
    next_attempt_at: String,
    created_at: String,
    delivered_at: Option<String>,
    /// The body every delivery sends, as JSON.
    body: serde_json::Value,
}

impl From<Event> for EventOut {
    fn from(e: Event) -> Self {
        EventOut {
            body: serde_json::from_str(&e.body).unwrap_or(serde_json::Value::Null),
            id: e.id,
            r#type: e.kind,
            organization_id: e.organization_id,
            status: e.status,
            attempts: e.attempts,
            last_error: e.last_error,
            next_attempt_at: china_time(e.next_attempt_at),
            created_at: china_time(e.created_at),
            delivered_at: e.delivered_at.map(china_time),
        }
    }
}

/// One try at delivering an event.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AttemptOut {
    attempted_at: String,
    url: String,
    /// The receiver's HTTP status, when it answered.
    status_code: Option<i32>,
    /// Why the try failed; absent when it was delivered.
    error: Option<String>,
    duration_ms: i32,
}

impl From<Attempt> for AttemptOut {
    fn from(a: Attempt) -> Self {
        AttemptOut {
            attempted_at: china_time(a.attempted_at),
            url: a.url,
            status_code: a.status_code,
            error: a.error,
            duration_ms: a.duration_ms,
        }
    }
}

/// An event with its delivery log.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EventLogOut {
    #[serde(flatten)]
    event: EventOut,
    attempts_log: Vec<AttemptOut>,
}

/// The signed-in organization's endpoint (issuer, agency or enterprise), without its
/// secret.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The endpoint", body = EndpointOut),
        SignedIn,
        NotFound,
    )
)]
#[get("/webhook")]
async fn get_endpoint(
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let endpoint = web::block(move || webhooks::get_endpoint(&ctx, &who.0)).await??;
    Ok(HttpResponse::Ok().json(EndpointOut::from(EndpointView {
        endpoint,
        secret: None,
    })))
}

/// Registers the organization's endpoint, or moves it to another address (the secret
/// stays). Events are pushed from then on: `application.submitted` (issuer),
/// `payment.confirmed` and `guarantee.issued` (enterprise), `amendment.to_sign`
/// (issuer), `amendment.to_accept` (agency), `amendment.accepted` and
/// `amendment.refused` (issuer), `guarantee.accepted` and `guarantee.released`
/// (enterprise and issuer),
/// `claim.filed` (issuer and enterprise), `claim.decided` (agency and enterprise). Each
/// is a POST of `{"id", "type", "created_at", "data"}` with the headers
/// `Baohan-Event-Id`, `Baohan-Event-Type` and `Baohan-Signature: t=<unix>,v1=<hex>`,
/// where v1 is HMAC-SHA256 under the secret of `t`, `.` and the body; refuse a `t` more
/// than 300 s from your clock and de-duplicate by the id (delivery is at least once).
/// A 2xx answer within the timeout is a delivery; anything else is retried with backoff.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = EndpointIn,
    responses(
        (status = 201, description = "Registered; the secret is shown this once", body = EndpointOut),
        (status = 200, description = "Moved to the new address", body = EndpointOut),
        SignedIn,
        JsonBody,
    )
)]
#[put("/webhook")]
async fn set_endpoint(
    state: web::Data<AppState>,
    who: Authenticated,
    body: Json<EndpointIn>,
) -> Result<HttpResponse, ApiError> {
    let ctx = who.context(&state);
    let url = body.into_inner().url;
    let view = web::block(move || webhooks::set_endpoint(&ctx, &who.0, &url)).await??;
    let mut answer = if view.secret.is_some() {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(answer.json(EndpointOut::from(view)))
}

/// Removes the endpoint; events waiting fail at their next try and can be sent again
/// once an endpoint is back.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 204, description = "Removed"),
        SignedIn,
        NotFound,
    )
)]
#[delete("/webhook")]
async fn remove_endpoint(
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let ctx = who.context(&state);
    web::block(move || webhooks::remove_endpoint(&ctx, &who.0)).await??;
    Ok(HttpResponse::NoContent().finish())
}

/// A new signing secret; the old one stops at once (deliveries from now on use the
/// new one).
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 200, description = "The endpoint with its new secret, shown this once", body = EndpointOut),
        SignedIn,
        NotFound,
    )
)]
#[post("/webhook/secret")]
async fn rotate_secret(
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let ctx = who.context(&state);
    let view = web::block(move || webhooks::rotate_secret(&ctx, &who.0)).await??;
    Ok(HttpResponse::Ok().json(EndpointOut::from(view)))
}

/// Queues a `ping` event to the endpoint, to try the receiver.
#[utoipa::path(
    tag = "webhooks",
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 202, description = "Queued", body = EventOut),
        SignedIn,
        NotFound,
    )
)]
#[post("/webhook/ping")]
async fn ping(state: web::Data<AppState>, who: Authenticated) -> Result<HttpResponse, ApiError> {
    let ctx = who.context(&state);
    let event = web::block(move || webhooks::ping(&ctx, &who.0)).await??;
    Ok(HttpResponse::Accepted().json(EventOut::from(event)))
}

/// The organization's events (the operator: every organization's, or one's with
/// `organization`), newest first, one page of them.
#[utoipa::path(
    tag = "webhooks",
    params(EventQuery, PageParams),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "One page of events", body = Vec<EventOut>,
            headers(
                ("X-Total-Count" = i64, description = "How many events the filters match"),
                ("Link" = String, description = "RFC 8288 links to the first, previous, next and last pages, keeping the filters"),
            )),
        SignedIn,
        Unprocessable,
    )
)]
#[get("/webhook/events")]
async fn list_events(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let (page, params) = ListRequest::of(&req)?;
    let filter = filters(params, EventFilter::read)?;
    let ctx = state.ctx.clone();
    let window = page.window();
    let listed = web::block(move || webhooks::list_events(&ctx, &who.0, &filter, window)).await??;
    let rows: Vec<EventOut> = listed.rows.into_iter().map(EventOut::from).collect();
    Ok(page.answer(&rows, listed.total))
}

/// An event and its delivery log, oldest try first.
#[utoipa::path(
    tag = "webhooks",
    params(("id" = String, Path, description = "Event id")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The event and every try", body = EventLogOut),
        SignedIn,
        NotFound,
    )
)]
#[get("/webhook/events/{id}")]
async fn get_event(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let (event, attempts) = web::block(move || webhooks::get_event(&ctx, &who.0, &id)).await??;
    Ok(HttpResponse::Ok().json(EventLogOut {
        event: EventOut::from(event),
        attempts_log: attempts.into_iter().map(AttemptOut::from).collect(),
    }))
}

/// Sends a delivered or failed event again now, with the same id and body and a fresh
/// set of tries (its organization or the operator).
#[utoipa::path(
    tag = "webhooks",
    params(("id" = String, Path, description = "Event id")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 200, description = "Queued again", body = EventOut),
        SignedIn,
        NotFound,
        Conflict,
    )
)]
#[post("/webhook/events/{id}/redeliver")]
async fn redeliver(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = who.context(&state);
    let event = web::block(move || webhooks::redeliver(&ctx, &who.0, &id)).await??;
    Ok(HttpResponse::Ok().json(EventOut::from(event)))
}
