//! Campaigns, their codes, claims under concurrency, and the wallet.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, spawn_app, spawn_with, test_settings};

pub(crate) fn window() -> (String, String) {
    let now = chrono::Utc::now();
    (
        (now - chrono::Duration::hours(1)).to_rfc3339(),
        (now + chrono::Duration::days(7)).to_rfc3339(),
    )
}

impl TestApp {
    pub(crate) async fn campaign(&self, body: Value) -> Value {
        let res = self
            .call(
                Method::POST,
                "/api/v1/campaigns",
                Some(&self.admin_token),
                Some(body),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json().await.unwrap()
    }

    /// An active discount campaign with `pool` generated codes.
    pub(crate) async fn active_campaign(&self, pool: u32, per_customer: u32) -> String {
        let (starts, ends) = window();
        let c = self
            .campaign(
                json!({"name": "drop", "kind": "flash_sale", "discount": {"percent": 50},
                "pool_size": pool, "starts_at": starts, "ends_at": ends,
                "per_customer_limit": per_customer}),
            )
            .await;
        let id = c["id"].as_str().unwrap().to_owned();
        let res = self.add_codes(&id, json!({"count": pool})).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        id
    }

    pub(crate) async fn add_codes(&self, campaign: &str, body: Value) -> reqwest::Response {
        self.call(
            Method::POST,
            &format!("/api/v1/campaigns/{campaign}/codes"),
            Some(&self.admin_token),
            Some(body),
        )
        .await
    }

    /// Ends a campaign by hand (as the admin).
    pub(crate) async fn end_campaign(&self, campaign: &str) -> reqwest::Response {
        self.call(
            Method::POST,
            &format!("/api/v1/campaigns/{campaign}/end"),
            Some(&self.admin_token),
            None,
        )
        .await
    }

    pub(crate) async fn claim(
        &self,
        campaign: &str,
        token: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        self.call(
            Method::POST,
            &format!("/api/v1/campaigns/{campaign}/claims"),
            Some(token),
            body,
        )
        .await
    }

    /// A campaign's codes as CSV (the admin asks).
    pub(crate) async fn codes_csv(&self, campaign: &str) -> reqwest::Response {
        self.client
            .get(self.url(&format!("/api/v1/campaigns/{campaign}/codes")))
            .bearer_auth(&self.admin_token)
            .header("accept", "text/csv")
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn get_json(&self, path: &str, token: &str) -> Value {
        let res = self.call(Method::GET, path, Some(token), None).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        res.json().await.unwrap()
    }
}

#[actix_web::test]
async fn campaigns_are_validated_and_report_their_counters() {
    let app = spawn_app().await;
    let (starts, ends) = window();
    for (body, field) in [
        (
            json!({"name": "x", "kind": "discount", "pool_size": 10, "starts_at": starts, "ends_at": ends}),
            "discount",
        ),
        (
            json!({"name": "x", "kind": "discount", "discount": {"percent": 101}, "pool_size": 10,
                   "starts_at": starts, "ends_at": ends}),
            "percent",
        ),
        (
            json!({"name": "x", "kind": "gift_card", "pool_size": 10, "starts_at": starts, "ends_at": ends}),
            "gift_balance_cents",
        ),
        (
            json!({"name": "x", "kind": "flash_sale", "pool_size": 10, "starts_at": ends, "ends_at": starts}),
            "ends_at",
        ),
        // Four digits make 10,000 codes: a pool of 20,000 cannot be filled.
        (
            json!({"name": "x", "kind": "flash_sale", "pool_size": 20000, "starts_at": starts,
                   "ends_at": ends, "code": {"pattern": "SALE-####", "charset": "numbers"}}),
            "pool_size",
        ),
    ] {
        let res = app
            .call(
                Method::POST,
                "/api/v1/campaigns",
                Some(&app.admin_token),
                Some(body),
            )
            .await;
        let problem = assert_problem(res, 422, "validation_failed").await;
        assert!(
            problem["detail"].as_str().unwrap().contains(field),
            "{field}: {problem}"
        );
    }
    // Customers cannot make campaigns.
    let (_, customer) = app.customer("c@x.io").await;
    let res = app
        .call(
            Method::POST,
            "/api/v1/campaigns",
            Some(&customer),
            Some(json!({"name": "x", "kind": "flash_sale", "pool_size": 1, "starts_at": starts, "ends_at": ends})),
        )
        .await;
    assert_problem(res, 403, "forbidden").await;

    let c = app
        .campaign(json!({"name": "Spring", "kind": "discount", "discount": {"amount_cents": 500, "currency": "EUR"},
            "pool_size": 50, "starts_at": starts, "ends_at": ends,
            "code": {"pattern": "SPR-####-##", "charset": "upper", "prefix": "X"}}))
        .await;
    assert_eq!(c["status"], "draft");
    assert_eq!(c["codes_total"], 0);
    assert_eq!(
        c["discount"],
        json!({"amount_cents": 500, "currency": "EUR"})
    );
    let id = c["id"].as_str().unwrap();
    let res = app.add_codes(id, json!({"count": 40})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    // The pool holds 50: 11 more do not fit.
    assert_problem(
        app.add_codes(id, json!({"count": 11})).await,
        409,
        "conflict",
    )
    .await;
    let c = app
        .get_json(&format!("/api/v1/campaigns/{id}"), &app.admin_token)
        .await;
    assert_eq!(
        (c["status"].as_str(), c["codes_total"].as_u64()),
        (Some("active"), Some(40))
    );
    let page = app
        .get_json(
            &format!("/api/v1/campaigns/{id}/codes?limit=500"),
            &app.admin_token,
        )
        .await;
    let codes: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes.len(), 40);
    for code in &codes {
        let b = code.as_bytes();
        assert!(code.starts_with("XSPR-") && code.len() == 12, "{code}");
        assert!(
            b[5..9].iter().chain(&b[10..12]).all(u8::is_ascii_uppercase),
            "{code}"
        );
        assert_eq!(b[9], b'-');
    }
    assert_eq!(codes.iter().collect::<HashSet<_>>().len(), 40);
}

#[actix_web::test]
async fn imported_codes_are_unique_across_the_store_or_refused_all_together() {
    let app = spawn_app().await;
    let a = app.active_campaign(1, 1).await;
    let (starts, ends) = window();
    let b = app
        .campaign(json!({"name": "b", "kind": "flash_sale", "pool_size": 10, "starts_at": starts, "ends_at": ends}))
        .await;
    let b = b["id"].as_str().unwrap();
    let taken = app
        .get_json(&format!("/api/v1/campaigns/{a}/codes"), &app.admin_token)
        .await["items"][0]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .add_codes(b, json!({"codes": ["NEW-1", taken, "NEW-2", "NEW-2"]}))
        .await;
    let problem = assert_problem(res, 409, "conflict").await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains(&taken) && detail.contains("NEW-2"),
        "{detail}"
    );
    let c = app
        .get_json(&format!("/api/v1/campaigns/{b}"), &app.admin_token)
        .await;
    assert_eq!(c["codes_total"], 0, "nothing was imported");
    let res = app.add_codes(b, json!({"codes": ["NEW-1", "NEW-2"]})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_problem(
        app.add_codes(b, json!({"codes": ["has space"]})).await,
        422,
        "validation_failed",
    )
    .await;
}

#[actix_web::test]
async fn two_hundred_concurrent_claims_on_a_pool_of_a_hundred_hand_out_each_code_once() {
    let app = spawn_app().await;
    let id = app.active_campaign(100, 100).await;
    let mut customers = Vec::new();
    for i in 0..4 {
        customers.push(app.customer(&format!("buyer{i}@x.io")).await);
    }
    let claims = (0..200).map(|i| {
        let (_, token) = &customers[i % 4];
        app.claim(&id, token, None)
    });
    let answers = futures_util::future::join_all(claims).await;
    let mut codes = HashSet::new();
    let mut sold_out = 0;
    for res in answers {
        match res.status() {
            StatusCode::CREATED => {
                let body: Value = res.json().await.unwrap();
                assert!(
                    codes.insert(body["code"].as_str().unwrap().to_owned()),
                    "a code twice"
                );
            }
            StatusCode::CONFLICT => {
                assert_problem(res, 409, "sold_out").await;
                sold_out += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((codes.len(), sold_out), (100, 100));
    // The wallets hold exactly those codes, and the counters agree.
    let mut held = HashSet::new();
    for (_, token) in &customers {
        let wallet = app.get_json("/api/v1/wallet", token).await;
        for item in wallet["items"].as_array().unwrap() {
            assert!(held.insert(item["code"].as_str().unwrap().to_owned()));
        }
    }
    assert_eq!(held, codes);
    let c = app
        .get_json(&format!("/api/v1/campaigns/{id}"), &app.admin_token)
        .await;
    assert_eq!(c["claimed"], 100);
    let available = app
        .get_json(
            &format!("/api/v1/campaigns/{id}/codes?status=available"),
            &app.admin_token,
        )
        .await;
    assert!(available["items"].as_array().unwrap().is_empty());
}

#[actix_web::test]
async fn the_per_customer_limit_holds_under_concurrency() {
    let app = spawn_app().await;
    let id = app.active_campaign(100, 3).await;
    let (_, token) = app.customer("greedy@x.io").await;
    let answers =
        futures_util::future::join_all((0..40).map(|_| app.claim(&id, &token, None))).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        3,
        "{statuses:?}"
    );
    let refused = answers
        .into_iter()
        .find(|r| r.status() == StatusCode::CONFLICT)
        .unwrap();
    assert_problem(refused, 409, "limit_reached").await;
    let wallet = app.get_json("/api/v1/wallet", &token).await;
    assert_eq!(wallet["items"].as_array().unwrap().len(), 3);
}

#[actix_web::test]
async fn claims_follow_the_campaign_window_and_its_end() {
    let app = spawn_app().await;
    let now = chrono::Utc::now();
    let later = app
        .campaign(
            json!({"name": "later", "kind": "flash_sale", "pool_size": 5,
            "starts_at": (now + chrono::Duration::days(1)).to_rfc3339(),
            "ends_at": (now + chrono::Duration::days(2)).to_rfc3339()}),
        )
        .await;
    let later = later["id"].as_str().unwrap();
    app.add_codes(later, json!({"count": 5})).await;
    let (user, token) = app.customer("early@x.io").await;
    let problem = assert_problem(
        app.claim(later, &token, None).await,
        422,
        "campaign_not_active",
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("not started"));

    let id = app.active_campaign(5, 1).await;
    let res = app.claim(&id, &token, None).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let claimed: Value = res.json().await.unwrap();
    assert_eq!(claimed["customer"], user.as_str());
    let res = app.end_campaign(&id).await;
    assert_eq!(res.status(), StatusCode::OK);
    let ended: Value = res.json().await.unwrap();
    assert_eq!(ended["status"], "ended");
    let (_, other) = app.customer("late@x.io").await;
    assert_problem(
        app.claim(&id, &other, None).await,
        422,
        "campaign_not_active",
    )
    .await;
    // A claimed code of an ended campaign shows as expired.
    let code = claimed["code"].as_str().unwrap();
    let check = app.get_json(&format!("/api/v1/codes/{code}"), &token).await;
    assert_eq!(check["status"], "expired");
    // An unknown campaign is 404.
    let res = app
        .claim("0190b3f2-0000-7000-8000-000000000000", &token, None)
        .await;
    assert_problem(res, 404, "not_found").await;
}

#[actix_web::test]
async fn managers_claim_for_customers_and_find_wallets_by_phone() {
    let app = spawn_app().await;
    let id = app.active_campaign(10, 2).await;
    // Made at the till by the admin: the number vouched for (a typed one would reserve nothing).
    let res = app
        .create_user(
            json!({"email": "phone@x.io", "password": "customer-password",
            "timezone": "UTC", "phone": "+4915112345678"}),
        )
        .await;
    let user: Value = res.json().await.unwrap();
    let user_id = user["id"].as_str().unwrap();
    let token = app.login("phone@x.io", "customer-password").await;
    let res = app
        .claim(&id, &app.admin_token, Some(json!({"customer": user_id})))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let code = res.json::<Value>().await.unwrap()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    // A customer cannot claim for someone else, nor read another's wallet.
    let (other_id, other) = app.customer("other@x.io").await;
    assert_problem(
        app.claim(&id, &other, Some(json!({"customer": user_id})))
            .await,
        403,
        "forbidden",
    )
    .await;
    let res = app
        .call(
            Method::GET,
            "/api/v1/wallet?phone=%2B4915112345678",
            Some(&other),
            None,
        )
        .await;
    assert_problem(res, 403, "forbidden").await;
    let wallet = app
        .get_json("/api/v1/wallet?phone=%2B4915112345678", &app.admin_token)
        .await;
    assert_eq!(wallet["customer"], user_id);
    assert_eq!(wallet["items"][0]["code"], code.as_str());
    assert_eq!(wallet["items"][0]["status"], "claimed");
    let own = app.get_json("/api/v1/wallet", &token).await;
    assert_eq!(own["items"].as_array().unwrap().len(), 1);
    // The holder and managers may check the code; anyone else gets 404.
    assert_eq!(
        app.get_json(&format!("/api/v1/codes/{code}"), &token).await["status"],
        "claimed"
    );
    let res = app
        .call(
            Method::GET,
            &format!("/api/v1/codes/{code}"),
            Some(&other),
            None,
        )
        .await;
    assert_problem(res, 404, "not_found").await;
    let empty = app
        .get_json(
            &format!("/api/v1/wallet?customer={other_id}"),
            &app.admin_token,
        )
        .await;
    assert!(empty["items"].as_array().unwrap().is_empty());
}

#[actix_web::test]
async fn codes_are_exported_as_csv_and_claims_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(test_settings(dir.path().join("data")), dir).await;
    let id = app.active_campaign(30, 5).await;
    let (_, token) = app.customer("keeps@x.io").await;
    let mut mine = Vec::new();
    for _ in 0..5 {
        let res = app.claim(&id, &token, None).await;
        mine.push(
            res.json::<Value>().await.unwrap()["code"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let res = app.codes_csv(&id).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = res.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "code,status,holder,claimed_at");
    assert_eq!(lines.len(), 31);
    assert_eq!(lines.iter().filter(|l| l.contains(",claimed,")).count(), 5);

    let dir = app.stop().await;
    let app = spawn_with(test_settings(dir.path().join("data")), dir).await;
    let wallet = app.get_json("/api/v1/wallet", &token).await;
    let held: Vec<&str> = wallet["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    assert_eq!(held, mine);
    // The pool after the restart: 25 left, none of them held, and the limit still counted.
    assert_problem(app.claim(&id, &token, None).await, 409, "limit_reached").await;
    let c = app
        .get_json(&format!("/api/v1/campaigns/{id}"), &app.admin_token)
        .await;
    assert_eq!(
        (c["codes_total"].as_u64(), c["claimed"].as_u64()),
        (Some(30), Some(5))
    );
}

/// A claim or an order that cannot go through (the customer at their limit, the pool empty) is
/// answered from memory: it still gets its 409 while the store refuses every write, when a claim
/// that would take a code gets 503.
#[actix_web::test]
async fn refusals_are_answered_without_the_store() {
    use voucherd::store::failpoints::Failpoint;
    let app = spawn_app().await;
    let limited = app.active_campaign(5, 1).await;
    let gone = app.active_campaign(1, 1).await;
    let (_, token) = app.customer("refused@x.io").await;
    let (_, other) = app.customer("other@x.io").await;
    for id in [&limited, &gone] {
        assert_eq!(
            app.claim(id, &token, None).await.status(),
            StatusCode::CREATED
        );
    }
    app.store.failpoints.arm(Failpoint::RefuseWrites);
    assert_problem(
        app.claim(&limited, &token, None).await,
        409,
        "limit_reached",
    )
    .await;
    assert_problem(app.claim(&gone, &other, None).await, 409, "sold_out").await;
    assert_problem(app.claim(&limited, &other, None).await, 503, "overloaded").await;
    app.store.failpoints.disarm(Failpoint::RefuseWrites);
    assert_eq!(
        app.claim(&limited, &other, None).await.status(),
        StatusCode::CREATED
    );
}

/// The first 500 codes of a campaign as listed.
async fn first_listed(app: &TestApp, id: &str) -> Vec<String> {
    let page = app
        .get_json(
            &format!("/api/v1/campaigns/{id}/codes?limit=500"),
            &app.admin_token,
        )
        .await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap().to_owned())
        .collect()
}

/// A large generation is written in parts and lands whole; codes go out in the order they are
/// listed (a lot in code order), from the record as made (a gift card's balance), and a restart
/// lists and hands them out in the same order.
#[actix_web::test]
async fn codes_go_out_in_the_order_they_are_listed_before_and_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(test_settings(dir.path().join("data")), dir).await;
    let (starts, ends) = window();
    let pool = 20_100; // more than one write (20,000 codes each)
    let c = app
        .campaign(
            json!({"name": "lots", "kind": "gift_card", "gift_balance_cents": 2500,
            "pool_size": pool, "starts_at": starts, "ends_at": ends, "per_customer_limit": 10}),
        )
        .await;
    let id = c["id"].as_str().unwrap().to_owned();
    let res = app.add_codes(&id, json!({"count": pool})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let before = first_listed(&app, &id).await;
    let mut sorted = before.clone();
    sorted.sort();
    assert_eq!(before, sorted, "a lot is listed in code order");
    // Gift cards are sold, not claimed: sold one at a time at the till (paid at once).
    let (user, _) = app.customer("lots@x.io").await;
    for expected in &before[..3] {
        assert_eq!(&app.till_sale(&id, &user).await, expected);
    }
    let c = app
        .get_json(&format!("/api/v1/campaigns/{id}"), &app.admin_token)
        .await;
    assert_eq!(c["codes_total"].as_u64(), Some(pool));

    let dir = app.stop().await;
    let app = spawn_with(test_settings(dir.path().join("data")), dir).await;
    assert_eq!(first_listed(&app, &id).await, before);
    assert_eq!(app.till_sale(&id, &user).await, before[3]);
    let code = app
        .get_json(&format!("/api/v1/codes/{}", before[3]), &app.admin_token)
        .await;
    assert_eq!(
        (code["status"].as_str(), code["balance_cents"].as_i64()),
        (Some("claimed"), Some(2500))
    );
}

/// An order is all or nothing and priced; a customer's order of priced codes holds them,
/// shown to nobody, until the shop confirms the payment, which gives them once.
#[actix_web::test]
async fn orders_are_all_or_nothing_priced_and_deliver_once_paid() {
    let app = spawn_app().await;
    let (starts, ends) = window();
    let c = app
        .campaign(
            json!({"name": "coupons", "kind": "flash_sale", "discount": {"percent": 10},
            "price_cents": 250, "pool_size": 5, "per_customer_limit": 10,
            "starts_at": starts, "ends_at": ends}),
        )
        .await;
    let id = c["id"].as_str().unwrap();
    app.add_codes(id, json!({"count": 5})).await;
    // Made at the till with their number (vouched for): the number they may order with.
    let res = app
        .create_user(
            json!({"email": "buyer@x.io", "password": "customer-password",
            "timezone": "UTC", "phone": "+4915112345678"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let token = app.login("buyer@x.io", "customer-password").await;
    let order = |quantity: u32| {
        app.call(
            Method::POST,
            "/api/v1/orders",
            Some(&token),
            Some(json!({"campaign_id": id, "quantity": quantity, "phone": "+4915112345678"})),
        )
    };
    let res = order(3).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let first: Value = res.json().await.unwrap();
    assert_eq!(first["amount_cents"], 750);
    assert_eq!(first["status"], "pending_payment");
    assert!(first["pay_by"].is_string());
    assert_eq!(first["codes"], json!([]), "nothing shown before it is paid");
    let wallet = app.get_json("/api/v1/wallet", &token).await;
    assert_eq!(wallet["items"], json!([]));
    // Held: two left, three more is refused whole, nothing changes.
    assert_problem(order(3).await, 409, "sold_out").await;
    // A customer cannot declare their own order paid.
    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/orders/{}/payment", first["id"].as_str().unwrap()),
            Some(&token),
            None,
        )
        .await;
    assert_problem(res, 403, "forbidden").await;
    // The shop confirms the payment: the codes are the customer's, once.
    let pay = |order: String| {
        let app = &app;
        async move {
            app.call(
                Method::POST,
                &format!("/api/v1/orders/{order}/payment"),
                Some(&app.admin_token),
                Some(json!({"reference": "psp-123"})),
            )
            .await
        }
    };
    let res = pay(first["id"].as_str().unwrap().to_owned()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let paid: Value = res.json().await.unwrap();
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["payment_ref"], "psp-123");
    assert_eq!(paid["codes"].as_array().unwrap().len(), 3);
    let again: Value = pay(first["id"].as_str().unwrap().to_owned())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        again["codes"], paid["codes"],
        "paying twice changes nothing"
    );
    let wallet = app.get_json("/api/v1/wallet", &token).await;
    assert_eq!(wallet["items"].as_array().unwrap().len(), 3);
    let res = order(2).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let second: Value = res.json().await.unwrap();
    assert_problem(order(1).await, 409, "sold_out").await;
    let c = app
        .get_json(&format!("/api/v1/campaigns/{id}"), &app.admin_token)
        .await;
    assert_eq!(
        c["claimed"], 3,
        "two are held for an unpaid order, not claimed"
    );
    assert_eq!(
        (c["reserved"].as_u64(), c["available"].as_u64()),
        (Some(2), Some(0))
    );
    // The unpaid orders: the customer sees theirs, a manager a campaign's, nobody else any.
    let mine = app
        .get_json("/api/v1/orders?status=pending_payment", &token)
        .await;
    let listed: Vec<&str> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [second["id"].as_str().unwrap()]);
    assert_eq!(mine["items"][0]["quantity"], 2);
    assert_eq!(mine["items"][0]["campaign"], "coupons");
    let all = app
        .get_json(&format!("/api/v1/orders?campaign={id}"), &app.admin_token)
        .await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2, "{all}");
    assert_eq!(all["items"][0]["id"], second["id"], "newest first");
    let (_, stranger) = app.customer("stranger@x.io").await;
    let theirs = app.get_json("/api/v1/orders", &stranger).await;
    assert_eq!(theirs["items"], json!([]));
    pay(second["id"].as_str().unwrap().to_owned()).await;
    let c = app
        .get_json(&format!("/api/v1/campaigns/{id}"), &app.admin_token)
        .await;
    assert_eq!(c["claimed"], 5);

    // The per-customer limit counts every code of an order.
    let limited = app.active_campaign(10, 2).await;
    let res = app
        .call(
            Method::POST,
            "/api/v1/orders",
            Some(&token),
            Some(json!({"campaign_id": limited, "quantity": 3})),
        )
        .await;
    assert_problem(res, 409, "limit_reached").await;
}

impl TestApp {
    pub(crate) async fn redeem(&self, body: Value) -> reqwest::Response {
        self.call(
            Method::POST,
            "/api/v1/redemptions",
            Some(&self.admin_token),
            Some(body),
        )
        .await
    }

    pub(crate) async fn rollback(&self, id: &str) -> reqwest::Response {
        self.call(
            Method::POST,
            &format!("/api/v1/redemptions/{id}/rollback"),
            Some(&self.admin_token),
            None,
        )
        .await
    }

    /// One code of campaign `id` sold to `customer` at the till: the admin's order, paid at
    /// once (how sold codes — a price, a gift card — reach a customer without a payment step).
    pub(crate) async fn till_sale(&self, id: &str, customer: &str) -> String {
        let res = self
            .call(
                Method::POST,
                "/api/v1/orders",
                Some(&self.admin_token),
                Some(json!({"campaign_id": id, "quantity": 1, "customer": customer})),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let order: Value = res.json().await.unwrap();
        assert_eq!(order["status"], "paid");
        order["codes"][0].as_str().unwrap().to_owned()
    }

    /// A code of a new active campaign (`body` adds to it), claimed by a new customer (bought
    /// at the till when its codes are sold).
    async fn held_code(&self, email: &str, body: Value) -> (String, String) {
        let (starts, ends) = window();
        let mut spec = json!({"name": "r", "pool_size": 3, "starts_at": starts, "ends_at": ends});
        for (k, v) in body.as_object().unwrap() {
            spec[k] = v.clone();
        }
        let c = self.campaign(spec).await;
        let id = c["id"].as_str().unwrap();
        self.add_codes(id, json!({"count": 3})).await;
        let (user, token) = self.customer(email).await;
        let sold = c["kind"] == "gift_card" || c["price_cents"].as_i64().is_some_and(|p| p > 0);
        let code = if sold {
            // Sold codes are bought: the shop's order for its customer, paid at the till.
            self.till_sale(id, &user).await
        } else {
            let res = self.claim(id, &token, None).await;
            assert_eq!(res.status(), StatusCode::CREATED);
            res.json::<Value>().await.unwrap()["code"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        (code, user)
    }
}

#[actix_web::test]
async fn a_code_is_redeemed_once_and_rolled_back_once() {
    let app = spawn_app().await;
    let (code, holder) = app
        .held_code(
            "r1@x.io",
            json!({"kind": "discount", "discount": {"percent": 15}}),
        )
        .await;
    let other: Value = app.me(&app.admin_token).await.json().await.unwrap();
    // Someone else's code answers as an unknown one does.
    assert_problem(
        app.redeem(json!({"code": code, "customer": other["id"], "order_amount_cents": 1999}))
            .await,
        404,
        "not_found",
    )
    .await;
    // Twenty tills at once: one redemption.
    let tries = futures_util::future::join_all((0..20).map(|_| {
        app.redeem(json!({"code": code, "customer": holder, "order_amount_cents": 1999}))
    }))
    .await;
    let mut done = Vec::new();
    for res in tries {
        match res.status() {
            StatusCode::CREATED => done.push(res.json::<Value>().await.unwrap()),
            _ => {
                assert_problem(res, 409, "code_not_redeemable").await;
            }
        }
    }
    assert_eq!(done.len(), 1);
    assert_eq!(
        done[0]["discount_cents"], 299,
        "15 % of 19.99, rounded down"
    );
    let id = done[0]["id"].as_str().unwrap();
    let res = app.rollback(id).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_problem(app.rollback(id).await, 409, "conflict").await;
    let campaign = done[0]["campaign_id"].as_str().unwrap();
    let figures = |v: &Value| (v["redeemed"].as_u64(), v["discount_cents_total"].as_i64());
    let report = format!("/api/v1/reports/campaigns/{campaign}");
    assert_eq!(
        figures(&app.get_json(&report, &app.admin_token).await),
        (Some(0), Some(0)),
        "a rolled-back redemption counts for nothing"
    );
    // Held again: it can be redeemed again, and counts once.
    let res = app.redeem(json!({"code": code, "order": {"currency": "EUR", "items": [{"sku": "A", "quantity": 1, "price_cents": 1000}]}})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(
        figures(&app.get_json(&report, &app.admin_token).await),
        (Some(1), Some(150)),
        "redeemed again: 15 % of 10.00"
    );
    assert_problem(
        app.redeem(json!({"code": "NO-SUCH-CODE"})).await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.rollback("0190b3f2-0000-7000-8000-000000000000").await,
        404,
        "not_found",
    )
    .await;
}

#[actix_web::test]
async fn a_gift_card_is_drawn_down_never_below_zero_and_rolled_back_exactly() {
    let app = spawn_app().await;
    let (code, _) = app
        .held_code(
            "gift@x.io",
            json!({"kind": "gift_card", "gift_balance_cents": 5000}),
        )
        .await;
    let res = app
        .redeem(json!({"code": code, "order_amount_cents": 3000}))
        .await;
    let first: Value = res.json().await.unwrap();
    assert_eq!(
        (
            first["discount_cents"].as_i64(),
            first["balance_cents"].as_i64()
        ),
        (Some(3000), Some(2000))
    );
    let res = app
        .redeem(json!({"code": code, "order_amount_cents": 9000}))
        .await;
    let second: Value = res.json().await.unwrap();
    assert_eq!(
        (
            second["discount_cents"].as_i64(),
            second["balance_cents"].as_i64()
        ),
        (Some(2000), Some(0))
    );
    assert_problem(
        app.redeem(json!({"code": code, "order_amount_cents": 1}))
            .await,
        409,
        "code_not_redeemable",
    )
    .await;
    let res = app.rollback(second["id"].as_str().unwrap()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let check = app
        .get_json(&format!("/api/v1/codes/{code}"), &app.admin_token)
        .await;
    assert_eq!(
        (check["balance_cents"].as_i64(), check["status"].as_str()),
        (Some(2000), Some("claimed"))
    );
}

impl TestApp {
    async fn keyed_claim(
        &self,
        campaign: &str,
        token: &str,
        key: &str,
        body: Value,
    ) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/api/v1/campaigns/{campaign}/claims")))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

#[actix_web::test]
async fn a_retried_claim_with_its_idempotency_key_gets_the_first_answer() {
    let app = spawn_app().await;
    let id = app.active_campaign(50, 10).await;
    let (_, token) = app.customer("retry@x.io").await;
    let first = app.keyed_claim(&id, &token, "claim-1", json!({})).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let again = app.keyed_claim(&id, &token, "claim-1", json!({})).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    // The same key for another request: 422, nothing runs.
    let other: Value = app.me(&app.admin_token).await.json().await.unwrap();
    let res = app
        .keyed_claim(
            &id,
            &app.admin_token,
            "claim-1",
            json!({"customer": other["id"]}),
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "keys are the caller's own"
    );
    let res = app
        .keyed_claim(&id, &token, "claim-1", json!({"customer": other["id"]}))
        .await;
    assert_problem(res, 422, "validation_failed").await;
    // Ten at once under a new key: one claim, the same answer for all.
    let answers = futures_util::future::join_all(
        (0..10).map(|_| app.keyed_claim(&id, &token, "claim-2", json!({}))),
    )
    .await;
    let mut codes = HashSet::new();
    for res in answers {
        assert_eq!(res.status(), StatusCode::CREATED);
        codes.insert(
            res.json::<Value>().await.unwrap()["code"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(codes.len(), 1, "{codes:?}");
    let wallet = app.get_json("/api/v1/wallet", &token).await;
    assert_eq!(
        wallet["items"].as_array().unwrap().len(),
        2,
        "two claims ran in all"
    );
    // A refusal is remembered too: the same key answers the same 4xx.
    let (_, late) = app.customer("late2@x.io").await;
    let ended = app.active_campaign(1, 1).await;
    app.claim(&ended, &token, None).await;
    let refused = app.keyed_claim(&ended, &late, "k", json!({})).await;
    assert_problem(refused, 409, "sold_out").await;
    let res = app
        .keyed_claim(&ended, &late, "bad key with spaces", json!({}))
        .await;
    assert_problem(res, 400, "validation_failed").await;
}

#[actix_web::test]
async fn a_change_racing_the_end_never_reopens_the_campaign() {
    let app = spawn_app().await;
    let (_, token) = app.customer("racer@x.io").await;
    for i in 0..100 {
        let id = app.active_campaign(2, 1).await;
        let path = format!("/api/v1/campaigns/{id}");
        let rename = app.call(
            Method::PATCH,
            &path,
            Some(&app.admin_token),
            Some(json!({"name": format!("renamed {i}"), "per_customer_limit": 2})),
        );
        let (ended, renamed) = tokio::join!(app.end_campaign(&id), rename);
        assert_eq!(ended.status(), StatusCode::OK);
        assert_eq!(renamed.status(), StatusCode::OK);
        let c = app
            .get_json(&format!("/api/v1/campaigns/{id}"), &app.admin_token)
            .await;
        assert_eq!(c["status"], "ended", "round {i}: {c}");
        assert!(!c["ended_at"].is_null(), "round {i}: {c}");
        assert_eq!(c["name"], format!("renamed {i}"), "both changes stand");
        assert_eq!(c["per_customer_limit"], 2);
        assert_problem(
            app.claim(&id, &token, None).await,
            422,
            "campaign_not_active",
        )
        .await;
    }
}

#[actix_web::test]
async fn additions_racing_each_other_never_overfill_the_pool() {
    let app = spawn_app().await;
    let (starts, ends) = window();
    for round in 0..10 {
        let c = app
            .campaign(
                json!({"name": "pool", "kind": "flash_sale", "pool_size": 10,
                "starts_at": starts, "ends_at": ends}),
            )
            .await;
        let id = c["id"].as_str().unwrap();
        let imports = (0..2).map(|k| {
            let codes: Vec<String> = (0..10).map(|n| format!("R{round}K{k}N{n}")).collect();
            app.add_codes(id, json!({ "codes": codes }))
        });
        let generated = (0..4).map(|_| app.add_codes(id, json!({"count": 10})));
        let answers = futures_util::future::join_all(generated.chain(imports)).await;
        let mut created = 0;
        for res in answers {
            match res.status() {
                StatusCode::CREATED => created += 1,
                _ => {
                    assert_problem(res, 409, "conflict").await;
                }
            }
        }
        assert_eq!(created, 1, "round {round}: one addition fits");
        let c = app
            .get_json(&format!("/api/v1/campaigns/{id}"), &app.admin_token)
            .await;
        assert_eq!(c["codes_total"], 10, "round {round}: {c}");
        let page = app
            .get_json(
                &format!("/api/v1/campaigns/{id}/codes?limit=500"),
                &app.admin_token,
            )
            .await;
        assert_eq!(page["items"].as_array().unwrap().len(), 10);
    }
}

/// Sends a keyed claim on a raw connection and closes it (with a reset) while the server works
/// on it, without reading the answer: a client that gave up mid-request.
async fn claim_and_hang_up(app: &TestApp, campaign: &str, token: &str, key: &str) {
    use tokio::io::AsyncWriteExt;
    let addr = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /api/v1/campaigns/{campaign}/claims HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: Bearer {token}\r\nIdempotency-Key: {key}\r\n\
         Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    // Long enough for the server to read it and start the work.
    tokio::time::sleep(std::time::Duration::from_millis(40)).await;
    // SO_LINGER 0: the close is a reset, as when a client dies (it does not block here).
    #[allow(deprecated)]
    stream.set_linger(Some(std::time::Duration::ZERO)).unwrap();
    drop(stream);
}

#[actix_web::test]
async fn a_client_that_hangs_up_mid_request_can_retry_its_key_and_the_work_runs_once() {
    let app = spawn_app().await;
    let id = app.active_campaign(100, 100).await;
    let (_, token) = app.customer("hangup@x.io").await;
    let keys: Vec<String> = (0..21).map(|k| format!("hang-up-{k}")).collect();
    // A slow disk: each claim is still being written when its client hangs up.
    let slow = voucherd::store::failpoints::Failpoint::SlowFlush;
    app.store.failpoints.arm(slow);
    for key in &keys {
        claim_and_hang_up(&app, &id, &token, key).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    app.store.failpoints.disarm(slow);
    let mut codes = HashSet::new();
    for key in &keys {
        let res = app.keyed_claim(&id, &token, key, json!({})).await;
        assert_eq!(res.status(), StatusCode::CREATED, "{key}");
        let again = app.keyed_claim(&id, &token, key, json!({})).await;
        assert_eq!(again.status(), StatusCode::CREATED, "{key}");
        assert_eq!(again.headers()["idempotent-replayed"], "true");
        let (first, second): (Value, Value) =
            (res.json().await.unwrap(), again.json().await.unwrap());
        assert_eq!(first, second, "{key}: one answer");
        codes.insert(first["code"].as_str().unwrap().to_owned());
    }
    assert_eq!(codes.len(), keys.len());
    let wallet = app.get_json("/api/v1/wallet", &token).await;
    assert_eq!(
        wallet["items"].as_array().unwrap().len(),
        keys.len(),
        "each key's claim ran once: the ones cut off are the ones the retries got"
    );
}

#[actix_web::test]
async fn no_codes_are_added_to_an_ended_campaign() {
    let app = spawn_app().await;
    let id = app.active_campaign(10, 1).await;
    assert_eq!(app.end_campaign(&id).await.status(), StatusCode::OK);
    for body in [json!({"count": 1}), json!({"codes": ["AFTER-THE-END"]})] {
        let problem = assert_problem(app.add_codes(&id, body).await, 409, "conflict").await;
        assert!(problem["detail"].as_str().unwrap().contains("ended"));
    }
    let c = app
        .get_json(&format!("/api/v1/campaigns/{id}"), &app.admin_token)
        .await;
    assert_eq!(c["codes_total"], 10);
}

impl TestApp {
    async fn import_csv(&self, campaign: &str, body: String) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/api/v1/campaigns/{campaign}/codes")))
            .bearer_auth(&self.admin_token)
            .header("content-type", "text/csv")
            .body(body)
            .send()
            .await
            .unwrap()
    }
}

/// Two CSV imports at once hold their files in memory; a third is told to come back (503) rather
/// than a client opening many uploads to exhaust memory; once they end, imports run again.
#[actix_web::test]
async fn at_most_two_csv_imports_run_at_once() {
    use std::time::Duration;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let app = spawn_app().await;
    let (starts, ends) = window();
    let c = app
        .campaign(
            json!({"name": "csv", "kind": "flash_sale", "pool_size": 1000,
            "starts_at": starts, "ends_at": ends}),
        )
        .await;
    let id = c["id"].as_str().unwrap().to_owned();
    let address = app.address.trim_start_matches("http://").to_owned();
    // An upload that sends its headers and a first line, then waits.
    let hold = |n: usize| {
        let (address, id, token) = (address.clone(), id.clone(), app.admin_token.clone());
        async move {
            let mut tcp = tokio::net::TcpStream::connect(&address).await.unwrap();
            let head = format!(
                "POST /api/v1/campaigns/{id}/codes HTTP/1.1\r\nHost: {address}\r\n\
                 Authorization: Bearer {token}\r\nContent-Type: text/csv\r\n\
                 Content-Length: 100000\r\n\r\nSLOW-{n}\n"
            );
            tcp.write_all(head.as_bytes()).await.unwrap();
            tcp
        }
    };
    let mut held = vec![hold(0).await, hold(1).await];
    let mut refused = false;
    for attempt in 0..100 {
        // A held upload that met a quick one in flight was itself refused: hold another.
        for (n, tcp) in held.iter_mut().enumerate() {
            let mut buf = [0u8; 64];
            let answered =
                tokio::time::timeout(Duration::from_millis(10), tcp.read(&mut buf)).await;
            if answered.is_ok() {
                *tcp = hold(2 + 2 * attempt + n).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let res = app.import_csv(&id, format!("QUICK-{attempt}\n")).await;
        if res.status() == StatusCode::SERVICE_UNAVAILABLE {
            assert_problem(res, 503, "overloaded").await;
            refused = true;
            break;
        }
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    assert!(refused, "a third import ran beside two held ones");
    drop(held);
    for _ in 0..100 {
        let res = app.import_csv(&id, "AFTER-1\n".into()).await;
        if res.status() == StatusCode::CREATED {
            return;
        }
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("imports stayed refused after the held uploads ended");
}

/// A CSV file of codes, far past the JSON body limit, is streamed in: every line checked and every
/// code looked up before any is written; a bad line is named, taken codes are listed, and
/// nothing of a refused file is kept.
#[actix_web::test]
async fn a_csv_file_of_codes_is_imported_whole_or_refused_before_anything_is_written() {
    let app = spawn_app().await;
    let (starts, ends) = window();
    let c = app
        .campaign(
            json!({"name": "csv", "kind": "flash_sale", "pool_size": 50_000,
            "starts_at": starts, "ends_at": ends}),
        )
        .await;
    let id = c["id"].as_str().unwrap().to_owned();
    let file: String = std::iter::once("code".to_owned())
        .chain((0..30_000).map(|i| format!("CSV-{i:06}")))
        .collect::<Vec<_>>()
        .join("\r\n")
        + "\r\n";
    assert!(file.len() > 64 * 1024, "past the JSON body limit");
    let res = app.import_csv(&id, file).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let added: Value = res.json().await.unwrap();
    assert_eq!(
        (added["added"].as_u64(), added["codes_total"].as_u64()),
        (Some(30_000), Some(30_000))
    );
    // A bad line is named; a taken code is listed; either way nothing is added.
    let res = app.import_csv(&id, "NEW-1\nNEW 2\nNEW-3\n".into()).await;
    let problem = assert_problem(res, 422, "validation_failed").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("line 2"),
        "{problem}"
    );
    let res = app.import_csv(&id, "NEW-1\nCSV-000007\n".into()).await;
    let problem = assert_problem(res, 409, "conflict").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("CSV-000007"),
        "{problem}"
    );
    assert_problem(
        app.import_csv(&id, String::new()).await,
        422,
        "validation_failed",
    )
    .await;
    let c = app
        .get_json(&format!("/api/v1/campaigns/{id}"), &app.admin_token)
        .await;
    assert_eq!(c["codes_total"], 30_000);
    // Listed in code order, and claimable.
    let (_, token) = app.customer("csv@x.io").await;
    let got: Value = app.claim(&id, &token, None).await.json().await.unwrap();
    assert_eq!(got["code"], "CSV-000000");
    // A usage limit is for a shared campaign's codes only.
    let res = app
        .client
        .post(app.url(&format!("/api/v1/campaigns/{id}/codes?usage_limit=5")))
        .bearer_auth(&app.admin_token)
        .header("content-type", "text/csv")
        .body("LIMITED-1\n")
        .send()
        .await
        .unwrap();
    assert_problem(res, 409, "conflict").await;
    // A lone `code` is a code, not a header; an unknown campaign reads no file.
    let res = app.import_csv(&id, "code".into()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app
        .import_csv("0190b3f2-0000-7000-8000-000000000000", "X-1\n".into())
        .await;
    assert_problem(res, 404, "not_found").await;
}
