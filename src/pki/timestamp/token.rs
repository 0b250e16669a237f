//! Reading a time-stamp token: its SignedData and its TSTInfo, before any trust.

use der::Decode;
use x509_tsp::{TspVersion, TstInfo};

use super::error::TokenError;
use super::{is_oid, oid};
use crate::pki::cms_parse::{parse_encapsulating_signed_data, EncapsulatingSignedData};

/// Parses a token's SignedData and checks that it encapsulates a TSTInfo.
pub(crate) fn parse_token(token: &[u8]) -> Result<EncapsulatingSignedData<'_>, TokenError> {
    let sd = parse_encapsulating_signed_data(token).map_err(|e| TokenError::Malformed(e.0))?;
    if !is_oid(sd.content_type, oid::TST_INFO) {
        return Err(TokenError::Malformed(
            "the signed content is not a TSTInfo".into(),
        ));
    }
    Ok(sd)
}

/// Decodes a TSTInfo, which must be version 1.
pub(crate) fn decode_tst_info(content: &[u8]) -> Result<TstInfo, TokenError> {
    let tst = TstInfo::from_der(content)
        .map_err(|e| TokenError::Malformed(format!("TSTInfo cannot be decoded ({e})")))?;
    if tst.version != TspVersion::V1 {
        return Err(TokenError::Malformed("TSTInfo is not version 1".into()));
    }
    Ok(tst)
}

/// Reads a token without checking who signed it (for attaching a token just issued).
pub(crate) fn read_token(
    token: &[u8],
) -> Result<(EncapsulatingSignedData<'_>, TstInfo), TokenError> {
    let sd = parse_token(token)?;
    let tst = decode_tst_info(sd.content)?;
    Ok((sd, tst))
}
