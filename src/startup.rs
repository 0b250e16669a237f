//! Building the running application from settings: the pool (migrated), the state, an
//! actix server bound to a listener, and the mail worker that runs beside it. Port 0
//! works: tests read the bound port.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use tracing_actix_web::TracingLogger;

use crate::config::Settings;
use crate::db::{self, DbPool};
use crate::mail::worker::Worker;
use crate::web::{self as http, AppState};

/// A bound, not yet awaited server, and its mail worker.
pub struct Application {
    port: u16,
    server: Server,
    pool: DbPool,
    mail_worker: Worker,
}

impl Application {
    /// Opens (and migrates) the database, binds the listen address and builds the server.
    pub fn build(settings: Settings) -> anyhow::Result<Application> {
        let pool = db::connect(&settings.database_url(), settings.database_pool_size)?;
        let listener = TcpListener::bind(settings.listen).map_err(|e| {
            anyhow::anyhow!(
                "could not listen on {} (BAOHAN_LISTEN): {e}",
                settings.listen
            )
        })?;
        Application::with_listener(settings, pool, listener)
    }

    /// Serves on an existing listener with an existing pool. Call inside a Tokio
    /// runtime: the SMTP transport's connection pool starts a task.
    pub fn with_listener(
        settings: Settings,
        pool: DbPool,
        listener: TcpListener,
    ) -> anyhow::Result<Application> {
        let port = listener.local_addr()?.port();
        let master_key = settings.master_key()?;
        let max_body = settings.max_body_bytes;
        let mail_worker = Worker::from_settings(pool.clone(), &settings)?;
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            id_hmac_key: master_key.derive("resident-id-hmac"),
            settings: Arc::new(settings),
        });
        let server = HttpServer::new(move || {
            App::new()
                .wrap(http::json_errors())
                .wrap(http::security_headers())
                .wrap(actix_web::middleware::from_fn(http::request_id_header))
                .wrap(TracingLogger::default())
                .app_data(state.clone())
                .configure(http::configure(max_body))
        })
        .listen(listener)?
        .run();
        Ok(Application {
            port,
            server,
            pool,
            mail_worker,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// Serves, and sends mail, until the process is asked to stop. The worker stops
    /// after the server, finishing the mail it is sending.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let worker = tokio::spawn(self.mail_worker.run(stopped));
        let served = self.server.await;
        let _ = stop.send(true);
        if let Err(e) = worker.await {
            tracing::error!(error = %e, "mail worker ended abnormally");
        }
        served
    }
}

/// Logs to stderr, filtered by `RUST_LOG` or the configured level.
pub fn init_tracing(default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
