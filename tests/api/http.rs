//! The edges of HTTP, from outside: every kind of answer carries the security headers,
//! `Cache-Control: no-store` and (errors) the JSON error shape; HSTS when reached over
//! TLS; 405 with `Allow`; `HEAD` as `GET` without the body; bodies over the limit and
//! bodies that trickle in are cut off; `Expect: 100-continue` is answered only after
//! the checks that need no body. Raw sockets where a client library would hide what
//! the server sends.

use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fixtures::library::{unissued_number, DEMO_PASSWORD};
use crate::fixtures::{expect_error, ApiToken, NewTender, TestPki};
use crate::helpers::{TestApp, TestBackend};

/// The headers every answer carries, with the `Cache-Control` this one must have.
fn assert_hardened(headers: &HeaderMap, cache_control: &str, what: &str) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{what}: no {name} in {headers:?}"))
            .to_owned()
    };
    assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header("x-frame-options"), "DENY", "{what}");
    assert_eq!(header("referrer-policy"), "same-origin", "{what}");
    assert!(
        header("content-security-policy").contains("frame-ancestors 'none'"),
        "{what}"
    );
    assert_eq!(header("cache-control"), cache_control, "{what}");
    assert!(
        !headers.contains_key("strict-transport-security"),
        "{what}: HSTS over plain HTTP from a client that is not a trusted proxy"
    );
}

/// An error answer: hardened, with no-store, in the JSON error shape with this status
/// and code.
async fn assert_hardened_error(res: reqwest::Response, status: u16, code: &str, what: &str) {
    assert_hardened(res.headers(), "no-store", what);
    expect_error(res, status, code).await;
}

