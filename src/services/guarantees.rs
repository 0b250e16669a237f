//! Guarantees (保函): the signed document an issuer gives a bidder, from the draft it
//! signs to release, claim or expiry. Every transition is one conditional update in one
//! transaction with its audit entry; anything the lifecycle does not allow is refused
//! naming the current state.

use chrono::{Datelike, Duration, NaiveDateTime, TimeZone, Weekday};
use diesel::prelude::*;
use subtle_eq::constant_time_eq;

use super::applications::{self, ApplicationView};
use super::organizations::required_text;
use super::{new_id, require_role, Actor, Context, ServiceError};
use crate::db::audit::{self, AuditEvent};
use crate::db::models::{
    Claim, CreditEvent, Guarantee, GuaranteeDraft, GuaranteeVersion, IssuerCertificate,
    Organization, Project, Section,
};
use crate::db::schema::{
    claims, credit_events, guarantee_drafts, guarantee_versions, guarantees, issuer_certificates,
    organizations, projects, sections,
};
use crate::db::{write_tx, DbConnection};
use crate::domain::guarantee_number::GuaranteeNumber;
use crate::domain::lifecycle::{
    ApplicationAction, ApplicationState, GuaranteeAction, GuaranteeState, PreClaimState,
};
use crate::domain::money::Amount;
use crate::domain::party::{IssuerKind, Role};
use crate::domain::verification_code::VerificationCode;
use crate::pki::document::{CodeName, DocumentAmount, IssuerParty, Party, SCHEMA_V1};
use crate::pki::{
    self, Expectations, GuaranteeDocument, Indication, Registration, RegistryCheck,
    VerificationReport, VerifyOptions,
};

