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

crate::on_both_backends!(
    health_and_readiness_answer,
    demo_seed_is_idempotent_and_audited
);
