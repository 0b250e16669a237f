//! Lists that scale: every JSON list pages with `page` and `per_page`, says its total in
//! `X-Total-Count` and links its pages in `Link`; filters only narrow what the caller
//! may see; sorting is by a named key with a unique tie-breaker, so paging neither
//! repeats nor skips a row. And the same on the bidder's and issuer's list pages.

use chrono::TimeDelta;
use reqwest::Method;
use serde_json::Value;

use crate::fixtures::{NewSection, NewTender, Party, Tender, TestPki};
use crate::helpers::TestApp;

/// What the world holds: enterprise1's bonds from the bank over several China days,
/// with amounts that tie in places, and one bond enterprise2 holds from the insurer.
struct World {
    tenders: Vec<Tender>,
    /// enterprise2's bond (the insurer's), on a tender of its own.
    other_bond: String,
}

/// Thirteen tenders of two sections: section A's bond grows with the tender, section B's
/// is always 50,000.00 (ties). enterprise1 holds a bank bond on each section (26), made
/// four tenders a day; enterprise2 holds one from the insurer (external signing).
async fn world(app: &TestApp) -> World {
    let pki = TestPki::set_up(app).await;
    // The insurer's bond first: it signs in its own system, by the real clock, which
    // must not be behind the exchange's.
    let other = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-OTHER", 30))
        .await;
    let insurer = app.as_issuer("insurer").await;
    let application = app
        .as_enterprise("enterprise2")
        .await
        .apply(&other.sections[0], &insurer)
        .await;
    insurer.approve(&application, "960.00").await;
    insurer.confirm_payment(&application).await;
    let draft = insurer.draft(&application).await;
    let signature = pki.sign(&draft.bytes, "insurer");
    let issued = insurer.upload_signature(&application, signature).await;
    let mut tenders = Vec::new();
    for i in 0..13 {
        if i > 0 && i % 4 == 0 {
            app.advance_clock(TimeDelta::days(1));
        }
        let agency = app.as_agency().await;
        let mut tender = NewTender::two_sections(&format!("BZ-LIST-{i:02}"), 30);
        tender.sections = vec![
            NewSection::new("A", "路基", &format!("{}.00", 10_000 + 1_000 * i), None),
            NewSection::new("B", "桥梁", "50000.00", None),
        ];
        let tender = agency.create_project(&tender).await;
        let enterprise = app.as_enterprise("enterprise1").await;
        let bank = app.as_issuer("bank").await;
        for section in &tender.sections {
            let application = enterprise.apply(section, &bank).await;
            bank.approve(&application, "960.00").await;
            bank.confirm_payment(&application).await;
            bank.issue(&application).await;
        }
        tenders.push(tender);
    }
    World {
        tenders,
        other_bond: issued.number,
    }
}

/// One answer of a list: its rows, total and links.
struct Page {
    rows: Vec<Value>,
    total: i64,
    links: Vec<(String, String)>,
}

impl Page {
    fn numbers(&self) -> Vec<String> {
        self.rows.iter().map(|g| text(g, "number")).collect()
    }

    fn link(&self, rel: &str) -> Option<&str> {
        self.links
            .iter()
            .find(|(r, _)| r == rel)
            .map(|(_, url)| url.as_str())
    }
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}

/// A decimal amount in fen, for sorting.
fn fen(v: &Value) -> i64 {
    let amount = text(v, "amount");
    let (yuan, cents) = amount.split_once('.').unwrap_or((&amount, "0"));
    yuan.parse::<i64>().expect("yuan") * 100 + cents.parse::<i64>().expect("fen")
}

/// GET `path` as `session`, expecting a page of a list.
async fn list<R>(session: &crate::fixtures::Session<'_, R>, path: &str) -> Page {
    let res = session.request(Method::GET, path).send().await.expect(path);
    assert_eq!(res.status(), 200, "{path}");
    let header = |name: &str| {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{path}: no {name}"))
            .to_owned()
    };
    let total = header("x-total-count").parse().expect("a count");
    let links = header("link")
        .split(", ")
        .map(|part| {
            let (url, rel) = part.split_once("; rel=").expect("a link");
            (
                rel.trim_matches('"').to_owned(),
                url.trim_matches(['<', '>']).to_owned(),
            )
        })
        .collect();
    let rows: Vec<Value> = res.json().await.expect("a JSON array");
    Page { rows, total, links }
}

