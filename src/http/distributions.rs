//! `/api/v1/campaigns/{id}/distributions`: hand one code of a campaign to each listed customer, or
//! to each subscriber of a retailer or category, delivered by email, SMS or to a configured
//! webhook (manager). Accepted at once (202) and run in the background; `GET …/{distribution_id}` shows
//! how far it got.

use actix_web::http::header;
use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, Problem};
use super::pagination::PageQuery;
use super::views::NewSubscription;
use crate::domain::auth::Principal;
use crate::domain::delivery::Channel;
use crate::domain::distribution::DistributionView;
use crate::domain::user::Role;
use crate::service::distributions::{self as use_case, NewDistribution as Asked, Recipients};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create).service(list).service(get_one);
}

/// Who gets a code — exactly one of `customers`, `emails` or `subscribers_of` — and how it
/// reaches them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDistribution {
    /// These customers (user ids; each must exist; repeats count once).
    #[serde(default, deserialize_with = "super::json::some")]
    #[schema(min_items = 1, max_items = 1_000, nullable = false)]
    pub customers: Option<Vec<Uuid>>,
    /// These customers by their email addresses (each must be a user's; case-blind).
    #[serde(default, deserialize_with = "super::json::some")]
    #[schema(min_items = 1, max_items = 1_000, nullable = false, value_type = Option<Vec<EmailText>>)]
    pub emails: Option<Vec<String>>,
    /// Everyone following this retailer or category now.
    #[serde(default, deserialize_with = "super::json::some")]
    #[schema(nullable = false, value_type = Option<NewSubscription>)]
    pub subscribers_of: Option<NewSubscription>,
    /// `email` (to the customer's address), `sms` (to their phone number, through `[delivery.sms]`)
    /// or `webhook` (to the `[[webhooks]]` entry named by `webhook`).
    #[schema(value_type = DistributionChannel)]
    pub channel: Channel,
    /// The `[[webhooks]]` entry's name, with `channel: webhook`; never a URL.
    #[serde(default, deserialize_with = "super::json::some")]
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 64,
        pattern = "^[a-z0-9_-]+$"
    )]
    pub webhook: Option<String>,
}

/// The channels a distribution can use.
#[derive(ToSchema)]
#[schema(as = DistributionChannel)]
#[allow(dead_code)]
#[serde(rename_all = "snake_case")]
pub enum DistributionChannel {
    Email,
    Webhook,
    Sms,
    Push,
}

/// Start a distribution (manager): 202 with its id, status `running` and a `Location` to follow
/// it. 404 no such campaign; 422 a customer that does not exist, a
/// webhook not configured, or not exactly one of `customers` / `subscribers_of`; 422
/// `campaign_not_active` unless the campaign is active; 409 for a shared campaign (its one code
/// is not handed out per customer).
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), params(("id" = Uuid, Path, description = "campaign id")), request_body = NewDistribution, responses((status = 202, body = DistributionView), (status = 409, body = Problem), (status = 422, body = Problem)))]
#[post("/campaigns/{id}/distributions")]
async fn create(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
    body: web::Json<NewDistribution>,
) -> Result<HttpResponse, ApiError> {
    who.require(Role::Manager)?;
    let body = body.into_inner();
    let recipients = match (body.customers, body.emails, body.subscribers_of) {
        (Some(customers), None, None) => Recipients::Customers(customers),
        (None, Some(emails), None) => Recipients::Emails(emails),
        (None, None, Some(s)) => Recipients::SubscribersOf {
            retailer: s.retailer,
            category: s.category,
        },
        _ => {
            return Err(ApiError::Invalid(
                "give exactly one of `customers`, `emails` or `subscribers_of`".into(),
            ));
        }
    };
    let new = Asked {
        recipients,
        channel: body.channel,
        webhook: body.webhook,
        created_by: who.user_id.unwrap_or(who.token_id),
    };
    let (d, progress) = use_case::start(&state.services, id.into_inner(), new).await?;
    let view = DistributionView::of(&d, &progress);
    Ok(HttpResponse::Accepted()
        .insert_header((
            header::LOCATION,
            format!(
                "/api/v1/campaigns/{}/distributions/{}",
                view.campaign_id, view.id
            ),
        ))
        .json(view))
}

/// One email address in a distribution's audience.
#[derive(ToSchema)]
#[schema(min_length = 3, max_length = 254)]
pub struct EmailText(#[allow(dead_code)] String);

#[derive(Debug, Serialize, ToSchema)]
pub struct DistributionPage {
    pub items: Vec<DistributionView>,
    pub next_cursor: Option<String>,
}

/// A campaign's distributions, newest first (manager), paged.
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), params(("id" = Uuid, Path, description = "campaign id"), PageQuery), responses((status = 200, body = DistributionPage), (status = 404, body = Problem)))]
#[get("/campaigns/{id}/distributions")]
async fn list(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
    page: web::Query<PageQuery>,
) -> Result<web::Json<DistributionPage>, ApiError> {
    who.require(Role::Manager)?;
    let campaign = id.into_inner();
    state
        .store
        .campaigns()
        .shared(campaign)
        .ok_or(ApiError::NotFound)?;
    let limit = page.limit()?;
    let before = page.after_id();
    let (items, next) = state
        .store
        .run(move |s| s.distributions().list(campaign, before, limit))
        .await?;
    Ok(web::Json(DistributionPage {
        items: items
            .iter()
            .map(|(d, p)| DistributionView::of(d, p))
            .collect(),
        next_cursor: next.map(|id| id.to_string()),
    }))
}

/// How far a distribution got (manager).
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), params(("id" = Uuid, Path, description = "campaign id"), ("distribution_id" = Uuid, Path, description = "distribution id")), responses((status = 200, body = DistributionView), (status = 404, body = Problem)))]
#[get("/campaigns/{id}/distributions/{distribution_id}")]
async fn get_one(
    state: web::Data<AppState>,
    who: Principal,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<web::Json<DistributionView>, ApiError> {
    who.require(Role::Manager)?;
    let (campaign, id) = path.into_inner();
    let found = state.store.run(move |s| s.distributions().get(id)).await?;
    match found {
        Some((d, p)) if d.campaign_id == campaign => Ok(web::Json(DistributionView::of(&d, &p))),
        _ => Err(ApiError::NotFound),
    }
}
