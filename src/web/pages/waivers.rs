//! Deposit-free pages: a subject's credit rights code (信用权益码) with its QR code, its
//! credit line and waivers; a provider's scan page (enter or scan a code, the matter
//! and the deposit: granted or refused with the reason) and its waivers to bill and
//! settle. A provider's pages show nothing of the subject's archive.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use qrcode::render::svg;
use qrcode::QrCode;

use super::agency::china_time;
use super::errors::PageError;
use super::forms::{form_page, submit, FieldErrors, Outcome, Typed};
use super::i18n::{Lang, Tr};
use super::session::{SignedForm, Visitor};
use super::{page, redirect_with_flash, Chrome, Nav};
use crate::domain::money::Amount;
use crate::domain::party::{ProviderKind, Role};
use crate::domain::waiver::{provider_collects, Settlement};
use crate::services::waivers::{self, CheckOutcome, CheckRequest, WaiverView};
use crate::services::{catalogue, OrInternal, ServiceError, Window};
use crate::web::rate_limit::{check_page_request, Limit};
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/credit/rights-code", web::get().to(my_code))
        .route("/credit/rights-code", web::post().to(new_code))
        .route("/provider/check", web::get().to(check_form))
        .route("/provider/check", web::post().to(check))
        .route("/provider/waivers", web::get().to(provider_waivers))
        .route("/provider/waivers/{id}/bill", web::post().to(bill))
        .route("/provider/waivers/{id}/settlement", web::post().to(settle));
}

fn name_of(lang: Lang, zh: &str, en: &str) -> String {
    match lang {
        Lang::Zh => zh.to_owned(),
        Lang::En => en.to_owned(),
    }
}

/// A waiver as a row of either list.
struct WaiverRowView {
    id: String,
    provider: String,
    matter: String,
    amount: String,
    reference: String,
    granted_at: String,
    state: String,
    state_code: &'static str,
    bill: String,
    due_at: String,
    overdue: bool,
}

fn row_view(tr: Tr, v: &WaiverView) -> WaiverRowView {
    let w = &v.waiver;
    WaiverRowView {
        id: w.id.clone(),
        provider: v.provider_name.clone(),
        matter: name_of(tr.lang, &v.matter_name_zh, &v.matter_name_en),
        amount: Amount::from_fen(w.amount_fen).grouped(),
        reference: w.provider_ref.clone().unwrap_or_default(),
        granted_at: china_time(w.granted_at),
        state: tr.t(&format!("waiver-state-{}", w.state)),
        state_code: w.state.as_str(),
        bill: w
            .bill_fen
            .map(|b| Amount::from_fen(b).grouped())
            .unwrap_or_default(),
        due_at: w.due_at.map(china_time).unwrap_or_default(),
        overdue: v.overdue,
    }
}

// ---- The subject's code, line and waivers ----------------------------------------

#[derive(Template)]
#[template(path = "pages/credit/code.html")]
struct CodePage {
    chrome: Chrome,
    /// The code's text in groups of four, its QR code (SVG), its expiry and provider.
    code: Option<(String, String, String, String)>,
    minutes: i64,
    providers: Vec<(String, String)>,
    level: String,
    total: String,
    in_use: String,
    left: String,
    defaults_open: i32,
    waivers: Vec<WaiverRowView>,
}

