//! The bidder's pages: the tenders open for bidding (search, filters, paging), a
//! tender's sections with the bond each requires and the issuers to apply to, and the
//! bidder's own applications and guarantees with what it may still do to them. The
//! rules stay in the services; these handlers only ask and show.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::{NaiveDateTime, TimeZone};
use serde::Deserialize;

use super::errors::PageError;
use super::i18n::Tr;
use super::paging::{
    error_of, field_errors, list_request, query_of, FieldError, PageQuery, Pager, Paging,
    SortHeading, StateOption,
};
use super::session::{SignedForm, Visitor};
use super::{page, redirect_with_flash, Chrome, Nav};
use crate::db::models::Organization;
use crate::domain::lifecycle::ApplicationState;
use crate::domain::money::Amount;
use crate::domain::party::Role;
use crate::domain::premium::{rate_percent, PremiumTerms};
use crate::services::applications::{
    self, ApplicationFilter, ApplicationQuery, ApplicationSort, NewApplication,
};
use crate::services::listing::SortKey;
use crate::services::projects::{self, ProjectSearch, ProjectView};
use crate::services::views::{ApplicationView, GuaranteeView};
use crate::services::{guarantees, premium_terms, Context, ServiceError};
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/projects", web::get().to(projects_list))
        .route("/projects/{id}", web::get().to(project))
        .route("/projects/{id}/apply", web::post().to(apply))
        .route("/projects/{id}/save-draft", web::post().to(save_draft))
        .route("/enterprise/applications", web::get().to(my_applications))
        .route(
            "/enterprise/applications/{id}/withdraw",
            web::post().to(withdraw),
        )
        .route(
            "/enterprise/guarantees/{number}/cancel",
            web::post().to(cancel),
        );
}

