//! The log's Ed25519 signing key, kept in the data directory and generated
//! (readable by the owner only) on first start.

use std::path::Path;

use anyhow::Context as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use exchange_service::files::write_private;

/// File name of the log's checkpoint-signing key in a data directory (a
/// node's or the gateway's).
pub const SIGNING_KEY_FILE: &str = "node-signing-key.pk8";
/// During a rotation: the new key, until the old one has announced it.
pub const NEXT_SIGNING_KEY_FILE: &str = "node-signing-key.pk8.next";

/// Loads the log's Ed25519 signing key (checkpoints and signed head), generating it (readable
/// by the owner only) on first start.
pub fn load_or_generate_signing_key(data_dir: &Path) -> anyhow::Result<Ed25519KeyPair> {
    let path = data_dir.join(SIGNING_KEY_FILE);
    if path.exists() {
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        return Ed25519KeyPair::from_pkcs8(&bytes)
            .map_err(|_| anyhow::anyhow!("{} is not an Ed25519 PKCS#8 key", path.display()));
    }
    let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|_| anyhow::anyhow!("generating the signing key failed"))?;
    write_private(&path, doc.as_ref())?;
    tracing::info!(path = %path.display(), "generated the audit log's signing key");
    Ed25519KeyPair::from_pkcs8(doc.as_ref())
        .map_err(|_| anyhow::anyhow!("generated key did not load"))
}

/// Hex of the public key of the log whose data directory is `data_dir`
/// (never creates a key).
pub fn public_key_hex(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join(SIGNING_KEY_FILE);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let key = Ed25519KeyPair::from_pkcs8(&bytes)
        .map_err(|_| anyhow::anyhow!("{} is not an Ed25519 PKCS#8 key", path.display()))?;
    Ok(hex::encode(key.public_key().as_ref()))
}

/// Generates a new Ed25519 signing key into `path` (readable by the owner
/// only), or loads the one a rotation interrupted there left.
pub fn load_or_generate_next_key(path: &Path) -> anyhow::Result<Ed25519KeyPair> {
    if path.exists() {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        return Ed25519KeyPair::from_pkcs8(&bytes)
            .map_err(|_| anyhow::anyhow!("{} is not an Ed25519 PKCS#8 key", path.display()));
    }
    let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|_| anyhow::anyhow!("generating the signing key failed"))?;
    write_private(path, doc.as_ref())?;
    Ed25519KeyPair::from_pkcs8(doc.as_ref())
        .map_err(|_| anyhow::anyhow!("generated key did not load"))
}
