//! Idempotency keys: a client that retries a state-changing request with the same
//! `Idempotency-Key` gets the first answer again, and the change happens at most once,
//! whatever dies in between: the server, its database connection, or the client.
//!
//! A key's life:
//!
//! 1. **Claimed** by the request that brings it ([`claim`]): a row with a new attempt id
//!    and a lease (`locked_until`). A copy of the request arriving meanwhile is told the
//!    key is in progress.
//! 2. **Changed**: the request's write transaction, just before it commits, marks the
//!    row `changed` for its attempt ([`Context::write_tx`](super::Context::write_tx)
//!    runs [`mark_changed`] there) and names the audited entity it was about. The change
//!    and the mark commit together or not at all; if another attempt took the key over,
//!    the mark fails and so does the change.
//! 3. **Answered** ([`finish`]): a request that changed something stores its answer,
//!    sealed under the master key; one that changed nothing (a refusal, a parse error, a
//!    415, a 5xx) frees the key, so a corrected retry runs. Re-running a request that
//!    changed nothing changes nothing either: storing its answer would only keep a
//!    client's mistake alive.
//!
//! A request that died before its change committed leaves a claimed, unchanged key: once
//! the lease runs out, a retry takes it over and runs the request again. One that died
//! after its change committed but before its answer was stored is never run again: the
//! answer is rebuilt where it can be (an issue's answer, with its verification code,
//! [`rebuild_issue`]), otherwise the retry is told the answer is lost and which entity
//! to read. Keys expire after [`Policy::lifetime`] (an expired key is new again) and
//! are pruned by the upkeep ([`prune_expired`]).

use std::sync::Arc;

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::guarantees::{open_code, Issued};
use super::views::guarantee_view_by_id;
use super::{new_id, Actor, Context, OrInternal, ServiceError};
use crate::db::audit::Appended;
use crate::db::schema::idempotency_keys;
use crate::db::DbConnection;
use crate::pki;

/// How long keys live and how long a claim holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// After this a key is forgotten: the same key is a new request again.
    pub lifetime: Duration,
    /// How long a claimed key stays "in progress" before a retry may take it over (if
    /// the request changed nothing). Longer than any request takes.
    pub lease: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            lifetime: Duration::hours(24),
            lease: Duration::seconds(60),
        }
    }
}

/// A claimed key: the request running under it, as its write transactions name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub user_id: String,
    pub key: String,
    /// This run of the request; a retry that takes the key over has another.
    pub attempt: String,
    pub lease: Duration,
}

/// An answer as stored and replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// What a request's change was about: the last audit entry its transaction appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    pub kind: String,
    pub id: String,
    pub action: String,
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// The key is this request's now: run it, then [`finish`].
    Run(Arc<Scope>),
    /// The request ran before and changed something: answer this again.
    Replay(Answer),
    /// Another run of the request holds the key for this much longer.
    InProgress { retry_after: Duration },
    /// The request's change committed but its answer was not stored (the server died
    /// in between); it is never run again. `entity` names what it changed, when known.
    Lost { entity: Option<Entity> },
}

/// What became of a key once its request ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// The request changed something; its answer is stored for replay.
    Stored,
    /// The request changed nothing; the key is free again.
    Freed,
    /// The request changed something but its answer is not worth replaying (a 5xx): the
    /// key's lease is released so a retry learns at once that the answer is lost.
    Lost,
    /// Another attempt took the key over while this one ran (its lease ran out); this
    /// one changed nothing.
    TakenOver,
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = idempotency_keys)]
struct KeyRow {
    request_hash: String,
    attempt: String,
    locked_until: NaiveDateTime,
    changed: bool,
    entity_kind: Option<String>,
    entity_id: Option<String>,
    entity_action: Option<String>,
    response_status: Option<i32>,
    response_content_type: Option<String>,
    response_sealed: Option<Vec<u8>>,
    expires_at: NaiveDateTime,
}

