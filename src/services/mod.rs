//! Use cases. Each public function is one operation of one actor: it checks what the
//! actor may do, runs in one database transaction, and writes its audit entry there.

pub mod application_drafts;
pub mod applications;
pub mod attachments;
pub mod audit;
pub mod auth;
pub mod catalogue;
pub mod claims;
pub mod credential_cache;
pub mod credit;
pub mod credit_disputes;
pub mod credit_import;
pub mod credit_looks;
pub mod credit_office;
pub mod crl_fetch;
pub mod demo;
pub mod guarantees;
pub mod idempotency;
pub mod issuer_rules;
pub mod listing;
pub mod mail;
pub mod notify;
pub mod ocsp_fetch;
pub mod organizations;
pub mod premium_terms;
pub mod projects;
pub mod stats;
pub mod trust;
pub mod views;
pub mod waivers;
pub mod webhooks;

use std::sync::Arc;

use crate::db::{DbConnection, DbError, DbPool, PooledConn};
use crate::domain::party::{OrgKind, Role};
use crate::pki::{self, VerificationReport};

/// Keys derived from the master key, one per purpose.
pub struct Keys {
    /// HMAC key under which resident ID numbers are looked up.
    pub id_hmac: [u8; 32],
    /// Encrypts hosted issuer private keys.
    pub hosted: pki::MasterKey,
    /// Seals small secrets kept for printing again (verification codes).
    pub sealing: pki::MasterKey,
    /// Seals credit rights codes (信用权益码).
    pub rights_code: [u8; 32],
    /// Derives each organization's webhook signing secret.
    pub webhook: [u8; 32],
}

impl Keys {
    pub fn from_master(master: &crate::config::MasterKey) -> Result<Keys, ServiceError> {
        let key = |purpose: &str| {
            pki::MasterKey::from_bytes(&master.derive(purpose)).or_internal("key derivation")
        };
        Ok(Keys {
            id_hmac: master.derive("resident-id-hmac"),
            hosted: key("hosted-issuer-keys")?,
            sealing: key("sealed-secrets")?,
            rights_code: master.derive("credit-rights-code"),
            webhook: master.derive("webhook-signing"),
        })
    }
}

pub use crate::clock::Clock;

/// What every use case needs: the pool, the clock, the keys and the verifier.
#[derive(Clone)]
pub struct Context {
    pub pool: DbPool,
    pub clock: Clock,
    pub verifier: Arc<trust::Verifier>,
    pub keys: Arc<Keys>,
    /// Public base URL without a trailing slash, for verification links.
    pub public_base_url: Arc<str>,
    /// Business days (PRC holidays and adjusted working days), for claim deadlines.
    pub calendar: Arc<crate::domain::Calendar>,
    /// The exchange's own time-stamping authority and the anchors of its tokens.
    pub timestamping: Arc<trust::TimeStamping>,
    /// Limits and pacing the services apply (from the settings).
    pub limits: Limits,
    /// The public statistics as last computed on this instance.
    pub stats: Arc<stats::Memo>,
    /// The `Idempotency-Key` claim of the request this context serves, if it has one:
    /// its write transactions record that they changed something ([`Context::write_tx`]).
    pub idempotency: Option<Arc<idempotency::Scope>>,
    /// The line this instance's writers wait in on SQLite ([`Context::write_tx`]).
    pub write_gate: Arc<crate::db::write_gate::WriteGate>,
    /// The credentials this instance resolved lately.
    pub credentials: Arc<auth::Credentials>,
    /// Where attachments are kept on disk on SQLite (`<data_dir>/attachments`; on
    /// PostgreSQL they are in the database), and where uploads are spooled.
    pub attachment_dir: Arc<std::path::Path>,
}

/// Limits and pacing the services apply, from the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Applications an enterprise may have waiting at once.
    pub applications_waiting: i64,
    /// Applications an enterprise may make in one day (China time).
    pub applications_per_day: i64,
    /// How long an issuer's digest of new applications collects before it goes.
    pub mail_digest: chrono::Duration,
    /// Whether webhook endpoints may be plain HTTP on private addresses.
    pub webhook_allow_private: bool,
    /// The largest attachment taken, in bytes.
    pub attachment_max_bytes: u64,
}

