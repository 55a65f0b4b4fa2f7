//! Codes: one key per code (`codes` code bytes → CodeRecord), so a code is unique across the
//! whole store by construction. In memory ([`CodeIndex`], rebuilt at open, changed only by the
//! writer): every code's status and holder (in a compact [`CodeTable`]); each campaign's codes in
//! the order they were made, with its counters, what each customer holds and where its next
//! available code is; each customer's codes (the wallet). Making a code writes one key; claiming
//! one rewrites one key, built from memory ([`Codes::take`]: the pool lives here, on the writer).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use uuid::Uuid;

use super::code_table::{CodeId, CodeTable};
use super::{Store, StoreError, Trees, decode, encode};
use crate::domain::campaign::{Campaign, CodeFlags, CodeRecord, CodeStatus, Refusal};

#[derive(Debug, Default)]
struct CampaignCodes {
    /// In the order they were made: a listing cursor is a position here.
    codes: Vec<CodeId>,
    /// What an unclaimed code's record holds besides its text, per run of codes made together
    /// (by the position of its first code): so a claim writes the record without reading it.
    made: Vec<Made>,
    /// No code before this position is available: where the next hand-out looks first (codes go
    /// out oldest first, and only a failed write gives one back).
    next: usize,
    claimed: u64,
    redeemed: u64,
    /// Held for orders waiting for their payment (neither available nor claimed).
    reserved: u64,
    /// Available codes that are disabled (not handed out).
    disabled: u64,
    /// Codes each customer holds (reserved for them, claimed or redeemed), for the per-customer
    /// limit.
    held: HashMap<Uuid, u32>,
    /// Claims per quarter hour (UTC, [`crate::domain::report::slot_of`]), for reports.
    claims_by_slot: std::collections::BTreeMap<i64, u64>,
}

/// Codes made together: from position `from` on, until the next run.
#[derive(Debug, Clone, Copy)]
struct Made {
    from: usize,
    at: DateTime<Utc>,
    balance_cents: Option<i64>,
}

impl CampaignCodes {
    fn push(&mut self, code: CodeId, at: DateTime<Utc>, balance_cents: Option<i64>) {
        let same_run = self
            .made
            .last()
            .is_some_and(|m| m.at == at && m.balance_cents == balance_cents);
        if !same_run {
            self.made.push(Made {
                from: self.codes.len(),
                at,
                balance_cents,
            });
        }
        self.codes.push(code);
    }

    /// The run the code at `position` was made in.
    fn made_at(&self, position: usize) -> Option<Made> {
        let i = self.made.partition_point(|m| m.from <= position);
        i.checked_sub(1).and_then(|i| self.made.get(i)).copied()
    }
}

#[derive(Default)]
struct CodeState {
    table: CodeTable,
    campaigns: HashMap<Uuid, CampaignCodes>,
    /// Each customer's codes, in the order they got them.
    holders: HashMap<Uuid, Vec<CodeId>>,
    /// Codes with something set (disabled, shared): few.
    flags: HashMap<CodeId, CodeFlags>,
}

impl CampaignCodes {
    fn available(&self) -> u64 {
        (self.codes.len() as u64)
            .saturating_sub(self.claimed)
            .saturating_sub(self.reserved)
            .saturating_sub(self.disabled)
    }
}

/// How a status counts: (claimed, redeemed, reserved).
fn rank(s: CodeStatus) -> (u64, u64, u64) {
    match s {
        CodeStatus::Available => (0, 0, 0),
        CodeStatus::Reserved => (0, 0, 1),
        CodeStatus::Claimed => (1, 0, 0),
        CodeStatus::Redeemed => (1, 1, 0),
    }
}

