//! Tender projects (招标项目) and their sections (标段), created and kept by the agency
//! that runs the tender.

use chrono::{NaiveDateTime, SubsecRound};
use diesel::prelude::*;

use super::listing::{contains_pattern, lower, DayRange, Params, Problems, Sort, SortKey};
use super::organizations::required_text;
use super::{new_id, require_role, Actor, Context, Listed, ServiceError, Window};
use crate::db::audit::{self, AuditEvent};
use crate::db::models::{Organization, Project, Section};
use crate::db::schema::{organizations, projects, sections};
use crate::domain::money::Amount;
use crate::domain::party::{OrgKind, Role};
use crate::domain::tender::{self, SectionInput, TenderError};
use crate::domain::uscc::Uscc;

mod by_code;

pub use by_code::{put_project_by_code, Outcome, PlatformProject, Upserted};

// The tender limits, still reachable where callers have always found them.
pub use crate::domain::tender::{BID_BOND_CAP_PERCENT, MAX_BID_VALIDITY_DAYS};

/// A section as the caller typed it.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSection {
    pub code: String,
    pub name: String,
    /// Decimal yuan, e.g. "100000.00".
    #[schema(pattern = r"^[0-9]+(\.[0-9]{1,2})?$")]
    pub bond_amount: String,
    #[schema(pattern = r"^[0-9]+(\.[0-9]{1,2})?$")]
    pub estimated_price: Option<String>,
}

/// A project as the caller typed it.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    pub code: String,
    pub name: String,
    #[schema(pattern = r"^[0-9A-HJ-NP-RTUW-Y]{18}$")]
    pub tenderee_uscc: String,
    /// RFC 3339 with an offset, e.g. "2026-12-20T09:00:00+08:00".
    #[schema(format = DateTime)]
    pub bid_deadline: String,
    #[schema(format = DateTime)]
    pub bid_opening_at: String,
    pub bid_validity_days: i32,
    pub sections: Vec<NewSection>,
}

/// A project with its sections and parties, as services hand it out.
#[derive(Debug, Clone)]
pub struct ProjectView {
    pub project: Project,
    pub tenderee: Organization,
    pub agency: Organization,
    pub sections: Vec<Section>,
}

/// Parses an RFC 3339 time (an offset is required) inside the window of dates a client
/// may name (2000 to 2100) into stored UTC.
pub fn parse_time(field: &str, value: &str) -> Result<NaiveDateTime, ServiceError> {
    crate::domain::time::parse_client_time(value)
        // Whole seconds: documents state times to the second, and a bond's validity
        // must cover the deadline exactly as the verifier computes it.
        .map(|t| t.naive_utc().trunc_subsecs(0))
        .map_err(|e| ServiceError::invalid(field, e))
}

/// Creates a project with its sections (agency only; the agency is the actor's own).
pub fn create_project(
    ctx: &Context,
    actor: &Actor,
    input: NewProject,
) -> Result<ProjectView, ServiceError> {
    require_role(actor, &[Role::Agency])?;
    let at = ctx.now();
    let checked = CheckedProject::check(&input)?;
    checked.check_new(at)?;
    let mut conn = ctx.conn()?;
    ctx.write_tx(&mut conn, |c| {
        let taken: i64 = projects::table
            .filter(projects::code.eq(&checked.code))
            .count()
            .get_result(c)?;
        if taken > 0 {
            return Err(code_taken(&checked.code));
        }
        match insert_project(c, actor, &checked, at, Via::Api)? {
            Inserted::Project(view) => Ok(*view),
            Inserted::CodeTaken => Err(code_taken(&checked.code)),
        }
    })
}

fn code_taken(code: &str) -> ServiceError {
    ServiceError::Conflict(format!("code: project {code} already exists"))
}

/// Who asked for a change, as the audit log records it: people and their programs
/// through the API, or an agency's trading platform keeping its projects in step by
/// code (`"via": "platform"` in the entry's details).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    Api,
    Platform,
}

