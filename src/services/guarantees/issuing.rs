//! Drafts and issuing: the exact bytes an issuer signs, signed with its hosted key or
//! uploaded from its own system, verified before they are recorded.

use chrono::{NaiveDateTime, TimeZone};
use diesel::prelude::*;

use super::lifecycle::guarantee_audit;
use crate::db::models::{
    Guarantee, GuaranteeDraft, GuaranteeVersion, IssuerCertificate, Organization,
};
use crate::db::schema::applications as applications_rows;
use crate::db::schema::{
    guarantee_drafts, guarantee_versions, guarantees, issuer_certificates, organizations,
};
use crate::db::DbConnection;
use crate::domain::guarantee_number::GuaranteeNumber;
use crate::domain::lifecycle::{
    ApplicationAction, ApplicationState, GuaranteeAction, GuaranteeState,
};
use crate::domain::money::Amount;
use crate::domain::party::Role;
use crate::domain::time::{china, china_rfc3339};
use crate::domain::verification_code::VerificationCode;
use crate::pki::document::{CodeName, DocumentAmount, IssuerParty, Party, SCHEMA_V1};
use crate::pki::{self, Acceptance, GuaranteeDocument, Indication, TimeOptions, VerifyOptions};
use crate::services::applications;
use crate::services::notify;
use crate::services::views::{guarantee_view_by_id, ApplicationView, GuaranteeView};
use crate::services::{new_id, require_role, Actor, Context, OrInternal, ServiceError};

/// The outcome of an issue: the guarantee and, once, its verification code.
#[derive(Debug, Clone)]
pub struct Issued {
    pub view: GuaranteeView,
    pub verification_code: String,
}

