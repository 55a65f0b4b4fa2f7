//! Promotions at checkout: an order as a shop sends it, the conditions a campaign sets on it
//! (`Rules`), its caps and budgets, and the one engine that says what a code takes off an order
//! or why it cannot ([`Reason`]). Validations and redemptions both run [`evaluate`]; nothing
//! here reads a store or a clock.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::ValidationError;

/// Lines one order may carry.
pub const MAX_ITEMS: usize = 100;
/// Codes one validation may carry.
pub const MAX_CODES: usize = 10;
/// The largest order total (minor units): a hundred million in any currency.
pub const MAX_ORDER_CENTS: i64 = 10_000_000_000;
/// Entries one include or exclude list may hold.
pub const MAX_SCOPE: usize = 100;
/// Budgets one campaign may have.
pub const MAX_BUDGETS: usize = 10;
/// The longest `customer_ref`, SKU or scope entry.
pub const MAX_REF_LEN: usize = 200;

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    pub sku: String,
    pub retailer: Option<String>,
    pub category: Option<String>,
    pub quantity: u32,
    pub price_cents: i64,
}

impl OrderLine {
    /// What the line costs: quantity × unit price.
    pub fn total(&self) -> i64 {
        self.price_cents.saturating_mul(i64::from(self.quantity))
    }
}

/// An order as a shop sends it for a validation or a redemption. `currency` is absent only in
/// the old redemption body (`order_amount_cents`): then no currency is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    pub amount_cents: i64,
    pub currency: Option<String>,
    pub items: Vec<OrderLine>,
    /// False for the old body without an amount: a percentage then takes nothing, a fixed
    /// amount or a gift card all it can, and a minimum order is not met.
    pub priced: bool,
}

fn field_err(field: &'static str, message: impl Into<String>) -> ValidationError {
    ValidationError::new(field, message)
}

/// `raw` as an ISO 4217 code (three capital letters).
pub fn currency(field: &'static str, raw: &str) -> Result<String, ValidationError> {
    if raw.len() == 3 && raw.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(raw.to_owned())
    } else {
        Err(field_err(field, "must be an ISO 4217 code such as EUR"))
    }
}

impl Checkout {
    /// An order from its parts: items (at most 100) each with a quantity of 1 to 10,000 and a
    /// price of 0 or more; `amount_cents` is their sum when items are given (422 when it is
    /// given and differs) and required otherwise.
    pub fn new(
        amount_cents: Option<i64>,
        currency_code: Option<&str>,
        items: Vec<OrderLine>,
    ) -> Result<Self, ValidationError> {
        let currency = currency_code
            .map(|c| currency("order.currency", c))
            .transpose()?;
        if items.len() > MAX_ITEMS {
            return Err(field_err("order.items", "at most 100 lines"));
        }
        let mut sum: i64 = 0;
        for line in &items {
            super::bounded_text("order.items.sku", &line.sku, MAX_REF_LEN)?;
            for (field, value) in [
                ("order.items.retailer", &line.retailer),
                ("order.items.category", &line.category),
            ] {
                if let Some(v) = value {
                    super::bounded_text(field, v, MAX_REF_LEN)?;
                }
            }
            if !(1..=10_000).contains(&line.quantity) {
                return Err(field_err("order.items.quantity", "must be 1 to 10000"));
            }
            if !(0..=MAX_ORDER_CENTS).contains(&line.price_cents) {
                return Err(field_err(
                    "order.items.price_cents",
                    "must be 0 to 10000000000",
                ));
            }
            sum = sum.saturating_add(line.total());
        }
        if sum > MAX_ORDER_CENTS {
            return Err(field_err("order.items", "the order's total is too large"));
        }
        let amount_cents = match (amount_cents, items.is_empty()) {
            (Some(a), _) if !(0..=MAX_ORDER_CENTS).contains(&a) => {
                return Err(field_err("order.amount_cents", "must be 0 to 10000000000"));
            }
            (Some(a), false) if a != sum => {
                return Err(field_err(
                    "order.amount_cents",
                    format!("is {a} but the items add up to {sum}"),
                ));
            }
            (Some(a), _) => a,
            (None, false) => sum,
            (None, true) => {
                return Err(field_err(
                    "order.amount_cents",
                    "give the order's amount or its items",
                ));
            }
        };
        Ok(Self {
            amount_cents,
            currency,
            items,
            priced: true,
        })
    }

    /// An order whose amount is not known (the old redemption body without one).
    pub fn unpriced() -> Self {
        Self {
            amount_cents: MAX_ORDER_CENTS,
            currency: None,
            items: Vec::new(),
            priced: false,
        }
    }

