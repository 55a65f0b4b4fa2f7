//! Durable store writes: group commit vs a flush per write, from 1, 8 and 64 concurrent writers.
#![allow(clippy::unwrap_used, clippy::expect_used)]
//!
//! Each iteration is `WRITES` user creations (one key: the user record; the email index is in
//! memory) spread over the writers. `group_commit` goes through the one store writer and is
//! acknowledged once its batch is flushed; `not_durable` is the same command on the same writer,
//! acknowledged before the flush (the ceiling); `flush_per_write` writes on a read-pool thread and
//! flushes itself. Criterion reports elements/s = writes/s.
//! The store lives under `target/` (a real disk, not tmpfs) with `store.fsync = true`, the default.
//!
//! Run: `cargo bench --bench store` (add `-- --quick` for a fast look).

/// The allocator the binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use voucherd::config::StoreSettings;
use voucherd::domain::user::{DigestFrequency, DigestHour, Email, Role, Timezone, User};
use voucherd::store::Store;

const WRITES: u64 = 512;
static NEXT: AtomicU64 = AtomicU64::new(0);

fn user() -> User {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let now = chrono::Utc::now();
    User {
        v: User::VERSION,
        id: uuid::Uuid::now_v7(),
        email: Email::parse(&format!("bench{n}@example.org")).unwrap(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into(),
        phone: None,
        timezone: Timezone(chrono_tz::Europe::Berlin),
        digest_hour: DigestHour::default(),
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

#[derive(Clone, Copy)]
enum Mode {
    GroupCommit,
    FlushPerWrite,
    /// The ceiling: the same writes acknowledged without waiting for the disk.
    NotDurable,
}

async fn run(store: &Store, writers: u64, mode: Mode) {
    let per_writer = WRITES / writers;
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_writer {
                let u = user();
                match mode {
                    Mode::GroupCommit => store.write(move |s| s.users().create(&u)).await.unwrap(),
                    Mode::NotDurable => store
                        .write_unflushed(move |s| s.users().create(&u))
                        .await
                        .unwrap(),
                    Mode::FlushPerWrite => store
                        .run(move |s| {
                            s.users().create(&u)?;
                            s.flush_now()
                        })
                        .await
                        .unwrap(),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

fn durable_writes(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(128)
        .enable_all()
        .build()
        .unwrap();
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-store");
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let dir = tempfile::tempdir_in(&base).unwrap();
    let settings = StoreSettings {
        path: dir.path().join("data"),
        cache_capacity_mb: 256,
        fsync: true,
        writer_queue: 65_536,
    };
    let store = Arc::new(Store::open(&settings).unwrap());

    let mut group = c.benchmark_group("durable_writes");
    group.throughput(Throughput::Elements(WRITES));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(6));
    for writers in [1u64, 8, 64] {
        for (name, mode) in [
            ("group_commit", Mode::GroupCommit),
            ("flush_per_write", Mode::FlushPerWrite),
            ("not_durable", Mode::NotDurable),
        ] {
            group.bench_with_input(BenchmarkId::new(name, writers), &writers, |b, &w| {
                b.to_async(&runtime).iter(|| run(&store, w, mode));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, durable_writes);
criterion_main!(benches);
