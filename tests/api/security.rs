//! Holes a hostile client (or a neighbour on the host) found, each tried again here and refused.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, Server, login_to, serve};

/// Every directory under `dir` and its mode, and every file and its mode.
fn modes(dir: &Path) -> Vec<(String, u32, bool)> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
        out.push((d.display().to_string(), mode, true));
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                pending.push(path);
            } else {
                let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
                out.push((path.display().to_string(), mode, false));
            }
        }
    }
    out
}

/// The store holds password hashes, the token secret and the VAPID private key; the mail
/// transport's files hold personal data. Whatever the umask the binary is started with (the test
/// runner's is usually 022), nobody but its owner can read them.
#[actix_web::test]
async fn the_store_and_its_mail_are_readable_by_their_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data");
    let (child, base) = serve(&store);
    let _server = Server(child);
    let http = reqwest::Client::new();
    // A customer following a demo retailer, and a digest written by the file transport.
    let res = http
        .post(format!("{base}/api/v1/users"))
        .json(&json!({"email": "perm@x.io", "password": "password-1", "timezone": "UTC"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let user = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let customer = login_to(&http, &base, "perm@x.io", "password-1").await;
    let res = http
        .post(format!("{base}/api/v1/users/{user}/subscriptions"))
        .bearer_auth(&customer)
        .json(&json!({"category": "Books"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let admin = login_to(&http, &base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let mut mail = Vec::new();
    for _ in 0..100 {
        let res = http
            .post(format!("{base}/api/v1/admin/digests/run"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        mail = std::fs::read_dir(store.join("mail"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        if !mail.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!mail.is_empty(), "the digest was written as a file");
    let found = modes(&store);
    assert!(
        found.iter().any(|(p, _, _)| p.ends_with("/db")),
        "{found:?}"
    );
    for (path, mode, is_dir) in &found {
        let wanted = if *is_dir { 0o700 } else { 0o600 };
        assert_eq!(*mode, wanted, "{path} is {mode:o}");
    }
}

/// Imported codes that a spreadsheet would run as formulas are exported neutralised, and a code
/// cannot carry a separator that would forge a row or a column (OWASP: CSV injection).
#[actix_web::test]
async fn exported_codes_cannot_run_as_formulas_or_forge_rows() {
    let app = crate::helpers::spawn_app().await;
    let (starts, ends) = crate::campaigns::window();
    let c = app
        .campaign(json!({"name": "csv", "kind": "flash_sale", "pool_size": 10,
            "starts_at": starts, "ends_at": ends}))
        .await;
    let id = c["id"].as_str().unwrap();
    for forged in ["A,redeemed,x", "B;C", "D\"E"] {
        let res = app.add_codes(id, json!({"codes": [forged]})).await;
        crate::helpers::assert_problem(res, 422, "validation_failed").await;
    }
    let formulas = ["=1+2", "+cmd|calc", "-2+3", "@SUM(1+1)", "PLAIN-1"];
    let res = app.add_codes(id, json!({"codes": formulas})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let csv = app.codes_csv(id).await.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let cells: Vec<String> = reader
        .records()
        .map(|r| r.unwrap().get(0).unwrap().to_owned())
        .collect();
    // Codes added together are listed in code order (as after a restart).
    assert_eq!(
        cells,
        ["'+cmd|calc", "'-2+3", "'=1+2", "'@SUM(1+1)", "PLAIN-1"],
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 6, "a header and five rows: {csv}");
}

/// A phone number belongs to one account: registering someone else's number first would hand
/// over their codes at a till that looks a wallet up by phone.
#[actix_web::test]
async fn a_phone_number_belongs_to_one_account() {
    let app = crate::helpers::spawn_app().await;
    let phone = "+33612345678";
    let register = |email: &'static str, phone: Option<&'static str>| {
        let mut body = json!({"email": email, "password": "password-1", "timezone": "UTC"});
        if let Some(p) = phone {
            body["phone"] = json!(p);
        }
        app.call(reqwest::Method::POST, "/api/v1/users", None, Some(body))
    };
    let owner = register("owner@x.io", Some(phone)).await;
    assert_eq!(owner.status(), StatusCode::CREATED);
    let owner = owner.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    crate::helpers::assert_problem(register("thief@x.io", Some(phone)).await, 409, "conflict")
        .await;
    let thief = register("thief@x.io", None).await;
    assert_eq!(thief.status(), StatusCode::CREATED);
    let thief = thief.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let thief_token = app.login("thief@x.io", "password-1").await;
    let res = app
        .patch_user(&thief, &thief_token, json!({"phone": phone}))
        .await;
    crate::helpers::assert_problem(res, 409, "conflict").await;
    // The till finds the owner's wallet; the owner may keep (re-send) their own number.
    let wallet = app
        .get_json("/api/v1/wallet?phone=%2B33612345678", &app.admin_token)
        .await;
    assert_eq!(wallet["customer"], owner.as_str(), "{wallet}");
    let owner_token = app.login("owner@x.io", "password-1").await;
    let res = app
        .patch_user(&owner, &owner_token, json!({"phone": phone}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}

/// The document says a custom charset holds at most 256 characters; the server holds to it (every
/// code generated reads the charset).
#[actix_web::test]
async fn a_custom_charset_is_bounded() {
    let app = crate::helpers::spawn_app().await;
    let (starts, ends) = crate::campaigns::window();
    let long: String = ('\u{100}'..).take(300).collect();
    let res = app
        .call(
            reqwest::Method::POST,
            "/api/v1/campaigns",
            Some(&app.admin_token),
            Some(json!({"name": "c", "kind": "flash_sale", "pool_size": 10,
                "starts_at": starts, "ends_at": ends, "code": {"custom_charset": long}})),
        )
        .await;
    let problem = crate::helpers::assert_problem(res, 422, "validation_failed").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("custom_charset"),
        "{problem}"
    );
}

/// An API key never acts above its creator's current role: demoting the creator caps the key,
/// erasing the creator ends it (and a key made by such a key follows it).
#[actix_web::test]
async fn api_keys_never_outlive_or_outrank_their_creator() {
    let app = crate::helpers::spawn_app().await;
    let (second, token) = app.customer("second-admin@x.io").await;
    let res = app.set_role(&second, &app.admin_token, "admin").await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.create_api_key(&token, "ops", "admin").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let key = res.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    // A key made by that key.
    let res = app.create_api_key(&key, "ops-child", "admin").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let child = res.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    for k in [&key, &child] {
        assert_eq!(app.list_users(k, "").await.status(), StatusCode::OK);
    }

    // Demoted to manager: neither key acts as an admin any more.
    let res = app.set_role(&second, &app.admin_token, "manager").await;
    assert_eq!(res.status(), StatusCode::OK);
    for k in [&key, &child] {
        crate::helpers::assert_problem(app.list_users(k, "").await, 403, "forbidden").await;
        crate::helpers::assert_problem(
            app.create_api_key(k, "more", "admin").await,
            403,
            "forbidden",
        )
        .await;
        let res = app
            .call(reqwest::Method::GET, "/api/v1/campaigns", Some(k), None)
            .await;
        assert_eq!(res.status(), StatusCode::OK, "still a manager's key");
    }

    // Erased: neither key authenticates.
    let res = app.delete_user(&second, &app.admin_token).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    for k in [&key, &child] {
        crate::helpers::assert_problem(
            app.call(reqwest::Method::GET, "/api/v1/campaigns", Some(k), None)
                .await,
            401,
            "unauthorized",
        )
        .await;
    }
}

/// Ten wrong passwords from one address used to lock the account for everyone, admins included.
/// Failures now count per (account, address): the right password from elsewhere works.
#[actix_web::test]
async fn nobody_can_lock_someone_else_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(dir.path().join("data"));
    settings.rate_limit.login_per_minute = 3;
    // The test client plays a proxy, so each request can say which address it comes from.
    settings.rate_limit.trusted_proxies = vec!["127.0.0.1".into()];
    let app = crate::helpers::spawn_with(settings, dir).await;
    app.customer("victim@x.io").await;
    let login = |from: &'static str, password: &'static str| {
        app.client
            .post(app.url("/api/v1/auth/tokens"))
            .header("x-forwarded-for", from)
            .json(&json!({"email": "victim@x.io", "password": password}))
            .send()
    };
    for _ in 0..3 {
        let res = login("203.0.113.5", "wrong-guess").await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = login("203.0.113.5", "customer-password").await.unwrap();
    crate::helpers::assert_problem(res, 429, "rate_limited").await;
    let res = login("198.51.100.7", "customer-password").await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "the owner elsewhere gets in"
    );
}

/// Requests count per user (or API key), not per token: logging in again buys no allowance.
#[actix_web::test]
async fn more_tokens_buy_no_more_requests() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(dir.path().join("data"));
    settings.rate_limit.per_second = 1;
    settings.rate_limit.burst = 8;
    let app = crate::helpers::spawn_with(settings, dir).await;
    app.customer("many@x.io").await;
    let mut tokens = vec![];
    for _ in 0..3 {
        tokens.push(app.login("many@x.io", "customer-password").await);
    }
    let mut refused = 0;
    for token in &tokens {
        for _ in 0..6 {
            if app.me(token).await.status() == StatusCode::TOO_MANY_REQUESTS {
                refused += 1;
            }
        }
    }
    assert!(
        refused >= 8,
        "18 requests on one user's allowance of 8 (+1/s): {refused} refused"
    );
}

/// The `Location` of an order and of a redemption points at a route that answers, to the one
/// who may see it (a till needs both).
#[actix_web::test]
async fn the_location_of_an_order_or_a_redemption_resolves_for_those_who_may_see_it() {
    let app = crate::helpers::spawn_app().await;
    let id = app.active_campaign(5, 5).await;
    let (_, buyer) = app.customer("buyer@x.io").await;
    let (_, other) = app.customer("other@x.io").await;
    let res = app
        .call(
            reqwest::Method::POST,
            "/api/v1/orders",
            Some(&buyer),
            Some(json!({"campaign_id": id, "quantity": 2})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let order: Value = res.json().await.unwrap();
    assert_eq!(app.get_json(&location, &buyer).await, order);
    assert_eq!(app.get_json(&location, &app.admin_token).await, order);
    let res = app
        .call(reqwest::Method::GET, &location, Some(&other), None)
        .await;
    crate::helpers::assert_problem(res, 404, "not_found").await;

    let code = order["codes"][0].as_str().unwrap();
    let res = app
        .redeem(json!({"code": code, "order_amount_cents": 1000}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let mut redemption: Value = res.json().await.unwrap();
    // The answer to the redemption adds the order's breakdown to the record.
    assert_eq!(redemption["order"]["total_cents"], 500);
    for breakdown in ["valid", "order", "redeemables"] {
        redemption.as_object_mut().unwrap().remove(breakdown);
    }
    assert_eq!(app.get_json(&location, &app.admin_token).await, redemption);
    let res = app
        .call(reqwest::Method::GET, &location, Some(&buyer), None)
        .await;
    crate::helpers::assert_problem(res, 403, "forbidden").await;
}

/// The unsubscribe page and the API's documentation page cannot be framed by another site, and
/// the unsubscribe page runs nothing and posts only to itself.
#[actix_web::test]
async fn pages_cannot_be_framed_and_the_unsubscribe_page_runs_nothing() {
    let app = crate::helpers::spawn_app().await;
    let (user, _) = app.customer("framed@x.io").await;
    let token = crate::helpers::unsubscribe_token(&user);
    for path in [format!("/unsubscribe/{token}"), "/docs/".to_owned()] {
        let res = app.call(reqwest::Method::GET, &path, None, None).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let csp = res.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(res.headers()["x-frame-options"], "DENY", "{path}");
        assert_eq!(res.headers()["x-content-type-options"], "nosniff", "{path}");
    }
    let res = app
        .call(
            reqwest::Method::GET,
            &format!("/unsubscribe/{token}"),
            None,
            None,
        )
        .await;
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(csp.contains("form-action 'self'"), "{csp}");
}

/// `/metrics` tells anyone how busy the server is and what it does; with `http.metrics_token`
/// set it answers only the scraper that knows the token.
#[actix_web::test]
async fn metrics_can_be_kept_for_the_scraper_with_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(dir.path().join("data"));
    settings.http.metrics_token = "scrape-token-0123456789".into();
    let app = crate::helpers::spawn_with(settings, dir).await;
    for token in [None, Some("wrong"), Some(app.admin_token.as_str())] {
        let res = app
            .call(reqwest::Method::GET, "/metrics", token, None)
            .await;
        crate::helpers::assert_problem(res, 401, "unauthorized").await;
    }
    let res = app
        .call(
            reqwest::Method::GET,
            "/metrics",
            Some("scrape-token-0123456789"),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("voucherd_http_requests_total")
    );
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Anonymous guesses with random emails used to run argon2 each and slow every real login: an
/// unknown email now costs no hash (it only waits as long as one), and a flood of real checks is
/// refused past a bounded queue (503) rather than queued without end.
#[actix_web::test]
async fn guesses_at_unknown_emails_cost_no_hashing_and_a_flood_is_refused_not_queued() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data");
    let (child, base) = crate::helpers::serve_with_env(
        &store,
        &[
            ("VOUCHERD__RATE_LIMIT__PER_SECOND", "100000"),
            ("VOUCHERD__RATE_LIMIT__BURST", "100000"),
        ],
    );
    let _server = Server(child);
    let http = reqwest::Client::new();
    let metrics = || async {
        http.get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let argon2 = "voucherd_password_checks_total{result=\"argon2\"}";
    let unknown = "voucherd_password_checks_total{result=\"unknown\"}";
    let before = metrics().await;
    for i in 0..20 {
        let res = http
            .post(format!("{base}/api/v1/auth/tokens"))
            .json(&json!({"email": format!("nobody{i}@x.io"), "password": "guess-guess"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let after = metrics().await;
    assert_eq!(metric(&after, argon2), metric(&before, argon2), "{after}");
    assert_eq!(metric(&after, unknown) - metric(&before, unknown), 20.0);

    // Two hundred real logins at once: each is a hash; past the queue they are refused at once.
    let logins = (0..200).map(|_| {
        http.post(format!("{base}/api/v1/auth/tokens"))
            .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
            .send()
    });
    let answers = futures_util::future::join_all(logins).await;
    let (mut created, mut busy) = (0, 0);
    for res in answers {
        match res.unwrap().status() {
            StatusCode::CREATED => created += 1,
            StatusCode::SERVICE_UNAVAILABLE => busy += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert!(created > 0 && busy > 0, "{created} created, {busy} refused");
}

/// After `DELETE /users/{id}` nothing in any tree of the store names the person: not their id,
/// email or phone — orders, redemptions and codes stay (sales and reports), naming nobody.
#[actix_web::test]
async fn erasure_leaves_no_record_naming_the_person() {
    let dir = tempfile::tempdir().unwrap();
    let settings = crate::helpers::test_settings(dir.path().join("data"));
    let app = crate::helpers::spawn_with(settings.clone(), dir).await;
    let phone = "+33698765432";
    let res = app
        .call(
            reqwest::Method::POST,
            "/api/v1/users",
            None,
            Some(
                json!({"email": "Gone.Person@Example.org", "password": "password-1",
                "timezone": "Europe/Paris", "phone": phone}),
            ),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let user = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = app.login("gone.person@example.org", "password-1").await;
    // Everything a customer leaves behind: a subscription, a keyed claim, an order with a phone,
    // a redemption naming them, an API key made by them (as an admin, for a moment).
    let res = app
        .subscribe(&user, &token, json!({"retailer": "Somewhere"}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let campaign = app.active_campaign(10, 5).await;
    let res = app
        .client
        .post(app.url(&format!("/api/v1/campaigns/{campaign}/claims")))
        .bearer_auth(&token)
        .header("Idempotency-Key", "erase-me-1")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let code = res.json::<Value>().await.unwrap()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .call(
            reqwest::Method::POST,
            "/api/v1/orders",
            Some(&token),
            Some(json!({"campaign_id": campaign, "quantity": 2, "phone": phone})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app
        .redeem(json!({"code": code, "customer": user, "order_amount_cents": 1000}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    app.set_role(&user, &app.admin_token, "admin").await;
    let res = app.create_api_key(&token, "theirs", "customer").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    app.set_role(&user, &app.admin_token, "customer").await;

    let res = app.delete_user(&user, &app.admin_token).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let c = app
        .get_json(&format!("/api/v1/campaigns/{campaign}"), &app.admin_token)
        .await;
    assert_eq!(
        (c["claimed"].as_u64(), c["redeemed"].as_u64()),
        (Some(3), Some(1))
    );
    let dir = app.stop().await;

    let store = voucherd::store::Store::open(&settings.store).unwrap();
    let mut export = Vec::new();
    voucherd::store::backup::export(&store, &mut export).unwrap();
    let export = String::from_utf8(export).unwrap();
    let id: uuid::Uuid = user.parse().unwrap();
    for (what, needle) in [
        ("the id", hex::encode(id.as_bytes())),
        ("the id as text", hex::encode(user.as_bytes())),
        ("the email", hex::encode("gone.person@example.org")),
        ("the email as given", hex::encode("Gone.Person@Example.org")),
        ("the phone", hex::encode(phone)),
    ] {
        for line in export.lines().skip(1) {
            let record: Value = serde_json::from_str(line).unwrap();
            for part in ["key", "value"] {
                let hex = record[part].as_str().unwrap_or_default();
                assert!(
                    !hex.contains(&needle),
                    "{what} is still in tree {}: {line}",
                    record["tree"]
                );
            }
        }
    }
    drop((store, dir));
}

/// An Idempotency-Key used to be remembered even for an answer that created nothing (a 404): a
/// client could fill the store with keys. Such answers are not kept, and keyed requests per
/// caller per day are capped (429).
#[actix_web::test]
async fn idempotency_keys_cannot_fill_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(dir.path().join("data"));
    settings.rate_limit.idempotency_keys_per_day = 3;
    let app = crate::helpers::spawn_with(settings, dir).await;
    let campaign = app.active_campaign(5, 5).await;
    let (_, token) = app.customer("keys@x.io").await;
    let keyed = |campaign: String, key: &'static str| {
        app.client
            .post(app.url(&format!("/api/v1/campaigns/{campaign}/claims")))
            .bearer_auth(&token)
            .header("Idempotency-Key", key)
            .json(&json!({}))
            .send()
    };
    let nowhere = "0190b3f2-0000-7000-8000-000000000000".to_owned();
    let res = keyed(nowhere, "k-1").await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // Not remembered: the same key serves the next (other) request.
    let res = keyed(campaign.clone(), "k-1").await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = keyed(campaign.clone(), "k-2").await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = keyed(campaign.clone(), "k-3").await.unwrap();
    crate::helpers::assert_problem(res, 429, "rate_limited").await;
    // Without a key the caller is served as ever.
    let res = app.claim(&campaign, &token, None).await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

/// A right-to-left override or a zero-width character makes a name read as another (an invoice
/// "for gnp.exe", two retailers that look the same): refused wherever a name is given.
#[actix_web::test]
async fn names_cannot_hide_or_reverse_what_they_say() {
    let app = crate::helpers::spawn_app().await;
    let (user, token) = app.customer("names@x.io").await;
    let (starts, ends) = crate::campaigns::window();
    let res = app
        .call(
            reqwest::Method::POST,
            "/api/v1/campaigns",
            Some(&app.admin_token),
            Some(
                json!({"name": "Sale \u{202E}gnp.exe", "kind": "flash_sale", "pool_size": 5,
                "starts_at": starts, "ends_at": ends}),
            ),
        )
        .await;
    crate::helpers::assert_problem(res, 422, "validation_failed").await;
    let res = app
        .subscribe(&user, &token, json!({"retailer": "Ac\u{200B}me"}))
        .await;
    crate::helpers::assert_problem(res, 422, "validation_failed").await;
    let res = app
        .create_api_key(&app.admin_token, "\u{2066}shop\u{2069}", "customer")
        .await;
    crate::helpers::assert_problem(res, 422, "validation_failed").await;
}

/// Probes that held when the server was attacked, kept so they keep holding: another customer's
/// records, admin routes for a customer, mass assignment of a role, a code redeemed by many at
/// once, a gift card drawn below zero.
#[actix_web::test]
async fn the_probes_that_held_keep_holding() {
    use reqwest::Method;
    let app = crate::helpers::spawn_app().await;
    let (alice, alice_token) = app.customer("alice@x.io").await;
    let (bob, bob_token) = app.customer("bob@x.io").await;
    // Another customer's records: 404, as if they did not exist.
    for path in [
        format!("/api/v1/users/{bob}"),
        format!("/api/v1/users/{bob}/subscriptions"),
        format!("/api/v1/users/{bob}/digests"),
        format!("/api/v1/users/{bob}/push-subscriptions"),
    ] {
        let res = app.call(Method::GET, &path, Some(&alice_token), None).await;
        crate::helpers::assert_problem(res, 404, "not_found").await;
    }
    let res = app
        .call(
            Method::GET,
            &format!("/api/v1/wallet?customer={bob}"),
            Some(&alice_token),
            None,
        )
        .await;
    assert!(res.status().is_client_error(), "{}", res.status());
    // Admin and manager routes: refused for a customer.
    for (method, path, body) in [
        (Method::GET, "/api/v1/users".to_owned(), None),
        (Method::GET, "/api/v1/deliveries".to_owned(), None),
        (Method::GET, "/api/v1/campaigns".to_owned(), None),
        (
            Method::PUT,
            format!("/api/v1/users/{alice}/role"),
            Some(json!({"role": "admin"})),
        ),
        (
            Method::POST,
            "/api/v1/api-keys".to_owned(),
            Some(json!({"name": "mine", "role": "admin"})),
        ),
    ] {
        let res = app.call(method, &path, Some(&alice_token), body).await;
        crate::helpers::assert_problem(res, 403, "forbidden").await;
    }
    // Mass assignment: a role in a customer's own change is ignored.
    let res = app
        .patch_user(&alice, &alice_token, json!({"role": "admin"}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["role"], "customer");
    // One code, twenty redemptions at once: one is taken.
    let id = app.active_campaign(1, 1).await;
    let res = app.claim(&id, &bob_token, None).await;
    let code = res.json::<Value>().await.unwrap()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let answers =
        futures_util::future::join_all((0..20).map(|_| {
            app.redeem(json!({"code": code, "customer": bob, "order_amount_cents": 1000}))
        }))
        .await;
    let taken = answers
        .iter()
        .filter(|r| r.status() == StatusCode::CREATED)
        .count();
    assert_eq!(taken, 1, "a code is redeemed once");
    // A gift card of 10.00 drawn by three orders of 6.00 at once: never below zero.
    let (starts, ends) = crate::campaigns::window();
    let gift = app
        .campaign(
            json!({"name": "gift", "kind": "gift_card", "gift_balance_cents": 1000,
            "pool_size": 1, "starts_at": starts, "ends_at": ends}),
        )
        .await;
    let gift = gift["id"].as_str().unwrap();
    app.add_codes(gift, json!({"count": 1})).await;
    let card = app.claim(gift, &alice_token, None).await;
    let card = card.json::<Value>().await.unwrap()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let draws =
        futures_util::future::join_all((0..3).map(|_| {
            app.redeem(json!({"code": card, "customer": alice, "order_amount_cents": 600}))
        }))
        .await;
    let mut drawn = 0;
    for res in draws {
        if res.status() == StatusCode::CREATED {
            drawn += res.json::<Value>().await.unwrap()["discount_cents"]
                .as_i64()
                .unwrap();
        }
    }
    assert!(drawn <= 1000, "drew {drawn} of 1000");
    let check = app
        .get_json(&format!("/api/v1/codes/{card}"), &app.admin_token)
        .await;
    assert!(check["balance_cents"].as_i64().unwrap_or(0) >= 0, "{check}");
}