async fn every_kind_of_answer_is_hardened(backend: TestBackend) {
    let app = backend.spawn_with(|_| {}).await;
    TestPki::set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-EDGES", 3))
        .await;
    let bond = app.issued_bond("enterprise1", &tender.sections[0]).await;
    let enterprise = app.as_enterprise("enterprise1").await;

    // Answers of handlers: a plain one, probes, a secret-bearing one, a letter.
    let res = enterprise
        .request(Method::GET, "/api/v1/auth/me")
        .send()
        .await
        .expect("me");
    assert_eq!(res.status(), 200);
    assert_hardened(res.headers(), "no-store", "GET /auth/me");
    for probe in ["/healthz", "/readyz"] {
        let res = app.api.get(app.url(probe)).send().await.expect("probe");
        assert_eq!(res.status(), 200);
        assert_hardened(res.headers(), "no-store", probe);
    }
    let res = app
        .api
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "username": "agency", "password": DEMO_PASSWORD }))
        .send()
        .await
        .expect("login");
    assert_eq!(res.status(), 200);
    assert_hardened(res.headers(), "no-store", "sign-in (a new session token)");
    let path = format!("/api/v1/guarantees/{}/letter", bond.number);
    let res = enterprise
        .request(Method::GET, &path)
        .send()
        .await
        .expect("letter");
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .expect("type")
        .starts_with("text/html"));
    assert_hardened(
        res.headers(),
        "no-store",
        "the letter (carries the verification code)",
    );

    // A new token, then the same request replayed by the idempotency layer.
    let create = || {
        enterprise
            .request(Method::POST, "/api/v1/auth/tokens")
            .header("Idempotency-Key", "token-edges-1")
            .json(&json!({ "name": "edges" }))
    };
    let first = create().send().await.expect("token");
    assert_eq!(first.status(), 201);
    assert_hardened(first.headers(), "no-store", "a new API token");
    let first: ApiToken = first.json().await.expect("token");
    let replay = create().send().await.expect("replay");
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_hardened(replay.headers(), "no-store", "an idempotent replay");
    let replayed: ApiToken = replay.json().await.expect("token");
    assert_eq!(replayed.id, first.id, "the first answer, replayed");

    // Errors from the router, the extractors, the credentials check.
    let res = app
        .api
        .get(app.url("/api/v1/no-such-thing"))
        .send()
        .await
        .expect("404");
    assert_hardened_error(res, 404, "not_found", "an unknown route").await;
    let res = app
        .api
        .delete(app.url("/healthz"))
        .send()
        .await
        .expect("405");
    assert_hardened_error(res, 405, "method_not_allowed", "a wrong method").await;
    let res = enterprise
        .request(Method::POST, "/api/v1/applications")
        .header("content-type", "application/json")
        .body("{\"section_id\": ")
        .send()
        .await
        .expect("400");
    assert_hardened_error(res, 400, "invalid_json", "a JSON parse error").await;
    let res = app
        .api
        .get(app.url("/api/v1/auth/me"))
        .send()
        .await
        .expect("401");
    assert_hardened_error(res, 401, "unauthenticated", "no credentials").await;
    let res = app
        .with_token("not-a-token")
        .request(Method::GET, "/api/v1/guarantees")
        .send()
        .await
        .expect("401");
    assert_hardened_error(res, 401, "unauthenticated", "a forged token").await;

    // Bodies over the limit, however they come: declared, chunked into the JSON
    // extractor, chunked into the idempotency layer, chunked into a raw upload.
    let limit = app.settings.max_body_bytes;
    let big = "x".repeat(limit + 1);
    let res = enterprise
        .request(Method::POST, "/api/v1/applications")
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .expect("413");
    assert_hardened_error(
        res,
        413,
        "payload_too_large",
        "a declared body over the limit",
    )
    .await;
    let chunked = |path: &str, token: &str, extra: &str, content_type: &str| {
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: {content_type}\r\n{extra}Transfer-Encoding: chunked\r\n\
             Connection: close\r\n\r\n"
        );
        for piece in big.as_bytes().chunks(1024) {
            request.push_str(&format!("{:x}\r\n", piece.len()));
            request.push_str(std::str::from_utf8(piece).expect("ascii"));
            request.push_str("\r\n");
        }
        request.push_str("0\r\n\r\n");
        request
    };
    let insurer = app.as_issuer("insurer").await;
    for (what, request) in [
        (
            "a chunked JSON body",
            chunked(
                "/api/v1/applications",
                &enterprise.token,
                "",
                "application/json",
            ),
        ),
        (
            "a chunked body with an Idempotency-Key",
            chunked(
                "/api/v1/applications",
                &enterprise.token,
                "Idempotency-Key: too-big-1\r\n",
                "application/json",
            ),
        ),
        (
            "a chunked raw upload",
            chunked(
                "/api/v1/applications/x/signature",
                &insurer.token,
                "",
                "application/pkcs7-signature",
            ),
        ),
    ] {
        let answer = RawConnection::open(&app).await.exchange(&request).await;
        assert_eq!(answer.status(), 413, "{what}: {}", answer.text);
        assert_eq!(
            answer.json()["error"]["code"],
            "payload_too_large",
            "{what}"
        );
        assert_eq!(
            answer.header("content-type"),
            Some("application/json"),
            "{what}"
        );
        assert_eq!(answer.header("cache-control"), Some("no-store"), "{what}");
        assert_eq!(answer.header("x-frame-options"), Some("DENY"), "{what}");
    }
}

/// Rate-limited answers carry the headers too (a limit of one sign-in a minute).
async fn a_rate_limited_answer_is_hardened(backend: TestBackend) {
    let app = backend
        .spawn_with(|s| s.rate_limit_login_per_minute = 1)
        .await;
    let login = || {
        app.api
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({ "username": "agency", "password": "a wrong guess" }))
            .send()
    };
    assert_eq!(login().await.expect("first").status(), 422);
    let res = login().await.expect("second");
    assert!(res.headers().contains_key("retry-after"));
    assert_hardened_error(res, 429, "rate_limited", "a 429").await;
}

