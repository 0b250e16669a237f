//! The home page: for a visitor, what the service is and where to verify a letter; for
//! a signed-in user, their role's home (its work and counts).

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::errors::PageError;
use super::i18n::{Lang, Tr};
use super::session::{visitor_of, Visitor};
use super::{page, Chrome, Nav, NavLink};
use crate::domain::lifecycle::{ApplicationState, GuaranteeState};
use crate::domain::party::Role;
use crate::services::{
    applications, claims, guarantees, organizations, projects, Actor, Context, ServiceError, Window,
};
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home));
}

#[derive(Template)]
#[template(path = "pages/home.html")]
struct HomePage {
    chrome: Chrome,
    /// The role's figures, when signed in (none for roles without a dashboard yet).
    /// The role's counts, each linking to where its items are.
    counts: Vec<Count>,
    /// The role's pages, when signed in.
    places: Vec<NavLink>,
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

/// The bidder's figures: applications waiting for the issuer or for the bidder, and
/// guarantees in force.
fn enterprise_counts(ctx: &Context, actor: &Actor, tr: Tr) -> Result<Vec<Count>, ServiceError> {
    use ApplicationState::{Approved, Paid, Submitted};
    let waiting = applications::count(ctx, actor, &[Submitted, Approved, Paid], false)?;
    let none = Window {
        offset: 0,
        limit: 0,
    };
    let in_force = guarantees::list_page(
        ctx,
        actor,
        &[GuaranteeState::Issued, GuaranteeState::Accepted],
        none,
    )?
    .total;
    Ok(vec![
        Count {
            label: tr.t("home-count-applications-waiting"),
            figure: waiting,
            href: "/enterprise/applications",
        },
        Count {
            label: tr.t("home-count-guarantees-in-force"),
            figure: in_force,
            href: "/enterprise/guarantees",
        },
    ])
}

/// The issuer's figures: today's new applications, those awaiting payment and those to
/// issue, and the claims waiting for its decision.
fn issuer_counts(ctx: &Context, actor: &Actor, tr: Tr) -> Result<Vec<Count>, ServiceError> {
    use ApplicationState::{Approved, Paid};
    Ok(vec![
        Count {
            label: tr.t("home-count-new-today"),
            figure: applications::count(ctx, actor, &[], true)?,
            href: "/issuer/queue#new",
        },
        Count {
            label: tr.t("home-count-awaiting-payment"),
            figure: applications::count(ctx, actor, &[Approved], false)?,
            href: "/issuer/queue#awaiting-payment",
        },
        Count {
            label: tr.t("home-count-to-issue"),
            figure: applications::count(ctx, actor, &[Paid], false)?,
            href: "/issuer/queue#to-issue",
        },
        Count {
            label: tr.t("home-count-claims-due"),
            figure: claims::count_waiting(ctx, actor)?,
            href: "/issuer/claims",
        },
    ])
}

/// The figures of the visitor's role.
async fn counts(
    state: &web::Data<AppState>,
    visitor: &Visitor,
    tr: Tr,
) -> Result<Vec<Count>, PageError> {
    let actor = visitor.actor.clone();
    let ctx = state.ctx.clone();
    let found = web::block(move || match actor.role {
        Role::Enterprise => enterprise_counts(&ctx, &actor, tr),
        Role::Issuer => issuer_counts(&ctx, &actor, tr),
        _ => Ok(Vec::new()),
    })
    .await??;
    Ok(found)
}

async fn home(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let visitor = visitor_of(&req).await?;
    if let Some(v) = &visitor {
        v.cacheable(&req);
    }
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
        Some(v) => counts(&state, v, tr).await?,
        None => Vec::new(),
    };
    let html = HomePage {
        chrome: chrome.clone(),
        counts,
        places,
    }
    .render()?;
    Ok(page(&chrome, html))
}
