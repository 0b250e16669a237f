//! Reductions (URDG 758 art. 11) once proposed: the issuer's signature over the new
//! version, the beneficiary's side accepting or refusing it, and the withdrawal of a
//! reduction still pending when a claim is filed or the guarantee ends.
//!
//! A signed reduction is kept with its reduction row, not among the guarantee's
//! versions: until the tender agency (for the tenderee) accepts it, the version in force
//! stays the earlier one, claims run against it, and the new bytes verify as not
//! registered. Accepting makes the signed version the version in force (the earlier one
//! then verifies as superseded) and writes the reduction letter; refusing leaves
//! everything as it was and records the refusal. Each step is one conditional update
//! in one transaction, with its audit entry, its webhook events and its mails.
//!
//! Proposing one lives with the other amendments (`amendments.rs`), where drafts
//! are made.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::audit::{self, AuditEvent};
use crate::db::models::{Guarantee, GuaranteeReduction, GuaranteeVersion};
use crate::db::schema::{guarantee_drafts, guarantee_reductions, guarantee_versions, guarantees};
use crate::db::DbConnection;
use crate::domain::lifecycle::{GuaranteeAction, GuaranteeState};
use crate::domain::money::Amount;
use crate::domain::reduction::{ReductionAction, ReductionState};
use crate::domain::time::china_rfc3339;
use crate::mail::templates::GuaranteeChange;
use crate::services::guarantees::{require_project_agency, with_guarantee};
use crate::services::notify;
use crate::services::organizations::required_text;
use crate::services::views::{guarantee_view_by_id, GuaranteeView};
use crate::services::webhooks::{self, EventKind};
use crate::services::{Actor, Context, ServiceError};

/// A reduction with the guarantee it belongs to.
#[derive(Debug, Clone)]
pub struct ReductionView {
    pub reduction: GuaranteeReduction,
    pub guarantee: GuaranteeView,
}

/// The states in which a reduction may still take effect.
const PENDING: [ReductionState; 2] = [ReductionState::Drafted, ReductionState::AwaitingAcceptance];

/// The version the next amendment of `g` will be: after the version in force and after
/// every version a reduction was drafted as. A refused or withdrawn reduction keeps its
/// number, so no two signed documents of a guarantee ever carry the same version.
pub(super) fn next_version(c: &mut DbConnection, g: &Guarantee) -> Result<i32, ServiceError> {
    let highest: Option<i32> = guarantee_reductions::table
        .filter(guarantee_reductions::guarantee_id.eq(&g.id))
        .select(diesel::dsl::max(guarantee_reductions::version))
        .first(c)?;
    Ok(highest.unwrap_or(0).max(g.current_version) + 1)
}

/// The reduction of `g` that may still take effect, if any.
pub(super) fn pending(
    c: &mut DbConnection,
    guarantee_id: &str,
) -> Result<Option<GuaranteeReduction>, ServiceError> {
    Ok(guarantee_reductions::table
        .filter(guarantee_reductions::guarantee_id.eq(guarantee_id))
        .filter(guarantee_reductions::status.eq_any(PENDING))
        .select(GuaranteeReduction::as_select())
        .first(c)
        .optional()?)
}

/// The reduction drafted as version `version` of a guarantee and waiting for the
/// issuer's signature, if that draft is one.
pub(super) fn drafted(
    c: &mut DbConnection,
    guarantee_id: &str,
    version: i32,
) -> Result<Option<GuaranteeReduction>, ServiceError> {
    Ok(guarantee_reductions::table
        .filter(guarantee_reductions::guarantee_id.eq(guarantee_id))
        .filter(guarantee_reductions::version.eq(version))
        .filter(guarantee_reductions::status.eq(ReductionState::Drafted))
        .select(GuaranteeReduction::as_select())
        .first(c)
        .optional()?)
}

