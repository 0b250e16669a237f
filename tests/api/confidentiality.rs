//! Before bid opening nobody but a bond's bidder and issuer learns anything of it: not
//! from public verification, not from the agency's answers, not by guessing numbers.

use reqwest::Method;
use serde_json::{json, Value};
use sha2::Digest;

use crate::fixtures::library::unissued_number;
use crate::fixtures::{NewTender, TestPki};
use crate::helpers::TestApp;

/// A verification report with what differs between two documents by construction (the
/// numbers, the hashes of the documents sent, the times) taken out.
fn comparable(report: &Value, numbers: &[&str]) -> String {
    let mut report = report.clone();
    if let Some(fields) = report.as_object_mut() {
        for varying in [
            "document_sha256",
            "guarantee_number",
            "validation_time",
            "signing_time",
            "proof_of_existence",
            "signature_time_stamp",
        ] {
            fields.remove(varying);
        }
    }
    let mut text = report.to_string();
    for number in numbers {
        text = text.replace(number, "<number>");
    }
    // The explanations name the claimed signing time and the validation time, to the
    // second: two reports made a second apart differ there and nowhere else.
    let times = regex::Regex::new(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z").expect("pattern");
    times.replace_all(&text, "<time>").into_owned()
}

async fn a_forged_document_under_a_real_number_answers_as_an_unknown_number(app: TestApp) {
    let pki = TestPki::set_up(&app).await;
    let bond = app
        .bond_on_new_tender("enterprise1", "bank", "BZ-SEAL")
        .await;
    let real = app
        .as_issuer("bank")
        .await
        .download(&bond, "document")
        .await;
    let real_sha256 = hex::encode(sha2::Sha256::digest(&real));

    // What an outsider can write from the public tender: the real document's shape
    // with a guessed number, signed with some trusted certificate.
    let unknown = unissued_number();
    let forge = |number: &str| {
        let mut doc: Value = serde_json::from_slice(&real).expect("document");
        doc["guarantee_number"] = json!(number);
        doc["amount_in_words"] = json!("人民币壹元整");
        serde_json::to_vec(&doc).expect("json")
    };
    let report_for = |document: Vec<u8>| {
        let signature = pki.sign(&document, "insurer");
        use base64::Engine as _;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let body =
            json!({ "document_base64": b64(&document), "signature_base64": b64(&signature) });
        let app = &app;
        async move {
            app.signed_out()
                .send(Method::POST, "/api/v1/verify", Some(&body))
                .await
        }
    };
    let under_real = report_for(forge(&bond.number)).await;
    let under_unknown = report_for(forge(&unknown)).await;
    assert_eq!(under_real["indication"], "FAILED", "{under_real}");
    // Both forgeries were read as guarantee documents, each under its own number.
    assert_eq!(under_real["guarantee_number"], json!(bond.number));
    assert_eq!(under_unknown["guarantee_number"], json!(unknown));
    assert_eq!(
        comparable(&under_real, &[&bond.number]),
        comparable(&under_unknown, &[&unknown]),
        "the same answer whether or not the number exists"
    );
    assert!(
        !under_real.to_string().contains(&real_sha256),
        "the real document's hash never leaves: {under_real}"
    );

    // The holder of the real document and its signature gets the full answer.
    let signature = app
        .as_issuer("bank")
        .await
        .download(&bond, "signature")
        .await;
    let genuine = app.verify_documents(&real, &signature).await;
    assert_eq!(genuine.indication, "PASSED", "{genuine:?}");
}

async fn the_agency_learns_nothing_of_the_bonds_before_opening(app: TestApp) {
    let _pki = TestPki::set_up(&app).await;
    let agency = app.as_agency().await;
    // Two projects alike but for their bidders: one has a bond and an open application,
    // the other has nobody.
    let busy = agency
        .create_project(&NewTender::two_sections("BZ-BUSY", 20))
        .await;
    let quiet = agency
        .create_project(&NewTender::two_sections("BZ-QUIET", 20))
        .await;
    let bond = app
        .paid_application("enterprise1", "bank", &busy.sections[0])
        .await;
    app.as_issuer("bank").await.issue(&bond).await;
    app.as_enterprise("enterprise2")
        .await
        .apply(&busy.sections[1], &app.as_issuer("insurer").await)
        .await;

    // Editing a section's bond: the same answers for both projects.
    for (changes, status) in [
        (json!({ "bond_amounts": { "A": "60000.00" } }), 200),
        (json!({ "bond_amounts": { "B": "90000.00" } }), 422),
        (json!({ "bond_amounts": { "A": "60000.01" } }), 422),
    ] {
        let mut answers = Vec::new();
        for project in [&busy, &quiet] {
            let answer = agency
                .send(
                    Method::PATCH,
                    &format!("/api/v1/projects/{}", project.id),
                    Some(&changes),
                )
                .answer()
                .await;
            assert_eq!(answer.status, status, "{changes}: {answer:?}");
            answers.push((answer.status, answer.error.map(|e| e.message)));
        }
        assert_eq!(answers[0], answers[1], "{changes}");
    }

    // Postponing: the answer names no bond and counts none.
    let later = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let mut shapes = Vec::new();
    for project in [&busy, &quiet] {
        let answer: Value = agency
            .send(
                Method::POST,
                &format!("/api/v1/projects/{}/postpone", project.id),
                Some(&json!({ "bid_deadline": later, "bid_opening_at": later })),
            )
            .await;
        assert_eq!(answer["amendments"], "offered_to_bonds_in_force");
        let mut rest = answer.clone();
        rest.as_object_mut().expect("object").remove("project");
        shapes.push(rest);
    }
    assert_eq!(shapes[0], shapes[1]);

    // The bonds themselves stay sealed.
    agency
        .send(
            Method::GET,
            &format!("/api/v1/projects/{}/bonds", busy.id),
            None,
        )
        .fails(403, "forbidden")
        .await;
}

async fn guarantee_numbers_cannot_be_guessed_from_their_neighbours(app: TestApp) {
    let _pki = TestPki::set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-NUMBERS", 3))
        .await;
    let bank = app.as_issuer("bank").await;
    let mut numbers = Vec::new();
    for (enterprise, section) in [("enterprise1", 0), ("enterprise2", 1)] {
        let application = app
            .paid_application(enterprise, "bank", &tender.sections[section])
            .await;
        numbers.push(bank.issue(&application).await.number);
    }
    // Same issuer, same day, consecutive sequence numbers: the 6-character key after
    // the sequence differs, so knowing one number does not give the next.
    let (a, b) = (&numbers[0], &numbers[1]);
    assert_eq!(a.len(), 27, "{a}");
    assert_eq!(a[..14], b[..14], "date and issuer: {a} {b}");
    assert_ne!(a[14..20], b[14..20], "sequence: {a} {b}");
    assert_ne!(a[20..26], b[20..26], "random key: {a} {b}");
    // The neighbour's number with this one's key is not a number at all, or not one
    // that exists.
    let guess = format!("{}{}", &b[..20], &a[20..26]);
    let answer = app
        .verify_body(&json!({ "number": format!("{guess}0"), "code": "ABCDEFGH" }))
        .answer()
        .await;
    assert!(matches!(answer.status, 404 | 422), "{answer:?}");
}

crate::on_both_backends!(
    a_forged_document_under_a_real_number_answers_as_an_unknown_number,
    the_agency_learns_nothing_of_the_bonds_before_opening,
    guarantee_numbers_cannot_be_guessed_from_their_neighbours,
);
