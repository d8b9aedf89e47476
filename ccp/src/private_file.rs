//! Files only their owner may read (sessions, keys, secrets, the suite's
//! state): written to a temporary file beside the target, mode 0600, synced,
//! then moved into place, so a reader never sees half a file and a crash
//! never leaves one.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;

/// Replaces `path` with `bytes` atomically, readable by its owner only,
/// creating its directory when missing.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let file = staged(path, bytes)?;
    file.persist(path)
        .map_err(|err| err.error)
        .with_context(|| format!("replace {}", path.display()))?;
    Ok(())
}

/// Writes `bytes` to `path` unless it exists already (the first writer
/// wins); readable by its owner only. Returns false when the file existed.
pub fn create_new(path: &Path, bytes: &[u8]) -> anyhow::Result<bool> {
    let file = staged(path, bytes)?;
    match file.persist_noclobber(path) {
        Ok(_) => Ok(true),
        Err(err) if err.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(err) => Err(err.error).with_context(|| format!("create {}", path.display())),
    }
}

/// Returns a synced temporary file holding `bytes` in `path`'s directory.
fn staged(path: &Path, bytes: &[u8]) -> anyhow::Result<tempfile::NamedTempFile> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let mut file = tempfile::Builder::new()
        .prefix(".ccp-")
        .tempfile_in(dir)
        .with_context(|| format!("create a temporary file in {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restrict {}", file.path().display()))?;
    }
    file.write_all(bytes)
        .and_then(|()| file.as_file().sync_all())
        .with_context(|| format!("write {}", file.path().display()))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_atomic_write_replaces_the_file_and_only_its_owner_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("secret");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let left: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 1, "no temporary file is left behind: {left:?}");
    }

    #[test]
    fn the_first_writer_of_a_new_file_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        assert!(create_new(&path, b"first").unwrap());
        assert!(!create_new(&path, b"second").unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
    }
}
