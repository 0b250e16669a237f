//! The issuer's pages: its work queue (applications by what they wait for, amendments
//! to sign, claims to decide with their deadline), an application's page with the
//! applicant's details and the next step (approve with a premium, decline with a
//! reason, confirm payment, issue with the hosted key), the guarantees it issued, the
//! claims on them and its signing certificates. The application page is the
//! bidder's too, with the bidder's own step (withdraw).

use actix_multipart::Multipart;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use futures_util::TryStreamExt;
use serde::Deserialize;

use super::enterprise::{money, run, state_words, when, ApplicationRow, Button};
use super::errors::PageError;
use super::i18n::{Lang, Tr};
use super::paging::{query_of, Pager, Paging};
use super::session::{referring_path, visitor_of, SignedForm, Visitor};
use super::{page, redirect_with_flash, Chrome, Nav};
use crate::domain::lifecycle::{ApplicationAction, ApplicationState, ClaimState};
use crate::domain::money::Amount;
use crate::domain::party::Role;
use crate::services::claims::{self, ClaimDecision, ClaimView};
use crate::services::credit::ApplicantCredit;
use crate::services::{applications, guarantees, premium_terms, trust, ServiceError};
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/issuer/queue", web::get().to(queue))
        .route("/applications/{id}", web::get().to(application))
        .route("/applications/{id}/approve", web::post().to(approve))
        .route("/applications/{id}/decline", web::post().to(decline))
        .route(
            "/applications/{id}/confirm-payment",
            web::post().to(confirm_payment),
        )
        .route("/applications/{id}/issue", web::post().to(issue))
        .route("/applications/{id}/signature", web::post().to(upload))
        .route("/issuer/claims", web::get().to(claims_page))
        .route("/issuer/claims/{id}/decide", web::post().to(decide))
        .route("/issuer/certificates", web::get().to(certificates));
}

/// How many rows each part of the queue shows by default (the rest are a page away).
const QUEUE_PART: u32 = 50;

// ---- The queue --------------------------------------------------------------------

struct QueuePart {
    /// The part's heading key.
    heading: &'static str,
    id: &'static str,
    rows: Vec<ApplicationRow>,
    pager: Pager,
}

/// Which page of each part of the queue to show: each part has its own page number,
/// so paging one leaves the others where they are; `size` is shared.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
struct QueueQuery {
    new_page: Option<u32>,
    approved_page: Option<u32>,
    paid_page: Option<u32>,
    amendments_page: Option<u32>,
    claims_page: Option<u32>,
    size: Option<u32>,
}

