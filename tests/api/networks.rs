//! Affiliate networks against real HTTP servers (wiremock) speaking each network's format: paging,
//! auth as each network expects, faults, timeouts, server errors, idempotent re-pulls, restarts.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use voucherd::feeds::{FeedKind, FieldMap};
use wiremock::matchers::{
    basic_auth, bearer_token, body_partial_json, header, method, path, query_param,
};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{
    assert_problem, dated, fixture, fixture_url, network, spawn_with, spawn_with_networks,
    test_settings,
};

fn ids(items: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = items
        .iter()
        .map(|v| v["external_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn awin_page(page: u32, total: u32, rows: &[(u32, &str, Option<&str>)]) -> Value {
    let data: Vec<Value> = rows
        .iter()
        .map(|(id, retailer, code)| {
            json!({
                "promotionId": id,
                "type": "voucher",
                "advertiser": {"id": 1, "name": retailer},
                "title": format!("offer {id}"),
                "startDate": dated("2026-01-01T00:00:00+00:00"),
                "endDate": dated("2099-01-01T00:00:00+01:00"),
                "urlTracking": format!("https://awin.example/t/{id}"),
                "voucher": code.map(|c| json!({"code": c})),
            })
        })
        .collect();
    json!({"data": data, "pagination": {"page": page, "pageSize": 2, "total": total}})
}

#[actix_web::test]
async fn awin_pages_with_a_bearer_token_and_a_filter_body() {
    let server = MockServer::start().await;
    for (page, rows) in [
        (1, vec![(1, "Northwind", Some("A1")), (2, "Contoso", None)]),
        (2, vec![(3, " northwind ", Some("A3"))]),
    ] {
        Mock::given(method("POST"))
            .and(path("/publisher/777/promotions"))
            .and(bearer_token("awin-secret"))
            .and(body_partial_json(
                json!({"pagination": {"page": page}, "filters": {"membership": "joined"}}),
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(awin_page(page, 3, &rows)))
            .mount(&server)
            .await;
    }
    let mut awin = network(
        "awin",
        FeedKind::Awin,
        &format!("{}/publisher/{{account}}/promotions", server.uri()),
    );
    awin.token = "awin-secret".into();
    awin.account = "777".into();
    let app = spawn_with_networks(vec![awin]).await;

    let state = app.network_state("awin").await;
    assert_eq!(state["state"], "ok", "{state}");
    assert_eq!(state["last_summary"]["pages"], 2);
    assert_eq!(state["last_summary"]["inserted"], 3);
    assert_eq!(state["vouchers_active"], 3);
    let items = app.all_vouchers("network=awin", 50).await;
    assert_eq!(ids(&items), ["1", "2", "3"]);
    let no_code = items.iter().find(|v| v["external_id"] == "2").unwrap();
    assert!(no_code["code"].is_null());
    assert_eq!(no_code["url"], "https://awin.example/t/2");
    // One retailer per case-folded name: " northwind " joined "Northwind".
    let retailers: Value = app
        .call(Method::GET, "/api/v1/retailers", None, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        retailers["items"],
        json!([{"name": "Contoso", "active_vouchers": 1}, {"name": "Northwind", "active_vouchers": 2}])
    );
}

#[actix_web::test]
async fn cj_pages_by_page_number_and_reads_na_as_no_code() {
    let server = MockServer::start().await;
    let page1 = fixture("cj-link-search.xml").replace("total-matched=\"2\"", "total-matched=\"3\"");
    let page2 = dated(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<cj-api><links total-matched="3" records-returned="1" page-number="2"><link>
  <advertiser-name>Fabrikam Shoes</advertiser-name><category>Apparel &amp; Accessories</category>
  <coupon-code></coupon-code><description>Socks</description><link-id>99</link-id>
  <link-name>Socks 3 for 2</link-name><promotion-start-date>2026-11-01 00:00:00.0</promotion-start-date>
  <promotion-end-date>N/A</promotion-end-date><clickUrl>https://www.anrdoezrs.net/click-99</clickUrl>
</link></links></cj-api>"#,
    );
    for (page, body) in [("1", page1), ("2", page2)] {
        Mock::given(method("GET"))
            .and(path("/v2/link-search"))
            .and(query_param("page-number", page))
            .and(query_param("website-id", "1234"))
            .and(bearer_token("cj-token"))
            .respond_with(ResponseTemplate::new(200).set_body_string(body))
            .mount(&server)
            .await;
    }
    let mut cj = network(
        "cj",
        FeedKind::Cj,
        &format!("{}/v2/link-search", server.uri()),
    );
    cj.token = "cj-token".into();
    cj.account = "1234".into();
    let app = spawn_with_networks(vec![cj]).await;

    let state = app.network_state("cj").await;
    assert_eq!(state["state"], "ok", "{state}");
    let items = app.all_vouchers("network=cj", 50).await;
    assert_eq!(ids(&items), ["13579246", "24681357", "99"]);
    let travel = items
        .iter()
        .find(|v| v["external_id"] == "24681357")
        .unwrap();
    assert!(travel["code"].is_null(), "N/A is no code");
    assert!(travel["ends_at"].is_null(), "empty end date is none");
    let socks = items.iter().find(|v| v["external_id"] == "99").unwrap();
    assert!(socks["code"].is_null() && socks["ends_at"].is_null());
    let shoes = app.vouchers("?category=apparel%20%26%20accessories").await;
    assert_eq!(shoes["items"].as_array().unwrap().len(), 2);
}

#[actix_web::test]
async fn a_rakuten_fault_on_a_later_page_ingests_nothing_and_deletes_nothing() {
    let server = MockServer::start().await;
    let page1 = fixture("rakuten-coupons.xml")
        .replace("<TotalPages>1</TotalPages>", "<TotalPages>2</TotalPages>");
    let page2 = dated(
        r#"<?xml version="1.0"?><couponfeed><TotalMatches>3</TotalMatches><TotalPages>2</TotalPages>
<PageNumberRequested>2</PageNumberRequested><link type="TEXT"><categories><category id="3">Electronics</category></categories>
<offerdescription>Cables half price</offerdescription><offerstartdate>2026-11-01</offerstartdate>
<offerenddate>2099-11-30</offerenddate><couponcode>CABLE50</couponcode>
<clickurl>https://click.linksynergy.com/fs-bin/click?id=abc&amp;offerid=333.3</clickurl>
<advertiserid>41234</advertiserid><advertisername>Litware Electronics</advertisername></link></couponfeed>"#,
    );
    let mount = |page: &'static str, body: String| {
        Mock::given(method("GET"))
            .and(path("/coupon/1.0"))
            .and(query_param("pagenumber", page))
            .and(bearer_token("rk-token"))
            .respond_with(ResponseTemplate::new(200).set_body_string(body))
    };
    mount("1", page1.clone()).mount(&server).await;
    let good_page2 = mount("2", page2).mount_as_scoped(&server).await;
    let mut rakuten = network(
        "rakuten",
        FeedKind::Rakuten,
        &format!("{}/coupon/1.0", server.uri()),
    );
    rakuten.token = "rk-token".into();
    let app = spawn_with_networks(vec![rakuten]).await;
    let before = app.all_vouchers("network=rakuten&active=false", 50).await;
    assert_eq!(before.len(), 3);
    assert_eq!(app.network_state("rakuten").await["state"], "ok");

    // Page 1 now changes a title, page 2 answers a fault inside an HTTP 200.
    drop(good_page2);
    server.reset().await;
    mount("1", page1.replace("10% off garden furniture", "CHANGED"))
        .mount(&server)
        .await;
    mount("2", fixture("rakuten-fault.xml"))
        .mount(&server)
        .await;
    let answer = app.pull("rakuten").await;
    assert_eq!(answer["ok"], false, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("Invalid or unapproved token"),
        "{answer}"
    );
    assert_eq!(answer["inserted"], 0);
    assert_eq!(answer["updated"], 0);

    let after = app.all_vouchers("network=rakuten&active=false", 50).await;
    assert_eq!(after, before, "a fault ingests nothing and deletes nothing");
    let state = app.network_state("rakuten").await;
    assert_eq!(state["state"], "degraded");
    assert!(
        state["last_error"]
            .as_str()
            .unwrap()
            .contains("Invalid or unapproved token")
    );
    assert_eq!(state["vouchers_active"], 3, "all three are active today");
}

/// A paging feed of three awin pages (two vouchers each but the last), as a mock server.
async fn three_awin_pages(title_prefix: &str) -> MockServer {
    let server = MockServer::start().await;
    for page in 1..=3u32 {
        let rows: Vec<(u32, &str, Option<&str>)> = (page * 2 - 1..=(page * 2).min(5))
            .map(|id| (id, "Northwind", None))
            .collect();
        let mut body = awin_page(page, 5, &rows);
        for row in body["data"].as_array_mut().unwrap() {
            row["title"] = json!(format!("{title_prefix} {}", row["promotionId"]));
        }
        Mock::given(method("POST"))
            .and(body_partial_json(json!({"pagination": {"page": page}})))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(&server)
            .await;
    }
    server
}

#[actix_web::test]
async fn a_pull_over_its_page_or_byte_bounds_is_refused_and_changes_nothing() {
    let server = three_awin_pages("first").await;
    let awin = network("awin", FeedKind::Awin, &format!("{}/p", server.uri()));
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path().join("data"));
    settings.networks = vec![awin];
    let app = spawn_with(settings, dir).await;
    app.await_first_pulls().await;
    let before = app.all_vouchers("network=awin&active=false", 50).await;
    assert_eq!(before.len(), 5);

    // Pages 1 and 2 change (and would be applied as they arrive) but the feed has a third page
    // past the bound: the pull fails, and nothing it read stays.
    let dir = app.stop().await;
    server.reset().await;
    let server = three_awin_pages("second").await;
    let mut settings = test_settings(dir.path().join("data"));
    settings.catalogue.max_pages = 2;
    settings.networks = vec![network(
        "awin",
        FeedKind::Awin,
        &format!("{}/p", server.uri()),
    )];
    let app = spawn_with(settings, dir).await;
    let answer = app.pull("awin").await;
    assert_eq!(answer["ok"], false, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("catalogue.max_pages (2)"),
        "{answer}"
    );
    assert_eq!(answer["inserted"], 0);
    assert_eq!(answer["updated"], 0);
    let after = app.all_vouchers("network=awin&active=false", 50).await;
    assert_eq!(after, before, "a refused pull changes nothing");

    // The byte bound: a 1 MiB pull limit and pages of ~0.6 MiB each.
    let dir = app.stop().await;
    let big = MockServer::start().await;
    for page in 1..=2u32 {
        let mut body = awin_page(
            page,
            4,
            &[
                (page * 10, "Contoso", None),
                (page * 10 + 1, "Contoso", None),
            ],
        );
        body["data"][0]["description"] = json!("x".repeat(600 * 1024));
        Mock::given(method("POST"))
            .and(body_partial_json(json!({"pagination": {"page": page}})))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(&big)
            .await;
    }
    let mut settings = test_settings(dir.path().join("data"));
    settings.catalogue.max_pull_mb = 1;
    settings.catalogue.max_response_mb = 1;
    settings.networks = vec![network("awin", FeedKind::Awin, &format!("{}/p", big.uri()))];
    let app = spawn_with(settings, dir).await;
    let answer = app.pull("awin").await;
    assert_eq!(answer["ok"], false, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("catalogue.max_pull_mb"),
        "{answer}"
    );
    let after = app.all_vouchers("network=awin&active=false", 50).await;
    assert_eq!(after, before, "nothing of the first page stays either");
}

#[actix_web::test]
async fn a_next_page_on_another_host_or_read_before_ends_the_pull() {
    let uri = "/Mediapartners/IRabc123/PromoCodes";
    for (next, error) in [
        // Credentials never go to another host.
        ("http://collector.example/steal", "another host"),
        // A page naming the first one again would loop.
        (uri, "already read"),
    ] {
        let server = MockServer::start().await;
        let page1 = fixture("impact-promocodes-page1.json")
            .replace("/Mediapartners/IRabc123/PromoCodes?PageSize=1&Page=2", next);
        Mock::given(method("GET"))
            .and(path(uri))
            .respond_with(ResponseTemplate::new(200).set_body_string(page1))
            .mount(&server)
            .await;
        let mut impact = network(
            "impact",
            FeedKind::Impact,
            &format!("{}{uri}", server.uri()),
        );
        impact.account = "IRabc123".into();
        impact.token = "impact-token".into();
        let app = spawn_with_networks(vec![impact]).await;
        let answer = app.pull("impact").await;
        assert_eq!(answer["ok"], false, "{answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(error),
            "{next}: {answer}"
        );
        assert!(
            app.all_vouchers("network=impact&active=false", 50)
                .await
                .is_empty()
        );
        let requests = server.received_requests().await.unwrap();
        assert!(
            requests.iter().all(|r| r.url.path() == uri),
            "nothing was asked of another host"
        );
    }
}

#[actix_web::test]
async fn a_feed_in_the_charset_its_content_type_names_ingests_like_utf8() {
    let server = MockServer::start().await;
    let body = awin_page(1, 1, &[(1, "Café Crème", Some("LATTE"))]).to_string();
    let latin1: Vec<u8> = body
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap())
        .collect();
    assert!(std::str::from_utf8(&latin1).is_err(), "really not UTF-8");
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(latin1, "application/json; charset=ISO-8859-1"),
        )
        .mount(&server)
        .await;
    let awin = network("awin", FeedKind::Awin, &format!("{}/p", server.uri()));
    let app = spawn_with_networks(vec![awin]).await;
    let state = app.network_state("awin").await;
    assert_eq!(state["state"], "ok", "{state}");
    let items = app.all_vouchers("network=awin", 50).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["retailer"], "Café Crème");
}

