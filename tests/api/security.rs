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
    // A visitor signs up (their confirmation link is a mail file of the file transport) and
    // follows a demo category.
    let res = http
        .post(format!("{base}/api/v1/users"))
        .json(&json!({"email": "perm@x.io", "password": "password-1", "timezone": "UTC"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let token = crate::helpers::eventually("the confirmation link as a mail file", || async {
        let files = std::fs::read_dir(store.join("mail")).ok()?;
        files.flatten().find_map(|f| {
            let m = std::fs::read_to_string(f.path()).ok()?;
            let at = m.find("/verify-email/")? + "/verify-email/".len();
            Some(
                m[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_hexdigit() || *c == '.')
                    .collect::<String>(),
            )
        })
    })
    .await;
    let res = http
        .post(format!("{base}/api/v1/email-verifications"))
        .json(&json!({"token": token, "password": "password-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let customer = login_to(&http, &base, "perm@x.io", "password-1").await;
    let (_, me) = crate::helpers::get_from(&http, &base, &customer, "/users/me").await;
    let user = me["id"].as_str().unwrap().to_owned();
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
    assert!(!mail.is_empty(), "the mail was written as files");
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
    for breakdown in ["valid", "order", "redeemables", "redemptions"] {
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

/// Finding 5. Only failed sign-ins were throttled, so a loop of correct ones saturated password
/// hashing for everyone, and under saturation known emails got 503 while unknown ones still got a
/// fast 401: an oracle. Now every sign-in counts against its account and address, and an unknown
/// email takes the same path (a hash against a decoy, through the same queue): the same answers,
/// also under saturation.
#[actix_web::test]
async fn sign_ins_are_throttled_right_or_wrong_and_unknown_emails_answer_like_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(dir.path().join("data"));
    settings.rate_limit.login_per_minute = 10;
    // The test client plays a proxy, so each request can say which address it comes from.
    settings.rate_limit.trusted_proxies = vec!["127.0.0.1".into()];
    let app = crate::helpers::spawn_with(settings, dir).await;
    let sign_in = |email: String, password: &'static str, from: String| {
        app.client
            .post(app.url("/api/v1/auth/tokens"))
            .header("x-forwarded-for", from)
            .json(&json!({"email": email, "password": password}))
            .send()
    };
    // The right password counts too: ten a minute from one address, then 429.
    app.customer("loop@x.io").await;
    let mut answers = Vec::new();
    for _ in 0..11 {
        let res = sign_in(
            "loop@x.io".into(),
            "customer-password",
            "198.51.100.2".into(),
        )
        .await
        .unwrap();
        answers.push(res.status().as_u16());
    }
    assert_eq!(&answers[..10], &[201; 10], "{answers:?}");
    assert_eq!(answers[10], 429, "{answers:?}");

    // Saturation from many addresses: known and unknown emails get the same answers.
    let attempts = (0..240).map(|i| {
        let email = if i % 2 == 0 {
            "loop@x.io".to_owned()
        } else {
            format!("ghost{i}@x.io")
        };
        sign_in(
            email,
            "wrong-password",
            format!("203.0.{}.{}", i / 200, i % 200 + 1),
        )
    });
    let answers = futures_util::future::join_all(attempts).await;
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for (i, res) in answers.into_iter().enumerate() {
        let status = res.unwrap().status().as_u16();
        assert!(matches!(status, 401 | 503), "{status}");
        if i % 2 == 0 {
            known.push(status)
        } else {
            unknown.push(status)
        }
    }
    let busy = |v: &[u16]| v.iter().filter(|s| **s == 503).count();
    assert!(
        busy(&known) > 0,
        "the hashing queue was saturated: {known:?}"
    );
    assert!(
        busy(&unknown) > 0,
        "unknown emails are refused like known ones under load, not answered fast: {unknown:?}"
    );
}

/// Finding 5. An unknown email used to cost no hash (it only waited): now it takes the path of a
/// known one, a hash against a decoy, counted alike (the real binary: its own metrics).
#[actix_web::test]
async fn an_unknown_email_costs_the_hash_a_known_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let (child, base) = serve(&dir.path().join("data"));
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
    let hashed = "voucherd_password_checks_total{result=\"argon2\"}";
    let before = metric(&metrics().await, hashed);
    for (email, password) in [
        ("nobody1@x.io", "guess-guess"),
        ("nobody2@x.io", "guess-guess"),
        (ADMIN_EMAIL, "not-the-password"),
    ] {
        let res = http
            .post(format!("{base}/api/v1/auth/tokens"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        crate::helpers::assert_problem(res, 401, "invalid_credentials").await;
    }
    assert_eq!(metric(&metrics().await, hashed) - before, 3.0);
}

/// Finding 5. Each sign-in made a new 720-hour session, without bound: a user holds at most
/// `max_sessions_per_user`, signing in past it ends the oldest.
#[actix_web::test]
async fn a_user_holds_a_bounded_number_of_sessions_and_the_oldest_go_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(dir.path().join("data"));
    settings.accounts.max_sessions_per_user = 3;
    let app = crate::helpers::spawn_with(settings, dir).await;
    let (_, first) = app.customer("many@x.io").await;
    let mut sessions = vec![first];
    for _ in 0..4 {
        sessions.push(app.login("many@x.io", "customer-password").await);
    }
    let mut alive = Vec::new();
    for t in &sessions {
        alive.push(app.me(t).await.status() == StatusCode::OK);
    }
    assert_eq!(alive, [false, false, true, true, true]);
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
        .create_user(
            json!({"email": "Gone.Person@Example.org", "password": "password-1",
            "timezone": "Europe/Paris", "phone": phone}),
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
    // A shop's checkout naming them by their address (a +tag of it).
    app.shared_campaign("ERASE10", None, json!({})).await;
    let res = app
        .redeem(
            json!({"code": "ERASE10", "customer_ref": "Gone.Person+shop@Example.org",
            "order": crate::checkout::eur(1000)}),
        )
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
        (
            "the email as a reference",
            hex::encode("gone.person+shop@example.org"),
        ),
        (
            "the reference as given",
            hex::encode("Gone.Person+shop@Example.org"),
        ),
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
    // A gift card is sold: claiming one is refused; the shop sells it at the till.
    crate::helpers::assert_problem(
        app.claim(gift, &alice_token, None).await,
        409,
        "purchase_required",
    )
    .await;
    let card = app.till_sale(gift, &alice).await;
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

// ---- Money and identity: each finding of this round's review, tried again. ------------------

/// A campaign of `kind` sold at `price_cents` (gift cards hold 100.00), `pool` codes, open now.
async fn sold_campaign(
    app: &crate::helpers::TestApp,
    kind: &str,
    pool: u32,
    per_customer: u32,
) -> String {
    let (starts, ends) = crate::campaigns::window();
    let mut spec = json!({"name": kind, "kind": kind, "price_cents": 10000, "pool_size": pool,
        "per_customer_limit": per_customer, "starts_at": starts, "ends_at": ends});
    if kind == "gift_card" {
        spec["gift_balance_cents"] = json!(10000);
    } else {
        spec["discount"] = json!({"percent": 50});
    }
    let c = app.campaign(spec).await;
    let id = c["id"].as_str().unwrap().to_owned();
    let res = app.add_codes(&id, json!({"count": pool})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    id
}

/// Finding 1. A priced gift card's claim answered 201 with a 100 EUR balance, and a customer's
/// order of 100 cards answered 201 with the codes, nothing paid. Now sold codes are never
/// claimed, and a customer's order holds its codes, shown to and usable by nobody, until the
/// shop confirms the payment.
#[actix_web::test]
async fn priced_codes_are_never_claimed_and_an_unpaid_order_gives_nothing_away() {
    use reqwest::Method;
    let app = crate::helpers::spawn_app().await;
    let gift = sold_campaign(&app, "gift_card", 200, 100).await;
    let sale = sold_campaign(&app, "flash_sale", 5, 5).await;
    let (ann, token) = app.customer("ann@x.io").await;
    for campaign in [&gift, &sale] {
        crate::helpers::assert_problem(
            app.claim(campaign, &token, None).await,
            409,
            "purchase_required",
        )
        .await;
    }
    let res = app
        .call(
            Method::POST,
            "/api/v1/orders",
            Some(&token),
            Some(json!({"campaign_id": gift, "quantity": 100})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let order: Value = res.json().await.unwrap();
    assert_eq!(
        (order["status"].as_str(), order["amount_cents"].as_i64()),
        (Some("pending_payment"), Some(1_000_000))
    );
    assert_eq!(order["codes"], json!([]));
    let again = app
        .get_json(
            &format!("/api/v1/orders/{}", order["id"].as_str().unwrap()),
            &token,
        )
        .await;
    assert_eq!(again["codes"], json!([]));
    assert_eq!(
        app.get_json("/api/v1/wallet", &token).await["items"],
        json!([])
    );
    // Even knowing one of the held codes gets nothing: it is nobody's yet.
    let held = app
        .get_json(
            &format!("/api/v1/campaigns/{gift}/codes?status=reserved&limit=500"),
            &app.admin_token,
        )
        .await;
    let held = held["items"].as_array().unwrap();
    assert_eq!(held.len(), 100);
    let code = held[0]["code"].as_str().unwrap();
    for path in [
        format!("/api/v1/codes/{code}"),
        format!("/api/v1/codes/{code}/qr.svg"),
    ] {
        let res = app.call(Method::GET, &path, Some(&token), None).await;
        crate::helpers::assert_problem(res, 404, "not_found").await;
    }
    let v = app
        .validate(
            &token,
            json!({"codes": [code], "order": crate::checkout::eur(10000)}),
        )
        .await;
    assert_eq!(v["redeemables"][0]["reason"], "not_found");
    let res = app
        .redeem(json!({"code": code, "customer": ann, "order": crate::checkout::eur(10000)}))
        .await;
    crate::helpers::assert_problem(res, 404, "not_found").await;
    // A customer cannot say their own order is paid, by the body or the payment route.
    let res = app
        .call(
            Method::POST,
            "/api/v1/orders",
            Some(&token),
            Some(json!({"campaign_id": sale, "quantity": 1, "paid": true})),
        )
        .await;
    crate::helpers::assert_problem(res, 403, "forbidden").await;
    // Free campaigns keep the claim.
    let free = app.active_campaign(5, 1).await;
    assert_eq!(
        app.claim(&free, &token, None).await.status(),
        StatusCode::CREATED
    );
}

/// Finding 1. An unpaid order expires after `[orders] payment_timeout_s`: its codes go back to
/// the pool exactly once (also when the deadline passed while the server was down), and it
/// cannot be paid any more.
#[actix_web::test]
async fn an_unpaid_order_expires_once_and_gives_its_codes_back_also_across_a_restart() {
    use reqwest::Method;
    let start: chrono::DateTime<chrono::Utc> = chrono::Utc::now();
    let clock = voucherd::clock::ManualClock::new(start);
    let dir = tempfile::tempdir().unwrap();
    let settings = crate::helpers::test_settings(dir.path().join("data"));
    let app = crate::helpers::spawn_with_clock(settings.clone(), dir, clock.clone()).await;
    let sale = sold_campaign(&app, "flash_sale", 3, 3).await;
    let (_, ann) = app.customer("ann@x.io").await;
    let (bob_id, bob) = app.customer("bob@x.io").await;
    let order = |token: String, quantity: u32| {
        let (app, sale) = (&app, sale.clone());
        async move {
            app.call(
                Method::POST,
                "/api/v1/orders",
                Some(&token),
                Some(json!({"campaign_id": sale, "quantity": quantity})),
            )
            .await
        }
    };
    let available = || async {
        app.get_json(
            &format!("/api/v1/campaigns/{sale}/codes?status=available"),
            &app.admin_token,
        )
        .await["items"]
            .as_array()
            .unwrap()
            .len()
    };
    let res = order(ann.clone(), 2).await;
    let first: Value = res.json().await.unwrap();
    let first = first["id"].as_str().unwrap().to_owned();
    assert_eq!(available().await, 1);
    // Fifteen minutes (the default) pass unpaid: the two codes go back, once.
    clock.advance(chrono::Duration::seconds(901));
    app.actors.wake_all();
    crate::helpers::eventually("the codes back in the pool", || async {
        (available().await == 3).then_some(())
    })
    .await;
    let pay = |id: String| {
        let app = &app;
        async move {
            app.call(
                Method::POST,
                &format!("/api/v1/orders/{id}/payment"),
                Some(&app.admin_token),
                None,
            )
            .await
        }
    };
    crate::helpers::assert_problem(pay(first.clone()).await, 409, "order_expired").await;
    let expired = app
        .get_json(&format!("/api/v1/orders/{first}"), &app.admin_token)
        .await;
    assert_eq!(
        (expired["status"].as_str(), &expired["codes"]),
        (Some("expired"), &json!([]))
    );
    // Another order: the deadline passes while the server is down.
    let res = order(bob.clone(), 3).await;
    let second: Value = res.json().await.unwrap();
    let second = second["id"].as_str().unwrap().to_owned();
    assert_eq!(available().await, 0);
    let dir = app.stop().await;
    clock.advance(chrono::Duration::seconds(901));
    let app = crate::helpers::spawn_with_clock(settings, dir, clock.clone()).await;
    let available = || async {
        app.get_json(
            &format!("/api/v1/campaigns/{sale}/codes?status=available"),
            &app.admin_token,
        )
        .await["items"]
            .as_array()
            .unwrap()
            .len()
    };
    crate::helpers::eventually("the codes back after the restart", || async {
        (available().await == 3).then_some(())
    })
    .await;
    app.actors.wake_all();
    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/orders/{second}/payment"),
            Some(&app.admin_token),
            None,
        )
        .await;
    crate::helpers::assert_problem(res, 409, "order_expired").await;
    // Each code went back once: three to sell, not six, and a new order takes them.
    let c = app
        .get_json(&format!("/api/v1/campaigns/{sale}"), &app.admin_token)
        .await;
    assert_eq!(
        (c["codes_total"].as_u64(), c["claimed"].as_u64()),
        (Some(3), Some(0))
    );
    let res = app
        .call(
            Method::POST,
            "/api/v1/orders",
            Some(&app.admin_token),
            Some(json!({"campaign_id": sale, "quantity": 3, "customer": bob_id})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(available().await, 0);
}

/// Finding 1. The shop's payment back end confirms an order with a signed callback; a forged
/// or unsigned one changes nothing, and without a configured secret none is taken.
#[actix_web::test]
async fn a_signed_payment_callback_delivers_once_and_a_forged_one_changes_nothing() {
    use reqwest::Method;
    const PAYMENT_SECRET: &str = "payment-secret-0123456";
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(dir.path().join("data"));
    settings.orders.payment_secret = PAYMENT_SECRET.into();
    let app = crate::helpers::spawn_with(settings, dir).await;
    let sale = sold_campaign(&app, "flash_sale", 5, 5).await;
    let (_, token) = app.customer("ann@x.io").await;
    let res = app
        .call(
            Method::POST,
            "/api/v1/orders",
            Some(&token),
            Some(json!({"campaign_id": sale, "quantity": 2})),
        )
        .await;
    let order: Value = res.json().await.unwrap();
    let id = order["id"].as_str().unwrap();
    let notice = serde_json::to_vec(&json!({"order_id": id, "reference": "psp-7"})).unwrap();
    let callback = |signature: String| {
        app.client
            .post(app.url("/api/v1/payments/callback"))
            .header("content-type", "application/json")
            .header("x-signature", signature)
            .body(notice.clone())
            .send()
    };
    let forged = voucherd::security::body_signature(b"not-the-secret-at-all", &notice);
    crate::helpers::assert_problem(callback(forged).await.unwrap(), 401, "unauthorized").await;
    crate::helpers::assert_problem(callback(String::new()).await.unwrap(), 401, "unauthorized")
        .await;
    let still = app.get_json(&format!("/api/v1/orders/{id}"), &token).await;
    assert_eq!(still["status"], "pending_payment");
    let signed = voucherd::security::body_signature(PAYMENT_SECRET.as_bytes(), &notice);
    let res = callback(signed.clone()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let paid: Value = res.json().await.unwrap();
    assert_eq!(
        (paid["status"].as_str(), paid["payment_ref"].as_str()),
        (Some("paid"), Some("psp-7"))
    );
    assert_eq!(paid["codes"].as_array().unwrap().len(), 2);
    // The same notice again (a provider's retry) changes nothing.
    let again: Value = callback(signed).await.unwrap().json().await.unwrap();
    assert_eq!(again["codes"], paid["codes"]);
    assert_eq!(
        app.get_json("/api/v1/wallet", &token).await["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

/// Finding 2. `{"codes": ["SUMMER10" ×10]}` was valid for 200.00 off a code with one use, once
/// per customer, capped at 20.00 with a 20.00 budget. A code listed twice (in any case) is now
/// refused, and a cart's later codes count what its earlier ones use.
#[actix_web::test]
async fn one_code_counts_once_in_a_cart_and_a_cart_promises_only_what_redeeming_gives() {
    let app = crate::helpers::spawn_app().await;
    let admin = app.admin_token.clone();
    let campaign = app
        .shared_campaign(
            "SUMMER10",
            Some(1),
            json!({"discount": {"percent": 10, "max_cents": 2000}, "per_customer_limit": 1,
                   "budgets": [{"measure": "discount_cents", "limit": 2000, "period": "total", "per": "campaign"}]}),
        )
        .await;
    let res = app
        .add_codes(&campaign, json!({"codes": ["SUMMER20"], "usage_limit": 1}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let order = crate::checkout::eur(100_000);
    let ten = vec!["SUMMER10"; 10];
    for codes in [json!(ten), json!(["SUMMER10", "summer10"])] {
        for path in ["/api/v1/validations", "/api/v1/redemptions"] {
            let res = app
                .post_json(
                    path,
                    &admin,
                    json!({"codes": codes, "customer_ref": "ann@x.io", "order": order}),
                )
                .await;
            crate::helpers::assert_problem(res, 422, "duplicate_code").await;
        }
    }
    // Two codes of one campaign, once per customer: the second is counted with the first.
    let v = app
        .validate(
            &admin,
            json!({"codes": ["SUMMER10", "SUMMER20"], "customer_ref": "ann@x.io", "order": order}),
        )
        .await;
    assert_eq!(v["valid"], false);
    assert_eq!(v["order"]["discount_cents"], 2000);
    assert_eq!(v["redeemables"][1]["reason"], "customer_limit_reached");
    // A cart is redeemed all or none: refused whole, nothing written.
    let res = app
        .post_json(
            "/api/v1/redemptions",
            &admin,
            json!({"codes": ["SUMMER10", "SUMMER20"], "customer_ref": "ann@x.io", "order": order}),
        )
        .await;
    crate::helpers::assert_problem(res, 409, "customer_limit_reached").await;
    let listed = app
        .get_json(&format!("/api/v1/redemptions?campaign={campaign}"), &admin)
        .await;
    assert_eq!(listed["items"], json!([]));
    // What the validation promised is what redeeming gives; then the budget is spent.
    let res = app
        .post_json(
            "/api/v1/redemptions",
            &admin,
            json!({"code": "summer10", "customer_ref": "ann@x.io", "order": order}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.json::<Value>().await.unwrap()["discount_cents"], 2000);
    let v = app
        .validate(
            &admin,
            json!({"codes": ["SUMMER20"], "customer_ref": "bob@x.io", "order": order}),
        )
        .await;
    assert_eq!(v["redeemables"][0]["reason"], "budget_exhausted");
}

/// Finding 2, the positive side: a cart of two gift cards is redeemed in one request, the second
/// drawing only what the first left of the order.
#[actix_web::test]
async fn a_cart_of_gift_cards_is_redeemed_together_each_from_what_is_left() {
    let app = crate::helpers::spawn_app().await;
    let gift = sold_campaign(&app, "gift_card", 2, 2).await;
    let (ann, _) = app.customer("ann@x.io").await;
    let first = app.till_sale(&gift, &ann).await;
    let second = app.till_sale(&gift, &ann).await;
    let res = app
        .redeem(json!({"codes": [first, second], "customer": ann, "order": crate::checkout::eur(15_000)}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let made: Value = res.json().await.unwrap();
    assert_eq!(made["order"]["discount_cents"], 15_000);
    let redemptions = made["redemptions"].as_array().unwrap();
    assert_eq!(redemptions.len(), 2);
    assert_eq!(
        (
            redemptions[0]["balance_cents"].as_i64(),
            redemptions[1]["balance_cents"].as_i64()
        ),
        (Some(0), Some(5_000))
    );
}

/// The SMS gateway of the phone tests: takes every message.
async fn sms_gateway() -> wiremock::MockServer {
    use wiremock::matchers::{method, path};
    let gateway = wiremock::MockServer::start().await;
    wiremock::Mock::given(method("POST"))
        .and(path("/sms"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(json!({"id": "m"})))
        .mount(&gateway)
        .await;
    gateway
}

/// The texts the gateway received for `phone`, oldest first.
async fn texts_to(gateway: &wiremock::MockServer, phone: &str) -> Vec<String> {
    gateway
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter_map(|r| {
            let body: Value = serde_json::from_slice(&r.body).ok()?;
            (body["to"] == phone).then(|| body["body"].as_str().unwrap_or_default().to_owned())
        })
        .collect()
}

/// The six digits of the newest code texted to `phone`, once it is there.
async fn phone_code(gateway: &wiremock::MockServer, phone: &str, nth: usize) -> String {
    crate::helpers::eventually("a code by SMS", || async {
        let texts = texts_to(gateway, phone).await;
        let text = texts.get(nth)?;
        Some(
            text.chars()
                .filter(char::is_ascii_digit)
                .take(6)
                .collect::<String>(),
        )
    })
    .await
}

/// Finding 3. A number was "the customer's own" as soon as they typed it: a stranger's number
/// got texts, and its real owner got 409 and was found at the till under the squatter. Now a
/// typed number reserves nothing and receives nothing but the code that proves it; the owner
/// proves it (bounded tries), and a till finds the owner.
#[actix_web::test]
async fn a_typed_phone_number_is_nobodys_until_the_code_sent_to_it_is_entered() {
    use reqwest::Method;
    let gateway = sms_gateway().await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(dir.path().join("data"));
    settings.delivery.sms.url = format!("{}/sms", gateway.uri());
    let app = crate::helpers::spawn_with(settings, dir).await;
    let phone = "+33612345678";
    let (squatter, squatter_token) = app.customer("squatter@x.io").await;
    let res = app
        .patch_user(&squatter, &squatter_token, json!({"phone": phone}))
        .await;
    assert_eq!(res.json::<Value>().await.unwrap()["phone_verified"], false);
    let wallet = app
        .get_json("/api/v1/wallet?phone=%2B33612345678", &app.admin_token)
        .await;
    assert!(
        wallet["customer"].is_null(),
        "a typed number reserves nothing: {wallet}"
    );
    let found = app
        .get_json("/api/v1/users?phone=%2B33612345678", &app.admin_token)
        .await;
    assert_eq!(found["items"], json!([]));
    // The squatter asks for a code: it goes to the number, not to them; guessing runs out.
    let send = |user: String, token: String| {
        let app = &app;
        async move {
            app.call(
                Method::POST,
                &format!("/api/v1/users/{user}/phone/verification"),
                Some(&token),
                Some(json!({"phone": phone})),
            )
            .await
        }
    };
    let verify = |user: String, token: String, code: String| {
        let app = &app;
        async move {
            app.call(
                Method::POST,
                &format!("/api/v1/users/{user}/phone/verify"),
                Some(&token),
                Some(json!({"code": code})),
            )
            .await
        }
    };
    let res = send(squatter.clone(), squatter_token.clone()).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let real = phone_code(&gateway, phone, 0).await;
    let wrong = if real == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let res = verify(squatter.clone(), squatter_token.clone(), wrong.into()).await;
        crate::helpers::assert_problem(res, 422, "validation_failed").await;
    }
    // Out of tries: even the right code (read off the owner's phone) proves nothing now.
    let res = verify(squatter.clone(), squatter_token.clone(), real).await;
    crate::helpers::assert_problem(res, 422, "validation_failed").await;
    // The owner proves it.
    let (owner, owner_token) = app.customer("owner@x.io").await;
    let res = send(owner.clone(), owner_token.clone()).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let code = phone_code(&gateway, phone, 1).await;
    let res = verify(owner.clone(), owner_token.clone(), wrong.into()).await;
    crate::helpers::assert_problem(res, 422, "validation_failed").await;
    let res = verify(owner.clone(), owner_token.clone(), code).await;
    assert_eq!(res.status(), StatusCode::OK);
    let me: Value = res.json().await.unwrap();
    assert_eq!(
        (me["phone"].as_str(), &me["phone_verified"]),
        (Some(phone), &json!(true))
    );
    let wallet = app
        .get_json("/api/v1/wallet?phone=%2B33612345678", &app.admin_token)
        .await;
    assert_eq!(wallet["customer"], owner.as_str());
    // What reached the phone was the server's words and a code, nothing anyone typed.
    for text in texts_to(&gateway, phone).await {
        assert!(text.starts_with("Your voucherd code is "), "{text}");
    }
}

/// Finding 3. A code request by SMS echoed a customer-typed `product` to any number; now a text
/// carries only a product its provider lists by name, to the customer's own confirmed number.
#[actix_web::test]
async fn a_text_carries_only_the_operators_words_to_the_customers_own_number() {
    let gateway = sms_gateway().await;
    let provider = wiremock::MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(dir.path().join("data"));
    settings.delivery.sms.url = format!("{}/sms", gateway.uri());
    settings.providers = vec![voucherd::config::ProviderSettings {
        name: "vps".into(),
        url: provider.uri(),
        secret: "provider-secret-0123".into(),
        timeout_s: 5,
        poll_interval_s: 1,
        give_up_after_s: 3600,
        concurrency: 4,
        products: vec!["*".into()],
    }];
    let app = crate::helpers::spawn_with(settings, dir).await;
    let (user, token) = app.customer("ann@x.io").await;
    let res = app
        .patch_user(&user, &app.admin_token, json!({"phone": "+4915100000001"}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    for body in [
        json!({"provider": "vps", "product": "Your card is blocked, call +1 555 0100 https://evil.example", "channel": "sms"}),
        json!({"provider": "vps", "product": "gift-10", "channel": "sms", "phone": "+4915177777777"}),
    ] {
        let res = app.post_json("/api/v1/code-requests", &token, body).await;
        crate::helpers::assert_problem(res, 422, "validation_failed").await;
    }
    // Nothing reached a phone or the provider (mock servers are reused between tests: only what
    // this test could have caused counts).
    for number in ["+4915100000001", "+4915177777777"] {
        assert!(texts_to(&gateway, number).await.is_empty(), "{number}");
    }
    let asked = provider.received_requests().await.unwrap();
    assert!(
        !asked.iter().any(|r| {
            let body = String::from_utf8_lossy(&r.body);
            body.contains("evil.example") || body.contains("gift-10")
        }),
        "the provider was asked"
    );
}

/// Finding 4. 300 throw-away accounts from one address drained a 300-code sale; registering a
/// VIP's address first made a manager's email distribution land their code in the attacker's
/// wallet; registration told which addresses exist. Now sign-ups are throttled per address, a
/// sign-up is no account until its address is confirmed, `+tags` make no second account, and
/// every sign-up answers the same.
#[actix_web::test]
async fn throwaway_accounts_cannot_drain_a_sale_or_take_a_vips_code() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(dir.path().join("data"));
    settings.accounts.registrations_per_hour = 4;
    let app = crate::helpers::spawn_with(settings, dir).await;
    let sale = app.active_campaign(300, 1).await;
    // The real VIP has an account made long ago (confirmed); another VIP never signed up.
    app.customer("ann@x.io").await;
    let mut answers = Vec::new();
    for email in ["vip@x.io", "ANN@x.io", "ann+again@x.io", "new@x.io"] {
        let res = app.register(email, "password-1", "UTC").await;
        answers.push((res.status().as_u16(), res.json::<Value>().await.unwrap()));
    }
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");
    assert_eq!(answers[0].0, 202);
    let res = app.register("fifth@x.io", "password-1", "UTC").await;
    crate::helpers::assert_problem(res, 429, "rate_limited").await;
    // No second account for a case or a +tag of an existing one.
    crate::helpers::assert_problem(
        app.try_login("ann+again@x.io", "password-1").await,
        401,
        "invalid_credentials",
    )
    .await;
    // A sign-up nobody confirmed is no account: it signs nobody in and holds nothing.
    crate::helpers::assert_problem(
        app.try_login("vip@x.io", "password-1").await,
        401,
        "invalid_credentials",
    )
    .await;
    // A manager sends the VIP their code by email: nobody holds it before the VIP has an account.
    let res = app
        .distribute(&sale, json!({"emails": ["vip@x.io"], "channel": "email"}))
        .await;
    crate::helpers::assert_problem(res, 422, "validation_failed").await;
    let codes = app
        .get_json(
            &format!("/api/v1/campaigns/{sale}/codes?status=claimed"),
            &app.admin_token,
        )
        .await;
    assert_eq!(codes["items"], json!([]));
}

/// Finding 6. A customer-role API key saw `applicable` and `not_held` for codes a customer's
/// session sees as `not_found`: an oracle of which codes exist. It is refused now.
#[actix_web::test]
async fn a_customer_role_api_key_learns_nothing_of_codes() {
    let app = crate::helpers::spawn_app().await;
    let campaign = app.active_campaign(3, 1).await;
    let codes = app
        .get_json(
            &format!("/api/v1/campaigns/{campaign}/codes"),
            &app.admin_token,
        )
        .await;
    let code = codes["items"][0]["code"].as_str().unwrap();
    let res = app
        .create_api_key(&app.admin_token, "kiosk", "customer")
        .await;
    let key = res.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .post_json(
            "/api/v1/validations",
            &key,
            json!({"codes": [code], "order": crate::checkout::eur(1000)}),
        )
        .await;
    crate::helpers::assert_problem(res, 403, "forbidden").await;
}

/// Finding 6. The settings page masked `user:password@` only: a token as a URL's user, an
/// account id before an empty password, and `?api_key=` / `?token=` showed in clear.
#[actix_web::test]
async fn the_settings_page_shows_no_credential_wherever_a_url_carries_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(dir.path().join("data"));
    settings.delivery.sms.url = "https://AC0123456789:@sms.example/send?token=T0K3N".into();
    settings.delivery.email.smtp_url = "smtp://TOKENUSER@mail.example:587".into();
    settings.webhooks = vec![crate::distributions::webhook(
        "shop",
        "https://shop.example/hooks?api_key=K3Y&sig=S1G".into(),
    )];
    let app = crate::helpers::spawn_with(settings, dir).await;
    let shown = app
        .call(
            reqwest::Method::GET,
            "/api/v1/admin/settings",
            Some(&app.admin_token),
            None,
        )
        .await
        .text()
        .await
        .unwrap();
    for secret in ["AC0123456789", "T0K3N", "TOKENUSER", "K3Y", "S1G"] {
        assert!(!shown.contains(secret), "{secret} shows in {shown}");
    }
}

/// Finding 6. A code could hold a zero-width or direction-changing character
/// (`SUMMER10\u{200b}` is not `SUMMER10`), and a CSV saved with a byte-order mark imported
/// `\u{feff}code` as a code. Now such codes are refused, the mark is skipped, and a till may
/// type a code in any case.
#[actix_web::test]
async fn codes_hide_nothing_and_a_spreadsheets_byte_order_mark_is_no_code() {
    let app = crate::helpers::spawn_app().await;
    let (starts, ends) = crate::campaigns::window();
    let c = app
        .campaign(
            json!({"name": "csv", "kind": "discount", "discount": {"percent": 10},
            "pool_size": 10, "starts_at": starts, "ends_at": ends}),
        )
        .await;
    let id = c["id"].as_str().unwrap();
    for hidden in [
        "SUMMER10\u{200b}",
        "SUM\u{202e}01",
        "\u{feff}SUMMER10",
        "SUMMER\u{00ad}10",
    ] {
        let res = app.add_codes(id, json!({"codes": [hidden]})).await;
        crate::helpers::assert_problem(res, 422, "validation_failed").await;
    }
    let res = app
        .client
        .post(app.url(&format!("/api/v1/campaigns/{id}/codes")))
        .bearer_auth(&app.admin_token)
        .header("content-type", "text/csv")
        .body("\u{feff}code\r\nBOM-1\r\nBOM-2\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let codes = app
        .get_json(&format!("/api/v1/campaigns/{id}/codes"), &app.admin_token)
        .await;
    let listed: Vec<&str> = codes["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["BOM-1", "BOM-2"]);
    // One code whatever the case it is typed in: `bom-1` is taken, and found at the till.
    let res = app.add_codes(id, json!({"codes": ["bom-1"]})).await;
    crate::helpers::assert_problem(res, 409, "conflict").await;
    let check = app.get_json("/api/v1/codes/bom-1", &app.admin_token).await;
    assert_eq!(check["code"], "BOM-1");
}

/// Finding 6. `"GIFTCARD "`, full-width letters or `GİFTCARD` slipped past an exclusion of
/// `GIFTCARD`: names now match after trimming, compatibility normalisation and case folding.
#[actix_web::test]
async fn an_excluded_sku_stays_excluded_however_the_shop_writes_it() {
    let app = crate::helpers::spawn_app().await;
    app.shared_campaign(
        "NOGIFTS",
        None,
        json!({"discount": {"percent": 10}, "rules": {"skus": {"exclude": ["GIFTCARD"]}}}),
    )
    .await;
    for sku in ["GIFTCARD ", "ＧＩＦＴＣＡＲＤ", "GİFTCARD", "giftcard"] {
        let v = app
            .validate(&app.admin_token, json!({"codes": ["NOGIFTS"], "customer_ref": "shop-1",
                "order": {"currency": "EUR", "items": [{"sku": sku, "quantity": 1, "price_cents": 10000}]}}))
            .await;
        assert_eq!(
            v["redeemables"][0]["reason"], "no_matching_items",
            "{sku:?}: {v}"
        );
    }
}

/// Finding 6. A user id, their email given as `customer_ref`, and a plus-address counted as
/// three customers for a once-per-customer code. They are one now, and so are their id given as
/// a reference (in any case), their address written another way (a name and brackets, quotes,
/// a trailing dot, full-width letters) and what they redeemed as a guest before their account.
#[actix_web::test]
async fn a_user_their_email_and_their_plus_address_are_one_customer() {
    let app = crate::helpers::spawn_app().await;
    app.shared_campaign("ONCE", None, json!({"per_customer_limit": 1}))
        .await;
    let (ann, _) = app.customer("ann@example.org").await;
    let order = crate::checkout::eur(10_000);
    let res = app
        .redeem(json!({"code": "ONCE", "customer": ann, "order": order}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let upper = ann.to_uppercase();
    for reference in [
        "ann@example.org",
        "Ann@Example.org",
        "ann+shop@example.org",
        " ann@example.org\u{a0}",
        ann.as_str(),
        upper.as_str(),
    ] {
        let res = app
            .redeem(json!({"code": "ONCE", "customer_ref": reference, "order": order}))
            .await;
        crate::helpers::assert_problem(res, 409, "customer_limit_reached").await;
    }
    // Other ways of writing her address are her too, and the shop's own keys stay keys.
    for reference in [
        "ann@example.org.",
        "\"ann\"@example.org",
        "<ann@example.org>",
        "mailto:ann@example.org",
        "Ann <ann@example.org>",
        "\u{ff41}nn@example.org",
        "ann\u{ff20}example.org",
    ] {
        let res = app
            .redeem(json!({"code": "ONCE", "customer_ref": reference, "order": order}))
            .await;
        crate::helpers::assert_problem(res, 409, "customer_limit_reached").await;
    }
    for (first, again) in [
        ("guest+1@sh\u{f6}p.org", "Guest+2@SH\u{d6}P.org"),
        ("Order 55 @ Store 7", "Order 55 @ Store 7"),
    ] {
        let res = app
            .redeem(json!({"code": "ONCE", "customer_ref": first, "order": order}))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED, "{first}");
        let res = app
            .redeem(json!({"code": "ONCE", "customer_ref": again, "order": order}))
            .await;
        crate::helpers::assert_problem(res, 409, "customer_limit_reached").await;
    }
    // A customer is someone: an id no user has is no one to count for.
    let res = app
        .redeem(json!({"code": "ONCE", "customer": uuid::Uuid::now_v7(), "order": order}))
        .await;
    crate::helpers::assert_problem(res, 404, "not_found").await;
    // A buyer without an account is one customer under their plus-addresses too.
    let res = app
        .redeem(json!({"code": "ONCE", "customer_ref": "zed@example.org", "order": order}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app
        .redeem(json!({"code": "ONCE", "customer_ref": "zed+1@example.org", "order": order}))
        .await;
    crate::helpers::assert_problem(res, 409, "customer_limit_reached").await;
    // When that buyer later gets an account, what they did as a guest under its address counts.
    let (zed, _) = app.customer("zed@example.org").await;
    let res = app
        .redeem(json!({"code": "ONCE", "customer": zed, "order": order}))
        .await;
    crate::helpers::assert_problem(res, 409, "customer_limit_reached").await;
    let v = app
        .validate(
            &app.admin_token,
            json!({"codes": ["ONCE"], "customer": zed, "order": order}),
        )
        .await;
    assert_eq!(v["redeemables"][0]["reason"], "customer_limit_reached");
}

// ---- The second hostile review of this round: each finding, tried again. --------------------

/// The links mailed to `address` so far, oldest sign-up first (a token starts with its id, a
/// time-ordered UUID).
async fn links_to(app: &crate::helpers::TestApp, address: &str, at_least: usize) -> Vec<String> {
    crate::helpers::eventually(&format!("{at_least} links to {address}"), || async {
        let mut tokens: Vec<String> = app
            .mails_to(address)
            .iter()
            .filter_map(|m| {
                let at = m.find("/verify-email/")? + "/verify-email/".len();
                Some(
                    m[at..]
                        .chars()
                        .take_while(|c| c.is_ascii_hexdigit() || *c == '.')
                        .collect(),
                )
            })
            .collect();
        tokens.sort();
        (tokens.len() >= at_least).then_some(tokens)
    })
    .await
}

/// An unconfirmed sign-up held its address: the squatter kept its owner out (also with a
/// `+tag`), kept push subscriptions into the owner's account, and signing in after signing up
/// told whether an address had an account. Now a sign-up is no account until its link is opened
/// with its password: it signs nobody in, holds nothing, and the owner's own sign-up makes the
/// account (the squatters' sign-ups end with it).
#[actix_web::test]
async fn typing_someones_address_first_wins_nothing() {
    let app = crate::helpers::spawn_app().await;
    app.customer("ann@x.io").await;
    // Signing in after signing up says nothing, whether the address has an account or not.
    let mut answers = Vec::new();
    for email in ["ann@x.io", "nobody@x.io"] {
        let res = app.register(email, "probe-pass-1", "UTC").await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        let res = app.try_login(email, "probe-pass-1").await;
        answers.push((
            res.status(),
            res.json::<Value>().await.unwrap()["code"].clone(),
        ));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].0, StatusCode::UNAUTHORIZED);

    // A squatter types the victim's address, and a +tag of it.
    for email in ["victim@x.io", "victim+x@x.io"] {
        let res = app.register(email, "squatter-pass", "UTC").await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
    }
    crate::helpers::assert_problem(
        app.try_login("victim@x.io", "squatter-pass").await,
        401,
        "invalid_credentials",
    )
    .await;
    // The owner signs up: the same answer, and a link of their own.
    let res = app
        .register("Victim@x.io", "victim-pass", "Europe/Paris")
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let links = links_to(&app, "victim@x.io", 2).await;
    let (squatters, owners) = (&links[0], &links[1]);
    let plus = links_to(&app, "victim+x@x.io", 1).await;
    // Clicking the squatter's link with their own password, the owner confirms nothing.
    crate::helpers::assert_problem(
        app.confirm_email(squatters, "victim-pass").await,
        401,
        "invalid_credentials",
    )
    .await;
    let res = app.confirm_email(owners, "victim-pass").await;
    assert_eq!(res.status(), StatusCode::OK);
    let user: Value = res.json().await.unwrap();
    assert_eq!(
        (user["email"].as_str(), user["timezone"].as_str()),
        (Some("Victim@x.io"), Some("Europe/Paris"))
    );
    // The squatters' sign-ups ended with it, whatever their password.
    for link in [squatters, &plus[0]] {
        crate::helpers::assert_problem(
            app.confirm_email(link, "squatter-pass").await,
            404,
            "not_found",
        )
        .await;
    }
    let token = app.login("victim@x.io", "victim-pass").await;
    let id = user["id"].as_str().unwrap();
    let pushes = app
        .get_json(&format!("/api/v1/users/{id}/push-subscriptions"), &token)
        .await;
    assert_eq!(pushes["items"], json!([]), "nothing of the squatter's");
    // An account is no longer anyone's to take: a new sign-up only tells its owner.
    let res = app.register("victim@x.io", "third-pass", "UTC").await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    crate::helpers::assert_problem(
        app.try_login("victim@x.io", "third-pass").await,
        401,
        "invalid_credentials",
    )
    .await;
    app.login("victim@x.io", "victim-pass").await;
}

/// A payment confirmed after its campaign ended gave out codes nobody could use any more, and
/// one confirmed while it was paused handed codes out of a paused sale. Now the first lapses
/// (codes back, 409) and the second waits for the resumption (422, the order still payable).
#[actix_web::test]
async fn a_payment_counts_only_while_its_campaign_sells() {
    use reqwest::Method;
    let app = crate::helpers::spawn_app().await;
    let (_, token) = app.customer("ann@x.io").await;
    let order = |campaign: String| {
        let (app, token) = (&app, token.clone());
        async move {
            let res = app
                .call(
                    Method::POST,
                    "/api/v1/orders",
                    Some(&token),
                    Some(json!({"campaign_id": campaign, "quantity": 2})),
                )
                .await;
            assert_eq!(res.status(), StatusCode::CREATED);
            res.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let pay = |id: String| {
        let app = &app;
        async move {
            app.call(
                Method::POST,
                &format!("/api/v1/orders/{id}/payment"),
                Some(&app.admin_token),
                None,
            )
            .await
        }
    };
    let paused = sold_campaign(&app, "flash_sale", 3, 3).await;
    let id = order(paused.clone()).await;
    let res = app
        .post_json(
            &format!("/api/v1/campaigns/{paused}/pause"),
            &app.admin_token,
            json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    crate::helpers::assert_problem(pay(id.clone()).await, 422, "campaign_not_active").await;
    assert_eq!(
        app.get_json(&format!("/api/v1/orders/{id}"), &token).await["status"],
        "pending_payment"
    );
    let res = app
        .post_json(
            &format!("/api/v1/campaigns/{paused}/resume"),
            &app.admin_token,
            json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let paid: Value = pay(id).await.json().await.unwrap();
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["codes"].as_array().unwrap().len(), 2);

    let ended = sold_campaign(&app, "flash_sale", 3, 3).await;
    let id = order(ended.clone()).await;
    assert_eq!(app.end_campaign(&ended).await.status(), StatusCode::OK);
    crate::helpers::assert_problem(pay(id.clone()).await, 409, "order_expired").await;
    let lapsed = app.get_json(&format!("/api/v1/orders/{id}"), &token).await;
    assert_eq!(
        (&lapsed["status"], &lapsed["codes"]),
        (&json!("expired"), &json!([]))
    );
    let held = app
        .get_json(
            &format!("/api/v1/campaigns/{ended}/codes?status=reserved"),
            &app.admin_token,
        )
        .await;
    assert_eq!(
        held["items"],
        json!([]),
        "nothing stays held for an order that lapsed"
    );
    assert_eq!(
        app.get_json("/api/v1/wallet", &token).await["items"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "only the paid order's codes"
    );
}

/// Erasing a customer with an unpaid order left its codes held for nobody (the order named the
/// nil customer, and paying it would have handed them to no one). Now the order is cancelled
/// first: its codes go back to the campaign.
#[actix_web::test]
async fn erasing_a_customer_gives_back_what_their_unpaid_orders_held() {
    use reqwest::Method;
    let app = crate::helpers::spawn_app().await;
    let sale = sold_campaign(&app, "flash_sale", 3, 3).await;
    let (ann, token) = app.customer("ann@x.io").await;
    let res = app
        .call(
            Method::POST,
            "/api/v1/orders",
            Some(&token),
            Some(json!({"campaign_id": sale, "quantity": 2})),
        )
        .await;
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app.delete_user(&ann, &app.admin_token).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let order = app
        .get_json(&format!("/api/v1/orders/{id}"), &app.admin_token)
        .await;
    assert_eq!(order["status"], "expired");
    let available = app
        .get_json(
            &format!("/api/v1/campaigns/{sale}/codes?status=available"),
            &app.admin_token,
        )
        .await;
    assert_eq!(available["items"].as_array().unwrap().len(), 3);
    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/orders/{id}/payment"),
            Some(&app.admin_token),
            None,
        )
        .await;
    crate::helpers::assert_problem(res, 409, "order_expired").await;
}

/// A number set by a manager (vouched for) stayed in the wallet of the account that had proven
/// it before, and a manager could take any customer's proven number by making an account with
/// it. Now a number is one account's, and only a code sent to it moves it: vouched for where
/// another account holds it, it stays unconfirmed until its owner proves it.
#[actix_web::test]
async fn only_a_code_sent_to_a_number_moves_it() {
    use reqwest::Method;
    let gateway = sms_gateway().await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(dir.path().join("data"));
    settings.delivery.sms.url = format!("{}/sms", gateway.uri());
    let app = crate::helpers::spawn_with(settings, dir).await;
    let phone = "+33698765432";
    let (_, manager) = app.manager("mia@x.io").await;
    let make = |email: &'static str| {
        let (app, manager) = (&app, manager.clone());
        async move {
            let res = app
                .call(
                    Method::POST,
                    "/api/v1/users",
                    Some(&manager),
                    Some(json!({"email": email, "password": "password-9",
                        "timezone": "UTC", "phone": phone})),
                )
                .await;
            assert_eq!(res.status(), StatusCode::CREATED);
            res.json::<Value>().await.unwrap()
        }
    };
    let old = make("old@x.io").await;
    assert_eq!(old["phone_verified"], true, "nobody held it: vouched for");
    let new = make("new@x.io").await;
    assert_eq!(new["phone_verified"], false, "old@ holds it");
    let new_id = new["id"].as_str().unwrap().to_owned();
    let holder = || async {
        app.get_json("/api/v1/wallet?phone=%2B33698765432", &app.admin_token)
            .await["customer"]
            .clone()
    };
    assert_eq!(holder().await, old["id"]);
    // The admin setting it again vouches for nothing more.
    let res = app
        .patch_user(&new_id, &app.admin_token, json!({"phone": phone}))
        .await;
    assert_eq!(res.json::<Value>().await.unwrap()["phone_verified"], false);
    assert_eq!(holder().await, old["id"]);
    // The number's owner proves it with the code sent to it: now it is theirs.
    let token = app.login("new@x.io", "password-9").await;
    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/users/{new_id}/phone/verification"),
            Some(&token),
            Some(json!({"phone": phone})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let code = phone_code(&gateway, phone, 0).await;
    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/users/{new_id}/phone/verify"),
            Some(&token),
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(holder().await, new["id"]);
    let before = app
        .get_json(
            &format!("/api/v1/users/{}", old["id"].as_str().unwrap()),
            &app.admin_token,
        )
        .await;
    assert!(before["phone"].is_null(), "{before}");
}

/// A gift card could be made with `price_cents: 0`: customers' orders then cost nothing, and a
/// payment back end trusting the amount handed out gift cards for free; a price of `i64::MAX`
/// made an order's amount saturate. A gift card is now sold at a price of at least 1, or at its
/// balance when it has none, and prices and balances are at most 1,000,000.00.
#[actix_web::test]
async fn a_gift_card_is_never_sold_for_nothing() {
    use reqwest::Method;
    let app = crate::helpers::spawn_app().await;
    let (starts, ends) = crate::campaigns::window();
    let spec = |price: Option<i64>| {
        let mut spec = json!({"name": "gift", "kind": "gift_card", "gift_balance_cents": 5000,
            "pool_size": 5, "starts_at": starts, "ends_at": ends, "per_customer_limit": 5});
        if let Some(p) = price {
            spec["price_cents"] = json!(p);
        }
        spec
    };
    for price in [0, 100_000_001, i64::MAX] {
        let res = app
            .post_json("/api/v1/campaigns", &app.admin_token, spec(Some(price)))
            .await;
        crate::helpers::assert_problem(res, 422, "validation_failed").await;
    }
    let c = app.campaign(spec(None)).await;
    assert_eq!(c["price_cents"], 5000, "sold at its balance");
    let id = c["id"].as_str().unwrap();
    app.add_codes(id, json!({"count": 5})).await;
    let (_, token) = app.customer("ann@x.io").await;
    let res = app
        .call(
            Method::POST,
            "/api/v1/orders",
            Some(&token),
            Some(json!({"campaign_id": id, "quantity": 2})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let order: Value = res.json().await.unwrap();
    assert_eq!(
        (order["status"].as_str(), order["amount_cents"].as_i64()),
        (Some("pending_payment"), Some(10_000))
    );
}

/// A CSV whose header said `CODE` imported the word `CODE` as a code; characters that draw
/// nothing (a Braille blank, a Mongolian vowel separator, a tag character) slipped into codes.
#[actix_web::test]
async fn a_csv_header_in_capitals_is_a_header_and_blank_looking_codes_are_refused() {
    let app = crate::helpers::spawn_app().await;
    let (starts, ends) = crate::campaigns::window();
    let c = app
        .campaign(
            json!({"name": "csv", "kind": "discount", "discount": {"percent": 10},
            "pool_size": 10, "starts_at": starts, "ends_at": ends}),
        )
        .await;
    let id = c["id"].as_str().unwrap();
    for hidden in ["SUMMER\u{2800}10", "SUMMER\u{180e}10", "SUMMER10\u{e0041}"] {
        let res = app.add_codes(id, json!({"codes": [hidden]})).await;
        crate::helpers::assert_problem(res, 422, "validation_failed").await;
    }
    let res = app
        .client
        .post(app.url(&format!("/api/v1/campaigns/{id}/codes")))
        .bearer_auth(&app.admin_token)
        .header("content-type", "text/csv")
        .body("CODE\nUP-1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let codes = app
        .get_json(&format!("/api/v1/campaigns/{id}/codes"), &app.admin_token)
        .await;
    assert_eq!(codes["items"].as_array().unwrap().len(), 1, "{codes}");
    assert_eq!(codes["items"][0]["code"], "UP-1");
}

/// Finding 6. Request bodies had no deadline: 302 stalled uploads stayed open, and two stalled
/// CSV uploads held both import places. A body must now arrive within `[http] body_timeout_s`.
#[actix_web::test]
async fn a_stalled_upload_is_cut_off_and_gives_its_import_place_back() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(dir.path().join("data"));
    settings.http.body_timeout_s = 1;
    let app = crate::helpers::spawn_with(settings, dir).await;
    let (starts, ends) = crate::campaigns::window();
    let c = app
        .campaign(
            json!({"name": "slow", "kind": "discount", "discount": {"percent": 10},
            "pool_size": 10, "starts_at": starts, "ends_at": ends}),
        )
        .await;
    let id = c["id"].as_str().unwrap();
    let addr = app.address.trim_start_matches("http://").to_owned();
    // Both import places taken by uploads that promise 1,000 bytes and send 5.
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST /api/v1/campaigns/{id}/codes HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: text/csv\r\nContent-Length: 1000\r\n\r\ncode\n",
            app.admin_token
        );
        s.write_all(head.as_bytes()).await.unwrap();
        stalled.push(s);
    }
    // Each is answered 408 once its second is up (and the connection closes).
    for mut s in stalled {
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            s.read_to_end(&mut answer),
        )
        .await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("request_timeout"), "{answer}");
    }
    // The places are free again.
    let res = app
        .client
        .post(app.url(&format!("/api/v1/campaigns/{id}/codes")))
        .bearer_auth(&app.admin_token)
        .header("content-type", "text/csv")
        .body("code\nSLOW-1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
}
