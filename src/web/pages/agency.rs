//! The tender agency's pages: its projects (list, create, edit, postpone), the
//! bid-opening page with its CSV export and printable record, and the actions taken
//! there (accept a bond, award a section, record the contract, file a claim). Every
//! rule is the services' (the same calls as the JSON API): a page only gathers what was
//! typed and shows what the service answered.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::errors::PageError;
use super::forms::{form_page, submit, FieldErrors, Outcome};
use super::i18n::{Lang, Tr};
use super::paging::{query_of, PageQuery, Pager, Paging};
use super::session::{SignedForm, Visitor};
use super::{page, redirect_with_flash, Chrome, Nav};
use crate::db::models::{Claim, Section};
use crate::domain::lifecycle::GuaranteeState;
use crate::domain::money::Amount;
use crate::domain::party::Role;
use crate::domain::time::{china, china_rfc3339};
use crate::pki::{Indication, VerificationReport};
use crate::services::claims::{self, NewClaim};
use crate::services::guarantees::{self, GuaranteeView, OpeningReport};
use crate::services::projects::{
    self, NewProject, NewSection, Postponement, ProjectChanges, ProjectFilter, ProjectStage,
    ProjectView,
};
use crate::services::ServiceError;
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/agency/projects", web::get().to(list))
        .service(
            web::resource("/agency/projects/new")
                .route(web::get().to(new_form))
                .route(web::post().to(create)),
        )
        .route("/agency/projects/{id}", web::get().to(show))
        .service(
            web::resource("/agency/projects/{id}/edit")
                .route(web::get().to(edit_form))
                .route(web::post().to(edit)),
        )
        .service(
            web::resource("/agency/projects/{id}/postpone")
                .route(web::get().to(postpone_form))
                .route(web::post().to(postpone)),
        )
        .route("/agency/projects/{id}/opening", web::get().to(opening))
        .route(
            "/agency/projects/{id}/opening.csv",
            web::get().to(opening_csv),
        )
        .route(
            "/agency/projects/{id}/opening/record",
            web::get().to(opening_record),
        )
        .route(
            "/agency/projects/{id}/sections/{section}/award",
            web::post().to(award),
        )
        .route(
            "/agency/projects/{id}/sections/{section}/contract",
            web::post().to(contract),
        )
        .route("/agency/guarantees/{number}/accept", web::post().to(accept))
        .service(
            web::resource("/agency/guarantees/{number}/claim")
                .route(web::get().to(claim_form))
                .route(web::post().to(file_claim)),
        )
        .route("/agency/claims", web::get().to(claims_list))
        .route("/enterprise/claims", web::get().to(enterprise_claims_list));
}

/// The roles these pages serve: the agency runs the tender.
const AGENCY: &[Role] = &[Role::Agency];

/// How many sections the create form offers (a tender rarely has more; the service
/// takes up to its own limit through the API).
const SECTION_SLOTS: usize = 5;

/// A stored UTC time as people read it: China time, to the minute.
pub fn china_time(t: NaiveDateTime) -> String {
    china_rfc3339(t)
        .replace('T', " ")
        .chars()
        .take(16)
        .collect()
}

