//! The deposit-free city's configured lists: the matters catalogue (管理清单) and the
//! record categories, seeded from the data files once however many instances start,
//! read by anyone, changed only by the credit office (the operator for now), each
//! change a new version in the history and an audit entry; bad values change nothing.

use baohan::domain::catalogue::{
    seed_categories, seed_matters, MATTERS_TOML, RECORD_CATEGORIES_TOML,
};
use reqwest::Method;
use serde_json::json;

use crate::fixtures::library::ChainCheck;
use crate::fixtures::{Matter, MatterFields};
use crate::helpers::TestApp;
use crate::pages_ei::{hidden, Visitor};

/// The codes of the data files, in their order.
fn shipped_codes() -> (Vec<String>, Vec<String>) {
    let today = chrono::Utc::now().date_naive();
    let matters = seed_matters(MATTERS_TOML, today).expect("matters file");
    let categories = seed_categories(RECORD_CATEGORIES_TOML).expect("categories file");
    (
        matters.into_iter().map(|(c, _)| c).collect(),
        categories.into_iter().map(|(c, _)| c).collect(),
    )
}

fn as_i64(n: usize) -> i64 {
    i64::try_from(n).expect("a count")
}

async fn the_lists_are_there_once_even_when_instances_start_together(app: TestApp) {
    let (matter_codes, category_codes) = shipped_codes();
    let (m, k) = (as_i64(matter_codes.len()), as_i64(category_codes.len()));
    let anyone = app.signed_out();
    let listed: Vec<String> = anyone.matters().await.into_iter().map(|m| m.code).collect();
    assert_eq!(listed, matter_codes);
    assert_eq!(
        listed[0], "hospital_admission",
        "the article's matters first"
    );
    let categories = anyone.record_categories().await;
    let listed: Vec<&str> = categories.iter().map(|c| c.code.as_str()).collect();
    assert_eq!(listed, category_codes);
    for (code, polarity) in [
        ("bid_bond_claim_paid", "negative"),
        ("guarantee_fulfilled", "positive"),
    ] {
        let c = categories.iter().find(|c| c.code == code).expect(code);
        assert_eq!(c.fields.polarity, polarity);
    }
    assert_eq!(app.catalogue_rows().await, [m, m, k, k]);

    // A database without the lists, and two instances starting on it at once while two
    // more seedings run: each code ends up there once, with one version.
    app.empty_catalogue().await;
    let (one, two, three, four) = tokio::join!(
        app.another_instance(),
        app.another_instance(),
        app.seed_catalogue(),
        app.seed_catalogue()
    );
    assert_eq!(app.catalogue_rows().await, [m, m, k, k]);
    for instance in [&one, &two] {
        let listed = instance.signed_out().matters().await;
        assert_eq!(listed.len(), matter_codes.len());
        assert!(listed.iter().all(|m| m.version == 1));
    }
    // At most one seeding added each list.
    assert!(three.0 + four.0 <= matter_codes.len(), "{three:?} {four:?}");
    // Starting again adds nothing, and the audit chain is whole.
    assert_eq!(app.seed_catalogue().await, (0, 0));
    assert_eq!(app.catalogue_rows().await, [m, m, k, k]);
    assert!(matches!(app.audit_chain(), ChainCheck::Intact { .. }));
}

