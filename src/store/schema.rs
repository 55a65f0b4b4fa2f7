//! The stored schema version and the ordered migration runner.
//!
//! `meta["schema_version"]` holds the version the data was last migrated to (u32 BE). At open,
//! every migration with a higher version runs in order, each one's version stored after it
//! succeeds, so a crash mid-way resumes at the migration that did not finish. A store written by a
//! newer build (version above the newest known) is refused rather than misread.

use super::{StoreError, Trees};

const VERSION_KEY: &str = "schema_version";

pub(crate) struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub run: fn(&sled::Db, &Trees) -> Result<(), StoreError>,
}

/// All migrations, oldest first. Append; never edit or reorder a released one.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "count existing users",
        run: count_users,
    },
    Migration {
        version: 2,
        name: "user and token indexes move to memory",
        run: drop_user_index_trees,
    },
    Migration {
        version: 3,
        name: "catalogue indexes and counters move to memory; pulls stage in memory",
        run: drop_catalogue_index_trees,
    },
    Migration {
        version: 4,
        name: "a digest record is its own outbox entry; schedules and followers in memory",
        run: digests_carry_their_delivery,
    },
    Migration {
        version: 5,
        name: "records from JSON to postcard",
        run: records_to_postcard,
    },
    Migration {
        version: 6,
        name: "tokens record who made an API key",
        run: tokens_record_their_creator,
    },
    Migration {
        version: 7,
        name: "day tallies of delivery outcomes for reports",
        run: tally_delivery_outcomes,
    },
    Migration {
        version: 8,
        name: "campaigns and redemptions carry checkout rules",
        run: campaigns_carry_checkout_rules,
    },
    Migration {
        version: 9,
        name: "users carry their marketing email choice",
        run: users_carry_marketing_choice,
    },
    Migration {
        version: 10,
        name: "users carry whether their address and number are confirmed",
        run: users_carry_confirmations,
    },
    Migration {
        version: 11,
        name: "orders carry their payment",
        run: orders_carry_their_payment,
    },
];

/// The users counter of version 1 (dropped again by version 2).
const USERS_COUNTER: &str = "users";

/// Version 1 introduced the explicit `users` counter; derive it from the data once.
fn count_users(db: &sled::Db, trees: &Trees) -> Result<(), StoreError> {
    let n = trees.users.iter().count() as u64;
    db.open_tree("counters")?
        .insert(USERS_COUNTER, &super::keys::u64_key(n))?;
    Ok(())
}

/// Trees version 2 dropped (their indexes live in memory).
const RETIRED_BY_V2: &[&str] = &["email_user", "user_token", "token_expiry"];
/// Trees version 3 dropped (catalogue indexes and counters in memory, no staging).
const RETIRED_BY_V3: &[&str] = &[
    "counters",
    "external_voucher",
    "retailer_voucher",
    "category_voucher",
    "network_voucher",
    "voucher_due",
    "retailers",
    "categories",
    "feed_staging",
];
/// Trees version 4 dropped (deliveries inside digest records; schedules, followers in memory).
const RETIRED_BY_V4: &[&str] = &[
    "deliveries",
    "outbox",
    "digest_schedule",
    "digest_due",
    "target_subscriber",
];

/// Whether older versions kept a tree that a migration dropped: a backup from such a version may
/// still carry it, and restoring it keeps it until the migration runs on the next open.
pub(crate) fn is_retired(tree: &str) -> bool {
    [RETIRED_BY_V2, RETIRED_BY_V3, RETIRED_BY_V4]
        .iter()
        .any(|names| names.contains(&tree))
}

/// Version 2: the email, user → token and token expiry indexes and the users counter are kept in
/// memory, rebuilt from `users` and `tokens` at open (one key per user or token written).
fn drop_user_index_trees(db: &sled::Db, _trees: &Trees) -> Result<(), StoreError> {
    for name in RETIRED_BY_V2 {
        db.drop_tree(name)?;
    }
    db.open_tree("counters")?.remove(USERS_COUNTER)?;
    Ok(())
}

