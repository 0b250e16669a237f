//! The API description, `GET /api/openapi.json`: generated from the handlers'
//! `#[utoipa::path]` attributes and the `ToSchema` derives on the types they read and
//! answer, never written by hand.
//!
//! Routes are registered through `utoipa-actix-web`, which takes only handlers that
//! carry a description (see [`crate::web::routes`]); the description is what that
//! registration collected, so a served route cannot go undescribed. The integration
//! test `openapi` checks the other direction: every described operation is served.

use actix_web::{get, web, HttpResponse};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::service_config::ServiceConfig;

use super::api::dto::{Binary, SignedDocument};
use super::auth::{CSRF_HEADER, SESSION_COOKIE};
use super::error::ErrorBody;
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
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required, ResponseBuilder};

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
        let error = |description: &str| -> RefOr<utoipa::openapi::Response> {
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
        };
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

/// Registers `GET /api/openapi.json`.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(openapi_json);
}

/// The description as served, serialized once when the app is built (cheap to clone
/// into each answer).
pub struct Description(web::Bytes);

impl Description {
    pub fn new(description: &utoipa::openapi::OpenApi) -> Description {
        let json = description
            .to_json()
            .unwrap_or_else(|e| unreachable!("the description serializes: {e}"));
        Description(web::Bytes::from(json))
    }
}

/// This description, as OpenAPI 3.1 JSON.
#[utoipa::path(
    tag = "openapi",
    responses((status = 200, description = "The OpenAPI description of this API", body = Object))
)]
#[get("/api/openapi.json")]
async fn openapi_json(description: web::Data<Description>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(description.0.clone())
}
