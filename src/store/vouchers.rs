//! The voucher catalogue: one key per voucher, every index in memory.
//!
//! Tree: `vouchers` VoucherId(16) → Voucher. Ids are UUIDv7 carrying the first-seen instant, so
//! id order is first-seen order.
//!
//! In memory ([`CatalogueIndex`], rebuilt from the records when the store opens, changed only by
//! commands on the one writer):
//! - identity: network → external id → (voucher id, hash of the offer as stored), so a re-pull
//!   updates and never duplicates, and an unchanged offer is recognised without reading its record;
//! - listing: retailer key / category key / network → id → validity window, id-ordered, so the
//!   `active` filter and "first seen since T" are decided without reading records;
//! - due times: (due_at, id) in order, when each voucher's phase next changes (starts, ends) or,
//!   once expired, when retention ends and it is removed;
//! - names: retailer and category keys (case-folded) → display name (first spelling seen);
//! - counts: vouchers stored, active ones per retailer, category and network.
//!
//! So a new or changed voucher is one key written, an unchanged one none. The memory this costs is
//! bounded by the catalogue itself (a few hundred bytes a voucher), which retention bounds.
//!
//! A pull is applied page by page ([`Vouchers::upsert_page`]), so memory holds one page whatever
//! the feed's length, and stays all or nothing through the pull journal (tree `pull_journal`:
//! network ‖ 0xff ‖ seq(8) → the ids a page inserted and the records it replaced). Each page
//! writes its journal entry before its vouchers (sled recovers a prefix of its log, so a page on
//! disk has its entry on disk); [`Vouchers::finish_pull`] drops the journal, and a pull that
//! fails, or that a crash interrupted (found when the store opens), is rolled back from it.
//! Listings run newest first over one index and read at most [`SCAN_BUDGET`] entries per
//! request; a page that ran out of budget still returns a cursor.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};

use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use uuid::Uuid;

use super::keys::{KeyBuf, KeyReader, uuid_floor};
use super::{Store, StoreError, Trees, decode, encode};
use crate::domain::voucher::{Offer, Phase, Voucher, Window, name_key};

/// Index entries a listing request reads at most.
pub const SCAN_BUDGET: usize = 5_000;

/// What an upsert did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Upserted {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
}

impl std::ops::AddAssign for Upserted {
    fn add_assign(&mut self, o: Self) {
        self.inserted += o.inserted;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
    }
}

/// Listing filters (all optional; combined with AND).
#[derive(Debug, Default, Clone, PartialEq, Eq, Hash)]
pub struct Filter {
    pub retailer: Option<String>,
    pub category: Option<String>,
    pub network: Option<String>,
    /// Case-insensitive substring of title, description, retailer or code.
    pub q: Option<String>,
    /// Only vouchers valid now.
    pub active: bool,
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Listing {
    pub items: Vec<Voucher>,
    /// Where to go on from: present when the index holds more (or the scan budget ran out).
    pub next: Option<Uuid>,
}

/// The names the catalogue lists with their active voucher counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Named {
    Retailer,
    Category,
}

/// A retailer or category with its number of active vouchers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameCount {
    pub key: String,
    pub name: String,
    pub active: u64,
}

/// `[starts, ends)` in microseconds, open ends as the extremes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span(i64, i64);

impl Span {
    fn of(w: &Window) -> Self {
        Span(
            w.starts_at.map_or(i64::MIN, |t| t.timestamp_micros()),
            w.ends_at.map_or(i64::MAX, |t| t.timestamp_micros()),
        )
    }

    fn active(self, now: DateTime<Utc>) -> bool {
        let now = now.timestamp_micros();
        self.0 <= now && now < self.1
    }
}

/// A stable fingerprint of an offer: equal offers, equal hashes (within one process: the index
/// is rebuilt at every open).
fn offer_hash(offer: &Offer) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    offer.external_id.hash(&mut h);
    offer.retailer.hash(&mut h);
    offer.category.hash(&mut h);
    offer.title.hash(&mut h);
    offer.description.hash(&mut h);
    offer.code.hash(&mut h);
    offer.code_is_pattern.hash(&mut h);
    offer.url.hash(&mut h);
    offer.starts_at.map(|t| t.timestamp_micros()).hash(&mut h);
    offer.ends_at.map(|t| t.timestamp_micros()).hash(&mut h);
    h.finish()
}

