//! Organizations and their users, administered by the operator (the city's credit
//! office). Every organization is identified by its unified social credit code.

use diesel::prelude::*;

use super::listing::{contains_pattern, lower, parse_each, Params, Problems, Sort, SortKey};
use super::{new_id, require_role, Actor, Context, Listed, ServiceError, Window};
use crate::db::any_of::any_of;
use crate::db::audit::{self, AuditEvent};
use crate::db::models::{Organization, User};
use crate::db::schema::{issuer_certificates, organizations, users};
use crate::db::write_tx;
use crate::domain::party::{IssuerKind, OrgKind, ProviderKind, Role};
use crate::domain::resident_id::ResidentId;
use crate::domain::text::{self, TextRules};
use crate::domain::time::china_date;
use crate::domain::uscc::Uscc;

/// A request to register an organization, as the caller typed it.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrganization {
    #[schema(value_type = OrgKind)]
    pub kind: String,
    pub name: String,
    /// Unified social credit code (统一社会信用代码, GB 32100): 18 characters.
    #[schema(pattern = r"^[0-9A-HJ-NP-RTUW-Y]{18}$")]
    pub uscc: String,
    #[schema(value_type = Option<IssuerKind>)]
    pub issuer_kind: Option<String>,
    #[schema(value_type = Option<ProviderKind>)]
    pub provider_kind: Option<String>,
    /// Four letters or digits that issuers put into guarantee numbers; derived from the
    /// USCC when not given.
    pub short_code: Option<String>,
    pub email: Option<String>,
    /// Accept a code that fails the GB 32100 check character or looks implausible (an
    /// unknown authority, category or region: a few real ones do). Audited.
    #[serde(default)]
    pub whitelist_uscc: bool,
}

/// Registers an organization (operator only).
pub fn create_organization(
    ctx: &Context,
    actor: &Actor,
    input: NewOrganization,
) -> Result<Organization, ServiceError> {
    require_role(actor, &[Role::Operator])?;
    let at = ctx.now();
    let org = validate_organization(input, at)?;
    let mut conn = ctx.conn()?;
    ctx.write_tx(&mut conn, |c| -> Result<(), ServiceError> {
        let taken: i64 = organizations::table
            .filter(organizations::uscc.eq(&org.uscc))
            .count()
            .get_result(c)?;
        if taken > 0 {
            return Err(ServiceError::Conflict(format!(
                "uscc: an organization with the code {} is already registered",
                org.uscc
            )));
        }
        if let Some(code) = &org.short_code {
            let taken: i64 = organizations::table
                .filter(organizations::short_code.eq(code))
                .count()
                .get_result(c)?;
            if taken > 0 {
                return Err(ServiceError::Conflict(format!(
                    "short_code: {code} is used by another issuer; choose another"
                )));
            }
        }
        diesel::insert_into(organizations::table)
            .values(&org)
            .execute(c)?;
        audit::append(
            c,
            &AuditEvent {
                actor_user_id: Some(&actor.user_id),
                actor_organization_id: Some(&actor.organization_id),
                action: "create_organization",
                entity_kind: "organization",
                entity_id: &org.id,
                details: serde_json::json!({
                    "kind": org.kind,
                    "name": org.name,
                    "uscc": org.uscc,
                    "uscc_whitelisted": org.uscc_whitelisted,
                }),
                ..Default::default()
            },
            at,
        )?;
        Ok(())
    })?;
    Ok(org)
}

