//! Mail delivery end to end: the outbox, the worker, lettre, and a real SMTP server
//! (tests/api/fixtures/smtp.rs) on both backends.

use std::time::Duration;

use baohan::config::{MailTransport, Settings, SmtpSecurity};
use baohan::db::{write_tx, DbConnection};
use baohan::mail::outbox::{self, Mail, MailStatus, OutboxMail};
use baohan::mail::templates::{self, GuaranteeIssued};
use baohan::mail::worker::Worker;
use base64::Engine as _;
use serde_json::Value;

use crate::fixtures::smtp::{Mode, Received, SmtpServer};
use crate::helpers::{assert_error, TestApp, TestBackend};

const WAIT: Duration = Duration::from_secs(20);

/// Settings for a worker that talks plain SMTP to the test server and retries fast.
fn smtp_to(port: u16, max_attempts: u32) -> impl FnOnce(&mut Settings) + Send + 'static {
    move |s| {
        s.mail_transport = MailTransport::Smtp;
        s.smtp_host = "127.0.0.1".into();
        s.smtp_port = port;
        s.smtp_security = SmtpSecurity::None;
        s.mail_poll_interval_ms = 50;
        s.mail_retry_base_ms = 100;
        s.mail_max_attempts = max_attempts;
    }
}

fn plain_mail(to: &str, subject: &str) -> Mail {
    Mail {
        to_address: to.into(),
        subject: subject.into(),
        text_body: format!("text of {subject}"),
        html_body: format!("<p>html of {subject}</p>"),
    }
}

fn issued_mail(to: &str) -> Mail {
    templates::guarantee_issued(
        to,
        &GuaranteeIssued {
            recipient_name: "某某建设有限公司 <script>".into(),
            guarantee_number: "BH-ICBC-2026-000123".into(),
            issuer_name: "中国工商银行某某支行".into(),
            enterprise_name: "某某建设有限公司".into(),
            project_name: "市第一中学新建工程".into(),
            section_name: "一标段".into(),
            amount: "¥50,000.00".into(),
            valid_until: "2027-03-31".into(),
            verify_link: "https://baohan.example/verify/BH-ICBC-2026-000123".into(),
        },
    )
    .expect("rendered")
}

/// Queues mails in one committed transaction, as a service would.
async fn enqueue(app: &TestApp, mails: Vec<Mail>) -> Vec<String> {
    let pool = app.pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().expect("conn");
        write_tx(&mut conn, |c: &mut DbConnection| {
            mails
                .into_iter()
                .map(|m| outbox::enqueue(c, m, baohan::services::now()))
                .collect::<Result<Vec<_>, diesel::result::Error>>()
        })
        .expect("enqueued")
    })
    .await
    .expect("task")
}

async fn outbox_row(app: &TestApp, id: &str) -> OutboxMail {
    let (pool, id) = (app.pool.clone(), id.to_owned());
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().expect("conn");
        outbox::find(&mut conn, &id).expect("query").expect("row")
    })
    .await
    .expect("task")
}

