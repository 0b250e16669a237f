//! SM2 with SM3 (国密) through the exchange, on both databases: the operator trusts an
//! SM2 CA and its CRL, a guarantee company signs with a hosted SM2 key, an insurer signs
//! in its own system and uploads; the signatures are verified by the exchange, carry its
//! time-stamp, and are refused as the verification table says when forged.

use baohan::pki::cms_parse::parse_signed_data;
use baohan::pki::demo::RevokedSerial;
use baohan::pki::gm::{self, Sm2Ca, Sm2IssuedCert, Sm2IssuerSpec};
use chrono::{Duration, Utc};

use crate::fixtures::NewTender;
use crate::helpers::{demo_uscc, TestApp};
use crate::on_both_backends;

on_both_backends!(
    sm2_issuers_sign_hosted_and_external_and_the_exchange_verifies_both,
    forged_or_untrusted_sm2_signatures_are_refused_and_revocation_counts,
);

struct Sm2Pki {
    ca: Sm2Ca,
    insurer: Sm2IssuedCert,
    guarantor: Sm2IssuedCert,
}

fn crl_pem(ca: &Sm2Ca, revoked: &[RevokedSerial], number: u64) -> String {
    let now = Utc::now();
    let der = ca
        .crl(
            revoked,
            now - Duration::hours(1),
            now + Duration::days(90),
            number,
        )
        .expect("crl");
    let crl = openssl::x509::X509Crl::from_der(&der).expect("openssl reads the SM2 CRL");
    String::from_utf8(crl.to_pem().expect("pem")).expect("utf8")
}

fn issuer(ca: &Sm2Ca, username: &str, name: &str) -> Sm2IssuedCert {
    ca.issue(&Sm2IssuerSpec::new(name, &demo_uscc(username)))
        .expect("issuer certificate")
}

/// The operator trusts a fresh SM2 CA with a current CRL; the guarantor's SM2
/// certificate is registered with its key (hosted), the insurer's alone (external).
async fn set_up(app: &TestApp) -> Sm2Pki {
    let operator = app.as_operator().await;
    let ca = Sm2Ca::new("国密测试根CA").expect("ca");
    operator
        .trust_anchor("国密测试根CA", &ca.cert.to_pem())
        .await;
    operator.crl(&crl_pem(&ca, &[], 1)).await;
    let guarantor = issuer(&ca, "guarantor", "鲁信融资担保");
    let org = operator
        .organization_with_uscc(&demo_uscc("guarantor"))
        .await;
    let key = guarantor.key.to_pkcs8_pem().expect("key");
    operator
        .issuer_certificate(&org, &guarantor.cert.to_pem(), Some(key.as_str()))
        .await;
    let insurer = issuer(&ca, "insurer", "黄河财产保险");
    let org = operator.organization_with_uscc(&demo_uscc("insurer")).await;
    operator
        .issuer_certificate(&org, &insurer.cert.to_pem(), None)
        .await;
    Sm2Pki {
        ca,
        insurer,
        guarantor,
    }
}

fn sign(signer: &Sm2IssuedCert, bytes: &[u8]) -> Vec<u8> {
    gm::sign_detached(bytes, &signer.key, &signer.cert, &[], Utc::now()).expect("sign")
}

async fn sm2_issuers_sign_hosted_and_external_and_the_exchange_verifies_both(app: TestApp) {
    let pki = set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("GM-SM2-1", 3))
        .await;
    let section = &tender.sections[0];

    // Hosted: the exchange signs with the guarantor's SM2 key.
    let application = app
        .paid_application("enterprise1", "guarantor", section)
        .await;
    let hosted = app.as_issuer("guarantor").await.issue(&application).await;
    let enterprise = app.as_enterprise("enterprise1").await;
    let document = enterprise.download(&hosted, "document").await;
    let signature = enterprise.download(&hosted, "signature").await;
    let signed = parse_signed_data(&signature).expect("a CMS SignedData");
    assert_eq!(signed.signer.digest_algorithm, gm::oid::SM3.as_bytes());
    assert_eq!(
        signed.signer.signature_algorithm,
        gm::oid::SM2_WITH_SM3.as_bytes()
    );
    // The exchange's time-stamp token is attached (CAdES-T), and the SM2 signature
    // still verifies with the gm verifier, which ignores unsigned attributes.
    assert!(baohan::pki::timestamp_of(&signature)
        .expect("readable")
        .is_some());
    let verified = gm::verify_detached(
        &document,
        &signature,
        std::slice::from_ref(&pki.ca.cert),
        Utc::now(),
    )
    .expect("gm verifies the hosted signature");
    assert_eq!(verified.signer_subject, pki.guarantor.cert.subject());
    let report = app.verify(&hosted, &hosted.code).await;
    assert_eq!(report.indication, "PASSED", "{report:?}");
    assert!(
        report.signature_time_stamp.as_ref().is_some_and(|t| t.used),
        "{report:?}"
    );
    let chain = enterprise.download_text(&hosted, "chain").await;
    assert!(chain.contains("BEGIN CERTIFICATE"), "{chain}");

    // External: the insurer signs the draft in its own system and uploads it.
    let application = app
        .paid_application("enterprise2", "insurer", section)
        .await;
    let insurer = app.as_issuer("insurer").await;
    let draft = insurer.draft(&application).await;
    let external = insurer
        .upload_signature(&application, sign(&pki.insurer, &draft.bytes))
        .await;
    let report = app.verify(&external, &external.code).await;
    assert_eq!(report.indication, "PASSED", "{report:?}");
    let enterprise2 = app.as_enterprise("enterprise2").await;
    let document = enterprise2.download(&external, "document").await;
    assert_eq!(document, draft.bytes);
    let signature = enterprise2.download(&external, "signature").await;
    let report = app.verify_documents(&document, &signature).await;
    assert_eq!(report.indication, "PASSED", "{report:?}");
}