/// Checks every field and builds the row; errors name the field.
pub fn validate_organization(
    input: NewOrganization,
    at: chrono::NaiveDateTime,
) -> Result<Organization, ServiceError> {
    let kind: OrgKind = input.kind.parse().map_err(|_| {
        ServiceError::invalid(
            "kind",
            format!("unknown organization kind {:?}", input.kind),
        )
    })?;
    let name = required_text("name", &input.name, 200)?;
    let (uscc, whitelisted) = match Uscc::parse(&input.uscc) {
        Ok(code) => (code.as_str().to_owned(), false),
        Err(e) if input.whitelist_uscc => {
            let code = Uscc::new_unchecked_whitelisted(&input.uscc)
                .map_err(|_| ServiceError::invalid("uscc", &e))?;
            (code.as_str().to_owned(), true)
        }
        Err(e) => return Err(ServiceError::invalid("uscc", e)),
    };
    let issuer_kind = match (kind, input.issuer_kind.as_deref()) {
        (OrgKind::Issuer, Some(k)) => Some(k.parse::<IssuerKind>().map_err(|_| {
            ServiceError::invalid("issuer_kind", "must be bank, insurer or guarantor")
        })?),
        (OrgKind::Issuer, None) => {
            return Err(ServiceError::invalid(
                "issuer_kind",
                "is required for an issuer",
            ))
        }
        (_, Some(_)) => {
            return Err(ServiceError::invalid(
                "issuer_kind",
                "only an issuer has an issuer kind",
            ))
        }
        (_, None) => None,
    };
    let provider_kind = match (kind, input.provider_kind.as_deref()) {
        (OrgKind::Provider, Some(k)) => Some(k.parse::<ProviderKind>().map_err(|_| {
            ServiceError::invalid(
                "provider_kind",
                "must be hospital, hotel, library, parking or apartment",
            )
        })?),
        (OrgKind::Provider, None) => {
            return Err(ServiceError::invalid(
                "provider_kind",
                "is required for a provider",
            ))
        }
        (_, Some(_)) => {
            return Err(ServiceError::invalid(
                "provider_kind",
                "only a provider has a provider kind",
            ))
        }
        (_, None) => None,
    };
    let short_code = match (kind, input.short_code) {
        (OrgKind::Issuer, Some(code)) => Some(validate_short_code(&code)?),
        // Characters 9-12 of the USCC begin the organization code: distinctive enough
        // as a default, and the operator may choose another.
        (OrgKind::Issuer, None) => Some(uscc[8..12].to_owned()),
        (_, Some(_)) => {
            return Err(ServiceError::invalid(
                "short_code",
                "only an issuer has a short code",
            ))
        }
        (_, None) => None,
    };
    let email = input
        .email
        .map(|e| validate_email("email", &e))
        .transpose()?;
    Ok(Organization {
        id: new_id(),
        kind,
        issuer_kind,
        provider_kind,
        name,
        uscc,
        uscc_whitelisted: whitelisted,
        short_code,
        email,
        created_at: at,
    })
}

fn validate_short_code(code: &str) -> Result<String, ServiceError> {
    if code.len() == 4
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        Ok(code.to_owned())
    } else {
        Err(ServiceError::invalid(
            "short_code",
            "must be 4 characters from A-Z and 0-9",
        ))
    }
}

/// A required one-line text (a name, a reason): trimmed, NFC-normalized, at most
/// `max_chars` characters, no control, bidirectional or invisible characters (the rules
/// of [`text`]); refusals name `field`.
pub fn required_text(field: &str, value: &str, max_chars: usize) -> Result<String, ServiceError> {
    text::clean(value, TextRules::single_line(max_chars))
        .map_err(|e| ServiceError::invalid(field, e))
}

/// Like [`required_text`], for free text of several lines (a statement): line breaks
/// and tabs are kept.
pub fn required_multi_line_text(
    field: &str,
    value: &str,
    max_chars: usize,
) -> Result<String, ServiceError> {
    text::clean(value, TextRules::multi_line(max_chars))
        .map_err(|e| ServiceError::invalid(field, e))
}

/// A plausible mail address: one `@`, something on both sides, no spaces.
pub fn validate_email(field: &str, value: &str) -> Result<String, ServiceError> {
    let value = value.trim();
    let ok = value.len() <= 254
        && text::check_characters(value, false).is_ok()
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(value.split_once('@'), Some((local, domain)) if !local.is_empty() && domain.contains('.') && !domain.contains('@'));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(ServiceError::invalid(field, "is not a valid mail address"))
    }
}

