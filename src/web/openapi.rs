//! The API description, `GET /api/openapi.json`: generated from the handlers'
//! `#[utoipa::path]` attributes and the `ToSchema` derives on the types they read and
//! answer, never written by hand.
//!
//! Routes are registered through `utoipa-actix-web`, which takes only handlers that
//! carry a description (see [`crate::web::routes`]); the description is what that
//! registration collected, so a served route cannot go undescribed. The integration
//! test `openapi` checks the other direction: every described operation is served.

use actix_web::{get, web, HttpRequest, HttpResponse};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::service_config::ServiceConfig;

use super::api::dto::{Binary, SignedDocument};
use super::auth::{CSRF_HEADER, SESSION_COOKIE};
use super::error::{responses, ErrorBody};
use super::idempotency;

/// The frame of the description: what it says besides the operations (info, tags,
/// security schemes, schemas named only in hand-built responses). The operations and
/// the schemas they use are added as the routes are registered.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Baohan",
        version = env!("CARGO_PKG_VERSION"),
        description = "Electronic bid-bond guarantee exchange (电子投标保函). JSON under \
            `/api/v1`; errors answer `{ \"error\": { \"code\", \"message\", \"details\" } }` \
            with a 4xx or 5xx status. Amounts are decimal yuan strings, times RFC 3339 \
            strings in China time. Sign in with `POST /api/v1/auth/login` and send the \
            token as `Authorization: Bearer`, or (browsers) rely on the session cookie and \
            echo the CSRF token in `X-CSRF-Token` on requests that change state."
    ),
    // Types the paths name are collected from them; these are the ones only named in
    // hand-built responses.
    components(schemas(ErrorBody, Binary, SignedDocument)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "health", description = "Probes for the load balancer"),
        (name = "openapi", description = "This description"),
        (name = "auth", description = "Sign-in, sessions and API tokens"),
        (name = "admin", description = "Trust administration: anchors, CRLs, issuer certificates"),
        (name = "organizations", description = "Organizations and their users (operator)"),
        (name = "projects", description = "Tender projects, bid opening, awards (agency)"),
        (name = "applications", description = "Applying for, approving and issuing guarantees"),
        (name = "guarantees", description = "Issued guarantees, their files and lifecycle"),
        (name = "claims", description = "Demands on guarantees (索赔) and decisions"),
        (name = "verification", description = "Verifying a guarantee's signature and registration"),
        (name = "mail", description = "The mail outbox (operator)"),
        (name = "webhooks", description = "Events pushed to an organization's system, signed, with their delivery log"),
        (name = "statistics", description = "The exchange's public figures"),
        (name = "deposit-free", description = "The deposit-free city: the matters catalogue, the record categories and the credit archive"),
    )
)]
pub struct ApiDoc;

/// The security schemes the paths refer to: a bearer token (API or session token), or
/// the session cookie together with the CSRF header for requests that change state.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token (POST /api/v1/auth/tokens) or the session token from \
                         POST /api/v1/auth/login",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "The HttpOnly session cookie set by login (browsers)",
            ))),
        );
        components.add_security_scheme(
            "csrf_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                CSRF_HEADER,
                "The session's CSRF token from login; required with the cookie on requests \
                 that change state",
            ))),
        );
    }
}

/// The `Idempotency-Key` request header and the `Idempotent-Replayed` answer header on
/// every state-changing operation of a signed-in caller (keys are per user), with the
/// conflicts a key can answer. Applied to the description once the routes are
/// registered (the handlers' own descriptions do not repeat it).
pub struct IdempotencyHeaders;

impl Modify for IdempotencyHeaders {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::header::HeaderBuilder;
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        use utoipa::openapi::{RefOr, Required};

        let key = ParameterBuilder::new()
            .name(idempotency::HEADER)
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Makes the request safe to retry: a retry with the same key (per user, for \
                 the same method, path, content type and body) gets the first answer again, \
                 marked Idempotent-Replayed, and changes nothing twice, even if the server \
                 or the connection failed in between. The same key for another request is \
                 a 422 naming Idempotency-Key. Only the answer to a request that changed \
                 something is kept (for 24 hours by default); after a refusal the key is free \
                 for the corrected request.",
            ))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(200))
                    .pattern(Some("^[!-~]+$")),
            ))
            .build();
        let replayed = HeaderBuilder::new()
            .schema(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["true"])),
            )
            .description(Some(
                "true when this is the stored first answer to the request's Idempotency-Key, \
                 given again",
            ))
            .build();
        let error = responses::error_response;
        const CONFLICTS: &str = "With an Idempotency-Key: a copy of this request is in \
            progress (idempotency_key_in_progress, with Retry-After), or the request changed \
            something but its answer was lost (idempotent_answer_lost, details name what it \
            changed)";
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                let signed_in = operation
                    .security
                    .as_ref()
                    .is_some_and(|alternatives| !alternatives.is_empty());
                if !signed_in {
                    continue;
                }
                operation
                    .parameters
                    .get_or_insert_with(Vec::new)
                    .push(key.clone());
                let responses = &mut operation.responses.responses;
                for (status, response) in responses.iter_mut() {
                    if let (true, RefOr::T(response)) = (status.starts_with('2'), response) {
                        response
                            .headers
                            .insert(idempotency::REPLAYED.to_owned(), replayed.clone());
                    }
                }
                match responses.get_mut("409") {
                    Some(RefOr::T(conflict)) => {
                        conflict.description = format!("{}. {CONFLICTS}", conflict.description);
                    }
                    Some(RefOr::Ref(_)) => {}
                    None => {
                        responses.insert("409".into(), error(CONFLICTS));
                    }
                }
                responses.entry("422".into()).or_insert_with(|| {
                    error("The Idempotency-Key was used for another request (details.field)")
                });
            }
        }
    }
}