impl Via {
    /// `details`, marked with where the change came from (unmarked through the API, as
    /// entries always were).
    fn mark(self, mut details: serde_json::Value) -> serde_json::Value {
        if let (Via::Platform, Some(fields)) = (self, details.as_object_mut()) {
            fields.insert("via".into(), "platform".into());
        }
        details
    }
}

/// A section as the caller typed it, each field checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckedSection {
    pub code: String,
    pub name: String,
    pub bond: Amount,
    pub estimated_price: Option<Amount>,
}

/// A project as the caller typed it, each field checked on its own and the sections
/// against each other; nothing looked up yet. Whether the timetable may start now is
/// [`CheckedProject::check_new`]: a project sent again keeps the times it has.
#[derive(Debug, Clone)]
pub(crate) struct CheckedProject {
    pub code: String,
    pub name: String,
    pub tenderee_uscc: Uscc,
    /// What the full rules say of the tenderee's code, told only when no organization
    /// is registered under it (the operator may have whitelisted a code they refuse).
    tenderee_problem: Option<crate::domain::uscc::UsccError>,
    pub bid_deadline: NaiveDateTime,
    pub bid_opening_at: NaiveDateTime,
    pub bid_validity_days: i32,
    pub sections: Vec<CheckedSection>,
}

impl CheckedProject {
    /// Checks every field, in the order the fields come, and the sections together
    /// (codes unique, bonds within the cap).
    pub(crate) fn check(input: &NewProject) -> Result<CheckedProject, ServiceError> {
        let code = tender::parse_code(&input.code).map_err(|p| invalid(p.at("code")))?;
        let name = required_text("name", &input.name, 200)?;
        // A registered code is good whatever the rules say of it (the operator may have
        // whitelisted it): only its form is checked before it is looked up.
        let tenderee_problem = Uscc::parse(&input.tenderee_uscc).err();
        let tenderee_uscc = Uscc::new_unchecked_whitelisted(&input.tenderee_uscc)
            .map_err(|e| ServiceError::invalid("tenderee_uscc", e))?;
        let bid_deadline = parse_time("bid_deadline", &input.bid_deadline)?;
        let bid_opening_at = parse_time("bid_opening_at", &input.bid_opening_at)?;
        tender::check_schedule(bid_deadline, bid_opening_at, input.bid_validity_days)
            .map_err(invalid)?;
        let inputs: Vec<SectionInput<'_>> = input
            .sections
            .iter()
            .map(|s| SectionInput {
                code: &s.code,
                bond_amount: &s.bond_amount,
                estimated_price: s.estimated_price.as_deref(),
            })
            .collect();
        let terms = tender::check_sections(&inputs).map_err(invalid)?;
        let sections = input
            .sections
            .iter()
            .zip(terms)
            .enumerate()
            .map(|(i, (s, t))| {
                Ok(CheckedSection {
                    code: t.code,
                    name: required_text(&format!("sections[{i}].name"), &s.name, 200)?,
                    bond: t.bond_amount,
                    estimated_price: t.estimated_price,
                })
            })
            .collect::<Result<_, ServiceError>>()?;
        Ok(CheckedProject {
            code,
            name,
            tenderee_uscc,
            tenderee_problem,
            bid_deadline,
            bid_opening_at,
            bid_validity_days: input.bid_validity_days,
            sections,
        })
    }

    /// The timetable of a project created at `at`: bids close in the future.
    pub(crate) fn check_new(&self, at: NaiveDateTime) -> Result<(), ServiceError> {
        tender::check_timetable(
            at,
            self.bid_deadline,
            self.bid_opening_at,
            self.bid_validity_days,
        )
        .map_err(invalid)
    }
}

/// What [`insert_project`] made: the project, or nothing because its code was taken
/// meanwhile (the transaction must then roll back: on PostgreSQL it is aborted).
pub(crate) enum Inserted {
    Project(Box<ProjectView>),
    CodeTaken,
}

