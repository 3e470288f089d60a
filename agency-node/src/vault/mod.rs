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
use exchange_schema::Category;
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
    LegalHoldReason,
    RightsRequestDetails,
    RightsRequestAnswer,
}

impl Field {
    /// All of them, in the order the docs list them.
    pub const ALL: [Field; 20] = [
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
        Field::LegalHoldReason,
        Field::RightsRequestDetails,
        Field::RightsRequestAnswer,
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
            Field::LegalHoldReason => ("legal_holds", "reason"),
            Field::RightsRequestDetails => ("rights_requests", "details"),
            Field::RightsRequestAnswer => ("rights_requests", "answer"),
        }
    }

    /// The field stored at `(table, column)`, if that column is sealed.
    pub fn at(table: &str, column: &str) -> Option<Field> {
        Field::ALL
            .into_iter()
            .find(|f| f.location() == (table, column))
    }
}

/// A part of a survivor's record with a data key of its own: a category
/// (so a retention period can erase one category by destroying its key),
/// or the record as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, async_graphql::Enum)]
#[graphql(name = "RecordPart", rename_items = "SCREAMING_SNAKE_CASE")]
pub enum Part {
    Identity,
    Contact,
    Case,
    Health,
    Legal,
    /// What belongs to the record as a whole (consent texts, referral
    /// notes, receipts, break-glass justifications). Erasing RECORD erases
    /// every part.
    Record,
}

impl Part {
    pub const ALL: [Part; 6] = [
        Part::Identity,
        Part::Contact,
        Part::Case,
        Part::Health,
        Part::Legal,
        Part::Record,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Part::Identity => "IDENTITY",
            Part::Contact => "CONTACT",
            Part::Case => "CASE",
            Part::Health => "HEALTH",
            Part::Legal => "LEGAL",
            Part::Record => "RECORD",
        }
    }

    pub fn parse(text: &str) -> Option<Part> {
        Part::ALL.into_iter().find(|p| p.as_str() == text)
    }

    /// The part holding a category's content.
    pub fn of(category: Category) -> Part {
        match category {
            Category::Identity => Part::Identity,
            Category::Contact => Part::Contact,
            Category::Case => Part::Case,
            Category::Health => Part::Health,
            Category::Legal => Part::Legal,
        }
    }

    /// The category a part holds (none for the record as a whole).
    pub fn category(self) -> Option<Category> {
        match self {
            Part::Identity => Some(Category::Identity),
            Part::Contact => Some(Category::Contact),
            Part::Case => Some(Category::Case),
            Part::Health => Some(Category::Health),
            Part::Legal => Some(Category::Legal),
            Part::Record => None,
        }
    }
}

impl Field {
    /// The part whose key seals this field. A case note is sealed in the
    /// part of its own category instead ([`SurvivorKey::seal_in`]).
    pub fn part(self) -> Part {
        match self {
            Field::SurvivorIdentity => Part::Identity,
            Field::SurvivorContact => Part::Contact,
            Field::SurvivorHealth => Part::Health,
            Field::SurvivorLegal => Part::Legal,
            Field::SurvivorCase
            | Field::CaseNoteBody
            | Field::ServiceOutcome
            | Field::CarePlanGoals
            | Field::CarePlanWitness
            | Field::CarePlanChangeRequest
            | Field::CarePlanActionDescription => Part::Case,
            Field::ReferralNotes
            | Field::ReferralEventNote
            | Field::GrantWitness
            | Field::GrantRevocationReason
            | Field::BreakGlassJustification
            | Field::ConsentReceipt
            | Field::LegalHoldReason
            | Field::RightsRequestDetails
            | Field::RightsRequestAnswer => Part::Record,
        }
    }
}

