//! What the exchange trusts: CA certificates and CRLs (from `certs/` and registered by
//! the operator), and the issuer certificates bound to each issuer. The verifier holds
//! the current trust store and the verification engine with its cache; registering an
//! anchor or a CRL rebuilds the store without a restart, on every instance: the change
//! bumps a version row in its own transaction, and each instance compares that version
//! with its store's before it verifies or signs (one primary-key read).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use diesel::prelude::*;
use openssl::x509::X509;

use super::{new_id, require_role, Actor, Context, OrInternal, ServiceError};
use crate::db::audit::{self, AuditEvent};
use crate::db::models::{Crl, IssuerCertificate, Organization, TrustAnchor};
use crate::db::schema::{crls, issuer_certificates, organizations, trust_anchors};
use crate::db::{write_tx, DbConnection, DbPool};
use crate::domain::party::{OrgKind, Role};
use crate::pki::{
    self, TimeStampAuthority, TrustStore, TrustStoreBuilder, TsaTrust, VerificationEngine,
};

/// The exchange's own time-stamping authority (RFC 3161) and the anchors its tokens
/// chain to: every accepted signature gets a token from it (CAdES-T), whose time is the
/// proof that the signature existed then.
pub struct TimeStamping {
    pub authority: TimeStampAuthority,
    pub trust: TsaTrust,
}

impl TimeStamping {
    /// Loads the authority from `dir`, making it there once when the directory holds
    /// none: a root of the exchange's own (`root/ca.pem`, `root/ca.key.pem`, unless an
    /// operator put one there) and a time-stamping certificate under it (`tsa.pem`,
    /// `tsa.key.pem`, `tsa-chain.pem`), as `baohan pki ca` and `baohan pki tsa` would.
    /// One process makes it even when several start together on the directory, and
    /// `tsa.key.pem`, the sign that it is there, appears last (see [`crate::data_dir`]).
    pub fn load_or_make(dir: &Path) -> Result<TimeStamping, ServiceError> {
        let root = dir.join("root");
        let io = |e: std::io::Error| {
            ServiceError::Internal(anyhow::Error::new(e).context(format!(
                "making the time-stamping authority in {}",
                dir.display()
            )))
        };
        crate::data_dir::make_once(
            &dir.join("make.lock"),
            || dir.join("tsa.key.pem").exists(),
            || Self::make(dir, &root),
        )
        .map_err(|e| match e {
            MakeError::Io(e) => io(e),
            MakeError::Service(e) => e,
        })?;
        let read = |path: PathBuf| {
            std::fs::read(&path).map_err(|e| {
                ServiceError::Internal(anyhow::Error::new(e).context(path.display().to_string()))
            })
        };
        let authority = TimeStampAuthority::from_pem(
            &read(dir.join("tsa-chain.pem"))?,
            &read(dir.join("tsa.key.pem"))?,
        )
        .or_internal("the time-stamping authority's key and certificate")?;
        let trust = TsaTrust::from_pem(&read(root.join("ca.pem"))?)
            .or_internal("the time-stamping root")?;
        Ok(TimeStamping { authority, trust })
    }
}

/// Why making the time-stamping authority failed: a file could not be written or
/// moved, or the making itself failed.
#[derive(Debug)]
enum MakeError {
    Io(std::io::Error),
    Service(ServiceError),
}

impl From<std::io::Error> for MakeError {
    fn from(e: std::io::Error) -> Self {
        MakeError::Io(e)
    }
}

