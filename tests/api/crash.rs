//! `kill -9` of the real binary under concurrent acknowledged writes: after every restart each
//! acknowledged registration, subscription and pull is there, and every stored record reads back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, Server, get_from as get, serve_with_env};

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
            .bearer_auth(&token)
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
        ("VOUCHERD__RATE_LIMIT__LOGIN_PER_MINUTE", "100000"),
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

const BUYERS: usize = 8;
/// Per customer (the most a campaign allows; checked across kills), above what a paced buyer and
/// the distributions reach in the test, so no cycle runs dry.
const LIMIT: usize = 1000;
/// Larger than all cycles' load, so every cycle is killed while claims are under way.
const POOL: usize = 20_000;

/// One buyer: claims and orders of one, alternately, every few milliseconds, recording every
/// acknowledged code, until the server dies.
async fn buy(base: String, campaign: String, token: String, acked: Arc<Mutex<Vec<String>>>) {
    let http = reqwest::Client::new();
    for n in 0..MAX_REQUESTS {
        let res = if n % 2 == 0 {
            http.post(format!("{base}/api/v1/campaigns/{campaign}/claims"))
                .bearer_auth(&token)
                .send()
                .await
        } else {
            http.post(format!("{base}/api/v1/orders"))
                .bearer_auth(&token)
                .json(&json!({"campaign_id": campaign, "quantity": 1}))
                .send()
                .await
        };
        let Ok(res) = res else { return };
        if res.status() != StatusCode::CREATED {
            return;
        }
        let Ok(body) = res.json::<Value>().await else {
            return;
        };
        {
            let mut acked = acked.lock().unwrap();
            match body["codes"].as_array() {
                Some(codes) => acked.extend(codes.iter().map(|c| c.as_str().unwrap().to_owned())),
                None => acked.push(body["code"].as_str().unwrap().to_owned()),
            }
        }
        // Paced, so no buyer reaches the limit across the cycles (kills come within 450 ms).
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

/// Every acknowledged code is in its buyer's wallet; no code is held twice; no buyer holds more
/// than the limit; the campaign's claimed count is what the wallets hold.
async fn verify_codes(
    http: &reqwest::Client,
    base: &str,
    admin: &str,
    campaign: &str,
    buyers: &[(String, Arc<Mutex<Vec<String>>>)],
    cycle: usize,
) {
    let mut all = std::collections::HashSet::new();
    for (token, acked) in buyers {
        let (status, wallet) = get(http, base, token, "/wallet").await;
        assert_eq!(status, StatusCode::OK);
        let held: Vec<String> = wallet["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["code"].as_str().unwrap().to_owned())
            .collect();
        assert!(
            held.len() <= LIMIT,
            "cycle {cycle}: {} codes over the limit",
            held.len()
        );
        for code in acked.lock().unwrap().iter() {
            assert!(
                held.contains(code),
                "cycle {cycle}: acknowledged code {code} lost"
            );
        }
        for code in held {
            assert!(all.insert(code.clone()), "cycle {cycle}: {code} held twice");
        }
    }
    let (_, c) = get(http, base, admin, &format!("/campaigns/{campaign}")).await;
    assert_eq!(
        c["claimed"].as_u64().unwrap() as usize,
        all.len(),
        "cycle {cycle}"
    );
}

/// Kills the server when the test ends, passed or not (a server left running would hold the test
/// runner's output open).
#[actix_web::test]
async fn acknowledged_claims_orders_and_distributions_survive_kill_9_and_the_pool_holds() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data");
    let env = [
        ("VOUCHERD__RATE_LIMIT__PER_SECOND", "100000"),
        ("VOUCHERD__RATE_LIMIT__BURST", "100000"),
        ("VOUCHERD__RATE_LIMIT__LOGIN_PER_MINUTE", "100000"),
    ];
    let http = reqwest::Client::new();
    let (child, base) = serve_with_env(&store, &env);
    let mut server = Server(child);
    let admin = admin_token(&http, &base).await;
    let now = chrono::Utc::now();
    let res = http
        .post(format!("{base}/api/v1/campaigns"))
        .bearer_auth(&admin)
        .json(
            &json!({"name": "drop", "kind": "flash_sale", "pool_size": POOL,
            "per_customer_limit": LIMIT, "starts_at": now.to_rfc3339(),
            "ends_at": (now + chrono::Duration::days(1)).to_rfc3339()}),
        )
        .send()
        .await
        .unwrap();
    let campaign = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = http
        .post(format!("{base}/api/v1/campaigns/{campaign}/codes"))
        .bearer_auth(&admin)
        .json(&json!({"count": POOL}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let mut buyers = Vec::new();
    let mut ids = Vec::new();
    for i in 0..BUYERS {
        let email = format!("buyer{i}@crash.test");
        let res = http
            .post(format!("{base}/api/v1/users"))
            .bearer_auth(&admin)
            .json(
                &json!({"email": email, "password": "password-1", "timezone": "UTC",
                "marketing_emails": true}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        ids.push(res.json::<Value>().await.unwrap()["id"].clone());
        let res = http
            .post(format!("{base}/api/v1/auth/tokens"))
            .json(&json!({"email": email, "password": "password-1"}))
            .send()
            .await
            .unwrap();
        let token = res.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned();
        buyers.push((token, Arc::new(Mutex::new(Vec::new()))));
    }
    // Distributions to every buyer run beside the claims; each 202 is recorded.
    let distributions = Arc::new(Mutex::new(Vec::new()));
    let load = Load {
        campaign: campaign.clone(),
        buyers: buyers.clone(),
        ids: Value::Array(ids),
        distributions: distributions.clone(),
    };
    for cycle in 0..3 {
        if cycle > 0 {
            let (c, b) = serve_with_env(&store, &env);
            server = Server(c);
            let admin = admin_token(&http, &b).await;
            verify_codes(&http, &b, &admin, &campaign, &buyers, cycle).await;
            run_cycle(&mut server.0, &b, &admin, &load).await;
        } else {
            run_cycle(&mut server.0, &base, &admin, &load).await;
        }
    }
    let (child, base) = serve_with_env(&store, &env);
    let _server = Server(child);
    let admin = admin_token(&http, &base).await;
    // Every accepted distribution is resumed and completes; its codes are in the wallets below.
    let accepted = distributions.lock().unwrap().clone();
    assert!(!accepted.is_empty());
    for location in &accepted {
        let mut done = Value::Null;
        for _ in 0..200 {
            let (status, d) = get(&http, &base, &admin, location).await;
            assert_eq!(status, StatusCode::OK, "{location}");
            done = d;
            if done["status"] == "completed" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!(done["done"], BUYERS, "{done}");
        assert_eq!(
            done["assigned"], BUYERS,
            "under the limit, everyone got one: {done}"
        );
    }
    verify_codes(&http, &base, &admin, &campaign, &buyers, 3).await;
    let total: usize = buyers.iter().map(|(_, a)| a.lock().unwrap().len()).sum();
    eprintln!("acknowledged before the kills: {total} codes");
    assert!(
        total > 0 && total < POOL,
        "every cycle was killed under load"
    );
}

/// What one cycle's load needs.
struct Load {
    campaign: String,
    buyers: Vec<(String, Arc<Mutex<Vec<String>>>)>,
    /// The buyers' user ids, as a JSON array.
    ids: Value,
    /// `Location`s of the distributions the server accepted.
    distributions: Arc<Mutex<Vec<String>>>,
}

/// One distribution to every buyer after another, recording each accepted, until the server dies.
async fn distribute(
    base: String,
    admin: String,
    campaign: String,
    ids: Value,
    acked: Arc<Mutex<Vec<String>>>,
) {
    let http = reqwest::Client::new();
    for _ in 0..MAX_REQUESTS {
        let res = http
            .post(format!("{base}/api/v1/campaigns/{campaign}/distributions"))
            .bearer_auth(&admin)
            .json(&json!({"customers": ids, "channel": "email"}))
            .send()
            .await;
        let Ok(res) = res else { return };
        if res.status() != StatusCode::ACCEPTED {
            return;
        }
        let location = res.headers()["location"].to_str().unwrap();
        acked
            .lock()
            .unwrap()
            .push(location.trim_start_matches("/api/v1").to_owned());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn run_cycle(child: &mut std::process::Child, base: &str, admin: &str, load: &Load) {
    let buyers = &load.buyers;
    let mut tasks: Vec<_> = buyers
        .iter()
        .map(|(token, acked)| {
            tokio::spawn(buy(
                base.to_owned(),
                load.campaign.clone(),
                token.clone(),
                acked.clone(),
            ))
        })
        .collect();
    tasks.push(tokio::spawn(distribute(
        base.to_owned(),
        admin.to_owned(),
        load.campaign.clone(),
        load.ids.clone(),
        load.distributions.clone(),
    )));
    // Let the load start (claims being acknowledged: on a busy machine that can take a while),
    // then kill at a random moment while it runs.
    let acknowledged = || -> usize { buyers.iter().map(|(_, a)| a.lock().unwrap().len()).sum() };
    let start = acknowledged();
    for _ in 0..400 {
        if acknowledged() > start {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let before = acknowledged();
    tokio::time::sleep(Duration::from_millis(rand::random_range(50..400))).await;
    child.kill().unwrap(); // SIGKILL: no shutdown, no flush
    child.wait().unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let after: usize = buyers.iter().map(|(_, a)| a.lock().unwrap().len()).sum();
    assert!(
        after > before,
        "claims were acknowledged right up to the kill"
    );
}

/// The usage limit of the hot shared code in the crash test: more than the killed cycles can
/// redeem whatever the machine's speed (3 cycles × 16 tills × `PER_CYCLE`), so the code is still
/// open when the last run takes it to the limit (16 × `TO_THE_LIMIT` ≥ the limit).
const USES: usize = 10_000;
const REDEEMERS: usize = 16;
const PER_CYCLE: usize = 150;
const TO_THE_LIMIT: usize = 2_000;

/// One till: redeems the shared code for new buyers back to back (at most `max` times),
/// recording every acknowledged redemption id, until the server dies or the limit answers.
async fn redeem_shared(
    base: String,
    admin: String,
    till: usize,
    max: usize,
    acked: Arc<Mutex<Vec<String>>>,
) {
    let http = reqwest::Client::new();
    for n in 0..max {
        let res = http
            .post(format!("{base}/api/v1/redemptions"))
            .bearer_auth(&admin)
            .json(&json!({"code": "CRASH-SHARED", "customer_ref": format!("t{till}-{n}-{}", rand::random::<u32>()),
                "order": {"amount_cents": 2000, "currency": "EUR"}}))
            .send()
            .await;
        let Ok(res) = res else { return };
        if res.status() != StatusCode::CREATED {
            return;
        }
        let Ok(body) = res.json::<Value>().await else {
            return;
        };
        acked
            .lock()
            .unwrap()
            .push(body["id"].as_str().unwrap().to_owned());
    }
}

/// Every standing redemption of the campaign, from the list (paged, newest first).
async fn standing(http: &reqwest::Client, base: &str, admin: &str, campaign: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = get(
            http,
            base,
            admin,
            &format!("/redemptions?campaign={campaign}&limit=500{cursor}"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for r in page["items"].as_array().unwrap() {
            assert!(r["rolled_back_at"].is_null());
            out.push(r["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

#[actix_web::test]
async fn a_hot_shared_code_never_exceeds_its_limit_and_keeps_every_acknowledged_use_across_kill_9()
{
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("data");
    let env = [
        ("VOUCHERD__RATE_LIMIT__PER_SECOND", "100000"),
        ("VOUCHERD__RATE_LIMIT__BURST", "100000"),
        ("VOUCHERD__RATE_LIMIT__LOGIN_PER_MINUTE", "100000"),
    ];
    let http = reqwest::Client::new();
    let (child, mut base) = serve_with_env(&store, &env);
    let mut server = Server(child);
    let mut admin = admin_token(&http, &base).await;
    let now = chrono::Utc::now();
    let res = http
        .post(format!("{base}/api/v1/campaigns"))
        .bearer_auth(&admin)
        .json(&json!({"name": "hot", "kind": "discount", "code_mode": "shared",
            "discount": {"percent": 10}, "pool_size": 1, "per_customer_limit": 1,
            "starts_at": now.to_rfc3339(), "ends_at": (now + chrono::Duration::days(1)).to_rfc3339()}))
        .send()
        .await
        .unwrap();
    let campaign = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = http
        .post(format!("{base}/api/v1/campaigns/{campaign}/codes"))
        .bearer_auth(&admin)
        .json(&json!({"codes": ["CRASH-SHARED"], "usage_limit": USES}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let acked = Arc::new(Mutex::new(Vec::new()));
    for cycle in 0..3 {
        if cycle > 0 {
            let (c, b) = serve_with_env(&store, &env);
            server = Server(c);
            base = b;
            admin = admin_token(&http, &base).await;
            let stood = standing(&http, &base, &admin, &campaign).await;
            let known: std::collections::HashSet<&String> = stood.iter().collect();
            for id in acked.lock().unwrap().iter() {
                assert!(
                    known.contains(id),
                    "cycle {cycle}: acknowledged {id} is gone"
                );
            }
            assert!(stood.len() <= USES, "{} uses of {USES}", stood.len());
        }
        let tasks: Vec<_> = (0..REDEEMERS)
            .map(|till| {
                tokio::spawn(redeem_shared(
                    base.clone(),
                    admin.clone(),
                    till,
                    PER_CYCLE,
                    acked.clone(),
                ))
            })
            .collect();
        let count = || acked.lock().unwrap().len();
        let start = count();
        for _ in 0..400 {
            if count() > start {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        tokio::time::sleep(Duration::from_millis(rand::random_range(50..300))).await;
        server.0.kill().unwrap(); // SIGKILL: no shutdown, no flush
        server.0.wait().unwrap();
        for t in tasks {
            t.await.unwrap();
        }
    }
    // A last run takes the code to its limit: exactly the limit stands, every acknowledged use
    // among them, and the next one is refused.
    let (c, b) = serve_with_env(&store, &env);
    let _server = Server(c);
    let admin = admin_token(&http, &b).await;
    let before = acked.lock().unwrap().len();
    assert!(
        before > 0 && before < USES,
        "{before} acknowledged before the kills"
    );
    let tasks: Vec<_> = (0..REDEEMERS)
        .map(|till| {
            tokio::spawn(redeem_shared(
                b.clone(),
                admin.clone(),
                till + 100,
                TO_THE_LIMIT,
                acked.clone(),
            ))
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let stood = standing(&http, &b, &admin, &campaign).await;
    assert_eq!(stood.len(), USES, "exactly the limit, never more");
    let known: std::collections::HashSet<&String> = stood.iter().collect();
    for id in acked.lock().unwrap().iter() {
        assert!(known.contains(id), "acknowledged {id} is gone");
    }
    let res = http
        .post(format!("{b}/api/v1/redemptions"))
        .bearer_auth(&admin)
        .json(&json!({"code": "CRASH-SHARED", "customer_ref": "one-more",
            "order": {"amount_cents": 2000, "currency": "EUR"}}))
        .send()
        .await
        .unwrap();
    crate::helpers::assert_problem(res, 409, "usage_limit_reached").await;
}
