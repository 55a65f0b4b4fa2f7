//! Ingest benchmark: a generated feed of N vouchers in two formats (Awin JSON, CJ XML), served
//! page by page (1,000 vouchers a page) by a real HTTP server on loopback. The pages are fetched
//! once (timed alone), then parsed and upserted into a fresh store page by page through the
//! writer, ending with the pull's durable write (what a pull does after fetching; fsync on), then
//! parsed and upserted again (every voucher unchanged), then pulled whole over HTTP through the
//! NetworkActor's `Puller`.
//!
//! Each scenario runs in its own child process so its peak resident memory (VmHWM) is its own;
//! running 50k and 200k shows whether memory grows with the feed's length.
//!
//!     cargo bench --bench ingest
//!     cargo bench --bench ingest -- --sizes 200000     (one size only)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

/// The allocator the binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use common::peak_rss_mb;
use std::process::Command;
use std::time::{Duration, Instant};

use voucherd::actors::network::fetch::Fetcher;
use voucherd::actors::network::pull::{PullLimits, Puller};
use voucherd::config::{NetworkSettings, StoreSettings};
use voucherd::feeds::FeedKind;
use voucherd::store::Store;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const PAGE: u64 = 1000;

/// Generates page `n` of a feed of `total` vouchers on request, so the server holds no feed.
struct Feed {
    kind: FeedKind,
    total: u64,
}

fn page_number(kind: FeedKind, req: &Request) -> u64 {
    match kind {
        FeedKind::Awin => {
            let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
            body["pagination"]["page"].as_u64().unwrap()
        }
        _ => req
            .url
            .query_pairs()
            .find(|(k, _)| k == "page-number")
            .map(|(_, v)| v.parse().unwrap())
            .unwrap(),
    }
}

impl Respond for Feed {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let page = page_number(self.kind, req);
        let first = (page - 1) * PAGE;
        let last = (first + PAGE).min(self.total);
        let mut body = String::with_capacity(600 * PAGE as usize);
        match self.kind {
            FeedKind::Awin => {
                body.push_str("{\"data\":[");
                for i in first..last {
                    if i > first {
                        body.push(',');
                    }
                    body.push_str(&format!(
                        "{{\"promotionId\":{i},\"type\":\"voucher\",\"advertiser\":{{\"id\":{r},\"name\":\"Retailer {r}\",\"joined\":true}},\
                         \"title\":\"{p}% off everything\",\"description\":\"Save {p}% on the whole range of retailer {r}.\",\
                         \"startDate\":\"2026-11-01T00:00:00+01:00\",\"endDate\":\"2099-12-31T23:59:59+00:00\",\
                         \"url\":\"https://shop{r}.example/\",\"urlTracking\":\"https://www.awin1.com/cread.php?awinmid={r}&p={i}\",\
                         \"voucher\":{{\"code\":\"CODE{i}\",\"exclusive\":false}}}}",
                        r = i % 500,
                        p = 5 + i % 50
                    ));
                }
                body.push_str(&format!(
                    "],\"pagination\":{{\"page\":{page},\"pageSize\":{PAGE},\"total\":{}}}}}",
                    self.total
                ));
            }
            _ => {
                body.push_str(&format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><cj-api><links total-matched=\"{}\" records-returned=\"{}\" page-number=\"{page}\">",
                    self.total,
                    last - first
                ));
                for i in first..last {
                    body.push_str(&format!(
                        "<link><advertiser-id>{r}</advertiser-id><advertiser-name>Retailer {r}</advertiser-name>\
                         <category>Category {c}</category><coupon-code>CODE{i}</coupon-code>\
                         <description>Save {p}% on the whole range of retailer {r}</description>\
                         <link-id>{i}</link-id><link-name>{p}% off everything</link-name>\
                         <promotion-start-date>2026-11-01 00:00:00.0</promotion-start-date>\
                         <promotion-end-date>2099-12-31 23:59:00.0</promotion-end-date>\
                         <clickUrl>https://www.anrdoezrs.net/click-{r}-{i}</clickUrl></link>",
                        r = i % 500,
                        c = i % 40,
                        p = 5 + i % 50
                    ));
                }
                body.push_str("</links></cj-api>");
            }
        }
        ResponseTemplate::new(200).set_body_string(body)
    }
}

