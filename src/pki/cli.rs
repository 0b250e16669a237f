//! Logic behind `baohan verify` (offline verification) and `baohan pki` (demo PKI).
//! The binary wires these into clap; everything testable lives here.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};

use crate::pki::demo::{serial_hex, DemoCa, IssuerSpec, KeyType, RevokedSerial, TsaSpec};
use crate::pki::document::{MAX_DOCUMENT_BYTES, MAX_SIGNATURE_BYTES};
use crate::pki::gm::{Sm2Ca, Sm2IssuerSpec};
use crate::pki::timestamp::TsaTrust;
use crate::pki::trust::TrustStoreBuilder;
use crate::pki::verify::{format_failure_report, Expectations, VerificationEngine, VerifyOptions};

/// Exit code for unusable arguments (sysexits `EX_USAGE`), distinct from the 0/1/2 of
/// PASSED/FAILED/INDETERMINATE.
pub const EXIT_USAGE: i32 = 64;

/// Largest CA or CRL file the CLI reads.
const MAX_TRUST_FILE_BYTES: usize = 4 * 1024 * 1024;

/// Arguments of `baohan verify`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct VerifyArgs {
    /// The document (`NO.json`).
    // The hidden placeholder default only lets `--policy` run alone: without `--policy`
    // the argument is still required.
    #[arg(
        long,
        required_unless_present = "policy",
        default_value = "-",
        hide_default_value = true
    )]
    pub document: PathBuf,
    /// The detached signature (`NO.p7s`).
    #[arg(
        long,
        required_unless_present = "policy",
        default_value = "-",
        hide_default_value = true
    )]
    pub signature: PathBuf,
    /// Trust anchors: PEM/DER files, or directories of them (CRLs there are loaded too).
    #[arg(long)]
    pub ca: Vec<PathBuf>,
    /// CRL files (PEM or DER).
    #[arg(long)]
    pub crl: Vec<PathBuf>,
    /// Expected project code.
    #[arg(long = "expect-project")]
    pub project: Option<String>,
    /// Expected section code.
    #[arg(long = "expect-section")]
    pub section: Option<String>,
    /// Expected beneficiary USCC.
    #[arg(long = "expect-beneficiary")]
    pub beneficiary: Option<String>,
    /// Expected applicant USCC.
    #[arg(long = "expect-applicant")]
    pub applicant: Option<String>,
    /// Required minimum amount, decimal yuan.
    #[arg(long = "expect-min-amount")]
    pub min_amount: Option<String>,
    /// Validity must have started by this RFC 3339 time (bid deadline).
    #[arg(long = "expect-valid-from-by")]
    pub valid_from_by: Option<String>,
    /// Validity must last through this RFC 3339 time.
    #[arg(long = "expect-valid-through")]
    pub valid_through: Option<String>,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// The exchange's time-stamping root (`<data_dir>/tsa/root/ca.pem`): a signature
    /// time-stamp token chained to it proves when the signature existed (CAdES-T).
    #[arg(long = "tsa-ca")]
    pub tsa_ca: Option<PathBuf>,
    /// Print the signature policy in force (as JSON with `--json`) and exit.
    #[arg(long)]
    pub policy: bool,
}

/// Why a file argument gave no bytes.
#[derive(Debug)]
enum ReadError {
    /// Missing, unreadable, or not a regular file (a directory, a FIFO, a device): the
    /// argument is unusable (exit [`EXIT_USAGE`]).
    Unusable(String),
    /// Read, but larger than any such file can be: for a document or signature that is
    /// a verdict on the data (FORMAT_FAILURE), for a CA or CRL an unusable argument.
    TooLarge(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Unusable(m) | ReadError::TooLarge(m) => f.write_str(m),
        }
    }
}

