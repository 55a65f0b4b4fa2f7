//! The console at /admin as the marketing team uses it, in a real headless Chromium: a flash
//! sale created with rules and a budget, 1,000 codes generated and a 100-code CSV imported, the
//! codes downloaded, sent to a retailer's followers by email over a real SMTP server, one redeemed
//! at the till (checked, redeemed, rolled back, redeemed again), looked up, read in the report
//! and ended. Plus the code-pattern preview the campaign form calls.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use voucherd::feeds::FeedKind;

use crate::browser::{Browser, Page, chromium_or_skip};
use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, MailServer, fixture_url, network, spawn_app, spawn_with,
    spawn_with_networks,
};

#[actix_web::test]
async fn a_code_pattern_is_previewed_by_the_rules_of_a_new_campaign() {
    let app = spawn_app().await;
    let preview = |body: Value, token: String| {
        let app = &app;
        async move {
            app.call(
                Method::POST,
                "/api/v1/code-previews",
                Some(&token),
                Some(body),
            )
            .await
        }
    };
    let res = preview(
        json!({"prefix": "FLASH-", "pattern": "###-##", "charset": "numbers"}),
        app.admin_token.clone(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["pattern"], "FLASH-###-##");
    assert_eq!(p["possible_codes"], 100_000);
    let samples = p["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 5);
    let shaped = |s: &str| {
        s.len() == 12
            && s.starts_with("FLASH-")
            && s[6..].chars().enumerate().all(
                |(i, c)| {
                    if i == 3 { c == '-' } else { c.is_ascii_digit() }
                },
            )
    };
    assert!(
        samples.iter().all(|s| shaped(s.as_str().unwrap())),
        "{samples:?}"
    );

    // The same rules as creating the campaign: a pattern without a random character is refused.
    let res = preview(json!({"pattern": "SUMMER"}), app.admin_token.clone()).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = res.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("at least one #"),
        "{problem}"
    );
    let res = preview(json!({"length": 40}), app.admin_token.clone()).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Managers only.
    let (_, customer) = app.customer("someone@example.org").await;
    assert_eq!(
        preview(json!({}), customer).await.status(),
        StatusCode::FORBIDDEN
    );
}

/// The first FLASH- followed by six capital letters in `text`.
fn flash_code(text: &str) -> Option<&str> {
    text.match_indices("FLASH-").find_map(|(at, _)| {
        let code = text.get(at..at + 12)?;
        code[6..]
            .chars()
            .all(|c| c.is_ascii_uppercase())
            .then_some(code)
    })
}

/// Fills the till's first order line.
async fn till_line(page: &mut Page, sku: &str, category: &str, price: &str) {
    page.eval(&format!(
        "(() => {{ const row = document.querySelector('#till-lines tbody tr');
          row.querySelector('.line-sku').value = {};
          row.querySelector('.line-category').value = {};
          row.querySelector('.line-price').value = {}; return true; }})()",
        json!(sku),
        json!(category),
        json!(price)
    ))
    .await;
}

async fn wait_message(page: &mut Page, what: &str, expected: &str) {
    page.wait_for(
        what,
        &format!(
            "document.getElementById('message').textContent === {}",
            json!(expected)
        ),
    )
    .await;
}

