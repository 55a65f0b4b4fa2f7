//! The store: sled trees behind small typed modules. Callers never see a `Tree` or a key byte.
//!
//! One key per fact. Trees hold primary records (format byte + postcard, see [`codec`]):
//! - `meta`          name → value (schema version, generated secrets, bootstrap flag)
//! - `users`         UserId(16) → User, see [`users`]
//! - `tokens`        sha256(token)(32) → TokenRecord, see [`tokens`]
//! - `vouchers`      VoucherId(16) → Voucher, see [`vouchers`]
//! - `networks`      network name → NetworkRecord: pull state, see [`networks`]
//! - `notifications` NotificationId(16) → Notification: admin alerts
//! - `subscriptions` UserId(16) ‖ SubscriptionId(16) → Subscription, see [`subscriptions`]
//! - `digests`       `r` ‖ UserId(16) ‖ period(4) → DigestRecord with its email's delivery state,
//!   and `o` ‖ UserId(16) ‖ period(4) → () while that email is owed, see [`digests`] and
//!   [`deliveries`]
//! - `pull_journal`  network ‖ 0xff ‖ seq(8) → how to undo one page of a pull in progress, see
//!   [`vouchers`]
//! - `campaigns`     CampaignId(16) → Campaign, see [`campaigns`]
//! - `codes`         the code's text → CodeRecord (unique across the store), see [`codes`]
//! - `code_flags`    the code's text → CodeFlags (disabled; shared, with its usage limit), only
//!   for codes with something set, see [`codes`]
//! - `orders`, `redemptions`  by id → Order / Redemption, see [`orders`]
//! - `idempotency`   sha256(scope ‖ key) → the first answer to a keyed request, see [`idempotency`]
//! - `messages`      `r` ‖ owner(16) ‖ MessageId(16) → MessageRecord (a distributed code, an admin
//!   alert) with its delivery state, and `o` ‖ owner ‖ id while it is owed, see [`messages`]
//! - `distributions` `d` ‖ DistributionId(16) → Distribution (who gets a code, by which channel),
//!   `p` ‖ id → its progress, see [`distributions`]
//! - `code_requests` RequestId(16) → CodeRequest: codes asked of provider servers, see
//!   [`code_requests`]
//! - `push_subscriptions` UserId(16) ‖ SubscriptionId(16) → PushSubscription, see [`push`]
//! - `signups`       SignUpId(16) → SignUp: an account waiting for its address to be confirmed,
//!   see [`signups`]
//!
//! Secondary indexes (email → user, token expiry, identity and listings of the catalogue, who
//! follows what, digest due times, outbox order, counts) live in memory ([`Indexes`]), each
//! owned by the module that maintains it, rebuilt from the records when the store opens (digest
//! schedules when the app starts, since they need the configured weekly day). Two things stay in
//! sled because memory or start-up would otherwise grow with history: the `o` markers (the
//! outbox is found without reading every message ever sent) and the pull journal (a pull cut
//! short by a crash is undone at open).
//!
//! sled calls block (and may fsync): async code reads through [`Store::run`], on the store's own
//! small thread [`pool`], and every mutation goes through [`Store::write`], which hands the
//! command to the one [`writer`] thread and returns only once the write is durable. The writer is
//! the serialisation point: uniqueness checks and index updates need no transaction.

pub mod backup;
pub mod campaigns;
pub mod code_requests;
pub mod code_table;
pub mod codec;
pub mod codes;
pub mod deliveries;
pub mod digests;
pub mod distributions;
pub mod failpoints;
pub mod idempotency;
pub mod keys;
pub mod messages;
pub mod meta;
pub mod networks;
pub mod notifications;
pub mod orders;
pub mod outbox;
pub mod pool;
pub mod push;
pub mod schema;
pub mod signups;
pub mod subscriptions;
pub mod tokens;
pub mod users;
pub mod vouchers;
pub mod writer;

#[cfg(test)]
pub(crate) mod test_support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;

