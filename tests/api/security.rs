//! Who may do what: an authorization matrix over the endpoints, with strangers of the
//! same kind as every owner; confidentiality before bid opening; idempotency keys.

use reqwest::Method;
use serde_json::{json, Value};

use crate::exchange::{create_project, issue_hosted, paid_application, setup_pki};
use crate::helpers::{assert_error, uscc, TestApp};

/// Adds a second agency with a user, as a stranger to the demo agency's projects.
async fn other_agency(app: &TestApp) -> String {
    let operator = app.login("operator").await;
    let res = app
        .post(
            &operator,
            "/api/v1/organizations",
            &json!({ "kind": "agency", "name": "另一家招标代理", "uscc": uscc("91371600AG0000777") }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let res = app
        .post(
            &operator,
            "/api/v1/users",
            &json!({ "organization_id": id, "username": "stranger.agency", "display_name": "Stranger",
                     "role": "agency", "password": "a stranger's password" }),
        )
        .await;
    assert_eq!(res.status(), 201);
    relogin_stranger(app).await
}

const ACTORS: [&str; 9] = [
    "anonymous",
    "operator",
    "enterprise1",
    "enterprise2",
    "bank",
    "guarantor",
    "agency",
    "stranger.agency",
    "tenderee",
];

async fn call(
    app: &TestApp,
    token: Option<&str>,
    method: &Method,
    path: &str,
    body: Option<Value>,
) -> u16 {
    // A fresh client per call: the shared one keeps a session cookie from logins.
    let mut req = reqwest::Client::new().request(method.clone(), app.url(path));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.expect("send").status().as_u16()
}

/// A request body with `@@` replaced by a number unique to the caller, so allowed calls
/// that create things do not collide with each other.
fn body_for(template: &Option<Value>, caller: usize) -> Option<Value> {
    template.as_ref().map(|t| {
        let text = t.to_string().replace("@@", &format!("{caller}"));
        serde_json::from_str(&text).expect("body")
    })
}

async fn the_authorization_matrix_holds(app: TestApp) {
    setup_pki(&app).await;
    let project = create_project(&app, "BZ-AUTHZ", 2).await;
    let project_id = project["id"].as_str().expect("id").to_owned();
    let section = project["sections"][0]["id"]
        .as_str()
        .expect("section")
        .to_owned();
    let application = paid_application(&app, "enterprise1", "bank", &section).await;
    let (number, _) = issue_hosted(&app, &application).await;

    let mut tokens = std::collections::HashMap::new();
    for actor in ACTORS {
        let token = match actor {
            "anonymous" => None,
            "stranger.agency" => Some(other_agency(&app).await),
            name => Some(app.login(name).await),
        };
        tokens.insert(actor, token);
    }

    // Expected status per actor, in ACTORS order. Bodies are valid, so what decides is
    // who calls: 201/200 (or a 409/422 from the lifecycle or the input) means the
    // caller got past authorization; 401, 403 and 404 mean it did not.
    let operator = tokens["operator"].clone().expect("operator");
    let enterprise_org = app
        .organization_id(&operator, &crate::helpers::demo_uscc("enterprise1"))
        .await;
    let deadline = (chrono::Utc::now() + chrono::Duration::days(5)).to_rfc3339();
    let earlier = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let bank_org = app
        .organization_id(&operator, &crate::helpers::demo_uscc("bank"))
        .await;
    let ca_pem = {
        let ca = baohan::pki::demo::DemoCa::new("Matrix CA", baohan::pki::demo::KeyType::EcP256)
            .expect("ca");
        String::from_utf8(ca.cert.to_pem().expect("pem")).expect("utf8")
    };
    let get = Method::GET;
    let post = Method::POST;
    let p = project_id.as_str();
    let a = application.as_str();
    let g = number.as_str();
    type Row = (Method, String, Option<Value>, [u16; 9]);
    let matrix: Vec<Row> = vec![
        //                                                          anon oper ent1 ent2 bank guar agcy strg tend
        (
            get.clone(),
            "/api/v1/organizations".into(),
            None,
            [401, 200, 403, 403, 403, 403, 403, 403, 403],
        ),
        (
            post.clone(),
            "/api/v1/organizations".into(),
            Some(
                json!({ "kind": "tenderee", "name": "Matrix", "uscc": uscc("91371600TE0000888") }),
            ),
            [401, 201, 403, 403, 403, 403, 403, 403, 403],
        ),
        (
            post.clone(),
            "/api/v1/users".into(),
            Some(
                json!({ "organization_id": enterprise_org, "username": "matrix.user@@", "display_name": "M",
                         "role": "enterprise", "password": "a long enough password" }),
            ),
            [401, 201, 403, 403, 403, 403, 403, 403, 403],
        ),
        (
            post.clone(),
            "/api/v1/admin/trust-anchors".into(),
            Some(json!({ "name": "matrix @@", "certificate_pem": ca_pem })),
            [401, 201, 403, 403, 403, 403, 403, 403, 403],
        ),
        (
            post.clone(),
            "/api/v1/admin/issuer-certificates".into(),
            Some(
                json!({ "organization_id": enterprise_org, "certificate_pem": "not a certificate" }),
            ),
            [401, 422, 403, 403, 403, 403, 403, 403, 403],
        ),
        (
            get.clone(),
            "/api/v1/admin/mail".into(),
            None,
            [401, 200, 403, 403, 403, 403, 403, 403, 403],
        ),
        (
            get.clone(),
            "/api/v1/projects".into(),
            None,
            [401, 200, 403, 403, 403, 403, 200, 200, 403],
        ),
        (
            post.clone(),
            "/api/v1/projects".into(),
            Some(
                json!({ "code": "MX-@@", "name": "Matrix", "tenderee_uscc": crate::helpers::demo_uscc("tenderee"),
                         "bid_deadline": deadline, "bid_opening_at": deadline, "bid_validity_days": 30,
                         "sections": [{ "code": "1", "name": "S", "bond_amount": "1000.00" }] }),
            ),
            [401, 403, 403, 403, 403, 403, 201, 201, 403],
        ),
        (
            get.clone(),
            format!("/api/v1/projects/{p}"),
            None,
            [401, 200, 200, 200, 200, 200, 200, 404, 200],
        ),
        (
            get.clone(),
            "/api/v1/applications".into(),
            None,
            [401, 200, 200, 200, 200, 200, 403, 403, 403],
        ),
        (
            get.clone(),
            format!("/api/v1/applications/{a}"),
            None,
            [401, 200, 200, 404, 200, 404, 404, 404, 404],
        ),
        (
            post.clone(),
            format!("/api/v1/applications/{a}/approve"),
            Some(json!({ "premium": "100.00" })),
            [401, 403, 403, 403, 409, 404, 403, 403, 403],
        ),
        (
            post.clone(),
            format!("/api/v1/applications/{a}/withdraw"),
            Some(json!({})),
            [401, 403, 409, 404, 403, 403, 403, 403, 403],
        ),
        (
            post.clone(),
            format!("/api/v1/applications/{a}/confirm-payment"),
            Some(json!({})),
            [401, 403, 403, 403, 409, 404, 403, 403, 403],
        ),
        (
            get.clone(),
            "/api/v1/guarantees".into(),
            None,
            [401, 200, 200, 200, 200, 200, 403, 403, 403],
        ),
        (
            get.clone(),
            format!("/api/v1/guarantees/{g}"),
            None,
            [401, 200, 200, 404, 200, 404, 404, 404, 404],
        ),
        (
            get.clone(),
            format!("/api/v1/guarantees/{g}/document"),
            None,
            [401, 200, 200, 404, 200, 404, 404, 404, 404],
        ),
        (
            get.clone(),
            format!("/api/v1/guarantees/{g}/letter"),
            None,
            [401, 200, 200, 404, 200, 404, 404, 404, 404],
        ),
        (
            post.clone(),
            format!("/api/v1/guarantees/{g}/accept"),
            Some(json!({})),
            [401, 403, 403, 404, 403, 404, 404, 404, 404],
        ),
        (
            post.clone(),
            format!("/api/v1/guarantees/{g}/release"),
            Some(json!({})),
            [401, 403, 403, 404, 403, 404, 404, 404, 404],
        ),
        (
            post.clone(),
            format!("/api/v1/guarantees/{g}/claims"),
            Some(json!({ "reason_code": "other", "statement": "x", "amount": "1.00" })),
            [401, 403, 403, 404, 403, 404, 404, 404, 404],
        ),
        (
            get.clone(),
            format!("/api/v1/projects/{p}/bonds"),
            None,
            [401, 403, 403, 403, 403, 403, 403, 404, 403],
        ),
        (
            get.clone(),
            "/api/v1/claims".into(),
            None,
            [401, 200, 200, 200, 200, 200, 200, 200, 403],
        ),
        (
            get.clone(),
            "/api/v1/auth/me".into(),
            None,
            [401, 200, 200, 200, 200, 200, 200, 200, 200],
        ),
        (
            get.clone(),
            format!("/api/v1/organizations/{enterprise_org}"),
            None,
            [401, 200, 200, 404, 404, 404, 404, 404, 404],
        ),
        (
            post.clone(),
            "/api/v1/admin/crls".into(),
            Some(json!({ "crl_pem": "not a CRL" })),
            [401, 422, 403, 403, 403, 403, 403, 403, 403],
        ),
        (
            post.clone(),
            "/api/v1/admin/mail/no-such-mail/retry".into(),
            Some(json!({})),
            [401, 404, 403, 403, 403, 403, 403, 403, 403],
        ),
        (
            Method::DELETE,
            "/api/v1/auth/tokens/no-such-token".into(),
            None,
            [401, 404, 404, 404, 404, 404, 404, 404, 404],
        ),
        (
            Method::PATCH,
            format!("/api/v1/projects/{p}"),
            Some(json!({ "name": "滨州港疏港路改建工程" })),
            [401, 403, 403, 403, 403, 403, 200, 404, 403],
        ),
        (
            post.clone(),
            format!("/api/v1/projects/{p}/postpone"),
            // Earlier than the current deadline: the agency is refused for the input.
            Some(json!({ "bid_deadline": earlier, "bid_opening_at": earlier })),
            [401, 403, 403, 403, 403, 403, 422, 404, 403],
        ),
        (
            post.clone(),
            format!("/api/v1/applications/{a}/decline"),
            Some(json!({ "reason": "no" })),
            [401, 403, 403, 403, 409, 404, 403, 403, 403],
        ),
        (
            get.clone(),
            format!("/api/v1/applications/{a}/draft"),
            None,
            [401, 403, 403, 403, 409, 404, 403, 403, 403],
        ),
        (
            post.clone(),
            format!("/api/v1/applications/{a}/issue"),
            Some(json!({})),
            [401, 403, 403, 403, 409, 404, 403, 403, 403],
        ),
        (
            post.clone(),
            format!("/api/v1/applications/{a}/signature"),
            Some(json!({ "signature_base64": "MAA=" })),
            [401, 403, 403, 403, 409, 404, 403, 403, 403],
        ),
        (
            get.clone(),
            format!("/api/v1/guarantees/{g}/signature"),
            None,
            [401, 200, 200, 404, 200, 404, 404, 404, 404],
        ),
        (
            get.clone(),
            format!("/api/v1/guarantees/{g}/chain"),
            None,
            [401, 200, 200, 404, 200, 404, 404, 404, 404],
        ),
        (
            post.clone(),
            "/api/v1/claims/no-such-claim/decision".into(),
            Some(json!({ "decision": "pay" })),
            [401, 403, 403, 403, 404, 404, 403, 403, 403],
        ),
        (
            post.clone(),
            format!("/api/v1/projects/{p}/sections/{section}/award"),
            Some(json!({ "winner_enterprise_id": enterprise_org })),
            [401, 403, 403, 403, 403, 403, 403, 404, 403],
        ),
        (
            post.clone(),
            format!("/api/v1/projects/{p}/sections/{section}/contract"),
            Some(json!({})),
            [401, 403, 403, 403, 403, 403, 409, 404, 403],
        ),
        (
            post.clone(),
            "/api/v1/verify/bulk".into(),
            Some(json!({ "project_id": p })),
            [401, 403, 403, 403, 403, 403, 403, 404, 403],
        ),
        // Last, as they change the guarantee: only its issuer revokes; then nobody can
        // cancel it any more (its bidder could have, before the deadline).
        (
            post.clone(),
            format!("/api/v1/guarantees/{g}/revoke"),
            Some(json!({ "reason": "error" })),
            [401, 403, 403, 404, 200, 404, 404, 404, 404],
        ),
        (
            post.clone(),
            format!("/api/v1/guarantees/{g}/cancel"),
            Some(json!({})),
            [401, 403, 409, 404, 403, 404, 404, 404, 404],
        ),
        (
            post.clone(),
            "/api/v1/applications".into(),
            Some(json!({ "section_id": section, "issuer_id": bank_org })),
            // enterprise1 holds an application for this section already.
            [401, 403, 409, 201, 403, 403, 403, 403, 403],
        ),
        (
            post.clone(),
            "/api/v1/auth/tokens".into(),
            Some(json!({ "name": "robot @@" })),
            [401, 201, 201, 201, 201, 201, 201, 201, 201],
        ),
        // Very last: it ends every session used above.
        (
            post.clone(),
            "/api/v1/auth/logout".into(),
            Some(json!({})),
            [401, 204, 204, 204, 204, 204, 204, 204, 204],
        ),
    ];
    let mut failures = Vec::new();
    for (method, path, body, expected) in &matrix {
        for (i, actor) in ACTORS.iter().enumerate() {
            let got = call(
                &app,
                tokens[actor].as_deref(),
                method,
                path,
                body_for(body, i),
            )
            .await;
            if got != expected[i] {
                failures.push(format!(
                    "{method} {path} as {actor}: expected {}, got {got}",
                    expected[i]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "authorization matrix:\n{}",
        failures.join("\n")
    );

    // Nobody sees a project's bonds before opening; after it the agency and the
    // tenderee do, strangers still do not.
    app.ctx
        .clock
        .advance(chrono::Duration::days(2) + chrono::Duration::hours(1));
    let after: Vec<(String, [u16; 9])> = vec![
        (
            format!("/api/v1/guarantees/{g}"),
            [401, 200, 200, 404, 200, 404, 200, 404, 200],
        ),
        (
            format!("/api/v1/projects/{p}/bonds"),
            [401, 403, 403, 403, 403, 403, 200, 404, 200],
        ),
    ];
    // Sessions expired with the days that passed: sign in again.
    for actor in ACTORS
        .iter()
        .filter(|a| !matches!(**a, "anonymous" | "stranger.agency"))
    {
        tokens.insert(actor, Some(app.login(actor).await));
    }
    tokens.insert("stranger.agency", Some(relogin_stranger(&app).await));
    for (path, expected) in &after {
        for (i, actor) in ACTORS.iter().enumerate() {
            let got = call(&app, tokens[actor].as_deref(), &Method::GET, path, None).await;
            if got != expected[i] {
                failures.push(format!(
                    "after opening: GET {path} as {actor}: expected {}, got {got}",
                    expected[i]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "authorization after opening:\n{}",
        failures.join("\n")
    );
}

async fn relogin_stranger(app: &TestApp) -> String {
    app.login_with("stranger.agency", "a stranger's password")
        .await
}

async fn a_retried_request_with_the_same_key_changes_nothing_twice(app: TestApp) {
    let operator = app.login("operator").await;
    let body = json!({ "kind": "enterprise", "name": "滨州重试建设有限公司", "uscc": uscc("91371600MA3CQ0777") });
    let send = |body: Value, key: &'static str| {
        let req = app
            .client
            .post(app.url("/api/v1/organizations"))
            .bearer_auth(&operator)
            .header("Idempotency-Key", key)
            .json(&body);
        async move { req.send().await.expect("send") }
    };
    let first = send(body.clone(), "create-org-1").await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.expect("json");
    let second = send(body.clone(), "create-org-1").await;
    assert_eq!(second.status(), 201, "the first answer again, not a 409");
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    let second: Value = second.json().await.expect("json");
    assert_eq!(first, second);
    let orgs: Value = app
        .get(&operator, "/api/v1/organizations")
        .await
        .json()
        .await
        .expect("json");
    let count = orgs
        .as_array()
        .expect("array")
        .iter()
        .filter(|o| o["uscc"] == body["uscc"])
        .count();
    assert_eq!(count, 1, "created once");

    // The same key for another request is refused; a bad key is refused.
    let other = json!({ "kind": "enterprise", "name": "Other", "uscc": uscc("91371600MA3CQ0778") });
    let res = send(other, "create-org-1").await;
    let error = assert_error(res, 422, "validation_failed").await;
    assert_eq!(error["details"]["field"], "Idempotency-Key");
    let res = app
        .client
        .post(app.url("/api/v1/organizations"))
        .bearer_auth(&operator)
        .header("Idempotency-Key", "")
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_error(res, 400, "bad_request").await;

    // A lifecycle step retried: approving twice with one key answers 200 both times
    // and leaves one audit entry, where a plain second approve is a 409.
    let project = create_project(&app, "BZ-IDEM", 2).await;
    let section = project["sections"][0]["id"]
        .as_str()
        .expect("section")
        .to_owned();
    let ent = app.login("enterprise1").await;
    let bank_id = app
        .organization_id(&operator, &crate::helpers::demo_uscc("bank"))
        .await;
    let res = app
        .post(
            &ent,
            "/api/v1/applications",
            &json!({ "section_id": section, "issuer_id": bank_id }),
        )
        .await;
    let application = res.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let bank = app.login("bank").await;
    for _ in 0..2 {
        let res = app
            .client
            .post(app.url(&format!("/api/v1/applications/{application}/approve")))
            .bearer_auth(&bank)
            .header("Idempotency-Key", "approve-once")
            .json(&json!({ "premium": "500.00" }))
            .send()
            .await
            .expect("send");
        assert_eq!(res.status(), 200);
    }
    let res = app
        .post(
            &bank,
            &format!("/api/v1/applications/{application}/approve"),
            &json!({ "premium": "500.00" }),
        )
        .await;
    assert_error(res, 409, "invalid_transition").await;
}

crate::on_both_backends!(
    the_authorization_matrix_holds,
    a_retried_request_with_the_same_key_changes_nothing_twice,
);

/// A password guess.
fn sign_in_guess() -> Value {
    json!({ "username": "agency", "password": "a wrong guess" })
}

/// A verification code guess.
fn verification_guess() -> Value {
    json!({ "number": "BH20260101ZZZZ0000019", "code": "ABCDEFGH" })
}

/// One attempt from a fresh client with extra headers: the status and the body.
async fn attempt(
    app: &TestApp,
    path: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(app.url(path)).json(body);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let res = req.send().await.expect("send");
    let status = res.status().as_u16();
    let retry_after = res.headers().contains_key("retry-after");
    let body: Value = res.json().await.unwrap_or(Value::Null);
    if status == 429 {
        assert!(retry_after, "429 says when to retry");
        assert_eq!(body["error"]["code"], "rate_limited");
    }
    (status, body)
}

/// The limits count the request the router matched: spelling a character of the path
/// as a percent escape reaches the same endpoint and the same count.
#[tokio::test]
async fn a_percent_encoded_path_does_not_escape_the_rate_limits() {
    let app = crate::helpers::spawn_sqlite_with(|s| {
        s.rate_limit_login_per_minute = 2;
        s.rate_limit_verify_per_minute = 2;
    })
    .await;
    for (plain, disguises, guess) in [
        (
            "/api/v1/auth/login",
            [
                "/api/v1/auth/logi%6E",
                "/api/v1/%61uth/login",
                "/api/v1/auth/LOGIN",
            ],
            sign_in_guess(),
        ),
        (
            "/api/v1/verify",
            ["/api/v1/%76erify", "/api/v1/verif%79", "/api/v1/Verify"],
            verification_guess(),
        ),
    ] {
        let (routed, _) = attempt(&app, plain, &guess, &[]).await;
        assert_ne!(routed, 429, "{plain}: the first attempt is allowed");
        let mut statuses = Vec::new();
        for path in disguises {
            let (status, body) = attempt(&app, path, &guess, &[]).await;
            // Either the endpoint (and then counted) or no endpoint at all.
            let not_routed = status == 404 && body["error"]["message"] == "no such endpoint";
            assert!(
                status == routed || status == 429 || not_routed,
                "{path}: {status} {body}"
            );
            statuses.push(status);
        }
        // The second attempt (the first disguise) used the allowance up; the next
        // disguise is refused as the plain path is.
        assert_eq!(statuses[0], routed, "{plain}: {statuses:?}");
        assert_eq!(statuses[1], 429, "{plain}: {statuses:?}");
        assert_eq!(attempt(&app, plain, &guess, &[]).await.0, 429, "{plain}");
    }
}

/// Without configured proxies, forwarding headers are the client's own words: rotating
/// them does not make a new client.
#[tokio::test]
async fn forwarded_addresses_from_an_untrusted_peer_are_ignored() {
    let app = crate::helpers::spawn_sqlite_with(|s| s.rate_limit_login_per_minute = 2).await;
    let mut statuses = Vec::new();
    for n in 1..=4 {
        let xff = format!("198.51.100.{n}");
        let forwarded = format!("for=203.0.113.{n}");
        let (status, _) = attempt(
            &app,
            "/api/v1/auth/login",
            &sign_in_guess(),
            &[("X-Forwarded-For", &xff), ("Forwarded", &forwarded)],
        )
        .await;
        statuses.push(status);
    }
    assert_ne!(statuses[0], 429);
    assert_eq!(&statuses[2..], [429, 429], "{statuses:?}");
}

/// Behind a trusted proxy, each forwarded client has its own allowance, and what a
/// client writes into the header itself (to the left of what the proxy appended) does
/// not change who it is.
#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_allowance() {
    let app = crate::helpers::spawn_sqlite_with(|s| {
        s.rate_limit_login_per_minute = 2;
        s.trusted_proxies = "127.0.0.1".parse().expect("proxies");
    })
    .await;
    let from = |headers: &'static [(&'static str, &'static str)]| {
        let app = &app;
        async move {
            attempt(app, "/api/v1/auth/login", &sign_in_guess(), headers)
                .await
                .0
        }
    };
    let client = &[("X-Forwarded-For", "198.51.100.1")];
    let allowed = from(client).await;
    assert_ne!(allowed, 429);
    assert_eq!(from(client).await, allowed);
    assert_eq!(from(client).await, 429);
    // The same client claiming to be someone else before it reached the proxy.
    assert_eq!(
        from(&[("X-Forwarded-For", "203.0.113.9, 198.51.100.1")]).await,
        429
    );
    // Another client behind the same proxy, and the proxy itself, are not held up.
    assert_eq!(from(&[("X-Forwarded-For", "198.51.100.2")]).await, allowed);
    assert_eq!(
        from(&[("Forwarded", "for=\"[2001:db8::2]:4711\"")]).await,
        allowed
    );
    assert_eq!(from(&[]).await, allowed);
}
