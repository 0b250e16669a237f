//! Events pushed to the systems of issuers, agencies and enterprises (webhooks).
//!
//! An organization registers one endpoint. A use case that causes an event writes it to
//! `webhook_events` in its own transaction (a rolled-back change pushes nothing, a
//! committed one is never lost), addressed to each organization entitled to know, and
//! only when that organization has an endpoint. The worker ([`worker`]) delivers each
//! event at least once, retrying with backoff; the body's bytes are fixed when the event
//! is written, so every delivery of it carries the same `id` and receivers de-duplicate
//! on it. Each try is signed ([`signature`]) and logged ([`Attempt`]); the organization
//! and the operator read the log and send an event again by hand.
//!
//! An event says what happened and names it (an application id, a guarantee number); it
//! carries nothing its recipient could not read over the API, and goes only to whom the
//! API would show it (no agency learns of a bond before bid opening).

pub mod http;
pub mod signature;
pub mod worker;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::listing::{parse_each, Params, Problems};
use super::{require_role, Actor, Context, Listed, ServiceError, Window};
use crate::db::audit::{self, AuditEvent};
use crate::db::columns::text_columns;
use crate::db::schema::{organizations, webhook_attempts, webhook_endpoints, webhook_events};
use crate::db::DbConnection;
use crate::domain::party::Role;
use crate::domain::string_enum;
use crate::domain::time::china_rfc3339;

string_enum! {
    /// What an event announces.
    pub enum EventKind ("event type") {
        /// An application arrived in the issuer's queue (to the issuer).
        ApplicationSubmitted => "application.submitted",
        /// The issuer confirmed the premium paid (to the enterprise).
        PaymentConfirmed => "payment.confirmed",
        /// A guarantee was issued (to the enterprise).
        GuaranteeIssued => "guarantee.issued",
        /// An amendment waits for the issuer's signature (to the issuer).
        AmendmentToSign => "amendment.to_sign",
        /// A signed reduction waits for the beneficiary's side (to the agency).
        AmendmentToAccept => "amendment.to_accept",
        /// The agency accepted a reduction: it is in force (to the issuer).
        AmendmentAccepted => "amendment.accepted",
        /// The agency refused a reduction (to the issuer).
        AmendmentRefused => "amendment.refused",
        /// The agency accepted the bond in place of cash (to the enterprise and issuer).
        GuaranteeAccepted => "guarantee.accepted",
        /// The guarantee was released (to the enterprise and issuer).
        GuaranteeReleased => "guarantee.released",
        /// The beneficiary's agency filed a claim (to the issuer and enterprise).
        ClaimFiled => "claim.filed",
        /// The issuer decided a claim (to the agency and enterprise).
        ClaimDecided => "claim.decided",
        /// A test event the organization asked for.
        Ping => "ping",
    }
}

string_enum! {
    /// Where an event's delivery stands.
    pub enum EventStatus ("event status") {
        /// Waiting for its next try.
        Pending => "pending",
        /// A try was answered with 2xx.
        Delivered => "delivered",
        /// Given up after the last try; a manual redelivery sends it again.
        Failed => "failed",
    }
}

text_columns!(EventKind, EventStatus);

