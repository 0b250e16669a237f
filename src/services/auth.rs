//! Sign-in: argon2id passwords, browser sessions with a CSRF token, and API tokens for
//! machine clients. Tokens are random and only their SHA-256 is stored.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use base64::Engine as _;
use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use super::{credential_cache, new_id, Actor, Context, OrInternal, ServiceError};
use crate::db::audit::{self, AuditEvent};
use crate::db::models::{ApiToken, Organization, Session, User};
use crate::db::schema::{api_tokens, organizations, sessions, users};
use crate::db::DbConnection;
use crate::domain::text::{self, TextRules};

/// How long a browser session lasts without signing in again.
pub const SESSION_LIFETIME_HOURS: i64 = 12;
const SESSION_PREFIX: &str = "bhs_";
const API_TOKEN_PREFIX: &str = "bht_";

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, ServiceError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .or_internal("password hashing failed")
}

fn password_matches(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash with the same cost as a real one, checked when the user does not exist so
/// that the answer time does not reveal which usernames exist.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("not a real password").unwrap_or_default())
}

fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::Rng::fill(&mut rand::rngs::OsRng, &mut bytes[..]);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// SHA-256 of a token, as stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// What a successful sign-in hands back. The token is shown once and never stored.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub session_token: String,
    pub csrf_token: String,
    pub expires_at: NaiveDateTime,
    pub actor: Actor,
    pub username: String,
    pub display_name: String,
}

/// Checks a username and password and opens a session.
pub fn login(ctx: &Context, username: &str, password: &str) -> Result<SignedIn, ServiceError> {
    // No stored username holds a control character; a NUL would not even reach
    // PostgreSQL as a query parameter.
    text::check_no_controls(username).map_err(|e| ServiceError::invalid("username", e))?;
    let mut conn = ctx.conn()?;
    let found: Option<(User, Organization)> = users::table
        .inner_join(organizations::table)
        .filter(users::username.eq(username))
        .select((User::as_select(), Organization::as_select()))
        .first(&mut conn)
        .optional()?;
    let refused = || ServiceError::Invalid {
        field: "password".into(),
        message: "unknown username or wrong password".into(),
    };
    let Some((user, org)) = found else {
        let _ = password_matches(password, dummy_hash());
        return Err(refused());
    };
    if !password_matches(password, &user.password_hash) || !user.active {
        return Err(refused());
    }
    let actor = actor_of(&user, &org)?;
    let session_token = random_token(SESSION_PREFIX);
    let csrf_token = random_token("");
    let created_at = ctx.now();
    let session = Session {
        id: new_id(),
        token_hash: token_hash(&session_token),
        user_id: user.id.clone(),
        csrf_token: csrf_token.clone(),
        created_at,
        expires_at: created_at + Duration::hours(SESSION_LIFETIME_HOURS),
    };
    ctx.write_tx(&mut conn, |c| -> Result<(), ServiceError> {
        diesel::insert_into(sessions::table)
            .values(&session)
            .execute(c)?;
        audit::append(
            c,
            &AuditEvent {
                actor_user_id: Some(&user.id),
                actor_organization_id: Some(&org.id),
                action: "login",
                entity_kind: "user",
                entity_id: &user.id,
                ..Default::default()
            },
            created_at,
        )?;
        Ok(())
    })?;
    Ok(SignedIn {
        session_token,
        csrf_token,
        expires_at: session.expires_at,
        actor,
        username: user.username,
        display_name: user.display_name,
    })
}

/// Ends the session the request was authenticated with (signing out twice is not an
/// error). Only a session signs out: an API token is revoked by its id instead, so a
/// machine client's sign-out can never look done while its token keeps working.
pub fn logout(ctx: &Context, credential: &Credential) -> Result<(), ServiceError> {
    let Credential::Session { id, .. } = credential else {
        return Err(ServiceError::invalid(
            "Authorization",
            "an API token does not sign out; revoke it with DELETE /api/v1/auth/tokens/{id}",
        ));
    };
    let mut conn = ctx.conn()?;
    diesel::delete(sessions::table.filter(sessions::id.eq(id))).execute(&mut conn)?;
    Ok(())
}

