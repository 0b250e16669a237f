//! My credit (我的信用): a resident's or an enterprise's own archive as the credit
//! office keeps it: the level and score with what moves them (each record in force and
//! its contribution, per dimension), the level's history, and in one look (一键查询) the
//! deposit-free matters the level qualifies for, and who else looked at the archive
//! (the organization, why, when). The page reads the subject row and its
//! records; nothing is recomputed here.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::agency::china_time;
use super::errors::PageError;
use super::forms::{form_page, submit, FieldErrors, Outcome, Typed};
use super::i18n::{Lang, Tr};
use super::session::{SignedForm, Visitor};
use super::{page, redirect_with_flash, Chrome, Nav};
use crate::domain::catalogue::{Dimension, MatterPath};
use crate::domain::party::Role;
use crate::services::credit::ArchiveRecord;
use crate::services::credit_disputes::{self, DisputeDecision, NewDispute};
use crate::services::{catalogue, credit, ServiceError, Window};
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/credit", web::get().to(mine))
        .route("/credit/records/{id}/dispute", web::get().to(dispute_form))
        .route("/credit/records/{id}/dispute", web::post().to(dispute))
        .route("/credit/records/{id}/repair", web::get().to(repair_form))
        .route("/credit/records/{id}/repair", web::post().to(repair))
        .route("/credit/disputes", web::get().to(office_disputes))
        .route("/credit/disputes/{id}/decision", web::post().to(decide));
}

/// A record that moves the score, as the page shows it.
struct MovingView {
    record_id: String,
    /// Under a dispute not decided yet; otherwise the page offers to dispute it.
    disputed: bool,
    category: String,
    dimension: String,
    /// Signed: "+20", "−50".
    contribution: String,
    negative: bool,
    occurred_on: String,
    expires_on: String,
    department: String,
}

struct DimensionView {
    name: String,
    points: String,
}

/// A look at the archive by someone else: which organization, why, when.
struct LookView {
    organization: String,
    purpose: String,
    at: String,
}

/// The looks the page lists, newest first; the API pages through all of them.
const LOOKS_SHOWN: i64 = 20;

struct ChangeView {
    at: String,
    from: String,
    to: String,
    score: i32,
}

/// A credit-substituted matter and whether the level qualifies for it.
struct MatterView {
    code: String,
    name: String,
    required: String,
    qualifies: bool,
}

#[derive(Template)]
#[template(path = "pages/credit/mine.html")]
struct MinePage {
    chrome: Chrome,
    level: String,
    score: i32,
    base_score: i32,
    on_dishonesty_list: bool,
    has_archive: bool,
    dimensions: Vec<DimensionView>,
    moving: Vec<MovingView>,
    changes: Vec<ChangeView>,
    matters: Vec<MatterView>,
    looks: Vec<LookView>,
    looks_total: i64,
}

/// Points as the pages show them: signed, with a true minus sign ("+20", "−50").
pub(super) fn signed(points: i32) -> String {
    match points {
        p if p > 0 => format!("+{p}"),
        p if p < 0 => format!("−{}", p.unsigned_abs()),
        _ => "0".to_owned(),
    }
}

fn date_of(at: chrono::NaiveDateTime) -> String {
    china_time(at).chars().take(10).collect()
}

