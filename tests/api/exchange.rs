//! The exchange end to end over HTTP, on both databases: trust set-up by the operator,
//! applications, hosted and external issuing (the latter signed by the `openssl` tool),
//! interoperable signatures, confidentiality before opening, bulk verification, award,
//! contract, a paid claim, and the mails each step sends to a real SMTP server.

use chrono::TimeDelta;

use crate::fixtures::library::ChainCheck;
use crate::fixtures::outbox::{smtp_delivery, WAIT};
use crate::fixtures::smtp::{Mode, SmtpServer};
use crate::fixtures::{NewClaim, NewTender, TestPki};
use crate::helpers::{demo_uscc, TestBackend};

async fn the_guarantee_lifecycle_end_to_end(backend: TestBackend) {
    let smtp = SmtpServer::start(Mode::Accept).await;
    let app = backend.spawn_with(smtp_delivery(smtp.port, None)).await;
    let pki = TestPki::set_up(&app).await;
    let agency = app.as_agency().await;
    let tender = agency
        .create_project(&NewTender::two_sections("BZ-E2E-1", 3))
        .await;
    let section_a = &tender.sections[0];

    // Enterprise 1 through the bank (hosted signing).
    let bond1 = app.issued_bond("enterprise1", section_a).await;

    // Enterprise 2 through the insurer (external signing with the openssl tool).
    let application2 = app
        .paid_application("enterprise2", "insurer", section_a)
        .await;
    let insurer = app.as_issuer("insurer").await;
    let draft = insurer.draft(&application2).await;
    // The draft is stable: fetching again gives the same bytes.
    assert_eq!(draft.bytes, insurer.draft(&application2).await.bytes);

    // A signature by a certificate not registered to the insurer is refused.
    pki.unregistered_signer("rogue", "黄河财产保险", "insurer");
    let error = insurer
        .upload_signature(&application2, pki.sign(&draft.bytes, "rogue"))
        .fails(422, "signature_rejected")
        .await;
    assert_eq!(
        error.sub_indication(),
        Some("SIGNER_NOT_ISSUER"),
        "{error:?}"
    );
    // A signature over other bytes is refused too.
    let other = pki.sign(b"{\"not\":\"the draft\"}", "insurer");
    insurer
        .upload_signature(&application2, other)
        .fails(422, "signature_rejected")
        .await;
    // The real one is accepted.
    let good = pki.sign(&draft.bytes, "insurer");
    let bond2 = insurer.upload_signature_base64(&application2, &good).await;

    // A second project, opening a day earlier, for a bond that will be claimed.
    let tender2 = agency
        .create_project(&NewTender::two_sections("BZ-E2E-2", 2))
        .await;
    let bond3 = app.issued_bond("enterprise2", &tender2.sections[1]).await;

    // Interoperability: the stock openssl tool verifies what the exchange issued.
    let enterprise1 = app.as_enterprise("enterprise1").await;
    let document = enterprise1.download(&bond1, "document").await;
    let signature = enterprise1.download(&bond1, "signature").await;
    let chain = enterprise1.download_text(&bond1, "chain").await;
    assert!(
        chain.matches("BEGIN CERTIFICATE").count() >= 2,
        "signer and CA: {chain}"
    );
    if let Err(e) = pki.openssl_verify(&document, &signature) {
        panic!("openssl cms -verify: {e}");
    }
    let mut tampered = document.clone();
    let at = tampered
        .iter()
        .position(|b| *b == b'8')
        .expect("a digit to change");
    tampered[at] = b'9';
    assert!(
        pki.openssl_verify(&tampered, &signature).is_err(),
        "a changed document must not verify"
    );

    // The printable letter carries the amount in capitals and the code.
    let letter = enterprise1.download_text(&bond1, "letter").await;
    assert!(letter.contains("人民币捌万元整"), "amount in words");
    assert!(letter.contains(&bond1.code), "verification code printed");
    assert!(letter.contains("<svg"), "QR code");

    // Before opening the bonds are sealed: the agency sees nothing.
    agency.bonds(&tender).fails(403, "forbidden").await;
    agency.guarantee(&bond1).fails(404, "not_found").await;
    // The bidder can prove its bond with the number and code.
    let report = app.verify(&bond1, &bond1.code).await;
    assert_eq!(report.indication, "PASSED", "{report:?}");
    // A wrong code looks like an unknown number.
    app.verify(&bond1, "ABCDEFGH").fails(404, "not_found").await;

    // Bid opening: every bond verifies against the tender's own expectations.
    app.advance_clock(TimeDelta::days(3) + TimeDelta::hours(1));
    // Sessions last 12 hours: sign in again after the days have passed.
    let agency = app.as_agency().await;
    let bulk = agency.verify_bulk(&tender).await;
    assert_eq!(bulk.count, 2, "{bulk:?}");
    assert_eq!(bulk.passed, 2, "{bulk:?}");
    for bond in [&bond1, &bond2] {
        assert_eq!(agency.accept(bond).await.status, "accepted");
    }
    // Accepting twice is refused naming the state.
    let error = agency.accept(&bond1).fails(409, "invalid_transition").await;
    assert_eq!(error.current_state(), Some("accepted"));

    // Award to enterprise 1: enterprise 2's bond is released.
    let award = agency.award(&tender, section_a, &enterprise1).await;
    assert_eq!(award.released, std::slice::from_ref(&bond2.number));
    let contract = agency.contract_signed(&tender, section_a).await;
    assert_eq!(contract.released, std::slice::from_ref(&bond1.number));
    let report = app.verify(&bond2, &bond2.code).await;
    assert_eq!(report.indication, "FAILED");
    assert_eq!(report.sub_indication.as_deref(), Some("NOT_ACTIVE"));

    // The second project (opened meanwhile) ends in a claim that is paid.
    let demand = |amount| NewClaim::new("refused_to_sign_contract", "中标后拒签合同", amount);
    let error = agency
        .claim(&bond3, &demand("50000.01"))
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("amount"), "more than the guarantee");
    let claim = agency.claim(&bond3, &demand("50000.00")).await;
    assert_eq!(claim.guarantee.status, "claimed");
    assert!(!claim.overdue);
    let decided = app.as_issuer("bank").await.decide(&claim, "pay").await;
    assert_eq!(decided.status, "paid");
    assert_eq!(decided.guarantee.status, "paid");
    // The bidder's credit archive holds the paid claim as a negative record in force.
    let archive = app.as_enterprise("enterprise2").await.credit_me().await;
    let paid: Vec<_> = archive
        .records
        .iter()
        .filter(|r| r.category == "bid_bond_claim_paid")
        .collect();
    assert_eq!(paid.len(), 1, "{archive:?}");
    assert!(paid[0].in_force && paid[0].contribution < 0, "{paid:?}");
    assert_eq!(paid[0].source_ref, format!("claim:{}", claim.id));
    assert_eq!(
        archive.subject.masked_id.as_deref(),
        Some(demo_uscc("enterprise2").as_str())
    );

    // The mails: application received (issuer), issued (bidder), released, claim filed
    // (issuer, bidder) and decided (bidder, agency), and the bidder's credit level
    // change after the paid claim went to the SMTP server.
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
        ("enterprise2@", "credit level changed"),
    ];
    let received = smtp.wait_for(13, WAIT).await;
    for (to, word) in expect {
        assert!(
            received
                .iter()
                .any(|m| m.is_to(to) && m.data.to_lowercase().contains(word)),
            "a mail to {to} about {word}; got {:?}",
            received
                .iter()
                .map(|m| (&m.recipients, m.subject_line()))
                .collect::<Vec<_>>()
        );
    }
    assert!(
        !received
            .iter()
            .any(|m| m.is_to("agency@") && m.data.contains("issued")),
        "the agency is not told who bids before opening"
    );
    assert!(matches!(app.audit_chain(), ChainCheck::Intact { .. }));
}

crate::on_both_backends!(configured: the_guarantee_lifecycle_end_to_end);
