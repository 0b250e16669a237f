//! The agency's pages over HTTP (no browser): creating a project through its form,
//! with errors shown beside the fields; the list and its filters; the bid-opening page
//! refused before opening with when it opens; other roles refused with a friendly page.

use crate::fixtures::library::DEMO_PASSWORD;
use crate::fixtures::{NewOrg, NewTender, NewUser};
use crate::helpers::TestApp;

/// A browser-like client signed in as `username` (the session cookie in its jar), and
/// the session's CSRF token for forms.
pub async fn page_session(app: &TestApp, username: &str) -> (reqwest::Client, String) {
    page_session_with(app, username, DEMO_PASSWORD).await
}

/// As [`page_session`], with the user's own password.
pub async fn page_session_with(
    app: &TestApp,
    username: &str,
    password: &str,
) -> (reqwest::Client, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .expect("client");
    let res = client
        .post(app.url("/api/v1/auth/login"))
        .json(&serde_json::json!({ "username": username, "password": password }))
        .send()
        .await
        .expect("sign in");
    assert_eq!(res.status(), 200, "sign in as {username}");
    let body: serde_json::Value = res.json().await.expect("JSON");
    let csrf = body["csrf_token"].as_str().expect("csrf token").to_owned();
    (client, csrf)
}

/// A page as a browser asks for it: status and HTML.
pub async fn html(client: &reqwest::Client, app: &TestApp, path: &str) -> (u16, String) {
    let res = client
        .get(app.url(path))
        .header("Accept", "text/html")
        .header("Accept-Language", "zh-CN")
        .send()
        .await
        .expect("page");
    let status = res.status().as_u16();
    (status, res.text().await.expect("body"))
}

/// A form posted as a browser posts it.
pub async fn post_form(
    client: &reqwest::Client,
    app: &TestApp,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    client
        .post(app.url(path))
        .header("Accept", "text/html")
        .header("Accept-Language", "zh-CN")
        .form(fields)
        .send()
        .await
        .expect("form posted")
}

fn in_days(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days))
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("offset"))
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

