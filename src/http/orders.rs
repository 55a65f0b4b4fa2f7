//! `/api/v1/orders` (buy codes, all or nothing) and `/api/v1/redemptions` (redeem a code against
//! an order, and roll a redemption back once).

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, Problem};
use super::pagination::limit;
use super::views::{LineDiscount, OrderBody, OrderTotals, RedeemableView, checkout_customer};
use crate::domain::auth::Principal;
use crate::domain::campaign::OrderStatus;
use crate::domain::campaign::Redemption;
use crate::domain::promotion::{Checkout, Customer};
use crate::domain::user::Role;
use crate::service::customers::acting_for;
use crate::service::orders::{self as use_case, Purchase};
use crate::store::orders::{OrderFilter, RedemptionFilter};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(order)
        .service(list_orders)
        .service(get_order)
        .service(pay)
        .service(payment_callback)
        .service(redeem)
        .service(get_redemption)
        .service(list_redemptions)
        .service(roll_back);
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    pub campaign_id: Uuid,
    /// 1 to 100 codes.
    #[serde(deserialize_with = "super::json::whole")]
    #[schema(minimum = 1, maximum = 100)]
    pub quantity: u32,
    /// Where the codes may be sent by SMS (E.164).
    #[schema(pattern = "^\\+[1-9][0-9]{1,14}$")]
    pub phone: Option<String>,
    /// Managers: the customer buying.
    pub customer: Option<Uuid>,
    /// Managers and API keys: the order is paid already (the default for them), so its codes
    /// are the customer's at once; `false` holds them until `POST /orders/{id}/payment`. A
    /// customer's order of sold codes always waits for its payment (`true` from a customer is
    /// 403).
    pub paid: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    pub id: Uuid,
    pub campaign_id: Uuid,
    /// The campaign's name (as it is now).
    pub campaign: Option<String>,
    pub customer: Uuid,
    /// Codes bought.
    pub quantity: usize,
    /// `pending_payment` (its codes held, shown to nobody, until `pay_by`), `paid` (its codes
    /// the customer's; also an order with nothing to pay) or `expired` (not paid in time: its
    /// codes went back).
    pub status: OrderStatus,
    /// The codes, once paid.
    pub codes: Vec<String>,
    /// The campaign's price times the quantity (0 when it has no price).
    pub amount_cents: i64,
    /// An unpaid order's deadline.
    pub pay_by: Option<DateTime<Utc>>,
    pub paid_at: Option<DateTime<Utc>>,
    /// The payment's reference, as the shop confirmed it.
    pub payment_ref: Option<String>,
    pub expired_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Buy codes of a campaign, all or nothing (a customer for themselves; a manager or an API key
/// with `{customer}`): 201 once durable. Sold codes (a campaign with a price, or a gift card)
/// bought by a customer are held for the order, shown to nobody, until it is paid (`POST
/// /orders/{id}/payment`, or a signed payment callback) within `[orders] payment_timeout_s`;
/// unpaid by then, the order expires and its codes go back. A manager's or an API key's order
/// is paid at once unless it says `paid: false`. 409 `sold_out` when fewer are left,
/// `limit_reached` past the per-customer limit; 422 `campaign_not_active`; 429 past the unpaid
/// orders a customer may have at once.
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), request_body = NewOrder, responses((status = 201, body = OrderView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 429, body = Problem)))]
#[post("/orders")]
async fn order(
    state: web::Data<AppState>,
    who: Principal,
    body: web::Json<NewOrder>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let customer = acting_for(&state.services, &who, b.customer)?;
    let by_manager = who.role.includes(Role::Manager);
    let purchase = Purchase {
        campaign: b.campaign_id,
        customer,
        quantity: b.quantity,
        phone: b.phone,
        by_manager,
        paid: b.paid.unwrap_or(by_manager),
    };
    let (order, _) = use_case::place(&state.services, purchase).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/orders/{}", order.id)))
        .json(OrderView::of(&state, order)))
}