/// Every organization, by name (operator only).
pub fn list_organizations(ctx: &Context, actor: &Actor) -> Result<Vec<Organization>, ServiceError> {
    require_role(actor, &[Role::Operator])?;
    let mut conn = ctx.conn()?;
    Ok(organizations::table
        .order(organizations::name.asc())
        .select(Organization::as_select())
        .load(&mut conn)?)
}

/// The issuers an enterprise can apply to: issuer organizations holding a signing
/// certificate in force now (registered, not deactivated, within its validity), so
/// that every issuer offered can actually issue. Names and kinds only are shown: which
/// enterprises apply to them is nobody else's business.
pub fn list_active_issuers(
    ctx: &Context,
    actor: &Actor,
) -> Result<Vec<Organization>, ServiceError> {
    require_role(actor, &[Role::Enterprise, Role::Operator])?;
    let now = ctx.now();
    let mut conn = ctx.conn()?;
    Ok(organizations::table
        .filter(organizations::kind.eq(OrgKind::Issuer))
        .filter(
            organizations::id.eq_any(
                issuer_certificates::table
                    .filter(issuer_certificates::deactivated_at.is_null())
                    .filter(issuer_certificates::not_before.le(now))
                    .filter(issuer_certificates::not_after.gt(now))
                    .select(issuer_certificates::organization_id),
            ),
        )
        .order(organizations::name.asc())
        .select(Organization::as_select())
        .load(&mut conn)?)
}

/// One organization: the operator sees any, others only their own.
pub fn get_organization(
    ctx: &Context,
    actor: &Actor,
    id: &str,
) -> Result<Organization, ServiceError> {
    if actor.role != Role::Operator && actor.organization_id != id {
        return Err(ServiceError::NotFound("organization".into()));
    }
    let mut conn = ctx.conn()?;
    organizations::table
        .find(id)
        .select(Organization::as_select())
        .first(&mut conn)
        .optional()?
        .ok_or_else(|| ServiceError::NotFound("organization".into()))
}

/// A request to add a user to an organization.
#[derive(Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub organization_id: String,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    #[schema(value_type = Role)]
    pub role: String,
    #[schema(min_length = 12, max_length = 1024)]
    pub password: String,
    /// Real-name check of the person behind the account (GB 11643). Kept only as an
    /// HMAC for lookup and a masked form for display.
    pub resident_id: Option<String>,
}

