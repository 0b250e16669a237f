//! Mail delivery end to end: the outbox, the worker, lettre, and a real SMTP server
//! (`fixtures::smtp`) on both backends.

use std::time::Duration;

use crate::fixtures::library::{self, write_tx, ChainCheck, DbConnection};
use crate::fixtures::mime::{header, part};
use crate::fixtures::outbox::{
    enqueue, file_delivery, issued_mail, plain_mail, smtp_delivery, MailStatus, OutboxRow, WAIT,
};
use crate::fixtures::smtp::{Mode, Received, SmtpServer};
use crate::fixtures::{MailView, Operator};
use crate::helpers::TestBackend;

fn sent(row: &OutboxRow) -> bool {
    row.status == MailStatus::Sent
}

async fn a_queued_mail_arrives_with_its_recipient_subject_text_and_html(backend: TestBackend) {
    let smtp = SmtpServer::start(Mode::Accept).await;
    let app = backend.spawn_with(smtp_delivery(smtp.port, Some(3))).await;
    let mail = issued_mail("enterprise1@example.com");
    let ids = app.enqueue_mails(vec![mail.clone()]).await;

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

    let row = app.wait_for_outbox(&ids[0], sent).await;
    assert_eq!(row.attempts, 0);
    assert!(row.sent_at.is_some());
    assert!(row.locked_until.is_none());
}

async fn an_smtp_server_answering_421_then_up_gets_the_mail_exactly_once(backend: TestBackend) {
    let smtp = SmtpServer::start(Mode::Refuse421).await;
    let app = backend.spawn_with(smtp_delivery(smtp.port, Some(20))).await;
    let ids = app
        .enqueue_mails(vec![plain_mail("a@example.com", "outage 421")])
        .await;

    let row = app.wait_for_outbox(&ids[0], |r| r.attempts >= 2).await;
    assert_eq!(row.status, MailStatus::Pending);
    let error = row.last_error.expect("an error is kept");
    assert!(error.contains("421"), "{error}");
    assert!(smtp.received().is_empty());
    assert!(smtp.turned_away() >= 2);

    smtp.set_mode(Mode::Accept);
    smtp.wait_for(1, WAIT).await;
    let row = app.wait_for_outbox(&ids[0], sent).await;
    // Several more polls: nothing goes a second time.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.received().len(), 1);
    assert!(row.attempts >= 2);
}

async fn a_451_after_data_is_retried_and_delivered_once(backend: TestBackend) {
    let smtp = SmtpServer::start(Mode::Defer451).await;
    let app = backend.spawn_with(smtp_delivery(smtp.port, Some(20))).await;
    let ids = app
        .enqueue_mails(vec![plain_mail("b@example.com", "outage 451")])
        .await;

    let row = app.wait_for_outbox(&ids[0], |r| r.attempts >= 1).await;
    assert!(row.last_error.expect("error").contains("451"));
    smtp.set_mode(Mode::Accept);
    smtp.wait_for(1, WAIT).await;
    app.wait_for_outbox(&ids[0], sent).await;
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
    let app = backend.spawn_with(smtp_delivery(port, Some(20))).await;
    let ids = app
        .enqueue_mails(vec![plain_mail("c@example.com", "server down")])
        .await;

    let row = app.wait_for_outbox(&ids[0], |r| r.attempts >= 2).await;
    assert_eq!(row.status, MailStatus::Pending);
    assert!(row.next_attempt_at > row.created_at);

    let smtp = SmtpServer::start_on(port, Mode::Accept).await;
    smtp.wait_for(1, WAIT).await;
    app.wait_for_outbox(&ids[0], sent).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.received().len(), 1);
}

