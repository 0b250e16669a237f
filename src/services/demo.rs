//! Demo data: a small city's worth of organizations, users and one open tender, so a
//! new user can sign in and try every role. Seeding twice changes nothing.

use chrono::{Duration, NaiveTime, TimeZone};
use diesel::prelude::*;

use super::organizations::{validate_organization, NewOrganization};
use super::{auth::hash_password, new_id, now, OrInternal, ServiceError};
use crate::db::audit::{self, AuditEvent};
use crate::db::models::{Project, Section, User};
use crate::db::schema::{organizations, projects, sections, users};
use crate::db::{write_tx, DbConnection};
use crate::domain::party::{IssuerKind, OrgKind, ProviderKind, Role};
use crate::domain::uscc::Uscc;
use crate::domain::ResidentId;

/// The password of every demo account. Printed by `baohan demo`; demo only.
pub const DEMO_PASSWORD: &str = "baohan-demo-2026";

/// One demo organization and its one user.
pub struct DemoAccount {
    pub kind: OrgKind,
    pub issuer_kind: Option<IssuerKind>,
    pub provider_kind: Option<ProviderKind>,
    /// A resident's first 17 digits of a resident ID (the check digit is computed).
    pub resident_body: Option<&'static str>,
    pub name: &'static str,
    /// The first 17 characters of the USCC; the check character is computed.
    pub uscc_body: &'static str,
    pub username: &'static str,
    pub display_name: &'static str,
    pub role: Role,
}

pub const DEMO_ACCOUNTS: &[DemoAccount] = &[
    DemoAccount {
        kind: OrgKind::Operator,
        issuer_kind: None,
        provider_kind: None,
        resident_body: None,
        name: "滨州市社会信用体系建设服务中心",
        uscc_body: "12371600MB2850001",
        username: "operator",
        display_name: "信用办 管理员",
        role: Role::Operator,
    },
    DemoAccount {
        kind: OrgKind::Enterprise,
        issuer_kind: None,
        provider_kind: None,
        resident_body: None,
        name: "滨州鲁北路桥建设有限公司",
        uscc_body: "91371600MA3C20001",
        username: "enterprise1",
        display_name: "鲁北路桥 投标专员",
        role: Role::Enterprise,
    },
    DemoAccount {
        kind: OrgKind::Enterprise,
        issuer_kind: None,
        provider_kind: None,
        resident_body: None,
        name: "滨州黄河水利工程有限公司",
        uscc_body: "91371602MA3C20002",
        username: "enterprise2",
        display_name: "黄河水利 投标专员",
        role: Role::Enterprise,
    },
    DemoAccount {
        kind: OrgKind::Issuer,
        issuer_kind: Some(IssuerKind::Bank),
        provider_kind: None,
        resident_body: None,
        name: "滨州城市商业银行",
        uscc_body: "91371600BK0000003",
        username: "bank",
        display_name: "城商行 保函业务部",
        role: Role::Issuer,
    },
    DemoAccount {
        kind: OrgKind::Issuer,
        issuer_kind: Some(IssuerKind::Insurer),
        provider_kind: None,
        resident_body: None,
        name: "黄河财产保险股份有限公司滨州中心支公司",
        uscc_body: "91371600BX0000004",
        username: "insurer",
        display_name: "黄河财险 保证保险部",
        role: Role::Issuer,
    },
    DemoAccount {
        kind: OrgKind::Issuer,
        issuer_kind: Some(IssuerKind::Guarantor),
        provider_kind: None,
        resident_body: None,
        name: "滨州市融资担保有限公司",
        uscc_body: "91371600GU0000005",
        username: "guarantor",
        display_name: "融资担保 业务部",
        role: Role::Issuer,
    },
    DemoAccount {
        kind: OrgKind::Agency,
        issuer_kind: None,
        provider_kind: None,
        resident_body: None,
        name: "滨州公共资源招标代理有限公司",
        uscc_body: "91371600AG0000006",
        username: "agency",
        display_name: "招标代理 项目经理",
        role: Role::Agency,
    },
    DemoAccount {
        kind: OrgKind::Tenderee,
        issuer_kind: None,
        provider_kind: None,
        resident_body: None,
        name: "滨州市城市建设投资发展有限公司",
        uscc_body: "91371600TE0000007",
        username: "tenderee",
        display_name: "城投公司 采购部",
        role: Role::Tenderee,
    },
    DemoAccount {
        kind: OrgKind::Provider,
        issuer_kind: None,
        provider_kind: Some(ProviderKind::Hotel),
        resident_body: None,
        name: "滨州黄河大酒店有限公司",
        uscc_body: "91371600HT0000008",
        username: "hotel",
        display_name: "黄河大酒店 前台",
        role: Role::Provider,
    },
    DemoAccount {
        kind: OrgKind::Provider,
        issuer_kind: None,
        provider_kind: Some(ProviderKind::Hospital),
        resident_body: None,
        name: "滨州市人民医院",
        uscc_body: "12371600HP0000009",
        username: "hospital",
        display_name: "市人民医院 住院处",
        role: Role::Provider,
    },
    // Where an enterprise shows its credit rights code: the migrant-worker wage
    // guarantee deposit it need not lodge.
    DemoAccount {
        kind: OrgKind::Provider,
        issuer_kind: None,
        provider_kind: Some(ProviderKind::WageAuthority),
        resident_body: None,
        name: "滨州市人力资源和社会保障局",
        uscc_body: "11371600RH0000010",
        username: "wages",
        display_name: "市人社局 农民工工资保证金科",
        role: Role::Provider,
    },
    // A resident: its account is kept in the city platform's register (the operator's
    // organization), under the resident ID its credit archive is kept by.
    DemoAccount {
        kind: OrgKind::Operator,
        issuer_kind: None,
        provider_kind: None,
        resident_body: Some("37160219900307002"),
        name: "滨州市社会信用体系建设服务中心",
        uscc_body: "12371600MB2850001",
        username: "resident",
        display_name: "张晓梅",
        role: Role::Person,
    },
];