/// Waits until the row satisfies `done`; panics with the row after `WAIT`.
async fn wait_for_row(app: &TestApp, id: &str, done: impl Fn(&OutboxMail) -> bool) -> OutboxMail {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let row = outbox_row(app, id).await;
        if done(&row) {
            return row;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting: {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of a header, unfolded, with RFC 2047 encoded words decoded.
fn header(data: &str, name: &str) -> Option<String> {
    let head = data.split("\r\n\r\n").next()?;
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    let prefix = format!("{}:", name.to_ascii_lowercase());
    let line = unfolded
        .split("\r\n")
        .find(|l| l.to_ascii_lowercase().starts_with(&prefix))?;
    Some(decode_words(line[prefix.len()..].trim()))
}

fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut bytes = Vec::new();
    for word in value.split(' ') {
        let lower = word.to_ascii_lowercase();
        if let Some(encoded) = lower
            .starts_with("=?utf-8?b?")
            .then(|| word.get(10..word.len().saturating_sub(2)))
            .flatten()
        {
            bytes.extend(
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .expect("base64 word"),
            );
        } else {
            out.push_str(&String::from_utf8(std::mem::take(&mut bytes)).expect("utf-8"));
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
        }
    }
    out.push_str(&String::from_utf8(bytes).expect("utf-8"));
    out
}

/// The decoded body of the part with this content type (parts are base64).
fn part(data: &str, content_type: &str) -> Option<String> {
    let boundary = header(data, "Content-Type")?
        .split("boundary=")
        .nth(1)?
        .trim_matches('"')
        .to_owned();
    data.split(&format!("--{boundary}")).find_map(|p| {
        let p = p.trim_start_matches("\r\n");
        let ct = header(p, "Content-Type")?;
        if !ct.starts_with(content_type) {
            return None;
        }
        assert_eq!(
            header(p, "Content-Transfer-Encoding").as_deref(),
            Some("base64")
        );
        let (_, body) = p.split_once("\r\n\r\n")?;
        let compact: String = body.split_whitespace().collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(compact)
            .expect("base64 body");
        Some(
            String::from_utf8(bytes)
                .expect("utf-8")
                .replace("\r\n", "\n"),
        )
    })
}

async fn a_queued_mail_arrives_with_its_recipient_subject_text_and_html(backend: TestBackend) {
    let smtp = SmtpServer::start(Mode::Accept).await;
    let app = backend.spawn_with(smtp_to(smtp.port, 3)).await;
    let mail = issued_mail("enterprise1@example.com");
    let ids = enqueue(&app, vec![mail.clone()]).await;

    let received = smtp.wait_for(1, WAIT).await;
    let Received {
        mail_from,
        recipients,
        data,
    } = &received[0];
    assert_eq!(mail_from, "noreply@baohan.localhost");
    assert_eq!(recipients, &["enterprise1@example.com"]);
    assert_eq!(
        header(data, "Subject").as_deref(),
        Some("保函已出具 Guarantee issued: BH-ICBC-2026-000123")
    );
    assert_eq!(
        header(data, "To").as_deref(),
        Some("enterprise1@example.com")
    );
    assert!(header(data, "Content-Type")
        .expect("content type")
        .starts_with("multipart/alternative"));
    let text = part(data, "text/plain").expect("text part");
    let html = part(data, "text/html").expect("html part");
    assert_eq!(text, mail.text_body.replace("\r\n", "\n"));
    assert_eq!(html, mail.html_body.replace("\r\n", "\n"));
    assert!(text.contains("某某建设有限公司 <script>"));
    assert!(html.contains("某某建设有限公司 &#60;script&#62;"));
    assert!(!html.contains("<script>"));
    assert_eq!(
        header(data, "Message-ID"),
        Some(format!("<{}@baohan.localhost>", ids[0]))
    );

    let row = wait_for_row(&app, &ids[0], |r| r.status == "sent").await;
    assert_eq!(row.attempts, 0);
    assert!(row.sent_at.is_some());
    assert!(row.locked_until.is_none());
}

/// Waits until the worker has failed at least `tries` times on the mail.
async fn wait_for_failures(app: &TestApp, id: &str, tries: i32) -> OutboxMail {
    wait_for_row(app, id, |r| r.attempts >= tries).await
}

async fn an_smtp_server_answering_421_then_up_gets_the_mail_exactly_once(backend: TestBackend) {
    let smtp = SmtpServer::start(Mode::Refuse421).await;
    let app = backend.spawn_with(smtp_to(smtp.port, 20)).await;
    let ids = enqueue(&app, vec![plain_mail("a@example.com", "outage 421")]).await;

    let row = wait_for_failures(&app, &ids[0], 2).await;
    assert_eq!(row.status, "pending");
    let error = row.last_error.expect("an error is kept");
    assert!(error.contains("421"), "{error}");
    assert!(smtp.received().is_empty());
    assert!(smtp.turned_away() >= 2);

    smtp.set_mode(Mode::Accept);
    smtp.wait_for(1, WAIT).await;
    let row = wait_for_row(&app, &ids[0], |r| r.status == "sent").await;
    // Several more polls: nothing goes a second time.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.received().len(), 1);
    assert!(row.attempts >= 2);
}

async fn a_451_after_data_is_retried_and_delivered_once(backend: TestBackend) {
    let smtp = SmtpServer::start(Mode::Defer451).await;
    let app = backend.spawn_with(smtp_to(smtp.port, 20)).await;
    let ids = enqueue(&app, vec![plain_mail("b@example.com", "outage 451")]).await;

    let row = wait_for_failures(&app, &ids[0], 1).await;
    assert!(row.last_error.expect("error").contains("451"));
    smtp.set_mode(Mode::Accept);
    smtp.wait_for(1, WAIT).await;
    wait_for_row(&app, &ids[0], |r| r.status == "sent").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = smtp.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].recipients, ["b@example.com"]);
}

