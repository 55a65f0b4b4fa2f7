//! Failpoints: named places where a test makes the store fail as a disk or a crash would, to
//! prove what the server does then. Off unless armed; when off, each place costs one atomic load.
//! Armed at start from `VOUCHERD_FAILPOINTS` (names separated by commas: the real binary in crash
//! tests), or by an in-process test through [`Failpoints::arm`].

use std::sync::atomic::{AtomicU32, Ordering};

/// A place that can be made to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failpoint {
    /// Every flush fails (a disk that stopped taking writes).
    Flush,
    /// Every flush takes a quarter of a second longer (a slow disk): requests are mid-way for
    /// longer.
    SlowFlush,
    /// `Store::write` is refused before it reaches the writer (as a full queue is).
    RefuseWrites,
    /// A command that writes several keys fails after its first key.
    BetweenKeys,
    /// A command that writes several keys flushes what it wrote so far after its first key, then
    /// the process aborts (a crash at the worst moment).
    CrashBetweenKeys,
}

impl Failpoint {
    const ALL: [Failpoint; 5] = [
        Failpoint::Flush,
        Failpoint::SlowFlush,
        Failpoint::RefuseWrites,
        Failpoint::BetweenKeys,
        Failpoint::CrashBetweenKeys,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Failpoint::Flush => "flush",
            Failpoint::SlowFlush => "slow_flush",
            Failpoint::RefuseWrites => "refuse_writes",
            Failpoint::BetweenKeys => "between_keys",
            Failpoint::CrashBetweenKeys => "crash_between_keys",
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// The variable naming the failpoints armed at start.
pub const ENV: &str = "VOUCHERD_FAILPOINTS";

/// Which failpoints are armed.
#[derive(Debug, Default)]
pub struct Failpoints(AtomicU32);

impl Failpoints {
    /// Armed as `VOUCHERD_FAILPOINTS` says (unknown names are logged and ignored).
    pub fn from_env() -> Self {
        let armed = Self::default();
        if let Ok(names) = std::env::var(ENV) {
            for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                match Failpoint::ALL.iter().find(|f| f.name() == name) {
                    Some(f) => {
                        tracing::warn!(failpoint = name, "failpoint armed");
                        armed.arm(*f);
                    }
                    None => tracing::warn!(failpoint = name, "unknown failpoint ignored"),
                }
            }
        }
        armed
    }

    pub fn arm(&self, f: Failpoint) {
        self.0.fetch_or(f.bit(), Ordering::AcqRel);
    }

    pub fn disarm(&self, f: Failpoint) {
        self.0.fetch_and(!f.bit(), Ordering::AcqRel);
    }

    /// Whether `f` is armed.
    pub fn hit(&self, f: Failpoint) -> bool {
        self.0.load(Ordering::Acquire) & f.bit() != 0
    }
}
