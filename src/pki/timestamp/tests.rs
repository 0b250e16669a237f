//! Tests of the exchange's time-stamping authority and the CAdES-T signature
//! time-stamp: our tokens against our verifier and stock `openssl ts`, the attacks a
//! verifier must refuse (another TSA, another signature, an altered byte, a certificate
//! that may not time-stamp), and the stamped signature against `openssl cms` and the
//! engine. Every key and certificate is generated here.

use std::path::Path;
use std::process::Command;

use chrono::{DateTime, Duration, Utc};
use openssl::x509::X509;

use super::error::{TimeStampError, TokenError};
use super::{
    add_signature_timestamp, oid, signature_value, timestamp_of, verify_signature_timestamp,
    verify_token, TimeStampAuthority, TsaTrust,
};
use crate::pki::cms_parse::{
    parse_encapsulating_signed_data, parse_signed_data, signer_info_layout,
};
use crate::pki::demo::{
    sample_document, time_stamp_authority, DemoCa, IssuerSpec, KeyType, TsaSpec,
};
use crate::pki::report::{CheckResult, Indication};
use crate::pki::sign::sign_detached;
use crate::pki::trust::TrustStoreBuilder;
use crate::pki::verify::{VerificationEngine, VerifyOptions};
use crate::pki::{run_pki_cli, sha256_hex, CaArgs, PkiCommand, TsaArgs};

const ISSUER_USCC: &str = "91110000100000000R";

/// The exchange's TSA under a root of its own, and the trust that accepts it.
struct Exchange {
    root: DemoCa,
    tsa: TimeStampAuthority,
    trust: TsaTrust,
}

fn exchange(key_type: KeyType) -> Exchange {
    let root = DemoCa::new("Baohan TSA Root", KeyType::EcP256).expect("root");
    let mut spec = TsaSpec::new("Baohan Exchange");
    spec.key_type = key_type;
    let issued = root.issue_tsa(&spec).expect("tsa certificate");
    let tsa =
        TimeStampAuthority::new(issued.cert, issued.key, vec![root.cert.clone()]).expect("tsa");
    let trust = TsaTrust::new(vec![root.cert.clone()]).expect("trust");
    Exchange { root, tsa, trust }
}

/// A guarantee signed by an issuer under the issuers' CA, as the exchange receives it.
struct Signed {
    ca: DemoCa,
    doc: Vec<u8>,
    sig: Vec<u8>,
}

fn signed() -> Signed {
    let ca = DemoCa::new("Baohan Test Root CA", KeyType::EcP256).expect("ca");
    let issuer = ca
        .issue(&IssuerSpec::new("示例银行股份有限公司", ISSUER_USCC))
        .expect("issuer");
    let doc = sample_document(ISSUER_USCC)
        .to_canonical_bytes()
        .expect("doc");
    let sig = sign_detached(&doc, &issuer.cert, &issuer.key, &[]).expect("sign");
    Signed { ca, doc, sig }
}

/// An hour ago, to the second (genTime has whole seconds).
fn an_hour_ago() -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp() - 3600, 0).expect("time")
}

fn openssl_available() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).expect("write");
}

fn pem(cert: &X509) -> Vec<u8> {
    cert.to_pem().expect("pem")
}

// ---- issuing and verifying ----

#[test]
fn our_token_verifies_and_says_when_by_whom_under_which_policy() {
    for key_type in [KeyType::EcP256, KeyType::Rsa2048] {
        let ex = exchange(key_type);
        let sig = signed().sig;
        let value = signature_value(&sig).expect("value");
        let at = an_hour_ago();
        let token = ex
            .tsa
            .stamp(value, at, Some(0x0123_4567_89ab))
            .expect("stamp");

        let info = verify_token(&token, value, &ex.trust).expect("verifies");
        assert_eq!(info.gen_time, at);
        assert_eq!(info.serial, "0123456789ab");
        assert_eq!(info.policy, "1.3.6.1.4.1.32473.3161.1");
        assert_eq!(info.policy, oid::EXCHANGE_TSA_POLICY.to_string());
        assert!(info
            .tsa_subject
            .contains("Baohan Exchange Time-Stamping Authority"));
        assert_eq!(
            info.tsa_certificate_sha256,
            sha256_hex(&ex.tsa.certificate().to_der().expect("der"))
        );
        // Once the TSA certificate is known, the next token takes the short path and
        // says the same.
        assert_eq!(verify_token(&token, value, &ex.trust), Ok(info));
    }
}

