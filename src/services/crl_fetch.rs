//! CRLs fetched from the distribution points the certificates name (RFC 5280
//! §4.2.1.13), so that revocation status stays current without an operator upload.
//!
//! The upkeep task calls [`refresh_fetched_crls`] on every instance. It collects the
//! http:// distribution points of the registered issuer certificates and the trust
//! anchors, fetches each CRL that is missing or due (its nextUpdate less than the
//! configured margin away, or, without a nextUpdate, fetched longer than the configured
//! interval ago), keeps it only when a trust anchor issued and signed it, and stores it
//! in the `crls` table beside the operator's uploads, with its URL: every instance then
//! picks it up on its next reload, and reports name it as the source. A failure is
//! logged and the URL is tried again next round; it never stops the upkeep.

use std::collections::BTreeSet;
use std::io::Read;
use std::time::Duration;

use diesel::prelude::*;
use openssl::x509::{X509Crl, X509};

use super::{new_id, Context, OrInternal, ServiceError};
use crate::db::audit::{self, AuditEvent};
use crate::db::models::Crl;
use crate::db::schema::{crls, issuer_certificates};
use crate::db::write_tx;
use crate::pki::certs::{asn1_to_unix, crl_distribution_urls, name_to_string};

/// How CRLs and OCSP answers are fetched (configuration: `revocation_fetch_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationFetching {
    /// Fetch a new CRL or OCSP answer once its nextUpdate is less than this far away
    /// (capped at half its own validity, so a short-lived one is not fetched every
    /// round).
    pub margin: Duration,
    /// Fetch a CRL or OCSP answer without nextUpdate again after this long.
    pub interval: Duration,
    /// Connect and read timeout of one fetch.
    pub timeout: Duration,
    /// A larger response is refused.
    pub max_bytes: u64,
}

