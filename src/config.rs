//! Configuration: safe defaults for the demo, an optional TOML file, then `BAOHAN_*`
//! environment variables, in that order of precedence. A bad value stops start-up with
//! a message naming the setting; secrets are wrapped so they never print.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::domain::Calendar;

/// How outgoing mail leaves the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailTransport {
    /// Write each mail as an `.eml` file under `<data_dir>/mail` (the demo default).
    File,
    /// Send over SMTP.
    Smtp,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    Starttls,
    Tls,
    /// Plain TCP, for a relay on the same host (and for tests).
    None,
}

/// Every setting, as read. See the README's configuration table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `sqlite://path` or `postgres://...`; default: SQLite in the data directory.
    pub database_url: Option<String>,
    pub database_pool_size: u32,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub certs_dir: PathBuf,
    /// Public holidays and adjusted working days (调休) to add to the built-in PRC
    /// calendar, e.g. next year's once the State Council publishes them: a CSV of
    /// `date,kind,name` lines in the format of `src/domain/calendar/cn_holidays.csv`.
    pub holidays_file: Option<PathBuf>,
    /// The exchange's own time-stamping authority (`tsa.key.pem`, `tsa-chain.pem`, and
    /// the root its tokens chain to in `root/ca.pem`). Default `<data_dir>/tsa`, made
    /// there once when missing. Several instances must share it, like the master key.
    pub tsa_dir: Option<PathBuf>,
    /// The signature policy (accepted digests, keys, key usages, signing-time skew):
    /// a `[signature_policy]` table in the configuration file; fields left out keep
    /// their defaults (served at `GET /api/v1/signature-policy`).
    #[serde(default)]
    pub signature_policy: crate::pki::SignaturePolicy,
    /// The address users reach the exchange at; printed into letters and mails.
    pub public_base_url: String,
    /// 32 bytes in hex. Encrypts hosted issuer keys and keys the HMAC of ID numbers.
    /// Default: a random key made once and kept in `<data_dir>/master.key`.
    pub master_key: Option<SecretString>,
    pub max_body_bytes: usize,
    /// How long a client has to send a request's body, from the end of its headers; a
    /// body still arriving then is cut off with 408 and the connection closed.
    pub body_read_timeout_seconds: u64,
    /// How long a client has to send a request's headers once it connects (408 and
    /// the connection closed after that).
    pub header_read_timeout_seconds: u64,
    /// Sign-in attempts per client address and minute.
    pub rate_limit_login_per_minute: u32,
    /// Public verifications per client address and minute.
    pub rate_limit_verify_per_minute: u32,
    /// Sign-in attempts per account and minute, from all addresses together.
    pub rate_limit_login_per_account_per_minute: u32,
    /// Credit rights code checks per client address and minute (a provider's
    /// registration desks behind one address share it).
    pub rate_limit_rights_code_per_minute: u32,
    /// Verifications by number and code per guarantee number and minute, from all
    /// addresses together.
    pub rate_limit_verify_per_number_per_minute: u32,
    /// How long an API token works after it is made (at most; a shorter lifetime can be
    /// asked for when making it).
    pub api_token_lifetime_days: u32,
    /// Reverse proxies whose `X-Forwarded-For` names the client (addresses or CIDR
    /// networks; comma separated in the environment). Default: none, the socket peer is
    /// the client.
    pub trusted_proxies: TrustedProxies,
    pub mail_transport: MailTransport,
    pub mail_from: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_security: SmtpSecurity,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<SecretString>,
    /// How often the mail worker looks for due mail when the outbox is idle.
    pub mail_poll_interval_ms: u64,
    /// Wait before the first retry of a failed send; doubles on each further failure.
    pub mail_retry_base_ms: u64,
    /// Tries before a mail is marked failed for the operator.
    pub mail_max_attempts: u32,
    /// How long a worker's claim on a mail holds against other instances' workers; it
    /// is renewed while the send runs, so this is how soon a mail that a dead instance
    /// was sending goes again (at least 3).
    pub mail_lease_seconds: u32,
    /// How long an issuer's digest of new applications collects further applications
    /// before it is sent (0: it goes at the worker's next look, still taking whatever
    /// arrived by then).
    pub mail_digest_seconds: u32,
    /// The most applications an enterprise may have waiting at once (submitted, approved
    /// or paid, not yet issued).
    pub application_limit_waiting: u32,
    /// The most applications an enterprise may make in one day (China time), withdrawn
    /// ones included.
    pub application_limit_per_day: u32,
    /// How long the public statistics are served as computed before they are computed
    /// again (0: every request computes them).
    pub stats_cache_seconds: u32,
    /// How long a signed-in visitor's page may be served again as rendered, while no
    /// write has reached the database since (0: never; see `web::page_cache`).
    pub page_cache_seconds: u32,
    /// How many resolved credentials (sessions, API tokens) an instance on SQLite keeps
    /// in memory, so that a signed-in request reads one counter instead of its
    /// credential's rows (0: none; see `services::credential_cache`). A revocation is in
    /// force at the next request all the same. Nothing is kept on PostgreSQL.
    pub credential_cache_entries: u32,
    /// The largest attachment (an application's document, a claim's evidence) taken, in
    /// bytes; its upload may be this much larger than `max_body_bytes`, streamed to
    /// disk, never held in memory.
    pub attachment_max_bytes: u64,
    /// Sleep between the webhook worker's looks at its queue when nothing is due.
    pub webhook_poll_interval_ms: u64,
    /// Wait before an event's first redelivery; doubled after each further failure, up
    /// to an hour.
    pub webhook_retry_base_ms: u64,
    /// Tries before an event is marked failed (then only a manual redelivery sends it).
    pub webhook_max_attempts: u32,
    /// How long one delivery may take, connecting and answering together.
    pub webhook_timeout_ms: u64,
    /// Lets an endpoint be plain `http://` and resolve to a loopback or private address
    /// (tests and closed networks only): by default an endpoint must be `https://` on a
    /// public address, so that nobody can point the exchange at its own network.
    pub webhook_allow_private: bool,
    /// A CRL fetched from a distribution point is fetched again once its nextUpdate is
    /// less than this far away.
    pub revocation_fetch_margin_seconds: u64,
    /// A fetched CRL without nextUpdate is fetched again after this long.
    pub revocation_fetch_interval_seconds: u64,
    /// Connect and read timeout of one CRL fetch.
    pub revocation_fetch_timeout_ms: u64,
    /// A larger CRL response is refused.
    pub revocation_fetch_max_bytes: u64,
    /// How long an `Idempotency-Key` is remembered: a retry within it gets the first
    /// answer; after it the same key is a new request.
    pub idempotency_key_hours: u32,
    /// How long a request holds its `Idempotency-Key` while it runs; a request that died
    /// before its change committed is run again by a retry once this has passed. Longer
    /// than any request takes.
    pub idempotency_lease_seconds: u32,
    pub log: String,
}

