//! A guarantee's pages for its parties: the printable letter (`NO.html`), and the list
//! of guarantees the enterprise holds or the issuer issued, one implementation for
//! both roles (filters, sortable columns and pages in the query string, so a list is
//! bookmarkable and works without JavaScript).

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::enterprise::{run, GuaranteeRow};
use super::errors::PageError;
use super::i18n::{Lang, Tr};
use super::paging::{
    error_of, field_errors, list_request, query_of, FieldError, Pager, SortHeading, StateOption,
};
use super::session::Visitor;
use super::{page, Chrome};
use crate::domain::lifecycle::GuaranteeState;
use crate::domain::party::Role;
use crate::services::guarantees::{self, GuaranteeFilter, GuaranteeQuery, GuaranteeSort};
use crate::services::listing::SortKey;
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/guarantees/{number}/letter", web::get().to(letter))
        .route("/enterprise/guarantees", web::get().to(guarantee_list))
        .route("/issuer/guarantees", web::get().to(guarantee_list));
}

/// The letter as its parties print it (the same as the API's, reached by signing in).
async fn letter(
    state: web::Data<AppState>,
    visitor: Visitor,
    number: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let ctx = state.ctx.clone();
    let number = number.into_inner();
    let html = web::block(move || {
        let view = guarantees::get(&ctx, &visitor.actor, &number)?;
        crate::web::letter::render(&ctx, &view)
    })
    .await??;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}

// ---- The list of guarantees, for the enterprise and the issuer -----------------------

/// Every state, in the order the filter offers them.
const STATES: [GuaranteeState; 8] = [
    GuaranteeState::Issued,
    GuaranteeState::Accepted,
    GuaranteeState::Claimed,
    GuaranteeState::Released,
    GuaranteeState::Paid,
    GuaranteeState::Cancelled,
    GuaranteeState::Revoked,
    GuaranteeState::Expired,
];

#[derive(Template)]
#[template(path = "pages/guarantee_list.html")]
struct GuaranteeListPage {
    chrome: Chrome,
    /// The list's own path (the form's action).
    path: &'static str,
    /// The issuer's list names the applicant; the enterprise's the issuer, with the
    /// files and what it may still do.
    for_issuer: bool,
    typed: GuaranteeQuery,
    states: Vec<StateOption>,
    /// The sort asked for, kept through a new search.
    sort: String,
    errors: Vec<FieldError>,
    number_heading: SortHeading,
    amount_heading: SortHeading,
    issued_heading: SortHeading,
    expires_heading: SortHeading,
    rows: Vec<GuaranteeRow>,
    pager: Pager,
}

impl GuaranteeListPage {
    fn error_of(&self, field: &str) -> Option<&str> {
        error_of(&self.errors, field)
    }
}

/// The guarantee list of the signed-in enterprise (`/enterprise/guarantees`) or issuer
/// (`/issuer/guarantees`): the filter form, the sortable table and the pager. A value
/// the list refuses shows the page again with the error beside its field.
async fn guarantee_list(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
) -> Result<HttpResponse, PageError> {
    let for_issuer = visitor.role() == Role::Issuer;
    visitor.require(&[Role::Enterprise, Role::Issuer])?;
    visitor.cacheable(&req);
    let (path, title) = if for_issuer {
        ("/issuer/guarantees", "issued-title")
    } else {
        ("/enterprise/guarantees", "guarantees-title")
    };
    let tr = Tr::new(Lang::of(&req));
    let chrome = Chrome::titled(&req, &visitor, title);
    let (paging, params) = list_request(
        &req,
        &[
            "state",
            "number",
            "project",
            "section",
            "issuer",
            "enterprise",
            "from",
            "to",
            "sort",
        ],
    );
    let (typed, checked) = GuaranteeFilter::read(params);
    let sort = match &checked {
        Ok(filter) => filter.sort,
        Err(_) => GuaranteeSort::DEFAULT,
    };
    let (rows, total, errors) = match checked {
        Ok(filter) => {
            let actor = visitor.actor.clone();
            let (listed, now) = run(&state, move |ctx| {
                Ok((
                    guarantees::list(ctx, &actor, &filter, paging.window())?,
                    ctx.now(),
                ))
            })
            .await?;
            let rows = listed
                .rows
                .iter()
                .map(|v| GuaranteeRow::of(tr, v, now))
                .collect();
            (rows, listed.total, Vec::new())
        }
        Err(problems) => (Vec::new(), 0, field_errors(tr, problems)),
    };
    // The filters as typed, for every link of the page.
    let filters = |with_sort: Option<&str>| {
        let state = typed.state.join(",");
        let q = query_of(&[
            ("state", Some(state.as_str())),
            ("number", typed.number.as_deref()),
            ("project", typed.project.as_deref()),
            ("section", typed.section.as_deref()),
            ("issuer", typed.issuer.as_deref()),
            ("enterprise", typed.enterprise.as_deref()),
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
    let heading = |key: GuaranteeSort, label: &str| {
        SortHeading::new(tr.t(label), key, sort, |s| filters(Some(s)))
    };
    let chosen = |s: GuaranteeState| typed.state.iter().any(|t| t == s.as_str());
    let html = GuaranteeListPage {
        chrome: chrome.clone(),
        path,
        for_issuer,
        states: STATES
            .iter()
            .map(|s| StateOption {
                value: s.as_str(),
                words: tr.t(&format!("guarantee-state-{}", s.as_str())),
                selected: chosen(*s),
            })
            .collect(),
        sort: typed.sort.clone().unwrap_or_default(),
        errors,
        number_heading: heading(GuaranteeSort::Number, "col-number"),
        amount_heading: heading(GuaranteeSort::Amount, "col-bond"),
        issued_heading: heading(GuaranteeSort::IssuedAt, "col-issued-at"),
        expires_heading: heading(GuaranteeSort::ExpiresAt, "col-valid-until"),
        rows,
        pager: Pager::new(&filters(typed.sort.as_deref()), paging, total),
        typed,
    }
    .render()?;
    Ok(page(&chrome, html))
}
