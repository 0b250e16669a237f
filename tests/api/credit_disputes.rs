//! Disputes of credit records (信用异议), attacked: a subject disputes a record of its own
//! and the record shows as disputed; ten disputes of one record at once file one; the
//! record of another subject is not found, a record out of force or a cancellation is
//! refused; only the credit office lists and decides; a correction cancels the record in
//! the decision's transaction and the level comes back, upholding keeps it; a decided
//! dispute cannot be decided again, and bad values are refused by field.

use reqwest::Method;
use serde_json::{json, Value};

use crate::fixtures::all_at_once;
use crate::fixtures::credit::NewCreditRecord;
use crate::helpers::{demo_uscc, TestApp};

async fn a_subject_disputes_a_record_and_the_credit_office_decides(app: TestApp) {
    let office = app.as_operator().await;
    let firm = app.as_enterprise("enterprise1").await;
    let uscc = demo_uscc("enterprise1");
    let penalty = office
        .post_record(&NewCreditRecord::enterprise(
            &uscc,
            "administrative_penalty",
            "滨市监罚〔2026〕31号",
        ))
        .await;
    assert_eq!(penalty.subject.level, "B");
    let record_id = penalty.record.id.clone();

    // Ten disputes of the record at once: one is filed, the others are refused.
    let path = "/api/v1/credit/me/disputes";
    let body = json!({ "record_id": record_id, "reason": "处罚决定已被行政复议撤销" });
    let answers = all_at_once((0..10).map(|_| {
        app.api
            .post(app.url(path))
            .bearer_auth(&firm.token)
            .json(&body)
    }))
    .await;
    let filed: Vec<&Value> = answers
        .iter()
        .filter(|(status, _)| *status == 201)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(filed.len(), 1, "{answers:?}");
    assert!(
        answers.iter().all(|(s, _)| *s == 201 || *s == 409),
        "{answers:?}"
    );
    let dispute = filed[0].clone();
    assert_eq!(dispute["status"], "filed");
    assert_eq!(dispute["overdue"], false);
    let filed_at = dispute["filed_at"].as_str().expect("filed_at");
    let decide_by = dispute["decide_by"].as_str().expect("decide_by");
    let days = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .expect("a time")
            .timestamp()
            / 86_400
    };
    assert!(
        days(decide_by) - days(filed_at) >= 15 + 4,
        "fifteen business days, weekends excluded: {filed_at} → {decide_by}"
    );
    let id = dispute["id"].as_str().expect("id").to_owned();
    let mine = firm.credit_me().await;
    let record = mine
        .records
        .iter()
        .find(|r| r.id == record_id)
        .expect("record");
    assert!(record.disputed, "shown as disputed");
    let listed = firm.send(Method::GET, path, None).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));

    // Another enterprise cannot dispute it, nor see it; a cancellation is no record to
    // dispute; staff have no archive to dispute from.
    let other = app.as_enterprise("enterprise2").await;
    let status = other.send(Method::POST, path, Some(&body)).status().await;
    assert_eq!(status, 404, "another's record is not found");
    let agency = app.as_agency().await;
    assert_eq!(
        agency.send(Method::POST, path, Some(&body)).status().await,
        403
    );
    // Only the credit office lists and decides.
    for caller in [&firm, &other] {
        let status = caller
            .send(Method::GET, "/api/v1/credit/disputes", None)
            .status()
            .await;
        assert_eq!(status, 403);
    }
    let decision_path = format!("/api/v1/credit/disputes/{id}/decision");
    let correct = json!({ "decision": "correct", "note": "复议决定书已核实，更正该记录" });
    let status = firm
        .send(Method::POST, &decision_path, Some(&correct))
        .status()
        .await;
    assert_eq!(status, 403, "the subject cannot decide its own dispute");
    let open = office
        .send(Method::GET, "/api/v1/credit/disputes", None)
        .await;
    assert!(open
        .as_array()
        .expect("list")
        .iter()
        .any(|d| d["id"] == id.as_str()));

    // Bad values: refused by field, nothing decided.
    for (bad, field) in [
        (json!({ "decision": "maybe", "note": "x" }), "decision"),
        (json!({ "decision": "uphold", "note": "  " }), "note"),
    ] {
        let answer = office
            .send(Method::POST, &decision_path, Some(&bad))
            .answer()
            .await;
        assert_eq!(answer.status, 422, "{bad}");
        let error = answer.error.expect("the error shape");
        assert!(error.message.contains(field), "{field}: {error:?}");
    }
    assert_eq!(firm.credit_me().await.subject.level, "B");

    // Corrected: the record is cancelled in the decision and the level is back.
    let decided = office
        .send(Method::POST, &decision_path, Some(&correct))
        .await;
    assert_eq!(decided["status"], "corrected");
    let correction = decided["correction_record_id"]
        .as_str()
        .expect("the cancelling record")
        .to_owned();
    let mine = firm.credit_me().await;
    assert_eq!(mine.subject.level, "A");
    let record = mine
        .records
        .iter()
        .find(|r| r.id == record_id)
        .expect("record");
    assert!(!record.in_force && !record.disputed);
    assert_eq!(record.cancelled_by.as_deref(), Some(correction.as_str()));
    // Decided again, either way: refused, and nothing more written.
    let again = office
        .send(
            Method::POST,
            &decision_path,
            Some(&json!({ "decision": "uphold", "note": "再次处理" })),
        )
        .status()
        .await;
    assert_eq!(again, 409);
    let mine = firm.credit_me().await;
    assert_eq!(mine.records.len(), 2, "the record and one correction");
    // A record out of force cannot be disputed again.
    let status = firm.send(Method::POST, path, Some(&body)).status().await;
    assert_eq!(status, 409);

    // Upheld: the record stands and the level with it.
    let arrears = office
        .post_record(&NewCreditRecord::enterprise(
            &uscc,
            "utility_arrears",
            "滨水费〔2026〕88号",
        ))
        .await;
    let second = firm
        .send(
            Method::POST,
            path,
            Some(&json!({ "record_id": arrears.record.id, "reason": "已缴清" })),
        )
        .answer()
        .await;
    assert_eq!(second.status, 201);
    let open = office
        .send(Method::GET, "/api/v1/credit/disputes", None)
        .await;
    let open = open.as_array().expect("list");
    assert_eq!(open.len(), 1, "the decided one is no longer open");
    let second_id = open[0]["id"].as_str().expect("id").to_owned();
    let upheld = office
        .send(
            Method::POST,
            &format!("/api/v1/credit/disputes/{second_id}/decision"),
            Some(&json!({ "decision": "uphold", "note": "欠费属实，缴清后可申请信用修复" })),
        )
        .await;
    assert_eq!(upheld["status"], "upheld");
    assert!(upheld["correction_record_id"].is_null());
    let mine = firm.credit_me().await;
    let record = mine
        .records
        .iter()
        .find(|r| r.id == arrears.record.id)
        .expect("record");
    assert!(record.in_force && !record.disputed);
    assert_eq!(mine.subject.score, arrears.subject.score);
    // Both decisions are audited.
    let audited = app.audit_of("credit_dispute", &id).await;
    assert_eq!(audited.len(), 2, "filed and decided: {audited:?}");
}

