//! Feeds arbitrary bytes to the verification engine: the first two bytes give the split
//! point between document and signature. The engine must never panic, and garbage must
//! never be PASSED.
#![no_main]

use std::sync::OnceLock;

use baohan::pki::{Indication, TrustStore, TrustStoreBuilder, VerificationEngine, VerifyOptions};
use libfuzzer_sys::fuzz_target;

fn store() -> &'static TrustStore {
    static STORE: OnceLock<TrustStore> = OnceLock::new();
    STORE.get_or_init(|| {
        // A real anchor so inputs that embed a valid chain can reach the later checks.
        let ca = baohan::pki::demo::DemoCa::new("Fuzz CA", baohan::pki::demo::KeyType::EcP256)
            .expect("demo CA");
        let mut b = TrustStoreBuilder::new();
        b.add_certificates(&ca.cert.to_pem().expect("pem")).expect("anchor");
        b.build().expect("store")
    })
}

fn engine() -> &'static VerificationEngine {
    static ENGINE: OnceLock<VerificationEngine> = OnceLock::new();
    ENGINE.get_or_init(|| VerificationEngine::with_capacity(64))
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let split = usize::from(u16::from_le_bytes([data[0], data[1]]));
    let rest = &data[2..];
    let (document, signature) = rest.split_at(split.min(rest.len()));
    let report = engine().verify(document, signature, store(), &VerifyOptions::default());
    // Nobody holds the fuzz CA's key, so nothing can be PASSED.
    assert_ne!(report.indication, Indication::Passed);
});
