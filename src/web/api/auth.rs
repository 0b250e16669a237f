//! Sign-in, sign-out, who am I, and API tokens.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::china_time;
use crate::services::{self, Actor};
use crate::web::auth::{Authenticated, SESSION_COOKIE};
use crate::web::error::ApiError;
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/login", web::post().to(login))
        .route("/auth/logout", web::post().to(logout))
        .route("/auth/me", web::get().to(me))
        .route("/auth/tokens", web::post().to(create_token))
        .route("/auth/tokens/{id}", web::delete().to(revoke_token));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Serialize)]
struct ActorView<'a> {
    user_id: &'a str,
    organization_id: &'a str,
    organization_kind: &'a str,
    role: &'a str,
}

impl<'a> From<&'a Actor> for ActorView<'a> {
    fn from(a: &'a Actor) -> Self {
        ActorView {
            user_id: &a.user_id,
            organization_id: &a.organization_id,
            organization_kind: a.organization_kind.as_str(),
            role: a.role.as_str(),
        }
    }
}

/// Answers with a session token (for `Authorization: Bearer`) and sets the same token
/// as an HttpOnly cookie for browsers, with the CSRF token they must echo.
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
    Ok(HttpResponse::Ok().cookie(cookie).json(serde_json::json!({
        "token": signed_in.session_token,
        "csrf_token": signed_in.csrf_token,
        "expires_at": china_time(signed_in.expires_at),
        "username": signed_in.username,
        "display_name": signed_in.display_name,
        "actor": ActorView::from(&signed_in.actor),
    })))
}

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

async fn me(who: Authenticated) -> HttpResponse {
    HttpResponse::Ok().json(ActorView::from(&who.0))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    name: String,
}

async fn create_token(
    state: web::Data<AppState>,
    who: Authenticated,
    body: web::Json<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let (row, token) =
        web::block(move || services::auth::create_api_token(&ctx, &who.0, &body.into_inner().name))
            .await??;
    Ok(HttpResponse::Created().json(serde_json::json!({
        "id": row.id,
        "name": row.name,
        "token": token,
        "created_at": china_time(row.created_at),
    })))
}

async fn revoke_token(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    web::block(move || services::auth::revoke_api_token(&ctx, &who.0, &id)).await??;
    Ok(HttpResponse::NoContent().finish())
}
