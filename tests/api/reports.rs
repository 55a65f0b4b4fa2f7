//! Campaign reports agree with a scripted sequence of claims, redemptions and a rollback, before
//! and after a restart.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::campaigns::window;
use crate::helpers::{spawn_with, test_settings};

#[actix_web::test]
async fn a_report_tells_what_happened_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(test_settings(dir.path().join("data")), dir).await;
    let (starts, ends) = window();
    let c = app
        .campaign(
            json!({"name": "report", "kind": "discount", "discount": {"percent": 50},
            "pool_size": 10, "starts_at": starts, "ends_at": ends, "per_customer_limit": 10,
            "timezone": "Asia/Kolkata"}),
        )
        .await;
    let id = c["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.add_codes(&id, json!({"count": 10})).await.status(),
        StatusCode::CREATED
    );
    let (_, token) = app.customer("reported@example.org").await;
    let mut codes = Vec::new();
    for _ in 0..4 {
        let res = app.claim(&id, &token, None).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        codes.push(
            res.json::<Value>().await.unwrap()["code"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mut redemptions = Vec::new();
    for code in &codes[..2] {
        let res = app
            .redeem(json!({"code": code, "order_amount_cents": 1000}))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        redemptions.push(
            res.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(app.rollback(&redemptions[0]).await.status(), StatusCode::OK);
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Kolkata)
        .date_naive()
        .to_string();
    let expected = json!({
        "campaign_id": id, "codes_total": 10, "claimed": 4, "redeemed": 1,
        "redemption_rate": 0.25, "discount_cents_total": 500,
        "by_day": [{"date": today, "claimed": 4, "redeemed": 1, "discount_cents": 500}],
        "top_inapplicable_reasons": [],
    });
    let path = format!("/api/v1/reports/campaigns/{id}");
    assert_eq!(app.get_json(&path, &app.admin_token).await, expected);
    // Customers do not see reports.
    let res = app.call(Method::GET, &path, Some(&token), None).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // The chart: SVG that parses and names its series, its day and what the axes count; PNG too.
    let chart = format!("{path}/chart.svg");
    let res = app
        .call(Method::GET, &chart, Some(&app.admin_token), None)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
    let svg = res.text().await.unwrap();
    let mut reader = quick_xml::Reader::from_str(&svg);
    let (mut texts, mut root) = (Vec::new(), None);
    loop {
        match reader.read_event().unwrap() {
            quick_xml::events::Event::Start(e) if root.is_none() => {
                root = Some(String::from_utf8_lossy(e.name().as_ref()).into_owned());
            }
            quick_xml::events::Event::Text(t) => {
                texts.push(String::from_utf8_lossy(t.as_ref()).into_owned())
            }
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(root.as_deref(), Some("svg"));
    for wanted in ["Claims", "Redemptions", today.as_str()] {
        assert!(
            texts.iter().any(|t| t.contains(wanted)),
            "{wanted} not in {texts:?}"
        );
    }
    assert!(
        texts.iter().any(|t| t.contains("Asia/Kolkata")),
        "{texts:?}"
    );
    let res = app
        .call(
            Method::GET,
            &format!("{chart}?format=png"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(res.headers()["content-type"], "image/png");
    assert!(res.bytes().await.unwrap().starts_with(b"\x89PNG\r\n\x1a\n"));
    let res = app.call(Method::GET, &chart, Some(&token), None).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // The figures reach /metrics too (counters are shared by the tests of this process: present,
    // not exact).
    let metrics = app
        .call(Method::GET, "/metrics", None, None)
        .await
        .text()
        .await
        .unwrap();
    for line in [
        "voucherd_redemptions_total{result=\"redeemed\"}",
        "voucherd_redemptions_total{result=\"rolled_back\"}",
        "voucherd_claims_total{result=\"ok\"}",
        "voucherd_http_requests_total{method=\"POST\",route=\"/api/v1/campaigns/{id}/claims\",status=\"201\"}",
        // the writer's batch sizes and flush latency
        "voucherd_store_writer_batch{quantile=",
        "voucherd_store_flush_seconds{quantile=",
    ] {
        assert!(metrics.contains(line), "{line} missing");
    }
    // Rebuilt from the records after a restart: the same.
    let dir = app.stop().await;
    let app = spawn_with(test_settings(dir.path().join("data")), dir).await;
    assert_eq!(app.get_json(&path, &app.admin_token).await, expected);
}

/// Every metric the shipped Grafana dashboard queries is one the server records.
#[test]
fn the_grafana_dashboard_reads_metrics_the_server_records() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("docs/grafana-dashboard.json")).unwrap(),
    )
    .unwrap();
    let mut source = String::new();
    let mut dirs = vec![root.join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                source.push_str(&std::fs::read_to_string(path).unwrap());
            }
        }
    }
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for name in expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("voucherd_"))
            {
                queried += 1;
                assert!(
                    source.contains(&format!("\"{name}\"")),
                    "the dashboard queries {name}, which nothing records"
                );
            }
        }
    }
    assert!(queried >= 10);
}