/// The demo tender's code.
pub const DEMO_PROJECT_CODE: &str = "BZGC-2026-0188";

/// What seeding did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Seeded {
    pub organizations: usize,
    pub users: usize,
    pub projects: usize,
}

/// Inserts whatever of the demo data is missing, in one transaction.
/// `keys`: the server's, under which the demo resident's ID is kept (hashed).
pub fn seed(conn: &mut DbConnection, keys: &super::Keys) -> Result<Seeded, ServiceError> {
    let id_hmac = &keys.id_hmac;
    let at = now();
    // Hash before the transaction: argon2 is deliberately slow.
    let password_hash = hash_password(DEMO_PASSWORD)?;
    write_tx(conn, |c| {
        let mut seeded = Seeded::default();
        let mut org_ids = Vec::with_capacity(DEMO_ACCOUNTS.len());
        for account in DEMO_ACCOUNTS {
            let uscc = Uscc::from_body(account.uscc_body).or_internal("demo USCC")?;
            let existing: Option<String> = organizations::table
                .filter(organizations::uscc.eq(uscc.as_str()))
                .select(organizations::id)
                .first(c)
                .optional()?;
            let org_id = match existing {
                Some(id) => id,
                None => {
                    let org = validate_organization(
                        NewOrganization {
                            kind: account.kind.as_str().into(),
                            name: account.name.into(),
                            uscc: uscc.as_str().into(),
                            issuer_kind: account.issuer_kind.map(|k| k.as_str().into()),
                            provider_kind: account.provider_kind.map(|k| k.as_str().into()),
                            email: Some(format!("{}@demo.baohan.localhost", account.username)),
                            ..Default::default()
                        },
                        at,
                    )?;
                    diesel::insert_into(organizations::table)
                        .values(&org)
                        .execute(c)?;
                    record(c, "create_organization", "organization", &org.id, at)?;
                    seeded.organizations += 1;
                    org.id
                }
            };
            let has_user: i64 = users::table
                .filter(users::username.eq(account.username))
                .count()
                .get_result(c)?;
            if has_user == 0 {
                let resident = account
                    .resident_body
                    .map(|body| ResidentId::from_body(body, crate::domain::time::china_date(at)))
                    .transpose()
                    .or_internal("demo resident ID")?;
                let user = User {
                    id: new_id(),
                    organization_id: org_id.clone(),
                    username: account.username.into(),
                    display_name: account.display_name.into(),
                    email: Some(format!("{}@demo.baohan.localhost", account.username)),
                    role: account.role,
                    password_hash: password_hash.clone(),
                    resident_id_hmac: resident.as_ref().map(|r| r.hmac_hex(id_hmac)),
                    resident_id_masked: resident.as_ref().map(|r| r.masked()),
                    active: true,
                    created_at: at,
                };
                diesel::insert_into(users::table).values(&user).execute(c)?;
                record(c, "create_user", "user", &user.id, at)?;
                seeded.users += 1;
            }
            org_ids.push((account.kind, org_id));
        }
        let has_project: i64 = projects::table
            .filter(projects::code.eq(DEMO_PROJECT_CODE))
            .count()
            .get_result(c)?;
        if has_project == 0 {
            let org = |kind: OrgKind| {
                org_ids
                    .iter()
                    .find(|(k, _)| *k == kind)
                    .map(|(_, id)| id.clone())
                    .ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("demo {kind} missing")))
            };
            // Bids close at 09:00 China time two weeks from today and open at once.
            let china = crate::domain::time::china();
            let day = (chrono::Utc::now().with_timezone(&china) + Duration::days(14)).date_naive();
            let deadline = china
                .from_local_datetime(
                    &day.and_time(NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default()),
                )
                .single()
                .or_internal("deadline")?
                .naive_utc();
            let project = Project {
                id: new_id(),
                code: DEMO_PROJECT_CODE.into(),
                name: "滨州市黄河十二路市政道路及排水工程".into(),
                tenderee_id: org(OrgKind::Tenderee)?,
                agency_id: org(OrgKind::Agency)?,
                bid_deadline: deadline,
                bid_opening_at: deadline,
                bid_validity_days: 90,
                created_at: at,
                updated_at: at,
            };
            let sections = [
                ("01", "道路工程", 20_000_000, 1_200_000_000),
                ("02", "排水工程", 8_000_000, 400_000_000),
            ]
            .map(|(code, name, bond, price)| Section {
                id: new_id(),
                project_id: project.id.clone(),
                code: code.into(),
                name: name.into(),
                bond_amount_fen: bond,
                estimated_price_fen: Some(price),
                awarded_enterprise_id: None,
                awarded_at: None,
                contract_signed_at: None,
            });
            diesel::insert_into(projects::table)
                .values(&project)
                .execute(c)?;
            for section in &sections {
                diesel::insert_into(sections::table)
                    .values(section)
                    .execute(c)?;
            }
            record(c, "create_project", "project", &project.id, at)?;
            seeded.projects += 1;
        }
        Ok(seeded)
    })
}