/// Paging through 26 guarantees ten at a time: the total and the links on every page,
/// every guarantee exactly once, in the order asked for; past the end an empty page
/// that still tells the total.
async fn paging_shows_every_row_once_in_the_order_asked(app: TestApp) {
    world(&app).await;
    let enterprise = app.as_enterprise("enterprise1").await;
    let all = list(&enterprise, "/api/v1/guarantees?per_page=500").await;
    assert_eq!(all.total, 26);
    assert_eq!(all.rows.len(), 26);
    for sort in [
        "amount",
        "-amount",
        "issued_at",
        "-issued_at",
        "number",
        "expires_at",
    ] {
        let mut seen = Vec::new();
        let mut path = format!("/api/v1/guarantees?sort={sort}&per_page=10");
        let mut pages = 0;
        loop {
            let page = list(&enterprise, &path).await;
            pages += 1;
            assert_eq!(page.total, 26, "{path}");
            assert!(page.rows.len() <= 10);
            assert!(page.link("first").is_some_and(|l| l.contains("page=1&")));
            assert_eq!(
                page.link("last"),
                Some(format!("/api/v1/guarantees?sort={sort}&page=3&per_page=10").as_str())
            );
            assert_eq!(page.link("prev").is_some(), pages > 1, "{path}");
            let next = page.link("next").map(str::to_owned);
            seen.extend(page.rows);
            match next {
                Some(next) => path = next,
                None => break,
            }
        }
        assert_eq!(pages, 3, "{sort}");
        let numbers: Vec<String> = seen.iter().map(|g| text(g, "number")).collect();
        let mut unique = numbers.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 26, "every row exactly once by {sort}");
        // The pages, one after the other, are the whole list in one page.
        let whole = list(
            &enterprise,
            &format!("/api/v1/guarantees?sort={sort}&per_page=500"),
        )
        .await;
        assert_eq!(numbers, whole.numbers(), "pages of {sort}");
        // The order asked for. Amounts and numbers are exact, ties broken by the
        // number; times are shown to the second (stored finer), so only their order is
        // checked.
        let (key, descending) = match sort.strip_prefix('-') {
            Some(k) => (k, true),
            None => (sort, false),
        };
        let in_order = |a: &Value, b: &Value| {
            let by_key = match key {
                "amount" => fen(a).cmp(&fen(b)),
                "issued_at" => text(a, "issued_at").cmp(&text(b, "issued_at")),
                "expires_at" => text(a, "valid_until").cmp(&text(b, "valid_until")),
                _ => text(a, "number").cmp(&text(b, "number")),
            };
            let by_key = if descending { by_key.reverse() } else { by_key };
            match key {
                "amount" | "number" => {
                    by_key.then_with(|| text(a, "number").cmp(&text(b, "number")))
                }
                _ => by_key,
            }
        };
        assert!(
            seen.windows(2).all(|w| in_order(&w[0], &w[1]).is_le()),
            "sorted by {sort}: {numbers:?}"
        );
    }
    // Newest first when no order is asked for.
    let issued: Vec<String> = all.rows.iter().map(|g| text(g, "issued_at")).collect();
    assert!(issued.windows(2).all(|w| w[0] >= w[1]), "{issued:?}");
    // Past the end: nothing, and the total still.
    let past = list(&enterprise, "/api/v1/guarantees?page=4&per_page=10").await;
    assert!(past.rows.is_empty());
    assert_eq!(past.total, 26);
    assert_eq!(
        past.link("prev"),
        Some("/api/v1/guarantees?page=3&per_page=10")
    );
    assert_eq!(past.link("next"), None);
}

