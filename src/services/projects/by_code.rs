//! A project kept in step with an agency's trading platform (交易平台) by the platform's
//! own project code: the platform sends the whole project whenever it changes, and
//! sending it again is an update, never a second project.
//!
//! What a re-sent project may change follows the rules for edits and postponements
//! made by hand ([`super::update_project`], [`super::postpone`]): a section's bond may
//! be lowered, never raised; a later deadline is a postponement (延标) offering
//! amendments to the guarantees in force; once bids have closed nothing changes. What a
//! platform cannot express by hand is refused: a different tenderee or bid validity
//! period, and a published section left out (a platform that drops a section by
//! mistake must not withdraw it from bidders who bought bonds for it; there is no
//! withdrawal of a section at all).

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::{
    bond_raised, changed_meanwhile, insert_project, invalid, load_view, postpone_project,
    CheckedProject, CheckedSection, Inserted, NewProject, NewSection, ProjectView, Via,
};
use crate::db::audit::{self, AuditEvent};
use crate::db::models::{Project, Section};
use crate::db::schema::{organizations, projects, sections};
use crate::db::DbConnection;
use crate::domain::party::Role;
use crate::domain::tender;
use crate::services::{require_role, Actor, Context, ServiceError};

/// A project as its trading platform sends it: the fields of a new project, its code
/// taken from the path. A code in the body too must be the same.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlatformProject {
    /// The path's code again, if the platform sends it: it must be the same.
    pub code: Option<String>,
    pub name: String,
    #[schema(pattern = r"^[0-9A-HJ-NP-RTUW-Y]{18}$")]
    pub tenderee_uscc: String,
    /// RFC 3339 with an offset, e.g. "2026-12-20T09:00:00+08:00". Later than the
    /// project's deadline: a postponement (延标); earlier: refused.
    #[schema(format = DateTime)]
    pub bid_deadline: String,
    #[schema(format = DateTime)]
    pub bid_opening_at: String,
    /// Fixed once published.
    pub bid_validity_days: i32,
    /// Every section the project has (a published one left out is refused), and any
    /// new ones.
    pub sections: Vec<NewSection>,
}

/// What a platform's PUT did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// There was no project with the code: it was created.
    Created,
    /// The project differed and was changed.
    Updated,
    /// The project was already as sent: nothing was written.
    Unchanged,
}

/// A project as a platform's PUT left it, and what the PUT did.
#[derive(Debug, Clone)]
pub struct Upserted {
    pub view: ProjectView,
    pub outcome: Outcome,
}

/// How often a PUT that lost the race to create a project is tried again (then as an
/// update of the project that won). Once is enough: the project is there for the retry.
const ATTEMPTS: u32 = 3;

/// Creates the project with `code`, or brings the actor's agency's project with that
/// code in line with `input` (see the module docs), in one write transaction. A
/// project with the code run by another agency is a conflict (the tender is public, so
/// this tells nothing secret).
pub fn put_project_by_code(
    ctx: &Context,
    actor: &Actor,
    code: &str,
    input: PlatformProject,
) -> Result<Upserted, ServiceError> {
    require_role(actor, &[Role::Agency])?;
    let checked = CheckedProject::check(&input.into_new(code)?)?;
    let mut conn = ctx.conn()?;
    let mut attempt = 1;
    loop {
        let at = ctx.now();
        let mut raced = false;
        let result = ctx.write_tx(&mut conn, |c| {
            // Platforms retry and send in parallel: PUTs of one code take turns (on
            // SQLite the write transaction already does), so each sees what the last
            // one wrote and a change is made, and audited, once.
            crate::db::lock_for_transaction(c, lock_key(&checked.code))?;
            let existing: Option<Project> = projects::table
                .filter(projects::code.eq(&checked.code))
                .select(Project::as_select())
                .first(c)
                .optional()?;
            match existing {
                None => {
                    checked.check_new(at)?;
                    match insert_project(c, actor, &checked, at, Via::Platform)? {
                        Inserted::Project(view) => Ok(Upserted {
                            view: *view,
                            outcome: Outcome::Created,
                        }),
                        // Created meanwhile by a request that does not take turns (a
                        // POST): roll back and try again, as an update.
                        Inserted::CodeTaken => {
                            raced = true;
                            Err(changed_meanwhile())
                        }
                    }
                }
                Some(project) if project.agency_id != actor.organization_id => {
                    Err(ServiceError::Conflict(format!(
                        "code: project {} belongs to another agency",
                        project.code
                    )))
                }
                Some(project) => update(c, ctx, actor, project, &checked, at),
            }
        });
        if raced && attempt < ATTEMPTS {
            tracing::info!(code = %checked.code, attempt, "project created meanwhile; trying again as an update");
            attempt += 1;
            continue;
        }
        return result;
    }
}