use crate::config::StoreSettings;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    #[error("store: a record does not decode: {0}")]
    Codec(String),
    #[error("{0}")]
    Conflict(&'static str),
    #[error("not found")]
    NotFound,
    #[error("store: {0}")]
    Corrupt(String),
    #[error("store: flush failed: {0}")]
    Flush(Arc<str>),
    /// A flush failed earlier: the store takes no more writes until the process restarts and
    /// recovers from its log (as PostgreSQL treats a failed fsync).
    #[error("store: failed; no more writes until restart")]
    Failed,
    #[error("store schema: {0}")]
    Schema(String),
    #[error("store: blocking task failed: {0}")]
    Blocking(String),
    /// The writer's queue stayed full: the caller should retry shortly (503 `overloaded`).
    #[error("store: the writer is overloaded")]
    Overloaded,
    #[error("store: closed")]
    Closed,
    /// A per-owner limit would be exceeded (`what` names the things counted).
    #[error("at most {max} {what}")]
    LimitReached { what: &'static str, max: usize },
    /// A settle for a claim whose lease lapsed (another attempt owns the record now).
    #[error("store: the lease of this claim has lapsed")]
    StaleLease,
    #[error("store: {0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    /// Whether the command may stand applied though it failed: its flush failed (the store has
    /// failed), so nothing it took may be handed out again before the restart recovers the truth.
    pub fn may_have_applied(&self) -> bool {
        matches!(self, StoreError::Flush(_) | StoreError::Failed)
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Codec(e.to_string())
    }
}

pub(crate) use codec::{decode, encode};

/// A key and its value, staged for a transaction.
pub(crate) type Kv = (Vec<u8>, Vec<u8>);

/// A transaction's failure as the store's: what the command aborted with, or sled's own error.
pub(crate) fn unwrap_transaction(e: sled::transaction::TransactionError<StoreError>) -> StoreError {
    match e {
        sled::transaction::TransactionError::Abort(e) => e,
        sled::transaction::TransactionError::Storage(e) => e.into(),
    }
}

/// Records of a tree keyed by UUIDv7 ids, after `after` (exclusive), in id order, at most `limit`.
pub(crate) fn values_after<T: DeserializeOwned>(
    tree: &sled::Tree,
    after: Option<uuid::Uuid>,
    limit: usize,
) -> Result<Vec<T>, StoreError> {
    let iter = match after {
        Some(id) => tree.range(keys::KeyBuf::new().uuid(id).bytes(&[0]).build()..),
        None => tree.iter(),
    };
    iter.take(limit)
        .map(|kv| {
            let (_, v) = kv?;
            decode(&v)
        })
        .collect()
}

/// Like [`values_after`], newest first: up to `limit` values of keys before `before` (a uuid v7
/// key, exclusive), or from the end.
pub(crate) fn values_before<T: DeserializeOwned>(
    tree: &sled::Tree,
    before: Option<uuid::Uuid>,
    limit: usize,
) -> Result<Vec<T>, StoreError> {
    let iter = match before {
        Some(id) => tree.range(..keys::KeyBuf::new().uuid(id).build()),
        None => tree.range::<&[u8], _>(..),
    };
    iter.rev()
        .take(limit)
        .map(|kv| {
            let (_, v) = kv?;
            decode(&v)
        })
        .collect()
}

/// Opens sled, waiting briefly for the directory lock: a store handle dropped a moment ago (a
/// restart in the same process) releases it from sled's own background thread, not at once.
fn open_db(settings: &StoreSettings) -> Result<sled::Db, StoreError> {
    // Password hashes, the token secret, the VAPID private key: readable by the owner only.
    make_private(&settings.path)?;
    let config = sled::Config::new()
        .path(&settings.path)
        .cache_capacity(settings.cache_capacity_mb.saturating_mul(1024 * 1024));
    let mut attempts = 0;
    loop {
        match config.open() {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e))
                if attempts < 50 && e.to_string().contains("could not acquire lock") =>
            {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(40));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Only the owner may read or write files the process creates from now on (the store's, the
/// mail transport's): a umask of 077, whatever the caller's. Process-wide: called once by the
/// binary before anything is opened.
pub fn private_files_from_now_on() {
    rustix::process::umask(rustix::fs::Mode::from_bits_truncate(0o077));
}

/// Makes `dir` (created if missing) and everything in it private: directories 0700, files 0600.
pub fn make_private(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700))?;
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600))?;
            }
        }
    }
    Ok(())
}

