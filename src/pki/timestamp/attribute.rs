//! The signature time-stamp as an unsigned attribute of the guarantee signature
//! (CAdES-T, ETSI EN 319 122-1 §5.3): adding it without touching a signed byte, and
//! reading it back.

use der::Encode;

use super::error::{TimeStampError, TokenError};
use super::token::read_token;
use super::{is_oid, oid, Hash};
use crate::pki::cms_parse::{parse_signed_data_gm, signer_info_layout, CmsFormatError};

/// The signature value of a detached single-signer CMS signature: the content octets of
/// its SignerInfo's `signature` field, which the signature time-stamp's message imprint
/// covers.
pub fn signature_value(cms_der: &[u8]) -> Result<&[u8], CmsFormatError> {
    Ok(parse_signed_data_gm(cms_der)?.signer.signature)
}

/// The signature time-stamp token carried by `cms_der`, if any (borrowed from it).
/// More than one is refused: the exchange adds exactly one.
pub fn timestamp_of(cms_der: &[u8]) -> Result<Option<&[u8]>, TimeStampError> {
    let layout = signer_info_layout(cms_der)?;
    let mut found = None;
    for attr in layout.unsigned_attributes()? {
        if !is_oid(attr.attr_type, oid::SIGNATURE_TIME_STAMP_TOKEN) {
            continue;
        }
        if found.is_some() || attr.values.len() != 1 {
            return Err(TimeStampError::SeveralTimeStamps);
        }
        found = attr.values.first().copied();
    }
    Ok(found)
}

/// Returns `cms_der` (a detached CAdES signature with one signer) with `token` added as
/// the unsigned attribute id-aa-signatureTimeStampToken of its SignerInfo. The signed
/// attributes, the signature value, the certificates and every other field stay byte for
/// byte as they were, so stock tools verify the result as before. Refused when the
/// signature already carries a signature time-stamp, or when `token` is not a
/// time-stamp token over this signature's value.
pub fn add_signature_timestamp(cms_der: &[u8], token: &[u8]) -> Result<Vec<u8>, TimeStampError> {
    let signature = parse_signed_data_gm(cms_der)?.signer.signature;
    let layout = signer_info_layout(cms_der)?;
    let existing = layout.unsigned_attributes()?;
    if existing
        .iter()
        .any(|a| is_oid(a.attr_type, oid::SIGNATURE_TIME_STAMP_TOKEN))
    {
        return Err(TimeStampError::AlreadyTimeStamped);
    }

    // A token the caller did not mean (another signature's) must not be attached.
    let (_, tst_info) = read_token(token)?;
    let imprint = &tst_info.message_imprint;
    let hash = Hash::from_oid(imprint.hash_algorithm.oid.as_bytes())
        .ok_or_else(|| TokenError::Unsupported("message imprint algorithm".into()))?;
    if hash.digest(signature) != imprint.hashed_message.as_bytes() {
        return Err(TokenError::ImprintMismatch.into());
    }

    let attribute = tlv(
        0x30,
        &[
            &oid::SIGNATURE_TIME_STAMP_TOKEN.to_der()?,
            &tlv(0x31, &[token]),
        ],
    );
    // SET OF in DER order: by encoding. The existing attributes are kept as received.
    let mut attrs: Vec<&[u8]> = existing.iter().map(|a| a.raw).collect();
    attrs.push(&attribute);
    attrs.sort();

    let signer_info = tlv(0x30, &[layout.signed_part, &tlv(0xA1, &attrs)]);
    let signed_data = tlv(
        0x30,
        &[layout.before_signer_infos, &tlv(0x31, &[&signer_info])],
    );
    let stamped = tlv(0x30, &[layout.content_type, &tlv(0xA0, &[&signed_data])]);

    // The result must read back as the same signature with this token.
    let reread = parse_signed_data_gm(&stamped)?;
    if reread.signer.signature != signature || timestamp_of(&stamped)? != Some(token) {
        return Err(CmsFormatError("the time-stamped signature does not read back".into()).into());
    }
    Ok(stamped)
}

/// One DER element: `tag`, definite length, then `parts` concatenated.
fn tlv(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(len + 6);
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::tlv;

    #[test]
    fn lengths_are_minimal_der() {
        assert_eq!(tlv(0x04, &[b"ab"]), vec![0x04, 2, b'a', b'b']);
        let long = vec![0u8; 0x80];
        assert_eq!(&tlv(0x04, &[&long])[..3], &[0x04, 0x81, 0x80]);
        let longer = vec![0u8; 0x1234];
        assert_eq!(
            &tlv(0x30, &[&longer[..0x34], &longer[0x34..]])[..4],
            &[0x30, 0x82, 0x12, 0x34]
        );
    }
}