async fn the_credit_office_edits_a_matter_and_its_history_shows_it(app: TestApp) {
    let operator = app.as_operator().await;
    let anyone = app.signed_out();
    let before = anyone.matter("rental_housing").await;
    assert_eq!(before.matter.version, 1);
    assert_eq!(before.matter.fields.write_off_state, "in_progress");

    let mut done = before.matter.fields.clone();
    done.write_off_state = "done".into();
    done.write_off_done_on = Some("2026-01-15".into());
    done.write_off_evidence = Some("全市住房租赁押金纳入监管账户".into());
    done.typical_amount = "2500.5".into();
    let updated = operator.update_matter("rental_housing", &done).await;
    assert_eq!(updated.version, 2);
    assert_eq!(updated.fields.typical_amount, "2500.50");
    assert_eq!(updated.fields.write_off_state, "done");

    let after = anyone.matter("rental_housing").await;
    assert_eq!(after.matter.version, 2);
    let versions: Vec<(i32, &str, &str)> = after
        .history
        .iter()
        .map(|v| {
            (
                v.version,
                v.source.as_str(),
                v.content.write_off_state.as_str(),
            )
        })
        .collect();
    assert_eq!(
        versions,
        [
            (2, "credit_office", "done"),
            (1, "data_file", "in_progress")
        ]
    );
    assert_eq!(after.history[1].content, before.matter.fields);
    assert_eq!(
        app.audit_of("matter", "rental_housing").await,
        [(
            "update_matter".to_owned(),
            Some("in_progress".to_owned()),
            Some("done".to_owned())
        )]
    );

    // The same values again: no new version, no audit entry.
    let again = operator
        .update_matter("rental_housing", &after.matter.fields)
        .await;
    assert_eq!(again.version, 2);
    assert_eq!(app.audit_of("matter", "rental_housing").await.len(), 1);
    // Starting again does not put the data file's values back.
    app.seed_catalogue().await;
    assert_eq!(anyone.matter("rental_housing").await.matter.version, 2);

    // A record category: the same way.
    let categories = anyone.record_categories().await;
    let claim = categories
        .iter()
        .find(|c| c.code == "bid_bond_claim_paid")
        .expect("category");
    let mut fields = claim.fields.clone();
    fields.points += 10;
    let updated = operator
        .update_category("bid_bond_claim_paid", &fields)
        .await;
    assert_eq!((updated.version, updated.fields.points), (2, fields.points));
    let history = anyone.record_category("bid_bond_claim_paid").await;
    let versions: Vec<(i32, &str, i64)> = history
        .iter()
        .map(|v| (v.version, v.source.as_str(), v.content.points))
        .collect();
    assert_eq!(
        versions,
        [
            (2, "credit_office", fields.points),
            (1, "data_file", claim.fields.points)
        ]
    );
    assert_eq!(
        app.audit_of("record_category", "bid_bond_claim_paid").await,
        [("update_record_category".to_owned(), None, None)]
    );
    assert!(matches!(app.audit_chain(), ChainCheck::Intact { .. }));
}

/// What `edit` makes of a matter's fields, sent by the credit office, is refused with
/// 422 naming `field`.
async fn refused(
    app: &TestApp,
    matter: &Matter,
    field: &str,
    edit: impl FnOnce(&mut MatterFields),
) {
    let operator = app.as_operator().await;
    let mut fields = matter.fields.clone();
    edit(&mut fields);
    let error = operator
        .update_matter(&matter.code, &fields)
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some(field), "{error:?}");
}

