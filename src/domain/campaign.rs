//! Campaigns and their codes: what a campaign gives (a discount, a flash-sale price, a gift
//! balance), when, to how many, and the codes that carry it. Plain types and rules, no I/O.

use chrono::{DateTime, Utc};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::ValidationError;
use super::promotion::{CodeMode, MAX_BUDGETS, Promotion};
use super::user::Timezone;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CampaignKind {
    Discount,
    FlashSale,
    GiftCard,
}

/// What a code takes off an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Discount {
    /// 1 to 100 percent of the order.
    Percent(u8),
    /// A fixed amount in minor units of `currency` (ISO 4217, three letters).
    Amount { cents: i64, currency: String },
}

/// The characters a generated code draws from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Charset {
    Alphanumeric,
    Alphabetic,
    Numbers,
    Upper,
    Lower,
    Custom(String),
}

impl Charset {
    pub fn chars(&self) -> Vec<char> {
        let range = |a: char, b: char| (a..=b).collect::<Vec<char>>();
        match self {
            Charset::Alphanumeric => [range('0', '9'), range('A', 'Z'), range('a', 'z')].concat(),
            Charset::Alphabetic => [range('A', 'Z'), range('a', 'z')].concat(),
            Charset::Numbers => range('0', '9'),
            Charset::Upper => range('A', 'Z'),
            Charset::Lower => range('a', 'z'),
            Charset::Custom(s) => {
                let mut chars: Vec<char> = s.chars().collect();
                chars.sort_unstable();
                chars.dedup();
                chars
            }
        }
    }

    pub fn parse(name: &str) -> Result<Self, ValidationError> {
        Ok(match name {
            "alphanumeric" => Charset::Alphanumeric,
            "alphabetic" => Charset::Alphabetic,
            "numbers" => Charset::Numbers,
            "upper" => Charset::Upper,
            "lower" => Charset::Lower,
            _ => {
                return Err(ValidationError::new(
                    "code.charset",
                    "must be alphanumeric, alphabetic, numbers, upper or lower (or give custom_charset)",
                ));
            }
        })
    }
}

/// How a campaign's codes are generated: `pattern` with `#` for each random character (or
/// `length` random characters), between `prefix` and `postfix`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeSpec {
    pub pattern: String,
    pub charset: Charset,
    pub prefix: String,
    pub postfix: String,
}

/// The longest code, generated or imported.
pub const MAX_CODE_LEN: usize = 64;

impl CodeSpec {
    /// From the request's parts: a pattern, or a length (default 8) of `#`.
    pub fn new(
        pattern: Option<&str>,
        length: Option<u32>,
        charset: Charset,
        prefix: &str,
        postfix: &str,
    ) -> Result<Self, ValidationError> {
        let err = |m: &str| ValidationError::new("code", m);
        let pattern = match (pattern, length) {
            (Some(p), None) => p.to_owned(),
            (None, Some(n)) if (1..=32).contains(&n) => "#".repeat(n as usize),
            (None, Some(_)) => return Err(err("length must be 1 to 32")),
            (None, None) => "#".repeat(8),
            (Some(_), Some(_)) => return Err(err("give pattern or length, not both")),
        };
        if !pattern.contains('#') {
            return Err(err("pattern needs at least one # (a random character)"));
        }
        let spec = Self {
            pattern,
            charset,
            prefix: prefix.to_owned(),
            postfix: postfix.to_owned(),
        };
        let chars = spec.charset.chars();
        if distinct_letters(&chars) < 2 {
            return Err(err("the charset needs at least two distinct characters"));
        }
        // A code is a cell of an export and a word at a till: what an imported code may not
        // hold, a generated one may not either (`check_code`).
        let separator = |c: char| matches!(c, ',' | ';' | '"');
        let hidden = |c: char| c.is_control() || c.is_whitespace() || super::is_invisible(c);
        if chars
            .iter()
            .any(|c| hidden(*c) || *c == '#' || separator(*c))
        {
            return Err(err(
                "the charset may not hold spaces, control or invisible characters, #, `,` `;` or `\"`",
            ));
        }
        let fixed = format!("{}{}{}", spec.prefix, spec.pattern, spec.postfix);
        if fixed.chars().any(|c| hidden(c) || separator(c)) {
            return Err(err(
                "prefix, pattern and postfix may not hold spaces, control or invisible characters, `,` `;` or `\"`",
            ));
        }
        if fixed.chars().count() > MAX_CODE_LEN {
            return Err(err("a code may be at most 64 characters"));
        }
        Ok(spec)
    }

    /// How many distinct codes the pattern can make (saturating).
    pub fn space(&self) -> u128 {
        let n = distinct_letters(&self.charset.chars()) as u128;
        let slots = self.pattern.chars().filter(|c| *c == '#').count() as u32;
        n.checked_pow(slots).unwrap_or(u128::MAX)
    }

