//! The matters catalogue (管理清单), public and read-only: the list of every deposit the
//! city collects with its path and write-off, and one matter's page with its details
//! and history; and the credit office's form that edits a matter (linked from its
//! page), which keeps what was typed and shows each error beside its field.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::agency::china_time;
use super::errors::PageError;
use super::forms::{form_page, options, submit, FieldErrors, Options, Outcome, Typed};
use super::i18n::{Lang, Tr};
use super::session::{visitor_of, SignedForm, Visitor};
use super::{page, redirect_with_flash, Chrome, Nav};
use crate::domain::catalogue::{
    CreditLevel, Matter, MatterFields, MatterPath, SubjectKind, WriteOffState,
};
use crate::domain::money::Amount;
use crate::domain::party::Role;
use crate::services::catalogue::{self, Version, VersionSource};
use crate::services::ServiceError;
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/matters", web::get().to(list))
        .route("/matters/{code}", web::get().to(show))
        .route("/matters/{code}/edit", web::get().to(edit_form))
        .route("/matters/{code}/edit", web::post().to(edit));
}

/// A matter as a row or a page shows it, in the page's language.
pub struct MatterView {
    pub code: String,
    pub name: String,
    pub path: String,
    pub body: String,
    pub amount: String,
    pub write_off: String,
}

impl MatterView {
    fn of(code: &str, m: &Matter, lang: Lang, tr: &Tr) -> MatterView {
        let (name, body) = match lang {
            Lang::Zh => (&m.name_zh, &m.collecting_body_zh),
            Lang::En => (&m.name_en, &m.collecting_body_en),
        };
        MatterView {
            code: code.to_owned(),
            name: name.clone(),
            path: tr.t(&format!("matter-path-{}", m.path)),
            body: body.clone(),
            amount: m.typical_amount.grouped(),
            write_off: tr.t(&format!("write-off-{}", m.write_off.state)),
        }
    }
}

#[derive(Template)]
#[template(path = "pages/matters/list.html")]
struct ListPage {
    chrome: Chrome,
    matters: Vec<MatterView>,
}

async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let ctx = state.ctx.clone();
    let matters = web::block(move || catalogue::list_matters(&ctx)).await??;
    let visitor = visitor_of(&req).await?;
    let lang = Lang::of(&req);
    let tr = Tr::new(lang);
    let chrome = Chrome::new(&req, visitor.as_ref(), &tr.t("matters-title"), Nav::Role);
    let html = ListPage {
        chrome: chrome.clone(),
        matters: matters
            .iter()
            .map(|e| MatterView::of(&e.code, &e.matter, lang, &tr))
            .collect(),
    }
    .render()?;
    Ok(page(&chrome, html))
}

/// One version in an entry's history (the matters' and the record categories').
pub(super) struct VersionView {
    pub version: i32,
    pub changed_at: String,
    pub source: String,
    pub summary: String,
}

impl VersionView {
    /// A version's time, who made it, and its content summed up in a line.
    pub fn of<F>(v: &Version<F>, tr: &Tr, summary: String) -> VersionView {
        VersionView {
            version: v.version,
            changed_at: china_time(v.changed_at),
            source: tr.t(match v.source {
                VersionSource::DataFile => "matter-source-data-file",
                VersionSource::CreditOffice => "matter-source-credit-office",
            }),
            summary,
        }
    }
}

#[derive(Template)]
#[template(path = "pages/matters/show.html")]
struct ShowPage {
    chrome: Chrome,
    matter: MatterView,
    scenario: String,
    legal_basis: String,
    /// Credit-substituted matters: level, subject, ceiling; the commitment text.
    required_level: Option<String>,
    subject: Option<String>,
    ceiling: Option<String>,
    commitment: Option<String>,
    due_on: Option<String>,
    done_on: Option<String>,
    evidence: Option<String>,
    version: i32,
    history: Vec<VersionView>,
    /// The credit office sees the link to the edit form.
    may_edit: bool,
}

