//! The outbox worker: a Tokio task that claims due mails one at a time, sends them, and
//! records the outcome, retrying with exponential backoff until the last attempt.
//!
//! Delivery is at least once. The normal path sends each mail once: a mail is claimed
//! by one conditional UPDATE (see [`outbox::claim`]) for a short lease that the claimant
//! renews while its send runs, and only the claimant sends it. A crash (or a lost
//! database) between the SMTP server accepting a mail and the row being marked sent
//! means the lease runs out, soon, since nobody renews it, and the mail goes again: at
//! most one duplicate per such crash, with the same Message-ID so that mail clients can
//! fold it away. The opposite order (mark, then
//! send) would lose mail instead, which is worse for notices about guarantees.

use std::time::Duration;

use chrono::NaiveDateTime;
use lettre::message::Mailbox;
use secrecy::SecretString;
use tokio::sync::watch;

use super::outbox::{self, AfterFailure, OutboxMail};
use super::transport::{self, Transport, TransportError, SMTP_TIMEOUT};
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::DbPool;

/// How the worker paces itself. Tests shorten these so retries happen in seconds.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Sleep between looks at the outbox when nothing is due.
    pub poll_interval: Duration,
    /// Wait before the first retry; doubled after each further failure.
    pub retry_base: Duration,
    /// The longest wait between two tries.
    pub retry_cap: Duration,
    /// Tries before the mail is marked failed.
    pub max_attempts: u32,
    /// How long a claim holds a mail against other workers; renewed every third of it
    /// while the send runs, so a send may take longer. A dead instance's mail waits this
    /// long before another instance sends it.
    pub lease: Duration,
}

/// A send that has not finished by then is abandoned and counted as a failed try.
pub const SEND_DEADLINE: Duration = Duration::from_secs(4 * SMTP_TIMEOUT.as_secs());

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            poll_interval: Duration::from_secs(5),
            retry_base: Duration::from_secs(60),
            retry_cap: Duration::from_secs(3600),
            max_attempts: 8,
            lease: Duration::from_secs(30),
        }
    }
}

impl WorkerConfig {
    /// The defaults with the `mail_*` settings applied.
    pub fn from_settings(settings: &Settings) -> WorkerConfig {
        WorkerConfig {
            poll_interval: Duration::from_millis(settings.mail_poll_interval_ms),
            retry_base: Duration::from_millis(settings.mail_retry_base_ms),
            max_attempts: settings.mail_max_attempts,
            lease: Duration::from_secs(settings.mail_lease_seconds.into()),
            ..WorkerConfig::default()
        }
    }

    /// The wait after the `failures`-th failed try: base, 2·base, 4·base, ... capped.
    pub fn backoff(&self, failures: u32) -> Duration {
        backoff(self.retry_base, self.retry_cap, failures)
    }
}

/// Why a round of the worker stopped early.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("mail worker: database: {0}")]
    Database(String),
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundReport {
    pub sent: usize,
    /// Tries that failed and will be retried.
    pub deferred: usize,
    /// Mails given up on in this round.
    pub failed: usize,
}

/// Sends the outbox.
pub struct Worker {
    pool: DbPool,
    transport: Transport,
    from: Mailbox,
    config: WorkerConfig,
    /// Scrubbed out of stored errors, should a server ever echo it.
    smtp_password: Option<SecretString>,
    /// The exchange's clock: mail is due by the same "now" that queued it.
    clock: Clock,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("transport", &self.transport)
            .field("from", &self.from.to_string())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// How many candidates one look at the outbox fetches.
const BATCH: i64 = 32;

impl Worker {
    /// A worker on the configured transport, pace and sender. Must be called inside a
    /// Tokio runtime when the transport is SMTP.
    pub fn from_settings(pool: DbPool, settings: &Settings) -> Result<Worker, TransportError> {
        let transport = Transport::from_settings(settings)?;
        // Settings::load has checked the address; a hand-made Settings may not have.
        let from = settings
            .mail_from
            .parse::<Mailbox>()
            .map_err(|e| TransportError::Sender(e.to_string()))?;
        let mut worker = Worker::new(pool, transport, from, WorkerConfig::from_settings(settings));
        worker.smtp_password = settings.smtp_password.clone();
        Ok(worker)
    }

