//! Amendments: after a postponement (延标) every bond in force is offered a new version
//! with the longer validity, for its issuer to sign; an extend-or-pay demand met by an
//! extension drafts one too; and an issuer proposes a reduction of the amount (URDG 758
//! art. 11), drafted here, signed like the others, in force only once the beneficiary's
//! side accepts it ([`super::reductions`]).

use super::issuing::{make_draft, Amendment};
use super::reductions::{self, ReductionView};
use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::models::{Application, Guarantee, Organization, Project};
use crate::db::schema::{guarantee_drafts, guarantees, organizations, sections};
use crate::db::DbConnection;
use crate::domain::lifecycle::{ApplicationState, GuaranteeState};
use crate::domain::party::Role;
use crate::domain::tender;
use crate::domain::time::china_rfc3339;
use crate::mail::templates::GuaranteeChange;
use crate::services::applications;
use crate::services::notify;
use crate::services::views::guarantee_view_by_id;
use crate::services::{Actor, Context, ServiceError};

/// After a project's deadline moved (延标), every bond on it must cover the new bid
/// validity period: unsigned drafts are dropped (remade on demand with the new times),
/// and each guarantee in force gets an amendment draft for its issuer to sign.
/// Returns the numbers of the guarantees awaiting an amendment.
pub fn offer_amendments(
    c: &mut DbConnection,
    ctx: &Context,
    project: &Project,
    at: NaiveDateTime,
) -> Result<Vec<String>, ServiceError> {
    use crate::db::schema::applications as rows;
    let tender::RequiredValidity {
        from: valid_from,
        until: valid_until,
    } = tender::required_validity(project.bid_deadline, project.bid_validity_days);
    let section_ids: Vec<String> = sections::table
        .filter(sections::project_id.eq(&project.id))
        .select(sections::id)
        .load(c)?;
    // Applications not yet issued simply take the new validity.
    let open_states = [
        ApplicationState::Submitted,
        ApplicationState::Approved,
        ApplicationState::Paid,
    ];
    let open: Vec<String> = rows::table
        .filter(rows::section_id.eq_any(&section_ids))
        .filter(rows::status.eq_any(open_states))
        .select(rows::id)
        .load(c)?;
    diesel::update(rows::table.filter(rows::id.eq_any(&open)))
        .set((
            rows::valid_from.eq(valid_from),
            rows::valid_until.eq(valid_until),
            rows::updated_at.eq(at),
        ))
        .execute(c)?;
    diesel::delete(guarantee_drafts::table.filter(guarantee_drafts::application_id.eq_any(&open)))
        .execute(c)?;
    // Issued applications keep the validity that is signed until their issuer signs the
    // amendment (their views show it pending meanwhile).

    let live: Vec<Guarantee> = guarantees::table
        .filter(guarantees::section_id.eq_any(&section_ids))
        .filter(guarantees::status.eq_any([GuaranteeState::Issued, GuaranteeState::Accepted]))
        .select(Guarantee::as_select())
        .load(c)?;
    let deadline = china_rfc3339(project.bid_deadline);
    let until = china_rfc3339(valid_until);
    let mut offered = Vec::with_capacity(live.len());
    for g in live {
        if g.valid_until >= valid_until {
            continue;
        }
        // A pending amendment from an earlier postponement is replaced by this one.
        diesel::delete(
            guarantee_drafts::table
                .filter(guarantee_drafts::application_id.eq(&g.application_id))
                .filter(guarantee_drafts::version.gt(g.current_version)),
        )
        .execute(c)?;
        let system = Actor {
            user_id: "system".into(),
            organization_id: g.issuer_id.clone(),
            organization_kind: crate::domain::party::OrgKind::Issuer,
            role: Role::Issuer,
        };
        let view = applications::load_visible(c, &system, &g.application_id)?;
        let version = reductions::next_version(c, &g)?;
        make_draft(
            c,
            ctx,
            &view,
            version,
            Some(Amendment::extending(&g, valid_until)),
            at,
        )?;
        let to_sign = guarantee_view_by_id(c, &g.id)?;
        let link = format!("/api/v1/guarantees/{}", g.number);
        crate::services::webhooks::emit_guarantee(
            c,
            crate::services::webhooks::EventKind::AmendmentToSign,
            &to_sign,
            &[&to_sign.issuer.id],
            at,
        )?;
        notify::guarantee_changed(
            c,
            ctx,
            &to_sign.issuer,
            GuaranteeChange::AmendmentToSign,
            &g.number,
            &project.name,
            Some(format!("新有效期至 New validity until: {until}")),
            &link,
            at,
        )?;
        notify::guarantee_changed(
            c,
            ctx,
            &to_sign.enterprise,
            GuaranteeChange::Postponed,
            &g.number,
            &project.name,
            Some(format!("新截止时间 New bid deadline: {deadline}")),
            &link,
            at,
        )?;
        offered.push(g.number.clone());
    }
    // Bidders whose application is not issued yet learn of the new deadline too.
    let waiting: Vec<Application> = rows::table
        .filter(rows::id.eq_any(&open))
        .select(Application::as_select())
        .load(c)?;
    for application in waiting {
        let enterprise: Organization = organizations::table
            .find(&application.enterprise_id)
            .select(Organization::as_select())
            .first(c)?;
        notify::guarantee_changed(
            c,
            ctx,
            &enterprise,
            GuaranteeChange::Postponed,
            &application.id,
            &project.name,
            Some(format!("新截止时间 New bid deadline: {deadline}")),
            &format!("/api/v1/applications/{}", application.id),
            at,
        )?;
    }
    Ok(offered)
}

