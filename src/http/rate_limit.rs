//! Rate limiting per verified token (per client address otherwise); sign-in attempts per account
//! and address; new accounts per address; account emails per address they go to; phone codes per
//! number and per address: GCRA limiters keyed in bounded `DashMap`s, shared by all workers. Allowed answers carry `RateLimit-Limit`, `RateLimit-Remaining` and
//! `RateLimit-Reset`; refused ones are 429 `rate_limited` with `Retry-After`.
//! Health, readiness and metrics are exempt: monitoring must not be throttled.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError, web};
use dashmap::DashMap;

use super::AppState;
use super::error::ApiError;
use crate::config::{AccountSettings, RateLimitSettings};

use super::openapi::UNLIMITED as EXEMPT;
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

/// One GCRA limiter: per key, the theoretical arrival time of the next request. Holds at most
/// `max_keys` keys; past that (after dropping idle ones) new keys share one overflow bucket, so an
/// attacker minting keys gets one shared allowance, not unbounded memory.
struct Gcra {
    /// Nanoseconds between two requests at the sustained rate.
    interval: u64,
    burst: u32,
    /// Per key: the theoretical arrival time (ns since `epoch`) of the next request.
    tat: DashMap<String, u64>,
    max_keys: usize,
    last_prune: AtomicU64,
}

const OVERFLOW_KEY: &str = "~overflow";

impl Gcra {
    fn new(interval: u64, burst: u32, max_keys: usize) -> Self {
        Self {
            interval: interval.max(1),
            burst: burst.max(1),
            tat: DashMap::new(),
            max_keys: max_keys.max(1),
            last_prune: AtomicU64::new(0),
        }
    }

    fn tolerance(&self) -> u64 {
        u64::from(self.burst - 1) * self.interval
    }

    /// The key to count `key` under: itself when tracked or when there is room, else the overflow
    /// bucket.
    fn slot<'k>(&self, key: &'k str, now: u64) -> &'k str {
        if self.tat.contains_key(key) {
            return key;
        }
        if self.tat.len() >= self.max_keys {
            self.prune(now, true);
            if self.tat.len() >= self.max_keys {
                return OVERFLOW_KEY;
            }
        }
        key
    }

    /// GCRA: a request is allowed when the key's theoretical arrival time is at most
    /// `(burst - 1) × interval` ahead of now; an allowed request moves it one interval on.
    fn check_at(&self, key: &str, now: u64) -> Decision {
        self.prune(now, false);
        let tolerance = self.tolerance();
        let secs = |ns: u64| ns.div_ceil(1_000_000_000);
        let key = self.slot(key, now);
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

    /// Gives back one request counted for `key` (one that turned out to cost nothing).
    fn refund(&self, key: &str, now: u64) {
        if let Some(mut tat) = self.tat.get_mut(key) {
            *tat = tat.saturating_sub(self.interval).max(now);
        }
    }

    /// Seconds until `key` may go on, without counting anything (0: it may now).
    fn wait_at(&self, key: &str, now: u64) -> u64 {
        let key = if self.tat.contains_key(key) || self.tat.len() < self.max_keys {
            key
        } else {
            OVERFLOW_KEY
        };
        match self.tat.get(key) {
            Some(tat) if *tat > now + self.tolerance() => (*tat - now - self.tolerance())
                .div_ceil(1_000_000_000)
                .max(1),
            _ => 0,
        }
    }

    /// Drops keys whose allowance is back to a full burst (they behave as if never seen): once a
    /// minute, or at once when `force` (the map is full).
    fn prune(&self, now: u64, force: bool) {
        let last = self.last_prune.load(Ordering::Relaxed);
        if !force
            && (now.saturating_sub(last) < PRUNE_EVERY_NANOS
                || self
                    .last_prune
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err())
        {
            return;
        }
        self.tat.retain(|_, tat| *tat > now);
    }
}

/// One client address may fail this many times more logins than one account from it (an office
/// behind one address has several people).
pub const ADDRESS_LOGINS: u64 = 5;

fn login_key(account: &str, address: &str) -> String {
    format!("{account}\u{0}{address}")
}

/// Account emails (confirmation links, "you have an account" notices) one address receives an
/// hour: signing up again and again with someone's address cannot flood their inbox.
pub const MAILS_PER_HOUR: u32 = 3;
/// Phone codes one number receives an hour (from every account together: a number's owner can be
/// delayed only by many confirmed accounts, each spending its own daily allowance).
pub const TEXTS_PER_HOUR: u32 = 10;
/// Phone codes one client address asks for an hour.
pub const TEXTS_PER_ADDRESS_HOUR: u32 = 30;