/// The defaults, as figment's first layer.
#[derive(Serialize)]
struct Defaults {
    database_pool_size: u32,
    listen: &'static str,
    data_dir: &'static str,
    certs_dir: &'static str,
    public_base_url: &'static str,
    max_body_bytes: usize,
    body_read_timeout_seconds: u64,
    header_read_timeout_seconds: u64,
    rate_limit_login_per_minute: u32,
    rate_limit_verify_per_minute: u32,
    rate_limit_login_per_account_per_minute: u32,
    rate_limit_verify_per_number_per_minute: u32,
    rate_limit_rights_code_per_minute: u32,
    api_token_lifetime_days: u32,
    trusted_proxies: &'static [&'static str],
    mail_transport: MailTransport,
    mail_from: &'static str,
    smtp_host: &'static str,
    smtp_port: u16,
    smtp_security: SmtpSecurity,
    mail_poll_interval_ms: u64,
    mail_retry_base_ms: u64,
    mail_max_attempts: u32,
    mail_lease_seconds: u32,
    mail_digest_seconds: u32,
    application_limit_waiting: u32,
    application_limit_per_day: u32,
    stats_cache_seconds: u32,
    page_cache_seconds: u32,
    credential_cache_entries: u32,
    attachment_max_bytes: u64,
    webhook_poll_interval_ms: u64,
    webhook_retry_base_ms: u64,
    webhook_max_attempts: u32,
    webhook_timeout_ms: u64,
    webhook_allow_private: bool,
    revocation_fetch_margin_seconds: u64,
    revocation_fetch_interval_seconds: u64,
    revocation_fetch_timeout_ms: u64,
    revocation_fetch_max_bytes: u64,
    idempotency_key_hours: u32,
    idempotency_lease_seconds: u32,
    log: &'static str,
}

const DEFAULTS: Defaults = Defaults {
    database_pool_size: 8,
    listen: "127.0.0.1:8080",
    data_dir: "data",
    certs_dir: "certs",
    public_base_url: "http://127.0.0.1:8080",
    max_body_bytes: 256 * 1024,
    body_read_timeout_seconds: 30,
    header_read_timeout_seconds: 5,
    rate_limit_login_per_minute: 20,
    rate_limit_verify_per_minute: 300,
    rate_limit_login_per_account_per_minute: 10,
    rate_limit_verify_per_number_per_minute: 20,
    rate_limit_rights_code_per_minute: 600,
    api_token_lifetime_days: 365,
    trusted_proxies: &[],
    mail_transport: MailTransport::File,
    mail_from: "Baohan <noreply@baohan.localhost>",
    smtp_host: "127.0.0.1",
    smtp_port: 25,
    smtp_security: SmtpSecurity::Starttls,
    mail_poll_interval_ms: 5_000,
    mail_retry_base_ms: 60_000,
    mail_max_attempts: 8,
    mail_lease_seconds: 30,
    mail_digest_seconds: 120,
    application_limit_waiting: 20,
    application_limit_per_day: 50,
    stats_cache_seconds: 10,
    page_cache_seconds: 2,
    credential_cache_entries: 100_000,
    attachment_max_bytes: 10 * 1024 * 1024,
    webhook_poll_interval_ms: 2_000,
    webhook_retry_base_ms: 30_000,
    webhook_max_attempts: 10,
    webhook_timeout_ms: 10_000,
    webhook_allow_private: false,
    revocation_fetch_margin_seconds: 3600,
    revocation_fetch_interval_seconds: 3600,
    revocation_fetch_timeout_ms: 5_000,
    revocation_fetch_max_bytes: 10 * 1024 * 1024,
    idempotency_key_hours: 24,
    idempotency_lease_seconds: 60,
    log: "info",
};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Invalid(String),
    #[error("configuration: setting {setting}: {message}")]
    Setting {
        setting: &'static str,
        message: String,
    },
    #[error("configuration: could not use the master key file {path}: {source}")]
    MasterKeyFile {
        path: String,
        source: std::io::Error,
    },
}

