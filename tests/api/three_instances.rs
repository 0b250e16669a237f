//! Three `baohan serve` processes on one database, as behind a load balancer: they
//! start together on an empty database (each migrates at start); under concurrent load
//! spread across them a distinct request never meets a spurious conflict and a
//! contested one has exactly one winner; a trust anchor registered through one is in
//! force on the others at their next request; and every mail is sent once.

use std::collections::HashSet;

use diesel::prelude::*;
use serde_json::{json, Value};

use crate::fixtures::library::migrations;
use crate::fixtures::server::{ServeOptions, ServeProcess};
use crate::fixtures::smtp::{Mode, SmtpServer};
use crate::fixtures::{
    crl_pem, key_pem, pem, register_hosted_key, DemoCa, IssuerSpec, KeyType, NewSection, NewTender,
    Party,
};
use crate::helpers::{create_postgres_database, demo_uscc, TestApp, TestBackend};

/// How many instances run.
const INSTANCES: usize = 3;

/// Three processes started at once on an empty database and data directory: all come
/// up, and the database holds each migration once.
async fn started_together_on_an_empty_database_they_migrate_it_once(backend: TestBackend) {
    let dir = tempfile::tempdir().expect("dir");
    let (url, _postgres, kind) = match backend {
        TestBackend::Sqlite => (
            format!("sqlite://{}", dir.path().join("shared.db").display()),
            None,
            "sqlite",
        ),
        TestBackend::Postgres => {
            let db = create_postgres_database().await.expect("PostgreSQL");
            (db.url.clone(), Some(db), "postgres")
        }
    };
    let data_dir = dir.path().join("data");
    let mut instances: Vec<ServeProcess> = (0..INSTANCES)
        .map(|_| ServeProcess::spawn_on(&url, &data_dir, &ServeOptions::new()))
        .collect();
    let http = reqwest::Client::new();
    for instance in &mut instances {
        instance.ready(&http).await;
    }
    let applied = tokio::task::spawn_blocking(move || {
        let mut conn = baohan::db::open_existing_read_only(&url).expect("every migration applied");
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let count: Count =
            diesel::sql_query("SELECT COUNT(*) AS n FROM __diesel_schema_migrations")
                .get_result(&mut conn)
                .expect("count");
        count.n
    })
    .await
    .expect("task");
    assert_eq!(
        usize::try_from(applied).expect("count"),
        migrations(kind),
        "each migration once"
    );
}

/// A POST to an instance, signed with `token`.
fn post(
    http: &reqwest::Client,
    instance: &ServeProcess,
    token: &str,
    path: &str,
    body: Value,
) -> reqwest::RequestBuilder {
    http.post(instance.url(path)).bearer_auth(token).json(&body)
}

/// Sends every request at once; the answers (status, body) in the order given.
async fn at_once(requests: Vec<reqwest::RequestBuilder>) -> Vec<(u16, Value)> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, request) in requests.into_iter().enumerate() {
        tasks.spawn(async move {
            let res = request.send().await.expect("send");
            let status = res.status().as_u16();
            let text = res.text().await.expect("body");
            (
                i,
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            )
        });
    }
    let mut answers = Vec::new();
    while let Some(done) = tasks.join_next().await {
        answers.push(done.expect("task"));
    }
    answers.sort_by_key(|(i, ..)| *i);
    answers.into_iter().map(|(_, s, b)| (s, b)).collect()
}

/// Every answer has status `expected`, else the test fails naming the others.
fn all(answers: &[(u16, Value)], expected: u16, what: &str) {
    let others: Vec<_> = answers.iter().filter(|(s, _)| *s != expected).collect();
    assert!(
        others.is_empty(),
        "{what}: {} of {} not {expected}: {others:?}",
        others.len(),
        answers.len()
    );
}

/// Exactly one answer per group of `copies` has status `won`; the others are 409.
/// Returns the winners' bodies.
fn one_winner_each(answers: &[(u16, Value)], copies: usize, won: u16, what: &str) -> Vec<Value> {
    answers
        .chunks(copies)
        .map(|group| {
            let winners: Vec<_> = group.iter().filter(|(s, _)| *s == won).collect();
            let losers = group.iter().filter(|(s, _)| *s == 409).count();
            assert!(
                winners.len() == 1 && losers == copies - 1,
                "{what}: one winner and {} conflicts expected: {group:?}",
                copies - 1
            );
            winners[0].1.clone()
        })
        .collect()
}

