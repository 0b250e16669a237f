//! Outgoing mail. Every mail is first written to the outbox table in the same
//! transaction as the change that causes it, so a crash or an SMTP outage loses none;
//! a worker delivers the outbox afterwards.

pub mod outbox;