async fn forged_or_untrusted_sm2_signatures_are_refused_and_revocation_counts(app: TestApp) {
    let pki = set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("GM-SM2-2", 3))
        .await;
    let application = app
        .paid_application("enterprise1", "insurer", &tender.sections[0])
        .await;
    let insurer = app.as_issuer("insurer").await;
    let draft = insurer.draft(&application).await;

    let refused = |signature: Vec<u8>, sub: &'static str| {
        let insurer = &insurer;
        let application = &application;
        async move {
            let error = insurer
                .upload_signature(application, signature)
                .fails(422, "signature_rejected")
                .await;
            assert_eq!(error.sub_indication(), Some(sub), "{error:?}");
        }
    };
    // Over other bytes.
    refused(
        sign(&pki.insurer, b"{\"not\":\"the draft\"}"),
        "HASH_FAILURE",
    )
    .await;
    // A certificate from the trusted CA naming the insurer, registered to nobody.
    let rogue = issuer(&pki.ca, "insurer", "黄河财产保险");
    refused(sign(&rogue, &draft.bytes), "SIGNER_NOT_ISSUER").await;
    // A CA of the same name that the operator does not trust: no chain (and so not a
    // registered certificate either, which is the FAILED that decides).
    let impostor = Sm2Ca::new("国密测试根CA").expect("ca");
    let stranger = issuer(&impostor, "insurer", "黄河财产保险");
    let error = insurer
        .upload_signature(&application, sign(&stranger, &draft.bytes))
        .fails(422, "signature_rejected")
        .await;
    assert_eq!(
        error.sub_indication(),
        Some("SIGNER_NOT_ISSUER"),
        "{error:?}"
    );
    let chain = error
        .details
        .iter()
        .flat_map(|d| &d.checks)
        .find(|c| c.id == "certificate_chain")
        .expect("chain check");
    assert!(
        chain
            .explanation
            .contains("does not chain to a trusted SM2 CA"),
        "{chain:?}"
    );
    // The signature value altered in its last byte.
    let mut altered = sign(&pki.insurer, &draft.bytes);
    let value_end = {
        let sd = parse_signed_data(&altered).expect("parse");
        sd.signer.signature.as_ptr() as usize - altered.as_ptr() as usize
            + sd.signer.signature.len()
    };
    altered[value_end - 1] ^= 0x01;
    refused(altered, "SIG_CRYPTO_FAILURE").await;
    // Truncated.
    let mut truncated = sign(&pki.insurer, &draft.bytes);
    truncated.truncate(truncated.len() / 2);
    refused(truncated, "FORMAT_FAILURE").await;

    // Nothing was issued by all that; the real signature is then accepted.
    let bond = insurer
        .upload_signature(&application, sign(&pki.insurer, &draft.bytes))
        .await;
    assert_eq!(app.verify(&bond, &bond.code).await.indication, "PASSED");

    // Ten minutes on, the CA revokes the insurer's certificate as of five minutes ago.
    // The exchange's time-stamp proves the bond's signature existed before: it stays
    // valid. A signature without one is judged now, after the revocation.
    app.advance_clock(Duration::minutes(10));
    let revoked = RevokedSerial {
        serial_hex: pki.insurer.cert.serial_hex(),
        revoked_at: Utc::now() + Duration::minutes(5),
    };
    app.as_operator()
        .await
        .crl(&crl_pem(&pki.ca, &[revoked], 2))
        .await;
    let report = app.verify(&bond, &bond.code).await;
    assert_eq!(report.indication, "PASSED", "{report:?}");
    let document = app
        .as_enterprise("enterprise1")
        .await
        .download(&bond, "document")
        .await;
    let fresh = sign(&pki.insurer, &document);
    let report = app.verify_documents(&document, &fresh).await;
    assert_eq!(report.indication, "FAILED", "{report:?}");
    assert_eq!(report.sub_indication.as_deref(), Some("REVOKED"));
}
