//! Release and reduction letters: what the exchange writes when the beneficiary's side
//! releases a guarantee or accepts a reduction of it (see [`crate::domain::letter`]).
//!
//! **Who attests a letter.** The letter records an act of the tender agency, which
//! holds no signing certificate at the exchange, and the keys the exchange does hold
//! are each bound to one use: an issuer's hosted key signs only on that issuer's own
//! explicit action, and the time-stamping authority's certificate carries the critical
//! extended key usage timeStamping, so RFC 3161 §2.3 allows it to sign time-stamp
//! tokens only. The exchange therefore attests a letter with exactly that: an RFC 3161
//! time-stamp token from its own TSA over the letter's bytes (a CMS SignedData whose
//! TSTInfo carries the letter's SHA-256 and the exchange's time), written in the
//! transaction that made the letter. It proves that these exact bytes existed at the
//! exchange at that time, verifiable offline with stock tools:
//! `openssl ts -verify -data letter.json -in letter.tsr -CAfile tsa-root.pem`. That
//! the letter is the exchange's record, not just a stamped file, is answered by the
//! exchange itself: each letter's SHA-256 also goes into the hash-chained audit log, and
//! the letter is served to the guarantee's parties. A document-signing key of the
//! exchange's own (a separate certificate, not the TSA's) would let the letter carry a
//! detached CMS signature of its authorship as well; that is PKI work of its own.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::audit::{self, AuditEvent};
use crate::db::models::{GuaranteeLetter, GuaranteeReduction, Organization};
use crate::db::schema::{guarantee_letters, organizations};
use crate::db::DbConnection;
use crate::domain::letter::{
    self, Acting, DocumentRef, LetterAmount, LetterCodeName, LetterGuarantee, LetterKind,
    LetterParty, ReductionLetter, ReleaseLetter,
};
use crate::domain::money::Amount;
use crate::domain::time::china_rfc3339;
use crate::services::views::GuaranteeView;
use crate::services::{new_id, Actor, Context, OrInternal, ServiceError};

fn party(org: &Organization) -> LetterParty {
    LetterParty {
        name: org.name.clone(),
        uscc: org.uscc.clone(),
    }
}

fn cny(fen: i64) -> LetterAmount {
    LetterAmount {
        currency: "CNY".into(),
        value: Amount::from_fen(fen).to_string(),
    }
}

fn guarantee_of(view: &GuaranteeView) -> LetterGuarantee {
    LetterGuarantee {
        number: view.guarantee.number.clone(),
        issuer: party(&view.issuer),
        applicant: party(&view.enterprise),
        beneficiary: party(&view.tenderee),
        project: LetterCodeName {
            code: view.project.code.clone(),
            name: view.project.name.clone(),
        },
        section: LetterCodeName {
            code: view.section.code.clone(),
            name: view.section.name.clone(),
        },
    }
}

/// The version in force of `view`, as a letter names it.
fn version_in_force(view: &GuaranteeView) -> Result<DocumentRef, ServiceError> {
    Ok(DocumentRef {
        version: u32::try_from(view.version.version).or_internal("version")?,
        document_sha256: view.version.document_sha256.clone(),
    })
}

fn acting(
    c: &mut DbConnection,
    user_id: &str,
    organization_id: &str,
    role: &str,
    at: NaiveDateTime,
) -> Result<Acting, ServiceError> {
    let org: Organization = organizations::table
        .find(organization_id)
        .select(Organization::as_select())
        .first(c)?;
    Ok(Acting {
        organization: party(&org),
        role: role.into(),
        user_id: user_id.into(),
        at: china_rfc3339(at),
    })
}

