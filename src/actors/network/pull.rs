//! One pull of one network: fetch every page, parse it off the async threads, and upsert.
//!
//! Each page is applied as soon as it is parsed (one writer command, with its entry in the pull
//! journal), so memory holds one page whatever the feed's length. A pull that fails half-way
//! (HTTP error, timeout, malformed page, a fault, more pages or bytes than `catalogue.max_pages`
//! / `max_pull_mb` allow) is rolled back from the journal: it has ingested nothing and deleted
//! nothing; a crash in the middle is rolled back when the store opens. The pull is acknowledged
//! by one durable write that drops its journal. Offers already stored unchanged cost no write.

use std::sync::Arc;
use std::time::Duration;

use super::fetch::Fetcher;
use crate::clock::SharedClock;
use crate::config::NetworkSettings;
use crate::domain::network::PullSummary;
use crate::domain::voucher::Offer;
use crate::feeds::{self, PageCtx, PageRef, Source};
use crate::store::Store;
use crate::store::vouchers::Upserted;

/// How much one pull may read before it is refused.
#[derive(Debug, Clone, Copy)]
pub struct PullLimits {
    pub max_pages: u32,
    pub max_bytes: usize,
}

impl PullLimits {
    pub fn of(catalogue: &crate::config::CatalogueSettings) -> Self {
        Self {
            max_pages: catalogue.max_pages,
            max_bytes: catalogue.max_pull_mb as usize * 1024 * 1024,
        }
    }
}

/// Everything a pull needs; shared by a network actor and its pulls (and the ingest bench).
#[derive(Clone)]
pub struct Puller {
    pub store: Store,
    pub clock: SharedClock,
    pub fetcher: Fetcher,
    pub retention: chrono::Duration,
    pub limits: PullLimits,
}

/// A failed pull: what it read before failing, and why it failed.
#[derive(Debug)]
pub struct PullFailure {
    pub summary: PullSummary,
    pub error: String,
}

impl Puller {
    pub async fn pull(&self, network: &NetworkSettings) -> Result<PullSummary, PullFailure> {
        let mut summary = PullSummary {
            started_at: Some(self.clock.now()),
            ..PullSummary::default()
        };
        let name = network.name.clone();
        let mut result = self.pull_pages(network, &mut summary).await;
        let n = name.clone();
        let ended = match &result {
            Ok(()) => {
                self.store
                    .write(move |s| s.vouchers().finish_pull(&n))
                    .await
            }
            Err(_) => {
                self.store
                    .write(move |s| s.vouchers().abort_pull(&n).map(|_| ()))
                    .await
            }
        };
        if let Err(e) = ended {
            // The journal stays: the next pull (or the next start) rolls this one back.
            tracing::error!(network = %name, error = %e, "ending a pull failed");
            result = Err(format!("storing vouchers: {e}"));
        }
        summary.finished_at = Some(self.clock.now());
        match result {
            Ok(()) => {
                summary.ok = true;
                Ok(summary)
            }
            Err(error) => {
                summary.ok = false;
                summary.inserted = 0;
                summary.updated = 0;
                summary.unchanged = 0;
                summary.errors.insert(0, error.clone());
                Err(PullFailure { summary, error })
            }
        }
    }

    async fn pull_pages(
        &self,
        network: &NetworkSettings,
        summary: &mut PullSummary,
    ) -> Result<(), String> {
        let source = Arc::new(network.source());
        let is_file = network.is_local();
        let timeout = Duration::from_secs(network.timeout_s);
        let name = network.name.clone();
        {
            // A journal left by a pull whose ending failed: undo it before anything else.
            let n = name.clone();
            self.store
                .write_unflushed(move |s| s.vouchers().abort_pull(&n))
                .await
                .map_err(|e| format!("storing vouchers: {e}"))?;
        }
        let mut ctx = PageCtx {
            number: 1,
            rows_before: 0,
        };
        let mut bytes_read = 0usize;
        let first = feeds::request(&source, &PageRef::Number(1));
        let mut seen = std::collections::HashSet::from([request_key(&first)]);
        let mut page = self
            .fetch_and_parse(&source, &first, ctx, timeout, &mut bytes_read)
            .await?;
        loop {
            summary.pages += 1;
            summary.fetched += page.rows() as u64;
            for e in &page.rejected {
                summary.reject(e);
            }
            let next = match &page.next {
                Some(next) if !is_file => Some(feeds::request(&source, next)),
                _ => None,
            };
            ctx.rows_before += page.rejected.len() as u64 + page.offers.len() as u64;
            if let Some(request) = &next {
                if !seen.insert(request_key(request)) {
                    return Err(format!(
                        "page {} names a page already read as the next one",
                        ctx.number
                    ));
                }
                same_origin(&first.url, &request.url)
                    .map_err(|e| format!("page {}: {e}", ctx.number))?;
                if summary.pages >= self.limits.max_pages {
                    return Err(format!(
                        "more than catalogue.max_pages ({}) pages",
                        self.limits.max_pages
                    ));
                }
            }
            // This page goes to the writer while the next one is fetched and parsed: the writer
            // and the parser work side by side.
            let store_page = self.upsert_page(&name, page.offers);
            let Some(next) = next else {
                add(summary, store_page.await?);
                return Ok(());
            };
            ctx.number += 1;
            let following = self.fetch_and_parse(&source, &next, ctx, timeout, &mut bytes_read);
            let (done, following) = futures_util::future::join(store_page, following).await;
            add(summary, done?);
            page = following?;
        }
    }

