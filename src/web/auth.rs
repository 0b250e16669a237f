//! Who is calling: the `Authenticated` extractor reads an `Authorization: Bearer` token
//! (API token or session token) or the session cookie. Cookie-authenticated requests
//! that change state must echo the session's CSRF token in `X-CSRF-Token`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::http::{Method, StatusCode};
use actix_web::{web, FromRequest, HttpRequest};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::AppState;
use crate::services::auth::{authenticate, Credential};
use crate::services::idempotency::Scope;
use crate::services::{Actor, Context};

pub const SESSION_COOKIE: &str = "baohan_session";
pub const CSRF_HEADER: &str = "X-CSRF-Token";

/// The signed-in actor of a request, and the `Idempotency-Key` claim the request holds
/// when it brought one (set by the idempotency middleware).
#[derive(Debug, Clone)]
pub struct Authenticated(pub Actor, pub Option<Arc<Scope>>);

impl Authenticated {
    /// The services' context for this request: the app's, acting under the request's
    /// `Idempotency-Key` claim if it has one. Handlers that change state use it.
    pub fn context(&self, state: &AppState) -> Context {
        state.ctx.with_idempotency(self.1.clone())
    }
}

/// Where the token came from: a cookie needs CSRF protection, a header does not (a
/// browser never adds it to a cross-site request on its own).
fn token_of(req: &HttpRequest) -> Option<(String, bool)> {
    if let Some(value) = req.headers().get(actix_web::http::header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let token = value.strip_prefix("Bearer ")?.trim();
        return Some((token.to_owned(), false));
    }
    req.cookie(SESSION_COOKIE)
        .map(|c| (c.value().to_owned(), true))
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        use actix_web::HttpMessage;
        // Already resolved earlier in this request (the idempotency middleware does).
        if let Some(known) = req.extensions().get::<Authenticated>().cloned() {
            return Box::pin(async move { Ok(known) });
        }
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| {
                    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "no state")
                })?;
            let (token, from_cookie) = token_of(&req).ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    "sign in or send a valid API token",
                )
            })?;
            let ctx = state.ctx.clone();
            let (actor, credential) = web::block(move || authenticate(&ctx, &token)).await??;
            if from_cookie && !is_safe(req.method()) {
                let sent = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok());
                let expected = match &credential {
                    Credential::Session { csrf_token } => Some(csrf_token.as_str()),
                    Credential::ApiToken => None,
                };
                let ok = matches!((sent, expected), (Some(a), Some(b)) if bool::from(a.as_bytes().ct_eq(b.as_bytes())));
                if !ok {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "csrf_failed",
                        format!("send the session's CSRF token in the {CSRF_HEADER} header"),
                    ));
                }
            }
            Ok(Authenticated(actor, None))
        })
    }
}