/// The sealed answer is bound to its user and key: a blob copied to another row does not
/// open there.
fn seal_context(user_id: &str, key: &str) -> String {
    format!("idempotency-answer/{user_id}/{key}")
}

/// How many times a claim looks again when the row changed under it.
const CLAIM_ROUNDS: usize = 4;

/// Claims `key` for this actor and request (by its fingerprint `request_hash`), or finds
/// what became of it. A key used for a different request is refused while it lives.
pub fn claim(
    ctx: &Context,
    actor: &Actor,
    key: &str,
    request_hash: &str,
    policy: Policy,
) -> Result<Claimed, ServiceError> {
    let mut conn = ctx.conn()?;
    let pk = (actor.user_id.as_str(), key);
    for _ in 0..CLAIM_ROUNDS {
        let now = ctx.now();
        let scope = Scope {
            user_id: actor.user_id.clone(),
            key: key.to_owned(),
            attempt: new_id(),
            lease: policy.lease,
        };
        let inserted = diesel::insert_into(idempotency_keys::table)
            .values((
                idempotency_keys::user_id.eq(&scope.user_id),
                idempotency_keys::idempotency_key.eq(&scope.key),
                idempotency_keys::request_hash.eq(request_hash),
                idempotency_keys::attempt.eq(&scope.attempt),
                idempotency_keys::locked_until.eq(now + policy.lease),
                idempotency_keys::changed.eq(false),
                idempotency_keys::created_at.eq(now),
                idempotency_keys::expires_at.eq(now + policy.lifetime),
            ))
            .execute(&mut conn);
        match inserted {
            Ok(_) => return Ok(Claimed::Run(Arc::new(scope))),
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => {}
            Err(e) => return Err(e.into()),
        }
        let Some(row) = idempotency_keys::table
            .find(pk)
            .select(KeyRow::as_select())
            .first(&mut conn)
            .optional()?
        else {
            continue; // freed meanwhile: claim it afresh
        };
        // Judged at the time it was read (the insert may have waited for a lock).
        let now = ctx.now();
        let this_row = || {
            idempotency_keys::table
                .filter(idempotency_keys::user_id.eq(&actor.user_id))
                .filter(idempotency_keys::idempotency_key.eq(key))
                .filter(idempotency_keys::attempt.eq(&row.attempt))
        };
        if row.expires_at <= now {
            // Forgotten: the key is new again, for whatever request brings it.
            let renewed = diesel::update(this_row().filter(idempotency_keys::expires_at.le(now)))
                .set((
                    idempotency_keys::request_hash.eq(request_hash),
                    idempotency_keys::attempt.eq(&scope.attempt),
                    idempotency_keys::locked_until.eq(now + policy.lease),
                    idempotency_keys::changed.eq(false),
                    idempotency_keys::entity_kind.eq(None::<String>),
                    idempotency_keys::entity_id.eq(None::<String>),
                    idempotency_keys::entity_action.eq(None::<String>),
                    idempotency_keys::response_status.eq(None::<i32>),
                    idempotency_keys::response_content_type.eq(None::<String>),
                    idempotency_keys::response_sealed.eq(None::<Vec<u8>>),
                    idempotency_keys::created_at.eq(now),
                    idempotency_keys::expires_at.eq(now + policy.lifetime),
                ))
                .execute(&mut conn)?;
            if renewed == 1 {
                return Ok(Claimed::Run(Arc::new(scope)));
            }
            continue;
        }
        if row.request_hash != request_hash {
            return Err(ServiceError::invalid(
                "Idempotency-Key",
                "this key was used for a different request; use a new key for a new request",
            ));
        }
        if let (Some(status), Some(sealed)) = (row.response_status, &row.response_sealed) {
            let body = pki::open(
                &ctx.keys.sealing,
                sealed,
                &seal_context(&actor.user_id, key),
            )
            .or_internal("opening a stored answer")?;
            return Ok(Claimed::Replay(Answer {
                status: u16::try_from(status).or_internal("stored status")?,
                content_type: row.response_content_type,
                body,
            }));
        }
        if row.locked_until > now {
            return Ok(Claimed::InProgress {
                retry_after: (row.locked_until - now).min(policy.lease),
            });
        }
        if !row.changed {
            // The run that held the key died (or outlived its lease) before its change
            // committed: take the key over and run the request again. Should the old run
            // still try to commit, its transaction finds the key taken and rolls back.
            let taken = diesel::update(
                this_row()
                    .filter(idempotency_keys::changed.eq(false))
                    .filter(idempotency_keys::response_status.is_null()),
            )
            .set((
                idempotency_keys::attempt.eq(&scope.attempt),
                idempotency_keys::locked_until.eq(now + policy.lease),
            ))
            .execute(&mut conn)?;
            if taken == 1 {
                return Ok(Claimed::Run(Arc::new(scope)));
            }
            continue;
        }
        let entity = match (row.entity_kind, row.entity_id, row.entity_action) {
            (Some(kind), Some(id), Some(action)) => Some(Entity { kind, id, action }),
            _ => None,
        };
        return Ok(Claimed::Lost { entity });
    }
    // The row kept changing under us: some other copy of the request is busy with it.
    Ok(Claimed::InProgress {
        retry_after: Duration::seconds(1),
    })
}

