//! The edges of HTTP: what every answer carries whoever made it (a handler, a
//! middleware, the router's default, the 100-continue check), and what is decided before
//! a request reaches a handler.
//!
//! - [`middleware`], the outermost layer of the app below the request log: the security
//!   headers, `Cache-Control: no-store`, HSTS when the exchange is reached over TLS, the
//!   JSON error shape for errors any inner layer answered in another shape, a declared
//!   body over the limit refused before it is read (413), and a body that does not
//!   arrive in time cut off (408, connection closed).
//! - [`Routes`], the route table read from the API description: the router's default
//!   answers 405 with `Allow` for a known path and a method it does not serve, 404
//!   otherwise ([`no_route`]).
//! - [`ExpectCheck`], which decides a request that expects `100 Continue` before that
//!   is sent. (How connections are served, `HEAD` and slow headers included, is
//!   [`super::dispatch`].)

use std::cell::Cell;
use std::future::{ready, Future, Ready};
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_http::Request;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{
    Payload, ResourceDef, Service, ServiceFactory, ServiceRequest, ServiceResponse, Url,
};
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{ConnectionType, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use super::auth::SESSION_COOKIE;
use super::error::ApiError;
use crate::config::{Settings, TrustedProxies};

/// Where the API description is served: public and the same for everyone, so caches
/// may keep it (revalidating), unlike every other answer.
pub const DESCRIPTION_PATH: &str = "/api/openapi.json";

/// `Strict-Transport-Security` when the exchange is reached over TLS: a year, this host
/// only (whether sibling hosts serve TLS is not ours to say).
pub const HSTS: &str = "max-age=31536000";

const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// The methods the route table knows, in the order `Allow` lists them.
const METHODS: [Method; 6] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// Every route the app serves, as the API description lists them: each path template
/// with its methods and whether they need credentials.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    routes: Vec<Route>,
}

#[derive(Debug, Clone)]
struct Route {
    path: ResourceDef,
    operations: Vec<Operation>,
}

#[derive(Debug, Clone)]
struct Operation {
    method: Method,
    /// The operation names a security requirement: without any credentials it can
    /// only answer 401.
    signed_in: bool,
}

impl Routes {
    /// The table of the description the routes registered (see [`super::with_routes`]).
    pub fn from_description(description: &utoipa::openapi::OpenApi) -> Routes {
        let json = serde_json::to_value(description).unwrap_or_default();
        let Some(paths) = json.get("paths").and_then(|p| p.as_object()) else {
            return Routes::default();
        };
        let routes = paths
            .iter()
            .map(|(template, item)| Route {
                path: ResourceDef::new(template.as_str()),
                operations: METHODS
                    .iter()
                    .filter_map(|method| {
                        let key = method.as_str().to_ascii_lowercase();
                        let operation = item.get(&key)?;
                        let signed_in = operation
                            .get("security")
                            .and_then(|s| s.as_array())
                            .is_some_and(|alternatives| {
                                !alternatives.is_empty()
                                    && alternatives.iter().all(|a| {
                                        a.as_object().is_some_and(|schemes| !schemes.is_empty())
                                    })
                            });
                        Some(Operation {
                            method: method.clone(),
                            signed_in,
                        })
                    })
                    .collect(),
            })
            .collect();
        Routes { routes }
    }

    /// The methods served on `path` (as the router sees it: [`Url::path`]), `HEAD`
    /// wherever `GET` is; `None` when no route has this path.
    pub fn allowed(&self, path: &str) -> Option<Vec<Method>> {
        let served: Vec<&Method> = self
            .routes
            .iter()
            .filter(|route| route.path.is_match(path))
            .flat_map(|route| route.operations.iter().map(|op| &op.method))
            .collect();
        if served.is_empty() {
            return None;
        }
        Some(
            METHODS
                .iter()
                .filter(|m| {
                    served.contains(m) || (**m == Method::HEAD && served.contains(&&Method::GET))
                })
                .cloned()
                .collect(),
        )
    }

    /// The operation `method path` routes to, `HEAD` read as `GET`.
    fn operation(&self, method: &Method, path: &str) -> Option<&Operation> {
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        self.routes
            .iter()
            .filter(|route| route.path.is_match(path))
            .flat_map(|route| route.operations.iter())
            .find(|op| op.method == method)
    }
}

