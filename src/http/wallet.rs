//! `/api/v1/wallet` (the codes a customer holds) and `/api/v1/codes/{code}` (validate one code).

use actix_web::{get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::error::ApiError;
use crate::domain::auth::Principal;
use crate::domain::campaign::{CodeRecord, CodeStatus};
use crate::domain::user::{Phone, Role};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(wallet).service(code);
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WalletQuery {
    /// Managers: the customer with this phone number (E.164). With `customer` too, both must
    /// name the same customer (404 otherwise).
    #[param(pattern = "^\\+[1-9][0-9]{1,14}$")]
    pub phone: Option<String>,
    /// Managers: the customer with this id.
    pub customer: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HeldCode {
    pub code: String,
    pub campaign_id: Uuid,
    pub campaign: String,
    /// `claimed` or `redeemed`; `expired` once the campaign is over and it was not redeemed.
    pub status: String,
    pub claimed_at: Option<DateTime<Utc>>,
    pub balance_cents: Option<i64>,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
}

/// A code a provider server gave for one of the customer's requests.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderCode {
    pub code: String,
    pub provider: String,
    pub product: String,
    pub request_id: Uuid,
    pub fulfilled_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Wallet {
    pub customer: Uuid,
    /// Campaign codes.
    pub items: Vec<HeldCode>,
    /// Codes from provider servers (`POST /code-requests`), in the order they came.
    pub provider_codes: Vec<ProviderCode>,
}

fn status_of(r: &CodeRecord, open_until: DateTime<Utc>, now: DateTime<Utc>) -> &'static str {
    match r.status {
        CodeStatus::Redeemed => "redeemed",
        _ if now >= open_until => "expired",
        CodeStatus::Claimed => "claimed",
        CodeStatus::Available => "available",
    }
}

/// Every code a customer holds, in the order they got them: a customer their own; a manager
/// anyone's by `phone` or `customer`.
#[utoipa::path(tag = "wallet", security(("bearer" = [])), params(WalletQuery), responses((status = 200, body = Wallet), (status = 404, description = "no customer with that phone or id (or an API key asking for its own)", body = super::error::Problem)))]
#[get("/wallet")]
async fn wallet(
    state: web::Data<AppState>,
    who: Principal,
    query: web::Query<WalletQuery>,
) -> Result<web::Json<Wallet>, ApiError> {
    let q = query.into_inner();
    let customer = match (q.phone, q.customer) {
        (None, None) => who.user_id.ok_or(ApiError::NotFound)?,
        (phone, customer) => {
            who.require(Role::Manager)?;
            let by_phone = match phone {
                Some(phone) => {
                    let phone = Phone::parse(&phone)?;
                    let found = state.store.run(move |s| s.users().by_phone(&phone)).await?;
                    Some(found.ok_or(ApiError::NotFound)?)
                }
                None => None,
            };
            match (by_phone, customer) {
                // Both given: they must name the same customer.
                (Some(a), Some(b)) if a != b => return Err(ApiError::NotFound),
                (Some(id), _) | (None, Some(id)) => id,
                (None, None) => return Err(ApiError::NotFound),
            }
        }
    };
    let now = state.clock.now();
    let items = state
        .store
        .run(move |s| {
            let held = s.codes().held_by(customer)?;
            let mut items = Vec::with_capacity(held.len());
            for r in held {
                let Some(c) = s.campaigns().get(r.campaign_id)? else {
                    continue;
                };
                items.push(HeldCode {
                    status: status_of(&r, c.closes_at(), now).to_owned(),
                    code: r.code,
                    campaign_id: c.id,
                    campaign: c.name,
                    claimed_at: r.claimed_at,
                    balance_cents: r.balance_cents,
                    valid_from: c.starts_at,
                    valid_until: c.ends_at,
                });
            }
            let provider_codes = s
                .code_requests()
                .fulfilled_for(customer)?
                .into_iter()
                .filter_map(|r| {
                    Some(ProviderCode {
                        code: r.code?,
                        provider: r.provider,
                        product: r.product,
                        request_id: r.id,
                        fulfilled_at: r.fulfilled_at,
                    })
                })
                .collect();
            Ok((items, provider_codes))
        })
        .await?;
    let (items, provider_codes) = items;
    Ok(web::Json(Wallet {
        customer,
        items,
        provider_codes,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CodeCheck {
    pub code: String,
    pub campaign_id: Uuid,
    /// `available`, `claimed`, `redeemed` or `expired`.
    pub status: String,
    pub balance_cents: Option<i64>,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
}

/// Validate a code: its state and window (a manager, or the customer holding it; anyone else 404).
#[utoipa::path(tag = "wallet", security(("bearer" = [])), params(("code" = String, Path, description = "the code")), responses((status = 200, body = CodeCheck)))]
#[get("/codes/{code}")]
async fn code(
    state: web::Data<AppState>,
    who: Principal,
    code: web::Path<String>,
) -> Result<web::Json<CodeCheck>, ApiError> {
    let code = code.into_inner();
    let now = state.clock.now();
    let found = state
        .store
        .run(move |s| {
            let Some(r) = s.codes().get(&code)? else {
                return Ok(None);
            };
            Ok(s.campaigns().get(r.campaign_id)?.map(|c| (r, c)))
        })
        .await?;
    let (r, c) = found.ok_or(ApiError::NotFound)?;
    let holder = r.holder.is_some() && r.holder == who.user_id;
    if !who.role.includes(Role::Manager) && !holder {
        return Err(ApiError::NotFound);
    }
    Ok(web::Json(CodeCheck {
        status: status_of(&r, c.closes_at(), now).to_owned(),
        code: r.code,
        campaign_id: c.id,
        balance_cents: r.balance_cents,
        valid_from: c.starts_at,
        valid_until: c.ends_at,
    }))
}
