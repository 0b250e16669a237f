//! Tests of SM2 keys, certificates and CMS signatures: one per outcome of
//! [`verify_detached`], bad input of every kind, and interop with the independent Python
//! implementation `gmssl` ([`interop`]). All keys and certificates are generated here.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use der::Encode;
use proptest::prelude::*;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
};

use super::cert::encode_time;
use super::sign::{sign_with_oids, Oids};
use super::*;
use crate::pki::cms_parse::parse_detached_signed_data;
use crate::pki::demo::UsccField;

mod interop;

const USCC: &str = "91110000100000000R";

struct Fixture {
    ca: Sm2Ca,
    issuer: Sm2IssuedCert,
    doc: Vec<u8>,
    sig: Vec<u8>,
    signed_at: DateTime<Utc>,
}

impl Fixture {
    fn new() -> Self {
        Self::with(Sm2IssuerSpec::new("示例银行股份有限公司", USCC))
    }

    fn with(spec: Sm2IssuerSpec) -> Self {
        let ca = Sm2Ca::new("SM2 Test Root CA").expect("ca");
        let issuer = ca.issue(&spec).expect("issuer");
        let doc = "保函编号 BH-2026-0001：金额 1,000,000.00 元"
            .as_bytes()
            .to_vec();
        let signed_at = Utc::now().trunc_subsecs(0);
        let sig = sign_detached(
            &doc,
            &issuer.key,
            &issuer.cert,
            std::slice::from_ref(&ca.cert),
            signed_at,
        )
        .expect("sign");
        Fixture {
            ca,
            issuer,
            doc,
            sig,
            signed_at,
        }
    }

    fn verify(&self, doc: &[u8], sig: &[u8]) -> Result<Sm2Verified, Sm2Error> {
        verify_detached(doc, sig, std::slice::from_ref(&self.ca.cert), Utc::now())
    }
}

/// `bytes` with the only occurrence of `from` replaced by `to` (same length).
fn replace_once(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let at: Vec<usize> = bytes
        .windows(from.len())
        .enumerate()
        .filter(|(_, w)| *w == from)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 1, "the pattern occurs once");
    let mut out = bytes.to_vec();
    out[at[0]..at[0] + to.len()].copy_from_slice(to);
    out
}

// ---- keys and the raw primitive ----

#[test]
fn sm3_matches_the_standard_example() {
    // GM/T 0004-2012 Appendix A.1.
    assert_eq!(
        hex::encode(sm3_digest(b"abc")),
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    );
}

#[test]
fn a_private_key_round_trips_through_pkcs8_der_and_pem_and_the_sealed_store() {
    let key = Sm2PrivateKey::generate().expect("key");
    let der = key.to_pkcs8_der().expect("der");
    let again = Sm2PrivateKey::from_pkcs8_der(der.as_bytes()).expect("read der");
    assert_eq!(again.public_key(), key.public_key());
    let pem = key.to_pkcs8_pem().expect("pem");
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let again = Sm2PrivateKey::from_pkcs8_pem(&pem).expect("read pem");
    assert_eq!(again.public_key(), key.public_key());
    assert!(!format!("{key:?}").contains(&hex::encode(der.as_bytes())));

    // The hosted-key sealing of OpenSSL keys applies unchanged to the PKCS#8 bytes.
    let master = crate::pki::MasterKey::generate().expect("master");
    let blob = crate::pki::seal(&master, der.as_bytes(), "issuer-1").expect("seal");
    let opened = crate::pki::open(&master, &blob, "issuer-1").expect("open");
    let unsealed = Sm2PrivateKey::from_pkcs8_der(&opened).expect("read");
    assert_eq!(unsealed.public_key(), key.public_key());
}

#[test]
fn pkcs8_of_another_curve_is_refused() {
    let p256 = openssl::ec::EcKey::generate(
        &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).expect("g"),
    )
    .expect("key");
    let der = openssl::pkey::PKey::from_ec_key(p256)
        .expect("pkey")
        .private_key_to_pkcs8()
        .expect("pkcs8");
    assert!(matches!(
        Sm2PrivateKey::from_pkcs8_der(&der),
        Err(Sm2KeyError::Pkcs8(_))
    ));
    assert!(Sm2PrivateKey::from_pkcs8_der(b"garbage").is_err());
}