    /// Items in the order (the sum of quantities).
    pub fn item_count(&self) -> u64 {
        self.items.iter().map(|l| u64::from(l.quantity)).sum()
    }
}

/// What an include/exclude list lets through: a value in `include` (when it has any) and not
/// in `exclude`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl Scope {
    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    /// Names compare in [`super::match_key`] form: trimmed, width, case and marks folded, so
    /// `GIFTCARD `, `ＧＩＦＴＣＡＲＤ` and `GİFTCARD` are all the excluded `giftcard`.
    fn admits(&self, value: Option<&str>) -> bool {
        if self.is_empty() {
            return true;
        }
        let key = value.map(super::match_key);
        let listed = |list: &[String]| {
            key.as_deref()
                .is_some_and(|k| list.iter().any(|e| super::matches_key(e, k)))
        };
        (self.include.is_empty() || listed(&self.include)) && !listed(&self.exclude)
    }

    fn checked(self, field: &'static str) -> Result<Self, ValidationError> {
        if self.include.len() > MAX_SCOPE || self.exclude.len() > MAX_SCOPE {
            return Err(field_err(
                field,
                "at most 100 entries in include and in exclude",
            ));
        }
        for v in self.include.iter().chain(&self.exclude) {
            super::bounded_text(field, v, MAX_REF_LEN)?;
        }
        Ok(self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    fn of(d: chrono::Weekday) -> Self {
        match d {
            chrono::Weekday::Mon => Weekday::Mon,
            chrono::Weekday::Tue => Weekday::Tue,
            chrono::Weekday::Wed => Weekday::Wed,
            chrono::Weekday::Thu => Weekday::Thu,
            chrono::Weekday::Fri => Weekday::Fri,
            chrono::Weekday::Sat => Weekday::Sat,
            chrono::Weekday::Sun => Weekday::Sun,
        }
    }
}

/// Conditions on the order, all of which must hold for a code to apply. Empty lists impose
/// nothing. `skus`, `retailers` and `categories` also scope the discount to the lines they admit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    pub min_order_cents: Option<i64>,
    pub min_items: Option<u32>,
    pub currency: Option<String>,
    pub skus: Scope,
    pub retailers: Scope,
    pub categories: Scope,
    /// Local weekdays (campaign's timezone) when codes apply.
    pub weekdays: Vec<Weekday>,
    /// Local hours 0–23 (campaign's timezone) when codes apply.
    pub hours: Vec<u8>,
}

impl Rules {
    /// Rules as asked for, once each holds.
    pub fn checked(mut self) -> Result<Self, ValidationError> {
        if self
            .min_order_cents
            .is_some_and(|m| !(0..=MAX_ORDER_CENTS).contains(&m))
        {
            return Err(field_err(
                "rules.min_order_cents",
                "must be 0 to 10000000000",
            ));
        }
        if self.min_items.is_some_and(|m| m > 1_000_000) {
            return Err(field_err("rules.min_items", "must be at most 1000000"));
        }
        self.currency = self
            .currency
            .map(|c| currency("rules.currency", &c))
            .transpose()?;
        self.skus = self.skus.checked("rules.skus")?;
        self.retailers = self.retailers.checked("rules.retailers")?;
        self.categories = self.categories.checked("rules.categories")?;
        if self.hours.iter().any(|h| *h > 23) {
            return Err(field_err("rules.hours", "hours are 0 to 23"));
        }
        self.hours.sort_unstable();
        self.hours.dedup();
        let mut days = Vec::new();
        for d in self.weekdays {
            if !days.contains(&d) {
                days.push(d);
            }
        }
        self.weekdays = days;
        Ok(self)
    }

    /// Whether the discount applies to some lines only.
    pub fn scoped(&self) -> bool {
        !(self.skus.is_empty() && self.retailers.is_empty() && self.categories.is_empty())
    }

    /// Whether the discount may touch `line`.
    pub fn admits(&self, line: &OrderLine) -> bool {
        self.skus.admits(Some(&line.sku))
            && self.retailers.admits(line.retailer.as_deref())
            && self.categories.admits(line.category.as_deref())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Minor units of discount given.
    DiscountCents,
    /// Redemptions made.
    Redemptions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Total,
    /// A local day (campaign's timezone).
    Day,
    /// A local week, Monday to Sunday.
    Week,
    /// A local calendar month.
    Month,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    Campaign,
    Customer,
}

/// A ceiling on what a campaign gives per period, for the campaign or for each customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    pub measure: Measure,
    pub limit: i64,
    pub period: Period,
    pub per: Per,
}

impl Budget {
    pub fn checked(self) -> Result<Self, ValidationError> {
        if !(1..=MAX_ORDER_CENTS).contains(&self.limit) {
            return Err(field_err("budgets.limit", "must be 1 to 10000000000"));
        }
        Ok(self)
    }

