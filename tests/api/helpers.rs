use std::path::Path;
use std::sync::{Arc, Once};

use baohan::config::Settings;
use baohan::db::DbPool;
use baohan::services::demo;
use baohan::startup::Application;
use serde_json::Value;

/// The admin URL of a PostgreSQL server to make per-test databases on.
pub const POSTGRES_ENV: &str = "BAOHAN_TEST_POSTGRES_URL";
/// When set, a missing PostgreSQL URL fails the PostgreSQL half instead of skipping it.
pub const REQUIRE_POSTGRES_ENV: &str = "BAOHAN_TEST_REQUIRE_POSTGRES";

/// Runs each named test case (an `async fn(TestApp)`) once per backend, as
/// `<module>::sqlite::<name>` and `<module>::postgres::<name>`.
#[macro_export]
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::helpers::spawn_sqlite().await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    // Before libpq can initialize OpenSSL with a cleanup at exit.
                    openssl::init();
                    if let Some(app) = $crate::helpers::spawn_postgres().await {
                        super::$case(app).await
                    }
                }
            )*
        }
    };
    // Cases that start the app themselves (with settings of their own) take the
    // backend instead: `async fn(TestBackend)`.
    (configured: $($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::helpers::TestBackend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    openssl::init();
                    if $crate::helpers::postgres_configured() {
                        super::$case($crate::helpers::TestBackend::Postgres).await
                    }
                }
            )*
        }
    };
}

/// The database a configured case runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
}

impl TestBackend {
    /// Starts the app on this backend with the harness settings, then `configure`'s.
    pub async fn spawn_with(
        self,
        configure: impl FnOnce(&mut Settings) + Send + 'static,
    ) -> TestApp {
        match self {
            TestBackend::Sqlite => spawn_sqlite_with(configure).await,
            TestBackend::Postgres => spawn_postgres_with(configure)
                .await
                .expect("PostgreSQL is configured (checked before the case ran)"),
        }
    }
}

/// Whether the PostgreSQL half can run; says so when it is skipped.
pub fn postgres_configured() -> bool {
    if std::env::var(POSTGRES_ENV).is_ok() {
        return true;
    }
    if std::env::var(REQUIRE_POSTGRES_ENV).is_ok() {
        panic!("{REQUIRE_POSTGRES_ENV} is set but {POSTGRES_ENV} is not");
    }
    eprintln!("skipped: set {POSTGRES_ENV} to run this test on PostgreSQL");
    false
}

/// A PostgreSQL database made for one test, dropped when the test ends.
pub struct PostgresDb {
    admin_url: String,
    name: String,
    pub url: String,
}

impl Drop for PostgresDb {
    /// Drops the database without making the test wait: PostgreSQL forces a checkpoint
    /// for every `DROP DATABASE` and waits for it, which, with other tests writing, took
    /// seconds per test. A `psql` left running does it (and outlives a test process that
    /// ends now); without `psql`, the test waits for the drop itself.
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        let detached = std::process::Command::new("psql")
            .args(["-X", "-q", "-d", &self.admin_url, "-c", &sql])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        match detached {
            // Reaped when it ends, if this process is still there.
            Ok(mut child) => {
                std::thread::spawn(move || child.wait());
            }
            Err(_) => {
                let admin_url = self.admin_url.clone();
                // Drop runs inside the async test: do the blocking work on a plain thread.
                let _ = std::thread::spawn(move || {
                    use diesel::RunQueryDsl;
                    if let Ok(mut c) = baohan::db::pg_establish(&admin_url) {
                        let _ = diesel::sql_query(sql).execute(&mut c);
                    }
                })
                .join();
            }
        }
    }
}

/// A running server with the demo accounts, and a client for it.
pub struct TestApp {
    pub address: String,
    /// A client without cookies: what the fixtures' sessions send their tokens with,
    /// so that no request is ever authenticated by another sign-in's cookie (a browser
    /// has a client of its own).
    pub api: reqwest::Client,
    pub pool: DbPool,
    /// The settings the app runs with.
    pub settings: Settings,
    /// The server's services context: its clock can be moved forward.
    pub ctx: baohan::services::Context,
    // Field order is drop order: the pool closes before the database is dropped. Other
    // instances on the same database share both.
    _postgres: Option<Arc<PostgresDb>>,
    _data_dir: Arc<tempfile::TempDir>,
}

fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var("TEST_LOG").is_ok() {
            baohan::startup::init_tracing("debug");
        }
    });
}

pub async fn spawn_sqlite() -> TestApp {
    spawn_sqlite_with(|_| {}).await
}

/// `None` (after saying so) when no PostgreSQL is configured and none is required.
pub async fn spawn_postgres() -> Option<TestApp> {
    spawn_postgres_with(|_| {}).await
}

/// Like [`spawn_sqlite`], with `configure` applied to the settings last.
pub async fn spawn_sqlite_with(configure: impl FnOnce(&mut Settings) + Send + 'static) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    spawn(url, dir, None, configure).await
}

/// Like [`spawn_postgres`], with `configure` applied to the settings last.
pub async fn spawn_postgres_with(
    configure: impl FnOnce(&mut Settings) + Send + 'static,
) -> Option<TestApp> {
    let db = create_migrated_postgres_database().await?;
    // A data directory still holds the master key file.
    let dir = tempfile::tempdir().expect("temp dir");
    Some(spawn(db.url.clone(), dir, Some(db), configure).await)
}

/// A fresh, empty PostgreSQL database for one test, or `None` when not configured.
pub async fn create_postgres_database() -> Option<PostgresDb> {
    create_postgres_database_from(None).await
}

/// A fresh PostgreSQL database for one test with every migration applied: a copy of a
/// template database migrated once per set of migrations (by whichever test gets there
/// first), which is far quicker than running the migrations for every test.
pub async fn create_migrated_postgres_database() -> Option<PostgresDb> {
    let admin_url = postgres_admin_url()?;
    let template = tokio::task::spawn_blocking(move || migrated_template(&admin_url))
        .await
        .expect("template task");
    create_postgres_database_from(Some(template)).await
}

/// The admin URL of the PostgreSQL tests, or `None` (after saying so) when not set.
fn postgres_admin_url() -> Option<String> {
    match std::env::var(POSTGRES_ENV) {
        Ok(url) => Some(url),
        Err(_) => {
            if std::env::var(REQUIRE_POSTGRES_ENV).is_ok() {
                panic!("{REQUIRE_POSTGRES_ENV} is set but {POSTGRES_ENV} is not");
            }
            eprintln!("skipped: set {POSTGRES_ENV} to run this test on PostgreSQL");
            None
        }
    }
}

