//! Public verification (`/verify`, the target of the letter's QR code): by number and
//! verification code, or by uploading the document and its signature. The report in
//! plain words: a passed / failed / indeterminate banner, the guarantee's essentials as
//! the letter states them (never more than the holder of the code or the document has
//! already), and every check with its explanation.

use actix_multipart::Multipart;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};

use super::errors::PageError;
use super::i18n::Tr;
use super::session::visitor_of;
use super::{page, Chrome, Nav};
use crate::domain::money::Amount;
use crate::domain::GuaranteeNumber;
use crate::pki::{Check, CheckResult, GuaranteeDocument, SubIndication, VerificationReport};
use crate::services::guarantees::{self, ExpectationsInput};
use crate::services::ServiceError;
use crate::web::rate_limit::{check_page_request, Limit};
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/verify")
            .route(web::get().to(form))
            .route(web::post().to(by_code)),
    )
    .route("/verify/upload", web::post().to(by_upload));
}

/// The form, with what was typed and the error of each field.
#[derive(Template)]
#[template(path = "pages/verify.html")]
struct VerifyPage {
    chrome: Chrome,
    number: String,
    number_error: Option<String>,
    code_error: Option<String>,
    upload_error: Option<String>,
    not_found: bool,
}

impl VerifyPage {
    fn has_errors(&self) -> bool {
        self.number_error.is_some()
            || self.code_error.is_some()
            || self.upload_error.is_some()
            || self.not_found
    }
}

#[derive(Deserialize)]
struct Prefill {
    number: Option<String>,
}

async fn chrome(req: &HttpRequest, title_key: &str) -> Result<Chrome, PageError> {
    let visitor = visitor_of(req).await?;
    let tr = Tr::new(super::i18n::Lang::of(req));
    Ok(Chrome::new(
        req,
        visitor.as_ref(),
        &tr.t(title_key),
        Nav::Role,
    ))
}

fn blank(chrome: Chrome, number: String) -> VerifyPage {
    VerifyPage {
        chrome,
        number,
        number_error: None,
        code_error: None,
        upload_error: None,
        not_found: false,
    }
}

async fn form(req: HttpRequest, query: web::Query<Prefill>) -> Result<HttpResponse, PageError> {
    let chrome = chrome(&req, "verify-title").await?;
    let number: String = query
        .number
        .as_deref()
        .unwrap_or_default()
        .trim()
        .chars()
        .take(64)
        .collect();
    let html = blank(chrome.clone(), number).render()?;
    Ok(page(&chrome, html))
}

#[derive(Deserialize)]
struct ByCode {
    #[serde(default)]
    number: String,
    #[serde(default)]
    code: String,
}

async fn by_code(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<ByCode>,
) -> Result<HttpResponse, PageError> {
    check_page_request(Limit::PublicVerification, &req).map_err(PageError::TooMany)?;
    crate::web::page_cache::writes_nothing(&req);
    let ByCode { number, code } = form.into_inner();
    let chrome = chrome(&req, "verify-title").await?;
    let tr = chrome.tr;
    let mut again = blank(chrome.clone(), number.trim().chars().take(64).collect());
    match GuaranteeNumber::parse(number.trim()) {
        Ok(parsed) => {
            if let Err(wait) = state.rate_limits.check_number(parsed.as_str()) {
                return Err(PageError::TooMany(wait));
            }
        }
        Err(_) => again.number_error = Some(tr.t("verify-number-invalid")),
    }
    if code.trim().is_empty() {
        again.code_error = Some(tr.t("verify-code-missing"));
    }
    if again.has_errors() {
        let html = again.render()?;
        return Ok(page(&chrome, html));
    }
    let ctx = state.ctx.clone();
    let (number, code) = (number.trim().to_owned(), code.trim().to_owned());
    let found =
        web::block(move || guarantees::verify_by_number_with_document(&ctx, &number, &code))
            .await?;
    match found {
        Ok((report, document)) => {
            let terms = GuaranteeDocument::parse(&document).ok();
            report_page(&req, report, terms).await
        }
        Err(ServiceError::NotFound(_)) => {
            again.not_found = true;
            let html = again.render()?;
            Ok(page(&chrome, html))
        }
        Err(ServiceError::Invalid { field, .. }) => {
            if field == "code" {
                again.code_error = Some(tr.t("verify-code-invalid"));
            } else {
                again.number_error = Some(tr.t("verify-number-invalid"));
            }
            let html = again.render()?;
            Ok(page(&chrome, html))
        }
        Err(e) => Err(e.into()),
    }
}

