//! The audit log: append-only and hash-chained. Each entry's hash covers its content
//! and the previous entry's hash, so an edit or a deletion breaks every later link.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::schema::{audit_head, audit_log};
use super::DbConnection;

/// What happened, as a service describes it.
#[derive(Debug, Clone, Default)]
pub struct AuditEvent<'a> {
    pub actor_user_id: Option<&'a str>,
    pub actor_organization_id: Option<&'a str>,
    pub action: &'a str,
    pub entity_kind: &'a str,
    pub entity_id: &'a str,
    pub from_state: Option<&'a str>,
    pub to_state: Option<&'a str>,
    /// Extra facts as JSON; never secrets or personal numbers.
    pub details: serde_json::Value,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
// None is NULL (no column has a default): many rows are one statement on SQLite.
#[diesel(table_name = audit_log, treat_none_as_default_value = false)]
pub struct AuditEntry {
    pub seq: i64,
    pub occurred_at: NaiveDateTime,
    pub actor_user_id: Option<String>,
    pub actor_organization_id: Option<String>,
    pub action: String,
    pub entity_kind: String,
    pub entity_id: String,
    pub from_state: Option<String>,
    pub to_state: Option<String>,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The hashed content of an entry: a fixed field order, serialised as JSON.
#[derive(Serialize)]
struct Hashed<'a> {
    seq: i64,
    occurred_at: String,
    actor_user_id: Option<&'a str>,
    actor_organization_id: Option<&'a str>,
    action: &'a str,
    entity_kind: &'a str,
    entity_id: &'a str,
    from_state: Option<&'a str>,
    to_state: Option<&'a str>,
    details: &'a str,
    prev_hash: &'a str,
}

impl AuditEntry {
    fn compute_hash(&self) -> String {
        let hashed = Hashed {
            seq: self.seq,
            // Microseconds: what both backends store exactly.
            occurred_at: self.occurred_at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
            actor_user_id: self.actor_user_id.as_deref(),
            actor_organization_id: self.actor_organization_id.as_deref(),
            action: &self.action,
            entity_kind: &self.entity_kind,
            entity_id: &self.entity_id,
            from_state: self.from_state.as_deref(),
            to_state: self.to_state.as_deref(),
            details: &self.details,
            prev_hash: &self.prev_hash,
        };
        let bytes = serde_json::to_vec(&hashed).unwrap_or_default();
        hex::encode(Sha256::digest(bytes))
    }
}

/// What an entry was about, as [`last_appended`] tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub action: String,
    pub entity_kind: String,
    pub entity_id: String,
}

thread_local! {
    /// The last entry this thread appended since its write transaction began. A write
    /// transaction runs start to end on one thread (diesel is synchronous), so this is
    /// the transaction's own entry, whatever other connections append meanwhile.
    static LAST_APPENDED: std::cell::RefCell<Option<Appended>> =
        const { std::cell::RefCell::new(None) };
}

/// The last entry appended on this thread since its current write transaction began
/// (`write_tx` clears it at BEGIN), if any: what the transaction's change was about.
pub fn last_appended() -> Option<Appended> {
    LAST_APPENDED.with(|last| last.borrow().clone())
}

/// Forgets the last appended entry (a write transaction begins).
pub(crate) fn forget_appended() {
    LAST_APPENDED.with(|last| last.borrow_mut().take());
}

/// Appends one entry. Call inside the service's write transaction: the entry commits or
/// rolls back with the change it records.
pub fn append(
    conn: &mut DbConnection,
    event: &AuditEvent<'_>,
    now: NaiveDateTime,
) -> QueryResult<i64> {
    // Touching the head row first locks it on PostgreSQL until commit, so concurrent
    // writers queue here and the chain stays linear.
    diesel::update(audit_head::table.find(1))
        .set(audit_head::last_seq.eq(audit_head::last_seq))
        .execute(conn)?;
    let (last_seq, last_hash): (i64, String) = audit_head::table
        .find(1)
        .select((audit_head::last_seq, audit_head::last_hash))
        .first(conn)?;
    let mut entry = AuditEntry {
        seq: last_seq + 1,
        occurred_at: truncate_to_micros(now),
        actor_user_id: event.actor_user_id.map(str::to_owned),
        actor_organization_id: event.actor_organization_id.map(str::to_owned),
        action: event.action.to_owned(),
        entity_kind: event.entity_kind.to_owned(),
        entity_id: event.entity_id.to_owned(),
        from_state: event.from_state.map(str::to_owned),
        to_state: event.to_state.map(str::to_owned),
        details: event.details.to_string(),
        prev_hash: last_hash,
        hash: String::new(),
    };
    entry.hash = entry.compute_hash();
    diesel::insert_into(audit_log::table)
        .values(&entry)
        .execute(conn)?;
    diesel::update(audit_head::table.find(1))
        .set((
            audit_head::last_seq.eq(entry.seq),
            audit_head::last_hash.eq(&entry.hash),
        ))
        .execute(conn)?;
    LAST_APPENDED.with(|last| {
        *last.borrow_mut() = Some(Appended {
            action: entry.action,
            entity_kind: entry.entity_kind,
            entity_id: entry.entity_id,
        })
    });
    Ok(entry.seq)
}

