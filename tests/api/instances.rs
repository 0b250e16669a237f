//! Several instances on one database: what one instance changes is in force on the
//! others at their next request, without waiting for a timer.

use baohan::db::schema::sessions;
use baohan::pki::demo::{serial_hex, RevokedSerial};
use chrono::{Duration, Utc};
use diesel::prelude::*;
use reqwest::Method;
use serde_json::json;

use crate::fixtures::{crl_pem, pem, register_hosted_key, ApiToken, DemoCa, IssuerSpec, KeyType};
use crate::helpers::{demo_uscc, TestApp};

/// A trust anchor registered through one instance lets another register a certificate
/// under it at once (it used to refuse for up to 30 s: each instance rebuilt its store
/// on a timer), and a CRL registered through one revokes on the other at once.
async fn trust_changes_made_through_one_instance_are_in_force_on_another_at_once(app: TestApp) {
    let other = app.another_instance().await;
    let ca = DemoCa::new("Second Test CA", KeyType::EcP256).expect("CA");

    let operator = app.as_operator().await;
    operator
        .trust_anchor("second test CA", &pem(&ca.cert))
        .await;
    operator.crl(&crl_pem(&ca, Duration::days(90))).await;
    let spec = IssuerSpec::new("黄河融资担保", &demo_uscc("guarantor"));
    let cert = register_hosted_key(&other, &ca, "guarantor", &spec).await;
    let bond = other
        .bond_on_new_tender("enterprise1", "guarantor", "BZ-INST-1")
        .await;
    for instance in [&app, &other] {
        let report = instance.verify(&bond, &bond.code).await;
        assert_eq!(report.indication, "PASSED", "{report:?}");
    }

    // The key was compromised before the bond was signed: the CA's next CRL says so,
    // and it reaches the exchange through the first instance.
    let revoked = RevokedSerial {
        serial_hex: serial_hex(&cert.cert).expect("serial"),
        revoked_at: Utc::now() - Duration::hours(1),
    };
    let crl = ca
        .crl(
            &[revoked],
            Utc::now() - Duration::minutes(5),
            Utc::now() + Duration::days(7),
            2,
        )
        .expect("crl");
    operator
        .crl(&String::from_utf8(crl.to_pem().expect("pem")).expect("utf8"))
        .await;
    let report = other.verify(&bond, &bond.code).await;
    assert_eq!(report.indication, "FAILED", "{report:?}");
    assert_eq!(report.sub_indication.as_deref(), Some("REVOKED"));
}

/// Asserts that every one of `instances` refuses `token` as a credential.
async fn refused_by(instances: &[&TestApp], token: &str) {
    for instance in instances {
        instance
            .with_token(token)
            .me()
            .fails(401, "unauthenticated")
            .await;
    }
}

/// Each instance keeps the credentials it resolved lately (on SQLite), yet a credential
/// ended anywhere is refused everywhere at the next request: a sign-out through one
/// instance, a token revoked through the other, a user deactivated, and a session
/// ended by SQL straight to the database (another process), with no wait between the
/// change and the request.
async fn a_credential_ended_anywhere_is_refused_by_every_instance_at_the_next_request(
    app: TestApp,
) {
    let other = app.another_instance().await;
    let both = [&app, &other];

    // A session signed in through the first, used through both (and so kept by both).
    let bank = app.as_issuer("bank").await;
    for instance in both {
        for _ in 0..3 {
            instance.with_token(&bank.token).me().await;
        }
    }
    bank.sign_out().await;
    refused_by(&both, &bank.token).await;

    // An API token used through both, revoked through the second.
    let agency = app.as_agency().await;
    let made: ApiToken = agency
        .post("/api/v1/auth/tokens", &json!({ "name": "platform" }), 201)
        .await;
    for instance in both {
        for _ in 0..3 {
            instance.with_token(&made.token).me().await;
        }
    }
    other
        .with_token(&agency.token)
        .revoke_api_token(&made.id)
        .await;
    refused_by(&both, &made.token).await;

    // A user deactivated through the second: its session ends on the first.
    let enterprise = app.as_enterprise("enterprise1").await;
    let user_id = enterprise.me().await.user_id;
    other.with_token(&enterprise.token).me().await;
    let operator = other.as_operator().await;
    let answer = operator
        .send(
            Method::POST,
            &format!("/api/v1/users/{user_id}/deactivate"),
            None,
        )
        .answer()
        .await;
    assert_eq!(answer.status, 204, "{answer:?}");
    refused_by(&both, &enterprise.token).await;

    // A session ended by another process: an UPDATE straight to the database.
    let other_enterprise = app.as_enterprise("enterprise2").await;
    for instance in both {
        instance.with_token(&other_enterprise.token).me().await;
    }
    let its_user = other_enterprise.me().await.user_id;
    let ended = app
        .db(move |c| {
            diesel::update(sessions::table.filter(sessions::user_id.eq(its_user)))
                .set(sessions::expires_at.eq(Utc::now().naive_utc() - Duration::minutes(1)))
                .execute(c)
                .expect("the update")
        })
        .await;
    assert_eq!(ended, 1);
    refused_by(&both, &other_enterprise.token).await;
}

crate::on_both_backends!(
    trust_changes_made_through_one_instance_are_in_force_on_another_at_once,
    a_credential_ended_anywhere_is_refused_by_every_instance_at_the_next_request
);
