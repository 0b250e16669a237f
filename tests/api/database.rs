//! The persistence guarantees the services rely on.

use crate::fixtures::library::{
    self, append_audit, verify_chain, write_tx, AuditEvent, ChainCheck, DbConnection, ServiceError,
};
use crate::fixtures::outbox::{enqueue, mails_in, Mail, MailStatus};
use crate::helpers::{uscc, TestApp};

fn mail(to: &str) -> Mail {
    Mail {
        to_address: to.into(),
        subject: "保函已出具".into(),
        text_body: "text".into(),
        html_body: "<p>html</p>".into(),
    }
}

async fn a_rolled_back_change_leaves_no_mail_and_no_audit_entry(app: TestApp) {
    let entries = app.audit_entries().await;
    app.db(move |conn| {
        let now = library::now();
        let failed: Result<(), diesel::result::Error> = write_tx(conn, |c: &mut DbConnection| {
            enqueue(c, mail("a@example.com"), now)?;
            let event = AuditEvent {
                action: "test",
                entity_kind: "test",
                entity_id: "1",
                ..Default::default()
            };
            append_audit(c, &event, now)?;
            Err(diesel::result::Error::RollbackTransaction)
        });
        assert!(failed.is_err());
        assert!(mails_in(conn, MailStatus::Pending).is_empty());

        let committed: Result<(), diesel::result::Error> =
            write_tx(conn, |c: &mut DbConnection| {
                enqueue(c, mail("b@example.com"), now)?;
                Ok(())
            });
        assert!(committed.is_ok());
        let pending = mails_in(conn, MailStatus::Pending);
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].to_address, "b@example.com");
        // The entries written before are all there, and the rolled-back one is not.
        assert_eq!(verify_chain(conn), ChainCheck::Intact { entries });
    })
    .await;
}

/// Tampers with the audit log behind the application's back; what the check says.
async fn tamper(app: &TestApp, sql: String) -> ChainCheck {
    app.execute_sql(sql).await;
    app.db(verify_chain).await
}

/// A sequence number in the middle of the chain (the demo seed's entries).
async fn middle_entry(app: &TestApp, nth_of_three: i64) -> i64 {
    let entries = i64::try_from(app.audit_entries().await).expect("count");
    assert!(entries >= 3, "an audit chain to tamper with");
    entries * nth_of_three / 3
}

async fn an_edited_audit_entry_is_detected(app: TestApp) {
    let edited = middle_entry(&app, 1).await;
    let sql = format!("UPDATE audit_log SET action = 'nothing happened' WHERE seq = {edited}");
    match tamper(&app, sql).await {
        ChainCheck::Broken { seq, reason } => {
            assert_eq!(seq, edited);
            assert!(reason.contains("changed"), "{reason}");
        }
        intact => panic!("an edited entry went unnoticed: {intact:?}"),
    }
}

async fn a_deleted_audit_entry_is_detected(app: TestApp) {
    let deleted = middle_entry(&app, 2).await;
    let sql = format!("DELETE FROM audit_log WHERE seq = {deleted}");
    match tamper(&app, sql).await {
        ChainCheck::Broken { seq, reason } => {
            assert_eq!(seq, deleted);
            assert!(reason.contains("missing"), "{reason}");
        }
        intact => panic!("a deleted entry went unnoticed: {intact:?}"),
    }
}

async fn deleting_the_newest_audit_entries_is_detected(app: TestApp) {
    // The newest two.
    let from = i64::try_from(app.audit_entries().await).expect("count") - 1;
    let sql = format!("DELETE FROM audit_log WHERE seq >= {from}");
    match tamper(&app, sql).await {
        ChainCheck::Broken { seq, reason } => {
            assert_eq!(seq, from);
            assert!(reason.contains("removed"), "{reason}");
        }
        intact => panic!("deleted entries went unnoticed: {intact:?}"),
    }
}

crate::on_both_backends!(
    a_rolled_back_change_leaves_no_mail_and_no_audit_entry,
    an_edited_audit_entry_is_detected,
    a_deleted_audit_entry_is_detected,
    deleting_the_newest_audit_entries_is_detected,
);

/// Several instances starting together against one fresh PostgreSQL database: the
/// advisory lock lets exactly one migrate while the others wait, and all start.
#[tokio::test]
async fn instances_starting_together_migrate_once() {
    use diesel::RunQueryDsl;
    let Some(db) = crate::helpers::create_postgres_database().await else {
        return;
    };
    let url = db.url.clone();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || library::connect(&url, 1).map(|_| ()))
        })
        .collect();
    for h in handles {
        h.join().expect("thread").expect("every instance starts");
    }
    let pool = library::connect(&url, 1).expect("connect");
    let mut conn = pool.get().expect("conn");
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let applied: Count = diesel::sql_query("SELECT count(*) AS n FROM __diesel_schema_migrations")
        .get_result(&mut conn)
        .expect("migrations table");
    let shipped = library::migrations("postgres");
    assert!(shipped > 0, "migrations/postgres holds the migrations");
    assert_eq!(
        usize::try_from(applied.n).expect("count"),
        shipped,
        "each migration is recorded once"
    );
}

/// `baohan bootstrap` on an empty database makes the first operator, once.
async fn bootstrap_on_an_empty_database(url: String) {
    let (first, second) = tokio::task::spawn_blocking(move || {
        let pool = library::connect(&url, 1).expect("connect");
        let mut conn = pool.get().expect("conn");
        let first = library::bootstrap_operator(
            &mut conn,
            "滨州市社会信用体系建设服务中心",
            &uscc("12371600MB2850001"),
            "operator",
            "a long enough password",
        );
        let second = library::bootstrap_operator(
            &mut conn,
            "Another",
            &uscc("12371600MB2850002"),
            "operator2",
            "a long enough password",
        );
        (first, second)
    })
    .await
    .expect("task");
    assert_eq!(
        first.expect("first bootstrap"),
        baohan::domain::Role::Operator
    );
    assert!(
        matches!(second, Err(ServiceError::Conflict(_))),
        "{second:?}"
    );
}

#[tokio::test]
async fn bootstrap_makes_the_first_operator_once_on_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    bootstrap_on_an_empty_database(format!("sqlite://{}", dir.path().join("b.db").display())).await;
}

#[tokio::test]
async fn bootstrap_makes_the_first_operator_once_on_postgres() {
    if let Some(db) = crate::helpers::create_postgres_database().await {
        bootstrap_on_an_empty_database(db.url.clone()).await;
    }
}
