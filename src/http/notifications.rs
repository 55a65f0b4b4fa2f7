//! `/api/v1/notifications`: admin alerts as stored (`pool_low`, `campaign_ended`,
//! `network_failing`, `delivery_failing`, `code_request_failed`), oldest first.

use actix_web::{get, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, Problem};
use super::pagination::{PageQuery, next_cursor};
use crate::domain::auth::Principal;
use crate::domain::notification::Notification;
use crate::domain::user::Role;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationPage {
    pub items: Vec<Notification>,
    pub next_cursor: Option<String>,
}

/// Admin alerts, oldest first (manager).
#[utoipa::path(tag = "notifications", security(("bearer" = [])), params(PageQuery), responses((status = 200, body = NotificationPage), (status = 401, body = Problem), (status = 403, body = Problem)))]
#[get("/notifications")]
async fn list(
    state: web::Data<AppState>,
    who: Principal,
    page: web::Query<PageQuery>,
) -> Result<web::Json<NotificationPage>, ApiError> {
    who.require(Role::Manager)?;
    let limit = page.limit()?;
    let after = page.after_id();
    let items = state
        .store
        .run(move |s| s.notifications().list(after, limit))
        .await?;
    Ok(web::Json(NotificationPage {
        next_cursor: next_cursor(&items, limit, |n| n.id),
        items,
    }))
}
