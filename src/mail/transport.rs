//! How a mail leaves the exchange: SMTP through a relay, or `.eml` files for the demo,
//! chosen by `BAOHAN_MAIL_TRANSPORT`. Messages are built here from an outbox row.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

use super::outbox::OutboxMail;
use crate::config::{MailTransport, Settings, SmtpSecurity};

/// How long one SMTP command may take. Kept well under the worker's claim lease, so a
/// send cannot outlive the claim and be picked up by another instance meanwhile.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The way out, as configured.
#[derive(Clone)]
pub enum Transport {
    /// A relay over SMTP (STARTTLS, implicit TLS, or plain for a local relay).
    Smtp(Box<AsyncSmtpTransport<Tokio1Executor>>),
    /// One `.eml` file per mail in a directory (`<data_dir>/mail` by default).
    File {
        transport: AsyncFileTransport<Tokio1Executor>,
        dir: PathBuf,
    },
}

impl std::fmt::Debug for Transport {
    // lettre's transports are not `Debug`; and the SMTP one holds the credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Smtp(_) => f.write_str("Transport::Smtp"),
            Transport::File { dir, .. } => write!(f, "Transport::File({})", dir.display()),
        }
    }
}

/// The transport cannot be set up from the settings.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("mail: could not create the mail directory {path}: {source}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
    #[error("mail: TLS parameters for {host} (BAOHAN_SMTP_HOST): {message}")]
    Tls { host: String, message: String },
    #[error("mail: the SMTP transport must be created inside a Tokio runtime")]
    NoRuntime,
    #[error("mail: BAOHAN_MAIL_FROM is not a mail address: {0}")]
    Sender(String),
}

/// One send went wrong. The message never contains the SMTP password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    pub message: String,
    /// Retrying cannot help (an unparsable address, a 5xx rejection): fail at once.
    pub permanent: bool,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl Transport {
    /// The transport the settings name. The SMTP transport keeps a connection pool
    /// whose housekeeping task is spawned here, hence the runtime requirement.
    pub fn from_settings(settings: &Settings) -> Result<Transport, TransportError> {
        match settings.mail_transport {
            MailTransport::File => Transport::file(settings.data_dir.join("mail")),
            MailTransport::Smtp => {
                if tokio::runtime::Handle::try_current().is_err() {
                    return Err(TransportError::NoRuntime);
                }
                let host = settings.smtp_host.as_str();
                let tls = |make: fn(TlsParameters) -> Tls| {
                    TlsParameters::new(host.to_owned())
                        .map(make)
                        .map_err(|e| TransportError::Tls {
                            host: host.to_owned(),
                            message: e.to_string(),
                        })
                };
                let tls = match settings.smtp_security {
                    // Required, not opportunistic: a relay that drops STARTTLS must not
                    // make us send credentials and mail in clear.
                    SmtpSecurity::Starttls => tls(Tls::Required)?,
                    SmtpSecurity::Tls => tls(Tls::Wrapper)?,
                    SmtpSecurity::None => Tls::None,
                };
                let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                    .port(settings.smtp_port)
                    .tls(tls)
                    .timeout(Some(SMTP_TIMEOUT));
                if let (Some(user), Some(password)) =
                    (&settings.smtp_username, &settings.smtp_password)
                {
                    builder = builder.credentials(Credentials::new(
                        user.clone(),
                        password.expose_secret().to_owned(),
                    ));
                }
                Ok(Transport::Smtp(Box::new(builder.build())))
            }
        }
    }

    /// Writes `.eml` files into `dir`, creating it.
    pub fn file(dir: PathBuf) -> Result<Transport, TransportError> {
        std::fs::create_dir_all(&dir).map_err(|source| TransportError::Directory {
            path: dir.display().to_string(),
            source,
        })?;
        Ok(Transport::File {
            transport: AsyncFileTransport::new(&dir),
            dir,
        })
    }

    /// Sends one message.
    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        match self {
            Transport::Smtp(smtp) => smtp.send(message).await.map(|_| ()).map_err(|e| SendError {
                permanent: e.is_permanent(),
                message: format!("SMTP: {e}"),
            }),
            Transport::File { transport, .. } => {
                transport
                    .send(message)
                    .await
                    .map(|_| ())
                    .map_err(|e| SendError {
                        permanent: false,
                        message: format!("writing the mail file: {e}"),
                    })
            }
        }
    }
}

