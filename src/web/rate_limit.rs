//! Rate limits on the endpoints worth guessing at: sign-in (passwords), public
//! verification (numbers and codes) and credit rights code checks. Per client (see [`super::client_address`]), and per
//! target too: per account for sign-in and per guarantee number for verification, so
//! that guesses spread over many addresses still meet a limit. With the `governor`
//! crate's GCRA limiter; over the limit a client gets 429 with `Retry-After` in the JSON
//! error shape.
//!
//! A limit wraps the resource it protects, on the handler's route attribute:
//!
//! ```text
//! #[post("/auth/login", wrap = "RateLimited(Limit::SignIn)")]
//! ```
//!
//! so it counts requests as the router matched them (after percent-decoding the path),
//! not by comparing raw path strings that `/api/v1/auth/logi%6E` would slip past. A new
//! limit is a [`Limit`] variant, its quota in [`RateLimits`], and that one line. The
//! per-target limits need the request's body, so the handlers check them
//! ([`RateLimits::check_account`], [`RateLimits::check_number`]) once they have read it.

use std::future::{ready, Future, Ready};
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse, ResponseError};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::client_address::client_address;
use super::error::ApiError;
use super::AppState;
use crate::config::Settings;

/// What a limit protects; each has its own quota and its own count per client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Sign-in attempts: guessing passwords.
    SignIn,
    /// Public verification: guessing guarantee numbers and verification codes.
    PublicVerification,
    /// Credit rights code checks by providers: trying codes.
    RightsCodeCheck,
}

/// The limiters, shared by every worker of a process. (Several instances behind a load
/// balancer each keep their own counts: the limit per client is then per instance.)
#[derive(Clone)]
pub struct RateLimits {
    sign_in: Arc<Limiter<IpAddr>>,
    public_verification: Arc<Limiter<IpAddr>>,
    rights_code_check: Arc<Limiter<IpAddr>>,
    per_account: Arc<Limiter<String>>,
    per_number: Arc<Limiter<String>>,
}

/// Per client and minute, and per target and minute; bursts up to the same number.
#[derive(Debug, Clone, Copy)]
pub struct Quotas {
    pub sign_in_per_client: u32,
    pub verify_per_client: u32,
    pub sign_in_per_account: u32,
    pub verify_per_number: u32,
    pub rights_code_per_client: u32,
}

impl RateLimits {
    /// The limits the settings ask for.
    pub fn from_settings(settings: &Settings) -> RateLimits {
        RateLimits::per_minute(Quotas {
            sign_in_per_client: settings.rate_limit_login_per_minute,
            verify_per_client: settings.rate_limit_verify_per_minute,
            sign_in_per_account: settings.rate_limit_login_per_account_per_minute,
            verify_per_number: settings.rate_limit_verify_per_number_per_minute,
            rights_code_per_client: settings.rate_limit_rights_code_per_minute,
        })
    }

    /// Limits per minute; bursts up to the same number.
    pub fn per_minute(quotas: Quotas) -> RateLimits {
        fn limiter<K: Hash + Eq + Clone>(n: u32) -> Arc<Limiter<K>> {
            let quota = Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN));
            Arc::new(Limiter::new(quota, DefaultClock::default()))
        }
        RateLimits {
            sign_in: limiter(quotas.sign_in_per_client),
            public_verification: limiter(quotas.verify_per_client),
            rights_code_check: limiter(quotas.rights_code_per_client),
            per_account: limiter(quotas.sign_in_per_account),
            per_number: limiter(quotas.verify_per_number),
        }
    }

    /// `Err(time to wait)` when `client` is over `limit`.
    pub fn check(&self, limit: Limit, client: IpAddr) -> Result<(), Duration> {
        let client = counted_as(client);
        match limit {
            Limit::SignIn => self.sign_in.check(&client),
            Limit::PublicVerification => self.public_verification.check(&client),
            Limit::RightsCodeCheck => self.rights_code_check.check(&client),
        }
    }

    /// Counts a sign-in attempt for the account named (as typed: the lookup is exact,
    /// so another spelling names another account). `Err(time to wait)` when over.
    pub fn check_account(&self, username: &str) -> Result<(), Duration> {
        self.per_account.check(&bounded(username))
    }

    /// Counts a verification attempt for a guarantee number (as normalized by parsing).
    /// `Err(time to wait)` when over.
    pub fn check_number(&self, number: &str) -> Result<(), Duration> {
        self.per_number.check(&bounded(number))
    }
}

