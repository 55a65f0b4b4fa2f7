//! Code requests (tree `code_requests`: RequestId(16) → CodeRequest, one key per change).
//!
//! In memory ([`CodeRequestIndex`], rebuilt at open): the pending requests (resumed at start) and
//! each customer's requests (their wallet lists the fulfilled ones' codes; erasure removes all). [`CodeRequests::fulfil`] and
//! [`CodeRequests::fail`] settle a pending request once: a second answer — a duplicate callback,
//! a callback racing a poll — finds it settled and changes nothing. Reports read how many
//! requests each provider has in each status from memory too.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use uuid::Uuid;

use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use super::messages::Messages;
use super::{Store, StoreError, Trees, decode, encode, unwrap_transaction};
use crate::domain::code_request::{CodeRequest, RequestChannel, RequestStatus};
use crate::domain::delivery::{Channel, MessagePayload, MessageRecord};

#[derive(Default)]
struct State {
    pending: BTreeSet<Uuid>,
    /// Customer → their requests, oldest first.
    by_customer: HashMap<Uuid, Vec<Uuid>>,
    /// Phone number → the requests made with it, oldest first.
    by_phone: HashMap<String, Vec<Uuid>>,
    /// Requests by provider and status.
    counts: BTreeMap<(String, RequestStatus), u64>,
}

#[derive(Default)]
pub(crate) struct CodeRequestIndex(RwLock<State>);

impl CodeRequestIndex {
    pub(crate) fn load(trees: &Trees) -> Result<Self, StoreError> {
        let mut state = State::default();
        for v in trees.code_requests.iter().values() {
            let r: CodeRequest = decode(&v?)?;
            state.note(&r);
        }
        Ok(Self(RwLock::new(state)))
    }
}

impl State {
    /// A request stored as it is now. Only a pending one changes status (settled ones are
    /// final), so its status before was pending if it was known.
    fn note(&mut self, r: &CodeRequest) {
        let was_pending = if r.status == RequestStatus::Pending {
            !self.pending.insert(r.id)
        } else {
            self.pending.remove(&r.id)
        };
        let mine = self.by_customer.entry(r.customer).or_default();
        let known = mine.contains(&r.id);
        if !known {
            mine.push(r.id);
            if let Some(phone) = &r.phone {
                self.by_phone.entry(phone.clone()).or_default().push(r.id);
            }
        }
        if was_pending {
            self.uncount(&r.provider, RequestStatus::Pending);
        }
        if !known || was_pending {
            *self
                .counts
                .entry((r.provider.clone(), r.status))
                .or_default() += 1;
        }
    }

    fn uncount(&mut self, provider: &str, status: RequestStatus) {
        if let Some(n) = self.counts.get_mut(&(provider.to_owned(), status)) {
            *n = n.saturating_sub(1);
        }
    }
}

/// Which per-customer cap a new request would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Capped {
    #[error("at most {0} requests may wait for a code at once")]
    Pending(usize),
    #[error("at most {0} requests in 24 hours")]
    Daily(usize),
}

/// When a UUIDv7 was made, in ms since the epoch.
fn made_at_ms(id: &Uuid) -> i64 {
    i64::try_from(id.as_u128() >> 80).unwrap_or(i64::MAX)
}

/// How settling a request went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// This call settled it.
    Now(CodeRequest),
    /// It was settled before (as it stands).
    Already(CodeRequest),
}

impl Settled {
    pub fn request(&self) -> &CodeRequest {
        match self {
            Settled::Now(r) | Settled::Already(r) => r,
        }
    }
}

pub struct CodeRequests<'a> {
    store: &'a Store,
}

