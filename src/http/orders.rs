//! `/api/v1/orders` (buy codes, all or nothing) and `/api/v1/redemptions` (redeem a code against
//! an order, and roll a redemption back once).

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, Problem};
use crate::domain::auth::Principal;
use crate::domain::user::Role;
use crate::service::customers::acting_for;
use crate::service::orders as use_case;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(order)
        .service(get_order)
        .service(redeem)
        .service(get_redemption)
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
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    pub id: Uuid,
    pub campaign_id: Uuid,
    pub customer: Uuid,
    pub codes: Vec<String>,
    /// The campaign's price times the quantity (0 when it has no price).
    pub amount_cents: i64,
    pub created_at: DateTime<Utc>,
}

/// Buy codes of a campaign, all or nothing (a customer for themselves; a manager with
/// `{customer}`): 201 once durable; 409 `sold_out` when fewer are left, `limit_reached` past the
/// per-customer limit; 422 `campaign_not_active`.
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), request_body = NewOrder, responses((status = 201, body = OrderView), (status = 404, body = Problem), (status = 409, body = Problem)))]
#[post("/orders")]
async fn order(
    state: web::Data<AppState>,
    who: Principal,
    body: web::Json<NewOrder>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let customer = acting_for(&state.services, &who, b.customer)?;
    let (order, _) = use_case::place(
        &state.services,
        b.campaign_id,
        customer,
        b.quantity,
        b.phone.as_deref(),
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/orders/{}", order.id)))
        .json(OrderView::from(order)))
}

impl From<crate::domain::campaign::Order> for OrderView {
    fn from(o: crate::domain::campaign::Order) -> Self {
        Self {
            id: o.id,
            campaign_id: o.campaign_id,
            customer: o.customer,
            codes: o.codes,
            amount_cents: o.amount_cents,
            created_at: o.created_at,
        }
    }
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
            Ok(web::Json(OrderView::from(o)))
        }
        _ => Err(ApiError::NotFound),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRedemption {
    #[schema(min_length = 1, max_length = 64)]
    pub code: String,
    /// When given, the code must be this customer's.
    pub customer: Option<Uuid>,
    /// The order's total: a percentage is taken of it, a fixed amount never exceeds it, a gift
    /// card is drawn down by it (all that is left when absent).
    #[serde(default, deserialize_with = "super::json::whole_opt")]
    #[schema(minimum = 0)]
    pub order_amount_cents: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RedemptionView {
    pub id: Uuid,
    pub code: String,
    pub campaign_id: Uuid,
    pub customer: Option<Uuid>,
    pub discount_cents: i64,
    pub balance_cents: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub rolled_back_at: Option<DateTime<Utc>>,
}

impl From<crate::domain::campaign::Redemption> for RedemptionView {
    fn from(r: crate::domain::campaign::Redemption) -> Self {
        Self {
            id: r.id,
            code: r.code,
            campaign_id: r.campaign_id,
            customer: r.customer,
            discount_cents: r.discount_cents,
            balance_cents: r.balance_cents,
            created_at: r.created_at,
            rolled_back_at: r.rolled_back_at,
        }
    }
}

/// Redeem a code against an order (manager): 201 with what it took off; 409
/// `code_not_redeemable` when it is redeemed, expired, ended, not held or someone else's.
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), request_body = NewRedemption, responses((status = 201, body = RedemptionView), (status = 404, body = Problem), (status = 409, body = Problem)))]
#[post("/redemptions")]
async fn redeem(
    state: web::Data<AppState>,
    who: Principal,
    body: web::Json<NewRedemption>,
) -> Result<HttpResponse, ApiError> {
    who.require(Role::Manager)?;
    let b = body.into_inner();
    let redemption =
        use_case::redeem(&state.services, b.code, b.customer, b.order_amount_cents).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/redemptions/{}", redemption.id)))
        .json(RedemptionView::from(redemption)))
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