#[derive(Default)]
struct Catalogue {
    identity: HashMap<String, HashMap<String, (Uuid, u64)>>,
    by_retailer: HashMap<String, BTreeMap<Uuid, Span>>,
    by_category: HashMap<String, BTreeMap<Uuid, Span>>,
    by_network: HashMap<String, BTreeMap<Uuid, Span>>,
    due: BTreeSet<(i64, Uuid)>,
    retailers: BTreeMap<String, String>,
    categories: BTreeMap<String, String>,
    active_retailer: HashMap<String, u64>,
    active_category: HashMap<String, u64>,
    active_network: HashMap<String, u64>,
    total: u64,
}

fn bump(map: &mut HashMap<String, u64>, key: &str, up: bool) {
    if up {
        *map.entry(key.to_owned()).or_default() += 1;
    } else if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
    }
}

impl Catalogue {
    /// Adds `v` to every index and count.
    fn add(&mut self, v: &Voucher) {
        let span = Span::of(&v.window());
        let retailer = name_key(&v.offer.retailer);
        self.identity
            .entry(v.network.clone())
            .or_default()
            .insert(v.offer.external_id.clone(), (v.id, offer_hash(&v.offer)));
        self.by_network
            .entry(v.network.clone())
            .or_default()
            .insert(v.id, span);
        self.by_retailer
            .entry(retailer.clone())
            .or_default()
            .insert(v.id, span);
        let category = v.offer.category.as_deref().map(name_key);
        if let (Some(key), Some(name)) = (&category, &v.offer.category) {
            self.by_category
                .entry(key.clone())
                .or_default()
                .insert(v.id, span);
            self.categories
                .entry(key.clone())
                .or_insert_with(|| name.clone());
        }
        self.retailers
            .entry(retailer.clone())
            .or_insert_with(|| v.offer.retailer.clone());
        if let Some(at) = v.due_at {
            self.due.insert((at.timestamp_micros(), v.id));
        }
        self.total += 1;
        if v.phase == Phase::Active {
            bump(&mut self.active_network, &v.network, true);
            bump(&mut self.active_retailer, &retailer, true);
            if let Some(key) = &category {
                bump(&mut self.active_category, key, true);
            }
        }
    }

    /// Takes `v` out of every index and count (its identity entry only with `identity`).
    fn remove(&mut self, v: &Voucher, identity: bool) {
        let retailer = name_key(&v.offer.retailer);
        if identity && let Some(ids) = self.identity.get_mut(&v.network) {
            ids.remove(&v.offer.external_id);
        }
        if let Some(ids) = self.by_network.get_mut(&v.network) {
            ids.remove(&v.id);
        }
        if let Some(ids) = self.by_retailer.get_mut(&retailer) {
            ids.remove(&v.id);
        }
        let category = v.offer.category.as_deref().map(name_key);
        if let Some(key) = &category
            && let Some(ids) = self.by_category.get_mut(key)
        {
            ids.remove(&v.id);
        }
        if let Some(at) = v.due_at {
            self.due.remove(&(at.timestamp_micros(), v.id));
        }
        self.total = self.total.saturating_sub(1);
        if v.phase == Phase::Active {
            bump(&mut self.active_network, &v.network, false);
            bump(&mut self.active_retailer, &retailer, false);
            if let Some(key) = &category {
                bump(&mut self.active_category, key, false);
            }
        }
    }

    fn index(&self, which: Named) -> &HashMap<String, BTreeMap<Uuid, Span>> {
        match which {
            Named::Retailer => &self.by_retailer,
            Named::Category => &self.by_category,
        }
    }
}

/// What one applied page of a pull changed, so the pull can be undone (tree `pull_journal`).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct JournalEntry {
    inserted: Vec<Uuid>,
    replaced: Vec<Voucher>,
}

fn journal_key(network: &str, seq: u64) -> Vec<u8> {
    KeyBuf::new().str(network).u64(seq).build()
}