    /// One code, from a cryptographic RNG (`rand`'s thread RNG is a CSPRNG).
    pub fn generate(&self, rng: &mut impl RngExt) -> String {
        let chars = self.charset.chars();
        let mut out = String::with_capacity(self.prefix.len() + self.pattern.len() + 8);
        out.push_str(&self.prefix);
        for c in self.pattern.chars() {
            if c == '#' {
                out.push(chars[rng.random_range(0..chars.len())]);
            } else {
                out.push(c);
            }
        }
        out.push_str(&self.postfix);
        out
    }
}

/// How many of `chars` are different characters of a code, which compare regardless of ASCII
/// case (`a` and `A` are one).
fn distinct_letters(chars: &[char]) -> usize {
    let mut folded: Vec<char> = chars.iter().map(char::to_ascii_uppercase).collect();
    folded.sort_unstable();
    folded.dedup();
    folded.len()
}

/// A code as given for import: 1 to 64 characters, no spaces, control characters or CSV
/// separators (`,` `;` `"`: a code is a cell of an export).
pub fn check_code(code: &str) -> Result<(), ValidationError> {
    let n = code.chars().count();
    let bad = |c: char| {
        c.is_control()
            || c.is_whitespace()
            || super::is_invisible(c)
            || matches!(c, ',' | ';' | '"')
    };
    if n == 0 || n > MAX_CODE_LEN || code.chars().any(bad) {
        // The code is named with what it hides made visible (`SUMMER10\u{200b}`).
        return Err(ValidationError::new(
            "codes",
            format!(
                "`{}`: a code is 1 to 64 characters, no spaces, control, invisible or direction-changing characters, `,` `;` or `\"`",
                code.escape_debug()
            ),
        ));
    }
    Ok(())
}

/// A code as a till or a customer types it, in the form codes are compared in: ASCII letters
/// in either case are the same letter (`summer10` is `SUMMER10`).
pub fn code_key(code: &str) -> String {
    code.to_ascii_uppercase()
}

/// The stored campaign (`campaigns` tree, by id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    pub v: u16,
    pub id: Uuid,
    pub name: String,
    pub kind: CampaignKind,
    pub discount: Option<Discount>,
    pub gift_balance_cents: Option<i64>,
    pub price_cents: Option<i64>,
    pub code: CodeSpec,
    pub pool_size: u32,
    #[serde(with = "crate::domain::times::micros")]
    pub starts_at: DateTime<Utc>,
    #[serde(with = "crate::domain::times::micros")]
    pub ends_at: DateTime<Utc>,
    pub timezone: Timezone,
    pub per_customer_limit: u32,
    pub retailer: Option<String>,
    pub category: Option<String>,
    /// Set by `POST …/end`: claims stop at once.
    #[serde(with = "crate::domain::times::micros_opt")]
    pub ended_at: Option<DateTime<Utc>>,
    #[serde(with = "crate::domain::times::micros")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::domain::times::micros")]
    pub updated_at: DateTime<Utc>,
    /// Checkout: shared or unique codes, conditions, cap, budgets, validity, pause.
    #[serde(default)]
    pub promotion: Promotion,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    /// No codes yet.
    Draft,
    /// Has codes; its window has not opened.
    Scheduled,
    Active,
    /// Active, but paused: nothing is handed out or redeemed until it is resumed.
    Paused,
    /// Its window closed, or it was ended.
    Ended,
}

impl Campaign {
    pub const VERSION: u16 = 2;
    /// The largest pool one campaign may have.
    pub const MAX_POOL: u32 = 10_000_000;

    pub fn status(&self, codes_total: u64, now: DateTime<Utc>) -> CampaignStatus {
        if self.ended_at.is_some() || now >= self.ends_at {
            CampaignStatus::Ended
        } else if codes_total == 0 {
            CampaignStatus::Draft
        } else if now < self.starts_at {
            CampaignStatus::Scheduled
        } else if self.promotion.paused_at.is_some() {
            CampaignStatus::Paused
        } else {
            CampaignStatus::Active
        }
    }

    /// When claims stop: the end of the window, or when it was ended.
    pub fn closes_at(&self) -> DateTime<Utc> {
        self.ended_at.map_or(self.ends_at, |e| e.min(self.ends_at))
    }

    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.ended_at.is_none() && now >= self.starts_at && now < self.ends_at
    }

    /// Whether `n` more codes may go to a customer who holds `held` of this campaign's codes
    /// now, with `available` codes left: the one rule claims, orders and distributions follow.
    pub fn may_hand_out(
        &self,
        now: DateTime<Utc>,
        held: u32,
        n: u32,
        available: u64,
    ) -> Result<(), Refusal> {
        if self.ended_at.is_some() || now >= self.ends_at {
            return Err(Refusal::NotActive("the campaign has ended"));
        }
        if now < self.starts_at {
            return Err(Refusal::NotActive("the campaign has not started"));
        }
        if self.promotion.paused_at.is_some() {
            return Err(Refusal::NotActive("the campaign is paused"));
        }
        if self.promotion.code_mode == CodeMode::Shared {
            return Err(Refusal::NotActive(
                "a shared code is redeemed without a claim",
            ));
        }
        if held.saturating_add(n) > self.per_customer_limit {
            return Err(Refusal::LimitReached(self.per_customer_limit));
        }
        if available < u64::from(n) {
            return Err(Refusal::SoldOut);
        }
        Ok(())
    }
}

