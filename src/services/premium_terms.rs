//! Premium terms (保费标准) an issuer publishes: the rate, minimum premium, largest bond
//! and turnaround it offers, so that an enterprise choosing an issuer sees what each
//! would charge. Versions are append-only per issuer: publishing adds the next version,
//! withdrawing adds a version marked withdrawn, and the current terms are the highest
//! version. Every version is audited in the transaction that adds it.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::organizations::{self, required_text};
use super::{new_id, require_role, Actor, Context, ServiceError};
use crate::db::audit::{self, AuditEvent};
use crate::db::models::{Organization, PremiumTermsRow};
use crate::db::schema::{organizations as orgs, premium_terms};
use crate::db::DbConnection;
use crate::domain::money::Amount;
use crate::domain::party::Role;
use crate::domain::premium::PremiumTerms;

/// The longest note an issuer may publish with its terms, in characters.
pub const NOTE_MAX_CHARS: usize = 200;

/// Terms as an issuer sends them.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPremiumTerms {
    /// The rate in basis points of the bond amount (15 = 0.15 %), 0 to 1000.
    #[schema(minimum = 0, maximum = 1000, example = 15)]
    pub rate_bp: i64,
    /// The least premium charged, decimal yuan.
    #[schema(pattern = r"^[0-9]+(\.[0-9]{1,2})?$", example = "500.00")]
    pub minimum_premium: String,
    /// The largest bond amount guaranteed, decimal yuan; none means no limit.
    #[schema(pattern = r"^[0-9]+(\.[0-9]{1,2})?$")]
    pub maximum_bond: Option<String>,
    /// The working days the issuer promises to answer an application within, 1 to 30.
    #[schema(minimum = 1, maximum = 30, example = 3)]
    pub turnaround_days: i64,
    /// A short plain-text note for applicants (at most 200 characters).
    #[schema(max_length = 200)]
    pub note: Option<String>,
}

/// Terms checked: what a version stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedTerms {
    pub terms: PremiumTerms,
    pub note: Option<String>,
}

/// Checks every field of `input`, answering all that are wrong (each an `Invalid`
/// naming its field) so a form can show each beside its field; the API reports the
/// first.
pub fn check(input: &NewPremiumTerms) -> Result<CheckedTerms, Vec<ServiceError>> {
    let mut errors = Vec::new();
    let mut money = |field: &str, typed: &str| match Amount::parse(typed.trim()) {
        Ok(a) => Some(a),
        Err(e) => {
            errors.push(ServiceError::invalid(field, e));
            None
        }
    };
    let minimum = money("minimum_premium", &input.minimum_premium);
    let maximum = match input.maximum_bond.as_deref().map(str::trim) {
        None | Some("") => Some(None),
        Some(typed) => money("maximum_bond", typed).map(Some),
    };
    let note = match input.note.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(typed) => match required_text("note", typed, NOTE_MAX_CHARS) {
            Ok(note) => Some(note),
            Err(e) => {
                errors.push(e);
                None
            }
        },
    };
    // The domain's checks of the values that parsed; one that did not stands in as a
    // valid value, so that the others are still checked (and not twice reported).
    let terms = PremiumTerms::check(
        input.rate_bp,
        minimum.map_or(1, Amount::fen),
        maximum.flatten().map(Amount::fen),
        input.turnaround_days,
    );
    match terms {
        Ok(terms) if errors.is_empty() => Ok(CheckedTerms { terms, note }),
        Ok(_) => Err(errors),
        Err(found) => {
            errors.extend(
                found
                    .into_iter()
                    .map(|e| ServiceError::invalid(e.field(), e)),
            );
            Err(errors)
        }
    }
}

/// One version of an issuer's terms: the terms, or none when it withdrew them.
#[derive(Debug, Clone)]
pub struct TermsVersion {
    pub id: String,
    pub issuer_id: String,
    pub version: i32,
    /// `None`: this version withdrew the terms.
    pub terms: Option<PremiumTerms>,
    pub note: Option<String>,
    pub published_at: NaiveDateTime,
    pub published_by: String,
}

impl TermsVersion {
    fn of(row: PremiumTermsRow) -> Result<TermsVersion, ServiceError> {
        let terms = if row.withdrawn {
            None
        } else {
            let terms = PremiumTerms::new(
                row.rate_bp.map(i64::from).unwrap_or(-1),
                row.minimum_fen.unwrap_or(-1),
                row.maximum_bond_fen,
                row.turnaround_days.map(i64::from).unwrap_or(0),
            )
            .map_err(|e| {
                ServiceError::Internal(anyhow::Error::new(e).context("stored premium terms"))
            })?;
            Some(terms)
        };
        Ok(TermsVersion {
            id: row.id,
            issuer_id: row.issuer_id,
            version: row.version,
            terms,
            note: row.note,
            published_at: row.published_at,
            published_by: row.published_by,
        })
    }
}

/// Publishes new terms for the actor's issuer (its users): the next version.
pub fn publish(
    ctx: &Context,
    actor: &Actor,
    input: NewPremiumTerms,
) -> Result<TermsVersion, ServiceError> {
    require_role(actor, &[Role::Issuer])?;
    let checked = check(&input).map_err(|mut errors| errors.remove(0))?;
    append(ctx, actor, Some(checked))
}

/// Withdraws the actor's issuer's terms: a version marked withdrawn. Refused (not
/// found) when no terms are in force.
pub fn withdraw(ctx: &Context, actor: &Actor) -> Result<TermsVersion, ServiceError> {
    require_role(actor, &[Role::Issuer])?;
    append(ctx, actor, None)
}

