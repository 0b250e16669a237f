//! Several instances on one database: what one instance changes is in force on the
//! others at their next request, without waiting for a timer.

use baohan::pki::demo::{serial_hex, RevokedSerial};
use chrono::{Duration, Utc};

use crate::fixtures::{crl_pem, pem, register_hosted_key, DemoCa, IssuerSpec, KeyType};
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

crate::on_both_backends!(trust_changes_made_through_one_instance_are_in_force_on_another_at_once);
