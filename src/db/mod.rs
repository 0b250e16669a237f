//! Persistence: one diesel `MultiConnection` over SQLite and PostgreSQL, an r2d2 pool,
//! embedded migrations per backend, and the few places where the dialects differ.

pub mod any_of;
pub mod audit;
pub mod checkpoint;
pub(crate) mod columns;
pub mod models;
pub mod schema;
pub mod trust_version;
pub mod write_gate;

use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::r2d2::{CustomizeConnection, ManageConnection, Pool, PooledConnection, R2D2Connection};
use diesel::sqlite::SqliteConnection;
use diesel::Connection as _;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// A key no other program on a shared PostgreSQL should use: several `baohan serve`
/// instances starting together take it so only one of them runs the migrations.
const MIGRATION_LOCK_KEY: i64 = 0x6261_6f68_616e_0001;

/// A connection to either backend. Queries written once against [`schema`] run on both.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Sqlite(SqliteConnection),
    Pg(PgConnection),
}

pub type DbPool = Pool<ConnectionManager>;
pub type PooledConn = PooledConnection<ConnectionManager>;

/// Which backend a database URL names. Chosen from the scheme alone: a PostgreSQL URL
/// that fails to connect is an error, never a silent fall-back to SQLite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database URL must start with sqlite:// or postgres:// (got scheme {0:?})")]
    UnknownScheme(String),
    #[error("could not open the database pool: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("could not connect to the database: {0}")]
    Connect(#[from] diesel::ConnectionError),
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migrations failed: {0}")]
    Migration(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("there is no database at {0}: check the data directory or BAOHAN_DATABASE_URL")]
    Missing(String),
    #[error(
        "the database holds no Baohan schema, or an older one ({0}): check the URL, or run \
         `baohan migrate` first"
    )]
    Schema(String),
    #[error("could not create the database directory {path}: {source}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
}

impl Backend {
    /// Splits `sqlite://path` or `postgres://...` into the backend and the URL diesel wants.
    pub fn from_url(url: &str) -> Result<(Backend, String), DbError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            Ok((Backend::Sqlite, path.to_owned()))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok((Backend::Postgres, url.to_owned()))
        } else {
            let scheme = url.split(':').next().unwrap_or_default().to_owned();
            Err(DbError::UnknownScheme(scheme))
        }
    }
}

impl DbConnection {
    /// Connects to the backend the URL's scheme names. (The derived
    /// `MultiConnection::establish` tries each backend in turn, which could open a
    /// PostgreSQL URL as a SQLite file; we never call it.)
    pub fn open(
        backend: Backend,
        diesel_url: &str,
    ) -> Result<DbConnection, diesel::ConnectionError> {
        Ok(match backend {
            Backend::Sqlite => DbConnection::Sqlite(SqliteConnection::establish(diesel_url)?),
            Backend::Postgres => DbConnection::Pg(pg_establish(diesel_url)?),
        })
    }

    pub fn backend(&self) -> Backend {
        match self {
            DbConnection::Sqlite(_) => Backend::Sqlite,
            DbConnection::Pg(_) => Backend::Postgres,
        }
    }
}

/// Opens a PostgreSQL connection, OpenSSL set up first by its Rust binding. libpq
/// initializes OpenSSL itself when nothing did, and then OpenSSL frees its state at
/// exit while other threads may still be using it (a crash after a clean run); the
/// binding's initialization asks OpenSSL not to.
pub fn pg_establish(url: &str) -> Result<PgConnection, diesel::ConnectionError> {
    openssl::init();
    PgConnection::establish(url)
}

/// The r2d2 manager: like diesel's, but it opens the backend chosen from the scheme.
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    backend: Backend,
    diesel_url: String,
}