/// An organization's endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_endpoints)]
pub struct Endpoint {
    pub organization_id: String,
    pub url: String,
    /// Moved by a rotation: the secret is derived from it.
    pub secret_version: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// An event for one organization, and its delivery state.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_events)]
pub struct Event {
    pub id: String,
    pub organization_id: String,
    pub kind: EventKind,
    /// The JSON body as every delivery sends it.
    pub body: String,
    pub status: EventStatus,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub locked_until: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub delivered_at: Option<NaiveDateTime>,
}

/// One try at delivering an event.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_attempts)]
pub struct Attempt {
    pub id: String,
    pub event_id: String,
    pub attempted_at: NaiveDateTime,
    pub url: String,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i32,
}

/// Who may keep an endpoint: the organizations events go to.
const RECEIVERS: &[Role] = &[Role::Issuer, Role::Agency, Role::Enterprise];

/// The longest endpoint address accepted.
const MAX_URL: usize = 500;

/// The signing secret of `organization_id`'s endpoint at `version`: derived from the
/// master key, so the database holds none, and a rotation (a new version) ends the old
/// one at once.
pub fn secret(ctx: &Context, organization_id: &str, version: i32) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&ctx.keys.webhook)
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(organization_id.as_bytes());
    mac.update(b":");
    mac.update(version.to_string().as_bytes());
    format!("whsec_{}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks an endpoint address: absolute `https://` (or `http://` where private
/// addresses are allowed), a host, no user name or password (they would be logged), no
/// fragment, and, unless private addresses are allowed, not an address of a private
/// network written out (names are checked when delivering).
pub fn check_url(url: &str, allow_private: bool) -> Result<String, ServiceError> {
    let bad = |m: &str| ServiceError::invalid("url", m);
    let url = url.trim();
    if url.len() > MAX_URL {
        return Err(bad(&format!("at most {MAX_URL} characters")));
    }
    let parsed = url::Url::parse(url).map_err(|e| bad(&format!("not an absolute URL: {e}")))?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err(bad("must start with https://")),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("must not carry a user name or password"));
    }
    if parsed.fragment().is_some() {
        return Err(bad("must not carry a fragment (#…)"));
    }
    let host = match parsed.host() {
        Some(host) => host,
        None => return Err(bad("must name a host")),
    };
    let literal = match host {
        url::Host::Ipv4(v4) => Some(std::net::IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(std::net::IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    };
    if let Some(ip) = literal {
        if !allow_private && !http::is_public(ip) {
            return Err(bad("must not be a loopback, private or link-local address"));
        }
    }
    Ok(parsed.to_string())
}

/// The endpoint as its organization sees it, with the secret when it was just made.
#[derive(Debug, Clone)]
pub struct EndpointView {
    pub endpoint: Endpoint,
    /// Shown once: when the endpoint is first registered and after each rotation.
    pub secret: Option<String>,
}

/// Locks the organization's row, so that its endpoint is written by one transaction at
/// a time (a no-op update; it moves nothing, not even the credential epoch).
fn lock_organization(c: &mut DbConnection, organization_id: &str) -> Result<(), ServiceError> {
    diesel::update(organizations::table.find(organization_id))
        .set(organizations::name.eq(organizations::name))
        .execute(c)?;
    Ok(())
}

fn find_endpoint(
    c: &mut DbConnection,
    organization_id: &str,
) -> Result<Option<Endpoint>, ServiceError> {
    Ok(webhook_endpoints::table
        .find(organization_id)
        .select(Endpoint::as_select())
        .first(c)
        .optional()?)
}

/// Registers the actor's organization's endpoint, or moves it to another address
/// (the secret stays). The secret is returned when the endpoint is new.
pub fn set_endpoint(ctx: &Context, actor: &Actor, url: &str) -> Result<EndpointView, ServiceError> {
    require_role(actor, RECEIVERS)?;
    let url = check_url(url, ctx.limits.webhook_allow_private)?;
    let at = ctx.now();
    let org = actor.organization_id.clone();
    let mut conn = ctx.conn()?;
    let (endpoint, new) = ctx.write_tx(&mut conn, |c| {
        lock_organization(c, &org)?;
        let (endpoint, new) = match find_endpoint(c, &org)? {
            Some(old) if old.url == url => return Ok((old, false)),
            Some(old) => {
                diesel::update(webhook_endpoints::table.find(&org))
                    .set((
                        webhook_endpoints::url.eq(&url),
                        webhook_endpoints::updated_at.eq(at),
                    ))
                    .execute(c)?;
                (
                    Endpoint {
                        url: url.clone(),
                        updated_at: at,
                        ..old
                    },
                    false,
                )
            }
            None => {
                let endpoint = Endpoint {
                    organization_id: org.clone(),
                    url: url.clone(),
                    secret_version: 1,
                    created_at: at,
                    updated_at: at,
                };
                diesel::insert_into(webhook_endpoints::table)
                    .values(&endpoint)
                    .execute(c)?;
                (endpoint, true)
            }
        };
        audit::append(
            c,
            &AuditEvent {
                actor_user_id: Some(&actor.user_id),
                actor_organization_id: Some(&actor.organization_id),
                action: "set_webhook_endpoint",
                entity_kind: "organization",
                entity_id: &org,
                details: json!({ "url": url, "new": new }),
                ..Default::default()
            },
            at,
        )?;
        Ok((endpoint, new))
    })?;
    let secret = new.then(|| secret(ctx, &endpoint.organization_id, endpoint.secret_version));
    Ok(EndpointView { endpoint, secret })
}

/// The actor's organization's endpoint, without its secret.
pub fn get_endpoint(ctx: &Context, actor: &Actor) -> Result<Endpoint, ServiceError> {
    require_role(actor, RECEIVERS)?;
    let mut conn = ctx.conn()?;
    find_endpoint(&mut conn, &actor.organization_id)?
        .ok_or_else(|| ServiceError::NotFound("webhook endpoint".into()))
}

/// A new secret for the actor's organization's endpoint; the old one ends at once.
pub fn rotate_secret(ctx: &Context, actor: &Actor) -> Result<EndpointView, ServiceError> {
    require_role(actor, RECEIVERS)?;
    let at = ctx.now();
    let org = actor.organization_id.clone();
    let mut conn = ctx.conn()?;
    let endpoint = ctx.write_tx(&mut conn, |c| {
        let changed = diesel::update(webhook_endpoints::table.find(&org))
            .set((
                webhook_endpoints::secret_version.eq(webhook_endpoints::secret_version + 1),
                webhook_endpoints::updated_at.eq(at),
            ))
            .execute(c)?;
        if changed != 1 {
            return Err(ServiceError::NotFound("webhook endpoint".into()));
        }
        let endpoint = find_endpoint(c, &org)?
            .ok_or_else(|| ServiceError::NotFound("webhook endpoint".into()))?;
        audit::append(
            c,
            &AuditEvent {
                actor_user_id: Some(&actor.user_id),
                actor_organization_id: Some(&actor.organization_id),
                action: "rotate_webhook_secret",
                entity_kind: "organization",
                entity_id: &org,
                details: json!({ "secret_version": endpoint.secret_version }),
                ..Default::default()
            },
            at,
        )?;
        Ok(endpoint)
    })?;
    let secret = secret(ctx, &endpoint.organization_id, endpoint.secret_version);
    Ok(EndpointView {
        endpoint,
        secret: Some(secret),
    })
}

/// Removes the actor's organization's endpoint. Events still waiting are not sent; they
/// fail at their next try, visibly, and can be sent again once an endpoint is back.
pub fn remove_endpoint(ctx: &Context, actor: &Actor) -> Result<(), ServiceError> {
    require_role(actor, RECEIVERS)?;
    let at = ctx.now();
    let org = actor.organization_id.clone();
    let mut conn = ctx.conn()?;
    ctx.write_tx(&mut conn, |c| {
        let removed = diesel::delete(webhook_endpoints::table.find(&org)).execute(c)?;
        if removed != 1 {
            return Err(ServiceError::NotFound("webhook endpoint".into()));
        }
        audit::append(
            c,
            &AuditEvent {
                actor_user_id: Some(&actor.user_id),
                actor_organization_id: Some(&actor.organization_id),
                action: "remove_webhook_endpoint",
                entity_kind: "organization",
                entity_id: &org,
                details: json!({}),
                ..Default::default()
            },
            at,
        )?;
        Ok(())
    })
}

/// Writes an event for `to` in the caller's transaction, if `to` has an endpoint.
/// `data` names what happened; the body adds the event's id, type and time.
pub fn emit(
    c: &mut DbConnection,
    to: &str,
    kind: EventKind,
    data: Value,
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    let listening: i64 = webhook_endpoints::table
        .filter(webhook_endpoints::organization_id.eq(to))
        .count()
        .get_result(c)?;
    if listening == 0 {
        return Ok(());
    }
    let id = uuid::Uuid::now_v7().to_string();
    let body = json!({
        "id": id,
        "type": kind,
        "created_at": china_rfc3339(at),
        "data": data,
    });
    let event = Event {
        id,
        organization_id: to.to_owned(),
        kind,
        body: body.to_string(),
        status: EventStatus::Pending,
        attempts: 0,
        next_attempt_at: at,
        locked_until: None,
        last_error: None,
        created_at: at,
        delivered_at: None,
    };
    diesel::insert_into(webhook_events::table)
        .values(&event)
        .execute(c)?;
    Ok(())
}

/// An event about an application, to `to` (its issuer or its enterprise).
pub fn emit_application(
    c: &mut DbConnection,
    kind: EventKind,
    view: &super::views::ApplicationView,
    to: &str,
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    let data = json!({
        "application_id": view.application.id,
        "status": view.application.status,
        "project_code": view.project.code,
        "section_code": view.section.code,
        "amount": crate::domain::money::Amount::from_fen(view.application.amount_fen).to_string(),
    });
    emit(c, to, kind, data, at)
}

/// An event about a guarantee, to each of `to` (parties of the guarantee only).
pub fn emit_guarantee(
    c: &mut DbConnection,
    kind: EventKind,
    view: &super::views::GuaranteeView,
    to: &[&str],
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    let data = json!({
        "guarantee_number": view.guarantee.number,
        "application_id": view.guarantee.application_id,
        "status": view.guarantee.status,
        "project_code": view.project.code,
        "section_code": view.section.code,
    });
    for org in to {
        emit(c, org, kind, data.clone(), at)?;
    }
    Ok(())
}

/// An event about a claim on a guarantee, to each of `to`.
pub fn emit_claim(
    c: &mut DbConnection,
    kind: EventKind,
    view: &super::views::GuaranteeView,
    claim: &crate::db::models::Claim,
    to: &[&str],
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    let data = json!({
        "claim_id": claim.id,
        "status": claim.status,
        "amount": crate::domain::money::Amount::from_fen(claim.amount_fen).to_string(),
        "guarantee_number": view.guarantee.number,
        "project_code": view.project.code,
        "section_code": view.section.code,
    });
    for org in to {
        emit(c, org, kind, data.clone(), at)?;
    }
    Ok(())
}

/// Sends the actor's organization a test event.
pub fn ping(ctx: &Context, actor: &Actor) -> Result<Event, ServiceError> {
    require_role(actor, RECEIVERS)?;
    let at = ctx.now();
    let org = actor.organization_id.clone();
    let mut conn = ctx.conn()?;
    ctx.write_tx(&mut conn, |c| {
        if find_endpoint(c, &org)?.is_none() {
            return Err(ServiceError::NotFound("webhook endpoint".into()));
        }
        emit(c, &org, EventKind::Ping, json!({}), at)?;
        Ok(webhook_events::table
            .filter(webhook_events::organization_id.eq(&org))
            .filter(webhook_events::kind.eq(EventKind::Ping))
            .order((webhook_events::created_at.desc(), webhook_events::id.desc()))
            .select(Event::as_select())
            .first(c)?)
    })
}

/// An event list's filters as typed: the API's query parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// States, repeated or comma-separated: `pending`, `delivered`, `failed`.
    #[param(required = false, style = Form, explode = true)]
    pub status: Vec<String>,
    /// Types, repeated or comma-separated, e.g. `claim.filed`.
    #[param(required = false, style = Form, explode = true)]
    pub r#type: Vec<String>,
    /// The operator only: one organization's events.
    pub organization: Option<String>,
}

