//! My credit page: an enterprise sees its level, score and the deposit-free matters its
//! level qualifies for; a record the credit office posts moves all of it at once, with
//! the record shown as what moves the score and the change in the level's history; a
//! serious-dishonesty record takes every matter away; a look by the credit office is
//! listed by its organization and purpose. Only a subject opens the page.

use crate::fixtures::credit::NewCreditRecord;
use crate::helpers::{demo_uscc, TestApp};
use crate::pages_ei::{hidden, Visitor};

/// The rows of the matters table: (code, qualifies).
fn matters_of(html: &str) -> Vec<(String, bool)> {
    let mut rows = Vec::new();
    for part in html.split("<tr data-matter=\"").skip(1) {
        let code = part.split('"').next().unwrap_or_default().to_owned();
        let qualifies = part
            .split("data-qualifies=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default()
            == "true";
        rows.push((code, qualifies));
    }
    rows
}

fn text_of(html: &str, id: &str) -> String {
    let start = format!("id=\"{id}\">");
    html.split(&start)
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_default()
        .to_owned()
}

async fn my_credit_page_shows_the_level_and_what_moves_it(app: TestApp) {
    let firm = Visitor::signed_in(&app, "enterprise1").await;
    let home = firm.ok("/").await;
    assert!(home.contains("href=\"/credit\""), "in the navigation");
    let page = firm.ok("/credit").await;
    assert_eq!(text_of(&page, "level"), "A");
    assert_eq!(text_of(&page, "score"), "600");
    assert!(page.contains("id=\"no-records\""));
    let matters = matters_of(&page);
    // Only the enterprise's credit-substituted matters, each against its required level.
    let expected = [
        ("bid_bond", true),
        ("performance_bond", false),
        ("migrant_wage_deposit", true),
    ];
    for (code, qualifies) in expected {
        assert!(
            matters.contains(&(code.to_owned(), qualifies)),
            "{code} {qualifies}: {matters:?}"
        );
    }
    assert!(
        !matters.iter().any(|(code, _)| code == "hotel_room"),
        "no matter for residents: {matters:?}"
    );

    // The credit office records a penalty: the page moves with it.
    let office = app.as_operator().await;
    let uscc = demo_uscc("enterprise1");
    office
        .post_record(&NewCreditRecord::enterprise(
            &uscc,
            "administrative_penalty",
            "滨市监罚〔2026〕7号",
        ))
        .await;
    let page = firm.ok("/credit").await;
    assert_eq!(text_of(&page, "level"), "B");
    assert_eq!(text_of(&page, "score"), "570");
    assert!(!page.contains("id=\"no-records\""));
    assert!(
        page.contains("行政处罚") && page.contains("−30"),
        "what moves it"
    );
    assert!(page.contains("class=\"negative\""));
    let changes = page.split("id=\"changes\"").nth(1).unwrap_or_default();
    assert!(changes.contains(">A<") && changes.contains(">B<"), "A to B");
    let matters = matters_of(&page);
    assert!(
        matters.contains(&("bid_bond".to_owned(), true)),
        "B is enough"
    );
    assert!(matters.contains(&("migrant_wage_deposit".to_owned(), false)));

    // A judgment defaulter: the lowest level and no deposit waived at all.
    office
        .post_record(&NewCreditRecord::enterprise(
            &uscc,
            "judgment_defaulter",
            "(2026)鲁16执7号",
        ))
        .await;
    let page = firm.ok("/credit").await;
    assert_eq!(text_of(&page, "level"), "D");
    assert!(page.contains("id=\"dishonesty\""));
    assert!(matters_of(&page).iter().all(|(_, qualifies)| !qualifies));

    // Nobody else has looked yet: the subject's own visits are not looks. Then the
    // credit office looks the enterprise up, and the page names it.
    assert!(page.contains("目前共 0 次"), "no look yet");
    assert!(!page.contains("id=\"looks\""));
    office.credit_lookup("enterprise", &uscc).await;
    let page = firm.ok("/credit").await;
    assert!(page.contains("目前共 1 次"), "one look");
    let looks = page.split("id=\"looks\"").nth(1).unwrap_or_default();
    assert!(
        looks.contains("滨州市社会信用体系建设服务中心") && looks.contains("信用办履职"),
        "{looks}"
    );
    assert!(
        !looks.contains("operator"),
        "the organization, never the officer"
    );

    // In English too.
    let (status, _) = firm.page("/lang?to=en&back=/credit").await;
    assert!(status.is_redirection(), "{status}");
    let en = firm.ok("/credit").await;
    assert!(en.contains("My credit") && en.contains("Administrative penalty"));

    // Another enterprise sees its own standing, not this one's.
    let other = Visitor::signed_in(&app, "enterprise2").await;
    let page = other.ok("/credit").await;
    assert_eq!(text_of(&page, "level"), "A");
    assert!(!page.contains("行政处罚"));
    // Who has no archive of its own may not open the page; signed out, sign in first.
    for staff in ["bank", "agency", "operator"] {
        let (status, _) = Visitor::signed_in(&app, staff).await.page("/credit").await;
        assert_eq!(status, reqwest::StatusCode::FORBIDDEN, "{staff}");
    }
    let (status, _) = Visitor::new(&app).page("/credit").await;
    assert!(status.is_redirection(), "{status}");
}

/// A subject disputes a record from its credit page: the form refuses an empty reason
/// beside the field and a post without the CSRF token, files a good one and the record
/// then shows as under dispute, without the link; the form of a record under dispute is
/// the conflict page, another's record not found. The credit office decides it on its
/// page: without reasons refused, corrected the level is back, decided once only.
async fn a_subject_disputes_a_record_from_its_credit_page(app: TestApp) {
    let office = app.as_operator().await;
    let recorded = office
        .post_record(&NewCreditRecord::enterprise(
            &demo_uscc("enterprise1"),
            "administrative_penalty",
            "滨市监罚〔2026〕77号",
        ))
        .await;
    let record = recorded.record.id;
    let form_path = format!("/credit/records/{record}/dispute");
    let firm = Visitor::signed_in(&app, "enterprise1").await;
    let page = firm.ok("/credit").await;
    assert!(page.contains(&format!("href=\"{form_path}\"")), "offered");
    let form = firm.ok(&form_path).await;
    assert!(form.contains("行政处罚") && form.contains("−30"));
    assert!(form.contains("15 个工作日"));
    let csrf = hidden(&form, "csrf_token");

    let (status, _, html) = firm
        .post(&form_path, &[("reason", "   "), ("csrf_token", &csrf)])
        .await;
    assert_eq!(status, reqwest::StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("id=\"reason-error\""), "{html}");
    let reason = "处罚决定已被复议机关撤销，见滨政复决〔2026〕5号";
    let (status, _, _) = firm.post(&form_path, &[("reason", reason)]).await;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN, "no CSRF token");
    let open = office
        .send(reqwest::Method::GET, "/api/v1/credit/disputes", None)
        .await;
    assert_eq!(open.as_array().map(Vec::len), Some(0), "nothing filed yet");

    let (status, to, _) = firm
        .post(&form_path, &[("reason", reason), ("csrf_token", &csrf)])
        .await;
    assert_eq!(status, reqwest::StatusCode::SEE_OTHER);
    assert_eq!(to, "/credit");
    let page = firm.ok("/credit").await;
    assert!(page.contains("您的异议已提交"), "the flash");
    assert!(page.contains("异议处理中"));
    assert!(
        !page.contains(&format!("href=\"{form_path}\"")),
        "no second dispute"
    );
    let open = office
        .send(reqwest::Method::GET, "/api/v1/credit/disputes", None)
        .await;
    let open = open.as_array().expect("list");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["reason"], reason);
    assert_eq!(open[0]["record_id"], record.as_str());

    let (status, _) = firm.page(&form_path).await;
    assert_eq!(
        status,
        reqwest::StatusCode::CONFLICT,
        "under dispute already"
    );
    let other = Visitor::signed_in(&app, "enterprise2").await;
    let (status, _) = other.page(&form_path).await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND, "another's record");

    // The credit office decides it on its page.
    let (status, _) = firm.page("/credit/disputes").await;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN, "the office's page");
    let officer = Visitor::signed_in(&app, "operator").await;
    let list = officer.ok("/credit/disputes").await;
    let dispute = open[0]["id"].as_str().expect("id");
    let decision = format!("/credit/disputes/{dispute}/decision");
    assert!(list.contains(&format!("action=\"{decision}\"")));
    assert!(list.contains(reason) && list.contains(&demo_uscc("enterprise1")));
    assert!(list.contains("处理期限") && !list.contains("已逾期"));
    let csrf = hidden(&list, "csrf_token");
    // Without reasons: refused, nothing decided.
    let (status, _, _) = officer
        .post(
            &decision,
            &[("decision", "correct"), ("note", ""), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::UNPROCESSABLE_ENTITY);
    assert!(firm.ok("/credit").await.contains("异议处理中"));
    let (status, to, _) = officer
        .post(
            &decision,
            &[
                ("decision", "correct"),
                ("note", "复议决定书已核实"),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::SEE_OTHER);
    assert_eq!(to, "/credit/disputes");
    let list = officer.ok("/credit/disputes").await;
    assert!(list.contains("异议已处理") && list.contains("id=\"none\""));
    let page = firm.ok("/credit").await;
    assert_eq!(text_of(&page, "level"), "A", "corrected: the level is back");
    assert!(!page.contains("异议处理中"));
    // Decided once only.
    let (status, _, _) = officer
        .post(
            &decision,
            &[
                ("decision", "uphold"),
                ("note", "再次"),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CONFLICT);
}

crate::on_both_backends!(
    my_credit_page_shows_the_level_and_what_moves_it,
    a_subject_disputes_a_record_from_its_credit_page,
);
