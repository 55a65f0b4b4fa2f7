//! The dashboard page in a real headless Chromium, driven over the Chrome DevTools Protocol: a
//! manager signs in, opens a campaign's chart, ends the campaign and sees its status change; the
//! page's strict Content-Security-Policy reports no violation; a screenshot is saved.
//!
//! Chromium is found at `$VOUCHERD_CHROMIUM`, or as `chromium` / `chromium-browser` /
//! `google-chrome` in /usr/bin (Debian: `apt install chromium`; `.ci/run` installs it). Without
//! one the browser test says so and passes, unless `VOUCHERD_BROWSER_TESTS=require` (as in CI),
//! when a missing browser fails it.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use voucherd::feeds::FeedKind;

use crate::browser::{Browser, chromium_or_skip};

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, fixture_url, network, spawn_app, spawn_with_networks,
};

#[actix_web::test]
async fn the_page_and_its_assets_come_with_a_strict_policy_and_nothing_from_elsewhere() {
    let app = spawn_app().await;
    for (path, kind) in [
        ("/admin", "text/html"),
        ("/admin/app.js", "text/javascript"),
        ("/ui.js", "text/javascript"),
        ("/ui.css", "text/css"),
        ("/me", "text/html"),
        ("/me/app.js", "text/javascript"),
    ] {
        let res = app.call(Method::GET, path, None, None).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let h = res.headers();
        assert!(
            h["content-type"].to_str().unwrap().starts_with(kind),
            "{path}"
        );
        let csp = h["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "no-referrer");
        let body = res.text().await.unwrap();
        assert!(
            !body.contains("http://") && !body.contains("https://") && !body.contains("//cdn"),
            "{path} names another origin"
        );
    }
}

#[actix_web::test]
async fn a_manager_signs_in_reads_a_campaign_chart_and_ends_the_campaign_in_a_browser() {
    let Some(binary) = chromium_or_skip() else {
        return;
    };
    let app = spawn_with_networks(vec![network(
        "feed",
        FeedKind::Csv,
        &fixture_url("generic.csv"),
    )])
    .await;
    let campaign = app.active_campaign(5, 1).await;
    // A shared promotion with rules and a budget, used once: the page shows them and their use.
    let (starts, ends) = crate::campaigns::window();
    let summer = app
        .campaign(
            json!({"name": "Summer", "kind": "discount", "code_mode": "shared",
            "discount": {"percent": 10, "max_cents": 2000}, "pool_size": 1,
            "rules": {"min_order_cents": 5000, "categories": {"include": ["shoes"]}},
            "budgets": [{"measure": "discount_cents", "limit": 10000, "period": "day"}],
            "starts_at": starts, "ends_at": ends}),
        )
        .await;
    let summer = summer["id"].as_str().unwrap().to_owned();
    app.add_codes(&summer, json!({"codes": ["SUMMER10"]})).await;
    let res = app
        .redeem(
            json!({"code": "SUMMER10", "customer_ref": "buyer-1", "order": {"currency": "EUR",
            "items": [{"sku": "RUN-1", "category": "shoes", "quantity": 1, "price_cents": 6000}]}}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let (_, customer) = app.customer("buyer@example.org").await;
    assert_eq!(
        app.claim(&campaign, &customer, None).await.status(),
        StatusCode::CREATED
    );
    // One code handed out by email (the file transport here): a delivery the page lists.
    let (other, _) = app.customer("reader@example.org").await;
    let res = app
        .distribute(&campaign, json!({"customers": [other], "channel": "email"}))
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    for _ in 0..200 {
        let o = app
            .get_json("/api/v1/reports/overview", &app.admin_token)
            .await;
        if o["deliveries"][0]["sent"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.manager("marketing@example.org").await;

    let browser = Browser::launch(&binary);
    let mut page = browser.page().await;
    page.open(&app.url("/admin")).await;
    page.wait_for(
        "the sign-in form",
        "document.readyState === 'complete' && !document.getElementById('sign-in').hidden",
    )
    .await;
    page.assert_accessible("the sign-in page").await;
    // The check can fail: an image without a text alternative is caught.
    if let Some(found) = page
        .eval("(() => { const i = document.createElement('img'); i.id = 'bad'; i.src = '/ui.css'; document.body.append(i); return true; })()")
        .await
        .as_bool()
        .and(page.accessibility_violations().await)
    {
        assert!(
            found.to_string().contains("image-alt"),
            "axe missed an image without alt: {found}"
        );
        page.eval("document.getElementById('bad').remove(); true").await;
    }

    // A customer is turned away at the door.
    page.eval(
        "document.getElementById('email').value = 'buyer@example.org';
         document.getElementById('password').value = 'customer-password';
         document.getElementById('sign-in-button').click(); true",
    )
    .await;
    page.wait_for(
        "the refusal of a customer",
        "document.getElementById('sign-in-error').textContent === 'The dashboard is for managers and admins.'",
    )
    .await;
    assert_eq!(
        page.eval("document.getElementById('dashboard').hidden")
            .await,
        true
    );
    page.eval(
        "document.getElementById('email').value = 'marketing@example.org';
         document.getElementById('password').value = 'customer-password';
         document.getElementById('sign-in-button').click(); true",
    )
    .await;
    let row = format!("document.querySelector('#campaigns tr[data-campaign-id=\"{campaign}\"]')");
    page.wait_for("the campaign's row", &format!("!!{row}"))
        .await;
    assert_eq!(
        page.eval("document.getElementById('who').textContent")
            .await,
        "marketing@example.org (manager)"
    );
    assert_eq!(
        page.eval("document.getElementById('active-campaigns').textContent")
            .await,
        "2"
    );
    assert_eq!(
        page.eval(&format!("{row}.querySelector('.status').textContent"))
            .await,
        "active"
    );

    assert_eq!(
        page.eval("[...document.querySelectorAll('#recent-deliveries tbody td')].slice(1, 4).map(td => td.textContent).join(' ')")
            .await,
        "email code sent"
    );

    // Its chart: the SVG drawn into the page, with the report's figures.
    page.eval(&format!(
        "{row}.querySelector('button.chart').click(); true"
    ))
    .await;
    page.wait_for(
        "the chart",
        "(() => { const i = document.getElementById('chart'); return !document.getElementById('campaign-detail').hidden && i.complete && i.naturalWidth > 0; })()",
    )
    .await;
    let figures = page
        .eval("document.getElementById('detail-figures').textContent")
        .await;
    assert!(
        figures
            .as_str()
            .unwrap()
            .starts_with("5 codes: 3 available, 2 claimed, 0 redeemed"),
        "{figures}"
    );

    // The shared promotion's rules, its budget and its use.
    let summer_row =
        format!("document.querySelector('#campaigns tr[data-campaign-id=\"{summer}\"]')");
    page.eval(&format!(
        "{summer_row}.querySelector('button.chart').click(); true"
    ))
    .await;
    page.wait_for(
        "the promotion's rules",
        "document.getElementById('detail-rules').textContent.startsWith('Shared code')",
    )
    .await;
    assert_eq!(
        page.eval("document.getElementById('detail-rules').textContent")
            .await,
        "Shared code · at most 20.00 off · orders from 50.00 · categories shoes"
    );
    assert_eq!(
        page.eval("document.getElementById('detail-budgets').textContent")
            .await,
        "Budget: discount per day, used 6.00 of 100.00 (6.0 %)"
    );
    assert!(
        page.eval("document.getElementById('detail-days').textContent")
            .await
            .as_str()
            .unwrap()
            .ends_with(" 6.00"),
    );

    // Ending takes a second click to confirm.
    page.eval(&format!("{row}.querySelector('button.end').click(); true"))
        .await;
    assert_eq!(
        page.eval(&format!("{row}.querySelector('button.end').textContent"))
            .await,
        "Really end?"
    );
    let stored = app
        .get_json(&format!("/api/v1/campaigns/{campaign}"), &app.admin_token)
        .await;
    assert_eq!(stored["status"], "active", "one click ends nothing");
    page.eval(&format!("{row}.querySelector('button.end').click(); true"))
        .await;
    page.wait_for(
        "the status to read ended",
        &format!("{row}?.querySelector('.status').textContent === 'ended'"),
    )
    .await;
    let stored = app
        .get_json(&format!("/api/v1/campaigns/{campaign}"), &app.admin_token)
        .await;
    assert_eq!(stored["status"], "ended");
    assert_eq!(
        page.eval("document.getElementById('active-campaigns').textContent")
            .await,
        "1",
        "the promotion is still active"
    );

    // Pulling a network is for admins: the manager is told so, and an admin pulls it.
    let pull = "document.querySelector('#networks tr[data-network=\"feed\"] button.pull')";
    page.eval(&format!("{pull}.click(); true")).await;
    page.wait_for(
        "the refusal",
        "document.getElementById('message').textContent === 'Could not pull feed: admins only'",
    )
    .await;
    page.eval("document.getElementById('sign-out').click(); true")
        .await;
    page.wait_for(
        "signing out",
        "!document.getElementById('sign-in').hidden && !document.querySelector('#campaigns tbody tr')",
    )
    .await;
    page.eval(&format!(
        "document.getElementById('email').value = '{ADMIN_EMAIL}';
         document.getElementById('password').value = '{ADMIN_PASSWORD}';
         document.getElementById('sign-in-button').click(); true"
    ))
    .await;
    page.wait_for(
        "the admin's dashboard",
        &format!(
            "document.getElementById('who').textContent === '{ADMIN_EMAIL} (admin)' && !!{pull}"
        ),
    )
    .await;
    page.eval(&format!("{pull}.click(); true")).await;
    page.wait_for(
        "the pull's summary",
        "/^feed: \\d+ fetched, 0 new, 0 updated$/.test(document.getElementById('message').textContent)",
    )
    .await;
    assert_eq!(
        page.eval(
            "document.querySelector('#networks tr[data-network=\"feed\"] .status').textContent"
        )
        .await,
        "ok"
    );

    page.assert_clean().await;

    // The screenshot shows the chart too.
    page.eval(&format!(
        "{row}.querySelector('button.chart').click(); true"
    ))
    .await;
    page.wait_for(
        "the chart again",
        "(() => { const i = document.getElementById('chart'); return !document.getElementById('campaign-detail').hidden && i.complete && i.naturalWidth > 0; })()",
    )
    .await;
    page.assert_accessible("console-overview").await;
    page.screenshot("console-overview").await;
}
