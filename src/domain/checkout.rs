//! The checkout engine: whether a code applies to an order now, for a customer, with the
//! campaign's counters as they stand, and what it takes off (line by line). Validations and
//! redemptions run the same [`evaluate`]; pure, no store and no clock.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::campaign::{Campaign, CodeRecord, CodeStatus, Discount, Redemption};
use super::promotion::{Applied, Cart, Checkout, Customer, Reason, check_rules, end_of_local_day};

/// A code as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeFacts {
    pub status: CodeStatus,
    pub holder: Option<Uuid>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub balance_cents: Option<i64>,
    pub disabled: bool,
    /// A shared code: its standing uses and its limit (`None`: unlimited).
    pub shared: Option<(u64, Option<u64>)>,
    /// The holder's timezone, for `expire_at_local_end_of_day`.
    pub holder_tz: Option<chrono_tz::Tz>,
}

/// What the campaign's counters say for this customer now: their standing redemptions of a
/// shared campaign, and what is used of each budget (same order as `campaign.budgets`) in the
/// bucket a redemption now would count in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub customer_uses: u32,
    pub budgets_used: Vec<i64>,
}

/// When a claimed code stops being valid: the campaign's close, or earlier, `N` days after the
/// claim (`validity_days_after_claim`), moved to the end of that local day in the holder's
/// timezone when `expire_at_local_end_of_day` (never past the campaign's close).
pub fn code_expires_at(
    campaign: &Campaign,
    claimed_at: Option<DateTime<Utc>>,
    holder_tz: Option<chrono_tz::Tz>,
) -> DateTime<Utc> {
    let close = campaign.closes_at();
    let (Some(days), Some(claimed)) = (campaign.promotion.validity_days_after_claim, claimed_at)
    else {
        return close;
    };
    let mut until = claimed + chrono::Duration::days(i64::from(days));
    if campaign.promotion.expire_at_local_end_of_day {
        let tz = holder_tz.unwrap_or(campaign.timezone.0);
        until = end_of_local_day(until, tz);
    }
    until.min(close)
}

/// Whether `code` of `campaign` applies to an order at `now` for `customer`, with the counters
/// as they stand, and what it takes off `cart` (which it then leaves smaller). The checks run
/// in a fixed order, so each refusal has one reason.
pub fn evaluate(
    campaign: &Campaign,
    code: &CodeFacts,
    customer: Option<&Customer>,
    usage: &Usage,
    order: &Checkout,
    cart: &mut Cart,
    now: DateTime<Utc>,
) -> Result<Applied, Reason> {
    let p = &campaign.promotion;
    // A unique code that is not this user's (someone else's, or nobody's yet) is not found, so
    // no caller learns that it exists.
    if code.shared.is_none()
        && let Some(Customer::User(who)) = customer
        && code.holder != Some(*who)
    {
        return Err(Reason::NotFound);
    }
    if code.disabled {
        return Err(Reason::Disabled);
    }
    if campaign.ended_at.is_some_and(|e| e <= now) {
        return Err(Reason::Ended);
    }
    if now >= campaign.ends_at {
        return Err(Reason::Expired);
    }
    if now < campaign.starts_at {
        return Err(Reason::NotStarted);
    }
    if p.paused_at.is_some() {
        return Err(Reason::Paused);
    }
    match code.shared {
        Some((uses, limit)) => {
            if limit.is_some_and(|l| uses >= l) {
                return Err(Reason::UsageLimitReached);
            }
            if customer.is_none() {
                return Err(Reason::CustomerRequired);
            }
            if usage.customer_uses >= campaign.per_customer_limit {
                return Err(Reason::CustomerLimitReached);
            }
        }
        None => match code.status {
            CodeStatus::Available => return Err(Reason::NotHeld),
            CodeStatus::Redeemed => return Err(Reason::Redeemed),
            CodeStatus::Claimed => {
                if now >= code_expires_at(campaign, code.claimed_at, code.holder_tz) {
                    return Err(Reason::Expired);
                }
            }
        },
    }
    check_rules(&p.rules, order, now, campaign.timezone.0)?;
    let applied = take_off(campaign, code, order, cart.clone())?;
    for (i, budget) in p.budgets.iter().enumerate() {
        let used = usage.budgets_used.get(i).copied().unwrap_or(0);
        if used.saturating_add(budget.cost(applied.0.discount_cents)) > budget.limit {
            return Err(Reason::BudgetExhausted);
        }
    }
    *cart = applied.1;
    Ok(applied.0)
}

