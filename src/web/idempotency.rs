//! The `Idempotency-Key` header on state-changing requests (`POST`, `PUT`, `PATCH`,
//! `DELETE` under `/api/`): a retry returns the first answer (marked
//! `Idempotent-Replayed: true`) and changes nothing twice, even across a crash of the
//! server or a client that hangs up. The rules of a key's life are the service's
//! ([`crate::services::idempotency`]); this middleware:
//!
//! - reads the body once, decoded (gzip, deflate), and hands the handler those bytes
//!   without the `Content-Encoding` that would decode them twice;
//! - fingerprints the request: method, the path as the router matches it (percent-
//!   decoded), the query, the content type and the decoded body;
//! - runs the rest of the request (claim, handler, storing the answer) in a task of its
//!   own that it awaits: actix drops a request's future when its client disconnects,
//!   and the task goes on, so the answer is stored all the same;
//! - hands the handler the claim inside [`Authenticated`], whose
//!   [`context`](Authenticated::context) makes the services' write transactions mark the
//!   key changed before they commit;
//! - stores the handler's answer only when the request changed something, and makes an
//!   issue's answer again when the server died before storing it.
//!
//! For the crash tests, `BAOHAN_TEST_CRASH_AT=after_claim` or `after_change` makes the
//! process abort at that point of a keyed request (just after the key is claimed; just
//! after the handler's change committed, before its answer is stored): the two moments a
//! power cut leaves a key in a state worth testing. Unset, it does nothing.

use std::sync::{Arc, OnceLock};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{
    HeaderValue, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER,
};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpResponse, ResponseError};
use sha2::{Digest, Sha256};

use super::api::dto::IssuedOut;
use super::auth::Authenticated;
use super::error::ApiError;
use super::AppState;
use crate::services::auth::Credential;
use crate::services::idempotency::{self, Answer, Claimed, Entity, Finished, Policy, Scope};
use crate::services::{Actor, Context};

/// The request header.
pub const HEADER: &str = "Idempotency-Key";
/// The response header on an answer given again.
pub const REPLAYED: &str = "Idempotent-Replayed";
/// The environment variable of the crash tests' hook (see the module's description).
pub const CRASH_AT_ENV: &str = "BAOHAN_TEST_CRASH_AT";

/// Methods whose requests honour a key.
pub fn is_state_changing(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

fn valid_key(key: &str) -> bool {
    (1..=200).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

/// Middleware for the API. Requests without the header, requests of other methods or
/// outside the API, and requests nobody signed in sent, pass straight through.
pub async fn middleware(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let key = match req.headers().get(HEADER) {
        Some(value) if is_state_changing(req.method()) && req.path().starts_with("/api/") => {
            value.to_str().unwrap_or_default().to_owned()
        }
        _ => return pass(req, next).await,
    };
    if !valid_key(&key) {
        let error = ApiError::bad_request(format!(
            "{HEADER} must be 1 to 200 visible ASCII characters"
        ));
        return Ok(req.into_response(error.error_response()));
    }
    // A file upload (a bulk import, an attachment) is streamed to disk, never held in
    // memory as a replayed body must be; it needs no key: the same file sent again is
    // recognised by its digest and stores nothing twice.
    if super::http_edges::streams_body(req.method(), req.path()) {
        let error = ApiError::bad_request(format!(
            "{HEADER} is not taken on file uploads: send the same file again without it; \
             a file already imported or attached is recognised and nothing is stored twice"
        ));
        return Ok(req.into_response(error.error_response()));
    }
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(req.into_response(HttpResponse::InternalServerError().finish()));
    };
    // Who is asking: keys are per user. An unauthenticated request runs as it would
    // without the header (and is refused by its handler).
    let (actor, credential) =
        match Authenticated::from_request(req.request(), &mut Payload::None).await {
            Ok(who) => (who.0, who.1),
            Err(_) => return pass(req, next).await,
        };
    // An encoding this build cannot decode is refused here as the handler would refuse
    // it: the header is removed below, after which nobody could tell.
    if let Err(refused) = super::json::check_content_encoding(req.headers()) {
        return Ok(req.into_response(refused.error_response()));
    }
    // The body, decoded, within the body limit. A body that cannot be read claims
    // nothing.
    let mut payload = req.take_payload();
    let body = match web::Bytes::from_request(req.request(), &mut payload).await {
        Ok(body) => body,
        Err(e) => return Ok(req.into_response(body_error(&e).error_response())),
    };
    let request_hash = fingerprint_of(&req, &body);
    // The handler gets the decoded bytes: without this the extractor would decode them
    // a second time and fail.
    req.headers_mut().remove(CONTENT_ENCODING);
    req.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    req.set_payload(Payload::from(body));

    let keyed = Keyed {
        ctx: state.ctx.clone(),
        policy: state.settings.idempotency(),
        actor,
        credential,
        key,
        request_hash,
    };
    match actix_web::rt::spawn(keyed.run(req, next)).await {
        Ok(answer) => answer,
        Err(e) => {
            tracing::error!(error = %e, "a keyed request's task failed");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            )
            .into())
        }
    }
}