/// A stored UTC time as a `datetime-local` input's value (China time).
fn local_input(t: NaiveDateTime) -> String {
    use chrono::TimeZone;
    china()
        .from_utc_datetime(&t)
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

/// What a `datetime-local` input sends (`2026-12-20T09:00`, China time) as the RFC 3339
/// the services read; anything else goes to the service as typed, which names the
/// problem.
fn from_local_input(value: &str) -> String {
    let value = value.trim();
    let shape = value.len() == 16 && value.as_bytes().get(10) == Some(&b'T');
    if shape {
        format!("{value}:00+08:00")
    } else if value.len() == 19 && value.as_bytes().get(10) == Some(&b'T') {
        format!("{value}+08:00")
    } else {
        value.to_owned()
    }
}

/// Runs a service call on the blocking pool.
pub(super) async fn run<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, PageError> {
    Ok(web::block(f).await??)
}

fn title(req: &HttpRequest, key: &str) -> String {
    Tr::new(Lang::of(req)).t(key)
}

fn stage_word(tr: Tr, stage: ProjectStage) -> String {
    tr.t(&format!("agency-stage-{}", stage.as_str()))
}

/// A guarantee state in words.
fn state_word(tr: Tr, state: GuaranteeState) -> String {
    tr.t(&format!("agency-state-{}", state.as_str()))
}

/// The serde name of a report enum (`PASSED`, `NOT_REGISTERED`).
fn name_of(value: &impl Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn fen(fen: i64) -> String {
    Amount::from_fen(fen).grouped()
}

// ---------------------------------------------------------------------------------
// The list of my projects

#[derive(Deserialize)]
struct ListQuery {
    q: Option<String>,
    stage: Option<String>,
    // Not a flattened `PageQuery`: serde's flatten reads every value of a query string
    // as text, so a number in it would never parse.
    page: Option<u32>,
    size: Option<u32>,
}

struct ProjectRow {
    id: String,
    code: String,
    name: String,
    tenderee: String,
    sections: usize,
    deadline: String,
    opening: String,
    stage: String,
    opened: bool,
}

#[derive(Template)]
#[template(path = "pages/agency/projects.html")]
struct ProjectsPage {
    chrome: Chrome,
    q: String,
    /// (value, label, selected)
    stages: Vec<(&'static str, String, bool)>,
    rows: Vec<ProjectRow>,
    pager: Pager,
}

async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
    visitor.require(AGENCY)?;
    visitor.cacheable(&req);
    let query = query.into_inner();
    let paging = Paging::from_query(&PageQuery {
        page: query.page,
        size: query.size,
    });
    let stage = query.stage.as_deref().and_then(ProjectStage::parse);
    let filter = ProjectFilter {
        text: query.q.clone(),
        stage,
    };
    let ctx = state.ctx.clone();
    let actor = visitor.actor.clone();
    let now = state.ctx.now();
    let (views, total) = run(move || {
        projects::list_projects_page(&ctx, &actor, &filter, paging.offset(), paging.limit())
    })
    .await?;
    let chrome = Chrome::titled(&req, &visitor, "agency-projects-title");
    let tr = chrome.tr;
    let rows = views
        .into_iter()
        .map(|v| {
            let stage = ProjectStage::of(&v.project, now);
            ProjectRow {
                opened: stage == ProjectStage::Opened,
                stage: stage_word(tr, stage),
                id: v.project.id,
                code: v.project.code,
                name: v.project.name,
                tenderee: v.tenderee.name,
                sections: v.sections.len(),
                deadline: china_time(v.project.bid_deadline),
                opening: china_time(v.project.bid_opening_at),
            }
        })
        .collect();
    let q = query.q.unwrap_or_default();
    let stage = stage.map(ProjectStage::as_str).unwrap_or_default();
    let filters = query_of(&[("q", Some(q.as_str())), ("stage", Some(stage))]);
    let base = if filters.is_empty() {
        "/agency/projects".to_owned()
    } else {
        format!("/agency/projects?{filters}")
    };
    let html = ProjectsPage {
        stages: [
            ProjectStage::Open,
            ProjectStage::Sealed,
            ProjectStage::Opened,
        ]
        .into_iter()
        .map(|s| (s.as_str(), stage_word(tr, s), s.as_str() == stage))
        .collect(),
        chrome: chrome.clone(),
        q,
        rows,
        pager: Pager::new(&base, paging, total),
    }
    .render()?;
    Ok(page(&chrome, html))
}

// ---------------------------------------------------------------------------------
// Creating a project

#[derive(Default, Clone)]
struct SectionSlot {
    code: String,
    name: String,
    bond: String,
    price: String,
}

impl SectionSlot {
    fn is_blank(&self) -> bool {
        [&self.code, &self.name, &self.bond, &self.price]
            .iter()
            .all(|v| v.trim().is_empty())
    }
}

#[derive(Default)]
struct ProjectForm {
    code: String,
    name: String,
    tenderee_uscc: String,
    deadline: String,
    opening: String,
    validity_days: String,
    sections: Vec<SectionSlot>,
}

impl ProjectForm {
    fn read(posted: &BTreeMap<String, String>) -> ProjectForm {
        let get = |k: &str| posted.get(k).cloned().unwrap_or_default();
        ProjectForm {
            code: get("code"),
            name: get("name"),
            tenderee_uscc: get("tenderee_uscc"),
            deadline: get("bid_deadline"),
            opening: get("bid_opening_at"),
            validity_days: get("bid_validity_days"),
            sections: (1..=SECTION_SLOTS)
                .map(|i| SectionSlot {
                    code: get(&format!("section-{i}-code")),
                    name: get(&format!("section-{i}-name")),
                    bond: get(&format!("section-{i}-bond")),
                    price: get(&format!("section-{i}-price")),
                })
                .collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "pages/agency/new.html")]
struct NewProjectPage {
    chrome: Chrome,
    form: ProjectForm,
    errors: FieldErrors,
}

impl NewProjectPage {
    fn section_field(&self, slot: &&usize, what: &str) -> String {
        format!("section-{slot}-{what}")
    }
}

async fn new_form(req: HttpRequest, visitor: Visitor) -> Result<HttpResponse, PageError> {
    visitor.require(AGENCY)?;
    let chrome = Chrome::titled(&req, &visitor, "agency-new-title");
    let form = ProjectForm {
        validity_days: "90".into(),
        sections: vec![SectionSlot::default(); SECTION_SLOTS],
        ..ProjectForm::default()
    };
    let html = NewProjectPage {
        chrome: chrome.clone(),
        form,
        errors: FieldErrors::default(),
    }
    .render()?;
    Ok(page(&chrome, html))
}

/// The form field of a service's field name (`sections[0].bond_amount` is the bond of
/// the first section filled in, whichever slot it was typed in).
fn project_field(service_field: &str, slots: &[usize]) -> (String, &'static str) {
    if let Some(rest) = service_field.strip_prefix("sections[") {
        if let Some((index, what)) = rest.split_once("].") {
            let slot = index
                .parse::<usize>()
                .ok()
                .and_then(|i| slots.get(i).copied())
                .unwrap_or(1);
            let (field, kind) = match what {
                "code" => ("code", "section-code"),
                "name" => ("name", "section-name"),
                "estimated_price" => ("price", "section-price"),
                _ => ("bond", "section-bond"),
            };
            return (format!("section-{slot}-{field}"), kind);
        }
    }
    match service_field {
        "code" => ("code".into(), "code"),
        "name" => ("name".into(), "name"),
        "tenderee_uscc" => ("tenderee_uscc".into(), "tenderee"),
        "bid_deadline" => ("bid_deadline".into(), "deadline"),
        "bid_opening_at" => ("bid_opening_at".into(), "opening"),
        "bid_validity_days" => ("bid_validity_days".into(), "validity"),
        _ => ("section-1-code".into(), "sections"),
    }
}

async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    posted: SignedForm<BTreeMap<String, String>>,
) -> Result<HttpResponse, PageError> {
    let SignedForm { visitor, form } = posted;
    visitor.require(AGENCY)?;
    let chrome = Chrome::titled(&req, &visitor, "agency-new-title");
    let tr = chrome.tr;
    let form = ProjectForm::read(&form);
    let mut errors = FieldErrors::default();
    // What the service cannot see: a number that is not a number, sections left out.
    let validity_days = form.validity_days.trim().parse::<i32>();
    if validity_days.is_err() {
        errors.refused(tr, "bid_validity_days", "agency-error-validity", "");
    }
    let slots: Vec<usize> = form
        .sections
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.is_blank())
        .map(|(i, _)| i + 1)
        .collect();
    if slots.is_empty() {
        errors.refused(tr, "section-1-code", "agency-error-sections", "");
    }
    if errors.is_empty() {
        let input = NewProject {
            code: form.code.clone(),
            name: form.name.clone(),
            tenderee_uscc: form.tenderee_uscc.trim().to_owned(),
            bid_deadline: from_local_input(&form.deadline),
            bid_opening_at: from_local_input(&form.opening),
            bid_validity_days: validity_days.unwrap_or_default(),
            sections: slots
                .iter()
                .map(|&slot| {
                    let s = &form.sections[slot - 1];
                    NewSection {
                        code: s.code.clone(),
                        name: s.name.clone(),
                        bond_amount: s.bond.trim().to_owned(),
                        estimated_price: Some(s.price.trim().to_owned()).filter(|p| !p.is_empty()),
                    }
                })
                .collect(),
        };
        let ctx = state.ctx.clone();
        let actor = visitor.actor.clone();
        match run(move || projects::create_project(&ctx, &actor, input)).await {
            Ok(view) => {
                return Ok(redirect_with_flash(
                    &req,
                    &format!("/agency/projects/{}", view.project.id),
                    "flash-project-created",
                ))
            }
            Err(PageError::Service(ServiceError::Invalid { field, message })) => {
                let (field, kind) = project_field(&field, &slots);
                errors.refused(tr, &field, &format!("agency-error-{kind}"), &message);
            }
            Err(PageError::Service(ServiceError::Conflict(message)))
                if message.starts_with("code:") =>
            {
                errors.refused(tr, "code", "agency-error-code-taken", &message);
            }
            Err(e) => return Err(e),
        }
    }
    let html = NewProjectPage {
        chrome: chrome.clone(),
        form,
        errors,
    }
    .render()?;
    Ok(form_page(&chrome, html, true))
}

// ---------------------------------------------------------------------------------
// A project's page

struct SectionRow {
    code: String,
    name: String,
    bond: String,
    estimated_price: Option<String>,
    awarded: bool,
    contract_signed: bool,
}

fn section_rows(sections: &[Section]) -> Vec<SectionRow> {
    sections
        .iter()
        .map(|s| SectionRow {
            code: s.code.clone(),
            name: s.name.clone(),
            bond: fen(s.bond_amount_fen),
            estimated_price: s.estimated_price_fen.map(fen),
            awarded: s.awarded_enterprise_id.is_some(),
            contract_signed: s.contract_signed_at.is_some(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "pages/agency/project.html")]
struct ProjectPage {
    chrome: Chrome,
    id: String,
    code: String,
    tenderee: String,
    tenderee_uscc: String,
    deadline: String,
    opening: String,
    validity_days: i32,
    stage: String,
    can_change: bool,
    opened: bool,
    sections: Vec<SectionRow>,
}

async fn load_project(
    state: &AppState,
    visitor: &Visitor,
    id: String,
) -> Result<ProjectView, PageError> {
    let ctx = state.ctx.clone();
    let actor = visitor.actor.clone();
    run(move || projects::get_project(&ctx, &actor, &id)).await
}

async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    visitor.require(AGENCY)?;
    let view = load_project(&state, &visitor, id.into_inner()).await?;
    let now = state.ctx.now();
    let chrome = Chrome::new(&req, Some(&visitor), &view.project.name, Nav::Role);
    let stage = ProjectStage::of(&view.project, now);
    let html = ProjectPage {
        stage: stage_word(chrome.tr, stage),
        can_change: stage == ProjectStage::Open,
        opened: stage == ProjectStage::Opened,
        chrome: chrome.clone(),
        id: view.project.id.clone(),
        code: view.project.code.clone(),
        tenderee: view.tenderee.name.clone(),
        tenderee_uscc: view.tenderee.uscc.clone(),
        deadline: china_time(view.project.bid_deadline),
        opening: china_time(view.project.bid_opening_at),
        validity_days: view.project.bid_validity_days,
        sections: section_rows(&view.sections),
    }
    .render()?;
    Ok(page(&chrome, html))
}

// ---------------------------------------------------------------------------------
// Editing: the name, and lowering a section's bond

#[derive(Template)]
#[template(path = "pages/agency/edit.html")]
struct EditPage {
    chrome: Chrome,
    id: String,
    name: String,
    /// (section code, its bond as typed or stored, its field id)
    bonds: Vec<(String, String, String)>,
    errors: FieldErrors,
}

async fn edit_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    visitor.require(AGENCY)?;
    let view = load_project(&state, &visitor, id.into_inner()).await?;
    let chrome = Chrome::titled(&req, &visitor, "agency-edit-title");
    let html = EditPage {
        chrome: chrome.clone(),
        id: view.project.id.clone(),
        name: view.project.name.clone(),
        bonds: view
            .sections
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (
                    s.code.clone(),
                    Amount::from_fen(s.bond_amount_fen).to_string(),
                    format!("bond-{}", i + 1),
                )
            })
            .collect(),
        errors: FieldErrors::default(),
    }
    .render()?;
    Ok(page(&chrome, html))
}

