//! CampaignActor messages.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use actix::{
    ActorFutureExt, AsyncContext, AtomicResponse, Handler, Message, ResponseActFuture,
    ResponseFuture, WrapFuture,
};
use uuid::Uuid;

use super::CampaignActor;
use crate::domain::ValidationError;
use crate::domain::campaign::{Campaign, CampaignPatch, CodeRecord, Order};
use crate::store::StoreError;
use crate::store::codes::CodesError;

/// Why a claim (or another change) was refused.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("no such campaign")]
    NotFound,
    #[error("{0}")]
    NotActive(&'static str),
    #[error("every code of this campaign is taken")]
    SoldOut,
    #[error("at most {0} codes per customer")]
    LimitReached(u32),
    #[error("codes already taken: {}", .0.join(", "))]
    Taken(Vec<String>),
    #[error("the pool holds {pool_size} codes and has room for {room} more")]
    Full { pool_size: u32, room: u64 },
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<CodesError> for ClaimError {
    fn from(e: CodesError) -> Self {
        match e {
            CodesError::Taken(codes) => ClaimError::Taken(codes),
            CodesError::Full { pool_size, room } => ClaimError::Full { pool_size, room },
            CodesError::Store(e) => ClaimError::Store(e),
        }
    }
}

/// Give `customer` one code: answered with the durable code record.
#[derive(Debug, Message)]
#[rtype(result = "Result<CodeRecord, ClaimError>")]
pub struct Claim {
    pub customer: Uuid,
}

/// Buy `quantity` codes for `customer`, all or nothing: answered with the durable order and its
/// codes.
#[derive(Debug, Message)]
#[rtype(result = "Result<(Order, Vec<CodeRecord>), ClaimError>")]
pub struct PlaceOrder {
    pub customer: Uuid,
    pub quantity: u32,
    pub phone: Option<String>,
}

/// Store new codes (all or none, never past the pool's size) and add them to the pool; answered
/// with how many.
#[derive(Debug, Message)]
#[rtype(result = "Result<usize, ClaimError>")]
pub struct AddCodes {
    pub codes: Vec<String>,
}

/// End the campaign now: no claim is served after this is answered.
#[derive(Debug, Message)]
#[rtype(result = "Result<Campaign, ClaimError>")]
pub struct EndCampaign;

/// Apply a change to the campaign as it is now (never to a copy read elsewhere, which an `end`
/// may have overtaken); claims after the answer see it.
#[derive(Debug, Message)]
#[rtype(result = "Result<Campaign, ClaimError>")]
pub struct UpdateCampaign(pub CampaignPatch);

impl CampaignActor {
    pub(super) fn touch(&mut self) {
        self.last_used = Instant::now();
    }
}

impl CampaignActor {
    /// Takes `n` codes from the pool for `customer`, or says why not (from memory alone).
    pub(super) fn reserve(&mut self, customer: Uuid, n: u32) -> Result<Vec<Arc<str>>, ClaimError> {
        let now = self.clock.now();
        let state = self.state.as_mut().ok_or(ClaimError::NotFound)?;
        let c = &state.campaign;
        if c.ended_at.is_some() || now >= c.ends_at {
            return Err(ClaimError::NotActive("the campaign has ended"));
        }
        if now < c.starts_at {
            return Err(ClaimError::NotActive("the campaign has not started"));
        }
        let held = state.held.get(&customer).copied().unwrap_or(0);
        if held.saturating_add(n) > c.per_customer_limit {
            metrics::counter!("voucherd_claims_total", "result" => "limit").increment(1);
            return Err(ClaimError::LimitReached(c.per_customer_limit));
        }
        if state.pool.len() < n as usize {
            metrics::counter!("voucherd_claims_total", "result" => "sold_out").increment(1);
            self.sold_out
                .store(state.pool.is_empty(), Ordering::Release);
            return Err(ClaimError::SoldOut);
        }
        *state.held.entry(customer).or_default() += n;
        Ok(state.pool.drain(..n as usize).collect())
    }

    /// Puts back codes whose write failed: first in line again, the customer's count down.
    pub(super) fn release(&mut self, customer: Uuid, codes: Vec<Arc<str>>) {
        self.sold_out.store(false, Ordering::Release);
        if let Some(state) = self.state.as_mut() {
            let n = codes.len() as u32;
            for code in codes.into_iter().rev() {
                state.pool.push_front(code);
            }
            if let Some(held) = state.held.get_mut(&customer) {
                *held = held.saturating_sub(n);
            }
        }
    }
}

/// The same failure for each claim of a group whose write failed as a whole.
fn same(e: &StoreError) -> StoreError {
    match e {
        StoreError::Overloaded => StoreError::Overloaded,
        StoreError::Closed => StoreError::Closed,
        StoreError::Flush(m) => StoreError::Flush(m.clone()),
        StoreError::Failed => StoreError::Failed,
        other => StoreError::Corrupt(other.to_string()),
    }
}

/// A reserved claim waiting for its group's write.
pub(super) struct Waiting {
    code: Arc<str>,
    customer: Uuid,
    answer: tokio::sync::oneshot::Sender<Result<CodeRecord, ClaimError>>,
}

impl Handler<Claim> for CampaignActor {
    type Result = ResponseFuture<Result<CodeRecord, ClaimError>>;

    /// Reserves a code, then the claim joins the next group: one writer command (one key per
    /// claim, one batch) per group, and a new group starts when the previous one is written. So
    /// claims cost the writer one command per group, not per claim, and the actor is not woken
    /// per claim by the writer.
    fn handle(&mut self, msg: Claim, ctx: &mut Self::Context) -> Self::Result {
        self.touch();
        let customer = msg.customer;
        let code = match self.reserve(customer, 1) {
            Ok(mut codes) => codes.remove(0),
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.waiting.push(Waiting {
            code,
            customer,
            answer,
        });
        if !self.writing {
            self.write_group(ctx);
        }
        Box::pin(async move {
            answered
                .await
                .unwrap_or(Err(ClaimError::Store(StoreError::Closed)))
        })
    }
}

impl CampaignActor {
    /// Sends the waiting claims to the writer as one command; answers each when it is durable
    /// (a claim whose write failed gets its code back into the pool).
    fn write_group(&mut self, ctx: &mut actix::Context<Self>) {
        let group = std::mem::take(&mut self.waiting);
        if group.is_empty() {
            self.writing = false;
            return;
        }
        self.writing = true;
        let (store, now) = (self.store.clone(), self.clock.now());
        let claims: Vec<(Arc<str>, Uuid)> =
            group.iter().map(|w| (w.code.clone(), w.customer)).collect();
        let fut = async move {
            store
                .write(move |s| s.codes().claim_each(&claims, now))
                .await
        }
        .into_actor(self)
        .map(move |written, act, ctx| {
            let results: Vec<Result<CodeRecord, StoreError>> = match written {
                Ok(each) => each,
                Err(e) => group.iter().map(|_| Err(same(&e))).collect(),
            };
            for (w, result) in group.into_iter().zip(results) {
                match result {
                    Ok(record) => {
                        metrics::counter!("voucherd_claims_total", "result" => "ok").increment(1);
                        let _ = w.answer.send(Ok(record));
                    }
                    Err(e) => {
                        if !e.may_have_applied() {
                            act.release(w.customer, vec![w.code]);
                        }
                        let _ = w.answer.send(Err(e.into()));
                    }
                }
            }
            act.write_group(ctx);
        });
        ctx.spawn(fut);
    }
}

impl Handler<PlaceOrder> for CampaignActor {
    type Result = ResponseActFuture<Self, Result<(Order, Vec<CodeRecord>), ClaimError>>;

    fn handle(&mut self, msg: PlaceOrder, _: &mut Self::Context) -> Self::Result {
        self.touch();
        let customer = msg.customer;
        let price = self
            .state
            .as_ref()
            .and_then(|s| s.campaign.price_cents)
            .unwrap_or(0);
        let codes = match self.reserve(customer, msg.quantity) {
            Ok(codes) => codes,
            Err(e) => return Box::pin(actix::fut::ready(Err(e))),
        };
        let now = self.clock.now();
        let order = Order {
            v: 1,
            id: crate::domain::v7_at(now),
            campaign_id: self.id,
            customer,
            codes: codes.iter().map(|c| c.to_string()).collect(),
            amount_cents: price.saturating_mul(i64::from(msg.quantity)),
            phone: msg.phone,
            created_at: now,
        };
        let store = self.store.clone();
        let (placed, taken) = (order.clone(), codes.clone());
        Box::pin(
            async move {
                store
                    .write(move |s| s.orders().place(&placed, &taken))
                    .await
            }
            .into_actor(self)
            .map(move |written, act, _| match written {
                Ok(records) => Ok((order, records)),
                Err(e) => {
                    if !e.may_have_applied() {
                        act.release(customer, codes);
                    }
                    Err(e.into())
                }
            }),
        )
    }
}

impl Handler<AddCodes> for CampaignActor {
    type Result = ResponseActFuture<Self, Result<usize, ClaimError>>;

    fn handle(&mut self, msg: AddCodes, _: &mut Self::Context) -> Self::Result {
        self.touch();
        let Some(state) = self.state.as_ref() else {
            return Box::pin(actix::fut::ready(Err(ClaimError::NotFound)));
        };
        let (store, id, now) = (self.store.clone(), self.id, self.clock.now());
        let (balance, pool_size) = (state.campaign.gift_balance_cents, state.campaign.pool_size);
        let codes = Arc::new(msg.codes);
        let written = codes.clone();
        Box::pin(
            async move {
                // The pool's room is checked by the writer, where additions are serialised.
                store
                    .write(move |s| Ok(s.codes().insert_new(id, &written, balance, pool_size, now)))
                    .await
            }
            .into_actor(self)
            .map(move |result, act, _| {
                result?.map_err(ClaimError::from)?;
                if let Some(state) = act.state.as_mut() {
                    state
                        .pool
                        .extend(codes.iter().map(|c| Arc::from(c.as_str())));
                }
                act.sold_out.store(false, Ordering::Release);
                Ok(codes.len())
            }),
        )
    }
}

impl Handler<EndCampaign> for CampaignActor {
    type Result = AtomicResponse<Self, Result<Campaign, ClaimError>>;

    fn handle(&mut self, _: EndCampaign, _: &mut Self::Context) -> Self::Result {
        self.touch();
        let now = self.clock.now();
        let Some(state) = self.state.as_ref() else {
            return AtomicResponse::new(Box::pin(actix::fut::ready(Err(ClaimError::NotFound))));
        };
        let ended = state.campaign.end(now);
        self.replace(ended)
    }
}

impl Handler<UpdateCampaign> for CampaignActor {
    type Result = AtomicResponse<Self, Result<Campaign, ClaimError>>;

    fn handle(&mut self, msg: UpdateCampaign, _: &mut Self::Context) -> Self::Result {
        self.touch();
        let now = self.clock.now();
        let changed = match self.state.as_ref() {
            None => Err(ClaimError::NotFound),
            Some(state) => state.campaign.apply(&msg.0, now).map_err(ClaimError::from),
        };
        match changed {
            Ok(campaign) => self.replace(campaign),
            Err(e) => AtomicResponse::new(Box::pin(actix::fut::ready(Err(e)))),
        }
    }
}

impl CampaignActor {
    /// Writes the campaign, then serves claims with it; nothing is handled in between.
    fn replace(
        &mut self,
        campaign: Campaign,
    ) -> AtomicResponse<Self, Result<Campaign, ClaimError>> {
        let store = self.store.clone();
        let stored = campaign.clone();
        AtomicResponse::new(Box::pin(
            async move { store.write(move |s| s.campaigns().put(&stored)).await }
                .into_actor(self)
                .map(move |written, act, _| {
                    written?;
                    if let Some(state) = act.state.as_mut() {
                        state.campaign = campaign.clone();
                    }
                    Ok(campaign)
                }),
        ))
    }
}
