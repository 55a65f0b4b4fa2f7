//! What the store's own tests share: a temporary store and a stored user.
#![allow(clippy::unwrap_used)]

use uuid::Uuid;

use super::Store;
use crate::config::StoreSettings;
use crate::domain::user::{DigestFrequency, DigestHour, Email, Role, Timezone, User};

/// A store in `dir` (no fsync: tests need no power-loss safety).
pub(crate) fn store(dir: &std::path::Path) -> Store {
    Store::open(&StoreSettings {
        path: dir.join("data"),
        cache_capacity_mb: 16,
        fsync: false,
        writer_queue: 1024,
    })
    .unwrap()
}

/// A customer in UTC with daily digests at 8 and a confirmed address, not yet stored.
pub(crate) fn user(email: &str) -> User {
    let now = chrono::Utc::now();
    User {
        v: User::VERSION,
        id: Uuid::now_v7(),
        email: Email::parse(email).unwrap(),
        password_hash: String::new(),
        phone: None,
        timezone: Timezone::parse("UTC").unwrap(),
        digest_hour: DigestHour::parse(8).unwrap(),
        digest_frequency: DigestFrequency::Daily,
        role: Role::Customer,
        created_at: now,
        updated_at: now,
        marketing_opt_out_at: None,
        email_verified_at: Some(now),
        pending_email: None,
        phone_verified_at: None,
        phone_challenge: None,
    }
}

/// An open discount campaign (50 % off, a day either side of now), not yet stored.
pub(crate) fn campaign(
    pool_size: u32,
    per_customer_limit: u32,
) -> crate::domain::campaign::Campaign {
    use crate::domain::campaign::{Campaign, CampaignKind, Charset, CodeSpec, Discount};
    let now = chrono::Utc::now();
    Campaign {
        v: Campaign::VERSION,
        id: Uuid::now_v7(),
        name: "test".into(),
        kind: CampaignKind::Discount,
        discount: Some(Discount::Percent(50)),
        gift_balance_cents: None,
        price_cents: None,
        code: CodeSpec::new(None, Some(8), Charset::Upper, "", "").unwrap(),
        pool_size,
        starts_at: now - chrono::Duration::days(1),
        ends_at: now + chrono::Duration::days(1),
        timezone: Timezone::parse("UTC").unwrap(),
        per_customer_limit,
        retailer: None,
        category: None,
        ended_at: None,
        created_at: now,
        updated_at: now,
        promotion: Default::default(),
    }
}
