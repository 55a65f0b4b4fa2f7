//! The voucher catalogue: records, the identity index, listing indexes, phase bookkeeping.
//!
//! Trees:
//! - `vouchers`          VoucherId(16) → Voucher (JSON)
//! - `external_voucher`  network ‖ 0xff ‖ external_id ‖ 0xff → VoucherId(16): identity, so a
//!   re-pull updates and never duplicates
//! - `retailer_voucher`  retailer key ‖ 0xff ‖ VoucherId(16) → window(16)
//! - `category_voucher`  category key ‖ 0xff ‖ VoucherId(16) → window(16)
//! - `network_voucher`   network ‖ 0xff ‖ VoucherId(16) → window(16)
//! - `voucher_due`       due_at(8) ‖ VoucherId(16) → (): when the voucher's phase next changes
//!   (starts, ends) or, once expired, when retention ends and it is removed
//! - `retailers`, `categories`  key (case-folded name) → display name (first spelling seen)
//!
//! Listing indexes carry the validity window as their value (`starts ‖ ends`, micros), so the
//! `active` filter is decided on the index entry without reading the record. Listings run newest
//! first (ids are UUIDv7) over one index and read at most [`SCAN_BUDGET`] entries per request; a
//! page that ran out of budget still returns a cursor to go on from.
//!
//! Active counts per retailer, category and network live in `counters`
//! (`active ‖ scope ‖ key`), changed in the same transaction as the phase they count; the sweep
//! ([`Vouchers::sweep_due`]) moves phases forward as time passes.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use uuid::Uuid;

use super::counters::{self, active_key};
use super::keys::{KeyBuf, i64_from, i64_key, uuid_from};
use super::{Store, StoreError, decode, encode};
use crate::domain::voucher::{Offer, Phase, Voucher, Window, name_key};

/// Index entries a listing request reads at most.
pub const SCAN_BUDGET: usize = 5_000;

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

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

impl Named {
    /// The scope of its counters (see [`active_key`]).
    fn scope(self) -> &'static str {
        match self {
            Named::Retailer => "retailer",
            Named::Category => "category",
        }
    }
}

/// A retailer or category with its number of active vouchers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameCount {
    pub key: String,
    pub name: String,
    pub active: u64,
}

pub struct Vouchers<'a> {
    store: &'a Store,
}

fn window_value(w: &Window) -> [u8; 16] {
    let mut v = [0u8; 16];
    let starts = w.starts_at.map_or(i64::MIN, |t| t.timestamp_micros());
    let ends = w.ends_at.map_or(i64::MAX, |t| t.timestamp_micros());
    v[..8].copy_from_slice(&i64_key(starts));
    v[8..].copy_from_slice(&i64_key(ends));
    v
}

fn window_active(value: &[u8], now: DateTime<Utc>) -> bool {
    let now = now.timestamp_micros();
    match (i64_from(value), value.get(8..).and_then(i64_from)) {
        (Some(starts), Some(ends)) => starts <= now && now < ends,
        _ => true, // unreadable: let the record decide
    }
}

fn external_key(network: &str, external_id: &str) -> Vec<u8> {
    KeyBuf::new().str(network).str(external_id).build()
}

fn index_key(prefix: &str, id: Uuid) -> Vec<u8> {
    KeyBuf::new().str(prefix).uuid(id).build()
}

fn due_key(at: DateTime<Utc>, id: Uuid) -> Vec<u8> {
    KeyBuf::new().time(at).uuid(id).build()
}

/// The trees a catalogue transaction touches, in one place.
struct Tx<'t> {
    vouchers: &'t TransactionalTree,
    external: &'t TransactionalTree,
    by_retailer: &'t TransactionalTree,
    by_category: &'t TransactionalTree,
    by_network: &'t TransactionalTree,
    due: &'t TransactionalTree,
    retailers: &'t TransactionalTree,
    categories: &'t TransactionalTree,
    counters: &'t TransactionalTree,
}

/// Counter changes and names gathered during one transaction, written once at its end.
#[derive(Default)]
struct Pending {
    counts: HashMap<Vec<u8>, i64>,
    names_seen: HashSet<(Named, String)>,
}

