//! The real `baohan serve`, as a child process on the test's database and data
//! directory, killed while keyed requests run: with SIGKILL at varied moments, and
//! (deterministically) by its crash hook at the two moments that matter, just after a
//! key is claimed and just after a change committed. After a restart every key ends
//! answered, each change happened at most once, and every issue's answer, with its
//! verification code, is given by its key.

use std::time::{Duration, Instant};

use baohan::db::schema::{api_tokens, claims, guarantees, idempotency_keys};
use diesel::prelude::*;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{guarantees_of, send, tokens_named, Keyed};
use crate::fixtures::server::{ServeOptions, ServeProcess, IDEMPOTENCY_LEASE_SECONDS};
use crate::fixtures::{NewClaim, NewTender, TestPki};
use crate::helpers::TestApp;

/// One keyed request someone retries until it is answered.
#[derive(Clone)]
struct Retried {
    key: String,
    token: String,
    path: String,
    body: Value,
}

impl Retried {
    fn request(&self, app: &TestApp, server: &ServeProcess) -> reqwest::RequestBuilder {
        app.api
            .request(Method::POST, server.url(&self.path))
            .bearer_auth(&self.token)
            .header("Idempotency-Key", &self.key)
            .json(&self.body)
    }

    /// Sends it; `None` when the server died under it.
    async fn try_send(&self, app: &TestApp, server: &ServeProcess) -> Option<Keyed> {
        let res = self.request(app, server).send().await.ok()?;
        Some(Keyed::read(res).await)
    }