async fn pass(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    next.call(req)
        .await
        .map(ServiceResponse::map_into_boxed_body)
}

/// What identifies a request under its key: method, the path as the router matches it
/// (percent-decoded, so `/api/v1/%61pplications` is the same request as
/// `/api/v1/applications`), query, content type (case aside) and decoded body.
pub fn fingerprint(
    method: &str,
    matched_path: &str,
    query: &str,
    content_type: &[u8],
    body: &[u8],
) -> String {
    let mut hasher = Sha256::new();
    for part in [
        method.as_bytes(),
        matched_path.as_bytes(),
        query.as_bytes(),
        &content_type.to_ascii_lowercase(),
    ] {
        hasher.update(part);
        hasher.update([0]);
    }
    hasher.update(body);
    hex::encode(hasher.finalize())
}

fn fingerprint_of(req: &ServiceRequest, body: &[u8]) -> String {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    fingerprint(
        req.method().as_str(),
        req.match_info().as_str(),
        req.query_string(),
        content_type,
        body,
    )
}

/// The body could not be read: too large, or not decodable. In the JSON error shape
/// (this middleware sits outside the one that rewrites errors).
fn body_error(e: &actix_web::Error) -> ApiError {
    let status = e.as_response_error().status_code();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            status,
            "payload_too_large",
            "the request body is larger than the limit",
        )
    } else {
        ApiError::bad_request(format!("could not read the request body: {e}"))
    }
}

/// The process aborts here when the crash tests ask for it.
fn crash_point(point: &str) {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    if AT
        .get_or_init(|| std::env::var(CRASH_AT_ENV).ok())
        .as_deref()
        == Some(point)
    {
        eprintln!("{CRASH_AT_ENV}={point}: aborting");
        std::process::abort();
    }
}

/// A keyed request, read and fingerprinted, about to be claimed and run.
struct Keyed {
    ctx: Context,
    policy: Policy,
    actor: Actor,
    credential: Credential,
    key: String,
    request_hash: String,
}

