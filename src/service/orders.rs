//! Orders (codes bought, all or nothing, taken from the pool on the store's writer) and redemptions (a code
//! used against an order, and rolled back once), decided on the store's one writer.

use uuid::Uuid;

use super::{Error, Services};
use crate::domain::campaign::{CodeRecord, Order, Redemption, check_code};
use crate::domain::promotion::{Applied, Checkout, Customer, MAX_CODES, Reason};
use crate::domain::user::Phone;
use crate::store::StoreError;
use crate::store::orders::RedeemError;

/// Codes one order may buy.
pub const MAX_QUANTITY: u32 = 100;

/// Buys `quantity` codes of a campaign for `customer`, all or nothing: the durable order.
pub async fn place(
    svc: &Services,
    campaign: Uuid,
    customer: Uuid,
    quantity: u32,
    phone: Option<&str>,
) -> Result<(Order, Vec<CodeRecord>), Error> {
    if !(1..=MAX_QUANTITY).contains(&quantity) {
        return Err(Error::invalid("quantity", "must be 1 to 100"));
    }
    let phone = phone
        .map(Phone::parse)
        .transpose()?
        .map(|p| p.as_str().to_owned());
    let now = svc.clock.now();
    let id = campaign;
    // Refused from memory when it cannot go through (no writer command, no flush).
    let known = svc.store.campaigns().shared(id).ok_or(Error::NotFound)?;
    svc.store
        .codes()
        .may_hand_out(&known, customer, quantity, now)?;
    let placed = svc
        .store
        .write(move |s| {
            // Decided where the pool lives, under the campaign as last written.
            let Some(campaign) = s.campaigns().shared(id) else {
                return Err(StoreError::NotFound);
            };
            s.orders().place(&campaign, customer, quantity, phone, now)
        })
        .await
        .map_err(|e| match e {
            StoreError::NotFound => Error::NotFound,
            e => Error::Store(e),
        })?;
    Ok(placed?)
}

/// Redeems a code against an order: the redemption and what it took off (per line). 409 with
/// the reason when the code does not apply; 404 when there is no such code (or it is someone
/// else's).
pub async fn redeem(
    svc: &Services,
    code: String,
    customer: Option<Customer>,
    order: Checkout,
) -> Result<(Redemption, Applied), Error> {
    let now = svc.clock.now();
    let redeemed = svc
        .store
        .write(move |s| Ok(s.orders().redeem(&code, customer.as_ref(), &order, now)))
        .await?;
    let result = if redeemed.is_ok() {
        "redeemed"
    } else {
        "refused"
    };
    metrics::counter!("voucherd_redemptions_total", "result" => result).increment(1);
    let (redemption, applied, budget_low) = redeemed?;
    if budget_low {
        // Admins hear of it now rather than at the notifier's next look (a full mailbox: then).
        let _ = svc.actors.notifier.try_send(crate::actors::messages::Wake);
    }
    Ok((redemption, applied))
}

/// What a validation found: per code, the campaign it belongs to (when the caller may know)
/// and what it would take off, or why it would not apply.
pub type Validated = Vec<(String, Result<Applied, Reason>)>;

/// What `codes` would take off `order` now for `customer`, one after another; writes nothing
/// but the in-memory count of inapplicable reasons per campaign (for its report).
pub async fn validate(
    svc: &Services,
    codes: Vec<String>,
    customer: Option<Customer>,
    order: Checkout,
) -> Result<Validated, Error> {
    if codes.is_empty() || codes.len() > MAX_CODES {
        return Err(Error::invalid("codes", "give 1 to 10 codes"));
    }
    for c in &codes {
        check_code(c)?;
    }
    let now = svc.clock.now();
    let store = svc.store.clone();
    let checked = svc
        .store
        .run(move |s| {
            s.orders()
                .validate(&codes, customer.as_ref(), &order, now)
                .map(|r| (codes, r))
        })
        .await?;
    let (codes, results) = checked;
    let refused: Vec<(Uuid, Reason)> = results
        .iter()
        .filter_map(|(campaign, r)| Some(((*campaign)?, *r.as_ref().err()?)))
        .collect();
    store.orders().count_reasons(&refused);
    Ok(codes
        .into_iter()
        .zip(results)
        .map(|(code, (_, r))| (code, r))
        .collect())
}

/// Rolls a redemption back, once: the code is held again, a gift card gets back what it gave.
pub async fn roll_back(svc: &Services, id: Uuid) -> Result<Redemption, Error> {
    let now = svc.clock.now();
    let redemption = svc
        .store
        .write(move |s| Ok(s.orders().roll_back(id, now)))
        .await??;
    metrics::counter!("voucherd_redemptions_total", "result" => "rolled_back").increment(1);
    Ok(redemption)
}

impl From<RedeemError> for Error {
    fn from(e: RedeemError) -> Self {
        match e {
            RedeemError::UnknownCode | RedeemError::UnknownRedemption => Error::NotFound,
            // Someone else's code is not found, as an unknown one is.
            RedeemError::Inapplicable(Reason::NotFound) => Error::NotFound,
            RedeemError::Inapplicable(reason) => Error::Inapplicable(reason),
            e @ RedeemError::RolledBack => Error::Conflict(e.to_string()),
            RedeemError::Store(e) => Error::Store(e),
        }
    }
}
