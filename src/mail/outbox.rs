//! The transactional outbox.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::columns::text_columns;
use crate::db::schema::mail_outbox;
use crate::db::DbConnection;
use crate::domain::string_enum;

string_enum! {
    /// Delivery state of one mail.
    pub enum MailStatus ("mail status") {
        /// Waiting for its next attempt.
        Pending => "pending",
        /// Delivered to the mail server.
        Sent => "sent",
        /// Gave up after the last try; shown to the operator.
        Failed => "failed",
    }
}

text_columns!(MailStatus);

/// A mail as it waits in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = mail_outbox)]
pub struct OutboxMail {
    pub id: String,
    pub to_address: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub status: MailStatus,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub locked_until: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
    /// The digest this mail is, while it still collects (see [`put_digest`]).
    pub digest_key: Option<String>,
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
    let row = new_row(mail, now, now, None);
    diesel::insert_into(mail_outbox::table)
        .values(&row)
        .execute(conn)?;
    Ok(row.id)
}

/// A row for a new mail, due at `due`.
fn new_row(
    mail: Mail,
    due: NaiveDateTime,
    now: NaiveDateTime,
    digest_key: Option<&str>,
) -> OutboxMail {
    OutboxMail {
        id: uuid::Uuid::new_v4().to_string(),
        to_address: mail.to_address,
        subject: mail.subject,
        text_body: mail.text_body,
        html_body: mail.html_body,
        status: MailStatus::Pending,
        attempts: 0,
        next_attempt_at: due,
        locked_until: None,
        last_error: None,
        created_at: now,
        sent_at: None,
        digest_key: digest_key.map(str::to_owned),
    }
}

/// The digest `key` that still collects (pending, not claimed by a worker yet).
pub fn open_digest(conn: &mut DbConnection, key: &str) -> QueryResult<Option<OutboxMail>> {
    mail_outbox::table
        .filter(mail_outbox::digest_key.eq(key))
        .filter(mail_outbox::status.eq(MailStatus::Pending))
        .select(OutboxMail::as_select())
        .first(conn)
        .optional()
}

/// Writes the digest `key` anew with `mail`, or starts it, due at `send_at`, when none
/// collects (the last one was claimed for sending, or there was none). The caller
/// serializes the writers of one key (the unique index on the key is the backstop).
pub fn put_digest(
    conn: &mut DbConnection,
    key: &str,
    mail: Mail,
    send_at: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let rewritten = diesel::update(
        mail_outbox::table
            .filter(mail_outbox::digest_key.eq(key))
            .filter(mail_outbox::status.eq(MailStatus::Pending)),
    )
    .set((
        mail_outbox::to_address.eq(&mail.to_address),
        mail_outbox::subject.eq(&mail.subject),
        mail_outbox::text_body.eq(&mail.text_body),
        mail_outbox::html_body.eq(&mail.html_body),
    ))
    .execute(conn)?;
    if rewritten == 0 {
        diesel::insert_into(mail_outbox::table)
            .values(&new_row(mail, send_at, now, Some(key)))
            .execute(conn)?;
    }
    Ok(())
}

/// Drops the digest `key` that still collects: nothing is left in it to tell.
pub fn drop_digest(conn: &mut DbConnection, key: &str) -> QueryResult<usize> {
    diesel::delete(
        mail_outbox::table
            .filter(mail_outbox::digest_key.eq(key))
            .filter(mail_outbox::status.eq(MailStatus::Pending)),
    )
    .execute(conn)
}

/// Mails in a given state, oldest first (for the operator's view and for tests).
pub fn list(conn: &mut DbConnection, status: MailStatus) -> QueryResult<Vec<OutboxMail>> {
    mail_outbox::table
        .filter(mail_outbox::status.eq(status))
        .order(mail_outbox::created_at.asc())
        .select(OutboxMail::as_select())
        .load(conn)
}

/// One mail by id.
pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<OutboxMail>> {
    mail_outbox::table
        .find(id)
        .select(OutboxMail::as_select())
        .first(conn)
        .optional()
}

