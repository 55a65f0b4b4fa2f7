//! Affiliate networks as voucherd tracks them: the health state shown on `/api/v1/networks`, what
//! a pull did, and the rules that move the state (`ok → degraded → failing`, backoff).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The formats voucherd reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FeedKind {
    Awin,
    Cj,
    Rakuten,
    Impact,
    Tradedoubler,
    Csv,
    Json,
}

impl FeedKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedKind::Awin => "awin",
            FeedKind::Cj => "cj",
            FeedKind::Rakuten => "rakuten",
            FeedKind::Impact => "impact",
            FeedKind::Tradedoubler => "tradedoubler",
            FeedKind::Csv => "csv",
            FeedKind::Json => "json",
        }
    }

    /// Whether the format has a field mapping (`map` in the network's config).
    pub fn is_mapped(self) -> bool {
        matches!(self, FeedKind::Csv | FeedKind::Json)
    }
}

/// A row that was not ingested, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RowError {
    /// 1-based position of the row on its page.
    pub row: usize,
    pub page: u32,
    pub external_id: Option<String>,
    pub reason: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "page {} row {}", self.page, self.row)?;
        if let Some(id) = &self.external_id {
            write!(f, " (id {id})")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// Health of a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NetworkState {
    /// The last pull succeeded and every row was read.
    Ok,
    /// The last pull rejected rows, or failed fewer than `failing_after` times in a row.
    Degraded,
    /// `failing_after` or more pulls in a row failed.
    Failing,
    /// Not pulled (`enabled = false`).
    Disabled,
}

/// What one pull did (also the answer of `POST /networks/{name}/pull`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PullSummary {
    /// Rows read from the feed, good and rejected.
    pub fetched: u64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
    /// Rejected rows (the first 50) and, for a failed pull, why it failed.
    pub errors: Vec<String>,
    /// Pages read.
    pub pages: u32,
    /// Whether the pull completed; a failed pull ingests nothing and deletes nothing.
    pub ok: bool,
    #[serde(with = "crate::domain::times::micros_opt")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(with = "crate::domain::times::micros_opt")]
    pub finished_at: Option<DateTime<Utc>>,
}

/// Rejected rows kept in a summary.
pub const MAX_ERRORS: usize = 50;

impl PullSummary {
    pub fn reject(&mut self, e: &RowError) {
        self.rejected += 1;
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(e.to_string());
        }
    }
}

/// The stored state of one network (tree `networks`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub v: u32,
    pub name: String,
    pub kind: FeedKind,
    pub state: NetworkState,
    #[serde(with = "crate::domain::times::micros_opt")]
    pub last_pull_at: Option<DateTime<Utc>>,
    #[serde(with = "crate::domain::times::micros_opt")]
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// Failed pulls in a row.
    pub failures: u32,
    /// When the next pull is due after a failure (backoff); `None` follows the schedule.
    #[serde(with = "crate::domain::times::micros_opt")]
    pub retry_at: Option<DateTime<Utc>>,
    pub last_summary: Option<PullSummary>,
}

impl NetworkRecord {
    pub const VERSION: u32 = 1;

    pub fn new(name: &str, kind: FeedKind, enabled: bool) -> Self {
        Self {
            v: Self::VERSION,
            name: name.to_owned(),
            kind,
            state: if enabled {
                NetworkState::Ok
            } else {
                NetworkState::Disabled
            },
            last_pull_at: None,
            last_success_at: None,
            last_error: None,
            failures: 0,
            retry_at: None,
            last_summary: None,
        }
    }

    /// Records a pull that completed.
    pub fn succeeded(&mut self, summary: PullSummary, now: DateTime<Utc>) {
        self.state = if summary.rejected > 0 {
            NetworkState::Degraded
        } else {
            NetworkState::Ok
        };
        self.last_pull_at = Some(now);
        self.last_success_at = Some(now);
        self.last_error = None;
        self.failures = 0;
        self.retry_at = None;
        self.last_summary = Some(summary);
    }

    /// Records a failed pull; returns whether the network just turned `failing`.
    pub fn failed(
        &mut self,
        summary: PullSummary,
        error: String,
        now: DateTime<Utc>,
        backoff: &Backoff,
        jitter: f64,
    ) -> bool {
        let was_failing = self.state == NetworkState::Failing;
        self.failures = self.failures.saturating_add(1);
        self.state = if self.failures >= backoff.failing_after {
            NetworkState::Failing
        } else {
            NetworkState::Degraded
        };
        self.last_pull_at = Some(now);
        self.last_error = Some(error);
        self.retry_at = Some(now + backoff.delay(self.failures, jitter));
        self.last_summary = Some(summary);
        !was_failing && self.state == NetworkState::Failing
    }
}

/// Exponential backoff between failed pulls.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: chrono::Duration,
    pub max: chrono::Duration,
    pub failing_after: u32,
}

impl Backoff {
    /// The wait after the `failures`-th failure in a row: `base · 2^(failures-1)`, capped at
    /// `max`, scaled by `jitter` in `[0.5, 1.0]` so networks failing together spread their retries.
    pub fn delay(&self, failures: u32, jitter: f64) -> chrono::Duration {
        let exp = failures.saturating_sub(1).min(30);
        let full = self
            .base
            .checked_mul(1i32 << exp.min(30))
            .unwrap_or(self.max)
            .min(self.max);
        let jitter = jitter.clamp(0.5, 1.0);
        let ms = (full.num_milliseconds() as f64 * jitter) as i64;
        chrono::Duration::milliseconds(ms.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let b = Backoff {
            base: chrono::Duration::seconds(30),
            max: chrono::Duration::seconds(3600),
            failing_after: 3,
        };
        assert_eq!(b.delay(1, 1.0), chrono::Duration::seconds(30));
        assert_eq!(b.delay(2, 1.0), chrono::Duration::seconds(60));
        assert_eq!(b.delay(3, 1.0), chrono::Duration::seconds(120));
        assert_eq!(b.delay(20, 1.0), chrono::Duration::seconds(3600));
        assert_eq!(b.delay(40, 1.0), chrono::Duration::seconds(3600));
        assert_eq!(b.delay(2, 0.5), chrono::Duration::seconds(30));
        assert_eq!(
            b.delay(2, 0.0),
            chrono::Duration::seconds(30),
            "jitter is clamped"
        );
    }

    #[test]
    fn state_moves_ok_degraded_failing_and_back() {
        let b = Backoff {
            base: chrono::Duration::seconds(1),
            max: chrono::Duration::seconds(10),
            failing_after: 3,
        };
        let now = Utc::now();
        let mut n = NetworkRecord::new("x", FeedKind::Csv, true);
        assert!(!n.failed(PullSummary::default(), "e1".into(), now, &b, 1.0));
        assert_eq!(n.state, NetworkState::Degraded);
        assert!(!n.failed(PullSummary::default(), "e2".into(), now, &b, 1.0));
        assert!(
            n.failed(PullSummary::default(), "e3".into(), now, &b, 1.0),
            "turns failing"
        );
        assert_eq!(n.state, NetworkState::Failing);
        assert!(
            !n.failed(PullSummary::default(), "e4".into(), now, &b, 1.0),
            "only once"
        );
        assert_eq!(n.last_error.as_deref(), Some("e4"));
        n.succeeded(PullSummary::default(), now);
        assert_eq!(n.state, NetworkState::Ok);
        assert_eq!(n.failures, 0);
        assert_eq!(n.retry_at, None);
    }
}
