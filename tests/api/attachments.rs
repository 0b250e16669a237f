//! Attachments (issue 13): an application's documents and a claim's evidence, kept by
//! their SHA-256, seen by the parent's parties only (and by the agency only after bid
//! opening), limited in size, type and number, and audited by hash.

use chrono::TimeDelta;
use reqwest::Method;

use crate::fixtures::attachments::{form, sha256, File, Parent};
use crate::fixtures::chromium::Chromium;
use crate::fixtures::{all_at_once, Application, NewClaim, NewTender, Party, Tender, TestPki};
use crate::helpers::TestApp;

/// A tender closing (and opening) in three days, and enterprise1's application for its
/// first section to the bank.
async fn applied(app: &TestApp, code: &str) -> (Tender, Application) {
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections(code, 3))
        .await;
    let bank = app.as_issuer("bank").await;
    let application = app
        .as_enterprise("enterprise1")
        .await
        .apply(&tender.sections[0], &bank)
        .await;
    (tender, application)
}

/// Past the bid opening of a tender made with [`applied`].
fn past_opening(app: &TestApp) {
    app.advance_clock(TimeDelta::days(3) + TimeDelta::hours(1));
}

/// The answer as it came: status and body text.
async fn raw(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    (status, res.text().await.expect("body"))
}

async fn an_upload_comes_back_byte_for_byte_under_its_hash(app: TestApp) {
    let (_, application) = applied(&app, "BZ-ATT-1").await;
    let bidder = app.as_enterprise("enterprise1").await;
    let parent = Parent::of_application(&application);
    let licence = File::pdf("营业执照.pdf", 1);
    let attached = bidder.attach(&parent, "business_licence", &licence).await;
    assert_eq!(attached.sha256, licence.sha256());
    assert_eq!(attached.size_bytes, licence.bytes.len() as u64);
    assert_eq!(attached.media_type, "application/pdf");
    assert_eq!(attached.kind, "business_licence");
    assert_eq!(attached.file_name, "营业执照.pdf");
    assert_eq!(attached.parent_kind, "application");
    assert_eq!(attached.parent_id, application.id);
    assert_eq!(attached.uploader_organization_id, bidder.org_id());
    // A path in the name is dropped; the type is the content's, not the client's.
    let mut certificate = File::png("../../资质证书.png", 1);
    certificate.claimed_type = "text/html";
    let second = bidder
        .attach(&parent, "qualification_certificate", &certificate)
        .await;
    assert_eq!(second.file_name, "资质证书.png");
    assert_eq!(second.media_type, "image/png");
    let ofd = bidder
        .attach(&parent, "tender_file", &File::ofd("投标文件.ofd"))
        .await;
    assert_eq!(ofd.media_type, "application/ofd");

    // The bidder and the issuer list them, oldest first, and download the same bytes.
    let bank = app.as_issuer("bank").await;
    for viewer in [bidder.acting_as::<()>(), bank.acting_as::<()>()] {
        let listed = viewer.attachments(&parent).await;
        assert_eq!(listed, vec![attached.clone(), second.clone(), ofd.clone()]);
        let res = viewer.fetch_attachment(&attached.id).await;
        assert_eq!(res.status(), 200);
        let header = |name: &str| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(header("content-type"), "application/pdf");
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert_eq!(header("x-content-sha256"), licence.sha256());
        assert_eq!(
            header("content-disposition"),
            "attachment; filename=\"____.pdf\"; \
             filename*=UTF-8''%E8%90%A5%E4%B8%9A%E6%89%A7%E7%85%A7.pdf"
        );
        let bytes = res.bytes().await.expect("file");
        assert_eq!(bytes.as_ref(), licence.bytes.as_slice());
        assert_eq!(sha256(&bytes), attached.sha256);
    }
    // Kept under the hash of the content (the file name on SQLite, the key on
    // PostgreSQL), each blob once.
    let mut expected = vec![licence.sha256(), certificate.sha256(), ofd.sha256];
    expected.sort();
    assert_eq!(app.kept_blobs().await, expected);
    assert_eq!(app.attachment_count(&application.id).await, 3);
}