#[test]
fn a_public_key_round_trips_through_spki_and_sec1() {
    let public = Sm2PrivateKey::generate().expect("key").public_key();
    let spki = public.to_public_key_der().expect("spki");
    assert_eq!(
        Sm2PublicKey::from_public_key_der(&spki).expect("read"),
        public
    );
    let sec1 = public.to_sec1_bytes();
    assert_eq!(sec1.len(), 65);
    assert_eq!(sec1[0], 4);
    assert_eq!(Sm2PublicKey::from_sec1_bytes(&sec1).expect("read"), public);
    let mut off_curve = sec1.clone();
    off_curve[64] ^= 1;
    assert!(Sm2PublicKey::from_sec1_bytes(&off_curve).is_err());
}

#[test]
fn a_raw_signature_verifies_only_for_its_message_and_key() {
    let key = Sm2PrivateKey::generate().expect("key");
    let other = Sm2PrivateKey::generate().expect("key");
    let sig = sm2_sign_raw(&key, b"message").expect("sign");
    assert_eq!(sig[0], 0x30, "DER SEQUENCE (r, s)");
    assert_eq!(sm2_verify_raw(&key.public_key(), b"message", &sig), Ok(()));
    assert_eq!(
        sm2_verify_raw(&key.public_key(), b"messagf", &sig),
        Err(Sm2Error::BadSignature)
    );
    assert_eq!(
        sm2_verify_raw(&other.public_key(), b"message", &sig),
        Err(Sm2Error::BadSignature)
    );
    assert!(matches!(
        sm2_verify_raw(&key.public_key(), b"message", &sig[..sig.len() - 1]),
        Err(Sm2Error::Malformed(_))
    ));
    // r = 0 and r = n are outside [1, n-1].
    let zero = [0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01];
    assert!(matches!(
        sm2_verify_raw(&key.public_key(), b"message", &zero),
        Err(Sm2Error::Malformed(_))
    ));
}

// ---- certificates ----

#[test]
fn an_issuer_certificate_round_trips_and_verifies_under_its_ca() {
    let ca = Sm2Ca::new("SM2 Test Root CA").expect("ca");
    let mut spec = Sm2IssuerSpec::new("示例银行股份有限公司", USCC);
    spec.document_signing_eku = true;
    let issued = ca.issue(&spec).expect("issue");

    let parsed = Sm2Certificate::from_der(issued.cert.der()).expect("parse");
    assert_eq!(parsed, issued.cert);
    assert_eq!(
        Sm2Certificate::from_pem(&issued.cert.to_pem()).expect("pem"),
        issued.cert
    );
    parsed
        .verify_signed_by(&ca.key.public_key())
        .expect("signed by the CA");
    assert_eq!(
        parsed.verify_signed_by(&Sm2PrivateKey::generate().expect("k").public_key()),
        Err(Sm2Error::BadSignature)
    );
    ca.cert
        .verify_signed_by(&ca.key.public_key())
        .expect("self-signed");
    assert_eq!(parsed.public_key().expect("key"), issued.key.public_key());

    let tbs = &parsed.certificate().tbs_certificate;
    assert_eq!(
        parsed.certificate().signature_algorithm.oid,
        oid::SM2_WITH_SM3
    );
    assert_eq!(tbs.signature.oid, oid::SM2_WITH_SM3);
    assert_eq!(
        parsed.subject(),
        format!(
            "C=CN, O=示例银行股份有限公司, organizationIdentifier=NTRCN-{USCC}, CN=示例银行股份有限公司 电子保函签章"
        )
    );
    assert_eq!(parsed.issuer(), ca.cert.subject());

    let critical = |oid| {
        tbs.extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == oid)
            .map(|e| e.critical)
    };
    let ku = parsed
        .extension::<KeyUsage>()
        .expect("ku")
        .expect("present");
    assert_eq!(
        ku.0,
        KeyUsages::DigitalSignature | KeyUsages::NonRepudiation
    );
    assert_eq!(
        critical(der::oid::ObjectIdentifier::new_unwrap("2.5.29.15")),
        Some(true)
    );
    let bc = parsed
        .extension::<BasicConstraints>()
        .expect("bc")
        .expect("present");
    assert!(!bc.ca);
    assert_eq!(
        critical(der::oid::ObjectIdentifier::new_unwrap("2.5.29.19")),
        Some(true)
    );
    let eku = parsed
        .extension::<ExtendedKeyUsage>()
        .expect("eku")
        .expect("present");
    assert_eq!(eku.0, vec![oid::DOCUMENT_SIGNING]);
    let aki = parsed
        .extension::<AuthorityKeyIdentifier>()
        .expect("aki")
        .expect("present");
    assert_eq!(
        aki.key_identifier.map(|k| k.as_bytes().to_vec()),
        ca.cert.subject_key_id()
    );
    assert!(parsed.subject_key_id().is_some_and(|k| k.len() == 20));
    assert!(ca.cert.is_ca() && !parsed.is_ca());
}

