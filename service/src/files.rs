//! Files holding secrets: created readable by the owner only.

use std::path::Path;

use anyhow::Context as _;

/// Writes a secret file readable by the owner only (the one rule:
/// [`exchange_trust::files::write_private`]), naming the file on failure.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    exchange_trust::files::write_private(path, bytes)
        .with_context(|| format!("creating {}", path.display()))
}
