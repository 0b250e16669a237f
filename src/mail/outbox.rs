//! The transactional outbox.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::mail_outbox;
use crate::db::DbConnection;

/// Delivery state of one mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailStatus {
    Pending,
    Sent,
    /// Gave up after the last try; shown to the operator.
    Failed,
}

impl MailStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            MailStatus::Pending => "pending",
            MailStatus::Sent => "sent",
            MailStatus::Failed => "failed",
        }
    }
}

/// A mail as it waits in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = mail_outbox)]
pub struct OutboxMail {
    pub id: String,
    pub to_address: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub locked_until: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
}

/// A mail to send, rendered already.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to_address: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
}

/// Queues a mail. Call inside the transaction of the change that causes it: if that
/// rolls back, the mail is never sent; if it commits, the mail will be.
pub fn enqueue(conn: &mut DbConnection, mail: Mail, now: NaiveDateTime) -> QueryResult<String> {
    let row = OutboxMail {
        id: uuid::Uuid::new_v4().to_string(),
        to_address: mail.to_address,
        subject: mail.subject,
        text_body: mail.text_body,
        html_body: mail.html_body,
        status: MailStatus::Pending.as_str().to_owned(),
        attempts: 0,
        next_attempt_at: now,
        locked_until: None,
        last_error: None,
        created_at: now,
        sent_at: None,
    };
    diesel::insert_into(mail_outbox::table)
        .values(&row)
        .execute(conn)?;
    Ok(row.id)
}

/// Mails in a given state, oldest first (for the operator's view and for tests).
pub fn list(conn: &mut DbConnection, status: MailStatus) -> QueryResult<Vec<OutboxMail>> {
    mail_outbox::table
        .filter(mail_outbox::status.eq(status.as_str()))
        .order(mail_outbox::created_at.asc())
        .select(OutboxMail::as_select())
        .load(conn)
}
