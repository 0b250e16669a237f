//! The printable letter of guarantee (`NO.html`): the document's terms with the amount
//! in capitals, the document's SHA-256, the verification code, and a QR code that opens
//! the public verification.

use askama::Template;
use qrcode::render::svg;
use qrcode::QrCode;

use crate::domain::money::Amount;
use crate::domain::IssuerKind;
use crate::pki::GuaranteeDocument;
use crate::services::guarantees::{self, GuaranteeView};
use crate::services::{Context, OrInternal, ServiceError};

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
    /// The embedded stylesheet: styles never inline (the content security policy).
    stylesheet: &'a str,
    icon: &'a str,
}

/// Renders the letter of the guarantee's current version.
pub fn render(ctx: &Context, view: &GuaranteeView) -> Result<String, ServiceError> {
    let doc = GuaranteeDocument::parse(&view.version.document).or_internal("stored document")?;
    let code = guarantees::open_code(ctx, &view.guarantee)?;
    let qr_svg = QrCode::new(doc.verification_url.as_bytes())
        .or_internal("QR code")?
        .render::<svg::Color<'_>>()
        .min_dimensions(128, 128)
        .build();
    let kind_title = match view.issuer.issuer_kind {
        Some(IssuerKind::Insurer) => "投标保证保险保单 Bid bond insurance policy",
        Some(IssuerKind::Guarantor) => "投标担保保函 Bid bond guarantee",
        Some(IssuerKind::Bank) | None => "投标保函 Bank bid bond guarantee",
    };
    Letter {
        amount: Amount::from_fen(view.guarantee.amount_fen).to_string(),
        doc: &doc,
        kind_title,
        status: view.guarantee.status.as_str(),
        document_sha256: &view.version.document_sha256,
        verification_code: code,
        qr_svg,
        stylesheet: crate::web::pages::assets::STYLESHEET.path.as_str(),
        icon: crate::web::pages::assets::ICON.path.as_str(),
    }
    .render()
    .or_internal("letter template")
}
