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
    // and nothing else was audited.
    let made = app.stored_parties_and_projects().await;
    assert!(made > 0, "the harness seeds the demo data");
    match app.audit_chain() {
        ChainCheck::Intact { entries } => assert_eq!(entries, made),
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
}

crate::on_both_backends!(
    health_and_readiness_answer,
    demo_seed_is_idempotent_and_audited,
    the_demo_pki_lets_demo_issuers_sign,
);