/// Version 3: identity, listing, due-time and name indexes of the catalogue and every counter are
/// kept in memory, rebuilt from `vouchers` at open (one key per voucher written); multi-page
/// pulls are journalled instead of staged, so the staging tree goes too.
fn drop_catalogue_index_trees(db: &sled::Db, _trees: &Trees) -> Result<(), StoreError> {
    for name in RETIRED_BY_V3 {
        db.drop_tree(name)?;
    }
    Ok(())
}

/// A digest record as versions 1 to 3 stored it (its delivery in the `deliveries` tree).
#[derive(serde::Deserialize)]
struct DigestV1 {
    id: uuid::Uuid,
    user_id: uuid::Uuid,
    local_date: chrono::NaiveDate,
    created_at: chrono::DateTime<chrono::Utc>,
    voucher_ids: Vec<uuid::Uuid>,
    #[serde(default)]
    more: u64,
    delivery_id: uuid::Uuid,
}

/// Version 4: each digest record takes in its delivery's state (`r` ‖ user ‖ period) and gets an
/// open marker (`o` ‖ user ‖ period) while its email is owed; the `deliveries`, `outbox`,
/// schedule, due and follower trees go (schedules and followers are rebuilt in memory).
fn digests_carry_their_delivery(db: &sled::Db, trees: &Trees) -> Result<(), StoreError> {
    use crate::domain::delivery::{Delivery, DeliveryState};
    use crate::domain::digest::DigestRecord;
    use crate::store::digests::{open_key, record_key};
    let deliveries = db.open_tree("deliveries")?;
    let mut batch = sled::Batch::default();
    for kv in trees.digests.iter() {
        let (k, raw) = kv?;
        if k.len() != 20 {
            continue; // already in the new layout (a migration resumed after a crash)
        }
        let old: DigestV1 = super::decode(&raw)?;
        let delivery = match deliveries.get(old.delivery_id.as_bytes())? {
            Some(d) => {
                let d: Delivery = super::decode(&d)?;
                DeliveryState {
                    status: d.status,
                    attempts: d.attempts,
                    next_attempt_at: d.next_attempt_at,
                    last_error: d.last_error,
                    updated_at: d.updated_at,
                    sent_at: d.sent_at,
                }
            }
            None => DeliveryState::new(old.created_at),
        };
        let open = delivery.status.is_open();
        let record = DigestRecord {
            v: DigestRecord::VERSION,
            id: old.id,
            user_id: old.user_id,
            local_date: old.local_date,
            created_at: old.created_at,
            voucher_ids: old.voucher_ids,
            more: old.more,
            delivery,
        };
        batch.insert(
            &record_key(old.user_id, old.local_date)[..],
            super::encode(&record)?,
        );
        if open {
            batch.insert(&open_key(old.user_id, old.local_date)[..], &[][..]);
        }
        batch.remove(k);
    }
    trees.digests.apply_batch(batch)?;
    for name in RETIRED_BY_V4 {
        db.drop_tree(name)?;
    }
    Ok(())
}

