//! The node's key-encryption key (KEK): what wraps every survivor's data
//! key. [`KeyEncryptionKey`] is the interface a KMS or an HSM implements;
//! [`FileKek`] is the default, a 256-bit AES key in a file readable by the
//! node's user only, generated on first start.
//!
//! A wrapped key is bound to the survivor it belongs to (the context is
//! authenticated with it), so a wrapped key copied onto another survivor's
//! row does not unwrap.

use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::digest;
use futures::future::BoxFuture;

/// Why a data key could not be wrapped or unwrapped.
#[derive(Debug, thiserror::Error)]
pub enum KekError {
    /// The wrapped key was not made by this KEK for this survivor, or was
    /// altered.
    #[error("the wrapped key does not open with key-encryption key {0}")]
    WrongKeyOrTampered(String),
    /// The key service could not be reached or refused (a KMS or HSM).
    #[error("the key service is unavailable: {0}")]
    Unavailable(String),
    /// The data key was wrapped by a KEK this node was not given (neither
    /// the current one nor a retired one still being rotated away from).
    #[error(
        "a data key is wrapped by key-encryption key {0}, which this node does not have: \
         list its file in [vault] retired_kek_files until the rotation is done"
    )]
    Unknown(String),
}

/// What wraps and unwraps data keys. A KMS or HSM implements it by calling
/// its encrypt and decrypt operations with `context` as the encryption
/// context (additional authenticated data); the data key never leaves the
/// process unwrapped except to that service.
pub trait KeyEncryptionKey: Send + Sync + 'static {
    /// A stable, non-secret name of this key, stored beside each key it
    /// wrapped (so a rotation can tell which wrapped which).
    fn id(&self) -> &str;

    /// Wraps a data key, binding it to `context`.
    fn wrap<'a>(
        &'a self,
        context: &'a [u8],
        data_key: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>, KekError>>;

    /// Unwraps what [`KeyEncryptionKey::wrap`] made with the same context.
    fn unwrap<'a>(
        &'a self,
        context: &'a [u8],
        wrapped: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>, KekError>>;
}

/// The KEK file's name in the data directory, unless configured.
pub const KEK_FILE: &str = "key-encryption-key";

/// A KEK kept in a file: 32 random bytes, readable by the owner only.
pub struct FileKek {
    key: RandomizedNonceKey,
    id: String,
}

impl FileKek {
    /// Loads the key at `path`, generating it (mode 0600) when the file does
    /// not exist. Refuses a file of the wrong length, and on Unix one that
    /// others than its owner can read or write.
    pub fn load_or_generate(path: &Path) -> anyhow::Result<Self> {
        let bytes = if path.exists() {
            check_private(path)?;
            std::fs::read(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?
        } else {
            let mut fresh = [0u8; 32];
            aws_lc_rs::rand::fill(&mut fresh)
                .map_err(|_| anyhow::anyhow!("generating the key-encryption key failed"))?;
            exchange_service::files::write_private(path, &fresh)?;
            tracing::info!(path = %path.display(), "generated the node's key-encryption key");
            fresh.to_vec()
        };
        Self::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Loads an existing key (a retired one, kept to unwrap until every
    /// data key is wrapped again): never generates one.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        if !path.exists() {
            anyhow::bail!("no key-encryption key at {}", path.display());
        }
        Self::load_or_generate(path)
    }

    /// A KEK from its 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> anyhow::Result<Self> {
        if bytes.len() != 32 {
            anyhow::bail!(
                "a key-encryption key is 32 bytes, this one is {}",
                bytes.len()
            );
        }
        let key = RandomizedNonceKey::new(&AES_256_GCM, bytes)
            .map_err(|_| anyhow::anyhow!("not an AES-256 key"))?;
        // The name: a digest of the key under a label, so it says which key
        // without saying anything of it.
        let mut named = b"exchange/kek-id/v1\0".to_vec();
        named.extend_from_slice(bytes);
        let id = format!(
            "file:{}",
            &hex::encode(digest::digest(&digest::SHA256, &named))[..16]
        );
        Ok(Self { key, id })
    }
}

/// The KEK file must be private ([`exchange_service::files::check_private`]).
fn check_private(path: &Path) -> anyhow::Result<()> {
    exchange_service::files::check_private(path)
}

impl KeyEncryptionKey for FileKek {
    fn id(&self) -> &str {
        &self.id
    }

    fn wrap<'a>(
        &'a self,
        context: &'a [u8],
        data_key: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>, KekError>> {
        Box::pin(async move {
            let mut in_out = data_key.to_vec();
            let nonce = self
                .key
                .seal_in_place_append_tag(Aad::from(context), &mut in_out)
                .map_err(|_| KekError::Unavailable("sealing failed".into()))?;
            let mut wrapped = nonce.as_ref().to_vec();
            wrapped.extend_from_slice(&in_out);
            Ok(wrapped)
        })
    }

    fn unwrap<'a>(
        &'a self,
        context: &'a [u8],
        wrapped: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>, KekError>> {
        Box::pin(async move {
            let wrong = || KekError::WrongKeyOrTampered(self.id.clone());
            if wrapped.len() < NONCE_LEN {
                return Err(wrong());
            }
            let (nonce, sealed) = wrapped.split_at(NONCE_LEN);
            let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
            let mut in_out = sealed.to_vec();
            let plain = self
                .key
                .open_in_place(nonce, Aad::from(context), &mut in_out)
                .map_err(|_| wrong())?;
            Ok(plain.to_vec())
        })
    }
}

/// Where the KEK file is: the configured path, or [`KEK_FILE`] in the data
/// directory.
pub fn kek_path(configured: Option<&Path>, data_dir: &Path) -> PathBuf {
    configured.map_or_else(|| data_dir.join(KEK_FILE), Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek() -> FileKek {
        FileKek::from_bytes(&[7u8; 32]).unwrap()
    }

    #[tokio::test]
    async fn a_wrapped_key_unwraps_only_with_its_own_context() {
        let kek = kek();
        let wrapped = kek.wrap(b"survivor-a", &[1u8; 32]).await.unwrap();
        assert_eq!(
            kek.unwrap(b"survivor-a", &wrapped).await.unwrap(),
            vec![1u8; 32]
        );
        assert!(matches!(
            kek.unwrap(b"survivor-b", &wrapped).await,
            Err(KekError::WrongKeyOrTampered(_))
        ));
    }

    #[tokio::test]
    async fn another_kek_cannot_unwrap() {
        let wrapped = kek().wrap(b"s", &[1u8; 32]).await.unwrap();
        let other = FileKek::from_bytes(&[8u8; 32]).unwrap();
        assert_ne!(other.id(), kek().id());
        assert!(other.unwrap(b"s", &wrapped).await.is_err());
    }

    #[test]
    fn a_key_of_the_wrong_length_is_refused() {
        assert!(FileKek::from_bytes(&[0u8; 16]).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_kek_file_others_can_read_is_refused_and_a_new_one_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEK_FILE);
        let first = FileKek::load_or_generate(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(FileKek::load_or_generate(&path).unwrap().id(), first.id());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = FileKek::load_or_generate(&path).err().unwrap().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        // Group-readable (a Kubernetes Secret for the pod's fsGroup) is
        // private enough only when root owns the file; group-writable never.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let root_owned = {
            use std::os::unix::fs::MetadataExt as _;
            std::fs::metadata(&path).unwrap().uid() == 0
        };
        assert_eq!(FileKek::load_or_generate(&path).is_ok(), root_owned);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660)).unwrap();
        assert!(FileKek::load_or_generate(&path).is_err());
    }
}