fn version_view(v: &Version<MatterFields>, lang: Lang, tr: &Tr) -> VersionView {
    let c = &v.content;
    let name = match lang {
        Lang::Zh => &c.name_zh,
        Lang::En => &c.name_en,
    };
    let summary = format!(
        "{name} · {} · ¥{} · {}",
        tr.t(&format!("matter-path-{}", c.path)),
        Amount::parse(&c.typical_amount).map_or(c.typical_amount.clone(), |a| a.grouped()),
        tr.t(&format!("write-off-{}", c.write_off_state)),
    );
    VersionView::of(v, tr, summary)
}

async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    code: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let ctx = state.ctx.clone();
    let (entry, history) = web::block(move || catalogue::matter(&ctx, &code)).await??;
    let visitor = visitor_of(&req).await?;
    let lang = Lang::of(&req);
    let tr = Tr::new(lang);
    let m = &entry.matter;
    let view = MatterView::of(&entry.code, m, lang, &tr);
    let chrome = Chrome::new(&req, visitor.as_ref(), &view.name, Nav::Role);
    let credit = m.credit.as_ref();
    let html = ShowPage {
        chrome: chrome.clone(),
        scenario: match lang {
            Lang::Zh => m.scenario_zh.clone(),
            Lang::En => m.scenario_en.clone(),
        },
        legal_basis: m.legal_basis.clone(),
        required_level: credit.map(|c| c.required_level.to_string()),
        subject: credit.map(|c| tr.t(&format!("matter-subject-{}", c.subject))),
        ceiling: credit.and_then(|c| c.deposit_ceiling).map(|a| a.grouped()),
        commitment: credit.and_then(|c| c.commitment_text.clone()),
        due_on: m.write_off.due_on.map(|d| d.to_string()),
        done_on: m.write_off.done_on.map(|d| d.to_string()),
        evidence: m.write_off.evidence.clone(),
        version: entry.version,
        history: history.iter().map(|v| version_view(v, lang, &tr)).collect(),
        may_edit: visitor.as_ref().is_some_and(|v| v.role() == Role::Operator),
        matter: view,
    }
    .render()?;
    Ok(page(&chrome, html))
}

// ---- The credit office's edit form ---------------------------------------------

/// The form's fields, in order: those of [`MatterFields`], spelled the same.
const FIELDS: [&str; 17] = [
    "name_zh",
    "name_en",
    "legal_basis",
    "scenario_zh",
    "scenario_en",
    "collecting_body_zh",
    "collecting_body_en",
    "typical_amount",
    "path",
    "required_level",
    "subject",
    "deposit_ceiling",
    "commitment_text",
    "write_off_state",
    "write_off_due_on",
    "write_off_done_on",
    "write_off_evidence",
];

/// The longest value kept of a field as typed (the checks refuse far less).
const TYPED_MAX_CHARS: usize = 2000;

#[derive(Template)]
#[template(path = "pages/matters/edit.html")]
struct EditPage {
    chrome: Chrome,
    code: String,
    form: Typed,
    errors: FieldErrors,
    paths: Options,
    levels: Options,
    subjects: Options,
    states: Options,
}

impl EditPage {
    fn value(&self, field: &str) -> String {
        self.form.value(field)
    }
}

fn typed_of(fields: &MatterFields) -> Typed {
    let value = serde_json::to_value(fields).unwrap_or_default();
    Typed(
        FIELDS
            .iter()
            .map(|f| {
                let v = value.get(*f).and_then(|v| v.as_str()).unwrap_or_default();
                (f.to_string(), v.to_owned())
            })
            .collect(),
    )
}

fn fields_of(form: &Typed) -> MatterFields {
    MatterFields {
        name_zh: form.value("name_zh"),
        name_en: form.value("name_en"),
        legal_basis: form.value("legal_basis"),
        scenario_zh: form.value("scenario_zh"),
        scenario_en: form.value("scenario_en"),
        collecting_body_zh: form.value("collecting_body_zh"),
        collecting_body_en: form.value("collecting_body_en"),
        typical_amount: form.value("typical_amount"),
        path: form.value("path"),
        required_level: form.optional("required_level"),
        subject: form.optional("subject"),
        deposit_ceiling: form.optional("deposit_ceiling"),
        commitment_text: form.optional("commitment_text"),
        write_off_state: form.value("write_off_state"),
        write_off_due_on: form.optional("write_off_due_on"),
        write_off_done_on: form.optional("write_off_done_on"),
        write_off_evidence: form.optional("write_off_evidence"),
    }
}

