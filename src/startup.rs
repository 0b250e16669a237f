//! Building the running application from settings: the pool (migrated), the state, an
//! actix server bound to a listener, and the mail worker that runs beside it. Port 0
//! works: tests read the bound port.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_service::IntoServiceFactory;
use actix_web::dev::Server;
use actix_web::{web, App};
use tracing_actix_web::TracingLogger;

use crate::config::Settings;
use crate::db::{self, DbPool};
use crate::mail::worker::Worker;
use crate::services::{self, trust::Verifier, Keys};
use crate::web::{self as http, AppState};

/// A bound, not yet awaited server, and its mail worker.
pub struct Application {
    port: u16,
    server: Server,
    pool: DbPool,
    ctx: services::Context,
    mail_worker: Worker,
    webhook_worker: services::webhooks::worker::Worker,
    page_cache: Arc<http::page_cache::PageCache>,
    database_url: String,
    /// The SQLite file, on SQLite.
    sqlite_path: Option<String>,
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
        let clock = services::Clock::default();
        let calendar = settings.calendar()?;
        warn_if_calendar_runs_out(&calendar, clock.now());
        let mail_worker = Worker::from_settings(pool.clone(), &settings)?.with_clock(clock.clone());
        let ctx = services::Context {
            pool: pool.clone(),
            clock,
            verifier: Arc::new(
                Verifier::load(
                    &pool,
                    &settings.certs_dir,
                    settings.signature_policy.clone(),
                )?
                .with_revocation_fetching(settings.revocation_fetching()),
            ),
            keys: Arc::new(Keys::from_master(&master_key)?),
            public_base_url: Arc::from(settings.base_url()),
            calendar: Arc::new(calendar),
            timestamping: Arc::new(services::trust::TimeStamping::load_or_make(
                &settings.tsa_dir(),
            )?),
            limits: services::Limits::from_settings(&settings),
            stats: Arc::new(services::stats::Memo::new(chrono::Duration::seconds(
                settings.stats_cache_seconds.into(),
            ))),
            idempotency: None,
            write_gate: Arc::new(db::write_gate::WriteGate::new()),
            credentials: Arc::new(services::auth::Credentials::new(
                settings.credential_cache_entries as usize,
                settings.sqlite_path(),
            )),
            attachment_dir: Arc::from(settings.data_dir.join("attachments")),
        };
        // The configured lists the pages and the API read: whatever the data files hold
        // that the database lacks (several instances may do this at once).
        services::catalogue::seed(&ctx)?;
        let webhook_worker = services::webhooks::worker::Worker::new(
            ctx.clone(),
            services::webhooks::worker::Pacing::from_settings(&settings),
            settings.webhook_allow_private,
        )
        .map_err(|e| anyhow::anyhow!("webhook client: {e}"))?;

        let edges = http::http_edges::EdgeSettings::from_settings(&settings);
        let edge_data = web::Data::new(edges.clone());
        let header_read_timeout = Duration::from_secs(settings.header_read_timeout_seconds);
        let page_cache = Arc::new(http::page_cache::PageCache::new(
            settings.page_cache_seconds,
        ));
        let database_url = settings.database_url();
        let sqlite_path = settings.sqlite_path();
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            rate_limits: http::rate_limit::RateLimits::from_settings(&settings),
            settings: Arc::new(settings),
            ctx: ctx.clone(),
            page_cache: page_cache.clone(),
        });
        let server = serve(listener, header_read_timeout, edges, move || {
            // The last wrap is the outermost: the log and request id see every answer,
            // the edges every answer of the app, idempotency what the edges let in.
            App::new()
                .wrap(actix_web::middleware::from_fn(http::page_cache::middleware))
                .wrap(actix_web::middleware::from_fn(
                    http::idempotency::middleware,
                ))
                .wrap(actix_web::middleware::from_fn(http::http_edges::middleware))
                .wrap(actix_web::middleware::from_fn(http::request_id_header))
                .wrap(TracingLogger::default())
                .app_data(state.clone())
                .app_data(edge_data.clone())
        })?;
        Ok(Application {
            port,
            server,
            pool,
            ctx,
            mail_worker,
            webhook_worker,
            page_cache,
            database_url,
            sqlite_path,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// The services' context: the clock, keys and verifier the server uses.
    pub fn context(&self) -> &services::Context {
        &self.ctx
    }

    /// Serves, sends mail and does upkeep until the process is asked to stop. The mail
    /// worker stops after the server, finishing the mail it is sending.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let worker = tokio::spawn(self.mail_worker.run(stopped.clone()));
        let webhooks = tokio::spawn(self.webhook_worker.run(stopped));
        let upkeep = tokio::spawn(upkeep(self.ctx.clone()));
        // SQLite's log is copied back off the writers' path (`db::checkpoint`).
        let checkpoints = self
            .sqlite_path
            .map(|p| tokio::spawn(db::checkpoint::run(p)));
        let watch = tokio::spawn(http::page_cache::watch(self.page_cache, self.database_url));
        let served = self.server.await;
        upkeep.abort();
        if let Some(checkpoints) = checkpoints {
            checkpoints.abort();
        }
        watch.abort();
        let _ = stop.send(true);
        if let Err(e) = worker.await {
            tracing::error!(error = %e, "mail worker ended abnormally");
        }
        if let Err(e) = webhooks.await {
            tracing::error!(error = %e, "webhook worker ended abnormally");
        }
        served
    }
}