#[actix_web::test]
async fn impact_follows_the_relative_next_page_with_basic_auth_and_flags_patterns() {
    let server = MockServer::start().await;
    let uri = "/Mediapartners/IRabc123/PromoCodes";
    Mock::given(method("GET"))
        .and(path(uri))
        .and(query_param("Page", "2"))
        .and(basic_auth("IRabc123", "impact-token"))
        .and(header("accept", "application/json"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(fixture("impact-promocodes-page2.json")),
        )
        .with_priority(1)
        .expect(1..)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(uri))
        .and(basic_auth("IRabc123", "impact-token"))
        .and(header("accept", "application/json"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(fixture("impact-promocodes-page1.json")),
        )
        .with_priority(2)
        .mount(&server)
        .await;
    let mut impact = network(
        "impact",
        FeedKind::Impact,
        &format!("{}{uri}", server.uri()),
    );
    impact.account = "IRabc123".into();
    impact.token = "impact-token".into();
    let app = spawn_with_networks(vec![impact]).await;

    let items = app.all_vouchers("network=impact", 50).await;
    assert_eq!(ids(&items), ["90001", "90002"]);
    let pattern = items.iter().find(|v| v["external_id"] == "90002").unwrap();
    assert_eq!(pattern["code"], "GYM-[A-Z]{4}");
    assert_eq!(pattern["code_is_pattern"], true);
    assert_eq!(pattern["retailer"], "Woodgrove Fitness");
    let literal = items.iter().find(|v| v["external_id"] == "90001").unwrap();
    assert_eq!(literal["code_is_pattern"], false);
    assert_eq!(
        literal["starts_at"],
        dated("2026-11-02T08:00:00Z"),
        "offset -08:00 to UTC"
    );
}

#[actix_web::test]
async fn tradedoubler_sends_its_token_in_the_query_and_dates_in_epoch_millis() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/1.0/vouchers.json"))
        .and(query_param("token", "td-token"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(fixture("tradedoubler-vouchers.json")),
        )
        .expect(1..)
        .mount(&server)
        .await;
    let mut td = network(
        "td",
        FeedKind::Tradedoubler,
        &format!("{}/1.0/vouchers.json", server.uri()),
    );
    td.token = "td-token".into();
    let app = spawn_with_networks(vec![td]).await;
    let items = app.all_vouchers("network=td", 50).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["starts_at"], dated("2026-11-13T00:00:00Z"));
    assert_eq!(items[0]["ends_at"], dated("2026-12-31T23:59:59Z"));
    assert_eq!(items[0]["code"], "GLOW12");
}

