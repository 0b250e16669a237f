//! The bidder's and issuer's pages over plain HTTP (the browser flow is in
//! `browser_flow.rs`): the list of open tenders and its filters, applying through the
//! form, the issuer's steps with a mistyped premium kept and explained, and the
//! friendly endings: a form without its CSRF token, another organization's
//! application, an absent or expired session (sign in, then back to the page).

use chrono::TimeDelta;
use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use reqwest::StatusCode;

use crate::fixtures::library::DEMO_PASSWORD;
use crate::fixtures::{NewClaim, NewTender, Party, TestPki};
use crate::helpers::TestApp;

/// A browser without JavaScript: its own cookie jar, redirects seen one by one.
pub(crate) struct Visitor<'a> {
    app: &'a TestApp,
    pub(crate) client: reqwest::Client,
}

impl<'a> Visitor<'a> {
    pub(crate) fn new(app: &'a TestApp) -> Visitor<'a> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .build()
            .expect("client");
        Visitor { app, client }
    }

    /// Signed in through the sign-in page, as `username`.
    pub(crate) async fn signed_in(app: &'a TestApp, username: &str) -> Visitor<'a> {
        let v = Visitor::new(app);
        let landed = v.sign_in(username, "/").await;
        assert_eq!(landed, "/");
        v
    }

    /// Fills in the sign-in form reached from `/login?next=...`; answers where it
    /// sends the visitor.
    pub(crate) async fn sign_in(&self, username: &str, next: &str) -> String {
        let form = self
            .page(&format!("/login?next={}", urlencode(next)))
            .await
            .1;
        let token = hidden(&form, "form_token");
        let res = self
            .client
            .post(self.app.url("/login"))
            .header(ACCEPT, "text/html")
            .form(&[
                ("username", username),
                ("password", DEMO_PASSWORD),
                ("next", next),
                ("form_token", token.as_str()),
            ])
            .send()
            .await
            .expect("sign in");
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "sign in as {username}");
        location(&res)
    }

    /// A page as a browser asks for it: its status and HTML.
    pub(crate) async fn page(&self, path: &str) -> (StatusCode, String) {
        let res = self
            .client
            .get(self.app.url(path))
            .header(ACCEPT, "text/html")
            .send()
            .await
            .expect("page");
        let status = res.status();
        let kind = res
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = res.text().await.expect("body");
        if status.is_success() || status.is_client_error() {
            assert!(
                kind.starts_with("text/html"),
                "{path}: {status} {kind} {body}"
            );
        }
        (status, body)
    }

