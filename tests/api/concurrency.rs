//! Fifty conflicting transitions on one guarantee at once: the conditional updates let
//! exactly one win from each state, the others are refused naming the state, and the
//! audit log records exactly the winners as one unbroken path.

use chrono::TimeDelta;
use serde_json::{json, Value};

use crate::fixtures::library::ChainCheck;
use crate::fixtures::{NewTender, TestPki};
use crate::helpers::TestApp;

async fn fifty_conflicting_transitions_leave_one_winner_per_state(app: TestApp) {
    TestPki::set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-RACE", 2))
        .await;
    let bond = app.issued_bond("enterprise1", &tender.sections[0]).await;
    app.advance_clock(TimeDelta::days(2) + TimeDelta::hours(1));
    let agency = app.as_agency().await;
    let bank = app.as_issuer("bank").await;

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let (token, action, body) = match i % 5 {
            0 => (&agency.token, "accept", json!({})),
            1 => (&agency.token, "release", json!({})),
            2 => (
                &agency.token,
                "claims",
                json!({ "reason_code": "collusion", "statement": "串标", "amount": "1000.00" }),
            ),
            3 => (
                &bank.token,
                "revoke",
                json!({ "reason": "issued in error" }),
            ),
            _ => (&agency.token, "cancel", json!({})),
        };
        // A client per request, so that all fifty are on the wire at once.
        let req = reqwest::Client::new()
            .post(app.url(&format!("/api/v1/guarantees/{}/{action}", bond.number)))
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
    let trail = app.guarantee_trail(&bond.number).await;
    let path = &trail.steps;
    assert_eq!(
        path.len(),
        wins.len(),
        "one audit entry per winner: {path:?} vs {wins:?}"
    );
    let mut state = "issued".to_owned();
    for step in path {
        assert_eq!(
            step.from.as_deref(),
            Some(state.as_str()),
            "{} starts where the last ended: {path:?}",
            step.action
        );
        state = step.to.clone().expect("to state");
    }
    assert_eq!(
        state, trail.status,
        "the stored state is where the path ends"
    );
    // From `issued` only `accept` leaves room for a second step.
    if wins.len() > 1 {
        assert_eq!(path[0].action, "accept", "{path:?}");
    }
    assert!(matches!(app.audit_chain(), ChainCheck::Intact { .. }));
}

crate::on_both_backends!(fifty_conflicting_transitions_leave_one_winner_per_state);
