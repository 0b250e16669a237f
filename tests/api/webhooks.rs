//! Events pushed to organizations' systems: a receiver on loopback that is down, slow,
//! failing and then up gets every event, signed, duplicated only under the same id;
//! forged, tampered and replayed callbacks fail the receiver's check; logs, redelivery
//! and endpoints belong to their organization (and the operator).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use chrono::TimeDelta;
use reqwest::Method;
use serde_json::{json, Value};

use crate::fixtures::webhooks::{webhook_settings, Delivery, Mode, Receiver};
use crate::fixtures::{NewClaim, NewTender, Party, TestPki};
use crate::helpers::TestBackend;

/// The types received at `path`, in the order first received, each once.
fn types_at(received: &[Delivery], path: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    received
        .iter()
        .filter(|d| d.path == path && seen.insert(d.event_id.clone()))
        .map(|d| d.event_type.clone())
        .collect()
}

/// Every request carries a signature that held, the id in its header is the id in its
/// body, and all the requests of one id carry the same bytes.
fn assert_signed_and_stable(received: &[Delivery]) -> BTreeMap<String, Vec<u8>> {
    let mut bodies: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for d in received {
        assert!(d.signed, "unsigned or badly signed: {d:?}");
        assert_eq!(d.json()["id"], d.event_id.as_str(), "{d:?}");
        assert_eq!(d.json()["type"], d.event_type.as_str(), "{d:?}");
        let first = bodies.entry(d.event_id.clone()).or_insert(d.body.clone());
        assert_eq!(first, &d.body, "the same id with another body");
    }
    bodies
}

async fn every_event_reaches_a_receiver_that_was_down_slow_and_failing(backend: TestBackend) {
    let app = backend.spawn_with(webhook_settings(500, 10)).await;
    TestPki::set_up(&app).await;
    let mut receiver = Receiver::down(&app).await;
    let bank = app.as_issuer("bank").await;
    let enterprise = app.as_enterprise("enterprise1").await;
    let agency = app.as_agency().await;
    receiver.expect("/bank", &bank.webhook_secret(&receiver.url("/bank")).await);
    receiver.expect(
        "/enterprise",
        &enterprise
            .webhook_secret(&receiver.url("/enterprise"))
            .await,
    );
    receiver.expect(
        "/agency",
        &agency.webhook_secret(&receiver.url("/agency")).await,
    );

    let tender = agency
        .create_project(&NewTender::two_sections("BZ-HOOK", 2))
        .await;
    let bond = app.issued_bond("enterprise1", &tender.sections[0]).await;

    // Down, then slower than the exchange waits, then answering 500: every try fails,
    // is logged and is due again.
    let three_deferred = |r: baohan::services::webhooks::worker::RoundReport| {
        assert_eq!((r.delivered, r.deferred, r.failed), (0, 3, 0), "{r:?}");
    };
    three_deferred(app.deliver_webhooks().await);
    receiver.serve(Mode::Slow(Duration::from_secs(2))).await;
    three_deferred(app.deliver_webhooks().await);
    receiver.serve(Mode::Status(500)).await;
    three_deferred(app.deliver_webhooks().await);
    receiver.serve(Mode::Up).await;
    let up = app.deliver_webhooks().await;
    assert_eq!((up.delivered, up.deferred, up.failed), (3, 0, 0), "{up:?}");
    assert_eq!(
        app.deliver_webhooks().await,
        Default::default(),
        "nothing is due once delivered"
    );

    // After bid opening (sessions signed in again: two days have passed): accepted,
    // claimed, paid.
    app.advance_clock(TimeDelta::days(2) + TimeDelta::hours(1));
    let (agency, bank) = (app.as_agency().await, app.as_issuer("bank").await);
    let enterprise = app.as_enterprise("enterprise1").await;
    agency.accept(&bond).await;
    let claim = agency
        .claim(
            &bond,
            &NewClaim::new("withdrew_after_deadline", "撤回投标", "80000.00"),
        )
        .await;
    bank.decide(&claim, "pay").await;
    let later = app.deliver_webhooks().await;
    assert_eq!((later.delivered, later.deferred), (6, 0), "{later:?}");

    // Let the slow answers finish before reading what arrived.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let received = receiver.received();
    let bodies = assert_signed_and_stable(&received);
    assert_eq!(
        types_at(&received, "/bank"),
        ["application.submitted", "guarantee.accepted", "claim.filed"]
    );
    assert_eq!(
        types_at(&received, "/enterprise"),
        [
            "payment.confirmed",
            "guarantee.issued",
            "guarantee.accepted",
            "claim.filed",
            "claim.decided"
        ]
    );
    // The agency hears of nothing before bid opening, and then only of its claim.
    assert_eq!(types_at(&received, "/agency"), ["claim.decided"]);

    // What arrived is exactly what each organization's log holds, and each was
    // delivered (a 2xx answer) at least once.
    let mut logged = BTreeSet::new();
    for session_events in [
        bank.webhook_events("").await,
        enterprise.webhook_events("").await,
        agency.webhook_events("").await,
    ] {
        for e in session_events {
            assert_eq!(e["status"], "delivered", "{e}");
            logged.insert(e["id"].as_str().expect("id").to_owned());
        }
    }
    assert_eq!(logged, bodies.keys().cloned().collect::<BTreeSet<_>>());
    for id in &logged {
        assert!(
            received
                .iter()
                .any(|d| &d.event_id == id && d.answered == 200),
            "{id} never answered 200"
        );
    }
    // The slow receiver got the first events but answered too late: they came again,
    // under the same id with the same bytes (checked above).
    assert!(received.len() > logged.len(), "the slow tries arrived too");

    // The delivery log of the first event tells each try.
    let submitted = bank
        .webhook_events("?type=application.submitted")
        .await
        .remove(0);
    let log = bank
        .webhook_event(submitted["id"].as_str().expect("id"))
        .await;
    let statuses: Vec<Value> = log["attempts_log"]
        .as_array()
        .expect("log")
        .iter()
        .map(|a| a["status_code"].clone())
        .collect();
    assert_eq!(statuses, [Value::Null, Value::Null, json!(500), json!(200)]);
    assert_eq!(log["attempts"], 4);
    let errors: Vec<&str> = log["attempts_log"]
        .as_array()
        .expect("log")
        .iter()
        .filter_map(|a| a["error"].as_str())
        .collect();
    assert_eq!(errors.len(), 3, "{log}");
    assert_eq!(
        log["body"]["data"]["project_code"], "BZ-HOOK",
        "the body names the project: {log}"
    );
}

