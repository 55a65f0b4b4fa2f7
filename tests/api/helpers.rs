//! `spawn_app()` and `TestApp`: a real server on port 0 over a temporary store, and one helper
//! per endpoint so tests read like what a client does.

use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use voucherd::app::Application;
use voucherd::config::{NetworkSettings, Settings};
use voucherd::feeds::FeedKind;

pub const ADMIN_EMAIL: &str = "admin@localhost";
pub const ADMIN_PASSWORD: &str = "admin-password-1";
/// `[auth] secret` of test servers, so tests can sign unsubscribe links themselves.
pub const TEST_SECRET: &str = "test-secret-test-secret-test-secret-0123";

/// The unsubscribe token the test servers put into a digest for `user_id`.
pub fn unsubscribe_token(user_id: &str) -> String {
    voucherd::security::LinkSigner::new(TEST_SECRET.as_bytes())
        .expect("signer")
        .unsubscribe_token(user_id.parse().expect("uuid"))
}

static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var("TEST_LOG").is_ok() {
        voucherd::telemetry::init_logs(false);
    }
});

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub admin_token: String,
    pub store_dir: tempfile::TempDir,
    pub actors: voucherd::actors::ActorAddrs,
    /// The store's health and failpoints.
    pub store: std::sync::Arc<voucherd::store::Health>,
    handle: actix_web::dev::ServerHandle,
    stopped: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub fn test_settings(store_path: PathBuf) -> Settings {
    let mut s = Settings::defaults().expect("defaults");
    s.http.bind = "127.0.0.1:0".parse().expect("address");
    // The tests' push services run on loopback.
    s.delivery.push.allow_loopback = true;
    s.store.path = store_path;
    s.store.fsync = false;
    s.rate_limit.per_second = 10_000;
    s.rate_limit.burst = 10_000;
    // Tests sign in and sign up many times from one address; the tests of those limits set
    // their own.
    s.rate_limit.login_per_minute = 10_000;
    s.accounts.registrations_per_hour = 10_000;
    s.auth.bootstrap_admin_password = Some(ADMIN_PASSWORD.into());
    s.auth.secret = TEST_SECRET.into();
    // Tests that need networks add their own (wiremock servers or fixture files).
    s.networks.clear();
    s
}

pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = test_settings(dir.path().join("data"));
    spawn_with(settings, dir).await
}

pub async fn spawn_with(settings: Settings, store_dir: tempfile::TempDir) -> TestApp {
    spawn_with_clock(settings, store_dir, voucherd::clock::system()).await
}

