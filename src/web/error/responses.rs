//! The error answers, as the API description lists them: each type here stands for a
//! set of statuses in a handler's `#[utoipa::path(responses(...))]`, every one with the
//! [`ErrorBody`](super::ErrorBody) schema.

use std::collections::BTreeMap;

use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};

/// An error answer: the one JSON error shape.
pub fn error_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}

/// Declares error responses for `responses(...)` lists, each a status with a
/// description and the `ErrorBody` schema.
macro_rules! error_responses {
    ($($(#[$doc:meta])* $name:ident { $($status:literal => $description:literal),+ $(,)? })*) => {
        $(
            $(#[$doc])*
            pub struct $name;

            impl utoipa::IntoResponses for $name {
                fn responses() -> BTreeMap<String, RefOr<Response>> {
                    BTreeMap::from([$(($status.to_string(), error_response($description))),+])
                }
            }
        )*
    };
}

error_responses! {
    /// 400: a malformed path, query string or body.
    BadRequest { "400" => "Malformed request (path, query string or body)" }
    /// 401: no valid credentials.
    Unauthenticated { "401" => "Not signed in, or the token is unknown or expired" }
    /// 401 and 403: what any authenticated endpoint can answer.
    SignedIn {
        "401" => "Not signed in, or the token is unknown or expired",
        "403" => "The role may not do this, or the CSRF token is missing (cookie sessions)",
    }
    /// 404: the thing named in the path does not exist or is not visible to the caller.
    NotFound { "404" => "Not found, or not visible to the caller" }
    /// 409: the state does not allow it, or it exists already.
    Conflict { "409" => "The current state does not allow this, or it exists already" }
    /// 422: a field failed validation (`details.field` names it).
    Unprocessable { "422" => "A field failed validation; details.field names it" }
    /// 400, 413, 415 and 422: what any endpoint reading a JSON body can answer.
    JsonBody {
        "400" => "The body is not valid JSON for this request (unknown or mistyped fields)",
        "413" => "The body is larger than the configured limit",
        "415" => "The body is not application/json in UTF-8, or its Content-Encoding is not identity, gzip or deflate",
        "422" => "A field failed validation; details.field names it",
    }
}

/// 429: over a rate limit, with `Retry-After` (the endpoints worth guessing at).
pub struct TooManyRequests;

impl utoipa::IntoResponses for TooManyRequests {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        use utoipa::openapi::{HeaderBuilder, ObjectBuilder, Type};
        let response = ResponseBuilder::new()
            .description(
                "Too many attempts from this client, for this account or for this guarantee \
                 number; retry after the given seconds",
            )
            .header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(1)),
                    )
                    .description(Some("Seconds to wait before retrying"))
                    .build(),
            )
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        BTreeMap::from([("429".to_string(), response.into())])
    }
}