async fn the_same_content_is_kept_once(app: TestApp) {
    let (tender, application) = applied(&app, "BZ-ATT-2").await;
    let bidder = app.as_enterprise("enterprise1").await;
    let bank = app.as_issuer("bank").await;
    let other = bidder.apply(&tender.sections[1], &bank).await;
    let licence = File::pdf("营业执照.pdf", 2);
    let parent = Parent::of_application(&application);
    let first = bidder.attach(&parent, "business_licence", &licence).await;
    // Sent again to the same application: the attachment it has (200), nothing new.
    let again = bidder
        .attach_again(&parent, "business_licence", &licence)
        .await;
    assert_eq!(again, first);
    assert_eq!(bidder.attachments(&parent).await.len(), 1);
    assert_eq!(app.attachment_count(&application.id).await, 1);
    // To another application: an attachment of its own on the same blob.
    let elsewhere = bidder
        .attach(&Parent::of_application(&other), "other", &licence)
        .await;
    assert_ne!(elsewhere.id, first.id);
    assert_eq!(elsewhere.sha256, first.sha256);
    assert_eq!(app.kept_blobs().await, vec![licence.sha256()]);
}

async fn an_oversize_file_is_refused_and_nothing_is_kept(app: TestApp) {
    let (_, application) = applied(&app, "BZ-ATT-3").await;
    let bidder = app.as_enterprise("enterprise1").await;
    let parent = Parent::of_application(&application);
    let max = app.settings.attachment_max_bytes as usize;
    let sized = |size: usize, n: u32| {
        let mut file = File::pdf("大文件.pdf", n);
        file.bytes.resize(size, b' ');
        file
    };
    // One byte over: read as far as the limit, then refused.
    bidder
        .attach(&parent, "tender_file", &sized(max + 1, 1))
        .fails(413, "payload_too_large")
        .await;
    // Far over: refused by its declared length before it is read.
    bidder
        .attach(&parent, "tender_file", &sized(max + 200 * 1024, 2))
        .fails(413, "payload_too_large")
        .await;
    assert!(bidder.attachments(&parent).await.is_empty());
    assert_eq!(app.attachment_count(&application.id).await, 0);
    assert!(app.kept_blobs().await.is_empty());
    assert!(app.audited("attach").await.is_empty());
    // The limit itself is taken.
    let largest = sized(max, 3);
    let attached = bidder.attach(&parent, "tender_file", &largest).await;
    assert_eq!(attached.size_bytes, max as u64);
    assert_eq!(app.kept_blobs().await, vec![largest.sha256()]);
}

async fn a_file_that_is_not_a_pdf_png_jpeg_or_ofd_is_refused(app: TestApp) {
    let (_, application) = applied(&app, "BZ-ATT-4").await;
    let bidder = app.as_enterprise("enterprise1").await;
    let parent = Parent::of_application(&application);
    let disguised = [
        File::named(
            "营业执照.pdf",
            b"<html><script>alert(1)</script></html>".to_vec(),
            "application/pdf",
        ),
        File::named("photo.png", b"GIF89a\x01\0\x01\0".to_vec(), "image/png"),
        File::named(
            "setup.pdf",
            b"MZ\x90\0\x03\0\0\0".to_vec(),
            "application/pdf",
        ),
        File::docx("报告.ofd"),
        File::named("empty.pdf", Vec::new(), "application/pdf"),
    ];
    for file in &disguised {
        let error = bidder
            .attach(&parent, "other", file)
            .fails(422, "validation_failed")
            .await;
        assert_eq!(
            error.field(),
            Some("file"),
            "{}: {}",
            file.name,
            error.message
        );
    }
    // A kind the parent does not take.
    let error = bidder
        .attach(&parent, "claim_evidence", &File::pdf("x.pdf", 1))
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("kind"));
    // Not a form: 415. With an Idempotency-Key: 400 (the content is the key).
    let pdf = File::pdf("x.pdf", 2);
    let res = bidder
        .request(Method::POST, &parent.path())
        .header("content-type", "application/pdf")
        .body(pdf.bytes.clone())
        .send()
        .await
        .expect("send");
    crate::helpers::assert_error(res, 415, "unsupported_media_type").await;
    let res = bidder
        .request(Method::POST, &parent.path())
        .header("Idempotency-Key", "attach-1")
        .multipart(form("other", &pdf))
        .send()
        .await
        .expect("send");
    crate::helpers::assert_error(res, 400, "bad_request").await;
    assert!(bidder.attachments(&parent).await.is_empty());
    assert!(app.kept_blobs().await.is_empty());
    assert_eq!(app.attachment_count(&application.id).await, 0);
}