/// The release letter of `view` (the guarantee as it stood when released), written in
/// the release's transaction. `grounds` says why in words.
pub(super) fn write_release_letter(
    c: &mut DbConnection,
    ctx: &Context,
    actor: &Actor,
    view: &GuaranteeView,
    grounds: &str,
    at: NaiveDateTime,
) -> Result<GuaranteeLetter, ServiceError> {
    let id = new_id();
    let g = &view.guarantee;
    let document = ReleaseLetter {
        schema: letter::RELEASE_SCHEMA.into(),
        letter_id: id.clone(),
        guarantee: guarantee_of(view),
        document: version_in_force(view)?,
        amount: cny(g.amount_fen),
        paid_amount: cny(g.paid_fen),
        outcome: "released".into(),
        grounds: grounds.into(),
        released_by: acting(c, &actor.user_id, &actor.organization_id, "agency", at)?,
        statement: format!(
            "受益人已解除保函 {number}，出具人在该保函项下的责任自解除之时终止。 \
             The beneficiary released guarantee {number}; the issuer's liability under it \
             ended when it was released.",
            number = g.number
        ),
        exchange: ctx.public_base_url.to_string(),
    };
    let bytes = letter::canonical_bytes(&document).or_internal("release letter")?;
    store(
        c,
        ctx,
        actor,
        view,
        LetterKind::Release,
        None,
        id,
        bytes,
        at,
    )
}

/// The reduction letter of `reduction`, accepted now: `before` is the guarantee as it
/// stood before, `after_sha256` the SHA-256 of the amended document now in force.
pub(super) fn write_reduction_letter(
    c: &mut DbConnection,
    ctx: &Context,
    actor: &Actor,
    before: &GuaranteeView,
    reduction: &GuaranteeReduction,
    after_sha256: &str,
    at: NaiveDateTime,
) -> Result<GuaranteeLetter, ServiceError> {
    let id = new_id();
    let g = &before.guarantee;
    let after = Amount::from_fen(reduction.amount_fen);
    let proposed_by = acting(
        c,
        &reduction.proposed_by,
        &g.issuer_id,
        "issuer",
        reduction.proposed_at,
    )?;
    let document = ReductionLetter {
        schema: letter::REDUCTION_SCHEMA.into(),
        letter_id: id.clone(),
        guarantee: guarantee_of(before),
        reduced_document: version_in_force(before)?,
        amended_document: DocumentRef {
            version: u32::try_from(reduction.version).or_internal("version")?,
            document_sha256: after_sha256.into(),
        },
        amount_before: cny(reduction.amount_before_fen),
        amount_after: cny(reduction.amount_fen),
        amount_after_in_words: after.to_chinese_capital(),
        paid_amount: cny(g.paid_fen),
        reason: reduction.reason.clone(),
        proposed_by,
        accepted_by: acting(c, &actor.user_id, &actor.organization_id, "agency", at)?,
        statement: format!(
            "受益人已接受保函 {number} 的减额修改（第 {version} 版），担保金额自接受之时起减为 \
             人民币 {amount} 元。 The beneficiary accepted amendment version {version} of \
             guarantee {number}: from its acceptance the guaranteed amount is CNY {amount}.",
            number = g.number,
            version = reduction.version,
            amount = after,
        ),
        exchange: ctx.public_base_url.to_string(),
    };
    let bytes = letter::canonical_bytes(&document).or_internal("reduction letter")?;
    store(
        c,
        ctx,
        actor,
        before,
        LetterKind::Reduction,
        Some(reduction.id.clone()),
        id,
        bytes,
        at,
    )
}