/// Reads the two files of the upload form, each at most `limit` bytes.
async fn files(mut form: Multipart, limit: usize) -> Result<(Vec<u8>, Vec<u8>), String> {
    let (mut document, mut signature) = (None, None);
    while let Some(mut field) = form.try_next().await.map_err(|e| e.to_string())? {
        let name = field.name().unwrap_or_default().to_owned();
        let mut bytes = Vec::new();
        while let Some(chunk) = field.try_next().await.map_err(|e| e.to_string())? {
            if bytes.len() + chunk.len() > limit {
                return Err("too large".into());
            }
            bytes.extend_from_slice(&chunk);
        }
        match name.as_str() {
            "document" => document = Some(bytes),
            "signature" => signature = Some(bytes),
            _ => {}
        }
    }
    match (document, signature) {
        (Some(d), Some(s)) if !d.is_empty() && !s.is_empty() => Ok((d, s)),
        _ => Err("missing".into()),
    }
}

/// A signature as uploaded: DER, or PEM (`-----BEGIN CMS-----` / PKCS7), or base64.
pub(super) fn signature_der(bytes: Vec<u8>) -> Vec<u8> {
    use base64::Engine;
    let text = String::from_utf8_lossy(&bytes);
    let trimmed = text.trim();
    if trimmed.starts_with("-----BEGIN") {
        let body: String = trimmed
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(body) {
            return der;
        }
    }
    bytes
}

async fn by_upload(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Multipart,
) -> Result<HttpResponse, PageError> {
    check_page_request(Limit::PublicVerification, &req).map_err(PageError::TooMany)?;
    crate::web::page_cache::writes_nothing(&req);
    let limit = state.settings.max_body_bytes;
    match files(form, limit).await {
        Ok((document, signature)) => {
            let ctx = state.ctx.clone();
            let signature = signature_der(signature);
            let terms = GuaranteeDocument::parse(&document).ok();
            let report = web::block(move || {
                guarantees::verify_documents(
                    &ctx,
                    &document,
                    &signature,
                    ExpectationsInput::default(),
                )
            })
            .await??;
            report_page(&req, report, terms).await
        }
        Err(_) => {
            let chrome = chrome(&req, "verify-title").await?;
            let mut again = blank(chrome.clone(), String::new());
            again.upload_error = Some(chrome.tr.t("verify-upload-missing"));
            let html = again.render()?;
            Ok(page(&chrome, html))
        }
    }
}

/// One check of the report, in the visitor's words.
struct CheckRow {
    title: String,
    result: String,
    result_class: String,
    explanation: String,
}

/// The guarantee's essentials, as its letter states them.
struct Essentials {
    number: String,
    version: u32,
    issuer: String,
    applicant: String,
    beneficiary: String,
    project: String,
    section: String,
    amount: String,
    amount_in_words: String,
    valid_from: String,
    valid_until: String,
    issued_at: String,
}

#[derive(Template)]
#[template(path = "pages/report.html")]
struct ReportPage {
    chrome: Chrome,
    verdict_class: String,
    verdict_title: String,
    verdict_advice: String,
    reason: Option<String>,
    essentials: Option<Essentials>,
    checks: Vec<CheckRow>,
    signer_subject: Option<String>,
    signer_issuer: Option<String>,
    signer_valid: Option<String>,
    document_sha256: Option<String>,
    validation_time: String,
}

