//! One instance's writers to a SQLite database, let in one at a time in the order they
//! came.
//!
//! SQLite has one writer at a time. Without a queue, writers that find the write lock
//! taken sleep in SQLite's busy handler and try again after 1, 2, 5, 10 ... up to 100 ms:
//! under load most of a write's time is spent asleep while the lock is free, and the
//! unlucky ones wait hundreds of milliseconds (the scale benchmark's p99 of 0.3 to 1.1 s
//! on SQLite). The gate makes the instance's own writers wait in line on a fair mutex
//! instead, and hands the lock over the moment it is released. Other processes and
//! writers that do not pass the gate still meet SQLite's busy handler, as before.
//!
//! PostgreSQL has row locks and many writers: it passes everyone at once.

use std::time::Duration;

use parking_lot::{FairMutex, FairMutexGuard};

use super::DbConnection;

/// How long a writer waits in line before it goes ahead anyway (to SQLite's own busy
/// handler): the `busy_timeout` every connection has. A writer that waits this long is
/// stuck behind something the gate cannot see, such as a nested write.
const WAIT: Duration = Duration::from_millis(5_000);

#[derive(Debug, Default)]
pub struct WriteGate(FairMutex<()>);

/// A writer's turn: the gate is open to the next one when it is dropped.
pub struct Turn<'a>(#[allow(dead_code)] Option<FairMutexGuard<'a, ()>>);

impl WriteGate {
    pub fn new() -> WriteGate {
        WriteGate::default()
    }

    /// Waits for this writer's turn on `conn`'s database (at once on PostgreSQL).
    pub fn enter(&self, conn: &DbConnection) -> Turn<'_> {
        match conn {
            DbConnection::Sqlite(_) => {
                let turn = self.0.try_lock_for(WAIT);
                if turn.is_none() {
                    tracing::warn!("a writer waited 5 s in line and goes ahead without its turn");
                }
                Turn(turn)
            }
            DbConnection::Pg(_) => Turn(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn writers_on_sqlite_take_turns_in_the_order_they_came() {
        let gate = Arc::new(WriteGate::new());
        let conn = DbConnection::Sqlite(
            <diesel::SqliteConnection as diesel::Connection>::establish(":memory:")
                .expect("an in-memory database"),
        );
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = gate.enter(&conn);
        let mut waiting = Vec::new();
        for n in 0..4 {
            let (gate, order) = (gate.clone(), order.clone());
            let (ready_tx, ready) = std::sync::mpsc::channel();
            waiting.push(std::thread::spawn(move || {
                let conn = DbConnection::Sqlite(
                    <diesel::SqliteConnection as diesel::Connection>::establish(":memory:")
                        .expect("an in-memory database"),
                );
                ready_tx.send(()).expect("the test waits");
                let _turn = gate.enter(&conn);
                order.lock().expect("not poisoned").push(n);
            }));
            ready.recv().expect("the writer started");
            // Let it reach the gate before the next one comes.
            std::thread::sleep(Duration::from_millis(30));
        }
        assert!(
            order.lock().expect("not poisoned").is_empty(),
            "nobody passed a held gate"
        );
        drop(first);
        for w in waiting {
            w.join().expect("the writer ended");
        }
        assert_eq!(*order.lock().expect("not poisoned"), vec![0, 1, 2, 3]);
    }
}
