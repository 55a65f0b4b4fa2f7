//! Rate limiting per token (per IP when anonymous): a GCRA limiter keyed in a `DashMap`, shared by
//! all workers. Allowed answers carry `RateLimit-Limit`, `RateLimit-Remaining` and
//! `RateLimit-Reset`; refused ones are 429 `rate_limited` with `Retry-After`.
//! Health, readiness and metrics are exempt: monitoring must not be throttled.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{AUTHORIZATION, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError, web};
use dashmap::DashMap;

use super::AppState;
use super::error::ApiError;
use crate::config::RateLimitSettings;

const EXEMPT: &[&str] = &["/healthz", "/readyz", "/metrics"];
/// How often idle keys are dropped from the map.
const PRUNE_EVERY_NANOS: u64 = 60_000_000_000;

/// The outcome for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the full burst is available again.
    pub reset_secs: u64,
    /// Seconds until the next request would be allowed (0 when allowed).
    pub retry_after_secs: u64,
}

pub struct RateLimiter {
    /// Nanoseconds between two requests at the sustained rate.
    interval: u64,
    burst: u32,
    /// Per key: the theoretical arrival time (ns since `epoch`) of the next request.
    tat: DashMap<String, u64>,
    epoch: Instant,
    last_prune: AtomicU64,
}

impl RateLimiter {
    pub fn new(settings: &RateLimitSettings) -> Arc<Self> {
        Arc::new(Self {
            interval: 1_000_000_000 / u64::from(settings.per_second.max(1)),
            burst: settings.burst.max(1),
            tat: DashMap::new(),
            epoch: Instant::now(),
            last_prune: AtomicU64::new(0),
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    pub fn check(&self, key: &str) -> Decision {
        self.check_at(key, self.now())
    }

    /// GCRA: a request is allowed when the key's theoretical arrival time is at most
    /// `(burst - 1) × interval` ahead of now.
    pub fn check_at(&self, key: &str, now: u64) -> Decision {
        self.maybe_prune(now);
        let tolerance = u64::from(self.burst - 1) * self.interval;
        let secs = |ns: u64| ns.div_ceil(1_000_000_000);
        let mut entry = self.tat.entry(key.to_owned()).or_insert(now);
        let tat = (*entry).max(now);
        if tat > now + tolerance {
            let wait = tat - now - tolerance;
            return Decision {
                allowed: false,
                limit: self.burst,
                remaining: 0,
                reset_secs: secs(tat - now),
                retry_after_secs: secs(wait).max(1),
            };
        }
        let next = tat + self.interval;
        *entry = next;
        let headroom = (now + tolerance + self.interval).saturating_sub(next);
        Decision {
            allowed: true,
            limit: self.burst,
            remaining: u32::try_from(headroom / self.interval).unwrap_or(u32::MAX),
            reset_secs: secs(next - now),
            retry_after_secs: 0,
        }
    }

    /// Drops keys whose allowance is back to a full burst (they behave as if never seen).
    fn maybe_prune(&self, now: u64) {
        let last = self.last_prune.load(Ordering::Relaxed);
        if now.saturating_sub(last) < PRUNE_EVERY_NANOS
            || self
                .last_prune
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        self.tat.retain(|_, tat| *tat > now);
    }

    pub fn tracked_keys(&self) -> usize {
        self.tat.len()
    }
}

/// The limiter's key: a hash of the bearer token when one is presented, else the peer IP.
fn key_for(req: &ServiceRequest) -> String {
    if let Some(auth) = req.headers().get(AUTHORIZATION) {
        let digest = crate::domain::auth::token_hash(&String::from_utf8_lossy(auth.as_bytes()));
        return format!("t:{}", hex::encode(&digest[..16]));
    }
    match req.peer_addr() {
        Some(addr) => format!("ip:{}", addr.ip()),
        None => "ip:unknown".to_owned(),
    }
}

fn set(res_headers: &mut actix_web::http::header::HeaderMap, name: &'static str, value: u64) {
    if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
        res_headers.insert(HeaderName::from_static(name), v);
    }
}

/// The middleware (`actix_web::middleware::from_fn`).
pub async fn limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let limiter = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.rate_limiter.clone());
    let Some(limiter) = limiter.filter(|_| !EXEMPT.contains(&req.path())) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let decision = limiter.check(&key_for(&req));
    if !decision.allowed {
        let mut res = ApiError::RateLimited {
            retry_after: decision.retry_after_secs,
        }
        .error_response();
        let h = res.headers_mut();
        set(h, "ratelimit-limit", u64::from(decision.limit));
        set(h, "ratelimit-remaining", 0);
        set(h, "ratelimit-reset", decision.reset_secs);
        metrics::counter!("voucherd_http_rate_limited_total").increment(1);
        return Ok(req.into_response(res).map_into_right_body());
    }
    let mut res = next.call(req).await?;
    let h = res.headers_mut();
    set(h, "ratelimit-limit", u64::from(decision.limit));
    set(h, "ratelimit-remaining", u64::from(decision.remaining));
    set(h, "ratelimit-reset", decision.reset_secs);
    Ok(res.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn limiter(per_second: u32, burst: u32) -> Arc<RateLimiter> {
        RateLimiter::new(&RateLimitSettings { per_second, burst })
    }

    #[test]
    fn allows_a_burst_then_the_sustained_rate() {
        let l = limiter(10, 5);
        let t0 = 10 * SEC;
        for i in 0..5 {
            let d = l.check_at("k", t0);
            assert!(d.allowed, "request {i}");
            assert_eq!(d.remaining, 4 - i);
        }
        let refused = l.check_at("k", t0);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_secs, 1);
        // One interval (100 ms) later exactly one more is allowed.
        assert!(l.check_at("k", t0 + SEC / 10).allowed);
        assert!(!l.check_at("k", t0 + SEC / 10).allowed);
        // Other keys are independent.
        assert!(l.check_at("other", t0).allowed);
    }

    #[test]
    fn idle_keys_are_pruned() {
        let l = limiter(10, 5);
        l.check_at("a", SEC);
        l.check_at("b", SEC);
        assert_eq!(l.tracked_keys(), 2);
        l.check_at("c", 200 * SEC);
        assert_eq!(l.tracked_keys(), 1);
    }
}
