//! `/api/v1/campaigns`: campaigns (manager), their codes (generated or imported, listed, exported
//! as CSV) and claims (a customer for themselves, a manager for a customer). Claims, code
//! additions and changes go through the campaign's actor, which hands each code out once.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, Problem};
use super::pagination::limit;
use crate::domain::auth::Principal;
use crate::domain::campaign::{
    Campaign, CampaignKind, CampaignPatch as Patch, CampaignSpec, CampaignStatus, CodeRecord,
    CodeSpecParts, CodeStatus, Discount, DiscountParts,
};
use crate::domain::checkout::code_expires_at;
use crate::domain::promotion::{
    Budget, CodeMode, Measure, Per, Period, Promotion, Rules, Scope, Weekday,
};
use crate::domain::user::Role;
use crate::service::campaigns::{self as use_case, NewCodes as Adding};
use crate::service::customers::acting_for;
use crate::store::codes::Listed;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    // Claims first: the hot path of a drop (see `http::routes`).
    cfg.service(claim)
        .service(create)
        .service(list)
        .service(get_campaign)
        .service(update)
        .service(end)
        .service(pause)
        .service(resume)
        // A CSV body goes to its own handler (same path; described with the JSON one).
        .map(|c| c.service(add_codes_csv))
        .service(add_codes)
        .service(list_codes)
        .service(preview_codes);
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscountBody {
    /// 1 to 100: a share of the order.
    #[schema(minimum = 1, maximum = 100)]
    #[serde(default, deserialize_with = "super::json::whole_opt")]
    pub percent: Option<u8>,
    /// A fixed amount in minor units (with `currency`).
    #[schema(minimum = 1)]
    #[serde(default, deserialize_with = "super::json::whole_opt")]
    pub amount_cents: Option<i64>,
    /// ISO 4217 (three capital letters).
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    /// The most a percentage takes off one order, minor units.
    #[schema(minimum = 1, maximum = 10_000_000_000_i64)]
    #[serde(default, deserialize_with = "super::json::whole_opt")]
    pub max_cents: Option<i64>,
}

/// Values a line must have (`include`, when not empty) and must not have (`exclude`);
/// compared case-blind.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeBody {
    #[serde(default)]
    #[schema(max_items = 100, value_type = Vec<ScopeText>)]
    pub include: Vec<String>,
    #[serde(default)]
    #[schema(max_items = 100, value_type = Vec<ScopeText>)]
    pub exclude: Vec<String>,
}

/// One SKU, retailer or category: 1 to 200 characters.
#[derive(ToSchema)]
#[schema(
    min_length = 1,
    max_length = 200,
    pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*[^\\s\\u0000-\\u001F\\u007F-\\u009F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF][^\\u0000-\\u001F\\u007F-\\u009F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*$"
)]
pub struct ScopeText(#[allow(dead_code)] String);

impl From<ScopeBody> for Scope {
    fn from(b: ScopeBody) -> Self {
        Scope {
            include: b.include,
            exclude: b.exclude,
        }
    }
}

/// Conditions on the order, all of which must hold. `skus`, `retailers` and `categories` also
/// limit the discount to the lines they admit.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesBody {
    #[schema(minimum = 0, maximum = 10_000_000_000_i64)]
    #[serde(default, deserialize_with = "super::json::whole_opt")]
    pub min_order_cents: Option<i64>,
    /// Items (the sum of quantities) the order must have.
    #[schema(minimum = 0, maximum = 1_000_000)]
    #[serde(default, deserialize_with = "super::json::whole_opt")]
    pub min_items: Option<u32>,
    /// The order's currency must be this one.
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    #[serde(default)]
    pub skus: ScopeBody,
    #[serde(default)]
    pub retailers: ScopeBody,
    #[serde(default)]
    pub categories: ScopeBody,
    /// Weekdays (campaign's timezone) when codes apply; empty: every day.
    #[serde(default)]
    #[schema(max_items = 7)]
    pub weekdays: Vec<Weekday>,
    /// Hours 0–23 (campaign's timezone) when codes apply; empty: every hour.
    #[serde(default)]
    #[schema(max_items = 24, value_type = Vec<HourOfDay>)]
    pub hours: Vec<u8>,
}

