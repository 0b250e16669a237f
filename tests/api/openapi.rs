//! `GET /api/openapi.json`: the generated description covers exactly the routes the app
//! serves, and says what clients rely on.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;

use crate::fixtures::Answer;
use crate::helpers::{spawn_sqlite, TestApp};

/// The description does not depend on the database, so SQLite is enough.
async fn fetch_description() -> (TestApp, Value) {
    let app = spawn_sqlite().await;
    let res = app
        .public_get::<Value>("/api/openapi.json")
        .response()
        .await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .expect("header")
        .starts_with("application/json"));
    let spec: Value = res.json().await.expect("the description is JSON");
    (app, spec)
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn operations_of(spec: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if METHODS.contains(&method.as_str()) {
                ops.insert((method.clone(), path.clone()));
            }
        }
    }
    ops
}

fn operation<'a>(spec: &'a Value, method: &str, path: &str) -> &'a Value {
    let op = &spec["paths"][path][method];
    assert!(op.is_object(), "{method} {path} is documented");
    op
}

/// The answer to `method path` (a method as the description spells it) on the running
/// server, signed out.
async fn answer(app: &TestApp, method: &str, path: &str) -> Answer {
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("method");
    app.signed_out().send(method, path, None).answer().await
}

/// The path with every parameter filled in.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "x" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

/// No handler took the request: the JSON 404 of unknown routes (a HEAD answer has no
/// body to tell the 404s apart).
fn not_routed(method: &str, answer: &Answer) -> bool {
    answer.no_such_endpoint() || (answer.status == 404 && method == "head")
}

/// The `Allow` header of a 405 for a path documented with `documented` methods: those,
/// with HEAD beside GET, in the server's order.
fn expected_allow(documented: &BTreeSet<&str>) -> String {
    ["get", "head", "post", "put", "patch", "delete"]
        .into_iter()
        .filter(|m| documented.contains(m) || (*m == "head" && documented.contains("get")))
        .map(str::to_ascii_uppercase)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Routes are registered only through `utoipa-actix-web`, which takes only handlers
/// carrying their description and adds it as it registers them: the description the
/// server builds is the list of what it routes. From the outside: the description
/// served is the one the library builds; every operation in it reaches a handler
/// (next test); every other method on a described path answers 405 with `Allow`
/// listing the described ones (HEAD answers as GET where GET is described); and paths
/// beside the described ones reach nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_registered_route_is_documented_and_vice_versa() {
    let (app, spec) = fetch_description().await;
    assert!(
        spec["openapi"].as_str().expect("version").starts_with("3."),
        "OpenAPI 3.x, got {}",
        spec["openapi"]
    );
    assert_eq!(spec["info"]["title"], "Baohan");
    assert_eq!(spec["info"]["version"], env!("CARGO_PKG_VERSION"));

    // What is served is what the library generates.
    let generated = serde_json::to_value(baohan::web::description()).expect("JSON");
    assert_eq!(generated, spec);

    let documented = operations_of(&spec);
    assert!(documented.len() > 40, "the registration saw the routes");
    let paths: BTreeSet<&String> = documented.iter().map(|(_, path)| path).collect();
    let mut stray = Vec::new();
    for path in &paths {
        let methods: BTreeSet<&str> = documented
            .iter()
            .filter(|(_, p)| p == *path)
            .map(|(m, _)| m.as_str())
            .collect();
        for method in METHODS {
            if methods.contains(method) {
                continue;
            }
            let got = answer(&app, method, &concrete(path)).await;
            if method == "head" && methods.contains("get") {
                let get = answer(&app, "get", &concrete(path)).await;
                if got.status != get.status {
                    stray.push(format!(
                        "head {path} answers {} (GET {})",
                        got.status, get.status
                    ));
                }
                continue;
            }
            let allow = got
                .headers
                .get("allow")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let refused = got.status == 405
                && allow == expected_allow(&methods)
                && (method == "head" || got.code() == Some("method_not_allowed"));
            if !refused {
                stray.push(format!("{method} {path}: {got:?}"));
            }
        }
    }
    // Beside the described paths: above, below, with a trailing slash. (The web pages,
    // `/` and the rest, are HTML beside the API and not part of its description.)
    for path in [
        "/api",
        "/api/v1",
        "/api/v1/",
        "/api/openapi.json/",
        "/api/v1/auth",
        "/api/v1/auth/login/",
        "/api/v1/guarantees/x/y",
        "/healthz/x",
    ] {
        for method in ["get", "post", "head"] {
            let got = answer(&app, method, path).await;
            if !not_routed(method, &got) {
                stray.push(format!("{method} {path}: {got:?}"));
            }
        }
    }
    assert!(stray.is_empty(), "served but not described: {stray:#?}");
}

