//! `/api/v1/reports`: how campaigns do, and the server at a glance (manager). Read from memory:
//! counters and per-quarter-hour tallies kept with every claim, redemption and rollback, rebuilt
//! from the records at start — a report never reads the codes — and the outbox's day tallies.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, Problem};
use super::views::NetworkView;
use crate::domain::auth::Principal;
use crate::domain::campaign::CampaignStatus;
use crate::domain::code_request::RequestStatus;
use crate::domain::delivery::{Channel, DeliveryStatus};
use crate::domain::report::{CampaignReport, by_day};
use crate::domain::user::Role;
use crate::store::deliveries::Outcome;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(overview)
        .service(campaign_report)
        .service(campaign_chart);
}

/// Days of digest history an overview shows.
pub const OVERVIEW_DAYS: i64 = 30;

/// The server at a glance.
#[derive(Debug, Serialize, ToSchema)]
pub struct Overview {
    pub generated_at: DateTime<Utc>,
    pub campaigns: CampaignsByStatus,
    /// Vouchers in the catalogue (all networks).
    pub vouchers_total: u64,
    /// Every configured network: its health and active vouchers.
    pub networks: Vec<NetworkView>,
    /// Digest emails per UTC day over the last 30 days, oldest first (days with none left out).
    pub digests_by_day: Vec<DigestDay>,
    /// Every channel: messages owed an attempt now, and how attempts ended (all time).
    pub deliveries: Vec<ChannelDeliveries>,
    /// The last 20 attempts that ended since the server started, newest first.
    pub recent_deliveries: Vec<RecentDelivery>,
    /// Every configured provider (and any with stored requests): requests by status.
    pub code_requests: Vec<ProviderRequests>,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct CampaignsByStatus {
    pub draft: u64,
    pub scheduled: u64,
    pub active: u64,
    pub paused: u64,
    pub ended: u64,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct DigestDay {
    pub date: NaiveDate,
    pub sent: u64,
    /// Attempts that failed and were retried.
    pub failed: u64,
    /// Digests given up on that day.
    pub dead: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelDeliveries {
    pub channel: Channel,
    /// Waiting for a first attempt.
    pub pending: u64,
    /// An attempt under way.
    pub sending: u64,
    /// Failed, another attempt scheduled.
    pub retrying: u64,
    pub sent: u64,
    /// Attempts that failed (each retried one counts).
    pub failed_attempts: u64,
    /// Given up after the last attempt.
    pub dead: u64,
}

/// An attempt that ended: which message, and how it stands after it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecentDelivery {
    pub id: Uuid,
    pub channel: Channel,
    /// `digest`, `code` (a distribution's), `alert` or `requested` (a provider's code).
    pub kind: String,
    /// `sent`, `failed` (to be retried) or `dead`.
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub updated_at: DateTime<Utc>,
    pub last_error: Option<String>,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct ProviderRequests {
    pub provider: String,
    pub pending: u64,
    pub fulfilled: u64,
    pub failed: u64,
}

/// Campaigns by status, the catalogue and its networks, digests and deliveries, code requests
/// (manager; everyone else 404).
#[utoipa::path(tag = "reports", security(("bearer" = [])), responses((status = 200, body = Overview), (status = 404, body = Problem)))]
#[get("/reports/overview")]
async fn overview(
    state: web::Data<AppState>,
    who: Principal,
) -> Result<web::Json<Overview>, ApiError> {
    if !who.role.includes(Role::Manager) {
        return Err(ApiError::NotFound);
    }
    let now = state.clock.now();
    let store = &state.store;
    let since = now.date_naive() - chrono::Duration::days(OVERVIEW_DAYS - 1);
    let figures = store.deliveries().figures(since);
    let totals = store.deliveries().totals();
    let (days, open, recent) = (figures.days, figures.open, figures.recent);
    Ok(web::Json(Overview {
        generated_at: now,
        campaigns: campaigns_by_status(store, now),
        vouchers_total: store.vouchers().count()?,
        networks: super::views::network_views(&state).await?,
        digests_by_day: digest_days(days),
        deliveries: Channel::ALL
            .into_iter()
            .map(|channel| channel_row(channel, &open, &totals))
            .collect(),
        recent_deliveries: recent.into_iter().map(RecentDelivery::of).collect(),
        code_requests: provider_rows(&state.settings.providers, store.code_requests().counts()),
    }))
}

impl RecentDelivery {
    fn of(d: crate::domain::delivery::Delivery) -> Self {
        Self {
            id: d.id,
            channel: d.channel,
            kind: d.payload.kind().to_owned(),
            status: d.status,
            attempts: d.attempts,
            updated_at: d.updated_at,
            last_error: d.last_error,
        }
    }
}

/// How many campaigns are in each state now.
fn campaigns_by_status(store: &crate::store::Store, now: DateTime<Utc>) -> CampaignsByStatus {
    let mut campaigns = CampaignsByStatus::default();
    for c in store.campaigns().all() {
        match c.status(store.codes().counts(c.id).total, now) {
            CampaignStatus::Draft => campaigns.draft += 1,
            CampaignStatus::Scheduled => campaigns.scheduled += 1,
            CampaignStatus::Active => campaigns.active += 1,
            CampaignStatus::Paused => campaigns.paused += 1,
            CampaignStatus::Ended => campaigns.ended += 1,
        }
    }
    campaigns
}

/// Digest outcomes per day, oldest first, from the day tallies.
fn digest_days<I>(days: I) -> Vec<DigestDay>
where
    I: IntoIterator<Item = ((NaiveDate, bool, Channel, Outcome), u64)>,
{
    let mut digests: BTreeMap<NaiveDate, DigestDay> = BTreeMap::new();
    for ((date, digest, _, outcome), n) in days {
        if !digest {
            continue;
        }
        let day = digests.entry(date).or_insert_with(|| DigestDay {
            date,
            ..DigestDay::default()
        });
        match outcome {
            Outcome::Sent => day.sent += n,
            Outcome::Failed => day.failed += n,
            Outcome::Dead => day.dead += n,
        }
    }
    digests.into_values().collect()
}

/// One channel's open messages by status, and its outcomes since the start.
fn channel_row(
    channel: Channel,
    open: &std::collections::HashMap<(Channel, DeliveryStatus), u64>,
    totals: &BTreeMap<(bool, Channel, Outcome), u64>,
) -> ChannelDeliveries {
    let total = |outcome: Outcome| -> u64 {
        [true, false]
            .iter()
            .map(|d| totals.get(&(*d, channel, outcome)).copied().unwrap_or(0))
            .sum()
    };
    let open = |status: DeliveryStatus| open.get(&(channel, status)).copied().unwrap_or(0);
    ChannelDeliveries {
        channel,
        pending: open(DeliveryStatus::Pending),
        sending: open(DeliveryStatus::Sending),
        retrying: open(DeliveryStatus::Failed),
        sent: total(Outcome::Sent),
        failed_attempts: total(Outcome::Failed),
        dead: total(Outcome::Dead),
    }
}

/// Code requests per provider and status; every configured provider listed, with zeros.
fn provider_rows(
    configured: &[crate::config::ProviderSettings],
    counts: impl IntoIterator<Item = ((String, RequestStatus), u64)>,
) -> Vec<ProviderRequests> {
    let mut providers: BTreeMap<String, ProviderRequests> = configured
        .iter()
        .map(|p| {
            let row = ProviderRequests {
                provider: p.name.clone(),
                ..ProviderRequests::default()
            };
            (p.name.clone(), row)
        })
        .collect();
    for ((provider, status), n) in counts {
        let row = providers
            .entry(provider.clone())
            .or_insert_with(|| ProviderRequests {
                provider,
                ..ProviderRequests::default()
            });
        match status {
            RequestStatus::Pending => row.pending += n,
            RequestStatus::Fulfilled => row.fulfilled += n,
            RequestStatus::Failed => row.failed += n,
        }
    }
    providers.into_values().collect()
}

/// The report of a campaign the caller may see (managers; anyone else 404).
fn report(
    state: &AppState,
    who: &Principal,
    id: Uuid,
) -> Result<(CampaignReport, String, String), ApiError> {
    if !who.role.includes(Role::Manager) {
        return Err(ApiError::NotFound);
    }
    let campaign = state
        .store
        .campaigns()
        .shared(id)
        .ok_or(ApiError::NotFound)?;
    let counts = state.store.codes().counts(campaign.id);
    let claims = state.store.codes().claims_by_slot(campaign.id);
    let redemptions = state.store.orders().redemption_tally(campaign.id);
    let report = CampaignReport {
        campaign_id: campaign.id,
        codes_total: counts.total,
        claimed: counts.claimed,
        redeemed: counts.redeemed,
        redemption_rate: if counts.claimed == 0 {
            0.0
        } else {
            counts.redeemed as f64 / counts.claimed as f64
        },
        discount_cents_total: redemptions.discount_cents,
        by_day: by_day(
            &claims,
            &redemptions.by_slot,
            &redemptions.discount_by_slot,
            campaign.timezone.0,
        ),
        top_inapplicable_reasons: state
            .store
            .orders()
            .top_reasons(campaign.id)
            .into_iter()
            .map(|(reason, count)| crate::domain::report::ReasonCount { reason, count })
            .collect(),
    };
    Ok((report, campaign.name.clone(), campaign.timezone.to_string()))
}

/// A campaign's effectiveness (manager; customers 404).
#[utoipa::path(tag = "reports", security(("bearer" = [])), params(("id" = Uuid, Path, description = "campaign id")), responses((status = 200, body = CampaignReport), (status = 404, body = Problem)))]
#[get("/reports/campaigns/{id}")]
async fn campaign_report(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
) -> Result<web::Json<CampaignReport>, ApiError> {
    Ok(web::Json(report(&state, &who, id.into_inner())?.0))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ChartQuery {
    /// `svg` (default) or `png`.
    #[param(inline)]
    pub format: Option<ChartFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChartFormat {
    Svg,
    Png,
}

/// Claims and redemptions per day as a line chart (manager): SVG, or PNG with `?format=png`.
#[utoipa::path(tag = "reports", security(("bearer" = [])), params(("id" = Uuid, Path, description = "campaign id"), ChartQuery), responses((status = 200, description = "the chart", content(("image/svg+xml"), ("image/png"))), (status = 404, body = Problem)))]
#[get("/reports/campaigns/{id}/chart.svg")]
async fn campaign_chart(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
    query: web::Query<ChartQuery>,
) -> Result<HttpResponse, ApiError> {
    let (report, name, timezone) = report(&state, &who, id.into_inner())?;
    let png = query.format == Some(ChartFormat::Png);
    // Rendering (and rasterising) is CPU work: off the HTTP worker.
    let rendered = web::block(move || crate::reports::chart(&report, &name, &timezone, png))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(ApiError::Internal)?;
    Ok(HttpResponse::Ok()
        .content_type(if png { "image/png" } else { "image/svg+xml" })
        .insert_header(("Cache-Control", "no-store"))
        .body(rendered))
}
