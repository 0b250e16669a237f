//! Rows as diesel reads and writes them. Enumerations are stored as their snake_case
//! names and money as integer fen; the services turn rows into domain types.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{api_tokens, organizations, projects, sections, sessions, users};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = organizations)]
pub struct Organization {
    pub id: String,
    pub kind: String,
    pub issuer_kind: Option<String>,
    pub provider_kind: Option<String>,
    pub name: String,
    pub uscc: String,
    pub uscc_whitelisted: bool,
    pub short_code: Option<String>,
    pub email: Option<String>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: String,
    pub organization_id: String,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub role: String,
    pub password_hash: String,
    pub resident_id_hmac: Option<String>,
    pub resident_id_masked: Option<String>,
    pub active: bool,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_tokens)]
pub struct ApiToken {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub token_hash: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct Session {
    pub id: String,
    pub token_hash: String,
    pub user_id: String,
    pub csrf_token: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = projects)]
pub struct Project {
    pub id: String,
    pub code: String,
    pub name: String,
    pub tenderee_id: String,
    pub agency_id: String,
    pub bid_deadline: NaiveDateTime,
    pub bid_opening_at: NaiveDateTime,
    pub bid_validity_days: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sections)]
pub struct Section {
    pub id: String,
    pub project_id: String,
    pub code: String,
    pub name: String,
    pub bond_amount_fen: i64,
    pub estimated_price_fen: Option<i64>,
}