/// How a request proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A browser session (cookie, or its token as a bearer token); state-changing
    /// requests by cookie must echo this CSRF token.
    Session { id: String, csrf_token: String },
    /// An API token (machine client): no cookie, so no CSRF exposure.
    ApiToken { id: String },
}

/// How often the last use of an API token is written: a busy machine client does not
/// turn every request into a write.
const LAST_USE_PRECISION_SECONDS: i64 = 60;

/// A resolved credential: who it is, what it is and until when it works.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub actor: Actor,
    pub credential: Credential,
    pub who: Who,
    pub expires_at: NaiveDateTime,
    /// For an API token, when its last use was written (by the exchange's clock).
    pub last_used_at: Option<NaiveDateTime>,
}

impl Resolved {
    /// Whether a kept copy may still answer at `now`: not expired, and for an API
    /// token, its last use written less than [`LAST_USE_PRECISION_SECONDS`] ago (else
    /// the slow path writes it).
    fn still_answers(&self, now: NaiveDateTime) -> bool {
        let last_use_fresh = match self.credential {
            Credential::Session { .. } => true,
            Credential::ApiToken { .. } => self
                .last_used_at
                .is_some_and(|used| now - used < Duration::seconds(LAST_USE_PRECISION_SECONDS)),
        };
        self.expires_at > now && last_use_fresh
    }
}

/// The credentials an instance keeps (`services::credential_cache`).
pub type Credentials = credential_cache::CredentialCache<Resolved>;

/// Resolves a bearer token or session cookie value to the actor behind it: from this
/// instance's memory when it holds the credential ([`kept`]), else from the database
/// (then kept, [`look_up`]).
pub fn authenticate(ctx: &Context, token: &str) -> Result<(Actor, Credential), ServiceError> {
    let resolved = match kept(ctx, token) {
        Some(resolved) => resolved,
        None => look_up(ctx, token)?,
    };
    Ok((resolved.actor, resolved.credential))
}

/// The credential behind `token` from the database, then kept: for a caller that has
/// asked [`kept`] already.
pub fn look_up(ctx: &Context, token: &str) -> Result<Resolved, ServiceError> {
    let digest = credential_cache::digest(token);
    let (resolved, epoch) = resolve(ctx, token)?;
    if let Some(epoch) = epoch {
        ctx.credentials.keep(digest, epoch, resolved.clone());
    }
    Ok(resolved)
}

/// The credential behind `token` if this instance holds it in memory and it still
/// answers (`services::credential_cache`): one read of the credential epoch on SQLite,
/// short enough for the calling thread; no pool, no blocking task. `None` says only
/// that the database must be asked.
pub fn kept(ctx: &Context, token: &str) -> Option<Resolved> {
    let now = ctx.now();
    ctx.credentials
        .get(&credential_cache::digest(token), |r| r.still_answers(now))
}

