//! Baohan (保函): an electronic-guarantee exchange and deposit-free credit platform.
//!
//! Layers, dependencies pointing downwards only: [`web`] → [`services`] →
//! [`domain`], [`db`], [`pki`]; [`mail`] uses [`db`]. See docs/ARCHITECTURE.md.

pub mod cli;
pub mod clock;
pub mod config;
pub mod data_dir;
pub mod db;
pub mod domain;
pub mod mail;
pub mod pki;
pub mod services;
pub mod startup;
pub mod web;

#[cfg(test)]
mod architecture;
