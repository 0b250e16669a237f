//! Verification of registered guarantees: public (number and code, or document and
//! signature) and the agency's check of every bond at bid opening.

use chrono::TimeZone;
use diesel::prelude::*;
use subtle::ConstantTimeEq;

use crate::db::models::{Guarantee, GuaranteeVersion, Organization, Project, Section};
use crate::db::schema::{guarantee_versions, guarantees, organizations, projects, sections};
use crate::db::DbConnection;
use crate::domain::guarantee_number::GuaranteeNumber;
use crate::domain::money::Amount;
use crate::domain::party::Role;
use crate::domain::tender;
use crate::domain::time::{china, china_rfc3339};
use crate::domain::verification_code::VerificationCode;
use crate::pki::{
    CheckId, Expectations, GuaranteeDocument, Registration, RegistryCheck, SubIndication,
    Supersession, VerificationReport, VerifyOptions,
};
use crate::services::views::{guarantee_view, GuaranteeView};
use crate::services::{require_role, Actor, Context, OrInternal, ServiceError};

/// What a verifier may expect of a guarantee, as typed in a request.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectationsInput {
    pub project_code: Option<String>,
    pub section_code: Option<String>,
    pub beneficiary_uscc: Option<String>,
    pub applicant_uscc: Option<String>,
    /// Decimal yuan, e.g. "100000.00".
    #[schema(pattern = r"^[0-9]+(\.[0-9]{1,2})?$")]
    pub min_amount: Option<String>,
    /// RFC 3339; validity must have begun by then (the bid deadline).
    #[schema(format = DateTime)]
    pub valid_from_by: Option<String>,
    /// RFC 3339; validity must last through it (end of the bid validity period).
    #[schema(format = DateTime)]
    pub valid_through: Option<String>,
}

impl ExpectationsInput {
    fn parse(self) -> Result<Expectations, ServiceError> {
        let time = |field: &str, v: Option<String>| {
            v.map(|v| {
                crate::domain::time::parse_client_time(&v)
                    .map_err(|e| ServiceError::invalid(format!("expectations.{field}"), e))
            })
            .transpose()
        };
        if let Some(min) = &self.min_amount {
            Amount::parse(min).map_err(|e| ServiceError::invalid("expectations.min_amount", e))?;
        }
        Ok(Expectations {
            valid_from_by: time("valid_from_by", self.valid_from_by)?,
            valid_through: time("valid_through", self.valid_through)?,
            issued_by: None,
            project_code: self.project_code,
            section_code: self.section_code,
            beneficiary_uscc: self.beneficiary_uscc,
            applicant_uscc: self.applicant_uscc,
            min_amount: self.min_amount,
        })
    }
}

/// The expectations that follow from the tender itself for a bond on a section.
fn tender_expectations(view: &GuaranteeView) -> Expectations {
    let required =
        tender::required_validity(view.project.bid_deadline, view.project.bid_validity_days);
    let in_china = |t| china().from_utc_datetime(&t);
    Expectations {
        project_code: Some(view.project.code.clone()),
        section_code: Some(view.section.code.clone()),
        beneficiary_uscc: Some(view.tenderee.uscc.clone()),
        applicant_uscc: Some(view.enterprise.uscc.clone()),
        min_amount: Some(Amount::from_fen(view.section.bond_amount_fen).to_string()),
        valid_from_by: Some(in_china(required.from)),
        valid_through: Some(in_china(required.until)),
        // A bond issued after bids closed was not in force when they closed.
        issued_by: Some(in_china(view.project.bid_deadline)),
    }
}

/// The bid-opening check of one bond: its current version against the tender's own
/// expectations, as `bonds_at_opening` reports it.
pub(super) fn opening_check(
    ctx: &Context,
    c: &mut DbConnection,
    view: &GuaranteeView,
) -> Result<VerificationReport, ServiceError> {
    verify_view(ctx, c, view, tender_expectations(view))
}

