//! Health, readiness, metrics, OpenAPI, request ids and rate limiting.

use std::collections::BTreeSet;

use base64ct::Encoding as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{assert_problem, fixture_url, network, spawn_app, spawn_with, test_settings};

#[actix_web::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    let res = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let ready: Value = app
        .call(Method::GET, "/readyz", None, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["store"], true);
    assert_eq!(ready["actors"], true);
}

#[actix_web::test]
async fn metrics_count_requests_by_route() {
    let app = spawn_app().await;
    app.call(Method::GET, "/healthz", None, None).await;
    let text = app
        .call(Method::GET, "/metrics", None, None)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            "voucherd_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"}"
        ),
        "{text}"
    );
    assert!(text.contains("voucherd_users "), "{text}");
    assert!(text.contains("voucherd_vouchers "), "{text}");
    assert!(
        text.contains("voucherd_store_flushes_total"),
        "logins flush through the group commit: {text}"
    );
}

#[actix_web::test]
async fn every_response_has_a_request_id() {
    let app = spawn_app().await;
    let a = app.call(Method::GET, "/healthz", None, None).await;
    let b = app.call(Method::GET, "/nope", None, None).await;
    let id_a = a.headers()["x-request-id"].to_str().unwrap().to_owned();
    let id_b = b.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(id_a, id_b);
    assert_problem(b, 404, "not_found").await;
}