/// Why a survivor's content could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The key of this part of the survivor's record was destroyed (the
    /// part was erased).
    #[error("the {} data key of survivor {survivor} was destroyed", part.as_str())]
    Destroyed {
        survivor: String,
        part: Part,
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
///
/// Unwrapped keys are cached in memory for the cache's age
/// (`[vault] key_cache_seconds`, [`KEY_CACHE_SECONDS`] by default; 0 turns
/// it off; at most [`KEY_CACHE_SURVIVORS`] survivors), which saves a
/// key-store query and the unwrapping on most reads. [`Vault::destroy`]
/// empties the entry at once in this process; another replica of the node
/// may still open that part for at most the cache's age.
#[derive(Clone)]
pub struct Vault {
    kek: Arc<dyn KeyEncryptionKey>,
    /// Retired KEKs: they still unwrap the data keys they wrapped, until
    /// [`Vault::rewrap`] has wrapped every one under `kek`; they wrap none.
    retired: Vec<Arc<dyn KeyEncryptionKey>>,
    keys: Db,
    cache: Arc<quick_cache::sync::Cache<String, (std::time::Instant, SurvivorKey)>>,
    cache_age: Duration,
}

/// How long an unwrapped key stays cached by default, in seconds.
pub const KEY_CACHE_SECONDS: u64 = 30;
/// How many survivors' keys the cache holds at most.
pub const KEY_CACHE_SURVIVORS: usize = 10_000;

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("kek", &self.kek.id())
            .finish_non_exhaustive()
    }
}

/// The context a data key is wrapped under: it names the survivor and part.
fn wrap_context(survivor_id: &str, part: Part) -> Vec<u8> {
    format!("exchange/data-key/v1\0{survivor_id}\0{}", part.as_str()).into_bytes()
}

const KEY_COLUMNS: &str = "survivor_id, part, kek_id, wrapped, destroyed_at";

/// Which key-encryption key this is, to this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KekRole {
    /// It wraps every new data key.
    Current,
    /// Listed in `[vault] retired_kek_files`: it only unwraps.
    Retired,
    /// Named in the key store, but this node does not have it.
    Unknown,
}

impl KekRole {
    pub fn as_str(self) -> &'static str {
        match self {
            KekRole::Current => "current",
            KekRole::Retired => "retired",
            KekRole::Unknown => "unknown",
        }
    }
}

/// How many live data keys one key-encryption key wraps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KekCensus {
    pub kek_id: String,
    pub role: KekRole,
    pub live_keys: i64,
}

/// How many data keys [`Vault::rewrap`] wraps again per batch.
const REWRAP_BATCH: i64 = 500;

impl Vault {
    /// Opens the key store at `url` (applying its migrations) with `kek`,
    /// caching unwrapped keys for [`KEY_CACHE_SECONDS`].
    pub async fn open(
        kek: Arc<dyn KeyEncryptionKey>,
        url: &str,
        acquire_timeout: Duration,
    ) -> anyhow::Result<Self> {
        Self::open_with_cache(
            kek,
            url,
            acquire_timeout,
            Duration::from_secs(KEY_CACHE_SECONDS),
        )
        .await
    }

    /// As [`Vault::open`], caching unwrapped keys for `cache_age` (zero: no
    /// cache, every read asks the key store).
    pub async fn open_with_cache(
        kek: Arc<dyn KeyEncryptionKey>,
        url: &str,
        acquire_timeout: Duration,
        cache_age: Duration,
    ) -> anyhow::Result<Self> {
        let keys = Db::connect_with(url, acquire_timeout).await?;
        keys.migrate(&KEY_MIGRATIONS).await?;
        Ok(Self {
            kek,
            retired: Vec::new(),
            keys,
            cache: Arc::new(quick_cache::sync::Cache::new(KEY_CACHE_SURVIVORS)),
            cache_age,
        })
    }

    /// The same key store with retired KEKs that still unwrap the keys they
    /// wrapped (a rotation in progress). A retired KEK that is the current
    /// one is refused.
    pub fn with_retired(mut self, retired: Vec<Arc<dyn KeyEncryptionKey>>) -> anyhow::Result<Self> {
        if let Some(same) = retired.iter().find(|k| k.id() == self.kek.id()) {
            anyhow::bail!(
                "key-encryption key {} is both the current one and a retired one",
                same.id()
            );
        }
        self.retired = retired;
        Ok(self)
    }

    /// The KEK named `id`: the current one or a retired one.
    fn kek_named(&self, id: &str) -> Result<&Arc<dyn KeyEncryptionKey>, KekError> {
        std::iter::once(&self.kek)
            .chain(&self.retired)
            .find(|k| k.id() == id)
            .ok_or_else(|| KekError::Unknown(id.to_owned()))
    }

