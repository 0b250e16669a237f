//! Who may do what: an authorization matrix over the endpoints, with strangers of the
//! same kind as every owner; confidentiality before bid opening; rate limits that
//! neither a disguised path nor a forwarded address gets around. (Idempotency keys have
//! a module of their own.)

use chrono::{Duration, Utc};
use reqwest::Method;
use serde_json::{json, Value};

use crate::fixtures::{
    pem, Answer, Anyone, DemoCa, KeyType, NewClaim, NewOrg, NewSection, NewTender, NewUser, Party,
    Session, TestPki,
};
use crate::helpers::{demo_uscc, uscc, TestApp};

/// Who calls, in the order of the matrix's columns.
const ACTORS: [&str; 9] = [
    "anonymous",
    "operator",
    "enterprise1",
    "enterprise2",
    "bank",
    "guarantor",
    "agency",
    STRANGER,
    "tenderee",
];

/// A second agency's user: a stranger to the demo agency's projects.
const STRANGER: &str = "stranger.agency";
const STRANGER_PASSWORD: &str = "a stranger's password";

async fn register_the_stranger(app: &TestApp) {
    let operator = app.as_operator().await;
    let agency = operator
        .register_org(&NewOrg::new(
            "agency",
            "另一家招标代理",
            &uscc("91371600AG0000777"),
        ))
        .await;
    let user = NewUser::new(&agency.id, STRANGER, "Stranger", "agency").password(STRANGER_PASSWORD);
    operator.add_user(&user).await;
}

/// Everyone in [`ACTORS`], in that order: signed in, or (anonymous) signed out.
async fn sign_in_everyone(app: &TestApp) -> Vec<Session<'_, Anyone>> {
    let mut callers = Vec::new();
    for actor in ACTORS {
        callers.push(match actor {
            "anonymous" => app.signed_out(),
            STRANGER => app.as_user(STRANGER, STRANGER_PASSWORD).await,
            demo => app.as_demo(demo).await,
        });
    }
    callers
}

/// A request and the status each of [`ACTORS`] gets, in that order.
struct Rule {
    expected: [u16; 9],
    method: Method,
    path: String,
    body: Option<Value>,
}

/// The rule for `request` ("METHOD /path") with `body`, where `@@` stands for a number
/// of the caller's, so that allowed calls that create things do not collide.
fn rule(expected: [u16; 9], request: &str, body: Option<&Value>) -> Rule {
    let (method, path) = request.split_once(' ').expect("METHOD /path");
    Rule {
        expected,
        method: method.parse().expect("method"),
        path: path.to_owned(),
        body: body.cloned(),
    }
}

impl Rule {
    fn body_for(&self, caller: usize) -> Option<Value> {
        self.body.as_ref().map(|template| {
            let text = template.to_string().replace("@@", &caller.to_string());
            serde_json::from_str(&text).expect("body")
        })
    }
}

