//! What survives a restart, backups through the real binary, and graceful shutdown on SIGTERM.

use std::process::{Child, Command};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{serve, spawn_app, spawn_with, test_settings, voucherd};

#[actix_web::test]
async fn users_and_tokens_survive_a_restart() {
    let app = spawn_app().await;
    let (id, token) = app.customer("stays@x.io").await;
    let dir = app.stop().await;

    let settings = test_settings(dir.path().join("data"));
    let app = spawn_with(settings, dir).await;
    let me: Value = app.me(&token).await.json().await.unwrap();
    assert_eq!(me["id"], id.as_str());
    app.login("stays@x.io", "customer-password").await;
    // The bootstrap admin was not created twice.
    let admins = app
        .all_users()
        .await
        .into_iter()
        .filter(|u| u["role"] == "admin")
        .count();
    assert_eq!(admins, 1);
}

fn sigterm_and_wait(mut child: Child) -> std::process::ExitStatus {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    for _ in 0..300 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("voucherd did not stop within 30 s of SIGTERM");
}

/// Runs `voucherd --store-path STORE COMMAND FILE` (export or import) to completion; returns
/// (success, stderr).
fn store_command(store: &std::path::Path, command: &str, file: &std::path::Path) -> (bool, String) {
    let out = voucherd()
        .arg("--store-path")
        .arg(store)
        .arg(command)
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The admin makes a customer at the server at `base`: the answer's status.
async fn register(base: &str, email: &str) -> StatusCode {
    let http = reqwest::Client::new();
    let admin = crate::helpers::login_to(
        &http,
        base,
        crate::helpers::ADMIN_EMAIL,
        crate::helpers::ADMIN_PASSWORD,
    )
    .await;
    http.post(format!("{base}/api/v1/users"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"email": email, "password": "password-1", "timezone": "UTC"}))
        .send()
        .await
        .unwrap()
        .status()
}

async fn login_status(base: &str, email: &str) -> StatusCode {
    reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/tokens"))
        .json(&serde_json::json!({"email": email, "password": "password-1"}))
        .send()
        .await
        .unwrap()
        .status()
}

#[actix_web::test]
async fn the_binary_stops_gracefully_on_sigterm_and_exports_and_imports() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data");
    let (child, base) = serve(&store);
    assert_eq!(register(&base, "kept@x.io").await, StatusCode::CREATED);
    let status = sigterm_and_wait(child);
    assert!(status.success(), "clean exit after SIGTERM: {status}");

    // Export the stopped store, import into an empty one, serve that: the user is there.
    let backup = dir.path().join("backup.jsonl");
    let (ok, stderr) = store_command(&store, "export", &backup);
    assert!(ok, "{stderr}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&backup).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the backup is readable by its owner only"
        );
    }
    let restored = dir.path().join("restored");
    let (ok, stderr) = store_command(&restored, "import", &backup);
    assert!(ok, "{stderr}");
    // Importing again is refused: the store is no longer empty.
    let (ok, stderr) = store_command(&restored, "import", &backup);
    assert!(!ok && stderr.contains("not empty"), "{stderr}");
    // A truncated backup is refused and restores nothing.
    let text = std::fs::read_to_string(&backup).unwrap();
    let truncated = dir.path().join("truncated.jsonl");
    std::fs::write(
        &truncated,
        text.lines().take(3).collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    let empty = dir.path().join("empty");
    let (ok, stderr) = store_command(&empty, "import", &truncated);
    assert!(!ok && stderr.contains("truncated"), "{stderr}");
    // Nothing half-written is left: no store, no staging directory beside it.
    assert!(!empty.exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".import-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let (child, base) = serve(&restored);
    assert_eq!(login_status(&base, "kept@x.io").await, StatusCode::CREATED);
    assert_eq!(register(&base, "kept@x.io").await, StatusCode::CONFLICT);
    assert!(sigterm_and_wait(child).success());
}

#[test]
fn check_config_prints_settings_and_names_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[auth]\nsecret = \"0123456789abcdef0123456789abcdef-secret\"\n",
    )
    .unwrap();
    let out = voucherd()
        .arg("--config")
        .arg(&good)
        .arg("check-config")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("bind = \"127.0.0.1:8080\""), "{text}");
    assert!(
        text.contains("********") && !text.contains("0123456789abcdef"),
        "{text}"
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[rate_limit]\nper_secnd = 5\n").unwrap();
    let out = voucherd()
        .arg("--config")
        .arg(&bad)
        .arg("check-config")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("per_secnd"));

    // The bootstrap admin's password from the environment follows the rules of any password.
    let out = voucherd()
        .env("VOUCHERD_ADMIN_PASSWORD", "short")
        .arg("--config")
        .arg(&good)
        .arg("check-config")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("VOUCHERD_ADMIN_PASSWORD") && err.contains("8 to 128"),
        "{err}"
    );

    let out = voucherd()
        .env("VOUCHERD__HTTP__WORKERS", "0")
        .arg("--config")
        .arg(&good)
        .arg("check-config")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("http.workers"));
}