/// Adds a user (operator only). The role must suit the organization's kind.
pub fn create_user(ctx: &Context, actor: &Actor, input: NewUser) -> Result<User, ServiceError> {
    require_role(actor, &[Role::Operator])?;
    let username =
        text::username(&input.username).map_err(|e| ServiceError::invalid("username", e))?;
    let display_name = required_text("display_name", &input.display_name, 100)?;
    let role: Role = input
        .role
        .parse()
        .map_err(|_| ServiceError::invalid("role", format!("unknown role {:?}", input.role)))?;
    if input.password.chars().count() < 12 {
        return Err(ServiceError::invalid(
            "password",
            "must be at least 12 characters",
        ));
    }
    if input.password.len() > 1024 {
        return Err(ServiceError::invalid(
            "password",
            "must be at most 1024 bytes",
        ));
    }
    let email = input
        .email
        .map(|e| validate_email("email", &e))
        .transpose()?;
    let today = china_date(ctx.now());
    let resident = input
        .resident_id
        .map(|s| ResidentId::parse(&s, today).map_err(|e| ServiceError::invalid("resident_id", e)))
        .transpose()?;
    if role == Role::Person && resident.is_none() {
        return Err(ServiceError::invalid(
            "resident_id",
            "a resident's account needs the resident ID its credit archive is kept under",
        ));
    }
    let org = get_organization(ctx, actor, &input.organization_id)
        .map_err(|_| ServiceError::invalid("organization_id", "no such organization"))?;
    let org_kind = org.kind;
    if !role.allowed_for(org_kind) {
        return Err(ServiceError::invalid(
            "role",
            format!(
                "a user of a {} cannot have the role {}",
                org_kind.as_str(),
                role.as_str()
            ),
        ));
    }
    let at = ctx.now();
    let user = User {
        id: new_id(),
        organization_id: org.id.clone(),
        username,
        display_name,
        email,
        role,
        password_hash: super::auth::hash_password(&input.password)?,
        resident_id_hmac: resident.as_ref().map(|r| r.hmac_hex(&ctx.keys.id_hmac)),
        resident_id_masked: resident.as_ref().map(|r| r.masked()),
        active: true,
        created_at: at,
    };
    let mut conn = ctx.conn()?;
    ctx.write_tx(&mut conn, |c| -> Result<(), ServiceError> {
        let taken: i64 = users::table
            .filter(users::username.eq(&user.username))
            .count()
            .get_result(c)?;
        if taken > 0 {
            return Err(ServiceError::Conflict(format!(
                "username: {} is already taken",
                user.username
            )));
        }
        diesel::insert_into(users::table).values(&user).execute(c)?;
        audit::append(
            c,
            &AuditEvent {
                actor_user_id: Some(&actor.user_id),
                actor_organization_id: Some(&actor.organization_id),
                action: "create_user",
                entity_kind: "user",
                entity_id: &user.id,
                details: serde_json::json!({
                    "username": user.username,
                    "role": user.role,
                    "organization_id": user.organization_id,
                }),
                ..Default::default()
            },
            at,
        )?;
        Ok(())
    })?;
    Ok(user)
}

/// Deactivates a user (operator only): the user can no longer sign in, every session
/// of the user ends and every API token the user made is revoked, in one transaction.
/// An operator cannot deactivate their own account (someone must remain to administer).
pub fn deactivate_user(ctx: &Context, actor: &Actor, user_id: &str) -> Result<(), ServiceError> {
    use crate::db::schema::{api_tokens, sessions};
    require_role(actor, &[Role::Operator])?;
    if user_id == actor.user_id {
        return Err(ServiceError::Conflict(
            "you cannot deactivate your own account; ask another operator".into(),
        ));
    }
    let at = ctx.now();
    let mut conn = ctx.conn()?;
    ctx.write_tx(&mut conn, |c| -> Result<(), ServiceError> {
        let found: Option<bool> = users::table
            .find(user_id)
            .select(users::active)
            .first(c)
            .optional()?;
        match found {
            None => return Err(ServiceError::NotFound("user".into())),
            // Twice is not an error: the user stays inactive and nothing more happens.
            Some(false) => return Ok(()),
            Some(true) => {}
        }
        diesel::update(users::table.find(user_id))
            .set(users::active.eq(false))
            .execute(c)?;
        diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(c)?;
        let revoked = diesel::update(
            api_tokens::table
                .filter(api_tokens::user_id.eq(user_id))
                .filter(api_tokens::revoked_at.is_null()),
        )
        .set(api_tokens::revoked_at.eq(at))
        .execute(c)?;
        audit::append(
            c,
            &AuditEvent {
                actor_user_id: Some(&actor.user_id),
                actor_organization_id: Some(&actor.organization_id),
                action: "deactivate_user",
                entity_kind: "user",
                entity_id: user_id,
                details: serde_json::json!({ "api_tokens_revoked": revoked }),
                ..Default::default()
            },
            at,
        )?;
        Ok(())
    })
}

