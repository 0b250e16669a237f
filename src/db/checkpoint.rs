//! SQLite's write-ahead log copied back into the database file by a task of its own, off
//! the writers' path.
//!
//! By default the writer whose commit takes the log past 1,000 pages copies it back
//! itself, and syncs the database file, while it still holds the write lock: every
//! writer behind it waits for a disk sync (the office's lookups at a million subjects had
//! a p90 of 103 ms and a p99 of 650 ms, BENCHMARKS.md §5). Each instance now checkpoints
//! every [`INTERVAL`] on a connection of its own, in SQLite's PASSIVE mode, which takes no
//! lock a writer needs; the writers' own checkpoint stays as a backstop, at
//! [`AUTOCHECKPOINT_PAGES`] (it runs only if this task falls behind).

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Integer;

/// How often an instance checkpoints.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// The log's size in pages past which a committing writer checkpoints (SQLite's
/// `wal_autocheckpoint`, set on every pooled connection).
pub const AUTOCHECKPOINT_PAGES: u32 = 10_000;

#[derive(Debug, QueryableByName, PartialEq, Eq)]
pub struct Checkpointed {
    /// 1 when the checkpoint could not run at all (another one was running).
    #[diesel(sql_type = Integer)]
    pub busy: i32,
    /// Pages in the log.
    #[diesel(sql_type = Integer)]
    pub log: i32,
    /// Pages of the log now in the database file.
    #[diesel(sql_type = Integer)]
    pub checkpointed: i32,
}

/// One PASSIVE checkpoint on `conn`: as much of the log as no reader still needs.
pub fn checkpoint(conn: &mut SqliteConnection) -> QueryResult<Checkpointed> {
    diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result(conn)
}

/// Checkpoints the SQLite database at `path` every [`INTERVAL`] until the process ends.
pub async fn run(path: String) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut kept: Option<SqliteConnection> = None;
    loop {
        tick.tick().await;
        let (path, taken) = (path.clone(), kept.take());
        let done = tokio::task::spawn_blocking(move || {
            let mut conn = match taken {
                Some(conn) => conn,
                None => {
                    let mut conn = SqliteConnection::establish(&path).map_err(|e| e.to_string())?;
                    conn.batch_execute("PRAGMA busy_timeout = 1000;")
                        .map_err(|e| e.to_string())?;
                    conn
                }
            };
            checkpoint(&mut conn).map_err(|e| e.to_string())?;
            Ok::<_, String>(conn)
        })
        .await;
        match done {
            Ok(Ok(conn)) => kept = Some(conn),
            Ok(Err(e)) => tracing::warn!(error = %e, "checkpointing the database failed"),
            Err(e) => tracing::warn!(error = %e, "the checkpoint task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passive_checkpoint_copies_back_what_writers_left_in_the_log() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("wal.db").display().to_string();
        let mut writer = SqliteConnection::establish(&path).expect("a database");
        writer
            .batch_execute(&format!(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_PAGES};
                 CREATE TABLE t (x TEXT);"
            ))
            .expect("the table");
        for _ in 0..200 {
            writer
                .batch_execute("INSERT INTO t VALUES (hex(randomblob(2000)));")
                .expect("a row");
        }
        let mut checkpointer = SqliteConnection::establish(&path).expect("a connection");
        let done = checkpoint(&mut checkpointer).expect("a checkpoint");
        assert_eq!(done.busy, 0);
        assert!(
            done.log > 100,
            "the writer left its pages in the log: {done:?}"
        );
        assert_eq!(done.checkpointed, done.log, "{done:?}");
    }
}