/// The `Allow` header for `methods`.
fn allow_header(methods: &[Method]) -> HeaderValue {
    let list = methods
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    HeaderValue::from_str(&list).unwrap_or_else(|_| HeaderValue::from_static("GET"))
}

/// The answer when no route took a request: 405 with `Allow` for a path the app serves
/// with other methods, the JSON 404 otherwise.
fn refusal_for_unrouted(routes: &Routes, method: &Method, path: &str) -> HttpResponse {
    match routes.allowed(path) {
        Some(methods) => {
            let mut response = ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{method} is not served here; the methods served are in the Allow header"),
            )
            .error_response();
            response
                .headers_mut()
                .insert(header::ALLOW, allow_header(&methods));
            response
        }
        None => ApiError::not_found("no such endpoint").error_response(),
    }
}

/// The router's default service: 405 with `Allow`, or 404.
pub async fn no_route(req: HttpRequest, routes: Option<web::Data<Routes>>) -> HttpResponse {
    let path = req.match_info().as_str().to_owned();
    match routes {
        Some(routes) => refusal_for_unrouted(&routes, req.method(), &path),
        None => ApiError::not_found("no such endpoint").error_response(),
    }
}

/// What the edges need of the settings (app data of the app: without it, as in
/// tests that build an app alone, only the headers are set).
#[derive(Debug, Clone)]
pub struct EdgeSettings {
    pub max_body_bytes: usize,
    /// The largest attachment (`BAOHAN_ATTACHMENT_MAX_BYTES`).
    pub attachment_max_bytes: usize,
    pub body_read_timeout: Duration,
    pub trusted_proxies: TrustedProxies,
    /// The public base URL is `https://`: users reach the exchange over TLS.
    pub https_base_url: bool,
}

/// Whether the request is a file upload whose body its handler streams to disk and never
/// holds in memory: the bulk import's, through the API and the credit office desk's
/// form, and an attachment's, through the API and the pages.
pub fn streams_body(method: &actix_web::http::Method, path: &str) -> bool {
    method == actix_web::http::Method::POST && (is_import(path) || is_attachment_upload(path))
}

fn is_import(path: &str) -> bool {
    use crate::web::api::credit_import::IMPORT_PATH;
    use crate::web::pages::credit_office::IMPORT_UPLOAD_PATH;
    path == IMPORT_PATH || path == IMPORT_UPLOAD_PATH
}

fn is_attachment_upload(path: &str) -> bool {
    crate::web::api::attachments::is_upload_path(path)
}

impl EdgeSettings {
    /// The body limit of a request: the configured one, or the bulk import's or an
    /// attachment's (the file and a multipart form's overhead) for their uploads
    /// ([`streams_body`]).
    pub fn body_limit(&self, method: &actix_web::http::Method, path: &str) -> usize {
        if method != actix_web::http::Method::POST {
            return self.max_body_bytes;
        }
        if is_import(path) {
            self.max_body_bytes
                .max(crate::web::api::credit_import::IMPORT_BODY_MAX_BYTES)
        } else if is_attachment_upload(path) {
            self.max_body_bytes.max(
                self.attachment_max_bytes
                    .saturating_add(crate::web::api::attachments::MULTIPART_OVERHEAD_BYTES),
            )
        } else {
            self.max_body_bytes
        }
    }

    pub fn from_settings(settings: &Settings) -> EdgeSettings {
        EdgeSettings {
            max_body_bytes: settings.max_body_bytes,
            attachment_max_bytes: usize::try_from(settings.attachment_max_bytes)
                .unwrap_or(usize::MAX),
            body_read_timeout: Duration::from_secs(settings.body_read_timeout_seconds),
            trusted_proxies: settings.trusted_proxies.clone(),
            https_base_url: settings.public_base_url.starts_with("https://"),
        }
    }

    /// Whether this request reached the exchange over TLS, as far as the exchange can
    /// know: its own connection was TLS, or the operator says users reach it at an
    /// `https://` address (browsers ignore HSTS sent over plain HTTP, RFC 6797 §8.1, so
    /// an internal hop in the clear loses nothing), or a trusted proxy says so in
    /// `X-Forwarded-Proto` / `Forwarded: proto=`. Those headers from anyone else are
    /// ignored.
    fn https(&self, secure_connection: bool, peer: Option<IpAddr>, headers: &HeaderMap) -> bool {
        secure_connection
            || self.https_base_url
            || peer.is_some_and(|peer| {
                self.trusted_proxies.contains(peer) && forwarded_proto_is_https(headers)
            })
    }
}

