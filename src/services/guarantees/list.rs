//! The list of guarantees an actor may see, narrowed, sorted and paged in the database:
//! one description of its filters for the API and the pages.

use diesel::prelude::*;

use crate::db::any_of::any_of;
use crate::db::models::Guarantee;
use crate::db::schema::{guarantees, organizations, projects, sections};
use crate::db::DbConnection;
use crate::domain::lifecycle::GuaranteeState;
use crate::domain::party::Role;
use crate::services::listing::{
    parse_each, prefix_pattern, DayRange, Params, Problems, Sort, SortKey,
};
use crate::services::views::{guarantee_views, GuaranteeView};
use crate::services::{require_role, Actor, Context, Listed, ServiceError, Window};

/// A guarantee list's filters as typed: the API's query parameters and a page's form.
/// Every one is optional; blank is the same as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GuaranteeQuery {
    /// States, repeated or comma-separated: `issued`, `accepted`, `claimed`, `released`,
    /// `paid`, `cancelled`, `revoked`, `expired`.
    #[param(required = false, style = Form, explode = true)]
    pub state: Vec<String>,
    /// The guarantee number, or its beginning.
    pub number: Option<String>,
    /// The project, by id or by project code.
    pub project: Option<String>,
    /// The section, by id.
    pub section: Option<String>,
    /// The issuer, by organization id or unified social credit code.
    pub issuer: Option<String>,
    /// The enterprise (bidder), by organization id or unified social credit code.
    pub enterprise: Option<String>,
    /// Issued on or after this day (China date, `YYYY-MM-DD`).
    pub from: Option<String>,
    /// Issued on or before this day (China date, `YYYY-MM-DD`).
    pub to: Option<String>,
    /// `issued_at`, `number`, `amount` or `expires_at`; a leading `-` sorts descending.
    /// Default `-issued_at` (newest first).
    pub sort: Option<String>,
}

/// What a guarantee is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuaranteeSort {
    IssuedAt,
    Number,
    Amount,
    ExpiresAt,
}

impl SortKey for GuaranteeSort {
    const KEYS: &'static [(&'static str, Self)] = &[
        ("issued_at", GuaranteeSort::IssuedAt),
        ("number", GuaranteeSort::Number),
        ("amount", GuaranteeSort::Amount),
        ("expires_at", GuaranteeSort::ExpiresAt),
    ];
    const DEFAULT: Sort<Self> = Sort {
        key: GuaranteeSort::IssuedAt,
        descending: true,
    };
}

/// A guarantee list's filters, checked. They only narrow what the actor may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuaranteeFilter {
    pub states: Vec<GuaranteeState>,
    /// Upper case: numbers are.
    pub number: Option<String>,
    pub project: Option<String>,
    pub section: Option<String>,
    pub issuer: Option<String>,
    pub enterprise: Option<String>,
    pub issued: DayRange,
    pub sort: Sort<GuaranteeSort>,
}

impl Default for GuaranteeFilter {
    fn default() -> Self {
        GuaranteeFilter {
            states: Vec::new(),
            number: None,
            project: None,
            section: None,
            issuer: None,
            enterprise: None,
            issued: DayRange::default(),
            sort: GuaranteeSort::DEFAULT,
        }
    }
}

impl GuaranteeFilter {
    /// Reads the filters from a list's parameters: what was typed (to show again) and
    /// the checked filter, or every problem found (unknown names included).
    pub fn read(mut params: Params) -> (GuaranteeQuery, Result<GuaranteeFilter, Problems>) {
        let typed = GuaranteeQuery {
            state: params.many("state"),
            number: params.one("number"),
            project: params.one("project"),
            section: params.one("section"),
            issuer: params.one("issuer"),
            enterprise: params.one("enterprise"),
            from: params.one("from"),
            to: params.one("to"),
            sort: params.one("sort"),
        };
        let filter = GuaranteeFilter {
            states: parse_each(&mut params, "state", &typed.state),
            number: typed.number.as_deref().map(str::to_uppercase),
            project: typed.project.clone(),
            section: typed.section.clone(),
            issuer: typed.issuer.clone(),
            enterprise: typed.enterprise.clone(),
            issued: DayRange::read(
                &mut params,
                ("from", typed.from.as_deref()),
                ("to", typed.to.as_deref()),
            ),
            sort: Sort::read(&mut params, typed.sort.as_deref()),
        };
        let checked = params.finish(filter);
        (typed, checked)
    }

