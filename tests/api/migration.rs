//! A store written by the first release (JSON records, every index in its own sled tree, digests
//! and deliveries apart) opens, is migrated in order, and serves what it held.
//!
//! `tests/fixtures/store-v1/` was made by that release: the bootstrap admin, a customer
//! (Old.Customer@Example.org, Europe/Berlin, digest hour 3) with three subscriptions, the demo
//! network's 12 vouchers, one digest sent for 2026-11-22, a session token and a manager API key.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{spawn_with_clock, test_settings};

const CUSTOMER: &str = "01a20107-5eba-7745-8e6f-30616c235a77";
const SESSION: &str = "vd_f9d972312b1076308a92eb9d10b40d262bed973f4ece07e4250861045cd1ddec";
const API_KEY: &str = "vd_fcc2204eafaf3d080a8d9f15b9666afe9b21750b46fb8931b13b9aea66b1a7c3";

fn copy_fixture(to: &std::path::Path) {
    let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v1");
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[actix_web::test]
async fn a_store_of_the_first_release_opens_migrated_with_everything_it_held() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    copy_fixture(&path);
    let clock = voucherd::clock::ManualClock::new("2026-11-22T20:00:00Z".parse().unwrap());
    let app = spawn_with_clock(test_settings(path), dir, clock).await;

    // Users, the email index (case-folded), passwords and both kinds of token.
    let me: Value = app.me(SESSION).await.json().await.unwrap();
    assert_eq!(me["id"], CUSTOMER);
    assert_eq!(me["email"], "Old.Customer@Example.org");
    assert_eq!(me["phone"], "+4915100000001");
    // Users from before address confirmation count as confirmed; a number nothing ever proved
    // stays on the account, unconfirmed (it reserves nothing until a code proves it).
    assert_eq!(me["email_verified"], true);
    assert_eq!(me["phone_verified"], false);
    app.login("old.customer@example.org", "old-password-1")
        .await;
    let dup = app
        .create_user(serde_json::json!({"email": "OLD.customer@example.org",
            "password": "another-password", "timezone": "UTC"}))
        .await;
    assert_eq!(dup.status(), StatusCode::CONFLICT);
    let networks = app
        .call(Method::GET, "/api/v1/networks", Some(API_KEY), None)
        .await;
    assert_eq!(
        networks.status(),
        StatusCode::OK,
        "the manager API key works"
    );
    assert_eq!(app.all_users().await.len(), 2);
    // Listed by id, its creator unknown (the first release did not record it).
    let keys: Value = app
        .call(
            Method::GET,
            "/api/v1/api-keys",
            Some(&app.admin_token),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(keys["items"].as_array().unwrap().len(), 1, "{keys}");
    assert_eq!(keys["items"][0]["role"], "manager");
    assert!(keys["items"][0]["created_by"].is_null());

    // The catalogue with its names and counts.
    let all = app.all_vouchers("active=false", 5).await;
    assert_eq!(all.len(), 12);
    let retailers: Value = app
        .call(Method::GET, "/api/v1/retailers", None, None)
        .await
        .json()
        .await
        .unwrap();
    let contoso = retailers["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Contoso Books")
        .cloned()
        .unwrap();
    assert_eq!(contoso["active_vouchers"], 2);

    // Subscriptions, and the digest already sent with its delivery state.
    let subs: Value = app
        .call(
            Method::GET,
            &format!("/api/v1/users/{CUSTOMER}/subscriptions"),
            Some(SESSION),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(subs["items"].as_array().unwrap().len(), 3);
    let digests: Value = app
        .call(
            Method::GET,
            &format!("/api/v1/users/{CUSTOMER}/digests"),
            Some(SESSION),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let items = digests["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["local_date"], "2026-11-22");
    assert_eq!(items[0]["status"], "sent");
    assert_eq!(items[0]["voucher_ids"].as_array().unwrap().len(), 2);
    let sent: Value = app
        .call(
            Method::GET,
            "/api/v1/deliveries?status=sent",
            Some(&app.admin_token),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sent["items"].as_array().unwrap().len(), 1);
    // Reports count it (day tallies derived from the records once, by migration 7).
    let overview = app
        .get_json("/api/v1/reports/overview", &app.admin_token)
        .await;
    assert_eq!(
        overview["digests_by_day"],
        json!([{"date": "2026-11-22", "sent": 1, "failed": 0, "dead": 0}])
    );
    assert_eq!(overview["deliveries"][0]["sent"], 1);

    // That period stays done: running today's digests again sends nothing.
    let run: Value = app
        .call(
            Method::POST,
            "/api/v1/admin/digests/run",
            Some(&app.admin_token),
            Some(json!({"user_id": CUSTOMER})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(run, json!({"sent": 0, "skipped": 1}));

    // And what is written now lands in the migrated store and survives a restart.
    let (id, token) = app.customer("new@after.migration").await;
    let dir = app.stop().await;
    let clock = voucherd::clock::ManualClock::new("2026-11-22T20:00:00Z".parse().unwrap());
    let app = spawn_with_clock(test_settings(dir.path().join("data")), dir, clock).await;
    let me: Value = app.me(&token).await.json().await.unwrap();
    assert_eq!(me["id"], id.as_str());
    assert_eq!(app.all_users().await.len(), 3);
}