/// A repair request (信用修复申请): the record was right and the subject put it right;
/// granted, it is cancelled as a credit repair (not a correction) and the level comes
/// back. An unknown kind is refused by field; the page offers the repair beside a
/// negative record and the office's list names the request's kind.
async fn a_repair_request_granted_cancels_the_record_as_a_credit_repair(app: TestApp) {
    let office = app.as_operator().await;
    let firm = app.as_enterprise("enterprise1").await;
    let penalty = office
        .post_record(&NewCreditRecord::enterprise(
            &demo_uscc("enterprise1"),
            "utility_arrears",
            "滨水欠〔2026〕3号",
        ))
        .await;
    let record_id = penalty.record.id.clone();
    let error = firm
        .send(
            Method::POST,
            "/api/v1/credit/me/disputes",
            Some(&json!({ "record_id": record_id, "reason": "已缴清", "kind": "pardon" })),
        )
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("kind"));
    let request = firm
        .request(Method::POST, "/api/v1/credit/me/disputes")
        .json(&json!({
            "record_id": record_id,
            "reason": "欠缴水费已于 2026-11-25 全部缴清，附缴费凭证",
            "kind": "repair",
        }))
        .send()
        .await
        .expect("send");
    assert_eq!(request.status(), 201);
    let request: Value = request.json().await.expect("json");
    let id = request["id"].as_str().expect("id").to_owned();
    let page = crate::pages_ei::Visitor::signed_in(&app, "operator")
        .await
        .ok("/credit/disputes")
        .await;
    assert!(page.contains("信用修复申请"), "{page}");
    let decided = office
        .send(
            Method::POST,
            &format!("/api/v1/credit/disputes/{id}/decision"),
            Some(&json!({ "decision": "correct", "note": "已缴清，准予修复" })),
        )
        .await;
    assert_eq!(decided["status"], "corrected");
    let mine = firm.credit_me().await;
    let cancelling = mine
        .records
        .iter()
        .find(|r| r.cancels.as_deref() == Some(record_id.as_str()))
        .expect("the cancelling record");
    assert_eq!(cancelling.cancel_reason.as_deref(), Some("credit_repair"));
    assert_eq!(mine.subject.score, crate::credit::base_score());
}

crate::on_both_backends!(
    a_subject_disputes_a_record_and_the_credit_office_decides,
    a_repair_request_granted_cancels_the_record_as_a_credit_repair,
);
