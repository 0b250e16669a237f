//! Claims (索赔) under URDG 758: the agency demands payment for the tenderee, the issuer
//! pays or rejects within the decision period. A paid claim is a negative record in the
//! bidder's credit archive, written in the claim's transaction.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::any_of::any_of;
use crate::db::audit::{self, AuditEvent};
use crate::db::models::{Claim, Guarantee, Organization};
use crate::db::schema::{claims, guarantees, organizations, projects, sections};
use crate::db::DbConnection;
use crate::domain::claim::{self, ClaimReason};
use crate::domain::lifecycle::{ClaimState, GuaranteeAction};
use crate::domain::money::Amount;
use crate::domain::party::Role;
use crate::services::guarantees::{require_project_agency, transition, with_guarantee};
use crate::services::listing::{
    parse_each, prefix_pattern, DayRange, Params, Problems, Sort, SortKey,
};
use crate::services::notify;
use crate::services::organizations::{required_multi_line_text, required_text};
use crate::services::views::{guarantee_view_by_id, GuaranteeView};
use crate::services::{new_id, require_role, Actor, Context, Listed, ServiceError, Window};

/// A demand as the agency files it for the tenderee.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClaim {
    #[schema(value_type = crate::domain::claim::ClaimReason)]
    pub reason_code: String,
    pub statement: String,
    /// Decimal yuan; at most the amount outstanding (a part of it is a partial demand:
    /// once paid, the guarantee stays in force for the rest).
    #[schema(pattern = r"^[0-9]+(\.[0-9]{1,2})?$")]
    pub amount: String,
    /// Makes it an extend-or-pay demand (URDG 758 art. 23): the expiry (RFC 3339 with
    /// an offset) the beneficiary accepts instead of payment, later than the current one
    /// and at most a year after it. The issuer then pays, rejects, or extends by a
    /// signed amendment, which withdraws the demand.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub extend_to: Option<String>,
}

/// A claim with its guarantee.
#[derive(Debug, Clone)]
pub struct ClaimView {
    pub claim: Claim,
    pub guarantee: GuaranteeView,
    /// Past the decision deadline and still undecided.
    pub overdue: bool,
}

fn claim_view(
    c: &mut DbConnection,
    claim: Claim,
    at: NaiveDateTime,
) -> Result<ClaimView, ServiceError> {
    let guarantee = guarantee_view_by_id(c, &claim.guarantee_id)?;
    let overdue = claim.status == ClaimState::Filed && at > claim.decide_by;
    Ok(ClaimView {
        claim,
        guarantee,
        overdue,
    })
}

/// One claim, if the actor is party to it as [`list`] reckons: the project's agency,
/// the issuer, the bidder, the operator. Anyone else gets "not found".
pub fn get(ctx: &Context, actor: &Actor, id: &str) -> Result<ClaimView, ServiceError> {
    let mut conn = ctx.conn()?;
    let claim: Claim = claims::table
        .find(id)
        .select(Claim::as_select())
        .first(&mut conn)
        .optional()?
        .ok_or_else(|| ServiceError::NotFound("claim".into()))?;
    let view = claim_view(&mut conn, claim, ctx.now())?;
    let (g, org) = (&view.guarantee, actor.organization_id.as_str());
    let party = match actor.role {
        Role::Operator => true,
        Role::Agency => g.project.agency_id == org,
        Role::Issuer => g.guarantee.issuer_id == org,
        Role::Enterprise => g.guarantee.enterprise_id == org,
        _ => false,
    };
    if party {
        Ok(view)
    } else {
        Err(ServiceError::NotFound("claim".into()))
    }
}

