//! A flash-sale drop against the real server: durable claims per second with their latency,
//! sold-out answers per second, and — in the same run, with the same client and connections —
//! `/healthz` per second, the ceiling of this machine's HTTP path; then the peer a user would pick
//! instead, Redis with a Lua claim and every write fsynced, on the same machine.
//!
//! The release binary is started from an empty directory with a fresh store (`fsync` on: a 201
//! means the claim is on disk). Setup (not in the rates): `BENCH_CUSTOMERS` customers (default
//! 320) log in; a campaign with a pool of `BENCH_POOL` codes (default 1,000,000) is filled by one
//! generation request (timed, with the server's peak memory then), and a second campaign of one
//! code is sold out. Then `BENCH_CONNECTIONS` (default 64) concurrent connections each run three
//! phases of `BENCH_SECONDS` (default 10): `/healthz`; claims on the big pool (each connection
//! cycling over its customers, a per-customer limit of 1,000); claims on the sold-out campaign.
//! CPU per answer (server user and system, client) is read from `/proc`. Last, when
//! `redis-server` and `redis-benchmark` are installed, Redis 7 with `appendonly yes` and
//! `appendfsync always` gets as many claims as the pool holds, over the same number of
//! connections (`common/redis.rs`), and the bench prints voucherd's ratio to it.
//!
//!     cargo bench --bench flash_sale
//!
//! `BENCH_FSYNC=false` runs the server without `fdatasync` of sled's log (claims are then
//! flushed, not synced): how much of a claim's cost is the sync. `BENCH_CALLGRIND=FILE` runs the
//! server under valgrind's callgrind and counts its instructions during the `/healthz` and claim
//! phases only (`FILE.1`, `FILE.2`; build with `--profile profiling` for symbols, and use a small
//! pool: everything runs ~50 times slower).
//!
//! Targets: durable claims ≥ 1.0 × Redis and ≥ 0.5 × `/healthz` with p99 ≤ 10 ms; sold-out
//! answers ≥ 0.8 × `/healthz`; peak memory ≤ 500 MB and generation ≤ 5 s for 1,000,000 codes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use server::{PASSWORD, Server};

mod common;
use common::env;
#[path = "common/load.rs"]
mod load;
#[path = "common/redis.rs"]
mod redis;
#[path = "common/server.rs"]
mod server;
use load::phase;

fn start() -> Server {
    // BENCH_FSYNC=false measures the same run without fdatasync (not durable against power
    // loss): how much of a claim's cost is the disk's.
    let fsync = std::env::var("BENCH_FSYNC").unwrap_or_else(|_| "true".into());
    server::start(None, &[("VOUCHERD__STORE__FSYNC", fsync)])
}

async fn post(client: &reqwest::Client, url: &str, token: Option<&str>, body: Value) -> Value {
    let mut req = client.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{url}: {status} {body}");
    body
}

/// Under `BENCH_CALLGRIND`: counts the server's instructions from now on (`on`), or writes what
/// was counted since `on` as a profile part named `label` and stops counting.
fn callgrind(pid: &str, on: bool, label: &str) {
    if std::env::var("BENCH_CALLGRIND").map_or(true, |v| v.is_empty()) {
        return;
    }
    let run = |args: &[&str]| {
        let status = std::process::Command::new("callgrind_control")
            .args(args)
            .arg(pid)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("callgrind_control (valgrind) runs");
        assert!(status.success(), "callgrind_control {args:?}");
    };
    if on {
        run(&["-i", "on"]);
        run(&["-z"]);
    } else {
        run(&["-d", label]);
        run(&["-i", "off"]);
    }
}

