//! Files the exchange makes in its data directory the first time it starts (the master
//! key, the time-stamping authority), made once even when several `baohan serve`
//! processes start together on one directory.
//!
//! Without care, each process sees the file missing and makes its own: the losers fail
//! to start ("file exists", a half-written key), or worse, run with a key or a
//! time-stamping certificate that is not the one on disk, so what one instance signs
//! another cannot check. So the maker holds an exclusive lock on a file beside what it
//! makes and looks again once it has the lock, and what it makes appears under its
//! final name in one rename, whole: a process that finds the file without taking the
//! lock reads all of it or nothing.

use std::fs::{File, OpenOptions};
use std::path::Path;

/// Runs `make` while holding an exclusive lock on `lock_path` (created if missing),
/// unless `done` already holds before the lock is needed. `done` is asked again under
/// the lock: another process may have made the thing while this one waited.
pub fn make_once<E>(
    lock_path: &Path,
    done: impl Fn() -> bool,
    make: impl FnOnce() -> Result<(), E>,
) -> Result<(), E>
where
    E: From<std::io::Error>,
{
    if done() {
        return Ok(());
    }
    if let Some(parent) = lock_path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path)?;
    lock.lock()?;
    let made = if done() { Ok(()) } else { make() };
    // Closing the file releases the lock; say so explicitly for the reader.
    drop(lock);
    made
}

/// Writes `contents` to `path` whole, readable by the owner only: into a temporary
/// file beside it, then renamed into place.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let temporary = path.with_extension(format!("new-{}", std::process::id()));
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options
        .open(&temporary)
        .and_then(|mut file: File| file.write_all(contents).and_then(|()| file.sync_all()));
    match written.and_then(|()| std::fs::rename(&temporary, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&temporary);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_made_once_is_made_by_one_of_many_starters() {
        let dir = tempfile::tempdir().expect("dir");
        let target = dir.path().join("made");
        let makers: Vec<_> = (0..8)
            .map(|n| {
                let (lock, target) = (dir.path().join("made.lock"), target.clone());
                std::thread::spawn(move || {
                    make_once::<std::io::Error>(
                        &lock,
                        || target.exists(),
                        || {
                            // Slow enough that the others arrive meanwhile.
                            std::thread::sleep(std::time::Duration::from_millis(20));
                            write_private_file(&target, format!("maker {n}").as_bytes())?;
                            let log = dir_log(&target);
                            std::fs::write(&log, format!("{}x", read(&log)))
                        },
                    )
                    .expect("made or found");
                    read(&target)
                })
            })
            .collect();
        let seen: Vec<String> = makers
            .into_iter()
            .map(|m| m.join().expect("maker"))
            .collect();
        assert!(seen.iter().all(|s| s == &seen[0]), "{seen:?}");
        assert_eq!(read(&dir_log(&target)), "x", "made once");
    }

    fn dir_log(target: &Path) -> std::path::PathBuf {
        target.with_extension("log")
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_default()
    }

    #[cfg(unix)]
    #[test]
    fn a_private_file_is_the_owners_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("key");
        write_private_file(&path, b"secret").expect("written");
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read(&path).expect("read"), b"secret");
    }
}