async fn a_mail_waits_while_nothing_listens_and_goes_once_the_server_is_up(backend: TestBackend) {
    // A port with nothing behind it: connections are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let app = backend.spawn_with(smtp_to(port, 20)).await;
    let ids = enqueue(&app, vec![plain_mail("c@example.com", "server down")]).await;

    let row = wait_for_failures(&app, &ids[0], 2).await;
    assert_eq!(row.status, "pending");
    assert!(row.next_attempt_at > row.created_at);

    let smtp = SmtpServer::start_on(port, Mode::Accept).await;
    smtp.wait_for(1, WAIT).await;
    wait_for_row(&app, &ids[0], |r| r.status == "sent").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.received().len(), 1);
}

async fn after_the_last_attempt_the_mail_is_failed_listed_for_the_operator_and_retried(
    backend: TestBackend,
) {
    let smtp = SmtpServer::start(Mode::Defer451).await;
    let app = backend.spawn_with(smtp_to(smtp.port, 3)).await;
    let ids = enqueue(&app, vec![plain_mail("d@example.com", "gives up")]).await;
    let id = &ids[0];

    let row = wait_for_row(&app, id, |r| r.status == "failed").await;
    assert_eq!(row.attempts, 3);
    assert_eq!(smtp.turned_away(), 3);
    // Failed mails stay failed: no further tries.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.turned_away(), 3);

    let operator = app.login("operator").await;
    let res = app.get(&operator, "/api/v1/admin/mail?status=failed").await;
    assert_eq!(res.status(), 200);
    let failed: Value = res.json().await.expect("json");
    let listed = failed
        .as_array()
        .expect("array")
        .iter()
        .find(|m| m["id"] == id.as_str())
        .expect("the failed mail is listed")
        .clone();
    assert_eq!(listed["to"], "d@example.com");
    assert_eq!(listed["subject"], "gives up");
    assert_eq!(listed["status"], "failed");
    assert_eq!(listed["attempts"], 3);
    assert!(listed["last_error"]
        .as_str()
        .expect("error")
        .contains("451"));
    assert!(listed["next_attempt_at"].as_str().is_some());
    assert!(listed["sent_at"].is_null());
    let pending: Value = app
        .get(&operator, "/api/v1/admin/mail?status=pending")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(pending, serde_json::json!([]));

    // Only the operator sees or retries mail.
    for who in ["bank", "enterprise1", "agency"] {
        let token = app.login(who).await;
        assert_error(
            app.get(&token, "/api/v1/admin/mail").await,
            403,
            "forbidden",
        )
        .await;
        let path = format!("/api/v1/admin/mail/{id}/retry");
        assert_error(
            app.post(&token, &path, &serde_json::json!({})).await,
            403,
            "forbidden",
        )
        .await;
    }
    assert_error(
        app.get(&operator, "/api/v1/admin/mail?status=lost").await,
        422,
        "validation_failed",
    )
    .await;

    smtp.set_mode(Mode::Accept);
    let path = format!("/api/v1/admin/mail/{id}/retry");
    let res = app.post(&operator, &path, &serde_json::json!({})).await;
    assert_eq!(res.status(), 200);
    let retried: Value = res.json().await.expect("json");
    assert_eq!(retried["status"], "pending");
    assert_eq!(retried["attempts"], 0);

    let received = smtp.wait_for(1, WAIT).await;
    assert_eq!(received[0].recipients, ["d@example.com"]);
    wait_for_row(&app, id, |r| r.status == "sent").await;
    // A mail that is not failed cannot be retried; an unknown one is not found.
    assert_error(
        app.post(&operator, &path, &serde_json::json!({})).await,
        409,
        "conflict",
    )
    .await;
    assert_error(
        app.post(
            &operator,
            "/api/v1/admin/mail/no-such-mail/retry",
            &serde_json::json!({}),
        )
        .await,
        404,
        "not_found",
    )
    .await;

    let sent: Value = app
        .get(&operator, "/api/v1/admin/mail?status=sent")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(sent[0]["id"], id.as_str());
    assert!(sent[0]["sent_at"].as_str().is_some());

    // The retry is in the audit log, and the chain holds.
    let pool = app.pool.clone();
    let retry_entries = tokio::task::spawn_blocking(move || {
        use baohan::db::schema::audit_log;
        use diesel::prelude::*;
        let mut conn = pool.get().expect("conn");
        audit_log::table
            .filter(audit_log::action.eq("retry_mail"))
            .select(audit_log::entity_id)
            .load::<String>(&mut conn)
            .expect("audit")
    })
    .await
    .expect("task");
    assert_eq!(retry_entries, std::slice::from_ref(id));
    assert!(matches!(
        app.audit_chain(),
        baohan::db::audit::ChainCheck::Intact { .. }
    ));
}