/// Each filter narrows to what it names: state (repeated or comma list), number
/// prefix, project by code or id, section, issuer, enterprise and the China days of
/// issue, inclusive.
async fn each_filter_narrows_to_what_it_names(app: TestApp) {
    let w = world(&app).await;
    let enterprise = app.as_enterprise("enterprise1").await;
    let all = list(&enterprise, "/api/v1/guarantees?per_page=500")
        .await
        .rows;
    // One cancelled bond (bids are still open).
    let cancelled = text(&all[0], "number");
    enterprise
        .post::<Value>(
            &format!("/api/v1/guarantees/{cancelled}/cancel"),
            &serde_json::json!({}),
            200,
        )
        .await;
    let count = |p: Page| p.total;
    assert_eq!(
        list(&enterprise, "/api/v1/guarantees?state=cancelled")
            .await
            .numbers(),
        std::slice::from_ref(&cancelled)
    );
    assert_eq!(
        count(list(&enterprise, "/api/v1/guarantees?state=issued").await),
        25
    );
    assert_eq!(
        count(list(&enterprise, "/api/v1/guarantees?state=issued,cancelled").await),
        26
    );
    assert_eq!(
        count(
            list(
                &enterprise,
                "/api/v1/guarantees?state=issued&state=cancelled"
            )
            .await
        ),
        26
    );
    assert_eq!(
        count(list(&enterprise, "/api/v1/guarantees?state=paid").await),
        0
    );

    // A number, whole or its beginning (in any case).
    let number = text(&all[5], "number");
    assert_eq!(
        list(&enterprise, &format!("/api/v1/guarantees?number={number}"))
            .await
            .numbers(),
        std::slice::from_ref(&number)
    );
    let prefix = &number[..number.len() - 3];
    let expected = all
        .iter()
        .filter(|g| text(g, "number").starts_with(prefix))
        .count() as i64;
    let lower = prefix.to_lowercase();
    assert_eq!(
        count(list(&enterprise, &format!("/api/v1/guarantees?number={lower}")).await),
        expected
    );

    // A project by code or by id; a section.
    let tender = &w.tenders[3];
    for key in [&tender.code, &tender.id] {
        let found = list(&enterprise, &format!("/api/v1/guarantees?project={key}")).await;
        assert_eq!(found.total, 2, "project {key}");
        assert!(found
            .rows
            .iter()
            .all(|g| g["project"]["code"] == tender.code.as_str()));
    }
    let section = &tender.sections[1];
    let found = list(
        &enterprise,
        &format!("/api/v1/guarantees?section={}", section.id),
    )
    .await;
    assert_eq!(found.total, 1);

    // Issuer and enterprise, by id or by unified social credit code.
    let bank = app.as_issuer("bank").await;
    let uscc = crate::helpers::demo_uscc("bank");
    for key in [bank.org_id().to_owned(), uscc] {
        assert_eq!(
            count(list(&enterprise, &format!("/api/v1/guarantees?issuer={key}")).await),
            26
        );
    }
    let enterprise1 = enterprise.org_id().to_owned();
    assert_eq!(
        count(
            list(
                &bank,
                &format!("/api/v1/guarantees?enterprise={enterprise1}")
            )
            .await
        ),
        26
    );
    let operator = app.as_operator().await;
    assert_eq!(count(list(&operator, "/api/v1/guarantees").await), 27);
    assert_eq!(
        count(
            list(
                &operator,
                &format!("/api/v1/guarantees?enterprise={enterprise1}")
            )
            .await
        ),
        26
    );

    // Days of issue (China time), both ends inclusive.
    let day = |g: &Value| text(g, "issued_at")[..10].to_owned();
    let mut days: Vec<String> = all.iter().map(day).collect();
    days.sort();
    days.dedup();
    assert!(days.len() >= 3, "issued over several days: {days:?}");
    let on = |d: &str| all.iter().filter(|g| day(g) == d).count() as i64;
    let (first, second) = (&days[0], &days[1]);
    assert_eq!(
        count(
            list(
                &enterprise,
                &format!("/api/v1/guarantees?from={first}&to={first}")
            )
            .await
        ),
        on(first)
    );
    assert_eq!(
        count(list(&enterprise, &format!("/api/v1/guarantees?from={second}")).await),
        26 - on(first)
    );
    assert_eq!(
        count(list(&enterprise, &format!("/api/v1/guarantees?to={second}")).await),
        on(first) + on(second)
    );

    // The other lists filter the same way.
    let applications = list(
        &enterprise,
        &format!("/api/v1/applications?project={}", tender.code),
    )
    .await;
    assert_eq!(applications.total, 2);
    let issued = list(
        &enterprise,
        "/api/v1/applications?status=issued&sort=amount",
    )
    .await;
    assert_eq!(issued.total, 26);
    let amounts: Vec<i64> = issued.rows.iter().map(fen).collect();
    assert!(amounts.windows(2).all(|w| w[0] <= w[1]), "{amounts:?}");
    let orgs = list(&operator, "/api/v1/organizations?kind=issuer&sort=-name").await;
    assert!(orgs.total >= 2);
    assert!(orgs.rows.iter().all(|o| o["kind"] == "issuer"));
    let projects = list(
        &enterprise,
        "/api/v1/projects?q=BZ-LIST&sort=-code&per_page=5",
    )
    .await;
    assert_eq!(projects.total, 13);
    assert_eq!(projects.rows[0]["code"], "BZ-LIST-12");
    assert!(projects
        .link("next")
        .is_some_and(|l| l.contains("q=BZ-LIST")));
    let mails = list(&operator, "/api/v1/admin/mail?status=pending,sent,failed").await;
    assert_eq!(
        mails.total,
        list(&operator, "/api/v1/admin/mail").await.total
    );
    let _ = w.other_bond;
}

