//! The bad-input table: each request gets the right 4xx problem+json and changes nothing.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, spawn_app};

enum Body {
    None,
    Json(Value),
    Raw(&'static str, Vec<u8>),
}

struct Case {
    name: &'static str,
    method: Method,
    path: String,
    token: Option<String>,
    body: Body,
    status: u16,
    code: &'static str,
}

async fn send(app: &TestApp, case: &Case) -> reqwest::Response {
    let mut req = app.client.request(case.method.clone(), app.url(&case.path));
    if let Some(t) = &case.token {
        req = req.bearer_auth(t);
    }
    req = match &case.body {
        Body::None => req,
        Body::Json(v) => req.json(v),
        Body::Raw(ct, bytes) => req.header("content-type", *ct).body(bytes.clone()),
    };
    req.send().await.unwrap()
}

/// Everything a client can see of the store: every user, as the admin lists them, plus what each
/// test user sees of themselves.
async fn snapshot(app: &TestApp, tokens: &[&str]) -> Vec<Value> {
    let mut seen = app.all_users().await;
    for t in tokens {
        seen.push(app.me(t).await.json().await.unwrap());
    }
    seen
}

#[actix_web::test]
async fn bad_inputs_get_problems_and_change_nothing() {
    let app = spawn_app().await;
    let (alice, alice_token) = app.customer("alice@x.io").await;
    let (bob, bob_token) = app.customer("bob@x.io").await;
    let valid = |overrides: Value| {
        let mut body = json!({"email": "new@x.io", "password": "password-1", "timezone": "UTC"});
        for (k, v) in overrides.as_object().unwrap() {
            body[k] = v.clone();
        }
        Body::Json(body)
    };
    let register = |name, body, status, code| Case {
        name,
        method: Method::POST,
        path: "/api/v1/users".into(),
        token: None,
        body,
        status,
        code,
    };
    let as_alice = |name, method, path: String, body, status, code| Case {
        name,
        method,
        path,
        token: Some(alice_token.clone()),
        body,
        status,
        code,
    };
    let long = "a".repeat(300);
    let cases = vec![
        register(
            "malformed JSON",
            Body::Raw("application/json", b"{\"email\": ".to_vec()),
            400,
            "validation_failed",
        ),
        register(
            "not JSON at all",
            Body::Raw("application/json", b"hello".to_vec()),
            400,
            "validation_failed",
        ),
        register(
            "wrong type",
            valid(json!({"password": 12345678})),
            422,
            "validation_failed",
        ),
        register(
            "missing field",
            Body::Json(json!({"email": "m@x.io", "password": "password-1"})),
            422,
            "validation_failed",
        ),
        register(
            "mass assignment of role",
            valid(json!({"role": "admin"})),
            422,
            "validation_failed",
        ),
        register(
            "over-long email",
            valid(json!({"email": format!("{long}@x.io")})),
            422,
            "validation_failed",
        ),
        register(
            "over-long password",
            valid(json!({"password": long.clone()})),
            422,
            "validation_failed",
        ),
        register(
            "short password",
            valid(json!({"password": "short"})),
            422,
            "validation_failed",
        ),
        register(
            "invalid email",
            valid(json!({"email": "not-an-email"})),
            422,
            "validation_failed",
        ),
        register(
            "invalid phone",
            valid(json!({"phone": "0151 1234"})),
            422,
            "validation_failed",
        ),
        register(
            "invalid timezone",
            valid(json!({"timezone": "Europe/Atlantis"})),
            422,
            "validation_failed",
        ),
        register(
            "hour out of range",
            valid(json!({"digest_hour": 24})),
            422,
            "validation_failed",
        ),
        register(
            "unknown enum value",
            valid(json!({"digest_frequency": "hourly"})),
            422,
            "validation_failed",
        ),
        // A manager making an account is told the address is taken (a visitor gets the same
        // 202 for any address: see users::registration_creates_…).
        Case {
            name: "duplicate email",
            method: Method::POST,
            path: "/api/v1/users".into(),
            token: Some(app.admin_token.clone()),
            body: valid(json!({"email": "ALICE@x.io"})),
            status: 409,
            code: "conflict",
        },
        register(
            "oversize body",
            Body::Raw(
                "application/json",
                format!("{{\"email\":\"{}\"}}", "x".repeat(70_000)).into_bytes(),
            ),
            413,
            "payload_too_large",
        ),
        register(
            "wrong content type",
            Body::Raw("text/plain", b"{}".to_vec()),
            415,
            "unsupported_media_type",
        ),
        Case {
            name: "bad token",
            method: Method::GET,
            path: format!("/api/v1/users/{alice}"),
            token: Some("vd_0000".into()),
            body: Body::None,
            status: 401,
            code: "unauthorized",
        },
        Case {
            name: "no token on a protected route",
            method: Method::PATCH,
            path: format!("/api/v1/users/{alice}"),
            token: None,
            body: Body::Json(json!({"digest_hour": 1})),
            status: 401,
            code: "unauthorized",
        },
        as_alice(
            "another user's id (GET)",
            Method::GET,
            format!("/api/v1/users/{bob}"),
            Body::None,
            404,
            "not_found",
        ),
        as_alice(
            "another user's id (PATCH)",
            Method::PATCH,
            format!("/api/v1/users/{bob}"),
            Body::Json(json!({"digest_hour": 1})),
            404,
            "not_found",
        ),
        as_alice(
            "another user's id (DELETE)",
            Method::DELETE,
            format!("/api/v1/users/{bob}"),
            Body::None,
            404,
            "not_found",
        ),
        as_alice(
            "malformed id in path",
            Method::GET,
            "/api/v1/users/not-a-uuid".into(),
            Body::None,
            400,
            "validation_failed",
        ),
        as_alice(
            "PATCH with invalid timezone",
            Method::PATCH,
            format!("/api/v1/users/{alice}"),
            Body::Json(json!({"timezone": "Nowhere", "digest_hour": 5})),
            422,
            "validation_failed",
        ),
        as_alice(
            "PATCH with an unknown field",
            Method::PATCH,
            format!("/api/v1/users/{alice}"),
            Body::Json(json!({"id": bob, "password_hash": "x"})),
            422,
            "validation_failed",
        ),
        as_alice(
            "PATCH with a wrong type",
            Method::PATCH,
            format!("/api/v1/users/{alice}"),
            Body::Json(json!({"digest_hour": "five"})),
            422,
            "validation_failed",
        ),
        as_alice(
            "PATCH with a malformed body",
            Method::PATCH,
            format!("/api/v1/users/{alice}"),
            Body::Raw("application/json", b"[".to_vec()),
            400,
            "validation_failed",
        ),
        as_alice(
            "PATCH with an over-long phone",
            Method::PATCH,
            format!("/api/v1/users/{alice}"),
            Body::Json(json!({"phone": format!("+{}", "1".repeat(300))})),
            422,
            "validation_failed",
        ),
        as_alice(
            "role change by a customer",
            Method::PUT,
            format!("/api/v1/users/{alice}/role"),
            Body::Json(json!({"role": "admin"})),
            403,
            "forbidden",
        ),
        as_alice(
            "admin listing by a customer",
            Method::GET,
            "/api/v1/users".into(),
            Body::None,
            403,
            "forbidden",
        ),
        Case {
            name: "non-numeric limit",
            method: Method::GET,
            path: "/api/v1/users?limit=x".into(),
            token: Some(app.admin_token.clone()),
            body: Body::None,
            status: 400,
            code: "validation_failed",
        },
        as_alice(
            "unknown route",
            Method::GET,
            "/api/v1/nothing-here".into(),
            Body::None,
            404,
            "not_found",
        ),
        Case {
            name: "login with malformed JSON",
            method: Method::POST,
            path: "/api/v1/auth/tokens".into(),
            token: None,
            body: Body::Raw("application/json", b"{\"email\"".to_vec()),
            status: 400,
            code: "validation_failed",
        },
        Case {
            name: "login with a missing password",
            method: Method::POST,
            path: "/api/v1/auth/tokens".into(),
            token: None,
            body: Body::Json(json!({"email": "alice@x.io"})),
            status: 422,
            code: "validation_failed",
        },
        Case {
            name: "a deliveries cursor that is not hex",
            method: Method::GET,
            path: "/api/v1/deliveries?cursor=zz".into(),
            token: Some(app.admin_token.clone()),
            body: Body::None,
            status: 400,
            code: "validation_failed",
        },
        Case {
            name: "a deliveries cursor of no family",
            method: Method::GET,
            path: "/api/v1/deliveries?cursor=7800".into(),
            token: Some(app.admin_token.clone()),
            body: Body::None,
            status: 400,
            code: "validation_failed",
        },
        Case {
            name: "API key with an unknown role",
            method: Method::POST,
            path: "/api/v1/api-keys".into(),
            token: Some(app.admin_token.clone()),
            body: Body::Json(json!({"name": "k", "role": "root"})),
            status: 422,
            code: "validation_failed",
        },
        Case {
            name: "API key with an over-long name",
            method: Method::POST,
            path: "/api/v1/api-keys".into(),
            token: Some(app.admin_token.clone()),
            body: Body::Json(json!({"name": long, "role": "manager"})),
            status: 422,
            code: "validation_failed",
        },
    ];

    let before = snapshot(&app, &[&alice_token, &bob_token]).await;
    for case in &cases {
        let res = send(&app, case).await;
        assert_eq!(res.status().as_u16(), case.status, "{}", case.name);
        assert_problem(res, case.status, case.code).await;
        assert_eq!(
            snapshot(&app, &[&alice_token, &bob_token]).await,
            before,
            "{} changed the store",
            case.name
        );
    }
    // Nothing was registered under the email the invalid registrations used.
    let res = app.try_login("new@x.io", "password-1").await;
    assert_problem(res, 401, "invalid_credentials").await;
}

#[actix_web::test]
async fn a_store_that_cannot_take_writes_now_answers_503_not_500() {
    let app = spawn_app().await;
    // A customer with a digest owed today: running digests writes.
    app.customer("owed@x.io").await;
    let run = || {
        app.call(
            Method::POST,
            "/api/v1/admin/digests/run",
            Some(&app.admin_token),
            None,
        )
    };
    let refuse = voucherd::store::failpoints::Failpoint::RefuseWrites;
    app.store.failpoints.arm(refuse);
    let problem = assert_problem(run().await, 503, "overloaded").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("retry"),
        "{problem}"
    );
    app.store.failpoints.disarm(refuse);
    assert_eq!(run().await.status().as_u16(), 200);
}
