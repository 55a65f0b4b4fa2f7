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

use super::{Store, StoreError, Trees, decode, encode, unwrap_transaction};
use crate::domain::campaign::{
    self, Campaign, CodeRecord, NotRedeemable, Order, Redemption, Refusal,
};
use crate::domain::report::slot_of;

/// A campaign's standing redemptions.
#[derive(Debug, Clone, Default)]
pub struct RedemptionTally {
    pub discount_cents: i64,
    pub by_slot: BTreeMap<i64, u64>,
}

impl RedemptionTally {
    fn count(&mut self, r: &Redemption, sign: i64) {
        self.discount_cents += sign * r.discount_cents;
        let n = self.by_slot.entry(slot_of(r.created_at)).or_default();
        *n = if sign > 0 {
            *n + 1
        } else {
            n.saturating_sub(1)
        };
    }
}

#[derive(Default)]
pub(crate) struct RedemptionIndex(RwLock<HashMap<Uuid, RedemptionTally>>);

impl RedemptionIndex {
    pub(crate) fn load(trees: &Trees) -> Result<Self, StoreError> {
        let mut tallies: HashMap<Uuid, RedemptionTally> = HashMap::new();
        for v in trees.redemptions.iter().values() {
            let r: Redemption = decode(&v?)?;
            if r.rolled_back_at.is_none() {
                tallies.entry(r.campaign_id).or_default().count(&r, 1);
            }
        }
        Ok(Self(RwLock::new(tallies)))
    }
}

pub struct Orders<'a> {
    store: &'a Store,
}

/// Why a redemption or a rollback did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RedeemError {
    #[error("no such code")]
    UnknownCode,
    #[error("{0}")]
    NotRedeemable(#[from] NotRedeemable),
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

    fn tallies(&self) -> &RwLock<HashMap<Uuid, RedemptionTally>> {
        &self.store.indexes().redemptions.0
    }

    /// A campaign's standing redemptions (from memory).
    pub fn redemption_tally(&self, campaign: Uuid) -> RedemptionTally {
        self.tallies()
            .read()
            .get(&campaign)
            .cloned()
            .unwrap_or_default()
    }

    /// Stores an order and hands its codes to the customer, all or nothing (1 + N keys, one
    /// transaction). Writer only.
    /// Buys `quantity` codes of `campaign` for `customer`, all or nothing, if the campaign's rule
    /// allows it: the codes (rewritten, one key each) and the order (one key), in one
    /// transaction. Writer only.
    pub fn place(
        &self,
        campaign: &Campaign,
        customer: Uuid,
        quantity: u32,
        phone: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Result<(Order, Vec<CodeRecord>), Refusal>, StoreError> {
        let id = crate::domain::v7_at(now);
        let codes = self.store.codes();
        let records = match codes.take(campaign, customer, quantity, Some(id), now) {
            Ok(records) => records,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let order = Order {
            v: 1,
            id,
            campaign_id: campaign.id,
            customer,
            codes: records.iter().map(|r| r.code.clone()).collect(),
            amount_cents: campaign
                .price_cents
                .unwrap_or(0)
                .saturating_mul(i64::from(quantity)),
            phone,
            created_at: now,
        };
        codes.written(&records, || {
            let mut claimed = Vec::with_capacity(records.len());
            for r in &records {
                claimed.push((r.code.as_bytes().to_vec(), encode(r)?));
            }
            let placed = encode(&order)?;
            let trees = self.store.trees();
            (&trees.codes, &trees.orders)
                .transaction(|(codes, orders)| {
                    for (k, v) in &claimed {
                        codes.insert(k.as_slice(), v.as_slice())?;
                    }
                    self.store
                        .between_keys()
                        .map_err(ConflictableTransactionError::Abort)?;
                    orders.insert(order.id.as_bytes(), placed.as_slice())?;
                    Ok(())
                })
                .map_err(unwrap_transaction)
        })?;
        Ok(Ok((order, records)))
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
    /// nobody: the customer becomes `Uuid::nil()` (none, for a redemption) and the phone given
    /// at purchase goes. Reads every order and redemption (erasure is rare). Writer only.
    pub fn forget_customer(&self, customer: Uuid) -> Result<usize, StoreError> {
        let trees = self.store.trees();
        let mut orders = sled::Batch::default();
        let mut n = 0;
        for kv in trees.orders.iter() {
            let (k, v) = kv?;
            let mut o: Order = decode(&v)?;
            if o.customer == customer {
                o.customer = Uuid::nil();
                o.phone = None;
                orders.insert(k, encode(&o)?);
                n += 1;
            }
        }
        let mut redemptions = sled::Batch::default();
        for kv in trees.redemptions.iter() {
            let (k, v) = kv?;
            let mut r: Redemption = decode(&v)?;
            if r.customer == Some(customer) {
                r.customer = None;
                redemptions.insert(k, encode(&r)?);
                n += 1;
            }
        }
        trees.orders.apply_batch(orders)?;
        trees.redemptions.apply_batch(redemptions)?;
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

    /// Redeems a code (2 keys: the redemption, the code). Writer only.
    pub fn redeem(
        &self,
        code: &str,
        customer: Option<Uuid>,
        order_amount_cents: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<Redemption, RedeemError> {
        let codes = self.store.codes();
        let record = codes.get(code)?.ok_or(RedeemError::UnknownCode)?;
        let campaign = self
            .store
            .campaigns()
            .get(record.campaign_id)?
            .ok_or(RedeemError::UnknownCode)?;
        let before = record.status;
        let (after, redemption) = campaign::redeem(
            record,
            &campaign,
            customer,
            order_amount_cents,
            crate::domain::v7_at(now),
            now,
        )?;
        self.write_both(&redemption, &after)?;
        codes.index_changed(before, &after);
        self.tallies()
            .write()
            .entry(redemption.campaign_id)
            .or_default()
            .count(&redemption, 1);
        Ok(redemption)
    }

    /// Rolls a redemption back, once: the code is held again and a gift card gets back what was
    /// drawn (2 keys). Writer only.
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
        let codes = self.store.codes();
        let record = codes
            .get(&redemption.code)?
            .ok_or(RedeemError::UnknownCode)?;
        let before = record.status;
        let restored = campaign::roll_back(record, &redemption);
        redemption.rolled_back_at = Some(now);
        self.write_both(&redemption, &restored)?;
        codes.index_changed(before, &restored);
        self.tallies()
            .write()
            .entry(redemption.campaign_id)
            .or_default()
            .count(&redemption, -1);
        Ok(redemption)
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
