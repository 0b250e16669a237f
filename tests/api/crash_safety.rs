//! Crash safety of the whole lifecycle: the real `baohan serve` SIGKILLed at random
//! moments, at least [`MIN_KILLS`] times with requests on the wire, while four
//! enterprises (their work spread over several seconds) apply for bonds, the
//! bank approves, confirms the premiums and issues with its hosted key, and, once the bid
//! deadline has passed, the agency accepts some bonds and claims on others and the bank
//! pays or rejects the claims; mail goes to a real SMTP server meanwhile. Each killed
//! server is started again, and every client retries its request under the same
//! `Idempotency-Key` until it is answered, as a careful client would.
//!
//! Afterwards every request answered with success is in the database, nothing is
//! half-written (each guarantee has its signed document and its "issued" mail, no number
//! is used twice, no claim without its guarantee in the matching state, each transition
//! audited once), `baohan audit verify` finds the chain intact, and every queued mail
//! reached the SMTP server (twice only where a kill fell between its sending and its
//! marking; those are counted and printed).
//!
//! The kill schedule is random: `BAOHAN_TEST_CRASH_SEED=<n>` replays one (the seed is
//! printed; the processes' own timing still varies).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baohan::db::schema::{applications, claims, guarantee_versions, guarantees};
use diesel::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::fixtures::library::{verify_chain, ChainCheck, DbConnection, DbPool};
use crate::fixtures::server::{ServeOptions, ServeProcess};
use crate::fixtures::smtp::{Mode, SmtpServer};
use crate::fixtures::{NewClaim, NewSection, NewTender, Party, TestPki};
use crate::helpers::{demo_uscc, TestApp};

/// Replays a kill schedule.
const SEED_ENV: &str = "BAOHAN_TEST_CRASH_SEED";
/// At least this many kills fall while requests are on the wire.
const MIN_KILLS: usize = 20;
/// A server lives at least this long (ms, drawn at random) after its start; then it is
/// killed within [`KILL_WITHIN_MS`] of the next moment a request is on the wire.
const UPTIME_MS: std::ops::RangeInclusive<u64> = 20..=250;
/// How soon after a request went out its server is killed (ms, drawn at random).
const KILL_WITHIN_MS: std::ops::RangeInclusive<u64> = 0..=3;
/// The clients start their work spread over this long (ms) in each phase, and pause up
/// to [`THINK_MS`] between two steps, so that traffic runs through every phase.
const SPREAD_MS: u64 = 7_000;
const THINK_MS: u64 = 250;
/// The bid deadline is this far after the project's creation: every bond is issued
/// before it, every claim and acceptance made after it. Issuing takes about 12 s on a
/// quiet machine; with the suite's other tests running beside it, it took over 20, and
/// over 40 with a release build running beside the suite as well, and once over 60
/// in the whole suite after releases began writing time-stamped letters.
const DEADLINE_SECONDS: i64 = 90;
/// Sections of the tender; each enterprise applies for each.
const SECTIONS: usize = 8;

/// Where the server listens now; `None` while it is down.
type Current = watch::Receiver<Option<String>>;

/// A client of whichever server is up, retrying keyed requests until they settle.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    server: Current,
    /// Requests on the wire now.
    in_flight: Arc<AtomicUsize>,
    /// Requests that got no answer (the server died under them, or was down).
    cut_off: Arc<AtomicUsize>,
}

/// What a keyed request ended with.
#[derive(Debug, Clone)]
enum Settled {
    /// Answered with success: by its run, or given again by its key.
    Answered(Value),
    /// It ran, but the server died before storing the answer; the retry was told what
    /// it made or changed.
    AnswerLost { kind: String, id: String },
}

impl Settled {
    /// The id of the `kind` of thing the request made: its answer's `id`, or the one
    /// the lost answer names (which must be of that kind).
    fn made(&self, kind: &str) -> String {
        match self {
            Settled::Answered(body) => body["id"]
                .as_str()
                .unwrap_or_else(|| panic!("an id in {body}"))
                .to_owned(),
            Settled::AnswerLost { kind: named, id } => {
                assert_eq!(named, kind, "the lost answer names what was made ({id})");
                id.clone()
            }
        }
    }
}

