//! `/api/v1/validations`: what codes would take off an order now, writing nothing (a customer
//! for themselves; a manager or an API key for anyone).

use actix_web::{post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, Problem};
use super::views::{OrderBody, OrderTotals, RedeemableView, checkout_customer};
use crate::domain::auth::Principal;
use crate::service::orders as use_case;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(validate);
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewValidation {
    /// 1 to 10 codes, applied one after another (each to what the ones before left).
    #[schema(min_items = 1, max_items = 10, value_type = Vec<super::views::CodeText>)]
    pub codes: Vec<String>,
    /// A voucherd user (a customer may name only themselves; by default, they are the one).
    pub customer: Option<Uuid>,
    /// The shop's own reference for a buyer without an account here (managers and API keys).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*[^\\s\\u0000-\\u001F\\u007F-\\u009F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF][^\\u0000-\\u001F\\u007F-\\u009F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*$"
    )]
    pub customer_ref: Option<String>,
    pub order: OrderBody,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationView {
    /// Every code applies.
    pub valid: bool,
    pub order: OrderTotals,
    pub redeemables: Vec<RedeemableView>,
}

/// Validate codes against an order, writing nothing: per code `applicable` with what it takes
/// off (per line when the order has items) or `inapplicable` with a `reason` from a fixed list.
/// An unknown code and someone else's code both answer `not_found`.
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), request_body = NewValidation, responses((status = 200, body = ValidationView), (status = 404, description = "a customer naming another customer", body = Problem), (status = 422, body = Problem)))]
#[post("/validations")]
async fn validate(
    state: web::Data<AppState>,
    who: Principal,
    body: web::Json<NewValidation>,
) -> Result<web::Json<ValidationView>, ApiError> {
    let b = body.into_inner();
    let customer = checkout_customer(&who, b.customer, b.customer_ref)?;
    let order = b.order.checkout()?;
    let amount = order.amount_cents;
    let results = use_case::validate(&state.services, b.codes, customer, order).await?;
    let discount: i64 = results
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .map(|a| a.discount_cents)
        .sum();
    Ok(web::Json(ValidationView {
        valid: results.iter().all(|(_, r)| r.is_ok()),
        order: OrderTotals {
            amount_cents: amount,
            discount_cents: discount,
            total_cents: amount - discount,
        },
        redeemables: results
            .into_iter()
            .map(|(code, r)| RedeemableView::of(code, &r))
            .collect(),
    }))
}