    /// Wraps again, under the current KEK, every live data key a retired
    /// KEK wrapped (a batch at a time, each key in its own conditional
    /// update, so replicas and a restart can share the work); returns how
    /// many it wrapped. Destroyed keys have nothing to wrap. When it
    /// returns, the retired KEKs can be removed from the configuration and
    /// destroyed. The data keys themselves do not change: nothing sealed
    /// is rewritten.
    pub async fn rewrap(&self) -> Result<u64, VaultError> {
        let mut done = 0;
        loop {
            let rows = sqlx::query(&format!(
                "SELECT {KEY_COLUMNS} FROM survivor_keys \
                 WHERE kek_id <> $1 AND wrapped IS NOT NULL AND destroyed_at IS NULL \
                 ORDER BY survivor_id, part LIMIT $2"
            ))
            .bind(self.kek.id())
            .bind(REWRAP_BATCH)
            .fetch_all(self.keys.pool())
            .await?;
            if rows.is_empty() {
                return Ok(done);
            }
            for row in &rows {
                let survivor: String = row.try_get("survivor_id")?;
                let part_text: String = row.try_get("part")?;
                let old: String = row.try_get("kek_id")?;
                let wrapped: String = row.try_get("wrapped")?;
                let part = Part::parse(&part_text)
                    .ok_or_else(|| KekError::WrongKeyOrTampered(old.clone()))?;
                let context = wrap_context(&survivor, part);
                let bytes = STANDARD_NO_PAD
                    .decode(&wrapped)
                    .map_err(|_| KekError::WrongKeyOrTampered(old.clone()))?;
                let data_key = self.kek_named(&old)?.unwrap(&context, &bytes).await?;
                let rewrapped = self.kek.wrap(&context, &data_key).await?;
                let updated = sqlx::query(
                    "UPDATE survivor_keys SET wrapped = $4, kek_id = $5 \
                     WHERE survivor_id = $1 AND part = $2 AND kek_id = $3 \
                     AND destroyed_at IS NULL",
                )
                .bind(&survivor)
                .bind(&part_text)
                .bind(&old)
                .bind(STANDARD_NO_PAD.encode(rewrapped))
                .bind(self.kek.id())
                .execute(self.keys.pool())
                .await?;
                done += updated.rows_affected();
            }
        }
    }

    /// How many live data keys each KEK wraps: the current one, then each
    /// retired one, then any other the key store names (which this node
    /// could not unwrap). A rotation is done when the retired ones wrap none.
    pub async fn census(&self) -> Result<Vec<KekCensus>, VaultError> {
        let rows = sqlx::query(
            "SELECT kek_id, COUNT(*) AS n FROM survivor_keys \
             WHERE wrapped IS NOT NULL AND destroyed_at IS NULL GROUP BY kek_id ORDER BY kek_id",
        )
        .fetch_all(self.keys.pool())
        .await?;
        let mut out: Vec<KekCensus> = std::iter::once((&self.kek, KekRole::Current))
            .chain(self.retired.iter().map(|k| (k, KekRole::Retired)))
            .map(|(k, role)| KekCensus {
                kek_id: k.id().to_owned(),
                role,
                live_keys: 0,
            })
            .collect();
        for row in rows {
            let (id, n): (String, i64) = (row.try_get("kek_id")?, row.try_get("n")?);
            match out.iter_mut().find(|c| c.kek_id == id) {
                Some(entry) => entry.live_keys = n,
                None => out.push(KekCensus {
                    kek_id: id,
                    role: KekRole::Unknown,
                    live_keys: n,
                }),
            }
        }
        Ok(out)
    }

    fn cached(&self, survivor_id: &str) -> Option<SurvivorKey> {
        let (at, key) = self.cache.get(survivor_id)?;
        (at.elapsed() < self.cache_age).then_some(key)
    }

    /// The KEK's name.
    pub fn kek_id(&self) -> &str {
        self.kek.id()
    }

    /// The key store's database.
    pub fn key_store(&self) -> &Db {
        &self.keys
    }