/// An hour of the day, 0 to 23.
#[derive(ToSchema)]
#[schema(minimum = 0, maximum = 23)]
pub struct HourOfDay(#[allow(dead_code)] u8);

impl From<RulesBody> for Rules {
    fn from(b: RulesBody) -> Self {
        Rules {
            min_order_cents: b.min_order_cents,
            min_items: b.min_items,
            currency: b.currency,
            skus: b.skus.into(),
            retailers: b.retailers.into(),
            categories: b.categories.into(),
            weekdays: b.weekdays,
            hours: b.hours,
        }
    }
}

/// A ceiling on what the campaign gives per period (in its timezone), for the campaign or for
/// each customer: redemptions past it answer 409 `budget_exhausted`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetBody {
    pub measure: Measure,
    #[schema(minimum = 1, maximum = 10_000_000_000_i64)]
    #[serde(deserialize_with = "super::json::whole")]
    pub limit: i64,
    #[serde(default = "total")]
    pub period: Period,
    #[serde(default = "per_campaign")]
    pub per: Per,
}

impl From<&Rules> for RulesBody {
    fn from(r: &Rules) -> Self {
        let scope = |s: &Scope| ScopeBody {
            include: s.include.clone(),
            exclude: s.exclude.clone(),
        };
        RulesBody {
            min_order_cents: r.min_order_cents,
            min_items: r.min_items,
            currency: r.currency.clone(),
            skus: scope(&r.skus),
            retailers: scope(&r.retailers),
            categories: scope(&r.categories),
            weekdays: r.weekdays.clone(),
            hours: r.hours.clone(),
        }
    }
}

/// A budget and what its current period holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct BudgetView {
    pub measure: Measure,
    pub limit: i64,
    pub period: Period,
    pub per: Per,
    /// Used in the current period (for a per-customer budget: by all customers together).
    pub used: i64,
}

fn total() -> Period {
    Period::Total
}