mod subtle_eq {
    /// Compares two secrets' hashes without an early exit.
    pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

pub use crate::domain::time::{china, china_rfc3339};

/// A guarantee with its current signed version and its parties.
#[derive(Debug, Clone)]
pub struct GuaranteeView {
    pub guarantee: Guarantee,
    pub version: GuaranteeVersion,
    pub section: Section,
    pub project: Project,
    pub enterprise: Organization,
    pub issuer: Organization,
    pub tenderee: Organization,
}

/// The outcome of an issue: the guarantee and, once, its verification code.
#[derive(Debug, Clone)]
pub struct Issued {
    pub view: GuaranteeView,
    pub verification_code: String,
}

// ---------------------------------------------------------------------------
// Drafts and issuing
// ---------------------------------------------------------------------------

/// The exact bytes the issuer must sign for a paid application (or a pending
/// amendment). Made once; every later call returns the same bytes.
pub fn draft(
    ctx: &Context,
    actor: &Actor,
    application_id: &str,
) -> Result<GuaranteeDraft, ServiceError> {
    require_role(actor, &[Role::Issuer])?;
    let mut conn = ctx.conn()?;
    write_tx(&mut conn, |c| {
        let view = applications::load_visible(c, actor, application_id)?;
        pending_draft(c, ctx, &view, ctx.now())
    })
}

/// The draft waiting for a signature: an amendment's, or the first issue's (made now if
/// the application is paid).
fn pending_draft(
    c: &mut DbConnection,
    ctx: &Context,
    view: &ApplicationView,
    at: NaiveDateTime,
) -> Result<GuaranteeDraft, ServiceError> {
    let issued: Option<Guarantee> = guarantees::table
        .filter(guarantees::application_id.eq(&view.application.id))
        .select(Guarantee::as_select())
        .first(c)
        .optional()?;
    let latest: Option<GuaranteeDraft> = guarantee_drafts::table
        .filter(guarantee_drafts::application_id.eq(&view.application.id))
        .order(guarantee_drafts::version.desc())
        .select(GuaranteeDraft::as_select())
        .first(c)
        .optional()?;
    match (issued, latest) {
        (Some(g), Some(d)) if d.version > g.current_version => Ok(d),
        (Some(g), _) => Err(ServiceError::InvalidTransition {
            message: format!(
                "guarantee {} is issued and has no amendment waiting to be signed",
                g.number
            ),
            current: "issued",
        }),
        (None, Some(d)) => Ok(d),
        (None, None) => {
            let state: ApplicationState = view
                .application
                .status
                .parse()
                .map_err(|_| ServiceError::Internal("stored application state".into()))?;
            if state != ApplicationState::Paid {
                // Report it the way the lifecycle would: issuing needs payment first.
                state.transition(ApplicationAction::Issue)?;
            }
            make_draft(c, ctx, view, 1, None, at)
        }
    }
}

/// Writes a new draft version. `number` and `code` are kept across amendments.
fn make_draft(
    c: &mut DbConnection,
    ctx: &Context,
    view: &ApplicationView,
    version: i32,
    existing: Option<(&Guarantee, NaiveDateTime)>,
    at: NaiveDateTime,
) -> Result<GuaranteeDraft, ServiceError> {
    let tenderee: Organization = organizations::table
        .find(&view.project.tenderee_id)
        .select(Organization::as_select())
        .first(c)?;
    let (number, code_hash, code_sealed, valid_until) = match existing {
        Some((g, valid_until)) => (
            g.number.clone(),
            g.verification_code_hash.clone(),
            g.verification_code_sealed.clone(),
            valid_until,
        ),
        None => {
            let number = next_number(c, &view.issuer, at)?;
            let code = VerificationCode::generate(&mut rand::rngs::OsRng);
            let sealed = pki::seal(&ctx.keys.sealing, code.expose().as_bytes(), &number)
                .map_err(|e| ServiceError::Internal(format!("sealing the code: {e}")))?;
            (
                number,
                code.sha256_hex(),
                sealed,
                view.application.valid_until,
            )
        }
    };
    let kind: IssuerKind = view
        .application
        .kind
        .parse()
        .map_err(|_| ServiceError::Internal("stored issuer kind".into()))?;
    let amount = Amount::from_fen(view.application.amount_fen);
    let document = GuaranteeDocument {
        schema: SCHEMA_V1.into(),
        guarantee_number: number.clone(),
        version: u32::try_from(version).map_err(|_| ServiceError::Internal("version".into()))?,
        kind,
        purpose: "bid_bond".into(),
        issuer: IssuerParty {
            name: view.issuer.name.clone(),
            uscc: view.issuer.uscc.clone(),
            kind,
        },
        applicant: Party {
            name: view.enterprise.name.clone(),
            uscc: view.enterprise.uscc.clone(),
        },
        beneficiary: Party {
            name: tenderee.name.clone(),
            uscc: tenderee.uscc.clone(),
        },
        project: CodeName {
            code: view.project.code.clone(),
            name: view.project.name.clone(),
        },
        section: CodeName {
            code: view.section.code.clone(),
            name: view.section.name.clone(),
        },
        amount: DocumentAmount {
            currency: "CNY".into(),
            value: amount.to_string(),
        },
        amount_in_words: amount.to_chinese_capital(),
        valid_from: china_rfc3339(view.application.valid_from),
        valid_until: china_rfc3339(valid_until),
        issued_at: china_rfc3339(at),
        governing_rules: "URDG 758 (ICC Uniform Rules for Demand Guarantees, 2010 revision); \
                          laws of the People's Republic of China"
            .into(),
        claim_conditions: "Payable on the beneficiary's first written demand made within the validity \
                           period, stating that the applicant withdrew its bid after the bid deadline, \
                           refused to sign the contract or to furnish the performance security after \
                           award, submitted false materials, or colluded with other bidders."
            .into(),
        terms: vec![
            "This guarantee replaces the cash bid bond (投标保证金) for the named section.".into(),
            "It is irrevocable within its validity, except by the issuer before acceptance for error or fraud."
                .into(),
            "Verify it at the verification URL with the guarantee number and verification code.".into(),
        ],
        verification_url: format!("{}/verify?number={number}", ctx.public_base_url),
    };
    let bytes = document
        .to_canonical_bytes()
        .map_err(|e| ServiceError::Internal(format!("document: {e}")))?;
    let draft = GuaranteeDraft {
        id: new_id(),
        application_id: view.application.id.clone(),
        guarantee_number: number,
        version,
        document_sha256: pki::sha256_hex(&bytes),
        document: bytes,
        verification_code_hash: code_hash,
        verification_code_sealed: code_sealed,
        created_at: at,
    };
    diesel::insert_into(guarantee_drafts::table)
        .values(&draft)
        .execute(c)?;
    Ok(draft)
}

/// The next guarantee number of an issuer on the issue date (China time). Numbers
/// already drafted that day are counted; the unique index catches a race.
fn next_number(
    c: &mut DbConnection,
    issuer: &Organization,
    at: NaiveDateTime,
) -> Result<String, ServiceError> {
    let code = issuer.short_code.as_deref().ok_or_else(|| {
        ServiceError::Internal(format!("issuer {} has no short code", issuer.name))
    })?;
    let date = china().from_utc_datetime(&at).date_naive();
    let prefix = format!("BH{}{code}", date.format("%Y%m%d"));
    let used: i64 = guarantee_drafts::table
        .filter(guarantee_drafts::guarantee_number.like(format!("{prefix}%")))
        .filter(guarantee_drafts::version.eq(1))
        .count()
        .get_result(c)?;
    let seq = u32::try_from(used + 1)
        .map_err(|_| ServiceError::Conflict("too many guarantees today".into()))?;
    GuaranteeNumber::new(date, code, seq)
        .map(|n| n.as_str().to_owned())
        .map_err(|e| ServiceError::Conflict(format!("cannot number a new guarantee: {e}")))
}

/// Issues with the issuer's hosted key: signs the pending draft, verifies the result
/// like any relying party would, and records it.
pub fn issue_hosted(
    ctx: &Context,
    actor: &Actor,
    application_id: &str,
) -> Result<Issued, ServiceError> {
    require_role(actor, &[Role::Issuer])?;
    let at = ctx.now();
    let mut conn = ctx.conn()?;
    write_tx(&mut conn, |c| {
        let view = applications::load_visible(c, actor, application_id)?;
        let draft = pending_draft(c, ctx, &view, at)?;
        let cert: IssuerCertificate = issuer_certificates::table
            .filter(issuer_certificates::organization_id.eq(&actor.organization_id))
            .filter(issuer_certificates::deactivated_at.is_null())
            .filter(issuer_certificates::encrypted_private_key.is_not_null())
            .filter(issuer_certificates::not_after.gt(at))
            .order(issuer_certificates::created_at.desc())
            .select(IssuerCertificate::as_select())
            .first(c)
            .optional()?
            .ok_or_else(|| {
                ServiceError::Conflict(
                    "no hosted signing key is registered for your organization; upload a signature instead".into(),
                )
            })?;
        let sealed = cert
            .encrypted_private_key
            .as_deref()
            .ok_or_else(|| ServiceError::Internal("hosted key missing".into()))?;
        let key = pki::decrypt_private_key(&ctx.keys.hosted, sealed, &cert.fingerprint_sha256)
            .map_err(|e| ServiceError::Internal(format!("hosted key: {e}")))?;
        let x509 = openssl::x509::X509::from_der(&cert.certificate_der)
            .map_err(|_| ServiceError::Internal("stored certificate".into()))?;
        let signature = pki::sign_detached(&draft.document, &x509, &key, &[])
            .map_err(|e| ServiceError::Internal(format!("signing: {e}")))?;
        record_signature(c, ctx, actor, &view, &draft, signature, at)
    })
}

/// Accepts a signature made by the issuer in its own system over the draft bytes. It
/// must verify, chain to a trusted CA and come from a certificate registered to this
/// issuer; otherwise it is refused with the verification report.
pub fn upload_signature(
    ctx: &Context,
    actor: &Actor,
    application_id: &str,
    signature: Vec<u8>,
) -> Result<Issued, ServiceError> {
    require_role(actor, &[Role::Issuer])?;
    if signature.is_empty() || signature.len() > pki::MAX_SIGNATURE_BYTES {
        return Err(ServiceError::invalid(
            "signature",
            format!(
                "must be a DER CMS signature of 1 to {} bytes",
                pki::MAX_SIGNATURE_BYTES
            ),
        ));
    }
    let at = ctx.now();
    let mut conn = ctx.conn()?;
    write_tx(&mut conn, |c| {
        let view = applications::load_visible(c, actor, application_id)?;
        let draft = pending_draft(c, ctx, &view, at)?;
        record_signature(c, ctx, actor, &view, &draft, signature, at)
    })
}

/// Verifies a signature over a draft and records the issue (or the amendment).
fn record_signature(
    c: &mut DbConnection,
    ctx: &Context,
    actor: &Actor,
    view: &ApplicationView,
    draft: &GuaranteeDraft,
    signature: Vec<u8>,
    at: NaiveDateTime,
) -> Result<Issued, ServiceError> {
    let fingerprints = super::trust::issuer_fingerprints(c, &view.issuer.id)?;
    let report = ctx.verifier.engine().verify(
        &draft.document,
        &signature,
        &ctx.verifier.store(),
        &VerifyOptions {
            registered_fingerprints: Some(fingerprints),
            validation_time: Some(at.and_utc()),
            ..Default::default()
        },
    );
    if report.indication != Indication::Passed {
        return Err(ServiceError::SignatureRejected(Box::new(report)));
    }
    let signer_fingerprint = report
        .signer
        .as_ref()
        .map(|s| s.sha256_fingerprint.clone())
        .unwrap_or_default();
    let signer_id: Option<String> = issuer_certificates::table
        .filter(issuer_certificates::fingerprint_sha256.eq(&signer_fingerprint))
        .select(issuer_certificates::id)
        .first(c)
        .optional()?;
    let version = GuaranteeVersion {
        id: new_id(),
        guarantee_id: String::new(),
        version: draft.version,
        document: draft.document.clone(),
        document_sha256: draft.document_sha256.clone(),
        signature: Some(signature),
        signer_certificate_id: signer_id,
        created_at: at,
    };
    let doc = GuaranteeDocument::parse(&draft.document)
        .map_err(|e| ServiceError::Internal(format!("draft: {e}")))?;
    let (_, valid_until) = doc
        .validity()
        .map_err(|e| ServiceError::Internal(format!("draft: {e}")))?;
    let valid_until = valid_until.naive_utc();

    let existing: Option<Guarantee> = guarantees::table
        .filter(guarantees::application_id.eq(&view.application.id))
        .select(Guarantee::as_select())
        .first(c)
        .optional()?;
    let mut first_issue = false;
    let guarantee_id = match existing {
        None => {
            applications::transition(c, actor, view, ApplicationAction::Issue, at)?;
            let g = Guarantee {
                id: new_id(),
                number: draft.guarantee_number.clone(),
                application_id: view.application.id.clone(),
                issuer_id: view.issuer.id.clone(),
                enterprise_id: view.enterprise.id.clone(),
                section_id: view.section.id.clone(),
                status: GuaranteeState::Issued.as_str().into(),
                claimed_from: None,
                amount_fen: view.application.amount_fen,
                valid_from: view.application.valid_from,
                valid_until,
                current_version: draft.version,
                verification_code_hash: draft.verification_code_hash.clone(),
                verification_code_sealed: draft.verification_code_sealed.clone(),
                issued_at: at,
                updated_at: at,
                expiry_notice_at: None,
            };
            diesel::insert_into(guarantees::table)
                .values(&g)
                .execute(c)?;
            guarantee_audit(
                c,
                actor,
                &g.id,
                "issue",
                None,
                Some(GuaranteeState::Issued),
                &g.number,
                at,
            )?;
            first_issue = true;
            g.id
        }
        Some(g) => {
            // An amendment: the state stays; the version and validity move on. The
            // conditional update fails if another signature won the race.
            let state = parse_state(&g.status)?;
            state.transition(GuaranteeAction::Amend, parse_claimed_from(&g)?)?;
            let changed = diesel::update(
                guarantees::table
                    .filter(guarantees::id.eq(&g.id))
                    .filter(guarantees::current_version.eq(draft.version - 1))
                    .filter(guarantees::status.eq(state.as_str())),
            )
            .set((
                guarantees::current_version.eq(draft.version),
                guarantees::valid_until.eq(valid_until),
                guarantees::updated_at.eq(at),
            ))
            .execute(c)?;
            if changed != 1 {
                return Err(ServiceError::Conflict(
                    "the guarantee changed meanwhile; try again".into(),
                ));
            }
            guarantee_audit(
                c,
                actor,
                &g.id,
                "amend",
                Some(state),
                Some(state),
                &g.number,
                at,
            )?;
            g.id
        }
    };
    diesel::insert_into(guarantee_versions::table)
        .values(&GuaranteeVersion {
            guarantee_id: guarantee_id.clone(),
            ..version
        })
        .execute(c)?;
    let view = load_view_by_id(c, &guarantee_id)?;
    if first_issue {
        super::notify::guarantee_issued(c, ctx, &view, at)?;
    }
    let code = open_code(ctx, &view.guarantee)?;
    Ok(Issued {
        view,
        verification_code: code,
    })
}

/// The verification code of a guarantee, unsealed for printing on its letter.
pub fn open_code(ctx: &Context, g: &Guarantee) -> Result<String, ServiceError> {
    let bytes = pki::open(&ctx.keys.sealing, &g.verification_code_sealed, &g.number)
        .map_err(|e| ServiceError::Internal(format!("unsealing the code: {e}")))?;
    String::from_utf8(bytes).map_err(|_| ServiceError::Internal("sealed code".into()))
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

fn load_view_by_id(c: &mut DbConnection, id: &str) -> Result<GuaranteeView, ServiceError> {
    let g: Guarantee = guarantees::table
        .find(id)
        .select(Guarantee::as_select())
        .first(c)?;
    view_of(c, g)
}

fn view_of(c: &mut DbConnection, guarantee: Guarantee) -> Result<GuaranteeView, ServiceError> {
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
        .filter(organizations::id.eq_any(ids))
        .select(Organization::as_select())
        .load(c)?;
    let org = |id: &str| {
        orgs.iter()
            .find(|o| o.id == id)
            .cloned()
            .ok_or_else(|| ServiceError::Internal(format!("organization {id} missing")))
    };
    let enterprise = org(&guarantee.enterprise_id)?;
    let issuer = org(&guarantee.issuer_id)?;
    let tenderee = org(&project.tenderee_id)?;
    Ok(GuaranteeView {
        guarantee,
        version,
        section,
        project,
        enterprise,
        issuer,
        tenderee,
    })
}

/// Is the project's bid opening past? Until then, who bids is secret (围串标).
pub fn opened(project: &Project, at: NaiveDateTime) -> bool {
    at >= project.bid_opening_at
}

/// A guarantee by number, if the actor may see it: its bidder, its issuer and the
/// operator at any time; the project's agency and tenderee only after bid opening.
/// Everyone else, and the agency before opening, gets "not found".
pub fn load_visible(
    c: &mut DbConnection,
    actor: &Actor,
    number: &str,
    at: NaiveDateTime,
) -> Result<GuaranteeView, ServiceError> {
    let number = GuaranteeNumber::parse(number).map_err(|e| ServiceError::invalid("number", e))?;
    let g: Guarantee = guarantees::table
        .filter(guarantees::number.eq(number.as_str()))
        .select(Guarantee::as_select())
        .first(c)
        .optional()?
        .ok_or_else(|| ServiceError::NotFound("guarantee".into()))?;
    let view = view_of(c, g)?;
    let visible = match actor.role {
        Role::Operator => true,
        Role::Enterprise => view.guarantee.enterprise_id == actor.organization_id,
        Role::Issuer => view.guarantee.issuer_id == actor.organization_id,
        Role::Agency => {
            view.project.agency_id == actor.organization_id && opened(&view.project, at)
        }
        Role::Tenderee => {
            view.project.tenderee_id == actor.organization_id && opened(&view.project, at)
        }
        _ => false,
    };
    if visible {
        Ok(view)
    } else {
        Err(ServiceError::NotFound("guarantee".into()))
    }
}

/// One guarantee for a party.
pub fn get(ctx: &Context, actor: &Actor, number: &str) -> Result<GuaranteeView, ServiceError> {
    let mut conn = ctx.conn()?;
    load_visible(&mut conn, actor, number, ctx.now())
}

/// The guarantees an enterprise holds or an issuer issued (newest first).
pub fn list(ctx: &Context, actor: &Actor) -> Result<Vec<GuaranteeView>, ServiceError> {
    require_role(actor, &[Role::Enterprise, Role::Issuer, Role::Operator])?;
    let mut conn = ctx.conn()?;
    let mut query = guarantees::table.into_boxed();
    match actor.role {
        Role::Enterprise => {
            query = query.filter(guarantees::enterprise_id.eq(&actor.organization_id))
        }
        Role::Issuer => query = query.filter(guarantees::issuer_id.eq(&actor.organization_id)),
        _ => {}
    }
    let rows: Vec<Guarantee> = query
        .order(guarantees::issued_at.desc())
        .limit(500)
        .select(Guarantee::as_select())
        .load(&mut conn)?;
    rows.into_iter().map(|g| view_of(&mut conn, g)).collect()
}

// ---------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------

/// What a verifier may expect of a guarantee, as typed in a request.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectationsInput {
    pub project_code: Option<String>,
    pub section_code: Option<String>,
    pub beneficiary_uscc: Option<String>,
    pub applicant_uscc: Option<String>,
    /// Decimal yuan, e.g. "100000.00".
    pub min_amount: Option<String>,
    /// RFC 3339; validity must have begun by then (the bid deadline).
    pub valid_from_by: Option<String>,
    /// RFC 3339; validity must last through it (end of the bid validity period).
    pub valid_through: Option<String>,
}

impl ExpectationsInput {
    fn parse(self) -> Result<Expectations, ServiceError> {
        let time = |field: &str, v: Option<String>| {
            v.map(|v| {
                chrono::DateTime::parse_from_rfc3339(&v).map_err(|_| {
                    ServiceError::invalid(
                        format!("expectations.{field}"),
                        "must be an RFC 3339 time with an offset",
                    )
                })
            })
            .transpose()
        };
        if let Some(min) = &self.min_amount {
            Amount::parse(min).map_err(|e| ServiceError::invalid("expectations.min_amount", e))?;
        }
        Ok(Expectations {
            valid_from_by: time("valid_from_by", self.valid_from_by)?,
            valid_through: time("valid_through", self.valid_through)?,
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
    let deadline = china().from_utc_datetime(&view.project.bid_deadline);
    Expectations {
        project_code: Some(view.project.code.clone()),
        section_code: Some(view.section.code.clone()),
        beneficiary_uscc: Some(view.tenderee.uscc.clone()),
        applicant_uscc: Some(view.enterprise.uscc.clone()),
        min_amount: Some(Amount::from_fen(view.section.bond_amount_fen).to_string()),
        valid_from_by: Some(deadline),
        valid_through: Some(deadline + Duration::days(i64::from(view.project.bid_validity_days))),
    }
}

fn registration(view: &GuaranteeView) -> Result<Registration, ServiceError> {
    let state = parse_state(&view.guarantee.status)?;
    Ok(Registration {
        document_sha256: view.version.document_sha256.clone(),
        // A claimed guarantee is still in force: the claim may be rejected.
        status_active: state.is_active(),
        status: state.as_str().into(),
    })
}

fn verify_view(
    ctx: &Context,
    c: &mut DbConnection,
    view: &GuaranteeView,
    expectations: Expectations,
) -> Result<VerificationReport, ServiceError> {
    let fingerprints = super::trust::issuer_fingerprints(c, &view.issuer.id)?;
    verify_with(ctx, view, fingerprints, expectations)
}

/// Verifies a registered guarantee's current version against the exchange's record.
fn verify_with(
    ctx: &Context,
    view: &GuaranteeView,
    fingerprints: Vec<String>,
    expectations: Expectations,
) -> Result<VerificationReport, ServiceError> {
    let signature = view.version.signature.as_deref().unwrap_or_default();
    Ok(ctx.verifier.engine().verify(
        &view.version.document,
        signature,
        &ctx.verifier.store(),
        &VerifyOptions {
            registered_fingerprints: Some(fingerprints),
            registry: RegistryCheck::Online(Some(registration(view)?)),
            expectations,
            validation_time: Some(ctx.now().and_utc()),
        },
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
    let number = GuaranteeNumber::parse(number).map_err(|e| ServiceError::invalid("number", e))?;
    let code = VerificationCode::parse(code).map_err(|e| ServiceError::invalid("code", e))?;
    let expectations = expectations.parse()?;
    let mut conn = ctx.conn()?;
    let g: Option<Guarantee> = guarantees::table
        .filter(guarantees::number.eq(number.as_str()))
        .select(Guarantee::as_select())
        .first(&mut conn)
        .optional()?;
    let not_found =
        || ServiceError::NotFound("a guarantee with this number and verification code".into());
    let g = g.ok_or_else(not_found)?;
    if !constant_time_eq(
        g.verification_code_hash.as_bytes(),
        code.sha256_hex().as_bytes(),
    ) {
        return Err(not_found());
    }
    let view = view_of(&mut conn, g)?;
    verify_view(ctx, &mut conn, &view, expectations)
}

/// Verification of a document and signature someone holds: the cryptographic checks,
/// then the exchange's record of that number.
pub fn verify_documents(
    ctx: &Context,
    document: &[u8],
    signature: &[u8],
    expectations: ExpectationsInput,
) -> Result<VerificationReport, ServiceError> {
    let expectations = expectations.parse()?;
    let mut conn = ctx.conn()?;
    let number = GuaranteeDocument::parse(document)
        .ok()
        .map(|d| d.guarantee_number);
    let found: Option<Guarantee> = match number {
        Some(n) => guarantees::table
            .filter(guarantees::number.eq(n))
            .select(Guarantee::as_select())
            .first(&mut conn)
            .optional()?,
        None => None,
    };
    let (registry, fingerprints) = match found {
        Some(g) => {
            let view = view_of(&mut conn, g)?;
            (
                RegistryCheck::Online(Some(registration(&view)?)),
                Some(super::trust::issuer_fingerprints(
                    &mut conn,
                    &view.issuer.id,
                )?),
            )
        }
        None => (RegistryCheck::Online(None), None),
    };
    Ok(ctx.verifier.engine().verify(
        document,
        signature,
        &ctx.verifier.store(),
        &VerifyOptions {
            registered_fingerprints: fingerprints,
            registry,
            expectations,
            validation_time: Some(ctx.now().and_utc()),
        },
    ))
}

/// Every bond of a project with its report, for the agency at bid opening. Refused
/// before the bid-opening time: until then nobody may learn who bids.
pub fn bonds_at_opening(
    ctx: &Context,
    actor: &Actor,
    project_id: &str,
) -> Result<(Project, Vec<(GuaranteeView, VerificationReport)>), ServiceError> {
    require_role(actor, &[Role::Agency, Role::Tenderee])?;
    let mut conn = ctx.conn()?;
    let project: Project = projects::table
        .find(project_id)
        .select(Project::as_select())
        .first(&mut conn)
        .optional()?
        .filter(|p| p.agency_id == actor.organization_id || p.tenderee_id == actor.organization_id)
        .ok_or_else(|| ServiceError::NotFound("project".into()))?;
    if !opened(&project, ctx.now()) {
        return Err(ServiceError::Forbidden(format!(
            "bonds are sealed until bid opening at {}",
            china_rfc3339(project.bid_opening_at)
        )));
    }
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
            .ok_or_else(|| ServiceError::Internal(format!("organization {id} missing")))
    };
    let mut fingerprints: std::collections::HashMap<String, Vec<String>> =
        std::collections::HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for (guarantee, section, version) in rows {
        if !fingerprints.contains_key(&guarantee.issuer_id) {
            let found = super::trust::issuer_fingerprints(&mut conn, &guarantee.issuer_id)?;
            fingerprints.insert(guarantee.issuer_id.clone(), found);
        }
        let view = GuaranteeView {
            enterprise: org(&guarantee.enterprise_id)?,
            issuer: org(&guarantee.issuer_id)?,
            tenderee: org(&project.tenderee_id)?,
            project: project.clone(),
            section,
            version,
            guarantee,
        };
        let expectations = tender_expectations(&view);
        let known = fingerprints
            .get(&view.guarantee.issuer_id)
            .cloned()
            .unwrap_or_default();
        let report = verify_with(ctx, &view, known, expectations)?;
        out.push((view, report));
    }
    Ok((project, out))
}

// ---------------------------------------------------------------------------
// Lifecycle
// ---------------------------------------------------------------------------

fn parse_state(s: &str) -> Result<GuaranteeState, ServiceError> {
    s.parse()
        .map_err(|_| ServiceError::Internal("stored guarantee state".into()))
}

fn parse_claimed_from(g: &Guarantee) -> Result<Option<PreClaimState>, ServiceError> {
    g.claimed_from
        .as_deref()
        .map(|s| {
            s.parse()
                .map_err(|_| ServiceError::Internal("stored claimed_from".into()))
        })
        .transpose()
}

#[allow(clippy::too_many_arguments)]
fn guarantee_audit(
    c: &mut DbConnection,
    actor: &Actor,
    id: &str,
    action: &str,
    from: Option<GuaranteeState>,
    to: Option<GuaranteeState>,
    number: &str,
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    audit::append(
        c,
        &AuditEvent {
            actor_user_id: Some(&actor.user_id),
            actor_organization_id: Some(&actor.organization_id),
            action,
            entity_kind: "guarantee",
            entity_id: id,
            from_state: from.map(GuaranteeState::as_str),
            to_state: to.map(GuaranteeState::as_str),
            details: serde_json::json!({ "number": number }),
        },
        at,
    )?;
    Ok(())
}

/// Moves a guarantee along its lifecycle with one conditional update (on its id, its
/// state and its claimed-from state); fails naming the state if it moved meanwhile.
pub fn transition(
    c: &mut DbConnection,
    actor: &Actor,
    g: &Guarantee,
    action: GuaranteeAction,
    at: NaiveDateTime,
) -> Result<GuaranteeState, ServiceError> {
    let current = parse_state(&g.status)?;
    let claimed_from = parse_claimed_from(g)?;
    let next = current.transition(action, claimed_from)?;
    let new_claimed_from = match action {
        GuaranteeAction::Claim => current
            .pre_claim()
            .map(|p| GuaranteeState::from(p).as_str().to_owned()),
        _ if next == GuaranteeState::Claimed => g.claimed_from.clone(),
        _ => None,
    };
    let changed = diesel::update(
        guarantees::table
            .filter(guarantees::id.eq(&g.id))
            .filter(guarantees::status.eq(current.as_str())),
    )
    .set((
        guarantees::status.eq(next.as_str()),
        guarantees::claimed_from.eq(new_claimed_from),
        guarantees::updated_at.eq(at),
    ))
    .execute(c)?;
    if changed != 1 {
        let fresh: Guarantee = guarantees::table
            .find(&g.id)
            .select(Guarantee::as_select())
            .first(c)?;
        let state = parse_state(&fresh.status)?;
        return Err(
            match state.transition(action, parse_claimed_from(&fresh)?) {
                Err(e) => e.into(),
                Ok(_) => {
                    ServiceError::Conflict("the guarantee changed meanwhile; try again".into())
                }
            },
        );
    }
    guarantee_audit(
        c,
        actor,
        &g.id,
        action.as_str(),
        Some(current),
        Some(next),
        &g.number,
        at,
    )?;
    Ok(next)
}

/// Runs `f` on a guarantee the actor may see, in one write transaction.
fn with_guarantee<T>(
    ctx: &Context,
    actor: &Actor,
    number: &str,
    f: impl FnOnce(&mut DbConnection, &GuaranteeView, NaiveDateTime) -> Result<T, ServiceError>,
) -> Result<T, ServiceError> {
    let at = ctx.now();
    let mut conn = ctx.conn()?;
    write_tx(&mut conn, |c| {
        let view = load_visible(c, actor, number, at)?;
        f(c, &view, at)
    })
}

fn require_project_agency(actor: &Actor, view: &GuaranteeView) -> Result<(), ServiceError> {
    require_role(actor, &[Role::Agency])?;
    if view.project.agency_id != actor.organization_id {
        return Err(ServiceError::NotFound("guarantee".into()));
    }
    Ok(())
}

/// The agency accepts the bond in place of a cash bid bond (after opening).
pub fn accept(ctx: &Context, actor: &Actor, number: &str) -> Result<GuaranteeView, ServiceError> {
    with_guarantee(ctx, actor, number, |c, view, at| {
        require_project_agency(actor, view)?;
        transition(c, actor, &view.guarantee, GuaranteeAction::Accept, at)?;
        load_view_by_id(c, &view.guarantee.id)
    })
}

/// Releases one guarantee and tells its bidder.
fn release_one(
    c: &mut DbConnection,
    ctx: &Context,
    actor: &Actor,
    g: &Guarantee,
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    transition(c, actor, g, GuaranteeAction::Release, at)?;
    let view = load_view_by_id(c, &g.id)?;
    let agency: Organization = organizations::table
        .find(&view.project.agency_id)
        .select(Organization::as_select())
        .first(c)?;
    super::notify::guarantee_released(c, ctx, &view, &agency.name, at)
}

/// The agency releases a bond (bid lost, or contract signed).
pub fn release(ctx: &Context, actor: &Actor, number: &str) -> Result<GuaranteeView, ServiceError> {
    with_guarantee(ctx, actor, number, |c, view, at| {
        require_project_agency(actor, view)?;
        release_one(c, ctx, actor, &view.guarantee, at)?;
        load_view_by_id(c, &view.guarantee.id)
    })
}

/// 退保: the bidder withdraws its bid before the deadline, or the agency cancels after a
/// failed tender (流标).
pub fn cancel(ctx: &Context, actor: &Actor, number: &str) -> Result<GuaranteeView, ServiceError> {
    with_guarantee(ctx, actor, number, |c, view, at| {
        match actor.role {
            Role::Enterprise if at < view.project.bid_deadline => {}
            Role::Enterprise => {
                return Err(ServiceError::Forbidden(
                    "after the bid deadline only the agency can cancel (a failed tender)".into(),
                ))
            }
            Role::Agency => require_project_agency(actor, view)?,
            _ => {
                return Err(ServiceError::Forbidden(
                    "only the bidder or the agency can cancel".into(),
                ))
            }
        }
        transition(c, actor, &view.guarantee, GuaranteeAction::Cancel, at)?;
        load_view_by_id(c, &view.guarantee.id)
    })
}

/// The issuer revokes a guarantee issued in error or obtained by fraud, before the
/// agency accepted it.
pub fn revoke(
    ctx: &Context,
    actor: &Actor,
    number: &str,
    reason: &str,
) -> Result<GuaranteeView, ServiceError> {
    let reason = required_text("reason", reason, 500)?;
    with_guarantee(ctx, actor, number, |c, view, at| {
        require_role(actor, &[Role::Issuer])?;
        transition(c, actor, &view.guarantee, GuaranteeAction::Revoke, at)?;
        audit::append(
            c,
            &AuditEvent {
                actor_user_id: Some(&actor.user_id),
                actor_organization_id: Some(&actor.organization_id),
                action: "revoke_reason",
                entity_kind: "guarantee",
                entity_id: &view.guarantee.id,
                details: serde_json::json!({ "reason": reason }),
                ..Default::default()
            },
            at,
        )?;
        load_view_by_id(c, &view.guarantee.id)
    })
}

/// Loads a section of one of the agency's projects.
fn agency_section(
    c: &mut DbConnection,
    actor: &Actor,
    project_id: &str,
    section_id: &str,
) -> Result<(Project, Section), ServiceError> {
    require_role(actor, &[Role::Agency])?;
    sections::table
        .inner_join(projects::table)
        .filter(sections::id.eq(section_id))
        .filter(projects::id.eq(project_id))
        .filter(projects::agency_id.eq(&actor.organization_id))
        .select((Section::as_select(), Project::as_select()))
        .first::<(Section, Project)>(c)
        .optional()?
        .map(|(s, p)| (p, s))
        .ok_or_else(|| ServiceError::NotFound("section".into()))
}

fn live_guarantees_of_section(
    c: &mut DbConnection,
    section_id: &str,
) -> QueryResult<Vec<Guarantee>> {
    guarantees::table
        .filter(guarantees::section_id.eq(section_id))
        .filter(guarantees::status.eq_any([
            GuaranteeState::Issued.as_str(),
            GuaranteeState::Accepted.as_str(),
        ]))
        .select(Guarantee::as_select())
        .load(c)
}

/// Awards a section to a bidder: every other bidder's bond is released.
pub fn award(
    ctx: &Context,
    actor: &Actor,
    project_id: &str,
    section_id: &str,
    winner_enterprise_id: &str,
) -> Result<Vec<String>, ServiceError> {
    let at = ctx.now();
    let mut conn = ctx.conn()?;
    write_tx(&mut conn, |c| {
        let (project, section) = agency_section(c, actor, project_id, section_id)?;
        if !opened(&project, at) {
            return Err(ServiceError::Forbidden(
                "a section can be awarded only after bid opening".into(),
            ));
        }
        let changed = diesel::update(
            sections::table
                .filter(sections::id.eq(&section.id))
                .filter(sections::awarded_enterprise_id.is_null()),
        )
        .set((
            sections::awarded_enterprise_id.eq(winner_enterprise_id),
            sections::awarded_at.eq(at),
        ))
        .execute(c)?;
        if changed != 1 {
            return Err(ServiceError::Conflict(format!(
                "section {} is already awarded",
                section.code
            )));
        }
        let bonds = live_guarantees_of_section(c, &section.id)?;
        if !bonds
            .iter()
            .any(|g| g.enterprise_id == winner_enterprise_id)
        {
            return Err(ServiceError::invalid(
                "winner_enterprise_id",
                "this enterprise holds no bond in force for the section",
            ));
        }
        let mut released = Vec::new();
        for g in bonds
            .iter()
            .filter(|g| g.enterprise_id != winner_enterprise_id)
        {
            release_one(c, ctx, actor, g, at)?;
            released.push(g.number.clone());
        }
        audit::append(
            c,
            &AuditEvent {
                actor_user_id: Some(&actor.user_id),
                actor_organization_id: Some(&actor.organization_id),
                action: "award",
                entity_kind: "section",
                entity_id: &section.id,
                details: serde_json::json!({ "winner": winner_enterprise_id, "released": released }),
                ..Default::default()
            },
            at,
        )?;
        Ok(released)
    })
}

/// The contract is signed: the winner's bond is released too.
pub fn contract_signed(
    ctx: &Context,
    actor: &Actor,
    project_id: &str,
    section_id: &str,
) -> Result<Vec<String>, ServiceError> {
    let at = ctx.now();
    let mut conn = ctx.conn()?;
    write_tx(&mut conn, |c| {
        let (_, section) = agency_section(c, actor, project_id, section_id)?;
        let winner = section.awarded_enterprise_id.clone().ok_or_else(|| {
            ServiceError::Conflict(format!("section {} is not awarded yet", section.code))
        })?;
        let changed = diesel::update(
            sections::table
                .filter(sections::id.eq(&section.id))
                .filter(sections::contract_signed_at.is_null()),
        )
        .set(sections::contract_signed_at.eq(at))
        .execute(c)?;
        if changed != 1 {
            return Err(ServiceError::Conflict(
                "the contract is already recorded as signed".into(),
            ));
        }
        let mut released = Vec::new();
        for g in live_guarantees_of_section(c, &section.id)?
            .iter()
            .filter(|g| g.enterprise_id == winner)
        {
            release_one(c, ctx, actor, g, at)?;
            released.push(g.number.clone());
        }
        Ok(released)
    })
}

/// Expires every issued or accepted guarantee whose validity has ended. Safe to run
/// from several instances at once: each expiry is a conditional update.
pub fn expire_due(ctx: &Context) -> Result<usize, ServiceError> {
    let at = ctx.now();
    let mut conn = ctx.conn()?;
    let due: Vec<Guarantee> = guarantees::table
        .filter(guarantees::status.eq_any([
            GuaranteeState::Issued.as_str(),
            GuaranteeState::Accepted.as_str(),
        ]))
        .filter(guarantees::valid_until.lt(at))
        .limit(1000)
        .select(Guarantee::as_select())
        .load(&mut conn)?;
    let system = Actor {
        user_id: "system".into(),
        organization_id: "system".into(),
        organization_kind: crate::domain::party::OrgKind::Operator,
        role: Role::Operator,
    };
    let mut expired = 0;
    for g in due {
        let result = write_tx(&mut conn, |c| {
            transition(c, &system, &g, GuaranteeAction::Expire, at)
        });
        match result {
            Ok(_) => expired += 1,
            // Someone else moved it first (claimed, released, another instance): fine.
            Err(ServiceError::InvalidTransition { .. } | ServiceError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(expired)
}

// ---------------------------------------------------------------------------
// Claims (URDG 758)
// ---------------------------------------------------------------------------

/// Why a beneficiary demands payment.
pub const CLAIM_REASONS: &[&str] = &[
    "withdrew_after_deadline",
    "refused_to_sign_contract",
    "refused_performance_bond",
    "false_materials",
    "collusion",
    "other",
];

/// Business days the issuer has to decide a claim.
pub const CLAIM_DECISION_BUSINESS_DAYS: u32 = 5;

/// A demand as the agency files it for the tenderee.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClaim {
    pub reason_code: String,
    pub statement: String,
    /// Decimal yuan; at most the amount outstanding.
    pub amount: String,
}

/// `at` plus `days` business days (Monday to Friday, China time). Public holidays are
/// not modelled; an operator may extend a deadline by rejecting and refiling.
pub fn add_business_days(at: NaiveDateTime, days: u32) -> NaiveDateTime {
    let mut local = china().from_utc_datetime(&at);
    let mut left = days;
    while left > 0 {
        local += Duration::days(1);
        if !matches!(local.weekday(), Weekday::Sat | Weekday::Sun) {
            left -= 1;
        }
    }
    local.naive_utc()
}

/// A claim with its guarantee.
#[derive(Debug, Clone)]
pub struct ClaimView {
    pub claim: Claim,
    pub guarantee: GuaranteeView,
    /// Past the decision deadline and still undecided.
    pub overdue: bool,
}

fn claim_view(
    c: &mut DbConnection,
    claim: Claim,
    at: NaiveDateTime,
) -> Result<ClaimView, ServiceError> {
    let guarantee = load_view_by_id(c, &claim.guarantee_id)?;
    let overdue = claim.status == "filed" && at > claim.decide_by;
    Ok(ClaimView {
        claim,
        guarantee,
        overdue,
    })
}

/// The agency files a demand on the tenderee's behalf, within validity and up to the
/// amount outstanding.
pub fn file_claim(
    ctx: &Context,
    actor: &Actor,
    number: &str,
    input: NewClaim,
) -> Result<ClaimView, ServiceError> {
    if !CLAIM_REASONS.contains(&input.reason_code.as_str()) {
        return Err(ServiceError::invalid(
            "reason_code",
            format!("must be one of {}", CLAIM_REASONS.join(", ")),
        ));
    }
    let statement = required_text("statement", &input.statement, 4000)?;
    let amount = Amount::parse(&input.amount).map_err(|e| ServiceError::invalid("amount", e))?;
    if amount.fen() <= 0 {
        return Err(ServiceError::invalid("amount", "must be more than zero"));
    }
    with_guarantee(ctx, actor, number, |c, view, at| {
        require_project_agency(actor, view)?;
        if at > view.guarantee.valid_until || at < view.guarantee.valid_from {
            return Err(ServiceError::invalid(
                "number",
                "a demand must be made within the guarantee's validity",
            ));
        }
        let paid: Vec<i64> = claims::table
            .filter(claims::guarantee_id.eq(&view.guarantee.id))
            .filter(claims::status.eq("paid"))
            .select(claims::amount_fen)
            .load(c)?;
        let outstanding = view.guarantee.amount_fen - paid.iter().sum::<i64>();
        if amount.fen() > outstanding {
            return Err(ServiceError::invalid(
                "amount",
                format!(
                    "exceeds the amount outstanding, {}",
                    Amount::from_fen(outstanding)
                ),
            ));
        }
        transition(c, actor, &view.guarantee, GuaranteeAction::Claim, at)?;
        let claim = Claim {
            id: new_id(),
            guarantee_id: view.guarantee.id.clone(),
            reason_code: input.reason_code.clone(),
            statement: statement.clone(),
            amount_fen: amount.fen(),
            status: "filed".into(),
            filed_by: actor.user_id.clone(),
            filed_at: at,
            decide_by: add_business_days(at, CLAIM_DECISION_BUSINESS_DAYS),
            decided_by: None,
            decided_at: None,
            decision_reason: None,
        };
        diesel::insert_into(claims::table)
            .values(&claim)
            .execute(c)?;
        let agency: Organization = organizations::table
            .find(&actor.organization_id)
            .select(Organization::as_select())
            .first(c)?;
        super::notify::claim_filed(c, ctx, view, &claim, &agency, at)?;
        claim_view(c, claim, at)
    })
}

/// The issuer's decision on a claim.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimDecision {
    /// `pay` or `reject`.
    pub decision: String,
    pub reason: Option<String>,
}

/// The issuer pays or rejects a claim. A paid claim is a negative credit event for the
/// bidder; a rejected one returns the guarantee to its state before the claim.
pub fn decide_claim(
    ctx: &Context,
    actor: &Actor,
    claim_id: &str,
    input: ClaimDecision,
) -> Result<ClaimView, ServiceError> {
    require_role(actor, &[Role::Issuer])?;
    let pay = match input.decision.as_str() {
        "pay" => true,
        "reject" => false,
        _ => return Err(ServiceError::invalid("decision", "must be pay or reject")),
    };
    let reason = match (&input.reason, pay) {
        (Some(r), _) => Some(required_text("reason", r, 2000)?),
        (None, false) => {
            return Err(ServiceError::invalid(
                "reason",
                "a rejection needs a reason",
            ))
        }
        (None, true) => None,
    };
    let at = ctx.now();
    let mut conn = ctx.conn()?;
    write_tx(&mut conn, |c| {
        let claim: Claim = claims::table
            .find(claim_id)
            .select(Claim::as_select())
            .first(c)
            .optional()?
            .ok_or_else(|| ServiceError::NotFound("claim".into()))?;
        let g: Guarantee = guarantees::table
            .find(&claim.guarantee_id)
            .select(Guarantee::as_select())
            .first(c)?;
        if g.issuer_id != actor.organization_id {
            return Err(ServiceError::NotFound("claim".into()));
        }
        let action = if pay {
            GuaranteeAction::PayClaim
        } else {
            GuaranteeAction::RejectClaim
        };
        transition(c, actor, &g, action, at)?;
        let status = if pay { "paid" } else { "rejected" };
        let changed = diesel::update(
            claims::table
                .filter(claims::id.eq(&claim.id))
                .filter(claims::status.eq("filed")),
        )
        .set((
            claims::status.eq(status),
            claims::decided_by.eq(&actor.user_id),
            claims::decided_at.eq(at),
            claims::decision_reason.eq(&reason),
        ))
        .execute(c)?;
        if changed != 1 {
            return Err(ServiceError::Conflict(
                "the claim is already decided".into(),
            ));
        }
        if pay {
            let enterprise: Organization = organizations::table
                .find(&g.enterprise_id)
                .select(Organization::as_select())
                .first(c)?;
            diesel::insert_into(credit_events::table)
                .values(&CreditEvent {
                    id: new_id(),
                    subject_uscc: enterprise.uscc,
                    kind: "guarantee_claim_paid".into(),
                    positive: false,
                    amount_fen: Some(claim.amount_fen),
                    reference: g.number.clone(),
                    source: "baohan exchange".into(),
                    occurred_at: at,
                })
                .execute(c)?;
        }
        let fresh: Claim = claims::table
            .find(&claim.id)
            .select(Claim::as_select())
            .first(c)?;
        let view = load_view_by_id(c, &g.id)?;
        let agency: Organization = organizations::table
            .find(&view.project.agency_id)
            .select(Organization::as_select())
            .first(c)?;
        super::notify::claim_decided(c, ctx, &view, &fresh, &agency, at)?;
        claim_view(c, fresh, at)
    })
}

/// Claims the actor is party to: the agency's projects', the issuer's guarantees', the
/// bidder's own.
pub fn list_claims(ctx: &Context, actor: &Actor) -> Result<Vec<ClaimView>, ServiceError> {
    require_role(
        actor,
        &[Role::Agency, Role::Issuer, Role::Enterprise, Role::Operator],
    )?;
    let at = ctx.now();
    let mut conn = ctx.conn()?;
    let mut query = claims::table
        .inner_join(guarantees::table.inner_join(sections::table.inner_join(projects::table)))
        .into_boxed();
    match actor.role {
        Role::Agency => query = query.filter(projects::agency_id.eq(&actor.organization_id)),
        Role::Issuer => query = query.filter(guarantees::issuer_id.eq(&actor.organization_id)),
        Role::Enterprise => {
            query = query.filter(guarantees::enterprise_id.eq(&actor.organization_id))
        }
        _ => {}
    }
    let rows: Vec<Claim> = query
        .order(claims::filed_at.desc())
        .limit(500)
        .select(Claim::as_select())
        .load(&mut conn)?;
    rows.into_iter()
        .map(|cl| claim_view(&mut conn, cl, at))
        .collect()
}

/// Credit events recorded against a subject (used by the credit archive and tests).
pub fn credit_events_of(ctx: &Context, uscc: &str) -> Result<Vec<CreditEvent>, ServiceError> {
    let mut conn = ctx.conn()?;
    Ok(credit_events::table
        .filter(credit_events::subject_uscc.eq(uscc))
        .order(credit_events::occurred_at.asc())
        .select(CreditEvent::as_select())
        .load(&mut conn)?)
}

/// The signer's certificate followed by the trusted CA certificates that issued it,
/// as PEM, so a relying party can verify offline.
pub fn chain_pem(ctx: &Context, view: &GuaranteeView) -> Result<String, ServiceError> {
    let mut conn = ctx.conn()?;
    let der: Option<Vec<u8>> = match &view.version.signer_certificate_id {
        Some(id) => issuer_certificates::table
            .find(id)
            .select(issuer_certificates::certificate_der)
            .first(&mut conn)
            .optional()?,
        None => None,
    };
    let der = der.ok_or_else(|| ServiceError::NotFound("signer certificate".into()))?;
    let cert = openssl::x509::X509::from_der(&der)
        .map_err(|_| ServiceError::Internal("stored certificate".into()))?;
    let mut pem = cert
        .to_pem()
        .map_err(|_| ServiceError::Internal("certificate PEM".into()))?;
    let store = ctx.verifier.store();
    let mut current = cert;
    // Walk up through the anchors by issuer name (a short chain: a few CAs at most).
    for _ in 0..8 {
        let parent = store.anchors().iter().find(|a| {
            a.subject_name()
                .try_cmp(current.issuer_name())
                .map(|o| o.is_eq())
                .unwrap_or(false)
        });
        match parent {
            Some(p) if p.to_der().ok() != current.to_der().ok() => {
                pem.extend(
                    p.to_pem()
                        .map_err(|_| ServiceError::Internal("CA PEM".into()))?,
                );
                current = p.clone();
            }
            _ => break,
        }
    }
    String::from_utf8(pem).map_err(|_| ServiceError::Internal("PEM is text".into()))
}

/// After a project's deadline moved (延标), every bond on it must cover the new bid
/// validity period: unsigned drafts are dropped (remade on demand with the new times),
/// and each guarantee in force gets an amendment draft for its issuer to sign.
/// Returns the numbers of the guarantees awaiting an amendment.
pub fn offer_amendments(
    c: &mut DbConnection,
    ctx: &Context,
    project: &Project,
    at: NaiveDateTime,
) -> Result<Vec<String>, ServiceError> {
    use crate::db::schema::applications as rows;
    let (valid_from, valid_until) = applications::required_validity(project);
    let section_ids: Vec<String> = sections::table
        .filter(sections::project_id.eq(&project.id))
        .select(sections::id)
        .load(c)?;
    // Applications not yet issued simply take the new validity.
    let open_states = [
        ApplicationState::Submitted.as_str(),
        ApplicationState::Approved.as_str(),
        ApplicationState::Paid.as_str(),
    ];
    let open: Vec<String> = rows::table
        .filter(rows::section_id.eq_any(&section_ids))
        .filter(rows::status.eq_any(open_states))
        .select(rows::id)
        .load(c)?;
    diesel::update(rows::table.filter(rows::id.eq_any(&open)))
        .set((
            rows::valid_from.eq(valid_from),
            rows::valid_until.eq(valid_until),
            rows::updated_at.eq(at),
        ))
        .execute(c)?;
    diesel::delete(guarantee_drafts::table.filter(guarantee_drafts::application_id.eq_any(&open)))
        .execute(c)?;
    diesel::update(
        rows::table
            .filter(rows::section_id.eq_any(&section_ids))
            .filter(rows::status.eq(ApplicationState::Issued.as_str())),
    )
    .set((rows::valid_until.eq(valid_until), rows::updated_at.eq(at)))
    .execute(c)?;

    let live: Vec<Guarantee> = guarantees::table
        .filter(guarantees::section_id.eq_any(&section_ids))
        .filter(guarantees::status.eq_any([
            GuaranteeState::Issued.as_str(),
            GuaranteeState::Accepted.as_str(),
        ]))
        .select(Guarantee::as_select())
        .load(c)?;
    let mut offered = Vec::with_capacity(live.len());
    for g in live {
        if g.valid_until >= valid_until {
            continue;
        }
        // A pending amendment from an earlier postponement is replaced by this one.
        diesel::delete(
            guarantee_drafts::table
                .filter(guarantee_drafts::application_id.eq(&g.application_id))
                .filter(guarantee_drafts::version.gt(g.current_version)),
        )
        .execute(c)?;
        let system = Actor {
            user_id: "system".into(),
            organization_id: g.issuer_id.clone(),
            organization_kind: crate::domain::party::OrgKind::Issuer,
            role: Role::Issuer,
        };
        let view = applications::load_visible(c, &system, &g.application_id)?;
        make_draft(
            c,
            ctx,
            &view,
            g.current_version + 1,
            Some((&g, valid_until)),
            at,
        )?;
        offered.push(g.number.clone());
    }
    Ok(offered)
}

/// How long before the end of validity the bidder is told its guarantee runs out.
pub const EXPIRY_NOTICE_DAYS: i64 = 7;

/// Tells each bidder, once, that a guarantee in force runs out within
/// [`EXPIRY_NOTICE_DAYS`]. Claiming the notice is a conditional update, so several
/// instances running this together send each mail once.
pub fn send_expiry_notices(ctx: &Context) -> Result<usize, ServiceError> {
    let at = ctx.now();
    let horizon = at + Duration::days(EXPIRY_NOTICE_DAYS);
    let mut conn = ctx.conn()?;
    let due: Vec<String> = guarantees::table
        .filter(guarantees::status.eq_any([
            GuaranteeState::Issued.as_str(),
            GuaranteeState::Accepted.as_str(),
        ]))
        .filter(guarantees::valid_until.le(horizon))
        .filter(guarantees::valid_until.gt(at))
        .filter(guarantees::expiry_notice_at.is_null())
        .limit(1000)
        .select(guarantees::id)
        .load(&mut conn)?;
    let mut sent = 0;
    for id in due {
        sent += write_tx(&mut conn, |c| -> Result<usize, ServiceError> {
            let claimed = diesel::update(
                guarantees::table
                    .filter(guarantees::id.eq(&id))
                    .filter(guarantees::expiry_notice_at.is_null()),
            )
            .set(guarantees::expiry_notice_at.eq(at))
            .execute(c)?;
            if claimed != 1 {
                return Ok(0);
            }
            let view = load_view_by_id(c, &id)?;
            super::notify::guarantee_expiring(c, ctx, &view, at)?;
            Ok(1)
        })?;
    }
    Ok(sent)
}
