//! Encryption at rest, per survivor: every piece of a survivor's record is
//! stored sealed (AES-256-GCM through aws-lc-rs) under a data key of that
//! survivor, with the survivor's ID and the field as associated data, so a
//! sealed value moved to another survivor's row or another column does not
//! open.
//!
//! Data keys live in the node's key store ([`Vault`]), a database of its
//! own apart from the records (`keys.db` beside `node.db` by default), each
//! wrapped by the node's key-encryption key ([`kek`]), which is kept outside
//! both. So a copy of the records database, or a backup of it, holds
//! ciphertext and no key; with the key store but without the KEK, no key
//! unwraps. Destroying a survivor's data key ([`Vault::destroy`]) makes every
//! copy of that survivor's record unreadable, backups included
//! (crypto-shredding).
//!
//! What is sealed is listed in [`Field`]; IDs, times, statuses and codes
//! stay in clear so that the node can still look up, join, filter and sort
//! (docs/encryption-at-rest.md lists them and why).

pub mod kek;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use exchange_service::db::{Db, Migrations, from_ms, to_ms};
use sqlx::Row as _;
use time::OffsetDateTime;

pub use kek::{FileKek, KekError, KeyEncryptionKey};

static KEYS_SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/keys-sqlite");
static KEYS_POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/keys-postgres");

/// The key store's tables.
pub static KEY_MIGRATIONS: Migrations = Migrations {
    name: "key store",
    sqlite: &KEYS_SQLITE,
    postgres: &KEYS_POSTGRES,
};

/// The key store's SQLite file in the data directory, unless configured.
pub const KEY_STORE_FILE: &str = "keys.db";

/// How a sealed value starts in its column.
const SEALED_PREFIX: &str = "sealed:v1:";

/// Every sealed column: a survivor's content, wherever it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    SurvivorIdentity,
    SurvivorContact,
    SurvivorCase,
    SurvivorHealth,
    SurvivorLegal,
    CaseNoteBody,
    ServiceOutcome,
    CarePlanGoals,
    CarePlanWitness,
    CarePlanChangeRequest,
    CarePlanActionDescription,
    ReferralNotes,
    ReferralEventNote,
    GrantWitness,
    GrantRevocationReason,
    BreakGlassJustification,
    ConsentReceipt,
}

impl Field {
    /// All of them, in the order the docs list them.
    pub const ALL: [Field; 17] = [
        Field::SurvivorIdentity,
        Field::SurvivorContact,
        Field::SurvivorCase,
        Field::SurvivorHealth,
        Field::SurvivorLegal,
        Field::CaseNoteBody,
        Field::ServiceOutcome,
        Field::CarePlanGoals,
        Field::CarePlanWitness,
        Field::CarePlanChangeRequest,
        Field::CarePlanActionDescription,
        Field::ReferralNotes,
        Field::ReferralEventNote,
        Field::GrantWitness,
        Field::GrantRevocationReason,
        Field::BreakGlassJustification,
        Field::ConsentReceipt,
    ];

    /// `(table, column)` where it is stored.
    pub fn location(self) -> (&'static str, &'static str) {
        match self {
            Field::SurvivorIdentity => ("survivors", "identity"),
            Field::SurvivorContact => ("survivors", "contact"),
            Field::SurvivorCase => ("survivors", "case_details"),
            Field::SurvivorHealth => ("survivors", "health"),
            Field::SurvivorLegal => ("survivors", "legal"),
            Field::CaseNoteBody => ("case_notes", "body"),
            Field::ServiceOutcome => ("services", "outcome"),
            Field::CarePlanGoals => ("care_plans", "goals"),
            Field::CarePlanWitness => ("care_plans", "witness"),
            Field::CarePlanChangeRequest => ("care_plans", "change_request"),
            Field::CarePlanActionDescription => ("care_plan_actions", "description"),
            Field::ReferralNotes => ("referrals", "notes"),
            Field::ReferralEventNote => ("referral_events", "note"),
            Field::GrantWitness => ("consent_grants", "witness"),
            Field::GrantRevocationReason => ("consent_grants", "revocation_reason"),
            Field::BreakGlassJustification => ("break_glass_openings", "justification"),
            Field::ConsentReceipt => ("consent_receipts", "receipt"),
        }
    }