async fn edit(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    posted: SignedForm<BTreeMap<String, String>>,
) -> Result<HttpResponse, PageError> {
    let SignedForm { visitor, form } = posted;
    visitor.require(AGENCY)?;
    let id = id.into_inner();
    let view = load_project(&state, &visitor, id.clone()).await?;
    let chrome = Chrome::titled(&req, &visitor, "agency-edit-title");
    let tr = chrome.tr;
    let name = form.get("name").cloned().unwrap_or_default();
    let bonds: Vec<(String, String, String)> = view
        .sections
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let field = format!("bond-{}", i + 1);
            let typed = form.get(&field).cloned().unwrap_or_default();
            (s.code.clone(), typed, field)
        })
        .collect();
    let mut changes = ProjectChanges {
        name: (name.trim() != view.project.name).then(|| name.clone()),
        bond_amounts: BTreeMap::new(),
    };
    for ((code, typed, _), section) in bonds.iter().zip(&view.sections) {
        let stored = Amount::from_fen(section.bond_amount_fen).to_string();
        if typed.trim() != stored {
            changes
                .bond_amounts
                .insert(code.clone(), typed.trim().to_owned());
        }
    }
    let ctx = state.ctx.clone();
    let actor = visitor.actor.clone();
    let project_id = id.clone();
    let mut errors = FieldErrors::default();
    match submit(None, move || {
        projects::update_project(&ctx, &actor, &project_id, changes)
    })
    .await?
    {
        Outcome::Done(_) => {
            return Ok(redirect_with_flash(
                &req,
                &format!("/agency/projects/{id}"),
                "flash-project-updated",
            ))
        }
        Outcome::Refused { field, message } => {
            if field == "name" {
                errors.refused(tr, "name", "agency-error-name", &message);
            } else {
                let code = field.strip_prefix("bond_amounts.").unwrap_or_default();
                let target = bonds
                    .iter()
                    .find(|(c, _, _)| c == code)
                    .map_or("bond-1".to_owned(), |(_, _, f)| f.clone());
                errors.refused(tr, &target, "agency-error-bond-change", &message);
            }
        }
    }
    let html = EditPage {
        chrome: chrome.clone(),
        id,
        name,
        bonds,
        errors,
    }
    .render()?;
    Ok(form_page(&chrome, html, true))
}