/// Reads a regular file of at most `limit` bytes. Anything else is refused before it is
/// opened: opening a FIFO for reading would wait for a writer for ever.
fn read_capped(path: &Path, limit: usize) -> Result<Vec<u8>, ReadError> {
    let unusable = |e: &dyn std::fmt::Display| {
        ReadError::Unusable(format!("cannot read {}: {e}", path.display()))
    };
    let metadata = std::fs::metadata(path).map_err(|e| unusable(&e))?;
    if !metadata.is_file() {
        return Err(unusable(&"not a regular file"));
    }
    let file = std::fs::File::open(path).map_err(|e| unusable(&e))?;
    let mut bytes = Vec::new();
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| unusable(&e))?;
    if bytes.len() > limit {
        return Err(ReadError::TooLarge(format!(
            "{} is larger than {limit} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

fn parse_time_arg(
    name: &str,
    value: &Option<String>,
) -> Result<Option<DateTime<chrono::FixedOffset>>, String> {
    value
        .as_deref()
        .map(|v| {
            crate::domain::time::parse_client_time(v).map_err(|e| format!("--{name} {v:?}: {e}"))
        })
        .transpose()
}

/// Runs an offline verification and prints the report. Returns 0 PASSED, 1 FAILED,
/// 2 INDETERMINATE: the guarantee's verdict, and only that. Every unusable argument
/// (a malformed expectation; a missing, unreadable or non-regular file; a CA or CRL file
/// that holds no certificate or CRL) is [`EXIT_USAGE`] with the reason, and no report.
/// A document or signature larger than any real one gives a FAILED / FORMAT_FAILURE
/// report. With `--policy` it only prints the signature policy in force and returns 0.
pub fn run_verify_cli(args: VerifyArgs, out: &mut dyn Write) -> i32 {
    let engine = VerificationEngine::with_capacity(1);
    if args.policy {
        let printed = if args.json {
            serde_json::to_string_pretty(engine.policy())
                .map_err(std::io::Error::other)
                .and_then(|j| writeln!(out, "{j}"))
        } else {
            write!(out, "{}", engine.policy())
        };
        return if printed.is_ok() { 0 } else { 1 };
    }
    let expectations = match (
        parse_time_arg("valid-from-by", &args.valid_from_by),
        parse_time_arg("valid-through", &args.valid_through),
    ) {
        (Ok(valid_from_by), Ok(valid_through)) => Expectations {
            project_code: args.project.clone(),
            section_code: args.section.clone(),
            beneficiary_uscc: args.beneficiary.clone(),
            applicant_uscc: args.applicant.clone(),
            min_amount: args.min_amount.clone(),
            valid_from_by,
            valid_through,
            issued_by: None,
        },
        (Err(e), _) | (_, Err(e)) => {
            let _ = writeln!(out, "error: {e}");
            return EXIT_USAGE;
        }
    };
    if let Some(min) = &args.min_amount {
        if let Err(e) = crate::domain::money::Amount::parse(min) {
            let _ = writeln!(out, "error: --min-amount: {e}");
            return EXIT_USAGE;
        }
    }

    let tsa = match &args.tsa_ca {
        Some(path) => match read_capped(path, 1024 * 1024)
            .map_err(|e| format!("--tsa-ca: {e}"))
            .and_then(|pem| TsaTrust::from_pem(&pem).map_err(|e| format!("--tsa-ca: {e}")))
        {
            Ok(trust) => Some(trust),
            Err(e) => {
                let _ = writeln!(out, "error: {e}");
                return EXIT_USAGE;
            }
        },
        None => None,
    };
    let now = Utc::now();
    let report = match load_inputs(&args) {
        Ok((document, signature, trust)) => {
            let options = VerifyOptions {
                validation_time: Some(now),
                expectations,
                ..VerifyOptions::default()
            };
            engine.verify_cades(&document, &signature, &trust, tsa.as_ref(), &options, None)
        }
        Err(InputError::Format(reason)) => format_failure_report(reason, now),
        Err(InputError::Unusable(reason)) => {
            let _ = writeln!(out, "error: {reason}");
            return EXIT_USAGE;
        }
    };
    let printed = if args.json {
        serde_json::to_string_pretty(&report)
            .map_err(std::io::Error::other)
            .and_then(|j| writeln!(out, "{j}"))
    } else {
        write!(out, "{}", report.to_text())
    };
    if printed.is_err() {
        tracing::warn!("could not write the verification report");
    }
    report.exit_code()
}

type Inputs = (Vec<u8>, Vec<u8>, crate::pki::trust::TrustStore);

/// Why the inputs could not be verified.
enum InputError {
    /// An argument the tool cannot use (exit [`EXIT_USAGE`]).
    Unusable(String),
    /// Data that cannot be a guarantee or its signature (a FORMAT_FAILURE verdict).
    Format(String),
}

/// Reads the document or the signature: too large is a verdict, anything else unusable.
fn read_signed_input(what: &str, path: &Path, limit: usize) -> Result<Vec<u8>, InputError> {
    read_capped(path, limit).map_err(|e| match e {
        ReadError::TooLarge(m) => InputError::Format(format!("The {what} could not be used: {m}.")),
        ReadError::Unusable(m) => InputError::Unusable(format!("--{what}: {m}")),
    })
}

fn load_inputs(args: &VerifyArgs) -> Result<Inputs, InputError> {
    let unusable = |m: String| InputError::Unusable(m);
    let document = read_signed_input("document", &args.document, MAX_DOCUMENT_BYTES)?;
    let signature = read_signed_input("signature", &args.signature, MAX_SIGNATURE_BYTES)?;
    let mut builder = TrustStoreBuilder::new();
    for path in &args.ca {
        if path.is_dir() {
            builder.add_directory(path).map_err(|e| {
                unusable(format!(
                    "--ca: the trust directory {} could not be used: {e}",
                    path.display()
                ))
            })?;
        } else {
            let bytes = read_capped(path, MAX_TRUST_FILE_BYTES)
                .map_err(|e| unusable(format!("--ca: {e}")))?;
            builder.add_certificates(&bytes).map_err(|e| {
                unusable(format!(
                    "--ca: {} holds no usable certificate: {e}",
                    path.display()
                ))
            })?;
        }
    }
    for path in &args.crl {
        let bytes =
            read_capped(path, MAX_TRUST_FILE_BYTES).map_err(|e| unusable(format!("--crl: {e}")))?;
        builder.add_crls(&bytes).map_err(|e| {
            unusable(format!(
                "--crl: {} holds no usable CRL: {e}",
                path.display()
            ))
        })?;
    }
    let trust = builder
        .build()
        .map_err(|e| unusable(format!("the trust store could not be built: {e}")))?;
    Ok((document, signature, trust))
}

/// The key algorithm of a `baohan pki` key: OpenSSL's P-256 or RSA-2048, or SM2
/// (GM/T 0003), made and signed with GM/T 0009's default distinguishing ID by
/// [`crate::pki::gm`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// ECDSA P-256 or RSA-2048.
    OpenSsl(KeyType),
    /// SM2 with SM3.
    Sm2,
}

impl std::str::FromStr for KeyAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("sm2") {
            return Ok(KeyAlgorithm::Sm2);
        }
        s.parse()
            .map(KeyAlgorithm::OpenSsl)
            .map_err(|_| format!("unknown key type {s:?} (use p256, rsa2048 or sm2)"))
    }
}

/// `baohan pki ca`: make a demo CA in `dir` (`ca.pem`, `ca.key.pem`, and a first CRL
/// `crl.pem` valid for 7 days).
#[derive(Debug, Clone, clap::Args)]
pub struct CaArgs {
    /// Directory to create the CA in (created if missing).
    #[arg(long)]
    pub dir: PathBuf,
    /// CA name (O and CN).
    #[arg(long, default_value = "Baohan Demo CA")]
    pub name: String,
    /// Key algorithm: p256, rsa2048 or sm2.
    #[arg(long, default_value = "p256")]
    pub key_type: KeyAlgorithm,
}

/// `baohan pki issuer`: issue an issuer signing key and certificate from the CA in
/// `ca_dir` into `out_dir` (`issuer.pem`, `issuer.key.pem`, `chain.pem`).
#[derive(Debug, Clone, clap::Args)]
pub struct IssuerArgs {
    /// Directory of the CA made by `ca`.
    #[arg(long)]
    pub ca_dir: PathBuf,
    /// Where to write the issuer's files.
    #[arg(long)]
    pub out_dir: PathBuf,
    /// Issuer organization name.
    #[arg(long)]
    pub name: String,
    /// Issuer USCC (goes into organizationIdentifier as `NTRCN-<USCC>`).
    #[arg(long)]
    pub uscc: String,
    /// Key algorithm: p256 or rsa2048 under an OpenSSL CA; an SM2 CA issues SM2 keys
    /// only (sm2, the default under it).
    #[arg(long)]
    pub key_type: Option<KeyAlgorithm>,
    /// Days of validity from now.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
}

/// `baohan pki tsa`: issue the exchange's time-stamping authority key and certificate
/// (extendedKeyUsage timeStamping, critical; keyUsage digitalSignature; not a CA) from
/// the CA in `ca_dir` into `out_dir` (`tsa.pem`, `tsa.key.pem`, `tsa-chain.pem`). Give the
/// TSA a CA of its own (`pki ca --dir ...`), apart from the issuers' CA: its `ca.pem` is
/// the anchor time-stamps are verified against.
#[derive(Debug, Clone, clap::Args)]
pub struct TsaArgs {
    /// Directory of the CA made by `ca`.
    #[arg(long)]
    pub ca_dir: PathBuf,
    /// Where to write the TSA's files.
    #[arg(long)]
    pub out_dir: PathBuf,
    /// Organization running the TSA.
    #[arg(long, default_value = "Baohan Exchange")]
    pub name: String,
    /// Key algorithm.
    #[arg(long, default_value = "p256")]
    pub key_type: KeyType,
    /// Days of validity from now.
    #[arg(long, default_value_t = 1825)]
    pub days: u32,
}

/// `baohan pki crl`: issue a fresh CRL (`crl.pem`) listing every revoked serial.
#[derive(Debug, Clone, clap::Args)]
pub struct CrlArgs {
    /// Directory of the CA.
    #[arg(long)]
    pub ca_dir: PathBuf,
    /// Days until nextUpdate.
    #[arg(long, default_value_t = 7)]
    pub days: u32,
}

/// `baohan pki revoke`: record `serial` as revoked and issue a new CRL.
#[derive(Debug, Clone, clap::Args)]
pub struct RevokeArgs {
    /// Directory of the CA.
    #[arg(long)]
    pub ca_dir: PathBuf,
    /// Serial number in hex, as shown in reports.
    #[arg(long)]
    pub serial: String,
    /// Days until the new CRL's nextUpdate.
    #[arg(long, default_value_t = 7)]
    pub days: u32,
}

/// The `baohan pki` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum PkiCommand {
    /// Make a demo CA.
    Ca(CaArgs),
    /// Issue an issuer certificate.
    Issuer(IssuerArgs),
    /// Issue the exchange's time-stamping authority certificate.
    Tsa(TsaArgs),
    /// Issue a CRL.
    Crl(CrlArgs),
    /// Revoke a certificate.
    Revoke(RevokeArgs),
}

