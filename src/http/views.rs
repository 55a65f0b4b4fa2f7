//! Shapes more than one route group answers or takes (a voucher, a network's health, a
//! retailer-or-category body) and the reads that build them: kept here so that route files never
//! import each other.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use super::error::ApiError;
use crate::domain::digest::Target;
use crate::domain::network::{NetworkRecord, NetworkState, PullSummary};
use crate::domain::voucher::Voucher;
use crate::feeds::FeedKind;

/// A collected voucher.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VoucherView {
    pub id: Uuid,
    pub network: String,
    pub external_id: String,
    pub retailer: String,
    pub category: Option<String>,
    pub title: String,
    pub description: Option<String>,
    /// `null` when the offer needs no code.
    pub code: Option<String>,
    /// The code is a pattern (a regular expression the network matches), not a literal code.
    pub code_is_pattern: bool,
    pub url: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub first_seen_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Valid now.
    pub active: bool,
}

impl VoucherView {
    pub fn of(v: &Voucher, now: DateTime<Utc>) -> Self {
        let o = &v.offer;
        Self {
            id: v.id,
            network: v.network.clone(),
            external_id: o.external_id.clone(),
            retailer: o.retailer.clone(),
            category: o.category.clone(),
            title: o.title.clone(),
            description: o.description.clone(),
            code: o.code.clone(),
            code_is_pattern: o.code_is_pattern,
            url: o.url.clone(),
            starts_at: o.starts_at,
            ends_at: o.ends_at,
            first_seen_at: v.first_seen_at,
            updated_at: v.updated_at,
            active: v.window().is_active(now),
        }
    }
}

/// Exactly one of `retailer` or `category` (the other absent or `null`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    /// Follow this retailer (give this or `category`).
    pub retailer: Option<String>,
    /// Follow this category (give this or `retailer`).
    pub category: Option<String>,
}

/// A name to follow: 1 to 200 characters, not blank, no control characters.
const NAME_PATTERN: &str = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*[^\\s\\u0000-\\u001F\\u007F-\\u009F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF][^\\u0000-\\u001F\\u007F-\\u009F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*$";

/// `{"retailer": name}` or `{"category": name}`, as a `oneOf` (a derived schema could not say
/// "exactly one").
impl utoipa::PartialSchema for NewSubscription {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        let name = || {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(Target::MAX_LEN))
                .pattern(Some(NAME_PATTERN))
        };
        let null = || ObjectBuilder::new().schema_type(Type::Null);
        let one = |given: &str, other: &str, what: &str| {
            ObjectBuilder::new()
                .property(given, name().description(Some(what)))
                .property(other, null())
                .required(given)
                .additional_properties(Some(
                    utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
                ))
        };
        OneOfBuilder::new()
            .item(one("retailer", "category", "Follow this retailer"))
            .item(one("category", "retailer", "Follow this category"))
            .description(Some("Exactly one of `retailer` or `category`."))
            .into()
    }
}

impl ToSchema for NewSubscription {}

/// A configured network and how its pulls go.
#[derive(Debug, Serialize, ToSchema)]
pub struct NetworkView {
    pub name: String,
    pub kind: FeedKind,
    pub state: NetworkState,
    pub last_pull_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// Failed pulls in a row.
    pub failures: u32,
    /// When the next pull is due (the backoff time after a failure, else the schedule's).
    pub next_pull_at: Option<DateTime<Utc>>,
    pub schedule: String,
    pub vouchers_active: u64,
    pub last_summary: Option<PullSummary>,
}

/// Every configured network with its health, in configuration order.
pub async fn network_views(state: &AppState) -> Result<Vec<NetworkView>, ApiError> {
    let configured = state.settings.networks.clone();
    let now = state.clock.now();
    let items = state
        .store
        .run(move |s| {
            configured
                .iter()
                .map(|n| {
                    let record = s
                        .networks()
                        .get(&n.name)?
                        .unwrap_or_else(|| NetworkRecord::new(&n.name, n.kind, n.enabled));
                    let next_pull_at = if n.enabled {
                        record
                            .retry_at
                            .or_else(|| n.schedule.cron().after(&now).next())
                    } else {
                        None
                    };
                    Ok(NetworkView {
                        vouchers_active: s.vouchers().active_in_network(&n.name)?,
                        name: n.name.clone(),
                        kind: n.kind,
                        state: if n.enabled {
                            record.state
                        } else {
                            NetworkState::Disabled
                        },
                        last_pull_at: record.last_pull_at,
                        last_success_at: record.last_success_at,
                        last_error: record.last_error,
                        failures: record.failures,
                        next_pull_at,
                        schedule: n.schedule.as_str().to_owned(),
                        last_summary: record.last_summary,
                    })
                })
                .collect::<Result<Vec<_>, crate::store::StoreError>>()
        })
        .await?;
    Ok(items)
}