/// A server whose time is `clock` (a `ManualClock` for scheduler tests).
pub async fn spawn_with_clock(
    settings: Settings,
    store_dir: tempfile::TempDir,
    clock: voucherd::clock::SharedClock,
) -> TestApp {
    LazyLock::force(&TRACING);
    let app = Application::build_with_clock(settings, clock)
        .await
        .expect("build app");
    let actors = app.actors();
    let store = app.store_health();
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    let stopped = actix_web::rt::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut app = TestApp {
        address,
        client,
        admin_token: String::new(),
        store_dir,
        actors,
        store,
        handle,
        stopped: Some(stopped),
    };
    app.admin_token = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    app
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Any request; `body` is sent as JSON when given.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("request sent")
    }

    /// A visitor signs up (anonymous: with address confirmation on, 202 and a link by email).
    pub async fn register(&self, email: &str, password: &str, timezone: &str) -> Response {
        self.call(
            Method::POST,
            "/api/v1/users",
            None,
            Some(json!({"email": email, "password": password, "timezone": timezone})),
        )
        .await
    }

    /// The admin makes a customer's account (confirmed at once, the manager vouching for it):
    /// `body` is the sign-up's.
    pub async fn create_user(&self, body: Value) -> Response {
        self.call(
            Method::POST,
            "/api/v1/users",
            Some(&self.admin_token),
            Some(body),
        )
        .await
    }

    /// The mail the file transport wrote so far (each `.eml` file's text).
    pub fn mails(&self) -> Vec<String> {
        let dir = self.store_dir.path().join("data").join("mail");
        std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The mails to `address` so far.
    pub fn mails_to(&self, address: &str) -> Vec<String> {
        let to = format!("To: {address}");
        self.mails()
            .into_iter()
            .filter(|m| m.lines().any(|l| l.eq_ignore_ascii_case(&to)))
            .collect()
    }

    /// The token of the newest confirmation link mailed to `address`, once it is there.
    pub async fn confirmation_token(&self, address: &str) -> String {
        eventually(&format!("a confirmation link to {address}"), || async {
            let mut tokens: Vec<String> = self
                .mails_to(address)
                .iter()
                .filter_map(|m| {
                    let at = m.find("/verify-email/")? + "/verify-email/".len();
                    let token: String = m[at..]
                        .chars()
                        .take_while(|c| c.is_ascii_hexdigit() || *c == '.')
                        .collect();
                    Some(token)
                })
                .collect();
            // Expiry is the token's middle part: the newest link expires last.
            tokens.sort_by_key(|t| t.split('.').nth(1).and_then(|e| e.parse::<i64>().ok()));
            tokens.pop()
        })
        .await
    }

    /// `POST /api/v1/email-verifications` with the link's token and the account's password.
    pub async fn confirm_email(&self, token: &str, password: &str) -> Response {
        self.call(
            Method::POST,
            "/api/v1/email-verifications",
            None,
            Some(json!({ "token": token, "password": password })),
        )
        .await
    }

    /// A visitor signs up, opens the link mailed to them and signs in: (user id, token).
    pub async fn signed_up(&self, email: &str, password: &str) -> (String, String) {
        let res = self.register(email, password, "Europe/Berlin").await;
        assert_eq!(res.status(), StatusCode::ACCEPTED, "sign-up of {email}");
        let link = self.confirmation_token(email).await;
        let res = self.confirm_email(&link, password).await;
        assert_eq!(res.status(), StatusCode::OK, "confirming {email}");
        let user: Value = res.json().await.expect("json");
        assert_eq!(user["email_verified"], true);
        let token = self.login(email, password).await;
        (user["id"].as_str().expect("id").to_owned(), token)
    }

    /// A customer the admin made (confirmed address, agreed to codes by email) who signed in:
    /// (user id, token).
    pub async fn customer(&self, email: &str) -> (String, String) {
        let res = self
            .create_user(json!({"email": email, "password": "customer-password",
                "timezone": "Europe/Berlin", "marketing_emails": true}))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let user: Value = res.json().await.expect("json");
        let token = self.login(email, "customer-password").await;
        (user["id"].as_str().expect("id").to_owned(), token)
    }

    /// A user made a manager by the admin (password `customer-password`); (id, token).
    pub async fn manager(&self, email: &str) -> (String, String) {
        let (id, token) = self.customer(email).await;
        let res = self.set_role(&id, &self.admin_token, "manager").await;
        assert_eq!(res.status(), StatusCode::OK);
        (id, token)
    }

    /// The one-click unsubscribe (RFC 8058) a mail client sends to a `List-Unsubscribe` URL.
    pub async fn one_click_unsubscribe(&self, url: &str) -> Response {
        self.client
            .post(url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .expect("the unsubscribe request")
    }

    pub async fn try_login(&self, email: &str, password: &str) -> Response {
        self.call(
            Method::POST,
            "/api/v1/auth/tokens",
            None,
            Some(json!({"email": email, "password": password})),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        let res = self.try_login(email, password).await;
        assert_eq!(res.status(), StatusCode::CREATED, "login of {email}");
        let body: Value = res.json().await.expect("json");
        body["token"].as_str().expect("token").to_owned()
    }

    pub async fn get_user(&self, id: &str, token: &str) -> Response {
        self.call(
            Method::GET,
            &format!("/api/v1/users/{id}"),
            Some(token),
            None,
        )
        .await
    }

    pub async fn me(&self, token: &str) -> Response {
        self.call(Method::GET, "/api/v1/users/me", Some(token), None)
            .await
    }

    pub async fn patch_user(&self, id: &str, token: &str, body: Value) -> Response {
        self.call(
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            Some(token),
            Some(body),
        )
        .await
    }

    pub async fn delete_user(&self, id: &str, token: &str) -> Response {
        self.call(
            Method::DELETE,
            &format!("/api/v1/users/{id}"),
            Some(token),
            None,
        )
        .await
    }

    pub async fn set_role(&self, id: &str, token: &str, role: &str) -> Response {
        self.call(
            Method::PUT,
            &format!("/api/v1/users/{id}/role"),
            Some(token),
            Some(json!({ "role": role })),
        )
        .await
    }

    pub async fn list_users(&self, token: &str, query: &str) -> Response {
        self.call(
            Method::GET,
            &format!("/api/v1/users{query}"),
            Some(token),
            None,
        )
        .await
    }

    /// Every user, following cursors (admin).
    pub async fn all_users(&self) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let query = match &cursor {
                Some(c) => format!("?limit=500&cursor={c}"),
                None => "?limit=500".to_owned(),
            };
            let page: Value = self
                .list_users(&self.admin_token, &query)
                .await
                .json()
                .await
                .expect("json");
            items.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return items,
            }
        }
    }

    pub async fn create_api_key(&self, token: &str, name: &str, role: &str) -> Response {
        self.call(
            Method::POST,
            "/api/v1/api-keys",
            Some(token),
            Some(json!({"name": name, "role": role})),
        )
        .await
    }

    pub async fn subscribe(&self, user: &str, token: &str, body: Value) -> Response {
        self.call(
            Method::POST,
            &format!("/api/v1/users/{user}/subscriptions"),
            Some(token),
            Some(body),
        )
        .await
    }

    /// The admin alerts (one page).
    pub async fn notifications(&self) -> Vec<Value> {
        let res = self
            .call(
                Method::GET,
                "/api/v1/notifications",
                Some(&self.admin_token),
                None,
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json::<Value>().await.expect("json")["items"]
            .as_array()
            .expect("items")
            .clone()
    }

    pub async fn logout(&self, token: &str) -> Response {
        self.call(
            Method::DELETE,
            "/api/v1/auth/tokens/current",
            Some(token),
            None,
        )
        .await
    }

    /// Stops the server gracefully and waits until the store is closed.
    pub async fn stop(mut self) -> tempfile::TempDir {
        self.handle.stop(true).await;
        if let Some(stopped) = self.stopped.take() {
            stopped
                .await
                .expect("server task")
                .expect("server stopped cleanly");
        }
        self.store_dir
    }

    /// Waits (up to `within`) for the server to stop by itself: what it ended with, and its
    /// store's directory.
    pub async fn ended(mut self, within: Duration) -> (anyhow::Result<()>, tempfile::TempDir) {
        let stopped = self.stopped.take().expect("server task");
        let ended = tokio::time::timeout(within, stopped)
            .await
            .expect("the server stops by itself")
            .expect("server task");
        (ended, self.store_dir)
    }
}