async fn a_mail_queued_in_a_rolled_back_transaction_is_never_sent(backend: TestBackend) {
    let smtp = SmtpServer::start(Mode::Accept).await;
    let app = backend.spawn_with(smtp_to(smtp.port, 3)).await;
    let pool = app.pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().expect("conn");
        let rolled_back: Result<(), diesel::result::Error> =
            write_tx(&mut conn, |c: &mut DbConnection| {
                outbox::enqueue(
                    c,
                    plain_mail("ghost@example.com", "never"),
                    baohan::services::now(),
                )?;
                Err(diesel::result::Error::RollbackTransaction)
            });
        assert!(rolled_back.is_err());
    })
    .await
    .expect("task");
    // A mail queued afterwards goes; by then the worker has seen everything queued.
    let ids = enqueue(&app, vec![plain_mail("real@example.com", "after")]).await;
    smtp.wait_for(1, WAIT).await;
    wait_for_row(&app, &ids[0], |r| r.status == "sent").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received = smtp.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].recipients, ["real@example.com"]);
}

async fn workers_of_several_instances_send_each_mail_once(backend: TestBackend) {
    let smtp = SmtpServer::start(Mode::Accept).await;
    let app = backend.spawn_with(smtp_to(smtp.port, 3)).await;
    // Two more workers on the same database, as other `baohan serve` processes would
    // run; all three poll every 50 ms and race for the same rows.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    for _ in 0..2 {
        let worker = Worker::from_settings(app.pool.clone(), &app.settings).expect("worker");
        tokio::spawn(worker.run(stopped.clone()));
    }
    let mails: Vec<Mail> = (0..30)
        .map(|i| plain_mail(&format!("r{i}@example.com"), &format!("mail {i}")))
        .collect();
    enqueue(&app, mails).await;

    smtp.wait_for(30, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop.send(true);
    let mut recipients: Vec<String> = smtp
        .received()
        .into_iter()
        .flat_map(|r| r.recipients)
        .collect();
    assert_eq!(recipients.len(), 30, "each mail exactly once");
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), 30);

    let pool = app.pool.clone();
    let sent = tokio::task::spawn_blocking(move || {
        outbox::list(&mut pool.get().expect("conn"), MailStatus::Sent).expect("list")
    })
    .await
    .expect("task");
    assert_eq!(sent.len(), 30);
    assert!(sent.iter().all(|m| m.attempts == 0));
}

async fn the_file_transport_writes_an_eml_file_per_mail(backend: TestBackend) {
    let app = backend
        .spawn_with(|s| {
            s.mail_transport = MailTransport::File;
            s.mail_poll_interval_ms = 50;
        })
        .await;
    let ids = enqueue(&app, vec![issued_mail("enterprise1@example.com")]).await;
    wait_for_row(&app, &ids[0], |r| r.status == "sent").await;
    let dir = app.data_dir().join("mail");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .expect("mail directory")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().and_then(|e| e.to_str()), Some("eml"));
    let data = std::fs::read_to_string(&files[0]).expect("eml");
    assert_eq!(
        header(&data, "Subject").as_deref(),
        Some("保函已出具 Guarantee issued: BH-ICBC-2026-000123")
    );
    assert!(part(&data, "text/html")
        .expect("html")
        .contains("市第一中学新建工程"));
}

crate::on_both_backends!(configured:
    a_queued_mail_arrives_with_its_recipient_subject_text_and_html,
    an_smtp_server_answering_421_then_up_gets_the_mail_exactly_once,
    a_451_after_data_is_retried_and_delivered_once,
    a_mail_waits_while_nothing_listens_and_goes_once_the_server_is_up,
    after_the_last_attempt_the_mail_is_failed_listed_for_the_operator_and_retried,
    a_mail_queued_in_a_rolled_back_transaction_is_never_sent,
    workers_of_several_instances_send_each_mail_once,
    the_file_transport_writes_an_eml_file_per_mail,
);