/// The limits of `[rate_limit]` and `[accounts]`: requests per client; sign-in attempts per
/// account and address; new accounts per address; account emails per recipient; phone codes per
/// number and address.
pub struct RateLimiter {
    requests: Gcra,
    /// Sign-in attempts (right or wrong) per (account, client address).
    logins: Gcra,
    /// Sign-in attempts per client address, over every account: [`ADDRESS_LOGINS`] times an
    /// account's.
    login_addresses: Gcra,
    /// New accounts per client address.
    registrations: Gcra,
    /// Account emails per address they go to.
    mails: Gcra,
    /// Phone codes per number they go to.
    texts_to: Gcra,
    /// Phone codes per client address asking.
    texts_from: Gcra,
    proxies: Vec<(IpAddr, u8)>,
    epoch: Instant,
}

impl RateLimiter {
    pub fn new(settings: &RateLimitSettings, accounts: &AccountSettings) -> Arc<Self> {
        let per_minute = u64::from(settings.login_per_minute.max(1));
        let hourly = |n: u32| {
            Gcra::new(
                3_600_000_000_000 / u64::from(n.max(1)),
                n,
                settings.max_clients,
            )
        };
        Arc::new(Self {
            registrations: hourly(accounts.registrations_per_hour),
            mails: hourly(MAILS_PER_HOUR),
            texts_to: hourly(TEXTS_PER_HOUR),
            texts_from: hourly(TEXTS_PER_ADDRESS_HOUR),
            requests: Gcra::new(
                1_000_000_000 / u64::from(settings.per_second.max(1)),
                settings.burst,
                settings.max_clients,
            ),
            logins: Gcra::new(
                60_000_000_000 / per_minute,
                settings.login_per_minute,
                settings.max_clients,
            ),
            login_addresses: Gcra::new(
                60_000_000_000 / (per_minute * ADDRESS_LOGINS),
                settings
                    .login_per_minute
                    .saturating_mul(ADDRESS_LOGINS as u32),
                settings.max_clients,
            ),
            // Validated with the settings; an entry that does not parse trusts nobody.
            proxies: settings.proxies().unwrap_or_default(),
            epoch: Instant::now(),
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Counts one request of `key` (see [`client_key`]).
    pub fn check(&self, key: &str) -> Decision {
        self.requests.check_at(key, self.now())
    }

    pub fn check_at(&self, key: &str, now: u64) -> Decision {
        self.requests.check_at(key, now)
    }

    /// Refuses a sign-in (or a password check) of `account` from `address` (see
    /// [`client_address`]) when that pair used up its attempts, or the address did over all
    /// accounts. Attempts count per pair, not per account: nobody elsewhere can lock an account
    /// out. Right and wrong passwords count alike (each is a hash), and unknown accounts like
    /// known ones.
    pub fn check_login(&self, account: &str, address: &str) -> Result<(), ApiError> {
        let now = self.now();
        let wait = self
            .logins
            .wait_at(&login_key(account, address), now)
            .max(self.login_addresses.wait_at(address, now));
        match wait {
            0 => Ok(()),
            retry_after => {
                metrics::counter!("voucherd_login_throttled_total").increment(1);
                Err(ApiError::RateLimited { retry_after })
            }
        }
    }

    /// Counts one sign-in attempt of `account` from `address`.
    pub fn login_attempted(&self, account: &str, address: &str) {
        let now = self.now();
        self.logins.check_at(&login_key(account, address), now);
        self.login_addresses.check_at(address, now);
    }

    /// Counts one registration from `address`; refused (429) past `registrations_per_hour`.
    pub fn check_registration(&self, address: &str) -> Result<(), ApiError> {
        let d = self.registrations.check_at(address, self.now());
        if d.allowed {
            Ok(())
        } else {
            metrics::counter!("voucherd_registrations_throttled_total").increment(1);
            Err(ApiError::RateLimited {
                retry_after: d.retry_after_secs,
            })
        }
    }

    /// Whether an account email may go to `address` now (counted when it may).
    pub fn allow_mail(&self, address: &str) -> bool {
        self.mails.check_at(address, self.now()).allowed
    }

    /// Counts a phone code to `phone` at the request of `address`: refused (429) past
    /// [`TEXTS_PER_HOUR`] for the number or [`TEXTS_PER_ADDRESS_HOUR`] for the address. Counted
    /// before the code is decided, so requests at once cannot pass the cap together; one that
    /// then sends nothing (an unconfirmed account, a daily allowance spent) is given back with
    /// [`Self::text_refused`], so refused requests use up nobody's allowance.
    pub fn check_text(&self, phone: &str, address: &str) -> Result<(), ApiError> {
        let now = self.now();
        let to = self.texts_to.check_at(phone, now);
        let from = self.texts_from.check_at(address, now);
        if to.allowed && from.allowed {
            return Ok(());
        }
        if to.allowed {
            self.texts_to.refund(phone, now);
        }
        if from.allowed {
            self.texts_from.refund(address, now);
        }
        metrics::counter!("voucherd_phone_codes_throttled_total").increment(1);
        Err(ApiError::RateLimited {
            retry_after: to.retry_after_secs.max(from.retry_after_secs),
        })
    }

    /// Gives back what [`Self::check_text`] counted for a code that was not sent.
    pub fn text_refused(&self, phone: &str, address: &str) {
        let now = self.now();
        self.texts_to.refund(phone, now);
        self.texts_from.refund(address, now);
    }

    pub fn tracked_keys(&self) -> usize {
        self.requests.tat.len()
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.proxies
            .iter()
            .any(|(net, prefix)| in_block(ip, *net, *prefix))
    }

    /// The client's address: the peer, or, when the peer is a trusted proxy, the nearest address
    /// in `X-Forwarded-For` that is not one (read from the right: entries further left are
    /// whatever the client chose to send).
    pub fn client_ip(&self, peer: Option<IpAddr>, forwarded: &[&str]) -> Option<IpAddr> {
        let mut client = peer?;
        if !self.trusted(client) {
            return Some(client);
        }
        for entry in forwarded.iter().rev().flat_map(|v| v.rsplit(',')) {
            match entry.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.trusted(ip) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        Some(client)
    }
}

/// Whether `ip` is in the block `net/prefix` (an IPv4-mapped IPv6 address counts as IPv4).
fn in_block(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let mask = |bits: u32, width: u32| -> u128 {
        if bits == 0 {
            0
        } else {
            (!0u128 << (width - bits)) & (!0u128 >> (128 - width))
        }
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let m = mask(u32::from(prefix), 32);
            u128::from(u32::from(a)) & m == u128::from(u32::from(b)) & m
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let m = mask(u32::from(prefix), 128);
            u128::from(a) & m == u128::from(b) & m
        }
        _ => false,
    }
}

/// The limiter's key: a verified token's hash, else the client address (an IPv6 client by its
/// /64, which one subscriber usually holds whole). An unknown token gets no bucket of its own, so
/// a fresh fake token per request buys nothing.
fn client_key(req: &ServiceRequest, limiter: &RateLimiter) -> String {
    let state = req.app_data::<web::Data<AppState>>();
    if let (Some(hash), Some(state)) = (super::auth::presented_hash(req.request()), state) {
        // Keyed by who holds the token (the user, or the API key), not the token: logging in
        // again buys no allowance.
        if let Some(meta) = state.store.tokens().lookup(&hash) {
            return format!("u:{}", meta.user_id.unwrap_or(meta.id));
        }
    }
    client_address(req.request(), limiter)
}

/// The client's address as limits count it (an IPv6 client by its /64): the peer's, or the
/// nearest untrusted one in `X-Forwarded-For` when the peer is a trusted proxy.
pub fn client_address(req: &actix_web::HttpRequest, limiter: &RateLimiter) -> String {
    let forwarded: Vec<&str> = req
        .headers()
        .get_all(HeaderName::from_static("x-forwarded-for"))
        .filter_map(|v| v.to_str().ok())
        .collect();
    match limiter.client_ip(req.peer_addr().map(|a| a.ip()), &forwarded) {
        Some(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let net = u128::from(v6) & (!0u128 << 64);
            format!("ip:{}/64", std::net::Ipv6Addr::from(net))
        }
        Some(IpAddr::V6(v6)) => format!(
            "ip:{}",
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        ),
        Some(ip) => format!("ip:{ip}"),
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
    let decision = limiter.check(&client_key(&req, &limiter));
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
        RateLimiter::new(
            &RateLimitSettings {
                per_second,
                burst,
                trusted_proxies: vec!["10.0.0.0/8".into(), "::1".into()],
                login_per_minute: 3,
                max_clients: 100,
                idempotency_keys_per_day: 10,
            },
            &crate::config::Settings::defaults().unwrap().accounts,
        )
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

    #[test]
    fn memory_is_bounded_and_new_keys_past_it_share_one_bucket() {
        let l = limiter(1, 2);
        for i in 0..100 {
            assert!(l.check_at(&format!("k{i}"), SEC).allowed);
        }
        // Full of busy keys: a flood of fresh keys lands in one bucket of two.
        let fresh: Vec<bool> = (0..10)
            .map(|i| l.check_at(&format!("new{i}"), SEC).allowed)
            .collect();
        assert_eq!(fresh.iter().filter(|a| **a).count(), 2, "{fresh:?}");
        assert!(l.tracked_keys() <= 101);
        // Once the old keys are idle they are dropped and new keys get their own bucket again.
        assert!(l.check_at("later", 100 * SEC).allowed);
        assert!(l.tracked_keys() <= 2);
    }

    #[test]
    fn failed_logins_are_throttled_per_account_and_address() {
        let l = limiter(10, 5);
        for _ in 0..3 {
            assert!(l.check_login("a@x.org", "ip:1").is_ok());
            l.login_attempted("a@x.org", "ip:1");
        }
        assert!(matches!(
            l.check_login("a@x.org", "ip:1"),
            Err(ApiError::RateLimited { retry_after }) if (1..=20).contains(&retry_after)
        ));
        assert!(l.check_login("b@x.org", "ip:1").is_ok());
        assert!(
            l.check_login("a@x.org", "ip:2").is_ok(),
            "not locked out elsewhere"
        );
        // One address failing over many accounts is throttled as a whole.
        for n in 0..(3 * ADDRESS_LOGINS) {
            l.login_attempted(&format!("spray{n}@x.org"), "ip:3");
        }
        assert!(l.check_login("fresh@x.org", "ip:3").is_err());
    }

    #[test]
    fn sign_ups_account_mails_and_phone_codes_are_bounded() {
        let l = limiter(10, 5);
        // Ten sign-ups an hour per address (the default).
        for _ in 0..10 {
            assert!(l.check_registration("ip:1").is_ok());
        }
        assert!(l.check_registration("ip:1").is_err());
        assert!(l.check_registration("ip:2").is_ok());
        // Three account emails an hour per recipient.
        let sent = (0..5).filter(|_| l.allow_mail("ann@example.org")).count();
        assert_eq!(sent, MAILS_PER_HOUR as usize);
        // Ten codes an hour per number; thirty per asking address; refused ones are given back.
        let text = |phone: &str| l.check_text(phone, "ip:3").is_ok();
        for _ in 0..50 {
            assert!(text("+4915100000009"), "given back: not counted");
            l.text_refused("+4915100000009", "ip:3");
        }
        for _ in 0..10 {
            assert!(text("+4915100000001"));
        }
        assert!(!text("+4915100000001"));
        for n in 0..20 {
            assert!(text(&format!("+49151000001{n:02}")));
        }
        assert!(
            l.check_text("+4915199999999", "ip:3").is_err(),
            "the address asked for 30"
        );
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let l = limiter(10, 5);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let outsider = Some(ip("203.0.113.9"));
        // A client that is not a proxy cannot choose its own key.
        assert_eq!(l.client_ip(outsider, &["1.2.3.4"]), outsider);
        // Behind a trusted proxy: the nearest untrusted address, not what the client prepended.
        assert_eq!(
            l.client_ip(Some(ip("10.1.2.3")), &["6.6.6.6, 198.51.100.7, 10.9.9.9"]),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(
            l.client_ip(Some(ip("::1")), &["198.51.100.7"]),
            Some(ip("198.51.100.7"))
        );
        // A proxy with nothing forwarded is the client itself.
        assert_eq!(l.client_ip(Some(ip("10.1.2.3")), &[]), Some(ip("10.1.2.3")));
        assert!(in_block(ip("10.200.0.1"), ip("10.0.0.0"), 8));
        assert!(!in_block(ip("11.0.0.1"), ip("10.0.0.0"), 8));
        assert!(in_block(ip("::ffff:10.0.0.1"), ip("10.0.0.0"), 8));
        assert!(in_block(ip("2001:db8::1"), ip("2001:db8::"), 32));
        assert!(in_block(ip("1.2.3.4"), ip("0.0.0.0"), 0));
    }
}