/// A voucher as the first release stored it (the offer's fields inline).
#[derive(serde::Deserialize)]
struct VoucherV1 {
    v: u32,
    id: uuid::Uuid,
    network: String,
    #[serde(flatten)]
    offer: crate::domain::voucher::Offer,
    first_seen_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
    phase: crate::domain::voucher::Phase,
    #[serde(default)]
    due_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A subscription as the first release stored it (`retailer` or `category` inline).
#[derive(serde::Deserialize)]
struct SubscriptionV1 {
    v: u32,
    id: uuid::Uuid,
    user_id: uuid::Uuid,
    #[serde(flatten)]
    target: crate::domain::digest::Target,
    created_at: chrono::DateTime<chrono::Utc>,
}

/// Records rewritten per batch (bounded memory on a large store; the migration resumes where a
/// crash left it, since a rewritten record is no longer JSON).
const REWRITE_BATCH: usize = 10_000;

/// Rewrites every JSON record of `tree` as postcard, through `convert`.
fn rewrite(
    tree: &sled::Tree,
    convert: impl Fn(&[u8]) -> Result<Vec<u8>, StoreError>,
) -> Result<u64, StoreError> {
    let mut batch = sled::Batch::default();
    let mut pending: usize = 0;
    let mut done: u64 = 0;
    for kv in tree.iter() {
        let (k, v) = kv?;
        if !super::codec::is_legacy(&v) {
            continue;
        }
        batch.insert(k, convert(&v)?);
        pending += 1;
        if pending == REWRITE_BATCH {
            tree.apply_batch(std::mem::take(&mut batch))?;
            done += pending as u64;
            pending = 0;
        }
    }
    tree.apply_batch(batch)?;
    Ok(done + pending as u64)
}

fn again<T: serde::Serialize + serde::de::DeserializeOwned>(
    raw: &[u8],
) -> Result<Vec<u8>, StoreError> {
    super::encode(&super::decode::<T>(raw)?)
}

/// Version 5: every record goes from JSON to the postcard codec (a format byte, then postcard,
/// times as integers); vouchers and subscriptions nest what they kept inline.
fn records_to_postcard(_db: &sled::Db, trees: &Trees) -> Result<(), StoreError> {
    use crate::domain::auth::TokenRecord;
    use crate::domain::digest::{DigestRecord, Subscription};
    use crate::domain::network::NetworkRecord;
    use crate::domain::notification::Notification;
    use crate::domain::user::User;
    use crate::domain::voucher::Voucher;
    rewrite(&trees.users, again::<User>)?;
    rewrite(&trees.tokens, again::<TokenRecord>)?;
    rewrite(&trees.networks, again::<NetworkRecord>)?;
    rewrite(&trees.notifications, again::<Notification>)?;
    rewrite(&trees.digests, again::<DigestRecord>)?;
    rewrite(&trees.vouchers, |raw| {
        let old: VoucherV1 = super::decode(raw)?;
        super::encode(&Voucher {
            v: old.v,
            id: old.id,
            network: old.network,
            offer: old.offer,
            first_seen_at: old.first_seen_at,
            updated_at: old.updated_at,
            phase: old.phase,
            due_at: old.due_at,
        })
    })?;
    rewrite(&trees.subscriptions, |raw| {
        let old: SubscriptionV1 = super::decode(raw)?;
        super::encode(&Subscription {
            v: old.v,
            id: old.id,
            user_id: old.user_id,
            target: old.target,
            created_at: old.created_at,
        })
    })?;
    Ok(())
}

/// A token as version 5 stored it (postcard, before `created_by`).
#[derive(serde::Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
struct TokenRecordV5 {
    v: u16,
    id: uuid::Uuid,
    kind: crate::domain::auth::TokenKind,
    user_id: Option<uuid::Uuid>,
    role: Option<crate::domain::user::Role>,
    name: Option<String>,
    #[serde(with = "crate::domain::times::micros")]
    created_at: chrono::DateTime<chrono::Utc>,
    #[serde(with = "crate::domain::times::micros_opt")]
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Version 6: a token record ends with `created_by` (unknown, `None`, for existing keys). A
/// record that already reads as the new shape (written by version 5's rewrite of a JSON store,
/// or by a crash-resumed run) is left alone: a version-5 record is one field short of it.
fn tokens_record_their_creator(_db: &sled::Db, trees: &Trees) -> Result<(), StoreError> {
    use crate::domain::auth::TokenRecord;
    let mut batch = sled::Batch::default();
    for kv in trees.tokens.iter() {
        let (k, v) = kv?;
        if super::decode::<TokenRecord>(&v).is_ok() {
            continue;
        }
        let old: TokenRecordV5 = super::decode(&v)?;
        let new = TokenRecord {
            v: old.v,
            id: old.id,
            kind: old.kind,
            user_id: old.user_id,
            role: old.role,
            name: old.name,
            created_at: old.created_at,
            expires_at: old.expires_at,
            created_by: None,
        };
        batch.insert(k, super::encode(&new)?);
    }
    trees.tokens.apply_batch(batch)?;
    Ok(())
}

/// Version 7: the outbox counts each attempt's outcome per UTC day (`t` keys in trees `digests`
/// and `messages`). Derived once from the records: a closed one counts its end (sent or dead) on
/// the day it was last updated, with its earlier attempts as failed ones that day; an open one
/// counts the attempts it has failed so far. Counts are written whole, so a rerun after a crash
/// writes the same.
fn tally_delivery_outcomes(_db: &sled::Db, trees: &Trees) -> Result<(), StoreError> {
    use std::collections::BTreeMap;

    use crate::domain::delivery::{Channel, DeliveryState, DeliveryStatus, MessageRecord};
    use crate::domain::digest::DigestRecord;
    use crate::store::outbox::{Outcome, tally_key};

    fn count(tallies: &mut BTreeMap<[u8; 7], u64>, channel: Channel, d: &DeliveryState) {
        let day = d.updated_at.date_naive();
        let (end, failed) = match d.status {
            DeliveryStatus::Sent => (Some(Outcome::Sent), d.attempts.saturating_sub(1)),
            DeliveryStatus::Dead => (Some(Outcome::Dead), d.attempts.saturating_sub(1)),
            DeliveryStatus::Failed => (None, d.attempts),
            DeliveryStatus::Sending => (None, d.attempts.saturating_sub(1)),
            DeliveryStatus::Pending => (None, 0),
        };
        if let Some(end) = end {
            *tallies.entry(tally_key(day, channel, end)).or_default() += 1;
        }
        if failed > 0 {
            *tallies
                .entry(tally_key(day, channel, Outcome::Failed))
                .or_default() += u64::from(failed);
        }
    }
    fn write(tree: &sled::Tree, tallies: BTreeMap<[u8; 7], u64>) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (k, n) in tallies {
            batch.insert(&k[..], &n.to_be_bytes()[..]);
        }
        tree.apply_batch(batch)?;
        Ok(())
    }