/// The settings whose values are text (or paths) whatever they look like.
const TEXT_SETTINGS: &[&str] = &[
    "database_url",
    "data_dir",
    "certs_dir",
    "holidays_file",
    "tsa_dir",
    "public_base_url",
    "master_key",
    "mail_from",
    "smtp_host",
    "smtp_username",
    "smtp_password",
    "log",
];

impl Settings {
    /// Reads the layers: defaults, then `file` (if given and present), then the
    /// environment (`BAOHAN_DATABASE_URL`, `BAOHAN_LISTEN`, ...).
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(DEFAULTS));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Invalid(format!(
                    "the configuration file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file(file));
        }
        // BAOHAN_CONFIG names the file and BAOHAN_BOOTSTRAP_PASSWORD is read by one
        // command; BAOHAN_TEST_* and BAOHAN_LOAD_* belong to the tests and the load
        // script. Any other unknown BAOHAN_ variable is a typo worth an error.
        let env = Env::prefixed("BAOHAN_").filter(|key| {
            let key = key.as_str().to_ascii_lowercase();
            !matches!(key.as_str(), "config" | "bootstrap_password")
                && !key.starts_with("test_")
                && !key.starts_with("load_")
                && !TEXT_SETTINGS.contains(&key.as_str())
        });
        // Text settings are taken as the text they are: figment would read
        // `BAOHAN_SMTP_PASSWORD=12345678` as a number and `=true` as a boolean, which a
        // text setting then refuses.
        let text: std::collections::BTreeMap<&str, String> = TEXT_SETTINGS
            .iter()
            .filter_map(|key| {
                let value = std::env::var(format!("BAOHAN_{}", key.to_ascii_uppercase())).ok()?;
                Some((*key, value))
            })
            .collect();
        let figment = figment.merge(env).merge(Serialized::defaults(text));
        let settings: Settings = figment
            .extract()
            .map_err(|e| ConfigError::Invalid(describe(e)))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Settings for tests and tools: the defaults with the given overrides applied.
    pub fn defaults() -> Settings {
        Figment::from(Serialized::defaults(DEFAULTS))
            .extract()
            .unwrap_or_else(|e| unreachable!("built-in defaults are valid: {e}"))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.database_url {
            let (backend, path) =
                crate::db::Backend::from_url(url).map_err(|e| ConfigError::Setting {
                    setting: "BAOHAN_DATABASE_URL",
                    message: e.to_string(),
                })?;
            // Each pooled connection to an in-memory SQLite database would be a database
            // of its own, without the schema the first one was migrated to.
            let in_memory = path.is_empty()
                || path == ":memory:"
                || path.starts_with("file::memory:")
                || path.contains("mode=memory");
            if backend == crate::db::Backend::Sqlite && in_memory {
                return Err(ConfigError::Setting {
                    setting: "BAOHAN_DATABASE_URL",
                    message: "must name a SQLite file (an in-memory database cannot be shared \
                              by the pool's connections)"
                        .into(),
                });
            }
        }
        tracing_subscriber::EnvFilter::try_new(&self.log).map_err(|e| ConfigError::Setting {
            setting: "BAOHAN_LOG",
            message: format!("is not a log filter (e.g. `info` or `baohan=debug,warn`): {e}"),
        })?;
        if self.database_pool_size == 0 {
            return Err(ConfigError::Setting {
                setting: "BAOHAN_DATABASE_POOL_SIZE",
                message: "must be at least 1".into(),
            });
        }
        let base_ok = (self.public_base_url.starts_with("http://")
            || self.public_base_url.starts_with("https://"))
            && self
                .public_base_url
                .parse::<actix_web::http::Uri>()
                .is_ok_and(|uri| {
                    uri.host().is_some_and(|h| !h.is_empty()) && uri.query().is_none()
                });
        if !base_ok {
            return Err(ConfigError::Setting {
                setting: "BAOHAN_PUBLIC_BASE_URL",
                message: "must be an http:// or https:// URL with a host and no spaces or \
                          query (it is printed into letters and mails)"
                    .into(),
            });
        }
        if let Some(key) = &self.master_key {
            parse_master_key(key.expose_secret()).map_err(|message| ConfigError::Setting {
                setting: "BAOHAN_MASTER_KEY",
                message,
            })?;
        }
        for (setting, value) in [
            (
                "BAOHAN_RATE_LIMIT_LOGIN_PER_MINUTE",
                self.rate_limit_login_per_minute,
            ),
            (
                "BAOHAN_RATE_LIMIT_VERIFY_PER_MINUTE",
                self.rate_limit_verify_per_minute,
            ),
            (
                "BAOHAN_RATE_LIMIT_LOGIN_PER_ACCOUNT_PER_MINUTE",
                self.rate_limit_login_per_account_per_minute,
            ),
            (
                "BAOHAN_RATE_LIMIT_VERIFY_PER_NUMBER_PER_MINUTE",
                self.rate_limit_verify_per_number_per_minute,
            ),
            (
                "BAOHAN_RATE_LIMIT_RIGHTS_CODE_PER_MINUTE",
                self.rate_limit_rights_code_per_minute,
            ),
            (
                "BAOHAN_API_TOKEN_LIFETIME_DAYS",
                self.api_token_lifetime_days,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Setting {
                    setting,
                    message: "must be at least 1".into(),
                });
            }
        }
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::Setting {
                setting: "BAOHAN_MAX_BODY_BYTES",
                message: "must be at least 1024".into(),
            });
        }
        self.mail_from
            .parse::<lettre::message::Mailbox>()
            .map_err(|e| ConfigError::Setting {
                setting: "BAOHAN_MAIL_FROM",
                message: format!("is not a mail address: {e}"),
            })?;
        // Credentials come as a pair; half of one is a typo, not "no authentication".
        match (&self.smtp_username, &self.smtp_password) {
            (Some(_), None) => {
                return Err(ConfigError::Setting {
                    setting: "BAOHAN_SMTP_PASSWORD",
                    message: "is required when BAOHAN_SMTP_USERNAME is set".into(),
                })
            }
            (None, Some(_)) => {
                return Err(ConfigError::Setting {
                    setting: "BAOHAN_SMTP_USERNAME",
                    message: "is required when BAOHAN_SMTP_PASSWORD is set".into(),
                })
            }
            _ => {}
        }
        if self.mail_poll_interval_ms == 0 {
            return Err(ConfigError::Setting {
                setting: "BAOHAN_MAIL_POLL_INTERVAL_MS",
                message: "must be at least 1".into(),
            });
        }
        for (setting, value) in [
            (
                "BAOHAN_WEBHOOK_POLL_INTERVAL_MS",
                self.webhook_poll_interval_ms,
            ),
            ("BAOHAN_WEBHOOK_TIMEOUT_MS", self.webhook_timeout_ms),
            ("BAOHAN_ATTACHMENT_MAX_BYTES", self.attachment_max_bytes),
            (
                "BAOHAN_WEBHOOK_MAX_ATTEMPTS",
                u64::from(self.webhook_max_attempts),
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Setting {
                    setting,
                    message: "must be at least 1".into(),
                });
            }
        }
        if self.attachment_max_bytes > 256 * 1024 * 1024 {
            return Err(ConfigError::Setting {
                setting: "BAOHAN_ATTACHMENT_MAX_BYTES",
                message: "must be at most 268435456 (256 MiB): a download is read whole".into(),
            });
        }
        if self.mail_max_attempts == 0 {
            return Err(ConfigError::Setting {
                setting: "BAOHAN_MAIL_MAX_ATTEMPTS",
                message: "must be at least 1".into(),
            });
        }
        for (setting, value) in [
            (
                "BAOHAN_BODY_READ_TIMEOUT_SECONDS",
                self.body_read_timeout_seconds,
            ),
            (
                "BAOHAN_HEADER_READ_TIMEOUT_SECONDS",
                self.header_read_timeout_seconds,
            ),
            (
                "BAOHAN_REVOCATION_FETCH_INTERVAL_SECONDS",
                self.revocation_fetch_interval_seconds,
            ),
            (
                "BAOHAN_REVOCATION_FETCH_TIMEOUT_MS",
                self.revocation_fetch_timeout_ms,
            ),
            (
                "BAOHAN_REVOCATION_FETCH_MAX_BYTES",
                self.revocation_fetch_max_bytes,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Setting {
                    setting,
                    message: "must be at least 1".into(),
                });
            }
        }
        if self.mail_lease_seconds < 3 {
            return Err(ConfigError::Setting {
                setting: "BAOHAN_MAIL_LEASE_SECONDS",
                message: "must be at least 3 (the claim is renewed every third of it)".into(),
            });
        }
        for (setting, value) in [
            (
                "BAOHAN_APPLICATION_LIMIT_WAITING",
                self.application_limit_waiting,
            ),
            (
                "BAOHAN_APPLICATION_LIMIT_PER_DAY",
                self.application_limit_per_day,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Setting {
                    setting,
                    message: "must be at least 1".into(),
                });
            }
        }
        if self.idempotency_key_hours == 0 {
            return Err(ConfigError::Setting {
                setting: "BAOHAN_IDEMPOTENCY_KEY_HOURS",
                message: "must be at least 1".into(),
            });
        }
        if self.idempotency_lease_seconds == 0
            || u64::from(self.idempotency_lease_seconds)
                >= u64::from(self.idempotency_key_hours) * 3600
        {
            return Err(ConfigError::Setting {
                setting: "BAOHAN_IDEMPOTENCY_LEASE_SECONDS",
                message: "must be at least 1 and shorter than the keys' life \
                          (BAOHAN_IDEMPOTENCY_KEY_HOURS)"
                    .into(),
            });
        }
        Ok(())
    }

    /// How long idempotency keys live and hold.
    pub fn idempotency(&self) -> crate::services::idempotency::Policy {
        crate::services::idempotency::Policy {
            lifetime: chrono::Duration::hours(i64::from(self.idempotency_key_hours)),
            lease: chrono::Duration::seconds(i64::from(self.idempotency_lease_seconds)),
        }
    }

    /// How CRLs are fetched from the distribution points certificates name.
    pub fn revocation_fetching(&self) -> crate::services::crl_fetch::RevocationFetching {
        use std::time::Duration;
        crate::services::crl_fetch::RevocationFetching {
            margin: Duration::from_secs(self.revocation_fetch_margin_seconds),
            interval: Duration::from_secs(self.revocation_fetch_interval_seconds),
            timeout: Duration::from_millis(self.revocation_fetch_timeout_ms),
            max_bytes: self.revocation_fetch_max_bytes,
        }
    }

    /// The business-day calendar in force: the built-in PRC holidays plus the
    /// operator's [`Settings::holidays_file`]. A bad line stops start-up, naming it.
    pub fn calendar(&self) -> Result<Calendar, ConfigError> {
        let builtin = Calendar::builtin();
        let Some(path) = &self.holidays_file else {
            return Ok(builtin.clone());
        };
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Setting {
            setting: "BAOHAN_HOLIDAYS_FILE",
            message: format!("cannot read {}: {e}", path.display()),
        })?;
        builtin
            .with_additions(&text)
            .map_err(|e| ConfigError::Setting {
                setting: "BAOHAN_HOLIDAYS_FILE",
                message: format!("{}: {e}", path.display()),
            })
    }

    /// Where the exchange's time-stamping authority lives.
    pub fn tsa_dir(&self) -> PathBuf {
        self.tsa_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("tsa"))
    }

    /// The database URL in force: the setting, or SQLite in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("baohan.db").display()),
        }
    }

    /// The SQLite file in force as diesel opens it, or `None` on PostgreSQL.
    pub fn sqlite_path(&self) -> Option<String> {
        match crate::db::Backend::from_url(&self.database_url()) {
            Ok((crate::db::Backend::Sqlite, path)) => Some(path),
            _ => None,
        }
    }

    /// The public base URL without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.public_base_url.trim_end_matches('/')
    }

    /// The master key: the setting, else the key file in the data directory, made with
    /// a random key (readable by the owner only) the first time, by one process even
    /// when several start together on the directory (see [`crate::data_dir`]).
    pub fn master_key(&self) -> Result<MasterKey, ConfigError> {
        if let Some(key) = &self.master_key {
            return parse_master_key(key.expose_secret())
                .map(MasterKey)
                .map_err(|message| ConfigError::Setting {
                    setting: "BAOHAN_MASTER_KEY",
                    message,
                });
        }
        let path = self.data_dir.join("master.key");
        let io = |source| ConfigError::MasterKeyFile {
            path: path.display().to_string(),
            source,
        };
        crate::data_dir::make_once(
            &self.data_dir.join("master.key.lock"),
            || path.exists(),
            || {
                let mut key = [0u8; 32];
                rand::Rng::fill(&mut rand::rngs::OsRng, &mut key[..]);
                crate::data_dir::write_private_file(&path, hex::encode(key).as_bytes())
            },
        )
        .map_err(io)?;
        let text = std::fs::read_to_string(&path).map_err(io)?;
        parse_master_key(text.trim())
            .map(MasterKey)
            .map_err(|message| ConfigError::Setting {
                setting: "master.key file",
                message,
            })
    }
}

