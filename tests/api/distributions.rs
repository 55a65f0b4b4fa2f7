//! Distributions (one code per customer, by email over a real SMTP server or by a signed webhook
//! to a real HTTP server) and the admin alerts of the notifier.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use hmac::Mac as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use voucherd::config::{EmailTransportKind, Settings, WebhookSettings};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{MailServer, TestApp, assert_problem, spawn_app, spawn_with, test_settings};

const SECRET: &str = "webhook-secret-for-tests";

pub(crate) fn smtp_settings(dir: &tempfile::TempDir, mail: &MailServer) -> Settings {
    let mut s = test_settings(dir.path().join("data"));
    s.delivery.email.transport = EmailTransportKind::Smtp;
    s.delivery.email.smtp_url = format!("smtp://127.0.0.1:{}", mail.port);
    s
}

pub(crate) fn webhook(name: &str, url: String) -> WebhookSettings {
    WebhookSettings {
        name: name.into(),
        url,
        secret: SECRET.into(),
        timeout_s: 5,
    }
}

impl TestApp {
    pub(crate) async fn distribute(&self, campaign: &str, body: Value) -> reqwest::Response {
        self.call(
            Method::POST,
            &format!("/api/v1/campaigns/{campaign}/distributions"),
            Some(&self.admin_token),
            Some(body),
        )
        .await
    }

