//! Promotions at checkout against the real server, each rate beside `/healthz` measured in the
//! same run with the same client and connections:
//! - validations of 3 codes (two shared promotions with rules, one fixed amount) against a
//!   5-item order: nothing written, every code read;
//! - one hot shared code with a usage limit of `BENCH_USES` (default 100,000) redeemed by
//!   `BENCH_CONNECTIONS` (default 64) connections, each redemption durable (`fsync` on) and for
//!   a different buyer (`customer_ref`), until the limit answers `usage_limit_reached`: exactly
//!   the limit succeeds (checked against the answers and the server's count).
//!
//!     cargo bench --bench checkout
//!
//! `BENCH_SECONDS` (default 10) for `/healthz` and validations. CPU per answer (server user and
//! system, client) is read from `/proc`.
//!
//! Targets: validations ≥ 0.6 × `/healthz` with p99 ≤ 10 ms; durable redemptions of the hot code
//! ≥ 0.3 × `/healthz`, and exactly `BENCH_USES` of them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use server::PASSWORD;

mod common;
use common::env;
#[path = "common/load.rs"]
mod load;
#[path = "common/server.rs"]
mod server;
use load::phase;

async fn send(client: &reqwest::Client, url: &str, token: &str, body: Value) -> Value {
    let res = client
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{url}: {status} {body}");
    body
}