/// Runs `baohan webhook verify` on a body and header with `secret`; its exit code and
/// what it printed.
fn cli_verify(signature: &str, body: &[u8], secret: &str) -> (i32, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("body.json");
    std::fs::write(&path, body).expect("body file");
    let out = Command::new(env!("CARGO_BIN_EXE_baohan"))
        .args(["webhook", "verify", "--signature", signature, "--body"])
        .arg(&path)
        .env("BAOHAN_WEBHOOK_SECRET", secret)
        .output()
        .expect("baohan runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

async fn forged_tampered_and_replayed_callbacks_fail_the_receivers_check(backend: TestBackend) {
    use baohan::services::webhooks::signature;
    let app = backend.spawn_with(webhook_settings(2000, 10)).await;
    let mut receiver = Receiver::down(&app).await;
    receiver.serve(Mode::Up).await;
    let bank = app.as_issuer("bank").await;
    let secret = bank.webhook_secret(&receiver.url("/bank")).await;
    receiver.expect("/bank", &secret);
    bank.post::<Value>("/api/v1/webhook/ping", &json!({}), 202)
        .await;
    assert_eq!(app.deliver_webhooks().await.delivered, 1);
    let got = receiver.received().remove(0);
    assert!(got.signed);
    assert_eq!(got.event_type, "ping");

    // The receiver's helper accepts the real callback...
    let (code, said) = cli_verify(&got.signature, &got.body, &secret);
    assert_eq!((code, said.trim()), (0, "signature valid"));
    // ...and refuses one changed byte, another secret, a made-up tag, and the real
    // signature replayed after the window (its time is signed: moving it breaks it).
    let mut tampered = got.body.clone();
    tampered[10] ^= 1;
    let now = chrono::Utc::now().timestamp();
    let stale = signature::sign(&secret, now - signature::TOLERANCE_SECONDS - 5, &got.body);
    let forged = format!("t={now},v1={}", "ab".repeat(32));
    let moved = got.signature.replacen("t=", "t=1", 1);
    for (header, body, key, why) in [
        (
            got.signature.as_str(),
            tampered.as_slice(),
            secret.as_str(),
            "does not match",
        ),
        (
            got.signature.as_str(),
            got.body.as_slice(),
            "whsec_guessed",
            "does not match",
        ),
        (
            forged.as_str(),
            got.body.as_slice(),
            secret.as_str(),
            "does not match",
        ),
        (
            stale.as_str(),
            got.body.as_slice(),
            secret.as_str(),
            "replay",
        ),
        (
            moved.as_str(),
            got.body.as_slice(),
            secret.as_str(),
            "replay",
        ),
        ("v1=00", got.body.as_slice(), secret.as_str(), "not `t="),
    ] {
        let (code, said) = cli_verify(header, body, key);
        assert_eq!(code, 1, "{header}: {said}");
        assert!(said.contains(why), "{header}: {said}");
    }

    // A new secret ends the old one at once: the receiver that still holds the old one
    // refuses the next callback (401), which stays due until it knows the new one.
    let rotated: Value = bank.post("/api/v1/webhook/secret", &json!({}), 200).await;
    let new_secret = rotated["secret"].as_str().expect("new secret").to_owned();
    assert_ne!(new_secret, secret);
    assert_eq!(rotated["secret_version"], 2);
    bank.post::<Value>("/api/v1/webhook/ping", &json!({}), 202)
        .await;
    assert_eq!(app.deliver_webhooks().await.deferred, 1);
    assert_eq!(receiver.received().last().map(|d| d.answered), Some(401));
    receiver.expect("/bank", &new_secret);
    assert_eq!(app.deliver_webhooks().await.delivered, 1);
    let last = receiver.received().pop().expect("delivered");
    assert_eq!(cli_verify(&last.signature, &last.body, &new_secret).0, 0);
    assert_eq!(cli_verify(&last.signature, &last.body, &secret).0, 1);
}

async fn endpoints_logs_and_redelivery_belong_to_their_organization(backend: TestBackend) {
    let app = backend.spawn_with(webhook_settings(1000, 2)).await;
    let mut receiver = Receiver::down(&app).await;
    let bank = app.as_issuer("bank").await;
    let enterprise = app.as_enterprise("enterprise1").await;
    let operator = app.as_operator().await;

    // Registering: the secret once; the same address again changes nothing; addresses
    // and bodies out of shape are refused naming the field.
    let secret = bank.webhook_secret(&receiver.url("/bank")).await;
    receiver.expect("/bank", &secret);
    let again = bank.set_webhook(&receiver.url("/bank"), 200).await;
    assert!(again.get("secret").is_none(), "{again}");
    let shown: Value = bank.get("/api/v1/webhook").await;
    assert_eq!(shown["url"], receiver.url("/bank"));
    assert!(shown.get("secret").is_none(), "{shown}");
    for url in [
        "ftp://127.0.0.1/x",
        "http://user:pw@127.0.0.1/x",
        "not a url",
    ] {
        let error = bank
            .set_webhook(url, 200)
            .fails(422, "validation_failed")
            .await;
        assert_eq!(error.field(), Some("url"), "{url}");
    }
    bank.send(
        Method::PUT,
        "/api/v1/webhook",
        Some(&json!({ "url": receiver.url("/bank"), "events": "*" })),
    )
    .fails(400, "invalid_json")
    .await;
    operator
        .set_webhook(&receiver.url("/op"), 201)
        .fails(403, "forbidden")
        .await;
    enterprise
        .send(Method::GET, "/api/v1/webhook", None)
        .fails(404, "not_found")
        .await;

    // Two failed tries and the event is failed, listed for its organization and the
    // operator, hidden from everyone else alike whether it exists.
    let ping: Value = bank.post("/api/v1/webhook/ping", &json!({}), 202).await;
    let id = ping["id"].as_str().expect("id").to_owned();
    app.deliver_webhooks().await;
    let failed = app.deliver_webhooks().await;
    assert_eq!(failed.failed, 1, "{failed:?}");
    assert_eq!(bank.webhook_event(&id).await["status"], "failed");
    let hidden = enterprise.webhook_event(&id).fails(404, "not_found").await;
    let missing = enterprise
        .webhook_event("00000000-0000-0000-0000-000000000000")
        .fails(404, "not_found")
        .await;
    assert_eq!(hidden.message, missing.message);
    enterprise.redeliver(&id).fails(404, "not_found").await;
    assert!(enterprise.webhook_events("").await.is_empty());
    enterprise
        .webhook_events(&format!("?organization={}", bank.org_id()))
        .fails(422, "validation_failed")
        .await;
    let listed = operator
        .webhook_events(&format!("?status=failed&organization={}", bank.org_id()))
        .await;
    assert_eq!(
        listed.iter().map(|e| e["id"].clone()).collect::<Vec<_>>(),
        [json!(id)]
    );

    // The operator sends it again once the receiver is up: same id, same body.
    receiver.serve(Mode::Up).await;
    let requeued = operator.redeliver(&id).await;
    assert_eq!(requeued["status"], "pending");
    operator.redeliver(&id).fails(409, "conflict").await;
    assert_eq!(app.deliver_webhooks().await.delivered, 1);
    assert_eq!(
        app.audited("redeliver_webhook_event").await,
        std::slice::from_ref(&id)
    );
    // Its organization may send a delivered one again too.
    bank.redeliver(&id).await;
    assert_eq!(app.deliver_webhooks().await.delivered, 1);
    let received = receiver.received();
    assert_eq!(received.len(), 2);
    assert!(received.iter().all(|d| d.event_id == id && d.signed));
    assert_eq!(received[0].body, received[1].body);
    assert_eq!(
        serde_json::to_string(&received[0].json()).expect("json"),
        serde_json::to_string(&requeued["body"]).expect("json")
    );

    // Without an endpoint nothing is pushed, and what waited fails visibly.
    bank.send(Method::DELETE, "/api/v1/webhook", None)
        .answer()
        .await;
    bank.post::<Value>("/api/v1/webhook/ping", &json!({}), 202)
        .fails(404, "not_found")
        .await;
    bank.redeliver(&id).await;
    app.deliver_webhooks().await;
    let log = bank.webhook_event(&id).await;
    let last = log["attempts_log"]
        .as_array()
        .and_then(|a| a.last())
        .cloned()
        .expect("a try");
    assert!(
        last["error"]
            .as_str()
            .unwrap_or("")
            .contains("no webhook endpoint"),
        "{log}"
    );
}

async fn the_workers_of_two_instances_deliver_each_event_once(backend: TestBackend) {
    let app = backend.spawn_with(webhook_settings(2000, 10)).await;
    let other = app.another_instance().await;
    let mut receiver = Receiver::down(&app).await;
    receiver.serve(Mode::Up).await;
    let enterprise = app.as_enterprise("enterprise1").await;
    let secret = enterprise.webhook_secret(&receiver.url("/e")).await;
    receiver.expect("/e", &secret);
    for _ in 0..12 {
        enterprise
            .post::<Value>("/api/v1/webhook/ping", &json!({}), 202)
            .await;
    }
    let (a, b) = (app.webhook_worker(), other.webhook_worker());
    let (a, b) = tokio::join!(a.run_once(), b.run_once());
    let (a, b) = (a.expect("round"), b.expect("round"));
    assert_eq!(a.delivered + b.delivered, 12, "{a:?} {b:?}");
    let received = receiver.received();
    let ids: BTreeSet<&str> = received.iter().map(|d| d.event_id.as_str()).collect();
    assert_eq!((received.len(), ids.len()), (12, 12));
    assert_signed_and_stable(&received);
}

/// The bank's staff register the endpoint in the browser, see the secret once, read
/// the log of a failed event and send it again; another organization cannot see it; the
/// operator sees every organization's events.
async fn the_pages_register_show_the_secret_once_and_send_an_event_again(backend: TestBackend) {
    use crate::fixtures::chromium::Chromium;
    use crate::fixtures::library::DEMO_PASSWORD;
    let app = backend.spawn_with(webhook_settings(1000, 1)).await;
    let receiver = Receiver::down(&app).await;
    let browser = Chromium::start("zh-CN").await;
    browser.goto(&app.url("/webhooks")).await;
    browser.fill("#username", "bank").await;
    browser.fill("#password", DEMO_PASSWORD).await;
    browser
        .click("form[action='/login'] button[type=submit]")
        .await;
    assert_eq!(browser.wait_to_leave("/login").await, "/webhooks");

    // An address out of shape is refused beside its field; a good one shows the secret.
    browser.fill("#url", "ftp://127.0.0.1/hook").await;
    browser
        .click("form[action='/webhooks/endpoint'] button[type=submit]")
        .await;
    assert!(browser.wait_for("#url-error").await);
    // The browser logs the refusal's 422 itself; nothing else may be logged.
    let logged = browser.console_errors().await;
    assert!(
        logged.iter().all(|e| e.contains("422")),
        "console errors: {logged:?}"
    );
    browser.fill("#url", &receiver.url("/bank")).await;
    browser
        .click("form[action='/webhooks/endpoint'] button[type=submit]")
        .await;
    assert!(browser.wait_for("#secret").await);
    let secret = browser.text("#secret").await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    browser.screenshot("webhooks-secret").await;
    browser.assert_accessible("webhooks-secret").await;
    // Shown once: the page read again has the address and no secret.
    browser.goto(&app.url("/webhooks")).await;
    assert!(browser.wait_for("#current-url").await);
    assert_eq!(browser.text("#current-url").await, receiver.url("/bank"));
    assert!(!browser.has("#secret").await);

    // A ping to a receiver that is down fails after its one try and is listed.
    let bank = app.as_issuer("bank").await;
    let ping: Value = bank.post("/api/v1/webhook/ping", &json!({}), 202).await;
    let id = ping["id"].as_str().expect("id").to_owned();
    assert_eq!(app.deliver_webhooks().await.failed, 1);
    browser.goto(&app.url("/webhooks?status=failed")).await;
    assert!(browser.wait_for("tr.event-failed").await);
    browser
        .click(&format!("a[href='/webhooks/events/{id}']"))
        .await;
    assert!(browser.wait_for("#event-status").await);
    assert_eq!(browser.text("#event-status").await, "推送失败");
    assert!(browser.text("main").await.contains(&receiver.url("/bank")));
    browser.screenshot("webhooks-event").await;
    browser.assert_accessible("webhooks-event").await;
    browser
        .click(&format!(
            "form[action='/webhooks/events/{id}/redeliver'] button[type=submit]"
        ))
        .await;
    assert!(browser.wait_for(".flash").await);
    assert_eq!(browser.text("#event-status").await, "待推送");
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    browser.close().await;

    // The same pages in English.
    let english = Chromium::start("en").await;
    english
        .goto(&app.url(&format!("/webhooks/events/{id}")))
        .await;
    english.fill("#username", "bank").await;
    english.fill("#password", DEMO_PASSWORD).await;
    english
        .click("form[action='/login'] button[type=submit]")
        .await;
    english.wait_to_leave("/login").await;
    assert!(english.wait_for("#event-status").await);
    assert_eq!(english.text("main h1").await, "Pushed event");
    english.screenshot("webhooks-event-en").await;
    english.goto(&app.url("/webhooks")).await;
    assert!(english.wait_for("#current-url").await);
    assert_eq!(english.text("main h1").await, "Event pushes");
    english.screenshot("webhooks-en").await;
    english.assert_accessible("webhooks-en").await;
    english.close().await;

    // Nobody else reads it; the operator lists it under the bank.
    let (other, _) = crate::pages_agency::page_session(&app, "enterprise1").await;
    let (status, _) =
        crate::pages_agency::html(&other, &app, &format!("/webhooks/events/{id}")).await;
    assert_eq!(status, 404);
    let (operator, _) = crate::pages_agency::page_session(&app, "operator").await;
    let (status, list) = crate::pages_agency::html(&operator, &app, "/webhooks").await;
    assert_eq!(status, 200);
    assert!(list.contains(&id) && list.contains(bank.org_id()), "{list}");
}

/// A postponement asks the issuer to sign an amendment; an award releases the loser's
/// bond: both parties of each hear of it, the agency of neither.
async fn amendments_to_sign_and_releases_are_pushed_to_the_parties(backend: TestBackend) {
    let app = backend.spawn_with(webhook_settings(2000, 10)).await;
    TestPki::set_up(&app).await;
    let mut receiver = Receiver::down(&app).await;
    receiver.serve(Mode::Up).await;
    let bank = app.as_issuer("bank").await;
    let agency = app.as_agency().await;
    receiver.expect("/bank", &bank.webhook_secret(&receiver.url("/bank")).await);
    receiver.expect(
        "/agency",
        &agency.webhook_secret(&receiver.url("/agency")).await,
    );
    let loser = app.as_enterprise("enterprise2").await;
    receiver.expect(
        "/loser",
        &loser.webhook_secret(&receiver.url("/loser")).await,
    );
    let tender = agency
        .create_project(&NewTender::two_sections("BZ-HOOK-2", 2))
        .await;
    let bond = app.issued_bond("enterprise2", &tender.sections[0]).await;
    let winners = app.issued_bond("enterprise1", &tender.sections[0]).await;
    let later = (chrono::Utc::now() + TimeDelta::days(3)).to_rfc3339();
    agency.postpone(&tender, &later).await;
    app.deliver_webhooks().await;
    let received = receiver.received();
    let amendment: Vec<&Delivery> = received
        .iter()
        .filter(|d| d.event_type == "amendment.to_sign")
        .collect();
    let numbers: BTreeSet<String> = amendment
        .iter()
        .map(|d| {
            d.json()["data"]["guarantee_number"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert_eq!(
        numbers,
        BTreeSet::from([bond.number.clone(), winners.number.clone()]),
        "{received:?}"
    );
    assert!(amendment.iter().all(|d| d.path == "/bank"), "{amendment:?}");

    app.advance_clock(TimeDelta::days(3) + TimeDelta::hours(1));
    let agency = app.as_agency().await;
    let winner = app.as_enterprise("enterprise1").await;
    agency.award(&tender, &tender.sections[0], &winner).await;
    app.deliver_webhooks().await;
    let received = receiver.received();
    assert_signed_and_stable(&received);
    let released: Vec<&str> = received
        .iter()
        .filter(|d| d.event_type == "guarantee.released")
        .map(|d| d.path.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(released, ["/bank", "/loser"]);
    assert_eq!(types_at(&received, "/agency"), Vec::<String>::new());
}

/// An instance killed while it delivers loses nothing: another instance sends what was
/// left, and what the dead one had claimed once its lease runs out, under the same ids.
async fn an_instance_killed_while_delivering_loses_no_event(backend: TestBackend) {
    use crate::fixtures::server::{ServeOptions, ServeProcess};
    let app = backend.spawn_with(webhook_settings(1000, 10)).await;
    let mut receiver = Receiver::down(&app).await;
    // Each answer takes most of the time allowed: the kill lands mid-delivery.
    receiver.serve(Mode::Slow(Duration::from_millis(700))).await;
    let enterprise = app.as_enterprise("enterprise1").await;
    receiver.expect("/e", &enterprise.webhook_secret(&receiver.url("/e")).await);
    const EVENTS: usize = 8;
    let mut ids = BTreeSet::new();
    for _ in 0..EVENTS {
        let ping: Value = enterprise
            .post("/api/v1/webhook/ping", &json!({}), 202)
            .await;
        ids.insert(ping["id"].as_str().expect("id").to_owned());
    }
    let options = ServeOptions::new()
        .setting("WEBHOOK_ALLOW_PRIVATE", "true")
        .setting("WEBHOOK_POLL_INTERVAL_MS", 100)
        .setting("WEBHOOK_TIMEOUT_MS", 1000)
        .setting("WEBHOOK_RETRY_BASE_MS", 0);
    let first = ServeProcess::start(&app, &options).await;
    let started = std::time::Instant::now();
    while receiver.arrived() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "nothing arrived"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Killed with a request out and its answer 700 ms away.
    first.kill();
    let _second = ServeProcess::start(&app, &options).await;
    // The dead instance's claim holds for 3 × the timeout + 5 s.
    let started = std::time::Instant::now();
    loop {
        let delivered = enterprise.webhook_events("?status=delivered").await.len();
        if delivered == EVENTS {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "{delivered} of {EVENTS} delivered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let received = receiver.received();
    assert_signed_and_stable(&received);
    let got: BTreeSet<String> = received
        .iter()
        .filter(|d| d.answered == 200)
        .map(|d| d.event_id.clone())
        .collect();
    assert_eq!(got, ids, "every event arrived");
    // The one in flight at the kill went again, under its id, once the lease ran out.
    assert!(received.len() > EVENTS, "{} requests", received.len());
}

crate::on_both_backends!(
    configured: amendments_to_sign_and_releases_are_pushed_to_the_parties,
    an_instance_killed_while_delivering_loses_no_event,
    the_pages_register_show_the_secret_once_and_send_an_event_again,
    every_event_reaches_a_receiver_that_was_down_slow_and_failing,
    forged_tampered_and_replayed_callbacks_fail_the_receivers_check,
    endpoints_logs_and_redelivery_belong_to_their_organization,
    the_workers_of_two_instances_deliver_each_event_once,
);
