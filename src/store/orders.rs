//! Orders and redemptions: one key each (`orders` OrderId(16) → Order, `redemptions`
//! RedemptionId(16) → Redemption). An order writes its record and its codes in one command; a
//! redemption (or its rollback) writes its record and its code. Each of these writes its two
//! trees in one sled transaction, so it stands whole or not at all, after an error or a crash
//! (sled seals a transaction's writes in its log as one batch). The rules are the domain's
//! (`domain::campaign::redeem`); running them on the one writer is what makes a code redeemed
//! once and a gift balance never go below zero, whatever runs at the same time.
//!
//! In memory ([`RedemptionIndex`], rebuilt at open from the redemptions, changed only by the
//! writer): per campaign, the redemptions standing (not rolled back) per quarter hour and the
//! discount they gave, so a report reads no record.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use uuid::Uuid;

use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use super::campaigns::CampaignIndex;
use super::{Store, StoreError, Trees, decode, encode, unwrap_transaction};
use crate::domain::campaign::{
    Campaign, CodeRecord, CodeStatus, Order, OrderStatus, Redemption, Refusal,
};
use crate::domain::checkout::{self, CodeFacts, Usage};
use crate::domain::promotion::{
    Applied, Budget, Checkout, CodeMode, Customer, Per, Reason, period_of,
};
use crate::domain::report::slot_of;

/// A campaign's standing redemptions.
#[derive(Debug, Clone, Default)]
pub struct RedemptionTally {
    pub count: u64,
    pub discount_cents: i64,
    pub by_slot: BTreeMap<i64, u64>,
    /// Discount given per quarter hour (UTC slots).
    pub discount_by_slot: BTreeMap<i64, i64>,
}

impl RedemptionTally {
    fn count(&mut self, r: &Redemption, sign: i64) {
        self.discount_cents += sign * r.discount_cents;
        let slot = slot_of(r.created_at);
        *self.discount_by_slot.entry(slot).or_default() += sign * r.discount_cents;
        let n = self.by_slot.entry(slot).or_default();
        if sign > 0 {
            *n += 1;
            self.count += 1;
        } else {
            *n = n.saturating_sub(1);
            self.count = self.count.saturating_sub(1);
        }
    }
}

/// One budget's bucket: (campaign, which budget, period, customer when per customer).
type BucketKey = (Uuid, u8, i64, Option<Customer>);

/// What standing redemptions use, per campaign: counted from the redemption records (their
/// facts), so a redemption of a shared code writes one key.
#[derive(Default)]
struct RedemptionState {
    tallies: HashMap<Uuid, RedemptionTally>,
    /// A shared code's standing uses.
    shared_uses: HashMap<Box<str>, u64>,
    /// A customer's standing redemptions of a shared campaign.
    customer_uses: HashMap<(Uuid, Customer), u32>,
    /// What each budget's bucket holds.
    budgets: HashMap<BucketKey, i64>,
    /// Inapplicable validations per campaign and reason, since the process started (a
    /// validation writes nothing).
    reasons: HashMap<Uuid, HashMap<Reason, u64>>,
}

/// The bucket of `budget` (the `i`th of `campaign`) a redemption at `at` by `who` counts in;
/// `None` for a per-customer budget when nobody is named.
fn bucket(
    campaign: &Campaign,
    i: usize,
    budget: &Budget,
    at: DateTime<Utc>,
    who: Option<&Customer>,
) -> Option<BucketKey> {
    let customer = match budget.per {
        Per::Campaign => None,
        Per::Customer => Some(who?.clone()),
    };
    Some((
        campaign.id,
        i as u8,
        period_of(budget.period, at, campaign.timezone.0),
        customer,
    ))
}

impl RedemptionState {
    /// A standing redemption counted in (`sign` 1) or out (-1, a rollback: from the buckets of
    /// the period it was made in).
    fn count(&mut self, r: &Redemption, campaign: Option<&Campaign>, sign: i64) {
        self.tallies
            .entry(r.campaign_id)
            .or_default()
            .count(r, sign);
        let who = r.customer_key();
        if r.shared {
            let uses = self.shared_uses.entry(r.code.as_str().into()).or_default();
            *uses = uses.saturating_add_signed(sign);
            if let Some(who) = &who {
                let n = self
                    .customer_uses
                    .entry((r.campaign_id, who.clone()))
                    .or_default();
                *n = if sign > 0 {
                    *n + 1
                } else {
                    n.saturating_sub(1)
                };
            }
        }
        let Some(campaign) = campaign else {
            return;
        };
        for (i, budget) in campaign.promotion.budgets.iter().enumerate() {
            let cost = sign * budget.cost(r.discount_cents);
            if let Some(key) = bucket(campaign, i, budget, r.created_at, who.as_ref()) {
                // A per-customer budget also keeps its period's total over every customer under
                // the customer-less key (which only a per-campaign budget uses otherwise).
                if key.3.is_some() {
                    let all = (key.0, key.1, key.2, None);
                    *self.budgets.entry(all).or_default() += cost;
                }
                *self.budgets.entry(key).or_default() += cost;
            }
        }
    }