async fn only_the_credit_office_edits_and_bad_values_change_nothing(app: TestApp) {
    let rows = app.catalogue_rows().await;
    let matters = app.signed_out().matters().await;
    let of = |code: &str| matters.iter().find(|m| m.code == code).expect(code).clone();
    let (done, in_progress, planned) = (
        of("hospital_admission"),
        of("rental_housing"),
        of("quality_guarantee_deposit"),
    );
    assert_eq!(
        [&done, &in_progress, &planned].map(|m| m.fields.write_off_state.as_str()),
        ["done", "in_progress", "planned"]
    );

    // Who may not: anonymous, an enterprise, an issuer, an agency.
    let mut cut = done.fields.clone();
    cut.typical_amount = "1.00".into();
    let body = serde_json::to_value(&cut).expect("json");
    let category = json!({
        "name_zh": "行政处罚", "name_en": "Administrative penalty", "dimension": "compliance",
        "polarity": "negative", "points": 1, "validity_days": 1,
    });
    let anyone = app.signed_out();
    for (path, body) in [
        ("/api/v1/matters/hospital_admission", &body),
        (
            "/api/v1/record-categories/administrative_penalty",
            &category,
        ),
    ] {
        anyone
            .send(Method::PUT, path, Some(body))
            .fails(401, "unauthenticated")
            .await;
        let enterprise = app.as_enterprise("enterprise1").await;
        let issuer = app.as_issuer("bank").await;
        let agency = app.as_agency().await;
        for status in [
            enterprise
                .send(Method::PUT, path, Some(body))
                .status()
                .await,
            issuer.send(Method::PUT, path, Some(body)).status().await,
            agency.send(Method::PUT, path, Some(body)).status().await,
        ] {
            assert_eq!(status, 403, "{path}");
        }
    }

    // Bad values, each named by its field.
    refused(&app, &done, "path", |f| f.path = "abolish".into()).await;
    refused(&app, &done, "typical_amount", |f| {
        f.typical_amount = "-5".into()
    })
    .await;
    refused(&app, &done, "typical_amount", |f| {
        f.typical_amount = "1e9".into()
    })
    .await;
    refused(&app, &done, "required_level", |f| {
        f.required_level = Some("AAAA".into())
    })
    .await;
    refused(&app, &planned, "commitment_text", |f| {
        f.commitment_text = Some("本企业承诺".into())
    })
    .await;
    // Done without evidence or a date; done in the year 9999.
    refused(&app, &in_progress, "write_off_evidence", |f| {
        f.write_off_state = "done".into();
        f.write_off_done_on = Some("2026-01-15".into());
    })
    .await;
    refused(&app, &in_progress, "write_off_done_on", |f| {
        f.write_off_state = "done".into();
        f.write_off_evidence = Some("已完成".into());
    })
    .await;
    refused(&app, &in_progress, "write_off_done_on", |f| {
        f.write_off_state = "done".into();
        f.write_off_done_on = Some("9999-12-31".into());
        f.write_off_evidence = Some("已完成".into());
    })
    .await;
    // Back from done; skipping a step.
    refused(&app, &done, "write_off_state", |f| {
        f.write_off_state = "in_progress".into();
        f.write_off_done_on = None;
    })
    .await;
    refused(&app, &planned, "write_off_state", |f| {
        f.write_off_state = "done".into();
        f.write_off_done_on = Some("2026-01-15".into());
        f.write_off_evidence = Some("已完成".into());
    })
    .await;
    let operator = app.as_operator().await;
    for (field, value) in [
        ("points", json!(0)),
        ("dimension", json!("wealth")),
        ("validity_days", json!(99999)),
    ] {
        let mut body = category.clone();
        body[field] = value;
        let error = operator
            .send(
                Method::PUT,
                "/api/v1/record-categories/administrative_penalty",
                Some(&body),
            )
            .fails(422, "validation_failed")
            .await;
        assert_eq!(error.field(), Some(field));
    }
    // A field the API does not know, and a code it does not know.
    let mut extra = body.clone();
    extra["version"] = json!(7);
    operator
        .send(
            Method::PUT,
            "/api/v1/matters/hospital_admission",
            Some(&extra),
        )
        .fails(400, "invalid_json")
        .await;
    for path in [
        "/api/v1/matters/no_such_matter",
        "/api/v1/matters/..%2Fbid_bond",
    ] {
        operator
            .send(Method::PUT, path, Some(&body))
            .fails(404, "not_found")
            .await;
        anyone
            .send(Method::GET, path, None)
            .fails(404, "not_found")
            .await;
    }
    operator
        .send(
            Method::PUT,
            "/api/v1/record-categories/no_such",
            Some(&category),
        )
        .fails(404, "not_found")
        .await;

    // Nothing changed.
    assert_eq!(app.catalogue_rows().await, rows);
    for (kind, code) in [
        ("matter", "hospital_admission"),
        ("matter", "rental_housing"),
        ("matter", "quality_guarantee_deposit"),
        ("record_category", "administrative_penalty"),
    ] {
        assert_eq!(app.audit_of(kind, code).await, [], "{code}");
    }
    assert!(app
        .signed_out()
        .matters()
        .await
        .iter()
        .all(|m| m.version == 1));
}

/// Whether `html` holds `text`, its apostrophes escaped however the templates do it.
fn shows(html: &str, text: &str) -> bool {
    ["'", "&#x27;", "&#39;", "&apos;"]
        .iter()
        .any(|apostrophe| html.contains(&text.replace('\'', apostrophe)))
}

/// The public catalogue page lists every matter in Chinese and, after switching, in
/// English; a matter's page shows its details and history; an unknown one is a 404 page.
async fn the_public_catalogue_page_lists_every_matter_in_both_languages(app: TestApp) {
    let today = chrono::Utc::now().date_naive();
    let shipped = seed_matters(MATTERS_TOML, today).expect("matters file");
    let visitor = Visitor::new(&app);
    let home = visitor.ok("/").await;
    assert!(
        home.contains("href=\"/matters\""),
        "linked from the navigation"
    );
    let zh = visitor.ok("/matters").await;
    assert!(zh.contains("押金事项管理清单"));
    for (code, m) in &shipped {
        assert!(
            zh.contains(&format!("href=\"/matters/{code}\">{}</a>", m.name_zh)),
            "{code}"
        );
        assert!(!shows(&zh, &m.name_en), "{code} in English");
    }
    assert!(zh.contains("信用替代") && zh.contains("已销号"));

    let (status, _) = visitor.page("/lang?to=en&back=/matters").await;
    assert!(status.is_redirection(), "{status}");
    let en = visitor.ok("/matters").await;
    assert!(en.contains("Deposit matters catalogue"));
    for (code, m) in &shipped {
        let link = format!("href=\"/matters/{code}\">{}</a>", m.name_en);
        assert!(shows(&en, &link), "{code}");
    }
    assert!(en.contains("Replaced by credit") && en.contains("Done"));

    // One matter: its details, and its history once the credit office changed it.
    let operator = app.as_operator().await;
    let mut fields = app
        .signed_out()
        .matter("talent_apartment")
        .await
        .matter
        .fields;
    fields.typical_amount = "3500.00".into();
    operator.update_matter("talent_apartment", &fields).await;
    let page = visitor.ok("/matters/talent_apartment").await;
    assert!(page.contains("Talent apartment rental deposit"));
    assert!(page.contains(fields.commitment_text.as_deref().expect("a commitment")));
    assert!(
        page.contains("¥3,500.00") && page.contains("¥3,000.00"),
        "both versions"
    );
    assert!(page.contains("Credit office") && page.contains("Initial catalogue"));
    let (status, _) = visitor.page("/matters/no_such_matter").await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
}

