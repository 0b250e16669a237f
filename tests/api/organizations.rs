//! The operator registers organizations and users; nobody else does.

use crate::fixtures::library::resident_id;
use crate::fixtures::{NewOrg, NewUser, Operator, User};
use crate::helpers::{demo_uscc, uscc, TestApp};

async fn the_operator_registers_an_organization(app: TestApp) {
    let operator = app.as_operator().await;
    let code = uscc("91371600MA3CQ0101");
    let org = operator
        .register_org(&NewOrg::new("enterprise", "滨州渤海建工有限公司", &code))
        .await;
    assert_eq!(org.uscc, code);
    assert_eq!(org.kind, "enterprise");
    assert!(!org.uscc_whitelisted);

    // Registering the same code twice is a conflict, not a second row.
    operator
        .register_org(&NewOrg::new("enterprise", "Another", &code))
        .fails(409, "conflict")
        .await;
    let orgs = operator.organizations().await;
    assert_eq!(orgs.iter().filter(|o| o.uscc == code).count(), 1);
}

async fn an_invalid_uscc_is_refused_naming_the_field(app: TestApp) {
    let operator = app.as_operator().await;
    let good = uscc("91371600MA3CQ0102");
    // Change the check character to another valid character of the alphabet.
    let last = good.chars().last().expect("check char");
    let wrong = format!("{}{}", &good[..17], if last == '0' { '1' } else { '0' });
    for bad in [wrong.as_str(), "91371600MA3CQ010", "91371600MA3CQ010I2", ""] {
        let error = operator
            .register_org(&NewOrg::new("tenderee", "T", bad))
            .fails(422, "validation_failed")
            .await;
        assert_eq!(error.field(), Some("uscc"), "{bad}: {error:?}");
    }

    // The operator may whitelist a code that fails only the check, and it is marked.
    let org = operator
        .register_org(&NewOrg::new("tenderee", "Old registration", &wrong).whitelisted())
        .await;
    assert!(org.uscc_whitelisted);
}

async fn only_the_operator_administers(app: TestApp) {
    let enterprise = app.as_enterprise("enterprise1").await;
    let posing = enterprise.acting_as::<Operator>();
    let org = NewOrg::new("enterprise", "X", &uscc("91371600MA3CQ0103"));
    posing.register_org(&org).fails(403, "forbidden").await;
    posing.organizations().fails(403, "forbidden").await;
}

async fn users_carry_only_a_masked_resident_id(app: TestApp) {
    let operator = app.as_operator().await;
    let org = operator
        .organization_with_uscc(&demo_uscc("enterprise1"))
        .await;
    let clear = resident_id("37160219880101123");
    let res = operator
        .add_user(&NewUser::new(&org.id, "li.ming", "李明", "enterprise").resident_id(&clear))
        .response()
        .await;
    assert_eq!(res.status(), 201);
    let text = res.text().await.expect("text");
    assert!(
        !text.contains(&clear),
        "the ID number must not come back in clear: {text}"
    );
    let user: User = serde_json::from_str(&text).expect("json");
    assert_eq!(
        user.resident_id,
        Some(format!("{}********{}", &clear[..6], &clear[14..]))
    );

    // A wrong check digit is refused, naming the field.
    let last = clear.chars().last().expect("check");
    let wrong = format!("{}{}", &clear[..17], if last == '1' { '2' } else { '1' });
    let error = operator
        .add_user(&NewUser::new(&org.id, "wang.fang", "王芳", "enterprise").resident_id(&wrong))
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("resident_id"));

    // A role that does not fit the organization's kind is refused.
    let error = operator
        .add_user(&NewUser::new(&org.id, "zhao.lei", "赵磊", "issuer"))
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("role"));
}

crate::on_both_backends!(
    the_operator_registers_an_organization,
    an_invalid_uscc_is_refused_naming_the_field,
    only_the_operator_administers,
    users_carry_only_a_masked_resident_id,
);