#[test]
fn serial_numbers_are_random_when_not_given() {
    let ex = exchange(KeyType::EcP256);
    let at = an_hour_ago();
    let a = ex.tsa.stamp(b"value", at, None).expect("stamp");
    let b = ex.tsa.stamp(b"value", at, None).expect("stamp");
    let a = verify_token(&a, b"value", &ex.trust).expect("a");
    let b = verify_token(&b, b"value", &ex.trust).expect("b");
    assert_ne!(a.serial, b.serial);
    assert!(a.serial.len() >= 24, "{}", a.serial);
}

#[test]
fn a_custom_policy_is_written_and_read() {
    let ex = exchange(KeyType::EcP256);
    let tsa = ex.tsa.with_policy("1.2.156.99999.1.2").expect("policy");
    let token = tsa.stamp(b"value", an_hour_ago(), None).expect("stamp");
    let info = verify_token(&token, b"value", &ex.trust).expect("verifies");
    assert_eq!(info.policy, "1.2.156.99999.1.2");
    assert!(matches!(
        exchange(KeyType::EcP256).tsa.with_policy("not an oid"),
        Err(TimeStampError::BadPolicy(_))
    ));
}

#[test]
fn the_tsa_refuses_a_time_outside_its_certificate() {
    let ex = exchange(KeyType::EcP256);
    for at in [
        Utc::now() - Duration::days(3),
        Utc::now() + Duration::days(6 * 365),
    ] {
        assert!(matches!(
            ex.tsa.stamp(b"value", at, None),
            Err(TimeStampError::OutsideValidity(_))
        ));
    }
}

#[test]
fn only_a_time_stamping_certificate_with_its_own_key_can_run_the_tsa() {
    let root = DemoCa::new("Baohan TSA Root", KeyType::EcP256).expect("root");
    let issuer = root
        .issue(&IssuerSpec::new("示例银行股份有限公司", ISSUER_USCC))
        .expect("issuer");
    assert!(matches!(
        TimeStampAuthority::new(issuer.cert, issuer.key, vec![]),
        Err(TimeStampError::NotTimeStampingCertificate(_))
    ));
    for adjust in [
        (|s: &mut TsaSpec| s.critical_eku = false) as fn(&mut TsaSpec),
        |s: &mut TsaSpec| s.extra_eku = true,
    ] {
        let mut spec = TsaSpec::new("Baohan Exchange");
        adjust(&mut spec);
        let issued = root.issue_tsa(&spec).expect("tsa");
        assert!(matches!(
            TimeStampAuthority::new(issued.cert, issued.key, vec![]),
            Err(TimeStampError::NotTimeStampingCertificate(_))
        ));
    }
    let a = root.issue_tsa(&TsaSpec::new("A")).expect("a");
    let b = root.issue_tsa(&TsaSpec::new("B")).expect("b");
    assert!(matches!(
        TimeStampAuthority::new(a.cert, b.key, vec![]),
        Err(TimeStampError::KeyMismatch)
    ));
}

// ---- what a verifier must refuse ----

#[test]
fn a_token_from_another_tsa_is_not_ours() {
    let ours = exchange(KeyType::EcP256);
    let theirs = exchange(KeyType::EcP256);
    let token = theirs
        .tsa
        .stamp(b"value", an_hour_ago(), None)
        .expect("stamp");
    assert!(verify_token(&token, b"value", &theirs.trust).is_ok());
    assert!(
        matches!(
            verify_token(&token, b"value", &ours.trust),
            Err(TokenError::NotOurs(_))
        ),
        "{:?}",
        verify_token(&token, b"value", &ours.trust)
    );
}

