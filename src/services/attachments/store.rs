//! Where the bytes of attachments are kept, content-addressed by SHA-256: the one place
//! the backends differ.
//!
//! - **SQLite** (one instance, one disk): files in the data directory,
//!   `<data_dir>/attachments/<first 2 hex>/<hex>`, each written to a temporary file in
//!   its own directory, flushed to disk and renamed into place (the directory flushed
//!   too), so a file under its hash is always whole. A file already there is kept, never
//!   written again.
//! - **PostgreSQL** (several instances share the database, not a disk): rows of
//!   `attachment_blobs`, keyed by the hash, inserted with `ON CONFLICT DO NOTHING` (which
//!   diesel's multi-backend connection cannot say, so it is said to the PostgreSQL
//!   connection here).
//!
//! A blob is written before, and outside, the transaction that adds the metadata naming
//! it: a metadata row never points at a missing blob, and a blob whose metadata
//! transaction rolled back is harmless garbage (a later upload of the same content
//! uses it).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::attachment_blobs;
use crate::db::DbConnection;
use crate::services::{OrInternal, ServiceError};

/// Where the blob of `sha256` (lower-case hex) lives under `dir` on SQLite.
pub fn blob_path(dir: &Path, sha256: &str) -> PathBuf {
    let shard = sha256.get(..2).unwrap_or("00");
    dir.join(shard).join(sha256)
}

/// Keeps the content of `file` (whose SHA-256 is `sha256`) unless it is kept already.
pub fn put(
    c: &mut DbConnection,
    dir: &Path,
    sha256: &str,
    file: &Path,
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    match c {
        DbConnection::Sqlite(_) => {
            put_on_disk(dir, sha256, file).or_internal("keeping an attachment")
        }
        DbConnection::Pg(pg) => {
            #[derive(QueryableByName)]
            struct Kept {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            let kept: Kept =
                diesel::sql_query("SELECT count(*) AS n FROM attachment_blobs WHERE sha256 = $1")
                    .bind::<diesel::sql_types::Text, _>(sha256)
                    .get_result(pg)?;
            if kept.n > 0 {
                return Ok(());
            }
            let mut content = Vec::new();
            std::fs::File::open(file)
                .and_then(|mut f| f.read_to_end(&mut content))
                .or_internal("reading an upload back")?;
            let size = i64::try_from(content.len()).or_internal("attachment size")?;
            diesel::sql_query(
                "INSERT INTO attachment_blobs (sha256, size_bytes, content, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (sha256) DO NOTHING",
            )
            .bind::<diesel::sql_types::Text, _>(sha256)
            .bind::<diesel::sql_types::BigInt, _>(size)
            .bind::<diesel::sql_types::Binary, _>(content)
            .bind::<diesel::sql_types::Timestamp, _>(at)
            .execute(pg)?;
            Ok(())
        }
    }
}

fn put_on_disk(dir: &Path, sha256: &str, file: &Path) -> std::io::Result<()> {
    let path = blob_path(dir, sha256);
    if path.exists() {
        return Ok(());
    }
    let shard = path.parent().unwrap_or(dir);
    std::fs::create_dir_all(shard)?;
    let mut temporary = tempfile::NamedTempFile::new_in(shard)?;
    std::io::copy(&mut std::fs::File::open(file)?, temporary.as_file_mut())?;
    temporary.as_file_mut().flush()?;
    temporary.as_file().sync_all()?;
    match temporary.persist_noclobber(&path) {
        Ok(_) => {}
        // Another upload of the same content got there first: its file is the same.
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e.error),
    }
    // The rename is on disk before the metadata naming the file commits.
    std::fs::File::open(shard)?.sync_all()
}

/// The content kept under `sha256`. A missing blob is the server's fault (someone
/// removed a file): internal.
pub fn get(c: &mut DbConnection, dir: &Path, sha256: &str) -> Result<Vec<u8>, ServiceError> {
    if matches!(c, DbConnection::Sqlite(_)) {
        return std::fs::read(blob_path(dir, sha256)).or_internal("reading a kept attachment");
    }
    attachment_blobs::table
        .find(sha256)
        .select(attachment_blobs::content)
        .first::<Vec<u8>>(c)
        .optional()?
        .or_internal("a kept attachment")
}