/// The agency files a demand on the tenderee's behalf, within validity and up to the
/// amount outstanding.
pub fn file_claim(
    ctx: &Context,
    actor: &Actor,
    number: &str,
    input: NewClaim,
) -> Result<ClaimView, ServiceError> {
    let reason: ClaimReason = input.reason_code.parse().map_err(|_| {
        let known: Vec<&str> = ClaimReason::ALL.iter().map(|r| r.as_str()).collect();
        ServiceError::invalid(
            "reason_code",
            format!("must be one of {}", known.join(", ")),
        )
    })?;
    let statement = required_multi_line_text("statement", &input.statement, 4000)?;
    let amount = Amount::parse(&input.amount).map_err(|e| ServiceError::invalid("amount", e))?;
    if amount.fen() <= 0 {
        return Err(ServiceError::invalid("amount", "must be more than zero"));
    }
    let extend_to = input
        .extend_to
        .as_deref()
        .map(|t| super::projects::parse_time("extend_to", t))
        .transpose()?;
    with_guarantee(ctx, actor, number, |c, view, at| {
        require_project_agency(actor, view)?;
        if at > view.guarantee.valid_until || at < view.guarantee.valid_from {
            return Err(ServiceError::invalid(
                "number",
                "a demand must be made within the guarantee's validity",
            ));
        }
        // A guarantee that takes no claim says so before any amount is weighed.
        view.guarantee
            .status
            .transition(GuaranteeAction::Claim, view.guarantee.claimed_from)?;
        let outstanding = view.guarantee.amount_fen - view.guarantee.paid_fen;
        if let Some(until) = extend_to {
            let current = view.guarantee.valid_until;
            if until <= current || until > current + chrono::Duration::days(366) {
                return Err(ServiceError::invalid(
                    "extend_to",
                    format!(
                        "must be after the current expiry, {}, and at most a year after it",
                        crate::domain::time::china_rfc3339(current)
                    ),
                ));
            }
        }
        if amount.fen() > outstanding {
            return Err(ServiceError::invalid(
                "amount",
                format!(
                    "exceeds the amount outstanding, {}",
                    Amount::from_fen(outstanding)
                ),
            ));
        }
        transition(c, actor, &view.guarantee, GuaranteeAction::Claim, at)?;
        // The guarantee's row is held now: weigh the demand again against the amount as
        // it stands, which a reduction accepted meanwhile may have lowered.
        let (amount_fen, paid_fen): (i64, i64) = guarantees::table
            .find(&view.guarantee.id)
            .select((guarantees::amount_fen, guarantees::paid_fen))
            .first(c)?;
        let outstanding = amount_fen - paid_fen;
        if amount.fen() > outstanding {
            return Err(ServiceError::invalid(
                "amount",
                format!(
                    "exceeds the amount outstanding, {}",
                    Amount::from_fen(outstanding)
                ),
            ));
        }
        let claim = Claim {
            id: new_id(),
            guarantee_id: view.guarantee.id.clone(),
            reason_code: reason,
            statement: statement.clone(),
            amount_fen: amount.fen(),
            status: ClaimState::Filed,
            filed_by: actor.user_id.clone(),
            filed_at: at,
            decide_by: claim::decide_by(&ctx.calendar, at),
            decided_by: None,
            decided_at: None,
            decision_reason: None,
            paid_fen: None,
            extend_to,
        };
        diesel::insert_into(claims::table)
            .values(&claim)
            .execute(c)?;
        // The claim's own entry, after the guarantee's transition: the last thing the
        // transaction audited is what a retry whose answer was lost is told it made.
        audit::append(
            c,
            &AuditEvent {
                actor_user_id: Some(&actor.user_id),
                actor_organization_id: Some(&actor.organization_id),
                action: "file_claim",
                entity_kind: "claim",
                entity_id: &claim.id,
                to_state: Some(ClaimState::Filed.as_str()),
                details: serde_json::json!({
                    "guarantee_number": view.guarantee.number,
                    "reason_code": reason.as_str(),
                    "amount_fen": claim.amount_fen,
                    "outstanding_fen": outstanding,
                    "extend_to": claim.extend_to.map(|t| t.to_string()),
                }),
                ..Default::default()
            },
            at,
        )?;
        let agency: Organization = organizations::table
            .find(&actor.organization_id)
            .select(Organization::as_select())
            .first(c)?;
        super::webhooks::emit_claim(
            c,
            super::webhooks::EventKind::ClaimFiled,
            view,
            &claim,
            &[&view.issuer.id, &view.enterprise.id],
            at,
        )?;
        notify::claim_filed(c, ctx, view, &claim, &agency, at)?;
        claim_view(c, claim, at)
    })
}

/// The issuer's decision on a claim.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimDecision {
    /// `pay`, `reject`, or `extend` (an extend-or-pay demand only: an amendment to the
    /// asked expiry is drafted for the issuer to sign; payment waits meanwhile).
    pub decision: String,
    pub reason: Option<String>,
    /// For `pay`: decimal yuan paid, at most the amount claimed; the whole claim when
    /// absent. Whatever stays outstanding of the guarantee keeps it in force, reduced.
    #[serde(default)]
    #[schema(pattern = r"^[0-9]+(\.[0-9]{1,2})?$")]
    pub amount: Option<String>,
}

