//! Signing in and out, and the language switch.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::errors::PageError;
use super::i18n::{Lang, LANG_COOKIE};
use super::session::{self, safe_next, SignedForm, FORM_COOKIE};
use super::{page, Chrome, Nav};
use crate::services::{self, ServiceError};
use crate::web::auth::SESSION_COOKIE;
use crate::web::rate_limit::{check_page_request, Limit};
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/login")
            .route(web::get().to(form))
            .route(web::post().to(sign_in)),
    )
    .route("/logout", web::post().to(sign_out))
    .route("/lang", web::get().to(switch_language));
}

#[derive(Template)]
#[template(path = "pages/login.html")]
struct LoginPage {
    chrome: Chrome,
    next: String,
    form_token: String,
    username: String,
    error: Option<String>,
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// A fresh form token: the sign-in form carries it and its cookie must match, so that
/// another site cannot sign a visitor in to an account of its choosing.
fn form_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn login_page(
    req: &HttpRequest,
    state: &AppState,
    next: String,
    username: String,
    error: Option<String>,
) -> Result<HttpResponse, PageError> {
    let token = form_token();
    let chrome = Chrome::new(
        req,
        None,
        &super::i18n::Tr::new(Lang::of(req)).t("login-title"),
        Nav::None,
    );
    let html = LoginPage {
        chrome: chrome.clone(),
        next,
        form_token: token.clone(),
        username,
        error,
    }
    .render()?;
    let mut res = page(&chrome, html);
    res.add_cookie(&session::cookie(
        FORM_COOKIE,
        token,
        session::secure(req, state),
    ))
    .map_err(|_| PageError::internal("cookie"))?;
    Ok(res)
}

async fn form(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, PageError> {
    let next = query
        .next
        .as_deref()
        .and_then(safe_next)
        .unwrap_or_else(|| "/".to_owned());
    login_page(&req, &state, next, String::new(), None)
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    form_token: String,
}

async fn sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, PageError> {
    let LoginForm {
        username,
        password,
        next,
        form_token,
    } = form.into_inner();
    let cookie = req.cookie(FORM_COOKIE).map(|c| c.value().to_owned());
    let token_ok = cookie
        .is_some_and(|c| !c.is_empty() && bool::from(c.as_bytes().ct_eq(form_token.as_bytes())));
    if !token_ok {
        return Err(PageError::Csrf);
    }
    check_page_request(Limit::SignIn, &req).map_err(PageError::TooMany)?;
    state
        .rate_limits
        .check_account(&username)
        .map_err(PageError::TooMany)?;
    let next = safe_next(&next).unwrap_or_else(|| "/".to_owned());
    let tr = super::i18n::Tr::new(Lang::of(&req));
    if username.trim().is_empty() || password.is_empty() {
        return login_page(&req, &state, next, username, Some(tr.t("login-missing")));
    }
    let ctx = state.ctx.clone();
    let name = username.clone();
    let signed_in = web::block(move || services::auth::login(&ctx, &name, &password)).await?;
    match signed_in {
        Ok(signed_in) => Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, next))
            .cookie(session::cookie(
                SESSION_COOKIE,
                signed_in.session_token,
                session::secure(&req, &state),
            ))
            .cookie(session::removal(FORM_COOKIE))
            .finish()),
        Err(ServiceError::Invalid { .. }) => {
            login_page(&req, &state, next, username, Some(tr.t("login-refused")))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct Nothing {}

async fn sign_out(
    state: web::Data<AppState>,
    posted: SignedForm<Nothing>,
) -> Result<HttpResponse, PageError> {
    let ctx = state.ctx.clone();
    let credential = posted.visitor.credential();
    web::block(move || services::auth::logout(&ctx, &credential)).await??;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/"))
        .cookie(session::removal(SESSION_COOKIE))
        .finish())
}

#[derive(Deserialize)]
struct SwitchQuery {
    to: String,
    back: Option<String>,
}

/// Remembers the language chosen and goes back to the page it was chosen on.
async fn switch_language(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<SwitchQuery>,
) -> HttpResponse {
    let back = query
        .back
        .as_deref()
        .and_then(safe_next)
        .unwrap_or_else(|| "/".to_owned());
    let mut res = HttpResponse::SeeOther();
    res.insert_header((header::LOCATION, back));
    if let Some(lang) = Lang::from_tag(&query.to) {
        let mut cookie = session::cookie(
            LANG_COOKIE,
            lang.tag().to_owned(),
            session::secure(&req, &state),
        );
        // A preference, not a secret: kept for a year.
        cookie.set_max_age(actix_web::cookie::time::Duration::days(365));
        res.cookie(cookie);
    }
    res.finish()
}