fn per_campaign() -> Per {
    Per::Campaign
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeSpecBody {
    /// `#` for each random character, anything else as is (default: `length` random characters).
    #[schema(min_length = 1, max_length = 64)]
    pub pattern: Option<String>,
    /// alphanumeric (default), alphabetic, numbers, upper or lower.
    pub charset: Option<String>,
    /// Draw from these characters instead of a named charset.
    #[schema(min_length = 2, max_length = 256)]
    pub custom_charset: Option<String>,
    #[schema(max_length = 32)]
    pub prefix: Option<String>,
    #[schema(max_length = 32)]
    pub postfix: Option<String>,
    /// Random characters when there is no pattern (1 to 32, default 8).
    #[schema(minimum = 1, maximum = 32)]
    #[serde(default, deserialize_with = "super::json::whole_opt")]
    pub length: Option<u32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCampaign {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    pub kind: CampaignKind,
    /// `{percent}` or `{amount_cents, currency}` (discount and flash_sale campaigns).
    pub discount: Option<DiscountBody>,
    /// What each gift card holds (gift_card campaigns).
    #[schema(minimum = 1, maximum = 100_000_000)]
    #[serde(default, deserialize_with = "super::json::whole_opt")]
    pub gift_balance_cents: Option<i64>,
    /// What one code costs in an order (a gift card: at least 1; without one, its balance).
    #[schema(minimum = 0, maximum = 100_000_000)]
    #[serde(default, deserialize_with = "super::json::whole_opt")]
    pub price_cents: Option<i64>,
    pub code: Option<CodeSpecBody>,
    /// How many codes the campaign may hold (1 to 10,000,000).
    #[schema(minimum = 1, maximum = 10_000_000)]
    #[serde(deserialize_with = "super::json::whole")]
    pub pool_size: u32,
    pub starts_at: DateTime<Utc>,
    /// After `starts_at`.
    pub ends_at: DateTime<Utc>,
    /// IANA name (default UTC): the campaign's days in reports.
    pub timezone: Option<String>,
    /// Codes one customer may hold (default 1).
    #[schema(minimum = 1, maximum = 1000)]
    #[serde(default, deserialize_with = "super::json::whole_opt")]
    pub per_customer_limit: Option<u32>,
    #[schema(max_length = 200)]
    pub retailer: Option<String>,
    #[schema(max_length = 200)]
    pub category: Option<String>,
    /// `unique` (default: each code held by one customer, used once) or `shared` (a code such
    /// as SUMMER10 typed by anyone, redeemed without a claim, up to its `usage_limit`;
    /// `per_customer_limit` then counts each customer's redemptions).
    #[serde(default)]
    pub code_mode: CodeMode,
    #[serde(default)]
    pub rules: Option<RulesBody>,
    #[serde(default)]
    #[schema(max_items = 10)]
    pub budgets: Vec<BudgetBody>,
    /// A claimed code expires this many days after its claim (or at the campaign's end, if
    /// sooner). Unique codes only.
    #[schema(minimum = 1, maximum = 3650)]
    #[serde(default, deserialize_with = "super::json::whole_opt")]
    pub validity_days_after_claim: Option<u32>,
    /// With `validity_days_after_claim`: valid until midnight of that day in the holder's own
    /// timezone.
    #[serde(default)]
    pub expire_at_local_end_of_day: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignPatch {
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    #[schema(minimum = 1, maximum = 1000)]
    #[serde(default, deserialize_with = "super::json::whole_opt")]
    pub per_customer_limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DiscountView {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default, deserialize_with = "super::json::whole_opt")]
    pub percent: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default, deserialize_with = "super::json::whole_opt")]
    pub amount_cents: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_cents: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignView {
    pub id: Uuid,
    pub name: String,
    pub kind: CampaignKind,
    pub status: CampaignStatus,
    pub discount: Option<DiscountView>,
    #[serde(default, deserialize_with = "super::json::whole_opt")]
    pub gift_balance_cents: Option<i64>,
    /// What one code costs (a gift card without a price of its own: its balance); absent for
    /// codes given away.
    #[serde(default, deserialize_with = "super::json::whole_opt")]
    pub price_cents: Option<i64>,
    /// The generation pattern, `#` for each random character.
    pub code_pattern: String,
    #[serde(deserialize_with = "super::json::whole")]
    pub pool_size: u32,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub timezone: String,
    pub per_customer_limit: u32,
    pub retailer: Option<String>,
    pub category: Option<String>,
    pub codes_total: u64,
    pub claimed: u64,
    pub redeemed: u64,
    /// Held for orders waiting for their payment (neither available nor claimed).
    pub reserved: u64,
    /// What may still be handed out: neither claimed, reserved nor disabled.
    pub available: u64,
    pub code_mode: CodeMode,
    /// Standing redemptions (for a shared campaign, its uses).
    pub redemptions: u64,
    pub rules: RulesBody,
    pub budgets: Vec<BudgetView>,
    pub validity_days_after_claim: Option<u32>,
    pub expire_at_local_end_of_day: bool,
    pub paused_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignPage {
    pub items: Vec<CampaignView>,
    pub next_cursor: Option<String>,
}

fn view(state: &AppState, c: &Campaign) -> CampaignView {
    let counts = state.store.codes().counts(c.id);
    CampaignView {
        id: c.id,
        name: c.name.clone(),
        kind: c.kind,
        status: c.status(counts.total, state.clock.now()),
        discount: c.discount.as_ref().map(|d| match d {
            Discount::Percent(p) => DiscountView {
                percent: Some(*p),
                amount_cents: None,
                currency: None,
                max_cents: c.promotion.max_discount_cents,
            },
            Discount::Amount { cents, currency } => DiscountView {
                percent: None,
                amount_cents: Some(*cents),
                currency: Some(currency.clone()),
                max_cents: None,
            },
        }),
        gift_balance_cents: c.gift_balance_cents,
        price_cents: (c.price() > 0).then(|| c.price()),
        code_pattern: format!("{}{}{}", c.code.prefix, c.code.pattern, c.code.postfix),
        pool_size: c.pool_size,
        starts_at: c.starts_at,
        ends_at: c.ends_at,
        ended_at: c.ended_at,
        timezone: c.timezone.to_string(),
        per_customer_limit: c.per_customer_limit,
        retailer: c.retailer.clone(),
        category: c.category.clone(),
        codes_total: counts.total,
        claimed: counts.claimed,
        redeemed: counts.redeemed,
        reserved: counts.reserved,
        available: counts.available,
        code_mode: c.promotion.code_mode,
        redemptions: state.store.orders().redemption_tally(c.id).count,
        rules: RulesBody::from(&c.promotion.rules),
        budgets: state
            .store
            .orders()
            .budget_use(c, state.clock.now())
            .into_iter()
            .map(|u| BudgetView {
                measure: u.budget.measure,
                limit: u.budget.limit,
                period: u.budget.period,
                per: u.budget.per,
                used: u.used,
            })
            .collect(),
        validity_days_after_claim: c.promotion.validity_days_after_claim,
        expire_at_local_end_of_day: c.promotion.expire_at_local_end_of_day,
        paused_at: c.promotion.paused_at,
        created_at: c.created_at,
        updated_at: c.updated_at,
    }
}

impl From<CodeSpecBody> for CodeSpecParts {
    fn from(c: CodeSpecBody) -> Self {
        CodeSpecParts {
            pattern: c.pattern,
            charset: c.charset,
            custom_charset: c.custom_charset,
            prefix: c.prefix,
            postfix: c.postfix,
            length: c.length,
        }
    }
}

impl From<NewCampaign> for CampaignSpec {
    fn from(b: NewCampaign) -> Self {
        let max_discount_cents = b.discount.as_ref().and_then(|d| d.max_cents);
        let promotion = Promotion {
            code_mode: b.code_mode,
            rules: b.rules.map(Rules::from).unwrap_or_default(),
            max_discount_cents,
            budgets: b
                .budgets
                .into_iter()
                .map(|x| Budget {
                    measure: x.measure,
                    limit: x.limit,
                    period: x.period,
                    per: x.per,
                })
                .collect(),
            validity_days_after_claim: b.validity_days_after_claim,
            expire_at_local_end_of_day: b.expire_at_local_end_of_day,
            paused_at: None,
        };
        Self {
            promotion,
            name: b.name,
            kind: b.kind,
            discount: b.discount.map(|d| DiscountParts {
                percent: d.percent,
                amount_cents: d.amount_cents,
                currency: d.currency,
            }),
            gift_balance_cents: b.gift_balance_cents,
            price_cents: b.price_cents,
            code: b.code.map(CodeSpecParts::from),
            pool_size: b.pool_size,
            starts_at: b.starts_at,
            ends_at: b.ends_at,
            timezone: b.timezone,
            per_customer_limit: b.per_customer_limit,
            retailer: b.retailer,
            category: b.category,
        }
    }
}

/// Create a campaign (manager). It is a draft until it has codes.
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), request_body = NewCampaign, responses((status = 201, body = CampaignView), (status = 422, body = Problem)))]
#[post("/campaigns")]
async fn create(
    state: web::Data<AppState>,
    who: Principal,
    body: web::Json<NewCampaign>,
) -> Result<HttpResponse, ApiError> {
    who.require(Role::Manager)?;
    let campaign = use_case::create(&state.services, body.into_inner().into()).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/campaigns/{}", campaign.id)))
        .json(view(&state, &campaign)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CampaignQuery {
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
}

/// Campaigns, oldest first (manager).
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), params(CampaignQuery), responses((status = 200, body = CampaignPage)))]
#[get("/campaigns")]
async fn list(
    state: web::Data<AppState>,
    who: Principal,
    query: web::Query<CampaignQuery>,
) -> Result<web::Json<CampaignPage>, ApiError> {
    who.require(Role::Manager)?;
    let limit = limit(query.limit)?;
    let after = query.cursor;
    let campaigns = state
        .store
        .run(move |s| s.campaigns().list(after, limit))
        .await?;
    let next_cursor = (campaigns.len() == limit)
        .then(|| campaigns.last().map(|c| c.id.to_string()))
        .flatten();
    Ok(web::Json(CampaignPage {
        items: campaigns.iter().map(|c| view(&state, c)).collect(),
        next_cursor,
    }))
}

