//! Guarantee applications (保函申请): an enterprise applies for a bid bond for one
//! section from one issuer; the issuer approves with a premium quote or declines, and
//! confirms payment; the enterprise may withdraw before payment. Issuing is with the
//! guarantees.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::credit::{self, ApplicantCredit};
use super::listing::{parse_each, DayRange, Params, Problems, Sort, SortKey};
use super::organizations::required_text;
use super::views::{application_view, ApplicationView};
use super::{new_id, require_role, Actor, Context, Listed, OrInternal, ServiceError, Window};
use crate::db::any_of::any_of;
use crate::db::audit::{self, AuditEvent};
use crate::db::models::{Application, Organization, Project, Section};
use crate::db::schema::{applications, organizations, projects, sections};
use crate::db::DbConnection;
use crate::domain::lifecycle::{ApplicationAction, ApplicationState};
use crate::domain::money::Amount;
use crate::domain::party::{IssuerKind, OrgKind, Role};
use crate::domain::tender;

/// The start of `at`'s day in China time, as UTC.
fn china_day_start(at: NaiveDateTime) -> NaiveDateTime {
    use chrono::TimeZone;
    let china = crate::domain::time::china();
    let day = china.from_utc_datetime(&at).date_naive();
    china
        .from_local_datetime(&day.and_time(chrono::NaiveTime::MIN))
        .earliest()
        .map_or(at, |start| start.naive_utc())
}

/// An application as the enterprise sends it.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApplication {
    pub section_id: String,
    pub issuer_id: String,
    /// bank, insurer or guarantor; must match the issuer when given.
    pub kind: Option<String>,
}

/// Applies for a guarantee (enterprise).
pub fn apply(
    ctx: &Context,
    actor: &Actor,
    input: NewApplication,
) -> Result<ApplicationView, ServiceError> {
    require_role(actor, &[Role::Enterprise])?;
    let at = ctx.now();
    let mut conn = ctx.conn()?;
    ctx.write_tx(&mut conn, |c| apply_in(c, ctx, actor, &input, at))
}

