//! CAdES-T: every signature the exchange accepts carries the exchange's own RFC 3161
//! time-stamp token, which stock tools accept; a signature that brings a token of its
//! own is refused.

use baohan::pki::demo::{time_stamp_authority, DemoCa, KeyType};
use baohan::pki::{timestamp, TsaTrust};
use chrono::{TimeDelta, Utc};

use crate::fixtures::{NewTender, TestPki};
use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    accepted_signatures_carry_the_exchanges_time_stamp,
    a_signature_bringing_its_own_time_stamp_is_refused,
);

async fn accepted_signatures_carry_the_exchanges_time_stamp(app: TestApp) {
    let pki = TestPki::set_up(&app).await;
    let agency = app.as_agency().await;
    let tender = agency
        .create_project(&NewTender::two_sections("BZ-TST-1", 3))
        .await;
    let before = Utc::now() - TimeDelta::seconds(1);
    let bond = app.issued_bond("enterprise1", &tender.sections[0]).await;
    let enterprise = app.as_enterprise("enterprise1").await;
    let document = enterprise.download(&bond, "document").await;
    let signature = enterprise.download(&bond, "signature").await;

    // The token is the exchange's, over this signature's value, at the time of issue.
    let tsa_dir = app.settings.tsa_dir();
    let root = std::fs::read(tsa_dir.join("root/ca.pem")).expect("TSA root");
    let trust = TsaTrust::from_pem(&root).expect("TSA trust");
    let stamp = timestamp::verify_signature_timestamp(&signature, &trust)
        .expect("a valid token")
        .expect("a token");
    assert!(stamp.gen_time >= before && stamp.gen_time <= Utc::now() + TimeDelta::seconds(1));

    // Stock tools agree: the token verifies with `openssl ts`, the signature with
    // `openssl cms` (the unsigned attribute breaks nothing).
    let token = timestamp::timestamp_of(&signature)
        .expect("readable")
        .expect("a token");
    let value = timestamp::signature_value(&signature).expect("signature value");
    let tsa_cert = std::fs::read(tsa_dir.join("tsa.pem")).expect("TSA certificate");
    if let Err(e) = pki.openssl_ts_verify(token, value, &root, &tsa_cert) {
        panic!("openssl ts -verify: {e}");
    }
    if let Err(e) = pki.openssl_verify(&document, &signature) {
        panic!("openssl cms -verify: {e}");
    }
    // A token is bound to its signature: it is no proof for another one.
    let other = pki.sign(b"{\"other\":\"document\"}", "insurer");
    assert!(timestamp::add_signature_timestamp(&other, token).is_err());
}

async fn a_signature_bringing_its_own_time_stamp_is_refused(app: TestApp) {
    let pki = TestPki::set_up(&app).await;
    let agency = app.as_agency().await;
    let tender = agency
        .create_project(&NewTender::two_sections("BZ-TST-2", 3))
        .await;
    let application = app
        .paid_application("enterprise1", "insurer", &tender.sections[0])
        .await;
    let insurer = app.as_issuer("insurer").await;
    let draft = insurer.draft(&application).await;
    let signature = pki.sign(&draft.bytes, "insurer");

    // A token from a time-stamping authority of the issuer's choosing, backdated a year.
    let ca = DemoCa::new("Friendly TSA Root", KeyType::EcP256).expect("CA");
    let friendly = time_stamp_authority(&ca, "Friendly TSA").expect("TSA");
    let backdated = friendly.stamp_signature(&signature, Utc::now() - TimeDelta::days(365), None);
    // The TSA certificate is new, so a year back is outside it; a day back is not.
    let stamped = backdated
        .or_else(|_| friendly.stamp_signature(&signature, Utc::now() - TimeDelta::hours(1), None));
    let stamped = stamped.expect("stamped");
    let error = insurer
        .upload_signature(&application, stamped)
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("signature"));
    // Nothing was issued: the plain signature is still accepted afterwards.
    insurer.upload_signature(&application, signature).await;
}
