//! The web application: server-rendered pages beside the JSON API, on the same
//! services. One file per area (sign-in, public verification, each role's pages); the
//! browser's concerns once each: [`session`] (the signed-in visitor, CSRF, flash),
//! [`errors`] (friendly error pages), [`i18n`] (the catalogues), [`assets`] (the
//! embedded stylesheet). Every page works without JavaScript; forms post and redirect
//! (post/redirect/get) with a flash message saying what happened.

pub mod agency;
pub mod application_drafts;
pub mod assets;
pub mod attachments;
pub mod charts;
pub mod claims;
pub mod credit;
pub mod credit_office;
pub mod enterprise;
pub mod errors;
pub mod forms;
pub mod guarantee_detail;
pub mod guarantees;
pub mod home;
pub mod i18n;
pub mod issuer;
pub mod login;
pub mod matters;
pub mod operator;
pub mod paging;
pub mod premium_terms;
pub mod record_categories;
pub mod session;
pub mod stats;
pub mod verify;
pub mod waivers;
pub mod webhooks;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::domain::party::Role;
use i18n::{Lang, Tr};
use session::{Visitor, FLASH_COOKIE};

pub use errors::PageError;

/// Every page route (plain actix routes: pages are not part of the API description).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(assets::routes)
        .configure(agency::routes)
        .configure(application_drafts::routes)
        .configure(attachments::routes)
        .configure(claims::routes)
        .configure(home::routes)
        .configure(guarantees::routes)
        .configure(guarantee_detail::routes)
        .configure(enterprise::routes)
        .configure(issuer::routes)
        .configure(login::routes)
        .configure(credit::routes)
        .configure(credit_office::routes)
        .configure(waivers::routes)
        .configure(webhooks::routes)
        .configure(matters::routes)
        .configure(record_categories::routes)
        .configure(operator::routes)
        .configure(premium_terms::routes)
        .configure(stats::routes)
        .configure(verify::routes);
}

/// One link of the navigation bar.
#[derive(Debug, Clone)]
pub struct NavLink {
    pub href: &'static str,
    pub label: String,
    pub current: bool,
}

/// Which navigation a page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// The visitor's role's links (or the public ones when signed out).
    Role,
    /// None (error pages, the sign-in page).
    None,
}

/// The signed-in visitor as the layout shows it.
#[derive(Debug, Clone)]
pub struct ChromeUser {
    pub display_name: String,
    pub organization_name: String,
    pub role: String,
}

/// What the layout of every page needs: the words, the visitor, the CSRF token for its
/// forms, the flash message, the navigation and the language switch.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub tr: Tr,
    pub lang: &'static str,
    pub title: String,
    pub stylesheet: &'static str,
    pub icon: &'static str,
    pub user: Option<ChromeUser>,
    /// The session's CSRF token, for every form (empty when signed out).
    pub csrf: String,
    pub flash: Option<String>,
    pub nav: Vec<NavLink>,
    /// The other language: its tag and the link that switches to it and comes back.
    pub switch_label: String,
    pub switch_href: String,
}

impl Chrome {
    /// The layout for a page titled with the catalogue text `title`.
    pub fn new(req: &HttpRequest, visitor: Option<&Visitor>, title: &str, nav: Nav) -> Chrome {
        let lang = Lang::of(req);
        let mut chrome = Chrome::anonymous(req, lang, title, nav);
        let tr = chrome.tr;
        if let Some(v) = visitor {
            chrome.user = Some(ChromeUser {
                display_name: v.who.display_name.clone(),
                // A resident works for nobody: the register its account is kept in is
                // not its organization.
                organization_name: match v.role() {
                    Role::Person => String::new(),
                    _ => v.who.organization_name.clone(),
                },
                role: tr.t(&format!("role-{}", v.role().as_str())),
            });
            chrome.csrf = v.csrf_token.clone();
        }
        if nav == Nav::Role {
            chrome.nav = nav_links(tr, visitor.map(Visitor::role), req.path());
        }
        chrome.flash = req
            .cookie(FLASH_COOKIE)
            .map(|c| c.value().to_owned())
            .filter(|key| key.starts_with("flash-") && tr.has(key))
            .map(|key| tr.t(&key));
        chrome
    }

    /// The layout of a signed-in visitor's page titled with the catalogue's `title_key`.
    pub fn titled(req: &HttpRequest, visitor: &Visitor, title_key: &str) -> Chrome {
        let title = Tr::new(Lang::of(req)).t(title_key);
        Chrome::new(req, Some(visitor), &title, Nav::Role)
    }

