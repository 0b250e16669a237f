//! A claim's page (索赔): the demand, its state and deadline, and its evidence, for
//! the parties to it (the project's agency, the issuer, the bidder, the operator). The
//! agency adds evidence there while the issuer has not decided.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::attachments::AttachmentsShown;
use super::enterprise::{money, run, state_words, when};
use super::errors::PageError;
use super::session::Visitor;
use super::{page, Chrome, Nav};
use crate::domain::attachment::ParentKind;
use crate::domain::party::Role;
use crate::services::{attachments, claims};
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/claims/{id}", web::get().to(show));
}

#[derive(Template)]
#[template(path = "pages/claim.html")]
struct ClaimPage {
    chrome: Chrome,
    number: String,
    project: String,
    bidder: String,
    issuer: String,
    amount: String,
    reason: String,
    statement: String,
    state_words: String,
    filed_at: String,
    decide_by: String,
    overdue: bool,
    attachments: AttachmentsShown,
}

async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    visitor.require(&[Role::Agency, Role::Issuer, Role::Enterprise, Role::Operator])?;
    let actor = visitor.actor.clone();
    let id = id.into_inner();
    let claim_id = id.clone();
    let (view, shelf) = run(&state, move |ctx| {
        let view = claims::get(ctx, &actor, &claim_id)?;
        let shelf = attachments::shelf(ctx, &actor, ParentKind::Claim, &claim_id)?;
        Ok((view, shelf))
    })
    .await?;
    let tr = super::i18n::Tr::new(super::i18n::Lang::of(&req));
    let g = &view.guarantee;
    let title = tr.t1("claim-page-title", "number", &g.guarantee.number);
    let chrome = Chrome::new(&req, Some(&visitor), &title, Nav::Role);
    let c = &view.claim;
    let html = ClaimPage {
        number: g.guarantee.number.clone(),
        project: format!("{} {}", g.project.code, g.project.name),
        bidder: g.enterprise.name.clone(),
        issuer: g.issuer.name.clone(),
        amount: money(c.amount_fen),
        reason: tr.t(&format!("claim-reason-{}", c.reason_code.as_str())),
        statement: c.statement.clone(),
        state_words: state_words(tr, "claim", c.status.as_str()),
        filed_at: when(c.filed_at),
        decide_by: when(c.decide_by),
        overdue: view.overdue,
        attachments: AttachmentsShown::of(
            tr,
            &shelf,
            format!("/claims/{id}/attachments"),
            state.ctx.limits.attachment_max_bytes,
        )
        .refused(tr, &req),
        chrome: chrome.clone(),
    }
    .render()?;
    Ok(page(&chrome, html))
}