impl Client {
    /// POSTs `body` to `path` with `token` under `key` until the request is answered
    /// with success (or its answer was lost). Any other answer fails the test.
    async fn settle(&self, token: &str, path: &str, body: &Value, key: &str) -> Settled {
        let started = Instant::now();
        let mut server = self.server.clone();
        loop {
            // Two minutes: on two shared cores, with the rest of the suite running, the
            // kills and restarts of one run have taken a minute; a request that is
            // never answered still fails.
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{key}: POST {path} not answered within two minutes"
            );
            let Some(address) = server.borrow_and_update().clone() else {
                // Down: wait for the next start.
                let _ = tokio::time::timeout(Duration::from_millis(200), server.changed()).await;
                continue;
            };
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            let answer = self.post(&address, token, path, body, key).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            let Some((status, answer)) = answer else {
                self.cut_off.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            match (status, answer["error"]["code"].as_str()) {
                (200..=299, _) => return Settled::Answered(answer),
                // A run that a kill left holds the key until its lease runs out.
                (409, Some("idempotency_key_in_progress")) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                (409, Some("idempotent_answer_lost")) => {
                    let named = |field: &str| {
                        answer["error"]["details"][field]
                            .as_str()
                            .unwrap_or_else(|| {
                                panic!("{key}: a lost answer names its entity: {answer}")
                            })
                            .to_owned()
                    };
                    return Settled::AnswerLost {
                        kind: named("entity_kind"),
                        id: named("entity_id"),
                    };
                }
                _ => panic!("{key}: POST {path} at {address}: {status} {answer}"),
            }
        }
    }

