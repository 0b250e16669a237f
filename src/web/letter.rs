//! The printable letter of guarantee (`NO.html`): the document's terms with the amount
//! in capitals, the document's SHA-256, the verification code, and a QR code that opens
//! the public verification.

use askama::Template;
use qrcode::render::svg;
use qrcode::QrCode;

use crate::domain::money::Amount;
use crate::pki::GuaranteeDocument;
use crate::services::guarantees::{self, GuaranteeView};
use crate::services::{Context, ServiceError};

#[derive(Template)]
#[template(path = "letter.html")]
struct Letter<'a> {
    doc: &'a GuaranteeDocument,
    kind_title: &'a str,
    amount: String,
    status: &'a str,
    document_sha256: &'a str,
    verification_code: String,
    qr_svg: String,
}

/// Renders the letter of the guarantee's current version.
pub fn render(ctx: &Context, view: &GuaranteeView) -> Result<String, ServiceError> {
    let doc = GuaranteeDocument::parse(&view.version.document)
        .map_err(|e| ServiceError::Internal(format!("stored document: {e}")))?;
    let code = guarantees::open_code(ctx, &view.guarantee)?;
    let qr_svg = QrCode::new(doc.verification_url.as_bytes())
        .map_err(|e| ServiceError::Internal(format!("QR code: {e}")))?
        .render::<svg::Color<'_>>()
        .min_dimensions(160, 160)
        .build();
    let kind_title = match view.issuer.issuer_kind.as_deref() {
        Some("insurer") => "投标保证保险保单 Bid bond insurance policy",
        Some("guarantor") => "投标担保保函 Bid bond guarantee",
        _ => "投标保函 Bank bid bond guarantee",
    };
    Letter {
        amount: Amount::from_fen(view.guarantee.amount_fen).to_string(),
        doc: &doc,
        kind_title,
        status: &view.guarantee.status,
        document_sha256: &view.version.document_sha256,
        verification_code: code,
        qr_svg,
    }
    .render()
    .map_err(|e| ServiceError::Internal(format!("letter template: {e}")))
}
