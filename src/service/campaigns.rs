//! Campaigns and their codes: create, change, end, add codes, claim. A campaign's state is
//! decided by its CampaignActor: a change is sent there as a patch and applied to the campaign as
//! the actor holds it (so a change racing an `end` can never reopen it), codes are added through
//! it and their number is checked against the pool by the store's writer (so additions racing
//! each other can never overfill it), and claims are served from its pool.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use uuid::Uuid;

use super::{Error, Services};
use crate::actors::campaign::{
    AddCodes, CampaignError, EndCampaign, PauseCampaign, UpdateCampaign,
};
use crate::actors::messages::Wake;
use crate::domain::campaign::{
    Campaign, CampaignPatch, CampaignSpec, CodeFlags, CodeRecord, CodeSpec, Refusal, check_code,
};
use crate::domain::promotion::CodeMode;
use crate::store::StoreError;
use crate::store::codes::Atomic;

/// Codes one request may generate or import.
pub const MAX_CODES_PER_REQUEST: u32 = 1_000_000;
/// Codes written per store command when adding many: bounds the memory a large addition holds
/// and how long it keeps the writer from claims.
pub const CODES_PER_WRITE: usize = 20_000;

/// Stores a new campaign (a draft until it has codes): one key.
pub async fn create(svc: &Services, spec: CampaignSpec) -> Result<Campaign, Error> {
    let now = svc.clock.now();
    let campaign = Campaign::new(spec, crate::domain::v7_at(now), now)?;
    let stored = campaign.clone();
    svc.store.write(move |s| s.campaigns().put(&stored)).await?;
    Ok(campaign)
}

/// The campaign as stored (a memory read).
pub fn get(svc: &Services, id: Uuid) -> Result<Campaign, Error> {
    svc.store.campaigns().get(id)?.ok_or(Error::NotFound)
}

/// Changes a campaign's name, window or per-customer limit; claims after the answer follow it.
pub async fn update(svc: &Services, id: Uuid, patch: CampaignPatch) -> Result<Campaign, Error> {
    get(svc, id)?;
    Ok(svc
        .actors
        .campaigns
        .get(id)
        .send(UpdateCampaign(patch))
        .await??)
}

/// Ends a campaign now, for good: its remaining codes can no longer be claimed.
pub async fn end(svc: &Services, id: Uuid) -> Result<Campaign, Error> {
    get(svc, id)?;
    let campaign = svc.actors.campaigns.get(id).send(EndCampaign).await??;
    // Admins hear of it now rather than at the notifier's next look (a full mailbox: then).
    let _ = svc.actors.notifier.try_send(Wake);
    Ok(campaign)
}

/// Codes to add to a campaign.
#[derive(Debug)]
pub enum NewCodes {
    /// This many, from the campaign's pattern.
    Generate(u32),
    /// These, as given (a JSON list: at most 20,000, written all or none).
    Import(Vec<String>),
    /// These, from a CSV file (at most 1,000,000): all checked first, then written 20,000 at a
    /// time, so a failure part-way (a code taken meanwhile, the store) leaves earlier parts.
    ImportFile(Vec<String>),
}

