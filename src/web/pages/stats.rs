//! The public statistics page: the exchange's figures, charts drawn on the server, and
//! the same figures as tables beside them (also served as JSON at `/api/v1/stats`).

use std::sync::{Arc, Mutex};

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::errors::PageError;
use super::i18n::{Lang, Tr};
use super::session::visitor_of;
use super::{charts, page, Chrome, Nav};
use crate::domain::money::Amount;
use crate::services::stats::{self, ExchangeStats, WaiverFigures};
use crate::services::{catalogue, ServiceError};
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/stats", web::get().to(show));
}

struct Row {
    label: String,
    issued: i64,
    amount: String,
}

/// A row of the deposit-free tables.
struct WaiverRow {
    label: String,
    providers: i64,
    usages: i64,
    waived: String,
    defaults: i64,
}

/// The charts of one computation of the figures, in one language.
struct Charts {
    months: String,
    kinds: String,
    domains: String,
    waiver_months: String,
}

#[derive(Template)]
#[template(path = "pages/stats.html")]
struct StatsPage {
    chrome: Chrome,
    issued: i64,
    enterprises: i64,
    projects: i64,
    amount: String,
    months: Vec<Row>,
    kinds: Vec<Row>,
    month_chart: String,
    kind_chart: String,
    usages: i64,
    subjects_served: i64,
    providers: i64,
    waived: String,
    defaults: i64,
    domains: Vec<WaiverRow>,
    matters: Vec<WaiverRow>,
    waiver_months: Vec<WaiverRow>,
    domain_chart: String,
    waiver_month_chart: String,
}

async fn show(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let ctx = state.ctx.clone();
    let (figures, catalogue) = web::block(move || {
        let figures = stats::exchange_stats(&ctx)?;
        let catalogue = matters_of(&ctx, &figures)?;
        Ok::<_, ServiceError>((figures, catalogue))
    })
    .await??;
    let visitor = visitor_of(&req).await?;
    let tr = Tr::new(Lang::of(&req));
    let chrome = Chrome::new(&req, visitor.as_ref(), &tr.t("stats-title"), Nav::Role);
    let yuan = |fen: i64| Amount::from_fen(fen).grouped();
    let months: Vec<Row> = figures
        .by_month
        .iter()
        .map(|m| Row {
            label: m.month.clone(),
            issued: m.guarantees_issued,
            amount: yuan(m.bond_amount_fen),
        })
        .collect();
    let kinds: Vec<Row> = figures
        .by_kind
        .iter()
        .map(|k| Row {
            label: tr.t(&format!("kind-{}", k.kind)),
            issued: k.guarantees_issued,
            amount: yuan(k.bond_amount_fen),
        })
        .collect();
    let free = &figures.deposit_free;
    let waiver_row = |label: String, providers: i64, f: &WaiverFigures| WaiverRow {
        label,
        providers,
        usages: f.usages,
        waived: yuan(f.waived_fen),
        defaults: f.defaults,
    };
    let domains: Vec<WaiverRow> = free
        .by_domain
        .iter()
        .map(|d| WaiverRow {
            label: tr.t(&format!("operator-provider-kind-{}", d.kind)),
            providers: d.providers,
            usages: d.usages,
            waived: yuan(d.waived_fen),
            defaults: d.defaults,
        })
        .collect();
    let matters: Vec<WaiverRow> = free
        .by_matter
        .iter()
        .map(|m| {
            let name = catalogue.iter().find(|e| e.code == m.key).map_or_else(
                || m.key.clone(),
                |e| match tr.lang {
                    Lang::Zh => e.matter.name_zh.clone(),
                    Lang::En => e.matter.name_en.clone(),
                },
            );
            waiver_row(name, 0, m)
        })
        .collect();
    let waiver_months: Vec<WaiverRow> = free
        .by_month
        .iter()
        .map(|m| waiver_row(m.key.clone(), 0, m))
        .collect();
    let charts = charts_of(&figures, tr, &months, &kinds, &domains)?;
    let html = StatsPage {
        chrome: chrome.clone(),
        issued: figures.guarantees_issued,
        enterprises: figures.enterprises_served,
        projects: figures.projects_served,
        amount: yuan(figures.bond_amount_fen),
        months,
        kinds,
        month_chart: charts.months.clone(),
        kind_chart: charts.kinds.clone(),
        usages: free.usages,
        subjects_served: free.subjects_served,
        providers: free.providers,
        waived: yuan(free.waived_fen),
        defaults: free.defaults,
        domains,
        matters,
        waiver_months,
        domain_chart: charts.domains.clone(),
        waiver_month_chart: charts.waiver_months.clone(),
    }
    .render()?;
    Ok(page(&chrome, html))
}