/// Bad values each answer 422 naming the field; filters never widen what a caller
/// sees (another enterprise's bonds or project, another issuer's bonds); values that
/// look like SQL are only values.
async fn filters_refuse_bad_values_and_never_widen_what_a_caller_sees(app: TestApp) {
    let w = world(&app).await;
    let enterprise2 = app.as_enterprise("enterprise2").await;
    for (query, field) in [
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=x", "page"),
        ("per_page=0", "per_page"),
        ("per_page=10000", "per_page"),
        ("per_page=1.5", "per_page"),
        ("page=1&page=2", "page"),
        ("sort=price", "sort"),
        ("sort=--amount", "sort"),
        ("state=lost", "state"),
        ("state=issued,lost", "state"),
        ("from=2026-13-01", "from"),
        ("from=yesterday", "from"),
        ("to=9999-12-31", "to"),
        ("from=2026-12-05&to=2026-12-04", "to"),
        ("colour=red", "colour"),
        ("number=a&number=b", "number"),
    ] {
        for list in ["/api/v1/guarantees"] {
            let error = enterprise2
                .get::<Value>(&format!("{list}?{query}"))
                .fails(422, "validation_failed")
                .await;
            assert_eq!(error.field(), Some(field), "{list}?{query}");
        }
    }
    for (path, field) in [
        ("/api/v1/applications?state=lost", "state"),
        ("/api/v1/applications?status=lost", "status"),
        ("/api/v1/applications?sort=issued_at", "sort"),
        ("/api/v1/claims?sort=amount", "sort"),
        ("/api/v1/claims?from=2026-02-30", "from"),
        ("/api/v1/projects?per_page=501", "per_page"),
        ("/api/v1/projects?sort=name", "sort"),
        ("/api/v1/projects?colour=red", "colour"),
    ] {
        let error = enterprise2
            .get::<Value>(path)
            .fails(422, "validation_failed")
            .await;
        assert_eq!(error.field(), Some(field), "{path}");
    }
    let operator = app.as_operator().await;
    for (path, field) in [
        ("/api/v1/organizations?kind=bank", "kind"),
        ("/api/v1/organizations?sort=uscc", "sort"),
        ("/api/v1/admin/mail?status=lost", "status"),
        ("/api/v1/admin/mail?page=0", "page"),
    ] {
        let error = operator
            .get::<Value>(path)
            .fails(422, "validation_failed")
            .await;
        assert_eq!(error.field(), Some(field), "{path}");
    }

    // enterprise2 asking for enterprise1's bonds, by the enterprise, its project or
    // one of its numbers, gets nothing.
    let enterprise1 = app.as_enterprise("enterprise1").await;
    let theirs = list(&enterprise1, "/api/v1/guarantees?per_page=1")
        .await
        .numbers();
    let tender = &w.tenders[0];
    for query in [
        format!("enterprise={}", enterprise1.org_id()),
        format!("enterprise={}", crate::helpers::demo_uscc("enterprise1")),
        format!("project={}", tender.code),
        format!("project={}", tender.id),
        format!("number={}", theirs[0]),
        format!("section={}", tender.sections[0].id),
    ] {
        let page = list(&enterprise2, &format!("/api/v1/guarantees?{query}")).await;
        assert!(page.rows.is_empty(), "{query}");
        assert_eq!(page.total, 0, "{query}");
    }
    assert_eq!(
        list(&enterprise2, "/api/v1/guarantees").await.numbers(),
        std::slice::from_ref(&w.other_bond)
    );
    // The insurer asking for the bank's bonds sees none; the bank none of the
    // insurer's.
    let insurer = app.as_issuer("insurer").await;
    let bank = app.as_issuer("bank").await;
    let page = list(
        &insurer,
        &format!("/api/v1/guarantees?issuer={}", bank.org_id()),
    )
    .await;
    assert_eq!((page.total, page.rows.len()), (0, 0));
    let page = list(
        &bank,
        &format!("/api/v1/guarantees?number={}", w.other_bond),
    )
    .await;
    assert_eq!(page.total, 0);
    let page = list(
        &bank,
        &format!("/api/v1/applications?issuer={}", insurer.org_id()),
    )
    .await;
    assert_eq!(page.total, 0);

    // Values that look like SQL or LIKE patterns match nothing.
    for query in [
        "number=%25",
        "number=_",
        "number=%27%20OR%20%271%27%3D%271",
        "project=x%27%20OR%201%3D1%20--",
        "issuer=%27%3B%20DROP%20TABLE%20guarantees%3B%20--",
    ] {
        let page = list(&enterprise1, &format!("/api/v1/guarantees?{query}")).await;
        assert_eq!(page.total, 0, "{query}");
    }
    assert_eq!(list(&enterprise1, "/api/v1/guarantees").await.total, 26);
}