    /// The field stored at `(table, column)`, if that column is sealed.
    pub fn at(table: &str, column: &str) -> Option<Field> {
        Field::ALL
            .into_iter()
            .find(|f| f.location() == (table, column))
    }
}

/// Why a survivor's content could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The survivor's data key was destroyed (the record was erased).
    #[error("the data key of survivor {survivor} was destroyed")]
    Destroyed {
        survivor: String,
        at: OffsetDateTime,
    },
    /// No data key was ever made for this survivor.
    #[error("survivor {0} has no data key")]
    Missing(String),
    /// A stored value does not open under the survivor's key: altered,
    /// moved from another row, or never sealed.
    #[error("stored {table}.{column} of survivor {survivor} does not open under its key")]
    Unreadable {
        survivor: String,
        table: &'static str,
        column: &'static str,
    },
    #[error(transparent)]
    Kek(#[from] KekError),
    /// The key store could not be read or written.
    #[error("the key store: {0}")]
    Storage(#[from] sqlx::Error),
}

impl VaultError {
    /// Whether it is a fault of storage or of the key service (the request
    /// can be tried again later), rather than of the data.
    pub fn is_unavailable(&self) -> bool {
        match self {
            VaultError::Storage(err) => exchange_service::db::is_storage_fault(err),
            VaultError::Kek(KekError::Unavailable(_)) => true,
            _ => false,
        }
    }
}

/// The node's key store and its KEK.
#[derive(Clone)]
pub struct Vault {
    kek: Arc<dyn KeyEncryptionKey>,
    keys: Db,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("kek", &self.kek.id())
            .finish_non_exhaustive()
    }
}

/// The context a data key is wrapped under: it names the survivor.
fn wrap_context(survivor_id: &str) -> Vec<u8> {
    let mut context = b"exchange/data-key/v1\0".to_vec();
    context.extend_from_slice(survivor_id.as_bytes());
    context
}

impl Vault {
    /// Opens the key store at `url` (applying its migrations) with `kek`.
    pub async fn open(
        kek: Arc<dyn KeyEncryptionKey>,
        url: &str,
        acquire_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let keys = Db::connect_with(url, acquire_timeout).await?;
        keys.migrate(&KEY_MIGRATIONS).await?;
        Ok(Self { kek, keys })
    }

    /// The KEK's name.
    pub fn kek_id(&self) -> &str {
        self.kek.id()
    }

    /// The key store's database.
    pub fn key_store(&self) -> &Db {
        &self.keys
    }

    /// The survivor's data key, made (and stored, wrapped) if it has none.
    /// A destroyed key is never made again: that survivor's ID stays erased.
    pub async fn create(&self, survivor_id: &str) -> Result<SurvivorKey, VaultError> {
        match self.key(survivor_id).await {
            Err(VaultError::Missing(_)) => {}
            other => return other,
        }
        let mut fresh = [0u8; 32];
        aws_lc_rs::rand::fill(&mut fresh)
            .map_err(|_| KekError::Unavailable("no randomness for a data key".into()))?;
        let wrapped = self.kek.wrap(&wrap_context(survivor_id), &fresh).await?;
        // Two makers at once: the first insert wins and both use its key.
        sqlx::query(
            "INSERT INTO survivor_keys (survivor_id, kek_id, wrapped, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (survivor_id) DO NOTHING",
        )
        .bind(survivor_id)
        .bind(self.kek.id())
        .bind(STANDARD_NO_PAD.encode(&wrapped))
        .bind(to_ms(OffsetDateTime::now_utc()))
        .execute(self.keys.pool())
        .await?;
        self.key(survivor_id).await
    }