/// Adds to every operation the answers that the layers around the handlers give it,
/// so that the description lists every status an operation can answer (each with the
/// JSON error shape), whoever answers it:
///
/// - the edges ([`super::http_edges`]): 413 for a declared body over the limit (any
///   method: the body is refused unread), 408 for a body that does not arrive in time
///   (methods that send one);
/// - the `Idempotency-Key` middleware on state-changing methods under `/api/`: 400 for a
///   malformed key, 409 while the first request with the key runs, 422 for a key reused
///   for another request (the header itself: [`IdempotencyHeaders`]);
/// - the credentials extractor on operations that need them: 401, and 403 (a role that
///   may not, or a cookie session without its CSRF token);
/// - path parameters: 400 when one is not UTF-8 once percent-decoded;
/// - the database: 503 when it is busy or away, on every operation that reads it
///   (those needing credentials, and every POST).
///
/// A handler's own description of a status is kept.
pub fn add_answers_of_the_edges(description: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::ParameterIn;
    for (path, item) in description.paths.paths.iter_mut() {
        let operations = [
            ("get", &mut item.get),
            ("put", &mut item.put),
            ("post", &mut item.post),
            ("delete", &mut item.delete),
            ("patch", &mut item.patch),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else {
                continue;
            };
            let mut add = |status: &str, text: &str| {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| responses::error_response(text));
            };
            let sends_body = matches!(method, "post" | "put" | "patch");
            let signed_in = operation
                .security
                .as_ref()
                .is_some_and(|alternatives| !alternatives.is_empty());
            // The Idempotency-Key middleware's own answers (its header and its conflicts
            // are described by `IdempotencyHeaders`).
            let idempotent =
                matches!(method, "post" | "put" | "patch" | "delete") && path.starts_with("/api/");
            let has_path_parameters = operation
                .parameters
                .iter()
                .flatten()
                .any(|p| matches!(p.parameter_in, ParameterIn::Path));
            add(
                "413",
                "The declared body is larger than the configured limit",
            );
            if sends_body {
                add(
                    "408",
                    "The body did not arrive within the configured time; the connection is closed",
                );
            }
            if idempotent {
                add("400", "Malformed request, or a malformed Idempotency-Key");
                add(
                    "409",
                    "The state does not allow this, or a request with this Idempotency-Key is still running",
                );
                add(
                    "422",
                    "A field failed validation (details.field names it), or the Idempotency-Key was used for another request",
                );
            }
            if signed_in {
                add("401", "Not signed in, or the token is unknown or expired");
                add(
                    "403",
                    "The role may not do this, or the CSRF token is missing (cookie sessions)",
                );
            }
            if has_path_parameters {
                add("400", "Malformed path parameter");
            }
            if signed_in || method == "post" {
                add("503", "The database is busy or unreachable; retry shortly");
            }
        }
    }
}

/// Registers `GET /api/openapi.json`.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(openapi_json);
}

/// The description as served, serialized once when the app is built (cheap to clone
/// into each answer), with its entity tag.
pub struct Description {
    json: web::Bytes,
    etag: String,
}

impl Description {
    pub fn new(description: &utoipa::openapi::OpenApi) -> Description {
        use sha2::{Digest, Sha256};
        let json = description
            .to_json()
            .unwrap_or_else(|e| unreachable!("the description serializes: {e}"));
        let etag = format!(
            "\"{}\"",
            hex::encode(&Sha256::digest(json.as_bytes())[..16])
        );
        Description {
            json: web::Bytes::from(json),
            etag,
        }
    }
}

/// This description, as OpenAPI 3.1 JSON. Public and the same for every caller, so
/// unlike every other answer it may be cached, if revalidated (`no-cache` with an
/// `ETag`): a client that sends `If-None-Match` with the tag it holds gets 304 while the
/// running version is the same.
#[utoipa::path(
    tag = "openapi",
    responses(
        (status = 200, description = "The OpenAPI description of this API", body = Object,
            headers(("ETag" = String, description = "Entity tag of this description"))),
        (status = 304, description = "The description the client holds (If-None-Match) is current"),
    )
)]
#[get("/api/openapi.json")]
async fn openapi_json(req: HttpRequest, description: web::Data<Description>) -> HttpResponse {
    use actix_web::http::header;
    let held = req
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|line| line.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == description.etag
        });
    let mut answer = if held {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    answer
        .insert_header((header::ETAG, description.etag.clone()))
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    if held {
        answer.finish()
    } else {
        answer
            .content_type("application/json")
            .body(description.json.clone())
    }
}
