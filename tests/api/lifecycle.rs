//! Time-driven parts of the lifecycle: claim decision deadlines and expiry; and trust
//! anchors dropped into the certificates directory.

use chrono::{DateTime, TimeDelta, Utc};

use crate::fixtures::outbox::MailStatus;
use crate::fixtures::{crl_pem, key_pem, pem, DemoCa, IssuerSpec, KeyType};
use crate::fixtures::{NewClaim, NewTender, TestPki};
use crate::helpers::{demo_uscc, TestApp};

async fn overdue_claims_are_flagged_and_lapsed_guarantees_expire(app: TestApp) {
    TestPki::set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-TIME", 2))
        .await;
    let claimed = app.issued_bond("enterprise1", &tender.sections[0]).await;
    let lapsing = app.issued_bond("enterprise2", &tender.sections[1]).await;

    app.advance_clock(TimeDelta::days(2) + TimeDelta::hours(1));
    let demand = NewClaim::new("withdrew_after_deadline", "撤回投标", "80000.00");
    let claim = app.as_agency().await.claim(&claimed, &demand).await;
    assert!(!claim.overdue);
    let filed = DateTime::parse_from_rfc3339(&claim.filed_at).expect("time");
    let decide_by = DateTime::parse_from_rfc3339(&claim.decide_by).expect("time");
    let days = (decide_by - filed).num_days();
    assert!(
        (5..=9).contains(&days),
        "5 business days is 5 to 9 calendar days, got {days}"
    );

    // Past the deadline the issuer's list flags it.
    app.advance_clock(TimeDelta::days(10));
    let claims = app.as_issuer("bank").await.claims().await;
    assert!(claims[0].overdue, "{claims:?}");

    // A week before the end of validity the bidder is told, once; the claimed bond is
    // not in force and gets no notice.
    app.advance_clock(TimeDelta::days(45));
    assert_eq!(app.send_expiry_notices().await, 1);
    assert_eq!(app.send_expiry_notices().await, 0, "sent once");
    let queued = app.outbox(MailStatus::Pending).await;
    let expiring = queued
        .iter()
        .filter(|m| m.subject.starts_with("保函即将到期") && m.subject.ends_with(&lapsing.number))
        .count();
    assert_eq!(
        expiring,
        1,
        "{:?}",
        queued.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );

    // When validity ends the background job expires the bond; the claimed one waits
    // for its decision instead.
    app.advance_clock(TimeDelta::days(15));
    assert_eq!(app.expire_due().await, 1);
    let enterprise2 = app.as_enterprise("enterprise2").await;
    assert_eq!(enterprise2.guarantee(&lapsing).await.status, "expired");
    let enterprise1 = app.as_enterprise("enterprise1").await;
    assert_eq!(enterprise1.guarantee(&claimed).await.status, "claimed");
    let report = app.verify(&lapsing, &lapsing.code).await;
    assert_eq!(
        report.sub_indication.as_deref(),
        Some("NOT_ACTIVE"),
        "{report:?}"
    );
    // Running the job again finds nothing more.
    assert_eq!(app.expire_due().await, 0);
}

crate::on_both_backends!(overdue_claims_are_flagged_and_lapsed_guarantees_expire);

/// An operator may drop CA certificates and CRLs into the certificates directory
/// instead of registering them through the API.
#[tokio::test]
async fn trust_anchors_in_the_certificates_directory_are_used() {
    let certs = tempfile::tempdir().expect("dir");
    let ca = DemoCa::new("Directory CA", KeyType::Rsa2048).expect("ca");
    let write = |name: &str, text: String| {
        std::fs::write(certs.path().join(name), text).expect("write");
    };
    write("directory-ca.pem", pem(&ca.cert));
    write("directory-ca.crl", crl_pem(&ca, TimeDelta::days(30)));
    let dir = certs.path().to_path_buf();
    let app = crate::helpers::spawn_sqlite_with(move |s| s.certs_dir = dir).await;

    let mut spec = IssuerSpec::new("滨州城市商业银行", &demo_uscc("bank"));
    spec.key_type = KeyType::Rsa2048;
    spec.not_after = Utc::now() + TimeDelta::days(90);
    let certificate = ca.issue(&spec).expect("issuer");
    let operator = app.as_operator().await;
    let bank = operator.organization_with_uscc(&demo_uscc("bank")).await;
    let key = key_pem(&certificate.key);
    operator
        .issuer_certificate(&bank, &pem(&certificate.cert), Some(&key))
        .await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-DIR", 2))
        .await;
    let bond = app.issued_bond("enterprise1", &tender.sections[0]).await;
    let report = app.verify(&bond, &bond.code).await;
    assert_eq!(report.indication, "PASSED", "{report:?}");
    let chain = report.check("certificate_chain");
    assert!(chain.explanation.contains("Directory CA"), "{chain:?}");
}
