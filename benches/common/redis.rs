//! The peer a user would pick instead of voucherd for a drop: Redis with every write fsynced
//! (`appendonly yes`, `appendfsync always`) and the claim as a Lua script loaded once — take a code
//! from the pool set (`SPOP`), count the customer's codes and refuse past the limit (`HINCRBY`),
//! record who holds it (`HSET`) — driven by `redis-benchmark` over the same number of
//! connections. Started from its own temporary directory on a free port; killed when dropped.
//! `None` when `redis-server` or `redis-benchmark` is not installed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The claim: KEYS[1] the pool set, KEYS[2] customer → count, KEYS[3] code → customer;
/// ARGV[1] the customer, ARGV[2] the per-customer limit. Answers the code, or an error.
const CLAIM: &str = "local n = redis.call('HINCRBY', KEYS[2], ARGV[1], 1) \
if n > tonumber(ARGV[2]) then redis.call('HINCRBY', KEYS[2], ARGV[1], -1) return redis.error_reply('limit') end \
local code = redis.call('SPOP', KEYS[1]) \
if not code then redis.call('HINCRBY', KEYS[2], ARGV[1], -1) return redis.error_reply('sold_out') end \
redis.call('HSET', KEYS[3], code, ARGV[1]) return code";

pub struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

/// What one `redis-benchmark` run measured.
pub struct Measured {
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// CPU per answer (user + system), server and client, in µs.
    pub server_us: f64,
    pub client_us: f64,
    /// Codes held after the run (every claim answered with a code).
    pub claimed: u64,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Redis {
    pub fn start() -> Option<Self> {
        if !installed("redis-server") || !installed("redis-benchmark") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--dir",
                dir.path().to_str().unwrap(),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let redis = Self {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(redis)
    }

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Fills the pool with `pool` codes (pipelined `SADD`s of 1,000) and loads the script;
    /// returns its SHA.
    pub fn prepare(&self, pool: usize) -> String {
        let mut conn = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut sent = 0;
        for start in (0..pool).step_by(1000) {
            let codes: Vec<String> = (start..(start + 1000).min(pool))
                .map(|i| format!("CODE{i:08}"))
                .collect();
            let mut args = vec!["SADD".to_owned(), "pool".to_owned()];
            args.extend(codes);
            conn.write_all(&command(&args)).unwrap();
            sent += 1;
        }
        for _ in 0..sent {
            read_reply(&mut reader);
        }
        conn.write_all(&command(&["SCRIPT".into(), "LOAD".into(), CLAIM.into()]))
            .unwrap();
        read_reply(&mut reader)
    }

    fn held(&self) -> u64 {
        let mut conn = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        conn.write_all(&command(&["HLEN".into(), "holders".into()]))
            .unwrap();
        read_reply(&mut reader).parse().unwrap_or(0)
    }

    /// `redis-benchmark` sends `claims` claims over `connections` connections, each for a random
    /// one of 100,000 customers (`-r`), at most `limit` codes each.
    pub fn claims(&self, sha: &str, connections: usize, claims: usize, limit: usize) -> Measured {
        let cpu_before = crate::common::cpu_ms(&self.pid());
        let child = Command::new("redis-benchmark")
            .args([
                "-p",
                &self.port.to_string(),
                "-c",
                &connections.to_string(),
                "-n",
                &claims.to_string(),
                "-r",
                "100000",
                "--csv",
                "EVALSHA",
                sha,
                "3",
                "pool",
                "counts",
                "holders",
                "customer:__rand_int__",
                &limit.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let client_pid = child.id().to_string();
        // The client's CPU time is read while it is still there: poll it until it exits.
        let mut client_ms = 0.0;
        let mut child = child;
        loop {
            let now = crate::common::cpu_ms(&client_pid);
            if now > 0.0 {
                client_ms = now;
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let server_ms = crate::common::cpu_ms(&self.pid()) - cpu_before;
        // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
        let row: Vec<f64> = out
            .lines()
            .last()
            .unwrap_or("")
            .split(',')
            .skip(1)
            .map(|f| f.trim_matches('"').parse().unwrap_or(0.0))
            .collect();
        let at = |i: usize| row.get(i).copied().unwrap_or(0.0);
        Measured {
            per_second: at(0),
            p50_ms: at(3),
            p99_ms: at(5),
            server_us: server_ms * 1000.0 / claims.max(1) as f64,
            client_us: client_ms * 1000.0 / claims.max(1) as f64,
            claimed: self.held(),
        }
    }
}

fn command(args: &[String]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend(format!("${}\r\n", a.len()).as_bytes());
        out.extend(a.as_bytes());
        out.extend(b"\r\n");
    }
    out
}

/// One simple reply (status, integer, bulk string or error) as text.
fn read_reply(reader: &mut impl BufRead) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let line = line.trim_end().to_owned();
    match line.as_bytes().first() {
        Some(b'$') => {
            let len: i64 = line[1..].parse().unwrap();
            if len < 0 {
                return String::new();
            }
            let mut buf = vec![0; len as usize + 2];
            reader.read_exact(&mut buf).unwrap();
            String::from_utf8_lossy(&buf[..len as usize]).into_owned()
        }
        Some(b'-') => panic!("redis: {line}"),
        _ => line[1..].to_owned(),
    }
}