/// Creates a checked project, with its sections, for the actor's agency, in the
/// caller's write transaction: the tenderee must be a registered tenderee. Audited as
/// `create_project`. The caller has checked the timetable ([`CheckedProject::check_new`])
/// and looked for a project with the code; one inserted since by a concurrent
/// transaction is [`Inserted::CodeTaken`].
pub(crate) fn insert_project(
    c: &mut crate::db::DbConnection,
    actor: &Actor,
    checked: &CheckedProject,
    at: NaiveDateTime,
    via: Via,
) -> Result<Inserted, ServiceError> {
    let tenderee: Organization = organizations::table
        .filter(organizations::uscc.eq(checked.tenderee_uscc.as_str()))
        .select(Organization::as_select())
        .first(c)
        .optional()?
        .ok_or_else(|| match &checked.tenderee_problem {
            Some(e) => ServiceError::invalid("tenderee_uscc", e),
            None => ServiceError::invalid(
                "tenderee_uscc",
                "no organization with this code is registered",
            ),
        })?;
    if tenderee.kind != OrgKind::Tenderee {
        return Err(ServiceError::invalid(
            "tenderee_uscc",
            format!(
                "{} is registered as a {}, not a tenderee",
                tenderee.name, tenderee.kind
            ),
        ));
    }
    let agency: Organization = organizations::table
        .find(&actor.organization_id)
        .select(Organization::as_select())
        .first(c)?;
    let project = Project {
        id: new_id(),
        code: checked.code.clone(),
        name: checked.name.clone(),
        tenderee_id: tenderee.id.clone(),
        agency_id: agency.id.clone(),
        bid_deadline: checked.bid_deadline,
        bid_opening_at: checked.bid_opening_at,
        bid_validity_days: checked.bid_validity_days,
        created_at: at,
        updated_at: at,
    };
    match diesel::insert_into(projects::table)
        .values(&project)
        .execute(c)
    {
        Ok(_) => {}
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => return Ok(Inserted::CodeTaken),
        Err(e) => return Err(e.into()),
    }
    let section_rows: Vec<Section> = checked
        .sections
        .iter()
        .map(|s| new_section_row(&project.id, s))
        .collect();
    // One row at a time: the multi-backend connection has no batch insert.
    for section in &section_rows {
        diesel::insert_into(sections::table)
            .values(section)
            .execute(c)?;
    }
    audit::append(
        c,
        &AuditEvent {
            actor_user_id: Some(&actor.user_id),
            actor_organization_id: Some(&actor.organization_id),
            action: "create_project",
            entity_kind: "project",
            entity_id: &project.id,
            details: via.mark(serde_json::json!({
                "code": project.code,
                "sections": section_rows.iter().map(|s| &s.code).collect::<Vec<_>>(),
            })),
            ..Default::default()
        },
        at,
    )?;
    Ok(Inserted::Project(Box::new(ProjectView {
        project,
        tenderee,
        agency,
        sections: section_rows,
    })))
}

/// The row of a new section of project `project_id`.
pub(crate) fn new_section_row(project_id: &str, s: &CheckedSection) -> Section {
    Section {
        id: new_id(),
        project_id: project_id.to_owned(),
        code: s.code.clone(),
        name: s.name.clone(),
        bond_amount_fen: s.bond.fen(),
        estimated_price_fen: s.estimated_price.map(|p| p.fen()),
        awarded_enterprise_id: None,
        awarded_at: None,
        contract_signed_at: None,
    }
}

/// A broken tender rule, reported on the field it names.
fn invalid(e: TenderError) -> ServiceError {
    ServiceError::invalid(e.field, e.problem)
}

