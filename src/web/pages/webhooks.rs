//! An organization's event pushes on the pages: its endpoint (registered, moved, its
//! secret shown once when made or rotated), the events sent to it with their delivery
//! state, each event's log of tries, and sending one again; the operator sees every
//! organization's events and sends any again.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::agency::china_time;
use super::enterprise::run;
use super::errors::PageError;
use super::paging::{query_of, PageQuery, Pager, Paging};
use super::session::{SignedForm, Visitor};
use super::{page, redirect_with_flash, Chrome};
use crate::domain::party::Role;
use crate::services::webhooks::{self, Attempt, Endpoint, Event, EventFilter, EventStatus};
use crate::services::ServiceError;
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/webhooks", web::get().to(overview))
        .route("/webhooks/endpoint", web::post().to(set_endpoint))
        .route("/webhooks/secret", web::post().to(rotate_secret))
        .route("/webhooks/events/{id}", web::get().to(event_page))
        .route("/webhooks/events/{id}/redeliver", web::post().to(redeliver));
}

/// Who has this page: the organizations events go to, and the operator.
const VIEWERS: &[Role] = &[Role::Issuer, Role::Agency, Role::Enterprise, Role::Operator];

struct EventRow {
    id: String,
    kind: String,
    organization: String,
    status: String,
    status_key: &'static str,
    attempts: i32,
    last_error: String,
    created: String,
    may_redeliver: bool,
}

fn row(tr: super::i18n::Tr, e: &Event) -> EventRow {
    EventRow {
        id: e.id.clone(),
        kind: e.kind.as_str().to_owned(),
        organization: e.organization_id.clone(),
        status: tr.t(&format!("webhook-status-{}", e.status.as_str())),
        status_key: e.status.as_str(),
        attempts: e.attempts,
        last_error: e.last_error.clone().unwrap_or_default(),
        created: china_time(e.created_at),
        may_redeliver: e.status != EventStatus::Pending,
    }
}

