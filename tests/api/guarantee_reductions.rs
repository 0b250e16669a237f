//! The rest of a guarantee's lifecycle (URDG 758): reductions of the amount, which the
//! issuer signs like any amendment but which take effect only when the tender agency
//! accepts them for the tenderee (art. 11), and the release and reduction letters the
//! exchange writes, time-stamped by its own TSA and checked here with stock
//! `openssl ts -verify`. Tried as an attacker too: amounts out of bounds, the wrong
//! party, a decision taken twice or after another, a claim racing a reduction, letters
//! asked for by strangers.

use std::path::Path;
use std::process::Command;

use chrono::TimeDelta;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::fixtures::webhooks::webhook_settings;
use crate::fixtures::{
    all_at_once, Application, Call, NewClaim, NewSection, NewTender, Session, TestPki,
};
use crate::helpers::{TestApp, TestBackend};
use crate::pages_agency::{html, page_session, post_form};

/// A reduction as the API answers it.
#[derive(Debug, Clone, Deserialize)]
struct Reduction {
    version: i32,
    base_version: i32,
    status: String,
    amount_before: String,
    amount: String,
    document_sha256: Option<String>,
    decision_reason: Option<String>,
    guarantee: InForce,
}

/// The guarantee as it stands, as far as these tests look.
#[derive(Debug, Clone, Deserialize)]
struct InForce {
    version: i32,
    status: String,
    amount: String,
    outstanding_amount: String,
    document_sha256: String,
    pending_amendment: Option<Value>,
}

/// A letter as listed.
#[derive(Debug, Clone, Deserialize)]
struct Letter {
    id: String,
    kind: String,
    schema: String,
    document_sha256: String,
    document_url: String,
    timestamp_url: String,
}

/// The steps of reductions and letters, for any party (the others' are refused).
trait Reductions {
    fn propose_reduction(&self, number: &str, amount: &str) -> Call<Reduction>;
    fn accept_reduction(&self, number: &str, version: i32) -> Call<Reduction>;
    fn refuse_reduction(&self, number: &str, version: i32, reason: &str) -> Call<Reduction>;
    fn reductions(&self, number: &str) -> Call<Vec<Reduction>>;
    fn in_force(&self, number: &str) -> Call<InForce>;
    fn letters(&self, number: &str) -> Call<Vec<Letter>>;
}

impl<R> Reductions for Session<'_, R> {
    fn propose_reduction(&self, number: &str, amount: &str) -> Call<Reduction> {
        self.post(
            &format!("/api/v1/guarantees/{number}/reduction"),
            &json!({ "amount": amount, "reason": "标段投标保证金调低 The section's bond was lowered" }),
            201,
        )
    }

    fn accept_reduction(&self, number: &str, version: i32) -> Call<Reduction> {
        self.post(
            &format!("/api/v1/guarantees/{number}/amendments/{version}/accept"),
            &json!({}),
            200,
        )
    }

    fn refuse_reduction(&self, number: &str, version: i32, reason: &str) -> Call<Reduction> {
        self.post(
            &format!("/api/v1/guarantees/{number}/amendments/{version}/refuse"),
            &json!({ "reason": reason }),
            200,
        )
    }

    fn reductions(&self, number: &str) -> Call<Vec<Reduction>> {
        self.get(&format!("/api/v1/guarantees/{number}/amendments"))
    }

    fn in_force(&self, number: &str) -> Call<InForce> {
        self.get(&format!("/api/v1/guarantees/{number}"))
    }

    fn letters(&self, number: &str) -> Call<Vec<Letter>> {
        self.get(&format!("/api/v1/guarantees/{number}/letters"))
    }
}

/// An issued 80,000.00 bond of enterprise1 from the bank on a new tender, with the
/// clock past the bid opening and (when `accept`) the bond accepted: its number, code
/// and application.
async fn opened_bond(app: &TestApp, code: &str, accept: bool) -> (String, String, Application) {
    TestPki::set_up(app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections(code, 2))
        .await;
    let application = app
        .paid_application("enterprise1", "bank", &tender.sections[0])
        .await;
    let bond = app.as_issuer("bank").await.issue(&application).await;
    app.advance_clock(TimeDelta::days(2) + TimeDelta::hours(1));
    if accept {
        app.as_agency().await.accept(&bond).await;
    }
    (bond.number, bond.code, application)
}