fn parse_master_key(text: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(text)
        .map_err(|_| "must be 64 hexadecimal characters (32 bytes)".to_string())?;
    bytes
        .try_into()
        .map_err(|_| "must be 64 hexadecimal characters (32 bytes)".to_string())
}

/// Names the setting the way an operator wrote it: `BAOHAN_X` for the environment.
fn describe(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let from_env = e
                .metadata
                .as_ref()
                .map(|m| m.name.contains("environment"))
                .unwrap_or(false);
            let setting = if from_env {
                format!("BAOHAN_{}", key.to_uppercase())
            } else {
                key
            };
            let kind = e.kind.to_string();
            if setting.is_empty() {
                kind
            } else {
                format!("setting {setting}: {kind}")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The reverse proxies in front of the exchange: requests from these addresses carry
/// the client's address in `X-Forwarded-For`. Written as addresses or CIDR networks
/// (`10.0.0.0/8`, `127.0.0.1`, `::1`), as a TOML list or one comma-separated string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<ipnet::IpNet>);

impl TrustedProxies {
    /// Whether `address` is one of the proxies.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|net| net.contains(&address))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn parse_entry(entry: &str) -> Result<ipnet::IpNet, String> {
        let entry = entry.trim();
        entry
            .parse::<ipnet::IpNet>()
            .or_else(|_| entry.parse::<IpAddr>().map(ipnet::IpNet::from))
            .map(|net| net.trunc())
            .map_err(|_| format!("{entry:?} is not an IP address or CIDR network"))
    }
}

impl std::str::FromStr for TrustedProxies {
    type Err = String;

    /// Comma-separated entries; blank entries are ignored.
    fn from_str(list: &str) -> Result<TrustedProxies, String> {
        list.split(',')
            .filter(|entry| !entry.trim().is_empty())
            .map(TrustedProxies::parse_entry)
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }
}

impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;

        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = TrustedProxies;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("IP addresses or CIDR networks, as a list or comma separated")
            }

            fn visit_str<E: serde::de::Error>(self, list: &str) -> Result<TrustedProxies, E> {
                list.parse().map_err(E::custom)
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<TrustedProxies, A::Error> {
                let mut nets = Vec::new();
                while let Some(entry) = seq.next_element::<String>()? {
                    nets.push(
                        TrustedProxies::parse_entry(&entry).map_err(serde::de::Error::custom)?,
                    );
                }
                Ok(TrustedProxies(nets))
            }
        }

        deserializer.deserialize_any(Entries)
    }
}