impl PlatformProject {
    /// The new project this is, with the path's code (a code in the body must be the
    /// same, once both are trimmed).
    fn into_new(self, path_code: &str) -> Result<NewProject, ServiceError> {
        let code = tender::parse_code(path_code).map_err(|p| invalid(p.at("code")))?;
        if let Some(sent) = &self.code {
            if sent.trim() != code {
                return Err(ServiceError::invalid(
                    "code",
                    format!("must be the code in the path, {code}"),
                ));
            }
        }
        Ok(NewProject {
            code,
            name: self.name,
            tenderee_uscc: self.tenderee_uscc,
            bid_deadline: self.bid_deadline,
            bid_opening_at: self.bid_opening_at,
            bid_validity_days: self.bid_validity_days,
            sections: self.sections,
        })
    }
}

/// The advisory lock PUTs of `code` take turns on: the first eight bytes of a hash of
/// the code (a collision only makes two codes take turns too).
fn lock_key(code: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("baohan project code {code}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// How a re-sent project differs from the stored one.
#[derive(Debug, Default)]
struct Differences<'a> {
    name: Option<&'a str>,
    tenderee: bool,
    bid_validity_days: bool,
    /// The new deadline and opening, when either differs.
    timetable: Option<(NaiveDateTime, NaiveDateTime)>,
    /// Stored sections the re-send leaves out.
    withdrawn: Vec<&'a str>,
    /// Sections sent that differ from their stored selves: their place in the body,
    /// what was sent, and the stored row.
    changed: Vec<(usize, &'a CheckedSection, &'a Section)>,
    /// Sections sent that are not stored yet.
    added: Vec<&'a CheckedSection>,
}

impl<'a> Differences<'a> {
    fn between(
        stored: &'a Project,
        stored_tenderee_uscc: &str,
        stored_sections: &'a [Section],
        sent: &'a CheckedProject,
    ) -> Differences<'a> {
        let by_code: BTreeMap<&str, &Section> = stored_sections
            .iter()
            .map(|s| (s.code.as_str(), s))
            .collect();
        let mut differences = Differences {
            name: (sent.name != stored.name).then_some(sent.name.as_str()),
            tenderee: sent.tenderee_uscc.as_str() != stored_tenderee_uscc,
            bid_validity_days: sent.bid_validity_days != stored.bid_validity_days,
            timetable: (sent.bid_deadline != stored.bid_deadline
                || sent.bid_opening_at != stored.bid_opening_at)
                .then_some((sent.bid_deadline, sent.bid_opening_at)),
            withdrawn: stored_sections
                .iter()
                .map(|s| s.code.as_str())
                .filter(|code| !sent.sections.iter().any(|s| s.code == *code))
                .collect(),
            ..Default::default()
        };
        for (i, section) in sent.sections.iter().enumerate() {
            match by_code.get(section.code.as_str()) {
                None => differences.added.push(section),
                Some(row) => {
                    let same = row.name == section.name
                        && row.bond_amount_fen == section.bond.fen()
                        && row.estimated_price_fen == section.estimated_price.map(|p| p.fen());
                    if !same {
                        differences.changed.push((i, section, row));
                    }
                }
            }
        }
        differences
    }

    fn is_empty(&self) -> bool {
        self.name.is_none()
            && !self.tenderee
            && !self.bid_validity_days
            && self.timetable.is_none()
            && self.withdrawn.is_empty()
            && self.changed.is_empty()
            && self.added.is_empty()
    }

    /// Whether the rules allow the changes (the deadline not yet passed): the first
    /// refusal, by field, in the order the fields come.
    fn check(&self, stored: &Project) -> Result<(), ServiceError> {
        if self.tenderee {
            return Err(ServiceError::invalid(
                "tenderee_uscc",
                "the tenderee of a published project cannot change",
            ));
        }
        if let Some((deadline, opening)) = self.timetable {
            if deadline == stored.bid_deadline {
                return Err(ServiceError::invalid(
                    "bid_opening_at",
                    "bids open at the time published; it moves only with a later bid deadline",
                ));
            }
            tender::check_postponement(stored.bid_deadline, deadline).map_err(invalid)?;
            tender::check_opening(deadline, opening).map_err(invalid)?;
        }
        if self.bid_validity_days {
            return Err(ServiceError::invalid(
                "bid_validity_days",
                format!(
                    "the bid validity period of a published project cannot change (it is {} \
                     days): bonds are bought to cover it",
                    stored.bid_validity_days
                ),
            ));
        }
        if !self.withdrawn.is_empty() {
            return Err(ServiceError::invalid(
                "sections",
                format!(
                    "a published section cannot be withdrawn; send every section again \
                     (missing: {})",
                    self.withdrawn.join(", ")
                ),
            ));
        }
        for (i, sent, row) in &self.changed {
            if sent.bond.fen() > row.bond_amount_fen {
                return Err(bond_raised(&format!("sections[{i}].bond_amount"), row));
            }
        }
        Ok(())
    }
}

