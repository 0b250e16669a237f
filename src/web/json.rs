//! JSON request bodies: the extractor [`Json`] every handler takes its body with.
//!
//! Stricter than actix's own, on purpose:
//! - the content type is `application/json`, with at most `charset=utf-8`; another
//!   charset (`utf-16`) or type is 415, not read as UTF-8 by mistake;
//! - a `Content-Encoding` other than `identity`, `gzip` or `deflate` (the ones this
//!   build decodes), or several stacked, is 415, not read as plain bytes;
//! - the document is read once for what serde would let through silently: a key twice
//!   in one object (the last would win) is a 400, and a control character in any
//!   string or key (C0 but tab, CR and LF; DEL; C1) is a 422 naming the field, so that
//!   a NUL never reaches a database (PostgreSQL refuses it with an error);
//! - it is then deserialized with `serde_path_to_error`, so a wrong type names the
//!   field (`sections[1].bond_amount`) as well as the line and column.
//!
//! Errors keep the codes clients know: `payload_too_large` (413),
//! `unsupported_media_type` (415), `invalid_json` (400), `validation_failed` (422);
//! `details` holds `field`, `line` and `column` where they are known.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::{HeaderMap, CONTENT_ENCODING, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest};
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::error::ApiError;
use crate::domain::text::code_point;

/// A JSON body of type `T`, read by the rules of this module.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    /// The body.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let headers_ok = match is_json(req.headers()) {
            Ok(true) => check_content_encoding(req.headers()),
            Ok(false) => Err(not_json()),
            Err(e) => Err(e),
        };
        // The body as the payload limit allows, decoded (`PayloadConfig`).
        let body = headers_ok.map(|()| actix_web::web::Bytes::from_request(req, payload));
        Box::pin(async move {
            let body = body?.await.map_err(body_error)?;
            Ok(Json(parse(&body)?))
        })
    }
}

/// Reads a JSON document by the rules of this module (duplicate keys and control
/// characters refused, errors naming the field, line and column).
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    check_document(body)?;
    let mut reader = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut reader).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let field = (path != ".").then_some(path);
        invalid_json(&inner, field)
    })?;
    reader.end().map_err(|e| invalid_json(&e, None))?;
    Ok(value)
}

/// Whether the `Content-Type` is JSON: `Ok(true)` for `application/json` with at most
/// `charset=utf-8`, `Ok(false)` for another type (or none), and a 415 for JSON in
/// another charset or with other parameters.
pub fn is_json(headers: &HeaderMap) -> Result<bool, ApiError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Ok(false);
    };
    let Ok(value) = value.to_str() else {
        return Ok(false);
    };
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Ok(false);
    }
    for parameter in parts.map(str::trim).filter(|p| !p.is_empty()) {
        let utf8 = parameter.split_once('=').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("charset")
                && value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        });
        if !utf8 {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!(
                    "send the body as application/json in UTF-8; {parameter:?} is not accepted"
                ),
            ));
        }
    }
    Ok(true)
}

/// The `Content-Encoding`s this build decodes (actix-web's `compress-gzip` feature).
pub const CONTENT_ENCODINGS: [&str; 3] = ["identity", "gzip", "deflate"];

/// Refuses a body whose encoding would not be decoded: anything but one of
/// [`CONTENT_ENCODINGS`], given once (actix reads an unknown or stacked encoding as
/// plain bytes, and a header twice is ambiguous).
pub fn check_content_encoding(headers: &HeaderMap) -> Result<(), ApiError> {
    let values: Vec<_> = headers.get_all(CONTENT_ENCODING).collect();
    let known = match values.as_slice() {
        [] => true,
        [one] => one.to_str().is_ok_and(|v| {
            CONTENT_ENCODINGS
                .iter()
                .any(|known| v.trim().eq_ignore_ascii_case(known))
        }),
        _ => false,
    };
    if known {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "the body's Content-Encoding must be one of {}, given once",
                CONTENT_ENCODINGS.join(", ")
            ),
        ))
    }
}

fn not_json() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "send the body as application/json",
    )
}