/// Why a campaign's codes cannot be handed out now ([`Campaign::may_hand_out`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    NotActive(&'static str),
    #[error("every code of this campaign is taken")]
    SoldOut,
    #[error("at most {0} codes per customer")]
    LimitReached(u32),
    /// The customer has no account (any more: erased while the request was on its way).
    #[error("no such customer")]
    NoCustomer,
}

/// A discount as a request gives it: `{percent}` or `{amount_cents, currency}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiscountParts {
    pub percent: Option<u8>,
    pub amount_cents: Option<i64>,
    pub currency: Option<String>,
}

/// How a code pattern is asked for: a pattern or a length, a named or a custom charset, and
/// what goes around it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeSpecParts {
    pub pattern: Option<String>,
    pub charset: Option<String>,
    pub custom_charset: Option<String>,
    pub prefix: Option<String>,
    pub postfix: Option<String>,
    pub length: Option<u32>,
}

/// A new campaign as asked for, before its rules are checked ([`Campaign::new`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignSpec {
    pub name: String,
    pub kind: CampaignKind,
    pub discount: Option<DiscountParts>,
    pub gift_balance_cents: Option<i64>,
    pub price_cents: Option<i64>,
    pub code: Option<CodeSpecParts>,
    pub pool_size: u32,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub timezone: Option<String>,
    pub per_customer_limit: Option<u32>,
    pub retailer: Option<String>,
    pub category: Option<String>,
    /// As asked for; checked by [`Campaign::new`] (`paused_at` is ignored).
    pub promotion: Promotion,
}

/// A change to a campaign: what may change once it exists (never its state: `end` is final).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignPatch {
    pub name: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub per_customer_limit: Option<u32>,
}

/// The longest custom charset (every code generated reads it).
pub const MAX_CUSTOM_CHARSET: usize = 256;

/// Codes one customer may hold at most, in any campaign.
pub const MAX_PER_CUSTOMER: u32 = 1000;
/// The longest campaign name, retailer or category.
pub const MAX_NAME_LEN: usize = 200;

impl Discount {
    /// The discount a `kind` of campaign carries, from the request's parts.
    pub fn from_parts(
        kind: CampaignKind,
        parts: Option<DiscountParts>,
    ) -> Result<Option<Self>, ValidationError> {
        let Some(d) = parts else {
            return match kind {
                CampaignKind::Discount => Err(ValidationError::new(
                    "discount",
                    "a discount campaign needs {percent} or {amount_cents, currency}",
                )),
                _ => Ok(None),
            };
        };
        if kind == CampaignKind::GiftCard {
            return Err(ValidationError::new(
                "discount",
                "a gift card carries a balance, not a discount",
            ));
        }
        match (d.percent, d.amount_cents, d.currency) {
            (Some(p), None, None) if (1..=100).contains(&p) => Ok(Some(Discount::Percent(p))),
            (Some(_), None, None) => {
                Err(ValidationError::new("discount.percent", "must be 1 to 100"))
            }
            (None, Some(cents), Some(currency)) => {
                if cents < 1 {
                    return Err(ValidationError::new(
                        "discount.amount_cents",
                        "must be at least 1",
                    ));
                }
                if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
                    return Err(ValidationError::new(
                        "discount.currency",
                        "must be an ISO 4217 code such as EUR",
                    ));
                }
                Ok(Some(Discount::Amount { cents, currency }))
            }
            _ => Err(ValidationError::new(
                "discount",
                "give {percent} or {amount_cents, currency}",
            )),
        }
    }
}

impl CodeSpec {
    /// The pattern a request asks for (default: eight alphanumeric characters).
    pub fn from_parts(parts: Option<CodeSpecParts>) -> Result<Self, ValidationError> {
        let p = parts.unwrap_or_default();
        let charset = match (p.charset.as_deref(), p.custom_charset) {
            (Some(_), Some(_)) => {
                return Err(ValidationError::new(
                    "code",
                    "give charset or custom_charset, not both",
                ));
            }
            (_, Some(custom)) if custom.chars().count() > MAX_CUSTOM_CHARSET => {
                return Err(ValidationError::new(
                    "code.custom_charset",
                    format!("must be at most {MAX_CUSTOM_CHARSET} characters"),
                ));
            }
            (_, Some(custom)) => Charset::Custom(custom),
            (Some(name), None) => Charset::parse(name)?,
            (None, None) => Charset::Alphanumeric,
        };
        Self::new(
            p.pattern.as_deref(),
            p.length,
            charset,
            p.prefix.as_deref().unwrap_or(""),
            p.postfix.as_deref().unwrap_or(""),
        )
    }
}

