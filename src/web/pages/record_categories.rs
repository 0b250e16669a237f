//! The record categories (信用记录类别): what a department may send into a subject's
//! credit archive, public and read-only; and the credit office's form that edits one,
//! with the category's history beside it. The form keeps what was typed and shows each
//! error beside its field, as the matters' form does.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::credit::signed;
use super::errors::PageError;
use super::forms::{form_page, options, submit, FieldErrors, Options, Outcome, Typed};
use super::i18n::{Lang, Tr};
use super::matters::VersionView;
use super::session::{visitor_of, SignedForm, Visitor};
use super::{page, redirect_with_flash, Chrome, Nav};
use crate::domain::catalogue::{CategoryFields, Dimension, Polarity, RecordCategory};
use crate::domain::credit;
use crate::domain::party::Role;
use crate::services::catalogue::{self, CategoryEntry, Version};
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/record-categories", web::get().to(list))
        .route("/record-categories/{code}/edit", web::get().to(edit_form))
        .route("/record-categories/{code}/edit", web::post().to(edit));
}

/// A category as a row shows it, in the page's language.
pub struct CategoryView {
    pub code: String,
    pub name: String,
    pub dimension: String,
    pub polarity: String,
    /// Signed by the polarity: "+20", "−30".
    pub points: String,
    pub validity_days: i32,
    pub version: i32,
}

impl CategoryView {
    fn of(e: &CategoryEntry, lang: Lang, tr: &Tr) -> CategoryView {
        let k = &e.category;
        CategoryView {
            code: e.code.clone(),
            name: name_in(lang, k),
            dimension: tr.t(&format!("category-dimension-{}", k.dimension)),
            polarity: tr.t(&format!("category-polarity-{}", k.polarity)),
            points: signed(credit::signed_points(k.polarity, k.points)),
            validity_days: k.validity_days,
            version: e.version,
        }
    }
}

fn name_in(lang: Lang, k: &RecordCategory) -> String {
    match lang {
        Lang::Zh => k.name_zh.clone(),
        Lang::En => k.name_en.clone(),
    }
}

#[derive(Template)]
#[template(path = "pages/record_categories/list.html")]
struct ListPage {
    chrome: Chrome,
    categories: Vec<CategoryView>,
    /// The credit office sees a link to each category's form.
    may_edit: bool,
}

async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let ctx = state.ctx.clone();
    let entries = web::block(move || catalogue::list_categories(&ctx)).await??;
    let visitor = visitor_of(&req).await?;
    let lang = Lang::of(&req);
    let tr = Tr::new(lang);
    let chrome = Chrome::new(&req, visitor.as_ref(), &tr.t("categories-title"), Nav::Role);
    let html = ListPage {
        chrome: chrome.clone(),
        categories: entries
            .iter()
            .map(|e| CategoryView::of(e, lang, &tr))
            .collect(),
        may_edit: visitor.as_ref().is_some_and(|v| v.role() == Role::Operator),
    }
    .render()?;
    Ok(page(&chrome, html))
}

// ---- The credit office's edit form ---------------------------------------------

/// The form's fields, in order: those of [`CategoryFields`], spelled the same.
const FIELDS: [&str; 6] = [
    "name_zh",
    "name_en",
    "dimension",
    "polarity",
    "points",
    "validity_days",
];

/// The longest value kept of a field as typed (the checks refuse far less).
const TYPED_MAX_CHARS: usize = 500;

#[derive(Template)]
#[template(path = "pages/record_categories/edit.html")]
struct EditPage {
    chrome: Chrome,
    code: String,
    form: Typed,
    errors: FieldErrors,
    dimensions: Options,
    polarities: Options,
    history: Vec<VersionView>,
}

impl EditPage {
    fn value(&self, field: &str) -> String {
        self.form.value(field)
    }
}

