//! The webhook worker: a Tokio task on each instance that claims due events one at a
//! time, delivers each (signed) to its organization's endpoint, logs the try, and on a
//! failure schedules the next try with exponential backoff, up to the last.
//!
//! Claims work as the mail outbox's (`mail::outbox::claim`): one conditional UPDATE
//! takes an event for a lease longer than any delivery can take, so instances on one
//! database never send an event at the same time, and an instance that dies mid-way
//! leaves the event to another once the lease runs out. Delivery is therefore at least
//! once: an event the receiver took but whose outcome was never recorded goes again, with
//! the same id and body.

use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use tokio::sync::watch;

use super::http::{Client, Outcome};
use super::{secret, signature, Attempt, Endpoint, Event, EventStatus};
use crate::db::schema::{webhook_attempts, webhook_endpoints, webhook_events};
use crate::mail::worker::{backoff, later};
use crate::services::{Context, ServiceError};

/// How the worker paces itself.
#[derive(Debug, Clone)]
pub struct Pacing {
    pub poll_interval: Duration,
    pub retry_base: Duration,
    pub retry_cap: Duration,
    pub max_attempts: u32,
    /// One delivery's limit, connecting and answering together.
    pub timeout: Duration,
}

impl Pacing {
    pub fn from_settings(settings: &crate::config::Settings) -> Pacing {
        Pacing {
            poll_interval: Duration::from_millis(settings.webhook_poll_interval_ms),
            retry_base: Duration::from_millis(settings.webhook_retry_base_ms),
            retry_cap: Duration::from_secs(3600),
            max_attempts: settings.webhook_max_attempts,
            timeout: Duration::from_millis(settings.webhook_timeout_ms),
        }
    }

    /// How long a claim holds: well past the longest delivery, so that a live worker
    /// never loses its event to another.
    fn lease(&self) -> Duration {
        self.timeout * 3 + Duration::from_secs(5)
    }
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundReport {
    pub delivered: usize,
    pub deferred: usize,
    pub failed: usize,
}

/// Delivers the events of the database `ctx` works on.
pub struct Worker {
    ctx: Context,
    client: Client,
    pacing: Pacing,
}

/// How many candidates one look fetches.
const BATCH: i64 = 32;

/// The longest error text kept in the log.
const ERROR_CHARS: usize = 300;

impl Worker {
    pub fn new(ctx: Context, pacing: Pacing, allow_private: bool) -> Result<Worker, String> {
        let client = Client::new(pacing.timeout, allow_private)?;
        Ok(Worker {
            ctx,
            client,
            pacing,
        })
    }

    /// Works until `stop` turns true (or its sender is dropped), finishing the
    /// delivery under way.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                break;
            }
            if let Err(e) = self.round(&|| *stop.borrow()).await {
                tracing::warn!(error = %e, "webhook worker round failed; will retry");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.pacing.poll_interval) => {}
                changed = stop.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
    }

    /// Delivers everything due now, then returns. For tests and tools.
    pub async fn run_once(&self) -> Result<RoundReport, ServiceError> {
        self.round(&|| false).await
    }

    async fn round(
        &self,
        stopping: &(dyn Fn() -> bool + Sync),
    ) -> Result<RoundReport, ServiceError> {
        let mut report = RoundReport::default();
        // Each event is looked at once a round: one that fails is due again only after
        // its backoff, which may be zero in tests.
        let mut seen = std::collections::HashSet::new();
        loop {
            let at = self.ctx.now();
            let due = self.db(move |c| due_ids(c, at)).await?;
            let fresh: Vec<String> = due.into_iter().filter(|id| !seen.contains(id)).collect();
            if fresh.is_empty() {
                return Ok(report);
            }
            for id in fresh {
                if stopping() {
                    return Ok(report);
                }
                seen.insert(id.clone());
                let at = self.ctx.now();
                let until = later(at, self.pacing.lease());
                let claimed = self.db(move |c| claim(c, &id, at, until)).await?;
                if let Some((event, endpoint)) = claimed {
                    self.deliver(event, endpoint, until, &mut report).await?;
                }
            }
        }
    }

    async fn deliver(
        &self,
        event: Event,
        endpoint: Option<Endpoint>,
        claimed_until: NaiveDateTime,
        report: &mut RoundReport,
    ) -> Result<(), ServiceError> {
        let started = Instant::now();
        let attempted_at = self.ctx.now();
        let (url, outcome) = match endpoint {
            None => (
                String::new(),
                Outcome {
                    status: None,
                    error: Some("the organization has no webhook endpoint".into()),
                },
            ),
            Some(endpoint) => {
                let secret = secret(
                    &self.ctx,
                    &endpoint.organization_id,
                    endpoint.secret_version,
                );
                let t = attempted_at.and_utc().timestamp();
                let signed = signature::sign(&secret, t, event.body.as_bytes());
                let client = self.client.clone();
                let (id, kind, body, url) = (
                    event.id.clone(),
                    event.kind.as_str(),
                    event.body.clone(),
                    endpoint.url.clone(),
                );
                let outcome = tokio::task::spawn_blocking(move || {
                    client.post(
                        &url,
                        &[
                            (signature::HEADER, &signed),
                            ("Baohan-Event-Id", &id),
                            ("Baohan-Event-Type", kind),
                        ],
                        body.as_bytes(),
                    )
                })
                .await
                .unwrap_or_else(|e| Outcome {
                    status: None,
                    error: Some(format!("delivery task: {e}")),
                });
                (endpoint.url, outcome)
            }
        };
        let failures = u32::try_from(event.attempts).unwrap_or(0).saturating_add(1);
        let next = if outcome.delivered() {
            report.delivered += 1;
            Next::Delivered
        } else if failures >= self.pacing.max_attempts {
            report.failed += 1;
            Next::GiveUp
        } else {
            report.deferred += 1;
            let wait = backoff(self.pacing.retry_base, self.pacing.retry_cap, failures);
            Next::RetryAt(later(self.ctx.now(), wait))
        };
        tracing::info!(event_id = %event.id, kind = %event.kind, status = ?outcome.status, error = ?outcome.error, ?next, "webhook delivery");
        let attempt = Attempt {
            id: crate::services::new_id(),
            event_id: event.id.clone(),
            attempted_at,
            url,
            status_code: outcome.status.map(i32::from),
            error: outcome.error.map(|e| e.chars().take(ERROR_CHARS).collect()),
            duration_ms: i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX),
        };
        let ctx = self.ctx.clone();
        let done_at = self.ctx.now();
        tokio::task::spawn_blocking(move || {
            let mut conn = ctx.conn()?;
            ctx.write_tx(&mut conn, |c| {
                record(c, &attempt, claimed_until, next, done_at)
            })
        })
        .await
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("webhook record task: {e}")))?
    }

    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut crate::db::DbConnection) -> Result<T, ServiceError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let ctx = self.ctx.clone();
        tokio::task::spawn_blocking(move || f(&mut *ctx.conn()?))
            .await
            .map_err(|e| ServiceError::Internal(anyhow::anyhow!("webhook task: {e}")))?
    }
}

