//! Amendments after a postponement (延标): every bond in force is offered a new version
//! with the longer validity, for its issuer to sign.

use super::issuing::make_draft;
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
        make_draft(
            c,
            ctx,
            &view,
            g.current_version + 1,
            Some((&g, valid_until)),
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
    make_draft(c, ctx, &view, g.current_version + 1, Some((g, until)), at)?;
    let to_sign = guarantee_view_by_id(c, &g.id)?;
    crate::services::webhooks::emit_guarantee(
        c,
        crate::services::webhooks::EventKind::AmendmentToSign,
        &to_sign,
        &[&to_sign.issuer.id],
        at,
    )
}
