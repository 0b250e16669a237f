//! Public statistics of the exchange, like the figures the city reports: guarantees
//! issued, enterprises and projects served, and the bid bonds they took out of cash,
//! by month (China time) and by issuer kind. Aggregates only: nothing names a bidder.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{Duration, NaiveDateTime};

use diesel::dsl::count;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::{Context, ServiceError};
use crate::db::schema::{guarantees, sections};
use crate::db::DbConnection;
use crate::domain::party::IssuerKind;

/// The exchange's figures.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ExchangeStats {
    /// Guarantees issued, whatever became of them since (each replaced a cash bond).
    pub guarantees_issued: i64,
    /// Enterprises that bid with a guarantee instead of cash.
    pub enterprises_served: i64,
    /// Tender projects with at least one such bid.
    pub projects_served: i64,
    /// The bid bonds so guaranteed, in fen: cash that stayed with the enterprises.
    pub bond_amount_fen: i64,
    /// By month of issue (China time), oldest first.
    pub by_month: Vec<MonthFigures>,
    /// By issuer kind: bank, insurer, guarantor (each listed, even at zero).
    pub by_kind: Vec<KindFigures>,
    /// When these figures were computed (UTC): they are served as computed for a few
    /// seconds (the `stats_cache_seconds` setting).
    #[schema(value_type = String, format = DateTime)]
    pub as_of: chrono::DateTime<chrono::Utc>,
}

/// One month's figures.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct MonthFigures {
    /// `YYYY-MM`, China time.
    pub month: String,
    pub guarantees_issued: i64,
    pub bond_amount_fen: i64,
}

/// One issuer kind's figures.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct KindFigures {
    /// `bank`, `insurer` or `guarantor`.
    pub kind: String,
    pub guarantees_issued: i64,
    pub bond_amount_fen: i64,
}

#[derive(QueryableByName)]
struct Bucket {
    #[diesel(sql_type = Text)]
    month: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = BigInt)]
    issued: i64,
    #[diesel(sql_type = BigInt)]
    amount_fen: i64,
}

/// Counts by month of issue and issuer kind, grouped by the database: month arithmetic
/// is the one thing the two backends spell differently.
fn buckets(conn: &mut DbConnection) -> QueryResult<Vec<Bucket>> {
    const SQLITE: &str = "SELECT strftime('%Y-%m', g.issued_at, '+8 hours') AS month, \
        a.kind AS kind, COUNT(*) AS issued, CAST(SUM(g.amount_fen) AS BIGINT) AS amount_fen \
        FROM guarantees g JOIN applications a ON a.id = g.application_id \
        GROUP BY 1, 2 ORDER BY 1, 2";
    const POSTGRES: &str = "SELECT to_char(g.issued_at + interval '8 hours', 'YYYY-MM') AS month, \
        a.kind AS kind, COUNT(*) AS issued, CAST(SUM(g.amount_fen) AS BIGINT) AS amount_fen \
        FROM guarantees g JOIN applications a ON a.id = g.application_id \
        GROUP BY 1, 2 ORDER BY 1, 2";
    match conn {
        DbConnection::Sqlite(c) => diesel::sql_query(SQLITE).load(c),
        DbConnection::Pg(c) => diesel::sql_query(POSTGRES).load(c),
    }
}

/// The figures as last computed, kept for a short while: the statistics are public and
/// read far more often than they change, and computing them scans every guarantee.
#[derive(Debug)]
pub struct Memo {
    ttl: Duration,
    held: Mutex<Option<Arc<ExchangeStats>>>,
}

impl Memo {
    /// Figures are computed again once they are `ttl` old (every time when zero).
    pub fn new(ttl: Duration) -> Memo {
        Memo {
            ttl,
            held: Mutex::new(None),
        }
    }

    fn fresh(&self, at: NaiveDateTime) -> Option<Arc<ExchangeStats>> {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.as_ref()
            .filter(|s| {
                let age = at - s.as_of.naive_utc();
                age >= Duration::zero() && age < self.ttl
            })
            .cloned()
    }

    fn keep(&self, figures: Arc<ExchangeStats>) {
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = Some(figures);
    }
}

/// The exchange's figures (public), as computed at most the memo's lifetime ago on this
/// instance. Two requests that find them stale at once may both compute them; either
/// result is right.
pub fn exchange_stats(ctx: &Context) -> Result<Arc<ExchangeStats>, ServiceError> {
    let at = ctx.now();
    if let Some(figures) = ctx.stats.fresh(at) {
        return Ok(figures);
    }
    let figures = Arc::new(compute(ctx, at)?);
    ctx.stats.keep(figures.clone());
    Ok(figures)
}

fn compute(ctx: &Context, at: NaiveDateTime) -> Result<ExchangeStats, ServiceError> {
    let mut conn = ctx.conn()?;
    let enterprises_served: i64 = guarantees::table
        .select(count(guarantees::enterprise_id).aggregate_distinct())
        .first(&mut conn)?;
    let projects_served: i64 = guarantees::table
        .inner_join(sections::table)
        .select(count(sections::project_id).aggregate_distinct())
        .first(&mut conn)?;
    let mut months: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut kinds: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for b in buckets(&mut conn)? {
        let m = months.entry(b.month).or_default();
        m.0 += b.issued;
        m.1 += b.amount_fen;
        let k = kinds.entry(b.kind).or_default();
        k.0 += b.issued;
        k.1 += b.amount_fen;
    }
    let by_kind: Vec<KindFigures> = [IssuerKind::Bank, IssuerKind::Insurer, IssuerKind::Guarantor]
        .iter()
        .map(|k| {
            let (issued, amount) = kinds.get(k.as_str()).copied().unwrap_or_default();
            KindFigures {
                kind: k.as_str().to_owned(),
                guarantees_issued: issued,
                bond_amount_fen: amount,
            }
        })
        .collect();
    Ok(ExchangeStats {
        guarantees_issued: by_kind.iter().map(|k| k.guarantees_issued).sum(),
        bond_amount_fen: by_kind.iter().map(|k| k.bond_amount_fen).sum(),
        enterprises_served,
        projects_served,
        by_month: months
            .into_iter()
            .map(|(month, (issued, amount))| MonthFigures {
                month,
                guarantees_issued: issued,
                bond_amount_fen: amount,
            })
            .collect(),
        by_kind,
        as_of: at.and_utc(),
    })
}