#[actix_web::test]
async fn csv_and_json_feeds_read_files_with_their_mapping() {
    let mut json_net = network(
        "awin-as-json",
        FeedKind::Json,
        &fixture_url("awin-promotions.json"),
    );
    json_net.map = Some(FieldMap {
        items: "data".into(),
        external_id: "promotionId".into(),
        retailer: "advertiser.name".into(),
        code: "voucher.code".into(),
        url: "urlTracking".into(),
        starts_at: "startDate".into(),
        ends_at: "endDate".into(),
        ..FieldMap::default()
    });
    let app = spawn_with_networks(vec![
        network("generic", FeedKind::Csv, &fixture_url("generic.csv")),
        json_net,
    ])
    .await;
    let csv = app.all_vouchers("network=generic&active=false", 50).await;
    assert_eq!(ids(&csv), ["g-1", "g-2"]);
    let json = app
        .all_vouchers("network=awin-as-json&active=false", 50)
        .await;
    assert_eq!(ids(&json), ["812345", "812346"]);
    let tent = json.iter().find(|v| v["external_id"] == "812345").unwrap();
    assert_eq!(tent["retailer"], "Northwind Outdoor");
    assert_eq!(tent["code"], "TENT15");
    for n in app.networks().await {
        assert_eq!(n["state"], "ok", "{n}");
    }
}