/// The exact bytes the issuer must sign for a paid application (or a pending
/// amendment). Made once; every later call returns the same bytes.
pub fn draft(
    ctx: &Context,
    actor: &Actor,
    application_id: &str,
) -> Result<GuaranteeDraft, ServiceError> {
    require_role(actor, &[Role::Issuer])?;
    let mut conn = ctx.conn()?;
    ctx.write_tx(&mut conn, |c| {
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
    // Nothing is drafted, issued or amended once bids have closed, but the extension
    // an issuer offered in answer to an extend-or-pay demand, and a reduction, which
    // takes effect only when the beneficiary accepts it.
    let after_bids_close = match (&issued, &latest) {
        (Some(g), _) if g.status == GuaranteeState::Claimed => true,
        (Some(g), Some(d)) if d.version > g.current_version => {
            super::reductions::drafted(c, &g.id, d.version)?.is_some()
        }
        _ => false,
    };
    if !after_bids_close {
        applications::open_for_bonds(&view.project, at, "issue or amendment")?;
    }
    match (issued, latest) {
        (Some(g), Some(d)) if d.version > g.current_version => Ok(d),
        (Some(g), _) => Err(ServiceError::InvalidTransition {
            message: format!(
                "guarantee {} is issued and has no amendment waiting to be signed",
                g.number
            ),
            current: g.status.as_str(),
        }),
        (None, Some(d)) => Ok(d),
        (None, None) => {
            let state = view.application.status;
            if state != ApplicationState::Paid {
                // Report it the way the lifecycle would: issuing needs payment first.
                state.transition(ApplicationAction::Issue)?;
            }
            make_draft(c, ctx, view, 1, None, at)
        }
    }
}

/// What an amendment changes of the guarantee in force: the validity's end, the
/// amount (the guarantee's own unless a reduction lowers it), and clauses it adds to
/// the terms.
pub(super) struct Amendment<'a> {
    pub guarantee: &'a Guarantee,
    pub valid_until: NaiveDateTime,
    pub amount_fen: i64,
    pub terms: Vec<String>,
}

impl<'a> Amendment<'a> {
    /// The guarantee as it is, valid until `valid_until`.
    pub fn extending(guarantee: &'a Guarantee, valid_until: NaiveDateTime) -> Self {
        Amendment {
            guarantee,
            valid_until,
            amount_fen: guarantee.amount_fen,
            terms: Vec::new(),
        }
    }
}

/// Writes a new draft version. `number` and `code` are kept across amendments.
pub(super) fn make_draft(
    c: &mut DbConnection,
    ctx: &Context,
    view: &ApplicationView,
    version: i32,
    existing: Option<Amendment<'_>>,
    at: NaiveDateTime,
) -> Result<GuaranteeDraft, ServiceError> {
    let tenderee: Organization = organizations::table
        .find(&view.project.tenderee_id)
        .select(Organization::as_select())
        .first(c)?;
    let amount_fen = existing
        .as_ref()
        .map_or(view.application.amount_fen, |a| a.amount_fen);
    let extra_terms = existing
        .as_ref()
        .map(|a| a.terms.clone())
        .unwrap_or_default();
    // An amendment changes a guarantee issued earlier; it does not issue it again (a bid
    // bond issued after bids closed would not meet the tender's expectations).
    let issued_at = existing.as_ref().map_or(at, |a| a.guarantee.issued_at);
    let (number, code_hash, code_sealed, valid_until) = match existing {
        Some(Amendment {
            guarantee: g,
            valid_until,
            ..
        }) => (
            g.number.clone(),
            g.verification_code_hash.clone(),
            g.verification_code_sealed.clone(),
            valid_until,
        ),
        None => {
            let number = next_number(c, &view.issuer, at)?;
            let code = VerificationCode::generate(&mut rand::rngs::OsRng);
            let sealed = pki::seal(&ctx.keys.sealing, code.expose().as_bytes(), &number)
                .or_internal("sealing the code")?;
            (
                number,
                code.sha256_hex(),
                sealed,
                view.application.valid_until,
            )
        }
    };
    let kind = view.application.kind;
    let amount = Amount::from_fen(amount_fen);
    let document = GuaranteeDocument {
        schema: SCHEMA_V1.into(),
        guarantee_number: number.clone(),
        version: u32::try_from(version).or_internal("version")?,
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
        issued_at: china_rfc3339(issued_at),
        governing_rules: "URDG 758 (ICC Uniform Rules for Demand Guarantees, 2010 revision); \
                          laws of the People's Republic of China"
            .into(),
        claim_conditions: "Payable on the beneficiary's first written demand made within the validity \
                           period, stating that the applicant withdrew its bid after the bid deadline, \
                           refused to sign the contract or to furnish the performance security after \
                           award, submitted false materials, or colluded with other bidders."
            .into(),
        terms: [
            "This guarantee replaces the cash bid bond (投标保证金) for the named section.".into(),
            "It is irrevocable within its validity, except by the issuer before acceptance for error or fraud."
                .into(),
            "Verify it at the verification URL with the guarantee number and verification code.".into(),
        ]
        .into_iter()
        .chain(extra_terms)
        .collect(),
        verification_url: format!("{}/verify?number={number}", ctx.public_base_url),
    };
    let bytes = document.to_canonical_bytes().or_internal("document")?;
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

/// The next guarantee number of an issuer on the issue date (China time), from the
/// issuer's counter row for that day, bumped in the caller's (write) transaction: the
/// row lock orders parallel issues, a deleted draft gives no number back, and a number
/// is never handed out twice.
fn next_number(
    c: &mut DbConnection,
    issuer: &Organization,
    at: NaiveDateTime,
) -> Result<String, ServiceError> {
    let code = issuer.short_code.as_deref().ok_or_else(|| {
        ServiceError::Internal(anyhow::anyhow!("issuer {} has no short code", issuer.name))
    })?;
    let date = china().from_utc_datetime(&at).date_naive();
    let day = date.format("%Y%m%d").to_string();
    let seq = next_sequence(c, &issuer.id, &day, &format!("BH{day}{code}"))?;
    let seq = u32::try_from(seq)
        .map_err(|_| ServiceError::Conflict("too many guarantees today".into()))?;
    let mut random = [0u8; crate::domain::guarantee_number::KEY_LEN];
    rand::Rng::fill(&mut rand::rngs::OsRng, &mut random[..]);
    GuaranteeNumber::new(date, code, seq, &GuaranteeNumber::key_from(random))
        .map(|n| n.as_str().to_owned())
        .map_err(|e| ServiceError::Conflict(format!("cannot number a new guarantee: {e}")))
}

/// Bumps the issuer's counter for `day` and returns the sequence it hands out. The
/// first issue of a day creates the row, starting after the highest sequence already
/// used under `prefix` (numbers given before the counter existed); when a parallel
/// issue created it first (a unique violation, inside a savepoint so the transaction
/// survives on PostgreSQL), it is bumped instead.
fn next_sequence(
    c: &mut DbConnection,
    issuer_id: &str,
    day: &str,
    prefix: &str,
) -> Result<i32, ServiceError> {
    use crate::db::schema::guarantee_number_counters as counters;
    let bump = |c: &mut DbConnection| -> Result<Option<i32>, diesel::result::Error> {
        let bumped = diesel::update(
            counters::table
                .filter(counters::issuer_id.eq(issuer_id))
                .filter(counters::issue_day.eq(day)),
        )
        .set(counters::last_sequence.eq(counters::last_sequence + 1))
        .execute(c)?;
        if bumped == 0 {
            return Ok(None);
        }
        counters::table
            .filter(counters::issuer_id.eq(issuer_id))
            .filter(counters::issue_day.eq(day))
            .select(counters::last_sequence)
            .first(c)
            .map(Some)
    };
    if let Some(seq) = bump(c)? {
        return Ok(seq);
    }
    let mut used: Vec<String> = guarantee_drafts::table
        .filter(guarantee_drafts::guarantee_number.like(format!("{prefix}%")))
        .select(guarantee_drafts::guarantee_number)
        .load(c)?;
    used.extend(
        guarantees::table
            .filter(guarantees::number.like(format!("{prefix}%")))
            .select(guarantees::number)
            .load::<String>(c)?,
    );
    let first = used
        .iter()
        .filter_map(|n| GuaranteeNumber::parse(n).ok())
        .map(|n| n.sequence())
        .max()
        .map_or(1, |max| i64::from(max) + 1);
    let first = i32::try_from(first)
        .map_err(|_| ServiceError::Conflict("too many guarantees today".into()))?;
    let inserted = c.transaction(|c| {
        diesel::insert_into(counters::table)
            .values((
                counters::issuer_id.eq(issuer_id),
                counters::issue_day.eq(day),
                counters::last_sequence.eq(first),
            ))
            .execute(c)
    });
    match inserted {
        Ok(_) => Ok(first),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => bump(c)?.or_internal("the guarantee number counter vanished"),
        Err(e) => Err(e.into()),
    }
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
    ctx.write_tx(&mut conn, |c| {
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
            .or_internal("hosted key missing")?;
        let key = pki::decrypt_private_key(&ctx.keys.hosted, sealed, &cert.fingerprint_sha256)
            .or_internal("hosted key")?;
        let x509 = openssl::x509::X509::from_der(&cert.certificate_der)
            .or_internal("stored certificate")?;
        let signature =
            pki::sign_detached(&draft.document, &x509, &key, &[]).or_internal("signing")?;
        record_signature(c, ctx, actor, &view, &draft, signature, None, at)
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
    // The time a signature is proven to exist is the exchange's own, stamped when it
    // accepts the signature: a token the issuer brings could lend it any time.
    if matches!(pki::timestamp_of(&signature), Ok(Some(_))) {
        return Err(ServiceError::invalid(
            "signature",
            "carries a signature time-stamp token; send the signature without it: the \
             exchange time-stamps a signature itself when it accepts it",
        ));
    }
    let at = ctx.now();
    let mut conn = ctx.conn()?;
    ctx.write_tx(&mut conn, |c| {
        let view = applications::load_visible(c, actor, application_id)?;
        let draft = pending_draft(c, ctx, &view, at)?;
        // The issuer's own system chose the claimed signing time: it must be near the
        // exchange's now and not before the draft was made.
        let acceptance = Acceptance {
            not_before: draft.created_at.and_utc(),
        };
        record_signature(
            c,
            ctx,
            actor,
            &view,
            &draft,
            signature,
            Some(acceptance),
            at,
        )
    })
}

/// Verifies a signature over a draft and records the issue (or the amendment).
/// `acceptance` holds the limits on the signer's claimed signing time when the issuer's
/// own system made the signature (none for hosted signing: the exchange signed it now).
#[allow(clippy::too_many_arguments)]
fn record_signature(
    c: &mut DbConnection,
    ctx: &Context,
    actor: &Actor,
    view: &ApplicationView,
    draft: &GuaranteeDraft,
    signature: Vec<u8>,
    acceptance: Option<Acceptance>,
    at: NaiveDateTime,
) -> Result<Issued, ServiceError> {
    let fingerprints = crate::services::trust::issuer_fingerprints(c, &view.issuer.id)?;
    let report = ctx.verifier.engine().verify_with_time(
        &draft.document,
        &signature,
        &*ctx.verifier.current(c)?,
        &VerifyOptions {
            registered_fingerprints: Some(fingerprints),
            validation_time: Some(at.and_utc()),
            ..Default::default()
        },
        &TimeOptions {
            proof_of_existence: None,
            acceptance,
        },
    );
    if report.indication != Indication::Passed {
        return Err(ServiceError::SignatureRejected(Box::new(report)));
    }
    // CAdES-T: the exchange's token over the signature value proves it existed now,
    // whatever later happens to the signer's certificate.
    let signature = ctx
        .timestamping
        .authority
        .stamp_signature(&signature, at.and_utc(), None)
        .or_internal("time-stamping the accepted signature")?;
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
    let doc = GuaranteeDocument::parse(&draft.document).or_internal("draft")?;
    let (_, valid_until) = doc.validity().or_internal("draft")?;
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
                status: GuaranteeState::Issued,
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
                paid_fen: 0,
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
            // A reduction's signature: kept with the reduction until the beneficiary
            // accepts it; the version in force stays.
            if let Some(r) = super::reductions::drafted(c, &g.id, draft.version)? {
                let view = super::reductions::signed(c, ctx, actor, &g, &r, &version, at)?;
                let code = open_code(ctx, &view.guarantee)?;
                return Ok(Issued {
                    view,
                    verification_code: code,
                });
            }
            // An extension answering an extend-or-pay demand first withdraws the
            // demand: the guarantee is back in force, then amended.
            let mut g = g;
            if g.status == GuaranteeState::Claimed {
                match crate::services::claims::extension_signed(c, actor, &g, at)? {
                    Some(back) => {
                        g.status = back;
                        g.claimed_from = None;
                    }
                    None => {
                        return Err(ServiceError::InvalidTransition {
                            message: format!(
                                "guarantee {} is claimed; only an extension the issuer \
                                 offered for the claim can be signed now",
                                g.number
                            ),
                            current: g.status.as_str(),
                        })
                    }
                }
            }
            // An amendment: the state stays; the version and validity move on. The
            // conditional update fails if another signature won the race.
            let state = g.status;
            state.transition(GuaranteeAction::Amend, g.claimed_from)?;
            let changed = diesel::update(
                guarantees::table
                    .filter(guarantees::id.eq(&g.id))
                    .filter(guarantees::current_version.eq(g.current_version))
                    .filter(guarantees::status.eq(state)),
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
            // The application shows what is signed: the amended validity, now.
            diesel::update(applications_rows::table.find(&view.application.id))
                .set((
                    applications_rows::valid_until.eq(valid_until),
                    applications_rows::updated_at.eq(at),
                ))
                .execute(c)?;
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
    let view = guarantee_view_by_id(c, &guarantee_id)?;
    if first_issue {
        crate::services::webhooks::emit_guarantee(
            c,
            crate::services::webhooks::EventKind::GuaranteeIssued,
            &view,
            &[&view.enterprise.id],
            at,
        )?;
        notify::guarantee_issued(c, ctx, &view, at)?;
    } else {
        notify::guarantee_changed(
            c,
            ctx,
            &view.enterprise,
            crate::mail::templates::GuaranteeChange::AmendmentSigned,
            &view.guarantee.number,
            &view.project.name,
            Some(format!(
                "有效期至 Valid until: {}",
                china_rfc3339(view.guarantee.valid_until)
            )),
            &format!("/api/v1/guarantees/{}", view.guarantee.number),
            at,
        )?;
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
        .or_internal("unsealing the code")?;
    String::from_utf8(bytes).or_internal("sealed code")
}
