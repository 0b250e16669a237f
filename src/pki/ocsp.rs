//! OCSP (RFC 6960): the request for one certificate and the reading of its answer,
//! checked against the trust store. Sending the request is the caller's business (this
//! layer knows no HTTP).
//!
//! An answer counts only when OpenSSL's `OCSP_basic_verify` accepts it against the
//! trust store: signed by the certificate's issuing CA itself, or by a responder the CA
//! delegated with id-kp-OCSPSigning; when it is current (thisUpdate not in the future,
//! nextUpdate not passed, five minutes of slack); and when it speaks of the certificate
//! asked about (the certID matches). "unknown" is no answer.

use chrono::NaiveDateTime;
use openssl::hash::MessageDigest;
use openssl::ocsp::{
    OcspCertId, OcspCertStatus, OcspFlag, OcspRequest, OcspResponse, OcspResponseStatus,
};
use openssl::stack::Stack;
use openssl::x509::{X509Ref, X509};

pub use crate::pki::trust::OcspAnswer;
use crate::pki::trust::TrustStore;

/// Slack allowed around an answer's thisUpdate and nextUpdate, seconds.
const CLOCK_SLACK_SECONDS: u32 = 300;

/// Why an OCSP response gives no answer.
#[derive(Debug, thiserror::Error)]
pub enum OcspError {
    #[error("openssl: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
    #[error("the response is not DER OCSP")]
    NotOcsp,
    #[error("the responder answered with status {0}")]
    Status(i32),
    #[error("the response is not signed by the CA or a responder it delegated: {0}")]
    Untrusted(String),
    #[error("the response does not speak of this certificate")]
    NotAboutThisCertificate,
    #[error("the response is not current")]
    NotCurrent,
    #[error("the responder does not know the certificate")]
    Unknown,
    #[error("the response has an unreadable time")]
    BadTime,
}

/// The DER OCSP request for `cert`, issued by `issuer` (SHA-1 certID, as responders
/// universally support).
pub fn request(cert: &X509Ref, issuer: &X509Ref) -> Result<Vec<u8>, OcspError> {
    let mut req = OcspRequest::new()?;
    req.add_id(OcspCertId::from_cert(MessageDigest::sha1(), cert, issuer)?)?;
    Ok(req.to_der()?)
}

/// Reads and checks the DER response from `url` about `cert`, issued by `issuer`.
/// Currency is checked against the system clock (OpenSSL's `OCSP_check_validity`).
pub fn read_response(
    der: &[u8],
    cert: &X509Ref,
    issuer: &X509Ref,
    trust: &TrustStore,
    url: &str,
) -> Result<OcspAnswer, OcspError> {
    let response = OcspResponse::from_der(der).map_err(|_| OcspError::NotOcsp)?;
    if response.status() != OcspResponseStatus::SUCCESSFUL {
        return Err(OcspError::Status(response.status().as_raw()));
    }
    let basic = response.basic()?;
    let mut certs = Stack::new()?;
    certs.push(issuer.to_owned())?;
    basic
        .verify(&certs, trust.x509_store(), OcspFlag::empty())
        .map_err(|e| OcspError::Untrusted(e.to_string()))?;
    let id = OcspCertId::from_cert(MessageDigest::sha1(), cert, issuer)?;
    let status = basic
        .find_status(&id)
        .ok_or(OcspError::NotAboutThisCertificate)?;
    status
        .check_validity(CLOCK_SLACK_SECONDS, None)
        .map_err(|_| OcspError::NotCurrent)?;
    let revoked_at = if status.status == OcspCertStatus::GOOD {
        None
    } else if status.status == OcspCertStatus::REVOKED {
        let time = status.revocation_time.ok_or(OcspError::BadTime)?;
        Some(generalized_to_unix(&time.to_string())?)
    } else {
        return Err(OcspError::Unknown);
    };
    let this_update = generalized_to_unix(&status.this_update.to_string())?;
    let next_update = status
        .next_update()
        .map(|t| generalized_to_unix(&t.to_string()))
        .transpose()?;
    let produced_at = produced_at(&response.to_der()?).unwrap_or(this_update);
    Ok(OcspAnswer {
        url: url.to_owned(),
        produced_at,
        this_update,
        next_update,
        revoked_at,
    })
}

/// OpenSSL prints a GeneralizedTime as `Dec  2 03:47:50 2026 GMT`.
fn generalized_to_unix(printed: &str) -> Result<i64, OcspError> {
    let squeezed = printed.split_whitespace().collect::<Vec<_>>().join(" ");
    NaiveDateTime::parse_from_str(&squeezed, "%b %d %H:%M:%S %Y GMT")
        .map(|t| t.and_utc().timestamp())
        .map_err(|_| OcspError::BadTime)
}

/// One DER element: its tag, its contents and what follows it.
fn element(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// producedAt of a DER OCSPResponse (rust-openssl has no accessor for it):
/// OCSPResponse { status, [0] { SEQUENCE { type, OCTET STRING { BasicOCSPResponse {
/// ResponseData { [0] version?, responderID, producedAt, ... } } } } } }.
fn produced_at(der: &[u8]) -> Option<i64> {
    let (_, response, _) = element(der)?;
    let (_, _, rest) = element(response)?; // responseStatus
    let (_, explicit, _) = element(rest)?;
    let (_, bytes, _) = element(explicit)?;
    let (_, _, rest) = element(bytes)?; // responseType
    let (_, basic_der, _) = element(rest)?;
    let (_, basic, _) = element(basic_der)?;
    let (_, data, _) = element(basic)?;
    let (tag, _, after) = element(data)?;
    // The first element is the version ([0]) when present, else the responderID.
    let rest = if tag == 0xa0 {
        element(after)?.2
    } else {
        after
    };
    let (time_tag, time, _) = element(rest)?;
    if time_tag != 0x18 {
        return None;
    }
    let text = std::str::from_utf8(time).ok()?;
    NaiveDateTime::parse_from_str(text, "%Y%m%d%H%M%SZ")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

/// The issuer to ask about `cert` with: the next certificate of its chain in `trust`.
pub fn issuer_in(trust: &TrustStore, cert: &X509) -> Option<X509> {
    let untrusted = Stack::new().ok()?;
    let chain = trust.build_chain(cert, &untrusted).ok()?.ok()?;
    chain.get(1).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_generalized_times_are_read() {
        assert_eq!(
            generalized_to_unix("Jan  2 03:04:05 2026 GMT").unwrap(),
            chrono::NaiveDate::from_ymd_opt(2026, 1, 2)
                .unwrap()
                .and_hms_opt(3, 4, 5)
                .unwrap()
                .and_utc()
                .timestamp()
        );
        assert!(generalized_to_unix("yesterday").is_err());
    }

    #[test]
    fn truncated_der_gives_no_produced_at() {
        assert_eq!(produced_at(&[]), None);
        assert_eq!(produced_at(&[0x30, 0x82, 0xff]), None);
        assert_eq!(produced_at(&[0x30, 0x03, 0x0a, 0x01, 0x00]), None);
    }
}