fn child(kind: FeedKind, total: u64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(Feed { kind, total })
            .mount(&server)
            .await;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreSettings {
            path: dir.path().join("data"),
            cache_capacity_mb: common::env("CACHE_MB", 64) as u64,
            fsync: true,
            writer_queue: 65_536,
        })
        .unwrap();
        let puller = Puller {
            store: store.clone(),
            clock: voucherd::clock::system(),
            fetcher: Fetcher::new(64 * 1024 * 1024, voucherd::clock::system()).unwrap(),
            retention: chrono::Duration::days(30),
            limits: PullLimits {
                max_pages: 100_000,
                max_bytes: usize::MAX,
            },
        };
        let network = NetworkSettings {
            name: "bench".into(),
            kind,
            url: format!("{}/feed", server.uri()),
            schedule: voucherd::config::Schedule::parse("0 0 0 1 1 *").unwrap(),
            token: "t".into(),
            account: String::new(),
            timeout_s: 60,
            enabled: true,
            map: None,
        };
        let rate = |d: Duration| total as f64 / d.as_secs_f64();
        // 1. Whole pulls over HTTP, as the NetworkActor runs them: new, then unchanged. Peak
        //    memory is read here, before the stage timings below hold the feed's pages.
        let t = Instant::now();
        let first = puller.pull(&network).await.unwrap();
        let first_time = t.elapsed();
        assert_eq!(first.inserted, total);
        let t = Instant::now();
        let again = puller.pull(&network).await.unwrap();
        let again_time = t.elapsed();
        assert_eq!(again.unchanged, total);
        println!(
            "{:<5} {:>7} vouchers | pull over HTTP: new {:>5.2} s = {:>7.0}/s, unchanged {:>5.2} s = {:>7.0}/s | peak RSS {:>4.0} MB",
            kind.as_str(),
            total,
            first_time.as_secs_f64(),
            rate(first_time),
            again_time.as_secs_f64(),
            rate(again_time),
            peak_rss_mb("self"),
        );
        // 2. The same feed's stages: pages fetched once (timed alone), then parsed and upserted
        //    page by page through the writer under another network name, ending with the pull's
        //    durable write; then again, every voucher unchanged.
        let source = network.source();
        let mut pages = Vec::new();
        let t = Instant::now();
        for n in 1..=total.div_ceil(PAGE) {
            let req = voucherd::feeds::request(&source, &voucherd::feeds::PageRef::Number(n as u32));
            pages.push(puller.fetcher.fetch(&req, Duration::from_secs(60)).await.unwrap());
        }
        let fetch_time = t.elapsed();
        let parse_and_upsert = |expect_new: bool| {
            let store = store.clone();
            let pages = &pages;
            let source = &source;
            async move {
                let t = Instant::now();
                let mut parsing = Duration::ZERO;
                let now = chrono::Utc::now();
                let mut done = voucherd::store::vouchers::Upserted::default();
                for (i, bytes) in pages.iter().enumerate() {
                    let p = Instant::now();
                    let ctx = voucherd::feeds::PageCtx { number: i as u32 + 1, rows_before: i as u64 * PAGE };
                    let offers = voucherd::feeds::parse(source, ctx, bytes).unwrap().offers;
                    parsing += p.elapsed();
                    done += store
                        .write_unflushed(move |s| {
                            s.vouchers().upsert_page("stages", &offers, now, chrono::Duration::days(30))
                        })
                        .await
                        .unwrap();
                }
                store.write(|s| s.vouchers().finish_pull("stages")).await.unwrap();
                if expect_new {
                    assert_eq!(done.inserted, total);
                } else {
                    assert_eq!(done.unchanged, total);
                }
                (parsing, t.elapsed())
            }
        };
        let (parse_new, new_time) = parse_and_upsert(true).await;
        let (parse_same, same_time) = parse_and_upsert(false).await;
        println!(
            "{:<5} {:>7} stages   | fetch {:.2} s | parse+upsert new {:>5.2} s = {:>7.0}/s (parse alone {:.2} s) | unchanged {:>5.2} s = {:>7.0}/s (parse alone {:.2} s)",
            "",
            "",
            fetch_time.as_secs_f64(),
            new_time.as_secs_f64(),
            rate(new_time),
            parse_new.as_secs_f64(),
            same_time.as_secs_f64(),
            rate(same_time),
            parse_same.as_secs_f64(),
        );
        drop(store);
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let kind = match args[i + 1].as_str() {
            "awin" => FeedKind::Awin,
            _ => FeedKind::Cj,
        };
        child(kind, args[i + 2].parse().unwrap());
        return;
    }
    let sizes: Vec<String> = match args.iter().position(|a| a == "--sizes") {
        Some(i) => args[i + 1].split(',').map(String::from).collect(),
        None => vec!["50000".into(), "200000".into()],
    };
    println!("ingest: feed pages of {PAGE} over loopback HTTP, fsync on, sled cache 64 MB");
    for kind in ["awin", "cj"] {
        for size in &sizes {
            let status = Command::new(std::env::current_exe().unwrap())
                .args(["--child", kind, size])
                .status()
                .unwrap();
            assert!(status.success(), "{kind} {size} failed");
        }
    }
}
