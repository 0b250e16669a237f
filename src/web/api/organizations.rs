//! Administration of organizations and users (the operator).

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::db::models::{Organization, User};
use crate::domain::money::Amount;
use crate::domain::party::{IssuerKind, OrgKind, ProviderKind, Role};
use crate::services::organizations::{
    self, NewOrganization, NewUser, OrganizationFilter, OrganizationQuery,
};
use crate::services::{premium_terms, ServiceError};
use crate::web::api::dto::china_time;
use crate::web::api::listing::{filters, ListRequest, PageParams};
use crate::web::api::premium_terms::{PremiumTermsOut, QuoteOut};
use crate::web::auth::Authenticated;
use crate::web::error::responses::{
    BadRequest, Conflict, JsonBody, NotFound, SignedIn, Unprocessable,
};
use crate::web::error::ApiError;
use crate::web::json::Json;
use crate::web::AppState;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(create_organization)
        .service(list_organizations)
        .service(get_organization)
        .service(list_issuers)
        .service(create_user)
        .service(deactivate_user);
}

/// An organization as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OrganizationView {
    pub id: String,
    #[schema(value_type = OrgKind)]
    pub kind: String,
    #[schema(value_type = Option<IssuerKind>)]
    pub issuer_kind: Option<String>,
    #[schema(value_type = Option<ProviderKind>)]
    pub provider_kind: Option<String>,
    pub name: String,
    pub uscc: String,
    pub uscc_whitelisted: bool,
    pub short_code: Option<String>,
    pub email: Option<String>,
    pub created_at: String,
}

impl From<Organization> for OrganizationView {
    fn from(o: Organization) -> Self {
        OrganizationView {
            id: o.id,
            kind: o.kind.to_string(),
            issuer_kind: o.issuer_kind.map(|k| k.to_string()),
            provider_kind: o.provider_kind.map(|k| k.to_string()),
            name: o.name,
            uscc: o.uscc,
            uscc_whitelisted: o.uscc_whitelisted,
            short_code: o.short_code,
            email: o.email,
            created_at: china_time(o.created_at),
        }
    }
}

/// Registers an organization (operator).
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = NewOrganization,
    responses(
        (status = 201, description = "Registered", body = OrganizationView),
        SignedIn,
        JsonBody,
        Conflict,
    )
)]
#[post("/organizations")]
async fn create_organization(
    state: web::Data<AppState>,
    who: Authenticated,
    body: Json<NewOrganization>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    let ctx = who.context(&state);
    let org = web::block(move || organizations::create_organization(&ctx, &who.0, input)).await??;
    Ok(HttpResponse::Created().json(OrganizationView::from(org)))
}

/// The organizations (operator), narrowed by the filters, one page of them.
#[utoipa::path(
    tag = "organizations",
    params(OrganizationQuery, PageParams),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "One page of organizations", body = Vec<OrganizationView>,
            headers(
                ("X-Total-Count" = i64, description = "How many organizations the filters match"),
                ("Link" = String, description = "RFC 8288 links to the first, previous, next and last pages, keeping the filters"),
            )),
        SignedIn,
        Unprocessable,
    )
)]
#[get("/organizations")]
async fn list_organizations(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let (page, params) = ListRequest::of(&req)?;
    let filter = filters(params, OrganizationFilter::read)?;
    let ctx = state.ctx.clone();
    let window = page.window();
    let listed = web::block(move || organizations::list(&ctx, &who.0, &filter, window)).await??;
    let rows: Vec<OrganizationView> = listed
        .rows
        .into_iter()
        .map(OrganizationView::from)
        .collect();
    Ok(page.answer(&rows, listed.total))
}

/// An issuer an enterprise can apply to, with its premium terms in force.
#[derive(Serialize, utoipa::ToSchema)]
pub struct IssuerOut {
    id: String,
    name: String,
    #[schema(value_type = IssuerKind)]
    kind: String,
    /// The premium terms in force; null when the issuer published none or withdrew them.
    premium_terms: Option<PremiumTermsOut>,
    /// With `bond_amount`: the premium these terms give for it (null without terms).
    #[serde(skip_serializing_if = "Option::is_none")]
    quote: Option<QuoteOut>,
}

