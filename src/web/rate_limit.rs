//! Rate limits on the endpoints worth guessing at: sign-in (passwords) and public
//! verification (numbers and codes). Per client address, with the `governor` crate's
//! GCRA limiter; over the limit a client gets 429 with `Retry-After`.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::ResponseError;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::error::ApiError;

/// Which limit a request falls under, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Bucket {
    Login,
    Verify,
}

fn bucket_of(method: &Method, path: &str) -> Option<Bucket> {
    if *method != Method::POST {
        return None;
    }
    match path {
        "/api/v1/auth/login" => Some(Bucket::Login),
        "/api/v1/verify" => Some(Bucket::Verify),
        _ => None,
    }
}

/// The limiters, shared by every worker of a process. (Several instances behind a load
/// balancer each keep their own counts: the limit per client is then per instance.)
#[derive(Clone)]
pub struct RateLimits {
    login: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    verify: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl RateLimits {
    /// Limits per client address and minute; bursts up to the same number.
    pub fn per_minute(login: u32, verify: u32) -> RateLimits {
        let quota =
            |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN));
        RateLimits {
            login: Arc::new(RateLimiter::keyed(quota(login))),
            verify: Arc::new(RateLimiter::keyed(quota(verify))),
        }
    }

    /// `Err(seconds to wait)` when the client is over its limit.
    fn check(&self, bucket: Bucket, client: IpAddr) -> Result<(), u64> {
        let limiter = match bucket {
            Bucket::Login => &self.login,
            Bucket::Verify => &self.verify,
        };
        limiter.check_key(&client).map_err(|not_until| {
            not_until
                .wait_time_from(DefaultClock::default().now())
                .as_secs()
                .max(1)
        })
    }
}

/// The middleware: counts only the limited endpoints, answers 429 in the JSON error
/// shape when over.
pub async fn middleware(
    limits: RateLimits,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if let (Some(bucket), Some(peer)) = (bucket_of(req.method(), req.path()), req.peer_addr()) {
        if let Err(wait) = limits.check(bucket, peer.ip()) {
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests; try again in {wait} seconds"),
            )
            .error_response();
            if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&wait.to_string()) {
                response
                    .headers_mut()
                    .insert(actix_web::http::header::RETRY_AFTER, value);
            }
            return Ok(req.into_response(response));
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_boxed_body)
}
