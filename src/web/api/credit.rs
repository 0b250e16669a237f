//! The credit archive (一人一档, 一企一档): records posted and cancelled by the credit
//! office, a subject's archive as the credit office sees it, and one's own. Answers
//! carry a resident ID only masked.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::db::models::{CreditLevelChangeRow, CreditRecordRow};
use crate::domain::catalogue::{CreditLevel, Dimension, Polarity, SubjectKind};
use crate::domain::credit::{CancelReason, LookPurpose};
use crate::services::credit::{self, Archive, ArchiveRecord, NewCancellation, NewRecord, Recorded};
use crate::services::credit_looks::LookView;
use crate::services::ServiceError;
use crate::web::api::dto::china_time;
use crate::web::api::listing::{ListRequest, PageParams};
use crate::web::auth::Authenticated;
use crate::web::error::responses::{Conflict, JsonBody, NotFound, SignedIn, Unprocessable};
use crate::web::error::ApiError;
use crate::web::json::Json;
use crate::web::AppState;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(post_record)
        .service(post_cancellation)
        .service(my_archive)
        .service(my_looks)
        .service(find_subject)
        .service(get_subject);
}

/// Per dimension, the signed sum of the points of the records in force.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DimensionsOut {
    pub identity: i32,
    pub compliance: i32,
    pub public_interest: i32,
    pub history: i32,
}

/// A subject and where it stands, as its row holds it (never recomputed on read).
#[derive(Serialize, utoipa::ToSchema)]
pub struct SubjectOut {
    /// Absent for a signed-in subject with no record yet.
    pub id: Option<String>,
    pub kind: Option<SubjectKind>,
    /// A resident ID masked (`371602********1234`), or an enterprise's USCC.
    pub masked_id: Option<String>,
    pub name: Option<String>,
    /// The base score plus the points of the records in force, within the bounds.
    pub score: i32,
    pub base_score: i32,
    pub level: CreditLevel,
    /// Since when the subject has had this level.
    pub level_since: Option<String>,
    /// On the serious-dishonesty list (严重失信): the lowest level whatever the score.
    pub serious_dishonesty: bool,
    pub dimensions: DimensionsOut,
}

impl SubjectOut {
    fn of(a: &Archive) -> SubjectOut {
        let s = a.subject.as_ref();
        SubjectOut {
            id: s.map(|s| s.id.clone()),
            kind: s.map(|s| s.kind),
            masked_id: s.map(|s| s.masked_id.clone()),
            name: s.map(|s| s.name.clone()),
            score: a.standing.score,
            base_score: a.base_score,
            level: a.standing.level,
            level_since: s.map(|s| china_time(s.level_since)),
            serious_dishonesty: s.is_some_and(|s| s.serious_dishonesty_count > 0),
            dimensions: DimensionsOut {
                identity: a.dimensions.identity,
                compliance: a.dimensions.compliance,
                public_interest: a.dimensions.public_interest,
                history: a.dimensions.history,
            },
        }
    }
}

/// A record as stored. Its content never changes; `in_force` goes false when it is
/// cancelled or lapses.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RecordOut {
    pub id: String,
    pub subject_id: String,
    pub category: String,
    pub dimension: Dimension,
    pub polarity: Polarity,
    /// 1 to 1000 (0 for a cancelling record, which carries none of its own).
    pub points: i32,
    /// What it adds to the score now: its signed points while in force, else 0.
    pub contribution: i32,
    pub occurred_at: String,
    pub expires_at: Option<String>,
    pub source_department: String,
    pub source_ref: String,
    pub note: Option<String>,
    /// The record this one cancels, for a correction or a credit repair.
    pub cancels: Option<String>,
    pub cancel_reason: Option<CancelReason>,
    pub recorded_at: String,
    pub in_force: bool,
    /// On the serious-dishonesty list while in force.
    pub serious_dishonesty: bool,
}

impl RecordOut {
    fn of(r: &CreditRecordRow) -> RecordOut {
        RecordOut {
            id: r.id.clone(),
            subject_id: r.subject_id.clone(),
            category: r.category.clone(),
            dimension: r.dimension,
            polarity: r.polarity,
            points: r.points,
            contribution: credit::contribution(r),
            occurred_at: china_time(r.occurred_at),
            expires_at: r.expires_at.map(china_time),
            source_department: r.source_department.clone(),
            source_ref: r.source_ref.clone(),
            note: r.note.clone(),
            cancels: r.cancels.clone(),
            cancel_reason: r.cancel_reason,
            recorded_at: china_time(r.recorded_at),
            in_force: r.in_force,
            serious_dishonesty: r.serious_dishonesty,
        }
    }
}

