//! Signed-in pages kept as rendered, served again to the same session while nothing has
//! been written to the database since.
//!
//! A page opts in ([`allow`], through `Visitor::cacheable`) when all it shows comes from
//! the database and the visitor's session. Its copy is served again only when all of
//! these still hold:
//!
//! - the same session, path and query, and language ask for it (the session is part of
//!   the key: a copy is never shown to anyone else);
//! - no request other than a `GET` has been answered by this instance since it was made
//!   (a visitor always sees its own change at once), unless its handler said it writes
//!   nothing ([`writes_nothing`]: the public's verifications);
//! - the database has seen no commit since, by any instance or worker: a watcher asks the
//!   database every [`POLL_INTERVAL`] (SQLite's `PRAGMA data_version` on a connection of
//!   its own; on PostgreSQL the notices every committed change sends, see
//!   `db::ensure_change_notices`), and a copy made before the change it saw is not
//!   served;
//! - the watcher has answered recently (if the database stops answering it, nothing is
//!   served from copies);
//! - it is younger than `page_cache_seconds` and the session has not expired, both by the
//!   exchange's clock (pages that show deadlines or today's counts move with time).
//!
//! A write by another instance is seen within one poll: the same lag as a read replica.
//! Flash messages, cookies set by the page and anything but 200 are never kept.
//!
//! When a copy is missing, the requests of one session for one page (a browser's
//! reloads, a client's retries, a load test's connections) do not all render it: the
//! first renders, the others wait for it and are served its copy, provided nothing
//! changed since they arrived ([`Stamp`] is part of what they wait on). Only pages
//! known to be kept are waited on, so a page that is never kept is never held up.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::auth::{FLASH_COOKIE, SESSION_COOKIE};
use super::pages::i18n::Lang;
use super::AppState;
use crate::db::{Backend, DbConnection};

/// How often the watcher asks the database whether anything was committed.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Copies are served only while the watcher's last answer is younger than this.
const WATCH_STALE_AFTER: Duration = Duration::from_millis(1_000);

/// At most this many bytes of pages are kept (the least used go first).
const CAPACITY_BYTES: u64 = 64 * 1024 * 1024;

/// At most this many paths are remembered as kept (they are the routes of the pages that
/// opt in, a handful; the bound keeps a flood of odd paths from growing the set).
const KEPT_PATHS: usize = 256;

/// Answers say whether they came from a copy (`hit`), were kept (`stored`) or neither.
pub const STATUS_HEADER: &str = "x-page-cache";

/// What a page's copy is found by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    session: String,
    lang: Lang,
    path: String,
}

/// What the cache had seen when a page was rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Stamp {
    local_writes: u64,
    database_changes: u64,
}

#[derive(Debug)]
struct Copy {
    stamp: Stamp,
    fresh_until: NaiveDateTime,
    session_expires_at: NaiveDateTime,
    headers: HeaderMap,
    body: web::Bytes,
}

#[derive(Debug, Clone)]
struct ByLength;

impl quick_cache::Weighter<Key, Arc<Copy>> for ByLength {
    fn weight(&self, key: &Key, copy: &Arc<Copy>) -> u64 {
        (key.path.len() + key.session.len() + copy.body.len()) as u64
    }
}

/// Held by the request rendering a page, waited on by the others asking for it.
type RenderLock = Arc<tokio::sync::Mutex<()>>;

/// The instance's copies of signed-in pages and what invalidates them.
pub struct PageCache {
    keep_for: chrono::Duration,
    copies: quick_cache::sync::Cache<Key, Arc<Copy>, ByLength>,
    /// Requests other than `GET` answered by this instance.
    local_writes: AtomicU64,
    /// Changes of the database the watcher has seen.
    database_changes: AtomicU64,
    /// When the watcher last answered, in milliseconds since `started` (0: never).
    watched_at_ms: AtomicU64,
    started: Instant,
    /// The paths (without query) whose pages were kept: only these are waited on.
    kept_paths: std::sync::RwLock<HashSet<String>>,
    /// The renders under way, one a page and stamp, that later requests wait on.
    renders: std::sync::Mutex<HashMap<(Key, Stamp), RenderLock>>,
}

impl std::fmt::Debug for PageCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageCache")
            .field("keep_for", &self.keep_for)
            .field("pages", &self.copies.len())
            .finish()
    }
}

/// The marker a page leaves on its request to be kept.
#[derive(Debug, Clone, Copy)]
struct Keep {
    session_expires_at: NaiveDateTime,
}