async fn mine(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
) -> Result<HttpResponse, PageError> {
    visitor.require(&[Role::Enterprise, Role::Person])?;
    let (ctx, actor) = (state.ctx.clone(), visitor.actor.clone());
    let (archive, matters, looks) = web::block(move || {
        let archive = credit::my_archive(&ctx, &actor)?;
        let matters = catalogue::list_matters(&ctx)?;
        let window = Window {
            offset: 0,
            limit: LOOKS_SHOWN,
        };
        let looks = credit::my_looks(&ctx, &actor, window)?;
        Ok::<_, ServiceError>((archive, matters, looks))
    })
    .await??;
    let lang = Lang::of(&req);
    let tr = Tr::new(lang);
    let chrome = Chrome::new(&req, Some(&visitor), &tr.t("credit-title"), Nav::Role);
    let kind = match visitor.role() {
        Role::Person => "person",
        _ => "enterprise",
    };
    let level = archive.standing.level;
    let dims = &archive.dimensions;
    let listed = archive
        .subject
        .as_ref()
        .is_some_and(|s| s.serious_dishonesty_count > 0);
    let html = MinePage {
        chrome: chrome.clone(),
        level: level.to_string(),
        score: archive.standing.score,
        base_score: archive.base_score,
        on_dishonesty_list: listed,
        has_archive: archive.subject.is_some(),
        dimensions: Dimension::ALL
            .iter()
            .map(|d| DimensionView {
                name: tr.t(&format!("category-dimension-{d}")),
                points: signed(dims.get(*d)),
            })
            .collect(),
        moving: archive
            .explanation()
            .into_iter()
            .map(|(r, contribution)| MovingView {
                record_id: r.record.id.clone(),
                disputed: r.disputed,
                category: match lang {
                    Lang::Zh => r.category_name_zh.clone(),
                    Lang::En => r.category_name_en.clone(),
                },
                dimension: tr.t(&format!("category-dimension-{}", r.record.dimension)),
                contribution: signed(contribution),
                negative: contribution < 0,
                occurred_on: date_of(r.record.occurred_at),
                expires_on: r.record.expires_at.map(date_of).unwrap_or_default(),
                department: r.record.source_department.clone(),
            })
            .collect(),
        changes: archive
            .level_changes
            .iter()
            .map(|c| ChangeView {
                at: china_time(c.changed_at),
                from: c.from_level.to_string(),
                to: c.to_level.to_string(),
                score: c.score,
            })
            .collect(),
        matters: matters
            .iter()
            .filter(|e| e.matter.path == MatterPath::CreditSubstitution)
            .filter_map(|e| {
                let terms = e.matter.credit.as_ref()?;
                (terms.subject.as_str() == kind).then(|| MatterView {
                    code: e.code.clone(),
                    name: match lang {
                        Lang::Zh => e.matter.name_zh.clone(),
                        Lang::En => e.matter.name_en.clone(),
                    },
                    required: terms.required_level.to_string(),
                    qualifies: !listed && level.meets(terms.required_level),
                })
            })
            .collect(),
        looks: looks
            .rows
            .iter()
            .map(|l| LookView {
                organization: l.organization_name.clone(),
                purpose: tr.t(&format!("credit-look-{}", l.purpose)),
                at: china_time(l.looked_at),
            })
            .collect(),
        looks_total: looks.total,
    }
    .render()?;
    Ok(page(&chrome, html))
}

// ---- Disputing a record (信用异议) ----------------------------------------------

/// The longest reason kept as typed (the service refuses more).
const REASON_MAX_CHARS: usize = 2500;

#[derive(Template)]
#[template(path = "pages/credit/dispute.html")]
struct DisputePage {
    chrome: Chrome,
    /// `dispute` or `repair`: the request's kind and its path.
    kind: &'static str,
    lede: String,
    reason_label: String,
    hint: String,
    submit: String,
    record_id: String,
    category: String,
    points: String,
    occurred_on: String,
    department: String,
    reason: String,
    errors: FieldErrors,
}

/// The signed-in subject's own record the form may file a request against (see
/// [`credit_disputes::disputable`]).
async fn disputable(
    state: &AppState,
    visitor: &Visitor,
    id: String,
) -> Result<ArchiveRecord, PageError> {
    let (ctx, actor) = (state.ctx.clone(), visitor.actor.clone());
    Ok(web::block(move || credit_disputes::disputable(&ctx, &actor, &id)).await??)
}

fn render_dispute(
    req: &HttpRequest,
    visitor: &Visitor,
    kind: &'static str,
    r: &ArchiveRecord,
    reason: String,
    errors: FieldErrors,
) -> Result<HttpResponse, PageError> {
    let lang = Lang::of(req);
    let tr = Tr::new(lang);
    let chrome = Chrome::new(
        req,
        Some(visitor),
        &tr.t(&format!("{kind}-title")),
        Nav::Role,
    );
    let refused = !errors.is_empty();
    let html = DisputePage {
        chrome: chrome.clone(),
        kind,
        lede: tr.t1(
            &format!("{kind}-lede"),
            "days",
            credit_disputes::DECISION_BUSINESS_DAYS,
        ),
        reason_label: tr.t(&format!("{kind}-reason")),
        hint: tr.t(&format!("{kind}-hint")),
        submit: tr.t(&format!("{kind}-submit")),
        record_id: r.record.id.clone(),
        category: match lang {
            Lang::Zh => r.category_name_zh.clone(),
            Lang::En => r.category_name_en.clone(),
        },
        points: signed(credit::contribution(&r.record)),
        occurred_on: date_of(r.record.occurred_at),
        department: r.record.source_department.clone(),
        reason,
        errors,
    }
    .render()?;
    Ok(form_page(&chrome, html, refused))
}

async fn dispute_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    request_form(req, state, visitor, id, "dispute").await
}

async fn repair_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    request_form(req, state, visitor, id, "repair").await
}

async fn dispute(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    posted: SignedForm<Typed>,
) -> Result<HttpResponse, PageError> {
    request(req, state, id, posted, "dispute").await
}

async fn repair(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    posted: SignedForm<Typed>,
) -> Result<HttpResponse, PageError> {
    request(req, state, id, posted, "repair").await
}

/// The form of a request about a record: a dispute (异议) or a repair (信用修复).
async fn request_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    id: web::Path<String>,
    kind: &'static str,
) -> Result<HttpResponse, PageError> {
    visitor.require(&[Role::Enterprise, Role::Person])?;
    let record = disputable(&state, &visitor, id.into_inner()).await?;
    render_dispute(
        &req,
        &visitor,
        kind,
        &record,
        String::new(),
        FieldErrors::default(),
    )
}

