//! Codes: one key per code (`codes` code bytes → CodeRecord), so a code is unique across the
//! whole store by construction. In memory ([`CodeIndex`], rebuilt at open, changed only by the
//! writer): every code's campaign, status and holder; each campaign's codes in the order they were
//! made with its counters; each customer's codes (the wallet). Making a code writes one key;
//! claiming one rewrites one key.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use uuid::Uuid;

use super::{Store, StoreError, Trees, decode, encode};
use crate::domain::campaign::{CodeRecord, CodeStatus};

#[derive(Debug, Clone, Copy)]
struct CodeMeta {
    status: CodeStatus,
    holder: Option<Uuid>,
}

#[derive(Debug, Default)]
struct CampaignCodes {
    /// In the order they were made: a listing cursor is a position here.
    codes: Vec<Arc<str>>,
    claimed: u64,
    redeemed: u64,
    /// Claims per quarter hour (UTC, [`crate::domain::report::slot_of`]), for reports.
    claims_by_slot: std::collections::BTreeMap<i64, u64>,
}

#[derive(Default)]
struct CodeState {
    by_code: HashMap<Arc<str>, CodeMeta>,
    campaigns: HashMap<Uuid, CampaignCodes>,
    holders: HashMap<Uuid, Vec<Arc<str>>>,
}

impl CodeState {
    /// A code went from `before` to `record.status` (and maybe got a holder).
    fn changed(&mut self, before: CodeStatus, record: &CodeRecord) {
        let code: Arc<str> = match self.by_code.get_key_value(record.code.as_str()) {
            Some((k, _)) => k.clone(),
            None => Arc::from(record.code.as_str()),
        };
        let old_holder = self.by_code.get(&code).and_then(|m| m.holder);
        self.by_code.insert(
            code.clone(),
            CodeMeta {
                status: record.status,
                holder: record.holder,
            },
        );
        if let Some(c) = self.campaigns.get_mut(&record.campaign_id) {
            let rank = |s: CodeStatus| match s {
                CodeStatus::Available => (0, 0),
                CodeStatus::Claimed => (1, 0),
                CodeStatus::Redeemed => (1, 1),
            };
            let (was, now) = (rank(before), rank(record.status));
            c.claimed = (c.claimed + now.0).saturating_sub(was.0);
            c.redeemed = (c.redeemed + now.1).saturating_sub(was.1);
            if was.0 == 0
                && now.0 == 1
                && let Some(at) = record.claimed_at
            {
                *c.claims_by_slot
                    .entry(crate::domain::report::slot_of(at))
                    .or_default() += 1;
            }
        }
        if let Some(holder) = record.holder
            && old_holder != Some(holder)
        {
            self.holders.entry(holder).or_default().push(code);
        }
    }

    fn add(&mut self, record: &CodeRecord) {
        let code: Arc<str> = Arc::from(record.code.as_str());
        let campaign = self.campaigns.entry(record.campaign_id).or_default();
        campaign.codes.push(code.clone());
        match record.status {
            CodeStatus::Available => {}
            CodeStatus::Claimed => campaign.claimed += 1,
            CodeStatus::Redeemed => {
                campaign.claimed += 1;
                campaign.redeemed += 1;
            }
        }
        if record.status != CodeStatus::Available
            && let Some(at) = record.claimed_at
        {
            *campaign
                .claims_by_slot
                .entry(crate::domain::report::slot_of(at))
                .or_default() += 1;
        }
        if let Some(holder) = record.holder {
            self.holders.entry(holder).or_default().push(code.clone());
        }
        self.by_code.insert(
            code,
            CodeMeta {
                status: record.status,
                holder: record.holder,
            },
        );
    }
}

/// The in-memory secondary indexes of codes.
#[derive(Default)]
pub(crate) struct CodeIndex(RwLock<CodeState>);