/// The catalogue the figures' matters are named from, read once for each computation of
/// the figures (a renamed matter shows when the figures are next computed).
#[allow(clippy::type_complexity)]
static NAMED: Mutex<Option<(Arc<ExchangeStats>, Arc<Vec<catalogue::MatterEntry>>)>> =
    Mutex::new(None);

fn matters_of(
    ctx: &crate::services::Context,
    figures: &Arc<ExchangeStats>,
) -> Result<Arc<Vec<catalogue::MatterEntry>>, ServiceError> {
    if let Some((f, named)) = NAMED.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
        if Arc::ptr_eq(f, figures) {
            return Ok(named.clone());
        }
    }
    let named = Arc::new(catalogue::list_matters(ctx)?);
    *NAMED.lock().unwrap_or_else(|p| p.into_inner()) = Some((figures.clone(), named.clone()));
    Ok(named)
}

/// The two charts of the figures in one language, drawn once for each computation of the
/// figures (they are kept a few seconds, see [`stats::Memo`]) and language.
#[allow(clippy::type_complexity)]
static DRAWN: Mutex<Vec<(Arc<ExchangeStats>, Lang, Arc<Charts>)>> = Mutex::new(Vec::new());

fn charts_of(
    figures: &Arc<ExchangeStats>,
    tr: Tr,
    months: &[Row],
    kinds: &[Row],
    domains: &[WaiverRow],
) -> Result<Arc<Charts>, PageError> {
    let drawn_before = DRAWN
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .find(|(f, lang, _)| Arc::ptr_eq(f, figures) && *lang == tr.lang)
        .map(|(_, _, charts)| charts.clone());
    if let Some(charts) = drawn_before {
        return Ok(charts);
    }
    let chart_failed = |e: String| PageError::Service(ServiceError::Internal(anyhow::anyhow!(e)));
    let month_chart = charts::bars(
        &months.iter().map(|m| m.label.clone()).collect::<Vec<_>>(),
        &figures
            .by_month
            .iter()
            .map(|m| m.guarantees_issued)
            .collect::<Vec<_>>(),
        &tr.t("stats-axis-guarantees"),
    )
    .map_err(chart_failed)?;
    let kind_chart = charts::bars(
        &kinds.iter().map(|k| k.label.clone()).collect::<Vec<_>>(),
        &figures
            .by_kind
            .iter()
            .map(|k| k.bond_amount_fen / 100)
            .collect::<Vec<_>>(),
        &tr.t("stats-axis-yuan"),
    )
    .map_err(chart_failed)?;
    let free = &figures.deposit_free;
    let domain_chart = charts::bars(
        &domains.iter().map(|d| d.label.clone()).collect::<Vec<_>>(),
        &free
            .by_domain
            .iter()
            .map(|d| d.waived_fen / 100)
            .collect::<Vec<_>>(),
        &tr.t("stats-axis-waived"),
    )
    .map_err(chart_failed)?;
    let waiver_month_chart = charts::bars(
        &free
            .by_month
            .iter()
            .map(|m| m.key.clone())
            .collect::<Vec<_>>(),
        &free.by_month.iter().map(|m| m.usages).collect::<Vec<_>>(),
        &tr.t("stats-axis-usages"),
    )
    .map_err(chart_failed)?;
    let charts = Arc::new(Charts {
        months: month_chart,
        kinds: kind_chart,
        domains: domain_chart,
        waiver_months: waiver_month_chart,
    });
    let mut drawn = DRAWN.lock().unwrap_or_else(|p| p.into_inner());
    // Only the current figures' charts are worth keeping.
    drawn.retain(|(f, _, _)| Arc::ptr_eq(f, figures));
    drawn.push((figures.clone(), tr.lang, charts.clone()));
    Ok(charts)
}