#[test]
fn another_tsa_even_with_our_name_is_not_ours() {
    // Same subject names, different keys: only the chain decides.
    let ours = exchange(KeyType::EcP256);
    let forged_root = DemoCa::new("Baohan TSA Root", KeyType::EcP256).expect("root");
    let forged = time_stamp_authority(&forged_root, "Baohan Exchange").expect("tsa");
    let token = forged.stamp(b"value", an_hour_ago(), None).expect("stamp");
    assert!(matches!(
        verify_token(&token, b"value", &ours.trust),
        Err(TokenError::NotOurs(_))
    ));
    // After one of ours is cached, the forged one still cannot ride on it.
    let good = ours
        .tsa
        .stamp(b"value", an_hour_ago(), None)
        .expect("stamp");
    assert!(verify_token(&good, b"value", &ours.trust).is_ok());
    assert!(matches!(
        verify_token(&token, b"value", &ours.trust),
        Err(TokenError::NotOurs(_))
    ));
}

#[test]
fn our_token_over_another_signature_value_is_an_imprint_mismatch() {
    let ex = exchange(KeyType::EcP256);
    let (a, b) = (signed().sig, signed().sig);
    let value_a = signature_value(&a).expect("a");
    let value_b = signature_value(&b).expect("b");
    let token = ex.tsa.stamp(value_a, an_hour_ago(), None).expect("stamp");
    assert_eq!(
        verify_token(&token, value_b, &ex.trust),
        Err(TokenError::ImprintMismatch)
    );
}

#[test]
fn every_altered_byte_of_the_tst_info_is_caught_by_the_signature() {
    let ex = exchange(KeyType::EcP256);
    let token = ex
        .tsa
        .stamp(b"value", an_hour_ago(), Some(42))
        .expect("stamp");
    let sd = parse_encapsulating_signed_data(&token).expect("parse");
    let start = sd.content.as_ptr() as usize - token.as_ptr() as usize;
    let len = sd.content.len();
    for i in start..start + len {
        let mut altered = token.clone();
        altered[i] ^= 0x01;
        assert!(
            matches!(
                verify_token(&altered, b"value", &ex.trust),
                Err(TokenError::Altered(_))
            ),
            "byte {} of the TSTInfo: {:?}",
            i - start,
            verify_token(&altered, b"value", &ex.trust)
        );
    }
}

#[test]
fn an_altered_signature_or_signed_attribute_is_caught() {
    let ex = exchange(KeyType::EcP256);
    let token = ex
        .tsa
        .stamp(b"value", an_hour_ago(), Some(42))
        .expect("stamp");
    let sd = parse_encapsulating_signed_data(&token).expect("parse");
    let offset = |part: &[u8]| part.as_ptr() as usize - token.as_ptr() as usize;
    // The last byte of the signature, and the last byte of the signed attributes (in
    // the signingCertificateV2 hash).
    for i in [
        offset(sd.signer.signature) + sd.signer.signature.len() - 1,
        offset(sd.signer.signed_attrs_raw) + sd.signer.signed_attrs_raw.len() - 1,
    ] {
        let mut altered = token.clone();
        altered[i] ^= 0x01;
        assert!(
            verify_token(&altered, b"value", &ex.trust).is_err(),
            "byte {i} changed and the token still verifies"
        );
    }
}

#[test]
fn a_certificate_under_our_root_that_may_not_time_stamp_is_refused() {
    let ex = exchange(KeyType::EcP256);
    let mut spec = TsaSpec::new("Baohan Exchange");
    spec.critical_eku = false;
    let weak = ex.root.issue_tsa(&spec).expect("tsa");
    let tsa = TimeStampAuthority::unchecked(weak.cert, weak.key, vec![]).expect("tsa");
    let token = tsa.stamp(b"value", an_hour_ago(), None).expect("stamp");
    assert!(matches!(
        verify_token(&token, b"value", &ex.trust),
        Err(TokenError::NotTimeStamping(_))
    ));

    let issuer = ex
        .root
        .issue(&IssuerSpec::new("示例银行股份有限公司", ISSUER_USCC))
        .expect("issuer");
    let tsa = TimeStampAuthority::unchecked(issuer.cert, issuer.key, vec![]).expect("tsa");
    let token = tsa.stamp(b"value", an_hour_ago(), None).expect("stamp");
    assert!(matches!(
        verify_token(&token, b"value", &ex.trust),
        Err(TokenError::NotTimeStamping(_))
    ));
}

