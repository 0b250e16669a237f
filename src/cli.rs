//! The command line: `serve`, `demo`, `migrate`, `bootstrap`, `import`, `verify`,
//! `pki`, `audit verify`.

pub mod import;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{MailTransport, Settings};
use crate::db;
use crate::services::demo::{self, DEMO_ACCOUNTS, DEMO_PASSWORD, DEMO_PROJECT_CODE};
use crate::startup::{init_tracing, Application};

#[derive(Debug, Parser)]
#[command(
    name = "baohan",
    version,
    about = "Electronic-guarantee exchange and deposit-free credit platform"
)]
pub struct Cli {
    /// A TOML configuration file; `BAOHAN_*` environment variables override it.
    #[arg(long, global = true, env = "BAOHAN_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the exchange (migrates the database first).
    Serve,
    /// Serve with demo data (on SQLite in the data directory unless BAOHAN_DATABASE_URL
    /// names another database), printing what to open.
    Demo,
    /// Bring the database schema up to date and exit.
    Migrate,
    /// Create the first operator on an empty database (production set-up). The password
    /// is read from BAOHAN_BOOTSTRAP_PASSWORD, never from the command line.
    Bootstrap {
        /// The operator organization's name (e.g. the city's credit office).
        #[arg(long)]
        name: String,
        /// Its unified social credit code.
        #[arg(long)]
        uscc: String,
        /// The operator user's name.
        #[arg(long, default_value = "operator")]
        username: String,
    },
    /// Import credit records from a CSV or NDJSON file into the configured database
    /// (migrates it first): batches in transactions, resumable after a crash, every
    /// rejected line reported by number and reason.
    #[command(after_help = import::after_help())]
    Import(import::ImportArgs),
    /// Verify a guarantee offline (no database): exits 0 PASSED, 1 FAILED, 2 INDETERMINATE.
    Verify(crate::pki::VerifyArgs),
    /// Demo PKI: make a CA, an issuer certificate, a CRL; revoke a certificate.
    Pki {
        #[command(subcommand)]
        command: crate::pki::PkiCommand,
    },
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Tools for receivers of the exchange's events.
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Check a received event's `Baohan-Signature` header against its body and the
    /// secret, on this machine's clock: exits 0 when it holds, 1 when it is refused
    /// (with the reason). Needs no configuration or database.
    Verify {
        /// The value of the `Baohan-Signature` header.
        #[arg(long)]
        signature: String,
        /// A file holding the request body exactly as received (`-`: standard input).
        #[arg(long)]
        body: std::path::PathBuf,
        /// The endpoint's secret; by default read from BAOHAN_WEBHOOK_SECRET, so that it
        /// stays out of the shell's history and the process list.
        #[arg(long, env = "BAOHAN_WEBHOOK_SECRET", hide_env_values = true)]
        secret: String,
    },
}

/// Runs `baohan webhook verify`: 0 when the signature holds now, 1 otherwise, 2 when
/// the body cannot be read.
fn webhook_verify(signature: &str, body: &std::path::Path, secret: &str) -> i32 {
    use std::io::Read;
    let read = if body == std::path::Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes).map(|_| bytes)
    } else {
        std::fs::read(body)
    };
    let bytes = match read {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("could not read the body {}: {e}", body.display());
            return 2;
        }
    };
    let now = chrono::Utc::now().timestamp();
    match crate::services::webhooks::signature::verify(secret, signature, &bytes, now) {
        Ok(()) => {
            println!("signature valid");
            0
        }
        Err(e) => {
            println!("signature refused: {e}");
            1
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the whole hash chain; exits 1 and names the first broken entry if any.
    Verify,
}

/// Runs the command and returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    // The offline tools need no configuration, database or logs.
    match cli.command {
        Command::Verify(args) => {
            return Ok(crate::pki::run_verify_cli(args, &mut std::io::stdout()))
        }
        Command::Pki { command } => {
            return Ok(crate::pki::run_pki_cli(command, &mut std::io::stdout()))
        }
        Command::Webhook {
            command:
                WebhookCommand::Verify {
                    signature,
                    body,
                    secret,
                },
        } => return Ok(webhook_verify(&signature, &body, &secret)),
        _ => {}
    }
    let settings = Settings::load(cli.config.as_deref())?;
    init_tracing(&settings.log);
    match cli.command {
        Command::Serve => {
            serve(settings)?;
            Ok(0)
        }
        Command::Demo => {
            demo(settings)?;
            Ok(0)
        }
        Command::Migrate => {
            db::connect(&settings.database_url(), 1)?;
            println!(
                "database is up to date: {}",
                redact_url(&settings.database_url())
            );
            Ok(0)
        }
        Command::Import(args) => import::run(settings, args),
        Command::Verify(_) | Command::Pki { .. } | Command::Webhook { .. } => {
            unreachable!("handled above")
        }
        Command::Bootstrap {
            name,
            uscc,
            username,
        } => {
            let password = std::env::var("BAOHAN_BOOTSTRAP_PASSWORD").map_err(|_| {
                anyhow::anyhow!("set BAOHAN_BOOTSTRAP_PASSWORD to the operator's password")
            })?;
            let pool = db::connect(&settings.database_url(), 1)?;
            let mut conn = pool.get()?;
            let user = crate::services::organizations::bootstrap_operator(
                &mut conn, &name, &uscc, &username, &password,
            )?;
            println!(
                "operator {} created; sign in at {}/api/v1/auth/login",
                user.username,
                settings.base_url()
            );
            Ok(0)
        }
        Command::Audit {
            command: AuditCommand::Verify,
        } => {
            // Read-only and never migrated: a mistyped data directory is an error, not
            // an empty log that verifies.
            let mut conn = db::open_existing_read_only(&settings.database_url())?;
            match db::audit::verify_chain(&mut conn)? {
                db::audit::ChainCheck::Intact { entries } => {
                    println!("audit log intact: {entries} entries");
                    Ok(0)
                }
                db::audit::ChainCheck::Broken { seq, reason } => {
                    println!("audit log BROKEN at entry {seq}: {reason}");
                    Ok(1)
                }
            }
        }
    }
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let listen = settings.listen;
        let app = Application::build(settings)?;
        tracing::info!(%listen, "baohan serving");
        app.run_until_stopped().await?;
        Ok(())
    })
}