impl QueueQuery {
    /// Each part: its page key, its anchor and heading key, and its page number.
    fn parts(&self) -> [(&'static str, &'static str, &'static str, Option<u32>); 5] {
        [
            ("new_page", "new", "queue-new", self.new_page),
            (
                "approved_page",
                "awaiting-payment",
                "queue-awaiting-payment",
                self.approved_page,
            ),
            ("paid_page", "to-issue", "queue-to-issue", self.paid_page),
            (
                "amendments_page",
                "amendments",
                "queue-amendments",
                self.amendments_page,
            ),
            ("claims_page", "claims", "queue-claims", self.claims_page),
        ]
    }

    fn paging(&self, page: Option<u32>) -> Paging {
        Paging::of(page, self.size, QUEUE_PART)
    }

    /// The pager of the part paged by `key`: the other parts' pages kept in its links.
    fn pager(&self, tr: Tr, key: &str, total: i64) -> Pager {
        let (_, anchor, heading, page) = self
            .parts()
            .into_iter()
            .find(|(k, ..)| *k == key)
            .unwrap_or(("", "", "", None));
        let others: Vec<(&str, Option<String>)> = self
            .parts()
            .into_iter()
            .filter(|(k, ..)| *k != key)
            .map(|(k, _, _, page)| (k, page.filter(|p| *p > 1).map(|p| p.to_string())))
            .collect();
        let others: Vec<(&str, Option<&str>)> =
            others.iter().map(|(k, v)| (*k, v.as_deref())).collect();
        let query = query_of(&others);
        let base = if query.is_empty() {
            "/issuer/queue".to_owned()
        } else {
            format!("/issuer/queue?{query}")
        };
        Pager::keyed(&base, key, self.paging(page), total, anchor).labelled(tr.t1(
            "queue-pager-label",
            "part",
            tr.t(heading),
        ))
    }
}

/// A claim as the issuer's lists show it.
struct ClaimRow {
    id: String,
    number: String,
    project_code: String,
    enterprise: String,
    amount: String,
    reason: String,
    statement: String,
    filed_at: String,
    decide_by: String,
    overdue: bool,
    state_words: String,
    open: bool,
    /// For an extend-or-pay demand, the expiry asked for instead of payment.
    extend_to: Option<String>,
    /// The issuer may still choose to extend (the demand asks for it, none is offered).
    can_extend: bool,
}

impl ClaimRow {
    fn of(tr: Tr, v: &ClaimView) -> ClaimRow {
        let c = &v.claim;
        ClaimRow {
            id: c.id.clone(),
            number: v.guarantee.guarantee.number.clone(),
            project_code: v.guarantee.project.code.clone(),
            enterprise: v.guarantee.enterprise.name.clone(),
            amount: money(c.amount_fen),
            reason: tr.t(&format!("claim-reason-{}", c.reason_code.as_str())),
            statement: c.statement.clone(),
            filed_at: when(c.filed_at),
            decide_by: when(c.decide_by),
            overdue: v.overdue,
            state_words: state_words(tr, "claim", c.status.as_str()),
            open: matches!(c.status, ClaimState::Filed | ClaimState::Extending),
            extend_to: c.extend_to.map(when),
            can_extend: c.status == ClaimState::Filed && c.extend_to.is_some(),
        }
    }
}

#[derive(Template)]
#[template(path = "pages/issuer/queue.html")]
struct QueuePage {
    chrome: Chrome,
    parts: Vec<QueuePart>,
    amendments: Vec<ApplicationRow>,
    amendments_pager: Pager,
    claims: Vec<ClaimRow>,
    claims_pager: Pager,
}

async fn queue(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    query: web::Query<QueueQuery>,
) -> Result<HttpResponse, PageError> {
    visitor.require(&[Role::Issuer])?;
    visitor.cacheable(&req);
    let tr = Tr::new(Lang::of(&req));
    let chrome = Chrome::titled(&req, &visitor, "queue-title");
    let query = query.into_inner();
    let actor = visitor.actor.clone();
    let (listed, amendments, claims) = run(&state, move |ctx| {
        let mut listed = Vec::new();
        for (s, page) in [
            (ApplicationState::Submitted, query.new_page),
            (ApplicationState::Approved, query.approved_page),
            (ApplicationState::Paid, query.paid_page),
        ] {
            let window = query.paging(page).window();
            listed.push((s, applications::list_page(ctx, &actor, &[s], window)?));
        }
        let amendments = applications::awaiting_amendment(
            ctx,
            &actor,
            query.paging(query.amendments_page).window(),
        )?;
        let claims = claims::list_claims_in(
            ctx,
            &actor,
            &[ClaimState::Filed, ClaimState::Extending],
            query.paging(query.claims_page).window(),
        )?;
        Ok((listed, amendments, claims))
    })
    .await?;
    let parts = listed
        .into_iter()
        .map(|(s, l)| {
            let (heading, id, key) = match s {
                ApplicationState::Submitted => ("queue-new", "new", "new_page"),
                ApplicationState::Approved => (
                    "queue-awaiting-payment",
                    "awaiting-payment",
                    "approved_page",
                ),
                _ => ("queue-to-issue", "to-issue", "paid_page"),
            };
            QueuePart {
                heading,
                id,
                rows: l.rows.iter().map(|v| ApplicationRow::of(tr, v)).collect(),
                pager: query.pager(tr, key, l.total),
            }
        })
        .collect();
    let html = QueuePage {
        chrome: chrome.clone(),
        parts,
        amendments: amendments
            .rows
            .iter()
            .map(|v| ApplicationRow::of(tr, v))
            .collect(),
        amendments_pager: query.pager(tr, "amendments_page", amendments.total),
        claims: claims.rows.iter().map(|c| ClaimRow::of(tr, c)).collect(),
        claims_pager: query.pager(tr, "claims_page", claims.total),
    }
    .render()?;
    Ok(page(&chrome, html))
}

// ---- One application ----------------------------------------------------------------

#[derive(Template)]
#[template(path = "pages/issuer/application.html")]
struct ApplicationPage {
    chrome: Chrome,
    a: ApplicationRow,
    enterprise_uscc: String,
    enterprise_email: String,
    valid_from: String,
    valid_until: String,
    amendment_until: Option<String>,
    is_issuer: bool,
    can_approve: bool,
    can_confirm: bool,
    can_issue: bool,
    premium: String,
    /// The premium shown is the quote of the issuer's terms.
    premium_quoted: bool,
    premium_error: Option<String>,
    reason: String,
    reason_error: Option<String>,
    signature_error: Option<String>,
    /// The applicant's credit, for the issuer while it underwrites (the read is logged
    /// and shown to the applicant).
    credit: Option<CreditShown>,
    /// The application's documents, and the bidder's upload form while it may add one.
    attachments: super::attachments::AttachmentsShown,
}

/// The applicant's credit as the underwriting issuer's page shows it.
struct CreditShown {
    level: String,
    score: i32,
    discount_percent: i32,
    manual_review: bool,
    /// Records in force that lower the score: category name, points, occurred at.
    lowering: Vec<(String, i32, String)>,
}

impl CreditShown {
    fn of(lang: Lang, c: ApplicantCredit) -> CreditShown {
        CreditShown {
            level: c.standing.level.to_string(),
            score: c.standing.score,
            discount_percent: c.rule.discount_percent,
            manual_review: c.rule.manual_review,
            lowering: c
                .lowering
                .into_iter()
                .map(|r| {
                    let name = match lang {
                        Lang::Zh => r.category_name_zh,
                        Lang::En => r.category_name_en,
                    };
                    (name, r.points, when(r.occurred_at))
                })
                .collect(),
        }
    }
}

impl ApplicationPage {
    fn has_errors(&self) -> bool {
        self.premium_error.is_some()
            || self.reason_error.is_some()
            || self.signature_error.is_some()
    }
}

/// What was typed in the approve or decline form, and what was wrong with it.
#[derive(Default)]
struct Typed {
    premium: String,
    premium_error: Option<String>,
    reason: String,
    reason_error: Option<String>,
    signature_error: Option<String>,
}

async fn application_page(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    visitor: &Visitor,
    id: String,
    typed: Typed,
) -> Result<HttpResponse, PageError> {
    visitor.require(&[Role::Enterprise, Role::Issuer])?;
    let actor = visitor.actor.clone();
    let (view, credit, terms, shelf) = run(state, move |ctx| {
        let (view, credit) = applications::get_underwriting(ctx, &actor, &id)?;
        let shelf = crate::services::attachments::shelf(
            ctx,
            &actor,
            crate::domain::attachment::ParentKind::Application,
            &id,
        )?;
        // The issuer's own terms in force, to prefill the premium it quotes.
        let terms = if actor.role == Role::Issuer {
            premium_terms::current(ctx, &actor, &view.application.issuer_id)?
        } else {
            None
        };
        Ok((view, credit, terms, shelf))
    })
    .await?;
    let lang = Lang::of(req);
    let tr = Tr::new(lang);
    let title = tr.t1("application-title", "code", &view.project.code);
    let chrome = Chrome::new(req, Some(visitor), &title, Nav::Role);
    let is_issuer = visitor.role() == Role::Issuer;
    let status = view.application.status;
    let allowed = |action| is_issuer && status.transition(action).is_ok();
    // Nothing typed yet: the quote of the issuer's terms for this bond, if they cover it.
    // Less the issuer's own discount for the applicant's level.
    let quoted = terms
        .and_then(|v| v.terms)
        .and_then(|t| t.quote(Amount::from_fen(view.application.amount_fen)).ok())
        .map(|q| credit.as_ref().map_or(q, |c| c.rule.discounted(q)))
        .filter(|_| typed.premium.is_empty() && typed.premium_error.is_none());
    let shown = ApplicationPage {
        a: ApplicationRow::of(tr, &view),
        enterprise_uscc: view.enterprise.uscc.clone(),
        enterprise_email: view.enterprise.email.clone().unwrap_or_default(),
        valid_from: when(view.application.valid_from),
        valid_until: when(view.application.valid_until),
        amendment_until: view.pending_amendment.as_ref().map(|p| when(p.valid_until)),
        is_issuer,
        can_approve: allowed(ApplicationAction::Approve),
        can_confirm: allowed(ApplicationAction::ConfirmPayment),
        can_issue: allowed(ApplicationAction::Issue)
            || (is_issuer && view.pending_amendment.is_some()),
        premium_quoted: quoted.is_some(),
        premium: quoted.map_or(typed.premium, |q| q.to_string()),
        premium_error: typed.premium_error,
        reason: typed.reason,
        reason_error: typed.reason_error,
        signature_error: typed.signature_error,
        credit: credit.map(|c| CreditShown::of(lang, c)),
        attachments: super::attachments::AttachmentsShown::of(
            tr,
            &shelf,
            format!("/applications/{}/attachments", view.application.id),
            state.ctx.limits.attachment_max_bytes,
        )
        .refused(tr, req),
        chrome: chrome.clone(),
    };
    // A form shown again answers 200 (the edge turns a 4xx into an error page).
    let html = shown.render()?;
    Ok(page(&chrome, html))
}

async fn application(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    application_page(&req, &state, &visitor, id.into_inner(), Typed::default()).await
}

#[derive(Deserialize)]
struct PremiumForm {
    #[serde(default)]
    premium: String,
}

async fn approve(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    posted: SignedForm<PremiumForm>,
) -> Result<HttpResponse, PageError> {
    let SignedForm { visitor, form } = posted;
    visitor.require(&[Role::Issuer])?;
    let (actor, id) = (visitor.actor.clone(), id.into_inner());
    let (app_id, premium) = (id.clone(), form.premium.trim().to_owned());
    let done = run(&state, move |ctx| {
        applications::approve(ctx, &actor, &app_id, &premium)
    })
    .await;
    match done {
        Ok(_) => Ok(redirect_with_flash(
            &req,
            &format!("/applications/{id}"),
            "flash-approved",
        )),
        Err(PageError::Service(ServiceError::Invalid { field, .. })) if field == "premium" => {
            let tr = Tr::new(Lang::of(&req));
            let typed = Typed {
                premium: form.premium.chars().take(40).collect(),
                premium_error: Some(tr.t("approve-error-premium")),
                ..Typed::default()
            };
            application_page(&req, &state, &visitor, id, typed).await
        }
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
struct ReasonForm {
    #[serde(default)]
    reason: String,
}

async fn decline(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    posted: SignedForm<ReasonForm>,
) -> Result<HttpResponse, PageError> {
    let SignedForm { visitor, form } = posted;
    visitor.require(&[Role::Issuer])?;
    let (actor, id) = (visitor.actor.clone(), id.into_inner());
    let (app_id, reason) = (id.clone(), form.reason.clone());
    let done = run(&state, move |ctx| {
        applications::decline(ctx, &actor, &app_id, &reason)
    })
    .await;
    match done {
        Ok(_) => Ok(redirect_with_flash(&req, "/issuer/queue", "flash-declined")),
        Err(PageError::Service(ServiceError::Invalid { field, .. })) if field == "reason" => {
            let tr = Tr::new(Lang::of(&req));
            let typed = Typed {
                reason: form.reason.chars().take(500).collect(),
                reason_error: Some(tr.t("decline-error-reason")),
                ..Typed::default()
            };
            application_page(&req, &state, &visitor, id, typed).await
        }
        Err(e) => Err(e),
    }
}

async fn confirm_payment(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    posted: SignedForm<Button>,
) -> Result<HttpResponse, PageError> {
    let visitor = posted.visitor;
    visitor.require(&[Role::Issuer])?;
    let (actor, id) = (visitor.actor.clone(), id.into_inner());
    let app_id = id.clone();
    run(&state, move |ctx| {
        applications::confirm_payment(ctx, &actor, &app_id)
    })
    .await?;
    Ok(redirect_with_flash(
        &req,
        &format!("/applications/{id}"),
        "flash-paid",
    ))
}

async fn issue(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    posted: SignedForm<Button>,
) -> Result<HttpResponse, PageError> {
    let visitor = posted.visitor;
    visitor.require(&[Role::Issuer])?;
    let (actor, id) = (visitor.actor.clone(), id.into_inner());
    run(&state, move |ctx| {
        guarantees::issue_hosted(ctx, &actor, &id)
    })
    .await?;
    Ok(redirect_with_flash(
        &req,
        "/issuer/guarantees",
        "flash-issued",
    ))
}

/// A signature made in the issuer's own system over the draft, uploaded as a file
/// (multipart, so the CSRF token is read from the form's fields here). The service
/// verifies it like any relying party would; a refused one is shown beside the field.
async fn upload(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    mut form: Multipart,
) -> Result<HttpResponse, PageError> {
    let visitor = visitor_of(&req).await?.ok_or_else(|| PageError::SignIn {
        next: referring_path(&req).unwrap_or_else(|| "/".to_owned()),
    })?;
    let limit = state.settings.max_body_bytes;
    let (mut csrf, mut signature) = (String::new(), Vec::new());
    while let Some(mut field) = form
        .try_next()
        .await
        .map_err(|e| PageError::BadForm(e.to_string()))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        let mut bytes = Vec::new();
        while let Some(chunk) = field
            .try_next()
            .await
            .map_err(|e| PageError::BadForm(e.to_string()))?
        {
            if bytes.len() + chunk.len() > limit {
                return Err(PageError::BadForm("the file is too large".into()));
            }
            bytes.extend_from_slice(&chunk);
        }
        match name.as_str() {
            "csrf_token" => csrf = String::from_utf8_lossy(&bytes).into_owned(),
            "signature" => signature = bytes,
            _ => {}
        }
    }
    visitor.check_csrf(&csrf)?;
    visitor.require(&[Role::Issuer])?;
    let (actor, id) = (visitor.actor.clone(), id.into_inner());
    let app_id = id.clone();
    let signature = super::verify::signature_der(signature);
    let done = run(&state, move |ctx| {
        guarantees::upload_signature(ctx, &actor, &app_id, signature)
    })
    .await;
    let tr = Tr::new(Lang::of(&req));
    let message = match done {
        Ok(_) => {
            return Ok(redirect_with_flash(
                &req,
                "/issuer/guarantees",
                "flash-issued",
            ))
        }
        Err(PageError::Service(ServiceError::Invalid { field, .. })) if field == "signature" => {
            tr.t("upload-error-file")
        }
        Err(PageError::Service(ServiceError::SignatureRejected(report))) => {
            let reason = super::verify::refusal_words(tr, &report);
            tr.t1("upload-error-rejected", "reason", reason)
        }
        Err(e) => return Err(e),
    };
    let typed = Typed {
        signature_error: Some(message),
        ..Typed::default()
    };
    application_page(&req, &state, &visitor, id, typed).await
}

// ---- Claims --------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "pages/issuer/claims.html")]
struct ClaimsPage {
    chrome: Chrome,
    rows: Vec<ClaimRow>,
}

async fn claims_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
) -> Result<HttpResponse, PageError> {
    visitor.require(&[Role::Issuer])?;
    let tr = Tr::new(Lang::of(&req));
    let chrome = Chrome::titled(&req, &visitor, "claims-title");
    let actor = visitor.actor.clone();
    let listed = run(&state, move |ctx| claims::list_claims(ctx, &actor)).await?;
    let html = ClaimsPage {
        chrome: chrome.clone(),
        rows: listed.iter().map(|c| ClaimRow::of(tr, c)).collect(),
    }
    .render()?;
    Ok(page(&chrome, html))
}

#[derive(Deserialize)]
struct DecisionForm {
    #[serde(default)]
    decision: String,
    #[serde(default)]
    reason: String,
    /// Paid of the claim when less than all of it.
    #[serde(default)]
    amount: String,
}

async fn decide(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    posted: SignedForm<DecisionForm>,
) -> Result<HttpResponse, PageError> {
    let SignedForm { visitor, form } = posted;
    visitor.require(&[Role::Issuer])?;
    let actor = visitor.actor.clone();
    let id = id.into_inner();
    let input = ClaimDecision {
        decision: form.decision,
        reason: Some(form.reason).filter(|r| !r.trim().is_empty()),
        amount: Some(form.amount.trim().to_owned()).filter(|a| !a.is_empty()),
    };
    run(&state, move |ctx| {
        claims::decide_claim(ctx, &actor, &id, input)
    })
    .await?;
    Ok(redirect_with_flash(&req, "/issuer/claims", "flash-decided"))
}

// ---- Certificates --------------------------------------------------------------------

struct CertificateRow {
    subject: String,
    serial: String,
    fingerprint: String,
    not_before: String,
    not_after: String,
    hosted: bool,
    /// active, expiring (within 30 days), expired or deactivated.
    standing: &'static str,
}

#[derive(Template)]
#[template(path = "pages/issuer/certificates.html")]
struct CertificatesPage {
    chrome: Chrome,
    rows: Vec<CertificateRow>,
}

async fn certificates(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
) -> Result<HttpResponse, PageError> {
    visitor.require(&[Role::Issuer])?;
    let chrome = Chrome::titled(&req, &visitor, "certificates-title");
    let actor = visitor.actor.clone();
    let (rows, now) = run(&state, move |ctx| {
        Ok((trust::own_certificates(ctx, &actor)?, ctx.now()))
    })
    .await?;
    let soon = now + chrono::Duration::days(30);
    let html = CertificatesPage {
        chrome: chrome.clone(),
        rows: rows
            .into_iter()
            .map(|c| CertificateRow {
                standing: match () {
                    _ if c.deactivated_at.is_some() => "deactivated",
                    _ if c.not_after <= now => "expired",
                    _ if c.not_after <= soon => "expiring",
                    _ => "active",
                },
                subject: c.subject,
                serial: c.serial,
                fingerprint: c.fingerprint_sha256,
                not_before: when(c.not_before),
                not_after: when(c.not_after),
                hosted: c.encrypted_private_key.is_some(),
            })
            .collect(),
    }
    .render()?;
    Ok(page(&chrome, html))
}