#[test]
fn a_gen_time_outside_the_tsa_certificate_is_refused() {
    let ex = exchange(KeyType::EcP256);
    let issued = ex
        .root
        .issue_tsa(&TsaSpec::new("Baohan Exchange"))
        .expect("tsa");
    let tsa = TimeStampAuthority::unchecked(issued.cert, issued.key, vec![]).expect("tsa");
    let before = DateTime::from_timestamp(Utc::now().timestamp() - 3 * 86_400, 0).expect("t");
    let token = tsa.stamp(b"value", before, None).expect("stamp");
    assert!(matches!(
        verify_token(&token, b"value", &ex.trust),
        Err(TokenError::OutsideValidity { .. })
    ));
}

#[test]
fn anything_but_a_token_is_malformed_never_a_panic() {
    let ex = exchange(KeyType::EcP256);
    let sig = signed().sig;
    // A guarantee signature is a SignedData, but over id-data and detached.
    assert!(matches!(
        verify_token(&sig, b"value", &ex.trust),
        Err(TokenError::Malformed(_))
    ));
    assert!(matches!(
        verify_token(b"", b"value", &ex.trust),
        Err(TokenError::Malformed(_))
    ));
    let token = ex.tsa.stamp(b"value", an_hour_ago(), None).expect("stamp");
    for cut in 0..token.len() {
        assert!(
            verify_token(&token[..cut], b"value", &ex.trust).is_err(),
            "a token cut at {cut} verified"
        );
    }
    let mut trailing = token.clone();
    trailing.push(0);
    assert!(matches!(
        verify_token(&trailing, b"value", &ex.trust),
        Err(TokenError::Malformed(_))
    ));
}

// ---- the signature time-stamp attribute ----