async fn strangers_and_the_agency_before_opening_see_nothing(app: TestApp) {
    let _pki = TestPki::set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-ATT-5", 3))
        .await;
    let application = app
        .paid_application("enterprise1", "bank", &tender.sections[0])
        .await;
    let bidder = app.as_enterprise("enterprise1").await;
    let parent = Parent::of_application(&application);
    let licence = File::pdf("营业执照.pdf", 5);
    let attached = bidder.attach(&parent, "business_licence", &licence).await;
    app.as_issuer("bank").await.issue(&application).await;

    let missing = Parent::Application("00000000-0000-4000-8000-000000000000");
    let agency = app.as_agency().await;
    let stranger = app.as_enterprise("enterprise2").await;
    let other_issuer = app.as_issuer("guarantor").await;
    let nobody_list = raw(agency
        .send(Method::GET, &missing.path(), None)
        .response()
        .await)
    .await;
    let nobody_file = raw(agency
        .fetch_attachment("00000000-0000-4000-8000-000000000000")
        .await)
    .await;
    assert_eq!(nobody_list.0, 404);
    assert_eq!(nobody_file.0, 404);
    for (who, session) in [
        ("the agency before opening", agency.acting_as::<()>()),
        ("another enterprise", stranger.acting_as::<()>()),
        ("another issuer", other_issuer.acting_as::<()>()),
    ] {
        let list = raw(session
            .send(Method::GET, &parent.path(), None)
            .response()
            .await)
        .await;
        assert_eq!(
            list, nobody_list,
            "{who}: the list answers as for no application"
        );
        let file = raw(session.fetch_attachment(&attached.id).await).await;
        assert_eq!(
            file, nobody_file,
            "{who}: the file answers as for no attachment"
        );
        // Nor can they add one.
        let upload = raw(session
            .request(Method::POST, &parent.path())
            .multipart(form("other", &File::pdf("x.pdf", 9)))
            .send()
            .await
            .expect("send"))
        .await;
        assert_eq!(
            upload, nobody_list,
            "{who}: an upload answers as for no application"
        );
    }

    // After opening, the agency sees the bond's documents; the others still nothing.
    past_opening(&app);
    let agency = app.as_agency().await;
    assert_eq!(agency.attachments(&parent).await, vec![attached.clone()]);
    let res = agency.fetch_attachment(&attached.id).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.bytes().await.expect("file").as_ref(),
        licence.bytes.as_slice()
    );
    let stranger = app.as_enterprise("enterprise2").await;
    let file = raw(stranger.fetch_attachment(&attached.id).await).await;
    assert_eq!(file.0, 404);
    // The operator sees everything.
    let operator = app.as_operator().await;
    assert_eq!(operator.attachments(&parent).await, vec![attached]);
}

async fn claim_evidence_is_for_the_parties_only(app: TestApp) {
    let _pki = TestPki::set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-ATT-6", 3))
        .await;
    let bond = app.issued_bond("enterprise1", &tender.sections[0]).await;
    past_opening(&app);
    let agency = app.as_agency().await;
    let claim = agency
        .claim(
            &bond,
            &NewClaim::new("collusion", "与其他投标人串通投标", "1000.00"),
        )
        .await;
    let parent = Parent::of_claim(&claim);
    let evidence = File::pdf("串标证据.pdf", 6);
    let attached = agency.attach(&parent, "claim_evidence", &evidence).await;
    assert_eq!(attached.parent_kind, "claim");
    // An application's kinds are not a claim's.
    agency
        .attach(&parent, "business_licence", &File::pdf("x.pdf", 1))
        .fails(422, "validation_failed")
        .await;

    let bidder = app.as_enterprise("enterprise1").await;
    let bank = app.as_issuer("bank").await;
    let operator = app.as_operator().await;
    for viewer in [
        agency.acting_as::<()>(),
        bidder.acting_as::<()>(),
        bank.acting_as::<()>(),
        operator.acting_as::<()>(),
    ] {
        assert_eq!(viewer.attachments(&parent).await, vec![attached.clone()]);
        let res = viewer.fetch_attachment(&attached.id).await;
        assert_eq!(res.status(), 200);
        assert_eq!(
            res.bytes().await.expect("file").as_ref(),
            evidence.bytes.as_slice()
        );
    }
    let missing = Parent::Claim("00000000-0000-4000-8000-000000000000");
    let stranger = app.as_enterprise("enterprise2").await;
    let nobody = raw(stranger
        .send(Method::GET, &missing.path(), None)
        .response()
        .await)
    .await;
    assert_eq!(nobody.0, 404);
    for session in [
        stranger.acting_as::<()>(),
        app.as_issuer("guarantor").await.acting_as(),
    ] {
        let list = raw(session
            .send(Method::GET, &parent.path(), None)
            .response()
            .await)
        .await;
        assert_eq!(list, nobody);
        assert_eq!(session.fetch_attachment(&attached.id).await.status(), 404);
    }
    // The bidder and the issuer see the evidence but add none.
    bidder
        .attach(&parent, "other", &File::pdf("反驳.pdf", 7))
        .fails(403, "forbidden")
        .await;
    bank.attach(&parent, "other", &File::pdf("x.pdf", 8))
        .fails(403, "forbidden")
        .await;
    // Once decided, the claim takes no more.
    bank.decide(&claim, "pay").await;
    let error = agency
        .attach(&parent, "claim_evidence", &File::pdf("迟到的证据.pdf", 9))
        .fails(409, "invalid_transition")
        .await;
    assert_eq!(error.current_state(), Some("paid"));
    assert_eq!(agency.attachments(&parent).await.len(), 1);
}

