//! Applications for a guarantee: the enterprise applies and withdraws; the issuer
//! approves, declines, confirms payment, fetches the draft and issues (hosted signing)
//! or uploads its own signature (external signing).

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::domain::catalogue::CreditLevel;
use crate::domain::money::Amount;
use crate::services::applications::{self, ApplicationFilter, ApplicationQuery, NewApplication};
use crate::services::credit::ApplicantCredit;
use crate::services::guarantees;
use crate::services::views::ApplicationView;
use crate::web::api::dto::{
    china_time, Binary, IssuedOut, NamedParty, PendingAmendmentOut, SectionRef, SignedDocument,
};
use crate::web::api::listing::{filters, ListRequest, PageParams};
use crate::web::auth::Authenticated;
use crate::web::error::responses::{
    BadRequest, Conflict, JsonBody, NotFound, SignedIn, Unprocessable,
};
use crate::web::error::ApiError;
use crate::web::json::Json;
use crate::web::AppState;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(apply)
        .service(list)
        .service(get)
        .service(withdraw)
        .service(approve)
        .service(decline)
        .service(confirm_payment)
        .service(draft)
        .service(issue_hosted)
        .service(upload_signature);
}

/// The project an application is for.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ApplicationProject {
    id: String,
    code: String,
    name: String,
    bid_deadline: String,
}

impl From<&crate::db::models::Project> for ApplicationProject {
    fn from(p: &crate::db::models::Project) -> Self {
        ApplicationProject {
            id: p.id.clone(),
            code: p.code.clone(),
            name: p.name.clone(),
            bid_deadline: china_time(p.bid_deadline),
        }
    }
}

/// An application as the enterprise and the issuer see it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ApplicationOut {
    id: String,
    #[schema(value_type = crate::domain::lifecycle::ApplicationState)]
    status: String,
    #[schema(value_type = crate::domain::party::IssuerKind)]
    kind: String,
    amount: String,
    amount_in_words: String,
    valid_from: String,
    valid_until: String,
    premium: Option<String>,
    decline_reason: Option<String>,
    project: ApplicationProject,
    section: SectionRef,
    enterprise: NamedParty,
    issuer: NamedParty,
    created_at: String,
    updated_at: String,
    /// An amendment of the issued guarantee (after a postponement) drafted and not yet
    /// signed by the issuer; `valid_until` above stays what is signed until then.
    pending_amendment: Option<PendingAmendmentOut>,
    /// The applicant's credit standing: present only for the issuer the application is
    /// made to, while it underwrites it (`submitted`, `approved`, `paid`), and each such
    /// read is shown to the applicant as a look (`GET /api/v1/credit/me/looks`).
    #[serde(skip_serializing_if = "Option::is_none")]
    applicant_credit: Option<ApplicantCreditOut>,
}

/// An applicant's credit as its issuer sees it while underwriting: the level and score
/// its archive holds, and its records in force that lower the score.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ApplicantCreditOut {
    level: CreditLevel,
    score: i32,
    base_score: i32,
    /// Newest first; empty for an enterprise with no such record ("no records").
    lowering_records: Vec<LoweringRecordOut>,
    /// The issuer's own discount for this level, percent of its quote
    /// (`PUT /api/v1/issuer/credit-rules`).
    discount_percent: i32,
    /// Whether the issuer's rules ask a manual review at this level (true without a
    /// rule).
    manual_review: bool,
}

/// A record in force that lowers the applicant's score.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LoweringRecordOut {
    category: String,
    category_name_zh: String,
    category_name_en: String,
    /// The points it takes off the score.
    points: i32,
    occurred_at: String,
}

impl From<ApplicantCredit> for ApplicantCreditOut {
    fn from(c: ApplicantCredit) -> Self {
        ApplicantCreditOut {
            level: c.standing.level,
            score: c.standing.score,
            base_score: c.base_score,
            discount_percent: c.rule.discount_percent,
            manual_review: c.rule.manual_review,
            lowering_records: c
                .lowering
                .into_iter()
                .map(|r| LoweringRecordOut {
                    category: r.category,
                    category_name_zh: r.category_name_zh,
                    category_name_en: r.category_name_en,
                    points: r.points,
                    occurred_at: china_time(r.occurred_at),
                })
                .collect(),
        }
    }
}

