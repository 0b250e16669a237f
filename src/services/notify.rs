//! The mails use cases cause, queued in the outbox inside the same transaction as the
//! change (so a rolled-back change sends nothing, and a committed one is never lost).
//! An organization without a mail address simply gets none.

use chrono::NaiveDateTime;

use super::views::{ApplicationView, GuaranteeView};
use super::{Context, OrInternal, ServiceError};
use crate::db::models::{Claim, IssuerCertificate, Organization};
use crate::db::DbConnection;
use crate::domain::money::Amount;
use crate::domain::time::china_rfc3339;
use crate::domain::ClaimState;
use crate::mail::outbox::{self, Mail};
use crate::mail::templates::{self, ClaimOutcome};

fn queue(
    c: &mut DbConnection,
    to: &Organization,
    at: NaiveDateTime,
    render: impl FnOnce(&str) -> Result<Mail, askama::Error>,
) -> Result<(), ServiceError> {
    let Some(address) = to.email.as_deref() else {
        return Ok(());
    };
    let mail = render(address).or_internal("mail template")?;
    outbox::enqueue(c, mail, at)?;
    Ok(())
}

fn money(fen: i64) -> String {
    format!("¥{}", Amount::from_fen(fen))
}

/// A new application, to the issuer.
pub fn application_received(
    c: &mut DbConnection,
    ctx: &Context,
    v: &ApplicationView,
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    queue(c, &v.issuer, at, |to| {
        templates::application_received(
            to,
            &templates::ApplicationReceived {
                recipient_name: v.issuer.name.clone(),
                application_ref: v.application.id.clone(),
                enterprise_name: v.enterprise.name.clone(),
                project_name: v.project.name.clone(),
                section_name: v.section.name.clone(),
                bond_amount: money(v.application.amount_fen),
                bid_deadline: china_rfc3339(v.project.bid_deadline),
                link: format!(
                    "{}/api/v1/applications/{}",
                    ctx.public_base_url, v.application.id
                ),
            },
        )
    })
}

/// An application was withdrawn: its "application received" mail to the issuer is
/// dropped if it has not gone yet, so applying and withdrawing in a loop does not mail
/// the issuer each time.
pub fn application_withdrawn(
    c: &mut DbConnection,
    v: &ApplicationView,
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    if let Some(address) = v.issuer.email.as_deref() {
        let subject = templates::application_received_subject(&v.application.id);
        outbox::drop_unsent(c, address, &subject, at)?;
    }
    Ok(())
}

/// A guarantee was issued, to the bidder. The agency is not told now: until bid opening
/// nobody but the bidder and its issuer may know who bids (it sees every bond at opening).
pub fn guarantee_issued(
    c: &mut DbConnection,
    ctx: &Context,
    v: &GuaranteeView,
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    queue(c, &v.enterprise, at, |to| {
        templates::guarantee_issued(
            to,
            &templates::GuaranteeIssued {
                recipient_name: v.enterprise.name.clone(),
                guarantee_number: v.guarantee.number.clone(),
                issuer_name: v.issuer.name.clone(),
                enterprise_name: v.enterprise.name.clone(),
                project_name: v.project.name.clone(),
                section_name: v.section.name.clone(),
                amount: money(v.guarantee.amount_fen),
                valid_until: china_rfc3339(v.guarantee.valid_until),
                verify_link: format!(
                    "{}/verify?number={}",
                    ctx.public_base_url, v.guarantee.number
                ),
            },
        )
    })
}

/// A claim was filed, to the issuer and the bidder.
pub fn claim_filed(
    c: &mut DbConnection,
    ctx: &Context,
    v: &GuaranteeView,
    claim: &Claim,
    claimant: &Organization,
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    for recipient in [&v.issuer, &v.enterprise] {
        queue(c, recipient, at, |to| {
            templates::claim_filed(
                to,
                &templates::ClaimFiled {
                    recipient_name: recipient.name.clone(),
                    guarantee_number: v.guarantee.number.clone(),
                    claimant_name: claimant.name.clone(),
                    enterprise_name: v.enterprise.name.clone(),
                    project_name: v.project.name.clone(),
                    claim_amount: money(claim.amount_fen),
                    reason: claim.reason_code.to_string(),
                    link: format!("{}/api/v1/claims", ctx.public_base_url),
                },
            )
        })?;
    }
    Ok(())
}

