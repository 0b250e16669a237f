//! Saved applications (暂存): kept by the enterprise alone, replaced whole when saved
//! again, submitted with every check of a new application, and left as they were when
//! a submission is refused.

use chrono::TimeDelta;
use reqwest::Method;
use serde_json::{json, Value};

use crate::fixtures::{all_at_once, NewTender, Party};
use crate::helpers::TestApp;

async fn a_saved_application_is_the_enterprises_alone_until_submitted(app: TestApp) {
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-DRAFT", 3))
        .await;
    let section = &tender.sections[0].id;
    let path = format!("/api/v1/application-drafts/{section}");
    let enterprise = app.as_enterprise("enterprise1").await;
    let bank = app.as_issuer("bank").await;
    let queue_before: Vec<Value> = bank.get("/api/v1/applications").await;

    // Saved without an issuer, then again with one: one draft, replaced whole.
    let first = enterprise
        .send(Method::PUT, &path, Some(&json!({ "note": "待补资质证书" })))
        .answer()
        .await;
    assert_eq!(first.status, 201);
    let saved = enterprise
        .send(
            Method::PUT,
            &path,
            Some(&json!({ "issuer_id": bank.org_id(), "kind": "bank" })),
        )
        .answer()
        .await;
    assert_eq!(saved.status, 200);
    let drafts: Vec<Value> = enterprise.get("/api/v1/application-drafts").await;
    assert_eq!(drafts.len(), 1, "{drafts:?}");
    assert_eq!(drafts[0]["issuer"]["id"], bank.org_id());
    assert_eq!(drafts[0]["note"], Value::Null, "replaced whole");
    assert_eq!(drafts[0]["project"]["code"], "BZ-DRAFT");

    // Nobody else sees it, and it holds nothing back: the issuer's queue is as it was,
    // another enterprise neither lists nor drops it.
    let queue: Vec<Value> = bank.get("/api/v1/applications").await;
    assert_eq!(queue.len(), queue_before.len());
    let other = app.as_enterprise("enterprise2").await;
    let theirs: Vec<Value> = other.get("/api/v1/application-drafts").await;
    assert!(theirs.is_empty());
    other
        .send(Method::DELETE, &path, None)
        .fails(404, "not_found")
        .await;
    bank.send(Method::PUT, &path, Some(&json!({})))
        .fails(403, "forbidden")
        .await;

    // Bad parts are refused naming the field, and nothing is saved.
    for (body, field) in [
        (json!({ "issuer_id": other.org_id() }), "issuer_id"),
        (json!({ "kind": "lender" }), "kind"),
        (json!({ "note": "x".repeat(1001) }), "note"),
    ] {
        let error = enterprise
            .send(Method::PUT, &path, Some(&body))
            .fails(422, "validation_failed")
            .await;
        assert_eq!(error.field(), Some(field), "{body}");
    }
    enterprise
        .send(Method::PUT, &path, Some(&json!({ "issuer": "x" })))
        .fails(400, "invalid_json")
        .await;
    enterprise
        .send(
            Method::PUT,
            "/api/v1/application-drafts/no-such-section",
            Some(&json!({})),
        )
        .fails(422, "validation_failed")
        .await;
    let drafts: Vec<Value> = enterprise.get("/api/v1/application-drafts").await;
    assert_eq!(drafts[0]["issuer"]["id"], bank.org_id());

    // Submitted: an application like any, the draft gone.
    let submitted: Value = enterprise
        .post(&format!("{path}/submit"), &json!({}), 201)
        .await;
    assert_eq!(submitted["status"], "submitted");
    assert_eq!(submitted["section"]["id"], section.as_str());
    let drafts: Vec<Value> = enterprise.get("/api/v1/application-drafts").await;
    assert!(drafts.is_empty());
    let queue: Vec<Value> = bank.get("/api/v1/applications").await;
    assert_eq!(queue.len(), queue_before.len() + 1);
    assert_eq!(app.audited("apply").await.len(), 1);
}

async fn a_refused_submission_leaves_the_draft_as_it_was(app: TestApp) {
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-DRAFT-2", 1))
        .await;
    let enterprise = app.as_enterprise("enterprise1").await;
    let bank = app.as_issuer("bank").await;
    let (a, b) = (&tender.sections[0].id, &tender.sections[1].id);

    // Without an issuer it cannot go.
    let path_a = format!("/api/v1/application-drafts/{a}");
    enterprise
        .send(Method::PUT, &path_a, Some(&json!({})))
        .answer()
        .await;
    let error = enterprise
        .post::<Value>(&format!("{path_a}/submit"), &json!({}), 201)
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("issuer_id"));

    // Already applied for section B: the draft's submission is refused like a second
    // application would be, and the draft stays.
    enterprise.apply(&tender.sections[1], &bank).await;
    let path_b = format!("/api/v1/application-drafts/{b}");
    enterprise
        .send(
            Method::PUT,
            &path_b,
            Some(&json!({ "issuer_id": bank.org_id() })),
        )
        .answer()
        .await;
    enterprise
        .post::<Value>(&format!("{path_b}/submit"), &json!({}), 201)
        .fails(409, "conflict")
        .await;
    let drafts: Vec<Value> = enterprise.get("/api/v1/application-drafts").await;
    assert_eq!(drafts.len(), 2, "{drafts:?}");

    // Thirty saves at once of one section's draft: still one draft.
    let bodies = vec![json!({ "issuer_id": bank.org_id() }); 30];
    let answers = all_at_once(
        bodies
            .iter()
            .map(|body| enterprise.request(Method::PUT, &path_a).json(body)),
    )
    .await;
    // Each is a save over the last (200); the one that met a save made meanwhile may
    // be told to try again (409); none fails otherwise.
    assert!(
        answers.iter().all(|(s, _)| *s == 200 || *s == 409),
        "{answers:?}"
    );
    let drafts: Vec<Value> = enterprise.get("/api/v1/application-drafts").await;
    assert_eq!(drafts.len(), 2, "{drafts:?}");

    // Past the deadline a draft can be neither saved nor submitted; it stays to be read
    // or dropped.
    app.advance_clock(TimeDelta::days(1) + TimeDelta::hours(1));
    let enterprise = app.as_enterprise("enterprise1").await;
    enterprise
        .post::<Value>(&format!("{path_a}/submit"), &json!({}), 201)
        .fails(422, "validation_failed")
        .await;
    enterprise
        .send(Method::PUT, &path_a, Some(&json!({})))
        .fails(422, "validation_failed")
        .await;
    let status = enterprise
        .send(Method::DELETE, &path_a, None)
        .answer()
        .await;
    assert_eq!(status.status, 204);
    let drafts: Vec<Value> = enterprise.get("/api/v1/application-drafts").await;
    assert_eq!(drafts.len(), 1);
}