impl<'a> CodeRequests<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Self { store }
    }

    fn index(&self) -> &CodeRequestIndex {
        &self.store.indexes().code_requests
    }

    pub fn get(&self, id: Uuid) -> Result<Option<CodeRequest>, StoreError> {
        self.store
            .trees()
            .code_requests
            .get(id.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Stores a request as it is now: one key. Writer only.
    pub fn put(&self, r: &CodeRequest) -> Result<(), StoreError> {
        self.store
            .trees()
            .code_requests
            .insert(r.id.as_bytes(), encode(r)?)?;
        self.index().0.write().note(r);
        Ok(())
    }

    /// Stores a new pending request unless its customer has `max_pending` waiting already, or
    /// made `max_per_day` in the 24 hours before `now` (checked here, on the writer, so requests
    /// racing each other cannot pass the caps): `Err` names the cap reached. One key. Writer only.
    pub fn create(
        &self,
        r: &CodeRequest,
        max_pending: usize,
        max_per_day: usize,
        now: DateTime<Utc>,
    ) -> Result<Result<(), Capped>, StoreError> {
        {
            let state = self.index().0.read();
            let mine = state
                .by_customer
                .get(&r.customer)
                .map(Vec::as_slice)
                .unwrap_or_default();
            if mine.iter().filter(|id| state.pending.contains(id)).count() >= max_pending {
                return Ok(Err(Capped::Pending(max_pending)));
            }
            // Ids are time-ordered (UUIDv7): the latest are last.
            let since = (now - chrono::Duration::hours(24)).timestamp_millis();
            let today = mine
                .iter()
                .rev()
                .take_while(|id| made_at_ms(id) >= since)
                .count();
            if today >= max_per_day {
                return Ok(Err(Capped::Daily(max_per_day)));
            }
        }
        self.put(r)?;
        Ok(Ok(()))
    }

    /// How many requests each provider has in each status (memory only).
    pub fn counts(&self) -> BTreeMap<(String, RequestStatus), u64> {
        self.index().0.read().counts.clone()
    }

    /// The pending requests (at start, to resume them).
    pub fn pending(&self) -> Vec<Uuid> {
        self.index().0.read().pending.iter().copied().collect()
    }

    /// A customer's fulfilled requests, in the order they were made.
    pub fn fulfilled_for(&self, customer: Uuid) -> Result<Vec<CodeRequest>, StoreError> {
        let ids = self.index().0.read().by_customer.get(&customer).cloned();
        self.fulfilled(ids.unwrap_or_default())
    }

    /// The fulfilled requests made with `phone` (E.164), oldest first, whoever made them.
    pub fn fulfilled_for_phone(&self, phone: &str) -> Result<Vec<CodeRequest>, StoreError> {
        let ids = self.index().0.read().by_phone.get(phone).cloned();
        self.fulfilled(ids.unwrap_or_default())
    }

    /// Those of `ids` that are fulfilled, in that order (one read each).
    fn fulfilled(&self, ids: Vec<Uuid>) -> Result<Vec<CodeRequest>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.extend(
                self.get(id)?
                    .filter(|r| r.status == RequestStatus::Fulfilled),
            );
        }
        Ok(out)
    }

    /// Removes every request of `customer` (erasure: they hold a phone number); returns how many.
    /// Writer only.
    pub fn erase_customer(&self, customer: Uuid) -> Result<usize, StoreError> {
        let ids = self
            .index()
            .0
            .write()
            .by_customer
            .remove(&customer)
            .unwrap_or_default();
        let mut batch = sled::Batch::default();
        let mut erased = Vec::with_capacity(ids.len());
        for id in &ids {
            batch.remove(id.as_bytes());
            erased.extend(self.get(*id)?.map(|r| (r.provider, r.status)));
        }
        self.store.trees().code_requests.apply_batch(batch)?;
        let mut state = self.index().0.write();
        for id in &ids {
            state.pending.remove(id);
        }
        state.by_phone.retain(|_, list| {
            list.retain(|id| !ids.contains(id));
            !list.is_empty()
        });
        for (provider, status) in erased {
            state.uncount(&provider, status);
        }
        Ok(ids.len())
    }

    /// Gives a pending request its code, once: stored with, for an SMS request, its message in
    /// the outbox (one command: the code is stored before anything is sent). Writer only.
    pub fn fulfil(&self, id: Uuid, code: &str, now: DateTime<Utc>) -> Result<Settled, StoreError> {
        let mut r = self.get(id)?.ok_or(StoreError::NotFound)?;
        if r.status != RequestStatus::Pending {
            return Ok(Settled::Already(r));
        }
        r.status = RequestStatus::Fulfilled;
        r.code = Some(code.to_owned());
        r.fulfilled_at = Some(now);
        r.updated_at = now;
        r.error = None;
        let channel = match r.channel {
            RequestChannel::Web => None,
            RequestChannel::Sms => Some(Channel::Sms),
            RequestChannel::Push => Some(Channel::Push),
        };
        let messages: Vec<MessageRecord> = channel
            .map(|channel| {
                MessageRecord::new(
                    channel,
                    MessagePayload::Requested {
                        user_id: r.customer,
                        request_id: r.id,
                    },
                    None,
                    now,
                )
            })
            .into_iter()
            .collect();
        // The request and its message in one transaction: a crash between them would leave a
        // code the customer is never sent.
        let (record, outbox) = (encode(&r)?, Messages::encoded(&messages)?);
        let trees = self.store.trees();
        (&trees.code_requests, &trees.messages)
            .transaction(|(requests, m)| {
                requests.insert(&r.id.as_bytes()[..], record.as_slice())?;
                self.store
                    .between_keys()
                    .map_err(ConflictableTransactionError::Abort)?;
                for (k, v) in &outbox {
                    m.insert(k.as_slice(), v.as_slice())?;
                }
                Ok(())
            })
            .map_err(unwrap_transaction)?;
        self.index().0.write().note(&r);
        self.store.messages().index_enqueued(&messages);
        Ok(Settled::Now(r))
    }

    /// Marks a pending request failed, once. Writer only.
    pub fn fail(&self, id: Uuid, error: &str, now: DateTime<Utc>) -> Result<Settled, StoreError> {
        let mut r = self.get(id)?.ok_or(StoreError::NotFound)?;
        if r.status != RequestStatus::Pending {
            return Ok(Settled::Already(r));
        }
        r.status = RequestStatus::Failed;
        r.error = Some(error.to_owned());
        r.updated_at = now;
        self.put(&r)?;
        Ok(Settled::Now(r))
    }
}
