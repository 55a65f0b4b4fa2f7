//! `/api/v1/users/{id}/subscriptions`: what a user follows. Every change goes through the user's
//! SubscriptionManager.

use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use super::auth::existing_user;
use super::error::{ApiError, Problem};
use super::pagination::{PageQuery, next_cursor};
use super::views::NewSubscription;
use crate::actors::subscriptions::{ListSubscriptions, Subscribe, Unsubscribe};
use crate::domain::auth::Principal;
use crate::domain::digest::{Subscription, Target};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list).service(create).service(remove);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionView {
    pub id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retailer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<&Subscription> for SubscriptionView {
    fn from(s: &Subscription) -> Self {
        let (retailer, category) = match &s.target {
            Target::Retailer(r) => (Some(r.clone()), None),
            Target::Category(c) => (None, Some(c.clone())),
        };
        Self {
            id: s.id,
            retailer,
            category,
            created_at: s.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionList {
    pub items: Vec<SubscriptionView>,
    /// All of a user's subscriptions come in one page.
    pub next_cursor: Option<String>,
}

/// A user's subscriptions, oldest first, a page at a time (self or admin).
#[utoipa::path(tag = "digests", security(("bearer" = [])), params(("id" = Uuid, Path, description = "user id"), PageQuery), responses((status = 200, body = SubscriptionList), (status = 404, body = Problem)))]
#[get("/users/{id}/subscriptions")]
async fn list(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
    page: web::Query<PageQuery>,
) -> Result<web::Json<SubscriptionList>, ApiError> {
    let limit = page.limit()?;
    let after = page.after_id();
    let user = existing_user(&state, &who, id.into_inner()).await?;
    let subs = state
        .actors
        .registry
        .get(user.id)
        .send(ListSubscriptions)
        .await??;
    // Ids are v7, so id order is creation order.
    let items: Vec<SubscriptionView> = subs
        .iter()
        .filter(|s| after.is_none_or(|a| s.id > a))
        .take(limit)
        .map(SubscriptionView::from)
        .collect();
    Ok(web::Json(SubscriptionList {
        next_cursor: next_cursor(&items, limit, |s| s.id),
        items,
    }))
}

/// Follow a retailer or a category (self or admin): 201; already followed 409.
#[utoipa::path(tag = "digests", security(("bearer" = [])), params(("id" = Uuid, Path, description = "user id")), request_body = NewSubscription, responses((status = 201, body = SubscriptionView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
#[post("/users/{id}/subscriptions")]
async fn create(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
    body: web::Json<NewSubscription>,
) -> Result<HttpResponse, ApiError> {
    let target = Target::parse(body.retailer.as_deref(), body.category.as_deref())?;
    let user = existing_user(&state, &who, id.into_inner()).await?;
    let sub = state
        .actors
        .registry
        .get(user.id)
        .send(Subscribe(target))
        .await??;
    Ok(HttpResponse::Created()
        .insert_header((
            "Location",
            format!("/api/v1/users/{}/subscriptions/{}", user.id, sub.id),
        ))
        .json(SubscriptionView::from(&sub)))
}

/// Stop following (self or admin): 204.
#[utoipa::path(tag = "digests", security(("bearer" = [])), params(("id" = Uuid, Path, description = "user id"), ("sub_id" = Uuid, Path, description = "subscription id")), responses((status = 204, description = "removed"), (status = 404, body = Problem)))]
#[delete("/users/{id}/subscriptions/{sub_id}")]
async fn remove(
    state: web::Data<AppState>,
    who: Principal,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (id, sub_id) = path.into_inner();
    let user = existing_user(&state, &who, id).await?;
    state
        .actors
        .registry
        .get(user.id)
        .send(Unsubscribe(sub_id))
        .await??;
    Ok(HttpResponse::NoContent().finish())
}
