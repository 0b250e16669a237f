//! The operator's pages: organizations and their users (register, add, deactivate),
//! issuer certificates, trust anchors and CRLs (register, list with expiry), the mail
//! outbox (failed mail and retry) and the audit-chain check. The services decide what
//! is allowed; these pages gather the form and show the answer.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::agency::{china_time, run};
use super::errors::PageError;
use super::forms::{form_page, submit, FieldErrors, Outcome, Typed};
use super::i18n::{Lang, Tr};
use super::paging::{query_of, PageQuery, Pager, Paging};
use super::session::{SignedForm, Visitor};
use super::{page, redirect_with_flash, Chrome, Nav};
use crate::db::audit::ChainCheck;
use crate::domain::party::{ProviderKind, Role};
use crate::services;
use crate::services::organizations::{self, NewOrganization, NewUser};
use crate::services::trust::{self, NewIssuerCertificate};
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/operator/organizations", web::get().to(organizations_list))
        .service(
            web::resource("/operator/organizations/new")
                .route(web::get().to(organization_form))
                .route(web::post().to(create_organization)),
        )
        .route(
            "/operator/organizations/{id}",
            web::get().to(organization_page),
        )
        .route(
            "/operator/organizations/{id}/users",
            web::post().to(create_user),
        )
        .route(
            "/operator/users/{id}/deactivate",
            web::post().to(deactivate_user),
        )
        .route("/operator/trust", web::get().to(trust_page))
        .route("/operator/trust/anchors", web::post().to(register_anchor))
        .route("/operator/trust/crls", web::post().to(register_crl))
        .route(
            "/operator/trust/certificates",
            web::post().to(register_certificate),
        )
        .route("/operator/mail", web::get().to(mail_list))
        .route("/operator/mail/{id}/retry", web::post().to(retry_mail))
        .service(
            web::resource("/operator/audit")
                .route(web::get().to(audit_page))
                .route(web::post().to(audit_check)),
        );
}

const OPERATOR: &[Role] = &[Role::Operator];

fn title(req: &HttpRequest, key: &str) -> String {
    Tr::new(Lang::of(req)).t(key)
}

/// The catalogue key of the error beside a field the service refused: the words for
/// that field, or general words for one the catalogue does not name.
fn refused_key(tr: Tr, field: &str) -> String {
    let key = format!("operator-error-{}", field.replace('_', "-"));
    if tr.has(&key) {
        key
    } else {
        "operator-error-other".to_owned()
    }
}

/// The one error of a form the service refused on `field`.
fn refused(tr: Tr, field: &str, message: &str) -> FieldErrors {
    FieldErrors::one(tr, field, &refused_key(tr, field), message)
}

// ---------------------------------------------------------------------------------
// Organizations

#[derive(Deserialize)]
struct OrgQuery {
    q: Option<String>,
    // Not a flattened `PageQuery`: serde's flatten reads every value of a query string
    // as text, so a number in it would never parse.
    page: Option<u32>,
    size: Option<u32>,
}

struct OrgRow {
    id: String,
    name: String,
    uscc: String,
    kind: String,
    whitelisted: bool,
    created: String,
}

#[derive(Template)]
#[template(path = "pages/operator/organizations.html")]
struct OrganizationsPage {
    chrome: Chrome,
    q: String,
    rows: Vec<OrgRow>,
    pager: Pager,
}

async fn organizations_list(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    query: web::Query<OrgQuery>,
) -> Result<HttpResponse, PageError> {
    visitor.require(OPERATOR)?;
    visitor.cacheable(&req);
    let query = query.into_inner();
    let paging = Paging::from_query(&PageQuery {
        page: query.page,
        size: query.size,
    });
    let ctx = state.ctx.clone();
    let actor = visitor.actor.clone();
    let text = query.q.clone();
    let (orgs, total) = run(move || {
        organizations::list_organizations_page(
            &ctx,
            &actor,
            text.as_deref(),
            paging.offset(),
            paging.limit(),
        )
    })
    .await?;
    let chrome = Chrome::titled(&req, &visitor, "operator-organizations-title");
    let tr = chrome.tr;
    let q = query.q.unwrap_or_default();
    let filters = query_of(&[("q", Some(q.as_str()))]);
    let base = if filters.is_empty() {
        "/operator/organizations".to_owned()
    } else {
        format!("/operator/organizations?{filters}")
    };
    let html = OrganizationsPage {
        chrome: chrome.clone(),
        rows: orgs
            .into_iter()
            .map(|o| OrgRow {
                kind: tr.t(&format!("operator-kind-{}", o.kind.as_str())),
                id: o.id,
                name: o.name,
                uscc: o.uscc,
                whitelisted: o.uscc_whitelisted,
                created: china_time(o.created_at),
            })
            .collect(),
        q,
        pager: Pager::new(&base, paging, total),
    }
    .render()?;
    Ok(page(&chrome, html))
}

