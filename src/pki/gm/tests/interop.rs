//! Interop with an independent SM2/SM3 implementation: the Python package `gmssl`
//! (PyPI; installed by `.ci/run`). Both directions of the signature primitive and SM3
//! digests are checked; a missing `python3` or `gmssl` fails the test.
//!
//! gmssl's semantics, read from its `sm2.py`: `CryptSM2(private_key, public_key,
//! asn1=True)` takes hex keys (the public key as `x ‖ y` without the `04` prefix) and
//! DER (r, s) signatures in hex; `sign_with_sm3(msg, k)` / `verify_with_sm3(sig, msg)`
//! compute e = SM3(Z ‖ msg) with Z over the default ID `1234567812345678`, as GM/T 0009
//! and we do. Its constructor strips a leading "04" with `lstrip("04")`, which also eats
//! leading `0`/`4` digits of x, so the script assigns `public_key` after construction.

use serde_json::{json, Value};

use super::super::*;

/// Reads a JSON request on stdin, answers JSON on stdout.
const SCRIPT: &str = r#"
import json, sys
from gmssl import sm2, sm3, func

req = json.load(sys.stdin)
out = {}

def crypt(private_key, public_xy):
    c = sm2.CryptSM2(private_key=private_key, public_key="", asn1=True)
    c.public_key = public_xy
    return c

# (a) our signatures, checked by gmssl; plus one over another message as a control.
v = crypt(None, req["public_xy"])
out["ours_verified"] = [bool(v.verify_with_sm3(s, bytes.fromhex(m)))
                        for m, s in zip(req["messages"], req["signatures"])]
out["control_verified"] = bool(v.verify_with_sm3(req["signatures"][0], b"another message"))

# (b) gmssl signs with its own key.
d = func.random_hex(64)
g = sm2.default_ecc_table["g"]
signer = crypt(d, "")
signer.public_key = signer._kg(int(d, 16), g)
out["gmssl_public_xy"] = signer.public_key
out["gmssl_signatures"] = [signer.sign_with_sm3(bytes.fromhex(m), func.random_hex(64))
                           for m in req["messages"]]

# (c) SM3.
out["sm3"] = [sm3.sm3_hash(list(bytes.fromhex(m))) for m in req["messages"]]
print(json.dumps(out))
"#;

fn run_gmssl(request: &Value) -> Value {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let install = "run the install step of .ci/run (`python3 -m pip install gmssl`)";
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("python3 is needed for the SM2 interop test ({e}); {install}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.to_string().as_bytes())
        .expect("write request");
    let output = child.wait_with_output().expect("python3 ran");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named 'gmssl'"),
        "the Python package gmssl is missing; {install}"
    );
    assert!(output.status.success(), "the gmssl script failed: {stderr}");
    serde_json::from_slice(&output.stdout).expect("JSON from the gmssl script")
}

#[test]
fn sm2_signatures_and_sm3_digests_agree_with_python_gmssl() {
    let messages: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"abc".to_vec(),
        "保函编号 BH-2026-0001：金额 1,000,000.00 元"
            .as_bytes()
            .to_vec(),
        b"abcd".repeat(16),
        (0..1000u32).map(|i| (i * 7 % 251) as u8).collect(),
    ];
    let key = Sm2PrivateKey::generate().expect("key");
    let signatures: Vec<String> = messages
        .iter()
        .map(|m| hex::encode(sm2_sign_raw(&key, m).expect("sign")))
        .collect();
    let public_xy = hex::encode(&key.public_key().to_sec1_bytes()[1..]);
    let answer = run_gmssl(&json!({
        "public_xy": public_xy,
        "messages": messages.iter().map(hex::encode).collect::<Vec<_>>(),
        "signatures": signatures,
    }));

    // (a) gmssl verifies every signature of ours, and rejects one over another message.
    assert_eq!(
        answer["ours_verified"],
        json!(vec![true; messages.len()]),
        "gmssl rejected our signatures"
    );
    assert_eq!(
        answer["control_verified"],
        json!(false),
        "the control must fail"
    );

    // (b) we verify every signature gmssl made, and none over another message.
    let xy = answer["gmssl_public_xy"].as_str().expect("public key");
    let public = Sm2PublicKey::from_sec1_bytes(&hex::decode(format!("04{xy}")).expect("hex"))
        .expect("gmssl's public key is on the curve");
    let theirs = answer["gmssl_signatures"].as_array().expect("signatures");
    assert_eq!(theirs.len(), messages.len());
    for (message, signature) in messages.iter().zip(theirs) {
        let der = hex::decode(signature.as_str().expect("hex")).expect("hex");
        assert_eq!(
            sm2_verify_raw(&public, message, &der),
            Ok(()),
            "gmssl's signature over {message:?} does not verify here"
        );
        assert_eq!(
            sm2_verify_raw(&public, b"another message", &der),
            Err(Sm2Error::BadSignature)
        );
    }

    // (c) SM3 agrees.
    let digests: Vec<String> = messages
        .iter()
        .map(|m| hex::encode(sm3_digest(m)))
        .collect();
    assert_eq!(answer["sm3"], json!(digests));
}