#[test]
fn the_uscc_can_go_in_serial_number() {
    let ca = Sm2Ca::new("SM2 Test Root CA").expect("ca");
    let mut spec = Sm2IssuerSpec::new("Bank", USCC);
    spec.uscc_field = UsccField::SerialNumber;
    let issued = ca.issue(&spec).expect("issue");
    assert!(issued
        .cert
        .subject()
        .contains(&format!("serialNumber={USCC}")));
}

#[test]
fn openssl_reads_and_verifies_our_sm2_certificates() {
    // An independent reader of the DER: OpenSSL 3 parses SM2 certificates and
    // `openssl verify` checks SM2-with-SM3 certificate signatures. OpenSSL 3.0 uses an
    // empty distinguishing ID unless told (`-vfyopt distid:`), so a verifier on OpenSSL
    // must pass GM/T 0009's default as we sign with it.
    let ca = Sm2Ca::new("SM2 Test Root CA").expect("ca");
    let issued = ca.issue(&Sm2IssuerSpec::new("Bank", USCC)).expect("issue");
    let x509 = openssl::x509::X509::from_der(issued.cert.der()).expect("openssl reads it");
    assert_eq!(x509.to_der().expect("der"), issued.cert.der());

    let dir = tempfile::tempdir().expect("dir");
    let (ca_pem, ee_pem) = (dir.path().join("ca.pem"), dir.path().join("ee.pem"));
    std::fs::write(&ca_pem, ca.cert.to_pem()).expect("write");
    std::fs::write(&ee_pem, issued.cert.to_pem()).expect("write");
    let verify = |ca_file: &std::path::Path| {
        std::process::Command::new("openssl")
            .args(["verify", "-vfyopt", "distid:1234567812345678", "-CAfile"])
            .arg(ca_file)
            .arg(&ee_pem)
            .output()
            .expect("openssl runs")
    };
    let out = verify(&ca_pem);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The control: another CA of the same name does not verify it.
    let impostor = Sm2Ca::new("SM2 Test Root CA").expect("ca");
    std::fs::write(&ca_pem, impostor.cert.to_pem()).expect("write");
    assert!(!verify(&ca_pem).status.success());
}

#[test]
fn sign_detached_refuses_a_key_that_is_not_the_certificates() {
    let fx = Fixture::new();
    let other = Sm2PrivateKey::generate().expect("key");
    assert!(matches!(
        sign_detached(&fx.doc, &other, &fx.issuer.cert, &[], Utc::now()),
        Err(Sm2SignError::KeyMismatch)
    ));
    let big = vec![0u8; crate::pki::MAX_DOCUMENT_BYTES + 1];
    assert!(matches!(
        sign_detached(&big, &fx.issuer.key, &fx.issuer.cert, &[], Utc::now()),
        Err(Sm2SignError::TooLarge(_))
    ));
}