/// One line of an order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderLineBody {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*[^\\s\\u0000-\\u001F\\u007F-\\u009F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF][^\\u0000-\\u001F\\u007F-\\u009F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*$"
    )]
    pub sku: String,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*[^\\s\\u0000-\\u001F\\u007F-\\u009F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF][^\\u0000-\\u001F\\u007F-\\u009F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*$"
    )]
    pub retailer: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*[^\\s\\u0000-\\u001F\\u007F-\\u009F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF][^\\u0000-\\u001F\\u007F-\\u009F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*$"
    )]
    pub category: Option<String>,
    #[serde(deserialize_with = "super::json::whole")]
    #[schema(minimum = 1, maximum = 10_000)]
    pub quantity: u32,
    /// One unit's price, minor units.
    #[serde(deserialize_with = "super::json::whole")]
    #[schema(minimum = 0, maximum = 10_000_000_000_i64)]
    pub price_cents: i64,
}

/// An order as the shop sends it: `amount_cents` is the sum of the items when they are given
/// (422 when it differs; it may then be left out).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderBody {
    #[serde(default, deserialize_with = "super::json::whole_opt")]
    #[schema(minimum = 0, maximum = 10_000_000_000_i64)]
    pub amount_cents: Option<i64>,
    /// ISO 4217.
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
    #[serde(default)]
    #[schema(max_items = 100)]
    pub items: Vec<OrderLineBody>,
}

impl OrderBody {
    pub fn checkout(self) -> Result<crate::domain::promotion::Checkout, ApiError> {
        let items = self
            .items
            .into_iter()
            .map(|l| crate::domain::promotion::OrderLine {
                sku: l.sku,
                retailer: l.retailer,
                category: l.category,
                quantity: l.quantity,
                price_cents: l.price_cents,
            })
            .collect();
        Ok(crate::domain::promotion::Checkout::new(
            self.amount_cents,
            Some(&self.currency),
            items,
        )?)
    }
}

/// What the order comes to.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderTotals {
    pub amount_cents: i64,
    pub discount_cents: i64,
    pub total_cents: i64,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Applicability {
    Applicable,
    Inapplicable,
}

/// What one code takes off one line.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LineDiscount {
    /// The line's position in `order.items`, from 0.
    pub index: u32,
    pub discount_cents: i64,
}

/// One code of a validation (or the one of a redemption).
#[derive(Debug, Serialize, ToSchema)]
pub struct RedeemableView {
    pub code: String,
    pub status: Applicability,
    /// Why it does not apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<crate::domain::promotion::Reason>,
    pub discount_cents: i64,
    pub items: Vec<LineDiscount>,
    /// A gift card's balance after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance_cents: Option<i64>,
}

impl RedeemableView {
    pub fn of(
        code: String,
        result: &Result<crate::domain::promotion::Applied, crate::domain::promotion::Reason>,
    ) -> Self {
        match result {
            Ok(a) => Self {
                code,
                status: Applicability::Applicable,
                reason: None,
                discount_cents: a.discount_cents,
                items: a
                    .lines
                    .iter()
                    .map(|&(i, d)| LineDiscount {
                        index: i as u32,
                        discount_cents: d,
                    })
                    .collect(),
                balance_cents: a.balance_cents,
            },
            Err(reason) => Self {
                code,
                status: Applicability::Inapplicable,
                reason: Some(*reason),
                discount_cents: 0,
                items: Vec::new(),
                balance_cents: None,
            },
        }
    }
}

/// Who a validation or a redemption is for: a voucherd user (`customer`) or the shop's own
/// reference (`customer_ref`, an id or an email), one of them; `None` for neither.
pub fn checkout_customer(
    who: &crate::domain::auth::Principal,
    customer: Option<Uuid>,
    customer_ref: Option<String>,
) -> Result<Option<crate::domain::promotion::Customer>, ApiError> {
    use crate::domain::promotion::Customer;
    use crate::domain::user::Role;
    let manager = who.role.includes(Role::Manager);
    // A customer-role API key is nobody's: it would see which unique codes exist (`not_held`
    // where a customer's session sees `not_found`).
    if !manager && who.user_id.is_none() {
        return Err(ApiError::Forbidden);
    }
    match (customer, customer_ref) {
        (Some(_), Some(_)) => Err(ApiError::Invalid(
            "customer: give customer or customer_ref, not both".into(),
        )),
        (_, Some(_)) if !manager => Err(ApiError::Forbidden),
        (None, Some(r)) => Ok(Some(Customer::reference(&r)?)),
        (Some(c), None) if manager || who.user_id == Some(c) => Ok(Some(Customer::User(c))),
        (Some(_), None) => Err(ApiError::NotFound),
        // A customer validates for themselves.
        (None, None) if !manager => Ok(who.user_id.map(Customer::User)),
        (None, None) => Ok(None),
    }
}

/// One code as imported: 1 to 64 characters, no spaces, control characters or `,` `;` `"`.
pub struct CodeText;

impl utoipa::PartialSchema for CodeText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[^\\s\\u0000-\\u001F\\u007F-\\u009F,;\"]{1,64}$"))
            .into()
    }
}

impl ToSchema for CodeText {}

/// What a page may load and do.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' blob:; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// A page asset with the policy and hardening headers.
pub fn asset(content_type: &str, body: &'static str) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("Cross-Origin-Opener-Policy", "same-origin"))
        .insert_header(("Cross-Origin-Resource-Policy", "same-origin"))
        .insert_header((
            "Permissions-Policy",
            "camera=(), microphone=(), geolocation=(), payment=()",
        ))
        .insert_header(("Cache-Control", "no-cache"))
        .body(body)
}