    /// The survivor's data key.
    pub async fn key(&self, survivor_id: &str) -> Result<SurvivorKey, VaultError> {
        let row = sqlx::query(
            "SELECT survivor_id, wrapped, destroyed_at FROM survivor_keys WHERE survivor_id = $1",
        )
        .bind(survivor_id)
        .fetch_optional(self.keys.pool())
        .await?;
        let Some(row) = row else {
            return Err(VaultError::Missing(survivor_id.to_owned()));
        };
        self.unwrap_row(&row).await?.into_result()
    }

    /// The data keys of several survivors (those with none are left out).
    pub async fn keys(&self, survivor_ids: &[String]) -> Result<SurvivorKeys, VaultError> {
        let mut keys = SurvivorKeys::default();
        let mut unique: Vec<&String> = survivor_ids.iter().collect();
        unique.sort();
        unique.dedup();
        for chunk in unique.chunks(500) {
            let sql = format!(
                "SELECT survivor_id, wrapped, destroyed_at FROM survivor_keys \
                 WHERE survivor_id IN ({})",
                crate::store::placeholders(1, chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(id.as_str());
            }
            for row in query.fetch_all(self.keys.pool()).await? {
                let id: String = row.try_get("survivor_id")?;
                let state = self.unwrap_row(&row).await?;
                keys.by_survivor.insert(id, state);
            }
        }
        Ok(keys)
    }

    async fn unwrap_row(&self, row: &sqlx::any::AnyRow) -> Result<KeyState, VaultError> {
        let id: String = row.try_get("survivor_id")?;
        let wrapped: Option<String> = row.try_get("wrapped")?;
        let destroyed_at: Option<i64> = row.try_get("destroyed_at")?;
        let (Some(wrapped), None) = (wrapped, destroyed_at) else {
            return Ok(KeyState::Destroyed {
                survivor: id,
                at: from_ms(destroyed_at.unwrap_or_default()),
            });
        };
        let wrapped = STANDARD_NO_PAD
            .decode(wrapped)
            .map_err(|_| KekError::WrongKeyOrTampered(self.kek.id().to_owned()))?;
        let bytes = self.kek.unwrap(&wrap_context(&id), &wrapped).await?;
        let key = RandomizedNonceKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| KekError::WrongKeyOrTampered(self.kek.id().to_owned()))?;
        Ok(KeyState::Live(SurvivorKey {
            survivor_id: id,
            key: Arc::new(key),
        }))
    }

    /// Destroys the survivor's data key: from now on nothing sealed under
    /// it opens, in this database or any copy of it. Returns whether a
    /// live key was destroyed (false: none, or already destroyed).
    pub async fn destroy(&self, survivor_id: &str, at: OffsetDateTime) -> Result<bool, VaultError> {
        let done = sqlx::query(
            "UPDATE survivor_keys SET wrapped = NULL, destroyed_at = $2 \
             WHERE survivor_id = $1 AND destroyed_at IS NULL",
        )
        .bind(survivor_id)
        .bind(to_ms(at))
        .execute(self.keys.pool())
        .await?;
        if done.rows_affected() == 0 {
            // None at all: record the destruction, so the ID can never be
            // given a key later.
            let made = sqlx::query(
                "INSERT INTO survivor_keys (survivor_id, kek_id, wrapped, created_at, destroyed_at) \
                 VALUES ($1, $2, NULL, $3, $3) ON CONFLICT (survivor_id) DO NOTHING",
            )
            .bind(survivor_id)
            .bind(self.kek.id())
            .bind(to_ms(at))
            .execute(self.keys.pool())
            .await?;
            let _ = made;
            return Ok(false);
        }
        Ok(true)
    }

    /// Closes the key store.
    pub async fn close(&self) {
        self.keys.close().await;
    }
}

/// A survivor's key as the store holds it.
enum KeyState {
    Live(SurvivorKey),
    Destroyed {
        survivor: String,
        at: OffsetDateTime,
    },
}

impl KeyState {
    fn into_result(self) -> Result<SurvivorKey, VaultError> {
        match self {
            KeyState::Live(key) => Ok(key),
            KeyState::Destroyed { survivor, at } => Err(VaultError::Destroyed { survivor, at }),
        }
    }
}

