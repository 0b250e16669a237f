//! Who looked at a subject's credit (PIPL): every read of an archive by anyone but its
//! subject writes one row in the transaction of the read, so a read that commits is
//! logged and a logged read happened. The subject sees the organization, the purpose and
//! the time of each look; the officer's user id stays in the row for the audit alone.
//!
//! The archive's reads call [`log_look`]; nothing here reads an archive, so this module
//! imports nothing of the archive's.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::{new_id, Actor, Listed, ServiceError, Window};
use crate::db::models::CreditLookRow;
use crate::db::schema::{credit_looks, organizations};
use crate::db::DbConnection;
use crate::domain::credit::LookPurpose;

/// Writes one look at `subject_id` by `actor`, in the caller's transaction (the one
/// that reads the archive). `application_id` is the application underwritten, for an
/// issuer's look, and nothing for the credit office's.
pub fn log_look(
    c: &mut DbConnection,
    actor: &Actor,
    subject_id: &str,
    purpose: LookPurpose,
    application_id: Option<&str>,
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    diesel::insert_into(credit_looks::table)
        .values(&CreditLookRow {
            id: new_id(),
            subject_id: subject_id.to_owned(),
            looked_by: actor.user_id.clone(),
            organization_id: actor.organization_id.clone(),
            purpose,
            application_id: application_id.map(str::to_owned),
            looked_at: at,
        })
        .execute(c)?;
    Ok(())
}

/// A look as its subject is shown it: who (the organization, never the officer), why
/// and when.
#[derive(Debug, Clone)]
pub struct LookView {
    pub organization_name: String,
    pub purpose: LookPurpose,
    pub application_id: Option<String>,
    pub looked_at: NaiveDateTime,
}

/// One page of the looks at `subject_id`, newest first, and how many there are.
pub fn looks_at(
    c: &mut DbConnection,
    subject_id: &str,
    window: Window,
) -> Result<Listed<LookView>, ServiceError> {
    let total: i64 = credit_looks::table
        .filter(credit_looks::subject_id.eq(subject_id))
        .count()
        .get_result(c)?;
    let rows: Vec<(String, LookPurpose, Option<String>, NaiveDateTime)> = credit_looks::table
        .inner_join(organizations::table)
        .filter(credit_looks::subject_id.eq(subject_id))
        .order((credit_looks::looked_at.desc(), credit_looks::id.desc()))
        .offset(window.offset)
        .limit(window.limit)
        .select((
            organizations::name,
            credit_looks::purpose,
            credit_looks::application_id,
            credit_looks::looked_at,
        ))
        .load(c)?;
    Ok(Listed {
        rows: rows
            .into_iter()
            .map(
                |(organization_name, purpose, application_id, looked_at)| LookView {
                    organization_name,
                    purpose,
                    application_id,
                    looked_at,
                },
            )
            .collect(),
        total,
    })
}