/// The active user and organization behind a token or session (one indexed read of the
/// three rows), the credential it is and when it stops working; and, when this
/// instance keeps credentials, the credential epoch read before them (a change
/// committed after the reads moves the epoch past it).
fn resolve(ctx: &Context, token: &str) -> Result<(Resolved, Option<i64>), ServiceError> {
    let mut conn = ctx.conn()?;
    let epoch = if ctx.credentials.enabled() {
        Some(credential_cache::epoch(&mut conn)?)
    } else {
        None
    };
    let hash = token_hash(token);
    let at = ctx.now();
    let (credential, expires_at, last_used_at, user, org) = if token.starts_with(SESSION_PREFIX) {
        let (session, user, org): (Session, User, Organization) = sessions::table
            .inner_join(users::table.inner_join(organizations::table))
            .filter(sessions::token_hash.eq(&hash))
            .filter(users::active.eq(true))
            .select((
                Session::as_select(),
                User::as_select(),
                Organization::as_select(),
            ))
            .first(&mut conn)
            .optional()?
            .filter(|(s, _, _)| s.expires_at > at)
            .ok_or(ServiceError::Unauthenticated)?;
        let credential = Credential::Session {
            id: session.id,
            csrf_token: session.csrf_token,
        };
        (credential, session.expires_at, None, user, org)
    } else if token.starts_with(API_TOKEN_PREFIX) {
        let (api, user, org): (ApiToken, User, Organization) = api_tokens::table
            .inner_join(users::table.inner_join(organizations::table))
            .filter(api_tokens::token_hash.eq(&hash))
            .filter(api_tokens::revoked_at.is_null())
            .filter(api_tokens::expires_at.gt(at))
            .filter(users::active.eq(true))
            .select((
                ApiToken::as_select(),
                User::as_select(),
                Organization::as_select(),
            ))
            .first(&mut conn)
            .optional()?
            .ok_or(ServiceError::Unauthenticated)?;
        let stale = at - Duration::seconds(LAST_USE_PRECISION_SECONDS);
        let mut last_used_at = api.last_used_at;
        if api.last_used_at.is_none_or(|used| used < stale) {
            diesel::update(
                api_tokens::table.filter(api_tokens::id.eq(&api.id)).filter(
                    api_tokens::last_used_at
                        .is_null()
                        .or(api_tokens::last_used_at.lt(stale)),
                ),
            )
            .set(api_tokens::last_used_at.eq(at))
            .execute(&mut conn)?;
            last_used_at = Some(at);
        }
        let credential = Credential::ApiToken { id: api.id };
        (credential, api.expires_at, last_used_at, user, org)
    } else {
        return Err(ServiceError::Unauthenticated);
    };
    let resolved = Resolved {
        actor: actor_of(&user, &org)?,
        credential,
        who: Who {
            username: user.username,
            display_name: user.display_name,
            organization_name: org.name,
        },
        expires_at,
        last_used_at,
    };
    Ok((resolved, epoch))
}

fn actor_of(user: &User, org: &Organization) -> Result<Actor, ServiceError> {
    Ok(Actor {
        user_id: user.id.clone(),
        organization_id: org.id.clone(),
        organization_kind: org.kind,
        role: user.role,
    })
}

/// What making an API token asks for.
#[derive(Debug, Clone)]
pub struct NewApiToken {
    pub name: String,
    /// Days until it stops working; at most (and by default) `max_days`.
    pub expires_in_days: Option<u32>,
    /// The exchange's longest lifetime (the `api_token_lifetime_days` setting).
    pub max_days: u32,
}

/// A new API token for the actor's own user, for a machine client. Made only from an
/// interactive session: a token cannot make tokens, so a leaked one cannot multiply
/// itself past its own revocation. The token is in the answer once; only its hash is
/// kept.
pub fn create_api_token(
    ctx: &Context,
    actor: &Actor,
    credential: &Credential,
    input: NewApiToken,
) -> Result<(ApiToken, String), ServiceError> {
    if !matches!(credential, Credential::Session { .. }) {
        return Err(ServiceError::Forbidden(
            "API tokens are made from a signed-in session, not with another API token".into(),
        ));
    }
    let name = text::clean(&input.name, TextRules::single_line(100))
        .map_err(|e| ServiceError::invalid("name", e))?;
    let days = input.expires_in_days.unwrap_or(input.max_days);
    if days == 0 || days > input.max_days {
        return Err(ServiceError::invalid(
            "expires_in_days",
            format!("must be 1 to {} days", input.max_days),
        ));
    }
    let token = random_token(API_TOKEN_PREFIX);
    let at = ctx.now();
    let row = ApiToken {
        id: new_id(),
        user_id: actor.user_id.clone(),
        name,
        token_hash: token_hash(&token),
        created_at: at,
        last_used_at: None,
        revoked_at: None,
        expires_at: at + Duration::days(i64::from(days)),
    };
    let mut conn = ctx.conn()?;
    ctx.write_tx(
        &mut conn,
        |c: &mut DbConnection| -> Result<(), ServiceError> {
            diesel::insert_into(api_tokens::table)
                .values(&row)
                .execute(c)?;
            audit::append(
                c,
                &AuditEvent {
                    actor_user_id: Some(&actor.user_id),
                    actor_organization_id: Some(&actor.organization_id),
                    action: "create_api_token",
                    entity_kind: "api_token",
                    entity_id: &row.id,
                    details: serde_json::json!({ "name": row.name, "expires_at": row.expires_at.to_string() }),
                    ..Default::default()
                },
                at,
            )?;
            Ok(())
        },
    )?;
    Ok((row, token))
}

