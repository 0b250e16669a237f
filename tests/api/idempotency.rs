//! `Idempotency-Key` under attack: retries, copies at once, compressed bodies, refusals
//! corrected under the same key, keys reused for other requests, secrets in stored
//! answers, expiry, requests that died after claiming their key or after their change,
//! and clients that hang up. The server killed for real is in [`crash`].
//!
//! A request that died is stood in for by the library calls the middleware makes
//! (`claim`, then the service under the claimed context), stopping where the process
//! would have stopped; `crash` shows the same states arise from a real SIGKILL.

mod crash;

use std::time::Duration;

use baohan::db::schema::{api_tokens, guarantees, idempotency_keys};
use baohan::services::idempotency::{self, Claimed, Policy};
use baohan::services::{Actor, Context};
use diesel::prelude::*;
use reqwest::Method;
use serde_json::{json, Value};

use crate::fixtures::library::DbConnection;
use crate::fixtures::{NewOrg, NewTender, Org, Session, TestPki};
use crate::helpers::{uscc, TestApp, TestBackend};

const KEY: &str = "Idempotency-Key";
const TOKENS: &str = "/api/v1/auth/tokens";

/// One answer, as a keyed request's caller reads it.
#[derive(Debug, Clone)]
pub struct Keyed {
    pub status: u16,
    pub replayed: bool,
    pub retry_after: Option<u64>,
    pub body: Value,
}

impl Keyed {
    pub async fn read(res: reqwest::Response) -> Keyed {
        let status = res.status().as_u16();
        let header = |name: &str| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let replayed = header("idempotent-replayed").as_deref() == Some("true");
        let retry_after = header("retry-after").and_then(|v| v.parse().ok());
        let text = res.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Keyed {
            status,
            replayed,
            retry_after,
            body,
        }
    }

    /// The error code, when the answer is an error.
    pub fn code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }

    pub fn in_progress(&self) -> bool {
        self.status == 409 && self.code() == Some("idempotency_key_in_progress")
    }
}

/// Sends a built request and reads the answer.
pub async fn send(request: reqwest::RequestBuilder) -> Keyed {
    Keyed::read(request.send().await.expect("request")).await
}

/// `POST /auth/tokens` for a token called `name`, under `key`.
fn new_token<R>(session: &Session<'_, R>, name: &str, key: &str) -> reqwest::RequestBuilder {
    session
        .request(Method::POST, TOKENS)
        .header(KEY, key)
        .json(&json!({ "name": name }))
}

/// How many API tokens are called `name`: how often their creation ran.
pub async fn tokens_named(app: &TestApp, name: &str) -> i64 {
    let name = name.to_owned();
    app.db(move |c| {
        api_tokens::table
            .filter(api_tokens::name.eq(name))
            .count()
            .get_result(c)
            .expect("count")
    })
    .await
}

/// How many guarantees an application has.
pub async fn guarantees_of(app: &TestApp, application_id: &str) -> i64 {
    let id = application_id.to_owned();
    app.db(move |c| {
        guarantees::table
            .filter(guarantees::application_id.eq(id))
            .count()
            .get_result(c)
            .expect("count")
    })
    .await
}

/// The actor behind a session, as the services see it.
async fn actor_of<R>(app: &TestApp, session: &Session<'_, R>) -> Actor {
    let (ctx, token) = (app.ctx.clone(), session.token.clone());
    tokio::task::spawn_blocking(move || baohan::services::auth::authenticate(&ctx, &token))
        .await
        .expect("task")
        .expect("a valid session")
        .0
}

/// What the middleware claims for a JSON POST of `body` to `path`.
async fn claim(app: &TestApp, actor: &Actor, key: &str, path: &str, body: &Value) -> Claimed {
    let hash = baohan::web::idempotency::fingerprint(
        "POST",
        path,
        "",
        b"application/json",
        &serde_json::to_vec(body).expect("json"),
    );
    let (ctx, actor, key) = (app.ctx.clone(), actor.clone(), key.to_owned());
    tokio::task::spawn_blocking(move || {
        idempotency::claim(&ctx, &actor, &key, &hash, Policy::default())
    })
    .await
    .expect("task")
    .expect("claim")
}

