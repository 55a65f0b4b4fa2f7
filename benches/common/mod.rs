//! What the benches share.

/// Peak resident memory of process `pid` (`"self"`: this one) so far (VmHWM), in MB (Linux).
pub fn peak_rss_mb(pid: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A number from the environment (`BENCH_*`, `CACHE_MB`), or `default` when unset or not one.
pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU time a process has used so far, user and system, in ms, from `/proc/<pid>/stat` (Linux;
/// `"self"`: this one). Zero when the process is gone.
#[allow(dead_code)] // each bench is its own crate; not all of them watch CPU
pub fn cpu_split_ms(pid: &str) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is field 3; utime and stime
    // are fields 14 and 15, in clock ticks (100 per second).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) * 10.0, ticks(12) * 10.0)
}

/// CPU time (user + system) a process has used so far, in ms.
#[allow(dead_code)] // each bench is its own crate; not all of them watch CPU
pub fn cpu_ms(pid: &str) -> f64 {
    let (user, system) = cpu_split_ms(pid);
    user + system
}