/// Every tree the store has, opened once.
pub(crate) struct Trees {
    pub meta: sled::Tree,
    pub users: sled::Tree,
    pub tokens: sled::Tree,
    pub vouchers: sled::Tree,
    pub networks: sled::Tree,
    pub notifications: sled::Tree,
    pub subscriptions: sled::Tree,
    pub digests: sled::Tree,
    pub pull_journal: sled::Tree,
    pub campaigns: sled::Tree,
    pub codes: sled::Tree,
    pub code_flags: sled::Tree,
    pub orders: sled::Tree,
    pub redemptions: sled::Tree,
    pub idempotency: sled::Tree,
    pub messages: sled::Tree,
    pub distributions: sled::Tree,
    pub code_requests: sled::Tree,
    pub push_subscriptions: sled::Tree,
    pub signups: sled::Tree,
}

/// The secondary indexes kept in memory, each owned by the module that maintains it. Built from
/// the records when the store opens; changed only by commands on the one writer.
pub(crate) struct Indexes {
    pub users: users::UserIndex,
    pub tokens: tokens::TokenIndex,
    pub catalogue: vouchers::CatalogueIndex,
    pub subscriptions: subscriptions::SubscriptionIndex,
    pub digests: digests::DigestIndex,
    pub outbox: outbox::OutboxIndex,
    pub codes: codes::CodeIndex,
    pub campaigns: campaigns::CampaignIndex,
    pub idempotency: idempotency::IdempotencyIndex,
    pub notifications: notifications::NotificationIndex,
    pub code_requests: code_requests::CodeRequestIndex,
    pub redemptions: orders::RedemptionIndex,
    pub orders: orders::OrderIndex,
    pub signups: signups::SignUpIndex,
}

impl Indexes {
    fn load(trees: &Trees) -> Result<Self, StoreError> {
        let users = users::UserIndex::load(trees)?;
        let tokens = tokens::TokenIndex::load(trees)?;
        let catalogue = vouchers::CatalogueIndex::load(trees)?;
        let subscriptions = subscriptions::SubscriptionIndex::load(trees)?;
        let outbox = deliveries::load_outbox(trees)?;
        let codes = codes::CodeIndex::load(trees)?;
        let campaigns = campaigns::CampaignIndex::load(trees)?;
        let idempotency = idempotency::IdempotencyIndex::load(trees)?;
        let notifications = notifications::NotificationIndex::load(trees)?;
        let code_requests = code_requests::CodeRequestIndex::load(trees)?;
        let redemptions = orders::RedemptionIndex::load(trees, &campaigns)?;
        let orders = orders::OrderIndex::load(trees)?;
        let signups = signups::SignUpIndex::load(trees)?;
        Ok(Self {
            orders,
            signups,
            redemptions,
            code_requests,
            notifications,
            idempotency,
            codes,
            campaigns,
            users,
            tokens,
            catalogue,
            subscriptions,
            // Needs the configured weekly day: built by `Digests::load` when the app starts.
            digests: digests::DigestIndex::default(),
            outbox,
        })
    }
}

/// Names of all trees, for backup and the emptiness check of `import`.
pub const TREE_NAMES: &[&str] = &[
    "meta",
    "users",
    "tokens",
    "vouchers",
    "networks",
    "notifications",
    "subscriptions",
    "digests",
    "pull_journal",
    "campaigns",
    "codes",
    "code_flags",
    "orders",
    "redemptions",
    "idempotency",
    "messages",
    "distributions",
    "code_requests",
    "push_subscriptions",
    "signups",
];

impl Trees {
    fn open(db: &sled::Db) -> Result<Self, StoreError> {
        Ok(Self {
            meta: db.open_tree("meta")?,
            users: db.open_tree("users")?,
            tokens: db.open_tree("tokens")?,
            vouchers: db.open_tree("vouchers")?,
            networks: db.open_tree("networks")?,
            notifications: db.open_tree("notifications")?,
            subscriptions: db.open_tree("subscriptions")?,
            digests: db.open_tree("digests")?,
            pull_journal: db.open_tree("pull_journal")?,
            campaigns: db.open_tree("campaigns")?,
            codes: db.open_tree("codes")?,
            code_flags: db.open_tree("code_flags")?,
            orders: db.open_tree("orders")?,
            redemptions: db.open_tree("redemptions")?,
            idempotency: db.open_tree("idempotency")?,
            messages: db.open_tree("messages")?,
            distributions: db.open_tree("distributions")?,
            code_requests: db.open_tree("code_requests")?,
            push_subscriptions: db.open_tree("push_subscriptions")?,
            signups: db.open_tree("signups")?,
        })
    }
}