/// The 32-byte master key. Its `Debug` does not print it.
#[derive(Clone)]
pub struct MasterKey(pub(crate) [u8; 32]);

impl MasterKey {
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A key for one purpose, derived so that no two uses share key material.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

#[cfg(test)]
// figment's `Jail` closures must return its (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_point_at_sqlite_in_the_data_dir() {
        let s = Settings::defaults();
        assert!(s.validate().is_ok());
        assert_eq!(s.database_url(), "sqlite://data/baohan.db");
        assert_eq!(s.listen.port(), 8080);
    }

    #[test]
    fn the_operators_holidays_are_added_to_the_builtin_calendar() {
        use chrono::NaiveDate;
        figment::Jail::expect_with(|jail| {
            // A year the built-in data does not know yet, as the State Council might
            // publish it: New Year's Day on a Friday, and a Saturday made a working day.
            jail.create_file(
                "holidays.csv",
                "date,kind,name\n2041-01-01,holiday,元旦\n2041-01-05,workday,元旦\n",
            )?;
            jail.set_env("BAOHAN_HOLIDAYS_FILE", "holidays.csv");
            let load = || Settings::load(None).map_err(|e| e.to_string());
            let calendar = load()?.calendar().map_err(|e| e.to_string())?;
            let day = |m, d| NaiveDate::from_ymd_opt(2041, m, d).expect("date");
            assert!(!calendar.is_business_day(day(1, 1)));
            assert!(calendar.is_business_day(day(1, 5)));
            assert!(calendar.covers_year(2041));
            // The built-in years are still there.
            assert!(calendar.covers_year(2025));

            jail.create_file(
                "holidays.csv",
                "2041-01-01,holiday,元旦\n2041-13-01,holiday,x\n",
            )?;
            let err = load()?.calendar().unwrap_err().to_string();
            assert!(
                err.contains("BAOHAN_HOLIDAYS_FILE") && err.contains("line 2"),
                "{err}"
            );
            jail.set_env("BAOHAN_HOLIDAYS_FILE", "missing.csv");
            let err = load()?.calendar().unwrap_err().to_string();
            assert!(err.contains("missing.csv"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn idempotency_keys_live_a_day_and_a_lease_must_be_shorter() {
        let policy = Settings::defaults().idempotency();
        assert_eq!(policy, crate::services::idempotency::Policy::default());
        assert_eq!(policy.lifetime, chrono::Duration::hours(24));
        figment::Jail::expect_with(|jail| {
            jail.set_env("BAOHAN_IDEMPOTENCY_KEY_HOURS", "48");
            jail.set_env("BAOHAN_IDEMPOTENCY_LEASE_SECONDS", "2");
            let s = Settings::load(None).map_err(|e| e.to_string())?;
            assert_eq!(s.idempotency().lifetime, chrono::Duration::hours(48));
            assert_eq!(s.idempotency().lease, chrono::Duration::seconds(2));
            jail.set_env("BAOHAN_IDEMPOTENCY_KEY_HOURS", "1");
            jail.set_env("BAOHAN_IDEMPOTENCY_LEASE_SECONDS", "3600");
            let err = Settings::load(None).unwrap_err().to_string();
            assert!(err.contains("BAOHAN_IDEMPOTENCY_LEASE_SECONDS"), "{err}");
            jail.set_env("BAOHAN_IDEMPOTENCY_KEY_HOURS", "0");
            let err = Settings::load(None).unwrap_err().to_string();
            assert!(err.contains("BAOHAN_IDEMPOTENCY_KEY_HOURS"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_bad_environment_value_names_the_setting() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("BAOHAN_DATABASE_POOL_SIZE", "lots");
            let err = Settings::load(None).unwrap_err().to_string();
            assert!(err.contains("BAOHAN_DATABASE_POOL_SIZE"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn an_unknown_variable_is_refused_but_the_harness_variables_are_not() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("BAOHAN_TEST_POSTGRES_URL", "postgres://x");
            jail.set_env("BAOHAN_CONFIG", "elsewhere.toml");
            assert!(Settings::load(None).is_ok());
            jail.set_env("BAOHAN_LISTN", "127.0.0.1:1");
            let err = Settings::load(None).unwrap_err().to_string();
            assert!(err.contains("listn"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn text_settings_are_text_whatever_they_look_like() {
        figment::Jail::expect_with(|jail| {
            let digits = "0123456789".repeat(7)[..64].to_owned();
            jail.set_env("BAOHAN_SMTP_PASSWORD", "12345678");
            jail.set_env("BAOHAN_SMTP_USERNAME", "10086");
            jail.set_env("BAOHAN_SMTP_HOST", "true");
            jail.set_env("BAOHAN_MASTER_KEY", &digits);
            let s = Settings::load(None).map_err(|e| e.to_string())?;
            assert_eq!(
                s.smtp_password
                    .as_ref()
                    .map(|p| p.expose_secret().to_owned()),
                Some("12345678".to_owned())
            );
            assert_eq!(s.smtp_username.as_deref(), Some("10086"));
            assert_eq!(s.smtp_host, "true");
            assert_eq!(
                s.master_key.as_ref().map(|k| k.expose_secret().to_owned()),
                Some(digits)
            );
            // Numbers stay numbers.
            jail.set_env("BAOHAN_SMTP_PORT", "2525");
            assert_eq!(
                Settings::load(None).map_err(|e| e.to_string())?.smtp_port,
                2525
            );
            Ok(())
        });
    }

    #[test]
    fn the_read_timeouts_are_settings_and_never_zero() {
        figment::Jail::expect_with(|jail| {
            let s = Settings::load(None).map_err(|e| e.to_string())?;
            assert_eq!(
                (s.body_read_timeout_seconds, s.header_read_timeout_seconds),
                (30, 5)
            );
            jail.set_env("BAOHAN_BODY_READ_TIMEOUT_SECONDS", "7");
            jail.set_env("BAOHAN_HEADER_READ_TIMEOUT_SECONDS", "2");
            let s = Settings::load(None).map_err(|e| e.to_string())?;
            assert_eq!(
                (s.body_read_timeout_seconds, s.header_read_timeout_seconds),
                (7, 2)
            );
            // Zero would mean no deadline at all for the headers.
            jail.set_env("BAOHAN_HEADER_READ_TIMEOUT_SECONDS", "0");
            let err = Settings::load(None).unwrap_err().to_string();
            assert!(err.contains("BAOHAN_HEADER_READ_TIMEOUT_SECONDS"), "{err}");
            jail.set_env("BAOHAN_HEADER_READ_TIMEOUT_SECONDS", "2");
            jail.set_env("BAOHAN_BODY_READ_TIMEOUT_SECONDS", "0");
            let err = Settings::load(None).unwrap_err().to_string();
            assert!(err.contains("BAOHAN_BODY_READ_TIMEOUT_SECONDS"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn settings_that_cannot_work_stop_start_up_naming_the_setting() {
        for (setting, value) in [
            ("BAOHAN_DATABASE_URL", "sqlite://:memory:"),
            ("BAOHAN_DATABASE_URL", "sqlite://"),
            ("BAOHAN_DATABASE_URL", "sqlite://file::memory:?cache=shared"),
            ("BAOHAN_LOG", "info,,=[=garbage"),
            ("BAOHAN_PUBLIC_BASE_URL", "https://baohan example.cn"),
            ("BAOHAN_PUBLIC_BASE_URL", "https://"),
            ("BAOHAN_PUBLIC_BASE_URL", "ftp://baohan.example.cn"),
        ] {
            figment::Jail::expect_with(|jail| {
                jail.set_env(setting, value);
                let err = Settings::load(None).unwrap_err().to_string();
                assert!(err.contains(setting), "{value}: {err}");
                Ok(())
            });
        }
    }

    #[test]
    fn a_bad_database_scheme_names_the_setting() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("BAOHAN_DATABASE_URL", "mysql://localhost/x");
            let err = Settings::load(None).unwrap_err().to_string();
            assert!(err.contains("BAOHAN_DATABASE_URL"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn the_file_is_overridden_by_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "baohan.toml",
                "listen = \"127.0.0.1:9000\"\nlog = \"debug\"\n",
            )?;
            jail.set_env("BAOHAN_LOG", "warn");
            let s = Settings::load(Some(Path::new("baohan.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(s.listen.port(), 9000);
            assert_eq!(s.log, "warn");
            Ok(())
        });
    }

    #[test]
    fn the_signature_policy_can_be_tightened_in_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "baohan.toml",
                "[signature_policy]\nrsa_min_bits = 3072\nmax_signing_time_skew_seconds = 60\n",
            )?;
            let s = Settings::load(Some(Path::new("baohan.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(s.signature_policy.rsa_min_bits, Some(3072));
            assert_eq!(s.signature_policy.max_signing_time_skew_seconds, 60);
            // What the file does not name keeps the default.
            let default = crate::pki::SignaturePolicy::default();
            assert_eq!(s.signature_policy.ec_curves, default.ec_curves);
            assert_eq!(Settings::defaults().signature_policy, default);
            jail.create_file("baohan.toml", "[signature_policy]\nrsa_min_bitz = 1024\n")?;
            let err = Settings::load(Some(Path::new("baohan.toml")))
                .unwrap_err()
                .to_string();
            assert!(err.contains("rsa_min_bitz"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_short_master_key_is_refused_and_never_echoed() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("BAOHAN_MASTER_KEY", "abcdef-secret");
            let err = Settings::load(None).unwrap_err().to_string();
            assert!(err.contains("BAOHAN_MASTER_KEY"), "{err}");
            assert!(!err.contains("abcdef-secret"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn bad_mail_settings_name_the_setting() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("BAOHAN_MAIL_FROM", "not a mailbox");
            let err = Settings::load(None).unwrap_err().to_string();
            assert!(err.contains("BAOHAN_MAIL_FROM"), "{err}");
            jail.set_env("BAOHAN_MAIL_FROM", "Baohan <noreply@example.com>");
            jail.set_env("BAOHAN_SMTP_USERNAME", "relay-user");
            let err = Settings::load(None).unwrap_err().to_string();
            assert!(err.contains("BAOHAN_SMTP_PASSWORD"), "{err}");
            jail.set_env("BAOHAN_SMTP_PASSWORD", "relay-secret");
            jail.set_env("BAOHAN_MAIL_MAX_ATTEMPTS", "0");
            let err = Settings::load(None).unwrap_err().to_string();
            assert!(err.contains("BAOHAN_MAIL_MAX_ATTEMPTS"), "{err}");
            assert!(!err.contains("relay-secret"), "{err}");
            jail.set_env("BAOHAN_MAIL_MAX_ATTEMPTS", "3");
            jail.set_env("BAOHAN_MAIL_RETRY_BASE_MS", "250");
            let s = Settings::load(None).map_err(|e| e.to_string())?;
            assert_eq!((s.mail_max_attempts, s.mail_retry_base_ms), (3, 250));
            jail.set_env("BAOHAN_MAIL_LEASE_SECONDS", "2");
            let err = Settings::load(None).unwrap_err().to_string();
            assert!(err.contains("BAOHAN_MAIL_LEASE_SECONDS"), "{err}");
            jail.set_env("BAOHAN_MAIL_LEASE_SECONDS", "3");
            assert_eq!(
                Settings::load(None)
                    .map_err(|e| e.to_string())?
                    .mail_lease_seconds,
                3
            );
            Ok(())
        });
    }

    #[test]
    fn application_limits_are_settings() {
        figment::Jail::expect_with(|jail| {
            let s = Settings::load(None).map_err(|e| e.to_string())?;
            assert_eq!(
                (s.application_limit_waiting, s.application_limit_per_day),
                (20, 50)
            );
            jail.set_env("BAOHAN_APPLICATION_LIMIT_PER_DAY", "0");
            let err = Settings::load(None).unwrap_err().to_string();
            assert!(err.contains("BAOHAN_APPLICATION_LIMIT_PER_DAY"), "{err}");
            jail.set_env("BAOHAN_APPLICATION_LIMIT_PER_DAY", "7");
            jail.set_env("BAOHAN_APPLICATION_LIMIT_WAITING", "3");
            let s = Settings::load(None).map_err(|e| e.to_string())?;
            assert_eq!(
                (s.application_limit_waiting, s.application_limit_per_day),
                (3, 7)
            );
            Ok(())
        });
    }

    #[test]
    fn trusted_proxies_come_from_the_environment_or_the_file() {
        figment::Jail::expect_with(|jail| {
            assert!(Settings::load(None)
                .map_err(|e| e.to_string())?
                .trusted_proxies
                .is_empty());
            jail.create_file(
                "baohan.toml",
                "trusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n",
            )?;
            let s = Settings::load(Some(Path::new("baohan.toml"))).map_err(|e| e.to_string())?;
            assert!(s.trusted_proxies.contains("10.1.2.3".parse().expect("ip")));
            assert!(s.trusted_proxies.contains("::1".parse().expect("ip")));
            assert!(!s.trusted_proxies.contains("127.0.0.1".parse().expect("ip")));

            jail.set_env("BAOHAN_TRUSTED_PROXIES", "127.0.0.1, 192.168.0.0/16");
            let s = Settings::load(Some(Path::new("baohan.toml"))).map_err(|e| e.to_string())?;
            assert!(s.trusted_proxies.contains("127.0.0.1".parse().expect("ip")));
            // An IPv4 peer seen through an IPv6 socket is the same address.
            assert!(s
                .trusted_proxies
                .contains("::ffff:192.168.7.1".parse().expect("ip")));
            assert!(!s.trusted_proxies.contains("10.1.2.3".parse().expect("ip")));
            assert!(!s.trusted_proxies.contains("127.0.0.2".parse().expect("ip")));

            jail.set_env("BAOHAN_TRUSTED_PROXIES", "127.0.0.1,proxy.example");
            let err = Settings::load(None).unwrap_err().to_string();
            assert!(err.contains("BAOHAN_TRUSTED_PROXIES"), "{err}");
            assert!(err.contains("proxy.example"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn the_master_key_file_is_made_once_and_reused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut s = Settings::defaults();
        s.data_dir = dir.path().to_path_buf();
        let first = s.master_key().expect("made");
        let second = s.master_key().expect("read");
        assert_eq!(first.bytes(), second.bytes());
        assert_eq!(format!("{first:?}"), "MasterKey([redacted])");
    }
}
