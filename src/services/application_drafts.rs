//! Saved applications (暂存): an enterprise keeps what it has chosen for a section (the
//! issuer, the kind of guarantee, a note of its own) and submits it later. A draft is
//! the enterprise's alone: no issuer, agency or count sees it, and it holds nothing
//! back (no place in the section, no limit). Submitting runs every check of a new
//! application, in one transaction with dropping the draft: either the application is
//! made and the draft gone, or nothing changed.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::applications::{apply_in, NewApplication};
use super::organizations::required_multi_line_text;
use super::views::ApplicationView;
use super::{new_id, require_role, Actor, Context, ServiceError};
use crate::db::models::{Organization, Project, Section};
use crate::db::schema::{application_drafts, organizations, projects, sections};
use crate::db::DbConnection;
use crate::domain::party::{IssuerKind, OrgKind, Role};

/// A saved draft.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = application_drafts)]
pub struct Draft {
    pub id: String,
    pub enterprise_id: String,
    pub section_id: String,
    pub issuer_id: Option<String>,
    pub kind: Option<String>,
    pub note: Option<String>,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// What the enterprise keeps of an application it has not submitted; each part may be
/// left empty until it submits.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftInput {
    pub issuer_id: Option<String>,
    /// bank, insurer or guarantor.
    pub kind: Option<String>,
    /// The enterprise's own note (what is still missing, who decides).
    pub note: Option<String>,
}

/// A draft with the tender it is for.
#[derive(Debug, Clone)]
pub struct DraftView {
    pub draft: Draft,
    pub section: Section,
    pub project: Project,
    pub issuer: Option<Organization>,
}

/// Longest note kept.
const NOTE_CHARS: usize = 1000;

fn load_view(c: &mut DbConnection, draft: Draft) -> Result<DraftView, ServiceError> {
    let (section, project) = sections::table
        .inner_join(projects::table)
        .filter(sections::id.eq(&draft.section_id))
        .select((Section::as_select(), Project::as_select()))
        .first(c)?;
    let issuer = match &draft.issuer_id {
        Some(id) => organizations::table
            .find(id)
            .select(Organization::as_select())
            .first(c)
            .optional()?,
        None => None,
    };
    Ok(DraftView {
        draft,
        section,
        project,
        issuer,
    })
}

fn own_draft(
    c: &mut DbConnection,
    actor: &Actor,
    section_id: &str,
) -> Result<Option<Draft>, ServiceError> {
    Ok(application_drafts::table
        .filter(application_drafts::enterprise_id.eq(&actor.organization_id))
        .filter(application_drafts::section_id.eq(section_id))
        .select(Draft::as_select())
        .first(c)
        .optional()?)
}