/// [`apply`] inside the caller's transaction (a saved draft submitted, say).
pub(super) fn apply_in(
    c: &mut DbConnection,
    ctx: &Context,
    actor: &Actor,
    input: &NewApplication,
    at: NaiveDateTime,
) -> Result<ApplicationView, ServiceError> {
    {
        let (section, project) = sections::table
            .inner_join(projects::table)
            .filter(sections::id.eq(&input.section_id))
            .select((Section::as_select(), Project::as_select()))
            .first::<(Section, Project)>(c)
            .optional()?
            .ok_or_else(|| ServiceError::invalid("section_id", "no such section"))?;
        if project.bid_deadline <= at {
            return Err(ServiceError::invalid(
                "section_id",
                "the bid deadline of this project has passed",
            ));
        }
        let issuer: Organization = organizations::table
            .find(&input.issuer_id)
            .select(Organization::as_select())
            .first(c)
            .optional()?
            .filter(|o| o.kind == OrgKind::Issuer)
            .ok_or_else(|| ServiceError::invalid("issuer_id", "no such issuer"))?;
        let issuer_kind = issuer.issuer_kind.or_internal("the issuer's kind")?;
        if let Some(kind) = &input.kind {
            let kind: IssuerKind = kind
                .parse()
                .map_err(|_| ServiceError::invalid("kind", "must be bank, insurer or guarantor"))?;
            if kind != issuer_kind {
                return Err(ServiceError::invalid(
                    "kind",
                    format!(
                        "{} issues {issuer_kind} guarantees, not {}",
                        issuer.name,
                        kind.as_str()
                    ),
                ));
            }
        }
        // Limits per enterprise, counted in the database; the enterprise's row is
        // locked first (a no-op update) so parallel applications count one by one.
        diesel::update(organizations::table.find(&actor.organization_id))
            .set(organizations::name.eq(organizations::name))
            .execute(c)?;
        let open: i64 = applications::table
            .filter(applications::enterprise_id.eq(&actor.organization_id))
            .filter(applications::status.eq_any([
                ApplicationState::Submitted,
                ApplicationState::Approved,
                ApplicationState::Paid,
            ]))
            .count()
            .get_result(c)?;
        let limits = ctx.limits;
        if open >= limits.applications_waiting {
            return Err(ServiceError::Conflict(format!(
                "you have {} applications waiting; \
                 no more until one is issued, declined or withdrawn",
                limits.applications_waiting
            )));
        }
        let day_start = china_day_start(at);
        let today: i64 = applications::table
            .filter(applications::enterprise_id.eq(&actor.organization_id))
            .filter(applications::created_at.ge(day_start))
            .count()
            .get_result(c)?;
        if today >= limits.applications_per_day {
            return Err(ServiceError::Conflict(format!(
                "you have made {} applications today; try again tomorrow",
                limits.applications_per_day
            )));
        }
        // One live application per enterprise and section: a second one would only
        // buy a second bond for the same bid. An application stops being live when it
        // is declined or withdrawn or its guarantee ends; the partial unique index
        // `applications_one_live_per_section` holds the rule against races.
        let live: i64 = applications::table
            .filter(applications::enterprise_id.eq(&actor.organization_id))
            .filter(applications::section_id.eq(&section.id))
            .filter(applications::live.eq(true))
            .count()
            .get_result(c)?;
        if live > 0 {
            return Err(already_applied());
        }
        let validity = tender::required_validity(project.bid_deadline, project.bid_validity_days);
        let (valid_from, valid_until) = (validity.from, validity.until);
        let application = Application {
            id: new_id(),
            enterprise_id: actor.organization_id.clone(),
            section_id: section.id.clone(),
            issuer_id: issuer.id.clone(),
            kind: issuer_kind,
            amount_fen: section.bond_amount_fen,
            valid_from,
            valid_until,
            status: ApplicationState::Submitted,
            premium_fen: None,
            decline_reason: None,
            created_by: actor.user_id.clone(),
            created_at: at,
            updated_at: at,
            live: true,
        };
        diesel::insert_into(applications::table)
            .values(&application)
            .execute(c)
            .map_err(|e| match e {
                diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _,
                ) => already_applied(),
                other => other.into(),
            })?;
        audit::append(
            c,
            &AuditEvent {
                actor_user_id: Some(&actor.user_id),
                actor_organization_id: Some(&actor.organization_id),
                action: "apply",
                entity_kind: "application",
                entity_id: &application.id,
                to_state: Some(ApplicationState::Submitted.as_str()),
                details: serde_json::json!({ "section_id": section.id, "issuer_id": issuer.id }),
                ..Default::default()
            },
            at,
        )?;
        let enterprise = organizations::table
            .find(&actor.organization_id)
            .select(Organization::as_select())
            .first(c)?;
        let mut application = application;
        if open_for_bonds(&project, at, "approval").is_ok() {
            fast_track(c, &mut application, &issuer, &enterprise, at)?;
        }
        let view = ApplicationView {
            application,
            section,
            project,
            enterprise,
            issuer,
            pending_amendment: None,
        };
        super::webhooks::emit_application(
            c,
            super::webhooks::EventKind::ApplicationSubmitted,
            &view,
            &view.issuer.id,
            at,
        )?;
        super::notify::applications_waiting(c, ctx, &view.issuer, at)?;
        Ok(view)
    }
}

