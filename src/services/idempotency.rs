//! Idempotency keys: a client that retries a state-changing POST with the same
//! `Idempotency-Key` gets the first answer again, and the change happens once.
//!
//! The key is claimed before the request runs (a row with status 0), so two copies
//! racing each other cannot both run: the second is told the first is in progress.

use diesel::prelude::*;

use super::{Actor, Context, ServiceError};
use crate::db::schema::idempotency_keys;

/// What a key lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// New key: run the request, then [`complete`] or [`abandon`].
    Run,
    /// The request ran before: answer this again.
    Replay { status: u16, body: String },
}

/// Claims `key` for this actor and request, or finds its earlier answer. A key reused
/// for a different request is refused.
pub fn claim(
    ctx: &Context,
    actor: &Actor,
    key: &str,
    request_hash: &str,
) -> Result<Claimed, ServiceError> {
    let mut conn = ctx.conn()?;
    let inserted = diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::user_id.eq(&actor.user_id),
            idempotency_keys::idempotency_key.eq(key),
            idempotency_keys::request_hash.eq(request_hash),
            idempotency_keys::response_status.eq(0),
            idempotency_keys::response_body.eq(""),
            idempotency_keys::created_at.eq(ctx.now()),
        ))
        .execute(&mut conn);
    match inserted {
        Ok(_) => return Ok(Claimed::Run),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => {}
        Err(e) => return Err(e.into()),
    }
    let (hash, status, body): (String, i32, String) = idempotency_keys::table
        .find((&actor.user_id, key))
        .select((
            idempotency_keys::request_hash,
            idempotency_keys::response_status,
            idempotency_keys::response_body,
        ))
        .first(&mut conn)?;
    if hash != request_hash {
        return Err(ServiceError::invalid(
            "Idempotency-Key",
            "this key was used for a different request; use a new key for a new request",
        ));
    }
    if status == 0 {
        return Err(ServiceError::Conflict(
            "a request with this Idempotency-Key is still in progress; retry shortly".into(),
        ));
    }
    Ok(Claimed::Replay {
        status: u16::try_from(status).unwrap_or(500),
        body,
    })
}

/// Records the answer to replay for this key.
pub fn complete(
    ctx: &Context,
    actor: &Actor,
    key: &str,
    status: u16,
    body: &str,
) -> Result<(), ServiceError> {
    let mut conn = ctx.conn()?;
    diesel::update(idempotency_keys::table.find((&actor.user_id, key)))
        .set((
            idempotency_keys::response_status.eq(i32::from(status)),
            idempotency_keys::response_body.eq(body),
        ))
        .execute(&mut conn)?;
    Ok(())
}

/// Frees the key after a failure the client may retry (a 5xx): nothing was changed.
pub fn abandon(ctx: &Context, actor: &Actor, key: &str) -> Result<(), ServiceError> {
    let mut conn = ctx.conn()?;
    diesel::delete(idempotency_keys::table.find((&actor.user_id, key))).execute(&mut conn)?;
    Ok(())
}