/// The protocol the nearest proxy recorded: the last `X-Forwarded-Proto` value, else
/// the `proto` of the last `Forwarded` element.
fn forwarded_proto_is_https(headers: &HeaderMap) -> bool {
    const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
    let last = |name: HeaderName| {
        headers
            .get_all(name)
            .filter_map(|v| v.to_str().ok())
            .flat_map(|line| line.split(','))
            .last()
            .map(str::trim)
            .map(str::to_owned)
    };
    if headers.contains_key(X_FORWARDED_PROTO) {
        return last(X_FORWARDED_PROTO).is_some_and(|p| p.eq_ignore_ascii_case("https"));
    }
    last(header::FORWARDED).is_some_and(|element| {
        element
            .split(';')
            .filter_map(|pair| pair.split_once('='))
            .any(|(key, value)| {
                key.trim().eq_ignore_ascii_case("proto")
                    && value.trim().trim_matches('"').eq_ignore_ascii_case("https")
            })
    })
}

/// Sets the headers every answer carries. `Cache-Control: no-store` everywhere (answers
/// are per caller, carry secrets such as tokens and verification codes, or are
/// per-request results; a probe's answer is stale the moment it is cached), except that
/// the API description may be kept if revalidated: it is public and the same for
/// everyone. A handler's own `Content-Security-Policy` is kept (a page may need a
/// stricter one); nothing else a handler set overrides these.
pub fn harden(headers: &mut HeaderMap, path: &str, https: bool) {
    let set = |headers: &mut HeaderMap, name: HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    // Same origin only: a form posted with an expired session can send its visitor
    // back to it after signing in, and no other site learns a page's address (which may
    // carry a guarantee number).
    set(headers, header::REFERRER_POLICY, "same-origin");
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        set(
            headers,
            header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY,
        );
    }
    if (path == DESCRIPTION_PATH || path.starts_with("/static/"))
        && headers.contains_key(header::CACHE_CONTROL)
    {
        // The description and the embedded static files say how they may be cached:
        // public, the same for everyone.
    } else {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    if https {
        set(headers, header::STRICT_TRANSPORT_SECURITY, HSTS);
    } else {
        headers.remove(header::STRICT_TRANSPORT_SECURITY);
    }
}

/// The length a request declares, when it declares one it can be held to. A
/// `Content-Length` that is not a number is the dispatcher's to refuse (400).
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn payload_too_large(limit: usize) -> HttpResponse {
    let mut response = ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the request body is larger than {limit} bytes"),
    )
    .error_response();
    // The body is never read: the connection cannot carry another request.
    response
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    response
}

fn body_timed_out(timeout: Duration) -> HttpResponse {
    let mut response = ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        format!(
            "the request body did not arrive within {} seconds",
            timeout.as_secs()
        ),
    )
    .error_response();
    response
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    response
}

/// The request body, cut off at a deadline: after it, reading fails (and the flag says
/// so, for the middleware to answer 408 whatever the reader made of the failure).
struct Deadline {
    inner: Payload,
    sleep: Pin<Box<tokio::time::Sleep>>,
    timed_out: Rc<Cell<bool>>,
}

impl futures_core::Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.timed_out.get() {
            return Poll::Ready(Some(Err(timed_out_error())));
        }
        if let Poll::Ready(item) = Pin::new(&mut this.inner).poll_next(cx) {
            return Poll::Ready(item);
        }
        if this.sleep.as_mut().poll(cx).is_ready() {
            this.timed_out.set(true);
            return Poll::Ready(Some(Err(timed_out_error())));
        }
        Poll::Pending
    }
}

fn timed_out_error() -> PayloadError {
    PayloadError::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the request body did not arrive in time",
    ))
}