async fn thirty_uploads_at_once_leave_twenty(app: TestApp) {
    let (_, application) = applied(&app, "BZ-ATT-7").await;
    let bidder = app.as_enterprise("enterprise1").await;
    let parent = Parent::of_application(&application);
    let url = app.url(&parent.path());
    let answers = all_at_once((0..30).map(|n| {
        reqwest::Client::new()
            .post(&url)
            .bearer_auth(&bidder.token)
            .multipart(form("other", &File::png(&format!("第{n}页.png"), n)))
    }))
    .await;
    let created = answers.iter().filter(|(status, _)| *status == 201).count();
    for (status, body) in &answers {
        assert!(
            *status == 201 || (*status == 409 && body["error"]["code"] == "conflict"),
            "{status}: {body}"
        );
    }
    assert_eq!(created, 20, "exactly the limit: {answers:?}");
    assert_eq!(bidder.attachments(&parent).await.len(), 20);
    assert_eq!(app.attachment_count(&application.id).await, 20);
    // And one more later is refused the same way.
    bidder
        .attach(&parent, "other", &File::png("再一页.png", 99))
        .fails(409, "conflict")
        .await;
}

async fn the_audit_log_names_each_file_by_its_hash(app: TestApp) {
    let (_, application) = applied(&app, "BZ-ATT-8").await;
    let bidder = app.as_enterprise("enterprise1").await;
    let licence = File::pdf("营业执照.pdf", 8);
    let attached = bidder
        .attach(
            &Parent::of_application(&application),
            "business_licence",
            &licence,
        )
        .await;
    let details = app.attach_audit(&attached.id).await;
    assert_eq!(details["sha256"], licence.sha256());
    assert_eq!(details["size_bytes"], licence.bytes.len());
    assert_eq!(details["media_type"], "application/pdf");
    assert_eq!(details["kind"], "business_licence");
    assert_eq!(details["parent_kind"], "application");
    assert_eq!(details["parent_id"], application.id);
    assert_eq!(app.audited("attach").await, vec![attached.id]);
    assert!(matches!(
        app.audit_chain(),
        crate::fixtures::library::ChainCheck::Intact { .. }
    ));
}

async fn no_file_is_added_once_the_application_is_final(app: TestApp) {
    let _pki = TestPki::set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-ATT-9", 3))
        .await;
    // Issued: the file is closed.
    let bond_application = app
        .paid_application("enterprise1", "bank", &tender.sections[0])
        .await;
    let bidder = app.as_enterprise("enterprise1").await;
    let parent = Parent::of_application(&bond_application);
    bidder
        .attach(&parent, "business_licence", &File::pdf("营业执照.pdf", 1))
        .await;
    app.as_issuer("bank").await.issue(&bond_application).await;
    let error = bidder
        .attach(&parent, "other", &File::pdf("补充.pdf", 2))
        .fails(409, "invalid_transition")
        .await;
    assert_eq!(error.current_state(), Some("issued"));
    // Withdrawn: the same.
    let bank = app.as_issuer("bank").await;
    let withdrawn = bidder.apply(&tender.sections[1], &bank).await;
    let path = format!("/api/v1/applications/{}/withdraw", withdrawn.id);
    let _: serde_json::Value = bidder.post(&path, &serde_json::json!({}), 200).await;
    let error = bidder
        .attach(
            &Parent::of_application(&withdrawn),
            "other",
            &File::pdf("x.pdf", 3),
        )
        .fails(409, "invalid_transition")
        .await;
    assert_eq!(error.current_state(), Some("withdrawn"));
    assert_eq!(app.kept_blobs().await.len(), 1);
    // The issuer sees the documents but adds none.
    bank.attach(&parent, "other", &File::pdf("x.pdf", 4))
        .fails(403, "forbidden")
        .await;
}

