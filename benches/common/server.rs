//! The release binary as a server for a bench: started from an empty directory with a fresh
//! store (and a `config.toml` when given), rate limits out of the way, killed when dropped.
//! Benches that run the real server include it with `#[path = "common/server.rs"] mod server;`.

use std::process::{Child, Command, Stdio};

/// The bootstrap admin's password (`admin@localhost`).
pub const PASSWORD: &str = "bench-admin-password";

pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `voucherd` with `config` as its `config.toml` (none when `None`) and these settings
/// from the environment on top.
pub fn start(config: Option<&str>, env: &[(&str, String)]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    if let Some(config) = config {
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // BENCH_CALLGRIND=FILE: the server runs under valgrind's callgrind, counting nothing until
    // the bench switches it on (`callgrind_control -i on`), its profile written to FILE.
    let mut command = match std::env::var("BENCH_CALLGRIND") {
        Ok(out) if !out.is_empty() => {
            let mut c = Command::new("valgrind");
            c.args([
                "--tool=callgrind",
                "--instr-atstart=no",
                &format!("--callgrind-out-file={out}"),
                env!("CARGO_BIN_EXE_voucherd"),
            ]);
            c
        }
        _ => Command::new(env!("CARGO_BIN_EXE_voucherd")),
    };
    let child = command
        .current_dir(dir.path())
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .env("VOUCHERD_ADMIN_PASSWORD", PASSWORD)
        .env("VOUCHERD__RATE_LIMIT__PER_SECOND", "1000000")
        .env("VOUCHERD__RATE_LIMIT__BURST", "1000000")
        // Hundreds of customers sign in from this one address before the load starts.
        .env("VOUCHERD__RATE_LIMIT__LOGIN_PER_MINUTE", "1000000")
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}