/// The issuer's fast track (its own rules by credit level, `issuer_rules`): when the
/// applicant's archive holds a level for which the issuer set no manual review, and the
/// issuer has published premium terms that serve this bond, the exchange approves the
/// application at once at the terms' quote less the level's discount, in the
/// application's own transaction, audited as the exchange's approval with the rule it
/// applied. Anything else leaves it submitted for the issuer to review.
fn fast_track(
    c: &mut DbConnection,
    application: &mut Application,
    issuer: &Organization,
    enterprise: &Organization,
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    let Some(level) = credit::enterprise_level(c, enterprise)? else {
        return Ok(());
    };
    let rule = super::issuer_rules::rule_for(c, &issuer.id, level)?;
    if rule.manual_review {
        return Ok(());
    }
    let terms = super::premium_terms::current_of(c, std::slice::from_ref(&issuer.id))?
        .remove(&issuer.id)
        .and_then(|v| v.terms);
    let Some(quote) = terms.and_then(|t| t.quote(Amount::from_fen(application.amount_fen)).ok())
    else {
        return Ok(());
    };
    let premium = rule.discounted(quote);
    if premium.fen() <= 0 {
        return Ok(());
    }
    let from = ApplicationState::Submitted;
    let next = from.transition(ApplicationAction::Approve)?;
    let changed = diesel::update(
        applications::table
            .filter(applications::id.eq(&application.id))
            .filter(applications::status.eq(from)),
    )
    .set((
        applications::status.eq(next),
        applications::premium_fen.eq(premium.fen()),
        applications::updated_at.eq(at),
    ))
    .execute(c)?;
    if changed != 1 {
        return Err(ServiceError::Conflict(
            "the application changed meanwhile; try again".into(),
        ));
    }
    audit::append(
        c,
        &AuditEvent {
            actor_user_id: None,
            actor_organization_id: None,
            action: ApplicationAction::Approve.as_str(),
            entity_kind: "application",
            entity_id: &application.id,
            from_state: Some(from.as_str()),
            to_state: Some(next.as_str()),
            details: serde_json::json!({
                "fast_track": true,
                "issuer_id": issuer.id,
                "level": level.as_str(),
                "discount_percent": rule.discount_percent,
                "quote_fen": quote.fen(),
                "premium_fen": premium.fen(),
            }),
        },
        at,
    )?;
    application.status = next;
    application.premium_fen = Some(premium.fen());
    Ok(())
}

/// The refusal of a second live application for one section.
fn already_applied() -> ServiceError {
    ServiceError::Conflict(
        "section_id: you already have an application for this section; withdraw it first".into(),
    )
}

/// Loads an application the actor may see: its enterprise, its issuer, the operator.
/// Anyone else gets "not found", so existence does not leak.
pub fn load_visible(
    c: &mut DbConnection,
    actor: &Actor,
    id: &str,
) -> Result<ApplicationView, ServiceError> {
    let application: Application = applications::table
        .find(id)
        .select(Application::as_select())
        .first(c)
        .optional()?
        .ok_or_else(|| ServiceError::NotFound("application".into()))?;
    let visible = match actor.role {
        Role::Operator => true,
        Role::Enterprise => application.enterprise_id == actor.organization_id,
        Role::Issuer => application.issuer_id == actor.organization_id,
        _ => false,
    };
    if !visible {
        return Err(ServiceError::NotFound("application".into()));
    }
    application_view(c, application)
}

/// One application, if visible to the actor.
pub fn get(ctx: &Context, actor: &Actor, id: &str) -> Result<ApplicationView, ServiceError> {
    let mut conn = ctx.conn()?;
    load_visible(&mut conn, actor, id)
}

/// The states in which an issuer is still underwriting an application, and so may read
/// its applicant's credit: before the guarantee is issued, while it can still decide.
pub const UNDERWRITING_STATES: [ApplicationState; 3] = [
    ApplicationState::Submitted,
    ApplicationState::Approved,
    ApplicationState::Paid,
];

/// One application, if visible to the actor, and for the issuer it is made to while it
/// underwrites it, the applicant's credit standing. The issuer's read of the standing and
/// its look (logged as underwriting, with this application) are one transaction; anyone
/// else reads the application alone, and nothing is logged.
pub fn get_underwriting(
    ctx: &Context,
    actor: &Actor,
    id: &str,
) -> Result<(ApplicationView, Option<ApplicantCredit>), ServiceError> {
    let underwrites = |view: &ApplicationView| {
        actor.role == Role::Issuer
            && view.application.issuer_id == actor.organization_id
            && UNDERWRITING_STATES.contains(&view.application.status)
    };
    let mut conn = ctx.conn()?;
    // A plain read first: only a read that shows the credit takes a write transaction.
    let view = load_visible(&mut conn, actor, id)?;
    if !underwrites(&view) {
        return Ok((view, None));
    }
    let at = ctx.now();
    ctx.write_tx(&mut conn, |c| {
        // Again inside the transaction: the state may have moved meanwhile.
        let view = load_visible(c, actor, id)?;
        let standing = if underwrites(&view) {
            Some(credit::applicant_credit(
                c,
                actor,
                &view.enterprise,
                &view.application.id,
                at,
            )?)
        } else {
            None
        };
        Ok((view, standing))
    })
}