    /// Only these states, nothing else narrowed: what a home page counts.
    pub fn in_states(states: &[GuaranteeState]) -> GuaranteeFilter {
        GuaranteeFilter {
            states: states.to_vec(),
            ..GuaranteeFilter::default()
        }
    }
}

type Db = <DbConnection as diesel::Connection>::Backend;

/// The guarantees the actor may see (an enterprise those it holds, an issuer those it
/// issued, the operator all) that `filter` keeps, one window of them in its order with
/// the count of all: both asked of the database.
pub fn list(
    ctx: &Context,
    actor: &Actor,
    filter: &GuaranteeFilter,
    window: Window,
) -> Result<Listed<GuaranteeView>, ServiceError> {
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
        let mut query: guarantees::BoxedQuery<'static, Db> = guarantees::table.into_boxed();
        match actor.role {
            Role::Enterprise => {
                query = query.filter(guarantees::enterprise_id.eq(actor.organization_id.clone()))
            }
            Role::Issuer => {
                query = query.filter(guarantees::issuer_id.eq(actor.organization_id.clone()))
            }
            _ => {}
        }
        if !filter.states.is_empty() {
            query = query.filter(any_of(guarantees::status, filter.states.clone()));
        }
        if let Some(number) = &filter.number {
            query = query.filter(guarantees::number.like(prefix_pattern(number)).escape('\\'));
        }
        if let Some(project) = &filter.project {
            query = query.filter(
                guarantees::section_id.eq_any(
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
            query = query.filter(guarantees::section_id.eq(section.clone()));
        }
        if let Some(issuer) = &filter.issuer {
            query = query.filter(guarantees::issuer_id.eq_any(organizations_named(issuer)));
        }
        if let Some(enterprise) = &filter.enterprise {
            query = query.filter(guarantees::enterprise_id.eq_any(organizations_named(enterprise)));
        }
        if let Some(start) = filter.issued.start() {
            query = query.filter(guarantees::issued_at.ge(start));
        }
        if let Some(end) = filter.issued.end() {
            query = query.filter(guarantees::issued_at.lt(end));
        }
        query
    };
    let mut conn = ctx.conn()?;
    let total: i64 = filtered().count().get_result(&mut conn)?;
    let sorted = match (filter.sort.key, filter.sort.descending) {
        (GuaranteeSort::IssuedAt, false) => filtered().order_by(guarantees::issued_at.asc()),
        (GuaranteeSort::IssuedAt, true) => filtered().order_by(guarantees::issued_at.desc()),
        (GuaranteeSort::Number, false) => filtered().order_by(guarantees::number.asc()),
        (GuaranteeSort::Number, true) => filtered().order_by(guarantees::number.desc()),
        (GuaranteeSort::Amount, false) => filtered().order_by(guarantees::amount_fen.asc()),
        (GuaranteeSort::Amount, true) => filtered().order_by(guarantees::amount_fen.desc()),
        (GuaranteeSort::ExpiresAt, false) => filtered().order_by(guarantees::valid_until.asc()),
        (GuaranteeSort::ExpiresAt, true) => filtered().order_by(guarantees::valid_until.desc()),
    };
    // The number is unique: rows with equal keys keep one order across pages.
    let rows: Vec<Guarantee> = sorted
        .then_order_by(guarantees::number.asc())
        .offset(window.offset)
        .limit(window.limit)
        .select(Guarantee::as_select())
        .load(&mut conn)?;
    let rows = guarantee_views(&mut conn, rows)?;
    Ok(Listed { rows, total })
}