#[actix_web::test]
async fn a_marketing_manager_runs_a_flash_sale_from_the_console_alone() {
    let Some(binary) = chromium_or_skip() else {
        return;
    };
    let mut mail = MailServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::distributions::smtp_settings(&dir, &mail);
    settings.delivery.email.per_second = 1000;
    let app = spawn_with(settings, dir).await;

    // Three customers follow the retailer; a fourth follows another one.
    for (email, retailer) in [
        ("ana@example.org", "acme"),
        ("ben@example.org", "acme"),
        ("cleo@example.org", "acme"),
        ("dan@example.org", "globex"),
    ] {
        let (id, token) = app.customer(email).await;
        let res = app
            .subscribe(&id, &token, json!({ "retailer": retailer }))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    app.manager("marketing@example.org").await;

    let browser = Browser::launch(&binary);
    let mut page = browser.page().await;
    page.open(&app.url("/admin")).await;
    page.sign_in("marketing@example.org", "customer-password")
        .await;
    page.wait_for("the overview", "!document.getElementById('tabs').hidden")
        .await;

    // A flash sale with rules and a budget, its codes previewed first.
    page.click("#tabs button[data-tab='new-campaign']").await;
    page.wait_for(
        "the campaign form",
        "!document.getElementById('tab-new-campaign').hidden && document.getElementById('nc-starts').value !== ''",
    )
    .await;
    for (id, value) in [
        ("nc-name", "Winter flash sale"),
        ("nc-kind", "flash_sale"),
        ("nc-percent", "20"),
        ("nc-max", "30"),
        ("nc-prefix", "FLASH-"),
        ("nc-pattern", "######"),
        ("nc-charset", "upper"),
        ("nc-pool", "2000"),
        ("nc-timezone", "Europe/Paris"),
        ("nc-min-order", "20.00"),
        ("nc-cat-in", "shoes, boots"),
        ("nc-hours", "0-23"),
    ] {
        page.fill(id, value).await;
    }
    page.click("#nc-preview").await;
    page.wait_for(
        "the sample codes",
        "document.querySelectorAll('#nc-samples li').length === 6",
    )
    .await;
    let samples = page
        .eval("[...document.querySelectorAll('#nc-samples li')].slice(0, 5).map(li => li.textContent)")
        .await;
    assert!(
        samples
            .as_array()
            .unwrap()
            .iter()
            .all(|s| flash_code(s.as_str().unwrap()) == Some(s.as_str().unwrap())),
        "{samples}"
    );
    page.click("#nc-add-budget").await;
    page.eval(
        "(() => { const row = document.querySelector('#nc-budgets tbody tr');
          row.querySelector('.budget-measure').value = 'discount_cents';
          row.querySelector('.budget-limit').value = '500';
          row.querySelector('.budget-period').value = 'total'; return true; })()",
    )
    .await;
    page.assert_accessible("console-new-campaign").await;
    page.screenshot("console-new-campaign").await;
    page.click("#nc-create").await;
    wait_message(
        &mut page,
        "the campaign's creation",
        "Created Winter flash sale: give it codes to start it.",
    )
    .await;
    let campaigns = app
        .get_json("/api/v1/campaigns?limit=10", &app.admin_token)
        .await;
    let stored = campaigns["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Winter flash sale")
        .expect("the campaign is stored")
        .clone();
    let id = stored["id"].as_str().unwrap().to_owned();
    assert_eq!(stored["kind"], "flash_sale");
    assert_eq!(stored["code_pattern"], "FLASH-######");
    assert_eq!(stored["timezone"], "Europe/Paris");
    assert_eq!(stored["discount"]["percent"], 20);
    assert_eq!(stored["discount"]["max_cents"], 3000);
    assert_eq!(stored["rules"]["min_order_cents"], 2000);
    assert_eq!(
        stored["rules"]["categories"]["include"],
        json!(["shoes", "boots"])
    );
    assert_eq!(stored["budgets"][0]["limit"], 50000);
    assert_eq!(stored["budgets"][0]["measure"], "discount_cents");

    // 1,000 codes generated, then 100 imported from a file chosen in the file dialog.
    page.wait_for(
        "the campaign's panel",
        &format!("document.getElementById('campaign-detail').dataset.campaignId === '{id}'"),
    )
    .await;
    page.fill("gen-count", "1000").await;
    page.click("#gen-button").await;
    wait_message(
        &mut page,
        "the generation",
        "1000 codes generated; 1000 in all.",
    )
    .await;
    let csv_dir = tempfile::tempdir().unwrap();
    let csv = csv_dir.path().join("partner-codes.csv");
    let mut file = String::from("code\n");
    for i in 0..100 {
        file.push_str(&format!("PARTNER-{i:04}\n"));
    }
    std::fs::write(&csv, file).unwrap();
    page.choose_file("#import-file", &csv).await;
    page.click("#import-button").await;
    wait_message(
        &mut page,
        "the import",
        "100 codes imported from partner-codes.csv; 1100 in all.",
    )
    .await;
    let stored = app
        .get_json(&format!("/api/v1/campaigns/{id}"), &app.admin_token)
        .await;
    assert_eq!(stored["codes_total"], 1100);
    assert_eq!(stored["status"], "active");

    // The codes as a file, downloaded into a folder of the test's.
    let downloads = tempfile::tempdir().unwrap();
    page.call(
        "Page.setDownloadBehavior",
        json!({"behavior": "allow", "downloadPath": downloads.path().display().to_string()}),
    )
    .await;
    page.click("#download-button").await;
    let downloaded = downloads.path().join("Winter-flash-sale-codes.csv");
    let mut text = String::new();
    for _ in 0..200 {
        if let Ok(t) = std::fs::read_to_string(&downloaded)
            && t.lines().count() == 1101
        {
            text = t;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(text.lines().count(), 1101, "a header and 1,100 codes");
    assert!(text.contains("PARTNER-0042"));

    // Paused and resumed; renamed and given two codes per customer.
    page.click("#pause-button").await;
    wait_message(&mut page, "the pause", "Paused Winter flash sale.").await;
    let stored = app
        .get_json(&format!("/api/v1/campaigns/{id}"), &app.admin_token)
        .await;
    assert_eq!(stored["status"], "paused");
    assert_eq!(page.text("#pause-button").await, "Resume");
    page.click("#pause-button").await;
    wait_message(&mut page, "the resumption", "Resumed Winter flash sale.").await;
    page.fill("edit-name", "Winter flash sale!").await;
    page.fill("edit-limit", "2").await;
    page.click("#edit-button").await;
    wait_message(&mut page, "the edit", "Saved Winter flash sale!.").await;
    let stored = app
        .get_json(&format!("/api/v1/campaigns/{id}"), &app.admin_token)
        .await;
    assert_eq!(
        (
            &stored["status"],
            &stored["name"],
            &stored["per_customer_limit"]
        ),
        (&json!("active"), &json!("Winter flash sale!"), &json!(2))
    );
    page.fill("edit-name", "Winter flash sale").await;
    page.click("#edit-button").await;
    wait_message(&mut page, "the second edit", "Saved Winter flash sale.").await;

    // Sent to the retailer's followers by email; the progress line reaches the end.
    page.fill("dist-audience", "retailer").await;
    page.fill("dist-target", "acme").await;
    page.fill("dist-channel", "email").await;
    page.click("#dist-button").await;
    page.wait_for(
        "the distribution to complete",
        "document.getElementById('dist-progress').textContent === '3 of 3 handled, 3 codes sent, 0 skipped · completed'",
    )
    .await;
    page.wait_for(
        "the past distribution in the list",
        "document.querySelector('#distributions tbody tr td:nth-child(2)')?.textContent === 'followers of retailer acme'",
    )
    .await;
    let mut codes = Vec::new();
    let mut to = Vec::new();
    for _ in 0..3 {
        let (msg, _) = mail
            .next(Duration::from_secs(20))
            .await
            .expect("a code email");
        to.push(msg["envelope_recipients"].to_string());
        codes.push(
            flash_code(msg["text"].as_str().unwrap())
                .expect("the code is in the email")
                .to_owned(),
        );
    }
    to.sort();
    assert!(to[0].contains("ana@example.org") && to[1].contains("ben@example.org"));
    assert!(to[2].contains("cleo@example.org"), "{to:?}");
    let code = codes[0].clone();

    // At the till: an order below the minimum does not qualify; a pair of shoes does.
    page.click("#tabs button[data-tab='till']").await;
    page.wait_for(
        "the till's first line",
        "!!document.querySelector('#till-lines tbody tr .line-price')",
    )
    .await;
    page.fill("till-code", &code).await;
    till_line(&mut page, "SOCK-1", "socks", "9.50").await;
    page.click("#till-validate").await;
    page.wait_for(
        "the refusal",
        "document.querySelector('#till-result h3')?.textContent === 'The code does not apply'",
    )
    .await;
    assert_eq!(
        page.text("#till-result tbody td:nth-child(4)").await,
        "the order is below the minimum"
    );
    till_line(&mut page, "RUN-1", "shoes", "80.00").await;
    page.click("#till-validate").await;
    page.wait_for(
        "the validation",
        "document.querySelector('#till-result h3')?.textContent === 'The code applies'",
    )
    .await;
    assert_eq!(
        page.text("#till-totals").await,
        "Order 80.00, discount 16.00, to pay 64.00"
    );
    page.assert_accessible("console-till").await;
    page.screenshot("console-till").await;
    page.click("#till-redeem").await;
    wait_message(
        &mut page,
        "the redemption",
        &format!("Redeemed {code}: 16.00 off."),
    )
    .await;
    // A mistake at the till: rolled back, the code can be used again; then redeemed for good.
    page.click("#till-rollback").await;
    wait_message(
        &mut page,
        "the rollback",
        &format!("Rolled back the redemption of {code}: it can be used again."),
    )
    .await;
    page.click("#till-redeem").await;
    wait_message(
        &mut page,
        "the second redemption",
        &format!("Redeemed {code}: 16.00 off."),
    )
    .await;
    page.click("#till-redeem").await;
    page.wait_for(
        "the refusal of a second use",
        "document.getElementById('message').textContent.startsWith('Not redeemed: ')",
    )
    .await;

    // Looked up: redeemed.
    page.click("#tabs button[data-tab='lookup']").await;
    page.fill("lookup-code", &code).await;
    page.click("#lookup-button").await;
    page.wait_for(
        "the code's facts",
        "document.querySelectorAll('#lookup-result dd').length === 8",
    )
    .await;
    assert_eq!(
        page.eval("[...document.querySelectorAll('#lookup-result dd')].slice(0, 3).map(d => d.textContent).join(' | ')")
            .await,
        format!("{code} | Winter flash sale | redeemed")
    );
    page.assert_accessible("console-lookup").await;
    page.screenshot("console-lookup").await;
    // Another code disabled from the look-up: the till refuses it.
    let other = codes[1].clone();
    page.fill("lookup-code", &other).await;
    page.click("#lookup-button").await;
    page.wait_for(
        "the other code",
        &format!(
            "document.querySelector('#lookup-result dd')?.textContent === {} && !document.getElementById('lookup-toggle').hidden && document.getElementById('lookup-toggle').textContent === 'Disable this code'",
            json!(other)
        ),
    )
    .await;
    page.click("#lookup-toggle").await;
    page.wait_for(
        "the code disabled",
        "[...document.querySelectorAll('#lookup-result dd')][2]?.textContent === 'claimed (disabled)'",
    )
    .await;
    let res = app
        .call(
            Method::POST,
            "/api/v1/validations",
            Some(&app.admin_token),
            Some(
                json!({"codes": [other], "order": {"currency": "EUR", "items": [
                {"sku": "RUN-1", "category": "shoes", "quantity": 1, "price_cents": 8000}]}}),
            ),
        )
        .await;
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["redeemables"][0]["reason"], "disabled", "{v}");

    // The report: figures, the budget's use and the chart; then the sale is ended.
    page.click("#tabs button[data-tab='overview']").await;
    let row = format!("document.querySelector('#campaigns tr[data-campaign-id=\"{id}\"]')");
    page.wait_for("the campaign's row", &format!("!!{row}"))
        .await;
    page.eval(&format!(
        "{row}.querySelector('button.chart').click(); true"
    ))
    .await;
    page.wait_for(
        "the report's figures",
        "/^1100 codes: \\d+ available, 3 claimed, 1 redeemed \\(33\\.3 %\\), discount given 16\\.00/.test(document.getElementById('detail-figures').textContent)",
    )
    .await;
    page.wait_for(
        "the chart",
        "(() => { const i = document.getElementById('chart'); return i.complete && i.naturalWidth > 0; })()",
    )
    .await;
    assert_eq!(
        page.text("#detail-budgets").await,
        "Budget: discount per campaign, used 16.00 of 500.00 (3.2 %)"
    );
    assert_eq!(
        page.text("#detail-rules").await,
        "Unique codes · at most 30.00 off · orders from 20.00 · categories shoes, boots · at hours 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23"
    );
    page.assert_accessible("console-campaign").await;
    page.screenshot("console-campaign").await;
    page.eval(&format!("{row}.querySelector('button.end').click(); true"))
        .await;
    page.eval(&format!("{row}.querySelector('button.end').click(); true"))
        .await;
    page.wait_for(
        "the status to read ended",
        &format!("{row}?.querySelector('.status').textContent === 'ended'"),
    )
    .await;
    let stored = app
        .get_json(&format!("/api/v1/campaigns/{id}"), &app.admin_token)
        .await;
    assert_eq!(stored["status"], "ended");
    assert_eq!(stored["redeemed"], 1);

    page.assert_clean().await;
    mail.stop();
}