#[actix_web::test]
async fn the_openapi_document_describes_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path().join("data"));
    settings.networks = vec![network(
        "fixture",
        voucherd::feeds::FeedKind::Csv,
        &fixture_url("generic.csv"),
    )];
    // A provider nobody answers for: its requests stay pending, which is all this test needs.
    settings.providers = vec![voucherd::config::ProviderSettings {
        name: "fixture".into(),
        url: "http://127.0.0.1:9".into(),
        secret: "fixture-provider-secret".into(),
        timeout_s: 1,
        poll_interval_s: 60,
        give_up_after_s: 3600,
        concurrency: 1,
        // This provider refuses what it does not sell itself.
        products: vec!["*".into()],
    }];
    let app = spawn_with(settings, dir).await;
    app.await_first_pulls().await;
    let doc: Value = app
        .call(Method::GET, "/api-docs/openapi.json", None, None)
        .await
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let documented: BTreeSet<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| format!("{} {path}", m.to_uppercase()))
        })
        .collect();
    let expected: BTreeSet<String> = [
        "POST /api/v1/users",
        "POST /api/v1/users/{id}/email/verification",
        "POST /api/v1/email-verifications",
        "GET /verify-email/{token}",
        "POST /verify-email/{token}",
        "POST /api/v1/users/{id}/phone/verification",
        "POST /api/v1/users/{id}/phone/verify",
        "POST /api/v1/orders/{id}/payment",
        "GET /api/v1/orders",
        "POST /api/v1/payments/callback",
        "GET /api/v1/users",
        "GET /api/v1/users/me",
        "GET /api/v1/users/{id}",
        "PATCH /api/v1/users/{id}",
        "DELETE /api/v1/users/{id}",
        "PUT /api/v1/users/{id}/role",
        "POST /api/v1/auth/tokens",
        "DELETE /api/v1/auth/tokens/current",
        "POST /api/v1/api-keys",
        "GET /api/v1/networks",
        "POST /api/v1/networks/{name}/pull",
        "GET /api/v1/vouchers",
        "GET /api/v1/vouchers/{id}",
        "GET /api/v1/retailers",
        "GET /api/v1/categories",
        "GET /api/v1/notifications",
        "GET /api/v1/orders/{id}",
        "GET /api/v1/redemptions/{id}",
        "POST /api/v1/campaigns",
        "GET /api/v1/campaigns",
        "GET /api/v1/campaigns/{id}",
        "PATCH /api/v1/campaigns/{id}",
        "POST /api/v1/campaigns/{id}/end",
        "POST /api/v1/campaigns/{id}/codes",
        "GET /api/v1/campaigns/{id}/codes",
        "POST /api/v1/campaigns/{id}/claims",
        "POST /api/v1/campaigns/{id}/distributions",
        "GET /api/v1/campaigns/{id}/distributions/{distribution_id}",
        "POST /api/v1/code-requests",
        "GET /api/v1/code-requests/{id}",
        "GET /api/v1/code-requests/{id}/events",
        "POST /api/v1/providers/{name}/callback",
        "GET /api/v1/reports/overview",
        "GET /api/v1/reports/campaigns/{id}",
        "GET /api/v1/reports/campaigns/{id}/chart.svg",
        "GET /api/v1/push/vapid-public-key",
        "GET /api/v1/users/{id}/push-subscriptions",
        "POST /api/v1/users/{id}/push-subscriptions",
        "DELETE /api/v1/users/{id}/push-subscriptions/{sub_id}",
        "POST /api/v1/orders",
        "POST /api/v1/redemptions",
        "POST /api/v1/redemptions/{id}/rollback",
        "GET /api/v1/wallet",
        "GET /api/v1/codes/{code}",
        "GET /api/v1/api-keys",
        "DELETE /api/v1/api-keys/{id}",
        "GET /api/v1/users/{id}/subscriptions",
        "POST /api/v1/users/{id}/subscriptions",
        "DELETE /api/v1/users/{id}/subscriptions/{sub_id}",
        "GET /api/v1/users/{id}/digests",
        "GET /api/v1/users/{id}/digest/preview",
        "POST /api/v1/admin/digests/run",
        "GET /api/v1/deliveries",
        "GET /unsubscribe/{token}",
        "GET /admin",
        "GET /admin/app.js",
        "GET /ui.css",
        "GET /ui.js",
        "GET /me",
        "GET /me/app.js",
        "GET /api/v1/codes/{code}/qr.svg",
        "POST /unsubscribe/{token}",
        "GET /healthz",
        "GET /readyz",
        "GET /metrics",
        "GET /api/v1/redemptions",
        "PATCH /api/v1/codes/{code}",
        "POST /api/v1/campaigns/{id}/pause",
        "POST /api/v1/campaigns/{id}/resume",
        "POST /api/v1/validations",
        "GET /",
        "GET /api/v1/campaigns/{id}/distributions",
        "POST /api/v1/code-previews",
        "GET /api/v1/admin/settings",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(documented, expected);
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // Every documented route is served: with real ids and names none answers 404.
    let me: Value = app.me(&app.admin_token).await.json().await.unwrap();
    let admin_id = me["id"].as_str().unwrap();
    let page = app.vouchers("?limit=1").await;
    let voucher_id = page["items"][0]["id"].as_str().unwrap().to_owned();
    let sub = app
        .subscribe(admin_id, &app.admin_token, json!({"retailer": "Acme"}))
        .await;
    assert_eq!(sub.status(), StatusCode::CREATED);
    let sub: Value = sub.json().await.unwrap();
    let token = crate::helpers::unsubscribe_token(admin_id);
    let key: Value = app
        .create_api_key(&app.admin_token, "route check", "customer")
        .await
        .json()
        .await
        .unwrap();
    let now = chrono::Utc::now();
    let campaign: Value = app
        .call(
            Method::POST,
            "/api/v1/campaigns",
            Some(&app.admin_token),
            Some(json!({"name": "route check", "kind": "flash_sale", "pool_size": 2,
                "starts_at": now.to_rfc3339(), "ends_at": (now + chrono::Duration::days(1)).to_rfc3339()})),
        )
        .await
        .json()
        .await
        .unwrap();
    let campaign_id = campaign["id"].as_str().unwrap().to_owned();
    let added = app
        .call(
            Method::POST,
            &format!("/api/v1/campaigns/{campaign_id}/codes"),
            Some(&app.admin_token),
            Some(json!({"codes": ["ROUTE-CHECK-1", "ROUTE-CHECK-2"]})),
        )
        .await;
    assert_eq!(added.status(), StatusCode::CREATED);
    let claimed: Value = app
        .call(
            Method::POST,
            &format!("/api/v1/campaigns/{campaign_id}/claims"),
            Some(&app.admin_token),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let redemption: Value = app
        .call(
            Method::POST,
            "/api/v1/redemptions",
            Some(&app.admin_token),
            Some(json!({"code": claimed["code"]})),
        )
        .await
        .json()
        .await
        .unwrap();
    let redemption_id = redemption["id"].as_str().unwrap().to_owned();
    let distribution: Value = app
        .call(
            Method::POST,
            &format!("/api/v1/campaigns/{campaign_id}/distributions"),
            Some(&app.admin_token),
            Some(json!({"customers": [admin_id], "channel": "email"})),
        )
        .await
        .json()
        .await
        .unwrap();
    let distribution_id = distribution["id"].as_str().unwrap().to_owned();
    let request: Value = app
        .call(
            Method::POST,
            "/api/v1/code-requests",
            Some(&app.admin_token),
            Some(json!({"provider": "fixture", "product": "route check", "channel": "web", "customer": admin_id})),
        )
        .await
        .json()
        .await
        .unwrap();
    let request_id = request["id"].as_str().unwrap().to_owned();
    let point = web_push_native::p256::SecretKey::random(
        &mut web_push_native::p256::elliptic_curve::rand_core::OsRng,
    )
    .public_key();
    let push: Value = app
        .call(
            Method::POST,
            &format!("/api/v1/users/{admin_id}/push-subscriptions"),
            Some(&app.admin_token),
            Some(json!({"endpoint": "https://push.example/route-check", "keys": {
                "p256dh": base64ct::Base64UrlUnpadded::encode_string(
                    web_push_native::p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&point, false).as_bytes()),
                "auth": "AAAAAAAAAAAAAAAAAAAAAA"}})),
        )
        .await
        .json()
        .await
        .unwrap();
    let push_id = push["id"].as_str().unwrap().to_owned();
    let shop: Value = app
        .call(
            Method::POST,
            "/api/v1/campaigns",
            Some(&app.admin_token),
            Some(json!({"name": "route check order", "kind": "flash_sale", "pool_size": 1,
                "starts_at": now.to_rfc3339(), "ends_at": (now + chrono::Duration::days(1)).to_rfc3339()})),
        )
        .await
        .json()
        .await
        .unwrap();
    let shop_id = shop["id"].as_str().unwrap().to_owned();
    let added = app
        .call(
            Method::POST,
            &format!("/api/v1/campaigns/{shop_id}/codes"),
            Some(&app.admin_token),
            Some(json!({"codes": ["ROUTE-ORDER-1"]})),
        )
        .await;
    assert_eq!(added.status(), StatusCode::CREATED);
    let order: Value = app
        .call(
            Method::POST,
            "/api/v1/orders",
            Some(&app.admin_token),
            Some(json!({"campaign_id": shop_id, "quantity": 1, "customer": admin_id})),
        )
        .await
        .json()
        .await
        .unwrap();
    let order_id = order["id"].as_str().unwrap().to_owned();
    for route in &expected {
        let path = if route.contains("/orders/") {
            route.replace("{id}", &order_id)
        } else if route.contains("/vouchers/") {
            route.replace("{id}", &voucher_id)
        } else if route.contains("/redemptions/") {
            route.replace("{id}", &redemption_id)
        } else if route.contains("/campaigns/") {
            route
                .replace("{id}", &campaign_id)
                .replace("{distribution_id}", &distribution_id)
        } else if route.contains("/code-requests/") {
            // The event stream of a pending request stays open: check it answers, then move on.
            route.replace("{id}", &request_id)
        } else if route.contains("/codes/{code}") {
            route.replace("{code}", "ROUTE-CHECK-1")
        } else if route.contains("/push-subscriptions/") {
            route.replace("{sub_id}", &push_id)
        } else if route.contains("/api-keys/") {
            route.replace("{id}", key["id"].as_str().unwrap())
        } else if route.contains("/verify-email/") {
            // A genuine link confirming the admin's own address.
            let link = voucherd::security::LinkSigner::new(crate::helpers::TEST_SECRET.as_bytes())
                .unwrap()
                .confirm_email_token(
                    admin_id.parse().unwrap(),
                    crate::helpers::ADMIN_EMAIL,
                    4_000_000_000,
                );
            route.replace("{token}", &link)
        } else {
            route
                .replace("{name}", "fixture")
                .replace("{sub_id}", sub["id"].as_str().unwrap())
                .replace("{token}", &token)
        };
        let (method, path) = path.split_once(' ').unwrap();
        let token = app
            .login(crate::helpers::ADMIN_EMAIL, crate::helpers::ADMIN_PASSWORD)
            .await;
        let res = app
            .call(
                method.parse().unwrap(),
                &path.replace("{id}", admin_id),
                Some(&token),
                None,
            )
            .await;
        assert_ne!(res.status(), StatusCode::NOT_FOUND, "{route} is not served");
    }
}

