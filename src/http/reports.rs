//! `/api/v1/reports`: how campaigns do (manager). Read from memory: counters and per-quarter-hour
//! tallies kept with every claim, redemption and rollback, rebuilt from the records at start — a
//! report never reads the codes.

use actix_web::{HttpResponse, get, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, Problem};
use crate::domain::auth::Principal;
use crate::domain::report::{CampaignReport, by_day};
use crate::domain::user::Role;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(campaign_report).service(campaign_chart);
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
        by_day: by_day(&claims, &redemptions.by_slot, campaign.timezone.0),
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
