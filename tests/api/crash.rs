//! `kill -9` of the real binary under concurrent acknowledged writes: after every restart each
//! acknowledged registration, subscription and pull is there, and every stored record reads back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, serve_with_env};

/// What the server acknowledged (2xx) before it was killed.
#[derive(Default)]
struct Acked {
    /// (user id, email)
    users: Vec<(String, String)>,
    /// (user id, subscription id)
    subscriptions: Vec<(String, String)>,
    pulls: usize,
}

const WRITERS: usize = 12;
const CYCLES: usize = 4;
/// Load generators stop by themselves after this many requests each, so the test is bounded even
/// if the kill were late.
const MAX_REQUESTS: usize = 400;

async fn admin_token(http: &reqwest::Client, base: &str) -> String {
    let res = http
        .post(format!("{base}/api/v1/auth/tokens"))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

async fn get(http: &reqwest::Client, base: &str, token: &str, path: &str) -> (StatusCode, Value) {
    let res = http
        .get(format!("{base}/api/v1{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Checks everything acknowledged so far against the restarted server, and that every stored
/// user reads back whole (a partial record would fail to decode and answer 500).
async fn verify(http: &reqwest::Client, base: &str, token: &str, acked: &Acked, cycle: usize) {
    for (id, email) in &acked.users {
        let (status, user) = get(http, base, token, &format!("/users/{id}")).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "cycle {cycle}: acknowledged user {email} lost"
        );
        assert_eq!(user["email"], email.as_str());
    }
    for (user, sub) in &acked.subscriptions {
        let (status, subs) = get(http, base, token, &format!("/users/{user}/subscriptions")).await;
        assert_eq!(status, StatusCode::OK);
        let found = subs["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == sub.as_str());
        assert!(found, "cycle {cycle}: acknowledged subscription {sub} lost");
    }
    if acked.pulls > 0 {
        let (_, networks) = get(http, base, token, "/networks").await;
        let demo = networks["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == "demo")
            .cloned()
            .unwrap();
        assert!(
            !demo["last_pull_at"].is_null(),
            "cycle {cycle}: pull state lost"
        );
    }
    // Every stored user decodes: walk the whole list.
    let mut after: Option<String> = None;
    let mut listed = 0;
    loop {
        let path = match &after {
            Some(c) => format!("/users?limit=500&cursor={c}"),
            None => "/users?limit=500".to_owned(),
        };
        let (status, page) = get(http, base, token, &path).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "cycle {cycle}: listing users failed: {page}"
        );
        listed += page["items"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(c) => after = Some(c.to_owned()),
            None => break,
        }
    }
    assert!(
        listed > acked.users.len(),
        "the admin and every acknowledged user are listed"
    );
}

/// One load generator: registers users and subscribes each, recording what was acknowledged,
/// until the server dies.
async fn load(base: String, token: String, writer: usize, cycle: usize, acked: Arc<Mutex<Acked>>) {
    let http = reqwest::Client::new();
    for n in 0..MAX_REQUESTS {
        let email = format!("c{cycle}-w{writer}-n{n}@crash.test");
        let Ok(res) = http
            .post(format!("{base}/api/v1/users"))
            .json(&json!({"email": email, "password": "password-1", "timezone": "Europe/Paris"}))
            .send()
            .await
        else {
            return;
        };
        if res.status() != StatusCode::CREATED {
            return;
        }
        let Ok(user) = res.json::<Value>().await else {
            return;
        };
        let id = user["id"].as_str().unwrap().to_owned();
        acked.lock().unwrap().users.push((id.clone(), email));
        let Ok(res) = http
            .post(format!("{base}/api/v1/users/{id}/subscriptions"))
            .bearer_auth(&token)
            .json(&json!({"retailer": format!("Shop {writer}")}))
            .send()
            .await
        else {
            return;
        };
        if res.status() != StatusCode::CREATED {
            return;
        }
        let Ok(sub) = res.json::<Value>().await else {
            return;
        };
        let sub = sub["id"].as_str().unwrap().to_owned();
        acked.lock().unwrap().subscriptions.push((id, sub));
    }
}

async fn pulls(base: String, token: String, acked: Arc<Mutex<Acked>>) {
    let http = reqwest::Client::new();
    for _ in 0..MAX_REQUESTS {
        let Ok(res) = http
            .post(format!("{base}/api/v1/networks/demo/pull"))
            .bearer_auth(&token)
            .send()
            .await
        else {
            return;
        };
        if res.status() != StatusCode::OK {
            return;
        }
        acked.lock().unwrap().pulls += 1;
    }
}

#[actix_web::test]
async fn acknowledged_writes_survive_kill_9_of_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data");
    let env = [
        ("VOUCHERD__RATE_LIMIT__PER_SECOND", "100000"),
        ("VOUCHERD__RATE_LIMIT__BURST", "100000"),
    ];
    let http = reqwest::Client::new();
    let acked = Arc::new(Mutex::new(Acked::default()));
    for cycle in 0..CYCLES {
        let (mut child, base) = serve_with_env(&store, &env);
        let token = admin_token(&http, &base).await;
        {
            let snapshot = std::mem::take(&mut *acked.lock().unwrap());
            verify(&http, &base, &token, &snapshot, cycle).await;
            *acked.lock().unwrap() = snapshot;
        }
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            tasks.push(tokio::spawn(load(
                base.clone(),
                token.clone(),
                w,
                cycle,
                acked.clone(),
            )));
        }
        tasks.push(tokio::spawn(pulls(
            base.clone(),
            token.clone(),
            acked.clone(),
        )));
        // A random moment while the writes are under way.
        let before = acked.lock().unwrap().users.len();
        tokio::time::sleep(Duration::from_millis(rand::random_range(300..1200))).await;
        child.kill().unwrap(); // SIGKILL: no shutdown, no flush
        child.wait().unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        let after = acked.lock().unwrap().users.len();
        assert!(
            after > before,
            "cycle {cycle}: no write was acknowledged before the kill"
        );
    }
    let (mut child, base) = serve_with_env(&store, &env);
    let token = admin_token(&http, &base).await;
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    verify(&http, &base, &token, &acked, CYCLES).await;
    eprintln!(
        "acknowledged before the kills: {} users, {} subscriptions, {} pulls",
        acked.users.len(),
        acked.subscriptions.len(),
        acked.pulls
    );
    assert!(acked.subscriptions.len() > CYCLES && acked.pulls > 0);
    child.kill().unwrap();
    child.wait().unwrap();
}