#[actix_web::test]
async fn the_docs_page_is_served_without_fetching_anything() {
    let app = spawn_app().await;
    let res = app.call(Method::GET, "/docs", None, None).await;
    assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
    let res = app.call(Method::GET, "/docs/", None, None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("unpkg.com") && !html.contains("cdn"),
        "the UI is vendored"
    );
}

#[actix_web::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_allowance() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path().join("data"));
    settings.rate_limit.per_second = 1;
    settings.rate_limit.burst = 2;
    settings.rate_limit.trusted_proxies = vec!["127.0.0.0/8".into()];
    let app = spawn_with(settings, dir).await;
    let from = |client: &'static str| {
        app.client
            .get(app.url("/api/v1/vouchers"))
            .header("x-forwarded-for", client)
            .send()
    };
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(from("198.51.100.1").await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429]);
    // Another client behind the same proxy; a client cannot pick its key by prepending.
    assert_eq!(from("198.51.100.2").await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        from("198.51.100.2, 198.51.100.1").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[actix_web::test]
async fn unsupported_methods_get_405_with_allow() {
    let app = spawn_app().await;
    for (method, path, allow) in [
        (Method::DELETE, "/healthz", "GET"),
        (Method::PUT, "/api/v1/users", "GET, POST"),
        (Method::PATCH, "/api/v1/users/me", "GET"),
        (
            Method::POST,
            "/api/v1/users/0190b3f2-0000-7000-8000-000000000000",
            "GET, DELETE, PATCH",
        ),
    ] {
        let res = app
            .call(method.clone(), path, Some(&app.admin_token), None)
            .await;
        assert_eq!(res.headers()["allow"], allow, "{method} {path}");
        assert_problem(res, 405, "method_not_allowed").await;
    }
    // An unknown path is still 404.
    assert_problem(
        app.call(Method::DELETE, "/api/v1/nothing", None, None)
            .await,
        404,
        "not_found",
    )
    .await;
}

#[actix_web::test]
async fn requests_over_the_rate_limit_get_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path().join("data"));
    settings.rate_limit.per_second = 1;
    settings.rate_limit.burst = 3;
    let app = spawn_with(settings, dir).await;
    // Per token: the admin's token has its own allowance.
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..4 {
        let res = app.me(&app.admin_token).await;
        statuses.push(res.status().as_u16());
        last = Some(res);
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    let res = last.unwrap();
    assert_eq!(res.headers()["retry-after"], "1");
    assert_eq!(res.headers()["ratelimit-limit"], "3");
    assert_eq!(res.headers()["ratelimit-remaining"], "0");
    assert_problem(res, 429, "rate_limited").await;
    // Anonymous callers are limited by IP, separately from the token.
    let anon = app
        .call(
            Method::POST,
            "/api/v1/auth/tokens",
            None,
            Some(serde_json::json!({"email": "a@b.c", "password": "x"})),
        )
        .await;
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(anon.headers()["ratelimit-limit"], "3");
    // A fresh made-up token per request buys no fresh allowance: unverified tokens count
    // against the client's address (a burst of 3), so most of ten are refused.
    let fakes: Vec<String> = (0..10).map(|i| format!("vd_fake{i}")).collect();
    let statuses: Vec<u16> = futures_util::future::join_all(
        fakes
            .iter()
            .map(|fake| app.call(Method::GET, "/api/v1/users/me", Some(fake), None)),
    )
    .await
    .iter()
    .map(|r| r.status().as_u16())
    .collect();
    assert!(
        statuses.iter().filter(|s| **s == 429).count() >= 6,
        "{statuses:?}"
    );
    // X-Forwarded-For from a client that is not a trusted proxy is ignored: new addresses in
    // it buy nothing either.
    let statuses: Vec<u16> = futures_util::future::join_all((0..10).map(|i| {
        app.client
            .get(app.url("/api/v1/vouchers"))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .send()
    }))
    .await
    .into_iter()
    .map(|r| r.unwrap().status().as_u16())
    .collect();
    assert!(
        statuses.iter().filter(|s| **s == 429).count() >= 6,
        "{statuses:?}"
    );
    // Health checks are never limited.
    for _ in 0..5 {
        assert_eq!(
            app.call(Method::GET, "/healthz", None, None).await.status(),
            StatusCode::OK
        );
    }
}