#[tokio::main]
async fn main() {
    let connections = env("BENCH_CONNECTIONS", 64);
    let customers = env("BENCH_CUSTOMERS", 320).max(connections);
    let pool = env("BENCH_POOL", 1_000_000);
    let seconds = env("BENCH_SECONDS", 10) as u64;
    let server = start();
    let base = server.base.clone();
    let setup = reqwest::Client::new();
    // Up to 10 s (a minute under callgrind).
    for _ in 0..1200 {
        if let Ok(r) = setup.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let admin = post(
        &setup,
        &format!("{base}/api/v1/auth/tokens"),
        None,
        json!({"email": "admin@localhost", "password": PASSWORD}),
    )
    .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    println!(
        "flash sale: {connections} connections, {customers} customers, a pool of {pool} codes, {seconds} s per phase"
    );
    let mut tokens = Vec::with_capacity(customers);
    for i in 0..customers {
        let email = format!("buyer{i}@bench.example");
        // Made by the admin: confirmed customers, as a shop's imported customers are.
        post(
            &setup,
            &format!("{base}/api/v1/users"),
            Some(&admin),
            json!({"email": email, "password": "bench-password", "timezone": "UTC"}),
        )
        .await;
        let t = post(
            &setup,
            &format!("{base}/api/v1/auth/tokens"),
            None,
            json!({"email": email, "password": "bench-password"}),
        )
        .await["token"]
            .as_str()
            .unwrap()
            .to_owned();
        tokens.push(t);
    }
    let now = chrono::Utc::now();
    let window = |kind: &str, size: usize| {
        json!({"name": kind, "kind": "flash_sale", "discount": {"percent": 50}, "pool_size": size,
            "per_customer_limit": 1000, "starts_at": (now - chrono::Duration::minutes(1)).to_rfc3339(),
            "ends_at": (now + chrono::Duration::days(1)).to_rfc3339(),
            "code": {"length": 12, "charset": "upper"}})
    };
    let big = post(
        &setup,
        &format!("{base}/api/v1/campaigns"),
        Some(&admin),
        window("drop", pool),
    )
    .await;
    let big = big["id"].as_str().unwrap().to_owned();
    let t = Instant::now();
    post(
        &setup,
        &format!("{base}/api/v1/campaigns/{big}/codes"),
        Some(&admin),
        json!({"count": pool}),
    )
    .await;
    println!(
        "  generating {pool} codes (one request): {:.2} s; server peak memory so far {:.1} MiB",
        t.elapsed().as_secs_f64(),
        common::peak_rss_mb(&server.child.id().to_string())
    );
    let gone = post(
        &setup,
        &format!("{base}/api/v1/campaigns"),
        Some(&admin),
        window("gone", 1),
    )
    .await;
    let gone = gone["id"].as_str().unwrap().to_owned();
    post(
        &setup,
        &format!("{base}/api/v1/campaigns/{gone}/codes"),
        Some(&admin),
        json!({"count": 1}),
    )
    .await;
    post(
        &setup,
        &format!("{base}/api/v1/campaigns/{gone}/claims"),
        Some(&tokens[0]),
        json!({}),
    )
    .await;

    let clients = load::clients(connections);
    let tokens = Arc::new(tokens);
    let server_pid = server.child.id().to_string();
    let meter = load::Cpu::new(&server_pid);
    let health_url = format!("{base}/healthz");
    let at = meter.now();
    callgrind(&server_pid, true, "");
    let mut health = phase(
        &clients,
        seconds,
        200,
        None,
        Arc::new(move |c, _, _| c.get(&health_url)),
    )
    .await;
    callgrind(&server_pid, false, "healthz");
    meter.report("/healthz", at, health.ok + health.other);
    let claim_url = format!("{base}/api/v1/campaigns/{big}/claims");
    let at = meter.now();
    let per_conn = (tokens.len() / connections).max(1);
    let t2 = tokens.clone();
    callgrind(&server_pid, true, "");
    let mut claims = phase(
        &clients,
        seconds,
        201,
        Some(409),
        Arc::new(move |c, conn, i| {
            let token = &t2[(conn * per_conn + i % per_conn) % t2.len()];
            c.post(&claim_url).bearer_auth(token)
        }),
    )
    .await;
    callgrind(&server_pid, false, "claims");
    meter.report("claims", at, claims.ok + claims.other);
    let sold_url = format!("{base}/api/v1/campaigns/{gone}/claims");
    let at = meter.now();
    let t3 = tokens.clone();
    let mut sold_out = phase(
        &clients,
        seconds,
        409,
        None,
        Arc::new(move |c, conn, i| c.post(&sold_url).bearer_auth(&t3[(conn + i) % t3.len()])),
    )
    .await;
    meter.report("sold-out", at, sold_out.ok + sold_out.other);
    let h = health.rate();
    println!(
        "  /healthz:        {:>9.0} req/s   p50 {:.2} ms  p99 {:.2} ms",
        h,
        health.percentile_ms(0.5),
        health.percentile_ms(0.99)
    );
    println!(
        "  durable claims:  {:>9.0} /s      p50 {:.2} ms  p99 {:.2} ms   ({:.2} × /healthz; {} claimed in {:.1} s, {} other answers)",
        claims.rate(),
        claims.percentile_ms(0.5),
        claims.percentile_ms(0.99),
        claims.rate() / h,
        claims.ok,
        claims.last_ok.as_secs_f64(),
        claims.other
    );
    println!(
        "  sold-out:        {:>9.0} /s      p50 {:.2} ms  p99 {:.2} ms   ({:.2} × /healthz)",
        sold_out.rate(),
        sold_out.percentile_ms(0.5),
        sold_out.percentile_ms(0.99),
        sold_out.rate() / h
    );
    println!(
        "  server peak memory (VmHWM): {:.1} MiB",
        common::peak_rss_mb(&server_pid)
    );
    // Where a durable claim's time goes: the writer's batches and flushes over the whole run.
    let metrics = setup
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in metrics.lines().filter(|l| {
        (l.starts_with("voucherd_store_flush_seconds")
            || l.starts_with("voucherd_store_writer_batch"))
            && (l.contains("_sum")
                || l.contains("_count")
                || l.contains("quantile=\"0.5\"")
                || l.contains("quantile=\"0.99\""))
    }) {
        println!("  {line}");
    }
    // Every acknowledged claim is a distinct held code.
    let c: Value = setup
        .get(format!("{base}/api/v1/campaigns/{big}"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(c["claimed"].as_u64().unwrap() as usize, claims.ok);
    drop(server);

    // The peer, on the same machine in the same run: as many claims as voucherd's pool.
    match redis::Redis::start() {
        None => {
            println!("  redis-server / redis-benchmark not installed: no comparison with Redis")
        }
        Some(peer) => {
            let sha = peer.prepare(pool);
            let r = peer.claims(&sha, connections, pool, 1000);
            assert_eq!(r.claimed as usize, pool, "every Redis claim took a code");
            println!(
                "  Redis + Lua (appendfsync always): {:>9.0} claims/s  p50 {:.2} ms  p99 {:.2} ms; cpu per answer: server {:.1} µs, client {:.1} µs",
                r.per_second, r.p50_ms, r.p99_ms, r.server_us, r.client_us
            );
            println!(
                "  voucherd ÷ Redis: {:.2} (durable claims)",
                claims.rate() / r.per_second.max(1.0)
            );
        }
    }
}