async fn the_agency_creates_a_project_through_its_form(app: TestApp) {
    let (agency, csrf) = page_session(&app, "agency").await;
    let (status, form) = html(&agency, &app, "/agency/projects/new").await;
    assert_eq!(status, 200);
    assert!(form.contains("name=\"section-1-bond\""), "{form}");
    let tenderee = crate::helpers::demo_uscc("tenderee");
    let (deadline, opening) = (in_days(5), in_days(5));
    let mut fields = vec![
        ("csrf_token", csrf.as_str()),
        ("code", "BZ-PAGE-1"),
        ("name", "滨州市政道路"),
        ("tenderee_uscc", tenderee.as_str()),
        ("bid_deadline", deadline.as_str()),
        ("bid_opening_at", opening.as_str()),
        ("bid_validity_days", "60"),
        ("section-1-code", "A"),
        ("section-1-name", "路基"),
        // Above 2% of the estimated price: refused by the service's rule.
        ("section-1-bond", "90000.00"),
        ("section-1-price", "4000000.00"),
    ];
    let res = post_form(&agency, &app, "/agency/projects/new", &fields).await;
    assert_eq!(res.status(), 422);
    let page = res.text().await.expect("body");
    assert!(page.contains("class=\"error-summary\""), "{page}");
    assert!(page.contains("href=\"#section-1-bond\""), "{page}");
    assert!(page.contains("id=\"section-1-bond-error\""), "{page}");
    assert!(
        page.contains("投标保证金须大于零"),
        "the error in Chinese: {page}"
    );
    // What was typed is kept.
    assert!(page.contains("value=\"滨州市政道路\""), "{page}");
    assert!(page.contains("value=\"90000.00\""), "{page}");

    fields.retain(|(k, _)| *k != "section-1-bond");
    fields.push(("section-1-bond", "80000.00"));
    // A second section typed in the third group: the blank one between is ignored.
    fields.extend([
        ("section-3-code", "B"),
        ("section-3-name", "桥梁"),
        ("section-3-bond", "50000"),
    ]);
    let res = post_form(&agency, &app, "/agency/projects/new", &fields).await;
    assert_eq!(res.status(), 303);
    let to = res.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(to.starts_with("/agency/projects/"), "{to}");
    let (status, project) = html(&agency, &app, &to).await;
    assert_eq!(status, 200);
    assert!(
        project.contains("项目已创建"),
        "the flash message: {project}"
    );
    assert!(
        project.contains("¥80,000.00") && project.contains("¥50,000.00"),
        "{project}"
    );
    assert!(
        !project.contains("/opening\""),
        "no opening link before opening"
    );

    // The same code again: the error is beside the code.
    let res = post_form(&agency, &app, "/agency/projects/new", &fields).await;
    assert_eq!(res.status(), 422);
    assert!(res
        .text()
        .await
        .expect("body")
        .contains("id=\"code-error\""));

    let (_, list) = html(&agency, &app, "/agency/projects?q=PAGE-1").await;
    assert!(list.contains("BZ-PAGE-1"), "{list}");
    let (_, none) = html(&agency, &app, "/agency/projects?q=PAGE-1&stage=opened").await;
    assert!(!none.contains("BZ-PAGE-1"), "the stage filter: {none}");

    // Edit: a bond raised is refused beside its field; lowered, accepted.
    let edit = format!("{to}/edit");
    let res = post_form(
        &agency,
        &app,
        &edit,
        &[
            ("csrf_token", &csrf),
            ("name", "滨州市政道路"),
            ("bond-1", "80000.00"),
            ("bond-2", "60000.00"),
        ],
    )
    .await;
    assert_eq!(res.status(), 422);
    let page = res.text().await.expect("body");
    assert!(page.contains("id=\"bond-2-error\""), "{page}");
    assert!(page.contains("value=\"60000.00\""), "{page}");
    let res = post_form(
        &agency,
        &app,
        &edit,
        &[
            ("csrf_token", &csrf),
            ("name", "滨州市政道路二期"),
            ("bond-1", "80000.00"),
            ("bond-2", "40000.00"),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    let (_, project) = html(&agency, &app, &to).await;
    assert!(
        project.contains("滨州市政道路二期") && project.contains("¥40,000.00"),
        "{project}"
    );

    // Postpone: earlier than now is refused beside the deadline; later accepted.
    let postpone = format!("{to}/postpone");
    let earlier = in_days(1);
    let res = post_form(
        &agency,
        &app,
        &postpone,
        &[
            ("csrf_token", &csrf),
            ("bid_deadline", &earlier),
            ("bid_opening_at", &earlier),
        ],
    )
    .await;
    assert_eq!(res.status(), 422);
    assert!(res
        .text()
        .await
        .expect("body")
        .contains("id=\"bid_deadline-error\""));
    let later = in_days(9);
    let res = post_form(
        &agency,
        &app,
        &postpone,
        &[
            ("csrf_token", &csrf),
            ("bid_deadline", &later),
            ("bid_opening_at", &later),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    let (_, project) = html(&agency, &app, &to).await;
    assert!(project.contains(&later.replace('T', " ")), "{project}");

    // Without its CSRF token the form is refused on a friendly page.
    let res = post_form(&agency, &app, &postpone, &[("bid_deadline", &later)]).await;
    assert_eq!(res.status(), 403);
    let page = res.text().await.expect("body");
    assert!(page.contains("<h1>"), "an HTML page: {page}");
}

async fn the_opening_page_before_opening_says_when_bids_open(app: TestApp) {
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-SEALED-1", 4))
        .await;
    let (agency, _) = page_session(&app, "agency").await;
    let opening = chrono::DateTime::parse_from_rfc3339(&tender.bid_deadline)
        .expect("RFC 3339")
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("offset"))
        .format("%Y-%m-%d %H:%M")
        .to_string();
    for path in ["opening", "opening.csv", "opening/record"] {
        let (status, page) = html(
            &agency,
            &app,
            &format!("/agency/projects/{}/{path}", tender.id),
        )
        .await;
        assert_eq!(status, 403, "{path}");
        assert!(page.contains("id=\"opens-at\""), "{path}: {page}");
        assert!(page.contains(&opening), "{path} says when: {page}");
    }
}

async fn other_roles_cannot_open_the_agency_pages(app: TestApp) {
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-ROLE-1", 4))
        .await;
    let (bidder, _) = page_session(&app, "enterprise1").await;
    for path in [
        "/agency/projects".to_owned(),
        format!("/agency/projects/{}", tender.id),
        format!("/agency/projects/{}/opening", tender.id),
        "/agency/claims".to_owned(),
    ] {
        let (status, page) = html(&bidder, &app, &path).await;
        assert_eq!(status, 403, "{path}");
        assert!(page.contains("无权访问"), "{path}: {page}");
        assert!(!page.contains("BZ-ROLE-1"), "{path}");
    }
    // An unknown project of the agency's own pages: the friendly 404.
    let (agency, _) = page_session(&app, "agency").await;
    let (status, page) = html(&agency, &app, "/agency/projects/no-such-project").await;
    assert_eq!(status, 404);
    assert!(page.contains("<h1>"), "{page}");
}

/// Another agency's project, its opening, its CSV and its bonds do not exist for an
/// agency: friendly 404 pages, and nothing of it in the list.
async fn another_agencys_project_is_not_found(app: TestApp) {
    let _pki = crate::fixtures::TestPki::set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-OTHER-1", 2))
        .await;
    let bond = app.issued_bond("enterprise1", &tender.sections[0]).await;
    let operator = app.as_operator().await;
    let org = operator
        .register_org(&NewOrg::new(
            "agency",
            "另一招标代理有限公司",
            &crate::helpers::uscc("91371600MA3CQ0992"),
        ))
        .await;
    operator
        .add_user(&NewUser::new(&org.id, "agency2", "另一代理", "agency"))
        .await;
    app.advance_clock(chrono::Duration::days(2) + chrono::Duration::hours(1));
    let (other, csrf) = page_session_with(&app, "agency2", "a long enough password").await;
    for path in ["", "/opening", "/opening.csv", "/opening/record", "/edit"] {
        let (status, page) = html(
            &other,
            &app,
            &format!("/agency/projects/{}{path}", tender.id),
        )
        .await;
        assert_eq!(status, 404, "{path}");
        assert!(
            page.contains("<h1>") && !page.contains(&bond.number),
            "{path}: {page}"
        );
    }
    let res = post_form(
        &other,
        &app,
        &format!("/agency/guarantees/{}/accept", bond.number),
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(res.status(), 404);
    let (status, _) = html(
        &other,
        &app,
        &format!("/agency/guarantees/{}/claim", bond.number),
    )
    .await;
    assert_eq!(status, 404);
    let (_, list) = html(&other, &app, "/agency/projects").await;
    assert!(!list.contains("BZ-OTHER-1"), "{list}");
    // The bond is untouched.
    let (agency, _) = page_session(&app, "agency").await;
    let (_, opening) = html(
        &agency,
        &app,
        &format!("/agency/projects/{}/opening", tender.id),
    )
    .await;
    assert!(
        opening.contains(&format!("/agency/guarantees/{}/accept", bond.number)),
        "{opening}"
    );
}

/// Three projects, two a page: the total, the links, and each project once.
async fn the_project_list_is_paged(app: TestApp) {
    let agency = app.as_agency().await;
    for (code, days) in [("BZ-PAGED-1", 3), ("BZ-PAGED-2", 4), ("BZ-PAGED-3", 5)] {
        agency
            .create_project(&NewTender::two_sections(code, days))
            .await;
    }
    let (client, _) = page_session(&app, "agency").await;
    let (_, first) = html(&client, &app, "/agency/projects?q=PAGED&size=2").await;
    assert!(first.contains("共 3 条"), "{first}");
    assert!(first.contains("BZ-PAGED-1") && first.contains("BZ-PAGED-2"));
    assert!(!first.contains("BZ-PAGED-3"));
    assert!(
        first.contains("href=\"/agency/projects?q=PAGED&#38;page=2&#38;size=2\""),
        "the next page keeps the filter: {first}"
    );
    let (_, second) = html(&client, &app, "/agency/projects?q=PAGED&page=2&size=2").await;
    assert!(
        second.contains("BZ-PAGED-3") && !second.contains("BZ-PAGED-1"),
        "{second}"
    );
}

crate::on_both_backends!(
    the_project_list_is_paged,
    another_agencys_project_is_not_found,
    the_agency_creates_a_project_through_its_form,
    the_opening_page_before_opening_says_when_bids_open,
    other_roles_cannot_open_the_agency_pages,
);
