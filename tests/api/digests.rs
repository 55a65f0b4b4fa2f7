//! Subscriptions, digests at the user's local hour (DST included) over a real SMTP server on
//! loopback (mailcrab), exactly once across restarts, retries and dead letters, unsubscribe.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use voucherd::clock::ManualClock;
use voucherd::config::{EmailTransportKind, Settings};
use voucherd::feeds::FeedKind;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{
    MailServer, TestApp, assert_problem, free_port, network, spawn_with_clock, test_settings,
};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A feed of three vouchers (two from Acme, one Travel) valid through 2027.
async fn feed() -> MockServer {
    let server = MockServer::start().await;
    let csv = "id,retailer,category,title,description,code,url,starts,ends\n\
        a1,Acme,Home,10% off sofas,,SOFA10,https://acme.example/sofa,2026-01-01,2027-12-31\n\
        a2,Acme,Home,Free delivery,,,https://acme.example/free,2026-01-01,2027-12-31\n\
        t1,Jetset,Travel,50 EUR off flights,,FLY50,https://jetset.example,2026-01-01,2027-12-31\n";
    Mock::given(method("GET"))
        .and(path("/feed.csv"))
        .respond_with(ResponseTemplate::new(200).set_body_string(csv))
        .mount(&server)
        .await;
    server
}

/// A server on a manual clock at `now`, email over SMTP to `smtp_port`, with the feed.
async fn spawn_at(
    now: &str,
    smtp_port: u16,
    feed: &MockServer,
    tune: impl FnOnce(&mut Settings),
) -> (TestApp, Arc<ManualClock>) {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path().join("data"));
    settings.delivery.email.transport = EmailTransportKind::Smtp;
    settings.delivery.email.smtp_url = format!("smtp://127.0.0.1:{smtp_port}");
    settings.delivery.email.timeout_s = 5;
    settings.delivery.email.per_second = 1000;
    settings.networks = vec![network(
        "shop",
        FeedKind::Csv,
        &format!("{}/feed.csv", feed.uri()),
    )];
    tune(&mut settings);
    let clock = ManualClock::new(utc(now));
    let app = spawn_with_clock(settings, dir, clock.clone()).await;
    app.await_first_pulls().await;
    (app, clock)
}

impl TestApp {
    /// A customer (made by the admin: their address confirmed) in `timezone` with a daily
    /// digest at `hour`; (id, token).
    async fn subscriber(&self, email: &str, timezone: &str, hour: u8) -> (String, String) {
        let res = self
            .create_user(json!({"email": email, "password": "customer-password",
                "timezone": timezone, "digest_hour": hour}))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let id = res.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let token = self.login(email, "customer-password").await;
        (id, token)
    }

