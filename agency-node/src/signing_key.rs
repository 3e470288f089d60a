//! `agency-node keys rotate-signing-key`: the node's audit-signing key
//! rotated by [`exchange_audit::rotation`] on the node's records database,
//! with every process of the node stopped.

pub use exchange_audit::rotation::Rotation;

use crate::config::NodeConfig;

/// Rotates the audit-signing key of the node `config` describes.
pub async fn rotate(config: &NodeConfig) -> anyhow::Result<Rotation> {
    let db = crate::store::open(&config.database_url(), config.audit.write_timeout()).await?;
    let rotated = exchange_audit::rotation::rotate_signing_key(
        &config.data_dir,
        &db,
        config.agency.as_str(),
        config.audit.write_timeout(),
    )
    .await;
    db.close().await;
    rotated
}
