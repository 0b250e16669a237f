//! The operator's view of outgoing mail: what waits, what went, what failed, and
//! putting a failed mail back in the queue once its cause is fixed.

use super::{conn, require_role, Actor, Context, ServiceError};
use crate::db::audit::{self, AuditEvent};
use crate::db::DbPool;
use crate::domain::party::Role;
use crate::mail::outbox;
pub use crate::mail::outbox::{MailStatus, OutboxMail};

/// The most mails one listing returns, newest first.
pub const LIST_LIMIT: i64 = 500;

/// Mails in one state (or all), newest first (operator only).
pub fn list_mail(
    pool: &DbPool,
    actor: &Actor,
    status: Option<&str>,
) -> Result<Vec<OutboxMail>, ServiceError> {
    require_role(actor, &[Role::Operator])?;
    let status = match status {
        None => None,
        Some(s) => Some(
            s.parse::<MailStatus>()
                .map_err(|_| ServiceError::invalid("status", "must be pending, sent or failed"))?,
        ),
    };
    let mut conn = conn(pool)?;
    Ok(outbox::list_recent(&mut conn, status, LIST_LIMIT)?)
}

/// Puts a failed mail back in the queue with a fresh set of tries (operator only).
/// Audited, in the same transaction.
pub fn retry_mail(ctx: &Context, actor: &Actor, id: &str) -> Result<OutboxMail, ServiceError> {
    require_role(actor, &[Role::Operator])?;
    let at = ctx.now();
    let mut conn = ctx.conn()?;
    ctx.write_tx(&mut conn, |c| -> Result<OutboxMail, ServiceError> {
        let mail = outbox::find(c, id)?.ok_or_else(|| ServiceError::NotFound("mail".into()))?;
        if !outbox::requeue_failed(c, id, at)? {
            return Err(ServiceError::Conflict(format!(
                "only a failed mail can be retried; this one is {}",
                mail.status
            )));
        }
        audit::append(
            c,
            &AuditEvent {
                actor_user_id: Some(&actor.user_id),
                actor_organization_id: Some(&actor.organization_id),
                action: "retry_mail",
                entity_kind: "mail",
                entity_id: id,
                from_state: Some(MailStatus::Failed.as_str()),
                to_state: Some(MailStatus::Pending.as_str()),
                details: serde_json::json!({
                    "attempts": mail.attempts,
                    "last_error": mail.last_error,
                }),
            },
            at,
        )?;
        outbox::find(c, id)?.ok_or_else(|| ServiceError::NotFound("mail".into()))
    })
}

/// One page of the mails in one state (or all), newest first, with how many there are
/// (operator only): the outbox of a busy exchange holds far more than a page.
pub fn list_mail_page(
    pool: &DbPool,
    actor: &Actor,
    status: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<OutboxMail>, i64), ServiceError> {
    use crate::db::schema::mail_outbox;
    use diesel::prelude::*;
    require_role(actor, &[Role::Operator])?;
    let status = match status {
        None => None,
        Some(s) => Some(
            s.parse::<MailStatus>()
                .map_err(|_| ServiceError::invalid("status", "must be pending, sent or failed"))?,
        ),
    };
    let filtered = || {
        let mut query = mail_outbox::table.into_boxed();
        if let Some(status) = status {
            query = query.filter(mail_outbox::status.eq(status));
        }
        query
    };
    let mut conn = conn(pool)?;
    let total: i64 = filtered().count().get_result(&mut conn)?;
    let rows = filtered()
        .order((mail_outbox::created_at.desc(), mail_outbox::id.asc()))
        .offset(offset.max(0))
        .limit(limit.clamp(1, LIST_LIMIT))
        .select(OutboxMail::as_select())
        .load(&mut conn)?;
    Ok((rows, total))
}
