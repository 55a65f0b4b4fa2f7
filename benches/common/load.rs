//! Load phases for the benches that drive the real server: every connection sends requests back
//! to back for a number of seconds; answers with the expected status are counted with their
//! latency.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// Builds the request a connection sends (connection number, request number).
pub type MakeRequest =
    Arc<dyn Fn(&reqwest::Client, usize, usize) -> reqwest::RequestBuilder + Send + Sync>;

/// What one phase measured.
pub struct Phase {
    pub ok: usize,
    pub other: usize,
    pub elapsed: Duration,
    /// When the last counted answer came (claims: the pool may run out before the phase ends).
    pub last_ok: Duration,
    pub latencies_us: Vec<u64>,
}

impl Phase {
    /// Counted answers per second, over the time they took (up to the last one).
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.last_ok.max(Duration::from_millis(1)).as_secs_f64()
    }

    pub fn percentile_ms(&mut self, p: f64) -> f64 {
        self.latencies_us.sort_unstable();
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }
}

/// Every connection sends requests back to back for `seconds`; `expect` is the status that counts.
pub async fn phase(
    clients: &[reqwest::Client],
    seconds: u64,
    expect: u16,
    stop_on: Option<u16>,
    request: MakeRequest,
) -> Phase {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .iter()
        .cloned()
        .enumerate()
        .map(|(conn, client)| {
            let request = request.clone();
            tokio::spawn(async move {
                let (mut ok, mut other, mut lat) = (0usize, 0usize, Vec::new());
                let mut last_ok = Duration::ZERO;
                let mut i = 0;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let res = request(&client, conn, i).send().await;
                    i += 1;
                    match res {
                        Ok(r) if r.status().as_u16() == expect => {
                            let _ = r.bytes().await;
                            ok += 1;
                            lat.push(t.elapsed().as_micros() as u64);
                            last_ok = started.elapsed();
                        }
                        Ok(r) => {
                            let status = r.status().as_u16();
                            let _ = r.bytes().await;
                            other += 1;
                            // The pool ran out: this connection's part of the phase is over.
                            if Some(status) == stop_on {
                                break;
                            }
                        }
                        Err(_) => other += 1,
                    }
                }
                (ok, other, lat, last_ok)
            })
        })
        .collect();
    let mut out = Phase {
        ok: 0,
        other: 0,
        elapsed: Duration::ZERO,
        last_ok: Duration::ZERO,
        latencies_us: Vec::new(),
    };
    for t in tasks {
        let (ok, other, lat, last_ok) = t.await.unwrap();
        out.ok += ok;
        out.other += other;
        out.latencies_us.extend(lat);
        out.last_ok = out.last_ok.max(last_ok);
    }
    out.elapsed = started.elapsed();
    out
}

/// One client (and so one kept-alive connection) per concurrent sender, for every phase.
pub fn clients(n: usize) -> Vec<reqwest::Client> {
    (0..n)
        .map(|_| {
            reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .tcp_nodelay(true)
                .build()
                .unwrap()
        })
        .collect()
}

/// CPU used so far: the server's (user, system) and this process's, in ms.
pub type CpuAt = ((f64, f64), f64);

/// Reads the CPU the server and the bench use, and prints it per answer of a phase.
pub struct Cpu {
    server: String,
}

impl Cpu {
    pub fn new(server_pid: &str) -> Self {
        Self {
            server: server_pid.to_owned(),
        }
    }

    pub fn now(&self) -> CpuAt {
        (
            crate::common::cpu_split_ms(&self.server),
            crate::common::cpu_ms("self"),
        )
    }

    /// Prints the CPU used since `before` per answer, `n` answers.
    pub fn report(&self, label: &str, before: CpuAt, n: usize) {
        let ((user, system), client) = self.now();
        let per = |ms: f64| ms * 1000.0 / n.max(1) as f64;
        let (user, system) = (per(user - before.0.0), per(system - before.0.1));
        println!(
            "  cpu per answer, {label}: server {:.1} µs (user {user:.1}, system {system:.1}), client {:.1} µs",
            user + system,
            per(client - before.1)
        );
    }
}