/// The event types an organization's endpoint was given, oldest first.
async fn event_types<R>(party: &Session<'_, R>) -> Vec<String> {
    let mut events = party.webhook_events("").await;
    events.reverse();
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Stock `openssl ts -verify` of a letter against its time-stamp response, trusting
/// only the TSA's root: Ok, or OpenSSL's complaint.
fn openssl_ts_verify(dir: &Path, letter: &[u8], reply: &[u8], root: &Path) -> Result<(), String> {
    std::fs::write(dir.join("letter.json"), letter).expect("write letter");
    std::fs::write(dir.join("letter.tsr"), reply).expect("write reply");
    let out = Command::new("openssl")
        .args([
            "ts",
            "-verify",
            "-data",
            "letter.json",
            "-in",
            "letter.tsr",
            "-CAfile",
        ])
        .arg(root)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A letter's bytes and time-stamp as a party downloads them, checked with OpenSSL;
/// the letter as JSON.
async fn checked_letter<R>(app: &TestApp, party: &Session<'_, R>, letter: &Letter) -> Value {
    let bytes = download(party, &letter.document_url).await;
    let reply = download(party, &letter.timestamp_url).await;
    assert_eq!(baohan::pki::sha256_hex(&bytes), letter.document_sha256);
    let dir = tempfile::tempdir().expect("dir");
    let root = app.settings.tsa_dir().join("root/ca.pem");
    if let Err(e) = openssl_ts_verify(dir.path(), &bytes, &reply, &root) {
        panic!("openssl ts -verify refused the {} letter: {e}", letter.kind);
    }
    // The token is over these bytes and no others.
    let mut tampered = bytes.clone();
    let last = tampered.len() - 2;
    tampered[last] ^= 1;
    assert!(
        openssl_ts_verify(dir.path(), &tampered, &reply, &root).is_err(),
        "a changed letter passed"
    );
    // Canonical (RFC 8785) bytes of the letter's own schema.
    let parsed = baohan::domain::letter::Letter::parse(&bytes).expect("a canonical letter");
    assert_eq!(parsed.kind().as_str(), letter.kind);
    assert_eq!(parsed.kind().schema(), letter.schema);
    serde_json::from_slice(&bytes).expect("JSON")
}

async fn download<R>(party: &Session<'_, R>, path: &str) -> Vec<u8> {
    let res = party
        .request(Method::GET, path)
        .send()
        .await
        .expect("download");
    assert_eq!(res.status(), 200, "{path}");
    res.bytes().await.expect("bytes").to_vec()
}

/// Accepted by the agency, a signed reduction is the version in force with the lower
/// amount: the earlier version verifies as superseded, the new one passes, claims are
/// limited by it, and the reduction letter's bytes and token verify with OpenSSL.
async fn an_accepted_reduction_is_in_force_with_its_letter(backend: TestBackend) {
    let app = backend.spawn_with(webhook_settings(500, 1)).await;
    let (number, code, application) = opened_bond(&app, "BZ-RED-1", true).await;
    let (bank, agency) = (app.as_issuer("bank").await, app.as_agency().await);
    bank.set_webhook("http://127.0.0.1:9/bank", 201).await;
    agency.set_webhook("http://127.0.0.1:9/agency", 201).await;
    let enterprise = app.as_enterprise("enterprise1").await;
    let old_document = enterprise.download(number.as_str(), "document").await;
    let old_signature = enterprise.download(number.as_str(), "signature").await;

    // Proposed: a draft of version 2 for the bank to sign; nothing changes yet.
    let proposed = bank.propose_reduction(&number, "50000.00").await;
    assert_eq!(
        (
            proposed.version,
            proposed.base_version,
            proposed.status.as_str()
        ),
        (2, 1, "drafted")
    );
    assert_eq!(
        (proposed.amount_before.as_str(), proposed.amount.as_str()),
        ("80000.00", "50000.00")
    );
    assert_eq!(
        proposed
            .guarantee
            .pending_amendment
            .as_ref()
            .map(|p| &p["version"]),
        Some(&json!(2))
    );
    let draft = bank.draft(&application).await;
    assert_eq!(draft.version, "2");
    let text = String::from_utf8(draft.bytes.clone()).expect("utf-8");
    assert!(text.contains("\"value\":\"50000.00\""), "{text}");
    assert!(text.contains("人民币伍万元整"), "{text}");
    assert!(
        text.contains("takes effect only when the beneficiary accepts"),
        "{text}"
    );

    // Signed (hosted, as any amendment): it waits for the agency; version 1 stays.
    let signed = bank.issue(&application).await;
    assert_eq!(
        (signed.guarantee.version, signed.code.as_str()),
        (1, code.as_str())
    );
    let now = agency.in_force(&number).await;
    assert_eq!((now.version, now.amount.as_str()), (1, "80000.00"));
    assert!(now.pending_amendment.is_none(), "nothing is left to sign");
    let waiting = &agency.reductions(&number).await[0];
    assert_eq!(waiting.status, "awaiting_acceptance");
    // Nothing is left to sign (and the bids have closed).
    bank.issue(&application).fails(409, "conflict").await;

    // The signed bytes are no version of the guarantee until accepted.
    let pending_document = download(
        &agency,
        &format!("/api/v1/guarantees/{number}/amendments/2/document"),
    )
    .await;
    let pending_signature = download(
        &agency,
        &format!("/api/v1/guarantees/{number}/amendments/2/signature"),
    )
    .await;
    assert_eq!(
        waiting.document_sha256.as_deref(),
        Some(baohan::pki::sha256_hex(&pending_document).as_str())
    );
    let report = app
        .verify_documents(&pending_document, &pending_signature)
        .await;
    assert_eq!(report.indication, "FAILED", "{report:?}");
    assert_eq!(report.sub_indication.as_deref(), Some("NOT_REGISTERED"));
    assert!(
        report
            .check("registration")
            .explanation
            .contains("awaits the beneficiary's acceptance"),
        "{report:?}"
    );

    // Accepted: version 2 with 50,000.00 is in force.
    let accepted = agency.accept_reduction(&number, 2).await;
    assert_eq!(accepted.status, "accepted");
    assert_eq!(
        (
            accepted.guarantee.version,
            accepted.guarantee.amount.as_str()
        ),
        (2, "50000.00")
    );
    assert_eq!(accepted.guarantee.outstanding_amount, "50000.00");
    assert_eq!(accepted.guarantee.status, "accepted");
    let report = app
        .verify_documents(&pending_document, &pending_signature)
        .await;
    assert_eq!(report.indication, "PASSED", "{report:?}");
    let report = app.verify_documents(&old_document, &old_signature).await;
    assert_eq!(
        report.sub_indication.as_deref(),
        Some("SUPERSEDED"),
        "{report:?}"
    );
    assert!(
        report
            .check("status")
            .explanation
            .contains("superseded by version 2"),
        "{report:?}"
    );
    let report = app.verify(number.as_str(), &code).await;
    assert_eq!(report.indication, "PASSED", "{report:?}");
    assert_eq!(
        enterprise.download(number.as_str(), "document").await,
        pending_document
    );

    // Decided once: a second acceptance or a refusal now names the state.
    let again = agency
        .accept_reduction(&number, 2)
        .fails(409, "invalid_transition")
        .await;
    assert_eq!(again.current_state(), Some("accepted"));
    let late = agency
        .refuse_reduction(&number, 2, "后悔了")
        .fails(409, "invalid_transition")
        .await;
    assert_eq!(late.current_state(), Some("accepted"));

    // Claims run against the amount in force.
    let too_much = agency
        .claim(
            number.as_str(),
            &NewClaim::new("refused_to_sign_contract", "拒签合同", "50000.01"),
        )
        .fails(422, "validation_failed")
        .await;
    assert_eq!(too_much.field(), Some("amount"));

    // The reduction letter: the exchange's record, time-stamped, naming both versions.
    let letters = enterprise.letters(&number).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(
        (letters[0].kind.as_str(), letters[0].schema.as_str()),
        ("reduction", "baohan/guarantee-reduction/v1")
    );
    let letter = checked_letter(&app, &enterprise, &letters[0]).await;
    assert_eq!(letter["guarantee"]["number"], number.as_str());
    assert_eq!(letter["amount_before"]["value"], "80000.00");
    assert_eq!(letter["amount_after"]["value"], "50000.00");
    assert_eq!(letter["amount_after_in_words"], "人民币伍万元整");
    assert_eq!(letter["reduced_document"]["version"], 1);
    assert_eq!(
        letter["reduced_document"]["document_sha256"],
        baohan::pki::sha256_hex(&old_document)
    );
    assert_eq!(letter["amended_document"]["version"], 2);
    assert_eq!(
        letter["amended_document"]["document_sha256"],
        accepted.guarantee.document_sha256
    );
    assert_eq!(letter["accepted_by"]["role"], "agency");
    assert_eq!(letter["proposed_by"]["role"], "issuer");
    assert_eq!(
        letter["accepted_by"]["organization"]["uscc"],
        crate::helpers::demo_uscc("agency")
    );

    // Audited and pushed: the agency was asked, the bank told.
    assert_eq!(app.audited("accept_reduction").await.len(), 1);
    assert_eq!(app.audited("write_letter").await.len(), 1);
    let trail = app.guarantee_trail(&number).await;
    assert_eq!(trail.steps.last().map(|s| s.action.as_str()), Some("amend"));
    assert!(event_types(&agency)
        .await
        .contains(&"amendment.to_accept".to_owned()));
    let bank_events = event_types(&bank).await;
    assert!(
        bank_events.contains(&"amendment.accepted".to_owned()),
        "{bank_events:?}"
    );
    assert!(
        !bank_events.contains(&"amendment.refused".to_owned()),
        "{bank_events:?}"
    );
}

/// Every rule, tried from the wrong side: before opening, amounts out of bounds, while
/// a claim is open, by the wrong party, twice at once, decided before it is signed.
/// Refused, a reduction leaves the guarantee as it was and its bytes never verify as in
/// force; a new proposal never reuses its version.
async fn reductions_are_refused_by_rule_and_to_the_wrong_party(backend: TestBackend) {
    let app = backend.spawn_with(webhook_settings(500, 1)).await;
    TestPki::set_up(&app).await;
    let (bank, agency) = (app.as_issuer("bank").await, app.as_agency().await);
    bank.set_webhook("http://127.0.0.1:9/bank", 201).await;
    let tender = agency
        .create_project(&NewTender::two_sections("BZ-RED-2", 2))
        .await;
    let application = app
        .paid_application("enterprise1", "bank", &tender.sections[0])
        .await;
    let bond = bank.issue(&application).await;
    let number = bond.number.clone();

    // Before bid opening the beneficiary's side cannot see the bond, so cannot decide.
    let early = bank
        .propose_reduction(&number, "50000.00")
        .fails(409, "conflict")
        .await;
    assert!(early.message.contains("bid opening"), "{}", early.message);
    app.advance_clock(TimeDelta::days(2) + TimeDelta::hours(1));
    // (Sessions end with time: sign in again.)
    let (bank, agency) = (app.as_issuer("bank").await, app.as_agency().await);

    // Amounts: strictly below the current one, a real amount.
    for bad in [
        "80000.00",
        "80000.01",
        "120000",
        "0",
        "0.00",
        "-1",
        "abc",
        "50000.001",
    ] {
        let error = bank
            .propose_reduction(&number, bad)
            .fails(422, "validation_failed")
            .await;
        assert_eq!(error.field(), Some("amount"), "{bad}");
    }
    // Only its issuer proposes: the bidder and the agency are refused, another issuer
    // does not see the bond.
    let enterprise = app.as_enterprise("enterprise1").await;
    enterprise
        .propose_reduction(&number, "50000.00")
        .fails(403, "forbidden")
        .await;
    agency
        .propose_reduction(&number, "50000.00")
        .fails(403, "forbidden")
        .await;
    let insurer = app.as_issuer("insurer").await;
    insurer
        .propose_reduction(&number, "50000.00")
        .fails(404, "not_found")
        .await;

    // While a claim is open, no reduction; once part of it is paid, not below the paid.
    let claim = agency
        .claim(
            number.as_str(),
            &NewClaim::new("refused_to_sign_contract", "拒签合同", "30000.00"),
        )
        .await;
    let open = bank
        .propose_reduction(&number, "50000.00")
        .fails(409, "invalid_transition")
        .await;
    assert_eq!(open.current_state(), Some("claimed"));
    bank.decide(&claim, "pay").await;
    let below = bank
        .propose_reduction(&number, "29999.99")
        .fails(422, "validation_failed")
        .await;
    assert!(below.message.contains("30000.00"), "{}", below.message);

    // Proposed ten times at once: one proposal, the others refused.
    let path = format!("/api/v1/guarantees/{number}/reduction");
    let body = json!({ "amount": "40000.00", "reason": "调低" });
    let answers = all_at_once((0..10).map(|_| bank.request(Method::POST, &path).json(&body))).await;
    let made = answers.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(made, 1, "{answers:?}");
    assert!(
        answers.iter().all(|(s, _)| *s == 201 || *s == 409),
        "{answers:?}"
    );
    assert_eq!(bank.reductions(&number).await.len(), 1);

    // Not signed yet: nothing to accept.
    let unsigned = agency
        .accept_reduction(&number, 2)
        .fails(409, "invalid_transition")
        .await;
    assert_eq!(unsigned.current_state(), Some("drafted"));
    bank.issue(&application).await;

    // Only the project's agency decides: the issuer and the bidder are refused, another
    // issuer and another agency see nothing; an amendment that does not exist is
    // nothing either.
    bank.accept_reduction(&number, 2)
        .fails(403, "forbidden")
        .await;
    enterprise
        .accept_reduction(&number, 2)
        .fails(403, "forbidden")
        .await;
    enterprise
        .refuse_reduction(&number, 2, "不要")
        .fails(403, "forbidden")
        .await;
    insurer
        .accept_reduction(&number, 2)
        .fails(404, "not_found")
        .await;
    let stranger = app.new_agency(2).await;
    stranger
        .accept_reduction(&number, 2)
        .fails(404, "not_found")
        .await;
    stranger.reductions(&number).fails(404, "not_found").await;
    agency
        .accept_reduction(&number, 9)
        .fails(404, "not_found")
        .await;
    agency
        .send(
            Method::POST,
            &format!("/api/v1/guarantees/{number}/amendments/x/accept"),
            Some(&json!({})),
        )
        .fails(404, "not_found")
        .await;
    let error = agency
        .refuse_reduction(&number, 2, " ")
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("reason"));

    // Accepted and refused at once, ten times each: one decision stands.
    let accept = format!("/api/v1/guarantees/{number}/amendments/2/accept");
    let refuse = format!("/api/v1/guarantees/{number}/amendments/2/refuse");
    let requests = (0..10).flat_map(|_| {
        [
            agency.request(Method::POST, &accept).json(&json!({})),
            agency
                .request(Method::POST, &refuse)
                .json(&json!({ "reason": "保证金不得低于招标文件要求" })),
        ]
    });
    let answers = all_at_once(requests).await;
    let decided: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(decided.len(), 1, "{answers:?}");
    assert!(
        answers.iter().all(|(s, _)| *s == 200 || *s == 409),
        "{answers:?}"
    );
    let outcome = decided[0]["status"].as_str().expect("status").to_owned();
    assert_eq!(agency.reductions(&number).await[0].status, outcome);
    let reason = "保证金不得低于招标文件要求";
    // Whichever won, a refusal is seen through: if the acceptance won, the next
    // reduction is refused.
    let (refused, in_force, letters) = if outcome == "accepted" {
        let now = agency.in_force(&number).await;
        assert_eq!((now.version, now.amount.as_str()), (2, "40000.00"));
        assert_eq!(bank.propose_reduction(&number, "35000.00").await.version, 3);
        bank.issue(&application).await;
        agency.refuse_reduction(&number, 3, reason).await;
        (3, (2, "40000.00", "10000.00"), 1)
    } else {
        (2, (1, "80000.00", "50000.00"), 0)
    };

    // Refused: the guarantee is as it was, and the refused bytes are not in force.
    let now = agency.in_force(&number).await;
    assert_eq!(
        (
            now.version,
            now.amount.as_str(),
            now.outstanding_amount.as_str()
        ),
        in_force
    );
    let listed = &agency.reductions(&number).await[0];
    assert_eq!(
        (listed.version, listed.status.as_str()),
        (refused, "refused")
    );
    assert_eq!(listed.decision_reason.as_deref(), Some(reason));
    assert_eq!(agency.letters(&number).await.len(), letters);
    let again = agency
        .accept_reduction(&number, refused)
        .fails(409, "invalid_transition")
        .await;
    assert_eq!(again.current_state(), Some("refused"));
    let refused_document = download(
        &agency,
        &format!("/api/v1/guarantees/{number}/amendments/{refused}/document"),
    )
    .await;
    let refused_signature = download(
        &agency,
        &format!("/api/v1/guarantees/{number}/amendments/{refused}/signature"),
    )
    .await;
    let report = app
        .verify_documents(&refused_document, &refused_signature)
        .await;
    assert_eq!(report.indication, "FAILED", "{report:?}");
    assert_eq!(report.sub_indication.as_deref(), Some("NOT_REGISTERED"));
    assert!(
        report
            .check("registration")
            .explanation
            .contains("refused by the beneficiary"),
        "{report:?}"
    );
    let report = app.verify(number.as_str(), &bond.code).await;
    assert_eq!(report.indication, "PASSED", "{report:?}");
    let in_force_document = agency.download(number.as_str(), "document").await;
    assert_ne!(in_force_document, refused_document);
    assert!(event_types(&bank)
        .await
        .contains(&"amendment.refused".to_owned()));
    // The next proposal takes a new version: no two signed documents share one.
    let next = bank.propose_reduction(&number, "30000.00").await;
    assert_eq!(next.version, refused + 1);
}

/// A claim filed while a reduction is pending withdraws it, signed or not: the claim
/// runs against the version in force, and the withdrawn reduction never takes effect.
async fn a_claim_withdraws_a_pending_reduction(backend: TestBackend) {
    let app = backend.spawn_with(webhook_settings(500, 1)).await;
    let (number, _, application) = opened_bond(&app, "BZ-RED-3", true).await;
    let (bank, agency) = (app.as_issuer("bank").await, app.as_agency().await);
    let demand = NewClaim::new("refused_to_sign_contract", "拒签合同", "80000.00");

    // Drafted, not signed: the claim withdraws it and its draft.
    bank.propose_reduction(&number, "50000.00").await;
    let claim = agency.claim(number.as_str(), &demand).await;
    assert_eq!(bank.reductions(&number).await[0].status, "withdrawn");
    let nothing = bank
        .issue(&application)
        .fails(409, "invalid_transition")
        .await;
    assert_eq!(nothing.current_state(), Some("claimed"));
    bank.send(
        Method::POST,
        &format!("/api/v1/claims/{}/decision", claim.id),
        Some(&json!({ "decision": "reject", "reason": "不符合条款" })),
    )
    .await;

    // Signed, awaiting the agency: the claim (of the whole amount in force) withdraws it.
    let proposed = bank.propose_reduction(&number, "60000.00").await;
    assert_eq!(proposed.version, 3);
    bank.issue(&application).await;
    agency.claim(number.as_str(), &demand).await;
    let listed = bank.reductions(&number).await;
    assert_eq!(
        listed
            .iter()
            .map(|r| (r.version, r.status.as_str()))
            .collect::<Vec<_>>(),
        [(3, "withdrawn"), (2, "withdrawn")]
    );
    assert_eq!(listed[0].decision_reason.as_deref(), Some("claim"));
    let late = agency
        .accept_reduction(&number, 3)
        .fails(409, "invalid_transition")
        .await;
    assert_eq!(late.current_state(), Some("withdrawn"));
    let now = agency.in_force(&number).await;
    assert_eq!(
        (now.version, now.status.as_str(), now.amount.as_str()),
        (1, "claimed", "80000.00")
    );
    let report = {
        let document = download(
            &agency,
            &format!("/api/v1/guarantees/{number}/amendments/3/document"),
        )
        .await;
        let signature = download(
            &agency,
            &format!("/api/v1/guarantees/{number}/amendments/3/signature"),
        )
        .await;
        app.verify_documents(&document, &signature).await
    };
    assert_eq!(
        report.sub_indication.as_deref(),
        Some("NOT_REGISTERED"),
        "{report:?}"
    );
    assert!(
        report
            .check("registration")
            .explanation
            .contains("withdrawn"),
        "{report:?}"
    );
    assert_eq!(app.audited("withdraw_reduction").await.len(), 2);
}

/// A claim and the acceptance of a reduction sent at once: one of them comes first and
/// the other sees it. A demand of 70,000.00 is within the 80,000.00 in force and beyond
/// the 50,000.00 proposed, so either the reduction is in force and the demand refused
/// for exceeding it, or the demand is filed and withdrew the reduction, whose acceptance
/// is refused; never both, never a 500 (on PostgreSQL both take the guarantee's row
/// before the reduction's, and the demand is weighed once that row is held).
async fn a_claim_racing_an_acceptance_sees_one_outcome(backend: TestBackend) {
    let app = backend.spawn_with(webhook_settings(500, 1)).await;
    let (number, _, application) = opened_bond(&app, "BZ-RED-7", true).await;
    let (bank, agency) = (app.as_issuer("bank").await, app.as_agency().await);
    bank.propose_reduction(&number, "50000.00").await;
    bank.issue(&application).await;
    let accept = agency
        .request(
            Method::POST,
            &format!("/api/v1/guarantees/{number}/amendments/2/accept"),
        )
        .json(&json!({}));
    let claim = agency
        .request(Method::POST, &format!("/api/v1/guarantees/{number}/claims"))
        .json(&NewClaim::new(
            "refused_to_sign_contract",
            "拒签合同",
            "70000.00",
        ));
    let answers = all_at_once([accept, claim]).await;
    let statuses: std::collections::BTreeSet<u16> = answers.iter().map(|(s, _)| *s).collect();
    let reduction = &agency.reductions(&number).await[0];
    let now = agency.in_force(&number).await;
    if statuses.contains(&200) {
        assert_eq!(statuses, [200, 422].into(), "{answers:?}");
        assert_eq!(reduction.status, "accepted");
        assert_eq!(
            (now.version, now.amount.as_str(), now.status.as_str()),
            (2, "50000.00", "accepted")
        );
    } else {
        assert_eq!(statuses, [201, 409].into(), "{answers:?}");
        assert_eq!(reduction.status, "withdrawn");
        assert_eq!(
            (now.version, now.amount.as_str(), now.status.as_str()),
            (1, "80000.00", "claimed")
        );
        assert!(agency.letters(&number).await.is_empty());
    }
}

/// A release writes the release letter, whose bytes and token verify with OpenSSL; an
/// award writes one for each loser. Letters are the guarantee's parties' alone.
async fn a_release_writes_a_letter_only_its_parties_read(backend: TestBackend) {
    let app = backend.spawn_with(webhook_settings(500, 1)).await;
    TestPki::set_up(&app).await;
    let agency = app.as_agency().await;
    let tender = agency
        .create_project(&NewTender {
            sections: vec![NewSection::new("A", "路基", "80000.00", Some("4000000.00"))],
            ..NewTender::two_sections("BZ-RED-4", 2)
        })
        .await;
    let bank = app.as_issuer("bank").await;
    let first = app
        .paid_application("enterprise1", "bank", &tender.sections[0])
        .await;
    let second = app
        .paid_application("enterprise2", "bank", &tender.sections[0])
        .await;
    let (winner, loser) = (bank.issue(&first).await, bank.issue(&second).await);
    app.advance_clock(TimeDelta::days(2) + TimeDelta::hours(1));
    let (bank, agency) = (app.as_issuer("bank").await, app.as_agency().await);
    let enterprise1 = app.as_enterprise("enterprise1").await;
    let enterprise2 = app.as_enterprise("enterprise2").await;
    assert!(enterprise1.letters(&winner.number).await.is_empty());

    // The award releases the loser's bond, with its letter.
    agency
        .award(&tender, &tender.sections[0], &enterprise1)
        .await;
    let letters = enterprise2.letters(&loser.number).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = checked_letter(&app, &enterprise2, &letters[0]).await;
    assert_eq!(letter["schema"], "baohan/guarantee-release/v1");
    assert!(
        letter["grounds"]
            .as_str()
            .unwrap_or_default()
            .contains("未中标"),
        "{letter}"
    );

    // The winner's bond, released by hand.
    let document = enterprise1
        .download(winner.number.as_str(), "document")
        .await;
    agency
        .send(
            Method::POST,
            &format!("/api/v1/guarantees/{}/release", winner.number),
            Some(&json!({})),
        )
        .await;
    let letters = bank.letters(&winner.number).await;
    assert_eq!((letters.len(), letters[0].kind.as_str()), (1, "release"));
    let letter = checked_letter(&app, &bank, &letters[0]).await;
    assert_eq!(letter["guarantee"]["number"], winner.number.as_str());
    assert_eq!(letter["document"]["version"], 1);
    assert_eq!(
        letter["document"]["document_sha256"],
        baohan::pki::sha256_hex(&document)
    );
    assert_eq!(letter["amount"]["value"], "80000.00");
    assert_eq!(letter["outcome"], "released");
    assert_eq!(letter["released_by"]["role"], "agency");
    assert_eq!(
        letter["released_by"]["organization"]["uscc"],
        crate::helpers::demo_uscc("agency")
    );
    assert_eq!(
        letter["guarantee"]["beneficiary"]["uscc"],
        crate::helpers::demo_uscc("tenderee")
    );
    // Released once: again is the lifecycle's refusal, and no second letter.
    let again = agency
        .send(
            Method::POST,
            &format!("/api/v1/guarantees/{}/release", winner.number),
            Some(&json!({})),
        )
        .fails(409, "invalid_transition")
        .await;
    assert_eq!(again.current_state(), Some("released"));
    assert_eq!(enterprise1.letters(&winner.number).await.len(), 1);

    // Strangers: another bidder, another issuer, another agency, nobody signed in; a
    // letter asked for under another guarantee's number is no letter either.
    let id = letters[0].id.clone();
    let insurer = app.as_issuer("insurer").await;
    let stranger = app.new_agency(3).await;
    for path in [
        format!("/api/v1/guarantees/{}/letters", winner.number),
        format!("/api/v1/guarantees/{}/letters/{id}/document", winner.number),
        format!(
            "/api/v1/guarantees/{}/letters/{id}/timestamp",
            winner.number
        ),
    ] {
        enterprise2
            .send(Method::GET, &path, None)
            .fails(404, "not_found")
            .await;
        insurer
            .send(Method::GET, &path, None)
            .fails(404, "not_found")
            .await;
        stranger
            .send(Method::GET, &path, None)
            .fails(404, "not_found")
            .await;
        assert_eq!(
            app.signed_out()
                .send(Method::GET, &path, None)
                .status()
                .await,
            401
        );
    }
    let elsewhere = format!("/api/v1/guarantees/{}/letters/{id}/document", loser.number);
    enterprise2
        .send(Method::GET, &elsewhere, None)
        .fails(404, "not_found")
        .await;
    // The agency and the tenderee's side see it after opening, as they see the bond.
    assert_eq!(agency.letters(&winner.number).await.len(), 1);
}

/// The issuer's own system signs a reduction like any amendment: it fetches the draft
/// bytes, signs them with `openssl cms`, uploads the signature.
async fn an_issuer_signs_a_reduction_in_its_own_system(backend: TestBackend) {
    let app = backend.spawn_with(webhook_settings(500, 1)).await;
    let pki = TestPki::set_up(&app).await;
    // Bids open in a few seconds of real time: an external signature carries the real
    // time, which must be near the exchange's (its clock is not moved here).
    let opening = chrono::Utc::now() + TimeDelta::seconds(12);
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender {
            bid_deadline: opening.to_rfc3339(),
            bid_opening_at: opening.to_rfc3339(),
            ..NewTender::two_sections("BZ-RED-5", 2)
        })
        .await;
    let insurer = app.as_issuer("insurer").await;
    let application = app
        .paid_application("enterprise1", "insurer", &tender.sections[0])
        .await;
    let draft = insurer.draft(&application).await;
    let bond = insurer
        .upload_signature(&application, pki.sign(&draft.bytes, "insurer"))
        .await;
    let wait = (opening - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + std::time::Duration::from_secs(1)).await;

    let proposed = insurer.propose_reduction(&bond.number, "45000.00").await;
    let draft = insurer.draft(&application).await;
    assert_eq!((proposed.version, draft.version.as_str()), (2, "2"));
    let signed = insurer
        .upload_signature(&application, pki.sign(&draft.bytes, "insurer"))
        .await;
    assert_eq!(signed.guarantee.version, 1);
    let agency = app.as_agency().await;
    let accepted = agency.accept_reduction(&bond.number, 2).await;
    assert_eq!(
        (
            accepted.guarantee.version,
            accepted.guarantee.amount.as_str()
        ),
        (2, "45000.00")
    );
    let document = agency.download(bond.number.as_str(), "document").await;
    assert_eq!(
        document, draft.bytes,
        "the bytes signed are the bytes in force"
    );
    let signature = agency.download(bond.number.as_str(), "signature").await;
    assert_eq!(
        app.verify_documents(&document, &signature).await.indication,
        "PASSED"
    );
    if let Err(e) = pki.openssl_verify(&document, &signature) {
        panic!("openssl cms -verify refused the reduced version: {e}");
    }
}