    /// What a redemption now by the person known by `keys` would find used: their uses and
    /// per-customer budgets summed over every key they were counted under (none: nobody's).
    fn usage(&self, campaign: &Campaign, keys: &[&Customer], now: DateTime<Utc>) -> Usage {
        let customer_uses = keys
            .iter()
            .filter_map(|w| self.customer_uses.get(&(campaign.id, (*w).clone())))
            .sum();
        let budgets_used = campaign
            .promotion
            .budgets
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let used = |who: Option<&Customer>| {
                    bucket(campaign, i, b, now, who)
                        .and_then(|k| self.budgets.get(&k))
                        .copied()
                        .unwrap_or(0)
                };
                match b.per {
                    Per::Campaign => used(None),
                    Per::Customer => keys.iter().map(|w| used(Some(w))).sum(),
                }
            })
            .collect();
        Usage {
            customer_uses,
            budgets_used,
        }
    }
}

pub(crate) struct RedemptionIndex(RwLock<RedemptionState>);

impl RedemptionIndex {
    pub(crate) fn load(trees: &Trees, campaigns: &CampaignIndex) -> Result<Self, StoreError> {
        let mut state = RedemptionState::default();
        for v in trees.redemptions.iter().values() {
            let r: Redemption = decode(&v?)?;
            if r.rolled_back_at.is_none() {
                let campaign = campaigns.get(r.campaign_id);
                state.count(&r, campaign.as_deref(), 1);
            }
        }
        Ok(Self(RwLock::new(state)))
    }
}

/// In memory, rebuilt from the orders at open: phone number → the orders placed with it (oldest
/// first), so `GET /wallet?phone=` finds what was bought under a number; and the orders waiting
/// for their payment, by deadline (what expires next) and per customer (how many each has).
#[derive(Default)]
pub(crate) struct OrderIndex(RwLock<OrderState>);

#[derive(Default)]
struct OrderState {
    by_phone: HashMap<String, Vec<Uuid>>,
    /// (deadline in µs, order) of every unpaid order.
    due: std::collections::BTreeSet<(i64, Uuid)>,
    /// Unpaid order → (its deadline in µs, its customer as placed).
    unpaid: HashMap<Uuid, (i64, Uuid)>,
    /// Unpaid orders per customer.
    unpaid_by_customer: HashMap<Uuid, u32>,
}

impl OrderState {
    fn add(&mut self, o: &Order) {
        if let Some(phone) = &o.phone {
            self.by_phone.entry(phone.clone()).or_default().push(o.id);
        }
        if o.status == OrderStatus::PendingPayment {
            let at = o.pay_by.map_or(i64::MIN, |t| t.timestamp_micros());
            self.due.insert((at, o.id));
            self.unpaid.insert(o.id, (at, o.customer));
            *self.unpaid_by_customer.entry(o.customer).or_default() += 1;
        }
    }

    /// An unpaid order was paid or expired.
    fn settled(&mut self, order: Uuid) {
        if let Some((at, customer)) = self.unpaid.remove(&order) {
            self.due.remove(&(at, order));
            if let Some(n) = self.unpaid_by_customer.get_mut(&customer) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.unpaid_by_customer.remove(&customer);
                }
            }
        }
    }
}

impl OrderIndex {
    pub(crate) fn load(trees: &Trees) -> Result<Self, StoreError> {
        let mut state = OrderState::default();
        for v in trees.orders.iter().values() {
            state.add(&decode(&v?)?);
        }
        Ok(Self(RwLock::new(state)))
    }
}

/// Why an order cannot be paid.
#[derive(Debug, thiserror::Error)]
pub enum PayError {
    #[error("no such order")]
    Unknown,
    #[error("the order was not paid in time: its codes went back to the campaign")]
    Expired,
    #[error("the campaign is paused: the order can be paid once it resumes, before its deadline")]
    Paused,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A budget's use now, for the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetUse {
    pub budget: Budget,
    /// In the current period (the campaign's total, for a per-customer budget: every customer).
    pub used: i64,
}

/// A code found for checkout: its record, its campaign, what the engine reads of it.
type Found = (CodeRecord, std::sync::Arc<Campaign>, CodeFacts);

/// A code of a cart as evaluated: what was found of it, and what it takes off or why not.
type Evaluated = (Option<Found>, Result<Applied, Reason>);

/// A redemption of a cart about to be written: the code's status before, the code after (a
/// unique code), the record, what it took off, its campaign.
type Made = (
    crate::domain::campaign::CodeStatus,
    Option<CodeRecord>,
    Redemption,
    Applied,
    std::sync::Arc<Campaign>,
);