/// The API description may be cached if revalidated, unlike everything else.
async fn the_description_may_be_cached_if_revalidated(backend: TestBackend) {
    let app = backend.spawn_with(|_| {}).await;
    let res = app
        .api
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .expect("spec");
    assert_eq!(res.status(), 200);
    assert_hardened(res.headers(), "no-cache", "the API description");
    let etag = res.headers()["etag"].to_str().expect("etag").to_owned();
    let res = app
        .api
        .get(app.url("/api/openapi.json"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("spec");
    assert_eq!(res.status(), 304);
    assert_eq!(res.headers()["etag"], etag.as_str());
    assert_hardened(res.headers(), "no-cache", "304");
    assert!(res.bytes().await.expect("body").is_empty());
    let res = app
        .api
        .get(app.url("/api/openapi.json"))
        .header("If-None-Match", "\"an-older-one\"")
        .send()
        .await
        .expect("spec");
    assert_eq!(res.status(), 200);
}

/// `Allow` as a sorted list.
fn allow(res: &reqwest::Response) -> String {
    res.headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn a_known_path_with_a_wrong_method_is_refused_with_allow(backend: TestBackend) {
    let app = backend.spawn_with(|_| {}).await;
    let operator = app.as_operator().await;
    for (method, path, allowed) in [
        (Method::DELETE, "/healthz", "GET, HEAD"),
        (Method::POST, "/api/openapi.json", "GET, HEAD"),
        (Method::GET, "/api/v1/auth/login", "POST"),
        (Method::HEAD, "/api/v1/auth/login", "POST"),
        (Method::PUT, "/api/v1/projects/p-404", "GET, HEAD, PATCH"),
        (Method::DELETE, "/api/v1/guarantees", "GET, HEAD"),
        (Method::OPTIONS, "/api/v1/verify", "POST"),
        (Method::GET, "/api/v1/auth/tokens/t-1", "DELETE"),
        // The router decodes unreserved characters: this is the login path.
        (Method::GET, "/api/v1/auth/logi%6E", "POST"),
    ] {
        for caller in [&app.signed_out(), &operator.acting_as()] {
            let res = caller
                .request(method.clone(), path)
                .send()
                .await
                .expect("request");
            assert_eq!(res.status(), 405, "{method} {path}");
            assert_eq!(allow(&res), allowed, "{method} {path}");
            if method != Method::HEAD {
                assert_hardened_error(res, 405, "method_not_allowed", path).await;
            }
        }
    }
    // Beside the known paths: 404, whatever the method.
    for (method, path) in [
        (Method::GET, "/api/v1/auth/login/"),
        (Method::DELETE, "/api/v1/projects"),
        (Method::GET, "/api/v1/projects/p-1/sections"),
        (Method::PATCH, "/nothing"),
    ] {
        let res = app
            .api
            .request(method.clone(), app.url(path))
            .send()
            .await
            .expect("req");
        if path == "/api/v1/projects" {
            // A known path after all: GET and POST.
            assert_eq!(res.status(), 405, "{method} {path}");
            assert_eq!(allow(&res), "GET, HEAD, POST");
            continue;
        }
        assert!(!res.headers().contains_key("allow"), "{method} {path}");
        assert_hardened_error(res, 404, "not_found", path).await;
    }
}

/// What a GET answers, and what the matching HEAD answers.
async fn get_and_head(app: &TestApp, token: Option<&str>, path: &str) -> (Raw, Raw) {
    let request = |method: &str| {
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n")
    };
    let get = RawConnection::open(app)
        .await
        .exchange(&request("GET"))
        .await;
    let head = RawConnection::open(app)
        .await
        .exchange(&request("HEAD"))
        .await;
    (get, head)
}

async fn head_answers_as_get_without_the_body(backend: TestBackend) {
    let app = backend.spawn_with(|_| {}).await;
    TestPki::set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-HEAD", 3))
        .await;
    let bond = app.issued_bond("enterprise1", &tender.sections[0]).await;
    let enterprise = app.as_enterprise("enterprise1").await;
    let stranger = app.as_enterprise("enterprise2").await;
    let letter = format!("/api/v1/guarantees/{}/letter", bond.number);
    let document = format!("/api/v1/guarantees/{}/document", bond.number);
    for (token, path, status) in [
        (None, "/healthz", 200),
        (None, "/readyz", 200),
        (None, "/api/openapi.json", 200),
        (None, "/api/v1/signature-policy", 200),
        (None, "/api/v1/guarantees", 401),
        (None, letter.as_str(), 401),
        (Some(enterprise.token.as_str()), "/api/v1/auth/me", 200),
        (Some(enterprise.token.as_str()), "/api/v1/guarantees", 200),
        (Some(enterprise.token.as_str()), letter.as_str(), 200),
        (Some(enterprise.token.as_str()), document.as_str(), 200),
        (Some(stranger.token.as_str()), letter.as_str(), 404),
        (
            Some(enterprise.token.as_str()),
            "/api/v1/projects/x/nothing",
            404,
        ),
    ] {
        let (get, head) = get_and_head(&app, token, path).await;
        assert_eq!(get.status(), status, "GET {path}: {}", get.text);
        assert_eq!(head.status(), status, "HEAD {path}: {}", head.text);
        let length = get.header("content-length").expect("GET has a length");
        assert_eq!(
            get.body().len(),
            length.parse::<usize>().expect("length"),
            "GET {path}"
        );
        assert!(!get.body().is_empty(), "GET {path} has a body");
        assert_eq!(head.header("content-length"), Some(length), "HEAD {path}");
        assert_eq!(
            head.header("content-type"),
            get.header("content-type"),
            "HEAD {path}"
        );
        assert_eq!(head.header("cache-control"), get.header("cache-control"));
        assert_eq!(head.header("x-frame-options"), Some("DENY"), "HEAD {path}");
        assert!(
            head.body().is_empty(),
            "HEAD {path} sent a body: {}",
            head.text
        );
    }
}

/// One raw connection to the app, for what a client library would hide: interim
/// answers, the timing of a body, whether the server closed the connection.
struct RawConnection {
    stream: TcpStream,
}

/// What came back on a raw connection.
struct Raw {
    text: String,
    /// The server closed the connection (read returned end of file).
    closed: bool,
}

impl Raw {
    fn status(&self) -> u16 {
        self.final_answer()
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// The text after any `100 Continue`.
    fn final_answer(&self) -> &str {
        self.text
            .strip_prefix("HTTP/1.1 100 Continue\r\n\r\n")
            .unwrap_or(&self.text)
    }

    fn header(&self, name: &str) -> Option<&str> {
        let head = self.final_answer().split("\r\n\r\n").next()?;
        head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn body(&self) -> &str {
        self.final_answer()
            .split_once("\r\n\r\n")
            .map(|(_, body)| body)
            .unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_str(self.body()).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
}

impl RawConnection {
    async fn open(app: &TestApp) -> RawConnection {
        let address = app.address.trim_start_matches("http://");
        RawConnection {
            stream: TcpStream::connect(address).await.expect("connect"),
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// Whatever arrives within `wait` (stopping early at end of file).
    async fn read_for(&mut self, wait: Duration) -> Raw {
        let deadline = Instant::now() + wait;
        let mut bytes = Vec::new();
        let mut closed = false;
        let mut buf = [0u8; 16 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match tokio::time::timeout(left, self.stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    closed = true;
                    break;
                }
                Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
                Err(_) => break,
            }
        }
        Raw {
            text: String::from_utf8_lossy(&bytes).into_owned(),
            closed,
        }
    }

    /// What arrives once something does (waiting up to `wait`), and a moment after.
    async fn read_answer(&mut self, wait: Duration) -> Raw {
        let mut first = [0u8; 16 * 1024];
        let n = match tokio::time::timeout(wait, self.stream.read(&mut first)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return Raw {
                    text: String::new(),
                    closed: true,
                }
            }
            Ok(Ok(n)) => n,
            Err(_) => {
                return Raw {
                    text: String::new(),
                    closed: false,
                }
            }
        };
        let mut rest = self.read_for(Duration::from_millis(200)).await;
        rest.text = format!("{}{}", String::from_utf8_lossy(&first[..n]), rest.text);
        rest
    }

    /// Sends a whole request and reads until the server closes (10 s at most).
    async fn exchange(mut self, request: &str) -> Raw {
        self.send(request.as_bytes()).await.expect("send");
        self.read_for(Duration::from_secs(10)).await
    }
}

/// A client that trickles its body is cut off at the deadline: 408 in the JSON shape,
/// the connection closed; the same body sent at once is read.
async fn a_trickled_body_is_cut_off_at_the_deadline(backend: TestBackend) {
    let app = backend
        .spawn_with(|s| s.body_read_timeout_seconds = 1)
        .await;
    let body = json!({ "number": unissued_number(), "code": "ABCDEFGH" }).to_string();
    let head = |extra: &str| {
        format!(
            "POST /api/v1/verify HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             {extra}Content-Length: {}\r\n\r\n",
            body.len()
        )
    };

    let mut conn = RawConnection::open(&app).await;
    conn.send(head("").as_bytes()).await.expect("head");
    let started = Instant::now();
    let mut sent = 0;
    let mut answer = None;
    for byte in body.bytes() {
        if conn.send(&[byte]).await.is_err() {
            break;
        }
        sent += 1;
        let got = conn.read_for(Duration::from_millis(200)).await;
        if !got.text.is_empty() || got.closed {
            answer = Some(got);
            break;
        }
    }
    let elapsed = started.elapsed();
    let mut answer = answer.expect("the server answered before the body was complete");
    if !answer.closed {
        let rest = conn.read_for(Duration::from_secs(8)).await;
        answer.text.push_str(&rest.text);
        answer.closed = rest.closed;
    }
    assert!(
        sent < body.len(),
        "cut off before the end ({sent} bytes sent)"
    );
    assert_eq!(answer.status(), 408, "{}", answer.text);
    assert_eq!(answer.json()["error"]["code"], "request_timeout");
    assert_eq!(answer.header("connection"), Some("close"));
    assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
    assert!(answer.closed, "the connection is closed");
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(6),
        "cut off after about a second (all of it would take 12 s): {elapsed:?}"
    );

    // The same through the idempotency layer, which reads the body first.
    let operator = app.as_operator().await;
    let mut conn = RawConnection::open(&app).await;
    let create = "{\"name\": \"slow\"}";
    conn.send(
        format!(
            "POST /api/v1/auth/tokens HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Authorization: Bearer {}\r\nIdempotency-Key: slow-1\r\nContent-Length: {}\r\n\r\n{}",
            operator.token,
            create.len(),
            &create[..3]
        )
        .as_bytes(),
    )
    .await
    .expect("send");
    let answer = conn.read_for(Duration::from_secs(8)).await;
    assert_eq!(answer.status(), 408, "{}", answer.text);
    assert!(answer.closed);

    // In time, the same request is read and answered (nobody issued that number).
    let answer = RawConnection::open(&app)
        .await
        .exchange(&format!("{}{body}", head("Connection: close\r\n")))
        .await;
    assert_eq!(answer.status(), 404, "{}", answer.text);
    assert_eq!(answer.json()["error"]["code"], "not_found");
}

/// A client that trickles its headers is cut off too (by the HTTP layer itself, which
/// answers a bare 408 and closes).
async fn trickled_headers_are_cut_off(backend: TestBackend) {
    let app = backend
        .spawn_with(|s| s.header_read_timeout_seconds = 1)
        .await;
    let mut conn = RawConnection::open(&app).await;
    let started = Instant::now();
    let head =
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut answer = None;
    for byte in head.bytes() {
        if conn.send(&[byte]).await.is_err() {
            break;
        }
        let got = conn.read_for(Duration::from_millis(200)).await;
        if !got.text.is_empty() || got.closed {
            answer = Some(got);
            break;
        }
    }
    let elapsed = started.elapsed();
    let answer = answer.expect("cut off before the headers were complete");
    assert_eq!(answer.status(), 408, "{}", answer.text);
    assert!(
        elapsed < Duration::from_secs(6),
        "cut off after about a second (all of it would take 14 s): {elapsed:?}"
    );
}

/// On a kept-alive connection the headers of the next request have the same deadline
/// (actix times only the first request's); the connection is closed at it. A next
/// request sent whole is served as usual.
async fn a_later_request_cannot_trickle_its_headers(backend: TestBackend) {
    let app = backend
        .spawn_with(|s| s.header_read_timeout_seconds = 1)
        .await;
    let request = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut conn = RawConnection::open(&app).await;
    for _ in 0..2 {
        conn.send(request.as_bytes()).await.expect("send");
        let answer = conn.read_answer(Duration::from_secs(5)).await;
        assert_eq!(answer.status(), 200, "{}", answer.text);
        assert!(!answer.closed);
    }
    // After a pause shorter than keep-alive, the third request trickles in.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let mut outcome = None;
    for byte in request.bytes() {
        if conn.send(&[byte]).await.is_err() {
            outcome = Some(String::from("the server stopped reading"));
            break;
        }
        let got = conn.read_for(Duration::from_millis(200)).await;
        if got.closed || !got.text.is_empty() {
            outcome = Some(got.text);
            break;
        }
    }
    let elapsed = started.elapsed();
    let outcome = outcome.expect("cut off before the headers were complete");
    assert!(
        !outcome.starts_with("HTTP/1.1 200"),
        "the trickled request was served: {outcome}"
    );
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(6),
        "cut off after about a second (all of it would take 20 s): {elapsed:?}"
    );
}

/// `Expect: 100-continue`: refused before `100 Continue` when the declared body is too
/// large, the route unknown, the method wrong, or credentials missing where needed;
/// otherwise `100 Continue`, then the answer to the body.
async fn expect_continue_is_answered_after_the_cheap_checks(backend: TestBackend) {
    let app = backend.spawn_with(|_| {}).await;
    let operator = app.as_operator().await;
    let limit = app.settings.max_body_bytes;
    let request = |method: &str, path: &str, auth: Option<&str>, length: usize| {
        let auth = auth
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             {auth}Expect: 100-continue\r\nContent-Length: {length}\r\n\r\n"
        )
    };
    for (head, status, code) in [
        (
            request("POST", "/api/v1/verify", None, limit + 1),
            413,
            "payload_too_large",
        ),
        (
            request(
                "POST",
                "/api/v1/organizations",
                Some(&operator.token),
                limit + 1,
            ),
            413,
            "payload_too_large",
        ),
        (
            request("POST", "/api/v1/organizations", None, 20),
            401,
            "unauthenticated",
        ),
        (
            request("POST", "/api/v1/auth/tokens", None, 20),
            401,
            "unauthenticated",
        ),
        (
            request("POST", "/api/v1/nothing", None, 20),
            404,
            "not_found",
        ),
        (
            request("PUT", "/api/v1/verify", None, 20),
            405,
            "method_not_allowed",
        ),
    ] {
        let mut conn = RawConnection::open(&app).await;
        conn.send(head.as_bytes()).await.expect("send");
        // The client waits for the interim answer before sending its body.
        let mut answer = conn.read_answer(Duration::from_secs(5)).await;
        if !answer.closed {
            let rest = conn.read_for(Duration::from_secs(2)).await;
            answer.text.push_str(&rest.text);
            answer.closed = rest.closed;
        }
        assert!(
            !answer.text.starts_with("HTTP/1.1 100"),
            "no 100 Continue before a refusal: {}",
            answer.text
        );
        assert_eq!(answer.status(), status, "{head}: {}", answer.text);
        assert_eq!(answer.json()["error"]["code"], code, "{head}");
        assert_eq!(answer.header("cache-control"), Some("no-store"));
        assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
        assert!(answer.closed, "the body is never read: {head}");
    }

    // Public, small enough: 100 Continue, then the body's answer (nobody issued that
    // number). With credentials present, 100 Continue too: whether they are valid is
    // the database's to say, after the interim answer (a forged token is refused
    // without the body being read).
    let body = json!({ "number": unissued_number(), "code": "ABCDEFGH" }).to_string();
    for (head, status) in [
        (request("POST", "/api/v1/verify", None, body.len()), 404),
        (
            request(
                "POST",
                "/api/v1/organizations",
                Some(&operator.token),
                body.len(),
            ),
            400,
        ),
        (
            request("POST", "/api/v1/organizations", Some("forged"), body.len()),
            401,
        ),
    ] {
        let mut conn = RawConnection::open(&app).await;
        conn.send(head.as_bytes()).await.expect("send");
        let mut answer = conn.read_answer(Duration::from_secs(5)).await;
        assert!(
            answer.text.starts_with("HTTP/1.1 100 Continue\r\n\r\n"),
            "{head}: {}",
            answer.text
        );
        if answer.status() == 0 {
            conn.send(body.as_bytes()).await.expect("body");
            answer = conn.read_answer(Duration::from_secs(5)).await;
        }
        assert_eq!(answer.status(), status, "{head}: {}", answer.text);
    }
}

/// HSTS when the exchange is reached over TLS: its public address is `https://`, or a
/// trusted proxy says the client came over TLS. A client cannot ask for it itself.
async fn hsts_only_when_reached_over_tls(backend: TestBackend) {
    let hsts = |res: &reqwest::Response| {
        res.headers()
            .get("strict-transport-security")
            .map(|v| v.to_str().expect("ascii").to_owned())
    };
    // Plain HTTP, no trusted proxy: a forwarded protocol from the client is ignored.
    let app = backend.spawn_with(|_| {}).await;
    let res = app
        .api
        .get(app.url("/healthz"))
        .header("X-Forwarded-Proto", "https")
        .send()
        .await
        .expect("probe");
    assert_eq!(hsts(&res), None);
    drop(app);

    // Behind a trusted proxy (this test's client is it): what the proxy says counts.
    let app = backend
        .spawn_with(|s| s.trusted_proxies = "127.0.0.1".parse().expect("proxy"))
        .await;
    for (forwarded, expected) in [
        (Some(("X-Forwarded-Proto", "https")), true),
        (Some(("Forwarded", "for=192.0.2.1;proto=https")), true),
        (Some(("X-Forwarded-Proto", "http")), false),
        (None, false),
    ] {
        let mut request = app.api.get(app.url("/api/v1/nothing"));
        if let Some((name, value)) = forwarded {
            request = request.header(name, value);
        }
        let res = request.send().await.expect("request");
        assert_eq!(res.status(), 404);
        assert_eq!(
            hsts(&res).as_deref(),
            expected.then_some("max-age=31536000"),
            "{forwarded:?}"
        );
    }
    drop(app);

    // Reached at an https:// address: on every answer, refusals before a body included.
    let app = backend
        .spawn_with(|s| s.public_base_url = "https://baohan.example".into())
        .await;
    for res in [
        app.api.get(app.url("/healthz")).send().await.expect("ok"),
        app.api
            .get(app.url("/api/v1/auth/me"))
            .send()
            .await
            .expect("401"),
        app.api
            .delete(app.url("/healthz"))
            .send()
            .await
            .expect("405"),
    ] {
        assert_eq!(hsts(&res).as_deref(), Some("max-age=31536000"));
    }
    let answer = RawConnection::open(&app)
        .await
        .exchange(
            "POST /api/v1/applications HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n\
             Content-Length: 5\r\n\r\n",
        )
        .await;
    assert_eq!(answer.status(), 401, "{}", answer.text);
    assert_eq!(
        answer.header("strict-transport-security"),
        Some("max-age=31536000")
    );
}

crate::on_both_backends!(configured:
    every_kind_of_answer_is_hardened,
    a_rate_limited_answer_is_hardened,
    the_description_may_be_cached_if_revalidated,
    a_known_path_with_a_wrong_method_is_refused_with_allow,
    head_answers_as_get_without_the_body,
    a_trickled_body_is_cut_off_at_the_deadline,
    trickled_headers_are_cut_off,
    a_later_request_cannot_trickle_its_headers,
    expect_continue_is_answered_after_the_cheap_checks,
    hsts_only_when_reached_over_tls,
);
