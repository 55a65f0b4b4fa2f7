//! Tokens, API keys and the bootstrap admin.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{ADMIN_EMAIL, assert_problem, spawn_app};

#[actix_web::test]
async fn the_bootstrap_admin_exists_on_first_start() {
    let app = spawn_app().await;
    let me: Value = app.me(&app.admin_token).await.json().await.unwrap();
    assert_eq!(me["email"], ADMIN_EMAIL);
    assert_eq!(me["role"], "admin");
}

#[actix_web::test]
async fn bad_credentials_get_the_same_401() {
    let app = spawn_app().await;
    app.customer("known@x.io").await;
    let wrong = assert_problem(
        app.try_login("known@x.io", "wrong-password").await,
        401,
        "invalid_credentials",
    )
    .await;
    let unknown = assert_problem(
        app.try_login("nobody@x.io", "wrong-password").await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_eq!(wrong, unknown);
    assert_eq!(wrong["detail"], "email or password is wrong");
}

#[actix_web::test]
async fn an_api_key_that_would_expire_before_it_is_made_is_refused() {
    let app = spawn_app().await;
    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let res = app
        .call(
            reqwest::Method::POST,
            "/api/v1/api-keys",
            Some(&app.admin_token),
            Some(serde_json::json!({"name": "late", "role": "manager", "expires_at": past})),
        )
        .await;
    let problem = assert_problem(res, 422, "validation_failed").await;
    assert!(problem["detail"].as_str().unwrap().contains("expires_at"));
    let future = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let res = app
        .call(
            reqwest::Method::POST,
            "/api/v1/api-keys",
            Some(&app.admin_token),
            Some(serde_json::json!({"name": "later", "role": "manager", "expires_at": future})),
        )
        .await;
    assert_eq!(res.status(), reqwest::StatusCode::CREATED);
}

#[actix_web::test]
async fn a_token_expires_and_carries_its_expiry() {
    let app = spawn_app().await;
    app.customer("t@x.io").await;
    let res = app.try_login("t@x.io", "customer-password").await;
    let body: Value = res.json().await.unwrap();
    let expires: chrono::DateTime<chrono::Utc> =
        body["expires_at"].as_str().unwrap().parse().unwrap();
    let hours = (expires - chrono::Utc::now()).num_hours();
    assert!(
        (719..=720).contains(&hours),
        "default ttl is 720 h, got {hours}"
    );
}

#[actix_web::test]
async fn logout_revokes_only_the_presented_token() {
    let app = spawn_app().await;
    let (_, first) = app.customer("lo@x.io").await;
    let second = app.login("lo@x.io", "customer-password").await;
    assert_eq!(app.logout(&first).await.status(), StatusCode::NO_CONTENT);
    assert_problem(app.me(&first).await, 401, "unauthorized").await;
    assert_eq!(app.me(&second).await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn missing_or_malformed_tokens_are_401_with_a_challenge() {
    let app = spawn_app().await;
    let res = app.call(Method::GET, "/api/v1/users/me", None, None).await;
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    assert_problem(res, 401, "unauthorized").await;
    assert_problem(app.me("vd_not-a-real-token").await, 401, "unauthorized").await;
    let res = app
        .client
        .get(app.url("/api/v1/users/me"))
        .header("authorization", "Basic YTpi")
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;
}

#[actix_web::test]
async fn api_keys_act_with_their_role_and_are_shown_once() {
    let app = spawn_app().await;
    let res = app
        .create_api_key(&app.admin_token, "shop frontend", "manager")
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let key: Value = res.json().await.unwrap();
    assert_eq!(key["role"], "manager");
    let secret = key["key"].as_str().unwrap();
    assert!(secret.starts_with("vd_"));
    // A manager key is not an admin.
    assert_problem(app.list_users(secret, "").await, 403, "forbidden").await;
    // It has no user of its own.
    assert_problem(app.me(secret).await, 404, "not_found").await;
    let admin_key: Value = app
        .create_api_key(&app.admin_token, "ops", "admin")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        app.list_users(admin_key["key"].as_str().unwrap(), "")
            .await
            .status(),
        StatusCode::OK
    );
    assert_problem(
        app.create_api_key(&app.admin_token, "", "manager").await,
        422,
        "validation_failed",
    )
    .await;
    assert_problem(
        app.create_api_key(&app.admin_token, "x", "root").await,
        422,
        "validation_failed",
    )
    .await;
}

#[actix_web::test]
async fn api_keys_are_listed_and_revoked_by_id_and_may_expire() {
    let app = spawn_app().await;
    let me: Value = app.me(&app.admin_token).await.json().await.unwrap();
    let shop: Value = app
        .create_api_key(&app.admin_token, "shop", "manager")
        .await
        .json()
        .await
        .unwrap();
    let shop_key = shop["key"].as_str().unwrap().to_owned();
    assert_eq!(shop["created_by"], me["id"], "the creator is recorded");
    // Used once, so it has a last use.
    assert_eq!(
        app.call(Method::GET, "/api/v1/networks", Some(&shop_key), None)
            .await
            .status(),
        StatusCode::OK
    );
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let res = app
        .call(
            Method::POST,
            "/api/v1/api-keys",
            Some(&app.admin_token),
            Some(serde_json::json!({"name": "campaign", "role": "manager", "expires_at": soon})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let temporary: Value = res.json().await.unwrap();
    let temporary_key = temporary["key"].as_str().unwrap().to_owned();
    assert_eq!(app.me(&temporary_key).await.status(), StatusCode::NOT_FOUND);

    let list: Value = app
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
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], shop["id"]);
    assert_eq!(items[0]["name"], "shop");
    assert_eq!(items[0]["role"], "manager");
    assert_eq!(items[0]["created_by"], me["id"]);
    assert!(items[0]["last_used_at"].is_string(), "{list}");
    assert!(items[0]["expires_at"].is_null());
    assert!(items[1]["expires_at"].is_string());
    assert!(
        items.iter().all(|k| k.get("key").is_none()),
        "keys are shown only once: {list}"
    );
    // Only admins see them.
    assert_problem(
        app.call(Method::GET, "/api/v1/api-keys", Some(&shop_key), None)
            .await,
        403,
        "forbidden",
    )
    .await;

    // Revoked by id: at once.
    let path = format!("/api/v1/api-keys/{}", shop["id"].as_str().unwrap());
    let res = app
        .call(Method::DELETE, &path, Some(&app.admin_token), None)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.call(Method::GET, "/api/v1/networks", Some(&shop_key), None)
            .await,
        401,
        "unauthorized",
    )
    .await;
    assert_problem(
        app.call(Method::DELETE, &path, Some(&app.admin_token), None)
            .await,
        404,
        "not_found",
    )
    .await;

    // The other one expires on its own.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_problem(app.me(&temporary_key).await, 401, "unauthorized").await;
}

/// Every sign-in counts against its account and address, the right password too: a loop of
/// correct sign-ins (each an argon2 hash) cannot saturate the server either.
#[actix_web::test]
async fn sign_ins_are_throttled_per_account_right_or_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(dir.path().join("data"));
    settings.rate_limit.login_per_minute = 3;
    let app = crate::helpers::spawn_with(settings, dir).await;
    // One sign-in (right) …
    app.customer("ivy@x.io").await;
    // … and two wrong ones use the three.
    for _ in 0..2 {
        assert_problem(
            app.try_login("ivy@x.io", "guess-guess").await,
            401,
            "invalid_credentials",
        )
        .await;
    }
    // Out of tries: even the right password waits, and says for how long.
    let res = app.try_login("IVY@x.io", "customer-password").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&wait), "{wait}");
    assert_problem(res, 429, "rate_limited").await;
    // Another account from the same client is not affected.
    app.customer("jon@x.io").await;
}
