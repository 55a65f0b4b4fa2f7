//! Orders (codes bought, all or nothing, taken from the pool on the store's writer; sold codes
//! held until their order is paid, given back when it expires) and redemptions (a cart's codes
//! used against an order, and rolled back once), decided on the store's one writer.

use uuid::Uuid;

use super::customers::checkout_person;
use super::{Error, Services};
use crate::domain::campaign::{CodeRecord, Order, Redemption, check_code, code_key};
use crate::domain::promotion::{Applied, Checkout, Customer, MAX_CODES, Reason};
use crate::domain::user::Phone;
use crate::store::StoreError;
use crate::store::orders::{PayError, RedeemError};

/// Codes one order may buy.
pub const MAX_QUANTITY: u32 = 100;

/// An order as asked for.
#[derive(Debug, Clone)]
pub struct Purchase {
    pub campaign: Uuid,
    pub customer: Uuid,
    pub quantity: u32,
    /// Where the codes may be sent by SMS.
    pub phone: Option<String>,
    /// A manager or an API key places it (for a customer at a till, or a shop's checkout).
    pub by_manager: bool,
    /// Paid already: the codes are the customer's at once. Only a manager or an API key says
    /// so; a customer's order of sold codes waits for its payment.
    pub paid: bool,
}

/// Buys `quantity` codes of a campaign for `customer`, all or nothing: the durable order and
/// its codes. A customer's order of sold codes (a price, or a gift card) holds its codes for
/// `[orders] payment_timeout_s` and shows none of them until it is paid (`pay`); one with
/// nothing to pay, or placed as paid by a manager or an API key, gives them at once. A
/// customer gives only their own confirmed phone number.
pub async fn place(svc: &Services, p: Purchase) -> Result<(Order, Vec<CodeRecord>), Error> {
    if !(1..=MAX_QUANTITY).contains(&p.quantity) {
        return Err(Error::invalid("quantity", "must be 1 to 100"));
    }
    if p.paid && !p.by_manager {
        return Err(Error::Forbidden);
    }
    let phone = p.phone.as_deref().map(Phone::parse).transpose()?;
    if let (Some(phone), false) = (&phone, p.by_manager) {
        let customer = p.customer;
        let own = svc
            .store
            .run(move |s| s.users().get(customer))
            .await?
            .and_then(|u| u.verified_phone().cloned());
        if own.as_ref() != Some(phone) {
            return Err(Error::invalid(
                "phone",
                "give your own confirmed number (confirm it on your account first)",
            ));
        }
    }
    let phone = phone.map(|p| p.as_str().to_owned());
    let now = svc.clock.now();
    let id = p.campaign;
    // Refused from memory when it cannot go through (no writer command, no flush).
    let known = svc.store.campaigns().shared(id).ok_or(Error::NotFound)?;
    let unpaid = known.requires_payment() && !p.paid;
    let orders = &svc.settings.orders;
    if unpaid && svc.store.orders().unpaid_of(p.customer) >= orders.max_pending_per_customer {
        return Err(Error::TooMany(format!(
            "at most {} unpaid orders at once: pay or let one expire first",
            orders.max_pending_per_customer
        )));
    }
    svc.store
        .codes()
        .may_hand_out(&known, p.customer, p.quantity, now)?;
    let pay_by = unpaid.then(|| now + chrono::Duration::seconds(orders.payment_timeout_s as i64));
    let (customer, quantity, max_unpaid) =
        (p.customer, p.quantity, orders.max_pending_per_customer);
    let placed = svc
        .store
        .write(move |s| {
            // Decided where the pool lives, under the campaign as last written.
            let Some(campaign) = s.campaigns().shared(id) else {
                return Err(StoreError::NotFound);
            };
            if pay_by.is_some() && s.orders().unpaid_of(customer) >= max_unpaid {
                return Err(StoreError::LimitReached {
                    what: "unpaid orders at once",
                    max: max_unpaid as usize,
                });
            }
            s.orders()
                .place(&campaign, customer, quantity, phone, pay_by, now)
        })
        .await
        .map_err(|e| match e {
            StoreError::NotFound => Error::NotFound,
            e @ StoreError::LimitReached { .. } => Error::TooMany(e.to_string()),
            e => Error::Store(e),
        })?;
    let placed = placed?;
    metrics::counter!("voucherd_orders_total", "result" => if unpaid { "pending_payment" } else { "paid" })
        .increment(1);
    Ok(placed)
}