/// A record stored, and its subject after it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RecordedOut {
    pub record: RecordOut,
    pub subject: RecordedSubjectOut,
}

/// The subject as the record left it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RecordedSubjectOut {
    pub id: String,
    pub kind: SubjectKind,
    pub masked_id: String,
    pub name: String,
    pub score: i32,
    pub level: CreditLevel,
    pub serious_dishonesty: bool,
}

impl RecordedOut {
    fn of(r: &Recorded) -> RecordedOut {
        let s = &r.subject;
        RecordedOut {
            record: RecordOut::of(&r.record),
            subject: RecordedSubjectOut {
                id: s.id.clone(),
                kind: s.kind,
                masked_id: s.masked_id.clone(),
                name: s.name.clone(),
                score: s.score,
                level: s.level,
                serious_dishonesty: s.serious_dishonesty_count > 0,
            },
        }
    }
}

/// A record in an archive, with its category's names and what cancelled it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ArchiveRecordOut {
    #[serde(flatten)]
    pub record: RecordOut,
    pub category_name_zh: String,
    pub category_name_en: String,
    /// The record that cancelled this one, if one did.
    pub cancelled_by: Option<String>,
    /// Under a dispute (异议) the credit office has not decided yet.
    pub disputed: bool,
}

impl ArchiveRecordOut {
    fn of(r: &ArchiveRecord) -> ArchiveRecordOut {
        ArchiveRecordOut {
            record: RecordOut::of(&r.record),
            category_name_zh: r.category_name_zh.clone(),
            category_name_en: r.category_name_en.clone(),
            cancelled_by: r.cancelled_by.clone(),
            disputed: r.disputed,
        }
    }
}

/// One record in force and what it adds to (or takes from) the score.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ContributionOut {
    pub record_id: String,
    pub category: String,
    pub category_name_zh: String,
    pub category_name_en: String,
    pub dimension: Dimension,
    /// Signed points.
    pub contribution: i32,
    pub expires_at: Option<String>,
}

/// A level change.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LevelChangeOut {
    pub from_level: CreditLevel,
    pub to_level: CreditLevel,
    pub score: i32,
    /// The record that moved it (a new, cancelling or lapsed record).
    pub cause_record_id: Option<String>,
    pub changed_at: String,
}

impl LevelChangeOut {
    fn of(c: &CreditLevelChangeRow) -> LevelChangeOut {
        LevelChangeOut {
            from_level: c.from_level,
            to_level: c.to_level,
            score: c.score,
            cause_record_id: c.cause_record_id.clone(),
            changed_at: china_time(c.changed_at),
        }
    }
}

/// A subject's archive: where it stands, why (each record in force with its
/// contribution, largest first: the score is `base_score` plus their sum, within the
/// bounds), its records newest first (at most 1000) and its level changes.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ArchiveOut {
    pub subject: SubjectOut,
    pub explanation: Vec<ContributionOut>,
    pub records: Vec<ArchiveRecordOut>,
    pub level_changes: Vec<LevelChangeOut>,
}

impl ArchiveOut {
    fn of(a: &Archive) -> ArchiveOut {
        ArchiveOut {
            subject: SubjectOut::of(a),
            explanation: a
                .explanation()
                .into_iter()
                .map(|(r, contribution)| ContributionOut {
                    record_id: r.record.id.clone(),
                    category: r.record.category.clone(),
                    category_name_zh: r.category_name_zh.clone(),
                    category_name_en: r.category_name_en.clone(),
                    dimension: r.record.dimension,
                    contribution,
                    expires_at: r.record.expires_at.map(china_time),
                })
                .collect(),
            records: a.records.iter().map(ArchiveRecordOut::of).collect(),
            level_changes: a.level_changes.iter().map(LevelChangeOut::of).collect(),
        }
    }
}

/// Adds a record to a subject's archive (the credit office, for now the operator).
/// The subject's scores and level change in the same transaction; a level that moves
/// is recorded, audited and mailed. A `(source_department, source_ref)` already
/// recorded is refused with 409 and stores nothing.
#[utoipa::path(
    tag = "deposit-free",
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = NewRecord,
    responses(
        (status = 201, description = "Recorded", body = RecordedOut),
        SignedIn,
        JsonBody,
        Conflict,
    )
)]
#[post("/credit/records")]
async fn post_record(
    state: web::Data<AppState>,
    who: Authenticated,
    body: Json<NewRecord>,
) -> Result<HttpResponse, ApiError> {
    let ctx = who.context(&state);
    let recorded =
        web::block(move || credit::add_record(&ctx, &who.0, body.into_inner())).await??;
    Ok(HttpResponse::Created().json(RecordedOut::of(&recorded)))
}