    /// The survivor's data keys, made (and stored, wrapped) for every part
    /// that has none. A destroyed key is never made again: that part stays
    /// erased.
    pub async fn create(&self, survivor_id: &str) -> Result<SurvivorKey, VaultError> {
        match self.key(survivor_id).await {
            Ok(key) if key.parts.len() == Part::ALL.len() => return Ok(key),
            Ok(_) | Err(VaultError::Missing(_)) => {}
            Err(err) => return Err(err),
        }
        self.cache.remove(survivor_id);
        let now = to_ms(OffsetDateTime::now_utc());
        // Each key in its own statement, so that a storage fault surfaces as
        // the statement's error (a transaction's failed commit on a full
        // SQLite disk was seen to leave no key and report none).
        for part in Part::ALL {
            self.insert_key(self.keys.pool(), survivor_id, part, now)
                .await?;
        }
        self.cache.remove(survivor_id);
        self.key(survivor_id).await
    }

    /// Wraps a fresh data key for one part and stores it. Two makers at
    /// once: the first insert wins and both use its key.
    async fn insert_key<'e, E>(
        &self,
        executor: E,
        survivor_id: &str,
        part: Part,
        now: i64,
    ) -> Result<(), VaultError>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        let mut fresh = [0u8; 32];
        aws_lc_rs::rand::fill(&mut fresh)
            .map_err(|_| KekError::Unavailable("no randomness for a data key".into()))?;
        let wrapped = self
            .kek
            .wrap(&wrap_context(survivor_id, part), &fresh)
            .await?;
        sqlx::query(
            "INSERT INTO survivor_keys (survivor_id, part, kek_id, wrapped, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (survivor_id, part) DO NOTHING",
        )
        .bind(survivor_id)
        .bind(part.as_str())
        .bind(self.kek.id())
        .bind(STANDARD_NO_PAD.encode(&wrapped))
        .bind(now)
        .execute(executor)
        .await?;
        Ok(())
    }

    /// Data keys for many new survivors at once, in one transaction of the
    /// key store, for generators of synthetic data (the statistics bench);
    /// survivors that have keys keep them. The node's own writes use
    /// [`Vault::create`], whose every statement reports its storage fault.
    pub async fn create_many(&self, survivor_ids: &[String]) -> Result<SurvivorKeys, VaultError> {
        let now = to_ms(OffsetDateTime::now_utc());
        let mut tx = self.keys.pool().begin().await?;
        for id in survivor_ids {
            for part in Part::ALL {
                self.insert_key(&mut *tx, id, part, now).await?;
            }
        }
        tx.commit().await?;
        for id in survivor_ids {
            self.cache.remove(id);
        }
        self.keys(survivor_ids).await
    }

    /// The survivor's data keys.
    pub async fn key(&self, survivor_id: &str) -> Result<SurvivorKey, VaultError> {
        if let Some(key) = self.cached(survivor_id) {
            return Ok(key);
        }
        let rows = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM survivor_keys WHERE survivor_id = $1"
        ))
        .bind(survivor_id)
        .fetch_all(self.keys.pool())
        .await?;
        if rows.is_empty() {
            return Err(VaultError::Missing(survivor_id.to_owned()));
        }
        let mut key = SurvivorKey {
            survivor_id: survivor_id.to_owned(),
            parts: HashMap::new(),
        };
        for row in &rows {
            let (part, state) = self.unwrap_row(row).await?;
            key.parts.insert(part, state);
        }
        self.cache.insert(
            survivor_id.to_owned(),
            (std::time::Instant::now(), key.clone()),
        );
        Ok(key)
    }

    /// The data keys of several survivors (those with none are left out).
    pub async fn keys(&self, survivor_ids: &[String]) -> Result<SurvivorKeys, VaultError> {
        let mut keys = SurvivorKeys::default();
        let mut unique: Vec<&String> = survivor_ids.iter().collect();
        unique.sort();
        unique.dedup();
        unique.retain(|id| match self.cached(id) {
            Some(key) => {
                keys.by_survivor.insert((*id).clone(), key);
                false
            }
            None => true,
        });
        let fetched: Vec<String> = unique.iter().map(|id| (*id).clone()).collect();
        for chunk in unique.chunks(500) {
            let sql = format!(
                "SELECT {KEY_COLUMNS} FROM survivor_keys WHERE survivor_id IN ({})",
                crate::store::placeholders(1, chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(id.as_str());
            }
            for row in query.fetch_all(self.keys.pool()).await? {
                let id: String = row.try_get("survivor_id")?;
                let (part, state) = self.unwrap_row(&row).await?;
                keys.by_survivor
                    .entry(id.clone())
                    .or_insert_with(|| SurvivorKey {
                        survivor_id: id,
                        parts: HashMap::new(),
                    })
                    .parts
                    .insert(part, state);
            }
        }
        let now = std::time::Instant::now();
        for id in fetched {
            if let Some(key) = keys.by_survivor.get(&id) {
                self.cache.insert(id, (now, key.clone()));
            }
        }
        Ok(keys)
    }

    async fn unwrap_row(&self, row: &sqlx::any::AnyRow) -> Result<(Part, PartKey), VaultError> {
        let id: String = row.try_get("survivor_id")?;
        let part_text: String = row.try_get("part")?;
        let wrapped: Option<String> = row.try_get("wrapped")?;
        let destroyed_at: Option<i64> = row.try_get("destroyed_at")?;
        let kek_id: String = row.try_get("kek_id")?;
        let tampered = || KekError::WrongKeyOrTampered(kek_id.clone());
        let part = Part::parse(&part_text).ok_or_else(tampered)?;
        let (Some(wrapped), None) = (wrapped, destroyed_at) else {
            return Ok((
                part,
                PartKey::Destroyed(from_ms(destroyed_at.unwrap_or_default())),
            ));
        };
        let wrapped = STANDARD_NO_PAD.decode(wrapped).map_err(|_| tampered())?;
        let bytes = self
            .kek_named(&kek_id)?
            .unwrap(&wrap_context(&id, part), &wrapped)
            .await?;
        let key = RandomizedNonceKey::new(&AES_256_GCM, &bytes).map_err(|_| tampered())?;
        Ok((part, PartKey::Live(Arc::new(key))))
    }

    /// Destroys the keys of these parts of the survivor's record: from now
    /// on nothing sealed under them opens, in this database or any copy of
    /// it. Returns the parts whose live key this call destroyed (a part
    /// already destroyed is left with its first time).
    pub async fn destroy(
        &self,
        survivor_id: &str,
        parts: &[Part],
        at: OffsetDateTime,
    ) -> Result<Vec<Part>, VaultError> {
        self.cache.remove(survivor_id);
        let mut destroyed = Vec::new();
        for part in parts {
            let done = sqlx::query(
                "UPDATE survivor_keys SET wrapped = NULL, destroyed_at = $3 \
                 WHERE survivor_id = $1 AND part = $2 AND destroyed_at IS NULL",
            )
            .bind(survivor_id)
            .bind(part.as_str())
            .bind(to_ms(at))
            .execute(self.keys.pool())
            .await?;
            if done.rows_affected() == 1 {
                destroyed.push(*part);
            } else {
                // None at all: record the destruction, so the part can never
                // be given a key later.
                sqlx::query(
                    "INSERT INTO survivor_keys \
                     (survivor_id, part, kek_id, wrapped, created_at, destroyed_at) \
                     VALUES ($1, $2, $3, NULL, $4, $4) ON CONFLICT (survivor_id, part) DO NOTHING",
                )
                .bind(survivor_id)
                .bind(part.as_str())
                .bind(self.kek.id())
                .bind(to_ms(at))
                .execute(self.keys.pool())
                .await?;
            }
        }
        self.cache.remove(survivor_id);
        Ok(destroyed)
    }

    /// Closes the key store.
    /// The key store's database (backups read it).
    pub fn db(&self) -> &Db {
        &self.keys
    }

    pub async fn close(&self) {
        self.keys.close().await;
    }
}