pub(super) const ORG_KINDS: [&str; 6] = [
    "enterprise",
    "issuer",
    "agency",
    "tenderee",
    "provider",
    "operator",
];
pub(super) const ISSUER_KINDS: [&str; 3] = ["bank", "insurer", "guarantor"];
/// Every provider kind the domain knows, in its order (a new kind shows in the form).
pub(super) const PROVIDER_KINDS: [&str; ProviderKind::ALL.len()] = {
    let mut kinds = [""; ProviderKind::ALL.len()];
    let mut i = 0;
    while i < kinds.len() {
        kinds[i] = ProviderKind::ALL[i].as_str();
        i += 1;
    }
    kinds
};

/// (value, label, selected) of a select's options.
type Options = Vec<(&'static str, String, bool)>;

fn options(tr: Tr, prefix: &str, values: &[&'static str], chosen: &str) -> Options {
    values
        .iter()
        .map(|v| (*v, tr.t(&format!("{prefix}{v}")), *v == chosen))
        .collect()
}

#[derive(Template)]
#[template(path = "pages/operator/organization_new.html")]
struct OrganizationFormPage {
    chrome: Chrome,
    form: Typed,
    kinds: Options,
    issuer_kinds: Options,
    provider_kinds: Options,
    whitelist: bool,
    errors: FieldErrors,
}

fn organization_form_page(
    req: &HttpRequest,
    visitor: &Visitor,
    form: Typed,
    errors: FieldErrors,
) -> Result<HttpResponse, PageError> {
    let chrome = Chrome::new(
        req,
        Some(visitor),
        &title(req, "operator-organization-new-title"),
        Nav::Role,
    );
    let tr = chrome.tr;
    let failed = !errors.is_empty();
    let html = OrganizationFormPage {
        kinds: options(tr, "operator-kind-", &ORG_KINDS, &form.value("kind")),
        issuer_kinds: options(
            tr,
            "operator-issuer-kind-",
            &ISSUER_KINDS,
            &form.value("issuer_kind"),
        ),
        provider_kinds: options(
            tr,
            "operator-provider-kind-",
            &PROVIDER_KINDS,
            &form.value("provider_kind"),
        ),
        whitelist: form.has("whitelist_uscc"),
        chrome: chrome.clone(),
        form,
        errors,
    }
    .render()?;
    Ok(form_page(&chrome, html, failed))
}

async fn organization_form(req: HttpRequest, visitor: Visitor) -> Result<HttpResponse, PageError> {
    visitor.require(OPERATOR)?;
    organization_form_page(&req, &visitor, Typed::default(), FieldErrors::default())
}

async fn create_organization(
    req: HttpRequest,
    state: web::Data<AppState>,
    posted: SignedForm<Typed>,
) -> Result<HttpResponse, PageError> {
    let SignedForm { visitor, form } = posted;
    visitor.require(OPERATOR)?;
    let kind = form.value("kind");
    let input = NewOrganization {
        issuer_kind: form.optional("issuer_kind").filter(|_| kind == "issuer"),
        provider_kind: form
            .optional("provider_kind")
            .filter(|_| kind == "provider"),
        kind,
        name: form.value("name"),
        uscc: form.value("uscc").trim().to_owned(),
        short_code: form.optional("short_code"),
        email: form.optional("email"),
        whitelist_uscc: form.has("whitelist_uscc"),
    };
    let ctx = state.ctx.clone();
    let actor = visitor.actor.clone();
    match submit(Some("uscc"), move || {
        organizations::create_organization(&ctx, &actor, input)
    })
    .await?
    {
        Outcome::Done(org) => Ok(redirect_with_flash(
            &req,
            &format!("/operator/organizations/{}", org.id),
            "flash-organization-created",
        )),
        Outcome::Refused { field, message } => {
            let errors = refused(Tr::new(Lang::of(&req)), &field, &message);
            organization_form_page(&req, &visitor, form, errors)
        }
    }
}

struct UserRow {
    id: String,
    username: String,
    display_name: String,
    role: String,
    active: bool,
}

#[derive(Template)]
#[template(path = "pages/operator/organization.html")]
struct OrganizationPage {
    chrome: Chrome,
    id: String,
    uscc: String,
    kind: String,
    /// What kind of issuer or provider it is, in words ("" for other kinds).
    subkind: String,
    whitelisted: bool,
    email: String,
    users: Vec<UserRow>,
    roles: Options,
    form: Typed,
    errors: FieldErrors,
}

pub(super) const ROLES: [&str; 7] = [
    "enterprise",
    "issuer",
    "agency",
    "tenderee",
    "provider",
    "person",
    "operator",
];

async fn organization_view(
    req: &HttpRequest,
    state: &AppState,
    visitor: &Visitor,
    id: String,
    form: Typed,
    errors: FieldErrors,
) -> Result<HttpResponse, PageError> {
    let ctx = state.ctx.clone();
    let actor = visitor.actor.clone();
    let (org, users) = run(move || {
        let org = organizations::get_organization(&ctx, &actor, &id)?;
        let users = organizations::list_users(&ctx, &actor, &org.id)?;
        Ok((org, users))
    })
    .await?;
    let chrome = Chrome::new(req, Some(visitor), &org.name, Nav::Role);
    let tr = chrome.tr;
    let failed = !errors.is_empty();
    let html = OrganizationPage {
        roles: options(tr, "role-", &ROLES, &form.value("role")),
        chrome: chrome.clone(),
        kind: tr.t(&format!("operator-kind-{}", org.kind.as_str())),
        subkind: match (org.issuer_kind, org.provider_kind) {
            (Some(k), _) => tr.t(&format!("operator-issuer-kind-{}", k.as_str())),
            (None, Some(k)) => tr.t(&format!("operator-provider-kind-{}", k.as_str())),
            (None, None) => String::new(),
        },
        id: org.id,
        uscc: org.uscc,
        whitelisted: org.uscc_whitelisted,
        email: org.email.unwrap_or_default(),
        users: users
            .into_iter()
            .map(|u| UserRow {
                role: tr.t(&format!("role-{}", u.role.as_str())),
                id: u.id,
                username: u.username,
                display_name: u.display_name,
                active: u.active,
            })
            .collect(),
        form,
        errors,
    }
    .render()?;
    Ok(form_page(&chrome, html, failed))
}

async fn organization_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    visitor.require(OPERATOR)?;
    organization_view(
        &req,
        &state,
        &visitor,
        id.into_inner(),
        Typed::default(),
        FieldErrors::default(),
    )
    .await
}

async fn create_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    posted: SignedForm<Typed>,
) -> Result<HttpResponse, PageError> {
    let SignedForm { visitor, mut form } = posted;
    visitor.require(OPERATOR)?;
    let id = id.into_inner();
    let input = NewUser {
        organization_id: id.clone(),
        username: form.value("username"),
        display_name: form.value("display_name"),
        email: form.optional("email"),
        role: form.value("role"),
        password: form.value("password"),
        resident_id: None,
    };
    let ctx = state.ctx.clone();
    let actor = visitor.actor.clone();
    match submit(Some("username"), move || {
        organizations::create_user(&ctx, &actor, input)
    })
    .await?
    {
        Outcome::Done(_) => Ok(redirect_with_flash(
            &req,
            &format!("/operator/organizations/{id}"),
            "flash-user-created",
        )),
        Outcome::Refused { field, message } => {
            // A password is never sent back.
            form.forget("password");
            let errors = refused(Tr::new(Lang::of(&req)), &field, &message);
            organization_view(&req, &state, &visitor, id, form, errors).await
        }
    }
}

