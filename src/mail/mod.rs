//! Outgoing mail. Every mail is first written to the outbox table in the same
//! transaction as the change that causes it, so a crash or an SMTP outage loses none;
//! a worker delivers the outbox afterwards.
//!
//! Services render a mail with a function of [`templates`] (one per kind of notice) and
//! queue it with [`outbox::enqueue`] inside their transaction; [`worker::Worker`], started
//! by the application, sends it through the configured [`transport::Transport`].

pub mod outbox;
pub mod templates;
pub mod transport;
pub mod worker;
