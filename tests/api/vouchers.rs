//! The public catalogue: paging over cursors, filters, counts, bad queries.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use voucherd::feeds::FeedKind;

use crate::helpers::{TestApp, assert_problem, dated, network, spawn_with_networks};

/// 120 vouchers: retailers by i % 3, categories by i % 2; every 10th expired, every 15th upcoming.
async fn catalogue() -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("feed.csv");
    let mut text = "id,retailer,category,title,code,url,starts,ends\n".to_owned();
    for i in 0..120 {
        let retailer = ["Alpha Store", "Beta Shop", "Gamma Mart"][i % 3];
        let category = ["Toys", "Garden"][i % 2];
        let (starts, ends) = if i % 10 == 0 {
            ("2020-01-01", "2020-02-01")
        } else if i % 15 == 0 {
            ("2098-01-01", "2099-01-01")
        } else {
            ("2020-01-01", "")
        };
        let title = if i == 7 {
            "Seven special snowboards"
        } else {
            "Plain offer"
        };
        text.push_str(&format!(
            "v{i},{retailer},{category},{title},CODE{i},https://x.example/{i},{starts},{ends}\n"
        ));
    }
    std::fs::write(&feed, dated(&text)).unwrap();
    let app = spawn_with_networks(vec![network(
        "bulk",
        FeedKind::Csv,
        &format!("file://{}", feed.display()),
    )])
    .await;
    (app, dir)
}

fn ids(items: &[Value]) -> BTreeSet<String> {
    items
        .iter()
        .map(|v| v["external_id"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn cursors_walk_every_active_voucher_once_newest_first() {
    let (app, _dir) = catalogue().await;
    // 12 expired (i % 10 == 0), 4 upcoming (i % 15 == 0 but not % 10: 15, 45, 75, 105).
    let active = app.all_vouchers("", 50).await;
    assert_eq!(active.len(), 104);
    assert_eq!(ids(&active).len(), 104, "no voucher twice");
    assert!(active.iter().all(|v| v["active"] == true));
    let firsts: Vec<&str> = active.iter().map(|v| v["id"].as_str().unwrap()).collect();
    let mut sorted = firsts.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(firsts, sorted, "newest first");

    let all = app.all_vouchers("active=false", 7).await;
    assert_eq!(all.len(), 120);
    assert_eq!(ids(&all).len(), 120);

    let page = app.vouchers("?limit=50").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 50);
    assert!(page["next_cursor"].is_string());
    let last = app.vouchers("?limit=104").await;
    assert!(
        last["next_cursor"].is_null(),
        "a page that holds the rest has no cursor"
    );
}

#[actix_web::test]
async fn filters_combine_and_ignore_case() {
    let (app, _dir) = catalogue().await;
    let alpha = app
        .all_vouchers("retailer=ALPHA%20store&active=false", 50)
        .await;
    assert_eq!(alpha.len(), 40);
    assert!(alpha.iter().all(|v| v["retailer"] == "Alpha Store"));
    let alpha_toys = app
        .all_vouchers("retailer=alpha%20store&category=toys", 50)
        .await;
    // i % 6 == 0 → 20 of them, minus expired (i % 30 == 0 → 4) minus upcoming (none: 15·odd).
    assert_eq!(alpha_toys.len(), 16);
    assert!(
        alpha_toys
            .iter()
            .all(|v| v["category"] == "Toys" && v["active"] == true)
    );
    let q = app.all_vouchers("q=SNOWBOARD", 50).await;
    assert_eq!(ids(&q), BTreeSet::from(["v7".to_owned()]));
    let by_code = app.all_vouchers("q=code119", 50).await;
    assert_eq!(ids(&by_code), BTreeSet::from(["v119".to_owned()]));
    assert!(app.all_vouchers("network=other", 50).await.is_empty());
    assert!(app.all_vouchers("retailer=nobody", 50).await.is_empty());

    let one = &alpha[0];
    let res = app
        .call(
            Method::GET,
            &format!("/api/v1/vouchers/{}", one["id"].as_str().unwrap()),
            None,
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap(), *one);
}

#[actix_web::test]
async fn retailers_and_categories_count_active_vouchers() {
    let (app, _dir) = catalogue().await;
    let retailers: Value = app
        .call(Method::GET, "/api/v1/retailers?limit=2", None, None)
        .await
        .json()
        .await
        .unwrap();
    let items = retailers["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["name"], "Alpha Store");
    // Alpha: i % 3 == 0 → 40; expired i % 30 == 0 → 4; upcoming 15, 45, 75, 105 → 4.
    assert_eq!(items[0]["active_vouchers"], 32);
    let cursor = retailers["next_cursor"].as_str().unwrap();
    let rest: Value = app
        .call(
            Method::GET,
            &format!("/api/v1/retailers?cursor={}", cursor.replace(' ', "%20")),
            None,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["items"][0]["name"], "Gamma Mart");
    assert!(rest["next_cursor"].is_null());
    let categories: Value = app
        .call(Method::GET, "/api/v1/categories", None, None)
        .await
        .json()
        .await
        .unwrap();
    let total: u64 = categories["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["active_vouchers"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 104);
}

#[actix_web::test]
async fn bad_catalogue_queries_get_a_problem_and_change_nothing() {
    let (app, _dir) = catalogue().await;
    let before = app.all_vouchers("active=false", 500).await;
    for (path, status) in [
        ("/api/v1/vouchers?limit=0", 400),
        ("/api/v1/vouchers?limit=501", 400),
        ("/api/v1/vouchers?active=maybe", 400),
        ("/api/v1/vouchers?cursor=not-a-uuid", 400),
        ("/api/v1/vouchers?retailr=typo", 400),
        ("/api/v1/vouchers?q=%01", 400),
        ("/api/v1/vouchers/not-a-uuid", 400),
        ("/api/v1/vouchers/01a1fe30-7b9c-7030-b1b1-332768208eb3", 404),
        ("/api/v1/retailers?limit=-1", 400),
    ] {
        let res = app.call(Method::GET, path, None, None).await;
        let code = if status == 404 {
            "not_found"
        } else {
            "validation_failed"
        };
        assert_problem(res, status, code).await;
    }
    let long = "x".repeat(101);
    let res = app
        .call(
            Method::GET,
            &format!("/api/v1/vouchers?q={long}"),
            None,
            None,
        )
        .await;
    assert_problem(res, 400, "validation_failed").await;
    assert_eq!(app.all_vouchers("active=false", 500).await, before);
}
