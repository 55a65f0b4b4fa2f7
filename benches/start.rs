//! Start-up: how long a server takes to open a large store and answer `/readyz`, and the memory
//! it then holds.
//!
//! Setup (not timed): a store with `BENCH_VOUCHERS` vouchers (default 1,000,000; 2,000 retailers,
//! 100 categories, 10 networks) and `BENCH_USERS` users (default 100,000, two subscriptions each),
//! written through the store's own modules, then closed. Then a fresh process builds the
//! application on it (store open with its migrations and in-memory indexes, digest schedules,
//! actors, HTTP) and polls `/readyz` until it answers 200: the time from the start of the build to
//! that answer, and the resident memory then (VmRSS) and at its peak (VmHWM).
//!
//!     cargo bench --bench start
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::env;

/// The allocator the binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::Command;
use std::time::{Duration, Instant};

use common::peak_rss_mb;
use voucherd::app::Application;
use voucherd::config::{Settings, StoreSettings};
use voucherd::domain::digest::{Subscription, Target};
use voucherd::domain::user::{DigestFrequency, DigestHour, Email, Role, Timezone, User};
use voucherd::domain::voucher::Offer;
use voucherd::store::Store;

fn store_settings(path: &std::path::Path) -> StoreSettings {
    StoreSettings {
        path: path.to_owned(),
        cache_capacity_mb: 256,
        fsync: true,
        writer_queue: 65_536,
    }
}

fn setup(path: &std::path::Path, vouchers: usize, users: usize) {
    let started = Instant::now();
    let store = Store::open(&store_settings(path)).unwrap();
    let now = chrono::Utc::now();
    let ends = now + chrono::Duration::days(365);
    for network in 0..10 {
        let per = vouchers / 10;
        for chunk in (0..per).collect::<Vec<_>>().chunks(5_000) {
            let offers: Vec<Offer> = chunk
                .iter()
                .map(|i| Offer {
                    external_id: format!("n{network}-{i}"),
                    retailer: format!("Retailer {}", i % 2_000),
                    category: Some(format!("Category {}", i % 100)),
                    title: format!("{}% off everything at retailer {}", 5 + i % 50, i % 2_000),
                    description: Some("Save on the whole range.".into()),
                    code: Some(format!("CODE{network}{i}")),
                    code_is_pattern: false,
                    url: Some(format!("https://shop{}.example/deal/{i}", i % 2_000)),
                    starts_at: Some(now - chrono::Duration::days(1)),
                    ends_at: Some(ends),
                })
                .collect();
            store
                .vouchers()
                .upsert(
                    &format!("network{network}"),
                    &offers,
                    now,
                    chrono::Duration::days(30),
                )
                .unwrap();
        }
    }
    let zones = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC"];
    for i in 0..users {
        let user = User {
            v: User::VERSION,
            id: uuid::Uuid::now_v7(),
            email: Email::parse(&format!("user{i}@start.example")).unwrap(),
            password_hash: "not-a-hash".into(),
            phone: None,
            timezone: Timezone::parse(zones[i % zones.len()]).unwrap(),
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
        };
        store.users().create(&user).unwrap();
        for target in [
            Target::Retailer(format!("Retailer {}", i % 2_000)),
            Target::Category(format!("Category {}", i % 100)),
        ] {
            store
                .subscriptions()
                .add(
                    &Subscription {
                        v: Subscription::VERSION,
                        id: uuid::Uuid::now_v7(),
                        user_id: user.id,
                        target,
                        created_at: now,
                    },
                    10,
                )
                .unwrap();
        }
    }
    store.flush_now().unwrap();
    println!(
        "setup: {vouchers} vouchers, {users} users with 2 subscriptions each, written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The timed part, in its own process: build the application and wait for `/readyz`.
fn child(path: &std::path::Path) {
    let system = actix::System::new();
    system.block_on(async move {
        let mut settings = Settings::defaults().unwrap();
        settings.store = store_settings(path);
        settings.http.bind = "127.0.0.1:0".parse().unwrap();
        settings.networks.clear();
        settings.auth.bootstrap_admin_password = Some("bench-password-1".into());
        let started = Instant::now();
        let app = Application::build(settings).await.unwrap();
        let url = format!("http://127.0.0.1:{}/readyz", app.port());
        let handle = app.handle();
        actix::spawn(async move {
            let _ = app.run_until_stopped().await;
        });
        let client = reqwest::Client::new();
        loop {
            if let Ok(res) = client.get(&url).send().await
                && res.status() == reqwest::StatusCode::OK
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "start: store open, indexes built and /readyz 200 in {secs:.2} s; memory then {:.0} MB resident (peak {:.0} MB)",
            rss_mb(),
            peak_rss_mb("self")
        );
        handle.stop(true).await;
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(std::path::Path::new(&args[i + 1]));
        return;
    }
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-start");
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let path = base.join("data");
    setup(
        &path,
        env("BENCH_VOUCHERS", 1_000_000),
        env("BENCH_USERS", 100_000),
    );
    for _ in 0..2 {
        let status = Command::new(std::env::current_exe().unwrap())
            .arg("--child")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
    }
    let _ = std::fs::remove_dir_all(&base);
}
