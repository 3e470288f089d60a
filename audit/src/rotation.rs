//! Rotation of a log's signing key (a node's or the gateway's) without
//! breaking verification: the old key signs a checkpoint that announces the
//! new one (a `SIGNING_KEY_ROTATED` entry), and from then on the log is
//! signed by the new key; `audit verify` with the old key pinned, and the
//! gateway's checkpoint collection, follow the chain of keys.
//!
//! Run with every process writing the log stopped (each holds the key in
//! memory; one that still runs writes nothing more once it sees the
//! handover). The new key is written first beside the old
//! (`node-signing-key.pk8.next`), then announced, then put in the old
//! one's place; a rotation interrupted between two steps is finished by
//! running it again.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use aws_lc_rs::signature::KeyPair as _;
use exchange_service::db::Db;

use crate::keys::{
    NEXT_SIGNING_KEY_FILE, SIGNING_KEY_FILE, load_or_generate_next_key,
    load_or_generate_signing_key,
};
use crate::{AuditLog, AuditOptions};

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The entry the handover checkpoint covers.
    pub seq: u64,
    /// Hex of the retired key's public key.
    pub old_key: String,
    /// Hex of the new key's public key.
    pub new_key: String,
}

/// Rotates the signing key kept in `data_dir` of the log `log_id` stored
/// in `db` (migrated); `timeout` bounds the handover's write.
pub async fn rotate_signing_key(
    data_dir: &Path,
    db: &Db,
    log_id: &str,
    timeout: Duration,
) -> anyhow::Result<Rotation> {
    let current_path = data_dir.join(SIGNING_KEY_FILE);
    let next_path = data_dir.join(NEXT_SIGNING_KEY_FILE);
    anyhow::ensure!(
        current_path.exists(),
        "{} does not exist: there is no signing key to rotate",
        current_path.display()
    );
    let old = load_or_generate_signing_key(data_dir)?;
    let next = load_or_generate_next_key(&next_path)?;
    let old_key = hex::encode(old.public_key().as_ref());
    let new_key = hex::encode(next.public_key().as_ref());
    let announced = {
        let mut conn = db.pool().acquire().await?;
        crate::newest_handover(&mut conn, 0, i64::MAX as u64).await?
    };
    let seq = match announced {
        // Interrupted after the announcement: only the key file is left
        // to move.
        Some(handover) if handover.key == new_key => handover.seq,
        Some(handover) if handover.key != old_key => anyhow::bail!(
            "the audit log's key is {} since seq {}, not the key in {} ({old_key})",
            handover.key,
            handover.seq,
            current_path.display()
        ),
        _ => {
            // The only writer: no checkpoint of its own but the handover.
            let audit = AuditLog::open(
                db.clone(),
                std::sync::Arc::new(old),
                AuditOptions {
                    checkpoint_every: u64::MAX,
                    checkpoint_interval: Duration::from_secs(365 * 24 * 3600),
                    timeout,
                    ..AuditOptions::new(log_id)
                },
            )
            .await?;
            audit
                .hand_over(&new_key)
                .await
                .context("announcing the new key in the audit log")?
        }
    };
    std::fs::rename(&next_path, &current_path).with_context(|| {
        format!(
            "putting the new key in place: run the rotation again to finish ({} holds it)",
            next_path.display()
        )
    })?;
    Ok(Rotation {
        seq,
        old_key,
        new_key,
    })
}