impl CodeState {
    /// A code went from `before` to `record.status` (and maybe got a holder): a redemption or
    /// its rollback, an order's payment (reserved to claimed).
    fn changed(&mut self, before: CodeStatus, record: &CodeRecord) {
        let id = self.table.id_or_insert(&record.code);
        let old_holder = self.table.holder(id);
        self.table.set(id, record.status, record.holder);
        if let Some(c) = self.campaigns.get_mut(&record.campaign_id) {
            let (was, now) = (rank(before), rank(record.status));
            c.claimed = (c.claimed + now.0).saturating_sub(was.0);
            c.redeemed = (c.redeemed + now.1).saturating_sub(was.1);
            c.reserved = (c.reserved + now.2).saturating_sub(was.2);
            if was.0 == 0
                && now.0 == 1
                && let Some(at) = record.claimed_at
            {
                *c.claims_by_slot
                    .entry(crate::domain::report::slot_of(at))
                    .or_default() += 1;
            }
            if before == CodeStatus::Available
                && record.status != CodeStatus::Available
                && let Some(holder) = record.holder
            {
                *c.held.entry(holder).or_default() += 1;
            }
        }
        if let Some(holder) = record.holder
            && old_holder != Some(holder)
        {
            self.holders.entry(holder).or_default().push(id);
        }
    }

    /// A code as stored, added when made, or at open (`known_new`: the scan reads each code
    /// once). Wallets are ordered by the caller.
    fn add(&mut self, record: &CodeRecord, known_new: bool) -> CodeId {
        let id = if known_new {
            self.table.push(&record.code)
        } else {
            self.table.id_or_insert(&record.code)
        };
        self.table.set(id, record.status, record.holder);
        let campaign = self.campaigns.entry(record.campaign_id).or_default();
        campaign.push(id, record.created_at, record.balance_cents);
        let (claimed, redeemed, reserved) = rank(record.status);
        campaign.claimed += claimed;
        campaign.redeemed += redeemed;
        campaign.reserved += reserved;
        if record.status != CodeStatus::Available
            && let Some(holder) = record.holder
        {
            *campaign.held.entry(holder).or_default() += 1;
        }
        if claimed == 1
            && let Some(at) = record.claimed_at
        {
            *campaign
                .claims_by_slot
                .entry(crate::domain::report::slot_of(at))
                .or_default() += 1;
        }
        id
    }
}

impl CodeState {
    /// `id`'s flags are now `flags` (the campaign's count of disabled available codes follows).
    fn flag(&mut self, id: CodeId, flags: CodeFlags) {
        let before = self.flags.get(&id).is_some_and(|f| f.disabled);
        if flags.disabled || flags.shared {
            self.flags.insert(id, flags);
        } else {
            self.flags.remove(&id);
        }
        if before != flags.disabled
            && self.table.status(id) == CodeStatus::Available
            && let Some(c) = self.campaigns.get_mut(&flags.campaign_id)
        {
            if flags.disabled {
                c.disabled += 1;
            } else {
                c.disabled = c.disabled.saturating_sub(1);
                // Re-enabled: the next hand-out looks from the start again.
                c.next = 0;
            }
        }
    }
}

/// The in-memory secondary indexes of codes.
#[derive(Default)]
pub(crate) struct CodeIndex(RwLock<CodeState>);

impl CodeIndex {
    /// Reads every code once (at open), one record at a time (nothing but the index is kept).
    /// Codes are stored by their text, not in the order they were made, so each campaign's list
    /// is ordered by creation time (then text) after the scan, and each wallet by claim time.
    pub(crate) fn load(trees: &Trees) -> Result<Self, StoreError> {
        let mut state = CodeState::default();
        // (made, id, balance) and (claimed, id, holder): the orders to restore.
        let mut made: HashMap<Uuid, Vec<(i64, CodeId, Option<i64>)>> = HashMap::new();
        let mut claimed: Vec<(i64, CodeId, Uuid)> = Vec::new();
        for kv in trees.codes.iter() {
            let (_, v) = kv?;
            let r = decode::<CodeRecord>(&v)?;
            let id = state.add(&r, true);
            made.entry(r.campaign_id).or_default().push((
                r.created_at.timestamp_micros(),
                id,
                r.balance_cents,
            ));
            if let Some(holder) = r.holder {
                let at = r.claimed_at.map_or(i64::MIN, |t| t.timestamp_micros());
                claimed.push((at, id, holder));
            }
        }
        for kv in trees.code_flags.iter() {
            let (k, v) = kv?;
            let flags: CodeFlags = decode(&v)?;
            // Flags written just before their code, whose write then failed, name nothing.
            if let Some(id) = std::str::from_utf8(&k)
                .ok()
                .and_then(|c| state.table.find(c))
            {
                state.flag(id, flags);
            }
        }
        let CodeState {
            table: _,
            campaigns,
            holders,
            flags: _,
        } = &mut state;
        for (campaign, mut order) in made {
            // Ids were given in the scan's order, which is the codes' byte order: (time, id)
            // sorts by time, then text, without reading a text.
            order.sort_unstable_by_key(|&(at, id, _)| (at, id));
            let Some(c) = campaigns.get_mut(&campaign) else {
                continue;
            };
            // The list and its runs in the order the codes were made.
            c.codes = Vec::with_capacity(order.len());
            c.made.clear();
            for (at, id, balance) in order {
                let at = DateTime::from_timestamp_micros(at).unwrap_or_default();
                c.push(id, at, balance);
            }
        }
        claimed.sort_unstable_by_key(|&(at, id, _)| (at, id));
        for (_, id, holder) in claimed {
            holders.entry(holder).or_default().push(id);
        }
        Ok(Self(RwLock::new(state)))
    }
}