impl TimeStamping {
    /// Makes the root when missing, then the authority in a directory of its own, and
    /// moves its files into `dir`, the key last.
    fn make(dir: &Path, root: &Path) -> Result<(), MakeError> {
        let mut out = Vec::new();
        let failed = |what: String, out: &[u8]| {
            MakeError::Service(ServiceError::Internal(anyhow::anyhow!(
                "{what}: {}",
                String::from_utf8_lossy(out).trim()
            )))
        };
        if !root.join("ca.key.pem").exists() {
            let made = pki::run_pki_cli(
                pki::PkiCommand::Ca(pki::CaArgs {
                    dir: root.to_path_buf(),
                    name: "Baohan Exchange Time-Stamping Root".into(),
                    key_type: pki::KeyAlgorithm::OpenSsl(pki::demo::KeyType::EcP256),
                }),
                &mut out,
            );
            if made != 0 {
                let what = format!("making the time-stamping root in {}", root.display());
                return Err(failed(what, &out));
            }
        }
        let fresh = dir.join(format!("new-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&fresh);
        let made = pki::run_pki_cli(
            pki::PkiCommand::Tsa(pki::TsaArgs {
                ca_dir: root.to_path_buf(),
                out_dir: fresh.clone(),
                name: "Baohan Exchange".into(),
                key_type: pki::demo::KeyType::EcP256,
                days: 1825,
            }),
            &mut out,
        );
        if made != 0 {
            let what = format!("making the time-stamping authority in {}", dir.display());
            return Err(failed(what, &out));
        }
        let mut files: Vec<std::ffi::OsString> = std::fs::read_dir(&fresh)?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        files.sort_by_key(|name| name == "tsa.key.pem");
        for name in files {
            std::fs::rename(fresh.join(&name), dir.join(&name))?;
        }
        std::fs::remove_dir(&fresh)?;
        Ok(())
    }
}

/// The trust store in force and the engine that verifies against it.
pub struct Verifier {
    engine: VerificationEngine,
    store: RwLock<Arc<TrustStore>>,
    /// The database's trust-store version the store was built at.
    built_at_version: AtomicI64,
    /// Held while rebuilding, so that a change seen by many requests at once is built
    /// once.
    rebuilding: Mutex<()>,
    certs_dir: PathBuf,
    revocation_fetching: super::crl_fetch::RevocationFetching,
    /// OCSP answers this instance fetched, by the SHA-256 of the certificate, kept
    /// until replaced (each is only used within its own window).
    ocsp_answers: RwLock<std::collections::HashMap<[u8; 32], pki::ocsp::OcspAnswer>>,
}

impl Verifier {
    /// Builds the store from the certificates directory and the database; signatures
    /// are judged under `policy`.
    pub fn load(
        pool: &DbPool,
        certs_dir: &Path,
        policy: pki::SignaturePolicy,
    ) -> Result<Verifier, ServiceError> {
        let mut conn = super::conn(pool)?;
        let version = crate::db::trust_version::current(&mut conn)?;
        let store = build_store(&mut conn, certs_dir, Vec::new())?;
        Ok(Verifier {
            engine: VerificationEngine::with_policy(policy),
            store: RwLock::new(Arc::new(store)),
            built_at_version: AtomicI64::new(version),
            rebuilding: Mutex::new(()),
            certs_dir: certs_dir.to_path_buf(),
            revocation_fetching: super::crl_fetch::RevocationFetching::default(),
            ocsp_answers: RwLock::default(),
        })
    }

    /// Sets how CRLs are fetched from distribution points (the configured settings).
    pub fn with_revocation_fetching(
        mut self,
        revocation_fetching: super::crl_fetch::RevocationFetching,
    ) -> Self {
        self.revocation_fetching = revocation_fetching;
        self
    }

    /// How CRLs are fetched from distribution points.
    pub fn revocation_fetching(&self) -> &super::crl_fetch::RevocationFetching {
        &self.revocation_fetching
    }

    /// Rebuilds the store (after this instance fetched an OCSP answer, or periodically so
    /// that files added to the certificates directory take effect).
    pub fn reload(&self, pool: &DbPool) -> Result<(), ServiceError> {
        let mut conn = super::conn(pool)?;
        let _rebuilding = self
            .rebuilding
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.rebuild(&mut conn)
    }

    /// The store in force for a request: rebuilt first when the database's trust-store
    /// version moved since this instance built its store (an anchor or CRL registered or
    /// fetched through any instance). Costs one primary-key read when nothing changed.
    pub fn current(&self, conn: &mut DbConnection) -> Result<Arc<TrustStore>, ServiceError> {
        if crate::db::trust_version::current(conn)? != self.built_at_version.load(Ordering::Acquire)
        {
            let _rebuilding = self
                .rebuilding
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            // Another request may have rebuilt it while this one waited.
            if crate::db::trust_version::current(conn)?
                != self.built_at_version.load(Ordering::Acquire)
            {
                self.rebuild(conn)?;
            }
        }
        Ok(self.store())
    }

    /// Builds the store from what the database holds now; the caller holds `rebuilding`.
    fn rebuild(&self, conn: &mut DbConnection) -> Result<(), ServiceError> {
        let answers: Vec<([u8; 32], pki::ocsp::OcspAnswer)> = self
            .ocsp_answers
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .map(|(f, a)| (*f, a.clone()))
            .collect();
        // The version is read before the rows: a change committed in between makes the
        // store newer than its version says, and the next request rebuilds once more.
        let version = crate::db::trust_version::current(conn)?;
        let store = Arc::new(build_store(conn, &self.certs_dir, answers)?);
        let mut current = self
            .store
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *current = store;
        self.built_at_version.store(version, Ordering::Release);
        Ok(())
    }

    /// The OCSP answer this instance holds about a certificate (by its DER's SHA-256).
    pub fn ocsp_answer(&self, certificate_sha256: &[u8; 32]) -> Option<pki::ocsp::OcspAnswer> {
        self.ocsp_answers
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(certificate_sha256)
            .cloned()
    }

    /// Keeps a verified OCSP answer; it takes effect at the next [`Verifier::reload`].
    pub fn keep_ocsp_answer(&self, certificate_sha256: [u8; 32], answer: pki::ocsp::OcspAnswer) {
        self.ocsp_answers
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(certificate_sha256, answer);
    }

    /// The store this instance built last, without asking the database whether another
    /// instance changed what it is built from: for work that must not touch the database.
    /// Requests use [`Verifier::current`].
    pub fn store(&self) -> Arc<TrustStore> {
        self.store
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn engine(&self) -> &VerificationEngine {
        &self.engine
    }
}

fn build_store(
    conn: &mut DbConnection,
    certs_dir: &Path,
    ocsp_answers: Vec<([u8; 32], pki::ocsp::OcspAnswer)>,
) -> Result<TrustStore, ServiceError> {
    let mut builder = TrustStoreBuilder::new();
    for (fingerprint, answer) in ocsp_answers {
        builder.add_ocsp_answer(fingerprint, answer);
    }
    if certs_dir.is_dir() {
        builder.add_directory(certs_dir).map_err(|e| {
            ServiceError::Internal(
                anyhow::Error::new(e)
                    .context(format!("certificates directory {}", certs_dir.display())),
            )
        })?;
    }
    let anchors: Vec<Vec<u8>> = trust_anchors::table
        .select(trust_anchors::certificate_der)
        .load(conn)?;
    for der in anchors {
        builder
            .add_certificates(&der)
            .or_internal("stored trust anchor")?;
    }
    let lists: Vec<(Vec<u8>, Option<String>, chrono::NaiveDateTime)> = crls::table
        .select((crls::crl_der, crls::source_url, crls::created_at))
        .load(conn)?;
    for (der, source_url, created_at) in lists {
        let source = match source_url {
            None => pki::CrlSource::Operator,
            Some(url) => pki::CrlSource::Fetched {
                url,
                at: created_at.and_utc().timestamp(),
            },
        };
        builder
            .add_crls_from(&der, source)
            .or_internal("stored CRL")?;
    }
    builder.build().or_internal("trust store")
}

/// Reads one certificate from PEM or DER.
fn parse_certificate(field: &str, bytes: &[u8]) -> Result<X509, ServiceError> {
    X509::from_pem(bytes)
        .or_else(|_| X509::from_der(bytes))
        .map_err(|_| ServiceError::invalid(field, "is not a PEM or DER X.509 certificate"))
}

fn china_naive(rfc3339: &str) -> Result<chrono::NaiveDateTime, ServiceError> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.naive_utc())
        .or_internal("certificate time")
}

/// Registers a CA certificate as a trust anchor (operator).
pub fn register_trust_anchor(
    ctx: &Context,
    actor: &Actor,
    name: &str,
    certificate_pem: &str,
) -> Result<TrustAnchor, ServiceError> {
    require_role(actor, &[Role::Operator])?;
    let name = super::organizations::required_text("name", name, 200)?;
    let cert = parse_certificate("certificate_pem", certificate_pem.as_bytes())?;
    let der = cert
        .to_der()
        .map_err(|_| ServiceError::invalid("certificate_pem", "cannot be encoded"))?;
    // Refuse what the store itself would refuse, before it is stored; an anchor must be
    // a CA and meet the signature policy's key rules.
    TrustStoreBuilder::new()
        .add_certificates(&der)
        .map_err(|e| ServiceError::invalid("certificate_pem", e))?;
    ctx.verifier
        .engine()
        .policy()
        .check_anchor(&cert)
        .map_err(|v| ServiceError::invalid("certificate_pem", v))?;
    let at = ctx.now();
    let anchor = TrustAnchor {
        id: new_id(),
        name,
        fingerprint_sha256: pki::sha256_hex(&der),
        certificate_der: der,
        created_at: at,
    };
    let mut conn = ctx.conn()?;
    ctx.write_tx(&mut conn, |c| -> Result<(), ServiceError> {
        diesel::insert_into(trust_anchors::table)
            .values(&anchor)
            .execute(c)?;
        crate::db::trust_version::bump(c)?;
        record(
            c,
            actor,
            "register_trust_anchor",
            "trust_anchor",
            &anchor.id,
            &anchor.fingerprint_sha256,
            at,
        )
    })?;
    ctx.verifier.current(&mut conn)?;
    Ok(anchor)
}

/// Registers a CRL (PEM or DER, the latter as base64 in the API) (operator).
pub fn register_crl(ctx: &Context, actor: &Actor, crl_bytes: &[u8]) -> Result<Crl, ServiceError> {
    require_role(actor, &[Role::Operator])?;
    let crl = openssl::x509::X509Crl::from_pem(crl_bytes)
        .or_else(|_| openssl::x509::X509Crl::from_der(crl_bytes))
        .map_err(|_| {
            ServiceError::invalid("crl", "is not a PEM or DER certificate revocation list")
        })?;
    let der = crl
        .to_der()
        .map_err(|_| ServiceError::invalid("crl", "cannot be encoded"))?;
    TrustStoreBuilder::new()
        .add_crls(&der)
        .map_err(|e| ServiceError::invalid("crl", e))?;
    let time = |t: &openssl::asn1::Asn1TimeRef| -> Result<chrono::NaiveDateTime, ServiceError> {
        let secs = crate::pki::certs::asn1_to_unix(t)
            .map_err(|_| ServiceError::invalid("crl", "has an unreadable time"))?;
        chrono::DateTime::from_timestamp(secs, 0)
            .map(|t| t.naive_utc())
            .ok_or_else(|| ServiceError::invalid("crl", "has a time out of range"))
    };
    let at = ctx.now();
    let row = Crl {
        id: new_id(),
        issuer_name: crate::pki::certs::name_to_string(crl.issuer_name()),
        this_update: time(crl.last_update())?,
        next_update: crl.next_update().map(time).transpose()?,
        crl_der: der,
        created_at: at,
        source_url: None,
    };
    let mut conn = ctx.conn()?;
    ctx.write_tx(&mut conn, |c| -> Result<(), ServiceError> {
        diesel::insert_into(crls::table).values(&row).execute(c)?;
        crate::db::trust_version::bump(c)?;
        record(
            c,
            actor,
            "register_crl",
            "crl",
            &row.id,
            &row.issuer_name,
            at,
        )
    })?;
    ctx.verifier.current(&mut conn)?;
    Ok(row)
}

/// An issuer certificate to register, with the private key when the exchange is to
/// sign for the issuer (hosted signing).
#[derive(Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIssuerCertificate {
    pub organization_id: String,
    pub certificate_pem: String,
    /// Hosted signing: the private key in PEM (PKCS#8 or traditional).
    pub private_key_pem: Option<String>,
    /// Hosted signing: a PKCS#12 bundle, base64, instead of PEM.
    pub pkcs12_base64: Option<String>,
    /// Passphrase of an encrypted PEM key or of the PKCS#12 bundle.
    pub key_password: Option<String>,
}