/// One campaign with its counters (manager).
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), params(("id" = Uuid, Path, description = "campaign id")), responses((status = 200, body = CampaignView)))]
#[get("/campaigns/{id}")]
async fn get_campaign(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
) -> Result<web::Json<CampaignView>, ApiError> {
    who.require(Role::Manager)?;
    let campaign = use_case::get(&state.services, id.into_inner())?;
    Ok(web::Json(view(&state, &campaign)))
}

/// Change a campaign's name, window or per-customer limit (manager). Claims after the answer
/// follow the change.
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), params(("id" = Uuid, Path, description = "campaign id")), request_body = CampaignPatch, responses((status = 200, body = CampaignView)))]
#[patch("/campaigns/{id}")]
async fn update(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
    body: web::Json<CampaignPatch>,
) -> Result<web::Json<CampaignView>, ApiError> {
    who.require(Role::Manager)?;
    let b = body.into_inner();
    let patch = Patch {
        name: b.name,
        starts_at: b.starts_at,
        ends_at: b.ends_at,
        per_customer_limit: b.per_customer_limit,
    };
    let campaign = use_case::update(&state.services, id.into_inner(), patch).await?;
    Ok(web::Json(view(&state, &campaign)))
}

/// End a campaign now: its remaining codes can no longer be claimed (manager).
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), params(("id" = Uuid, Path, description = "campaign id")), responses((status = 200, body = CampaignView)))]
#[post("/campaigns/{id}/end")]
async fn end(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
) -> Result<web::Json<CampaignView>, ApiError> {
    who.require(Role::Manager)?;
    let campaign = use_case::end(&state.services, id.into_inner()).await?;
    Ok(web::Json(view(&state, &campaign)))
}