impl ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        DbConnection::open(self.backend, &self.diesel_url)
            .map_err(diesel::r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

/// Per-connection SQLite settings. `busy_timeout` comes first so that the others wait
/// for a lock instead of failing while another connection holds it.
#[derive(Debug, Clone, Copy)]
struct SqlitePragmas;

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        if let DbConnection::Sqlite(c) = conn {
            c.batch_execute(&format!(
                "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; \
                 PRAGMA wal_autocheckpoint = {};",
                checkpoint::AUTOCHECKPOINT_PAGES
            ))
            .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// Opens the pool and brings the schema up to date before anyone uses it.
pub fn connect(url: &str, max_size: u32) -> Result<DbPool, DbError> {
    let (backend, diesel_url) = prepare(url)?;
    // One connection first: migrations (and WAL for SQLite, which is a property of the
    // file and is set once) run before the pool hands out connections.
    let mut first = DbConnection::open(backend, &diesel_url)?;
    if let DbConnection::Sqlite(c) = &mut first {
        c.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL;")?;
    }
    run_migrations(&mut first)?;
    drop(first);

    let manager = ConnectionManager {
        backend,
        diesel_url,
    };
    let builder = Pool::builder()
        .max_size(max_size)
        .connection_timeout(Duration::from_secs(10));
    let builder = match backend {
        Backend::Sqlite => builder.connection_customizer(Box::new(SqlitePragmas)),
        Backend::Postgres => builder,
    };
    Ok(builder.build(manager)?)
}

/// Turns our URL into diesel's, creating the SQLite file's directory when needed.
/// Opens an existing database read-only, for the tools that only look at it
/// (`baohan audit verify`): a SQLite file must exist (nothing is created for a mistyped
/// path) and every migration must have been applied (nothing is migrated).
pub fn open_existing_read_only(url: &str) -> Result<DbConnection, DbError> {
    use diesel::migration::MigrationSource;
    let (backend, diesel_url) = Backend::from_url(url)?;
    let (mut conn, expected) = match backend {
        Backend::Sqlite => {
            if !std::path::Path::new(&diesel_url).is_file() {
                return Err(DbError::Missing(diesel_url));
            }
            // A URI keeps SQLite from creating or writing anything; characters with a
            // meaning in URIs are escaped.
            let mut escaped = String::with_capacity(diesel_url.len());
            for c in diesel_url.chars() {
                match c {
                    '%' | '?' | '#' | ' ' => escaped.push_str(&format!("%{:02X}", c as u32)),
                    c => escaped.push(c),
                }
            }
            let conn = SqliteConnection::establish(&format!("file:{escaped}?mode=ro"))?;
            let expected =
                MigrationSource::<diesel::sqlite::Sqlite>::migrations(&SQLITE_MIGRATIONS)
                    .map_err(DbError::Migration)?
                    .iter()
                    .map(|m| m.name().version().to_string())
                    .collect::<Vec<_>>();
            (DbConnection::Sqlite(conn), expected)
        }
        Backend::Postgres => {
            let mut conn = pg_establish(&diesel_url)?;
            conn.batch_execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")?;
            let expected = MigrationSource::<diesel::pg::Pg>::migrations(&POSTGRES_MIGRATIONS)
                .map_err(DbError::Migration)?
                .iter()
                .map(|m| m.name().version().to_string())
                .collect::<Vec<_>>();
            (DbConnection::Pg(conn), expected)
        }
    };
    #[derive(diesel::QueryableByName)]
    struct Applied {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
    }
    let query = diesel::sql_query("SELECT version FROM __diesel_schema_migrations");
    let applied: Vec<Applied> = match &mut conn {
        DbConnection::Sqlite(c) => diesel::RunQueryDsl::load(query, c),
        DbConnection::Pg(c) => diesel::RunQueryDsl::load(query, c),
    }
    .map_err(|_| DbError::Schema("no migrations table".into()))?;
    let applied: std::collections::HashSet<String> =
        applied.into_iter().map(|a| a.version).collect();
    if let Some(missing) = expected.iter().find(|v| !applied.contains(*v)) {
        return Err(DbError::Schema(format!("migration {missing} not applied")));
    }
    Ok(conn)
}

fn prepare(url: &str) -> Result<(Backend, String), DbError> {
    let (backend, diesel_url) = Backend::from_url(url)?;
    if backend == Backend::Sqlite {
        if let Some(parent) = std::path::Path::new(&diesel_url).parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|source| DbError::Directory {
                    path: parent.display().to_string(),
                    source,
                })?;
            }
        }
    }
    Ok((backend, diesel_url))
}

/// Runs pending migrations for the connection's backend. Several processes starting
/// together on one database wait for one another instead of racing (each would find
/// the same migrations pending and the losers fail on "table already exists"): on
/// PostgreSQL an advisory lock, on SQLite the write lock, taken before the pending
/// migrations are looked up and held until they are applied (each migration's own
/// transaction becomes a savepoint inside it).
pub fn run_migrations(conn: &mut DbConnection) -> Result<(), DbError> {
    match conn {
        DbConnection::Sqlite(c) => {
            c.immediate_transaction(|c| c.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| ()))
                .map_err(DbError::Migration)?;
        }
        DbConnection::Pg(c) => {
            c.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))?;
            let migrated = c
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|_| ())
                .and_then(|()| ensure_change_notices(c).map_err(Into::into));
            let unlocked =
                c.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"));
            // A failed migration is the cause worth reporting, even if unlocking failed
            // too (the lock goes with the session anyway).
            migrated.map_err(DbError::Migration)?;
            unlocked?;
        }
    }
    Ok(())
}

/// The PostgreSQL channel every committed change of a table is announced on.
pub const CHANGE_CHANNEL: &str = "baohan_changes";

