//! Public statistics of the exchange, like the figures the city reports: guarantees
//! issued, enterprises and projects served, and the bid bonds they took out of cash,
//! by month (China time) and by issuer kind; and the deposit-free city's: deposits waived
//! on credit, by domain, matter and month. Aggregates only: nothing names a bidder or a
//! resident.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{Duration, NaiveDateTime};

use diesel::dsl::count;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::{Context, ServiceError};
use crate::db::schema::{credit_waivers, guarantees, organizations, sections};
use crate::db::DbConnection;
use crate::domain::party::{IssuerKind, ProviderKind};

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
    /// The deposit-free city's figures (无押金城市): deposits waived on credit.
    pub deposit_free: DepositFreeStats,
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

/// Deposits waived on credit rights codes: how often, for how many people and
/// enterprises, how much, and how many ended in a default.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, utoipa::ToSchema)]
pub struct DepositFreeStats {
    /// Waivers granted (人次: one per stay, admission or loan).
    pub usages: i64,
    /// Persons and enterprises served (each once).
    pub subjects_served: i64,
    /// Providers that waived at least one deposit.
    pub providers: i64,
    /// The deposits not taken, in fen.
    pub waived_fen: i64,
    /// Waivers that ended in a default (paid afterwards or not).
    pub defaults: i64,
    /// By provider kind (domain): hospital, hotel, library, parking, apartment (each
    /// listed, even at zero).
    pub by_domain: Vec<DomainFigures>,
    /// By matter, each credit-substituted matter that had a waiver.
    pub by_matter: Vec<WaiverFigures>,
    /// By month granted (China time), oldest first; `key` is `YYYY-MM`.
    pub by_month: Vec<WaiverFigures>,
}

/// One group's waiver figures.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, utoipa::ToSchema)]
pub struct WaiverFigures {
    /// The matter's code, or the month.
    pub key: String,
    pub usages: i64,
    pub waived_fen: i64,
    pub defaults: i64,
}

/// One domain's figures, as the city reports them ("104 hospitals, 309,100 patients").
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, utoipa::ToSchema)]
pub struct DomainFigures {
    /// The provider kind.
    pub kind: String,
    pub providers: i64,
    pub usages: i64,
    pub waived_fen: i64,
    pub defaults: i64,
}

#[derive(QueryableByName)]
struct WaiverBucket {
    #[diesel(sql_type = Text)]
    month: String,
    #[diesel(sql_type = Text)]
    matter: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = BigInt)]
    usages: i64,
    #[diesel(sql_type = BigInt)]
    waived_fen: i64,
    #[diesel(sql_type = BigInt)]
    defaults: i64,
}

/// Waivers by month granted, matter and provider kind, grouped by the database.
fn waiver_buckets(conn: &mut DbConnection) -> QueryResult<Vec<WaiverBucket>> {
    const REST: &str = "w.matter AS matter, COALESCE(o.provider_kind, '') AS kind, \
        COUNT(*) AS usages, CAST(SUM(w.amount_fen) AS BIGINT) AS waived_fen, \
        CAST(SUM(CASE WHEN w.state IN ('defaulted', 'repaid') THEN 1 ELSE 0 END) AS BIGINT) \
        AS defaults \
        FROM credit_waivers w JOIN organizations o ON o.id = w.provider_id \
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3";
    match conn {
        DbConnection::Sqlite(c) => diesel::sql_query(format!(
            "SELECT strftime('%Y-%m', w.granted_at, '+8 hours') AS month, {REST}"
        ))
        .load(c),
        DbConnection::Pg(c) => diesel::sql_query(format!(
            "SELECT to_char(w.granted_at + interval '8 hours', 'YYYY-MM') AS month, {REST}"
        ))
        .load(c),
    }
}

fn add(into: &mut WaiverFigures, b: &WaiverBucket) {
    into.usages += b.usages;
    into.waived_fen += b.waived_fen;
    into.defaults += b.defaults;
}

fn deposit_free(conn: &mut DbConnection) -> Result<DepositFreeStats, ServiceError> {
    let subjects_served: i64 = credit_waivers::table
        .select(count(credit_waivers::subject_id).aggregate_distinct())
        .first(conn)?;
    let providers_by_kind: Vec<(Option<ProviderKind>, i64)> = credit_waivers::table
        .inner_join(organizations::table)
        .group_by(organizations::provider_kind)
        .select((
            organizations::provider_kind,
            count(credit_waivers::provider_id).aggregate_distinct(),
        ))
        .load(conn)?;
    let mut months: BTreeMap<String, WaiverFigures> = BTreeMap::new();
    let mut matters: BTreeMap<String, WaiverFigures> = BTreeMap::new();
    let mut kinds: BTreeMap<String, WaiverFigures> = BTreeMap::new();
    for b in waiver_buckets(conn)? {
        add(months.entry(b.month.clone()).or_default(), &b);
        add(matters.entry(b.matter.clone()).or_default(), &b);
        add(kinds.entry(b.kind.clone()).or_default(), &b);
    }
    let keyed = |map: BTreeMap<String, WaiverFigures>| -> Vec<WaiverFigures> {
        map.into_iter()
            .map(|(key, f)| WaiverFigures { key, ..f })
            .collect()
    };
    let by_domain: Vec<DomainFigures> = ProviderKind::ALL
        .iter()
        .map(|k| {
            let f = kinds.get(k.as_str()).cloned().unwrap_or_default();
            DomainFigures {
                kind: k.as_str().to_owned(),
                providers: providers_by_kind
                    .iter()
                    .find(|(kind, _)| *kind == Some(*k))
                    .map_or(0, |(_, n)| *n),
                usages: f.usages,
                waived_fen: f.waived_fen,
                defaults: f.defaults,
            }
        })
        .collect();
    Ok(DepositFreeStats {
        usages: by_domain.iter().map(|d| d.usages).sum(),
        subjects_served,
        providers: by_domain.iter().map(|d| d.providers).sum(),
        waived_fen: by_domain.iter().map(|d| d.waived_fen).sum(),
        defaults: by_domain.iter().map(|d| d.defaults).sum(),
        by_domain,
        by_matter: keyed(matters),
        by_month: keyed(months),
    })
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
        deposit_free: deposit_free(&mut conn)?,
        as_of: at.and_utc(),
    })
}