/// The projects the actor may see: an agency its own, the operator all, an enterprise
/// those still open for bidding (their deadline ahead). The tender itself is public; who
/// bids on it is not, and nothing here says.
pub fn list_projects(ctx: &Context, actor: &Actor) -> Result<Vec<ProjectView>, ServiceError> {
    Ok(search_projects(ctx, actor, &ProjectSearch::default(), None)?.rows)
}

/// What a list of projects is narrowed to (every part optional), and its order.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProjectSearch {
    /// Part of the project's code or name.
    pub q: Option<String>,
    /// Part of the tenderee's name.
    pub tenderee: Option<String>,
    /// Bid deadline on or after this day (China date, `YYYY-MM-DD`).
    pub deadline_from: Option<String>,
    /// Bid deadline on or before this day (China date, `YYYY-MM-DD`).
    pub deadline_to: Option<String>,
    /// `deadline` or `code`; a leading `-` sorts descending. Default `deadline`
    /// (soonest first).
    pub sort: Option<String>,
}

impl ProjectSearch {
    /// Reads the search from a list's parameters; a name it does not know is a problem.
    pub fn read(mut params: Params) -> Result<ProjectSearch, Problems> {
        let search = ProjectSearch {
            q: params.one("q"),
            tenderee: params.one("tenderee"),
            deadline_from: params.one("deadline_from"),
            deadline_to: params.one("deadline_to"),
            sort: params.one("sort"),
        };
        params.finish(search)
    }
}

/// What a project is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectSort {
    Deadline,
    Code,
}

impl SortKey for ProjectSort {
    const KEYS: &'static [(&'static str, Self)] = &[
        ("deadline", ProjectSort::Deadline),
        ("code", ProjectSort::Code),
    ];
    const DEFAULT: Sort<Self> = Sort {
        key: ProjectSort::Deadline,
        descending: false,
    };
}

type Db = <crate::db::DbConnection as diesel::Connection>::Backend;

/// The projects of [`list_projects`] narrowed by `search`, one window of them (all when
/// `None`), soonest deadline first, with the count of all that match. Filtering and
/// counting happen in the database, so a long list costs one page.
pub fn search_projects(
    ctx: &Context,
    actor: &Actor,
    search: &ProjectSearch,
    window: Option<Window>,
) -> Result<Listed<ProjectView>, ServiceError> {
    require_role(actor, &[Role::Agency, Role::Operator, Role::Enterprise])?;
    let now = ctx.now();
    let text = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let q = text(&search.q);
    let tenderee = text(&search.tenderee);
    let mut params = Params::default();
    let deadline = DayRange::read(
        &mut params,
        ("deadline_from", text(&search.deadline_from).as_deref()),
        ("deadline_to", text(&search.deadline_to).as_deref()),
    );
    let sort = Sort::<ProjectSort>::read(&mut params, text(&search.sort).as_deref());
    params.finish(())?;
    let (from, until) = (deadline.start(), deadline.end());
    let filtered = || {
        let mut query: projects::BoxedQuery<'static, Db> = projects::table.into_boxed();
        match actor.role {
            Role::Agency => {
                query = query.filter(projects::agency_id.eq(actor.organization_id.clone()))
            }
            // Open for bidding: an enterprise can still apply for its sections.
            Role::Enterprise => query = query.filter(projects::bid_deadline.gt(now)),
            _ => {}
        }
        if let Some(q) = &q {
            let pattern = contains_pattern(&q.to_lowercase());
            query = query.filter(
                lower(projects::code)
                    .like(pattern.clone())
                    .escape('\\')
                    .or(lower(projects::name).like(pattern).escape('\\')),
            );
        }
        if let Some(name) = &tenderee {
            query = query.filter(
                projects::tenderee_id.eq_any(
                    organizations::table
                        .filter(
                            lower(organizations::name)
                                .like(contains_pattern(&name.to_lowercase()))
                                .escape('\\'),
                        )
                        .select(organizations::id),
                ),
            );
        }
        if let Some(from) = from {
            query = query.filter(projects::bid_deadline.ge(from));
        }
        if let Some(until) = until {
            query = query.filter(projects::bid_deadline.lt(until));
        }
        query
    };
    let mut conn = ctx.conn()?;
    let total: i64 = filtered().count().get_result(&mut conn)?;
    let sorted = match (sort.key, sort.descending) {
        (ProjectSort::Deadline, false) => filtered().order_by(projects::bid_deadline.asc()),
        (ProjectSort::Deadline, true) => filtered().order_by(projects::bid_deadline.desc()),
        (ProjectSort::Code, false) => filtered().order_by(projects::code.asc()),
        (ProjectSort::Code, true) => filtered().order_by(projects::code.desc()),
    };
    // The id is unique: rows with equal keys keep one order across pages.
    let mut query = sorted
        .then_order_by(projects::id.asc())
        .select(Project::as_select());
    if let Some(w) = window {
        query = query.offset(w.offset).limit(w.limit);
    }
    let rows: Vec<Project> = query.load(&mut conn)?;
    let rows = rows
        .into_iter()
        .map(|p| load_view(&mut conn, p))
        .collect::<Result<_, _>>()?;
    Ok(Listed { rows, total })
}