/// The serde name of a report enum (`PASSED`, `NOT_REGISTERED`, `certificate_chain`).
fn name_of(value: &impl Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A sub-indication in the visitor's words (`sub-hash-failure`), else its own name.
fn sub_indication_words(tr: Tr, sub: &SubIndication) -> String {
    let key = format!(
        "sub-{}",
        name_of(sub).to_ascii_lowercase().replace('_', "-")
    );
    if tr.has(&key) {
        tr.t(&key)
    } else {
        name_of(sub)
    }
}

/// A check's name in the visitor's words (`check-certificate-chain`), else its title.
fn check_words(tr: Tr, check: &Check) -> String {
    let key = format!("check-{}", name_of(&check.id).replace('_', "-"));
    if tr.has(&key) {
        tr.t(&key)
    } else {
        check.title.clone()
    }
}

/// Why a report refused a signature, in the visitor's words: the check that decided
/// (the first failed one, else the first indeterminate one, as the report decides) and
/// its sub-indication, e.g. "Content integrity: The file does not match its signature".
pub(super) fn refusal_words(tr: Tr, report: &VerificationReport) -> String {
    let deciding = [CheckResult::Failed, CheckResult::Indeterminate]
        .iter()
        .find_map(|wanted| report.checks.iter().find(|c| c.result == *wanted));
    let sub = report
        .sub_indication
        .as_ref()
        .or(deciding.and_then(|c| c.sub_indication.as_ref()));
    let verdict = format!(
        "verdict-{}",
        name_of(&report.indication).to_ascii_lowercase()
    );
    let reason = sub.map_or_else(|| tr.t(&verdict), |s| sub_indication_words(tr, s));
    match deciding {
        Some(check) => tr.t2(
            "refusal-check-reason",
            ("check", check_words(tr, check)),
            ("reason", reason),
        ),
        None => reason,
    }
}

fn date(rfc3339: &str) -> String {
    rfc3339.replace('T', " ").chars().take(16).collect()
}

async fn report_page(
    req: &HttpRequest,
    report: VerificationReport,
    terms: Option<GuaranteeDocument>,
) -> Result<HttpResponse, PageError> {
    let chrome = chrome(req, "report-title").await?;
    let tr = chrome.tr;
    let indication = name_of(&report.indication).to_ascii_lowercase();
    let reason = report
        .sub_indication
        .as_ref()
        .map(|s| sub_indication_words(tr, s));
    let checks = report
        .checks
        .iter()
        .map(|c| {
            let result = name_of(&c.result);
            CheckRow {
                title: check_words(tr, c),
                result: tr.t(&format!("result-{}", result.replace('_', "-"))),
                result_class: format!("result-{result}"),
                explanation: c.explanation.clone(),
            }
        })
        .collect();
    let essentials = terms.map(|d| Essentials {
        amount: Amount::parse(&d.amount.value)
            .map(|a| a.grouped())
            .unwrap_or(d.amount.value.clone()),
        number: d.guarantee_number,
        version: d.version,
        issuer: d.issuer.name,
        applicant: d.applicant.name,
        beneficiary: d.beneficiary.name,
        project: format!("{} {}", d.project.code, d.project.name),
        section: format!("{} {}", d.section.code, d.section.name),
        amount_in_words: d.amount_in_words,
        valid_from: date(&d.valid_from),
        valid_until: date(&d.valid_until),
        issued_at: date(&d.issued_at),
    });
    let html = ReportPage {
        chrome: chrome.clone(),
        verdict_title: tr.t(&format!("verdict-{indication}")),
        verdict_advice: tr.t(&format!("verdict-{indication}-advice")),
        verdict_class: indication,
        reason,
        essentials,
        checks,
        signer_subject: report.signer.as_ref().map(|s| s.subject.clone()),
        signer_issuer: report.signer.as_ref().map(|s| s.issuer.clone()),
        signer_valid: report
            .signer
            .as_ref()
            .map(|s| format!("{} — {}", date(&s.not_before), date(&s.not_after))),
        document_sha256: report.document_sha256.clone(),
        validation_time: date(&report.validation_time),
    }
    .render()?;
    Ok(page(&chrome, html))
}