/// `docs/openapi.json` is the API reference in the repository: it must be what the server
/// serves. After changing a route, regenerate it with
/// `UPDATE_OPENAPI=1 cargo test --test api the_checked_in_openapi_document`.
#[actix_web::test]
async fn the_checked_in_openapi_document_is_the_one_served() {
    let app = spawn_app().await;
    let served: Value = app
        .call(Method::GET, "/api-docs/openapi.json", None, None)
        .await
        .json()
        .await
        .unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        let mut text = serde_json::to_string_pretty(&served).unwrap();
        text.push('\n');
        std::fs::write(&path, text).unwrap();
    }
    let checked_in: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(
        checked_in == served,
        "docs/openapi.json differs from what the server serves; regenerate it with \
         UPDATE_OPENAPI=1 cargo test --test api the_checked_in_openapi_document"
    );
    // Every reference resolves (a parameter type left out of the components is skipped by
    // clients and by schemathesis).
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => out.push(r.clone()),
                        _ => refs(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    refs(&served, &mut found);
    assert!(!found.is_empty());
    for r in found {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or(&r);
        assert!(
            served["components"]["schemas"].get(name).is_some(),
            "unresolved reference {r}"
        );
    }
}

#[actix_web::test]
async fn the_front_door_leads_to_the_console() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = client.get(app.url("/")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/admin");
}