/// Runs a `baohan pki` subcommand; prints what it wrote. Returns 0 on success, 1 on error.
pub fn run_pki_cli(command: PkiCommand, out: &mut dyn Write) -> i32 {
    match run_pki(command) {
        Ok(message) => {
            let _ = writeln!(out, "{message}");
            0
        }
        Err(e) => {
            let _ = writeln!(out, "error: {e}");
            1
        }
    }
}

fn write_file(path: &Path, bytes: &[u8], private: bool) -> Result<(), String> {
    let err = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    options
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(err)
}

fn read_text(path: &Path) -> Result<Vec<u8>, String> {
    read_capped(path, MAX_TRUST_FILE_BYTES).map_err(|e| e.to_string())
}

/// A CA made by `baohan pki ca`, of either kind.
enum CliCa {
    OpenSsl(DemoCa),
    Sm2(Box<Sm2Ca>),
}

fn load_ca(dir: &Path) -> Result<CliCa, String> {
    let cert = read_text(&dir.join("ca.pem"))?;
    let key = read_text(&dir.join("ca.key.pem"))?;
    let cannot = |e: String| format!("cannot load the CA in {}: {e}", dir.display());
    let is_sm2 = openssl::x509::X509::from_pem(&cert)
        .ok()
        .and_then(|c| c.public_key().ok())
        .is_some_and(|k| crate::pki::policy::key_type(&k) == openssl::pkey::Id::SM2);
    if is_sm2 {
        let text = |b: Vec<u8>| String::from_utf8(b).map_err(|_| cannot("not PEM".into()));
        return Sm2Ca::from_pem(&text(cert)?, &text(key)?)
            .map(|ca| CliCa::Sm2(Box::new(ca)))
            .map_err(|e| cannot(e.to_string()));
    }
    DemoCa::from_pem(&cert, &key)
        .map(CliCa::OpenSsl)
        .map_err(|e| cannot(e.to_string()))
}