fn registration(view: &GuaranteeView) -> Result<Registration, ServiceError> {
    let state = view.guarantee.status;
    Ok(Registration {
        document_sha256: view.version.document_sha256.clone(),
        // A claimed guarantee is still in force: the claim may be rejected.
        status_active: state.is_active(),
        status: state.as_str().into(),
        superseded: None,
    })
}

fn verify_view(
    ctx: &Context,
    c: &mut DbConnection,
    view: &GuaranteeView,
    expectations: Expectations,
) -> Result<VerificationReport, ServiceError> {
    let fingerprints = crate::services::trust::issuer_fingerprints(c, &view.issuer.id)?;
    let store = ctx.verifier.current(c)?;
    verify_with(ctx, &store, view, fingerprints, expectations)
}

/// Verifies a registered guarantee's current version against the exchange's record.
fn verify_with(
    ctx: &Context,
    store: &crate::pki::TrustStore,
    view: &GuaranteeView,
    fingerprints: Vec<String>,
    expectations: Expectations,
) -> Result<VerificationReport, ServiceError> {
    let signature = view.version.signature.as_deref().unwrap_or_default();
    Ok(ctx.verifier.engine().verify_cades(
        &view.version.document,
        signature,
        store,
        Some(&ctx.timestamping.trust),
        &VerifyOptions {
            registered_fingerprints: Some(fingerprints),
            registry: RegistryCheck::Online(Some(registration(view)?)),
            expectations,
            validation_time: Some(ctx.now().and_utc()),
        },
        None,
    ))
}

/// Public verification by guarantee number and verification code. A wrong code and an
/// unknown number look the same, so numbers cannot be probed.
pub fn verify_by_number(
    ctx: &Context,
    number: &str,
    code: &str,
    expectations: ExpectationsInput,
) -> Result<VerificationReport, ServiceError> {
    let expectations = expectations.parse()?;
    let mut conn = ctx.conn()?;
    let view = view_by_code(&mut conn, number, code)?;
    verify_view(ctx, &mut conn, &view, expectations)
}

/// Verification by number and code for the public page: the report, and the document
/// of the version in force, whose terms the holder of the code has on the letter.
pub fn verify_by_number_with_document(
    ctx: &Context,
    number: &str,
    code: &str,
) -> Result<(VerificationReport, Vec<u8>), ServiceError> {
    let expectations = ExpectationsInput::default().parse()?;
    let mut conn = ctx.conn()?;
    let view = view_by_code(&mut conn, number, code)?;
    let report = verify_view(ctx, &mut conn, &view, expectations)?;
    Ok((report, view.version.document))
}

/// The guarantee with this number, if `code` is its verification code; the same
/// answer for an unknown number and a wrong code.
fn view_by_code(
    conn: &mut DbConnection,
    number: &str,
    code: &str,
) -> Result<GuaranteeView, ServiceError> {
    let number = GuaranteeNumber::parse(number).map_err(|e| ServiceError::invalid("number", e))?;
    let code = VerificationCode::parse(code).map_err(|e| ServiceError::invalid("code", e))?;
    let g: Option<Guarantee> = guarantees::table
        .filter(guarantees::number.eq(number.as_str()))
        .select(Guarantee::as_select())
        .first(conn)
        .optional()?;
    let not_found =
        || ServiceError::NotFound("a guarantee with this number and verification code".into());
    let g = g.ok_or_else(not_found)?;
    let code_matches: bool = g
        .verification_code_hash
        .as_bytes()
        .ct_eq(code.sha256_hex().as_bytes())
        .into();
    if !code_matches {
        return Err(not_found());
    }
    guarantee_view(conn, g)
}