    /// One try; `None` when no whole answer came back.
    async fn post(
        &self,
        address: &str,
        token: &str,
        path: &str,
        body: &Value,
        key: &str,
    ) -> Option<(u16, Value)> {
        let res = self
            .http
            .post(format!("{address}{path}"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(body)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .ok()?;
        let status = res.status().as_u16();
        let text = res.text().await.ok()?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Some((status, body))
    }
}

/// What the killer did.
#[derive(Debug, Default)]
struct Kills {
    total: usize,
    /// Kills that fell while requests were on the wire.
    with_requests_in_flight: usize,
}

/// What a kill may never leave behind, checked in the database while the server is
/// down: an application issued without its guarantee (or a guarantee of one not
/// issued), a guarantee without its signed current version or without its "issued"
/// mail, a claimed guarantee without exactly one open claim (or an open claim on a
/// guarantee not claimed), a paid claim on a guarantee not paid, a broken audit chain.
///
/// Everything is read in one snapshot: on PostgreSQL the backend of a killed server
/// still runs a `COMMIT` that arrived before the kill, and separate reads could straddle
/// it and see half of a whole transaction.
fn half_written(conn: &mut DbConnection) -> Vec<String> {
    conn.transaction::<_, diesel::result::Error, _>(|conn| {
        if matches!(conn, DbConnection::Pg(_)) {
            diesel::sql_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(conn)?;
        }
        Ok(half_written_in(conn))
    })
    .expect("a snapshot of the database")
}

/// [`half_written`], in the snapshot it opened.
fn half_written_in(conn: &mut DbConnection) -> Vec<String> {
    use baohan::db::schema::mail_outbox;
    let mut found = Vec::new();
    let applications: Vec<(String, String)> = applications::table
        .select((applications::id, applications::status))
        .load(conn)
        .expect("applications");
    let bonds: Vec<(String, String, String, i32)> = guarantees::table
        .select((
            guarantees::application_id,
            guarantees::number,
            guarantees::status,
            guarantees::current_version,
        ))
        .load(conn)
        .expect("guarantees");
    for (id, status) in &applications {
        let count = bonds.iter().filter(|b| &b.0 == id).count();
        if (status == "issued") != (count == 1) || count > 1 {
            found.push(format!("application {id} {status} with {count} guarantees"));
        }
    }
    let signed: Vec<(String, i32)> = guarantee_versions::table
        .inner_join(guarantees::table)
        .filter(guarantee_versions::signature.is_not_null())
        .select((guarantees::number, guarantee_versions::version))
        .load(conn)
        .expect("versions");
    let subjects: Vec<String> = mail_outbox::table
        .select(mail_outbox::subject)
        .load(conn)
        .expect("outbox");
    let paid_sums: Vec<(String, i64, i64)> = guarantees::table
        .select((
            guarantees::number,
            guarantees::amount_fen,
            guarantees::paid_fen,
        ))
        .load(conn)
        .expect("paid sums");
    let claims_paid: Vec<(String, Option<i64>)> = claims::table
        .inner_join(guarantees::table)
        .filter(claims::status.eq("paid"))
        .select((guarantees::number, claims::paid_fen))
        .load(conn)
        .expect("paid claims");
    let open_claims: Vec<(String, String)> = claims::table
        .inner_join(guarantees::table)
        .filter(claims::status.ne("rejected"))
        .select((guarantees::number, claims::status))
        .load(conn)
        .expect("claims");
    for (_, number, status, version) in &bonds {
        if !signed.iter().any(|(n, v)| n == number && v == version) {
            found.push(format!("{number}: version {version} not signed"));
        }
        if !subjects
            .iter()
            .any(|s| s.contains("Guarantee issued") && s.contains(number.as_str()))
        {
            found.push(format!("{number}: no issued mail"));
        }
        let of = |state: &str| {
            open_claims
                .iter()
                .filter(|(n, s)| n == number && s == state)
                .count()
        };
        if (status == "claimed") != (of("filed") == 1) || of("filed") > 1 {
            found.push(format!(
                "{number} {status} with {} open claims",
                of("filed")
            ));
        }
        // What the paid claims paid is what the guarantee counts as paid, and only a
        // guarantee paid in full has ended so.
        let (_, amount, paid) = paid_sums
            .iter()
            .find(|(n, ..)| n == number)
            .expect("the guarantee's sums");
        let by_claims: i64 = claims_paid
            .iter()
            .filter(|(n, _)| n == number)
            .map(|(_, p)| p.unwrap_or(0))
            .sum();
        if by_claims != *paid {
            found.push(format!(
                "{number}: paid {paid}, its paid claims {by_claims}"
            ));
        }
        if (status == "paid") != (paid == amount) {
            found.push(format!("{number} {status} with {paid} of {amount} paid"));
        }
    }
    match verify_chain(conn) {
        ChainCheck::Intact { .. } => {}
        broken => found.push(format!("audit chain: {broken:?}")),
    }
    found
}

/// Starts the server, lets it live a random while, SIGKILLs it just after a request
/// went out (or after a second without any), checks that the kill left nothing
/// half-written, and again, until told to stop and at least [`MIN_KILLS`] kills are
/// done.
async fn keep_killing(
    start: impl Fn() -> ServeProcess,
    pool: DbPool,
    http: reqwest::Client,
    mut rng: StdRng,
    current: watch::Sender<Option<String>>,
    in_flight: Arc<AtomicUsize>,
    stop: watch::Receiver<bool>,
) -> Kills {
    let mut kills = Kills::default();
    while !(*stop.borrow() && kills.total >= MIN_KILLS) {
        let mut server = start();
        server.ready(&http).await;
        let _ = current.send(Some(server.address.clone()));
        tokio::time::sleep(Duration::from_millis(rng.gen_range(UPTIME_MS))).await;
        let idle_since = Instant::now();
        while in_flight.load(Ordering::SeqCst) == 0 && idle_since.elapsed() < Duration::from_secs(1)
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(KILL_WITHIN_MS))).await;
        if in_flight.load(Ordering::SeqCst) > 0 {
            kills.with_requests_in_flight += 1;
        }
        server.kill();
        let _ = current.send(None);
        kills.total += 1;
        let pool = pool.clone();
        let found =
            tokio::task::spawn_blocking(move || half_written(&mut pool.get().expect("connection")))
                .await
                .expect("check");
        assert!(found.is_empty(), "kill {}: {found:#?}", kills.total);
    }
    kills
}

/// A bond as its issue answered it.
#[derive(Debug, Clone)]
struct Issued {
    application_id: String,
    number: String,
    code: String,
    enterprise_email: String,
}

/// Who acts, by bearer token, and the ids the requests name.
struct Parties {
    bank_token: String,
    bank_id: String,
    agency_token: String,
    /// (username, token, mail address) of each enterprise.
    enterprises: Vec<(String, String, String)>,
}

