//! Fifty conflicting transitions on one guarantee at once: the conditional updates let
//! exactly one win from each state, the others are refused naming the state, and the
//! audit log records exactly the winners as one unbroken path.

use diesel::prelude::*;
use serde_json::{json, Value};

use crate::exchange::{create_project, issue_hosted, paid_application, setup_pki};
use crate::helpers::TestApp;

async fn fifty_conflicting_transitions_leave_one_winner_per_state(app: TestApp) {
    setup_pki(&app).await;
    let project = create_project(&app, "BZ-RACE", 2).await;
    let section = project["sections"][0]["id"]
        .as_str()
        .expect("section")
        .to_owned();
    let application = paid_application(&app, "enterprise1", "bank", &section).await;
    let (number, _) = issue_hosted(&app, &application).await;
    app.ctx
        .clock
        .advance(chrono::Duration::days(2) + chrono::Duration::hours(1));
    let agency = app.login("agency").await;
    let bank = app.login("bank").await;

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let (token, action, body) = match i % 5 {
            0 => (&agency, "accept", json!({})),
            1 => (&agency, "release", json!({})),
            2 => (
                &agency,
                "claims",
                json!({ "reason_code": "collusion", "statement": "串标", "amount": "1000.00" }),
            ),
            3 => (&bank, "revoke", json!({ "reason": "issued in error" })),
            _ => (&agency, "cancel", json!({})),
        };
        let req = reqwest::Client::new()
            .post(app.url(&format!("/api/v1/guarantees/{number}/{action}")))
            .bearer_auth(token)
            .json(&body);
        tasks.spawn(async move {
            let res = req.send().await.expect("send");
            let status = res.status().as_u16();
            let body: Value = res.json().await.expect("json body");
            (action, status, body)
        });
    }
    let mut wins = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (action, status, body) = done.expect("task");
        match status {
            200 | 201 => wins.push(action),
            409 => {
                let code = body["error"]["code"].as_str().unwrap_or_default();
                assert!(
                    code == "invalid_transition" || code == "conflict",
                    "{action}: {body}"
                );
            }
            other => panic!("{action}: unexpected {other}: {body}"),
        }
    }
    assert!(!wins.is_empty(), "someone must win");

    // The audit log holds exactly the winners, as one path from `issued`.
    let pool = app.pool.clone();
    let number_for_db = number.clone();
    let (path, status) = tokio::task::spawn_blocking(move || {
        use baohan::db::schema::{audit_log, guarantees};
        let mut conn = pool.get().expect("conn");
        let (id, status): (String, String) = guarantees::table
            .filter(guarantees::number.eq(&number_for_db))
            .select((guarantees::id, guarantees::status))
            .first(&mut conn)
            .expect("guarantee");
        let path: Vec<(String, Option<String>, Option<String>)> = audit_log::table
            .filter(audit_log::entity_kind.eq("guarantee"))
            .filter(audit_log::entity_id.eq(&id))
            .filter(audit_log::from_state.is_not_null())
            .order(audit_log::seq.asc())
            .select((
                audit_log::action,
                audit_log::from_state,
                audit_log::to_state,
            ))
            .load(&mut conn)
            .expect("audit");
        (path, status)
    })
    .await
    .expect("task");
    assert_eq!(
        path.len(),
        wins.len(),
        "one audit entry per winner: {path:?} vs {wins:?}"
    );
    let mut state = "issued".to_owned();
    for (action, from, to) in &path {
        assert_eq!(
            from.as_deref(),
            Some(state.as_str()),
            "{action} starts where the last ended: {path:?}"
        );
        state = to.clone().expect("to state");
    }
    assert_eq!(state, status, "the stored state is where the path ends");
    // From `issued` only `accept` leaves room for a second step.
    if wins.len() > 1 {
        assert_eq!(path[0].0, "accept", "{path:?}");
    }
    assert!(matches!(
        app.audit_chain(),
        baohan::db::audit::ChainCheck::Intact { .. }
    ));
}

crate::on_both_backends!(fifty_conflicting_transitions_leave_one_winner_per_state);
