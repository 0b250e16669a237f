//! The exchange end to end over HTTP, on both databases: trust set-up by the operator,
//! applications, hosted and external issuing (the latter signed by the `openssl` tool),
//! interoperable signatures, confidentiality before opening, bulk verification, award,
//! contract, a paid claim, and the mails each step sends to a real SMTP server.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use baohan::config::{MailTransport, SmtpSecurity};
use baohan::pki::demo::{DemoCa, IssuedCert, IssuerSpec, KeyType};
use base64::Engine as _;
use chrono::Utc;
use serde_json::{json, Value};

use crate::fixtures::smtp::{Mode, SmtpServer};
use crate::helpers::{assert_error, demo_uscc, TestApp, TestBackend};

/// The test PKI: a CA the operator trusts, a hosted key for the bank, an external
/// (in-house) key for the insurer. Nothing of it is written outside a temp dir.
pub struct Pki {
    pub ca: DemoCa,
    pub insurer: IssuedCert,
    pub dir: tempfile::TempDir,
}

fn pem(cert: &openssl::x509::X509) -> String {
    String::from_utf8(cert.to_pem().expect("pem")).expect("utf8")
}

pub async fn setup_pki(app: &TestApp) -> Pki {
    let operator = app.login("operator").await;
    let ca = DemoCa::new("Baohan Test CA", KeyType::EcP256).expect("CA");
    let res = app
        .post(
            &operator,
            "/api/v1/admin/trust-anchors",
            &json!({ "name": "test CA", "certificate_pem": pem(&ca.cert) }),
        )
        .await;
    assert_eq!(
        res.status(),
        201,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let crl = ca
        .crl(
            &[],
            Utc::now() - chrono::Duration::hours(1),
            Utc::now() + chrono::Duration::days(90),
            1,
        )
        .expect("crl");
    let crl_pem = String::from_utf8(crl.to_pem().expect("pem")).expect("utf8");
    let res = app
        .post(
            &operator,
            "/api/v1/admin/crls",
            &json!({ "crl_pem": crl_pem }),
        )
        .await;
    assert_eq!(res.status(), 201);

    let issuer = |username: &str, name: &str| {
        let mut spec = IssuerSpec::new(name, &demo_uscc(username));
        spec.not_after = Utc::now() + chrono::Duration::days(365);
        ca.issue(&spec).expect("issuer certificate")
    };
    let bank = issuer("bank", "滨州城市商业银行");
    let bank_id = app.organization_id(&operator, &demo_uscc("bank")).await;
    let key_pem =
        String::from_utf8(bank.key.private_key_to_pem_pkcs8().expect("key")).expect("utf8");
    let res = app
        .post(
            &operator,
            "/api/v1/admin/issuer-certificates",
            &json!({ "organization_id": bank_id, "certificate_pem": pem(&bank.cert), "private_key_pem": key_pem }),
        )
        .await;
    assert_eq!(
        res.status(),
        201,
        "{}",
        res.text().await.unwrap_or_default()
    );

    let insurer = issuer("insurer", "黄河财产保险");
    let insurer_id = app.organization_id(&operator, &demo_uscc("insurer")).await;
    let res = app
        .post(
            &operator,
            "/api/v1/admin/issuer-certificates",
            &json!({ "organization_id": insurer_id, "certificate_pem": pem(&insurer.cert) }),
        )
        .await;
    assert_eq!(res.status(), 201);

    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("ca.pem"), pem(&ca.cert)).expect("write");
    std::fs::write(dir.path().join("insurer.pem"), pem(&insurer.cert)).expect("write");
    std::fs::write(
        dir.path().join("insurer.key"),
        insurer.key.private_key_to_pem_pkcs8().expect("key"),
    )
    .expect("write");
    Pki { ca, insurer, dir }
}

