//! Attachments (附件): an application's documents (business licence, qualification
//! certificate, tender file, other) and a claim's evidence, uploaded by the party that
//! makes the parent and seen by whoever may see the parent.
//!
//! - **Who sees them**: an application's, its enterprise and its issuer, the operator,
//!   and, only after bid opening and only when the application became a bond, the
//!   project's agency and tenderee (who see the bond then, `guarantees::load_visible`).
//!   A claim's, the project's agency that filed it, the issuer, the bidder and the
//!   operator. Anyone else, and the agency before opening, is told "not found", the
//!   same answer as for an id that does not exist.
//! - **Who adds them**: the enterprise to its own application while the issuer is still
//!   underwriting it (submitted, approved or paid: [`UNDERWRITING_STATES`]); once it is
//!   issued, declined or withdrawn the file is closed. The agency to its claim while the
//!   issuer has not decided it. Nobody deletes one: the files are what the parties
//!   relied on, and the audit log names each by its hash.
//! - **What is taken**: PDF, PNG, JPEG and OFD, judged by the content, up to the
//!   configured size, [`PER_PARENT`] per parent, held by a counter on the parent moved
//!   by a conditional update in the upload's transaction. The same content sent to the
//!   same parent again is the attachment it already has (a retry is harmless).
//!
//! Each upload appends an audit entry naming the file's SHA-256, size, type and parent,
//! so the hash is in the hash-chained log.

pub mod store;

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use sha2::Digest;

use super::applications::UNDERWRITING_STATES;
use super::{new_id, Actor, Context, OrInternal, ServiceError};
use crate::db::audit::{self, AuditEvent};
use crate::db::models::{Application, Attachment, Claim, Project};
use crate::db::schema::{applications, attachments, claims, guarantees, projects, sections};
use crate::db::DbConnection;
use crate::domain::attachment::{
    self, AttachmentKind, ParentKind, HEAD_BYTES, PER_PARENT, TAIL_BYTES,
};
use crate::domain::lifecycle::ClaimState;
use crate::domain::party::Role;
use crate::domain::tender;

/// An upload as the web layer read it: the file itself is spooled to disk.
#[derive(Debug, Clone)]
pub struct Upload {
    pub parent: ParentKind,
    pub parent_id: String,
    /// As sent; checked here.
    pub kind: String,
    /// As sent (the multipart part's file name); cleaned here.
    pub file_name: String,
}

/// What an upload did.
#[derive(Debug, Clone)]
pub struct Uploaded {
    pub attachment: Attachment,
    /// False when the parent held this content already: nothing new was stored.
    pub created: bool,
}

/// A parent's attachments as its page shows them, and whether the viewer may add one.
#[derive(Debug, Clone)]
pub struct Shelf {
    pub rows: Vec<Attachment>,
    pub may_upload: bool,
    /// The kinds the parent takes.
    pub kinds: Vec<AttachmentKind>,
}

/// A parent the actor may see, with what the upload rules need of it.
struct Parent {
    kind: ParentKind,
    id: String,
    /// The role and organization that add files to it.
    uploader: (Role, String),
    /// Whether files may still be added (the state allows it).
    open: bool,
    state: &'static str,
}

impl Parent {
    fn may_upload(&self, actor: &Actor) -> bool {
        self.open && self.uploader == (actor.role, actor.organization_id.clone())
    }

    /// Refuses an upload the actor may not make: another party (403; it sees the
    /// parent already), or a parent that moved on (409 naming its state).
    fn check_upload(&self, actor: &Actor) -> Result<(), ServiceError> {
        if self.uploader != (actor.role, actor.organization_id.clone()) {
            return Err(ServiceError::Forbidden(match self.kind {
                ParentKind::Application => {
                    "only the bidder attaches documents to its application".into()
                }
                ParentKind::Claim => "only the agency that filed a claim attaches evidence".into(),
            }));
        }
        if !self.open {
            return Err(ServiceError::InvalidTransition {
                message: format!(
                    "the {} is {}: no more files may be attached",
                    self.kind, self.state
                ),
                current: self.state,
            });
        }
        Ok(())
    }
}

fn not_found(kind: ParentKind) -> ServiceError {
    ServiceError::NotFound(kind.as_str().into())
}

