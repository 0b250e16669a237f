//! Friendly error pages for browsers. A page handler fails with a [`PageError`]; its
//! answer carries a [`PageFailure`] that the edge middleware turns into an HTML page in
//! the visitor's language, with the request id to quote (see [`browser_page`]). Any
//! other error a browser meets (an unknown address, a body too large) gets the same
//! page for its status; API clients keep the JSON shape.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use askama::Template;

use super::i18n::{Lang, Tr};
use super::{Chrome, Nav};
use crate::services::ServiceError;

/// Why a page could not be shown.
#[derive(Debug)]
pub enum PageError {
    /// No live session: sign in, then come back to `next`.
    SignIn { next: String },
    /// A form without its session's CSRF token (or with another's).
    Csrf,
    /// A form that is not a form of ours (fields missing or of the wrong shape).
    BadForm(String),
    /// Too many tries: wait this long.
    TooMany(std::time::Duration),
    /// What the services refused or failed with.
    Service(ServiceError),
}

impl PageError {
    pub fn internal(what: &str) -> PageError {
        PageError::Service(ServiceError::Internal(anyhow::anyhow!("{what}")))
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PageError::SignIn { .. } => f.write_str("sign in first"),
            PageError::Csrf => f.write_str("the form's CSRF token is missing or wrong"),
            PageError::BadForm(e) => write!(f, "the form cannot be read: {e}"),
            PageError::TooMany(_) => f.write_str("too many tries"),
            PageError::Service(e) => write!(f, "{e}"),
        }
    }
}

impl From<ServiceError> for PageError {
    fn from(e: ServiceError) -> PageError {
        PageError::Service(e)
    }
}

impl From<actix_web::error::BlockingError> for PageError {
    fn from(_: actix_web::error::BlockingError) -> PageError {
        PageError::internal("the blocking pool is gone")
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> PageError {
        PageError::Service(ServiceError::Internal(anyhow::Error::new(e)))
    }
}

/// What the error page says: a catalogue key for the title and one for the advice, and
/// the service's own words when they help (a conflict names the current state).
#[derive(Debug, Clone)]
pub struct PageFailure {
    pub title: &'static str,
    pub advice: &'static str,
    pub detail: Option<String>,
}

impl PageFailure {
    /// The page for a status when nothing more is known.
    pub fn for_status(status: StatusCode) -> PageFailure {
        let (title, advice) = match status.as_u16() {
            400 => ("error-400-title", "error-400-advice"),
            401 | 403 => ("error-403-title", "error-403-advice"),
            404 | 405 => ("error-404-title", "error-404-advice"),
            409 => ("error-409-title", "error-409-advice"),
            413 => ("error-413-title", "error-413-advice"),
            422 => ("error-400-title", "error-400-advice"),
            429 => ("error-429-title", "error-429-advice"),
            503 => ("error-503-title", "error-503-advice"),
            _ => ("error-500-title", "error-500-advice"),
        };
        PageFailure {
            title,
            advice,
            detail: None,
        }
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::SignIn { .. } => StatusCode::SEE_OTHER,
            PageError::Csrf => StatusCode::FORBIDDEN,
            PageError::BadForm(_) => StatusCode::BAD_REQUEST,
            PageError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            PageError::Service(e) => match e {
                ServiceError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                ServiceError::Unauthenticated => StatusCode::UNAUTHORIZED,
                ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
                ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
                ServiceError::Conflict(_) | ServiceError::InvalidTransition { .. } => {
                    StatusCode::CONFLICT
                }
                ServiceError::SignatureRejected(_) => StatusCode::UNPROCESSABLE_ENTITY,
                ServiceError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let PageError::SignIn { next } = self {
            let to = format!("/login?next={}", urlencode(next));
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, to))
                .finish();
        }
        let status = self.status_code();
        let mut failure = PageFailure::for_status(status);
        match self {
            PageError::Csrf => {
                failure.title = "error-csrf-title";
                failure.advice = "error-csrf-advice";
            }
            PageError::BadForm(e) => failure.detail = Some(e.clone()),
            PageError::Service(ServiceError::Internal(e)) => {
                tracing::error!(error = format!("{e:#}"), "page failed");
            }
            PageError::Service(ServiceError::Unavailable(e)) => {
                tracing::warn!(error = %e, "page failed: database unavailable");
            }
            // The service's words name what is wrong (the current state, the field).
            PageError::Service(e) => failure.detail = Some(e.to_string()),
            PageError::SignIn { .. } | PageError::TooMany(_) => {}
        }
        let mut builder = HttpResponse::build(status);
        if let PageError::TooMany(wait) = self {
            let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
            builder.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        let mut response = builder
            .insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8"))
            .body(self.to_string());
        response.extensions_mut().insert(failure);
        response
    }
}

/// Percent-encodes a query value.
pub fn urlencode(value: &str) -> String {
    url_escape(value)
}

fn url_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Whether a request is a browser's asking for a page (not the API, and HTML accepted).
pub fn wants_html(req: &HttpRequest) -> bool {
    !req.path().starts_with("/api/")
        && req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
}

#[derive(Template)]
#[template(path = "pages/error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    status: u16,
    title: String,
    advice: String,
    detail: Option<&'a str>,
    request_id: Option<String>,
}

/// The HTML page for an error a browser met.
pub fn browser_page(
    req: &HttpRequest,
    status: StatusCode,
    failure: Option<&PageFailure>,
) -> HttpResponse {
    use actix_web::HttpMessage;
    let lang = Lang::of(req);
    let tr = Tr::new(lang);
    let fallback = PageFailure::for_status(status);
    let failure = failure.unwrap_or(&fallback);
    let request_id = req
        .extensions()
        .get::<tracing_actix_web::RequestId>()
        .map(|id| id.to_string());
    let title = tr.t(failure.title);
    let page = ErrorPage {
        chrome: Chrome::anonymous(req, lang, &title, Nav::None),
        status: status.as_u16(),
        advice: tr.t(failure.advice),
        title,
        detail: failure.detail.as_deref(),
        request_id,
    };
    match page.render() {
        Ok(html) => HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
            .body(html),
        Err(e) => {
            tracing::error!(error = %e, "error page failed to render");
            HttpResponse::build(status).finish()
        }
    }
}