/// The name of the template migrated with this checkout's PostgreSQL migrations, made
/// if absent. Its name carries a hash of the migrations, so a changed migration gets a
/// new template; older ones are dropped when a new one is made. Test processes running
/// at once take turns under an advisory lock; a template is published by renaming it
/// once migrated, so a copy never starts from a half-migrated one.
fn migrated_template(admin_url: &str) -> String {
    use diesel::RunQueryDsl;
    use sha2::Digest;
    /// The advisory lock the test processes take to make the template.
    const TEMPLATE_LOCK: i64 = 0x6261_6f68_616e_7465;
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
    for entry in std::fs::read_dir(&root).expect("migrations") {
        let dir = entry.expect("entry").path();
        for name in ["up.sql", "down.sql"] {
            if dir.join(name).is_file() {
                files.push(dir.join(name));
            }
        }
    }
    files.sort();
    let mut hash = sha2::Sha256::new();
    for file in &files {
        hash.update(
            file.strip_prefix(&root)
                .expect("under root")
                .to_string_lossy()
                .as_bytes(),
        );
        hash.update(std::fs::read(file).expect("migration"));
    }
    let name = format!(
        "baohan_test_template_{}",
        &hex::encode(hash.finalize())[..16]
    );

    let mut admin = baohan::db::pg_establish(admin_url)
        .unwrap_or_else(|e| panic!("PostgreSQL at {POSTGRES_ENV} is not reachable: {e}"));
    let exists = |c: &mut diesel::PgConnection, name: &str| -> bool {
        #[derive(diesel::QueryableByName)]
        struct Found {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        diesel::sql_query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
            .bind::<diesel::sql_types::Text, _>(name)
            .get_result::<Found>(c)
            .expect("pg_database")
            .n
            == 1
    };
    if exists(&mut admin, &name) {
        return name;
    }
    diesel::sql_query(format!("SELECT pg_advisory_lock({TEMPLATE_LOCK})"))
        .execute(&mut admin)
        .expect("template lock");
    if !exists(&mut admin, &name) {
        let building = format!("{name}_building");
        diesel::sql_query(format!(
            "DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"
        ))
        .execute(&mut admin)
        .expect("drop a half-made template");
        diesel::sql_query(format!("CREATE DATABASE \"{building}\""))
            .execute(&mut admin)
            .expect("create the template");
        let pool = baohan::db::connect(&database_url_with_name(admin_url, &building), 1)
            .expect("migrate the template");
        drop(pool);
        diesel::sql_query(format!(
            "ALTER DATABASE \"{building}\" RENAME TO \"{name}\""
        ))
        .execute(&mut admin)
        .expect("publish the template");
        // Templates of other migrations are of no more use.
        #[derive(diesel::QueryableByName)]
        struct Old {
            #[diesel(sql_type = diesel::sql_types::Text)]
            datname: String,
        }
        let old: Vec<Old> = diesel::sql_query(
            "SELECT datname FROM pg_database WHERE datname LIKE 'baohan\\_test\\_template\\_%' \
             AND datname <> $1",
        )
        .bind::<diesel::sql_types::Text, _>(&name)
        .load(&mut admin)
        .expect("old templates");
        for Old { datname } in old {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{datname}\""))
                .execute(&mut admin);
        }
    }
    diesel::sql_query(format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK})"))
        .execute(&mut admin)
        .expect("template unlock");
    name
}

/// A database for one test: a copy of `template`, or empty. Its commits do not wait
/// for the disk (`synchronous_commit = off`, for this database only): the tests kill
/// the server, never PostgreSQL, and what a commit returned stays visible to every
/// session whatever the setting.
async fn create_postgres_database_from(template: Option<String>) -> Option<PostgresDb> {
    let admin_url = postgres_admin_url()?;
    let name = format!("baohan_test_{}", uuid::Uuid::new_v4().simple());
    let created = {
        let (admin_url, name) = (admin_url.clone(), name.clone());
        tokio::task::spawn_blocking(move || {
            use diesel::RunQueryDsl;
            let mut c = baohan::db::pg_establish(&admin_url)
                .unwrap_or_else(|e| panic!("PostgreSQL at {POSTGRES_ENV} is not reachable: {e}"));
            let from = template.map_or(String::new(), |t| format!(" TEMPLATE \"{t}\""));
            diesel::sql_query(format!("CREATE DATABASE \"{name}\"{from}"))
                .execute(&mut c)
                .expect("create test database");
            diesel::sql_query(format!(
                "ALTER DATABASE \"{name}\" SET synchronous_commit = off"
            ))
            .execute(&mut c)
            .expect("test database settings");
        })
    };
    created.await.expect("create database task");
    let url = database_url_with_name(&admin_url, &name);
    Some(PostgresDb {
        admin_url,
        name,
        url,
    })
}

