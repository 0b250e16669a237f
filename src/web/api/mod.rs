//! The JSON API under `/api/v1`. Handlers parse and shape; the services decide.

pub mod admin;
pub mod applications;
pub mod auth;
pub mod dto;
pub mod guarantees;
pub mod mail;
pub mod organizations;
pub mod projects;
pub mod verify;

use crate::web::Routes;

/// The API's routes, relative to [`crate::web::API_PREFIX`].
pub fn routes<R: Routes>(r: &mut R) {
    auth::routes(r);
    admin::routes(r);
    organizations::routes(r);
    projects::routes(r);
    applications::routes(r);
    guarantees::routes(r);
    verify::routes(r);
    mail::routes(r);
}
