//! The `Idempotency-Key` header on state-changing requests: a retry returns the first
//! answer (marked `Idempotent-Replayed: true`) and changes nothing twice.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, CONTENT_TYPE};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpResponse, ResponseError};
use sha2::{Digest, Sha256};

use super::auth::Authenticated;
use super::error::ApiError;
use super::AppState;
use crate::services::idempotency::{self, Claimed};

pub const HEADER: &str = "Idempotency-Key";

fn valid_key(key: &str) -> bool {
    (1..=200).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

/// Middleware for the API. Requests without the header, and anything but a POST to the
/// API, pass straight through.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let key = match req.headers().get(HEADER) {
        Some(value) if req.method() == Method::POST && req.path().starts_with("/api/") => {
            value.to_str().unwrap_or_default().to_owned()
        }
        _ => {
            return next
                .call(req)
                .await
                .map(ServiceResponse::map_into_boxed_body)
        }
    };
    if !valid_key(&key) {
        let error = ApiError::bad_request(format!(
            "{HEADER} must be 1 to 200 visible ASCII characters"
        ));
        return Ok(req.into_response(error.error_response()));
    }
    let (http_req, mut payload) = req.into_parts();
    // Who is asking: keys are per user. An unauthenticated request runs as it would
    // without the header (and is refused by its handler).
    let actor = match Authenticated::from_request(&http_req, &mut Payload::None).await {
        Ok(who) => {
            // The handler's extractor finds it here instead of asking the database again.
            actix_web::HttpMessage::extensions_mut(&http_req).insert(who.clone());
            who.0
        }
        Err(_) => {
            let req = ServiceRequest::from_parts(http_req, payload);
            return next
                .call(req)
                .await
                .map(ServiceResponse::map_into_boxed_body);
        }
    };
    let body = match web::Bytes::from_request(&http_req, &mut payload).await {
        Ok(body) => body,
        Err(e) => return Ok(ServiceResponse::new(http_req, e.error_response())),
    };
    let mut hasher = Sha256::new();
    hasher.update(http_req.method().as_str());
    hasher.update([0]);
    hasher.update(http_req.path());
    hasher.update([0]);
    hasher.update(&body);
    let request_hash = hex::encode(hasher.finalize());

    let Some(state) = http_req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(ServiceResponse::new(
            http_req,
            HttpResponse::InternalServerError().finish(),
        ));
    };
    let claim = {
        let (ctx, actor, key, hash) = (state.ctx.clone(), actor.clone(), key.clone(), request_hash);
        web::block(move || idempotency::claim(&ctx, &actor, &key, &hash)).await
    };
    match claim {
        Ok(Ok(Claimed::Run)) => {}
        Ok(Ok(Claimed::Replay { status, body })) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let response = HttpResponse::build(status)
                .content_type("application/json")
                .insert_header(("Idempotent-Replayed", "true"))
                .body(body);
            return Ok(ServiceResponse::new(http_req, response));
        }
        Ok(Err(e)) => {
            return Ok(ServiceResponse::new(
                http_req,
                ApiError::from(e).error_response(),
            ))
        }
        Err(e) => {
            return Ok(ServiceResponse::new(
                http_req,
                ApiError::from(e).error_response(),
            ))
        }
    }

    let (_, mut replay) = actix_http::h1::Payload::create(true);
    replay.unread_data(body);
    let req = ServiceRequest::from_parts(http_req, Payload::from(replay));
    let res = next.call(req).await?;
    let status = res.status();
    let is_json = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let (http_req, response) = res.into_parts();
    let (head, body) = response.into_parts();
    let bytes = actix_web::body::to_bytes(body).await.map_err(|_| {
        actix_web::error::ErrorInternalServerError("response body could not be read")
    })?;
    let ctx = state.ctx.clone();
    let record = if status.is_server_error() || !is_json {
        // Nothing to replay: a server error changed nothing, so the key is freed.
        web::block(move || idempotency::abandon(&ctx, &actor, &key)).await
    } else {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        web::block(move || idempotency::complete(&ctx, &actor, &key, status.as_u16(), &text)).await
    };
    match record {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "could not record an idempotent answer"),
        Err(e) => tracing::warn!(error = %e, "could not record an idempotent answer"),
    }
    let response = head.set_body(BoxBody::new(bytes));
    Ok(ServiceResponse::new(http_req, response))
}