/// What follows a try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Delivered,
    RetryAt(NaiveDateTime),
    GiveUp,
}

/// Ids of events due at `now` and not held by a live claim, oldest due first.
fn due_ids(
    c: &mut crate::db::DbConnection,
    now: NaiveDateTime,
) -> Result<Vec<String>, ServiceError> {
    Ok(webhook_events::table
        .filter(webhook_events::status.eq(EventStatus::Pending))
        .filter(webhook_events::next_attempt_at.le(now))
        .filter(
            webhook_events::locked_until
                .is_null()
                .or(webhook_events::locked_until.lt(now)),
        )
        .order(webhook_events::next_attempt_at.asc())
        .limit(BATCH)
        .select(webhook_events::id)
        .load(c)?)
}

/// Claims event `id` until `until` (one conditional UPDATE repeating the "due and not
/// held" test: ours iff it changed one row), with its organization's endpoint as it is
/// now.
fn claim(
    c: &mut crate::db::DbConnection,
    id: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> Result<Option<(Event, Option<Endpoint>)>, ServiceError> {
    let changed = diesel::update(
        webhook_events::table
            .filter(webhook_events::id.eq(id))
            .filter(webhook_events::status.eq(EventStatus::Pending))
            .filter(webhook_events::next_attempt_at.le(now))
            .filter(
                webhook_events::locked_until
                    .is_null()
                    .or(webhook_events::locked_until.lt(now)),
            ),
    )
    .set(webhook_events::locked_until.eq(Some(until)))
    .execute(c)?;
    if changed != 1 {
        return Ok(None);
    }
    let event: Event = webhook_events::table
        .find(id)
        .select(Event::as_select())
        .first(c)?;
    let endpoint = webhook_endpoints::table
        .find(&event.organization_id)
        .select(Endpoint::as_select())
        .first(c)
        .optional()?;
    Ok(Some((event, endpoint)))
}

/// Logs a try and records what follows, if the claim is still the worker's (a redelivery
/// by hand meanwhile has released it: the log keeps the try, the event its new state).
fn record(
    c: &mut crate::db::DbConnection,
    attempt: &Attempt,
    claimed_until: NaiveDateTime,
    next: Next,
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    diesel::insert_into(webhook_attempts::table)
        .values(attempt)
        .execute(c)?;
    let ours = webhook_events::table
        .filter(webhook_events::id.eq(&attempt.event_id))
        .filter(webhook_events::status.eq(EventStatus::Pending))
        .filter(webhook_events::locked_until.eq(claimed_until));
    let released = webhook_events::locked_until.eq(None::<NaiveDateTime>);
    match next {
        Next::Delivered => diesel::update(ours)
            .set((
                webhook_events::status.eq(EventStatus::Delivered),
                webhook_events::delivered_at.eq(Some(at)),
                webhook_events::attempts.eq(webhook_events::attempts + 1),
                webhook_events::last_error.eq(None::<String>),
                released,
            ))
            .execute(c)?,
        Next::RetryAt(when) => diesel::update(ours)
            .set((
                webhook_events::attempts.eq(webhook_events::attempts + 1),
                webhook_events::last_error.eq(attempt.error.clone()),
                webhook_events::next_attempt_at.eq(when),
                released,
            ))
            .execute(c)?,
        Next::GiveUp => diesel::update(ours)
            .set((
                webhook_events::status.eq(EventStatus::Failed),
                webhook_events::attempts.eq(webhook_events::attempts + 1),
                webhook_events::last_error.eq(attempt.error.clone()),
                released,
            ))
            .execute(c)?,
    };
    Ok(())
}