fn per_customer(limit: u32) -> Result<u32, ValidationError> {
    if (1..=MAX_PER_CUSTOMER).contains(&limit) {
        Ok(limit)
    } else {
        Err(ValidationError::new(
            "per_customer_limit",
            "must be 1 to 1000",
        ))
    }
}

fn window(starts_at: DateTime<Utc>, ends_at: DateTime<Utc>) -> Result<(), ValidationError> {
    if ends_at <= starts_at {
        return Err(ValidationError::new("ends_at", "must be after starts_at"));
    }
    Ok(())
}

/// The checkout settings as asked for, once each rule holds: a cap only on a percentage, shared
/// codes not for gift cards, local end of day only with days after claim.
fn checked_promotion(
    kind: CampaignKind,
    discount: &Option<Discount>,
    mut p: Promotion,
) -> Result<Promotion, ValidationError> {
    p.paused_at = None;
    p.rules = p.rules.checked()?;
    if let Some(cap) = p.max_discount_cents {
        if !matches!(discount, Some(Discount::Percent(_))) {
            return Err(ValidationError::new(
                "discount.max_cents",
                "caps a percentage discount only",
            ));
        }
        if cap < 1 {
            return Err(ValidationError::new(
                "discount.max_cents",
                "must be at least 1",
            ));
        }
    }
    if p.budgets.len() > MAX_BUDGETS {
        return Err(ValidationError::new("budgets", "at most 10 budgets"));
    }
    p.budgets = p
        .budgets
        .into_iter()
        .map(|b| b.checked())
        .collect::<Result<_, _>>()?;
    if p.code_mode == CodeMode::Shared && kind == CampaignKind::GiftCard {
        return Err(ValidationError::new(
            "code_mode",
            "a gift card's balance is one holder's: gift cards are unique codes",
        ));
    }
    if p.validity_days_after_claim
        .is_some_and(|d| !(1..=3650).contains(&d))
    {
        return Err(ValidationError::new(
            "validity_days_after_claim",
            "must be 1 to 3650",
        ));
    }
    if p.validity_days_after_claim.is_some() && p.code_mode == CodeMode::Shared {
        return Err(ValidationError::new(
            "validity_days_after_claim",
            "a shared code is never claimed",
        ));
    }
    if p.expire_at_local_end_of_day && p.validity_days_after_claim.is_none() {
        return Err(ValidationError::new(
            "expire_at_local_end_of_day",
            "needs validity_days_after_claim",
        ));
    }
    Ok(p)
}

fn optional_name(
    field: &'static str,
    value: Option<String>,
) -> Result<Option<String>, ValidationError> {
    value
        .map(|v| super::bounded_text(field, &v, MAX_NAME_LEN))
        .transpose()
}

/// The most a code may cost or carry: 1,000,000.00 (an order of many still fits an `i64`).
pub const MAX_MONEY_CENTS: i64 = 100_000_000;

impl Campaign {
    /// A new campaign (a draft until it has codes) from what was asked, once every rule holds.
    pub fn new(spec: CampaignSpec, id: Uuid, now: DateTime<Utc>) -> Result<Self, ValidationError> {
        let name = super::bounded_text("name", &spec.name, MAX_NAME_LEN)?;
        let discount = Discount::from_parts(spec.kind, spec.discount)?;
        let promotion = checked_promotion(spec.kind, &discount, spec.promotion)?;
        let gift_balance_cents = match (spec.kind, spec.gift_balance_cents) {
            (CampaignKind::GiftCard, Some(cents)) if (1..=MAX_MONEY_CENTS).contains(&cents) => {
                Some(cents)
            }
            (CampaignKind::GiftCard, _) => {
                return Err(ValidationError::new(
                    "gift_balance_cents",
                    "a gift card campaign needs a balance of 1 to 100000000 (1,000,000.00)",
                ));
            }
            (_, Some(_)) => {
                return Err(ValidationError::new(
                    "gift_balance_cents",
                    "only gift card campaigns carry a balance",
                ));
            }
            (_, None) => None,
        };
        if spec
            .price_cents
            .is_some_and(|p| !(0..=MAX_MONEY_CENTS).contains(&p))
        {
            return Err(ValidationError::new(
                "price_cents",
                "must be 0 to 100000000 (1,000,000.00)",
            ));
        }
        // A gift card carries money: it is never given for nothing by its price (a manager may
        // still send one as a gift, by a distribution).
        if gift_balance_cents.is_some() && spec.price_cents == Some(0) {
            return Err(ValidationError::new(
                "price_cents",
                "a gift card is sold: give a price of at least 1, or leave it out to sell it at its balance",
            ));
        }
        let code = CodeSpec::from_parts(spec.code)?;
        if !(1..=Self::MAX_POOL).contains(&spec.pool_size) {
            return Err(ValidationError::new("pool_size", "must be 1 to 10000000"));
        }
        if u128::from(spec.pool_size) > code.space() {
            return Err(ValidationError::new(
                "pool_size",
                format!(
                    "the code pattern can make only {} distinct codes; widen the pattern or the charset",
                    code.space()
                ),
            ));
        }
        window(spec.starts_at, spec.ends_at)?;
        let timezone = match spec.timezone.as_deref() {
            Some(tz) => Timezone::parse(tz)?,
            None => Timezone(chrono_tz::UTC),
        };
        Ok(Self {
            v: Self::VERSION,
            id,
            name,
            kind: spec.kind,
            discount,
            gift_balance_cents,
            price_cents: spec.price_cents,
            code,
            pool_size: spec.pool_size,
            starts_at: spec.starts_at,
            ends_at: spec.ends_at,
            timezone,
            per_customer_limit: per_customer(spec.per_customer_limit.unwrap_or(1))?,
            retailer: optional_name("retailer", spec.retailer)?,
            category: optional_name("category", spec.category)?,
            ended_at: None,
            created_at: now,
            updated_at: now,
            promotion,
        })
    }

