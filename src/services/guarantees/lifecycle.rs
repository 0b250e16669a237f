//! The guarantee lifecycle after issue: accept, release, cancel, revoke, award and
//! contract, each one conditional update with its audit entry.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::audit::{self, AuditEvent};
use crate::db::models::{Guarantee, Organization, Project, Section};
use crate::db::schema::{applications, guarantees, organizations, projects, sections};
use crate::db::DbConnection;
use crate::domain::lifecycle::{GuaranteeAction, GuaranteeState};
use crate::domain::party::Role;
use crate::domain::tender;
use crate::mail::templates::GuaranteeChange;
use crate::services::guarantees::{require_project_agency, with_guarantee};
use crate::services::notify;
use crate::services::organizations::required_text;
use crate::services::views::{guarantee_view_by_id, GuaranteeView};
use crate::services::{require_role, Actor, Context, ServiceError};

/// The audit entry of a guarantee's change of state.
#[allow(clippy::too_many_arguments)]
pub(super) fn guarantee_audit(
    c: &mut DbConnection,
    actor: &Actor,
    id: &str,
    action: &str,
    from: Option<GuaranteeState>,
    to: Option<GuaranteeState>,
    number: &str,
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    audit::append(
        c,
        &AuditEvent {
            actor_user_id: Some(&actor.user_id),
            actor_organization_id: Some(&actor.organization_id),
            action,
            entity_kind: "guarantee",
            entity_id: id,
            from_state: from.map(GuaranteeState::as_str),
            to_state: to.map(GuaranteeState::as_str),
            details: serde_json::json!({ "number": number }),
        },
        at,
    )?;
    Ok(())
}

/// Moves a guarantee along its lifecycle with one conditional update (on its id, its
/// state and its claimed-from state); fails naming the state if it moved meanwhile.
pub fn transition(
    c: &mut DbConnection,
    actor: &Actor,
    g: &Guarantee,
    action: GuaranteeAction,
    at: NaiveDateTime,
) -> Result<GuaranteeState, ServiceError> {
    let current = g.status;
    let next = current.transition(action, g.claimed_from)?;
    let new_claimed_from = match action {
        GuaranteeAction::Claim => current.pre_claim(),
        _ if next == GuaranteeState::Claimed => g.claimed_from,
        _ => None,
    };
    let changed = diesel::update(
        guarantees::table
            .filter(guarantees::id.eq(&g.id))
            .filter(guarantees::status.eq(current)),
    )
    .set((
        guarantees::status.eq(next),
        guarantees::claimed_from.eq(new_claimed_from),
        guarantees::updated_at.eq(at),
    ))
    .execute(c)?;
    if changed != 1 {
        let fresh: Guarantee = guarantees::table
            .find(&g.id)
            .select(Guarantee::as_select())
            .first(c)?;
        return Err(match fresh.status.transition(action, fresh.claimed_from) {
            Err(e) => e.into(),
            Ok(_) => ServiceError::Conflict("the guarantee changed meanwhile; try again".into()),
        });
    }
    if !matches!(next, GuaranteeState::Issued | GuaranteeState::Accepted) {
        // Claimed or ended: a reduction the beneficiary had not accepted never will be
        // (a claim runs against the version in force).
        super::reductions::withdraw_pending(c, actor, g, action.as_str(), at)?;
    }
    if next.is_terminal() {
        // The guarantee ended: its application no longer holds the enterprise's place
        // for the section, so it may apply again.
        diesel::update(applications::table.find(&g.application_id))
            .set(applications::live.eq(false))
            .execute(c)?;
    }
    guarantee_audit(
        c,
        actor,
        &g.id,
        action.as_str(),
        Some(current),
        Some(next),
        &g.number,
        at,
    )?;
    Ok(next)
}

/// The agency accepts the bond in place of a cash bid bond (after opening).
pub fn accept(ctx: &Context, actor: &Actor, number: &str) -> Result<GuaranteeView, ServiceError> {
    with_guarantee(ctx, actor, number, |c, view, at| {
        require_project_agency(actor, view)?;
        // Only a bond that passes the bid-opening check replaces a cash bid bond.
        let report = super::verification::opening_check(ctx, c, view)?;
        if report.indication != crate::pki::Indication::Passed {
            let why = report
                .checks
                .iter()
                .find(|k| k.sub_indication.is_some() && k.sub_indication == report.sub_indication)
                .map(|k| format!(": {}", k.explanation))
                .unwrap_or_default();
            return Err(ServiceError::Conflict(format!(
                "guarantee {} does not pass the bid-opening check ({}{why}); it cannot be accepted",
                view.guarantee.number,
                report.summary()
            )));
        }
        transition(c, actor, &view.guarantee, GuaranteeAction::Accept, at)?;
        let accepted = guarantee_view_by_id(c, &view.guarantee.id)?;
        crate::services::webhooks::emit_guarantee(
            c,
            crate::services::webhooks::EventKind::GuaranteeAccepted,
            &accepted,
            &[&accepted.enterprise.id, &accepted.issuer.id],
            at,
        )?;
        Ok(accepted)
    })
}

