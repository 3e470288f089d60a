//! Files holding secrets: created readable by the owner only.

use std::path::Path;

use anyhow::Context as _;

/// Writes a secret file readable by the owner only (the one rule:
/// [`exchange_trust::files::write_private`]), naming the file on failure.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    exchange_trust::files::write_private(path, bytes)
        .with_context(|| format!("creating {}", path.display()))
}

/// Publishes a secret file unless one is there already
/// ([`exchange_trust::files::publish_private`]); whether this call did.
pub fn publish_private(path: &Path, bytes: &[u8]) -> anyhow::Result<bool> {
    exchange_trust::files::publish_private(path, bytes)
        .with_context(|| format!("creating {}", path.display()))
}

/// Refuses a secret file others could read or write: it must be readable
/// and writable by its owner only (0600 or 0400); or, as PostgreSQL allows
/// for its key files, owned by root and readable by its group, never
/// writable by it (at most 0640), which is how Kubernetes mounts a Secret
/// for a pod's `fsGroup`.
#[cfg(unix)]
pub fn check_private(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let metadata =
        std::fs::metadata(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let mode = metadata.permissions().mode();
    let allowed_beyond_owner = if metadata.uid() == 0 { 0o040 } else { 0 };
    if mode & 0o077 & !allowed_beyond_owner != 0 {
        anyhow::bail!(
            "{} can be read or written by others than its owner (mode {:o}); \
             make it 0600 (chmod 600), or owned by root and at most 0640, \
             before it is used",
            path.display(),
            mode & 0o777
        );
    }
    Ok(())
}

#[cfg(not(unix))]
pub fn check_private(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}