/// Every documented operation reaches a handler on the real server (it does not fall
/// to the JSON 404 of unknown routes or a 405).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_reaches_a_handler() {
    let (app, spec) = fetch_description().await;
    for (method, path) in operations_of(&spec) {
        let concrete = concrete(&path);
        let got = answer(&app, &method, &concrete).await;
        assert_ne!(got.status, 405, "{method} {concrete}");
        assert!(!got.no_such_endpoint(), "{method} {concrete} is not routed");
        assert!(!got.has_header("allow"), "{method} {concrete}");
        // Without credentials, an endpoint that declares security must refuse.
        let op = operation(&spec, &method, &path);
        if op.get("security").is_some() {
            assert_eq!(got.status, 401, "{method} {concrete} needs credentials");
        }
    }
}

/// Every `$ref` points at something that exists.
fn assert_refs_resolve(spec: &Value, node: &Value) {
    match node {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                let pointer = target.strip_prefix('#').expect("local reference");
                assert!(spec.pointer(pointer).is_some(), "dangling {target}");
            }
            map.values().for_each(|v| assert_refs_resolve(spec, v));
        }
        Value::Array(items) => items.iter().for_each(|v| assert_refs_resolve(spec, v)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_description_says_what_clients_rely_on() {
    let (_app, spec) = fetch_description().await;
    assert_refs_resolve(&spec, &spec);

    // Verification: the request schema, the report, and errors in the one shape.
    let verify = operation(&spec, "post", "/api/v1/verify");
    assert_eq!(
        verify["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/VerifyRequest"
    );
    assert_eq!(
        verify["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/VerificationReport"
    );
    assert_eq!(
        verify["responses"]["422"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorBody"
    );
    assert!(verify.get("security").is_none(), "verification is public");
    let schemas = &spec["components"]["schemas"];
    for field in [
        "number",
        "code",
        "document_base64",
        "signature_base64",
        "expectations",
    ] {
        assert!(
            schemas["VerifyRequest"]["properties"][field].is_object(),
            "VerifyRequest.{field}"
        );
    }
    assert!(schemas["ErrorBody"]["properties"]["error"].is_object());
    for name in [
        "VerificationReport",
        "Check",
        "CheckId",
        "CheckResult",
        "Indication",
        "SubIndication",
        "SignerDetails",
        "ExpectationsInput",
        "NewOrganization",
        "NewProject",
        "NewSection",
        "NewApplication",
        "NewClaim",
        "ClaimDecision",
        "NewIssuerCertificate",
        "OrganizationView",
        "ProjectOut",
        "ApplicationOut",
        "GuaranteeOut",
        "IssuedOut",
        "ClaimOut",
        "BondOut",
    ] {
        assert!(schemas[name].is_object(), "schema {name}");
    }

    // Authentication: bearer, or the cookie with the CSRF header.
    let schemes = &spec["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["session_cookie"]["in"], "cookie");
    assert_eq!(schemes["csrf_token"]["in"], "header");
    assert_eq!(schemes["csrf_token"]["name"], "X-CSRF-Token");
    assert!(operation(&spec, "post", "/api/v1/auth/login")
        .get("security")
        .is_none());
    let apply = operation(&spec, "post", "/api/v1/applications");
    let alternatives = apply["security"].as_array().expect("security");
    assert!(alternatives.iter().any(|a| a.get("bearer").is_some()));
    assert!(alternatives
        .iter()
        .any(|a| a.get("session_cookie").is_some() && a.get("csrf_token").is_some()));
    assert!(apply["responses"]["401"].is_object());

    // Binary downloads and the signature upload, with their content types.
    let download = |path: &str, content_type: &str| {
        let op = operation(&spec, "get", path);
        assert!(
            op["responses"]["200"]["content"][content_type].is_object(),
            "{path} answers {content_type}"
        );
    };
    download("/api/v1/guarantees/{number}/document", "application/json");
    download(
        "/api/v1/guarantees/{number}/signature",
        "application/pkcs7-signature",
    );
    download(
        "/api/v1/guarantees/{number}/chain",
        "application/x-pem-file",
    );
    download("/api/v1/guarantees/{number}/letter", "text/html");
    // A reduction's signed version, and the release and reduction letters with the
    // exchange's time-stamp response.
    download(
        "/api/v1/guarantees/{number}/amendments/{version}/document",
        "application/json",
    );
    download(
        "/api/v1/guarantees/{number}/amendments/{version}/signature",
        "application/pkcs7-signature",
    );
    download(
        "/api/v1/guarantees/{number}/letters/{id}/document",
        "application/json",
    );
    download(
        "/api/v1/guarantees/{number}/letters/{id}/timestamp",
        "application/timestamp-reply",
    );
    let upload = operation(&spec, "post", "/api/v1/applications/{id}/signature");
    let content = &upload["requestBody"]["content"];
    assert!(content["application/pkcs7-signature"].is_object());
    assert_eq!(
        content["application/json"]["schema"]["$ref"],
        "#/components/schemas/SignatureUpload"
    );

    // Closed sets are enums, with every value the server uses (tenderee included).
    let enum_of = |name: &str| -> Vec<String> {
        schemas[name]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} is an enum"))
            .iter()
            .map(|v| v.as_str().expect("text").to_owned())
            .collect()
    };
    use baohan::domain::party::{OrgKind, Role};
    assert_eq!(
        enum_of("OrgKind"),
        OrgKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>()
    );
    assert!(enum_of("OrgKind").contains(&"tenderee".to_owned()));
    assert_eq!(
        enum_of("Role"),
        Role::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>()
    );
    assert_eq!(
        schemas["NewOrganization"]["properties"]["kind"]["$ref"],
        "#/components/schemas/OrgKind"
    );
    assert_eq!(
        schemas["OrganizationView"]["properties"]["kind"]["$ref"],
        "#/components/schemas/OrgKind"
    );
    assert_eq!(schemas["NewOrganization"]["additionalProperties"], false);

    // What the layers around the handlers answer is listed with each operation.
    for (method, path) in operations_of(&spec) {
        let op = operation(&spec, &method, &path);
        let lists = |status: &str| op["responses"][status].is_object();
        assert!(lists("413"), "{method} {path} lists 413");
        if method == "post" || method == "patch" {
            assert!(lists("408"), "{method} {path} lists 408");
        }
        if op.get("security").is_some() {
            assert!(
                lists("401") && lists("403"),
                "{method} {path} lists 401 and 403"
            );
        }
        if method == "post" {
            assert!(
                lists("400") && lists("409") && lists("422"),
                "{method} {path} lists the Idempotency-Key answers"
            );
        }
        // Keys are per user: signed-in operations that change state take one; a signed-out
        // one (sign-in, public verification) runs as if it had none.
        let changes_state = matches!(method.as_str(), "post" | "put" | "patch" | "delete");
        let parameters = op["parameters"].as_array().cloned().unwrap_or_default();
        let takes_key = parameters
            .iter()
            .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header");
        assert_eq!(
            takes_key,
            changes_state && op.get("security").is_some(),
            "{method} {path}: the Idempotency-Key header where it is honoured"
        );
    }
    for path in ["/api/v1/auth/login", "/api/v1/verify"] {
        let op = operation(&spec, "post", path);
        assert!(op["responses"]["429"].is_object(), "{path} lists 429");
        assert!(op["responses"]["429"]["headers"]["Retry-After"].is_object());
    }

    // Every operation belongs to an area.
    let areas = [
        "auth",
        "admin",
        "organizations",
        "projects",
        "applications",
        "guarantees",
        "claims",
        "verification",
        "mail",
        "webhooks",
        "statistics",
        "deposit-free",
        "health",
        "openapi",
    ];
    for (method, path) in operations_of(&spec) {
        let tags = operation(&spec, &method, &path)["tags"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            tags.iter()
                .any(|t| areas.contains(&t.as_str().unwrap_or(""))),
            "{method} {path} has an area tag: {tags:?}"
        );
    }
}

/// Every state-changing operation of a signed-in caller takes `Idempotency-Key` and
/// says its answers may carry `Idempotent-Replayed`; sign-in and public verification
/// (no user to key by) do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_state_changing_operation_documents_the_idempotency_headers() {
    let (_app, spec) = fetch_description().await;
    let mut keyed = 0;
    for (method, path) in operations_of(&spec) {
        let op = operation(&spec, &method, &path);
        let parameter = op["parameters"].as_array().and_then(|ps| {
            ps.iter()
                .find(|p| p["name"] == "Idempotency-Key" && p["in"] == "header")
        });
        let changes_state = ["post", "put", "patch", "delete"].contains(&method.as_str());
        if !(changes_state && op.get("security").is_some()) {
            assert!(parameter.is_none(), "{method} {path} takes no key");
            continue;
        }
        keyed += 1;
        let parameter = parameter.unwrap_or_else(|| panic!("{method} {path} takes a key"));
        assert_eq!(parameter["required"], false, "{method} {path}");
        assert_eq!(parameter["schema"]["maxLength"], 200);
        let responses = op["responses"].as_object().expect("responses");
        let successes: Vec<_> = responses
            .iter()
            .filter(|(status, _)| status.starts_with('2'))
            .collect();
        assert!(!successes.is_empty(), "{method} {path} answers");
        for (status, response) in successes {
            assert!(
                response["headers"]["Idempotent-Replayed"].is_object(),
                "{method} {path} {status} may be replayed"
            );
        }
        let conflict = responses["409"]["description"].as_str().unwrap_or_default();
        assert!(
            conflict.contains("idempotency_key_in_progress")
                && conflict.contains("idempotent_answer_lost"),
            "{method} {path} describes the key's conflicts: {conflict}"
        );
        assert!(
            responses["422"].is_object(),
            "{method} {path}: a reused key"
        );
    }
    assert!(
        keyed > 20,
        "the state-changing operations were seen: {keyed}"
    );
    for (method, path) in [
        ("post", "/api/v1/auth/tokens"),
        ("patch", "/api/v1/projects/{id}"),
    ] {
        let op = operation(&spec, method, path);
        assert!(
            op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == "Idempotency-Key")),
            "{method} {path}"
        );
    }
}