    /// What a redemption of `discount_cents` uses of this budget.
    pub fn cost(&self, discount_cents: i64) -> i64 {
        match self.measure {
            Measure::DiscountCents => discount_cents,
            Measure::Redemptions => 1,
        }
    }
}

/// The period `at` falls in, in `tz`: 0 for `total`, else a number that names the local day,
/// week (its Monday) or month.
pub fn period_of(period: Period, at: DateTime<Utc>, tz: chrono_tz::Tz) -> i64 {
    let local = at.with_timezone(&tz).date_naive();
    let day = i64::from(local.num_days_from_ce());
    match period {
        Period::Total => 0,
        Period::Day => day,
        Period::Week => day - i64::from(local.weekday().num_days_from_monday()),
        Period::Month => i64::from(local.year()) * 12 + i64::from(local.month0()),
    }
}

/// The first local day of the period numbered `key` (for reports); `None` for `total`.
pub fn period_start(period: Period, key: i64) -> Option<NaiveDate> {
    match period {
        Period::Total => None,
        Period::Day | Period::Week => {
            NaiveDate::from_num_days_from_ce_opt(i32::try_from(key).ok()?)
        }
        Period::Month => NaiveDate::from_ymd_opt(
            i32::try_from(key.div_euclid(12)).ok()?,
            u32::try_from(key.rem_euclid(12)).ok()? + 1,
            1,
        ),
    }
}

/// Who redeems: a voucherd user, or the shop's own reference for a buyer with no account here.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Customer {
    User(Uuid),
    Ref(String),
}

impl Customer {
    /// A shop's reference, normalised: trimmed, and lower-cased when it is an email.
    pub fn reference(raw: &str) -> Result<Self, ValidationError> {
        let trimmed = raw.trim();
        let r = super::bounded_text("customer_ref", trimmed, MAX_REF_LEN)?;
        if r.is_empty() {
            return Err(field_err("customer_ref", "must not be empty"));
        }
        Ok(Customer::Ref(if r.contains('@') {
            r.to_lowercase()
        } else {
            r
        }))
    }

    pub fn user(&self) -> Option<Uuid> {
        match self {
            Customer::User(u) => Some(*u),
            Customer::Ref(_) => None,
        }
    }
}

/// Why a code does not apply to an order: a fixed list, documented in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// No such code, or a code that is someone else's (the same answer, on purpose).
    NotFound,
    NotStarted,
    /// The code's own validity ended (its campaign's window, or days after claim).
    Expired,
    /// The campaign was ended.
    Ended,
    Paused,
    /// This code was disabled.
    Disabled,
    /// A unique code nobody has claimed.
    NotHeld,
    /// A unique code already redeemed.
    Redeemed,
    /// A gift card with nothing left.
    Spent,
    UsageLimitReached,
    CustomerLimitReached,
    BudgetExhausted,
    MinOrderNotMet,
    MinItemsNotMet,
    NoMatchingItems,
    CurrencyMismatch,
    OutsideHours,
    OutsideWeekdays,
    /// A shared code needs `customer` or `customer_ref` to count its per-customer limit.
    CustomerRequired,
}

