//! The `baohan` binary's offline tools, run as a user would: `baohan pki` makes a CA,
//! an issuer certificate and CRLs; the stock `openssl cms -sign` signs a document; and
//! `baohan verify` checks it without any database, exiting 0 / 1 / 2.

use std::path::Path;
use std::process::{Command, Output};

fn baohan(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_baohan"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("baohan runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const ISSUER_USCC: &str = "91371600BK0000003D";

fn sample_document(dir: &Path) {
    let mut doc = baohan::pki::demo::sample_document(ISSUER_USCC);
    doc.valid_from = "2026-01-01T09:00:00+08:00".into();
    doc.valid_until = "2099-01-01T09:00:00+08:00".into();
    std::fs::write(
        dir.join("NO.json"),
        doc.to_canonical_bytes().expect("canonical"),
    )
    .expect("write");
}

fn sign(dir: &Path) {
    let out = Command::new("openssl")
        .args([
            "cms",
            "-sign",
            "-binary",
            "-outform",
            "DER",
            "-md",
            "sha256",
            "-cades",
            "-in",
            "NO.json",
            "-signer",
            "bank/issuer.pem",
            "-inkey",
            "bank/issuer.key.pem",
            "-out",
            "NO.p7s",
        ])
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn offline_verification_with_the_demo_pki() {
    let tmp = tempfile::tempdir().expect("dir");
    let dir = tmp.path();
    let out = baohan(&["pki", "ca", "--dir", "ca"], dir);
    assert!(out.status.success(), "{}", text(&out));
    let out = baohan(
        &[
            "pki",
            "issuer",
            "--ca-dir",
            "ca",
            "--out-dir",
            "bank",
            "--name",
            "滨州城市商业银行",
            "--uscc",
            ISSUER_USCC,
        ],
        dir,
    );
    assert!(out.status.success(), "{}", text(&out));
    // An invalid USCC is refused before anything is made.
    let out = baohan(
        &[
            "pki",
            "issuer",
            "--ca-dir",
            "ca",
            "--out-dir",
            "bad",
            "--name",
            "x",
            "--uscc",
            "91371600BK0000003X",
        ],
        dir,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!dir.join("bad").exists());

    sample_document(dir);
    sign(dir);
    let verify = |extra: &[&str]| {
        let mut args = vec![
            "verify",
            "--document",
            "NO.json",
            "--signature",
            "NO.p7s",
            "--ca",
            "ca/ca.pem",
            "--crl",
            "ca/crl.pem",
        ];
        args.extend_from_slice(extra);
        baohan(&args, dir)
    };
    let out = verify(&[]);
    assert_eq!(out.status.code(), Some(0), "PASSED: {}", text(&out));
    assert!(text(&out).contains("PASSED"));

    // Expectations, and JSON output.
    let out = verify(&["--expect-min-amount", "99999999.00", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["sub_indication"], "EXPECTATION_MISMATCH");

    // Without a CRL the answer is INDETERMINATE, not FAILED.
    let out = baohan(
        &[
            "verify",
            "--document",
            "NO.json",
            "--signature",
            "NO.p7s",
            "--ca",
            "ca/ca.pem",
        ],
        dir,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("TRY_LATER"), "{}", text(&out));

    // One changed byte of the document: FAILED.
    let original = std::fs::read(dir.join("NO.json")).expect("read");
    let mut changed = original.clone();
    let at = changed.iter().position(|b| *b == b'0').expect("a zero");
    changed[at] = b'1';
    std::fs::write(dir.join("NO.json"), &changed).expect("write");
    let out = verify(&["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    std::fs::write(dir.join("NO.json"), &original).expect("write");

    // Garbage, empty and oversized signatures: FORMAT_FAILURE, never a crash.
    for (name, bytes) in [
        ("empty", Vec::new()),
        ("garbage", b"\x30\x82\xff\xff junk".to_vec()),
        ("huge", vec![0x30; 5 << 20]),
    ] {
        std::fs::write(dir.join("bad.p7s"), &bytes).expect("write");
        let out = baohan(
            &[
                "verify",
                "--document",
                "NO.json",
                "--signature",
                "bad.p7s",
                "--ca",
                "ca/ca.pem",
                "--json",
            ],
            dir,
        );
        assert_eq!(out.status.code(), Some(1), "{name}: {}", text(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
        assert_eq!(report["sub_indication"], "FORMAT_FAILURE", "{name}");
    }
    // Unusable arguments exit 64 with the reason, never a verdict: 0, 1 and 2 say what
    // the guarantee is, and only that.
    std::fs::create_dir(dir.join("a-directory")).expect("dir");
    let fifo = Command::new("mkfifo")
        .arg("a-fifo")
        .current_dir(dir)
        .status()
        .expect("mkfifo runs");
    assert!(fifo.success());
    std::fs::write(dir.join("garbage.pem"), b"not a certificate").expect("write");
    for (name, args) in [
        (
            "missing document",
            vec!["--document", "missing.json", "--signature", "NO.p7s"],
        ),
        (
            "missing signature",
            vec!["--document", "NO.json", "--signature", "missing.p7s"],
        ),
        (
            "a directory",
            vec!["--document", "a-directory", "--signature", "NO.p7s"],
        ),
        (
            "a FIFO",
            vec!["--document", "NO.json", "--signature", "a-fifo"],
        ),
        (
            "a garbage CA",
            vec![
                "--document",
                "NO.json",
                "--signature",
                "NO.p7s",
                "--ca",
                "garbage.pem",
            ],
        ),
        (
            "a missing CA",
            vec![
                "--document",
                "NO.json",
                "--signature",
                "NO.p7s",
                "--ca",
                "nope.pem",
            ],
        ),
        (
            "a garbage CRL",
            vec![
                "--document",
                "NO.json",
                "--signature",
                "NO.p7s",
                "--ca",
                "ca/ca.pem",
                "--crl",
                "garbage.pem",
            ],
        ),
        ("a missing argument", vec!["--document", "NO.json"]),
        (
            "an unknown argument",
            vec![
                "--document",
                "NO.json",
                "--signature",
                "NO.p7s",
                "--frobnicate",
            ],
        ),
    ] {
        let mut all = vec!["verify"];
        all.extend(args);
        let out = baohan(&all, dir);
        assert_eq!(out.status.code(), Some(64), "{name}: {}", text(&out));
        assert!(
            out.stdout.is_empty() || !text(&out).contains("FAILED"),
            "{name}: no verdict: {}",
            text(&out)
        );
    }

    // Revoking the issuer certificate: REVOKED.
    let serial = {
        let pem = std::fs::read(dir.join("bank/issuer.pem")).expect("read");
        let cert = openssl::x509::X509::from_pem(&pem).expect("cert");
        baohan::pki::demo::serial_hex(&cert).expect("serial")
    };
    let out = baohan(
        &["pki", "revoke", "--ca-dir", "ca", "--serial", &serial],
        dir,
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = verify(&["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["sub_indication"], "REVOKED");
}

/// `baohan audit verify` only looks: a mistyped data directory or a database without
/// the schema is an error, and nothing is created or migrated.
#[test]
fn audit_verify_opens_only_an_existing_database_read_only() {
    let tmp = tempfile::tempdir().expect("dir");
    let dir = tmp.path();
    let audit = |data_dir: &str| {
        Command::new(env!("CARGO_BIN_EXE_baohan"))
            .args(["audit", "verify"])
            .env("BAOHAN_DATA_DIR", data_dir)
            .env_remove("BAOHAN_DATABASE_URL")
            .current_dir(dir)
            .output()
            .expect("baohan runs")
    };
    let out = audit("mistyped");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no database"), "{}", text(&out));
    assert!(!dir.join("mistyped").exists(), "nothing created");

    // A SQLite file that is not a Baohan database: refused, and left untouched.
    std::fs::create_dir(dir.join("other")).expect("dir");
    {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        let path = dir.join("other/baohan.db");
        let mut conn = diesel::sqlite::SqliteConnection::establish(path.to_str().expect("utf-8"))
            .expect("sqlite");
        conn.batch_execute("CREATE TABLE t (x INTEGER);")
            .expect("table");
    }
    let bytes = std::fs::read(dir.join("other/baohan.db")).expect("read");
    let out = audit("other");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no Baohan schema"), "{}", text(&out));
    assert_eq!(
        std::fs::read(dir.join("other/baohan.db")).expect("read"),
        bytes,
        "untouched"
    );

    // A real one, migrated by `baohan migrate`: intact, and verified without writing.
    let out = Command::new(env!("CARGO_BIN_EXE_baohan"))
        .arg("migrate")
        .env("BAOHAN_DATA_DIR", "real")
        .env_remove("BAOHAN_DATABASE_URL")
        .current_dir(dir)
        .output()
        .expect("baohan runs");
    assert!(out.status.success(), "{}", text(&out));
    let out = audit("real");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("audit log intact: 0 entries"),
        "{}",
        text(&out)
    );
}

/// A PostgreSQL database made for one test and dropped after it, on the server
/// `BAOHAN_TEST_POSTGRES_URL` names; `None` (after saying so) when none is configured
/// and `BAOHAN_TEST_REQUIRE_POSTGRES` is unset.
struct PostgresDb {
    admin_url: String,
    name: String,
    url: String,
}

impl PostgresDb {
    fn create() -> Option<PostgresDb> {
        use diesel::RunQueryDsl;
        let Ok(admin_url) = std::env::var("BAOHAN_TEST_POSTGRES_URL") else {
            assert!(
                std::env::var("BAOHAN_TEST_REQUIRE_POSTGRES").is_err(),
                "BAOHAN_TEST_REQUIRE_POSTGRES is set but BAOHAN_TEST_POSTGRES_URL is not"
            );
            eprintln!("skipped: set BAOHAN_TEST_POSTGRES_URL to run this test");
            return None;
        };
        let name = format!("baohan_cli_{}", uuid::Uuid::new_v4().simple());
        let mut c = baohan::db::pg_establish(&admin_url).expect("PostgreSQL");
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut c)
            .expect("create database");
        // The admin URL with the new database's name as its path.
        let (base, query) = admin_url
            .split_once('?')
            .map_or((admin_url.as_str(), None), |(b, q)| (b, Some(q)));
        let host_end = base[base.find("://").map_or(0, |i| i + 3)..]
            .find('/')
            .map_or(base.len(), |i| i + base.find("://").map_or(0, |s| s + 3));
        let url = match query {
            Some(q) => format!("{}/{name}?{q}", &base[..host_end]),
            None => format!("{}/{name}", &base[..host_end]),
        };
        Some(PostgresDb {
            admin_url,
            name,
            url,
        })
    }
}

impl Drop for PostgresDb {
    fn drop(&mut self) {
        use diesel::RunQueryDsl;
        if let Ok(mut c) = baohan::db::pg_establish(&self.admin_url) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .execute(&mut c);
        }
    }
}

/// Runs `baohan demo` on `url` with the data directory `data` until it says it is
/// listening; what it printed, then it is killed.
fn run_demo_until_listening(url: &str, data: &Path) -> String {
    use std::io::BufRead;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_baohan"))
        .arg("demo")
        .env("BAOHAN_DATABASE_URL", url)
        .env("BAOHAN_DATA_DIR", data)
        .env("BAOHAN_LISTEN", format!("127.0.0.1:{port}"))
        .env("BAOHAN_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("baohan demo starts");
    let mut printed = String::new();
    let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let listening = loop {
        match lines.next() {
            Some(Ok(line)) => {
                printed.push_str(&line);
                printed.push('\n');
                if line.trim_start().starts_with("listening on") {
                    break true;
                }
            }
            // It stopped printing: it exited.
            _ => break false,
        }
    };
    let _ = child.kill();
    let status = child.wait().expect("reaped");
    assert!(listening, "the demo stopped ({status}): {printed}");
    printed
}

/// How many rows each table the demo seeds holds.
fn demo_rows(url: &str) -> Vec<(&'static str, i64)> {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut c = baohan::db::pg_establish(url).expect("the demo database");
    [
        "organizations",
        "users",
        "projects",
        "sections",
        "trust_anchors",
        "crls",
        "issuer_certificates",
    ]
    .into_iter()
    .map(|table| {
        let n = diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
            .get_result::<Count>(&mut c)
            .expect("count")
            .n;
        (table, n)
    })
    .collect()
}

#[test]
fn the_demo_runs_on_postgresql_and_a_second_run_adds_nothing() {
    use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl};
    let Some(db) = PostgresDb::create() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("dir");
    let data = tmp.path().join("data");
    let first = run_demo_until_listening(&db.url, &data);
    assert!(
        first.contains("demo CAs and CRLs") && first.contains("(SM2)"),
        "{first}"
    );
    assert!(!first.contains("added now: 0 organizations"), "{first}");
    let seeded = demo_rows(&db.url);
    assert!(seeded.iter().all(|(_, n)| *n > 0), "{seeded:?}");

    let second = run_demo_until_listening(&db.url, &data);
    assert!(
        second.contains("added now: 0 organizations, 0 users, 0 projects"),
        "{second}"
    );
    assert_eq!(demo_rows(&db.url), seeded, "the second run added nothing");
    assert!(
        !data.join("baohan.db").exists(),
        "no SQLite file beside PostgreSQL"
    );
    use baohan::db::schema::users;
    let mut c = baohan::db::pg_establish(&db.url).expect("the demo database");
    for account in baohan::services::demo::DEMO_ACCOUNTS {
        let n: i64 = users::table
            .filter(users::username.eq(account.username))
            .count()
            .get_result(&mut c)
            .expect("count");
        assert_eq!(n, 1, "{} once", account.username);
    }
}
