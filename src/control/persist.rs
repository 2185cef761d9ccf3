//! Writing admin API edits back to the configuration file (`admin.persist: true`), so that
//! a reader — weir's next reload, an editor, a deploy tool — sees the old file or the new
//! one, never half of either.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Replaces the file `path` (the file a symbolic link leads to) with `text` at once, with the
/// old one's permissions and, where this process may set them, owner and group; synced, with
/// its folder, before it returns.
pub(super) fn replace(path: &Path, text: &str) -> std::io::Result<()> {
    let path = std::fs::canonicalize(path)?;
    let folder = path.parent().unwrap_or(Path::new("/"));
    let old = std::fs::metadata(&path)?;
    let mut file = tempfile::NamedTempFile::new_in(folder)?;
    file.write_all(text.as_bytes())?;
    file.as_file().set_permissions(old.permissions())?;
    if let Err(e) = std::os::unix::fs::fchown(file.as_file(), Some(old.uid()), Some(old.gid())) {
        log::warn!(
            "admin.persist: {} keeps this process's owner: {e}",
            path.display()
        );
    }
    file.as_file().sync_all()?;
    file.persist(&path).map_err(|e| e.error)?;
    std::fs::File::open(folder)?.sync_all()
}

/// Warns at start when edits could not be written next to `path`, rather than at the first
/// edit an operator makes.
pub(super) fn warn_if_unwritable(path: &Path) {
    let folder = path.parent().unwrap_or(Path::new("."));
    if let Err(e) = tempfile::NamedTempFile::new_in(folder) {
        log::warn!(
            "admin.persist: cannot write in {} ({e}); admin API edits will fail until it can",
            folder.display()
        );
    }
}
