//! The issuer's work queue paged part by part, and a refused signature explained in
//! the visitor's language.

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::StatusCode;

use crate::fixtures::{NewTender, TestPki};
use crate::helpers::TestApp;
use crate::pages_ei::{hidden, Visitor};

/// The part of the queue page from the heading `id` to the next part's heading.
fn part<'h>(html: &'h str, id: &str) -> &'h str {
    let from = html
        .find(&format!("<h2 id=\"{id}\""))
        .unwrap_or_else(|| panic!("part {id} in {html}"));
    let rest = &html[from + 4..];
    let to = rest.find("<h2 ").unwrap_or(rest.len());
    &rest[..to]
}

/// The applications a part lists, by id.
fn listed(part: &str) -> Vec<String> {
    part.split("href=\"/applications/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

/// Three new applications and three approved ones for the bank, two rows a page:
/// each part pages on its own, its next page shows the rest, and paging one part
/// leaves the other on the page it was.
async fn each_part_of_the_queue_pages_on_its_own(app: TestApp) {
    let _pki = TestPki::set_up(&app).await;
    let agency = app.as_agency().await;
    let bank = app.as_issuer("bank").await;
    let first = agency
        .create_project(&NewTender::two_sections("BZ-QUEUE-1", 3))
        .await;
    let second = agency
        .create_project(&NewTender::two_sections("BZ-QUEUE-2", 3))
        .await;
    let mut approved = Vec::new();
    for (tender, approve) in [(&first, false), (&second, true)] {
        for (enterprise, section) in [
            ("enterprise1", &tender.sections[0]),
            ("enterprise1", &tender.sections[1]),
            ("enterprise2", &tender.sections[0]),
        ] {
            let application = app
                .as_enterprise(enterprise)
                .await
                .apply(section, &bank)
                .await;
            if approve {
                bank.approve(&application, "300.00").await;
                approved.push(application.id);
            }
        }
    }
    let officer = Visitor::signed_in(&app, "bank").await;

    let page = officer.ok("/issuer/queue?size=2").await;
    let new_first = listed(part(&page, "new"));
    assert_eq!(new_first.len(), 2, "{page}");
    assert!(part(&page, "new").contains("共 3 条"), "the part's total");
    assert!(
        part(&page, "new").contains("href=\"/issuer/queue?new_page=2&#38;size=2#new\""),
        "{page}"
    );
    let approved_first = listed(part(&page, "awaiting-payment"));
    assert_eq!(approved_first.len(), 2);

    // The approved part's second page: the rest of it; the new part stays on page 1,
    // and its links keep the approved part where it is.
    let page = officer.ok("/issuer/queue?approved_page=2&size=2").await;
    let approved_second = listed(part(&page, "awaiting-payment"));
    assert_eq!(approved_second.len(), 1, "{page}");
    let mut all: Vec<String> = approved_first
        .iter()
        .chain(&approved_second)
        .cloned()
        .collect();
    all.sort();
    approved.sort();
    assert_eq!(
        all, approved,
        "the two pages hold every approved application"
    );
    assert_eq!(listed(part(&page, "new")), new_first);
    let next_new = "href=\"/issuer/queue?approved_page=2&#38;new_page=2&#38;size=2#new\"";
    assert!(part(&page, "new").contains(next_new), "{page}");

    // Following it: the new part's rest, the approved part still on its page 2.
    let page = officer
        .ok("/issuer/queue?approved_page=2&new_page=2&size=2")
        .await;
    let new_second = listed(part(&page, "new"));
    assert_eq!(new_second.len(), 1);
    assert!(!new_first.contains(&new_second[0]));
    assert_eq!(listed(part(&page, "awaiting-payment")), approved_second);
    // A page past the end is empty, not an error; nonsense is refused politely.
    let page = officer.ok("/issuer/queue?new_page=99&size=2").await;
    assert!(listed(part(&page, "new")).is_empty());
    let (status, _) = officer.page("/issuer/queue?new_page=-1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// A multipart upload of `signature` through the application page's form.
async fn upload(
    officer: &Visitor<'_>,
    app: &TestApp,
    id: &str,
    csrf: &str,
    signature: &[u8],
) -> (StatusCode, String) {
    let boundary = "pages-queue-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{csrf}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"signature\"; filename=\"x.p7s\"\r\n\
         Content-Type: application/pkcs7-signature\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(signature);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let res = officer
        .client
        .post(app.url(&format!("/applications/{id}/signature")))
        .header(ACCEPT, "text/html")
        .header(
            CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .expect("upload");
    let status = res.status();
    (status, res.text().await.expect("body"))
}

/// A signature over other bytes is refused; the page says why in the visitor's
/// language (the check that failed and its reason, from the catalogues), not in the
/// report's English codes.
async fn a_refused_signature_is_explained_in_the_visitors_language(app: TestApp) {
    let pki = TestPki::set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-REFUSED-1", 3))
        .await;
    let application = app
        .paid_application("enterprise1", "insurer", &tender.sections[0])
        .await;
    let other = pki.sign(b"{\"not\":\"the draft\"}", "insurer");
    let officer = Visitor::signed_in(&app, "insurer").await;
    let path = format!("/applications/{}", application.id);

    let page = officer.ok(&path).await;
    let (status, html) = upload(
        &officer,
        &app,
        &application.id,
        &hidden(&page, "csrf_token"),
        &other,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("签名未被接受：内容完整性：文件内容与签名不符，可能已被改动"),
        "{html}"
    );
    assert!(!html.contains("HASH_FAILURE") && !html.contains("FAILED /"));

    officer.page("/lang?to=en&back=/").await;
    let page = officer.ok(&path).await;
    let (status, html) = upload(
        &officer,
        &app,
        &application.id,
        &hidden(&page, "csrf_token"),
        &other,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(
            "The signature was not accepted: Content integrity: \
             The file does not match its signature: it may have been changed"
        ),
        "{html}"
    );
    assert!(!html.contains("HASH_FAILURE"));
    // Nothing was issued.
    let still = app
        .as_issuer("insurer")
        .await
        .application(&application)
        .await;
    assert_eq!(still.status, "paid");
}

crate::on_both_backends!(
    each_part_of_the_queue_pages_on_its_own,
    a_refused_signature_is_explained_in_the_visitors_language,
);