/// An API token as its organization sees it in the list (never the token itself).
#[derive(Debug, Clone)]
pub struct ApiTokenEntry {
    pub token: ApiToken,
    /// Who made it (the token acts as this user).
    pub username: String,
}

/// The API tokens of the actor's organization, newest first, revoked and expired ones
/// included (they say so), with when each was last used.
pub fn list_api_tokens(ctx: &Context, actor: &Actor) -> Result<Vec<ApiTokenEntry>, ServiceError> {
    let mut conn = ctx.conn()?;
    let rows: Vec<(ApiToken, String)> = api_tokens::table
        .inner_join(users::table)
        .filter(users::organization_id.eq(&actor.organization_id))
        .order((api_tokens::created_at.desc(), api_tokens::id.asc()))
        .select((ApiToken::as_select(), users::username))
        .load(&mut conn)?;
    Ok(rows
        .into_iter()
        .map(|(token, username)| ApiTokenEntry { token, username })
        .collect())
}

/// Revokes an API token of the actor's own organization: a machine client's key can be
/// withdrawn by any user of the organization it acts for.
pub fn revoke_api_token(ctx: &Context, actor: &Actor, token_id: &str) -> Result<(), ServiceError> {
    let at = ctx.now();
    let mut conn = ctx.conn()?;
    ctx.write_tx(
        &mut conn,
        |c: &mut DbConnection| -> Result<(), ServiceError> {
            let owner_org: Option<String> = api_tokens::table
                .inner_join(users::table)
                .filter(api_tokens::id.eq(token_id))
                .select(users::organization_id)
                .first(c)
                .optional()?;
            if owner_org.as_deref() != Some(actor.organization_id.as_str()) {
                return Err(ServiceError::NotFound("API token".into()));
            }
            diesel::update(
                api_tokens::table
                    .filter(api_tokens::id.eq(token_id))
                    .filter(api_tokens::revoked_at.is_null()),
            )
            .set(api_tokens::revoked_at.eq(at))
            .execute(c)?;
            audit::append(
                c,
                &AuditEvent {
                    actor_user_id: Some(&actor.user_id),
                    actor_organization_id: Some(&actor.organization_id),
                    action: "revoke_api_token",
                    entity_kind: "api_token",
                    entity_id: token_id,
                    ..Default::default()
                },
                at,
            )?;
            Ok(())
        },
    )
}

/// Who a signed-in user is, by name: what a page's header shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    pub username: String,
    pub display_name: String,
    pub organization_name: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::party::{OrgKind, Role};

    fn resolved(credential: Credential, expires_at: &str, last_used_at: Option<&str>) -> Resolved {
        Resolved {
            actor: Actor {
                user_id: "u".into(),
                organization_id: "o".into(),
                organization_kind: OrgKind::Provider,
                role: Role::Provider,
            },
            credential,
            who: Who {
                username: "hotel".into(),
                display_name: "Hotel".into(),
                organization_name: "Hotel".into(),
            },
            expires_at: at(expires_at),
            last_used_at: last_used_at.map(at),
        }
    }

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").expect("a time")
    }

    #[test]
    fn a_kept_credential_stops_answering_when_it_expires_or_its_last_use_is_due() {
        let session = resolved(
            Credential::Session {
                id: "s".into(),
                csrf_token: "c".into(),
            },
            "2026-12-03 12:00:00",
            None,
        );
        assert!(session.still_answers(at("2026-12-03 11:59:59")));
        assert!(!session.still_answers(at("2026-12-03 12:00:00")));

        let token = |last_used| {
            resolved(
                Credential::ApiToken { id: "t".into() },
                "2027-01-01 00:00:00",
                last_used,
            )
        };
        let used = token(Some("2026-12-03 11:00:00"));
        assert!(used.still_answers(at("2026-12-03 11:00:59")));
        assert!(
            !used.still_answers(at("2026-12-03 11:01:00")),
            "its use is due"
        );
        assert!(!token(None).still_answers(at("2026-12-03 11:00:00")));
        assert!(!used.still_answers(at("2027-01-01 00:00:00")), "expired");
    }
}