/// Sends each rule's request as each caller: every status that is not the expected one.
async fn deviations(rules: &[Rule], callers: &[Session<'_, Anyone>]) -> Vec<String> {
    let mut failures = Vec::new();
    for rule in rules {
        for (i, (actor, caller)) in ACTORS.iter().zip(callers).enumerate() {
            let body = rule.body_for(i);
            let got = caller
                .send(rule.method.clone(), &rule.path, body.as_ref())
                .status()
                .await;
            if got != rule.expected[i] {
                failures.push(format!(
                    "{} {} as {actor}: expected {}, got {got}",
                    rule.method, rule.path, rule.expected[i]
                ));
            }
        }
    }
    failures
}

async fn the_authorization_matrix_holds(app: TestApp) {
    TestPki::set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-AUTHZ", 2))
        .await;
    let section = &tender.sections[0];
    let application = app.paid_application("enterprise1", "bank", section).await;
    let bank = app.as_issuer("bank").await;
    let bond = bank.issue(&application).await;
    let enterprise1 = app.as_enterprise("enterprise1").await;
    register_the_stranger(&app).await;
    let callers = sign_in_everyone(&app).await;

    // Bodies are valid, so what decides is who calls: 201/200 (or a 409/422 from the
    // lifecycle or the input) means the caller got past authorization; 401, 403 and 404
    // mean it did not.
    let (p, s, a, g) = (&tender.id, &section.id, &application.id, &bond.number);
    let enterprise = enterprise1.org_id();
    let in_days = |days| (Utc::now() + Duration::days(days)).to_rfc3339();
    let deadline = in_days(5);
    let earlier = in_days(1);
    let matrix_ca = DemoCa::new("Matrix CA", KeyType::EcP256).expect("CA");

    let new_org = json!(NewOrg::new(
        "tenderee",
        "Matrix",
        &uscc("91371600TE0000888")
    ));
    let new_user = json!(NewUser::new(enterprise, "matrix.user@@", "M", "enterprise"));
    let new_anchor = json!({ "name": "matrix @@", "certificate_pem": pem(&matrix_ca.cert) });
    let not_a_certificate =
        json!({ "organization_id": enterprise, "certificate_pem": "not a certificate" });
    let not_a_crl = json!({ "crl_pem": "not a CRL" });
    let new_tender = json!(NewTender {
        code: "MX-@@".into(),
        name: "Matrix".into(),
        tenderee_uscc: demo_uscc("tenderee"),
        bid_deadline: deadline.clone(),
        bid_opening_at: deadline,
        bid_validity_days: 30,
        sections: vec![NewSection::new("1", "S", "1000.00", None)],
    });
    let rename = json!({ "name": "滨州港疏港路改建工程" });
    // Earlier than the current deadline: the agency is refused for the input.
    let postpone_earlier = json!({ "bid_deadline": earlier, "bid_opening_at": earlier });
    let apply = json!({ "section_id": s, "issuer_id": bank.org_id() });
    let premium = json!({ "premium": "100.00" });
    let decline = json!({ "reason": "no" });
    let signature = json!({ "signature_base64": "MAA=" });
    let claim = json!(NewClaim::new("other", "x", "1.00"));
    let pay = json!({ "decision": "pay" });
    let winner = json!({ "winner_enterprise_id": enterprise });
    let bulk = json!({ "project_id": p });
    let revoke = json!({ "reason": "error" });
    let new_token = json!({ "name": "robot @@" });
    let nothing = json!({});

    #[rustfmt::skip]
    let matrix = [
        //    anon oper ent1 ent2 bank guar agcy strg tend
        rule([401, 200, 403, 403, 403, 403, 403, 403, 403], "GET /api/v1/organizations", None),
        rule([401, 201, 403, 403, 403, 403, 403, 403, 403], "POST /api/v1/organizations", Some(&new_org)),
        rule([401, 201, 403, 403, 403, 403, 403, 403, 403], "POST /api/v1/users", Some(&new_user)),
        rule([401, 201, 403, 403, 403, 403, 403, 403, 403], "POST /api/v1/admin/trust-anchors", Some(&new_anchor)),
        rule([401, 422, 403, 403, 403, 403, 403, 403, 403], "POST /api/v1/admin/issuer-certificates", Some(&not_a_certificate)),
        rule([401, 200, 403, 403, 403, 403, 403, 403, 403], "GET /api/v1/admin/mail", None),
        rule([401, 200, 200, 200, 403, 403, 200, 200, 403], "GET /api/v1/projects", None),
        rule([401, 200, 200, 200, 403, 403, 403, 403, 403], "GET /api/v1/issuers", None),
        rule([401, 403, 403, 403, 403, 403, 201, 201, 403], "POST /api/v1/projects", Some(&new_tender)),
        rule([401, 200, 200, 200, 200, 200, 200, 404, 200], &format!("GET /api/v1/projects/{p}"), None),
        rule([401, 200, 200, 200, 200, 200, 403, 403, 403], "GET /api/v1/applications", None),
        rule([401, 200, 200, 404, 200, 404, 404, 404, 404], &format!("GET /api/v1/applications/{a}"), None),
        rule([401, 403, 403, 403, 409, 404, 403, 403, 403], &format!("POST /api/v1/applications/{a}/approve"), Some(&premium)),
        rule([401, 403, 409, 404, 403, 403, 403, 403, 403], &format!("POST /api/v1/applications/{a}/withdraw"), Some(&nothing)),
        rule([401, 403, 403, 403, 409, 404, 403, 403, 403], &format!("POST /api/v1/applications/{a}/confirm-payment"), Some(&nothing)),
        rule([401, 200, 200, 200, 200, 200, 403, 403, 403], "GET /api/v1/guarantees", None),
        rule([401, 200, 200, 404, 200, 404, 404, 404, 404], &format!("GET /api/v1/guarantees/{g}"), None),
        rule([401, 200, 200, 404, 200, 404, 404, 404, 404], &format!("GET /api/v1/guarantees/{g}/document"), None),
        rule([401, 200, 200, 404, 200, 404, 404, 404, 404], &format!("GET /api/v1/guarantees/{g}/letter"), None),
        rule([401, 403, 403, 404, 403, 404, 404, 404, 404], &format!("POST /api/v1/guarantees/{g}/accept"), Some(&nothing)),
        rule([401, 403, 403, 404, 403, 404, 404, 404, 404], &format!("POST /api/v1/guarantees/{g}/release"), Some(&nothing)),
        rule([401, 403, 403, 404, 403, 404, 404, 404, 404], &format!("POST /api/v1/guarantees/{g}/claims"), Some(&claim)),
        rule([401, 403, 403, 403, 403, 403, 403, 404, 403], &format!("GET /api/v1/projects/{p}/bonds"), None),
        rule([401, 200, 200, 200, 200, 200, 200, 200, 403], "GET /api/v1/claims", None),
        rule([401, 200, 200, 200, 200, 200, 200, 200, 200], "GET /api/v1/auth/me", None),
        rule([401, 200, 200, 404, 404, 404, 404, 404, 404], &format!("GET /api/v1/organizations/{enterprise}"), None),
        rule([401, 422, 403, 403, 403, 403, 403, 403, 403], "POST /api/v1/admin/crls", Some(&not_a_crl)),
        rule([401, 404, 403, 403, 403, 403, 403, 403, 403], "POST /api/v1/admin/mail/no-such-mail/retry", Some(&nothing)),
        rule([401, 404, 404, 404, 404, 404, 404, 404, 404], "DELETE /api/v1/auth/tokens/no-such-token", None),
        rule([401, 403, 403, 403, 403, 403, 200, 404, 403], &format!("PATCH /api/v1/projects/{p}"), Some(&rename)),
        rule([401, 403, 403, 403, 403, 403, 422, 404, 403], &format!("POST /api/v1/projects/{p}/postpone"), Some(&postpone_earlier)),
        rule([401, 403, 403, 403, 409, 404, 403, 403, 403], &format!("POST /api/v1/applications/{a}/decline"), Some(&decline)),
        rule([401, 403, 403, 403, 409, 404, 403, 403, 403], &format!("GET /api/v1/applications/{a}/draft"), None),
        rule([401, 403, 403, 403, 409, 404, 403, 403, 403], &format!("POST /api/v1/applications/{a}/issue"), Some(&nothing)),
        rule([401, 403, 403, 403, 409, 404, 403, 403, 403], &format!("POST /api/v1/applications/{a}/signature"), Some(&signature)),
        rule([401, 200, 200, 404, 200, 404, 404, 404, 404], &format!("GET /api/v1/guarantees/{g}/signature"), None),
        rule([401, 200, 200, 404, 200, 404, 404, 404, 404], &format!("GET /api/v1/guarantees/{g}/chain"), None),
        rule([401, 403, 403, 403, 404, 404, 403, 403, 403], "POST /api/v1/claims/no-such-claim/decision", Some(&pay)),
        rule([401, 403, 403, 403, 403, 403, 403, 404, 403], &format!("POST /api/v1/projects/{p}/sections/{s}/award"), Some(&winner)),
        rule([401, 403, 403, 403, 403, 403, 409, 404, 403], &format!("POST /api/v1/projects/{p}/sections/{s}/contract"), Some(&nothing)),
        rule([401, 403, 403, 403, 403, 403, 403, 404, 403], "POST /api/v1/verify/bulk", Some(&bulk)),
        // Last, as they change the guarantee: only its issuer revokes; then nobody can
        // cancel it any more (its bidder could have, before the deadline).
        rule([401, 403, 403, 404, 200, 404, 404, 404, 404], &format!("POST /api/v1/guarantees/{g}/revoke"), Some(&revoke)),
        rule([401, 403, 409, 404, 403, 404, 404, 404, 404], &format!("POST /api/v1/guarantees/{g}/cancel"), Some(&nothing)),
        // enterprise1's bond for this section was revoked above: it may apply again.
        rule([401, 403, 201, 201, 403, 403, 403, 403, 403], "POST /api/v1/applications", Some(&apply)),
        rule([401, 201, 201, 201, 201, 201, 201, 201, 201], "POST /api/v1/auth/tokens", Some(&new_token)),
        // Very last: it ends every session used above.
        rule([401, 204, 204, 204, 204, 204, 204, 204, 204], "POST /api/v1/auth/logout", Some(&nothing)),
    ];
    let failures = deviations(&matrix, &callers).await;
    assert!(
        failures.is_empty(),
        "authorization matrix:\n{}",
        failures.join("\n")
    );

    // Nobody sees a project's bonds before opening; after it the agency and the
    // tenderee do, strangers still do not.
    app.advance_clock(Duration::days(2) + Duration::hours(1));
    // Sessions expired with the days that passed: sign in again.
    let callers = sign_in_everyone(&app).await;
    #[rustfmt::skip]
    let after_opening = [
        //    anon oper ent1 ent2 bank guar agcy strg tend
        rule([401, 200, 200, 404, 200, 404, 200, 404, 200], &format!("GET /api/v1/guarantees/{g}"), None),
        rule([401, 403, 403, 403, 403, 403, 200, 404, 200], &format!("GET /api/v1/projects/{p}/bonds"), None),
    ];
    let failures = deviations(&after_opening, &callers).await;
    assert!(
        failures.is_empty(),
        "authorization after opening:\n{}",
        failures.join("\n")
    );
}

crate::on_both_backends!(the_authorization_matrix_holds);

/// A password guess.
fn sign_in_guess() -> Value {
    json!({ "username": "agency", "password": "a wrong guess" })
}

/// A verification code guess.
fn verification_guess() -> Value {
    json!({ "number": "BH20260101ZZZZ000001A0B1C2R", "code": "ABCDEFGH" })
}

/// One guess, signed out, with extra headers; a 429 says when to retry.
async fn attempt(app: &TestApp, path: &str, guess: &Value, headers: &[(&str, &str)]) -> Answer {
    let mut call = app.signed_out().send(Method::POST, path, Some(guess));
    for (name, value) in headers {
        call = call.header(name, value);
    }
    let answer = call.answer().await;
    if answer.status == 429 {
        assert!(answer.has_header("retry-after"), "429 says when to retry");
        assert_eq!(answer.code(), Some("rate_limited"), "{answer:?}");
    }
    answer
}

/// Every way of spelling `path` that a client might hope reaches the same endpoint
/// uncounted: each character percent-encoded (upper- and lowercase hex), the whole
/// path encoded, each letter's case changed, doubled and trailing slashes, dot segments.
fn spellings(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = path.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        let (before, after): (String, String) =
            (chars[..i].iter().collect(), chars[i + 1..].iter().collect());
        let byte = u32::from(*c);
        // A request target starts with "/": the first one is not a character to spell.
        if i > 0 {
            out.push(format!("{before}%{byte:02X}{after}"));
            out.push(format!("{before}%{byte:02x}{after}"));
        }
        if c.is_ascii_alphabetic() {
            let flipped = if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            out.push(format!("{before}{flipped}{after}"));
        }
        if *c == '/' {
            out.push(format!("{before}//{after}"));
            out.push(format!("{before}/./{after}"));
        }
    }
    let encoded: String = path[1..].bytes().map(|b| format!("%{b:02X}")).collect();
    out.push(format!("/{encoded}"));
    out.push(format!("{path}/"));
    out.push(format!("{path}?"));
    out.push(format!("{path}#x"));
    let segments: Vec<&str> = path.split('/').collect();
    if let Some(last) = segments.last() {
        out.push(format!("{path}/../{last}"));
    }
    out
}