/// Posts the edit form of `rental_housing` with `fields` and the CSRF token (none when
/// empty).
async fn post_edit(
    visitor: &Visitor<'_>,
    fields: &[(String, String)],
    csrf: &str,
) -> (reqwest::StatusCode, String, String) {
    let mut pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if !csrf.is_empty() {
        pairs.push(("csrf_token", csrf));
    }
    visitor.post("/matters/rental_housing/edit", &pairs).await
}

/// The credit office's edit form: filled with the matter, a wrong value shown again as
/// typed with its error beside the field (422), a good one saved as a new version with a
/// flash; without the CSRF token, or for an enterprise, refused.
async fn the_credit_office_edits_a_matter_through_its_form(app: TestApp) {
    let operator = Visitor::signed_in(&app, "operator").await;
    let form = operator.ok("/matters/rental_housing/edit").await;
    assert!(form.contains("name=\"name_en\" value=\"Rental housing deposit\""));
    let csrf = hidden(&form, "csrf_token");
    let stored = app
        .signed_out()
        .matter("rental_housing")
        .await
        .matter
        .fields;
    let value = serde_json::to_value(&stored).expect("json");
    let mut fields: Vec<(String, String)> = value
        .as_object()
        .expect("object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    let set = |fields: &mut Vec<(String, String)>, key: &str, to: &str| {
        fields.iter_mut().find(|(k, _)| k == key).expect(key).1 = to.to_owned();
    };
    set(&mut fields, "name_en", "Rental deposit (supervised)");
    set(&mut fields, "write_off_state", "done");
    set(&mut fields, "write_off_done_on", "2026-01-15");
    // Done without evidence: shown again as typed, the error beside the field.
    let (status, _, html) = post_edit(&operator, &fields, &csrf).await;
    assert_eq!(status, reqwest::StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("id=\"write_off_evidence-error\""), "{html}");
    assert!(html.contains("value=\"Rental deposit (supervised)\""));
    assert_eq!(
        app.signed_out()
            .matter("rental_housing")
            .await
            .matter
            .version,
        1
    );

    // Without the CSRF token: refused, nothing changed.
    set(
        &mut fields,
        "write_off_evidence",
        "全市住房租赁押金纳入监管账户",
    );
    let (status, _, _) = post_edit(&operator, &fields, "").await;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN);
    assert_eq!(
        app.signed_out()
            .matter("rental_housing")
            .await
            .matter
            .version,
        1
    );

    let (status, to, _) = post_edit(&operator, &fields, &csrf).await;
    assert_eq!(status, reqwest::StatusCode::SEE_OTHER);
    assert_eq!(to, "/matters/rental_housing");
    let page = operator.ok(&to).await;
    assert!(page.contains("事项已保存为新版本"), "the flash");
    let saved = app.signed_out().matter("rental_housing").await;
    assert_eq!(saved.matter.version, 2);
    assert_eq!(saved.matter.fields.name_en, "Rental deposit (supervised)");
    assert_eq!(saved.matter.fields.write_off_state, "done");

    // An enterprise may not open the form.
    let enterprise = Visitor::signed_in(&app, "enterprise1").await;
    let (status, _) = enterprise.page("/matters/rental_housing/edit").await;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN);
}