/// The HTTP server over `listener`, one app per worker from `app` with its routes.
///
/// Built from actix's parts, as actix-web's `HttpServer` builds itself, for what that
/// does not offer: the check of `Expect: 100-continue` requests before `100 Continue`
/// is sent ([`http::http_edges::ExpectCheck`]), `HEAD` served as `GET` without the
/// body, and a deadline on the headers of every request of a kept-alive connection
/// ([`http::dispatch`]). A client has `header_read_timeout` to send a request's
/// headers (for the first request of a connection, actix answers 408; for later ones
/// the connection is closed), and one second to go once its connection is to be
/// closed.
fn serve<T, B>(
    listener: TcpListener,
    header_read_timeout: Duration,
    edges: http::http_edges::EdgeSettings,
    app: impl Fn() -> App<T> + Send + Clone + 'static,
) -> std::io::Result<Server>
where
    T: actix_web::dev::ServiceFactory<
            actix_web::dev::ServiceRequest,
            Config = (),
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    B: actix_web::body::MessageBody + 'static,
{
    use actix_service::ServiceFactoryExt as _;
    use http::dispatch::{Connection, ServeApp};

    let local = listener.local_addr()?;
    let max_body = edges.max_body_bytes;
    let builder = Server::build();
    let shutdown = builder.graceful_shutdown_signal();
    Ok(builder
        .listen("baohan-http", listener, move || {
            let (app, description) = http::with_routes(app(), max_body);
            let routes = Arc::new(http::http_edges::Routes::from_description(&description));
            let shutdown = shutdown.clone();
            let http = actix_http::HttpService::build()
                .client_request_timeout(header_read_timeout)
                .client_disconnect_timeout(Duration::from_secs(1))
                .local_addr(local)
                // As HttpServer does: idle kept-alive connections close when the server
                // starts to stop, instead of holding the shutdown up.
                .graceful_shutdown_signal(move || {
                    let shutdown = shutdown.clone();
                    async move { shutdown.notified().await }
                })
                .on_connect_ext(|io: &Connection, data| io.share_clock(data))
                .expect(http::http_edges::ExpectCheck::new(routes, edges.clone()))
                .finish(ServeApp::new(app.into_factory()));
            actix_service::fn_service(move |io| async move {
                Ok::<_, actix_http::error::DispatchError>(Connection::accept(
                    io,
                    header_read_timeout,
                ))
            })
            .and_then(http)
        })?
        .run())
}

/// How often expiries, due CRLs and OCSP answers, and files added to the certificates
/// directory are picked up (anchors and CRLs registered through any instance take effect
/// at the next request: see `services::trust::Verifier::current`).
const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// Periodic work that any instance may do (every step is safe to repeat or to run on
/// several instances at once): expire guarantees whose validity ended, take lapsed
/// credit records out of force, fold the credit office's counters, default bills unpaid
/// past their window, tell bidders whose guarantees run out soon and issuers whose
/// signing certificates do, fetch the
/// CRLs and OCSP answers that are due from the distribution points and responders
/// certificates name, forget expired idempotency keys, reload the trust
/// store so files added to the certificates directory take effect.
async fn upkeep(ctx: services::Context) {
    let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
    loop {
        tick.tick().await;
        let c = ctx.clone();
        let done = tokio::task::spawn_blocking(move || {
            let expired = services::guarantees::expire_due(&c)?;
            // Credit records that lapsed leave force and their subjects' scores.
            match services::credit::expire_lapsed(&c) {
                Ok(0) => {}
                Ok(n) => tracing::info!(records = n, "credit records lapsed"),
                Err(e) => tracing::warn!(error = %e, "expiring credit records failed"),
            }
            // The credit office's counters, folded (PostgreSQL appends their changes).
            let folded = c
                .conn()
                .and_then(|mut conn| services::credit_office::fold_tallies(&mut conn));
            if let Err(e) = folded {
                tracing::warn!(error = %e, "folding the credit office's counters failed");
            }
            // Bills unpaid past their window and its grace become defaults.
            match services::waivers::default_overdue(&c) {
                Ok(0) => {}
                Ok(n) => tracing::info!(waivers = n, "unpaid bills defaulted"),
                Err(e) => tracing::warn!(error = %e, "defaulting unpaid bills failed"),
            }
            services::guarantees::send_expiry_notices(&c)?;
            services::trust::send_certificate_expiry_notices(&c)?;
            // A CRL that cannot be fetched is logged and tried next round; it must not
            // keep the rest of the upkeep from running.
            if let Err(e) = services::crl_fetch::refresh_fetched_crls(&c) {
                tracing::warn!(error = %e, "fetching CRLs failed");
            }
            if let Err(e) = services::ocsp_fetch::refresh_ocsp_answers(&c) {
                tracing::warn!(error = %e, "asking OCSP responders failed");
            }
            if let Err(e) = services::idempotency::prune_expired(&c) {
                tracing::warn!(error = %e, "pruning expired idempotency keys failed");
            }
            c.verifier.reload(&c.pool)?;
            Ok::<usize, services::ServiceError>(expired)
        })
        .await;
        match done {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(expired = n, "guarantees expired"),
            Ok(Err(e)) => tracing::warn!(error = %e, "upkeep failed"),
            Err(e) => tracing::warn!(error = %e, "upkeep task failed"),
        }
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

/// Claim deadlines count business days: without next year's holidays, a deadline that
/// runs into it counts only weekends as days off. Say so at start-up, in time to add them
/// (`BAOHAN_HOLIDAYS_FILE`).
fn warn_if_calendar_runs_out(calendar: &crate::domain::Calendar, now: chrono::NaiveDateTime) {
    use chrono::{Datelike, TimeZone};
    let year = crate::domain::time::china().from_utc_datetime(&now).year();
    for year in [year, year + 1] {
        if !calendar.covers_year(year) {
            tracing::warn!(
                year,
                "no public holidays are known for this year: claim deadlines in it count \
                 only Saturdays and Sundays as days off; add the State Council's schedule \
                 with BAOHAN_HOLIDAYS_FILE"
            );
        }
    }
}