/// A target as counted: long inputs are cut (and are refused later anyway), so nobody
/// makes the table hold megabytes per entry.
fn bounded(target: &str) -> String {
    target.chars().take(64).collect()
}

/// The 429 answer, with `Retry-After` in whole seconds rounded up (retrying earlier
/// would be refused again).
pub fn too_many_requests(wait: Duration) -> HttpResponse {
    let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests; try again in {seconds} seconds"),
    )
    .error_response();
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// How many checks pass between two prunings of a limiter's stale clients.
const PRUNE_EVERY: u64 = 1024;

/// One limit's counts per key (a client, an account, a number). Keys whose allowance is
/// full again are forgotten every [`PRUNE_EVERY`] checks, so the table holds only recent
/// keys however many come and go.
struct Limiter<K: Hash + Eq + Clone, C: Clock = DefaultClock> {
    limiter: RateLimiter<K, DefaultKeyedStateStore<K>, C, NoOpMiddleware<C::Instant>>,
    checks: AtomicU64,
}

impl<K: Hash + Eq + Clone, C: Clock> Limiter<K, C> {
    fn new(quota: Quota, clock: C) -> Limiter<K, C> {
        Limiter {
            limiter: RateLimiter::new(quota, DefaultKeyedStateStore::default(), clock),
            checks: AtomicU64::new(0),
        }
    }

    fn check(&self, key: &K) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.prune();
        }
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }

    fn prune(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    #[cfg(test)]
    fn clients(&self) -> usize {
        self.limiter.len()
    }
}

/// The key a client is counted under: its address, and for IPv6 its /64 network, which
/// is what one subscriber gets and can rotate through at will.
fn counted_as(client: IpAddr) -> IpAddr {
    match client.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !(u128::MAX >> 64)).into()),
        v4 => v4,
    }
}

/// Middleware that applies a [`Limit`] to the resource it wraps.
#[derive(Debug, Clone, Copy)]
pub struct RateLimited(pub Limit);

impl<S, B> Transform<S, ServiceRequest> for RateLimited
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = RateLimitedService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RateLimitedService {
            service,
            limit: self.0,
        }))
    }
}

/// [`RateLimited`] around one resource.
pub struct RateLimitedService<S> {
    service: S,
    limit: Limit,
}

impl<S, B> Service<ServiceRequest> for RateLimitedService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        if let Some(refusal) = refusal(self.limit, &req) {
            let res = req.into_response(refusal).map_into_right_body();
            return Box::pin(ready(Ok(res)));
        }
        let answer = self.service.call(req);
        Box::pin(async move { answer.await.map(ServiceResponse::map_into_left_body) })
    }
}

/// Counts a page handler's request against its client's allowance (the same count as
/// the API's): `Err(time to wait)` when over.
pub fn check_page_request(limit: Limit, req: &actix_web::HttpRequest) -> Result<(), Duration> {
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return Ok(());
    };
    let Some(peer) = req.peer_addr() else {
        return Ok(());
    };
    let client = client_address(peer.ip(), req.headers(), &state.settings.trusted_proxies);
    state.rate_limits.check(limit, client)
}

