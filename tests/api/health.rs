use crate::helpers::TestApp;

async fn health_and_readiness_answer(app: TestApp) {
    let res = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    assert!(
        res.headers().contains_key("x-request-id"),
        "request id header"
    );
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["status"], "ok");

    let res = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["database"], "ok");
}

async fn demo_seed_is_idempotent_and_audited(app: TestApp) {
    let pool = app.pool.clone();
    let again = tokio::task::spawn_blocking(move || {
        baohan::services::demo::seed(&mut pool.get().expect("conn"))
    })
    .await
    .expect("task")
    .expect("second seed");
    assert_eq!(
        again,
        baohan::services::demo::Seeded::default(),
        "nothing added twice"
    );
    match app.audit_chain() {
        baohan::db::audit::ChainCheck::Intact { entries } => {
            // 8 organizations, 8 users and 1 project from the first seed.
            assert_eq!(entries, 17);
        }
        broken => panic!("audit chain broken: {broken:?}"),
    }
}

/// What `baohan demo` does at start: a demo CA, a CRL, registered issuer certificates.
/// Twice is the same as once, and the demo bank can then issue with its hosted key.
async fn the_demo_pki_lets_demo_issuers_sign(app: TestApp) {
    let (ctx, dir) = (app.ctx.clone(), app.data_dir().to_path_buf());
    let first = tokio::task::spawn_blocking(move || {
        baohan::services::demo::seed_pki(&ctx, &dir).expect("seed pki");
        baohan::services::demo::seed_pki(&ctx, &dir).expect("seed pki again")
    })
    .await
    .expect("task");
    assert!(
        first.iter().any(|l| l.contains("openssl cms -sign")),
        "{first:?}"
    );
    let project = crate::exchange::create_project(&app, "BZ-DEMO-PKI", 2).await;
    let section = project["sections"][0]["id"]
        .as_str()
        .expect("section")
        .to_owned();
    let application =
        crate::exchange::paid_application(&app, "enterprise1", "bank", &section).await;
    let (number, code) = crate::exchange::issue_hosted(&app, &application).await;
    let report = app.verify_json(&number, &code).await;
    assert_eq!(report["indication"], "PASSED", "{report}");
}

crate::on_both_backends!(
    health_and_readiness_answer,
    demo_seed_is_idempotent_and_audited,
    the_demo_pki_lets_demo_issuers_sign,
);
