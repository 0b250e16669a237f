//! Credit rights codes and waivers over the API: a subject gets a code and reads its
//! line and waivers; a provider's system (HIS, PMS, library or car-park system, with an
//! API token) checks a code, bills and settles its waivers. A provider's answers carry
//! no score, record or ID number.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::domain::money::Amount;
use crate::domain::waiver::{RefusalReason, Settlement, WaiverState};
use crate::services::waivers::{self, CheckOutcome, CheckRequest, IssuedCode, WaiverView};
use crate::services::ServiceError;
use crate::web::api::dto::china_time;
use crate::web::api::listing::{ListRequest, PageParams};
use crate::web::auth::Authenticated;
use crate::web::error::responses::{
    Conflict, JsonBody, NotFound, SignedIn, TooManyRequests, Unprocessable,
};
use crate::web::error::ApiError;
use crate::web::json::Json;
use crate::web::rate_limit::{Limit, RateLimited};
use crate::web::AppState;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(new_code)
        .service(my_line)
        .service(check_code)
        .service(provider_waivers)
        .service(bill_waiver)
        .service(settle_waiver);
}

/// What a subject asks for: a code for any provider, or for one.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCode {
    /// Only this provider (an organization of kind `provider`) may check the code.
    pub provider_id: Option<String>,
}

/// A credit rights code: show its text or its QR code (the same text) to the provider.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CodeOut {
    /// What the provider scans or types.
    pub code: String,
    pub issued_at: String,
    /// Unusable after this (China time).
    pub expires_at: String,
    pub provider_id: Option<String>,
    pub provider_name: Option<String>,
}

impl CodeOut {
    fn of(c: IssuedCode) -> CodeOut {
        let (provider_id, provider_name) = c.provider.unzip();
        CodeOut {
            code: c.text,
            issued_at: china_time(c.issued_at),
            expires_at: china_time(c.expires_at),
            provider_id,
            provider_name,
        }
    }
}

/// Gives the signed-in enterprise or resident a new credit rights code (信用权益码):
/// valid for a few minutes, good for one check, by any provider or only by the one
/// named.
#[utoipa::path(
    tag = "deposit-free",
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = NewCode,
    responses(
        (status = 201, description = "The code", body = CodeOut),
        SignedIn,
        JsonBody,
        Conflict,
    )
)]
#[post("/credit/me/rights-codes")]
async fn new_code(
    state: web::Data<AppState>,
    who: Authenticated,
    body: Json<NewCode>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let provider = body.into_inner().provider_id;
    let code = web::block(move || waivers::issue_code(&ctx, &who.0, provider.as_deref())).await??;
    Ok(HttpResponse::Created().json(CodeOut::of(code)))
}

/// A waiver as its subject sees it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MyWaiverOut {
    pub id: String,
    pub provider: String,
    pub matter: String,
    pub matter_name_zh: String,
    pub matter_name_en: String,
    /// The deposit waived, in yuan.
    pub amount: String,
    pub granted_at: String,
    pub state: WaiverState,
    /// What the provider billed, in yuan.
    pub bill: Option<String>,
    /// The end of the repayment window.
    pub due_at: Option<String>,
    /// Billed and past `due_at`.
    pub overdue: bool,
    pub settled_at: Option<String>,
    pub paid_late: bool,
}

impl MyWaiverOut {
    fn of(v: &WaiverView) -> MyWaiverOut {
        let w = &v.waiver;
        MyWaiverOut {
            id: w.id.clone(),
            provider: v.provider_name.clone(),
            matter: w.matter.clone(),
            matter_name_zh: v.matter_name_zh.clone(),
            matter_name_en: v.matter_name_en.clone(),
            amount: Amount::from_fen(w.amount_fen).to_string(),
            granted_at: china_time(w.granted_at),
            state: w.state,
            bill: w.bill_fen.map(|b| Amount::from_fen(b).to_string()),
            due_at: w.due_at.map(china_time),
            overdue: v.overdue,
            settled_at: w.settled_at.map(china_time),
            paid_late: w.paid_late,
        }
    }
}