    /// A worker on the given transport.
    pub fn new(pool: DbPool, transport: Transport, from: Mailbox, config: WorkerConfig) -> Worker {
        Worker {
            pool,
            transport,
            from,
            config,
            smtp_password: None,
            clock: Clock::default(),
        }
    }

    /// Runs the worker on the exchange's clock (the one the services use).
    pub fn with_clock(mut self, clock: Clock) -> Worker {
        self.clock = clock;
        self
    }

    /// Works until `stop` turns true (or its sender is dropped). A send in progress is
    /// finished first, so that stopping never leaves a mail sent but not marked.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        tracing::info!(transport = ?self.transport, "mail worker started");
        loop {
            let stopping = || *stop.borrow();
            if stopping() {
                break;
            }
            match self.round(&stopping).await {
                Ok(report) if report != RoundReport::default() => {
                    tracing::debug!(?report, "mail worker round");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "mail worker round failed; will retry"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.poll_interval) => {}
                changed = stop.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
        tracing::info!("mail worker stopped");
    }

    /// Sends everything due now, then returns. For tests and tools.
    pub async fn run_once(&self) -> Result<RoundReport, WorkerError> {
        self.round(&|| false).await
    }

    async fn round(
        &self,
        stopping: &(dyn Fn() -> bool + Sync),
    ) -> Result<RoundReport, WorkerError> {
        let mut report = RoundReport::default();
        loop {
            let at = self.clock.now();
            let candidates = self.db(move |c| outbox::due_ids(c, at, BATCH)).await?;
            if candidates.is_empty() {
                return Ok(report);
            }
            for id in candidates {
                if stopping() {
                    return Ok(report);
                }
                let at = self.clock.now();
                let until = later(at, self.config.lease);
                let claimed = self.db(move |c| outbox::claim(c, &id, at, until)).await?;
                // Someone else claimed it first, or it changed state: not ours.
                if let Some(mail) = claimed {
                    self.deliver(mail, until, &mut report).await?;
                }
            }
        }
    }

    /// Sends one mail claimed until `claimed_until`, renewing the claim while the send
    /// runs, and records the outcome.
    async fn deliver(
        &self,
        mail: OutboxMail,
        claimed_until: NaiveDateTime,
        report: &mut RoundReport,
    ) -> Result<(), WorkerError> {
        let outcome = match transport::build_message(&self.from, &mail) {
            Ok(message) => {
                let send = tokio::time::timeout(SEND_DEADLINE, self.transport.send(message));
                tokio::select! {
                    sent = send => match sent {
                        Ok(result) => result,
                        Err(_) => Err(transport::SendError {
                            message: format!("no answer within {} s", SEND_DEADLINE.as_secs()),
                            permanent: false,
                        }),
                    },
                    // Renewing never ends by itself; the send does.
                    () = self.keep_claimed(mail.id.clone(), claimed_until) => unreachable!(),
                }
            }
            Err(e) => Err(e),
        };
        let id = mail.id.clone();
        match outcome {
            Ok(()) => {
                self.record_sent(id.clone()).await?;
                tracing::info!(mail_id = %id, "mail sent");
                report.sent += 1;
            }
            Err(e) => {
                let failures = u32::try_from(mail.attempts).unwrap_or(0).saturating_add(1);
                let after = if e.permanent || failures >= self.config.max_attempts {
                    AfterFailure::GiveUp
                } else {
                    AfterFailure::RetryAt(later(self.clock.now(), self.config.backoff(failures)))
                };
                let error = transport::redact(&e.message, self.smtp_password.as_ref());
                match after {
                    AfterFailure::GiveUp => {
                        tracing::warn!(mail_id = %id, attempts = failures, error = %error, "mail failed; giving up");
                        report.failed += 1;
                    }
                    AfterFailure::RetryAt(at) => {
                        tracing::info!(mail_id = %id, attempts = failures, error = %error, retry_at = %at, "mail not sent; will retry");
                        report.deferred += 1;
                    }
                }
                self.db(move |c| outbox::mark_attempt_failed(c, &id, &error, after))
                    .await?;
            }
        }
        Ok(())
    }

    /// Renews the claim on mail `id` every third of the lease, for as long as it is
    /// polled (the send it runs beside ends it). A renewal that finds the claim gone
    /// (this worker stalled past its lease and another took the mail) is logged: the
    /// send cannot be called back, so the mail may go twice, as after a crash.
    async fn keep_claimed(&self, id: String, mut until: NaiveDateTime) {
        let every = self.config.lease / 3;
        loop {
            tokio::time::sleep(every).await;
            let next = later(self.clock.now(), self.config.lease);
            let (id_, held) = (id.clone(), until);
            match self.db(move |c| outbox::renew(c, &id_, held, next)).await {
                Ok(true) => until = next,
                Ok(false) => {
                    tracing::warn!(mail_id = %id, "the claim on a mail being sent ran out; it may go twice");
                    return std::future::pending().await;
                }
                // The database is away: try again at the next beat.
                Err(e) => {
                    tracing::warn!(mail_id = %id, error = %e, "could not renew a mail's claim")
                }
            }
        }
    }

    /// Marks a delivered mail sent, trying a few times: while the row says pending the
    /// lease is all that stands between this mail and a second copy.
    async fn record_sent(&self, id: String) -> Result<(), WorkerError> {
        let mut wait = Duration::from_millis(200);
        let mut tries = 0;
        loop {
            let id = id.clone();
            let at = self.clock.now();
            match self.db(move |c| outbox::mark_sent(c, &id, at)).await {
                Ok(()) => return Ok(()),
                Err(e) if tries < 4 => {
                    tracing::warn!(error = %e, "could not mark a sent mail; trying again");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                    tries += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs a diesel call on the blocking pool with a pooled connection.
    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut crate::db::DbConnection) -> diesel::QueryResult<T> + Send + 'static,
    ) -> Result<T, WorkerError> {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool
                .get()
                .map_err(|e| WorkerError::Database(e.to_string()))?;
            f(&mut conn).map_err(|e| WorkerError::Database(e.to_string()))
        })
        .await
        .map_err(|e| WorkerError::Database(format!("task: {e}")))?
    }
}

/// The wait after the `failures`-th failed try of an outbox: `base`, 2·`base`,
/// 4·`base`, ... capped at `cap`.
pub fn backoff(base: Duration, cap: Duration, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(31);
    base.saturating_mul(1u32 << doublings).min(cap)
}

/// `at` plus `wait`, to the millisecond: a claim's end is compared for equality when it
/// is renewed, and every backend stores milliseconds exactly.
pub fn later(at: NaiveDateTime, wait: Duration) -> NaiveDateTime {
    use chrono::{DurationRound, TimeDelta};
    // A wait too long for chrono is a configuration slip; a day is long enough.
    let t = at + TimeDelta::from_std(wait).unwrap_or_else(|_| TimeDelta::days(1));
    t.duration_trunc(TimeDelta::milliseconds(1)).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_and_stops_at_the_cap() {
        let config = WorkerConfig {
            retry_base: Duration::from_secs(60),
            retry_cap: Duration::from_secs(3600),
            ..WorkerConfig::default()
        };
        let waits: Vec<u64> = (1..=8).map(|n| config.backoff(n).as_secs()).collect();
        assert_eq!(waits, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(config.backoff(200), Duration::from_secs(3600));
    }

    #[test]
    fn a_claim_ends_on_a_whole_millisecond() {
        let at = chrono::NaiveDate::from_ymd_opt(2026, 12, 2)
            .and_then(|d| d.and_hms_nano_opt(9, 0, 0, 123_456_789))
            .expect("time");
        let until = later(at, Duration::from_secs(30));
        assert_eq!(until.and_utc().timestamp_subsec_nanos(), 123_000_000);
        assert_eq!(until.and_utc().timestamp() - at.and_utc().timestamp(), 30);
    }
}