/// Adds the next version of the actor's issuer's terms, in one transaction with its
/// audit entry. The issuer's row is locked first (a no-op update) so versions are
/// numbered one by one; the unique `(issuer_id, version)` holds the rule regardless.
fn append(
    ctx: &Context,
    actor: &Actor,
    checked: Option<CheckedTerms>,
) -> Result<TermsVersion, ServiceError> {
    let at = ctx.now();
    let mut conn = ctx.conn()?;
    ctx.write_tx(&mut conn, |c| {
        diesel::update(orgs::table.find(&actor.organization_id))
            .set(orgs::name.eq(orgs::name))
            .execute(c)?;
        let latest: Option<PremiumTermsRow> = premium_terms::table
            .filter(premium_terms::issuer_id.eq(&actor.organization_id))
            .order(premium_terms::version.desc())
            .select(PremiumTermsRow::as_select())
            .first(c)
            .optional()?;
        if checked.is_none() && latest.as_ref().is_none_or(|l| l.withdrawn) {
            return Err(ServiceError::NotFound("premium terms".into()));
        }
        let version = latest.map_or(1, |l| l.version + 1);
        let terms = checked.as_ref().map(|c| c.terms);
        // Both fit: at most MAX_RATE_BP and MAX_TURNAROUND_DAYS.
        let to_i32 = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        let row = PremiumTermsRow {
            id: new_id(),
            issuer_id: actor.organization_id.clone(),
            version,
            withdrawn: terms.is_none(),
            rate_bp: terms.map(|t| to_i32(t.rate_bp())),
            minimum_fen: terms.map(|t| t.minimum().fen()),
            maximum_bond_fen: terms.and_then(|t| t.maximum_bond()).map(Amount::fen),
            turnaround_days: terms.map(|t| to_i32(t.turnaround_days())),
            note: checked.and_then(|c| c.note),
            published_at: at,
            published_by: actor.user_id.clone(),
        };
        diesel::insert_into(premium_terms::table)
            .values(&row)
            .execute(c)?;
        let details = match terms {
            Some(t) => serde_json::json!({
                "version": version,
                "rate_bp": t.rate_bp(),
                "minimum_premium": t.minimum().to_string(),
                "maximum_bond": t.maximum_bond().map(|m| m.to_string()),
                "turnaround_days": t.turnaround_days(),
                "note": row.note,
            }),
            None => serde_json::json!({ "version": version }),
        };
        audit::append(
            c,
            &AuditEvent {
                actor_user_id: Some(&actor.user_id),
                actor_organization_id: Some(&actor.organization_id),
                action: if terms.is_some() {
                    "publish_premium_terms"
                } else {
                    "withdraw_premium_terms"
                },
                entity_kind: "premium_terms",
                entity_id: &row.id,
                details,
                ..Default::default()
            },
            at,
        )?;
        TermsVersion::of(row)
    })
}

/// Every version of the actor's issuer's terms, newest first (its users).
pub fn history(ctx: &Context, actor: &Actor) -> Result<Vec<TermsVersion>, ServiceError> {
    require_role(actor, &[Role::Issuer])?;
    let mut conn = ctx.conn()?;
    premium_terms::table
        .filter(premium_terms::issuer_id.eq(&actor.organization_id))
        .order(premium_terms::version.desc())
        .limit(500)
        .select(PremiumTermsRow::as_select())
        .load(&mut conn)?
        .into_iter()
        .map(TermsVersion::of)
        .collect()
}

/// The terms in force of each of `issuer_ids` (absent: none published, or withdrawn).
pub fn current_of(
    c: &mut DbConnection,
    issuer_ids: &[String],
) -> Result<HashMap<String, TermsVersion>, ServiceError> {
    // The newest version per issuer: rows are few per issuer, so the versions are read
    // newest first and the first of each issuer kept.
    let rows: Vec<PremiumTermsRow> = premium_terms::table
        .filter(premium_terms::issuer_id.eq_any(issuer_ids))
        .order((
            premium_terms::issuer_id.asc(),
            premium_terms::version.desc(),
        ))
        .select(PremiumTermsRow::as_select())
        .load(c)?;
    let mut current = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for row in rows {
        if !seen.insert(row.issuer_id.clone()) || row.withdrawn {
            continue;
        }
        current.insert(row.issuer_id.clone(), TermsVersion::of(row)?);
    }
    Ok(current)
}

/// The terms in force of the issuer `issuer_id`, for its own users (the approve form)
/// and for those who may list issuers.
pub fn current(
    ctx: &Context,
    actor: &Actor,
    issuer_id: &str,
) -> Result<Option<TermsVersion>, ServiceError> {
    let own = actor.role == Role::Issuer && actor.organization_id == issuer_id;
    if !own {
        require_role(actor, &[Role::Enterprise, Role::Operator])?;
    }
    let mut conn = ctx.conn()?;
    Ok(current_of(&mut conn, &[issuer_id.to_owned()])?.remove(issuer_id))
}

/// The issuers an enterprise can apply to ([`organizations::list_active_issuers`]),
/// each with its terms in force.
pub fn issuers_with_terms(
    ctx: &Context,
    actor: &Actor,
) -> Result<Vec<(Organization, Option<TermsVersion>)>, ServiceError> {
    let issuers = organizations::list_active_issuers(ctx, actor)?;
    let ids: Vec<String> = issuers.iter().map(|o| o.id.clone()).collect();
    let mut conn = ctx.conn()?;
    let mut current = current_of(&mut conn, &ids)?;
    Ok(issuers
        .into_iter()
        .map(|o| {
            let terms = current.remove(&o.id);
            (o, terms)
        })
        .collect())
}