/// Confirms an order's payment (a manager, an API key, or a signed payment callback): its codes
/// become the customer's. Paying it again changes nothing; 409 `order_expired` once its
/// deadline passed unpaid (its codes went back).
pub async fn pay(
    svc: &Services,
    id: Uuid,
    reference: Option<String>,
) -> Result<(Order, Vec<CodeRecord>), Error> {
    let reference = reference
        .map(|r| crate::domain::bounded_text("reference", &r, 200))
        .transpose()?;
    let now = svc.clock.now();
    let paid = svc
        .store
        .write(move |s| Ok(s.orders().pay(id, reference, now)))
        .await?;
    match paid {
        Ok(paid) => {
            metrics::counter!("voucherd_orders_total", "result" => "paid_later").increment(1);
            Ok(paid)
        }
        Err(PayError::Unknown) => Err(Error::NotFound),
        Err(PayError::Expired) => Err(Error::OrderExpired),
        Err(e @ PayError::Paused) => Err(Error::NotActive(e.to_string())),
        Err(PayError::Store(e)) => Err(Error::Store(e)),
    }
}

/// The codes of a cart, checked: 1 to 10, each a valid code, none twice (whatever the case of
/// its ASCII letters: a till typing `summer10` twice names one code).
fn cart(codes: &[String]) -> Result<(), Error> {
    if codes.is_empty() || codes.len() > MAX_CODES {
        return Err(Error::invalid("codes", "give 1 to 10 codes"));
    }
    let mut seen = std::collections::HashSet::new();
    for c in codes {
        check_code(c)?;
        if !seen.insert(code_key(c)) {
            return Err(Error::DuplicateCode(c.clone()));
        }
    }
    Ok(())
}

/// Redeems a cart's codes against an order, all or none: each redemption and what it took off
/// (per line), in the order given. 409 with the reason when one does not apply (counted with
/// the cart's earlier codes); 404 when one is no such code (or someone else's).
pub async fn redeem(
    svc: &Services,
    codes: Vec<String>,
    customer: Option<Customer>,
    order: Checkout,
) -> Result<Vec<(Redemption, Applied)>, Error> {
    cart(&codes)?;
    let buyer = checkout_person(svc, customer)?;
    let now = svc.clock.now();
    let n = codes.len() as u64;
    let redeemed = svc
        .store
        .write(move |s| Ok(s.orders().redeem(&codes, &buyer, &order, now)))
        .await?;
    let result = if redeemed.is_ok() {
        "redeemed"
    } else {
        "refused"
    };
    metrics::counter!("voucherd_redemptions_total", "result" => result).increment(n);
    let (made, budget_low) = redeemed?;
    if budget_low {
        // Admins hear of it now rather than at the notifier's next look (a full mailbox: then).
        let _ = svc.actors.notifier.try_send(crate::actors::messages::Wake);
    }
    Ok(made)
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
    cart(&codes)?;
    let buyer = checkout_person(svc, customer)?;
    let now = svc.clock.now();
    let store = svc.store.clone();
    let checked = svc
        .store
        .run(move |s| {
            s.orders()
                .validate(&codes, &buyer, &order, now)
                .map(|r| (codes, r))
        })
        .await?;
    let (codes, results) = checked;
    let refused: Vec<(Uuid, Reason)> = results
        .iter()
        .filter_map(|(known, r)| Some((known.as_ref()?.0, *r.as_ref().err()?)))
        .collect();
    store.orders().count_reasons(&refused);
    // Each code as stored (a till types `summer10` for `SUMMER10`), or as typed when not found.
    Ok(codes
        .into_iter()
        .zip(results)
        .map(|(typed, (known, r))| (known.map_or(typed, |(_, stored)| stored), r))
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
            RedeemError::UnknownCode
            | RedeemError::UnknownCustomer
            | RedeemError::UnknownRedemption => Error::NotFound,
            // Someone else's code is not found, as an unknown one is.
            RedeemError::Inapplicable(Reason::NotFound) => Error::NotFound,
            RedeemError::Inapplicable(reason) => Error::Inapplicable(reason),
            e @ RedeemError::RolledBack => Error::Conflict(e.to_string()),
            RedeemError::Store(e) => Error::Store(e),
        }
    }
}