#[derive(Deserialize)]
struct DeactivateForm {
    #[serde(default)]
    organization_id: String,
}

async fn deactivate_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    posted: SignedForm<DeactivateForm>,
) -> Result<HttpResponse, PageError> {
    let SignedForm { visitor, form } = posted;
    visitor.require(OPERATOR)?;
    let ctx = state.ctx.clone();
    let actor = visitor.actor.clone();
    let user = id.into_inner();
    run(move || organizations::deactivate_user(&ctx, &actor, &user)).await?;
    let back = if form.organization_id.is_empty()
        || !form
            .organization_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        "/operator/organizations".to_owned()
    } else {
        format!("/operator/organizations/{}", form.organization_id)
    };
    Ok(redirect_with_flash(&req, &back, "flash-user-deactivated"))
}

// ---------------------------------------------------------------------------------
// Certificates and trust

struct CertificateRow {
    issuer: String,
    subject: String,
    serial: String,
    not_after: String,
    expiring: bool,
    active: bool,
}

struct AnchorRow {
    name: String,
    fingerprint: String,
    created: String,
}

struct CrlRow {
    issuer: String,
    this_update: String,
    next_update: String,
    stale: bool,
    source: String,
}

#[derive(Template)]
#[template(path = "pages/operator/trust.html")]
struct TrustPage {
    chrome: Chrome,
    certificates: Vec<CertificateRow>,
    anchors: Vec<AnchorRow>,
    crls: Vec<CrlRow>,
    /// (organization id, name) of the issuers, for the certificate form.
    issuers: Vec<(String, String, bool)>,
    form: Typed,
    errors: FieldErrors,
}

