//! Async code requests against a slow provider: `BENCH_REQUESTS` requests (default 2,000) to the
//! real server, whose one provider (`concurrency` `BENCH_CONCURRENCY`, default 64) answers each
//! `POST /codes` with a code after a random delay of 0 to 2 s. Measured: the time from the first
//! request until every one is fulfilled, against the ideal `requests × mean delay ÷ concurrency`
//! (the provider's own capacity); the most requests the provider saw at once (must not pass
//! `concurrency`); the server's peak memory (VmHWM).
//!
//!     cargo bench --bench code_requests
//!
//! The provider is a small actix-web server in this process. Clients submit from 32 tasks and,
//! like any client, wait out a 503 (`Retry-After`) when the provider's queue is full.
//!
//! Target: completion within 10 % of the ideal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use server::{PASSWORD, Server};

mod common;
use common::env;
#[path = "common/server.rs"]
mod server;

/// What the provider saw.
#[derive(Default)]
struct Seen {
    now: AtomicUsize,
    most: AtomicUsize,
    answered: AtomicUsize,
    /// Sum of the delays, in µs.
    delay_us: AtomicU64,
}

/// The provider: `POST /codes` → 200 `{code}` after 0–2 s (uniform).
fn provider(seen: Arc<Seen>) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            actix_web::HttpServer::new(move || {
                let seen = seen.clone();
                actix_web::App::new().route(
                    "/codes",
                    actix_web::web::post().to(move |body: actix_web::web::Json<Value>| {
                        let seen = seen.clone();
                        async move {
                            let now = seen.now.fetch_add(1, Ordering::AcqRel) + 1;
                            seen.most.fetch_max(now, Ordering::AcqRel);
                            let delay = Duration::from_secs_f64(rand::random::<f64>() * 2.0);
                            seen.delay_us
                                .fetch_add(delay.as_micros() as u64, Ordering::AcqRel);
                            tokio::time::sleep(delay).await;
                            seen.now.fetch_sub(1, Ordering::AcqRel);
                            seen.answered.fetch_add(1, Ordering::AcqRel);
                            let id = body["request_id"].as_str().unwrap_or("?").to_owned();
                            actix_web::HttpResponse::Ok().json(json!({"code": format!("P-{id}")}))
                        }
                    }),
                )
            })
            .workers(2)
            .listen(listener)
            .unwrap()
            .run()
            .await
            .unwrap();
        });
    });
    port
}

fn start(provider_port: u16, concurrency: usize) -> Server {
    let config = format!(
        "networks = []\n\n[[providers]]\nname = \"bench\"\nurl = \"http://127.0.0.1:{provider_port}\"\n\
         secret = \"bench-provider-secret\"\ntimeout_s = 30\npoll_interval_s = 10\n\
         give_up_after_s = 3600\nconcurrency = {concurrency}\nproducts = [\"*\"]\n\n\
         [code_requests]\nmax_pending_per_customer = 10000\nmax_per_customer_per_day = 100000\n"
    );
    server::start(Some(&config), &[])
}

/// `voucherd_code_requests_total{…result="fulfilled"}` from `/metrics`.
async fn fulfilled(client: &reqwest::Client, base: &str) -> usize {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("voucherd_code_requests_total") && l.contains("result=\"fulfilled\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as usize
}

#[tokio::main]
async fn main() {
    let requests = env("BENCH_REQUESTS", 2000);
    let concurrency = env("BENCH_CONCURRENCY", 64);
    let seen = Arc::new(Seen::default());
    let server = start(provider(seen.clone()), concurrency);
    let base = server.base.clone();
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let token: String = client
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
    let me: Value = client
        .get(format!("{base}/api/v1/users/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let customer = me["id"].as_str().unwrap().to_owned();
    println!(
        "code requests: {requests} requests, provider concurrency {concurrency}, delays 0-2 s"
    );
    let started = Instant::now();
    let refused = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..32)
        .map(|t| {
            let (client, base, token, customer, refused) = (
                client.clone(),
                base.clone(),
                token.clone(),
                customer.clone(),
                refused.clone(),
            );
            tokio::spawn(async move {
                for i in (t..requests).step_by(32) {
                    loop {
                        let res = client
                            .post(format!("{base}/api/v1/code-requests"))
                            .bearer_auth(&token)
                            .json(&json!({"provider": "bench", "product": format!("p{i}"),
                                "channel": "web", "customer": customer}))
                            .send()
                            .await
                            .unwrap();
                        match res.status().as_u16() {
                            202 => break,
                            503 => {
                                refused.fetch_add(1, Ordering::AcqRel);
                                let wait = res
                                    .headers()
                                    .get("retry-after")
                                    .and_then(|v| v.to_str().ok()?.parse().ok())
                                    .unwrap_or(1);
                                tokio::time::sleep(Duration::from_secs(wait)).await;
                            }
                            s => panic!("unexpected {s}"),
                        }
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let submitted = started.elapsed();
    loop {
        if fulfilled(&client, &base).await >= requests {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "not done in 10 min"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = started.elapsed().as_secs_f64();
    let answered = seen.answered.load(Ordering::Acquire).max(1);
    let mean = seen.delay_us.load(Ordering::Acquire) as f64 / answered as f64 / 1e6;
    let ideal = requests as f64 * mean / concurrency as f64;
    println!(
        "  all {requests} fulfilled in {took:.1} s (all submitted after {:.1} s; {} answers were 503, retried)",
        submitted.as_secs_f64(),
        refused.load(Ordering::Acquire)
    );
    println!(
        "  ideal (requests × mean delay {mean:.3} s ÷ {concurrency}): {ideal:.1} s → {:.1} % over",
        (took / ideal - 1.0) * 100.0
    );
    println!(
        "  most requests at the provider at once: {} (concurrency {concurrency})",
        seen.most.load(Ordering::Acquire)
    );
    println!(
        "  server peak memory (VmHWM): {:.1} MiB",
        common::peak_rss_mb(&server.child.id().to_string())
    );
}