    /// Follows a 202's `Location` until the distribution is completed.
    pub(crate) async fn completed(&self, location: &str) -> Value {
        for _ in 0..200 {
            let d = self.get_json(location, &self.admin_token).await;
            if d["status"] == "completed" {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the distribution did not complete");
    }

    pub(crate) async fn wallet_codes(&self, token: &str) -> Vec<String> {
        let wallet = self.get_json("/api/v1/wallet", token).await;
        wallet["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["code"].as_str().unwrap().to_owned())
            .collect()
    }
}

pub(crate) fn location(res: &reqwest::Response) -> String {
    res.headers()["location"].to_str().unwrap().to_owned()
}

#[actix_web::test]
async fn each_listed_customer_gets_one_code_by_email_and_limits_hold() {
    let mut mail = MailServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(smtp_settings(&dir, &mail), dir).await;
    let campaign = app.active_campaign(5, 1).await;
    let mut customers = Vec::new();
    for i in 0..3 {
        customers.push(app.customer(&format!("d{i}@example.org")).await);
    }
    // The first already holds their one code: skipped, not given a second.
    let res = app.claim(&campaign, &customers[0].1, None).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let ids: Vec<&str> = customers.iter().map(|(id, _)| id.as_str()).collect();
    let res = app
        .distribute(
            &campaign,
            json!({"customers": [ids[0], ids[1], ids[2], ids[1]], "channel": "email"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let loc = location(&res);
    let accepted: Value = res.json().await.unwrap();
    assert_eq!(accepted["recipients"], 3, "a repeated id counts once");
    let done = app.completed(&loc).await;
    assert_eq!(
        (
            &done["assigned"],
            &done["skipped_limit_reached"],
            &done["done"]
        ),
        (&json!(2), &json!(1), &json!(3))
    );
    // Two emails, each to its customer, carrying the code their wallet holds.
    let mut got = HashMap::new();
    for _ in 0..2 {
        let (msg, _) = mail.next(Duration::from_secs(10)).await.expect("an email");
        assert_eq!(msg["subject"], "Your code for drop");
        got.insert(
            msg["to"][0]["email"].as_str().unwrap().to_owned(),
            msg["text"].as_str().unwrap().to_owned(),
        );
    }
    assert!(mail.next(Duration::from_millis(500)).await.is_none());
    for (i, (_, token)) in customers.iter().enumerate().skip(1) {
        let codes = app.wallet_codes(token).await;
        assert_eq!(codes.len(), 1);
        let text = &got[&format!("d{i}@example.org")];
        assert!(text.contains(&codes[0]), "{text}");
        assert!(text.contains("50% off"), "{text}");
    }
    assert_eq!(app.wallet_codes(&customers[0].1).await.len(), 1);
    let c = app
        .get_json(&format!("/api/v1/campaigns/{campaign}"), &app.admin_token)
        .await;
    assert_eq!(c["claimed"], 3);
    let sent = app.deliveries("?status=sent").await;
    assert_eq!(
        sent.iter().filter(|d| d["kind"] == "code").count(),
        2,
        "{sent:?}"
    );
    mail.stop();
}

#[actix_web::test]
async fn subscribers_get_codes_by_a_signed_webhook_retried_after_a_failure() {
    let hooks = MockServer::start().await;
    // The first POST fails; the retry and the rest succeed.
    Mock::given(method("POST"))
        .and(path("/hooks"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&hooks)
        .await;
    Mock::given(method("POST"))
        .and(path("/hooks"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&hooks)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path().join("data"));
    settings.delivery.retry_base_s = 1;
    settings.delivery.retry_max_s = 1;
    settings.webhooks = vec![webhook("shop", format!("{}/hooks", hooks.uri()))];
    let app = spawn_with(settings, dir).await;
    let campaign = app.active_campaign(10, 1).await;
    let mut followers = HashSet::new();
    for i in 0..2 {
        let (id, token) = app.customer(&format!("w{i}@example.org")).await;
        let res = app
            .subscribe(&id, &token, json!({"retailer": "Acme"}))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        followers.insert(id);
    }
    let (other, other_token) = app.customer("other@example.org").await;
    let res = app
        .subscribe(&other, &other_token, json!({"retailer": "Elsewhere"}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app
        .distribute(
            &campaign,
            json!({"subscribers_of": {"retailer": "acme"}, "channel": "webhook", "webhook": "shop"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let done = app.completed(&location(&res)).await;
    assert_eq!(done["assigned"], 2);
    assert_eq!(
        done["audience"],
        json!({"subscribers_of": {"retailer": "acme"}})
    );
    // Wait for both to be sent (one after a retry).
    for _ in 0..100 {
        if app
            .deliveries("?status=sent")
            .await
            .iter()
            .filter(|d| d["channel"] == "webhook")
            .count()
            == 2
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let requests = hooks.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3, "two messages, one of them twice");
    let mut by_delivery: HashMap<String, Vec<Value>> = HashMap::new();
    for r in &requests {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(&r.body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(r.headers["x-signature"].to_str().unwrap(), expected);
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        by_delivery
            .entry(
                r.headers["x-voucherd-delivery"]
                    .to_str()
                    .unwrap()
                    .to_owned(),
            )
            .or_default()
            .push(body);
    }
    assert_eq!(
        by_delivery.len(),
        2,
        "the retry carries the same delivery id"
    );
    let mut customers = HashSet::new();
    let mut codes = HashSet::new();
    for bodies in by_delivery.values() {
        let b = &bodies[0];
        assert_eq!(b["event"], "code.assigned");
        assert_eq!(b["campaign"]["id"], campaign.as_str());
        customers.insert(b["customer"]["id"].as_str().unwrap().to_owned());
        codes.insert(b["code"].as_str().unwrap().to_owned());
    }
    assert_eq!(customers, followers, "only Acme's followers");
    assert_eq!(codes.len(), 2);
}

#[actix_web::test]
async fn a_webhook_that_keeps_failing_is_dead_lettered_and_admins_are_told() {
    let hooks = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&hooks)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path().join("data"));
    settings.delivery.retry_base_s = 1;
    settings.delivery.retry_max_s = 1;
    settings.delivery.max_attempts = 2;
    settings.webhooks = vec![webhook("down", hooks.uri())];
    let app = spawn_with(settings, dir).await;
    let campaign = app.active_campaign(3, 1).await;
    let (id, _) = app.customer("dead@example.org").await;
    let res = app
        .distribute(
            &campaign,
            json!({"customers": [id], "channel": "webhook", "webhook": "down"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let mut dead = Vec::new();
    for _ in 0..100 {
        dead = app.deliveries("?status=dead").await;
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(dead.len(), 1, "dead-lettered after its attempts");
    assert_eq!(dead[0]["attempts"], 2);
    assert_eq!(dead[0]["webhook"], "down");
    assert!(
        dead[0]["last_error"].as_str().unwrap().contains("500"),
        "{dead:?}"
    );
    assert_eq!(hooks.received_requests().await.unwrap().len(), 2);
    let failing: Vec<Value> = app
        .notifications()
        .await
        .into_iter()
        .filter(|n| n["kind"] == "delivery_failing")
        .collect();
    assert_eq!(failing.len(), 1);
    assert_eq!(failing[0]["subject"], dead[0]["id"]);
}

#[actix_web::test]
async fn bad_distributions_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path().join("data"));
    settings.webhooks = vec![webhook("shop", "http://127.0.0.1:9/hooks".into())];
    let app = spawn_with(settings, dir).await;
    let campaign = app.active_campaign(3, 1).await;
    let (id, token) = app.customer("bad@example.org").await;
    let stranger = "0190b3f2-0000-7000-8000-000000000000";
    for (body, status, code) in [
        (
            json!({"customers": [id, stranger], "channel": "email"}),
            422,
            "validation_failed",
        ),
        (
            json!({"customers": [id], "channel": "webhook", "webhook": "nope"}),
            422,
            "validation_failed",
        ),
        (
            json!({"customers": [id], "channel": "webhook"}),
            422,
            "validation_failed",
        ),
        (
            json!({"customers": [id], "channel": "email", "webhook": "shop"}),
            422,
            "validation_failed",
        ),
        (
            json!({"customers": [id], "subscribers_of": {"retailer": "a"}, "channel": "email"}),
            422,
            "validation_failed",
        ),
        (json!({"channel": "email"}), 422, "validation_failed"),
        // No [delivery.sms] in this configuration.
        (
            json!({"customers": [id], "channel": "sms"}),
            422,
            "validation_failed",
        ),
        (
            json!({"customers": [id], "channel": "email", "url": "http://evil"}),
            422,
            "validation_failed",
        ),
    ] {
        let res = app.distribute(&campaign, body.clone()).await;
        assert_problem(res, status, code).await;
    }
    // Oversize bodies are problems too, whether the idempotency layer or the handler reads them.
    let big = format!(
        "{{\"customers\": [{}], \"channel\": \"email\"}}",
        vec![format!("\"{stranger}\""); 1_800].join(",")
    );
    for (path, keyed) in [
        (format!("/api/v1/campaigns/{campaign}/distributions"), true),
        (format!("/api/v1/campaigns/{campaign}/claims"), false),
    ] {
        let mut req = app
            .client
            .post(app.url(&path))
            .bearer_auth(&app.admin_token)
            .header("Content-Type", "application/json")
            .body(big.clone());
        if keyed {
            req = req.header("Idempotency-Key", "big-1");
        }
        assert_problem(req.send().await.unwrap(), 413, "payload_too_large").await;
    }
    // A customer may not distribute.
    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/campaigns/{campaign}/distributions"),
            Some(&token),
            Some(json!({"customers": [id], "channel": "email"})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // Nothing was handed out.
    assert!(app.wallet_codes(&token).await.is_empty());
    assert!(app.deliveries("?status=pending").await.is_empty());
    // An ended campaign distributes nothing.
    let res = app.end_campaign(&campaign).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .distribute(&campaign, json!({"customers": [id], "channel": "email"}))
        .await;
    assert_problem(res, 422, "campaign_not_active").await;
    let res = app
        .call(
            Method::GET,
            &format!("/api/v1/campaigns/{campaign}/distributions/{stranger}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn a_retried_distribution_with_its_idempotency_key_runs_once() {
    let app = spawn_app().await;
    let campaign = app.active_campaign(5, 2).await;
    let (id, token) = app.customer("once@example.org").await;
    let send = || {
        app.client
            .post(app.url(&format!("/api/v1/campaigns/{campaign}/distributions")))
            .bearer_auth(&app.admin_token)
            .header("Idempotency-Key", "drop-42")
            .json(&json!({"customers": [id], "channel": "email"}))
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first: Value = first.json().await.unwrap();
    let again = send().await.unwrap();
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    app.completed(&format!(
        "/api/v1/campaigns/{campaign}/distributions/{}",
        first["id"].as_str().unwrap()
    ))
    .await;
    assert_eq!(app.wallet_codes(&token).await.len(), 1, "one code, not two");
}

#[actix_web::test]
async fn admins_are_emailed_when_a_pool_runs_low_and_when_the_campaign_ends() {
    let mut mail = MailServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = smtp_settings(&dir, &mail);
    settings.notify.admin_emails = vec!["ops@example.org".into(), "lead@example.org".into()];
    let app = spawn_with(settings, dir).await;
    let campaign = app.active_campaign(10, 10).await;
    let (_, token) = app.customer("buyer@example.org").await;
    for _ in 0..8 {
        let res = app.claim(&campaign, &token, None).await;
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    // 2 of 10 left is not low yet; the notifier's look finds nothing.
    app.actors.wake_all();
    assert!(mail.next(Duration::from_millis(700)).await.is_none());
    let res = app.claim(&campaign, &token, None).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    app.actors.wake_all();
    let (msg, _) = mail.next(Duration::from_secs(15)).await.expect("pool_low");
    assert_eq!(
        msg["subject"],
        format!("[voucherd] pool_low: {campaign}"),
        "{msg}"
    );
    let to: HashSet<&str> = msg["to"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["email"].as_str().unwrap())
        .collect();
    assert_eq!(to, HashSet::from(["ops@example.org", "lead@example.org"]));
    assert!(msg["text"].as_str().unwrap().contains("1 of 10 codes left"));
    // The last code: still the same low spell, no second email.
    let res = app.claim(&campaign, &token, None).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    app.actors.wake_all();
    assert!(mail.next(Duration::from_millis(700)).await.is_none());
    let res = app.end_campaign(&campaign).await;
    assert_eq!(res.status(), StatusCode::OK);
    let (msg, _) = mail
        .next(Duration::from_secs(15))
        .await
        .expect("campaign_ended");
    assert_eq!(
        msg["subject"],
        format!("[voucherd] campaign_ended: {campaign}")
    );
    assert!(
        msg["text"]
            .as_str()
            .unwrap()
            .contains("10 of 10 codes claimed")
    );
    app.actors.wake_all();
    assert!(mail.next(Duration::from_millis(700)).await.is_none());
    let notes = app.notifications().await;
    let kinds: Vec<&str> = notes.iter().map(|n| n["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["pool_low", "campaign_ended"]);
    // Newest first (as the console shows them), each naming its campaign.
    let stored = app
        .get_json(&format!("/api/v1/campaigns/{campaign}"), &app.admin_token)
        .await;
    let newest = app
        .get_json("/api/v1/notifications?newest_first=true", &app.admin_token)
        .await;
    let named: Vec<(&str, &Value)> = newest["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["kind"].as_str().unwrap(), &n["campaign"]))
        .collect();
    let about = json!({"id": campaign, "name": stored["name"]});
    assert_eq!(
        named,
        [("campaign_ended", &about), ("pool_low", &about)],
        "{newest}"
    );
    let older = app
        .get_json(
            &format!(
                "/api/v1/notifications?newest_first=true&limit=1&cursor={}",
                newest["items"][0]["id"].as_str().unwrap()
            ),
            &app.admin_token,
        )
        .await;
    assert_eq!(older["items"][0]["kind"], "pool_low", "{older}");
    for _ in 0..50 {
        let notes = app.notifications().await;
        if notes.iter().all(|n| !n["sent_at"].is_null()) {
            mail.stop();
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the notifications were not marked sent");
}

#[actix_web::test]
async fn customers_get_their_code_by_sms_and_those_without_a_number_are_counted() {
    let gateway = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/sms"))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(1)
        .mount(&gateway)
        .await;
    Mock::given(method("POST"))
        .and(path("/sms"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "m-1"})))
        .mount(&gateway)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path().join("data"));
    settings.delivery.retry_base_s = 1;
    settings.delivery.retry_max_s = 1;
    settings.delivery.sms.url = format!("{}/sms", gateway.uri());
    settings.delivery.sms.api_key = "sms-key".into();
    let app = spawn_with(settings, dir).await;
    let campaign = app.active_campaign(5, 1).await;
    let mut phones = HashMap::new();
    let mut ids = Vec::new();
    for (i, phone) in [Some("+33612345678"), Some("+4915112345678"), None]
        .into_iter()
        .enumerate()
    {
        let (id, token) = app.customer(&format!("sms{i}@example.org")).await;
        if let Some(phone) = phone {
            // Set by an admin: confirmed (vouched for).
            let res = app
                .patch_user(&id, &app.admin_token, json!({"phone": phone}))
                .await;
            assert_eq!(res.status(), StatusCode::OK);
            phones.insert(phone.to_owned(), token);
        }
        ids.push(id);
    }
    // A number its customer typed and never confirmed gets nothing.
    let (typed, token) = app.customer("sms-typed@example.org").await;
    let res = app
        .patch_user(&typed, &token, json!({"phone": "+447700900123"}))
        .await;
    assert_eq!(res.json::<Value>().await.unwrap()["phone_verified"], false);
    ids.push(typed);
    let res = app
        .distribute(&campaign, json!({"customers": ids, "channel": "sms"}))
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let done = app.completed(&location(&res)).await;
    assert_eq!(
        (
            &done["recipients"],
            &done["assigned"],
            &done["skipped_unreachable"]
        ),
        (&json!(2), &json!(2), &json!(2))
    );
    for _ in 0..100 {
        let sent = app.deliveries("?status=sent").await;
        if sent.iter().filter(|d| d["channel"] == "sms").count() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let requests = gateway.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3, "two messages, one of them retried");
    let mut got = HashMap::new();
    for r in &requests {
        assert_eq!(r.headers["authorization"], "Bearer sms-key");
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        got.insert(
            body["to"].as_str().unwrap().to_owned(),
            body["body"].as_str().unwrap().to_owned(),
        );
    }
    assert_eq!(got.len(), 2);
    for (phone, token) in &phones {
        let codes = app.wallet_codes(token).await;
        assert_eq!(codes.len(), 1);
        let text = &got[phone];
        assert!(
            text.contains(&codes[0]) && text.starts_with("drop: your code"),
            "{text}"
        );
    }
}

#[actix_web::test]
async fn a_batch_that_fails_between_its_keys_hands_out_nothing_and_is_done_again_whole() {
    use voucherd::store::failpoints::Failpoint;
    let app = spawn_app().await;
    let id = app.active_campaign(10, 1).await;
    let mut customers = Vec::new();
    for i in 0..5 {
        customers.push(app.customer(&format!("batch{i}@x.io")).await);
    }
    let ids: Vec<&str> = customers.iter().map(|(id, _)| id.as_str()).collect();
    // Every batch fails after its claims were written, before its messages: as long as that
    // lasts, no customer holds a code.
    app.store.failpoints.arm(Failpoint::BetweenKeys);
    let res = app
        .distribute(&id, json!({"customers": ids, "channel": "email"}))
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let location = location(&res);
    tokio::time::sleep(Duration::from_millis(600)).await;
    for (_, token) in &customers {
        assert!(
            app.wallet_codes(token).await.is_empty(),
            "a code was handed out without its message"
        );
    }
    app.store.failpoints.disarm(Failpoint::BetweenKeys);
    // The batch is tried again and goes through whole: one code each, and its email queued.
    let done = app.completed(&location).await;
    assert_eq!(done["assigned"], 5, "{done}");
    assert_eq!(done["skipped_other"], 0, "{done}");
    for (_, token) in &customers {
        assert_eq!(app.wallet_codes(token).await.len(), 1);
    }
    let c = app
        .get_json(&format!("/api/v1/campaigns/{id}"), &app.admin_token)
        .await;
    assert_eq!(c["claimed"], 5);
    let messages = app.deliveries("").await;
    let codes = messages.iter().filter(|d| d["kind"] == "code").count();
    assert_eq!(codes, 5, "{messages:?}");
}

/// A marketing team names customers by their email addresses, and finds the distributions it
/// sent, newest first.
#[actix_web::test]
async fn customers_are_named_by_email_and_past_distributions_are_listed() {
    let app = spawn_app().await;
    let campaign = app.active_campaign(10, 1).await;
    app.customer("Ann@Example.org").await;
    app.customer("bob@example.org").await;
    let res = app
        .distribute(
            &campaign,
            json!({"emails": ["ann@example.org", "nobody@example.org"], "channel": "email"}),
        )
        .await;
    let problem = assert_problem(res, 422, "validation_failed").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("nobody@example.org")
    );
    let mut locations = Vec::new();
    for emails in [
        json!(["ANN@example.org"]),
        json!(["bob@example.org", "ann@example.org"]),
    ] {
        let res = app
            .distribute(&campaign, json!({"emails": emails, "channel": "email"}))
            .await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        locations.push(location(&res));
        app.completed(locations.last().unwrap()).await;
    }
    let first = app
        .get_json(
            &format!("/api/v1/campaigns/{campaign}/distributions?limit=1"),
            &app.admin_token,
        )
        .await;
    assert_eq!(first["items"].as_array().unwrap().len(), 1);
    assert!(
        locations[1].ends_with(first["items"][0]["id"].as_str().unwrap()),
        "newest first"
    );
    assert_eq!(first["items"][0]["recipients"], 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = app
        .get_json(
            &format!("/api/v1/campaigns/{campaign}/distributions?cursor={cursor}"),
            &app.admin_token,
        )
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert!(locations[0].ends_with(rest["items"][0]["id"].as_str().unwrap()));
    assert!(rest["next_cursor"].is_null());
    // Another campaign's list is its own.
    let other = app.active_campaign(5, 1).await;
    let none = app
        .get_json(
            &format!("/api/v1/campaigns/{other}/distributions"),
            &app.admin_token,
        )
        .await;
    assert_eq!(none["items"], json!([]));
}