/// The audit entry of a reduction's step.
fn audit_step(
    c: &mut DbConnection,
    actor: &Actor,
    r: &GuaranteeReduction,
    action: &str,
    (from, to): (Option<ReductionState>, ReductionState),
    number: &str,
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    audit::append(
        c,
        &AuditEvent {
            actor_user_id: Some(&actor.user_id),
            actor_organization_id: Some(&actor.organization_id),
            action,
            entity_kind: "guarantee_reduction",
            entity_id: &r.id,
            from_state: from.map(ReductionState::as_str),
            to_state: Some(to.as_str()),
            details: serde_json::json!({
                "guarantee_number": number,
                "version": r.version,
                "base_version": r.base_version,
                "amount_before_fen": r.amount_before_fen,
                "amount_fen": r.amount_fen,
            }),
        },
        at,
    )?;
    Ok(())
}

/// Records a new reduction, drafted as version `version` of `g` (its draft is made by
/// the caller in the same transaction).
pub(super) fn record_proposal(
    c: &mut DbConnection,
    actor: &Actor,
    g: &Guarantee,
    version: i32,
    amount_fen: i64,
    reason: String,
    at: NaiveDateTime,
) -> Result<GuaranteeReduction, ServiceError> {
    let r = GuaranteeReduction {
        id: crate::services::new_id(),
        guarantee_id: g.id.clone(),
        version,
        base_version: g.current_version,
        amount_before_fen: g.amount_fen,
        amount_fen,
        reason,
        status: ReductionState::Drafted,
        proposed_by: actor.user_id.clone(),
        proposed_at: at,
        document: None,
        document_sha256: None,
        signature: None,
        signer_certificate_id: None,
        signed_at: None,
        decided_by: None,
        decided_at: None,
        decision_reason: None,
    };
    // The unique index on pending reductions holds the rule against a parallel proposal.
    diesel::insert_into(guarantee_reductions::table)
        .values(&r)
        .execute(c)?;
    audit_step(
        c,
        actor,
        &r,
        "propose_reduction",
        (None, ReductionState::Drafted),
        &g.number,
        at,
    )?;
    Ok(r)
}

/// The issuer's verified and time-stamped signature over a reduction's draft, in the
/// signature's transaction: the signed version is kept with the reduction, which now
/// waits for the beneficiary's side; the guarantee's version in force does not move.
/// The draft is done with (nothing is left to sign), and the agency is told.
pub(super) fn signed(
    c: &mut DbConnection,
    ctx: &Context,
    actor: &Actor,
    g: &Guarantee,
    r: &GuaranteeReduction,
    version: &GuaranteeVersion,
    at: NaiveDateTime,
) -> Result<GuaranteeView, ServiceError> {
    // Only a guarantee in force, still at the version the reduction reduces, and under
    // no claim takes it (a claim withdraws a pending reduction anyway).
    g.status
        .transition(GuaranteeAction::Amend, g.claimed_from)?;
    if g.current_version != r.base_version {
        return Err(ServiceError::Conflict(format!(
            "guarantee {} changed since the reduction was proposed; propose it again",
            g.number
        )));
    }
    let next = r.status.transition(ReductionAction::Sign)?;
    let changed = diesel::update(
        guarantee_reductions::table
            .filter(guarantee_reductions::id.eq(&r.id))
            .filter(guarantee_reductions::status.eq(r.status)),
    )
    .set((
        guarantee_reductions::status.eq(next),
        guarantee_reductions::document.eq(&version.document),
        guarantee_reductions::document_sha256.eq(&version.document_sha256),
        guarantee_reductions::signature.eq(&version.signature),
        guarantee_reductions::signer_certificate_id.eq(&version.signer_certificate_id),
        guarantee_reductions::signed_at.eq(at),
    ))
    .execute(c)?;
    if changed != 1 {
        return Err(moved(c, &r.id, ReductionAction::Sign)?);
    }
    diesel::delete(
        guarantee_drafts::table
            .filter(guarantee_drafts::application_id.eq(&g.application_id))
            .filter(guarantee_drafts::version.eq(r.version)),
    )
    .execute(c)?;
    audit_step(
        c,
        actor,
        r,
        "sign_reduction",
        (Some(r.status), next),
        &g.number,
        at,
    )?;
    let view = guarantee_view_by_id(c, &g.id)?;
    // Only after bid opening is a reduction proposed: the agency may know of the bond.
    webhooks::emit_guarantee(
        c,
        EventKind::AmendmentToAccept,
        &view,
        &[&view.project.agency_id],
        at,
    )?;
    let agency = organization(c, &view.project.agency_id)?;
    notify::guarantee_changed(
        c,
        ctx,
        &agency,
        GuaranteeChange::ReductionToAccept,
        &g.number,
        &view.project.name,
        Some(amounts(r)),
        &format!("/guarantees/{}", g.number),
        at,
    )?;
    Ok(view)
}