/// A subject's credit line (授信额度) and its waivers.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LineOut {
    pub level: crate::domain::catalogue::CreditLevel,
    /// The level's total line, in yuan.
    pub total: String,
    /// Held by waivers not settled.
    pub in_use: String,
    pub left: String,
    /// Defaults not yet paid: every check is refused while there is one.
    pub defaults_open: i32,
    /// Newest first, at most 200.
    pub waivers: Vec<MyWaiverOut>,
}

/// The signed-in enterprise's or resident's credit line and its waivers.
#[utoipa::path(
    tag = "deposit-free",
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The line", body = LineOut),
        SignedIn,
    )
)]
#[get("/credit/me/line")]
async fn my_line(state: web::Data<AppState>, who: Authenticated) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let line = web::block(move || waivers::my_line(&ctx, &who.0)).await??;
    Ok(HttpResponse::Ok().json(LineOut {
        level: line.level,
        total: line.total.to_string(),
        in_use: line.in_use.to_string(),
        left: line.left().to_string(),
        defaults_open: line.defaults_open,
        waivers: line.waivers.iter().map(MyWaiverOut::of).collect(),
    }))
}

/// Granted or refused: all a provider learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Granted,
    Refused,
}

/// A check's answer. Nothing of the subject's archive: no score, level, record, name
/// or ID number.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CheckOut {
    pub decision: Decision,
    /// Why it was refused.
    pub reason: Option<RefusalReason>,
    /// The waiver a grant recorded: bill and settle it by this id.
    pub waiver_id: Option<String>,
    pub matter: String,
    pub amount: String,
}

/// A provider checks a credit rights code for a matter and the deposit it would take.
/// Granted: take no deposit; the waiver holds that much of the subject's line until
/// settled. Refused: the reason, and nothing else. Either answer after the code's own
/// checks uses the code.
#[utoipa::path(
    tag = "deposit-free",
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = CheckRequest,
    responses(
        (status = 200, description = "Granted or refused", body = CheckOut),
        SignedIn,
        JsonBody,
        TooManyRequests,
    )
)]
#[post("/credit/checks", wrap = "RateLimited(Limit::RightsCodeCheck)")]
async fn check_code(
    state: web::Data<AppState>,
    who: Authenticated,
    body: Json<CheckRequest>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let request = body.into_inner();
    let matter = request.matter.trim().to_owned();
    let amount = request.amount.trim().to_owned();
    let outcome = web::block(move || waivers::check(&ctx, &who.0, &request)).await??;
    let out = match outcome {
        CheckOutcome::Granted(w) => CheckOut {
            decision: Decision::Granted,
            reason: None,
            waiver_id: Some(w.id),
            matter,
            amount,
        },
        CheckOutcome::Refused(r) => CheckOut {
            decision: Decision::Refused,
            reason: Some(r),
            waiver_id: None,
            matter,
            amount,
        },
    };
    Ok(HttpResponse::Ok().json(out))
}

/// A waiver as its provider sees it: no name, ID number or score of the subject;
/// `provider_ref` is the provider's own link to its guest or patient.
#[derive(Serialize, utoipa::ToSchema)]
pub struct WaiverOut {
    pub id: String,
    pub matter: String,
    pub amount: String,
    pub provider_ref: Option<String>,
    pub granted_at: String,
    pub state: WaiverState,
    pub bill: Option<String>,
    pub billed_at: Option<String>,
    pub due_at: Option<String>,
    pub overdue: bool,
    pub settled_at: Option<String>,
    pub paid_late: bool,
}