#[actix_web::test]
async fn a_re_pull_updates_changes_never_duplicates_and_keeps_first_seen() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("feed.csv");
    let write = |rows: &[&str]| {
        let mut text = "id,retailer,category,title,code,url,starts,ends\n".to_owned();
        for r in rows {
            text.push_str(r);
            text.push('\n');
        }
        std::fs::write(&feed, dated(&text)).unwrap();
    };
    write(&[
        "a,Shop,Toys,Ten percent,TEN,https://shop.example/a,2026-01-01,2099-01-01",
        "b,Shop,Toys,Free wrap,,https://shop.example/b,2026-01-01,",
        "c,Shop,,Broken dates,X,https://shop.example/c,soon,later",
    ]);
    let app = spawn_with_networks(vec![network(
        "shop",
        FeedKind::Csv,
        &format!("file://{}", feed.display()),
    )])
    .await;
    let first = app.network_state("shop").await;
    assert_eq!(
        first["state"], "degraded",
        "a rejected row degrades: {first}"
    );
    assert_eq!(first["last_summary"]["inserted"], 2);
    assert_eq!(first["last_summary"]["rejected"], 1);
    assert!(
        first["last_summary"]["errors"][0]
            .as_str()
            .unwrap()
            .contains("row 3"),
        "{first}"
    );
    let before = app.all_vouchers("network=shop", 50).await;

    let again = app.pull("shop").await;
    assert_eq!(
        (
            again["inserted"].as_u64(),
            again["updated"].as_u64(),
            again["unchanged"].as_u64()
        ),
        (Some(0), Some(0), Some(2))
    );
    assert_eq!(app.all_vouchers("network=shop", 50).await, before);

    write(&[
        "a,Shop,Toys,Fifteen percent,FIFTEEN,https://shop.example/a,2026-01-01,2099-01-01",
        "b,Shop,Toys,Free wrap,,https://shop.example/b,2026-01-01,",
        "d,Shop,Toys,New one,NEW,https://shop.example/d,2026-01-01,",
    ]);
    let changed = app.pull("shop").await;
    assert_eq!(
        (
            changed["inserted"].as_u64(),
            changed["updated"].as_u64(),
            changed["unchanged"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(app.network_state("shop").await["state"], "ok");
    let after = app.all_vouchers("network=shop", 50).await;
    assert_eq!(ids(&after), ["a", "b", "d"]);
    let old_a = before.iter().find(|v| v["external_id"] == "a").unwrap();
    let new_a = after.iter().find(|v| v["external_id"] == "a").unwrap();
    assert_eq!(new_a["id"], old_a["id"], "same voucher, updated in place");
    assert_eq!(new_a["first_seen_at"], old_a["first_seen_at"]);
    assert_eq!(new_a["code"], "FIFTEEN");
    assert_ne!(new_a["updated_at"], old_a["updated_at"]);
}

#[actix_web::test]
async fn timeouts_and_server_errors_fail_back_off_turn_failing_and_notify_admins() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/slow"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string("[]")
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/broken"))
        .respond_with(ResponseTemplate::new(500).set_body_string("upstream exploded"))
        .mount(&server)
        .await;
    let mut slow = network(
        "slow",
        FeedKind::Tradedoubler,
        &format!("{}/slow", server.uri()),
    );
    slow.timeout_s = 1;
    let broken = network(
        "broken",
        FeedKind::Tradedoubler,
        &format!("{}/broken", server.uri()),
    );
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path().join("data"));
    settings.networks = vec![slow, broken];
    settings.catalogue.failing_after = 2;
    settings.catalogue.retry_base_s = 600;
    settings.catalogue.retry_max_s = 3600;
    let app = spawn_with(settings, dir).await;
    app.await_first_pulls().await;

    let slow = app.network_state("slow").await;
    assert_eq!(slow["state"], "degraded", "{slow}");
    assert!(
        slow["last_error"]
            .as_str()
            .unwrap()
            .contains("no answer within 1 s"),
        "{slow}"
    );
    let broken = app.network_state("broken").await;
    assert!(
        broken["last_error"].as_str().unwrap().contains("HTTP 500"),
        "{broken}"
    );
    // Backoff: the next attempt is 300-600 s away (base 600 s, jitter 0.5-1), not the schedule's.
    let last: chrono::DateTime<chrono::Utc> =
        broken["last_pull_at"].as_str().unwrap().parse().unwrap();
    let next: chrono::DateTime<chrono::Utc> =
        broken["next_pull_at"].as_str().unwrap().parse().unwrap();
    let wait = (next - last).num_seconds();
    assert!((299..=600).contains(&wait), "backoff wait {wait} s");

    let answer = app.pull("broken").await;
    assert_eq!(answer["ok"], false);
    assert_eq!(answer["state"], "failing");
    let notes = app.notifications().await;
    let failing: Vec<&Value> = notes
        .iter()
        .filter(|n| n["kind"] == "network_failing")
        .collect();
    assert_eq!(failing.len(), 1, "{notes:?}");
    assert_eq!(failing[0]["subject"], "broken");
    // Still failing: no second notification.
    app.pull("broken").await;
    let notes = app.notifications().await;
    assert_eq!(notes.len(), 1);
    // The actor lives on: the readiness probe pings it.
    let ready = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status(), StatusCode::OK);
}

