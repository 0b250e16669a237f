//! Bulk import of credit records, attacked: every kind of bad line is reported by its
//! number without stopping the good ones, which end up exactly as the same records
//! posted one by one would (scores and levels); the same file again stores nothing; an
//! unknown column refuses the whole file; a SIGKILL in the middle of a large import and
//! a second run leave every good line stored once and every subject's score the sum of
//! its records in force; the upload is the credit office's alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use baohan::db::schema::{credit_imports, credit_records, credit_subjects};
use diesel::prelude::*;
use reqwest::Method;
use serde_json::Value;

use crate::fixtures::credit::NewCreditRecord;
use crate::fixtures::library::resident_id;
use crate::fixtures::Session;
use crate::helpers::{uscc, TestApp};

pub(crate) const HEADER: &str = "subject_type,subject_id,subject_name,category,polarity,points,occurred_at,expires_at,source_department,source_ref,note";

/// A resident ID of the test region, one per `n`.
fn person(n: u32) -> String {
    let birth = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("date")
        + chrono::Duration::days(i64::from(n / 900));
    resident_id(&format!(
        "371602{}{:03}",
        birth.format("%Y%m%d"),
        n % 900 + 10
    ))
}

/// A USCC of the test region, one per `n`.
fn enterprise(n: u32) -> String {
    uscc(&format!("91371600MA{:07}", n + 1))
}

fn yesterday() -> String {
    baohan::domain::time::china_date(chrono::Utc::now().naive_utc() - chrono::Duration::days(1))
        .to_string()
}