/// Creates the first operator organization and its user on an empty exchange, so that
/// a production database (where `baohan demo` is not used) has someone to administer
/// it. Refused once any operator exists.
pub fn bootstrap_operator(
    conn: &mut crate::db::DbConnection,
    name: &str,
    uscc: &str,
    username: &str,
    password: &str,
) -> Result<User, ServiceError> {
    let at = super::now();
    let org = validate_organization(
        NewOrganization {
            kind: OrgKind::Operator.as_str().into(),
            name: name.into(),
            uscc: uscc.into(),
            ..Default::default()
        },
        at,
    )?;
    let username = text::username(username).map_err(|e| ServiceError::invalid("username", e))?;
    if password.chars().count() < 12 {
        return Err(ServiceError::invalid(
            "password",
            "must be at least 12 characters",
        ));
    }
    let password_hash = super::auth::hash_password(password)?;
    write_tx(conn, |c| {
        let operators: i64 = organizations::table
            .filter(organizations::kind.eq(OrgKind::Operator))
            .count()
            .get_result(c)?;
        if operators > 0 {
            return Err(ServiceError::Conflict(
                "an operator exists already; further users are added through the API".into(),
            ));
        }
        diesel::insert_into(organizations::table)
            .values(&org)
            .execute(c)?;
        let user = User {
            id: new_id(),
            organization_id: org.id.clone(),
            username,
            display_name: "Operator".into(),
            email: None,
            role: Role::Operator,
            password_hash,
            resident_id_hmac: None,
            resident_id_masked: None,
            active: true,
            created_at: at,
        };
        diesel::insert_into(users::table).values(&user).execute(c)?;
        audit::append(
            c,
            &AuditEvent {
                action: "bootstrap_operator",
                entity_kind: "organization",
                entity_id: &org.id,
                details: serde_json::json!({ "uscc": org.uscc, "username": user.username }),
                ..Default::default()
            },
            at,
        )?;
        Ok(user)
    })
}

/// An organization list's filters as typed: the API's query parameters. Every one is
/// optional; blank is the same as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrganizationQuery {
    /// Kinds, repeated or comma-separated: `enterprise`, `issuer`, `agency`, `tenderee`,
    /// `provider`, `operator`.
    #[param(required = false, style = Form, explode = true)]
    pub kind: Vec<String>,
    /// Part of the name or of the unified social credit code.
    pub q: Option<String>,
    /// `name` or `created`; a leading `-` sorts descending. Default `name`.
    pub sort: Option<String>,
}

/// What an organization is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrganizationSort {
    Name,
    Created,
}

impl SortKey for OrganizationSort {
    const KEYS: &'static [(&'static str, Self)] = &[
        ("name", OrganizationSort::Name),
        ("created", OrganizationSort::Created),
    ];
    const DEFAULT: Sort<Self> = Sort {
        key: OrganizationSort::Name,
        descending: false,
    };
}

/// An organization list's filters, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationFilter {
    pub kinds: Vec<OrgKind>,
    pub text: Option<String>,
    pub sort: Sort<OrganizationSort>,
}

impl Default for OrganizationFilter {
    fn default() -> Self {
        OrganizationFilter {
            kinds: Vec::new(),
            text: None,
            sort: OrganizationSort::DEFAULT,
        }
    }
}

impl OrganizationFilter {
    /// Reads the filters from a list's parameters: what was typed and the checked
    /// filter, or every problem found (unknown names included).
    pub fn read(mut params: Params) -> (OrganizationQuery, Result<OrganizationFilter, Problems>) {
        let typed = OrganizationQuery {
            kind: params.many("kind"),
            q: params.one("q"),
            sort: params.one("sort"),
        };
        let filter = OrganizationFilter {
            kinds: parse_each(&mut params, "kind", &typed.kind),
            text: typed.q.clone(),
            sort: Sort::read(&mut params, typed.sort.as_deref()),
        };
        let checked = params.finish(filter);
        (typed, checked)
    }
}