impl Limits {
    pub fn from_settings(settings: &crate::config::Settings) -> Limits {
        Limits {
            applications_waiting: settings.application_limit_waiting.into(),
            applications_per_day: settings.application_limit_per_day.into(),
            mail_digest: chrono::Duration::seconds(settings.mail_digest_seconds.into()),
            webhook_allow_private: settings.webhook_allow_private,
            attachment_max_bytes: settings.attachment_max_bytes,
        }
    }
}

/// Who is acting: a signed-in user of one organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: String,
    pub organization_id: String,
    pub organization_kind: OrgKind,
    pub role: Role,
}

/// One page of a list, and how many rows the whole list has.
#[derive(Debug, Clone)]
pub struct Listed<T> {
    pub rows: Vec<T>,
    pub total: i64,
}

/// Which rows of a list to load: `limit` rows after skipping `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub offset: i64,
    pub limit: i64,
}

/// What a service refuses or fails with. The web layer maps each to a status and the
/// JSON error shape; messages are safe to show to the caller.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// An input field is wrong; `field` names it the way the request spelled it.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("authentication required")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    /// Unknown, or not visible to this actor: both look the same from outside.
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The lifecycle does not allow this from the current state.
    #[error("{message}")]
    InvalidTransition {
        message: String,
        current: &'static str,
    },
    /// A signature or document that verification did not pass; the report says why.
    #[error("the signature was not accepted: {}", .0.summary())]
    SignatureRejected(Box<VerificationReport>),
    /// No database connection in time: the caller may retry.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] diesel::r2d2::PoolError),
    /// A failure the caller did not cause. It keeps its cause for the log (`{:#}` prints
    /// the whole chain); the caller sees only a generic answer.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl ServiceError {
    pub fn invalid(field: impl Into<String>, message: impl std::fmt::Display) -> ServiceError {
        ServiceError::Invalid {
            field: field.into(),
            message: message.to_string(),
        }
    }
}

/// Marks a failure as internal, keeping it as the cause under a short description of
/// what was being done: `pki::seal(..).or_internal("sealing the code")?`.
pub trait OrInternal<T> {
    fn or_internal(self, what: &'static str) -> Result<T, ServiceError>;
}

impl<T, E> OrInternal<T> for Result<T, E>
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn or_internal(self, what: &'static str) -> Result<T, ServiceError> {
        self.map_err(|e| ServiceError::Internal(anyhow::Error::new(e).context(what)))
    }
}

impl<T> OrInternal<T> for Option<T> {
    fn or_internal(self, what: &'static str) -> Result<T, ServiceError> {
        self.ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("{what}: missing")))
    }
}

impl From<crate::domain::TransitionError> for ServiceError {
    fn from(e: crate::domain::TransitionError) -> Self {
        ServiceError::InvalidTransition {
            message: e.to_string(),
            current: e.current,
        }
    }
}

impl From<diesel::result::Error> for ServiceError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::NotFound => ServiceError::NotFound("record".into()),
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                // The constraint and table are the database's business: they go to the
                // log, never to the client.
                tracing::info!(
                    constraint = info.constraint_name().unwrap_or_default(),
                    table = info.table_name().unwrap_or_default(),
                    message = info.message(),
                    "unique violation answered as a conflict"
                );
                ServiceError::Conflict(
                    "this conflicts with a record made meanwhile; reload and try again".into(),
                )
            }
            other => ServiceError::Internal(anyhow::Error::new(other).context("database")),
        }
    }
}

impl From<DbError> for ServiceError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Pool(e) => ServiceError::Unavailable(e),
            DbError::Query(e) => e.into(),
            other => ServiceError::Internal(other.into()),
        }
    }
}

impl Context {
    /// A pooled connection, or `Unavailable` when the pool has none in time.
    pub fn conn(&self) -> Result<PooledConn, ServiceError> {
        conn(&self.pool)
    }