/// A network entry for tests: scheduled once a year (tests pull on demand; the start-up pull of a
/// never-pulled network still runs).
pub fn network(name: &str, kind: FeedKind, url: &str) -> NetworkSettings {
    NetworkSettings {
        name: name.into(),
        kind,
        url: url.into(),
        schedule: voucherd::config::Schedule::parse("0 0 0 1 1 *").expect("cron"),
        token: Default::default(),
        account: String::new(),
        timeout_s: 5,
        enabled: true,
        map: None,
    }
}

/// `file://` URL of a fixture under tests/fixtures/feeds.
/// A `file://` URL of the feed fixture `name`, dated relative to today (see [`dated`]): a copy
/// under the test target's temporary folder.
pub fn fixture_url(name: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("fixtures-{}", fixture_shift_days()));
    std::fs::create_dir_all(&dir).expect("fixture dir");
    let path = dir.join(name);
    // Tests run in parallel: write a private copy, then rename it into place.
    let tmp = dir.join(format!("{name}.{}", uuid::Uuid::now_v7()));
    std::fs::write(&tmp, fixture(name)).expect("write fixture");
    std::fs::rename(&tmp, &path).expect("place fixture");
    format!("file://{}", path.display())
}

/// The feed fixture `name` (tests/fixtures/feeds), dated relative to today (see [`dated`]).
pub fn fixture(name: &str) -> String {
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/feeds/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture");
    dated(&text)
}

