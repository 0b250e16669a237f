//! SM2 throughput (src/pki/gm). Run with `scripts/bench-sm2.sh`, which relates the
//! figures to `openssl speed sm2` measured in the same run on the same core.

use baohan::pki::demo::sample_document;
use baohan::pki::gm::{
    sign_detached, sm2_sign_raw, sm2_verify_raw, verify_detached, Sm2Ca, Sm2IssuerSpec,
};
use baohan::pki::{Indication, TrustStoreBuilder, VerificationEngine, VerifyOptions};
use criterion::{criterion_group, criterion_main, Criterion};

const USCC: &str = "91110000100000000A";

fn bench(c: &mut Criterion) {
    let ca = Sm2Ca::new("Bench SM2 Root CA").expect("ca");
    let issuer = ca
        .issue(&Sm2IssuerSpec::new("示例银行股份有限公司", USCC))
        .expect("issuer");
    let doc = sample_document(USCC).to_canonical_bytes().expect("doc");
    let now = chrono::Utc::now();
    // Signer certificate plus the CA, as in the OpenSSL bench.
    let sig = sign_detached(
        &doc,
        &issuer.key,
        &issuer.cert,
        std::slice::from_ref(&ca.cert),
        now,
    )
    .expect("sign");
    let trust = [ca.cert.clone()];
    verify_detached(&doc, &sig, &trust, now).expect("valid");

    // The primitive over a 32-byte message: what `openssl speed sm2` measures.
    let message = [0x5a_u8; 32];
    let public = issuer.key.public_key();
    let raw = sm2_sign_raw(&issuer.key, &message).expect("raw sign");
    c.bench_function("sm2_verify_raw", |b| {
        b.iter(|| sm2_verify_raw(&public, &message, &raw).expect("valid"))
    });
    c.bench_function("sm2_sign_raw", |b| {
        b.iter(|| sm2_sign_raw(&issuer.key, &message).expect("sign"))
    });
    // The whole check: parse, SM3, signature, chain (one certificate signature), validity
    // and key usage. No cache: two SM2 verifications per call.
    c.bench_function("sm2_verify_detached", |b| {
        b.iter(|| verify_detached(&doc, &sig, &trust, now).expect("valid"))
    });

    // The exchange's engine with its signer cache warm: one SM2 verification, SM3 of the
    // document, the DER walk and the per-call checks, with the same report as for
    // RSA/ECDSA (the CRL is current, so every check runs).
    let store = {
        let mut b = TrustStoreBuilder::new();
        b.add_certificates(ca.cert.to_pem().as_bytes()).expect("ca");
        let crl = ca
            .crl(
                &[],
                now - chrono::Duration::hours(1),
                now + chrono::Duration::days(7),
                1,
            )
            .expect("crl");
        b.add_crls(&crl).expect("crl");
        b.build().expect("store")
    };
    let engine = VerificationEngine::new();
    let options = VerifyOptions::default();
    let report = engine.verify(&doc, &sig, &store, &options);
    assert_eq!(
        report.indication,
        Indication::Passed,
        "{}",
        report.to_text()
    );
    c.bench_function("sm2_engine_verify_warm", |b| {
        b.iter(|| engine.verify(&doc, &sig, &store, &options))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