fn amounts(r: &GuaranteeReduction) -> String {
    format!(
        "第 {v} 版 Version {v}: ¥{before} → ¥{after}",
        v = r.version,
        before = Amount::from_fen(r.amount_before_fen),
        after = Amount::from_fen(r.amount_fen),
    )
}

fn organization(
    c: &mut DbConnection,
    id: &str,
) -> Result<crate::db::models::Organization, ServiceError> {
    use crate::db::schema::organizations;
    Ok(organizations::table
        .find(id)
        .select(crate::db::models::Organization::as_select())
        .first(c)?)
}

/// Why a conditional update of a reduction changed nothing: the state it is in now
/// refuses the action (named), or it moved meanwhile and allows it again.
fn moved(
    c: &mut DbConnection,
    id: &str,
    action: ReductionAction,
) -> Result<ServiceError, ServiceError> {
    let now: ReductionState = guarantee_reductions::table
        .find(id)
        .select(guarantee_reductions::status)
        .first(c)?;
    Ok(match now.transition(action) {
        Err(e) => e.into(),
        Ok(_) => ServiceError::Conflict("the reduction changed meanwhile; try again".into()),
    })
}

/// A reduction of a guarantee by the version it was drafted as; "not found" when the
/// guarantee has no reduction of that version.
fn by_version(
    c: &mut DbConnection,
    g: &Guarantee,
    version: i32,
) -> Result<GuaranteeReduction, ServiceError> {
    guarantee_reductions::table
        .filter(guarantee_reductions::guarantee_id.eq(&g.id))
        .filter(guarantee_reductions::version.eq(version))
        .select(GuaranteeReduction::as_select())
        .first(c)
        .optional()?
        .ok_or_else(|| ServiceError::NotFound("amendment".into()))
}

/// Moves a reduction from `r.status` by `action` with one conditional update, setting
/// who decided, when and why; fails naming the state it is in if it moved meanwhile.
fn decide(
    c: &mut DbConnection,
    actor: &Actor,
    r: &GuaranteeReduction,
    action: ReductionAction,
    reason: Option<&str>,
    at: NaiveDateTime,
) -> Result<ReductionState, ServiceError> {
    let next = r.status.transition(action)?;
    let changed = diesel::update(
        guarantee_reductions::table
            .filter(guarantee_reductions::id.eq(&r.id))
            .filter(guarantee_reductions::status.eq(r.status)),
    )
    .set((
        guarantee_reductions::status.eq(next),
        guarantee_reductions::decided_by.eq(&actor.user_id),
        guarantee_reductions::decided_at.eq(at),
        guarantee_reductions::decision_reason.eq(reason),
    ))
    .execute(c)?;
    if changed != 1 {
        return Err(moved(c, &r.id, action)?);
    }
    Ok(next)
}

fn reload(c: &mut DbConnection, id: &str) -> Result<GuaranteeReduction, ServiceError> {
    Ok(guarantee_reductions::table
        .find(id)
        .select(GuaranteeReduction::as_select())
        .first(c)?)
}