/// The day the feed fixtures and the tests' literal feed dates were written relative to.
const FIXTURES_DATED: (i32, u32, u32) = (2026, 11, 20);

/// Days from the fixtures' day to today.
pub fn fixture_shift_days() -> i64 {
    let (y, m, d) = FIXTURES_DATED;
    let dated = chrono::NaiveDate::from_ymd_opt(y, m, d).expect("date");
    (chrono::Utc::now().date_naive() - dated).num_days()
}

/// `text` (a feed, or a date a test expects) moved from the fixtures' day to today, so a test
/// running against the system clock sees the same offers active, whatever the calendar says:
/// every `YYYY-MM-DD` date, and every epoch-millisecond time of 2020–2039 (Tradedoubler's dates).
pub fn dated(text: &str) -> String {
    let days = fixture_shift_days();
    let text = voucherd::feeds::shift_dates(text, days);
    let mut out = String::with_capacity(text.len());
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        match digits.parse::<i64>() {
            Ok(ms)
                if digits.len() == 13 && (1_577_836_800_000..2_208_988_800_000).contains(&ms) =>
            {
                out.push_str(&(ms + days * 86_400_000).to_string())
            }
            _ => out.push_str(digits),
        }
        digits.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out);
            out.push(c);
        }
    }
    flush(&mut digits, &mut out);
    out
}

/// Starts an app with these networks and waits for each one's start-up pull to finish.
pub async fn spawn_with_networks(networks: Vec<NetworkSettings>) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(dir.path().join("data"));
    settings.networks = networks;
    let app = spawn_with(settings, dir).await;
    app.await_first_pulls().await;
    app
}

impl TestApp {
    pub async fn networks(&self) -> Vec<Value> {
        let res = self
            .call(
                Method::GET,
                "/api/v1/networks",
                Some(&self.admin_token),
                None,
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.expect("json");
        body["items"].as_array().expect("items").clone()
    }

    pub async fn network_state(&self, name: &str) -> Value {
        self.networks()
            .await
            .into_iter()
            .find(|n| n["name"] == name)
            .expect("network listed")
    }

    /// Waits until every enabled network has pulled at least once.
    pub async fn await_first_pulls(&self) {
        for _ in 0..200 {
            let networks = self.networks().await;
            if networks
                .iter()
                .all(|n| n["state"] == "disabled" || !n["last_pull_at"].is_null())
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the start-up pulls did not finish");
    }

    /// `POST /networks/{name}/pull` as admin; the answer's body.
    pub async fn pull(&self, name: &str) -> Value {
        let res = self
            .call(
                Method::POST,
                &format!("/api/v1/networks/{name}/pull"),
                Some(&self.admin_token),
                None,
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK, "pull {name}");
        res.json().await.expect("json")
    }

    /// One page of `/api/v1/vouchers{query}`.
    pub async fn vouchers(&self, query: &str) -> Value {
        let res = self
            .call(Method::GET, &format!("/api/v1/vouchers{query}"), None, None)
            .await;
        assert_eq!(res.status(), StatusCode::OK, "vouchers{query}");
        res.json().await.expect("json")
    }

    /// Every voucher matching `filter` (e.g. `network=x&active=false`), following cursors.
    pub async fn all_vouchers(&self, filter: &str, page_size: usize) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = format!("?limit={page_size}&{filter}");
            if let Some(c) = &cursor {
                query.push_str(&format!("&cursor={c}"));
            }
            let page = self.vouchers(&query).await;
            items.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return items,
            }
        }
    }
}

