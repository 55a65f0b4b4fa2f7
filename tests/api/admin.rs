//! The dashboard page in a real headless Chromium, driven over the Chrome DevTools Protocol: a
//! manager signs in, opens a campaign's chart, ends the campaign and sees its status change; the
//! page's strict Content-Security-Policy reports no violation; a screenshot is saved.
//!
//! Chromium is found at `$VOUCHERD_CHROMIUM`, or as `chromium` / `chromium-browser` /
//! `google-chrome` in /usr/bin (Debian: `apt install chromium`; `.ci/run` installs it). Without
//! one the browser test says so and passes, unless `VOUCHERD_BROWSER_TESTS=require` (as in CI),
//! when a missing browser fails it.

use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use base64ct::Encoding as _;
use voucherd::feeds::FeedKind;

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, fixture_url, network, spawn_app, spawn_with_networks,
};

#[actix_web::test]
async fn the_page_and_its_assets_come_with_a_strict_policy_and_nothing_from_elsewhere() {
    let app = spawn_app().await;
    for (path, kind) in [
        ("/admin", "text/html"),
        ("/admin/app.js", "text/javascript"),
        ("/admin/app.css", "text/css"),
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

/// The browser to drive, if this machine has one.
fn chromium() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("VOUCHERD_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .map(|name| PathBuf::from("/usr/bin").join(name))
        .find(|p| p.exists())
}

/// A headless Chromium, killed when dropped.
struct Browser {
    child: Child,
    /// Where it serves the DevTools protocol: `http://127.0.0.1:PORT`.
    http: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn launch(binary: &PathBuf) -> Self {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--window-size=1280,1800",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        // It prints where the protocol listens on stderr; keep draining it afterwards.
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let ws = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("chromium prints its DevTools address");
        let port = ws
            .strip_prefix("ws://127.0.0.1:")
            .and_then(|rest| rest.split('/').next())
            .expect("a loopback DevTools address")
            .to_owned();
        Browser {
            child,
            http: format!("http://127.0.0.1:{port}"),
            _profile: profile,
        }
    }

    /// A connection to its first page.
    async fn page(&self) -> Page {
        let targets: Vec<Value> = reqwest::get(format!("{}/json/list", self.http))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let page = targets
            .iter()
            .find(|t| t["type"] == "page")
            .expect("a page target");
        let url = page["webSocketDebuggerUrl"].as_str().unwrap();
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Page { ws, next_id: 1 }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One page over the DevTools protocol: commands by id, events skipped.
struct Page {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_id: u64,
}

impl Page {
    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let command = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(Message::Text(command.into())).await.unwrap();
        loop {
            let message = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no answer to {method}"))
                .expect("the connection stays open")
                .unwrap();
            let Message::Text(text) = message else {
                continue;
            };
            let answer: Value = serde_json::from_str(&text).unwrap();
            if answer["id"] == id {
                assert!(answer.get("error").is_none(), "{method}: {answer}");
                return answer["result"].clone();
            }
        }
    }

    /// The value of a JavaScript expression (awaited if a promise).
    async fn eval(&mut self, expression: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        assert!(
            r.get("exceptionDetails").is_none(),
            "{expression}: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Waits until `expression` is true; fails naming `what` with the page's message line.
    async fn wait_for(&mut self, what: &str, expression: &str) {
        // Up to 30 s: the tests share two cores with the browser.
        for _ in 0..600 {
            if self.eval(expression).await == json!(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let message = self
            .eval("document.getElementById('message').textContent + ' | ' + document.getElementById('sign-in-error').textContent")
            .await;
        panic!("{what} did not happen; the page says: {message}");
    }
}

#[actix_web::test]
async fn a_manager_signs_in_reads_a_campaign_chart_and_ends_the_campaign_in_a_browser() {
    let Some(binary) = chromium() else {
        assert_ne!(
            std::env::var("VOUCHERD_BROWSER_TESTS").as_deref(),
            Ok("require"),
            "no chromium found (apt install chromium, or set VOUCHERD_CHROMIUM)"
        );
        eprintln!("skipped: no chromium on this machine (apt install chromium)");
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
    let (manager, _) = app.customer("marketing@example.org").await;
    assert_eq!(
        app.set_role(&manager, &app.admin_token, "manager")
            .await
            .status(),
        StatusCode::OK
    );

    let browser = Browser::launch(&binary);
    let mut page = browser.page().await;
    page.call("Page.enable", json!({})).await;
    // Anything the policy blocks is recorded for the end of the test.
    page.call(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({"source": "window.__violations = []; document.addEventListener('securitypolicyviolation', e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"}),
    )
    .await;
    page.call("Page.navigate", json!({"url": app.url("/admin")}))
        .await;
    page.wait_for(
        "the sign-in form",
        "document.readyState === 'complete' && !document.getElementById('sign-in').hidden",
    )
    .await;

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
            .starts_with("5 codes, 2 claimed, 0 redeemed"),
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

    assert_eq!(
        page.eval("window.__violations").await,
        json!([]),
        "the Content-Security-Policy blocked something"
    );

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
    let shot = page
        .call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        )
        .await;
    let png = base64ct::Base64::decode_vec(shot["data"].as_str().unwrap()).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("admin-dashboard.png");
    std::fs::write(&path, &png).unwrap();
    eprintln!("screenshot: {}", path.display());
}