#[derive(Template)]
#[template(path = "pages/webhooks/overview.html")]
struct OverviewPage {
    chrome: Chrome,
    operator: bool,
    endpoint: Option<Endpoint>,
    /// Shown once, right after the endpoint is made or its secret rotated.
    secret: Option<String>,
    url: String,
    /// (value, words, chosen)
    statuses: Vec<(&'static str, String, bool)>,
    rows: Vec<EventRow>,
    pager: Pager,
    error: Option<String>,
}

#[derive(Deserialize)]
struct OverviewQuery {
    status: Option<String>,
    page: Option<u32>,
    size: Option<u32>,
}

async fn overview(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    query: web::Query<OverviewQuery>,
) -> Result<HttpResponse, PageError> {
    visitor.require(VIEWERS)?;
    render(&req, &state, &visitor, query.into_inner(), None, None, None).await
}

/// The overview, with a secret to show once or an error about the address typed.
async fn render(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    visitor: &Visitor,
    query: OverviewQuery,
    secret: Option<String>,
    typed: Option<String>,
    error: Option<String>,
) -> Result<HttpResponse, PageError> {
    let paging = Paging::from_query(&PageQuery {
        page: query.page,
        size: query.size,
    });
    let status = query.status.filter(|s| !s.is_empty());
    let chosen: Option<EventStatus> = status.as_deref().and_then(|s| s.parse().ok());
    let actor = visitor.actor.clone();
    let operator = actor.role == Role::Operator;
    let (endpoint, listed) = run(state, move |ctx| {
        let endpoint = if operator {
            None
        } else {
            match webhooks::get_endpoint(ctx, &actor) {
                Ok(e) => Some(e),
                Err(ServiceError::NotFound(_)) => None,
                Err(e) => return Err(e),
            }
        };
        let filter = EventFilter {
            statuses: chosen.into_iter().collect(),
            ..EventFilter::default()
        };
        let listed = webhooks::list_events(ctx, &actor, &filter, paging.window())?;
        Ok((endpoint, listed))
    })
    .await?;
    let chrome = Chrome::titled(req, visitor, "webhooks-title");
    let tr = chrome.tr;
    let filters = query_of(&[("status", status.as_deref())]);
    let base = if filters.is_empty() {
        "/webhooks".to_owned()
    } else {
        format!("/webhooks?{filters}")
    };
    let html = OverviewPage {
        operator,
        url: typed
            .or_else(|| endpoint.as_ref().map(|e| e.url.clone()))
            .unwrap_or_default(),
        endpoint,
        secret,
        statuses: EventStatus::ALL
            .iter()
            .map(|s| {
                (
                    s.as_str(),
                    tr.t(&format!("webhook-status-{}", s.as_str())),
                    Some(*s) == chosen,
                )
            })
            .collect(),
        rows: listed.rows.iter().map(|e| row(tr, e)).collect(),
        pager: Pager::new(&base, paging, listed.total),
        error,
        chrome: chrome.clone(),
    }
    .render()?;
    Ok(page(&chrome, html))
}

#[derive(Deserialize)]
struct EndpointForm {
    #[serde(default)]
    url: String,
}

fn no_query() -> OverviewQuery {
    OverviewQuery {
        status: None,
        page: None,
        size: None,
    }
}

async fn set_endpoint(
    req: HttpRequest,
    state: web::Data<AppState>,
    posted: SignedForm<EndpointForm>,
) -> Result<HttpResponse, PageError> {
    let SignedForm { visitor, form } = posted;
    visitor.require(&VIEWERS[..3])?;
    let actor = visitor.actor.clone();
    let url = form.url.clone();
    let made = run(&state, move |ctx| webhooks::set_endpoint(ctx, &actor, &url)).await;
    match made {
        // A new endpoint: its secret is on this answer, never in a redirect.
        Ok(view) if view.secret.is_some() => {
            secret_page(render(&req, &state, &visitor, no_query(), view.secret, None, None).await)
        }
        Ok(_) => Ok(redirect_with_flash(
            &req,
            "/webhooks",
            "flash-webhook-saved",
        )),
        Err(PageError::Service(ServiceError::Invalid { message, .. })) => {
            let tr = super::i18n::Tr::new(super::i18n::Lang::of(&req));
            let mut error = tr.t("webhook-error-url");
            if tr.lang == super::i18n::Lang::En {
                error = format!("{error} ({message})");
            }
            let mut answer = render(
                &req,
                &state,
                &visitor,
                no_query(),
                None,
                Some(form.url),
                Some(error),
            )
            .await?;
            *answer.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
            Ok(answer)
        }
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
struct Nothing {}

async fn rotate_secret(
    req: HttpRequest,
    state: web::Data<AppState>,
    posted: SignedForm<Nothing>,
) -> Result<HttpResponse, PageError> {
    let visitor = posted.visitor;
    visitor.require(&VIEWERS[..3])?;
    let actor = visitor.actor.clone();
    let view = run(&state, move |ctx| webhooks::rotate_secret(ctx, &actor)).await?;
    secret_page(render(&req, &state, &visitor, no_query(), view.secret, None, None).await)
}

/// A page showing a secret is kept by nobody: not the browser's cache, not a proxy's.
fn secret_page(page: Result<HttpResponse, PageError>) -> Result<HttpResponse, PageError> {
    let mut page = page?;
    page.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(page)
}

#[derive(Template)]
#[template(path = "pages/webhooks/event.html")]
struct EventPage {
    chrome: Chrome,
    event: EventRow,
    body: String,
    attempts: Vec<AttemptRow>,
}

struct AttemptRow {
    at: String,
    url: String,
    status: String,
    error: String,
    duration_ms: i32,
}

fn attempt_row(a: &Attempt) -> AttemptRow {
    AttemptRow {
        at: china_time(a.attempted_at),
        url: a.url.clone(),
        status: a.status_code.map(|s| s.to_string()).unwrap_or_default(),
        error: a.error.clone().unwrap_or_default(),
        duration_ms: a.duration_ms,
    }
}

async fn event_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    visitor.require(VIEWERS)?;
    let actor = visitor.actor.clone();
    let id = id.into_inner();
    let (event, attempts) = run(&state, move |ctx| webhooks::get_event(ctx, &actor, &id)).await?;
    let chrome = Chrome::titled(&req, &visitor, "webhooks-event-title");
    let body = serde_json::from_str::<serde_json::Value>(&event.body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| event.body.clone());
    let html = EventPage {
        event: row(chrome.tr, &event),
        body,
        attempts: attempts.iter().map(attempt_row).collect(),
        chrome: chrome.clone(),
    }
    .render()?;
    Ok(page(&chrome, html))
}

async fn redeliver(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    posted: SignedForm<Nothing>,
) -> Result<HttpResponse, PageError> {
    let visitor = posted.visitor;
    visitor.require(VIEWERS)?;
    let actor = visitor.actor.clone();
    let id = id.into_inner();
    let back = format!("/webhooks/events/{id}");
    run(&state, move |ctx| webhooks::redeliver(ctx, &actor, &id)).await?;
    Ok(redirect_with_flash(
        &req,
        &back,
        "flash-webhook-redelivered",
    ))
}