async fn after_the_last_attempt_the_mail_is_failed_listed_for_the_operator_and_retried(
    backend: TestBackend,
) {
    let smtp = SmtpServer::start(Mode::Defer451).await;
    let app = backend.spawn_with(smtp_delivery(smtp.port, Some(3))).await;
    let ids = app
        .enqueue_mails(vec![plain_mail("d@example.com", "gives up")])
        .await;
    let id = &ids[0];

    let row = app
        .wait_for_outbox(id, |r| r.status == MailStatus::Failed)
        .await;
    assert_eq!(row.attempts, 3);
    assert_eq!(smtp.turned_away(), 3);
    // Failed mails stay failed: no further tries.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.turned_away(), 3);

    let operator = app.as_operator().await;
    let failed = operator.mails(Some("failed")).await;
    let listed = failed
        .iter()
        .find(|m| &m.id == id)
        .expect("the failed mail is listed");
    assert_eq!(listed.to, "d@example.com");
    assert_eq!(listed.subject, "gives up");
    assert_eq!(listed.status, "failed");
    assert_eq!(listed.attempts, 3);
    assert!(listed.last_error.as_deref().expect("error").contains("451"));
    assert!(listed.next_attempt_at.is_some());
    assert!(listed.sent_at.is_none());
    assert!(operator.mails(Some("pending")).await.is_empty());

    // Only the operator sees or retries mail.
    for who in ["bank", "enterprise1", "agency"] {
        let posing = app.as_demo::<Operator>(who).await;
        posing.mails(None).fails(403, "forbidden").await;
        posing.retry_mail(id).fails(403, "forbidden").await;
    }
    operator
        .mails(Some("lost"))
        .fails(422, "validation_failed")
        .await;

    smtp.set_mode(Mode::Accept);
    let retried: MailView = operator.retry_mail(id).await;
    assert_eq!(retried.status, "pending");
    assert_eq!(retried.attempts, 0);

    let received = smtp.wait_for(1, WAIT).await;
    assert_eq!(received[0].recipients, ["d@example.com"]);
    app.wait_for_outbox(id, sent).await;
    // A mail that is not failed cannot be retried; an unknown one is not found.
    operator.retry_mail(id).fails(409, "conflict").await;
    operator
        .retry_mail("no-such-mail")
        .fails(404, "not_found")
        .await;

    let sent_list = operator.mails(Some("sent")).await;
    assert_eq!(&sent_list[0].id, id);
    assert!(sent_list[0].sent_at.is_some());

    // The retry is in the audit log, and the chain holds.
    assert_eq!(app.audited("retry_mail").await, std::slice::from_ref(id));
    assert!(matches!(app.audit_chain(), ChainCheck::Intact { .. }));
}

async fn a_mail_queued_in_a_rolled_back_transaction_is_never_sent(backend: TestBackend) {
    let smtp = SmtpServer::start(Mode::Accept).await;
    let app = backend.spawn_with(smtp_delivery(smtp.port, Some(3))).await;
    app.db(|conn| {
        let rolled_back: Result<(), diesel::result::Error> =
            write_tx(conn, |c: &mut DbConnection| {
                enqueue(c, plain_mail("ghost@example.com", "never"), library::now())?;
                Err(diesel::result::Error::RollbackTransaction)
            });
        assert!(rolled_back.is_err());
    })
    .await;
    // A mail queued afterwards goes; by then the worker has seen everything queued.
    let ids = app
        .enqueue_mails(vec![plain_mail("real@example.com", "after")])
        .await;
    smtp.wait_for(1, WAIT).await;
    app.wait_for_outbox(&ids[0], sent).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received = smtp.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].recipients, ["real@example.com"]);
}

async fn workers_of_several_instances_send_each_mail_once(backend: TestBackend) {
    let smtp = SmtpServer::start(Mode::Accept).await;
    let app = backend.spawn_with(smtp_delivery(smtp.port, Some(3))).await;
    // Two more workers on the same database, as other `baohan serve` processes would
    // run; all three poll every 50 ms and race for the same rows.
    let workers = app.start_mail_workers(2);
    let mails = (0..30)
        .map(|i| plain_mail(&format!("r{i}@example.com"), &format!("mail {i}")))
        .collect();
    app.enqueue_mails(mails).await;

    smtp.wait_for(30, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    workers.stop();
    let mut recipients: Vec<String> = smtp
        .received()
        .into_iter()
        .flat_map(|r| r.recipients)
        .collect();
    assert_eq!(recipients.len(), 30, "each mail exactly once");
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), 30);

    let sent = app.outbox(MailStatus::Sent).await;
    assert_eq!(sent.len(), 30);
    assert!(sent.iter().all(|m| m.attempts == 0));
}

