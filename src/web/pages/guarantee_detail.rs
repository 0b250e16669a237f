//! A guarantee's own page (`/guarantees/{number}`) for its parties (as the API shows
//! the guarantee: the bidder, the issuer, the operator, and after bid opening the
//! agency and the tenderee): its terms in force, its files, its release and reduction
//! letters, and its reductions (URDG 758 art. 11). The issuer proposes a reduction
//! there; the agency accepts or refuses a signed one. The services decide everything;
//! the page gathers what was typed and shows what they answered.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::enterprise::{money, run, state_words, when};
use super::errors::PageError;
use super::forms::{form_page, submit, FieldErrors, Outcome};
use super::i18n::{Lang, Tr};
use super::session::{SignedForm, Visitor};
use super::{redirect_with_flash, Chrome, Nav};
use crate::db::models::{GuaranteeLetter, GuaranteeReduction};
use crate::domain::lifecycle::GuaranteeAction;
use crate::domain::party::Role;
use crate::domain::reduction::ReductionState;
use crate::domain::tender;
use crate::services::guarantees::{self, GuaranteeView, NewReduction};
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/guarantees/{number}", web::get().to(show))
        .route("/guarantees/{number}/reduction", web::post().to(propose))
        .route(
            "/guarantees/{number}/amendments/{version}/accept",
            web::post().to(accept),
        )
        .route(
            "/guarantees/{number}/amendments/{version}/refuse",
            web::post().to(refuse),
        );
}

/// Who may open the page; the service hides a guarantee from the rest with a 404.
const PARTIES: &[Role] = &[
    Role::Enterprise,
    Role::Issuer,
    Role::Agency,
    Role::Tenderee,
    Role::Operator,
];

/// A reduction as the page shows it.
struct ReductionRow {
    version: i32,
    before: String,
    after: String,
    reason: String,
    state: String,
    state_words: String,
    proposed_at: String,
    signed_at: Option<String>,
    decided_at: Option<String>,
    decision_reason: Option<String>,
    /// The signed amendment's files, once signed.
    signed: bool,
}

impl ReductionRow {
    fn of(tr: Tr, r: &GuaranteeReduction) -> ReductionRow {
        ReductionRow {
            version: r.version,
            before: money(r.amount_before_fen),
            after: money(r.amount_fen),
            reason: r.reason.clone(),
            state: r.status.as_str().to_owned(),
            state_words: state_words(tr, "reduction", r.status.as_str()),
            proposed_at: when(r.proposed_at),
            signed_at: r.signed_at.map(when),
            decided_at: r.decided_at.map(when),
            decision_reason: r.decision_reason.clone(),
            signed: r.document.is_some(),
        }
    }
}

/// A letter as the page lists it.
struct LetterRow {
    kind_words: String,
    created_at: String,
    sha256: String,
    document_href: String,
    timestamp_href: String,
}

impl LetterRow {
    fn of(tr: Tr, number: &str, l: &GuaranteeLetter) -> LetterRow {
        let base = format!("/api/v1/guarantees/{number}/letters/{}", l.id);
        LetterRow {
            kind_words: tr.t(&format!("letter-kind-{}", l.kind.as_str())),
            created_at: when(l.created_at),
            sha256: l.document_sha256.clone(),
            document_href: format!("{base}/document"),
            timestamp_href: format!("{base}/timestamp"),
        }
    }
}

/// What the issuer typed in the proposal form, and what was wrong with it.
#[derive(Debug, Default, Deserialize)]
struct ProposalForm {
    #[serde(default)]
    amount: String,
    #[serde(default)]
    reason: String,
}

#[derive(Template)]
#[template(path = "pages/guarantee.html")]
struct GuaranteePage {
    chrome: Chrome,
    number: String,
    state: String,
    state_words: String,
    version: i32,
    project: String,
    section: String,
    applicant: String,
    issuer: String,
    beneficiary: String,
    amount: String,
    amount_in_words: String,
    paid: String,
    outstanding: String,
    valid_from: String,
    valid_until: String,
    sha256: String,
    /// The issuer's application page, where a drafted amendment is signed.
    application_href: Option<String>,
    /// The reduction still pending, if any, and the earlier ones.
    pending: Option<ReductionRow>,
    past: Vec<ReductionRow>,
    /// The agency may accept or refuse the pending reduction.
    may_decide: bool,
    /// The issuer may propose a reduction now.
    may_propose: bool,
    typed: ProposalForm,
    errors: FieldErrors,
    refusal: String,
    letters: Vec<LetterRow>,
}