fn render_form(
    req: &HttpRequest,
    visitor: &Visitor,
    code: String,
    name: &str,
    form: Typed,
    errors: FieldErrors,
) -> Result<HttpResponse, PageError> {
    let tr = Tr::new(Lang::of(req));
    let title = tr.t1("matter-edit-title", "name", name);
    let chrome = Chrome::new(req, Some(visitor), &title, Nav::Role);
    let refused = !errors.is_empty();
    let html = EditPage {
        chrome: chrome.clone(),
        code,
        paths: options(
            tr,
            Some("matter-path-"),
            MatterPath::ALL,
            MatterPath::as_str,
            &form.value("path"),
        ),
        levels: options(
            tr,
            None,
            CreditLevel::ALL,
            CreditLevel::as_str,
            &form.value("required_level"),
        ),
        subjects: options(
            tr,
            Some("matter-subject-"),
            SubjectKind::ALL,
            SubjectKind::as_str,
            &form.value("subject"),
        ),
        states: options(
            tr,
            Some("write-off-"),
            WriteOffState::ALL,
            WriteOffState::as_str,
            &form.value("write_off_state"),
        ),
        form,
        errors,
    }
    .render()?;
    Ok(form_page(&chrome, html, refused))
}

/// The name a form's title shows: the stored one in the page's language.
fn name_in(lang: Lang, m: &Matter) -> String {
    match lang {
        Lang::Zh => m.name_zh.clone(),
        Lang::En => m.name_en.clone(),
    }
}

async fn edit_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    code: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    visitor.require(&[Role::Operator])?;
    let ctx = state.ctx.clone();
    let (entry, _) = web::block(move || catalogue::matter(&ctx, &code)).await??;
    let name = name_in(Lang::of(&req), &entry.matter);
    let form = typed_of(&entry.matter.fields());
    render_form(
        &req,
        &visitor,
        entry.code,
        &name,
        form,
        FieldErrors::default(),
    )
}

async fn edit(
    req: HttpRequest,
    state: web::Data<AppState>,
    code: web::Path<String>,
    posted: SignedForm<Typed>,
) -> Result<HttpResponse, PageError> {
    let SignedForm { visitor, form } = posted;
    visitor.require(&[Role::Operator])?;
    let code = code.into_inner();
    let tr = Tr::new(Lang::of(&req));
    let ctx = state.ctx.clone();
    let lookup = code.clone();
    let (entry, _) = web::block(move || catalogue::matter(&ctx, &lookup)).await??;
    let name = name_in(tr.lang, &entry.matter);
    // Only the form's own fields are kept (and shown again), each cut to a sane length.
    let form = form.only(&FIELDS, TYPED_MAX_CHARS);
    let fields = fields_of(&form);
    let mut errors = FieldErrors::default();
    let refuse = |errors: &mut FieldErrors, field: &str, message: &str| {
        let key = format!("matter-error-{}", field.replace('_', "-"));
        errors.refused(tr, field, &key, message);
    };
    if let Err(found) = catalogue::check_matter(&state.ctx, &fields) {
        for e in found {
            if let ServiceError::Invalid { field, message } = e {
                refuse(&mut errors, &field, &message);
            }
        }
        return render_form(&req, &visitor, code, &name, form, errors);
    }
    let (ctx, actor, target) = (state.ctx.clone(), visitor.actor.clone(), code.clone());
    match submit(None, move || {
        catalogue::update_matter(&ctx, &actor, &target, fields)
    })
    .await?
    {
        Outcome::Done(_) => Ok(redirect_with_flash(
            &req,
            &format!("/matters/{code}"),
            "flash-matter-saved",
        )),
        Outcome::Refused { field, message } => {
            refuse(&mut errors, &field, &message);
            render_form(&req, &visitor, code, &name, form, errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::forms::checks;
    use super::*;

    /// Every field's error is shown through a key made from its name: each must exist,
    /// and the form's fields are exactly those of the API.
    #[test]
    fn every_field_has_its_error_in_both_languages() {
        checks::error_keys_exist("matter-error-", &FIELDS);
        checks::fields_are_the_api_body::<MatterFields>(&FIELDS);
    }
}