async fn request(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    posted: SignedForm<Typed>,
    kind: &'static str,
) -> Result<HttpResponse, PageError> {
    let SignedForm { visitor, form } = posted;
    visitor.require(&[Role::Enterprise, Role::Person])?;
    let record = disputable(&state, &visitor, id.into_inner()).await?;
    let reason: String = form
        .value("reason")
        .chars()
        .take(REASON_MAX_CHARS)
        .collect();
    let (ctx, actor) = (state.ctx.clone(), visitor.actor.clone());
    let filing = NewDispute {
        record_id: record.record.id.clone(),
        reason: reason.clone(),
        kind: Some(kind.to_owned()),
    };
    match submit(Some("reason"), move || {
        credit_disputes::file(&ctx, &actor, filing)
    })
    .await?
    {
        Outcome::Done(_) => Ok(redirect_with_flash(
            &req,
            "/credit",
            if kind == "repair" {
                "flash-repair-filed"
            } else {
                "flash-dispute-filed"
            },
        )),
        Outcome::Refused { field, message } => {
            let tr = Tr::new(Lang::of(&req));
            let mut errors = FieldErrors::default();
            errors.refused(tr, &field, &format!("{kind}-error-reason"), &message);
            render_dispute(&req, &visitor, kind, &record, reason, errors)
        }
    }
}

// ---- The credit office decides disputes ------------------------------------------

/// An open dispute as a row of the office's page.
struct OpenView {
    id: String,
    /// Dispute or credit repair request, in the visitor's words.
    kind_name: String,
    subject: String,
    category: String,
    points: String,
    reason: String,
    filed_at: String,
    decide_by: String,
    overdue: bool,
}

#[derive(Template)]
#[template(path = "pages/credit/disputes.html")]
struct DisputesPage {
    chrome: Chrome,
    disputes: Vec<OpenView>,
}

async fn office_disputes(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
) -> Result<HttpResponse, PageError> {
    visitor.require(&[Role::Operator])?;
    let (ctx, actor) = (state.ctx.clone(), visitor.actor.clone());
    let now = state.ctx.now();
    let open = web::block(move || credit_disputes::open(&ctx, &actor)).await??;
    let lang = Lang::of(&req);
    let tr = Tr::new(lang);
    let chrome = Chrome::new(&req, Some(&visitor), &tr.t("disputes-title"), Nav::Role);
    let html = DisputesPage {
        chrome: chrome.clone(),
        disputes: open
            .iter()
            .map(|o| OpenView {
                id: o.dispute.id.clone(),
                kind_name: tr.t(&format!("request-kind-{}", o.dispute.kind)),
                subject: format!("{} ({})", o.subject_name, o.subject_masked_id),
                category: match lang {
                    Lang::Zh => o.category_name_zh.clone(),
                    Lang::En => o.category_name_en.clone(),
                },
                points: signed(credit::contribution(&o.record)),
                reason: o.dispute.reason.clone(),
                filed_at: china_time(o.dispute.filed_at),
                decide_by: china_time(o.dispute.decide_by),
                overdue: credit_disputes::overdue(&o.dispute, now),
            })
            .collect(),
    }
    .render()?;
    Ok(page(&chrome, html))
}

/// A decision posted from the office's page. A decision without its reasons, or a
/// dispute decided meanwhile, is the page's error (the list shows what stands).
async fn decide(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    posted: SignedForm<Typed>,
) -> Result<HttpResponse, PageError> {
    let SignedForm { visitor, form } = posted;
    visitor.require(&[Role::Operator])?;
    let (ctx, actor) = (state.ctx.clone(), visitor.actor.clone());
    let decision = DisputeDecision {
        decision: form.value("decision"),
        note: form.value("note").chars().take(REASON_MAX_CHARS).collect(),
    };
    web::block(move || credit_disputes::decide(&ctx, &actor, &id, decision)).await??;
    Ok(redirect_with_flash(
        &req,
        "/credit/disputes",
        "flash-dispute-decided",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::credit::LookPurpose;

    /// The keys the page makes from values exist in both languages.
    #[test]
    fn keys_made_from_values_exist() {
        use super::super::forms::checks::value_keys_exist;
        value_keys_exist("credit-look-", LookPurpose::ALL);
        value_keys_exist("category-dimension-", Dimension::ALL);
        value_keys_exist("request-kind-", &credit_disputes::KINDS);
        for kind in credit_disputes::KINDS {
            // (The ledes take the deadline as an argument; the catalogue walk checks them.)
            for part in ["title", "reason", "hint", "submit", "error-reason"] {
                value_keys_exist(&format!("{kind}-"), &[part]);
            }
        }
    }

    #[test]
    fn points_are_signed_with_a_true_minus() {
        assert_eq!(signed(20), "+20");
        assert_eq!(signed(-50), "−50");
        assert_eq!(signed(0), "0");
    }
}