/// What the issuer decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Pay,
    Reject,
    Extend,
}

/// The issuer pays or rejects a claim. A paid claim is a negative credit event for the
/// bidder; a rejected one returns the guarantee to its state before the claim.
pub fn decide_claim(
    ctx: &Context,
    actor: &Actor,
    claim_id: &str,
    input: ClaimDecision,
) -> Result<ClaimView, ServiceError> {
    require_role(actor, &[Role::Issuer])?;
    let decision = match input.decision.as_str() {
        "pay" => Decision::Pay,
        "reject" => Decision::Reject,
        "extend" => Decision::Extend,
        _ => {
            return Err(ServiceError::invalid(
                "decision",
                "must be pay, reject or extend",
            ))
        }
    };
    let reason = match (&input.reason, decision) {
        (Some(r), _) => Some(required_text("reason", r, 2000)?),
        (None, Decision::Reject) => {
            return Err(ServiceError::invalid(
                "reason",
                "a rejection needs a reason",
            ))
        }
        (None, _) => None,
    };
    let paying = match (&input.amount, decision) {
        (Some(a), Decision::Pay) => {
            let a = Amount::parse(a).map_err(|e| ServiceError::invalid("amount", e))?;
            if a.fen() <= 0 {
                return Err(ServiceError::invalid("amount", "must be more than zero"));
            }
            Some(a.fen())
        }
        (Some(_), _) => {
            return Err(ServiceError::invalid(
                "amount",
                "only a payment names an amount",
            ))
        }
        (None, _) => None,
    };
    let at = ctx.now();
    let mut conn = ctx.conn()?;
    ctx.write_tx(&mut conn, |c| {
        let claim: Claim = claims::table
            .find(claim_id)
            .select(Claim::as_select())
            .first(c)
            .optional()?
            .ok_or_else(|| ServiceError::NotFound("claim".into()))?;
        let g: Guarantee = guarantees::table
            .find(&claim.guarantee_id)
            .select(Guarantee::as_select())
            .first(c)?;
        if g.issuer_id != actor.organization_id {
            return Err(ServiceError::NotFound("claim".into()));
        }
        if !matches!(claim.status, ClaimState::Filed | ClaimState::Extending) {
            return Err(ServiceError::Conflict(
                "the claim is already decided".into(),
            ));
        }
        if decision == Decision::Extend {
            return offer_extension(c, ctx, actor, &claim, &g, reason.as_deref(), at);
        }
        // Paid or rejected, an extension offered before is off: its draft goes.
        super::guarantees::drop_unsigned_amendment(c, &g)?;
        let paid = match decision {
            Decision::Pay => paying.unwrap_or(claim.amount_fen),
            _ => 0,
        };
        if paid > claim.amount_fen {
            return Err(ServiceError::invalid(
                "amount",
                format!(
                    "is more than the claim, {}",
                    Amount::from_fen(claim.amount_fen)
                ),
            ));
        }
        let action = match decision {
            Decision::Pay if g.paid_fen + paid >= g.amount_fen => GuaranteeAction::PayClaim,
            Decision::Pay => GuaranteeAction::PayPart,
            _ => GuaranteeAction::RejectClaim,
        };
        transition(c, actor, &g, action, at)?;
        if paid > 0 {
            // The database holds the sum to the guarantee's amount (a CHECK as well).
            let counted = diesel::update(
                guarantees::table
                    .filter(guarantees::id.eq(&g.id))
                    .filter((guarantees::paid_fen + paid).le(guarantees::amount_fen)),
            )
            .set(guarantees::paid_fen.eq(guarantees::paid_fen + paid))
            .execute(c)?;
            if counted != 1 {
                return Err(ServiceError::Conflict(
                    "the payment exceeds the amount outstanding".into(),
                ));
            }
        }
        let status = match decision {
            Decision::Pay => ClaimState::Paid,
            _ => ClaimState::Rejected,
        };
        let changed = diesel::update(
            claims::table
                .filter(claims::id.eq(&claim.id))
                .filter(claims::status.eq(claim.status)),
        )
        .set((
            claims::status.eq(status),
            claims::decided_by.eq(&actor.user_id),
            claims::decided_at.eq(at),
            claims::decision_reason.eq(&reason),
            claims::paid_fen.eq((paid > 0).then_some(paid)),
        ))
        .execute(c)?;
        if changed != 1 {
            return Err(ServiceError::Conflict(
                "the claim is already decided".into(),
            ));
        }
        let pay = decision == Decision::Pay;
        audit_decision(
            c,
            actor,
            &claim.id,
            (claim.status, status),
            serde_json::json!({
                "guarantee_number": g.number,
                "reason": reason,
                "paid_fen": paid,
                "outstanding_fen": g.amount_fen - g.paid_fen - paid,
            }),
            at,
        )?;
        if pay {
            let enterprise: Organization = organizations::table
                .find(&g.enterprise_id)
                .select(Organization::as_select())
                .first(c)?;
            // The bidder's credit archive takes a negative record now, in this
            // transaction: its level moves at once.
            super::credit::record_claim_paid(
                c,
                ctx,
                &enterprise,
                &claim.id,
                format!(
                    "保函 {} 索赔赔付 ¥{} Bid bond claim paid",
                    g.number,
                    Amount::from_fen(paid)
                ),
                &actor.user_id,
                at,
            )?;
        }
        let fresh = reload(c, &claim.id)?;
        let view = guarantee_view_by_id(c, &g.id)?;
        let agency: Organization = organizations::table
            .find(&view.project.agency_id)
            .select(Organization::as_select())
            .first(c)?;
        super::webhooks::emit_claim(
            c,
            super::webhooks::EventKind::ClaimDecided,
            &view,
            &fresh,
            &[&agency.id, &view.enterprise.id],
            at,
        )?;
        notify::claim_decided(c, ctx, &view, &fresh, &agency, at)?;
        claim_view(c, fresh, at)
    })
}