/// Ids of pending mails due at `now` and not held by a live claim, oldest due first.
/// Only candidates: another worker may claim any of them first (see [`claim`]).
pub fn due_ids(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<String>> {
    mail_outbox::table
        .filter(mail_outbox::status.eq(MailStatus::Pending))
        .filter(mail_outbox::next_attempt_at.le(now))
        .filter(
            mail_outbox::locked_until
                .is_null()
                .or(mail_outbox::locked_until.lt(now)),
        )
        .order(mail_outbox::next_attempt_at.asc())
        .limit(limit)
        .select(mail_outbox::id)
        .load(conn)
}

/// Claims one mail for sending until `lease_until`, or `None` if someone else has it,
/// it was sent meanwhile, or it is not due.
///
/// The claim is one conditional UPDATE that repeats the "due and not held" test, and
/// the mail is ours iff it changed exactly one row. That is race-free on every backend
/// without dialect-specific locking (`FOR UPDATE SKIP LOCKED` is PostgreSQL and MySQL
/// only, and SQLite has no row locks at all): on PostgreSQL a second UPDATE of the same
/// row waits for the first to commit and then re-checks the WHERE clause against the
/// new row, where `locked_until` is now in the future, so it changes nothing; SQLite
/// runs writers one at a time. Several `baohan serve` processes on one database can
/// therefore run workers side by side.
pub fn claim(
    conn: &mut DbConnection,
    id: &str,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
) -> QueryResult<Option<OutboxMail>> {
    let changed = diesel::update(
        mail_outbox::table
            .filter(mail_outbox::id.eq(id))
            .filter(mail_outbox::status.eq(MailStatus::Pending))
            .filter(mail_outbox::next_attempt_at.le(now))
            .filter(
                mail_outbox::locked_until
                    .is_null()
                    .or(mail_outbox::locked_until.lt(now)),
            ),
    )
    // A digest stops collecting once claimed: what happens next starts another.
    .set((
        mail_outbox::locked_until.eq(Some(lease_until)),
        mail_outbox::digest_key.eq(None::<String>),
    ))
    .execute(conn)?;
    if changed == 1 {
        find(conn, id)
    } else {
        Ok(None)
    }
}

/// Extends the claim on mail `id` that ends at `held_until` to `until`; `false` when the
/// claim is no longer the caller's (it ran out and someone else claimed the mail, or the
/// mail is no longer pending).
pub fn renew(
    conn: &mut DbConnection,
    id: &str,
    held_until: NaiveDateTime,
    until: NaiveDateTime,
) -> QueryResult<bool> {
    let changed = diesel::update(
        mail_outbox::table
            .filter(mail_outbox::id.eq(id))
            .filter(mail_outbox::status.eq(MailStatus::Pending))
            .filter(mail_outbox::locked_until.eq(held_until)),
    )
    .set(mail_outbox::locked_until.eq(Some(until)))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Records a delivery.
pub fn mark_sent(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(
        mail_outbox::table
            .filter(mail_outbox::id.eq(id))
            .filter(mail_outbox::status.eq(MailStatus::Pending)),
    )
    .set((
        mail_outbox::status.eq(MailStatus::Sent),
        mail_outbox::sent_at.eq(Some(now)),
        mail_outbox::locked_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    Ok(())
}

/// What to do after a failed try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Try again at this time.
    RetryAt(NaiveDateTime),
    /// That was the last try: the mail is failed and waits for the operator.
    GiveUp,
}

/// Records a failed try: one more attempt, the error, and either the next try's time
/// or the failed state. The claim is released either way.
pub fn mark_attempt_failed(
    conn: &mut DbConnection,
    id: &str,
    error: &str,
    after: AfterFailure,
) -> QueryResult<()> {
    let target = mail_outbox::table
        .filter(mail_outbox::id.eq(id))
        .filter(mail_outbox::status.eq(MailStatus::Pending));
    let common = (
        mail_outbox::attempts.eq(mail_outbox::attempts + 1),
        mail_outbox::last_error.eq(Some(error)),
        mail_outbox::locked_until.eq(None::<NaiveDateTime>),
    );
    match after {
        AfterFailure::RetryAt(at) => diesel::update(target)
            .set((common, mail_outbox::next_attempt_at.eq(at)))
            .execute(conn)?,
        AfterFailure::GiveUp => diesel::update(target)
            .set((common, mail_outbox::status.eq(MailStatus::Failed)))
            .execute(conn)?,
    };
    Ok(())
}

/// Puts a failed mail back in the queue with a fresh set of tries. Returns whether it
/// was failed (a pending or sent mail is left alone).
pub fn requeue_failed(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> QueryResult<bool> {
    let changed = diesel::update(
        mail_outbox::table
            .filter(mail_outbox::id.eq(id))
            .filter(mail_outbox::status.eq(MailStatus::Failed)),
    )
    .set((
        mail_outbox::status.eq(MailStatus::Pending),
        mail_outbox::attempts.eq(0),
        mail_outbox::next_attempt_at.eq(now),
        mail_outbox::locked_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}