// ---- verify_detached: one test per outcome ----

#[test]
fn a_valid_signature_verifies_with_its_signer_and_time() {
    let fx = Fixture::new();
    let ok = fx.verify(&fx.doc, &fx.sig).expect("valid");
    assert_eq!(ok.signer_certificate, fx.issuer.cert.der());
    assert_eq!(
        ok.signer_certificate_sha256,
        crate::pki::sha256_hex(fx.issuer.cert.der())
    );
    assert_eq!(ok.signing_time, Some(fx.signed_at));
    assert_eq!(ok.signer_subject, fx.issuer.cert.subject());
    assert_eq!(
        ok.chain,
        vec![fx.issuer.cert.subject(), fx.ca.cert.subject()]
    );

    // What we emit: PKCS#7 content types, SM3, SM2-with-SM3, issuerAndSerialNumber.
    let sd = crate::pki::cms_parse::parse_signed_data(&fx.sig).expect("PKCS#7 OIDs");
    assert_eq!(sd.signer.digest_algorithm, oid::SM3.as_bytes());
    assert_eq!(sd.signer.signature_algorithm, oid::SM2_WITH_SM3.as_bytes());
    assert_eq!(sd.digest_algorithms, vec![oid::SM3.as_bytes()]);
    assert!(matches!(
        sd.signer.sid,
        crate::pki::cms_parse::SignerId::IssuerSerial { .. }
    ));
    assert_eq!(sd.certificates.len(), 2);
}

#[test]
fn the_signer_certificate_alone_verifies_when_the_ca_is_trusted() {
    let fx = Fixture::new();
    let sig =
        sign_detached(&fx.doc, &fx.issuer.key, &fx.issuer.cert, &[], Utc::now()).expect("sign");
    assert!(fx.verify(&fx.doc, &sig).is_ok());
}

#[test]
fn gm_t_0010_identifiers_are_accepted() {
    let fx = Fixture::new();
    for oids in [
        Oids {
            signed_data: oid::GM_SIGNED_DATA,
            data: oid::GM_DATA,
            signature: oid::SM2_WITH_SM3,
        },
        Oids {
            signed_data: oid::SIGNED_DATA,
            data: oid::DATA,
            signature: oid::SM2_SIGN,
        },
        Oids {
            signed_data: oid::GM_SIGNED_DATA,
            data: oid::GM_DATA,
            signature: oid::SM2,
        },
    ] {
        let sig = sign_with_oids(
            &fx.doc,
            &fx.issuer.key,
            &fx.issuer.cert,
            &[],
            Utc::now(),
            oids,
        )
        .expect("sign");
        assert!(fx.verify(&fx.doc, &sig).is_ok(), "{oids:?}");
    }
    // Another algorithm in the signature algorithm field is refused.
    let sig = sign_with_oids(
        &fx.doc,
        &fx.issuer.key,
        &fx.issuer.cert,
        &[],
        Utc::now(),
        Oids {
            signed_data: oid::SIGNED_DATA,
            data: oid::DATA,
            signature: der::oid::ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2"),
        },
    )
    .expect("sign");
    assert!(matches!(
        fx.verify(&fx.doc, &sig),
        Err(Sm2Error::UnsupportedAlgorithm(_))
    ));
}

#[test]
fn a_tampered_document_is_a_digest_mismatch() {
    let fx = Fixture::new();
    let mut doc = fx.doc.clone();
    doc[0] ^= 1;
    assert_eq!(fx.verify(&doc, &fx.sig), Err(Sm2Error::DigestMismatch));
    assert_eq!(fx.verify(b"", &fx.sig), Err(Sm2Error::DigestMismatch));
}

#[test]
fn a_tampered_signed_attribute_is_a_bad_signature() {
    let fx = Fixture::new();
    let time = |t| encode_time(t).expect("time").to_der().expect("der");
    let claimed = time(fx.signed_at);
    let earlier = time(fx.signed_at - Duration::days(30));
    let sig = replace_once(&fx.sig, &claimed, &earlier);
    assert_eq!(fx.verify(&fx.doc, &sig), Err(Sm2Error::BadSignature));
}