#[actix_web::test]
async fn the_overview_counts_campaigns_and_deliveries_by_channel_and_outcome() {
    use crate::distributions::{smtp_settings, webhook};
    use crate::helpers::MailServer;
    use std::time::Duration;
    use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};

    let mut mail = MailServer::start().await;
    let gone = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(410))
        .mount(&gone)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = smtp_settings(&dir, &mail);
    settings.webhooks = vec![webhook("gone", gone.uri())];
    let app = spawn_with(settings.clone(), dir).await;
    let campaign = app.active_campaign(5, 1).await;
    let mut customers = Vec::new();
    for i in 0..3 {
        customers.push(app.customer(&format!("o{i}@example.org")).await.0);
    }
    let res = app
        .distribute(
            &campaign,
            json!({"customers": [customers[0], customers[1]], "channel": "email"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let res = app
        .distribute(
            &campaign,
            json!({"customers": [customers[2]], "channel": "webhook", "webhook": "gone"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    for _ in 0..2 {
        mail.next(Duration::from_secs(10)).await.expect("an email");
    }
    let channel = |o: &Value, name: &str| {
        o["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["channel"] == name)
            .unwrap()
            .clone()
    };
    let path = "/api/v1/reports/overview";
    let mut overview = Value::Null;
    for _ in 0..200 {
        overview = app.get_json(path, &app.admin_token).await;
        if channel(&overview, "email")["sent"] == 2 && channel(&overview, "webhook")["dead"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let expected_deliveries = |o: &Value| {
        assert_eq!(
            channel(o, "email"),
            json!({"channel": "email", "pending": 0, "sending": 0, "retrying": 0, "sent": 2,
                "failed_attempts": 0, "dead": 0})
        );
        assert_eq!(
            channel(o, "webhook"),
            json!({"channel": "webhook", "pending": 0, "sending": 0, "retrying": 0, "sent": 0,
                "failed_attempts": 0, "dead": 1})
        );
        assert_eq!(channel(o, "sms")["sent"], 0);
    };
    expected_deliveries(&overview);
    let mut recent: Vec<(String, String, String)> = overview["recent_deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let s = |k: &str| d[k].as_str().unwrap().to_owned();
            (s("channel"), s("kind"), s("status"))
        })
        .collect();
    recent.sort();
    let at = |c: &str, s: &str| (c.to_owned(), "code".to_owned(), s.to_owned());
    assert_eq!(
        recent,
        [
            at("email", "sent"),
            at("email", "sent"),
            at("webhook", "dead")
        ]
    );
    assert_eq!(
        overview["campaigns"],
        json!({"draft": 0, "scheduled": 0, "active": 1, "paused": 0, "ended": 0})
    );
    assert_eq!(overview["digests_by_day"], json!([]));
    assert_eq!(overview["code_requests"], json!([]));
    assert_eq!(overview["vouchers_total"], 0);
    // Customers do not see it.
    let (_, token) = app.customer("nosy@example.org").await;
    let res = app.call(Method::GET, path, Some(&token), None).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // Ending the campaign moves it; the outcomes are the same after a restart.
    let res = app.end_campaign(&campaign).await;
    assert_eq!(res.status(), StatusCode::OK);
    let dir = app.stop().await;
    let app = spawn_with(settings, dir).await;
    let overview = app.get_json(path, &app.admin_token).await;
    expected_deliveries(&overview);
    assert_eq!(overview["campaigns"]["ended"], 1);
    assert_eq!(
        overview["recent_deliveries"],
        json!([]),
        "recent attempts are those since the start"
    );
    mail.stop();
}