/// Asserts a problem+json answer with the given status and code.
pub async fn assert_problem(res: Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "status");
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(ct, "application/problem+json");
    let body: Value = res.json().await.expect("problem body is JSON");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    for field in ["type", "title", "detail"] {
        assert!(body[field].is_string(), "problem lacks {field}: {body}");
    }
    body
}

/// The real binary, with the test admin password.
pub fn voucherd() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_voucherd"));
    cmd.env_remove("VOUCHERD_CONFIG")
        .env("VOUCHERD_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("RUST_LOG", "info");
    cmd
}

/// Starts the real binary on a free port; returns it and its base URL (read from its log).
pub fn serve(store: &std::path::Path) -> (std::process::Child, String) {
    serve_with_env(store, &[])
}

/// [`serve`] with extra environment variables (configuration overrides).
pub fn serve_with_env(
    store: &std::path::Path,
    env: &[(&str, &str)],
) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    // Run from the store's own (temporary) directory: no config file there, as for an installed
    // binary started anywhere.
    let dir = store.parent().unwrap_or(store);
    let mut child = voucherd()
        .current_dir(dir)
        .envs(env.iter().copied())
        .args(["--log-json", "--bind", "127.0.0.1:0", "--store-path"])
        .arg(store)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let address = loop {
        let line = lines.next().expect("the server logs its address").unwrap();
        let Ok(entry) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if entry["fields"]["message"] == "voucherd listening" {
            break entry["fields"]["address"].as_str().unwrap().to_owned();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, format!("http://{address}"))
}

/// Logs in at a server started elsewhere (the real binary): its token.
pub async fn login_to(http: &reqwest::Client, base: &str, email: &str, password: &str) -> String {
    let res = http
        .post(format!("{base}/api/v1/auth/tokens"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login");
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json::<Value>().await.expect("json")["token"]
        .as_str()
        .expect("token")
        .to_owned()
}

/// `GET {base}/api/v1{path}` with a token, at a server started elsewhere: status and JSON body
/// (null when it is none).
pub async fn get_from(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    path: &str,
) -> (StatusCode, Value) {
    let res = http
        .get(format!("{base}/api/v1{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The real binary, killed (`kill -9`) and reaped when dropped.
pub struct Server(pub std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port (bound, then released for the server about to use it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// mailcrab on loopback: a real SMTP server that hands every received message to the test.
pub struct MailServer {
    pub port: u16,
    pub handle: mailcrab::TestMailServerHandle,
}

impl MailServer {
    pub async fn start_on(port: u16) -> Self {
        let handle = mailcrab::development_mail_server([127, 0, 0, 1], port).await;
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self { port, handle }
    }

    pub async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    /// The next message received within `within`, as JSON (subject, headers, text, html, …)
    /// plus its raw bytes.
    pub async fn next(&mut self, within: Duration) -> Option<(Value, String)> {
        let msg = tokio::time::timeout(within, self.handle.rx.recv())
            .await
            .ok()?
            .ok()?;
        let raw = String::from_utf8_lossy(&msg.raw_bytes().unwrap_or_default()).into_owned();
        Some((serde_json::to_value(&msg).unwrap(), raw))
    }

    pub fn stop(self) {
        self.handle.token.cancel();
    }
}

/// Waits (up to 20 s, looking every 20 ms) until `probe` gives something, and returns it;
/// fails the test naming `what` otherwise.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "waited 20 s for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