/// Why a guarantee is released, as its release letter says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReleaseGrounds {
    /// The agency released it.
    Released,
    /// Another bidder won the section.
    AwardLost,
    /// The winner signed the contract.
    ContractSigned,
}

impl ReleaseGrounds {
    fn words(self) -> &'static str {
        match self {
            ReleaseGrounds::Released => "招标代理解除保函 Released by the tender agency",
            ReleaseGrounds::AwardLost => "未中标 The section was awarded to another bidder",
            ReleaseGrounds::ContractSigned => "中标人已签订合同 The winner signed the contract",
        }
    }
}

/// Releases one guarantee, writes its release letter and tells its bidder.
fn release_one(
    c: &mut DbConnection,
    ctx: &Context,
    actor: &Actor,
    g: &Guarantee,
    grounds: ReleaseGrounds,
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    // The letter names the version in force as it was released. It is written after
    // the conditional update that makes this request the one that releases: a release
    // racing it waits on the row and is refused naming the state, rather than meeting
    // the one-letter-per-guarantee index.
    let before = guarantee_view_by_id(c, &g.id)?;
    transition(c, actor, g, GuaranteeAction::Release, at)?;
    super::letters::write_release_letter(c, ctx, actor, &before, grounds.words(), at)?;
    let view = guarantee_view_by_id(c, &g.id)?;
    crate::services::webhooks::emit_guarantee(
        c,
        crate::services::webhooks::EventKind::GuaranteeReleased,
        &view,
        &[&view.enterprise.id, &view.issuer.id],
        at,
    )?;
    let agency: Organization = organizations::table
        .find(&view.project.agency_id)
        .select(Organization::as_select())
        .first(c)?;
    notify::guarantee_released(c, ctx, &view, &agency.name, at)
}

/// The agency releases a bond (bid lost, or contract signed).
pub fn release(ctx: &Context, actor: &Actor, number: &str) -> Result<GuaranteeView, ServiceError> {
    with_guarantee(ctx, actor, number, |c, view, at| {
        require_project_agency(actor, view)?;
        release_one(c, ctx, actor, &view.guarantee, ReleaseGrounds::Released, at)?;
        guarantee_view_by_id(c, &view.guarantee.id)
    })
}

/// 退保: the bidder withdraws its bid before the deadline, or the agency cancels after a
/// failed tender (流标).
pub fn cancel(ctx: &Context, actor: &Actor, number: &str) -> Result<GuaranteeView, ServiceError> {
    with_guarantee(ctx, actor, number, |c, view, at| {
        match actor.role {
            Role::Enterprise if at < view.project.bid_deadline => {}
            Role::Enterprise => {
                return Err(ServiceError::Forbidden(
                    "after the bid deadline only the agency can cancel (a failed tender)".into(),
                ))
            }
            Role::Agency => require_project_agency(actor, view)?,
            _ => {
                return Err(ServiceError::Forbidden(
                    "only the bidder or the agency can cancel".into(),
                ))
            }
        }
        transition(c, actor, &view.guarantee, GuaranteeAction::Cancel, at)?;
        guarantee_view_by_id(c, &view.guarantee.id)
    })
}

/// The issuer revokes a guarantee issued in error or obtained by fraud, before the
/// agency accepted it.
pub fn revoke(
    ctx: &Context,
    actor: &Actor,
    number: &str,
    reason: &str,
) -> Result<GuaranteeView, ServiceError> {
    let reason = required_text("reason", reason, 500)?;
    with_guarantee(ctx, actor, number, |c, view, at| {
        require_role(actor, &[Role::Issuer])?;
        transition(c, actor, &view.guarantee, GuaranteeAction::Revoke, at)?;
        audit::append(
            c,
            &AuditEvent {
                actor_user_id: Some(&actor.user_id),
                actor_organization_id: Some(&actor.organization_id),
                action: "revoke_reason",
                entity_kind: "guarantee",
                entity_id: &view.guarantee.id,
                details: serde_json::json!({ "reason": reason }),
                ..Default::default()
            },
            at,
        )?;
        let revoked = guarantee_view_by_id(c, &view.guarantee.id)?;
        notify::guarantee_changed(
            c,
            ctx,
            &revoked.enterprise,
            GuaranteeChange::Revoked,
            &revoked.guarantee.number,
            &revoked.project.name,
            Some(format!("撤销原因 Reason: {reason}")),
            &format!("/api/v1/guarantees/{}", revoked.guarantee.number),
            at,
        )?;
        Ok(revoked)
    })
}

/// Loads a section of one of the agency's projects.
fn agency_section(
    c: &mut DbConnection,
    actor: &Actor,
    project_id: &str,
    section_id: &str,
) -> Result<(Project, Section), ServiceError> {
    require_role(actor, &[Role::Agency])?;
    sections::table
        .inner_join(projects::table)
        .filter(sections::id.eq(section_id))
        .filter(projects::id.eq(project_id))
        .filter(projects::agency_id.eq(&actor.organization_id))
        .select((Section::as_select(), Project::as_select()))
        .first::<(Section, Project)>(c)
        .optional()?
        .map(|(s, p)| (p, s))
        .ok_or_else(|| ServiceError::NotFound("section".into()))
}

