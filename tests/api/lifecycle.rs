//! Time-driven parts of the lifecycle: claim decision deadlines and expiry; and trust
//! anchors dropped into the certificates directory.

use chrono::Utc;
use serde_json::{json, Value};

use crate::exchange::{create_project, issue_hosted, paid_application, setup_pki};
use crate::helpers::{demo_uscc, TestApp};

async fn overdue_claims_are_flagged_and_lapsed_guarantees_expire(app: TestApp) {
    setup_pki(&app).await;
    let project = create_project(&app, "BZ-TIME", 2).await;
    let section_a = project["sections"][0]["id"]
        .as_str()
        .expect("section")
        .to_owned();
    let section_b = project["sections"][1]["id"]
        .as_str()
        .expect("section")
        .to_owned();
    let claimed_app = paid_application(&app, "enterprise1", "bank", &section_a).await;
    let (claimed, _) = issue_hosted(&app, &claimed_app).await;
    let lapsing_app = paid_application(&app, "enterprise2", "bank", &section_b).await;
    let (lapsing, lapsing_code) = issue_hosted(&app, &lapsing_app).await;

    app.ctx
        .clock
        .advance(chrono::Duration::days(2) + chrono::Duration::hours(1));
    let agency = app.login("agency").await;
    let res = app
        .post(
            &agency,
            &format!("/api/v1/guarantees/{claimed}/claims"),
            &json!({ "reason_code": "withdrew_after_deadline", "statement": "撤回投标", "amount": "80000.00" }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let claim: Value = res.json().await.expect("json");
    assert_eq!(claim["overdue"], false);
    let filed = chrono::DateTime::parse_from_rfc3339(claim["filed_at"].as_str().expect("filed"))
        .expect("time");
    let decide_by = chrono::DateTime::parse_from_rfc3339(claim["decide_by"].as_str().expect("by"))
        .expect("time");
    let days = (decide_by - filed).num_days();
    assert!(
        (5..=9).contains(&days),
        "5 business days is 5 to 9 calendar days, got {days}"
    );

    // Past the deadline the issuer's list flags it.
    app.ctx.clock.advance(chrono::Duration::days(10));
    let bank = app.login("bank").await;
    let claims: Value = app
        .get(&bank, "/api/v1/claims")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(claims[0]["overdue"], true, "{claims}");

    // A week before the end of validity the bidder is told, once; the claimed bond is
    // not in force and gets no notice.
    app.ctx.clock.advance(chrono::Duration::days(45));
    let notices = |app: &TestApp| {
        let ctx = app.ctx.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                baohan::services::guarantees::send_expiry_notices(&ctx)
            })
            .await
            .expect("task")
            .expect("notices")
        }
    };
    assert_eq!(notices(&app).await, 1);
    assert_eq!(notices(&app).await, 0, "sent once");
    let pool = app.pool.clone();
    let queued = tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().expect("conn");
        baohan::mail::outbox::list(&mut conn, baohan::mail::outbox::MailStatus::Pending)
            .expect("outbox")
    })
    .await
    .expect("task");
    let expiring: Vec<_> = queued
        .iter()
        .filter(|m| m.subject.starts_with("保函即将到期") && m.subject.ends_with(lapsing.as_str()))
        .collect();
    assert_eq!(
        expiring.len(),
        1,
        "{:?}",
        queued.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );

    // When validity ends the background job expires the bond; the claimed one waits
    // for its decision instead.
    app.ctx.clock.advance(chrono::Duration::days(15));
    let ctx = app.ctx.clone();
    let expired =
        tokio::task::spawn_blocking(move || baohan::services::guarantees::expire_due(&ctx))
            .await
            .expect("task")
            .expect("expire");
    assert_eq!(expired, 1);
    let ent2 = app.login("enterprise2").await;
    let g: Value = app
        .get(&ent2, &format!("/api/v1/guarantees/{lapsing}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(g["status"], "expired");
    let ent1 = app.login("enterprise1").await;
    let g: Value = app
        .get(&ent1, &format!("/api/v1/guarantees/{claimed}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(g["status"], "claimed");
    let report = app.verify_json(&lapsing, &lapsing_code).await;
    assert_eq!(report["sub_indication"], "NOT_ACTIVE", "{report}");
    // Running the job again finds nothing more.
    let ctx = app.ctx.clone();
    let again = tokio::task::spawn_blocking(move || baohan::services::guarantees::expire_due(&ctx))
        .await
        .expect("task")
        .expect("expire");
    assert_eq!(again, 0);
}

crate::on_both_backends!(overdue_claims_are_flagged_and_lapsed_guarantees_expire);

/// An operator may drop CA certificates and CRLs into the certificates directory
/// instead of registering them through the API.
#[tokio::test]
async fn trust_anchors_in_the_certificates_directory_are_used() {
    use baohan::pki::demo::{DemoCa, IssuerSpec, KeyType};
    let certs = tempfile::tempdir().expect("dir");
    let ca = DemoCa::new("Directory CA", KeyType::Rsa2048).expect("ca");
    std::fs::write(
        certs.path().join("directory-ca.pem"),
        ca.cert.to_pem().expect("pem"),
    )
    .expect("write");
    let crl = ca
        .crl(
            &[],
            Utc::now() - chrono::Duration::hours(1),
            Utc::now() + chrono::Duration::days(30),
            1,
        )
        .expect("crl");
    std::fs::write(
        certs.path().join("directory-ca.crl"),
        crl.to_pem().expect("pem"),
    )
    .expect("write");
    let dir = certs.path().to_path_buf();
    let app = crate::helpers::spawn_sqlite_with(move |s| s.certs_dir = dir).await;

    let operator = app.login("operator").await;
    let mut spec = IssuerSpec::new("滨州城市商业银行", &demo_uscc("bank"));
    spec.key_type = KeyType::Rsa2048;
    spec.not_after = Utc::now() + chrono::Duration::days(90);
    let bank = ca.issue(&spec).expect("issuer");
    let bank_id = app.organization_id(&operator, &demo_uscc("bank")).await;
    let res = app
        .post(
            &operator,
            "/api/v1/admin/issuer-certificates",
            &json!({
                "organization_id": bank_id,
                "certificate_pem": String::from_utf8(bank.cert.to_pem().expect("pem")).expect("utf8"),
                "private_key_pem": String::from_utf8(bank.key.private_key_to_pem_pkcs8().expect("pem")).expect("utf8"),
            }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let project = create_project(&app, "BZ-DIR", 2).await;
    let section = project["sections"][0]["id"]
        .as_str()
        .expect("section")
        .to_owned();
    let application = paid_application(&app, "enterprise1", "bank", &section).await;
    let (number, code) = issue_hosted(&app, &application).await;
    let report = app.verify_json(&number, &code).await;
    assert_eq!(report["indication"], "PASSED", "{report}");
    let chain = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["id"] == "certificate_chain")
        .expect("chain check")
        .clone();
    assert!(
        chain["explanation"]
            .as_str()
            .unwrap_or_default()
            .contains("Directory CA"),
        "{chain}"
    );
}