/// Pause a campaign (manager): nothing is claimed, ordered, distributed or redeemed until it
/// is resumed (its answers say `paused`). 409 once it has ended.
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), params(("id" = Uuid, Path, description = "campaign id")), responses((status = 200, body = CampaignView), (status = 404, body = Problem), (status = 409, body = Problem)))]
#[post("/campaigns/{id}/pause")]
async fn pause(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
) -> Result<web::Json<CampaignView>, ApiError> {
    who.require(Role::Manager)?;
    let campaign = use_case::pause(&state.services, id.into_inner(), true).await?;
    Ok(web::Json(view(&state, &campaign)))
}

/// Resume a paused campaign (manager). 409 once it has ended: `end` is final.
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), params(("id" = Uuid, Path, description = "campaign id")), responses((status = 200, body = CampaignView), (status = 404, body = Problem), (status = 409, body = Problem)))]
#[post("/campaigns/{id}/resume")]
async fn resume(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
) -> Result<web::Json<CampaignView>, ApiError> {
    who.require(Role::Manager)?;
    let campaign = use_case::pause(&state.services, id.into_inner(), false).await?;
    Ok(web::Json(view(&state, &campaign)))
}

/// `{count}` to generate, or `{codes}` to import: exactly one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1, max_properties = 2)]
pub struct NewCodes {
    /// Codes to generate from the campaign's pattern.
    #[serde(default, deserialize_with = "super::json::some_whole")]
    #[schema(minimum = 1, maximum = 1_000_000, nullable = false)]
    pub count: Option<u32>,
    /// Codes to import as given (1 to 64 characters, no spaces, control characters or CSV
    /// separators `,` `;` `"`), at most 20,000 a request, all stored or none.
    #[schema(min_items = 1, max_items = 20_000, nullable = false, value_type = Option<Vec<super::views::CodeText>>)]
    #[serde(default, deserialize_with = "super::json::some")]
    pub codes: Option<Vec<String>>,
    /// A shared campaign's codes: how often each may be redeemed (absent: unlimited).
    #[serde(default, deserialize_with = "super::json::some_whole")]
    #[schema(minimum = 1, nullable = false)]
    pub usage_limit: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CodesAdded {
    pub added: usize,
    pub codes_total: u64,
}

/// Generate or import codes (manager): unique across the whole store, never more than the
/// campaign's `pool_size`. An import naming a taken code (or one twice) adds nothing and lists
/// them (409).
///
/// With `Content-Type: text/csv` the body is a file of codes, streamed: an optional header line
/// `code`, then one code a line (1 to 64 characters, no spaces, control characters, `,` `;` or
/// `"`), up to 1,000,000 codes; `?usage_limit=` for a shared campaign's codes. Every line is
/// checked (a bad one is named, 422) and every code looked up (taken ones listed, 409) before
/// any is written; they are then written 20,000 at a time.
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), params(("id" = Uuid, Path, description = "campaign id"), CsvImportQuery), request_body(content((NewCodes = "application/json"), (CodesCsv = "text/csv"))), responses((status = 201, body = CodesAdded), (status = 409, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)))]
#[post("/campaigns/{id}/codes")]
async fn add_codes(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
    query: web::Query<CsvImportQuery>,
    body: web::Json<NewCodes>,
) -> Result<HttpResponse, ApiError> {
    who.require(Role::Manager)?;
    let id = id.into_inner();
    let body = body.into_inner();
    // The query's usage limit (the CSV body's way of giving it) is read here too; the body's
    // own wins.
    let usage_limit = body.usage_limit.or(query.usage_limit);
    let adding = match body {
        NewCodes {
            count: Some(count),
            codes: None,
            ..
        } => Adding::Generate(count),
        NewCodes {
            count: None,
            codes: Some(codes),
            ..
        } => Adding::Import(codes),
        _ => {
            return Err(ApiError::Invalid(
                "count: give count (generate) or codes (import)".into(),
            ));
        }
    };
    let added = use_case::add_codes(&state.services, id, adding, usage_limit).await?;
    Ok(HttpResponse::Created().json(CodesAdded {
        added,
        codes_total: state.store.codes().counts(id).total,
    }))
}