    /// The current time by the exchange's clock.
    pub fn now(&self) -> chrono::NaiveDateTime {
        self.clock.now()
    }

    /// This context serving one request that holds an `Idempotency-Key` claim (or none).
    pub fn with_idempotency(&self, scope: Option<Arc<idempotency::Scope>>) -> Context {
        Context {
            idempotency: scope,
            ..self.clone()
        }
    }

    /// Runs `f` in one write transaction (the db layer's `write_tx`). When this context
    /// serves a request with an `Idempotency-Key`, the key is marked changed in the same
    /// transaction just before it commits, so the change and the mark commit together;
    /// if a retry took the key over meanwhile, the change rolls back. On SQLite the
    /// transaction waits its turn in this instance's line of writers first
    /// (`db::write_gate`).
    pub fn write_tx<T>(
        &self,
        conn: &mut DbConnection,
        f: impl FnOnce(&mut DbConnection) -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        let _turn = self.write_gate.enter(conn);
        match &self.idempotency {
            None => crate::db::write_tx(conn, f),
            Some(scope) => crate::db::write_tx_with_hook(conn, f, |c| {
                idempotency::mark_changed(c, scope, crate::db::audit::last_appended(), self.now())
            }),
        }
    }
}

/// A pooled connection, or `Unavailable` when the pool has none in time.
pub fn conn(pool: &DbPool) -> Result<PooledConn, ServiceError> {
    pool.get().map_err(ServiceError::Unavailable)
}

/// Refuses unless the actor has one of `roles`.
pub fn require_role(actor: &Actor, roles: &[Role]) -> Result<(), ServiceError> {
    if roles.contains(&actor.role) {
        Ok(())
    } else {
        Err(ServiceError::Forbidden(format!(
            "this needs the role {}; you are signed in as {}",
            roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(" or "),
            actor.role.as_str()
        )))
    }
}

/// A new random identifier for a row.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The system time as stored: UTC, microsecond precision (what both backends keep).
/// Use cases read [`Context::now`] instead, which tests can move.
pub fn now() -> chrono::NaiveDateTime {
    use chrono::SubsecRound;
    chrono::Utc::now().naive_utc().trunc_subsecs(6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_error_keeps_its_whole_cause_chain() {
        let cause = std::io::Error::other("disk on fire");
        let error = Err::<(), _>(cause)
            .or_internal("sealing the code")
            .expect_err("an error");
        // What the log gets: the description and the cause, in one line.
        let logged = error.to_string();
        assert!(logged.contains("sealing the code"), "{logged}");
        assert!(logged.contains("disk on fire"), "{logged}");
        let ServiceError::Internal(e) = error else {
            panic!("not internal: {error:?}");
        };
        assert!(e.chain().any(|c| c.is::<std::io::Error>()));
        let missing = None::<u8>
            .or_internal("the issuer's kind")
            .expect_err("missing");
        assert!(missing.to_string().contains("the issuer's kind"));
    }

    /// A unique violation as the database reports it, naming its constraint and table.
    struct Violation;

    impl diesel::result::DatabaseErrorInformation for Violation {
        fn message(&self) -> &str {
            "duplicate key value violates unique constraint \"organizations_uscc_key\""
        }
        fn details(&self) -> Option<&str> {
            Some("Key (uscc)=(91371600MA3C200017) already exists.")
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            Some("organizations")
        }
        fn column_name(&self) -> Option<&str> {
            Some("uscc")
        }
        fn constraint_name(&self) -> Option<&str> {
            Some("organizations_uscc_key")
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    #[test]
    fn a_unique_violation_names_no_constraint_table_or_value() {
        let error: ServiceError = diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            Box::new(Violation),
        )
        .into();
        let ServiceError::Conflict(message) = &error else {
            panic!("not a conflict: {error:?}");
        };
        for secret in [
            "organizations",
            "uscc",
            "constraint",
            "duplicate key",
            "91371600",
        ] {
            assert!(!message.contains(secret), "{secret} in {message}");
        }
    }
}