/// Counts the request against its client's allowance: the 429 answer when over.
fn refusal(limit: Limit, req: &ServiceRequest) -> Option<HttpResponse> {
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        tracing::error!("rate limit without application state");
        return Some(
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            )
            .error_response(),
        );
    };
    // Without a socket peer (requests built in tests) there is nobody to count.
    let peer = req.peer_addr()?;
    let client = client_address(peer.ip(), req.headers(), &state.settings.trusted_proxies);
    let wait = state.rate_limits.check(limit, client).err()?;
    Some(too_many_requests(wait))
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    fn two_per_minute(clock: &FakeRelativeClock) -> Limiter<IpAddr, FakeRelativeClock> {
        Limiter::new(
            Quota::per_minute(NonZeroU32::new(2).expect("two")),
            clock.clone(),
        )
    }

    #[test]
    fn each_client_has_its_own_allowance() {
        let clock = FakeRelativeClock::default();
        let limiter = two_per_minute(&clock);
        assert!(limiter.check(&counted_as(ip("192.0.2.1"))).is_ok());
        assert!(limiter.check(&counted_as(ip("192.0.2.1"))).is_ok());
        let wait = limiter
            .check(&counted_as(ip("192.0.2.1")))
            .expect_err("over the limit");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert!(limiter.check(&counted_as(ip("192.0.2.2"))).is_ok());
        clock.advance(Duration::from_secs(30));
        assert!(limiter.check(&counted_as(ip("192.0.2.1"))).is_ok());
    }

    #[test]
    fn an_ipv6_network_counts_as_one_client() {
        let clock = FakeRelativeClock::default();
        let limiter = two_per_minute(&clock);
        assert!(limiter.check(&counted_as(ip("2001:db8:1:2::1"))).is_ok());
        assert!(limiter.check(&counted_as(ip("2001:db8:1:2::ffff"))).is_ok());
        assert!(limiter
            .check(&counted_as(ip("2001:db8:1:2:abcd::9")))
            .is_err());
        assert!(limiter.check(&counted_as(ip("2001:db8:1:3::1"))).is_ok());
        // IPv4 through an IPv6 socket is the IPv4 address.
        assert!(limiter.check(&counted_as(ip("192.0.2.1"))).is_ok());
        assert!(limiter.check(&counted_as(ip("::ffff:192.0.2.1"))).is_ok());
        assert!(limiter.check(&counted_as(ip("192.0.2.1"))).is_err());
    }

    #[test]
    fn pruning_forgets_clients_whose_allowance_is_full_again() {
        let clock = FakeRelativeClock::default();
        let limiter = two_per_minute(&clock);
        limiter.check(&counted_as(ip("192.0.2.1"))).expect("first");
        // A minute on, the first client is whole again; another has just used all
        // its allowance.
        clock.advance(Duration::from_secs(60));
        limiter.check(&counted_as(ip("192.0.2.2"))).expect("first");
        limiter.check(&counted_as(ip("192.0.2.2"))).expect("second");
        assert_eq!(limiter.clients(), 2);
        limiter.prune();
        assert_eq!(limiter.clients(), 1);
        assert!(
            limiter.check(&counted_as(ip("192.0.2.2"))).is_err(),
            "kept its count"
        );
        assert!(limiter.check(&counted_as(ip("192.0.2.1"))).is_ok());
    }

    #[test]
    fn checks_prune_by_themselves() {
        let clock = FakeRelativeClock::default();
        let limiter = two_per_minute(&clock);
        let many = u32::try_from(PRUNE_EVERY - 1).expect("small");
        for n in 0..many {
            limiter
                .check(&IpAddr::V4((0x0a00_0000 + n).into()))
                .expect("first request");
        }
        assert_eq!(limiter.clients(), PRUNE_EVERY as usize - 1);
        clock.advance(Duration::from_secs(60));
        // This check is the PRUNE_EVERY-th: the stale clients go, the new one stays.
        limiter.check(&counted_as(ip("192.0.2.1"))).expect("first");
        assert_eq!(limiter.clients(), 1);
    }
}