/// One project, if the actor may see it (otherwise it does not exist for them).
pub fn get_project(ctx: &Context, actor: &Actor, id: &str) -> Result<ProjectView, ServiceError> {
    let mut conn = ctx.conn()?;
    let project: Option<Project> = projects::table
        .find(id)
        .select(Project::as_select())
        .first(&mut conn)
        .optional()?;
    visible_view(&mut conn, actor, project)
}

/// The project with this code (项目编号, the trading platform's own), if the actor may
/// see it, as [`get_project`]: a project hidden from the actor and one that does not
/// exist answer alike.
pub fn get_project_by_code(
    ctx: &Context,
    actor: &Actor,
    code: &str,
) -> Result<ProjectView, ServiceError> {
    let mut conn = ctx.conn()?;
    let project: Option<Project> = projects::table
        .filter(projects::code.eq(code.trim()))
        .select(Project::as_select())
        .first(&mut conn)
        .optional()?;
    visible_view(&mut conn, actor, project)
}

/// The view of `project` when the actor may see it; otherwise, as when there is none,
/// not found.
fn visible_view(
    conn: &mut crate::db::DbConnection,
    actor: &Actor,
    project: Option<Project>,
) -> Result<ProjectView, ServiceError> {
    let visible = |project: &Project| match actor.role {
        Role::Operator => true,
        Role::Agency => project.agency_id == actor.organization_id,
        Role::Tenderee => project.tenderee_id == actor.organization_id,
        // Enterprises and issuers pick sections to apply for: the tender itself is
        // public, only who bids on it is secret before opening.
        Role::Enterprise | Role::Issuer => true,
        _ => false,
    };
    match project.filter(visible) {
        Some(project) => load_view(conn, project),
        None => Err(ServiceError::NotFound("project".into())),
    }
}

pub(crate) fn load_view(
    conn: &mut crate::db::DbConnection,
    project: Project,
) -> Result<ProjectView, ServiceError> {
    let tenderee = organizations::table
        .find(&project.tenderee_id)
        .select(Organization::as_select())
        .first(conn)?;
    let agency = organizations::table
        .find(&project.agency_id)
        .select(Organization::as_select())
        .first(conn)?;
    let sections = sections::table
        .filter(sections::project_id.eq(&project.id))
        .order(sections::code.asc())
        .select(Section::as_select())
        .load(conn)?;
    Ok(ProjectView {
        project,
        tenderee,
        agency,
        sections,
    })
}

/// Changes to a project before its bid deadline. A section's bond may be lowered, never
/// raised (a bond already bought would no longer cover it), whoever has applied.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectChanges {
    pub name: Option<String>,
    /// Section code → new bond amount (decimal yuan).
    #[serde(default)]
    pub bond_amounts: std::collections::BTreeMap<String, String>,
}