    /// This campaign paused (`true`) or resumed at `now`; `None` when it has ended (ending is
    /// final: neither applies).
    pub fn pause(&self, paused: bool, now: DateTime<Utc>) -> Option<Self> {
        if self.ended_at.is_some() || now >= self.ends_at {
            return None;
        }
        let mut next = self.clone();
        next.promotion.paused_at = if paused {
            self.promotion.paused_at.or(Some(now))
        } else {
            None
        };
        if next.promotion.paused_at != self.promotion.paused_at {
            next.updated_at = now;
        }
        Some(next)
    }

    /// This campaign with `patch` applied, if the result keeps every rule. Its state is not
    /// the patch's to change: an ended campaign stays ended.
    pub fn apply(
        &self,
        patch: &CampaignPatch,
        now: DateTime<Utc>,
    ) -> Result<Self, ValidationError> {
        let mut next = self.clone();
        if let Some(name) = &patch.name {
            next.name = super::bounded_text("name", name, MAX_NAME_LEN)?;
        }
        next.starts_at = patch.starts_at.unwrap_or(self.starts_at);
        next.ends_at = patch.ends_at.unwrap_or(self.ends_at);
        window(next.starts_at, next.ends_at)?;
        if let Some(n) = patch.per_customer_limit {
            next.per_customer_limit = per_customer(n)?;
        }
        next.updated_at = now;
        Ok(next)
    }

    /// This campaign ended at `now` (or as it was, when it had ended already).
    pub fn end(&self, now: DateTime<Utc>) -> Self {
        let mut ended = self.clone();
        if ended.ended_at.is_none() {
            ended.ended_at = Some(now);
            ended.updated_at = now;
        }
        ended
    }

    /// How many more codes the pool takes when it holds `codes_total`.
    pub fn room(&self, codes_total: u64) -> u64 {
        u64::from(self.pool_size).saturating_sub(codes_total)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CodeStatus {
    Available,
    Claimed,
    Redeemed,
    /// Held for an order waiting for its payment: nobody's to use or see yet.
    Reserved,
}

/// The stored code (`codes` tree, by the code itself: unique across the store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeRecord {
    pub v: u16,
    pub code: String,
    pub campaign_id: Uuid,
    pub status: CodeStatus,
    pub holder: Option<Uuid>,
    #[serde(with = "crate::domain::times::micros_opt")]
    pub claimed_at: Option<DateTime<Utc>>,
    /// What is left on a gift card.
    pub balance_cents: Option<i64>,
    #[serde(with = "crate::domain::times::micros")]
    pub created_at: DateTime<Utc>,
    /// The order that bought it, if it was bought.
    pub order_id: Option<Uuid>,
    /// When it was (last) redeemed.
    #[serde(with = "crate::domain::times::micros_opt")]
    pub redeemed_at: Option<DateTime<Utc>>,
}

impl CodeRecord {
    pub const VERSION: u16 = 1;
}

/// What is set on one code besides its holding (`code_flags` tree, by the code): whether it is
/// disabled, and for a shared code that it is shared and how often it may be used. Only codes
/// with something set have one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeFlags {
    pub v: u16,
    pub campaign_id: Uuid,
    pub disabled: bool,
    pub shared: bool,
    /// A shared code's uses at most (`None`: unlimited).
    pub usage_limit: Option<u64>,
}

impl CodeFlags {
    pub const VERSION: u16 = 1;
}