/// Sends one request and expects `status`; the body.
async fn expect(request: reqwest::RequestBuilder, status: u16) -> Value {
    let res = request.send().await.expect("send");
    let got = res.status().as_u16();
    let text = res.text().await.expect("body");
    assert_eq!(got, status, "{text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// The id in an answer.
fn id(body: &Value) -> String {
    body["id"].as_str().expect("id").to_owned()
}

async fn three_instances_share_one_database(app: TestApp) {
    let smtp = SmtpServer::start(Mode::Accept).await;
    // A CA the operator trusts, and a hosted key for each of the three issuers.
    let operator = app.as_operator().await;
    let ca = DemoCa::new("Baohan Instances CA", KeyType::EcP256).expect("CA");
    operator.trust_anchor("instances CA", &pem(&ca.cert)).await;
    operator
        .crl(&crl_pem(&ca, chrono::Duration::days(90)))
        .await;
    let issuer_names = [
        ("bank", "滨州城市商业银行"),
        ("insurer", "黄河财产保险"),
        ("guarantor", "滨州市融资担保有限公司"),
    ];
    let mut issuers = Vec::new();
    for (username, name) in issuer_names {
        let mut spec = IssuerSpec::new(name, &demo_uscc(username));
        spec.not_after = chrono::Utc::now() + chrono::Duration::days(365);
        register_hosted_key(&app, &ca, username, &spec).await;
        let session = app.as_issuer(username).await;
        issuers.push((session.token.clone(), session.org_id().to_owned()));
    }
    let mut enterprises = Vec::new();
    for username in ["enterprise1", "enterprise2"] {
        enterprises.push(app.as_enterprise(username).await.token);
    }
    for n in [3, 4] {
        enterprises.push(app.new_enterprise(n).await.token);
    }
    // Sections for the distinct applications, then one per contested application, and
    // one for a bond signed under a CA trusted later.
    const DISTINCT_SECTIONS: usize = 8;
    const CONTESTED: usize = 4;
    let late_section = DISTINCT_SECTIONS + CONTESTED;
    let mut tender = NewTender::two_sections("INSTANCES-1", 3);
    tender.sections = (0..=late_section)
        .map(|s| NewSection::new(&format!("S{s:02}"), "标段", "50000.00", Some("5000000.00")))
        .collect();
    let tender = app.as_agency().await.create_project(&tender).await;

    let options = ServeOptions::new().smtp(smtp.port);
    let mut instances: Vec<ServeProcess> = (0..INSTANCES)
        .map(|_| ServeProcess::spawn(&app, &options))
        .collect();
    for instance in &mut instances {
        instance.ready(&app.api).await;
    }
    let http = &app.api;
    let on = |k: usize| &instances[k % INSTANCES];

    // Distinct requests, all at once, spread over the instances: every enterprise
    // applies for every section, each application to one of the three issuers, who
    // approve, confirm and issue them all at once.
    let mut distinct = Vec::new(); // (enterprise, section, issuer)
    for section in 0..DISTINCT_SECTIONS {
        for enterprise in 0..enterprises.len() {
            distinct.push((enterprise, section, distinct.len() % issuers.len()));
        }
    }
    let applied = at_once(
        distinct
            .iter()
            .enumerate()
            .map(|(k, &(e, s, i))| {
                let body =
                    json!({ "section_id": tender.sections[s].id, "issuer_id": issuers[i].1 });
                post(http, on(k), &enterprises[e], "/api/v1/applications", body)
            })
            .collect(),
    )
    .await;
    all(&applied, 201, "distinct applications");
    let ids: Vec<String> = applied.iter().map(|(_, b)| id(b)).collect();
    let step = |shift: usize, step: &str, body: Value| {
        distinct
            .iter()
            .zip(&ids)
            .enumerate()
            .map(|(k, (&(_, _, i), id))| {
                let path = format!("/api/v1/applications/{id}/{step}");
                post(http, on(k + shift), &issuers[i].0, &path, body.clone())
            })
            .collect::<Vec<_>>()
    };
    all(
        &at_once(step(1, "approve", json!({ "premium": "750.00" }))).await,
        200,
        "distinct approvals",
    );
    all(
        &at_once(step(2, "confirm-payment", json!({}))).await,
        200,
        "distinct payments",
    );
    let issued = at_once(step(0, "issue", json!({}))).await;
    all(&issued, 201, "distinct issues by three issuers");
    let numbers: HashSet<&str> = issued
        .iter()
        .map(|(_, b)| b["guarantee"]["number"].as_str().expect("number"))
        .collect();
    assert_eq!(numbers.len(), issued.len(), "numbers distinct");

    // Contested requests: the same request through every instance at once.
    let through_all = |token: &str, path: &str, body: Value| {
        instances
            .iter()
            .map(|instance| post(http, instance, token, path, body.clone()))
            .collect::<Vec<_>>()
    };
    let contested: Vec<(usize, usize)> = (0..CONTESTED)
        .map(|c| (c % enterprises.len(), DISTINCT_SECTIONS + c))
        .collect();
    let applied = at_once(
        contested
            .iter()
            .flat_map(|&(e, s)| {
                let body =
                    json!({ "section_id": tender.sections[s].id, "issuer_id": issuers[0].1 });
                through_all(&enterprises[e], "/api/v1/applications", body)
            })
            .collect(),
    )
    .await;
    let ids: Vec<String> = one_winner_each(&applied, INSTANCES, 201, "one enterprise, one section")
        .iter()
        .map(id)
        .collect();
    let bank = &issuers[0].0;
    for (step, body, won) in [
        ("approve", json!({ "premium": "750.00" }), 200),
        ("confirm-payment", json!({}), 200),
        ("issue", json!({}), 201),
    ] {
        let answers = at_once(
            ids.iter()
                .flat_map(|id| {
                    through_all(
                        bank,
                        &format!("/api/v1/applications/{id}/{step}"),
                        body.clone(),
                    )
                })
                .collect(),
        )
        .await;
        one_winner_each(&answers, INSTANCES, won, step);
    }
    for id in &ids {
        assert_eq!(crate::idempotency::guarantees_of(&app, id).await, 1, "{id}");
    }

    // A CA trusted through the first instance is in force on the others at their next
    // request: the guarantor's certificate under it is registered through the second,
    // and a bond signed with it through the third verifies on the first.
    let (guarantor_token, guarantor_id) = &issuers[2];
    let body = json!({ "section_id": tender.sections[late_section].id, "issuer_id": guarantor_id });
    let late = id(&expect(
        post(http, on(0), &enterprises[0], "/api/v1/applications", body),
        201,
    )
    .await);
    let path = |step: &str| format!("/api/v1/applications/{late}/{step}");
    let approval = json!({ "premium": "750.00" });
    expect(
        post(http, on(1), guarantor_token, &path("approve"), approval),
        200,
    )
    .await;
    expect(
        post(
            http,
            on(2),
            guarantor_token,
            &path("confirm-payment"),
            json!({}),
        ),
        200,
    )
    .await;
    let later_ca = DemoCa::new("Baohan Later CA", KeyType::EcP256).expect("CA");
    let trust = json!({ "name": "later CA", "certificate_pem": pem(&later_ca.cert) });
    expect(
        post(
            http,
            on(0),
            &operator.token,
            "/api/v1/admin/trust-anchors",
            trust,
        ),
        201,
    )
    .await;
    let crl = json!({ "crl_pem": crl_pem(&later_ca, chrono::Duration::days(90)) });
    expect(
        post(http, on(0), &operator.token, "/api/v1/admin/crls", crl),
        201,
    )
    .await;
    let mut spec = IssuerSpec::new("滨州市融资担保有限公司", &demo_uscc("guarantor"));
    spec.not_after = chrono::Utc::now() + chrono::Duration::days(365);
    let cert = later_ca.issue(&spec).expect("certificate");
    let registration = json!({
        "organization_id": guarantor_id,
        "certificate_pem": pem(&cert.cert),
        "private_key_pem": key_pem(&cert.key),
    });
    let path_certs = "/api/v1/admin/issuer-certificates";
    expect(
        post(http, on(1), &operator.token, path_certs, registration),
        201,
    )
    .await;
    let issued = expect(
        post(http, on(2), guarantor_token, &path("issue"), json!({})),
        201,
    )
    .await;
    let check = json!({
        "number": issued["guarantee"]["number"],
        "code": issued["verification_code"],
    });
    let report = expect(http.post(on(0).url("/api/v1/verify")).json(&check), 200).await;
    assert_eq!(report["indication"], "PASSED", "{report}");
    let number = issued["guarantee"]["number"]
        .as_str()
        .expect("number")
        .to_owned();
    let signer: String = app
        .db(move |c| {
            use baohan::db::schema::{guarantee_versions, guarantees, issuer_certificates};
            guarantee_versions::table
                .inner_join(guarantees::table)
                .inner_join(
                    issuer_certificates::table.on(guarantee_versions::signer_certificate_id
                        .eq(issuer_certificates::id.nullable())),
                )
                .filter(guarantees::number.eq(number))
                .select(issuer_certificates::fingerprint_sha256)
                .first(c)
                .expect("the signer")
        })
        .await;
    let der = cert.cert.to_der().expect("DER");
    assert_eq!(
        signer,
        baohan::pki::sha256_hex(&der),
        "signed under the later CA"
    );

    // Every mail once: each instance's worker claims from the same outbox.
    let outbox = app.every_mail_sent().await;
    let received = smtp.received_by_mail_id();
    let not_once: Vec<_> = outbox
        .iter()
        .filter(|(id, ..)| received.get(id.as_str()) != Some(&1))
        .map(|(id, to, subject)| (received.get(id.as_str()).copied(), to, subject))
        .collect();
    assert!(
        not_once.is_empty(),
        "mails not sent exactly once: {not_once:?}"
    );
    assert_eq!(received.len(), outbox.len(), "no mail from elsewhere");
    eprintln!(
        "{INSTANCES} instances: {} distinct applications issued, {CONTESTED} contested \
         ones won once each, {} mails sent once",
        distinct.len(),
        outbox.len(),
    );
}

crate::on_both_backends!(configured: started_together_on_an_empty_database_they_migrate_it_once);

mod shared {
    crate::on_both_backends!(three_instances_share_one_database);
    use super::three_instances_share_one_database;
}