async fn trust_view(
    req: &HttpRequest,
    state: &AppState,
    visitor: &Visitor,
    form: Typed,
    errors: FieldErrors,
) -> Result<HttpResponse, PageError> {
    let ctx = state.ctx.clone();
    let actor = visitor.actor.clone();
    let now = state.ctx.now();
    let (certificates, anchors, crls, orgs) = run(move || {
        Ok((
            trust::list_issuer_certificates(&ctx, &actor)?,
            trust::list_trust_anchors(&ctx, &actor)?,
            trust::list_crls(&ctx, &actor)?,
            organizations::list_organizations(&ctx, &actor)?,
        ))
    })
    .await?;
    let chrome = Chrome::new(
        req,
        Some(visitor),
        &title(req, "operator-trust-title"),
        Nav::Role,
    );
    let chosen = form.value("organization_id");
    let soon = now + chrono::Duration::days(30);
    let failed = !errors.is_empty();
    let html = TrustPage {
        chrome: chrome.clone(),
        certificates: certificates
            .into_iter()
            .map(|c| CertificateRow {
                issuer: c.issuer.name,
                subject: c.certificate.subject,
                serial: c.certificate.serial,
                not_after: china_time(c.certificate.not_after),
                expiring: c.certificate.not_after <= soon,
                active: c.certificate.deactivated_at.is_none(),
            })
            .collect(),
        anchors: anchors
            .into_iter()
            .map(|a| AnchorRow {
                name: a.name,
                fingerprint: a.fingerprint_sha256,
                created: china_time(a.created_at),
            })
            .collect(),
        crls: crls
            .into_iter()
            .map(|c| CrlRow {
                issuer: c.issuer_name,
                this_update: china_time(c.this_update),
                stale: c.next_update.is_some_and(|n| n < now),
                next_update: c.next_update.map(china_time).unwrap_or_default(),
                source: c.source_url.unwrap_or_default(),
            })
            .collect(),
        issuers: orgs
            .into_iter()
            .filter(|o| o.kind == crate::domain::party::OrgKind::Issuer)
            .map(|o| {
                let selected = o.id == chosen;
                (o.id, o.name, selected)
            })
            .collect(),
        form,
        errors,
    }
    .render()?;
    Ok(form_page(&chrome, html, failed))
}

async fn trust_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
) -> Result<HttpResponse, PageError> {
    visitor.require(OPERATOR)?;
    trust_view(
        &req,
        &state,
        &visitor,
        Typed::default(),
        FieldErrors::default(),
    )
    .await
}