/// One part's key as the store holds it.
#[derive(Clone)]
enum PartKey {
    Live(Arc<RandomizedNonceKey>),
    Destroyed(OffsetDateTime),
}

/// One survivor's data keys, unwrapped, in memory only.
#[derive(Clone)]
pub struct SurvivorKey {
    survivor_id: String,
    parts: HashMap<Part, PartKey>,
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

    /// When the key of `part` was destroyed, if it was.
    pub fn erased(&self, part: Part) -> Option<OffsetDateTime> {
        match self.parts.get(&part) {
            Some(PartKey::Destroyed(at)) => Some(*at),
            _ => None,
        }
    }

    fn part_key(&self, part: Part) -> Result<&RandomizedNonceKey, VaultError> {
        match self.parts.get(&part) {
            Some(PartKey::Live(key)) => Ok(key),
            Some(PartKey::Destroyed(at)) => Err(VaultError::Destroyed {
                survivor: self.survivor_id.clone(),
                part,
                at: *at,
            }),
            None => Err(VaultError::Missing(self.survivor_id.clone())),
        }
    }

    /// Seals a value of `field` under its part's key.
    pub fn seal(&self, field: Field, plain: &str) -> Result<String, VaultError> {
        self.seal_in(field.part(), field, plain)
    }

    /// Seals a value of `field` under the key of `part` (a case note: the
    /// part of its category).
    pub fn seal_in(&self, part: Part, field: Field, plain: &str) -> Result<String, VaultError> {
        let key = self.part_key(part)?;
        let mut in_out = plain.as_bytes().to_vec();
        let nonce = key
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
        self.open_in(field.part(), field, stored)
    }

