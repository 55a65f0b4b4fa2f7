//! `/api/v1/wallet` (the codes a customer holds) and `/api/v1/codes/{code}` (validate one code).

use actix_web::{get, patch, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::error::ApiError;
use crate::domain::auth::Principal;
use crate::domain::campaign::{CodeRecord, CodeStatus};
use crate::domain::checkout::code_expires_at;
use crate::domain::user::{Phone, Role};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(wallet)
        .service(code)
        .service(code_qr)
        .service(set_code);
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeChange {
    /// A disabled code is not handed out, and answers `disabled` when validated or redeemed.
    pub disabled: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CodeFlagsView {
    pub code: String,
    pub campaign_id: Uuid,
    pub disabled: bool,
    /// A shared code (redeemed by anyone, up to `usage_limit`).
    pub shared: bool,
    pub usage_limit: Option<u64>,
}

/// Disable or enable one code (manager).
#[utoipa::path(tag = "wallet", security(("bearer" = [])), params(("code" = String, Path, description = "the code", pattern = "^[^\\s\\u0000-\\u001F\\u007F-\\u009F,;\"]{1,64}$")), request_body = CodeChange, responses((status = 200, body = CodeFlagsView), (status = 404, body = super::error::Problem)))]
#[patch("/codes/{code}")]
async fn set_code(
    state: web::Data<AppState>,
    who: Principal,
    path: web::Path<String>,
    body: web::Json<CodeChange>,
) -> Result<web::Json<CodeFlagsView>, ApiError> {
    who.require(Role::Manager)?;
    let (record, flags) =
        crate::service::campaigns::set_disabled(&state.services, path.into_inner(), body.disabled)
            .await?;
    Ok(web::Json(CodeFlagsView {
        code: record.code,
        campaign_id: record.campaign_id,
        disabled: flags.disabled,
        shared: flags.shared,
        usage_limit: flags.usage_limit,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WalletQuery {
    /// Managers: everything under this phone number (E.164): its account's codes, and codes
    /// bought or requested with it. With `customer` too, both must name the same account (404
    /// otherwise).
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
    /// `claimed` or `redeemed`; `expired` once it is no longer valid and was not redeemed.
    pub status: String,
    pub claimed_at: Option<DateTime<Utc>>,
    pub balance_cents: Option<i64>,
    pub valid_from: DateTime<Utc>,
    /// The campaign's end, or earlier for a code valid some days after its claim.
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
    /// The account the codes are held in (none when a phone number has no account).
    pub customer: Option<Uuid>,
    /// Campaign codes.
    pub items: Vec<HeldCode>,
    /// Codes from provider servers (`POST /code-requests`), in the order they came.
    pub provider_codes: Vec<ProviderCode>,
}

fn status_of(r: &CodeRecord, open_until: DateTime<Utc>, now: DateTime<Utc>) -> &'static str {
    match r.status {
        CodeStatus::Redeemed => "redeemed",
        CodeStatus::Reserved => "reserved",
        _ if now >= open_until => "expired",
        CodeStatus::Claimed => "claimed",
        CodeStatus::Available => "available",
    }
}

/// Every code a customer holds, in the order they got them: a customer their own; a manager
/// anyone's by `customer`, or by `phone`: the codes of the account with that number, every code
/// bought with it (orders placed with that phone) and every code requested with it (code
/// requests with that phone), guests' included.
#[utoipa::path(tag = "wallet", security(("bearer" = [])), params(WalletQuery), responses((status = 200, body = Wallet), (status = 404, description = "no customer with that id (or an API key asking for its own)", body = super::error::Problem)))]
#[get("/wallet")]
async fn wallet(
    state: web::Data<AppState>,
    who: Principal,
    query: web::Query<WalletQuery>,
) -> Result<web::Json<Wallet>, ApiError> {
    let q = query.into_inner();
    let (customer, phone): (Option<Uuid>, Option<Phone>) = match (q.phone, q.customer) {
        (None, None) => (Some(who.user_id.ok_or(ApiError::NotFound)?), None),
        (phone, customer) => {
            who.require(Role::Manager)?;
            let phone = phone.map(|p| Phone::parse(&p)).transpose()?;
            let by_phone = match &phone {
                Some(phone) => {
                    let phone = phone.clone();
                    state.store.run(move |s| s.users().by_phone(&phone)).await?
                }
                None => None,
            };
            match (by_phone, customer) {
                // Both given: they must name the same customer.
                (Some(a), Some(b)) if a != b => return Err(ApiError::NotFound),
                (Some(id), _) => (Some(id), phone),
                (None, Some(id)) if phone.is_none() => {
                    state.store.users().role(id).ok_or(ApiError::NotFound)?;
                    (Some(id), None)
                }
                (None, Some(_)) => return Err(ApiError::NotFound),
                (None, None) => (None, phone),
            }
        }
    };
    let now = state.clock.now();
    let found = state
        .store
        .run(move |s| {
            let mut records = match customer {
                Some(c) => s.codes().held_by(c)?,
                None => Vec::new(),
            };
            let mut requests = match customer {
                Some(c) => s.code_requests().fulfilled_for(c)?,
                None => Vec::new(),
            };
            if let Some(phone) = &phone {
                let phone = phone.as_str();
                let mut seen: std::collections::HashSet<String> =
                    records.iter().map(|r| r.code.clone()).collect();
                // What each order bought and still holds (an expired order's codes went back,
                // and may be someone else's since).
                for order in s.orders().by_phone(phone)? {
                    for r in s.orders().codes_of(&order)? {
                        if seen.insert(r.code.clone()) {
                            records.push(r);
                        }
                    }
                }
                let known: std::collections::HashSet<Uuid> =
                    requests.iter().map(|r| r.id).collect();
                for r in s.code_requests().fulfilled_for_phone(phone)? {
                    if !known.contains(&r.id) {
                        requests.push(r);
                    }
                }
            }
            let mut items = Vec::with_capacity(records.len());
            // Codes held for an unpaid order are nobody's yet.
            for r in records
                .into_iter()
                .filter(|r| r.status != CodeStatus::Reserved)
            {
                let Some(c) = s.campaigns().get(r.campaign_id)? else {
                    continue;
                };
                let holder_tz = match (r.holder, c.promotion.expire_at_local_end_of_day) {
                    (Some(h), true) => s.users().get(h)?.map(|u| u.timezone.0),
                    _ => None,
                };
                let until = code_expires_at(&c, r.claimed_at, holder_tz);
                items.push(HeldCode {
                    status: status_of(&r, until, now).to_owned(),
                    code: r.code,
                    campaign_id: c.id,
                    campaign: c.name,
                    claimed_at: r.claimed_at,
                    balance_cents: r.balance_cents,
                    valid_from: c.starts_at,
                    valid_until: until,
                });
            }
            let provider_codes = requests
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
    let (items, provider_codes) = found;
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
    /// The campaign's name.
    pub campaign: String,
    /// `available`, `reserved` (held for an unpaid order), `claimed`, `redeemed` or `expired`.
    pub status: String,
    pub balance_cents: Option<i64>,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
    pub claimed_at: Option<DateTime<Utc>>,
    /// Who holds it (shown to managers only).
    pub holder: Option<Uuid>,
    /// Disabled by a manager: neither handed out nor redeemable (`PATCH /codes/{code}`).
    pub disabled: bool,
}

/// Validate a code: its state and window (a manager, or the customer holding it; anyone else 404).
#[utoipa::path(tag = "wallet", security(("bearer" = [])), params(("code" = String, Path, description = "the code", pattern = "^[^\\s\\u0000-\\u001F\\u007F-\\u009F,;\"]{1,64}$")), responses((status = 200, body = CodeCheck)))]
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
            let Some(c) = s.campaigns().get(r.campaign_id)? else {
                return Ok(None);
            };
            let holder_tz = match (r.holder, c.promotion.expire_at_local_end_of_day) {
                (Some(h), true) => s.users().get(h)?.map(|u| u.timezone.0),
                _ => None,
            };
            Ok(Some((r, c, holder_tz)))
        })
        .await?;
    let (r, c, holder_tz) = found.ok_or(ApiError::NotFound)?;
    let until = code_expires_at(&c, r.claimed_at, holder_tz);
    // A code held for an unpaid order is not its customer's yet.
    let holder = r.holder.is_some() && r.holder == who.user_id && r.status != CodeStatus::Reserved;
    if !who.role.includes(Role::Manager) && !holder {
        return Err(ApiError::NotFound);
    }
    let disabled = state
        .store
        .codes()
        .flags(&r.code)
        .is_some_and(|f| f.disabled);
    Ok(web::Json(CodeCheck {
        status: status_of(&r, until, now).to_owned(),
        campaign_id: c.id,
        campaign: c.name,
        balance_cents: r.balance_cents,
        valid_from: c.starts_at,
        valid_until: until,
        claimed_at: r.claimed_at,
        holder: r.holder.filter(|_| who.role.includes(Role::Manager)),
        disabled,
        code: r.code,
    }))
}

/// A code as a QR code to show at a till (a manager, or the customer holding it; anyone else
/// 404): SVG, black on white, with a quiet zone.
#[utoipa::path(tag = "wallet", security(("bearer" = [])), params(("code" = String, Path, description = "the code", pattern = "^[^\\s\\u0000-\\u001F\\u007F-\\u009F,;\"]{1,64}$")), responses((status = 200, description = "the QR code", content_type = "image/svg+xml"), (status = 404, body = super::error::Problem)))]
#[get("/codes/{code}/qr.svg")]
async fn code_qr(
    state: web::Data<AppState>,
    who: Principal,
    path: web::Path<String>,
) -> Result<actix_web::HttpResponse, ApiError> {
    let wanted = path.into_inner();
    let record = state
        .store
        .run(move |s| s.codes().get(&wanted))
        .await?
        .ok_or(ApiError::NotFound)?;
    let holder = record.holder.is_some()
        && record.holder == who.user_id
        && record.status != CodeStatus::Reserved;
    if !who.role.includes(Role::Manager) && !holder {
        return Err(ApiError::NotFound);
    }
    let qr = qrcode::QrCode::new(record.code.as_bytes())
        .map_err(|e| ApiError::internal(format!("QR code: {e}")))?;
    let svg = qr
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(160, 160)
        .quiet_zone(true)
        .build();
    Ok(actix_web::HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header(("Cache-Control", "private, no-store"))
        .insert_header(("Content-Security-Policy", "default-src 'none'"))
        .body(svg))
}