/// Undoes journal entries (newest first) on the trees themselves: the pulls a crash interrupted
/// (at open, before the index is built). Returns the networks rolled back.
fn roll_back_journal(trees: &Trees) -> Result<Vec<String>, StoreError> {
    let mut networks = Vec::new();
    let entries: Vec<(sled::IVec, sled::IVec)> =
        trees.pull_journal.iter().rev().collect::<Result<_, _>>()?;
    for (k, v) in entries {
        let entry: JournalEntry = decode(&v)?;
        let mut batch = sled::Batch::default();
        for id in &entry.inserted {
            batch.remove(id.as_bytes());
        }
        for old in &entry.replaced {
            batch.insert(old.id.as_bytes(), encode(old)?);
        }
        trees.vouchers.apply_batch(batch)?;
        trees.pull_journal.remove(&k)?;
        if let Some(n) = KeyReader::new(&k).str().map(str::to_owned)
            && !networks.contains(&n)
        {
            networks.push(n);
        }
    }
    Ok(networks)
}

/// The catalogue's in-memory indexes (see the module comment).
#[derive(Default)]
pub(crate) struct CatalogueIndex(RwLock<Catalogue>);

impl CatalogueIndex {
    /// Rolls back pulls a crash interrupted, then reads every voucher once, in id (first-seen)
    /// order (at open).
    pub(crate) fn load(trees: &Trees) -> Result<Self, StoreError> {
        let undone = roll_back_journal(trees)?;
        if !undone.is_empty() {
            tracing::warn!(networks = ?undone, "pulls interrupted by a stop were rolled back");
        }
        let mut cat = Catalogue::default();
        for kv in trees.vouchers.iter() {
            let (_, raw) = kv?;
            let v: Voucher = decode(&raw)?;
            cat.add(&v);
        }
        Ok(Self(RwLock::new(cat)))
    }
}

/// A listing candidate: inactive by its index entry, to be read, or already read.
enum Candidate {
    Skip,
    Read,
    Have(Box<Voucher>),
}

/// One voucher a batch writes: what it was (to unindex) and what it becomes.
struct Change {
    old: Option<Voucher>,
    new: Voucher,
}

pub struct Vouchers<'a> {
    store: &'a Store,
}