/// One application from submission to an issued bond, every step retried to the end.
async fn apply_and_issue(
    client: Client,
    parties: Arc<Parties>,
    enterprise: usize,
    section_id: String,
    pauses: [Duration; 4],
) -> Issued {
    tokio::time::sleep(pauses[0]).await;
    let (username, token, email) = &parties.enterprises[enterprise];
    let tag = format!("{username}-{section_id}");
    let applied = client
        .settle(
            token,
            "/api/v1/applications",
            &json!({ "section_id": section_id, "issuer_id": parties.bank_id }),
            &format!("apply-{tag}"),
        )
        .await;
    let id = applied.made("application");
    let bank = &parties.bank_token;
    let path = |step: &str| format!("/api/v1/applications/{id}/{step}");
    tokio::time::sleep(pauses[1]).await;
    client
        .settle(
            bank,
            &path("approve"),
            &json!({ "premium": "960.00" }),
            &format!("approve-{tag}"),
        )
        .await;
    tokio::time::sleep(pauses[2]).await;
    client
        .settle(
            bank,
            &path("confirm-payment"),
            &json!({}),
            &format!("pay-{tag}"),
        )
        .await;
    tokio::time::sleep(pauses[3]).await;
    // An issue's answer is made again when it was lost: it always comes back whole.
    let Settled::Answered(issued) = client
        .settle(bank, &path("issue"), &json!({}), &format!("issue-{tag}"))
        .await
    else {
        panic!("issue-{tag}: an issue's answer is never lost");
    };
    Issued {
        application_id: id,
        number: issued["guarantee"]["number"]
            .as_str()
            .expect("number")
            .to_owned(),
        code: issued["verification_code"]
            .as_str()
            .expect("code")
            .to_owned(),
        enterprise_email: email.clone(),
    }
}

/// What happens to a bond after the deadline, by its place in the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Accepted,
    /// Claimed in full and paid: the guarantee ends.
    ClaimPaid,
    ClaimRejected,
    /// Claimed in part and paid: the guarantee is reduced and back in force.
    ClaimPaidInPart,
}

impl Fate {
    fn of(index: usize) -> Fate {
        [
            Fate::Accepted,
            Fate::ClaimPaid,
            Fate::ClaimRejected,
            Fate::ClaimPaidInPart,
        ][index % 4]
    }

    /// The guarantee's state at the end.
    fn final_state(self) -> &'static str {
        match self {
            Fate::Accepted => "accepted",
            Fate::ClaimPaid => "paid",
            Fate::ClaimRejected | Fate::ClaimPaidInPart => "issued",
        }
    }

    /// The audited transitions, as (from, to).
    fn path(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Fate::Accepted => &[("issued", "accepted")],
            Fate::ClaimPaid => &[("issued", "claimed"), ("claimed", "paid")],
            Fate::ClaimRejected | Fate::ClaimPaidInPart => {
                &[("issued", "claimed"), ("claimed", "issued")]
            }
        }
    }
}

/// After the deadline: the agency accepts the bond, or claims on it and the bank
/// decides. Returns the claim's id, if any.
async fn after_the_deadline(
    client: Client,
    parties: Arc<Parties>,
    bond: Issued,
    fate: Fate,
    pauses: [Duration; 4],
) -> Option<String> {
    tokio::time::sleep(pauses[0]).await;
    let number = &bond.number;
    let agency = &parties.agency_token;
    if fate == Fate::Accepted {
        client
            .settle(
                agency,
                &format!("/api/v1/guarantees/{number}/accept"),
                &json!({}),
                &format!("accept-{number}"),
            )
            .await;
        return None;
    }
    let amount = if fate == Fate::ClaimPaid {
        "80000.00"
    } else {
        "1000.00"
    };
    let demand = NewClaim::new("withdrew_after_deadline", "开标后撤回投标文件", amount);
    let claim = client
        .settle(
            agency,
            &format!("/api/v1/guarantees/{number}/claims"),
            &serde_json::to_value(&demand).expect("claim"),
            &format!("claim-{number}"),
        )
        .await
        .made("claim");
    tokio::time::sleep(pauses[1]).await;
    let decision = if matches!(fate, Fate::ClaimPaid | Fate::ClaimPaidInPart) {
        json!({ "decision": "pay" })
    } else {
        json!({ "decision": "reject", "reason": "未能证明投标人撤回投标文件" })
    };
    client
        .settle(
            &parties.bank_token,
            &format!("/api/v1/claims/{claim}/decision"),
            &decision,
            &format!("decide-{number}"),
        )
        .await;
    Some(claim)
}