/// A CSV file of codes: an optional header line `code`, then one code a line.
pub struct CodesCsv;

impl utoipa::PartialSchema for CodesCsv {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        const CODE: &str = "[^\\s\\u0000-\\u001F\\u007F-\\u009F,;\"]{1,64}";
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(format!(
                "^(code\\r?\\n)?{CODE}(\\r?\\n{CODE})*(\\r?\\n)?$"
            )))
            .max_length(Some(MAX_CSV_BYTES))
            .into()
    }
}

impl ToSchema for CodesCsv {}

/// CSV imports one server runs at once (each holds its file and codes in memory).
pub const CONCURRENT_CSV_IMPORTS: usize = 2;

/// The largest CSV import: a million codes of up to 64 characters, with line ends.
pub const MAX_CSV_BYTES: usize = 66 * 1_000_000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CsvImportQuery {
    /// For a shared campaign's codes: how often each may be redeemed (with a JSON body, the
    /// body's `usage_limit` may say it instead).
    #[param(minimum = 1)]
    pub usage_limit: Option<u64>,
}

fn is_csv(ctx: &actix_web::guard::GuardContext<'_>) -> bool {
    ctx.head()
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/csv"))
}

/// The codes of a CSV body: a byte-order mark skipped, an optional `code` header, then one valid
/// code a line (a final line end optional, no empty lines). A bad line is named.
pub fn codes_of_csv(body: &[u8]) -> Result<Vec<String>, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::Invalid("codes: the file is not UTF-8 text".into()))?;
    // Spreadsheets save UTF-8 with a byte-order mark: it is no part of the first code.
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut codes = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        // `code` (in any case: codes are) first, with codes after it, is the header; alone, it
        // is a code.
        if i == 0 && line.trim().eq_ignore_ascii_case("code") && lines.len() > 1 {
            continue;
        }
        crate::domain::campaign::check_code(line)
            .map_err(|e| ApiError::Invalid(format!("codes: line {}: {}", i + 1, e.message)))?;
        codes.push((*line).to_owned());
    }
    if codes.is_empty() {
        return Err(ApiError::Invalid("codes: the file holds no code".into()));
    }
    Ok(codes)
}

/// Import codes from a CSV body (manager), streamed: see `add_codes`.
#[post("/campaigns/{id}/codes", guard = "is_csv")]
async fn add_codes_csv(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
    query: web::Query<CsvImportQuery>,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    use futures_util::StreamExt as _;
    who.require(Role::Manager)?;
    let id = id.into_inner();
    // The campaign first: an unknown one reads no body.
    use_case::get(&state.services, id)?;
    let _import = state
        .csv_imports
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::Overloaded)?;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            super::error::timed_out(&e)
                .unwrap_or_else(|| ApiError::BadRequest(format!("unreadable body: {e}")))
        })?;
        if body.len() + chunk.len() > MAX_CSV_BYTES {
            return Err(ApiError::PayloadTooLarge {
                limit: MAX_CSV_BYTES,
            });
        }
        body.extend_from_slice(&chunk);
    }
    // Up to a million lines: read off the async threads.
    let codes = web::block(move || codes_of_csv(&body))
        .await
        .map_err(ApiError::internal)??;
    let added = use_case::add_codes(
        &state.services,
        id,
        Adding::ImportFile(codes),
        query.usage_limit,
    )
    .await?;
    Ok(HttpResponse::Created().json(CodesAdded {
        added,
        codes_total: state.store.codes().counts(id).total,
    }))
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CodeFilter {
    Available,
    /// Held for orders waiting for their payment.
    Reserved,
    Claimed,
    Redeemed,
    Expired,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CodeQuery {
    /// Only codes in this state (`expired`: not redeemed, and the campaign is over).
    #[param(inline)]
    pub status: Option<CodeFilter>,
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,9}$")]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CodeView {
    pub code: String,
    pub campaign_id: Uuid,
    pub status: CodeStatus,
    pub holder: Option<Uuid>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub balance_cents: Option<i64>,
}

