//! CampaignActor messages.

use std::time::Instant;

use actix::{ActorFutureExt, AtomicResponse, Handler, Message, ResponseActFuture, WrapFuture};

use super::CampaignActor;
use crate::domain::ValidationError;
use crate::domain::campaign::{Campaign, CampaignPatch};
use crate::store::StoreError;
use crate::store::codes::{Atomic, CodesError};

/// Why a change to a campaign (an edit, an end, a pause, codes added, a distribution batch) was
/// refused.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error("no such campaign")]
    NotFound,
    #[error("codes already taken: {}", .0.join(", "))]
    Taken(Vec<String>),
    #[error("the pool holds {pool_size} codes and has room for {room} more")]
    Full { pool_size: u32, room: u64 },
    #[error("the campaign has ended; ending is final")]
    Ended,
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<CodesError> for CampaignError {
    fn from(e: CodesError) -> Self {
        match e {
            CodesError::Taken(codes) => CampaignError::Taken(codes),
            CodesError::Full { pool_size, room } => CampaignError::Full { pool_size, room },
            CodesError::Store(e) => CampaignError::Store(e),
        }
    }
}

/// Store new codes (all or none, never past the pool's size); answered with how many.
#[derive(Debug, Message)]
#[rtype(result = "Result<usize, CampaignError>")]
pub struct AddCodes {
    pub codes: Vec<String>,
    pub atomic: Atomic,
    /// For a shared campaign's codes: how often each may be used (`None`: unlimited).
    pub usage_limit: Option<u64>,
}

/// Pause (`true`) or resume (`false`) the campaign: nothing is handed out or redeemed while
/// it is paused. An ended campaign refuses both.
#[derive(Debug, Message)]
#[rtype(result = "Result<Campaign, CampaignError>")]
pub struct PauseCampaign(pub bool);

/// End the campaign now: no claim is served after this is answered.
#[derive(Debug, Message)]
#[rtype(result = "Result<Campaign, CampaignError>")]
pub struct EndCampaign;

/// Apply a change to the campaign as it is now (never to a copy read elsewhere, which an `end`
/// may have overtaken); claims after the answer see it.
#[derive(Debug, Message)]
#[rtype(result = "Result<Campaign, CampaignError>")]
pub struct UpdateCampaign(pub CampaignPatch);

impl CampaignActor {
    pub(super) fn touch(&mut self) {
        self.last_used = Instant::now();
    }
}

impl Handler<AddCodes> for CampaignActor {
    type Result = ResponseActFuture<Self, Result<usize, CampaignError>>;

    fn handle(&mut self, msg: AddCodes, _: &mut Self::Context) -> Self::Result {
        self.touch();
        let Some(state) = self.state.as_ref() else {
            return Box::pin(actix::fut::ready(Err(CampaignError::NotFound)));
        };
        let (store, id, now) = (self.store.clone(), self.id, self.clock.now());
        let (balance, pool_size) = (state.gift_balance_cents, state.pool_size);
        let shared = (state.promotion.code_mode == crate::domain::promotion::CodeMode::Shared)
            .then_some(msg.usage_limit);
        let (codes, atomic) = (msg.codes, msg.atomic);
        let n = codes.len();
        Box::pin(
            async move {
                // The pool's room is checked by the writer, where additions are serialised.
                store
                    .write(move |s| {
                        Ok(s.codes()
                            .insert_new(id, &codes, balance, pool_size, now, atomic, shared))
                    })
                    .await
            }
            .into_actor(self)
            .map(move |result, _, _| {
                result?.map_err(CampaignError::from)?;
                Ok(n)
            }),
        )
    }
}

impl Handler<EndCampaign> for CampaignActor {
    type Result = AtomicResponse<Self, Result<Campaign, CampaignError>>;

    fn handle(&mut self, _: EndCampaign, _: &mut Self::Context) -> Self::Result {
        self.touch();
        let now = self.clock.now();
        let Some(campaign) = self.state.as_ref() else {
            return AtomicResponse::new(Box::pin(actix::fut::ready(Err(CampaignError::NotFound))));
        };
        let ended = campaign.end(now);
        self.replace(ended)
    }
}

impl Handler<UpdateCampaign> for CampaignActor {
    type Result = AtomicResponse<Self, Result<Campaign, CampaignError>>;

    fn handle(&mut self, msg: UpdateCampaign, _: &mut Self::Context) -> Self::Result {
        self.touch();
        let now = self.clock.now();
        let changed = match self.state.as_ref() {
            None => Err(CampaignError::NotFound),
            Some(campaign) => campaign.apply(&msg.0, now).map_err(CampaignError::from),
        };
        match changed {
            Ok(campaign) => self.replace(campaign),
            Err(e) => AtomicResponse::new(Box::pin(actix::fut::ready(Err(e)))),
        }
    }
}

impl Handler<PauseCampaign> for CampaignActor {
    type Result = AtomicResponse<Self, Result<Campaign, CampaignError>>;

    fn handle(&mut self, msg: PauseCampaign, _: &mut Self::Context) -> Self::Result {
        self.touch();
        let now = self.clock.now();
        let changed = match self.state.as_ref() {
            None => Err(CampaignError::NotFound),
            Some(campaign) => campaign.pause(msg.0, now).ok_or(CampaignError::Ended),
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
    ) -> AtomicResponse<Self, Result<Campaign, CampaignError>> {
        let store = self.store.clone();
        let stored = campaign.clone();
        AtomicResponse::new(Box::pin(
            async move { store.write(move |s| s.campaigns().put(&stored)).await }
                .into_actor(self)
                .map(move |written, act, _| {
                    written?;
                    act.state = Some(campaign.clone());
                    Ok(campaign)
                }),
        ))
    }
}
