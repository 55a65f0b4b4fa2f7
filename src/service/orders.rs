//! Orders (codes bought, all or nothing, taken from the pool on the store's writer) and redemptions (a code
//! used against an order, and rolled back once), decided on the store's one writer.

use uuid::Uuid;

use super::{Error, Services};
use crate::domain::campaign::{CodeRecord, Order, Redemption};
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

/// Redeems a code against an order: what it took off. 409 when the code cannot be redeemed.
pub async fn redeem(
    svc: &Services,
    code: String,
    customer: Option<Uuid>,
    order_amount_cents: Option<i64>,
) -> Result<Redemption, Error> {
    if order_amount_cents.is_some_and(|a| a < 0) {
        return Err(Error::invalid("order_amount_cents", "must not be negative"));
    }
    let now = svc.clock.now();
    let redeemed = svc
        .store
        .write(move |s| Ok(s.orders().redeem(&code, customer, order_amount_cents, now)))
        .await?;
    let result = if redeemed.is_ok() {
        "redeemed"
    } else {
        "refused"
    };
    metrics::counter!("voucherd_redemptions_total", "result" => result).increment(1);
    Ok(redeemed?)
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
            RedeemError::NotRedeemable(why) => Error::NotRedeemable(why.to_string()),
            e @ RedeemError::RolledBack => Error::Conflict(e.to_string()),
            RedeemError::Store(e) => Error::Store(e),
        }
    }
}