    /// Opens a stored value of `field` sealed under the key of `part`.
    pub fn open_in(&self, part: Part, field: Field, stored: &str) -> Result<String, VaultError> {
        let key = self.part_key(part)?;
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
        let plain = key
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

    /// Opens an optional stored value, or `None` when its part was erased.
    pub fn open_or_erased(
        &self,
        field: Field,
        stored: Option<&str>,
    ) -> Result<Option<String>, VaultError> {
        match self.open_opt(field, stored) {
            Err(VaultError::Destroyed { .. }) => Ok(None),
            other => other,
        }
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
    by_survivor: HashMap<String, SurvivorKey>,
}

impl SurvivorKeys {
    /// The keys of one of them.
    pub fn get(&self, survivor_id: &str) -> Result<&SurvivorKey, VaultError> {
        self.by_survivor
            .get(survivor_id)
            .ok_or_else(|| VaultError::Missing(survivor_id.to_owned()))
    }

    /// Opens a stored value of a survivor's; `None` when its part was
    /// erased (an erased survivor's content in a list of other things reads
    /// as absent, the list does not fail).
    pub fn open_or_erased(
        &self,
        survivor_id: &str,
        field: Field,
        stored: Option<&str>,
    ) -> Result<Option<String>, VaultError> {
        self.get(survivor_id)?.open_or_erased(field, stored)
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

    /// The key store at `dir` opened with KEK `current` (bytes all equal to
    /// it) and retired KEKs, with no key cache.
    async fn vault_with(dir: &std::path::Path, current: u8, retired: &[u8]) -> Vault {
        let url = exchange_service::db::sqlite_url(dir, KEY_STORE_FILE);
        let kek = Arc::new(FileKek::from_bytes(&[current; 32]).unwrap());
        Vault::open_with_cache(kek, &url, Duration::from_secs(5), Duration::ZERO)
            .await
            .unwrap()
            .with_retired(
                retired
                    .iter()
                    .map(|b| {
                        Arc::new(FileKek::from_bytes(&[*b; 32]).unwrap())
                            as Arc<dyn KeyEncryptionKey>
                    })
                    .collect(),
            )
            .unwrap()
    }

    #[tokio::test]
    async fn a_new_kek_takes_over_every_live_key_and_the_old_one_can_go() {
        let dir = tempfile::tempdir().unwrap();
        let old = vault_with(dir.path(), 3, &[]).await;
        let sealed_a = old
            .create("a")
            .await
            .unwrap()
            .seal(Field::SurvivorIdentity, "Amal")
            .unwrap();
        let sealed_b = old
            .create("b")
            .await
            .unwrap()
            .seal(Field::CaseNoteBody, "note")
            .unwrap();
        old.destroy("b", &[Part::Contact], OffsetDateTime::now_utc())
            .await
            .unwrap();
        old.close().await;

        // The new KEK alone cannot unwrap what the old one wrapped.
        let alone = vault_with(dir.path(), 4, &[]).await;
        assert!(matches!(
            alone.key("a").await,
            Err(VaultError::Kek(KekError::Unknown(_)))
        ));
        alone.close().await;

        // With the old one retired: reads work before, during and after.
        let rotating = vault_with(dir.path(), 4, &[3]).await;
        let census = rotating.census().await.unwrap();
        assert_eq!(census[0].role, KekRole::Current);
        assert_eq!(census[0].live_keys, 0);
        assert_eq!(
            (census[1].role, census[1].live_keys),
            (KekRole::Retired, 11)
        );
        let key = rotating.key("a").await.unwrap();
        assert_eq!(
            key.open(Field::SurvivorIdentity, &sealed_a).unwrap(),
            "Amal"
        );
        // Six parts a survivor, less b's destroyed contact key.
        assert_eq!(rotating.rewrap().await.unwrap(), 11);
        assert_eq!(rotating.rewrap().await.unwrap(), 0, "nothing left to do");
        let census = rotating.census().await.unwrap();
        assert_eq!(census[0].live_keys, 11);
        assert_eq!(census[1].live_keys, 0);
        // A key made during the rotation is wrapped by the new KEK.
        rotating.create("c").await.unwrap();
        rotating.close().await;

        // The old KEK can go: the new one alone opens everything.
        let after = vault_with(dir.path(), 4, &[]).await;
        let b = after.key("b").await.unwrap();
        assert_eq!(b.open(Field::CaseNoteBody, &sealed_b).unwrap(), "note");
        assert!(
            b.erased(Part::Contact).is_some(),
            "a destroyed key stays destroyed"
        );
        after.key("c").await.unwrap();
        // And the old one alone opens nothing now.
        let old_only = vault_with(dir.path(), 3, &[]).await;
        assert!(old_only.key("a").await.is_err());
    }

    #[tokio::test]
    async fn a_retired_kek_cannot_be_the_current_one() {
        let dir = tempfile::tempdir().unwrap();
        let url = exchange_service::db::sqlite_url(dir.path(), KEY_STORE_FILE);
        let kek = Arc::new(FileKek::from_bytes(&[3; 32]).unwrap());
        let vault = Vault::open(kek.clone(), &url, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(vault.with_retired(vec![kek]).is_err());
    }

    #[tokio::test]
    async fn a_destroyed_key_is_gone_for_good() {
        let (_dir, vault) = vault().await;
        let key = vault.create("a").await.unwrap();
        let contact = key.seal(Field::SurvivorContact, "phone").unwrap();
        let identity = key.seal(Field::SurvivorIdentity, "name").unwrap();
        let at = OffsetDateTime::now_utc();
        assert_eq!(
            vault.destroy("a", &[Part::Contact], at).await.unwrap(),
            vec![Part::Contact]
        );
        assert!(
            vault
                .destroy("a", &[Part::Contact], at)
                .await
                .unwrap()
                .is_empty()
        );
        // Only that part is gone, for good: making keys again leaves it.
        let key = vault.create("a").await.unwrap();
        assert!(matches!(
            key.open(Field::SurvivorContact, &contact),
            Err(VaultError::Destroyed {
                part: Part::Contact,
                ..
            })
        ));
        assert!(key.erased(Part::Contact).is_some());
        assert_eq!(
            key.open(Field::SurvivorIdentity, &identity).unwrap(),
            "name"
        );
        assert_eq!(
            key.open_or_erased(Field::SurvivorContact, Some(&contact))
                .unwrap(),
            None
        );
        // Never keyed, then erased: that part can never be keyed.
        vault.destroy("never", &Part::ALL, at).await.unwrap();
        let never = vault.create("never").await.unwrap();
        assert!(never.seal(Field::ReferralNotes, "x").is_err());
        let keys = vault.keys(&["a".into(), "b".into()]).await.unwrap();
        assert!(keys.get("a").is_ok());
        assert!(matches!(keys.get("b"), Err(VaultError::Missing(_))));
    }

    #[tokio::test]
    async fn another_kek_cannot_read_the_key_store() {
        let (dir, vault) = vault().await;
        vault.create("a").await.unwrap();
        vault.close().await;
        let other = Arc::new(FileKek::from_bytes(&[4u8; 32]).unwrap());
        let url = exchange_service::db::sqlite_url(dir.path(), KEY_STORE_FILE);
        let thief = Vault::open_with_cache(other, &url, Duration::from_secs(5), Duration::ZERO)
            .await
            .unwrap();
        assert!(matches!(
            thief.key("a").await,
            Err(VaultError::Kek(KekError::Unknown(_)))
        ));
        // Naming its own KEK in the store does not help: the wrapped keys
        // do not open with it.
        sqlx::query("UPDATE survivor_keys SET kek_id = $1")
            .bind(thief.kek_id().to_owned())
            .execute(thief.key_store().pool())
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