/// The pages: the issuer proposes on the guarantee's page (a refused amount shown
/// beside its field), the agency refuses without a reason (shown again) and accepts
/// with the button, every party sees the letters; others get the 404 page.
async fn the_pages_propose_and_decide_a_reduction_and_list_letters(backend: TestBackend) {
    let app = backend.spawn_with(webhook_settings(500, 1)).await;
    let (number, _, application) = opened_bond(&app, "BZ-RED-6", true).await;
    let page_path = format!("/guarantees/{number}");

    let (bank, bank_csrf) = page_session(&app, "bank").await;
    let (status, page) = html(&bank, &app, &page_path).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(&format!("action=\"/guarantees/{number}/reduction\"")),
        "{page}"
    );
    let propose = |amount: &'static str| {
        let (bank, app, path, csrf) = (&bank, &app, format!("{page_path}/reduction"), &bank_csrf);
        async move {
            let fields = [
                ("csrf_token", csrf.as_str()),
                ("amount", amount),
                ("reason", "标段保证金调低"),
            ];
            post_form(bank, app, &path, &fields).await
        }
    };
    let refused = propose("90000.00").await;
    assert_eq!(refused.status(), 422);
    let page = refused.text().await.expect("page");
    assert!(page.contains("class=\"error-summary\""), "{page}");
    assert!(page.contains("id=\"reduction-amount-error\""), "{page}");
    assert!(
        page.contains("value=\"90000.00\""),
        "what was typed is kept: {page}"
    );
    let done = propose("50000.00").await;
    assert_eq!(done.status(), 303);
    assert_eq!(done.headers()["location"], page_path.as_str());
    let (_, page) = html(&bank, &app, &page_path).await;
    assert!(page.contains("id=\"pending-reduction\""), "{page}");
    assert!(
        page.contains(&format!("href=\"/applications/{}\"", application.id)),
        "{page}"
    );
    assert!(
        !page.contains(&format!("action=\"/guarantees/{number}/reduction\"")),
        "one at a time: {page}"
    );
    app.as_issuer("bank").await.issue(&application).await;

    // The agency decides; the bidder only looks.
    let (agency, agency_csrf) = page_session(&app, "agency").await;
    let accept_action = format!("action=\"/guarantees/{number}/amendments/2/accept\"");
    let (_, page) = html(&agency, &app, &page_path).await;
    assert!(page.contains(&accept_action), "{page}");
    assert!(
        page.contains(&format!(
            "/api/v1/guarantees/{number}/amendments/2/document"
        )),
        "{page}"
    );
    // As the agency's officer sees it: in Chinese at a desk, in English on a phone.
    for (lang, phone) in [("zh-CN", false), ("en", true)] {
        let browser = crate::fixtures::chromium::Chromium::start(lang).await;
        if phone {
            browser
                .client
                .set_window_size(390, 844)
                .await
                .expect("phone-sized window");
        }
        crate::browser_flow::sign_in_for(&browser, &app, &page_path, "agency").await;
        let accept_form = format!("form[action='/guarantees/{number}/amendments/2/accept']");
        assert!(
            browser.wait_for(&accept_form).await,
            "{}",
            browser.text("main").await
        );
        assert!(browser.has("#pending-reduction").await);
        let name = if phone {
            "phone-agency-pending-reduction-en"
        } else {
            "agency-pending-reduction"
        };
        browser.screenshot(name).await;
        let overflow = browser
            .eval("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
            .await;
        assert!(
            overflow.as_i64().is_some_and(|o| o <= 0),
            "wider than the window by {overflow} px"
        );
        browser.looked_at(name).await;
        browser.close().await;
    }
    let (bidder, _) = page_session(&app, "enterprise1").await;
    let (status, page) = html(&bidder, &app, &page_path).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("id=\"pending-reduction\"") && !page.contains(&accept_action),
        "{page}"
    );

    let refuse_path = format!("{page_path}/amendments/2/refuse");
    let res = post_form(
        &agency,
        &app,
        &refuse_path,
        &[("csrf_token", agency_csrf.as_str()), ("reason", "")],
    )
    .await;
    assert_eq!(res.status(), 422);
    let page = res.text().await.expect("page");
    assert!(page.contains("id=\"refusal-reason-error\""), "{page}");
    // Without its CSRF token a form changes nothing.
    let accept_path = format!("{page_path}/amendments/2/accept");
    let forged = post_form(&agency, &app, &accept_path, &[]).await;
    assert_eq!(forged.status(), 403);
    assert_eq!(app.as_agency().await.in_force(&number).await.version, 1);
    let res = post_form(
        &agency,
        &app,
        &accept_path,
        &[("csrf_token", agency_csrf.as_str())],
    )
    .await;
    assert_eq!(res.status(), 303);
    let now = app.as_agency().await.in_force(&number).await;
    assert_eq!((now.version, now.amount.as_str()), (2, "50000.00"));

    // Every party sees the letter's links, each of which downloads.
    let letters = app
        .as_enterprise("enterprise1")
        .await
        .letters(&number)
        .await;
    for client in [&bank, &agency, &bidder] {
        let (_, page) = html(client, &app, &page_path).await;
        assert!(page.contains(&letters[0].document_url), "{page}");
        assert!(page.contains(&letters[0].timestamp_url), "{page}");
        assert!(page.contains("id=\"amount\">¥50,000.00"), "{page}");
        let res = client
            .get(app.url(&letters[0].timestamp_url))
            .send()
            .await
            .expect("download");
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "application/timestamp-reply");
    }
    // The lists lead to the page.
    let link = format!("href=\"/guarantees/{number}\"");
    let (_, list) = html(&bank, &app, "/issuer/guarantees").await;
    assert!(list.contains(&link), "{list}");
    let (_, list) = html(&bidder, &app, "/enterprise/guarantees").await;
    assert!(list.contains(&link), "{list}");
    let (stranger, _) = page_session(&app, "insurer").await;
    let (status, _) = html(&stranger, &app, &page_path).await;
    assert_eq!(status, 404);
}

crate::on_both_backends!(
    configured: an_accepted_reduction_is_in_force_with_its_letter,
    reductions_are_refused_by_rule_and_to_the_wrong_party,
    a_claim_withdraws_a_pending_reduction,
    a_claim_racing_an_acceptance_sees_one_outcome,
    a_release_writes_a_letter_only_its_parties_read,
    an_issuer_signs_a_reduction_in_its_own_system,
    the_pages_propose_and_decide_a_reduction_and_list_letters,
);