impl From<ApplicationView> for ApplicationOut {
    fn from(v: ApplicationView) -> Self {
        let a = v.application;
        let amount = Amount::from_fen(a.amount_fen);
        ApplicationOut {
            id: a.id,
            status: a.status.to_string(),
            kind: a.kind.to_string(),
            amount: amount.to_string(),
            amount_in_words: amount.to_chinese_capital(),
            valid_from: china_time(a.valid_from),
            valid_until: china_time(a.valid_until),
            premium: a.premium_fen.map(|p| Amount::from_fen(p).to_string()),
            decline_reason: a.decline_reason,
            project: ApplicationProject::from(&v.project),
            section: SectionRef::from(&v.section),
            enterprise: NamedParty::from(&v.enterprise),
            issuer: NamedParty::from(&v.issuer),
            created_at: china_time(a.created_at),
            updated_at: china_time(a.updated_at),
            pending_amendment: v.pending_amendment.as_ref().map(PendingAmendmentOut::from),
            applicant_credit: None,
        }
    }
}

/// Applies for a bid bond for a section (enterprise).
#[utoipa::path(
    tag = "applications",
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = NewApplication,
    responses(
        (status = 201, description = "Received", body = ApplicationOut),
        SignedIn,
        JsonBody,
        NotFound,
        Conflict,
    )
)]
#[post("/applications")]
async fn apply(
    state: web::Data<AppState>,
    who: Authenticated,
    body: Json<NewApplication>,
) -> Result<HttpResponse, ApiError> {
    let ctx = who.context(&state);
    let view = web::block(move || applications::apply(&ctx, &who.0, body.into_inner())).await??;
    Ok(HttpResponse::Created().json(ApplicationOut::from(view)))
}

/// The applications the caller may see: its own (enterprise) or addressed to it
/// (issuer), narrowed by the filters, one page of them.
#[utoipa::path(
    tag = "applications",
    params(ApplicationQuery, PageParams),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "One page of applications", body = Vec<ApplicationOut>,
            headers(
                ("X-Total-Count" = i64, description = "How many applications the filters match"),
                ("Link" = String, description = "RFC 8288 links to the first, previous, next and last pages, keeping the filters"),
            )),
        SignedIn,
        Unprocessable,
    )
)]
#[get("/applications")]
async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let (page, params) = ListRequest::of(&req)?;
    let filter = filters(params, ApplicationFilter::read)?;
    let ctx = state.ctx.clone();
    let window = page.window();
    let listed = web::block(move || applications::list(&ctx, &who.0, &filter, window)).await??;
    let rows: Vec<ApplicationOut> = listed.rows.into_iter().map(ApplicationOut::from).collect();
    Ok(page.answer(&rows, listed.total))
}

/// One application. Its issuer, while underwriting it, also reads the applicant's
/// credit standing (`applicant_credit`), and the applicant is shown that look.
#[utoipa::path(
    tag = "applications",
    params(("id" = String, Path, description = "Application id")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The application", body = ApplicationOut),
        SignedIn,
        NotFound,
    )
)]
#[get("/applications/{id}")]
async fn get(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let (view, standing) =
        web::block(move || applications::get_underwriting(&ctx, &who.0, &id)).await??;
    let mut out = ApplicationOut::from(view);
    out.applicant_credit = standing.map(ApplicantCreditOut::from);
    Ok(HttpResponse::Ok().json(out))
}

/// Withdraws an application before issue (enterprise).
#[utoipa::path(
    tag = "applications",
    params(("id" = String, Path, description = "Application id")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 200, description = "The application in its new state", body = ApplicationOut),
        SignedIn,
        NotFound,
        Conflict,
    )
)]
#[post("/applications/{id}/withdraw")]
async fn withdraw(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = who.context(&state);
    let view = web::block(move || applications::withdraw(&ctx, &who.0, &id)).await??;
    Ok(HttpResponse::Ok().json(ApplicationOut::from(view)))
}

/// An approval.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// Decimal yuan, e.g. "300.00".
    #[schema(pattern = r"^[0-9]+(\.[0-9]{1,2})?$")]
    premium: String,
}

/// Approves an application with the premium to pay (issuer).
#[utoipa::path(
    tag = "applications",
    params(("id" = String, Path, description = "Application id")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = Approval,
    responses(
        (status = 200, description = "The application in its new state", body = ApplicationOut),
        SignedIn,
        JsonBody,
        NotFound,
        Conflict,
    )
)]
#[post("/applications/{id}/approve")]
async fn approve(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
    body: Json<Approval>,
) -> Result<HttpResponse, ApiError> {
    let ctx = who.context(&state);
    let view =
        web::block(move || applications::approve(&ctx, &who.0, &id, &body.premium)).await??;
    Ok(HttpResponse::Ok().json(ApplicationOut::from(view)))
}

/// A refusal.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Refusal {
    reason: String,
}