/// A campaign's code counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CodeCounts {
    pub total: u64,
    pub claimed: u64,
    pub redeemed: u64,
    /// Held for orders waiting for their payment.
    pub reserved: u64,
    /// What may still be handed out: neither claimed, reserved nor disabled.
    pub available: u64,
}

/// Codes per sled batch when new codes are written [`Atomic::InBatches`] (in key order). sled
/// holds what a batch replaces until the batch ends, so memory grows faster than the batch:
/// generating 1,000,000 codes through the API of the release binary (sled cache 256 MB) peaked
/// at 2,345 MiB with batches of 2,000, 468 MiB with 500 and 455 MiB with 250, and took 5.6, 5.0
/// and 4.8 s (128: 5.8 s). Unsorted batches of 20,000 had peaked at 1,397 MiB for 300,000 codes.
pub const SLED_BATCH: usize = 250;

/// Whether new codes are written as one sled batch (all or none even across a crash: an import)
/// or in batches of [`SLED_BATCH`] (a crash may keep a prefix of an unacknowledged part: for
/// generated codes, which nobody has seen, that only leaves the pool with some codes already).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Atomic {
    Whole,
    InBatches,
}

/// Which codes a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listed {
    All,
    Status(CodeStatus),
    /// Not redeemed, and the campaign's window is closed.
    Expired,
}

pub struct Codes<'a> {
    store: &'a Store,
}