/// Binds a certificate to an issuer (operator). The USCC in the certificate's subject
/// must be the issuer's; a hosted key must match the certificate and is stored only
/// encrypted under the master key.
pub fn register_issuer_certificate(
    ctx: &Context,
    actor: &Actor,
    input: NewIssuerCertificate,
) -> Result<IssuerCertificate, ServiceError> {
    require_role(actor, &[Role::Operator])?;
    let cert = parse_certificate("certificate_pem", input.certificate_pem.as_bytes())?;
    let details = pki::certificate_details(&cert)
        .ok_or_else(|| ServiceError::invalid("certificate_pem", "cannot be read"))?;
    let mut conn = ctx.conn()?;
    let org: Organization = organizations::table
        .find(&input.organization_id)
        .select(Organization::as_select())
        .first(&mut conn)
        .optional()?
        .filter(|o| o.kind == OrgKind::Issuer)
        .ok_or_else(|| ServiceError::invalid("organization_id", "no such issuer"))?;
    match details.uscc.as_deref() {
        Some(uscc) if uscc == org.uscc => {}
        Some(other) => {
            return Err(ServiceError::invalid(
                "certificate_pem",
                format!(
                    "the certificate names USCC {other}, but {} is {}",
                    org.name, org.uscc
                ),
            ))
        }
        None => return Err(ServiceError::invalid(
            "certificate_pem",
            "the certificate's subject carries no USCC (organizationIdentifier or serialNumber)",
        )),
    }
    // Only a certificate the exchange would accept a signature from today: it meets the
    // signature policy, is valid now, chains to an anchor, and its revocation status is
    // known and good.
    ctx.verifier
        .engine()
        .policy()
        .check_certificate(&cert)
        .map_err(|v| ServiceError::invalid("certificate_pem", v))?;
    let now = ctx.now();
    let (not_before, not_after) = (
        china_naive(&details.not_before)?,
        china_naive(&details.not_after)?,
    );
    if now < not_before || now > not_after {
        return Err(ServiceError::invalid(
            "certificate_pem",
            format!(
                "is not valid now: it is valid from {} to {}",
                details.not_before, details.not_after
            ),
        ));
    }
    // A certificate that names where its CA publishes CRLs: fetch what is missing or
    // due first. A failure is logged; the check below then says what is missing.
    if !pki::certs::crl_distribution_urls(&cert).is_empty() {
        if let Err(e) = super::crl_fetch::fetch_for_certificate(ctx, &cert) {
            tracing::warn!(error = %e, "fetching the certificate's CRL failed");
        }
    }
    ctx.verifier
        .current(&mut conn)?
        .check_registrable(&cert, now.and_utc())
        .map_err(|m| ServiceError::invalid("certificate_pem", format!("the certificate {m}")))?;
    let key = match (&input.private_key_pem, &input.pkcs12_base64) {
        (Some(_), Some(_)) => {
            return Err(ServiceError::invalid(
                "private_key_pem",
                "give either a PEM key or a PKCS#12 bundle, not both",
            ))
        }
        (Some(pem), None) => Some(
            pki::import_pem(
                pem.as_bytes(),
                input.key_password.as_deref().map(str::as_bytes),
            )
            .map_err(|e| ServiceError::invalid("private_key_pem", e))?
            .key,
        ),
        (None, Some(b64)) => {
            use base64::Engine as _;
            let der = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| ServiceError::invalid("pkcs12_base64", "is not base64"))?;
            Some(
                pki::import_pkcs12(&der, input.key_password.as_deref().unwrap_or(""))
                    .map_err(|e| ServiceError::invalid("pkcs12_base64", e))?
                    .key,
            )
        }
        (None, None) => None,
    };
    let encrypted = match &key {
        Some(key) => {
            let matches = cert.public_key().map(|p| p.public_eq(key)).unwrap_or(false);
            if !matches {
                return Err(ServiceError::invalid(
                    "private_key_pem",
                    "the private key does not belong to this certificate",
                ));
            }
            Some(
                pki::encrypt_private_key(&ctx.keys.hosted, key, &details.sha256_fingerprint)
                    .or_internal("sealing the key")?,
            )
        }
        None => None,
    };
    let at = ctx.now();
    let row = IssuerCertificate {
        id: new_id(),
        organization_id: org.id.clone(),
        fingerprint_sha256: details.sha256_fingerprint.clone(),
        subject: details.subject.clone(),
        serial: details.serial.clone(),
        not_before,
        not_after,
        certificate_der: cert
            .to_der()
            .map_err(|_| ServiceError::invalid("certificate_pem", "cannot be encoded"))?,
        encrypted_private_key: encrypted,
        created_at: at,
        deactivated_at: None,
        expiry_notice_at: None,
    };
    ctx.write_tx(&mut conn, |c| -> Result<(), ServiceError> {
        let taken: i64 = issuer_certificates::table
            .filter(issuer_certificates::fingerprint_sha256.eq(&row.fingerprint_sha256))
            .count()
            .get_result(c)?;
        if taken > 0 {
            return Err(ServiceError::Conflict(
                "certificate_pem: this certificate is already registered".into(),
            ));
        }
        diesel::insert_into(issuer_certificates::table)
            .values(&row)
            .execute(c)?;
        record(
            c,
            actor,
            "register_issuer_certificate",
            "issuer_certificate",
            &row.id,
            &row.fingerprint_sha256,
            at,
        )
    })?;
    Ok(row)
}