/// The edges of every request: see the module documentation. Wrapped outside every
/// other middleware of the app but the request log and its id, so that whatever an
/// inner layer answers (a replayed idempotent answer, a 429, an extractor's error, an
/// `Err` a middleware returns) passes here.
pub async fn middleware(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let settings = req.app_data::<web::Data<EdgeSettings>>().cloned();
    let path = req.path().to_owned();
    let https = settings.as_ref().is_some_and(|s| {
        s.https(
            req.app_config().secure(),
            req.peer_addr().map(|a| a.ip()),
            req.headers(),
        )
    });
    if let Some(s) = &settings {
        let limit = s.body_limit(req.method(), &path);
        if declared_length(req.headers()).is_some_and(|n| n > limit as u64) {
            let mut res = req.into_response(payload_too_large(limit));
            harden(res.headers_mut(), &path, https);
            return Ok(res);
        }
    }
    let timed_out = Rc::new(Cell::new(false));
    if let Some(s) = &settings {
        let (_, payload) = req.parts_mut();
        if !matches!(payload, Payload::None) {
            let inner = std::mem::replace(payload, Payload::None);
            let deadline = Deadline {
                inner,
                sleep: Box::pin(tokio::time::sleep(s.body_read_timeout)),
                timed_out: timed_out.clone(),
            };
            *payload = Payload::Stream {
                payload: Box::pin(deadline),
            };
        }
    }
    // (No clone of the request may be held across this call: the router needs it
    // unshared to record the match.)
    let mut res = match next.call(req).await {
        Ok(res) => res.map_into_boxed_body(),
        Err(e) => {
            let response = match &settings {
                Some(s) if timed_out.get() => body_timed_out(s.body_read_timeout),
                _ => e.error_response(),
            };
            return Err(Hardened::new(response, &path, https).into());
        }
    };
    if let Some(s) = settings.as_ref().filter(|_| timed_out.get()) {
        res = res.into_response(body_timed_out(s.body_read_timeout));
    }
    if res.status().is_client_error() || res.status().is_server_error() {
        let browser = super::pages::errors::wants_html(res.request());
        if browser && is_html(res.response()) {
            // A page that answers with its own HTML and an error status (a form shown
            // again with its errors, 422; a sealed bid opening, 403) stays as it is.
        } else if browser {
            // A browser gets a page in its language, whatever failed.
            let failure = res
                .response()
                .extensions()
                .get::<super::pages::errors::PageFailure>()
                .cloned();
            let status = res.status();
            let mut page =
                super::pages::errors::browser_page(res.request(), status, failure.as_ref());
            if let Some(wait) = res.headers().get(header::RETRY_AFTER).cloned() {
                page.headers_mut().insert(header::RETRY_AFTER, wait);
            }
            if let Some(allow) = res.headers().get(header::ALLOW).cloned() {
                page.headers_mut().insert(header::ALLOW, allow);
            }
            res = res.into_response(page);
        } else {
            res = in_json_shape(res).await?;
        }
    }
    harden(res.headers_mut(), &path, https);
    Ok(res)
}

fn is_html(response: &HttpResponse) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}

/// An error an inner layer returned as `Err` (not as an answer), made into the answer
/// the dispatcher sends: the JSON error shape and the headers of every answer. (An
/// `Err` leaves no request to build a [`ServiceResponse`] with; the dispatcher asks the
/// error for its answer.)
#[derive(Debug)]
struct Hardened {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    close: bool,
}

impl Hardened {
    fn new(response: HttpResponse, path: &str, https: bool) -> Hardened {
        let status = response.status();
        let close = response.head().connection_type() == ConnectionType::Close;
        let is_json = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let (response, body) = response.into_parts();
        let body = match body.try_into_bytes() {
            Ok(bytes) if is_json => bytes,
            _ => {
                let (_, body) = generic_error(status).error_response().into_parts();
                body.try_into_bytes().unwrap_or_default()
            }
        };
        let mut headers = response.headers().clone();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.remove(header::CONTENT_LENGTH);
        harden(&mut headers, path, https);
        Hardened {
            status,
            headers,
            body,
            close,
        }
    }
}

impl std::fmt::Display for Hardened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} answered by a middleware", self.status)
    }
}

impl ResponseError for Hardened {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response =
            HttpResponse::with_body(self.status, self.body.clone()).map_into_boxed_body();
        *response.headers_mut() = self.headers.clone();
        if self.close {
            response
                .head_mut()
                .set_connection_type(ConnectionType::Close);
        }
        response
    }
}

/// The JSON error for a status when all that is known of the error is its status.
fn generic_error(status: StatusCode) -> ApiError {
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let message = status.canonical_reason().unwrap_or("error").to_lowercase();
    ApiError::new(status, code, message)
}

