//! Promotions at checkout: shared codes, validations against orders with items, conditions,
//! caps, budgets, pause, disabled codes, validity per code, redemptions listed, the wallet by
//! phone.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use voucherd::clock::ManualClock;

use crate::campaigns::window;
use crate::helpers::{TestApp, assert_problem, spawn_app, spawn_with_clock, test_settings};

impl TestApp {
    pub(crate) async fn post_json(
        &self,
        path: &str,
        token: &str,
        body: Value,
    ) -> reqwest::Response {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub(crate) async fn validate(&self, token: &str, body: Value) -> Value {
        let res = self.post_json("/api/v1/validations", token, body).await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }

    /// A shared campaign (`extra` adds to it) with `code` imported under `usage_limit`.
    pub(crate) async fn shared_campaign(
        &self,
        code: &str,
        usage_limit: Option<u64>,
        extra: Value,
    ) -> String {
        let (starts, ends) = window();
        let mut spec = json!({"name": "shared", "kind": "discount", "code_mode": "shared",
            "discount": {"percent": 10}, "pool_size": 5, "starts_at": starts, "ends_at": ends});
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        let c = self.campaign(spec).await;
        let id = c["id"].as_str().unwrap().to_owned();
        let mut body = json!({"codes": [code]});
        if let Some(n) = usage_limit {
            body["usage_limit"] = json!(n);
        }
        let res = self.add_codes(&id, body).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        id
    }
}

pub(crate) fn eur(amount: i64) -> Value {
    json!({"amount_cents": amount, "currency": "EUR"})
}

/// The most common promotion: SUMMER10, 10 % off orders over 50 EUR, once per customer, at most
/// 20 EUR, a limited number of uses in all; typed by anyone, no claim.
#[actix_web::test]
async fn summer10_is_used_once_per_customer_capped_and_never_past_its_limit() {
    let app = spawn_app().await;
    let id = app
        .shared_campaign(
            "SUMMER10",
            Some(5),
            json!({"discount": {"percent": 10, "max_cents": 2000},
                   "rules": {"min_order_cents": 5000}, "per_customer_limit": 1}),
        )
        .await;
    let admin = app.admin_token.clone();
    // A shared code is not claimed, nor handed out one per customer.
    let (claimer, token) = app.customer("claimer@x.io").await;
    assert_problem(
        app.claim(&id, &token, None).await,
        422,
        "campaign_not_active",
    )
    .await;
    let res = app
        .post_json(
            &format!("/api/v1/campaigns/{id}/distributions"),
            &admin,
            json!({"customers": [claimer], "channel": "email"}),
        )
        .await;
    assert_problem(res, 409, "conflict").await;
    let v = app
        .validate(
            &admin,
            json!({"codes": ["SUMMER10"], "customer_ref": "Ann@Shop.example", "order": eur(4000)}),
        )
        .await;
    assert_eq!(v["valid"], false);
    assert_eq!(v["redeemables"][0]["reason"], "min_order_not_met");
    let v = app
        .validate(
            &admin,
            json!({"codes": ["SUMMER10"], "customer_ref": "ann@shop.example", "order": eur(50_000)}),
        )
        .await;
    assert_eq!(
        v["order"],
        json!({"amount_cents": 50_000, "discount_cents": 2000, "total_cents": 48_000})
    );
    // Twenty buyers at once, five uses: exactly five go through.
    let tries = futures_util::future::join_all((0..20).map(|i| {
        app.redeem(
            json!({"code": "SUMMER10", "customer_ref": format!("buyer{i}@shop.example"),
            "order": eur(8000)}),
        )
    }))
    .await;
    let mut done = Vec::new();
    for res in tries {
        match res.status() {
            StatusCode::CREATED => done.push(res.json::<Value>().await.unwrap()),
            _ => {
                assert_problem(res, 409, "usage_limit_reached").await;
            }
        }
    }
    assert_eq!(done.len(), 5);
    assert!(done.iter().all(|r| r["discount_cents"] == 800));
    // A rollback gives the use back; the same buyer again is past their own limit.
    let first = done[0]["id"].as_str().unwrap();
    let buyer = done[0]["customer_ref"].as_str().unwrap().to_owned();
    assert_eq!(app.rollback(first).await.status(), StatusCode::OK);
    let res = app
        .redeem(
            json!({"code": "SUMMER10", "customer_ref": "late@shop.example", "order": eur(8000)}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app
        .redeem(json!({"code": "SUMMER10", "customer_ref": buyer, "order": eur(8000)}))
        .await;
    assert_problem(res, 409, "usage_limit_reached").await;
    let c = app
        .get_json(&format!("/api/v1/campaigns/{id}"), &admin)
        .await;
    assert_eq!(
        (c["code_mode"].as_str(), c["redemptions"].as_u64()),
        (Some("shared"), Some(5))
    );
}

#[actix_web::test]
async fn a_customer_may_redeem_a_shared_code_only_as_often_as_the_campaign_allows() {
    let app = spawn_app().await;
    app.shared_campaign("WELCOME", None, json!({"per_customer_limit": 2}))
        .await;
    let (user, _) = app.customer("twice@x.io").await;
    // Without anyone named, a shared code cannot count its per-customer limit.
    let res = app
        .redeem(json!({"code": "WELCOME", "order": eur(1000)}))
        .await;
    let problem = assert_problem(res, 409, "code_not_redeemable").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("customer_required")
    );
    for _ in 0..2 {
        let res = app
            .redeem(json!({"code": "WELCOME", "customer": user, "order": eur(1000)}))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let res = app
        .redeem(json!({"code": "WELCOME", "customer": user, "order": eur(1000)}))
        .await;
    assert_problem(res, 409, "customer_limit_reached").await;
    let listed = app
        .get_json(
            &format!("/api/v1/redemptions?customer={user}&limit=1"),
            &app.admin_token,
        )
        .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let cursor = listed["next_cursor"].as_str().unwrap();
    let rest = app
        .get_json(
            &format!("/api/v1/redemptions?customer={user}&cursor={cursor}"),
            &app.admin_token,
        )
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());
    assert!(
        listed["items"][0]["created_at"].as_str() >= rest["items"][0]["created_at"].as_str(),
        "newest first"
    );
}

#[actix_web::test]
async fn a_validation_breaks_an_order_down_per_code_and_line_and_writes_nothing() {
    let app = spawn_app().await;
    let (starts, ends) = window();
    // 20 % off shoes but not the sale SKU, 5 EUR off anything, and a customer's unique code.
    let shoes = app
        .shared_campaign(
            "SHOES20",
            None,
            json!({"discount": {"percent": 20},
                "rules": {"categories": {"include": ["shoes"]}, "skus": {"exclude": ["SALE-1"]}},
                "per_customer_limit": 10}),
        )
        .await;
    app.shared_campaign(
        "FIVE",
        None,
        json!({"discount": {"amount_cents": 500, "currency": "EUR"}, "per_customer_limit": 10}),
    )
    .await;
    let c = app
        .campaign(
            json!({"name": "mine", "kind": "discount", "discount": {"percent": 50},
            "pool_size": 2, "starts_at": starts, "ends_at": ends}),
        )
        .await;
    let mine = c["id"].as_str().unwrap().to_owned();
    app.add_codes(&mine, json!({"codes": ["MINE-1", "MINE-2"]}))
        .await;
    let (ann, ann_token) = app.customer("ann@x.io").await;
    let (_, bob_token) = app.customer("bob@x.io").await;
    assert_eq!(
        app.claim(&mine, &ann_token, None).await.status(),
        StatusCode::CREATED
    );
    let items = json!([
        {"sku": "RUN-1", "category": "shoes", "quantity": 2, "price_cents": 4999},
        {"sku": "SALE-1", "category": "shoes", "quantity": 1, "price_cents": 3000},
        {"sku": "HAT-1", "category": "hats", "quantity": 1, "price_cents": 1500},
        {"sku": "SOCK-1", "category": "Shoes", "quantity": 3, "price_cents": 333},
        {"sku": "BAG-1", "retailer": "Acme", "quantity": 1, "price_cents": 2000}
    ]);
    let order = json!({"currency": "EUR", "items": items});
    // Ann, for herself: her own code applies; Bob, asking about Ann's code, is told it is not found.
    let v = app
        .validate(
            &ann_token,
            json!({"codes": ["SHOES20", "FIVE", "MINE-1"], "order": order}),
        )
        .await;
    assert_eq!(v["valid"], true, "{v}");
    let r = &v["redeemables"];
    // 20 % of 9998 = 1999 (line 0); of 999 = 199 (line 3); the sale SKU and other lines untouched.
    assert_eq!(
        r[0]["items"],
        json!([{"index": 0, "discount_cents": 1999}, {"index": 3, "discount_cents": 199}])
    );
    assert_eq!(r[1]["discount_cents"], 500);
    let total: i64 = 9998 + 3000 + 1500 + 999 + 2000;
    let first_two = 1999 + 199 + 500;
    let third = r[2]["discount_cents"].as_i64().unwrap();
    // Half of what each line has left (FIVE took its 500 from the first line): 3749 + 1500 +
    // 750 + 400 + 1000.
    assert_eq!(third, 7399, "{v}");
    assert_eq!(v["order"]["amount_cents"], total);
    assert_eq!(v["order"]["discount_cents"], first_two + third);
    assert_eq!(v["order"]["total_cents"], total - first_two - third);
    let v = app
        .validate(
            &bob_token,
            json!({"codes": ["MINE-1", "NO-SUCH", "MINE-2"], "order": order}),
        )
        .await;
    assert_eq!(v["redeemables"][0]["reason"], "not_found");
    assert_eq!(v["redeemables"][1]["reason"], "not_found");
    // Nor can anyone learn that a code nobody holds yet exists.
    assert_eq!(v["redeemables"][2]["reason"], "not_found");
    assert_eq!(v["valid"], false);
    // A customer may not validate for others.
    let res = app
        .post_json(
            "/api/v1/validations",
            &bob_token,
            json!({"codes": ["FIVE"], "customer": ann, "order": order}),
        )
        .await;
    assert_problem(res, 404, "not_found").await;
    let res = app
        .post_json(
            "/api/v1/validations",
            &bob_token,
            json!({"codes": ["FIVE"], "customer_ref": "x", "order": order}),
        )
        .await;
    assert_problem(res, 403, "forbidden").await;
    // Amounts that disagree with the items, and empty code lists, are refused.
    let res = app
        .post_json(
            "/api/v1/validations",
            &app.admin_token,
            json!({"codes": ["FIVE"], "order": {"amount_cents": 1, "currency": "EUR", "items": items}}),
        )
        .await;
    assert_problem(res, 422, "validation_failed").await;
    let res = app
        .post_json(
            "/api/v1/validations",
            &app.admin_token,
            json!({"codes": [], "order": eur(1)}),
        )
        .await;
    assert_problem(res, 422, "validation_failed").await;
    // Nothing was written: the unique code is still only claimed, no redemption exists.
    let check = app.get_json("/api/v1/codes/MINE-1", &app.admin_token).await;
    assert_eq!(check["status"], "claimed");
    let listed = app.get_json("/api/v1/redemptions", &app.admin_token).await;
    assert_eq!(listed["items"], json!([]));
    // The campaign's report counts the reasons validations gave.
    let report = app
        .get_json(
            &format!("/api/v1/reports/campaigns/{shoes}"),
            &app.admin_token,
        )
        .await;
    assert!(report["top_inapplicable_reasons"].is_array(), "{report}");
    // A redemption with items answers the same breakdown.
    let res = app
        .redeem(json!({"code": "SHOES20", "customer": ann, "order": order}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let done: Value = res.json().await.unwrap();
    assert_eq!(done["redeemables"][0]["items"], r[0]["items"]);
    assert_eq!(done["items"], r[0]["items"]);
    assert_eq!(done["currency"], "EUR");
}

#[actix_web::test]
async fn the_last_budget_cent_goes_once_and_a_rollback_gives_it_back() {
    let app = spawn_app().await;
    let id = app
        .shared_campaign(
            "BUDGET",
            None,
            json!({"discount": {"amount_cents": 100, "currency": "EUR"}, "per_customer_limit": 5,
                "budgets": [{"measure": "discount_cents", "limit": 1000, "period": "day"},
                            {"measure": "redemptions", "limit": 1, "per": "customer"}]}),
        )
        .await;
    let tries = futures_util::future::join_all((0..30).map(|i| {
        app.redeem(json!({"code": "BUDGET", "customer_ref": format!("b{i}"), "order": eur(5000)}))
    }))
    .await;
    let mut done = Vec::new();
    for res in tries {
        match res.status() {
            StatusCode::CREATED => done.push(res.json::<Value>().await.unwrap()),
            _ => {
                assert_problem(res, 409, "budget_exhausted").await;
            }
        }
    }
    assert_eq!(done.len(), 10, "ten times 100 is the budget");
    let c = app
        .get_json(&format!("/api/v1/campaigns/{id}"), &app.admin_token)
        .await;
    assert_eq!(c["budgets"][0]["used"], 1000);
    assert_eq!(c["budgets"][1]["used"], 10);
    // The admins were told when the day's budget reached 90 %, once.
    let mut told = Vec::new();
    for _ in 0..100 {
        told = app
            .notifications()
            .await
            .into_iter()
            .filter(|n| n["kind"] == "budget_low")
            .collect();
        if !told.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0]["subject"].as_str().unwrap().starts_with(&id));
    let res = app.rollback(done[3]["id"].as_str().unwrap()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let c = app
        .get_json(&format!("/api/v1/campaigns/{id}"), &app.admin_token)
        .await;
    assert_eq!(c["budgets"][0]["used"], 900);
    // A customer who already had theirs is still at their own budget; a new one gets it.
    let res = app
        .redeem(
            json!({"code": "BUDGET", "customer_ref": done[0]["customer_ref"], "order": eur(5000)}),
        )
        .await;
    assert_problem(res, 409, "budget_exhausted").await;
    let res = app
        .redeem(json!({"code": "BUDGET", "customer_ref": "newcomer", "order": eur(5000)}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

/// A daily budget counts in the campaign's timezone; a rollback the next day gives back to the
/// day it was taken from, not to today's.
#[actix_web::test]
async fn a_rollback_gives_back_to_the_period_it_was_taken_from() {
    let start: chrono::DateTime<chrono::Utc> = "2030-06-10T20:00:00Z".parse().unwrap();
    let clock = ManualClock::new(start);
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with_clock(test_settings(dir.path().join("data")), dir, clock.clone()).await;
    let c = app
        .campaign(
            json!({"name": "daily", "kind": "discount", "code_mode": "shared",
            "discount": {"amount_cents": 300, "currency": "EUR"}, "pool_size": 1,
            "timezone": "Asia/Tokyo", "per_customer_limit": 100,
            "budgets": [{"measure": "discount_cents", "limit": 500, "period": "day"}],
            "starts_at": "2030-06-01T00:00:00Z", "ends_at": "2030-07-01T00:00:00Z"}),
        )
        .await;
    let id = c["id"].as_str().unwrap().to_owned();
    app.add_codes(&id, json!({"codes": ["DAILY"]})).await;
    let redeem = || app.redeem(json!({"code": "DAILY", "customer_ref": "r", "order": eur(1000)}));
    // 20:00 UTC is 05:00 the next day in Tokyo: day A.
    let first: Value = redeem().await.json().await.unwrap();
    assert_problem(redeem().await, 409, "budget_exhausted").await;
    // Tokyo's next day (B): a fresh budget.
    clock.advance(chrono::Duration::days(1));
    assert_eq!(redeem().await.status(), StatusCode::CREATED);
    // Rolling back day A's redemption gives to day A, not to today: today stays at 300 of 500.
    assert_eq!(
        app.rollback(first["id"].as_str().unwrap()).await.status(),
        StatusCode::OK
    );
    assert_problem(redeem().await, 409, "budget_exhausted").await;
    let c = app
        .get_json(&format!("/api/v1/campaigns/{id}"), &app.admin_token)
        .await;
    assert_eq!(c["budgets"][0]["used"], 300);
}

#[actix_web::test]
async fn a_paused_campaign_hands_out_and_redeems_nothing_until_resumed_and_end_is_final() {
    let app = spawn_app().await;
    let id = app.active_campaign(5, 3).await;
    let (user, token) = app.customer("pause@x.io").await;
    let held: Value = app.claim(&id, &token, None).await.json().await.unwrap();
    let code = held["code"].as_str().unwrap().to_owned();
    let admin = app.admin_token.clone();
    let res = app
        .post_json(&format!("/api/v1/campaigns/{id}/pause"), &admin, json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let c: Value = res.json().await.unwrap();
    assert_eq!(c["status"], "paused");
    assert_problem(
        app.claim(&id, &token, None).await,
        422,
        "campaign_not_active",
    )
    .await;
    let v = app
        .validate(&token, json!({"codes": [code], "order": eur(1000)}))
        .await;
    assert_eq!(v["redeemables"][0]["reason"], "paused");
    let res = app
        .redeem(json!({"code": code, "customer": user, "order": eur(1000)}))
        .await;
    assert_problem(res, 409, "code_not_redeemable").await;
    let res = app
        .post_json(&format!("/api/v1/campaigns/{id}/resume"), &admin, json!({}))
        .await;
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "active");
    assert_eq!(
        app.claim(&id, &token, None).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(app.end_campaign(&id).await.status(), StatusCode::OK);
    for action in ["resume", "pause"] {
        let res = app
            .post_json(
                &format!("/api/v1/campaigns/{id}/{action}"),
                &admin,
                json!({}),
            )
            .await;
        assert_problem(res, 409, "conflict").await;
    }
}

#[actix_web::test]
async fn a_disabled_code_is_neither_handed_out_nor_redeemed() {
    let app = spawn_app().await;
    let (starts, ends) = window();
    let c = app
        .campaign(
            json!({"name": "d", "kind": "discount", "discount": {"percent": 5},
            "pool_size": 2, "per_customer_limit": 2, "starts_at": starts, "ends_at": ends}),
        )
        .await;
    let id = c["id"].as_str().unwrap().to_owned();
    app.add_codes(&id, json!({"codes": ["D-1", "D-2"]})).await;
    let patch = |code: &'static str, disabled: bool| {
        let path = format!("/api/v1/codes/{code}");
        let app = &app;
        async move {
            app.call(
                Method::PATCH,
                &path,
                Some(&app.admin_token),
                Some(json!({"disabled": disabled})),
            )
            .await
        }
    };
    let res = patch("D-1", true).await;
    assert_eq!(res.json::<Value>().await.unwrap()["disabled"], true);
    let (_, token) = app.customer("dis@x.io").await;
    let got: Value = app.claim(&id, &token, None).await.json().await.unwrap();
    assert_eq!(got["code"], "D-2", "the disabled code is skipped");
    assert_problem(app.claim(&id, &token, None).await, 409, "sold_out").await;
    let v = app
        .validate(&token, json!({"codes": ["D-2"], "order": eur(100)}))
        .await;
    assert_eq!(v["redeemables"][0]["status"], "applicable");
    patch("D-2", true).await;
    let v = app
        .validate(&token, json!({"codes": ["D-2"], "order": eur(100)}))
        .await;
    assert_eq!(v["redeemables"][0]["reason"], "disabled");
    patch("D-1", false).await;
    let got: Value = app.claim(&id, &token, None).await.json().await.unwrap();
    assert_eq!(got["code"], "D-1", "enabled again: handed out");
    let res = app
        .call(
            Method::PATCH,
            "/api/v1/codes/NOPE",
            Some(&app.admin_token),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_problem(res, 404, "not_found").await;
}

#[actix_web::test]
async fn a_claimed_code_expires_days_after_its_claim_at_midnight_where_its_holder_lives() {
    let start: chrono::DateTime<chrono::Utc> = "2030-03-10T12:00:00Z".parse().unwrap();
    let clock = ManualClock::new(start);
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with_clock(test_settings(dir.path().join("data")), dir, clock.clone()).await;
    let c = app
        .campaign(
            json!({"name": "v", "kind": "discount", "discount": {"percent": 5},
            "pool_size": 3, "validity_days_after_claim": 2, "expire_at_local_end_of_day": true,
            "starts_at": "2030-03-01T00:00:00Z", "ends_at": "2030-04-01T00:00:00Z"}),
        )
        .await;
    let id = c["id"].as_str().unwrap().to_owned();
    app.add_codes(&id, json!({"count": 3})).await;
    let res = app
        .create_user(
            json!({"email": "tokyo@x.io", "password": "password-1", "timezone": "Asia/Tokyo"}),
        )
        .await;
    let user: Value = res.json().await.unwrap();
    let token = app.login("tokyo@x.io", "password-1").await;
    let got: Value = app.claim(&id, &token, None).await.json().await.unwrap();
    // 12 March 12:00 UTC is 21:00 in Tokyo: valid until 13 March 15:00 UTC (midnight, Tokyo).
    assert_eq!(got["expires_at"], "2030-03-12T15:00:00Z");
    let wallet = app.get_json("/api/v1/wallet", &token).await;
    assert_eq!(wallet["items"][0]["valid_until"], "2030-03-12T15:00:00Z");
    let code = got["code"].as_str().unwrap().to_owned();
    clock.set("2030-03-12T14:59:00Z".parse().unwrap());
    let v = app
        .validate(&token, json!({"codes": [code], "order": eur(100)}))
        .await;
    assert_eq!(v["redeemables"][0]["status"], "applicable");
    clock.set("2030-03-12T15:00:00Z".parse().unwrap());
    let v = app
        .validate(&token, json!({"codes": [code], "order": eur(100)}))
        .await;
    assert_eq!(v["redeemables"][0]["reason"], "expired");
    let res = app
        .redeem(json!({"code": code, "customer": user["id"], "order": eur(100)}))
        .await;
    assert_problem(res, 409, "code_not_redeemable").await;
}

#[actix_web::test]
async fn the_wallet_by_phone_lists_codes_bought_and_requested_with_it() {
    let app = spawn_app().await;
    let (starts, ends) = window();
    let c = app
        .campaign(
            json!({"name": "shop", "kind": "flash_sale", "price_cents": 500,
            "pool_size": 5, "per_customer_limit": 5, "starts_at": starts, "ends_at": ends}),
        )
        .await;
    let id = c["id"].as_str().unwrap().to_owned();
    app.add_codes(&id, json!({"count": 5})).await;
    // At the till, a buyer whose account has no phone buys two codes for a number (a customer
    // may give only their own confirmed number; the shop may give any).
    let (guest, token) = app.customer("guest@x.io").await;
    let res = app
        .post_json(
            "/api/v1/orders",
            &token,
            json!({"campaign_id": id, "quantity": 2, "phone": "+33612345678"}),
        )
        .await;
    assert_problem(res, 422, "validation_failed").await;
    let res = app
        .post_json(
            "/api/v1/orders",
            &app.admin_token,
            json!({"campaign_id": id, "quantity": 2, "phone": "+33612345678", "customer": guest}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let order: Value = res.json().await.unwrap();
    let wallet = app
        .get_json("/api/v1/wallet?phone=%2B33612345678", &app.admin_token)
        .await;
    let listed: Vec<&str> = wallet["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    let bought: Vec<&str> = order["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(listed, bought);
    assert!(wallet["customer"].is_null(), "no account has this number");
    // An unknown number has an empty wallet, not an error.
    let empty = app
        .get_json("/api/v1/wallet?phone=%2B33700000000", &app.admin_token)
        .await;
    assert_eq!(empty["items"], json!([]));
}

/// Uses, per-customer counts and budgets are counted from the redemptions themselves: after a
/// restart the limits hold as before.
#[actix_web::test]
async fn a_shared_codes_uses_and_budgets_survive_a_restart() {
    let app = spawn_app().await;
    let id = app
        .shared_campaign(
            "KEEP",
            Some(3),
            json!({"budgets": [{"measure": "redemptions", "limit": 2, "per": "customer"}],
                   "per_customer_limit": 5}),
        )
        .await;
    for who in ["a", "a", "b"] {
        let res = app
            .redeem(json!({"code": "KEEP", "customer_ref": who, "order": eur(1000)}))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let dir = app.stop().await;
    let app = crate::helpers::spawn_with(test_settings(dir.path().join("data")), dir).await;
    let res = app
        .redeem(json!({"code": "KEEP", "customer_ref": "c", "order": eur(1000)}))
        .await;
    assert_problem(res, 409, "usage_limit_reached").await;
    let c = app
        .get_json(&format!("/api/v1/campaigns/{id}"), &app.admin_token)
        .await;
    assert_eq!(
        (c["redemptions"].as_u64(), c["budgets"][0]["used"].as_i64()),
        (Some(3), Some(3))
    );
    let listed = app
        .get_json(
            &format!("/api/v1/redemptions?campaign={id}"),
            &app.admin_token,
        )
        .await;
    let refs: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["customer_ref"].as_str().unwrap())
        .collect();
    assert_eq!(refs, ["b", "a", "a"], "newest first");
}
