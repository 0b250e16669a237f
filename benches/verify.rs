//! Verification and signing throughput (DESIGN.md §10). Run with
//! `cargo bench --bench verify`; `scripts/bench-ratio.sh` relates the figures to
//! `openssl speed` on the same machine.

use baohan::pki::demo::{sample_document, DemoCa, IssuerSpec, KeyType};
use baohan::pki::{
    sign_detached, Indication, TrustStore, TrustStoreBuilder, VerificationEngine, VerifyOptions,
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
        c.bench_function(&format!("sign_{label}"), |b| {
            b.iter(|| sign_detached(&s.doc, &s.issuer.cert, &s.issuer.key, &[]).expect("sign"))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