#[test]
fn a_signature_by_a_key_not_in_the_certificate_is_a_bad_signature() {
    let fx = Fixture::new();
    let sd = parse_detached_signed_data(
        &fx.sig,
        &[oid::SIGNED_DATA.as_bytes()],
        &[oid::DATA.as_bytes()],
    )
    .expect("parse");
    let original = sd.signer.signature.to_vec();
    let attrs = sd.signer.signed_attrs_to_verify();
    let intruder = Sm2PrivateKey::generate().expect("key");
    // DER (r, s) varies in length with leading zeros; keep one of the same length.
    let forged = (0..200)
        .map(|_| sm2_sign_raw(&intruder, &attrs).expect("sign"))
        .find(|s| s.len() == original.len())
        .expect("a signature of the same length");
    let sig = replace_once(&fx.sig, &original, &forged);
    assert_eq!(fx.verify(&fx.doc, &sig), Err(Sm2Error::BadSignature));
}

#[test]
fn a_signer_under_an_untrusted_ca_is_untrusted() {
    let fx = Fixture::new();
    let other = Sm2Ca::new("SM2 Other Root CA").expect("ca");
    let err = verify_detached(
        &fx.doc,
        &fx.sig,
        std::slice::from_ref(&other.cert),
        Utc::now(),
    )
    .expect_err("untrusted");
    assert!(matches!(err, Sm2Error::Untrusted(_)), "{err}");
    assert!(matches!(
        verify_detached(&fx.doc, &fx.sig, &[], Utc::now()),
        Err(Sm2Error::Untrusted(_))
    ));

    // A CA of the same name but another key is not the issuer either.
    let impostor = Sm2Ca::new("SM2 Test Root CA").expect("ca");
    assert!(matches!(
        verify_detached(
            &fx.doc,
            &fx.sig,
            std::slice::from_ref(&impostor.cert),
            Utc::now()
        ),
        Err(Sm2Error::Untrusted(_))
    ));
}

#[test]
fn an_end_entity_cannot_act_as_a_ca() {
    // The signer's certificate issued by another end entity's key: not a CA.
    let fx = Fixture::new();
    let err = verify_detached(
        &fx.doc,
        &fx.sig,
        std::slice::from_ref(&fx.issuer.cert),
        Utc::now(),
    )
    .expect_err("not a CA");
    assert!(matches!(err, Sm2Error::Untrusted(_)), "{err}");
}

#[test]
fn an_expired_or_not_yet_valid_certificate_is_not_valid_at_the_time() {
    let mut spec = Sm2IssuerSpec::new("Bank", USCC);
    spec.not_before = Utc::now() - Duration::days(400);
    spec.not_after = Utc::now() - Duration::days(30);
    let fx = Fixture::with(spec);
    assert!(matches!(
        fx.verify(&fx.doc, &fx.sig),
        Err(Sm2Error::NotValidAt { .. })
    ));
    // Valid at a time within its validity (e.g. a time-stamp's).
    let then = Utc::now() - Duration::days(100);
    assert!(verify_detached(&fx.doc, &fx.sig, std::slice::from_ref(&fx.ca.cert), then).is_ok());

    // The year 9999 and before 1970: outside every validity, never a panic.
    let fx = Fixture::new();
    for at in [
        DateTime::<Utc>::from_timestamp(253_402_300_799, 0).expect("9999"),
        DateTime::<Utc>::from_timestamp(-86_400, 0).expect("1969"),
    ] {
        let err = verify_detached(&fx.doc, &fx.sig, std::slice::from_ref(&fx.ca.cert), at)
            .expect_err("outside");
        assert!(matches!(err, Sm2Error::NotValidAt { .. }), "{err}");
    }
}

