//! Control characters in the request line: a percent-encoded NUL or escape in a path
//! segment or a query parameter is refused before any handler sees it, so that none
//! reaches a database (PostgreSQL refuses a NUL with an error) or a log line.
//!
//! A query parameter is a field: its refusal is a 422 naming it. A path is not: a
//! control character there is a 400. Both in the JSON error shape.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::ResponseError;

use super::error::ApiError;
use crate::domain::text::code_point;

/// Middleware for the API scope.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if let Err(error) = check(req.path(), req.query_string()) {
        return Ok(req.into_response(error.error_response()));
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_boxed_body)
}

/// The first control character in the decoded path or query string, as the error
/// that refuses it.
pub fn check(path: &str, query: &str) -> Result<(), ApiError> {
    if let Some((position, ch)) = first_control(&percent_decode(path, false)) {
        return Err(ApiError::bad_request(format!(
            "the path must not contain a control character ({}) at position {position}",
            code_point(ch)
        )));
    }
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = percent_decode(name, true);
        let value = percent_decode(value, true);
        if let Some((position, ch)) = first_control(&name).or(first_control(&value)) {
            let field = name.escape_default().to_string();
            return Err(ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "validation_failed",
                message: format!(
                    "{field}: must not contain a control character ({}) at position {position}",
                    code_point(ch)
                ),
                details: Some(serde_json::json!({ "field": field })),
            });
        }
    }
    Ok(())
}

/// 1-based position and character of the first control character (C0, DEL, C1).
fn first_control(s: &str) -> Option<(usize, char)> {
    s.chars()
        .enumerate()
        .find(|(_, ch)| ch.is_control())
        .map(|(i, ch)| (i + 1, ch))
}

/// Percent-decodes (and in a query, `+` as a space); invalid UTF-8 becomes U+FFFD,
/// which is no control character (the extractors refuse such text themselves).
fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_like_a_url() {
        assert_eq!(percent_decode("a%20b+c", true), "a b c");
        assert_eq!(percent_decode("a%20b+c", false), "a b+c");
        assert_eq!(percent_decode("%E6%BB%A8", false), "滨");
        assert_eq!(percent_decode("100%", false), "100%");
        assert_eq!(percent_decode("%zz%4", false), "%zz%4");
        assert_eq!(percent_decode("%ff", false), "\u{FFFD}");
    }

    #[test]
    fn control_characters_in_the_path_are_a_400() {
        assert!(check("/api/v1/projects/abc", "").is_ok());
        assert!(check("/api/v1/projects/%E6%BB%A8", "status=paid").is_ok());
        for path in [
            "/api/v1/projects/%00",
            "/api/v1/projects/a%1Bb",
            "/api/v1/x%7f",
            "/a/%C2%85",
        ] {
            let e = check(path, "").unwrap_err();
            assert_eq!((e.status.as_u16(), e.code), (400, "bad_request"), "{path}");
        }
    }

    #[test]
    fn control_characters_in_the_query_are_a_422_naming_the_parameter() {
        let e = check("/api/v1/applications", "status=paid%00").unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (422, "validation_failed"));
        assert_eq!(e.details.unwrap()["field"], "status");
        assert!(
            e.message.contains("(U+0000) at position 5"),
            "{}",
            e.message
        );
        let e = check("/x", "a=1&st%00atus=x").unwrap_err();
        assert_eq!(e.details.unwrap()["field"], "st\\u{0}atus");
        assert!(check("/x", "a=1&b=%09").is_err());
        assert!(check("/x", "a=b+c&&d").is_ok());
    }

    proptest! {
        #[test]
        fn never_panics(path in ".{0,40}", query in ".{0,40}") {
            let _ = check(&path, &query);
        }

        #[test]
        fn an_encoded_control_byte_anywhere_is_found(prefix in "[a-z/]{0,10}", byte in 0u8..32) {
            let path = format!("/{prefix}%{byte:02X}");
            prop_assert!(check(&path, "").is_err());
            let query = format!("q={prefix}%{byte:02x}");
            prop_assert!(check("/", &query).is_err());
        }
    }
}