impl Reason {
    pub const ALL: [Reason; 19] = [
        Reason::NotFound,
        Reason::NotStarted,
        Reason::Expired,
        Reason::Ended,
        Reason::Paused,
        Reason::Disabled,
        Reason::NotHeld,
        Reason::Redeemed,
        Reason::Spent,
        Reason::UsageLimitReached,
        Reason::CustomerLimitReached,
        Reason::BudgetExhausted,
        Reason::MinOrderNotMet,
        Reason::MinItemsNotMet,
        Reason::NoMatchingItems,
        Reason::CurrencyMismatch,
        Reason::OutsideHours,
        Reason::OutsideWeekdays,
        Reason::CustomerRequired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotFound => "not_found",
            Reason::NotStarted => "not_started",
            Reason::Expired => "expired",
            Reason::Ended => "ended",
            Reason::Paused => "paused",
            Reason::Disabled => "disabled",
            Reason::NotHeld => "not_held",
            Reason::Redeemed => "redeemed",
            Reason::Spent => "spent",
            Reason::UsageLimitReached => "usage_limit_reached",
            Reason::CustomerLimitReached => "customer_limit_reached",
            Reason::BudgetExhausted => "budget_exhausted",
            Reason::MinOrderNotMet => "min_order_not_met",
            Reason::MinItemsNotMet => "min_items_not_met",
            Reason::NoMatchingItems => "no_matching_items",
            Reason::CurrencyMismatch => "currency_mismatch",
            Reason::OutsideHours => "outside_hours",
            Reason::OutsideWeekdays => "outside_weekdays",
            Reason::CustomerRequired => "customer_required",
        }
    }

    /// A sentence for a problem document.
    pub fn describe(self) -> &'static str {
        match self {
            Reason::NotFound => "no such code",
            Reason::NotStarted => "the campaign has not started",
            Reason::Expired => "the code has expired",
            Reason::Ended => "the campaign has ended",
            Reason::Paused => "the campaign is paused",
            Reason::Disabled => "the code is disabled",
            Reason::NotHeld => "the code is not held by anyone",
            Reason::Redeemed => "the code is already redeemed",
            Reason::Spent => "the gift card's balance is spent",
            Reason::UsageLimitReached => "the code has been used as often as it may be",
            Reason::CustomerLimitReached => {
                "this customer has used the campaign as often as they may"
            }
            Reason::BudgetExhausted => "the campaign's budget for this period is used up",
            Reason::MinOrderNotMet => "the order is below the campaign's minimum",
            Reason::MinItemsNotMet => "the order has fewer items than the campaign asks",
            Reason::NoMatchingItems => "no line of the order is one the campaign covers",
            Reason::CurrencyMismatch => "the order is in another currency than the campaign's",
            Reason::OutsideHours => "the campaign does not apply at this hour",
            Reason::OutsideWeekdays => "the campaign does not apply on this day",
            Reason::CustomerRequired => "a shared code needs customer or customer_ref",
        }
    }
}

/// What is left of an order to discount as codes are applied one after another: per line (when
/// the order has items) and in all. A code never takes more than what is left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cart {
    pub left: i64,
    pub lines: Vec<i64>,
}

impl Cart {
    pub fn of(order: &Checkout) -> Self {
        Self {
            left: order.amount_cents,
            lines: order.items.iter().map(OrderLine::total).collect(),
        }
    }
}

/// What one code takes off: in all, and per line (line index, amount) when the order has items.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    pub discount_cents: i64,
    pub lines: Vec<(usize, i64)>,
    /// A gift card's balance after it.
    pub balance_cents: Option<i64>,
}

/// The first instant of the local day after the one `at` falls in (midnight), in `tz`.
pub fn end_of_local_day(at: DateTime<Utc>, tz: chrono_tz::Tz) -> DateTime<Utc> {
    let next = at
        .with_timezone(&tz)
        .date_naive()
        .succ_opt()
        .unwrap_or(NaiveDate::MAX);
    super::schedule::local_instant(tz, next, 0)
}

/// The order-level conditions: currency, minimum amount and items, local weekday and hour.
pub fn check_rules(
    rules: &Rules,
    order: &Checkout,
    now: DateTime<Utc>,
    tz: chrono_tz::Tz,
) -> Result<(), Reason> {
    if let Some(c) = &rules.currency
        && order.currency.as_ref().is_some_and(|o| o != c)
    {
        return Err(Reason::CurrencyMismatch);
    }
    if rules
        .min_order_cents
        .is_some_and(|m| !order.priced || order.amount_cents < m)
    {
        return Err(Reason::MinOrderNotMet);
    }
    if rules
        .min_items
        .is_some_and(|m| order.item_count() < u64::from(m))
    {
        return Err(Reason::MinItemsNotMet);
    }
    let local = now.with_timezone(&tz);
    if !rules.weekdays.is_empty() && !rules.weekdays.contains(&Weekday::of(local.weekday())) {
        return Err(Reason::OutsideWeekdays);
    }
    if !rules.hours.is_empty() && !rules.hours.contains(&(local.hour() as u8)) {
        return Err(Reason::OutsideHours);
    }
    Ok(())
}

/// Whether a campaign's codes are each held by one customer, or one code is typed by anyone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CodeMode {
    #[default]
    Unique,
    Shared,
}

/// What a campaign sets for checkout besides its discount: how its codes are used, the
/// conditions on the order, a cap on a percentage, budgets, how long a claimed code lasts, and
/// whether it is paused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promotion {
    pub code_mode: CodeMode,
    pub rules: Rules,
    /// The most a percentage takes off one order.
    pub max_discount_cents: Option<i64>,
    pub budgets: Vec<Budget>,
    /// A claimed code expires this many days after its claim (or at the campaign's close).
    pub validity_days_after_claim: Option<u32>,
    /// ...and then at the end of that day in the holder's timezone.
    pub expire_at_local_end_of_day: bool,
    /// Set by `POST …/pause`, cleared by `…/resume`.
    #[serde(with = "crate::domain::times::micros_opt")]
    pub paused_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests;