#[actix_web::test]
async fn the_binary_serves_the_bundled_demo_feed_from_an_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data");
    let (child, base) = serve(&store);
    // The embedded default config's demo network is compiled in and pulled at start.
    let mut listed = 0;
    for _ in 0..100 {
        let page: serde_json::Value = reqwest::get(format!("{base}/api/v1/vouchers?limit=50"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        listed = page["items"].as_array().map_or(0, Vec::len);
        if listed > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(listed, 12, "the demo feed's vouchers are served");
    let active: serde_json::Value =
        reqwest::get(format!("{base}/api/v1/vouchers?limit=50&active=true"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(
        active["items"].as_array().map_or(0, Vec::len),
        12,
        "every demo voucher is active on the day it is served"
    );
    let entries: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        entries,
        ["data"],
        "nothing but the store was needed or written"
    );
    assert!(sigterm_and_wait(child).success());
}

/// Started with its log going to a pipe (a journal, a file), on an empty directory: the log is
/// plain text, and a new store says nothing about migrations.
#[actix_web::test]
async fn a_first_start_logs_plain_text_and_no_migrations() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = voucherd()
        .current_dir(dir.path())
        .args(["--bind", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let done = line.contains("voucherd listening");
        seen.push(line);
        if done {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        seen.iter().any(|l| l.contains("voucherd listening")),
        "{seen:#?}"
    );
    assert!(
        seen.iter().all(|l| !l.contains('\u{1b}')),
        "no colour codes in a piped log: {seen:#?}"
    );
    assert!(
        seen.iter().all(|l| !l.contains("migration")),
        "a new store migrates nothing: {seen:#?}"
    );
}

/// `export` next to a running server says in one line what to do; `import` of a file that is
/// not there names it.
#[actix_web::test]
async fn backup_commands_say_what_is_wrong_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data");
    let (mut child, _) = serve(&store);
    let out = voucherd()
        .args(["export"])
        .arg(dir.path().join("backup.jsonl"))
        .arg("--store-path")
        .arg(&store)
        .output()
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(said.contains("in use by a running voucherd"), "{said}");
    let missing = dir.path().join("no-such-backup.jsonl");
    let out = voucherd()
        .arg("import")
        .arg(&missing)
        .arg("--store-path")
        .arg(dir.path().join("restored"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains(&missing.display().to_string()), "{said}");
}

/// Reads the banner a first start prints: (console URL, admin email, password).
fn first_start_banner(child: &mut Child) -> (String, String, String) {
    use std::io::{BufRead, BufReader};
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut field = |name: &str| loop {
        let line = lines.next().expect("the banner").unwrap();
        if let Some(rest) = line.trim_start().strip_prefix(name) {
            return rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let console = field("console");
    let admin = field("admin");
    let password = field("password");
    std::thread::spawn(move || for _ in lines {});
    (console, admin, password)
}

/// A first start binds its port before it creates anything, prints one banner (the console on
/// the port it bound, the admin, the generated password once); the password can be reset
/// offline, after which only the new one signs in.
#[actix_web::test]
async fn a_first_start_shows_where_to_go_and_a_lost_password_can_be_reset() {
    let dir = tempfile::tempdir().unwrap();
    // A port in use: the start fails and leaves nothing behind.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = voucherd()
        .env_remove("VOUCHERD_ADMIN_PASSWORD")
        .current_dir(dir.path())
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        !dir.path().join("data").exists(),
        "nothing is created before the port is bound"
    );
    drop(taken);
    let start = || {
        voucherd()
            .env_remove("VOUCHERD_ADMIN_PASSWORD")
            .current_dir(dir.path())
            .args(["--bind", "127.0.0.1:0"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut child = start();
    let (console, admin, password) = first_start_banner(&mut child);
    assert_eq!(admin, crate::helpers::ADMIN_EMAIL);
    let base = console.strip_suffix("/admin").unwrap().to_owned();
    assert_ne!(base, "http://127.0.0.1:8080", "links follow the bound port");
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http.get(format!("{base}/readyz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let login = |password: String| {
        let http = http.clone();
        let base = base.clone();
        async move {
            http.post(format!("{base}/api/v1/auth/tokens"))
                .json(&serde_json::json!({"email": crate::helpers::ADMIN_EMAIL, "password": password}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(login(password.clone()).await, StatusCode::CREATED);
    child.kill().unwrap();
    child.wait().unwrap();
    // Reset offline: a new password is printed; the old one no longer signs in.
    let out = voucherd()
        .env_remove("VOUCHERD_ADMIN_PASSWORD")
        .current_dir(dir.path())
        .args(["admin", "reset-password", crate::helpers::ADMIN_EMAIL])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    let new_password = said.split_whitespace().last().unwrap().to_owned();
    assert_ne!(new_password, password);
    let mut child = voucherd()
        .current_dir(dir.path())
        .args(["--bind", base.trim_start_matches("http://")])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..100 {
        if http.get(format!("{base}/readyz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up);
    assert_eq!(login(password).await, StatusCode::UNAUTHORIZED);
    assert_eq!(login(new_password).await, StatusCode::CREATED);
    child.kill().unwrap();
    child.wait().unwrap();
}