/// The limits count the request the router matched: no spelling of a limited path
/// reaches its endpoint once the client's allowance is used up. Each spelling either
/// meets the same limit (429) or reaches no endpoint at all (404 or 405).
#[tokio::test]
async fn no_spelling_of_a_limited_path_escapes_its_limit() {
    let app = crate::helpers::spawn_sqlite_with(|s| {
        s.rate_limit_login_per_minute = 1;
        s.rate_limit_verify_per_minute = 1;
    })
    .await;
    for (plain, guess) in [
        ("/api/v1/auth/login", sign_in_guess()),
        ("/api/v1/verify", verification_guess()),
    ] {
        let first = attempt(&app, plain, &guess, &[]).await;
        assert_ne!(first.status, 429, "{plain}: the first attempt is allowed");
        assert_eq!(attempt(&app, plain, &guess, &[]).await.status, 429);
        let spellings = spellings(plain);
        assert!(spellings.len() > 40, "{}", spellings.len());
        for path in spellings {
            let answer = attempt(&app, &path, &guess, &[]).await;
            assert!(
                answer.status == 429 || answer.no_such_endpoint() || answer.status == 405,
                "{path} escaped the limit of {plain}: {answer:?}"
            );
        }
    }
}

/// Guesses at one account or one guarantee number spread over many client addresses
/// (behind a trusted proxy, each its own client) still meet a limit per account and
/// per number; other accounts and numbers are not held up.
#[tokio::test]
async fn guesses_from_many_addresses_meet_a_limit_per_account_and_per_number() {
    let app = crate::helpers::spawn_sqlite_with(|s| {
        s.trusted_proxies = "127.0.0.1".parse().expect("proxies");
        s.rate_limit_login_per_account_per_minute = 2;
        s.rate_limit_verify_per_number_per_minute = 2;
    })
    .await;
    let from = |n: usize| format!("198.51.100.{n}");
    for (path, guess, other) in [
        (
            "/api/v1/auth/login",
            sign_in_guess(),
            json!({ "username": "bank", "password": "a wrong guess" }),
        ),
        (
            "/api/v1/verify",
            verification_guess(),
            json!({ "number": crate::fixtures::library::unissued_number(), "code": "ABCDEFGH" }),
        ),
    ] {
        let mut statuses = Vec::new();
        for n in 1..=4 {
            let client = from(n);
            let answer = attempt(&app, path, &guess, &[("X-Forwarded-For", &client)]).await;
            statuses.push(answer.status);
        }
        assert_ne!(statuses[0], 429, "{path}: {statuses:?}");
        assert_eq!(&statuses[2..], [429, 429], "{path}: {statuses:?}");
        let answer = attempt(&app, path, &other, &[("X-Forwarded-For", &from(9))]).await;
        assert_ne!(answer.status, 429, "{path}: another target is not held up");
    }
    // The right password is held up too while the account's allowance is used up: the
    // limit must not become an oracle for the right guess.
    let right =
        json!({ "username": "agency", "password": crate::fixtures::library::DEMO_PASSWORD });
    let answer = attempt(
        &app,
        "/api/v1/auth/login",
        &right,
        &[("X-Forwarded-For", &from(7))],
    )
    .await;
    assert_eq!(answer.status, 429, "{answer:?}");
}