/// Verification of a document and signature someone holds: the cryptographic checks,
/// then the exchange's record of that number.
///
/// The record is consulted only when it holds exactly these bytes. A forged or altered
/// document under a real number gets the same answer as one under a number that was
/// never issued: nothing about the real bond (its hash, its issuer's certificates, its
/// status) reaches someone who does not already hold its document, which before bid
/// opening would tell who bids (DESIGN 9, "no answer is an oracle").
pub fn verify_documents(
    ctx: &Context,
    document: &[u8],
    signature: &[u8],
    expectations: ExpectationsInput,
) -> Result<VerificationReport, ServiceError> {
    use sha2::Digest;
    let expectations = expectations.parse()?;
    let mut conn = ctx.conn()?;
    let number = GuaranteeDocument::parse(document)
        .ok()
        .map(|d| d.guarantee_number);
    let sha256 = hex::encode(sha2::Sha256::digest(document));
    let found: Option<(Guarantee, i32)> = match &number {
        Some(n) => guarantees::table
            .inner_join(guarantee_versions::table)
            .filter(guarantees::number.eq(n))
            .filter(guarantee_versions::document_sha256.eq(&sha256))
            .select((Guarantee::as_select(), guarantee_versions::version))
            .first(&mut conn)
            .optional()?,
        None => None,
    };
    // Bytes that are no version but a reduction's signed amendment (awaiting the
    // beneficiary, refused, withdrawn) are not registered either; the report says why,
    // to whoever holds those exact bytes, as it does for a superseded version.
    let unregistered_reduction = match (&found, &number) {
        (None, Some(n)) => {
            let id: Option<String> = guarantees::table
                .filter(guarantees::number.eq(n))
                .select(guarantees::id)
                .first(&mut conn)
                .optional()?;
            match id {
                Some(id) => super::reductions::explain_unregistered(&mut conn, &id, n, &sha256)?,
                None => None,
            }
        }
        _ => None,
    };
    let (registry, fingerprints) = match found {
        Some((g, version)) => {
            let view = guarantee_view(&mut conn, g)?;
            let mut registered = registration(&view)?;
            if version < view.guarantee.current_version {
                // A genuine earlier version: say what replaced it and when (the next
                // version in force; a refused reduction's number is no version).
                let (by_version, replaced_on): (i32, chrono::NaiveDateTime) =
                    guarantee_versions::table
                        .filter(guarantee_versions::guarantee_id.eq(&view.guarantee.id))
                        .filter(guarantee_versions::version.gt(version))
                        .order(guarantee_versions::version.asc())
                        .select((guarantee_versions::version, guarantee_versions::created_at))
                        .first(&mut conn)?;
                let number = |v: i32| u32::try_from(v).or_internal("version");
                registered.document_sha256 = sha256.clone();
                registered.superseded = Some(Supersession {
                    version: number(version)?,
                    by_version: number(by_version)?,
                    on: china_rfc3339(replaced_on),
                    current_version: number(view.guarantee.current_version)?,
                });
            }
            (
                RegistryCheck::Online(Some(registered)),
                Some(crate::services::trust::issuer_fingerprints(
                    &mut conn,
                    &view.issuer.id,
                )?),
            )
        }
        None => (RegistryCheck::Online(None), None),
    };
    let store = ctx.verifier.current(&mut conn)?;
    let mut report = ctx.verifier.engine().verify_cades(
        document,
        signature,
        &store,
        Some(&ctx.timestamping.trust),
        &VerifyOptions {
            registered_fingerprints: fingerprints,
            registry,
            expectations,
            validation_time: Some(ctx.now().and_utc()),
        },
        None,
    );
    if let Some(why) = unregistered_reduction {
        if let Some(check) = report.checks.iter_mut().find(|k| {
            k.id == CheckId::Registration && k.sub_indication == Some(SubIndication::NotRegistered)
        }) {
            check.explanation = why;
        }
    }
    Ok(report)
}

/// The bonds of a project at bid opening.
#[derive(Debug, Clone)]
pub struct OpeningReport {
    pub project: Project,
    /// The bonds in force (issued, accepted, claimed), each with its report.
    pub bonds: Vec<(GuaranteeView, VerificationReport)>,
    /// The bonds that ended (released, paid, cancelled, revoked, expired): listed with
    /// their state, not verified, so an ended bond is never counted as a failure.
    pub ended: Vec<GuaranteeView>,
}