/// Whether the store can still make writes durable. A failed flush is fatal, as PostgreSQL
/// treats a failed fsync: what sled holds in memory may differ from its log, so the store takes
/// no more writes (they answer [`StoreError::Failed`], 503), `/readyz` says so, and the serving
/// process exits non-zero so that its service manager restarts it and recovery runs from the log.
#[derive(Debug, Default)]
pub struct Health {
    failed: std::sync::atomic::AtomicBool,
    wake: tokio::sync::Notify,
    pub failpoints: failpoints::Failpoints,
}

impl Health {
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Marks the store failed (once) and wakes whoever waits for that.
    pub(crate) fn fail(&self, why: &str) {
        if !self.failed.swap(true, Ordering::AcqRel) {
            tracing::error!(
                error = why,
                "the store failed to make writes durable: no more writes are taken; restart to recover from the log"
            );
        }
        self.wake.notify_waiters();
    }

    /// Returns once the store has failed.
    pub async fn until_failed(&self) {
        loop {
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if self.failed() {
                return;
            }
            woken.await;
        }
    }
}

pub(crate) struct Inner {
    // Field order is drop order: the writer (holding a db handle) goes first, then the trees, then the db.
    writer: writer::Writer,
    health: Arc<Health>,
    pool: pool::Pool,
    trees: Trees,
    indexes: Indexes,
    log_file: Option<Arc<std::fs::File>>,
    db: sled::Db,
    path: PathBuf,
    /// Bumped by every catalogue write: caches of listings compare it to know they are stale.
    catalogue_generation: AtomicU64,
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
        let db = open_db(settings)?;
        let trees = Trees::open(&db)?;
        schema::migrate(&db, &trees, migrations)?;
        let indexes = Indexes::load(&trees)?;
        // What sled created on open (its log, config, snapshots) under the caller's umask.
        make_private(&settings.path)?;
        let log_file = if settings.fsync {
            Some(Arc::new(
                std::fs::OpenOptions::new()
                    .read(true)
                    .open(settings.path.join("db"))?,
            ))
        } else {
            None
        };
        let pool = pool::Pool::start()?;
        let health = Arc::new(Health {
            failpoints: failpoints::Failpoints::from_env(),
            ..Health::default()
        });
        let (writer, queue) = writer::Writer::new(settings.writer_queue, health.clone());
        let inner = Arc::new(Inner {
            writer,
            health,
            pool,
            trees,
            indexes,
            log_file: log_file.clone(),
            db: db.clone(),
            path: settings.path.clone(),
            catalogue_generation: AtomicU64::new(0),
        });
        inner
            .writer
            .start(queue, Arc::downgrade(&inner), db, log_file)?;
        Ok(Self { inner })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The failpoint between the keys of a multi-key command: an error, or (a crash test) what
    /// was written so far flushed and the process aborted. Nothing when not armed.
    pub(crate) fn between_keys(&self) -> Result<(), StoreError> {
        let failpoints = &self.inner.health.failpoints;
        if failpoints.hit(failpoints::Failpoint::CrashBetweenKeys) {
            // Whatever sled would write of this command now goes to disk (from another thread:
            // a flush may wait for the command itself), then the process dies.
            let db = self.inner.db.clone();
            let (done, flushed) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = db.flush();
                let _ = done.send(());
            });
            let _ = flushed.recv_timeout(std::time::Duration::from_secs(2));
            tracing::error!("failpoint crash_between_keys: aborting");
            std::process::abort();
        }
        if failpoints.hit(failpoints::Failpoint::BetweenKeys) {
            return Err(StoreError::Io(std::io::Error::other(
                "failpoint between_keys: injected failure",
            )));
        }
        Ok(())
    }

    /// Whether writes can still be made durable, and the failpoints tests arm.
    pub fn health(&self) -> &Arc<Health> {
        &self.inner.health
    }

    pub(crate) fn trees(&self) -> &Trees {
        &self.inner.trees
    }

    pub(crate) fn indexes(&self) -> &Indexes {
        &self.inner.indexes
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

    /// Runs a write on the one [`writer`] and returns once it is durable (its batch flushed).
    /// Every write the API acknowledges goes through here; nothing else mutates the store.
    pub async fn write<F, R>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Store) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        if self
            .inner
            .health
            .failpoints
            .hit(failpoints::Failpoint::RefuseWrites)
        {
            return Err(StoreError::Overloaded);
        }
        self.inner.writer.submit(true, f).await
    }

    /// The same command on the same writer, answered once applied, before the disk has it. Never
    /// for a write the API acknowledges: it is the benchmark's ceiling (the write path without the
    /// flush) and serves work that is redone after a crash anyway.
    pub async fn write_unflushed<F, R>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Store) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        self.inner.writer.submit(false, f).await
    }

    /// Returns once everything the writer applied before this call is on disk (one flush,
    /// shared with whatever else is written meanwhile).
    pub async fn barrier(&self) -> Result<(), StoreError> {
        self.write(|_| Ok(())).await
    }

    /// The same durable step as the writer's, done directly by the caller: used at shutdown, by
    /// offline commands, and by the benchmark's flush-per-write baseline. Blocking.
    pub fn flush_now(&self) -> Result<(), StoreError> {
        writer::sync(&self.inner.db, self.inner.log_file.as_deref())?;
        Ok(())
    }

    pub fn users(&self) -> users::Users<'_> {
        users::Users::new(self)
    }

    pub fn tokens(&self) -> tokens::Tokens<'_> {
        tokens::Tokens::new(self)
    }

    pub fn meta(&self) -> meta::Meta<'_> {
        meta::Meta::new(self)
    }

    pub fn vouchers(&self) -> vouchers::Vouchers<'_> {
        vouchers::Vouchers::new(self)
    }

    pub fn networks(&self) -> networks::Networks<'_> {
        networks::Networks::new(self)
    }

    pub fn notifications(&self) -> notifications::Notifications<'_> {
        notifications::Notifications::new(self)
    }

    pub fn campaigns(&self) -> campaigns::Campaigns<'_> {
        campaigns::Campaigns::new(self)
    }

    pub fn codes(&self) -> codes::Codes<'_> {
        codes::Codes::new(self)
    }

    pub fn idempotency(&self) -> idempotency::Idempotency<'_> {
        idempotency::Idempotency::new(self)
    }

    pub fn orders(&self) -> orders::Orders<'_> {
        orders::Orders::new(self)
    }

    pub fn subscriptions(&self) -> subscriptions::Subscriptions<'_> {
        subscriptions::Subscriptions::new(self)
    }

    pub fn digests(&self) -> digests::Digests<'_> {
        digests::Digests::new(self)
    }

    pub fn deliveries(&self) -> deliveries::Deliveries<'_> {
        deliveries::Deliveries::new(self)
    }

    pub fn messages(&self) -> messages::Messages<'_> {
        messages::Messages::new(self)
    }

    pub fn signups(&self) -> signups::SignUps<'_> {
        signups::SignUps::new(self)
    }

    pub fn push_subscriptions(&self) -> push::PushSubscriptions<'_> {
        push::PushSubscriptions::new(self)
    }

    pub fn code_requests(&self) -> code_requests::CodeRequests<'_> {
        code_requests::CodeRequests::new(self)
    }

    pub fn distributions(&self) -> distributions::Distributions<'_> {
        distributions::Distributions::new(self)
    }

    /// Changes whenever the catalogue changes (in this process).
    pub fn catalogue_generation(&self) -> u64 {
        self.inner.catalogue_generation.load(Ordering::Acquire)
    }

    pub(crate) fn bump_catalogue_generation(&self) {
        self.inner
            .catalogue_generation
            .fetch_add(1, Ordering::AcqRel);
    }
}
