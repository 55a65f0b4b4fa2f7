//! Digest throughput: `cargo bench --bench digest` (sizes: `BENCH_USERS`, default 100000;
//! `BENCH_POOL`, SMTP connections, default 8).
//!
//! Setup (not timed): 10,000 vouchers (1,000 retailers, 100 categories), users over 50
//! timezones, each daily at 08:00 local and subscribed to 3 retailers and 1 category.
//! 1. Digests: the real `DigestShard` actors (8) with the real SubscriptionManagers, clock moved
//!    a day on so every user is due: digests built and committed (digest record + delivery +
//!    outbox entry + next due, one transaction per batch, durable with fsync) per second.
//! 2. Emails: the real `DeliveryDispatcher` sends the whole outbox over SMTP to mailcrab on
//!    loopback (its own runtime on another thread), pooled transport; emails settled per second
//!    and messages the SMTP server accepted per second.
//! 3. The SMTP server alone: the same pooled lettre transport sending prebuilt messages straight
//!    to it, to show whether the server is the ceiling.
//!
//! Peak resident memory (VmHWM) after each phase.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::peak_rss_mb;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use voucherd::actors::digest::{DigestShard, timezones_of};
use voucherd::actors::dispatcher::{DeliveryDispatcher, Outbound};
use voucherd::actors::subscriptions::Registry;
use voucherd::actors::supervise;
use voucherd::clock::ManualClock;
use voucherd::config::{EmailTransportKind, Settings, StoreSettings};
use voucherd::delivery::templates::Templates;
use voucherd::domain::digest::{Subscription, Target};
use voucherd::domain::user::{DigestFrequency, DigestHour, Email, Role, Timezone, User};
use voucherd::domain::voucher::Offer;
use voucherd::security::LinkSigner;
use voucherd::store::Store;

const VOUCHERS: usize = 10_000;
const RETAILERS: usize = 1_000;
const CATEGORIES: usize = 100;
const TIMEZONES: usize = 50;
const SHARDS: u16 = 8;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// mailcrab on its own runtime and thread; counts what it accepts.
fn smtp_server(port: u16, accepted: Arc<AtomicU64>) {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut h = mailcrab::development_mail_server([127, 0, 0, 1], port).await;
            loop {
                match h.rx.recv().await {
                    Ok(_) => accepted.fetch_add(1, Ordering::Relaxed),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        accepted.fetch_add(n, Ordering::Relaxed)
                    }
                    Err(_) => break,
                };
            }
        });
    });
}

