//! Sign-in, sign-out, who am I, and API tokens.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::services::{self, Actor};
use crate::web::api::dto::china_time;
use crate::web::auth::{Authenticated, SESSION_COOKIE};
use crate::web::error::responses::{
    JsonBody, NotFound, SignedIn, TooManyRequests, Unauthenticated, Unprocessable,
};
use crate::web::error::ApiError;
use crate::web::json::Json;
use crate::web::rate_limit::{too_many_requests, Limit, RateLimited};
use crate::web::AppState;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(login)
        .service(logout)
        .service(me)
        .service(create_token)
        .service(list_tokens)
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
    /// When it stops working.
    expires_at: String,
}

/// An API token of the organization, as listed (never the token itself).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ApiTokenEntryOut {
    id: String,
    name: String,
    /// The user who made it; the token acts as this user.
    username: String,
    created_at: String,
    expires_at: String,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
    /// `active`, `expired` or `revoked`.
    status: String,
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
    body: Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let LoginRequest { username, password } = body.into_inner();
    // Passwords guessed for one account from many addresses still meet a limit.
    if let Err(wait) = state.rate_limits.check_account(&username) {
        return Ok(too_many_requests(wait));
    }
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

/// Ends the session the request was authenticated with, and removes the cookie. An
/// API token does not sign out (422): revoke it with `DELETE /auth/tokens/{id}`.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 204, description = "Signed out: the session no longer works"),
        SignedIn,
        Unprocessable,
    )
)]
#[post("/auth/logout")]
async fn logout(state: web::Data<AppState>, who: Authenticated) -> Result<HttpResponse, ApiError> {
    let ctx = who.context(&state);
    web::block(move || services::auth::logout(&ctx, &who.1)).await??;
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
    /// Days until the token stops working: 1 to the exchange's longest lifetime
    /// (`BAOHAN_API_TOKEN_LIFETIME_DAYS`, default 365), which is also the default.
    #[schema(minimum = 1)]
    expires_in_days: Option<u32>,
}

/// Creates an API token for machine clients, acting as the caller. Only from a
/// signed-in session (an API token cannot make tokens).
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
    body: Json<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let ctx = who.context(&state);
    let TokenRequest {
        name,
        expires_in_days,
    } = body.into_inner();
    let input = services::auth::NewApiToken {
        name,
        expires_in_days,
        max_days: state.settings.api_token_lifetime_days,
    };
    let (row, token) =
        web::block(move || services::auth::create_api_token(&ctx, &who.0, &who.1, input)).await??;
    Ok(HttpResponse::Created().json(ApiTokenOut {
        id: row.id,
        name: row.name,
        token,
        created_at: china_time(row.created_at),
        expires_at: china_time(row.expires_at),
    }))
}

/// The API tokens of the caller's organization, newest first, with who made each and
/// when it was last used (to the minute).
#[utoipa::path(
    tag = "auth",
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The organization's tokens", body = Vec<ApiTokenEntryOut>),
        SignedIn,
    )
)]
#[get("/auth/tokens")]
async fn list_tokens(
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let now = ctx.now();
    let tokens = web::block(move || services::auth::list_api_tokens(&ctx, &who.0)).await??;
    let out: Vec<ApiTokenEntryOut> = tokens
        .into_iter()
        .map(|entry| {
            let t = entry.token;
            let status = if t.revoked_at.is_some() {
                "revoked"
            } else if t.expires_at <= now {
                "expired"
            } else {
                "active"
            };
            ApiTokenEntryOut {
                id: t.id,
                name: t.name,
                username: entry.username,
                created_at: china_time(t.created_at),
                expires_at: china_time(t.expires_at),
                last_used_at: t.last_used_at.map(china_time),
                revoked_at: t.revoked_at.map(china_time),
                status: status.to_owned(),
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(out))
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
    let ctx = who.context(&state);
    web::block(move || services::auth::revoke_api_token(&ctx, &who.0, &id)).await??;
    Ok(HttpResponse::NoContent().finish())
}