/// Without configured proxies, forwarding headers are the client's own words: rotating
/// them does not make a new client.
#[tokio::test]
async fn forwarded_addresses_from_an_untrusted_peer_are_ignored() {
    let app = crate::helpers::spawn_sqlite_with(|s| s.rate_limit_login_per_minute = 2).await;
    let mut statuses = Vec::new();
    for n in 1..=4 {
        let xff = format!("198.51.100.{n}");
        let forwarded = format!("for=203.0.113.{n}");
        let headers = [("X-Forwarded-For", xff.as_str()), ("Forwarded", &forwarded)];
        let answer = attempt(&app, "/api/v1/auth/login", &sign_in_guess(), &headers).await;
        statuses.push(answer.status);
    }
    assert_ne!(statuses[0], 429);
    assert_eq!(&statuses[2..], [429, 429], "{statuses:?}");
}

/// Behind a trusted proxy, each forwarded client has its own allowance, and what a
/// client writes into the header itself (to the left of what the proxy appended) does
/// not change who it is.
#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_allowance() {
    let app = crate::helpers::spawn_sqlite_with(|s| {
        s.rate_limit_login_per_minute = 2;
        s.trusted_proxies = "127.0.0.1".parse().expect("proxies");
    })
    .await;
    let from = |headers: &'static [(&'static str, &'static str)]| {
        let app = &app;
        async move {
            attempt(app, "/api/v1/auth/login", &sign_in_guess(), headers)
                .await
                .status
        }
    };
    let client = &[("X-Forwarded-For", "198.51.100.1")];
    let allowed = from(client).await;
    assert_ne!(allowed, 429);
    assert_eq!(from(client).await, allowed);
    assert_eq!(from(client).await, 429);
    // The same client claiming to be someone else before it reached the proxy.
    assert_eq!(
        from(&[("X-Forwarded-For", "203.0.113.9, 198.51.100.1")]).await,
        429
    );
    // Another client behind the same proxy, and the proxy itself, are not held up.
    assert_eq!(from(&[("X-Forwarded-For", "198.51.100.2")]).await, allowed);
    assert_eq!(
        from(&[("Forwarded", "for=\"[2001:db8::2]:4711\"")]).await,
        allowed
    );
    assert_eq!(from(&[]).await, allowed);
}
