//! Guarantees (保函): the signed document an issuer gives a bidder, from the draft it
//! signs to release, claim or expiry. Every transition is one conditional update in one
//! transaction with its audit entry; anything the lifecycle does not allow is refused
//! naming the current state.

mod amendments;
mod expiry;
mod issuing;
mod letters;
mod lifecycle;
mod list;
mod reductions;
mod verification;

use chrono::NaiveDateTime;
use diesel::prelude::*;

pub use amendments::{
    drop_unsigned_amendment, offer_amendments, offer_extension, propose_reduction, NewReduction,
};
pub use expiry::{expire_due, send_expiry_notices, EXPIRY_NOTICE_DAYS};
pub use issuing::{draft, issue_hosted, open_code, upload_signature, Issued};
pub use letters::{get_letter, list_letters, timestamp_response};
pub use lifecycle::{accept, award, cancel, contract_signed, release, revoke, transition};
pub use list::{list, GuaranteeFilter, GuaranteeQuery, GuaranteeSort};
pub use reductions::{
    accept as accept_reduction, get as get_reduction, list as list_reductions,
    refuse as refuse_reduction, ReductionView,
};
pub use verification::{
    bonds_at_opening, verify_by_number, verify_by_number_with_document, verify_documents,
    ExpectationsInput, OpeningReport,
};

pub use crate::services::views::GuaranteeView;

use crate::db::models::Guarantee;
use crate::db::schema::{guarantees, issuer_certificates};
use crate::db::DbConnection;
use crate::domain::guarantee_number::GuaranteeNumber;
use crate::domain::lifecycle::GuaranteeState;
use crate::domain::party::Role;
use crate::domain::tender;
use crate::services::views::guarantee_view;
use crate::services::{require_role, Actor, Context, Listed, OrInternal, ServiceError, Window};

/// A guarantee by number, if the actor may see it: its bidder, its issuer and the
/// operator at any time; the project's agency and tenderee only after bid opening.
/// Everyone else, and the agency before opening, gets "not found".
pub fn load_visible(
    c: &mut DbConnection,
    actor: &Actor,
    number: &str,
    at: NaiveDateTime,
) -> Result<GuaranteeView, ServiceError> {
    let number = GuaranteeNumber::parse(number).map_err(|e| ServiceError::invalid("number", e))?;
    let g: Guarantee = guarantees::table
        .filter(guarantees::number.eq(number.as_str()))
        .select(Guarantee::as_select())
        .first(c)
        .optional()?
        .ok_or_else(|| ServiceError::NotFound("guarantee".into()))?;
    let view = guarantee_view(c, g)?;
    let visible = match actor.role {
        Role::Operator => true,
        Role::Enterprise => view.guarantee.enterprise_id == actor.organization_id,
        Role::Issuer => view.guarantee.issuer_id == actor.organization_id,
        Role::Agency => {
            view.project.agency_id == actor.organization_id
                && tender::opened(view.project.bid_opening_at, at)
        }
        Role::Tenderee => {
            view.project.tenderee_id == actor.organization_id
                && tender::opened(view.project.bid_opening_at, at)
        }
        _ => false,
    };
    if visible {
        Ok(view)
    } else {
        Err(ServiceError::NotFound("guarantee".into()))
    }
}

/// One guarantee for a party.
pub fn get(ctx: &Context, actor: &Actor, number: &str) -> Result<GuaranteeView, ServiceError> {
    let mut conn = ctx.conn()?;
    load_visible(&mut conn, actor, number, ctx.now())
}

/// The guarantees of [`list`] in the given states (any when empty), newest first, one
/// window of them with the count of all: what a home page shows.
pub fn list_page(
    ctx: &Context,
    actor: &Actor,
    states: &[GuaranteeState],
    window: Window,
) -> Result<Listed<GuaranteeView>, ServiceError> {
    list(ctx, actor, &GuaranteeFilter::in_states(states), window)
}

/// The signer's certificate followed by the trusted CA certificates that issued it,
/// as PEM, so a relying party can verify offline.
pub fn chain_pem(ctx: &Context, view: &GuaranteeView) -> Result<String, ServiceError> {
    let mut conn = ctx.conn()?;
    let der: Option<Vec<u8>> = match &view.version.signer_certificate_id {
        Some(id) => issuer_certificates::table
            .find(id)
            .select(issuer_certificates::certificate_der)
            .first(&mut conn)
            .optional()?,
        None => None,
    };
    let der = der.ok_or_else(|| ServiceError::NotFound("signer certificate".into()))?;
    let cert = openssl::x509::X509::from_der(&der).or_internal("stored certificate")?;
    let mut pem = cert.to_pem().or_internal("certificate PEM")?;
    let store = ctx.verifier.current(&mut conn)?;
    let mut current = cert;
    // Walk up through the anchors by issuer name (a short chain: a few CAs at most).
    for _ in 0..8 {
        let parent = store.anchors().iter().find(|a| {
            a.subject_name()
                .try_cmp(current.issuer_name())
                .map(|o| o.is_eq())
                .unwrap_or(false)
        });
        match parent {
            Some(p) if p.to_der().ok() != current.to_der().ok() => {
                pem.extend(p.to_pem().or_internal("CA PEM")?);
                current = p.clone();
            }
            _ => break,
        }
    }
    String::from_utf8(pem).or_internal("PEM is text")
}

/// Runs `f` on a guarantee the actor may see, in one write transaction.
pub fn with_guarantee<T>(
    ctx: &Context,
    actor: &Actor,
    number: &str,
    f: impl FnOnce(&mut DbConnection, &GuaranteeView, NaiveDateTime) -> Result<T, ServiceError>,
) -> Result<T, ServiceError> {
    let at = ctx.now();
    let mut conn = ctx.conn()?;
    ctx.write_tx(&mut conn, |c| {
        let view = load_visible(c, actor, number, at)?;
        f(c, &view, at)
    })
}

pub fn require_project_agency(actor: &Actor, view: &GuaranteeView) -> Result<(), ServiceError> {
    require_role(actor, &[Role::Agency])?;
    if view.project.agency_id != actor.organization_id {
        return Err(ServiceError::NotFound("guarantee".into()));
    }
    Ok(())
}