// ---------------------------------------------------------------------------------
// Postponing (延标)

#[derive(Template)]
#[template(path = "pages/agency/postpone.html")]
struct PostponePage {
    chrome: Chrome,
    id: String,
    current_deadline: String,
    deadline: String,
    opening: String,
    errors: FieldErrors,
}

async fn postpone_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    visitor.require(AGENCY)?;
    let view = load_project(&state, &visitor, id.into_inner()).await?;
    let chrome = Chrome::titled(&req, &visitor, "agency-postpone-title");
    let html = PostponePage {
        chrome: chrome.clone(),
        id: view.project.id.clone(),
        current_deadline: china_time(view.project.bid_deadline),
        deadline: local_input(view.project.bid_deadline),
        opening: local_input(view.project.bid_opening_at),
        errors: FieldErrors::default(),
    }
    .render()?;
    Ok(page(&chrome, html))
}

#[derive(Deserialize)]
struct PostponeForm {
    #[serde(default)]
    bid_deadline: String,
    #[serde(default)]
    bid_opening_at: String,
}

async fn postpone(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    posted: SignedForm<PostponeForm>,
) -> Result<HttpResponse, PageError> {
    let SignedForm { visitor, form } = posted;
    visitor.require(AGENCY)?;
    let id = id.into_inner();
    let input = Postponement {
        bid_deadline: from_local_input(&form.bid_deadline),
        bid_opening_at: from_local_input(&form.bid_opening_at),
    };
    let ctx = state.ctx.clone();
    let actor = visitor.actor.clone();
    let project_id = id.clone();
    let (refused_field, message) = match submit(None, move || {
        projects::postpone(&ctx, &actor, &project_id, input)
    })
    .await?
    {
        Outcome::Done(_) => {
            return Ok(redirect_with_flash(
                &req,
                &format!("/agency/projects/{id}"),
                "flash-project-postponed",
            ))
        }
        Outcome::Refused { field, message } => (field, message),
    };
    let project = load_project(&state, &visitor, id.clone()).await?;
    let chrome = Chrome::titled(&req, &visitor, "agency-postpone-title");
    let mut errors = FieldErrors::default();
    let (field, kind) = if refused_field == "bid_opening_at" {
        ("bid_opening_at", "opening")
    } else {
        ("bid_deadline", "postpone-deadline")
    };
    errors.refused(chrome.tr, field, &format!("agency-error-{kind}"), &message);
    let html = PostponePage {
        chrome: chrome.clone(),
        id,
        current_deadline: china_time(project.project.bid_deadline),
        deadline: form.bid_deadline,
        opening: form.bid_opening_at,
        errors,
    }
    .render()?;
    Ok(form_page(&chrome, html, true))
}

// ---------------------------------------------------------------------------------
// Bid opening

/// One bond as the opening page, its CSV and its printed record show it.
struct BondRow {
    number: String,
    section_code: String,
    bidder: String,
    bidder_uscc: String,
    issuer: String,
    amount: String,
    valid_from: String,
    valid_until: String,
    state: String,
    /// `PASSED`, `FAILED`, `INDETERMINATE`; empty for an ended bond (not verified).
    verdict_code: String,
    verdict: String,
    verdict_class: String,
    reason: String,
    can_accept: bool,
    can_claim: bool,
}