/// A claim was decided, to the bidder and the agency that filed it.
pub fn claim_decided(
    c: &mut DbConnection,
    ctx: &Context,
    v: &GuaranteeView,
    claim: &Claim,
    agency: &Organization,
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    let paid = claim.status == ClaimState::Paid;
    for recipient in [&v.enterprise, agency] {
        queue(c, recipient, at, |to| {
            templates::claim_decided(
                to,
                &templates::ClaimDecided {
                    recipient_name: recipient.name.clone(),
                    guarantee_number: v.guarantee.number.clone(),
                    outcome: if paid {
                        ClaimOutcome::Paid
                    } else {
                        ClaimOutcome::Rejected
                    },
                    claim_amount: money(claim.amount_fen),
                    paid_amount: paid.then(|| money(claim.amount_fen)),
                    note: claim.decision_reason.clone(),
                    link: format!("{}/api/v1/claims", ctx.public_base_url),
                },
            )
        })?;
    }
    Ok(())
}

/// A guarantee was released, to the bidder.
pub fn guarantee_released(
    c: &mut DbConnection,
    ctx: &Context,
    v: &GuaranteeView,
    released_by: &str,
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    queue(c, &v.enterprise, at, |to| {
        templates::guarantee_released(
            to,
            &templates::GuaranteeReleased {
                recipient_name: v.enterprise.name.clone(),
                guarantee_number: v.guarantee.number.clone(),
                project_name: v.project.name.clone(),
                released_by: released_by.to_owned(),
                released_on: china_rfc3339(at),
                link: format!(
                    "{}/api/v1/guarantees/{}",
                    ctx.public_base_url, v.guarantee.number
                ),
            },
        )
    })
}

/// A bond or application changed: a postponement, an amendment to sign or signed, a
/// revocation. `reference` is the guarantee number, or the application's id before
/// issue; `link` the path under the public base URL.
#[allow(clippy::too_many_arguments)]
pub fn guarantee_changed(
    c: &mut DbConnection,
    ctx: &Context,
    recipient: &Organization,
    change: templates::GuaranteeChange,
    reference: &str,
    project_name: &str,
    detail: Option<String>,
    link: &str,
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    queue(c, recipient, at, |to| {
        templates::guarantee_changed(
            to,
            &templates::GuaranteeChanged {
                recipient_name: recipient.name.clone(),
                change,
                reference: reference.to_owned(),
                project_name: project_name.to_owned(),
                detail,
                link: format!("{}{link}", ctx.public_base_url),
            },
        )
    })
}

/// An issuer's signing certificate runs out soon, to the issuer.
pub fn certificate_expiring(
    c: &mut DbConnection,
    issuer: &Organization,
    certificate: &IssuerCertificate,
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    let time_left = templates::TimeLeft::between(at, certificate.not_after);
    queue(c, issuer, at, |to| {
        templates::certificate_expiring(
            to,
            &templates::CertificateExpiring {
                recipient_name: issuer.name.clone(),
                subject: certificate.subject.clone(),
                serial: certificate.serial.clone(),
                fingerprint: certificate.fingerprint_sha256.clone(),
                not_after: china_rfc3339(certificate.not_after),
                time_left,
            },
        )
    })
}

/// A guarantee in force runs out soon, to the bidder.
pub fn guarantee_expiring(
    c: &mut DbConnection,
    ctx: &Context,
    v: &GuaranteeView,
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    let time_left = templates::TimeLeft::between(at, v.guarantee.valid_until);
    queue(c, &v.enterprise, at, |to| {
        templates::guarantee_expiring(
            to,
            &templates::GuaranteeExpiring {
                recipient_name: v.enterprise.name.clone(),
                guarantee_number: v.guarantee.number.clone(),
                project_name: v.project.name.clone(),
                valid_until: china_rfc3339(v.guarantee.valid_until),
                time_left,
                link: format!(
                    "{}/api/v1/guarantees/{}",
                    ctx.public_base_url, v.guarantee.number
                ),
            },
        )
    })
}