/// Appends several entries in order, as [`append`] one after the other would, with
/// one read of the head and statements of many rows: for a bulk import, whose batch may
/// move thousands of levels in one transaction.
pub fn append_all(
    conn: &mut DbConnection,
    events: &[AuditEvent<'_>],
    now: NaiveDateTime,
) -> QueryResult<()> {
    /// Rows per statement: within SQLite's bound-parameter limit at 12 columns.
    const ROWS: usize = 1000;
    let Some(last_event) = events.last() else {
        return Ok(());
    };
    diesel::update(audit_head::table.find(1))
        .set(audit_head::last_seq.eq(audit_head::last_seq))
        .execute(conn)?;
    let (mut seq, mut prev_hash): (i64, String) = audit_head::table
        .find(1)
        .select((audit_head::last_seq, audit_head::last_hash))
        .first(conn)?;
    let mut entries = Vec::with_capacity(events.len());
    for event in events {
        seq += 1;
        let mut entry = AuditEntry {
            seq,
            occurred_at: truncate_to_micros(now),
            actor_user_id: event.actor_user_id.map(str::to_owned),
            actor_organization_id: event.actor_organization_id.map(str::to_owned),
            action: event.action.to_owned(),
            entity_kind: event.entity_kind.to_owned(),
            entity_id: event.entity_id.to_owned(),
            from_state: event.from_state.map(str::to_owned),
            to_state: event.to_state.map(str::to_owned),
            details: event.details.to_string(),
            prev_hash,
            hash: String::new(),
        };
        entry.hash = entry.compute_hash();
        prev_hash = entry.hash.clone();
        entries.push(entry);
    }
    for chunk in entries.chunks(ROWS) {
        match conn {
            DbConnection::Sqlite(c) => diesel::insert_into(audit_log::table)
                .values(chunk)
                .execute(c)?,
            DbConnection::Pg(c) => diesel::insert_into(audit_log::table)
                .values(chunk)
                .execute(c)?,
        };
    }
    diesel::update(audit_head::table.find(1))
        .set((
            audit_head::last_seq.eq(seq),
            audit_head::last_hash.eq(&prev_hash),
        ))
        .execute(conn)?;
    LAST_APPENDED.with(|last| {
        *last.borrow_mut() = Some(Appended {
            action: last_event.action.to_owned(),
            entity_kind: last_event.entity_kind.to_owned(),
            entity_id: last_event.entity_id.to_owned(),
        })
    });
    Ok(())
}

fn truncate_to_micros(t: NaiveDateTime) -> NaiveDateTime {
    use chrono::SubsecRound;
    t.trunc_subsecs(6)
}

/// The outcome of checking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ChainCheck {
    /// Every link holds; `entries` were checked.
    Intact { entries: u64 },
    /// The first entry whose stored hash, back-link or sequence is wrong.
    Broken { seq: i64, reason: String },
}

/// Walks the chain from the start in pages and reports the first broken link, including
/// entries deleted from the end (the head row remembers the last hash).
pub fn verify_chain(conn: &mut DbConnection) -> QueryResult<ChainCheck> {
    const PAGE: i64 = 1_000;
    let mut expected_prev = "0".repeat(64);
    let mut expected_seq = 1_i64;
    let mut checked = 0_u64;
    loop {
        let page: Vec<AuditEntry> = audit_log::table
            .filter(audit_log::seq.ge(expected_seq))
            .order(audit_log::seq.asc())
            .limit(PAGE)
            .select(AuditEntry::as_select())
            .load(conn)?;
        let done = (page.len() as i64) < PAGE;
        for entry in page {
            if entry.seq != expected_seq {
                return Ok(ChainCheck::Broken {
                    seq: expected_seq,
                    reason: format!(
                        "entry {expected_seq} is missing (next present is {})",
                        entry.seq
                    ),
                });
            }
            if entry.prev_hash != expected_prev {
                return Ok(ChainCheck::Broken {
                    seq: entry.seq,
                    reason: "its link to the previous entry does not match".into(),
                });
            }
            if entry.compute_hash() != entry.hash {
                return Ok(ChainCheck::Broken {
                    seq: entry.seq,
                    reason: "its content was changed after it was written".into(),
                });
            }
            expected_prev = entry.hash;
            expected_seq += 1;
            checked += 1;
        }
        if done {
            break;
        }
    }
    let (last_seq, last_hash): (i64, String) = audit_head::table
        .find(1)
        .select((audit_head::last_seq, audit_head::last_hash))
        .first(conn)?;
    if last_seq != expected_seq - 1 || last_hash != expected_prev {
        return Ok(ChainCheck::Broken {
            seq: expected_seq,
            reason: format!(
                "entries after {} were removed (the chain head says {last_seq})",
                expected_seq - 1
            ),
        });
    }
    Ok(ChainCheck::Intact { entries: checked })
}
