//! Web Push: the VAPID key, push subscriptions, and codes pushed (encrypted, decrypted here with
//! the subscription's private key) to a push service (wiremock); a gone subscription is removed.

use std::time::Duration;

use base64ct::{Base64UrlUnpadded, Encoding as _};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use voucherd::config::ProviderSettings;
use web_push_native::p256::elliptic_curve::rand_core::{OsRng, RngCore as _};
use web_push_native::p256::elliptic_curve::sec1::ToEncodedPoint as _;
use web_push_native::{Auth, p256};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{TestApp, assert_problem, spawn_with, test_settings};

/// A browser's side of a subscription: its key pair and auth secret.
struct Browser {
    secret: p256::SecretKey,
    auth: Auth,
}

impl Browser {
    fn new() -> Self {
        let mut auth = [0u8; 16];
        OsRng.fill_bytes(&mut auth);
        Self {
            secret: p256::SecretKey::random(&mut OsRng),
            auth: Auth::clone_from_slice(&auth),
        }
    }

    fn subscription(&self, endpoint: &str) -> Value {
        json!({
            "endpoint": endpoint,
            "expirationTime": null,
            "keys": {
                "p256dh": Base64UrlUnpadded::encode_string(
                    self.secret.public_key().to_encoded_point(false).as_bytes()),
                "auth": Base64UrlUnpadded::encode_string(&self.auth),
            }
        })
    }

    fn open(&self, body: &[u8]) -> Value {
        let plain = web_push_native::decrypt(body.to_vec(), &self.secret, &self.auth).unwrap();
        serde_json::from_slice(&plain).unwrap()
    }
}

impl TestApp {
    async fn push_subscribe(&self, user: &str, token: &str, body: Value) -> reqwest::Response {
        self.call(
            Method::POST,
            &format!("/api/v1/users/{user}/push-subscriptions"),
            Some(token),
            Some(body),
        )
        .await
    }