/// A stored UTC time as people in China read it, to the minute.
pub fn when(t: NaiveDateTime) -> String {
    crate::domain::time::china()
        .from_utc_datetime(&t)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// Money in yuan with thousands separators.
pub fn money(fen: i64) -> String {
    Amount::from_fen(fen).grouped()
}

/// A state in words, from the catalogue (`application-state-…`, `guarantee-state-…`).
pub fn state_words(tr: Tr, prefix: &str, state: &str) -> String {
    tr.t(&format!("{prefix}-state-{state}"))
}

/// The words of an issuer's kind.
pub fn issuer_kind_words(tr: Tr, org: &Organization) -> String {
    org.issuer_kind
        .map(|k| tr.t(&format!("issuer-kind-{}", k.as_str())))
        .unwrap_or_default()
}

/// Terms as a page shows them, in the visitor's words.
pub struct TermsWords {
    pub rate: String,
    pub minimum: String,
    pub maximum: Option<String>,
    pub turnaround: String,
}

impl TermsWords {
    pub fn of(tr: Tr, t: &PremiumTerms) -> TermsWords {
        TermsWords {
            rate: format!("{} %", rate_percent(t.rate_bp())),
            minimum: money(t.minimum().fen()),
            maximum: t.maximum_bond().map(|m| money(m.fen())),
            turnaround: tr.t1("terms-days", "days", t.turnaround_days()),
        }
    }
}

/// Runs a service call off the request thread.
pub async fn run<T: Send + 'static>(
    state: &web::Data<AppState>,
    f: impl FnOnce(&Context) -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, PageError> {
    let ctx = state.ctx.clone();
    Ok(web::block(move || f(&ctx)).await??)
}

// ---- Tenders open for bidding -------------------------------------------------

/// A project in a list.
struct ProjectRow {
    id: String,
    code: String,
    name: String,
    tenderee: String,
    deadline: String,
    sections: usize,
}

impl ProjectRow {
    fn of(v: &ProjectView) -> ProjectRow {
        ProjectRow {
            id: v.project.id.clone(),
            code: v.project.code.clone(),
            name: v.project.name.clone(),
            tenderee: v.tenderee.name.clone(),
            deadline: when(v.project.bid_deadline),
            sections: v.sections.len(),
        }
    }
}

#[derive(Deserialize, Default)]
struct ProjectFilters {
    q: Option<String>,
    tenderee: Option<String>,
    deadline_from: Option<String>,
    deadline_to: Option<String>,
}

#[derive(Template)]
#[template(path = "pages/enterprise/projects.html")]
struct ProjectsPage {
    chrome: Chrome,
    q: String,
    tenderee: String,
    deadline_from: String,
    deadline_to: String,
    errors: Vec<FieldError>,
    rows: Vec<ProjectRow>,
    pager: Pager,
}

impl ProjectsPage {
    fn error_of(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }
}

async fn projects_list(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    filters: web::Query<ProjectFilters>,
    paging: web::Query<PageQuery>,
) -> Result<HttpResponse, PageError> {
    visitor.require(&[Role::Enterprise])?;
    visitor.cacheable(&req);
    let tr = Tr::new(super::i18n::Lang::of(&req));
    let chrome = Chrome::titled(&req, &visitor, "projects-title");
    let filters = filters.into_inner();
    let paging = Paging::from_query(&paging);
    let typed = |v: &Option<String>| v.as_deref().unwrap_or_default().trim().to_owned();
    let search = ProjectSearch {
        q: filters.q.clone(),
        tenderee: filters.tenderee.clone(),
        deadline_from: filters.deadline_from.clone(),
        deadline_to: filters.deadline_to.clone(),
        sort: None,
    };
    let actor = visitor.actor.clone();
    let found = run(&state, move |ctx| {
        projects::search_projects(ctx, &actor, &search, Some(paging.window()))
    })
    .await;
    let base = format!(
        "/projects?{}",
        query_of(&[
            ("q", filters.q.as_deref()),
            ("tenderee", filters.tenderee.as_deref()),
            ("deadline_from", filters.deadline_from.as_deref()),
            ("deadline_to", filters.deadline_to.as_deref()),
        ])
    );
    let base = base.trim_end_matches('?').to_owned();
    let (rows, total, errors) = match found {
        Ok(listed) => (
            listed.rows.iter().map(ProjectRow::of).collect(),
            listed.total,
            Vec::new(),
        ),
        // A mistyped date: the list is shown again with the error beside the field.
        Err(PageError::Service(ServiceError::Invalid { field, .. })) => (
            Vec::new(),
            0,
            vec![FieldError {
                message: tr.t("projects-error-date"),
                field,
            }],
        ),
        Err(e) => return Err(e),
    };
    // Shown again with status 200: the service's edge turns any 4xx into the JSON
    // error shape or the error page, and this is neither.
    let html = ProjectsPage {
        chrome: chrome.clone(),
        q: typed(&filters.q),
        tenderee: typed(&filters.tenderee),
        deadline_from: typed(&filters.deadline_from),
        deadline_to: typed(&filters.deadline_to),
        errors,
        rows,
        pager: Pager::new(&base, paging, total),
    }
    .render()?;
    Ok(page(&chrome, html))
}

// ---- One tender, and applying ---------------------------------------------------

struct SectionRow {
    id: String,
    code: String,
    name: String,
    bond: String,
    bond_in_words: String,
    /// What was wrong with the last try to apply for it.
    error: Option<String>,
    chosen: String,
    /// What each issuer would charge for this section's bond, in the issuers' order.
    quotes: Vec<QuoteRow>,
}

/// An issuer's premium for one section's bond, in the visitor's words: the premium, or
/// "no published terms", or "does not guarantee this amount".
struct QuoteRow {
    issuer_id: String,
    issuer: String,
    words: String,
    /// The issuer's terms do not cover a bond this large.
    not_serving: bool,
}

struct IssuerRow {
    id: String,
    name: String,
    kind: String,
    /// The premium terms in force, if the issuer published any.
    terms: Option<TermsWords>,
    note: String,
}

#[derive(Template)]
#[template(path = "pages/enterprise/project.html")]
struct ProjectPage {
    chrome: Chrome,
    project: ProjectRow,
    agency: String,
    opening: String,
    validity_days: i32,
    sections: Vec<SectionRow>,
    issuers: Vec<IssuerRow>,
}

impl ProjectPage {
    fn has_errors(&self) -> bool {
        self.sections.iter().any(|s| s.error.is_some())
    }
}

#[derive(Deserialize)]
struct ApplyForm {
    #[serde(default)]
    section_id: String,
    #[serde(default)]
    issuer_id: String,
}

async fn project_page(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    visitor: &Visitor,
    id: String,
    failed: Option<(ApplyForm, String)>,
) -> Result<ProjectPage, PageError> {
    visitor.require(&[Role::Enterprise])?;
    let actor = visitor.actor.clone();
    let (view, issuers) = run(state, move |ctx| {
        let view = projects::get_project(ctx, &actor, &id)?;
        let issuers = premium_terms::issuers_with_terms(ctx, &actor)?;
        Ok((view, issuers))
    })
    .await?;
    let tr = Tr::new(super::i18n::Lang::of(req));
    let title = tr.t1("project-title", "code", &view.project.code);
    let chrome = Chrome::new(req, Some(visitor), &title, Nav::Role);
    let sections = view
        .sections
        .iter()
        .map(|s| {
            let (error, chosen) = match &failed {
                Some((form, error)) if form.section_id == s.id => {
                    (Some(error.clone()), form.issuer_id.clone())
                }
                _ => (None, String::new()),
            };
            let bond = Amount::from_fen(s.bond_amount_fen);
            let quotes = issuers
                .iter()
                .map(|(o, terms)| {
                    let terms = terms.as_ref().and_then(|v| v.terms);
                    let (words, not_serving) = match terms.map(|t| t.quote(bond)) {
                        None => (tr.t("quote-no-terms"), false),
                        Some(Ok(premium)) => {
                            (tr.t1("quote-premium", "premium", premium.grouped()), false)
                        }
                        Some(Err(_)) => (tr.t("quote-not-serving"), true),
                    };
                    QuoteRow {
                        issuer_id: o.id.clone(),
                        issuer: o.name.clone(),
                        words,
                        not_serving,
                    }
                })
                .collect();
            SectionRow {
                quotes,
                id: s.id.clone(),
                code: s.code.clone(),
                name: s.name.clone(),
                bond: bond.grouped(),
                bond_in_words: bond.to_chinese_capital(),
                error,
                chosen,
            }
        })
        .collect();
    Ok(ProjectPage {
        project: ProjectRow::of(&view),
        agency: view.agency.name.clone(),
        opening: when(view.project.bid_opening_at),
        validity_days: view.project.bid_validity_days,
        sections,
        issuers: issuers
            .iter()
            .map(|(o, v)| IssuerRow {
                id: o.id.clone(),
                name: o.name.clone(),
                kind: issuer_kind_words(tr, o),
                terms: v
                    .as_ref()
                    .and_then(|v| v.terms.as_ref())
                    .map(|t| TermsWords::of(tr, t)),
                note: v.as_ref().and_then(|v| v.note.clone()).unwrap_or_default(),
            })
            .collect(),
        chrome,
    })
}

async fn project(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let shown = project_page(&req, &state, &visitor, id.into_inner(), None).await?;
    let html = shown.render()?;
    Ok(page(&shown.chrome, html))
}

async fn apply(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    posted: SignedForm<ApplyForm>,
) -> Result<HttpResponse, PageError> {
    let SignedForm { visitor, form } = posted;
    visitor.require(&[Role::Enterprise])?;
    let actor = visitor.actor.clone();
    let input = NewApplication {
        section_id: form.section_id.clone(),
        issuer_id: form.issuer_id.clone(),
        kind: None,
    };
    let done = run(&state, move |ctx| applications::apply(ctx, &actor, input)).await;
    let next = ("/enterprise/applications", "flash-applied");
    answer_project_form(req, state, visitor, id, form, done, next).await
}

/// After a project page's form was sent: on to `next` (a path and a flash) when it was
/// taken, the page again with the refusal beside the section's choice when it was not.
async fn answer_project_form<T>(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    id: web::Path<String>,
    form: ApplyForm,
    done: Result<T, PageError>,
    (to, flash): (&str, &'static str),
) -> Result<HttpResponse, PageError> {
    let tr = Tr::new(super::i18n::Lang::of(&req));
    match done {
        Ok(_) => Ok(redirect_with_flash(&req, to, flash)),
        Err(PageError::Service(ServiceError::Invalid { field, .. })) => {
            let message = match field.as_str() {
                "issuer_id" | "kind" => tr.t("apply-error-issuer"),
                _ => tr.t("apply-error-section"),
            };
            let shown = project_page(
                &req,
                &state,
                &visitor,
                id.into_inner(),
                Some((form, message)),
            )
            .await?;
            let html = shown.render()?;
            Ok(page(&shown.chrome, html))
        }
        Err(e) => Err(e),
    }
}

/// Keeps the section's choice as a saved application (暂存) to send later; the same
/// form as applying, sent by its second button.
async fn save_draft(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    posted: SignedForm<ApplyForm>,
) -> Result<HttpResponse, PageError> {
    let SignedForm { visitor, form } = posted;
    visitor.require(&[Role::Enterprise])?;
    let actor = visitor.actor.clone();
    let section_id = form.section_id.clone();
    let input = crate::services::application_drafts::DraftInput {
        issuer_id: Some(form.issuer_id.trim().to_owned()).filter(|i| !i.is_empty()),
        ..Default::default()
    };
    let saved = run(&state, move |ctx| {
        crate::services::application_drafts::save(ctx, &actor, &section_id, input)
    })
    .await;
    let next = ("/enterprise/drafts", "flash-draft-saved");
    answer_project_form(req, state, visitor, id, form, saved, next).await
}

// ---- My applications --------------------------------------------------------------

/// An application in a list.
pub struct ApplicationRow {
    pub id: String,
    pub project_code: String,
    pub project_name: String,
    pub section: String,
    pub enterprise: String,
    pub issuer: String,
    pub amount: String,
    pub premium: Option<String>,
    pub state: String,
    pub state_words: String,
    pub decline_reason: Option<String>,
    pub applied_at: String,
    pub deadline: String,
    pub withdrawable: bool,
}

impl ApplicationRow {
    pub fn of(tr: Tr, v: &ApplicationView) -> ApplicationRow {
        let a = &v.application;
        ApplicationRow {
            id: a.id.clone(),
            project_code: v.project.code.clone(),
            project_name: v.project.name.clone(),
            section: format!("{} {}", v.section.code, v.section.name),
            enterprise: v.enterprise.name.clone(),
            issuer: v.issuer.name.clone(),
            amount: money(a.amount_fen),
            premium: a.premium_fen.map(money),
            state: a.status.as_str().to_owned(),
            state_words: state_words(tr, "application", a.status.as_str()),
            decline_reason: a.decline_reason.clone(),
            applied_at: when(a.created_at),
            deadline: when(v.project.bid_deadline),
            // The lifecycle says when; the service still decides.
            withdrawable: a
                .status
                .transition(crate::domain::lifecycle::ApplicationAction::Withdraw)
                .is_ok(),
        }
    }
}

/// Every application state, in the order the filter offers them.
const APPLICATION_STATES: [ApplicationState; 6] = [
    ApplicationState::Submitted,
    ApplicationState::Approved,
    ApplicationState::Paid,
    ApplicationState::Issued,
    ApplicationState::Declined,
    ApplicationState::Withdrawn,
];

#[derive(Template)]
#[template(path = "pages/enterprise/applications.html")]
struct ApplicationsPage {
    chrome: Chrome,
    typed: ApplicationQuery,
    states: Vec<StateOption>,
    /// The sort asked for, kept through a new search.
    sort: String,
    errors: Vec<FieldError>,
    amount_heading: SortHeading,
    created_heading: SortHeading,
    rows: Vec<ApplicationRow>,
    pager: Pager,
}

impl ApplicationsPage {
    fn error_of(&self, field: &str) -> Option<&str> {
        error_of(&self.errors, field)
    }
}

/// The bidder's applications: the filter form (state, tender code, dates), the table
/// sortable by amount and date, and the pager, all in the query string.
async fn my_applications(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
) -> Result<HttpResponse, PageError> {
    visitor.require(&[Role::Enterprise])?;
    visitor.cacheable(&req);
    let tr = Tr::new(super::i18n::Lang::of(&req));
    let chrome = Chrome::titled(&req, &visitor, "applications-title");
    let (paging, params) = list_request(&req, &["state", "project", "from", "to", "sort"]);
    let (typed, checked) = ApplicationFilter::read(params);
    let sort = match &checked {
        Ok(filter) => filter.sort,
        Err(_) => ApplicationSort::DEFAULT,
    };
    let (rows, total, errors) = match checked {
        Ok(filter) => {
            let actor = visitor.actor.clone();
            let listed = run(&state, move |ctx| {
                applications::list(ctx, &actor, &filter, paging.window())
            })
            .await?;
            let rows = listed
                .rows
                .iter()
                .map(|v| ApplicationRow::of(tr, v))
                .collect();
            (rows, listed.total, Vec::new())
        }
        Err(problems) => (Vec::new(), 0, field_errors(tr, problems)),
    };
    let path = "/enterprise/applications";
    let filters = |with_sort: Option<&str>| {
        let state = typed.state.join(",");
        let q = query_of(&[
            ("state", Some(state.as_str())),
            ("project", typed.project.as_deref()),
            ("from", typed.from.as_deref()),
            ("to", typed.to.as_deref()),
            ("sort", with_sort),
        ]);
        if q.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{q}")
        }
    };
    let heading = |key: ApplicationSort, label: &str| {
        SortHeading::new(tr.t(label), key, sort, |s| filters(Some(s)))
    };
    let html = ApplicationsPage {
        chrome: chrome.clone(),
        states: APPLICATION_STATES
            .iter()
            .map(|s| StateOption {
                value: s.as_str(),
                words: state_words(tr, "application", s.as_str()),
                selected: typed.state.iter().any(|t| t == s.as_str()),
            })
            .collect(),
        sort: typed.sort.clone().unwrap_or_default(),
        errors,
        amount_heading: heading(ApplicationSort::Amount, "col-bond"),
        created_heading: heading(ApplicationSort::CreatedAt, "col-applied-at"),
        rows,
        pager: Pager::new(&filters(typed.sort.as_deref()), paging, total),
        typed,
    }
    .render()?;
    Ok(page(&chrome, html))
}

/// A form of one button: only its CSRF token travels.
#[derive(Deserialize)]
pub struct Button {}

async fn withdraw(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    posted: SignedForm<Button>,
) -> Result<HttpResponse, PageError> {
    let visitor = posted.visitor;
    visitor.require(&[Role::Enterprise])?;
    let actor = visitor.actor.clone();
    let id = id.into_inner();
    run(&state, move |ctx| applications::withdraw(ctx, &actor, &id)).await?;
    Ok(redirect_with_flash(
        &req,
        "/enterprise/applications",
        "flash-withdrawn",
    ))
}

// ---- My guarantees ---------------------------------------------------------------

/// A guarantee in a list.
pub struct GuaranteeRow {
    pub number: String,
    pub project_code: String,
    pub section: String,
    pub enterprise: String,
    pub issuer: String,
    pub amount: String,
    pub valid_until: String,
    pub issued_at: String,
    pub state: String,
    pub state_words: String,
    pub cancellable: bool,
}

impl GuaranteeRow {
    pub fn of(tr: Tr, v: &GuaranteeView, now: NaiveDateTime) -> GuaranteeRow {
        let g = &v.guarantee;
        GuaranteeRow {
            number: g.number.clone(),
            project_code: v.project.code.clone(),
            section: format!("{} {}", v.section.code, v.section.name),
            enterprise: v.enterprise.name.clone(),
            issuer: v.issuer.name.clone(),
            amount: money(g.amount_fen),
            valid_until: when(g.valid_until),
            issued_at: when(g.issued_at),
            state: g.status.as_str().to_owned(),
            state_words: state_words(tr, "guarantee", g.status.as_str()),
            // Offered while the lifecycle allows it and bids are still open; the
            // service decides when the form is sent.
            cancellable: g
                .status
                .transition(crate::domain::lifecycle::GuaranteeAction::Cancel, None)
                .is_ok()
                && now < v.project.bid_deadline,
        }
    }
}

async fn cancel(
    req: HttpRequest,
    state: web::Data<AppState>,
    number: web::Path<String>,
    posted: SignedForm<Button>,
) -> Result<HttpResponse, PageError> {
    let visitor = posted.visitor;
    visitor.require(&[Role::Enterprise])?;
    let actor = visitor.actor.clone();
    let number = number.into_inner();
    run(&state, move |ctx| guarantees::cancel(ctx, &actor, &number)).await?;
    Ok(redirect_with_flash(
        &req,
        "/enterprise/guarantees",
        "flash-cancelled",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lifecycle::{ApplicationState, GuaranteeState};
    use crate::web::pages::i18n::Lang;

    /// States are shown through keys made from their names: each must exist.
    #[test]
    fn every_state_has_words_in_both_languages() {
        for lang in Lang::ALL {
            let tr = Tr::new(lang);
            for s in [
                ApplicationState::Submitted,
                ApplicationState::Approved,
                ApplicationState::Paid,
                ApplicationState::Issued,
                ApplicationState::Declined,
                ApplicationState::Withdrawn,
            ] {
                let key = format!("application-state-{}", s.as_str());
                assert!(tr.has(&key), "{key} in {lang:?}");
            }
            for s in [
                GuaranteeState::Issued,
                GuaranteeState::Accepted,
                GuaranteeState::Claimed,
                GuaranteeState::Released,
                GuaranteeState::Paid,
                GuaranteeState::Cancelled,
                GuaranteeState::Revoked,
                GuaranteeState::Expired,
            ] {
                let key = format!("guarantee-state-{}", s.as_str());
                assert!(tr.has(&key), "{key} in {lang:?}");
            }
            for k in ["bank", "insurer", "guarantor"] {
                assert!(tr.has(&format!("issuer-kind-{k}")), "{k} in {lang:?}");
            }
        }
    }
}
