//! The operator's view of outgoing mail: what waits, what went, what failed, and
//! putting a failed mail back in the queue once its cause is fixed.

use super::listing::{parse_each, Params, Problems, Sort, SortKey};
use super::{conn, require_role, Actor, Context, Listed, ServiceError, Window};
use crate::db::any_of::any_of;
use crate::db::audit::{self, AuditEvent};
use crate::db::DbPool;
use crate::domain::party::Role;
use crate::mail::outbox;
pub use crate::mail::outbox::{MailStatus, OutboxMail};

/// A mail list's filters as typed: the API's query parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MailQuery {
    /// States, repeated or comma-separated: `pending`, `sent`, `failed`.
    #[param(required = false, style = Form, explode = true)]
    pub status: Vec<String>,
    /// `created`; a leading `-` sorts descending. Default `-created` (newest first).
    pub sort: Option<String>,
}

/// What a mail is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailSort {
    Created,
}

impl SortKey for MailSort {
    const KEYS: &'static [(&'static str, Self)] = &[("created", MailSort::Created)];
    const DEFAULT: Sort<Self> = Sort {
        key: MailSort::Created,
        descending: true,
    };
}

/// A mail list's filters, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailFilter {
    pub statuses: Vec<MailStatus>,
    pub sort: Sort<MailSort>,
}

impl Default for MailFilter {
    fn default() -> Self {
        MailFilter {
            statuses: Vec::new(),
            sort: MailSort::DEFAULT,
        }
    }
}

impl MailFilter {
    /// Reads the filters from a list's parameters: what was typed and the checked
    /// filter, or every problem found (unknown names included).
    pub fn read(mut params: Params) -> (MailQuery, Result<MailFilter, Problems>) {
        let typed = MailQuery {
            status: params.many("status"),
            sort: params.one("sort"),
        };
        let filter = MailFilter {
            statuses: parse_each(&mut params, "status", &typed.status),
            sort: Sort::read(&mut params, typed.sort.as_deref()),
        };
        let checked = params.finish(filter);
        (typed, checked)
    }
}

/// The mails `filter` keeps (operator only), one window of them in its order with the
/// count of all: the outbox of a busy exchange holds far more than a page.
pub fn list(
    pool: &DbPool,
    actor: &Actor,
    filter: &MailFilter,
    window: Window,
) -> Result<Listed<OutboxMail>, ServiceError> {
    use crate::db::schema::mail_outbox;
    use diesel::prelude::*;
    require_role(actor, &[Role::Operator])?;
    let filtered = || {
        let mut query = mail_outbox::table.into_boxed();
        if !filter.statuses.is_empty() {
            query = query.filter(any_of(mail_outbox::status, filter.statuses.clone()));
        }
        query
    };
    let mut conn = conn(pool)?;
    let total: i64 = filtered().count().get_result(&mut conn)?;
    let sorted = if filter.sort.descending {
        filtered().order_by(mail_outbox::created_at.desc())
    } else {
        filtered().order_by(mail_outbox::created_at.asc())
    };
    // The id is unique: rows with equal keys keep one order across pages.
    let rows = sorted
        .then_order_by(mail_outbox::id.asc())
        .offset(window.offset.max(0))
        .limit(window.limit.clamp(1, 500))
        .select(OutboxMail::as_select())
        .load(&mut conn)?;
    Ok(Listed { rows, total })
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
/// (operator only).
pub fn list_mail_page(
    pool: &DbPool,
    actor: &Actor,
    status: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<OutboxMail>, i64), ServiceError> {
    let statuses = match status {
        None => Vec::new(),
        Some(s) => vec![s
            .parse::<MailStatus>()
            .map_err(|_| ServiceError::invalid("status", "must be pending, sent or failed"))?],
    };
    let filter = MailFilter {
        statuses,
        ..MailFilter::default()
    };
    let listed = list(pool, actor, &filter, Window { offset, limit })?;
    Ok((listed.rows, listed.total))
}