/// An application list's filters as typed: the API's query parameters and a page's
/// form. Every one is optional; blank is the same as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApplicationQuery {
    /// States, repeated or comma-separated: `submitted`, `approved`, `paid`, `issued`,
    /// `declined`, `withdrawn`.
    #[param(required = false, style = Form, explode = true)]
    pub state: Vec<String>,
    /// The same as `state` (the name earlier clients use).
    #[param(required = false, style = Form, explode = true)]
    pub status: Vec<String>,
    /// The project, by id or by project code.
    pub project: Option<String>,
    /// The section, by id.
    pub section: Option<String>,
    /// The issuer, by organization id or unified social credit code.
    pub issuer: Option<String>,
    /// The enterprise, by organization id or unified social credit code.
    pub enterprise: Option<String>,
    /// Made on or after this day (China date, `YYYY-MM-DD`).
    pub from: Option<String>,
    /// Made on or before this day (China date, `YYYY-MM-DD`).
    pub to: Option<String>,
    /// `created_at` or `amount`; a leading `-` sorts descending. Default `-created_at`
    /// (newest first).
    pub sort: Option<String>,
}

/// What an application is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplicationSort {
    CreatedAt,
    Amount,
}

impl SortKey for ApplicationSort {
    const KEYS: &'static [(&'static str, Self)] = &[
        ("created_at", ApplicationSort::CreatedAt),
        ("amount", ApplicationSort::Amount),
    ];
    const DEFAULT: Sort<Self> = Sort {
        key: ApplicationSort::CreatedAt,
        descending: true,
    };
}

/// An application list's filters, checked. They only narrow what the actor may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationFilter {
    pub states: Vec<ApplicationState>,
    pub project: Option<String>,
    pub section: Option<String>,
    pub issuer: Option<String>,
    pub enterprise: Option<String>,
    pub created: DayRange,
    pub sort: Sort<ApplicationSort>,
}

impl Default for ApplicationFilter {
    fn default() -> Self {
        ApplicationFilter {
            states: Vec::new(),
            project: None,
            section: None,
            issuer: None,
            enterprise: None,
            created: DayRange::default(),
            sort: ApplicationSort::DEFAULT,
        }
    }
}

impl ApplicationFilter {
    /// Reads the filters from a list's parameters: what was typed (to show again) and
    /// the checked filter, or every problem found (unknown names included).
    pub fn read(mut params: Params) -> (ApplicationQuery, Result<ApplicationFilter, Problems>) {
        let typed = ApplicationQuery {
            state: params.many("state"),
            status: params.many("status"),
            project: params.one("project"),
            section: params.one("section"),
            issuer: params.one("issuer"),
            enterprise: params.one("enterprise"),
            from: params.one("from"),
            to: params.one("to"),
            sort: params.one("sort"),
        };
        let mut states = parse_each(&mut params, "state", &typed.state);
        states.extend(parse_each::<ApplicationState>(
            &mut params,
            "status",
            &typed.status,
        ));
        let filter = ApplicationFilter {
            states,
            project: typed.project.clone(),
            section: typed.section.clone(),
            issuer: typed.issuer.clone(),
            enterprise: typed.enterprise.clone(),
            created: DayRange::read(
                &mut params,
                ("from", typed.from.as_deref()),
                ("to", typed.to.as_deref()),
            ),
            sort: Sort::read(&mut params, typed.sort.as_deref()),
        };
        let checked = params.finish(filter);
        (typed, checked)
    }