/// `baohan import` on the app's database and data directory (the same HMAC key).
fn import_command(app: &TestApp, file: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_baohan"));
    command
        .arg("import")
        .arg(file)
        .args(extra)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env(
            "BAOHAN_DATABASE_URL",
            app.settings
                .database_url
                .as_deref()
                .expect("a database URL"),
        )
        .env("BAOHAN_DATA_DIR", app.data_dir())
        .env("BAOHAN_LOG", "warn")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    command
}

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn import(app: &TestApp, file: &Path, extra: &[&str]) -> Ran {
    let mut command = import_command(app, file, extra);
    let output = tokio::task::spawn_blocking(move || command.output().expect("baohan import runs"))
        .await
        .expect("task");
    Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn write(app: &TestApp, name: &str, text: &str) -> PathBuf {
    let path = app.data_dir().join(name);
    std::fs::write(&path, text).expect("file written");
    path
}

pub(crate) fn csv_line(r: &NewCreditRecord) -> String {
    csv_line_with_points(r, &r.points.map(|p| p.to_string()).unwrap_or_default())
}

/// A CSV line with `points` as given (to send what is no number).
fn csv_line_with_points(r: &NewCreditRecord, points: &str) -> String {
    format!(
        "{},{},{},{},{},{},{},{},{},{},",
        r.subject_type,
        r.subject_id,
        r.subject_name,
        r.category,
        r.polarity.as_deref().unwrap_or(""),
        points,
        r.occurred_at,
        r.expires_at.as_deref().unwrap_or(""),
        r.source_department,
        r.source_ref
    )
}

/// Records of `department`, by reference: (subject id, in force).
async fn records_of(app: &TestApp, department: &str) -> BTreeMap<String, (String, bool)> {
    let department = department.to_owned();
    app.db(move |c| {
        credit_records::table
            .filter(credit_records::source_department.eq(department))
            .select((
                credit_records::source_ref,
                credit_records::subject_id,
                credit_records::in_force,
            ))
            .load::<(String, String, bool)>(c)
            .expect("records")
            .into_iter()
            .map(|(r, s, f)| (r, (s, f)))
            .collect()
    })
    .await
}

/// Standing of the subject with this number: (score, level, dimensions, serious count).
async fn standing(app: &TestApp, kind: &str, number: &str) -> (i32, String, [i32; 4], i32) {
    let key = match kind {
        "person" => {
            let today = baohan::domain::time::china_date(app.ctx.now());
            baohan::domain::ResidentId::parse(number, today)
                .expect("resident id")
                .hmac_hex(&app.ctx.keys.id_hmac)
        }
        _ => number.to_owned(),
    };
    app.db(move |c| {
        credit_subjects::table
            .filter(credit_subjects::subject_key.eq(key))
            .select((
                credit_subjects::score,
                credit_subjects::level,
                credit_subjects::score_identity,
                credit_subjects::score_compliance,
                credit_subjects::score_public_interest,
                credit_subjects::score_history,
                credit_subjects::serious_dishonesty_count,
            ))
            .first::<(i32, String, i32, i32, i32, i32, i32)>(c)
            .map(|(s, l, a, b, cc, d, n)| (s, l, [a, b, cc, d], n))
            .expect("subject")
    })
    .await
}

/// Every subject's stored score equals the base score plus the signed points of its
/// records in force (within the bounds), and its serious-dishonesty count theirs.
async fn assert_scores_are_the_sums_of_records_in_force(app: &TestApp) -> usize {
    crate::fixtures::credit::assert_tallies_match_the_archive(app).await;
    app.db(|c| {
        let config = baohan::domain::credit::LevelsConfig::shipped().expect("levels");
        let subjects: Vec<(String, i32, i32)> = credit_subjects::table
            .select((
                credit_subjects::id,
                credit_subjects::score,
                credit_subjects::serious_dishonesty_count,
            ))
            .load(c)
            .expect("subjects");
        let records: Vec<(String, String, i32, bool, bool)> = credit_records::table
            .filter(credit_records::in_force)
            .select((
                credit_records::subject_id,
                credit_records::polarity,
                credit_records::points,
                credit_records::serious_dishonesty,
                credit_records::in_force,
            ))
            .load(c)
            .expect("records");
        let mut sums: BTreeMap<String, (i64, i32)> = BTreeMap::new();
        for (subject, polarity, points, serious, _) in records {
            let e = sums.entry(subject).or_default();
            e.0 += if polarity == "positive" {
                i64::from(points)
            } else {
                -i64::from(points)
            };
            e.1 += i32::from(serious);
        }
        for (id, score, serious) in &subjects {
            let (sum, count) = sums.get(id).copied().unwrap_or_default();
            let expected = (i64::from(config.base_score) + sum)
                .clamp(i64::from(config.floor), i64::from(config.ceiling));
            assert_eq!(i64::from(*score), expected, "score of subject {id}");
            assert_eq!(*serious, count, "serious-dishonesty count of subject {id}");
        }
        subjects.len()
    })
    .await
}

/// The rejected lines of an NDJSON report: line number -> reason.
fn report(path: &Path) -> BTreeMap<u64, String> {
    std::fs::read_to_string(path)
        .expect("report")
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("report line");
            (
                v["line"].as_u64().expect("line"),
                v["reason"].as_str().expect("reason").to_owned(),
            )
        })
        .collect()
}