    /// A page that must answer 200.
    pub(crate) async fn ok(&self, path: &str) -> String {
        let (status, html) = self.page(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {html}");
        html
    }

    /// Posts a form; answers the status, the redirect target (if any) and the body.
    pub(crate) async fn post(
        &self,
        path: &str,
        fields: &[(&str, &str)],
    ) -> (StatusCode, String, String) {
        let res = self
            .client
            .post(self.app.url(path))
            .header(ACCEPT, "text/html")
            .form(fields)
            .send()
            .await
            .expect("post");
        let status = res.status();
        let to = location(&res);
        (status, to, res.text().await.expect("body"))
    }
}

fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The value of the hidden input `name` in a page.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The enterprise finds a tender by part of its code, applies through the form (the
/// issuer chosen from those that can issue), and sees its application waiting; the
/// bank approves it after a mistyped premium is shown back with its error, confirms
/// payment and issues; the bidder then finds its guarantee with its letter and files.
async fn a_bid_bond_goes_from_search_to_letter_through_the_pages(app: TestApp) {
    let _pki = TestPki::set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-PAGES-7", 3))
        .await;
    let bidder = Visitor::signed_in(&app, "enterprise1").await;

    let list = bidder.ok("/projects?q=pages-7").await;
    assert!(
        list.contains(&format!("href=\"/projects/{}\"", tender.id)),
        "{list}"
    );
    let none = bidder.ok("/projects?q=no-such-tender").await;
    assert!(!none.contains("BZ-PAGES-7"));
    // A mistyped date is shown back beside its field, with the list's filters kept.
    let (status, bad) = bidder
        .page("/projects?q=pages&deadline_from=2026-13-45")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(bad.contains("error-summary") && bad.contains("href=\"#deadline_from\""));
    assert!(bad.contains("value=\"2026-13-45\"") && bad.contains("value=\"pages\""));

    let project = bidder.ok(&format!("/projects/{}", tender.id)).await;
    assert!(project.contains("80,000.00"), "{project}");
    let bank = app.as_issuer("bank").await;
    assert!(project.contains(&format!("value=\"{}\"", bank.org_id())));
    let csrf = hidden(&project, "csrf_token");
    let section = &tender.sections[0].id;
    let apply = format!("/projects/{}/apply", tender.id);

    // No issuer chosen: the page again, the error beside the section's choice.
    let (status, _, again) = bidder
        .post(
            &apply,
            &[
                ("csrf_token", &csrf),
                ("section_id", section),
                ("issuer_id", ""),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        again.contains(&format!("href=\"#issuer-{section}\"")),
        "{again}"
    );
    let (status, to, _) = bidder
        .post(
            &apply,
            &[
                ("csrf_token", &csrf),
                ("section_id", section),
                ("issuer_id", bank.org_id()),
            ],
        )
        .await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/enterprise/applications")
    );
    let mine = bidder.ok("/enterprise/applications").await;
    assert!(mine.contains("class=\"flash\""), "{mine}");
    assert!(mine.contains("待出函机构审核"), "{mine}");
    let id = mine
        .split("href=\"/applications/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the application's link")
        .to_owned();

    let officer = Visitor::signed_in(&app, "bank").await;
    let queue = officer.ok("/issuer/queue").await;
    assert!(queue.contains(&format!("/applications/{id}")), "{queue}");
    let page = officer.ok(&format!("/applications/{id}")).await;
    let csrf = hidden(&page, "csrf_token");
    let (status, _, again) = officer
        .post(
            &format!("/applications/{id}/approve"),
            &[("csrf_token", &csrf), ("premium", "八百")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(again.contains("value=\"八百\"") && again.contains("id=\"premium-error\""));
    // A file that is no signature, uploaded instead of issuing: refused beside the
    // field (after approval and payment, below).
    let upload = |csrf: &str| {
        let boundary = "pages-ei-boundary";
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{csrf}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"signature\"; filename=\"x.p7s\"\r\n\
             Content-Type: application/pkcs7-signature\r\n\r\nnot a signature\r\n--{boundary}--\r\n"
        );
        officer
            .client
            .post(app.url(&format!("/applications/{id}/signature")))
            .header(ACCEPT, "text/html")
            .header(
                CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
    };
    for (action, fields) in [
        (
            "approve",
            vec![("csrf_token", csrf.as_str()), ("premium", "800.00")],
        ),
        ("confirm-payment", vec![("csrf_token", csrf.as_str())]),
    ] {
        let (status, _, body) = officer
            .post(&format!("/applications/{id}/{action}"), &fields)
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{action}: {body}");
    }
    let res = upload(&csrf).send().await.expect("upload");
    assert_eq!(res.status(), StatusCode::OK);
    let again = res.text().await.expect("body");
    assert!(again.contains("id=\"signature-error\"") && again.contains("href=\"#signature\""));
    // Without its token the upload changes nothing either.
    let res = upload("").send().await.expect("upload");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let (status, _, body) = officer
        .post(
            &format!("/applications/{id}/issue"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "issue: {body}");
    let issued = officer.ok("/issuer/guarantees").await;
    assert!(issued.contains("/letter"), "{issued}");
    // The officer's home counts today's application, nothing left to issue.
    let home = officer.ok("/").await;
    assert!(
        home.contains("<span class=\"figure\">1</span>今日新申请"),
        "{home}"
    );
    assert!(
        home.contains("<span class=\"figure\">0</span>待出函"),
        "{home}"
    );

    let held = bidder.ok("/enterprise/guarantees").await;
    assert!(held.contains("有效"), "{held}");
    let number = held
        .split("href=\"/guarantees/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("the letter's link")
        .to_owned();
    let home = bidder.ok("/").await;
    assert!(
        home.contains("<span class=\"figure\">1</span>有效保函"),
        "{home}"
    );
    assert!(
        home.contains("<span class=\"figure\">0</span>办理中的申请"),
        "{home}"
    );
    // The letter and the files open with the same cookie session.
    bidder.ok(&format!("/guarantees/{number}/letter")).await;
    let res = bidder
        .client
        .get(app.url(&format!("/api/v1/guarantees/{number}/signature")))
        .send()
        .await
        .expect("signature");
    assert_eq!(res.status(), StatusCode::OK);
    // Cancelling before the deadline is offered, and works.
    let csrf = hidden(&held, "csrf_token");
    let (status, to, _) = bidder
        .post(
            &format!("/enterprise/guarantees/{number}/cancel"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/enterprise/guarantees")
    );
    assert!(bidder.ok("/enterprise/guarantees").await.contains("已退保"));
}

/// A form posted without its CSRF token changes nothing and ends on the friendly
/// "form expired" page.
async fn a_form_without_its_csrf_token_ends_on_the_friendly_page(app: TestApp) {
    let _pki = TestPki::set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-PAGES-8", 3))
        .await;
    let bank = app.as_issuer("bank").await;
    let bidder = Visitor::signed_in(&app, "enterprise1").await;
    let (status, _, html) = bidder
        .post(
            &format!("/projects/{}/apply", tender.id),
            &[
                ("section_id", tender.sections[0].id.as_str()),
                ("issuer_id", bank.org_id()),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        html.contains("表单已失效") && html.starts_with("<!doctype html>"),
        "{html}"
    );
    let mine = bidder.ok("/enterprise/applications").await;
    assert!(!mine.contains("BZ-PAGES-8"), "nothing was applied for");
}

/// Another enterprise's application, or another issuer's, is a friendly "not found",
/// the same as an application that does not exist.
async fn another_organizations_application_is_a_friendly_not_found(app: TestApp) {
    let _pki = TestPki::set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-PAGES-9", 3))
        .await;
    let bank = app.as_issuer("bank").await;
    let application = app
        .as_enterprise("enterprise1")
        .await
        .apply(&tender.sections[0], &bank)
        .await;
    let owner = Visitor::signed_in(&app, "enterprise1").await;
    owner.ok(&format!("/applications/{}", application.id)).await;
    for stranger in ["enterprise2", "insurer"] {
        let v = Visitor::signed_in(&app, stranger).await;
        let (status, html) = v.page(&format!("/applications/{}", application.id)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{stranger}");
        assert!(html.contains("页面不存在"), "{stranger}: {html}");
        assert!(!html.contains("BZ-PAGES-9"), "{stranger} learns nothing");
    }
    // A bidder on an issuer's page: the friendly 403.
    let (status, html) = owner.page("/issuer/queue").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("无权访问"));
}

/// Without a session, or with one that has expired, a page sends the visitor to sign
/// in, and signing in brings them back to the page they asked for.
async fn an_absent_or_expired_session_signs_in_and_comes_back(app: TestApp) {
    let wanted = "/enterprise/applications?page=1";
    let v = Visitor::new(&app);
    let res = v
        .client
        .get(app.url(wanted))
        .header(ACCEPT, "text/html")
        .send()
        .await
        .expect("page");
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to = location(&res);
    assert_eq!(
        to,
        format!("/login?next={}", urlencode(wanted).replace("%2F", "/"))
    );
    assert_eq!(v.sign_in("enterprise1", wanted).await, wanted);
    v.ok(wanted).await;

    // The session runs out: the same again.
    app.advance_clock(TimeDelta::days(40));
    let res = v
        .client
        .get(app.url(wanted))
        .header(ACCEPT, "text/html")
        .send()
        .await
        .expect("page");
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(location(&res).starts_with("/login?next="));
    assert_eq!(v.sign_in("enterprise1", wanted).await, wanted);
    v.ok(wanted).await;
}

/// The issuer's other pages: its certificates with their expiry and how it signs
/// with each, the claims on its guarantees (none yet), and its issued guarantees paged.
async fn the_issuer_sees_its_certificates_claims_and_guarantees_paged(app: TestApp) {
    let _pki = TestPki::set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-PAGES-10", 3))
        .await;
    for section in &tender.sections {
        app.issued_bond("enterprise1", section).await;
    }
    let officer = Visitor::signed_in(&app, "bank").await;
    let certificates = officer.ok("/issuer/certificates").await;
    assert!(certificates.contains("托管密钥"), "{certificates}");
    assert!(certificates.contains("有效"), "{certificates}");
    // The insurer signs in its own system: no hosted key.
    let insurer = Visitor::signed_in(&app, "insurer").await;
    assert!(insurer
        .ok("/issuer/certificates")
        .await
        .contains("本机构系统"));
    assert!(officer
        .ok("/issuer/claims")
        .await
        .contains("您的保函暂无索赔"));

    let first = officer.ok("/issuer/guarantees?size=1").await;
    assert_eq!(first.matches("/letter\"").count(), 1, "{first}");
    assert!(first.contains("共 2 条"), "{first}");
    assert!(
        first.contains("href=\"/issuer/guarantees?page=2&#38;size=1\""),
        "{first}"
    );
    let second = officer.ok("/issuer/guarantees?page=2&size=1").await;
    assert_eq!(second.matches("/letter\"").count(), 1);
    assert_ne!(first, second);
    // Another issuer's list holds none of them.
    assert!(insurer.ok("/issuer/guarantees").await.contains("暂无保函"));
}

/// After a postponement, the amendment of a bond in force waits in the issuer's queue
/// under "amendments to sign", and signing it from the application page empties that
/// part.
async fn an_amendment_to_sign_waits_in_the_queue_until_signed(app: TestApp) {
    let _pki = TestPki::set_up(&app).await;
    let agency = app.as_agency().await;
    let tender = agency
        .create_project(&NewTender::two_sections("BZ-PAGES-11", 3))
        .await;
    let bond = app.issued_bond("enterprise1", &tender.sections[0]).await;
    let officer = Visitor::signed_in(&app, "bank").await;
    let queue = officer.ok("/issuer/queue").await;
    let amendments = |html: &str| -> String {
        let from = html.find("id=\"amendments\"").expect("the amendments part");
        let to = html.find("id=\"claims\"").expect("the claims part");
        html[from..to].to_owned()
    };
    assert!(!amendments(&queue).contains("/applications/"), "{queue}");
    let later = (chrono::Utc::now() + TimeDelta::days(10)).to_rfc3339();
    agency.postpone(&tender, &later).await;

    let queue = officer.ok("/issuer/queue").await;
    let part = amendments(&queue);
    let id = part
        .split("href=\"/applications/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the amendment's application")
        .to_owned();
    let page = officer.ok(&format!("/applications/{id}")).await;
    assert!(
        page.contains("BZ-PAGES-11") && page.contains("待签署变更，有效期至"),
        "{page}"
    );
    let csrf = hidden(&page, "csrf_token");
    let (status, _, body) = officer
        .post(
            &format!("/applications/{id}/issue"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let queue = officer.ok("/issuer/queue").await;
    assert!(!amendments(&queue).contains("/applications/"), "{queue}");
    let signed = app
        .as_enterprise("enterprise1")
        .await
        .guarantee(&bond.number)
        .await;
    assert_eq!(signed.version, 2);
}

/// A claim filed by the agency waits on the issuer's claims page with its deadline; the
/// issuer rejects it there (its form checked for the CSRF token), and the guarantee
/// returns to where it stood.
async fn the_issuer_decides_a_claim_from_its_claims_page(app: TestApp) {
    let _pki = TestPki::set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-PAGES-CLAIM", 2))
        .await;
    let bond = app.issued_bond("enterprise1", &tender.sections[0]).await;
    app.advance_clock(TimeDelta::days(2) + TimeDelta::hours(1));
    let agency = app.as_agency().await;
    agency.accept(&bond).await;
    let claim = agency
        .claim(
            &bond,
            &NewClaim::new("withdrew_after_deadline", "截止后撤回投标", "1000.00"),
        )
        .await;

    let officer = Visitor::signed_in(&app, "bank").await;
    let page = officer.ok("/issuer/claims").await;
    let action = format!("/issuer/claims/{}/decide", claim.id);
    assert!(page.contains(&action), "{page}");
    // Without the session's token nothing is decided.
    let (status, _, _) = officer
        .post(&action, &[("decision", "reject"), ("reason", "材料不足")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let token = hidden(&page, "csrf_token");
    let (status, to, _) = officer
        .post(
            &action,
            &[
                ("csrf_token", &token),
                ("decision", "reject"),
                ("reason", "材料不足"),
            ],
        )
        .await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/issuer/claims")
    );
    let claims = agency.claims().await;
    let decided = claims.iter().find(|c| c.id == claim.id).expect("the claim");
    assert_eq!(decided.status, "rejected");
    assert_eq!(agency.guarantee(&bond).await.status, "accepted");
    assert!(officer.ok("/issuer/claims").await.contains("flash"));
}

crate::on_both_backends!(
    the_issuer_decides_a_claim_from_its_claims_page,
    an_amendment_to_sign_waits_in_the_queue_until_signed,
    the_issuer_sees_its_certificates_claims_and_guarantees_paged,
    a_bid_bond_goes_from_search_to_letter_through_the_pages,
    a_form_without_its_csrf_token_ends_on_the_friendly_page,
    another_organizations_application_is_a_friendly_not_found,
    an_absent_or_expired_session_signs_in_and_comes_back,
);