/// How long before its notAfter an issuer is told that its signing certificate runs out.
pub const CERTIFICATE_EXPIRY_NOTICE_DAYS: u32 = 30;

/// An active issuer certificate that runs out soon (or has), with its issuer.
#[derive(Debug, Clone)]
pub struct ExpiringCertificate {
    pub certificate: IssuerCertificate,
    pub issuer: Organization,
}

/// The active issuer certificates whose notAfter falls within `within_days` from now,
/// or has passed already, soonest first (operator): the ones to renew.
pub fn expiring_certificates(
    ctx: &Context,
    actor: &Actor,
    within_days: u32,
) -> Result<Vec<ExpiringCertificate>, ServiceError> {
    require_role(actor, &[Role::Operator])?;
    if !(1..=366).contains(&within_days) {
        return Err(ServiceError::invalid(
            "within_days",
            "must be between 1 and 366",
        ));
    }
    let horizon = ctx.now() + chrono::Duration::days(i64::from(within_days));
    let mut conn = ctx.conn()?;
    let rows: Vec<(IssuerCertificate, Organization)> = issuer_certificates::table
        .inner_join(organizations::table)
        .filter(issuer_certificates::deactivated_at.is_null())
        .filter(issuer_certificates::not_after.le(horizon))
        .order(issuer_certificates::not_after.asc())
        .limit(1000)
        .select((IssuerCertificate::as_select(), Organization::as_select()))
        .load(&mut conn)?;
    Ok(rows
        .into_iter()
        .map(|(certificate, issuer)| ExpiringCertificate {
            certificate,
            issuer,
        })
        .collect())
}

