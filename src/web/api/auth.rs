//! Sign-in, sign-out, who am I, and API tokens.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::services::{self, Actor};
use crate::web::api::dto::china_time;
use crate::web::auth::{Authenticated, SESSION_COOKIE};
use crate::web::error::responses::{
    JsonBody, NotFound, SignedIn, TooManyRequests, Unauthenticated,
};
use crate::web::error::ApiError;
use crate::web::rate_limit::{Limit, RateLimited};
use crate::web::AppState;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(login)
        .service(logout)
        .service(me)
        .service(create_token)
        .service(revoke_token);
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    username: String,
    password: String,
}

/// Who the caller is.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ActorView {
    user_id: String,
    organization_id: String,
    /// operator, agency, enterprise, issuer or provider.
    organization_kind: String,
    role: String,
}

impl From<&Actor> for ActorView {
    fn from(a: &Actor) -> Self {
        ActorView {
            user_id: a.user_id.clone(),
            organization_id: a.organization_id.clone(),
            organization_kind: a.organization_kind.as_str().to_owned(),
            role: a.role.as_str().to_owned(),
        }
    }
}

/// A new session.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LoginOut {
    /// The session token, for `Authorization: Bearer`; also set as the session cookie.
    token: String,
    /// Echo in `X-CSRF-Token` on cookie-authenticated requests that change state.
    csrf_token: String,
    expires_at: String,
    username: String,
    display_name: String,
    actor: ActorView,
}

/// A new API token; the token itself is shown only here.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ApiTokenOut {
    id: String,
    name: String,
    token: String,
    created_at: String,
}

/// Answers with a session token (for `Authorization: Bearer`) and sets the same token
/// as an HttpOnly cookie for browsers, with the CSRF token they must echo.
#[utoipa::path(
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in; the session cookie is set too", body = LoginOut),
        JsonBody,
        Unauthenticated,
        TooManyRequests,
    )
)]
#[post("/auth/login", wrap = "RateLimited(Limit::SignIn)")]
async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let LoginRequest { username, password } = body.into_inner();
    let ctx = state.ctx.clone();
    let signed_in = web::block(move || services::auth::login(&ctx, &username, &password)).await??;
    let secure = req.connection_info().scheme() == "https"
        || state.settings.public_base_url.starts_with("https://");
    let cookie = Cookie::build(SESSION_COOKIE, signed_in.session_token.clone())
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Strict)
        .finish();
    Ok(HttpResponse::Ok().cookie(cookie).json(LoginOut {
        actor: ActorView::from(&signed_in.actor),
        token: signed_in.session_token,
        csrf_token: signed_in.csrf_token,
        expires_at: china_time(signed_in.expires_at),
        username: signed_in.username,
        display_name: signed_in.display_name,
    }))
}

/// Ends the session of the token or cookie sent, and removes the cookie.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses((status = 204, description = "Signed out"), SignedIn)
)]
#[post("/auth/logout")]
async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    _who: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let token = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
        .or_else(|| req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned()));
    if let Some(token) = token {
        let ctx = state.ctx.clone();
        web::block(move || services::auth::logout(&ctx, &token)).await??;
    }
    let mut gone = Cookie::build(SESSION_COOKIE, "").path("/").finish();
    gone.make_removal();
    Ok(HttpResponse::NoContent().cookie(gone).finish())
}

/// The signed-in actor.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = []), ("session_cookie" = [])),
    responses((status = 200, description = "The caller", body = ActorView), Unauthenticated)
)]
#[get("/auth/me")]
async fn me(who: Authenticated) -> HttpResponse {
    HttpResponse::Ok().json(ActorView::from(&who.0))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    name: String,
}

/// Creates an API token for machine clients, acting as the caller.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = TokenRequest,
    responses(
        (status = 201, description = "The token, shown only now", body = ApiTokenOut),
        SignedIn,
        JsonBody,
    )
)]
#[post("/auth/tokens")]
async fn create_token(
    state: web::Data<AppState>,
    who: Authenticated,
    body: web::Json<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let (row, token) =
        web::block(move || services::auth::create_api_token(&ctx, &who.0, &body.into_inner().name))
            .await??;
    Ok(HttpResponse::Created().json(ApiTokenOut {
        id: row.id,
        name: row.name,
        token,
        created_at: china_time(row.created_at),
    }))
}

/// Revokes an API token of the caller's organization.
#[utoipa::path(
    tag = "auth",
    params(("id" = String, Path, description = "API token id")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 204, description = "Revoked; the token no longer works"),
        SignedIn,
        NotFound,
    )
)]
#[delete("/auth/tokens/{id}")]
async fn revoke_token(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    web::block(move || services::auth::revoke_api_token(&ctx, &who.0, &id)).await??;
    Ok(HttpResponse::NoContent().finish())
}
