//! The customer's side: the page at /me in a real headless Chromium (sign up, follow two
//! retailers, find a code sent by email in the wallet with its QR code, unsubscribe by the
//! email's link, opt in again), the marketing email choice that email distributions respect, the
//! one-click unsubscribe link on code emails, and the QR code of a code.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use voucherd::feeds::FeedKind;

use crate::browser::{Browser, chromium_or_skip};
use crate::digests::header;
use crate::helpers::{MailServer, TestApp, fixture_url, network, spawn_app, spawn_with};

/// A server sending email to `mail`, with the generic feed's vouchers.
async fn spawn_mailing(mail: &MailServer) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::distributions::smtp_settings(&dir, mail);
    settings.delivery.email.per_second = 1000;
    settings.networks = vec![network("feed", FeedKind::Csv, &fixture_url("generic.csv"))];
    let app = spawn_with(settings, dir).await;
    app.await_first_pulls().await;
    app
}

impl TestApp {
    /// An active campaign with `codes` codes; its id.
    async fn campaign_with_codes(&self, codes: u32) -> String {
        let (starts, ends) = crate::campaigns::window();
        let c = self
            .campaign(
                json!({"name": "Welcome", "kind": "discount", "discount": {"percent": 10},
                "pool_size": codes, "starts_at": starts, "ends_at": ends}),
            )
            .await;
        let id = c["id"].as_str().unwrap().to_owned();
        self.add_codes(&id, json!({ "count": codes })).await;
        id
    }

