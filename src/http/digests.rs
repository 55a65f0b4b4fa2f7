//! Digests: a user's history and preview, and the admin's "send today's digests now".

use actix_web::{get, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::auth::existing_user;
use super::error::{ApiError, Problem};
use super::pagination::limit;
use super::views::VoucherView;
use crate::actors::digest::run_now;
use crate::domain::auth::Principal;
use crate::domain::delivery::DeliveryStatus;
use crate::domain::user::Role;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(history).service(preview).service(run);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DigestView {
    pub id: Uuid,
    /// The period's local date.
    pub local_date: NaiveDate,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub voucher_ids: Vec<Uuid>,
    /// Vouchers that matched beyond the listed ones.
    pub more: u64,
    /// The state of its email: pending, sending, sent, failed (retrying) or dead.
    pub status: DeliveryStatus,
    /// The id its email has in the outbox (`GET /deliveries`): the digest's own.
    pub delivery_id: Uuid,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DigestPage {
    pub items: Vec<DigestView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page (a local date).
    pub cursor: Option<NaiveDate>,
}

/// A user's digests, newest first (self or admin).
#[utoipa::path(tag = "digests", security(("bearer" = [])), params(("id" = Uuid, Path, description = "user id"), HistoryQuery), responses((status = 200, body = DigestPage), (status = 400, body = Problem), (status = 404, body = Problem)))]
#[get("/users/{id}/digests")]
async fn history(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
    query: web::Query<HistoryQuery>,
) -> Result<web::Json<DigestPage>, ApiError> {
    let limit = limit(query.limit)?;
    let before = query.cursor;
    let user = existing_user(&state, &who, id.into_inner()).await?;
    let items = state
        .store
        .run(move |s| {
            let records = s.digests().history(user.id, before, limit)?;
            Ok(records
                .into_iter()
                .map(|r| DigestView {
                    id: r.id,
                    local_date: r.local_date,
                    created_at: r.created_at,
                    sent_at: r.delivery.sent_at,
                    voucher_ids: r.voucher_ids,
                    more: r.more,
                    status: r.delivery.status,
                    delivery_id: r.id,
                })
                .collect::<Vec<_>>())
        })
        .await?;
    let next_cursor = (items.len() == limit)
        .then(|| items.last().map(|d| d.local_date.to_string()))
        .flatten();
    Ok(web::Json(DigestPage { items, next_cursor }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DigestPreview {
    /// The period the next digest is for (`null` when digests are off).
    pub local_date: Option<NaiveDate>,
    /// When it is due (`null` when digests are off).
    pub due_at: Option<DateTime<Utc>>,
    /// Vouchers first seen from this instant on are listed.
    pub since: DateTime<Utc>,
    pub vouchers: Vec<VoucherView>,
    pub more: u64,
}

/// What the next digest would hold if it were built now (self or admin).
#[utoipa::path(tag = "digests", security(("bearer" = [])), params(("id" = Uuid, Path, description = "user id")), responses((status = 200, body = DigestPreview), (status = 404, body = Problem)))]
#[get("/users/{id}/digest/preview")]
async fn preview(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
) -> Result<web::Json<DigestPreview>, ApiError> {
    let user = existing_user(&state, &who, id.into_inner()).await?;
    let now = state.clock.now();
    let schedule = state
        .store
        .run(move |s| s.digests().schedule_of(user.id))
        .await?;
    let due = schedule.as_ref().and_then(|s| s.due);
    let period = due.map_or(now.date_naive(), |d| d.period);
    let max = usize::from(state.settings.digest.max_vouchers);
    let draft = state
        .store
        .run(move |s| s.digests().draft(user.id, period, None, now, max))
        .await?;
    let ids = draft.selection.voucher_ids.clone();
    let vouchers = state
        .store
        .run(move |s| {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(v) = s.vouchers().get(id)? {
                    out.push(VoucherView::of(&v, now));
                }
            }
            Ok(out)
        })
        .await?;
    Ok(web::Json(DigestPreview {
        local_date: due.map(|d| d.period),
        due_at: due.map(|d| d.at),
        since: draft.since,
        vouchers,
        more: draft.selection.more,
    }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    /// Only this user (default: everyone).
    pub user_id: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunOutcome {
    /// Digests written to the outbox now.
    pub sent: usize,
    /// Users whose digest for today's period was already sent, had nothing new, or who have
    /// digests off.
    pub skipped: usize,
}

/// Sends now every digest not yet sent for each user's current local period, ignoring the hour
/// (admin). The emails leave through the outbox right after.
#[utoipa::path(tag = "digests", security(("bearer" = [])), request_body(content = RunBody, description = "Optional: absent runs every user; present must be a valid body"), responses((status = 200, body = RunOutcome), (status = 403, body = Problem), (status = 404, body = Problem)))]
#[post("/admin/digests/run")]
async fn run(
    state: web::Data<AppState>,
    who: Principal,
    req: actix_web::HttpRequest,
    body: web::Bytes,
) -> Result<web::Json<RunOutcome>, ApiError> {
    who.require(Role::Admin)?;
    // Absent means everyone; anything else must be a valid body (a malformed one runs nothing).
    let user = super::json::optional_json::<RunBody>(&req, &body)?.user_id;
    if let Some(u) = user
        && state.store.run(move |s| s.users().get(u)).await?.is_none()
    {
        return Err(ApiError::NotFound);
    }
    let done = run_now(
        &state.store,
        &state.actors.outbox_wake,
        &state.clock,
        crate::actors::digest::Composing::of(&state.settings),
        user,
    )
    .await?;
    Ok(web::Json(RunOutcome {
        sent: done.sent,
        skipped: done.skipped,
    }))
}