/// The organizations (operator only) that `filter` keeps, one window of them in its
/// order with the count of all: both asked of the database.
pub fn list(
    ctx: &Context,
    actor: &Actor,
    filter: &OrganizationFilter,
    window: Window,
) -> Result<Listed<Organization>, ServiceError> {
    require_role(actor, &[Role::Operator])?;
    let pattern = filter
        .text
        .as_deref()
        .map(|t| contains_pattern(&t.to_lowercase()));
    let filtered = || {
        let mut query = organizations::table.into_boxed();
        if !filter.kinds.is_empty() {
            query = query.filter(any_of(organizations::kind, filter.kinds.clone()));
        }
        if let Some(p) = &pattern {
            query = query.filter(
                lower(organizations::name)
                    .like(p.clone())
                    .escape('\\')
                    .or(lower(organizations::uscc).like(p.clone()).escape('\\')),
            );
        }
        query
    };
    let mut conn = ctx.conn()?;
    let total: i64 = filtered().count().get_result(&mut conn)?;
    let sorted = match (filter.sort.key, filter.sort.descending) {
        (OrganizationSort::Name, false) => filtered().order_by(organizations::name.asc()),
        (OrganizationSort::Name, true) => filtered().order_by(organizations::name.desc()),
        (OrganizationSort::Created, false) => filtered().order_by(organizations::created_at.asc()),
        (OrganizationSort::Created, true) => filtered().order_by(organizations::created_at.desc()),
    };
    // The id is unique: rows with equal keys keep one order across pages.
    let rows = sorted
        .then_order_by(organizations::id.asc())
        .offset(window.offset.max(0))
        .limit(window.limit.clamp(1, 500))
        .select(Organization::as_select())
        .load(&mut conn)?;
    Ok(Listed { rows, total })
}

/// One page of the organizations (operator only), by name, whose name or code holds
/// `text` when given, with how many match.
pub fn list_organizations_page(
    ctx: &Context,
    actor: &Actor,
    text: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Organization>, i64), ServiceError> {
    let filter = OrganizationFilter {
        text: text
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned),
        ..OrganizationFilter::default()
    };
    let listed = list(ctx, actor, &filter, Window { offset, limit })?;
    Ok((listed.rows, listed.total))
}

/// The users of an organization, by username (operator only).
pub fn list_users(
    ctx: &Context,
    actor: &Actor,
    organization_id: &str,
) -> Result<Vec<User>, ServiceError> {
    require_role(actor, &[Role::Operator])?;
    let mut conn = ctx.conn()?;
    Ok(users::table
        .filter(users::organization_id.eq(organization_id))
        .order(users::username.asc())
        .select(User::as_select())
        .load(&mut conn)?)
}

/// What the operator's home counts: mail that failed, issuer certificates running out
/// within 30 days (or already out), and the organizations registered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OperatorCounts {
    pub failed_mail: i64,
    pub certificates_expiring: i64,
    pub organizations: i64,
}

pub fn operator_counts(ctx: &Context, actor: &Actor) -> Result<OperatorCounts, ServiceError> {
    use crate::db::schema::{issuer_certificates, mail_outbox};
    use crate::mail::outbox::MailStatus;
    require_role(actor, &[Role::Operator])?;
    let horizon = ctx.now() + chrono::Duration::days(30);
    let mut conn = ctx.conn()?;
    let failed_mail: i64 = mail_outbox::table
        .filter(mail_outbox::status.eq(MailStatus::Failed))
        .count()
        .get_result(&mut conn)?;
    let certificates_expiring: i64 = issuer_certificates::table
        .filter(issuer_certificates::deactivated_at.is_null())
        .filter(issuer_certificates::not_after.le(horizon))
        .count()
        .get_result(&mut conn)?;
    let organizations: i64 = organizations::table.count().get_result(&mut conn)?;
    Ok(OperatorCounts {
        failed_mail,
        certificates_expiring,
        organizations,
    })
}

/// The kind of provider an organization is (a hospital, a hotel ...); `None` for any
/// other organization.
pub fn provider_kind_of(
    ctx: &Context,
    organization_id: &str,
) -> Result<Option<ProviderKind>, ServiceError> {
    let mut conn = ctx.conn()?;
    Ok(organizations::table
        .find(organization_id)
        .select(organizations::provider_kind)
        .first::<Option<ProviderKind>>(&mut conn)
        .optional()?
        .flatten())
}