fn owned_project(
    c: &mut crate::db::DbConnection,
    actor: &Actor,
    id: &str,
) -> Result<Project, ServiceError> {
    require_role(actor, &[Role::Agency])?;
    projects::table
        .find(id)
        .select(Project::as_select())
        .first(c)
        .optional()?
        .filter(|p| p.agency_id == actor.organization_id)
        .ok_or_else(|| ServiceError::NotFound("project".into()))
}

/// Edits a project before its deadline (the agency that runs it).
pub fn update_project(
    ctx: &Context,
    actor: &Actor,
    id: &str,
    changes: ProjectChanges,
) -> Result<ProjectView, ServiceError> {
    let at = ctx.now();
    let mut conn = ctx.conn()?;
    ctx.write_tx(&mut conn, |c| {
        let project = owned_project(c, actor, id)?;
        if tender::deadline_passed(project.bid_deadline, at) {
            return Err(ServiceError::Conflict(
                "the bid deadline has passed; the project can no longer change".into(),
            ));
        }
        if let Some(name) = &changes.name {
            let name = required_text("name", name, 200)?;
            diesel::update(projects::table.find(&project.id))
                .set((projects::name.eq(name), projects::updated_at.eq(at)))
                .execute(c)?;
        }
        for (code, amount) in &changes.bond_amounts {
            let field = format!("bond_amounts.{code}");
            let bond = tender::parse_bond_amount(amount).map_err(|p| invalid(p.at(&field)))?;
            let section: Section = sections::table
                .filter(sections::project_id.eq(&project.id))
                .filter(sections::code.eq(code))
                .select(Section::as_select())
                .first(c)
                .optional()?
                .ok_or_else(|| ServiceError::invalid(&field, "no such section"))?;
            tender::check_bond_cap(bond, section.estimated_price_fen.map(Amount::from_fen))
                .map_err(|p| invalid(p.at(&field)))?;
            // Whether anyone applied must not matter here: before bid opening the agency
            // may not learn which sections have bidders, from an answer or an error. A
            // lower bond leaves every bond already bought sufficient; a higher one would
            // not, so it is refused for everyone alike.
            if bond.fen() > section.bond_amount_fen {
                return Err(bond_raised(&field, &section));
            }
            diesel::update(sections::table.find(&section.id))
                .set(sections::bond_amount_fen.eq(bond.fen()))
                .execute(c)?;
        }
        audit::append(
            c,
            &AuditEvent {
                actor_user_id: Some(&actor.user_id),
                actor_organization_id: Some(&actor.organization_id),
                action: "update_project",
                entity_kind: "project",
                entity_id: &project.id,
                details: serde_json::json!({ "name": changes.name, "bond_amounts": changes.bond_amounts }),
                ..Default::default()
            },
            at,
        )?;
        let fresh = projects::table
            .find(&project.id)
            .select(Project::as_select())
            .first(c)?;
        load_view(c, fresh)
    })
}

/// The refusal of a higher bond for `section`, on `field`.
pub(crate) fn bond_raised(field: &str, section: &Section) -> ServiceError {
    ServiceError::invalid(
        field,
        format!(
            "a section's bond can be lowered but never raised once the tender is published \
             (now {}): bonds bought for it would no longer cover it",
            Amount::from_fen(section.bond_amount_fen)
        ),
    )
}

/// A new bid deadline (延标), as the agency sends it.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Postponement {
    pub bid_deadline: String,
    pub bid_opening_at: String,
}

