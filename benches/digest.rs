//! Digest throughput: `cargo bench --bench digest` (sizes: `BENCH_USERS`, default 100000;
//! `BENCH_POOL`, SMTP connections, default 16).
//!
//! Setup (not timed): 10,000 vouchers (1,000 retailers, 100 categories), users over 50
//! timezones, each daily at 08:00 local and subscribed to 3 retailers and 1 category; schedules
//! loaded as at start.
//! 1. Digests: the real `DigestShard` actors (8), clock moved a day on so every user is due:
//!    digests selected from the in-memory indexes and committed (digest record + outbox marker,
//!    one writer batch per shard batch, durable with fsync) per second.
//! 2. Emails: the real `DeliveryDispatcher` sends the whole outbox over SMTP (our connections,
//!    `TCP_NODELAY`) to a minimal SMTP sink on loopback (its own thread); emails settled per second.
//! 3. The sink alone: the same SMTP sender with prebuilt messages straight to it, the same number
//!    of connections: the ceiling of transport and sink without voucherd's work.
//!
//! Peak resident memory (VmHWM) after each phase.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::env;

/// The allocator the binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use common::peak_rss_mb;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lettre::Message;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use voucherd::actors::digest::{Composing, DigestShard, timezones_of};
use voucherd::actors::dispatcher::{DeliveryDispatcher, Outbound, SendRuntime};
use voucherd::actors::supervise;
use voucherd::clock::ManualClock;
use voucherd::config::{EmailTransportKind, Settings, StoreSettings};
use voucherd::delivery::smtp::SmtpSender;
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

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A minimal SMTP sink on its own thread and runtime: answers every command, counts each message
/// at its closing dot. Returns its port.
fn smtp_sink(accepted: Arc<AtomicU64>) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    continue;
                };
                sock.set_nodelay(true).unwrap();
                let accepted = accepted.clone();
                tokio::spawn(async move {
                    let _ = session(sock, accepted).await;
                });
            }
        });
    });
    port
}

async fn session(sock: tokio::net::TcpStream, accepted: Arc<AtomicU64>) -> std::io::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::with_capacity(64 * 1024, r);
    let mut line = Vec::with_capacity(1024);
    w.write_all(b"220 sink ESMTP\r\n").await?;
    let mut data = false;
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        if data {
            if line == b".\r\n" {
                data = false;
                accepted.fetch_add(1, Ordering::Relaxed);
                w.write_all(b"250 2.0.0 queued\r\n").await?;
            }
            continue;
        }
        let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
        let answer: &[u8] = match &verb[..] {
            b"EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
            b"DATA" => {
                data = true;
                b"354 go ahead\r\n"
            }
            b"QUIT" => {
                w.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"250 OK\r\n",
        };
        w.write_all(answer).await?;
    }
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
            marketing_opt_out_at: None,
            email_verified_at: Some(t0),
            pending_email: None,
            phone_verified_at: None,
            phone_challenge: None,
        };
        store.users().create(&user).unwrap();
        let targets = [
            Target::Retailer(format!("Retailer {}", i % RETAILERS)),
            Target::Retailer(format!("Retailer {}", (i * 7 + 1) % RETAILERS)),
            Target::Retailer(format!("Retailer {}", (i * 13 + 2) % RETAILERS)),
            Target::Category(format!("Category {}", i % CATEGORIES)),
        ];
        for target in targets {
            store
                .subscriptions()
                .add(
                    &Subscription {
                        v: Subscription::VERSION,
                        id: uuid::Uuid::now_v7(),
                        user_id: user.id,
                        target,
                        created_at: t0,
                    },
                    10,
                )
                .unwrap();
        }
    }
    store.flush_now().unwrap();
    println!(
        "setup: {VOUCHERS} vouchers, {users} users over {TIMEZONES} timezones, 4 subscriptions each: {:.1} s; peak RSS {:.0} MB",
        started.elapsed().as_secs_f64(),
        peak_rss_mb("self")
    );
}

/// When the setup's users registered; the measured run is a day and an hour later.
const T0: &str = "2026-06-01T00:00:00Z";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let users = env("BENCH_USERS", 100_000);
    if let Some(i) = args.iter().position(|a| a == "--setup") {
        // The store is written by its own process, as registrations over time would: the
        // measured process below only opens it.
        let store = Store::open(&store_settings(std::path::Path::new(&args[i + 1]))).unwrap();
        setup(&store, users, t(T0));
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--run") {
        run(std::path::Path::new(&args[i + 1]), users);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    for step in ["--setup", "--run"] {
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .arg(step)
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success(), "{step} failed");
    }
}

fn store_settings(path: &std::path::Path) -> StoreSettings {
    StoreSettings {
        path: path.to_owned(),
        cache_capacity_mb: env("CACHE_MB", 64) as u64,
        fsync: true,
        writer_queue: 65_536,
    }
}

