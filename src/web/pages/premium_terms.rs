//! The issuer's premium terms page (保费标准): the form that publishes new terms (the
//! rate as a percentage, the minimum premium, the largest bond, the turnaround, a
//! note), the button that withdraws them, and every version published. Enterprises see
//! the terms on a tender's page ([`super::enterprise`]); the approve form of an
//! application is prefilled with their quote ([`super::issuer`]).

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::enterprise::{run, when, Button, TermsWords};
use super::errors::PageError;
use super::forms::FieldErrors;
use super::i18n::{Lang, Tr};
use super::session::{SignedForm, Visitor};
use super::{page, redirect_with_flash, Chrome};
use crate::domain::party::Role;
use crate::domain::premium::{parse_rate_percent, rate_percent};
use crate::services::premium_terms::{self, NewPremiumTerms, TermsVersion};
use crate::services::ServiceError;
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/issuer/premium-terms", web::get().to(terms_page))
        .route("/issuer/premium-terms", web::post().to(publish))
        .route("/issuer/premium-terms/withdraw", web::post().to(withdraw));
}

/// The form's fields, in order.
const FIELDS: [&str; 5] = [
    "rate_percent",
    "minimum_premium",
    "maximum_bond",
    "turnaround_days",
    "note",
];

/// One version in the history.
struct VersionRow {
    version: i32,
    published_at: String,
    terms: Option<TermsWords>,
    note: String,
}

#[derive(Template)]
#[template(path = "pages/issuer/premium_terms.html")]
struct TermsPage {
    chrome: Chrome,
    form: BTreeMap<String, String>,
    errors: FieldErrors,
    current: Option<TermsWords>,
    history: Vec<VersionRow>,
    note_max: usize,
}

impl TermsPage {
    fn value(&self, field: &str) -> String {
        self.form.get(field).cloned().unwrap_or_default()
    }
}

/// The form as the current terms fill it (empty without terms).
fn form_of(current: Option<&TermsVersion>) -> BTreeMap<String, String> {
    let mut form = BTreeMap::new();
    if let Some((t, v)) = current.and_then(|v| v.terms.map(|t| (t, v))) {
        form.insert("rate_percent".into(), rate_percent(t.rate_bp()));
        form.insert("minimum_premium".into(), t.minimum().to_string());
        if let Some(m) = t.maximum_bond() {
            form.insert("maximum_bond".into(), m.to_string());
        }
        form.insert("turnaround_days".into(), t.turnaround_days().to_string());
        form.insert("note".into(), v.note.clone().unwrap_or_default());
    }
    form
}

/// Renders the page: the form as typed (or as the current terms fill it) with its
/// errors, the terms in force and the history.
async fn render(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    visitor: &Visitor,
    typed: Option<(BTreeMap<String, String>, FieldErrors)>,
) -> Result<HttpResponse, PageError> {
    visitor.require(&[Role::Issuer])?;
    let tr = Tr::new(Lang::of(req));
    let chrome = Chrome::titled(req, visitor, "terms-title");
    let actor = visitor.actor.clone();
    let history = run(state, move |ctx| premium_terms::history(ctx, &actor)).await?;
    let current = history.first().filter(|v| v.terms.is_some());
    let (form, errors) = typed.unwrap_or_else(|| (form_of(current), FieldErrors::default()));
    let html = TermsPage {
        chrome: chrome.clone(),
        form,
        errors,
        current: current.and_then(|v| v.terms.as_ref().map(|t| TermsWords::of(tr, t))),
        history: history
            .iter()
            .map(|v| VersionRow {
                version: v.version,
                published_at: when(v.published_at),
                terms: v.terms.as_ref().map(|t| TermsWords::of(tr, t)),
                note: v.note.clone().unwrap_or_default(),
            })
            .collect(),
        note_max: premium_terms::NOTE_MAX_CHARS,
    }
    .render()?;
    Ok(page(&chrome, html))
}

async fn terms_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
) -> Result<HttpResponse, PageError> {
    render(&req, &state, &visitor, None).await
}

/// The form's field for a field the service names.
fn form_field(service_field: &str) -> &str {
    match service_field {
        "rate_bp" => "rate_percent",
        other => other,
    }
}

async fn publish(
    req: HttpRequest,
    state: web::Data<AppState>,
    posted: SignedForm<BTreeMap<String, String>>,
) -> Result<HttpResponse, PageError> {
    let SignedForm { visitor, form } = posted;
    visitor.require(&[Role::Issuer])?;
    let tr = Tr::new(Lang::of(&req));
    // Only the form's own fields are kept (and shown again), each cut to a sane length.
    let form: BTreeMap<String, String> = FIELDS
        .iter()
        .map(|f| {
            let limit = if *f == "note" { 1000 } else { 40 };
            let value = form.get(*f).map(|v| v.chars().take(limit).collect());
            (f.to_string(), value.unwrap_or_default())
        })
        .collect();
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let mut errors = FieldErrors::default();
    let refuse = |errors: &mut FieldErrors, name: &str| {
        errors.add(
            name,
            tr.t(&format!("terms-error-{}", name.replace('_', "-"))),
        );
    };
    // What the form spells differently from the API: the rate as a percentage, the
    // days as digits. A value that does not read stands in as a valid one, so the
    // service's check still judges the other fields.
    let rate_bp = parse_rate_percent(field("rate_percent")).unwrap_or_else(|_| {
        refuse(&mut errors, "rate_percent");
        1
    });
    let turnaround_days = field("turnaround_days")
        .trim()
        .parse::<i64>()
        .unwrap_or_else(|_| {
            refuse(&mut errors, "turnaround_days");
            1
        });
    let input = NewPremiumTerms {
        rate_bp,
        minimum_premium: field("minimum_premium").to_owned(),
        maximum_bond: Some(field("maximum_bond").to_owned()),
        turnaround_days,
        note: Some(field("note").to_owned()),
    };
    if let Err(found) = premium_terms::check(&input) {
        for e in found {
            if let ServiceError::Invalid { field, .. } = e {
                refuse(&mut errors, form_field(&field));
            }
        }
    }
    if !errors.is_empty() {
        return render(&req, &state, &visitor, Some((form, errors))).await;
    }
    let actor = visitor.actor.clone();
    match run(&state, move |ctx| {
        premium_terms::publish(ctx, &actor, input)
    })
    .await
    {
        Ok(_) => Ok(redirect_with_flash(
            &req,
            "/issuer/premium-terms",
            "flash-terms-published",
        )),
        Err(PageError::Service(ServiceError::Invalid { field, .. })) => {
            refuse(&mut errors, form_field(&field));
            render(&req, &state, &visitor, Some((form, errors))).await
        }
        Err(e) => Err(e),
    }
}

async fn withdraw(
    req: HttpRequest,
    state: web::Data<AppState>,
    posted: SignedForm<Button>,
) -> Result<HttpResponse, PageError> {
    let visitor = posted.visitor;
    visitor.require(&[Role::Issuer])?;
    let actor = visitor.actor.clone();
    run(&state, move |ctx| premium_terms::withdraw(ctx, &actor)).await?;
    Ok(redirect_with_flash(
        &req,
        "/issuer/premium-terms",
        "flash-terms-withdrawn",
    ))
}

#[cfg(test)]
mod tests {
    use super::super::forms::checks;
    use super::*;

    /// Every field's error is shown through a key made from its name: each must exist.
    #[test]
    fn every_field_has_its_error_in_both_languages() {
        checks::error_keys_exist("terms-error-", &FIELDS);
    }
}