    /// The layout without a visitor (error pages, which must not touch the database).
    pub fn anonymous(req: &HttpRequest, lang: Lang, title: &str, nav: Nav) -> Chrome {
        let tr = Tr::new(lang);
        let other = match lang {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        };
        // Back to this page after switching; a page that answered a form goes back to
        // the form (a GET of a POST address would not be the same page).
        let back = if req.method() == actix_web::http::Method::GET {
            req.uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned()
        } else {
            session::referring_path(req).unwrap_or_else(|| "/".to_owned())
        };
        Chrome {
            tr,
            lang: lang.tag(),
            title: title.to_owned(),
            stylesheet: assets::STYLESHEET.path.as_str(),
            icon: assets::ICON.path.as_str(),
            user: None,
            csrf: String::new(),
            flash: None,
            nav: if nav == Nav::Role {
                nav_links(tr, None, req.path())
            } else {
                Vec::new()
            },
            switch_label: tr.t("switch-language"),
            switch_href: format!("/lang?to={}&back={}", other.tag(), errors::urlencode(&back)),
        }
    }
}

/// The navigation of a role (the public links when signed out).
fn nav_links(tr: Tr, role: Option<Role>, path: &str) -> Vec<NavLink> {
    let links: &[(&'static str, &str)] = match role {
        None => &[
            ("/", "nav-home"),
            ("/verify", "nav-verify"),
            ("/stats", "nav-stats"),
            ("/matters", "nav-matters"),
        ],
        Some(Role::Enterprise) => &[
            ("/", "nav-home"),
            ("/projects", "nav-projects"),
            ("/enterprise/applications", "nav-my-applications"),
            ("/enterprise/guarantees", "nav-my-guarantees"),
            ("/enterprise/claims", "nav-claims"),
            ("/credit", "nav-credit"),
            ("/credit/rights-code", "nav-rights-code"),
            ("/verify", "nav-verify"),
        ],
        Some(Role::Person) => &[
            ("/", "nav-home"),
            ("/credit", "nav-credit"),
            ("/credit/rights-code", "nav-rights-code"),
            ("/matters", "nav-matters"),
            ("/verify", "nav-verify"),
        ],
        Some(Role::Issuer) => &[
            ("/", "nav-home"),
            ("/issuer/queue", "nav-queue"),
            ("/issuer/guarantees", "nav-issued"),
            ("/issuer/claims", "nav-claims"),
            ("/issuer/premium-terms", "nav-premium-terms"),
            ("/issuer/certificates", "nav-certificates"),
            ("/webhooks", "nav-webhooks"),
        ],
        Some(Role::Agency) | Some(Role::Tenderee) => &[
            ("/", "nav-home"),
            ("/agency/projects", "nav-my-projects"),
            ("/agency/claims", "nav-claims"),
            ("/webhooks", "nav-webhooks"),
            ("/verify", "nav-verify"),
        ],
        Some(Role::Operator) => &[
            ("/", "nav-home"),
            ("/operator/organizations", "nav-organizations"),
            ("/operator/trust", "nav-trust"),
            ("/operator/mail", "nav-mail"),
            ("/webhooks", "nav-webhooks"),
            ("/operator/audit", "nav-audit"),
            ("/credit/office", "nav-credit-office"),
            ("/matters", "nav-matters"),
            ("/record-categories", "nav-categories"),
            ("/credit/disputes", "nav-disputes"),
        ],
        Some(Role::Provider) => &[
            ("/", "nav-home"),
            ("/provider/check", "nav-check"),
            ("/provider/waivers", "nav-waivers"),
            ("/matters", "nav-matters"),
        ],
    };
    links
        .iter()
        .map(|(href, key)| NavLink {
            href,
            label: tr.t(key),
            current: *href == path || (*href != "/" && path.starts_with(href)),
        })
        .collect()
}

/// A rendered page, 200, taking down the flash message it showed.
pub fn page(chrome: &Chrome, html: String) -> HttpResponse {
    let mut res = HttpResponse::Ok();
    res.insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"));
    if chrome.flash.is_some() {
        res.cookie(session::removal(FLASH_COOKIE));
    }
    res.body(html)
}

/// Post/redirect/get: to `to`, with the flash message `flash` (a catalogue key
/// starting `flash-`) shown on the next page.
pub fn redirect_with_flash(req: &HttpRequest, to: &str, flash: &'static str) -> HttpResponse {
    let secure = req
        .app_data::<web::Data<crate::web::AppState>>()
        .is_some_and(|s| session::secure(req, s));
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_owned()))
        .cookie(session::cookie(FLASH_COOKIE, flash.to_owned(), secure))
        .finish()
}