/// The issuer's own signing certificates, the active ones first, each by when it runs
/// out (so the one to renew next is at the top).
pub fn own_certificates(
    ctx: &Context,
    actor: &Actor,
) -> Result<Vec<IssuerCertificate>, ServiceError> {
    require_role(actor, &[Role::Issuer])?;
    let mut conn = ctx.conn()?;
    let mut rows: Vec<IssuerCertificate> = issuer_certificates::table
        .filter(issuer_certificates::organization_id.eq(&actor.organization_id))
        .order(issuer_certificates::not_after.asc())
        .select(IssuerCertificate::as_select())
        .load(&mut conn)?;
    rows.sort_by_key(|c| c.deactivated_at.is_some());
    Ok(rows)
}

/// Tells each issuer, once per certificate, that an active signing certificate runs out
/// within [`CERTIFICATE_EXPIRY_NOTICE_DAYS`]. Claiming the notice is a conditional
/// update, so several instances running this together send each mail once.
pub fn send_certificate_expiry_notices(ctx: &Context) -> Result<usize, ServiceError> {
    let at = ctx.now();
    let horizon = at + chrono::Duration::days(i64::from(CERTIFICATE_EXPIRY_NOTICE_DAYS));
    let mut conn = ctx.conn()?;
    let due: Vec<String> = issuer_certificates::table
        .filter(issuer_certificates::deactivated_at.is_null())
        .filter(issuer_certificates::not_after.le(horizon))
        .filter(issuer_certificates::not_after.gt(at))
        .filter(issuer_certificates::expiry_notice_at.is_null())
        .limit(1000)
        .select(issuer_certificates::id)
        .load(&mut conn)?;
    let mut sent = 0;
    for id in due {
        sent += write_tx(&mut conn, |c| -> Result<usize, ServiceError> {
            let claimed = diesel::update(
                issuer_certificates::table
                    .filter(issuer_certificates::id.eq(&id))
                    .filter(issuer_certificates::expiry_notice_at.is_null()),
            )
            .set(issuer_certificates::expiry_notice_at.eq(at))
            .execute(c)?;
            if claimed != 1 {
                return Ok(0);
            }
            let (certificate, issuer): (IssuerCertificate, Organization) =
                issuer_certificates::table
                    .inner_join(organizations::table)
                    .filter(issuer_certificates::id.eq(&id))
                    .select((IssuerCertificate::as_select(), Organization::as_select()))
                    .first(c)?;
            super::notify::certificate_expiring(c, &issuer, &certificate, at)?;
            Ok(1)
        })?;
    }
    Ok(sent)
}

