//! What a reader of a guarantee or an application needs around it, loaded in one place:
//! the use cases answer with these views and the notifications render them, so neither
//! imports the other.

use diesel::prelude::*;

use chrono::NaiveDateTime;

use super::{OrInternal, ServiceError};
use crate::db::any_of::any_of;
use crate::db::models::{Application, Guarantee, GuaranteeVersion, Organization, Project, Section};
use crate::db::schema::{
    guarantee_drafts, guarantee_versions, guarantees, organizations, projects, sections,
};
use crate::db::DbConnection;
use crate::pki::GuaranteeDocument;

/// A guarantee with its current signed version and its parties.
#[derive(Debug, Clone)]
pub struct GuaranteeView {
    pub guarantee: Guarantee,
    pub version: GuaranteeVersion,
    /// The amendment drafted and not yet signed, if any: the guarantee's own terms stay
    /// those of its signed `version` until then.
    pub pending_amendment: Option<PendingAmendment>,
    pub section: Section,
    pub project: Project,
    pub enterprise: Organization,
    pub issuer: Organization,
    pub tenderee: Organization,
}

/// An application with what a reader needs around it.
#[derive(Debug, Clone)]
pub struct ApplicationView {
    pub application: Application,
    pub section: Section,
    pub project: Project,
    pub enterprise: Organization,
    pub issuer: Organization,
    /// The amendment drafted for its guarantee and not signed yet, if any: the
    /// application's own validity stays what is signed until the issuer signs it.
    pub pending_amendment: Option<PendingAmendment>,
}

/// An amendment (after a postponement) waiting for the issuer's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAmendment {
    /// The version it will be.
    pub version: i32,
    /// The validity end it carries.
    pub valid_until: NaiveDateTime,
    /// When it was drafted.
    pub drafted_at: NaiveDateTime,
}

/// The amendment waiting for a signature on an issued application's guarantee.
pub fn pending_amendment(
    c: &mut DbConnection,
    application_id: &str,
) -> Result<Option<PendingAmendment>, ServiceError> {
    let current: Option<i32> = guarantees::table
        .filter(guarantees::application_id.eq(application_id))
        .select(guarantees::current_version)
        .first(c)
        .optional()?;
    match current {
        Some(current) => pending_after(c, application_id, current),
        None => Ok(None),
    }
}

/// The amendment drafted after `current` (the signed version) and not signed yet.
pub fn pending_after(
    c: &mut DbConnection,
    application_id: &str,
    current: i32,
) -> Result<Option<PendingAmendment>, ServiceError> {
    let draft: Option<(i32, Vec<u8>, NaiveDateTime)> = guarantee_drafts::table
        .filter(guarantee_drafts::application_id.eq(application_id))
        .filter(guarantee_drafts::version.gt(current))
        .order(guarantee_drafts::version.desc())
        .select((
            guarantee_drafts::version,
            guarantee_drafts::document,
            guarantee_drafts::created_at,
        ))
        .first(c)
        .optional()?;
    draft
        .map(|(version, document, drafted_at)| amendment_of(version, &document, drafted_at))
        .transpose()
}

/// The amendments waiting for a signature on several issued applications at once,
/// by application id (one query, for the opening report).
pub fn pending_amendments(
    c: &mut DbConnection,
    current: &[(String, i32)],
) -> Result<std::collections::HashMap<String, PendingAmendment>, ServiceError> {
    let ids: Vec<&str> = current.iter().map(|(id, _)| id.as_str()).collect();
    let drafts: Vec<(String, i32, Vec<u8>, NaiveDateTime)> = guarantee_drafts::table
        .filter(any_of(guarantee_drafts::application_id, &ids))
        .order(guarantee_drafts::version.asc())
        .select((
            guarantee_drafts::application_id,
            guarantee_drafts::version,
            guarantee_drafts::document,
            guarantee_drafts::created_at,
        ))
        .load(c)?;
    let mut out = std::collections::HashMap::new();
    for (application_id, version, document, drafted_at) in drafts {
        let signed = current
            .iter()
            .find(|(id, _)| *id == application_id)
            .map(|(_, v)| *v);
        if signed.is_some_and(|signed| version > signed) {
            // Ascending: a later draft replaces an earlier one.
            out.insert(
                application_id,
                amendment_of(version, &document, drafted_at)?,
            );
        }
    }
    Ok(out)
}

