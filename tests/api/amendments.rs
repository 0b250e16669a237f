//! Amendments (延标): a postponed deadline, and the amendment each issuer signs.

use chrono::Utc;
use serde_json::{json, Value};

use crate::exchange::{
    create_project, issue_hosted, paid_application, setup_pki, sign_with_openssl, upload_signature,
};
use crate::helpers::{assert_error, TestApp};

/// 延标: the agency postpones the deadline; bonds no longer cover the new bid validity
/// period until each issuer signs an amendment (hosted and external alike), which then
/// verifies against the new expectations.
async fn a_postponed_deadline_is_covered_by_signed_amendments(app: TestApp) {
    let pki = setup_pki(&app).await;
    let project = create_project(&app, "BZ-POSTPONE", 3).await;
    let project_id = project["id"].as_str().expect("id").to_owned();
    let section_a = project["sections"][0]["id"]
        .as_str()
        .expect("section")
        .to_owned();
    let section_b = project["sections"][1]["id"]
        .as_str()
        .expect("section")
        .to_owned();
    let hosted_app = paid_application(&app, "enterprise1", "bank", &section_a).await;
    let (hosted_number, hosted_code) = issue_hosted(&app, &hosted_app).await;
    let external_app = paid_application(&app, "enterprise2", "insurer", &section_b).await;
    let insurer = app.login("insurer").await;
    let draft = app
        .get(
            &insurer,
            &format!("/api/v1/applications/{external_app}/draft"),
        )
        .await
        .bytes()
        .await
        .expect("draft");
    let signature = sign_with_openssl(pki.dir.path(), &draft, "insurer.pem", "insurer.key");
    let res = upload_signature(&app, &insurer, &external_app, signature).await;
    assert_eq!(res.status(), 201);
    let external_number = res.json::<Value>().await.expect("json")["guarantee"]["number"]
        .as_str()
        .expect("number")
        .to_owned();

    // Editing: the name may change; a bond amount no longer, once bidders applied.
    let agency = app.login("agency").await;
    let client = reqwest::Client::new();
    let res = client
        .patch(app.url(&format!("/api/v1/projects/{project_id}")))
        .bearer_auth(&agency)
        .json(&json!({ "name": "滨州港疏港路改建工程（二期）" }))
        .send()
        .await
        .expect("patch");
    assert_eq!(res.status(), 200);
    let res = client
        .patch(app.url(&format!("/api/v1/projects/{project_id}")))
        .bearer_auth(&agency)
        .json(&json!({ "bond_amounts": { "A": "70000.00" } }))
        .send()
        .await
        .expect("patch");
    assert_error(res, 409, "conflict").await;

    // Postpone by a week.
    let new_deadline = (Utc::now() + chrono::Duration::days(10)).to_rfc3339();
    let res = app
        .post(
            &agency,
            &format!("/api/v1/projects/{project_id}/postpone"),
            &json!({ "bid_deadline": new_deadline, "bid_opening_at": new_deadline }),
        )
        .await;
    assert_eq!(
        res.status(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let postponed: Value = res.json().await.expect("json");
    let mut offered: Vec<String> =
        serde_json::from_value(postponed["amendments_offered"].clone()).expect("list");
    offered.sort();
    let mut expected = vec![hosted_number.clone(), external_number.clone()];
    expected.sort();
    assert_eq!(offered, expected);
    let new_end = postponed["project"]["bid_deadline"]
        .as_str()
        .expect("deadline")
        .to_owned();
    let new_end =
        chrono::DateTime::parse_from_rfc3339(&new_end).expect("time") + chrono::Duration::days(60);

    // Version 1 does not cover the new period.
    let check = |number: String, code: String| {
        let req = app.client.post(app.url("/api/v1/verify")).json(&json!({
            "number": number, "code": code,
            "expectations": { "valid_through": new_end.to_rfc3339() }
        }));
        async move {
            req.send()
                .await
                .expect("verify")
                .json::<Value>()
                .await
                .expect("report")
        }
    };
    let report = check(hosted_number.clone(), hosted_code.clone()).await;
    assert_eq!(report["sub_indication"], "EXPECTATION_MISMATCH", "{report}");

    // The bank signs its amendment with the hosted key; the insurer fetches version 2
    // of the draft and signs it in its own system.
    let bank = app.login("bank").await;
    let res = app
        .post(
            &bank,
            &format!("/api/v1/applications/{hosted_app}/issue"),
            &json!({}),
        )
        .await;
    assert_eq!(
        res.status(),
        201,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let amended: Value = res.json().await.expect("json");
    assert_eq!(amended["guarantee"]["version"], 2);
    assert_eq!(
        amended["verification_code"],
        hosted_code.as_str(),
        "the code stays"
    );
    let res = app
        .get(
            &insurer,
            &format!("/api/v1/applications/{external_app}/draft"),
        )
        .await;
    assert_eq!(res.headers()["x-document-version"], "2");
    let draft2 = res.bytes().await.expect("draft");
    let signature2 = sign_with_openssl(pki.dir.path(), &draft2, "insurer.pem", "insurer.key");
    let res = upload_signature(&app, &insurer, &external_app, signature2).await;
    assert_eq!(res.status(), 201);
    assert_eq!(
        res.json::<Value>().await.expect("json")["guarantee"]["version"],
        2
    );

    let report = check(hosted_number.clone(), hosted_code).await;
    assert_eq!(report["indication"], "PASSED", "{report}");
    // Nothing is left to sign.
    let res = app
        .post(
            &bank,
            &format!("/api/v1/applications/{hosted_app}/issue"),
            &json!({}),
        )
        .await;
    assert_error(res, 409, "invalid_transition").await;
}

crate::on_both_backends!(a_postponed_deadline_is_covered_by_signed_amendments);