/// The issuer meets an extend-or-pay demand by extending: an amendment to the asked
/// expiry is drafted for it to sign (hosted or uploaded, as any amendment), and payment
/// waits. Signing it withdraws the demand ([`extension_signed`]); the issuer may still
/// pay or reject instead until then.
fn offer_extension(
    c: &mut DbConnection,
    ctx: &Context,
    actor: &Actor,
    claim: &Claim,
    g: &Guarantee,
    reason: Option<&str>,
    at: NaiveDateTime,
) -> Result<ClaimView, ServiceError> {
    let Some(until) = claim.extend_to else {
        return Err(ServiceError::invalid(
            "decision",
            "only an extend-or-pay demand can be met by an extension",
        ));
    };
    let changed = diesel::update(
        claims::table
            .filter(claims::id.eq(&claim.id))
            .filter(claims::status.eq(ClaimState::Filed)),
    )
    .set((
        claims::status.eq(ClaimState::Extending),
        claims::decision_reason.eq(reason),
    ))
    .execute(c)?;
    if changed != 1 {
        return Err(ServiceError::Conflict(
            "the extension is already offered".into(),
        ));
    }
    super::guarantees::offer_extension(c, ctx, actor, g, until, at)?;
    audit_decision(
        c,
        actor,
        &claim.id,
        (ClaimState::Filed, ClaimState::Extending),
        serde_json::json!({
            "guarantee_number": g.number,
            "extend_to": until.to_string(),
            "reason": reason,
        }),
        at,
    )?;
    let fresh = reload(c, &claim.id)?;
    claim_view(c, fresh, at)
}

/// Audits one step of a claim's decision.
fn audit_decision(
    c: &mut DbConnection,
    actor: &Actor,
    claim_id: &str,
    (from, to): (ClaimState, ClaimState),
    details: serde_json::Value,
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    audit::append(
        c,
        &AuditEvent {
            actor_user_id: Some(&actor.user_id),
            actor_organization_id: Some(&actor.organization_id),
            action: "decide_claim",
            entity_kind: "claim",
            entity_id: claim_id,
            from_state: Some(from.as_str()),
            to_state: Some(to.as_str()),
            details,
        },
        at,
    )?;
    Ok(())
}

/// A claim as stored now.
fn reload(c: &mut DbConnection, claim_id: &str) -> Result<Claim, ServiceError> {
    Ok(claims::table
        .find(claim_id)
        .select(Claim::as_select())
        .first(c)?)
}