    let mut tallies = BTreeMap::new();
    for v in trees.digests.scan_prefix([b'r']).values() {
        let r: DigestRecord = super::decode(&v?)?;
        count(&mut tallies, Channel::Email, &r.delivery);
    }
    write(&trees.digests, tallies)?;
    let mut tallies = BTreeMap::new();
    for v in trees.messages.scan_prefix([b'r']).values() {
        let m: MessageRecord = super::decode(&v?)?;
        count(&mut tallies, m.channel, &m.delivery);
    }
    write(&trees.messages, tallies)
}

/// A campaign as versions 5 to 7 stored it (before its checkout settings).
#[derive(serde::Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
struct CampaignV1 {
    #[allow(dead_code)]
    v: u16,
    id: uuid::Uuid,
    name: String,
    kind: crate::domain::campaign::CampaignKind,
    discount: Option<crate::domain::campaign::Discount>,
    gift_balance_cents: Option<i64>,
    price_cents: Option<i64>,
    code: crate::domain::campaign::CodeSpec,
    pool_size: u32,
    #[serde(with = "crate::domain::times::micros")]
    starts_at: chrono::DateTime<chrono::Utc>,
    #[serde(with = "crate::domain::times::micros")]
    ends_at: chrono::DateTime<chrono::Utc>,
    timezone: crate::domain::user::Timezone,
    per_customer_limit: u32,
    retailer: Option<String>,
    category: Option<String>,
    #[serde(with = "crate::domain::times::micros_opt")]
    ended_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(with = "crate::domain::times::micros")]
    created_at: chrono::DateTime<chrono::Utc>,
    #[serde(with = "crate::domain::times::micros")]
    updated_at: chrono::DateTime<chrono::Utc>,
}