/// The two demo enterprises and two more: (username, token, mail address) of each.
async fn four_enterprises(app: &TestApp) -> Vec<(String, String, String)> {
    let mut enterprises = Vec::new();
    for username in ["enterprise1", "enterprise2"] {
        let token = app.as_enterprise(username).await.token;
        enterprises.push((
            username.to_owned(),
            token,
            format!("{username}@demo.baohan.localhost"),
        ));
    }
    for n in [3, 4] {
        let enterprise = app.new_enterprise(n).await;
        let email = format!("{}@bidders.test", enterprise.username);
        enterprises.push((enterprise.username.clone(), enterprise.token.clone(), email));
    }
    enterprises
}

/// When a client starts its work (within [`SPREAD_MS`]) and how long it pauses before
/// each further step (up to [`THINK_MS`]).
fn pauses(rng: &mut StdRng) -> [Duration; 4] {
    let mut pauses = [0; 4].map(|_: u64| Duration::from_millis(rng.gen_range(0..=THINK_MS)));
    pauses[0] = Duration::from_millis(rng.gen_range(0..=SPREAD_MS));
    pauses
}

/// The seed of this run's kill schedule: the environment's, or a new one.
fn seed() -> u64 {
    match std::env::var(SEED_ENV) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_ENV} must be a number: {text}")),
        Err(_) => rand::random(),
    }
}

