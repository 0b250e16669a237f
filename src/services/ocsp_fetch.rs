//! OCSP answers for the registered issuer certificates that name a responder
//! (Authority Information Access, id-ad-ocsp, http://).
//!
//! The hot path never waits on a responder: the upkeep task calls
//! [`refresh_ocsp_answers`], which asks each responder about each such certificate
//! when this instance holds no answer or its answer is due (the same margin and
//! interval as CRLs), keeps the answers that verify against the trust store
//! (`crate::pki::ocsp::read_response`) in memory, and reloads the store with them. The
//! engine then treats an answer like a CRL covering its thisUpdate..nextUpdate window,
//! and its reports name it: `ocsp (<url>, produced at <time>)`. Each instance asks on
//! its own; answers are not stored in the database.

use diesel::prelude::*;
use openssl::x509::X509;
use sha2::{Digest, Sha256};

use super::crl_fetch::{http_exchange, window_is_due, FetchRound};
use super::{Context, ServiceError};
use crate::db::schema::issuer_certificates;
use crate::pki::certs::ocsp_responder_urls;
use crate::pki::ocsp;

/// Asks the responders about every registered issuer certificate whose answer is
/// missing or due, keeps the verified answers, and reloads the trust store when one
/// was kept. A responder that fails is logged and asked again next round.
pub fn refresh_ocsp_answers(ctx: &Context) -> Result<FetchRound, ServiceError> {
    let settings = ctx.verifier.revocation_fetching().clone();
    let mut conn = ctx.conn()?;
    let store = ctx.verifier.current(&mut conn)?;
    let issued: Vec<Vec<u8>> = issuer_certificates::table
        .filter(issuer_certificates::deactivated_at.is_null())
        .select(issuer_certificates::certificate_der)
        .load(&mut conn)?;
    drop(conn);
    let mut round = FetchRound::default();
    let now = ctx.now().and_utc().timestamp();
    for der in issued {
        let Ok(cert) = X509::from_der(&der) else {
            continue;
        };
        let urls = ocsp_responder_urls(&cert);
        if urls.is_empty() {
            continue;
        }
        round.urls += urls.len();
        let fingerprint: [u8; 32] = Sha256::digest(&der).into();
        if let Some(held) = ctx.verifier.ocsp_answer(&fingerprint) {
            let fetched_at = held.produced_at;
            if !window_is_due(
                held.this_update,
                held.next_update,
                fetched_at,
                now,
                &settings,
            ) {
                continue;
            }
        }
        let Some(issuer) = ocsp::issuer_in(&store, &cert) else {
            continue;
        };
        for url in urls {
            let answer = ocsp::request(&cert, &issuer)
                .map_err(|e| e.to_string())
                .and_then(|request| {
                    http_exchange(
                        &url,
                        Some(("application/ocsp-request", request.as_slice())),
                        &settings,
                    )
                    .map_err(|e| e.to_string())
                })
                .and_then(|response| {
                    ocsp::read_response(&response, &cert, &issuer, &store, &url)
                        .map_err(|e| e.to_string())
                });
            match answer {
                Ok(answer) => {
                    ctx.verifier.keep_ocsp_answer(fingerprint, answer);
                    round.stored += 1;
                    break;
                }
                Err(e) => {
                    tracing::warn!(url = %url, error = %e, "no OCSP answer; asking again next round");
                    round.failed += 1;
                }
            }
        }
    }
    if round.stored > 0 {
        ctx.verifier.reload(&ctx.pool)?;
    }
    Ok(round)
}