impl Pending {
    fn count(&mut self, v: &Voucher, delta: i64) {
        *self
            .counts
            .entry(counters::VOUCHERS.as_bytes().to_vec())
            .or_default() += delta;
        if v.phase != Phase::Active {
            return;
        }
        *self
            .counts
            .entry(active_key("network", &v.network))
            .or_default() += delta;
        *self
            .counts
            .entry(active_key(
                Named::Retailer.scope(),
                &name_key(&v.offer.retailer),
            ))
            .or_default() += delta;
        if let Some(c) = &v.offer.category {
            *self
                .counts
                .entry(active_key(Named::Category.scope(), &name_key(c)))
                .or_default() += delta;
        }
    }

    /// Writes the gathered counter changes.
    fn flush(self, tx: &Tx) -> TxResult<()> {
        for (key, delta) in self.counts {
            counters::bump(tx.counters, key, delta)?;
        }
        Ok(())
    }
}

impl Tx<'_> {
    fn get(&self, id: Uuid) -> TxResult<Option<Voucher>> {
        match self.vouchers.get(id.as_bytes())? {
            None => Ok(None),
            Some(raw) => decode(&raw)
                .map(Some)
                .map_err(ConflictableTransactionError::Abort),
        }
    }

    fn put(&self, v: &Voucher) -> TxResult<()> {
        let value = encode(v).map_err(ConflictableTransactionError::Abort)?;
        self.vouchers.insert(v.id.as_bytes(), value)?;
        Ok(())
    }

    /// Adds the index entries of `v` (its identity entry is handled by the caller).
    fn index(&self, v: &Voucher, pending: &mut Pending) -> TxResult<()> {
        let window = window_value(&v.window());
        let retailer = name_key(&v.offer.retailer);
        self.by_retailer
            .insert(index_key(&retailer, v.id), &window[..])?;
        self.by_network
            .insert(index_key(&v.network, v.id), &window[..])?;
        if pending
            .names_seen
            .insert((Named::Retailer, retailer.clone()))
            && self.retailers.get(retailer.as_bytes())?.is_none()
        {
            self.retailers
                .insert(retailer.as_bytes(), v.offer.retailer.as_bytes())?;
        }
        if let Some(category) = &v.offer.category {
            let key = name_key(category);
            self.by_category
                .insert(index_key(&key, v.id), &window[..])?;
            if pending.names_seen.insert((Named::Category, key.clone()))
                && self.categories.get(key.as_bytes())?.is_none()
            {
                self.categories
                    .insert(key.as_bytes(), category.as_bytes())?;
            }
        }
        if let Some(at) = v.due_at {
            self.due.insert(due_key(at, v.id), &[])?;
        }
        Ok(())
    }

    fn unindex(&self, v: &Voucher) -> TxResult<()> {
        self.by_retailer
            .remove(index_key(&name_key(&v.offer.retailer), v.id))?;
        self.by_network.remove(index_key(&v.network, v.id))?;
        if let Some(category) = &v.offer.category {
            self.by_category
                .remove(index_key(&name_key(category), v.id))?;
        }
        if let Some(at) = v.due_at {
            self.due.remove(due_key(at, v.id))?;
        }
        Ok(())
    }
}