async fn bad_lines_are_reported_by_number_and_good_lines_score_as_posted_one_by_one(app: TestApp) {
    let office = app.as_operator().await;
    let dept = "省信用平台";
    // One already stored through the API.
    let mut earlier = NewCreditRecord::enterprise(&enterprise(90), "tax_grade_a", "P-0");
    earlier.source_department = dept.into();
    office.post_record(&earlier).await;

    // The good lines: two subjects with several records each (one on the
    // serious-dishonesty list, one lapsed already), and their twins posted one by one.
    let day = yesterday();
    let good = |kind: &str, id: &str, category: &str, reference: &str| {
        let mut r = if kind == "person" {
            NewCreditRecord::person(id, category, reference)
        } else {
            NewCreditRecord::enterprise(id, category, reference)
        };
        r.source_department = dept.into();
        r.occurred_at = day.clone();
        r
    };
    let lapsed = |mut r: NewCreditRecord| {
        r.occurred_at = "2020-01-01".into();
        r.expires_at = Some("2021-01-01".into());
        r
    };
    let plan = |p: &str, e: &str, tag: &str| {
        vec![
            good("person", p, "identity_verified", &format!("{tag}-1")),
            good("person", p, "administrative_penalty", &format!("{tag}-2")).points(45),
            lapsed(good("person", p, "tax_grade_a", &format!("{tag}-3"))),
            good("enterprise", e, "tax_grade_a", &format!("{tag}-4")),
            good("enterprise", e, "judgment_defaulter", &format!("{tag}-5")),
            good(
                "enterprise",
                e,
                "administrative_penalty",
                &format!("{tag}-6"),
            ),
        ]
    };
    let (p1, e1, p2, e2) = (person(1), enterprise(1), person(2), enterprise(2));
    let imported = plan(&p1, &e1, "F");
    let posted = plan(&p2, &e2, "A");
    for r in &posted {
        office.post_record(r).await;
    }

    let mut lines: Vec<String> = vec![HEADER.into()];
    lines.extend(imported.iter().map(csv_line)); // lines 2..=7
    let bad = |edit: &dyn Fn(&mut NewCreditRecord), reference: &str| {
        let mut r = good("enterprise", &enterprise(3), "tax_grade_a", reference);
        edit(&mut r);
        csv_line(&r)
    };
    let mut wrong_check = p1.clone();
    wrong_check.replace_range(17.., if p1.ends_with('1') { "2" } else { "1" });
    lines.push(bad(
        &|r| {
            r.subject_type = "person".into();
            r.subject_id = wrong_check.clone();
        },
        "B-8",
    )); // 8 invalid_id
    let mut bad_uscc = enterprise(0);
    let last = if bad_uscc.ends_with('0') { "1" } else { "0" };
    bad_uscc.replace_range(17.., last);
    lines.push(bad(&|r| r.subject_id = bad_uscc.clone(), "B-9")); // 9 invalid_id
    lines.push(bad(&|r| r.category = "no_such_category".into(), "B-10")); // 10
    lines.push(bad(&|r| r.occurred_at = "2026-13-45".into(), "B-11")); // 11 bad_date
    lines.push(bad(&|r| r.expires_at = Some("2000-01-01".into()), "B-12")); // 12 bad_date
    lines.push(bad(&|r| r.points = Some(5000), "B-13")); // 13 bad_points
    lines.push(csv_line_with_points(
        &good("enterprise", &enterprise(3), "tax_grade_a", "B-14"),
        "abc",
    )); // 14 bad_points
    lines.push(bad(&|r| r.polarity = Some("neutral".into()), "B-15")); // 15 bad_polarity
    lines.push(bad(&|r| r.subject_type = "company".into(), "B-16")); // 16
    lines.push(bad(&|_| {}, "F-1")); // 17 duplicate_in_file (line 2)
    lines.push(bad(&|_| {}, "P-0")); // 18 already_stored (the API)
    lines.push("enterprise,too,few,fields".into()); // 19 malformed
    lines.push(String::new()); // a blank line: skipped, not a record
    lines.push(bad(&|_| {}, "G-21")); // 21 good
    let file = write(&app, "records.csv", &(lines.join("\n") + "\n"));
    let report_file = app.data_dir().join("report.ndjson");
    let ran = import(
        &app,
        &file,
        &["--report", report_file.to_str().expect("utf-8 path")],
    )
    .await;
    assert_eq!(ran.code, 0, "exit code; stderr: {}", ran.stderr);
    assert!(
        ran.stdout.contains("line 10: unknown_category (category)"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("7 stored, 12 rejected"),
        "{}",
        ran.stdout
    );

    let reasons = report(&report_file);
    let expected: BTreeMap<u64, String> = [
        (8, "invalid_id"),
        (9, "invalid_id"),
        (10, "unknown_category"),
        (11, "bad_date"),
        (12, "bad_date"),
        (13, "bad_points"),
        (14, "bad_points"),
        (15, "bad_polarity"),
        (16, "invalid_subject_type"),
        (17, "duplicate_in_file"),
        (18, "already_stored"),
        (19, "malformed"),
    ]
    .into_iter()
    .map(|(l, r)| (l, r.to_owned()))
    .collect();
    assert_eq!(reasons, expected);

    let stored = records_of(&app, dept).await;
    for r in imported
        .iter()
        .map(|r| &r.source_ref)
        .chain([&"G-21".to_owned()])
    {
        assert!(stored.contains_key(r), "{r} stored");
    }
    assert!(!stored.contains_key("B-8") && !stored.contains_key("B-13"));
    assert!(
        !stored["F-3"].1,
        "a record lapsed on arrival is kept out of force"
    );

    // The imported subjects stand exactly as their twins posted one by one.
    assert_eq!(
        standing(&app, "person", &p1).await,
        standing(&app, "person", &p2).await
    );
    let (imported_e, posted_e) = (
        standing(&app, "enterprise", &e1).await,
        standing(&app, "enterprise", &e2).await,
    );
    assert_eq!(imported_e, posted_e);
    assert_eq!(
        (imported_e.1.as_str(), imported_e.3),
        ("D", 1),
        "serious dishonesty"
    );
    // A resident ID is nowhere in clear.
    let clear = p1.clone();
    let found: i64 = app
        .db(move |c| {
            credit_subjects::table
                .filter(
                    credit_subjects::subject_key
                        .eq(&clear)
                        .or(credit_subjects::masked_id.eq(&clear)),
                )
                .count()
                .get_result(c)
                .expect("count")
        })
        .await;
    assert_eq!(found, 0);
    // The level changes were recorded: one per imported subject that moved.
    let person_archive = office.credit_lookup("person", &p1).await;
    assert_eq!(person_archive.level_changes.len(), 1, "{person_archive:?}");
    assert_scores_are_the_sums_of_records_in_force(&app).await;

    // The same file again stores nothing and says so.
    let again = import(&app, &file, &[]).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stdout.contains("already imported"),
        "{}",
        again.stdout
    );
    assert_eq!(records_of(&app, dept).await, stored);
    // The same lines in another file (one line more): only the new one is stored, the
    // others are stored already.
    lines.push(bad(&|_| {}, "G-22"));
    let grown = write(&app, "grown.csv", &(lines.join("\n") + "\n"));
    let ran = import(&app, &grown, &[]).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        ran.stdout.contains("1 stored, 19 rejected"),
        "{}",
        ran.stdout
    );
    assert_eq!(records_of(&app, dept).await.len(), stored.len() + 1);
    assert_eq!(
        standing(&app, "enterprise", &e1).await,
        imported_e,
        "nothing counted twice"
    );
}

