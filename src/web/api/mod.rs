//! The JSON API under `/api/v1`. Handlers parse and shape; the services decide.

pub mod admin;
pub mod application_drafts;
pub mod applications;
pub mod attachments;
pub mod auth;
pub mod catalogue;
pub mod credit;
pub mod credit_disputes;
pub mod credit_import;
pub mod dto;
pub mod guarantees;
pub mod issuer_rules;
pub mod letters;
pub mod listing;
pub mod mail;
pub mod organizations;
pub mod premium_terms;
pub mod projects;
pub mod reductions;
pub mod stats;
pub mod verify;
pub mod waivers;
pub mod webhooks;

use utoipa_actix_web::service_config::ServiceConfig;

/// The API's routes, relative to [`crate::web::API_PREFIX`].
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.configure(auth::routes)
        .configure(admin::routes)
        .configure(organizations::routes)
        .configure(premium_terms::routes)
        .configure(projects::routes)
        .configure(applications::routes)
        .configure(application_drafts::routes)
        .configure(attachments::routes)
        .configure(guarantees::routes)
        .configure(reductions::routes)
        .configure(letters::routes)
        .configure(verify::routes)
        .configure(mail::routes)
        .configure(stats::routes)
        .configure(catalogue::routes)
        .configure(credit::routes)
        .configure(credit_disputes::routes)
        .configure(issuer_rules::routes)
        .configure(waivers::routes)
        .configure(credit_import::routes)
        .configure(webhooks::routes);
}