/// The marker of a request other than `GET` that writes nothing.
#[derive(Debug, Clone, Copy)]
struct WritesNothing;

/// Tells the cache that `req`, though not a `GET`, writes nothing (a verification
/// posted by the public): the instance's copies stay good. Only for handlers that never
/// write to the database; a write they missed would otherwise be seen only by the
/// watcher, one poll later.
pub fn writes_nothing(req: &HttpRequest) {
    req.extensions_mut().insert(WritesNothing);
}

/// Lets the page answering `req` be kept for its session ([`PageCache`]).
pub fn allow(req: &HttpRequest, session_expires_at: NaiveDateTime) {
    req.extensions_mut().insert(Keep { session_expires_at });
}

impl PageCache {
    /// Keeps pages for `seconds` (0: keeps none).
    pub fn new(seconds: u32) -> PageCache {
        PageCache {
            keep_for: chrono::Duration::seconds(seconds.into()),
            copies: quick_cache::sync::Cache::with_weighter(4_096, CAPACITY_BYTES, ByLength),
            local_writes: AtomicU64::new(0),
            database_changes: AtomicU64::new(0),
            watched_at_ms: AtomicU64::new(0),
            started: Instant::now(),
            kept_paths: Default::default(),
            renders: Default::default(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.keep_for > chrono::Duration::zero()
    }

    /// What the cache has seen now, or `None` when the watcher has not answered lately
    /// (then nothing is kept or served).
    fn stamp(&self) -> Option<Stamp> {
        let watched = self.watched_at_ms.load(Ordering::Acquire);
        let now = self.started.elapsed().as_millis() as u64;
        if watched == 0 || now.saturating_sub(watched) > WATCH_STALE_AFTER.as_millis() as u64 {
            return None;
        }
        Some(Stamp {
            local_writes: self.local_writes.load(Ordering::Acquire),
            database_changes: self.database_changes.load(Ordering::Acquire),
        })
    }

    /// Something may have been written through this instance.
    fn wrote(&self) {
        self.local_writes.fetch_add(1, Ordering::AcqRel);
    }

    /// The watcher's answer: `changed` when the database moved since its last one.
    fn watched(&self, changed: bool) {
        if changed {
            self.database_changes.fetch_add(1, Ordering::AcqRel);
        }
        let now = (self.started.elapsed().as_millis() as u64).max(1);
        self.watched_at_ms.store(now, Ordering::Release);
    }

    /// The watcher lost the database: copies stop being served until it answers again.
    fn lost_sight(&self) {
        self.watched_at_ms.store(0, Ordering::Release);
    }

    fn remember_kept(&self, path: &str) {
        let known = self.kept_paths.read().is_ok_and(|p| p.contains(path));
        if !known {
            if let Ok(mut paths) = self.kept_paths.write() {
                if paths.len() < KEPT_PATHS {
                    paths.insert(path.to_owned());
                }
            }
        }
    }

    fn is_kept(&self, path: &str) -> bool {
        self.kept_paths.read().is_ok_and(|p| p.contains(path))
    }

    /// The lock of the render of `key` as of `stamp`: held by the first request, waited
    /// on by the others.
    fn render_lock(&self, key: &Key, stamp: Stamp) -> Option<RenderLock> {
        let mut renders = self.renders.lock().ok()?;
        Some(
            renders
                .entry((key.clone(), stamp))
                .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(())))
                .clone(),
        )
    }

    /// The render of `key` as of `stamp` is over: later requests find its copy, or
    /// render again.
    fn rendered(&self, key: &Key, stamp: Stamp) {
        if let Ok(mut renders) = self.renders.lock() {
            renders.remove(&(key.clone(), stamp));
        }
    }

    fn get(&self, key: &Key, now: NaiveDateTime) -> Option<Arc<Copy>> {
        let stamp = self.stamp()?;
        let copy = self.copies.get(key)?;
        let valid = copy.stamp == stamp && now < copy.fresh_until && now < copy.session_expires_at;
        if !valid {
            self.copies.remove(key);
            return None;
        }
        Some(copy)
    }
}

fn key_of(req: &ServiceRequest) -> Option<Key> {
    if req.cookie(FLASH_COOKIE).is_some() {
        return None;
    }
    let session = req.cookie(SESSION_COOKIE)?;
    Some(Key {
        session: crate::services::auth::token_hash(session.value()),
        lang: Lang::of(req.request()),
        path: req
            .uri()
            .path_and_query()
            .map_or_else(|| req.path().to_owned(), |p| p.as_str().to_owned()),
    })
}