/// A purchase of codes (`orders` tree, by id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub v: u16,
    pub id: Uuid,
    pub campaign_id: Uuid,
    pub customer: Uuid,
    /// The codes it holds (reserved while unpaid, the customer's once paid; given back when it
    /// expired).
    pub codes: Vec<String>,
    pub amount_cents: i64,
    /// Where the codes may be sent by SMS.
    pub phone: Option<String>,
    #[serde(with = "crate::domain::times::micros")]
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub status: OrderStatus,
    /// An unpaid order's deadline: unpaid then, it expires and its codes go back.
    #[serde(default, with = "crate::domain::times::micros_opt")]
    pub pay_by: Option<DateTime<Utc>>,
    #[serde(default, with = "crate::domain::times::micros_opt")]
    pub paid_at: Option<DateTime<Utc>>,
    /// The shop's reference of the payment (a PSP's transaction id), as confirmed.
    #[serde(default)]
    pub payment_ref: Option<String>,
    #[serde(default, with = "crate::domain::times::micros_opt")]
    pub expired_at: Option<DateTime<Utc>>,
}

/// Where an order stands: waiting for its payment (its codes held, shown to nobody), paid (its
/// codes the customer's; also an order with nothing to pay), or expired unpaid (its codes given
/// back to the pool).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    PendingPayment,
    #[default]
    Paid,
    Expired,
}

impl Order {
    pub const VERSION: u16 = 2;

    /// Whether its deadline has passed unpaid at `now` (expired, or due to be).
    pub fn is_lapsed(&self, now: DateTime<Utc>) -> bool {
        match self.status {
            OrderStatus::Expired => true,
            OrderStatus::PendingPayment => self.pay_by.is_some_and(|t| t <= now),
            OrderStatus::Paid => false,
        }
    }
}

impl Campaign {
    /// What one code costs: its price, or a gift card's balance when it has none (a gift card
    /// carries money and is sold at face value unless priced otherwise); 0 for codes given away.
    pub fn price(&self) -> i64 {
        match (self.price_cents, self.kind) {
            (Some(p), _) if p > 0 => p,
            (_, CampaignKind::GiftCard) => self.gift_balance_cents.unwrap_or(0).max(1),
            _ => 0,
        }
    }

    /// Whether its codes are sold, not given: a price, or a gift card (which carries money).
    /// Such codes are never claimed; a customer's order holds them until it is paid.
    pub fn requires_payment(&self) -> bool {
        self.price() > 0
    }
}

/// A redemption of a code against an order (`redemptions` tree, by id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Redemption {
    pub v: u16,
    pub id: Uuid,
    pub code: String,
    pub campaign_id: Uuid,
    pub customer: Option<Uuid>,
    pub order_amount_cents: Option<i64>,
    /// What the code took off the order (for a gift card: what it drew from the balance).
    pub discount_cents: i64,
    /// A gift card's balance after it.
    pub balance_cents: Option<i64>,
    #[serde(with = "crate::domain::times::micros")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::domain::times::micros_opt")]
    pub rolled_back_at: Option<DateTime<Utc>>,
    /// The shop's reference of the buyer, when they have no account here.
    #[serde(default)]
    pub customer_ref: Option<String>,
    /// The order's currency, when it was given.
    #[serde(default)]
    pub currency: Option<String>,
    /// What it took off each line of the order (line index, minor units).
    #[serde(default)]
    pub lines: Vec<(u32, i64)>,
    /// A use of a shared code (counted against its usage limit while it stands).
    #[serde(default)]
    pub shared: bool,
}

impl Redemption {
    pub const VERSION: u16 = 2;