/// Makes every table of the schema announce its changes on [`CHANGE_CHANNEL`]:
/// statement-level triggers, one per kind of statement, that notify when the statement
/// changed a row (its transition table is not empty: a poll that updates nothing is no
/// change) or truncated the table. PostgreSQL delivers the notice when the transaction
/// commits, to listeners of this database only, once per transaction. Run after the
/// migrations at every start, so a table a later migration adds is covered too. The
/// instances' page caches listen (`web::page_cache`).
fn ensure_change_notices(c: &mut PgConnection) -> diesel::QueryResult<()> {
    c.batch_execute(&format!(
        r#"
CREATE OR REPLACE FUNCTION baohan_note_change() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('{CHANGE_CHANNEL}', '');
        RETURN NULL;
    END IF;
    IF EXISTS (SELECT 1 FROM baohan_changed_rows) THEN
        PERFORM pg_notify('{CHANGE_CHANNEL}', '');
    END IF;
    RETURN NULL;
END
$f$;
DO $d$
DECLARE
    t record;
    kind text[];
BEGIN
    FOR t IN
        SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() AND c.relkind = 'r'
          AND c.relname <> '__diesel_schema_migrations'
    LOOP
        -- The first form of this notice: one trigger for every kind of statement,
        -- which also notified for statements that changed nothing.
        -- (dropped only where it exists: a DROP locks the table even when there is
        -- nothing to drop, and this runs at every start beside serving instances).
        IF EXISTS (SELECT 1 FROM pg_trigger g
                   WHERE g.tgrelid = t.oid AND g.tgname = 'baohan_change_notice') THEN
            EXECUTE format('DROP TRIGGER baohan_change_notice ON %I', t.relname);
        END IF;
        FOREACH kind SLICE 1 IN ARRAY ARRAY[
            ['insert', 'INSERT', 'REFERENCING NEW TABLE AS baohan_changed_rows'],
            ['update', 'UPDATE', 'REFERENCING NEW TABLE AS baohan_changed_rows'],
            ['delete', 'DELETE', 'REFERENCING OLD TABLE AS baohan_changed_rows'],
            ['truncate', 'TRUNCATE', '']
        ]
        LOOP
            IF NOT EXISTS (SELECT 1 FROM pg_trigger g
                           WHERE g.tgrelid = t.oid AND g.tgname = 'baohan_changed_' || kind[1]) THEN
                EXECUTE format('CREATE TRIGGER %I AFTER %s ON %I %s '
                               'FOR EACH STATEMENT EXECUTE FUNCTION baohan_note_change()',
                               'baohan_changed_' || kind[1], kind[2], t.relname, kind[3]);
            END IF;
        END LOOP;
    END LOOP;
END
$d$;
"#
    ))
}

/// Runs `f` in one write transaction. On SQLite it is `BEGIN IMMEDIATE`, so the write
/// lock is taken up front and a later lock upgrade cannot fail with SQLITE_BUSY.
pub fn write_tx<T, E>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    write_tx_with_hook(conn, f, |_| Ok(()))
}

/// Like [`write_tx`], and once `f` has succeeded, `before_commit` runs in the same
/// transaction just before COMMIT: what it writes commits with `f`'s work or not at all,
/// and its failure rolls `f`'s work back. (An idempotency key records there that its
/// request's change committed.) [`audit::last_appended`] tells the hook what `f`
/// audited.
pub fn write_tx_with_hook<T, E>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, E>,
    before_commit: impl FnOnce(&mut DbConnection) -> Result<(), E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    match conn {
        DbConnection::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?
        }
        DbConnection::Pg(c) => AnsiTransactionManager::begin_transaction(c)?,
    }
    audit::forget_appended();
    match f(conn).and_then(|value| before_commit(conn).map(|()| value)) {
        Ok(value) => match DbConnection::commit_transaction(conn) {
            Ok(()) => Ok(value),
            Err(e) => {
                // A failed COMMIT may leave the transaction open; roll it back so the
                // pooled connection is clean for its next user. The commit's error is
                // the cause the caller gets.
                if let Err(rollback) = DbConnection::rollback_transaction(conn) {
                    tracing::error!(error = %rollback, "rollback after a failed commit failed");
                }
                Err(e.into())
            }
        },
        Err(e) => {
            // The caller gets its own error, not the rollback's: a failed rollback is
            // logged (diesel marks the connection broken, so the pool drops it).
            if let Err(rollback) = DbConnection::rollback_transaction(conn) {
                tracing::error!(error = %rollback, "rollback failed");
            }
            Err(e)
        }
    }
}

/// Holds, until the transaction on `conn` ends, a lock every caller passing the same
/// `key` waits for: on PostgreSQL a transaction-scoped advisory lock; on SQLite nothing
/// more is needed, [`write_tx`]'s `BEGIN IMMEDIATE` already holds the write lock. For
/// read-then-insert work that several instances may start together (seeding).
pub fn lock_for_transaction(conn: &mut DbConnection, key: i64) -> diesel::QueryResult<()> {
    match conn {
        DbConnection::Sqlite(_) => Ok(()),
        DbConnection::Pg(c) => c.batch_execute(&format!("SELECT pg_advisory_xact_lock({key})")),
    }
}

/// Does the database take a write? Used by `/readyz`: a database that answers reads but
/// refuses writes (a read-only file, data directory or replica) fails every sign-in.
pub fn check_writable(conn: &mut DbConnection) -> Result<(), DbError> {
    use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl};
    use schema::readiness_probe;
    let changed = diesel::update(readiness_probe::table.find(1))
        .set(readiness_probe::probes.eq(readiness_probe::probes + 1))
        .execute(conn)?;
    if changed != 1 {
        return Err(DbError::Schema("no readiness probe row".into()));
    }
    Ok(())
}