/// Fingerprints of the active certificates registered to an issuer.
pub fn issuer_fingerprints(c: &mut DbConnection, issuer_id: &str) -> QueryResult<Vec<String>> {
    issuer_certificates::table
        .filter(issuer_certificates::organization_id.eq(issuer_id))
        .filter(issuer_certificates::deactivated_at.is_null())
        .select(issuer_certificates::fingerprint_sha256)
        .load(c)
}

fn record(
    c: &mut DbConnection,
    actor: &Actor,
    action: &str,
    kind: &str,
    id: &str,
    what: &str,
    at: chrono::NaiveDateTime,
) -> Result<(), ServiceError> {
    audit::append(
        c,
        &AuditEvent {
            actor_user_id: Some(&actor.user_id),
            actor_organization_id: Some(&actor.organization_id),
            action,
            entity_kind: kind,
            entity_id: id,
            details: serde_json::json!({ "what": what }),
            ..Default::default()
        },
        at,
    )?;
    Ok(())
}

/// The most rows each of the operator's trust lists shows (newest first).
pub const TRUST_LIST_LIMIT: i64 = 200;

/// The trust anchors, newest first (operator).
pub fn list_trust_anchors(ctx: &Context, actor: &Actor) -> Result<Vec<TrustAnchor>, ServiceError> {
    require_role(actor, &[Role::Operator])?;
    let mut conn = ctx.conn()?;
    Ok(trust_anchors::table
        .order(trust_anchors::created_at.desc())
        .limit(TRUST_LIST_LIMIT)
        .select(TrustAnchor::as_select())
        .load(&mut conn)?)
}

