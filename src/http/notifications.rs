//! `/api/v1/notifications`: admin alerts as stored (`pool_low`, `campaign_ended`,
//! `network_failing`, `delivery_failing`, `code_request_failed`), oldest first.

use actix_web::{get, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, Problem};
use super::pagination::next_cursor;
use crate::domain::auth::Principal;
use crate::domain::notification::Notification;
use crate::domain::user::Role;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationPage {
    pub items: Vec<NotificationView>,
    pub next_cursor: Option<String>,
}

/// A notification, with the campaign it is about when it is about one.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationView {
    #[serde(flatten)]
    pub notification: Notification,
    /// The campaign named by `subject` (`pool_low`, `campaign_ended`, `budget_low`), if it exists.
    pub campaign: Option<CampaignName>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignName {
    pub id: Uuid,
    pub name: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationQuery {
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
    /// Newest first (default false: oldest first).
    pub newest_first: Option<bool>,
}

/// Admin alerts, oldest first or newest first (manager).
#[utoipa::path(tag = "notifications", security(("bearer" = [])), params(NotificationQuery), responses((status = 200, body = NotificationPage), (status = 401, body = Problem), (status = 403, body = Problem)))]
#[get("/notifications")]
async fn list(
    state: web::Data<AppState>,
    who: Principal,
    query: web::Query<NotificationQuery>,
) -> Result<web::Json<NotificationPage>, ApiError> {
    who.require(Role::Manager)?;
    let limit = super::pagination::limit(query.limit)?;
    let cursor = query.cursor;
    let newest = query.newest_first.unwrap_or(false);
    let items = state
        .store
        .run(move |s| {
            if newest {
                s.notifications().list_newest(cursor, limit)
            } else {
                s.notifications().list(cursor, limit)
            }
        })
        .await?;
    let next = next_cursor(&items, limit, |n| n.id);
    let items = items
        .into_iter()
        .map(|n| {
            let campaign = n
                .subject
                .parse::<Uuid>()
                .ok()
                .and_then(|id| state.store.campaigns().shared(id))
                .map(|c| CampaignName {
                    id: c.id,
                    name: c.name.clone(),
                });
            NotificationView {
                notification: n,
                campaign,
            }
        })
        .collect();
    Ok(web::Json(NotificationPage {
        next_cursor: next,
        items,
    }))
}
