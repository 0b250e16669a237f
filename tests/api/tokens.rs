//! API tokens: made only from a signed-in session, listed for the organization with
//! their last use, expiring, revoked with the user who made them; sign-out ends exactly
//! the session the request came with; the `Authorization` header read strictly.

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use crate::fixtures::{ApiToken, Me};
use crate::helpers::TestApp;

/// A token as the organization's list shows it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Listed {
    id: String,
    name: String,
    username: String,
    created_at: String,
    expires_at: String,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
    status: String,
}

async fn an_api_token_cannot_make_tokens_and_a_token_expires(app: TestApp) {
    let bank = app.as_issuer("bank").await;
    let made: ApiToken = bank
        .post(
            "/api/v1/auth/tokens",
            &json!({ "name": "core banking" }),
            201,
        )
        .await;
    let machine = app.with_token(&made.token);
    assert_eq!(machine.me().await.role, "issuer");

    // The token cannot mint another, whatever it asks for.
    machine
        .post::<ApiToken>("/api/v1/auth/tokens", &json!({ "name": "child" }), 201)
        .fails(403, "forbidden")
        .await;
    // Lifetimes beyond the exchange's longest (365 days by default) are refused.
    for days in [0, 366, 100_000] {
        let error = bank
            .post::<ApiToken>(
                "/api/v1/auth/tokens",
                &json!({ "name": "long", "expires_in_days": days }),
                201,
            )
            .fails(422, "validation_failed")
            .await;
        assert_eq!(error.field(), Some("expires_in_days"), "{days}");
    }
    let short: ApiToken = bank
        .post(
            "/api/v1/auth/tokens",
            &json!({ "name": "one day", "expires_in_days": 1 }),
            201,
        )
        .await;

    // The organization's list: both tokens, who made them, the machine's last use, and
    // never the token itself. Another organization sees none of them.
    let listed: Vec<Listed> = bank.get("/api/v1/auth/tokens").await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    let core = listed.iter().find(|t| t.id == made.id).expect("listed");
    assert_eq!(
        (core.name.as_str(), core.username.as_str()),
        ("core banking", "bank")
    );
    assert_eq!(core.status, "active");
    assert!(core.last_used_at.is_some(), "used by the machine: {core:?}");
    assert!(core.revoked_at.is_none());
    assert!(core.expires_at > core.created_at);
    let text = serde_json::to_string(&bank.send(Method::GET, "/api/v1/auth/tokens", None).await)
        .expect("json");
    assert!(!text.contains(&made.token) && !text.contains(&short.token));
    let agency: Vec<Listed> = app.as_agency().await.get("/api/v1/auth/tokens").await;
    assert!(agency.is_empty(), "{agency:?}");

    // Two days on, the one-day token no longer works and says it expired; the other
    // still works.
    app.advance_clock(chrono::Duration::days(2));
    app.with_token(&short.token)
        .me()
        .fails(401, "unauthenticated")
        .await;
    machine.me().await;
    let listed: Vec<Listed> = app.as_issuer("bank").await.get("/api/v1/auth/tokens").await;
    let expired = listed.iter().find(|t| t.id == short.id).expect("listed");
    assert_eq!(expired.status, "expired");
}

async fn deactivating_a_user_ends_their_sessions_and_revokes_their_tokens(app: TestApp) {
    let bank = app.as_issuer("bank").await;
    let bank_user = bank.me().await.user_id;
    let made: ApiToken = bank
        .post(
            "/api/v1/auth/tokens",
            &json!({ "name": "core banking" }),
            201,
        )
        .await;
    let operator = app.as_operator().await;

    // Only the operator deactivates, and never their own account.
    bank.send(
        Method::POST,
        &format!("/api/v1/users/{bank_user}/deactivate"),
        None,
    )
    .fails(403, "forbidden")
    .await;
    let me = operator.me().await.user_id;
    operator
        .send(
            Method::POST,
            &format!("/api/v1/users/{me}/deactivate"),
            None,
        )
        .fails(409, "conflict")
        .await;
    operator
        .send(Method::POST, "/api/v1/users/no-such-user/deactivate", None)
        .fails(404, "not_found")
        .await;

    let deactivate = format!("/api/v1/users/{bank_user}/deactivate");
    for _ in 0..2 {
        let answer = operator
            .send(Method::POST, &deactivate, None)
            .answer()
            .await;
        assert_eq!(answer.status, 204, "{answer:?}");
    }
    app.with_token(&made.token)
        .me()
        .fails(401, "unauthenticated")
        .await;
    bank.me().fails(401, "unauthenticated").await;
    app.sign_in("bank", crate::fixtures::library::DEMO_PASSWORD)
        .fails(422, "validation_failed")
        .await;
    assert_eq!(app.audited("deactivate_user").await, vec![bank_user]);
}

async fn sign_out_ends_exactly_the_session_it_was_sent_with(app: TestApp) {
    // An oddly spaced, oddly cased header still names the session, and signs it out.
    let bank = app.as_issuer("bank").await;
    let token = bank.token.clone();
    let answer = app
        .signed_out()
        .send(Method::POST, "/api/v1/auth/logout", None)
        .header("Authorization", &format!("  bEaReR    {token}  "))
        .answer()
        .await;
    assert_eq!(answer.status, 204, "{answer:?}");
    app.with_token(&token)
        .me()
        .fails(401, "unauthenticated")
        .await;

    // An API token does not sign out: refused, and it keeps working (DELETE revokes).
    let agency = app.as_agency().await;
    let made: ApiToken = agency
        .post("/api/v1/auth/tokens", &json!({ "name": "robot" }), 201)
        .await;
    let machine = app.with_token(&made.token);
    let error = machine.sign_out().fails(422, "validation_failed").await;
    assert!(error.message.contains("DELETE"), "{}", error.message);
    machine.me().await;
    machine.revoke_api_token(&made.id).await;
    machine.me().fails(401, "unauthenticated").await;
}

async fn the_authorization_header_is_read_strictly(app: TestApp) {
    let agency = app.as_agency().await;
    let token = agency.token.clone();
    let me = |headers: Vec<(&'static str, String)>| {
        let mut call = app.signed_out().send(Method::GET, "/api/v1/auth/me", None);
        for (name, value) in headers {
            call = call.header(name, &value);
        }
        call.answer()
    };
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let answer = me(vec![("Authorization", format!("{scheme} {token}"))]).await;
        assert_eq!(answer.status, 200, "{scheme}: {answer:?}");
    }
    // Two Authorization headers are refused, even when one is valid.
    let answer = me(vec![
        ("Authorization", format!("Bearer {token}")),
        ("Authorization", "Bearer bhs_forged".to_owned()),
    ])
    .await;
    assert_eq!(answer.status, 400, "{answer:?}");
    // A token with a space inside is malformed, not partly read.
    let answer = me(vec![("Authorization", format!("Bearer {token} extra"))]).await;
    assert_eq!(answer.status, 401, "{answer:?}");

    // A Basic header (which browsers send on their own for some sites) does not hide a
    // valid session cookie.
    let browser = app.browser();
    let res = browser.sign_in("agency").response().await;
    assert_eq!(res.status(), 200);
    let answer = browser
        .get::<Me>("/api/v1/auth/me")
        .header("Authorization", "Basic YWdlbmN5OnBhc3N3b3Jk")
        .answer()
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

crate::on_both_backends!(
    an_api_token_cannot_make_tokens_and_a_token_expires,
    deactivating_a_user_ends_their_sessions_and_revokes_their_tokens,
    sign_out_ends_exactly_the_session_it_was_sent_with,
    the_authorization_header_is_read_strictly,
);