/// Generates or imports codes (unique across the store, never past the pool's size); returns
/// how many were added. 409 when the pool has no room for them or an imported code is taken.
pub async fn add_codes(
    svc: &Services,
    id: Uuid,
    new: NewCodes,
    usage_limit: Option<u64>,
) -> Result<usize, Error> {
    let campaign = get(svc, id)?;
    // What the campaign is now decides these (409), not the request's shape.
    if campaign.ended_at.is_some() || svc.clock.now() >= campaign.ends_at {
        return Err(Error::Conflict(
            "the campaign has ended: no codes can be added to it".into(),
        ));
    }
    if usage_limit.is_some() && campaign.promotion.code_mode != CodeMode::Shared {
        return Err(Error::Conflict(
            "usage_limit: only a shared campaign's codes have a usage limit (each unique code is used once)"
                .into(),
        ));
    }
    if usage_limit == Some(0) {
        return Err(Error::invalid("usage_limit", "must be at least 1"));
    }
    // A first look at the room, to refuse before generating; the writer checks again.
    let room = campaign.room(svc.store.codes().counts(id).total);
    let pool_size = campaign.pool_size;
    let full = move || {
        Error::Conflict(format!(
            "the pool holds {pool_size} codes and has room for {room} more"
        ))
    };
    match new {
        NewCodes::Generate(count) => {
            if !(1..=MAX_CODES_PER_REQUEST).contains(&count) {
                return Err(Error::invalid("count", "must be 1 to 1000000"));
            }
            if u64::from(count) > room {
                return Err(full());
            }
            // Generated and written a part at a time, the next part generated while one is
            // written (each distinct from every code stored when it is made; one that collides
            // with the part in flight is refused by the writer, left out and made again).
            let count = count as usize;
            let text = count.saturating_mul(campaign.code.generate(&mut rand::rng()).len());
            make_room(svc, id, count, text).await?;
            let mut added = 0;
            let mut made = generate(svc, campaign.code.clone(), count.min(CODES_PER_WRITE)).await?;
            while !made.is_empty() {
                let ahead = (count - added - made.len()).min(CODES_PER_WRITE);
                let write = add_generated(svc, id, made, usage_limit);
                let (written, next) = if ahead > 0 {
                    let (w, m) = tokio::join!(write, generate(svc, campaign.code.clone(), ahead));
                    (w?, m?)
                } else {
                    (write.await?, Vec::new())
                };
                added += written;
                made = next;
                if made.is_empty() && added < count {
                    let rest = (count - added).min(CODES_PER_WRITE);
                    made = generate(svc, campaign.code.clone(), rest).await?;
                }
            }
            Ok(added)
        }
        NewCodes::Import(codes) => {
            // An import is one sled batch (all or none), and a batch's memory grows faster than
            // the batch: at most one part's worth per request.
            checked_import(svc, &codes, CODES_PER_WRITE, room, full)?;
            // One write, all or none, even across a crash.
            add_part(svc, id, codes, Atomic::Whole, usage_limit).await
        }
        NewCodes::ImportFile(codes) => {
            // Every code is checked before anything is written (up to a million: off the async
            // threads).
            let checking = svc.clone();
            let codes = svc
                .store
                .run(move |_| {
                    Ok(checked_import(
                        &checking,
                        &codes,
                        MAX_CODES_PER_REQUEST as usize,
                        room,
                        full,
                    )
                    .map(|()| codes))
                })
                .await??;
            let text: usize = codes.iter().map(String::len).sum();
            make_room(svc, id, codes.len(), text).await?;
            let mut added = 0;
            let mut rest = codes;
            while !rest.is_empty() {
                let tail = rest.split_off(rest.len().min(CODES_PER_WRITE));
                added += add_part(svc, id, rest, Atomic::InBatches, usage_limit).await?;
                rest = tail;
            }
            Ok(added)
        }
    }
}

/// What an import is checked for before anything is written: 1 to `max` codes, room for them in
/// the pool, each code's form, and none taken (the first 20 taken are named; the writer checks
/// again).
fn checked_import(
    svc: &Services,
    codes: &[String],
    max: usize,
    room: u64,
    full: impl Fn() -> Error,
) -> Result<(), Error> {
    if codes.is_empty() || codes.len() > max {
        return Err(Error::invalid("codes", format!("give 1 to {max} codes")));
    }
    if codes.len() as u64 > room {
        return Err(full());
    }
    for c in codes {
        check_code(c)?;
    }
    let taken = svc.store.codes().taken(codes);
    if !taken.is_empty() {
        return Err(CampaignError::Taken(taken.into_iter().take(20).collect()).into());
    }
    Ok(())
}

/// Writes generated codes; those the writer finds taken meanwhile (a part made while this one
/// was written may hold one) are left out. Returns how many were written.
async fn add_generated(
    svc: &Services,
    id: Uuid,
    mut codes: Vec<String>,
    usage_limit: Option<u64>,
) -> Result<usize, Error> {
    let actor = svc.actors.campaigns.get(id);
    loop {
        let part = AddCodes {
            codes: codes.clone(),
            atomic: Atomic::InBatches,
            usage_limit,
        };
        match actor.send(part).await? {
            Err(CampaignError::Taken(taken)) => {
                let taken: HashSet<String> = taken.into_iter().collect();
                codes.retain(|c| !taken.contains(c));
                if codes.is_empty() {
                    return Ok(0);
                }
            }
            other => return Ok(other?),
        }
    }
}

/// Grows the code index once, on the writer, for `count` codes of `text` bytes about to be
/// added part by part.
async fn make_room(svc: &Services, id: Uuid, count: usize, text: usize) -> Result<(), Error> {
    svc.store
        .write(move |s| {
            s.codes().make_room(id, count, text);
            Ok(())
        })
        .await?;
    Ok(())
}

/// One part of an addition, through the campaign's actor.
async fn add_part(
    svc: &Services,
    id: Uuid,
    codes: Vec<String>,
    atomic: Atomic,
    usage_limit: Option<u64>,
) -> Result<usize, Error> {
    Ok(svc
        .actors
        .campaigns
        .get(id)
        .send(AddCodes {
            codes,
            atomic,
            usage_limit,
        })
        .await??)
}

