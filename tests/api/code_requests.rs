//! Async code requests against a provider server (wiremock): immediate, by callback, by poll,
//! given up, retried after errors, across a restart; the code by SSE, SMS and the wallet.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use voucherd::config::{ProviderSettings, Settings};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{TestApp, assert_problem, spawn_with, test_settings};

const SECRET: &str = "provider-secret-for-tests";

fn with_provider(dir: &tempfile::TempDir, provider: &MockServer) -> Settings {
    let mut s = test_settings(dir.path().join("data"));
    s.providers = vec![ProviderSettings {
        name: "vps".into(),
        url: provider.uri(),
        secret: SECRET.into(),
        timeout_s: 5,
        poll_interval_s: 1,
        give_up_after_s: 3600,
        concurrency: 4,
        // This provider refuses what it does not sell itself; by SMS or push only products
        // listed by name are asked for (their name is in the text).
        products: vec!["*".into(), "gift-10".into(), "gift-50".into()],
    }];
    s
}

fn sign(body: &[u8]) -> String {
    voucherd::security::body_signature(SECRET.as_bytes(), body)
}

/// A provider that takes every request for later and never has the code yet.
async fn processing_provider() -> MockServer {
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/codes"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({"status": "processing"})))
        .mount(&provider)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/codes/.+$"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&provider)
        .await;
    provider
}