async fn the_pages_save_list_send_and_discard_drafts_with_errors_beside_the_row(app: TestApp) {
    use crate::pages_agency::{html, page_session, post_form};
    // Issuers are offered once they can sign.
    crate::fixtures::TestPki::set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-DRAFT-P", 3))
        .await;
    let (a, b) = (&tender.sections[0].id, &tender.sections[1].id);
    let bank = app.as_issuer("bank").await;
    let (client, csrf) = page_session(&app, "enterprise1").await;

    // The project page offers "暂存" beside "apply", posting the same form elsewhere.
    let project = format!("/projects/{}", tender.id);
    let (status, page) = html(&client, &app, &project).await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("formaction=\"{project}/save-draft\"")),
        "{page}"
    );
    let saved = post_form(
        &client,
        &app,
        &format!("{project}/save-draft"),
        &[("csrf_token", &csrf), ("section_id", a), ("issuer_id", "")],
    )
    .await;
    assert_eq!(saved.status(), 303);
    assert_eq!(saved.headers()["location"], "/enterprise/drafts");
    let saved = post_form(
        &client,
        &app,
        &format!("{project}/save-draft"),
        &[
            ("csrf_token", &csrf),
            ("section_id", b),
            ("issuer_id", bank.org_id()),
        ],
    )
    .await;
    assert_eq!(saved.status(), 303);
    // Without the CSRF token nothing is saved.
    let forged = post_form(
        &client,
        &app,
        &format!("{project}/save-draft"),
        &[("section_id", a), ("issuer_id", bank.org_id())],
    )
    .await;
    assert_eq!(forged.status(), 403);

    let (status, list) = html(&client, &app, "/enterprise/drafts").await;
    assert_eq!(status, 200);
    assert!(list.contains("BZ-DRAFT-P"), "{list}");
    assert!(
        list.contains("未选出函机构"),
        "section A has no issuer: {list}"
    );
    assert!(list.contains(&format!("/enterprise/drafts/{b}/submit")));
    // The applications page links to them.
    let (_, applications) = html(&client, &app, "/enterprise/applications").await;
    assert!(applications.contains("href=\"/enterprise/drafts\""));

    // Sending A (no issuer) is refused beside its row; the draft stays.
    let refused = post_form(
        &client,
        &app,
        &format!("/enterprise/drafts/{a}/submit"),
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(refused.status(), 200);
    let page = refused.text().await.expect("page");
    assert!(page.contains("error-summary"), "{page}");
    assert!(page.contains(&format!("id=\"draft-{a}-error\"")), "{page}");
    assert!(!page.contains(&format!("id=\"draft-{b}-error\"")), "{page}");
    let drafts: Vec<Value> = app
        .as_enterprise("enterprise1")
        .await
        .get("/api/v1/application-drafts")
        .await;
    assert_eq!(drafts.len(), 2);

    // Sending B makes the application; discarding A leaves none.
    let sent = post_form(
        &client,
        &app,
        &format!("/enterprise/drafts/{b}/submit"),
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(sent.status(), 303);
    assert_eq!(sent.headers()["location"], "/enterprise/applications");
    let queue: Vec<Value> = bank.get("/api/v1/applications").await;
    assert!(
        queue.iter().any(|q| q["section"]["id"] == b.as_str()),
        "{queue:?}"
    );
    // Another enterprise cannot send or discard this one's draft.
    let (other, other_csrf) = page_session(&app, "enterprise2").await;
    let theirs = post_form(
        &other,
        &app,
        &format!("/enterprise/drafts/{a}/discard"),
        &[("csrf_token", &other_csrf)],
    )
    .await;
    assert_eq!(theirs.status(), 404);
    let discarded = post_form(
        &client,
        &app,
        &format!("/enterprise/drafts/{a}/discard"),
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(discarded.status(), 303);
    let (_, list) = html(&client, &app, "/enterprise/drafts").await;
    assert!(list.contains("没有暂存的申请"), "{list}");

    // The enterprise's own claims page is in its navigation.
    assert!(list.contains("href=\"/enterprise/claims\""), "{list}");
    let (status, claims) = html(&client, &app, "/enterprise/claims").await;
    assert_eq!(status, 200, "{claims}");
    let (status, _) = html(&client, &app, "/enterprise/drafts").await;
    assert_eq!(status, 200);
    let (agency, _) = page_session(&app, "agency").await;
    let (status, _) = html(&agency, &app, "/enterprise/drafts").await;
    assert_eq!(status, 403);
}

crate::on_both_backends!(
    a_saved_application_is_the_enterprises_alone_until_submitted,
    a_refused_submission_leaves_the_draft_as_it_was,
    the_pages_save_list_send_and_discard_drafts_with_errors_beside_the_row,
);