/// The extension an extend-or-pay demand asked for is signed: the demand is withdrawn
/// and the guarantee, claimed until now, is back in force with its new expiry. Called
/// in the signature's transaction; returns the state the guarantee returns to, or
/// `None` when no extension was waiting.
pub fn extension_signed(
    c: &mut DbConnection,
    actor: &Actor,
    g: &Guarantee,
    at: NaiveDateTime,
) -> Result<Option<crate::domain::lifecycle::GuaranteeState>, ServiceError> {
    let waiting: Option<Claim> = claims::table
        .filter(claims::guarantee_id.eq(&g.id))
        .filter(claims::status.eq(ClaimState::Extending))
        .select(Claim::as_select())
        .first(c)
        .optional()?;
    let Some(claim) = waiting else {
        return Ok(None);
    };
    let back = transition(c, actor, g, GuaranteeAction::Extend, at)?;
    let changed = diesel::update(
        claims::table
            .filter(claims::id.eq(&claim.id))
            .filter(claims::status.eq(ClaimState::Extending)),
    )
    .set((
        claims::status.eq(ClaimState::Extended),
        claims::decided_by.eq(&actor.user_id),
        claims::decided_at.eq(at),
    ))
    .execute(c)?;
    if changed != 1 {
        return Err(ServiceError::Conflict(
            "the claim changed meanwhile; try again".into(),
        ));
    }
    audit_decision(
        c,
        actor,
        &claim.id,
        (ClaimState::Extending, ClaimState::Extended),
        serde_json::json!({
            "guarantee_number": g.number,
            "extend_to": claim.extend_to.map(|t| t.to_string()),
        }),
        at,
    )?;
    let fresh = reload(c, &claim.id)?;
    let view = guarantee_view_by_id(c, &g.id)?;
    super::webhooks::emit_claim(
        c,
        super::webhooks::EventKind::ClaimDecided,
        &view,
        &fresh,
        &[&view.project.agency_id, &view.enterprise.id],
        at,
    )?;
    Ok(Some(back))
}

/// A claim list's filters as typed: the API's query parameters. Every one is optional;
/// blank is the same as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClaimQuery {
    /// States, repeated or comma-separated: `filed`, `paid`, `rejected`.
    #[param(required = false, style = Form, explode = true)]
    pub state: Vec<String>,
    /// The guarantee's number, or its beginning.
    pub number: Option<String>,
    /// Filed on or after this day (China date, `YYYY-MM-DD`).
    pub from: Option<String>,
    /// Filed on or before this day (China date, `YYYY-MM-DD`).
    pub to: Option<String>,
    /// `filed_at` or `deadline` (the issuer's decision deadline); a leading `-` sorts
    /// descending. Default `-filed_at` (newest first).
    pub sort: Option<String>,
}

/// How many claims against the issuer's guarantees wait for its decision (filed, not
/// yet paid or rejected), counted in the database.
pub fn count_waiting(ctx: &Context, actor: &Actor) -> Result<i64, ServiceError> {
    require_role(actor, &[Role::Issuer])?;
    let mut conn = ctx.conn()?;
    Ok(claims::table
        .inner_join(guarantees::table)
        .filter(claims::status.eq(ClaimState::Filed))
        .filter(guarantees::issuer_id.eq(&actor.organization_id))
        .count()
        .get_result(&mut conn)?)
}

/// What a claim is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimSort {
    FiledAt,
    Deadline,
}

impl SortKey for ClaimSort {
    const KEYS: &'static [(&'static str, Self)] = &[
        ("filed_at", ClaimSort::FiledAt),
        ("deadline", ClaimSort::Deadline),
    ];
    const DEFAULT: Sort<Self> = Sort {
        key: ClaimSort::FiledAt,
        descending: true,
    };
}

/// A claim list's filters, checked. They only narrow what the actor may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimFilter {
    pub states: Vec<ClaimState>,
    /// Upper case: numbers are.
    pub number: Option<String>,
    pub filed: DayRange,
    pub sort: Sort<ClaimSort>,
}

impl Default for ClaimFilter {
    fn default() -> Self {
        ClaimFilter {
            states: Vec::new(),
            number: None,
            filed: DayRange::default(),
            sort: ClaimSort::DEFAULT,
        }
    }
}