/// Postpones the bid deadline (and opening). Bonds must then cover the new bid
/// validity period: each guarantee in force is offered an amendment for its issuer to
/// sign. Returns the project only: which bonds were offered an amendment is recorded in
/// the audit log, never told to the agency before bid opening.
pub fn postpone(
    ctx: &Context,
    actor: &Actor,
    id: &str,
    input: Postponement,
) -> Result<ProjectView, ServiceError> {
    let at = ctx.now();
    let deadline = parse_time("bid_deadline", &input.bid_deadline)?;
    let opening = parse_time("bid_opening_at", &input.bid_opening_at)?;
    tender::check_opening(deadline, opening).map_err(invalid)?;
    let mut conn = ctx.conn()?;
    ctx.write_tx(&mut conn, |c| {
        let project = owned_project(c, actor, id)?;
        let fresh = postpone_project(c, ctx, actor, &project, (deadline, opening), at, Via::Api)?;
        load_view(c, fresh)
    })
}

/// Moves `project`'s bid deadline and opening (checked against each other) later, in
/// the caller's write transaction, and offers every guarantee in force an amendment
/// covering the new bid validity period. Audited as `postpone`, with the guarantees
/// offered an amendment. Returns the project as moved.
pub(crate) fn postpone_project(
    c: &mut crate::db::DbConnection,
    ctx: &Context,
    actor: &Actor,
    project: &Project,
    (deadline, opening): (NaiveDateTime, NaiveDateTime),
    at: NaiveDateTime,
    via: Via,
) -> Result<Project, ServiceError> {
    if tender::deadline_passed(project.bid_deadline, at) {
        return Err(ServiceError::Conflict(
            "the bid deadline has passed; it can no longer be postponed".into(),
        ));
    }
    tender::check_postponement(project.bid_deadline, deadline).map_err(invalid)?;
    let changed = diesel::update(
        projects::table
            .filter(projects::id.eq(&project.id))
            .filter(projects::bid_deadline.eq(project.bid_deadline)),
    )
    .set((
        projects::bid_deadline.eq(deadline),
        projects::bid_opening_at.eq(opening),
        projects::updated_at.eq(at),
    ))
    .execute(c)?;
    if changed != 1 {
        return Err(changed_meanwhile());
    }
    let fresh: Project = projects::table
        .find(&project.id)
        .select(Project::as_select())
        .first(c)?;
    let offered = super::guarantees::offer_amendments(c, ctx, &fresh, at)?;
    audit::append(
        c,
        &AuditEvent {
            actor_user_id: Some(&actor.user_id),
            actor_organization_id: Some(&actor.organization_id),
            action: "postpone",
            entity_kind: "project",
            entity_id: &project.id,
            details: via.mark(serde_json::json!({
                "from": project.bid_deadline.to_string(),
                "to": deadline.to_string(),
                "amendments": offered,
            })),
            ..Default::default()
        },
        at,
    )?;
    Ok(fresh)
}

/// A conditional update found the row no longer as read.
pub(crate) fn changed_meanwhile() -> ServiceError {
    ServiceError::Conflict("the project changed meanwhile; try again".into())
}

/// Which projects a list shows, by where they stand in the tender's timetable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectStage {
    /// Bids are still accepted (the deadline is ahead).
    Open,
    /// The deadline passed, bids are not opened yet.
    Sealed,
    /// Bids are opened.
    Opened,
}

impl ProjectStage {
    pub fn parse(value: &str) -> Option<ProjectStage> {
        match value {
            "open" => Some(ProjectStage::Open),
            "sealed" => Some(ProjectStage::Sealed),
            "opened" => Some(ProjectStage::Opened),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProjectStage::Open => "open",
            ProjectStage::Sealed => "sealed",
            ProjectStage::Opened => "opened",
        }
    }

    /// Where a project stands at `at`.
    pub fn of(project: &Project, at: NaiveDateTime) -> ProjectStage {
        if tender::opened(project.bid_opening_at, at) {
            ProjectStage::Opened
        } else if tender::deadline_passed(project.bid_deadline, at) {
            ProjectStage::Sealed
        } else {
            ProjectStage::Open
        }
    }
}

/// The filters of a project list: text in the code or name, and the stage.
#[derive(Debug, Clone, Default)]
pub struct ProjectFilter {
    pub text: Option<String>,
    pub stage: Option<ProjectStage>,
}