async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    number: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let number = number.into_inner();
    render(
        &req,
        &state,
        &visitor,
        number,
        ProposalForm::default(),
        FieldErrors::default(),
        String::new(),
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn render(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    visitor: &Visitor,
    number: String,
    typed: ProposalForm,
    errors: FieldErrors,
    refusal: String,
) -> Result<HttpResponse, PageError> {
    visitor.require(PARTIES)?;
    let actor = visitor.actor.clone();
    let (view, reductions, letters, now) = run(state, move |ctx| {
        let (view, reductions) = guarantees::list_reductions(ctx, &actor, &number)?;
        let (_, letters) = guarantees::list_letters(ctx, &actor, &number)?;
        Ok((view, reductions, letters, ctx.now()))
    })
    .await?;
    let tr = Tr::new(Lang::of(req));
    let refused = !errors.is_empty();
    let g = &view.guarantee;
    let title = tr.t1("guarantee-page-title", "number", &g.number);
    let chrome = Chrome::new(req, Some(visitor), &title, Nav::Role);
    let role = visitor.role();
    let pending = reductions.iter().find(|r| r.status.is_pending());
    let may_decide = role == Role::Agency
        && pending.is_some_and(|r| r.status == ReductionState::AwaitingAcceptance);
    let may_propose = may_propose(role, &view, pending.is_some(), now);
    let html = GuaranteePage {
        number: g.number.clone(),
        state: g.status.as_str().to_owned(),
        state_words: state_words(tr, "guarantee", g.status.as_str()),
        version: g.current_version,
        project: format!("{} {}", view.project.code, view.project.name),
        section: format!("{} {}", view.section.code, view.section.name),
        applicant: view.enterprise.name.clone(),
        issuer: view.issuer.name.clone(),
        beneficiary: view.tenderee.name.clone(),
        amount: money(g.amount_fen),
        amount_in_words: crate::domain::money::Amount::from_fen(g.amount_fen).to_chinese_capital(),
        paid: money(g.paid_fen),
        outstanding: money(g.amount_fen - g.paid_fen),
        valid_from: when(g.valid_from),
        valid_until: when(g.valid_until),
        sha256: view.version.document_sha256.clone(),
        application_href: (role == Role::Issuer)
            .then(|| format!("/applications/{}", g.application_id)),
        pending: pending.map(|r| ReductionRow::of(tr, r)),
        past: reductions
            .iter()
            .filter(|r| !r.status.is_pending())
            .map(|r| ReductionRow::of(tr, r))
            .collect(),
        may_decide,
        may_propose,
        typed,
        errors,
        refusal,
        letters: letters
            .iter()
            .map(|l| LetterRow::of(tr, &g.number, l))
            .collect(),
        chrome: chrome.clone(),
    }
    .render()?;
    Ok(form_page(&chrome, html, refused))
}

/// Whether the issuer's form is offered: a guarantee in force after bid opening, no
/// reduction or other amendment pending. The service decides when it is sent.
fn may_propose(
    role: Role,
    view: &GuaranteeView,
    reduction_pending: bool,
    now: chrono::NaiveDateTime,
) -> bool {
    let g = &view.guarantee;
    role == Role::Issuer
        && g.status
            .transition(GuaranteeAction::Amend, g.claimed_from)
            .is_ok()
        && tender::opened(view.project.bid_opening_at, now)
        && !reduction_pending
        && view.pending_amendment.is_none()
        && g.amount_fen > g.paid_fen
}

async fn propose(
    req: HttpRequest,
    state: web::Data<AppState>,
    number: web::Path<String>,
    posted: SignedForm<ProposalForm>,
) -> Result<HttpResponse, PageError> {
    let SignedForm { visitor, form } = posted;
    visitor.require(&[Role::Issuer])?;
    let number = number.into_inner();
    let input = NewReduction {
        amount: form.amount.trim().to_owned(),
        reason: form.reason.clone(),
    };
    let (ctx, actor, proposed) = (state.ctx.clone(), visitor.actor.clone(), number.clone());
    match submit(None, move || {
        guarantees::propose_reduction(&ctx, &actor, &proposed, input)
    })
    .await?
    {
        Outcome::Done(_) => Ok(redirect_with_flash(
            &req,
            &format!("/guarantees/{number}"),
            "flash-reduction-proposed",
        )),
        Outcome::Refused { field, message } => {
            let tr = Tr::new(Lang::of(&req));
            let (id, key) = match field.as_str() {
                "reason" => ("reduction-reason", "reduction-error-reason"),
                _ => ("reduction-amount", "reduction-error-amount"),
            };
            let errors = FieldErrors::one(tr, id, key, &message);
            render(&req, &state, &visitor, number, form, errors, String::new()).await
        }
    }
}

/// A version in a page's path: anything else names no amendment.
fn version_of(text: &str) -> Result<i32, PageError> {
    text.parse::<i32>().ok().filter(|v| *v > 0).ok_or_else(|| {
        PageError::Service(crate::services::ServiceError::NotFound("amendment".into()))
    })
}

#[derive(Deserialize)]
struct Nothing {}

async fn accept(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    posted: SignedForm<Nothing>,
) -> Result<HttpResponse, PageError> {
    let visitor = posted.visitor;
    visitor.require(&[Role::Agency])?;
    let (number, version) = path.into_inner();
    let version = version_of(&version)?;
    let (actor, accepted) = (visitor.actor.clone(), number.clone());
    run(&state, move |ctx| {
        guarantees::accept_reduction(ctx, &actor, &accepted, version)
    })
    .await?;
    Ok(redirect_with_flash(
        &req,
        &format!("/guarantees/{number}"),
        "flash-reduction-accepted",
    ))
}

#[derive(Deserialize)]
struct RefusalForm {
    #[serde(default)]
    reason: String,
}

async fn refuse(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    posted: SignedForm<RefusalForm>,
) -> Result<HttpResponse, PageError> {
    let SignedForm { visitor, form } = posted;
    visitor.require(&[Role::Agency])?;
    let (number, version) = path.into_inner();
    let version = version_of(&version)?;
    let (ctx, actor, refused, reason) = (
        state.ctx.clone(),
        visitor.actor.clone(),
        number.clone(),
        form.reason.clone(),
    );
    match submit(None, move || {
        guarantees::refuse_reduction(&ctx, &actor, &refused, version, &reason)
    })
    .await?
    {
        Outcome::Done(_) => Ok(redirect_with_flash(
            &req,
            &format!("/guarantees/{number}"),
            "flash-reduction-refused",
        )),
        Outcome::Refused { message, .. } => {
            let tr = Tr::new(Lang::of(&req));
            let errors =
                FieldErrors::one(tr, "refusal-reason", "reduction-error-refusal", &message);
            let typed = ProposalForm::default();
            let refusal: String = form.reason.chars().take(500).collect();
            render(&req, &state, &visitor, number, typed, errors, refusal).await
        }
    }
}