impl<'a> Vouchers<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Self { store }
    }

    /// Runs `f` in one transaction over every catalogue tree.
    fn transaction<R>(&self, f: impl Fn(&Tx) -> TxResult<R>) -> Result<R, StoreError> {
        let t = self.store.trees();
        let out = (
            &t.vouchers,
            &t.external_voucher,
            &t.retailer_voucher,
            &t.category_voucher,
            &t.network_voucher,
            &t.voucher_due,
            &t.retailers,
            &t.categories,
            &t.counters,
        )
            .transaction(
                |(
                    vouchers,
                    external,
                    by_retailer,
                    by_category,
                    by_network,
                    due,
                    retailers,
                    categories,
                    counters,
                )| {
                    f(&Tx {
                        vouchers,
                        external,
                        by_retailer,
                        by_category,
                        by_network,
                        due,
                        retailers,
                        categories,
                        counters,
                    })
                },
            )?;
        self.store.bump_catalogue_generation();
        Ok(out)
    }

    /// Inserts new offers of `network`, updates changed ones, leaves equal ones alone — all in one
    /// transaction. `first_seen_at` of a known voucher is kept.
    pub fn upsert(
        &self,
        network: &str,
        offers: &[Offer],
        now: DateTime<Utc>,
        retention: chrono::Duration,
    ) -> Result<Upserted, StoreError> {
        // Ids are drawn once, outside the closure, so a retried transaction reuses them. They carry
        // `now` (the first-seen instant), so digests select "new since T" as an id range.
        let fresh_ids: Vec<Uuid> = offers.iter().map(|_| crate::domain::v7_at(now)).collect();
        self.transaction(|tx| {
            let mut done = Upserted::default();
            let mut pending = Pending::default();
            for (offer, fresh) in offers.iter().zip(&fresh_ids) {
                let ext = external_key(network, &offer.external_id);
                let existing = match tx.external.get(&ext)? {
                    Some(raw) => match uuid_from(&raw) {
                        Some(id) => tx.get(id)?,
                        None => None,
                    },
                    None => None,
                };
                match existing {
                    Some(old) if old.offer == *offer => done.unchanged += 1,
                    Some(old) => {
                        let window = Window::of(offer);
                        let new = Voucher {
                            offer: offer.clone(),
                            updated_at: now,
                            phase: window.phase_at(now),
                            due_at: window.next_change(now, retention),
                            ..old.clone()
                        };
                        tx.unindex(&old)?;
                        pending.count(&old, -1);
                        tx.put(&new)?;
                        tx.index(&new, &mut pending)?;
                        pending.count(&new, 1);
                        done.updated += 1;
                    }
                    None => {
                        let window = Window::of(offer);
                        let v = Voucher {
                            v: Voucher::VERSION,
                            id: *fresh,
                            network: network.to_owned(),
                            offer: offer.clone(),
                            first_seen_at: now,
                            updated_at: now,
                            phase: window.phase_at(now),
                            due_at: window.next_change(now, retention),
                        };
                        tx.external.insert(ext, v.id.as_bytes())?;
                        tx.put(&v)?;
                        tx.index(&v, &mut pending)?;
                        pending.count(&v, 1);
                        done.inserted += 1;
                    }
                }
            }
            pending.flush(tx)?;
            Ok(done)
        })
    }

    /// Moves vouchers whose due time has come to their phase now, and removes expired ones whose
    /// retention ended. Handles at most `max`; returns how many it handled.
    pub fn sweep_due(
        &self,
        now: DateTime<Utc>,
        retention: chrono::Duration,
        max: usize,
    ) -> Result<usize, StoreError> {
        let end = KeyBuf::new().time(now).bytes(&[0xff; 16]).build();
        let due: Vec<Uuid> = self
            .store
            .trees()
            .voucher_due
            .range(..=end)
            .keys()
            .take(max)
            .map(|k| k.map(|k| k.get(8..).and_then(uuid_from)))
            .filter_map(Result::transpose)
            .collect::<Result<_, _>>()?;
        if due.is_empty() {
            return Ok(0);
        }
        self.transaction(|tx| {
            let mut pending = Pending::default();
            for id in &due {
                let Some(old) = tx.get(*id)? else { continue };
                tx.unindex(&old)?;
                pending.count(&old, -1);
                let window = old.window();
                let phase = window.phase_at(now);
                let removal_due = old.due_at.is_some_and(|at| at <= now);
                if phase == Phase::Expired && old.phase == Phase::Expired && removal_due {
                    tx.vouchers.remove(id.as_bytes())?;
                    tx.external
                        .remove(external_key(&old.network, &old.offer.external_id))?;
                    continue;
                }
                let new = Voucher {
                    phase,
                    due_at: window.next_change(now, retention),
                    ..old
                };
                tx.put(&new)?;
                tx.index(&new, &mut pending)?;
                pending.count(&new, 1);
            }
            pending.flush(tx)?;
            Ok(due.len())
        })
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
            .store
            .trees()
            .external_voucher
            .get(external_key(network, external_id))?
            .and_then(|raw| uuid_from(&raw)))
    }

    /// Newest first, after `after` (exclusive), at most `limit`.
    pub fn list(
        &self,
        filter: &Filter,
        after: Option<Uuid>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Listing, StoreError> {
        let t = self.store.trees();
        // The most selective index the filter names.
        let (tree, prefix): (&sled::Tree, Vec<u8>) = if let Some(r) = &filter.retailer {
            (&t.retailer_voucher, KeyBuf::new().str(&name_key(r)).build())
        } else if let Some(c) = &filter.category {
            (&t.category_voucher, KeyBuf::new().str(&name_key(c)).build())
        } else if let Some(n) = &filter.network {
            (&t.network_voucher, KeyBuf::new().str(n).build())
        } else {
            (&t.vouchers, Vec::new())
        };
        let start = prefix.clone();
        let end = match after {
            Some(id) => KeyBuf::new().bytes(&prefix).uuid(id).build(),
            None => KeyBuf::new().bytes(&prefix).bytes(&[0xff; 17]).build(),
        };
        let q = filter.q.as_ref().map(|q| q.to_lowercase());
        let category = filter.category.as_deref().map(name_key);
        let mut items = Vec::with_capacity(limit.min(64));
        let mut last = None;
        let is_records = prefix.is_empty();
        for (scanned, kv) in tree.range(start..end).rev().enumerate() {
            if scanned >= SCAN_BUDGET {
                // Out of budget: hand back what was found and where to go on from.
                return Ok(Listing { items, next: last });
            }
            let (k, value) = kv?;
            let Some(id) = k.get(prefix.len()..).and_then(uuid_from) else {
                continue;
            };
            if !is_records && filter.active && !window_active(&value, now) {
                if items.len() < limit {
                    last = Some(id);
                }
                continue;
            }
            let voucher: Voucher = if is_records {
                decode(&value)?
            } else {
                match self.get(id)? {
                    Some(v) => v,
                    None => continue,
                }
            };
            if !matches(&voucher, filter, category.as_deref(), q.as_deref(), now) {
                if items.len() < limit {
                    last = Some(id);
                }
                continue;
            }
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
        let trees = self.store.trees();
        let tree = match which {
            Named::Retailer => &trees.retailers,
            Named::Category => &trees.categories,
        };
        let iter = match after {
            Some(key) => tree.range(KeyBuf::new().bytes(key.as_bytes()).bytes(&[0]).build()..),
            None => tree.iter(),
        };
        let counters = self.store.counters();
        iter.take(limit)
            .map(|kv| {
                let (k, v) = kv?;
                let key = String::from_utf8_lossy(&k).into_owned();
                Ok(NameCount {
                    active: counters.get(active_key(which.scope(), &key))?,
                    name: String::from_utf8_lossy(&v).into_owned(),
                    key,
                })
            })
            .collect()
    }

    /// Adds to `out` the vouchers of a retailer or category (by key) first seen at or after
    /// `since` and active at `now`: a range of the id-ordered index (ids carry their first-seen
    /// instant), deciding `active` on the index entry alone.
    pub fn new_since(
        &self,
        which: Named,
        key: &str,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
        out: &mut std::collections::BTreeSet<Uuid>,
    ) -> Result<(), StoreError> {
        let trees = self.store.trees();
        let tree = match which {
            Named::Retailer => &trees.retailer_voucher,
            Named::Category => &trees.category_voucher,
        };
        let prefix = KeyBuf::new().str(key).build();
        let start = KeyBuf::new()
            .bytes(&prefix)
            .bytes(&super::keys::uuid_floor(since))
            .build();
        let end = KeyBuf::new().bytes(&prefix).bytes(&[0xff; 17]).build();
        for kv in tree.range(start..end) {
            let (k, window) = kv?;
            if let Some(id) = k.get(prefix.len()..).and_then(uuid_from)
                && window_active(&window, now)
            {
                out.insert(id);
            }
        }
        Ok(())
    }

    pub fn active_in_network(&self, network: &str) -> Result<u64, StoreError> {
        self.store.counters().get(active_key("network", network))
    }

    pub fn count(&self) -> Result<u64, StoreError> {
        self.store.counters().get(counters::VOUCHERS)
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
}