fn bond_row(tr: Tr, view: &GuaranteeView, report: Option<&VerificationReport>) -> BondRow {
    let status = view.guarantee.status;
    let (verdict_code, verdict, verdict_class, reason) = match report {
        Some(r) => {
            let code = name_of(&r.indication);
            let lower = code.to_ascii_lowercase();
            let reason = r
                .sub_indication
                .as_ref()
                .map(|s| {
                    let key = format!("sub-{}", name_of(s).to_ascii_lowercase().replace('_', "-"));
                    if tr.has(&key) {
                        tr.t(&key)
                    } else {
                        name_of(s)
                    }
                })
                .unwrap_or_default();
            (
                code,
                tr.t(&format!("verdict-{lower}")),
                format!("result-{lower}"),
                reason,
            )
        }
        None => (
            String::new(),
            tr.t("agency-not-verified"),
            String::new(),
            String::new(),
        ),
    };
    let passed = report.is_some_and(|r| r.indication == Indication::Passed);
    BondRow {
        number: view.guarantee.number.clone(),
        section_code: view.section.code.clone(),
        bidder: view.enterprise.name.clone(),
        bidder_uscc: view.enterprise.uscc.clone(),
        issuer: view.issuer.name.clone(),
        amount: fen(view.guarantee.amount_fen),
        valid_from: china_time(view.guarantee.valid_from),
        valid_until: china_time(view.guarantee.valid_until),
        state: state_word(tr, status),
        verdict_code,
        verdict,
        verdict_class,
        reason,
        can_accept: status == GuaranteeState::Issued && passed,
        can_claim: matches!(status, GuaranteeState::Issued | GuaranteeState::Accepted),
    }
}

/// The bonds in force, failures (anything not PASSED) first, then the ended ones.
fn opening_rows(tr: Tr, report: &OpeningReport) -> (Vec<BondRow>, Vec<BondRow>) {
    let mut live: Vec<BondRow> = report
        .bonds
        .iter()
        .map(|(v, r)| bond_row(tr, v, Some(r)))
        .collect();
    // Stable: within each group the service's order (section, number) stays.
    live.sort_by_key(|b| b.verdict_code == "PASSED");
    let ended = report.ended.iter().map(|v| bond_row(tr, v, None)).collect();
    (live, ended)
}

/// The opening report, or the page saying when the bids open.
async fn opening_report(
    req: &HttpRequest,
    state: &AppState,
    visitor: &Visitor,
    id: &str,
) -> Result<Result<OpeningReport, HttpResponse>, PageError> {
    visitor.require(AGENCY)?;
    let ctx = state.ctx.clone();
    let actor = visitor.actor.clone();
    let project_id = id.to_owned();
    match run(move || guarantees::bonds_at_opening(&ctx, &actor, &project_id)).await {
        Ok(report) => Ok(Ok(report)),
        // Sealed until opening (the service's rule): say when, in the visitor's words.
        Err(PageError::Service(ServiceError::Forbidden(_))) => {
            let view = load_project(state, visitor, id.to_owned()).await?;
            let chrome = Chrome::new(
                req,
                Some(visitor),
                &title(req, "agency-sealed-title"),
                Nav::Role,
            );
            let html = SealedPage {
                chrome: chrome.clone(),
                id: view.project.id.clone(),
                code: view.project.code.clone(),
                opening: china_time(view.project.bid_opening_at),
            }
            .render()?;
            let mut res = page(&chrome, html);
            *res.status_mut() = actix_web::http::StatusCode::FORBIDDEN;
            Ok(Err(res))
        }
        Err(e) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "pages/agency/sealed.html")]
struct SealedPage {
    chrome: Chrome,
    id: String,
    code: String,
    opening: String,
}

/// A section at opening, with the bidders it may be awarded to.
struct AwardRow {
    id: String,
    code: String,
    name: String,
    awarded_to: Option<String>,
    contract_signed: bool,
    /// (enterprise id, name) of the bidders holding a bond in force.
    bidders: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "pages/agency/opening.html")]
struct OpeningPage {
    chrome: Chrome,
    id: String,
    code: String,
    opening: String,
    passed: usize,
    live: Vec<BondRow>,
    ended: Vec<BondRow>,
    sections: Vec<AwardRow>,
}

async fn opening(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let id = id.into_inner();
    let report = match opening_report(&req, &state, &visitor, &id).await? {
        Ok(report) => report,
        Err(sealed) => return Ok(sealed),
    };
    let view = load_project(&state, &visitor, id.clone()).await?;
    let chrome = Chrome::titled(&req, &visitor, "agency-opening-title");
    let (live, ended) = opening_rows(chrome.tr, &report);
    let names: BTreeMap<String, String> = report
        .bonds
        .iter()
        .map(|(v, _)| v.enterprise.clone())
        .chain(report.ended.iter().map(|v| v.enterprise.clone()))
        .map(|o| (o.id, o.name))
        .collect();
    let sections = view
        .sections
        .iter()
        .map(|s| {
            let mut bidders: Vec<(String, String)> = report
                .bonds
                .iter()
                .filter(|(v, _)| {
                    v.section.id == s.id
                        && matches!(
                            v.guarantee.status,
                            GuaranteeState::Issued | GuaranteeState::Accepted
                        )
                })
                .map(|(v, _)| (v.enterprise.id.clone(), v.enterprise.name.clone()))
                .collect();
            bidders.sort();
            bidders.dedup();
            AwardRow {
                id: s.id.clone(),
                code: s.code.clone(),
                name: s.name.clone(),
                awarded_to: s
                    .awarded_enterprise_id
                    .as_ref()
                    .map(|e| names.get(e).cloned().unwrap_or_else(|| e.clone())),
                contract_signed: s.contract_signed_at.is_some(),
                bidders,
            }
        })
        .collect();
    let html = OpeningPage {
        chrome: chrome.clone(),
        id: view.project.id.clone(),
        code: view.project.code.clone(),
        opening: china_time(view.project.bid_opening_at),
        passed: live.iter().filter(|b| b.verdict_code == "PASSED").count(),
        live,
        ended,
        sections,
    }
    .render()?;
    Ok(page(&chrome, html))
}