#[tokio::main]
async fn main() {
    let connections = env("BENCH_CONNECTIONS", 64);
    let seconds = env("BENCH_SECONDS", 10) as u64;
    let uses = env("BENCH_USES", 100_000);
    let fsync = std::env::var("BENCH_FSYNC").unwrap_or_else(|_| "true".into());
    let server = server::start(None, &[("VOUCHERD__STORE__FSYNC", fsync)]);
    let base = server.base.clone();
    let setup = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = setup.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let admin = setup
        .post(format!("{base}/api/v1/auth/tokens"))
        .json(&json!({"email": "admin@localhost", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let now = chrono::Utc::now();
    let window = |spec: Value| {
        let mut spec = spec;
        spec["starts_at"] = json!((now - chrono::Duration::hours(1)).to_rfc3339());
        spec["ends_at"] = json!((now + chrono::Duration::days(1)).to_rfc3339());
        spec["code_mode"] = json!("shared");
        spec["pool_size"] = json!(1);
        spec["per_customer_limit"] = json!(1000);
        spec
    };
    let campaigns = [
        (
            "SHOES20",
            json!({"name": "shoes", "kind": "discount", "discount": {"percent": 20, "max_cents": 5000},
                "rules": {"categories": {"include": ["shoes"]}, "skus": {"exclude": ["SALE-1"]},
                          "min_order_cents": 1000},
                "budgets": [{"measure": "discount_cents", "limit": 100_000_000, "period": "day"}]}),
            None,
        ),
        (
            "FIVE",
            json!({"name": "five", "kind": "discount", "discount": {"amount_cents": 500, "currency": "EUR"}}),
            None,
        ),
        (
            "WEEKEND10",
            json!({"name": "ten", "kind": "discount", "discount": {"percent": 10},
                "rules": {"currency": "EUR", "min_items": 2}}),
            None,
        ),
        (
            "HOT",
            json!({"name": "hot", "kind": "discount", "discount": {"percent": 10}}),
            Some(uses),
        ),
    ];
    let mut hot = String::new();
    for (code, spec, limit) in campaigns {
        let c = send(
            &setup,
            &format!("{base}/api/v1/campaigns"),
            &admin,
            window(spec),
        )
        .await;
        let id = c["id"].as_str().unwrap().to_owned();
        let mut body = json!({"codes": [code]});
        if let Some(n) = limit {
            body["usage_limit"] = json!(n);
            hot = id.clone();
        }
        send(
            &setup,
            &format!("{base}/api/v1/campaigns/{id}/codes"),
            &admin,
            body,
        )
        .await;
    }

    let clients = load::clients(connections);
    let server_pid = server.child.id().to_string();
    let meter = load::Cpu::new(&server_pid);

    let health_url = format!("{base}/healthz");
    let at = meter.now();
    let mut health = phase(
        &clients,
        seconds,
        200,
        None,
        Arc::new(move |c, _, _| c.get(&health_url)),
    )
    .await;
    meter.report("/healthz", at, health.ok + health.other);

    let validate_url = format!("{base}/api/v1/validations");
    let token = admin.clone();
    let order = json!({"currency": "EUR", "items": [
        {"sku": "RUN-1", "category": "shoes", "quantity": 2, "price_cents": 4999},
        {"sku": "SALE-1", "category": "shoes", "quantity": 1, "price_cents": 3000},
        {"sku": "HAT-1", "category": "hats", "quantity": 1, "price_cents": 1500},
        {"sku": "SOCK-1", "category": "shoes", "quantity": 3, "price_cents": 333},
        {"sku": "BAG-1", "retailer": "Acme", "quantity": 1, "price_cents": 2000}]});
    let at = meter.now();
    let mut validations = phase(
        &clients,
        seconds,
        200,
        None,
        Arc::new(move |c, conn, i| {
            c.post(&validate_url).bearer_auth(&token).json(&json!({
                "codes": ["SHOES20", "FIVE", "WEEKEND10"],
                "customer_ref": format!("v{conn}-{i}"),
                "order": order,
            }))
        }),
    )
    .await;
    meter.report("validations", at, validations.ok + validations.other);

    let redeem_url = format!("{base}/api/v1/redemptions");
    let token = admin.clone();
    let refused = Arc::new(AtomicUsize::new(0));
    let at = meter.now();
    let mut redemptions = phase(
        &clients,
        600,
        201,
        Some(409),
        Arc::new(move |c, conn, i| {
            c.post(&redeem_url).bearer_auth(&token).json(&json!({
                "code": "HOT",
                "customer_ref": format!("r{conn}-{i}"),
                "order": {"amount_cents": 5000, "currency": "EUR"},
            }))
        }),
    )
    .await;
    meter.report("hot redemptions", at, redemptions.ok + redemptions.other);
    // After the limit: the answer names it.
    let last = setup
        .post(format!("{base}/api/v1/redemptions"))
        .bearer_auth(&admin)
        .json(&json!({"code": "HOT", "customer_ref": "late", "order": {"amount_cents": 5000, "currency": "EUR"}}))
        .send()
        .await
        .unwrap();
    let status = last.status().as_u16();
    let problem: Value = last.json().await.unwrap();
    if status == 409 && problem["code"] == "usage_limit_reached" {
        refused.fetch_add(1, Ordering::Relaxed);
    }
    let campaign: Value = setup
        .get(format!("{base}/api/v1/campaigns/{hot}"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let h = health.rate();
    println!("checkout, {connections} connections (server fsync on: every 201 is on disk)");
    println!(
        "  /healthz:          {:>9.0} req/s   p50 {:.2} ms  p99 {:.2} ms",
        h,
        health.percentile_ms(0.5),
        health.percentile_ms(0.99)
    );
    println!(
        "  validations (3 codes, 5 items): {:>9.0} /s   p50 {:.2} ms  p99 {:.2} ms   ({:.2} × /healthz; {} other answers)",
        validations.rate(),
        validations.percentile_ms(0.5),
        validations.percentile_ms(0.99),
        validations.rate() / h,
        validations.other
    );
    println!(
        "  hot shared code:   {:>9.0} durable redemptions/s   p50 {:.2} ms  p99 {:.2} ms   ({:.2} × /healthz)",
        redemptions.rate(),
        redemptions.percentile_ms(0.5),
        redemptions.percentile_ms(0.99),
        redemptions.rate() / h
    );
    println!(
        "  uses: {} succeeded of a limit of {uses}; the server counts {}; {} answers after it (each a 409; the next one says {})",
        redemptions.ok, campaign["redemptions"], redemptions.other, problem["code"]
    );
    assert_eq!(redemptions.ok, uses, "exactly the limit succeeds");
    assert_eq!(campaign["redemptions"].as_u64(), Some(uses as u64));
    assert_eq!(refused.load(Ordering::Relaxed), 1, "{problem}");
    println!(
        "  peak memory: server {:.0} MiB",
        common::peak_rss_mb(&server_pid)
    );
}