fn amendment_of(
    version: i32,
    document: &[u8],
    drafted_at: NaiveDateTime,
) -> Result<PendingAmendment, ServiceError> {
    let (_, valid_until) = GuaranteeDocument::parse(document)
        .and_then(|d| d.validity())
        .or_internal("a drafted amendment")?;
    Ok(PendingAmendment {
        version,
        valid_until: valid_until.naive_utc(),
        drafted_at,
    })
}

/// A guarantee by its row id, with its current version and parties.
pub fn guarantee_view_by_id(c: &mut DbConnection, id: &str) -> Result<GuaranteeView, ServiceError> {
    let g: Guarantee = guarantees::table
        .find(id)
        .select(Guarantee::as_select())
        .first(c)?;
    guarantee_view(c, g)
}

/// A guarantee row with its current version and parties (the parties in one query).
pub fn guarantee_view(
    c: &mut DbConnection,
    guarantee: Guarantee,
) -> Result<GuaranteeView, ServiceError> {
    let version: GuaranteeVersion = guarantee_versions::table
        .filter(guarantee_versions::guarantee_id.eq(&guarantee.id))
        .filter(guarantee_versions::version.eq(guarantee.current_version))
        .select(GuaranteeVersion::as_select())
        .first(c)?;
    let (section, project) = sections::table
        .inner_join(projects::table)
        .filter(sections::id.eq(&guarantee.section_id))
        .select((Section::as_select(), Project::as_select()))
        .first::<(Section, Project)>(c)?;
    // The three parties in one query.
    let ids = [
        guarantee.enterprise_id.as_str(),
        guarantee.issuer_id.as_str(),
        project.tenderee_id.as_str(),
    ];
    let orgs: Vec<Organization> = organizations::table
        .filter(any_of(organizations::id, ids))
        .select(Organization::as_select())
        .load(c)?;
    let org = |id: &str| {
        orgs.iter()
            .find(|o| o.id == id)
            .cloned()
            .ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("organization {id} missing")))
    };
    let enterprise = org(&guarantee.enterprise_id)?;
    let issuer = org(&guarantee.issuer_id)?;
    let tenderee = org(&project.tenderee_id)?;
    let pending_amendment = pending_after(c, &guarantee.application_id, guarantee.current_version)?;
    Ok(GuaranteeView {
        guarantee,
        version,
        pending_amendment,
        section,
        project,
        enterprise,
        issuer,
        tenderee,
    })
}

/// Guarantee rows with their current versions, parties and pending amendments, in a
/// few queries for all of them (a list page), in the rows' order.
pub fn guarantee_views(
    c: &mut DbConnection,
    rows: Vec<Guarantee>,
) -> Result<Vec<GuaranteeView>, ServiceError> {
    use std::collections::HashMap;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = rows.iter().map(|g| g.id.as_str()).collect();
    let mut versions: HashMap<(String, i32), GuaranteeVersion> = guarantee_versions::table
        .filter(any_of(guarantee_versions::guarantee_id, &ids))
        .select(GuaranteeVersion::as_select())
        .load::<GuaranteeVersion>(c)?
        .into_iter()
        .map(|v| ((v.guarantee_id.clone(), v.version), v))
        .collect();
    let section_ids: Vec<&str> = rows.iter().map(|g| g.section_id.as_str()).collect();
    let places: HashMap<String, (Section, Project)> = sections::table
        .inner_join(projects::table)
        .filter(any_of(sections::id, &section_ids))
        .select((Section::as_select(), Project::as_select()))
        .load::<(Section, Project)>(c)?
        .into_iter()
        .map(|(s, p)| (s.id.clone(), (s, p)))
        .collect();
    let mut org_ids: Vec<&str> = rows
        .iter()
        .flat_map(|g| [g.enterprise_id.as_str(), g.issuer_id.as_str()])
        .collect();
    org_ids.extend(places.values().map(|(_, p)| p.tenderee_id.as_str()));
    let orgs = organizations_by_id(c, &org_ids)?;
    let current: Vec<(String, i32)> = rows
        .iter()
        .map(|g| (g.application_id.clone(), g.current_version))
        .collect();
    let mut pending = pending_amendments(c, &current)?;
    rows.into_iter()
        .map(|guarantee| {
            let version = versions
                .remove(&(guarantee.id.clone(), guarantee.current_version))
                .or_internal("a guarantee's current version")?;
            let (section, project) = places
                .get(&guarantee.section_id)
                .cloned()
                .or_internal("a guarantee's section")?;
            Ok(GuaranteeView {
                pending_amendment: pending.remove(&guarantee.application_id),
                enterprise: org_of(&orgs, &guarantee.enterprise_id)?,
                issuer: org_of(&orgs, &guarantee.issuer_id)?,
                tenderee: org_of(&orgs, &project.tenderee_id)?,
                section,
                project,
                version,
                guarantee,
            })
        })
        .collect()
}