fn record(
    c: &mut DbConnection,
    action: &str,
    entity_kind: &str,
    entity_id: &str,
    at: chrono::NaiveDateTime,
) -> Result<(), ServiceError> {
    audit::append(
        c,
        &AuditEvent {
            action,
            entity_kind,
            entity_id,
            details: serde_json::json!({ "source": "demo seed" }),
            ..Default::default()
        },
        at,
    )?;
    Ok(())
}

/// Where `baohan demo` keeps its PKI, under the data directory.
pub const DEMO_PKI_DIR: &str = "pki";

/// Demo issuers, whether the exchange holds their key (hosted signing) or the issuer
/// signs in its own system (external signing, e.g. with `openssl cms -sign`), and
/// whether their key is SM2 (国密, under the demo SM2 CA) rather than P-256.
const DEMO_SIGNERS: &[(&str, bool, bool)] = &[
    ("bank", true, false),
    ("guarantor", true, true),
    ("insurer", false, false),
];

fn run_pki(command: crate::pki::PkiCommand) -> Result<(), ServiceError> {
    let mut out = Vec::new();
    if crate::pki::run_pki_cli(command, &mut out) == 0 {
        Ok(())
    } else {
        Err(ServiceError::Internal(anyhow::anyhow!(
            "demo PKI: {}",
            String::from_utf8_lossy(&out).trim()
        )))
    }
}

fn read(path: &std::path::Path) -> Result<String, ServiceError> {
    std::fs::read_to_string(path).map_err(|e| {
        ServiceError::Internal(anyhow::Error::new(e).context(path.display().to_string()))
    })
}