/// The bidder attaches its business licence on its application's page; the bank's
/// officer finds it on the same page and downloads the very bytes.
async fn the_bidder_attaches_on_its_page_and_the_issuer_downloads_it(app: TestApp) {
    let (_, application) = applied(&app, "BZ-ATT-10").await;
    let page = format!("/applications/{}", application.id);
    let dir = tempfile::tempdir().expect("temp dir");
    let licence = File::png("营业执照.png", 10);
    let on_disk = dir.path().join(&licence.name);
    std::fs::write(&on_disk, &licence.bytes).expect("file");

    let bidder = Chromium::start("zh-CN").await;
    crate::browser_flow::sign_in_for(&bidder, &app, &page, "enterprise1").await;
    assert!(
        bidder.wait_for("form.attach").await,
        "{}",
        bidder.text("main").await
    );
    bidder
        .find("#attachment-kind")
        .await
        .select_by_value("business_licence")
        .await
        .expect("choose the kind");
    bidder
        .find("#attachment-file")
        .await
        .send_keys(&on_disk.to_string_lossy())
        .await
        .expect("choose the file");
    bidder.click("form.attach button[type=submit]").await;
    assert!(
        bidder.wait_for(".flash").await,
        "{}",
        bidder.text("main").await
    );
    assert!(bidder.text("#attachments").await.contains("营业执照.png"));
    bidder.looked_at("attachments-bidder").await;

    // A file that is not a PDF, PNG, JPEG or OFD: refused, and said beside the file
    // field (not as a passing notice), the list unchanged.
    let notes = dir.path().join("说明.txt");
    std::fs::write(&notes, "not a document").expect("file");
    bidder
        .find("#attachment-file")
        .await
        .send_keys(&notes.to_string_lossy())
        .await
        .expect("choose the file");
    bidder.click("form.attach button[type=submit]").await;
    assert!(
        bidder.wait_for("#attachment-file-error").await,
        "{}",
        bidder.text("main").await
    );
    let said = bidder.text("#attachment-file-error").await;
    assert!(said.contains("PDF"), "{said}");
    assert!(!bidder.has(".flash").await, "a refusal is not a notice");
    assert!(!bidder.text("#attachments").await.contains("说明.txt"));
    bidder.looked_at("attachments-refused").await;
    bidder.close().await;

    let attached = app
        .as_enterprise("enterprise1")
        .await
        .attachments(&Parent::of_application(&application))
        .await;
    assert_eq!(attached.len(), 1);
    assert_eq!(attached[0].sha256, licence.sha256());

    let officer = Chromium::start("en").await;
    crate::browser_flow::sign_in_for(&officer, &app, &page, "bank").await;
    let link = format!("#attachments a[href='{}']", attached[0].download_url);
    assert!(
        officer.wait_for(&link).await,
        "{}",
        officer.text("main").await
    );
    assert!(!officer.has("form.attach").await, "the issuer adds nothing");
    officer.looked_at("attachments-issuer").await;
    // What the link gives the officer's browser, byte for byte.
    let fetched = officer
        .eval(&format!(
            "var x = new XMLHttpRequest(); x.open('GET', '{}', false); \
             x.overrideMimeType('text/plain; charset=x-user-defined'); x.send(); \
             return [x.status, Array.from(x.responseText, c => c.charCodeAt(0) & 255)];",
            attached[0].download_url
        ))
        .await;
    assert_eq!(fetched[0], 200);
    let bytes: Vec<u8> = fetched[1]
        .as_array()
        .expect("bytes")
        .iter()
        .map(|b| b.as_u64().expect("byte") as u8)
        .collect();
    assert_eq!(bytes, licence.bytes);
    officer.close().await;
}

crate::on_both_backends!(
    an_upload_comes_back_byte_for_byte_under_its_hash,
    the_same_content_is_kept_once,
    an_oversize_file_is_refused_and_nothing_is_kept,
    a_file_that_is_not_a_pdf_png_jpeg_or_ofd_is_refused,
    strangers_and_the_agency_before_opening_see_nothing,
    claim_evidence_is_for_the_parties_only,
    thirty_uploads_at_once_leave_twenty,
    the_audit_log_names_each_file_by_its_hash,
    no_file_is_added_once_the_application_is_final,
    the_bidder_attaches_on_its_page_and_the_issuer_downloads_it,
);
