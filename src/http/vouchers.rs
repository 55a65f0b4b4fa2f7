//! `/api/v1/vouchers`, `/retailers`, `/categories`: the public catalogue of collected vouchers.
//!
//! Listings page over a store index, newest first. Hot listings are cached in a `DashMap` keyed by
//! the query; an entry is served while the catalogue generation it was built at is current (every
//! ingest and sweep bumps it) and it is younger than `catalogue.cache_ttl_s` (so time alone —
//! a voucher ending — shows within that time).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{get, web};

use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, Problem};
use super::pagination::limit;
use super::views::VoucherView;
use crate::domain::voucher::MAX_NAME;
use crate::store::vouchers::{Filter, Named};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list)
        .service(get_one)
        .service(retailers)
        .service(categories);
}

/// Cached listings beyond this many are dropped wholesale (the cache refills with what is hot).
const CACHE_ENTRIES: usize = 1024;

/// The listing cache (one per application, shared by all workers).
pub struct ListingCache {
    entries: DashMap<CacheKey, Cached>,
    ttl: Duration,
}

type CacheKey = (Filter, Option<Uuid>, usize);

struct Cached {
    generation: u64,
    at: Instant,
    page: Arc<VoucherPage>,
}

impl ListingCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            entries: DashMap::new(),
            ttl,
        }
    }

    fn get(&self, key: &CacheKey, generation: u64) -> Option<Arc<VoucherPage>> {
        let hit = self.entries.get(key)?;
        (hit.generation == generation && hit.at.elapsed() < self.ttl).then(|| hit.page.clone())
    }

    fn put(&self, key: CacheKey, generation: u64, page: Arc<VoucherPage>) {
        if self.entries.len() >= CACHE_ENTRIES {
            self.entries.clear();
        }
        self.entries.insert(
            key,
            Cached {
                generation,
                at: Instant::now(),
                page,
            },
        );
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VoucherPage {
    pub items: Vec<VoucherView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VoucherQuery {
    /// Retailer name (any case; blank means any).
    #[param(max_length = 200, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub retailer: Option<String>,
    /// Category name (any case; blank means any).
    #[param(max_length = 200, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub category: Option<String>,
    /// Text in the title, description, retailer or code (any case; blank means any).
    #[param(max_length = 100, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub q: Option<String>,
    /// Network name (blank means any).
    #[param(max_length = 64, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub network: Option<String>,
    /// Only vouchers valid now (default true); `false` lists upcoming and expired ones too.
    pub active: Option<bool>,
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
}

fn text(
    field: &'static str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, ApiError> {
    match value {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) if v.chars().count() > max => Err(ApiError::BadRequest(format!(
            "{field} must be at most {max} characters"
        ))),
        Some(v) if v.chars().any(char::is_control) => Err(ApiError::BadRequest(format!(
            "{field} must not contain control characters"
        ))),
        Some(v) => Ok(Some(v.trim().to_owned())),
    }
}

/// Collected vouchers, newest first, filtered (anyone).
#[utoipa::path(tag = "vouchers", params(VoucherQuery), responses((status = 200, body = VoucherPage), (status = 400, body = Problem)))]
#[get("/vouchers")]
async fn list(
    state: web::Data<AppState>,
    query: web::Query<VoucherQuery>,
) -> Result<web::Json<Arc<VoucherPage>>, ApiError> {
    let query = query.into_inner();
    let limit = limit(query.limit)?;
    let after = query.cursor;
    let filter = Filter {
        retailer: text("retailer", query.retailer, MAX_NAME)?,
        category: text("category", query.category, MAX_NAME)?,
        network: text("network", query.network, 64)?,
        q: text("q", query.q, 100)?,
        active: query.active.unwrap_or(true),
    };
    let key = (filter.clone(), after, limit);
    // The generation is read before the data, so a page built from older data is never cached
    // under a newer generation.
    let generation = state.store.catalogue_generation();
    if let Some(page) = state.listing_cache.get(&key, generation) {
        return Ok(web::Json(page));
    }
    let now = state.clock.now();
    let listing = state
        .store
        .run(move |s| s.vouchers().list(&filter, after, limit, now))
        .await?;
    let page = Arc::new(VoucherPage {
        items: listing
            .items
            .iter()
            .map(|v| VoucherView::of(v, now))
            .collect(),
        next_cursor: listing.next.map(|id| id.to_string()),
    });
    state.listing_cache.put(key, generation, page.clone());
    Ok(web::Json(page))
}

/// One collected voucher (anyone).
#[utoipa::path(tag = "vouchers", params(("id" = Uuid, Path, description = "voucher id")), responses((status = 200, body = VoucherView), (status = 404, body = Problem)))]
#[get("/vouchers/{id}")]
async fn get_one(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<web::Json<VoucherView>, ApiError> {
    let id = id.into_inner();
    let now = state.clock.now();
    let voucher = state
        .store
        .run(move |s| s.vouchers().get(id))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(web::Json(VoucherView::of(&voucher, now)))
}

/// A retailer or category and how many of its vouchers are active.
#[derive(Debug, Serialize, ToSchema)]
pub struct NameView {
    pub name: String,
    pub active_vouchers: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NamePage {
    pub items: Vec<NameView>,
    pub next_cursor: Option<String>,
}

/// Retailers in name order, with their active voucher counts (anyone).
/// `?limit=&cursor=` for name lists: the cursor is the last name key of the previous page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NameQuery {
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page (names after it, in order; blank means the start).
    #[param(max_length = 800, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub cursor: Option<String>,
}

#[utoipa::path(tag = "vouchers", params(NameQuery), responses((status = 200, body = NamePage), (status = 400, body = Problem)))]
#[get("/retailers")]
async fn retailers(
    state: web::Data<AppState>,
    query: web::Query<NameQuery>,
) -> Result<web::Json<NamePage>, ApiError> {
    names(&state, &query, Named::Retailer).await
}

/// Categories in name order, with their active voucher counts (anyone).
#[utoipa::path(tag = "vouchers", params(NameQuery), responses((status = 200, body = NamePage), (status = 400, body = Problem)))]
#[get("/categories")]
async fn categories(
    state: web::Data<AppState>,
    query: web::Query<NameQuery>,
) -> Result<web::Json<NamePage>, ApiError> {
    names(&state, &query, Named::Category).await
}

async fn names(
    state: &AppState,
    query: &NameQuery,
    which: Named,
) -> Result<web::Json<NamePage>, ApiError> {
    let limit = limit(query.limit)?;
    let after = text("cursor", query.cursor.clone(), 4 * MAX_NAME)?;
    let items = state
        .store
        .run(move |s| s.vouchers().names(which, after.as_deref(), limit))
        .await?;
    let next_cursor = (items.len() == limit)
        .then(|| items.last().map(|n| n.key.clone()))
        .flatten();
    Ok(web::Json(NamePage {
        items: items
            .into_iter()
            .map(|n| NameView {
                name: n.name,
                active_vouchers: n.active,
            })
            .collect(),
        next_cursor,
    }))
}
