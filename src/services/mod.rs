//! Use cases. Each public function is one operation of one actor: it checks what the
//! actor may do, runs in one database transaction, and writes its audit entry there.

pub mod auth;
pub mod demo;
pub mod mail;
pub mod organizations;
pub mod projects;

use crate::db::{DbError, DbPool, PooledConn};
use crate::domain::party::{OrgKind, Role};

/// Who is acting: a signed-in user of one organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: String,
    pub organization_id: String,
    pub organization_kind: OrgKind,
    pub role: Role,
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
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    pub fn invalid(field: impl Into<String>, message: impl std::fmt::Display) -> ServiceError {
        ServiceError::Invalid {
            field: field.into(),
            message: message.to_string(),
        }
    }
}

impl From<diesel::result::Error> for ServiceError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::NotFound => ServiceError::NotFound("record".into()),
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                ServiceError::Conflict(format!("already exists ({})", info.message()))
            }
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

impl From<DbError> for ServiceError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Pool(e) => ServiceError::Unavailable(e.to_string()),
            DbError::Query(e) => e.into(),
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

/// A pooled connection, or `Unavailable` when the pool has none in time.
pub fn conn(pool: &DbPool) -> Result<PooledConn, ServiceError> {
    pool.get()
        .map_err(|e| ServiceError::Unavailable(e.to_string()))
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

/// The current time as stored: UTC, microsecond precision (what both backends keep).
pub fn now() -> chrono::NaiveDateTime {
    use chrono::SubsecRound;
    chrono::Utc::now().naive_utc().trunc_subsecs(6)
}
