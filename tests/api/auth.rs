use serde_json::{json, Value};

use crate::helpers::{assert_error, TestApp};

async fn login_gives_a_token_that_identifies_the_actor(app: TestApp) {
    let token = app.login("agency").await;
    let res = app.get(&token, "/api/v1/auth/me").await;
    assert_eq!(res.status(), 200);
    let me: Value = res.json().await.expect("json");
    assert_eq!(me["role"], "agency");
    assert_eq!(me["organization_kind"], "agency");
}

async fn wrong_password_and_unknown_user_are_refused_alike(app: TestApp) {
    for (username, password) in [
        ("agency", "wrong-password-123"),
        ("nobody", "whatever-password"),
    ] {
        let res = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({ "username": username, "password": password }))
            .send()
            .await
            .expect("request");
        let error = assert_error(res, 422, "validation_failed").await;
        assert_eq!(
            error["message"],
            "password: unknown username or wrong password"
        );
    }
}

async fn requests_without_credentials_are_refused(app: TestApp) {
    let res = app
        .client
        .get(app.url("/api/v1/auth/me"))
        .send()
        .await
        .expect("request");
    assert_error(res, 401, "unauthenticated").await;
    let res = app.get("bhs_not-a-real-token", "/api/v1/auth/me").await;
    assert_error(res, 401, "unauthenticated").await;
}

async fn cookie_sessions_need_the_csrf_token_to_change_state(app: TestApp) {
    // The client keeps the session cookie from the login answer.
    let res = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "username": "operator", "password": baohan::services::demo::DEMO_PASSWORD }))
        .send()
        .await
        .expect("login");
    assert_eq!(res.status(), 200);
    let set_cookie = res.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_owned();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    let body: Value = res.json().await.expect("json");
    let csrf = body["csrf_token"].as_str().expect("csrf").to_owned();

    // Reading with the cookie alone works.
    let res = app
        .client
        .get(app.url("/api/v1/auth/me"))
        .send()
        .await
        .expect("me");
    assert_eq!(res.status(), 200);

    // Changing state with the cookie but no CSRF header is refused, and nothing is made.
    let res = app
        .client
        .post(app.url("/api/v1/auth/tokens"))
        .json(&json!({ "name": "robot" }))
        .send()
        .await
        .expect("post");
    assert_error(res, 403, "csrf_failed").await;

    let res = app
        .client
        .post(app.url("/api/v1/auth/tokens"))
        .header("X-CSRF-Token", &csrf)
        .json(&json!({ "name": "robot" }))
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.expect("json");
    let api_token = created["token"].as_str().expect("token").to_owned();
    assert!(api_token.starts_with("bht_"));

    // The API token works as a bearer token for a machine client, without CSRF.
    let fresh = reqwest::Client::new();
    let res = fresh
        .get(app.url("/api/v1/auth/me"))
        .bearer_auth(&api_token)
        .send()
        .await
        .expect("me");
    assert_eq!(res.status(), 200);
    let me: Value = res.json().await.expect("json");
    assert_eq!(me["role"], "operator");

    // Another organization cannot revoke it; its own organization can, and then it
    // stops working.
    let token_id = created["id"].as_str().expect("id").to_owned();
    // (Signed in with a client of its own: the shared one holds the operator's cookie.)
    let bank: Value = fresh
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "username": "bank", "password": baohan::services::demo::DEMO_PASSWORD }))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let bank = bank["token"].as_str().expect("token").to_owned();
    let res = fresh
        .delete(app.url(&format!("/api/v1/auth/tokens/{token_id}")))
        .bearer_auth(&bank)
        .send()
        .await
        .expect("delete");
    assert_error(res, 404, "not_found").await;
    let res = app
        .client
        .delete(app.url(&format!("/api/v1/auth/tokens/{token_id}")))
        .header("X-CSRF-Token", &csrf)
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), 204);
    let res = fresh
        .get(app.url("/api/v1/auth/me"))
        .bearer_auth(&api_token)
        .send()
        .await
        .expect("me");
    assert_error(res, 401, "unauthenticated").await;
}

async fn logout_ends_the_session(app: TestApp) {
    let token = app.login("bank").await;
    let res = app.post(&token, "/api/v1/auth/logout", &json!({})).await;
    assert_eq!(res.status(), 204);
    let res = app.get(&token, "/api/v1/auth/me").await;
    assert_error(res, 401, "unauthenticated").await;
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
        let res = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({ "username": "agency", "password": "a wrong guess" }))
            .send()
            .await
            .expect("login");
        statuses.push(res.status().as_u16());
        if res.status() == 429 {
            assert!(res.headers().contains_key("retry-after"));
            assert_error(res, 429, "rate_limited").await;
        }
    }
    assert_eq!(statuses, vec![422, 422, 422, 429, 429]);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let res = app
            .client
            .post(app.url("/api/v1/verify"))
            .json(&json!({ "number": "BH20260101ZZZZ0000019", "code": "ABCDEFGH" }))
            .send()
            .await
            .expect("verify");
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses[2], 429, "{statuses:?}");
    // Other endpoints are not limited.
    let res = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("health");
    assert_eq!(res.status(), 200);
}