fn typed_of(fields: &CategoryFields) -> Typed {
    Typed(
        [
            ("name_zh", fields.name_zh.clone()),
            ("name_en", fields.name_en.clone()),
            ("dimension", fields.dimension.clone()),
            ("polarity", fields.polarity.clone()),
            ("points", fields.points.to_string()),
            ("validity_days", fields.validity_days.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
    )
}

/// The typed form as the service's fields; a number that is not one is named.
fn fields_of(form: &Typed) -> Result<CategoryFields, &'static str> {
    let number = |field: &'static str| form.value(field).trim().parse::<i64>().map_err(|_| field);
    Ok(CategoryFields {
        name_zh: form.value("name_zh"),
        name_en: form.value("name_en"),
        dimension: form.value("dimension"),
        polarity: form.value("polarity"),
        points: number("points")?,
        validity_days: number("validity_days")?,
    })
}

fn version_view(v: &Version<CategoryFields>, lang: Lang, tr: &Tr) -> VersionView {
    let c = &v.content;
    let name = match lang {
        Lang::Zh => &c.name_zh,
        Lang::En => &c.name_en,
    };
    let points = match (c.polarity.parse::<Polarity>(), i32::try_from(c.points)) {
        (Ok(p), Ok(points)) => signed(credit::signed_points(p, points)),
        _ => c.points.to_string(),
    };
    let summary = format!(
        "{name} · {} · {points} · {}",
        tr.t(&format!("category-dimension-{}", c.dimension)),
        tr.t1("category-days", "days", c.validity_days.to_string()),
    );
    VersionView::of(v, tr, summary)
}

/// What the form page needs besides what was typed: the category's current name and its
/// history.
struct Stored {
    code: String,
    name: String,
    history: Vec<Version<CategoryFields>>,
}

async fn stored(state: &AppState, lang: Lang, code: String) -> Result<Stored, PageError> {
    let ctx = state.ctx.clone();
    let history =
        web::block(move || catalogue::category_history(&ctx, &code).map(|h| (code, h))).await??;
    let (code, history) = history;
    let name = history
        .first()
        .map(|v| match lang {
            Lang::Zh => v.content.name_zh.clone(),
            Lang::En => v.content.name_en.clone(),
        })
        .unwrap_or_default();
    Ok(Stored {
        code,
        name,
        history,
    })
}

fn render_form(
    req: &HttpRequest,
    visitor: &Visitor,
    stored: &Stored,
    form: Typed,
    errors: FieldErrors,
) -> Result<HttpResponse, PageError> {
    let lang = Lang::of(req);
    let tr = Tr::new(lang);
    let title = tr.t1("category-edit-title", "name", &stored.name);
    let chrome = Chrome::new(req, Some(visitor), &title, Nav::Role);
    let refused = !errors.is_empty();
    let html = EditPage {
        chrome: chrome.clone(),
        code: stored.code.clone(),
        dimensions: options(
            tr,
            Some("category-dimension-"),
            Dimension::ALL,
            Dimension::as_str,
            &form.value("dimension"),
        ),
        polarities: options(
            tr,
            Some("category-polarity-"),
            Polarity::ALL,
            Polarity::as_str,
            &form.value("polarity"),
        ),
        history: stored
            .history
            .iter()
            .map(|v| version_view(v, lang, &tr))
            .collect(),
        form,
        errors,
    }
    .render()?;
    Ok(form_page(&chrome, html, refused))
}

async fn edit_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    code: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    visitor.require(&[Role::Operator])?;
    let stored = stored(&state, Lang::of(&req), code.into_inner()).await?;
    let form = stored
        .history
        .first()
        .map(|v| typed_of(&v.content))
        .unwrap_or_default();
    render_form(&req, &visitor, &stored, form, FieldErrors::default())
}

async fn edit(
    req: HttpRequest,
    state: web::Data<AppState>,
    code: web::Path<String>,
    posted: SignedForm<Typed>,
) -> Result<HttpResponse, PageError> {
    let SignedForm { visitor, form } = posted;
    visitor.require(&[Role::Operator])?;
    let tr = Tr::new(Lang::of(&req));
    let stored = stored(&state, tr.lang, code.into_inner()).await?;
    // Only the form's own fields are kept (and shown again), each cut to a sane length.
    let form = form.only(&FIELDS, TYPED_MAX_CHARS);
    let mut errors = FieldErrors::default();
    let refuse = |errors: &mut FieldErrors, field: &str, message: &str| {
        let key = format!("category-error-{}", field.replace('_', "-"));
        errors.refused(tr, field, &key, message);
    };
    let fields = match fields_of(&form) {
        Ok(fields) => fields,
        Err(field) => {
            refuse(&mut errors, field, "not a whole number");
            return render_form(&req, &visitor, &stored, form, errors);
        }
    };
    if let Err(problems) = RecordCategory::check(&fields) {
        for p in problems {
            refuse(&mut errors, p.field, &p.message);
        }
        return render_form(&req, &visitor, &stored, form, errors);
    }
    let (ctx, actor, target) = (
        state.ctx.clone(),
        visitor.actor.clone(),
        stored.code.clone(),
    );
    match submit(None, move || {
        catalogue::update_category(&ctx, &actor, &target, fields)
    })
    .await?
    {
        Outcome::Done(_) => Ok(redirect_with_flash(
            &req,
            &format!("/record-categories#{}", stored.code),
            "flash-category-saved",
        )),
        Outcome::Refused { field, message } => {
            refuse(&mut errors, &field, &message);
            render_form(&req, &visitor, &stored, form, errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::forms::checks;
    use super::*;

    /// Every field's error is shown through a key made from its name, and so are the
    /// dimensions and polarities: each must exist. The form's fields are those of the API.
    #[test]
    fn every_field_has_its_error_in_both_languages() {
        checks::error_keys_exist("category-error-", &FIELDS);
        checks::fields_are_the_api_body::<CategoryFields>(&FIELDS);
        for lang in Lang::ALL {
            let tr = Tr::new(lang);
            for d in Dimension::ALL {
                assert!(
                    tr.has(&format!("category-dimension-{d}")),
                    "{d} in {lang:?}"
                );
            }
            for p in Polarity::ALL {
                assert!(tr.has(&format!("category-polarity-{p}")), "{p} in {lang:?}");
            }
        }
    }

    #[test]
    fn a_number_that_is_not_one_is_named() {
        let mut form = typed_of(&CategoryFields::default());
        form.0.insert("points".into(), "twenty".into());
        assert_eq!(fields_of(&form).err(), Some("points"));
        form.0.insert("points".into(), " 20 ".into());
        form.0.insert("validity_days".into(), "1e3".into());
        assert_eq!(fields_of(&form).err(), Some("validity_days"));
    }
}