/// The answer to one of the trust forms: back to the list with a flash, or the page
/// again with the error beside the field (`field_of` maps the service's field to the
/// form's).
async fn trust_answer<T>(
    req: &HttpRequest,
    state: &AppState,
    visitor: &Visitor,
    mut form: Typed,
    result: Outcome<T>,
    flash: &'static str,
    field_of: impl Fn(&str) -> &'static str,
) -> Result<HttpResponse, PageError> {
    match result {
        Outcome::Done(_) => Ok(redirect_with_flash(req, "/operator/trust", flash)),
        Outcome::Refused { field, message } => {
            // Secrets are never sent back.
            form.forget("private_key_pem");
            form.forget("key_password");
            let errors = refused(Tr::new(Lang::of(req)), field_of(&field), &message);
            trust_view(req, state, visitor, form, errors).await
        }
    }
}

async fn register_anchor(
    req: HttpRequest,
    state: web::Data<AppState>,
    posted: SignedForm<Typed>,
) -> Result<HttpResponse, PageError> {
    let SignedForm { visitor, form } = posted;
    visitor.require(OPERATOR)?;
    let (name, pem) = (form.value("anchor_name"), form.value("anchor_pem"));
    let ctx = state.ctx.clone();
    let actor = visitor.actor.clone();
    let result = submit(None, move || {
        trust::register_trust_anchor(&ctx, &actor, &name, &pem)
    })
    .await?;
    trust_answer(
        &req,
        &state,
        &visitor,
        form,
        result,
        "flash-anchor-registered",
        |f| {
            if f == "name" {
                "anchor_name"
            } else {
                "anchor_pem"
            }
        },
    )
    .await
}

async fn register_crl(
    req: HttpRequest,
    state: web::Data<AppState>,
    posted: SignedForm<Typed>,
) -> Result<HttpResponse, PageError> {
    let SignedForm { visitor, form } = posted;
    visitor.require(OPERATOR)?;
    let pem = form.value("crl_pem");
    let ctx = state.ctx.clone();
    let actor = visitor.actor.clone();
    let result = submit(None, move || {
        trust::register_crl(&ctx, &actor, pem.as_bytes())
    })
    .await?;
    trust_answer(
        &req,
        &state,
        &visitor,
        form,
        result,
        "flash-crl-registered",
        |_| "crl_pem",
    )
    .await
}

async fn register_certificate(
    req: HttpRequest,
    state: web::Data<AppState>,
    posted: SignedForm<Typed>,
) -> Result<HttpResponse, PageError> {
    let SignedForm { visitor, form } = posted;
    visitor.require(OPERATOR)?;
    let input = NewIssuerCertificate {
        organization_id: form.value("organization_id"),
        certificate_pem: form.value("certificate_pem"),
        private_key_pem: form.optional("private_key_pem"),
        pkcs12_base64: None,
        key_password: form
            .0
            .get("key_password")
            .filter(|p| !p.is_empty())
            .cloned(),
    };
    let ctx = state.ctx.clone();
    let actor = visitor.actor.clone();
    let result = submit(None, move || {
        trust::register_issuer_certificate(&ctx, &actor, input)
    })
    .await?;
    trust_answer(
        &req,
        &state,
        &visitor,
        form,
        result,
        "flash-certificate-registered",
        |f| match f {
            "organization_id" => "organization_id",
            "private_key_pem" | "key_password" | "pkcs12_base64" => "private_key_pem",
            _ => "certificate_pem",
        },
    )
    .await
}

// ---------------------------------------------------------------------------------
// Mail

#[derive(Deserialize)]
struct MailQuery {
    status: Option<String>,
    // Not a flattened `PageQuery`: serde's flatten reads every value of a query string
    // as text, so a number in it would never parse.
    page: Option<u32>,
    size: Option<u32>,
}

struct MailRow {
    id: String,
    to: String,
    subject: String,
    status: String,
    failed: bool,
    attempts: i32,
    last_error: String,
    created: String,
}

#[derive(Template)]
#[template(path = "pages/operator/mail.html")]
struct MailPage {
    chrome: Chrome,
    statuses: Options,
    rows: Vec<MailRow>,
    pager: Pager,
}