impl From<&CodeRecord> for CodeView {
    fn from(r: &CodeRecord) -> Self {
        Self {
            code: r.code.clone(),
            campaign_id: r.campaign_id,
            status: r.status,
            holder: r.holder,
            claimed_at: r.claimed_at,
            balance_cents: r.balance_cents,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CodePage {
    pub items: Vec<CodeView>,
    pub next_cursor: Option<String>,
}

/// A campaign's codes in the order they were made, by state (manager). With `Accept: text/csv`
/// every matching code is streamed as CSV (`code,status,holder,claimed_at`).
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), params(("id" = Uuid, Path, description = "campaign id"), CodeQuery), responses((status = 200, description = "a page of codes, or with `Accept: text/csv` every matching code as CSV", content((CodePage = "application/json"), (String = "text/csv")))))]
#[get("/campaigns/{id}/codes")]
async fn list_codes(
    state: web::Data<AppState>,
    who: Principal,
    req: HttpRequest,
    id: web::Path<Uuid>,
    query: web::Query<CodeQuery>,
) -> Result<HttpResponse, ApiError> {
    who.require(Role::Manager)?;
    let campaign = use_case::get(&state.services, id.into_inner())?;
    let limit = limit(query.limit)?;
    let after = match query.cursor.as_deref() {
        None => 0,
        Some(c) => c
            .parse::<usize>()
            .map_err(|_| ApiError::BadRequest("invalid cursor".into()))?,
    };
    let which = match query.status {
        None => Listed::All,
        Some(CodeFilter::Available) => Listed::Status(CodeStatus::Available),
        Some(CodeFilter::Reserved) => Listed::Status(CodeStatus::Reserved),
        Some(CodeFilter::Claimed) => Listed::Status(CodeStatus::Claimed),
        Some(CodeFilter::Redeemed) => Listed::Status(CodeStatus::Redeemed),
        Some(CodeFilter::Expired) => Listed::Expired,
    };
    let closed = !campaign.is_open(state.clock.now()) && state.clock.now() >= campaign.starts_at;
    let wants_csv = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"));
    if wants_csv {
        return Ok(csv_export(state.store.clone(), campaign.id, which, closed));
    }
    let id = campaign.id;
    let (records, next) = state
        .store
        .run(move |s| s.codes().list(id, which, closed, after, limit))
        .await?;
    Ok(HttpResponse::Ok().json(CodePage {
        items: records.iter().map(CodeView::from).collect(),
        next_cursor: next.map(|n| n.to_string()),
    }))
}

/// Streams every matching code as CSV, a page of 5,000 at a time (memory stays flat however
/// large the pool).
fn csv_export(
    store: crate::store::Store,
    campaign: Uuid,
    which: Listed,
    closed: bool,
) -> HttpResponse {
    const PAGE: usize = 5_000;
    let stream = futures_util::stream::unfold(Some(0usize), move |next| {
        let store = store.clone();
        async move {
            let after = next?;
            let page = store
                .run(move |s| s.codes().list(campaign, which, closed, after, PAGE))
                .await;
            match page {
                Ok((records, next)) => match csv_rows(&records, after == 0) {
                    Ok(out) => Some((Ok::<_, actix_web::Error>(web::Bytes::from(out)), next)),
                    Err(e) => Some((Err(ApiError::internal(e).into()), None)),
                },
                Err(e) => Some((Err(ApiError::from(e).into()), None)),
            }
        }
    });
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"codes-{campaign}.csv\""),
        ))
        .streaming(stream)
}