/// The CRLs held, newest first (operator).
pub fn list_crls(ctx: &Context, actor: &Actor) -> Result<Vec<Crl>, ServiceError> {
    require_role(actor, &[Role::Operator])?;
    let mut conn = ctx.conn()?;
    Ok(crls::table
        .order(crls::created_at.desc())
        .limit(TRUST_LIST_LIMIT)
        .select(Crl::as_select())
        .load(&mut conn)?)
}

/// The issuer certificates with their issuers, soonest to run out first (operator).
pub fn list_issuer_certificates(
    ctx: &Context,
    actor: &Actor,
) -> Result<Vec<ExpiringCertificate>, ServiceError> {
    require_role(actor, &[Role::Operator])?;
    let mut conn = ctx.conn()?;
    let rows: Vec<(IssuerCertificate, Organization)> = issuer_certificates::table
        .inner_join(organizations::table)
        .order((
            issuer_certificates::deactivated_at.is_not_null(),
            issuer_certificates::not_after.asc(),
        ))
        .limit(TRUST_LIST_LIMIT)
        .select((IssuerCertificate::as_select(), Organization::as_select()))
        .load(&mut conn)?;
    Ok(rows
        .into_iter()
        .map(|(certificate, issuer)| ExpiringCertificate {
            certificate,
            issuer,
        })
        .collect())
}
