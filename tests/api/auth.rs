//! Signing in and out, sessions and API tokens, CSRF on cookie sessions, rate limits.

use serde_json::json;

use crate::fixtures::{expect_error, ApiToken, Health, Me, SignedIn};
use crate::helpers::TestApp;

async fn login_gives_a_token_that_identifies_the_actor(app: TestApp) {
    let me = app.as_agency().await.me().await;
    assert_eq!(me.role, "agency");
    assert_eq!(me.organization_kind, "agency");
}

async fn wrong_password_and_unknown_user_are_refused_alike(app: TestApp) {
    for (username, password) in [
        ("agency", "wrong-password-123"),
        ("nobody", "whatever-password"),
    ] {
        let error = app
            .sign_in(username, password)
            .fails(422, "validation_failed")
            .await;
        assert_eq!(
            error.message,
            "password: unknown username or wrong password"
        );
    }
}

async fn requests_without_credentials_are_refused(app: TestApp) {
    app.public_get::<Me>("/api/v1/auth/me")
        .fails(401, "unauthenticated")
        .await;
    app.with_token("bhs_not-a-real-token")
        .me()
        .fails(401, "unauthenticated")
        .await;
}

async fn cookie_sessions_need_the_csrf_token_to_change_state(app: TestApp) {
    // The browser keeps the session cookie from the sign-in answer.
    let browser = app.browser();
    let res = browser.sign_in("operator").response().await;
    assert_eq!(res.status(), 200);
    let set_cookie = res.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_owned();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    let csrf = res.json::<SignedIn>().await.expect("json").csrf_token;

    // Reading with the cookie alone works.
    browser.get::<Me>("/api/v1/auth/me").await;

    // Changing state with the cookie but no CSRF header is refused, and nothing is made.
    let robot = json!({ "name": "robot" });
    browser
        .post::<ApiToken>("/api/v1/auth/tokens", &robot, None, 201)
        .fails(403, "csrf_failed")
        .await;
    let created: ApiToken = browser
        .post("/api/v1/auth/tokens", &robot, Some(&csrf), 201)
        .await;
    assert!(created.token.starts_with("bht_"));

    // The API token works as a bearer token for a machine client, without CSRF.
    let machine = app.with_token(&created.token);
    assert_eq!(machine.me().await.role, "operator");

    // Another organization cannot revoke it; its own organization can, and then it
    // stops working.
    let bank = app.as_issuer("bank").await;
    bank.revoke_api_token(&created.id)
        .fails(404, "not_found")
        .await;
    browser
        .delete(&format!("/api/v1/auth/tokens/{}", created.id), &csrf)
        .await;
    machine.me().fails(401, "unauthenticated").await;
}

async fn logout_ends_the_session(app: TestApp) {
    let bank = app.as_issuer("bank").await;
    bank.sign_out().await;
    bank.me().fails(401, "unauthenticated").await;
}

crate::on_both_backends!(
    login_gives_a_token_that_identifies_the_actor,
    wrong_password_and_unknown_user_are_refused_alike,
    requests_without_credentials_are_refused,
    cookie_sessions_need_the_csrf_token_to_change_state,
    logout_ends_the_session,
);

/// Guessing passwords or verification codes is slowed down per client address.
#[tokio::test]
async fn sign_in_and_public_verification_are_rate_limited() {
    let app = crate::helpers::spawn_sqlite_with(|s| {
        s.rate_limit_login_per_minute = 3;
        s.rate_limit_verify_per_minute = 2;
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let res = app.sign_in("agency", "a wrong guess").response().await;
        statuses.push(res.status().as_u16());
        if res.status() == 429 {
            assert!(res.headers().contains_key("retry-after"));
            expect_error(res, 429, "rate_limited").await;
        }
    }
    assert_eq!(statuses, vec![422, 422, 422, 429, 429]);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let status = app
            .verify("BH20260101ZZZZ000001A0B1C2R", "ABCDEFGH")
            .status()
            .await;
        statuses.push(status);
    }
    assert_eq!(statuses[2], 429, "{statuses:?}");
    // Other endpoints are not limited.
    app.public_get::<Health>("/healthz").await;
}