/// The parent, if the actor may see it (see the module documentation); "not found"
/// otherwise, the same as for an id that does not exist.
fn visible_parent(
    c: &mut DbConnection,
    actor: &Actor,
    kind: ParentKind,
    id: &str,
    at: NaiveDateTime,
) -> Result<Parent, ServiceError> {
    let org = actor.organization_id.as_str();
    match kind {
        ParentKind::Application => {
            let application: Application = applications::table
                .find(id)
                .select(Application::as_select())
                .first(c)
                .optional()?
                .ok_or_else(|| not_found(kind))?;
            let visible = match actor.role {
                Role::Operator => true,
                Role::Enterprise => application.enterprise_id == org,
                Role::Issuer => application.issuer_id == org,
                Role::Agency | Role::Tenderee => {
                    // Only a bond is seen at opening, and only after it.
                    let project: Option<Project> = guarantees::table
                        .inner_join(sections::table.inner_join(projects::table))
                        .filter(guarantees::application_id.eq(&application.id))
                        .select(Project::as_select())
                        .first(c)
                        .optional()?;
                    project.is_some_and(|p| {
                        let party = match actor.role {
                            Role::Agency => p.agency_id == org,
                            _ => p.tenderee_id == org,
                        };
                        party && tender::opened(p.bid_opening_at, at)
                    })
                }
                _ => false,
            };
            if !visible {
                return Err(not_found(kind));
            }
            Ok(Parent {
                kind,
                id: application.id,
                uploader: (Role::Enterprise, application.enterprise_id),
                open: UNDERWRITING_STATES.contains(&application.status),
                state: application.status.as_str(),
            })
        }
        ParentKind::Claim => {
            let found: Option<(Claim, String, String, String)> = claims::table
                .inner_join(
                    guarantees::table.inner_join(sections::table.inner_join(projects::table)),
                )
                .filter(claims::id.eq(id))
                .select((
                    Claim::as_select(),
                    guarantees::enterprise_id,
                    guarantees::issuer_id,
                    projects::agency_id,
                ))
                .first(c)
                .optional()?;
            let (claim, enterprise_id, issuer_id, agency_id) =
                found.ok_or_else(|| not_found(kind))?;
            let visible = match actor.role {
                Role::Operator => true,
                Role::Enterprise => enterprise_id == org,
                Role::Issuer => issuer_id == org,
                Role::Agency => agency_id == org,
                _ => false,
            };
            if !visible {
                return Err(not_found(kind));
            }
            Ok(Parent {
                kind,
                id: claim.id,
                uploader: (Role::Agency, agency_id),
                open: claim.status == ClaimState::Filed,
                state: claim.status.as_str(),
            })
        }
    }
}

/// What reading an upload back found.
struct Examined {
    size: u64,
    sha256: String,
    head: Vec<u8>,
    tail: Vec<u8>,
}

fn examine(file: &Path) -> std::io::Result<Examined> {
    let mut f = std::fs::File::open(file)?;
    let mut hash = sha2::Sha256::new();
    let mut head = Vec::with_capacity(HEAD_BYTES);
    let mut size = 0u64;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        let piece = &buffer[..n];
        if head.len() < HEAD_BYTES {
            let room = HEAD_BYTES - head.len();
            head.extend_from_slice(&piece[..room.min(n)]);
        }
        hash.update(piece);
        size += n as u64;
    }
    let tail_len = size.min(TAIL_BYTES as u64);
    f.seek(SeekFrom::Start(size - tail_len))?;
    let mut tail = Vec::with_capacity(tail_len as usize);
    f.take(tail_len).read_to_end(&mut tail)?;
    Ok(Examined {
        size,
        sha256: hex::encode(hash.finalize()),
        head,
        tail,
    })
}