/// The agency accepts a signed reduction for the tenderee: the signed version becomes
/// the version in force with the lower amount, and the reduction letter is written.
pub fn accept(
    ctx: &Context,
    actor: &Actor,
    number: &str,
    version: i32,
) -> Result<ReductionView, ServiceError> {
    with_guarantee(ctx, actor, number, |c, view, at| {
        require_project_agency(actor, view)?;
        let g = &view.guarantee;
        let r = by_version(c, g, version)?;
        // As read: what the conditional updates below hold against a change meanwhile.
        r.status.transition(ReductionAction::Accept)?;
        g.status
            .transition(GuaranteeAction::Amend, g.claimed_from)?;
        let (document, sha256) = match (&r.document, &r.document_sha256) {
            (Some(d), Some(h)) => (d.clone(), h.clone()),
            _ => {
                return Err(ServiceError::Internal(anyhow::anyhow!(
                    "reduction {} awaits acceptance without its signed document",
                    r.id
                )))
            }
        };
        // The guarantee's row first, then the reduction's: the order a claim takes them
        // in (its transition, then the withdrawal), so the two never wait on each other.
        // In force, at the version the reduction reduces, with no more paid than it.
        let changed = diesel::update(
            guarantees::table
                .filter(guarantees::id.eq(&g.id))
                .filter(
                    guarantees::status.eq_any([GuaranteeState::Issued, GuaranteeState::Accepted]),
                )
                .filter(guarantees::current_version.eq(r.base_version))
                .filter(guarantees::paid_fen.le(r.amount_fen)),
        )
        .set((
            guarantees::current_version.eq(r.version),
            guarantees::amount_fen.eq(r.amount_fen),
            guarantees::updated_at.eq(at),
        ))
        .execute(c)?;
        if changed != 1 {
            // Say what moved: the reduction (a claim withdrew it), or the guarantee.
            reload(c, &r.id)?
                .status
                .transition(ReductionAction::Accept)?;
            let fresh: Guarantee = guarantees::table
                .find(&g.id)
                .select(Guarantee::as_select())
                .first(c)?;
            fresh
                .status
                .transition(GuaranteeAction::Amend, fresh.claimed_from)?;
            return Err(ServiceError::Conflict(format!(
                "guarantee {} changed since the reduction was signed; it cannot take effect",
                g.number
            )));
        }
        let next = decide(c, actor, &r, ReductionAction::Accept, None, at)?;
        diesel::insert_into(guarantee_versions::table)
            .values(&GuaranteeVersion {
                id: crate::services::new_id(),
                guarantee_id: g.id.clone(),
                version: r.version,
                document,
                document_sha256: sha256.clone(),
                signature: r.signature.clone(),
                signer_certificate_id: r.signer_certificate_id.clone(),
                // It took effect now: a superseded version is told it was replaced now.
                created_at: at,
            })
            .execute(c)?;
        audit::append(
            c,
            &AuditEvent {
                actor_user_id: Some(&actor.user_id),
                actor_organization_id: Some(&actor.organization_id),
                action: "amend",
                entity_kind: "guarantee",
                entity_id: &g.id,
                from_state: Some(g.status.as_str()),
                to_state: Some(g.status.as_str()),
                details: serde_json::json!({
                    "number": g.number,
                    "version": r.version,
                    "reduction": r.id,
                    "amount_fen": r.amount_fen,
                }),
            },
            at,
        )?;
        super::letters::write_reduction_letter(c, ctx, actor, view, &r, &sha256, at)?;
        audit_step(
            c,
            actor,
            &r,
            "accept_reduction",
            (Some(r.status), next),
            &g.number,
            at,
        )?;
        let after = guarantee_view_by_id(c, &g.id)?;
        webhooks::emit_guarantee(
            c,
            EventKind::AmendmentAccepted,
            &after,
            &[&after.issuer.id],
            at,
        )?;
        for party in [&after.issuer, &after.enterprise] {
            notify::guarantee_changed(
                c,
                ctx,
                party,
                GuaranteeChange::ReductionAccepted,
                &g.number,
                &after.project.name,
                Some(amounts(&r)),
                &format!("/guarantees/{}", g.number),
                at,
            )?;
        }
        Ok(ReductionView {
            reduction: reload(c, &r.id)?,
            guarantee: after,
        })
    })
}

/// The agency refuses a signed reduction for the tenderee, with its reason: the
/// version in force stays, and the signed reduction never takes effect.
pub fn refuse(
    ctx: &Context,
    actor: &Actor,
    number: &str,
    version: i32,
    reason: &str,
) -> Result<ReductionView, ServiceError> {
    let reason = required_text("reason", reason, 500)?;
    with_guarantee(ctx, actor, number, |c, view, at| {
        require_project_agency(actor, view)?;
        let g = &view.guarantee;
        let r = by_version(c, g, version)?;
        let next = decide(c, actor, &r, ReductionAction::Refuse, Some(&reason), at)?;
        audit_step(
            c,
            actor,
            &r,
            "refuse_reduction",
            (Some(r.status), next),
            &g.number,
            at,
        )?;
        webhooks::emit_guarantee(c, EventKind::AmendmentRefused, view, &[&view.issuer.id], at)?;
        notify::guarantee_changed(
            c,
            ctx,
            &view.issuer,
            GuaranteeChange::ReductionRefused,
            &g.number,
            &view.project.name,
            Some(format!("{} · 理由 Reason: {reason}", amounts(&r))),
            &format!("/guarantees/{}", g.number),
            at,
        )?;
        Ok(ReductionView {
            reduction: reload(c, &r.id)?,
            guarantee: view.clone(),
        })
    })
}