async fn killed_at_random_during_issuance_and_claims_nothing_is_lost_or_half_written(app: TestApp) {
    let seed = seed();
    eprintln!("crash test seed {seed} (replay the kill schedule with {SEED_ENV}={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let began = Instant::now();
    let smtp = SmtpServer::start(Mode::Accept).await;
    TestPki::set_up(&app).await;
    let bank = app.as_issuer("bank").await;
    let parties = Arc::new(Parties {
        bank_token: bank.token.clone(),
        bank_id: bank.org_id().to_owned(),
        agency_token: app.as_agency().await.token,
        enterprises: four_enterprises(&app).await,
    });
    let deadline = chrono::Utc::now() + chrono::Duration::seconds(DEADLINE_SECONDS);
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender {
            code: "CRASH-1".into(),
            name: "滨州港疏港路改建工程".into(),
            tenderee_uscc: demo_uscc("tenderee"),
            bid_deadline: deadline.to_rfc3339(),
            bid_opening_at: deadline.to_rfc3339(),
            bid_validity_days: 60,
            sections: (0..SECTIONS)
                .map(|s| NewSection::new(&format!("S{s}"), "路基", "80000.00", Some("4000000.00")))
                .collect(),
        })
        .await;

    // The killer, and the clients of whichever server it lets live.
    let options = ServeOptions::new().smtp(smtp.port);
    let (url, dir) = (
        app.settings.database_url.clone().expect("url"),
        app.data_dir().to_path_buf(),
    );
    let (current, server) = watch::channel(None);
    let (stop, stopped) = watch::channel(false);
    let client = Client {
        http: app.api.clone(),
        server,
        in_flight: Arc::default(),
        cut_off: Arc::default(),
    };
    let killer = {
        let options = options.clone();
        tokio::spawn(keep_killing(
            move || ServeProcess::spawn_on(&url, &dir, &options),
            app.pool.clone(),
            app.api.clone(),
            StdRng::seed_from_u64(rng.gen()),
            current,
            client.in_flight.clone(),
            stopped,
        ))
    };

    // Before the deadline: every enterprise applies for every section; each
    // application goes through to an issued bond.
    let mut chains = tokio::task::JoinSet::new();
    for (i, section) in tender.sections.iter().enumerate() {
        for enterprise in 0..parties.enterprises.len() {
            let task = apply_and_issue(
                client.clone(),
                parties.clone(),
                enterprise,
                section.id.clone(),
                pauses(&mut rng),
            );
            chains.spawn(async move { ((i, enterprise), task.await) });
        }
    }
    let mut bonds: BTreeMap<(usize, usize), Issued> = BTreeMap::new();
    while let Some(done) = chains.join_next().await {
        let (place, issued) = done.expect("chain");
        bonds.insert(place, issued);
    }
    let bonds: Vec<Issued> = bonds.into_values().collect();
    let issued_in = began.elapsed();
    assert!(
        chrono::Utc::now() < deadline,
        "issuing took {issued_in:?}, past the deadline: the machine is too slow for \
         DEADLINE_SECONDS = {DEADLINE_SECONDS}"
    );

    // After the deadline (the servers go on being killed meanwhile, with mail in
    // flight): accept, or claim and decide.
    let wait = (deadline - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(500)).await;
    let mut decisions = tokio::task::JoinSet::new();
    for (i, bond) in bonds.iter().enumerate() {
        let task = after_the_deadline(
            client.clone(),
            parties.clone(),
            bond.clone(),
            Fate::of(i),
            pauses(&mut rng),
        );
        decisions.spawn(async move { (i, task.await) });
    }
    let mut claim_of: HashMap<usize, String> = HashMap::new();
    while let Some(done) = decisions.join_next().await {
        let (i, claim) = done.expect("decision");
        if let Some(claim) = claim {
            claim_of.insert(i, claim);
        }
    }
    let _ = stop.send(true);
    let kills = killer.await.expect("killer");

    // Every request answered with success is there, and nothing is half-written.
    assert_bonds_whole(&app, &tender.sections, &bonds).await;
    for (i, bond) in bonds.iter().enumerate() {
        let fate = Fate::of(i);
        let trail = app.guarantee_trail(&bond.number).await;
        assert_eq!(trail.status, fate.final_state(), "{}", bond.number);
        let path: Vec<(&str, &str)> = trail
            .steps
            .iter()
            .map(|s| {
                (
                    s.from.as_deref().unwrap_or_default(),
                    s.to.as_deref().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            path,
            fate.path(),
            "{}: each transition audited once",
            bond.number
        );
        if fate != Fate::ClaimPaid {
            let report = app.verify(&bond.number, &bond.code).await;
            assert_eq!(report.indication, "PASSED", "{}: {report:?}", bond.number);
        }
    }
    assert_claims_match_their_guarantees(&app, &bonds, &claim_of).await;
    assert_audit_chain_intact(&app);

    // One more server, left alive, sends what is left of the mail.
    let server = ServeProcess::start(&app, &options).await;
    let outbox = app.every_mail_sent().await;

    // Every queued mail reached the SMTP server: the "issued" mail of each bond among
    // them.
    for bond in &bonds {
        assert!(
            outbox
                .iter()
                .any(|(_, to, subject)| to == &bond.enterprise_email
                    && subject.contains(&bond.number)),
            "{}: its issued mail is queued",
            bond.number
        );
    }
    let received = smtp.received_by_mail_id();
    let (mut twice, mut copies) = (0, 0);
    for (id, to, subject) in &outbox {
        match received.get(id.as_str()) {
            None | Some(0) => panic!("mail {id} to {to} ({subject}) never reached the SMTP server"),
            Some(1) => {}
            Some(n) => {
                twice += 1;
                copies += n - 1;
            }
        }
    }
    let unknown: Vec<_> = received
        .keys()
        .filter(|id| !outbox.iter().any(|(mail, _, _)| mail == *id))
        .collect();
    assert!(unknown.is_empty(), "mails not in the outbox: {unknown:?}");
    drop(server);
    eprintln!(
        "crash test (seed {seed}): {} kills, {} with requests in flight, {} requests cut \
         off; {} bonds issued in {issued_in:?}, {} claims decided; {} mails sent, {twice} \
         of them more than once (a kill between sending and marking); {:?} in all",
        kills.total,
        kills.with_requests_in_flight,
        client.cut_off.load(Ordering::SeqCst),
        bonds.len(),
        claim_of.len(),
        outbox.len(),
        began.elapsed()
    );
    assert!(
        kills.with_requests_in_flight >= MIN_KILLS,
        "at least {MIN_KILLS} kills with requests in flight: {kills:?}"
    );
    // A process sends one mail at a time: a kill can leave at most one sent and not
    // marked, so at most one extra copy per kill.
    assert!(
        copies <= kills.total,
        "{copies} extra copies of mails for {} kills",
        kills.total
    );
}

/// A guarantee's number, verification code hash and current version, as stored.
type StoredGuarantee = (String, String, i32);

/// One issued application per enterprise and section, one guarantee each with the
/// number and code its issue answered, numbers unique, and the current version signed.
async fn assert_bonds_whole(
    app: &TestApp,
    sections: &[crate::fixtures::Section],
    bonds: &[Issued],
) {
    let section_ids: Vec<String> = sections.iter().map(|s| s.id.clone()).collect();
    let rows: Vec<(String, String, Option<StoredGuarantee>)> = app
        .db(move |c| {
            applications::table
                .left_join(guarantees::table.on(guarantees::application_id.eq(applications::id)))
                .filter(applications::section_id.eq_any(section_ids))
                .select((
                    applications::id,
                    applications::status,
                    (
                        guarantees::number,
                        guarantees::verification_code_hash,
                        guarantees::current_version,
                    )
                        .nullable(),
                ))
                .load(c)
                .expect("applications")
        })
        .await;
    assert_eq!(
        rows.len(),
        bonds.len(),
        "one application per enterprise and section"
    );
    for bond in bonds {
        let (_, status, guarantee) = rows
            .iter()
            .find(|(id, _, _)| id == &bond.application_id)
            .unwrap_or_else(|| panic!("application {} stored", bond.application_id));
        assert_eq!(status, "issued", "{}", bond.application_id);
        let (number, code_hash, version) = guarantee.clone().expect("its guarantee");
        assert_eq!(number, bond.number);
        assert_eq!(code_hash, hex::encode(Sha256::digest(bond.code.as_bytes())));
        let number = bond.number.clone();
        let signed: Vec<(Vec<u8>, String, Option<Vec<u8>>)> = app
            .db(move |c| {
                guarantee_versions::table
                    .inner_join(guarantees::table)
                    .filter(guarantees::number.eq(number))
                    .filter(guarantee_versions::version.eq(version))
                    .select((
                        guarantee_versions::document,
                        guarantee_versions::document_sha256,
                        guarantee_versions::signature,
                    ))
                    .load(c)
                    .expect("versions")
            })
            .await;
        assert_eq!(signed.len(), 1, "{}: its current version", bond.number);
        let (document, sha256, signature) = &signed[0];
        assert_eq!(
            &hex::encode(Sha256::digest(document)),
            sha256,
            "{}",
            bond.number
        );
        assert!(
            signature.as_ref().is_some_and(|s| !s.is_empty()),
            "{}: signed",
            bond.number
        );
    }
    let mut numbers: Vec<&str> = rows
        .iter()
        .filter_map(|(_, _, g)| g.as_ref().map(|g| g.0.as_str()))
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), bonds.len(), "no number used twice");
}