impl CodeIndex {
    /// Reads every code once (at open). Codes are stored by their text, not in the order they were
    /// made, so each campaign's list is ordered by creation time (then text) after the scan, and
    /// each wallet by claim time.
    pub(crate) fn load(trees: &Trees) -> Result<Self, StoreError> {
        let mut records = Vec::new();
        for kv in trees.codes.iter() {
            let (_, v) = kv?;
            records.push(decode::<CodeRecord>(&v)?);
        }
        records.sort_by(|a, b| (a.created_at, &a.code).cmp(&(b.created_at, &b.code)));
        let mut state = CodeState::default();
        for r in &records {
            state.add(r);
        }
        // Wallets list codes in the order they were claimed.
        let mut held: Vec<&CodeRecord> = records.iter().filter(|r| r.holder.is_some()).collect();
        held.sort_by(|a, b| (a.claimed_at, &a.code).cmp(&(b.claimed_at, &b.code)));
        state.holders.clear();
        for r in held {
            if let (Some(holder), Some((code, _))) =
                (r.holder, state.by_code.get_key_value(r.code.as_str()))
            {
                let code = code.clone();
                state.holders.entry(holder).or_default().push(code);
            }
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
}

/// What a campaign's claims start from: its unclaimed codes (in the order they were made) and how
/// many codes each customer holds.
#[derive(Debug, Default)]
pub struct ClaimState {
    pub available: Vec<Arc<str>>,
    pub held: HashMap<Uuid, u32>,
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

    /// Which of `codes` exist already, or appear twice in `codes`.
    pub fn taken(&self, codes: &[String]) -> Vec<String> {
        let state = self.index().0.read();
        let mut seen = HashSet::new();
        codes
            .iter()
            .filter(|c| state.by_code.contains_key(c.as_str()) || !seen.insert(c.as_str()))
            .cloned()
            .collect()
    }

    /// Stores new available codes of a campaign (one key each, one batch), all or none: any code
    /// that exists already (or twice in `codes`) refuses the lot with `Taken`, and so does a lot
    /// the pool has no room for (`Full`: the check is here, on the writer, so additions racing
    /// each other cannot overfill it). Writer only.
    pub fn insert_new(
        &self,
        campaign: Uuid,
        codes: &[String],
        balance_cents: Option<i64>,
        pool_size: u32,
        now: DateTime<Utc>,
    ) -> Result<(), CodesError> {
        let room = u64::from(pool_size).saturating_sub(self.counts(campaign).total);
        if codes.len() as u64 > room {
            return Err(CodesError::Full { pool_size, room });
        }
        let taken = self.taken(codes);
        if !taken.is_empty() {
            return Err(CodesError::Taken(taken));
        }
        let mut batch = sled::Batch::default();
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
        for r in &records {
            batch.insert(r.code.as_bytes(), encode(r)?);
        }
        self.store
            .trees()
            .codes
            .apply_batch(batch)
            .map_err(StoreError::from)?;
        let mut state = self.index().0.write();
        for r in &records {
            state.add(r);
        }
        Ok(())
    }

    /// Hands available codes to `customer` (rewrites one key each, one batch), for a claim or an
    /// order. `Conflict` when one is not available (the caller's reservation was wrong): then none
    /// is handed out. Writer only.
    pub fn claim(
        &self,
        codes: &[Arc<str>],
        customer: Uuid,
        order: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<Vec<CodeRecord>, StoreError> {
        let records = self.claimed_records(codes, customer, order, now)?;
        let mut batch = sled::Batch::default();
        for r in &records {
            batch.insert(r.code.as_bytes(), encode(r)?);
        }
        self.store.trees().codes.apply_batch(batch)?;
        self.index_claimed(&records);
        Ok(records)
    }

    /// The records of `codes` handed to `customer`, not yet written: `Conflict` when one is not
    /// available.
    pub(crate) fn claimed_records(
        &self,
        codes: &[Arc<str>],
        customer: Uuid,
        order: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<Vec<CodeRecord>, StoreError> {
        let mut records = Vec::with_capacity(codes.len());
        for code in codes {
            let Some(mut record) = self.get(code)? else {
                return Err(StoreError::NotFound);
            };
            if record.status != CodeStatus::Available {
                return Err(StoreError::Conflict("the code is no longer available"));
            }
            record.status = CodeStatus::Claimed;
            record.holder = Some(customer);
            record.claimed_at = Some(now);
            record.order_id = order;
            records.push(record);
        }
        Ok(records)
    }

    /// The in-memory indexes after `records` were written as claimed.
    pub(crate) fn index_claimed(&self, records: &[CodeRecord]) {
        let mut state = self.index().0.write();
        for r in records {
            state.changed(CodeStatus::Available, r);
        }
    }

    /// The records of each `(code, customer)` handed out, not yet written: a code no longer
    /// available fails alone.
    pub(crate) fn claimed_each(
        &self,
        claims: &[(Arc<str>, Uuid)],
        now: DateTime<Utc>,
    ) -> Result<Vec<Result<CodeRecord, StoreError>>, StoreError> {
        let mut out = Vec::with_capacity(claims.len());
        for (code, customer) in claims {
            out.push(match self.get(code)? {
                None => Err(StoreError::NotFound),
                Some(r) if r.status != CodeStatus::Available => {
                    Err(StoreError::Conflict("the code is no longer available"))
                }
                Some(mut r) => {
                    r.status = CodeStatus::Claimed;
                    r.holder = Some(*customer);
                    r.claimed_at = Some(now);
                    Ok(r)
                }
            });
        }
        Ok(out)
    }

    /// Hands each `(code, customer)` its code, independently (one key each, one batch): a code no
    /// longer available fails alone. Writer only.
    pub fn claim_each(
        &self,
        claims: &[(Arc<str>, Uuid)],
        now: DateTime<Utc>,
    ) -> Result<Vec<Result<CodeRecord, StoreError>>, StoreError> {
        let out = self.claimed_each(claims, now)?;
        let mut batch = sled::Batch::default();
        for r in out.iter().flatten() {
            batch.insert(r.code.as_bytes(), encode(r)?);
        }
        self.store.trees().codes.apply_batch(batch)?;
        let claimed: Vec<CodeRecord> = out.iter().flatten().cloned().collect();
        self.index_claimed(&claimed);
        Ok(out)
    }

    /// The in-memory indexes after a code whose status was `before` was written as `record` (a
    /// redemption or its rollback).
    pub(crate) fn index_changed(&self, before: CodeStatus, record: &CodeRecord) {
        self.index().0.write().changed(before, record);
    }

    pub fn get(&self, code: &str) -> Result<Option<CodeRecord>, StoreError> {
        self.store
            .trees()
            .codes
            .get(code.as_bytes())?
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

    pub fn counts(&self, campaign: Uuid) -> CodeCounts {
        let state = self.index().0.read();
        state
            .campaigns
            .get(&campaign)
            .map(|c| CodeCounts {
                total: c.codes.len() as u64,
                claimed: c.claimed,
                redeemed: c.redeemed,
            })
            .unwrap_or_default()
    }

    /// Where a campaign's claims start (from memory).
    pub fn claim_state(&self, campaign: Uuid) -> ClaimState {
        let state = self.index().0.read();
        let mut out = ClaimState::default();
        let Some(c) = state.campaigns.get(&campaign) else {
            return out;
        };
        for code in &c.codes {
            let Some(meta) = state.by_code.get(code) else {
                continue;
            };
            match (meta.status, meta.holder) {
                (CodeStatus::Available, _) => out.available.push(code.clone()),
                (_, Some(holder)) => *out.held.entry(holder).or_default() += 1,
                _ => {}
            }
        }
        out
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
        let picked: Vec<(usize, Arc<str>)> = {
            let state = self.index().0.read();
            let Some(c) = state.campaigns.get(&campaign) else {
                return Ok((Vec::new(), None));
            };
            c.codes
                .iter()
                .enumerate()
                .skip(after)
                .filter(|(_, code)| {
                    let Some(meta) = state.by_code.get(*code) else {
                        return false;
                    };
                    match which {
                        Listed::All => true,
                        Listed::Status(s) => meta.status == s,
                        Listed::Expired => closed && meta.status != CodeStatus::Redeemed,
                    }
                })
                .take(limit)
                .map(|(i, code)| (i, code.clone()))
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
        let codes = state.holders.remove(&customer).unwrap_or_default();
        for code in &codes {
            if let Some(meta) = state.by_code.get_mut(code) {
                meta.holder = Some(Uuid::nil());
            }
        }
        Ok(records.len())
    }

    /// Every code a customer holds, in the order they got them.
    pub fn held_by(&self, customer: Uuid) -> Result<Vec<CodeRecord>, StoreError> {
        let codes: Vec<Arc<str>> = self
            .index()
            .0
            .read()
            .holders
            .get(&customer)
            .cloned()
            .unwrap_or_default();
        let mut out = Vec::with_capacity(codes.len());
        for code in &codes {
            if let Some(r) = self.get(code)? {
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
