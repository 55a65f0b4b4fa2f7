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
        "unauthorized",
    )
    .await;
    let unknown = assert_problem(
        app.try_login("nobody@x.io", "wrong-password").await,
        401,
        "unauthorized",
    )
    .await;
    assert_eq!(wrong, unknown);
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