/// Withdraws the reduction of `g` still pending, if any, in the transaction of the
/// change that ends its chance (a claim filed, the guarantee released, cancelled,
/// revoked or expired): claims run against the version in force, never against a
/// reduction the beneficiary had not accepted. An unsigned draft goes with it.
pub(super) fn withdraw_pending(
    c: &mut DbConnection,
    actor: &Actor,
    g: &Guarantee,
    why: &str,
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    let Some(r) = pending(c, &g.id)? else {
        return Ok(());
    };
    let next = decide(c, actor, &r, ReductionAction::Withdraw, Some(why), at)?;
    diesel::delete(
        guarantee_drafts::table
            .filter(guarantee_drafts::application_id.eq(&g.application_id))
            .filter(guarantee_drafts::version.eq(r.version)),
    )
    .execute(c)?;
    audit_step(
        c,
        actor,
        &r,
        "withdraw_reduction",
        (Some(r.status), next),
        &g.number,
        at,
    )
}

/// The reductions of a guarantee the actor may see (its parties, as the guarantee
/// itself), newest first.
pub fn list(
    ctx: &Context,
    actor: &Actor,
    number: &str,
) -> Result<(GuaranteeView, Vec<GuaranteeReduction>), ServiceError> {
    let mut conn = ctx.conn()?;
    let view = super::load_visible(&mut conn, actor, number, ctx.now())?;
    let rows = guarantee_reductions::table
        .filter(guarantee_reductions::guarantee_id.eq(&view.guarantee.id))
        .order(guarantee_reductions::version.desc())
        .select(GuaranteeReduction::as_select())
        .load(&mut conn)?;
    Ok((view, rows))
}

/// What the public verification says of bytes that are a reduction's signed version
/// but no version of the guarantee (pending, refused or withdrawn): why they are not in
/// force. `None` when no reduction of guarantee `guarantee_id` has these bytes.
pub(super) fn explain_unregistered(
    c: &mut DbConnection,
    guarantee_id: &str,
    number: &str,
    sha256: &str,
) -> Result<Option<String>, ServiceError> {
    let found: Option<GuaranteeReduction> = guarantee_reductions::table
        .filter(guarantee_reductions::guarantee_id.eq(guarantee_id))
        .filter(guarantee_reductions::document_sha256.eq(sha256))
        .filter(guarantee_reductions::status.ne(ReductionState::Accepted))
        .select(GuaranteeReduction::as_select())
        .first(c)
        .optional()?;
    Ok(found.map(|r| {
        let when = r.decided_at.map(china_rfc3339).unwrap_or_default();
        let what = match r.status {
            ReductionState::Refused => {
                format!("was refused by the beneficiary on {when}; it never took effect")
            }
            ReductionState::Withdrawn => {
                format!("was withdrawn on {when} before the beneficiary accepted it; it never took effect")
            }
            _ => "awaits the beneficiary's acceptance and is not in force".into(),
        };
        format!(
            "These bytes are version {} of guarantee {number}, an amendment reducing its \
             amount, which {what}. It is not a registered version of the guarantee; verify \
             the version in force for its terms.",
            r.version
        )
    }))
}

/// One reduction of a guarantee the actor may see, by the version it was drafted as.
pub fn get(
    ctx: &Context,
    actor: &Actor,
    number: &str,
    version: i32,
) -> Result<ReductionView, ServiceError> {
    let mut conn = ctx.conn()?;
    let view = super::load_visible(&mut conn, actor, number, ctx.now())?;
    let reduction = by_version(&mut conn, &view.guarantee, version)?;
    Ok(ReductionView {
        reduction,
        guarantee: view,
    })
}
