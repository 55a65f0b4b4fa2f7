//! `/api/v1/campaigns/{id}/distributions`: hand one code of a campaign to each listed customer, or
//! to each subscriber of a retailer or category, delivered by email, SMS or to a configured
//! webhook (manager). Accepted at once (202) and run in the background; `GET …/{distribution_id}` shows
//! how far it got.

use actix_web::http::header;
use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, Problem};
use super::subscriptions::NewSubscription;
use crate::domain::auth::Principal;
use crate::domain::campaign::CampaignStatus;
use crate::domain::delivery::Channel;
use crate::domain::digest::Target;
use crate::domain::distribution::{Audience, Distribution, DistributionView, Progress};
use crate::domain::user::Role;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create).service(get_one);
}

/// Customers one request may list (a thousand ids fit the default body limit; larger audiences
/// are `subscribers_of`, or several distributions).
pub const MAX_CUSTOMERS: usize = 1_000;

/// Who gets a code — exactly one of `customers` or `subscribers_of` — and how it reaches them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDistribution {
    /// These customers (user ids; each must exist; repeats count once).
    #[serde(default, deserialize_with = "super::json::some")]
    #[schema(min_items = 1, max_items = 1_000, nullable = false)]
    pub customers: Option<Vec<Uuid>>,
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
/// `campaign_not_active` unless the campaign is active.
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), params(("id" = Uuid, Path, description = "campaign id")), request_body = NewDistribution, responses((status = 202, body = DistributionView), (status = 422, body = Problem)))]
#[post("/campaigns/{id}/distributions")]
async fn create(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
    body: web::Json<NewDistribution>,
) -> Result<HttpResponse, ApiError> {
    who.require(Role::Manager)?;
    let body = body.into_inner();
    let campaign = state
        .store
        .campaigns()
        .shared(id.into_inner())
        .ok_or(ApiError::NotFound)?;
    let webhook = match (body.channel, body.webhook) {
        (Channel::Webhook, Some(name)) => {
            if !state.settings.webhooks.iter().any(|w| w.name == name) {
                return Err(ApiError::Invalid(format!(
                    "webhook: no [[webhooks]] entry is named `{name}`"
                )));
            }
            Some(name)
        }
        (Channel::Webhook, None) => {
            return Err(ApiError::Invalid(
                "webhook: name the [[webhooks]] entry for channel `webhook`".into(),
            ));
        }
        (_, Some(_)) => {
            return Err(ApiError::Invalid(
                "webhook: only with channel `webhook`".into(),
            ));
        }
        (_, None) => None,
    };
    let (audience, recipients) = match (body.customers, body.subscribers_of) {
        (Some(customers), None) => {
            if customers.is_empty() || customers.len() > MAX_CUSTOMERS {
                return Err(ApiError::Invalid(format!(
                    "customers: give 1 to {MAX_CUSTOMERS} user ids"
                )));
            }
            let mut seen = std::collections::HashSet::new();
            let customers: Vec<Uuid> = customers.into_iter().filter(|c| seen.insert(*c)).collect();
            let unknown: Vec<String> = customers
                .iter()
                .filter(|c| state.store.users().role(**c).is_none())
                .take(20)
                .map(Uuid::to_string)
                .collect();
            if !unknown.is_empty() {
                return Err(ApiError::Invalid(format!(
                    "customers: no such user: {}",
                    unknown.join(", ")
                )));
            }
            (Audience::Customers, customers)
        }
        (None, Some(s)) => {
            let target = Target::parse(s.retailer.as_deref(), s.category.as_deref())?;
            let followers = followers(&state, &target)?;
            (Audience::SubscribersOf(target), followers)
        }
        _ => {
            return Err(ApiError::Invalid(
                "give exactly one of `customers` or `subscribers_of`".into(),
            ));
        }
    };
    if body.channel == Channel::Sms && !state.settings.delivery.sms.enabled() {
        return Err(ApiError::Invalid(
            "channel: sms needs [delivery.sms] url in the configuration".into(),
        ));
    }
    let now = state.clock.now();
    let counts = state.store.codes().counts(campaign.id);
    match campaign.status(counts.total, now) {
        CampaignStatus::Active => {}
        CampaignStatus::Ended => {
            return Err(ApiError::CampaignNotActive("the campaign has ended".into()));
        }
        _ => {
            return Err(ApiError::CampaignNotActive(
                "the campaign has not started".into(),
            ));
        }
    }
    // A text message needs a number, a push a subscription: recipients without are left out and
    // counted.
    let mut progress = Progress::default();
    let channel = body.channel;
    let recipients = if matches!(channel, Channel::Sms | Channel::Push) {
        let (with, without) = state
            .store
            .run(move |s| {
                let mut with = Vec::with_capacity(recipients.len());
                let mut without = 0u32;
                for id in recipients {
                    let reachable = match channel {
                        Channel::Sms => s.users().get(id)?.and_then(|u| u.phone).is_some(),
                        _ => !s.push_subscriptions().of_user(id)?.is_empty(),
                    };
                    if reachable {
                        with.push(id);
                    } else {
                        without += 1;
                    }
                }
                Ok((with, without))
            })
            .await?;
        progress.skipped_unreachable = without;
        with
    } else {
        recipients
    };
    let d = Distribution {
        v: Distribution::VERSION,
        id: crate::domain::v7_at(now),
        campaign_id: campaign.id,
        channel: body.channel,
        webhook,
        audience,
        recipients,
        created_by: who.user_id.unwrap_or(who.token_id),
        created_at: now,
    };
    let stored = d.clone();
    let progress = state
        .store
        .write(move |s| s.distributions().create(&stored, progress))
        .await?;
    let view = DistributionView::of(&d, &progress);
    state
        .actors
        .campaigns
        .distribute(d, progress, state.actors.outbox_wake.clone());
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

/// Everyone following `target` now, from memory.
fn followers(state: &AppState, target: &Target) -> Result<Vec<Uuid>, ApiError> {
    let subs = state.store.subscriptions();
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = subs.subscribers(target, after, 10_000)?;
        let Some(last) = page.last().copied() else {
            break;
        };
        all.extend(page);
        if all.len() > Distribution::MAX_RECIPIENTS {
            return Err(ApiError::Invalid(format!(
                "subscribers_of: more than {} subscribers; list customers instead",
                Distribution::MAX_RECIPIENTS
            )));
        }
        after = Some(last);
    }
    Ok(all)
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
