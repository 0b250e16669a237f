//! The credit office's dashboard (信用办工作台): where the archive and the deposit-free
//! city stand, in counts read from the tables' indexes and the subjects' own rows
//! (never by scoring anything at read time).

use diesel::prelude::*;

use super::catalogue::require_credit_office;
use super::{Actor, Context, ServiceError};
use crate::db::schema::{credit_disputes, credit_tallies, credit_waivers};
use crate::domain::catalogue::CreditLevel;
use crate::domain::waiver::WaiverState;

/// The counts on the office's dashboard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dashboard {
    pub subjects: i64,
    /// Subjects per level, best first (every level listed).
    pub by_level: Vec<(CreditLevel, i64)>,
    /// On the serious-dishonesty list (严重失信).
    pub dishonest: i64,
    pub records_in_force: i64,
    pub disputes_open: i64,
    /// Open disputes past their deadline.
    pub disputes_overdue: i64,
    /// Waivers holding a line: granted and not billed, billed, defaulted.
    pub waivers_open: i64,
    pub waivers_billed: i64,
    /// Billed and past the repayment window.
    pub waivers_overdue: i64,
    pub waivers_defaulted: i64,
}

/// Folds the rows PostgreSQL's triggers appended to the credit office's counters into
/// one row per figure (SQLite's triggers keep one row per figure already). Safe to run
/// on several instances at once.
pub fn fold_tallies(c: &mut crate::db::DbConnection) -> Result<(), ServiceError> {
    if let crate::db::DbConnection::Pg(pg) = c {
        diesel::sql_query("SELECT credit_tallies_fold()").execute(pg)?;
    }
    Ok(())
}

/// The credit office's figures: the archive's from its counters, the rest counted.
pub fn dashboard(ctx: &Context, actor: &Actor) -> Result<Dashboard, ServiceError> {
    require_credit_office(actor)?;
    let mut conn = ctx.conn()?;
    let c = &mut *conn;
    let now = ctx.now();
    // Counters the database keeps (migration 45), not scans of the archive: a figure is
    // the sum of its rows.
    fold_tallies(c)?;
    let mut tallies: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    for (name, n) in credit_tallies::table
        .select((credit_tallies::name, credit_tallies::n))
        .load::<(String, i64)>(c)?
    {
        *tallies.entry(name).or_default() += n;
    }
    let tally = |name: &str| tallies.get(name).copied().unwrap_or(0);
    let by_level: Vec<(CreditLevel, i64)> = CreditLevel::ALL
        .iter()
        .map(|l| (*l, tally(&format!("level:{}", l.as_str()))))
        .collect();
    let waivers_in = |c: &mut crate::db::DbConnection, state: WaiverState| {
        credit_waivers::table
            .filter(credit_waivers::state.eq(state))
            .count()
            .get_result::<i64>(c)
    };
    Ok(Dashboard {
        subjects: by_level.iter().map(|(_, n)| n).sum(),
        by_level,
        dishonest: tally("dishonest"),
        records_in_force: tally("records_in_force"),
        disputes_open: credit_disputes::table
            .filter(credit_disputes::status.eq("filed"))
            .count()
            .get_result(c)?,
        disputes_overdue: credit_disputes::table
            .filter(credit_disputes::status.eq("filed"))
            .filter(credit_disputes::decide_by.lt(now))
            .count()
            .get_result(c)?,
        waivers_open: waivers_in(c, WaiverState::Open)?,
        waivers_billed: waivers_in(c, WaiverState::Billed)?,
        waivers_overdue: credit_waivers::table
            .filter(credit_waivers::state.eq(WaiverState::Billed))
            .filter(credit_waivers::due_at.lt(now))
            .count()
            .get_result(c)?,
        waivers_defaulted: waivers_in(c, WaiverState::Defaulted)?,
    })
}