/// The record categories' page: public, every category in the page's language with its
/// signed points; the credit office's form keeps a wrong value with its error (422, the
/// category unchanged), saves a good one as a new version shown in the history, and is
/// refused to anyone else and without the CSRF token.
async fn the_credit_office_edits_a_record_category_through_its_form(app: TestApp) {
    let anyone = Visitor::new(&app);
    let list = anyone.ok("/record-categories").await;
    let shipped = seed_categories(RECORD_CATEGORIES_TOML).expect("categories file");
    for (code, k) in &shipped {
        assert!(list.contains(&format!("<tr id=\"{code}\">")), "{code}");
        assert!(list.contains(&k.name_zh), "{code} in Chinese");
    }
    assert!(
        list.contains("−30") && list.contains("+20"),
        "signed points"
    );
    assert!(
        !list.contains("/record-categories/administrative_penalty/edit"),
        "no form link for the public"
    );
    let (status, _) = anyone
        .page("/record-categories/administrative_penalty/edit")
        .await;
    assert!(
        status == reqwest::StatusCode::SEE_OTHER || status == reqwest::StatusCode::FORBIDDEN,
        "signed out: {status}"
    );

    let operator = Visitor::signed_in(&app, "operator").await;
    let list = operator.ok("/record-categories").await;
    assert!(list.contains("href=\"/record-categories/administrative_penalty/edit\""));
    let form = operator
        .ok("/record-categories/administrative_penalty/edit")
        .await;
    assert!(form.contains("name=\"points\" value=\"30\""), "filled");
    assert!(form.contains("初始清单"), "its history");
    let csrf = hidden(&form, "csrf_token");
    let post = |fields: Vec<(&'static str, &'static str)>, csrf: String| {
        let operator = &operator;
        async move {
            let mut pairs = fields;
            let csrf = csrf;
            let mut all: Vec<(&str, &str)> = std::mem::take(&mut pairs);
            if !csrf.is_empty() {
                all.push(("csrf_token", csrf.as_str()));
            }
            operator
                .post("/record-categories/administrative_penalty/edit", &all)
                .await
        }
    };
    let good = |points: &'static str| {
        vec![
            ("name_zh", "行政处罚"),
            ("name_en", "Administrative penalty (revised)"),
            ("dimension", "compliance"),
            ("polarity", "negative"),
            ("points", points),
            ("validity_days", "1095"),
        ]
    };
    let version = || async {
        app.signed_out()
            .record_category("administrative_penalty")
            .await[0]
            .version
    };
    // Not a number, then out of range: each shown again as typed with its error.
    for points in ["thirty", "0", "1001"] {
        let (status, _, html) = post(good(points), csrf.clone()).await;
        assert_eq!(
            status,
            reqwest::StatusCode::UNPROCESSABLE_ENTITY,
            "{points}"
        );
        assert!(html.contains("id=\"points-error\""), "{points}: {html}");
        assert!(
            html.contains(&format!("value=\"{points}\"")),
            "{points} kept"
        );
        assert!(html.contains("value=\"Administrative penalty (revised)\""));
        assert_eq!(version().await, 1, "{points} changed nothing");
    }
    let mut bad_dimension = good("40");
    bad_dimension[2] = ("dimension", "popularity");
    let (status, _, html) = post(bad_dimension, csrf.clone()).await;
    assert_eq!(status, reqwest::StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("id=\"dimension-error\""), "{html}");
    // Without the token: refused.
    let (status, _, _) = post(good("40"), String::new()).await;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN);
    assert_eq!(version().await, 1);

    let (status, to, _) = post(good("40"), csrf.clone()).await;
    assert_eq!(status, reqwest::StatusCode::SEE_OTHER);
    assert_eq!(to, "/record-categories#administrative_penalty");
    let page = operator.ok("/record-categories").await;
    assert!(page.contains("记录类别已保存为新版本"), "the flash");
    assert!(page.contains("−40"));
    let history = app
        .signed_out()
        .record_category("administrative_penalty")
        .await;
    assert_eq!(history[0].version, 2);
    assert_eq!(history[0].source, "credit_office");
    assert_eq!(history[0].content.points, 40);
    assert_eq!(
        history[0].content.name_en,
        "Administrative penalty (revised)"
    );
    let form = operator
        .ok("/record-categories/administrative_penalty/edit")
        .await;
    assert!(
        form.contains("市信用办") && form.contains("初始清单"),
        "both versions"
    );

    // An enterprise may not open or post the form.
    let enterprise = Visitor::signed_in(&app, "enterprise1").await;
    let (status, _) = enterprise
        .page("/record-categories/administrative_penalty/edit")
        .await;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN);
    let unknown = operator.page("/record-categories/no_such/edit").await;
    assert_eq!(unknown.0, reqwest::StatusCode::NOT_FOUND);
}

crate::on_both_backends!(
    the_credit_office_edits_a_record_category_through_its_form,
    the_credit_office_edits_a_matter_through_its_form,
    the_public_catalogue_page_lists_every_matter_in_both_languages,
    the_lists_are_there_once_even_when_instances_start_together,
    the_credit_office_edits_a_matter_and_its_history_shows_it,
    only_the_credit_office_edits_and_bad_values_change_nothing,
);