/// Time-stamps the letter's bytes with the exchange's TSA and keeps both, with the
/// letter's SHA-256 in the audit chain.
#[allow(clippy::too_many_arguments)]
fn store(
    c: &mut DbConnection,
    ctx: &Context,
    actor: &Actor,
    view: &GuaranteeView,
    kind: LetterKind,
    reduction_id: Option<String>,
    id: String,
    bytes: Vec<u8>,
    at: NaiveDateTime,
) -> Result<GuaranteeLetter, ServiceError> {
    let token = ctx
        .timestamping
        .authority
        .stamp(&bytes, at.and_utc(), None)
        .or_internal("time-stamping a letter")?;
    let row = GuaranteeLetter {
        id,
        guarantee_id: view.guarantee.id.clone(),
        kind,
        reduction_id,
        document_sha256: crate::pki::sha256_hex(&bytes),
        document: bytes,
        timestamp_token: token,
        created_at: at,
    };
    diesel::insert_into(guarantee_letters::table)
        .values(&row)
        .execute(c)?;
    audit::append(
        c,
        &AuditEvent {
            actor_user_id: Some(&actor.user_id),
            actor_organization_id: Some(&actor.organization_id),
            action: "write_letter",
            entity_kind: "guarantee_letter",
            entity_id: &row.id,
            details: serde_json::json!({
                "guarantee_number": view.guarantee.number,
                "kind": kind.as_str(),
                "schema": kind.schema(),
                "document_sha256": row.document_sha256,
            }),
            ..Default::default()
        },
        at,
    )?;
    Ok(row)
}

/// The letters of a guarantee the actor may see (its parties, as the guarantee
/// itself), oldest first.
pub fn list_letters(
    ctx: &Context,
    actor: &Actor,
    number: &str,
) -> Result<(GuaranteeView, Vec<GuaranteeLetter>), ServiceError> {
    let mut conn = ctx.conn()?;
    let view = super::load_visible(&mut conn, actor, number, ctx.now())?;
    let rows = guarantee_letters::table
        .filter(guarantee_letters::guarantee_id.eq(&view.guarantee.id))
        .order((
            guarantee_letters::created_at.asc(),
            guarantee_letters::id.asc(),
        ))
        .select(GuaranteeLetter::as_select())
        .load(&mut conn)?;
    Ok((view, rows))
}

/// One letter of a guarantee the actor may see; another guarantee's letter, or one of a
/// guarantee the actor may not see, is not found.
pub fn get_letter(
    ctx: &Context,
    actor: &Actor,
    number: &str,
    id: &str,
) -> Result<GuaranteeLetter, ServiceError> {
    let mut conn = ctx.conn()?;
    let view = super::load_visible(&mut conn, actor, number, ctx.now())?;
    guarantee_letters::table
        .filter(guarantee_letters::id.eq(id))
        .filter(guarantee_letters::guarantee_id.eq(&view.guarantee.id))
        .select(GuaranteeLetter::as_select())
        .first(&mut conn)
        .optional()?
        .ok_or_else(|| ServiceError::NotFound("letter".into()))
}

/// The letter's token as an RFC 3161 TimeStampResp with status granted (the `.tsr`
/// that `openssl ts -verify -in` reads): `SEQUENCE { SEQUENCE { INTEGER 0 }, token }`.
pub fn timestamp_response(token: &[u8]) -> Result<Vec<u8>, ServiceError> {
    use der::Encode;
    const GRANTED: [u8; 5] = [0x30, 0x03, 0x02, 0x01, 0x00];
    let body_len = GRANTED.len() + token.len();
    let length = der::Length::try_from(body_len).or_internal("time-stamp response length")?;
    let mut out = vec![0x30];
    out.extend(length.to_der().or_internal("time-stamp response length")?);
    out.extend_from_slice(&GRANTED);
    out.extend_from_slice(token);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_wraps_the_token_after_a_granted_status() {
        let short = timestamp_response(&[0x30, 0x00]).unwrap();
        assert_eq!(
            short,
            [0x30, 0x07, 0x30, 0x03, 0x02, 0x01, 0x00, 0x30, 0x00]
        );
        let token = vec![0xAB; 1000];
        let long = timestamp_response(&token).unwrap();
        // 1005 bytes of content: long form, two length octets.
        assert_eq!(&long[..4], [0x30, 0x82, 0x03, 0xED]);
        assert_eq!(&long[4..9], [0x30, 0x03, 0x02, 0x01, 0x00]);
        assert_eq!(&long[9..], &token[..]);
    }
}
