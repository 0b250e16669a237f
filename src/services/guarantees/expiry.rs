//! The end of validity: expiry of guarantees whose validity has passed, and the notice
//! to the bidder a week before.

use chrono::Duration;
use diesel::prelude::*;

use crate::db::models::Guarantee;
use crate::db::schema::guarantees;
use crate::db::write_tx;
use crate::domain::lifecycle::{GuaranteeAction, GuaranteeState};
use crate::domain::party::Role;
use crate::services::guarantees::transition;
use crate::services::notify;
use crate::services::views::guarantee_view_by_id;
use crate::services::{Actor, Context, ServiceError};

/// Expires every issued or accepted guarantee whose validity has ended. Safe to run
/// from several instances at once: each expiry is a conditional update.
pub fn expire_due(ctx: &Context) -> Result<usize, ServiceError> {
    let at = ctx.now();
    let mut conn = ctx.conn()?;
    let due: Vec<Guarantee> = guarantees::table
        .filter(guarantees::status.eq_any([GuaranteeState::Issued, GuaranteeState::Accepted]))
        .filter(guarantees::valid_until.lt(at))
        .limit(1000)
        .select(Guarantee::as_select())
        .load(&mut conn)?;
    let system = Actor {
        user_id: "system".into(),
        organization_id: "system".into(),
        organization_kind: crate::domain::party::OrgKind::Operator,
        role: Role::Operator,
    };
    let mut expired = 0;
    for g in due {
        let result = write_tx(&mut conn, |c| {
            transition(c, &system, &g, GuaranteeAction::Expire, at)
        });
        match result {
            Ok(_) => expired += 1,
            // Someone else moved it first (claimed, released, another instance): fine.
            Err(ServiceError::InvalidTransition { .. } | ServiceError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(expired)
}

/// How long before the end of validity the bidder is told its guarantee runs out.
pub const EXPIRY_NOTICE_DAYS: i64 = 7;

/// Tells each bidder, once, that a guarantee in force runs out within
/// [`EXPIRY_NOTICE_DAYS`]. Claiming the notice is a conditional update, so several
/// instances running this together send each mail once.
pub fn send_expiry_notices(ctx: &Context) -> Result<usize, ServiceError> {
    let at = ctx.now();
    let horizon = at + Duration::days(EXPIRY_NOTICE_DAYS);
    let mut conn = ctx.conn()?;
    let due: Vec<String> = guarantees::table
        .filter(guarantees::status.eq_any([GuaranteeState::Issued, GuaranteeState::Accepted]))
        .filter(guarantees::valid_until.le(horizon))
        .filter(guarantees::valid_until.gt(at))
        .filter(guarantees::expiry_notice_at.is_null())
        .limit(1000)
        .select(guarantees::id)
        .load(&mut conn)?;
    let mut sent = 0;
    for id in due {
        sent += write_tx(&mut conn, |c| -> Result<usize, ServiceError> {
            let claimed = diesel::update(
                guarantees::table
                    .filter(guarantees::id.eq(&id))
                    .filter(guarantees::expiry_notice_at.is_null()),
            )
            .set(guarantees::expiry_notice_at.eq(at))
            .execute(c)?;
            if claimed != 1 {
                return Ok(0);
            }
            let view = guarantee_view_by_id(c, &id)?;
            notify::guarantee_expiring(c, ctx, &view, at)?;
            Ok(1)
        })?;
    }
    Ok(sent)
}