/// The opening as a CSV file: the same rows as the page, UTF-8 with a byte-order mark
/// so that Excel, which otherwise guesses a legacy code page, shows the Chinese names.
async fn opening_csv(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let id = id.into_inner();
    let report = match opening_report(&req, &state, &visitor, &id).await? {
        Ok(report) => report,
        Err(sealed) => return Ok(sealed),
    };
    let tr = Tr::new(Lang::of(&req));
    let (live, ended) = opening_rows(tr, &report);
    let mut out = Vec::from(*b"\xEF\xBB\xBF");
    {
        let mut w = csv::Writer::from_writer(&mut out);
        let headers = [
            "agency-col-section",
            "agency-col-number",
            "agency-col-bidder",
            "agency-col-bidder-uscc",
            "agency-col-issuer",
            "agency-col-amount",
            "agency-col-valid-from",
            "agency-col-valid-until",
            "agency-col-state",
            "agency-col-verdict",
            "agency-col-verdict-code",
            "agency-col-reason",
        ];
        let write_err = |e: csv::Error| PageError::internal(&format!("csv: {e}"));
        w.write_record(headers.iter().map(|k| tr.t(k)))
            .map_err(write_err)?;
        for b in live.iter().chain(&ended) {
            w.write_record([
                &b.section_code,
                &b.number,
                &b.bidder,
                &b.bidder_uscc,
                &b.issuer,
                // Plain decimal yuan in a file: a spreadsheet reads it as a number.
                &b.amount.replace(',', ""),
                &b.valid_from,
                &b.valid_until,
                &b.state,
                &b.verdict,
                &b.verdict_code,
                &b.reason,
            ])
            .map_err(write_err)?;
        }
        w.flush()
            .map_err(|e| PageError::internal(&format!("csv: {e}")))?;
    }
    let filename = format!("opening-{}.csv", report.project.code);
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/csv; charset=utf-8"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"{}\"",
                filename.replace(|c: char| !c.is_ascii_graphic() || c == '"', "_")
            ),
        ))
        .body(out))
}

/// The printed record of an opening: how many bonds per printed page.
const RECORD_ROWS_PER_PAGE: usize = 30;

#[derive(Template)]
#[template(path = "pages/agency/record.html")]
struct RecordPage {
    chrome: Chrome,
    code: String,
    project_name: String,
    tenderee: String,
    opening: String,
    printed_at: String,
    count: usize,
    passed: usize,
    /// The bonds, a printed page's worth in each chunk.
    pages: Vec<Vec<BondRow>>,
    ended: Vec<BondRow>,
}

async fn opening_record(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let id = id.into_inner();
    let report = match opening_report(&req, &state, &visitor, &id).await? {
        Ok(report) => report,
        Err(sealed) => return Ok(sealed),
    };
    let view = load_project(&state, &visitor, id).await?;
    let chrome = Chrome::new(
        &req,
        Some(&visitor),
        &title(&req, "agency-record-title"),
        Nav::None,
    );
    let (live, ended) = opening_rows(chrome.tr, &report);
    let count = live.len();
    let passed = live.iter().filter(|b| b.verdict_code == "PASSED").count();
    let mut pages = Vec::new();
    let mut rest = live.into_iter().peekable();
    while rest.peek().is_some() {
        pages.push(rest.by_ref().take(RECORD_ROWS_PER_PAGE).collect());
    }
    let html = RecordPage {
        chrome: chrome.clone(),
        code: view.project.code.clone(),
        project_name: view.project.name.clone(),
        tenderee: view.tenderee.name.clone(),
        opening: china_time(view.project.bid_opening_at),
        printed_at: china_time(state.ctx.now()),
        count,
        passed,
        pages,
        ended,
    }
    .render()?;
    Ok(page(&chrome, html))
}

// ---------------------------------------------------------------------------------
// Actions at opening

#[derive(Deserialize)]
struct Nothing {}

async fn accept(
    req: HttpRequest,
    state: web::Data<AppState>,
    number: web::Path<String>,
    posted: SignedForm<Nothing>,
) -> Result<HttpResponse, PageError> {
    let visitor = posted.visitor;
    visitor.require(AGENCY)?;
    let ctx = state.ctx.clone();
    let actor = visitor.actor.clone();
    let number = number.into_inner();
    let view = run(move || guarantees::accept(&ctx, &actor, &number)).await?;
    Ok(redirect_with_flash(
        &req,
        &format!("/agency/projects/{}/opening", view.project.id),
        "flash-bond-accepted",
    ))
}

#[derive(Deserialize)]
struct AwardForm {
    #[serde(default)]
    winner_enterprise_id: String,
}

async fn award(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    posted: SignedForm<AwardForm>,
) -> Result<HttpResponse, PageError> {
    let SignedForm { visitor, form } = posted;
    visitor.require(AGENCY)?;
    let (project, section) = path.into_inner();
    let ctx = state.ctx.clone();
    let actor = visitor.actor.clone();
    let project_id = project.clone();
    run(move || {
        guarantees::award(
            &ctx,
            &actor,
            &project_id,
            &section,
            &form.winner_enterprise_id,
        )
    })
    .await?;
    Ok(redirect_with_flash(
        &req,
        &format!("/agency/projects/{project}/opening"),
        "flash-section-awarded",
    ))
}

