//! My credit (我的信用): a resident's or an enterprise's own archive as the credit
//! office keeps it: the level and score with what moves them (each record in force and
//! its contribution, per dimension), the level's history, and in one look (一键查询) the
//! deposit-free matters the level qualifies for, and who else looked at the archive
//! (the organization, why, when). The page reads the subject row and its
//! records; nothing is recomputed here.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::agency::china_time;
use super::errors::PageError;
use super::i18n::{Lang, Tr};
use super::session::Visitor;
use super::{page, Chrome, Nav};
use crate::domain::catalogue::{Dimension, MatterPath};
use crate::domain::party::Role;
use crate::services::{catalogue, credit, Window};
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/credit", web::get().to(mine));
}

/// A record that moves the score, as the page shows it.
struct MovingView {
    category: String,
    dimension: String,
    /// Signed: "+20", "−50".
    contribution: String,
    negative: bool,
    occurred_on: String,
    expires_on: String,
    department: String,
}

struct DimensionView {
    name: String,
    points: String,
}

/// A look at the archive by someone else: which organization, why, when.
struct LookView {
    organization: String,
    purpose: String,
    at: String,
}

/// The looks the page lists, newest first; the API pages through all of them.
const LOOKS_SHOWN: i64 = 20;

struct ChangeView {
    at: String,
    from: String,
    to: String,
    score: i32,
}

/// A credit-substituted matter and whether the level qualifies for it.
struct MatterView {
    code: String,
    name: String,
    required: String,
    qualifies: bool,
}

#[derive(Template)]
#[template(path = "pages/credit/mine.html")]
struct MinePage {
    chrome: Chrome,
    level: String,
    score: i32,
    base_score: i32,
    on_dishonesty_list: bool,
    has_archive: bool,
    dimensions: Vec<DimensionView>,
    moving: Vec<MovingView>,
    changes: Vec<ChangeView>,
    matters: Vec<MatterView>,
    looks: Vec<LookView>,
    looks_total: i64,
}

fn signed(points: i32) -> String {
    match points {
        p if p > 0 => format!("+{p}"),
        p if p < 0 => format!("−{}", p.unsigned_abs()),
        _ => "0".to_owned(),
    }
}

fn date_of(at: chrono::NaiveDateTime) -> String {
    china_time(at).chars().take(10).collect()
}

async fn mine(
    req: HttpRequest,
    state: web::Data<AppState>,
    visitor: Visitor,
) -> Result<HttpResponse, PageError> {
    visitor.require(&[Role::Enterprise, Role::Person])?;
    let (ctx, actor) = (state.ctx.clone(), visitor.actor.clone());
    let (archive, matters, looks) = web::block(move || {
        let archive = credit::my_archive(&ctx, &actor)?;
        let matters = catalogue::list_matters(&ctx)?;
        let window = Window {
            offset: 0,
            limit: LOOKS_SHOWN,
        };
        let looks = credit::my_looks(&ctx, &actor, window)?;
        Ok::<_, crate::services::ServiceError>((archive, matters, looks))
    })
    .await??;
    let lang = Lang::of(&req);
    let tr = Tr::new(lang);
    let chrome = Chrome::new(&req, Some(&visitor), &tr.t("credit-title"), Nav::Role);
    let kind = match visitor.role() {
        Role::Person => "person",
        _ => "enterprise",
    };
    let level = archive.standing.level;
    let dims = &archive.dimensions;
    let listed = archive
        .subject
        .as_ref()
        .is_some_and(|s| s.serious_dishonesty_count > 0);
    let html = MinePage {
        chrome: chrome.clone(),
        level: level.to_string(),
        score: archive.standing.score,
        base_score: archive.base_score,
        on_dishonesty_list: listed,
        has_archive: archive.subject.is_some(),
        dimensions: Dimension::ALL
            .iter()
            .map(|d| DimensionView {
                name: tr.t(&format!("category-dimension-{d}")),
                points: signed(dims.get(*d)),
            })
            .collect(),
        moving: archive
            .explanation()
            .into_iter()
            .map(|(r, contribution)| MovingView {
                category: match lang {
                    Lang::Zh => r.category_name_zh.clone(),
                    Lang::En => r.category_name_en.clone(),
                },
                dimension: tr.t(&format!("category-dimension-{}", r.record.dimension)),
                contribution: signed(contribution),
                negative: contribution < 0,
                occurred_on: date_of(r.record.occurred_at),
                expires_on: r.record.expires_at.map(date_of).unwrap_or_default(),
                department: r.record.source_department.clone(),
            })
            .collect(),
        changes: archive
            .level_changes
            .iter()
            .map(|c| ChangeView {
                at: china_time(c.changed_at),
                from: c.from_level.to_string(),
                to: c.to_level.to_string(),
                score: c.score,
            })
            .collect(),
        matters: matters
            .iter()
            .filter(|e| e.matter.path == MatterPath::CreditSubstitution)
            .filter_map(|e| {
                let terms = e.matter.credit.as_ref()?;
                (terms.subject.as_str() == kind).then(|| MatterView {
                    code: e.code.clone(),
                    name: match lang {
                        Lang::Zh => e.matter.name_zh.clone(),
                        Lang::En => e.matter.name_en.clone(),
                    },
                    required: terms.required_level.to_string(),
                    qualifies: !listed && level.meets(terms.required_level),
                })
            })
            .collect(),
        looks: looks
            .rows
            .iter()
            .map(|l| LookView {
                organization: l.organization_name.clone(),
                purpose: tr.t(&format!("credit-look-{}", l.purpose)),
                at: china_time(l.looked_at),
            })
            .collect(),
        looks_total: looks.total,
    }
    .render()?;
    Ok(page(&chrome, html))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::credit::LookPurpose;

    /// The keys the page makes from values exist in both languages.
    #[test]
    fn keys_made_from_values_exist() {
        for lang in Lang::ALL {
            let tr = Tr::new(lang);
            for p in LookPurpose::ALL {
                assert!(tr.has(&format!("credit-look-{p}")), "{p} in {lang:?}");
            }
            for d in Dimension::ALL {
                assert!(
                    tr.has(&format!("category-dimension-{d}")),
                    "{d} in {lang:?}"
                );
            }
        }
    }

    #[test]
    fn points_are_signed_with_a_true_minus() {
        assert_eq!(signed(20), "+20");
        assert_eq!(signed(-50), "−50");
        assert_eq!(signed(0), "0");
    }
}
