//! The persistence guarantees the services rely on.

use baohan::db::audit::{self, AuditEvent, ChainCheck};
use baohan::db::{write_tx, DbConnection};
use baohan::mail::outbox::{self, Mail, MailStatus};
use diesel::RunQueryDsl;

use crate::helpers::TestApp;

fn mail(to: &str) -> Mail {
    Mail {
        to_address: to.into(),
        subject: "保函已出具".into(),
        text_body: "text".into(),
        html_body: "<p>html</p>".into(),
    }
}

async fn a_rolled_back_change_leaves_no_mail_and_no_audit_entry(app: TestApp) {
    let pool = app.pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().expect("conn");
        let now = baohan::services::now();
        let failed: Result<(), diesel::result::Error> =
            write_tx(&mut conn, |c: &mut DbConnection| {
                outbox::enqueue(c, mail("a@example.com"), now)?;
                audit::append(
                    c,
                    &AuditEvent {
                        action: "test",
                        entity_kind: "test",
                        entity_id: "1",
                        ..Default::default()
                    },
                    now,
                )?;
                Err(diesel::result::Error::RollbackTransaction)
            });
        assert!(failed.is_err());
        assert!(outbox::list(&mut conn, MailStatus::Pending)
            .expect("list")
            .is_empty());

        let committed: Result<(), diesel::result::Error> =
            write_tx(&mut conn, |c: &mut DbConnection| {
                outbox::enqueue(c, mail("b@example.com"), now)?;
                Ok(())
            });
        assert!(committed.is_ok());
        let pending = outbox::list(&mut conn, MailStatus::Pending).expect("list");
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].to_address, "b@example.com");
        // The seed wrote 17 entries; the rolled-back one is not among them.
        assert_eq!(
            baohan::db::audit::verify_chain(&mut conn).expect("chain"),
            ChainCheck::Intact { entries: 17 }
        );
    })
    .await
    .expect("task");
}

fn run_sql(app: &TestApp, sql: &'static str) -> impl std::future::Future<Output = ChainCheck> {
    let pool = app.pool.clone();
    async move {
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().expect("conn");
            diesel::sql_query(sql).execute(&mut conn).expect("tamper");
            audit::verify_chain(&mut conn).expect("chain")
        })
        .await
        .expect("task")
    }
}

async fn an_edited_audit_entry_is_detected(app: TestApp) {
    match run_sql(
        &app,
        "UPDATE audit_log SET action = 'nothing happened' WHERE seq = 5",
    )
    .await
    {
        ChainCheck::Broken { seq, reason } => {
            assert_eq!(seq, 5);
            assert!(reason.contains("changed"), "{reason}");
        }
        intact => panic!("an edited entry went unnoticed: {intact:?}"),
    }
}

async fn a_deleted_audit_entry_is_detected(app: TestApp) {
    match run_sql(&app, "DELETE FROM audit_log WHERE seq = 9").await {
        ChainCheck::Broken { seq, reason } => {
            assert_eq!(seq, 9);
            assert!(reason.contains("missing"), "{reason}");
        }
        intact => panic!("a deleted entry went unnoticed: {intact:?}"),
    }
}

async fn deleting_the_newest_audit_entries_is_detected(app: TestApp) {
    match run_sql(&app, "DELETE FROM audit_log WHERE seq >= 16").await {
        ChainCheck::Broken { seq, reason } => {
            assert_eq!(seq, 16);
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
    let Some(db) = crate::helpers::create_postgres_database().await else {
        return;
    };
    let url = db.url.clone();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || baohan::db::connect(&url, 1).map(|_| ()))
        })
        .collect();
    for h in handles {
        h.join().expect("thread").expect("every instance starts");
    }
    let pool = baohan::db::connect(&url, 1).expect("connect");
    let mut conn = pool.get().expect("conn");
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let applied: Count = diesel::sql_query("SELECT count(*) AS n FROM __diesel_schema_migrations")
        .get_result(&mut conn)
        .expect("migrations table");
    assert_eq!(applied.n, 1, "the one migration is recorded once");
}

/// `baohan bootstrap` on an empty database makes the first operator, once.
async fn bootstrap_on_an_empty_database(url: String) {
    let done = tokio::task::spawn_blocking(move || {
        let pool = baohan::db::connect(&url, 1).expect("connect");
        let mut conn = pool.get().expect("conn");
        let uscc = crate::helpers::uscc("12371600MB2850001");
        let first = baohan::services::organizations::bootstrap_operator(
            &mut conn,
            "滨州市社会信用体系建设服务中心",
            &uscc,
            "operator",
            "a long enough password",
        );
        let second = baohan::services::organizations::bootstrap_operator(
            &mut conn,
            "Another",
            &crate::helpers::uscc("12371600MB2850002"),
            "operator2",
            "a long enough password",
        );
        (first.map(|u| u.role), second.map(|u| u.role))
    })
    .await
    .expect("task");
    assert_eq!(
        done.0.expect("first bootstrap"),
        baohan::domain::Role::Operator
    );
    assert!(
        matches!(done.1, Err(baohan::services::ServiceError::Conflict(_))),
        "{:?}",
        done.1
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
