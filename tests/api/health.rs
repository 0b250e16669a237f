//! Probes, and the demo data every test app starts with.

use crate::fixtures::library::{ChainCheck, Seeded};
use crate::fixtures::{Health, NewTender};
use crate::helpers::TestApp;

async fn health_and_readiness_answer(app: TestApp) {
    let res = app.public_get::<Health>("/healthz").response().await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers().contains_key("x-request-id"),
        "request id header"
    );
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let health: Health = res.json().await.expect("json");
    assert_eq!(health.status, "ok");

    let ready = app.public_get::<Health>("/readyz").await;
    assert_eq!(ready.database.as_deref(), Some("ok"));
}

async fn demo_seed_is_idempotent_and_audited(app: TestApp) {
    assert_eq!(
        app.seed_demo_again().await,
        Seeded::default(),
        "nothing added twice"
    );
    // Every organization, user and project the first seed made has its audit entry,
    // and nothing else was audited but the start's one seeding of the catalogue.
    let made = app.stored_parties_and_projects().await;
    assert!(made > 0, "the harness seeds the demo data");
    let catalogue = app.audit_of("catalogue", "data_files").await;
    assert_eq!(catalogue.len(), 1, "{catalogue:?}");
    match app.audit_chain() {
        ChainCheck::Intact { entries } => assert_eq!(entries, made + 1),
        broken => panic!("audit chain broken: {broken:?}"),
    }
}

/// What `baohan demo` does at start: a demo CA, a CRL, registered issuer certificates.
/// Twice is the same as once, and the demo bank can then issue with its hosted key.
async fn the_demo_pki_lets_demo_issuers_sign(app: TestApp) {
    app.seed_demo_pki().await;
    let printed = app.seed_demo_pki().await;
    assert!(
        printed.iter().any(|l| l.contains("openssl cms -sign")),
        "{printed:?}"
    );
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-DEMO-PKI", 2))
        .await;
    let bond = app.issued_bond("enterprise1", &tender.sections[0]).await;
    let report = app.verify(&bond, &bond.code).await;
    assert_eq!(report.indication, "PASSED", "{report:?}");
    // The demo guarantee company signs with an SM2 key under the demo SM2 CA.
    assert!(
        printed
            .iter()
            .any(|l| l.starts_with("guarantor") && l.contains("SM2")),
        "{printed:?}"
    );
    let application = app
        .paid_application("enterprise2", "guarantor", &tender.sections[0])
        .await;
    let sm2_bond = app.as_issuer("guarantor").await.issue(&application).await;
    let signature = app
        .as_enterprise("enterprise2")
        .await
        .download(&sm2_bond, "signature")
        .await;
    let signed = baohan::pki::cms_parse::parse_signed_data(&signature).expect("CMS");
    assert_eq!(
        signed.signer.digest_algorithm,
        baohan::pki::gm::oid::SM3.as_bytes()
    );
    let report = app.verify(&sm2_bond, &sm2_bond.code).await;
    assert_eq!(report.indication, "PASSED", "{report:?}");
}

/// `/readyz` asks the database for a write, not only an answer: a database that takes
/// reads but refuses writes fails every sign-in, so it is not ready. (It used to answer
/// ready on a read-only data directory.)
async fn readiness_needs_a_database_that_takes_writes(app: TestApp) {
    let url = app.settings.database_url.clone().expect("a database URL");
    // The probe itself, on a connection that may only read (SQLite's mode=ro, a
    // PostgreSQL read-only session), fails; on one that may write, it passes.
    let probed = tokio::task::spawn_blocking(move || {
        let mut read_only = baohan::db::open_existing_read_only(&url).expect("read-only");
        baohan::db::check_writable(&mut read_only)
    })
    .await
    .expect("probe task");
    assert!(probed.is_err(), "a read-only connection is not writable");
    app.db(|c| baohan::db::check_writable(c).expect("writable"))
        .await;

    if !app
        .settings
        .database_url
        .as_deref()
        .is_some_and(|u| u.starts_with("postgres"))
    {
        return;
    }
    // The whole server on a database turned read-only (as a replica would be): new
    // sessions start read-only, and the pool's connections are cut. Done from a session
    // of the test's own, outside the pool, that stays writable.
    let admin = |read_only: bool| {
        let url = app.settings.database_url.clone().expect("a database URL");
        tokio::task::spawn_blocking(move || {
            use diesel::RunQueryDsl;
            let mut c = baohan::db::pg_establish(&url).expect("admin session");
            for sql in [
                "SET default_transaction_read_only = off".to_owned(),
                format!(
                    "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET \
                     default_transaction_read_only = {read_only}', current_database()); END $$"
                ),
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    .to_owned(),
            ] {
                diesel::sql_query(sql).execute(&mut c).expect("admin sql");
            }
        })
    };
    admin(true).await.expect("read-only");
    let res = app.public_get::<Health>("/readyz").response().await;
    crate::helpers::assert_error(res, 503, "unavailable").await;
    // A sign-in fails too: that is what the probe foretold.
    let signed_in = app
        .sign_in("enterprise1", crate::fixtures::library::DEMO_PASSWORD)
        .response()
        .await;
    assert_ne!(signed_in.status(), 200);

    admin(false).await.expect("writable again");
    let ready = app.public_get::<Health>("/readyz").await;
    assert_eq!(ready.database.as_deref(), Some("ok"));
}

crate::on_both_backends!(
    readiness_needs_a_database_that_takes_writes,
    health_and_readiness_answer,
    demo_seed_is_idempotent_and_audited,
    the_demo_pki_lets_demo_issuers_sign,
);