/// Builds the MIME message of an outbox row: multipart/alternative with a text and an
/// HTML part. The Message-ID is derived from the outbox id, so that if a crash ever
/// makes us send a mail twice, the receiving side can tell it is the same mail.
pub fn build_message(from: &Mailbox, mail: &OutboxMail) -> Result<Message, SendError> {
    let to: Mailbox = mail.to_address.parse().map_err(|e| SendError {
        message: format!("the recipient address is not valid: {e}"),
        permanent: true,
    })?;
    let domain = from.email.domain();
    // Base64 for both parts: the bodies are mostly Chinese, for which it is the most
    // compact 7-bit encoding, and every relay passes it untouched.
    let part = |content_type: ContentType, body: &str| {
        SinglePart::builder().header(content_type).body(
            Body::new_with_encoding(body.to_owned(), ContentTransferEncoding::Base64)
                .unwrap_or_else(|_| unreachable!("base64 can carry any body")),
        )
    };
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.as_str())
        .message_id(Some(format!("<{}@{domain}>", mail.id)))
        .multipart(
            MultiPart::alternative()
                .singlepart(part(ContentType::TEXT_PLAIN, &mail.text_body))
                .singlepart(part(ContentType::TEXT_HTML, &mail.html_body)),
        )
        .map_err(|e| SendError {
            message: format!("could not build the message: {e}"),
            permanent: true,
        })
}

/// An error text safe to store and show: without the SMTP password (should a server
/// ever echo it) and of bounded length.
pub fn redact(message: &str, password: Option<&SecretString>) -> String {
    let mut text = message.to_owned();
    if let Some(p) = password
        .map(|p| p.expose_secret())
        .filter(|p| !p.is_empty())
    {
        text = text.replace(p, "***");
    }
    const MAX: usize = 1000;
    if text.len() > MAX {
        let mut end = MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::outbox::MailStatus;

    fn row(to: &str) -> OutboxMail {
        let now = chrono::Utc::now().naive_utc();
        OutboxMail {
            id: "0b9e7f52-9d6f-4a53-9d43-2a7f5d0d7c11".into(),
            to_address: to.into(),
            subject: "保函已出具 Guarantee issued".into(),
            text_body: "正文 text".into(),
            html_body: "<p>正文 html</p>".into(),
            status: MailStatus::Pending,
            attempts: 0,
            next_attempt_at: now,
            locked_until: None,
            last_error: None,
            created_at: now,
            sent_at: None,
            digest_key: None,
        }
    }

    #[test]
    fn a_message_has_a_text_and_an_html_part_and_a_stable_message_id() {
        let from: Mailbox = "Baohan <noreply@baohan.localhost>".parse().expect("from");
        let message = build_message(&from, &row("a@example.com")).expect("built");
        let raw = String::from_utf8(message.formatted()).expect("ascii");
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(raw.contains("text/plain"), "{raw}");
        assert!(raw.contains("text/html"), "{raw}");
        assert!(
            raw.contains("Message-ID: <0b9e7f52-9d6f-4a53-9d43-2a7f5d0d7c11@baohan.localhost>"),
            "{raw}"
        );
    }

    #[test]
    fn a_bad_recipient_is_a_permanent_error() {
        let from: Mailbox = "noreply@baohan.localhost".parse().expect("from");
        let err = build_message(&from, &row("not an address")).expect_err("refused");
        assert!(err.permanent);
    }

    #[test]
    fn errors_lose_the_password_and_stay_short() {
        let password = SecretString::from("hunter2-secret");
        let text = redact("535 auth failed for hunter2-secret", Some(&password));
        assert_eq!(text, "535 auth failed for ***");
        let long = "错".repeat(2000);
        assert!(redact(&long, None).len() <= 1000 + '…'.len_utf8());
    }
}
