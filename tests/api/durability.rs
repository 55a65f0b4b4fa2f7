//! What the server does when the disk fails it: a failed flush is fatal (no more writes, not
//! ready, the process ends with an error, nothing handed out twice after the restart), and a
//! command that writes several keys stands whole or not at all after an error or a crash.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use voucherd::store::failpoints::Failpoint;

use crate::campaigns::window;
use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, Server, assert_problem, get_from, login_to, serve_with_env,
    spawn_app, spawn_with, test_settings,
};

#[actix_web::test]
async fn a_failed_flush_stops_writes_and_the_server_and_the_restart_hands_nothing_out_twice() {
    let dir = tempfile::tempdir().unwrap();
    let settings = test_settings(dir.path().join("data"));
    let app = spawn_with(settings.clone(), dir).await;
    let id = app.active_campaign(10, 10).await;
    let (_, token) = app.customer("flush@x.io").await;
    let first = app.claim(&id, &token, None).await;
    assert_eq!(first.status(), StatusCode::CREATED);

    app.store.failpoints.arm(Failpoint::Flush);
    // The claim's write is applied but cannot be made durable: not acknowledged.
    assert_problem(app.claim(&id, &token, None).await, 503, "overloaded").await;
    // Nothing more is written, whatever is asked.
    assert_problem(app.claim(&id, &token, None).await, 503, "overloaded").await;
    let ready = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.json::<Value>().await.unwrap()["store"], false);
    let (ended, dir) = app.ended(Duration::from_secs(30)).await;
    assert!(ended.is_err(), "the server ends with an error: {ended:?}");

    // Restarted, it recovers from the log: every code is held once, the pool adds up.
    let app = spawn_with(settings, dir).await;
    let token = app.login("flush@x.io", "customer-password").await;
    let wallet = app.get_json("/api/v1/wallet", &token).await;
    let held = wallet["items"].as_array().unwrap().len();
    assert!((1..=2).contains(&held), "{wallet}");
    let c = app
        .get_json(&format!("/api/v1/campaigns/{id}"), &app.admin_token)
        .await;
    assert_eq!(c["claimed"], held);
    let mut codes: Vec<String> = wallet["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap().to_owned())
        .collect();
    for _ in held..10 {
        let res = app.claim(&id, &token, None).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        codes.push(
            res.json::<Value>().await.unwrap()["code"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    codes.sort();
    codes.dedup();
    assert_eq!(codes.len(), 10, "no code was handed out twice");
}

#[actix_web::test]
async fn an_order_or_a_redemption_that_fails_between_its_keys_leaves_nothing_behind() {
    let app = spawn_app().await;
    let (starts, ends) = window();
    let c = app
        .campaign(
            json!({"name": "whole", "kind": "flash_sale", "discount": {"percent": 10},
            "pool_size": 3, "per_customer_limit": 10, "starts_at": starts, "ends_at": ends}),
        )
        .await;
    let id = c["id"].as_str().unwrap();
    app.add_codes(id, json!({"count": 3})).await;
    let (customer, token) = app.customer("whole@x.io").await;
    let order = |quantity: u32| {
        app.call(
            Method::POST,
            "/api/v1/orders",
            Some(&token),
            Some(json!({"campaign_id": id, "quantity": quantity})),
        )
    };

    app.store.failpoints.arm(Failpoint::BetweenKeys);
    let res = order(2).await;
    assert!(res.status().is_server_error(), "{}", res.status());
    app.store.failpoints.disarm(Failpoint::BetweenKeys);
    let wallet = app.get_json("/api/v1/wallet", &token).await;
    assert_eq!(wallet["items"], json!([]), "no code without its order");
    let c = app
        .get_json(&format!("/api/v1/campaigns/{id}"), &app.admin_token)
        .await;
    assert_eq!(c["claimed"], 0);
    // Every code is still there to buy, once.
    let res = order(3).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let bought: Value = res.json().await.unwrap();
    let code = bought["codes"][0].as_str().unwrap().to_owned();

    app.store.failpoints.arm(Failpoint::BetweenKeys);
    let res = app
        .redeem(json!({"code": code, "customer": customer}))
        .await;
    assert!(res.status().is_server_error(), "{}", res.status());
    app.store.failpoints.disarm(Failpoint::BetweenKeys);
    let check = app
        .get_json(&format!("/api/v1/codes/{code}"), &app.admin_token)
        .await;
    assert_eq!(
        check["status"], "claimed",
        "no redemption half-written: {check}"
    );
    let res = app
        .redeem(json!({"code": code, "customer": customer}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let redemption: Value = res.json().await.unwrap();

    let rollback_path = format!(
        "/api/v1/redemptions/{}/rollback",
        redemption["id"].as_str().unwrap()
    );
    let roll_back = || app.call(Method::POST, &rollback_path, Some(&app.admin_token), None);
    app.store.failpoints.arm(Failpoint::BetweenKeys);
    let rollback = roll_back().await;
    assert!(rollback.status().is_server_error());
    app.store.failpoints.disarm(Failpoint::BetweenKeys);
    let check = app
        .get_json(&format!("/api/v1/codes/{code}"), &app.admin_token)
        .await;
    assert_eq!(check["status"], "redeemed", "{check}");
    let rollback = roll_back().await;
    assert_eq!(
        rollback.status(),
        StatusCode::OK,
        "the rollback had not happened"
    );
}

#[actix_web::test]
async fn a_crash_between_the_keys_of_an_order_leaves_no_code_without_its_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let (child, base) = serve_with_env(&store, &[]);
    let server = Server(child);
    let admin = login_to(&http, &base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (starts, ends) = window();
    let campaign: Value = http
        .post(format!("{base}/api/v1/campaigns"))
        .bearer_auth(&admin)
        .json(
            &json!({"name": "crash", "kind": "flash_sale", "pool_size": 4,
            "per_customer_limit": 10, "starts_at": starts, "ends_at": ends}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = campaign["id"].as_str().unwrap().to_owned();
    let res = http
        .post(format!("{base}/api/v1/campaigns/{id}/codes"))
        .bearer_auth(&admin)
        .json(&json!({"count": 4}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = http
        .post(format!("{base}/api/v1/users"))
        .bearer_auth(&admin)
        .json(&json!({"email": "crash@x.io", "password": "password-1", "timezone": "UTC"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    drop(server);

    // The server now dies between the codes and the order of the first order it writes, after
    // flushing what it wrote so far.
    let (child, base) = serve_with_env(&store, &[("VOUCHERD_FAILPOINTS", "crash_between_keys")]);
    let mut server = Server(child);
    let token = login_to(&http, &base, "crash@x.io", "password-1").await;
    let res = http
        .post(format!("{base}/api/v1/orders"))
        .bearer_auth(&token)
        .json(&json!({"campaign_id": id, "quantity": 2}))
        .send()
        .await;
    assert!(res.is_err(), "the server died answering: {res:?}");
    let status = server.0.wait().unwrap();
    assert!(!status.success(), "{status:?}");

    let (child, base) = serve_with_env(&store, &[]);
    let _server = Server(child);
    let token = login_to(&http, &base, "crash@x.io", "password-1").await;
    let admin = login_to(&http, &base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (_, wallet) = get_from(&http, &base, &token, "/wallet").await;
    assert_eq!(wallet["items"], json!([]), "no code without its order");
    let (_, c) = get_from(&http, &base, &admin, &format!("/campaigns/{id}")).await;
    assert_eq!(c["claimed"], 0, "{c}");
    let res = http
        .post(format!("{base}/api/v1/orders"))
        .bearer_auth(&token)
        .json(&json!({"campaign_id": id, "quantity": 4}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "every code is there to buy"
    );
}
