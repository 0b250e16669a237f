//! The mails use cases cause, queued in the outbox inside the same transaction as the
//! change (so a rolled-back change sends nothing, and a committed one is never lost).
//! An organization without a mail address simply gets none.

use chrono::NaiveDateTime;

use super::views::GuaranteeView;
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

/// How many applications one digest lists at most; the issuer's queue has them all.
const DIGEST_LINES: i64 = 50;

/// The issuer's digest of new applications, written anew after an application arrives
/// or is withdrawn: one mail lists every application still waiting that arrived since
/// the digest was started, and goes `ctx.limits.mail_digest` after that. Applying and
/// withdrawing in a loop therefore mails the issuer nothing, and a burst of applications
/// one mail. A digest the worker has claimed is closed; the next application starts
/// another.
pub fn applications_waiting(
    c: &mut DbConnection,
    ctx: &Context,
    issuer: &Organization,
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    use crate::db::models::{Application, Project, Section};
    use crate::db::schema::{applications, organizations, projects, sections};
    use crate::domain::lifecycle::ApplicationState;
    use diesel::prelude::*;

    let Some(address) = issuer.email.as_deref() else {
        return Ok(());
    };
    // One writer of an issuer's digest at a time (a no-op update locks the issuer's
    // row), so that each writer reads the applications the one before it committed.
    diesel::update(organizations::table.find(&issuer.id))
        .set(organizations::name.eq(organizations::name))
        .execute(c)?;
    let key = format!("applications:{}", issuer.id);
    let open = outbox::open_digest(c, &key)?;
    let since = open.as_ref().map_or(at, |m| m.created_at);
    let waiting: Vec<(Application, Section, Project)> = applications::table
        .inner_join(sections::table.inner_join(projects::table))
        .filter(applications::issuer_id.eq(&issuer.id))
        .filter(applications::status.eq(ApplicationState::Submitted))
        .filter(applications::created_at.ge(since))
        .order((applications::created_at.asc(), applications::id.asc()))
        .limit(DIGEST_LINES)
        .select((
            Application::as_select(),
            Section::as_select(),
            Project::as_select(),
        ))
        .load(c)?;
    if waiting.is_empty() {
        outbox::drop_digest(c, &key)?;
        return Ok(());
    }
    let enterprise_ids: Vec<&str> = waiting
        .iter()
        .map(|(a, _, _)| a.enterprise_id.as_str())
        .collect();
    let names: std::collections::HashMap<String, String> = organizations::table
        .filter(organizations::id.eq_any(&enterprise_ids))
        .select((organizations::id, organizations::name))
        .load::<(String, String)>(c)?
        .into_iter()
        .collect();
    let applications = waiting
        .iter()
        .map(|(a, section, project)| templates::WaitingApplication {
            application_ref: a.id.clone(),
            enterprise_name: names.get(&a.enterprise_id).cloned().unwrap_or_default(),
            project_name: project.name.clone(),
            section_name: section.name.clone(),
            bond_amount: money(a.amount_fen),
            bid_deadline: china_rfc3339(project.bid_deadline),
            link: format!("{}/api/v1/applications/{}", ctx.public_base_url, a.id),
        })
        .collect();
    let mail = templates::applications_waiting(
        address,
        &templates::ApplicationsWaiting {
            recipient_name: issuer.name.clone(),
            applications,
        },
    )
    .or_internal("mail template")?;
    outbox::put_digest(c, &key, mail, since + ctx.limits.mail_digest, at)?;
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

/// A credit subject's level moved, to every address the archive knows for it (see
/// `services::credit`); a subject nobody can be mailed at gets none.
pub fn credit_level_changed(
    c: &mut DbConnection,
    ctx: &Context,
    subject: &crate::db::models::CreditSubjectRow,
    from: crate::domain::catalogue::CreditLevel,
    reason: Option<String>,
    recipients: &[String],
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    let m = templates::CreditLevelChanged {
        recipient_name: subject.name.clone(),
        old_level: from.as_str().to_owned(),
        new_level: subject.level.as_str().to_owned(),
        score: subject.score.to_string(),
        reason,
        link: format!("{}/api/v1/credit/me", ctx.public_base_url),
    };
    for address in recipients {
        let mail = templates::credit_level_changed(address, &m).or_internal("mail template")?;
        outbox::enqueue(c, mail, at)?;
    }
    Ok(())
}
