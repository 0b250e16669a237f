//! Signed-in pages kept as rendered (`page_cache_seconds`): a copy is served to its own
//! session only, and never after a write through this instance, a commit by another
//! instance, a sign-out or the session's end.

use std::time::{Duration, Instant};

use baohan::web::auth::SESSION_COOKIE;
use baohan::web::page_cache::STATUS_HEADER;
use chrono::TimeDelta;
use reqwest::header::{ACCEPT, ACCEPT_LANGUAGE, COOKIE};
use reqwest::StatusCode;

use crate::fixtures::{NewTender, TestPki};
use crate::helpers::{TestApp, TestBackend};

/// A browser holding one session cookie, asking for pages in one language.
struct Browser<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    cookie: String,
    lang: &'static str,
}

struct Page {
    status: StatusCode,
    cache: String,
    html: String,
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp, session_token: &str, lang: &'static str) -> Browser<'a> {
        Browser {
            app,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookie: format!("{SESSION_COOKIE}={session_token}"),
            lang,
        }
    }

    async fn get(&self, path: &str) -> Page {
        let res = self
            .client
            .get(self.app.url(path))
            .header(ACCEPT, "text/html")
            .header(ACCEPT_LANGUAGE, self.lang)
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .expect("page");
        let status = res.status();
        let cache = res
            .headers()
            .get(STATUS_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_owned();
        Page {
            status,
            cache,
            html: res.text().await.expect("body"),
        }
    }

    /// The page once it is served from its copy (the watcher answers within a few polls
    /// of the instance's start, and a copy made before the watcher saw the last commit,
    /// such as a sign-in's, is made again once).
    async fn kept(&self, path: &str) -> Page {
        let started = Instant::now();
        loop {
            let page = self.get(path).await;
            assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.html);
            if page.cache == "hit" {
                return page;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{path} is never kept ({})",
                page.cache
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Asks until `path` shows `wanted`; fails after `within`.
async fn shows_within(browser: &Browser<'_>, path: &str, wanted: &str, within: Duration) {
    let started = Instant::now();
    loop {
        let page = browser.get(path).await;
        if page.html.contains(wanted) {
            return;
        }
        assert!(
            started.elapsed() < within,
            "{path} still does not show {wanted} after {within:?} ({})",
            page.cache
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_kept_page_is_its_sessions_alone_and_gives_way_to_every_change(backend: TestBackend) {
    let app = backend.spawn_with(|s| s.page_cache_seconds = 60).await;
    let _pki = TestPki::set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-CACHE-1", 3))
        .await;
    let first = app.issued_bond("enterprise1", &tender.sections[0]).await;
    let path = "/enterprise/guarantees";

    let session = app.as_enterprise("enterprise1").await;
    let zh = Browser::new(&app, &session.token, "zh-CN");
    let kept = zh.kept(path).await;
    assert!(kept.html.contains(&first.number), "{}", kept.html);
    let again = zh.get(path).await;
    assert_eq!(again.cache, "hit");
    assert_eq!(again.html, kept.html);
    // The public's verifications write nothing: the copy stays good (the page's form
    // and the API's), while any other request but a GET ends it. A worker's commit may
    // fall between (the bond's mail): three tries, one must keep the copy.
    let mut kept_through = false;
    for _ in 0..3 {
        zh.kept(path).await;
        let verified = zh
            .client
            .post(app.url("/verify"))
            .form(&[("number", first.number.as_str()), ("code", "ABCDEFGH")])
            .send()
            .await
            .expect("verify page");
        assert_eq!(verified.status(), StatusCode::OK);
        let verified = zh
            .client
            .post(app.url("/api/v1/verify"))
            .json(&serde_json::json!({"number": first.number, "code": "ABCDEFGH"}))
            .send()
            .await
            .expect("verify api");
        assert_eq!(verified.status(), StatusCode::NOT_FOUND);
        if zh.get(path).await.cache == "hit" {
            kept_through = true;
            break;
        }
    }
    assert!(kept_through, "a verification ended the copy");
    // Another query is another page.
    assert_ne!(zh.get("/enterprise/guarantees?size=1").await.cache, "hit");

    // The same page in English is its own copy.
    let en = Browser::new(&app, &session.token, "en");
    let english = en.get(path).await;
    assert_ne!(english.cache, "hit");
    assert_ne!(english.html, kept.html);

    // Another session of the same user, and a session of another organization, never
    // get this session's copy.
    let other_session = app.as_enterprise("enterprise1").await;
    let twin = Browser::new(&app, &other_session.token, "zh-CN");
    assert_ne!(twin.get(path).await.cache, "hit");
    let rival = app.as_enterprise("enterprise2").await;
    let rival = Browser::new(&app, &rival.token, "zh-CN").get(path).await;
    assert_ne!(rival.cache, "hit");
    assert!(!rival.html.contains(&first.number), "{}", rival.html);
    // An issuer asking for the same address gets its own list (the insurer issued
    // none of these bonds).
    let insurer = app.as_issuer("insurer").await;
    let insurer = Browser::new(&app, &insurer.token, "zh-CN").get(path).await;
    assert_eq!(insurer.status, StatusCode::OK);
    assert_ne!(insurer.cache, "hit");
    assert!(!insurer.html.contains(&first.number), "{}", insurer.html);

    // A write through this instance: the very next request shows it.
    zh.kept(path).await;
    let second = app.issued_bond("enterprise1", &tender.sections[1]).await;
    let after = zh.get(path).await;
    assert_ne!(after.cache, "hit");
    assert!(after.html.contains(&second.number), "{}", after.html);

    // A write through another instance on the same database: shown within a few of
    // the watcher's polls, never kept for the copy's whole minute.
    zh.kept(path).await;
    let other = app.another_instance().await;
    let tender2 = other
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-CACHE-2", 3))
        .await;
    let third = other.issued_bond("enterprise1", &tender2.sections[0]).await;
    shows_within(&zh, path, &third.number, Duration::from_secs(2)).await;

    // Signed out (through the API, so the cookie's browser knows nothing of it): the
    // cookie no longer opens the page.
    zh.kept(path).await;
    session.sign_out().await;
    let out = zh.get(path).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.html);

    // The other session's copy ends with the session, by the exchange's clock.
    twin.kept(path).await;
    app.advance_clock(TimeDelta::days(40));
    let expired = twin.get(path).await;
    assert_eq!(expired.status, StatusCode::SEE_OTHER, "{}", expired.html);
}

/// The kept copy is younger than `page_cache_seconds` by the exchange's clock: pages
/// that count today's work or flag a deadline move with time even when nothing is
/// written.
async fn a_kept_page_is_rendered_again_once_it_is_older_than_its_seconds(backend: TestBackend) {
    let app = backend.spawn_with(|s| s.page_cache_seconds = 2).await;
    let session = app.as_issuer("bank").await;
    let browser = Browser::new(&app, &session.token, "zh-CN");
    browser.kept("/issuer/queue").await;
    app.advance_clock(TimeDelta::seconds(3));
    assert_ne!(browser.get("/issuer/queue").await.cache, "hit");
    // A page that does not allow it is never kept.
    let claims = browser.get("/issuer/claims").await;
    assert_eq!(claims.status, StatusCode::OK);
    assert_eq!(claims.cache, "none");
    assert_eq!(browser.get("/issuer/claims").await.cache, "none");
}

/// After a change, a burst of requests of one session for a kept page renders it once:
/// the first renders, the others wait for its copy (a page rendered by each of them
/// would multiply the database's work by the burst).
async fn a_burst_for_one_page_is_rendered_once(backend: TestBackend) {
    let app = backend.spawn_with(|s| s.page_cache_seconds = 60).await;
    let session = app.as_issuer("bank").await;
    let browser = Browser::new(&app, &session.token, "zh-CN");
    let path = "/issuer/queue";
    let mut bursts = Vec::new();
    // A commit by a worker during a burst (its copy is then not served to those who
    // arrived after it) would make two renders right: three bursts, one must be clean.
    for _ in 0..3 {
        browser.kept(path).await;
        // Any request but a GET counts as a write through this instance.
        let write = browser
            .client
            .post(app.url("/issuer/queue"))
            .header(COOKIE, &browser.cookie)
            .send()
            .await
            .expect("post");
        assert!(write.status().is_client_error(), "{}", write.status());
        let pages = futures_util::future::join_all((0..12).map(|_| browser.get(path))).await;
        let mut stored = 0;
        for page in &pages {
            assert_eq!(page.status, StatusCode::OK, "{}", page.html);
            assert!(page.html.contains("to-issue"), "{}", page.html);
            match page.cache.as_str() {
                "stored" => stored += 1,
                "hit" => {}
                other => panic!("a page of the burst was {other}"),
            }
        }
        bursts.push(stored);
        if stored == 1 {
            return;
        }
    }
    panic!("renders per burst of 12: {bursts:?}");
}

/// With `page_cache_seconds = 0` nothing is kept.
async fn no_page_is_kept_when_the_setting_is_zero(app: TestApp) {
    let session = app.as_operator().await;
    let browser = Browser::new(&app, &session.token, "zh-CN");
    for _ in 0..3 {
        let page = browser.get("/operator/organizations").await;
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(page.cache, "none");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

crate::on_both_backends!(no_page_is_kept_when_the_setting_is_zero);

mod kept {
    use super::*;

    crate::on_both_backends!(
        configured: a_kept_page_is_its_sessions_alone_and_gives_way_to_every_change,
        a_kept_page_is_rendered_again_once_it_is_older_than_its_seconds,
        a_burst_for_one_page_is_rendered_once
    );
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// On PostgreSQL every table of the schema announces its committed changes (the page
/// cache's watcher listens): a table without the triggers would let a copy outlive a
/// change to it. Tables added by later migrations get them at the next start. A
/// statement that changes no row announces nothing (a worker's poll that finds nothing
/// to do would otherwise make every instance render its pages again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_postgres_table_announces_its_changes() {
    use diesel::RunQueryDsl;
    openssl::init();
    if !crate::helpers::postgres_configured() {
        return;
    }
    let app = TestBackend::Postgres.spawn_with(|_| {}).await;
    let mut conn = app.pool.get().expect("connection");
    let baohan::db::DbConnection::Pg(c) = &mut *conn else {
        panic!("a PostgreSQL app");
    };
    let count = |c: &mut diesel::PgConnection, sql: &str| -> i64 {
        diesel::sql_query(sql)
            .get_result::<Count>(c)
            .expect("count")
            .n
    };
    let tables = "FROM pg_class t JOIN pg_namespace s ON s.oid = t.relnamespace \
                  WHERE s.nspname = current_schema() AND t.relkind IN ('r', 'p') \
                  AND t.relname <> '__diesel_schema_migrations'";
    let all = count(c, &format!("SELECT count(*) AS n {tables}"));
    assert!(all > 30, "the schema has its tables ({all})");
    // Four triggers per table: inserts, updates, deletes (each notifying only when it
    // changed a row) and truncation.
    let silent = count(
        c,
        &format!(
            "SELECT count(*) AS n {tables} AND (SELECT count(*) FROM pg_trigger g \
             WHERE g.tgrelid = t.oid AND g.tgname LIKE 'baohan\\_changed\\_%') <> 4"
        ),
    );
    assert_eq!(silent, 0, "tables without the change notices");

    // A statement that changes nothing is no change; one that does is.
    use diesel::connection::SimpleConnection;
    diesel::sql_query(format!("LISTEN {}", baohan::db::CHANGE_CHANNEL))
        .execute(c)
        .expect("listen");
    c.batch_execute("UPDATE organizations SET name = name WHERE id = 'nobody'")
        .expect("update of nothing");
    diesel::sql_query("SELECT 1")
        .execute(c)
        .expect("round trip");
    assert_eq!(c.notifications_iter().count(), 0, "an update of no row");
    c.batch_execute("UPDATE organizations SET name = name WHERE kind = 'operator'")
        .expect("update");
    diesel::sql_query("SELECT 1")
        .execute(c)
        .expect("round trip");
    assert_eq!(c.notifications_iter().count(), 1, "an update of a row");
}