impl WaiverOut {
    fn of(v: &WaiverView) -> WaiverOut {
        let w = &v.waiver;
        WaiverOut {
            id: w.id.clone(),
            matter: w.matter.clone(),
            amount: Amount::from_fen(w.amount_fen).to_string(),
            provider_ref: w.provider_ref.clone(),
            granted_at: china_time(w.granted_at),
            state: w.state,
            bill: w.bill_fen.map(|b| Amount::from_fen(b).to_string()),
            billed_at: w.billed_at.map(china_time),
            due_at: w.due_at.map(china_time),
            overdue: v.overdue,
            settled_at: w.settled_at.map(china_time),
            paid_late: w.paid_late,
        }
    }
}

/// The signed-in provider's waivers, newest first.
#[utoipa::path(
    tag = "deposit-free",
    params(PageParams),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "One page of waivers", body = Vec<WaiverOut>,
            headers(
                ("X-Total-Count" = i64, description = "How many waivers there are"),
                ("Link" = String, description = "RFC 8288 links to the first, previous, next and last pages"),
            )),
        SignedIn,
        Unprocessable,
    )
)]
#[get("/credit/waivers")]
async fn provider_waivers(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let (page, params) = ListRequest::of(&req)?;
    params.finish(()).map_err(ServiceError::from)?;
    let ctx = state.ctx.clone();
    let window = page.window();
    let listed = web::block(move || waivers::provider_waivers(&ctx, &who.0, window)).await??;
    let rows: Vec<WaiverOut> = listed.rows.iter().map(WaiverOut::of).collect();
    Ok(page.answer(&rows, listed.total))
}

/// A bill: what the subject owes once the service is given.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBill {
    /// In yuan.
    #[schema(example = "2680.50")]
    pub amount: String,
}

async fn answer_waiver(
    state: &AppState,
    id: String,
    f: impl FnOnce(&crate::services::Context, &str) -> Result<(), ServiceError> + Send + 'static,
    who: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let view = web::block(move || {
        f(&ctx, &id)?;
        waivers::provider_waiver(&ctx, &who.0, &id)
    })
    .await??;
    Ok(HttpResponse::Ok().json(WaiverOut::of(&view)))
}

/// The provider bills a waiver (at discharge, at check-out): due at the end of the
/// repayment window. Only an open waiver is billed (409 otherwise); another provider's
/// waiver is not found.
#[utoipa::path(
    tag = "deposit-free",
    params(("id" = String, Path, description = "The waiver's id")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = NewBill,
    responses(
        (status = 200, description = "Billed", body = WaiverOut),
        SignedIn,
        JsonBody,
        NotFound,
        Conflict,
    )
)]
#[post("/credit/waivers/{id}/bill")]
async fn bill_waiver(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<String>,
    body: Json<NewBill>,
) -> Result<HttpResponse, ApiError> {
    let actor = who.0.clone();
    let amount = body.into_inner().amount;
    answer_waiver(
        &state,
        path.into_inner(),
        move |ctx, id| waivers::bill(ctx, &actor, id, &amount).map(drop),
        who,
    )
    .await
}

/// A settlement as the provider reports it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSettlement {
    /// `paid` (on time or late, by the exchange's clock) or `defaulted` (only once the
    /// bill is overdue).
    pub outcome: Settlement,
}

/// The provider reports a waiver paid or defaulted. Paid frees the subject's line (a
/// bill paid in its window is a positive record, a late one negative); a default is a
/// negative record that lowers the level at once and refuses the subject's later checks
/// until it is paid.
#[utoipa::path(
    tag = "deposit-free",
    params(("id" = String, Path, description = "The waiver's id")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = NewSettlement,
    responses(
        (status = 200, description = "Settled", body = WaiverOut),
        SignedIn,
        JsonBody,
        NotFound,
        Conflict,
    )
)]
#[post("/credit/waivers/{id}/settlement")]
async fn settle_waiver(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<String>,
    body: Json<NewSettlement>,
) -> Result<HttpResponse, ApiError> {
    let actor = who.0.clone();
    let outcome = body.into_inner().outcome;
    answer_waiver(
        &state,
        path.into_inner(),
        move |ctx, id| waivers::settle(ctx, &actor, id, outcome).map(drop),
        who,
    )
    .await
}