/// Replaces the database name (the URL path) of a PostgreSQL URL.
fn database_url_with_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[after_scheme..].find('/') {
        Some(slash) => &base[..after_scheme + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

async fn spawn(
    database_url: String,
    data_dir: tempfile::TempDir,
    postgres: Option<PostgresDb>,
    configure: impl FnOnce(&mut Settings) + Send + 'static,
) -> TestApp {
    init_logs();
    let mut settings = Settings::defaults();
    settings.database_url = Some(database_url.clone());
    settings.database_pool_size = 4;
    settings.listen = "127.0.0.1:0".parse().expect("address");
    settings.data_dir = data_dir.path().to_path_buf();
    settings.max_body_bytes = 64 * 1024;
    // The worker looks once at start and then rarely, so that tests reading the outbox
    // directly do not race it; mail tests set a short interval.
    settings.mail_poll_interval_ms = 3_600_000;
    // An issuer's digest of new applications goes at the worker's next look.
    settings.mail_digest_seconds = 0;
    // Statistics are computed afresh for every request; the memo has a test of its own.
    settings.stats_cache_seconds = 0;
    // Pages are rendered for every request: tests write to the database directly and
    // look at once; the page cache has tests of its own.
    settings.page_cache_seconds = 0;
    // Tests sign in and verify far more often than a person; the limits have a test
    // of their own.
    settings.rate_limit_login_per_minute = 1_000_000;
    settings.rate_limit_verify_per_minute = 1_000_000;
    settings.rate_limit_rights_code_per_minute = 1_000_000;
    settings.rate_limit_login_per_account_per_minute = 1_000_000;
    settings.rate_limit_verify_per_number_per_minute = 1_000_000;
    configure(&mut settings);
    let app_settings = settings.clone();
    let (app, pool) = tokio::task::spawn_blocking(move || {
        let app = Application::build(settings).expect("application starts");
        let pool = app.pool().clone();
        demo::seed(&mut pool.get().expect("connection"), &app.context().keys).expect("demo data");
        (app, pool)
    })
    .await
    .expect("build task");
    let address = format!("http://127.0.0.1:{}", app.port());
    let ctx = app.context().clone();
    tokio::spawn(app.run_until_stopped());
    let api = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    TestApp {
        address,
        api,
        pool,
        settings: app_settings,
        ctx,
        _postgres: postgres.map(Arc::new),
        _data_dir: Arc::new(data_dir),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// The app's data directory (a temp dir dropped with the app).
    pub fn data_dir(&self) -> &Path {
        self._data_dir.path()
    }

    /// Another instance of the server on the same database and data directory, with the
    /// same settings and a port of its own, as a second `baohan serve` behind the load
    /// balancer would be. The fixtures work on it as on the first.
    pub async fn another_instance(&self) -> TestApp {
        let settings = self.settings.clone();
        let app = tokio::task::spawn_blocking(move || {
            Application::build(settings).expect("another instance starts")
        })
        .await
        .expect("build task");
        let address = format!("http://127.0.0.1:{}", app.port());
        let (pool, ctx) = (app.pool().clone(), app.context().clone());
        tokio::spawn(app.run_until_stopped());
        TestApp {
            address,
            api: self.api.clone(),
            pool,
            settings: self.settings.clone(),
            ctx,
            _postgres: self._postgres.clone(),
            _data_dir: self._data_dir.clone(),
        }
    }
}

/// Asserts the JSON error shape and returns the error object.
pub async fn assert_error(res: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "status");
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(ct.starts_with("application/json"), "content type {ct}");
    let body: Value = res.json().await.expect("json error body");
    let error = body["error"].clone();
    assert_eq!(error["code"], code, "error code in {body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "message in {body}"
    );
    error
}

/// A valid USCC built from a 17-character body.
pub fn uscc(body: &str) -> String {
    baohan::domain::uscc::Uscc::from_body(body)
        .expect("valid body")
        .as_str()
        .to_owned()
}

/// The USCC of a demo account.
pub fn demo_uscc(username: &str) -> String {
    let account = demo::DEMO_ACCOUNTS
        .iter()
        .find(|a| a.username == username)
        .expect("demo account");
    uscc(account.uscc_body)
}

#[test]
fn postgres_urls_get_the_test_database_name() {
    assert_eq!(
        database_url_with_name("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
        "postgres://postgres@127.0.0.1:5432/t1"
    );
    assert_eq!(
        database_url_with_name("postgres://postgres@127.0.0.1:5432", "t1"),
        "postgres://postgres@127.0.0.1:5432/t1"
    );
    assert_eq!(
        database_url_with_name("postgres://u@h/db?sslmode=disable", "t1"),
        "postgres://u@h/t1?sslmode=disable"
    );
}