async fn contract(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    posted: SignedForm<Nothing>,
) -> Result<HttpResponse, PageError> {
    let visitor = posted.visitor;
    visitor.require(AGENCY)?;
    let (project, section) = path.into_inner();
    let ctx = state.ctx.clone();
    let actor = visitor.actor.clone();
    let project_id = project.clone();
    run(move || guarantees::contract_signed(&ctx, &actor, &project_id, &section)).await?;
    Ok(redirect_with_flash(
        &req,
        &format!("/agency/projects/{project}/opening"),
        "flash-contract-recorded",
    ))
}

// ---------------------------------------------------------------------------------
// Claims

const CLAIM_REASONS: [&str; 6] = [
    "withdrew_after_deadline",
    "refused_to_sign_contract",
    "refused_performance_bond",
    "false_materials",
    "collusion",
    "other",
];

#[derive(Template)]
#[template(path = "pages/agency/claim.html")]
struct ClaimPage {
    chrome: Chrome,
    number: String,
    bidder: String,
    issuer: String,
    outstanding: String,
    /// (value, label, selected)
    reasons: Vec<(&'static str, String, bool)>,
    statement: String,
    amount: String,
    extend_to: String,
    errors: FieldErrors,
}

fn reasons(tr: Tr, chosen: &str) -> Vec<(&'static str, String, bool)> {
    CLAIM_REASONS
        .iter()
        .map(|r| {
            (
                *r,
                tr.t(&format!("agency-reason-{}", r.replace('_', "-"))),
                *r == chosen,
            )
        })
        .collect()
}

async fn claim_page(
    req: &HttpRequest,
    state: &AppState,
    visitor: &Visitor,
    number: String,
    typed: ClaimForm,
    errors: FieldErrors,
) -> Result<HttpResponse, PageError> {
    let ctx = state.ctx.clone();
    let actor = visitor.actor.clone();
    let view = run(move || {
        let view = guarantees::get(&ctx, &actor, &number)?;
        guarantees::require_project_agency(&actor, &view)?;
        Ok(view)
    })
    .await?;
    let chrome = Chrome::new(
        req,
        Some(visitor),
        &title(req, "agency-claim-title"),
        Nav::Role,
    );
    let failed = !errors.is_empty();
    let html = ClaimPage {
        reasons: reasons(chrome.tr, &typed.reason_code),
        chrome: chrome.clone(),
        number: view.guarantee.number.clone(),
        bidder: view.enterprise.name.clone(),
        issuer: view.issuer.name.clone(),
        outstanding: fen(view.guarantee.amount_fen - view.guarantee.paid_fen),
        amount: if typed.amount.is_empty() && !failed {
            Amount::from_fen(view.guarantee.amount_fen - view.guarantee.paid_fen).to_string()
        } else {
            typed.amount
        },
        extend_to: typed.extend_to,
        statement: typed.statement,
        errors,
    }
    .render()?;
    Ok(form_page(&chrome, html, failed))
}

async fn claim_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    number: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    visitor.require(AGENCY)?;
    let typed = ClaimForm {
        reason_code: String::new(),
        statement: String::new(),
        amount: String::new(),
        extend_to: String::new(),
    };
    claim_page(
        &req,
        &state,
        &visitor,
        number.into_inner(),
        typed,
        FieldErrors::default(),
    )
    .await
}

#[derive(Deserialize, Clone)]
struct ClaimForm {
    #[serde(default)]
    reason_code: String,
    #[serde(default)]
    statement: String,
    #[serde(default)]
    amount: String,
    /// A China date: makes the claim an extend-or-pay demand, to the end of that day.
    #[serde(default)]
    extend_to: String,
}

async fn file_claim(
    req: HttpRequest,
    state: web::Data<AppState>,
    number: web::Path<String>,
    posted: SignedForm<ClaimForm>,
) -> Result<HttpResponse, PageError> {
    let SignedForm { visitor, form } = posted;
    visitor.require(AGENCY)?;
    let number = number.into_inner();
    let input = NewClaim {
        reason_code: form.reason_code.clone(),
        statement: form.statement.clone(),
        amount: form.amount.trim().to_owned(),
        extend_to: Some(form.extend_to.trim())
            .filter(|d| !d.is_empty())
            .map(|d| format!("{d}T23:59:59+08:00")),
    };
    let ctx = state.ctx.clone();
    let actor = visitor.actor.clone();
    let claimed = number.clone();
    match submit(None, move || {
        claims::file_claim(&ctx, &actor, &claimed, input)
    })
    .await?
    {
        Outcome::Done(_) => Ok(redirect_with_flash(
            &req,
            "/agency/claims",
            "flash-claim-filed",
        )),
        Outcome::Refused { field, message } => {
            let tr = Tr::new(Lang::of(&req));
            let mut errors = FieldErrors::default();
            let (id, kind) = match field.as_str() {
                "reason_code" => ("reason_code", "claim-reason"),
                "statement" => ("statement", "claim-statement"),
                "extend_to" => ("extend_to", "claim-extend-to"),
                _ => ("amount", "claim-amount"),
            };
            errors.refused(tr, id, &format!("agency-error-{kind}"), &message);
            claim_page(&req, &state, &visitor, number, form, errors).await
        }
    }
}

struct ClaimRow {
    /// The claim, for the link to its page.
    id: String,
    number: String,
    project: String,
    section: String,
    bidder: String,
    issuer: String,
    reason: String,
    amount: String,
    state: String,
    filed_at: String,
    decide_by: String,
    overdue: bool,
}

