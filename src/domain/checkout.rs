//! The checkout engine: whether a code applies to an order now, for a customer, with the
//! campaign's counters as they stand, and what it takes off (line by line). Validations and
//! redemptions run the same [`evaluate`]; pure, no store and no clock.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::campaign::{Campaign, CodeRecord, CodeStatus, Discount, Redemption};
use super::promotion::{
    Applied, Cart, Checkout, Customer, Per, Reason, check_rules, end_of_local_day,
};

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
            // Held for an order not paid yet: nobody's to use, nobody told it exists.
            CodeStatus::Reserved => return Err(Reason::NotFound),
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

/// Who a code's use counts for: a unique code's holder (the code is theirs, whoever is named),
/// a shared code's named customer.
pub fn counted_for(code: &CodeFacts, customer: Option<&Customer>) -> Option<Customer> {
    match code.shared {
        Some(_) => customer.cloned(),
        None => code
            .holder
            .map(Customer::User)
            .or_else(|| customer.cloned()),
    }
}

/// One code of a cart as the engine sees it: its text as stored, its campaign and its facts.
#[derive(Debug, Clone)]
pub struct CartCode<'a> {
    pub code: &'a str,
    pub campaign: &'a Campaign,
    pub facts: CodeFacts,
}

/// What the earlier codes of one request use: a later code sees the counters as stored plus
/// these, so one request never counts on a use, a budget cent or a customer's allowance an
/// earlier code of it took (validations and redemptions alike).
#[derive(Debug, Default)]
pub struct Pending {
    /// A shared campaign's uses per customer.
    uses: HashMap<(Uuid, Customer), u32>,
    /// (campaign, which budget, customer for a per-customer budget) → what is used of it.
    budgets: HashMap<(Uuid, usize, Option<Customer>), i64>,
    /// A shared code's uses (by its text as stored).
    shared: HashMap<String, u64>,
}

impl Pending {
    fn budget_key(
        campaign: &Campaign,
        i: usize,
        who: Option<&Customer>,
    ) -> (Uuid, usize, Option<Customer>) {
        let per_customer = campaign
            .promotion
            .budgets
            .get(i)
            .is_some_and(|b| b.per == Per::Customer);
        (campaign.id, i, who.filter(|_| per_customer).cloned())
    }

    /// `stored` (the counters as they stand) plus what this request used so far.
    pub fn usage(&self, campaign: &Campaign, who: Option<&Customer>, mut stored: Usage) -> Usage {
        if let Some(w) = who {
            stored.customer_uses = stored.customer_uses.saturating_add(
                self.uses
                    .get(&(campaign.id, w.clone()))
                    .copied()
                    .unwrap_or(0),
            );
        }
        stored
            .budgets_used
            .resize(campaign.promotion.budgets.len(), 0);
        for (i, used) in stored.budgets_used.iter_mut().enumerate() {
            let key = Self::budget_key(campaign, i, who);
            *used = used.saturating_add(self.budgets.get(&key).copied().unwrap_or(0));
        }
        stored
    }

    /// `facts` with this request's earlier uses of the same shared code.
    pub fn facts(&self, code: &str, mut facts: CodeFacts) -> CodeFacts {
        if let Some((uses, limit)) = facts.shared {
            let more = self.shared.get(code).copied().unwrap_or(0);
            facts.shared = Some((uses.saturating_add(more), limit));
        }
        facts
    }

    /// Counts a code that applied, as its redemption will count once written.
    pub fn count(&mut self, code: &CartCode<'_>, who: Option<&Customer>, applied: &Applied) {
        let campaign = code.campaign;
        if code.facts.shared.is_some() {
            *self.shared.entry(code.code.to_owned()).or_default() += 1;
            if let Some(w) = who {
                *self.uses.entry((campaign.id, w.clone())).or_default() += 1;
            }
        }
        for (i, budget) in campaign.promotion.budgets.iter().enumerate() {
            let key = Self::budget_key(campaign, i, who);
            *self.budgets.entry(key).or_default() += budget.cost(applied.discount_cents);
        }
    }
}

/// Evaluates a cart's codes in order, each against what the ones before left of the order
/// (`cart`) and the counters as they stand (`stored`, per campaign and customer) plus what the
/// earlier codes of the cart use: what redeeming them one after another would give, code by
/// code. `codes` must name each code once (a request naming one twice is refused before).
pub fn evaluate_cart(
    codes: &[CartCode<'_>],
    customer: Option<&Customer>,
    stored: impl Fn(&Campaign, Option<&Customer>) -> Usage,
    order: &Checkout,
    now: DateTime<Utc>,
) -> Vec<Result<Applied, Reason>> {
    let mut cart = Cart::of(order);
    let mut pending = Pending::default();
    codes
        .iter()
        .map(|c| {
            let who = counted_for(&c.facts, customer);
            let usage = pending.usage(c.campaign, who.as_ref(), stored(c.campaign, who.as_ref()));
            let facts = pending.facts(c.code, c.facts.clone());
            let result = evaluate(c.campaign, &facts, customer, &usage, order, &mut cart, now);
            if let Ok(applied) = &result {
                pending.count(c, who.as_ref(), applied);
            }
            result
        })
        .collect()
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
/// its redemptions) and the redemption's record, which names the customer it counts for as
/// [`counted_for`] says (`reference`: the shop's own reference as given, kept for listings).
#[allow(clippy::too_many_arguments)]
pub fn redeemed(
    code: &CodeRecord,
    campaign: &Campaign,
    applied: &Applied,
    customer: Option<&Customer>,
    reference: Option<&str>,
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
        // The shop's own reference as it gave it, also when it named one of our users.
        customer_ref: reference.map(str::to_owned).or_else(|| match customer {
            Some(Customer::Ref(r)) => Some(r.clone()),
            _ => None,
        }),
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