#[test]
fn a_certificate_without_signing_key_usage_is_refused() {
    let mut spec = Sm2IssuerSpec::new("Bank", USCC);
    spec.signing_key_usage = false;
    let fx = Fixture::with(spec);
    assert!(matches!(
        fx.verify(&fx.doc, &fx.sig),
        Err(Sm2Error::WrongKeyUsage(_))
    ));

    let mut spec = Sm2IssuerSpec::new("Bank", USCC);
    spec.document_signing_eku = true;
    let fx = Fixture::with(spec);
    assert!(
        fx.verify(&fx.doc, &fx.sig).is_ok(),
        "documentSigning is allowed"
    );
}

#[test]
fn an_ecdsa_cms_signature_is_an_unsupported_algorithm() {
    use crate::pki::demo::{DemoCa, IssuerSpec, KeyType};
    let fx = Fixture::new();
    let ca = DemoCa::new("P-256 CA", KeyType::EcP256).expect("ca");
    let issuer = ca.issue(&IssuerSpec::new("Bank", USCC)).expect("issuer");
    let sig = crate::pki::sign_detached(&fx.doc, &issuer.cert, &issuer.key, &[]).expect("sign");
    assert!(matches!(
        fx.verify(&fx.doc, &sig),
        Err(Sm2Error::UnsupportedAlgorithm(_))
    ));
}

#[test]
fn garbage_and_every_truncation_are_format_failures() {
    let fx = Fixture::new();
    for bad in [
        &b""[..],
        b"garbage",
        &[0x30, 0x80, 0x00, 0x00],
        &[0x30; 100],
    ] {
        let err = fx.verify(&fx.doc, bad).expect_err("garbage");
        assert!(err.is_format_failure(), "{err}");
    }
    for len in 0..fx.sig.len() {
        let err = fx.verify(&fx.doc, &fx.sig[..len]).expect_err("truncated");
        assert!(err.is_format_failure(), "at {len}: {err}");
    }
    let mut trailing = fx.sig.clone();
    trailing.push(0);
    assert!(fx
        .verify(&fx.doc, &trailing)
        .expect_err("trailing")
        .is_format_failure());
}

#[test]
fn oversized_inputs_are_refused_unread() {
    let fx = Fixture::new();
    let big = vec![0x30; crate::pki::MAX_SIGNATURE_BYTES + 1];
    assert!(matches!(
        fx.verify(&fx.doc, &big),
        Err(Sm2Error::TooLarge {
            what: "signature",
            ..
        })
    ));
    let big_doc = vec![0; crate::pki::MAX_DOCUMENT_BYTES + 1];
    assert!(matches!(
        fx.verify(&big_doc, &fx.sig),
        Err(Sm2Error::TooLarge {
            what: "document",
            ..
        })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let ca = fixture().ca.cert.clone();
        prop_assert!(verify_detached(b"doc", &bytes, &[ca], Utc::now()).is_err());
    }

    #[test]
    fn flipped_bytes_never_panic(index in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let fx = fixture();
        let mut sig = fx.sig.clone();
        sig[index.index(fx.sig.len())] ^= flip;
        let _ = fx.verify(&fx.doc, &sig);
    }
}

#[test]
fn every_flipped_byte_of_the_signed_attributes_and_signature_value_fails() {
    let fx = fixture();
    let sd = crate::pki::cms_parse::parse_signed_data(&fx.sig).expect("parse");
    let offset = |part: &[u8]| part.as_ptr() as usize - fx.sig.as_ptr() as usize;
    let attrs = offset(sd.signer.signed_attrs_raw)
        ..offset(sd.signer.signed_attrs_raw) + sd.signer.signed_attrs_raw.len();
    let value =
        offset(sd.signer.signature)..offset(sd.signer.signature) + sd.signer.signature.len();
    for i in attrs.chain(value) {
        let mut sig = fx.sig.clone();
        sig[i] ^= 0x01;
        assert!(
            fx.verify(&fx.doc, &sig).is_err(),
            "byte {i} flipped yet valid"
        );
    }
}

/// One fixture shared by the property tests (key generation per case would dominate).
fn fixture() -> &'static Fixture {
    static FIXTURE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(Fixture::new)
}