/// Brings the stored `project` in line with `sent` (see the module docs).
fn update(
    c: &mut DbConnection,
    ctx: &Context,
    actor: &Actor,
    project: Project,
    sent: &CheckedProject,
    at: NaiveDateTime,
) -> Result<Upserted, ServiceError> {
    let stored_sections: Vec<Section> = sections::table
        .filter(sections::project_id.eq(&project.id))
        .order(sections::code.asc())
        .select(Section::as_select())
        .load(c)?;
    let tenderee_uscc: String = organizations::table
        .find(&project.tenderee_id)
        .select(organizations::uscc)
        .first(c)?;
    let differences = Differences::between(&project, &tenderee_uscc, &stored_sections, sent);
    if differences.is_empty() {
        // Platforms send again what they sent: the same project is the same answer,
        // even once bids have closed.
        return Ok(Upserted {
            view: load_view(c, project)?,
            outcome: Outcome::Unchanged,
        });
    }
    if tender::deadline_passed(project.bid_deadline, at) {
        return Err(ServiceError::Conflict(
            "the bid deadline has passed; the project can no longer change".into(),
        ));
    }
    differences.check(&project)?;

    let edited = differences.name.is_some()
        || !differences.changed.is_empty()
        || !differences.added.is_empty();
    if edited {
        diesel::update(projects::table.find(&project.id))
            .set((projects::name.eq(&sent.name), projects::updated_at.eq(at)))
            .execute(c)?;
    }
    for (_, section, row) in &differences.changed {
        // Only if the bond is not below the new one meanwhile (an edit by hand does not
        // take turns with the platform): raising it is what the rule forbids.
        let updated = diesel::update(
            sections::table
                .filter(sections::id.eq(&row.id))
                .filter(sections::bond_amount_fen.ge(section.bond.fen())),
        )
        .set((
            sections::name.eq(&section.name),
            sections::bond_amount_fen.eq(section.bond.fen()),
            sections::estimated_price_fen.eq(section.estimated_price.map(|p| p.fen())),
        ))
        .execute(c)?;
        if updated != 1 {
            return Err(changed_meanwhile());
        }
    }
    for section in &differences.added {
        diesel::insert_into(sections::table)
            .values(&super::new_section_row(&project.id, section))
            .execute(c)?;
    }
    if edited {
        let sections_changed: BTreeMap<&str, serde_json::Value> = differences
            .changed
            .iter()
            .map(|(_, s, _)| {
                (
                    s.code.as_str(),
                    serde_json::json!({
                        "name": s.name,
                        "bond_amount": s.bond.to_string(),
                        "estimated_price": s.estimated_price.map(|p| p.to_string()),
                    }),
                )
            })
            .collect();
        audit::append(
            c,
            &AuditEvent {
                actor_user_id: Some(&actor.user_id),
                actor_organization_id: Some(&actor.organization_id),
                action: "update_project",
                entity_kind: "project",
                entity_id: &project.id,
                details: Via::Platform.mark(serde_json::json!({
                    "name": differences.name,
                    "sections_changed": sections_changed,
                    "sections_added": differences.added.iter().map(|s| &s.code).collect::<Vec<_>>(),
                })),
                ..Default::default()
            },
            at,
        )?;
    }
    if let Some(timetable) = differences.timetable {
        postpone_project(c, ctx, actor, &project, timetable, at, Via::Platform)?;
    }
    let fresh: Project = projects::table
        .find(&project.id)
        .select(Project::as_select())
        .first(c)?;
    Ok(Upserted {
        view: load_view(c, fresh)?,
        outcome: Outcome::Updated,
    })
}
