//! The operator's check of the audit log: every entry chained to the one before by its
//! hash, so that an entry changed or removed in the database shows as a break.

use super::{require_role, Actor, Context, ServiceError};
use crate::db::audit::{self, ChainCheck};
use crate::domain::party::Role;

/// Walks the whole chain (operator): intact with its number of entries, or where it
/// breaks and why.
pub fn check_chain(ctx: &Context, actor: &Actor) -> Result<ChainCheck, ServiceError> {
    require_role(actor, &[Role::Operator])?;
    let mut conn = ctx.conn()?;
    Ok(audit::verify_chain(&mut conn)?)
}
