//! The deposit-free city's configured lists: the matters catalogue (管理清单) and the
//! record categories, read by anyone and edited by the credit office.

use actix_web::{get, put, web, HttpResponse};
use serde::Serialize;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::domain::catalogue::{CategoryFields, MatterFields};
use crate::services::catalogue::{self, CategoryEntry, MatterEntry, Version, VersionSource};
use crate::web::api::dto::china_time;
use crate::web::auth::Authenticated;
use crate::web::error::responses::{JsonBody, NotFound, SignedIn};
use crate::web::error::ApiError;
use crate::web::json::Json;
use crate::web::AppState;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_matters)
        .service(get_matter)
        .service(update_matter)
        .service(list_categories)
        .service(get_category)
        .service(update_category);
}

/// A matter as it stands: its code, version and fields (amounts decimal yuan). The
/// fields are what `PUT /matters/{code}` takes back.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MatterOut {
    pub code: String,
    /// The version now in force (1: as seeded from the data file).
    pub version: i32,
    pub updated_at: String,
    pub fields: MatterFields,
}

impl MatterOut {
    fn of(e: &MatterEntry) -> MatterOut {
        MatterOut {
            code: e.code.clone(),
            version: e.version,
            updated_at: china_time(e.updated_at),
            fields: e.matter.fields(),
        }
    }
}

/// One version of a matter's history.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MatterVersionOut {
    pub version: i32,
    pub changed_at: String,
    pub source: VersionSource,
    pub content: MatterFields,
}

/// A matter with its history, newest version first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MatterWithHistoryOut {
    pub matter: MatterOut,
    pub history: Vec<MatterVersionOut>,
}

fn history_out(history: Vec<Version<MatterFields>>) -> Vec<MatterVersionOut> {
    history
        .into_iter()
        .map(|v| MatterVersionOut {
            version: v.version,
            changed_at: china_time(v.changed_at),
            source: v.source,
            content: v.content,
        })
        .collect()
}

/// A record category as it stands; its fields are what
/// `PUT /record-categories/{code}` takes back.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RecordCategoryOut {
    pub code: String,
    pub version: i32,
    pub updated_at: String,
    pub fields: CategoryFields,
}

impl RecordCategoryOut {
    fn of(e: &CategoryEntry) -> RecordCategoryOut {
        RecordCategoryOut {
            code: e.code.clone(),
            version: e.version,
            updated_at: china_time(e.updated_at),
            fields: e.category.fields(),
        }
    }
}

/// The matters catalogue (管理清单), in its order (public).
#[utoipa::path(
    tag = "deposit-free",
    responses((status = 200, description = "Every matter", body = Vec<MatterOut>))
)]
#[get("/matters")]
async fn list_matters(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let matters = web::block(move || catalogue::list_matters(&ctx)).await??;
    Ok(HttpResponse::Ok().json(matters.iter().map(MatterOut::of).collect::<Vec<_>>()))
}

/// One matter with its history, newest version first (public).
#[utoipa::path(
    tag = "deposit-free",
    params(("code" = String, Path, description = "The matter's code, e.g. hospital_admission")),
    responses(
        (status = 200, description = "The matter and its versions", body = MatterWithHistoryOut),
        NotFound,
    )
)]
#[get("/matters/{code}")]
async fn get_matter(
    state: web::Data<AppState>,
    code: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let (matter, history) = web::block(move || catalogue::matter(&ctx, &code)).await??;
    Ok(HttpResponse::Ok().json(MatterWithHistoryOut {
        matter: MatterOut::of(&matter),
        history: history_out(history),
    }))
}

/// Changes a matter (the credit office): every field is sent; the change is its next
/// version, audited. The write-off goes planned → in_progress → done one step at a time
/// and never back; done needs its date and evidence. Sending what is in force already
/// adds no version.
#[utoipa::path(
    tag = "deposit-free",
    params(("code" = String, Path, description = "The matter's code")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = MatterFields,
    responses(
        (status = 200, description = "The matter as it now stands", body = MatterOut),
        SignedIn,
        NotFound,
        JsonBody,
    )
)]
#[put("/matters/{code}")]
async fn update_matter(
    state: web::Data<AppState>,
    who: Authenticated,
    code: web::Path<String>,
    body: Json<MatterFields>,
) -> Result<HttpResponse, ApiError> {
    let fields = body.into_inner();
    let ctx = who.context(&state);
    let updated =
        web::block(move || catalogue::update_matter(&ctx, &who.0, &code, fields)).await??;
    Ok(HttpResponse::Ok().json(MatterOut::of(&updated)))
}

/// The record categories a department may send into a credit archive (public).
#[utoipa::path(
    tag = "deposit-free",
    responses((status = 200, description = "Every category", body = Vec<RecordCategoryOut>))
)]
#[get("/record-categories")]
async fn list_categories(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let categories = web::block(move || catalogue::list_categories(&ctx)).await??;
    Ok(HttpResponse::Ok().json(
        categories
            .iter()
            .map(RecordCategoryOut::of)
            .collect::<Vec<_>>(),
    ))
}

/// One version of a record category's history.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CategoryVersionOut {
    pub version: i32,
    pub changed_at: String,
    pub source: VersionSource,
    pub content: CategoryFields,
}

/// One record category's history, newest version first (public); the first is the one
/// in force.
#[utoipa::path(
    tag = "deposit-free",
    params(("code" = String, Path, description = "The category's code, e.g. bid_bond_claim_paid")),
    responses(
        (status = 200, description = "The category's versions", body = Vec<CategoryVersionOut>),
        NotFound,
    )
)]
#[get("/record-categories/{code}")]
async fn get_category(
    state: web::Data<AppState>,
    code: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let history = web::block(move || catalogue::category_history(&ctx, &code)).await??;
    Ok(HttpResponse::Ok().json(
        history
            .into_iter()
            .map(|v| CategoryVersionOut {
                version: v.version,
                changed_at: china_time(v.changed_at),
                source: v.source,
                content: v.content,
            })
            .collect::<Vec<_>>(),
    ))
}

/// Changes a record category (the credit office): its next version, audited. Records
/// already written keep their own polarity and points.
#[utoipa::path(
    tag = "deposit-free",
    params(("code" = String, Path, description = "The category's code")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = CategoryFields,
    responses(
        (status = 200, description = "The category as it now stands", body = RecordCategoryOut),
        SignedIn,
        NotFound,
        JsonBody,
    )
)]
#[put("/record-categories/{code}")]
async fn update_category(
    state: web::Data<AppState>,
    who: Authenticated,
    code: web::Path<String>,
    body: Json<CategoryFields>,
) -> Result<HttpResponse, ApiError> {
    let fields = body.into_inner();
    let ctx = who.context(&state);
    let updated =
        web::block(move || catalogue::update_category(&ctx, &who.0, &code, fields)).await??;
    Ok(HttpResponse::Ok().json(RecordCategoryOut::of(&updated)))
}
