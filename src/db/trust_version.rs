//! The version of what the trust store is built from (trust anchors and CRLs): bumped in
//! the transaction that changes it, read by every instance before it verifies or signs,
//! so a change made through one instance is in force on all of them at their next
//! request.

use diesel::prelude::*;

use super::schema::trust_store_version;
use super::DbConnection;

/// How many changes to anchors and CRLs were committed.
pub fn current(conn: &mut DbConnection) -> QueryResult<i64> {
    trust_store_version::table
        .find(1)
        .select(trust_store_version::version)
        .first(conn)
}

/// Marks a change to what the trust store is built from; call it in the transaction
/// that makes the change.
pub fn bump(conn: &mut DbConnection) -> QueryResult<()> {
    diesel::update(trust_store_version::table.find(1))
        .set(trust_store_version::version.eq(trust_store_version::version + 1))
        .execute(conn)?;
    Ok(())
}
