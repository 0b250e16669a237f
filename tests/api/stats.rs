//! The public statistics: the same figures as JSON and as a page with its charts.

use serde_json::Value;

use crate::fixtures::{NewTender, TestPki};
use crate::helpers::{TestApp, TestBackend};

async fn the_figures_count_what_was_issued_by_month_and_kind(app: TestApp) {
    let empty: Value = app.public_get("/api/v1/stats").await;
    assert_eq!(empty["guarantees_issued"], 0, "{empty}");
    assert_eq!(
        empty["by_kind"].as_array().map(Vec::len),
        Some(3),
        "{empty}"
    );

    let _pki = TestPki::set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-STATS-1", 3))
        .await;
    let one = app.issued_bond("enterprise1", &tender.sections[0]).await;
    let two = app.issued_bond("enterprise2", &tender.sections[1]).await;
    let figures: Value = app.public_get("/api/v1/stats").await;
    assert_eq!(figures["guarantees_issued"], 2, "{figures}");
    assert_eq!(figures["enterprises_served"], 2, "{figures}");
    assert_eq!(figures["projects_served"], 1, "{figures}");
    // Both sections' bonds, in fen (the amounts are yuan with two decimals).
    let fen = |yuan: &str| -> i64 { yuan.replace('.', "").parse().expect("an amount") };
    let amount: i64 = tender.sections.iter().map(|s| fen(&s.bond_amount)).sum();
    assert_eq!(figures["bond_amount_fen"], amount, "{figures}");
    assert_ne!(one.number, two.number);
    let bank = &figures["by_kind"][0];
    assert_eq!(
        (bank["kind"].as_str(), bank["guarantees_issued"].as_i64()),
        (Some("bank"), Some(2))
    );
    assert_eq!(figures["by_kind"][1]["guarantees_issued"], 0);
    let month = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("+08:00"))
        .format("%Y-%m")
        .to_string();
    assert_eq!(figures["by_month"][0]["month"], month.as_str(), "{figures}");
    assert_eq!(figures["by_month"][0]["guarantees_issued"], 2);

    let page = app
        .api
        .get(app.url("/stats"))
        .header("accept", "text/html")
        .header("accept-language", "en")
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(
        html.contains("<h1>Electronic guarantee statistics</h1>")
            && html.contains("Deposit-free city"),
        "{html}"
    );
    assert_eq!(
        html.matches("<svg").count(),
        4,
        "two charts of guarantees, two of deposits waived"
    );
    assert!(html.contains(&month), "the month is in the table");
    assert!(
        !html.contains("style="),
        "no inline style (the CSP forbids it)"
    );
}

/// The figures are kept for `stats_cache_seconds` and then computed again: a bond issued
/// meanwhile shows once they are that old, by the exchange's clock.
async fn the_figures_are_kept_a_few_seconds_then_computed_again(backend: TestBackend) {
    let app = backend.spawn_with(|s| s.stats_cache_seconds = 60).await;
    let first: Value = app.public_get("/api/v1/stats").await;
    assert_eq!(first["guarantees_issued"], 0, "{first}");
    let _pki = TestPki::set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-STATS-2", 3))
        .await;
    app.issued_bond("enterprise1", &tender.sections[0]).await;
    let kept: Value = app.public_get("/api/v1/stats").await;
    assert_eq!(kept, first, "served as computed within the lifetime");
    let page = app
        .api
        .get(app.url("/stats"))
        .header("accept", "text/html")
        .header("accept-language", "en")
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(page.contains("<svg"), "the page draws the kept figures");
    app.ctx.clock.advance(chrono::Duration::seconds(61));
    let again: Value = app.public_get("/api/v1/stats").await;
    assert_eq!(again["guarantees_issued"], 1, "{again}");
    assert_ne!(again["as_of"], first["as_of"], "{again}");
}

crate::on_both_backends!(the_figures_count_what_was_issued_by_month_and_kind);

mod memo {
    use super::*;

    crate::on_both_backends!(configured: the_figures_are_kept_a_few_seconds_then_computed_again);
}
