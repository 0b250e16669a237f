//! The `baohan` binary's offline tools, run as a user would: `baohan pki` makes a CA,
//! an issuer certificate and CRLs; the stock `openssl cms -sign` signs a document; and
//! `baohan verify` checks it without any database, exiting 0 / 1 / 2.

use std::path::Path;
use std::process::{Command, Output};

fn baohan(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_baohan"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("baohan runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const ISSUER_USCC: &str = "91371600BK0000003D";

fn sample_document(dir: &Path) {
    let mut doc = baohan::pki::demo::sample_document(ISSUER_USCC);
    doc.valid_from = "2026-01-01T09:00:00+08:00".into();
    doc.valid_until = "2099-01-01T09:00:00+08:00".into();
    std::fs::write(
        dir.join("NO.json"),
        doc.to_canonical_bytes().expect("canonical"),
    )
    .expect("write");
}

fn sign(dir: &Path) {
    let out = Command::new("openssl")
        .args([
            "cms",
            "-sign",
            "-binary",
            "-outform",
            "DER",
            "-md",
            "sha256",
            "-cades",
            "-in",
            "NO.json",
            "-signer",
            "bank/issuer.pem",
            "-inkey",
            "bank/issuer.key.pem",
            "-out",
            "NO.p7s",
        ])
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn offline_verification_with_the_demo_pki() {
    let tmp = tempfile::tempdir().expect("dir");
    let dir = tmp.path();
    let out = baohan(&["pki", "ca", "--dir", "ca"], dir);
    assert!(out.status.success(), "{}", text(&out));
    let out = baohan(
        &[
            "pki",
            "issuer",
            "--ca-dir",
            "ca",
            "--out-dir",
            "bank",
            "--name",
            "滨州城市商业银行",
            "--uscc",
            ISSUER_USCC,
        ],
        dir,
    );
    assert!(out.status.success(), "{}", text(&out));
    // An invalid USCC is refused before anything is made.
    let out = baohan(
        &[
            "pki",
            "issuer",
            "--ca-dir",
            "ca",
            "--out-dir",
            "bad",
            "--name",
            "x",
            "--uscc",
            "91371600BK0000003X",
        ],
        dir,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!dir.join("bad").exists());

    sample_document(dir);
    sign(dir);
    let verify = |extra: &[&str]| {
        let mut args = vec![
            "verify",
            "--document",
            "NO.json",
            "--signature",
            "NO.p7s",
            "--ca",
            "ca/ca.pem",
            "--crl",
            "ca/crl.pem",
        ];
        args.extend_from_slice(extra);
        baohan(&args, dir)
    };
    let out = verify(&[]);
    assert_eq!(out.status.code(), Some(0), "PASSED: {}", text(&out));
    assert!(text(&out).contains("PASSED"));

    // Expectations, and JSON output.
    let out = verify(&["--expect-min-amount", "99999999.00", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["sub_indication"], "EXPECTATION_MISMATCH");

    // Without a CRL the answer is INDETERMINATE, not FAILED.
    let out = baohan(
        &[
            "verify",
            "--document",
            "NO.json",
            "--signature",
            "NO.p7s",
            "--ca",
            "ca/ca.pem",
        ],
        dir,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("TRY_LATER"), "{}", text(&out));

    // One changed byte of the document: FAILED.
    let original = std::fs::read(dir.join("NO.json")).expect("read");
    let mut changed = original.clone();
    let at = changed.iter().position(|b| *b == b'0').expect("a zero");
    changed[at] = b'1';
    std::fs::write(dir.join("NO.json"), &changed).expect("write");
    let out = verify(&["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    std::fs::write(dir.join("NO.json"), &original).expect("write");

    // Garbage, empty and oversized signatures: FORMAT_FAILURE, never a crash.
    for (name, bytes) in [
        ("empty", Vec::new()),
        ("garbage", b"\x30\x82\xff\xff junk".to_vec()),
        ("huge", vec![0x30; 5 << 20]),
    ] {
        std::fs::write(dir.join("bad.p7s"), &bytes).expect("write");
        let out = baohan(
            &[
                "verify",
                "--document",
                "NO.json",
                "--signature",
                "bad.p7s",
                "--ca",
                "ca/ca.pem",
                "--json",
            ],
            dir,
        );
        assert_eq!(out.status.code(), Some(1), "{name}: {}", text(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
        assert_eq!(report["sub_indication"], "FORMAT_FAILURE", "{name}");
    }
    let out = baohan(
        &[
            "verify",
            "--document",
            "missing.json",
            "--signature",
            "NO.p7s",
            "--json",
        ],
        dir,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    // Revoking the issuer certificate: REVOKED.
    let serial = {
        let pem = std::fs::read(dir.join("bank/issuer.pem")).expect("read");
        let cert = openssl::x509::X509::from_pem(&pem).expect("cert");
        baohan::pki::demo::serial_hex(&cert).expect("serial")
    };
    let out = baohan(
        &["pki", "revoke", "--ca-dir", "ca", "--serial", &serial],
        dir,
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = verify(&["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["sub_indication"], "REVOKED");
}