fn run(path: &std::path::Path, users: usize) {
    let pool = env("BENCH_POOL", 16);
    let store_settings = store_settings(path);
    let started = Instant::now();
    let store = Store::open(&store_settings).unwrap();
    let now = t(T0) + chrono::Duration::days(1) + chrono::Duration::hours(1);
    store.digests().load(chrono::Weekday::Mon, t(T0)).unwrap();
    println!(
        "open: store and indexes loaded, schedules built in {:.2} s; peak RSS {:.0} MB",
        started.elapsed().as_secs_f64(),
        peak_rss_mb("self")
    );
    let clock = ManualClock::new(now);

    let system = actix::System::new();
    system.block_on(async move {
        // 1. Digests through the shards.
        let arbiter = actix::Arbiter::new();
        let handle = arbiter.handle();
        let shared_clock: voucherd::clock::SharedClock = clock.clone();
        let wake = Arc::new(tokio::sync::Notify::new());
        let composing = Composing {
            max_vouchers: 25,
            confirmed_only: true,
        };
        let started = Instant::now();
        let _shards: Vec<_> = (0..SHARDS)
            .map(|i| {
                let (s, c, w) = (store.clone(), shared_clock.clone(), wake.clone());
                supervise::start(&handle, move |_| DigestShard::new(i, SHARDS, s, c, composing, w))
            })
            .collect();
        let all_zones: Vec<chrono_tz::Tz> = (0..SHARDS).flat_map(|i| timezones_of(i, SHARDS)).collect();
        loop {
            let z = all_zones.clone();
            let left = store.run(move |s| s.digests().due(&z, now, 1)).await.unwrap();
            if left.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let secs = started.elapsed().as_secs_f64();
        let committed = store
            .run(|s| {
                let mut n = 0usize;
                let mut cursor = None;
                loop {
                    let page = s.deliveries().list(None, cursor.as_ref(), 500)?;
                    n += page.items.len();
                    match page.next {
                        Some(c) => cursor = Some(c),
                        None => break,
                    }
                }
                Ok(n)
            })
            .await
            .unwrap();
        println!(
            "digests: {users} users due, {committed} digests committed to the outbox in {secs:.2} s = {:.0} digests/s; peak RSS {:.0} MB",
            committed as f64 / secs,
            peak_rss_mb("self")
        );

        // 2. Emails through the dispatcher to the sink.
        let accepted = Arc::new(AtomicU64::new(0));
        let port = smtp_sink(accepted.clone());
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
                Arc::new(
                    voucherd::delivery::push::Vapid::from_private(
                        &voucherd::delivery::push::Vapid::generate(),
                    )
                    .unwrap(),
                ),
            )
            .unwrap(),
        );
        let started = Instant::now();
        let w = wake.clone();
        let sends = SendRuntime::new().unwrap();
        let _dispatcher = supervise::start(&handle, move |_| DeliveryDispatcher::new(outbound, w, sends));
        loop {
            let open = store.run(|s| s.deliveries().next_due()).await.unwrap();
            if open.is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let secs = started.elapsed().as_secs_f64();
        let got = accepted.load(Ordering::Relaxed);
        println!(
            "emails: {committed} digests sent over SMTP ({pool} connections) in {secs:.2} s = {:.0} emails/s; the sink counted {got}; peak RSS {:.0} MB",
            committed as f64 / secs,
            peak_rss_mb("self")
        );

        // 3. The sink alone: the same sender, prebuilt messages of a digest's size.
        let n = 20_000usize.min(committed.max(2000) * 2);
        let sender = Arc::new(
            SmtpSender::from_url(&format!("smtp://127.0.0.1:{port}"), Duration::from_secs(30), pool)
                .unwrap(),
        );
        let message = Message::builder()
            .from("bench <bench@localhost>".parse().unwrap())
            .to("user@bench.example".parse().unwrap())
            .subject("accept rate")
            .body("x".repeat(12_000))
            .unwrap();
        let before = accepted.load(Ordering::Relaxed);
        let started = Instant::now();
        let next = Arc::new(AtomicU64::new(0));
        let workers: Vec<_> = (0..pool)
            .map(|_| {
                let (sender, message, next) = (sender.clone(), message.clone(), next.clone());
                actix::spawn(async move {
                    while next.fetch_add(1, Ordering::Relaxed) < n as u64 {
                        sender.send(&message).await.unwrap();
                    }
                })
            })
            .collect();
        for w in workers {
            w.await.unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        let got = accepted.load(Ordering::Relaxed) - before;
        println!(
            "smtp sink alone: {got} prebuilt messages over {pool} connections in {secs:.2} s = {:.0} accepted/s",
            got as f64 / secs
        );
        actix::System::current().stop();
    });
}
