//! Verification and signing throughput (DESIGN.md §10). Run with
//! `cargo bench --bench verify`; `scripts/bench-ratio.sh` relates the figures to
//! `openssl speed` on the same machine.

use baohan::pki::demo::{sample_document, time_stamp_authority, DemoCa, IssuerSpec, KeyType};
use baohan::pki::{
    sign_detached, Indication, TrustStore, TrustStoreBuilder, TsaTrust, VerificationEngine,
    VerifyOptions,
};
use criterion::{criterion_group, criterion_main, Criterion};

const USCC: &str = "91110000100000000A";

struct Setup {
    doc: Vec<u8>,
    sig: Vec<u8>,
    trust: TrustStore,
    issuer: baohan::pki::demo::IssuedCert,
}

fn setup(key_type: KeyType) -> Setup {
    let ca = DemoCa::new("Bench Root CA", key_type).expect("ca");
    let mut spec = IssuerSpec::new("示例银行股份有限公司", USCC);
    spec.key_type = key_type;
    let issuer = ca.issue(&spec).expect("issuer");
    let doc = sample_document(USCC).to_canonical_bytes().expect("doc");
    // Signer certificate plus the CA: the usual two-certificate chain.
    let sig = sign_detached(
        &doc,
        &issuer.cert,
        &issuer.key,
        std::slice::from_ref(&ca.cert),
    )
    .expect("sign");
    let mut builder = TrustStoreBuilder::new();
    builder
        .add_certificates(&ca.cert.to_pem().expect("pem"))
        .expect("ca");
    builder
        .add_crls(&ca.current_crl(&[], 1).expect("crl").to_der().expect("der"))
        .expect("crl");
    Setup {
        doc,
        sig,
        trust: builder.build().expect("store"),
        issuer,
    }
}

fn bench(c: &mut Criterion) {
    for (label, key_type) in [("p256", KeyType::EcP256), ("rsa2048", KeyType::Rsa2048)] {
        let s = setup(key_type);
        let engine = VerificationEngine::new();
        let options = VerifyOptions::default();
        assert_eq!(
            engine.verify(&s.doc, &s.sig, &s.trust, &options).indication,
            Indication::Passed
        );

        c.bench_function(&format!("verify_warm_{label}"), |b| {
            b.iter(|| engine.verify(&s.doc, &s.sig, &s.trust, &options))
        });
        c.bench_function(&format!("verify_cold_{label}"), |b| {
            b.iter(|| {
                engine.clear_cache();
                engine.verify(&s.doc, &s.sig, &s.trust, &options)
            })
        });
        // CAdES-T: the same signature with the exchange's time-stamp token, verified
        // with the token's time as the proof of existence (one more signature check, on
        // the exchange's own P-256 TSA key, whatever the signer's key type).
        let tsa_root = DemoCa::new("Bench TSA Root", KeyType::EcP256).expect("tsa root");
        let tsa = time_stamp_authority(&tsa_root, "Bench TSA").expect("tsa");
        let tsa_trust = TsaTrust::new(vec![tsa_root.cert.clone()]).expect("tsa trust");
        let stamped = tsa
            .stamp_signature(&s.sig, chrono::Utc::now(), None)
            .expect("stamped");
        let report =
            engine.verify_cades(&s.doc, &stamped, &s.trust, Some(&tsa_trust), &options, None);
        assert_eq!(report.indication, Indication::Passed);
        assert!(report.proof_of_existence.is_some());
        c.bench_function(&format!("verify_cades_t_warm_{label}"), |b| {
            b.iter(|| {
                engine.verify_cades(&s.doc, &stamped, &s.trust, Some(&tsa_trust), &options, None)
            })
        });
        c.bench_function(&format!("sign_{label}"), |b| {
            b.iter(|| sign_detached(&s.doc, &s.issuer.cert, &s.issuer.key, &[]).expect("sign"))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