/// A kept page's copy as the answer to `req`.
fn served(req: ServiceRequest, copy: &Copy) -> ServiceResponse<BoxBody> {
    let mut answer = HttpResponse::Ok();
    for (name, value) in copy.headers.iter() {
        answer.append_header((name.clone(), value.clone()));
    }
    answer.insert_header((HeaderName::from_static(STATUS_HEADER), "hit"));
    req.into_response(answer.body(copy.body.clone()))
}

/// The render of one page as of one stamp, which later requests for it wait on; over
/// when dropped (the page kept, not kept, or its request gone).
struct RenderTurn<'a> {
    cache: &'a PageCache,
    key: Key,
    stamp: Stamp,
    _held: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for RenderTurn<'_> {
    fn drop(&mut self) {
        self.cache.rendered(&self.key, self.stamp);
    }
}

/// The middleware: serves kept pages, keeps the pages that allow it, and counts every
/// other request as a possible write.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let cache = &state.page_cache;
    if req.method() != Method::GET {
        let answer = next.call(req).await;
        let read_only = answer
            .as_ref()
            .is_ok_and(|a| a.request().extensions().get::<WritesNothing>().is_some());
        if !read_only {
            cache.wrote();
        }
        return Ok(answer?.map_into_boxed_body());
    }
    let key = if cache.enabled() { key_of(&req) } else { None };
    let Some(key) = key else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    if let Some(copy) = cache.get(&key, state.ctx.now()) {
        return Ok(served(req, &copy));
    }
    let stamp = cache.stamp();
    // A page known to be kept: wait for a render of it under way, or be that render.
    let mut turn = None;
    if let Some(stamp) = stamp.filter(|_| cache.is_kept(req.path())) {
        if let Some(lock) = cache.render_lock(&key, stamp) {
            let held = lock.lock_owned().await;
            if let Some(copy) = cache.get(&key, state.ctx.now()) {
                drop(held);
                return Ok(served(req, &copy));
            }
            turn = Some(RenderTurn {
                cache,
                key: key.clone(),
                stamp,
                _held: held,
            });
        }
    }
    let path = req.path().to_owned();
    let res = next.call(req).await?;
    let keep = res.request().extensions().get::<Keep>().copied();
    let (Some(keep), Some(stamp)) = (keep, stamp) else {
        return Ok(res.map_into_boxed_body());
    };
    if res.status() != StatusCode::OK || res.headers().contains_key(header::SET_COOKIE) {
        return Ok(res.map_into_boxed_body());
    }
    let (req, res) = res.into_parts();
    let (mut head, body) = res.into_parts();
    let body = actix_web::body::to_bytes(body)
        .await
        .map_err(|e| actix_web::error::ErrorInternalServerError(e.into().to_string()))?;
    let now = state.ctx.now();
    let copy = Copy {
        stamp,
        fresh_until: now + cache.keep_for,
        session_expires_at: keep.session_expires_at,
        headers: head.headers().clone(),
        body: body.clone(),
    };
    cache.copies.insert(key, Arc::new(copy));
    cache.remember_kept(&path);
    drop(turn);
    head.headers_mut().insert(
        HeaderName::from_static(STATUS_HEADER),
        HeaderValue::from_static("stored"),
    );
    let res = head.set_body(body).map_into_boxed_body();
    Ok(ServiceResponse::new(req, res))
}

#[derive(QueryableByName)]
struct DataVersion {
    #[diesel(sql_type = BigInt)]
    data_version: i64,
}

/// The watcher's connection and what it last saw.
enum Watcher {
    /// SQLite's `PRAGMA data_version` moves when another connection commits.
    Sqlite {
        conn: diesel::SqliteConnection,
        last: i64,
    },
    /// PostgreSQL tells its listeners of every commit that changed a table
    /// (`db::ensure_change_notices`): the notices arrive only once the transaction is
    /// committed, and only from this database.
    Pg(diesel::PgConnection),
}

impl Watcher {
    fn open(url: &str) -> Result<Watcher, String> {
        let (backend, diesel_url) = Backend::from_url(url).map_err(|e| e.to_string())?;
        let conn = DbConnection::open(backend, &diesel_url).map_err(|e| e.to_string())?;
        Ok(match conn {
            DbConnection::Sqlite(mut c) => {
                let last = data_version(&mut c).map_err(|e| e.to_string())?;
                Watcher::Sqlite { conn: c, last }
            }
            DbConnection::Pg(mut c) => {
                diesel::sql_query(format!("LISTEN {}", crate::db::CHANGE_CHANNEL))
                    .execute(&mut c)
                    .map_err(|e| e.to_string())?;
                Watcher::Pg(c)
            }
        })
    }