async fn an_unknown_column_or_key_refuses_the_whole_file(app: TestApp) {
    let r = NewCreditRecord::enterprise(&enterprise(5), "tax_grade_a", "U-1");
    let csv = format!("{HEADER},remark\n{},x\n", csv_line(&r));
    let file = write(&app, "unknown.csv", &csv);
    let ran = import(&app, &file, &[]).await;
    assert_eq!(ran.code, 65, "{} {}", ran.stdout, ran.stderr);
    assert!(ran.stderr.contains("\"remark\""), "{}", ran.stderr);

    let first = serde_json::to_value(&r).expect("json");
    let mut second = first.clone();
    second["source_ref"] = "U-2".into();
    second["colour"] = "red".into();
    let ndjson = format!("{first}\n{second}\n");
    let file = write(&app, "unknown.ndjson", &ndjson);
    let ran = import(&app, &file, &[]).await;
    assert_eq!(ran.code, 65, "{} {}", ran.stdout, ran.stderr);
    assert!(ran.stderr.contains("\"colour\""), "{}", ran.stderr);
    assert!(records_of(&app, &r.source_department).await.is_empty());

    let missing = write(&app, "missing.csv", "subject_type,subject_id\n");
    assert_eq!(import(&app, &missing, &[]).await.code, 65);
    let nowhere = app.data_dir().join("nowhere.csv");
    assert_eq!(import(&app, &nowhere, &[]).await.code, 66);
}

/// Lines of a large file: persons and enterprises (many subjects repeated), several
/// categories, some lapsed already, every 97th line bad.
fn large_file(lines: u32, department: &str) -> (String, u32) {
    let categories = [
        "identity_verified",
        "tax_grade_a",
        "administrative_penalty",
        "judgment_defaulter",
    ];
    let mut out = String::with_capacity(lines as usize * 120);
    out.push_str(HEADER);
    out.push('\n');
    let day = yesterday();
    let mut bad = 0;
    for n in 0..lines {
        let category = categories[(n % 7 % 4) as usize];
        let (kind, id) = if n % 2 == 0 {
            ("person", person(n / 2 % 2500))
        } else {
            ("enterprise", enterprise(n / 2 % 1500))
        };
        let (occurred, expires) = if n % 11 == 0 {
            ("2019-05-01", "2020-05-01")
        } else {
            (day.as_str(), "")
        };
        let points = if n % 97 == 0 {
            bad += 1;
            "0"
        } else {
            ""
        };
        out.push_str(&format!(
            "{kind},{id},名称{n},{category},,{points},{occurred},{expires},{department},R-{n},\n"
        ));
    }
    (out, lines - bad)
}