#[test]
fn a_stamped_signature_still_verifies_everywhere_and_carries_the_token() {
    let ex = exchange(KeyType::EcP256);
    let s = signed();
    let at = an_hour_ago();
    let token = ex
        .tsa
        .stamp(signature_value(&s.sig).expect("value"), at, None)
        .expect("stamp");
    let stamped = add_signature_timestamp(&s.sig, &token).expect("add");
    // Nothing but the new attribute and the enclosing lengths changed.
    let layout_before = signer_info_layout(&s.sig).expect("layout");
    let layout_after = signer_info_layout(&stamped).expect("layout");
    assert_eq!(layout_after.signed_part, layout_before.signed_part);
    assert_eq!(
        layout_after.before_signer_infos,
        layout_before.before_signer_infos
    );
    assert_eq!(layout_after.content_type, layout_before.content_type);
    let before = parse_signed_data(&s.sig).expect("parse");
    let after = parse_signed_data(&stamped).expect("parse");
    assert_eq!(
        after.signer.signed_attrs_raw,
        before.signer.signed_attrs_raw
    );
    assert_eq!(after.signer.signature, before.signer.signature);
    assert_eq!(after.signer.sid_raw, before.signer.sid_raw);
    assert_eq!(after.certificates, before.certificates);

    assert_eq!(
        timestamp_of(&stamped).expect("read"),
        Some(token.as_slice())
    );
    assert_eq!(timestamp_of(&s.sig).expect("read"), None);
    let info = verify_signature_timestamp(&stamped, &ex.trust)
        .expect("verifies")
        .expect("present");
    assert_eq!(info.gen_time, at);
    assert_eq!(verify_signature_timestamp(&s.sig, &ex.trust), Ok(None));

    // The engine passes it exactly as it passed the signature without the token.
    let trust = {
        let mut b = TrustStoreBuilder::new();
        b.add_certificates(&pem(&s.ca.cert)).expect("ca");
        b.add_crls(
            &s.ca
                .current_crl(&[], 1)
                .expect("crl")
                .to_der()
                .expect("der"),
        )
        .expect("crl");
        b.build().expect("trust")
    };
    let engine = VerificationEngine::new();
    let options = VerifyOptions::default();
    let plain = engine.verify(&s.doc, &s.sig, &trust, &options);
    let cades_t = engine.verify(&s.doc, &stamped, &trust, &options);
    assert_eq!(plain.indication, Indication::Passed, "{}", plain.to_text());
    assert_eq!(
        cades_t.indication,
        Indication::Passed,
        "{}",
        cades_t.to_text()
    );
    let outcome = |r: &crate::pki::VerificationReport| {
        r.checks
            .iter()
            .map(|c| (c.id, c.result, c.sub_indication))
            .collect::<Vec<_>>()
    };
    assert_eq!(outcome(&cades_t), outcome(&plain));
    assert!(cades_t
        .checks
        .iter()
        .all(|c| c.result != CheckResult::Failed));

    if !openssl_available() {
        eprintln!("openssl CLI not found; interop part not run");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "NO.json", &s.doc);
    write(dir.path(), "NO.p7s", &stamped);
    write(dir.path(), "ca.pem", &pem(&s.ca.cert));
    let cms_verify = [
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-content",
        "NO.json",
        "-in",
        "NO.p7s",
        "-CAfile",
        "ca.pem",
        "-purpose",
        "any",
        "-out",
        "/dev/null",
    ];
    let (ok, text) = openssl(dir.path(), &cms_verify);
    assert!(
        ok,
        "openssl cms -verify refused the stamped signature: {text}"
    );
    let (_, printed) = openssl(
        dir.path(),
        &[
            "cms", "-cmsout", "-print", "-inform", "DER", "-in", "NO.p7s",
        ],
    );
    assert!(
        printed.contains("id-smime-aa-timeStampToken"),
        "openssl does not see the signature time-stamp: {printed}"
    );
    let mut changed = s.doc.clone();
    changed[10] ^= 0x01;
    write(dir.path(), "NO.json", &changed);
    assert!(!openssl(dir.path(), &cms_verify).0);
}

#[test]
fn a_signature_is_time_stamped_once() {
    let ex = exchange(KeyType::EcP256);
    let sig = signed().sig;
    let stamped = ex
        .tsa
        .stamp_signature(&sig, an_hour_ago(), None)
        .expect("stamp");
    let again = ex
        .tsa
        .stamp(
            signature_value(&stamped).expect("value"),
            an_hour_ago(),
            None,
        )
        .expect("stamp");
    assert!(matches!(
        add_signature_timestamp(&stamped, &again),
        Err(TimeStampError::AlreadyTimeStamped)
    ));
    assert!(matches!(
        ex.tsa.stamp_signature(&stamped, an_hour_ago(), None),
        Err(TimeStampError::AlreadyTimeStamped)
    ));
}

#[test]
fn other_unsigned_attributes_are_kept_as_they_are() {
    let ex = exchange(KeyType::EcP256);
    let s = signed();
    let stamped = ex
        .tsa
        .stamp_signature(&s.sig, an_hour_ago(), None)
        .expect("stamp");
    // Turn the time-stamp into some other unsigned attribute (its OID's last arc 14 into
    // 15), as if the signer's system had added one of its own.
    let token_oid = der::Encode::to_der(&oid::SIGNATURE_TIME_STAMP_TOKEN).expect("der");
    let at = stamped
        .windows(token_oid.len())
        .position(|w| w == token_oid.as_slice())
        .expect("attribute OID")
        + token_oid.len()
        - 1;
    let mut other = stamped.clone();
    other[at] = 15;
    assert_eq!(timestamp_of(&other).expect("read"), None);
    let kept = signer_info_layout(&other)
        .expect("layout")
        .unsigned_attributes()
        .expect("attrs")[0]
        .raw
        .to_vec();

    let restamped = ex
        .tsa
        .stamp_signature(&other, an_hour_ago(), None)
        .expect("stamp");
    let layout = signer_info_layout(&restamped).expect("layout");
    let attrs = layout.unsigned_attributes().expect("attrs");
    assert_eq!(attrs.len(), 2);
    assert!(attrs.iter().any(|a| a.raw == kept.as_slice()));
    assert!(
        attrs[0].raw < attrs[1].raw,
        "DER orders a SET OF by encoding"
    );
    assert!(verify_signature_timestamp(&restamped, &ex.trust)
        .expect("verifies")
        .is_some());
}