    /// Whether anything was committed since the last poll.
    fn changed(&mut self) -> QueryResult<bool> {
        match self {
            Watcher::Sqlite { conn, last } => {
                let now = data_version(conn)?;
                let changed = now != *last;
                *last = now;
                Ok(changed)
            }
            Watcher::Pg(conn) => {
                // A round trip proves the connection is alive and reads what arrived.
                diesel::sql_query("SELECT 1").execute(conn)?;
                let mut changed = false;
                for notice in conn.notifications_iter() {
                    notice?;
                    changed = true;
                }
                Ok(changed)
            }
        }
    }
}

fn data_version(c: &mut diesel::SqliteConnection) -> QueryResult<i64> {
    diesel::sql_query("PRAGMA data_version")
        .get_result::<DataVersion>(c)
        .map(|v| v.data_version)
}

/// Watches the database at `url` for commits until the process ends, telling `cache`.
/// The connection is its own (SQLite counts the commits of the other connections;
/// PostgreSQL sends its notices to the connections that listen).
pub async fn watch(cache: Arc<PageCache>, url: String) {
    if !cache.enabled() {
        return;
    }
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut watcher: Option<Watcher> = None;
    loop {
        tick.tick().await;
        let url = url.clone();
        let taken = watcher.take();
        let polled = tokio::task::spawn_blocking(move || {
            // Newly connected, it cannot know what happened while it was not: a change.
            let (mut w, fresh) = match taken {
                Some(w) => (w, false),
                None => (Watcher::open(&url)?, true),
            };
            let changed = w.changed().map_err(|e| e.to_string())?;
            Ok::<_, String>((w, changed || fresh))
        })
        .await;
        match polled {
            Ok(Ok((w, changed))) => {
                cache.watched(changed);
                watcher = Some(w);
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the page cache cannot see the database");
                cache.lost_sight();
            }
            Err(e) => {
                tracing::warn!(error = %e, "the page cache's watch failed");
                cache.lost_sight();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(stamp: Stamp, fresh_until: NaiveDateTime, expires: NaiveDateTime) -> Arc<Copy> {
        Arc::new(Copy {
            stamp,
            fresh_until,
            session_expires_at: expires,
            headers: HeaderMap::new(),
            body: web::Bytes::from_static(b"page"),
        })
    }

    fn key() -> Key {
        Key {
            session: "s".into(),
            lang: Lang::Zh,
            path: "/issuer/queue".into(),
        }
    }

    #[test]
    fn a_copy_is_served_only_while_nothing_changed_and_the_watcher_answers() {
        let cache = PageCache::new(2);
        let t0 = chrono::DateTime::from_timestamp(1_800_000_000, 0)
            .unwrap()
            .naive_utc();
        let later = t0 + chrono::Duration::seconds(1);
        let keep_until = |cache: &PageCache, session_ends: NaiveDateTime| {
            let stamp = cache.stamp().unwrap();
            cache.copies.insert(
                key(),
                copy(stamp, t0 + chrono::Duration::seconds(2), session_ends),
            );
        };
        let again = |cache: &PageCache| keep_until(cache, t0 + chrono::Duration::hours(1));
        // No watcher yet: nothing to stamp, nothing served.
        assert!(cache.stamp().is_none());
        cache.watched(true);
        again(&cache);
        assert!(cache.get(&key(), later).is_some());
        // Too old by the exchange's clock.
        assert!(cache
            .get(&key(), t0 + chrono::Duration::seconds(3))
            .is_none());

        again(&cache);
        cache.wrote();
        assert!(cache.get(&key(), later).is_none(), "a local write");
        again(&cache);
        cache.watched(false);
        assert!(
            cache.get(&key(), later).is_some(),
            "the database did not move"
        );
        cache.watched(true);
        assert!(cache.get(&key(), later).is_none(), "another instance wrote");
        again(&cache);
        cache.lost_sight();
        assert!(
            cache.get(&key(), later).is_none(),
            "the watcher lost the database"
        );
        cache.watched(false);
        // The session expired before the copy would.
        keep_until(&cache, t0 + chrono::Duration::milliseconds(500));
        assert!(cache.get(&key(), later).is_none(), "the session expired");
    }
}