/// One page of the projects the actor may list (as [`list_projects`]), filtered, with
/// the number of projects the filters match. Both the page and the count are asked of
/// the database, so a list of thousands of projects costs one page of rows.
pub fn list_projects_page(
    ctx: &Context,
    actor: &Actor,
    filter: &ProjectFilter,
    offset: i64,
    limit: i64,
) -> Result<(Vec<ProjectView>, i64), ServiceError> {
    require_role(actor, &[Role::Agency, Role::Operator])?;
    let at = ctx.now();
    let pattern = filter
        .text
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| format!("%{}%", t.replace(['%', '_'], "")));
    // A boxed query cannot be cloned: the same filters are built for the count and
    // for the page.
    let filtered = || {
        let mut query = projects::table.into_boxed();
        if actor.role == Role::Agency {
            query = query.filter(projects::agency_id.eq(actor.organization_id.clone()));
        }
        if let Some(p) = &pattern {
            query = query.filter(
                projects::code
                    .like(p.clone())
                    .or(projects::name.like(p.clone())),
            );
        }
        match filter.stage {
            Some(ProjectStage::Open) => query = query.filter(projects::bid_deadline.gt(at)),
            Some(ProjectStage::Sealed) => {
                query = query
                    .filter(projects::bid_deadline.le(at))
                    .filter(projects::bid_opening_at.gt(at))
            }
            Some(ProjectStage::Opened) => query = query.filter(projects::bid_opening_at.le(at)),
            None => {}
        }
        query
    };
    let mut conn = ctx.conn()?;
    let total: i64 = filtered().count().get_result(&mut conn)?;
    let rows: Vec<Project> = filtered()
        .order((projects::bid_deadline.asc(), projects::code.asc()))
        .offset(offset.max(0))
        .limit(limit.clamp(1, 500))
        .select(Project::as_select())
        .load(&mut conn)?;
    let views = rows
        .into_iter()
        .map(|p| load_view(&mut conn, p))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((views, total))
}

/// What an agency's home counts: its projects whose bids open in the next seven days,
/// the bonds of its opened projects still to accept, and the claims it filed that
/// await the issuer's decision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgencyCounts {
    pub opening_this_week: i64,
    pub bonds_to_accept: i64,
    pub claims_open: i64,
}

pub fn agency_counts(ctx: &Context, actor: &Actor) -> Result<AgencyCounts, ServiceError> {
    use crate::db::schema::{claims, guarantees};
    use crate::domain::lifecycle::{ClaimState, GuaranteeState};
    require_role(actor, &[Role::Agency])?;
    let at = ctx.now();
    let mut conn = ctx.conn()?;
    let mine = actor.organization_id.clone();
    let opening_this_week: i64 = projects::table
        .filter(projects::agency_id.eq(&mine))
        .filter(projects::bid_opening_at.gt(at))
        .filter(projects::bid_opening_at.le(at + chrono::Duration::days(7)))
        .count()
        .get_result(&mut conn)?;
    // Only bonds of opened projects: before opening the agency may not learn that a
    // section has bidders, not even as a count.
    let bonds_to_accept: i64 = guarantees::table
        .inner_join(sections::table.inner_join(projects::table))
        .filter(projects::agency_id.eq(&mine))
        .filter(projects::bid_opening_at.le(at))
        .filter(guarantees::status.eq(GuaranteeState::Issued))
        .count()
        .get_result(&mut conn)?;
    let claims_open: i64 = claims::table
        .inner_join(guarantees::table.inner_join(sections::table.inner_join(projects::table)))
        .filter(projects::agency_id.eq(&mine))
        .filter(claims::status.eq_any([ClaimState::Filed, ClaimState::Extending]))
        .count()
        .get_result(&mut conn)?;
    Ok(AgencyCounts {
        opening_this_week,
        bonds_to_accept,
        claims_open,
    })
}