    /// Only these states, nothing else narrowed.
    pub fn in_states(states: &[ApplicationState]) -> ApplicationFilter {
        ApplicationFilter {
            states: states.to_vec(),
            ..ApplicationFilter::default()
        }
    }
}

/// The applications the actor may see (an enterprise its own, an issuer those
/// addressed to it, the operator all) that `filter` keeps, one window of them in its
/// order with the count of all: both asked of the database.
pub fn list(
    ctx: &Context,
    actor: &Actor,
    filter: &ApplicationFilter,
    window: Window,
) -> Result<Listed<ApplicationView>, ServiceError> {
    require_role(actor, &[Role::Enterprise, Role::Issuer, Role::Operator])?;
    // The ids of the organizations a key names, by id or by unified social credit code.
    let organizations_named = |key: &String| {
        organizations::table
            .filter(
                organizations::id
                    .eq(key.clone())
                    .or(organizations::uscc.eq(key.clone())),
            )
            .select(organizations::id)
    };
    let filtered = || {
        let mut query: applications::BoxedQuery<'static, Db> = applications::table.into_boxed();
        match actor.role {
            Role::Enterprise => {
                query = query.filter(applications::enterprise_id.eq(actor.organization_id.clone()))
            }
            Role::Issuer => {
                query = query.filter(applications::issuer_id.eq(actor.organization_id.clone()))
            }
            _ => {}
        }
        if !filter.states.is_empty() {
            query = query.filter(any_of(applications::status, filter.states.clone()));
        }
        if let Some(project) = &filter.project {
            query = query.filter(
                applications::section_id.eq_any(
                    sections::table
                        .inner_join(projects::table)
                        .filter(
                            projects::id
                                .eq(project.clone())
                                .or(projects::code.eq(project.clone())),
                        )
                        .select(sections::id),
                ),
            );
        }
        if let Some(section) = &filter.section {
            query = query.filter(applications::section_id.eq(section.clone()));
        }
        if let Some(issuer) = &filter.issuer {
            query = query.filter(applications::issuer_id.eq_any(organizations_named(issuer)));
        }
        if let Some(enterprise) = &filter.enterprise {
            query =
                query.filter(applications::enterprise_id.eq_any(organizations_named(enterprise)));
        }
        if let Some(start) = filter.created.start() {
            query = query.filter(applications::created_at.ge(start));
        }
        if let Some(end) = filter.created.end() {
            query = query.filter(applications::created_at.lt(end));
        }
        query
    };
    let mut conn = ctx.conn()?;
    let total: i64 = filtered().count().get_result(&mut conn)?;
    let sorted = match (filter.sort.key, filter.sort.descending) {
        (ApplicationSort::CreatedAt, false) => filtered().order_by(applications::created_at.asc()),
        (ApplicationSort::CreatedAt, true) => filtered().order_by(applications::created_at.desc()),
        (ApplicationSort::Amount, false) => filtered().order_by(applications::amount_fen.asc()),
        (ApplicationSort::Amount, true) => filtered().order_by(applications::amount_fen.desc()),
    };
    // The id is unique: rows with equal keys keep one order across pages.
    let rows: Vec<Application> = sorted
        .then_order_by(applications::id.asc())
        .offset(window.offset)
        .limit(window.limit)
        .select(Application::as_select())
        .load(&mut conn)?;
    let rows = super::views::application_views(&mut conn, rows)?;
    Ok(Listed { rows, total })
}

/// The applications of [`list`] in the given states (any when empty), newest first,
/// one window of them with the count of all: what the issuer's queue shows.
pub fn list_page(
    ctx: &Context,
    actor: &Actor,
    states: &[ApplicationState],
    window: Window,
) -> Result<Listed<ApplicationView>, ServiceError> {
    list(ctx, actor, &ApplicationFilter::in_states(states), window)
}

type Db = <DbConnection as diesel::Connection>::Backend;