#[actix_web::test]
async fn a_response_over_the_size_cap_fails_the_pull() {
    let server = MockServer::start().await;
    let big = format!("[{}]", vec!["{\"id\":1}"; 200_000].join(","));
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string(big))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path().join("data"));
    settings.networks = vec![network("big", FeedKind::Tradedoubler, &server.uri())];
    settings.catalogue.max_response_mb = 1;
    let app = spawn_with(settings, dir).await;
    app.await_first_pulls().await;
    let state = app.network_state("big").await;
    assert!(
        state["last_error"]
            .as_str()
            .unwrap()
            .contains("larger than 1048576 bytes"),
        "{state}"
    );
}

#[actix_web::test]
async fn the_schedule_pulls_and_a_failed_pull_is_retried_after_backoff() {
    let server = MockServer::start().await;
    let failing = Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount_as_scoped(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path().join("data"));
    let mut n = network("td", FeedKind::Tradedoubler, &server.uri());
    n.schedule = voucherd::config::Schedule::parse("*/1 * * * * *").unwrap();
    settings.networks = vec![n];
    settings.catalogue.retry_base_s = 1;
    let app = spawn_with(settings, dir).await;
    app.await_first_pulls().await;
    assert!(
        app.network_state("td").await["last_error"]
            .as_str()
            .unwrap()
            .contains("HTTP 503")
    );
    drop(failing);
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(fixture("tradedoubler-vouchers.json")),
        )
        .mount(&server)
        .await;
    // No request from the test: the backoff retry, then the every-second schedule, pull by themselves.
    let mut state = Value::Null;
    for _ in 0..100 {
        state = app.network_state("td").await;
        if state["state"] == "ok" && state["vouchers_active"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state["state"], "ok", "{state}");
    let pulls_before = server.received_requests().await.unwrap().len();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let pulls_after = server.received_requests().await.unwrap().len();
    assert!(
        pulls_after > pulls_before,
        "the schedule keeps pulling: {pulls_before} → {pulls_after}"
    );
}

