//! Small readings of X.509 certificates and CRLs shared by the trust store and the
//! verification engine: times as Unix seconds and RFC 3339, names as text.

use chrono::{DateTime, Utc};
use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::x509::{X509NameRef, X509Ref};

/// Converts an ASN.1 time to Unix seconds.
pub fn asn1_to_unix(time: &Asn1TimeRef) -> Result<i64, openssl::error::ErrorStack> {
    let epoch = Asn1Time::from_unix(0)?;
    let diff = epoch.diff(time)?;
    Ok(i64::from(diff.days) * 86_400 + i64::from(diff.secs))
}

/// RFC 3339 form of Unix seconds (UTC).
pub fn unix_to_rfc3339(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| secs.to_string())
}

/// Formats an OpenSSL name as `C=CN, O=..., CN=...`.
pub fn name_to_string(name: &X509NameRef) -> String {
    name.entries()
        .map(|e| {
            let key = e
                .object()
                .nid()
                .short_name()
                .map(str::to_owned)
                .unwrap_or_else(|_| e.object().to_string());
            let value = e.data().to_string().unwrap_or_else(|_| "?".to_owned());
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The http:// URLs of a certificate's CRL distribution points (full names only; other
/// schemes such as ldap:// are not fetched).
pub fn crl_distribution_urls(cert: &X509Ref) -> Vec<String> {
    let mut urls = Vec::new();
    for point in cert.crl_distribution_points().iter().flatten() {
        let names = point.distpoint().and_then(|name| name.fullname());
        for name in names.into_iter().flatten() {
            if let Some(uri) = name.uri().filter(|u| is_http(u)) {
                urls.push(uri.to_owned());
            }
        }
    }
    urls
}

/// The http:// URLs of a certificate's OCSP responders (Authority Information Access,
/// id-ad-ocsp).
pub fn ocsp_responder_urls(cert: &X509Ref) -> Vec<String> {
    cert.ocsp_responders()
        .map(|list| {
            list.iter()
                .map(|u| u.to_string())
                .filter(|u| is_http(u))
                .collect()
        })
        .unwrap_or_default()
}

fn is_http(url: &str) -> bool {
    url.get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"))
}