/// How many of the actor's applications (as [`list`] chooses them) are in the given
/// states (any when empty), counting only those made since the start of today (China
/// time) when `today_only`: the figures of a home page, counted in the database.
pub fn count(
    ctx: &Context,
    actor: &Actor,
    states: &[ApplicationState],
    today_only: bool,
) -> Result<i64, ServiceError> {
    require_role(actor, &[Role::Enterprise, Role::Issuer, Role::Operator])?;
    let mut query: applications::BoxedQuery<'static, Db> = applications::table.into_boxed();
    match actor.role {
        Role::Enterprise => {
            query = query.filter(applications::enterprise_id.eq(actor.organization_id.clone()))
        }
        Role::Issuer => {
            query = query.filter(applications::issuer_id.eq(actor.organization_id.clone()))
        }
        _ => {}
    }
    if !states.is_empty() {
        query = query.filter(any_of(applications::status, states.to_vec()));
    }
    if today_only {
        query = query.filter(applications::created_at.ge(china_day_start(ctx.now())));
    }
    let mut conn = ctx.conn()?;
    Ok(query.count().get_result(&mut conn)?)
}

/// The issuer's issued applications whose guarantee has an amendment drafted (after a
/// postponement) and not signed yet: work waiting for its signature, oldest first, one
/// window of them with the count of all.
pub fn awaiting_amendment(
    ctx: &Context,
    actor: &Actor,
    window: Window,
) -> Result<Listed<ApplicationView>, ServiceError> {
    use crate::db::schema::{guarantee_drafts, guarantees};
    require_role(actor, &[Role::Issuer])?;
    let mut conn = ctx.conn()?;
    let ids: Vec<String> = guarantees::table
        .inner_join(
            guarantee_drafts::table.on(guarantee_drafts::application_id
                .eq(guarantees::application_id)
                .and(guarantee_drafts::version.gt(guarantees::current_version))),
        )
        .filter(guarantees::issuer_id.eq(&actor.organization_id))
        .select(guarantees::application_id)
        .distinct()
        .load(&mut conn)?;
    let total: i64 = applications::table
        .filter(any_of(applications::id, &ids))
        .count()
        .get_result(&mut conn)?;
    let rows: Vec<Application> = applications::table
        .filter(any_of(applications::id, &ids))
        .order((applications::created_at.asc(), applications::id.asc()))
        .offset(window.offset.max(0))
        .limit(window.limit.clamp(1, 500))
        .select(Application::as_select())
        .load(&mut conn)?;
    let rows = super::views::application_views(&mut conn, rows)?;
    Ok(Listed { rows, total })
}

/// Moves an application along its lifecycle in one conditional update: it fails if the
/// state moved meanwhile, and names the state it found. Returns the new state.
pub fn transition(
    c: &mut DbConnection,
    actor: &Actor,
    view: &ApplicationView,
    action: ApplicationAction,
    at: NaiveDateTime,
) -> Result<ApplicationState, ServiceError> {
    let current = view.application.status;
    let next = current.transition(action)?;
    let changed = diesel::update(
        applications::table
            .filter(applications::id.eq(&view.application.id))
            .filter(applications::status.eq(current)),
    )
    .set((
        applications::status.eq(next),
        applications::updated_at.eq(at),
        applications::live.eq(!matches!(
            next,
            ApplicationState::Declined | ApplicationState::Withdrawn
        )),
    ))
    .execute(c)?;
    if changed != 1 {
        // Someone else moved it first: report the state it is in now.
        let now_state: ApplicationState = applications::table
            .find(&view.application.id)
            .select(applications::status)
            .first(c)?;
        return Err(now_state
            .transition(action)
            .err()
            .map(Into::into)
            .unwrap_or_else(|| {
                ServiceError::Conflict("the application changed meanwhile; try again".into())
            }));
    }
    audit::append(
        c,
        &AuditEvent {
            actor_user_id: Some(&actor.user_id),
            actor_organization_id: Some(&actor.organization_id),
            action: action.as_str(),
            entity_kind: "application",
            entity_id: &view.application.id,
            from_state: Some(current.as_str()),
            to_state: Some(next.as_str()),
            details: serde_json::Value::Null,
        },
        at,
    )?;
    Ok(next)
}