    /// Who redeemed, as the per-customer counts and budgets know them: the user it counted for
    /// (a unique code's holder; a shared code's customer, also one the shop named by their
    /// email), else the shop's reference.
    pub fn customer_key(&self) -> Option<super::promotion::Customer> {
        use super::promotion::Customer;
        match (self.customer, &self.customer_ref) {
            (Some(u), _) => Some(Customer::User(u)),
            (None, Some(r)) => Some(Customer::Ref(r.clone())),
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn campaign(discount: Option<Discount>) -> Campaign {
        let now = Utc::now();
        Campaign {
            v: 1,
            id: Uuid::now_v7(),
            name: "c".into(),
            kind: CampaignKind::Discount,
            discount,
            gift_balance_cents: None,
            price_cents: None,
            code: CodeSpec::new(None, Some(8), Charset::Upper, "", "").unwrap(),
            pool_size: 10,
            starts_at: now - chrono::Duration::days(1),
            ends_at: now + chrono::Duration::days(1),
            timezone: Timezone(chrono_tz::UTC),
            per_customer_limit: 1,
            retailer: None,
            category: None,
            ended_at: None,
            created_at: now,
            updated_at: now,
            promotion: Default::default(),
        }
    }

    #[test]
    fn the_space_of_a_pattern_counts_its_random_slots() {
        let spec = CodeSpec::new(Some("SALE-####"), None, Charset::Numbers, "", "").unwrap();
        assert_eq!(spec.space(), 10_000);
        let wide = CodeSpec::new(None, Some(32), Charset::Alphanumeric, "", "").unwrap();
        assert_eq!(wide.space(), u128::MAX, "62^32 saturates");
        assert!(CodeSpec::new(Some("SALE"), None, Charset::Numbers, "", "").is_err());
        assert!(CodeSpec::new(None, Some(8), Charset::Custom("a".into()), "", "").is_err());
        assert!(CodeSpec::new(None, Some(8), Charset::Custom("a b".into()), "", "").is_err());
        // A generated code is a cell of an export too: no separators.
        assert!(CodeSpec::new(None, Some(8), Charset::Custom("ab,".into()), "", "").is_err());
        assert!(CodeSpec::new(None, Some(8), Charset::Upper, "A;", "").is_err());
        assert!(CodeSpec::new(None, Some(8), Charset::Upper, "", "\"").is_err());
        assert!(CodeSpec::new(None, Some(60), Charset::Upper, "XMAS-", "").is_err());
        // Codes compare regardless of ASCII case: `aA` is one character, `aAb` two.
        assert!(CodeSpec::new(None, Some(8), Charset::Custom("aA".into()), "", "").is_err());
        let two = CodeSpec::new(Some("##"), None, Charset::Custom("aAb".into()), "", "").unwrap();
        assert_eq!(two.space(), 4);
        assert!(CodeSpec::new(None, Some(8), Charset::Upper, "X\u{200B}", "").is_err());
    }

    #[test]
    fn codes_hide_nothing() {
        for bad in [
            "SUMMER10\u{200b}",
            "\u{feff}SUMMER10",
            "SUM\u{202e}01",
            "SUMMER\u{00ad}10",
            "",
        ] {
            let e = check_code(bad).unwrap_err();
            assert!(
                !e.message.contains('\u{200b}'),
                "the message shows it escaped: {}",
                e.message
            );
        }
        assert!(check_code("SUMMER10").is_ok());
        assert_eq!(code_key("summer10"), "SUMMER10");
    }

    proptest! {
        #[test]
        fn generated_codes_follow_their_pattern(
            pattern in "[A-Z-]{0,6}#{1,8}[A-Z-]{0,6}",
            custom in "[a-f0-9]{2,16}",
            prefix in "[A-Z]{0,4}",
            postfix in "[0-9]{0,4}",
            charset in 0usize..6,
        ) {
            let charset = match charset {
                0 => Charset::Alphanumeric,
                1 => Charset::Alphabetic,
                2 => Charset::Numbers,
                3 => Charset::Upper,
                4 => Charset::Lower,
                _ => Charset::Custom(custom),
            };
            let spec = CodeSpec::new(Some(&pattern), None, charset.clone(), &prefix, &postfix);
            let Ok(spec) = spec else {
                // Only a charset of fewer than two distinct characters is refused here.
                prop_assert!(distinct_letters(&charset.chars()) < 2);
                return Ok(());
            };
            let allowed = charset.chars();
            let code = spec.generate(&mut rand::rng());
            prop_assert!(code.starts_with(&prefix) && code.ends_with(&postfix));
            let middle: Vec<char> = code[prefix.len()..code.len() - postfix.len()].chars().collect();
            let shape: Vec<char> = pattern.chars().collect();
            prop_assert_eq!(middle.len(), shape.len());
            for (got, want) in middle.iter().zip(&shape) {
                if *want == '#' {
                    prop_assert!(allowed.contains(got), "{} not in the charset", got);
                } else {
                    prop_assert_eq!(got, want);
                }
            }
            prop_assert!(check_code(&code).is_ok());
        }
    }

    fn spec(pool_size: u32, pattern: &str) -> CampaignSpec {
        let now = Utc::now();
        CampaignSpec {
            name: " Summer ".into(),
            kind: CampaignKind::FlashSale,
            discount: None,
            gift_balance_cents: None,
            price_cents: Some(500),
            code: Some(CodeSpecParts {
                pattern: Some(pattern.into()),
                charset: Some("numbers".into()),
                ..CodeSpecParts::default()
            }),
            pool_size,
            starts_at: now,
            ends_at: now + chrono::Duration::hours(1),
            timezone: None,
            per_customer_limit: None,
            retailer: None,
            category: None,
            promotion: Promotion::default(),
        }
    }

    #[test]
    fn checkout_settings_that_contradict_each_other_are_refused() {
        let now = Utc::now();
        let with = |f: &dyn Fn(&mut CampaignSpec)| {
            let mut s = spec(100, "S-##");
            f(&mut s);
            Campaign::new(s, Uuid::now_v7(), now)
        };
        let field = |r: Result<Campaign, ValidationError>| r.unwrap_err().field;
        // A cap on something that is not a percentage.
        assert_eq!(
            field(with(&|s| s.promotion.max_discount_cents = Some(100))),
            "discount.max_cents"
        );
        assert_eq!(
            field(with(&|s| {
                s.kind = CampaignKind::GiftCard;
                s.gift_balance_cents = Some(100);
                s.promotion.code_mode = CodeMode::Shared;
            })),
            "code_mode"
        );
        assert_eq!(
            field(with(&|s| s.promotion.expire_at_local_end_of_day = true)),
            "expire_at_local_end_of_day"
        );
        assert_eq!(
            field(with(&|s| s.promotion.validity_days_after_claim = Some(0))),
            "validity_days_after_claim"
        );
        let ok = with(&|s| {
            s.promotion.paused_at = Some(now);
            s.discount = Some(DiscountParts {
                percent: Some(10),
                ..Default::default()
            });
            s.promotion.max_discount_cents = Some(2000);
        })
        .unwrap();
        assert_eq!(ok.promotion.paused_at, None, "born unpaused");
        // Paused and resumed, never once ended.
        let now = ok.starts_at + chrono::Duration::minutes(1);
        let paused = ok.pause(true, now).unwrap();
        assert_eq!(paused.status(1, now), CampaignStatus::Paused);
        assert_eq!(
            paused.may_hand_out(now, 0, 1, 5),
            Err(Refusal::NotActive("the campaign is paused"))
        );
        let resumed = paused.pause(false, now).unwrap();
        assert_eq!(resumed.status(1, now), CampaignStatus::Active);
        assert!(resumed.end(now).pause(false, now).is_none());
    }

    #[test]
    fn a_new_campaign_keeps_its_rules() {
        let now = Utc::now();
        let c = Campaign::new(spec(100, "S-##"), Uuid::now_v7(), now).unwrap();
        assert_eq!((c.name.as_str(), c.per_customer_limit), ("Summer", 1));
        assert_eq!(c.timezone, Timezone(chrono_tz::UTC));
        let too_big = Campaign::new(spec(101, "S-##"), Uuid::now_v7(), now).unwrap_err();
        assert_eq!(too_big.field, "pool_size");
        let mut gift = spec(10, "##");
        gift.kind = CampaignKind::GiftCard;
        assert_eq!(
            Campaign::new(gift, Uuid::now_v7(), now).unwrap_err().field,
            "gift_balance_cents"
        );
        let mut backwards = spec(10, "##");
        backwards.ends_at = backwards.starts_at;
        assert_eq!(
            Campaign::new(backwards, Uuid::now_v7(), now)
                .unwrap_err()
                .field,
            "ends_at"
        );
    }

    proptest! {
        /// Codes go out only while the campaign is open, never past the customer's limit and
        /// never more than are left; and whenever all three hold, they go out.
        #[test]
        fn codes_go_out_only_within_the_window_the_limit_and_the_pool(
            ended in any::<bool>(),
            start in -100i64..100,
            length in 1i64..200,
            limit in 0u32..20,
            held in 0u32..25,
            n in 1u32..5,
            available in 0u64..10,
        ) {
            let now = Utc::now();
            let mut c = campaign(None);
            c.starts_at = now + chrono::Duration::seconds(start);
            c.ends_at = c.starts_at + chrono::Duration::seconds(length);
            c.per_customer_limit = limit;
            if ended {
                c = c.end(now);
            }
            let answer = c.may_hand_out(now, held, n, available);
            let open = c.is_open(now);
            let allowed = open && held + n <= limit && available >= u64::from(n);
            prop_assert_eq!(answer.is_ok(), allowed);
            match answer {
                Err(Refusal::NotActive(_)) => prop_assert!(!open),
                Err(Refusal::LimitReached(l)) => prop_assert!(open && l == limit && held + n > limit),
                Err(Refusal::SoldOut) => {
                    prop_assert!(open && held + n <= limit && available < u64::from(n));
                }
                Err(Refusal::NoCustomer) => prop_assert!(false, "the rule knows no customers"),
                Ok(()) => {}
            }
        }
    }

    proptest! {
        /// Whatever a patch holds, an ended campaign stays ended, the window stays ordered and
        /// the limit in range; a refused patch changes nothing (it returns an error, not a value).
        #[test]
        fn a_patch_never_reopens_an_ended_campaign(
            ended in any::<bool>(),
            start in -1000i64..1000,
            end in -1000i64..1000,
            limit in proptest::option::of(0u32..2000),
            name in proptest::option::of("[ a-z]{0,8}"),
        ) {
            let now = Utc::now();
            let mut c = campaign(None);
            if ended {
                c = c.end(now);
            }
            let patch = CampaignPatch {
                name,
                starts_at: Some(now + chrono::Duration::minutes(start)),
                ends_at: Some(now + chrono::Duration::minutes(end)),
                per_customer_limit: limit,
            };
            if let Ok(next) = c.apply(&patch, now) {
                prop_assert_eq!(next.ended_at, c.ended_at);
                prop_assert!(next.starts_at < next.ends_at);
                prop_assert!((1..=MAX_PER_CUSTOMER).contains(&next.per_customer_limit));
                prop_assert_eq!(next.id, c.id);
                prop_assert_eq!(next.pool_size, c.pool_size);
                if ended {
                    prop_assert_eq!(next.status(1, now), CampaignStatus::Ended);
                }
            }
            let twice = c.end(now).end(now + chrono::Duration::minutes(5));
            prop_assert_eq!(twice.ended_at, c.ended_at.or(Some(now)));
        }
    }
}