/// Attaches the spooled `file` to its parent: the parent's maker while it is open (see
/// the module documentation). Checked before anything is kept: the kind, the content's
/// type and size, and that the actor may attach here (a stranger leaves no blob). Then
/// the blob is kept, and the metadata, the parent's counter and the audit entry are
/// written in one transaction.
pub fn upload(
    ctx: &Context,
    actor: &Actor,
    upload: &Upload,
    file: &Path,
) -> Result<Uploaded, ServiceError> {
    let parent_kind = upload.parent;
    let kind: AttachmentKind = upload
        .kind
        .trim()
        .parse()
        .ok()
        .filter(|k: &AttachmentKind| k.fits(parent_kind))
        .ok_or_else(|| {
            let kinds: Vec<&str> = AttachmentKind::for_parent(parent_kind)
                .into_iter()
                .map(AttachmentKind::as_str)
                .collect();
            ServiceError::invalid(
                "kind",
                format!("a {parent_kind} takes {}", kinds.join(", ")),
            )
        })?;
    let examined = examine(file).or_internal("reading an upload back")?;
    if examined.size == 0 {
        return Err(ServiceError::invalid("file", "is empty"));
    }
    let max = ctx.limits.attachment_max_bytes;
    if examined.size > max {
        return Err(ServiceError::invalid(
            "file",
            format!("must be at most {max} bytes"),
        ));
    }
    let file_type = attachment::sniff(&examined.head, &examined.tail).ok_or_else(|| {
        ServiceError::invalid(
            "file",
            "must be a PDF, PNG, JPEG or OFD file (judged by its content, not its name)",
        )
    })?;
    let file_name = attachment::file_name(&upload.file_name, file_type);
    let size = i64::try_from(examined.size).or_internal("attachment size")?;
    let at = ctx.now();
    let mut conn = ctx.conn()?;
    visible_parent(&mut conn, actor, parent_kind, &upload.parent_id, at)?.check_upload(actor)?;
    store::put(&mut conn, &ctx.attachment_dir, &examined.sha256, file, at)?;
    ctx.write_tx(&mut conn, |c| {
        let parent = visible_parent(c, actor, parent_kind, &upload.parent_id, at)?;
        parent.check_upload(actor)?;
        let held: Option<Attachment> = attachments::table
            .filter(attachments::parent_kind.eq(parent_kind))
            .filter(attachments::parent_id.eq(&parent.id))
            .filter(attachments::sha256.eq(&examined.sha256))
            .select(Attachment::as_select())
            .first(c)
            .optional()?;
        if let Some(attachment) = held {
            return Ok(Uploaded {
                attachment,
                created: false,
            });
        }
        // One more file, if the parent is still open and has room: one conditional
        // update, so uploads at once cannot pass the limit together.
        let counted = match parent_kind {
            ParentKind::Application => diesel::update(
                applications::table
                    .filter(applications::id.eq(&parent.id))
                    .filter(applications::status.eq_any(UNDERWRITING_STATES))
                    .filter(applications::attachment_count.lt(PER_PARENT)),
            )
            .set(applications::attachment_count.eq(applications::attachment_count + 1))
            .execute(c)?,
            ParentKind::Claim => diesel::update(
                claims::table
                    .filter(claims::id.eq(&parent.id))
                    .filter(claims::status.eq(ClaimState::Filed))
                    .filter(claims::attachment_count.lt(PER_PARENT)),
            )
            .set(claims::attachment_count.eq(claims::attachment_count + 1))
            .execute(c)?,
        };
        if counted != 1 {
            // The state moved meanwhile, or the parent is full.
            visible_parent(c, actor, parent_kind, &parent.id, at)?.check_upload(actor)?;
            return Err(ServiceError::Conflict(format!(
                "a {parent_kind} holds at most {PER_PARENT} files"
            )));
        }
        let attachment = Attachment {
            id: new_id(),
            parent_kind,
            parent_id: parent.id.clone(),
            kind,
            file_name: file_name.clone(),
            media_type: file_type,
            size_bytes: size,
            sha256: examined.sha256.clone(),
            uploaded_by: actor.user_id.clone(),
            uploader_organization_id: actor.organization_id.clone(),
            created_at: at,
        };
        diesel::insert_into(attachments::table)
            .values(&attachment)
            .execute(c)?;
        audit::append(
            c,
            &AuditEvent {
                actor_user_id: Some(&actor.user_id),
                actor_organization_id: Some(&actor.organization_id),
                action: "attach",
                entity_kind: "attachment",
                entity_id: &attachment.id,
                details: serde_json::json!({
                    "sha256": attachment.sha256,
                    "size_bytes": attachment.size_bytes,
                    "media_type": attachment.media_type.as_str(),
                    "kind": attachment.kind.as_str(),
                    "parent_kind": parent_kind.as_str(),
                    "parent_id": attachment.parent_id,
                    "file_name": attachment.file_name,
                }),
                ..Default::default()
            },
            at,
        )?;
        Ok(Uploaded {
            attachment,
            created: true,
        })
    })
}

fn rows_of(
    c: &mut DbConnection,
    kind: ParentKind,
    id: &str,
) -> Result<Vec<Attachment>, ServiceError> {
    Ok(attachments::table
        .filter(attachments::parent_kind.eq(kind))
        .filter(attachments::parent_id.eq(id))
        .order((attachments::created_at.asc(), attachments::id.asc()))
        .select(Attachment::as_select())
        .load(c)?)
}

/// A parent's attachments, oldest first, if the actor may see the parent.
pub fn list(
    ctx: &Context,
    actor: &Actor,
    kind: ParentKind,
    id: &str,
) -> Result<Vec<Attachment>, ServiceError> {
    let mut conn = ctx.conn()?;
    let parent = visible_parent(&mut conn, actor, kind, id, ctx.now())?;
    rows_of(&mut conn, kind, &parent.id)
}

/// A parent's attachments and whether the actor may add one (for its page).
pub fn shelf(
    ctx: &Context,
    actor: &Actor,
    kind: ParentKind,
    id: &str,
) -> Result<Shelf, ServiceError> {
    let mut conn = ctx.conn()?;
    let parent = visible_parent(&mut conn, actor, kind, id, ctx.now())?;
    Ok(Shelf {
        rows: rows_of(&mut conn, kind, &parent.id)?,
        may_upload: parent.may_upload(actor),
        kinds: AttachmentKind::for_parent(kind),
    })
}

/// An attachment and its bytes, if the actor may see its parent; "attachment not
/// found" otherwise, the same as for an id that does not exist.
pub fn download(
    ctx: &Context,
    actor: &Actor,
    id: &str,
) -> Result<(Attachment, Vec<u8>), ServiceError> {
    let gone = || ServiceError::NotFound("attachment".into());
    let mut conn = ctx.conn()?;
    let attachment: Attachment = attachments::table
        .find(id)
        .select(Attachment::as_select())
        .first(&mut conn)
        .optional()?
        .ok_or_else(gone)?;
    visible_parent(
        &mut conn,
        actor,
        attachment.parent_kind,
        &attachment.parent_id,
        ctx.now(),
    )
    .map_err(|e| match e {
        ServiceError::NotFound(_) => gone(),
        other => other,
    })?;
    let bytes = store::get(&mut conn, &ctx.attachment_dir, &attachment.sha256)?;
    Ok((attachment, bytes))
}
