//! CampaignActor messages.

use std::sync::Arc;
use std::time::Instant;

use actix::{ActorFutureExt, AtomicResponse, Handler, Message, ResponseActFuture, WrapFuture};
use uuid::Uuid;

use super::CampaignActor;
use crate::domain::campaign::{Campaign, CodeRecord};
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
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<CodesError> for ClaimError {
    fn from(e: CodesError) -> Self {
        match e {
            CodesError::Taken(codes) => ClaimError::Taken(codes),
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

/// Store new codes (all or none) and add them to the pool; answered with how many.
#[derive(Debug, Message)]
#[rtype(result = "Result<usize, ClaimError>")]
pub struct AddCodes {
    pub codes: Vec<String>,
}

/// End the campaign now: no claim is served after this is answered.
#[derive(Debug, Message)]
#[rtype(result = "Result<Campaign, ClaimError>")]
pub struct EndCampaign;

/// Store a changed campaign (built by the caller from the current one); claims after the answer
/// see it.
#[derive(Debug, Message)]
#[rtype(result = "Result<Campaign, ClaimError>")]
pub struct UpdateCampaign(pub Campaign);

impl CampaignActor {
    fn touch(&mut self) {
        self.last_used = Instant::now();
    }
}

impl Handler<Claim> for CampaignActor {
    type Result = ResponseActFuture<Self, Result<CodeRecord, ClaimError>>;

    fn handle(&mut self, msg: Claim, _: &mut Self::Context) -> Self::Result {
        self.touch();
        let now = self.clock.now();
        let Some(state) = self.state.as_mut() else {
            return Box::pin(actix::fut::ready(Err(ClaimError::NotFound)));
        };
        let c = &state.campaign;
        let refused = if c.ended_at.is_some() || now >= c.ends_at {
            Some(ClaimError::NotActive("the campaign has ended"))
        } else if now < c.starts_at {
            Some(ClaimError::NotActive("the campaign has not started"))
        } else {
            let held = state.held.get(&msg.customer).copied().unwrap_or(0);
            (held >= c.per_customer_limit).then_some(ClaimError::LimitReached(c.per_customer_limit))
        };
        if let Some(e) = refused {
            return Box::pin(actix::fut::ready(Err(e)));
        }
        let Some(code) = state.pool.pop_front() else {
            metrics::counter!("voucherd_claims_total", "result" => "sold_out").increment(1);
            return Box::pin(actix::fut::ready(Err(ClaimError::SoldOut)));
        };
        *state.held.entry(msg.customer).or_default() += 1;
        let (store, customer) = (self.store.clone(), msg.customer);
        let taken = code.clone();
        Box::pin(
            async move {
                store
                    .write(move |s| s.codes().claim(&taken, customer, now))
                    .await
            }
            .into_actor(self)
            .map(move |written, act, _| match written {
                Ok(record) => {
                    metrics::counter!("voucherd_claims_total", "result" => "ok").increment(1);
                    Ok(record)
                }
                Err(e) => {
                    // Not handed out: the code goes back first in line, the count comes down.
                    if let Some(state) = act.state.as_mut() {
                        state.pool.push_front(code);
                        if let Some(n) = state.held.get_mut(&customer) {
                            *n = n.saturating_sub(1);
                        }
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
        let balance = state.campaign.gift_balance_cents;
        let codes = Arc::new(msg.codes);
        let written = codes.clone();
        Box::pin(
            async move {
                store
                    .write(move |s| Ok(s.codes().insert_new(id, &written, balance, now)))
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
        let mut ended = state.campaign.clone();
        if ended.ended_at.is_none() {
            ended.ended_at = Some(now);
            ended.updated_at = now;
        }
        self.replace(ended)
    }
}

impl Handler<UpdateCampaign> for CampaignActor {
    type Result = AtomicResponse<Self, Result<Campaign, ClaimError>>;

    fn handle(&mut self, msg: UpdateCampaign, _: &mut Self::Context) -> Self::Result {
        self.touch();
        if self.state.is_none() {
            return AtomicResponse::new(Box::pin(actix::fut::ready(Err(ClaimError::NotFound))));
        }
        self.replace(msg.0)
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