/// An event list's filters, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub statuses: Vec<EventStatus>,
    pub kinds: Vec<EventKind>,
    pub organization: Option<String>,
}

impl EventFilter {
    /// Reads the filters from a list's parameters: what was typed and the checked
    /// filter, or every problem found (unknown names included).
    pub fn read(mut params: Params) -> (EventQuery, Result<EventFilter, Problems>) {
        let typed = EventQuery {
            status: params.many("status"),
            r#type: params.many("type"),
            organization: params.one("organization"),
        };
        let filter = EventFilter {
            statuses: parse_each(&mut params, "status", &typed.status),
            kinds: parse_each(&mut params, "type", &typed.r#type),
            organization: typed.organization.clone(),
        };
        let checked = params.finish(filter);
        (typed, checked)
    }
}

/// The events the actor may see (its organization's; the operator every one), newest
/// first, one window of them with the count of all.
pub fn list_events(
    ctx: &Context,
    actor: &Actor,
    filter: &EventFilter,
    window: Window,
) -> Result<Listed<Event>, ServiceError> {
    use crate::db::any_of::any_of;
    let mut roles = RECEIVERS.to_vec();
    roles.push(Role::Operator);
    require_role(actor, &roles)?;
    let organization = if actor.role == Role::Operator {
        filter.organization.clone()
    } else if filter.organization.is_some() {
        return Err(ServiceError::invalid(
            "organization",
            "only the operator lists other organizations' events",
        ));
    } else {
        Some(actor.organization_id.clone())
    };
    let filtered = || {
        let mut query = webhook_events::table.into_boxed();
        if let Some(org) = &organization {
            query = query.filter(webhook_events::organization_id.eq(org.clone()));
        }
        if !filter.statuses.is_empty() {
            query = query.filter(any_of(webhook_events::status, filter.statuses.clone()));
        }
        if !filter.kinds.is_empty() {
            query = query.filter(any_of(webhook_events::kind, filter.kinds.clone()));
        }
        query
    };
    let mut conn = ctx.conn()?;
    let total: i64 = filtered().count().get_result(&mut conn)?;
    let rows = filtered()
        .order((webhook_events::created_at.desc(), webhook_events::id.desc()))
        .offset(window.offset.max(0))
        .limit(window.limit.clamp(1, 500))
        .select(Event::as_select())
        .load(&mut conn)?;
    Ok(Listed { rows, total })
}

/// The event if the actor may see it (its organization's, or the operator); otherwise
/// not found, alike whether it exists.
fn visible_event(c: &mut DbConnection, actor: &Actor, id: &str) -> Result<Event, ServiceError> {
    webhook_events::table
        .find(id)
        .select(Event::as_select())
        .first(c)
        .optional()?
        .filter(|e| actor.role == Role::Operator || e.organization_id == actor.organization_id)
        .ok_or_else(|| ServiceError::NotFound("event".into()))
}

/// An event and its delivery log, oldest try first.
pub fn get_event(
    ctx: &Context,
    actor: &Actor,
    id: &str,
) -> Result<(Event, Vec<Attempt>), ServiceError> {
    let mut conn = ctx.conn()?;
    let event = visible_event(&mut conn, actor, id)?;
    let attempts = webhook_attempts::table
        .filter(webhook_attempts::event_id.eq(id))
        .order((
            webhook_attempts::attempted_at.asc(),
            webhook_attempts::id.asc(),
        ))
        .select(Attempt::as_select())
        .load(&mut conn)?;
    Ok((event, attempts))
}

/// Sends an event again now, with a fresh set of tries and the same id and body (its
/// organization or the operator). An event already waiting is left alone (409).
pub fn redeliver(ctx: &Context, actor: &Actor, id: &str) -> Result<Event, ServiceError> {
    let at = ctx.now();
    let mut conn = ctx.conn()?;
    ctx.write_tx(&mut conn, |c| {
        let event = visible_event(c, actor, id)?;
        let changed = diesel::update(
            webhook_events::table
                .filter(webhook_events::id.eq(id))
                .filter(webhook_events::status.ne(EventStatus::Pending)),
        )
        .set((
            webhook_events::status.eq(EventStatus::Pending),
            webhook_events::attempts.eq(0),
            webhook_events::next_attempt_at.eq(at),
            webhook_events::locked_until.eq(None::<NaiveDateTime>),
        ))
        .execute(c)?;
        if changed != 1 {
            return Err(ServiceError::Conflict(
                "the event is already waiting to be delivered".into(),
            ));
        }
        audit::append(
            c,
            &AuditEvent {
                actor_user_id: Some(&actor.user_id),
                actor_organization_id: Some(&actor.organization_id),
                action: "redeliver_webhook_event",
                entity_kind: "webhook_event",
                entity_id: id,
                from_state: Some(event.status.as_str()),
                to_state: Some(EventStatus::Pending.as_str()),
                details: json!({ "type": event.kind, "attempts": event.attempts }),
            },
            at,
        )?;
        visible_event(c, actor, id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_addresses_are_checked() {
        assert_eq!(
            check_url(" https://hooks.example.com/baohan?x=1 ", false).unwrap(),
            "https://hooks.example.com/baohan?x=1"
        );
        for (url, allow_private) in [
            ("http://hooks.example.com/", false),
            ("ftp://hooks.example.com/", true),
            ("https://user:pw@hooks.example.com/", false),
            ("https://hooks.example.com/#x", false),
            ("https://127.0.0.1/", false),
            ("https://[::1]/", false),
            ("https://10.0.0.8/", false),
            ("https://169.254.169.254/latest", false),
            ("hooks.example.com", false),
            ("", false),
        ] {
            assert!(check_url(url, allow_private).is_err(), "{url}");
        }
        assert!(check_url(&format!("https://a.example/{}", "x".repeat(500)), false).is_err());
        assert!(check_url("http://127.0.0.1:8099/hook", true).is_ok());
    }
}
