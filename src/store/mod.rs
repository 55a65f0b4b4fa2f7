//! The store: sled trees behind small typed modules. Callers never see a `Tree` or a key byte.
//!
//! Trees (one per entity, one per secondary index, named `{key}_{value}`):
//! - `meta`        name → value (schema version, generated secrets, bootstrap flag)
//! - `counters`    name → u64 BE (explicit counts: `Tree::len()` is a full scan)
//! - `users`       UserId(16) → User (JSON)
//! - `email_user`  folded email → UserId(16)
//! - `tokens`      sha256(token)(32) → TokenRecord (JSON)
//! - `user_token`  UserId(16) ‖ sha256(token)(32) → ()
//! - `token_expiry` expires_at(8, ordered micros) ‖ sha256(token)(32) → ()
//!
//! sled calls block (and may fsync): async code reaches the store through [`Store::run`] and
//! [`Store::write`], which run on the store's own small thread [`pool`]. `write` returns only when the write is
//! durable, through the group-commit [`flusher`].

pub mod backup;
pub mod counters;
pub mod flusher;
pub mod keys;
pub mod meta;
pub mod pool;
pub mod schema;
pub mod tokens;
pub mod users;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use crate::config::StoreSettings;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    #[error("store: a record does not decode: {0}")]
    Codec(#[from] serde_json::Error),
    #[error("{0}")]
    Conflict(&'static str),
    #[error("not found")]
    NotFound,
    #[error("store: {0}")]
    Corrupt(String),
    #[error("store: flush failed: {0}")]
    Flush(Arc<str>),
    #[error("store schema: {0}")]
    Schema(String),
    #[error("store: blocking task failed: {0}")]
    Blocking(String),
    #[error("store: {0}")]
    Io(#[from] std::io::Error),
}

impl From<TransactionError<StoreError>> for StoreError {
    fn from(e: TransactionError<StoreError>) -> Self {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StoreError::Sled(e),
        }
    }
}

/// Aborts a sled transaction with a store error.
pub(crate) fn abort<T>(e: StoreError) -> Result<T, ConflictableTransactionError<StoreError>> {
    Err(ConflictableTransactionError::Abort(e))
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    Ok(serde_json::to_vec(value)?)
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    Ok(serde_json::from_slice(bytes)?)
}

/// Every tree the store has, opened once.
pub(crate) struct Trees {
    pub meta: sled::Tree,
    pub counters: sled::Tree,
    pub users: sled::Tree,
    pub email_user: sled::Tree,
    pub tokens: sled::Tree,
    pub user_token: sled::Tree,
    pub token_expiry: sled::Tree,
}

/// Names of all trees, for backup and the emptiness check of `import`.
pub const TREE_NAMES: &[&str] = &[
    "meta",
    "counters",
    "users",
    "email_user",
    "tokens",
    "user_token",
    "token_expiry",
];

impl Trees {
    fn open(db: &sled::Db) -> Result<Self, StoreError> {
        Ok(Self {
            meta: db.open_tree("meta")?,
            counters: db.open_tree("counters")?,
            users: db.open_tree("users")?,
            email_user: db.open_tree("email_user")?,
            tokens: db.open_tree("tokens")?,
            user_token: db.open_tree("user_token")?,
            token_expiry: db.open_tree("token_expiry")?,
        })
    }
}

struct Inner {
    // Field order is drop order: the flusher (holding a db handle) goes first, then the trees, then the db.
    flusher: flusher::Flusher,
    pool: pool::Pool,
    trees: Trees,
    log_file: Option<Arc<std::fs::File>>,
    db: sled::Db,
    path: PathBuf,
}

/// A cheap-to-clone handle on the open store. The directory stays locked until the last clone drops.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl Store {
    /// Opens (or creates) the store and runs pending migrations. Blocking.
    pub fn open(settings: &StoreSettings) -> Result<Self, StoreError> {
        Self::open_with(settings, schema::MIGRATIONS)
    }

    pub(crate) fn open_with(
        settings: &StoreSettings,
        migrations: &[schema::Migration],
    ) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(&settings.path)
            .cache_capacity(settings.cache_capacity_mb.saturating_mul(1024 * 1024))
            .open()?;
        let trees = Trees::open(&db)?;
        schema::migrate(&db, &trees, migrations)?;
        let log_file = if settings.fsync {
            Some(Arc::new(
                std::fs::OpenOptions::new()
                    .read(true)
                    .open(settings.path.join("db"))?,
            ))
        } else {
            None
        };
        let flusher = flusher::Flusher::start(db.clone(), log_file.clone())?;
        let pool = pool::Pool::start()?;
        Ok(Self {
            inner: Arc::new(Inner {
                flusher,
                pool,
                trees,
                log_file,
                db,
                path: settings.path.clone(),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub(crate) fn trees(&self) -> &Trees {
        &self.inner.trees
    }

    pub(crate) fn db(&self) -> &sled::Db {
        &self.inner.db
    }

    /// Runs blocking store work off the async threads.
    pub async fn run<F, R>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Store) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let store = self.clone();
        self.inner
            .pool
            .run(move || f(&store))
            .await
            .map_err(|e| StoreError::Blocking(e.to_owned()))?
    }

    /// Runs a write and returns once it is durable (group commit). Use for every write the API
    /// acknowledges.
    pub async fn write<F, R>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Store) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let guard = self.inner.flusher.begin_write();
        let out = self.run(f).await?;
        self.inner
            .flusher
            .durable(Some(guard))
            .await
            .map_err(StoreError::Flush)?;
        Ok(out)
    }

    /// Waits until all writes finished before this call are durable.
    pub async fn durable(&self) -> Result<(), StoreError> {
        self.inner
            .flusher
            .durable(None)
            .await
            .map_err(StoreError::Flush)
    }

    /// The same durable step as the group commit, done directly by the caller: used at shutdown
    /// and by the benchmark's flush-per-write baseline. Blocking.
    pub fn flush_now(&self) -> Result<(), StoreError> {
        flusher::sync(&self.inner.db, self.inner.log_file.as_deref())?;
        Ok(())
    }

    pub fn users(&self) -> users::Users<'_> {
        users::Users::new(self)
    }

    pub fn tokens(&self) -> tokens::Tokens<'_> {
        tokens::Tokens::new(self)
    }

    pub fn counters(&self) -> counters::Counters<'_> {
        counters::Counters::new(self)
    }

    pub fn meta(&self) -> meta::Meta<'_> {
        meta::Meta::new(self)
    }
}
