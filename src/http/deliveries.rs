//! `/api/v1/deliveries`: the outbox and its history (admin).

use actix_web::{get, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::error::{ApiError, Problem};
use super::pagination::limit;
use crate::domain::auth::Principal;
use crate::domain::delivery::{Delivery, DeliveryStatus};
use crate::domain::user::Role;
use crate::store::deliveries::{Cursor, InvalidCursor};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list);
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// Only deliveries in this state.
    pub status: Option<DeliveryStatus>,
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^(64|6[dD])([0-9a-fA-F]{2})*$")]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub items: Vec<Delivery>,
    pub next_cursor: Option<String>,
}

/// Deliveries (the outbox and its history), optionally by status (admin).
#[utoipa::path(tag = "digests", security(("bearer" = [])), params(DeliveryQuery), responses((status = 200, body = DeliveryPage), (status = 400, body = Problem), (status = 403, body = Problem)))]
#[get("/deliveries")]
async fn list(
    state: web::Data<AppState>,
    who: Principal,
    query: web::Query<DeliveryQuery>,
) -> Result<web::Json<DeliveryPage>, ApiError> {
    who.require(Role::Admin)?;
    let limit = limit(query.limit)?;
    let cursor: Option<Cursor> = query
        .cursor
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e: InvalidCursor| ApiError::BadRequest(e.to_string()))?;
    let status = query.status;
    let page = state
        .store
        .run(move |s| s.deliveries().list(status, cursor.as_ref(), limit))
        .await?;
    Ok(web::Json(DeliveryPage {
        next_cursor: page.next.map(|c| c.to_string()),
        items: page.items,
    }))
}