    /// Retries until it is settled. "In progress" is allowed only while a dead run's
    /// lease can last.
    async fn settle(&self, app: &TestApp, server: &ServeProcess) -> Keyed {
        let started = Instant::now();
        loop {
            let answer = send(self.request(app, server)).await;
            if !answer.in_progress() {
                return answer;
            }
            assert!(
                started.elapsed() < Duration::from_secs(IDEMPOTENCY_LEASE_SECONDS + 4),
                "{}: still in progress after the lease: {answer:?}",
                self.key
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Paid applications of the bank's, `count` of them, for enterprise1 and enterprise2 on
/// new tenders.
async fn paid_applications(app: &TestApp, prefix: &str, count: usize) -> Vec<String> {
    // The bank's hosted key, its CA trusted; the child server reads both from the
    // database.
    TestPki::set_up(app).await;
    let agency = app.as_agency().await;
    let mut ids = Vec::new();
    for t in 0..count.div_ceil(2) {
        let tender = agency
            .create_project(&NewTender::two_sections(&format!("{prefix}-{t}"), 3))
            .await;
        for (enterprise, section) in [("enterprise1", 0), ("enterprise2", 1)] {
            if ids.len() < count {
                let application = app
                    .paid_application(enterprise, "bank", &tender.sections[section])
                    .await;
                ids.push(application.id);
            }
        }
    }
    ids
}

/// The verification code an issue answered is the guarantee's (its stored hash).
async fn assert_code_is_the_guarantees(app: &TestApp, application: &str, answer: &Keyed) {
    let code = answer.body["verification_code"]
        .as_str()
        .unwrap_or_else(|| panic!("an issue's answer has its code: {answer:?}"))
        .to_owned();
    let number = answer.body["guarantee"]["number"]
        .as_str()
        .expect("number")
        .to_owned();
    let id = application.to_owned();
    let (stored_number, hash): (String, String) = app
        .db(move |c| {
            guarantees::table
                .filter(guarantees::application_id.eq(id))
                .select((guarantees::number, guarantees::verification_code_hash))
                .first(c)
                .expect("the guarantee")
        })
        .await;
    assert_eq!(number, stored_number);
    assert_eq!(
        hex::encode(Sha256::digest(code.as_bytes())),
        hash,
        "the code"
    );
}

/// What a key's row says: (changed, answer stored).
async fn key_state(app: &TestApp, key: &str) -> Option<(bool, bool)> {
    let key = key.to_owned();
    app.db(move |c| {
        idempotency_keys::table
            .filter(idempotency_keys::idempotency_key.eq(key))
            .select((
                idempotency_keys::changed,
                idempotency_keys::response_status.is_not_null(),
            ))
            .first(c)
            .optional()
            .expect("key row")
    })
    .await
}

/// The keys starting with `prefix` and their states: 0 claimed with nothing changed,
/// 1 changed without an answer, 2 answered.
async fn key_states(app: &TestApp, prefix: &str) -> Vec<(String, usize)> {
    let pattern = format!("{prefix}%");
    let rows: Vec<(String, bool, bool)> = app
        .db(move |c| {
            idempotency_keys::table
                .filter(idempotency_keys::idempotency_key.like(pattern))
                .select((
                    idempotency_keys::idempotency_key,
                    idempotency_keys::changed,
                    idempotency_keys::response_status.is_not_null(),
                ))
                .load(c)
                .expect("key rows")
        })
        .await;
    rows.into_iter()
        .map(|(key, changed, answered)| {
            let state = match (changed, answered) {
                (false, _) => 0,
                (true, false) => 1,
                (true, true) => 2,
            };
            (key, state)
        })
        .collect()
}

/// Killed just after claiming the key, before anything changed: a retry waits out the
/// lease, then runs the request once.
async fn a_crash_after_the_claim_runs_the_request_again(app: TestApp) {
    let application = paid_applications(&app, "BZ-CLAIM", 1).await.remove(0);
    let bank = app.as_issuer("bank").await;
    let issue = Retried {
        key: "crash-after-claim".into(),
        token: bank.token.clone(),
        path: format!("/api/v1/applications/{application}/issue"),
        body: json!({}),
    };
    let server = ServeProcess::start(&app, &ServeOptions::new().crash_at("after_claim")).await;
    assert!(issue.try_send(&app, &server).await.is_none(), "no answer");
    server.died().await;
    assert_eq!(key_state(&app, &issue.key).await, Some((false, false)));
    assert_eq!(guarantees_of(&app, &application).await, 0);

    let server = ServeProcess::start(&app, &ServeOptions::new()).await;
    let answer = issue.settle(&app, &server).await;
    assert_eq!((answer.status, answer.replayed), (201, false), "{answer:?}");
    assert_code_is_the_guarantees(&app, &application, &answer).await;
    let again = issue.settle(&app, &server).await;
    assert_eq!((again.status, again.replayed), (201, true));
    assert_eq!(again.body, answer.body);
    assert_eq!(guarantees_of(&app, &application).await, 1);
    server.kill();
}

/// Killed just after the change committed, before its answer was stored: the request
/// never runs again; an issue's answer is made again with its verification code, a
/// token's is lost and the retry is told which token was made.
async fn a_crash_after_the_change_never_runs_it_again(app: TestApp) {
    let application = paid_applications(&app, "BZ-CHANGE", 1).await.remove(0);
    let bank = app.as_issuer("bank").await;
    let issue = Retried {
        key: "crash-after-change".into(),
        token: bank.token.clone(),
        path: format!("/api/v1/applications/{application}/issue"),
        body: json!({}),
    };
    let server = ServeProcess::start(&app, &ServeOptions::new().crash_at("after_change")).await;
    assert!(issue.try_send(&app, &server).await.is_none(), "no answer");
    server.died().await;
    assert_eq!(key_state(&app, &issue.key).await, Some((true, false)));
    assert_eq!(guarantees_of(&app, &application).await, 1, "issued");

    let operator = app.as_operator().await;
    let token = Retried {
        key: "token-crash-after-change".into(),
        token: operator.token.clone(),
        path: "/api/v1/auth/tokens".into(),
        body: json!({ "name": "made before the crash" }),
    };
    let server = ServeProcess::start(&app, &ServeOptions::new().crash_at("after_change")).await;
    assert!(token.try_send(&app, &server).await.is_none(), "no answer");
    server.died().await;
    assert_eq!(tokens_named(&app, "made before the crash").await, 1);

    let server = ServeProcess::start(&app, &ServeOptions::new()).await;
    let answer = issue.settle(&app, &server).await;
    assert_eq!((answer.status, answer.replayed), (201, true), "{answer:?}");
    assert_code_is_the_guarantees(&app, &application, &answer).await;
    let again = issue.settle(&app, &server).await;
    assert_eq!(again.body, answer.body);
    assert_eq!(guarantees_of(&app, &application).await, 1, "issued once");

    let lost = token.settle(&app, &server).await;
    assert_eq!(lost.status, 409, "{lost:?}");
    assert_eq!(lost.code(), Some("idempotent_answer_lost"));
    let made: String = app
        .db(|c| {
            api_tokens::table
                .filter(api_tokens::name.eq("made before the crash"))
                .select(api_tokens::id)
                .first(c)
                .expect("token")
        })
        .await;
    assert_eq!(lost.body["error"]["details"]["entity_kind"], "api_token");
    assert_eq!(lost.body["error"]["details"]["entity_id"], made.as_str());
    assert_eq!(tokens_named(&app, "made before the crash").await, 1);
    server.kill();
}

/// Killed just after a claim was filed, before its answer was stored: the retry is
/// told the answer is lost and which claim was filed (it named the guarantee, which
/// left the agency without the claim's id to follow it up).
async fn a_claim_whose_answer_was_lost_is_named_on_retry(app: TestApp) {
    TestPki::set_up(&app).await;
    let deadline = chrono::Utc::now() + chrono::Duration::seconds(3);
    let mut tender = NewTender::two_sections("BZ-CLAIM-LOST", 3);
    tender.bid_deadline = deadline.to_rfc3339();
    tender.bid_opening_at = deadline.to_rfc3339();
    let tender = app.as_agency().await.create_project(&tender).await;
    let bond = app.issued_bond("enterprise1", &tender.sections[0]).await;
    // A demand is made within validity, which starts at the deadline.
    while chrono::Utc::now() <= deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let claim = Retried {
        key: "claim-crash-after-change".into(),
        token: app.as_agency().await.token,
        path: format!("/api/v1/guarantees/{}/claims", bond.number),
        body: serde_json::to_value(NewClaim::new(
            "withdrew_after_deadline",
            "开标后撤回投标文件",
            "1000.00",
        ))
        .expect("claim"),
    };
    let server = ServeProcess::start(&app, &ServeOptions::new().crash_at("after_change")).await;
    assert!(claim.try_send(&app, &server).await.is_none(), "no answer");
    server.died().await;

    let server = ServeProcess::start(&app, &ServeOptions::new()).await;
    let lost = claim.settle(&app, &server).await;
    assert_eq!(lost.code(), Some("idempotent_answer_lost"), "{lost:?}");
    let number = bond.number.clone();
    let filed: Vec<String> = app
        .db(move |c| {
            claims::table
                .inner_join(guarantees::table)
                .filter(guarantees::number.eq(number))
                .select(claims::id)
                .load(c)
                .expect("claims")
        })
        .await;
    assert_eq!(filed.len(), 1, "filed once");
    let details = &lost.body["error"]["details"];
    assert_eq!(details["entity_kind"], "claim", "{lost:?}");
    assert_eq!(details["entity_id"], filed[0].as_str());
    server.kill();
}

/// Keyed issues and token requests in flight, the server SIGKILLed at varied moments,
/// restarted, and the requests retried: every key ends answered, each application has
/// one guarantee and each token was made once, and every issue's answer carries the
/// guarantee's verification code.
async fn killed_at_random_moments_every_key_ends_answered_and_changed_once(app: TestApp) {
    const ISSUES: usize = 8;
    const TOKENS: usize = 8;
    let applications = paid_applications(&app, "BZ-KILL", ISSUES).await;
    let bank = app.as_issuer("bank").await;
    let operator = app.as_operator().await;
    let mut requests: Vec<Retried> = applications
        .iter()
        .map(|id| Retried {
            key: format!("kill-issue-{id}"),
            token: bank.token.clone(),
            path: format!("/api/v1/applications/{id}/issue"),
            body: json!({}),
        })
        .collect();
    requests.extend((0..TOKENS).map(|i| Retried {
        key: format!("kill-token-{i}"),
        token: operator.token.clone(),
        path: "/api/v1/auth/tokens".into(),
        body: json!({ "name": format!("kill token {i}") }),
    }));
    // The first answer each key got before its server died, if any.
    let mut first: Vec<Option<Keyed>> = vec![None; requests.len()];
    let delays_ms = [10, 25, 45, 70, 100, 140, 200];
    let mut killed_in_flight = 0;
    // What the kills left behind: each key in each state it was found in after a kill
    // (claimed with nothing changed, changed without an answer, answered).
    let mut left = std::collections::BTreeSet::new();
    for delay in delays_ms {
        let server = ServeProcess::start(&app, &ServeOptions::new()).await;
        let address = server.address.clone();
        let in_flight: Vec<_> = requests
            .iter()
            .enumerate()
            .filter(|(i, _)| first[*i].is_none())
            .map(|(i, r)| {
                let request = r.request(&app, &server).timeout(Duration::from_secs(10));
                tokio::spawn(async move {
                    let answer = match request.send().await {
                        Ok(res) => Some(Keyed::read(res).await),
                        Err(_) => None,
                    };
                    (i, answer)
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(delay)).await;
        server.kill();
        for task in in_flight {
            let (i, answer) = task.await.expect("task");
            match answer {
                Some(a) if a.status == 201 => first[i] = Some(a),
                // Told to wait for a run a previous kill left, or an answer lost: the
                // retries below settle it.
                Some(a) if a.status == 409 => {}
                Some(a) => panic!("{address}: {}: unexpected {a:?}", requests[i].key),
                None => killed_in_flight += 1,
            }
        }
        left.extend(key_states(&app, "kill-").await);
        // Let the leases of the runs just killed run out, so the next round's copies
        // take their keys over instead of waiting.
        tokio::time::sleep(Duration::from_millis(IDEMPOTENCY_LEASE_SECONDS * 1000 + 50)).await;
    }
    let answered_before = first.iter().filter(|a| a.is_some()).count();

    let server = ServeProcess::start(&app, &ServeOptions::new()).await;
    let (mut replayed, mut ran, mut lost) = (0, 0, 0);
    for (i, request) in requests.iter().enumerate() {
        let answer = request.settle(&app, &server).await;
        match (answer.status, answer.code()) {
            (201, _) if answer.replayed => replayed += 1,
            (201, _) => ran += 1,
            (409, Some("idempotent_answer_lost")) if request.path.ends_with("tokens") => {
                lost += 1;
                assert_eq!(answer.body["error"]["details"]["entity_kind"], "api_token");
            }
            _ => panic!("{}: {answer:?}", request.key),
        }
        if let Some(earlier) = &first[i] {
            assert_eq!(
                answer.body, earlier.body,
                "{}: the same answer",
                request.key
            );
        }
    }
    for (application, request) in applications.iter().zip(&requests) {
        assert_eq!(guarantees_of(&app, application).await, 1, "{}", request.key);
        let answer = request.settle(&app, &server).await;
        assert_eq!((answer.status, answer.replayed), (201, true), "{answer:?}");
        assert_code_is_the_guarantees(&app, application, &answer).await;
    }
    for i in 0..TOKENS {
        assert_eq!(
            tokens_named(&app, &format!("kill token {i}")).await,
            1,
            "kill-token-{i} made once"
        );
    }
    server.kill();
    eprintln!(
        "killed at {delays_ms:?} ms: {killed_in_flight} requests cut off, {answered_before} \
         answered before a kill; the kills left {} keys claimed with nothing changed, {} \
         changed without an answer, {} answered (distinct keys); after the restart {replayed} replayed \
         (stored or rebuilt), {ran} ran, {lost} answers lost (tokens)",
        left.iter().filter(|(_, state)| *state == 0).count(),
        left.iter().filter(|(_, state)| *state == 1).count(),
        left.iter().filter(|(_, state)| *state == 2).count(),
    );
}

crate::on_both_backends!(
    a_crash_after_the_claim_runs_the_request_again,
    a_crash_after_the_change_never_runs_it_again,
    a_claim_whose_answer_was_lost_is_named_on_retry,
    killed_at_random_moments_every_key_ends_answered_and_changed_once,
);