impl ClaimFilter {
    /// Reads the filters from a list's parameters: what was typed and the checked
    /// filter, or every problem found (unknown names included).
    pub fn read(mut params: Params) -> (ClaimQuery, Result<ClaimFilter, Problems>) {
        let typed = ClaimQuery {
            state: params.many("state"),
            number: params.one("number"),
            from: params.one("from"),
            to: params.one("to"),
            sort: params.one("sort"),
        };
        let filter = ClaimFilter {
            states: parse_each(&mut params, "state", &typed.state),
            number: typed.number.as_deref().map(str::to_uppercase),
            filed: DayRange::read(
                &mut params,
                ("from", typed.from.as_deref()),
                ("to", typed.to.as_deref()),
            ),
            sort: Sort::read(&mut params, typed.sort.as_deref()),
        };
        let checked = params.finish(filter);
        (typed, checked)
    }
}

/// The claims the actor is party to (the agency's projects', the issuer's guarantees',
/// the bidder's own; the operator all) that `filter` keeps, one window of them in its
/// order with the count of all: both asked of the database.
pub fn list(
    ctx: &Context,
    actor: &Actor,
    filter: &ClaimFilter,
    window: Window,
) -> Result<Listed<ClaimView>, ServiceError> {
    require_role(
        actor,
        &[Role::Agency, Role::Issuer, Role::Enterprise, Role::Operator],
    )?;
    let at = ctx.now();
    let filtered = || {
        let mut query = claims::table
            .inner_join(guarantees::table.inner_join(sections::table.inner_join(projects::table)))
            .into_boxed();
        match actor.role {
            Role::Agency => {
                query = query.filter(projects::agency_id.eq(actor.organization_id.clone()))
            }
            Role::Issuer => {
                query = query.filter(guarantees::issuer_id.eq(actor.organization_id.clone()))
            }
            Role::Enterprise => {
                query = query.filter(guarantees::enterprise_id.eq(actor.organization_id.clone()))
            }
            _ => {}
        }
        if !filter.states.is_empty() {
            query = query.filter(any_of(claims::status, filter.states.clone()));
        }
        if let Some(number) = &filter.number {
            query = query.filter(guarantees::number.like(prefix_pattern(number)).escape('\\'));
        }
        if let Some(start) = filter.filed.start() {
            query = query.filter(claims::filed_at.ge(start));
        }
        if let Some(end) = filter.filed.end() {
            query = query.filter(claims::filed_at.lt(end));
        }
        query
    };
    let mut conn = ctx.conn()?;
    let total: i64 = filtered().count().get_result(&mut conn)?;
    let sorted = match (filter.sort.key, filter.sort.descending) {
        (ClaimSort::FiledAt, false) => filtered().order_by(claims::filed_at.asc()),
        (ClaimSort::FiledAt, true) => filtered().order_by(claims::filed_at.desc()),
        (ClaimSort::Deadline, false) => filtered().order_by(claims::decide_by.asc()),
        (ClaimSort::Deadline, true) => filtered().order_by(claims::decide_by.desc()),
    };
    // The id is unique: rows with equal keys keep one order across pages.
    let rows: Vec<Claim> = sorted
        .then_order_by(claims::id.asc())
        .offset(window.offset.max(0))
        .limit(window.limit.clamp(1, 500))
        .select(Claim::as_select())
        .load(&mut conn)?;
    let rows = rows
        .into_iter()
        .map(|cl| claim_view(&mut conn, cl, at))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Listed { rows, total })
}

/// Claims the actor is party to, newest first (the first 500).
pub fn list_claims(ctx: &Context, actor: &Actor) -> Result<Vec<ClaimView>, ServiceError> {
    let first = Window {
        offset: 0,
        limit: 500,
    };
    Ok(list(ctx, actor, &ClaimFilter::default(), first)?.rows)
}

/// One page of the claims [`list`] would answer in the given states (any when empty),
/// newest first: the issuer's claims to decide are those still filed.
pub fn list_claims_in(
    ctx: &Context,
    actor: &Actor,
    states: &[ClaimState],
    window: Window,
) -> Result<Listed<ClaimView>, ServiceError> {
    let filter = ClaimFilter {
        states: states.to_vec(),
        ..ClaimFilter::default()
    };
    list(ctx, actor, &filter, window)
}

/// One page of the claims [`list`] would answer, newest first, with how many there are.
pub fn list_claims_page(
    ctx: &Context,
    actor: &Actor,
    offset: i64,
    limit: i64,
) -> Result<(Vec<ClaimView>, i64), ServiceError> {
    let listed = list(
        ctx,
        actor,
        &ClaimFilter::default(),
        Window { offset, limit },
    )?;
    Ok((listed.rows, listed.total))
}