/// Drops an amendment drafted and not signed for `g` (an extension offered for a claim
/// that was then paid or rejected): nothing can sign it any more.
pub fn drop_unsigned_amendment(c: &mut DbConnection, g: &Guarantee) -> Result<(), ServiceError> {
    diesel::delete(
        guarantee_drafts::table
            .filter(guarantee_drafts::application_id.eq(&g.application_id))
            .filter(guarantee_drafts::version.gt(g.current_version)),
    )
    .execute(c)?;
    Ok(())
}

/// Drafts the amendment that extends `g` to `until`, for its issuer (`actor`) to sign
/// in answer to an extend-or-pay demand; any earlier unsigned amendment is replaced.
pub fn offer_extension(
    c: &mut DbConnection,
    ctx: &Context,
    actor: &Actor,
    g: &Guarantee,
    until: NaiveDateTime,
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    drop_unsigned_amendment(c, g)?;
    let view = applications::load_visible(c, actor, &g.application_id)?;
    let version = reductions::next_version(c, g)?;
    make_draft(
        c,
        ctx,
        &view,
        version,
        Some(Amendment::extending(g, until)),
        at,
    )?;
    let to_sign = guarantee_view_by_id(c, &g.id)?;
    crate::services::webhooks::emit_guarantee(
        c,
        crate::services::webhooks::EventKind::AmendmentToSign,
        &to_sign,
        &[&to_sign.issuer.id],
        at,
    )
}

/// A reduction as the issuer proposes it.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReduction {
    /// The new amount, decimal yuan: below the current amount, not below what has been
    /// paid under the guarantee.
    #[schema(pattern = r"^[0-9]+(\.[0-9]{1,2})?$")]
    pub amount: String,
    /// Why, for the beneficiary (e.g. the section's bond was lowered).
    pub reason: String,
}

/// The issuer proposes to reduce the amount of a guarantee in force (URDG 758 art. 11):
/// a new version with the new amount is drafted for it to sign (hosted or uploaded, as
/// any amendment). Unlike a postponement's or an extension's, a reduction is against
/// the beneficiary's interest: once signed it waits for the tender agency to accept it
/// for the tenderee, and only then is it the version in force.
///
/// Refused with 409 while a claim is open or the guarantee has ended (naming its
/// state), before bid opening (the beneficiary's side cannot see the bond yet, so could
/// not decide), and while another amendment waits; an amount not strictly below the
/// current one, or below what was paid, is a 422 on `amount`.
pub fn propose_reduction(
    ctx: &Context,
    actor: &Actor,
    number: &str,
    input: NewReduction,
) -> Result<ReductionView, ServiceError> {
    use crate::domain::lifecycle::GuaranteeAction;
    use crate::domain::money::Amount;
    use crate::domain::reduction::check_reduced_amount;
    let amount = Amount::parse(&input.amount).map_err(|e| ServiceError::invalid("amount", e))?;
    let reason = crate::services::organizations::required_text("reason", &input.reason, 500)?;
    super::with_guarantee(ctx, actor, number, |c, view, at| {
        crate::services::require_role(actor, &[Role::Issuer])?;
        let g = &view.guarantee;
        g.status
            .transition(GuaranteeAction::Amend, g.claimed_from)?;
        // Hold the guarantee's row (a no-op update, still in force) for the transaction:
        // a claim filed at the same time either comes first, and this sees it, or waits
        // and then withdraws what this drafts.
        let held = diesel::update(
            guarantees::table
                .filter(guarantees::id.eq(&g.id))
                .filter(guarantees::status.eq(g.status)),
        )
        .set(guarantees::status.eq(g.status))
        .execute(c)?;
        if held != 1 {
            return Err(ServiceError::Conflict(format!(
                "guarantee {} changed meanwhile; reload it and try again",
                g.number
            )));
        }
        if !tender::opened(view.project.bid_opening_at, at) {
            return Err(ServiceError::Conflict(format!(
                "a reduction takes effect only when the beneficiary's side accepts it, and \
                 the agency sees bonds only after bid opening at {}: propose it after that",
                china_rfc3339(view.project.bid_opening_at)
            )));
        }
        check_reduced_amount(
            Amount::from_fen(g.amount_fen),
            Amount::from_fen(g.paid_fen),
            amount,
        )
        .map_err(|e| ServiceError::invalid("amount", e))?;
        if let Some(pending) = reductions::pending(c, &g.id)? {
            return Err(ServiceError::Conflict(format!(
                "reduction version {} of guarantee {} is {}; it must be decided first",
                pending.version,
                g.number,
                pending.status.as_str().replace('_', " ")
            )));
        }
        if let Some(waiting) = &view.pending_amendment {
            return Err(ServiceError::Conflict(format!(
                "amendment version {} of guarantee {} waits for its signature; sign it first",
                waiting.version, g.number
            )));
        }
        let version = reductions::next_version(c, g)?;
        let application = applications::load_visible(c, actor, &g.application_id)?;
        let term = format!(
            "Amendment version {version}: the amount is reduced from CNY {before} to CNY \
             {after} (URDG 758 art. 11). It takes effect only when the beneficiary accepts \
             it at the exchange; until then version {current} stays in force. Reason: \
             {reason}",
            before = Amount::from_fen(g.amount_fen),
            after = amount,
            current = g.current_version,
        );
        make_draft(
            c,
            ctx,
            &application,
            version,
            Some(Amendment {
                guarantee: g,
                valid_until: g.valid_until,
                amount_fen: amount.fen(),
                terms: vec![term],
            }),
            at,
        )?;
        let reduction =
            reductions::record_proposal(c, actor, g, version, amount.fen(), reason.clone(), at)?;
        Ok(ReductionView {
            reduction,
            guarantee: guarantee_view_by_id(c, &g.id)?,
        })
    })
}