/// Gives the demo a working PKI: a demo CA (made once, in `<data_dir>/pki/ca`), trusted
/// with a current CRL; a signing certificate per demo issuer, registered to it (hosted
/// keys sealed under the master key). Safe to run at every start. Returns lines to print.
pub fn seed_pki(
    ctx: &super::Context,
    data_dir: &std::path::Path,
) -> Result<Vec<String>, ServiceError> {
    use crate::db::schema::{crls, issuer_certificates, trust_anchors};
    use crate::pki::demo::KeyType;
    use crate::pki::{CaArgs, CrlArgs, IssuerArgs, KeyAlgorithm, PkiCommand};

    let pki_dir = data_dir.join(DEMO_PKI_DIR);
    let ca_dir = pki_dir.join("ca");
    let sm2_ca_dir = pki_dir.join("sm2-ca");
    let mut conn = ctx.conn()?;
    let operator = operator_actor(&mut conn)?;
    let at = ctx.now();
    let cas = [
        (
            &ca_dir,
            "Baohan Demo CA",
            KeyAlgorithm::OpenSsl(KeyType::EcP256),
        ),
        (&sm2_ca_dir, "Baohan Demo SM2 CA", KeyAlgorithm::Sm2),
    ];
    for (dir, name, key_type) in cas {
        if !dir.join("ca.pem").exists() {
            run_pki(PkiCommand::Ca(CaArgs {
                dir: dir.clone(),
                name: name.into(),
                key_type,
            }))?;
        }
        let pem = read(&dir.join("ca.pem"))?;
        let cert = openssl::x509::X509::from_pem(pem.as_bytes()).or_internal("demo CA")?;
        let der = cert.to_der().or_internal("demo CA")?;
        let trusted: i64 = trust_anchors::table
            .filter(trust_anchors::fingerprint_sha256.eq(crate::pki::sha256_hex(&der)))
            .count()
            .get_result(&mut conn)?;
        if trusted == 0 {
            super::trust::register_trust_anchor(ctx, &operator, name, &pem)?;
        }
        // A fresh CRL of each CA whenever its newest one runs out within a week.
        let newest: Option<Option<chrono::NaiveDateTime>> = crls::table
            .filter(crls::issuer_name.eq(crate::pki::certs::name_to_string(cert.subject_name())))
            .order(crls::next_update.desc())
            .select(crls::next_update)
            .first(&mut conn)
            .optional()?;
        if newest
            .flatten()
            .is_none_or(|next| next < at + Duration::days(7))
        {
            run_pki(PkiCommand::Crl(CrlArgs {
                ca_dir: dir.clone(),
                days: 30,
            }))?;
            let crl = read(&dir.join("crl.pem"))?;
            super::trust::register_crl(ctx, &operator, crl.as_bytes())?;
        }
    }
    let mut lines = vec![format!(
        "demo CAs and CRLs: {} (P-256), {} (SM2)",
        ca_dir.display(),
        sm2_ca_dir.display()
    )];
    for (username, hosted, sm2) in DEMO_SIGNERS {
        let account = DEMO_ACCOUNTS
            .iter()
            .find(|a| a.username == *username)
            .ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("demo account {username}")))?;
        let uscc = Uscc::from_body(account.uscc_body).or_internal("demo USCC")?;
        let dir = pki_dir.join(username);
        if !dir.join("issuer.pem").exists() {
            let (ca_dir, key_type) = if *sm2 {
                (&sm2_ca_dir, KeyAlgorithm::Sm2)
            } else {
                (&ca_dir, KeyAlgorithm::OpenSsl(KeyType::EcP256))
            };
            run_pki(PkiCommand::Issuer(IssuerArgs {
                ca_dir: ca_dir.clone(),
                out_dir: dir.clone(),
                name: account.name.into(),
                uscc: uscc.as_str().into(),
                key_type: Some(key_type),
                days: 365,
            }))?;
        }
        let cert_pem = read(&dir.join("issuer.pem"))?;
        let cert =
            openssl::x509::X509::from_pem(cert_pem.as_bytes()).or_internal("demo certificate")?;
        let der = cert.to_der().or_internal("demo certificate")?;
        let registered: i64 = issuer_certificates::table
            .filter(issuer_certificates::fingerprint_sha256.eq(crate::pki::sha256_hex(&der)))
            .count()
            .get_result(&mut conn)?;
        if registered == 0 {
            let organization_id: String = organizations::table
                .filter(organizations::uscc.eq(uscc.as_str()))
                .select(organizations::id)
                .first(&mut conn)?;
            super::trust::register_issuer_certificate(
                ctx,
                &operator,
                super::trust::NewIssuerCertificate {
                    organization_id,
                    certificate_pem: cert_pem,
                    private_key_pem: if *hosted {
                        Some(read(&dir.join("issuer.key.pem"))?)
                    } else {
                        None
                    },
                    ..Default::default()
                },
            )?;
        }
        let key = if *sm2 { "an SM2 key" } else { "a P-256 key" };
        lines.push(if *hosted {
            format!("{username:<10} signs with {key} held by the exchange (POST /api/v1/applications/{{id}}/issue)")
        } else {
            format!(
                "{username:<10} signs externally: openssl cms -sign -binary -outform DER -md sha256 -cades \
                 -signer {0}/issuer.pem -inkey {0}/issuer.key.pem -in DRAFT.json -out DRAFT.p7s",
                dir.display()
            )
        });
    }
    Ok(lines)
}

/// The demo operator, acting for the seed.
fn operator_actor(conn: &mut DbConnection) -> Result<super::Actor, ServiceError> {
    let (user_id, organization_id): (String, String) = users::table
        .filter(users::username.eq("operator"))
        .select((users::id, users::organization_id))
        .first(conn)?;
    Ok(super::Actor {
        user_id,
        organization_id,
        organization_kind: crate::domain::party::OrgKind::Operator,
        role: crate::domain::party::Role::Operator,
    })
}