#[actix_web::test]
async fn a_restart_keeps_vouchers_and_network_state() {
    let server = MockServer::start().await;
    let good = Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(fixture("tradedoubler-vouchers.json")),
        )
        .mount_as_scoped(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path().join("data"));
    settings.networks = vec![network("td", FeedKind::Tradedoubler, &server.uri())];
    let app = spawn_with(settings.clone(), dir).await;
    app.await_first_pulls().await;
    drop(good);
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(502).set_body_string("bad gateway"))
        .mount(&server)
        .await;
    assert_eq!(app.pull("td").await["ok"], false);
    let vouchers = app.all_vouchers("active=false", 50).await;
    let state = app.network_state("td").await;
    let requests = server.received_requests().await.unwrap().len();
    let dir = app.stop().await;

    let app = spawn_with(settings, dir).await;
    assert_eq!(app.all_vouchers("active=false", 50).await, vouchers);
    let after = app.network_state("td").await;
    for field in [
        "state",
        "last_error",
        "last_pull_at",
        "failures",
        "next_pull_at",
        "vouchers_active",
    ] {
        assert_eq!(after[field], state[field], "{field}");
    }
    assert_eq!(after["state"], "degraded");
    // Backing off: the restart did not pull again before the retry time.
    assert_eq!(server.received_requests().await.unwrap().len(), requests);
}