/// The demo runs on the configured database (SQLite in the data directory by default,
/// or PostgreSQL); the data directory holds its PKI, the master key that seals the
/// hosted keys and the time-stamping authority either way, so a database seeded by the
/// demo goes with the data directory that seeded it. Every step adds only what is
/// missing: running it again keeps the data and adds nothing twice.
fn demo(mut settings: Settings) -> anyhow::Result<()> {
    settings.database_url = Some(settings.database_url());
    // Print the address actually served unless the operator named a public one.
    if std::env::var_os("BAOHAN_PUBLIC_BASE_URL").is_none()
        && settings.public_base_url == Settings::defaults().public_base_url
    {
        settings.public_base_url = format!("http://{}", settings.listen);
    }
    let pool = db::connect(&settings.database_url(), settings.database_pool_size)?;
    let mut conn = pool.get()?;
    let keys = crate::services::Keys::from_master(&settings.master_key()?)?;
    let seeded = demo::seed(&mut conn, &keys)?;
    drop(conn);
    let base = settings.base_url().to_owned();
    let listen = settings.listen;
    println!("Baohan demo");
    println!(
        "  database: {} (added now: {} organizations, {} users, {} projects)",
        redact_url(&settings.database_url()),
        seeded.organizations,
        seeded.users,
        seeded.projects
    );
    println!("  open:     {base}/   in a browser (sign in with a login below), {base}/verify to check a letter");
    println!("            API under {base}/api/v1, described at {base}/api/openapi.json");
    println!("  project:  {DEMO_PROJECT_CODE}");
    match settings.mail_transport {
        MailTransport::File => println!(
            "  mail:     written as .eml files to {}",
            settings.data_dir.join("mail").display()
        ),
        MailTransport::Smtp => println!(
            "  mail:     sent through {}:{}",
            settings.smtp_host, settings.smtp_port
        ),
    }
    println!("  logins (password for all: {DEMO_PASSWORD}):");
    for a in DEMO_ACCOUNTS {
        println!("    {:<12} {:<10} {}", a.username, a.role, a.name);
    }
    println!("  sign in:  curl -s -X POST {base}/api/v1/auth/login -H 'content-type: application/json' \\");
    println!("              -d '{{\"username\":\"agency\",\"password\":\"{DEMO_PASSWORD}\"}}'");
    let data_dir = settings.data_dir.clone();
    let tsa_dir = settings.tsa_dir();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let listener = std::net::TcpListener::bind(listen)
            .map_err(|e| anyhow::anyhow!("could not listen on {listen} (BAOHAN_LISTEN): {e}"))?;
        let app = Application::with_listener(settings, pool, listener)?;
        let ctx = app.context().clone();
        let pki = tokio::task::spawn_blocking(move || demo::seed_pki(&ctx, &data_dir)).await??;
        println!("  signing:");
        for line in pki {
            println!("    {line}");
        }
        println!(
            "    time-stamps: the exchange's TSA in {} (root for `baohan verify --tsa-ca`: root/ca.pem)",
            tsa_dir.display()
        );
        println!("  listening on {listen}; stop with Ctrl-C");
        app.run_until_stopped().await?;
        Ok(())
    })
}

/// A database URL without its password, for printing.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_in_database_urls_are_not_printed() {
        assert_eq!(
            redact_url("postgres://bh:s3cret@db:5432/bh"),
            "postgres://bh:***@db:5432/bh"
        );
        assert_eq!(redact_url("postgres://bh@db/bh"), "postgres://bh@db/bh");
        assert_eq!(
            redact_url("sqlite://data/baohan.db"),
            "sqlite://data/baohan.db"
        );
    }
}