/// The text in groups of four, as a person reads it out or types it.
fn grouped_code(text: &str) -> String {
    text.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The QR code of a text as inline SVG (no XML declaration, no style: the content
/// security policy allows it).
fn qr_svg(text: &str) -> Result<String, ServiceError> {
    let svg = QrCode::new(text.as_bytes())
        .or_internal("QR code")?
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    Ok(match svg.find("<svg") {
        Some(start) => svg[start..].to_owned(),
        None => svg,
    })
}

async fn my_code(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
) -> Result<HttpResponse, PageError> {
    visitor.require(&[Role::Enterprise, Role::Person])?;
    let (ctx, actor) = (state.ctx.clone(), visitor.actor.clone());
    let (code, line, providers) = web::block(move || {
        let code = waivers::current_code(&ctx, &actor)?;
        let line = waivers::my_line(&ctx, &actor)?;
        let providers = waivers::providers(&ctx)?;
        Ok::<_, ServiceError>((code, line, providers))
    })
    .await??;
    let tr = Tr::new(Lang::of(&req));
    let chrome = Chrome::new(&req, Some(&visitor), &tr.t("code-title"), Nav::Role);
    let code = match code {
        Some(c) => Some((
            grouped_code(&c.text),
            qr_svg(&c.text)?,
            china_time(c.expires_at),
            c.provider.map(|(_, name)| name).unwrap_or_default(),
        )),
        None => None,
    };
    let html = CodePage {
        chrome: chrome.clone(),
        code,
        minutes: waivers::lines()?.code_minutes,
        providers,
        level: line.level.to_string(),
        total: line.total.grouped(),
        in_use: line.in_use.grouped(),
        left: line.left().grouped(),
        defaults_open: line.defaults_open,
        waivers: line.waivers.iter().map(|v| row_view(tr, v)).collect(),
    }
    .render()?;
    Ok(page(&chrome, html))
}

async fn new_code(
    req: HttpRequest,
    state: web::Data<AppState>,
    posted: SignedForm<Typed>,
) -> Result<HttpResponse, PageError> {
    let SignedForm { visitor, form } = posted;
    visitor.require(&[Role::Enterprise, Role::Person])?;
    let (ctx, actor) = (state.ctx.clone(), visitor.actor.clone());
    let provider = form.optional("provider_id");
    web::block(move || waivers::issue_code(&ctx, &actor, provider.as_deref())).await??;
    Ok(redirect_with_flash(
        &req,
        "/credit/rights-code",
        "flash-code-issued",
    ))
}

// ---- The provider's scan page --------------------------------------------------

/// The fields of the scan form, as the API's check body names them.
const CHECK_FIELDS: [&str; 4] = ["code", "matter", "amount", "provider_ref"];
/// The longest value a field keeps as typed (the service refuses more).
const FIELD_MAX_CHARS: usize = 300;

#[derive(Template)]
#[template(path = "pages/provider/check.html")]
struct CheckPage {
    chrome: Chrome,
    matters: Vec<(String, String, bool)>,
    form: Typed,
    errors: FieldErrors,
    /// After a check: granted or not, the words of the answer.
    result: Option<(bool, String)>,
}

/// The credit-substituted matters this provider collects: code and name.
async fn provider_matters(
    state: &AppState,
    visitor: &Visitor,
    lang: Lang,
) -> Result<Vec<(String, String)>, PageError> {
    let ctx = state.ctx.clone();
    let org = visitor.actor.organization_id.clone();
    let (kind, matters) = web::block(move || {
        let kind = crate::services::organizations::provider_kind_of(&ctx, &org)?;
        Ok::<_, ServiceError>((kind, catalogue::list_matters(&ctx)?))
    })
    .await??;
    Ok(matters
        .iter()
        .filter(|e| kind.is_some_and(|k: ProviderKind| provider_collects(k, &e.code)))
        .map(|e| {
            (
                e.code.clone(),
                name_of(lang, &e.matter.name_zh, &e.matter.name_en),
            )
        })
        .collect())
}

fn render_check(
    req: &HttpRequest,
    visitor: &Visitor,
    matters: Vec<(String, String)>,
    form: Typed,
    errors: FieldErrors,
    result: Option<(bool, String)>,
) -> Result<HttpResponse, PageError> {
    let tr = Tr::new(Lang::of(req));
    let chrome = Chrome::new(req, Some(visitor), &tr.t("check-title"), Nav::Role);
    let chosen = form.value("matter");
    let refused = !errors.is_empty();
    let html = CheckPage {
        chrome: chrome.clone(),
        matters: matters
            .into_iter()
            .map(|(code, name)| {
                let selected = code == chosen;
                (code, name, selected)
            })
            .collect(),
        form,
        errors,
        result,
    }
    .render()?;
    Ok(form_page(&chrome, html, refused))
}

async fn check_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
) -> Result<HttpResponse, PageError> {
    visitor.require(&[Role::Provider])?;
    let matters = provider_matters(&state, &visitor, Lang::of(&req)).await?;
    render_check(
        &req,
        &visitor,
        matters,
        Typed::default(),
        FieldErrors::default(),
        None,
    )
}

async fn check(
    req: HttpRequest,
    state: web::Data<AppState>,
    posted: SignedForm<Typed>,
) -> Result<HttpResponse, PageError> {
    check_page_request(Limit::RightsCodeCheck, &req).map_err(PageError::TooMany)?;
    let SignedForm { visitor, form } = posted;
    visitor.require(&[Role::Provider])?;
    let lang = Lang::of(&req);
    let tr = Tr::new(lang);
    let matters = provider_matters(&state, &visitor, lang).await?;
    let kept = form.only(&CHECK_FIELDS, FIELD_MAX_CHARS);
    let request = CheckRequest {
        code: kept.value("code"),
        matter: kept.value("matter"),
        amount: kept.value("amount"),
        provider_ref: kept.optional("provider_ref"),
    };
    let (ctx, actor) = (state.ctx.clone(), visitor.actor.clone());
    match submit(None, move || waivers::check(&ctx, &actor, &request)).await? {
        Outcome::Done(CheckOutcome::Granted(w)) => {
            let words = tr.t1(
                "check-granted",
                "amount",
                Amount::from_fen(w.amount_fen).grouped(),
            );
            // The code is used: the next check starts blank but for the matter.
            let next = Typed(
                [("matter".to_owned(), kept.value("matter"))]
                    .into_iter()
                    .collect(),
            );
            render_check(
                &req,
                &visitor,
                matters,
                next,
                FieldErrors::default(),
                Some((true, words)),
            )
        }
        Outcome::Done(CheckOutcome::Refused(reason)) => {
            let words = tr.t(&format!("refusal-{reason}"));
            render_check(
                &req,
                &visitor,
                matters,
                kept,
                FieldErrors::default(),
                Some((false, words)),
            )
        }
        Outcome::Refused { field, message } => {
            let key = format!("check-error-{}", field.replace('_', "-"));
            let errors = FieldErrors::one(tr, &field, &key, &message);
            render_check(&req, &visitor, matters, kept, errors, None)
        }
    }
}

// ---- The provider's waivers ------------------------------------------------------

/// Waivers the page lists, newest first (the API pages through all of them).
const WAIVERS_SHOWN: i64 = 100;

#[derive(Template)]
#[template(path = "pages/provider/waivers.html")]
struct WaiversPage {
    chrome: Chrome,
    waivers: Vec<WaiverRowView>,
    total: i64,
}

async fn provider_waivers(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
) -> Result<HttpResponse, PageError> {
    visitor.require(&[Role::Provider])?;
    let (ctx, actor) = (state.ctx.clone(), visitor.actor.clone());
    let window = Window {
        offset: 0,
        limit: WAIVERS_SHOWN,
    };
    let listed = web::block(move || waivers::provider_waivers(&ctx, &actor, window)).await??;
    let tr = Tr::new(Lang::of(&req));
    let chrome = Chrome::new(&req, Some(&visitor), &tr.t("waivers-title"), Nav::Role);
    let html = WaiversPage {
        chrome: chrome.clone(),
        waivers: listed.rows.iter().map(|v| row_view(tr, v)).collect(),
        total: listed.total,
    }
    .render()?;
    Ok(page(&chrome, html))
}

async fn bill(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    posted: SignedForm<Typed>,
) -> Result<HttpResponse, PageError> {
    let SignedForm { visitor, form } = posted;
    visitor.require(&[Role::Provider])?;
    let (ctx, actor) = (state.ctx.clone(), visitor.actor.clone());
    let amount = form.value("amount");
    web::block(move || waivers::bill(&ctx, &actor, &id, &amount)).await??;
    Ok(redirect_with_flash(
        &req,
        "/provider/waivers",
        "flash-waiver-billed",
    ))
}

async fn settle(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    posted: SignedForm<Typed>,
) -> Result<HttpResponse, PageError> {
    let SignedForm { visitor, form } = posted;
    visitor.require(&[Role::Provider])?;
    let outcome: Settlement = form
        .value("outcome")
        .parse()
        .map_err(|e| ServiceError::invalid("outcome", e))?;
    let (ctx, actor) = (state.ctx.clone(), visitor.actor.clone());
    web::block(move || waivers::settle(&ctx, &actor, &id, outcome)).await??;
    Ok(redirect_with_flash(
        &req,
        "/provider/waivers",
        "flash-waiver-settled",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::waiver::{RefusalReason, WaiverState};

    /// The keys the pages make from values exist in both languages.
    #[test]
    fn keys_made_from_values_exist() {
        use super::super::forms::checks::{error_keys_exist, value_keys_exist};
        value_keys_exist("refusal-", RefusalReason::ALL);
        value_keys_exist("waiver-state-", WaiverState::ALL);
        error_keys_exist("check-error-", &CHECK_FIELDS);
    }

    #[test]
    fn a_code_reads_in_groups_of_four() {
        assert_eq!(grouped_code("BHQ1ABCDEF"), "BHQ1 ABCD EF");
    }

    #[test]
    fn the_qr_code_is_bare_svg() {
        let svg = qr_svg("BHQ1ABCDEFGH").expect("svg");
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(!svg.contains("style"), "{svg}");
    }
}