/// Applications with their sections, projects, parties and pending amendments, in a
/// few queries for all of them (a list page), in the rows' order.
pub fn application_views(
    c: &mut DbConnection,
    rows: Vec<Application>,
) -> Result<Vec<ApplicationView>, ServiceError> {
    use std::collections::HashMap;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let section_ids: Vec<&str> = rows.iter().map(|a| a.section_id.as_str()).collect();
    let places: HashMap<String, (Section, Project)> = sections::table
        .inner_join(projects::table)
        .filter(any_of(sections::id, &section_ids))
        .select((Section::as_select(), Project::as_select()))
        .load::<(Section, Project)>(c)?
        .into_iter()
        .map(|(s, p)| (s.id.clone(), (s, p)))
        .collect();
    let org_ids: Vec<&str> = rows
        .iter()
        .flat_map(|a| [a.enterprise_id.as_str(), a.issuer_id.as_str()])
        .collect();
    let orgs = organizations_by_id(c, &org_ids)?;
    let ids: Vec<&str> = rows.iter().map(|a| a.id.as_str()).collect();
    let current: Vec<(String, i32)> = guarantees::table
        .filter(any_of(guarantees::application_id, &ids))
        .select((guarantees::application_id, guarantees::current_version))
        .load(c)?;
    let mut pending = pending_amendments(c, &current)?;
    rows.into_iter()
        .map(|application| {
            let (section, project) = places
                .get(&application.section_id)
                .cloned()
                .or_internal("an application's section")?;
            Ok(ApplicationView {
                pending_amendment: pending.remove(&application.id),
                enterprise: org_of(&orgs, &application.enterprise_id)?,
                issuer: org_of(&orgs, &application.issuer_id)?,
                section,
                project,
                application,
            })
        })
        .collect()
}

fn organizations_by_id(
    c: &mut DbConnection,
    ids: &[&str],
) -> Result<std::collections::HashMap<String, Organization>, ServiceError> {
    Ok(organizations::table
        .filter(any_of(organizations::id, ids))
        .select(Organization::as_select())
        .load::<Organization>(c)?
        .into_iter()
        .map(|o| (o.id.clone(), o))
        .collect())
}

fn org_of(
    orgs: &std::collections::HashMap<String, Organization>,
    id: &str,
) -> Result<Organization, ServiceError> {
    orgs.get(id)
        .cloned()
        .ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("organization {id} missing")))
}

/// An application with its section, project and parties.
pub fn application_view(
    c: &mut DbConnection,
    application: Application,
) -> Result<ApplicationView, ServiceError> {
    let (section, project) = sections::table
        .inner_join(projects::table)
        .filter(sections::id.eq(&application.section_id))
        .select((Section::as_select(), Project::as_select()))
        .first::<(Section, Project)>(c)?;
    let enterprise = organizations::table
        .find(&application.enterprise_id)
        .select(Organization::as_select())
        .first(c)?;
    let issuer = organizations::table
        .find(&application.issuer_id)
        .select(Organization::as_select())
        .first(c)?;
    let pending_amendment = pending_amendment(c, &application.id)?;
    Ok(ApplicationView {
        application,
        section,
        project,
        enterprise,
        issuer,
        pending_amendment,
    })
}