/// A page of the bidder's own: it filters its guarantees by state, sorts them by amount
/// (the column says so), the pager keeps both, and a mistyped date comes back as the
/// page with the error beside the field.
async fn the_guarantee_page_filters_sorts_and_keeps_both_in_its_pager(app: TestApp) {
    world(&app).await;
    let enterprise = app.as_enterprise("enterprise1").await;
    let all = list(&enterprise, "/api/v1/guarantees?per_page=500")
        .await
        .rows;
    let cancelled = text(&all[1], "number");
    enterprise
        .post::<Value>(
            &format!("/api/v1/guarantees/{cancelled}/cancel"),
            &serde_json::json!({}),
            200,
        )
        .await;
    let browser = app.browser();
    browser.sign_in("enterprise1").await;
    let html = |path: &'static str| {
        let browser = &browser;
        async move {
            let res = browser
                .get::<()>(path)
                .header("Accept", "text/html")
                .response()
                .await;
            let status = res.status().as_u16();
            let content_type = res
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            assert!(
                content_type.starts_with("text/html"),
                "{path}: {content_type}"
            );
            (status, res.text().await.expect("page"))
        }
    };
    let (status, page) = html("/enterprise/guarantees?state=cancelled").await;
    assert_eq!(status, 200);
    assert!(page.contains(&cancelled), "the cancelled one is listed");
    assert_eq!(
        all.iter()
            .filter(|g| page.contains(&text(g, "number")))
            .count(),
        1,
        "only the cancelled one"
    );
    assert!(
        page.contains(r#"<option value="cancelled" selected>"#),
        "{page}"
    );

    let (status, page) = html("/enterprise/guarantees?state=issued&sort=amount&size=10").await;
    assert_eq!(status, 200);
    assert!(
        page.contains(r#"aria-sort="ascending"><a href="/enterprise/guarantees?state=issued&#38;sort=-amount">"#),
        "{page}"
    );
    assert!(
        page.contains(
            r#"href="/enterprise/guarantees?state=issued&#38;sort=amount&#38;page=2&#38;size=10""#
        ),
        "{page}"
    );
    // The ten smallest of the issued ones, in order.
    let mut issued: Vec<&Value> = all
        .iter()
        .filter(|g| text(g, "number") != cancelled)
        .collect();
    issued.sort_by(|a, b| {
        fen(a)
            .cmp(&fen(b))
            .then(text(a, "number").cmp(&text(b, "number")))
    });
    let positions: Vec<usize> = issued[..10]
        .iter()
        .map(|g| {
            page.find(&format!(">{}</a>", text(g, "number")))
                .expect("listed")
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "in order of amount"
    );
    assert!(!page.contains(&format!(">{}</a>", text(issued[10], "number"))));

    for (path, field) in [
        ("/enterprise/guarantees?from=2026-13-40", "from"),
        ("/enterprise/guarantees?state=lost", "state"),
        ("/enterprise/guarantees?from=2026-12-05&to=2026-12-01", "to"),
    ] {
        let (status, page) = html(path).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            page.contains(&format!(r#"id="{field}-error""#)),
            "{path}: {page}"
        );
        assert!(page.contains("error-summary"), "{path}");
    }

    // The issuer's list is the same page, with the applicant named.
    let browser = app.browser();
    browser.sign_in("bank").await;
    let res = browser
        .get::<()>("/issuer/guarantees?sort=-amount&number=BH")
        .header("Accept", "text/html")
        .response()
        .await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.expect("page");
    assert!(page.contains(r#"aria-sort="descending""#), "{page}");
    assert!(page.contains(&text(&all[0], "number")));
}

/// The bidder's application page filters by state and sorts by amount the same way.
async fn the_application_page_filters_and_sorts(app: TestApp) {
    world(&app).await;
    let browser = app.browser();
    browser.sign_in("enterprise1").await;
    let res = browser
        .get::<()>("/enterprise/applications?state=issued&sort=-amount&project=BZ-LIST-12")
        .header("Accept", "text/html")
        .response()
        .await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.expect("page");
    assert!(page.contains(r#"aria-sort="descending""#), "{page}");
    assert_eq!(page.matches("BZ-LIST-12</a>").count(), 2, "{page}");
    assert!(!page.contains("BZ-LIST-11</a>"));
    let res = browser
        .get::<()>("/enterprise/applications?to=someday")
        .header("Accept", "text/html")
        .response()
        .await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.expect("page").contains(r#"id="to-error""#));
}

/// The description names the paging parameters and the headers of every list.
async fn every_list_documents_its_paging(app: TestApp) {
    let spec: Value = app.public_get("/api/openapi.json").await;
    for (path, filter) in [
        ("/api/v1/guarantees", Some("state")),
        ("/api/v1/applications", Some("project")),
        ("/api/v1/claims", Some("number")),
        ("/api/v1/organizations", Some("kind")),
        ("/api/v1/projects", Some("q")),
        ("/api/v1/admin/mail", Some("status")),
        ("/api/v1/projects/{id}/bonds", None),
    ] {
        let op = &spec["paths"][path]["get"];
        let names: Vec<&str> = op["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{path} has parameters"))
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        for name in ["page", "per_page"].into_iter().chain(filter) {
            assert!(names.contains(&name), "{path} documents {name}: {names:?}");
        }
        let headers = &op["responses"]["200"]["headers"];
        assert!(headers["X-Total-Count"].is_object(), "{path}");
        assert!(headers["Link"].is_object(), "{path}");
        assert!(op["responses"]["422"].is_object(), "{path}");
    }
}

crate::on_both_backends!(
    every_list_documents_its_paging,
    paging_shows_every_row_once_in_the_order_asked,
    each_filter_narrows_to_what_it_names,
    filters_refuse_bad_values_and_never_widen_what_a_caller_sees,
    the_guarantee_page_filters_sorts_and_keeps_both_in_its_pager,
    the_application_page_filters_and_sorts,
);
