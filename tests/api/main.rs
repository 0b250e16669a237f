//! Integration tests: the real server on port 0 with a fresh database. Every test runs
//! twice, on SQLite (a temp file) and on PostgreSQL (a database made for the test and
//! dropped after it) when `BAOHAN_TEST_POSTGRES_URL` is set.

mod fixtures;
mod helpers;

mod amendments;
mod application_limits;
mod auth;
mod browser;
mod browser_catalogue;
mod browser_flow;
mod browser_opening;
mod browser_phone;
mod browser_waivers;
mod certificates;
mod change_mails;
mod concurrency;
mod confidentiality;
mod crash_safety;
mod credit;
mod credit_disputes;
mod credit_import;
mod credit_looks;
mod database;
mod errors;
mod exchange;
mod health;
mod http;
mod idempotency;
mod input;
mod instances;
mod invariants;
mod lifecycle;
mod listing;
mod mail;
mod matters;
mod openapi;
mod openapi_fuzz;
mod organizations;
mod pages_agency;
mod pages_credit;
mod pages_credit_office;
mod pages_ei;
mod pages_operator;
mod pages_queue;
mod premium_terms;
mod projects;
mod revocation;
mod security;
mod stats;
mod three_instances;
mod timestamps;
mod tokens;
mod trust_rules;
mod waivers;
mod windows;