/// A request that claimed its key and is about to run (and will die): its claim.
async fn claimed(app: &TestApp, actor: &Actor, key: &str, path: &str, body: &Value) -> Context {
    match claim(app, actor, key, path, body).await {
        Claimed::Run(scope) => app.ctx.with_idempotency(Some(scope)),
        other => panic!("the key is new: {other:?}"),
    }
}

/// Retries until the answer is no longer "in progress" (a lease can hold it for a
/// moment), within `patience`.
pub async fn retry_until_settled(
    request: impl Fn() -> reqwest::RequestBuilder,
    patience: Duration,
) -> Keyed {
    let start = std::time::Instant::now();
    loop {
        let answer = send(request()).await;
        if !answer.in_progress() {
            return answer;
        }
        assert!(
            start.elapsed() < patience,
            "still in progress after {patience:?}: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// The rules the first version had, moved here from `security`.
async fn a_retried_request_with_the_same_key_changes_nothing_twice(app: TestApp) {
    let operator = app.as_operator().await;
    let create = |org: &NewOrg, key: &str| operator.register_org(org).header(KEY, key);
    let org = NewOrg::new(
        "enterprise",
        "滨州重试建设有限公司",
        &uscc("91371600MA3CQ0777"),
    );
    let first = create(&org, "create-org-1").response().await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.expect("json");
    let second = create(&org, "create-org-1").response().await;
    assert_eq!(second.status(), 201, "the first answer again, not a 409");
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(
        second.headers()["x-content-type-options"],
        "nosniff",
        "an answer given again has the security headers too"
    );
    let second: Value = second.json().await.expect("json");
    assert_eq!(first, second);
    let created: Org = serde_json::from_value(first).expect("an organization");
    assert_eq!(created.uscc, org.uscc);
    let orgs = operator.organizations().await;
    let count = orgs.iter().filter(|o| o.uscc == org.uscc).count();
    assert_eq!(count, 1, "created once");

    // The same key for another request is refused; a bad key is refused.
    let other = NewOrg::new("enterprise", "Other", &uscc("91371600MA3CQ0778"));
    let error = create(&other, "create-org-1")
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some(KEY));
    create(&org, "").fails(400, "bad_request").await;
    create(&org, &"k".repeat(201))
        .fails(400, "bad_request")
        .await;

    // A lifecycle step retried: approving twice with one key answers 200 both times
    // and leaves one audit entry, where a plain second approve is a 409.
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-IDEM", 2))
        .await;
    let bank = app.as_issuer("bank").await;
    let application = app
        .as_enterprise("enterprise1")
        .await
        .apply(&tender.sections[0], &bank)
        .await;
    for _ in 0..2 {
        let approved = bank
            .approve(&application, "500.00")
            .header(KEY, "approve-once")
            .await;
        assert_eq!(approved.status, "approved");
    }
    let approvals = app.audited("approve").await;
    let approvals = approvals.iter().filter(|id| **id == application.id);
    assert_eq!(approvals.count(), 1, "approved once");
    bank.approve(&application, "500.00")
        .fails(409, "invalid_transition")
        .await;
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// HTTP's `deflate` is the zlib format.
fn deflate(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("deflate");
    encoder.finish().expect("deflate")
}

/// A compressed body is read once, decoded: the request runs, is replayed, and is the
/// same request as its uncompressed twin.
async fn compressed_bodies_with_a_key_run_once_and_replay(app: TestApp) {
    let operator = app.as_operator().await;
    for (encoding, compress) in [("gzip", gzip as fn(&[u8]) -> Vec<u8>), ("deflate", deflate)] {
        let name = format!("compressed {encoding}");
        let key = format!("compressed-{encoding}");
        let body = serde_json::to_vec(&json!({ "name": name })).expect("json");
        let post = |bytes: Vec<u8>, encoding: Option<&str>| {
            let request = operator
                .request(Method::POST, TOKENS)
                .header(KEY, &key)
                .header("content-type", "application/json")
                .body(bytes);
            match encoding {
                Some(encoding) => request.header("content-encoding", encoding),
                None => request,
            }
        };
        let first = send(post(compress(&body), Some(encoding))).await;
        assert_eq!(first.status, 201, "{encoding}: {first:?}");
        assert!(!first.replayed);
        assert_eq!(first.body["name"], name.as_str());
        let again = send(post(compress(&body), Some(encoding))).await;
        assert_eq!((again.status, again.replayed), (201, true), "{again:?}");
        assert_eq!(again.body, first.body);
        let plain = send(post(body.clone(), None)).await;
        assert_eq!(
            (plain.status, plain.replayed),
            (201, true),
            "the decoded body is the request: {plain:?}"
        );
        assert_eq!(plain.body, first.body);
        assert_eq!(tokens_named(&app, &name).await, 1, "{encoding}: made once");
    }
    // A body that is not what its encoding says, or that decodes to more than the
    // limit (a small bomb), is refused in the JSON shape and claims nothing: the key is
    // free for a good body.
    let limit = app.settings.max_body_bytes;
    let bomb = gzip(&vec![b' '; limit + 1]);
    assert!(bomb.len() < limit / 10, "a small body");
    for (what, bytes, status, code) in [
        ("garbage", b"not gzip at all".to_vec(), 400, "bad_request"),
        ("a bomb", bomb, 413, "payload_too_large"),
    ] {
        let refused = send(
            operator
                .request(Method::POST, TOKENS)
                .header(KEY, "bad-encoding")
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .body(bytes),
        )
        .await;
        assert_eq!(refused.status, status, "{what}: {refused:?}");
        assert_eq!(refused.code(), Some(code), "{what}");
    }
    let good = send(new_token(&operator, "after a bad encoding", "bad-encoding")).await;
    assert_eq!((good.status, good.replayed), (201, false), "{good:?}");

    // Without a key, a compressed body works as well (the extractor decodes it).
    let res = operator
        .request(Method::POST, TOKENS)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gzip(br#"{"name":"compressed without a key"}"#))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 201);
}

/// Only a request that changed something keeps its answer: after a 415, a 400 or a 422
/// the key is free, and the corrected request runs under it.
async fn a_refused_request_frees_its_key_for_the_corrected_one(app: TestApp) {
    let operator = app.as_operator().await;
    let wrong_type = operator
        .request(Method::POST, TOKENS)
        .header(KEY, "fix-the-type")
        .header("content-type", "text/plain")
        .body(r#"{"name":"typed"}"#);
    let refused = send(wrong_type).await;
    assert_eq!(refused.status, 415, "{refused:?}");
    assert!(!refused.replayed);
    let fixed = send(new_token(&operator, "typed", "fix-the-type")).await;
    assert_eq!((fixed.status, fixed.replayed), (201, false), "{fixed:?}");
    let again = send(new_token(&operator, "typed", "fix-the-type")).await;
    assert_eq!((again.status, again.replayed), (201, true));
    assert_eq!(again.body, fixed.body);

    let malformed = operator
        .request(Method::POST, TOKENS)
        .header(KEY, "fix-the-json")
        .header("content-type", "application/json")
        .body("{\"name\": ");
    assert_eq!(send(malformed).await.code(), Some("invalid_json"));
    let fixed = send(new_token(&operator, "parsed", "fix-the-json")).await;
    assert_eq!((fixed.status, fixed.replayed), (201, false), "{fixed:?}");

    let invalid = send(new_token(&operator, "", "fix-the-name")).await;
    assert_eq!(invalid.status, 422);
    assert_eq!(invalid.body["error"]["details"]["field"], "name");
    let fixed = send(new_token(&operator, "named", "fix-the-name")).await;
    assert_eq!((fixed.status, fixed.replayed), (201, false), "{fixed:?}");

    for name in ["typed", "parsed", "named"] {
        assert_eq!(tokens_named(&app, name).await, 1, "{name}");
    }
}

/// While a key lives, it stands for one request: another method, path, query, content
/// type or body under it is refused before anything runs. The same request spelt with a
/// percent escape is the same request.
async fn the_same_key_for_another_request_is_refused(app: TestApp) {
    let operator = app.as_operator().await;
    let first = send(new_token(&operator, "one", "one-request")).await;
    assert_eq!(first.status, 201);
    let refused = |answer: Keyed, what: &str| {
        assert_eq!(answer.status, 422, "{what}: {answer:?}");
        assert_eq!(answer.body["error"]["details"]["field"], KEY, "{what}");
    };
    refused(
        send(new_token(&operator, "two", "one-request")).await,
        "another body",
    );
    refused(
        send(
            operator
                .request(Method::POST, TOKENS)
                .header(KEY, "one-request")
                .header("content-type", "application/json; charset=utf-8")
                .body(r#"{"name":"one"}"#),
        )
        .await,
        "another content type",
    );
    refused(
        send(
            operator
                .request(Method::POST, &format!("{TOKENS}?again=1"))
                .header(KEY, "one-request")
                .json(&json!({ "name": "one" })),
        )
        .await,
        "another query",
    );
    // Signing out under the token request's key does not sign out.
    refused(
        send(
            operator
                .request(Method::POST, "/api/v1/auth/logout")
                .header(KEY, "one-request")
                .json(&json!({ "name": "one" })),
        )
        .await,
        "another path",
    );
    operator.me().await;
    let escaped = send(
        operator
            .request(Method::POST, "/api/v1/auth/%74okens")
            .header(KEY, "one-request")
            .json(&json!({ "name": "one" })),
    )
    .await;
    assert_eq!(
        (escaped.status, escaped.replayed),
        (201, true),
        "{escaped:?}"
    );
    assert_eq!(escaped.body, first.body);
    assert_eq!(tokens_named(&app, "one").await, 1);
    assert_eq!(tokens_named(&app, "two").await, 0);

    // Keys are per user: another user's same key is another request.
    let agency = app.as_agency().await;
    let theirs = send(new_token(&agency, "theirs", "one-request")).await;
    assert_eq!((theirs.status, theirs.replayed), (201, false), "{theirs:?}");
}

/// PATCH and DELETE honour a key like POST.
async fn patch_and_delete_with_a_key_replay_and_change_once(app: TestApp) {
    let agency = app.as_agency().await;
    let tender = agency
        .create_project(&NewTender::two_sections("BZ-PATCH", 5))
        .await;
    let path = format!("/api/v1/projects/{}", tender.id);
    let rename = |name: &str, key: Option<&str>| {
        let request = agency
            .request(Method::PATCH, &path)
            .json(&json!({ "name": name }));
        match key {
            Some(key) => request.header(KEY, key),
            None => request,
        }
    };
    let updates = || async {
        let audited = app.audited("update_project").await;
        audited.iter().filter(|id| **id == tender.id).count()
    };
    let first = send(rename("疏港路改建工程（更名）", Some("rename-once"))).await;
    assert_eq!((first.status, first.replayed), (200, false), "{first:?}");
    let again = send(rename("疏港路改建工程（更名）", Some("rename-once"))).await;
    assert_eq!((again.status, again.replayed), (200, true), "{again:?}");
    assert_eq!(again.body, first.body);
    assert_eq!(updates().await, 1, "renamed once");
    // Without the key the same PATCH runs again: the count above is not blind.
    let unkeyed = send(rename("疏港路改建工程（更名）", None)).await;
    assert_eq!(unkeyed.status, 200);
    assert_eq!(updates().await, 2);

    let operator = app.as_operator().await;
    let made = send(new_token(&operator, "to revoke", "made-to-revoke")).await;
    let id = made.body["id"].as_str().expect("token id").to_owned();
    let revoke = || {
        operator
            .request(Method::DELETE, &format!("{TOKENS}/{id}"))
            .header(KEY, "revoke-once")
    };
    let first = send(revoke()).await;
    assert_eq!((first.status, first.replayed), (204, false), "{first:?}");
    let again = send(revoke()).await;
    assert_eq!((again.status, again.replayed), (204, true), "{again:?}");
    let revocations = app.audited("revoke_api_token").await;
    assert_eq!(revocations, vec![id.clone()], "revoked once");
    let unkeyed = operator
        .request(Method::DELETE, &format!("{TOKENS}/{id}"))
        .send()
        .await
        .expect("request");
    assert_eq!(unkeyed.status(), 204);
    assert_eq!(app.audited("revoke_api_token").await.len(), 2);
}

/// Thirty copies of one request with one key, at once: one runs, the others wait or
/// get its answer, and the change happens once.
async fn thirty_copies_with_one_key_change_once(app: TestApp) {
    let operator = app.as_operator().await;
    let copies: Vec<_> = (0..30)
        .map(|_| {
            let request = new_token(&operator, "thirty at once", "thirty-at-once");
            tokio::spawn(async move { send(request).await })
        })
        .collect();
    let mut answers = Vec::new();
    for copy in copies {
        answers.push(copy.await.expect("task"));
    }
    let ran: Vec<_> = answers
        .iter()
        .filter(|a| a.status == 201 && !a.replayed)
        .collect();
    assert_eq!(ran.len(), 1, "one copy ran: {answers:#?}");
    for answer in &answers {
        match answer.status {
            201 => assert_eq!(answer.body, ran[0].body, "the same answer"),
            409 => {
                assert!(answer.in_progress(), "{answer:?}");
                assert!(answer.retry_after.is_some_and(|s| (1..=60).contains(&s)));
            }
            _ => panic!("unexpected {answer:?}"),
        }
    }
    assert_eq!(tokens_named(&app, "thirty at once").await, 1);
    let last = send(new_token(&operator, "thirty at once", "thirty-at-once")).await;
    assert_eq!((last.status, last.replayed), (201, true));
    assert_eq!(last.body, ran[0].body);
}

/// A stored answer holding a secret (a new API token) keeps it sealed: the table has
/// no trace of it in clear, and a retry still gets it.
async fn a_stored_answer_keeps_no_secret_in_clear(app: TestApp) {
    let operator = app.as_operator().await;
    let made = send(new_token(&operator, "sealed", "sealed-answer")).await;
    assert_eq!(made.status, 201);
    let secret = made.body["token"].as_str().expect("token").to_owned();
    assert!(secret.len() > 20);
    type Row = (
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<Vec<u8>>,
    );
    let rows: Vec<Row> = app
        .db(|c| {
            idempotency_keys::table
                .select((
                    idempotency_keys::user_id,
                    idempotency_keys::idempotency_key,
                    idempotency_keys::request_hash,
                    idempotency_keys::attempt,
                    idempotency_keys::entity_kind,
                    idempotency_keys::entity_id,
                    idempotency_keys::entity_action,
                    idempotency_keys::response_content_type,
                    idempotency_keys::response_sealed,
                ))
                .load(c)
                .expect("rows")
        })
        .await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.4.as_deref(), Some("api_token"), "what it changed");
    let mut stored: Vec<u8> = [&row.0, &row.1, &row.2, &row.3]
        .iter()
        .flat_map(|s| s.as_bytes().to_vec())
        .collect();
    for text in [&row.4, &row.5, &row.6, &row.7].into_iter().flatten() {
        stored.extend_from_slice(text.as_bytes());
    }
    let sealed = row.8.clone().expect("an answer is stored");
    stored.extend_from_slice(&sealed);
    let contains = |needle: &[u8]| stored.windows(needle.len()).any(|w| w == needle);
    assert!(!contains(secret.as_bytes()), "the token in clear");
    assert!(!contains(&secret.as_bytes()[4..20]), "a part of the token");
    assert!(!contains(b"\"token\""), "the answer in clear");
    let again = send(new_token(&operator, "sealed", "sealed-answer")).await;
    assert_eq!((again.status, again.replayed), (201, true));
    assert_eq!(again.body["token"], secret.as_str(), "opened for the retry");
}

/// Keys live a day (the default): within it a key stays bound to its request; after it
/// the key is new again, and the upkeep forgets it.
async fn keys_expire_after_a_day_and_are_pruned(app: TestApp) {
    let operator = app.as_operator().await;
    assert_eq!(
        send(new_token(&operator, "day one", "a-day-long"))
            .await
            .status,
        201
    );
    app.advance_clock(chrono::Duration::hours(23));
    // (Sessions last 12 hours: the same user signs in again.)
    let operator = app.as_operator().await;
    assert_eq!(
        send(new_token(&operator, "day two", "a-day-long"))
            .await
            .status,
        422,
        "still bound within the day"
    );
    app.advance_clock(chrono::Duration::hours(2));
    let operator = app.as_operator().await;
    let renewed = send(new_token(&operator, "day two", "a-day-long")).await;
    assert_eq!(
        (renewed.status, renewed.replayed),
        (201, false),
        "{renewed:?}"
    );
    assert_eq!(tokens_named(&app, "day two").await, 1);
    assert_eq!(
        send(new_token(&operator, "another", "made-later"))
            .await
            .status,
        201
    );
    let keys = || {
        app.db(|c| {
            idempotency_keys::table
                .count()
                .get_result::<i64>(c)
                .expect("count")
        })
    };
    let prune = || {
        let ctx = app.ctx.clone();
        async move {
            tokio::task::spawn_blocking(move || idempotency::prune_expired(&ctx))
                .await
                .expect("task")
                .expect("prune")
        }
    };
    assert_eq!(prune().await, 0, "nothing expired yet");
    assert_eq!(keys().await, 2);
    app.advance_clock(chrono::Duration::hours(25));
    assert_eq!(prune().await, 2);
    assert_eq!(keys().await, 0);
}

/// A request that claimed its key and died before its change committed: a copy is told
/// to wait while the claim's lease lasts, then runs the request; the dead run, should
/// it wake, cannot commit its change any more.
async fn a_claim_that_died_before_its_change_is_run_again_after_its_lease(app: TestApp) {
    let operator = app.as_operator().await;
    let actor = actor_of(&app, &operator).await;
    let body = json!({ "name": "revived" });
    let dead = claimed(&app, &actor, "died-early", TOKENS, &body).await;

    let waiting = send(new_token(&operator, "revived", "died-early")).await;
    assert!(waiting.in_progress(), "{waiting:?}");
    assert!(waiting.retry_after.is_some_and(|s| (1..=60).contains(&s)));
    assert_eq!(tokens_named(&app, "revived").await, 0);

    app.advance_clock(chrono::Duration::seconds(61));
    let ran = send(new_token(&operator, "revived", "died-early")).await;
    assert_eq!((ran.status, ran.replayed), (201, false), "{ran:?}");
    assert_eq!(tokens_named(&app, "revived").await, 1);

    let late = tokio::task::spawn_blocking(move || {
        baohan::services::auth::create_api_token(
            &dead,
            &actor,
            &interactive(),
            token_request("revived"),
        )
    })
    .await
    .expect("task");
    assert!(
        matches!(late, Err(baohan::services::ServiceError::Conflict(_))),
        "the dead run's change rolls back: {late:?}"
    );
    assert_eq!(tokens_named(&app, "revived").await, 1, "made once");
    let again = send(new_token(&operator, "revived", "died-early")).await;
    assert_eq!((again.status, again.replayed), (201, true));
    assert_eq!(again.body, ran.body);
}

/// The bank (with its hosted key) and a paid application of the bank's.
async fn paid_bank_application<'a>(
    app: &'a TestApp,
    code: &str,
) -> (Session<'a, crate::fixtures::Anyone>, String) {
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections(code, 3))
        .await;
    let application = app
        .paid_application("enterprise1", "bank", &tender.sections[0])
        .await;
    (app.as_demo("bank").await, application.id)
}

/// A request whose change committed but whose answer was never stored is never run
/// again. Its lease first keeps copies waiting; then an issue's answer is made again,
/// verification code and all, and any other request is told the answer is lost and
/// what it changed.
async fn a_change_whose_answer_was_lost_is_never_run_again(app: TestApp) {
    let operator = app.as_operator().await;
    let actor = actor_of(&app, &operator).await;
    let body = json!({ "name": "answer lost" });
    let dead = claimed(&app, &actor, "lost-token", TOKENS, &body).await;
    let made = {
        let actor = actor.clone();
        tokio::task::spawn_blocking(move || {
            baohan::services::auth::create_api_token(
                &dead,
                &actor,
                &interactive(),
                token_request("answer lost"),
            )
        })
        .await
        .expect("task")
        .expect("the change commits")
    };
    // ... and the process died before the answer was stored.
    let waiting = send(new_token(&operator, "answer lost", "lost-token")).await;
    assert!(waiting.in_progress(), "{waiting:?}");
    app.advance_clock(chrono::Duration::seconds(61));
    let lost = send(new_token(&operator, "answer lost", "lost-token")).await;
    assert_eq!(lost.status, 409, "{lost:?}");
    assert_eq!(lost.code(), Some("idempotent_answer_lost"));
    let details = &lost.body["error"]["details"];
    assert_eq!(details["entity_kind"], "api_token");
    assert_eq!(details["entity_id"], made.0.id.as_str());
    assert_eq!(details["action"], "create_api_token");
    assert_eq!(
        tokens_named(&app, "answer lost").await,
        1,
        "never run twice"
    );

    // An issue: the answer holds the verification code, shown once; it is made again.
    let _pki = TestPki::set_up(&app).await;
    let (bank, application) = paid_bank_application(&app, "BZ-LOST").await;
    let bank_actor = actor_of(&app, &bank).await;
    let path = format!("/api/v1/applications/{application}/issue");
    let dead = claimed(&app, &bank_actor, "lost-issue", &path, &json!({})).await;
    let issued = {
        let (actor, id) = (bank_actor.clone(), application.clone());
        tokio::task::spawn_blocking(move || {
            baohan::services::guarantees::issue_hosted(&dead, &actor, &id)
        })
        .await
        .expect("task")
        .expect("issued")
    };
    app.advance_clock(chrono::Duration::seconds(61));
    let issue = || {
        bank.request(Method::POST, &path)
            .header(KEY, "lost-issue")
            .json(&json!({}))
    };
    let rebuilt = send(issue()).await;
    assert_eq!(
        (rebuilt.status, rebuilt.replayed),
        (201, true),
        "{rebuilt:?}"
    );
    assert_eq!(
        rebuilt.body["verification_code"],
        issued.verification_code.as_str()
    );
    assert_eq!(
        rebuilt.body["guarantee"]["number"],
        issued.view.guarantee.number.as_str()
    );
    let again = send(issue()).await;
    assert_eq!((again.status, again.replayed), (201, true));
    assert_eq!(again.body, rebuilt.body, "stored once rebuilt");
    assert_eq!(guarantees_of(&app, &application).await, 1);
    // The code opens the public verification.
    let report = app
        .verify(&issued.view.guarantee.number, &issued.verification_code)
        .await;
    assert_eq!(report.indication, "PASSED", "{report:?}");
}

/// Holds the head of the audit chain, which every change appends to, until told: the
/// requests that change something wait behind it.
fn hold_every_change(
    pool: baohan::db::DbPool,
) -> (
    std::sync::mpsc::Sender<()>,
    tokio::task::JoinHandle<()>,
    tokio::sync::oneshot::Receiver<()>,
) {
    use diesel::connection::SimpleConnection;
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (held, is_held) = tokio::sync::oneshot::channel();
    let holder = tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().expect("connection");
        let begin = match &*conn {
            DbConnection::Sqlite(_) => "BEGIN IMMEDIATE",
            DbConnection::Pg(_) => "BEGIN",
        };
        conn.batch_execute(&format!(
            "{begin}; UPDATE audit_head SET last_seq = last_seq WHERE id = 1"
        ))
        .expect("hold the audit head");
        let _ = held.send(());
        let _ = released.recv();
        conn.batch_execute("ROLLBACK").expect("let go");
    });
    (release, holder, is_held)
}

/// Forty clients send a keyed request and hang up while it runs: each request still
/// runs to its end and keeps its answer, which the retry gets at once.
async fn a_client_that_hangs_up_gets_its_answer_on_retry(backend: TestBackend) {
    use tokio::io::AsyncWriteExt;
    const CLIENTS: usize = 40;
    // On SQLite a claim waiting for the held lock holds a pooled connection: enough of
    // them that most requests get as far as their claim before their clients go. (On
    // PostgreSQL claims do not wait; the default pool does.)
    let app = backend
        .spawn_with(move |s| {
            if backend == TestBackend::Sqlite {
                s.database_pool_size = CLIENTS as u32 + 4;
            }
        })
        .await;
    let operator = app.as_operator().await;
    let (release, holder, held) = hold_every_change(app.pool.clone());
    held.await.expect("held");
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut sockets = Vec::new();
    for i in 0..CLIENTS {
        let body = json!({ "name": format!("hung up {i}") }).to_string();
        let request = format!(
            "POST {TOKENS} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
             {KEY}: hang-up-{i}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            operator.token,
            body.len()
        );
        let mut socket = tokio::net::TcpStream::connect(&address)
            .await
            .expect("connect");
        socket.write_all(request.as_bytes()).await.expect("send");
        sockets.push(socket);
    }
    // The server has read them and waits behind the held change; now every client
    // goes away at once, abruptly (a reset, not a polite close). (A second leaves a
    // loaded machine time to read and sign in most of them; the held change waits
    // well within the database's lock timeout.)
    tokio::time::sleep(Duration::from_millis(1000)).await;
    for socket in sockets {
        socket.set_zero_linger().expect("linger");
        drop(socket);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    release.send(()).expect("release");
    holder.await.expect("holder");
    // Each request that claimed its key finishes on its own, its client long gone, and
    // keeps its answer. (A request still waiting to be read or signed in when its
    // client went claimed nothing: its retry simply runs.) Wait until the claims stop
    // coming and every one is answered.
    let keys = || {
        app.db(|c| {
            idempotency_keys::table
                .filter(idempotency_keys::idempotency_key.like("hang-up-%"))
                .select(idempotency_keys::response_status.is_not_null())
                .load::<bool>(c)
                .expect("keys")
        })
    };
    let started = std::time::Instant::now();
    let mut last = (usize::MAX, 0);
    let claimed = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let rows = keys().await;
        let now = (rows.len(), rows.iter().filter(|kept| **kept).count());
        if now == last && now.0 == now.1 {
            break now.0;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "claimed keys still without an answer: {now:?} (claimed, kept)"
        );
        last = now;
    };
    assert!(
        claimed >= CLIENTS / 8,
        "requests were claimed before their clients went: {claimed}"
    );

    let mut replayed = 0;
    for i in 0..CLIENTS {
        let name = format!("hung up {i}");
        let key = format!("hang-up-{i}");
        let answer = retry_until_settled(
            || new_token(&operator, &name, &key),
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(answer.status, 201, "{key}: {answer:?}");
        replayed += usize::from(answer.replayed);
        assert_eq!(tokens_named(&app, &name).await, 1, "{key}: made once");
    }
    assert_eq!(replayed, claimed, "every kept answer is given to its retry");
}

crate::on_both_backends!(
    a_retried_request_with_the_same_key_changes_nothing_twice,
    compressed_bodies_with_a_key_run_once_and_replay,
    a_refused_request_frees_its_key_for_the_corrected_one,
    the_same_key_for_another_request_is_refused,
    patch_and_delete_with_a_key_replay_and_change_once,
    thirty_copies_with_one_key_change_once,
    a_stored_answer_keeps_no_secret_in_clear,
    keys_expire_after_a_day_and_are_pruned,
    a_claim_that_died_before_its_change_is_run_again_after_its_lease,
    a_change_whose_answer_was_lost_is_never_run_again,
);

mod configured {
    use super::*;

    crate::on_both_backends!(configured: a_client_that_hangs_up_gets_its_answer_on_retry);
}

/// The credential of a signed-in session, as the services want it to make a token.
fn interactive() -> baohan::services::auth::Credential {
    baohan::services::auth::Credential::Session {
        id: "a session".into(),
        csrf_token: "its CSRF token".into(),
    }
}

/// A request for an API token with the default lifetime.
fn token_request(name: &str) -> baohan::services::auth::NewApiToken {
    baohan::services::auth::NewApiToken {
        name: name.into(),
        expires_in_days: None,
        max_days: 365,
    }
}