    async fn pushes_to(server: &MockServer, at: &str, n: usize) -> Vec<wiremock::Request> {
        for _ in 0..100 {
            let got: Vec<_> = server
                .received_requests()
                .await
                .unwrap()
                .into_iter()
                .filter(|r| r.url.path() == at)
                .collect();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("fewer than {n} pushes to {at}");
    }
}

#[actix_web::test]
async fn codes_are_pushed_encrypted_and_a_gone_subscription_is_removed() {
    let service = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/push/live"))
        .respond_with(ResponseTemplate::new(201))
        .mount(&service)
        .await;
    Mock::given(method("POST"))
        .and(path("/push/gone"))
        .respond_with(ResponseTemplate::new(410))
        .mount(&service)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(test_settings(dir.path().join("data")), dir).await;
    // The VAPID key: an uncompressed P-256 point, for anyone.
    let key = app.get_json("/api/v1/push/vapid-public-key", "").await;
    let raw = Base64UrlUnpadded::decode_vec(key["key"].as_str().unwrap()).unwrap();
    assert_eq!((raw.len(), raw[0]), (65, 4));

    let (id, token) = app.customer("pushed@example.org").await;
    let (browser, old_phone) = (Browser::new(), Browser::new());
    let live = browser.subscription(&format!("{}/push/live", service.uri()));
    let res = app.push_subscribe(&id, &token, live.clone()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app.push_subscribe(&id, &token, live).await;
    assert_eq!(res.status(), StatusCode::OK, "the same endpoint again");
    let res = app
        .push_subscribe(
            &id,
            &token,
            old_phone.subscription(&format!("{}/push/gone", service.uri())),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    for bad in [
        json!({"endpoint": "ftp://x", "keys": {"p256dh": "AAAA", "auth": "AAAA"}}),
        json!({"endpoint": "https://push.example/1", "keys": {"p256dh": "not-a-key", "auth": "AAAAAAAAAAAAAAAAAAAAAA"}}),
        json!({"endpoint": "https://push.example/1", "keys": {"p256dh": live_key(&browser), "auth": "AAAA"}}),
    ] {
        assert_problem(
            app.push_subscribe(&id, &token, bad).await,
            422,
            "validation_failed",
        )
        .await;
    }
    // Someone else cannot see them.
    let (_, other) = app.customer("nosy@example.org").await;
    let res = app
        .call(
            Method::GET,
            &format!("/api/v1/users/{id}/push-subscriptions"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // A distribution by push: the customer without a subscription is left out and counted.
    let campaign = app.active_campaign(5, 1).await;
    let (without, _) = app.customer("unsubscribed@example.org").await;
    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/campaigns/{campaign}/distributions"),
            Some(&app.admin_token),
            Some(json!({"customers": [id, without], "channel": "push"})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let d: Value = res.json().await.unwrap();
    assert_eq!(
        (&d["recipients"], &d["skipped_unreachable"]),
        (&json!(1), &json!(1))
    );
    let pushed = TestApp::pushes_to(&service, "/push/live", 1).await;
    let r = &pushed[0];
    assert_eq!(r.headers["content-encoding"], "aes128gcm");
    let authorization = r.headers["authorization"].to_str().unwrap();
    assert!(authorization.starts_with("vapid t="), "{authorization}");
    assert!(authorization.contains(&format!("k={}", key["key"].as_str().unwrap())));
    let message = browser.open(&r.body);
    let wallet = app.get_json("/api/v1/wallet", &token).await;
    assert_eq!(message["code"], wallet["items"][0]["code"]);
    assert_eq!(message["title"], "drop");
    // The gone one was tried and removed; the live one stays.
    TestApp::pushes_to(&service, "/push/gone", 1).await;
    let mut left = Vec::new();
    for _ in 0..50 {
        left = app
            .get_json(&format!("/api/v1/users/{id}/push-subscriptions"), &token)
            .await["items"]
            .as_array()
            .unwrap()
            .clone();
        if left.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left.len(), 1);
    assert!(
        left[0]["endpoint"]
            .as_str()
            .unwrap()
            .ends_with("/push/live")
    );
}

fn live_key(b: &Browser) -> String {
    Base64UrlUnpadded::encode_string(b.secret.public_key().to_encoded_point(false).as_bytes())
}

#[actix_web::test]
async fn a_requested_code_is_pushed() {
    let service = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/push/me"))
        .respond_with(ResponseTemplate::new(201))
        .mount(&service)
        .await;
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/codes"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"code": "PUSH-0001"})))
        .mount(&provider)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path().join("data"));
    settings.providers = vec![ProviderSettings {
        name: "vps".into(),
        url: provider.uri(),
        secret: "provider-secret-for-tests".into(),
        timeout_s: 5,
        poll_interval_s: 1,
        give_up_after_s: 60,
        concurrency: 2,
        // This provider refuses what it does not sell itself.
        // A push carries the product's name: one listed by name.
        products: vec!["gift-10".into()],
    }];
    let app = spawn_with(settings, dir).await;
    let (id, token) = app.customer("app@example.org").await;
    // Push without a subscription is refused.
    let ask = json!({"provider": "vps", "product": "gift-10", "channel": "push"});
    let res = app
        .call(
            Method::POST,
            "/api/v1/code-requests",
            Some(&token),
            Some(ask.clone()),
        )
        .await;
    assert_problem(res, 422, "validation_failed").await;
    let browser = Browser::new();
    let res = app
        .push_subscribe(
            &id,
            &token,
            browser.subscription(&format!("{}/push/me", service.uri())),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app
        .call(
            Method::POST,
            "/api/v1/code-requests",
            Some(&token),
            Some(ask),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let pushed = TestApp::pushes_to(&service, "/push/me", 1).await;
    let message = browser.open(&pushed[0].body);
    assert_eq!(message["code"], "PUSH-0001");
    assert_eq!(message["body"], "Your gift-10 code: PUSH-0001");
}

/// A push endpoint makes the server POST there, signed with its key: it must be a public https
/// host, never the cloud's metadata address, the private network or this machine — checked when
/// the browser's subscription is given and again when a push is sent.
#[actix_web::test]
async fn push_endpoints_must_be_public_https_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(dir.path().join("data"));
    settings.delivery.push.allow_loopback = false;
    let app = crate::helpers::spawn_with(settings.clone(), dir).await;
    let (user, token) = app.customer("ssrf@x.io").await;
    let browser = Browser::new();
    for endpoint in [
        "https://169.254.169.254/latest/meta-data/iam",
        "https://10.0.0.1:8443/actuator/shutdown",
        "https://[fd00::1]/push",
        "https://127.0.0.1:9/push",
        "http://127.0.0.1:9/push",
        "https://localhost/push",
        "http://push.example/push",
        // Roads to IPv4 and private networks through IPv6 (NAT64, IPv4-compatible, 6to4,
        // site-local, Teredo).
        "https://[64:ff9b::a9fe:a9fe]/latest/meta-data",
        "https://[::127.0.0.1]/push",
        "https://[2002:a00:1::1]/push",
        "https://[fec0::1]/push",
        "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/push",
    ] {
        let res = app
            .push_subscribe(&user, &token, browser.subscription(endpoint))
            .await;
        crate::helpers::assert_problem(res, 422, "validation_failed").await;
    }
    let listed = app
        .get_json(&format!("/api/v1/users/{user}/push-subscriptions"), &token)
        .await;
    assert_eq!(listed["items"], json!([]), "nothing was kept");
}