/// Declines an application with a reason (issuer).
#[utoipa::path(
    tag = "applications",
    params(("id" = String, Path, description = "Application id")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = Refusal,
    responses(
        (status = 200, description = "The application in its new state", body = ApplicationOut),
        SignedIn,
        JsonBody,
        NotFound,
        Conflict,
    )
)]
#[post("/applications/{id}/decline")]
async fn decline(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
    body: Json<Refusal>,
) -> Result<HttpResponse, ApiError> {
    let ctx = who.context(&state);
    let view = web::block(move || applications::decline(&ctx, &who.0, &id, &body.reason)).await??;
    Ok(HttpResponse::Ok().json(ApplicationOut::from(view)))
}

/// Confirms the premium is paid (issuer); the draft document is prepared.
#[utoipa::path(
    tag = "applications",
    params(("id" = String, Path, description = "Application id")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 200, description = "The application in its new state", body = ApplicationOut),
        SignedIn,
        NotFound,
        Conflict,
    )
)]
#[post("/applications/{id}/confirm-payment")]
async fn confirm_payment(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = who.context(&state);
    let view = web::block(move || applications::confirm_payment(&ctx, &who.0, &id)).await??;
    Ok(HttpResponse::Ok().json(ApplicationOut::from(view)))
}

/// The exact bytes to sign, served as they are stored.
#[utoipa::path(
    tag = "applications",
    params(("id" = String, Path, description = "Application id")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (
            status = 200,
            description = "The draft guarantee document: the bytes to sign, verbatim",
            content_type = "application/json",
            body = SignedDocument,
            headers(
                ("X-Guarantee-Number" = String, description = "The guarantee number"),
                ("X-Document-Version" = i32, description = "The document version"),
                ("X-Document-SHA256" = String, description = "SHA-256 of the bytes, hex"),
            )
        ),
        SignedIn,
        NotFound,
        Conflict,
    )
)]
#[get("/applications/{id}/draft")]
async fn draft(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let draft = web::block(move || guarantees::draft(&ctx, &who.0, &id)).await??;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("X-Guarantee-Number", draft.guarantee_number.clone()))
        .insert_header(("X-Document-Version", draft.version.to_string()))
        .insert_header(("X-Document-SHA256", draft.document_sha256.clone()))
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{}.json\"", draft.guarantee_number),
        ))
        .body(draft.document))
}

/// Signs the draft with the issuer's hosted key and issues the guarantee (issuer).
#[utoipa::path(
    tag = "applications",
    params(("id" = String, Path, description = "Application id")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 201, description = "Issued", body = IssuedOut),
        SignedIn,
        NotFound,
        Conflict,
        Unprocessable,
    )
)]
#[post("/applications/{id}/issue")]
async fn issue_hosted(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = who.context(&state);
    let issued = web::block(move || guarantees::issue_hosted(&ctx, &who.0, &id)).await??;
    Ok(HttpResponse::Created().json(IssuedOut::from(issued)))
}

/// A detached CMS signature, base64 of the DER.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignatureUpload {
    signature_base64: String,
}

/// The signature arrives as raw DER (`application/pkcs7-signature` or
/// `application/octet-stream`) or as JSON `{ "signature_base64": "..." }`.
#[utoipa::path(
    tag = "applications",
    params(("id" = String, Path, description = "Application id")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body(
        description = "The issuer's detached CMS signature over the draft bytes",
        content(
            (Binary = "application/pkcs7-signature"),
            (Binary = "application/octet-stream"),
            (SignatureUpload = "application/json"),
        )
    ),
    responses(
        (status = 201, description = "Verified and issued", body = IssuedOut),
        SignedIn,
        BadRequest,
        NotFound,
        Conflict,
        (status = 413, description = "The body is larger than the configured limit", body = crate::web::error::ErrorBody),
        (status = 415, description = "Neither a DER signature nor JSON", body = crate::web::error::ErrorBody),
        (status = 422, description = "Not base64, or the signature failed verification (details holds the report)", body = crate::web::error::ErrorBody),
    )
)]
#[post("/applications/{id}/signature")]
async fn upload_signature(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    crate::web::json::check_content_encoding(req.headers())?;
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let signature = if crate::web::json::is_json(req.headers())? {
        let upload: SignatureUpload = crate::web::json::parse(&body)?;
        base64::engine::general_purpose::STANDARD
            .decode(upload.signature_base64.trim())
            .map_err(|_| {
                crate::services::ServiceError::invalid("signature_base64", "is not base64")
            })?
    } else if content_type.starts_with("application/pkcs7-signature")
        || content_type.starts_with("application/octet-stream")
    {
        body.to_vec()
    } else {
        return Err(ApiError::new(
            actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the DER signature as application/pkcs7-signature, or JSON with signature_base64",
        ));
    };
    let ctx = who.context(&state);
    let issued =
        web::block(move || guarantees::upload_signature(&ctx, &who.0, &id, signature)).await??;
    Ok(HttpResponse::Created().json(IssuedOut::from(issued)))
}