/// `revoked.txt`: one `serial_hex unix_seconds` per line.
fn load_revoked(dir: &Path) -> Result<Vec<RevokedSerial>, String> {
    let path = dir.join("revoked.txt");
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text =
        String::from_utf8(read_text(&path)?).map_err(|_| "revoked.txt is not UTF-8".to_owned())?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (serial, secs) = line
                .split_once(' ')
                .ok_or_else(|| format!("bad line in revoked.txt: {line:?}"))?;
            let revoked_at = secs
                .trim()
                .parse::<i64>()
                .ok()
                .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
                .ok_or_else(|| format!("bad time in revoked.txt: {line:?}"))?;
            Ok(RevokedSerial {
                serial_hex: serial.to_owned(),
                revoked_at,
            })
        })
        .collect()
}

fn next_crl_number(dir: &Path) -> Result<u64, String> {
    let path = dir.join("crlnumber");
    let current = match std::fs::read_to_string(&path) {
        Ok(s) => s
            .trim()
            .parse::<u64>()
            .map_err(|_| "crlnumber is not a number".to_owned())?,
        Err(_) => 0,
    };
    let next = current + 1;
    write_file(&path, next.to_string().as_bytes(), false)?;
    Ok(next)
}

fn issue_crl(dir: &Path, ca: &CliCa, days: u32) -> Result<PathBuf, String> {
    let revoked = load_revoked(dir)?;
    let number = next_crl_number(dir)?;
    let now = Utc::now();
    let (this_update, next_update) = (
        now - Duration::minutes(5),
        now + Duration::days(i64::from(days)),
    );
    let cannot = |e: String| format!("cannot issue the CRL: {e}");
    let crl = match ca {
        CliCa::OpenSsl(ca) => ca.crl(&revoked, this_update, next_update, number),
        CliCa::Sm2(ca) => {
            let der = ca
                .crl(&revoked, this_update, next_update, number)
                .map_err(|e| cannot(e.to_string()))?;
            openssl::x509::X509Crl::from_der(&der)
        }
    }
    .map_err(|e| cannot(e.to_string()))?;
    let path = dir.join("crl.pem");
    write_file(&path, &crl.to_pem().map_err(|e| e.to_string())?, false)?;
    Ok(path)
}