/// What the list of issuers may be asked.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct IssuersQuery {
    /// A bond amount (decimal yuan): each issuer with terms then shows the premium it
    /// would charge for it and whether it guarantees a bond that large.
    #[param(pattern = r"^[0-9]+(\.[0-9]{1,2})?$", example = "80000.00")]
    bond_amount: Option<String>,
}

/// The issuers that can issue today (enterprise, operator), each with its premium
/// terms: an issuer is listed while it holds a signing certificate in force.
#[utoipa::path(
    tag = "organizations",
    params(IssuersQuery),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "Issuers", body = Vec<IssuerOut>),
        SignedIn,
        BadRequest,
        Unprocessable,
    )
)]
#[get("/issuers")]
async fn list_issuers(
    state: web::Data<AppState>,
    who: Authenticated,
    query: web::Query<IssuersQuery>,
) -> Result<HttpResponse, ApiError> {
    let bond = query
        .bond_amount
        .as_deref()
        .map(|typed| {
            Amount::parse(typed.trim()).map_err(|e| ServiceError::invalid("bond_amount", e))
        })
        .transpose()?;
    let ctx = state.ctx.clone();
    let issuers = web::block(move || premium_terms::issuers_with_terms(&ctx, &who.0)).await??;
    Ok(HttpResponse::Ok().json(
        issuers
            .into_iter()
            .map(|(o, terms)| IssuerOut {
                kind: o.issuer_kind.map(|k| k.to_string()).unwrap_or_default(),
                id: o.id,
                name: o.name,
                premium_terms: terms.as_ref().and_then(PremiumTermsOut::of),
                quote: bond.and_then(|b| terms.as_ref().and_then(|t| QuoteOut::of(t, b))),
            })
            .collect::<Vec<_>>(),
    ))
}

/// One organization.
#[utoipa::path(
    tag = "organizations",
    params(("id" = String, Path, description = "Organization id")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The organization", body = OrganizationView),
        SignedIn,
        NotFound,
    )
)]
#[get("/organizations/{id}")]
async fn get_organization(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = state.ctx.clone();
    let org = web::block(move || organizations::get_organization(&ctx, &who.0, &id)).await??;
    Ok(HttpResponse::Ok().json(OrganizationView::from(org)))
}

/// A user as the API shows it: never the password hash, only the masked ID number.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UserView {
    id: String,
    organization_id: String,
    username: String,
    display_name: String,
    email: Option<String>,
    #[schema(value_type = Role)]
    role: String,
    resident_id: Option<String>,
    active: bool,
    created_at: String,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        UserView {
            id: u.id,
            organization_id: u.organization_id,
            username: u.username,
            display_name: u.display_name,
            email: u.email,
            role: u.role.to_string(),
            resident_id: u.resident_id_masked,
            active: u.active,
            created_at: china_time(u.created_at),
        }
    }
}

/// Adds a user to an organization (operator).
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    request_body = NewUser,
    responses(
        (status = 201, description = "Created", body = UserView),
        SignedIn,
        JsonBody,
        NotFound,
        Conflict,
    )
)]
#[post("/users")]
async fn create_user(
    state: web::Data<AppState>,
    who: Authenticated,
    body: Json<NewUser>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    let ctx = who.context(&state);
    let user = web::block(move || organizations::create_user(&ctx, &who.0, input)).await??;
    Ok(HttpResponse::Created().json(UserView::from(user)))
}

/// Deactivates a user (operator): no more sign-in, every session ends, every API token
/// the user made is revoked.
#[utoipa::path(
    tag = "organizations",
    params(("id" = String, Path, description = "User id")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 204, description = "Deactivated (or already inactive)"),
        SignedIn,
        NotFound,
        Conflict,
    )
)]
#[post("/users/{id}/deactivate")]
async fn deactivate_user(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = who.context(&state);
    web::block(move || organizations::deactivate_user(&ctx, &who.0, &id)).await??;
    Ok(HttpResponse::NoContent().finish())
}