/// The issue window (DESIGN 6): a bond for a section is applied for, approved, paid
/// and issued before the project's bid deadline, never after, so it is in force when
/// bids close and its validity (from the deadline) never starts before its issue.
/// Declining and withdrawing stay open: they add no bond.
pub fn open_for_bonds(
    project: &Project,
    at: NaiveDateTime,
    what: &str,
) -> Result<(), ServiceError> {
    if tender::deadline_passed(project.bid_deadline, at) {
        return Err(ServiceError::Conflict(format!(
            "the bid deadline of project {} passed at {}: no {what} for its bonds after it",
            project.code,
            crate::domain::time::china_rfc3339(project.bid_deadline)
        )));
    }
    Ok(())
}

/// Runs one issuer or enterprise action on a visible application.
fn act(
    ctx: &Context,
    actor: &Actor,
    id: &str,
    action: ApplicationAction,
    also: impl FnOnce(&mut DbConnection, &ApplicationView) -> Result<(), ServiceError>,
) -> Result<ApplicationView, ServiceError> {
    let allowed_role = match action {
        ApplicationAction::Withdraw => Role::Enterprise,
        _ => Role::Issuer,
    };
    require_role(actor, &[allowed_role])?;
    let at = ctx.now();
    let mut conn = ctx.conn()?;
    ctx.write_tx(&mut conn, |c| {
        let view = load_visible(c, actor, id)?;
        if matches!(
            action,
            ApplicationAction::Approve | ApplicationAction::ConfirmPayment
        ) {
            let what = match action {
                ApplicationAction::Approve => "approval",
                _ => "payment",
            };
            open_for_bonds(&view.project, at, what)?;
        }
        transition(c, actor, &view, action, at)?;
        also(c, &view)?;
        let fresh = applications::table
            .find(id)
            .select(Application::as_select())
            .first(c)?;
        Ok(ApplicationView {
            application: fresh,
            ..view
        })
    })
}

/// The issuer approves and quotes a premium (保费).
pub fn approve(
    ctx: &Context,
    actor: &Actor,
    id: &str,
    premium: &str,
) -> Result<ApplicationView, ServiceError> {
    let premium = Amount::parse(premium).map_err(|e| ServiceError::invalid("premium", e))?;
    if premium.fen() <= 0 {
        return Err(ServiceError::invalid("premium", "must be more than zero"));
    }
    act(ctx, actor, id, ApplicationAction::Approve, |c, view| {
        diesel::update(applications::table.find(&view.application.id))
            .set(applications::premium_fen.eq(premium.fen()))
            .execute(c)?;
        Ok(())
    })
}

/// The issuer declines, with a reason the enterprise sees.
pub fn decline(
    ctx: &Context,
    actor: &Actor,
    id: &str,
    reason: &str,
) -> Result<ApplicationView, ServiceError> {
    let reason = required_text("reason", reason, 500)?;
    act(ctx, actor, id, ApplicationAction::Decline, |c, view| {
        diesel::update(applications::table.find(&view.application.id))
            .set(applications::decline_reason.eq(reason))
            .execute(c)?;
        Ok(())
    })
}

/// The issuer confirms the premium arrived (payment happens outside the exchange).
pub fn confirm_payment(
    ctx: &Context,
    actor: &Actor,
    id: &str,
) -> Result<ApplicationView, ServiceError> {
    let at = ctx.now();
    act(
        ctx,
        actor,
        id,
        ApplicationAction::ConfirmPayment,
        |c, view| {
            super::webhooks::emit_application(
                c,
                super::webhooks::EventKind::PaymentConfirmed,
                view,
                &view.enterprise.id,
                at,
            )
        },
    )
}

/// The enterprise withdraws its application (before payment).
pub fn withdraw(ctx: &Context, actor: &Actor, id: &str) -> Result<ApplicationView, ServiceError> {
    let at = ctx.now();
    act(ctx, actor, id, ApplicationAction::Withdraw, |c, view| {
        super::notify::applications_waiting(c, ctx, &view.issuer, at)
    })
}