    /// Fetches and parses one page, counting its bytes against `catalogue.max_pull_mb`.
    async fn fetch_and_parse(
        &self,
        source: &Arc<Source>,
        request: &feeds::Request,
        ctx: PageCtx,
        timeout: Duration,
        bytes_read: &mut usize,
    ) -> Result<feeds::Page, String> {
        let bytes = self
            .fetcher
            .fetch(request, timeout)
            .await
            .map_err(|e| format!("page {}: {e}", ctx.number))?;
        *bytes_read = bytes_read.saturating_add(bytes.len());
        if *bytes_read > self.limits.max_bytes {
            return Err(format!(
                "the feed is larger than catalogue.max_pull_mb ({} MiB) allows for one pull",
                self.limits.max_bytes / (1024 * 1024)
            ));
        }
        parse_off_thread(source.clone(), ctx, bytes)
            .await
            .map_err(|e| format!("page {}: {e}", ctx.number))
    }

    /// One page through the writer, not waiting for the disk: the pull's ending is the
    /// durable write that acknowledges it.
    async fn upsert_page(&self, network: &str, offers: Vec<Offer>) -> Result<Upserted, String> {
        let network = network.to_owned();
        let (now, retention) = (self.clock.now(), self.retention);
        self.store
            .write_unflushed(move |s| s.vouchers().upsert_page(&network, &offers, now, retention))
            .await
            .map_err(|e| format!("storing vouchers: {e}"))
    }
}

/// What makes two page requests the same: where they go and what they send.
fn request_key(r: &feeds::Request) -> String {
    format!(
        "{} {}",
        r.url,
        r.json_body
            .as_ref()
            .map(|b| b.to_string())
            .unwrap_or_default()
    )
}

/// A next page may not take the pull, and its credentials, to another host, nor from https to
/// http.
fn same_origin(first: &str, next: &str) -> Result<(), String> {
    let (Ok(a), Ok(b)) = (url::Url::parse(first), url::Url::parse(next)) else {
        return Err(format!("`{next}` is not a URL"));
    };
    if a.scheme() == "https" && b.scheme() != "https" {
        return Err("the next page downgrades https to http, not followed".into());
    }
    if a.host_str() != b.host_str() || a.port_or_known_default() != b.port_or_known_default() {
        return Err(format!(
            "the next page is on another host ({}), not followed",
            b.host_str().unwrap_or("none")
        ));
    }
    Ok(())
}

fn add(summary: &mut PullSummary, done: Upserted) {
    summary.inserted += done.inserted;
    summary.updated += done.updated;
    summary.unchanged += done.unchanged;
}

async fn parse_off_thread(
    source: Arc<Source>,
    ctx: PageCtx,
    bytes: Vec<u8>,
) -> Result<feeds::Page, String> {
    tokio::task::spawn_blocking(move || feeds::parse(&source, ctx, &bytes))
        .await
        .map_err(|e| format!("parser crashed: {e}"))?
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_pages_stay_on_the_feed_host_and_never_leave_https() {
        let first = "https://api.example.com/feed?page=1";
        assert!(same_origin(first, "https://api.example.com/feed?page=2").is_ok());
        assert!(same_origin(first, "https://api.example.com:443/other").is_ok());
        let err = same_origin(first, "http://api.example.com/feed?page=2").unwrap_err();
        assert!(err.contains("downgrades"), "{err}");
        let err = same_origin(first, "https://evil.example/feed").unwrap_err();
        assert!(err.contains("another host"), "{err}");
        assert!(same_origin(first, "https://api.example.com:8443/feed").is_err());
        assert!(same_origin(first, "not a url").is_err());
        // Plain http feeds may page over plain http.
        assert!(same_origin("http://127.0.0.1:9000/f", "http://127.0.0.1:9000/f?p=2").is_ok());
    }
}