#[test]
fn a_token_over_another_signature_is_not_attached() {
    let ex = exchange(KeyType::EcP256);
    let (a, b) = (signed().sig, signed().sig);
    let token_b = ex
        .tsa
        .stamp(signature_value(&b).expect("b"), an_hour_ago(), None)
        .expect("stamp");
    assert!(matches!(
        add_signature_timestamp(&a, &token_b),
        Err(TimeStampError::Token(TokenError::ImprintMismatch))
    ));
    assert!(matches!(
        add_signature_timestamp(&a, b"not a token"),
        Err(TimeStampError::Token(TokenError::Malformed(_)))
    ));
    assert!(matches!(
        add_signature_timestamp(b"not a signature", &token_b),
        Err(TimeStampError::Signature(_))
    ));
}

#[test]
fn a_stamped_signature_whose_token_was_swapped_fails_the_time_stamp_only() {
    // Tokens are unsigned attributes: anyone can move one to another signature. The
    // imprint ties it to the signature value it was issued for.
    // RSA and fixed serials: both tokens have the same length, so one can replace the
    // other in place.
    let ex = exchange(KeyType::Rsa2048);
    let at = an_hour_ago();
    let (a, b) = (signed().sig, signed().sig);
    let stamped_b = ex.tsa.stamp_signature(&b, at, Some(7)).expect("stamp");
    let token_b = timestamp_of(&stamped_b).expect("read").expect("token");
    let layout = signer_info_layout(&a).expect("layout");
    assert!(layout.unsigned_attrs.is_none());
    // Splice it in by hand (add_signature_timestamp refuses to).
    let forged = {
        let stamped_a = ex.tsa.stamp_signature(&a, at, Some(7)).expect("stamp");
        let token_a = timestamp_of(&stamped_a).expect("read").expect("token");
        assert_eq!(token_a.len(), token_b.len());
        let at = token_a.as_ptr() as usize - stamped_a.as_ptr() as usize;
        let mut forged = stamped_a.clone();
        forged[at..at + token_a.len()].copy_from_slice(token_b);
        forged
    };
    assert_eq!(
        verify_signature_timestamp(&forged, &ex.trust),
        Err(TokenError::ImprintMismatch)
    );
}

// ---- stock tools ----

#[test]
fn stock_openssl_ts_verifies_our_token_and_shows_our_time_and_policy() {
    if !openssl_available() {
        eprintln!("openssl CLI not found; interop test not run");
        return;
    }
    for key_type in [KeyType::EcP256, KeyType::Rsa2048] {
        let ex = exchange(key_type);
        let sig = signed().sig;
        let value = signature_value(&sig).expect("value");
        let at = an_hour_ago();
        let token = ex.tsa.stamp(value, at, Some(0xBA0_4A17)).expect("stamp");
        assert!(verify_token(&token, value, &ex.trust).is_ok());

        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "value.bin", value);
        write(dir.path(), "token.der", &token);
        write(dir.path(), "ca.pem", &pem(&ex.root.cert));
        write(dir.path(), "tsa.pem", &pem(ex.tsa.certificate()));
        let ts_verify = [
            "ts",
            "-verify",
            "-data",
            "value.bin",
            "-in",
            "token.der",
            "-token_in",
            "-CAfile",
            "ca.pem",
            "-untrusted",
            "tsa.pem",
        ];
        let (ok, text) = openssl(dir.path(), &ts_verify);
        assert!(
            ok,
            "openssl ts -verify refused our {key_type:?} token: {text}"
        );

        let (ok, text) = openssl(
            dir.path(),
            &[
                "ts",
                "-reply",
                "-in",
                "token.der",
                "-token_in",
                "-text",
                "-token_out",
            ],
        );
        assert!(ok, "{text}");
        assert!(
            text.contains("Policy OID: 1.3.6.1.4.1.32473.3161.1"),
            "{text}"
        );
        let shown = at.format("Time stamp: %b %e %H:%M:%S %Y GMT").to_string();
        assert!(text.contains(&shown), "{shown} not in {text}");
        assert!(text.contains("Serial number: 0x0BA04A17"), "{text}");
        assert!(
            text.contains("Baohan Exchange Time-Stamping Authority"),
            "{text}"
        );

        // Another signature value, or another TSA's anchor: stock openssl refuses too.
        write(dir.path(), "value.bin", b"another signature value");
        assert!(!openssl(dir.path(), &ts_verify).0);
        write(dir.path(), "value.bin", value);
        let other = DemoCa::new("Baohan TSA Root", KeyType::EcP256).expect("other");
        write(dir.path(), "ca.pem", &pem(&other.cert));
        assert!(!openssl(dir.path(), &ts_verify).0);
    }
}