impl<'a> Codes<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Self { store }
    }

    fn index(&self) -> &CodeIndex {
        &self.store.indexes().codes
    }

    /// Which of `codes` exist already, or appear twice in `codes` (codes compare regardless of
    /// the case of ASCII letters: `summer10` is taken when `SUMMER10` exists).
    pub fn taken(&self, codes: &[String]) -> Vec<String> {
        let state = self.index().0.read();
        let mut seen = HashSet::new();
        codes
            .iter()
            .filter(|c| {
                state.table.find(c).is_some() || !seen.insert(crate::domain::campaign::code_key(c))
            })
            .cloned()
            .collect()
    }

    /// Stores new available codes of a campaign (one key each, one batch), all or none: any code
    /// that exists already (or twice in `codes`) refuses the lot with `Taken`, and so does a lot
    /// the pool has no room for (`Full`: the check is here, on the writer, so additions racing
    /// each other cannot overfill it). Writer only.
    #[allow(clippy::too_many_arguments)]
    pub fn insert_new(
        &self,
        campaign: Uuid,
        codes: &[String],
        balance_cents: Option<i64>,
        pool_size: u32,
        now: DateTime<Utc>,
        atomic: Atomic,
        shared: Option<Option<u64>>,
    ) -> Result<(), CodesError> {
        let room = u64::from(pool_size).saturating_sub(self.counts(campaign).total);
        if codes.len() as u64 > room {
            return Err(CodesError::Full { pool_size, room });
        }
        let taken = self.taken(codes);
        if !taken.is_empty() {
            return Err(CodesError::Taken(taken));
        }
        let records: Vec<CodeRecord> = codes
            .iter()
            .map(|code| CodeRecord {
                v: CodeRecord::VERSION,
                code: code.clone(),
                campaign_id: campaign,
                status: CodeStatus::Available,
                holder: None,
                claimed_at: None,
                balance_cents,
                created_at: now,
                order_id: None,
                redeemed_at: None,
            })
            .collect();
        // A shared code's flags go first: flags whose code then fails to be written name
        // nothing (skipped at open, and overwritten if the code is added again).
        let shared_flags = shared.map(|usage_limit| CodeFlags {
            v: CodeFlags::VERSION,
            campaign_id: campaign,
            disabled: false,
            shared: true,
            usage_limit,
        });
        if let Some(f) = &shared_flags {
            let mut batch = sled::Batch::default();
            for r in &records {
                batch.insert(r.code.as_bytes(), encode(f)?);
            }
            self.store
                .trees()
                .code_flags
                .apply_batch(batch)
                .map_err(StoreError::from)?;
        }
        let per_batch = match atomic {
            Atomic::Whole => records.len().max(1),
            Atomic::InBatches => SLED_BATCH,
        };
        // In key order, so each sled batch touches few of the tree's leaves.
        let mut order: Vec<&CodeRecord> = records.iter().collect();
        order.sort_unstable_by(|a, b| a.code.cmp(&b.code));
        for part in order.chunks(per_batch) {
            let mut batch = sled::Batch::default();
            for r in part {
                batch.insert(r.code.as_bytes(), encode(r)?);
            }
            self.store
                .trees()
                .codes
                .apply_batch(batch)
                .map_err(StoreError::from)?;
        }
        let mut state = self.index().0.write();
        let text: usize = records.iter().map(|r| r.code.len()).sum();
        state.table.reserve(records.len(), text);
        // Listed and handed out in key order within the lot (as a restart orders codes made at
        // the same time): consecutive claims then rewrite neighbouring keys, mostly in one of
        // sled's leaves.
        for r in order {
            let id = state.add(r, false);
            if let Some(f) = shared_flags {
                state.flag(id, f);
            }
        }
        Ok(())
    }

    /// A code's flags (disabled; shared and its usage limit), from memory.
    pub fn flags(&self, code: &str) -> Option<CodeFlags> {
        let state = self.index().0.read();
        let id = state.table.find(code)?;
        state.flags.get(&id).copied()
    }

    /// Disables or enables one code (one key): a disabled code is neither handed out nor
    /// redeemed. Writer only. `None` when there is no such code.
    pub fn set_disabled(
        &self,
        code: &str,
        disabled: bool,
    ) -> Result<Option<(CodeRecord, CodeFlags)>, StoreError> {
        let Some(record) = self.get(code)? else {
            return Ok(None);
        };
        let mut flags = self.flags(code).unwrap_or(CodeFlags {
            v: CodeFlags::VERSION,
            campaign_id: record.campaign_id,
            ..Default::default()
        });
        flags.disabled = disabled;
        // Under the code as stored (it may have been typed in another case).
        let code = record.code.as_str();
        let tree = &self.store.trees().code_flags;
        if flags.disabled || flags.shared {
            tree.insert(code.as_bytes(), encode(&flags)?)?;
        } else {
            tree.remove(code.as_bytes())?;
        }
        let mut state = self.index().0.write();
        if let Some(id) = state.table.find(code) {
            state.flag(id, flags);
        }
        Ok(Some((record, flags)))
    }

    /// Makes room in memory for `count` more codes of `campaign`, about `text` bytes of code
    /// text in all, before a large generation writes them part by part: the arrays then grow
    /// once instead of doubling (a doubling holds the old and the new array at once). Writer only.
    pub fn make_room(&self, campaign: Uuid, count: usize, text: usize) {
        let mut state = self.index().0.write();
        state.table.reserve(count, text);
        state
            .campaigns
            .entry(campaign)
            .or_default()
            .codes
            .reserve_exact(count);
    }

    /// Hands `n` codes of `campaign` to `customer` if the campaign's rule allows it
    /// ([`Campaign::may_hand_out`], from this index: the codes left and what the customer holds),
    /// the oldest available first, and marks them taken here; returns their records as they are
    /// to be written (built from memory: nothing is read): `taken_as` `Claimed`, or `Reserved`
    /// for an unpaid order (nobody's to use yet, but counted against the customer's limit).
    /// The caller writes them, or gives them back with [`Codes::give_back`] when its write
    /// fails. Writer only: so no two hand-outs race, and a change to the campaign (written on
    /// this thread too) holds from the next one.
    pub(crate) fn take(
        &self,
        campaign: &Campaign,
        customer: Uuid,
        n: u32,
        order: Option<Uuid>,
        taken_as: CodeStatus,
        now: DateTime<Utc>,
    ) -> Result<Vec<CodeRecord>, Refusal> {
        // Codes go to accounts only: one erased while its request waited gets nothing (the
        // erasure ran on this writer before, so the user index says so exactly).
        if self.store.users().role(customer).is_none() {
            return Err(Refusal::NoCustomer);
        }
        let reserve = taken_as == CodeStatus::Reserved;
        let mut state = self.index().0.write();
        let CodeState {
            table,
            campaigns,
            holders,
            flags,
        } = &mut *state;
        let Some(c) = campaigns.get_mut(&campaign.id) else {
            campaign.may_hand_out(now, 0, n, 0)?;
            return Err(Refusal::SoldOut);
        };
        let held = c.held.get(&customer).copied().unwrap_or(0);
        campaign.may_hand_out(now, held, n, c.available())?;
        let mut out = Vec::with_capacity(n as usize);
        while out.len() < n as usize && c.next < c.codes.len() {
            let position = c.next;
            c.next += 1;
            let id = c.codes[position];
            if table.status(id) != CodeStatus::Available
                || flags.get(&id).is_some_and(|f| f.disabled)
            {
                continue;
            }
            let Some(made) = c.made_at(position) else {
                continue;
            };
            let status = if reserve {
                CodeStatus::Reserved
            } else {
                CodeStatus::Claimed
            };
            table.set(id, status, Some(customer));
            holders.entry(customer).or_default().push(id);
            out.push(CodeRecord {
                v: CodeRecord::VERSION,
                code: table.text(id).to_owned(),
                campaign_id: campaign.id,
                status,
                holder: Some(customer),
                // A reserved code is claimed when its order is paid.
                claimed_at: (!reserve).then_some(now),
                balance_cents: made.balance_cents,
                created_at: made.at,
                order_id: order,
                redeemed_at: None,
            });
        }
        let taken = out.len() as u64;
        *c.held.entry(customer).or_default() += taken as u32;
        if reserve {
            c.reserved += taken;
        } else {
            c.claimed += taken;
            *c.claims_by_slot
                .entry(crate::domain::report::slot_of(now))
                .or_default() += taken;
        }
        if taken < u64::from(n) {
            // The counts said there were enough: they were wrong. Give these back, refuse.
            drop(state);
            self.give_back(&out);
            return Err(Refusal::SoldOut);
        }
        Ok(out)
    }

    /// Undoes [`Codes::take`] for records whose write failed, or codes an unpaid order held
    /// until it expired (written back as available by the caller): available again, first in
    /// line. `records` are as they were taken (claimed, or reserved).
    pub(crate) fn give_back(&self, records: &[CodeRecord]) {
        let mut state = self.index().0.write();
        let CodeState {
            table,
            campaigns,
            holders,
            ..
        } = &mut *state;
        for r in records {
            let Some(id) = table.find(&r.code) else {
                continue;
            };
            table.set(id, CodeStatus::Available, None);
            if let Some(holder) = r.holder
                && let Some(list) = holders.get_mut(&holder)
                && let Some(i) = list.iter().rposition(|&c| c == id)
            {
                list.remove(i);
            }
            if let Some(c) = campaigns.get_mut(&r.campaign_id) {
                if r.status == CodeStatus::Reserved {
                    c.reserved = c.reserved.saturating_sub(1);
                } else {
                    c.claimed = c.claimed.saturating_sub(1);
                }
                if let Some(holder) = r.holder
                    && let Some(h) = c.held.get_mut(&holder)
                {
                    *h = h.saturating_sub(1);
                }
                if let Some(at) = r.claimed_at
                    && let Some(slot) = c
                        .claims_by_slot
                        .get_mut(&crate::domain::report::slot_of(at))
                {
                    *slot = slot.saturating_sub(1);
                }
                // Rare: the next hand-out looks from the start again.
                c.next = 0;
            }
        }
    }

    /// Claims one code of `campaign` for `customer` in one step (decided, written, indexed):
    /// one key. Writer only.
    pub fn claim_next(
        &self,
        campaign: &Campaign,
        customer: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Result<CodeRecord, Refusal>, StoreError> {
        let records = match self.take(campaign, customer, 1, None, CodeStatus::Claimed, now) {
            Ok(records) => records,
            Err(refusal) => return Ok(Err(refusal)),
        };
        self.written(&records, || {
            let trees = self.store.trees();
            for r in &records {
                trees.codes.insert(r.code.as_bytes(), encode(r)?)?;
            }
            Ok(())
        })?;
        Ok(records.into_iter().next().ok_or(Refusal::SoldOut))
    }

    /// Runs `write` for records just taken; gives them back when it fails.
    pub(crate) fn written<T>(
        &self,
        records: &[CodeRecord],
        write: impl FnOnce() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let out = write();
        if out.is_err() {
            self.give_back(records);
        }
        out
    }

    /// The in-memory indexes after a code whose status was `before` was written as `record` (a
    /// redemption or its rollback).
    pub(crate) fn index_changed(&self, before: CodeStatus, record: &CodeRecord) {
        self.index().0.write().changed(before, record);
    }

    /// The code typed as `code` (its ASCII letters in any case: see `CodeTable::find`).
    pub fn get(&self, code: &str) -> Result<Option<CodeRecord>, StoreError> {
        let stored = {
            let state = self.index().0.read();
            match state.table.find(code) {
                Some(id) => state.table.text(id).to_owned(),
                None => return Ok(None),
            }
        };
        self.store
            .trees()
            .codes
            .get(stored.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// A campaign's claims per quarter hour (UTC slots), from memory.
    pub fn claims_by_slot(&self, campaign: Uuid) -> std::collections::BTreeMap<i64, u64> {
        self.index()
            .0
            .read()
            .campaigns
            .get(&campaign)
            .map(|c| c.claims_by_slot.clone())
            .unwrap_or_default()
    }

    /// [`Campaign::may_hand_out`] as the index stands now, from any thread: a refusal here
    /// (ended, at the limit, sold out) holds until the writer changes something, so callers
    /// answer it without queueing a command; an allowance is only a hint ([`Codes::take`]
    /// decides).
    pub fn may_hand_out(
        &self,
        campaign: &Campaign,
        customer: Uuid,
        n: u32,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        let state = self.index().0.read();
        let (held, available) = state.campaigns.get(&campaign.id).map_or((0, 0), |c| {
            (c.held.get(&customer).copied().unwrap_or(0), c.available())
        });
        campaign.may_hand_out(now, held, n, available)
    }

    pub fn counts(&self, campaign: Uuid) -> CodeCounts {
        let state = self.index().0.read();
        state
            .campaigns
            .get(&campaign)
            .map(|c| CodeCounts {
                total: c.codes.len() as u64,
                claimed: c.claimed,
                redeemed: c.redeemed,
                reserved: c.reserved,
                available: c.available(),
            })
            .unwrap_or_default()
    }

    /// A page of a campaign's codes in the order they were made, from position `after` on;
    /// returns the records and the position to continue from.
    pub fn list(
        &self,
        campaign: Uuid,
        which: Listed,
        closed: bool,
        after: usize,
        limit: usize,
    ) -> Result<(Vec<CodeRecord>, Option<usize>), StoreError> {
        let picked: Vec<(usize, String)> = {
            let state = self.index().0.read();
            let Some(c) = state.campaigns.get(&campaign) else {
                return Ok((Vec::new(), None));
            };
            let table = &state.table;
            c.codes
                .iter()
                .enumerate()
                .skip(after)
                .filter(|(_, id)| {
                    let status = table.status(**id);
                    match which {
                        Listed::All => true,
                        Listed::Status(s) => status == s,
                        Listed::Expired => closed && status != CodeStatus::Redeemed,
                    }
                })
                .take(limit)
                .map(|(i, id)| (i, table.text(*id).to_owned()))
                .collect()
        };
        let next = (picked.len() == limit)
            .then(|| picked.last().map(|(i, _)| i + 1))
            .flatten();
        let mut records = Vec::with_capacity(picked.len());
        for (_, code) in &picked {
            if let Some(r) = self.get(code)? {
                records.push(r);
            }
        }
        Ok((records, next))
    }

    /// Erasure: the codes `customer` holds keep their state (counts and reports stay right) but
    /// name nobody (`Uuid::nil()`); one batch. Returns how many. Writer only.
    pub fn forget_holder(&self, customer: Uuid) -> Result<usize, StoreError> {
        let held = self.held_by(customer)?;
        let mut batch = sled::Batch::default();
        let mut records = Vec::with_capacity(held.len());
        for mut r in held {
            r.holder = Some(Uuid::nil());
            batch.insert(r.code.as_bytes(), encode(&r)?);
            records.push(r);
        }
        self.store.trees().codes.apply_batch(batch)?;
        let mut state = self.index().0.write();
        let ids = state.holders.remove(&customer).unwrap_or_default();
        for &id in &ids {
            let status = state.table.status(id);
            state.table.set(id, status, Some(Uuid::nil()));
        }
        for c in state.campaigns.values_mut() {
            if let Some(n) = c.held.remove(&customer) {
                *c.held.entry(Uuid::nil()).or_default() += n;
            }
        }
        Ok(records.len())
    }

    /// Every code a customer holds, in the order they got them: as stored (a code the writer is
    /// handing out right now is listed once its write is in).
    pub fn held_by(&self, customer: Uuid) -> Result<Vec<CodeRecord>, StoreError> {
        let codes: Vec<String> = {
            let state = self.index().0.read();
            state
                .holders
                .get(&customer)
                .map(|ids| {
                    ids.iter()
                        .map(|&id| state.table.text(id).to_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut out = Vec::with_capacity(codes.len());
        for code in &codes {
            if let Some(r) = self.get(code)?
                && r.holder == Some(customer)
            {
                out.push(r);
            }
        }
        Ok(out)
    }
}

/// Why new codes were refused.
#[derive(Debug, thiserror::Error)]
pub enum CodesError {
    #[error("codes already taken: {}", .0.join(", "))]
    Taken(Vec<String>),
    #[error("the pool holds {pool_size} codes and has room for {room} more")]
    Full { pool_size: u32, room: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::test_support;

    /// A claim or an order decided after its customer was erased (the request was on its way)
    /// takes nothing: codes go to accounts only.
    #[test]
    fn codes_go_to_accounts_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = test_support::store(dir.path());
        let campaign = test_support::campaign(4, 2);
        let ann = test_support::user("ann@example.org");
        let now = Utc::now();
        let codes: Vec<String> = (0..4).map(|i| format!("ACCT{i}")).collect();
        store.users().create(&ann).unwrap();
        store.campaigns().put(&campaign).unwrap();
        store
            .codes()
            .insert_new(
                campaign.id,
                &codes,
                None,
                campaign.pool_size,
                now,
                Atomic::Whole,
                None,
            )
            .unwrap();
        let claim = |who: Uuid| store.codes().claim_next(&campaign, who, now).unwrap();
        assert!(claim(ann.id).is_ok());
        assert_eq!(claim(Uuid::now_v7()).err(), Some(Refusal::NoCustomer));
        let order = |who: Uuid| {
            store
                .orders()
                .place(&campaign, who, 1, None, None, now)
                .unwrap()
                .map(|(o, _)| o.codes)
        };
        assert_eq!(order(ann.id).unwrap().len(), 1);
        store.users().erase(ann.id).unwrap();
        assert_eq!(claim(ann.id).err(), Some(Refusal::NoCustomer));
        assert_eq!(order(ann.id).err(), Some(Refusal::NoCustomer));
        assert_eq!(store.codes().counts(campaign.id).available, 2);
        // A checkout that named her before the erasure writes nothing naming her after it.
        let buyer = crate::store::orders::Buyer {
            person: Some(crate::domain::promotion::Customer::User(ann.id)),
            ..Default::default()
        };
        let checkout = crate::domain::promotion::Checkout::new(Some(1000), None, vec![]).unwrap();
        let redeemed = store
            .orders()
            .redeem(&[codes[3].clone()], &buyer, &checkout, now);
        assert!(
            matches!(
                redeemed,
                Err(crate::store::orders::RedeemError::UnknownCustomer)
            ),
            "{redeemed:?}"
        );
    }
}
