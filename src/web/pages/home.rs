//! The home page: for a visitor, what the service is and where to verify a letter; for
//! a signed-in user, their role's home (its work and counts).

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::errors::PageError;
use super::i18n::{Lang, Tr};
use super::session::{visitor_of, Visitor};
use super::{page, Chrome, Nav, NavLink};
use crate::domain::party::Role;
use crate::services::{organizations, projects, ServiceError};
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home));
}

#[derive(Template)]
#[template(path = "pages/home.html")]
struct HomePage {
    chrome: Chrome,
    /// The role's pages, when signed in.
    places: Vec<NavLink>,
    /// The role's counts, each linking to where its items are.
    counts: Vec<Count>,
}

/// One figure of a role's home.
pub struct Count {
    pub label: String,
    pub figure: i64,
    pub href: &'static str,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, PageError> {
    Ok(actix_web::web::block(f).await??)
}

/// The agency's figures: projects opening this week, bonds to accept, open claims.
async fn agency_counts(
    req: &HttpRequest,
    visitor: &Visitor,
    tr: Tr,
) -> Result<Vec<Count>, PageError> {
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return Ok(Vec::new());
    };
    let (ctx, actor) = (state.ctx.clone(), visitor.actor.clone());
    let c = blocking(move || projects::agency_counts(&ctx, &actor)).await?;
    Ok(vec![
        Count {
            label: tr.t("home-agency-opening-week"),
            figure: c.opening_this_week,
            href: "/agency/projects?stage=sealed",
        },
        Count {
            label: tr.t("home-agency-bonds-to-accept"),
            figure: c.bonds_to_accept,
            href: "/agency/projects?stage=opened",
        },
        Count {
            label: tr.t("home-agency-claims-open"),
            figure: c.claims_open,
            href: "/agency/claims",
        },
    ])
}

/// The operator's figures: failed mail, certificates running out, organizations.
async fn operator_counts(
    req: &HttpRequest,
    visitor: &Visitor,
    tr: Tr,
) -> Result<Vec<Count>, PageError> {
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return Ok(Vec::new());
    };
    let (ctx, actor) = (state.ctx.clone(), visitor.actor.clone());
    let c = blocking(move || organizations::operator_counts(&ctx, &actor)).await?;
    Ok(vec![
        Count {
            label: tr.t("home-operator-failed-mail"),
            figure: c.failed_mail,
            href: "/operator/mail?status=failed",
        },
        Count {
            label: tr.t("home-operator-certificates-expiring"),
            figure: c.certificates_expiring,
            href: "/operator/trust",
        },
        Count {
            label: tr.t("home-operator-organizations"),
            figure: c.organizations,
            href: "/operator/organizations",
        },
    ])
}

async fn home(req: HttpRequest) -> Result<HttpResponse, PageError> {
    let visitor = visitor_of(&req).await?;
    let tr = Tr::new(Lang::of(&req));
    let title = match &visitor {
        Some(v) => tr.t1("home-welcome", "name", &v.who.display_name),
        None => tr.t("home-title"),
    };
    let chrome = Chrome::new(&req, visitor.as_ref(), &title, Nav::Role);
    let places = if visitor.is_some() {
        chrome
            .nav
            .iter()
            .filter(|l| l.href != "/")
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    let counts = match visitor.as_ref() {
        Some(v) if v.role() == Role::Agency => agency_counts(&req, v, tr).await?,
        Some(v) if v.role() == Role::Operator => operator_counts(&req, v, tr).await?,
        _ => Vec::new(),
    };
    let html = HomePage {
        chrome: chrome.clone(),
        places,
        counts,
    }
    .render()?;
    Ok(page(&chrome, html))
}