#[actix_web::test]
async fn managers_find_a_customer_by_email_or_phone_and_only_admins_list_everyone() {
    let app = spawn_app().await;
    let (id, customer_token) = app.customer("Found.Me@example.org").await;
    // Set by an admin (vouched for): a number its customer typed is found once confirmed.
    let res = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            Some(&app.admin_token),
            Some(json!({"phone": "+33612345678"})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let (_, manager_token) = app.manager("manager@example.org").await;
    for query in [
        "email=found.me%40example.org",
        "phone=%2B33612345678",
        "email=FOUND.ME%40example.org&phone=%2B33612345678",
    ] {
        let page = app
            .get_json(&format!("/api/v1/users?{query}"), &manager_token)
            .await;
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{query}: {page}");
        assert_eq!(items[0]["id"], id.as_str());
    }
    for query in [
        "email=nobody%40example.org",
        "phone=%2B33600000000",
        "email=manager%40example.org&phone=%2B33612345678",
    ] {
        let page = app
            .get_json(&format!("/api/v1/users?{query}"), &manager_token)
            .await;
        assert_eq!(page["items"], json!([]), "{query}");
    }
    let res = app
        .call(
            Method::GET,
            "/api/v1/users?email=not-an-address",
            Some(&manager_token),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Listing everyone stays the admins'; customers cannot look anyone up.
    for (path, token) in [
        ("/api/v1/users", &manager_token),
        ("/api/v1/users?email=manager%40example.org", &customer_token),
    ] {
        let res = app.call(Method::GET, path, Some(token), None).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}");
    }
}

#[actix_web::test]
async fn admins_read_the_effective_settings_with_every_secret_masked() {
    let app = spawn_app().await;
    let res = app
        .call(
            Method::GET,
            "/api/v1/admin/settings",
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/toml")
    );
    let text = res.text().await.unwrap();
    let settings: toml::Value = toml::from_str(&text).unwrap();
    assert_eq!(settings["auth"]["secret"].as_str(), Some("********"));
    assert!(!text.contains(crate::helpers::TEST_SECRET));
    assert!(
        settings["store"]["path"]
            .as_str()
            .unwrap()
            .ends_with("data")
    );
    let (_, token) = app.manager("manager@example.org").await;
    let res = app
        .call(Method::GET, "/api/v1/admin/settings", Some(&token), None)
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn an_admin_finds_a_customer_manages_people_and_keys_and_reads_the_settings_in_the_console() {
    let Some(binary) = chromium_or_skip() else {
        return;
    };
    let app = spawn_with_networks(vec![network(
        "feed",
        FeedKind::Csv,
        &fixture_url("generic.csv"),
    )])
    .await;
    app.await_first_pulls().await;
    let (customer, customer_token) = app.customer("jane@example.org").await;
    let res = app
        .subscribe(
            &customer,
            &customer_token,
            json!({"retailer": "Wide World Importers"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let campaign = app.active_campaign(5, 1).await;
    let res = app.claim(&campaign, &customer_token, None).await;
    let code = res.json::<Value>().await.unwrap()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    app.manager("marketing@example.org").await;

    let browser = Browser::launch(&binary);
    let mut page = browser.page().await;
    page.open(&app.url("/admin")).await;
    page.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    page.wait_for(
        "the admin's tabs",
        "!document.getElementById('tabs').hidden && !document.querySelector('#tabs button[data-tab=people]').hidden",
    )
    .await;

    // A customer found by email: their wallet, follows, digest preview; their digest sent now.
    page.click("#tabs button[data-tab='customers']").await;
    page.fill("customer-query", "jane@example.org").await;
    page.click("#customer-find").await;
    page.wait_for(
        "the customer's wallet",
        &format!(
            "document.querySelector('#customer-codes tbody td')?.textContent === {}",
            json!(code)
        ),
    )
    .await;
    assert_eq!(
        page.text("#customer-follows tbody td").await,
        "retailer Wide World Importers"
    );
    page.click("#customer-preview-button").await;
    page.wait_for(
        "the digest preview",
        "document.getElementById('customer-preview').textContent.includes('Wide World Importers: ')",
    )
    .await;
    page.click("#customer-digest-button").await;
    page.wait_for(
        "the digest run",
        "document.getElementById('message').textContent.startsWith('1 digests sent now')",
    )
    .await;
    page.wait_for(
        "the digest in their list",
        "document.querySelectorAll('#customer-digests tbody tr td.status').length === 1",
    )
    .await;
    page.assert_accessible("console-customers").await;
    page.screenshot("console-customers").await;

    // The catalogue.
    page.click("#tabs button[data-tab='catalogue']").await;
    page.wait_for(
        "the vouchers",
        "[...document.querySelectorAll('#catalogue tbody td:first-child')].some(td => td.textContent === 'Wide World Importers')",
    )
    .await;

    // People: a role changed; an API key made (shown once), used, revoked.
    page.click("#tabs button[data-tab='people']").await;
    page.wait_for(
        "the users",
        "!!document.querySelector('#users tr[data-email=\"jane@example.org\"] select')",
    )
    .await;
    page.eval(
        "(() => { const s = document.querySelector('#users tr[data-email=\"jane@example.org\"] select');
          s.value = 'manager'; s.dispatchEvent(new Event('change')); return true; })()",
    )
    .await;
    wait_message(
        &mut page,
        "the role change",
        "jane@example.org is manager now.",
    )
    .await;
    let jane = app
        .get_json(&format!("/api/v1/users/{customer}"), &app.admin_token)
        .await;
    assert_eq!(jane["role"], "manager");
    page.fill("key-name", "till 1").await;
    page.fill("key-role", "manager").await;
    page.click("#key-create").await;
    page.wait_for(
        "the new key",
        "!document.getElementById('key-made').hidden && !!document.querySelector('#api-keys tr[data-key-name=\"till 1\"]')",
    )
    .await;
    let key = page.text("#key-value").await;
    assert!(key.len() > 20, "{key}");
    let res = app
        .call(Method::GET, "/api/v1/campaigns", Some(&key), None)
        .await;
    assert_eq!(res.status(), StatusCode::OK, "the key works as a manager");
    page.assert_accessible("console-people").await;
    page.screenshot("console-people").await;
    page.click("#api-keys tr[data-key-name='till 1'] button.revoke")
        .await;
    wait_message(&mut page, "the revocation", "Revoked the key till 1.").await;
    let res = app
        .call(Method::GET, "/api/v1/campaigns", Some(&key), None)
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // The settings, secrets masked.
    page.click("#tabs button[data-tab='settings']").await;
    page.wait_for(
        "the settings",
        "document.getElementById('settings-text').textContent.includes('[auth]')",
    )
    .await;
    let settings = page.text("#settings-text").await;
    assert!(settings.contains("secret = \"********\""), "{settings}");
    assert!(!settings.contains(crate::helpers::TEST_SECRET));
    page.assert_accessible("console-settings").await;
    page.screenshot("console-settings").await;

    // A customer erased from the console (a second click confirms).
    let (gone, _) = app.customer("gone@example.org").await;
    page.click("#tabs button[data-tab='customers']").await;
    page.fill("customer-query", "gone@example.org").await;
    page.click("#customer-find").await;
    page.wait_for(
        "the customer to erase",
        "document.getElementById('customer-title').textContent === 'gone@example.org'",
    )
    .await;
    page.click("#customer-erase").await;
    page.click("#customer-erase").await;
    wait_message(&mut page, "the erasure", "Erased gone@example.org.").await;
    let res = app
        .call(
            Method::GET,
            &format!("/api/v1/users/{gone}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // A manager is not offered what only admins may do.
    page.click("#sign-out").await;
    page.wait_for("signing out", "!document.getElementById('sign-in').hidden")
        .await;
    page.sign_in("marketing@example.org", "customer-password")
        .await;
    page.wait_for(
        "the manager's tabs",
        "!document.getElementById('tabs').hidden && document.getElementById('who').textContent === 'marketing@example.org (manager)'",
    )
    .await;
    assert_eq!(
        page.eval("[...document.querySelectorAll('#tabs button')].filter(b => !b.hidden).map(b => b.dataset.tab).join(' ')")
            .await,
        "overview new-campaign till lookup customers catalogue"
    );
    page.assert_clean().await;
}

/// A sold campaign's unpaid order waits in the console; confirming its payment takes a second
/// click (the codes become the customer's, paid or not), then the order is paid and its codes
/// are in the customer's wallet.
#[actix_web::test]
async fn a_manager_confirms_a_payment_with_a_second_click() {
    let Some(binary) = chromium_or_skip() else {
        return;
    };
    let app = spawn_app().await;
    let (starts, ends) = crate::campaigns::window();
    let c = app
        .campaign(
            json!({"name": "Paid sale", "kind": "flash_sale", "discount": {"percent": 30},
            "price_cents": 500, "pool_size": 5, "per_customer_limit": 2,
            "starts_at": starts, "ends_at": ends}),
        )
        .await;
    let id = c["id"].as_str().unwrap().to_owned();
    app.add_codes(&id, json!({"count": 5})).await;
    let (_, customer) = app.customer("carla@example.org").await;
    let res = app
        .call(
            Method::POST,
            "/api/v1/orders",
            Some(&customer),
            Some(json!({"campaign_id": id, "quantity": 2})),
        )
        .await;
    let order = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.manager("marketing@example.org").await;

    let browser = Browser::launch(&binary);
    let mut page = browser.page().await;
    page.open(&app.url("/admin")).await;
    page.sign_in("marketing@example.org", "customer-password")
        .await;
    let row = format!("document.querySelector('#campaigns tr[data-campaign-id=\"{id}\"]')");
    page.wait_for("the campaign's row", &format!("!!{row}"))
        .await;
    page.eval(&format!(
        "{row}.querySelector('button.chart').click(); true"
    ))
    .await;
    let button = format!(
        "document.querySelector('#unpaid-orders tr[data-order=\"{order}\"] .confirm-payment')"
    );
    page.wait_for("the unpaid order", &format!("!!{button}"))
        .await;
    page.eval(&format!("{button}.click(); true")).await;
    page.wait_for(
        "the second click asked for",
        &format!("{button}?.textContent === 'Paid 10.00? Click again'"),
    )
    .await;
    let still = app
        .get_json(&format!("/api/v1/orders/{order}"), &app.admin_token)
        .await;
    assert_eq!(still["status"], "pending_payment", "one click pays nothing");
    page.eval(&format!("{button}.click(); true")).await;
    wait_message(
        &mut page,
        "the payment confirmed",
        "Payment confirmed: 2 codes are the customer's now.",
    )
    .await;
    let paid = app
        .get_json(&format!("/api/v1/orders/{order}"), &app.admin_token)
        .await;
    assert_eq!(paid["status"], "paid");
    assert_eq!(
        app.get_json("/api/v1/wallet", &customer).await["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}