#[actix_web::test]
async fn pulling_needs_an_admin_and_a_known_enabled_network() {
    let mut off = network("off", FeedKind::Csv, &fixture_url("generic.csv"));
    off.enabled = false;
    let app = spawn_with_networks(vec![
        network("generic", FeedKind::Csv, &fixture_url("generic.csv")),
        off,
    ])
    .await;
    let (_, customer) = app.customer("shopper@x.io").await;
    let res = app
        .call(
            Method::POST,
            "/api/v1/networks/generic/pull",
            Some(&customer),
            None,
        )
        .await;
    assert_problem(res, 403, "forbidden").await;
    let res = app
        .call(Method::GET, "/api/v1/networks", Some(&customer), None)
        .await;
    assert_problem(res, 403, "forbidden").await;
    let res = app.call(Method::GET, "/api/v1/networks", None, None).await;
    assert_problem(res, 401, "unauthorized").await;
    let res = app
        .call(
            Method::POST,
            "/api/v1/networks/nope/pull",
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_problem(res, 404, "not_found").await;
    let res = app
        .call(
            Method::POST,
            "/api/v1/networks/off/pull",
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_problem(res, 409, "conflict").await;
    let off = app.network_state("off").await;
    assert_eq!(off["state"], "disabled");
    assert!(off["last_pull_at"].is_null());
}