/// What the code takes off what is left of the order, and the cart after it.
fn take_off(
    campaign: &Campaign,
    code: &CodeFacts,
    order: &Checkout,
    mut cart: Cart,
) -> Result<(Applied, Cart), Reason> {
    let rules = &campaign.promotion.rules;
    // The lines the discount may touch: those the rules admit (all, when unscoped).
    let lines: Vec<usize> = (0..order.items.len())
        .filter(|&i| !rules.scoped() || rules.admits(&order.items[i]))
        .collect();
    if rules.scoped() && lines.is_empty() {
        return Err(Reason::NoMatchingItems);
    }
    let mut applied = Applied::default();
    if let Some(balance) = code.balance_cents {
        if balance <= 0 {
            return Err(Reason::Spent);
        }
        let taken = spread(balance, &lines, &mut cart, &mut applied);
        applied.balance_cents = Some(balance - taken);
        return Ok((applied, cart));
    }
    match &campaign.discount {
        None => {}
        Some(Discount::Amount { cents, currency }) => {
            if order.currency.as_ref().is_some_and(|c| c != currency) {
                return Err(Reason::CurrencyMismatch);
            }
            spread(*cents, &lines, &mut cart, &mut applied);
        }
        Some(Discount::Percent(p)) => {
            let cap = campaign.promotion.max_discount_cents.unwrap_or(i64::MAX);
            if !order.priced {
                // A share of an unknown amount: nothing.
            } else if order.items.is_empty() {
                let d = (cart.left.max(0).saturating_mul(i64::from(*p)) / 100).min(cap);
                cart.left -= d;
                applied.discount_cents = d;
            } else {
                let mut total: i64 = 0;
                for &i in &lines {
                    let d =
                        (cart.lines[i].max(0).saturating_mul(i64::from(*p)) / 100).min(cap - total);
                    if d > 0 {
                        cart.lines[i] -= d;
                        cart.left -= d;
                        total += d;
                        applied.lines.push((i, d));
                    }
                }
                applied.discount_cents = total;
            }
        }
    }
    Ok((applied, cart))
}

/// Takes up to `amount` off the cart: line by line among `lines` (never more than a line has
/// left), or off the total when the order has no items. Returns what it took.
fn spread(amount: i64, lines: &[usize], cart: &mut Cart, applied: &mut Applied) -> i64 {
    let mut taken: i64 = 0;
    if cart.lines.is_empty() {
        taken = amount.min(cart.left.max(0));
    } else {
        for &i in lines {
            let d = (amount - taken).min(cart.lines[i].max(0));
            if d > 0 {
                cart.lines[i] -= d;
                taken += d;
                applied.lines.push((i, d));
            }
        }
    }
    cart.left -= taken;
    applied.discount_cents = taken;
    taken
}

/// What a redemption that applied leaves: the code as it is after (a unique code used up, or a
/// gift card drawn down; `None` for a shared code, whose record does not change: its uses are
/// its redemptions) and the redemption's record.
#[allow(clippy::too_many_arguments)]
pub fn redeemed(
    code: &CodeRecord,
    campaign: &Campaign,
    applied: &Applied,
    customer: Option<&Customer>,
    shared: bool,
    order: &Checkout,
    id: Uuid,
    now: DateTime<Utc>,
) -> (Option<CodeRecord>, Redemption) {
    let after = (!shared).then(|| {
        let mut after = code.clone();
        after.balance_cents = applied.balance_cents.or(code.balance_cents);
        if applied.balance_cents.is_none_or(|b| b == 0) {
            after.status = CodeStatus::Redeemed;
        }
        after.redeemed_at = Some(now);
        after
    });
    let redemption = Redemption {
        v: Redemption::VERSION,
        id,
        code: code.code.clone(),
        campaign_id: campaign.id,
        customer: if shared {
            customer.and_then(Customer::user)
        } else {
            code.holder
        },
        order_amount_cents: order.priced.then_some(order.amount_cents),
        discount_cents: applied.discount_cents,
        balance_cents: applied.balance_cents,
        created_at: now,
        rolled_back_at: None,
        customer_ref: match customer {
            Some(Customer::Ref(r)) => Some(r.clone()),
            _ => None,
        },
        currency: order.currency.clone(),
        lines: applied.lines.iter().map(|&(i, d)| (i as u32, d)).collect(),
        shared,
    };
    (after, redemption)
}

/// Undoes a redemption: the code is held again, a gift card gets back exactly what was drawn.
pub fn roll_back(mut code: CodeRecord, redemption: &Redemption) -> CodeRecord {
    code.status = CodeStatus::Claimed;
    if let Some(balance) = code.balance_cents.as_mut()
        && redemption.balance_cents.is_some()
    {
        *balance += redemption.discount_cents;
    }
    code
}

#[cfg(test)]
mod tests;
