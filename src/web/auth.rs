//! Who is calling: the `Authenticated` extractor reads an `Authorization: Bearer` token
//! (API token or session token) or the session cookie. Cookie-authenticated requests
//! that change state must echo the session's CSRF token in `X-CSRF-Token`.
//!
//! The `Authorization` header is read as RFC 9110 says: the scheme is case-insensitive,
//! spaces after it are allowed, a token with spaces inside is malformed. A header with
//! another scheme (`Basic ...`, which browsers add on their own for some sites) is not
//! ours and never hides a valid session cookie. Two `Authorization` headers are refused:
//! proxies and servers may pick different ones.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::http::{Method, StatusCode};
use actix_web::{web, FromRequest, HttpRequest};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::AppState;
use crate::services::auth::{kept, look_up, Credential};
use crate::services::idempotency::Scope;
use crate::services::{Actor, Context};

pub const SESSION_COOKIE: &str = "baohan_session";
/// The cookie of the next page's flash message (a catalogue key), set by the pages.
pub const FLASH_COOKIE: &str = "baohan_flash";
pub const CSRF_HEADER: &str = "X-CSRF-Token";

/// The signed-in actor of a request, the credential it proved itself with, and the
/// `Idempotency-Key` claim the request holds when it brought one (set by the
/// idempotency middleware).
#[derive(Debug, Clone)]
pub struct Authenticated(pub Actor, pub Credential, pub Option<Arc<Scope>>);

impl Authenticated {
    /// The services' context for this request: the app's, acting under the request's
    /// `Idempotency-Key` claim if it has one. Handlers that change state use it.
    pub fn context(&self, state: &AppState) -> Context {
        state.ctx.with_idempotency(self.2.clone())
    }
}

/// What the request offers as a credential.
#[derive(Debug, PartialEq, Eq)]
enum Offered {
    /// A bearer token from the `Authorization` header.
    Bearer(String),
    /// The session cookie's value: needs CSRF protection on state changes (a browser
    /// adds cookies to cross-site requests, never an `Authorization` header).
    Cookie(String),
}

/// Why the request's credentials could not even be read.
const NO_CREDENTIALS: &str = "sign in or send a valid API token";

fn unauthenticated(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
}

/// The credential a request offers: a bearer token, else the session cookie.
fn offered(req: &HttpRequest) -> Result<Offered, ApiError> {
    let mut headers = req
        .headers()
        .get_all(actix_web::http::header::AUTHORIZATION);
    let first = headers.next();
    if headers.next().is_some() {
        return Err(ApiError::bad_request(
            "send one Authorization header, not several",
        ));
    }
    if let Some(value) = first {
        let value = value
            .to_str()
            .map_err(|_| unauthenticated("the Authorization header is not readable text"))?;
        let value = value.trim_matches([' ', '\t']);
        let (scheme, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            let token = rest.trim_matches([' ', '\t']);
            if token.is_empty() || token.contains(char::is_whitespace) {
                return Err(unauthenticated(
                    "the Authorization header must be `Bearer <token>`",
                ));
            }
            return Ok(Offered::Bearer(token.to_owned()));
        }
        // Another scheme is not for us: fall through to the cookie.
    }
    req.cookie(SESSION_COOKIE)
        .map(|c| Offered::Cookie(c.value().to_owned()))
        .ok_or_else(|| unauthenticated(NO_CREDENTIALS))
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
            let (token, from_cookie) = match offered(&req)? {
                Offered::Bearer(token) => (token, false),
                Offered::Cookie(token) => (token, true),
            };
            // A credential this instance holds answers without the database.
            let (actor, credential) = match kept(&state.ctx, &token) {
                Some(resolved) => (resolved.actor, resolved.credential),
                None => {
                    let ctx = state.ctx.clone();
                    let resolved = web::block(move || look_up(&ctx, &token)).await??;
                    (resolved.actor, resolved.credential)
                }
            };
            if from_cookie && !is_safe(req.method()) {
                let sent = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok());
                let expected = match &credential {
                    Credential::Session { csrf_token, .. } => Some(csrf_token.as_str()),
                    Credential::ApiToken { .. } => None,
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
            Ok(Authenticated(actor, credential, None))
        })
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn read(headers: &[&str], cookie: Option<&str>) -> Result<Offered, u16> {
        let mut req = TestRequest::default();
        for value in headers {
            req = req.append_header(("Authorization", *value));
        }
        if let Some(cookie) = cookie {
            req = req.cookie(actix_web::cookie::Cookie::new(SESSION_COOKIE, cookie));
        }
        offered(&req.to_http_request()).map_err(|e| e.status.as_u16())
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_spaces_around_the_token_are_allowed() {
        for header in [
            "Bearer t1",
            "bearer t1",
            "BEARER t1",
            "Bearer   t1",
            " Bearer t1 ",
            "Bearer\tt1",
        ] {
            assert_eq!(
                read(&[header], None),
                Ok(Offered::Bearer("t1".into())),
                "{header:?}"
            );
        }
    }

    #[test]
    fn malformed_bearer_headers_are_refused_not_read_as_something_else() {
        for header in ["Bearer", "Bearer ", "Bearer a b", "Bearer a\tb"] {
            assert_eq!(read(&[header], Some("c1")), Err(401), "{header:?}");
        }
    }

    #[test]
    fn another_scheme_never_hides_the_session_cookie() {
        assert_eq!(
            read(&["Basic dXNlcjpwYXNz"], Some("c1")),
            Ok(Offered::Cookie("c1".into()))
        );
        assert_eq!(read(&["Basic dXNlcjpwYXNz"], None), Err(401));
        assert_eq!(read(&[], Some("c1")), Ok(Offered::Cookie("c1".into())));
        assert_eq!(read(&[], None), Err(401));
    }

    #[test]
    fn two_authorization_headers_are_refused() {
        assert_eq!(read(&["Bearer t1", "Bearer t2"], None), Err(400));
        assert_eq!(read(&["Basic x", "Bearer t2"], Some("c1")), Err(400));
    }
}