fn setup(store: &Store, users: usize, t0: DateTime<Utc>) {
    let started = Instant::now();
    let offers: Vec<Offer> = (0..VOUCHERS)
        .map(|i| Offer {
            external_id: format!("v{i}"),
            retailer: format!("Retailer {}", i % RETAILERS),
            category: Some(format!("Category {}", i % CATEGORIES)),
            title: format!("Voucher {i}: 10% off everything"),
            description: Some("A fine offer".into()),
            code: Some(format!("CODE{i}")),
            code_is_pattern: false,
            url: Some(format!("https://shop{}.example/deal/{i}", i % RETAILERS)),
            starts_at: Some(t("2026-01-01T00:00:00Z")),
            ends_at: Some(t("2027-12-31T23:59:59Z")),
        })
        .collect();
    for chunk in offers.chunks(1000) {
        store
            .vouchers()
            .upsert(
                "bench",
                chunk,
                t0 + chrono::Duration::seconds(1),
                chrono::Duration::days(30),
            )
            .unwrap();
    }
    let zones: Vec<chrono_tz::Tz> = chrono_tz::TZ_VARIANTS
        .iter()
        .step_by(chrono_tz::TZ_VARIANTS.len() / TIMEZONES)
        .take(TIMEZONES)
        .copied()
        .collect();
    for i in 0..users {
        let user = User {
            v: User::VERSION,
            id: uuid::Uuid::now_v7(),
            email: Email::parse(&format!("user{i}@bench.example")).unwrap(),
            password_hash: "not-a-hash".into(),
            phone: None,
            timezone: Timezone(zones[i % zones.len()]),
            digest_hour: DigestHour::parse(8).unwrap(),
            digest_frequency: DigestFrequency::Daily,
            role: Role::Customer,
            created_at: t0,
            updated_at: t0,
        };
        store.users().create(&user).unwrap();
        store
            .digests()
            .schedule(&user, chrono::Weekday::Mon, t0)
            .unwrap();
        let targets = [
            Target::Retailer(format!("Retailer {}", i % RETAILERS)),
            Target::Retailer(format!("Retailer {}", (i * 7 + 1) % RETAILERS)),
            Target::Retailer(format!("Retailer {}", (i * 13 + 2) % RETAILERS)),
            Target::Category(format!("Category {}", i % CATEGORIES)),
        ];
        for target in targets {
            store
                .subscriptions()
                .add(&Subscription {
                    v: Subscription::VERSION,
                    id: uuid::Uuid::now_v7(),
                    user_id: user.id,
                    target,
                    created_at: t0,
                })
                .unwrap();
        }
    }
    store.flush_now().unwrap();
    println!(
        "setup: {VOUCHERS} vouchers, {users} users over {TIMEZONES} timezones, 4 subscriptions each: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn main() {
    let users = env("BENCH_USERS", 100_000);
    let pool = env("BENCH_POOL", 8);
    let dir = tempfile::tempdir().unwrap();
    let store_settings = StoreSettings {
        path: dir.path().join("data"),
        cache_capacity_mb: 256,
        fsync: true,
        writer_queue: 65_536,
    };
    let store = Store::open(&store_settings).unwrap();
    let t0 = t("2026-06-01T00:00:00Z");
    setup(&store, users, t0);
    let now = t0 + chrono::Duration::days(1) + chrono::Duration::hours(1);
    let clock = ManualClock::new(now);

    let system = actix::System::new();
    system.block_on(async move {
        // 1. Digests through the shards.
        let arbiter = actix::Arbiter::new();
        let handle = arbiter.handle();
        let shared_clock: voucherd::clock::SharedClock = clock.clone();
        let registry = Registry::new(handle.clone(), store.clone(), shared_clock.clone(), 25);
        let wake = Arc::new(tokio::sync::Notify::new());
        let started = Instant::now();
        let _shards: Vec<_> = (0..SHARDS)
            .map(|i| {
                let (s, c, r, w) = (store.clone(), shared_clock.clone(), registry.clone(), wake.clone());
                supervise::start(&handle, move |_| DigestShard::new(i, SHARDS, s, c, r, w))
            })
            .collect();
        let all_zones: Vec<chrono_tz::Tz> = (0..SHARDS).flat_map(|i| timezones_of(i, SHARDS)).collect();
        loop {
            let z = all_zones.clone();
            let left = store.run(move |s| s.digests().due(&z, now, 1)).await.unwrap();
            if left.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let secs = started.elapsed().as_secs_f64();
        let committed = store
            .run(|s| {
                let mut n = 0usize;
                let mut after = None;
                loop {
                    let page = s.deliveries().list(None, after, 500)?;
                    n += page.items.len();
                    match page.next {
                        Some(id) => after = Some(id),
                        None => break,
                    }
                }
                Ok(n)
            })
            .await
            .unwrap();
        println!(
            "digests: {users} users due, {committed} digests committed to the outbox in {secs:.2} s = {:.0} digests/s ({:.0} users/s); {} managers running; peak RSS {:.0} MB",
            committed as f64 / secs,
            users as f64 / secs,
            registry.len(),
            peak_rss_mb()
        );

        // 2. Emails through the dispatcher to mailcrab.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let accepted = Arc::new(AtomicU64::new(0));
        smtp_server(port, accepted.clone());
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut settings = Settings::defaults().unwrap();
        settings.store = store_settings.clone();
        settings.delivery.email.transport = EmailTransportKind::Smtp;
        settings.delivery.email.smtp_url = format!("smtp://127.0.0.1:{port}");
        settings.delivery.email.pool_size = pool as u32;
        settings.delivery.email.per_second = 1_000_000;
        let outbound = Arc::new(
            Outbound::new(
                &settings,
                store.clone(),
                shared_clock.clone(),
                Arc::new(Templates::load(None).unwrap()),
                LinkSigner::new(&[7; 32]).unwrap(),
            )
            .unwrap(),
        );
        let started = Instant::now();
        let w = wake.clone();
        let _dispatcher = supervise::start(&handle, move |_| DeliveryDispatcher::new(outbound, w));
        loop {
            let open = store.run(|s| s.deliveries().next_due()).await.unwrap();
            if open.is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let secs = started.elapsed().as_secs_f64();
        let got = accepted.load(Ordering::Relaxed);
        println!(
            "emails: {committed} digests sent over SMTP (pool {pool}) in {secs:.2} s = {:.0} emails/s; the SMTP server accepted {got} = {:.0}/s; peak RSS {:.0} MB",
            committed as f64 / secs,
            got as f64 / secs,
            peak_rss_mb()
        );

        // 3. The SMTP server alone, same transport settings, prebuilt messages.
        let n = 10_000usize.min(committed.max(1000));
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(port)
            .pool_config(lettre::transport::smtp::PoolConfig::new().max_size(pool as u32))
            .build();
        let message = Message::builder()
            .from("bench <bench@localhost>".parse().unwrap())
            .to("user@bench.example".parse().unwrap())
            .subject("accept rate")
            .body("x".repeat(4000))
            .unwrap();
        let before = accepted.load(Ordering::Relaxed);
        let started = Instant::now();
        let sem = Arc::new(tokio::sync::Semaphore::new(pool));
        let mut tasks = Vec::new();
        for _ in 0..n {
            let permit = sem.clone().acquire_owned().await.unwrap();
            let (t, m) = (transport.clone(), message.clone());
            tasks.push(actix::spawn(async move {
                let _ = t.send(m).await;
                drop(permit);
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
        let secs = started.elapsed().as_secs_f64();
        let got = accepted.load(Ordering::Relaxed) - before;
        println!(
            "smtp server alone: {n} prebuilt messages in {secs:.2} s = {:.0} accepted/s ({got} counted)",
            got as f64 / secs
        );
        actix::System::current().stop();
    });
}