/// Saves the enterprise's draft for `section_id`, made or replaced whole. Returns it
/// and whether it is new.
pub fn save(
    ctx: &Context,
    actor: &Actor,
    section_id: &str,
    input: DraftInput,
) -> Result<(DraftView, bool), ServiceError> {
    require_role(actor, &[Role::Enterprise])?;
    let kind = input
        .kind
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| {
            k.parse::<IssuerKind>()
                .map(|k| k.as_str().to_owned())
                .map_err(|_| ServiceError::invalid("kind", "must be bank, insurer or guarantor"))
        })
        .transpose()?;
    let note = input
        .note
        .as_deref()
        .filter(|n| !n.trim().is_empty())
        .map(|n| required_multi_line_text("note", n, NOTE_CHARS))
        .transpose()?;
    let issuer_id = input.issuer_id.filter(|i| !i.trim().is_empty());
    let at = ctx.now();
    let mut conn = ctx.conn()?;
    ctx.write_tx(&mut conn, |c| {
        let project: Project = sections::table
            .inner_join(projects::table)
            .filter(sections::id.eq(section_id))
            .select(Project::as_select())
            .first(c)
            .optional()?
            .ok_or_else(|| ServiceError::invalid("section_id", "no such section"))?;
        if project.bid_deadline <= at {
            return Err(ServiceError::invalid(
                "section_id",
                "the bid deadline of this project has passed",
            ));
        }
        if let Some(id) = &issuer_id {
            let is_issuer = organizations::table
                .find(id)
                .select(organizations::kind)
                .first::<OrgKind>(c)
                .optional()?
                == Some(OrgKind::Issuer);
            if !is_issuer {
                return Err(ServiceError::invalid("issuer_id", "no such issuer"));
            }
        }
        // One writer of the enterprise's drafts at a time (its row locked by a no-op
        // update); the unique index on (enterprise, section) is the backstop.
        diesel::update(organizations::table.find(&actor.organization_id))
            .set(organizations::name.eq(organizations::name))
            .execute(c)?;
        let (draft, new) = match own_draft(c, actor, section_id)? {
            Some(old) => {
                diesel::update(application_drafts::table.find(&old.id))
                    .set((
                        application_drafts::issuer_id.eq(&issuer_id),
                        application_drafts::kind.eq(&kind),
                        application_drafts::note.eq(&note),
                        application_drafts::updated_at.eq(at),
                    ))
                    .execute(c)?;
                (
                    Draft {
                        issuer_id: issuer_id.clone(),
                        kind: kind.clone(),
                        note: note.clone(),
                        updated_at: at,
                        ..old
                    },
                    false,
                )
            }
            None => {
                let draft = Draft {
                    id: new_id(),
                    enterprise_id: actor.organization_id.clone(),
                    section_id: section_id.to_owned(),
                    issuer_id: issuer_id.clone(),
                    kind: kind.clone(),
                    note: note.clone(),
                    created_by: actor.user_id.clone(),
                    created_at: at,
                    updated_at: at,
                };
                diesel::insert_into(application_drafts::table)
                    .values(&draft)
                    .execute(c)?;
                (draft, true)
            }
        };
        Ok((load_view(c, draft)?, new))
    })
}

/// The enterprise's drafts, most recently saved first.
pub fn list(ctx: &Context, actor: &Actor) -> Result<Vec<DraftView>, ServiceError> {
    require_role(actor, &[Role::Enterprise])?;
    let mut conn = ctx.conn()?;
    let drafts: Vec<Draft> = application_drafts::table
        .filter(application_drafts::enterprise_id.eq(&actor.organization_id))
        .order((
            application_drafts::updated_at.desc(),
            application_drafts::id.asc(),
        ))
        .limit(500)
        .select(Draft::as_select())
        .load(&mut conn)?;
    drafts
        .into_iter()
        .map(|d| load_view(&mut conn, d))
        .collect()
}

/// Drops the enterprise's draft for `section_id`.
pub fn discard(ctx: &Context, actor: &Actor, section_id: &str) -> Result<(), ServiceError> {
    require_role(actor, &[Role::Enterprise])?;
    let mut conn = ctx.conn()?;
    ctx.write_tx(&mut conn, |c| {
        let gone = diesel::delete(
            application_drafts::table
                .filter(application_drafts::enterprise_id.eq(&actor.organization_id))
                .filter(application_drafts::section_id.eq(section_id)),
        )
        .execute(c)?;
        if gone == 0 {
            return Err(ServiceError::NotFound("draft".into()));
        }
        Ok(())
    })
}

/// Submits the draft for `section_id` as an application, with every check of a new
/// one; the draft is dropped in the same transaction.
pub fn submit(
    ctx: &Context,
    actor: &Actor,
    section_id: &str,
) -> Result<ApplicationView, ServiceError> {
    require_role(actor, &[Role::Enterprise])?;
    let at = ctx.now();
    let mut conn = ctx.conn()?;
    ctx.write_tx(&mut conn, |c| {
        let draft = own_draft(c, actor, section_id)?
            .ok_or_else(|| ServiceError::NotFound("draft".into()))?;
        let Some(issuer_id) = draft.issuer_id.clone() else {
            return Err(ServiceError::invalid(
                "issuer_id",
                "choose an issuer before submitting",
            ));
        };
        let view = apply_in(
            c,
            ctx,
            actor,
            &NewApplication {
                section_id: draft.section_id.clone(),
                issuer_id,
                kind: draft.kind.clone(),
            },
            at,
        )?;
        diesel::delete(application_drafts::table.find(&draft.id)).execute(c)?;
        Ok(view)
    })
}