/// The body could not be read: too large (413), or broken (a bad gzip stream, a
/// dropped connection: 400).
fn body_error(e: actix_web::Error) -> ApiError {
    use actix_web::error::PayloadError;
    match e.as_error::<PayloadError>() {
        Some(PayloadError::Overflow) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is larger than the limit",
        ),
        _ if e.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is larger than the limit",
        ),
        _ => ApiError::bad_request(format!("could not read the request body: {e}")),
    }
}

/// A 400 for a document serde refused, with the field and position when known.
fn invalid_json(e: &serde_json::Error, field: Option<String>) -> ApiError {
    let message = match &field {
        Some(field) => format!("invalid JSON body: {field}: {e}"),
        None => format!("invalid JSON body: {e}"),
    };
    let mut details = serde_json::json!({ "line": e.line(), "column": e.column() });
    if let Some(field) = field {
        details["field"] = field.into();
    }
    ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_json",
        message,
        details: Some(details),
    }
}

/// What the first reading found wrong, besides syntax.
#[derive(Debug)]
enum Problem {
    DuplicateKey {
        field: String,
    },
    Control {
        field: String,
        ch: char,
        position: usize,
    },
}

/// Walks the whole document once: duplicate keys and control characters.
fn check_document(body: &[u8]) -> Result<(), ApiError> {
    let found = RefCell::new(None);
    let mut reader = serde_json::Deserializer::from_slice(body);
    let walked = Node {
        path: String::new(),
        found: &found,
    }
    .deserialize(&mut reader)
    .and_then(|()| reader.end());
    let Err(e) = walked else {
        return Ok(());
    };
    let position = serde_json::json!({ "line": e.line(), "column": e.column() });
    let with = |field: &str| {
        let mut details = position.clone();
        details["field"] = field.into();
        Some(details)
    };
    Err(match found.into_inner() {
        Some(Problem::DuplicateKey { field }) => ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_json",
            message: format!(
                "invalid JSON body: {field} appears twice (line {}, column {}); send each key once",
                e.line(),
                e.column()
            ),
            details: with(&field),
        },
        Some(Problem::Control {
            field,
            ch,
            position,
        }) => ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "validation_failed",
            message: format!(
                "{field}: must not contain a control character ({}) at position {position}",
                code_point(ch)
            ),
            details: with(&field),
        },
        None => invalid_json(&e, None),
    })
}

/// Control characters a JSON string may not carry: every C0 character but tab, LF and
/// CR (PEM text and multi-line statements have line breaks), DEL and the C1 range.
fn refused_control(ch: char) -> bool {
    ch.is_control() && !matches!(ch, '\t' | '\n' | '\r')
}

fn first_control(s: &str) -> Option<(usize, char)> {
    s.chars()
        .enumerate()
        .find(|(_, ch)| refused_control(*ch))
        .map(|(i, ch)| (i + 1, ch))
}

/// One value of the document at `path` (`sections[1].name`, as serde_path_to_error
/// writes paths).
struct Node<'a> {
    path: String,
    found: &'a RefCell<Option<Problem>>,
}