/// An error answer in the JSON error shape (rewritten when an inner layer answered in
/// another).
async fn in_json_shape(
    res: ServiceResponse<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    use actix_web::middleware::ErrorHandlerResponse;
    match super::error::ensure_json_error(res)? {
        ErrorHandlerResponse::Response(res) => Ok(res.map_into_boxed_body()),
        ErrorHandlerResponse::Future(fut) => Ok(fut.await?.map_into_boxed_body()),
    }
}

/// Decides a request that says `Expect: 100-continue` before `100 Continue` is sent,
/// so that a client never uploads a body the exchange will not read: a declared body
/// over the limit is 413, an unknown route 404, a method the path does not serve 405,
/// and an operation that needs credentials when the request carries none at all (no
/// `Authorization` header, no session cookie) 401. Whether credentials that are there
/// are valid needs the database; that, and everything else, is decided after the body
/// as for any request.
#[derive(Clone)]
pub struct ExpectCheck {
    routes: Arc<Routes>,
    settings: Arc<EdgeSettings>,
}

impl ExpectCheck {
    pub fn new(routes: Arc<Routes>, settings: EdgeSettings) -> ExpectCheck {
        ExpectCheck {
            routes,
            settings: Arc::new(settings),
        }
    }

    fn refusal(&self, req: &Request) -> Option<HttpResponse> {
        let head = req.head();
        let url = Url::new(head.uri.clone());
        let path = url.path();
        let limit = self.settings.body_limit(&head.method, path);
        if declared_length(&head.headers).is_some_and(|n| n > limit as u64) {
            return Some(payload_too_large(limit));
        }
        let Some(operation) = self.routes.operation(&head.method, path) else {
            return Some(refusal_for_unrouted(&self.routes, &head.method, path));
        };
        if operation.signed_in && !carries_credentials(&head.headers) {
            return Some(
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    "sign in or send a valid API token",
                )
                .error_response(),
            );
        }
        None
    }
}

/// Whether a request carries anything that could be credentials: an `Authorization`
/// header or the session cookie.
fn carries_credentials(headers: &HeaderMap) -> bool {
    headers.contains_key(header::AUTHORIZATION)
        || headers
            .get_all(header::COOKIE)
            .filter_map(|v| v.to_str().ok())
            .flat_map(|line| line.split(';'))
            .any(|pair| {
                pair.split_once('=')
                    .is_some_and(|(name, _)| name.trim() == SESSION_COOKIE)
            })
}

/// A refusal before `100 Continue`, as the dispatcher sends it.
pub struct ExpectRefused(actix_http::Response<BoxBody>);

impl From<ExpectRefused> for actix_http::Response<BoxBody> {
    fn from(refused: ExpectRefused) -> Self {
        refused.0
    }
}

impl ServiceFactory<Request> for ExpectCheck {
    type Response = Request;
    type Error = ExpectRefused;
    type Config = ();
    type Service = ExpectCheck;
    type InitError = ();
    type Future = Ready<Result<ExpectCheck, ()>>;

    fn new_service(&self, _: ()) -> Self::Future {
        ready(Ok(self.clone()))
    }
}

impl Service<Request> for ExpectCheck {
    type Response = Request;
    type Error = ExpectRefused;
    type Future = Ready<Result<Request, ExpectRefused>>;

    actix_web::dev::always_ready!();