/// Every bond of a project with its report, for the agency at bid opening. Refused
/// before the bid-opening time: until then nobody may learn who bids.
pub fn bonds_at_opening(
    ctx: &Context,
    actor: &Actor,
    project_id: &str,
) -> Result<OpeningReport, ServiceError> {
    require_role(actor, &[Role::Agency, Role::Tenderee])?;
    let mut conn = ctx.conn()?;
    let project: Project = projects::table
        .find(project_id)
        .select(Project::as_select())
        .first(&mut conn)
        .optional()?
        .filter(|p| p.agency_id == actor.organization_id || p.tenderee_id == actor.organization_id)
        .ok_or_else(|| ServiceError::NotFound("project".into()))?;
    if !tender::opened(project.bid_opening_at, ctx.now()) {
        return Err(ServiceError::Forbidden(format!(
            "bonds are sealed until bid opening at {}",
            china_rfc3339(project.bid_opening_at)
        )));
    }
    let store = ctx.verifier.current(&mut conn)?;
    // A few queries for the whole project, not several per bond: the bonds with their
    // sections and current versions, the organizations named, each issuer's
    // certificates once.
    let rows: Vec<(Guarantee, Section, GuaranteeVersion)> = guarantees::table
        .inner_join(sections::table)
        .inner_join(
            guarantee_versions::table.on(guarantee_versions::guarantee_id
                .eq(guarantees::id)
                .and(guarantee_versions::version.eq(guarantees::current_version))),
        )
        .filter(sections::project_id.eq(&project.id))
        .order((sections::code.asc(), guarantees::number.asc()))
        .select((
            Guarantee::as_select(),
            Section::as_select(),
            GuaranteeVersion::as_select(),
        ))
        .load(&mut conn)?;
    let mut org_ids: Vec<&str> = rows
        .iter()
        .flat_map(|(g, _, _)| [g.enterprise_id.as_str(), g.issuer_id.as_str()])
        .collect();
    org_ids.push(&project.tenderee_id);
    let orgs: std::collections::HashMap<String, Organization> = organizations::table
        .filter(organizations::id.eq_any(&org_ids))
        .select(Organization::as_select())
        .load(&mut conn)?
        .into_iter()
        .map(|o| (o.id.clone(), o))
        .collect();
    let org = |id: &str| {
        orgs.get(id)
            .cloned()
            .ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("organization {id} missing")))
    };
    let mut fingerprints: std::collections::HashMap<String, Vec<String>> =
        std::collections::HashMap::new();
    let signed: Vec<(String, i32)> = rows
        .iter()
        .map(|(g, _, _)| (g.application_id.clone(), g.current_version))
        .collect();
    let mut pending = crate::services::views::pending_amendments(&mut conn, &signed)?;
    let mut out = Vec::with_capacity(rows.len());
    let mut ended = Vec::new();
    for (guarantee, section, version) in rows {
        if !fingerprints.contains_key(&guarantee.issuer_id) {
            let found =
                crate::services::trust::issuer_fingerprints(&mut conn, &guarantee.issuer_id)?;
            fingerprints.insert(guarantee.issuer_id.clone(), found);
        }
        let pending_amendment = pending.remove(&guarantee.application_id);
        let view = GuaranteeView {
            pending_amendment,
            enterprise: org(&guarantee.enterprise_id)?,
            issuer: org(&guarantee.issuer_id)?,
            tenderee: org(&project.tenderee_id)?,
            project: project.clone(),
            section,
            version,
            guarantee,
        };
        if !view.guarantee.status.is_active() {
            ended.push(view);
            continue;
        }
        let expectations = tender_expectations(&view);
        let known = fingerprints
            .get(&view.guarantee.issuer_id)
            .cloned()
            .unwrap_or_default();
        let report = verify_with(ctx, &store, &view, known, expectations)?;
        out.push((view, report));
    }
    Ok(OpeningReport {
        project,
        bonds: out,
        ended,
    })
}