/// Pauses (`true`) or resumes a campaign, decided by its actor: while paused nothing is handed
/// out and no code of it is redeemed. 409 once it has ended.
pub async fn pause(svc: &Services, id: Uuid, paused: bool) -> Result<Campaign, Error> {
    get(svc, id)?;
    Ok(svc
        .actors
        .campaigns
        .get(id)
        .send(PauseCampaign(paused))
        .await??)
}

/// Disables or enables one code (one key, on the writer): a disabled code is not handed out,
/// and answers `disabled` when validated or redeemed.
pub async fn set_disabled(
    svc: &Services,
    code: String,
    disabled: bool,
) -> Result<(CodeRecord, CodeFlags), Error> {
    svc.store
        .write(move |s| s.codes().set_disabled(&code, disabled))
        .await?
        .ok_or(Error::NotFound)
}

/// `count` new codes from `spec`, distinct from each other and from every code stored now (a
/// code made meanwhile is caught by the writer's check, and the request is 409). Off the async
/// threads: a large pool takes a while.
async fn generate(svc: &Services, spec: CodeSpec, count: usize) -> Result<Vec<String>, Error> {
    let store = svc.store.clone();
    store
        .clone()
        .run(move |_| {
            let mut rng = rand::rng();
            let mut made: HashSet<String> = HashSet::with_capacity(count);
            // A pattern nearly full of codes makes many draws collide; past this many, give up.
            let max_draws = count.saturating_mul(20).max(1000);
            let mut draws = 0;
            while made.len() < count && draws < max_draws {
                let batch: Vec<String> = (0..(count - made.len()).min(10_000))
                    .map(|_| spec.generate(&mut rng))
                    .collect();
                draws += batch.len();
                let taken: HashSet<String> = store.codes().taken(&batch).into_iter().collect();
                made.extend(batch.into_iter().filter(|c| !taken.contains(c)));
            }
            Ok(made)
        })
        .await
        .map_err(Error::from)
        .and_then(|made| {
            if made.len() < count {
                return Err(Error::Conflict(
                    "the code pattern has too few free codes left; widen the pattern or the charset"
                        .into(),
                ));
            }
            Ok(made.into_iter().collect())
        })
}

/// Claims one code of a campaign for `customer`: the durable code record and the campaign
/// (for its end). Decided and written in one step on the store's writer, where the pool lives
/// (`Codes::claim_next`). 409 sold out, limit reached, or `purchase_required` (a priced
/// campaign or a gift card: its codes are ordered and paid), 422 not active.
pub async fn claim(
    svc: &Services,
    id: Uuid,
    customer: Uuid,
) -> Result<(CodeRecord, Arc<Campaign>), Error> {
    let campaign = svc.store.campaigns().shared(id).ok_or(Error::NotFound)?;
    // Sold codes are bought: an order, paid before its codes are shown (a price and a kind
    // never change after creation).
    if campaign.requires_payment() {
        metrics::counter!("voucherd_claims_total", "result" => "purchase_required").increment(1);
        return Err(Error::PurchaseRequired);
    }
    let now = svc.clock.now();
    // A refusal from memory (ended, at the limit, sold out) is answered without a writer
    // command: a customer looping claims at their limit costs no flush.
    let claimed = match svc.store.codes().may_hand_out(&campaign, customer, 1, now) {
        Err(refusal) => Ok(Err(refusal)),
        Ok(()) => {
            svc.store
                .write(move |s| {
                    // The campaign as last written (on this thread): an end written before is seen.
                    let Some(campaign) = s.campaigns().shared(id) else {
                        return Err(StoreError::NotFound);
                    };
                    s.codes().claim_next(&campaign, customer, now)
                })
                .await
        }
    }
    .map_err(|e| match e {
        StoreError::NotFound => Error::NotFound,
        e => Error::Store(e),
    })?;
    let (result, outcome) = match &claimed {
        Ok(_) => (&CLAIMED, "ok"),
        Err(Refusal::SoldOut) => (&SOLD_OUT, "sold_out"),
        Err(Refusal::LimitReached(_)) => (&LIMIT, "limit"),
        Err(Refusal::NotActive(_) | Refusal::NoCustomer) => (&NOT_ACTIVE, "not_active"),
    };
    result.get_or_init(|| counted(outcome)).increment(1);
    Ok((claimed?, campaign))
}

/// Claims by outcome: handles made once (a labelled counter looked up per claim costs a label
/// clone and a map lookup).
static CLAIMED: OnceLock<metrics::Counter> = OnceLock::new();
static SOLD_OUT: OnceLock<metrics::Counter> = OnceLock::new();
static LIMIT: OnceLock<metrics::Counter> = OnceLock::new();
static NOT_ACTIVE: OnceLock<metrics::Counter> = OnceLock::new();

fn counted(result: &'static str) -> metrics::Counter {
    metrics::counter!("voucherd_claims_total", "result" => result)
}