async fn mail_list(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
    query: web::Query<MailQuery>,
) -> Result<HttpResponse, PageError> {
    visitor.require(OPERATOR)?;
    let query = query.into_inner();
    let paging = Paging::from_query(&PageQuery {
        page: query.page,
        size: query.size,
    });
    let status = query.status.clone().filter(|s| !s.is_empty());
    let pool = state.ctx.pool.clone();
    let actor = visitor.actor.clone();
    let wanted = status.clone();
    let (mails, total) = run(move || {
        services::mail::list_mail_page(
            &pool,
            &actor,
            wanted.as_deref(),
            paging.offset(),
            paging.limit(),
        )
    })
    .await?;
    let chrome = Chrome::titled(&req, &visitor, "operator-mail-title");
    let tr = chrome.tr;
    let chosen = status.clone().unwrap_or_default();
    let filters = query_of(&[("status", status.as_deref())]);
    let base = if filters.is_empty() {
        "/operator/mail".to_owned()
    } else {
        format!("/operator/mail?{filters}")
    };
    let html = MailPage {
        statuses: options(
            tr,
            "operator-mail-",
            &["failed", "pending", "sent"],
            &chosen,
        ),
        rows: mails
            .into_iter()
            .map(|m| MailRow {
                failed: m.status == services::mail::MailStatus::Failed,
                status: tr.t(&format!("operator-mail-{}", m.status.as_str())),
                id: m.id,
                to: m.to_address,
                subject: m.subject,
                attempts: m.attempts,
                last_error: m.last_error.unwrap_or_default(),
                created: china_time(m.created_at),
            })
            .collect(),
        chrome: chrome.clone(),
        pager: Pager::new(&base, paging, total),
    }
    .render()?;
    Ok(page(&chrome, html))
}

#[derive(Deserialize)]
struct Nothing {}

async fn retry_mail(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    posted: SignedForm<Nothing>,
) -> Result<HttpResponse, PageError> {
    let visitor = posted.visitor;
    visitor.require(OPERATOR)?;
    let ctx = state.ctx.clone();
    let actor = visitor.actor.clone();
    let id = id.into_inner();
    run(move || services::mail::retry_mail(&ctx, &actor, &id)).await?;
    Ok(redirect_with_flash(
        &req,
        "/operator/mail?status=failed",
        "flash-mail-retried",
    ))
}

// ---------------------------------------------------------------------------------
// The audit chain

#[derive(Template)]
#[template(path = "pages/operator/audit.html")]
struct AuditPage {
    chrome: Chrome,
    /// `None` before the check is run.
    intact: Option<bool>,
    entries: u64,
    broken_at: i64,
    reason: String,
}

async fn audit_page(req: HttpRequest, visitor: Visitor) -> Result<HttpResponse, PageError> {
    visitor.require(OPERATOR)?;
    let chrome = Chrome::titled(&req, &visitor, "operator-audit-title");
    let html = AuditPage {
        chrome: chrome.clone(),
        intact: None,
        entries: 0,
        broken_at: 0,
        reason: String::new(),
    }
    .render()?;
    Ok(page(&chrome, html))
}

/// Runs the check and shows its result (it changes nothing, so the answer is the page
/// itself rather than a redirect).
async fn audit_check(
    req: HttpRequest,
    state: web::Data<AppState>,
    posted: SignedForm<Nothing>,
) -> Result<HttpResponse, PageError> {
    let visitor = posted.visitor;
    visitor.require(OPERATOR)?;
    let ctx = state.ctx.clone();
    let actor = visitor.actor.clone();
    let check = run(move || services::audit::check_chain(&ctx, &actor)).await?;
    let chrome = Chrome::titled(&req, &visitor, "operator-audit-title");
    let page_data = match check {
        ChainCheck::Intact { entries } => AuditPage {
            chrome: chrome.clone(),
            intact: Some(true),
            entries,
            broken_at: 0,
            reason: String::new(),
        },
        ChainCheck::Broken { seq, reason } => AuditPage {
            chrome: chrome.clone(),
            intact: Some(false),
            entries: 0,
            broken_at: seq,
            reason,
        },
    };
    let html = page_data.render()?;
    Ok(page(&chrome, html))
}
