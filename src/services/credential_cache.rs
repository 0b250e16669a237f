//! Credentials this instance resolved lately, kept in memory so that a signed-in request
//! need not take a pooled connection on a blocking thread to learn who sent it.
//!
//! Any change that could end or alter a credential (a session ended, an API token revoked
//! or re-dated, a user changed or deactivated, an organization renamed or of another
//! kind) moves the credential epoch in its own transaction (triggers, migration 46). A
//! credential is kept with the epoch read before it was; it answers only while
//!
//! - the epoch, read again for this request, is still the one it was kept with: a
//!   change committed by any instance or process is in force at the next request, as
//!   if nothing were kept;
//! - it was kept less than [`MAX_AGE`] ago, and the caller's own rules say it still
//!   answers (`auth`: not expired by the exchange's clock, and for an API token, its
//!   last use written less than a minute ago, since that write is the slow path's).
//!
//! The epoch is read on a connection of the cache's own, on the calling thread: on
//! SQLite that is one indexed read from memory, a few microseconds, cheaper than the
//! hop to a blocking thread it saves. On PostgreSQL the same read is a round trip, as
//! long as the look-up it would save, so nothing is kept there (the cache is made with
//! no entries). Failed look-ups are never kept.

use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::db::schema::credential_epoch;
use crate::db::DbConnection;

/// A kept credential is resolved again after this long, whatever the epoch says.
pub const MAX_AGE: Duration = Duration::from_secs(60);

/// How long the epoch's read waits for a lock (WAL readers seldom wait at all);
/// longer, and the request takes the slow path instead of holding its thread.
const READ_BUSY_MS: u32 = 20;

#[derive(Debug)]
struct Kept<V> {
    value: V,
    epoch: i64,
    kept_at: Instant,
}

/// The key a credential is kept under: the SHA-256 of its token, never the token.
pub type TokenDigest = [u8; 32];

pub fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

/// The credential epoch, read on `conn`.
pub fn epoch(conn: &mut DbConnection) -> QueryResult<i64> {
    credential_epoch::table
        .find(1)
        .select(credential_epoch::n)
        .first(conn)
}

/// Resolved credentials `V` by the digest of their token.
pub struct CredentialCache<V> {
    kept: Option<quick_cache::sync::Cache<TokenDigest, Arc<Kept<V>>>>,
    /// The SQLite file the epoch is read from.
    database: Option<String>,
    /// Idle connections of the epoch's reads, one per thread that read at once at most.
    readers: Mutex<Vec<diesel::SqliteConnection>>,
}

impl<V> std::fmt::Debug for CredentialCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialCache")
            .field("entries", &self.kept.as_ref().map_or(0, |k| k.len()))
            .finish_non_exhaustive()
    }
}

impl<V: Clone + Send + Sync + 'static> CredentialCache<V> {
    /// A cache of at most `entries` credentials of the SQLite database at `database`
    /// (a path as diesel opens it); none without a database or with 0 entries.
    pub fn new(entries: usize, database: Option<String>) -> CredentialCache<V> {
        CredentialCache {
            kept: (entries > 0 && database.is_some())
                .then(|| quick_cache::sync::Cache::new(entries)),
            database,
            readers: Mutex::new(Vec::new()),
        }
    }

    /// A cache that keeps nothing.
    pub fn none() -> CredentialCache<V> {
        CredentialCache::new(0, None)
    }

    pub fn enabled(&self) -> bool {
        self.kept.is_some()
    }

    /// The epoch now, or `None` when it cannot be read at once (then nothing answers
    /// from memory).
    fn current_epoch(&self) -> Option<i64> {
        use diesel::connection::SimpleConnection;
        let idle = self.readers.lock().pop();
        let mut conn = match idle {
            Some(conn) => conn,
            None => {
                let mut conn = diesel::SqliteConnection::establish(self.database.as_ref()?).ok()?;
                conn.batch_execute(&format!("PRAGMA busy_timeout = {READ_BUSY_MS};"))
                    .ok()?;
                conn
            }
        };
        let read = credential_epoch::table
            .find(1)
            .select(credential_epoch::n)
            .first(&mut conn);
        match read {
            Ok(epoch) => {
                self.readers.lock().push(conn);
                Some(epoch)
            }
            Err(e) => {
                tracing::debug!(error = %e, "the credential epoch could not be read at once");
                None
            }
        }
    }

    /// The credential kept for `digest`, if `answers` says it still does (expiry, by the
    /// caller's rules) and the epoch has not moved since it was kept.
    pub fn get(&self, digest: &TokenDigest, answers: impl FnOnce(&V) -> bool) -> Option<V> {
        let kept = self.kept.as_ref()?.get(digest)?;
        if kept.kept_at.elapsed() >= MAX_AGE || !answers(&kept.value) {
            return None;
        }
        (self.current_epoch()? == kept.epoch).then(|| kept.value.clone())
    }

    /// Keeps `value`, read from the database after the epoch `epoch` was.
    pub fn keep(&self, digest: TokenDigest, epoch: i64, value: V) {
        if let Some(kept) = &self.kept {
            kept.insert(
                digest,
                Arc::new(Kept {
                    value,
                    epoch,
                    kept_at: Instant::now(),
                }),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;

    use super::*;

    /// A database with the epoch's table, a connection that moves it, and a cache.
    fn database() -> (
        tempfile::TempDir,
        diesel::SqliteConnection,
        CredentialCache<String>,
    ) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("epoch.db").display().to_string();
        let mut conn = diesel::SqliteConnection::establish(&path).expect("a database");
        conn.batch_execute(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE credential_epoch (id INTEGER PRIMARY KEY, n BIGINT NOT NULL);
             INSERT INTO credential_epoch VALUES (1, 5);",
        )
        .expect("the table");
        (dir, conn, CredentialCache::new(10, Some(path)))
    }

    fn always(_: &String) -> bool {
        true
    }

    #[test]
    fn a_kept_credential_answers_until_another_connection_moves_the_epoch() {
        let (_dir, mut other, cache) = database();
        let key = digest("bhs_x");
        assert_eq!(cache.get(&key, always), None, "nothing kept yet");
        cache.keep(key, 5, "alice".into());
        assert_eq!(cache.get(&key, always).as_deref(), Some("alice"));
        assert_eq!(cache.get(&digest("bhs_y"), always), None, "another token");
        assert_eq!(
            cache.get(&key, |_| false),
            None,
            "the caller's rules say no"
        );

        other
            .batch_execute("UPDATE credential_epoch SET n = n + 1")
            .expect("moved");
        assert_eq!(cache.get(&key, always), None, "the epoch moved");
        // Kept again under the new epoch (what the slow path does next), it answers.
        cache.keep(key, 6, "alice".into());
        assert_eq!(cache.get(&key, always).as_deref(), Some("alice"));
        // Kept under an epoch read before a change that committed since: never answers.
        cache.keep(key, 5, "alice".into());
        assert_eq!(cache.get(&key, always), None);
    }

    #[test]
    fn an_unreadable_epoch_answers_nothing_and_no_database_keeps_nothing() {
        let (_dir, mut other, cache) = database();
        let key = digest("bhs_x");
        cache.keep(key, 5, "alice".into());
        other
            .batch_execute("DROP TABLE credential_epoch")
            .expect("dropped");
        assert_eq!(cache.get(&key, always), None);

        let none = CredentialCache::<String>::none();
        assert!(!none.enabled());
        none.keep(key, 5, "alice".into());
        assert_eq!(none.get(&key, always), None);
        assert!(!CredentialCache::<String>::new(0, Some("x.db".into())).enabled());
    }
}