#[test]
fn a_token_from_stock_openssl_with_our_tsa_key_verifies() {
    // The other direction: our verifier reads what a standard TSA makes (signingTime,
    // a nonce, ESSCertIDv2 with issuerSerial).
    if !openssl_available() {
        eprintln!("openssl CLI not found; interop test not run");
        return;
    }
    let root = DemoCa::new("Baohan TSA Root", KeyType::EcP256).expect("root");
    let issued = root
        .issue_tsa(&TsaSpec::new("Baohan Exchange"))
        .expect("tsa");
    let trust = TsaTrust::new(vec![root.cert.clone()]).expect("trust");
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "value.bin", b"a signature value");
    write(dir.path(), "tsa.pem", &pem(&issued.cert));
    write(
        dir.path(),
        "tsa.key",
        &issued.key.private_key_to_pem_pkcs8().expect("key"),
    );
    write(dir.path(), "ca.pem", &pem(&root.cert));
    write(dir.path(), "serial", b"01\n");
    write(
        dir.path(),
        "tsa.cnf",
        b"[ tsa ]\ndefault_tsa = tsa_config\n\n[ tsa_config ]\nserial = ./serial\n\
          crypto_device = builtin\nsigner_cert = ./tsa.pem\ncerts = ./ca.pem\n\
          signer_key = ./tsa.key\nsigner_digest = sha256\n\
          default_policy = 1.3.6.1.4.1.32473.3161.1\ndigests = sha256\n\
          accuracy = secs:1\nordering = no\ntsa_name = yes\ness_cert_id_chain = no\n\
          ess_cert_id_alg = sha256\n",
    );
    let (ok, text) = openssl(
        dir.path(),
        &[
            "ts",
            "-query",
            "-data",
            "value.bin",
            "-sha256",
            "-cert",
            "-out",
            "req.tsq",
        ],
    );
    assert!(ok, "{text}");
    let (ok, text) = openssl(
        dir.path(),
        &[
            "ts",
            "-reply",
            "-config",
            "tsa.cnf",
            "-queryfile",
            "req.tsq",
            "-token_out",
            "-out",
            "token.der",
        ],
    );
    assert!(ok, "{text}");
    let token = std::fs::read(dir.path().join("token.der")).expect("read");
    let info = verify_token(&token, b"a signature value", &trust).expect("verifies");
    let used = std::fs::read_to_string(dir.path().join("serial")).expect("serial");
    assert_eq!(info.serial, used.trim().to_ascii_lowercase());
    assert!((Utc::now() - info.gen_time).num_minutes().abs() < 5);
    assert_eq!(
        verify_token(&token, b"another value", &trust),
        Err(TokenError::ImprintMismatch)
    );
}

// ---- tooling ----