/// One code of a validation: its campaign and its text as stored (unless it answers
/// `not_found`), and what it takes off or why not.
pub type Checked = (Option<(Uuid, String)>, Result<Applied, Reason>);

/// Who a checkout is for: the person it counts for (a user, or the shop's folded reference),
/// other keys that person's earlier uses may be counted under (a user's own address, used as a
/// reference before the account was theirs or confirmed), and the shop's reference as kept for
/// listings.
#[derive(Debug, Clone, Default)]
pub struct Buyer {
    pub person: Option<Customer>,
    pub also: Vec<Customer>,
    pub reference: Option<String>,
}

impl Buyer {
    /// The keys `who` is counted under: with the buyer's other keys when `who` is the buyer.
    fn keys<'a>(&'a self, who: Option<&'a Customer>) -> Vec<&'a Customer> {
        let mut keys: Vec<&Customer> = who.into_iter().collect();
        if who.is_some() && who == self.person.as_ref() {
            keys.extend(self.also.iter());
        }
        keys
    }
}

/// Which redemptions a listing shows.
#[derive(Debug, Clone, Default)]
pub struct RedemptionFilter {
    pub campaign: Option<Uuid>,
    /// Redeemed for this user.
    pub customer: Option<Uuid>,
    /// Redeemed for this shop reference.
    pub customer_ref: Option<String>,
    pub since: Option<DateTime<Utc>>,
}

/// Which orders a listing shows.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub campaign: Option<Uuid>,
    pub customer: Option<Uuid>,
    pub status: Option<OrderStatus>,
}

impl OrderFilter {
    fn admits(&self, o: &Order) -> bool {
        self.campaign.is_none_or(|c| c == o.campaign_id)
            && self.customer.is_none_or(|c| c == o.customer)
            && self.status.is_none_or(|s| s == o.status)
    }
}

/// Records a listing reads at most per page: a filter that matches little costs a bounded scan
/// (the page then ends early, with a cursor to go on).
pub const LIST_SCAN: usize = 10_000;

pub struct Orders<'a> {
    store: &'a Store,
}

/// Why a redemption or a rollback did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RedeemError {
    #[error("no such code")]
    UnknownCode,
    /// The customer named was erased while the request was on its way.
    #[error("no such customer")]
    UnknownCustomer,
    #[error("{}", .0.describe())]
    Inapplicable(Reason),
    #[error("no such redemption")]
    UnknownRedemption,
    #[error("the redemption was already rolled back")]
    RolledBack,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sled::Error> for RedeemError {
    fn from(e: sled::Error) -> Self {
        RedeemError::Store(e.into())
    }
}