/// Codes as CSV rows (`code,status,holder,claimed_at`, the header first when `header`), written
/// by the csv crate: a cell holding a separator, quote or line end is quoted (a code cannot forge
/// a row or a column), and a cell that a spreadsheet would run as a formula (starting with `= + -
/// @`, a tab or a carriage return) is neutralised with a leading `'` (OWASP's CSV injection rule).
fn csv_rows(records: &[CodeRecord], header: bool) -> Result<Vec<u8>, csv::Error> {
    let mut out = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(Vec::new());
    if header {
        out.write_record(["code", "status", "holder", "claimed_at"])?;
    }
    for r in records {
        let status = match r.status {
            CodeStatus::Available => "available",
            CodeStatus::Claimed => "claimed",
            CodeStatus::Redeemed => "redeemed",
            CodeStatus::Reserved => "reserved",
        };
        out.write_record([
            crate::domain::spreadsheet_safe(&r.code).as_ref(),
            status,
            &r.holder.map(|h| h.to_string()).unwrap_or_default(),
            &r.claimed_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        ])?;
    }
    out.into_inner().map_err(|e| e.into_error().into())
}

/// Who a claim is for: absent for the caller; a manager names a customer.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimBody {
    pub customer: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimView {
    pub code: String,
    pub campaign_id: Uuid,
    pub customer: Uuid,
    #[serde(serialize_with = "super::json::timestamp")]
    pub claimed_at: DateTime<Utc>,
    /// When the code stops being redeemable (the campaign's end).
    #[serde(serialize_with = "super::json::timestamp")]
    pub expires_at: DateTime<Utc>,
}

/// Claim a code (a customer for themselves; a manager with `{customer}`): 201 with the code once
/// it is durable; 409 `sold_out` or `limit_reached`; 422 `campaign_not_active`; 503
/// `overloaded` when the store's writer stays busy for two seconds.
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), params(("id" = Uuid, Path, description = "campaign id")), request_body(content = ClaimBody, description = "Optional: absent claims for the caller"), responses((status = 201, body = ClaimView), (status = 409, body = Problem), (status = 422, body = Problem)))]
#[post("/campaigns/{id}/claims")]
async fn claim(
    state: web::Data<AppState>,
    who: Principal,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let body: ClaimBody = super::json::optional_json(&req, &body)?;
    let customer = acting_for(&state.services, &who, body.customer)?;
    let (record, campaign) = use_case::claim(&state.services, id.into_inner(), customer).await?;
    // Valid until midnight in the holder's timezone: their record is read (only then).
    let holder_tz = if campaign.promotion.expire_at_local_end_of_day {
        state
            .store
            .run(move |s| s.users().get(customer))
            .await?
            .map(|u| u.timezone.0)
    } else {
        None
    };
    Ok(HttpResponse::Created().json(ClaimView {
        expires_at: code_expires_at(&campaign, record.claimed_at, holder_tz),
        code: record.code,
        campaign_id: record.campaign_id,
        customer,
        claimed_at: record.claimed_at.unwrap_or_else(|| state.clock.now()),
    }))
}

/// Sample codes of a pattern, before a campaign is created with it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CodePreview {
    /// The pattern with its prefix and postfix, `#` for each random character.
    pub pattern: String,
    /// Five codes as the pattern would make them (not stored, not reserved).
    pub samples: Vec<String>,
    /// How many distinct codes the pattern can make (at most 2^64 - 1 shown).
    #[schema(minimum = 0)]
    pub possible_codes: u64,
}

/// Preview a code pattern (manager): the `code` part of a new campaign, checked by the same rules
/// and shown as five sample codes, so a pattern can be tried before the campaign exists.
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), request_body = CodeSpecBody, responses((status = 200, body = CodePreview), (status = 422, body = Problem)))]
#[post("/code-previews")]
async fn preview_codes(
    who: Principal,
    body: web::Json<CodeSpecBody>,
) -> Result<web::Json<CodePreview>, ApiError> {
    who.require(Role::Manager)?;
    let spec = crate::domain::campaign::CodeSpec::from_parts(Some(body.into_inner().into()))?;
    let mut rng = rand::rng();
    Ok(web::Json(CodePreview {
        pattern: format!("{}{}{}", spec.prefix, spec.pattern, spec.postfix),
        samples: (0..5).map(|_| spec.generate(&mut rng)).collect(),
        possible_codes: u64::try_from(spec.space()).unwrap_or(u64::MAX),
    }))
}