fn run_pki(command: PkiCommand) -> Result<String, String> {
    let pem_err = |e: openssl::error::ErrorStack| e.to_string();
    match command {
        PkiCommand::Ca(a) => {
            std::fs::create_dir_all(&a.dir)
                .map_err(|e| format!("cannot create {}: {e}", a.dir.display()))?;
            if a.dir.join("ca.key.pem").exists() {
                return Err(format!("{} already holds a CA", a.dir.display()));
            }
            let ca = match a.key_type {
                KeyAlgorithm::OpenSsl(key_type) => {
                    let ca = DemoCa::new(&a.name, key_type).map_err(pem_err)?;
                    write_file(
                        &a.dir.join("ca.key.pem"),
                        &ca.key.private_key_to_pem_pkcs8().map_err(pem_err)?,
                        true,
                    )?;
                    write_file(
                        &a.dir.join("ca.pem"),
                        &ca.cert.to_pem().map_err(pem_err)?,
                        false,
                    )?;
                    CliCa::OpenSsl(ca)
                }
                KeyAlgorithm::Sm2 => {
                    let ca = Sm2Ca::new(&a.name).map_err(|e| e.to_string())?;
                    let key = ca.key.to_pkcs8_pem().map_err(|e| e.to_string())?;
                    write_file(&a.dir.join("ca.key.pem"), key.as_bytes(), true)?;
                    write_file(&a.dir.join("ca.pem"), ca.cert.to_pem().as_bytes(), false)?;
                    CliCa::Sm2(Box::new(ca))
                }
            };
            let crl = issue_crl(&a.dir, &ca, 7)?;
            Ok(format!(
                "CA {} written to {} (ca.pem, ca.key.pem); CRL {}",
                a.name,
                a.dir.display(),
                crl.display()
            ))
        }
        PkiCommand::Issuer(a) => {
            crate::domain::uscc::Uscc::parse(&a.uscc).map_err(|e| format!("--uscc: {e}"))?;
            let ca = load_ca(&a.ca_dir)?;
            let (not_before, not_after) = (
                Utc::now() - Duration::minutes(5),
                Utc::now() + Duration::days(i64::from(a.days)),
            );
            // key PEM, certificate PEM, CA certificate PEM, serial
            let (key, cert, ca_cert, serial) = match (&ca, a.key_type) {
                (CliCa::OpenSsl(ca), None | Some(KeyAlgorithm::OpenSsl(_))) => {
                    let mut spec = IssuerSpec::new(&a.name, &a.uscc);
                    if let Some(KeyAlgorithm::OpenSsl(key_type)) = a.key_type {
                        spec.key_type = key_type;
                    }
                    spec.not_before = not_before;
                    spec.not_after = not_after;
                    let issued = ca.issue(&spec).map_err(pem_err)?;
                    (
                        issued.key.private_key_to_pem_pkcs8().map_err(pem_err)?,
                        issued.cert.to_pem().map_err(pem_err)?,
                        ca.cert.to_pem().map_err(pem_err)?,
                        serial_hex(&issued.cert).map_err(pem_err)?,
                    )
                }
                (CliCa::Sm2(ca), None | Some(KeyAlgorithm::Sm2)) => {
                    let mut spec = Sm2IssuerSpec::new(&a.name, &a.uscc);
                    spec.not_before = not_before;
                    spec.not_after = not_after;
                    let issued = ca.issue(&spec).map_err(|e| e.to_string())?;
                    let key = issued.key.to_pkcs8_pem().map_err(|e| e.to_string())?;
                    (
                        key.as_bytes().to_vec(),
                        issued.cert.to_pem().into_bytes(),
                        ca.cert.to_pem().into_bytes(),
                        issued.cert.serial_hex(),
                    )
                }
                (CliCa::Sm2(_), Some(_)) => {
                    return Err("an SM2 CA issues SM2 keys only (--key-type sm2)".into())
                }
                (CliCa::OpenSsl(_), Some(KeyAlgorithm::Sm2)) => {
                    return Err("SM2 issuers need an SM2 CA (baohan pki ca --key-type sm2)".into())
                }
            };
            std::fs::create_dir_all(&a.out_dir)
                .map_err(|e| format!("cannot create {}: {e}", a.out_dir.display()))?;
            write_file(&a.out_dir.join("issuer.key.pem"), &key, true)?;
            write_file(&a.out_dir.join("issuer.pem"), &cert, false)?;
            let mut chain = cert;
            chain.extend(ca_cert);
            write_file(&a.out_dir.join("chain.pem"), &chain, false)?;
            Ok(format!(
                "issuer certificate for {} ({}) serial {serial} written to {}",
                a.name,
                a.uscc,
                a.out_dir.display()
            ))
        }
        PkiCommand::Tsa(a) => {
            let CliCa::OpenSsl(ca) = load_ca(&a.ca_dir)? else {
                return Err(
                    "the time-stamping authority signs with P-256 or RSA: give it a CA of that kind"
                        .into(),
                );
            };
            if a.out_dir.join("tsa.key.pem").exists() {
                return Err(format!("{} already holds a TSA key", a.out_dir.display()));
            }
            let mut spec = TsaSpec::new(&a.name);
            spec.key_type = a.key_type;
            spec.not_before = Utc::now() - Duration::minutes(5);
            spec.not_after = Utc::now() + Duration::days(i64::from(a.days));
            let issued = ca.issue_tsa(&spec).map_err(pem_err)?;
            std::fs::create_dir_all(&a.out_dir)
                .map_err(|e| format!("cannot create {}: {e}", a.out_dir.display()))?;
            write_file(
                &a.out_dir.join("tsa.key.pem"),
                &issued.key.private_key_to_pem_pkcs8().map_err(pem_err)?,
                true,
            )?;
            let cert_pem = issued.cert.to_pem().map_err(pem_err)?;
            write_file(&a.out_dir.join("tsa.pem"), &cert_pem, false)?;
            let mut chain = cert_pem;
            chain.extend(ca.cert.to_pem().map_err(pem_err)?);
            write_file(&a.out_dir.join("tsa-chain.pem"), &chain, false)?;
            Ok(format!(
                "time-stamping authority certificate for {} serial {} written to {}",
                a.name,
                serial_hex(&issued.cert).map_err(pem_err)?,
                a.out_dir.display()
            ))
        }
        PkiCommand::Crl(a) => {
            let ca = load_ca(&a.ca_dir)?;
            let path = issue_crl(&a.ca_dir, &ca, a.days)?;
            Ok(format!("CRL written to {}", path.display()))
        }
        PkiCommand::Revoke(a) => {
            let serial = a
                .serial
                .trim()
                .trim_start_matches("0x")
                .to_ascii_lowercase();
            if serial.is_empty() || !serial.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("{:?} is not a hex serial number", a.serial));
            }
            let ca = load_ca(&a.ca_dir)?;
            let mut revoked = load_revoked(&a.ca_dir)?;
            if !revoked
                .iter()
                .any(|r| r.serial_hex.eq_ignore_ascii_case(&serial))
            {
                revoked.push(RevokedSerial {
                    serial_hex: serial.clone(),
                    revoked_at: Utc::now(),
                });
            }
            let lines: String = revoked
                .iter()
                .map(|r| format!("{} {}\n", r.serial_hex, r.revoked_at.timestamp()))
                .collect();
            write_file(&a.ca_dir.join("revoked.txt"), lines.as_bytes(), false)?;
            let path = issue_crl(&a.ca_dir, &ca, a.days)?;
            Ok(format!(
                "serial {serial} revoked; CRL written to {}",
                path.display()
            ))
        }
    }
}