/// Cancels a record in force with a new record naming it (a correction or a credit
/// repair, the credit office): the earlier record leaves force and its points come off
/// the subject. A record no longer in force is refused with 409.
#[utoipa::path(
    tag = "deposit-free",
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = NewCancellation,
    responses(
        (status = 201, description = "The cancelling record", body = RecordedOut),
        SignedIn,
        JsonBody,
        NotFound,
        Conflict,
    )
)]
#[post("/credit/cancellations")]
async fn post_cancellation(
    state: web::Data<AppState>,
    who: Authenticated,
    body: Json<NewCancellation>,
) -> Result<HttpResponse, ApiError> {
    let ctx = who.context(&state);
    let recorded =
        web::block(move || credit::cancel_record(&ctx, &who.0, body.into_inner())).await??;
    Ok(HttpResponse::Created().json(RecordedOut::of(&recorded)))
}

/// The signed-in enterprise's (or resident's) own archive. Without any record yet it
/// stands at the base score.
#[utoipa::path(
    tag = "deposit-free",
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The archive", body = ArchiveOut),
        SignedIn,
    )
)]
#[get("/credit/me")]
async fn my_archive(
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let archive = web::block(move || credit::my_archive(&ctx, &who.0)).await??;
    Ok(HttpResponse::Ok().json(ArchiveOut::of(&archive)))
}

/// A look at one's archive by someone else: who (the organization, never the person),
/// why and when.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LookOut {
    /// The organization that looked: the credit office, or an issuer.
    pub organization: String,
    /// `credit_office` (the credit office at its work) or `underwriting` (an issuer
    /// deciding on an application of the subject's).
    pub purpose: LookPurpose,
    /// The application underwritten, for an issuer's look.
    pub application_id: Option<String>,
    pub looked_at: String,
}

impl LookOut {
    fn of(l: LookView) -> LookOut {
        LookOut {
            organization: l.organization_name,
            purpose: l.purpose,
            application_id: l.application_id,
            looked_at: china_time(l.looked_at),
        }
    }
}

/// Who looked at the signed-in enterprise's (or resident's) credit archive ("who looked
/// at my credit", PIPL), newest first: each read by the credit office or by an issuer
/// underwriting one of its applications. One's own reads are not listed.
#[utoipa::path(
    tag = "deposit-free",
    params(PageParams),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "One page of looks, newest first", body = Vec<LookOut>,
            headers(
                ("X-Total-Count" = i64, description = "How many looks there are"),
                ("Link" = String, description = "RFC 8288 links to the first, previous, next and last pages"),
            )),
        SignedIn,
        Unprocessable,
    )
)]
#[get("/credit/me/looks")]
async fn my_looks(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let (page, params) = ListRequest::of(&req)?;
    params.finish(()).map_err(ServiceError::from)?;
    let ctx = state.ctx.clone();
    let window = page.window();
    let listed = web::block(move || credit::my_looks(&ctx, &who.0, window)).await??;
    let rows: Vec<LookOut> = listed.rows.into_iter().map(LookOut::of).collect();
    Ok(page.answer(&rows, listed.total))
}

/// A subject's archive by its id (the credit office). The read is logged as a look the
/// subject is shown.
#[utoipa::path(
    tag = "deposit-free",
    params(("id" = String, Path, description = "The subject's id")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The archive", body = ArchiveOut),
        SignedIn,
        NotFound,
    )
)]
#[get("/credit/subjects/{id}")]
async fn get_subject(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let archive = web::block(move || credit::archive(&ctx, &who.0, &id)).await??;
    Ok(HttpResponse::Ok().json(ArchiveOut::of(&archive)))
}

/// Who to look up: the number goes in the body, never in a URL.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectLookup {
    /// `person` or `enterprise`.
    pub subject_type: String,
    /// A resident ID number or a USCC.
    pub subject_id: String,
}

/// A subject's archive by its resident ID or USCC (the credit office). Changes nothing
/// but the look it logs, which the subject is shown.
#[utoipa::path(
    tag = "deposit-free",
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = SubjectLookup,
    responses(
        (status = 200, description = "The archive", body = ArchiveOut),
        SignedIn,
        JsonBody,
        NotFound,
    )
)]
#[post("/credit/lookup")]
async fn find_subject(
    state: web::Data<AppState>,
    who: Authenticated,
    body: Json<SubjectLookup>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let SubjectLookup {
        subject_type,
        subject_id,
    } = body.into_inner();
    let archive =
        web::block(move || credit::find_archive(&ctx, &who.0, &subject_type, &subject_id))
            .await??;
    Ok(HttpResponse::Ok().json(ArchiveOut::of(&archive)))
}