#[test]
fn pki_tsa_makes_a_tsa_under_a_ca_of_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_dir = dir.path().join("tsa-ca");
    let tsa_dir = dir.path().join("tsa");
    let mut out = Vec::new();
    let ca = PkiCommand::Ca(CaArgs {
        dir: ca_dir.clone(),
        name: "Baohan TSA Root".into(),
        key_type: crate::pki::KeyAlgorithm::OpenSsl(KeyType::EcP256),
    });
    assert_eq!(run_pki_cli(ca, &mut out), 0);
    let tsa = || {
        PkiCommand::Tsa(TsaArgs {
            ca_dir: ca_dir.clone(),
            out_dir: tsa_dir.clone(),
            name: "Baohan Exchange".into(),
            key_type: KeyType::Rsa2048,
            days: 30,
        })
    };
    assert_eq!(
        run_pki_cli(tsa(), &mut out),
        0,
        "{}",
        String::from_utf8_lossy(&out)
    );
    let read = |p: &Path| std::fs::read(p).expect("read");
    let authority = TimeStampAuthority::from_pem(
        &read(&tsa_dir.join("tsa-chain.pem")),
        &read(&tsa_dir.join("tsa.key.pem")),
    )
    .expect("the files make a TSA");
    let trust = TsaTrust::from_pem(&read(&ca_dir.join("ca.pem"))).expect("trust");
    let token = authority.stamp(b"value", Utc::now(), None).expect("stamp");
    assert!(verify_token(&token, b"value", &trust).is_ok());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(tsa_dir.join("tsa.key.pem"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the TSA key is readable by others");
    }
    // A second run does not overwrite the key.
    let mut out = Vec::new();
    assert_eq!(run_pki_cli(tsa(), &mut out), 1);
    assert!(String::from_utf8_lossy(&out).contains("already holds a TSA key"));
}

#[test]
fn the_offline_verifier_takes_its_time_from_the_exchanges_token() {
    let ex = exchange(KeyType::EcP256);
    let s = signed();
    let stamped = ex
        .tsa
        .stamp_signature(&s.sig, an_hour_ago(), None)
        .expect("stamped");
    let dir = tempfile::tempdir().expect("dir");
    write(dir.path(), "NO.json", &s.doc);
    write(dir.path(), "NO.p7s", &stamped);
    write(dir.path(), "ca.pem", &pem(&s.ca.cert));
    write(dir.path(), "tsa-root.pem", &pem(&ex.root.cert));
    let crl =
        s.ca.crl(&[], an_hour_ago(), Utc::now() + Duration::days(7), 1)
            .expect("crl");
    write(dir.path(), "ca.crl", &crl.to_pem().expect("pem"));
    let run = |tsa_ca: Option<&str>| {
        let args = crate::pki::VerifyArgs {
            document: dir.path().join("NO.json"),
            signature: dir.path().join("NO.p7s"),
            ca: vec![dir.path().join("ca.pem")],
            crl: vec![dir.path().join("ca.crl")],
            project: None,
            section: None,
            beneficiary: None,
            applicant: None,
            min_amount: None,
            valid_from_by: None,
            valid_through: None,
            json: false,
            tsa_ca: tsa_ca.map(|name| dir.path().join(name)),
            policy: false,
        };
        let mut out = Vec::new();
        let code = crate::pki::run_verify_cli(args, &mut out);
        (code, String::from_utf8(out).expect("utf-8"))
    };
    let (code, text) = run(Some("tsa-root.pem"));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("Proof of existence"), "{text}");
    assert!(text.contains("its time is the proof"), "{text}");
    // Without the exchange's root the token lends nothing (and is not even looked at).
    let (code, text) = run(None);
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("Proof of existence"), "{text}");
    // With another root, the report says why the token was not used.
    write(dir.path(), "other-root.pem", &pem(&s.ca.cert));
    let (_, text) = run(Some("other-root.pem"));
    assert!(text.contains("Signature time-stamp: not used"), "{text}");
    // An unreadable root is a usage error, not a verdict on the guarantee.
    write(dir.path(), "garbage.pem", b"not a certificate");
    let (code, _) = run(Some("garbage.pem"));
    assert_eq!(code, crate::pki::EXIT_USAGE);
}