/// Each decided claim left its guarantee where the decision puts it; no claim is left
/// filed, and no guarantee claimed.
async fn assert_claims_match_their_guarantees(
    app: &TestApp,
    bonds: &[Issued],
    claim_of: &HashMap<usize, String>,
) {
    let rows: Vec<(String, String, String, String)> = app
        .db(|c| {
            claims::table
                .inner_join(guarantees::table)
                .select((
                    claims::id,
                    claims::status,
                    guarantees::number,
                    guarantees::status,
                ))
                .load(c)
                .expect("claims")
        })
        .await;
    assert_eq!(
        rows.len(),
        claim_of.len(),
        "one claim per claimed bond: {rows:?}"
    );
    for (i, claim) in claim_of {
        let (_, status, number, guarantee_status) = rows
            .iter()
            .find(|(id, ..)| id == claim)
            .unwrap_or_else(|| panic!("claim {claim} stored"));
        assert_eq!(number, &bonds[*i].number);
        let expected = match Fate::of(*i) {
            Fate::ClaimPaid => ("paid", "paid"),
            Fate::ClaimPaidInPart => ("paid", "issued"),
            _ => ("rejected", "issued"),
        };
        assert_eq!(
            (status.as_str(), guarantee_status.as_str()),
            expected,
            "{number}"
        );
    }
}

/// `baohan audit verify`, as an operator runs it, finds the chain intact.
fn assert_audit_chain_intact(app: &TestApp) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_baohan"))
        .args(["audit", "verify"])
        .env(
            "BAOHAN_DATABASE_URL",
            app.settings.database_url.as_deref().expect("url"),
        )
        .env("BAOHAN_DATA_DIR", app.data_dir())
        .env("BAOHAN_LOG", "warn")
        .output()
        .expect("baohan audit verify runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("audit log intact"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

crate::on_both_backends!(
    killed_at_random_during_issuance_and_claims_nothing_is_lost_or_half_written,
);