impl Default for RevocationFetching {
    fn default() -> Self {
        RevocationFetching {
            margin: Duration::from_secs(3600),
            interval: Duration::from_secs(3600),
            timeout: Duration::from_secs(5),
            max_bytes: 10 * 1024 * 1024,
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchRound {
    /// Distribution points named by the certificates.
    pub urls: usize,
    /// New CRLs stored.
    pub stored: usize,
    /// Fetches that failed or returned a CRL the exchange does not trust (logged).
    pub failed: usize,
}

/// Why one distribution point or responder gave nothing to keep.
#[derive(Debug, thiserror::Error)]
pub(super) enum FetchError {
    #[error("request failed: {0}")]
    Http(String),
    #[error("reading the response: {0}")]
    Read(#[from] std::io::Error),
    #[error("the response is larger than {0} bytes")]
    TooLarge(u64),
    #[error("the response is not a PEM or DER CRL")]
    NotACrl,
    #[error("the CRL of {0} is not issued and signed by a trust anchor")]
    Untrusted(String),
}

/// Fetches the CRLs that are missing or due from every distribution point named by the
/// registered issuer certificates and the trust anchors, stores the trusted ones, and
/// rebuilds the trust store when one was stored.
pub fn refresh_fetched_crls(ctx: &Context) -> Result<FetchRound, ServiceError> {
    let mut conn = ctx.conn()?;
    let store = ctx.verifier.current(&mut conn)?;
    let issued: Vec<Vec<u8>> = issuer_certificates::table
        .filter(issuer_certificates::deactivated_at.is_null())
        .select(issuer_certificates::certificate_der)
        .load(&mut conn)?;
    let mut urls = BTreeSet::new();
    for der in &issued {
        if let Ok(cert) = X509::from_der(der) {
            urls.extend(crl_distribution_urls(&cert));
        }
    }
    for anchor in store.anchors() {
        urls.extend(crl_distribution_urls(anchor));
    }
    drop(conn);
    fetch_due(ctx, urls)
}

/// Fetches the CRLs of a certificate being registered from the distribution points it
/// names (when missing or due), so that a CA whose CRL was never uploaded can still be
/// known: its revocation status comes from where the certificate says it is published.
pub fn fetch_for_certificate(ctx: &Context, cert: &X509) -> Result<FetchRound, ServiceError> {
    fetch_due(ctx, crl_distribution_urls(cert).into_iter().collect())
}

/// Fetches and stores the CRLs that are missing or due at `urls`; rebuilds the trust
/// store when one was stored.
fn fetch_due(ctx: &Context, urls: BTreeSet<String>) -> Result<FetchRound, ServiceError> {
    let settings = ctx.verifier.revocation_fetching().clone();
    let mut conn = ctx.conn()?;
    let store = ctx.verifier.current(&mut conn)?;
    let mut round = FetchRound {
        urls: urls.len(),
        ..FetchRound::default()
    };
    for url in urls {
        let now = ctx.now();
        let latest: Option<Crl> = crls::table
            .filter(crls::source_url.eq(&url))
            .order((crls::this_update.desc(), crls::created_at.desc()))
            .select(Crl::as_select())
            .first(&mut conn)
            .optional()?;
        if !is_due(latest.as_ref(), now, &settings) {
            continue;
        }
        let crl = match fetch(&url, &settings).and_then(|crl| {
            store
                .crl_signer(&crl)
                .map(|_| ())
                .ok_or_else(|| FetchError::Untrusted(name_to_string(crl.issuer_name())))?;
            Ok(crl)
        }) {
            Ok(crl) => crl,
            Err(e) => {
                tracing::warn!(url = %url, error = %e, "CRL not fetched; trying again next round");
                round.failed += 1;
                continue;
            }
        };
        let der = crl.to_der().or_internal("encoding a fetched CRL")?;
        let time = |t: &openssl::asn1::Asn1TimeRef| {
            asn1_to_unix(t)
                .ok()
                .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
                .map(|t| t.naive_utc())
        };
        let Some(this_update) = time(crl.last_update()) else {
            round.failed += 1;
            continue;
        };
        // Never go back to an older CRL (a stale cache or a replay), and keep one row
        // per CRL.
        if latest
            .as_ref()
            .is_some_and(|l| this_update < l.this_update || l.crl_der == der)
        {
            continue;
        }
        let known: i64 = crls::table
            .filter(crls::source_url.eq(&url))
            .filter(crls::this_update.eq(this_update))
            .count()
            .get_result(&mut conn)?;
        if known > 0 {
            continue;
        }
        let row = Crl {
            id: new_id(),
            issuer_name: name_to_string(crl.issuer_name()),
            crl_der: der,
            this_update,
            next_update: crl.next_update().and_then(time),
            created_at: now,
            source_url: Some(url.clone()),
        };
        write_tx(&mut conn, |c| -> Result<(), ServiceError> {
            diesel::insert_into(crls::table).values(&row).execute(c)?;
            super::trust::bump_store_version(c)?;
            audit::append(
                c,
                &AuditEvent {
                    action: "fetch_crl",
                    entity_kind: "crl",
                    entity_id: &row.id,
                    details: serde_json::json!({ "what": row.issuer_name, "url": url }),
                    ..Default::default()
                },
                now,
            )?;
            Ok(())
        })?;
        tracing::info!(url = %url, issuer = %row.issuer_name, "CRL fetched");
        round.stored += 1;
    }
    if round.stored > 0 {
        ctx.verifier.current(&mut conn)?;
    }
    Ok(round)
}

/// Whether the CRL last fetched from a point should be fetched again at `now`.
fn is_due(latest: Option<&Crl>, now: chrono::NaiveDateTime, settings: &RevocationFetching) -> bool {
    let Some(latest) = latest else {
        return true;
    };
    let unix = |t: chrono::NaiveDateTime| t.and_utc().timestamp();
    window_is_due(
        unix(latest.this_update),
        latest.next_update.map(unix),
        unix(latest.created_at),
        unix(now),
        settings,
    )
}

/// Whether a CRL or OCSP answer valid from `this_update` to `next_update`, fetched at
/// `fetched_at`, should be fetched again at `now` (Unix seconds).
pub(super) fn window_is_due(
    this_update: i64,
    next_update: Option<i64>,
    fetched_at: i64,
    now: i64,
    settings: &RevocationFetching,
) -> bool {
    let seconds = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2);
    match next_update {
        Some(next) => {
            let half_life = ((next - this_update) / 2).max(0);
            now >= next - seconds(settings.margin).min(half_life)
        }
        None => now >= fetched_at.saturating_add(seconds(settings.interval)),
    }
}

/// Sends one request (a GET, or a POST of `body` with `content_type`) and reads the
/// response, refusing one over the size limit.
pub(super) fn http_exchange(
    url: &str,
    post: Option<(&str, &[u8])>,
    settings: &RevocationFetching,
) -> Result<Vec<u8>, FetchError> {
    let agent = ureq::AgentBuilder::new()
        .timeout(settings.timeout)
        .redirects(0)
        .build();
    let response = match post {
        None => agent.get(url).call(),
        Some((content_type, body)) => agent
            .post(url)
            .set("Content-Type", content_type)
            .send_bytes(body),
    }
    .map_err(|e| FetchError::Http(e.to_string()))?;
    let mut bytes = Vec::new();
    response
        .into_reader()
        .take(settings.max_bytes + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > settings.max_bytes {
        return Err(FetchError::TooLarge(settings.max_bytes));
    }
    Ok(bytes)
}

/// GETs one CRL.
fn fetch(url: &str, settings: &RevocationFetching) -> Result<X509Crl, FetchError> {
    let bytes = http_exchange(url, None, settings)?;
    X509Crl::from_der(&bytes)
        .or_else(|_| X509Crl::from_pem(&bytes))
        .map_err(|_| FetchError::NotACrl)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(this: i64, next: Option<i64>, created: i64) -> Crl {
        let t = |s| chrono::DateTime::from_timestamp(s, 0).unwrap().naive_utc();
        Crl {
            id: "x".into(),
            issuer_name: "CN=CA".into(),
            crl_der: Vec::new(),
            this_update: t(this),
            next_update: next.map(t),
            created_at: t(created),
            source_url: Some("http://ca.example/ca.crl".into()),
        }
    }

    fn at(s: i64) -> chrono::NaiveDateTime {
        chrono::DateTime::from_timestamp(s, 0).unwrap().naive_utc()
    }

    #[test]
    fn a_crl_is_due_when_missing_or_its_next_update_is_near() {
        let s = RevocationFetching::default();
        let day = 86_400;
        assert!(is_due(None, at(0), &s));
        let weekly = row(0, Some(7 * day), 0);
        assert!(!is_due(Some(&weekly), at(day), &s));
        assert!(!is_due(Some(&weekly), at(7 * day - 3601), &s));
        assert!(is_due(Some(&weekly), at(7 * day - 3600), &s));
        assert!(is_due(Some(&weekly), at(8 * day), &s));
    }

    #[test]
    fn a_short_lived_crl_is_not_fetched_every_round() {
        let s = RevocationFetching::default();
        // Valid for 20 minutes: the margin is capped at half of that.
        let short = row(0, Some(1200), 0);
        assert!(!is_due(Some(&short), at(599), &s));
        assert!(is_due(Some(&short), at(600), &s));
    }

    #[test]
    fn a_crl_without_next_update_is_fetched_again_after_the_interval() {
        let s = RevocationFetching::default();
        let open = row(0, None, 100);
        assert!(!is_due(Some(&open), at(100 + 3599), &s));
        assert!(is_due(Some(&open), at(100 + 3600), &s));
    }

    /// A loopback server answering one request with `body`, or never answering.
    fn serve_once(body: Option<Vec<u8>>) -> String {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/ca.crl", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let mut head = [0u8; 1024];
            let _ = stream.read(&mut head);
            match body {
                Some(body) => {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(&body);
                }
                None => std::thread::sleep(Duration::from_secs(3)),
            }
        });
        url
    }

    #[test]
    fn a_response_over_the_size_limit_is_refused() {
        let settings = RevocationFetching {
            max_bytes: 1000,
            ..RevocationFetching::default()
        };
        let url = serve_once(Some(vec![0x30; 1001]));
        assert!(matches!(
            http_exchange(&url, None, &settings),
            Err(FetchError::TooLarge(1000))
        ));
        let url = serve_once(Some(vec![0x30; 1000]));
        assert_eq!(http_exchange(&url, None, &settings).unwrap().len(), 1000);
        let url = serve_once(Some(b"not a CRL".to_vec()));
        assert!(matches!(fetch(&url, &settings), Err(FetchError::NotACrl)));
    }

    #[test]
    fn a_silent_server_times_out() {
        let settings = RevocationFetching {
            timeout: Duration::from_millis(300),
            ..RevocationFetching::default()
        };
        let url = serve_once(None);
        let started = std::time::Instant::now();
        assert!(matches!(
            http_exchange(&url, None, &settings),
            Err(FetchError::Http(_) | FetchError::Read(_))
        ));
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