/// A project opening `days` from now, with two sections.
pub async fn create_project(app: &TestApp, code: &str, days: i64) -> Value {
    let agency = app.login("agency").await;
    let deadline = (Utc::now() + chrono::Duration::days(days)).to_rfc3339();
    let res = app
        .post(
            &agency,
            "/api/v1/projects",
            &json!({
                "code": code, "name": "滨州港疏港路改建工程", "tenderee_uscc": demo_uscc("tenderee"),
                "bid_deadline": deadline, "bid_opening_at": deadline, "bid_validity_days": 60,
                "sections": [
                    { "code": "A", "name": "路基", "bond_amount": "80000.00", "estimated_price": "4000000.00" },
                    { "code": "B", "name": "桥梁", "bond_amount": "50000.00" }
                ]
            }),
        )
        .await;
    assert_eq!(res.status(), 201);
    res.json().await.expect("project")
}

/// Applies, approves and confirms payment; returns the application id.
pub async fn paid_application(
    app: &TestApp,
    enterprise: &str,
    issuer: &str,
    section_id: &str,
) -> String {
    let ent = app.login(enterprise).await;
    let operator = app.login("operator").await;
    let issuer_id = app.organization_id(&operator, &demo_uscc(issuer)).await;
    let res = app
        .post(
            &ent,
            "/api/v1/applications",
            &json!({ "section_id": section_id, "issuer_id": issuer_id }),
        )
        .await;
    assert_eq!(
        res.status(),
        201,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let application: Value = res.json().await.expect("json");
    let id = application["id"].as_str().expect("id").to_owned();
    let iss = app.login(issuer).await;
    let res = app
        .post(
            &iss,
            &format!("/api/v1/applications/{id}/approve"),
            &json!({ "premium": "960.00" }),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.expect("json")["status"],
        "approved"
    );
    let res = app
        .post(
            &iss,
            &format!("/api/v1/applications/{id}/confirm-payment"),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    id
}

/// Uploads a DER signature for an application, as an issuer's own system would.
pub async fn upload_signature(
    app: &TestApp,
    token: &str,
    application_id: &str,
    signature: Vec<u8>,
) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/applications/{application_id}/signature")))
        .bearer_auth(token)
        .header("content-type", "application/pkcs7-signature")
        .body(signature)
        .send()
        .await
        .expect("upload")
}

/// Issues with the bank's hosted key; returns (number, verification code).
pub async fn issue_hosted(app: &TestApp, application_id: &str) -> (String, String) {
    let bank = app.login("bank").await;
    let res = app
        .post(
            &bank,
            &format!("/api/v1/applications/{application_id}/issue"),
            &json!({}),
        )
        .await;
    assert_eq!(
        res.status(),
        201,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let issued: Value = res.json().await.expect("json");
    (
        issued["guarantee"]["number"]
            .as_str()
            .expect("number")
            .to_owned(),
        issued["verification_code"]
            .as_str()
            .expect("code")
            .to_owned(),
    )
}

fn openssl(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs")
}

/// Signs the draft with the `openssl` tool, as an issuer's own system would.
pub fn sign_with_openssl(dir: &Path, draft: &[u8], cert: &str, key: &str) -> Vec<u8> {
    std::fs::write(dir.join("draft.json"), draft).expect("write");
    let out = openssl(
        &[
            "cms",
            "-sign",
            "-binary",
            "-outform",
            "DER",
            "-md",
            "sha256",
            "-cades",
            "-in",
            "draft.json",
            "-signer",
            cert,
            "-inkey",
            key,
            "-out",
            "draft.p7s",
        ],
        dir,
    );
    assert!(
        out.status.success(),
        "openssl cms -sign: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(dir.join("draft.p7s")).expect("signature")
}

async fn the_guarantee_lifecycle_end_to_end(backend: TestBackend) {
    let smtp = SmtpServer::start(Mode::Accept).await;
    let port = smtp.port;
    let app = backend
        .spawn_with(move |s| {
            s.mail_transport = MailTransport::Smtp;
            s.smtp_host = "127.0.0.1".into();
            s.smtp_port = port;
            s.smtp_security = SmtpSecurity::None;
            s.mail_poll_interval_ms = 50;
            s.mail_retry_base_ms = 100;
        })
        .await;
    let pki = setup_pki(&app).await;
    let project = create_project(&app, "BZ-E2E-1", 3).await;
    let project_id = project["id"].as_str().expect("id").to_owned();
    let section_a = project["sections"][0]["id"]
        .as_str()
        .expect("section")
        .to_owned();

    // Enterprise 1 through the bank (hosted signing).
    let app1 = paid_application(&app, "enterprise1", "bank", &section_a).await;
    let (number1, code1) = issue_hosted(&app, &app1).await;

    // Enterprise 2 through the insurer (external signing with the openssl tool).
    let app2 = paid_application(&app, "enterprise2", "insurer", &section_a).await;
    let insurer = app.login("insurer").await;
    let res = app
        .get(&insurer, &format!("/api/v1/applications/{app2}/draft"))
        .await;
    assert_eq!(res.status(), 200);
    let draft = res.bytes().await.expect("draft").to_vec();
    // The draft is stable: fetching again gives the same bytes.
    let again = app
        .get(&insurer, &format!("/api/v1/applications/{app2}/draft"))
        .await
        .bytes()
        .await
        .expect("again");
    assert_eq!(draft, again.to_vec());

    // A signature by a certificate not registered to the insurer is refused.
    let mut rogue_spec = IssuerSpec::new("黄河财产保险", &demo_uscc("insurer"));
    rogue_spec.not_after = Utc::now() + chrono::Duration::days(30);
    let rogue = pki.ca.issue(&rogue_spec).expect("rogue");
    std::fs::write(pki.dir.path().join("rogue.pem"), pem(&rogue.cert)).expect("write");
    std::fs::write(
        pki.dir.path().join("rogue.key"),
        rogue.key.private_key_to_pem_pkcs8().expect("key"),
    )
    .expect("w");
    let bad = sign_with_openssl(pki.dir.path(), &draft, "rogue.pem", "rogue.key");
    let res = upload_signature(&app, &insurer, &app2, bad).await;
    let error = assert_error(res, 422, "signature_rejected").await;
    assert_eq!(
        error["details"]["sub_indication"], "SIGNER_NOT_ISSUER",
        "{error}"
    );
    // A signature over other bytes is refused too.
    let other = sign_with_openssl(
        pki.dir.path(),
        b"{\"not\":\"the draft\"}",
        "insurer.pem",
        "insurer.key",
    );
    let res = upload_signature(&app, &insurer, &app2, other).await;
    assert_error(res, 422, "signature_rejected").await;
    // The real one is accepted.
    let good = sign_with_openssl(pki.dir.path(), &draft, "insurer.pem", "insurer.key");
    let res = app
        .post(
            &insurer,
            &format!("/api/v1/applications/{app2}/signature"),
            &json!({ "signature_base64": base64::engine::general_purpose::STANDARD.encode(&good) }),
        )
        .await;
    assert_eq!(
        res.status(),
        201,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let issued2: Value = res.json().await.expect("json");
    let number2 = issued2["guarantee"]["number"]
        .as_str()
        .expect("number")
        .to_owned();
    let code2 = issued2["verification_code"]
        .as_str()
        .expect("code")
        .to_owned();
    let _ = &pki.insurer;

    // A second project, opening a day earlier, for a bond that will be claimed.
    let project2 = create_project(&app, "BZ-E2E-2", 2).await;
    let section2 = project2["sections"][1]["id"]
        .as_str()
        .expect("section")
        .to_owned();
    let app3 = paid_application(&app, "enterprise2", "bank", &section2).await;
    let (number3, _) = issue_hosted(&app, &app3).await;

    // Interoperability: the stock openssl tool verifies what the exchange issued.
    let ent1 = app.login("enterprise1").await;
    let doc = app
        .get(&ent1, &format!("/api/v1/guarantees/{number1}/document"))
        .await
        .bytes()
        .await
        .expect("doc");
    let sig = app
        .get(&ent1, &format!("/api/v1/guarantees/{number1}/signature"))
        .await
        .bytes()
        .await
        .expect("sig");
    let chain = app
        .get(&ent1, &format!("/api/v1/guarantees/{number1}/chain"))
        .await
        .text()
        .await
        .expect("chain");
    assert!(
        chain.matches("BEGIN CERTIFICATE").count() >= 2,
        "signer and CA: {chain}"
    );
    let dir = pki.dir.path();
    std::fs::write(dir.join("NO.json"), &doc).expect("write");
    std::fs::write(dir.join("NO.p7s"), &sig).expect("write");
    let verify = [
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        "NO.p7s",
        "-content",
        "NO.json",
        "-CAfile",
        "ca.pem",
        "-out",
        "/dev/null",
    ];
    let out = openssl(&verify, dir);
    assert!(
        out.status.success(),
        "openssl cms -verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut tampered = doc.to_vec();
    let at = tampered
        .iter()
        .position(|b| *b == b'8')
        .expect("a digit to change");
    tampered[at] = b'9';
    std::fs::write(dir.join("NO.json"), &tampered).expect("write");
    let out = openssl(&verify, dir);
    assert!(!out.status.success(), "a changed document must not verify");

    // The printable letter carries the amount in capitals and the code.
    let letter = app
        .get(&ent1, &format!("/api/v1/guarantees/{number1}/letter"))
        .await
        .text()
        .await
        .expect("letter");
    assert!(letter.contains("人民币捌万元整"), "amount in words");
    assert!(letter.contains(&code1), "verification code printed");
    assert!(letter.contains("<svg"), "QR code");

    // Before opening the bonds are sealed: the agency sees nothing.
    let agency = app.login("agency").await;
    let res = app
        .get(&agency, &format!("/api/v1/projects/{project_id}/bonds"))
        .await;
    assert_error(res, 403, "forbidden").await;
    let res = app
        .get(&agency, &format!("/api/v1/guarantees/{number1}"))
        .await;
    assert_error(res, 404, "not_found").await;
    // The bidder can prove its bond with the number and code.
    let report = app.verify_json(&number1, &code1).await;
    assert_eq!(report["indication"], "PASSED", "{report}");
    // A wrong code looks like an unknown number.
    let res = app
        .client
        .post(app.url("/api/v1/verify"))
        .json(&json!({ "number": number1, "code": "ABCDEFGH" }))
        .send()
        .await
        .expect("verify");
    assert_error(res, 404, "not_found").await;

    // Bid opening: every bond verifies against the tender's own expectations.
    app.ctx
        .clock
        .advance(chrono::Duration::days(3) + chrono::Duration::hours(1));
    // Sessions last 12 hours: sign in again after the days have passed.
    let agency = app.login("agency").await;
    let res = app
        .post(
            &agency,
            "/api/v1/verify/bulk",
            &json!({ "project_id": project_id }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let bulk: Value = res.json().await.expect("json");
    assert_eq!(bulk["count"], 2, "{bulk}");
    assert_eq!(bulk["passed"], 2, "{bulk}");
    for number in [&number1, &number2] {
        let res = app
            .post(
                &agency,
                &format!("/api/v1/guarantees/{number}/accept"),
                &json!({}),
            )
            .await;
        assert_eq!(res.status(), 200);
        assert_eq!(
            res.json::<Value>().await.expect("json")["status"],
            "accepted"
        );
    }
    // Accepting twice is refused naming the state.
    let res = app
        .post(
            &agency,
            &format!("/api/v1/guarantees/{number1}/accept"),
            &json!({}),
        )
        .await;
    let error = assert_error(res, 409, "invalid_transition").await;
    assert_eq!(error["details"]["current_state"], "accepted");

    // Award to enterprise 1: enterprise 2's bond is released.
    let operator = app.login("operator").await;
    let winner = app
        .organization_id(&operator, &demo_uscc("enterprise1"))
        .await;
    let res = app
        .post(
            &agency,
            &format!("/api/v1/projects/{project_id}/sections/{section_a}/award"),
            &json!({ "winner_enterprise_id": winner }),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.expect("json")["released"],
        json!([number2])
    );
    let res = app
        .post(
            &agency,
            &format!("/api/v1/projects/{project_id}/sections/{section_a}/contract"),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.expect("json")["released"],
        json!([number1])
    );
    let report = app.verify_json(&number2, &code2).await;
    assert_eq!(report["indication"], "FAILED");
    assert_eq!(report["sub_indication"], "NOT_ACTIVE");

    // The second project (opened meanwhile) ends in a claim that is paid.
    let res = app
        .post(
            &agency,
            &format!("/api/v1/guarantees/{number3}/claims"),
            &json!({ "reason_code": "refused_to_sign_contract", "statement": "中标后拒签合同", "amount": "50000.01" }),
        )
        .await;
    let error = assert_error(res, 422, "validation_failed").await;
    assert_eq!(
        error["details"]["field"], "amount",
        "more than the guarantee"
    );
    let res = app
        .post(
            &agency,
            &format!("/api/v1/guarantees/{number3}/claims"),
            &json!({ "reason_code": "refused_to_sign_contract", "statement": "中标后拒签合同", "amount": "50000.00" }),
        )
        .await;
    assert_eq!(
        res.status(),
        201,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let claim: Value = res.json().await.expect("json");
    assert_eq!(claim["guarantee"]["status"], "claimed");
    assert_eq!(claim["overdue"], false);
    let bank = app.login("bank").await;
    let claim_id = claim["id"].as_str().expect("id");
    let res = app
        .post(
            &bank,
            &format!("/api/v1/claims/{claim_id}/decision"),
            &json!({ "decision": "pay" }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let decided: Value = res.json().await.expect("json");
    assert_eq!(decided["status"], "paid");
    assert_eq!(decided["guarantee"]["status"], "paid");
    let events =
        baohan::services::guarantees::credit_events_of(&app.ctx, &demo_uscc("enterprise2"))
            .expect("events");
    assert_eq!(events.len(), 1);
    assert!(!events[0].positive);
    assert_eq!(events[0].amount_fen, Some(5_000_000));

    // The mails: application received (issuer), issued (bidder), released, claim filed
    // (issuer, bidder) and decided (bidder, agency) went to the SMTP server.
    let expect = [
        ("bank@", "application"),
        ("insurer@", "application"),
        ("enterprise1@", "issued"),
        ("enterprise2@", "issued"),
        ("enterprise2@", "released"),
        ("enterprise1@", "released"),
        ("bank@", "claim"),
        ("enterprise2@", "claim"),
        ("agency@", "claim"),
    ];
    let received = smtp.wait_for(12, Duration::from_secs(20)).await;
    for (to, word) in expect {
        assert!(
            received
                .iter()
                .any(|m| m.recipients.iter().any(|r| r.starts_with(to))
                    && m.data.to_lowercase().contains(word)),
            "a mail to {to} about {word}; got {:?}",
            received
                .iter()
                .map(|m| (
                    &m.recipients,
                    m.data.lines().find(|l| l.starts_with("Subject"))
                ))
                .collect::<Vec<_>>()
        );
    }
    assert!(
        !received
            .iter()
            .any(|m| m.recipients.iter().any(|r| r.starts_with("agency@"))
                && m.data.contains("issued")),
        "the agency is not told who bids before opening"
    );
    assert!(matches!(
        app.audit_chain(),
        baohan::db::audit::ChainCheck::Intact { .. }
    ));
}

crate::on_both_backends!(configured: the_guarantee_lifecycle_end_to_end);