impl<'a> Orders<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Self { store }
    }

    fn state(&self) -> &RwLock<RedemptionState> {
        &self.store.indexes().redemptions.0
    }

    /// A campaign's standing redemptions (from memory).
    pub fn redemption_tally(&self, campaign: Uuid) -> RedemptionTally {
        self.state()
            .read()
            .tallies
            .get(&campaign)
            .cloned()
            .unwrap_or_default()
    }

    /// Each budget of `campaign` and what its current period holds (per-customer budgets:
    /// summed over customers), from memory.
    pub fn budget_use(&self, campaign: &Campaign, now: DateTime<Utc>) -> Vec<BudgetUse> {
        let state = self.state().read();
        campaign
            .promotion
            .budgets
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let period = period_of(b.period, now, campaign.timezone.0);
                // Per customer: the total over every customer, kept beside their buckets.
                let used = state
                    .budgets
                    .get(&(campaign.id, i as u8, period, None))
                    .copied()
                    .unwrap_or(0);
                BudgetUse { budget: *b, used }
            })
            .collect()
    }

    /// Counts inapplicable validations of a campaign by reason (memory only).
    pub fn count_reasons(&self, counted: &[(Uuid, Reason)]) {
        if counted.is_empty() {
            return;
        }
        let mut state = self.state().write();
        for (campaign, reason) in counted {
            // Bounded: campaigns × the fixed list of reasons.
            *state
                .reasons
                .entry(*campaign)
                .or_default()
                .entry(*reason)
                .or_default() += 1;
        }
    }

    /// A campaign's inapplicable validations by reason since start, most frequent first.
    pub fn top_reasons(&self, campaign: Uuid) -> Vec<(Reason, u64)> {
        let mut out: Vec<(Reason, u64)> = self
            .state()
            .read()
            .reasons
            .get(&campaign)
            .map(|m| m.iter().map(|(r, n)| (*r, *n)).collect())
            .unwrap_or_default();
        out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.as_str().cmp(b.0.as_str())));
        out
    }

    /// What the engine knows of a code, or why it is not found: its record (the code typed in
    /// any case of its ASCII letters), its campaign, the facts the rules read. From memory and
    /// one read of the code.
    fn facts(&self, code: &str) -> Result<Result<Found, Reason>, StoreError> {
        let Some(record) = self.store.codes().get(code)? else {
            return Ok(Err(Reason::NotFound));
        };
        let Some(campaign) = self.store.campaigns().shared(record.campaign_id) else {
            return Ok(Err(Reason::NotFound));
        };
        let flags = self.store.codes().flags(&record.code).unwrap_or_default();
        let shared =
            (flags.shared || campaign.promotion.code_mode == CodeMode::Shared).then(|| {
                let uses = self
                    .state()
                    .read()
                    .shared_uses
                    .get(record.code.as_str())
                    .copied()
                    .unwrap_or(0);
                (uses, flags.usage_limit)
            });
        let holder_tz = match (record.holder, campaign.promotion.expire_at_local_end_of_day) {
            (Some(holder), true) => self.store.users().get(holder)?.map(|u| u.timezone.0),
            _ => None,
        };
        let facts = CodeFacts {
            status: record.status,
            holder: record.holder,
            claimed_at: record.claimed_at,
            balance_cents: record.balance_cents,
            disabled: flags.disabled,
            shared,
            holder_tz,
        };
        Ok(Ok((record, campaign, facts)))
    }

    /// The cart's codes found, in the request's order, and what the engine says of each: one
    /// after another, each against what the earlier ones left of the order and with the
    /// counters as they stand plus what the earlier ones use ([`checkout::evaluate_cart`]).
    fn evaluated(
        &self,
        codes: &[String],
        buyer: &Buyer,
        order: &Checkout,
        now: DateTime<Utc>,
    ) -> Result<Vec<Evaluated>, StoreError> {
        let customer = buyer.person.as_ref();
        let found: Vec<Result<Found, Reason>> = codes
            .iter()
            .map(|c| self.facts(c))
            .collect::<Result<_, _>>()?;
        let cart: Vec<checkout::CartCode<'_>> = found
            .iter()
            .filter_map(|f| f.as_ref().ok())
            .map(|(record, campaign, facts)| checkout::CartCode {
                code: &record.code,
                campaign,
                facts: facts.clone(),
            })
            .collect();
        let state = self.state().read();
        let mut results = checkout::evaluate_cart(
            &cart,
            customer,
            |campaign, who| state.usage(campaign, &buyer.keys(who), now),
            order,
            now,
        )
        .into_iter();
        drop(state);
        Ok(found
            .into_iter()
            .map(|f| match f {
                Ok(found) => {
                    let result = results.next().unwrap_or(Err(Reason::NotFound));
                    (Some(found), result)
                }
                Err(reason) => (None, Err(reason)),
            })
            .collect())
    }

    /// What `codes` would take off `order` now, one after another (each from what the ones
    /// before left, with the counters the ones before would use), for `customer`: writes
    /// nothing. Any thread.
    pub fn validate(
        &self,
        codes: &[String],
        buyer: &Buyer,
        order: &Checkout,
        now: DateTime<Utc>,
    ) -> Result<Vec<Checked>, StoreError> {
        Ok(self
            .evaluated(codes, buyer, order, now)?
            .into_iter()
            .map(|(found, result)| {
                // Someone else's code is not found: neither its campaign nor its spelling as
                // stored is told.
                let known = found
                    .filter(|_| result != Err(Reason::NotFound))
                    .map(|(record, c, _)| (c.id, record.code));
                (known, result)
            })
            .collect())
    }

    /// Buys `quantity` codes of `campaign` for `customer`, all or nothing, if the campaign's rule
    /// allows it: the codes (rewritten, one key each) and the order (one key), in one
    /// transaction. Paid (`pay_by` `None`), the codes are the customer's at once; unpaid, they
    /// are held for the order (reserved: counted against the customer's limit, shown to
    /// nobody) until it is paid or `pay_by` passes. Writer only.
    pub fn place(
        &self,
        campaign: &Campaign,
        customer: Uuid,
        quantity: u32,
        phone: Option<String>,
        pay_by: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Result<(Order, Vec<CodeRecord>), Refusal>, StoreError> {
        let id = crate::domain::v7_at(now);
        let codes = self.store.codes();
        let taken_as = if pay_by.is_some() {
            CodeStatus::Reserved
        } else {
            CodeStatus::Claimed
        };
        let records = match codes.take(campaign, customer, quantity, Some(id), taken_as, now) {
            Ok(records) => records,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let order = Order {
            v: Order::VERSION,
            id,
            campaign_id: campaign.id,
            customer,
            codes: records.iter().map(|r| r.code.clone()).collect(),
            amount_cents: campaign.price().saturating_mul(i64::from(quantity)),
            phone,
            created_at: now,
            status: if pay_by.is_some() {
                OrderStatus::PendingPayment
            } else {
                OrderStatus::Paid
            },
            pay_by,
            paid_at: pay_by.is_none().then_some(now),
            payment_ref: None,
            expired_at: None,
        };
        codes.written(&records, || self.write_with_codes(&order, &records))?;
        self.index().write().add(&order);
        Ok(Ok((order, records)))
    }

    fn index(&self) -> &RwLock<OrderState> {
        &self.store.indexes().orders.0
    }

    /// Unpaid orders `customer` has now (memory).
    pub fn unpaid_of(&self, customer: Uuid) -> u32 {
        self.index()
            .read()
            .unpaid_by_customer
            .get(&customer)
            .copied()
            .unwrap_or(0)
    }

    /// The earliest deadline of an unpaid order (memory).
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        let (at, _) = *self.index().read().due.first()?;
        DateTime::from_timestamp_micros(at)
    }

    /// An order and the codes it changes, in one transaction (1 + N keys).
    fn write_with_codes(&self, order: &Order, records: &[CodeRecord]) -> Result<(), StoreError> {
        let mut coded = Vec::with_capacity(records.len());
        for r in records {
            coded.push((r.code.as_bytes().to_vec(), encode(r)?));
        }
        let placed = encode(order)?;
        let trees = self.store.trees();
        (&trees.codes, &trees.orders)
            .transaction(|(codes, orders)| {
                for (k, v) in &coded {
                    codes.insert(k.as_slice(), v.as_slice())?;
                }
                self.store
                    .between_keys()
                    .map_err(ConflictableTransactionError::Abort)?;
                orders.insert(order.id.as_bytes(), placed.as_slice())?;
                Ok(())
            })
            .map_err(unwrap_transaction)
    }

    /// The codes an unpaid order holds, as stored (those still reserved for it).
    fn reserved_for(&self, order: &Order) -> Result<Vec<CodeRecord>, StoreError> {
        let mut out = Vec::with_capacity(order.codes.len());
        for code in &order.codes {
            if let Some(r) = self.store.codes().get(code)?
                && r.status == CodeStatus::Reserved
                && r.order_id == Some(order.id)
            {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Confirms an order's payment: its codes become the customer's (claimed now), once. Paying
    /// a paid order changes nothing (the order as it is); an order whose deadline passed is
    /// expired here if it was not yet (its codes go back) and refused. 1 + N keys, one
    /// transaction. Writer only.
    pub fn pay(
        &self,
        id: Uuid,
        payment_ref: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(Order, Vec<CodeRecord>), PayError> {
        let mut order = self.get(id)?.ok_or(PayError::Unknown)?;
        // Nothing leaves a campaign that ended (the order lapses: its codes could not be used),
        // nor one paused (the order waits for its resumption, until its deadline).
        if order.status == OrderStatus::PendingPayment
            && let Some(campaign) = self.store.campaigns().shared(order.campaign_id)
        {
            if campaign.ended_at.is_some_and(|e| e <= now) || now >= campaign.ends_at {
                self.expire(order, now)?;
                return Err(PayError::Expired);
            }
            if campaign.promotion.paused_at.is_some() {
                return Err(PayError::Paused);
            }
        }
        match order.status {
            OrderStatus::Paid => {
                let codes = self.codes_of(&order)?;
                return Ok((order, codes));
            }
            OrderStatus::Expired => return Err(PayError::Expired),
            OrderStatus::PendingPayment if order.is_lapsed(now) => {
                self.expire(order, now)?;
                return Err(PayError::Expired);
            }
            OrderStatus::PendingPayment => {}
        }
        let reserved = self.reserved_for(&order)?;
        let claimed: Vec<CodeRecord> = reserved
            .iter()
            .map(|r| CodeRecord {
                status: CodeStatus::Claimed,
                claimed_at: Some(now),
                ..r.clone()
            })
            .collect();
        order.status = OrderStatus::Paid;
        order.paid_at = Some(now);
        order.payment_ref = payment_ref;
        self.write_with_codes(&order, &claimed)?;
        for r in &claimed {
            self.store.codes().index_changed(CodeStatus::Reserved, r);
        }
        self.index().write().settled(order.id);
        Ok((order, claimed))
    }

    /// Expires an unpaid order: its codes go back to the campaign, available again, first in
    /// line; the order says when. 1 + N keys, one transaction. Writer only.
    fn expire(&self, mut order: Order, now: DateTime<Utc>) -> Result<Order, StoreError> {
        let reserved = self.reserved_for(&order)?;
        let freed: Vec<CodeRecord> = reserved
            .iter()
            .map(|r| CodeRecord {
                status: CodeStatus::Available,
                holder: None,
                claimed_at: None,
                order_id: None,
                ..r.clone()
            })
            .collect();
        order.status = OrderStatus::Expired;
        order.expired_at = Some(now);
        self.write_with_codes(&order, &freed)?;
        self.store.codes().give_back(&reserved);
        self.index().write().settled(order.id);
        Ok(order)
    }

    /// Expires up to `limit` unpaid orders whose deadline is past, oldest deadline first: the
    /// orders expired. Writer only (each once: a paid or expired order is no longer due).
    pub fn expire_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Order>, StoreError> {
        let due: Vec<Uuid> = self
            .index()
            .read()
            .due
            .iter()
            .take_while(|(at, _)| *at <= now.timestamp_micros())
            .take(limit)
            .map(|(_, id)| *id)
            .collect();
        let mut out = Vec::with_capacity(due.len());
        for id in due {
            match self.get(id)? {
                Some(o) if o.status == OrderStatus::PendingPayment => {
                    out.push(self.expire(o, now)?)
                }
                // Gone or settled meanwhile: no longer due.
                _ => self.index().write().settled(id),
            }
        }
        Ok(out)
    }

    /// The codes an order holds, as they stand: reserved while it is unpaid, the customer's once
    /// paid; none once it expired (they went back, and may be someone else's since).
    pub fn codes_of(&self, order: &Order) -> Result<Vec<CodeRecord>, StoreError> {
        let mut out = Vec::with_capacity(order.codes.len());
        for code in &order.codes {
            if let Some(r) = self.store.codes().get(code)?
                && r.order_id == Some(order.id)
            {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// The orders placed with `phone`, oldest first.
    pub fn by_phone(&self, phone: &str) -> Result<Vec<Order>, StoreError> {
        let ids = self
            .index()
            .read()
            .by_phone
            .get(phone)
            .cloned()
            .unwrap_or_default();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.extend(self.get(id)?);
        }
        Ok(out)
    }

    pub fn get(&self, id: Uuid) -> Result<Option<Order>, StoreError> {
        self.store
            .trees()
            .orders
            .get(id.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Erasure: `customer`'s orders and redemptions stay (what was sold and redeemed) but name
    /// nobody: the customer becomes `Uuid::nil()` (none, for a redemption), the phone given at
    /// purchase goes, and so does a shop's reference on their redemptions and any reference
    /// that is their address (guest redemptions under it; `+tags` folded). What they used then
    /// counts for nobody's per-customer limits and budgets (in memory as after a restart).
    /// Reads every order and redemption (erasure is rare). Writer only.
    pub fn forget_customer(
        &self,
        customer: Uuid,
        email: &crate::domain::user::Email,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        // Their unpaid orders are cancelled first: the codes go back, nothing is left to pay
        // for nobody (a code claimed for the nil customer would be anyone's).
        let unpaid: Vec<Uuid> = self
            .index()
            .read()
            .unpaid
            .iter()
            .filter(|(_, (_, c))| *c == customer)
            .map(|(id, _)| *id)
            .collect();
        for id in unpaid {
            if let Some(o) = self.get(id)?
                && o.status == OrderStatus::PendingPayment
            {
                self.expire(o, now)?;
            }
        }
        let trees = self.store.trees();
        let mut orders = sled::Batch::default();
        let mut n = 0;
        let mut unphoned = Vec::new();
        for kv in trees.orders.iter() {
            let (k, v) = kv?;
            let mut o: Order = decode(&v)?;
            if o.customer == customer {
                if let Some(phone) = &o.phone {
                    unphoned.push((phone.clone(), o.id));
                }
                o.customer = Uuid::nil();
                o.phone = None;
                orders.insert(k, encode(&o)?);
                n += 1;
            }
        }
        let person = email.person(true);
        let names_them = |r: &Redemption| {
            r.customer == Some(customer)
                || r.customer_ref.as_deref().is_some_and(|given| {
                    crate::domain::user::Email::parse(given).is_ok_and(|e| e.person(true) == person)
                })
        };
        let mut redemptions = sled::Batch::default();
        let mut moved = Vec::new();
        for kv in trees.redemptions.iter() {
            let (k, v) = kv?;
            let mut r: Redemption = decode(&v)?;
            if names_them(&r) {
                let before = r.clone();
                r.customer = None;
                r.customer_ref = None;
                redemptions.insert(k, encode(&r)?);
                n += 1;
                if r.rolled_back_at.is_none() {
                    moved.push((before, r));
                }
            }
        }
        trees.orders.apply_batch(orders)?;
        trees.redemptions.apply_batch(redemptions)?;
        {
            let campaigns = self.store.campaigns();
            let mut state = self.store.indexes().redemptions.0.write();
            for (before, after) in &moved {
                let campaign = campaigns.shared(before.campaign_id);
                state.count(before, campaign.as_deref(), -1);
                state.count(after, campaign.as_deref(), 1);
            }
        }
        let mut index = self.index().write();
        for (phone, id) in unphoned {
            if let Some(list) = index.by_phone.get_mut(&phone) {
                list.retain(|o| *o != id);
                if list.is_empty() {
                    index.by_phone.remove(&phone);
                }
            }
        }
        Ok(n)
    }

    pub fn redemption(&self, id: Uuid) -> Result<Option<Redemption>, StoreError> {
        self.store
            .trees()
            .redemptions
            .get(id.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Redeems a cart's codes against an order, all or none, if the engine says each applies
    /// with the counters as they stand on the writer plus what the cart's earlier codes use (so
    /// the last use, the last budget cent and a customer's last allowed redemption go once,
    /// within a cart too). Each shared code writes its redemption (1 key: its uses are its
    /// redemptions), each unique code its redemption and itself (2 keys), all in one
    /// transaction. `reference` is the shop's own reference of the buyer, as given. Also says
    /// whether a campaign-wide budget reached 90 % with it. Writer only.
    pub fn redeem(
        &self,
        codes: &[String],
        buyer: &Buyer,
        order: &Checkout,
        now: DateTime<Utc>,
    ) -> Result<(Vec<(Redemption, Applied)>, bool), RedeemError> {
        let (customer, reference) = (buyer.person.as_ref(), buyer.reference.as_deref());
        // Who the checkout named was looked up before this command: an erasure decided since
        // leaves nobody to count for, and nothing is written naming them.
        if let Some(Customer::User(user)) = customer
            && self.store.users().role(*user).is_none()
        {
            return Err(RedeemError::UnknownCustomer);
        }
        let mut made = Vec::with_capacity(codes.len());
        for (found, result) in self.evaluated(codes, buyer, order, now)? {
            let applied = result.map_err(|r| match r {
                Reason::NotFound => RedeemError::UnknownCode,
                r => RedeemError::Inapplicable(r),
            })?;
            let (record, campaign, facts) = found.ok_or(RedeemError::UnknownCode)?;
            let (after, redemption) = checkout::redeemed(
                &record,
                &campaign,
                &applied,
                customer,
                reference,
                facts.shared.is_some(),
                order,
                crate::domain::v7_at(now),
                now,
            );
            made.push((record.status, after, redemption, applied, campaign));
        }
        self.write_all(&made)?;
        let mut crossed = false;
        let mut state = self.state().write();
        for (before, after, redemption, applied, campaign) in &made {
            if let Some(after) = after {
                self.store.codes().index_changed(*before, after);
            }
            // Whether a campaign-wide budget crossed 90 % with it (the notifier is told at once).
            let who = redemption.customer_key();
            let used = state.usage(campaign, &buyer.keys(who.as_ref()), now);
            crossed |= campaign
                .promotion
                .budgets
                .iter()
                .zip(&used.budgets_used)
                .any(|(b, before)| {
                    let after = before + b.cost(applied.discount_cents);
                    b.per == Per::Campaign
                        && before.saturating_mul(10) < b.limit * 9
                        && after.saturating_mul(10) >= b.limit * 9
                });
            state.count(redemption, Some(campaign), 1);
        }
        Ok((
            made.into_iter()
                .map(|(_, _, redemption, applied, _)| (redemption, applied))
                .collect(),
            crossed,
        ))
    }

    /// Rolls a redemption back, once: a unique code is held again and a gift card gets back what
    /// was drawn (2 keys); a shared code's use, the customer's count and the budgets it used
    /// (in the period it was made in) are given back (1 key). Writer only.
    pub fn roll_back(&self, id: Uuid, now: DateTime<Utc>) -> Result<Redemption, RedeemError> {
        let tree = &self.store.trees().redemptions;
        let mut redemption: Redemption = tree
            .get(id.as_bytes())?
            .map(|v| decode(&v))
            .transpose()?
            .ok_or(RedeemError::UnknownRedemption)?;
        if redemption.rolled_back_at.is_some() {
            return Err(RedeemError::RolledBack);
        }
        redemption.rolled_back_at = Some(now);
        if redemption.shared {
            tree.insert(redemption.id.as_bytes(), encode(&redemption)?)?;
        } else {
            let codes = self.store.codes();
            let record = codes
                .get(&redemption.code)?
                .ok_or(RedeemError::UnknownCode)?;
            let before = record.status;
            let restored = checkout::roll_back(record, &redemption);
            self.write_both(&redemption, &restored)?;
            codes.index_changed(before, &restored);
        }
        let campaign = self.store.campaigns().shared(redemption.campaign_id);
        self.state()
            .write()
            .count(&redemption, campaign.as_deref(), -1);
        Ok(redemption)
    }

    /// Orders newest first, from before `before` (a cursor: the last id of the previous page),
    /// those `filter` admits, at most `limit`. The unpaid ones come from memory (a few at any
    /// time); any other listing reads at most [`LIST_SCAN`] records a page and returns the
    /// cursor to go on from when there may be more.
    pub fn list(
        &self,
        filter: &OrderFilter,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<(Vec<Order>, Option<Uuid>), StoreError> {
        if filter.status == Some(OrderStatus::PendingPayment) {
            let mut ids: Vec<Uuid> = {
                let index = self.index().read();
                index
                    .unpaid
                    .iter()
                    .filter(|(id, (_, customer))| {
                        before.is_none_or(|b| **id < b)
                            && filter.customer.is_none_or(|c| c == *customer)
                    })
                    .map(|(id, _)| *id)
                    .collect()
            };
            ids.sort_unstable_by(|a, b| b.cmp(a));
            let mut out = Vec::new();
            for id in ids {
                if let Some(o) = self.get(id)?
                    && filter.admits(&o)
                {
                    out.push(o);
                    if out.len() == limit {
                        let last = out.last().map(|o| o.id);
                        return Ok((out, last));
                    }
                }
            }
            return Ok((out, None));
        }
        let tree = &self.store.trees().orders;
        let range = match before {
            Some(b) => tree.range(..b.as_bytes().to_vec()),
            None => tree.range::<Vec<u8>, _>(..),
        };
        let mut out = Vec::new();
        for (read, kv) in range.rev().enumerate() {
            let (k, v) = kv?;
            let o: Order = decode(&v)?;
            let last = Uuid::from_slice(&k).ok();
            if filter.admits(&o) {
                out.push(o);
                if out.len() == limit {
                    return Ok((out, last));
                }
            }
            if read + 1 >= LIST_SCAN {
                return Ok((out, last));
            }
        }
        Ok((out, None))
    }

    /// Redemptions newest first, from before `before` (a cursor: the last id of the previous
    /// page), those `filter` admits, at most `limit`; reads at most [`LIST_SCAN`] records, and
    /// returns the cursor to go on from when there may be more.
    pub fn list_redemptions(
        &self,
        filter: &RedemptionFilter,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<(Vec<Redemption>, Option<Uuid>), StoreError> {
        let tree = &self.store.trees().redemptions;
        let range = match before {
            Some(b) => tree.range(..b.as_bytes().to_vec()),
            None => tree.range::<Vec<u8>, _>(..),
        };
        // Ids are v7: key order is time order, so newest first is the tree backwards, and
        // `since` ends the scan.
        let mut out = Vec::new();
        let mut last;
        for (read, kv) in range.rev().enumerate() {
            let (k, v) = kv?;
            let r: Redemption = decode(&v)?;
            if filter.since.is_some_and(|s| r.created_at < s) {
                return Ok((out, None));
            }
            last = Uuid::from_slice(&k).ok();
            let admitted = filter.campaign.is_none_or(|c| c == r.campaign_id)
                && filter.customer.is_none_or(|c| r.customer == Some(c))
                && filter
                    .customer_ref
                    .as_ref()
                    .is_none_or(|c| r.customer_ref.as_ref() == Some(c));
            if admitted {
                out.push(r);
                if out.len() == limit {
                    return Ok((out, last));
                }
            }
            if read + 1 >= LIST_SCAN {
                return Ok((out, last));
            }
        }
        Ok((out, None))
    }

    /// A cart's redemptions and the unique codes they used up, in one transaction.
    fn write_all(&self, made: &[Made]) -> Result<(), StoreError> {
        let mut records = Vec::with_capacity(made.len());
        let mut codes = Vec::new();
        for (_, after, redemption, _, _) in made {
            records.push((redemption.id, encode(redemption)?));
            if let Some(after) = after {
                codes.push((after.code.as_bytes().to_vec(), encode(after)?));
            }
        }
        let trees = self.store.trees();
        (&trees.redemptions, &trees.codes)
            .transaction(|(redemptions, code_tree)| {
                for (id, r) in &records {
                    redemptions.insert(id.as_bytes(), r.as_slice())?;
                }
                if !codes.is_empty() {
                    self.store
                        .between_keys()
                        .map_err(ConflictableTransactionError::Abort)?;
                }
                for (k, c) in &codes {
                    code_tree.insert(k.as_slice(), c.as_slice())?;
                }
                Ok(())
            })
            .map_err(unwrap_transaction)
    }

    /// A redemption's record and its code, in one transaction.
    fn write_both(&self, redemption: &Redemption, code: &CodeRecord) -> Result<(), StoreError> {
        let (r, c) = (encode(redemption)?, encode(code)?);
        let trees = self.store.trees();
        (&trees.redemptions, &trees.codes)
            .transaction(|(redemptions, codes)| {
                redemptions.insert(redemption.id.as_bytes(), r.as_slice())?;
                self.store
                    .between_keys()
                    .map_err(ConflictableTransactionError::Abort)?;
                codes.insert(code.code.as_bytes(), c.as_slice())?;
                Ok(())
            })
            .map_err(unwrap_transaction)
    }
}
