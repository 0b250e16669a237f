//! Route registration through one trait, so the same `routes` functions that fill
//! actix's `ServiceConfig` can also be run against a [`RouteList`] that only records
//! `(method, path)`. The OpenAPI test compares that record with the generated
//! description: every registered route must be documented and every documented one
//! registered, without a hand-kept list of either.

use actix_web::http::Method;
use actix_web::{web, FromRequest, Handler, Responder};

/// Where routes go: actix's `ServiceConfig`, or a [`RouteList`].
pub trait Routes {
    /// Registers `handler` for `method` on `path` (relative to the current scope).
    fn route<F, Args>(&mut self, method: Method, path: &str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static;

    /// Registers the routes of `register` under `prefix`.
    fn scope(&mut self, prefix: &str, register: impl FnOnce(&mut Self)) -> &mut Self;

    /// `GET path`.
    fn get<F, Args>(&mut self, path: &str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(Method::GET, path, handler)
    }

    /// `POST path`.
    fn post<F, Args>(&mut self, path: &str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(Method::POST, path, handler)
    }
}

impl Routes for web::ServiceConfig {
    fn route<F, Args>(&mut self, method: Method, path: &str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        web::ServiceConfig::route(self, path, web::method(method).to(handler))
    }

    fn scope(&mut self, prefix: &str, register: impl FnOnce(&mut Self)) -> &mut Self {
        self.service(web::scope(prefix).configure(register))
    }
}

/// Records routes instead of serving them: `(lowercase method, full path)`, with path
/// parameters as actix writes them (`{id}`), which is also OpenAPI's syntax.
#[derive(Debug, Default)]
pub struct RouteList {
    prefix: String,
    operations: Vec<(String, String)>,
}

impl RouteList {
    /// The recorded operations, in registration order.
    pub fn into_operations(self) -> Vec<(String, String)> {
        self.operations
    }
}

impl Routes for RouteList {
    fn route<F, Args>(&mut self, method: Method, path: &str, _handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.operations.push((
            method.as_str().to_ascii_lowercase(),
            format!("{}{path}", self.prefix),
        ));
        self
    }

    fn scope(&mut self, prefix: &str, register: impl FnOnce(&mut Self)) -> &mut Self {
        let outer = self.prefix.len();
        self.prefix.push_str(prefix);
        register(self);
        self.prefix.truncate(outer);
        self
    }
}