/// Records, inside the request's write transaction and just before it commits, that
/// the request changed something and what about (`audited`, the transaction's last
/// audit entry). Fails, rolling the change back, when the key is no longer this
/// attempt's: a retry took it over after the lease ran out.
pub fn mark_changed(
    c: &mut DbConnection,
    scope: &Scope,
    audited: Option<Appended>,
    now: NaiveDateTime,
) -> Result<(), ServiceError> {
    let ours = idempotency_keys::table
        .filter(idempotency_keys::user_id.eq(&scope.user_id))
        .filter(idempotency_keys::idempotency_key.eq(&scope.key))
        .filter(idempotency_keys::attempt.eq(&scope.attempt))
        .filter(idempotency_keys::response_status.is_null());
    // The lease is renewed too: a copy arriving while this run stores its answer is told
    // to wait, not that the answer is lost.
    let marked = match audited {
        Some(entry) => diesel::update(ours)
            .set((
                idempotency_keys::changed.eq(true),
                idempotency_keys::locked_until.eq(now + scope.lease),
                idempotency_keys::entity_kind.eq(entry.entity_kind),
                idempotency_keys::entity_id.eq(entry.entity_id),
                idempotency_keys::entity_action.eq(entry.action),
            ))
            .execute(c)?,
        None => diesel::update(ours)
            .set((
                idempotency_keys::changed.eq(true),
                idempotency_keys::locked_until.eq(now + scope.lease),
            ))
            .execute(c)?,
    };
    if marked != 1 {
        return Err(ServiceError::Conflict(
            "a retry with this Idempotency-Key took the request over; this run changed nothing"
                .into(),
        ));
    }
    Ok(())
}