impl<'a> Vouchers<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Self { store }
    }

    fn index(&self) -> &CatalogueIndex {
        &self.store.indexes().catalogue
    }

    /// Writes `changes` and `removed` with one atomic batch on `vouchers`, then moves the indexes.
    /// With `journal`, first records in the pull journal of that network how to undo the batch.
    fn apply(
        &self,
        changes: Vec<Change>,
        removed: Vec<Voucher>,
        journal: Option<&str>,
    ) -> Result<(), StoreError> {
        if changes.is_empty() && removed.is_empty() {
            return Ok(());
        }
        if let Some(network) = journal {
            let entry = JournalEntry {
                inserted: changes
                    .iter()
                    .filter(|c| c.old.is_none())
                    .map(|c| c.new.id)
                    .collect(),
                replaced: changes.iter().filter_map(|c| c.old.clone()).collect(),
            };
            let tree = &self.store.trees().pull_journal;
            let prefix = KeyBuf::new().str(network).build();
            let seq = match tree.scan_prefix(&prefix).keys().next_back() {
                Some(k) => {
                    let k = k?;
                    let mut r = KeyReader::new(&k);
                    r.str();
                    r.u64().map_or(0, |n| n + 1)
                }
                None => 0,
            };
            tree.insert(journal_key(network, seq), encode(&entry)?)?;
        }
        let mut batch = sled::Batch::default();
        for c in &changes {
            batch.insert(c.new.id.as_bytes(), encode(&c.new)?);
        }
        for v in &removed {
            batch.remove(v.id.as_bytes());
        }
        self.store.trees().vouchers.apply_batch(batch)?;
        let mut cat = self.index().0.write();
        for c in &changes {
            if let Some(old) = &c.old {
                cat.remove(old, old.network != c.new.network);
            }
            cat.add(&c.new);
        }
        for v in &removed {
            cat.remove(v, true);
        }
        drop(cat);
        self.store.bump_catalogue_generation();
        Ok(())
    }

    /// Applies one page of a pull of `network` (see [`Vouchers::upsert`] for what changes), with
    /// its journal entry: the pull ends with [`Vouchers::finish_pull`] or
    /// [`Vouchers::abort_pull`]. Writer only.
    pub fn upsert_page(
        &self,
        network: &str,
        offers: &[Offer],
        now: DateTime<Utc>,
        retention: chrono::Duration,
    ) -> Result<Upserted, StoreError> {
        self.upsert_with(network, offers, now, retention, Some(network))
    }

    /// The pull of `network` is complete: its journal goes (one batch). Writer only; durable
    /// through `Store::write`, which makes every page before it durable too.
    pub fn finish_pull(&self, network: &str) -> Result<(), StoreError> {
        let tree = &self.store.trees().pull_journal;
        let mut batch = sled::Batch::default();
        for k in tree.scan_prefix(KeyBuf::new().str(network).build()).keys() {
            batch.remove(k?);
        }
        tree.apply_batch(batch)?;
        Ok(())
    }

    /// Undoes every page applied by the current pull of `network`, newest first: the ids it
    /// inserted go, the records it replaced come back. Returns how many pages it undid. Writer
    /// only.
    pub fn abort_pull(&self, network: &str) -> Result<usize, StoreError> {
        let tree = &self.store.trees().pull_journal;
        let entries: Vec<(sled::IVec, sled::IVec)> = tree
            .scan_prefix(KeyBuf::new().str(network).build())
            .rev()
            .collect::<Result<_, _>>()?;
        for (k, v) in &entries {
            let entry: JournalEntry = decode(v)?;
            let mut removed = Vec::with_capacity(entry.inserted.len());
            for id in &entry.inserted {
                if let Some(v) = self.get(*id)? {
                    removed.push(v);
                }
            }
            let mut changes = Vec::with_capacity(entry.replaced.len());
            for old in entry.replaced {
                changes.push(Change {
                    old: self.get(old.id)?,
                    new: old,
                });
            }
            self.apply(changes, removed, None)?;
            tree.remove(k)?;
        }
        Ok(entries.len())
    }

    /// Inserts new offers of `network`, updates changed ones, leaves equal ones alone (no write),
    /// all in one atomic batch. `first_seen_at` of a known voucher is kept. An offer listed twice
    /// counts once, as its last listing says. Writer only.
    pub fn upsert(
        &self,
        network: &str,
        offers: &[Offer],
        now: DateTime<Utc>,
        retention: chrono::Duration,
    ) -> Result<Upserted, StoreError> {
        self.upsert_with(network, offers, now, retention, None)
    }

    fn upsert_with(
        &self,
        network: &str,
        offers: &[Offer],
        now: DateTime<Utc>,
        retention: chrono::Duration,
        journal: Option<&str>,
    ) -> Result<Upserted, StoreError> {
        let mut done = Upserted::default();
        let mut changes: Vec<Change> = Vec::new();
        // Offers of this batch already handled: external id → position in `changes`.
        let mut in_batch: HashMap<&str, Option<usize>> = HashMap::new();
        let known: Vec<Option<(Uuid, u64)>> = {
            let cat = self.index().0.read();
            let ids = cat.identity.get(network);
            offers
                .iter()
                .map(|o| ids.and_then(|m| m.get(&o.external_id)).copied())
                .collect()
        };
        for (offer, known) in offers.iter().zip(known) {
            let window = Window::of(offer);
            let hash = offer_hash(offer);
            if let Some(seen) = in_batch.get(offer.external_id.as_str()).copied() {
                // Listed again in the same batch: the later listing wins.
                match seen.and_then(|i| changes.get_mut(i)) {
                    Some(c) if c.new.offer != *offer => {
                        c.new.offer = offer.clone();
                        c.new.phase = window.phase_at(now);
                        c.new.due_at = window.next_change(now, retention);
                    }
                    Some(_) => {}
                    None => {
                        // The first listing was unchanged; this one may not be.
                        if known.is_some_and(|(_, h)| h != hash) {
                            return self.upsert_slow(network, offers, now, retention, journal);
                        }
                    }
                }
                continue;
            }
            match known {
                Some((_, stored)) if stored == hash => {
                    done.unchanged += 1;
                    in_batch.insert(&offer.external_id, None);
                }
                Some((id, _)) => {
                    let Some(old) = self.get(id)? else {
                        return Err(StoreError::Corrupt(format!(
                            "voucher {id} is indexed but not stored"
                        )));
                    };
                    let new = Voucher {
                        offer: offer.clone(),
                        updated_at: now,
                        phase: window.phase_at(now),
                        due_at: window.next_change(now, retention),
                        ..old.clone()
                    };
                    in_batch.insert(&offer.external_id, Some(changes.len()));
                    changes.push(Change {
                        old: Some(old),
                        new,
                    });
                    done.updated += 1;
                }
                None => {
                    let new = Voucher {
                        v: Voucher::VERSION,
                        // The first-seen instant, so digests select "new since T" as an id range.
                        id: crate::domain::v7_at(now),
                        network: network.to_owned(),
                        offer: offer.clone(),
                        first_seen_at: now,
                        updated_at: now,
                        phase: window.phase_at(now),
                        due_at: window.next_change(now, retention),
                    };
                    in_batch.insert(&offer.external_id, Some(changes.len()));
                    changes.push(Change { old: None, new });
                    done.inserted += 1;
                }
            }
        }
        self.apply(changes, Vec::new(), journal)?;
        Ok(done)
    }

    /// The rare batch that lists one unchanged offer again changed: applied one offer at a time,
    /// in order, so the last listing wins exactly as it would sequentially.
    fn upsert_slow(
        &self,
        network: &str,
        offers: &[Offer],
        now: DateTime<Utc>,
        retention: chrono::Duration,
        journal: Option<&str>,
    ) -> Result<Upserted, StoreError> {
        let mut done = Upserted::default();
        for offer in offers {
            done += self.upsert_with(
                network,
                std::slice::from_ref(offer),
                now,
                retention,
                journal,
            )?;
        }
        Ok(done)
    }

    /// Moves vouchers whose due time has come to their phase now, and removes expired ones whose
    /// retention ended. Handles at most `max`; returns how many it handled. Writer only.
    pub fn sweep_due(
        &self,
        now: DateTime<Utc>,
        retention: chrono::Duration,
        max: usize,
    ) -> Result<usize, StoreError> {
        let due: Vec<Uuid> = {
            let cat = self.index().0.read();
            cat.due
                .range(..(now.timestamp_micros(), Uuid::max()))
                .take(max)
                .map(|(_, id)| *id)
                .collect()
        };
        let mut changes = Vec::new();
        let mut removed = Vec::new();
        for id in &due {
            let Some(old) = self.get(*id)? else { continue };
            let window = old.window();
            let phase = window.phase_at(now);
            let removal_due = old.due_at.is_some_and(|at| at <= now);
            if phase == Phase::Expired && old.phase == Phase::Expired && removal_due {
                removed.push(old);
                continue;
            }
            let new = Voucher {
                phase,
                due_at: window.next_change(now, retention),
                ..old.clone()
            };
            changes.push(Change {
                old: Some(old),
                new,
            });
        }
        self.apply(changes, removed, None)?;
        Ok(due.len())
    }

    pub fn get(&self, id: Uuid) -> Result<Option<Voucher>, StoreError> {
        self.store
            .trees()
            .vouchers
            .get(id.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// The id of `(network, external_id)`, if stored.
    pub fn id_of(&self, network: &str, external_id: &str) -> Result<Option<Uuid>, StoreError> {
        Ok(self
            .index()
            .0
            .read()
            .identity
            .get(network)
            .and_then(|m| m.get(external_id))
            .map(|(id, _)| *id))
    }

    /// Newest first, after `after` (exclusive), at most `limit`.
    pub fn list(
        &self,
        filter: &Filter,
        after: Option<Uuid>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Listing, StoreError> {
        let q = filter.q.as_ref().map(|q| q.to_lowercase());
        let category = filter.category.as_deref().map(name_key);
        // Candidates, newest first, at most the scan budget: from the most selective index the
        // filter names, else the records themselves.
        // Candidates, newest first, at most the scan budget: from the most selective index the
        // filter names (read under the index lock, records read after it), else the records
        // themselves, decoded as they are scanned.
        let indexed: Option<Vec<(Uuid, Candidate)>> = {
            let cat = self.index().0.read();
            let index = if let Some(r) = &filter.retailer {
                Some(cat.by_retailer.get(&name_key(r)))
            } else if let Some(c) = &category {
                Some(cat.by_category.get(c))
            } else {
                filter.network.as_ref().map(|n| cat.by_network.get(n))
            };
            index.map(|index| {
                let Some(index) = index else {
                    return Vec::new();
                };
                let range = match after {
                    Some(id) => index.range(..id),
                    None => index.range(..),
                };
                range
                    .rev()
                    .take(SCAN_BUDGET + 1)
                    .map(|(id, span)| {
                        let look = if !filter.active || span.active(now) {
                            Candidate::Read
                        } else {
                            Candidate::Skip
                        };
                        (*id, look)
                    })
                    .collect()
            })
        };
        let candidates = match indexed {
            Some(c) => c,
            None => {
                let tree = &self.store.trees().vouchers;
                let range = match after {
                    Some(id) => tree.range(..KeyBuf::new().uuid(id).build()),
                    None => tree.iter(),
                };
                let mut out = Vec::new();
                for kv in range.rev().take(SCAN_BUDGET + 1) {
                    let (k, v) = kv?;
                    if let Some(id) = super::keys::uuid_from(&k) {
                        out.push((id, Candidate::Have(Box::new(decode(&v)?))));
                    }
                }
                out
            }
        };
        let mut items = Vec::with_capacity(limit.min(64));
        let mut last = None;
        for (scanned, (id, look)) in candidates.into_iter().enumerate() {
            if scanned >= SCAN_BUDGET {
                // Out of budget: hand back what was found and where to go on from.
                return Ok(Listing { items, next: last });
            }
            let voucher = match look {
                Candidate::Skip => None,
                Candidate::Read => self.get(id)?,
                Candidate::Have(v) => Some(*v),
            };
            let Some(voucher) =
                voucher.filter(|v| matches(v, filter, category.as_deref(), q.as_deref(), now))
            else {
                if items.len() < limit {
                    last = Some(id);
                }
                continue;
            };
            if items.len() == limit {
                // A further match exists: the page gets a cursor.
                return Ok(Listing { next: last, items });
            }
            last = Some(id);
            items.push(voucher);
        }
        Ok(Listing { items, next: None })
    }

    /// Retailers or categories by key, after `after` (a key), with their active voucher counts.
    pub fn names(
        &self,
        which: Named,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<NameCount>, StoreError> {
        let cat = self.index().0.read();
        let (names, counts) = match which {
            Named::Retailer => (&cat.retailers, &cat.active_retailer),
            Named::Category => (&cat.categories, &cat.active_category),
        };
        let range = match after {
            Some(key) => {
                names.range::<str, _>((std::ops::Bound::Excluded(key), std::ops::Bound::Unbounded))
            }
            None => names.range::<str, _>(..),
        };
        Ok(range
            .take(limit)
            .map(|(key, name)| NameCount {
                active: counts.get(key).copied().unwrap_or(0),
                name: name.clone(),
                key: key.clone(),
            })
            .collect())
    }

    /// Adds to `out` the vouchers of a retailer or category (by key) first seen at or after
    /// `since` and active at `now`: a range of the id-ordered index (ids carry their first-seen
    /// instant), deciding `active` on the index entry alone.
    /// Adds to `out` the newest `limit` vouchers of a retailer or category first seen since
    /// `since` and active at `now`; returns whether there were more (left uncounted, so the work
    /// per followed name is bounded however busy the name is).
    pub fn new_since(
        &self,
        which: Named,
        key: &str,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: usize,
        out: &mut BTreeSet<Uuid>,
    ) -> Result<bool, StoreError> {
        let cat = self.index().0.read();
        let Some(index) = cat.index(which).get(key) else {
            return Ok(false);
        };
        let floor = Uuid::from_bytes(uuid_floor(since));
        let mut newest = index
            .range(floor..)
            .rev()
            .filter(|(_, span)| span.active(now))
            .map(|(id, _)| *id);
        out.extend(newest.by_ref().take(limit));
        Ok(newest.next().is_some())
    }

    pub fn active_in_network(&self, network: &str) -> Result<u64, StoreError> {
        Ok(self
            .index()
            .0
            .read()
            .active_network
            .get(network)
            .copied()
            .unwrap_or(0))
    }

    pub fn count(&self) -> Result<u64, StoreError> {
        Ok(self.index().0.read().total)
    }
}

/// Whether `v` passes every filter (`category` and `q` already folded).
fn matches(
    v: &Voucher,
    filter: &Filter,
    category: Option<&str>,
    q: Option<&str>,
    now: DateTime<Utc>,
) -> bool {
    if filter.active && !v.window().is_active(now) {
        return false;
    }
    if let Some(n) = &filter.network
        && &v.network != n
    {
        return false;
    }
    if let Some(r) = &filter.retailer
        && name_key(&v.offer.retailer) != name_key(r)
    {
        return false;
    }
    if let Some(c) = category
        && v.offer.category.as_deref().map(name_key).as_deref() != Some(c)
    {
        return false;
    }
    if let Some(q) = q {
        let hit = |s: &str| s.to_lowercase().contains(q);
        let o = &v.offer;
        return hit(&o.title)
            || hit(&o.retailer)
            || o.description.as_deref().is_some_and(hit)
            || o.code.as_deref().is_some_and(hit);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreSettings;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn offer(id: &str, retailer: &str, starts: &str, ends: &str) -> Offer {
        Offer {
            external_id: id.into(),
            retailer: retailer.into(),
            category: Some("Toys".into()),
            title: format!("offer {id}"),
            description: None,
            code: None,
            code_is_pattern: false,
            url: None,
            starts_at: Some(t(starts)),
            ends_at: Some(t(ends)),
        }
    }

    fn active(store: &Store) -> (u64, u64, u64) {
        let v = store.vouchers();
        let retailer = v.names(Named::Retailer, None, 10).unwrap();
        let category = v.names(Named::Category, None, 10).unwrap();
        (
            v.active_in_network("n").unwrap(),
            retailer.iter().map(|r| r.active).sum(),
            category.iter().map(|c| c.active).sum(),
        )
    }

    #[test]
    fn a_digest_reads_a_bounded_number_of_a_busy_names_vouchers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreSettings {
            path: dir.path().join("db"),
            cache_capacity_mb: 8,
            fsync: false,
            writer_queue: 1024,
        })
        .unwrap();
        let now = t("2026-11-01T00:00:00Z");
        let offers: Vec<Offer> = (0..300)
            .map(|i| {
                offer(
                    &format!("o{i}"),
                    "Busy",
                    "2026-10-01T00:00:00Z",
                    "2027-01-01T00:00:00Z",
                )
            })
            .collect();
        store
            .vouchers()
            .upsert("n", &offers, now, chrono::Duration::days(7))
            .unwrap();
        let key = crate::domain::voucher::name_key("Busy");
        let since = now - chrono::Duration::hours(1);
        let mut all = BTreeSet::new();
        let more = store
            .vouchers()
            .new_since(Named::Retailer, &key, since, now, 1000, &mut all)
            .unwrap();
        assert_eq!((all.len(), more), (300, false));
        let mut bounded = BTreeSet::new();
        let more = store
            .vouchers()
            .new_since(Named::Retailer, &key, since, now, 10, &mut bounded)
            .unwrap();
        assert!(more, "the rest are known to exist");
        let newest: BTreeSet<Uuid> = all.iter().rev().take(10).copied().collect();
        assert_eq!(
            bounded, newest,
            "the newest ten, no others read into the set"
        );
    }

    #[test]
    fn phases_move_with_time_counts_follow_and_expired_ones_go_after_retention() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreSettings {
            path: dir.path().join("db"),
            cache_capacity_mb: 8,
            fsync: false,
            writer_queue: 65_536,
        })
        .unwrap();
        let day = chrono::Duration::days(1);
        let retention = chrono::Duration::days(7);
        let now = t("2026-11-01T00:00:00Z");
        let offers = [
            offer("a", "Shop", "2026-10-01T00:00:00Z", "2026-11-10T00:00:00Z"),
            offer("b", "shop ", "2026-11-05T00:00:00Z", "2026-12-01T00:00:00Z"),
        ];
        let done = store
            .vouchers()
            .upsert("n", &offers, now, retention)
            .unwrap();
        assert_eq!(done.inserted, 2);
        assert_eq!(active(&store), (1, 1, 1), "a is active, b upcoming");
        assert_eq!(store.vouchers().count().unwrap(), 2);

        // Nothing due yet.
        assert_eq!(
            store
                .vouchers()
                .sweep_due(now + day, retention, 100)
                .unwrap(),
            0
        );
        // b starts.
        let nov6 = t("2026-11-06T00:00:00Z");
        assert_eq!(store.vouchers().sweep_due(nov6, retention, 100).unwrap(), 1);
        assert_eq!(active(&store), (2, 2, 2));
        // a ends.
        let nov11 = t("2026-11-11T00:00:00Z");
        assert_eq!(
            store.vouchers().sweep_due(nov11, retention, 100).unwrap(),
            1
        );
        assert_eq!(active(&store), (1, 1, 1));
        let a = store.vouchers().id_of("n", "a").unwrap().unwrap();
        assert_eq!(
            store.vouchers().get(a).unwrap().unwrap().phase,
            Phase::Expired
        );
        // Listed with active=false until retention ends, then removed with its indexes.
        let all = Filter::default();
        assert_eq!(
            store
                .vouchers()
                .list(&all, None, 10, nov11)
                .unwrap()
                .items
                .len(),
            2
        );
        let nov18 = t("2026-11-18T00:00:00Z");
        assert_eq!(
            store.vouchers().sweep_due(nov18, retention, 100).unwrap(),
            1
        );
        assert_eq!(store.vouchers().id_of("n", "a").unwrap(), None);
        assert_eq!(store.vouchers().get(a).unwrap(), None);
        assert_eq!(store.vouchers().count().unwrap(), 1);
        let shop = Filter {
            retailer: Some("SHOP".into()),
            ..Filter::default()
        };
        let left = store.vouchers().list(&shop, None, 10, nov18).unwrap();
        assert_eq!(left.items.len(), 1);
        assert_eq!(left.items[0].offer.external_id, "b");
        assert_eq!(active(&store), (1, 1, 1));

        // Re-upserting the same offer changes nothing; a changed one moves its counts.
        let again = store
            .vouchers()
            .upsert("n", &offers[1..], nov18, retention)
            .unwrap();
        assert_eq!(again.unchanged, 1);
        let mut moved = offers[1].clone();
        moved.retailer = "Other".into();
        let changed = store
            .vouchers()
            .upsert("n", &[moved], nov18, retention)
            .unwrap();
        assert_eq!(changed.updated, 1);
        let retailers = store.vouchers().names(Named::Retailer, None, 10).unwrap();
        let counts: Vec<(&str, u64)> = retailers
            .iter()
            .map(|r| (r.name.as_str(), r.active))
            .collect();
        assert_eq!(counts, [("Other", 1), ("Shop", 0)]);
    }

    #[test]
    fn a_pull_cut_short_by_a_crash_is_rolled_back_when_the_store_opens() {
        let dir = tempfile::tempdir().unwrap();
        let settings = StoreSettings {
            path: dir.path().join("db"),
            cache_capacity_mb: 8,
            fsync: false,
            writer_queue: 65_536,
        };
        let retention = chrono::Duration::days(7);
        let now = t("2026-11-01T00:00:00Z");
        let kept = offer(
            "kept",
            "Shop",
            "2026-10-01T00:00:00Z",
            "2026-12-01T00:00:00Z",
        );
        {
            let store = Store::open(&settings).unwrap();
            store
                .vouchers()
                .upsert("n", std::slice::from_ref(&kept), now, retention)
                .unwrap();
            // A pull: page 1 changes the stored voucher, page 2 adds one; then the process dies
            // before the pull's end (the pages are flushed, as sled may do at any moment).
            let mut changed = kept.clone();
            changed.title = "changed".into();
            let added = offer(
                "added",
                "Other",
                "2026-10-01T00:00:00Z",
                "2026-12-01T00:00:00Z",
            );
            let v = store.vouchers();
            assert_eq!(
                v.upsert_page("n", &[changed], now, retention)
                    .unwrap()
                    .updated,
                1
            );
            assert_eq!(
                v.upsert_page("n", &[added], now, retention)
                    .unwrap()
                    .inserted,
                1
            );
            assert_eq!(v.count().unwrap(), 2);
            store.flush_now().unwrap();
        }
        let store = Store::open(&settings).unwrap();
        let v = store.vouchers();
        assert_eq!(v.count().unwrap(), 1, "the added voucher is gone");
        assert_eq!(v.id_of("n", "added").unwrap(), None);
        let id = v.id_of("n", "kept").unwrap().unwrap();
        assert_eq!(
            v.get(id).unwrap().unwrap().offer,
            kept,
            "the change is undone"
        );
        assert!(store.trees().pull_journal.is_empty());
        let names: Vec<String> = v
            .names(Named::Retailer, None, 10)
            .unwrap()
            .into_iter()
            .map(|n| n.name)
            .collect();
        assert_eq!(names, ["Shop"]);
    }
}