async fn a_sigkill_mid_import_then_a_second_run_stores_every_good_line_once(app: TestApp) {
    let department = "国家信用平台";
    let (text, good) = large_file(200_000, department);
    let file = write(&app, "large.csv", &text);
    let mut child = import_command(&app, &file, &["--batch-lines", "2000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("baohan import starts");
    // Killed once some batches committed and before the end.
    let started = Instant::now();
    let committed = loop {
        let last: Option<i64> = app
            .db(|c| {
                credit_imports::table
                    .select(credit_imports::last_line)
                    .first(c)
                    .optional()
                    .expect("job")
            })
            .await;
        if last.is_some_and(|l| l >= 20_000) {
            break last.unwrap_or_default();
        }
        assert!(
            child.try_wait().expect("child").is_none(),
            "the import ended before it could be killed"
        );
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "import too slow"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let after_kill = records_of(&app, department).await.len();
    assert!(
        after_kill < good as usize,
        "killed mid-import ({committed} lines committed, {after_kill} stored)"
    );

    let ran = import(&app, &file, &["--batch-lines", "2000"]).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let already: u64 = ran
        .stdout
        .split(" already imported by an earlier run")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("already imported count");
    assert!(already >= 20_000, "{}", ran.stdout);
    let stored = records_of(&app, department).await;
    assert_eq!(stored.len(), good as usize, "every good line exactly once");
    let subjects = assert_scores_are_the_sums_of_records_in_force(&app).await;
    assert!(subjects >= 2500 + 1500, "{subjects} subjects");
    let (last, status): (i64, String) = app
        .db(|c| {
            credit_imports::table
                .select((credit_imports::last_line, credit_imports::status))
                .first(c)
                .expect("job")
        })
        .await;
    assert_eq!((last, status.as_str()), (200_001, "finished"));
}

/// A CSV file of `n` copies of `r`, each with its own reference `PREFIX-i`.
fn csv_of_copies(r: &NewCreditRecord, prefix: &str, n: usize) -> String {
    let mut file = format!("{HEADER}\n");
    for i in 0..n {
        let mut line = r.clone();
        line.source_ref = format!("{prefix}-{i}");
        file.push_str(&csv_line(&line));
        file.push('\n');
    }
    file
}

async fn upload<R>(
    who: &Session<'_, R>,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    who.request(Method::POST, "/api/v1/credit/imports")
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("an answer")
}

async fn the_credit_office_uploads_a_file_and_nobody_else_may(app: TestApp) {
    let office = app.as_operator().await;
    let enterprise_user = app.as_enterprise("enterprise1").await;
    let r = NewCreditRecord::enterprise(&enterprise(7), "administrative_penalty", "UP-1");
    let mut bad = NewCreditRecord::enterprise(&enterprise(7), "nope_category", "UP-2");
    bad.source_department = r.source_department.clone();
    let body = format!("{HEADER}\n{}\n{}\n", csv_line(&r), csv_line(&bad));
    let refused = upload(&enterprise_user, "text/csv", body.clone()).await;
    crate::helpers::assert_error(refused, 403, "forbidden").await;
    assert!(records_of(&app, &r.source_department).await.is_empty());

    let answer = upload(&office, "text/csv", body.clone()).await;
    assert_eq!(answer.status().as_u16(), 200);
    let summary: Value = answer.json().await.expect("json");
    assert_eq!(
        (summary["stored"].as_u64(), summary["rejected"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(summary["rejected_lines"][0]["line"], 3);
    assert_eq!(summary["rejected_lines"][0]["reason"], "unknown_category");
    let subject = standing(&app, "enterprise", &enterprise(7)).await;
    assert_eq!(subject.1, "B");

    // Again: nothing new. An NDJSON file works the same.
    let again: Value = upload(&office, "text/csv", body)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(again["finished_before"], true);
    let mut json_record = serde_json::to_value(&r).expect("json");
    json_record["source_ref"] = "UP-3".into();
    let answer = upload(
        &office,
        "application/x-ndjson",
        format!("{json_record}\nnot json\n"),
    )
    .await;
    assert_eq!(answer.status().as_u16(), 200);
    let summary: Value = answer.json().await.expect("json");
    assert_eq!(summary["stored"], 1);
    assert_eq!(summary["rejected_lines"][0]["reason"], "malformed");
    assert_eq!(records_of(&app, &r.source_department).await.len(), 2);

    // A file of several megabytes arrives in many pieces, each spooled in turn: every
    // line is read back whole.
    let mut big = String::from(HEADER);
    big.push('\n');
    let lines = 40_000;
    for i in 0..lines {
        let mut line = NewCreditRecord::enterprise(&enterprise(8), "blood_donation", "x");
        line.source_ref = format!("BIG-{i:06}");
        line.source_department = "滨州市献血办公室".into();
        big.push_str(&csv_line(&line));
        big.push('\n');
    }
    assert!(big.len() > 3 * 1024 * 1024, "{} bytes", big.len());
    let answer = upload(&office, "text/csv", big).await;
    assert_eq!(answer.status().as_u16(), 200);
    let summary: Value = answer.json().await.expect("json");
    assert_eq!(summary["stored"], lines, "{summary}");
    assert_eq!(summary["rejected"], 0, "{summary}");

    // An Idempotency-Key is refused on uploads, small or beyond the usual body limit
    // (a replayed answer would need the body held in memory): the file's digest already
    // makes a second sending harmless. Nothing is stored.
    let keyed = csv_of_copies(&r, "KEYED", 2000);
    assert!(keyed.len() > app.settings.max_body_bytes);
    let mut one = r.clone();
    one.source_ref = "KEYED-SMALL".into();
    for body in [keyed, format!("{HEADER}\n{}\n", csv_line(&one))] {
        let answer = office
            .request(Method::POST, "/api/v1/credit/imports")
            .header("content-type", "text/csv")
            .header("idempotency-key", "upload-1")
            .body(body)
            .send()
            .await
            .expect("an answer");
        let error = crate::helpers::assert_error(answer, 400, "bad_request").await;
        assert!(
            error["message"]
                .as_str()
                .unwrap_or_default()
                .contains("Idempotency-Key"),
            "{error}"
        );
    }
    assert_eq!(records_of(&app, &r.source_department).await.len(), 2);

    // An unknown column, or a body of another type: 4xx, nothing stored.
    let unknown = upload(
        &office,
        "text/csv",
        format!("{HEADER},colour\n{},red\n", csv_line(&r)),
    )
    .await;
    let error = crate::helpers::assert_error(unknown, 422, "invalid_file").await;
    assert!(error["message"]
        .as_str()
        .unwrap_or_default()
        .contains("colour"));
    let wrong_type = upload(&office, "application/json", "{}").await;
    crate::helpers::assert_error(wrong_type, 415, "unsupported_media_type").await;
    let not_utf8 = upload(&office, "text/csv", vec![0xff, 0xfe, b',', b'\n']).await;
    crate::helpers::assert_error(not_utf8, 422, "invalid_file").await;
    assert_eq!(records_of(&app, &r.source_department).await.len(), 2);

    // A body above the server's usual limit is taken on this route.
    let big = csv_of_copies(&r, "BIG", 2000);
    assert!(big.len() > app.settings.max_body_bytes);
    let answer = upload(&office, "text/csv", big).await;
    assert_eq!(answer.status().as_u16(), 200);
    let summary: Value = answer.json().await.expect("json");
    assert_eq!(summary["stored"], 2000);
}

crate::on_both_backends!(
    bad_lines_are_reported_by_number_and_good_lines_score_as_posted_one_by_one,
    an_unknown_column_or_key_refuses_the_whole_file,
    a_sigkill_mid_import_then_a_second_run_stores_every_good_line_once,
    the_credit_office_uploads_a_file_and_nobody_else_may,
);