/// Waits (up to 2 s) until the provider has received a request.
async fn until_asked(provider: &MockServer) {
    for _ in 0..100 {
        if !provider.received_requests().await.unwrap().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl TestApp {
    async fn ask(&self, token: &str, body: Value) -> reqwest::Response {
        self.call(
            Method::POST,
            "/api/v1/code-requests",
            Some(token),
            Some(body),
        )
        .await
    }

    /// Asks for a code and expects it accepted (202); the request's id.
    async fn accepted(&self, token: &str, body: Value) -> String {
        let res = self.ask(token, body).await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        res.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Follows a request until it is no longer pending.
    async fn settled(&self, token: &str, id: &str) -> Value {
        for _ in 0..200 {
            let res = self
                .call(
                    Method::GET,
                    &format!("/api/v1/code-requests/{id}"),
                    Some(token),
                    None,
                )
                .await;
            assert_eq!(res.status(), StatusCode::OK);
            let r: Value = res.json().await.unwrap();
            if r["status"] != "pending" {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("request {id} stayed pending");
    }

    async fn callback(&self, body: &Value, signature: &str) -> reqwest::Response {
        let raw = serde_json::to_vec(body).unwrap();
        self.client
            .post(self.url("/api/v1/providers/vps/callback"))
            .header("content-type", "application/json")
            .header("x-signature", signature)
            .body(raw)
            .send()
            .await
            .unwrap()
    }

    /// The first event of a request's stream (its data line, as JSON).
    async fn first_event(&self, token: &str, id: &str) -> Value {
        let mut res = self
            .client
            .get(self.url(&format!("/api/v1/code-requests/{id}/events")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        let mut text = String::new();
        while let Ok(Some(chunk)) = tokio::time::timeout(Duration::from_secs(10), res.chunk())
            .await
            .unwrap()
        {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if let Some(data) = text
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .map(str::to_owned)
            {
                assert!(text.contains("event: code_request"), "{text}");
                return serde_json::from_str(&data).unwrap();
            }
        }
        panic!("no event: {text}");
    }
}

#[actix_web::test]
async fn an_immediate_code_reaches_the_request_its_events_and_the_wallet_once() {
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/codes"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"code": "IMM-0001"})))
        .expect(1)
        .mount(&provider)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(with_provider(&dir, &provider), dir).await;
    let (id, token) = app.customer("now@example.org").await;
    // An admin sets the number (vouched for: a number typed by its customer counts once a code
    // proves it).
    let res = app
        .patch_user(&id, &app.admin_token, json!({"phone": "+33611111111"}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .ask(
            &token,
            json!({"provider": "vps", "product": "gift-10", "channel": "web"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let accepted: Value = res.json().await.unwrap();
    assert_eq!(accepted["status"], "pending");
    assert!(accepted["message"].as_str().unwrap().contains("processed"));
    let rid = accepted["id"].as_str().unwrap();
    let done = app.settled(&token, rid).await;
    assert_eq!(
        (&done["status"], &done["code"]),
        (&json!("fulfilled"), &json!("IMM-0001"))
    );
    // Already fulfilled: the stream says so at once.
    let event = app.first_event(&token, rid).await;
    assert_eq!(event["code"], "IMM-0001");
    // The wallet lists it once, and a manager finds it by phone.
    let wallet = app.get_json("/api/v1/wallet", &token).await;
    assert_eq!(wallet["provider_codes"].as_array().unwrap().len(), 1);
    assert_eq!(wallet["provider_codes"][0]["code"], "IMM-0001");
    let by_phone = app
        .get_json("/api/v1/wallet?phone=%2B33611111111", &app.admin_token)
        .await;
    assert_eq!(by_phone["provider_codes"][0]["code"], "IMM-0001");
    // Someone else's request is not found.
    let (_, other) = app.customer("other@example.org").await;
    let res = app
        .call(
            Method::GET,
            &format!("/api/v1/code-requests/{rid}"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // Erasing the customer erases their requests (they hold a phone number).
    let res = app.delete_user(&id, &token).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app
        .call(
            Method::GET,
            &format!("/api/v1/code-requests/{rid}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn a_callback_gives_exactly_one_code_and_forged_ones_are_refused() {
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/codes"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({"status": "processing"})))
        .mount(&provider)
        .await;
    // Polls find nothing yet: the callback decides.
    Mock::given(method("GET"))
        .and(path_regex("^/codes/.+$"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&provider)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(with_provider(&dir, &provider), dir).await;
    let (_, token) = app.customer("later@example.org").await;
    let rid = app
        .accepted(
            &token,
            json!({"provider": "vps", "product": "gift-25", "channel": "web"}),
        )
        .await;
    // The provider was asked, with where to call back.
    until_asked(&provider).await;
    let asked: Value =
        serde_json::from_slice(&provider.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(asked["request_id"], rid.as_str());
    assert!(
        asked["callback_url"]
            .as_str()
            .unwrap()
            .ends_with("/api/v1/providers/vps/callback")
    );
    // A stream opened now gets the code when it comes.
    let listener = {
        let (client, url, token) = (
            app.client.clone(),
            app.url(&format!("/api/v1/code-requests/{rid}/events")),
            token.clone(),
        );
        tokio::spawn(async move {
            let mut res = client.get(url).bearer_auth(token).send().await.unwrap();
            let mut text = String::new();
            while let Some(chunk) = res.chunk().await.unwrap() {
                text.push_str(&String::from_utf8_lossy(&chunk));
            }
            text
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let body = json!({"request_id": rid, "code": "CB-0001"});
    // Forged: wrong secret, no signature.
    let forged =
        voucherd::security::body_signature(b"not-the-secret", &serde_json::to_vec(&body).unwrap());
    assert_problem(app.callback(&body, &forged).await, 401, "unauthorized").await;
    assert_problem(app.callback(&body, "").await, 401, "unauthorized").await;
    let good = sign(&serde_json::to_vec(&body).unwrap());
    let res = app.callback(&body, &good).await;
    assert_eq!(res.status(), StatusCode::OK);
    // A repeat, or another code for the same request, changes nothing.
    let res = app.callback(&body, &good).await;
    assert_eq!(res.status(), StatusCode::OK);
    let other = json!({"request_id": rid, "code": "CB-9999"});
    let res = app
        .callback(&other, &sign(&serde_json::to_vec(&other).unwrap()))
        .await;
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "CB-0001");
    // An unknown request is 404.
    let unknown = json!({"request_id": "0190b3f2-0000-7000-8000-000000000000", "code": "X"});
    let res = app
        .callback(&unknown, &sign(&serde_json::to_vec(&unknown).unwrap()))
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let text = tokio::time::timeout(Duration::from_secs(10), listener)
        .await
        .unwrap()
        .unwrap();
    assert!(text.contains("\"code\":\"CB-0001\""), "{text}");
    let done = app.settled(&token, &rid).await;
    assert_eq!(done["code"], "CB-0001");
    let wallet = app.get_json("/api/v1/wallet", &token).await;
    assert_eq!(wallet["provider_codes"].as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn a_late_code_is_found_by_polling_and_errors_are_retried() {
    let provider = MockServer::start().await;
    // The first ask fails; the retry is accepted for later.
    Mock::given(method("POST"))
        .and(path("/codes"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .mount(&provider)
        .await;
    Mock::given(method("POST"))
        .and(path("/codes"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&provider)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/codes/.+$"))
        .respond_with(ResponseTemplate::new(404))
        .up_to_n_times(1)
        .mount(&provider)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/codes/.+$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"code": "POLL-0001"})))
        .mount(&provider)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(with_provider(&dir, &provider), dir).await;
    let (_, token) = app.customer("poll@example.org").await;
    let rid = app
        .accepted(
            &token,
            json!({"provider": "vps", "product": "gift-5", "channel": "web"}),
        )
        .await;
    let done = app.settled(&token, &rid).await;
    assert_eq!(done["code"], "POLL-0001");
    let calls: Vec<String> = provider
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.method.to_string())
        .collect();
    assert_eq!(calls, ["POST", "POST", "GET", "GET"]);
}

#[actix_web::test]
async fn a_request_without_a_code_in_time_fails_and_admins_are_told() {
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&provider)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&provider)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = with_provider(&dir, &provider);
    settings.providers[0].give_up_after_s = 2;
    let app = spawn_with(settings, dir).await;
    let (_, token) = app.customer("never@example.org").await;
    let rid = app
        .accepted(
            &token,
            json!({"provider": "vps", "product": "gift-1", "channel": "web"}),
        )
        .await;
    let done = app.settled(&token, &rid).await;
    assert_eq!(done["status"], "failed");
    assert!(
        done["error"].as_str().unwrap().contains("within 2 s"),
        "{done}"
    );
    let failed: Vec<Value> = app
        .notifications()
        .await
        .into_iter()
        .filter(|n| n["kind"] == "code_request_failed")
        .collect();
    assert_eq!(failed.len(), 1);
    // A late callback changes nothing.
    let body = json!({"request_id": rid, "code": "TOO-LATE"});
    let res = app
        .callback(&body, &sign(&serde_json::to_vec(&body).unwrap()))
        .await;
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "failed");
}

#[actix_web::test]
async fn a_pending_request_is_resumed_after_a_restart() {
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&provider)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&provider)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(with_provider(&dir, &provider), dir).await;
    let (_, token) = app.customer("restart@example.org").await;
    let rid = app
        .accepted(
            &token,
            json!({"provider": "vps", "product": "gift-2", "channel": "web"}),
        )
        .await;
    until_asked(&provider).await;
    let requests = |o: Value| o["code_requests"].clone();
    let overview = app
        .get_json("/api/v1/reports/overview", &app.admin_token)
        .await;
    assert_eq!(
        requests(overview),
        json!([{"provider": "vps", "pending": 1, "fulfilled": 0, "failed": 0}])
    );
    let dir = app.stop().await;
    // While voucherd was down the provider got the code ready.
    provider.reset().await;
    Mock::given(method("GET"))
        .and(path(format!("/codes/{rid}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"code": "AFTER-1"})))
        .mount(&provider)
        .await;
    let settings = with_provider(&dir, &provider);
    let app = spawn_with(settings, dir).await;
    let token = app.login("restart@example.org", "customer-password").await;
    let done = app.settled(&token, &rid).await;
    assert_eq!(done["code"], "AFTER-1");
    let asked_again = provider
        .received_requests()
        .await
        .unwrap()
        .iter()
        .any(|r| r.method == wiremock::http::Method::POST);
    assert!(
        !asked_again,
        "an accepted request is polled, not asked again"
    );
    let overview = app
        .get_json("/api/v1/reports/overview", &app.admin_token)
        .await;
    assert_eq!(
        requests(overview),
        json!([{"provider": "vps", "pending": 0, "fulfilled": 1, "failed": 0}])
    );
}

#[actix_web::test]
async fn the_code_goes_out_by_sms_and_bad_requests_change_nothing() {
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/codes"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"code": "SMS-0001"})))
        .mount(&provider)
        .await;
    let gateway = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&gateway)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = with_provider(&dir, &provider);
    settings.delivery.sms.url = format!("{}/send", gateway.uri());
    let app = spawn_with(settings, dir).await;
    let (user, token) = app.customer("text@example.org").await;
    for (body, code) in [
        (
            json!({"provider": "nope", "product": "x", "channel": "web"}),
            "validation_failed",
        ),
        (
            json!({"provider": "vps", "product": "x", "channel": "push"}),
            "validation_failed",
        ),
        (
            json!({"provider": "vps", "product": "x", "channel": "sms"}),
            "validation_failed",
        ),
        (
            json!({"provider": "vps", "product": " ", "channel": "web"}),
            "validation_failed",
        ),
    ] {
        assert_problem(app.ask(&token, body).await, 422, code).await;
    }
    assert!(provider.received_requests().await.unwrap().is_empty());
    // A customer's text goes to their own number.
    // An admin sets the number (vouched for: a number typed by its customer counts once a code
    // proves it).
    let res = app
        .patch_user(&user, &app.admin_token, json!({"phone": "+4915199999999"}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let rid = app.accepted(&token, json!({"provider": "vps", "product": "gift-50", "channel": "sms", "phone": "+4915199999999"})).await;
    app.settled(&token, &rid).await;
    let mut sent = Vec::new();
    for _ in 0..100 {
        sent = gateway.received_requests().await.unwrap();
        if !sent.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sent.len(), 1);
    let sms: Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(sms["to"], "+4915199999999");
    assert_eq!(sms["body"], "Your gift-50 code: SMS-0001");
}

#[actix_web::test]
async fn past_the_queue_requests_are_refused_with_503_and_nothing_is_stored() {
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"code": "SLOW"}))
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&provider)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = with_provider(&dir, &provider);
    settings.providers[0].concurrency = 1;
    // One customer fills the provider's queue here: their own caps are not what is tested.
    settings.code_requests.max_pending_per_customer = 100;
    settings.code_requests.max_per_customer_per_day = 100;
    let app = spawn_with(settings, dir).await;
    let (_, token) = app.customer("busy@example.org").await;
    let (mut accepted, mut refused) = (0, 0);
    for i in 0..25 {
        let res = app
            .ask(
                &token,
                json!({"provider": "vps", "product": format!("p{i}"), "channel": "web"}),
            )
            .await;
        match res.status().as_u16() {
            202 => accepted += 1,
            503 => {
                assert_eq!(res.headers()["retry-after"], "1");
                assert_problem(res, 503, "overloaded").await;
                refused += 1;
            }
            s => panic!("unexpected {s}"),
        }
    }
    // One with the provider and sixteen waiting (16 × concurrency); the rest refused.
    assert_eq!((accepted, refused), (17, 8));
}

#[actix_web::test]
async fn a_request_the_store_refuses_gives_its_providers_place_back() {
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/codes"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"code": "BACK-1"})))
        .mount(&provider)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = with_provider(&dir, &provider);
    // Seventeen places: one with the provider, sixteen waiting.
    settings.providers[0].concurrency = 1;
    let app = spawn_with(settings, dir).await;
    let (_, token) = app.customer("refused@example.org").await;
    // The store refuses writes (as a full writer queue does): every request fails after its
    // provider place was taken.
    app.store
        .failpoints
        .arm(voucherd::store::failpoints::Failpoint::RefuseWrites);
    for i in 0..25 {
        let res = app
            .ask(
                &token,
                json!({"provider": "vps", "product": format!("p{i}"), "channel": "web"}),
            )
            .await;
        assert_problem(res, 503, "overloaded").await;
    }
    app.store
        .failpoints
        .disarm(voucherd::store::failpoints::Failpoint::RefuseWrites);
    // Every place was given back: the provider takes requests again.
    let id = app
        .accepted(
            &token,
            json!({"provider": "vps", "product": "after", "channel": "web"}),
        )
        .await;
    let done = app.settled(&token, &id).await;
    assert_eq!(done["code"], "BACK-1", "{done}");
    assert!(
        provider
            .received_requests()
            .await
            .unwrap()
            .iter()
            .all(|r| String::from_utf8_lossy(&r.body).contains("after")),
        "the refused requests never reached the provider"
    );
}

#[actix_web::test]
async fn one_customer_cannot_take_every_event_stream() {
    let provider = processing_provider().await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = with_provider(&dir, &provider);
    // Accepted, then not looked at again within the test (nor after it).
    settings.providers[0].poll_interval_s = 3600;
    let app = spawn_with(settings, dir).await;
    let (_, greedy) = app.customer("greedy@example.org").await;
    let (_, other) = app.customer("other@example.org").await;
    let ask = json!({"provider": "vps", "product": "p", "channel": "web"});
    let mine = app.accepted(&greedy, ask.clone()).await;
    let theirs = app.accepted(&other, ask).await;
    let open = |token: &str, id: &str| {
        app.client
            .get(app.url(&format!("/api/v1/code-requests/{id}/events")))
            .bearer_auth(token)
            .send()
    };
    // Held open (never read): eight streams of one customer.
    let mut held = Vec::new();
    for _ in 0..8 {
        let res = open(&greedy, &mine).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        held.push(res);
    }
    let ninth = open(&greedy, &mine).await.unwrap();
    assert_eq!(ninth.headers()["retry-after"], "5");
    assert_problem(ninth, 429, "rate_limited").await;
    // Everyone else still gets theirs.
    let res = open(&other, &theirs).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    drop((held, res));
}

#[actix_web::test]
async fn a_provider_answer_that_is_huge_or_holds_control_characters_gives_no_code() {
    let provider = MockServer::start().await;
    // Two bad answers, then a good one: only the good one becomes the code.
    Mock::given(method("POST"))
        .and(path("/codes"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"code": "AB\u{1b}[2JC"})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&provider)
        .await;
    Mock::given(method("POST"))
        .and(path("/codes"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"code": "BIG", "padding": "x".repeat(1 << 20)})),
        )
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&provider)
        .await;
    Mock::given(method("POST"))
        .and(path("/codes"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"code": "GOOD-1"})))
        .with_priority(3)
        .mount(&provider)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(with_provider(&dir, &provider), dir).await;
    let (_, token) = app.customer("careful@example.org").await;
    let id = app
        .accepted(
            &token,
            json!({"provider": "vps", "product": "p", "channel": "web"}),
        )
        .await;
    let done = app.settled(&token, &id).await;
    assert_eq!(done["code"], "GOOD-1", "{done}");
    let asked = provider
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| String::from_utf8_lossy(&r.body).contains(&id))
        .count();
    assert_eq!(asked, 3, "two answers refused, the third taken");
}

/// One customer sent ten SMS requests to ten foreign numbers for any product text: products now
/// come from the provider's list, a customer's SMS goes to their own number, and the requests one
/// customer has waiting, and makes in a day, are capped (429).
#[actix_web::test]
async fn a_customer_asks_only_for_listed_products_texts_only_themselves_and_is_capped() {
    let provider = processing_provider().await;
    let gateway = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = with_provider(&dir, &provider);
    settings.providers[0].products = vec!["gift-card-10".into(), "gift-card-25".into()];
    settings.delivery.sms.url = format!("{}/send", gateway.uri());
    settings.code_requests.max_pending_per_customer = 3;
    settings.code_requests.max_per_customer_per_day = 4;
    let app = spawn_with(settings, dir).await;
    let (user, token) = app.customer("asker@example.org").await;
    // An admin sets the number (vouched for: a number typed by its customer counts once a code
    // proves it).
    let res = app
        .patch_user(&user, &app.admin_token, json!({"phone": "+4915100000001"}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    for body in [
        json!({"provider": "vps", "product": "gift-500 EUR", "channel": "web"}),
        json!({"provider": "vps", "product": "gift-card-10", "channel": "sms", "phone": "+4915177777777"}),
    ] {
        assert_problem(app.ask(&token, body).await, 422, "validation_failed").await;
    }
    // A manager may text the number a customer gives at the till.
    let mut pending = vec![
        app.accepted(
            &app.admin_token,
            json!({"provider": "vps", "product": "gift-card-25", "channel": "sms",
                "phone": "+4915177777777", "customer": user}),
        )
        .await,
    ];
    // Pending at once: 3 (the manager's request counts), then 429.
    for _ in 0..2 {
        pending.push(
            app.accepted(
                &token,
                json!({"provider": "vps", "product": "gift-card-10", "channel": "sms"}),
            )
            .await,
        );
    }
    let res = app
        .ask(
            &token,
            json!({"provider": "vps", "product": "gift-card-10", "channel": "web"}),
        )
        .await;
    assert_eq!(res.headers()["retry-after"], "60");
    assert_problem(res, 429, "rate_limited").await;
    // Settled requests free their place, not the day's allowance.
    for id in &pending {
        let body = json!({"request_id": id, "code": format!("C-{id}")});
        let raw = serde_json::to_vec(&body).unwrap();
        let res = app.callback(&body, &sign(&raw)).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    app.accepted(
        &token,
        json!({"provider": "vps", "product": "gift-card-10", "channel": "web"}),
    )
    .await;
    let res = app
        .ask(
            &token,
            json!({"provider": "vps", "product": "gift-card-10", "channel": "web"}),
        )
        .await;
    assert_problem(res, 429, "rate_limited").await;
    // A request is still pending: stop the server, or its polls outlive the test.
    app.stop().await;
}

/// A code requested with a phone number is found by that number, whoever asked for it and
/// whatever number their account has.
#[actix_web::test]
async fn a_code_requested_with_a_phone_is_in_the_wallet_of_that_phone() {
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/codes"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"code": "PHONE-0001"})))
        .mount(&provider)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(with_provider(&dir, &provider), dir).await;
    let (id, token) = app.customer("guest-phone@example.org").await;
    // A customer files a request only under their own confirmed number; the shop, under the
    // number a guest gives at the till.
    let res = app
        .ask(
            &token,
            json!({"provider": "vps", "product": "gift-10", "channel": "web", "phone": "+33699999999"}),
        )
        .await;
    assert_problem(res, 422, "validation_failed").await;
    let rid = app
        .accepted(
            &app.admin_token,
            json!({"provider": "vps", "product": "gift-10", "channel": "web",
                "phone": "+33699999999", "customer": id}),
        )
        .await;
    let done = app.settled(&token, &rid).await;
    assert_eq!(done["code"], "PHONE-0001");
    let by_phone = app
        .get_json("/api/v1/wallet?phone=%2B33699999999", &app.admin_token)
        .await;
    assert!(
        by_phone["customer"].is_null(),
        "no account has this number: {by_phone}"
    );
    assert_eq!(by_phone["provider_codes"][0]["code"], "PHONE-0001");
    // The account that asked has it too; erasing it takes the request from the phone's wallet.
    let mine = app.get_json("/api/v1/wallet", &token).await;
    assert_eq!(mine["provider_codes"][0]["code"], "PHONE-0001");
    assert_eq!(
        app.delete_user(&id, &app.admin_token).await.status(),
        StatusCode::NO_CONTENT
    );
    let by_phone = app
        .get_json("/api/v1/wallet?phone=%2B33699999999", &app.admin_token)
        .await;
    assert_eq!(by_phone["provider_codes"], json!([]));
}