impl OrderView {
    /// An order as clients see it, with its campaign's name from memory.
    fn of(state: &AppState, o: crate::domain::campaign::Order) -> Self {
        let campaign = state
            .store
            .campaigns()
            .shared(o.campaign_id)
            .map(|c| c.name.clone());
        Self {
            id: o.id,
            campaign_id: o.campaign_id,
            campaign,
            quantity: o.codes.len(),
            customer: o.customer,
            status: o.status,
            // Nobody's until paid; gone back once expired.
            codes: if o.status == OrderStatus::Paid {
                o.codes
            } else {
                Vec::new()
            },
            amount_cents: o.amount_cents,
            pay_by: o.pay_by,
            paid_at: o.paid_at,
            payment_ref: o.payment_ref,
            expired_at: o.expired_at,
            created_at: o.created_at,
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Payment {
    /// The payment's reference at the shop or its payment provider (kept on the order).
    #[schema(min_length = 1, max_length = 200)]
    pub reference: Option<String>,
}

/// Confirm an order's payment (manager or API key): its codes become the customer's, 200 with
/// them. Confirming a paid order again changes nothing; 409 `order_expired` once its deadline
/// passed unpaid (its codes went back to the campaign).
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), params(("id" = Uuid, Path, description = "order id")), request_body(content = Payment, description = "Optional"), responses((status = 200, body = OrderView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
#[post("/orders/{id}/payment")]
async fn pay(
    state: web::Data<AppState>,
    who: Principal,
    req: actix_web::HttpRequest,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<web::Json<OrderView>, ApiError> {
    who.require(Role::Manager)?;
    let body: Payment = super::json::optional_json(&req, &body)?;
    let (paid, _) = use_case::pay(&state.services, id.into_inner(), body.reference).await?;
    Ok(web::Json(OrderView::of(&state, paid)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentNotice {
    pub order_id: Uuid,
    /// The payment's reference at the payment provider.
    #[schema(min_length = 1, max_length = 200)]
    pub reference: Option<String>,
}

/// A payment provider (or the shop's payment back end) tells that an order is paid: the body
/// signed `X-Signature: sha256=<hex HMAC-SHA256 of the body>` with `[orders] payment_secret`
/// (401 when it does not verify, or no secret is set). The same as `POST /orders/{id}/payment`:
/// the codes become the customer's, once (a repeated notice changes nothing); 409 for an order
/// that expired unpaid.
#[utoipa::path(tag = "campaigns", request_body = PaymentNotice, params(("X-Signature" = String, Header, description = "sha256=<hex HMAC-SHA256 of the body with [orders] payment_secret>", pattern = "^sha256=[0-9a-f]{64}$")), responses((status = 200, body = OrderView), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
#[post("/payments/callback")]
async fn payment_callback(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    body: web::Bytes,
) -> Result<web::Json<OrderView>, ApiError> {
    let secret = state.settings.orders.payment_secret.expose();
    let signature = req
        .headers()
        .get("x-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if secret.is_empty()
        || !crate::security::verify_body_signature(secret.as_bytes(), &body, signature)
    {
        return Err(ApiError::Unauthorized);
    }
    let notice: PaymentNotice = serde_json::from_slice(&body)
        .map_err(|e| ApiError::Invalid(format!("invalid body: {e}")))?;
    let (paid, _) = use_case::pay(&state.services, notice.order_id, notice.reference).await?;
    Ok(web::Json(OrderView::of(&state, paid)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderQuery {
    /// Only this campaign's.
    pub campaign: Option<Uuid>,
    /// Managers: only this customer's (a customer sees their own only).
    pub customer: Option<Uuid>,
    /// Only orders in this state (`pending_payment`: those waiting for their payment).
    #[param(inline)]
    pub status: Option<OrderStatus>,
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    pub items: Vec<OrderView>,
    /// More may follow (a page reads at most 10,000 orders, so a narrow filter may give a short
    /// page and a cursor).
    pub next_cursor: Option<String>,
}

/// Orders, newest first: a customer's own, or (managers) anyone's,
/// `?campaign=&customer=&status=` (`pending_payment`: the orders waiting for the shop to confirm
/// their payment).
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), params(OrderQuery), responses((status = 200, body = OrderPage)))]
#[get("/orders")]
async fn list_orders(
    state: web::Data<AppState>,
    who: Principal,
    q: web::Query<OrderQuery>,
) -> Result<web::Json<OrderPage>, ApiError> {
    let q = q.into_inner();
    let limit = limit(q.limit)?;
    let customer = if who.role.includes(Role::Manager) {
        q.customer
    } else {
        // A customer's own; another customer's id finds nothing of theirs.
        let me = who.user_id.ok_or(ApiError::NotFound)?;
        if q.customer.is_some_and(|c| c != me) {
            return Err(ApiError::NotFound);
        }
        Some(me)
    };
    let filter = OrderFilter {
        campaign: q.campaign,
        customer,
        status: q.status,
    };
    let cursor = q.cursor;
    let (orders, next) = state
        .store
        .run(move |s| s.orders().list(&filter, cursor, limit))
        .await?;
    Ok(web::Json(OrderPage {
        items: orders
            .into_iter()
            .map(|o| OrderView::of(&state, o))
            .collect(),
        next_cursor: next.map(|id| id.to_string()),
    }))
}

/// One order (its customer, or a manager; anyone else 404): where an order's `Location` points.
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), params(("id" = Uuid, Path, description = "order id")), responses((status = 200, body = OrderView), (status = 404, body = Problem)))]
#[get("/orders/{id}")]
async fn get_order(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
) -> Result<web::Json<OrderView>, ApiError> {
    let id = id.into_inner();
    let found = state.store.run(move |s| s.orders().get(id)).await?;
    match found {
        Some(o) if who.role.includes(Role::Manager) || who.user_id == Some(o.customer) => {
            Ok(web::Json(OrderView::of(&state, o)))
        }
        _ => Err(ApiError::NotFound),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRedemption {
    /// One code; or `codes`.
    #[schema(min_length = 1, max_length = 64)]
    pub code: Option<String>,
    /// A cart's codes (1 to 10), redeemed all or none, one after another, each against what
    /// the ones before left and counting what they use; a code listed twice is 422
    /// `duplicate_code`.
    #[schema(min_items = 1, max_items = 10, value_type = Option<Vec<super::views::CodeText>>)]
    pub codes: Option<Vec<String>>,
    /// A voucherd user: a unique code must be theirs (else `not_found`); a shared code counts
    /// its per-customer limit and budgets for them.
    pub customer: Option<Uuid>,
    /// The shop's own reference for a buyer without an account here (an id, or an email,
    /// compared case-blind).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*[^\\s\\u0000-\\u001F\\u007F-\\u009F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF][^\\u0000-\\u001F\\u007F-\\u009F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*$"
    )]
    pub customer_ref: Option<String>,
    /// The order, with its currency and items: the same engine as a validation.
    pub order: Option<OrderBody>,
    /// The old body: the order's total only (no currency checked). A percentage is taken of it,
    /// a fixed amount never exceeds it, a gift card is drawn down by it (all that is left when
    /// absent). Not with `order`.
    #[serde(default, deserialize_with = "super::json::whole_opt")]
    #[schema(minimum = 0, maximum = 10_000_000_000_i64)]
    pub order_amount_cents: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RedemptionView {
    pub id: Uuid,
    pub code: String,
    pub campaign_id: Uuid,
    pub customer: Option<Uuid>,
    pub customer_ref: Option<String>,
    pub order_amount_cents: Option<i64>,
    pub currency: Option<String>,
    pub discount_cents: i64,
    /// What it took off each line of the order.
    pub items: Vec<LineDiscount>,
    pub balance_cents: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub rolled_back_at: Option<DateTime<Utc>>,
}

impl From<Redemption> for RedemptionView {
    fn from(r: Redemption) -> Self {
        Self {
            id: r.id,
            code: r.code,
            campaign_id: r.campaign_id,
            customer: r.customer,
            customer_ref: r.customer_ref,
            order_amount_cents: r.order_amount_cents,
            currency: r.currency,
            discount_cents: r.discount_cents,
            items: r
                .lines
                .into_iter()
                .map(|(index, discount_cents)| LineDiscount {
                    index,
                    discount_cents,
                })
                .collect(),
            balance_cents: r.balance_cents,
            created_at: r.created_at,
            rolled_back_at: r.rolled_back_at,
        }
    }
}

/// A redemption as made: the record (the first code's, for a cart), every code's record, and
/// the same breakdown a validation gives.
#[derive(Debug, Serialize, ToSchema)]
pub struct RedeemedView {
    #[serde(flatten)]
    pub redemption: RedemptionView,
    /// One record per code, in the order given.
    pub redemptions: Vec<RedemptionView>,
    pub valid: bool,
    pub order: OrderTotals,
    pub redeemables: Vec<RedeemableView>,
}

/// Redeem a code, or a cart's codes, against an order (manager or API key): 201 with what each
/// took off, per line. A cart is one decision: its codes apply one after another, each counting
/// what the earlier ones used (usage limits, the customer's limit, caps, budgets, balances), all
/// or none. A `customer_ref` that is the email of one of our users with a confirmed address
/// counts for that user (case and `+tags` folded). 404 for an unknown code or someone else's;
/// 409 `usage_limit_reached`, `customer_limit_reached`, `budget_exhausted`, or
/// `code_not_redeemable` with the reason (redeemed, expired, ended, paused, disabled, not held,
/// spent, a rule not met); 422 `duplicate_code`.
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), request_body = NewRedemption, responses((status = 201, body = RedeemedView), (status = 404, body = Problem), (status = 409, body = Problem)))]
#[post("/redemptions")]
async fn redeem(
    state: web::Data<AppState>,
    who: Principal,
    body: web::Json<NewRedemption>,
) -> Result<HttpResponse, ApiError> {
    who.require(Role::Manager)?;
    let b = body.into_inner();
    let codes = match (b.code, b.codes) {
        (Some(code), None) => vec![code],
        (None, Some(codes)) => codes,
        _ => {
            return Err(ApiError::Invalid(
                "codes: give code (one) or codes (a cart), not both".into(),
            ));
        }
    };
    let customer = checkout_customer(&who, b.customer, b.customer_ref)?;
    let checkout = match (b.order, b.order_amount_cents) {
        (Some(_), Some(_)) => {
            return Err(ApiError::Invalid(
                "order_amount_cents: give order or order_amount_cents, not both".into(),
            ));
        }
        (Some(body), None) => body.checkout()?,
        (None, Some(amount)) => Checkout::new(Some(amount), None, Vec::new())?,
        (None, None) => Checkout::unpriced(),
    };
    let amount = checkout.priced.then_some(checkout.amount_cents);
    let made = use_case::redeem(&state.services, codes, customer, checkout).await?;
    let discount: i64 = made.iter().map(|(_, a)| a.discount_cents).sum();
    let amount = amount.unwrap_or(discount);
    let redemptions: Vec<RedemptionView> = made
        .iter()
        .map(|(r, _)| RedemptionView::from(r.clone()))
        .collect();
    let redeemables = made
        .into_iter()
        .map(|(r, applied)| RedeemableView::of(r.code, &Ok(applied)))
        .collect();
    let first = redemptions
        .first()
        .cloned()
        .ok_or_else(|| ApiError::internal("a redemption of no code"))?;
    let view = RedeemedView {
        valid: true,
        order: OrderTotals {
            amount_cents: amount,
            discount_cents: discount,
            total_cents: amount - discount,
        },
        redeemables,
        redemption: first,
        redemptions,
    };
    Ok(HttpResponse::Created()
        .insert_header((
            "Location",
            format!("/api/v1/redemptions/{}", view.redemption.id),
        ))
        .json(view))
}

/// One redemption (manager): where a redemption's `Location` points.
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), params(("id" = Uuid, Path, description = "redemption id")), responses((status = 200, body = RedemptionView), (status = 404, body = Problem)))]
#[get("/redemptions/{id}")]
async fn get_redemption(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
) -> Result<web::Json<RedemptionView>, ApiError> {
    who.require(Role::Manager)?;
    let id = id.into_inner();
    let found = state.store.run(move |s| s.orders().redemption(id)).await?;
    found
        .map(|r| web::Json(RedemptionView::from(r)))
        .ok_or(ApiError::NotFound)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RedemptionQuery {
    /// Only this campaign's.
    pub campaign: Option<Uuid>,
    /// Only this user's.
    pub customer: Option<Uuid>,
    /// Only this reference's (as given at redemption, normalised alike). With `customer` too,
    /// both must match.
    #[param(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*[^\\s\\u0000-\\u001F\\u007F-\\u009F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF][^\\u0000-\\u001F\\u007F-\\u009F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*$"
    )]
    pub customer_ref: Option<String>,
    /// Only those made at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RedemptionPage {
    pub items: Vec<RedemptionView>,
    /// More may follow (a page reads at most 10,000 redemptions, so a narrow filter may give a
    /// short page and a cursor).
    pub next_cursor: Option<String>,
}