/// Settles the key once its request ran: stores `answer` if the request changed
/// something (`None` for an answer not worth replaying, a 5xx), frees the key if it
/// changed nothing.
pub fn finish(
    ctx: &Context,
    scope: &Scope,
    answer: Option<Answer>,
) -> Result<Finished, ServiceError> {
    let mut conn = ctx.conn()?;
    let ours = || {
        idempotency_keys::table
            .filter(idempotency_keys::user_id.eq(&scope.user_id))
            .filter(idempotency_keys::idempotency_key.eq(&scope.key))
            .filter(idempotency_keys::attempt.eq(&scope.attempt))
            .filter(idempotency_keys::response_status.is_null())
    };
    let changed = ours().filter(idempotency_keys::changed.eq(true));
    let settled = match answer {
        Some(answer) => {
            let sealed = pki::seal(
                &ctx.keys.sealing,
                &answer.body,
                &seal_context(&scope.user_id, &scope.key),
            )
            .or_internal("sealing an answer")?;
            let stored = diesel::update(changed)
                .set((
                    idempotency_keys::response_status.eq(i32::from(answer.status)),
                    idempotency_keys::response_content_type.eq(answer.content_type),
                    idempotency_keys::response_sealed.eq(sealed),
                ))
                .execute(&mut conn)?;
            (stored == 1).then_some(Finished::Stored)
        }
        None => {
            let released = diesel::update(changed)
                .set(idempotency_keys::locked_until.eq(ctx.now()))
                .execute(&mut conn)?;
            (released == 1).then_some(Finished::Lost)
        }
    };
    if let Some(settled) = settled {
        return Ok(settled);
    }
    let freed =
        diesel::delete(ours().filter(idempotency_keys::changed.eq(false))).execute(&mut conn)?;
    Ok(if freed == 1 {
        Finished::Freed
    } else {
        Finished::TakenOver
    })
}

/// Stores an answer rebuilt for a key whose request changed something and lost its
/// answer, so later retries replay it. `false` if another retry stored one first.
pub fn store_rebuilt(
    ctx: &Context,
    actor: &Actor,
    key: &str,
    answer: Answer,
) -> Result<bool, ServiceError> {
    let sealed = pki::seal(
        &ctx.keys.sealing,
        &answer.body,
        &seal_context(&actor.user_id, key),
    )
    .or_internal("sealing an answer")?;
    let mut conn = ctx.conn()?;
    let stored = diesel::update(
        idempotency_keys::table
            .filter(idempotency_keys::user_id.eq(&actor.user_id))
            .filter(idempotency_keys::idempotency_key.eq(key))
            .filter(idempotency_keys::changed.eq(true))
            .filter(idempotency_keys::response_status.is_null()),
    )
    .set((
        idempotency_keys::response_status.eq(i32::from(answer.status)),
        idempotency_keys::response_content_type.eq(answer.content_type),
        idempotency_keys::response_sealed.eq(sealed),
    ))
    .execute(&mut conn)?;
    Ok(stored == 1)
}

/// The answer to an issue (or to the signature of an amendment) whose answer was lost,
/// made again: the guarantee as it stands and its verification code, unsealed. `None`
/// when `entity` is not an issued guarantee. Only the issuer sees it, as at issue.
pub fn rebuild_issue(
    ctx: &Context,
    actor: &Actor,
    entity: &Entity,
) -> Result<Option<Issued>, ServiceError> {
    let mut conn = ctx.conn()?;
    let guarantee_id = match (entity.kind.as_str(), entity.action.as_str()) {
        ("guarantee", "issue" | "amend") => entity.id.clone(),
        // The signature of a reduction, kept with it until the beneficiary accepts.
        ("guarantee_reduction", "sign_reduction") => {
            use crate::db::schema::guarantee_reductions;
            guarantee_reductions::table
                .find(&entity.id)
                .select(guarantee_reductions::guarantee_id)
                .first(&mut conn)?
        }
        _ => return Ok(None),
    };
    let view = guarantee_view_by_id(&mut conn, &guarantee_id)?;
    if view.guarantee.issuer_id != actor.organization_id {
        return Err(ServiceError::NotFound("guarantee".into()));
    }
    let verification_code = open_code(ctx, &view.guarantee)?;
    Ok(Some(Issued {
        view,
        verification_code,
    }))
}

/// Forgets the keys that expired (upkeep); returns how many.
pub fn prune_expired(ctx: &Context) -> Result<usize, ServiceError> {
    let mut conn = ctx.conn()?;
    let pruned =
        diesel::delete(idempotency_keys::table.filter(idempotency_keys::expires_at.le(ctx.now())))
            .execute(&mut conn)?;
    Ok(pruned)
}