#[derive(Template)]
#[template(path = "pages/agency/claims.html")]
struct ClaimsPage {
    chrome: Chrome,
    rows: Vec<ClaimRow>,
    pager: Pager,
}

fn claim_row(tr: Tr, claim: &Claim, view: &GuaranteeView, overdue: bool) -> ClaimRow {
    ClaimRow {
        id: claim.id.clone(),
        number: view.guarantee.number.clone(),
        project: view.project.code.clone(),
        section: view.section.code.clone(),
        bidder: view.enterprise.name.clone(),
        issuer: view.issuer.name.clone(),
        reason: tr.t(&format!(
            "agency-reason-{}",
            claim.reason_code.as_str().replace('_', "-")
        )),
        amount: fen(claim.amount_fen),
        state: tr.t(&format!("agency-claim-state-{}", claim.status.as_str())),
        filed_at: china_time(claim.filed_at),
        decide_by: china_time(claim.decide_by),
        overdue,
    }
}

async fn claims_list(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, PageError> {
    visitor.require(AGENCY)?;
    claims_of(req, state, visitor, query, "/agency/claims").await
}

/// The claims on the bidder's own bonds, each linking to its page (evidence, decision).
async fn enterprise_claims_list(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, PageError> {
    visitor.require(&[Role::Enterprise])?;
    claims_of(req, state, visitor, query, "/enterprise/claims").await
}

/// One page of the claims the visitor is party to, listed at `path`.
async fn claims_of(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    query: web::Query<PageQuery>,
    path: &str,
) -> Result<HttpResponse, PageError> {
    let paging = Paging::from_query(&query);
    let ctx = state.ctx.clone();
    let actor = visitor.actor.clone();
    let (found, total) =
        run(move || claims::list_claims_page(&ctx, &actor, paging.offset(), paging.limit()))
            .await?;
    let chrome = Chrome::titled(&req, &visitor, "agency-claims-title");
    let rows = found
        .iter()
        .map(|c| claim_row(chrome.tr, &c.claim, &c.guarantee, c.overdue))
        .collect();
    let html = ClaimsPage {
        chrome: chrome.clone(),
        rows,
        pager: Pager::new(path, paging, total),
    }
    .render()?;
    Ok(page(&chrome, html))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lifecycle::ClaimState;

    #[test]
    fn a_datetime_input_is_read_as_china_time() {
        assert_eq!(
            from_local_input("2026-12-20T09:00"),
            "2026-12-20T09:00:00+08:00"
        );
        assert_eq!(
            from_local_input(" 2026-12-20T09:00:30 "),
            "2026-12-20T09:00:30+08:00"
        );
        // Anything else goes to the service as typed, which names the problem.
        assert_eq!(from_local_input("next week"), "next week");
        let utc = chrono::NaiveDate::from_ymd_opt(2026, 12, 20)
            .and_then(|d| d.and_hms_opt(1, 0, 0))
            .expect("a time");
        assert_eq!(local_input(utc), "2026-12-20T09:00");
        assert_eq!(china_time(utc), "2026-12-20 09:00");
    }

    #[test]
    fn a_refused_section_field_is_shown_in_the_group_it_was_typed_in() {
        // Sections typed in groups 2 and 4: the service's second section is group 4.
        assert_eq!(
            project_field("sections[1].bond_amount", &[2, 4]),
            ("section-4-bond".to_owned(), "section-bond")
        );
        assert_eq!(
            project_field("bid_opening_at", &[1]),
            ("bid_opening_at".to_owned(), "opening")
        );
    }

    /// The keys these pages make from names (states, reasons, kinds, field errors)
    /// exist in both languages: the catalogue test only sees keys written out.
    #[test]
    fn keys_made_from_names_exist_in_both_languages() {
        let mut keys: Vec<String> = Vec::new();
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
            keys.push(format!("agency-state-{}", s.as_str()));
        }
        for s in ClaimState::ALL {
            keys.push(format!("agency-claim-state-{}", s.as_str()));
        }
        for r in CLAIM_REASONS {
            keys.push(format!("agency-reason-{}", r.replace('_', "-")));
        }
        for s in [
            ProjectStage::Open,
            ProjectStage::Sealed,
            ProjectStage::Opened,
        ] {
            keys.push(format!("agency-stage-{}", s.as_str()));
        }
        for kind in [
            "code",
            "code-taken",
            "name",
            "tenderee",
            "deadline",
            "opening",
            "validity",
            "sections",
            "section-code",
            "section-name",
            "section-bond",
            "section-price",
            "bond-change",
            "postpone-deadline",
            "claim-reason",
            "claim-statement",
            "claim-amount",
        ] {
            keys.push(format!("agency-error-{kind}"));
        }
        for (prefix, values) in [
            ("operator-kind-", &super::super::operator::ORG_KINDS[..]),
            (
                "operator-issuer-kind-",
                &super::super::operator::ISSUER_KINDS[..],
            ),
            (
                "operator-provider-kind-",
                &super::super::operator::PROVIDER_KINDS[..],
            ),
            ("operator-mail-", &["failed", "pending", "sent"][..]),
            ("role-", &super::super::operator::ROLES[..]),
        ] {
            keys.extend(values.iter().map(|v| format!("{prefix}{v}")));
        }
        for lang in Lang::ALL {
            let tr = Tr::new(lang);
            let missing: Vec<_> = keys.iter().filter(|k| !tr.has(k)).collect();
            assert!(missing.is_empty(), "{}: {missing:?}", lang.tag());
        }
    }
}