/// Redemptions, newest first (manager): `?campaign=&customer=&customer_ref=&since=`, paged.
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), params(RedemptionQuery), responses((status = 200, body = RedemptionPage), (status = 400, body = Problem)))]
#[get("/redemptions")]
async fn list_redemptions(
    state: web::Data<AppState>,
    who: Principal,
    q: web::Query<RedemptionQuery>,
) -> Result<web::Json<RedemptionPage>, ApiError> {
    who.require(Role::Manager)?;
    let q = q.into_inner();
    let limit = limit(q.limit)?;
    let customer_ref = q
        .customer_ref
        .map(|r| match Customer::reference(&r) {
            // Folded as redemptions keep it (an email's case and `+tag`).
            Ok(Customer::Ref(r)) => Ok(crate::service::customers::reference_key(
                &state.services,
                &r,
            )),
            Ok(Customer::User(_)) => Err(ApiError::BadRequest("customer_ref".into())),
            Err(e) => Err(ApiError::from(e)),
        })
        .transpose()?;
    let filter = RedemptionFilter {
        campaign: q.campaign,
        customer: q.customer,
        customer_ref,
        since: q.since,
    };
    let cursor = q.cursor;
    let (items, next) = state
        .store
        .run(move |s| s.orders().list_redemptions(&filter, cursor, limit))
        .await?;
    Ok(web::Json(RedemptionPage {
        items: items.into_iter().map(RedemptionView::from).collect(),
        next_cursor: next.map(|id| id.to_string()),
    }))
}

/// Roll a redemption back, once (manager): the code is held again and a gift card gets back what
/// it gave; a second rollback is 409.
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), params(("id" = Uuid, Path, description = "redemption id")), responses((status = 200, body = RedemptionView), (status = 409, body = Problem)))]
#[post("/redemptions/{id}/rollback")]
async fn roll_back(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
) -> Result<web::Json<RedemptionView>, ApiError> {
    who.require(Role::Manager)?;
    let redemption = use_case::roll_back(&state.services, id.into_inner()).await?;
    Ok(web::Json(RedemptionView::from(redemption)))
}
