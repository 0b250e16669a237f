//! The browser's side of a session: the signed-in visitor of a page (from the session
//! cookie only: a bearer token is for machine clients), the CSRF token every form
//! carries, the short-lived form token of the sign-in form, and flash messages.

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{web, FromRequest, HttpRequest};
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use super::errors::PageError;
use crate::domain::party::Role;
use crate::services::auth::{Credential, Who};
use crate::services::{self, Actor, Context};
use crate::web::auth::SESSION_COOKIE;
use crate::web::AppState;

/// A signed-in visitor. Extracting it from a request without a live session ends the
/// request on the sign-in page, which then returns to the page asked for.
#[derive(Debug, Clone)]
pub struct Visitor {
    pub actor: Actor,
    pub who: Who,
    pub session_id: String,
    pub csrf_token: String,
    /// When the session stops working (a page kept for it is not served after).
    pub session_expires_at: chrono::NaiveDateTime,
}

impl Visitor {
    pub fn role(&self) -> Role {
        self.actor.role
    }

    /// Checks the CSRF token a form sent against the session's.
    pub fn check_csrf(&self, sent: &str) -> Result<(), PageError> {
        if bool::from(sent.as_bytes().ct_eq(self.csrf_token.as_bytes())) && !sent.is_empty() {
            Ok(())
        } else {
            Err(PageError::Csrf)
        }
    }

    /// Refuses a visitor of another role (403 page).
    pub fn require(&self, roles: &[Role]) -> Result<(), PageError> {
        if roles.contains(&self.actor.role) {
            Ok(())
        } else {
            Err(PageError::Service(services::ServiceError::Forbidden(
                "this page is for another role".into(),
            )))
        }
    }

    /// Lets this request's page be kept and served again to the same session while
    /// nothing has been written since ([`crate::web::page_cache`]). Only for pages that
    /// show what the database holds and nothing else: no flash, no per-request record
    /// (a look at a credit archive is logged, so its page is never kept).
    pub fn cacheable(&self, req: &HttpRequest) {
        crate::web::page_cache::allow(req, self.session_expires_at);
    }

    /// The credential the services want (sign-out, tokens).
    pub fn credential(&self) -> Credential {
        Credential::Session {
            id: self.session_id.clone(),
            csrf_token: self.csrf_token.clone(),
        }
    }
}

/// The page asked for, to come back to after signing in: the path and query of a GET,
/// the referring page of anything else (a form posted with an expired session goes
/// back to its form, not to the POST address).
fn come_back_to(req: &HttpRequest) -> String {
    if req.method() == actix_web::http::Method::GET {
        return req
            .uri()
            .path_and_query()
            .map_or("/".to_owned(), |p| p.as_str().to_owned());
    }
    "/".to_owned()
}

/// The visitor of a request, or `None` when it has no live session.
pub async fn visitor_of(req: &HttpRequest) -> Result<Option<Visitor>, PageError> {
    let Some(token) = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned()) else {
        return Ok(None);
    };
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(PageError::internal("no state"));
    };
    // A session this instance holds answers without the database.
    if let Some(resolved) = services::auth::kept(&state.ctx, &token) {
        return Ok(visitor(resolved));
    }
    let ctx: Context = state.ctx.clone();
    let found = web::block(move || -> Result<Option<Visitor>, services::ServiceError> {
        match services::auth::look_up(&ctx, &token) {
            Ok(resolved) => Ok(visitor(resolved)),
            Err(services::ServiceError::Unauthenticated) => Ok(None),
            Err(e) => Err(e),
        }
    })
    .await
    .map_err(|_| PageError::internal("blocking task"))??;
    Ok(found)
}

/// The visitor a resolved credential is, if it is a browser session (an API token in
/// the cookie is not).
fn visitor(resolved: services::auth::Resolved) -> Option<Visitor> {
    let Credential::Session { id, csrf_token } = resolved.credential else {
        return None;
    };
    Some(Visitor {
        actor: resolved.actor,
        who: resolved.who,
        session_id: id,
        csrf_token,
        session_expires_at: resolved.expires_at,
    })
}

impl FromRequest for Visitor {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            visitor_of(&req).await?.ok_or_else(|| PageError::SignIn {
                next: come_back_to(&req),
            })
        })
    }
}

/// A form posted by a signed-in visitor, its CSRF token checked: `T` is the form's own
/// fields (the token travels beside them as `csrf_token`).
pub struct SignedForm<T> {
    pub visitor: Visitor,
    pub form: T,
}

#[derive(serde::Deserialize)]
struct WithCsrf<T> {
    #[serde(default)]
    csrf_token: String,
    #[serde(flatten)]
    form: T,
}

impl<T: DeserializeOwned + 'static> FromRequest for SignedForm<T> {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        let form = web::Form::<WithCsrf<T>>::from_request(&req, payload);
        Box::pin(async move {
            // The session first: an expired one goes to sign-in, whatever the form says.
            let visitor = visitor_of(&req).await?.ok_or_else(|| PageError::SignIn {
                next: referring_path(&req).unwrap_or_else(|| "/".to_owned()),
            })?;
            let posted = form
                .await
                .map_err(|e| PageError::BadForm(e.to_string()))?
                .into_inner();
            visitor.check_csrf(&posted.csrf_token)?;
            Ok(SignedForm {
                visitor,
                form: posted.form,
            })
        })
    }
}

/// The page a form was posted from (its `Referer`, on this site only).
pub fn referring_path(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(actix_web::http::header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(same_site_path)
}

/// The path and query of a URL on this site (a `Referer`), never another site's.
fn same_site_path(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = &rest[rest.find('/')?..];
    safe_next(path)
}

/// Where to go after signing in: a local path only (`/...`, never `//host` or a scheme),
/// so the sign-in page cannot be used to send someone elsewhere.
pub fn safe_next(next: &str) -> Option<String> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control());
    ok.then(|| next.to_owned())
}

/// The cookie of the sign-in form's token (no session exists yet to hold one).
pub const FORM_COOKIE: &str = "baohan_form";
pub use crate::web::auth::FLASH_COOKIE;

/// A cookie the pages set: HttpOnly, SameSite=Strict, whole site.
pub fn cookie(name: &'static str, value: String, secure: bool) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Strict)
        .finish()
}

/// A cookie's removal.
pub fn removal(name: &'static str) -> Cookie<'static> {
    let mut c = Cookie::build(name, "").path("/").finish();
    c.make_removal();
    c
}

/// Whether the visitor reached the exchange over TLS (cookies are then Secure).
pub fn secure(req: &HttpRequest, state: &AppState) -> bool {
    req.connection_info().scheme() == "https"
        || state.settings.public_base_url.starts_with("https://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(
            safe_next("/issuer/queue?page=2").as_deref(),
            Some("/issuer/queue?page=2")
        );
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil",
            "evil",
            "/a\nb",
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?}");
        }
        assert_eq!(
            same_site_path("http://127.0.0.1:8080/enterprise/applications").as_deref(),
            Some("/enterprise/applications")
        );
    }
}