fn live_guarantees_of_section(
    c: &mut DbConnection,
    section_id: &str,
) -> QueryResult<Vec<Guarantee>> {
    guarantees::table
        .filter(guarantees::section_id.eq(section_id))
        .filter(guarantees::status.eq_any([GuaranteeState::Issued, GuaranteeState::Accepted]))
        .select(Guarantee::as_select())
        .load(c)
}

/// Awards a section to a bidder: every other bidder's bond is released.
pub fn award(
    ctx: &Context,
    actor: &Actor,
    project_id: &str,
    section_id: &str,
    winner_enterprise_id: &str,
) -> Result<Vec<String>, ServiceError> {
    let at = ctx.now();
    let mut conn = ctx.conn()?;
    ctx.write_tx(&mut conn, |c| {
        let (project, section) = agency_section(c, actor, project_id, section_id)?;
        if !tender::opened(project.bid_opening_at, at) {
            return Err(ServiceError::Forbidden(
                "a section can be awarded only after bid opening".into(),
            ));
        }
        let changed = diesel::update(
            sections::table
                .filter(sections::id.eq(&section.id))
                .filter(sections::awarded_enterprise_id.is_null()),
        )
        .set((
            sections::awarded_enterprise_id.eq(winner_enterprise_id),
            sections::awarded_at.eq(at),
        ))
        .execute(c)?;
        if changed != 1 {
            return Err(ServiceError::Conflict(format!(
                "section {} is already awarded",
                section.code
            )));
        }
        let bonds = live_guarantees_of_section(c, &section.id)?;
        if !bonds
            .iter()
            .any(|g| g.enterprise_id == winner_enterprise_id)
        {
            return Err(ServiceError::invalid(
                "winner_enterprise_id",
                "this enterprise holds no bond in force for the section",
            ));
        }
        let mut released = Vec::new();
        for g in bonds
            .iter()
            .filter(|g| g.enterprise_id != winner_enterprise_id)
        {
            release_one(c, ctx, actor, g, ReleaseGrounds::AwardLost, at)?;
            released.push(g.number.clone());
        }
        audit::append(
            c,
            &AuditEvent {
                actor_user_id: Some(&actor.user_id),
                actor_organization_id: Some(&actor.organization_id),
                action: "award",
                entity_kind: "section",
                entity_id: &section.id,
                details: serde_json::json!({ "winner": winner_enterprise_id, "released": released }),
                ..Default::default()
            },
            at,
        )?;
        Ok(released)
    })
}

/// The contract is signed: the winner's bond is released too.
pub fn contract_signed(
    ctx: &Context,
    actor: &Actor,
    project_id: &str,
    section_id: &str,
) -> Result<Vec<String>, ServiceError> {
    let at = ctx.now();
    let mut conn = ctx.conn()?;
    ctx.write_tx(&mut conn, |c| {
        let (_, section) = agency_section(c, actor, project_id, section_id)?;
        let winner = section.awarded_enterprise_id.clone().ok_or_else(|| {
            ServiceError::Conflict(format!("section {} is not awarded yet", section.code))
        })?;
        let changed = diesel::update(
            sections::table
                .filter(sections::id.eq(&section.id))
                .filter(sections::contract_signed_at.is_null()),
        )
        .set(sections::contract_signed_at.eq(at))
        .execute(c)?;
        if changed != 1 {
            return Err(ServiceError::Conflict(
                "the contract is already recorded as signed".into(),
            ));
        }
        // The winner's bond under claim cannot be released: the contract waits for the
        // claim's decision (a rejected claim returns the bond to its state, and then
        // the contract releases it). A claim filed meanwhile makes the release's
        // conditional update fail, and the whole contract with it.
        let winners: Vec<Guarantee> = guarantees::table
            .filter(guarantees::section_id.eq(&section.id))
            .filter(guarantees::enterprise_id.eq(&winner))
            .filter(guarantees::status.eq_any([
                GuaranteeState::Issued,
                GuaranteeState::Accepted,
                GuaranteeState::Claimed,
            ]))
            .select(Guarantee::as_select())
            .load(c)?;
        if let Some(claimed) = winners.iter().find(|g| g.status == GuaranteeState::Claimed) {
            return Err(ServiceError::Conflict(format!(
                "the winner's bond {} is under claim; the contract can be recorded once the \
                 claim is decided",
                claimed.number
            )));
        }
        let mut released = Vec::new();
        for g in &winners {
            release_one(c, ctx, actor, g, ReleaseGrounds::ContractSigned, at)?;
            released.push(g.number.clone());
        }
        audit::append(
            c,
            &AuditEvent {
                actor_user_id: Some(&actor.user_id),
                actor_organization_id: Some(&actor.organization_id),
                action: "contract_signed",
                entity_kind: "section",
                entity_id: &section.id,
                details: serde_json::json!({ "winner": winner, "released": released }),
                ..Default::default()
            },
            at,
        )?;
        Ok(released)
    })
}
