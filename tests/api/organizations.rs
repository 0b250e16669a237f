use serde_json::{json, Value};

use crate::helpers::{assert_error, uscc, TestApp};

async fn the_operator_registers_an_organization(app: TestApp) {
    let token = app.login("operator").await;
    let code = uscc("91371600MA3CQ0101");
    let res = app
        .post(
            &token,
            "/api/v1/organizations",
            &json!({ "kind": "enterprise", "name": "滨州渤海建工有限公司", "uscc": code }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let org: Value = res.json().await.expect("json");
    assert_eq!(org["uscc"], code);
    assert_eq!(org["kind"], "enterprise");
    assert_eq!(org["uscc_whitelisted"], false);

    // Registering the same code twice is a conflict, not a second row.
    let res = app
        .post(
            &token,
            "/api/v1/organizations",
            &json!({ "kind": "enterprise", "name": "Another", "uscc": code }),
        )
        .await;
    assert_error(res, 409, "conflict").await;
    let orgs: Value = app
        .get(&token, "/api/v1/organizations")
        .await
        .json()
        .await
        .expect("json");
    let count = orgs
        .as_array()
        .expect("array")
        .iter()
        .filter(|o| o["uscc"] == code)
        .count();
    assert_eq!(count, 1);
}

async fn an_invalid_uscc_is_refused_naming_the_field(app: TestApp) {
    let token = app.login("operator").await;
    let good = uscc("91371600MA3CQ0102");
    // Change the check character to another valid character of the alphabet.
    let last = good.chars().last().expect("check char");
    let wrong = format!("{}{}", &good[..17], if last == '0' { '1' } else { '0' });
    for bad in [wrong.as_str(), "91371600MA3CQ010", "91371600MA3CQ010I2", ""] {
        let res = app
            .post(
                &token,
                "/api/v1/organizations",
                &json!({ "kind": "tenderee", "name": "T", "uscc": bad }),
            )
            .await;
        let error = assert_error(res, 422, "validation_failed").await;
        assert_eq!(error["details"]["field"], "uscc", "{bad}: {error}");
    }

    // The operator may whitelist a code that fails only the check, and it is marked.
    let res = app
        .post(
            &token,
            "/api/v1/organizations",
            &json!({ "kind": "tenderee", "name": "Old registration", "uscc": wrong, "whitelist_uscc": true }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let org: Value = res.json().await.expect("json");
    assert_eq!(org["uscc_whitelisted"], true);
}

async fn only_the_operator_administers(app: TestApp) {
    let token = app.login("enterprise1").await;
    let res = app
        .post(
            &token,
            "/api/v1/organizations",
            &json!({ "kind": "enterprise", "name": "X", "uscc": uscc("91371600MA3CQ0103") }),
        )
        .await;
    assert_error(res, 403, "forbidden").await;
    let res = app.get(&token, "/api/v1/organizations").await;
    assert_error(res, 403, "forbidden").await;
}

async fn users_carry_only_a_masked_resident_id(app: TestApp) {
    let token = app.login("operator").await;
    let org_id = app
        .organization_id(&token, &crate::helpers::demo_uscc("enterprise1"))
        .await;
    let body17 = "37160219880101123";
    let id = baohan::domain::resident_id::ResidentId::from_body(body17).expect("valid body");
    let clear = id.expose().to_owned();
    let res = app
        .post(
            &token,
            "/api/v1/users",
            &json!({
                "organization_id": org_id, "username": "li.ming", "display_name": "李明",
                "role": "enterprise", "password": "a long enough password", "resident_id": clear,
            }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let text = res.text().await.expect("text");
    assert!(
        !text.contains(&clear),
        "the ID number must not come back in clear: {text}"
    );
    let user: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(
        user["resident_id"],
        format!("{}********{}", &clear[..6], &clear[14..])
    );

    // A wrong check digit is refused, naming the field.
    let last = clear.chars().last().expect("check");
    let wrong = format!("{}{}", &clear[..17], if last == '1' { '2' } else { '1' });
    let res = app
        .post(
            &token,
            "/api/v1/users",
            &json!({
                "organization_id": org_id, "username": "wang.fang", "display_name": "王芳",
                "role": "enterprise", "password": "a long enough password", "resident_id": wrong,
            }),
        )
        .await;
    let error = assert_error(res, 422, "validation_failed").await;
    assert_eq!(error["details"]["field"], "resident_id");

    // A role that does not fit the organization's kind is refused.
    let res = app
        .post(
            &token,
            "/api/v1/users",
            &json!({
                "organization_id": org_id, "username": "zhao.lei", "display_name": "赵磊",
                "role": "issuer", "password": "a long enough password",
            }),
        )
        .await;
    let error = assert_error(res, 422, "validation_failed").await;
    assert_eq!(error["details"]["field"], "role");
}

crate::on_both_backends!(
    the_operator_registers_an_organization,
    an_invalid_uscc_is_refused_naming_the_field,
    only_the_operator_administers,
    users_carry_only_a_masked_resident_id,
);
