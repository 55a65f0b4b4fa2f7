//! `/api/v1/reports`: how campaigns do (manager). Read from memory: counters and per-quarter-hour
//! tallies kept with every claim, redemption and rollback, rebuilt from the records at start — a
//! report never reads the codes.

use actix_web::{get, web};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, Problem};
use crate::domain::auth::Principal;
use crate::domain::report::{DayRow, by_day};
use crate::domain::user::Role;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(campaign_report);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignReport {
    pub campaign_id: Uuid,
    pub codes_total: u64,
    pub claimed: u64,
    /// Codes redeemed now (a rolled-back redemption no longer counts).
    pub redeemed: u64,
    /// `redeemed ÷ claimed` (0 with no claims).
    pub redemption_rate: f64,
    /// What the standing redemptions took off orders (or drew from gift cards), minor units.
    pub discount_cents_total: i64,
    /// Claims and standing redemptions per day in the campaign's timezone, oldest first.
    pub by_day: Vec<DayRow>,
}

/// A campaign's effectiveness (manager; customers 404).
#[utoipa::path(tag = "reports", security(("bearer" = [])), params(("id" = Uuid, Path, description = "campaign id")), responses((status = 200, body = CampaignReport), (status = 404, body = Problem)))]
#[get("/reports/campaigns/{id}")]
async fn campaign_report(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
) -> Result<web::Json<CampaignReport>, ApiError> {
    if !who.role.includes(Role::Manager) {
        return Err(ApiError::NotFound);
    }
    let campaign = state
        .store
        .campaigns()
        .shared(id.into_inner())
        .ok_or(ApiError::NotFound)?;
    let counts = state.store.codes().counts(campaign.id);
    let claims = state.store.codes().claims_by_slot(campaign.id);
    let redemptions = state.store.orders().redemption_tally(campaign.id);
    Ok(web::Json(CampaignReport {
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
    }))
}