impl Keyed {
    /// Claims the key and answers: runs the request, replays its answer, or says why not.
    async fn run(
        self,
        req: ServiceRequest,
        next: Next<impl MessageBody + 'static>,
    ) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
        let claim = {
            let (ctx, actor, key, hash, policy) = (
                self.ctx.clone(),
                self.actor.clone(),
                self.key.clone(),
                self.request_hash.clone(),
                self.policy,
            );
            web::block(move || idempotency::claim(&ctx, &actor, &key, &hash, policy)).await
        };
        let claimed = match claim {
            Ok(Ok(claimed)) => claimed,
            Ok(Err(e)) => return Ok(req.into_response(ApiError::from(e).error_response())),
            Err(e) => return Ok(req.into_response(ApiError::from(e).error_response())),
        };
        match claimed {
            Claimed::Run(scope) => self.run_claimed(req, next, scope).await,
            Claimed::Replay(answer) => Ok(req.into_response(replayed(answer))),
            Claimed::InProgress { retry_after } => {
                let seconds = (retry_after.num_milliseconds().max(0) as u64).div_ceil(1000);
                let mut response = ApiError::new(
                    StatusCode::CONFLICT,
                    "idempotency_key_in_progress",
                    format!(
                        "a request with this {HEADER} is in progress; retry in {} s",
                        seconds.max(1)
                    ),
                )
                .error_response();
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
                Ok(req.into_response(response))
            }
            Claimed::Lost { entity } => Ok(req.into_response(self.lost(entity).await)),
        }
    }

    /// Runs the request under its claim and settles the key with its answer.
    async fn run_claimed(
        &self,
        req: ServiceRequest,
        next: Next<impl MessageBody + 'static>,
        scope: Arc<Scope>,
    ) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
        req.extensions_mut().insert(Authenticated(
            self.actor.clone(),
            self.credential.clone(),
            Some(scope.clone()),
        ));
        crash_point("after_claim");
        let res = match next.call(req).await {
            Ok(res) => res,
            Err(e) => {
                // No answer to keep: settle the key as for a 5xx.
                self.finish(&scope, None).await;
                return Err(e);
            }
        };
        crash_point("after_change");
        let status = res.status();
        let (http_req, response) = res.into_parts();
        let (head, body) = response.into_parts();
        let Ok(bytes) = actix_web::body::to_bytes(body).await else {
            self.finish(&scope, None).await;
            let error = ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            );
            return Ok(ServiceResponse::new(http_req, error.error_response()));
        };
        // A 5xx is not an answer worth giving again: had the request changed something,
        // a retry learns that the answer is lost and what to read.
        let answer = (!status.is_server_error()).then(|| Answer {
            status: status.as_u16(),
            content_type: head
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: bytes.to_vec(),
        });
        if self.finish(&scope, answer).await == Some(Finished::TakenOver) {
            let error = ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_taken_over",
                format!(
                    "this request outlived its hold on the {HEADER}, and a retry took the key \
                     over; this run changed nothing: the retry's answer is the one that counts"
                ),
            );
            return Ok(ServiceResponse::new(http_req, error.error_response()));
        }
        Ok(ServiceResponse::new(
            http_req,
            head.set_body(BoxBody::new(bytes)),
        ))
    }

    /// Stores the answer or frees the key. A failure is logged: the key's lease then
    /// runs out and a retry settles it.
    async fn finish(&self, scope: &Arc<Scope>, answer: Option<Answer>) -> Option<Finished> {
        let (ctx, scope) = (self.ctx.clone(), scope.clone());
        match web::block(move || idempotency::finish(&ctx, &scope, answer)).await {
            Ok(Ok(finished)) => Some(finished),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not settle an idempotency key");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not settle an idempotency key");
                None
            }
        }
    }

    /// The request changed something, and its answer was never stored. An issue's
    /// answer is made again (and stored); any other's is lost, and the caller is told
    /// what the request changed.
    async fn lost(&self, entity: Option<Entity>) -> HttpResponse {
        if let Some(entity) = &entity {
            let (ctx, actor, key, entity) = (
                self.ctx.clone(),
                self.actor.clone(),
                self.key.clone(),
                entity.clone(),
            );
            let rebuilt = web::block(move || -> Result<_, crate::services::ServiceError> {
                let Some(issued) = idempotency::rebuild_issue(&ctx, &actor, &entity)? else {
                    return Ok(None);
                };
                let body = serde_json::to_vec(&IssuedOut::from(issued))
                    .map_err(|e| crate::services::ServiceError::Internal(e.into()))?;
                let answer = Answer {
                    status: StatusCode::CREATED.as_u16(),
                    content_type: Some("application/json".into()),
                    body,
                };
                idempotency::store_rebuilt(&ctx, &actor, &key, answer.clone())?;
                Ok(Some(answer))
            })
            .await;
            match rebuilt {
                Ok(Ok(Some(answer))) => return replayed(answer),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => return ApiError::from(e).error_response(),
                Err(e) => return ApiError::from(e).error_response(),
            }
        }
        let (message, details) = match &entity {
            Some(e) => (
                format!(
                    "the request with this {HEADER} was carried out ({} of {} {}), but the \
                     server stopped before its answer was kept; read the {} to see the result",
                    e.action, e.kind, e.id, e.kind
                ),
                serde_json::json!({
                    "entity_kind": e.kind,
                    "entity_id": e.id,
                    "action": e.action,
                }),
            ),
            None => (
                format!(
                    "the request with this {HEADER} was carried out, but the server stopped \
                     before its answer was kept; read the resource it changed to see the result"
                ),
                serde_json::json!({}),
            ),
        };
        let mut error = ApiError::new(StatusCode::CONFLICT, "idempotent_answer_lost", message);
        error.details = Some(details);
        error.error_response()
    }
}

/// A stored answer, given again.
fn replayed(answer: Answer) -> HttpResponse {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = HttpResponse::build(status);
    response.insert_header((REPLAYED, "true"));
    if let Some(content_type) = answer.content_type {
        response.insert_header((CONTENT_TYPE, content_type));
    }
    response.body(answer.body)
}