/// One survivor's data key, unwrapped, in memory only.
#[derive(Clone)]
pub struct SurvivorKey {
    survivor_id: String,
    key: Arc<RandomizedNonceKey>,
}

impl std::fmt::Debug for SurvivorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SurvivorKey")
            .field("survivor_id", &self.survivor_id)
            .finish_non_exhaustive()
    }
}

fn aad(survivor_id: &str, field: Field) -> Vec<u8> {
    let (table, column) = field.location();
    format!("exchange/sealed/v1\0{survivor_id}\0{table}.{column}").into_bytes()
}

impl SurvivorKey {
    /// The survivor it belongs to.
    pub fn survivor_id(&self) -> &str {
        &self.survivor_id
    }

    /// Seals a value of `field`.
    pub fn seal(&self, field: Field, plain: &str) -> Result<String, VaultError> {
        let mut in_out = plain.as_bytes().to_vec();
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(aad(&self.survivor_id, field)), &mut in_out)
            .map_err(|_| KekError::Unavailable("sealing failed".into()))?;
        let mut stored = nonce.as_ref().to_vec();
        stored.extend_from_slice(&in_out);
        Ok(format!("{SEALED_PREFIX}{}", STANDARD_NO_PAD.encode(stored)))
    }

    /// Seals an optional value.
    pub fn seal_opt(
        &self,
        field: Field,
        plain: Option<&str>,
    ) -> Result<Option<String>, VaultError> {
        plain.map(|p| self.seal(field, p)).transpose()
    }

    /// Opens a stored value of `field`.
    pub fn open(&self, field: Field, stored: &str) -> Result<String, VaultError> {
        let (table, column) = field.location();
        let unreadable = || VaultError::Unreadable {
            survivor: self.survivor_id.clone(),
            table,
            column,
        };
        let bytes = stored
            .strip_prefix(SEALED_PREFIX)
            .and_then(|b64| STANDARD_NO_PAD.decode(b64).ok())
            .filter(|b| b.len() >= NONCE_LEN)
            .ok_or_else(unreadable)?;
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| unreadable())?;
        let mut in_out = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad(&self.survivor_id, field)), &mut in_out)
            .map_err(|_| unreadable())?;
        String::from_utf8(plain.to_vec()).map_err(|_| unreadable())
    }

    /// Opens an optional stored value.
    pub fn open_opt(
        &self,
        field: Field,
        stored: Option<&str>,
    ) -> Result<Option<String>, VaultError> {
        stored.map(|s| self.open(field, s)).transpose()
    }
}

/// Whether a stored value is sealed (the at-rest upgrade seals those that
/// are not).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED_PREFIX)
}

/// The data keys of several survivors.
#[derive(Default)]
pub struct SurvivorKeys {
    by_survivor: HashMap<String, KeyState>,
}

impl SurvivorKeys {
    /// The key of one of them.
    pub fn get(&self, survivor_id: &str) -> Result<&SurvivorKey, VaultError> {
        match self.by_survivor.get(survivor_id) {
            Some(KeyState::Live(key)) => Ok(key),
            Some(KeyState::Destroyed { survivor, at }) => Err(VaultError::Destroyed {
                survivor: survivor.clone(),
                at: *at,
            }),
            None => Err(VaultError::Missing(survivor_id.to_owned())),
        }
    }