impl Node<'_> {
    fn refuse<E: de::Error>(&self, problem: Problem) -> E {
        let message = format!("{problem:?}");
        *self.found.borrow_mut() = Some(problem);
        E::custom(message)
    }

    fn child(&self, segment: fmt::Arguments<'_>) -> String {
        if self.path.is_empty() {
            segment.to_string()
        } else {
            format!("{}.{segment}", self.path)
        }
    }

    fn check_str<E: de::Error>(&self, field: &str, s: &str) -> Result<(), E> {
        match first_control(s) {
            Some((position, ch)) => Err(self.refuse(Problem::Control {
                field: if field.is_empty() {
                    ".".into()
                } else {
                    field.into()
                },
                ch,
                position,
            })),
            None => Ok(()),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        self.check_str(&self.path, s)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        loop {
            let element = Node {
                path: format!("{}[{index}]", self.path),
                found: self.found,
            };
            if seq.next_element_seed(element)?.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if first_control(&key).is_some() {
                // Named with the character escaped: the path is printed back.
                let path = self.child(format_args!("{}", key.escape_default()));
                self.check_str::<A::Error>(&path, &key)?;
            }
            let path = self.child(format_args!("{key}"));
            if !seen.insert(key) {
                return Err(self.refuse(Problem::DuplicateKey { field: path }));
            }
            map.next_value_seed(Node {
                path,
                found: self.found,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Section {
        #[allow(dead_code)]
        code: String,
        #[allow(dead_code)]
        bond_amount: String,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Project {
        #[allow(dead_code)]
        name: String,
        #[serde(default)]
        sections: Vec<Section>,
        #[serde(default)]
        bond_amounts: BTreeMap<String, String>,
    }

    fn field_of(e: &ApiError) -> Option<&str> {
        e.details.as_ref()?.get("field")?.as_str()
    }

    #[test]
    fn a_good_document_parses() {
        let p: Project = parse(
            br#"{"name":"n","sections":[{"code":"A","bond_amount":"1.00"}],"bond_amounts":{"A":"2.00","B":"3.00"}}"#,
        )
        .unwrap();
        assert_eq!(p.sections.len(), 1);
        assert_eq!(p.bond_amounts.len(), 2);
        // Line breaks and tabs in strings are for the fields to judge.
        let p: Project = parse(b"{\"name\":\"line\\none\\tand\\r\\n\"}").unwrap();
        assert_eq!(p.name, "line\none\tand\r\n");
    }

    #[test]
    fn duplicate_keys_are_refused_anywhere() {
        for (body, field) in [
            (r#"{"name":"a","name":"b"}"#, "name"),
            (
                r#"{"name":"a","bond_amounts":{"S1":"1.00","S1":"9.00"}}"#,
                "bond_amounts.S1",
            ),
            (
                r#"{"name":"a","sections":[{"code":"A","bond_amount":"1"},{"code":"B","code":"C","bond_amount":"1"}]}"#,
                "sections[1].code",
            ),
        ] {
            let e = parse::<Project>(body.as_bytes()).unwrap_err();
            assert_eq!((e.status.as_u16(), e.code), (400, "invalid_json"), "{body}");
            assert_eq!(field_of(&e), Some(field), "{e:?}");
            assert!(e.message.contains("appears twice"), "{}", e.message);
            let details = e.details.unwrap();
            assert_eq!(details["line"], 1);
            assert!(details["column"].as_u64().unwrap() > 1);
        }
        // Also inside values no struct reads.
        let e = parse::<serde_json::Value>(br#"[{"a":{"b":1,"b":2}}]"#).unwrap_err();
        assert_eq!(field_of(&e), Some("[0].a.b"));
    }

    #[test]
    fn control_characters_are_refused_in_strings_and_keys() {
        for (body, field, code) in [
            (r#"{"name":"a\u0000b"}"#, "name", "U+0000"),
            (
                r#"{"name":"a","sections":[{"code":"A","bond_amount":"1"},{"code":"\u001b[2J","bond_amount":"1"}]}"#,
                "sections[1].code",
                "U+001B",
            ),
            (
                r#"{"name":"a","bond_amounts":{"S\u0000":"1"}}"#,
                "bond_amounts.S\\u{0}",
                "U+0000",
            ),
            (r#"{"name":"\u007f"}"#, "name", "U+007F"),
            (r#"{"name":"\u0085"}"#, "name", "U+0085"),
            ("\"\\u0000\"", ".", "U+0000"),
        ] {
            let e = parse::<serde_json::Value>(body.as_bytes()).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.code),
                (422, "validation_failed"),
                "{body}"
            );
            assert_eq!(field_of(&e), Some(field), "{e:?}");
            assert!(e.message.contains(code), "{}", e.message);
        }
    }

    #[test]
    fn type_errors_name_the_field_and_the_position() {
        let body = "{\n  \"name\": \"n\",\n  \"sections\": [\n    {\"code\": \"A\", \"bond_amount\": 5}\n  ]\n}";
        let e = parse::<Project>(body.as_bytes()).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (400, "invalid_json"));
        assert_eq!(field_of(&e), Some("sections[0].bond_amount"));
        let details = e.details.unwrap();
        assert_eq!(details["line"], 4);
        assert!(e.message.contains("invalid type"), "{}", e.message);
        assert!(e.message.contains("line 4"), "{}", e.message);
        // Unknown and missing fields at the top name no field but say which.
        let e = parse::<Project>(br#"{"name":"n","colour":"red"}"#).unwrap_err();
        assert!(e.message.contains("colour"), "{}", e.message);
        let e = parse::<Project>(b"{}").unwrap_err();
        assert!(e.message.contains("missing field `name`"), "{}", e.message);
        // Syntax: truncated, trailing, not UTF-8, a lone surrogate.
        for bad in [
            &b"{\"name\": "[..],
            b"{\"name\":\"n\"} x",
            b"{\"name\":\"\xff\"}",
            br#"{"name":"\ud800"}"#,
        ] {
            let e = parse::<Project>(bad).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.code),
                (400, "invalid_json"),
                "{bad:?}"
            );
        }
    }

    fn headers(name: &'static str, values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                actix_web::http::header::HeaderName::from_static(name),
                HeaderValue::from_static(v),
            );
        }
        h
    }

    #[test]
    fn only_json_in_utf_8_is_json() {
        for ok in [
            "application/json",
            "Application/JSON; charset=UTF-8",
            "application/json;charset=\"utf-8\"",
        ] {
            assert_eq!(
                is_json(&headers("content-type", &[ok])).ok(),
                Some(true),
                "{ok}"
            );
        }
        for other in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/jsonx",
            "application/vnd.api+json",
        ] {
            assert_eq!(
                is_json(&headers("content-type", &[other])).ok(),
                Some(false),
                "{other}"
            );
        }
        assert_eq!(is_json(&HeaderMap::new()).ok(), Some(false));
        for refused in [
            "application/json; charset=utf-16",
            "application/json; charset=latin1",
            "application/json; boundary=x",
        ] {
            let e = is_json(&headers("content-type", &[refused])).unwrap_err();
            assert_eq!(e.status.as_u16(), 415, "{refused}");
        }
    }

    #[test]
    fn only_the_encodings_decoded_here_pass() {
        assert!(check_content_encoding(&HeaderMap::new()).is_ok());
        for ok in ["gzip", "deflate", "identity", " GZIP "] {
            assert!(
                check_content_encoding(&headers("content-encoding", &[ok])).is_ok(),
                "{ok}"
            );
        }
        for refused in [
            "br",
            "zstd",
            "compress",
            "x-gzip",
            "gzip, gzip",
            "gzip,identity",
            "",
            "base64",
        ] {
            let e = check_content_encoding(&headers("content-encoding", &[refused])).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.code),
                (415, "unsupported_media_type"),
                "{refused:?}"
            );
        }
        let twice = headers("content-encoding", &["gzip", "gzip"]);
        assert!(check_content_encoding(&twice).is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse::<serde_json::Value>(&body);
        }

        #[test]
        fn any_document_serde_json_writes_without_controls_parses(
            value in proptest::collection::btree_map("[a-z\u{4e00}-\u{4e10}]{1,5}", "[ -~\u{4e00}-\u{4e10}]{0,8}", 0..6)
        ) {
            let body = serde_json::to_vec(&value).unwrap();
            let back: BTreeMap<String, String> = parse(&body).unwrap();
            prop_assert_eq!(back, value);
        }

        #[test]
        fn a_control_character_in_any_value_is_named(
            value in proptest::collection::btree_map("[a-z]{1,5}", "[a-z]{0,8}", 1..6),
            pick in any::<proptest::sample::Index>(),
            at in any::<proptest::sample::Index>(),
            bad in prop_oneof![0u32..9, 11u32..13, 14u32..32, 127u32..160].prop_map(|c| char::from_u32(c).unwrap()),
        ) {
            let mut value = value;
            let key = pick.get(&value.keys().cloned().collect::<Vec<_>>()).clone();
            let entry = value.get_mut(&key).unwrap();
            let mut chars: Vec<char> = entry.chars().collect();
            let position = at.index(chars.len() + 1);
            chars.insert(position, bad);
            *entry = chars.into_iter().collect();
            let body = serde_json::to_vec(&value).unwrap();
            let e = parse::<BTreeMap<String, String>>(&body).unwrap_err();
            prop_assert_eq!(e.code, "validation_failed");
            prop_assert_eq!(field_of(&e), Some(key.as_str()));
            let expected = format!("at position {}", position + 1);
            prop_assert!(e.message.contains(&expected), "{}", e.message);
        }
    }
}