async fn the_file_transport_writes_an_eml_file_per_mail(backend: TestBackend) {
    let app = backend.spawn_with(file_delivery).await;
    let ids = app
        .enqueue_mails(vec![issued_mail("enterprise1@example.com")])
        .await;
    app.wait_for_outbox(&ids[0], sent).await;
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

/// A send that outlasts the claim's lease: the claimant renews it while sending, so no
/// other instance's worker starts the same mail meanwhile (with the old fixed lease a
/// dead instance held its mail for ten minutes; now the lease is short, which without
/// renewal would repeat every slow send).
async fn a_send_slower_than_the_lease_is_renewed_not_repeated(backend: TestBackend) {
    let smtp = SmtpServer::start(Mode::AcceptAfter(Duration::from_secs(5))).await;
    let deliver = smtp_delivery(smtp.port, Some(3));
    let app = backend
        .spawn_with(move |s| {
            deliver(s);
            s.mail_lease_seconds = 3;
        })
        .await;
    let workers = app.start_mail_workers(2);
    let ids = app
        .enqueue_mails(vec![plain_mail("slow@example.com", "slow relay")])
        .await;
    app.wait_for_outbox(&ids[0], sent).await;
    workers.stop();
    // The others looked every 50 ms for five seconds, two seconds past the first lease.
    assert_eq!(smtp.begun(), 1, "one delivery began");
    assert_eq!(smtp.received().len(), 1);
}

/// A mail claimed by an instance that died (its claim is never renewed nor released)
/// goes once the short lease has run out, from another instance's worker.
async fn a_mail_held_by_a_dead_instance_goes_after_the_short_lease(backend: TestBackend) {
    let smtp = SmtpServer::start(Mode::Accept).await;
    let deliver = smtp_delivery(smtp.port, Some(3));
    let app = backend
        .spawn_with(move |s| {
            deliver(s);
            s.mail_lease_seconds = 3;
        })
        .await;
    // Queued and claimed in one transaction, as the dead instance's worker left it:
    // the live worker never saw it unclaimed.
    let id = app
        .db(|conn| {
            write_tx(conn, |c: &mut DbConnection| {
                let now = library::now();
                let id = enqueue(c, plain_mail("orphan@example.com", "orphaned"), now)?;
                let claimed =
                    baohan::mail::outbox::claim(c, &id, now, now + chrono::Duration::seconds(3))?;
                assert!(claimed.is_some(), "claimed in the queuing transaction");
                Ok::<_, diesel::result::Error>(id)
            })
            .expect("queued and claimed")
        })
        .await;
    let orphaned_at = std::time::Instant::now();
    smtp.wait_for(1, WAIT).await;
    let waited = orphaned_at.elapsed();
    assert!(
        waited >= Duration::from_secs(2),
        "not before the lease ran out: {waited:?}"
    );
    app.wait_for_outbox(&id, sent).await;
}

crate::on_both_backends!(configured:
    a_send_slower_than_the_lease_is_renewed_not_repeated,
    a_mail_held_by_a_dead_instance_goes_after_the_short_lease,
    a_queued_mail_arrives_with_its_recipient_subject_text_and_html,
    an_smtp_server_answering_421_then_up_gets_the_mail_exactly_once,
    a_451_after_data_is_retried_and_delivered_once,
    a_mail_waits_while_nothing_listens_and_goes_once_the_server_is_up,
    after_the_last_attempt_the_mail_is_failed_listed_for_the_operator_and_retried,
    a_mail_queued_in_a_rolled_back_transaction_is_never_sent,
    workers_of_several_instances_send_each_mail_once,
    the_file_transport_writes_an_eml_file_per_mail,
);