    async fn digests(&self, user: &str, token: &str) -> Vec<Value> {
        let res = self
            .call(
                Method::GET,
                &format!("/api/v1/users/{user}/digests"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json::<Value>().await.unwrap()["items"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Deliveries (first page); `query` is `""` or `?status=…`.
    pub(crate) async fn deliveries(&self, query: &str) -> Vec<Value> {
        let res = self
            .call(
                Method::GET,
                &format!("/api/v1/deliveries{query}"),
                Some(&self.admin_token),
                None,
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json::<Value>().await.unwrap()["items"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Moves the manual clock and lets the schedulers look.
    async fn at(&self, clock: &ManualClock, t: &str) {
        clock.set(utc(t));
        self.actors.wake_all();
    }

    /// Waits until the user's latest digest is in `status` (e.g. "sent").
    async fn await_digest_status(&self, user: &str, token: &str, status: &str) -> Value {
        for _ in 0..200 {
            if let Some(d) = self.digests(user, token).await.first()
                && d["status"] == status
            {
                return d.clone();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no digest of {user} reached {status}");
    }
}

pub(crate) fn header<'a>(mail: &'a Value, name: &str) -> &'a str {
    mail["headers"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str().unwrap().trim())
        .unwrap_or_else(|| panic!("no {name} header in {mail}"))
}

#[actix_web::test]
async fn a_subscriber_gets_one_digest_at_the_first_valid_instant_of_a_skipped_hour() {
    let mut mail = MailServer::start().await;
    let feed = feed().await;
    // New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00 UTC); the hour 2 does not exist.
    let (app, clock) = spawn_at("2026-03-08T05:00:00Z", mail.port, &feed, |_| {}).await;
    let (user, token) = app
        .subscriber("ny@example.org", "America/New_York", 2)
        .await;
    let res = app
        .subscribe(&user, &token, json!({"retailer": "acme"}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app
        .subscribe(&user, &token, json!({"category": "Travel"}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);

    let preview: Value = app
        .call(
            Method::GET,
            &format!("/api/v1/users/{user}/digest/preview"),
            Some(&token),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(preview["local_date"], "2026-03-08");
    assert_eq!(preview["due_at"], "2026-03-08T07:00:00Z");
    assert_eq!(preview["vouchers"].as_array().unwrap().len(), 3);

    // Just before the first valid instant: nothing.
    app.at(&clock, "2026-03-08T06:59:59Z").await;
    assert!(mail.next(Duration::from_millis(700)).await.is_none());
    // 03:00 EDT: the digest arrives, once.
    app.at(&clock, "2026-03-08T07:00:00Z").await;
    let (msg, raw) = mail.next(Duration::from_secs(10)).await.expect("a digest");
    assert_eq!(msg["to"][0]["email"], "ny@example.org");
    assert_eq!(msg["subject"], "3 new vouchers for 2026-03-08");
    let text = msg["text"].as_str().unwrap();
    let html = msg["html"].as_str().unwrap();
    for expected in [
        "Acme",
        "10% off sofas",
        "SOFA10",
        "Jetset",
        "FLY50",
        "2027-12-31",
    ] {
        assert!(text.contains(expected), "text lacks {expected}: {text}");
        assert!(html.contains(expected), "html lacks {expected}: {html}");
    }
    // minijinja's HTML escaping writes `/` as `&#x2f;`, which every HTML reader decodes.
    assert!(
        html.replace("&#x2f;", "/")
            .contains("href=\"https://acme.example/sofa\""),
        "{html}"
    );
    assert!(text.contains("no code needed"), "Free delivery has no code");
    // Links point at the server as bound (no public_url is configured here).
    let unsubscribe = app.url(&format!(
        "/unsubscribe/{}",
        crate::helpers::unsubscribe_token(&user)
    ));
    assert_eq!(header(&msg, "List-Unsubscribe"), format!("<{unsubscribe}>"));
    assert_eq!(
        header(&msg, "List-Unsubscribe-Post"),
        "List-Unsubscribe=One-Click"
    );
    assert!(text.contains(&unsubscribe));
    assert!(raw.contains("multipart/alternative"));

    let digest = app.await_digest_status(&user, &token, "sent").await;
    assert_eq!(digest["local_date"], "2026-03-08");
    assert_eq!(digest["voucher_ids"].as_array().unwrap().len(), 3);
    assert!(
        header(&msg, "Message-ID").contains(&format!("digest-{}@", digest["id"].as_str().unwrap())),
        "Message-ID derives from the digest id"
    );

    // Later that day and a second admin-free wake: no second mail.
    app.at(&clock, "2026-03-08T12:00:00Z").await;
    assert!(mail.next(Duration::from_millis(700)).await.is_none());
    // The next day's digest lists only vouchers new since this one: none, so no mail…
    app.at(&clock, "2026-03-09T06:00:00Z").await;
    assert!(mail.next(Duration::from_millis(700)).await.is_none());
    assert_eq!(app.digests(&user, &token).await.len(), 1);
    mail.stop();
}

#[actix_web::test]
async fn a_repeated_hour_at_fall_back_sends_once_and_a_restart_sends_nothing_again() {
    let mut mail = MailServer::start().await;
    let feed = feed().await;
    // New York, 2026-11-01: 01:00–01:59 happens twice (05:00 EDT and 06:00 EST in UTC).
    let (app, clock) = spawn_at("2026-11-01T03:00:00Z", mail.port, &feed, |_| {}).await;
    let (user, token) = app
        .subscriber("fold@example.org", "America/New_York", 1)
        .await;
    app.subscribe(&user, &token, json!({"retailer": "Jetset"}))
        .await;
    app.at(&clock, "2026-11-01T04:59:00Z").await;
    assert!(mail.next(Duration::from_millis(700)).await.is_none());
    app.at(&clock, "2026-11-01T05:00:00Z").await;
    let (msg, _) = mail
        .next(Duration::from_secs(10))
        .await
        .expect("first 01:00");
    assert_eq!(msg["subject"], "1 new voucher for 2026-11-01");
    app.await_digest_status(&user, &token, "sent").await;
    // The second 01:00 (EST) is the same local date: nothing.
    app.at(&clock, "2026-11-01T06:00:00Z").await;
    assert!(mail.next(Duration::from_millis(700)).await.is_none());

    // Restart on the same store; an admin run for today finds it done.
    let dir = app.stop().await;
    let mut settings = test_settings(dir.path().join("data"));
    settings.delivery.email.transport = EmailTransportKind::Smtp;
    settings.delivery.email.smtp_url = format!("smtp://127.0.0.1:{}", mail.port);
    let app = spawn_with_clock(settings, dir, clock.clone()).await;
    app.at(&clock, "2026-11-01T06:30:00Z").await;
    let run: Value = app
        .call(
            Method::POST,
            "/api/v1/admin/digests/run",
            Some(&app.admin_token),
            Some(json!({"user_id": user})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(run, json!({"sent": 0, "skipped": 1}));
    assert!(mail.next(Duration::from_millis(700)).await.is_none());
    let digests = app.digests(&user, &token).await;
    assert_eq!(digests.len(), 1);
    assert_eq!(digests[0]["status"], "sent");
    mail.stop();
}

#[actix_web::test]
async fn smtp_down_is_retried_and_the_digest_arrives_when_it_is_back() {
    let port = free_port(); // nothing listens yet
    let feed = feed().await;
    let (app, clock) = spawn_at("2026-06-01T05:00:00Z", port, &feed, |s| {
        s.delivery.max_attempts = 5;
        s.delivery.retry_base_s = 10;
        s.delivery.retry_max_s = 10;
    })
    .await;
    let (user, token) = app
        .subscriber("later@example.org", "Europe/Berlin", 8)
        .await;
    app.subscribe(&user, &token, json!({"category": "home"}))
        .await;
    app.at(&clock, "2026-06-01T06:00:00Z").await; // 08:00 CEST
    let failed = app.await_digest_status(&user, &token, "failed").await;
    let delivery = &app.deliveries("?status=failed").await[0];
    assert_eq!(delivery["id"], failed["delivery_id"]);
    assert_eq!(delivery["attempts"], 1);
    assert!(
        delivery["last_error"].as_str().unwrap().contains("smtp"),
        "{delivery}"
    );
    // Back up; once the retry is due it goes out, nothing lost.
    let mut mail = MailServer::start_on(port).await;
    app.at(&clock, "2026-06-01T06:00:11Z").await;
    let (msg, _) = mail
        .next(Duration::from_secs(10))
        .await
        .expect("the retried digest");
    assert_eq!(msg["subject"], "2 new vouchers for 2026-06-01");
    let sent = app.await_digest_status(&user, &token, "sent").await;
    let delivery = app
        .deliveries("?status=sent")
        .await
        .into_iter()
        .find(|d| d["id"] == sent["delivery_id"])
        .unwrap();
    assert_eq!(delivery["attempts"], 2);
    mail.stop();
}

#[actix_web::test]
async fn smtp_down_for_good_dead_letters_visibly() {
    let port = free_port();
    let feed = feed().await;
    let (app, clock) = spawn_at("2026-06-01T05:00:00Z", port, &feed, |s| {
        s.delivery.max_attempts = 3;
        s.delivery.retry_base_s = 10;
        s.delivery.retry_max_s = 20;
    })
    .await;
    let (user, token) = app
        .subscriber("never@example.org", "Asia/Kolkata", 12)
        .await;
    app.subscribe(&user, &token, json!({"retailer": "Acme"}))
        .await;
    let mut t = utc("2026-06-01T06:30:00Z"); // 12:00 IST (+05:30)
    for _ in 0..60 {
        clock.set(t);
        app.actors.wake_all();
        tokio::time::sleep(Duration::from_millis(100)).await;
        if app
            .digests(&user, &token)
            .await
            .first()
            .is_some_and(|d| d["status"] == "dead")
        {
            break;
        }
        t += chrono::Duration::seconds(30);
    }
    let dead = app.deliveries("?status=dead").await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["attempts"], 3);
    assert_eq!(dead[0]["kind"], "digest");
    assert!(app.deliveries("?status=pending").await.is_empty());
    let notes = app.notifications().await;
    assert!(
        notes.iter().any(|n| n["kind"] == "delivery_failing"),
        "{notes:?}"
    );
    let res = app
        .call(Method::GET, "/api/v1/deliveries", Some(&token), None)
        .await;
    assert_problem(res, 403, "forbidden").await;
}

#[actix_web::test]
async fn unsubscribe_stops_the_next_digest_and_altered_links_are_refused() {
    let mut mail = MailServer::start().await;
    let feed = feed().await;
    let (app, clock) = spawn_at("2026-06-01T05:00:00Z", mail.port, &feed, |_| {}).await;
    let (user, token) = app
        .subscriber("bye@example.org", "Pacific/Chatham", 19)
        .await;
    app.subscribe(&user, &token, json!({"retailer": "Acme"}))
        .await;
    // 19:00 at +12:45 is 06:15 UTC.
    app.at(&clock, "2026-06-01T06:15:00Z").await;
    let (msg, _) = mail.next(Duration::from_secs(10)).await.expect("a digest");
    let link = header(&msg, "List-Unsubscribe")
        .trim_matches(|c| c == '<' || c == '>')
        .to_owned();
    let path = link.trim_start_matches(&app.url(""));
    let token_part = path.trim_start_matches("/unsubscribe/");

    // Altered or forged: refused, nothing changes.
    let mut altered = token_part.to_owned();
    altered.replace_range(
        altered.len() - 1..,
        if altered.ends_with('0') { "1" } else { "0" },
    );
    let res = app
        .call(Method::POST, &format!("/unsubscribe/{altered}"), None, None)
        .await;
    assert_problem(res, 404, "not_found").await;
    let res = app
        .call(Method::GET, "/unsubscribe/not-a-token", None, None)
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let me: Value = app.me(&token).await.json().await.unwrap();
    assert_eq!(me["digest_frequency"], "daily");

    // The page asks; it does not unsubscribe by itself (link scanners).
    let res = app.call(Method::GET, path, None, None).await;
    assert_eq!(res.status(), StatusCode::OK);
    // Whoever holds the link sees a masked address, not the address.
    let page = res.text().await.unwrap();
    assert!(page.contains("b***@e***.org"), "{page}");
    assert!(!page.contains("bye@example.org"), "{page}");
    let me: Value = app.me(&token).await.json().await.unwrap();
    assert_eq!(me["digest_frequency"], "daily");
    // One-click, as a mail client sends it.
    let res = app.one_click_unsubscribe(&app.url(path)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let me: Value = app.me(&token).await.json().await.unwrap();
    assert_eq!(me["digest_frequency"], "off");

    // New vouchers tomorrow would make a digest, but none is sent.
    feed.reset().await;
    Mock::given(method("GET"))
        .and(wiremock::matchers::path("/feed.csv"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            "id,retailer,category,title,description,code,url,starts,ends\n\
             a9,Acme,Home,New lamp deal,,LAMP,https://acme.example/l,2026-01-01,2027-12-31\n",
        ))
        .mount(&feed)
        .await;
    app.at(&clock, "2026-06-01T12:00:00Z").await;
    app.pull("shop").await;
    app.at(&clock, "2026-06-02T06:15:00Z").await;
    assert!(mail.next(Duration::from_millis(800)).await.is_none());
    assert_eq!(app.digests(&user, &token).await.len(), 1);
    mail.stop();
}

#[actix_web::test]
async fn subscriptions_crud_admin_run_file_transport_and_erasure() {
    let feed = feed().await;
    let (app, clock) = spawn_at("2026-06-01T05:00:00Z", 1, &feed, |s| {
        s.delivery.email.transport = EmailTransportKind::File;
    })
    .await;
    let (user, token) = app
        .subscriber("crud@example.org", "Europe/Berlin", 20)
        .await;
    let (other, other_token) = app.subscriber("other@example.org", "UTC", 8).await;

    let res = app
        .subscribe(&user, &token, json!({"retailer": "  Acme "}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let sub: Value = res.json().await.unwrap();
    assert_eq!(sub["retailer"], "Acme");
    let res = app
        .subscribe(&user, &token, json!({"retailer": "ACME"}))
        .await;
    assert_problem(res, 409, "conflict").await;
    for bad in [
        json!({}),
        json!({"retailer": "a", "category": "b"}),
        json!({"retailer": ""}),
        json!({"retailer": "x".repeat(201)}),
    ] {
        let res = app.subscribe(&user, &token, bad.clone()).await;
        assert_problem(res, 422, "validation_failed").await;
    }
    let res = app.subscribe(&user, &token, json!({"shop": "Acme"})).await;
    assert!(res.status().is_client_error());
    // Someone else's subscriptions are not there for a customer.
    let res = app
        .subscribe(&other, &token, json!({"retailer": "Acme"}))
        .await;
    assert_problem(res, 404, "not_found").await;
    let res = app
        .call(
            Method::GET,
            &format!("/api/v1/users/{user}/subscriptions"),
            Some(&other_token),
            None,
        )
        .await;
    assert_problem(res, 404, "not_found").await;
    let res = app
        .call(
            Method::POST,
            "/api/v1/admin/digests/run",
            Some(&token),
            None,
        )
        .await;
    assert_problem(res, 403, "forbidden").await;

    // A malformed body runs nothing (only an absent one means everyone).
    let raw = |content_type: &'static str, body: &'static str| {
        app.client
            .post(app.url("/api/v1/admin/digests/run"))
            .bearer_auth(&app.admin_token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    for (content_type, body, status) in [
        ("application/json", "{not json", 400),
        ("application/x-www-form-urlencoded", "user_id=1", 415),
        ("application/json", r#"{"user":"x"}"#, 422),
        ("application/json", r#"{"user_id":"not-an-id"}"#, 422),
    ] {
        let res = raw(content_type, body).await.unwrap();
        assert_eq!(res.status().as_u16(), status, "{content_type} {body}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{body}"
        );
    }

    // The admin sends today's digest now, ignoring the hour; a second run finds it done.
    let run = |body: Value| {
        app.call(
            Method::POST,
            "/api/v1/admin/digests/run",
            Some(&app.admin_token),
            Some(body),
        )
    };
    let first: Value = run(json!({"user_id": user})).await.json().await.unwrap();
    assert_eq!(first, json!({"sent": 1, "skipped": 0}));
    let again: Value = run(json!({})).await.json().await.unwrap();
    assert_eq!(again["sent"], 0, "{again}");
    let digest = app.await_digest_status(&user, &token, "sent").await;
    assert_eq!(digest["local_date"], "2026-06-01");
    // The file transport wrote the message as .eml.
    let eml = std::fs::read_to_string(
        app.store_dir
            .path()
            .join("data/mail")
            .join(format!("{}.eml", digest["delivery_id"].as_str().unwrap())),
    )
    .unwrap();
    assert!(eml.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
    assert!(eml.contains("SOFA10"));
    // The scheduled 20:00 digest of that day is not sent again.
    app.at(&clock, "2026-06-01T18:00:00Z").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.digests(&user, &token).await.len(), 1);

    // Unsubscribe from the retailer, then erase the user: digests and subscriptions go too.
    let id = sub["id"].as_str().unwrap();
    let sub_path = format!("/api/v1/users/{user}/subscriptions/{id}");
    let res = app
        .call(Method::DELETE, &sub_path, Some(&other_token), None)
        .await;
    assert_problem(res, 404, "not_found").await;
    let res = app
        .call(Method::DELETE, &sub_path, Some(&token), None)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app
        .call(Method::DELETE, &sub_path, Some(&token), None)
        .await;
    assert_problem(res, 404, "not_found").await;
    assert_eq!(
        app.delete_user(&user, &app.admin_token).await.status(),
        StatusCode::NO_CONTENT
    );
    assert!(app.deliveries("").await.is_empty());
    // The file transport's copy went with them.
    let eml_path = app
        .store_dir
        .path()
        .join("data/mail")
        .join(format!("{}.eml", digest["delivery_id"].as_str().unwrap()));
    assert!(
        !eml_path.exists(),
        "{} outlived its recipient",
        eml_path.display()
    );
    let res = app
        .call(
            Method::GET,
            &format!("/api/v1/users/{user}/digests"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_problem(res, 404, "not_found").await;
}

#[actix_web::test]
async fn a_user_follows_at_most_the_configured_number_of_targets() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path().join("data"));
    settings.subscriptions.max_per_user = 2;
    let app = crate::helpers::spawn_with(settings, dir).await;
    let (user, token) = app.customer("many@x.io").await;
    for target in [json!({"retailer": "A"}), json!({"category": "B"})] {
        let res = app.subscribe(&user, &token, target).await;
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let res = app.subscribe(&user, &token, json!({"retailer": "C"})).await;
    let problem = assert_problem(res, 409, "conflict").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("at most 2"),
        "{problem}"
    );
    // Unfollowing one makes room again.
    let subs: Value = app
        .call(
            Method::GET,
            &format!("/api/v1/users/{user}/subscriptions"),
            Some(&token),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(subs["items"].as_array().unwrap().len(), 2);
    let first = subs["items"][0]["id"].as_str().unwrap();
    let res = app
        .call(
            Method::DELETE,
            &format!("/api/v1/users/{user}/subscriptions/{first}"),
            Some(&token),
            None,
        )
        .await;
    assert!(res.status().is_success());
    let res = app.subscribe(&user, &token, json!({"retailer": "C"})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[actix_web::test]
async fn a_users_subscriptions_are_listed_a_page_at_a_time() {
    let app = crate::helpers::spawn_app().await;
    let (user, token) = app.customer("pages@x.io").await;
    for name in ["A", "B", "C"] {
        let res = app
            .subscribe(&user, &token, json!({"retailer": name}))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let page = |query: String| {
        let app = &app;
        let path = format!("/api/v1/users/{user}/subscriptions{query}");
        let token = token.clone();
        async move {
            let res = app.call(Method::GET, &path, Some(&token), None).await;
            assert_eq!(res.status(), StatusCode::OK);
            res.json::<Value>().await.unwrap()
        }
    };
    let first = page("?limit=2".into()).await;
    let names: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["retailer"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["A", "B"], "oldest first");
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let second = page(format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert_eq!(second["items"][0]["retailer"], "C");
    assert!(second["next_cursor"].is_null());
    let bad = app
        .call(
            Method::GET,
            &format!("/api/v1/users/{user}/subscriptions?limit=0"),
            Some(&token),
            None,
        )
        .await;
    assert_problem(bad, 400, "validation_failed").await;
}

#[actix_web::test]
async fn a_digest_leaves_only_once_the_write_that_made_it_is_on_disk() {
    use voucherd::store::failpoints::Failpoint;
    let mut mail = MailServer::start().await;
    let feed = feed().await;
    let (app, _clock) = spawn_at("2026-06-01T05:00:00Z", mail.port, &feed, |_| {}).await;
    let (user, token) = app.subscriber("disk@x.io", "Europe/Paris", 8).await;
    let res = app
        .subscribe(&user, &token, json!({"retailer": "Acme"}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    // A slow disk: the run's write is applied at once but on disk only a quarter second later,
    // and then the disk fails, so that write never becomes durable.
    app.store.failpoints.arm(Failpoint::SlowFlush);
    let run = app.call(
        Method::POST,
        "/api/v1/admin/digests/run",
        Some(&app.admin_token),
        None,
    );
    let meanwhile = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The dispatcher is woken (as any other write would wake it) while the digest waits
        // for the disk.
        for _ in 0..10 {
            app.actors.outbox_wake.notify_one();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        app.store.failpoints.arm(Failpoint::Flush);
        for _ in 0..10 {
            app.actors.outbox_wake.notify_one();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let (res, ()) = tokio::join!(run, meanwhile);
    assert_problem(res, 503, "overloaded").await;
    assert!(
        mail.next(Duration::from_secs(2)).await.is_none(),
        "a digest whose write never reached the disk was sent"
    );
}