    /// Sends codes to the followers of `retailer` by email and waits until it completes.
    async fn send_to_followers(&self, campaign: &str, retailer: &str) -> Value {
        let res = self
            .distribute(
                campaign,
                json!({"subscribers_of": {"retailer": retailer}, "channel": "email"}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        let d: Value = res.json().await.unwrap();
        let path = format!(
            "/api/v1/campaigns/{campaign}/distributions/{}",
            d["id"].as_str().unwrap()
        );
        for _ in 0..400 {
            let d = self.get_json(&path, &self.admin_token).await;
            if d["status"] == "completed" {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the distribution did not complete");
    }
}

#[actix_web::test]
async fn code_emails_unsubscribe_in_one_click_and_email_distributions_skip_who_opted_out() {
    let mut mail = MailServer::start().await;
    let app = spawn_mailing(&mail).await;
    let campaign = app.campaign_with_codes(10).await;
    let mut people = Vec::new();
    for email in ["stays@example.org", "leaves@example.org"] {
        let (id, token) = app.customer(email).await;
        let res = app
            .subscribe(&id, &token, json!({"retailer": "Contoso"}))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        people.push((id, token));
    }
    // One opts out on their own.
    let (leaver, leaver_token) = &people[1];
    let res = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{leaver}"),
            Some(leaver_token),
            Some(json!({"marketing_emails": false})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.json::<Value>().await.unwrap()["marketing_emails"],
        false
    );

    let d = app.send_to_followers(&campaign, "Contoso").await;
    assert_eq!(
        (
            d["recipients"].as_u64(),
            d["assigned"].as_u64(),
            d["skipped_unreachable"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{d}"
    );
    let (msg, _) = mail.next(Duration::from_secs(20)).await.expect("a code");
    assert_eq!(msg["envelope_recipients"], json!(["stays@example.org"]));
    assert!(
        mail.next(Duration::from_millis(500)).await.is_none(),
        "nothing for who opted out"
    );
    // The code email links to the wallet page and to a one-click unsubscribe.
    let text = msg["text"].as_str().unwrap();
    assert!(text.contains(&app.url("/me#wallet")), "{text}");
    let link = header(&msg, "List-Unsubscribe")
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned();
    assert!(link.starts_with(&app.url("/unsubscribe/")), "{link}");
    assert!(text.contains(&link), "the link is in the text too");
    assert_eq!(
        header(&msg, "List-Unsubscribe-Post"),
        "List-Unsubscribe=One-Click"
    );
    // The mail client's one-click POST: no more digests, no more marketing email.
    let res = app.one_click_unsubscribe(&link).await;
    assert_eq!(res.status(), StatusCode::OK);
    let (stayer, stayer_token) = &people[0];
    let user = app
        .get_json(&format!("/api/v1/users/{stayer}"), stayer_token)
        .await;
    assert_eq!(
        (&user["marketing_emails"], &user["digest_frequency"]),
        (&json!(false), &json!("off"))
    );
    let d = app.send_to_followers(&campaign, "Contoso").await;
    assert_eq!(
        (d["recipients"].as_u64(), d["skipped_unreachable"].as_u64()),
        (Some(0), Some(2)),
        "{d}"
    );
    assert!(mail.next(Duration::from_millis(500)).await.is_none());
    // Opting in again (SMS and webhooks never asked: only email distributions look).
    let res = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{leaver}"),
            Some(leaver_token),
            Some(json!({"marketing_emails": true})),
        )
        .await;
    assert_eq!(res.json::<Value>().await.unwrap()["marketing_emails"], true);
    let d = app.send_to_followers(&campaign, "Contoso").await;
    assert_eq!(d["assigned"], 1, "{d}");
    let (msg, _) = mail.next(Duration::from_secs(20)).await.expect("a code");
    assert_eq!(msg["envelope_recipients"], json!(["leaves@example.org"]));
    mail.stop();
}

#[actix_web::test]
async fn a_code_is_drawn_as_a_qr_code_for_its_holder_and_managers_only() {
    let app = spawn_app().await;
    let campaign = app.campaign_with_codes(2).await;
    let (_, holder) = app.customer("holder@example.org").await;
    let res = app.claim(&campaign, &holder, None).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let code = res.json::<Value>().await.unwrap()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/codes/{code}/qr.svg");
    for token in [&holder, &app.admin_token] {
        let res = app.call(Method::GET, &path, Some(token), None).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["content-type"], "image/svg+xml");
        let svg = res.text().await.unwrap();
        assert!(
            svg.contains("<svg") && svg.contains("<path") || svg.contains("<rect"),
            "{svg}"
        );
    }
    let (_, other) = app.customer("other@example.org").await;
    for path in [path.clone(), "/api/v1/codes/NO-SUCH-CODE/qr.svg".to_owned()] {
        let res = app.call(Method::GET, &path, Some(&other), None).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let res = app.call(Method::GET, &path, None, None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn a_customer_signs_up_follows_retailers_finds_a_sent_code_and_unsubscribes_in_a_browser() {
    let Some(binary) = chromium_or_skip() else {
        return;
    };
    let mut mail = MailServer::start().await;
    // An SMS gateway, for the code that proves the customer's number.
    let gateway = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(json!({"id": "m"})))
        .mount(&gateway)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::distributions::smtp_settings(&dir, &mail);
    settings.delivery.email.per_second = 1000;
    settings.delivery.sms.url = format!("{}/sms", gateway.uri());
    settings.networks = vec![network("feed", FeedKind::Csv, &fixture_url("generic.csv"))];
    let app = spawn_with(settings, dir).await;
    app.await_first_pulls().await;
    let campaign = app.campaign_with_codes(5).await;

    let browser = Browser::launch(&binary);
    let mut page = browser.page().await;
    page.open(&app.url("/me")).await;
    page.wait_for(
        "the sign-up form",
        "!document.getElementById('welcome').hidden && document.getElementById('up-timezone').value !== ''",
    )
    .await;
    page.fill("up-email", "new.customer@example.org").await;
    page.fill("up-password", "a long password").await;
    page.fill("up-timezone", "Europe/Madrid").await;
    page.fill("up-hour", "7").await;
    // Consent is theirs to give: the box starts unticked.
    assert_eq!(
        page.eval("document.getElementById('up-marketing').checked")
            .await,
        json!(false)
    );
    page.click("#up-marketing").await;
    page.assert_accessible("customer-sign-up").await;
    page.screenshot("customer-sign-up").await;
    page.click("#sign-up-button").await;
    page.wait_for(
        "the answer to the sign-up",
        "document.getElementById('sign-up-done').textContent.includes('link')",
    )
    .await;
    // The link in the email opens a page; its button confirms the address.
    let (msg, _) = mail
        .next(Duration::from_secs(20))
        .await
        .expect("the confirmation email");
    let text = msg["text"].as_str().unwrap();
    let at = text.find("/verify-email/").expect("a link");
    let start = text[..at].rfind("http").unwrap();
    let link: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    page.call("Page.navigate", json!({ "url": link })).await;
    page.wait_for(
        "the confirmation page",
        "location.pathname.startsWith('/verify-email/') && document.readyState === 'complete' && !!document.querySelector('form button')",
    )
    .await;
    // Opening the link is not enough: the password chosen at sign-up proves who opened it.
    page.fill("password", "not the password").await;
    page.click("form button").await;
    page.wait_for(
        "a wrong password refused",
        "document.querySelector('[role=alert]')?.textContent.includes('not the password')",
    )
    .await;
    let asks = page
        .eval("document.querySelector('main p').textContent")
        .await;
    assert!(
        asks.as_str().unwrap().contains("n***@e***.org"),
        "the page still names the address: {asks}"
    );
    page.fill("password", "a long password").await;
    page.click("form button").await;
    page.wait_for(
        "the address confirmed",
        "document.querySelector('h1')?.textContent === 'Address confirmed'",
    )
    .await;
    page.assert_accessible("customer-confirmed").await;
    page.screenshot("customer-confirmed").await;
    // Opened again, the link says it did its work and asks for nothing.
    page.call("Page.navigate", json!({ "url": link })).await;
    page.wait_for(
        "the link's work done",
        "document.querySelector('h1')?.textContent === 'Address confirmed already' && !document.querySelector('form')",
    )
    .await;
    page.call("Page.navigate", json!({ "url": app.url("/me") }))
        .await;
    page.wait_for(
        "the sign-in form",
        "!document.getElementById('welcome').hidden",
    )
    .await;
    page.fill("email", "new.customer@example.org").await;
    page.fill("password", "a long password").await;
    page.click("#sign-in-button").await;
    page.wait_for(
        "the account",
        "!document.getElementById('account').hidden && document.getElementById('who').textContent === 'new.customer@example.org'",
    )
    .await;
    assert_eq!(
        page.eval("document.getElementById('unconfirmed').hidden")
            .await,
        json!(true)
    );

    // Their number, proven by the code a text message brings.
    page.fill("set-phone", "+34612345678").await;
    page.click("#phone-send-button").await;
    page.wait_for(
        "the code field",
        "!document.getElementById('phone-code-form').hidden",
    )
    .await;
    let code = crate::helpers::eventually("the code by SMS", || async {
        // (Mock servers are reused between tests: only texts to this number count.)
        let requests = gateway.received_requests().await.unwrap_or_default();
        requests.iter().find_map(|r| {
            let body: Value = serde_json::from_slice(&r.body).ok()?;
            let text = body["body"]
                .as_str()
                .filter(|_| body["to"] == "+34612345678")?;
            Some(
                text.chars()
                    .filter(char::is_ascii_digit)
                    .take(6)
                    .collect::<String>(),
            )
        })
    })
    .await;
    page.fill("phone-code", &code).await;
    page.click("#phone-confirm-button").await;
    page.wait_for(
        "the number confirmed",
        "document.getElementById('phone-state').textContent.includes('is confirmed')",
    )
    .await;
    page.assert_accessible("customer-phone").await;

    // Two retailers: one from the suggestions (it has vouchers), one typed.
    page.wait_for(
        "the retailer suggestions",
        "[...document.querySelectorAll('#retailer-names option')].some(o => o.value === 'Wide World Importers')",
    )
    .await;
    for retailer in ["Wide World Importers", "Contoso"] {
        page.fill("follow-retailer", retailer).await;
        page.click("#follow-retailer-button").await;
        page.wait_for(
            "the follow",
            &format!(
                "!!document.querySelector('#follow-list tr[data-follow={}]')",
                json!(retailer)
            ),
        )
        .await;
    }
    page.wait_for(
        "the vouchers of what they follow",
        "[...document.querySelectorAll('#voucher-list tbody td:first-child')].some(td => td.textContent === 'Wide World Importers')",
    )
    .await;
    let me = app
        .get_json("/api/v1/users?limit=100", &app.admin_token)
        .await["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "new.customer@example.org")
        .unwrap()
        .clone();
    assert_eq!(
        (&me["timezone"], &me["digest_hour"], &me["marketing_emails"]),
        (&json!("Europe/Madrid"), &json!(7), &json!(true))
    );

    // A code sent to Contoso's followers reaches their wallet, with a QR code for the till.
    let d = app.send_to_followers(&campaign, "Contoso").await;
    assert_eq!(d["assigned"], 1, "{d}");
    let (msg, _) = mail.next(Duration::from_secs(20)).await.expect("a code");
    let wallet_link = app.url("/me#wallet");
    assert!(msg["text"].as_str().unwrap().contains(&wallet_link));
    let held = app
        .get_json(
            &format!("/api/v1/wallet?customer={}", me["id"].as_str().unwrap()),
            &app.admin_token,
        )
        .await;
    let code = held["items"][0]["code"].as_str().unwrap().to_owned();
    // As from the email: the link opened afresh (the tab keeps its sign-in).
    page.call("Page.navigate", json!({ "url": "about:blank" }))
        .await;
    page.call("Page.navigate", json!({ "url": wallet_link }))
        .await;
    page.wait_for(
        "the code's QR code in the wallet",
        &format!(
            "(() => {{ const i = document.querySelector('#codes tr[data-code={}] img.qr'); return !!i && i.complete && i.naturalWidth > 0; }})()",
            json!(code)
        ),
    )
    .await;
    assert_eq!(
        page.text(&format!("#codes tr[data-code={}] .status", json!(code)))
            .await,
        "ready to use"
    );
    page.assert_accessible("customer-wallet").await;
    page.screenshot("customer-wallet").await;
    page.assert_clean().await;

    // The email's unsubscribe link, opened and confirmed.
    let link = header(&msg, "List-Unsubscribe")
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned();
    page.call("Page.navigate", json!({ "url": link })).await;
    page.wait_for(
        "the unsubscribe page",
        "location.pathname.startsWith('/unsubscribe/') && document.readyState === 'complete' && !!document.querySelector('form button')",
    )
    .await;
    page.click("form button").await;
    page.wait_for(
        "the confirmation",
        "document.querySelector('h1')?.textContent === 'Unsubscribed'",
    )
    .await;
    page.assert_accessible("customer-unsubscribed").await;
    page.screenshot("customer-unsubscribed").await;
    let id = me["id"].as_str().unwrap();
    let user = app
        .get_json(&format!("/api/v1/users/{id}"), &app.admin_token)
        .await;
    assert_eq!(
        (&user["marketing_emails"], &user["digest_frequency"]),
        (&json!(false), &json!("off"))
    );

    // Back on their page, they switch codes by email on again.
    page.call("Page.navigate", json!({ "url": app.url("/me#settings") }))
        .await;
    page.wait_for(
        "the settings",
        "!document.getElementById('account').hidden && document.getElementById('set-frequency').value === 'off'",
    )
    .await;
    assert_eq!(
        page.eval("document.getElementById('set-marketing').checked")
            .await,
        false
    );
    page.eval("document.getElementById('set-marketing').checked = true; true")
        .await;
    page.fill("set-frequency", "weekly").await;
    page.click("#settings-button").await;
    page.wait_for(
        "the save",
        "document.getElementById('settings-message').textContent === 'Saved.'",
    )
    .await;
    let user = app
        .get_json(&format!("/api/v1/users/{id}"), &app.admin_token)
        .await;
    assert_eq!(
        (&user["marketing_emails"], &user["digest_frequency"]),
        (&json!(true), &json!("weekly"))
    );
    page.assert_clean().await;
    mail.stop();
}
