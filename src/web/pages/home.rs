//! The home page: for a visitor, what the service is and where to verify a letter; for
//! a signed-in user, their role's home (its work and counts).

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::errors::PageError;
use super::i18n::{Lang, Tr};
use super::session::visitor_of;
use super::{page, Chrome, Nav, NavLink};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home));
}

#[derive(Template)]
#[template(path = "pages/home.html")]
struct HomePage {
    chrome: Chrome,
    /// The role's pages, when signed in.
    places: Vec<NavLink>,
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
    let html = HomePage {
        chrome: chrome.clone(),
        places,
    }
    .render()?;
    Ok(page(&chrome, html))
}