/// A redemption as versions 5 to 7 stored it (an order amount only).
#[derive(serde::Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
struct RedemptionV1 {
    #[allow(dead_code)]
    v: u16,
    id: uuid::Uuid,
    code: String,
    campaign_id: uuid::Uuid,
    customer: Option<uuid::Uuid>,
    order_amount_cents: Option<i64>,
    discount_cents: i64,
    balance_cents: Option<i64>,
    #[serde(with = "crate::domain::times::micros")]
    created_at: chrono::DateTime<chrono::Utc>,
    #[serde(with = "crate::domain::times::micros_opt")]
    rolled_back_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Rewrites every record of `tree` that does not read as `New` from its older shape `Old`
/// (postcard ignores trailing bytes, so the new shape is tried first: an old record is short of
/// it). A crash part-way resumes: rewritten records read as new.
fn upgrade<New, Old>(tree: &sled::Tree, convert: impl Fn(Old) -> New) -> Result<(), StoreError>
where
    New: serde::Serialize + serde::de::DeserializeOwned,
    Old: serde::de::DeserializeOwned,
{
    let mut batch = sled::Batch::default();
    let mut pending = 0;
    for kv in tree.iter() {
        let (k, v) = kv?;
        if super::decode::<New>(&v).is_ok() {
            continue;
        }
        let old: Old = super::decode(&v)?;
        batch.insert(k, super::encode(&convert(old))?);
        pending += 1;
        if pending == REWRITE_BATCH {
            tree.apply_batch(std::mem::take(&mut batch))?;
            pending = 0;
        }
    }
    tree.apply_batch(batch)?;
    Ok(())
}

/// Version 8: a campaign ends with its checkout settings (unique codes, no rules, no budgets,
/// as before), a redemption with its customer reference, currency, lines and whether it used a
/// shared code (none, none, none, no).
fn campaigns_carry_checkout_rules(_db: &sled::Db, trees: &Trees) -> Result<(), StoreError> {
    use crate::domain::campaign::{Campaign, Redemption};
    upgrade(&trees.campaigns, |o: CampaignV1| Campaign {
        v: Campaign::VERSION,
        id: o.id,
        name: o.name,
        kind: o.kind,
        discount: o.discount,
        gift_balance_cents: o.gift_balance_cents,
        price_cents: o.price_cents,
        code: o.code,
        pool_size: o.pool_size,
        starts_at: o.starts_at,
        ends_at: o.ends_at,
        timezone: o.timezone,
        per_customer_limit: o.per_customer_limit,
        retailer: o.retailer,
        category: o.category,
        ended_at: o.ended_at,
        created_at: o.created_at,
        updated_at: o.updated_at,
        promotion: Default::default(),
    })?;
    upgrade(&trees.redemptions, |o: RedemptionV1| Redemption {
        v: Redemption::VERSION,
        id: o.id,
        code: o.code,
        campaign_id: o.campaign_id,
        customer: o.customer,
        order_amount_cents: o.order_amount_cents,
        discount_cents: o.discount_cents,
        balance_cents: o.balance_cents,
        created_at: o.created_at,
        rolled_back_at: o.rolled_back_at,
        customer_ref: None,
        currency: None,
        lines: Vec::new(),
        shared: false,
    })
}

/// A user as versions 5 to 8 stored them (before the marketing email choice).
#[derive(serde::Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
struct UserV1 {
    #[allow(dead_code)]
    v: u16,
    id: uuid::Uuid,
    email: crate::domain::user::Email,
    password_hash: String,
    phone: Option<crate::domain::user::Phone>,
    timezone: crate::domain::user::Timezone,
    digest_hour: crate::domain::user::DigestHour,
    digest_frequency: crate::domain::user::DigestFrequency,
    role: crate::domain::user::Role,
    #[serde(with = "crate::domain::times::micros")]
    created_at: chrono::DateTime<chrono::Utc>,
    #[serde(with = "crate::domain::times::micros")]
    updated_at: chrono::DateTime<chrono::Utc>,
}

/// Version 9: every user so far receives marketing email (nobody had opted out).
fn users_carry_marketing_choice(_db: &sled::Db, trees: &Trees) -> Result<(), StoreError> {
    use crate::domain::user::User;
    upgrade(&trees.users, |o: UserV1| User {
        v: User::VERSION,
        id: o.id,
        email: o.email,
        password_hash: o.password_hash,
        phone: o.phone,
        timezone: o.timezone,
        digest_hour: o.digest_hour,
        digest_frequency: o.digest_frequency,
        role: o.role,
        created_at: o.created_at,
        updated_at: o.updated_at,
        marketing_opt_out_at: None,
        email_verified_at: None,
        pending_email: None,
        phone_verified_at: None,
        phone_challenge: None,
    })
}

/// A user as versions 9 stored them (before confirmations).
#[derive(serde::Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
struct UserV2 {
    #[allow(dead_code)]
    v: u16,
    id: uuid::Uuid,
    email: crate::domain::user::Email,
    password_hash: String,
    phone: Option<crate::domain::user::Phone>,
    timezone: crate::domain::user::Timezone,
    digest_hour: crate::domain::user::DigestHour,
    digest_frequency: crate::domain::user::DigestFrequency,
    role: crate::domain::user::Role,
    #[serde(with = "crate::domain::times::micros")]
    created_at: chrono::DateTime<chrono::Utc>,
    #[serde(with = "crate::domain::times::micros")]
    updated_at: chrono::DateTime<chrono::Utc>,
    #[serde(with = "crate::domain::times::micros_opt")]
    marketing_opt_out_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Version 10: every user so far has their address taken as confirmed (they signed up before
/// confirmation existed, and have been using it since: confirmed at their sign-up), and every
/// phone number so far as typed, not confirmed (nothing ever proved it: it reserves nothing
/// until its owner confirms it with a code). Records already in the new shape (from versions 5
/// and 9, which write the newest shape) are grandfathered the same way.
fn users_carry_confirmations(_db: &sled::Db, trees: &Trees) -> Result<(), StoreError> {
    use crate::domain::user::User;
    let mut batch = sled::Batch::default();
    let mut pending = 0;
    for kv in trees.users.iter() {
        let (k, v) = kv?;
        let mut user = match super::decode::<User>(&v) {
            Ok(u) => u,
            Err(_) => {
                let o: UserV2 = super::decode(&v)?;
                User {
                    v: User::VERSION,
                    id: o.id,
                    email: o.email,
                    password_hash: o.password_hash,
                    phone: o.phone,
                    timezone: o.timezone,
                    digest_hour: o.digest_hour,
                    digest_frequency: o.digest_frequency,
                    role: o.role,
                    created_at: o.created_at,
                    updated_at: o.updated_at,
                    marketing_opt_out_at: o.marketing_opt_out_at,
                    email_verified_at: None,
                    pending_email: None,
                    phone_verified_at: None,
                    phone_challenge: None,
                }
            }
        };
        if user.email_verified_at.is_none() && user.pending_email.is_none() {
            user.email_verified_at = Some(user.created_at);
        }
        user.v = User::VERSION;
        batch.insert(k, super::encode(&user)?);
        pending += 1;
        if pending == REWRITE_BATCH {
            trees.users.apply_batch(std::mem::take(&mut batch))?;
            pending = 0;
        }
    }
    trees.users.apply_batch(batch)?;
    Ok(())
}

/// An order as versions 8 to 10 stored it (before payments).
#[derive(serde::Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
struct OrderV1 {
    #[allow(dead_code)]
    v: u16,
    id: uuid::Uuid,
    campaign_id: uuid::Uuid,
    customer: uuid::Uuid,
    codes: Vec<String>,
    amount_cents: i64,
    phone: Option<String>,
    #[serde(with = "crate::domain::times::micros")]
    created_at: chrono::DateTime<chrono::Utc>,
}

/// Version 11: every order so far delivered its codes when it was placed: paid then.
fn orders_carry_their_payment(_db: &sled::Db, trees: &Trees) -> Result<(), StoreError> {
    use crate::domain::campaign::{Order, OrderStatus};
    upgrade(&trees.orders, |o: OrderV1| Order {
        v: Order::VERSION,
        id: o.id,
        campaign_id: o.campaign_id,
        customer: o.customer,
        codes: o.codes,
        amount_cents: o.amount_cents,
        phone: o.phone,
        created_at: o.created_at,
        status: OrderStatus::Paid,
        pay_by: None,
        paid_at: Some(o.created_at),
        payment_ref: None,
        expired_at: None,
    })
}

pub(crate) fn stored_version(trees: &Trees) -> Result<u32, StoreError> {
    match trees.meta.get(VERSION_KEY)? {
        None => Ok(0),
        Some(v) => {
            let bytes: [u8; 4] = v
                .as_ref()
                .try_into()
                .map_err(|_| StoreError::Corrupt("schema_version is not 4 bytes".into()))?;
            Ok(u32::from_be_bytes(bytes))
        }
    }
}

pub fn latest() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

pub(crate) fn set_version(trees: &Trees, version: u32) -> Result<(), StoreError> {
    trees.meta.insert(VERSION_KEY, &version.to_be_bytes())?;
    Ok(())
}

/// The same, on a raw database (a restore being written).
pub(crate) fn set_version_in(db: &sled::Db, version: u32) -> Result<(), StoreError> {
    db.open_tree("meta")?
        .insert(VERSION_KEY, &version.to_be_bytes())?;
    Ok(())
}

pub(crate) fn migrate(
    db: &sled::Db,
    trees: &Trees,
    migrations: &[Migration],
) -> Result<(), StoreError> {
    let current = stored_version(trees)?;
    let newest = migrations.last().map_or(0, |m| m.version);
    if current > newest {
        return Err(StoreError::Schema(format!(
            "the store is at schema version {current}, newer than this build knows ({newest}); \
             run a newer voucherd or restore a backup"
        )));
    }
    // A new, empty store is written at the newest version: nothing to migrate, nothing to say.
    let fresh = current == 0
        && [
            &trees.meta,
            &trees.users,
            &trees.tokens,
            &trees.vouchers,
            &trees.networks,
            &trees.subscriptions,
            &trees.digests,
            &trees.campaigns,
            &trees.codes,
            &trees.redemptions,
        ]
        .iter()
        .all(|t| t.is_empty());
    if fresh {
        set_version(trees, newest)?;
        db.flush()?;
        return Ok(());
    }
    for m in migrations.iter().filter(|m| m.version > current) {
        tracing::info!(
            version = m.version,
            name = m.name,
            "running store migration"
        );
        (m.run)(db, trees)?;
        set_version(trees, m.version)?;
        db.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::config::StoreSettings;
    use crate::store::Store;

    static RUNS: AtomicU32 = AtomicU32::new(0);

    fn settings(dir: &std::path::Path) -> StoreSettings {
        StoreSettings {
            path: dir.join("db"),
            cache_capacity_mb: 8,
            fsync: false,
            writer_queue: 65_536,
        }
    }

    fn first(_: &sled::Db, t: &Trees) -> Result<(), StoreError> {
        RUNS.fetch_add(1, Ordering::SeqCst);
        t.meta.insert("m1", "done")?;
        Ok(())
    }

    fn second(_: &sled::Db, t: &Trees) -> Result<(), StoreError> {
        RUNS.fetch_add(1, Ordering::SeqCst);
        // Depends on the first having run.
        if t.meta.get("m1")?.is_none() {
            return Err(StoreError::Schema("out of order".into()));
        }
        t.meta.insert("m2", "done")?;
        Ok(())
    }

    #[test]
    fn version_6_gives_existing_tokens_an_unknown_creator_and_leaves_new_ones() {
        use crate::domain::auth::{TokenKind, TokenRecord};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&settings(dir.path())).unwrap();
        let at: chrono::DateTime<chrono::Utc> = "2026-11-01T10:00:00Z".parse().unwrap();
        let old = TokenRecordV5 {
            v: 1,
            id: uuid::Uuid::now_v7(),
            kind: TokenKind::ApiKey,
            user_id: None,
            role: Some(crate::domain::user::Role::Manager),
            name: Some("shop".into()),
            created_at: at,
            expires_at: None,
        };
        let creator = uuid::Uuid::now_v7();
        let new = TokenRecord {
            v: 1,
            id: uuid::Uuid::now_v7(),
            kind: TokenKind::ApiKey,
            user_id: None,
            role: Some(crate::domain::user::Role::Customer),
            name: Some("app".into()),
            created_at: at,
            expires_at: Some(at),
            created_by: Some(creator),
        };
        let tokens = &store.trees().tokens;
        tokens
            .insert([1u8; 32], crate::store::encode(&old).unwrap())
            .unwrap();
        tokens
            .insert([2u8; 32], crate::store::encode(&new).unwrap())
            .unwrap();
        assert!(
            crate::store::decode::<TokenRecord>(&tokens.get([1u8; 32]).unwrap().unwrap()).is_err()
        );
        let db = sled::Config::new().temporary(true).open().unwrap();
        tokens_record_their_creator(&db, store.trees()).unwrap();
        let read = |k: [u8; 32]| -> TokenRecord {
            crate::store::decode(&tokens.get(k).unwrap().unwrap()).unwrap()
        };
        let migrated = read([1u8; 32]);
        assert_eq!(
            (
                migrated.id,
                migrated.name.as_deref(),
                migrated.created_at,
                migrated.created_by
            ),
            (old.id, Some("shop"), at, None)
        );
        assert_eq!(migrated.role, Some(crate::domain::user::Role::Manager));
        assert_eq!(read([2u8; 32]), new);
    }

    #[test]
    fn version_9_keeps_every_user_and_has_nobody_opted_out() {
        use crate::domain::user::{DigestFrequency, DigestHour, Email, Role, Timezone, User};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&settings(dir.path())).unwrap();
        let at: chrono::DateTime<chrono::Utc> = "2026-11-01T10:00:00Z".parse().unwrap();
        let old = UserV1 {
            v: 1,
            id: uuid::Uuid::now_v7(),
            email: Email::parse("old@example.org").unwrap(),
            password_hash: "hash".into(),
            phone: None,
            timezone: Timezone::parse("Asia/Tokyo").unwrap(),
            digest_hour: DigestHour::parse(7).unwrap(),
            digest_frequency: DigestFrequency::Weekly,
            role: Role::Manager,
            created_at: at,
            updated_at: at,
        };
        let users = &store.trees().users;
        users
            .insert(old.id.as_bytes(), crate::store::encode(&old).unwrap())
            .unwrap();
        let mut new = crate::store::test_support::user("new@example.org");
        new.marketing_opt_out_at = Some(at);
        users
            .insert(new.id.as_bytes(), crate::store::encode(&new).unwrap())
            .unwrap();
        let db = sled::Config::new().temporary(true).open().unwrap();
        users_carry_marketing_choice(&db, store.trees()).unwrap();
        let read = |id: uuid::Uuid| -> User {
            crate::store::decode(&users.get(id.as_bytes()).unwrap().unwrap()).unwrap()
        };
        let migrated = read(old.id);
        assert_eq!(
            (
                migrated.email.as_str(),
                migrated.timezone.to_string(),
                migrated.digest_hour.get(),
                migrated.digest_frequency,
                migrated.role,
                migrated.updated_at,
            ),
            (
                "old@example.org",
                "Asia/Tokyo".to_owned(),
                7,
                DigestFrequency::Weekly,
                Role::Manager,
                at
            )
        );
        assert!(migrated.takes_marketing_email());
        let stored: User = crate::store::decode(&crate::store::encode(&new).unwrap()).unwrap();
        assert_eq!(
            read(new.id),
            stored,
            "a user already in the new shape is left as is"
        );
    }

    #[test]
    fn migrations_run_in_order_once_and_newer_stores_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let one = [Migration {
            version: 1,
            name: "one",
            run: first,
        }];
        let two = [
            Migration {
                version: 1,
                name: "one",
                run: first,
            },
            Migration {
                version: 2,
                name: "two",
                run: second,
            },
        ];
        {
            // A store with something in it (an empty one skips its migrations).
            let store = Store::open_with(&settings(dir.path()), &[]).unwrap();
            store.trees().meta.insert("seeded", "x").unwrap();
        }
        {
            let store = Store::open_with(&settings(dir.path()), &one).unwrap();
            assert_eq!(stored_version(store.trees()).unwrap(), 1);
        }
        {
            let store = Store::open_with(&settings(dir.path()), &two).unwrap();
            assert_eq!(stored_version(store.trees()).unwrap(), 2);
            assert!(store.trees().meta.get("m2").unwrap().is_some());
        }
        // Opening again runs nothing: three runs in all (one, then two).
        let _ = Store::open_with(&settings(dir.path()), &two).unwrap();
        assert_eq!(RUNS.load(Ordering::SeqCst), 2);
        let err = Store::open_with(&settings(dir.path()), &one).err().unwrap();
        assert!(err.to_string().contains("newer than this build"), "{err}");
    }

    #[test]
    fn a_new_store_starts_at_the_newest_version_without_migrating() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with(&settings(dir.path()), MIGRATIONS).unwrap();
        assert_eq!(stored_version(store.trees()).unwrap(), latest());
    }
}
