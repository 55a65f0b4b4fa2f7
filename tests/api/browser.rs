//! The browser harness: a real headless Chromium driven over the Chrome DevTools Protocol.
//!
//! Chromium is found at `$VOUCHERD_CHROMIUM`, or as `chromium` / `chromium-browser` /
//! `google-chrome` in /usr/bin (Debian: `apt install chromium`; `.ci/run` installs it). Without
//! one a browser test says so and passes, unless `VOUCHERD_BROWSER_TESTS=require` (as in CI),
//! when a missing browser fails it.

use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64ct::Encoding as _;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// The browser to drive, if this machine has one.
pub fn chromium() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("VOUCHERD_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .map(|name| PathBuf::from("/usr/bin").join(name))
        .find(|p| p.exists())
}

/// A headless Chromium, killed when dropped.
pub struct Browser {
    child: Child,
    /// Where it serves the DevTools protocol: `http://127.0.0.1:PORT`.
    http: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub fn launch(binary: &PathBuf) -> Self {
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
    pub async fn page(&self) -> Page {
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
pub struct Page {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_id: u64,
}

impl Page {
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
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
    pub async fn eval(&mut self, expression: &str) -> Value {
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
    pub async fn wait_for(&mut self, what: &str, expression: &str) {
        // Up to 30 s: the tests share two cores with the browser. While a navigation replaces
        // the document, what the expression reads may not exist yet: that is "not yet".
        let guarded = format!(
            "(() => {{ try {{ return ({expression}) === true; }} catch (_) {{ return false; }} }})()"
        );
        for _ in 0..600 {
            if self.eval(&guarded).await == json!(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let message = self
            .eval("[document.getElementById('message')?.textContent, document.getElementById('sign-in-error')?.textContent, JSON.stringify(window.__errors)].join(' | ')")
            .await;
        panic!("{what} did not happen; the page says: {message}");
    }
}

/// The browser, or `None` (the test then passes, saying why) when this machine has none and
/// browser tests are not required.
pub fn chromium_or_skip() -> Option<PathBuf> {
    let found = chromium();
    if found.is_none() {
        assert_ne!(
            std::env::var("VOUCHERD_BROWSER_TESTS").as_deref(),
            Ok("require"),
            "no chromium found (apt install chromium, or set VOUCHERD_CHROMIUM)"
        );
        eprintln!("skipped: no chromium on this machine (apt install chromium)");
    }
    found
}

/// Records, from the first script on, what the policy blocks and what the page reports as an
/// error (console.error, uncaught errors and rejections): `assert_clean` reads them.
const RECORDER: &str = "window.__violations = []; window.__errors = [];
    document.addEventListener('securitypolicyviolation', e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
    const consoleError = console.error.bind(console);
    console.error = (...args) => { window.__errors.push(args.map(String).join(' ')); consoleError(...args); };
    window.addEventListener('error', e => window.__errors.push('error: ' + e.message));
    window.addEventListener('unhandledrejection', e => window.__errors.push('rejection: ' + e.reason));";

impl Page {
    /// Opens `url` with the recorders in place, once the document has loaded.
    pub async fn open(&mut self, url: &str) {
        self.call("Page.enable", json!({})).await;
        self.call(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": RECORDER }),
        )
        .await;
        self.call("Page.navigate", json!({ "url": url })).await;
        self.wait_for(
            "the page",
            &format!(
                "document.readyState === 'complete' && location.href === {}",
                json!(url)
            ),
        )
        .await;
    }

    /// Fills the console's sign-in form and sends it.
    pub async fn sign_in(&mut self, email: &str, password: &str) {
        self.eval(&format!(
            "document.getElementById('email').value = {};
             document.getElementById('password').value = {};
             document.getElementById('sign-in-button').click(); true",
            json!(email),
            json!(password)
        ))
        .await;
    }

    /// Sets an input's value as typing would (an `input` and a `change` event).
    pub async fn fill(&mut self, id: &str, value: &str) {
        self.eval(&format!(
            "(() => {{ const i = document.getElementById({}); i.value = {};
              i.dispatchEvent(new Event('input', {{bubbles: true}}));
              i.dispatchEvent(new Event('change', {{bubbles: true}})); return true; }})()",
            json!(id),
            json!(value)
        ))
        .await;
    }

    pub async fn click(&mut self, selector: &str) {
        self.eval(&format!(
            "document.querySelector({}).click(); true",
            json!(selector)
        ))
        .await;
    }

    pub async fn text(&mut self, selector: &str) -> String {
        self.eval(&format!(
            "document.querySelector({})?.textContent ?? ''",
            json!(selector)
        ))
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Chooses `path` in a file input, as a person picking it in the file dialog would.
    pub async fn choose_file(&mut self, selector: &str, path: &std::path::Path) {
        let doc = self.call("DOM.getDocument", json!({})).await;
        let root = doc["root"]["nodeId"].clone();
        let node = self
            .call(
                "DOM.querySelector",
                json!({ "nodeId": root, "selector": selector }),
            )
            .await;
        self.call(
            "DOM.setFileInputFiles",
            json!({ "nodeId": node["nodeId"], "files": [path.display().to_string()] }),
        )
        .await;
    }

    /// A full-page PNG, kept as `name`.png in the tests' temporary directory and, when
    /// `VOUCHERD_SCREENSHOTS` names a directory (`docs/screenshots` to refresh the docs), there.
    pub async fn screenshot(&mut self, name: &str) {
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .await;
        let png = base64ct::Base64::decode_vec(shot["data"].as_str().unwrap()).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.png"));
        std::fs::write(&path, &png).unwrap();
        if let Ok(dir) = std::env::var("VOUCHERD_SCREENSHOTS") {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(PathBuf::from(dir).join(format!("{name}.png")), &png).unwrap();
        }
        eprintln!("screenshot: {}", path.display());
    }

    /// Nothing was blocked by the Content-Security-Policy and nothing reported an error.
    pub async fn assert_clean(&mut self) {
        assert_eq!(
            self.eval("window.__violations").await,
            json!([]),
            "the Content-Security-Policy blocked something"
        );
        assert_eq!(
            self.eval("window.__errors").await,
            json!([]),
            "the page reported errors"
        );
    }
}

/// axe-core's script, from `$VOUCHERD_AXE` or `target/axe/node_modules/axe-core/axe.min.js`
/// (`.ci/run` installs it there from npm). Without it the accessibility check says so and
/// passes, unless `VOUCHERD_BROWSER_TESTS=require`.
fn axe_source() -> Option<String> {
    let path = std::env::var("VOUCHERD_AXE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("target/axe/node_modules/axe-core/axe.min.js")
        });
    match std::fs::read_to_string(&path) {
        Ok(source) => Some(source),
        Err(e) => {
            assert_ne!(
                std::env::var("VOUCHERD_BROWSER_TESTS").as_deref(),
                Ok("require"),
                "axe-core is missing at {} ({e}): npm install --prefix target/axe axe-core@4",
                path.display()
            );
            eprintln!(
                "accessibility not checked: no axe-core at {}",
                path.display()
            );
            None
        }
    }
}

impl Page {
    /// axe-core finds no serious or critical accessibility violation in the page as it is now
    /// (`what` names it in a failure).
    pub async fn assert_accessible(&mut self, what: &str) {
        if let Some(found) = self.accessibility_violations().await {
            assert_eq!(found, json!([]), "{what}: accessibility violations");
        }
    }

    /// The serious and critical violations axe-core finds, one line each (`None` without axe).
    pub async fn accessibility_violations(&mut self) -> Option<Value> {
        let axe = axe_source()?;
        if self.eval("typeof window.axe === 'object'").await != json!(true) {
            self.eval(&format!("{axe}\n;true")).await;
        }
        let found = self
            .eval(
                "axe.run(document, { resultTypes: ['violations'] }).then(r => r.violations
                   .filter(v => v.impact === 'serious' || v.impact === 'critical')
                   .map(v => v.impact + ' ' + v.id + ': ' + v.help + ' at ' +
                        v.nodes.map(n => n.target.join(' ')).join(', ')))",
            )
            .await;
        Some(found)
    }
}