    fn call(&self, req: Request) -> Self::Future {
        let Some(mut refusal) = self.refusal(&req) else {
            return ready(Ok(req));
        };
        let https = self.settings.https(
            false,
            req.head().peer_addr.map(|a| a.ip()),
            &req.head().headers,
        );
        harden(refusal.headers_mut(), req.path(), https);
        // The body the client holds back is never read: close after answering.
        refusal
            .head_mut()
            .set_connection_type(ConnectionType::Close);
        ready(Err(ExpectRefused(refusal.into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes() -> Routes {
        Routes::from_description(&super::super::description())
    }

    #[test]
    fn allow_lists_every_method_of_a_path_with_head_beside_get() {
        let routes = routes();
        let allowed = |path: &str| {
            routes
                .allowed(path)
                .map(|methods| allow_header(&methods).to_str().unwrap_or("").to_owned())
        };
        assert_eq!(allowed("/healthz").as_deref(), Some("GET, HEAD"));
        assert_eq!(allowed("/api/v1/auth/login").as_deref(), Some("POST"));
        assert_eq!(
            allowed("/api/v1/projects/p-1").as_deref(),
            Some("GET, HEAD, PATCH")
        );
        assert_eq!(allowed("/api/v1/nothing"), None);
        assert_eq!(allowed("/api/v1/projects/"), None);
        assert_eq!(allowed("/api/v1/auth/login/"), None);
    }

    #[test]
    fn the_table_knows_which_operations_need_credentials() {
        let routes = routes();
        let signed_in =
            |method: Method, path: &str| routes.operation(&method, path).map(|op| op.signed_in);
        assert_eq!(signed_in(Method::POST, "/api/v1/auth/login"), Some(false));
        assert_eq!(signed_in(Method::POST, "/api/v1/verify"), Some(false));
        assert_eq!(signed_in(Method::POST, "/api/v1/applications"), Some(true));
        assert_eq!(signed_in(Method::HEAD, "/api/v1/guarantees"), Some(true));
        assert_eq!(signed_in(Method::DELETE, "/api/v1/guarantees"), None);
    }

    #[test]
    fn only_the_nearest_proxys_protocol_counts() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.append(
                    HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                );
            }
            map
        };
        assert!(forwarded_proto_is_https(&headers(&[(
            "x-forwarded-proto",
            "https"
        )])));
        assert!(!forwarded_proto_is_https(&headers(&[(
            "x-forwarded-proto",
            "https, http"
        )])));
        assert!(forwarded_proto_is_https(&headers(&[(
            "forwarded",
            "for=192.0.2.1;proto=http, for=10.0.0.1;proto=\"https\""
        )])));
        assert!(!forwarded_proto_is_https(&headers(&[])));

        let settings = EdgeSettings {
            max_body_bytes: 1024,
            attachment_max_bytes: 4096,
            body_read_timeout: Duration::from_secs(1),
            trusted_proxies: "10.0.0.0/8".parse().expect("proxies"),
            https_base_url: false,
        };
        let says_https = headers(&[("x-forwarded-proto", "https")]);
        let proxy: IpAddr = "10.1.2.3".parse().expect("ip");
        let stranger: IpAddr = "192.0.2.7".parse().expect("ip");
        assert!(settings.https(false, Some(proxy), &says_https));
        assert!(!settings.https(false, Some(stranger), &says_https));
        assert!(!settings.https(false, None, &says_https));
        assert!(settings.https(true, Some(stranger), &HeaderMap::new()));
    }

    /// A middleware inside the edges that fails with `Err` in actix's plain-text shape.
    async fn failing_layer(
        _req: ServiceRequest,
        _next: Next<impl MessageBody>,
    ) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
        Err(actix_web::error::ErrorServiceUnavailable("plain words"))
    }

    #[actix_web::test]
    async fn an_err_from_an_inner_layer_is_answered_hardened_and_in_json() {
        use actix_web::{test, App};
        let app = test::init_service(
            App::new()
                .wrap(actix_web::middleware::from_fn(failing_layer))
                .wrap(actix_web::middleware::from_fn(middleware))
                .route("/api/v1/x", web::get().to(HttpResponse::Ok)),
        )
        .await;
        let request = test::TestRequest::get().uri("/api/v1/x").to_request();
        let error = test::try_call_service(&app, request)
            .await
            .expect_err("the error goes on to the dispatcher");
        let response = error.error_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        assert_eq!(
            header(header::CONTENT_TYPE).as_deref(),
            Some("application/json")
        );
        assert_eq!(header(header::CACHE_CONTROL).as_deref(), Some("no-store"));
        assert_eq!(
            header(header::X_CONTENT_TYPE_OPTIONS).as_deref(),
            Some("nosniff")
        );
        assert_eq!(header(header::X_FRAME_OPTIONS).as_deref(), Some("DENY"));
        let body = actix_web::body::to_bytes(response.into_body())
            .await
            .expect("body");
        let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(json["error"]["code"], "unavailable", "{json}");
        assert!(json["error"]["message"].is_string(), "{json}");
    }

    #[test]
    fn credentials_are_a_bearer_header_or_the_session_cookie() {
        let mut headers = HeaderMap::new();
        assert!(!carries_credentials(&headers));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; other=1"),
        );
        assert!(!carries_credentials(&headers));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; baohan_session=abc"),
        );
        assert!(carries_credentials(&headers));
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert!(carries_credentials(&headers));
    }
}
