//! Release and reduction letters of a guarantee: canonical JSON written by the exchange
//! when the beneficiary's side releases the guarantee or accepts a reduction, each with
//! the exchange's RFC 3161 time-stamp over its bytes. Seen by the guarantee's parties,
//! as the guarantee itself.

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa_actix_web::service_config::ServiceConfig;

use super::reductions::attachment;
use crate::db::models::GuaranteeLetter;
use crate::services::guarantees;
use crate::web::api::dto::{china_time, Binary, SignedDocument};
use crate::web::auth::Authenticated;
use crate::web::error::responses::{NotFound, SignedIn, Unprocessable};
use crate::web::error::ApiError;
use crate::web::AppState;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list).service(document).service(timestamp);
}

/// A letter of a guarantee.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LetterOut {
    id: String,
    #[schema(value_type = crate::domain::letter::LetterKind)]
    kind: String,
    /// `baohan/guarantee-release/v1` or `baohan/guarantee-reduction/v1`.
    schema: String,
    /// Lowercase hex SHA-256 of the letter's bytes.
    document_sha256: String,
    created_at: String,
    /// The letter's bytes (RFC 8785 canonical JSON), served verbatim.
    document_url: String,
    /// The exchange's RFC 3161 time-stamp response over those bytes
    /// (`openssl ts -verify -data letter.json -in letter.tsr -CAfile tsa-root.pem`).
    timestamp_url: String,
}

impl LetterOut {
    fn of(number: &str, l: &GuaranteeLetter) -> LetterOut {
        let base = format!("/api/v1/guarantees/{number}/letters/{}", l.id);
        LetterOut {
            id: l.id.clone(),
            kind: l.kind.to_string(),
            schema: l.kind.schema().to_owned(),
            document_sha256: l.document_sha256.clone(),
            created_at: china_time(l.created_at),
            document_url: format!("{base}/document"),
            timestamp_url: format!("{base}/timestamp"),
        }
    }
}

/// The file name of a letter: the guarantee number, the kind and the letter's id.
fn file_name(number: &str, l: &GuaranteeLetter, extension: &str) -> String {
    let kind = l.kind.as_str();
    let short: String =
        l.id.chars()
            .filter(char::is_ascii_alphanumeric)
            .take(8)
            .collect();
    format!("{number}-{kind}-{short}.{extension}")
}

/// The letters of a guarantee, oldest first.
#[utoipa::path(
    tag = "guarantees",
    params(("number" = String, Path, description = "Guarantee number")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The release and reduction letters", body = Vec<LetterOut>),
        SignedIn,
        NotFound,
        Unprocessable,
    )
)]
#[get("/guarantees/{number}/letters")]
async fn list(
    state: web::Data<AppState>,
    who: Authenticated,
    number: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let (view, rows) =
        web::block(move || guarantees::list_letters(&ctx, &who.0, &number)).await??;
    let number = &view.guarantee.number;
    let out: Vec<LetterOut> = rows.iter().map(|l| LetterOut::of(number, l)).collect();
    Ok(HttpResponse::Ok().json(out))
}

async fn load(
    state: &web::Data<AppState>,
    who: Authenticated,
    path: (String, String),
) -> Result<(String, GuaranteeLetter), ApiError> {
    let ctx = state.ctx.clone();
    let (number, id) = path;
    let letter =
        web::block(move || guarantees::get_letter(&ctx, &who.0, &number, &id).map(|l| (number, l)))
            .await??;
    Ok(letter)
}

/// The letter's bytes, verbatim: hash them as received, do not re-serialize.
#[utoipa::path(
    tag = "guarantees",
    params(
        ("number" = String, Path, description = "Guarantee number"),
        ("id" = String, Path, description = "Letter id"),
    ),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The letter (RFC 8785 canonical JSON)", content_type = "application/json", body = SignedDocument),
        SignedIn,
        NotFound,
        Unprocessable,
    )
)]
#[get("/guarantees/{number}/letters/{id}/document")]
async fn document(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (number, letter) = load(&state, who, path.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(attachment(&file_name(&number, &letter, "json")))
        .body(letter.document))
}

/// The exchange's RFC 3161 time-stamp response (status granted) over the letter's
/// bytes: its token, a CMS SignedData by the exchange's time-stamping authority, binds
/// the letter's SHA-256 to the exchange's time.
#[utoipa::path(
    tag = "guarantees",
    params(
        ("number" = String, Path, description = "Guarantee number"),
        ("id" = String, Path, description = "Letter id"),
    ),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "TimeStampResp (DER)", content_type = "application/timestamp-reply", body = Binary),
        SignedIn,
        NotFound,
        Unprocessable,
    )
)]
#[get("/guarantees/{number}/letters/{id}/timestamp")]
async fn timestamp(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (number, letter) = load(&state, who, path.into_inner()).await?;
    let reply = guarantees::timestamp_response(&letter.timestamp_token)?;
    Ok(HttpResponse::Ok()
        .content_type("application/timestamp-reply")
        .insert_header(attachment(&file_name(&number, &letter, "tsr")))
        .body(reply))
}