    /// Opens a stored value of a survivor's; `None` when that survivor's
    /// key was destroyed (an erased survivor's content in a list of other
    /// things reads as absent, the list does not fail).
    pub fn open_or_erased(
        &self,
        survivor_id: &str,
        field: Field,
        stored: Option<&str>,
    ) -> Result<Option<String>, VaultError> {
        match self.get(survivor_id) {
            Ok(key) => key.open_opt(field, stored),
            Err(VaultError::Destroyed { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn vault() -> (tempfile::TempDir, Vault) {
        let dir = tempfile::tempdir().unwrap();
        let kek = Arc::new(FileKek::from_bytes(&[3u8; 32]).unwrap());
        let url = exchange_service::db::sqlite_url(dir.path(), KEY_STORE_FILE);
        let vault = Vault::open(kek, &url, Duration::from_secs(5))
            .await
            .unwrap();
        (dir, vault)
    }

    #[tokio::test]
    async fn a_sealed_value_opens_only_for_its_survivor_and_field() {
        let (_dir, vault) = vault().await;
        let a = vault.create("a").await.unwrap();
        let b = vault.create("b").await.unwrap();
        let sealed = a.seal(Field::SurvivorContact, "+1 555 0100").unwrap();
        assert!(!sealed.contains("555"));
        assert_eq!(
            a.open(Field::SurvivorContact, &sealed).unwrap(),
            "+1 555 0100"
        );
        assert!(matches!(
            a.open(Field::SurvivorHealth, &sealed),
            Err(VaultError::Unreadable { .. })
        ));
        assert!(matches!(
            b.open(Field::SurvivorContact, &sealed),
            Err(VaultError::Unreadable { .. })
        ));
        // Plain text where a sealed value belongs is refused, not shown.
        assert!(a.open(Field::SurvivorContact, "+1 555 0100").is_err());
    }

    #[tokio::test]
    async fn create_is_idempotent_and_the_key_survives_a_reopen() {
        let (dir, vault) = vault().await;
        let first = vault.create("a").await.unwrap();
        let sealed = first.seal(Field::CaseNoteBody, "note").unwrap();
        let again = vault.create("a").await.unwrap();
        assert_eq!(again.open(Field::CaseNoteBody, &sealed).unwrap(), "note");
        vault.close().await;
        let kek = Arc::new(FileKek::from_bytes(&[3u8; 32]).unwrap());
        let url = exchange_service::db::sqlite_url(dir.path(), KEY_STORE_FILE);
        let reopened = Vault::open(kek, &url, Duration::from_secs(5))
            .await
            .unwrap();
        let key = reopened.key("a").await.unwrap();
        assert_eq!(key.open(Field::CaseNoteBody, &sealed).unwrap(), "note");
    }

    #[tokio::test]
    async fn a_destroyed_key_is_gone_for_good() {
        let (_dir, vault) = vault().await;
        vault.create("a").await.unwrap();
        let at = OffsetDateTime::now_utc();
        assert!(vault.destroy("a", at).await.unwrap());
        assert!(!vault.destroy("a", at).await.unwrap());
        assert!(matches!(
            vault.key("a").await,
            Err(VaultError::Destroyed { .. })
        ));
        assert!(matches!(
            vault.create("a").await,
            Err(VaultError::Destroyed { .. })
        ));
        // Never keyed, then erased: it can never be keyed.
        vault.destroy("never", at).await.unwrap();
        assert!(matches!(
            vault.create("never").await,
            Err(VaultError::Destroyed { .. })
        ));
        let keys = vault.keys(&["a".into(), "b".into()]).await.unwrap();
        assert_eq!(
            keys.open_or_erased("a", Field::ReferralNotes, Some("x"))
                .unwrap(),
            None
        );
        assert!(matches!(keys.get("b"), Err(VaultError::Missing(_))));
    }

    #[tokio::test]
    async fn another_kek_cannot_read_the_key_store() {
        let (dir, vault) = vault().await;
        vault.create("a").await.unwrap();
        vault.close().await;
        let other = Arc::new(FileKek::from_bytes(&[4u8; 32]).unwrap());
        let url = exchange_service::db::sqlite_url(dir.path(), KEY_STORE_FILE);
        let thief = Vault::open(other, &url, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(matches!(
            thief.key("a").await,
            Err(VaultError::Kek(KekError::WrongKeyOrTampered(_)))
        ));
    }

    #[test]
    fn every_field_has_its_own_location() {
        let mut seen = std::collections::HashSet::new();
        for field in Field::ALL {
            assert!(seen.insert(field.location()), "{field:?}");
            assert_eq!(
                Field::at(field.location().0, field.location().1),
                Some(field)
            );
        }
    }
}
